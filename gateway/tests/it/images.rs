//! Images end to end over HTTP: article → prompts → images → a content
//! version with figures, in both run modes (local disk on the embedded
//! default, a real S3-protocol server in the scale-out mode); prompts a
//! person rewrites; the bytes with ETag and caching, by credentials or a
//! signed URL; shared bytes stored once and kept when one content's prompt
//! goes; credits charged once per prompt and per image; another account
//! sees nothing. Then Runware and OpenAI through local stubs that check our
//! requests and answer like the real services, faults included.

use crate::harness::{Owner, TestApp};
use crate::jobs::wait_done;
use axum::http::StatusCode;
use base64::Engine;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

async fn now(app: &TestApp) -> i64 {
    app.state.feed.head().await.unwrap()
}

async fn get_now(app: &TestApp, token: &str, p: &str) -> crate::harness::Resp {
    let sep = if p.contains('?') { '&' } else { '?' };
    let h = now(app).await;
    app.req(token, "GET", &format!("{p}{sep}min_position={h}"), None)
        .await
}

async fn balance(app: &TestApp, o: &Owner) -> (f64, f64) {
    let r = app
        .req(&o.token, "GET", "/api/v1/billing/credits/", None)
        .await;
    (
        r.data()["balance"].as_f64().unwrap(),
        r.data()["reserved"].as_f64().unwrap(),
    )
}

async fn job(app: &TestApp, o: &Owner, p: &str, body: Value) -> Value {
    let r = app.req(&o.token, "POST", p, Some(body)).await;
    assert_eq!(
        r.status,
        StatusCode::ACCEPTED,
        "{}: {p}: {}",
        app.mode,
        r.body
    );
    let id = r.data()["job_id"].as_str().unwrap().to_string();
    let done = wait_done(app, &o.token, &id).await;
    done.data().clone()
}

/// Articles written offline for `keywords` (three `<h2>` sections each):
/// (task ids, content ids).
async fn articles(app: &TestApp, o: &Owner, keywords: &[&str]) -> (Vec<String>, Vec<String>) {
    let (_, sector) = app.site_and_sector(o).await;
    let mut tasks = vec![];
    for kw in keywords {
        let r = app.req(&o.token, "POST", "/api/v1/writer/tasks/", Some(json!({
            "sector_id": sector, "title": format!("All about {kw}"), "primary_keyword": kw, "target_word_count": 400,
            "outline": [{"heading": "Why it matters", "level": 2}, {"heading": "How to choose", "level": 2},
                        {"heading": "Common mistakes", "level": 2}]}))).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}: {}", app.mode, r.body);
        tasks.push(r.data()["id"].as_str().unwrap().to_string());
    }
    let done = job(
        app,
        o,
        "/api/v1/writer/tasks/auto_generate_content/",
        json!({"task_ids": tasks}),
    )
    .await;
    assert_eq!(done["state"], "SUCCESS", "{}: {done}", app.mode);
    let mut contents = vec![];
    for t in &tasks {
        let r = get_now(app, &o.token, &format!("/api/v1/writer/tasks/{t}/")).await;
        contents.push(r.data()["content_id"].as_str().unwrap().to_string());
    }
    (tasks, contents)
}

async fn prompts_of(app: &TestApp, o: &Owner, content: &str) -> Vec<Value> {
    let r = get_now(
        app,
        &o.token,
        &format!("/api/v1/writer/image-prompts/?content_id={content}&ordering=slot"),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.data()["results"].as_array().unwrap().clone()
}

#[tokio::test]
async fn article_to_prompts_to_images_to_a_version_with_figures() {
    for app in TestApp::both().await {
        let m = app.mode;
        if m == "postgres+nats" {
            let loc = &app.state.media.as_ref().unwrap().location;
            assert!(loc.starts_with("s3://"), "{m}: media in S3, not {loc}");
        }
        let o = app.signup("Pictures").await;
        let (tasks, contents) = articles(&app, &o, &["trail shoes", "road shoes"]).await;
        let before = balance(&app, &o).await;

        // Prompts: 1 featured + 2 in-article each, 0.5 credit per prompt.
        let done = job(
            &app,
            &o,
            "/api/v1/writer/content/extract_image_prompts/",
            json!({"content_ids": contents, "in_article_images": 2}),
        )
        .await;
        assert_eq!(done["state"], "SUCCESS", "{m}: {done}");
        assert_eq!(done["result"]["result"]["prompts"], 6, "{m}: {done}");
        assert_eq!(balance(&app, &o).await, (before.0 - 3.0, 0.0), "{m}");
        let a = prompts_of(&app, &o, &contents[0]).await;
        assert_eq!(a.len(), 3, "{m}: {a:?}");
        assert_eq!(a[0]["kind"], "featured");
        assert!(a[0]["placement"].is_null());
        assert_eq!(a[1]["placement"], "Why it matters", "{m}: {a:?}");
        assert_eq!(a[2]["placement"], "How to choose");
        assert!(a.iter().all(|p| p["status"] == "new"));

        // A person rewrites prompts: road shoes' featured prompt becomes
        // trail shoes' (the same bytes, stored once).
        let b = prompts_of(&app, &o, &contents[1]).await;
        let same = a[0]["prompt"].as_str().unwrap();
        let r = app
            .req(
                &o.token,
                "PATCH",
                &format!(
                    "/api/v1/writer/image-prompts/{}/",
                    b[0]["id"].as_str().unwrap()
                ),
                Some(json!({"prompt": same, "alt_text": "Shoes on a trail"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{m}: {}", r.body);
        let r = app
            .req(
                &o.token,
                "PATCH",
                &format!(
                    "/api/v1/writer/image-prompts/{}/",
                    b[0]["id"].as_str().unwrap()
                ),
                Some(json!({"placement": "Why it matters"})),
            )
            .await;
        assert_eq!(
            r.code(),
            "INVALID_PLACEMENT",
            "{m}: the featured image has no placement"
        );
        let r = app
            .req(
                &o.token,
                "PATCH",
                &format!(
                    "/api/v1/writer/image-prompts/{}/",
                    b[1]["id"].as_str().unwrap()
                ),
                Some(json!({"prompt": "   "})),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{m}: {}",
            r.body
        );

        // Images for both tasks: 1 credit each (basic), 6 images.
        let before = balance(&app, &o).await;
        let done = job(
            &app,
            &o,
            "/api/v1/writer/tasks/auto_generate_images/",
            json!({"task_ids": tasks, "size": "512x512"}),
        )
        .await;
        assert_eq!(done["state"], "SUCCESS", "{m}: {done}");
        let result = &done["result"]["result"];
        assert_eq!(result["images"], 6, "{m}: {result}");
        assert_eq!(
            result["contents_placed"].as_array().unwrap().len(),
            2,
            "{m}: {result}"
        );
        assert_eq!(balance(&app, &o).await, (before.0 - 6.0, 0.0), "{m}");

        // The content's new version: figures after their headings, the featured image named.
        let c = get_now(
            &app,
            &o.token,
            &format!("/api/v1/writer/content/{}/", contents[0]),
        )
        .await;
        let html = c.data()["html_content"].as_str().unwrap();
        assert_eq!(html.matches("<figure>").count(), 2, "{m}: {html}");
        let why = html.find("Why it matters</h2>").unwrap();
        let fig = html.find("<figure>").unwrap();
        assert!(
            fig > why && fig < html.find("How to choose").unwrap(),
            "{m}: {html}"
        );
        assert_eq!(c.data()["author"]["kind"], "images", "{m}");
        let featured = c.data()["featured_image_id"].as_str().unwrap().to_string();

        // Images listed and described.
        let imgs = get_now(
            &app,
            &o.token,
            &format!("/api/v1/writer/images/?content_id={}", contents[0]),
        )
        .await;
        let list = imgs.data()["results"].as_array().unwrap();
        assert_eq!(list.len(), 3, "{m}: {}", imgs.body);
        let one = get_now(
            &app,
            &o.token,
            &format!("/api/v1/writer/images/{featured}/"),
        )
        .await;
        let d = one.data();
        assert_eq!(
            (d["width"].as_i64(), d["height"].as_i64()),
            (Some(512), Some(512)),
            "{m}: {d}"
        );
        assert_eq!(d["mime_type"], "image/png");
        assert_eq!(d["provider"], "offline");
        assert_eq!(d["credits"], 1.0);
        let sha = d["sha256"].as_str().unwrap().to_string();
        // Each in-article image is a figure of the version; the featured one is not.
        for img in list {
            let src = format!("/api/v1/writer/images/{}/file", img["id"].as_str().unwrap());
            let featured_one = img["id"] == featured.as_str();
            assert_eq!(html.contains(&src), !featured_one, "{m}: {src} in {html}");
        }

        // The bytes: a real PNG, ETag = sha256, cached privately; 304 on a match.
        let file = d["file_url"].as_str().unwrap().to_string();
        let (st, h, bytes) = app.bytes(Some(&o.token), &file, &[]).await;
        assert_eq!(
            st,
            StatusCode::OK,
            "{m}: {}",
            String::from_utf8_lossy(&bytes)
        );
        assert_eq!(h["content-type"], "image/png");
        assert_eq!(h["etag"], format!("\"{sha}\"").as_str());
        assert!(
            h["cache-control"].to_str().unwrap().contains("private"),
            "{m}"
        );
        assert_eq!(igny8_workers::images::media::sha256(&bytes), sha);
        assert!(igny8_workers::images::check::check(&bytes, Some("image/png")).is_ok());
        let (st, _, _) = app
            .bytes(
                Some(&o.token),
                &file,
                &[("if-none-match", &format!("\"{sha}\""))],
            )
            .await;
        assert_eq!(st, StatusCode::NOT_MODIFIED, "{m}");
        // A signed URL needs no credentials; an altered one is refused.
        let signed = d["signed_url"].as_str().unwrap().to_string();
        let (st, _, b2) = app.bytes(None, &signed, &[]).await;
        assert_eq!((st, b2.len()), (StatusCode::OK, bytes.len()), "{m}");
        let other_image = list.iter().find(|i| i["id"] != featured.as_str()).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        let forged = signed.replace(&featured, &other_image);
        let (st, _, _) = app.bytes(None, &forged, &[]).await;
        assert_eq!(
            st,
            StatusCode::FORBIDDEN,
            "{m}: a signature is for one image"
        );
        let (st, _, _) = app.bytes(None, &file, &[]).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED, "{m}");

        // Shared bytes: road shoes' featured image has trail shoes' bytes.
        let bp = prompts_of(&app, &o, &contents[1]).await;
        let b_img = bp[0]["image_id"].as_str().unwrap().to_string();
        let bd = get_now(&app, &o.token, &format!("/api/v1/writer/images/{b_img}/")).await;
        assert_eq!(
            bd.data()["sha256"],
            sha.as_str(),
            "{m}: the same prompt, the same bytes"
        );
        // Deleting trail shoes' prompt leaves road shoes' image whole.
        let r = app
            .req(
                &o.token,
                "DELETE",
                &format!(
                    "/api/v1/writer/image-prompts/{}/",
                    a[0]["id"].as_str().unwrap()
                ),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{m}: {}", r.body);
        let (st, _, b3) = app
            .bytes(Some(&o.token), bd.data()["file_url"].as_str().unwrap(), &[])
            .await;
        assert_eq!((st, b3.len()), (StatusCode::OK, bytes.len()), "{m}");
        let gone = get_now(
            &app,
            &o.token,
            &format!("/api/v1/writer/images/{featured}/"),
        )
        .await;
        assert_eq!(gone.status, StatusCode::NOT_FOUND, "{m}");

        // Another account sees none of it.
        let x = app.signup("Stranger").await;
        for p in [
            format!(
                "/api/v1/writer/image-prompts/{}/",
                bp[1]["id"].as_str().unwrap()
            ),
            format!("/api/v1/writer/images/{b_img}/"),
        ] {
            let r = app.req(&x.token, "GET", &p, None).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{m}: {p}");
        }
        let (st, _, _) = app
            .bytes(Some(&x.token), bd.data()["file_url"].as_str().unwrap(), &[])
            .await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{m}");
        let r = app
            .req(
                &x.token,
                "POST",
                "/api/v1/writer/content/extract_image_prompts/",
                Some(json!({"content_ids": [contents[1]]})),
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{m}: {}", r.body);
        let r = app
            .req(
                &x.token,
                "POST",
                "/api/v1/writer/images/generate/",
                Some(json!({"image_prompt_ids": [bp[1]["id"]]})),
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{m}: {}", r.body);
        let r = app
            .req(
                &x.token,
                "DELETE",
                &format!(
                    "/api/v1/writer/image-prompts/{}/",
                    bp[1]["id"].as_str().unwrap()
                ),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{m}");

        // Bad requests: clear errors, nothing written.
        let h = now(&app).await;
        for (body, code) in [
            (json!({"image_prompt_ids": []}), "EMPTY_SELECTION"),
            (
                json!({"image_prompt_ids": [bp[1]["id"]], "provider": "midjourney"}),
                "INVALID_PROVIDER",
            ),
            (
                json!({"image_prompt_ids": [bp[1]["id"]], "size": "100x100"}),
                "INVALID_SIZE",
            ),
            (
                json!({"image_prompt_ids": [bp[1]["id"]], "quality": "ultra"}),
                "INVALID_QUALITY",
            ),
        ] {
            let r = app
                .req(
                    &o.token,
                    "POST",
                    "/api/v1/writer/images/generate/",
                    Some(body),
                )
                .await;
            assert_eq!(
                (r.status, r.code()),
                (StatusCode::UNPROCESSABLE_ENTITY, code),
                "{m}: {}",
                r.body
            );
        }
        let r = app
            .req(
                &o.token,
                "POST",
                "/api/v1/writer/content/extract_image_prompts/",
                Some(json!({"content_ids": [contents[0]], "in_article_images": 7})),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{m}: {}",
            r.body
        );
        assert_eq!(now(&app).await, h, "{m}: a refused request writes nothing");

        // A prompt written by hand: the first free in-article slot; a taken slot is refused.
        let r = app.req(&o.token, "POST", "/api/v1/writer/image-prompts/", Some(json!({
            "content_id": contents[1], "prompt": "Laces tied twice", "placement": "Common mistakes"}))).await;
        assert_eq!(r.status, StatusCode::CREATED, "{m}: {}", r.body);
        let manual = r.data()["id"].as_str().unwrap().to_string();
        let p = get_now(
            &app,
            &o.token,
            &format!("/api/v1/writer/image-prompts/{manual}/"),
        )
        .await;
        assert_eq!(
            (p.data()["slot"].as_i64(), p.data()["status"].as_str()),
            (Some(3), Some("new")),
            "{m}: {}",
            p.body
        );
        let r = app
            .req(
                &o.token,
                "POST",
                "/api/v1/writer/image-prompts/",
                Some(json!({
            "content_id": contents[1], "slot": 0, "prompt": "Another hero"})),
            )
            .await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::CONFLICT, "SLOT_TAKEN"),
            "{m}: {}",
            r.body
        );
        let r = app
            .req(
                &o.token,
                "POST",
                "/api/v1/writer/image-prompts/",
                Some(json!({
            "content_id": contents[1], "slot": 4, "prompt": "No heading"})),
            )
            .await;
        assert_eq!(r.code(), "INVALID_PLACEMENT", "{m}: {}", r.body);
        let r = app
            .req(
                &x.token,
                "POST",
                "/api/v1/writer/image-prompts/",
                Some(json!({
            "content_id": contents[1], "prompt": "Theirs", "placement": "Common mistakes"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{m}");

        // A retried image job (same Idempotency-Key) answers the first job.
        let auth = format!("Bearer {}", o.token);
        let hdr = [
            ("authorization", auth.as_str()),
            ("idempotency-key", "images-once"),
        ];
        let body = json!({"image_prompt_ids": [bp[1]["id"]], "size": "512x512"});
        let r1 = app
            .call(
                "POST",
                "/api/v1/writer/images/generate/",
                Some(body.clone()),
                &hdr,
            )
            .await;
        assert_eq!(r1.status, StatusCode::ACCEPTED, "{m}: {}", r1.body);
        let r2 = app
            .call("POST", "/api/v1/writer/images/generate/", Some(body), &hdr)
            .await;
        assert_eq!(r2.status, StatusCode::ACCEPTED, "{m}: {}", r2.body);
        assert_eq!(r1.data()["job_id"], r2.data()["job_id"], "{m}");
        assert_eq!(r2.headers["idempotent-replayed"], "true", "{m}");
        let job = r1.data()["job_id"].as_str().unwrap().to_string();
        assert_eq!(
            wait_done(&app, &o.token, &job).await.data()["state"],
            "SUCCESS",
            "{m}"
        );
        app.stop().await;
    }
}

// --- providers through stubs -----------------------------------------------

const KEY: &str = "rw-test-key-0123456789";

fn png(w: u32, h: u32) -> Vec<u8> {
    igny8_workers::images::offline::png("stub", w, h)
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Runware's `POST /v1`: checks the task array and answers per prompt.
#[derive(Clone, Default)]
struct Runware {
    tasks: Arc<Mutex<Vec<Value>>>,
}

impl Respond for Runware {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let auth = req
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        if auth != Some(&format!("Bearer {KEY}")) {
            return ResponseTemplate::new(401).set_body_json(
                json!({"errors": [{"code": "invalidApiKey", "message": "Invalid API key"}]}),
            );
        }
        let body: Value = serde_json::from_slice(&req.body).unwrap();
        let task = body
            .as_array()
            .and_then(|a| a.first())
            .cloned()
            .unwrap_or_default();
        self.tasks.lock().unwrap().push(task.clone());
        let ok = task["taskType"] == "imageInference"
            && uuid::Uuid::parse_str(task["taskUUID"].as_str().unwrap_or("")).is_ok()
            && task["width"].as_u64().is_some_and(|w| w % 64 == 0)
            && task["height"].as_u64().is_some_and(|h| h % 64 == 0)
            && task["numberResults"] == 1
            && task["includeCost"] == true
            && task["model"] == "runware:101@1";
        if !ok {
            return ResponseTemplate::new(400).set_body_json(
                json!({"errors": [{"code": "invalidTask", "message": format!("bad task {task}")}]}),
            );
        }
        let uuid = task["taskUUID"].clone();
        let prompt = task["positivePrompt"].as_str().unwrap_or("");
        if prompt.contains("forbidden") {
            return ResponseTemplate::new(400).set_body_json(json!({"errors": [{"code": "invalidPositivePrompt",
                "message": "The prompt was flagged", "parameter": "positivePrompt", "taskUUID": uuid}]}));
        }
        if prompt.contains("html") {
            return ResponseTemplate::new(200)
                .set_body_raw("<html><body>gateway error</body></html>", "text/html");
        }
        let (w, h) = (
            task["width"].as_u64().unwrap() as u32,
            task["height"].as_u64().unwrap() as u32,
        );
        let mut image = png(w, h);
        if prompt.contains("truncated") {
            image.truncate(image.len() / 2);
        }
        // A prompt that asks for it is answered late (3 s: longer than the
        // test's provider timeout, so each try of it times out).
        let delay = if prompt.contains("slow") { 3000 } else { 0 };
        ResponseTemplate::new(200)
            .set_delay(std::time::Duration::from_millis(delay))
            .set_body_json(json!({"data": [{"taskType": "imageInference", "taskUUID": uuid,
                "imageUUID": uuid::Uuid::new_v4(), "imageBase64Data": b64(&image), "cost": 0.0038}]}))
    }
}

/// OpenAI's `POST /v1/images/generations`: gpt-image-1 answers b64_json;
/// dall-e-3 answers URLs on the same server (a redirect loop, a 25 MB
/// body, an expired link for the prompts that ask).
#[derive(Clone)]
struct OpenAiImages {
    base: String,
}

impl Respond for OpenAiImages {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&req.body).unwrap();
        let prompt = body["prompt"].as_str().unwrap_or("");
        assert_eq!(body["n"], 1);
        assert!(body["size"].as_str().unwrap().contains('x'));
        if body["model"] == "gpt-image-1" {
            return ResponseTemplate::new(200).set_body_json(
                json!({"created": 1, "data": [{"b64_json": b64(&png(64, 64))}],
                "usage": {"input_tokens": 50, "output_tokens": 272, "total_tokens": 322}}),
            );
        }
        assert_eq!(body["response_format"], "url");
        let file = if prompt.contains("loop") {
            "loop"
        } else if prompt.contains("huge") {
            "huge.png"
        } else if prompt.contains("expired") {
            "expired.png"
        } else {
            "ok.png"
        };
        ResponseTemplate::new(200).set_body_json(
            json!({"created": 1, "data": [{"url": format!("{}/files/{file}", self.base)}]}),
        )
    }
}

async fn set_provider(app: &TestApp, o: &Owner, name: &str, body: Value) {
    let r = app
        .req(
            &o.token,
            "PUT",
            &format!("/api/v1/system/settings/integrations/{name}/"),
            Some(body),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

/// Rewrite the in-article prompts of `content` to `words` (one each).
async fn rewrite(app: &TestApp, o: &Owner, content: &str, words: &[&str]) -> Vec<String> {
    let ps = prompts_of(app, o, content).await;
    let mut ids = vec![];
    for (p, w) in ps.iter().zip(words) {
        let id = p["id"].as_str().unwrap().to_string();
        let r = app
            .req(
                &o.token,
                "PATCH",
                &format!("/api/v1/writer/image-prompts/{id}/"),
                Some(json!({"prompt": format!("a picture, {w}")})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        ids.push(id);
    }
    ids
}

#[tokio::test]
async fn runware_and_openai_through_stubs_with_their_faults() {
    let app = TestApp::embedded().await;
    let server = MockServer::start().await;
    let runware = Runware::default();
    Mock::given(method("POST"))
        .and(path("/v1"))
        .respond_with(runware.clone())
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/images/generations"))
        .respond_with(OpenAiImages { base: server.uri() })
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/files/ok.png"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(png(64, 64), "image/png"))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/files/loop"))
        .respond_with(
            ResponseTemplate::new(302)
                .insert_header("location", format!("{}/files/loop", server.uri())),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/files/huge.png"))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw(vec![0u8; 25 * 1024 * 1024], "image/png"),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/files/expired.png"))
        .respond_with(ResponseTemplate::new(403).set_body_string("Request has expired"))
        .mount(&server)
        .await;

    let o = app.signup("Providers").await;
    set_provider(
        &app,
        &o,
        "runware",
        json!({"base_url": server.uri(), "api_key": KEY}),
    )
    .await;
    let r = app
        .req(
            &o.token,
            "GET",
            "/api/v1/system/settings/integrations/runware/",
            None,
        )
        .await;
    assert_eq!(r.data()["image_model"], "runware:101@1", "{}", r.body);
    assert_eq!(r.data()["has_api_key"], true);
    assert!(!r.body.to_string().contains(KEY), "the key is never shown");
    let r = app
        .req(
            &o.token,
            "POST",
            "/api/v1/system/settings/integrations/runware/test_runware/",
            None,
        )
        .await;
    assert_eq!(r.data()["ok"], true, "{}", r.body);
    assert_eq!(r.data()["width"], 512);

    // Runware: two good prompts, a flagged one, an HTML answer, a truncated PNG.
    let (_, contents) = articles(&app, &o, &["rock climbing", "bouldering"]).await;
    let done = job(
        &app,
        &o,
        "/api/v1/writer/content/extract_image_prompts/",
        json!({"content_ids": contents, "in_article_images": 3}),
    )
    .await;
    assert_eq!(done["state"], "SUCCESS", "{done}");
    let a = rewrite(
        &app,
        &o,
        &contents[0],
        &[
            "granite wall",
            "forbidden thing",
            "html please",
            "truncated file",
        ],
    )
    .await;
    let before = balance(&app, &o).await;
    let done = job(
        &app,
        &o,
        "/api/v1/writer/images/generate/",
        json!({"image_prompt_ids": a, "provider": "runware", "size": "1792x1024"}),
    )
    .await;
    assert_eq!(done["state"], "SUCCESS", "{done}");
    let result = &done["result"]["result"];
    assert_eq!(result["images"], 1, "{result}");
    let failed = result["failed"].as_array().unwrap();
    let reason = |id: &str| {
        failed
            .iter()
            .find(|f| f["image_prompt_id"] == id)
            .map(|f| f["error"].as_str().unwrap().to_string())
            .unwrap_or_default()
    };
    assert!(reason(&a[1]).contains("invalidPositivePrompt"), "{result}");
    assert!(reason(&a[2]).contains("not JSON"), "{result}");
    assert!(reason(&a[3]).contains("decode"), "{result}");
    // One image charged; the three failures released.
    assert_eq!(balance(&app, &o).await, (before.0 - 1.0, 0.0));
    let stored = get_now(
        &app,
        &o.token,
        &format!("/api/v1/writer/images/?content_id={}", contents[0]),
    )
    .await;
    let img = &stored.data()["results"][0];
    assert_eq!(img["provider"], "runware");
    assert_eq!(img["cost_usd"], 0.0038, "Runware's reported cost");
    assert_eq!(
        (img["width"].as_i64(), img["height"].as_i64()),
        (Some(1792), Some(1024)),
        "as asked (multiples of 64)"
    );
    // Every call was recorded before it was made, with the taskUUID sent.
    let sent: Vec<String> = runware
        .tasks
        .lock()
        .unwrap()
        .iter()
        .map(|t| t["taskUUID"].as_str().unwrap_or("").to_string())
        .collect();
    let rows: Vec<String> = igny8_commands::on_db!(&app.state.db, p => sqlx::query_scalar::<_, String>(
        "SELECT CAST(payload AS TEXT) FROM events WHERE event_type = 'ImageRequested'").fetch_all(p).await.unwrap());
    // The first call was test_runware's (no job, no event); the job made five.
    assert_eq!(sent.len(), 5, "{sent:?}");
    for t in sent.iter().skip(1) {
        assert!(
            rows.iter().any(|r| r.contains(t.as_str())),
            "taskUUID {t} recorded before the call"
        );
    }
    // The failed prompts are free again and say why.
    let ps = prompts_of(&app, &o, &contents[0]).await;
    let flagged = ps.iter().find(|p| p["id"] == a[1].as_str()).unwrap();
    assert_eq!(flagged["status"], "failed");
    assert!(flagged["error"].as_str().unwrap().contains("flagged"));

    // OpenAI: gpt-image-1 (b64_json), then dall-e-3 (URLs: good, loop, huge, expired).
    set_provider(&app, &o, "openai", json!({"base_url": format!("{}/v1", server.uri()), "api_key": "sk-test", "image_model": "gpt-image-1"})).await;
    let r = app
        .req(
            &o.token,
            "POST",
            "/api/v1/system/settings/integrations/openai/test_image/",
            None,
        )
        .await;
    assert_eq!(
        (r.data()["ok"].as_bool(), r.data()["mime_type"].as_str()),
        (Some(true), Some("image/png")),
        "{}",
        r.body
    );
    let b = rewrite(
        &app,
        &o,
        &contents[1],
        &["plain chalk", "a loop", "huge poster", "expired link"],
    )
    .await;
    let done = job(
        &app,
        &o,
        "/api/v1/writer/images/generate/",
        json!({"image_prompt_ids": [b[0]], "provider": "openai", "quality": "premium"}),
    )
    .await;
    assert_eq!(done["result"]["result"]["images"], 1, "{done}");
    assert_eq!(done["result"]["credits_charged"], 4, "premium: 4 credits");
    set_provider(&app, &o, "openai", json!({"image_model": "dall-e-3"})).await;
    let done = job(
        &app,
        &o,
        "/api/v1/writer/images/generate/",
        json!({"image_prompt_ids": b, "provider": "openai"}),
    )
    .await;
    let result = &done["result"]["result"];
    assert_eq!(result["images"], 1, "{result}");
    let failed = result["failed"].as_array().unwrap();
    let reason = |id: &str| {
        failed
            .iter()
            .find(|f| f["image_prompt_id"] == id)
            .map(|f| f["error"].as_str().unwrap().to_string())
            .unwrap_or_default()
    };
    assert!(reason(&b[1]).contains("redirect"), "{result}");
    assert!(reason(&b[2]).contains("larger"), "{result}");
    assert!(reason(&b[3]).contains("403"), "{result}");

    // Cancel while Runware is still answering: every credit returns, the
    // prompt is free again, and the late answer stores nothing.
    let slow = rewrite(&app, &o, &contents[1], &["slow sunrise"]).await;
    let before = balance(&app, &o).await;
    let r = app
        .req(
            &o.token,
            "POST",
            "/api/v1/writer/images/generate/",
            Some(json!({"image_prompt_ids": slow, "provider": "runware"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let job_id = r.data()["job_id"].as_str().unwrap().to_string();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let r = app
        .req(
            &o.token,
            "POST",
            &format!("/api/v1/jobs/{job_id}/cancel/"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        wait_done(&app, &o.token, &job_id).await.data()["state"],
        "CANCELLED"
    );
    assert_eq!(
        balance(&app, &o).await,
        before,
        "nothing charged, nothing held"
    );
    tokio::time::sleep(std::time::Duration::from_millis(3500)).await;
    let p = get_now(
        &app,
        &o.token,
        &format!("/api/v1/writer/image-prompts/{}/", slow[0]),
    )
    .await;
    assert_ne!(p.data()["status"], "generating", "{}", p.body);
    let stored: i64 = igny8_commands::on_db!(&app.state.db, p => sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE event_type = 'ImageStored' AND aggregate_id = $1 AND CAST(payload AS TEXT) LIKE $2")
        .bind(&slow[0]).bind(format!("%{job_id}%")).fetch_one(p).await.unwrap());
    assert_eq!(stored, 0, "the late answer stored nothing");
    assert_eq!(balance(&app, &o).await, before);
    let r = app
        .req(
            &o.token,
            "PATCH",
            &format!("/api/v1/writer/image-prompts/{}/", slow[0]),
            Some(json!({"prompt": "a calm sunrise"})),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "the prompt is free again: {}",
        r.body
    );
    app.stop().await;
}

#[tokio::test]
async fn provider_urls_on_internal_addresses_are_refused_unless_allowed() {
    // The workers of a real deployment (allow_private_fetch off) never read
    // a loopback URL a provider hands back.
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/x.png"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(png(8, 8), "image/png"))
        .mount(&server)
        .await;
    let url = format!("{}/x.png", server.uri());
    let strict = igny8_workers::images::Fetcher::new(false, std::time::Duration::from_secs(2));
    assert!(matches!(
        strict.get(&url).await,
        Err(igny8_workers::images::fetch::FetchError::Refused(_))
    ));
    let open = igny8_workers::images::Fetcher::new(true, std::time::Duration::from_secs(2));
    assert_eq!(open.get(&url).await.unwrap().0, png(8, 8));
}
