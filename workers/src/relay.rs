//! Relay: event store → NATS JetStream.
//!
//! Tails the gap-safe feed and publishes every event to
//! `<prefix>.events.<account>.<aggregate_type>.<event_type>` with
//! `Nats-Msg-Id` = event id and `Igny8-Position` = `<tx_id>:<global_position>`.
//!
//! Exactly once in the stream, across crashes:
//! - it resumes from the later of its checkpoint table and the position
//!   header of the stream's last message, so it never starts before what
//!   the stream already holds (whatever the age of the crash);
//! - it publishes in feed order and moves its checkpoint only after
//!   JetStream acknowledged; anything re-sent after a crash between the two
//!   carries the same `Nats-Msg-Id` and is dropped by JetStream's
//!   duplicate window.
//! - several copies may run: a PostgreSQL advisory lock makes one active,
//!   the others stand by.

use async_nats::HeaderMap;
use async_nats::jetstream::{self, context::PublishAckFuture};
use igny8_commands::db::{Db, hold_singleton};
use igny8_commands::stream::POSITION_HEADER;
use igny8_commands::{Feed, Position, StreamNames, on_db};
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
async fn stream_tail(stream: &mut jetstream::stream::Stream) -> anyhow::Result<Option<Position>> {
    let last = stream
        .info()
        .await
        .map_err(|e| anyhow::anyhow!("stream info: {e}"))?
        .state
        .last_sequence;
    if last == 0 {
        return Ok(None);
    }
    // After a purge the last sequence may name a message that is gone: then
    // the stream tells us nothing and the checkpoint table decides.
    match stream.get_raw_message(last).await {
        Ok(msg) => Ok(msg
            .headers
            .get(POSITION_HEADER)
            .and_then(|v| v.as_str().parse().ok())),
        Err(e) => {
            tracing::warn!(error = %e, last, "stream tail unreadable; resuming from the checkpoint table");
            Ok(None)
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

pub async fn run(
    db: Db,
    feed: Feed,
    js: jetstream::Context,
    names: StreamNames,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let _leader =
        match hold_singleton(&db, &format!("igny8:relay:{}", names.stream), &mut shutdown).await {
            Ok(l) => l,
            Err(_) if *shutdown.borrow() => return Ok(()),
            Err(e) => return Err(e.into()),
        };
    let idle = Duration::from_millis(match db.backend() {
        igny8_commands::Backend::Postgres => 5,
        igny8_commands::Backend::Sqlite => 250,
    });
    'resume: loop {
        if *shutdown.borrow() {
            return Ok(());
        }
        let mut stream = match names.ensure_stream(&js).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "JetStream unavailable; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let from_db = load_checkpoint(&db, &names.stream).await?;
        let from_stream = stream_tail(&mut stream).await?.unwrap_or_default();
        let mut pos = from_db.max(from_stream);
        tracing::info!(%pos, %from_db, %from_stream, stream = %names.stream, "relay resuming");
        loop {
            if *shutdown.borrow() {
                return Ok(());
            }
            let notified = feed.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let events = feed.read_after(pos, BATCH).await?;
            if events.is_empty() {
                tokio::select! {
                    _ = &mut notified => {}
                    _ = tokio::time::sleep(idle) => {}
                    _ = shutdown.changed() => {}
                }
                continue;
            }
            let mut acks: Vec<(Position, PublishAckFuture)> = Vec::with_capacity(events.len());
            let mut failed = false;
            for e in &events {
                let mut headers = HeaderMap::new();
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
                        tracing::warn!(error = %err, "publish failed; resuming");
                        failed = true;
                        break;
                    }
                }
            }
            // Confirm in order; the checkpoint only covers a confirmed prefix.
            for (p, ack) in acks {
                match ack.await {
                    Ok(_) => pos = p,
                    Err(err) => {
                        tracing::warn!(error = %err, "publish not acknowledged; resuming");
                        failed = true;
                        break;
                    }
                }
            }
            store_checkpoint(&db, &names.stream, pos).await?;
            if failed {
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue 'resume;
            }
        }
    }
}
