//! The NATS JetStream contract: one stream, one subject per event,
//! `<prefix>.events.<account_id>.<aggregate_type>.<event_type>`, message id =
//! event id, header `Igny8-Position: <tx_id>:<global_position>`.

use crate::event::StoredEvent;
use async_nats::jetstream::{self, stream};
use std::time::Duration;

pub const POSITION_HEADER: &str = "Igny8-Position";

#[derive(Debug, Clone)]
pub struct StreamNames {
    /// JetStream stream name (default `IGNY8_EVENTS`).
    pub stream: String,
    /// First subject token (default `igny8`).
    pub prefix: String,
}

impl Default for StreamNames {
    fn default() -> Self {
        Self {
            stream: "IGNY8_EVENTS".into(),
            prefix: "igny8".into(),
        }
    }
}

/// A subject token: NATS forbids `.`, `*`, `>` and whitespace inside one.
fn token(s: &str) -> String {
    let t: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if t.is_empty() { "_".into() } else { t }
}

impl StreamNames {
    pub fn subject_for(&self, e: &StoredEvent) -> String {
        format!(
            "{}.events.{}.{}.{}",
            self.prefix,
            token(e.account_id.as_deref().unwrap_or("system")),
            token(&e.aggregate_type),
            token(&e.event_type)
        )
    }

    /// Every event subject.
    pub fn all_events(&self) -> String {
        format!("{}.events.>", self.prefix)
    }

    /// Create the stream if missing (idempotent; safe from many processes).
    pub async fn ensure_stream(
        &self,
        js: &jetstream::Context,
    ) -> Result<stream::Stream, async_nats::Error> {
        let cfg = stream::Config {
            name: self.stream.clone(),
            subjects: vec![self.all_events()],
            storage: stream::StorageType::File,
            retention: stream::RetentionPolicy::Limits,
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        };
        Ok(js.get_or_create_stream(cfg).await?)
    }
}
