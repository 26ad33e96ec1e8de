//! One handle for both backends. Query text is written once (`$1`
//! placeholders work in both) and run through [`on_db!`] / [`on_tx!`], which
//! expand to one monomorphic copy per backend, so rows keep native types.

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, Postgres, Sqlite, SqlitePool, Transaction};
use std::str::FromStr;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

#[derive(Debug, Clone)]
pub enum Db {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

pub enum DbTx {
    Postgres(Transaction<'static, Postgres>),
    Sqlite(Transaction<'static, Sqlite>),
}

/// Run `$body` with `$pool` bound to the backend's pool.
#[macro_export]
macro_rules! on_db {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::db::Db::Postgres($pool) => $body,
            $crate::db::Db::Sqlite($pool) => $body,
        }
    };
}

/// Run `$body` with `$conn` bound to the transaction's connection
/// (`&mut PgConnection` / `&mut SqliteConnection`; reborrow with `&mut *$conn`).
#[macro_export]
macro_rules! on_tx {
    ($tx:expr, $conn:ident => $body:expr) => {
        match $tx {
            $crate::db::DbTx::Postgres(t) => {
                let $conn = &mut **t;
                $body
            }
            $crate::db::DbTx::Sqlite(t) => {
                let $conn = &mut **t;
                $body
            }
        }
    };
}

/// Migrations of `schema/<backend>/`, embedded in the binary: (version, description, sql).
type MigrationList = &'static [(i64, &'static str, &'static str)];

const PG_MIGRATIONS: MigrationList = &[
    (
        1,
        "event store",
        include_str!("../../schema/postgres/0001_event_store.sql"),
    ),
    (
        2,
        "drop stale snapshots",
        include_str!("../../schema/postgres/0002_drop_stale_snapshots.sql"),
    ),
    (
        3,
        "projection errors and layout versions",
        include_str!("../../schema/postgres/0003_projection_errors_and_versions.sql"),
    ),
    (
        4,
        "feed horizon of our appenders",
        include_str!("../../schema/postgres/0004_feed_horizon_of_our_appenders.sql"),
    ),
];
const SQLITE_MIGRATIONS: MigrationList = &[
    (
        1,
        "event store",
        include_str!("../../schema/sqlite/0001_event_store.sql"),
    ),
    (
        2,
        "drop stale snapshots",
        include_str!("../../schema/sqlite/0002_drop_stale_snapshots.sql"),
    ),
    (
        3,
        "projection errors and layout versions",
        include_str!("../../schema/sqlite/0003_projection_errors_and_versions.sql"),
    ),
];

#[derive(Debug)]
struct Embedded(MigrationList);

impl<'s> sqlx::migrate::MigrationSource<'s> for Embedded {
    fn resolve(
        self,
    ) -> futures::future::BoxFuture<
        's,
        Result<Vec<sqlx::migrate::Migration>, sqlx::error::BoxDynError>,
    > {
        Box::pin(async move {
            Ok(self
                .0
                .iter()
                .map(|(v, d, sql)| {
                    sqlx::migrate::Migration::new(
                        *v,
                        (*d).into(),
                        sqlx::migrate::MigrationType::Simple,
                        (*sql).into(),
                        false,
                    )
                })
                .collect())
        })
    }
}

#[derive(Debug, Clone)]
pub struct DbOptions {
    pub max_connections: u32,
    /// PostgreSQL only: run everything in this schema (tests use one per test).
    pub schema: Option<String>,
}

impl Default for DbOptions {
    fn default() -> Self {
        Self {
            max_connections: 20,
            schema: None,
        }
    }
}

impl Db {
    /// Connect to `postgres://...` or `sqlite://path`.
    pub async fn connect(url: &str, opts: &DbOptions) -> Result<Db, sqlx::Error> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let mut o = PgConnectOptions::from_str(url)?;
            if let Some(schema) = &opts.schema {
                o = o.options([("search_path", schema.as_str())]);
            }
            let pool = PgPoolOptions::new()
                .max_connections(opts.max_connections)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(o)
                .await?;
            Ok(Db::Postgres(pool))
        } else {
            let o = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(30))
                .foreign_keys(true);
            let pool = SqlitePoolOptions::new()
                .max_connections(opts.max_connections.clamp(1, 8))
                .acquire_timeout(Duration::from_secs(30))
                .connect_with(o)
                .await?;
            Ok(Db::Sqlite(pool))
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Db::Postgres(_) => Backend::Postgres,
            Db::Sqlite(_) => Backend::Sqlite,
        }
    }

    /// Apply the event-store migrations of `schema/<backend>/`.
    pub async fn migrate(&self) -> Result<(), sqlx::migrate::MigrateError> {
        match self {
            Db::Postgres(p) => {
                sqlx::migrate::Migrator::new(Embedded(PG_MIGRATIONS))
                    .await?
                    .run(p)
                    .await
            }
            Db::Sqlite(p) => {
                sqlx::migrate::Migrator::new(Embedded(SQLITE_MIGRATIONS))
                    .await?
                    .run(p)
                    .await
            }
        }
    }

    pub async fn begin(&self) -> Result<DbTx, sqlx::Error> {
        Ok(match self {
            Db::Postgres(p) => DbTx::Postgres(p.begin().await?),
            Db::Sqlite(p) => DbTx::Sqlite(p.begin().await?),
        })
    }

    /// Cheap liveness query for `/ready`.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        on_db!(self, p => sqlx::query("SELECT 1").execute(p).await.map(|_| ()))
    }

    pub async fn close(&self) {
        on_db!(self, p => p.close().await)
    }
}

impl DbTx {
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            DbTx::Postgres(t) => t.commit().await,
            DbTx::Sqlite(t) => t.commit().await,
        }
    }
    pub fn backend(&self) -> Backend {
        match self {
            DbTx::Postgres(_) => Backend::Postgres,
            DbTx::Sqlite(_) => Backend::Sqlite,
        }
    }
}

/// Leadership for singletons (the relay, each projection): holds a PostgreSQL
/// advisory lock on a dedicated connection, so one copy is active and the
/// others wait as hot standbys. The lock dies with the connection, i.e. with
/// the process. SQLite is single-process: no lock, `Ok(None)`.
/// Returns `Err` only when `shutdown` fires while waiting.
pub async fn hold_singleton(
    db: &Db,
    key: &str,
    shutdown: &mut tokio::sync::watch::Receiver<bool>,
) -> Result<Option<sqlx::PgConnection>, sqlx::Error> {
    let Db::Postgres(pool) = db else {
        return Ok(None);
    };
    let mut logged = false;
    loop {
        let mut conn = pool.acquire().await?;
        let (got,): (bool,) =
            // Scoped by schema: deployments sharing a database do not block each other.
        sqlx::query_as("SELECT pg_try_advisory_lock(hashtextextended(current_schema() || ':' || $1, 0))")
                .bind(key)
                .fetch_one(&mut *conn)
                .await?;
        if got {
            tracing::info!(key, "took leadership");
            // Detached from the pool: dropping it closes the session and frees the lock.
            return Ok(Some(conn.detach()));
        }
        drop(conn);
        if !logged {
            tracing::info!(key, "another copy is active; standing by");
            logged = true;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = shutdown.changed() => return Err(sqlx::Error::PoolClosed),
        }
    }
}

/// Whether `e` means the database cannot be reached right now (connection
/// refused or lost, pool exhausted, server shutting down or starting up),
/// as opposed to a bad statement or a broken row.
pub fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(d) => d.code().is_some_and(|c| {
            // 08: connection exception; 57P01-03: admin shutdown, crash
            // shutdown, cannot connect now; 53300: too many connections.
            c.starts_with("08") || matches!(c.as_ref(), "57P01" | "57P02" | "57P03" | "53300")
        }),
        _ => false,
    }
}
