//! Event stores behind cqrs-es's `PersistedEventRepository`.
//!
//! [`Repo`] is the one type the command bus uses; it delegates to postgres-es
//! on PostgreSQL (loads, snapshots; plain appends go as one statement, see
//! [`append_one_statement`]) and to [`SqliteEventRepository`] on SQLite. Both honour the
//! same contract (see `tests/it/conformance.rs`): a second writer at the same
//! version fails with `OptimisticLockError` and nothing is overwritten.

mod sqlite;

pub use sqlite::SqliteEventRepository;

use crate::db::Db;
use cqrs_es::Aggregate;
use cqrs_es::persist::{
    PersistedEventRepository, PersistenceError, ReplayStream, SerializedEvent, SerializedSnapshot,
};
use postgres_es::PostgresEventRepository;
use serde_json::Value;
use sqlx::PgPool;
use std::sync::Arc;

#[derive(Clone)]
pub enum Repo {
    Postgres(Arc<PostgresEventRepository>, PgPool),
    Sqlite(SqliteEventRepository),
}

impl Repo {
    pub fn new(db: &Db) -> Self {
        match db {
            Db::Postgres(p) => {
                Repo::Postgres(Arc::new(PostgresEventRepository::new(p.clone())), p.clone())
            }
            Db::Sqlite(p) => Repo::Sqlite(SqliteEventRepository::new(p.clone())),
        }
    }
}

/// The append without a snapshot, as one statement: the rows postgres-es
/// would insert inside BEGIN … COMMIT, in one multi-row INSERT, which is
/// atomic on its own. One round trip instead of three; same contract: a
/// duplicate `(aggregate_type, aggregate_id, sequence)` (or a reused
/// idempotency key) is an `OptimisticLockError` and nothing is written.
#[allow(clippy::type_complexity)]
async fn append_one_statement(
    pool: &PgPool,
    events: &[SerializedEvent],
) -> Result<(), PersistenceError> {
    let mut cols: (
        Vec<&str>,
        Vec<&str>,
        Vec<i64>,
        Vec<&str>,
        Vec<&str>,
        Vec<&Value>,
        Vec<&Value>,
    ) = Default::default();
    for e in events {
        cols.0.push(&e.aggregate_type);
        cols.1.push(&e.aggregate_id);
        cols.2.push(e.sequence as i64);
        cols.3.push(&e.event_type);
        cols.4.push(&e.event_version);
        cols.5.push(&e.payload);
        cols.6.push(&e.metadata);
    }
    let result = sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::int8[], $4::text[], $5::text[], $6::jsonb[], $7::jsonb[])",
    )
    .bind(cols.0)
    .bind(cols.1)
    .bind(cols.2)
    .bind(cols.3)
    .bind(cols.4)
    .bind(cols.5)
    .bind(cols.6)
    .execute(pool)
    .await;
    match result {
        Ok(_) => Ok(()),
        Err(sqlx::Error::Database(d)) if d.code().as_deref() == Some("23505") => {
            Err(PersistenceError::OptimisticLockError)
        }
        Err(e @ (sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::Tls(_))) => {
            Err(PersistenceError::ConnectionError(Box::new(e)))
        }
        Err(e) => Err(PersistenceError::UnknownError(Box::new(e))),
    }
}

impl Repo {
    /// Events of any aggregates, appended atomically without snapshots (a
    /// unit of work). Same contract as `persist`: a taken sequence is an
    /// `OptimisticLockError` and nothing is written.
    pub(crate) async fn append_batch(
        &self,
        events: &[SerializedEvent],
    ) -> Result<(), PersistenceError> {
        match self {
            Repo::Postgres(_, pool) => append_one_statement(pool, events).await,
            Repo::Sqlite(r) => r.append(events).await,
        }
    }
}

impl PersistedEventRepository for Repo {
    async fn get_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        match self {
            Repo::Postgres(r, _) => r.get_events::<A>(aggregate_id).await,
            Repo::Sqlite(r) => r.get_events::<A>(aggregate_id).await,
        }
    }

    async fn get_last_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
        last_sequence: usize,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        match self {
            Repo::Postgres(r, _) => r.get_last_events::<A>(aggregate_id, last_sequence).await,
            Repo::Sqlite(r) => r.get_last_events::<A>(aggregate_id, last_sequence).await,
        }
    }

    async fn get_snapshot<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Option<SerializedSnapshot>, PersistenceError> {
        match self {
            Repo::Postgres(r, _) => r.get_snapshot::<A>(aggregate_id).await,
            Repo::Sqlite(r) => r.get_snapshot::<A>(aggregate_id).await,
        }
    }

    async fn persist<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        snapshot_update: Option<(String, Value, usize)>,
    ) -> Result<(), PersistenceError> {
        let snapshot_update = match snapshot_update {
            Some((id, payload, n)) => Some((id, complete_snapshot::<A>(payload, events)?, n)),
            None => None,
        };
        match self {
            Repo::Postgres(_, pool) if snapshot_update.is_none() => {
                append_one_statement(pool, events).await
            }
            Repo::Postgres(r, _) => r.persist::<A>(events, snapshot_update).await,
            Repo::Sqlite(r) => r.persist::<A>(events, snapshot_update).await,
        }
    }

    async fn stream_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<ReplayStream, PersistenceError> {
        match self {
            Repo::Postgres(r, _) => r.stream_events::<A>(aggregate_id).await,
            Repo::Sqlite(r) => r.stream_events::<A>(aggregate_id).await,
        }
    }

    async fn stream_all_events<A: Aggregate>(&self) -> Result<ReplayStream, PersistenceError> {
        match self {
            Repo::Postgres(r, _) => r.stream_all_events::<A>().await,
            Repo::Sqlite(r) => r.stream_all_events::<A>().await,
        }
    }
}

/// cqrs-es 0.5 builds a snapshot from the events of a commit only up to the
/// last snapshot boundary it crosses, while both repositories record it
/// under the commit's last sequence: a command writing several events
/// across a boundary (a 100,000-row import is 51 events) left a snapshot
/// that lacked its last events, and every later load skipped them. Here the
/// snapshot is brought up to the commit's last event before it is written.
pub fn complete_snapshot<A: Aggregate>(
    payload: Value,
    events: &[SerializedEvent],
) -> Result<Value, PersistenceError> {
    let Some(first) = events.first() else {
        return Ok(payload);
    };
    let applied = applied_by_cqrs_es(first.sequence - 1, events.len(), crate::bus::SNAPSHOT_EVERY);
    if applied >= events.len() {
        return Ok(payload);
    }
    let mut state: A =
        serde_json::from_value(payload).map_err(|e| PersistenceError::UnknownError(Box::new(e)))?;
    for e in &events[applied..] {
        let event: A::Event = serde_json::from_value(e.payload.clone())
            .map_err(|e| PersistenceError::UnknownError(Box::new(e)))?;
        state.apply(event);
    }
    serde_json::to_value(&state).map_err(|e| PersistenceError::UnknownError(Box::new(e)))
}

/// How many of a commit's events cqrs-es applied to the snapshot it hands
/// over (`SourceOfTruth::commit_snapshot_with_addl_events`).
fn applied_by_cqrs_es(current_sequence: usize, num_events: usize, every: usize) -> usize {
    let next_at = every - (current_sequence % every);
    if num_events < next_at {
        return 0;
    }
    let addl = num_events - next_at;
    next_at + addl - (addl % every)
}

/// Record `payload` as the snapshot of an aggregate at `sequence`, unless a
/// newer one is there (best effort: a snapshot is a cache of the events; a
/// failure only means the next load reads more events). The snapshot
/// counter moves on, so a command that loaded the older snapshot and
/// crosses a boundary itself rewrites it after a retry.
pub async fn write_snapshot(
    db: &crate::db::Db,
    aggregate_type: &str,
    aggregate_id: &str,
    sequence: usize,
    payload: &Value,
) {
    let sql = match db {
        crate::db::Db::Postgres(_) => {
            "INSERT INTO snapshots (aggregate_type, aggregate_id, last_sequence, current_snapshot, payload) \
             VALUES ($1, $2, $3, 1, $4::jsonb) ON CONFLICT (aggregate_type, aggregate_id) DO UPDATE \
             SET last_sequence = excluded.last_sequence, payload = excluded.payload, \
                 current_snapshot = snapshots.current_snapshot + 1 \
             WHERE snapshots.last_sequence < excluded.last_sequence"
        }
        crate::db::Db::Sqlite(_) => {
            "INSERT INTO snapshots (aggregate_type, aggregate_id, last_sequence, current_snapshot, payload) \
             VALUES ($1, $2, $3, 1, $4) ON CONFLICT (aggregate_type, aggregate_id) DO UPDATE \
             SET last_sequence = excluded.last_sequence, payload = excluded.payload, \
                 current_snapshot = snapshots.current_snapshot + 1 \
             WHERE snapshots.last_sequence < excluded.last_sequence"
        }
    };
    let text = payload.to_string();
    let r = crate::on_db!(db, p => sqlx::query(sql)
        .bind(aggregate_type).bind(aggregate_id).bind(sequence as i64).bind(&text)
        .execute(p).await.map(|_| ()));
    if let Err(e) = r {
        tracing::debug!(error = %e, aggregate_type, aggregate_id, "snapshot not written");
    }
}

/// The current state and version of many aggregates of one type in two
/// statements (their snapshots, then every event after each snapshot)
/// instead of two per aggregate: a scheduler firing a hundred rules in one
/// unit of work loads them this way. Events only ever follow a snapshot, so
/// the two reads need no common transaction. An id never written is absent.
pub async fn load_many<A: igny8_domain::Aggregate>(
    db: &crate::db::Db,
    ids: &[String],
) -> Result<std::collections::HashMap<String, (A, u64)>, sqlx::Error> {
    use std::collections::HashMap;
    let mut out: HashMap<String, (A, u64)> = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let bad = |e: serde_json::Error| sqlx::Error::Decode(Box::new(e));
    // Snapshots.
    let snaps: Vec<(String, i64, Value)> = match db {
        crate::db::Db::Postgres(p) => {
            sqlx::query_as(
                "SELECT aggregate_id, last_sequence, payload FROM snapshots \
             WHERE aggregate_type = $1 AND aggregate_id = ANY($2)",
            )
            .bind(A::TYPE)
            .bind(ids)
            .fetch_all(p)
            .await?
        }
        crate::db::Db::Sqlite(p) => {
            let rows: Vec<(String, i64, String)> = sqlx::query_as(
                "SELECT aggregate_id, last_sequence, payload FROM snapshots \
                 WHERE aggregate_type = $1 AND aggregate_id IN (SELECT value FROM json_each($2))",
            )
            .bind(A::TYPE)
            .bind(serde_json::to_string(ids).map_err(bad)?)
            .fetch_all(p)
            .await?;
            rows.into_iter()
                .map(|(id, seq, text)| Ok((id, seq, serde_json::from_str(&text).map_err(bad)?)))
                .collect::<Result<_, sqlx::Error>>()?
        }
    };
    for (id, seq, payload) in snaps {
        let state: A = serde_json::from_value(payload).map_err(bad)?;
        out.insert(id, (state, seq.max(0) as u64));
    }
    // The events after each snapshot (after 0 for those without one).
    let after: Vec<i64> = ids
        .iter()
        .map(|id| out.get(id).map(|(_, v)| *v as i64).unwrap_or(0))
        .collect();
    let events: Vec<(String, i64, Value)> = match db {
        crate::db::Db::Postgres(p) => {
            sqlx::query_as(
                "SELECT e.aggregate_id, e.sequence, e.payload FROM events e \
             JOIN unnest($2::text[], $3::int8[]) AS w(id, after) \
               ON e.aggregate_id = w.id AND e.sequence > w.after \
             WHERE e.aggregate_type = $1 ORDER BY e.aggregate_id, e.sequence",
            )
            .bind(A::TYPE)
            .bind(ids)
            .bind(&after)
            .fetch_all(p)
            .await?
        }
        crate::db::Db::Sqlite(p) => {
            let pairs: Vec<(&String, i64)> = ids.iter().zip(after.iter().copied()).collect();
            let rows: Vec<(String, i64, String)> = sqlx::query_as(
                "SELECT e.aggregate_id, e.sequence, e.payload FROM json_each($2) w \
                 JOIN events e ON e.aggregate_type = $1 \
                   AND e.aggregate_id = json_extract(w.value, '$[0]') \
                   AND e.sequence > json_extract(w.value, '$[1]') \
                 ORDER BY e.aggregate_id, e.sequence",
            )
            .bind(A::TYPE)
            .bind(serde_json::to_string(&pairs).map_err(bad)?)
            .fetch_all(p)
            .await?;
            rows.into_iter()
                .map(|(id, seq, text)| Ok((id, seq, serde_json::from_str(&text).map_err(bad)?)))
                .collect::<Result<_, sqlx::Error>>()?
        }
    };
    for (id, seq, payload) in events {
        let event: A::Event = serde_json::from_value(payload).map_err(bad)?;
        let entry = out.entry(id).or_insert_with(|| (A::default(), 0));
        entry.0.apply(&event);
        entry.1 = seq.max(0) as u64;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn applied_events_as_cqrs_es_counts_them() {
        use super::applied_by_cqrs_es as f;
        assert_eq!(f(0, 51, 50), 50);
        assert_eq!(f(49, 3, 50), 1);
        assert_eq!(f(49, 1, 50), 1);
        assert_eq!(f(10, 40, 50), 40);
        assert_eq!(f(10, 140, 50), 140);
        assert_eq!(f(0, 10, 50), 0);
    }
}
