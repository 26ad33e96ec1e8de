//! Writer context: tasks (one article each), their content with every
//! version, and the cannibalization guard (a keyword is the primary
//! keyword of at most one live task per site unless shared on purpose).
//!
//! - [`task`]: what to write and which generation job writes it now.
//! - [`content`]: the article's versions (AI or human), status, lineage.
//! - [`claim`]: the `primary_keyword` claims behind the guard.
//! - [`settings`]: the account's prompt templates, author profiles and
//!   writing strategies (`writer_settings`, one per account).

mod claim;
mod content;
mod settings;
mod task;

pub use claim::{ClaimError, PrimaryKeyword, PrimaryKeywordCommand, PrimaryKeywordEvent, claim_id};
pub use content::{
    Content, ContentBody, ContentCommand, ContentError, ContentEvent, ContentOrigin, ContentStatus,
    InternalLink, MAX_HTML_CHARS, MAX_LINKS, MAX_META_DESCRIPTION_CHARS, MAX_META_TITLE_CHARS,
    VersionAuthor, content_id,
};
pub use settings::{
    AuthorProfile, MAX_PROFILES, MAX_STRATEGIES, MAX_TEMPLATE_CHARS, PROMPT_TYPES, PromptState,
    SettingsError, WriterSettings, WriterSettingsCommand, WriterSettingsEvent, WritingStrategy,
    default_template, placeholders, render, used_placeholders, valid_language,
};
pub use task::{
    MAX_BRIEF_CHARS, Task, TaskChange, TaskCommand, TaskData, TaskError, TaskEvent, TaskStatus,
};
