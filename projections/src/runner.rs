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
    let idle = match db.backend() {
        igny8_commands::Backend::Sqlite => Duration::from_millis(250),
        igny8_commands::Backend::Postgres => Duration::from_millis(20),
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
        match apply_batch(&db, p.as_ref(), "", &batch).await {
            Ok(_) => observe(&observer, &batch),
            Err(e) => {
                tracing::error!(projection = p.name(), error = %e, "apply failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
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
