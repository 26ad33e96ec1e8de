//! Ideas read model: `rm_ideas`, one row per live idea (its outline and
//! keywords as JSON text), the list and detail queries of
//! `/api/v1/planner/ideas/`.

use crate::projection::{Applied, Index, Projection, Table, decode_until};
use crate::sql::{Listing, Val, exec, insert, json, update};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use igny8_commands::db::{Db, DbTx};
use igny8_commands::{DecodeError, StoredEvent};
use igny8_domain::Aggregate;
use igny8_domain::planner::{Idea, IdeaEvent};
use igny8_domain::tenancy::{Tenant, TenantEvent};

pub struct IdeasProjection;

pub const NAME: &str = "ideas";

const TABLES: &[Table] = &[Table {
    name: "rm_ideas",
    postgres: "CREATE TABLE IF NOT EXISTS {t} (idea_id text COLLATE \"C\" PRIMARY KEY,
        account_id text COLLATE \"C\" NOT NULL, site_id text COLLATE \"C\" NOT NULL, sector_id text COLLATE \"C\" NOT NULL,
        cluster_id text, title text NOT NULL, description text NOT NULL, outline text NOT NULL,
        content_type text NOT NULL, primary_keyword text NOT NULL, secondary_keywords text NOT NULL,
        target_word_count bigint NOT NULL, status text NOT NULL, task_id text, job_id text,
        author_profile_id text, strategy_id text,
        created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL)",
    sqlite: "CREATE TABLE IF NOT EXISTS {t} (idea_id TEXT PRIMARY KEY, account_id TEXT NOT NULL, site_id TEXT NOT NULL,
        sector_id TEXT NOT NULL, cluster_id TEXT, title TEXT NOT NULL, description TEXT NOT NULL, outline TEXT NOT NULL,
        content_type TEXT NOT NULL, primary_keyword TEXT NOT NULL, secondary_keywords TEXT NOT NULL,
        target_word_count INTEGER NOT NULL, status TEXT NOT NULL, task_id TEXT, job_id TEXT,
        author_profile_id TEXT, strategy_id TEXT,
        created_at TEXT NOT NULL, updated_at TEXT NOT NULL)",
    indexes: &[
        Index { name: "rm_ideas_account_idx", columns: "account_id, created_at" },
        Index { name: "rm_ideas_sector_idx", columns: "sector_id" },
        Index { name: "rm_ideas_cluster_idx", columns: "cluster_id" },
    ],
}];

enum Input {
    Tenant(TenantEvent),
    Idea(IdeaEvent),
}

fn decode(ev: &StoredEvent) -> Result<Option<Input>, DecodeError> {
    Ok(Some(match ev.aggregate_type.as_str() {
        Tenant::TYPE => Input::Tenant(ev.decode()?),
        Idea::TYPE => Input::Idea(ev.decode()?),
        _ => return Ok(None),
    }))
}

#[async_trait]
impl Projection for IdeasProjection {
    fn name(&self) -> &'static str {
        NAME
    }
    fn tables(&self) -> &'static [Table] {
        TABLES
    }
    fn version(&self) -> u32 {
        // 2: the author profile and strategy an idea's task will use.
        2
    }
    async fn apply_all(
        &self,
        tx: &mut DbTx,
        sfx: &str,
        events: &[&StoredEvent],
    ) -> anyhow::Result<Applied> {
        let (typed, applied) = decode_until(events, decode);
        let t = format!("rm_ideas{sfx}");
        for (ev, e) in &typed {
            match e {
                Input::Tenant(e) => {
                    for sector in crate::writer::deleted_sectors(e) {
                        exec(
                            tx,
                            &format!("DELETE FROM {t} WHERE sector_id = $1"),
                            &[sector.into()],
                        )
                        .await?;
                    }
                }
                Input::Idea(e) => apply(tx, &t, ev, e).await?,
            }
        }
        Ok(applied)
    }
}

async fn apply(tx: &mut DbTx, t: &str, ev: &StoredEvent, e: &IdeaEvent) -> anyhow::Result<()> {
    let id = ev.aggregate_id.as_str();
    let at = ev.recorded_at;
    match e {
        IdeaEvent::IdeaCreated {
            account_id,
            site_id,
            sector_id,
            idea,
            job_id,
        } => {
            insert(
                tx,
                t,
                "idea_id",
                &[
                    ("idea_id", id.into()),
                    ("account_id", account_id.to_string().into()),
                    ("site_id", site_id.to_string().into()),
                    ("sector_id", sector_id.to_string().into()),
                    ("cluster_id", idea.cluster_id.map(|c| c.to_string()).into()),
                    ("title", idea.title.clone().into()),
                    ("description", idea.description.clone().into()),
                    ("outline", json(&idea.outline).into()),
                    ("content_type", idea.content_type.as_str().into()),
                    ("primary_keyword", idea.primary_keyword.clone().into()),
                    ("secondary_keywords", json(&idea.secondary_keywords).into()),
                    (
                        "target_word_count",
                        i64::from(idea.target_word_count).into(),
                    ),
                    ("status", "new".into()),
                    ("job_id", job_id.map(|j| j.to_string()).into()),
                    (
                        "author_profile_id",
                        idea.author_profile_id.map(|j| j.to_string()).into(),
                    ),
                    (
                        "strategy_id",
                        idea.strategy_id.map(|j| j.to_string()).into(),
                    ),
                    ("created_at", at.into()),
                    ("updated_at", at.into()),
                ],
            )
            .await
        }
        IdeaEvent::IdeaUpdated { change: c } => {
            let mut sets: Vec<(&str, Val)> = vec![("updated_at", at.into())];
            if let Some(v) = &c.title {
                sets.push(("title", v.trim().into()));
            }
            if let Some(v) = &c.description {
                sets.push(("description", v.clone().into()));
            }
            if let Some(v) = &c.outline {
                sets.push(("outline", json(v).into()));
            }
            if let Some(v) = c.content_type {
                sets.push(("content_type", v.as_str().into()));
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
            if let Some(v) = c.status {
                sets.push(("status", v.as_str().into()));
            }
            update(tx, t, "idea_id", id, &sets).await
        }
        IdeaEvent::IdeaQueued { task_id } => {
            update(
                tx,
                t,
                "idea_id",
                id,
                &[
                    ("status", "queued".into()),
                    ("task_id", task_id.to_string().into()),
                    ("updated_at", at.into()),
                ],
            )
            .await
        }
        IdeaEvent::IdeaDeleted {} => {
            exec(
                tx,
                &format!("DELETE FROM {t} WHERE idea_id = $1"),
                &[id.into()],
            )
            .await
        }
    }
}

/// An idea as stored in the read model.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct IdeaRow {
    pub idea_id: String,
    pub account_id: String,
    pub site_id: String,
    pub sector_id: String,
    pub cluster_id: Option<String>,
    pub title: String,
    pub description: String,
    /// JSON: `[{heading, level, key_points}]`.
    pub outline: String,
    pub content_type: String,
    pub primary_keyword: String,
    /// JSON: `["…"]`.
    pub secondary_keywords: String,
    pub target_word_count: i64,
    pub status: String,
    pub task_id: Option<String>,
    pub job_id: Option<String>,
    pub author_profile_id: Option<String>,
    pub strategy_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "idea_id, account_id, site_id, sector_id, cluster_id, title, description, outline, \
    content_type, primary_keyword, secondary_keywords, target_word_count, status, task_id, job_id, author_profile_id, strategy_id, created_at, updated_at";

pub const IDEA_ORDERINGS: &[&str] = &[
    "created_at",
    "updated_at",
    "title",
    "target_word_count",
    "status",
];

#[derive(Debug, Clone, Default)]
pub struct IdeaFilter {
    pub site_in: Option<Vec<String>>,
    pub site_id: Option<String>,
    pub sector_id: Option<String>,
    pub cluster_id: Option<String>,
    pub status: Option<String>,
    pub content_type: Option<String>,
    pub search: Option<String>,
    pub ordering: Option<String>,
    pub offset: i64,
    pub limit: i64,
}

pub async fn page_ideas(
    db: &Db,
    account_id: &str,
    f: &IdeaFilter,
) -> Result<(Vec<IdeaRow>, i64), sqlx::Error> {
    Listing::new("rm_ideas", COLUMNS, "idea_id", account_id)
        .sites(f.site_in.clone())
        .eq("site_id", f.site_id.clone())
        .eq("sector_id", f.sector_id.clone())
        .eq("cluster_id", f.cluster_id.clone())
        .eq("status", f.status.clone())
        .eq("content_type", f.content_type.clone())
        .search(&["title", "primary_keyword"], f.search.clone())
        .page(
            db,
            f.ordering.as_deref(),
            IDEA_ORDERINGS,
            "-created_at",
            f.offset,
            f.limit,
        )
        .await
}

pub async fn get_idea(db: &Db, account_id: &str, id: &str) -> Result<Option<IdeaRow>, sqlx::Error> {
    Listing::new("rm_ideas", COLUMNS, "idea_id", account_id)
        .eq("idea_id", Some(id.to_string()))
        .one(db)
        .await
}
