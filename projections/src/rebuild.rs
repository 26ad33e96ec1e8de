//! Rebuild a projection from the log without taking the live read model down.
//!
//! 1. Replay the whole feed into shadow tables (`<table>__rb`) while the live
//!    tables keep serving and the live runner keeps applying. Reading the
//!    next batch overlaps with applying the current one.
//! 2. In one transaction: lock the live checkpoint (the live runner waits),
//!    replay into the shadow whatever the live runner applied meanwhile, drop
//!    the live tables, rename the shadows into place, keep the checkpoint.
//!    Readers see either the old tables or the new ones, never half of each.
//!    The projection's layout version is recorded with the checkpoint.
//!
//! The runner does the same on start when the stored layout version is not
//! the code's ([`crate::runner`]).

use crate::checkpoint;
use crate::projection::{
    Applied, Projection, create_indexes, create_tables, create_tables_as, drop_tables, set_logged,
};
use igny8_commands::db::{Backend, Db, DbTx};
use igny8_commands::{Feed, Position, StoredEvent, on_tx};
use std::time::Instant;

pub const SHADOW: &str = "__rb";
/// Large batches: more events per account per batch fold into one update.
const BATCH: i64 = 50_000;

#[derive(Debug, Clone, serde::Serialize)]
pub struct RebuildReport {
    pub projection: String,
    pub events: u64,
    pub elapsed_ms: u128,
    pub events_per_sec: f64,
}

/// Apply a batch to the shadow tables; the rebuild tracks its position in
/// memory. On PostgreSQL, a projection whose aggregates are independent is
/// applied in [`LANES`] transactions at once, each taking every event of
/// its aggregates in order (the database does the work on several cores).
async fn apply_shadow(db: &Db, p: &dyn Projection, events: &[StoredEvent]) -> anyhow::Result<()> {
    let lanes = if p.independent_aggregates() && db.backend() == Backend::Postgres {
        LANES
    } else {
        1
    };
    let mut parts: Vec<Vec<&StoredEvent>> = vec![vec![]; lanes];
    for e in events {
        parts[lane(&e.aggregate_id, lanes)].push(e);
    }
    futures::future::try_join_all(parts.into_iter().filter(|p| !p.is_empty()).map(
        |part| async move {
            let mut tx = db.begin().await?;
            applied(p.apply_all(&mut tx, SHADOW, &part).await?)?;
            tx.commit().await?;
            Ok::<_, anyhow::Error>(())
        },
    ))
    .await?;
    Ok(())
}

/// A rebuild reads every event: one it cannot decode fails the rebuild
/// (the live tables stay as they are). The error is the [`igny8_commands::DecodeError`].
fn applied(a: Applied) -> anyhow::Result<()> {
    match a {
        Applied::All => Ok(()),
        Applied::StoppedAt { error, .. } => Err(anyhow::Error::new(error)),
    }
}

/// Parallel rebuild transactions (this machine class has 2 cores).
const LANES: usize = 2;

fn lane(aggregate_id: &str, lanes: usize) -> usize {
    let h = aggregate_id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    (h % lanes as u64) as usize
}

pub async fn rebuild(db: &Db, feed: &Feed, p: &dyn Projection) -> anyhow::Result<RebuildReport> {
    let started = Instant::now();
    drop_tables(db, p, SHADOW).await?;
    create_tables(db, p, "").await?;
    // Bulk load: unlogged shadows; secondary indexes built once at the end.
    create_tables_as(db, p, SHADOW, true).await?;

    let (tx_batches, mut rx_batches) = tokio::sync::mpsc::channel::<Vec<StoredEvent>>(2);
    let reader = {
        let feed = feed.clone();
        tokio::spawn(async move {
            let mut pos = Position::START;
            loop {
                let batch = feed.read_after(pos, BATCH).await?;
                let Some(last) = batch.last() else {
                    return Ok::<_, sqlx::Error>(());
                };
                pos = last.position();
                if tx_batches.send(batch).await.is_err() {
                    return Ok(());
                }
            }
        })
    };
    let mut pos = Position::START;
    let mut events = 0u64;
    let (mut waited, mut applying) = (std::time::Duration::ZERO, std::time::Duration::ZERO);
    loop {
        let t = Instant::now();
        let Some(batch) = rx_batches.recv().await else {
            break;
        };
        waited += t.elapsed();
        if let Some(last) = batch.last() {
            pos = last.position();
        }
        events += batch.len() as u64;
        let t = Instant::now();
        apply_shadow(db, p, &batch).await?;
        applying += t.elapsed();
    }
    tracing::info!(
        projection = p.name(),
        events,
        waited_for_reads_ms = waited.as_millis() as u64,
        applying_ms = applying.as_millis() as u64,
        "rebuild replay done"
    );
    reader.await??;
    let t = Instant::now();
    set_logged(db, p, SHADOW).await?;
    create_indexes(db, p, SHADOW).await?;
    tracing::info!(
        projection = p.name(),
        finishing_ms = t.elapsed().as_millis() as u64,
        "shadow tables logged and indexed"
    );

    // Swap, holding the live checkpoint.
    let mut tx = db.begin().await?;
    let mut cp = checkpoint::lock(&mut tx, p.name()).await?;
    let mut from = pos;
    while from < cp.position {
        let batch = feed.read_range(from, cp.position, BATCH).await?;
        let Some(last) = batch.last() else { break };
        from = last.position();
        events += batch.len() as u64;
        let refs: Vec<&StoredEvent> = batch.iter().collect();
        applied(p.apply_all(&mut tx, SHADOW, &refs).await?)?;
    }
    // If the rebuild got further than the live runner, the checkpoint moves
    // with it: the live runner then skips what the new tables already hold.
    if pos > cp.position {
        cp.position = pos;
    }
    cp.events_applied = events as i64;
    swap(&mut tx, p).await?;
    checkpoint::store(&mut tx, p.name(), &cp).await?;
    checkpoint::set_layout_version(&mut tx, p.name(), p.version()).await?;
    tx.commit().await?;
    let elapsed = started.elapsed();
    Ok(RebuildReport {
        projection: p.name().into(),
        events,
        elapsed_ms: elapsed.as_millis(),
        events_per_sec: events as f64 / elapsed.as_secs_f64().max(1e-9),
    })
}

async fn swap(tx: &mut DbTx, p: &dyn Projection) -> anyhow::Result<()> {
    let backend = tx.backend();
    for t in p.tables() {
        let mut stmts = vec![
            format!("DROP TABLE IF EXISTS {}", t.name),
            format!("ALTER TABLE {}{SHADOW} RENAME TO {}", t.name, t.name),
        ];
        if backend == Backend::Postgres {
            // The primary key's index keeps the shadow's name otherwise.
            stmts.push(format!(
                "ALTER INDEX IF EXISTS {}{SHADOW}_pkey RENAME TO {}_pkey",
                t.name, t.name
            ));
        }
        for i in t.indexes {
            match backend {
                Backend::Postgres => stmts.push(format!(
                    "ALTER INDEX {}{SHADOW} RENAME TO {}",
                    i.name, i.name
                )),
                Backend::Sqlite => {
                    stmts.push(format!("DROP INDEX IF EXISTS {}{SHADOW}", i.name));
                    stmts.push(format!(
                        "CREATE INDEX IF NOT EXISTS {} ON {} ({})",
                        i.name, t.name, i.columns
                    ));
                }
            }
        }
        for s in stmts {
            on_tx!(tx, c => sqlx::query(&s).execute(&mut *c).await.map(|_| ()))?;
        }
    }
    Ok(())
}
