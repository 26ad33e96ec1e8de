//! `docs/events.md`'s generated part is what [`igny8_domain::catalogue`]
//! renders from `schema/events/*/*.schema.json`, and every field there is
//! described. Regenerate with
//! `IGNY8_BLESS=1 cargo test -p igny8-domain --test event_catalogue`.

use igny8_domain::catalogue::{EventSchema, render, splice};
use serde_json::Value;
use std::path::{Path, PathBuf};

const REGENERATE: &str = "IGNY8_BLESS=1 cargo test -p igny8-domain --test event_catalogue";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every `schema/events/<aggregate>/<Event>.schema.json`, sorted by path.
fn schemas() -> Vec<EventSchema> {
    let dir = root().join("schema/events");
    let mut out = vec![];
    for agg in std::fs::read_dir(&dir).unwrap().flatten() {
        if !agg.path().is_dir() {
            continue;
        }
        for f in std::fs::read_dir(agg.path()).unwrap().flatten() {
            let path = f.path();
            let name = f.file_name().to_string_lossy().to_string();
            if !name.ends_with(".schema.json") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let schema: Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{}: invalid JSON: {e}", path.display()));
            out.push(EventSchema {
                path: format!("{}/{name}", agg.file_name().to_string_lossy()),
                schema,
            });
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// Fields (and the payload objects) without a description, as `path: field`.
fn undescribed(path: &str, prefix: &str, object: &Value, out: &mut Vec<String>) {
    for (name, field) in object["properties"].as_object().into_iter().flatten() {
        let at = format!("{prefix}{name}");
        if field["description"]
            .as_str()
            .is_none_or(|d| d.trim().is_empty())
        {
            out.push(format!("{path}: {at}"));
        }
        undescribed(path, &format!("{at}."), field, out);
        if let Some(items) = field.get("items") {
            undescribed(path, &format!("{at}[]."), items, out);
        }
    }
}

#[test]
fn every_event_and_field_is_described() {
    let mut missing = vec![];
    for s in schemas() {
        let t = s.schema["x-igny8"]["event_type"]
            .as_str()
            .unwrap()
            .to_string();
        let payload = &s.schema["properties"][&t];
        if payload["description"]
            .as_str()
            .is_none_or(|d| d.trim().is_empty())
        {
            missing.push(format!("{}: the payload object (properties.{t})", s.path));
        }
        undescribed(&s.path, "", payload, &mut missing);
    }
    assert!(
        missing.is_empty(),
        "add a `description` to:\n{}",
        missing.join("\n")
    );
}

#[test]
fn docs_events_md_is_the_generated_catalogue() {
    let file: &Path = &root().join("docs/events.md");
    let committed = std::fs::read_to_string(file).unwrap();
    let generated = render(&schemas()).unwrap();
    let expected = splice(&committed, &generated).unwrap();
    if std::env::var_os("IGNY8_BLESS").is_some() {
        if expected != committed {
            std::fs::write(file, &expected).unwrap();
        }
        return;
    }
    if expected != committed {
        let line = committed
            .lines()
            .zip(expected.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| committed.lines().count().min(expected.lines().count()))
            + 1;
        panic!(
            "docs/events.md differs from the catalogue generated from schema/events/ \
             (first difference at line {line}). The part between the GENERATED markers \
             is rendered from the schemas: change the schemas, not that part, then \
             regenerate with:\n    {REGENERATE}"
        );
    }
}
