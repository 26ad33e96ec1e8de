//! The sync log: every request the publisher makes to a WordPress
//! (`wp_requests`), written as each answer arrives. An operational record
//! beside the event log, like an access log: what was asked, what came
//! back and how long it took — never a credential.

use crate::bus::{CommandBus, CommandError};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// Outcomes a request may have.
pub const OUTCOMES: &[&str] = &["ok", "error", "retried", "unknown"];

#[derive(Debug, Clone, Default)]
pub struct Entry {
    pub integration_id: Uuid,
    pub account_id: Uuid,
    pub job_id: Option<Uuid>,
    pub content_id: Option<Uuid>,
    pub method: String,
    /// The REST route and query, e.g. `/wp/v2/posts?search=…`.
    pub path: String,
    pub status: Option<u16>,
    pub duration_ms: u64,
    pub wp_code: Option<String>,
    pub attempt: u32,
    /// `ok`, `error` (an answer that refuses), `retried` (a 429 or 5xx tried
    /// again), `unknown` (no answer: the request may have been carried out).
    pub outcome: &'static str,
    pub error: Option<String>,
}

pub async fn append(bus: &CommandBus, e: &Entry) -> Result<(), CommandError> {
    let sql = "INSERT INTO wp_requests (integration_id, account_id, job_id, content_id, method, path, status, \
               duration_ms, wp_code, attempt, outcome, error) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";
    crate::on_db!(bus.db(), p => {
        sqlx::query(sql)
            .bind(e.integration_id.to_string())
            .bind(e.account_id.to_string())
            .bind(e.job_id.map(|j| j.to_string()))
            .bind(e.content_id.map(|c| c.to_string()))
            .bind(&e.method)
            .bind(&e.path)
            .bind(e.status.map(i32::from))
            .bind(e.duration_ms as i64)
            .bind(&e.wp_code)
            .bind(e.attempt as i32)
            .bind(e.outcome)
            .bind(&e.error)
            .execute(p)
            .await
            .map_err(CommandError::db)?;
    });
    Ok(())
}

/// One logged request.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Row {
    pub id: i64,
    pub integration_id: String,
    pub job_id: Option<String>,
    pub content_id: Option<String>,
    pub method: String,
    pub path: String,
    pub status: Option<i32>,
    pub duration_ms: i64,
    pub wp_code: Option<String>,
    pub attempt: i32,
    pub outcome: String,
    pub error: Option<String>,
    pub at: DateTime<Utc>,
}

/// Filters of a page of the log (newest first).
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub outcome: Option<String>,
    pub job_id: Option<Uuid>,
    pub offset: i64,
    pub limit: i64,
}

/// A page of one connection's requests, newest first, and the total.
pub async fn page(
    bus: &CommandBus,
    integration_id: Uuid,
    f: &Filter,
) -> Result<(Vec<Row>, i64), CommandError> {
    let mut filter = "integration_id = $1".to_string();
    let mut vals = vec![integration_id.to_string()];
    if let Some(o) = &f.outcome {
        vals.push(o.clone());
        filter.push_str(&format!(" AND outcome = ${}", vals.len()));
    }
    if let Some(j) = f.job_id {
        vals.push(j.to_string());
        filter.push_str(&format!(" AND job_id = ${}", vals.len()));
    }
    let count_sql = format!("SELECT count(*) FROM wp_requests WHERE {filter}");
    let n = vals.len();
    let sql = format!(
        "SELECT id, integration_id, job_id, content_id, method, path, status, duration_ms, wp_code, attempt, outcome, \
         error, at FROM wp_requests WHERE {filter} ORDER BY id DESC LIMIT ${} OFFSET ${}",
        n + 1,
        n + 2
    );
    let (rows, count) = crate::on_db!(bus.db(), p => {
        let mut c = sqlx::query_scalar::<_, i64>(&count_sql);
        for v in &vals {
            c = c.bind(v);
        }
        let count = c.fetch_one(p).await.map_err(CommandError::db)?;
        let mut q = sqlx::query_as::<_, Row>(&sql);
        for v in &vals {
            q = q.bind(v);
        }
        let rows = q.bind(f.limit).bind(f.offset).fetch_all(p).await.map_err(CommandError::db)?;
        (rows, count)
    });
    Ok((rows, count))
}
