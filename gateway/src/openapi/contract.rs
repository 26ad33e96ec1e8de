//! The contract pass: rules every operation of the document follows, applied
//! once over the generated document so that routes added later follow them
//! too without repeating them in each annotation.
//!
//! - Every 2xx `application/json` answer is the success envelope
//!   `{success, data, message, request_id, timestamp}` around the schema the
//!   route annotates (`body = T` in `#[utoipa::path]` names the `data`).
//! - Every error status an operation can answer is documented with
//!   `ErrorEnvelope`: 400 where it takes input or a credential, 401 and 403
//!   on secured routes, 404 on secured routes (ids of other accounts, an
//!   operator's unknown account), 409 and 422 on secured writes, 413, 415
//!   and 422 where there is a JSON body, 429 on every route but the probes,
//!   503 on every route but `/health`. A status the annotation documents
//!   already keeps its own description.
//! - Operation ids are `<tag>_<handler>`, unique in the document.
//! - Strings of request bodies without a stricter rule exclude U+0000.
//! - The shared parameters carry their bounds: `page` ≥ 1, `page_size`
//!   1–500, `min_position` ≥ 0, `Idempotency-Key` 1–255 visible ASCII
//!   characters, `If-Match` a version number.

use serde_json::{Map, Value, json};

const METHODS: &[&str] = &["get", "put", "post", "delete", "patch"];

pub fn apply(mut doc: Value) -> Value {
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for (path, item) in paths.iter_mut() {
            for m in METHODS {
                if let Some(op) = item.get_mut(*m) {
                    operation(path, m, op);
                }
            }
        }
    }
    if let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        for (name, schema) in schemas.iter_mut() {
            if name.ends_with("Body") {
                no_nul(schema);
            }
        }
        for (name, rule) in crate::http::constraints::cross_field_rules() {
            if let (Some(Value::Object(target)), Value::Object(rule)) =
                (schemas.get_mut(name), rule)
            {
                target.extend(rule);
            }
        }
    }
    optional_bodies(&mut doc);
    doc
}

/// A JSON body whose fields are all optional may be left out (the server
/// reads no body as `{}`): the document says it is not required.
fn optional_bodies(doc: &mut Value) {
    let schemas = doc
        .pointer("/components/schemas")
        .cloned()
        .unwrap_or_default();
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for item in paths.values_mut() {
        for m in METHODS {
            let Some(body) = item.pointer_mut(&format!("/{m}/requestBody")) else {
                continue;
            };
            let Some(schema) = body.pointer("/content/application~1json/schema") else {
                continue;
            };
            let schema = match schema.get("$ref").and_then(Value::as_str) {
                Some(r) => schemas
                    .get(r.trim_start_matches("#/components/schemas/"))
                    .cloned()
                    .unwrap_or_default(),
                None => schema.clone(),
            };
            let none_required = schema
                .get("required")
                .and_then(Value::as_array)
                .is_none_or(|r| r.is_empty());
            let composed = ["oneOf", "anyOf", "allOf"]
                .iter()
                .any(|k| schema.get(*k).is_some());
            if schema.get("properties").is_some() && none_required && !composed {
                body["required"] = json!(false);
            }
        }
    }
}

/// Free text in request bodies: PostgreSQL cannot store U+0000, so the
/// server refuses it; say so where a string has no stricter rule.
fn no_nul(schema: &mut Value) {
    let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) else {
        return;
    };
    for p in props.values_mut() {
        let is_string = p["type"] == "string"
            || p["type"]
                .as_array()
                .is_some_and(|a| a.iter().any(|t| t == "string"));
        let ruled = ["pattern", "enum", "format", "$ref"]
            .iter()
            .any(|k| p.get(*k).is_some());
        if is_string && !ruled {
            p["pattern"] = json!("^[^\\u0000]*$");
        }
    }
}

/// The success envelope around `data`.
pub fn envelope(data: Value) -> Value {
    json!({
        "type": "object",
        "required": ["success", "data", "message", "request_id", "timestamp"],
        "properties": {
            "success": {"type": "boolean", "enum": [true]},
            "data": data,
            "message": {"type": ["string", "null"], "description": "A note for people, e.g. \"clustering started\"."},
            "request_id": {"type": "string", "description": "Also in the x-request-id header and the server log."},
            "timestamp": {"type": "string", "format": "date-time"},
        }
    })
}

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}}
    })
}

fn operation(path: &str, method: &str, op: &mut Value) {
    let params: Vec<Value> = op
        .get("parameters")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let has_in = |place: &str| params.iter().any(|p| p["in"] == place);
    let secured = op
        .get("security")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    let json_body = op
        .pointer("/requestBody/content/application~1json")
        .is_some();
    let any_body = op.get("requestBody").is_some();
    let probe = path == "/health" || path == "/ready";
    let write = method != "get";
    // Operation ids unique in the document (the same handler name exists in
    // several contexts): `<tag>_<handler>`, e.g. `sites_list`.
    if let (Some(tag), Some(id)) = (
        op.pointer("/tags/0")
            .and_then(Value::as_str)
            .map(str::to_string),
        op.get("operationId")
            .and_then(Value::as_str)
            .map(str::to_string),
    ) {
        let tag = tag.replace('-', "_");
        if !id.starts_with(&format!("{tag}_")) {
            op["operationId"] = json!(format!("{tag}_{id}"));
        }
    }

    if let Some(schema) = op.pointer_mut("/requestBody/content/application~1json/schema")
        && schema.get("$ref").is_none()
    {
        no_nul(schema);
    }
    if let Some(list) = op.get_mut("parameters").and_then(Value::as_array_mut) {
        for p in list {
            bound_parameter(p);
        }
    }

    let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
        return;
    };
    for (status, r) in responses.iter_mut() {
        if !status.starts_with('2') {
            continue;
        }
        if let Some(c) = r.pointer_mut("/content/application~1json")
            && let Some(c) = c.as_object_mut()
        {
            let data = c.remove("schema").unwrap_or_else(|| json!({}));
            c.insert("schema".into(), envelope(data));
        }
    }
    let mut add = |status: &str, description: &str| {
        responses
            .entry(status.to_string())
            .or_insert_with(|| error_response(description));
    };
    if secured || any_body || has_in("path") || has_in("query") || has_in("header") {
        add(
            "400",
            "Malformed input: MALFORMED_JSON, INVALID_BODY, INVALID_PATH, INVALID_QUERY, \
             INVALID_IDEMPOTENCY_KEY, INVALID_IF_MATCH, POSITION_NOT_REACHED; an operator without \
             X-Account-Id: ACCOUNT_REQUIRED, INVALID_ACCOUNT_ID",
        );
    }
    if secured {
        add(
            "401",
            "No or bad credential: AUTH_REQUIRED, INVALID_TOKEN, TOKEN_EXPIRED, TOKEN_REVOKED, \
             TOKEN_REUSED, USER_INACTIVE, INVALID_API_KEY",
        );
        add("403", "FORBIDDEN: the caller's role may not do this");
        add(
            "404",
            "NOT_FOUND: no such resource, or one of another account or of a site not granted",
        );
    }
    if secured && write {
        add(
            "409",
            "VERSION_CONFLICT (If-Match / expected_version), CONCURRENCY_CONFLICT (retry)",
        );
        add(
            "422",
            "A rule refused the command (VALIDATION_ERROR and the codes of docs/api.md), \
             or IDEMPOTENCY_KEY_REUSED",
        );
    }
    if any_body {
        add("413", "PAYLOAD_TOO_LARGE");
        add(
            "415",
            "UNSUPPORTED_MEDIA_TYPE: the body needs its documented Content-Type",
        );
    }
    if json_body {
        add(
            "422",
            "VALIDATION_ERROR: the body has the wrong shape (missing or unknown fields, wrong \
             types, out of range), or a rule refused it",
        );
    }
    if !probe {
        add("429", "RATE_LIMITED: wait Retry-After seconds");
    }
    if path != "/health" {
        add(
            "503",
            "PROJECTION_BEHIND (min_position not reached in time), NOT_READY, \
             DATABASE_UNAVAILABLE: retry after Retry-After seconds",
        );
    }
}

/// Bounds of the parameters every list and command shares.
fn bound_parameter(p: &mut Value) {
    let name = p["name"].as_str().unwrap_or_default().to_string();
    let place = p["in"].as_str().unwrap_or_default().to_string();
    let Some(schema) = p.get_mut("schema").and_then(Value::as_object_mut) else {
        return;
    };
    let mut set = |k: &str, v: Value| {
        schema.insert(k.into(), v);
    };
    match (place.as_str(), name.as_str()) {
        ("query", "page") => set("minimum", json!(1)),
        ("query", "page_size") => {
            set("minimum", json!(1));
            set("maximum", json!(500));
        }
        ("query", "min_position") => set("minimum", json!(0)),
        ("header", "Idempotency-Key") => {
            let mut s = Map::new();
            s.insert("type".into(), json!("string"));
            s.insert("minLength".into(), json!(1));
            s.insert("maxLength".into(), json!(255));
            s.insert("pattern".into(), json!("^[!-~]+$"));
            *schema = s;
        }
        ("header", "If-Match") => {
            let mut s = Map::new();
            s.insert("type".into(), json!("string"));
            s.insert("pattern".into(), json!("^(W/)?\"?[0-9]{1,18}\"?$"));
            *schema = s;
        }
        _ => {
            let free = schema.get("type").is_some_and(|t| t == "string")
                && !["pattern", "enum", "format"]
                    .iter()
                    .any(|k| schema.contains_key(*k));
            if free {
                schema.insert("pattern".into(), json!("^[^\\u0000]*$"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_success_and_adds_errors_once() {
        let doc = json!({"paths": {"/api/v1/x/{id}/": {"patch": {
            "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}},
                           {"name": "page_size", "in": "query", "schema": {"type": "integer"}}],
            "security": [{"bearer": []}],
            "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/B"}}}},
            "responses": {"200": {"description": "ok", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/T"}}}},
                          "404": {"description": "mine"}}
        }}}});
        let out = apply(doc);
        let op = &out["paths"]["/api/v1/x/{id}/"]["patch"];
        let ok = &op["responses"]["200"]["content"]["application/json"]["schema"];
        assert_eq!(ok["properties"]["data"]["$ref"], "#/components/schemas/T");
        assert_eq!(op["responses"]["404"]["description"], "mine");
        for s in [
            "400", "401", "403", "409", "413", "415", "422", "429", "503",
        ] {
            assert!(op["responses"].get(s).is_some(), "{s}");
        }
        assert_eq!(op["parameters"][1]["schema"]["maximum"], 500);
    }
}
