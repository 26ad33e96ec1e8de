//! The global feed: every committed event exactly once, in one total order.
//!
//! PostgreSQL hands out `global_position` at INSERT time, but transactions
//! commit in any order, so "everything after the last position I saw" skips
//! an event whose transaction was slower than a later one. The feed instead
//! reads only rows written by transactions older than every *appending*
//! transaction still running — the horizon, `igny8_feed_horizon()`
//! (schema/postgres/0004): appenders announce themselves with a shared
//! advisory lock before they have a transaction id, and the horizon is the
//! lowest id among them (or the next id to be assigned). Rows below it are
//! final, committed or gone. It orders by `(tx_id, global_position)` and
//! callers checkpoint that pair. A held-open append delays the feed; it
//! never makes it skip; a transaction that appends nothing (another
//! database's, another schema's, a report's, a `pg_dump`) does not delay it.
//!
//! The horizon is taken in one statement and the rows read in the next (a
//! newer snapshot): an appender below the horizon had finished by then, so
//! its committed rows are visible to the read.
//!
//! SQLite serialises writers, so rowid order is commit order and `tx_id` is 0.

use crate::db::Db;
use crate::event::{
    EVENT_COLUMNS, PgEventRow, Position, SqliteEventRow, StoredEvent, from_sqlite_rows,
};
use std::sync::Arc;
use tokio::sync::Notify;

/// Run one event query, with the same binds, on either backend.
macro_rules! fetch_events {
    ($db:expr, $sql:expr $(, $bind:expr)*) => {
        match $db {
            Db::Postgres(p) => {
                let rows: Vec<PgEventRow> = sqlx::query_as($sql)$(.bind($bind))*.fetch_all(p).await?;
                Ok(rows.into_iter().map(Into::into).collect())
            }
            Db::Sqlite(p) => {
                let rows: Vec<SqliteEventRow> = sqlx::query_as($sql)$(.bind($bind))*.fetch_all(p).await?;
                from_sqlite_rows(rows)
            }
        }
    };
}

#[derive(Clone)]
pub struct Feed {
    db: Db,
    /// Woken after each local commit (the in-process feed's doorbell).
    pub notify: Arc<Notify>,
}

impl Feed {
    pub fn new(db: Db, notify: Arc<Notify>) -> Self {
        Self { db, notify }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Whether any row at all lies beyond `after` (one index probe): an idle
    /// reader then needs no horizon, whose scan of the lock table it spares
    /// the appenders. A row that appears later is seen by the next read.
    async fn anything_after(&self, after: Position) -> Result<bool, sqlx::Error> {
        let Db::Postgres(p) = &self.db else {
            return Ok(true);
        };
        let (any,): (bool,) = sqlx::query_as(
            "SELECT EXISTS (SELECT 1 FROM events WHERE (tx_id, global_position) > ($1, $2))",
        )
        .bind(after.tx_id)
        .bind(after.global_position)
        .fetch_one(p)
        .await?;
        Ok(any)
    }

    /// The feed's horizon: rows of transactions below it are final (on
    /// PostgreSQL; SQLite commits in rowid order and needs none).
    pub async fn horizon(&self) -> Result<i64, sqlx::Error> {
        match &self.db {
            Db::Postgres(p) => {
                let (h,): (i64,) = sqlx::query_as("SELECT igny8_feed_horizon()")
                    .fetch_one(p)
                    .await?;
                Ok(h)
            }
            Db::Sqlite(_) => Ok(i64::MAX),
        }
    }

    /// The gap-safe read: final events strictly after `after`, in feed
    /// order, narrowed by `extra` (an SQL condition on `$5`, or empty); `$4`
    /// is the horizon, taken just before by [`Feed::horizon`].
    fn after_sql(&self, extra: &str) -> String {
        match &self.db {
            Db::Postgres(_) => format!(
                "SELECT {EVENT_COLUMNS} FROM events \
                 WHERE {extra}(tx_id, global_position) > ($1, $2) AND tx_id < $4 \
                 ORDER BY tx_id, global_position LIMIT $3"
            ),
            // tx_id is always 0 here: commit order is rowid order.
            Db::Sqlite(_) => format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE {extra}tx_id >= $1 AND global_position > $2 \
                   AND tx_id < $4 ORDER BY global_position LIMIT $3"
            ),
        }
    }

    /// Up to `limit` final events strictly after `after`, in feed order.
    pub async fn read_after(
        &self,
        after: Position,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, sqlx::Error> {
        if !self.anything_after(after).await? {
            return Ok(vec![]);
        }
        let horizon = self.horizon().await?;
        let sql = self.after_sql("");
        fetch_events!(
            &self.db,
            &sql,
            after.tx_id,
            after.global_position,
            limit,
            horizon
        )
    }

    /// Final events strictly after `after` whose `column` equals `value`,
    /// in feed order (the same gap-safe rule as [`Feed::read_after`]).
    async fn where_after(
        &self,
        column: &'static str,
        value: &str,
        after: Position,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, sqlx::Error> {
        let horizon = self.horizon().await?;
        let sql = self.after_sql(&format!("{column} = $5 AND "));
        fetch_events!(
            &self.db,
            &sql,
            after.tx_id,
            after.global_position,
            limit,
            horizon,
            value
        )
    }

    /// One account's final events strictly after `after`, in feed order: an
    /// audit trail to page through.
    pub async fn account_after(
        &self,
        account_id: &str,
        after: Position,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, sqlx::Error> {
        self.where_after("account_id", account_id, after, limit)
            .await
    }

    /// Final events of one aggregate type strictly after `after`, in feed
    /// order (readers that care about one kind of event, e.g. job workers).
    pub async fn type_after(
        &self,
        aggregate_type: &str,
        after: Position,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, sqlx::Error> {
        self.where_after("aggregate_type", aggregate_type, after, limit)
            .await
    }

    /// Events in `(after, upto]` in feed order, without the horizon guard.
    /// Only for ranges already delivered by [`Feed::read_after`] (rebuild catch-up).
    pub async fn read_range(
        &self,
        after: Position,
        upto: Position,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, sqlx::Error> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM events \
             WHERE (tx_id, global_position) > ($1, $2) AND (tx_id, global_position) <= ($3, $4) \
             ORDER BY tx_id, global_position LIMIT $5"
        );
        fetch_events!(
            &self.db,
            &sql,
            after.tx_id,
            after.global_position,
            upto.tx_id,
            upto.global_position,
            limit
        )
    }

    /// The feed position of the event at `global_position`, if it exists.
    pub async fn position_of(&self, global_position: i64) -> Result<Option<Position>, sqlx::Error> {
        let row: Option<(i64, i64)> = crate::on_db!(&self.db, p => {
            sqlx::query_as("SELECT tx_id, global_position FROM events WHERE global_position = $1")
                .bind(global_position)
                .fetch_optional(p)
                .await?
        });
        Ok(row.map(|(t, g)| Position::new(t, g)))
    }

    /// Whether the event at `global_position` exists and readers of the
    /// feed can see it (on PostgreSQL: every transaction that might commit
    /// before it has ended).
    pub async fn visible(&self, global_position: i64) -> Result<bool, sqlx::Error> {
        match &self.db {
            Db::Postgres(p) => {
                let horizon = self.horizon().await?;
                let row: Option<(bool,)> =
                    sqlx::query_as("SELECT tx_id < $2 FROM events WHERE global_position = $1")
                        .bind(global_position)
                        .bind(horizon)
                        .fetch_optional(p)
                        .await?;
                Ok(row.is_some_and(|r| r.0))
            }
            Db::Sqlite(_) => Ok(self.position_of(global_position).await?.is_some()),
        }
    }

    /// The highest global position written so far (0 when empty).
    pub async fn head(&self) -> Result<i64, sqlx::Error> {
        let row: (Option<i64>,) = crate::on_db!(&self.db, p => {
            sqlx::query_as("SELECT max(global_position) FROM events").fetch_one(p).await?
        });
        Ok(row.0.unwrap_or(0))
    }

    /// How many events lie after `pos` (the lag of a reader at `pos`).
    pub async fn count_after(&self, pos: Position) -> Result<i64, sqlx::Error> {
        let row: (i64,) = crate::on_db!(&self.db, p => {
            sqlx::query_as("SELECT count(*) FROM events WHERE (tx_id, global_position) > ($1, $2)")
                .bind(pos.tx_id)
                .bind(pos.global_position)
                .fetch_one(p)
                .await?
        });
        Ok(row.0)
    }

    /// Events of one account after `pos` in the feed's order.
    pub async fn count_after_for(
        &self,
        pos: Position,
        account_id: &str,
    ) -> Result<i64, sqlx::Error> {
        let row: (i64,) = crate::on_db!(&self.db, p => {
            sqlx::query_as(
                "SELECT count(*) FROM events WHERE account_id = $3 AND (tx_id, global_position) > ($1, $2)",
            )
            .bind(pos.tx_id)
            .bind(pos.global_position)
            .bind(account_id)
            .fetch_one(p)
            .await?
        });
        Ok(row.0)
    }

    /// One aggregate's events with `sequence >= from_sequence`, in order.
    pub async fn aggregate_events(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        from_sequence: i64,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, sqlx::Error> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 \
             AND sequence >= $3 ORDER BY sequence LIMIT $4"
        );
        fetch_events!(
            &self.db,
            &sql,
            aggregate_type,
            aggregate_id,
            from_sequence,
            limit
        )
    }
}
