//! The `writer_settings` aggregate (one per account, id = the account id):
//! the account's prompt templates (each change a new version; a reset
//! returns to the default), its author profiles (tone, language) and its
//! writing strategies (prompt overrides, a default author profile, a
//! sector). Small and bounded, so the API reads it straight from the
//! aggregate: a change is visible to the next request.

use crate::planner::{valid_line, valid_text};
use crate::{Aggregate, DomainError, DomainEvent, ErrorKind};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

pub const MAX_PROFILES: usize = 50;
pub const MAX_STRATEGIES: usize = 50;
pub const MAX_TEMPLATE_CHARS: usize = 20_000;

/// The prompt types and the placeholders each may use.
pub const PROMPT_TYPES: &[(&str, &[&str])] = &[
    ("clustering", &["keywords", "language"]),
    ("ideas", &["keywords", "count", "language", "tone"]),
    (
        "content",
        &[
            "idea_title",
            "keywords",
            "outline",
            "word_count",
            "tone",
            "language",
            "content_type",
        ],
    ),
    ("image_prompts", &["title", "outline", "count", "language"]),
];

/// The default template of a prompt type.
pub fn default_template(prompt_type: &str) -> Option<&'static str> {
    Some(match prompt_type {
        "clustering" => {
            "Group these keywords into topical clusters a single article could cover. Language: {language}.\nKeywords: {keywords}"
        }
        "ideas" => {
            "Propose {count} content ideas, in {language}, for a cluster of these keywords: {keywords}. Each idea's primary keyword is one of them."
        }
        "content" => {
            "You are an SEO content writer. Write the {content_type} \"{idea_title}\" in {language} with a {tone} tone, about {word_count} words, following this outline:\n{outline}\nUse these keywords naturally: {keywords}. The primary keyword appears in the title, in the first paragraph and in the meta description; meta_title has at most 60 characters and meta_description at most 160."
        }
        "image_prompts" => {
            "Describe {count} images for the article \"{title}\" (language {language}), one per section of:\n{outline}"
        }
        _ => return None,
    })
}

/// The placeholders of a prompt type (`None`: no such type).
pub fn placeholders(prompt_type: &str) -> Option<&'static [&'static str]> {
    PROMPT_TYPES
        .iter()
        .find(|(t, _)| *t == prompt_type)
        .map(|(_, p)| *p)
}

/// The `{name}` placeholders a template uses.
pub fn used_placeholders(template: &str) -> Vec<String> {
    let mut out = vec![];
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close)
                if after[..close]
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && close > 0 =>
            {
                out.push(after[..close].to_string());
                rest = &after[close + 1..];
            }
            _ => rest = after,
        }
    }
    out
}

/// Fill a template's placeholders (those not given stay as written).
pub fn render(template: &str, values: &[(&str, String)]) -> String {
    let mut out = template.to_string();
    for (k, v) in values {
        out = out.replace(&format!("{{{k}}}"), v);
    }
    out
}

/// `en`, `de`, `pt-BR`, …
pub fn valid_language(s: &str) -> bool {
    let mut parts = s.split('-');
    let first = parts.next().unwrap_or("");
    (2..=3).contains(&first.len())
        && first.chars().all(|c| c.is_ascii_lowercase())
        && parts.all(|p| (2..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()))
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuthorProfile {
    pub name: String,
    pub description: String,
    pub tone: String,
    /// BCP 47 (`en`, `de`, `pt-BR`): the language articles are written in.
    pub language: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WritingStrategy {
    pub name: String,
    pub description: String,
    /// The sector it is meant for (`None`: any).
    pub sector_id: Option<Uuid>,
    /// Templates that replace the account's for these prompt types.
    pub prompt_overrides: BTreeMap<String, String>,
    pub default_author_profile_id: Option<Uuid>,
}

/// An account's template of one prompt type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct PromptState {
    /// 0: never changed (the default).
    pub version: u32,
    /// `None`: the default template.
    pub template: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct WriterSettings {
    pub prompts: BTreeMap<String, PromptState>,
    pub profiles: BTreeMap<Uuid, AuthorProfile>,
    pub strategies: BTreeMap<Uuid, WritingStrategy>,
}

impl WriterSettings {
    /// The effective template of `prompt_type`: the strategy's override if
    /// it has one (with that strategy's id), else the account's (its
    /// version; 0: never changed) or the default.
    pub fn template(
        &self,
        prompt_type: &str,
        strategy: Option<Uuid>,
    ) -> (String, u32, Option<Uuid>) {
        let version = self.prompts.get(prompt_type).map_or(0, |p| p.version);
        if let Some(s) = strategy
            && let Some(t) = self
                .strategies
                .get(&s)
                .and_then(|st| st.prompt_overrides.get(prompt_type))
        {
            return (t.clone(), version, Some(s));
        }
        let own = self
            .prompts
            .get(prompt_type)
            .and_then(|p| p.template.clone());
        let t = own.unwrap_or_else(|| default_template(prompt_type).unwrap_or("").to_string());
        (t, version, None)
    }

    /// The author profile a task writes with: its own, else its strategy's default.
    pub fn profile_for(
        &self,
        profile: Option<Uuid>,
        strategy: Option<Uuid>,
    ) -> Option<&AuthorProfile> {
        let id = profile.or_else(|| {
            strategy
                .and_then(|s| self.strategies.get(&s))
                .and_then(|s| s.default_author_profile_id)
        })?;
        self.profiles.get(&id)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum WriterSettingsCommand {
    SetPrompt {
        prompt_type: String,
        template: String,
    },
    ResetPrompt {
        prompt_type: String,
    },
    SaveProfile {
        id: Uuid,
        profile: AuthorProfile,
        /// A new one (else: it must exist).
        create: bool,
    },
    DeleteProfile {
        id: Uuid,
    },
    SaveStrategy {
        id: Uuid,
        strategy: WritingStrategy,
        create: bool,
    },
    DeleteStrategy {
        id: Uuid,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum WriterSettingsEvent {
    PromptChanged {
        prompt_type: String,
        version: u32,
        /// `null`: reset to the default.
        template: Option<String>,
    },
    AuthorProfileSaved {
        profile_id: Uuid,
        profile: AuthorProfile,
    },
    AuthorProfileDeleted {
        profile_id: Uuid,
    },
    StrategySaved {
        strategy_id: Uuid,
        strategy: WritingStrategy,
    },
    StrategyDeleted {
        strategy_id: Uuid,
    },
}

impl DomainEvent for WriterSettingsEvent {
    fn event_type(&self) -> &'static str {
        match self {
            WriterSettingsEvent::PromptChanged { .. } => "PromptChanged",
            WriterSettingsEvent::AuthorProfileSaved { .. } => "AuthorProfileSaved",
            WriterSettingsEvent::AuthorProfileDeleted { .. } => "AuthorProfileDeleted",
            WriterSettingsEvent::StrategySaved { .. } => "StrategySaved",
            WriterSettingsEvent::StrategyDeleted { .. } => "StrategyDeleted",
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SettingsError {
    #[error("unknown prompt type {0:?}: clustering, ideas, content or image_prompts")]
    UnknownPromptType(String),
    #[error("unknown placeholder {{{placeholder}}} for {prompt_type} prompts; allowed: {allowed}")]
    UnknownPlaceholder {
        prompt_type: String,
        placeholder: String,
        allowed: String,
    },
    #[error("a template must be 1 to {MAX_TEMPLATE_CHARS} characters")]
    InvalidTemplate,
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("at most {0} of them per account")]
    LimitReached(usize),
    #[error("{0}")]
    Invalid(&'static str),
    #[error("the author profile is the default of strategy {0}")]
    InUse(Uuid),
}

impl DomainError for SettingsError {
    fn code(&self) -> &'static str {
        match self {
            SettingsError::UnknownPromptType(_) => "NOT_FOUND",
            SettingsError::UnknownPlaceholder { .. } => "UNKNOWN_PLACEHOLDER",
            SettingsError::InvalidTemplate => "INVALID_TEMPLATE",
            SettingsError::NotFound(_) => "NOT_FOUND",
            SettingsError::LimitReached(_) => "LIMIT_REACHED",
            SettingsError::Invalid(_) => "VALIDATION_ERROR",
            SettingsError::InUse(_) => "IN_USE",
        }
    }
    fn kind(&self) -> ErrorKind {
        match self {
            SettingsError::UnknownPromptType(_) | SettingsError::NotFound(_) => ErrorKind::NotFound,
            SettingsError::InUse(_) => ErrorKind::Conflict,
            _ => ErrorKind::Validation,
        }
    }
}

/// 1 to `max` characters without control characters (tabs and line breaks allowed).
fn check_template(prompt_type: &str, template: &str) -> Result<(), SettingsError> {
    let allowed = placeholders(prompt_type)
        .ok_or_else(|| SettingsError::UnknownPromptType(prompt_type.to_string()))?;
    if template.trim().is_empty() || !valid_text(template, MAX_TEMPLATE_CHARS) {
        return Err(SettingsError::InvalidTemplate);
    }
    if let Some(bad) = used_placeholders(template)
        .into_iter()
        .find(|p| !allowed.contains(&p.as_str()))
    {
        return Err(SettingsError::UnknownPlaceholder {
            prompt_type: prompt_type.to_string(),
            placeholder: bad,
            allowed: allowed.join(", "),
        });
    }
    Ok(())
}

impl AuthorProfile {
    fn check(&self) -> Result<(), SettingsError> {
        if !valid_line(&self.name, 200) {
            return Err(SettingsError::Invalid("name must be 1 to 200 characters"));
        }
        if !valid_text(&self.description, 2000) {
            return Err(SettingsError::Invalid(
                "description must be at most 2,000 characters",
            ));
        }
        if self.tone.chars().count() > 200 || self.tone.chars().any(char::is_control) {
            return Err(SettingsError::Invalid(
                "tone must be at most 200 characters",
            ));
        }
        if !valid_language(&self.language) {
            return Err(SettingsError::Invalid(
                "language must be a BCP 47 tag such as en, de or pt-BR",
            ));
        }
        Ok(())
    }
}

impl Aggregate for WriterSettings {
    const TYPE: &'static str = "writer_settings";
    type Command = WriterSettingsCommand;
    type Event = WriterSettingsEvent;
    type Error = SettingsError;

    fn decide(
        &self,
        command: WriterSettingsCommand,
    ) -> Result<Vec<WriterSettingsEvent>, SettingsError> {
        use WriterSettingsCommand as C;
        use WriterSettingsEvent as E;
        let next = |t: &str| self.prompts.get(t).map_or(0, |p| p.version) + 1;
        match command {
            C::SetPrompt {
                prompt_type,
                template,
            } => {
                check_template(&prompt_type, &template)?;
                Ok(vec![E::PromptChanged {
                    version: next(&prompt_type),
                    prompt_type,
                    template: Some(template),
                }])
            }
            C::ResetPrompt { prompt_type } => {
                if placeholders(&prompt_type).is_none() {
                    return Err(SettingsError::UnknownPromptType(prompt_type));
                }
                if self
                    .prompts
                    .get(&prompt_type)
                    .is_none_or(|p| p.template.is_none())
                {
                    return Ok(vec![]);
                }
                Ok(vec![E::PromptChanged {
                    version: next(&prompt_type),
                    prompt_type,
                    template: None,
                }])
            }
            C::SaveProfile {
                id,
                profile,
                create,
            } => {
                profile.check()?;
                if create && self.profiles.len() >= MAX_PROFILES {
                    return Err(SettingsError::LimitReached(MAX_PROFILES));
                }
                if !create && !self.profiles.contains_key(&id) {
                    return Err(SettingsError::NotFound("author profile"));
                }
                Ok(vec![E::AuthorProfileSaved {
                    profile_id: id,
                    profile: AuthorProfile {
                        name: profile.name.trim().to_string(),
                        tone: profile.tone.trim().to_string(),
                        ..profile
                    },
                }])
            }
            C::DeleteProfile { id } => {
                if !self.profiles.contains_key(&id) {
                    return Err(SettingsError::NotFound("author profile"));
                }
                if let Some((s, _)) = self
                    .strategies
                    .iter()
                    .find(|(_, s)| s.default_author_profile_id == Some(id))
                {
                    return Err(SettingsError::InUse(*s));
                }
                Ok(vec![E::AuthorProfileDeleted { profile_id: id }])
            }
            C::SaveStrategy {
                id,
                strategy,
                create,
            } => {
                if !valid_line(&strategy.name, 200) {
                    return Err(SettingsError::Invalid("name must be 1 to 200 characters"));
                }
                if !valid_text(&strategy.description, 2000) {
                    return Err(SettingsError::Invalid(
                        "description must be at most 2,000 characters",
                    ));
                }
                for (t, template) in &strategy.prompt_overrides {
                    check_template(t, template)?;
                }
                if let Some(p) = strategy.default_author_profile_id
                    && !self.profiles.contains_key(&p)
                {
                    return Err(SettingsError::NotFound("author profile"));
                }
                if create && self.strategies.len() >= MAX_STRATEGIES {
                    return Err(SettingsError::LimitReached(MAX_STRATEGIES));
                }
                if !create && !self.strategies.contains_key(&id) {
                    return Err(SettingsError::NotFound("strategy"));
                }
                Ok(vec![E::StrategySaved {
                    strategy_id: id,
                    strategy: WritingStrategy {
                        name: strategy.name.trim().to_string(),
                        ..strategy
                    },
                }])
            }
            C::DeleteStrategy { id } => {
                if !self.strategies.contains_key(&id) {
                    return Err(SettingsError::NotFound("strategy"));
                }
                Ok(vec![E::StrategyDeleted { strategy_id: id }])
            }
        }
    }

    fn apply(&mut self, event: &WriterSettingsEvent) {
        use WriterSettingsEvent as E;
        match event {
            E::PromptChanged {
                prompt_type,
                version,
                template,
            } => {
                self.prompts.insert(
                    prompt_type.clone(),
                    PromptState {
                        version: *version,
                        template: template.clone(),
                    },
                );
            }
            E::AuthorProfileSaved {
                profile_id,
                profile,
            } => {
                self.profiles.insert(*profile_id, profile.clone());
            }
            E::AuthorProfileDeleted { profile_id } => {
                self.profiles.remove(profile_id);
            }
            E::StrategySaved {
                strategy_id,
                strategy,
            } => {
                self.strategies.insert(*strategy_id, strategy.clone());
            }
            E::StrategyDeleted { strategy_id } => {
                self.strategies.remove(strategy_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::given_when;

    #[test]
    fn templates_are_checked_versioned_and_reset() {
        let set = |t: &str| WriterSettingsCommand::SetPrompt {
            prompt_type: "content".into(),
            template: t.into(),
        };
        let mut h =
            given_when::<WriterSettings>(&[], set("Write {idea_title} in {language}")).unwrap();
        h.extend(
            given_when::<WriterSettings>(&h, set("Write {idea_title}, {word_count} words"))
                .unwrap(),
        );
        let e = given_when::<WriterSettings>(&h, set("Hi {customer}")).unwrap_err();
        assert_eq!(e.code(), "UNKNOWN_PLACEHOLDER");
        assert!(e.to_string().contains("{customer}"), "{e}");
        // JSON braces are not placeholders.
        assert!(
            given_when::<WriterSettings>(&h, set("Answer {\"a\": 1} for {idea_title}")).is_ok()
        );
        let mut s = WriterSettings::default();
        h.iter().for_each(|e| s.apply(e));
        assert_eq!(
            s.template("content", None),
            ("Write {idea_title}, {word_count} words".into(), 2, None)
        );
        let reset = given_when::<WriterSettings>(
            &h,
            WriterSettingsCommand::ResetPrompt {
                prompt_type: "content".into(),
            },
        )
        .unwrap();
        reset.iter().for_each(|e| s.apply(e));
        assert_eq!(s.template("content", None).1, 3);
        assert_eq!(
            s.template("content", None).0,
            default_template("content").unwrap()
        );
        assert_eq!(
            given_when::<WriterSettings>(
                &[],
                WriterSettingsCommand::ResetPrompt {
                    prompt_type: "poetry".into()
                }
            )
            .unwrap_err()
            .code(),
            "NOT_FOUND"
        );
        for (t, allowed) in PROMPT_TYPES {
            let d = default_template(t).unwrap();
            assert!(
                used_placeholders(d)
                    .iter()
                    .all(|p| allowed.contains(&p.as_str())),
                "{t}"
            );
        }
    }

    #[test]
    fn profiles_and_strategies() {
        let id = Uuid::from_u128(1);
        let profile = AuthorProfile {
            name: "Friendly".into(),
            description: String::new(),
            tone: "warm".into(),
            language: "de".into(),
        };
        let h = given_when::<WriterSettings>(
            &[],
            WriterSettingsCommand::SaveProfile {
                id,
                profile: profile.clone(),
                create: true,
            },
        )
        .unwrap();
        let bad = AuthorProfile {
            language: "German".into(),
            ..profile.clone()
        };
        assert!(
            given_when::<WriterSettings>(
                &[],
                WriterSettingsCommand::SaveProfile {
                    id,
                    profile: bad,
                    create: true
                }
            )
            .is_err()
        );
        let strategy = |p| WritingStrategy {
            name: "Evergreen".into(),
            description: String::new(),
            sector_id: None,
            prompt_overrides: [("content".to_string(), "Long {idea_title}".to_string())].into(),
            default_author_profile_id: Some(p),
        };
        assert_eq!(
            given_when::<WriterSettings>(
                &h,
                WriterSettingsCommand::SaveStrategy {
                    id: Uuid::from_u128(2),
                    strategy: strategy(Uuid::from_u128(9)),
                    create: true
                }
            )
            .unwrap_err()
            .code(),
            "NOT_FOUND"
        );
        let mut all = h.clone();
        all.extend(
            given_when::<WriterSettings>(
                &h,
                WriterSettingsCommand::SaveStrategy {
                    id: Uuid::from_u128(2),
                    strategy: strategy(id),
                    create: true,
                },
            )
            .unwrap(),
        );
        assert_eq!(
            given_when::<WriterSettings>(&all, WriterSettingsCommand::DeleteProfile { id })
                .unwrap_err()
                .code(),
            "IN_USE"
        );
        let mut s = WriterSettings::default();
        all.iter().for_each(|e| s.apply(e));
        assert_eq!(
            s.template("content", Some(Uuid::from_u128(2))).0,
            "Long {idea_title}"
        );
        assert!(valid_language("pt-BR") && !valid_language("EN") && !valid_language("e"));
    }
}
