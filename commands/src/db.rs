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
    (
        5,
        "idempotent secrets",
        include_str!("../../schema/postgres/0005_idempotent_secrets.sql"),
    ),
    (
        6,
        "wordpress request log",
        include_str!("../../schema/postgres/0006_wp_requests.sql"),
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
    (
        4,
        "idempotent secrets",
        include_str!("../../schema/sqlite/0004_idempotent_secrets.sql"),
    ),
    (
        5,
        "wordpress request log",
        include_str!("../../schema/sqlite/0005_wp_requests.sql"),
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

/// Leadership of a singleton (the relay, each projection): a PostgreSQL
/// advisory lock held by a session of its own, so one copy is active and
/// the others stand by. SQLite is single-process: always the leader.
///
/// The lock lives as long as that session. After a database restart or a
/// dropped connection it is gone, and another copy may take it while this
/// one still believes it leads, so the leader calls [`Leadership::check`]
/// before each batch and, when it fails, stops and queues up again. That
/// keeps one writer in the steady state; what makes a stale leader's batch
/// harmless in the instant between a check and a restart is the write
/// itself (a projection's batch locks its checkpoint row and skips what is
/// at or below it; each relay message names the stream sequence it must
/// follow, so JetStream refuses a stale leader's publish).
pub struct Leadership {
    key: String,
    /// `None` on SQLite (always leads).
    lock: Option<Option<sqlx::PgConnection>>,
}

impl Leadership {
    /// Wait until this copy leads, standing by while another does and
    /// retrying with backoff while the database is away (both reported to
    /// `health` as `component`). `None`: shutdown came first.
    pub async fn acquire(
        db: &Db,
        key: &str,
        health: &crate::health::Health,
        component: &str,
        shutdown: &mut tokio::sync::watch::Receiver<bool>,
    ) -> Option<Leadership> {
        let Db::Postgres(pool) = db else {
            return Some(Leadership {
                key: key.to_string(),
                lock: None,
            });
        };
        let mut backoff = crate::health::Backoff::new();
        let mut logged = false;
        loop {
            if *shutdown.borrow() {
                return None;
            }
            match try_lock(pool, key).await {
                Ok(Some(conn)) => {
                    tracing::info!(key, "took leadership");
                    health.ready(component, "active");
                    return Some(Leadership {
                        key: key.to_string(),
                        lock: Some(Some(conn)),
                    });
                }
                Ok(None) => {
                    if !logged {
                        tracing::info!(key, "another copy is active; standing by");
                        logged = true;
                    }
                    health.ready(component, "standby");
                    backoff.reset();
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = shutdown.changed() => {}
                    }
                }
                Err(e) => {
                    health.not_ready(component, format!("database unavailable: {e}"));
                    backoff.wait(shutdown).await;
                }
            }
        }
    }

    /// Whether this copy still leads: its lock's session answers. When it
    /// does not (a restart, a dropped connection, no answer in 2 s) the
    /// lock is gone; the session is dropped and the caller must stop
    /// writing and [`acquire`](Self::acquire) again.
    pub async fn check(&mut self) -> bool {
        let Some(lock) = self.lock.as_mut() else {
            return true;
        };
        let Some(conn) = lock.as_mut() else {
            return false;
        };
        let alive = matches!(
            tokio::time::timeout(
                Duration::from_secs(2),
                sqlx::query("SELECT 1").execute(&mut *conn)
            )
            .await,
            Ok(Ok(_))
        );
        if !alive {
            tracing::warn!(key = %self.key, "lost leadership (the lock's session is gone)");
            *lock = None;
        }
        alive
    }
}

/// The lock on a fresh session detached from the pool (dropping it closes
/// the session and frees the lock), or `None` if another session holds it.
async fn try_lock(pool: &PgPool, key: &str) -> Result<Option<sqlx::PgConnection>, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    // Scoped by schema: deployments sharing a database do not block each other.
    let (got,): (bool,) = sqlx::query_as(
        "SELECT pg_try_advisory_lock(hashtextextended(current_schema() || ':' || $1, 0))",
    )
    .bind(key)
    .fetch_one(&mut *conn)
    .await?;
    Ok(got.then(|| conn.detach()))
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
