//! The `idea` aggregate: a content idea of one sector, generated from a
//! cluster by a job or written by a person, and queued to the writer once
//! (one task per idea).
//!
//! Generated ideas have deterministic ids (UUIDv5 of the job and the
//! idea's place in it), so a retried job proposes the same ids and the
//! store refuses a second creation: an idea is never saved twice.

use crate::{Aggregate, DomainError, DomainEvent, ErrorKind};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub const MAX_TITLE_CHARS: usize = 300;
pub const MAX_DESCRIPTION_CHARS: usize = 5000;
pub const MAX_SECTIONS: usize = 40;
pub const MAX_KEY_POINTS: usize = 12;
pub const MAX_SECONDARY_KEYWORDS: usize = 30;
pub const MIN_WORDS: u32 = 100;
pub const MAX_WORDS: u32 = 10_000;

/// The kinds of content the writer produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ContentType {
    #[default]
    Post,
    Page,
    Guide,
    HowTo,
    Listicle,
    Comparison,
    Review,
}

impl ContentType {
    pub const ALL: [ContentType; 7] = [
        ContentType::Post,
        ContentType::Page,
        ContentType::Guide,
        ContentType::HowTo,
        ContentType::Listicle,
        ContentType::Comparison,
        ContentType::Review,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            ContentType::Post => "post",
            ContentType::Page => "page",
            ContentType::Guide => "guide",
            ContentType::HowTo => "how_to",
            ContentType::Listicle => "listicle",
            ContentType::Comparison => "comparison",
            ContentType::Review => "review",
        }
    }
    pub fn parse(s: &str) -> Option<ContentType> {
        ContentType::ALL.into_iter().find(|t| t.as_str() == s)
    }
    /// Types whose sections are lists of items rather than prose.
    pub fn lists(self) -> bool {
        matches!(
            self,
            ContentType::HowTo | ContentType::Listicle | ContentType::Comparison
        )
    }
}

/// One section of an outline: an H2 or H3 heading and what it covers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutlineSection {
    pub heading: String,
    /// 2 or 3.
    pub level: u8,
    #[serde(default)]
    pub key_points: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum IdeaStatus {
    #[default]
    New,
    Queued,
    Done,
    Archived,
}

impl IdeaStatus {
    pub const ALL: [IdeaStatus; 4] = [
        IdeaStatus::New,
        IdeaStatus::Queued,
        IdeaStatus::Done,
        IdeaStatus::Archived,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            IdeaStatus::New => "new",
            IdeaStatus::Queued => "queued",
            IdeaStatus::Done => "done",
            IdeaStatus::Archived => "archived",
        }
    }
    pub fn parse(s: &str) -> Option<IdeaStatus> {
        IdeaStatus::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// What an idea says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdeaData {
    pub title: String,
    pub description: String,
    pub outline: Vec<OutlineSection>,
    pub content_type: ContentType,
    pub primary_keyword: String,
    pub secondary_keywords: Vec<String>,
    pub target_word_count: u32,
    pub cluster_id: Option<Uuid>,
    /// The author profile its task will write with (from the generation request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author_profile_id: Option<Uuid>,
    /// The writing strategy its task will follow (from the generation request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy_id: Option<Uuid>,
}

/// A change of an idea (`None`: unchanged).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IdeaChange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outline: Option<Vec<OutlineSection>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<ContentType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_keyword: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secondary_keywords: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_word_count: Option<u32>,
    /// new, done or archived (queued only by queueing it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<IdeaStatus>,
}

impl IdeaChange {
    fn is_empty(&self) -> bool {
        *self == IdeaChange::default()
    }
}

/// One line of text: 1 to `max` characters once trimmed, no control characters.
pub fn valid_line(s: &str, max: usize) -> bool {
    let t = s.trim();
    !t.is_empty() && t.chars().count() <= max && !s.chars().any(char::is_control)
}

/// Text of up to `max` characters; tabs and line breaks allowed.
pub fn valid_text(s: &str, max: usize) -> bool {
    s.chars().count() <= max
        && !s
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
}

/// The outline's rules: at most [`MAX_SECTIONS`] sections of level 2 or 3,
/// headings of 1 to 200 characters, at most [`MAX_KEY_POINTS`] key points of
/// 1 to 300 characters each.
pub fn check_outline(outline: &[OutlineSection]) -> Result<(), WriterInputError> {
    if outline.len() > MAX_SECTIONS {
        return Err(WriterInputError::InvalidOutline("too many sections"));
    }
    for s in outline {
        if !(2..=3).contains(&s.level) {
            return Err(WriterInputError::InvalidOutline("level must be 2 or 3"));
        }
        if !valid_line(&s.heading, 200) {
            return Err(WriterInputError::InvalidOutline(
                "a heading must be 1 to 200 characters",
            ));
        }
        if s.key_points.len() > MAX_KEY_POINTS || s.key_points.iter().any(|k| !valid_line(k, 300)) {
            return Err(WriterInputError::InvalidOutline(
                "at most 12 key points of 1 to 300 characters",
            ));
        }
    }
    Ok(())
}

pub fn check_keywords(primary: &str, secondary: &[String]) -> Result<(), WriterInputError> {
    if !valid_line(primary, super::MAX_KEYWORD_CHARS) {
        return Err(WriterInputError::InvalidKeyword);
    }
    if secondary.len() > MAX_SECONDARY_KEYWORDS
        || secondary
            .iter()
            .any(|k| !valid_line(k, super::MAX_KEYWORD_CHARS))
    {
        return Err(WriterInputError::InvalidKeyword);
    }
    Ok(())
}

pub fn check_word_count(n: u32) -> Result<(), WriterInputError> {
    if (MIN_WORDS..=MAX_WORDS).contains(&n) {
        Ok(())
    } else {
        Err(WriterInputError::InvalidWordCount)
    }
}

/// Rules shared by ideas and tasks (the writer's inputs).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WriterInputError {
    #[error("title must be 1 to {MAX_TITLE_CHARS} characters, without control characters")]
    InvalidTitle,
    #[error("description must be at most {MAX_DESCRIPTION_CHARS} characters")]
    InvalidDescription,
    #[error("invalid outline: {0}")]
    InvalidOutline(&'static str),
    #[error(
        "keywords must be 1 to 200 characters, without control characters; at most {MAX_SECONDARY_KEYWORDS} secondary keywords"
    )]
    InvalidKeyword,
    #[error("target word count must be {MIN_WORDS} to {MAX_WORDS}")]
    InvalidWordCount,
}

impl WriterInputError {
    pub fn code(&self) -> &'static str {
        match self {
            WriterInputError::InvalidTitle => "INVALID_TITLE",
            WriterInputError::InvalidDescription => "INVALID_DESCRIPTION",
            WriterInputError::InvalidOutline(_) => "INVALID_OUTLINE",
            WriterInputError::InvalidKeyword => "INVALID_KEYWORD",
            WriterInputError::InvalidWordCount => "INVALID_WORD_COUNT",
        }
    }
}

impl IdeaData {
    pub fn check(&self) -> Result<(), WriterInputError> {
        if !valid_line(&self.title, MAX_TITLE_CHARS) {
            return Err(WriterInputError::InvalidTitle);
        }
        if !valid_text(&self.description, MAX_DESCRIPTION_CHARS) {
            return Err(WriterInputError::InvalidDescription);
        }
        check_outline(&self.outline)?;
        check_keywords(&self.primary_keyword, &self.secondary_keywords)?;
        check_word_count(self.target_word_count)
    }

    fn changed(&self, c: &IdeaChange) -> IdeaData {
        let mut d = self.clone();
        if let Some(v) = &c.title {
            d.title = v.clone();
        }
        if let Some(v) = &c.description {
            d.description = v.clone();
        }
        if let Some(v) = &c.outline {
            d.outline = v.clone();
        }
        if let Some(v) = c.content_type {
            d.content_type = v;
        }
        if let Some(v) = &c.primary_keyword {
            d.primary_keyword = v.clone();
        }
        if let Some(v) = &c.secondary_keywords {
            d.secondary_keywords = v.clone();
        }
        if let Some(v) = c.target_word_count {
            d.target_word_count = v;
        }
        d
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Idea {
    pub created: bool,
    pub deleted: bool,
    pub account_id: Option<Uuid>,
    pub site_id: Option<Uuid>,
    pub sector_id: Option<Uuid>,
    pub data: Option<IdeaData>,
    pub status: IdeaStatus,
    /// The task it was queued to.
    pub task_id: Option<Uuid>,
}

impl Idea {
    pub fn live(&self) -> bool {
        self.created && !self.deleted
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum IdeaCommand {
    Create {
        account_id: Uuid,
        site_id: Uuid,
        sector_id: Uuid,
        idea: IdeaData,
        /// The job that generated it (`None`: written by a person).
        job_id: Option<Uuid>,
    },
    Update {
        change: IdeaChange,
    },
    /// One task per idea: a queued idea refuses a second task.
    Queue {
        task_id: Uuid,
    },
    Delete,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum IdeaEvent {
    IdeaCreated {
        account_id: Uuid,
        site_id: Uuid,
        sector_id: Uuid,
        idea: IdeaData,
        job_id: Option<Uuid>,
    },
    IdeaUpdated {
        change: IdeaChange,
    },
    IdeaQueued {
        task_id: Uuid,
    },
    IdeaDeleted {},
}

impl DomainEvent for IdeaEvent {
    fn event_type(&self) -> &'static str {
        match self {
            IdeaEvent::IdeaCreated { .. } => "IdeaCreated",
            IdeaEvent::IdeaUpdated { .. } => "IdeaUpdated",
            IdeaEvent::IdeaQueued { .. } => "IdeaQueued",
            IdeaEvent::IdeaDeleted { .. } => "IdeaDeleted",
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IdeaError {
    #[error("idea not found")]
    NotFound,
    #[error("idea already exists")]
    AlreadyExists,
    #[error(transparent)]
    Input(#[from] WriterInputError),
    #[error("nothing to change")]
    Empty,
    #[error("the idea is already queued to the writer (task {0})")]
    AlreadyQueued(Uuid),
    #[error("an archived idea cannot be queued; set its status to new first")]
    Archived,
    #[error("status can be set to new, done or archived (queued by queueing the idea)")]
    InvalidStatus,
}

impl DomainError for IdeaError {
    fn code(&self) -> &'static str {
        match self {
            IdeaError::NotFound => "NOT_FOUND",
            IdeaError::AlreadyExists => "ALREADY_EXISTS",
            IdeaError::Input(e) => e.code(),
            IdeaError::Empty => "VALIDATION_ERROR",
            IdeaError::AlreadyQueued(_) => "IDEA_ALREADY_QUEUED",
            IdeaError::Archived => "IDEA_ARCHIVED",
            IdeaError::InvalidStatus => "INVALID_STATUS",
        }
    }
    fn kind(&self) -> ErrorKind {
        match self {
            IdeaError::NotFound => ErrorKind::NotFound,
            IdeaError::AlreadyExists | IdeaError::AlreadyQueued(_) | IdeaError::Archived => {
                ErrorKind::Conflict
            }
            _ => ErrorKind::Validation,
        }
    }
}

impl Aggregate for Idea {
    const TYPE: &'static str = "idea";
    type Command = IdeaCommand;
    type Event = IdeaEvent;
    type Error = IdeaError;

    fn decide(&self, command: IdeaCommand) -> Result<Vec<IdeaEvent>, IdeaError> {
        match command {
            IdeaCommand::Create {
                account_id,
                site_id,
                sector_id,
                idea,
                job_id,
            } => {
                if self.created {
                    return Err(IdeaError::AlreadyExists);
                }
                idea.check()?;
                Ok(vec![IdeaEvent::IdeaCreated {
                    account_id,
                    site_id,
                    sector_id,
                    idea: IdeaData {
                        title: idea.title.trim().to_string(),
                        primary_keyword: idea.primary_keyword.trim().to_string(),
                        ..idea
                    },
                    job_id,
                }])
            }
            IdeaCommand::Update { change } => {
                let data = self.data.as_ref().filter(|_| self.live());
                let data = data.ok_or(IdeaError::NotFound)?;
                if change.is_empty() {
                    return Err(IdeaError::Empty);
                }
                if change.status == Some(IdeaStatus::Queued) {
                    return Err(IdeaError::InvalidStatus);
                }
                data.changed(&change).check()?;
                Ok(vec![IdeaEvent::IdeaUpdated { change }])
            }
            IdeaCommand::Queue { task_id } => {
                if !self.live() {
                    return Err(IdeaError::NotFound);
                }
                if let Some(t) = self.task_id {
                    return Err(IdeaError::AlreadyQueued(t));
                }
                if self.status == IdeaStatus::Archived {
                    return Err(IdeaError::Archived);
                }
                Ok(vec![IdeaEvent::IdeaQueued { task_id }])
            }
            IdeaCommand::Delete => {
                if !self.live() {
                    return Err(IdeaError::NotFound);
                }
                Ok(vec![IdeaEvent::IdeaDeleted {}])
            }
        }
    }

    fn apply(&mut self, event: &IdeaEvent) {
        match event {
            IdeaEvent::IdeaCreated {
                account_id,
                site_id,
                sector_id,
                idea,
                ..
            } => {
                self.created = true;
                self.account_id = Some(*account_id);
                self.site_id = Some(*site_id);
                self.sector_id = Some(*sector_id);
                self.data = Some(idea.clone());
                self.status = IdeaStatus::New;
            }
            IdeaEvent::IdeaUpdated { change } => {
                if let Some(d) = &self.data {
                    self.data = Some(d.changed(change));
                }
                if let Some(s) = change.status {
                    self.status = s;
                }
            }
            IdeaEvent::IdeaQueued { task_id } => {
                self.task_id = Some(*task_id);
                self.status = IdeaStatus::Queued;
            }
            IdeaEvent::IdeaDeleted {} => self.deleted = true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn data() -> IdeaData {
        IdeaData {
            title: "  How to choose trail running shoes ".into(),
            description: "A buyer's guide".into(),
            outline: vec![OutlineSection {
                heading: "Fit first".into(),
                level: 2,
                key_points: vec!["toe box".into()],
            }],
            content_type: ContentType::Guide,
            primary_keyword: "trail running shoes".into(),
            secondary_keywords: vec!["best trail running shoes".into()],
            target_word_count: 1500,
            cluster_id: Some(Uuid::from_u128(9)),
            author_profile_id: None,
            strategy_id: None,
        }
    }

    fn create(d: IdeaData) -> IdeaCommand {
        IdeaCommand::Create {
            account_id: Uuid::nil(),
            site_id: Uuid::nil(),
            sector_id: Uuid::nil(),
            idea: d,
            job_id: None,
        }
    }

    #[test]
    fn an_idea_is_created_once_checked_and_queued_once() {
        let e = crate::given_when::<Idea>(&[], create(data())).unwrap();
        let IdeaEvent::IdeaCreated { idea, .. } = &e[0] else {
            panic!()
        };
        assert_eq!(idea.title, "How to choose trail running shoes");
        assert_eq!(
            crate::given_when::<Idea>(&e, create(data())).unwrap_err(),
            IdeaError::AlreadyExists
        );
        for (bad, code) in [
            (
                IdeaData {
                    title: " ".into(),
                    ..data()
                },
                "INVALID_TITLE",
            ),
            (
                IdeaData {
                    target_word_count: 20_000,
                    ..data()
                },
                "INVALID_WORD_COUNT",
            ),
            (
                IdeaData {
                    outline: vec![OutlineSection {
                        heading: "x".into(),
                        level: 1,
                        key_points: vec![],
                    }],
                    ..data()
                },
                "INVALID_OUTLINE",
            ),
            (
                IdeaData {
                    primary_keyword: "a\u{7}b".into(),
                    ..data()
                },
                "INVALID_KEYWORD",
            ),
        ] {
            assert_eq!(
                crate::given_when::<Idea>(&[], create(bad))
                    .unwrap_err()
                    .code(),
                code
            );
        }
        let t = Uuid::from_u128(5);
        let mut all = e.clone();
        all.extend(crate::given_when::<Idea>(&e, IdeaCommand::Queue { task_id: t }).unwrap());
        assert_eq!(
            crate::given_when::<Idea>(&all, IdeaCommand::Queue { task_id: t }).unwrap_err(),
            IdeaError::AlreadyQueued(t)
        );
        let archived = IdeaChange {
            status: Some(IdeaStatus::Archived),
            ..IdeaChange::default()
        };
        let mut a = e.clone();
        a.extend(crate::given_when::<Idea>(&e, IdeaCommand::Update { change: archived }).unwrap());
        assert_eq!(
            crate::given_when::<Idea>(&a, IdeaCommand::Queue { task_id: t }).unwrap_err(),
            IdeaError::Archived
        );
        a.extend(crate::given_when::<Idea>(&a, IdeaCommand::Delete).unwrap());
        assert_eq!(
            crate::given_when::<Idea>(&a, IdeaCommand::Delete).unwrap_err(),
            IdeaError::NotFound
        );
    }
}
