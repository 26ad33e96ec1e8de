//! Events as auditors see them over HTTP: sealed secrets and secret hashes
//! are replaced (the stream for operators still carries them sealed).

use serde_json::Value;

/// Fields that hold sealed secrets or secret hashes: never served, even
/// sealed (the event stream for operators still carries them).
const SECRET_FIELDS: &[&str] = &[
    "credential",
    "wp_credential",
    "secret_hash",
    "api_key_sealed",
];

/// An event as auditors see it over HTTP: secret fields replaced.
pub fn redact(mut e: igny8_commands::StoredEvent) -> igny8_commands::StoredEvent {
    let t = e.event_type.clone();
    if let Some(Value::Object(body)) = e.payload.get_mut(&t) {
        for f in SECRET_FIELDS {
            if let Some(v) = body.get_mut(*f)
                && !v.is_null()
            {
                *v = Value::String("[redacted]".into());
            }
        }
    }
    e
}
