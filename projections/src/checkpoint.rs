//! Checkpoints: where each projection is, stored in the same transaction as
//! the rows it wrote. This is what makes redelivery harmless.

use crate::projection::{Applied, Projection};
use chrono::{DateTime, Utc};
use igny8_commands::db::{Db, DbTx};
use igny8_commands::{DecodeError, Feed, Position, StoredEvent, on_db, on_tx};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Checkpoint {
    pub position: Position,
    /// Last JetStream stream sequence consumed (0 in embedded mode).
    pub stream_seq: i64,
    pub events_applied: i64,
}

/// One event as delivered to a projection; `stream_seq` is set when it came
/// through JetStream.
#[derive(Debug, Clone)]
pub struct Delivered {
    pub event: StoredEvent,
    pub stream_seq: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The stream skipped messages (consumer reset, purge): re-position.
    #[error("stream gap: expected sequence {expected}, got {got}")]
    Gap { expected: i64, got: i64 },
    /// An event cannot be decoded: the events before it were applied and
    /// checkpointed, the error is recorded on the checkpoint, and the
    /// projection stays at that event until it can read it.
    #[error("projection stopped: {0}")]
    Stuck(DecodeError),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl From<sqlx::Error> for ApplyError {
    fn from(e: sqlx::Error) -> Self {
        ApplyError::Other(e.into())
    }
}

pub async fn load(db: &Db, name: &str) -> Result<Checkpoint, sqlx::Error> {
    let row: Option<(i64, i64, i64, i64)> = on_db!(db, p => {
        sqlx::query_as(
            "SELECT tx_id, global_position, stream_seq, events_applied FROM projection_checkpoints WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(p)
        .await?
    });
    Ok(row
        .map(|(t, g, s, n)| Checkpoint {
            position: Position::new(t, g),
            stream_seq: s,
            events_applied: n,
        })
        .unwrap_or_default())
}

/// Read the checkpoint inside `tx`, locking it against other writers.
pub(crate) async fn lock(tx: &mut DbTx, name: &str) -> Result<Checkpoint, sqlx::Error> {
    let for_update = match tx {
        DbTx::Postgres(_) => " FOR UPDATE",
        DbTx::Sqlite(_) => "",
    };
    let sql = format!(
        "SELECT tx_id, global_position, stream_seq, events_applied FROM projection_checkpoints WHERE name = $1{for_update}"
    );
    on_tx!(tx, c => {
        // Taking a write lock first also serialises SQLite writers here.
        sqlx::query("INSERT INTO projection_checkpoints (name) VALUES ($1) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .execute(&mut *c)
            .await?;
        let (t, g, s, n): (i64, i64, i64, i64) = sqlx::query_as(&sql).bind(name).fetch_one(&mut *c).await?;
        Ok(Checkpoint { position: Position::new(t, g), stream_seq: s, events_applied: n })
    })
}

/// Move the checkpoint; the projection applied events, so any recorded
/// error is cleared.
pub(crate) async fn store(tx: &mut DbTx, name: &str, cp: &Checkpoint) -> Result<(), sqlx::Error> {
    let now = Utc::now();
    on_tx!(tx, c => {
        sqlx::query(
            "UPDATE projection_checkpoints SET tx_id = $2, global_position = $3, stream_seq = $4, \
             events_applied = $5, updated_at = $6, error = NULL, error_event_id = NULL, error_at = NULL \
             WHERE name = $1",
        )
        .bind(name)
        .bind(cp.position.tx_id)
        .bind(cp.position.global_position)
        .bind(cp.stream_seq)
        .bind(cp.events_applied)
        .bind(now)
        .execute(&mut *c)
        .await
        .map(|_| ())
    })
}

const RECORD_ERROR: &str = "UPDATE projection_checkpoints SET error = $2, \
     error_at = CASE WHEN error_at IS NOT NULL AND error_event_id IS NOT DISTINCT FROM $3 THEN error_at ELSE $4 END, \
     error_event_id = $3 WHERE name = $1";

/// Record why the projection is stuck and at which event (`error_at`
/// stays the first time it failed there).
async fn record_error_tx(
    tx: &mut DbTx,
    name: &str,
    event_id: Option<uuid::Uuid>,
    error: &str,
) -> Result<(), sqlx::Error> {
    let sql = match tx {
        DbTx::Postgres(_) => RECORD_ERROR.to_string(),
        DbTx::Sqlite(_) => RECORD_ERROR.replace("IS NOT DISTINCT FROM", "IS"),
    };
    let event_id = event_id.map(|e| e.to_string());
    on_tx!(tx, c => {
        sqlx::query("INSERT INTO projection_checkpoints (name) VALUES ($1) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .execute(&mut *c)
            .await?;
        sqlx::query(&sql)
            .bind(name)
            .bind(error)
            .bind(&event_id)
            .bind(Utc::now())
            .execute(&mut *c)
            .await
            .map(|_| ())
    })
}

/// Record a failure outside the failed transaction (it was rolled back).
pub(crate) async fn record_error(
    db: &Db,
    name: &str,
    event_id: Option<uuid::Uuid>,
    error: &str,
) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    record_error_tx(&mut tx, name, event_id, error).await?;
    tx.commit().await
}

/// The layout version stored beside the checkpoint (`None`: none yet — a
/// fresh database, or tables built before versions were recorded).
pub async fn layout_version(db: &Db, name: &str) -> Result<Option<i64>, sqlx::Error> {
    let row: Option<(Option<i64>,)> = on_db!(db, p => {
        sqlx::query_as("SELECT layout_version FROM projection_checkpoints WHERE name = $1")
            .bind(name)
            .fetch_optional(p)
            .await?
    });
    Ok(row.and_then(|r| r.0))
}

pub(crate) async fn set_layout_version(
    tx: &mut DbTx,
    name: &str,
    version: u32,
) -> Result<(), sqlx::Error> {
    on_tx!(tx, c => {
        sqlx::query(
            "INSERT INTO projection_checkpoints (name, layout_version) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET layout_version = excluded.layout_version",
        )
        .bind(name)
        .bind(i64::from(version))
        .execute(&mut *c)
        .await
        .map(|_| ())
    })
}

#[derive(Debug, Clone, Default)]
pub struct BatchResult {
    pub applied: usize,
    pub skipped: usize,
    pub checkpoint: Checkpoint,
}

/// Apply a batch and move the checkpoint, all in one transaction.
///
/// A delivery at or before the checkpoint is skipped (redelivery). With
/// JetStream, the stream sequence must advance by exactly one: anything else
/// is a [`ApplyError::Gap`] and nothing is written. An event that cannot be
/// decoded is [`ApplyError::Stuck`]: the events before it are applied and
/// the checkpoint stops right before it, with the error recorded.
pub async fn apply_batch(
    db: &Db,
    p: &dyn Projection,
    sfx: &str,
    batch: &[Delivered],
) -> Result<BatchResult, ApplyError> {
    let mut tx = db.begin().await?;
    let mut cp = lock(&mut tx, p.name()).await?;
    let mut res = BatchResult::default();
    let mut todo: Vec<&StoredEvent> = Vec::with_capacity(batch.len());
    // The checkpoint as it stands before each event of `todo`.
    let mut before: Vec<Checkpoint> = Vec::with_capacity(batch.len());
    for d in batch {
        let prior = cp.clone();
        if let Some(seq) = d.stream_seq {
            if seq <= cp.stream_seq {
                res.skipped += 1;
                continue;
            }
            if cp.stream_seq > 0 && seq != cp.stream_seq + 1 {
                return Err(ApplyError::Gap {
                    expected: cp.stream_seq + 1,
                    got: seq,
                });
            }
            cp.stream_seq = seq;
        }
        if d.event.position() <= cp.position {
            res.skipped += 1;
            continue;
        }
        todo.push(&d.event);
        before.push(prior);
        cp.position = d.event.position();
        cp.events_applied += 1;
        res.applied += 1;
    }
    match p.apply_all(&mut tx, sfx, &todo).await? {
        Applied::All => {
            store(&mut tx, p.name(), &cp).await?;
            tx.commit().await?;
            res.checkpoint = cp;
            Ok(res)
        }
        Applied::StoppedAt { index, error } => {
            let at = &before[index];
            if index > 0 {
                store(&mut tx, p.name(), at).await?;
            }
            record_error_tx(&mut tx, p.name(), Some(error.event_id), &error.to_string()).await?;
            tx.commit().await?;
            Err(ApplyError::Stuck(error))
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitOutcome {
    Reached,
    TimedOut,
}

/// Read-your-writes: wait (bounded) until projection `name` has applied the
/// event at `global_position`.
pub async fn wait_for(
    db: &Db,
    feed: &Feed,
    name: &str,
    global_position: i64,
    timeout: Duration,
) -> Result<WaitOutcome, sqlx::Error> {
    let deadline = Instant::now() + timeout;
    let mut target = None;
    loop {
        if target.is_none() {
            target = feed.position_of(global_position).await?;
        }
        if let Some(t) = target
            && load(db, name).await?.position >= t
        {
            return Ok(WaitOutcome::Reached);
        }
        if Instant::now() >= deadline {
            return Ok(WaitOutcome::TimedOut);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ProjectionStatus {
    pub name: String,
    pub tx_id: i64,
    pub global_position: i64,
    pub stream_seq: i64,
    pub events_applied: i64,
    /// Events in the store after this projection's checkpoint.
    pub lag: i64,
    pub head: i64,
    pub updated_at: Option<DateTime<Utc>>,
    /// Layout version of the code / stored beside the checkpoint.
    pub version: u32,
    pub stored_version: Option<i64>,
    /// Set while the projection is stuck: why, at which event, since when.
    pub error: Option<String>,
    pub error_event_id: Option<String>,
    pub error_at: Option<DateTime<Utc>>,
}

type StatusRow = (
    DateTime<Utc>,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<DateTime<Utc>>,
);

pub async fn status(
    db: &Db,
    feed: &Feed,
    projections: &[std::sync::Arc<dyn Projection>],
) -> Result<Vec<ProjectionStatus>, sqlx::Error> {
    let head = feed.head().await?;
    let mut out = vec![];
    for p in projections {
        let cp = load(db, p.name()).await?;
        let row: Option<StatusRow> = on_db!(db, pool => {
            sqlx::query_as(
                "SELECT updated_at, layout_version, error, error_event_id, error_at \
                 FROM projection_checkpoints WHERE name = $1",
            )
            .bind(p.name())
            .fetch_optional(pool)
            .await?
        });
        let (updated_at, stored_version, error, error_event_id, error_at) = match row {
            Some((u, v, e, id, at)) => (Some(u), v, e, id, at),
            None => (None, None, None, None, None),
        };
        out.push(ProjectionStatus {
            name: p.name().into(),
            tx_id: cp.position.tx_id,
            global_position: cp.position.global_position,
            stream_seq: cp.stream_seq,
            events_applied: cp.events_applied,
            lag: feed.count_after(cp.position).await?,
            head,
            updated_at,
            version: p.version(),
            stored_version,
            error,
            error_event_id,
            error_at,
        });
    }
    Ok(out)
}

/// How far one projection is behind one account's own events (what an
/// account's owner may see: nothing of the other accounts).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct AccountLag {
    pub name: String,
    /// The account's events the projection has not applied yet.
    pub behind: i64,
    /// When the projection last applied events.
    pub updated_at: Option<DateTime<Utc>>,
    /// The projection is stopped at an event it cannot read (details for operators).
    pub stuck: bool,
}

pub async fn account_lag(
    db: &Db,
    feed: &Feed,
    projections: &[std::sync::Arc<dyn Projection>],
    account_id: &str,
) -> Result<Vec<AccountLag>, sqlx::Error> {
    let mut out = vec![];
    for p in projections {
        let cp = load(db, p.name()).await?;
        let row: Option<(DateTime<Utc>, Option<String>)> = on_db!(db, pool => {
            sqlx::query_as("SELECT updated_at, error FROM projection_checkpoints WHERE name = $1")
                .bind(p.name())
                .fetch_optional(pool)
                .await?
        });
        out.push(AccountLag {
            name: p.name().into(),
            behind: feed.count_after_for(cp.position, account_id).await?,
            updated_at: row.as_ref().map(|r| r.0),
            stuck: row.is_some_and(|r| r.1.is_some()),
        });
    }
    Ok(out)
}

/// A projection that is stuck (readiness).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Stuck {
    pub projection: String,
    pub event_id: Option<String>,
    pub error: String,
    pub since: Option<DateTime<Utc>>,
}

/// The projections among `projections` that recorded an error and have not
/// applied events since.
pub async fn stuck(
    db: &Db,
    projections: &[std::sync::Arc<dyn Projection>],
) -> Result<Vec<Stuck>, sqlx::Error> {
    type Row = (String, Option<String>, String, Option<DateTime<Utc>>);
    let rows: Vec<Row> = on_db!(db, pool => {
        sqlx::query_as(
            "SELECT name, error_event_id, error, error_at FROM projection_checkpoints \
             WHERE error IS NOT NULL ORDER BY name",
        )
        .fetch_all(pool)
        .await?
    });
    Ok(rows
        .into_iter()
        .filter(|r| projections.iter().any(|p| p.name() == r.0))
        .map(|(projection, event_id, error, since)| Stuck {
            projection,
            event_id,
            error,
            since,
        })
        .collect())
}
