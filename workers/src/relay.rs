//! Relay: event store → NATS JetStream.
//!
//! Tails the gap-safe feed and publishes every event to
//! `<prefix>.events.<account>.<aggregate_type>.<event_type>` with
//! `Nats-Msg-Id` = event id and `Igny8-Position` = `<tx_id>:<global_position>`.
//!
//! Exactly once in the stream, across crashes:
//! - it resumes from the position header of the stream's last message, so
//!   it never starts before what the stream already holds (whatever the age
//!   of the crash), nor after it: when nats-server is killed it can lose
//!   the last messages it had acknowledged, and those are sent again. Only
//!   an empty stream (purged, or new) makes it resume from its checkpoint
//!   table instead;
//! - it publishes in feed order and moves its checkpoint only after
//!   JetStream acknowledged; anything re-sent after a crash between the two
//!   carries the same `Nats-Msg-Id` and is dropped by JetStream's
//!   duplicate window.
//! - several copies may run: a PostgreSQL advisory lock makes one active,
//!   the others stand by; the leader re-checks its lock before each batch
//!   (after a database restart it is gone) and queues up again if lost.
//!
//! Never exits for a lost database or NATS: every failure is reported to
//! [`Health`] (`/ready`, logs), retried with backoff, and the relay resumes
//! from its checkpoint once the service is back.

use async_nats::HeaderMap;
use async_nats::jetstream::{self, context::PublishAckFuture};
use igny8_commands::db::{Db, Leadership};
use igny8_commands::stream::POSITION_HEADER;
use igny8_commands::{Backoff, Feed, Health, Position, StreamNames, on_db};
use std::time::Duration;
use tokio::sync::watch;

const BATCH: i64 = 1000;

async fn load_checkpoint(db: &Db, stream: &str) -> Result<Position, sqlx::Error> {
    let row: Option<(i64, i64)> = on_db!(db, p => {
        sqlx::query_as("SELECT tx_id, global_position FROM relay_checkpoints WHERE stream = $1")
            .bind(stream)
            .fetch_optional(p)
            .await?
    });
    Ok(row.map(|(t, g)| Position::new(t, g)).unwrap_or_default())
}

async fn store_checkpoint(db: &Db, stream: &str, pos: Position) -> Result<(), sqlx::Error> {
    let now = chrono::Utc::now();
    on_db!(db, p => {
        sqlx::query(
            "INSERT INTO relay_checkpoints (stream, tx_id, global_position, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (stream) DO UPDATE SET tx_id = $2, global_position = $3, updated_at = $4",
        )
        .bind(stream)
        .bind(pos.tx_id)
        .bind(pos.global_position)
        .bind(now)
        .execute(p)
        .await
        .map(|_| ())
    })
}

/// The position carried by the stream's last message, if any.
/// The stream's last sequence and the position its last message carries.
async fn stream_tail(
    stream: &mut jetstream::stream::Stream,
) -> anyhow::Result<(u64, Option<Position>)> {
    let last = stream
        .info()
        .await
        .map_err(|e| anyhow::anyhow!("stream info: {e}"))?
        .state
        .last_sequence;
    if last == 0 {
        return Ok((0, None));
    }
    // After a purge the last sequence may name a message that is gone: then
    // the stream tells us nothing and the checkpoint table decides.
    match stream.get_raw_message(last).await {
        Ok(msg) => Ok((
            last,
            msg.headers
                .get(POSITION_HEADER)
                .and_then(|v| v.as_str().parse().ok()),
        )),
        Err(e) => {
            tracing::warn!(error = %e, last, "stream tail unreadable; resuming from the checkpoint table");
            Ok((last, None))
        }
    }
}

pub struct RelayStatus {
    pub checkpoint: Position,
}

pub async fn status(db: &Db, names: &StreamNames) -> Result<RelayStatus, sqlx::Error> {
    Ok(RelayStatus {
        checkpoint: load_checkpoint(db, &names.stream).await?,
    })
}

/// The component name the relay reports under.
pub const COMPONENT: &str = "relay";

/// Why the active relay stopped relaying (it retries after each).
enum Stop {
    Shutdown,
    LostLeadership,
    Failed(anyhow::Error),
}

/// Relay until shutdown, riding out lost database and NATS connections.
pub async fn run(
    db: Db,
    feed: Feed,
    js: jetstream::Context,
    names: StreamNames,
    health: Health,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    health.register(COMPONENT);
    let key = format!("igny8:relay:{}", names.stream);
    let mut backoff = Backoff::new();
    let mut leading: Option<Leadership> = None;
    loop {
        let leader = match leading.as_mut() {
            Some(l) => l,
            None => match Leadership::acquire(&db, &key, &health, COMPONENT, &mut shutdown).await {
                Some(l) => leading.insert(l),
                None => return Ok(()),
            },
        };
        let started = std::time::Instant::now();
        let stop = relay(&db, &feed, &js, &names, leader, &health, &mut shutdown).await;
        if started.elapsed() > Duration::from_secs(30) {
            backoff.reset();
        }
        match stop {
            Stop::Shutdown => return Ok(()),
            Stop::LostLeadership => {
                health.not_ready(COMPONENT, "lost leadership; queuing up again");
                leading = None;
                backoff.reset();
            }
            Stop::Failed(e) => {
                tracing::warn!(error = %e, "relay interrupted; retrying");
                health.not_ready(COMPONENT, format!("{e:#}"));
                if !leader.check().await {
                    leading = None;
                }
                backoff.wait(&mut shutdown).await;
            }
        }
    }
}

/// Relay as the leader, from the resume point, until something stops it.
async fn relay(
    db: &Db,
    feed: &Feed,
    js: &jetstream::Context,
    names: &StreamNames,
    leader: &mut Leadership,
    health: &Health,
    shutdown: &mut watch::Receiver<bool>,
) -> Stop {
    let idle = Duration::from_millis(match db.backend() {
        igny8_commands::Backend::Postgres => 5,
        igny8_commands::Backend::Sqlite => 250,
    });
    let mut stream = match names.ensure_stream(js).await {
        Ok(s) => s,
        Err(e) => return Stop::Failed(anyhow::anyhow!("JetStream unavailable: {e}")),
    };
    let from_db = match load_checkpoint(db, &names.stream).await {
        Ok(p) => p,
        Err(e) => return Stop::Failed(anyhow::anyhow!("database unavailable: {e}")),
    };
    let (mut last_seq, tail) = match stream_tail(&mut stream).await {
        Ok(t) => t,
        Err(e) => return Stop::Failed(e),
    };
    let from_stream = tail.unwrap_or_default();
    let mut pos = match tail {
        // JetStream acknowledges before it has written to disk: a
        // nats-server killed right after may come back without the last
        // messages it acknowledged. The stream is what consumers read, so
        // its tail wins: send those events again, in feed order.
        Some(t) if t < from_db => {
            tracing::warn!(%from_db, stream_tail = %t, stream = %names.stream,
                "the stream lost acknowledged messages (NATS restarted before writing them); publishing them again");
            t
        }
        _ => from_db.max(from_stream),
    };
    tracing::info!(%pos, %from_db, %from_stream, stream = %names.stream, "relay resuming");
    health.ready(COMPONENT, "active");
    loop {
        if *shutdown.borrow() {
            return Stop::Shutdown;
        }
        let notified = feed.notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let events = match feed.read_after(pos, BATCH).await {
            Ok(e) => e,
            Err(e) => return Stop::Failed(anyhow::anyhow!("database unavailable: {e}")),
        };
        if events.is_empty() {
            // Nothing to send: NATS may still be gone; say so.
            if js.client().connection_state() != async_nats::connection::State::Connected {
                health.not_ready(COMPONENT, "NATS unavailable");
            } else {
                health.ready(COMPONENT, "active");
            }
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep(idle) => {}
                _ = shutdown.changed() => {}
            }
            continue;
        }
        if !leader.check().await {
            return Stop::LostLeadership;
        }
        match publish(js, names, &events, &mut pos, &mut last_seq).await {
            Ok(()) => health.ready(COMPONENT, "active"),
            Err(e) => {
                // What was confirmed is kept; the rest is sent again (same ids).
                let _ = store_checkpoint(db, &names.stream, pos).await;
                return Stop::Failed(e);
            }
        }
        if let Err(e) = store_checkpoint(db, &names.stream, pos).await {
            return Stop::Failed(anyhow::anyhow!("database unavailable: {e}"));
        }
    }
}

/// Publish `events` in order and wait for JetStream's acknowledgements;
/// `pos` and `last_seq` move over the confirmed prefix only.
///
/// Each message says which stream sequence it must follow
/// (`Nats-Expected-Last-Sequence`), so JetStream refuses it when the stream
/// is not what this relay last saw: another copy published meanwhile (a
/// stale leader), or a restarted nats-server lost messages it had
/// acknowledged. The relay then resumes from the stream's real tail, and
/// the stream stays in feed order with each event once.
async fn publish(
    js: &jetstream::Context,
    names: &StreamNames,
    events: &[igny8_commands::StoredEvent],
    pos: &mut Position,
    last_seq: &mut u64,
) -> anyhow::Result<()> {
    let mut acks: Vec<(Position, PublishAckFuture)> = Vec::with_capacity(events.len());
    let mut failure = None;
    for (i, e) in events.iter().enumerate() {
        let mut headers = HeaderMap::new();
        headers.insert(
            async_nats::header::NATS_EXPECTED_LAST_SEQUENCE,
            (*last_seq + i as u64).to_string().as_str(),
        );
        headers.insert(
            async_nats::header::NATS_MESSAGE_ID,
            e.event_id.to_string().as_str(),
        );
        headers.insert(POSITION_HEADER, e.position().to_string().as_str());
        let payload = serde_json::to_vec(e)?;
        match js
            .publish_with_headers(names.subject_for(e), headers, payload.into())
            .await
        {
            Ok(ack) => acks.push((e.position(), ack)),
            Err(err) => {
                failure = Some(anyhow::anyhow!("NATS publish failed: {err}"));
                break;
            }
        }
    }
    // Confirm in order; the checkpoint only covers a confirmed prefix.
    for (p, ack) in acks {
        match ack.await {
            Ok(a) => {
                *pos = p;
                *last_seq = a.sequence;
            }
            Err(err) => {
                return Err(anyhow::anyhow!("NATS did not acknowledge: {err}"));
            }
        }
    }
    failure.map_or(Ok(()), Err)
}
