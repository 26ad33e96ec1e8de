//! Writer use cases: tasks (one article each), content generation jobs,
//! the content's versions (edit, revert, status, regenerate), and what the
//! generation workers commit per article.
//!
//! - [`tasks`]: create, change, delete tasks; start `auto_generate_content`
//!   (one job, one reservation per task).
//! - [`content`]: human edits, reverts, status, regenerate, versions read
//!   back from the content's events.
//! - [`generation`]: the per-article commit of a content job (the version,
//!   the task's completion and the article's charge together) and its
//!   failure (the task failed, its reservation released).
//! - [`images`]: image prompts extracted from articles, image jobs, the
//!   per-image commit (stored and charged together) and the version that
//!   places the images.
//! - [`html`]: sanitising and counting the untrusted HTML.
//!
//! The cannibalization guard: a task's primary keyword is claimed
//! (`primary_keyword` aggregate) in the task's own commit.

pub mod content;
pub mod generation;
pub mod html;
pub mod images;
pub mod settings;
pub mod tasks;

pub use content::{
    ContentEdit, ContentSaved, DiffLine, VersionDiff, VersionView, content_scope, diff,
    edit_content, regenerate, revert, set_status, version, version_pair, versions,
};
pub use generation::{fail_article, save_article, settle_items};
pub use tasks::{
    ContentJob, MAX_GENERATE_TASKS, NewTask, TaskSaved, TaskUpdate, auto_generate_content,
    create_task, delete_task, task_scope, update_task,
};

use crate::bus::{CommandBus, CommandError};
use async_trait::async_trait;
use uuid::Uuid;

/// Another content of the site an article may link to.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkTarget {
    pub content_id: Uuid,
    pub title: String,
    pub primary_keyword: String,
}

/// The read-model look-ups of the writer's use cases and workers
/// (implemented by `igny8_projections::writer::Lookup`).
#[async_trait]
pub trait WriterLookup: Send + Sync {
    /// The contents of a site (for internal links), newest first, at most `limit`.
    async fn site_contents(
        &self,
        account_id: Uuid,
        site_id: Uuid,
        limit: usize,
    ) -> Result<Vec<LinkTarget>, CommandError>;
}

/// What the writer's use cases work with.
#[derive(Clone, Copy)]
pub struct Writer<'a> {
    pub bus: &'a CommandBus,
    pub planner: &'a dyn crate::planner::PlannerLookup,
}
