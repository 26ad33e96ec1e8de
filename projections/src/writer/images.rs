//! Image read models: `rm_image_prompts` (one row per live prompt: its
//! text, placement, status, the job making its image and the current
//! image) and `rm_images` (one row per stored image of a live prompt,
//! `current` for the prompt's latest). Filled from `image_prompt` events;
//! a deleted sector takes its rows with it.

use super::deleted_sectors;
use crate::projection::{Applied, Index, Projection, Table, decode_until};
use crate::sql::{Listing, Val, exec, insert, update};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use igny8_commands::db::{Db, DbTx};
use igny8_commands::{DecodeError, StoredEvent};
use igny8_domain::Aggregate;
use igny8_domain::tenancy::{Tenant, TenantEvent};
use igny8_domain::writer::{ImagePrompt, ImagePromptEvent, PromptOrigin, PromptText};
use uuid::Uuid;

pub struct ImagesProjection;

pub const NAME: &str = "images";

const TABLES: &[Table] = &[
    Table {
        name: "rm_image_prompts",
        postgres: "CREATE TABLE IF NOT EXISTS {t} (prompt_id text COLLATE \"C\" PRIMARY KEY,
            account_id text COLLATE \"C\" NOT NULL, site_id text COLLATE \"C\" NOT NULL, sector_id text COLLATE \"C\" NOT NULL,
            content_id text COLLATE \"C\" NOT NULL, task_id text NOT NULL, slot bigint NOT NULL, prompt text NOT NULL,
            alt_text text NOT NULL, caption text NOT NULL, placement text, status text NOT NULL, job_id text,
            image_id text, error text, requests bigint NOT NULL, created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL)",
        sqlite: "CREATE TABLE IF NOT EXISTS {t} (prompt_id TEXT PRIMARY KEY, account_id TEXT NOT NULL, site_id TEXT NOT NULL,
            sector_id TEXT NOT NULL, content_id TEXT NOT NULL, task_id TEXT NOT NULL, slot INTEGER NOT NULL, prompt TEXT NOT NULL,
            alt_text TEXT NOT NULL, caption TEXT NOT NULL, placement TEXT, status TEXT NOT NULL, job_id TEXT,
            image_id TEXT, error TEXT, requests INTEGER NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL)",
        indexes: &[
            Index { name: "rm_image_prompts_content_idx", columns: "content_id, slot" },
            Index { name: "rm_image_prompts_account_idx", columns: "account_id, created_at" },
        ],
    },
    Table {
        name: "rm_images",
        postgres: "CREATE TABLE IF NOT EXISTS {t} (image_id text COLLATE \"C\" PRIMARY KEY, prompt_id text COLLATE \"C\" NOT NULL,
            account_id text COLLATE \"C\" NOT NULL, site_id text COLLATE \"C\" NOT NULL, sector_id text COLLATE \"C\" NOT NULL,
            content_id text COLLATE \"C\" NOT NULL, slot bigint NOT NULL, job_id text NOT NULL, sha256 text NOT NULL,
            mime_type text NOT NULL, width bigint NOT NULL, height bigint NOT NULL, bytes bigint NOT NULL, provider text NOT NULL,
            model text NOT NULL, quality text NOT NULL, size text NOT NULL, prompt text NOT NULL, alt_text text NOT NULL,
            cost_usd_micros bigint NOT NULL, credits_milli bigint NOT NULL, is_current boolean NOT NULL, created_at timestamptz NOT NULL)",
        sqlite: "CREATE TABLE IF NOT EXISTS {t} (image_id TEXT PRIMARY KEY, prompt_id TEXT NOT NULL, account_id TEXT NOT NULL,
            site_id TEXT NOT NULL, sector_id TEXT NOT NULL, content_id TEXT NOT NULL, slot INTEGER NOT NULL, job_id TEXT NOT NULL,
            sha256 TEXT NOT NULL, mime_type TEXT NOT NULL, width INTEGER NOT NULL, height INTEGER NOT NULL, bytes INTEGER NOT NULL,
            provider TEXT NOT NULL, model TEXT NOT NULL, quality TEXT NOT NULL, size TEXT NOT NULL, prompt TEXT NOT NULL,
            alt_text TEXT NOT NULL, cost_usd_micros INTEGER NOT NULL, credits_milli INTEGER NOT NULL, is_current INTEGER NOT NULL,
            created_at TEXT NOT NULL)",
        indexes: &[
            Index { name: "rm_images_content_idx", columns: "content_id, slot" },
            Index { name: "rm_images_prompt_idx", columns: "prompt_id" },
            Index { name: "rm_images_account_idx", columns: "account_id, created_at" },
        ],
    },
];

enum Input {
    Tenant(TenantEvent),
    Prompt(ImagePromptEvent),
}

fn decode(ev: &StoredEvent) -> Result<Option<Input>, DecodeError> {
    Ok(Some(match ev.aggregate_type.as_str() {
        Tenant::TYPE => Input::Tenant(ev.decode()?),
        ImagePrompt::TYPE => Input::Prompt(ev.decode()?),
        _ => return Ok(None),
    }))
}

#[async_trait]
impl Projection for ImagesProjection {
    fn name(&self) -> &'static str {
        NAME
    }
    fn tables(&self) -> &'static [Table] {
        TABLES
    }
    fn version(&self) -> u32 {
        1
    }
    async fn apply_all(
        &self,
        tx: &mut DbTx,
        sfx: &str,
        events: &[&StoredEvent],
    ) -> anyhow::Result<Applied> {
        let (typed, applied) = decode_until(events, decode);
        let (prompts, images) = (format!("rm_image_prompts{sfx}"), format!("rm_images{sfx}"));
        for (ev, e) in &typed {
            match e {
                Input::Tenant(e) => {
                    for sector in deleted_sectors(e) {
                        for t in [&prompts, &images] {
                            let sql = format!("DELETE FROM {t} WHERE sector_id = $1");
                            exec(tx, &sql, &[sector.clone().into()]).await?;
                        }
                    }
                }
                Input::Prompt(e) => prompt_event(tx, &prompts, &images, ev, e).await?,
            }
        }
        Ok(applied)
    }
}

async fn prompt_event(
    tx: &mut DbTx,
    t: &str,
    images: &str,
    ev: &StoredEvent,
    e: &ImagePromptEvent,
) -> anyhow::Result<()> {
    let id = ev.aggregate_id.as_str();
    let at = ev.recorded_at;
    let set = |mut sets: Vec<(&'static str, Val)>| {
        sets.push(("updated_at", at.into()));
        sets
    };
    match e {
        ImagePromptEvent::ImagePromptCreated {
            origin, slot, text, ..
        } => written(tx, t, images, ev, origin, *slot, text, None).await,
        ImagePromptEvent::ImagePromptExtracted {
            origin,
            slot,
            text,
            job_id,
            ..
        } => written(tx, t, images, ev, origin, *slot, text, Some(*job_id)).await,
        ImagePromptEvent::ImagePromptEdited { change: c } => {
            let mut sets: Vec<(&'static str, Val)> = vec![];
            if let Some(v) = &c.prompt {
                sets.push(("prompt", v.trim().into()));
            }
            if let Some(v) = &c.alt_text {
                sets.push(("alt_text", v.trim().into()));
            }
            if let Some(v) = &c.caption {
                sets.push(("caption", v.trim().into()));
            }
            if let Some(v) = &c.placement {
                sets.push(("placement", v.trim().into()));
            }
            update(tx, t, "prompt_id", id, &set(sets)).await
        }
        ImagePromptEvent::ImagePromptDeleted {} => {
            for table in [t, images] {
                exec(
                    tx,
                    &format!("DELETE FROM {table} WHERE prompt_id = $1"),
                    &[id.into()],
                )
                .await?;
            }
            Ok(())
        }
        ImagePromptEvent::ImageGenerationStarted { job_id } => {
            let sets = vec![
                ("status", "generating".into()),
                ("job_id", job_id.to_string().into()),
                ("error", Val::Text(None)),
                ("requests", 0i64.into()),
            ];
            update(tx, t, "prompt_id", id, &set(sets)).await
        }
        ImagePromptEvent::ImageRequested { .. } => {
            exec(
                tx,
                &format!("UPDATE {t} SET requests = requests + 1 WHERE prompt_id = $1"),
                &[id.into()],
            )
            .await
        }
        ImagePromptEvent::ImageStored { image: i } => {
            exec(
                tx,
                &format!("UPDATE {images} SET is_current = $2 WHERE prompt_id = $1"),
                &[id.into(), false.into()],
            )
            .await?;
            let sql = format!(
                "INSERT INTO {images} (image_id, prompt_id, account_id, site_id, sector_id, content_id, slot, job_id, sha256,
                    mime_type, width, height, bytes, provider, model, quality, size, prompt, alt_text, cost_usd_micros,
                    credits_milli, is_current, created_at)
                 SELECT $1, prompt_id, account_id, site_id, sector_id, content_id, slot, $2, $3, $4, $5, $6, $7, $8, $9, $10,
                    $11, $12, alt_text, $13, $14, $15, $16 FROM {t} WHERE prompt_id = $17
                 ON CONFLICT (image_id) DO NOTHING"
            );
            exec(
                tx,
                &sql,
                &[
                    i.image_id.to_string().into(),
                    i.job_id.to_string().into(),
                    i.sha256.clone().into(),
                    i.mime_type.clone().into(),
                    i64::from(i.width).into(),
                    i64::from(i.height).into(),
                    (i.bytes as i64).into(),
                    i.provider.clone().into(),
                    i.model.clone().into(),
                    i.quality.as_str().into(),
                    i.size.clone().into(),
                    i.prompt.clone().into(),
                    i.cost_usd_micros.into(),
                    i.credits_milli.into(),
                    true.into(),
                    at.into(),
                    id.into(),
                ],
            )
            .await?;
            let sets = vec![
                ("status", "done".into()),
                ("image_id", i.image_id.to_string().into()),
            ];
            update(tx, t, "prompt_id", id, &set(sets)).await
        }
        ImagePromptEvent::ImageFailed { reason, .. } => {
            let sets = vec![
                ("status", "failed".into()),
                ("error", reason.clone().into()),
            ];
            update(tx, t, "prompt_id", id, &set(sets)).await
        }
    }
}

/// A prompt written into its slot (extracted by a job, or by a person):
/// the slot's row is replaced and its earlier images are no longer current.
#[allow(clippy::too_many_arguments)]
async fn written(
    tx: &mut DbTx,
    t: &str,
    images: &str,
    ev: &StoredEvent,
    o: &PromptOrigin,
    slot: u32,
    text: &PromptText,
    job_id: Option<Uuid>,
) -> anyhow::Result<()> {
    let id = ev.aggregate_id.as_str();
    let at = ev.recorded_at;
    // A new extraction rewrites the slot: its earlier images are not current.
    exec(
        tx,
        &format!("DELETE FROM {t} WHERE prompt_id = $1"),
        &[id.into()],
    )
    .await?;
    exec(
        tx,
        &format!("UPDATE {images} SET is_current = $2 WHERE prompt_id = $1"),
        &[id.into(), false.into()],
    )
    .await?;
    insert(
        tx,
        t,
        "prompt_id",
        &[
            ("prompt_id", id.into()),
            ("account_id", o.account_id.to_string().into()),
            ("site_id", o.site_id.to_string().into()),
            ("sector_id", o.sector_id.to_string().into()),
            ("content_id", o.content_id.to_string().into()),
            ("task_id", o.task_id.to_string().into()),
            ("slot", i64::from(slot).into()),
            ("prompt", text.prompt.clone().into()),
            ("alt_text", text.alt_text.clone().into()),
            ("caption", text.caption.clone().into()),
            ("placement", text.placement.clone().into()),
            ("status", "new".into()),
            ("job_id", job_id.map(|j| j.to_string()).into()),
            ("image_id", Val::Text(None)),
            ("error", Val::Text(None)),
            ("requests", 0i64.into()),
            ("created_at", at.into()),
            ("updated_at", at.into()),
        ],
    )
    .await
}

// --- queries -----------------------------------------------------------------

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PromptRow {
    pub prompt_id: String,
    pub account_id: String,
    pub site_id: String,
    pub sector_id: String,
    pub content_id: String,
    pub task_id: String,
    pub slot: i64,
    pub prompt: String,
    pub alt_text: String,
    pub caption: String,
    pub placement: Option<String>,
    pub status: String,
    pub job_id: Option<String>,
    pub image_id: Option<String>,
    pub error: Option<String>,
    pub requests: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const PROMPT_COLUMNS: &str = "prompt_id, account_id, site_id, sector_id, content_id, task_id, slot, prompt, alt_text, \
    caption, placement, status, job_id, image_id, error, requests, created_at, updated_at";

pub const PROMPT_ORDERINGS: &[&str] = &["created_at", "updated_at", "slot", "status"];
pub const PROMPT_STATUSES: &[&str] = &["new", "generating", "done", "failed"];

/// Filters of both lists (each is optional).
#[derive(Debug, Clone, Default)]
pub struct ImageFilter {
    pub site_in: Option<Vec<String>>,
    pub site_id: Option<String>,
    pub content_id: Option<String>,
    pub status: Option<String>,
    pub ordering: Option<String>,
    pub offset: i64,
    pub limit: i64,
}

pub async fn page_prompts(
    db: &Db,
    account_id: &str,
    f: &ImageFilter,
) -> Result<(Vec<PromptRow>, i64), sqlx::Error> {
    Listing::new("rm_image_prompts", PROMPT_COLUMNS, "prompt_id", account_id)
        .sites(f.site_in.clone())
        .eq("site_id", f.site_id.clone())
        .eq("content_id", f.content_id.clone())
        .eq("status", f.status.clone())
        .page(
            db,
            f.ordering.as_deref(),
            PROMPT_ORDERINGS,
            "created_at",
            f.offset,
            f.limit,
        )
        .await
}

pub async fn get_prompt(
    db: &Db,
    account_id: &str,
    id: &str,
) -> Result<Option<PromptRow>, sqlx::Error> {
    Listing::new("rm_image_prompts", PROMPT_COLUMNS, "prompt_id", account_id)
        .eq("prompt_id", Some(id.to_string()))
        .one(db)
        .await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ImageRow {
    pub image_id: String,
    pub prompt_id: String,
    pub account_id: String,
    pub site_id: String,
    pub sector_id: String,
    pub content_id: String,
    pub slot: i64,
    pub job_id: String,
    pub sha256: String,
    pub mime_type: String,
    pub width: i64,
    pub height: i64,
    pub bytes: i64,
    pub provider: String,
    pub model: String,
    pub quality: String,
    pub size: String,
    pub prompt: String,
    pub alt_text: String,
    pub cost_usd_micros: i64,
    pub credits_milli: i64,
    pub is_current: bool,
    pub created_at: DateTime<Utc>,
}

const IMAGE_COLUMNS: &str = "image_id, prompt_id, account_id, site_id, sector_id, content_id, slot, job_id, sha256, \
    mime_type, width, height, bytes, provider, model, quality, size, prompt, alt_text, cost_usd_micros, credits_milli, \
    is_current, created_at";

pub const IMAGE_ORDERINGS: &[&str] = &["created_at", "slot", "bytes"];

pub async fn page_images(
    db: &Db,
    account_id: &str,
    f: &ImageFilter,
) -> Result<(Vec<ImageRow>, i64), sqlx::Error> {
    Listing::new("rm_images", IMAGE_COLUMNS, "image_id", account_id)
        .sites(f.site_in.clone())
        .eq("site_id", f.site_id.clone())
        .eq("content_id", f.content_id.clone())
        .page(
            db,
            f.ordering.as_deref(),
            IMAGE_ORDERINGS,
            "created_at",
            f.offset,
            f.limit,
        )
        .await
}

pub async fn get_image(
    db: &Db,
    account_id: &str,
    id: &str,
) -> Result<Option<ImageRow>, sqlx::Error> {
    Listing::new("rm_images", IMAGE_COLUMNS, "image_id", account_id)
        .eq("image_id", Some(id.to_string()))
        .one(db)
        .await
}
