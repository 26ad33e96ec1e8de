//! Projection runners: the same `apply_batch` fed by the in-process feed
//! (embedded mode) or by a durable JetStream consumer (scale-out mode).

use crate::checkpoint::{self, ApplyError, Delivered, apply_batch};
use crate::projection::{Projection, create_tables};
use async_nats::jetstream::{self, consumer};
use futures::{FutureExt, StreamExt};
use igny8_commands::db::{Db, hold_singleton};
use igny8_commands::{Feed, StoredEvent, StreamNames};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

const BATCH: usize = 500;

/// Told `(global_position, when)` after each committed batch (benchmarks, tests).
pub type Observer = mpsc::UnboundedSender<(i64, Instant)>;

fn observe(obs: &Option<Observer>, batch: &[Delivered]) {
    if let Some(o) = obs {
        let now = Instant::now();
        for d in batch {
            let _ = o.send((d.event.global_position, now));
        }
    }
}

/// Holds this projection's leadership while the runner lives.
struct Leader(#[allow(dead_code)] Option<sqlx::PgConnection>);

/// Become the one active copy of `p` (standing by while another is), then
/// make sure its tables exist. `None`: shutdown came first.
async fn start(
    db: &Db,
    p: &dyn Projection,
    shutdown: &mut watch::Receiver<bool>,
) -> anyhow::Result<Option<Leader>> {
    let leader = match hold_singleton(db, &format!("igny8:projection:{}", p.name()), shutdown).await
    {
        Ok(l) => Leader(l),
        Err(_) if *shutdown.borrow() => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    create_tables(db, p, "").await?;
    Ok(Some(leader))
}

/// In-process runner: tail the store's feed.
pub async fn run_embedded(
    db: Db,
    feed: Feed,
    p: Arc<dyn Projection>,
    mut shutdown: watch::Receiver<bool>,
    observer: Option<Observer>,
) -> anyhow::Result<()> {
    let Some(_leader) = start(&db, p.as_ref(), &mut shutdown).await? else {
        return Ok(());
    };
    let (idle, max_tx_bytes) = match db.backend() {
        igny8_commands::Backend::Sqlite => (Duration::from_millis(250), SQLITE_TX_BYTES),
        igny8_commands::Backend::Postgres => (Duration::from_millis(20), usize::MAX),
    };
    loop {
        if *shutdown.borrow() {
            return Ok(());
        }
        let notified = feed.notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let cp = checkpoint::load(&db, p.name()).await?;
        let events = match feed.read_after(cp.position, BATCH as i64).await {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(projection = p.name(), error = %e, "feed read failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if events.is_empty() {
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep(idle) => {}
                _ = shutdown.changed() => {}
            }
            continue;
        }
        let batch: Vec<Delivered> = events
            .into_iter()
            .map(|event| Delivered {
                event,
                stream_seq: None,
            })
            .collect();
        for part in by_weight(&batch, max_tx_bytes) {
            match apply_batch(&db, p.as_ref(), "", part).await {
                Ok(_) => observe(&observer, part),
                Err(e) => {
                    tracing::error!(projection = p.name(), error = %e, "apply failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    break;
                }
            }
        }
    }
}

/// SQLite has one writer: a projection transaction holds every other write
/// (commands included) until it commits. Batches are cut so that one
/// transaction carries about this much event payload (a 100,000-keyword
/// import is ~15 MB: several short transactions instead of one of seconds).
const SQLITE_TX_BYTES: usize = 2 * 1024 * 1024;

/// Consecutive slices of `batch`, each up to `max` payload bytes (at least
/// one event each), in order.
fn by_weight(batch: &[Delivered], max: usize) -> Vec<&[Delivered]> {
    if max == usize::MAX {
        return vec![batch];
    }
    let mut parts = vec![];
    let (mut start, mut size) = (0, 0usize);
    for (i, d) in batch.iter().enumerate() {
        let w = serde_json::to_vec(&d.event.payload).map_or(0, |v| v.len());
        if i > start && size + w > max {
            parts.push(&batch[start..i]);
            (start, size) = (i, 0);
        }
        size += w;
    }
    if start < batch.len() {
        parts.push(&batch[start..]);
    }
    parts
}

fn consumer_name(p: &dyn Projection) -> String {
    format!("proj_{}", p.name())
}

async fn consumer_at(
    stream: &jetstream::stream::Stream,
    names: &StreamNames,
    p: &dyn Projection,
    start_after: Option<i64>,
) -> Result<consumer::Consumer<consumer::pull::Config>, async_nats::Error> {
    let name = consumer_name(p);
    let deliver_policy = match start_after {
        None => consumer::DeliverPolicy::All,
        Some(seq) => {
            // Re-position: a fresh durable consumer starting right after the checkpoint.
            let _ = stream.delete_consumer(&name).await;
            consumer::DeliverPolicy::ByStartSequence {
                start_sequence: (seq + 1) as u64,
            }
        }
    };
    let cfg = consumer::pull::Config {
        durable_name: Some(name.clone()),
        filter_subject: names.all_events(),
        ack_policy: consumer::AckPolicy::All,
        ack_wait: Duration::from_secs(30),
        max_ack_pending: (BATCH * 2) as i64,
        deliver_policy,
        ..Default::default()
    };
    Ok(stream.get_or_create_consumer(&name, cfg).await?)
}

/// Scale-out runner: a durable JetStream consumer per projection.
pub async fn run_nats(
    db: Db,
    js: jetstream::Context,
    names: StreamNames,
    p: Arc<dyn Projection>,
    mut shutdown: watch::Receiver<bool>,
    observer: Option<Observer>,
) -> anyhow::Result<()> {
    let Some(_leader) = start(&db, p.as_ref(), &mut shutdown).await? else {
        return Ok(());
    };
    let stream = names
        .ensure_stream(&js)
        .await
        .map_err(|e| anyhow::anyhow!("stream: {e}"))?;
    // If the consumer's server-side position disagrees with our checkpoint,
    // the first delivery shows it (a gap) and we re-position.
    let mut reposition: Option<i64> = None;
    'outer: loop {
        if *shutdown.borrow() {
            return Ok(());
        }
        let consumer = match consumer_at(&stream, &names, p.as_ref(), reposition.take()).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(projection = p.name(), error = %e, "consumer unavailable; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let mut messages = match consumer
            .stream()
            .max_messages_per_batch(BATCH)
            .heartbeat(Duration::from_secs(5))
            .messages()
            .await
        {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(projection = p.name(), error = %e, "pull failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        loop {
            let first = tokio::select! {
                m = messages.next() => m,
                _ = shutdown.changed() => return Ok(()),
            };
            let Some(first) = first else { continue 'outer };
            let mut raw = vec![first];
            while raw.len() < BATCH {
                match messages.next().now_or_never() {
                    Some(Some(m)) => raw.push(m),
                    _ => break,
                }
            }
            let mut batch = Vec::with_capacity(raw.len());
            let mut last = None;
            for m in raw {
                let m = match m {
                    Ok(m) => m,
                    Err(e) => {
                        tracing::warn!(projection = p.name(), error = %e, "message error");
                        continue;
                    }
                };
                let Ok(info) = m.info() else { continue };
                let seq = info.stream_sequence as i64;
                match serde_json::from_slice::<StoredEvent>(&m.payload) {
                    Ok(event) => batch.push(Delivered {
                        event,
                        stream_seq: Some(seq),
                    }),
                    Err(e) => {
                        tracing::error!(projection = p.name(), seq, error = %e, "not an event; ignored")
                    }
                }
                last = Some(m);
            }
            match apply_batch(&db, p.as_ref(), "", &batch).await {
                Ok(_) => {
                    observe(&observer, &batch);
                    if let Some(m) = last {
                        // AckPolicy::All: acknowledges everything up to here.
                        if let Err(e) = m.ack().await {
                            tracing::warn!(projection = p.name(), error = %e, "ack failed (redelivery is harmless)");
                        }
                    }
                }
                Err(ApplyError::Gap { expected, got }) => {
                    tracing::warn!(
                        projection = p.name(),
                        expected,
                        got,
                        "stream gap; re-positioning consumer"
                    );
                    reposition = Some(expected - 1);
                    continue 'outer;
                }
                Err(e) => {
                    tracing::error!(projection = p.name(), error = %e, "apply failed; re-positioning after checkpoint");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    reposition = Some(
                        checkpoint::load(&db, p.name())
                            .await
                            .map(|c| c.stream_seq)
                            .unwrap_or(0),
                    );
                    continue 'outer;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(i: i64, bytes: usize) -> Delivered {
        Delivered {
            event: igny8_commands::StoredEvent {
                event_id: uuid::Uuid::from_u128(i as u128),
                global_position: i,
                tx_id: i,
                aggregate_type: "t".into(),
                aggregate_id: "a".into(),
                sequence: i,
                event_type: "E".into(),
                event_version: "1".into(),
                payload: serde_json::Value::String("x".repeat(bytes)),
                metadata: serde_json::Value::Null,
                recorded_at: chrono::Utc::now(),
                account_id: None,
            },
            stream_seq: None,
        }
    }

    #[test]
    fn batches_are_cut_by_weight_in_order_and_whole() {
        let batch: Vec<Delivered> = (1..=7).map(|i| ev(i, 400)).collect();
        let parts = by_weight(&batch, 1000);
        let sizes: Vec<usize> = parts.iter().map(|p| p.len()).collect();
        assert_eq!(sizes, vec![2, 2, 2, 1]);
        let flat: Vec<i64> = parts
            .iter()
            .flat_map(|p| p.iter().map(|d| d.event.global_position))
            .collect();
        assert_eq!(
            flat,
            (1..=7).collect::<Vec<_>>(),
            "every event once, in order"
        );
        // An event heavier than the limit goes alone; no limit: one part.
        assert_eq!(by_weight(&[ev(1, 5000), ev(2, 1)], 1000).len(), 2);
        assert_eq!(by_weight(&batch, usize::MAX).len(), 1);
    }
}
