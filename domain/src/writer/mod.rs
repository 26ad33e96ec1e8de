//! Writer context: tasks (one article each), their content with every
//! version, and the cannibalization guard (a keyword is the primary
//! keyword of at most one live task per site unless shared on purpose).
//!
//! - [`task`]: what to write and which generation job writes it now.
//! - [`content`]: the article's versions (AI or human), status, lineage.
//! - [`claim`]: the `primary_keyword` claims behind the guard.
//! - [`image`]: an article's image slots (prompts) and the images made
//!   from them.
//! - [`settings`]: the account's prompt templates, author profiles and
//!   writing strategies (`writer_settings`, one per account).

mod claim;
mod content;
mod image;
mod settings;
mod task;

pub use claim::{ClaimError, PrimaryKeyword, PrimaryKeywordCommand, PrimaryKeywordEvent, claim_id};
pub use content::{
    Content, ContentBody, ContentCommand, ContentError, ContentEvent, ContentOrigin, ContentStatus,
    InternalLink, MAX_HTML_CHARS, MAX_LINKS, MAX_META_DESCRIPTION_CHARS, MAX_META_TITLE_CHARS,
    VersionAuthor, content_id,
};
pub use image::{
    ImageError, ImagePrompt, ImagePromptCommand, ImagePromptEvent, ImageQuality, MAX_ALT_CHARS,
    MAX_CAPTION_CHARS, MAX_IN_ARTICLE_IMAGES, MAX_PROMPT_CHARS, PromptChange, PromptOrigin,
    PromptText, StoredImage, image_id, prompt_id,
};
pub use settings::{
    AuthorProfile, MAX_PROFILES, MAX_STRATEGIES, MAX_TEMPLATE_CHARS, PROMPT_TYPES, PromptState,
    SettingsError, WriterSettings, WriterSettingsCommand, WriterSettingsEvent, WritingStrategy,
    default_template, placeholders, render, used_placeholders, valid_language,
};
pub use task::{
    MAX_BRIEF_CHARS, Task, TaskChange, TaskCommand, TaskData, TaskError, TaskEvent, TaskStatus,
};
