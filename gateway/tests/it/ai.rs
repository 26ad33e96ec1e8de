//! The provider strategies against local stubs of an OpenAI-compatible API
//! (wiremock), in both run modes: the account's provider settings (key
//! sealed, never shown), `embeddings` (batched, 429 + `Retry-After`
//! honoured) and `llm` (JSON-schema output), and every way a provider can
//! fail — 500s, timeouts, malformed JSON, the wrong number of vectors, a
//! refused key: the job fails cleanly, its credits released, nothing saved.

use crate::harness::{Owner, TestApp};
use crate::jobs::{clusters, setup, wait_done};
use axum::http::StatusCode;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const KEY: &str = "sk-test-abcd1234";

/// A bag-of-words "embedding": each word adds to one of 64 dimensions, so
/// keywords sharing topic words point the same way (as real ones would).
fn embed(text: &str) -> Vec<f32> {
    let mut v = vec![0.0f32; 64];
    for w in text.split_whitespace() {
        let h = w.bytes().fold(2166136261u32, |h, b| {
            (h ^ u32::from(b)).wrapping_mul(16777619)
        });
        v[(h % 64) as usize] += 1.0;
    }
    v
}

/// Another responder, recording when each request arrived.
struct Timed<R>(Arc<Mutex<Vec<Instant>>>, R);

impl<R: Respond> Respond for Timed<R> {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        self.0.lock().unwrap().push(Instant::now());
        self.1.respond(req)
    }
}

/// `/v1/embeddings` as the real one answers: bearer key checked, vectors
/// with their index, usage.
struct EmbeddingsStub;

impl Respond for EmbeddingsStub {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        if req
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            != Some(&format!("Bearer {KEY}"))
        {
            return ResponseTemplate::new(401)
                .set_body_json(json!({"error": {"message": "Incorrect API key provided"}}));
        }
        let body: Value = serde_json::from_slice(&req.body).unwrap_or_default();
        let inputs: Vec<&str> = body["input"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if inputs.is_empty() || body["model"].as_str().is_none() {
            return ResponseTemplate::new(400)
                .set_body_json(json!({"error": {"message": "'input' and 'model' are required"}}));
        }
        let tokens: usize = inputs.iter().map(|i| i.split_whitespace().count()).sum();
        ResponseTemplate::new(200).set_body_json(json!({
            "object": "list",
            "model": body["model"],
            "data": inputs.iter().enumerate().map(|(i, t)| json!({"object": "embedding", "index": i, "embedding": embed(t)})).collect::<Vec<_>>(),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}
        }))
    }
}

/// `/v1/chat/completions` with JSON-schema output: groups the numbered
/// keywords of the prompt by their topic word, as a model would.
struct ChatStub;

impl Respond for ChatStub {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&req.body).unwrap_or_default();
        if body["response_format"]["type"] != "json_schema" {
            return ResponseTemplate::new(400)
                .set_body_json(json!({"error": {"message": "expected json_schema output"}}));
        }
        let prompt = body["messages"][1]["content"].as_str().unwrap_or_default();
        let mut groups: Vec<(&str, Vec<u64>)> =
            vec![("shoes", vec![]), ("cake", vec![]), ("paris", vec![])];
        for line in prompt.lines() {
            let Some((i, text)) = line.split_once(": ") else {
                continue;
            };
            let Ok(i) = i.parse::<u64>() else { continue };
            if let Some(g) = groups.iter_mut().find(|g| text.contains(g.0)) {
                g.1.push(i);
            }
        }
        let clusters: Vec<Value> = groups
            .iter()
            .map(|(t, ids)| json!({"name": format!("{t} topic"), "description": format!("everything about {t}"), "keywords": ids}))
            .collect();
        ResponseTemplate::new(200).set_body_json(json!({
            "id": "chatcmpl-1", "object": "chat.completion", "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop",
                "message": {"role": "assistant", "content": json!({"clusters": clusters}).to_string(), "refusal": null}}],
            "usage": {"prompt_tokens": 400, "completion_tokens": 120, "total_tokens": 520}
        }))
    }
}

async fn configure(app: &TestApp, o: &Owner, server: &MockServer) {
    let r = app
        .req(
            &o.token,
            "PUT",
            "/api/v1/system/settings/integrations/openai/",
            Some(json!({"base_url": format!("{}/v1", server.uri()), "api_key": KEY})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}: {}", app.mode, r.body);
}

async fn cluster(app: &TestApp, o: &Owner, body: Value) -> String {
    let r = app
        .req(
            &o.token,
            "POST",
            "/api/v1/planner/keywords/auto_cluster/",
            Some(body),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}: {}", app.mode, r.body);
    r.data()["job_id"].as_str().unwrap().to_string()
}

/// (balance, reserved) in whole credits.
async fn credits(app: &TestApp, o: &Owner) -> (i64, i64) {
    let r = app
        .req(&o.token, "GET", "/api/v1/billing/credits/", None)
        .await;
    (
        r.data()["balance"].as_i64().unwrap(),
        r.data()["reserved"].as_i64().unwrap(),
    )
}

#[tokio::test]
async fn provider_settings_seal_the_key_and_never_show_it() {
    for app in TestApp::both().await {
        let m = app.mode;
        let o = app.signup("Settings").await;
        let url = "/api/v1/system/settings/integrations/openai/";
        let r = app.req(&o.token, "GET", url, None).await;
        assert_eq!(
            (
                r.data()["configured"].as_bool(),
                r.data()["has_api_key"].as_bool()
            ),
            (Some(false), Some(false)),
            "{m}: {}",
            r.body
        );
        // A provider strategy before any settings: a clear 422.
        let (_, sector) = app.site_and_sector(&o).await;
        app.import_csv(&o.token, &sector, "keyword\nshoes\n").await;
        let r = app
            .req(
                &o.token,
                "POST",
                "/api/v1/planner/keywords/auto_cluster/",
                Some(json!({"sector_id": sector, "strategy": "embeddings"})),
            )
            .await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::UNPROCESSABLE_ENTITY, "STRATEGY_UNAVAILABLE"),
            "{m}"
        );
        // Bad input: nothing written.
        for (body, code) in [
            (json!({"base_url": "ftp://x"}), "INVALID_URL"),
            (json!({"api_key": "has space"}), "INVALID_API_KEY"),
            (json!({"api_key": ""}), "INVALID_API_KEY"),
            (json!({"chat_model": ""}), "INVALID_NAME"),
            (json!({"api_key": KEY, "unknown": 1}), "VALIDATION_ERROR"),
        ] {
            let r = app.req(&o.token, "PUT", url, Some(body.clone())).await;
            assert_eq!(
                (r.status, r.code()),
                (StatusCode::UNPROCESSABLE_ENTITY, code),
                "{m}: {body}: {}",
                r.body
            );
        }
        let r = app
            .req(
                &o.token,
                "GET",
                "/api/v1/system/settings/integrations/anthropic/",
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{m}");
        let r = app
            .req(&o.token, "PUT", url, Some(json!({"api_key": KEY})))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{m}: {}", r.body);
        assert_eq!(
            (
                r.data()["has_api_key"].as_bool(),
                r.data()["key_hint"].as_str(),
                r.data()["base_url"].as_str()
            ),
            (Some(true), Some("1234"), Some("https://api.openai.com/v1")),
            "{m}"
        );
        // A short key shows no hint (it would give most of it away).
        let r = app
            .req(&o.token, "PUT", url, Some(json!({"api_key": "abc123"})))
            .await;
        assert_eq!(
            (
                r.data()["has_api_key"].as_bool(),
                r.data()["key_hint"].as_str()
            ),
            (Some(true), Some("")),
            "{m}"
        );
        let r = app
            .req(&o.token, "PUT", url, Some(json!({"api_key": KEY})))
            .await;
        assert_eq!(r.data()["key_hint"], "1234", "{m}");
        // Absent key: kept; the answer never holds it.
        let r = app
            .req(
                &o.token,
                "PUT",
                url,
                Some(json!({"embedding_model": "text-embedding-3-large"})),
            )
            .await;
        assert_eq!(r.data()["has_api_key"], true, "{m}");
        assert_eq!(r.data()["embedding_model"], "text-embedding-3-large", "{m}");
        assert!(!r.body.to_string().contains(KEY), "{m}");
        let pos = r.data()["position"].as_i64().unwrap();
        // The log holds it sealed; the audit API not even that.
        let events = app
            .state
            .bus
            .feed()
            .aggregate_events(
                "integration",
                &igny8_domain::tenancy::Integration::id(o.account_id.parse().unwrap(), "openai")
                    .to_string(),
                1,
                10,
            )
            .await
            .unwrap();
        assert_eq!(events.len(), 4, "{m}");
        for e in &events {
            let text = e.payload.to_string();
            assert!(
                !text.contains(KEY) && text.contains("api_key_sealed"),
                "{m}: {text}"
            );
        }
        let r = app
            .req(
                &o.token,
                "GET",
                &format!("/api/v1/audit/events/?limit=100&min_position={pos}"),
                None,
            )
            .await;
        let configured: Vec<&Value> = r.data()["results"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["event_type"] == "IntegrationConfigured")
            .collect();
        assert_eq!(configured.len(), 4, "{m}: {}", r.body);
        assert_eq!(
            configured[0]["payload"]["IntegrationConfigured"]["api_key_sealed"], "[redacted]",
            "{m}"
        );
        // Another account sees its own (empty) settings.
        let b = app.signup("Other").await;
        let r = app.req(&b.token, "GET", url, None).await;
        assert_eq!(r.data()["configured"], false, "{m}");
        // null removes the key; DELETE removes the settings.
        let r = app
            .req(&o.token, "PUT", url, Some(json!({"api_key": null})))
            .await;
        assert_eq!(r.data()["has_api_key"], false, "{m}");
        let r = app.req(&o.token, "DELETE", url, None).await;
        assert_eq!(r.status, StatusCode::OK, "{m}");
        let r = app.req(&o.token, "DELETE", url, None).await;
        assert_eq!(
            r.status,
            StatusCode::NOT_FOUND,
            "{m}: nothing left to remove"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn embeddings_strategy_batches_retries_and_clusters() {
    for app in TestApp::both().await {
        let m = app.mode;
        let server = MockServer::start().await;
        // The provider is busy once: 429 with Retry-After: 2 (the client's
        // own backoff after a first failure would be 0.5 s).
        let at: Arc<Mutex<Vec<Instant>>> = Arc::default();
        Mock::given(method("POST"))
            .and(path("/v1/embeddings"))
            .respond_with(Timed(
                at.clone(),
                ResponseTemplate::new(429)
                    .insert_header("retry-after", "2")
                    .set_body_json(json!({"error": {"message": "Rate limit reached"}})),
            ))
            .up_to_n_times(1)
            .with_priority(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/v1/embeddings"))
            .respond_with(Timed(at.clone(), EmbeddingsStub))
            .mount(&server)
            .await;
        let o = app.signup("Embeddings").await;
        configure(&app, &o, &server).await;
        let sector = setup(&app, &o).await;
        let job = cluster(
            &app,
            &o,
            json!({"sector_id": sector, "strategy": "embeddings", "num_clusters": 3}),
        )
        .await;
        let r = wait_done(&app, &o.token, &job).await;
        assert_eq!(r.data()["state"], "SUCCESS", "{m}: {}", r.body);
        let gap = {
            let at = at.lock().unwrap();
            at[1] - at[0]
        };
        assert!(
            gap >= Duration::from_millis(1900),
            "{m}: Retry-After honoured: the retry came {gap:?} after the 429"
        );
        assert!(
            r.data()["meta"]["tokens"].as_u64().unwrap() > 0,
            "{m}: {}",
            r.body
        );
        // Batches of at most 8 (the test setting), every keyword once, the 429 retried.
        let reqs = server.received_requests().await.unwrap();
        let sizes: Vec<usize> = reqs
            .iter()
            .map(|q| {
                serde_json::from_slice::<Value>(&q.body).unwrap()["input"]
                    .as_array()
                    .unwrap()
                    .len()
            })
            .collect();
        assert_eq!(sizes.len(), 5, "{m}: 4 batches + one retried: {sizes:?}");
        assert!(sizes.iter().all(|s| *s <= 8), "{m}: {sizes:?}");
        assert_eq!(sizes[1..].iter().sum::<usize>(), 30, "{m}: {sizes:?}");
        // Three clusters, one per topic.
        let found = clusters(&app, &o.token, &sector).await;
        assert_eq!(found.len(), 3, "{m}");
        for c in &found {
            assert_eq!(c["keyword_count"], 10, "{m}: {found:?}");
        }
        assert_eq!(credits(&app, &o).await, (240, 0), "{m}: charged once");
        let head = app.state.feed.head().await.unwrap();
        let r = app
            .req(
                &o.token,
                "GET",
                &format!("/api/v1/billing/usage/?min_position={head}"),
                None,
            )
            .await;
        let row = &r.data()["results"][0];
        assert_eq!(
            (row["model"].as_str(), row["credits"].as_i64()),
            (Some("text-embedding-3-small"), Some(10)),
            "{m}: {}",
            r.body
        );
        assert!(row["tokens"].as_i64().unwrap() > 0, "{m}");
        app.stop().await;
    }
}

/// One failing provider per case: the job fails with the cause, credits
/// come back, no cluster is saved.
#[tokio::test]
async fn provider_failures_fail_the_job_cleanly() {
    for app in TestApp::both().await {
        let m = app.mode;
        let wrong_count = ResponseTemplate::new(200).set_body_json(json!({
            "data": [{"index": 0, "embedding": [0.1, 0.2]}], "usage": {"prompt_tokens": 1, "total_tokens": 1}}));
        let cases: Vec<(&str, ResponseTemplate, &str, &str)> = vec![
            (
                "500s",
                ResponseTemplate::new(500).set_body_string("upstream error"),
                "HTTP 500",
                "embeddings",
            ),
            (
                "timeout",
                ResponseTemplate::new(200).set_delay(Duration::from_secs(5)),
                "did not answer",
                "embeddings",
            ),
            (
                "malformed",
                ResponseTemplate::new(200).set_body_string("{\"data\": [oops"),
                "malformed",
                "embeddings",
            ),
            (
                "wrong count",
                wrong_count,
                "1 vectors for 8 inputs",
                "embeddings",
            ),
            (
                "refused key",
                ResponseTemplate::new(401).set_body_string("{\"error\":\"bad key\"}"),
                "HTTP 401",
                "embeddings",
            ),
            (
                "llm not json",
                ResponseTemplate::new(200).set_body_json(
                    json!({"choices": [{"message": {"content": "Sure! Here are your clusters"}}]}),
                ),
                "not JSON",
                "llm",
            ),
        ];
        let mut runs = vec![];
        for (name, template, expect, strategy) in cases {
            let server = MockServer::start().await;
            Mock::given(method("POST"))
                .respond_with(template)
                .mount(&server)
                .await;
            let o = app.signup(name).await;
            configure(&app, &o, &server).await;
            let sector = setup(&app, &o).await;
            let job = cluster(&app, &o, json!({"sector_id": sector, "strategy": strategy})).await;
            runs.push((name, expect, o, sector, job, server));
        }
        for (name, expect, o, sector, job, server) in &runs {
            let r = wait_done(&app, &o.token, job).await;
            assert_eq!(r.data()["state"], "FAILURE", "{m} {name}: {}", r.body);
            let msg = r.data()["meta"]["message"].as_str().unwrap_or_default();
            assert!(msg.contains(expect), "{m} {name}: {msg}");
            assert_eq!(credits(&app, o).await, (250, 0), "{m} {name}: released");
            assert!(
                clusters(&app, &o.token, sector).await.is_empty(),
                "{m} {name}"
            );
            let tries = server.received_requests().await.unwrap().len();
            let retried = matches!(*name, "500s" | "timeout");
            assert_eq!(tries, if retried { 3 } else { 1 }, "{m} {name}: tries");
        }
        app.stop().await;
    }
}

#[tokio::test]
async fn llm_strategy_takes_clusters_from_json_schema_output() {
    for app in TestApp::both().await {
        let m = app.mode;
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v1/chat/completions"))
            .respond_with(ChatStub)
            .mount(&server)
            .await;
        let o = app.signup("Llm").await;
        configure(&app, &o, &server).await;
        let sector = setup(&app, &o).await;
        let job = cluster(&app, &o, json!({"sector_id": sector, "strategy": "llm"})).await;
        let r = wait_done(&app, &o.token, &job).await;
        assert_eq!(r.data()["state"], "SUCCESS", "{m}: {}", r.body);
        assert_eq!(r.data()["meta"]["tokens"], 520, "{m}: {}", r.body);
        // gpt-4o-mini: 400 × $0.15/M + 120 × $0.60/M = $0.000132.
        assert!(
            (r.data()["meta"]["cost"].as_f64().unwrap() - 0.000132).abs() < 1e-9,
            "{m}: {}",
            r.body
        );
        let mut names: Vec<String> = clusters(&app, &o.token, &sector)
            .await
            .iter()
            .map(|c| format!("{}={}", c["name"].as_str().unwrap(), c["keyword_count"]))
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["cake topic=10", "paris topic=10", "shoes topic=10"],
            "{m}"
        );
        // Asked for 2, the model gives 3: the run fails, nothing saved over the first.
        let job = cluster(
            &app,
            &o,
            json!({"sector_id": sector, "strategy": "llm", "num_clusters": 2}),
        )
        .await;
        let r = wait_done(&app, &o.token, &job).await;
        assert_eq!(r.data()["state"], "FAILURE", "{m}: {}", r.body);
        assert_eq!(clusters(&app, &o.token, &sector).await.len(), 3, "{m}");
        assert_eq!(credits(&app, &o).await, (240, 0), "{m}: one run charged");
        // More keywords than one prompt takes: refused up front.
        let mut csv = String::from("keyword\n");
        for i in 0..300 {
            csv.push_str(&format!("extra keyword {i}\n"));
        }
        app.import_csv(&o.token, &sector, csv).await;
        let r = app
            .req(
                &o.token,
                "POST",
                "/api/v1/planner/keywords/auto_cluster/",
                Some(json!({"sector_id": sector, "strategy": "llm"})),
            )
            .await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::UNPROCESSABLE_ENTITY, "TOO_MANY_KEYWORDS"),
            "{m}: {}",
            r.body
        );
        app.stop().await;
    }
}
