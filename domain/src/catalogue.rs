//! The event catalogue rendered from the events' JSON Schemas
//! (`schema/events/<aggregate_type>/<EventType>.schema.json`).
//!
//! [`render`] is pure (parsed schemas in, Markdown out) and deterministic:
//! aggregates and events sorted by name (then version), fields in the order
//! of the schema's `required` list, then the optional ones by name; nested
//! objects as `parent.child`, array elements as `parent[].child`.
//! [`splice`] puts the result between [`BEGIN`] and [`END`] of a document
//! (`docs/events.md`), whose other text is written by hand.
//! `domain/tests/event_catalogue.rs` checks the committed file.

use serde_json::Value;
use std::fmt::Write;

/// Opens the generated part of a document.
pub const BEGIN: &str = "<!-- BEGIN GENERATED: event catalogue, from schema/events/*/*.schema.json. Do not edit by hand; regenerate with `IGNY8_BLESS=1 cargo test -p igny8-domain --test event_catalogue` -->";
/// Closes it.
pub const END: &str = "<!-- END GENERATED -->";

/// One event schema file.
#[derive(Debug, Clone)]
pub struct EventSchema {
    /// Path relative to `schema/events/`, e.g. `account/AccountOpened.schema.json`.
    pub path: String,
    /// The parsed file.
    pub schema: Value,
}

struct Event<'a> {
    aggregate: &'a str,
    event_type: &'a str,
    version: &'a str,
    subject: &'a str,
    path: &'a str,
    payload: &'a Value,
}

fn event(s: &EventSchema) -> Result<Event<'_>, String> {
    let x = &s.schema["x-igny8"];
    let field = |k: &str| {
        x[k].as_str()
            .ok_or_else(|| format!("{}: x-igny8.{k} is missing or not a string", s.path))
    };
    let event_type = field("event_type")?;
    let payload = &s.schema["properties"][event_type];
    if !payload.is_object() {
        return Err(format!("{}: no properties.{event_type}", s.path));
    }
    Ok(Event {
        aggregate: field("aggregate_type")?,
        event_type,
        version: field("event_version")?,
        subject: field("subject")?,
        path: &s.path,
        payload,
    })
}

/// A table cell: one line, pipes escaped.
fn cell(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

fn types(schema: &Value) -> Vec<&str> {
    match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    }
}

/// `string (uuid)`, `integer or null`, `array of string (uuid)`, `any`.
fn type_name(schema: &Value) -> String {
    let ts = types(schema);
    if ts.is_empty() {
        return "any".into();
    }
    let named: Vec<String> = ts
        .iter()
        .map(|t| match *t {
            "array" if schema.get("items").is_some() => {
                format!("array of {}", type_name(&schema["items"]))
            }
            "string" => match schema["format"].as_str() {
                Some(f) => format!("string ({f})"),
                None => "string".into(),
            },
            t => t.to_string(),
        })
        .collect();
    named.join(" or ")
}

/// Validation keywords other than the type, in a fixed order.
fn constraints(schema: &Value) -> String {
    let mut out: Vec<String> = vec![];
    let num = |k: &str| schema.get(k).map(Value::to_string);
    match (num("minimum"), num("maximum")) {
        (Some(a), Some(b)) => out.push(format!("{a} to {b}")),
        (Some(a), None) => out.push(format!("≥ {a}")),
        (None, Some(b)) => out.push(format!("≤ {b}")),
        (None, None) => {}
    }
    for (k, label) in [
        ("exclusiveMinimum", ">"),
        ("exclusiveMaximum", "<"),
        ("multipleOf", "multiple of"),
    ] {
        if let Some(v) = num(k) {
            out.push(format!("{label} {v}"));
        }
    }
    match (num("minLength"), num("maxLength")) {
        (Some(a), Some(b)) => out.push(format!("{a} to {b} characters")),
        (Some(a), None) => out.push(format!("at least {a} characters")),
        (None, Some(b)) => out.push(format!("at most {b} characters")),
        (None, None) => {}
    }
    match (num("minItems"), num("maxItems")) {
        (Some(a), Some(b)) => out.push(format!("{a} to {b} items")),
        (Some(a), None) => out.push(format!("at least {a} items")),
        (None, Some(b)) => out.push(format!("at most {b} items")),
        (None, None) => {}
    }
    if schema["uniqueItems"] == Value::Bool(true) {
        out.push("unique items".into());
    }
    if let Some(p) = schema["pattern"].as_str() {
        out.push(format!("pattern `{p}`"));
    }
    if let Some(c) = schema.get("const") {
        out.push(format!("always `{c}`"));
    }
    if let Some(vs) = schema["enum"].as_array() {
        let vs: Vec<String> = vs
            .iter()
            .map(|v| match v {
                Value::String(s) => format!("`{s}`"),
                v => format!("`{v}`"),
            })
            .collect();
        out.push(format!("one of {}", vs.join(", ")));
    }
    out.join("; ")
}

/// The object's properties: required ones in `required` order, then the rest by name.
fn fields(object: &Value) -> Vec<(&str, &Value, bool)> {
    let Some(props) = object["properties"].as_object() else {
        return vec![];
    };
    let required: Vec<&str> = object["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut out: Vec<(&str, &Value, bool)> = required
        .iter()
        .filter_map(|k| props.get(*k).map(|v| (*k, v, true)))
        .collect();
    let mut rest: Vec<(&str, &Value, bool)> = props
        .iter()
        .filter(|(k, _)| !required.contains(&k.as_str()))
        .map(|(k, v)| (k.as_str(), v, false))
        .collect();
    rest.sort_by(|a, b| a.0.cmp(b.0));
    out.append(&mut rest);
    out
}

/// Table rows of an object's fields, nested ones after their parent.
fn rows(out: &mut String, prefix: &str, object: &Value) {
    for (name, schema, required) in fields(object) {
        let path = format!("{prefix}{name}");
        let _ = writeln!(
            out,
            "| `{path}` | {} | {} | {} | {} |",
            cell(&type_name(schema)),
            if required { "yes" } else { "no" },
            cell(&constraints(schema)),
            cell(schema["description"].as_str().unwrap_or("")),
        );
        rows(out, &format!("{path}."), schema);
        if let Some(items) = schema.get("items") {
            rows(out, &format!("{path}[]."), items);
        }
    }
}

/// The catalogue of `schemas`, as Markdown (ends with a newline).
pub fn render(schemas: &[EventSchema]) -> Result<String, String> {
    let mut events = schemas.iter().map(event).collect::<Result<Vec<_>, _>>()?;
    events.sort_by(|a, b| {
        (a.aggregate, a.event_type, a.version).cmp(&(b.aggregate, b.event_type, b.version))
    });
    let mut out = String::new();
    out.push_str("## Events by aggregate\n\n");
    out.push_str(
        "Generated from the payload schemas. Aggregates and events are in \
         alphabetical order; fields in the order of the schema's `required` \
         list, then optional ones by name. A nested object's fields are \
         listed as `parent.child`, an array's elements as `parent[].child`. \
         Every payload is externally tagged: `{\"<EventType>\": {fields}}`.\n",
    );
    let mut aggregate = "";
    for e in &events {
        if e.aggregate != aggregate {
            aggregate = e.aggregate;
            let names: Vec<String> = events
                .iter()
                .filter(|o| o.aggregate == aggregate)
                .map(|o| format!("`{}`", o.event_type))
                .collect();
            let _ = write!(
                out,
                "\n### `{aggregate}`\n\nEvents: {}.\n",
                names.join(", ")
            );
        }
        let _ = write!(out, "\n#### `{}` v{}\n\n", e.event_type, cell(e.version));
        if let Some(d) = e.payload["description"].as_str() {
            let _ = writeln!(out, "{}\n", d.trim());
        }
        let _ = writeln!(
            out,
            "Subject `{}`; schema [`{}`](../schema/events/{}).\n",
            e.subject, e.path, e.path
        );
        if fields(e.payload).is_empty() {
            out.push_str("No fields: the payload is `{}`.\n");
        } else {
            out.push_str("| Field | Type | Required | Constraints | Description |\n");
            out.push_str("|---|---|---|---|---|\n");
            rows(&mut out, "", e.payload);
        }
    }
    Ok(out)
}

/// `document` with the text between its [`BEGIN`] and [`END`] lines replaced
/// by `generated`.
pub fn splice(document: &str, generated: &str) -> Result<String, String> {
    let start = document
        .find(BEGIN)
        .ok_or("the document has no BEGIN GENERATED marker")?;
    let body = start + BEGIN.len();
    let end = body
        + document[body..]
            .find(END)
            .ok_or("the document has no END GENERATED marker after BEGIN")?;
    Ok(format!(
        "{}\n\n{}\n\n{}",
        &document[..body],
        generated.trim_end(),
        &document[end..]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema(event_type: &str, payload: Value) -> EventSchema {
        EventSchema {
            path: format!("a/{event_type}.schema.json"),
            schema: json!({
                "x-igny8": {"aggregate_type": "a", "event_type": event_type,
                            "event_version": "1", "subject": format!("igny8.events.<account_id>.a.{event_type}")},
                "properties": {event_type: payload}
            }),
        }
    }

    #[test]
    fn renders_fields_nested_and_sorted() {
        let md = render(&[
            schema("Zed", json!({"description": "Last.", "properties": {}})),
            schema(
                "Alpha",
                json!({
                    "description": "First.",
                    "required": ["b", "a"],
                    "properties": {
                        "a": {"type": ["string", "null"], "format": "uuid", "description": "A | pipe."},
                        "b": {"type": "array", "items": {"type": "object", "required": ["x"],
                              "properties": {"x": {"type": "integer", "minimum": 0, "maximum": 9, "description": "X."}}},
                              "description": "B."},
                        "c": {"type": "string", "enum": ["p", "q"], "maxLength": 5, "description": "C."}
                    }
                }),
            ),
        ])
        .unwrap();
        let alpha = md.find("#### `Alpha`").unwrap();
        assert!(alpha < md.find("#### `Zed`").unwrap());
        assert!(md.contains("Events: `Alpha`, `Zed`."));
        let b = md.find("| `b` | array of object | yes |  | B. |").unwrap();
        let x = md
            .find("| `b[].x` | integer | yes | 0 to 9 | X. |")
            .unwrap();
        let a = md
            .find("| `a` | string (uuid) or null | yes |  | A \\| pipe. |")
            .unwrap();
        let c = md
            .find("| `c` | string | no | at most 5 characters; one of `p`, `q` | C. |")
            .unwrap();
        assert!(b < x && x < a && a < c, "{md}");
        assert!(md.contains("No fields: the payload is `{}`."));
    }

    #[test]
    fn a_schema_without_x_igny8_is_an_error() {
        let bad = EventSchema {
            path: "a/B.schema.json".into(),
            schema: json!({}),
        };
        assert!(render(&[bad]).unwrap_err().contains("a/B.schema.json"));
    }

    #[test]
    fn splice_replaces_only_between_the_markers() {
        let doc = format!("head\n{BEGIN}\nold\n{END}\ntail\n");
        assert_eq!(
            splice(&doc, "new\n").unwrap(),
            format!("head\n{BEGIN}\n\nnew\n\n{END}\ntail\n")
        );
        assert!(splice("no markers", "x").is_err());
    }
}
