//! The OpenAPI document is the contract clients are generated from: every
//! success answer is the envelope around a typed `data`, every error status
//! is documented with the error envelope, the shared parameters carry their
//! bounds, and the `error_code` enum lists every code the source can answer
//! (and docs/api.md explains each). `scripts/contract/run.sh` adds the
//! external checks (an OpenAPI validator, a generated TypeScript client,
//! schemathesis against the running server).

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;

fn document() -> Value {
    igny8_gateway::openapi::document()
}

/// Follow a local `$ref` once.
fn deref<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => doc
            .pointer(r.trim_start_matches('#'))
            .unwrap_or_else(|| panic!("dangling $ref {r}")),
        None => v,
    }
}

/// A schema that says nothing about its fields (`{}` or a bare object).
fn untyped(doc: &Value, s: &Value) -> bool {
    let s = deref(doc, s);
    let Some(m) = s.as_object() else {
        return true;
    };
    if m.is_empty() {
        return true;
    }
    let composed = [
        "allOf",
        "oneOf",
        "anyOf",
        "items",
        "properties",
        "enum",
        "$ref",
    ]
    .iter()
    .any(|k| m.contains_key(*k));
    let ty = m.get("type");
    let object_only = ty == Some(&Value::String("object".into()))
        || ty
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().all(|t| t == "object" || t == "null"));
    object_only && !composed && !m.contains_key("additionalProperties")
}

#[test]
fn every_operation_answers_the_documented_envelopes() {
    let doc = document();
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() > 40, "the document lists the routes");
    let mut checked = 0;
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            let what = format!("{} {path}", method.to_uppercase());
            let responses = op["responses"].as_object().unwrap();
            let mut has_success = false;
            for (status, r) in responses {
                let r = deref(&doc, r);
                let Some(schema) = r.pointer("/content/application~1json/schema") else {
                    continue;
                };
                if status.starts_with('2') {
                    has_success = true;
                    let props = &schema["properties"];
                    for k in ["success", "data", "message", "request_id", "timestamp"] {
                        assert!(
                            props.get(k).is_some(),
                            "{what} {status}: envelope lacks {k}"
                        );
                    }
                    // `data` is typed: the answer's real fields, not a bare object.
                    // (The generic command endpoint's `schema` fields are JSON Schemas
                    // themselves, and event payloads are typed per event in schema/events/.)
                    assert!(
                        !untyped(&doc, &props["data"]),
                        "{what} {status}: data is untyped: {}",
                        props["data"]
                    );
                } else {
                    assert_eq!(
                        schema["$ref"], "#/components/schemas/ErrorEnvelope",
                        "{what} {status}: errors answer the error envelope"
                    );
                }
            }
            let streams = responses.values().any(|r| {
                r.get("content")
                    .and_then(Value::as_object)
                    .is_some_and(|c| {
                        c.keys().any(|k| {
                            k == "text/csv" || k == "text/event-stream" || k.starts_with("image/")
                        })
                    })
            });
            assert!(
                has_success || streams,
                "{what}: no success answer documented"
            );
            let secured = op
                .get("security")
                .and_then(Value::as_array)
                .is_some_and(|a| !a.is_empty());
            let mut need: Vec<&str> = vec![];
            if path != "/health" && path != "/ready" {
                need.extend(["429", "503"]);
            }
            if secured {
                need.extend(["400", "401", "403", "404"]);
            }
            if op.get("requestBody").is_some() {
                need.extend(["413", "415"]);
            }
            if op
                .pointer("/requestBody/content/application~1json")
                .is_some()
            {
                need.push("422");
            }
            for s in need {
                assert!(responses.contains_key(s), "{what}: {s} undocumented");
            }
            for p in op
                .get("parameters")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let (name, schema) = (p["name"].as_str().unwrap(), &p["schema"]);
                match name {
                    "page" => assert_eq!(schema["minimum"], 1, "{what}: page"),
                    "page_size" => assert_eq!(
                        (&schema["minimum"], &schema["maximum"]),
                        (&Value::from(1), &Value::from(500)),
                        "{what}: page_size"
                    ),
                    "min_position" => assert_eq!(schema["minimum"], 0, "{what}: min_position"),
                    "Idempotency-Key" => assert_eq!(schema["maxLength"], 255, "{what}"),
                    _ => {}
                }
            }
            checked += 1;
        }
    }
    assert!(checked > 55, "{checked} operations checked");
}

#[test]
fn the_typescript_paths_of_the_issue_are_typed() {
    let doc = document();
    let data = |path: &str, method: &str, status: &str| -> Value {
        let s = doc["paths"][path][method]["responses"][status]["content"]["application/json"]
            ["schema"]["properties"]["data"]
            .clone();
        deref(&doc, &s).clone()
    };
    let login = data("/api/v1/auth/login/", "post", "200");
    let login = serde_json::to_string(&login).unwrap();
    assert!(
        login.contains("access_token") || login.contains("TokenPair"),
        "{login}"
    );
    let credits = data("/api/v1/billing/credits/", "get", "200");
    assert!(
        credits["properties"].get("available").is_some(),
        "{credits}"
    );
    let page = data("/api/v1/planner/keywords/", "get", "200");
    let item = deref(&doc, &page["properties"]["results"]["items"]);
    assert!(item["properties"].get("keyword").is_some(), "{item}");
    assert_eq!(page["properties"]["count_capped"]["type"], "boolean");
}

/// The codes the source answers with: UPPER_SNAKE literals passed to an
/// `ApiError` or returned by a domain error's `code()`.
fn codes_in_source() -> BTreeSet<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut out = BTreeSet::new();
    let mut stack: Vec<_> = ["gateway/src", "commands/src", "domain/src", "workers/src"]
        .iter()
        .map(|d| root.join(d))
        .collect();
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            if p.extension().is_none_or(|x| x != "rs")
                || p.ends_with("errors.rs")
                || p.components().any(|c| c.as_os_str() == "benchmarks")
            {
                continue;
            }
            let text = std::fs::read_to_string(&p).unwrap();
            for line in text.lines() {
                let coded = line.contains("ApiError")
                    || line.contains("=> \"")
                    || line.trim_start().starts_with('"')
                    || line.contains("unprocessable(")
                    || line.contains("unavailable(");
                if !coded {
                    continue;
                }
                for lit in line.split('"').skip(1).step_by(2) {
                    let code_like = lit.len() > 3
                        && lit.contains('_')
                        && lit
                            .chars()
                            .all(|c| c.is_ascii_uppercase() || c == '_' || c.is_ascii_digit());
                    if code_like && !lit.starts_with("IGNY8_") {
                        out.insert(lit.to_string());
                    }
                }
            }
        }
    }
    // What a WordPress connection test or publish job names (not HTTP
    // error codes), each explained in docs/api.md.
    let api_md =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/api.md"))
            .unwrap();
    for c in igny8_gateway::publishing::CONNECTION_CODES {
        assert!(
            api_md.contains(&format!("`{c}`")),
            "{c} is not explained in docs/api.md"
        );
        out.remove(*c);
    }
    for not_codes in [
        "DATABASE_URL",
        "NATS_URL",
        "CARGO_PKG_VERSION",
        "UPPER_SNAKE",
    ] {
        out.remove(not_codes);
    }
    out
}

#[test]
fn error_codes_are_listed_documented_and_used() {
    let listed: BTreeSet<String> = igny8_gateway::http::errors::ERROR_CODES
        .iter()
        .map(|s| s.to_string())
        .collect();
    let used = codes_in_source();
    let missing: Vec<_> = used.difference(&listed).collect();
    assert!(
        missing.is_empty(),
        "codes answered but not in http/errors.rs ERROR_CODES: {missing:?}"
    );
    let docs =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/api.md"))
            .unwrap();
    let undocumented: Vec<_> = listed
        .iter()
        .filter(|c| !docs.contains(&format!("`{c}`")))
        .collect();
    assert!(
        undocumented.is_empty(),
        "codes missing from docs/api.md (Status codes and error codes): {undocumented:?}"
    );
    let doc = document();
    let published: BTreeSet<String> = doc["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(published, listed, "the spec's ErrorCode enum is the list");
}

/// Every `$ref` points at a schema the document has, and operation ids are unique.
#[test]
fn refs_resolve_and_operation_ids_are_unique() {
    let doc = document();
    // The cross-field rules survive into the served document.
    assert!(
        doc["components"]["schemas"]["CreateKeyBody"]["oneOf"].is_array(),
        "CreateKeyBody keeps its oneOf"
    );
    fn walk(doc: &Value, v: &Value, bad: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(r) = m.get("$ref").and_then(Value::as_str)
                    && doc.pointer(r.trim_start_matches('#')).is_none()
                {
                    bad.push(r.to_string());
                }
                m.values().for_each(|x| walk(doc, x, bad));
            }
            Value::Array(a) => a.iter().for_each(|x| walk(doc, x, bad)),
            _ => {}
        }
    }
    let mut bad = vec![];
    walk(&doc, &doc, &mut bad);
    assert!(bad.is_empty(), "dangling $refs: {bad:?}");
    let mut ids = BTreeSet::new();
    for item in doc["paths"].as_object().unwrap().values() {
        for op in item.as_object().unwrap().values() {
            let id = op["operationId"].as_str().unwrap().to_string();
            assert!(ids.insert(id.clone()), "operationId {id} twice");
        }
    }
}
