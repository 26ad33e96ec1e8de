//! Event stores behind cqrs-es's `PersistedEventRepository`.
//!
//! [`Repo`] is the one type the command bus uses; it delegates to postgres-es
//! on PostgreSQL and to [`SqliteEventRepository`] on SQLite. Both honour the
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
use std::sync::Arc;

#[derive(Clone)]
pub enum Repo {
    Postgres(Arc<PostgresEventRepository>),
    Sqlite(SqliteEventRepository),
}

impl Repo {
    pub fn new(db: &Db) -> Self {
        match db {
            Db::Postgres(p) => Repo::Postgres(Arc::new(PostgresEventRepository::new(p.clone()))),
            Db::Sqlite(p) => Repo::Sqlite(SqliteEventRepository::new(p.clone())),
        }
    }
}

impl PersistedEventRepository for Repo {
    async fn get_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        match self {
            Repo::Postgres(r) => r.get_events::<A>(aggregate_id).await,
            Repo::Sqlite(r) => r.get_events::<A>(aggregate_id).await,
        }
    }

    async fn get_last_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
        last_sequence: usize,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        match self {
            Repo::Postgres(r) => r.get_last_events::<A>(aggregate_id, last_sequence).await,
            Repo::Sqlite(r) => r.get_last_events::<A>(aggregate_id, last_sequence).await,
        }
    }

    async fn get_snapshot<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Option<SerializedSnapshot>, PersistenceError> {
        match self {
            Repo::Postgres(r) => r.get_snapshot::<A>(aggregate_id).await,
            Repo::Sqlite(r) => r.get_snapshot::<A>(aggregate_id).await,
        }
    }

    async fn persist<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        snapshot_update: Option<(String, Value, usize)>,
    ) -> Result<(), PersistenceError> {
        match self {
            Repo::Postgres(r) => r.persist::<A>(events, snapshot_update).await,
            Repo::Sqlite(r) => r.persist::<A>(events, snapshot_update).await,
        }
    }

    async fn stream_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<ReplayStream, PersistenceError> {
        match self {
            Repo::Postgres(r) => r.stream_events::<A>(aggregate_id).await,
            Repo::Sqlite(r) => r.stream_events::<A>(aggregate_id).await,
        }
    }

    async fn stream_all_events<A: Aggregate>(&self) -> Result<ReplayStream, PersistenceError> {
        match self {
            Repo::Postgres(r) => r.stream_all_events::<A>().await,
            Repo::Sqlite(r) => r.stream_all_events::<A>().await,
        }
    }
}
