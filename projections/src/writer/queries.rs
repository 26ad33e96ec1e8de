//! Task and content lists and details, always scoped to one account.

use crate::sql::Listing;
use chrono::{DateTime, Utc};
use igny8_commands::db::Db;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TaskRow {
    pub task_id: String,
    pub account_id: String,
    pub site_id: String,
    pub sector_id: String,
    pub idea_id: Option<String>,
    pub cluster_id: Option<String>,
    pub title: String,
    pub brief: String,
    pub primary_keyword: String,
    /// JSON `["…"]`.
    pub secondary_keywords: String,
    pub target_word_count: i64,
    pub content_type: String,
    /// JSON `[{heading, level, key_points}]`.
    pub outline: String,
    pub author_profile_id: Option<String>,
    pub strategy_id: Option<String>,
    pub allow_shared_primary: bool,
    pub status: String,
    pub job_id: Option<String>,
    pub content_id: Option<String>,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const TASK_COLUMNS: &str = "task_id, account_id, site_id, sector_id, idea_id, cluster_id, title, brief, \
    primary_keyword, secondary_keywords, target_word_count, content_type, outline, author_profile_id, strategy_id, \
    allow_shared_primary, status, job_id, content_id, error, created_at, updated_at";

pub const TASK_ORDERINGS: &[&str] = &[
    "created_at",
    "updated_at",
    "title",
    "status",
    "target_word_count",
];

#[derive(Debug, Clone, Default)]
pub struct TaskFilter {
    pub site_in: Option<Vec<String>>,
    pub site_id: Option<String>,
    pub sector_id: Option<String>,
    pub cluster_id: Option<String>,
    pub idea_id: Option<String>,
    pub status: Option<String>,
    pub content_type: Option<String>,
    pub search: Option<String>,
    pub ordering: Option<String>,
    pub offset: i64,
    pub limit: i64,
}

pub async fn page_tasks(
    db: &Db,
    account_id: &str,
    f: &TaskFilter,
) -> Result<(Vec<TaskRow>, i64), sqlx::Error> {
    Listing::new("rm_tasks", TASK_COLUMNS, "task_id", account_id)
        .sites(f.site_in.clone())
        .eq("site_id", f.site_id.clone())
        .eq("sector_id", f.sector_id.clone())
        .eq("cluster_id", f.cluster_id.clone())
        .eq("idea_id", f.idea_id.clone())
        .eq("status", f.status.clone())
        .eq("content_type", f.content_type.clone())
        .search(&["title", "primary_keyword"], f.search.clone())
        .page(
            db,
            f.ordering.as_deref(),
            TASK_ORDERINGS,
            "-created_at",
            f.offset,
            f.limit,
        )
        .await
}

pub async fn get_task(db: &Db, account_id: &str, id: &str) -> Result<Option<TaskRow>, sqlx::Error> {
    Listing::new("rm_tasks", TASK_COLUMNS, "task_id", account_id)
        .eq("task_id", Some(id.to_string()))
        .one(db)
        .await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ContentRow {
    pub content_id: String,
    pub account_id: String,
    pub site_id: String,
    pub sector_id: String,
    pub task_id: String,
    pub idea_id: Option<String>,
    pub cluster_id: Option<String>,
    pub status: String,
    pub version: i64,
    pub title: String,
    pub html_content: String,
    pub meta_title: String,
    pub meta_description: String,
    pub word_count: i64,
    pub primary_keyword: String,
    /// JSON `["…"]`.
    pub secondary_keywords: String,
    /// JSON `[{content_id, keyword}]`.
    pub internal_links: String,
    /// JSON of the version's author.
    pub author: String,
    pub featured_image_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const CONTENT_COLUMNS: &str = "content_id, account_id, site_id, sector_id, task_id, idea_id, cluster_id, status, \
    version, title, html_content, meta_title, meta_description, word_count, primary_keyword, secondary_keywords, \
    internal_links, author, featured_image_id, created_at, updated_at";

pub const CONTENT_ORDERINGS: &[&str] = &[
    "created_at",
    "updated_at",
    "title",
    "word_count",
    "status",
    "version",
];

#[derive(Debug, Clone, Default)]
pub struct ContentFilter {
    pub site_in: Option<Vec<String>>,
    pub site_id: Option<String>,
    pub sector_id: Option<String>,
    pub status: Option<String>,
    pub task_id: Option<String>,
    pub cluster_id: Option<String>,
    pub search: Option<String>,
    pub ordering: Option<String>,
    pub offset: i64,
    pub limit: i64,
}

pub async fn page_content(
    db: &Db,
    account_id: &str,
    f: &ContentFilter,
) -> Result<(Vec<ContentRow>, i64), sqlx::Error> {
    Listing::new("rm_content", CONTENT_COLUMNS, "content_id", account_id)
        .sites(f.site_in.clone())
        .eq("site_id", f.site_id.clone())
        .eq("sector_id", f.sector_id.clone())
        .eq("status", f.status.clone())
        .eq("task_id", f.task_id.clone())
        .eq("cluster_id", f.cluster_id.clone())
        .search(&["title", "primary_keyword"], f.search.clone())
        .page(
            db,
            f.ordering.as_deref(),
            CONTENT_ORDERINGS,
            "-created_at",
            f.offset,
            f.limit,
        )
        .await
}

pub async fn get_content(
    db: &Db,
    account_id: &str,
    id: &str,
) -> Result<Option<ContentRow>, sqlx::Error> {
    Listing::new("rm_content", CONTENT_COLUMNS, "content_id", account_id)
        .eq("content_id", Some(id.to_string()))
        .one(db)
        .await
}
