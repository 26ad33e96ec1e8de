//! Automation: rules that run the pipeline (cluster → ideas → tasks →
//! articles → images → WordPress) on a schedule, on events or by hand,
//! exactly once per firing and within a credit budget.
//!
//! - [`rule`]: the `automation_rule` aggregate — what to run, when, under
//!   which conditions and budgets — and the schedule cursor that makes a
//!   slot (rule + scheduled instant) fire at most once: firing is a
//!   command on the rule, refused for a slot it has handled.
//! - [`run`]: the `automation_run` aggregate — one firing, its stages,
//!   the items each stage took (once: a stage's items are recorded before
//!   its job is launched, and never chosen again), its jobs and credits.
//! - [`lock`]: the `automation_site` aggregate — one run per site at a time.
//! - [`schedule`]: cron expressions in a time zone, publish slots.

pub mod lock;
pub mod rule;
pub mod run;
pub mod schedule;

pub use lock::{SiteLock, SiteLockCommand, SiteLockEvent};
pub use rule::{Firing, Rule, RuleCommand, RuleEvent, RuleStatus};
pub use run::{
    Run, RunCommand, RunEvent, RunOutcome, RunStatus, SkippedItem, StageState, StageStatus,
};

use crate::{DomainError, ErrorKind};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Rules per account at most.
pub const MAX_RULES: usize = 200;
/// Stages of a rule at most.
pub const MAX_STAGES: usize = 10;
/// Conditions of a rule at most.
pub const MAX_CONDITIONS: usize = 20;
/// Event types an event trigger may list at most.
pub const MAX_EVENT_TYPES: usize = 20;
/// Longest debounce window of an event trigger (seconds): a day.
pub const MAX_DEBOUNCE_SECONDS: u32 = 86_400;
/// Default debounce window (seconds).
pub const DEFAULT_DEBOUNCE_SECONDS: u32 = 60;

/// The event types of the catalogue (`schema/events/`; a test keeps the
/// two equal): what an event trigger may name.
pub const EVENT_TYPES: &[&str] = &[
    "AccountOpened",
    "ApiKeyCreated",
    "ApiKeyRevoked",
    "ApiKeyUsed",
    "AuthorProfileDeleted",
    "AuthorProfileSaved",
    "ClusterDeleted",
    "ClusterRenamed",
    "ClusterSplit",
    "ClustersAssigned",
    "ClustersMerged",
    "ContentCreated",
    "ContentStatusChanged",
    "ContentVersionAdded",
    "CreditsCaptured",
    "CreditsGranted",
    "CreditsReserved",
    "CreditsSpent",
    "ExternalChangeDetected",
    "IdeaCreated",
    "IdeaDeleted",
    "IdeaQueued",
    "IdeaUpdated",
    "ImageFailed",
    "ImageGenerationStarted",
    "ImagePromptCreated",
    "ImagePromptDeleted",
    "ImagePromptEdited",
    "ImagePromptExtracted",
    "ImageRequested",
    "ImageStored",
    "IntegrationConfigured",
    "IntegrationRemoved",
    "JobCancelled",
    "JobCreated",
    "JobFailed",
    "JobProgressed",
    "JobStarted",
    "JobSucceeded",
    "KeywordSetOpened",
    "KeywordUpdated",
    "KeywordsAdded",
    "KeywordsDeleted",
    "KeywordsMoved",
    "LoginClaimed",
    "LoginFailed",
    "LoginReleased",
    "MediaUploadRequested",
    "MediaUploaded",
    "PlanChanged",
    "PostCreateRequested",
    "PostPublished",
    "PostUnpublished",
    "PrimaryKeywordClaimed",
    "PrimaryKeywordReleased",
    "PromptChanged",
    "PublishFailed",
    "PublishOutcomeUnknown",
    "PublishStarted",
    "ReservationReleased",
    "ReservationTransferred",
    "RuleCreated",
    "RuleDeleted",
    "RuleFired",
    "RulePaused",
    "RuleResumed",
    "RuleUpdated",
    "RunBudgetReturned",
    "RunCancelled",
    "RunFinished",
    "RunSkipped",
    "RunStarted",
    "SectorCreated",
    "SectorDeleted",
    "SectorUpdated",
    "SessionRefreshed",
    "SessionRevoked",
    "SessionStarted",
    "SiteCreated",
    "SiteDeleted",
    "SiteLockAcquired",
    "SiteLockReleased",
    "SiteUpdated",
    "SlotsSkipped",
    "StageCompleted",
    "StageFailed",
    "StageItemsDropped",
    "StageItemsSelected",
    "StageJobLaunched",
    "StrategyDeleted",
    "StrategySaved",
    "SubscriptionStarted",
    "TaskCompleted",
    "TaskCreated",
    "TaskDeleted",
    "TaskFailed",
    "TaskGenerationStarted",
    "TaskPublished",
    "TaskUpdated",
    "TenantCreated",
    "UserCredentialChanged",
    "UserDeleted",
    "UserRegistered",
    "UserRenamed",
    "UserRoleChanged",
    "UserSitesSet",
    "WordPressConnected",
    "WordPressConnectionChanged",
    "WordPressConnectionTested",
    "WordPressDisconnected",
];

/// When a rule fires.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Trigger {
    /// A 5-field cron expression, read in the rule's time zone.
    Schedule { cron: String },
    /// Events of the catalogue on the rule's site (or account); a burst
    /// fires once, `debounce_seconds` after its last event.
    Event {
        event_types: Vec<String>,
        #[serde(default = "default_debounce")]
        debounce_seconds: u32,
    },
    /// Only by `POST …/execute/`.
    Manual,
}

fn default_debounce() -> u32 {
    DEFAULT_DEBOUNCE_SECONDS
}

impl Trigger {
    pub fn kind(&self) -> &'static str {
        match self {
            Trigger::Schedule { .. } => "schedule",
            Trigger::Event { .. } => "event",
            Trigger::Manual => "manual",
        }
    }
}

/// What a firing does with slots it missed while nothing ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CatchUp {
    /// One run for all the slots missed (the latest of them).
    #[default]
    Once,
    /// Missed slots are skipped; only a slot still on time fires.
    Skip,
}

/// A slot is on time this long after it (later: missed).
pub const ON_TIME_SECONDS: i64 = 120;

/// The value a condition reads, and its type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    Number,
    Text,
}

/// The fields a condition may read: counts of the site's read models, the
/// account's available credits, and what fired the rule.
pub const CONDITION_FIELDS: &[(&str, FieldType)] = &[
    ("keywords", FieldType::Number),
    ("unclustered_keywords", FieldType::Number),
    ("clusters", FieldType::Number),
    ("new_ideas", FieldType::Number),
    ("queued_tasks", FieldType::Number),
    ("draft_content", FieldType::Number),
    ("review_content", FieldType::Number),
    ("approved_content", FieldType::Number),
    ("published_content", FieldType::Number),
    ("available_credits", FieldType::Number),
    ("trigger", FieldType::Text),
    ("event_type", FieldType::Text),
    ("site_industry", FieldType::Text),
];

pub const OPERATORS: &[&str] = &[
    "equals",
    "not_equals",
    "gt",
    "gte",
    "lt",
    "lte",
    "in",
    "contains",
];

/// `field operator value`, e.g. `unclustered_keywords gte 50`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Condition {
    pub field: String,
    pub operator: String,
    pub value: Value,
}

impl Condition {
    pub fn check(&self) -> Result<(), AutomationError> {
        let Some((_, ty)) = CONDITION_FIELDS.iter().find(|(f, _)| *f == self.field) else {
            return Err(AutomationError::Invalid(
                "UNKNOWN_FIELD",
                format!(
                    "unknown condition field {:?}: one of {}",
                    self.field,
                    CONDITION_FIELDS
                        .iter()
                        .map(|(f, _)| *f)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        };
        if !OPERATORS.contains(&self.operator.as_str()) {
            return Err(AutomationError::Invalid(
                "UNKNOWN_OPERATOR",
                format!(
                    "unknown operator {:?}: one of {}",
                    self.operator,
                    OPERATORS.join(", ")
                ),
            ));
        }
        let bad = |why: &str| {
            Err(AutomationError::Invalid(
                "INVALID_CONDITION",
                format!("{} {} …: {why}", self.field, self.operator),
            ))
        };
        let scalar_ok = |v: &Value| match ty {
            FieldType::Number => v.as_f64().is_some_and(f64::is_finite),
            FieldType::Text => v.as_str().is_some_and(|s| s.chars().count() <= 200),
        };
        match (self.operator.as_str(), ty) {
            ("in", _) => match self.value.as_array() {
                Some(a) if !a.is_empty() && a.len() <= 50 && a.iter().all(scalar_ok) => Ok(()),
                _ => bad("`in` takes a list of 1 to 50 values of the field's type"),
            },
            ("contains", FieldType::Number) => bad("`contains` reads text fields only"),
            ("gt" | "gte" | "lt" | "lte", FieldType::Text) => {
                bad("comparisons read number fields only")
            }
            _ if scalar_ok(&self.value) => Ok(()),
            (_, FieldType::Number) => bad("the value must be a number"),
            (_, FieldType::Text) => bad("the value must be text (at most 200 characters)"),
        }
    }

    /// Whether the condition holds for the value read (`None`: no value).
    pub fn holds(&self, actual: &Value) -> bool {
        let num = |v: &Value| v.as_f64();
        let eq = |a: &Value, b: &Value| match (num(a), num(b)) {
            (Some(x), Some(y)) => x == y,
            _ => a.as_str().is_some() && a.as_str() == b.as_str(),
        };
        let cmp = |f: fn(f64, f64) -> bool| match (num(actual), num(&self.value)) {
            (Some(x), Some(y)) => f(x, y),
            _ => false,
        };
        match self.operator.as_str() {
            "equals" => eq(actual, &self.value),
            "not_equals" => !eq(actual, &self.value),
            "gt" => cmp(|x, y| x > y),
            "gte" => cmp(|x, y| x >= y),
            "lt" => cmp(|x, y| x < y),
            "lte" => cmp(|x, y| x <= y),
            "in" => self
                .value
                .as_array()
                .is_some_and(|a| a.iter().any(|v| eq(actual, v))),
            "contains" => match (actual.as_str(), self.value.as_str()) {
                (Some(a), Some(b)) => a.to_lowercase().contains(&b.to_lowercase()),
                _ => false,
            },
            _ => false,
        }
    }
}

/// What a stage does: the same jobs as the HTTP routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    AutoCluster,
    GenerateIdeas,
    QueueIdeasToWriter,
    GenerateContent,
    ExtractImagePrompts,
    GenerateImages,
    Publish,
}

impl Action {
    pub const ALL: [Action; 7] = [
        Action::AutoCluster,
        Action::GenerateIdeas,
        Action::QueueIdeasToWriter,
        Action::GenerateContent,
        Action::ExtractImagePrompts,
        Action::GenerateImages,
        Action::Publish,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::AutoCluster => "auto_cluster",
            Action::GenerateIdeas => "generate_ideas",
            Action::QueueIdeasToWriter => "queue_ideas_to_writer",
            Action::GenerateContent => "generate_content",
            Action::ExtractImagePrompts => "extract_image_prompts",
            Action::GenerateImages => "generate_images",
            Action::Publish => "publish",
        }
    }

    pub fn parse(s: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// The largest batch one stage of this action takes (the route's limit).
    pub fn max_batch(self) -> u32 {
        match self {
            Action::AutoCluster => 50_000,
            Action::GenerateIdeas => 50,
            Action::QueueIdeasToWriter => 100,
            Action::GenerateContent => 100,
            Action::ExtractImagePrompts => 100,
            Action::GenerateImages => 500,
            Action::Publish => 100,
        }
    }

    /// The batch when a stage names none.
    pub fn default_batch(self) -> u32 {
        match self {
            Action::AutoCluster => 1_000,
            Action::GenerateIdeas => 10,
            Action::GenerateImages => 50,
            _ => 10,
        }
    }

    /// The kind of item the stage takes, and the kind it produces (what
    /// the next stage can take from it).
    pub fn takes(self) -> Item {
        match self {
            Action::AutoCluster => Item::Keyword,
            Action::GenerateIdeas => Item::Cluster,
            Action::QueueIdeasToWriter => Item::Idea,
            Action::GenerateContent => Item::Task,
            Action::ExtractImagePrompts => Item::Content,
            Action::GenerateImages => Item::Prompt,
            Action::Publish => Item::Content,
        }
    }
    pub fn makes(self) -> Item {
        match self {
            Action::AutoCluster => Item::Cluster,
            Action::GenerateIdeas => Item::Idea,
            Action::QueueIdeasToWriter => Item::Task,
            Action::GenerateContent => Item::Content,
            Action::ExtractImagePrompts => Item::Prompt,
            Action::GenerateImages => Item::Content,
            Action::Publish => Item::Publication,
        }
    }
}

/// Kinds of items stages take and make.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Item {
    Keyword,
    Cluster,
    Idea,
    Task,
    Content,
    Prompt,
    Publication,
}

/// One stage of a rule: an action, its batch and its settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stage {
    pub action: Action,
    pub batch_size: u32,
    /// The action's settings (checked by [`Stage::check`]).
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub params: Value,
}

/// The settings each action accepts.
fn allowed_params(a: Action) -> &'static [&'static str] {
    match a {
        Action::AutoCluster => &["strategy", "num_clusters"],
        Action::GenerateIdeas => &["ideas_per_cluster", "strategy_id", "author_profile_id"],
        Action::QueueIdeasToWriter => &[],
        Action::GenerateContent => &[],
        Action::ExtractImagePrompts => &["in_article_images"],
        Action::GenerateImages => &["size", "quality"],
        Action::Publish => &["status", "categories", "tags", "slots"],
    }
}

impl Stage {
    pub fn check(&self) -> Result<(), AutomationError> {
        let a = self.action;
        if self.batch_size == 0 || self.batch_size > a.max_batch() {
            return Err(AutomationError::Invalid(
                "INVALID_BATCH_SIZE",
                format!(
                    "batch_size of {} must be 1 to {}",
                    a.as_str(),
                    a.max_batch()
                ),
            ));
        }
        let p = match &self.params {
            Value::Null => return Ok(()),
            Value::Object(p) => p,
            _ => {
                return Err(invalid_param(a, "params must be an object"));
            }
        };
        for k in p.keys() {
            if !allowed_params(a).contains(&k.as_str()) {
                return Err(invalid_param(
                    a,
                    &format!(
                        "unknown setting {k:?} (it takes: {})",
                        allowed_params(a).join(", ")
                    ),
                ));
            }
        }
        let uint = |k: &str, lo: u64, hi: u64| -> Result<(), AutomationError> {
            match p.get(k) {
                None | Some(Value::Null) => Ok(()),
                Some(v) if v.as_u64().is_some_and(|n| (lo..=hi).contains(&n)) => Ok(()),
                Some(_) => Err(invalid_param(a, &format!("{k} must be {lo} to {hi}"))),
            }
        };
        let one_of = |k: &str, allowed: &[&str]| -> Result<(), AutomationError> {
            match p.get(k) {
                None | Some(Value::Null) => Ok(()),
                Some(v) if v.as_str().is_some_and(|s| allowed.contains(&s)) => Ok(()),
                Some(_) => Err(invalid_param(
                    a,
                    &format!("{k} must be one of {}", allowed.join(", ")),
                )),
            }
        };
        let uuid = |k: &str| -> Result<(), AutomationError> {
            match p.get(k) {
                None | Some(Value::Null) => Ok(()),
                Some(v) if v.as_str().is_some_and(|s| uuid::Uuid::parse_str(s).is_ok()) => Ok(()),
                Some(_) => Err(invalid_param(a, &format!("{k} must be an id"))),
            }
        };
        match a {
            Action::AutoCluster => {
                one_of("strategy", &["offline", "embeddings", "llm"])?;
                uint("num_clusters", 1, 1000)?;
            }
            Action::GenerateIdeas => {
                uint("ideas_per_cluster", 1, 10)?;
                uuid("strategy_id")?;
                uuid("author_profile_id")?;
            }
            Action::ExtractImagePrompts => uint("in_article_images", 0, 6)?,
            Action::GenerateImages => {
                one_of("quality", &["basic", "premium"])?;
                match p.get("size") {
                    None | Some(Value::Null) => {}
                    Some(v) if v.as_str().is_some_and(valid_size) => {}
                    Some(_) => {
                        return Err(invalid_param(
                            a,
                            "size must be WIDTHxHEIGHT, each 256 to 2048",
                        ));
                    }
                }
            }
            Action::Publish => {
                one_of(
                    "status",
                    &["draft", "publish", "future", "pending", "private"],
                )?;
                for k in ["categories", "tags"] {
                    match p.get(k) {
                        None | Some(Value::Null) => {}
                        Some(Value::Array(v))
                            if v.len() <= 20
                                && v.iter().all(|t| {
                                    t.as_str().is_some_and(|s| {
                                        let n = s.trim().chars().count();
                                        (1..=200).contains(&n)
                                    })
                                }) => {}
                        Some(_) => {
                            return Err(invalid_param(
                                a,
                                &format!("{k} must be at most 20 names of 1 to 200 characters"),
                            ));
                        }
                    }
                }
                match p.get("slots") {
                    None | Some(Value::Null) => {}
                    Some(Value::Array(v))
                        if !v.is_empty()
                            && v.len() <= 24
                            && v.iter()
                                .all(|t| t.as_str().and_then(schedule::parse_hhmm).is_some()) => {}
                    Some(_) => {
                        return Err(invalid_param(
                            a,
                            "slots must be 1 to 24 times of day as \"HH:MM\"",
                        ));
                    }
                }
            }
            Action::QueueIdeasToWriter | Action::GenerateContent => {}
        }
        Ok(())
    }

    /// A setting as text.
    pub fn text(&self, k: &str) -> Option<&str> {
        self.params.get(k).and_then(Value::as_str)
    }
    /// A setting as a number.
    pub fn number(&self, k: &str) -> Option<u64> {
        self.params.get(k).and_then(Value::as_u64)
    }
    /// A setting as a list of text.
    pub fn list(&self, k: &str) -> Vec<String> {
        self.params
            .get(k)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(|s| s.trim().to_string()))
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn valid_size(s: &str) -> bool {
    let Some((w, h)) = s.split_once('x') else {
        return false;
    };
    [w, h]
        .iter()
        .all(|n| n.parse::<u32>().is_ok_and(|n| (256..=2048).contains(&n)))
}

fn invalid_param(a: Action, why: &str) -> AutomationError {
    AutomationError::Invalid("INVALID_PARAMS", format!("{}: {why}", a.as_str()))
}

/// Everything a rule says (what its create and update carry).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleDef {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub trigger: Trigger,
    /// IANA time zone of the cron, the publish slots and the daily budget.
    pub timezone: String,
    #[serde(default)]
    pub conditions: Vec<Condition>,
    pub stages: Vec<Stage>,
    /// Hard cap of a run, in milli-credits (reserved when the run starts).
    pub max_credits_per_run: i64,
    /// Cap of all runs of a day (in the rule's time zone), milli-credits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_credits_per_day: Option<i64>,
    #[serde(default)]
    pub catch_up: CatchUp,
}

/// The largest cap a rule may set: 10^9 credits.
pub const MAX_CAP_MILLI: i64 = 1_000_000_000 * crate::billing::MILLI;

impl RuleDef {
    /// Every rule of a rule: name, trigger, time zone, conditions, stages,
    /// budgets. `event_types`: the catalogue's event types.
    pub fn check(&self, event_types: &[&str]) -> Result<(), AutomationError> {
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
            return Err(AutomationError::Invalid(
                "INVALID_NAME",
                "name must be 1 to 200 characters".into(),
            ));
        }
        if self.description.chars().count() > 2000 {
            return Err(AutomationError::Invalid(
                "VALIDATION_ERROR",
                "description is at most 2,000 characters".into(),
            ));
        }
        let tz = schedule::zone(&self.timezone)?;
        match &self.trigger {
            Trigger::Schedule { cron } => {
                schedule::Schedule::new(cron, tz)?;
            }
            Trigger::Event {
                event_types: types,
                debounce_seconds,
            } => {
                if types.is_empty() || types.len() > MAX_EVENT_TYPES {
                    return Err(AutomationError::Invalid(
                        "UNKNOWN_EVENT_TYPE",
                        format!("an event trigger lists 1 to {MAX_EVENT_TYPES} event types"),
                    ));
                }
                if let Some(t) = types.iter().find(|t| !event_types.contains(&t.as_str())) {
                    return Err(AutomationError::Invalid(
                        "UNKNOWN_EVENT_TYPE",
                        format!("{t:?} is not an event type of the catalogue (docs/events.md)"),
                    ));
                }
                if *debounce_seconds > MAX_DEBOUNCE_SECONDS {
                    return Err(AutomationError::Invalid(
                        "VALIDATION_ERROR",
                        format!("debounce_seconds is 0 to {MAX_DEBOUNCE_SECONDS}"),
                    ));
                }
            }
            Trigger::Manual => {}
        }
        if self.conditions.len() > MAX_CONDITIONS {
            return Err(AutomationError::Invalid(
                "VALIDATION_ERROR",
                format!("at most {MAX_CONDITIONS} conditions"),
            ));
        }
        for c in &self.conditions {
            c.check()?;
        }
        if self.stages.is_empty() || self.stages.len() > MAX_STAGES {
            return Err(AutomationError::Invalid(
                "INVALID_STAGES",
                format!("a rule has 1 to {MAX_STAGES} stages"),
            ));
        }
        for s in &self.stages {
            s.check()?;
        }
        let cap_ok = |v: i64| (0..=MAX_CAP_MILLI).contains(&v);
        if !cap_ok(self.max_credits_per_run) {
            return Err(AutomationError::Invalid(
                "INVALID_BUDGET",
                "max_credits_per_run must be 0 to 10^9 credits".into(),
            ));
        }
        if let Some(d) = self.max_credits_per_day
            && !cap_ok(d)
        {
            return Err(AutomationError::Invalid(
                "INVALID_BUDGET",
                "max_credits_per_day must be 0 to 10^9 credits".into(),
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AutomationError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{1}")]
    Invalid(&'static str, String),
    #[error("already exists")]
    AlreadyExists,
    #[error("the rule is paused")]
    Paused,
    #[error("the rule was deleted")]
    Deleted,
    #[error("this slot was handled already")]
    SlotHandled,
    #[error("the site runs another automation run ({0})")]
    SiteBusy(uuid::Uuid),
    #[error("the run has ended ({0})")]
    Finished(String),
    #[error("{0}")]
    Conflict(String),
}

impl DomainError for AutomationError {
    fn code(&self) -> &'static str {
        match self {
            AutomationError::NotFound(_) => "NOT_FOUND",
            AutomationError::Invalid(c, _) => c,
            AutomationError::AlreadyExists => "ALREADY_EXISTS",
            AutomationError::Paused => "RULE_PAUSED",
            AutomationError::Deleted => "NOT_FOUND",
            AutomationError::SlotHandled => "SLOT_HANDLED",
            AutomationError::SiteBusy(_) => "SITE_BUSY",
            AutomationError::Finished(_) => "RUN_FINISHED",
            AutomationError::Conflict(_) => "RUN_CONFLICT",
        }
    }
    fn kind(&self) -> ErrorKind {
        match self {
            AutomationError::NotFound(_) | AutomationError::Deleted => ErrorKind::NotFound,
            AutomationError::Invalid(..) => ErrorKind::Validation,
            _ => ErrorKind::Conflict,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn def() -> RuleDef {
        RuleDef {
            name: "Daily".into(),
            description: String::new(),
            trigger: Trigger::Schedule {
                cron: "0 9 * * *".into(),
            },
            timezone: "Europe/Berlin".into(),
            conditions: vec![Condition {
                field: "unclustered_keywords".into(),
                operator: "gte".into(),
                value: json!(50),
            }],
            stages: vec![Stage {
                action: Action::AutoCluster,
                batch_size: 1000,
                params: Value::Null,
            }],
            max_credits_per_run: 100_000,
            max_credits_per_day: None,
            catch_up: CatchUp::Once,
        }
    }

    #[test]
    fn a_rule_is_checked_whole() {
        assert!(def().check(&["KeywordsAdded"]).is_ok());
        let code = |d: RuleDef| def_code(d.check(&["KeywordsAdded"]));
        let mut d = def();
        d.trigger = Trigger::Schedule {
            cron: "61 * * * *".into(),
        };
        assert_eq!(code(d), "INVALID_CRON");
        let mut d = def();
        d.trigger = Trigger::Schedule {
            cron: "0 0 30 2 *".into(),
        };
        assert_eq!(code(d), "CRON_NEVER_FIRES");
        let mut d = def();
        d.timezone = "Mars/Olympus".into();
        assert_eq!(code(d), "UNKNOWN_TIMEZONE");
        let mut d = def();
        d.trigger = Trigger::Event {
            event_types: vec!["Nope".into()],
            debounce_seconds: 5,
        };
        assert_eq!(code(d), "UNKNOWN_EVENT_TYPE");
        let mut d = def();
        d.conditions[0].field = "mood".into();
        assert_eq!(code(d), "UNKNOWN_FIELD");
        let mut d = def();
        d.conditions[0].operator = "approx".into();
        assert_eq!(code(d), "UNKNOWN_OPERATOR");
        let mut d = def();
        d.conditions[0].operator = "contains".into();
        assert_eq!(code(d), "INVALID_CONDITION");
        let mut d = def();
        d.stages[0].batch_size = 0;
        assert_eq!(code(d), "INVALID_BATCH_SIZE");
        let mut d = def();
        d.stages[0].params = json!({"num_clusters": 0});
        assert_eq!(code(d), "INVALID_PARAMS");
        let mut d = def();
        d.stages = vec![Stage {
            action: Action::Publish,
            batch_size: 2,
            params: json!({"slots": ["09:00", "25:00"]}),
        }];
        assert_eq!(code(d), "INVALID_PARAMS");
        let mut d = def();
        d.stages.clear();
        assert_eq!(code(d), "INVALID_STAGES");
        let mut d = def();
        d.max_credits_per_run = -1;
        assert_eq!(code(d), "INVALID_BUDGET");
    }

    fn def_code(r: Result<(), AutomationError>) -> &'static str {
        r.err().map(|e| e.code()).unwrap_or("OK")
    }

    #[test]
    fn conditions_compare_by_type() {
        let c = |f: &str, o: &str, v: Value| Condition {
            field: f.into(),
            operator: o.into(),
            value: v,
        };
        assert!(c("new_ideas", "gt", json!(0)).holds(&json!(3)));
        assert!(!c("new_ideas", "gt", json!(0)).holds(&json!(0)));
        assert!(c("queued_tasks", "in", json!([1, 2])).holds(&json!(2)));
        assert!(c("trigger", "equals", json!("event")).holds(&json!("event")));
        assert!(c("event_type", "contains", json!("keyword")).holds(&json!("KeywordsAdded")));
        assert!(c("available_credits", "lte", json!(10.5)).holds(&json!(10.5)));
        assert!(!c("available_credits", "lte", json!(10)).holds(&Value::Null));
    }
}
