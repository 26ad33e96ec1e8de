//! The committed event as every reader sees it (feed, relay, projections).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// A point in the global feed. Ordered by the writing transaction first,
/// then by the global position; this is the order in which the feed
/// delivers events and the pair every checkpoint stores.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Position {
    pub tx_id: i64,
    pub global_position: i64,
}

impl Position {
    pub const START: Position = Position {
        tx_id: 0,
        global_position: 0,
    };
    pub fn new(tx_id: i64, global_position: i64) -> Self {
        Self {
            tx_id,
            global_position,
        }
    }
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.tx_id, self.global_position)
    }
}

impl std::str::FromStr for Position {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (a, b) = s
            .split_once(':')
            .ok_or_else(|| format!("bad position {s:?}"))?;
        Ok(Position {
            tx_id: a.parse().map_err(|_| format!("bad position {s:?}"))?,
            global_position: b.parse().map_err(|_| format!("bad position {s:?}"))?,
        })
    }
}

/// A committed event: the aggregate's fact (`payload`, externally tagged by
/// `event_type`) with its metadata and its place in the global order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StoredEvent {
    pub event_id: Uuid,
    pub global_position: i64,
    pub tx_id: i64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    /// `{"<event_type>": {...fields}}`; schema/events/ has each type's JSON Schema.
    #[schema(value_type = Object)]
    pub payload: Value,
    /// account_id, actor, request_id, correlation_id, causation_id, occurred_at.
    #[schema(value_type = Object)]
    pub metadata: Value,
    pub recorded_at: DateTime<Utc>,
    pub account_id: Option<String>,
}

impl StoredEvent {
    pub fn position(&self) -> Position {
        Position::new(self.tx_id, self.global_position)
    }
    /// A metadata field as a string, if present.
    pub fn meta(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).and_then(Value::as_str)
    }
    /// The inner payload of an externally tagged event (`{"Type": {...}}`).
    pub fn body(&self) -> &Value {
        self.payload.get(&self.event_type).unwrap_or(&self.payload)
    }

    /// The payload as the domain event `E` (`{"Type": {...}}`, as written).
    /// Every field the event must have must be there with its type, and the
    /// variant must be the stored `event_type`; otherwise a [`DecodeError`]
    /// naming the event.
    pub fn decode<E: igny8_domain::DomainEvent>(&self) -> Result<E, DecodeError> {
        let fail = |reason: String| DecodeError {
            event_id: self.event_id,
            aggregate_type: self.aggregate_type.clone(),
            event_type: self.event_type.clone(),
            reason,
        };
        let e = E::deserialize(&self.payload).map_err(|e| fail(e.to_string()))?;
        if e.event_type() != self.event_type {
            return Err(fail(format!("the payload is a {} event", e.event_type())));
        }
        Ok(e)
    }
}

/// An event whose payload the reader cannot read as its domain event.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("event {event_id} ({aggregate_type} {event_type}) cannot be decoded: {reason}")]
pub struct DecodeError {
    pub event_id: Uuid,
    pub aggregate_type: String,
    pub event_type: String,
    /// The deserializer's message (which field is missing or of the wrong type).
    pub reason: String,
}

/// Columns every reader selects, in both backends.
pub(crate) const EVENT_COLUMNS: &str = "event_id, global_position, tx_id, aggregate_type, aggregate_id, sequence, \
     event_type, event_version, payload, metadata, recorded_at, account_id";

#[derive(sqlx::FromRow)]
pub(crate) struct PgEventRow {
    event_id: Uuid,
    global_position: i64,
    tx_id: i64,
    aggregate_type: String,
    aggregate_id: String,
    sequence: i64,
    event_type: String,
    event_version: String,
    payload: Value,
    metadata: Value,
    recorded_at: DateTime<Utc>,
    account_id: Option<String>,
}

impl From<PgEventRow> for StoredEvent {
    fn from(r: PgEventRow) -> Self {
        StoredEvent {
            event_id: r.event_id,
            global_position: r.global_position,
            tx_id: r.tx_id,
            aggregate_type: r.aggregate_type,
            aggregate_id: r.aggregate_id,
            sequence: r.sequence,
            event_type: r.event_type,
            event_version: r.event_version,
            payload: r.payload,
            metadata: r.metadata,
            recorded_at: r.recorded_at,
            account_id: r.account_id,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct SqliteEventRow {
    event_id: String,
    global_position: i64,
    tx_id: i64,
    aggregate_type: String,
    aggregate_id: String,
    sequence: i64,
    event_type: String,
    event_version: String,
    payload: String,
    metadata: String,
    recorded_at: DateTime<Utc>,
    account_id: Option<String>,
}

impl TryFrom<SqliteEventRow> for StoredEvent {
    type Error = sqlx::Error;
    fn try_from(r: SqliteEventRow) -> Result<Self, sqlx::Error> {
        let bad = |e: String| sqlx::Error::Decode(e.into());
        Ok(StoredEvent {
            event_id: Uuid::parse_str(&r.event_id).map_err(|e| bad(e.to_string()))?,
            global_position: r.global_position,
            tx_id: r.tx_id,
            aggregate_type: r.aggregate_type,
            aggregate_id: r.aggregate_id,
            sequence: r.sequence,
            event_type: r.event_type,
            event_version: r.event_version,
            payload: serde_json::from_str(&r.payload).map_err(|e| bad(e.to_string()))?,
            metadata: serde_json::from_str(&r.metadata).map_err(|e| bad(e.to_string()))?,
            recorded_at: r.recorded_at,
            account_id: r.account_id,
        })
    }
}

pub(crate) fn from_sqlite_rows(rows: Vec<SqliteEventRow>) -> Result<Vec<StoredEvent>, sqlx::Error> {
    rows.into_iter().map(StoredEvent::try_from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use igny8_domain::billing::AccountEvent;

    fn stored(event_type: &str, payload: Value) -> StoredEvent {
        StoredEvent {
            event_id: Uuid::from_u128(7),
            global_position: 1,
            tx_id: 1,
            aggregate_type: "account".into(),
            aggregate_id: "a".into(),
            sequence: 1,
            event_type: event_type.into(),
            event_version: "1".into(),
            payload,
            metadata: Value::Null,
            recorded_at: Utc::now(),
            account_id: None,
        }
    }

    #[test]
    fn decode_reads_the_domain_event_or_names_what_is_wrong() {
        let ok = stored(
            "CreditsGranted",
            serde_json::json!({"CreditsGranted": {"amount": 5, "balance_after": 5, "reason": "r"}}),
        );
        assert_eq!(
            ok.decode::<AccountEvent>().unwrap(),
            AccountEvent::CreditsGranted {
                amount: 5,
                balance_after: 5,
                reason: "r".into()
            }
        );
        let renamed = stored(
            "CreditsGranted",
            serde_json::json!({"CreditsGranted": {"amt": 5, "balance_after": 5, "reason": "r"}}),
        );
        let e = renamed.decode::<AccountEvent>().unwrap_err();
        assert_eq!(e.event_id, Uuid::from_u128(7));
        assert!(e.to_string().contains("amount"), "{e}");
        assert!(e.to_string().contains("CreditsGranted"), "{e}");
        let mislabelled = stored(
            "CreditsSpent",
            serde_json::json!({"CreditsGranted": {"amount": 5, "balance_after": 5, "reason": "r"}}),
        );
        assert!(mislabelled.decode::<AccountEvent>().is_err());
    }
}
