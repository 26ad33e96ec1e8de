//! The writer against a local stub of an OpenAI-compatible chat completions
//! API (wiremock), in both run modes. The stub checks what we send (bearer
//! key, model, the JSON-schema structured output, the keywords in the
//! messages) and answers like the real API — and with its faults: a 429
//! with `Retry-After`, an answer cut at the output limit, a content filter,
//! malformed JSON. A failing task fails alone with its cause, its credits
//! released, no partial article stored; the others are written and charged.

use crate::harness::{Owner, TestApp};
use crate::jobs::wait_done;
use axum::http::StatusCode;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

pub(crate) const KEY: &str = "sk-test-writer-5678";
pub(crate) const MODEL: &str = "gpt-4o-mini";

fn chat(content: &str, finish: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "id": "chatcmpl-w", "object": "chat.completion", "model": MODEL,
        "choices": [{"index": 0, "finish_reason": finish,
            "message": {"role": "assistant", "content": content, "refusal": null}}],
        "usage": {"prompt_tokens": 300, "completion_tokens": 900, "total_tokens": 1200}
    }))
}

/// `/v1/chat/completions` for article parts, by the topic in the prompt.
#[derive(Clone, Default)]
pub(crate) struct Writer {
    pub(crate) seen: Arc<Mutex<Vec<Value>>>,
    flaky_calls: Arc<Mutex<u32>>,
}

impl Respond for Writer {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&req.body).unwrap_or_default();
        self.seen.lock().unwrap().push(body.clone());
        let authed = req
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            == Some(&format!("Bearer {KEY}"));
        let schema = &body["response_format"]["json_schema"];
        // The settings' test call: a tiny plain completion.
        if authed
            && body["model"] == MODEL
            && body["max_tokens"] == 5
            && body.get("response_format").is_none()
        {
            return chat("pong", "stop");
        }
        if schema["name"] == "content_ideas" && body["model"] == MODEL {
            return ideas_answer(&body);
        }
        if !authed
            || body["model"] != MODEL
            || body["response_format"]["type"] != "json_schema"
            || schema["name"] != "article_part"
            || schema["schema"]["required"]
                .as_array()
                .is_none_or(|r| r.len() != 5)
        {
            return ResponseTemplate::new(400)
                .set_body_json(json!({"error": {"message": "bad request"}}));
        }
        let user = body["messages"][1]["content"]
            .as_str()
            .unwrap_or("")
            .to_string();
        if user.contains("flaky topic") {
            let mut n = self.flaky_calls.lock().unwrap();
            *n += 1;
            if *n == 1 {
                return ResponseTemplate::new(429)
                    .insert_header("retry-after", "0")
                    .set_body_json(json!({"error": {"message": "Rate limit reached"}}));
            }
        }
        if user.contains("truncated topic") {
            return chat("{\"title\": \"Trunc", "length");
        }
        if user.contains("filtered topic") {
            return chat("", "content_filter");
        }
        if user.contains("broken topic") {
            return chat("this is not JSON", "stop");
        }
        if user.contains("down topic") {
            return ResponseTemplate::new(503)
                .set_body_json(json!({"error": {"message": "The server is overloaded"}}));
        }
        if user.contains("schema topic") {
            return chat("{\"title\": 5, \"sections\": \"none\"}", "stop");
        }
        // A top-up ("More of the article"): one new section of the words asked for.
        if user.contains("More of the article") {
            let words: usize = user
                .split("Write about ")
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
                .and_then(|n| n.parse().ok())
                .unwrap_or(100);
            let content = json!({"title": "", "meta_title": "", "meta_description": "", "intro_html": "",
                "sections": [{"heading": "More", "level": 2, "html": format!("<p>{}</p>", vec!["more"; words].join(" "))}]});
            return chat(&content.to_string(), "stop");
        }
        // The words asked for, spread over the sections asked for.
        let words: usize = user
            .split("Write about ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(300);
        let headings: Vec<String> = user
            .lines()
            .filter(|l| l.starts_with("## ") || l.starts_with("### "))
            .map(|l| {
                l.trim_start_matches('#')
                    .trim()
                    .split(" (key points")
                    .next()
                    .unwrap()
                    .to_string()
            })
            .collect();
        let kw = user
            .lines()
            .find_map(|l| l.strip_prefix("Primary keyword: "))
            .unwrap_or("topic")
            .to_string();
        // "short topic": the model writes 40% of what it was asked.
        let words = if user.contains("short topic") {
            words * 2 / 5
        } else {
            words
        };
        let intro = usize::from(user.contains("after an introduction"));
        let per = words / (headings.len() + intro).max(1);
        let para = |n: usize| {
            format!(
                "<p>{}</p>",
                vec!["word"; n.saturating_sub(3)].join(" ") + " about " + &kw
            )
        };
        let sections: Vec<Value> = headings
            .iter()
            .map(|h| json!({"heading": h, "level": 2, "html": para(per)}))
            .collect();
        let content = json!({
            "title": format!("All about {kw}"),
            "meta_title": format!("{kw} guide"),
            "meta_description": format!("Everything on {kw}."),
            "intro_html": if intro == 1 { format!("<p onmouseover=\"x()\">{kw} intro</p><script>steal()</script>{}", para(per)) } else { String::new() },
            "sections": sections,
        });
        chat(&content.to_string(), "stop")
    }
}

/// Ideas as the model would propose them: one per keyword of the prompt,
/// plus one whose primary keyword is not in the cluster (to be dropped).
fn ideas_answer(body: &Value) -> ResponseTemplate {
    let user = body["messages"][1]["content"].as_str().unwrap_or("");
    let keywords: Vec<&str> = user
        .split("Keywords: ")
        .nth(1)
        .unwrap_or("")
        .split(", ")
        .filter(|k| !k.is_empty())
        .collect();
    let mut ideas: Vec<Value> = keywords
        .iter()
        .map(|k| {
            json!({"title": format!("All about {k}"), "description": "d", "content_type": "guide",
            "primary_keyword": k, "secondary_keywords": [], "target_word_count": 1200,
            "outline": [{"heading": "Intro", "level": 2, "key_points": ["a"]}]})
        })
        .collect();
    ideas.insert(0, json!({"title": "Invented", "description": "d", "content_type": "post",
        "primary_keyword": "not a cluster keyword", "secondary_keywords": [], "target_word_count": 900, "outline": []}));
    chat(&json!({"ideas": ideas}).to_string(), "stop")
}

async fn configure(app: &TestApp, o: &Owner, server: &MockServer) {
    let r = app
        .req(&o.token, "PUT", "/api/v1/system/settings/integrations/openai/",
            Some(json!({"base_url": format!("{}/v1", server.uri()), "api_key": KEY, "chat_model": MODEL})))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}: {}", app.mode, r.body);
}

#[tokio::test]
async fn articles_through_an_openai_compatible_api_with_its_faults() {
    for app in TestApp::both().await {
        let m = app.mode;
        let server = MockServer::start().await;
        let stub = Writer::default();
        Mock::given(method("POST"))
            .and(path("/v1/chat/completions"))
            .respond_with(stub.clone())
            .mount(&server)
            .await;
        let o = app.signup("AiWriter").await;
        configure(&app, &o, &server).await;
        let (_, sector) = app.site_and_sector(&o).await;
        let mut tasks = std::collections::HashMap::new();
        for (kw, words) in [
            ("long topic", 3000),
            ("flaky topic", 800),
            ("truncated topic", 800),
            ("filtered topic", 800),
            ("broken topic", 800),
            ("down topic", 800),
            ("schema topic", 800),
            ("short topic", 1000),
        ] {
            let r = app.req(&o.token, "POST", "/api/v1/writer/tasks/", Some(json!({
                "sector_id": sector, "title": format!("On {kw}"), "primary_keyword": kw, "target_word_count": words,
                "secondary_keywords": [format!("{kw} tips")],
                "outline": [{"heading": "First", "level": 2}, {"heading": "Second", "level": 2}, {"heading": "Third", "level": 2}, {"heading": "Fourth", "level": 2}]}))).await;
            assert_eq!(r.status, StatusCode::CREATED, "{m}: {}", r.body);
            tasks.insert(kw, r.data()["id"].as_str().unwrap().to_string());
        }
        let ids: Vec<&String> = tasks.values().collect();
        let r = app
            .req(
                &o.token,
                "POST",
                "/api/v1/writer/tasks/auto_generate_content/",
                Some(json!({"task_ids": ids})),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{m}: {}", r.body);
        // Reserved: 3000 → 3450 words → 7 credits; 800 → 920 → 2 credits each.
        assert_eq!(r.data()["credits_reserved"], 22, "{m}: {}", r.body);
        let job = r.data()["job_id"].as_str().unwrap().to_string();
        let done = wait_done(&app, &o.token, &job).await;
        assert_eq!(done.data()["state"], "SUCCESS", "{m}: {}", done.body);
        let result = &done.data()["result"]["result"];
        assert_eq!(result["articles"], 3, "{m}: {result}");
        let failed = result["failed"].as_array().unwrap();
        assert_eq!(failed.len(), 5, "{m}: {result}");
        let h = app.state.feed.head().await.unwrap();
        for (kw, cause) in [
            ("truncated topic", "finish_reason: length"),
            ("filtered topic", "content filter"),
            ("broken topic", "not JSON"),
            ("down topic", "503"),
            ("schema topic", "is not"),
        ] {
            let t = app
                .req(
                    &o.token,
                    "GET",
                    &format!("/api/v1/writer/tasks/{}/?min_position={h}", tasks[kw]),
                    None,
                )
                .await;
            assert_eq!(t.data()["status"], "failed", "{m}: {kw}");
            assert!(
                t.data()["error"].as_str().unwrap().contains(cause),
                "{m}: {kw}: {}",
                t.data()["error"]
            );
            assert!(
                t.data()["content_id"].is_null(),
                "{m}: no partial article for {kw}"
            );
        }
        // The long article was written in two parts, each asking half the words.
        let seen = stub.seen.lock().unwrap().clone();
        let long: Vec<&Value> = seen
            .iter()
            .filter(|b| {
                b["messages"][1]["content"]
                    .as_str()
                    .unwrap()
                    .contains("long topic")
            })
            .collect();
        assert_eq!(long.len(), 2, "{m}");
        assert!(
            long[0]["messages"][1]["content"]
                .as_str()
                .unwrap()
                .contains("Part 1 of 2")
        );
        assert!(
            long.iter().all(|b| b["messages"][1]["content"]
                .as_str()
                .unwrap()
                .contains("long topic tips")),
            "{m}: secondary keywords sent"
        );
        assert!(
            seen.iter().all(|b| b["messages"][0]["content"]
                .as_str()
                .unwrap()
                .contains("in en with")),
            "{m}: language in the system message"
        );
        let c = app
            .req(
                &o.token,
                "GET",
                &format!(
                    "/api/v1/writer/content/?task_id={}&min_position={h}",
                    tasks["long topic"]
                ),
                None,
            )
            .await;
        let c = &c.data()["results"][0];
        let words = c["word_count"].as_f64().unwrap();
        assert!((words - 3000.0).abs() <= 450.0, "{m}: {words}");
        let html = c["html_content"].as_str().unwrap();
        assert!(
            !html.contains("script") && !html.contains("onmouseover"),
            "{m}: sanitised: {html}"
        );
        assert_eq!(
            (
                c["author"]["provider"].as_str(),
                c["author"]["model"].as_str()
            ),
            (Some("openai"), Some(MODEL)),
            "{m}"
        );
        assert_eq!(c["author"]["tokens"], 2400, "{m}: two calls' tokens");
        // Charged: the long article by its words, the flaky one (after a retried 429) 2; the failures nothing.
        let long_credits = (words / 500.0).ceil();
        // The short answer was topped up to within 15% of its target.
        let short = app
            .req(
                &o.token,
                "GET",
                &format!(
                    "/api/v1/writer/content/?task_id={}&min_position={h}",
                    tasks["short topic"]
                ),
                None,
            )
            .await;
        let short_words = short.data()["results"][0]["word_count"].as_f64().unwrap();
        assert!((short_words - 1000.0).abs() <= 150.0, "{m}: {short_words}");
        assert!(
            seen.iter().any(|b| {
                let u = b["messages"][1]["content"].as_str().unwrap();
                u.contains("short topic") && u.contains("More of the article")
            }),
            "{m}: a top-up call"
        );
        let long_credits = long_credits + (short_words / 500.0).ceil();
        let r = app
            .req(&o.token, "GET", "/api/v1/billing/credits/", None)
            .await;
        assert_eq!(
            (r.data()["balance"].as_f64(), r.data()["reserved"].as_f64()),
            (Some(250.0 - long_credits - 2.0), Some(0.0)),
            "{m}: {}",
            r.body
        );
        assert_eq!(
            *stub.flaky_calls.lock().unwrap(),
            2,
            "{m}: the 429 was retried once"
        );

        // The usage log: the job, its credits, tokens and model.
        let h = app.state.feed.head().await.unwrap();
        let u = app
            .req(
                &o.token,
                "GET",
                &format!("/api/v1/billing/usage/?min_position={h}"),
                None,
            )
            .await;
        let row = u.data()["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["operation"] == "auto_generate_content")
            .cloned()
            .unwrap();
        assert_eq!(
            (row["model"].as_str(), row["credits"].as_f64()),
            (Some(MODEL), Some(long_credits + 2.0)),
            "{m}: {row}"
        );
        assert!(row["tokens"].as_i64().unwrap() >= 3600, "{m}: {row}");
        // The settings' test call: ok with the model, or the provider's error.
        let r = app
            .req(
                &o.token,
                "POST",
                "/api/v1/system/settings/integrations/openai/test_openai/",
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{m}: {}", r.body);
        assert_eq!(
            (r.data()["ok"].as_bool(), r.data()["model"].as_str()),
            (Some(true), Some(MODEL)),
            "{m}: {}",
            r.body
        );
        assert!(r.data()["latency_ms"].is_u64(), "{m}: {}", r.body);
        // A key the provider refuses: ok false with the provider's status.
        let r = app
            .req(
                &o.token,
                "PUT",
                "/api/v1/system/settings/integrations/openai/",
                Some(json!({"api_key": "sk-wrong-key-0000000000"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{m}: {}", r.body);
        let r = app
            .req(
                &o.token,
                "POST",
                "/api/v1/system/settings/integrations/openai/test_openai/",
                None,
            )
            .await;
        assert_eq!(
            (
                r.status,
                r.data()["ok"].as_bool(),
                r.data()["status"].as_u64()
            ),
            (StatusCode::OK, Some(false), Some(400)),
            "{m}: {}",
            r.body
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn prompts_profiles_and_strategies_shape_what_the_provider_is_asked() {
    for app in TestApp::both().await {
        let m = app.mode;
        let server = MockServer::start().await;
        let stub = Writer::default();
        Mock::given(method("POST"))
            .and(path("/v1/chat/completions"))
            .respond_with(stub.clone())
            .mount(&server)
            .await;
        let o = app.signup("Thinker").await;
        configure(&app, &o, &server).await;
        // Prompts: the defaults, a checked new version, a reset.
        let r = app
            .req(&o.token, "GET", "/api/v1/system/prompts/", None)
            .await;
        let types: Vec<&str> = r
            .data()
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["prompt_type"].as_str().unwrap())
            .collect();
        assert_eq!(
            types,
            ["clustering", "ideas", "content", "image_prompts"],
            "{m}"
        );
        let r = app
            .req(
                &o.token,
                "PUT",
                "/api/v1/system/prompts/content/",
                Some(json!({"template": "Write {idea_title} for {customer}"})),
            )
            .await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::UNPROCESSABLE_ENTITY, "UNKNOWN_PLACEHOLDER"),
            "{m}: {}",
            r.body
        );
        let r = app
            .req(
                &o.token,
                "PUT",
                "/api/v1/system/prompts/poetry/",
                Some(json!({"template": "x"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{m}");
        let r = app
            .req(
                &o.token,
                "PUT",
                "/api/v1/system/prompts/content/",
                Some(json!({"template": "ACCOUNT TEMPLATE {idea_title} in {language} ({tone})"})),
            )
            .await;
        assert_eq!(
            (
                r.status,
                r.data()["prompt_version"].as_i64(),
                r.data()["is_default"].as_bool()
            ),
            (StatusCode::OK, Some(1), Some(false)),
            "{m}: {}",
            r.body
        );
        // A profile (German, warm) and a strategy overriding the template.
        let r = app
            .req(
                &o.token,
                "POST",
                "/api/v1/system/author-profiles/",
                Some(json!({"name": "Warm", "tone": "warm", "language": "de"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{m}: {}", r.body);
        let profile = r.data()["id"].as_str().unwrap().to_string();
        let r = app
            .req(
                &o.token,
                "POST",
                "/api/v1/system/author-profiles/",
                Some(json!({"name": "Bad", "language": "German"})),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{m}: {}",
            r.body
        );
        let r = app
            .req(
                &o.token,
                "POST",
                "/api/v1/system/strategies/",
                Some(
                    json!({"name": "Evergreen", "default_author_profile_id": profile,
            "prompt_overrides": {"content": "STRATEGY TEMPLATE {idea_title} in {language}"}}),
                ),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{m}: {}", r.body);
        let strategy = r.data()["id"].as_str().unwrap().to_string();
        let r = app
            .req(
                &o.token,
                "DELETE",
                &format!("/api/v1/system/author-profiles/{profile}/"),
                None,
            )
            .await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::CONFLICT, "IN_USE"),
            "{m}"
        );
        let (_, sector) = app.site_and_sector(&o).await;
        let r = app.req(&o.token, "POST", "/api/v1/writer/tasks/", Some(json!({"sector_id": sector, "title": "x", "primary_keyword": "k", "strategy_id": uuid::Uuid::new_v4()}))).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{m}: an unknown strategy");
        let mut tasks = vec![];
        for (kw, body) in [
            ("plain topic", json!({"author_profile_id": profile})),
            ("strategic topic", json!({"strategy_id": strategy})),
        ] {
            let mut b = json!({"sector_id": sector, "title": format!("On {kw}"), "primary_keyword": kw, "target_word_count": 500});
            b.as_object_mut()
                .unwrap()
                .extend(body.as_object().unwrap().clone());
            let r = app
                .req(&o.token, "POST", "/api/v1/writer/tasks/", Some(b))
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{m}: {}", r.body);
            tasks.push(r.data()["id"].as_str().unwrap().to_string());
        }
        let r = app
            .req(
                &o.token,
                "POST",
                "/api/v1/writer/tasks/auto_generate_content/",
                Some(json!({"task_ids": tasks})),
            )
            .await;
        let job = r.data()["job_id"].as_str().unwrap().to_string();
        assert_eq!(
            wait_done(&app, &o.token, &job).await.data()["state"],
            "SUCCESS",
            "{m}"
        );
        let seen = stub.seen.lock().unwrap().clone();
        let system = |kw: &str| {
            seen.iter()
                .find(|b| b["messages"][1]["content"].as_str().unwrap().contains(kw))
                .unwrap()["messages"][0]["content"]
                .as_str()
                .unwrap()
                .to_string()
        };
        assert!(
            system("plain topic").starts_with("ACCOUNT TEMPLATE On plain topic in de (warm)"),
            "{m}: {}",
            system("plain topic")
        );
        assert!(
            system("strategic topic").starts_with("STRATEGY TEMPLATE On strategic topic in de"),
            "{m}: the strategy's default profile: {}",
            system("strategic topic")
        );
        let h = app.state.feed.head().await.unwrap();
        let r = app
            .req(
                &o.token,
                "GET",
                &format!("/api/v1/writer/content/?min_position={h}&ordering=title"),
                None,
            )
            .await;
        let authors: Vec<(Value, Value)> = r.data()["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["author"]["prompt_version"].clone(),
                    c["author"]["strategy_id"].clone(),
                )
            })
            .collect();
        assert!(
            authors.contains(&(json!(1), Value::Null)),
            "{m}: {authors:?}"
        );
        assert!(
            authors.contains(&(json!(1), json!(strategy))),
            "{m}: {authors:?}"
        );
        let r = app
            .req(
                &o.token,
                "POST",
                "/api/v1/system/prompts/content/reset/",
                None,
            )
            .await;
        assert_eq!(
            (
                r.data()["prompt_version"].as_i64(),
                r.data()["is_default"].as_bool()
            ),
            (Some(2), Some(true)),
            "{m}: {}",
            r.body
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn a_second_generation_while_one_runs_is_refused_and_cancel_releases_everything() {
    for app in TestApp::both().await {
        let m = app.mode;
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v1/chat/completions"))
            .respond_with(chat("{}", "stop").set_delay(std::time::Duration::from_secs(3)))
            .mount(&server)
            .await;
        let o = app.signup("Slow").await;
        configure(&app, &o, &server).await;
        let (_, sector) = app.site_and_sector(&o).await;
        let r = app.req(&o.token, "POST", "/api/v1/writer/tasks/", Some(json!({"sector_id": sector, "title": "Slow", "primary_keyword": "slow topic", "target_word_count": 500}))).await;
        let task = r.data()["id"].as_str().unwrap().to_string();
        // Keyed, so that a client's retry answers the first job, not a 409.
        let auth = format!("Bearer {}", o.token);
        let keyed = |key: &'static str| {
            let (auth, task, app) = (auth.clone(), task.clone(), &app);
            async move {
                app.call(
                    "POST",
                    "/api/v1/writer/tasks/auto_generate_content/",
                    Some(json!({"task_ids": [task]})),
                    &[("authorization", auth.as_str()), ("idempotency-key", key)],
                )
                .await
            }
        };
        let r = keyed("write-once").await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{m}: {}", r.body);
        let job = r.data()["job_id"].as_str().unwrap().to_string();
        let again = keyed("write-once").await;
        assert_eq!(
            (again.status, again.data()["job_id"].as_str()),
            (StatusCode::ACCEPTED, Some(job.as_str())),
            "{m}: {}",
            again.body
        );
        let r = app
            .req(
                &o.token,
                "POST",
                "/api/v1/writer/tasks/auto_generate_content/",
                Some(json!({"task_ids": [task]})),
            )
            .await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::CONFLICT, "GENERATION_RUNNING"),
            "{m}: {}",
            r.body
        );
        let r = app
            .req(
                &o.token,
                "PATCH",
                &format!("/api/v1/writer/tasks/{task}/"),
                Some(json!({"title": "Renamed"})),
            )
            .await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::CONFLICT, "GENERATION_RUNNING"),
            "{m}"
        );
        // Cancel: the task is open again and every credit returns.
        let r = app
            .req(
                &o.token,
                "POST",
                &format!("/api/v1/jobs/{job}/cancel/"),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{m}: {}", r.body);
        let r = app
            .req(&o.token, "GET", "/api/v1/billing/credits/", None)
            .await;
        assert_eq!(
            (r.data()["balance"].as_f64(), r.data()["reserved"].as_f64()),
            (Some(250.0), Some(0.0)),
            "{m}"
        );
        let h = app.state.feed.head().await.unwrap();
        let t = app
            .req(
                &o.token,
                "GET",
                &format!("/api/v1/writer/tasks/{task}/?min_position={h}"),
                None,
            )
            .await;
        assert_eq!(t.data()["status"], "failed", "{m}: {}", t.body);
        assert!(
            t.data()["error"].as_str().unwrap().contains("cancelled"),
            "{m}"
        );
        // The worker's late answer stores nothing.
        tokio::time::sleep(std::time::Duration::from_secs(4)).await;
        let h = app.state.feed.head().await.unwrap();
        let r = app
            .req(
                &o.token,
                "GET",
                &format!("/api/v1/writer/content/?min_position={h}"),
                None,
            )
            .await;
        assert_eq!(r.data()["count"], 0, "{m}: {}", r.body);
        let r = app
            .req(
                &o.token,
                "POST",
                "/api/v1/writer/tasks/auto_generate_content/",
                Some(json!({"task_ids": [task]})),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::ACCEPTED,
            "{m}: a failed task can be written again: {}",
            r.body
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn ideas_through_an_openai_compatible_api_keep_to_the_cluster_and_free_keywords() {
    for app in TestApp::both().await {
        let m = app.mode;
        let server = MockServer::start().await;
        let stub = Writer::default();
        Mock::given(method("POST"))
            .and(path("/v1/chat/completions"))
            .respond_with(stub.clone())
            .mount(&server)
            .await;
        let o = app.signup("AiIdeas").await;
        let sector = crate::jobs::setup(&app, &o).await;
        let r = app
            .req(
                &o.token,
                "POST",
                "/api/v1/planner/keywords/auto_cluster/",
                Some(json!({"sector_id": sector, "num_clusters": 3})),
            )
            .await;
        let job = r.data()["job_id"].as_str().unwrap().to_string();
        assert_eq!(
            wait_done(&app, &o.token, &job).await.data()["state"],
            "SUCCESS",
            "{m}"
        );
        configure(&app, &o, &server).await;
        let cluster = crate::jobs::clusters(&app, &o.token, &sector).await[0]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let h = app.state.feed.head().await.unwrap();
        let kws = app.req(&o.token, "GET", &format!("/api/v1/planner/keywords/?cluster_id={cluster}&ordering=-volume&min_position={h}"), None).await;
        let top = kws.data()["results"][0]["keyword"]
            .as_str()
            .unwrap()
            .to_string();
        // A live task holds the cluster's top keyword: no idea may take it.
        let r = app
            .req(
                &o.token,
                "POST",
                "/api/v1/writer/tasks/",
                Some(json!({"sector_id": sector, "title": "taken", "primary_keyword": top})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{m}: {}", r.body);
        // A profile and a strategy: the ideas prompt is the strategy's, in
        // the profile's language and tone, and the ideas carry both.
        let r = app
            .req(
                &o.token,
                "POST",
                "/api/v1/system/author-profiles/",
                Some(json!({"name": "Warm", "tone": "warm", "language": "de"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{m}: {}", r.body);
        let profile = r.data()["id"].as_str().unwrap().to_string();
        let r = app
            .req(&o.token, "POST", "/api/v1/system/strategies/",
                Some(json!({"name": "Ideas", "prompt_overrides": {"ideas": "STRATEGY IDEAS in {language} ({tone}): {keywords}"}})))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{m}: {}", r.body);
        let strategy = r.data()["id"].as_str().unwrap().to_string();
        for unknown in [
            json!({"strategy_id": uuid::Uuid::new_v4()}),
            json!({"author_profile_id": uuid::Uuid::new_v4()}),
        ] {
            let mut b = json!({"cluster_ids": [cluster]});
            b.as_object_mut()
                .unwrap()
                .extend(unknown.as_object().unwrap().clone());
            let r = app
                .req(
                    &o.token,
                    "POST",
                    "/api/v1/planner/clusters/auto_generate_ideas/",
                    Some(b),
                )
                .await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{m}: {}", r.body);
        }
        let r = app
            .req(
                &o.token,
                "POST",
                "/api/v1/planner/clusters/auto_generate_ideas/",
                Some(json!({"cluster_ids": [cluster], "ideas_per_cluster": 3,
                            "strategy_id": strategy, "author_profile_id": profile})),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{m}: {}", r.body);
        let job = r.data()["job_id"].as_str().unwrap().to_string();
        let done = wait_done(&app, &o.token, &job).await;
        assert_eq!(done.data()["state"], "SUCCESS", "{m}: {}", done.body);
        assert_eq!(
            done.data()["result"]["result"]["ideas"],
            3,
            "{m}: {}",
            done.body
        );
        assert_eq!(done.data()["result"]["credits_charged"], 3, "{m}");
        let seen = stub.seen.lock().unwrap().clone();
        let prompt = seen.last().unwrap()["messages"][1]["content"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            !prompt.contains(&top),
            "{m}: the taken keyword is not offered: {prompt}"
        );
        assert!(
            prompt.starts_with("STRATEGY IDEAS in de (warm): "),
            "{m}: the strategy's ideas prompt with the profile's language and tone: {prompt}"
        );
        let h = app.state.feed.head().await.unwrap();
        let r = app
            .req(
                &o.token,
                "GET",
                &format!("/api/v1/planner/ideas/?cluster_id={cluster}&min_position={h}"),
                None,
            )
            .await;
        let words: Vec<String> = kws.data()["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["keyword"].as_str().unwrap().to_string())
            .collect();
        let mut ideas = vec![];
        for i in r.data()["results"].as_array().unwrap() {
            let k = i["primary_keyword"].as_str().unwrap().to_string();
            assert!(words.contains(&k) && k != top, "{m}: {k}");
            assert_eq!(i["content_type"], "guide");
            assert_eq!(
                (i["strategy_id"].as_str(), i["author_profile_id"].as_str()),
                (Some(strategy.as_str()), Some(profile.as_str())),
                "{m}: {i}"
            );
            ideas.push(i["id"].as_str().unwrap().to_string());
        }
        // Their tasks write with the same profile and strategy.
        let r = app
            .req(
                &o.token,
                "POST",
                "/api/v1/planner/ideas/bulk_queue_to_writer/",
                Some(json!({"idea_ids": ideas})),
            )
            .await;
        assert_eq!(
            r.data()["queued"].as_array().map(Vec::len),
            Some(3),
            "{m}: {}",
            r.body
        );
        let task = r.data()["queued"][0]["task_id"]
            .as_str()
            .unwrap()
            .to_string();
        let h = app.state.feed.head().await.unwrap();
        let t = app
            .req(
                &o.token,
                "GET",
                &format!("/api/v1/writer/tasks/{task}/?min_position={h}"),
                None,
            )
            .await;
        assert_eq!(
            (
                t.data()["strategy_id"].as_str(),
                t.data()["author_profile_id"].as_str()
            ),
            (Some(strategy.as_str()), Some(profile.as_str())),
            "{m}: {}",
            t.body
        );
        app.stop().await;
    }
}
