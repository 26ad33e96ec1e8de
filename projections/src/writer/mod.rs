//! Writer read models: `rm_tasks` (one row per live task: what to write,
//! its status, the job writing it, its content) and `rm_content` (one row
//! per content: its current version, status and who made that version).
//! The versions themselves are read from the content's events
//! (`igny8_commands::writer::versions`): the log is their store.

pub mod images;
mod lookup;
mod queries;

pub use lookup::Lookup;
pub use queries::*;

use crate::projection::{Applied, Index, Projection, Table, decode_until};
use crate::sql::{Val, exec, insert, json, update};
use async_trait::async_trait;
use igny8_commands::db::DbTx;
use igny8_commands::{DecodeError, StoredEvent};
use igny8_domain::Aggregate;
use igny8_domain::tenancy::{Tenant, TenantEvent};
use igny8_domain::writer::{Content, ContentEvent, Task, TaskEvent, VersionAuthor};
use uuid::Uuid;

pub struct WriterProjection;

pub const NAME: &str = "writer";

const TABLES: &[Table] = &[
    Table {
        name: "rm_tasks",
        postgres: "CREATE TABLE IF NOT EXISTS {t} (task_id text COLLATE \"C\" PRIMARY KEY,
            account_id text COLLATE \"C\" NOT NULL, site_id text COLLATE \"C\" NOT NULL, sector_id text COLLATE \"C\" NOT NULL,
            idea_id text, cluster_id text, title text NOT NULL, brief text NOT NULL, primary_keyword text NOT NULL,
            secondary_keywords text NOT NULL, target_word_count bigint NOT NULL, content_type text NOT NULL,
            outline text NOT NULL, author_profile_id text, strategy_id text, allow_shared_primary boolean NOT NULL,
            status text NOT NULL, job_id text, content_id text, error text,
            created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL)",
        sqlite: "CREATE TABLE IF NOT EXISTS {t} (task_id TEXT PRIMARY KEY, account_id TEXT NOT NULL, site_id TEXT NOT NULL,
            sector_id TEXT NOT NULL, idea_id TEXT, cluster_id TEXT, title TEXT NOT NULL, brief TEXT NOT NULL,
            primary_keyword TEXT NOT NULL, secondary_keywords TEXT NOT NULL, target_word_count INTEGER NOT NULL,
            content_type TEXT NOT NULL, outline TEXT NOT NULL, author_profile_id TEXT, strategy_id TEXT,
            allow_shared_primary INTEGER NOT NULL, status TEXT NOT NULL, job_id TEXT, content_id TEXT, error TEXT,
            created_at TEXT NOT NULL, updated_at TEXT NOT NULL)",
        indexes: &[
            Index { name: "rm_tasks_account_idx", columns: "account_id, created_at" },
            Index { name: "rm_tasks_sector_idx", columns: "sector_id" },
        ],
    },
    Table {
        name: "rm_content",
        postgres: "CREATE TABLE IF NOT EXISTS {t} (content_id text COLLATE \"C\" PRIMARY KEY,
            account_id text COLLATE \"C\" NOT NULL, site_id text COLLATE \"C\" NOT NULL, sector_id text COLLATE \"C\" NOT NULL,
            task_id text NOT NULL, idea_id text, cluster_id text, status text NOT NULL, version bigint NOT NULL,
            title text NOT NULL, html_content text NOT NULL, meta_title text NOT NULL, meta_description text NOT NULL,
            word_count bigint NOT NULL, primary_keyword text NOT NULL, secondary_keywords text NOT NULL,
            internal_links text NOT NULL, author text NOT NULL, featured_image_id text,
            created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL)",
        sqlite: "CREATE TABLE IF NOT EXISTS {t} (content_id TEXT PRIMARY KEY, account_id TEXT NOT NULL, site_id TEXT NOT NULL,
            sector_id TEXT NOT NULL, task_id TEXT NOT NULL, idea_id TEXT, cluster_id TEXT, status TEXT NOT NULL,
            version INTEGER NOT NULL, title TEXT NOT NULL, html_content TEXT NOT NULL, meta_title TEXT NOT NULL,
            meta_description TEXT NOT NULL, word_count INTEGER NOT NULL, primary_keyword TEXT NOT NULL,
            secondary_keywords TEXT NOT NULL, internal_links TEXT NOT NULL, author TEXT NOT NULL,
            featured_image_id TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL)",
        indexes: &[
            Index { name: "rm_content_account_idx", columns: "account_id, created_at" },
            Index { name: "rm_content_site_idx", columns: "site_id" },
            Index { name: "rm_content_task_idx", columns: "task_id" },
        ],
    },
];

/// The sectors a tenancy event deletes (their planner and writer rows go with them).
pub(crate) fn deleted_sectors(e: &TenantEvent) -> Vec<String> {
    match e {
        TenantEvent::SectorDeleted { sector_id, .. } => vec![sector_id.to_string()],
        TenantEvent::SiteDeleted { sector_ids, .. } => {
            sector_ids.iter().map(Uuid::to_string).collect()
        }
        _ => vec![],
    }
}

enum Input {
    Tenant(TenantEvent),
    Task(TaskEvent),
    Content(ContentEvent),
}

fn decode(ev: &StoredEvent) -> Result<Option<Input>, DecodeError> {
    Ok(Some(match ev.aggregate_type.as_str() {
        Tenant::TYPE => Input::Tenant(ev.decode()?),
        Task::TYPE => Input::Task(ev.decode()?),
        Content::TYPE => Input::Content(ev.decode()?),
        _ => return Ok(None),
    }))
}

#[async_trait]
impl Projection for WriterProjection {
    fn name(&self) -> &'static str {
        NAME
    }
    fn tables(&self) -> &'static [Table] {
        TABLES
    }
    fn version(&self) -> u32 {
        // 2: rm_content.featured_image_id.
        2
    }
    async fn apply_all(
        &self,
        tx: &mut DbTx,
        sfx: &str,
        events: &[&StoredEvent],
    ) -> anyhow::Result<Applied> {
        let (typed, applied) = decode_until(events, decode);
        let (tasks, content) = (format!("rm_tasks{sfx}"), format!("rm_content{sfx}"));
        for (ev, e) in &typed {
            match e {
                Input::Tenant(e) => {
                    for sector in deleted_sectors(e) {
                        for t in [&tasks, &content] {
                            let sql = format!("DELETE FROM {t} WHERE sector_id = $1");
                            exec(tx, &sql, &[sector.clone().into()]).await?;
                        }
                    }
                }
                Input::Task(e) => task(tx, &tasks, ev, e).await?,
                Input::Content(e) => content_event(tx, &content, ev, e).await?,
            }
        }
        Ok(applied)
    }
}

fn opt(id: Option<Uuid>) -> Val {
    Val::Text(id.map(|i| i.to_string()))
}

async fn task(tx: &mut DbTx, t: &str, ev: &StoredEvent, e: &TaskEvent) -> anyhow::Result<()> {
    let id = ev.aggregate_id.as_str();
    let at = ev.recorded_at;
    let set = |sets: Vec<(&'static str, Val)>| {
        let mut sets = sets;
        sets.push(("updated_at", at.into()));
        sets
    };
    match e {
        TaskEvent::TaskCreated {
            account_id,
            site_id,
            sector_id,
            task: d,
        } => {
            insert(
                tx,
                t,
                "task_id",
                &[
                    ("task_id", id.into()),
                    ("account_id", account_id.to_string().into()),
                    ("site_id", site_id.to_string().into()),
                    ("sector_id", sector_id.to_string().into()),
                    ("idea_id", opt(d.idea_id)),
                    ("cluster_id", opt(d.cluster_id)),
                    ("title", d.title.clone().into()),
                    ("brief", d.brief.clone().into()),
                    ("primary_keyword", d.primary_keyword.clone().into()),
                    ("secondary_keywords", json(&d.secondary_keywords).into()),
                    ("target_word_count", i64::from(d.target_word_count).into()),
                    ("content_type", d.content_type.as_str().into()),
                    ("outline", json(&d.outline).into()),
                    ("author_profile_id", opt(d.author_profile_id)),
                    ("strategy_id", opt(d.strategy_id)),
                    ("allow_shared_primary", d.allow_shared_primary.into()),
                    ("status", "queued".into()),
                    ("created_at", at.into()),
                    ("updated_at", at.into()),
                ],
            )
            .await
        }
        TaskEvent::TaskUpdated { change: c } => {
            let mut sets: Vec<(&'static str, Val)> = vec![];
            if let Some(v) = &c.title {
                sets.push(("title", v.trim().into()));
            }
            if let Some(v) = &c.brief {
                sets.push(("brief", v.clone().into()));
            }
            if let Some(v) = &c.primary_keyword {
                sets.push(("primary_keyword", v.trim().into()));
            }
            if let Some(v) = &c.secondary_keywords {
                sets.push(("secondary_keywords", json(v).into()));
            }
            if let Some(v) = c.target_word_count {
                sets.push(("target_word_count", i64::from(v).into()));
            }
            if let Some(v) = c.content_type {
                sets.push(("content_type", v.as_str().into()));
            }
            if let Some(v) = &c.outline {
                sets.push(("outline", json(v).into()));
            }
            if let Some(v) = c.author_profile_id {
                sets.push(("author_profile_id", opt(v)));
            }
            if let Some(v) = c.strategy_id {
                sets.push(("strategy_id", opt(v)));
            }
            if let Some(v) = c.allow_shared_primary {
                sets.push(("allow_shared_primary", v.into()));
            }
            update(tx, t, "task_id", id, &set(sets)).await
        }
        TaskEvent::TaskDeleted {} => {
            exec(
                tx,
                &format!("DELETE FROM {t} WHERE task_id = $1"),
                &[id.into()],
            )
            .await
        }
        TaskEvent::TaskGenerationStarted { job_id } => {
            let sets = vec![
                ("status", "in_progress".into()),
                ("job_id", job_id.to_string().into()),
                ("error", Val::Text(None)),
            ];
            update(tx, t, "task_id", id, &set(sets)).await
        }
        TaskEvent::TaskCompleted { content_id, .. } => {
            let sets = vec![
                ("status", "completed".into()),
                ("content_id", content_id.to_string().into()),
            ];
            update(tx, t, "task_id", id, &set(sets)).await
        }
        TaskEvent::TaskFailed { reason, .. } => {
            let sets = vec![
                ("status", "failed".into()),
                ("error", reason.clone().into()),
            ];
            update(tx, t, "task_id", id, &set(sets)).await
        }
        TaskEvent::TaskPublished {} => {
            update(
                tx,
                t,
                "task_id",
                id,
                &set(vec![("status", "published".into())]),
            )
            .await
        }
    }
}

async fn content_event(
    tx: &mut DbTx,
    t: &str,
    ev: &StoredEvent,
    e: &ContentEvent,
) -> anyhow::Result<()> {
    let id = ev.aggregate_id.as_str();
    let at = ev.recorded_at;
    match e {
        ContentEvent::ContentCreated { origin: o } => {
            insert(
                tx,
                t,
                "content_id",
                &[
                    ("content_id", id.into()),
                    ("account_id", o.account_id.to_string().into()),
                    ("site_id", o.site_id.to_string().into()),
                    ("sector_id", o.sector_id.to_string().into()),
                    ("task_id", o.task_id.to_string().into()),
                    ("idea_id", opt(o.idea_id)),
                    ("cluster_id", opt(o.cluster_id)),
                    ("status", "draft".into()),
                    ("version", 0i64.into()),
                    ("title", "".into()),
                    ("html_content", "".into()),
                    ("meta_title", "".into()),
                    ("meta_description", "".into()),
                    ("word_count", 0i64.into()),
                    ("primary_keyword", "".into()),
                    ("secondary_keywords", "[]".into()),
                    ("internal_links", "[]".into()),
                    ("author", "{}".into()),
                    ("created_at", at.into()),
                    ("updated_at", at.into()),
                ],
            )
            .await
        }
        ContentEvent::ContentVersionAdded {
            version,
            body: b,
            author,
        } => {
            let author = json::<VersionAuthor>(author);
            update(
                tx,
                t,
                "content_id",
                id,
                &[
                    ("version", i64::from(*version).into()),
                    ("title", b.title.clone().into()),
                    ("html_content", b.html.clone().into()),
                    ("meta_title", b.meta_title.clone().into()),
                    ("meta_description", b.meta_description.clone().into()),
                    ("word_count", i64::from(b.word_count).into()),
                    ("primary_keyword", b.primary_keyword.clone().into()),
                    ("secondary_keywords", json(&b.secondary_keywords).into()),
                    ("internal_links", json(&b.internal_links).into()),
                    ("author", author.into()),
                    (
                        "featured_image_id",
                        b.featured_image_id.map(|i| i.to_string()).into(),
                    ),
                    ("updated_at", at.into()),
                ],
            )
            .await
        }
        ContentEvent::ContentStatusChanged { status, .. } => {
            update(
                tx,
                t,
                "content_id",
                id,
                &[
                    ("status", status.as_str().into()),
                    ("updated_at", at.into()),
                ],
            )
            .await
        }
    }
}
