//! The published JSON Schemas (`schema/events/`) stay true to the events we
//! write: one schema per event type, whose fields and types match what the
//! serialised event carries.

use igny8_domain::DomainEvent;
use igny8_domain::billing::AccountEvent;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::PathBuf;

fn samples() -> Vec<(&'static str, AccountEvent)> {
    vec![
        (
            "account",
            AccountEvent::AccountOpened {
                name: "Acme".into(),
            },
        ),
        (
            "account",
            AccountEvent::CreditsGranted {
                amount: 10,
                balance_after: 10,
                reason: "plan".into(),
            },
        ),
        (
            "account",
            AccountEvent::CreditsSpent {
                amount: 4,
                balance_after: 6,
                reason: String::new(),
            },
        ),
    ]
}

fn schema_for(aggregate: &str, event_type: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../schema/events")
        .join(aggregate)
        .join(format!("{event_type}.schema.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("missing schema {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: invalid JSON: {e}", path.display()))
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Bool(_) => "boolean",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
        Value::Null => "null",
    }
}

#[test]
fn every_event_type_has_a_matching_schema() {
    for (aggregate, event) in samples() {
        let t = event.event_type();
        let schema = schema_for(aggregate, t);
        assert_eq!(schema["x-igny8"]["event_type"], t);
        assert_eq!(schema["x-igny8"]["event_version"], event.event_version());
        assert_eq!(
            schema["required"],
            serde_json::json!([t]),
            "{t}: externally tagged"
        );

        let payload = serde_json::to_value(&event).unwrap();
        let inner = payload[t]
            .as_object()
            .unwrap_or_else(|| panic!("{t}: payload is {{\"{t}\": {{...}}}}"));
        let declared = &schema["properties"][t];
        let required: BTreeSet<&str> = declared["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let written: BTreeSet<&str> = inner.keys().map(String::as_str).collect();
        assert_eq!(
            required, written,
            "{t}: schema's required fields = fields written"
        );
        for (k, v) in inner {
            assert_eq!(
                declared["properties"][k]["type"].as_str(),
                Some(json_type(v)),
                "{t}.{k}: type"
            );
        }
        // The schema's own example deserialises into the event type.
        for ex in schema["examples"].as_array().into_iter().flatten() {
            let parsed: AccountEvent =
                serde_json::from_value(ex.clone()).unwrap_or_else(|e| panic!("{t}: example: {e}"));
            assert_eq!(parsed.event_type(), t);
        }
    }
}
