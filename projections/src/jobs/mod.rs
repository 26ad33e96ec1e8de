//! Jobs read model: `rm_jobs`, one row per job with its state, phase,
//! percentage, message, tokens, cost and credits (lists and progress pages).

use crate::projection::{Applied, Index, Projection, Table, decode_until};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use igny8_commands::db::{Db, DbTx};
use igny8_commands::{StoredEvent, on_db, on_tx};
use igny8_domain::Aggregate;
use igny8_domain::jobs::{Job, JobEvent};
use serde::Serialize;

pub struct JobsProjection;

pub const NAME: &str = "jobs";

const TABLES: &[Table] = &[Table {
    name: "rm_jobs",
    postgres: "CREATE TABLE IF NOT EXISTS {t} (job_id text COLLATE \"C\" PRIMARY KEY,
        account_id text COLLATE \"C\" NOT NULL, site_id text COLLATE \"C\", kind text NOT NULL, state text NOT NULL, phase text NOT NULL,
        percentage bigint NOT NULL DEFAULT 0, message text NOT NULL DEFAULT '', attempt bigint NOT NULL DEFAULT 0,
        tokens bigint NOT NULL DEFAULT 0, cost_usd_micros bigint NOT NULL DEFAULT 0,
        reserved bigint NOT NULL DEFAULT 0, charged bigint NOT NULL DEFAULT 0, input text NOT NULL DEFAULT '{}',
        result text, created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL)",
    sqlite: "CREATE TABLE IF NOT EXISTS {t} (job_id TEXT PRIMARY KEY, account_id TEXT NOT NULL, site_id TEXT, kind TEXT NOT NULL,
        state TEXT NOT NULL, phase TEXT NOT NULL, percentage INTEGER NOT NULL DEFAULT 0, message TEXT NOT NULL DEFAULT '',
        attempt INTEGER NOT NULL DEFAULT 0, tokens INTEGER NOT NULL DEFAULT 0, cost_usd_micros INTEGER NOT NULL DEFAULT 0,
        reserved INTEGER NOT NULL DEFAULT 0, charged INTEGER NOT NULL DEFAULT 0, input TEXT NOT NULL DEFAULT '{}',
        result TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL)",
    indexes: &[Index { name: "rm_jobs_account_idx", columns: "account_id, created_at" }],
}];

#[async_trait]
impl Projection for JobsProjection {
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
        let (typed, applied) = decode_until(events, |ev| {
            (ev.aggregate_type == Job::TYPE)
                .then(|| ev.decode::<JobEvent>())
                .transpose()
        });
        for (ev, e) in &typed {
            apply(tx, sfx, ev, e).await?;
        }
        Ok(applied)
    }
}

async fn apply(tx: &mut DbTx, sfx: &str, ev: &StoredEvent, e: &JobEvent) -> anyhow::Result<()> {
    let id = ev.aggregate_id.as_str();
    let at = ev.recorded_at;
    let set =
        |cols: &str| format!("UPDATE rm_jobs{sfx} SET {cols}, updated_at = $2 WHERE job_id = $1");
    match e {
        JobEvent::JobCreated {
            account_id,
            kind,
            input,
            reserved,
            ..
        } => {
            let sql = format!(
                "INSERT INTO rm_jobs{sfx} (job_id, account_id, kind, state, phase, message, reserved, input, created_at, updated_at, site_id) \
                 VALUES ($1, $2, $3, 'PENDING', 'INIT', 'queued', $4, $5, $6, $6, $7) ON CONFLICT (job_id) DO NOTHING"
            );
            // The site is part of some kinds' free-form input only.
            let site = input.get("site_id").and_then(|v| v.as_str());
            on_tx!(tx, c => sqlx::query(&sql).bind(id).bind(account_id.to_string()).bind(kind)
                .bind(reserved).bind(input.to_string()).bind(at).bind(site)
                .execute(&mut *c).await.map(|_| ()))?;
        }
        JobEvent::JobStarted { attempt, .. } => {
            let sql = set("state = 'PROGRESS', phase = 'INIT', percentage = 0, attempt = $3");
            on_tx!(tx, c => sqlx::query(&sql).bind(id).bind(at).bind(i64::from(*attempt))
                .execute(&mut *c).await.map(|_| ()))?;
        }
        JobEvent::JobProgressed {
            phase,
            percentage,
            message,
            tokens,
            cost_usd_micros,
        } => {
            let sql =
                set("phase = $3, percentage = $4, message = $5, tokens = $6, cost_usd_micros = $7");
            let phase = serde_json::to_value(phase)?;
            let tokens = i64::try_from(*tokens)?;
            on_tx!(tx, c => sqlx::query(&sql).bind(id).bind(at).bind(phase.as_str())
                .bind(i64::from(*percentage)).bind(message).bind(tokens).bind(cost_usd_micros)
                .execute(&mut *c).await.map(|_| ()))?;
        }
        JobEvent::JobSucceeded { result, charged } => {
            let sql = set(
                "state = 'SUCCESS', phase = 'DONE', percentage = 100, message = 'done', charged = $3, result = $4",
            );
            on_tx!(tx, c => sqlx::query(&sql).bind(id).bind(at).bind(charged)
                .bind(result.to_string()).execute(&mut *c).await.map(|_| ()))?;
        }
        JobEvent::JobFailed { error, .. } => {
            let sql = set("state = 'FAILURE', message = $3");
            on_tx!(tx, c => sqlx::query(&sql).bind(id).bind(at).bind(error)
                .execute(&mut *c).await.map(|_| ()))?;
        }
        JobEvent::JobCancelled {} => {
            let sql = set("state = 'CANCELLED', message = 'cancelled'");
            on_tx!(tx, c => sqlx::query(&sql).bind(id).bind(at).execute(&mut *c).await.map(|_| ()))?;
        }
    }
    Ok(())
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct JobRow {
    #[serde(rename = "id")]
    pub job_id: String,
    pub account_id: String,
    pub kind: String,
    pub state: String,
    pub phase: String,
    pub percentage: i64,
    pub message: String,
    pub attempt: i64,
    pub tokens: i64,
    pub cost_usd_micros: i64,
    /// Milli-credits.
    pub reserved: i64,
    pub charged: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A page of the account's jobs, newest first; `site_in`: only jobs on
/// these sites (callers limited to granted sites).
pub async fn list_jobs(
    db: &Db,
    account_id: &str,
    state: Option<&str>,
    site_in: Option<&[String]>,
    offset: i64,
    limit: i64,
) -> Result<(Vec<JobRow>, i64), sqlx::Error> {
    let mut wh = String::from("account_id = $1 AND ($2 IS NULL OR state = $2)");
    let sites = site_in.unwrap_or_default();
    if site_in.is_some() {
        let marks: Vec<String> = (0..sites.len()).map(|i| format!("${}", i + 5)).collect();
        if marks.is_empty() {
            wh.push_str(" AND 1 = 0");
        } else {
            wh.push_str(&format!(" AND site_id IN ({})", marks.join(", ")));
        }
    }
    let count_sql = format!("SELECT count(*) FROM rm_jobs WHERE {wh} AND $3 >= 0 AND $4 >= 0");
    let sql = format!(
        "SELECT job_id, account_id, kind, state, phase, percentage, message, attempt, tokens, cost_usd_micros, \
         reserved, charged, created_at, updated_at FROM rm_jobs WHERE {wh} \
         ORDER BY created_at DESC, job_id LIMIT $3 OFFSET $4"
    );
    let (count,): (i64,) = on_db!(db, p => {
        let mut q = sqlx::query_as(&count_sql).bind(account_id).bind(state).bind(limit).bind(offset);
        for site in sites {
            q = q.bind(site);
        }
        q.fetch_one(p).await?
    });
    let rows = on_db!(db, p => {
        let mut q = sqlx::query_as(&sql).bind(account_id).bind(state).bind(limit).bind(offset);
        for site in sites {
            q = q.bind(site);
        }
        q.fetch_all(p).await?
    });
    Ok((rows, count))
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UsageRow {
    pub job_id: String,
    pub kind: String,
    pub charged: i64,
    pub tokens: i64,
    pub cost_usd_micros: i64,
    pub input: String,
    pub result: Option<String>,
    pub updated_at: DateTime<Utc>,
}

/// Finished work that used credits, newest first (the usage log).
pub async fn list_usage(
    db: &Db,
    account_id: &str,
    offset: i64,
    limit: i64,
) -> Result<(Vec<UsageRow>, i64), sqlx::Error> {
    let (count,): (i64,) = on_db!(db, p => sqlx::query_as(
        "SELECT count(*) FROM rm_jobs WHERE account_id = $1 AND state = 'SUCCESS'")
        .bind(account_id).fetch_one(p).await?);
    let rows = on_db!(db, p => sqlx::query_as(
        "SELECT job_id, kind, charged, tokens, cost_usd_micros, input, result, updated_at FROM rm_jobs \
         WHERE account_id = $1 AND state = 'SUCCESS' ORDER BY updated_at DESC, job_id LIMIT $2 OFFSET $3")
        .bind(account_id).bind(limit).bind(offset).fetch_all(p).await?);
    Ok((rows, count))
}
