//! cqrs-es `PersistedEventRepository` over SQLite (WAL), with the semantics
//! of postgres-es: events of one commit go in one transaction; a duplicate
//! `(aggregate_type, aggregate_id, sequence)` or a stale snapshot version is
//! an `OptimisticLockError` and nothing is written.

use chrono::Utc;
use cqrs_es::Aggregate;
use cqrs_es::persist::{
    PersistedEventRepository, PersistenceError, ReplayStream, SerializedEvent, SerializedSnapshot,
};
use serde_json::Value;
use sqlx::{Row, SqlitePool};
use uuid::Uuid;

#[derive(Clone)]
pub struct SqliteEventRepository {
    pool: SqlitePool,
}

fn map_err(e: sqlx::Error) -> PersistenceError {
    if let sqlx::Error::Database(d) = &e {
        // 2067/1555: UNIQUE / PRIMARY KEY; 1811: RAISE(ABORT) from the idempotency trigger.
        let code = d.code().map(|c| c.to_string()).unwrap_or_default();
        if d.is_unique_violation() || code == "1811" || d.message().contains("idempotency key") {
            return PersistenceError::OptimisticLockError;
        }
    }
    match e {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => {
            PersistenceError::ConnectionError(Box::new(e))
        }
        other => PersistenceError::UnknownError(Box::new(other)),
    }
}

fn deser(e: serde_json::Error) -> PersistenceError {
    PersistenceError::DeserializationError(Box::new(e))
}

const SELECT: &str = "SELECT aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata \
                      FROM events WHERE aggregate_type = $1 AND aggregate_id = $2";

impl SqliteEventRepository {
    pub fn new(pool: SqlitePool) -> Self {
        Self { pool }
    }

    fn row_to_event(row: &sqlx::sqlite::SqliteRow) -> Result<SerializedEvent, PersistenceError> {
        let payload: String = row.get("payload");
        let metadata: String = row.get("metadata");
        let sequence: i64 = row.get("sequence");
        Ok(SerializedEvent::new(
            row.get("aggregate_id"),
            sequence as usize,
            row.get("aggregate_type"),
            row.get("event_type"),
            row.get("event_version"),
            serde_json::from_str(&payload).map_err(deser)?,
            serde_json::from_str(&metadata).map_err(deser)?,
        ))
    }

    async fn select(
        &self,
        sql: &str,
        aggregate_type: &str,
        aggregate_id: &str,
        after: i64,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        let rows = sqlx::query(sql)
            .bind(aggregate_type)
            .bind(aggregate_id)
            .bind(after)
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        rows.iter().map(Self::row_to_event).collect()
    }

    fn replay(events: Vec<SerializedEvent>) -> ReplayStream {
        let (mut feed, stream) = ReplayStream::new(events.len().max(1));
        tokio::spawn(async move {
            for e in events {
                if feed.push(Ok(e)).await.is_err() {
                    return;
                }
            }
        });
        stream
    }
}

/// Insert events (of any aggregates) in `tx`; the last sequence written.
async fn insert_events(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    events: &[SerializedEvent],
) -> Result<usize, PersistenceError> {
    let mut last_sequence = 0usize;
    let now = Utc::now();
    for e in events {
        last_sequence = e.sequence;
        let account_id = e.metadata.get("account_id").and_then(Value::as_str);
        sqlx::query(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, \
             payload, metadata, event_id, recorded_at, account_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&e.aggregate_type)
        .bind(&e.aggregate_id)
        .bind(e.sequence as i64)
        .bind(&e.event_type)
        .bind(&e.event_version)
        .bind(e.payload.to_string())
        .bind(e.metadata.to_string())
        .bind(Uuid::now_v7().to_string())
        .bind(now)
        .bind(account_id)
        .execute(&mut **tx)
        .await
        .map_err(map_err)?;
    }
    Ok(last_sequence)
}

impl SqliteEventRepository {
    /// Append events of any aggregates in one transaction, no snapshot.
    pub async fn append(&self, events: &[SerializedEvent]) -> Result<(), PersistenceError> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        insert_events(&mut tx, events).await?;
        tx.commit().await.map_err(map_err)
    }
}

impl PersistedEventRepository for SqliteEventRepository {
    async fn get_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        self.get_last_events::<A>(aggregate_id, 0).await
    }

    async fn get_last_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
        last_sequence: usize,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        let sql = format!("{SELECT} AND sequence > $3 ORDER BY sequence");
        self.select(&sql, A::TYPE, aggregate_id, last_sequence as i64)
            .await
    }

    async fn get_snapshot<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Option<SerializedSnapshot>, PersistenceError> {
        let row = sqlx::query(
            "SELECT aggregate_id, last_sequence, current_snapshot, payload FROM snapshots \
             WHERE aggregate_type = $1 AND aggregate_id = $2",
        )
        .bind(A::TYPE)
        .bind(aggregate_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        let Some(row) = row else { return Ok(None) };
        let payload: String = row.get("payload");
        let last: i64 = row.get("last_sequence");
        let current: i64 = row.get("current_snapshot");
        Ok(Some(SerializedSnapshot {
            aggregate_id: row.get("aggregate_id"),
            aggregate: serde_json::from_str(&payload).map_err(deser)?,
            current_sequence: last as usize,
            current_snapshot: current as usize,
        }))
    }

    async fn persist<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        snapshot_update: Option<(String, Value, usize)>,
    ) -> Result<(), PersistenceError> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let last_sequence = insert_events(&mut tx, events).await?;
        if let Some((aggregate_id, payload, current_snapshot)) = snapshot_update {
            let affected = if current_snapshot == 1 {
                sqlx::query(
                    "INSERT INTO snapshots (aggregate_type, aggregate_id, last_sequence, current_snapshot, payload) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(A::TYPE)
                .bind(&aggregate_id)
                .bind(last_sequence as i64)
                .bind(current_snapshot as i64)
                .bind(payload.to_string())
                .execute(&mut *tx)
                .await
                .map_err(map_err)?
                .rows_affected()
            } else {
                sqlx::query(
                    "UPDATE snapshots SET last_sequence = $3, payload = $6, current_snapshot = $4 \
                     WHERE aggregate_type = $1 AND aggregate_id = $2 AND current_snapshot = $5",
                )
                .bind(A::TYPE)
                .bind(&aggregate_id)
                .bind(last_sequence as i64)
                .bind(current_snapshot as i64)
                .bind(current_snapshot as i64 - 1)
                .bind(payload.to_string())
                .execute(&mut *tx)
                .await
                .map_err(map_err)?
                .rows_affected()
            };
            if affected != 1 {
                // Unlike postgres-es we decide before committing: nothing is written.
                return Err(PersistenceError::OptimisticLockError);
            }
        }
        tx.commit().await.map_err(map_err)?;
        Ok(())
    }

    async fn stream_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<ReplayStream, PersistenceError> {
        Ok(Self::replay(self.get_events::<A>(aggregate_id).await?))
    }

    async fn stream_all_events<A: Aggregate>(&self) -> Result<ReplayStream, PersistenceError> {
        let rows = sqlx::query(
            "SELECT aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata \
             FROM events WHERE aggregate_type = $1 ORDER BY global_position",
        )
        .bind(A::TYPE)
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        let events = rows
            .iter()
            .map(Self::row_to_event)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::replay(events))
    }
}
