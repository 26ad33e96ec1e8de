//! Projection runners: the same `apply_batch` fed by the in-process feed
//! (embedded mode) or by a durable JetStream consumer (scale-out mode).
//!
//! On start a runner makes sure the read tables exist and are of the code's
//! layout version (rebuilding them beside the live ones when not). When it
//! cannot apply an event, it stays at that event — the checkpoint never
//! passes it — with the error recorded, and retries with backoff (250 ms
//! doubling to 10 s) until it can: after a fix and restart, or once the
//! event is readable. It never skips the event and never exits for it.
//!
//! Nor does it exit for a lost database or NATS: it reports itself not
//! ready ([`Health`], under `projection:<name>`), retries with backoff and
//! resumes from its checkpoint. One copy of each projection is active (a
//! [`Leadership`] re-checked before each batch); a stale leader's batch is
//! harmless anyway: it locks the checkpoint row and skips what is applied.

use crate::checkpoint::{self, ApplyError, Delivered, apply_batch};
use crate::projection::{Projection, create_tables};
use crate::rebuild::rebuild;
use async_nats::jetstream::{self, consumer};
use futures::{FutureExt, StreamExt};
use igny8_commands::db::{Db, Leadership};
use igny8_commands::{Backoff, Feed, Health, StoredEvent, StreamNames};
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

/// The name a projection's runner reports under in [`Health`].
pub fn component(p: &dyn Projection) -> String {
    format!("projection:{}", p.name())
}

/// Record a failure on the checkpoint (status, `/ready`); logging is all
/// that is left if the database cannot take it either.
async fn record(db: &Db, p: &dyn Projection, event_id: Option<uuid::Uuid>, error: &str) {
    if let Err(e) = checkpoint::record_error(db, p.name(), event_id, error).await {
        tracing::warn!(projection = p.name(), error = %e, "could not record the projection's error");
    }
}

/// Log an apply failure, report it to `health` and make sure it is
/// recorded (a stuck event was recorded by `apply_batch` itself; another
/// error rolled back, so it is recorded here, at the first event it was
/// applying). A lost database is only reported: nothing is wrong with the
/// event, and the database could not take the record anyway.
async fn failed(
    db: &Db,
    p: &dyn Projection,
    health: &Health,
    e: &ApplyError,
    first: Option<&StoredEvent>,
) {
    let name = component(p);
    match e {
        ApplyError::Stuck(d) => {
            tracing::error!(
                projection = p.name(),
                event_id = %d.event_id,
                event_type = d.event_type,
                error = %d.reason,
                "projection stopped at an event it cannot decode; retrying"
            );
            health.not_ready(
                &name,
                format!("stuck at event {}: {}", d.event_id, d.reason),
            );
        }
        ApplyError::Other(a) if unavailable(a) => {
            tracing::warn!(projection = p.name(), error = %e, "database unavailable; retrying");
            health.not_ready(&name, format!("database unavailable: {e}"));
        }
        _ => {
            tracing::error!(projection = p.name(), error = %e, "apply failed; retrying");
            health.not_ready(&name, format!("apply failed: {e}"));
            record(db, p, first.map(|e| e.event_id), &e.to_string()).await;
        }
    }
}

/// Whether `e` (or what caused it) says the database is away.
fn unavailable(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<sqlx::Error>()
            .is_some_and(igny8_commands::db::is_unavailable)
    })
}

/// Become the one active copy of `p` (standing by while another is), make
/// sure its tables exist and are of the code's layout version (rebuilt
/// beside the live ones otherwise). `None`: shutdown came first.
async fn start(
    db: &Db,
    feed: &Feed,
    p: &dyn Projection,
    health: &Health,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<Leadership> {
    let name = component(p);
    let leader = Leadership::acquire(
        db,
        &format!("igny8:projection:{}", p.name()),
        health,
        &name,
        shutdown,
    )
    .await?;
    let mut backoff = Backoff::new();
    loop {
        if *shutdown.borrow() {
            return None;
        }
        match prepare(db, feed, p).await {
            Ok(()) => return Some(leader),
            Err(e) => {
                let event_id = e
                    .downcast_ref::<igny8_commands::DecodeError>()
                    .map(|d| d.event_id);
                tracing::error!(projection = p.name(), error = %e, "projection cannot start; retrying");
                health.not_ready(&name, format!("start: {e:#}"));
                record(db, p, event_id, &format!("start: {e:#}")).await;
                backoff.wait(shutdown).await;
            }
        }
    }
}

/// Tables, and the layout version: a fresh database records it; a
/// different stored version rebuilds the projection (which records it).
async fn prepare(db: &Db, feed: &Feed, p: &dyn Projection) -> anyhow::Result<()> {
    create_tables(db, p, "").await?;
    match checkpoint::layout_version(db, p.name()).await? {
        Some(v) if v == i64::from(p.version()) => {}
        None => {
            let mut tx = db.begin().await?;
            checkpoint::set_layout_version(&mut tx, p.name(), p.version()).await?;
            tx.commit().await?;
        }
        Some(stored) => {
            tracing::info!(
                projection = p.name(),
                stored,
                version = p.version(),
                "layout version changed; rebuilding beside the live tables"
            );
            let r = rebuild(db, feed, p).await?;
            tracing::info!(
                projection = p.name(),
                events = r.events,
                elapsed_ms = r.elapsed_ms as u64,
                "rebuilt"
            );
        }
    }
    Ok(())
}

/// In-process runner: tail the store's feed.
pub async fn run_embedded(
    db: Db,
    feed: Feed,
    p: Arc<dyn Projection>,
    health: Health,
    mut shutdown: watch::Receiver<bool>,
    observer: Option<Observer>,
) -> anyhow::Result<()> {
    let name = component(p.as_ref());
    health.register(&name);
    let (idle, max_tx_bytes) = match db.backend() {
        igny8_commands::Backend::Sqlite => (Duration::from_millis(250), SQLITE_TX_BYTES),
        igny8_commands::Backend::Postgres => (Duration::from_millis(20), usize::MAX),
    };
    let mut backoff = Backoff::new();
    'lead: loop {
        let Some(mut leader) = start(&db, &feed, p.as_ref(), &health, &mut shutdown).await else {
            return Ok(());
        };
        // After a failure, one event at a time: the error then names the event.
        let mut limit = BATCH as i64;
        'next: loop {
            if *shutdown.borrow() {
                return Ok(());
            }
            let notified = feed.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let read = match checkpoint::load(&db, p.name()).await {
                Ok(cp) => feed.read_after(cp.position, limit).await,
                Err(e) => Err(e),
            };
            let events = match read {
                Ok(e) => e,
                Err(e) => {
                    tracing::warn!(projection = p.name(), error = %e, "feed read failed; retrying");
                    health.not_ready(&name, format!("database unavailable: {e}"));
                    backoff.wait(&mut shutdown).await;
                    if !leader.check().await {
                        continue 'lead;
                    }
                    continue;
                }
            };
            if events.is_empty() {
                if limit == BATCH as i64 {
                    health.ready(&name, "active");
                }
                tokio::select! {
                    _ = &mut notified => {}
                    _ = tokio::time::sleep(idle) => {}
                    _ = shutdown.changed() => {}
                }
                continue;
            }
            if !leader.check().await {
                health.not_ready(&name, "lost leadership; queuing up again");
                continue 'lead;
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
                        failed(&db, p.as_ref(), &health, &e, part.first().map(|d| &d.event)).await;
                        limit = 1;
                        backoff.wait(&mut shutdown).await;
                        continue 'next;
                    }
                }
            }
            health.ready(&name, "active");
            backoff.reset();
            limit = BATCH as i64;
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

/// The checkpoint's stream sequence, retried until the database answers.
/// `None`: shutdown, or leadership lost meanwhile.
async fn checkpoint_seq(
    db: &Db,
    p: &dyn Projection,
    leader: &mut Leadership,
    health: &Health,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<i64> {
    let mut backoff = Backoff::new();
    loop {
        if *shutdown.borrow() {
            return None;
        }
        match checkpoint::load(db, p.name()).await {
            Ok(c) => return Some(c.stream_seq),
            Err(e) => {
                health.not_ready(&component(p), format!("database unavailable: {e}"));
                backoff.wait(shutdown).await;
                if !leader.check().await {
                    return None;
                }
            }
        }
    }
}

/// Scale-out runner: a durable JetStream consumer per projection.
pub async fn run_nats(
    db: Db,
    js: jetstream::Context,
    names: StreamNames,
    p: Arc<dyn Projection>,
    health: Health,
    mut shutdown: watch::Receiver<bool>,
    observer: Option<Observer>,
) -> anyhow::Result<()> {
    let name = component(p.as_ref());
    health.register(&name);
    let feed = Feed::new(db.clone(), Arc::new(tokio::sync::Notify::new()));
    let mut backoff = Backoff::new();
    'lead: loop {
        let Some(mut leader) = start(&db, &feed, p.as_ref(), &health, &mut shutdown).await else {
            return Ok(());
        };
        let stream = loop {
            if *shutdown.borrow() {
                return Ok(());
            }
            match names.ensure_stream(&js).await {
                Ok(s) => break s,
                Err(e) => {
                    health.not_ready(&name, format!("NATS unavailable: {e}"));
                    backoff.wait(&mut shutdown).await;
                }
            }
        };
        // Start right after the checkpoint: a fresh consumer there, so
        // messages a previous copy left unacknowledged (it stopped at an
        // event it could not apply, or lost its leadership) come at once,
        // not after the ack wait. Later, if the consumer's position
        // disagrees with the checkpoint, the first delivery shows it (a
        // gap) and we re-position.
        let Some(seq) = checkpoint_seq(&db, p.as_ref(), &mut leader, &health, &mut shutdown).await
        else {
            continue 'lead;
        };
        let mut reposition = Some(seq);
        'outer: loop {
            if *shutdown.borrow() {
                return Ok(());
            }
            if !leader.check().await {
                health.not_ready(&name, "lost leadership; queuing up again");
                continue 'lead;
            }
            let consumer = match consumer_at(&stream, &names, p.as_ref(), reposition).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(projection = p.name(), error = %e, "consumer unavailable; retrying");
                    health.not_ready(&name, format!("NATS unavailable: {e}"));
                    backoff.wait(&mut shutdown).await;
                    continue;
                }
            };
            reposition = None;
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
                    health.not_ready(&name, format!("NATS unavailable: {e}"));
                    backoff.wait(&mut shutdown).await;
                    continue;
                }
            };
            loop {
                let first = tokio::select! {
                    m = messages.next() => m,
                    // Idle: say whether NATS is there at all.
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {
                        if js.client().connection_state() == async_nats::connection::State::Connected {
                            health.ready(&name, "active");
                        } else {
                            health.not_ready(&name, "NATS unavailable");
                        }
                        continue;
                    }
                    _ = shutdown.changed() => return Ok(()),
                };
                let first = match first {
                    None => continue 'outer,
                    Some(Err(e)) => {
                        tracing::warn!(projection = p.name(), error = %e, "message error");
                        health.not_ready(&name, format!("NATS: {e}"));
                        continue;
                    }
                    Some(Ok(m)) => m,
                };
                let mut raw = vec![Ok(first)];
                while raw.len() < BATCH {
                    match messages.next().now_or_never() {
                        Some(Some(m)) => raw.push(m),
                        _ => break,
                    }
                }
                let mut batch = Vec::with_capacity(raw.len());
                let mut last = None;
                // A message that is not an event stops the batch there.
                let mut unreadable = None;
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
                            let id = m
                                .headers
                                .as_ref()
                                .and_then(|h| h.get("Nats-Msg-Id"))
                                .and_then(|v| v.as_str().parse::<uuid::Uuid>().ok());
                            unreadable =
                                Some((id, format!("stream message {seq} is not an event: {e}")));
                            break;
                        }
                    }
                    last = Some(m);
                }
                if !leader.check().await {
                    // Not acknowledged: the next leader starts at the checkpoint.
                    health.not_ready(&name, "lost leadership; queuing up again");
                    continue 'lead;
                }
                let result = match apply_batch(&db, p.as_ref(), "", &batch).await {
                    Ok(r) => {
                        observe(&observer, &batch);
                        if let Some(m) = last {
                            // AckPolicy::All: acknowledges everything up to here.
                            if let Err(e) = m.ack().await {
                                tracing::warn!(projection = p.name(), error = %e, "ack failed (redelivery is harmless)");
                            }
                        }
                        match unreadable {
                            None => Ok(r),
                            Some((id, msg)) => {
                                tracing::error!(
                                    projection = p.name(),
                                    error = msg,
                                    "projection stopped; retrying"
                                );
                                health.not_ready(&name, &msg);
                                record(&db, p.as_ref(), id, &msg).await;
                                Err(None)
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
                        failed(
                            &db,
                            p.as_ref(),
                            &health,
                            &e,
                            batch.first().map(|d| &d.event),
                        )
                        .await;
                        Err(Some(e))
                    }
                };
                if result.is_ok() {
                    health.ready(&name, "active");
                    backoff.reset();
                    continue;
                }
                // Stopped: wait, then read again right after the checkpoint.
                backoff.wait(&mut shutdown).await;
                let Some(seq) =
                    checkpoint_seq(&db, p.as_ref(), &mut leader, &health, &mut shutdown).await
                else {
                    continue 'lead;
                };
                reposition = Some(seq);
                continue 'outer;
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
