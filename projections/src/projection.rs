//! The [`Projection`] trait (a read model fed by stored events, applied in
//! the runner's transaction) and the DDL helpers that create, index, drop
//! and make durable its tables, live or with a rebuild's suffix.

use async_trait::async_trait;
use igny8_commands::db::{Backend, Db, DbTx};
use igny8_commands::{DecodeError, StoredEvent};

/// An index of a read table: created as `{name}{suffix}` on `{table}{suffix}`.
pub struct Index {
    pub name: &'static str,
    pub columns: &'static str,
}

/// A read table. `postgres` / `sqlite` are `CREATE TABLE IF NOT EXISTS {t} (...)`
/// templates; `{t}` becomes the table's name plus a suffix (shadow tables
/// of a rebuild use `__rb`).
pub struct Table {
    pub name: &'static str,
    pub postgres: &'static str,
    pub sqlite: &'static str,
    pub indexes: &'static [Index],
}

/// How far [`Projection::apply_all`] got.
#[derive(Debug, Clone, PartialEq)]
pub enum Applied {
    /// Every event of the slice.
    All,
    /// The events before `index` were applied; `events[index]` cannot be
    /// read as its domain event, so neither it nor anything after it was.
    StoppedAt { index: usize, error: DecodeError },
}

#[async_trait]
pub trait Projection: Send + Sync + 'static {
    /// Stable name (checkpoint key, CLI argument).
    fn name(&self) -> &'static str;
    /// Layout version of the read tables (and of what the rows mean). Bump
    /// it when a table, a column or the way an event is written changes:
    /// on start, a projection whose stored version differs is rebuilt
    /// beside the live tables, exactly as `igny8 projections rebuild` does.
    fn version(&self) -> u32;
    fn tables(&self) -> &'static [Table];

    /// True when every row this projection writes belongs to one aggregate
    /// and depends on that aggregate's events only: a rebuild may then apply
    /// the events of different aggregates in parallel transactions.
    fn independent_aggregates(&self) -> bool {
        false
    }

    /// Apply several events, in order, inside one transaction (the runner's,
    /// or a rebuild's). `sfx` is appended to every table name (empty for the
    /// live tables; rebuild shadows use `__rb`). Each event is decoded into
    /// its domain event ([`StoredEvent::decode`], see [`decode_until`]);
    /// events the projection does not care about are ignored. The first
    /// event that cannot be decoded stops the slice ([`Applied::StoppedAt`]);
    /// the events before it are applied. A database error is an `Err`.
    async fn apply_all(
        &self,
        tx: &mut DbTx,
        sfx: &str,
        events: &[&StoredEvent],
    ) -> anyhow::Result<Applied>;
}

/// Decode `events` in order with `decode` (`Ok(None)`: not for this
/// projection) up to the first that fails: the decoded events, each beside
/// its stored event, and whether all were read.
pub fn decode_until<'a, T>(
    events: &[&'a StoredEvent],
    mut decode: impl FnMut(&StoredEvent) -> Result<Option<T>, DecodeError>,
) -> (Vec<(&'a StoredEvent, T)>, Applied) {
    let mut out = Vec::with_capacity(events.len());
    for (index, ev) in events.iter().enumerate() {
        match decode(ev) {
            Ok(Some(t)) => out.push((*ev, t)),
            Ok(None) => {}
            Err(error) => return (out, Applied::StoppedAt { index, error }),
        }
    }
    (out, Applied::All)
}

pub(crate) async fn create_tables(db: &Db, p: &dyn Projection, sfx: &str) -> anyhow::Result<()> {
    create_tables_as(db, p, sfx, false).await?;
    create_indexes(db, p, sfx).await
}

/// Tables without their secondary indexes (bulk loads add those afterwards).
/// `unlogged`: PostgreSQL skips the write-ahead log until [`set_logged`]
/// (rebuild shadows: one sequential WAL write instead of one per row).
pub(crate) async fn create_tables_as(
    db: &Db,
    p: &dyn Projection,
    sfx: &str,
    unlogged: bool,
) -> anyhow::Result<()> {
    for t in p.tables() {
        let tpl = match db.backend() {
            Backend::Postgres => t.postgres,
            Backend::Sqlite => t.sqlite,
        };
        let mut ddl = tpl.replace("{t}", &format!("{}{sfx}", t.name));
        if unlogged && db.backend() == Backend::Postgres {
            ddl = ddl.replacen("CREATE TABLE", "CREATE UNLOGGED TABLE", 1);
        }
        igny8_commands::on_db!(db, pool => sqlx::query(&ddl).execute(pool).await.map(|_| ()))?;
    }
    Ok(())
}

pub(crate) async fn create_indexes(db: &Db, p: &dyn Projection, sfx: &str) -> anyhow::Result<()> {
    let stmts: Vec<String> = p
        .tables()
        .iter()
        .flat_map(|t| {
            t.indexes.iter().map(move |i| {
                format!(
                    "CREATE INDEX IF NOT EXISTS {}{sfx} ON {}{sfx} ({})",
                    i.name, t.name, i.columns
                )
            })
        })
        .collect();
    match db {
        // Several index builds at once, one per connection (after a rebuild
        // these are the big ones).
        Db::Postgres(pool) => {
            futures::future::try_join_all(stmts.iter().map(|q| sqlx::query(q).execute(pool)))
                .await?;
        }
        Db::Sqlite(pool) => {
            for q in &stmts {
                sqlx::query(q).execute(pool).await?;
            }
        }
    }
    Ok(())
}

pub(crate) async fn drop_tables(db: &Db, p: &dyn Projection, sfx: &str) -> anyhow::Result<()> {
    for t in p.tables() {
        let sql = format!("DROP TABLE IF EXISTS {}{sfx}", t.name);
        igny8_commands::on_db!(db, pool => sqlx::query(&sql).execute(pool).await.map(|_| ()))?;
    }
    Ok(())
}

/// Make unlogged tables durable (PostgreSQL; a no-op elsewhere).
pub(crate) async fn set_logged(db: &Db, p: &dyn Projection, sfx: &str) -> anyhow::Result<()> {
    if let Db::Postgres(pool) = db {
        let stmts: Vec<String> = p
            .tables()
            .iter()
            .map(|t| format!("ALTER TABLE {}{sfx} SET LOGGED", t.name))
            .collect();
        futures::future::try_join_all(stmts.iter().map(|q| sqlx::query(q).execute(pool))).await?;
    }
    Ok(())
}
