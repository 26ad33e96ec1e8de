//! WordPress publishing end to end, against the real WordPress that
//! scripts/test.sh starts on loopback (Debian's 6.1 under PHP's built-in
//! server; one plain site, one with the companion plugin): content with a
//! featured image, in-article images and terms to a post, in both run
//! modes; updates of the same post; scheduling; a taken slug; connection
//! errors by their WordPress codes; drift found by sync and by the plugin's
//! signed webhooks; and the exactly-once cases — the answer to the create
//! cut by a proxy after WordPress made the post, and the workers process
//! SIGKILLed while the create is in flight: one post, one set of media.

use crate::harness::{Owner, TestApp, test_settings};
use crate::jobs::wait_done;
use axum::http::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn var(k: &str) -> String {
    std::env::var(k).unwrap_or_else(|_| {
        panic!(
            "{k} is not set: the publishing tests run against a real WordPress. Run scripts/test.sh \
             (it starts one with scripts/wordpress.sh), or `scripts/wordpress.sh start && . /tmp/igny8-wordpress/env`"
        )
    })
}

/// The test WordPress, spoken to directly (as its admin) to check what it holds.
struct Wp {
    url: String,
    user: String,
    pass: String,
    http: reqwest::Client,
}

impl Wp {
    fn new(url: String, user: String, pass: String) -> Wp {
        let _ = rustls::crypto::ring::default_provider().install_default();
        Wp {
            url,
            user,
            pass,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
        }
    }
    fn plain() -> Wp {
        Wp::new(
            var("IGNY8_TEST_WP_URL"),
            var("IGNY8_TEST_WP_USER"),
            var("IGNY8_TEST_WP_APP_PASSWORD"),
        )
    }
    fn plugin() -> Wp {
        Wp::new(
            var("IGNY8_TEST_WP_PLUGIN_URL"),
            var("IGNY8_TEST_WP_USER"),
            var("IGNY8_TEST_WP_PLUGIN_APP_PASSWORD"),
        )
    }
    async fn send(
        &self,
        method: reqwest::Method,
        route: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut r = self
            .http
            .request(method, format!("{}/wp-json{route}", self.url))
            .basic_auth(&self.user, Some(&self.pass));
        if let Some(b) = body {
            r = r.json(&b);
        }
        let res = r.send().await.expect("WordPress answers");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }
    async fn get(&self, route: &str) -> Value {
        let (s, v) = self.send(reqwest::Method::GET, route, None).await;
        assert_eq!(s, 200, "GET {route}: {v}");
        v
    }
    /// Every post (any status) whose content holds `token`.
    async fn posts_with(&self, token: &str) -> Vec<Value> {
        let v = self
            .get(&format!(
                "/wp/v2/posts?search={token}&status=any&context=edit&per_page=100"
            ))
            .await;
        v.as_array()
            .unwrap()
            .iter()
            .filter(|p| p["content"]["raw"].as_str().unwrap_or("").contains(token))
            .cloned()
            .collect()
    }
    /// The media library's items named after an image's SHA-256.
    async fn media_named(&self, sha256: &str) -> usize {
        let name = format!("igny8-{}", &sha256[..16]);
        let v = self
            .get(&format!("/wp/v2/media?search={name}&per_page=100"))
            .await;
        v.as_array()
            .unwrap()
            .iter()
            .filter(|m| m["source_url"].as_str().unwrap_or("").contains(&name))
            .count()
    }
}

async fn get_now(app: &TestApp, token: &str, p: &str) -> crate::harness::Resp {
    let sep = if p.contains('?') { '&' } else { '?' };
    let h = app.state.feed.head().await.unwrap();
    app.req(token, "GET", &format!("{p}{sep}min_position={h}"), None)
        .await
}

async fn start(app: &TestApp, o: &Owner, p: &str, body: Value) -> String {
    let r = app.req(&o.token, "POST", p, Some(body)).await;
    assert_eq!(
        r.status,
        StatusCode::ACCEPTED,
        "{}: {p}: {}",
        app.mode,
        r.body
    );
    r.data()["job_id"].as_str().unwrap().to_string()
}

async fn job(app: &TestApp, o: &Owner, p: &str, body: Value) -> Value {
    let id = start(app, o, p, body).await;
    wait_done(app, &o.token, &id).await.data().clone()
}

/// A site with articles written offline for `keywords`, each with a
/// featured image and two in-article images: (site, content ids).
async fn illustrated(
    app: &TestApp,
    o: &Owner,
    keywords: &[String],
    images: bool,
) -> (String, Vec<String>) {
    let m = app.mode;
    let (site, sector) = app.site_and_sector(o).await;
    let mut tasks = vec![];
    for kw in keywords {
        let r = app.req(&o.token, "POST", "/api/v1/writer/tasks/", Some(json!({
            "sector_id": sector, "title": format!("All about {kw}"), "primary_keyword": kw, "target_word_count": 400,
            "outline": [{"heading": "Why it matters", "level": 2}, {"heading": "How to choose", "level": 2},
                        {"heading": "Common mistakes", "level": 2}]}))).await;
        assert_eq!(r.status, StatusCode::CREATED, "{m}: {}", r.body);
        tasks.push(r.data()["id"].as_str().unwrap().to_string());
    }
    let done = job(
        app,
        o,
        "/api/v1/writer/tasks/auto_generate_content/",
        json!({"task_ids": tasks}),
    )
    .await;
    assert_eq!(done["state"], "SUCCESS", "{m}: {done}");
    let mut contents = vec![];
    for t in &tasks {
        let r = get_now(app, &o.token, &format!("/api/v1/writer/tasks/{t}/")).await;
        contents.push(r.data()["content_id"].as_str().unwrap().to_string());
    }
    if images {
        let done = job(
            app,
            o,
            "/api/v1/writer/content/extract_image_prompts/",
            json!({"content_ids": contents, "in_article_images": 2}),
        )
        .await;
        assert_eq!(done["state"], "SUCCESS", "{m}: {done}");
        let done = job(
            app,
            o,
            "/api/v1/writer/tasks/auto_generate_images/",
            json!({"task_ids": tasks, "size": "512x512"}),
        )
        .await;
        assert_eq!(done["state"], "SUCCESS", "{m}: {done}");
    }
    (site, contents)
}

/// A WordPress connection for `site`: the integration's id.
async fn connect(app: &TestApp, o: &Owner, site: &str, wp: &Wp, user: &str, pass: &str) -> String {
    let r = app
        .req(&o.token, "POST", "/api/v1/integration/integrations/", Some(json!({
            "site_id": site, "platform": "wordpress", "wp_url": wp.url, "wp_username": user, "wp_app_password": pass})))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}: {}", app.mode, r.body);
    assert!(
        !r.body.to_string().contains(pass),
        "the password is never answered"
    );
    r.data()["id"].as_str().unwrap().to_string()
}

async fn publish(app: &TestApp, o: &Owner, integration: &str, body: Value) -> Value {
    job(
        app,
        o,
        &format!("/api/v1/integration/integrations/{integration}/publish/"),
        body,
    )
    .await
}

async fn publication(app: &TestApp, o: &Owner, content: &str) -> Value {
    let r = get_now(
        app,
        &o.token,
        &format!("/api/v1/integration/publications/?content_id={content}"),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}: {}", app.mode, r.body);
    let rows = r.data()["results"].as_array().unwrap();
    assert_eq!(
        rows.len(),
        1,
        "{}: one publication per content and site: {rows:?}",
        app.mode
    );
    rows[0].clone()
}

/// The SHA-256 of every image of a content.
async fn image_shas(app: &TestApp, o: &Owner, content: &str) -> Vec<String> {
    let r = get_now(
        app,
        &o.token,
        &format!("/api/v1/writer/images/?content_id={content}"),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.data()["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["sha256"].as_str().unwrap().to_string())
        .collect()
}

fn token() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..10].to_string()
}

#[tokio::test]
async fn content_to_a_post_with_images_and_terms_then_updates_and_unpublish() {
    let wp = Wp::plain();
    for app in TestApp::both().await {
        let m = app.mode;
        let tok = token();
        let o = app.signup("Publisher").await;
        let kw = format!("trail shoes {tok}");
        let (site, contents) = illustrated(&app, &o, std::slice::from_ref(&kw), true).await;
        let content = &contents[0];
        let id = connect(&app, &o, &site, &wp, &wp.user, &wp.pass).await;

        // The connection test names what it found.
        let r = app
            .req(
                &o.token,
                "POST",
                &format!("/api/v1/integration/integrations/{id}/test-connection/"),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{m}: {}", r.body);
        let t = r.data();
        assert_eq!(t["ok"], true, "{m}: {t}");
        assert!(
            t["wp_version"].as_str().unwrap_or("").starts_with("6.1"),
            "{m}: {t}"
        );
        assert_eq!(
            (
                t["can_publish"].clone(),
                t["can_upload"].clone(),
                t["application_passwords"].clone()
            ),
            (json!(true), json!(true), json!(true)),
            "{m}: {t}"
        );
        assert!(
            t["plugin_version"].is_null(),
            "{m}: no plugin on the plain site: {t}"
        );
        let r = get_now(
            &app,
            &o.token,
            &format!("/api/v1/integration/integrations/{id}/"),
        )
        .await;
        assert_eq!(r.data()["status"], "connected", "{m}: {}", r.body);
        assert_eq!(r.data()["last_test"]["ok"], true, "{m}: {}", r.body);
        // The site shows the connection (one source of truth).
        let r = get_now(&app, &o.token, &format!("/api/v1/auth/sites/{site}/")).await;
        assert_eq!(
            (
                r.data()["wp_url"].as_str(),
                r.data()["wp_app_password_set"].as_bool()
            ),
            (Some(wp.url.as_str()), Some(true)),
            "{m}: {}",
            r.body
        );

        // Publish: terms created (one already exists), images uploaded, figures pointed at WordPress.
        let existing = format!("Gear {tok}");
        let (s, _) = wp
            .send(
                reqwest::Method::POST,
                "/wp/v2/categories",
                Some(json!({"name": existing})),
            )
            .await;
        assert_eq!(s, 201);
        let cats = [existing.clone(), format!("Shoes {tok}")];
        let done = publish(
            &app,
            &o,
            &id,
            json!({"content_id": content, "status": "publish",
            "categories": cats, "tags": ["trail", format!("t{tok}")]}),
        )
        .await;
        assert_eq!(done["state"], "SUCCESS", "{m}: {done}");
        let res = &done["result"]["result"];
        assert_eq!(res["action"], "created", "{m}: {res}");
        assert_eq!(res["warnings"], json!([]), "{m}: {res}");
        assert_eq!(res["media_uploaded"], 3, "{m}: {res}");
        let post_id = res["post_id"].as_u64().unwrap();
        let post = wp
            .get(&format!("/wp/v2/posts/{post_id}?context=edit"))
            .await;
        assert_eq!(post["status"], "publish", "{m}");
        assert_eq!(post["title"]["raw"], format!("All about {kw}"), "{m}");
        assert_eq!(post["slug"], format!("all-about-trail-shoes-{tok}"), "{m}");
        assert!(
            !post["excerpt"]["raw"].as_str().unwrap().is_empty(),
            "{m}: the meta description is the excerpt"
        );
        let html = post["content"]["raw"].as_str().unwrap();
        assert!(
            !html.contains("/api/v1/writer/images/"),
            "{m}: every figure points at WordPress: {html}"
        );
        assert_eq!(
            html.matches("/wp-content/uploads/").count(),
            2,
            "{m}: two in-article figures: {html}"
        );
        let featured = post["featured_media"].as_u64().unwrap();
        assert_ne!(featured, 0, "{m}");
        let media = wp
            .get(&format!("/wp/v2/media/{featured}?context=edit"))
            .await;
        assert!(
            !media["alt_text"].as_str().unwrap().is_empty(),
            "{m}: alt text sent: {media}"
        );
        assert_eq!(media["mime_type"], "image/png");
        let cat_names: Vec<String> = {
            let mut v = vec![];
            for c in post["categories"].as_array().unwrap() {
                v.push(
                    wp.get(&format!("/wp/v2/categories/{c}")).await["name"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                );
            }
            v
        };
        assert_eq!(cat_names.len(), 2, "{m}: {cat_names:?}");
        assert!(
            cats.iter().all(|c| cat_names.contains(c)),
            "{m}: {cat_names:?}"
        );
        assert_eq!(post["tags"].as_array().unwrap().len(), 2, "{m}");
        let p = publication(&app, &o, content).await;
        assert_eq!(
            (
                p["state"].as_str(),
                p["post_id"].as_u64(),
                p["wp_status"].as_str()
            ),
            (Some("published"), Some(post_id), Some("publish")),
            "{m}: {p}"
        );
        assert_eq!(p["link"], post["link"], "{m}");
        assert_eq!(p["modified_gmt"], post["modified_gmt"], "{m}");
        assert_eq!(p["media"], 3, "{m}: {p}");
        // The content records its post.
        let r = get_now(
            &app,
            &o.token,
            &format!("/api/v1/writer/content/{content}/"),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);

        // Edited content published again updates the same post; media are not sent twice.
        let r = app.req(&o.token, "PATCH", &format!("/api/v1/writer/content/{content}/"),
            Some(json!({"html_content": format!("<h2>Why it matters</h2><p>Edited by a person {tok}.</p>")}))).await;
        assert_eq!(r.status, StatusCode::OK, "{m}: {}", r.body);
        let done = publish(
            &app,
            &o,
            &id,
            json!({"content_id": content, "status": "publish", "categories": cats}),
        )
        .await;
        assert_eq!(done["state"], "SUCCESS", "{m}: {done}");
        let res = &done["result"]["result"];
        assert_eq!(
            (
                res["action"].as_str(),
                res["post_id"].as_u64(),
                res["media_uploaded"].as_u64()
            ),
            (Some("updated"), Some(post_id), Some(0)),
            "{m}: {res}"
        );
        let post = wp
            .get(&format!("/wp/v2/posts/{post_id}?context=edit"))
            .await;
        assert!(
            post["content"]["raw"]
                .as_str()
                .unwrap()
                .contains(&format!("Edited by a person {tok}")),
            "{m}"
        );
        assert_eq!(
            post["featured_media"].as_u64(),
            Some(featured),
            "{m}: the featured image stays"
        );
        assert_eq!(wp.posts_with(&tok).await.len(), 1, "{m}: one post");
        for sha in image_shas(&app, &o, content).await {
            assert_eq!(
                wp.media_named(&sha).await,
                1,
                "{m}: each image once in the media library"
            );
        }
        // Every request is in the sync log, newest first.
        let r = get_now(
            &app,
            &o.token,
            &format!("/api/v1/integration/integrations/{id}/sync_logs/?page_size=100"),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{m}: {}", r.body);
        let logs = r.data()["results"].as_array().unwrap();
        assert!(
            logs.iter().any(|l| l["method"] == "POST"
                && l["path"]
                    .as_str()
                    .unwrap()
                    .starts_with("/wp-json/wp/v2/media?")
                && l["status"] == 201),
            "{m}: {logs:?}"
        );
        assert!(
            logs.iter().any(|l| l["method"] == "POST"
                && l["path"]
                    .as_str()
                    .unwrap()
                    .starts_with("/wp-json/wp/v2/posts")
                && l["outcome"] == "ok"),
            "{m}: {logs:?}"
        );
        assert!(
            logs.iter().all(|l| !l.to_string().contains(&wp.pass)),
            "{m}"
        );
        let r = get_now(
            &app,
            &o.token,
            &format!("/api/v1/integration/integrations/{id}/sync_logs/?outcome=error"),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{m}: {}", r.body);
        let r = app
            .req(
                &o.token,
                "GET",
                &format!("/api/v1/integration/integrations/{id}/sync_logs/?outcome=maybe"),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{m}: {}", r.body);

        // Another account sees nothing and can publish nothing here.
        let other = app.signup("Other").await;
        for (method, p) in [
            ("GET", format!("/api/v1/integration/integrations/{id}/")),
            (
                "POST",
                format!("/api/v1/integration/integrations/{id}/test-connection/"),
            ),
            (
                "GET",
                format!("/api/v1/integration/integrations/{id}/sync_logs/"),
            ),
            (
                "GET",
                format!(
                    "/api/v1/integration/publications/{}/",
                    p["id"].as_str().unwrap()
                ),
            ),
        ] {
            let r = app.req(&other.token, method, &p, None).await;
            assert_eq!(
                r.status,
                StatusCode::NOT_FOUND,
                "{m}: {method} {p}: {}",
                r.body
            );
        }
        let r = app
            .req(
                &other.token,
                "POST",
                &format!("/api/v1/integration/integrations/{id}/publish/"),
                Some(json!({"content_id": content, "status": "draft"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{m}: {}", r.body);
        let r = get_now(&app, &other.token, "/api/v1/integration/publications/").await;
        assert_eq!(r.data()["count"], 0, "{m}");

        // Unpublish: to draft, then to the trash.
        let done = job(
            &app,
            &o,
            &format!("/api/v1/integration/integrations/{id}/unpublish/"),
            json!({"content_id": content, "to": "draft"}),
        )
        .await;
        assert_eq!(done["state"], "SUCCESS", "{m}: {done}");
        assert_eq!(
            wp.get(&format!("/wp/v2/posts/{post_id}?context=edit"))
                .await["status"],
            "draft",
            "{m}"
        );
        assert_eq!(
            publication(&app, &o, content).await["wp_status"],
            "draft",
            "{m}"
        );
        let done = job(
            &app,
            &o,
            &format!("/api/v1/integration/integrations/{id}/unpublish/"),
            json!({"content_id": content, "to": "trash"}),
        )
        .await;
        assert_eq!(done["state"], "SUCCESS", "{m}: {done}");
        assert_eq!(
            wp.get(&format!("/wp/v2/posts/{post_id}?context=edit"))
                .await["status"],
            "trash",
            "{m}"
        );
        let p = publication(&app, &o, content).await;
        assert_eq!(
            (p["state"].as_str(), p["wp_status"].as_str()),
            (Some("unpublished"), Some("trash")),
            "{m}: {p}"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn scheduling_taken_slugs_bad_requests_and_connection_errors() {
    let wp = Wp::plain();
    let app = TestApp::embedded().await;
    let tok = token();
    let o = app.signup("Scheduler").await;
    let kws = [format!("road bikes {tok}"), format!("gravel bikes {tok}")];
    let (site, contents) = illustrated(&app, &o, &kws, false).await;
    let id = connect(&app, &o, &site, &wp, &wp.user, &wp.pass).await;

    // A slug someone else took: WordPress appends -2 and we say so.
    let taken = format!("all-about-gravel-bikes-{tok}");
    let (s, v) = wp
        .send(
            reqwest::Method::POST,
            "/wp/v2/posts",
            Some(
                json!({"title": "Theirs", "slug": taken, "status": "publish", "content": "theirs"}),
            ),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let done = publish(
        &app,
        &o,
        &id,
        json!({"content_id": contents[1], "status": "publish"}),
    )
    .await;
    assert_eq!(done["state"], "SUCCESS", "{done}");
    let res = &done["result"]["result"];
    assert_eq!(res["slug"], format!("{taken}-2"), "{res}");
    let w = res["warnings"].as_array().unwrap();
    assert!(
        w.len() == 1 && w[0].as_str().unwrap().starts_with("SLUG_CHANGED"),
        "{res}"
    );
    assert_eq!(
        publication(&app, &o, &contents[1]).await["warnings"],
        res["warnings"]
    );

    // Scheduled for tomorrow.
    let when = (chrono::Utc::now() + chrono::Duration::days(1))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let done = publish(
        &app,
        &o,
        &id,
        json!({"content_id": contents[0], "status": "future", "date_gmt": when}),
    )
    .await;
    assert_eq!(done["state"], "SUCCESS", "{done}");
    let post = wp
        .get(&format!(
            "/wp/v2/posts/{}?context=edit",
            done["result"]["result"]["post_id"]
        ))
        .await;
    assert_eq!(post["status"], "future");
    assert_eq!(format!("{}Z", post["date_gmt"].as_str().unwrap()), when);

    // Bad requests: the envelope, the right status, nothing written.
    let head = app.state.feed.head().await.unwrap();
    let publish_path = format!("/api/v1/integration/integrations/{id}/publish/");
    let past = (chrono::Utc::now() - chrono::Duration::days(1)).to_rfc3339();
    let many: Vec<String> = (0..21).map(|i| format!("tag {i}")).collect();
    for (body, status, code) in [
        (
            json!({"content_id": contents[0], "status": "future"}),
            422,
            "INVALID_DATE",
        ),
        (
            json!({"content_id": contents[0], "status": "future", "date_gmt": past}),
            422,
            "INVALID_DATE",
        ),
        (
            json!({"content_id": contents[0], "status": "publish", "date_gmt": "tomorrow"}),
            422,
            "INVALID_DATE",
        ),
        (
            json!({"content_id": contents[0], "status": "live"}),
            422,
            "INVALID_STATUS",
        ),
        (
            json!({"content_id": contents[0], "tags": many}),
            422,
            "INVALID_TERMS",
        ),
        (
            json!({"content_id": contents[0], "categories": [""]}),
            422,
            "INVALID_TERMS",
        ),
        (
            json!({"content_id": uuid::Uuid::new_v4()}),
            404,
            "NOT_FOUND",
        ),
        (json!({"status": "draft"}), 422, "VALIDATION_ERROR"),
    ] {
        let r = app
            .req(&o.token, "POST", &publish_path, Some(body.clone()))
            .await;
        assert_eq!(
            (r.status.as_u16(), r.code()),
            (status, code),
            "{body}: {}",
            r.body
        );
        assert_eq!(r.body["success"], false);
    }
    let r = app
        .req(
            &o.token,
            "POST",
            &format!("/api/v1/integration/integrations/{id}/unpublish/"),
            Some(json!({"content_id": contents[0], "to": "void"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    let sites = "/api/v1/integration/integrations/";
    for (body, status, code) in [
        (
            json!({"site_id": site, "wp_url": wp.url, "wp_username": "admin", "wp_app_password": "abcd efgh ijkl mnop qrst uvwx"}),
            409,
            "INTEGRATION_EXISTS",
        ),
        (
            json!({"site_id": uuid::Uuid::new_v4(), "wp_url": "https://example.com", "wp_username": "a", "wp_app_password": "abcd efgh ijkl mnop qrst uvwx"}),
            404,
            "NOT_FOUND",
        ),
    ] {
        let r = app.req(&o.token, "POST", sites, Some(body.clone())).await;
        assert_eq!(
            (r.status.as_u16(), r.code()),
            (status, code),
            "{body}: {}",
            r.body
        );
    }
    for (body, code) in [
        (
            json!({"max_concurrent_requests": 99}),
            "INVALID_CONCURRENCY",
        ),
        (json!({"wp_url": "ftp://example.com"}), "INVALID_WP_URL"),
        (
            json!({"wp_url": "https://user:pw@example.com"}),
            "INVALID_WP_URL",
        ),
        (json!({"wp_username": ""}), "INVALID_WP_USERNAME"),
    ] {
        let r = app
            .req(
                &o.token,
                "PATCH",
                &format!("{sites}{id}/"),
                Some(body.clone()),
            )
            .await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::UNPROCESSABLE_ENTITY, code),
            "{body}: {}",
            r.body
        );
    }
    assert_eq!(
        app.state.feed.head().await.unwrap(),
        head,
        "bad requests write nothing"
    );

    // Connection errors by their codes, never a 500: a contributor, a wrong
    // password, a port with nothing behind it, a name that does not resolve,
    // a server that is not WordPress.
    let author = var("IGNY8_TEST_WP_AUTHOR");
    let author_pass = var("IGNY8_TEST_WP_AUTHOR_APP_PASSWORD");
    let dead = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead_url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let i = &id;
    let not_wp = axum_server(
        axum::Router::new().fallback(|| async { (StatusCode::NOT_FOUND, "nothing here") }),
    )
    .await;
    for (url, user, pass, code) in [
        (
            wp.url.clone(),
            author.clone(),
            author_pass.clone(),
            "CANNOT_PUBLISH",
        ),
        (
            wp.url.clone(),
            wp.user.clone(),
            "aaaa bbbb cccc dddd eeee ffff".to_string(),
            "",
        ),
        (dead_url, wp.user.clone(), wp.pass.clone(), "CONNECT_ERROR"),
        (
            "http://igny8-no-such-host.invalid".to_string(),
            wp.user.clone(),
            wp.pass.clone(),
            "DNS_ERROR",
        ),
        (not_wp, wp.user.clone(), wp.pass.clone(), "NO_REST_API"),
        // https to a server that speaks plain HTTP: the handshake fails.
        (
            wp.url.replace("http://", "https://"),
            wp.user.clone(),
            wp.pass.clone(),
            "TLS_ERROR",
        ),
    ] {
        let r = app
            .req(
                &o.token,
                "PATCH",
                &format!("{sites}{i}/"),
                Some(json!({"wp_url": url, "wp_username": user, "wp_app_password": pass})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{url}: {}", r.body);
        let r = app
            .req(
                &o.token,
                "POST",
                &format!("{sites}{i}/test-connection/"),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{url}: {}", r.body);
        let t = r.data();
        assert_eq!(t["ok"], false, "{url}: {t}");
        let got = t["error_code"].as_str().unwrap();
        if code.is_empty() {
            // WordPress's own code for a refused password (php -S names it rest_not_logged_in or incorrect_password).
            assert!(
                [
                    "incorrect_password",
                    "rest_not_logged_in",
                    "invalid_username"
                ]
                .contains(&got),
                "{t}"
            );
        } else {
            assert_eq!(got, code, "{url}: {t}");
        }
        assert!(!t["message"].as_str().unwrap().is_empty());
        let r = get_now(&app, &o.token, &format!("{sites}{i}/")).await;
        assert_eq!(r.data()["status"], "failing", "{url}: {}", r.body);
    }
    app.stop().await;
}

/// An HTTP server on loopback for `router`: its base URL.
async fn axum_server(router: axum::Router) -> String {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(
            l,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
        .unwrap()
    });
    url
}

#[tokio::test]
async fn drift_found_by_sync_needs_force_and_deleted_posts_are_made_again() {
    let wp = Wp::plain();
    let app = TestApp::embedded().await;
    let tok = token();
    let o = app.signup("Drift").await;
    let (site, contents) = illustrated(&app, &o, &[format!("kayaks {tok}")], false).await;
    let content = &contents[0];
    let id = connect(&app, &o, &site, &wp, &wp.user, &wp.pass).await;
    let done = publish(
        &app,
        &o,
        &id,
        json!({"content_id": content, "status": "publish"}),
    )
    .await;
    assert_eq!(done["state"], "SUCCESS", "{done}");
    let post_id = done["result"]["result"]["post_id"].as_u64().unwrap();
    let sync = format!("/api/v1/integration/integrations/{id}/sync/");

    // In sync: nothing recorded.
    let done = job(&app, &o, &sync, json!({})).await;
    assert_eq!(done["state"], "SUCCESS", "{done}");
    assert!(publication(&app, &o, content).await["external_change"].is_null());

    // Someone edits the post in WordPress.
    tokio::time::sleep(Duration::from_millis(1100)).await; // modified_gmt has 1 s resolution
    let (s, v) = wp
        .send(
            reqwest::Method::POST,
            &format!("/wp/v2/posts/{post_id}"),
            Some(json!({"content": format!("Rewritten in WordPress {tok}")})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let done = job(&app, &o, &sync, json!({})).await;
    assert_eq!(done["state"], "SUCCESS", "{done}");
    let p = publication(&app, &o, content).await;
    assert_eq!(
        (
            p["external_change"]["kind"].as_str(),
            p["external_change"]["source"].as_str()
        ),
        (Some("edited"), Some("sync")),
        "{p}"
    );
    let r = get_now(
        &app,
        &o.token,
        "/api/v1/integration/publications/?external_change=true",
    )
    .await;
    assert_eq!(r.data()["count"], 1, "{}", r.body);
    // Publishing over it needs force.
    let path = format!("/api/v1/integration/integrations/{id}/publish/");
    let r = app
        .req(
            &o.token,
            "POST",
            &path,
            Some(json!({"content_id": content, "status": "publish"})),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::CONFLICT, "EXTERNAL_EDIT"),
        "{}",
        r.body
    );
    let done = publish(
        &app,
        &o,
        &id,
        json!({"content_id": content, "status": "publish", "force": true}),
    )
    .await;
    assert_eq!(done["state"], "SUCCESS", "{done}");
    assert_eq!(done["result"]["result"]["post_id"].as_u64(), Some(post_id));
    let post = wp
        .get(&format!("/wp/v2/posts/{post_id}?context=edit"))
        .await;
    assert!(
        !post["content"]["raw"]
            .as_str()
            .unwrap()
            .contains("Rewritten in WordPress")
    );
    assert!(publication(&app, &o, content).await["external_change"].is_null());

    // Someone deletes it for good: sync records it, and publishing makes a new post.
    let (s, v) = wp
        .send(
            reqwest::Method::DELETE,
            &format!("/wp/v2/posts/{post_id}?force=true"),
            None,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let done = job(&app, &o, &sync, json!({})).await;
    assert_eq!(done["state"], "SUCCESS", "{done}");
    let p = publication(&app, &o, content).await;
    assert_eq!(p["external_change"]["kind"], "deleted", "{p}");
    assert!(p["post_id"].is_null(), "{p}");
    let done = publish(
        &app,
        &o,
        &id,
        json!({"content_id": content, "status": "publish", "force": true}),
    )
    .await;
    assert_eq!(done["state"], "SUCCESS", "{done}");
    let again = done["result"]["result"]["post_id"].as_u64().unwrap();
    assert_ne!(again, post_id);
    assert_eq!(wp.posts_with(&tok).await.len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn the_companion_plugin_sends_signed_webhooks() {
    let wp = Wp::plugin();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let public = format!("http://{}", listener.local_addr().unwrap());
    let app = TestApp::embedded_with(igny8_gateway::config::Settings {
        public_url: Some(public.clone()),
        ..test_settings()
    })
    .await;
    let router = app.router.clone();
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
        .unwrap()
    });
    let tok = token();
    let o = app.signup("Plugin").await;
    let (site, contents) = illustrated(&app, &o, &[format!("canoes {tok}")], false).await;
    let content = &contents[0];
    let id = connect(&app, &o, &site, &wp, &wp.user, &wp.pass).await;
    let r = app
        .req(
            &o.token,
            "POST",
            &format!("/api/v1/integration/integrations/{id}/test-connection/"),
            None,
        )
        .await;
    let t = r.data();
    assert_eq!(
        (t["ok"].as_bool(), t["webhooks"].as_bool()),
        (Some(true), Some(true)),
        "{t}"
    );
    assert!(t["plugin_version"].is_string(), "{t}");
    let r = get_now(
        &app,
        &o.token,
        &format!("/api/v1/integration/integrations/{id}/"),
    )
    .await;
    assert_eq!(
        r.data()["webhook_url"],
        format!("{public}/api/v1/integration/webhooks/wordpress/{id}/"),
        "{}",
        r.body
    );

    let done = publish(
        &app,
        &o,
        &id,
        json!({"content_id": content, "status": "publish"}),
    )
    .await;
    assert_eq!(done["state"], "SUCCESS", "{done}");
    let post_id = done["result"]["result"]["post_id"].as_u64().unwrap();
    // The plugin's meta keys hold the publication's ids and the SEO fields.
    let post = wp
        .get(&format!("/wp/v2/posts/{post_id}?context=edit"))
        .await;
    assert_eq!(post["meta"]["igny8_content_id"], content.as_str(), "{post}");
    assert!(
        !post["meta"]["igny8_seo_title"]
            .as_str()
            .unwrap_or("")
            .is_empty(),
        "{post}"
    );
    let found = wp
        .get(&format!(
            "/wp/v2/posts?igny8_content_id={content}&status=any"
        ))
        .await;
    assert_eq!(found.as_array().unwrap().len(), 1);
    // Our own writes send no webhook: nothing recorded.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(publication(&app, &o, content).await["external_change"].is_null());

    // An edit in WordPress (a second later: modified_gmt counts seconds): the plugin tells us, signed.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (s, v) = wp
        .send(
            reqwest::Method::POST,
            &format!("/wp/v2/posts/{post_id}"),
            Some(json!({"title": format!("Renamed {tok}")})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let p = loop {
        let p = publication(&app, &o, content).await;
        if !p["external_change"].is_null() || Instant::now() > deadline {
            break p;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        (
            p["external_change"]["kind"].as_str(),
            p["external_change"]["source"].as_str()
        ),
        (Some("edited"), Some("webhook")),
        "{p}"
    );
    // Trashed in WordPress.
    let (s, _) = wp
        .send(
            reqwest::Method::DELETE,
            &format!("/wp/v2/posts/{post_id}"),
            None,
        )
        .await;
    assert_eq!(s, 200);
    let deadline = Instant::now() + Duration::from_secs(20);
    let p = loop {
        let p = publication(&app, &o, content).await;
        if p["external_change"]["kind"] == "trashed" || Instant::now() > deadline {
            break p;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(p["external_change"]["kind"], "trashed", "{p}");

    // A forged, a stale and an unsigned webhook: 401, nothing recorded.
    let hook = format!("/api/v1/integration/webhooks/wordpress/{id}/");
    let body = json!({"event": "deleted", "post_id": post_id, "content_id": content}).to_string();
    let now = chrono::Utc::now().timestamp();
    let head = app.state.feed.head().await.unwrap();
    for (ts, sig) in [
        (now.to_string(), format!("sha256={}", "0".repeat(64))),
        (
            (now - 600).to_string(),
            igny8_commands::publishing::webhook::sign(
                "wrong",
                &(now - 600).to_string(),
                body.as_bytes(),
            ),
        ),
        (now.to_string(), String::new()),
    ] {
        let req = axum::http::Request::post(&hook)
            .header("content-type", "application/json")
            .header("x-igny8-timestamp", ts)
            .header("x-igny8-signature", sig)
            .body(axum::body::Body::from(body.clone()))
            .unwrap();
        let r = app.raw(req).await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::UNAUTHORIZED, "INVALID_WEBHOOK_SIGNATURE"),
            "{}",
            r.body
        );
    }
    assert_eq!(
        app.state.feed.head().await.unwrap(),
        head,
        "nothing recorded"
    );
    app.stop().await;
}

/// What the proxy does to the first `times` requests whose request line
/// starts with `matches` (e.g. `POST /wp-json/wp/v2/posts`).
#[derive(Clone)]
struct Fault {
    matches: &'static str,
    times: usize,
    kind: FaultKind,
}

#[derive(Clone)]
enum FaultKind {
    /// Forwarded; WordPress's answer is read and lost (the connection held
    /// this long, then closed).
    Cut(Option<Duration>),
    /// Held this long before it is forwarded (WordPress slow to start it).
    Delay(Duration),
    /// Answered here with this status and headers; never forwarded.
    Answer(u16, &'static [(&'static str, &'static str)]),
}

impl Fault {
    fn new(matches: &'static str, times: usize, kind: FaultKind) -> Fault {
        Fault {
            matches,
            times,
            kind,
        }
    }
}

/// A TCP proxy in front of WordPress that forwards each request (one per
/// connection), applies its faults, and counts: post creates received, and
/// the most requests it had in flight at once.
struct Proxy {
    url: String,
    creates: Arc<AtomicUsize>,
    max_in_flight: Arc<AtomicUsize>,
}

struct Shared {
    up: String,
    faults: Vec<(Fault, AtomicUsize)>,
    creates: Arc<AtomicUsize>,
    in_flight: AtomicUsize,
    max_in_flight: Arc<AtomicUsize>,
}

/// The first `cut` creates of a post lose their answer (held until `hold` ends).
async fn proxy(upstream: &str, cut: usize, hold: Option<Duration>) -> Proxy {
    faulty(
        upstream,
        vec![Fault::new(
            "POST /wp-json/wp/v2/posts",
            cut,
            FaultKind::Cut(hold),
        )],
    )
    .await
}

async fn faulty(upstream: &str, faults: Vec<Fault>) -> Proxy {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let shared = Arc::new(Shared {
        up: upstream.trim_start_matches("http://").to_string(),
        faults: faults
            .into_iter()
            .map(|f| (f, AtomicUsize::new(0)))
            .collect(),
        creates: Arc::default(),
        in_flight: AtomicUsize::new(0),
        max_in_flight: Arc::default(),
    });
    let (creates, max_in_flight) = (shared.creates.clone(), shared.max_in_flight.clone());
    tokio::spawn(async move {
        loop {
            let Ok((client, _)) = l.accept().await else {
                return;
            };
            let shared = shared.clone();
            tokio::spawn(async move {
                let _ = relay(client, &shared).await;
            });
        }
    });
    Proxy {
        url,
        creates,
        max_in_flight,
    }
}

async fn relay(mut client: TcpStream, sh: &Shared) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16384];
    let head_end = loop {
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let len: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap_or(0))
        })
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let first = head.lines().next().unwrap_or("").to_string();
    if first.starts_with("POST /wp-json/wp/v2/posts ")
        || first.starts_with("POST /wp-json/wp/v2/posts?")
    {
        sh.creates.fetch_add(1, Ordering::SeqCst);
    }
    // The first fault that matches and has times left.
    let fault = sh
        .faults
        .iter()
        .find(|(f, used)| {
            (first.starts_with(&format!("{} ", f.matches))
                || first.starts_with(&format!("{}?", f.matches)))
                && used.fetch_add(1, Ordering::SeqCst) < f.times
        })
        .map(|(f, _)| f.kind.clone());
    if let Some(FaultKind::Answer(status, headers)) = &fault {
        let body = format!(
            "{{\"code\":\"proxy_{status}\",\"message\":\"injected by the test proxy\",\"data\":{{\"status\":{status}}}}}"
        );
        let mut out = format!(
            "HTTP/1.1 {status} Injected\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
            body.len()
        );
        for (k, v) in headers.iter() {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        out.push_str("\r\n");
        out.push_str(&body);
        client.write_all(out.as_bytes()).await?;
        return client.shutdown().await;
    }
    if let Some(FaultKind::Delay(d)) = &fault {
        tokio::time::sleep(*d).await;
    }
    let mut out: Vec<u8> = head
        .lines()
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:") && !l.is_empty())
        .flat_map(|l| [l.as_bytes(), b"\r\n"].concat())
        .collect();
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    out.extend_from_slice(&buf[head_end..]);
    let now = sh.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    sh.max_in_flight.fetch_max(now, Ordering::SeqCst);
    let answer = async {
        let mut server = TcpStream::connect(&sh.up).await?;
        server.write_all(&out).await?;
        let mut answer = Vec::new();
        server.read_to_end(&mut answer).await?;
        Ok::<_, std::io::Error>(answer)
    }
    .await;
    sh.in_flight.fetch_sub(1, Ordering::SeqCst);
    let answer = answer?;
    if let Some(FaultKind::Cut(hold)) = fault {
        // WordPress did it; the caller never hears of it.
        if let Some(h) = hold {
            tokio::time::sleep(h).await;
        }
        return Ok(());
    }
    client.write_all(&answer).await?;
    client.shutdown().await
}

#[tokio::test]
async fn an_answer_cut_after_the_post_was_made_never_makes_a_second_one() {
    let wp = Wp::plain();
    for app in TestApp::both().await {
        let m = app.mode;
        let tok = token();
        let o = app.signup("Cut").await;
        let (site, contents) = illustrated(&app, &o, &[format!("tents {tok}")], true).await;
        let content = &contents[0];
        // Every create's answer is lost twice: the publisher must find the post each time.
        let px = proxy(&wp.url, 2, None).await;
        let id = connect(
            &app,
            &o,
            &site,
            &Wp::new(px.url.clone(), wp.user.clone(), wp.pass.clone()),
            &wp.user,
            &wp.pass,
        )
        .await;
        let done = publish(
            &app,
            &o,
            &id,
            json!({"content_id": content, "status": "publish", "tags": [format!("t{tok}")]}),
        )
        .await;
        assert_eq!(done["state"], "SUCCESS", "{m}: {done}");
        let res = &done["result"]["result"];
        assert_eq!(
            res["action"], "adopted",
            "{m}: the post WordPress made was adopted: {res}"
        );
        assert_eq!(
            px.creates.load(Ordering::SeqCst),
            1,
            "{m}: the create was sent once; the search found it"
        );
        let posts = wp.posts_with(&tok).await;
        assert_eq!(posts.len(), 1, "{m}: one post: {posts:?}");
        assert_eq!(posts[0]["id"].as_u64(), res["post_id"].as_u64());
        assert_ne!(posts[0]["featured_media"], 0, "{m}");
        for sha in image_shas(&app, &o, content).await {
            assert_eq!(wp.media_named(&sha).await, 1, "{m}: one set of attachments");
        }
        let r = get_now(
            &app,
            &o.token,
            &format!("/api/v1/integration/integrations/{id}/sync_logs/?outcome=unknown"),
        )
        .await;
        assert_eq!(
            r.data()["count"],
            1,
            "{m}: the lost answer is logged as unknown: {}",
            r.body
        );
        // Publishing again updates it (no create at all).
        let done = publish(
            &app,
            &o,
            &id,
            json!({"content_id": content, "status": "publish"}),
        )
        .await;
        assert_eq!(done["result"]["result"]["action"], "updated", "{m}: {done}");
        assert_eq!(px.creates.load(Ordering::SeqCst), 1, "{m}");
        assert_eq!(wp.posts_with(&tok).await.len(), 1, "{m}");
        app.stop().await;
    }
}

/// The workers process SIGKILLed while its create is in flight (WordPress
/// made the post; the answer is held by the proxy): another workers process
/// takes the job over after the ack wait, finds the post and adopts it.
#[tokio::test]
async fn workers_killed_mid_publish_leave_one_post() {
    let wp = Wp::plain();
    let app = TestApp::postgres_nats_without_workers().await;
    let schema = app.schema.clone().unwrap();
    let s = &app.state.settings;
    let log = std::env::temp_dir().join(format!("{schema}-workers.log"));
    let worker = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_igny8"))
            .arg("workers")
            .env("DATABASE_URL", igny8_commands::testkit::pg_url())
            .env("IGNY8_DB_SCHEMA", &schema)
            .env("NATS_URL", igny8_commands::testkit::nats_url())
            .env("IGNY8_NATS_STREAM", &s.nats_stream)
            .env("IGNY8_NATS_PREFIX", &s.nats_prefix)
            .env("IGNY8_SECRET_KEYS", s.secret_keys.clone().unwrap())
            .env("IGNY8_JWT_KEYS", s.jwt_keys.clone().unwrap())
            .env("IGNY8_MEDIA_URL", s.media_url.clone().unwrap())
            .env("IGNY8_ALLOW_PRIVATE_FETCH", "true")
            .env("IGNY8_JOB_ACK_WAIT_SECS", "2")
            .env("IGNY8_WP_TIMEOUT_MS", "60000")
            .env("IGNY8_WP_SETTLE_MS", "300")
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap()
    };
    let mut first = worker();
    let tok = token();
    let o = app.signup("Killed").await;
    let (site, contents) = illustrated(&app, &o, &[format!("sleeping bags {tok}")], true).await;
    let content = &contents[0];
    let px = proxy(&wp.url, 1, Some(Duration::from_secs(120))).await;
    let id = connect(
        &app,
        &o,
        &site,
        &Wp::new(px.url.clone(), wp.user.clone(), wp.pass.clone()),
        &wp.user,
        &wp.pass,
    )
    .await;
    let job_id = start(
        &app,
        &o,
        &format!("/api/v1/integration/integrations/{id}/publish/"),
        json!({"content_id": content, "status": "publish"}),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while px.creates.load(Ordering::SeqCst) == 0 {
        assert!(
            Instant::now() < deadline,
            "the first worker never sent the create"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Let WordPress finish making the post, then SIGKILL the worker.
    let made = Instant::now() + Duration::from_secs(30);
    while wp.posts_with(&tok).await.is_empty() {
        assert!(Instant::now() < made, "WordPress never made the post");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    first.kill().unwrap();
    first.wait().unwrap();
    let mut second = worker();
    let done = wait_done(&app, &o.token, &job_id).await;
    second.kill().unwrap();
    second.wait().unwrap();
    let d = done.data();
    assert_eq!(d["state"], "SUCCESS", "{d}");
    assert_eq!(d["result"]["result"]["action"], "adopted", "{d}");
    assert_eq!(
        px.creates.load(Ordering::SeqCst),
        1,
        "the create was sent once"
    );
    let posts = wp.posts_with(&tok).await;
    assert_eq!(posts.len(), 1, "one post: {posts:?}");
    for sha in image_shas(&app, &o, content).await {
        assert_eq!(wp.media_named(&sha).await, 1, "one set of attachments");
    }
    let p = publication(&app, &o, content).await;
    assert_eq!(p["post_id"].as_u64(), posts[0]["id"].as_u64(), "{p}");
    // Publishing is not priced: no credit moved.
    assert_eq!(d["result"]["credits_charged"], 0, "{d}");
    app.stop().await;
}

/// The events of a publication, by type.
async fn publication_events(app: &TestApp, publication: &str) -> Vec<String> {
    app.state
        .feed
        .aggregate_events("publication", publication, 1, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event_type)
        .collect()
}

/// WordPress slow to start a create: the request reaches it only after our
/// timeout. The outcome is unknown (recorded, never a failure) and the
/// publisher asks WordPress a settle time later — finding the post the
/// late request made instead of creating a second one (an immediate search
/// followed by a second create would have made two).
#[tokio::test]
async fn a_create_wordpress_starts_late_is_found_and_never_made_twice() {
    let wp = Wp::plain();
    for app in TestApp::both_with(|s| igny8_gateway::config::Settings {
        wp_timeout_ms: 1500,
        wp_settle_ms: 1000,
        ..s
    })
    .await
    {
        let m = app.mode;
        let tok = token();
        let o = app.signup("Late").await;
        let (site, contents) = illustrated(&app, &o, &[format!("hammocks {tok}")], false).await;
        let content = &contents[0];
        // The create is held 1.8 s before WordPress sees it; we give up at 1.5 s.
        let px = faulty(
            &wp.url,
            vec![Fault::new(
                "POST /wp-json/wp/v2/posts",
                1,
                FaultKind::Delay(Duration::from_millis(1800)),
            )],
        )
        .await;
        let id = connect(
            &app,
            &o,
            &site,
            &Wp::new(px.url.clone(), wp.user.clone(), wp.pass.clone()),
            &wp.user,
            &wp.pass,
        )
        .await;
        let done = publish(
            &app,
            &o,
            &id,
            json!({"content_id": content, "status": "publish"}),
        )
        .await;
        assert_eq!(done["state"], "SUCCESS", "{m}: {done}");
        assert_eq!(done["result"]["result"]["action"], "adopted", "{m}: {done}");
        assert_eq!(
            px.creates.load(Ordering::SeqCst),
            1,
            "{m}: one create was sent"
        );
        let posts = wp.posts_with(&tok).await;
        assert_eq!(posts.len(), 1, "{m}: one post: {posts:?}");
        let p = publication(&app, &o, content).await;
        assert_eq!(p["state"], "published", "{m}: {p}");
        let events = publication_events(&app, p["id"].as_str().unwrap()).await;
        assert!(
            events.contains(&"PublishOutcomeUnknown".to_string())
                && !events.contains(&"PublishFailed".to_string()),
            "{m}: unknown, never failed: {events:?}"
        );
        let r = get_now(
            &app,
            &o.token,
            &format!("/api/v1/integration/integrations/{id}/sync_logs/?outcome=unknown"),
        )
        .await;
        assert_eq!(
            r.data()["results"][0]["wp_code"],
            "TIMEOUT",
            "{m}: {}",
            r.body
        );
        app.stop().await;
    }
}

/// Politeness and exactly-once under WordPress's other answers, through a
/// fault-injecting proxy: a 429 with `Retry-After` is waited out, a 503 to a
/// safe request is retried, a 503 to the create is an unknown outcome (asked
/// about, then sent again: one post), an upload whose answer is lost is
/// found in the media library (one attachment), and with one request
/// allowed per site, three publishes at once never have two in flight.
#[tokio::test]
async fn rate_limits_errors_lost_uploads_and_the_per_site_limit() {
    let wp = Wp::plain();
    for app in TestApp::both().await {
        let m = app.mode;
        let tok = token();
        let o = app.signup("Polite").await;
        let kws: Vec<String> = (0..3).map(|i| format!("lanterns {i} {tok}")).collect();
        let (site, contents) = illustrated(&app, &o, &kws, true).await;
        let px = faulty(
            &wp.url,
            vec![
                Fault::new(
                    "POST /wp-json/wp/v2/tags",
                    1,
                    FaultKind::Answer(429, &[("Retry-After", "1")]),
                ),
                Fault::new(
                    "POST /wp-json/wp/v2/categories",
                    1,
                    FaultKind::Answer(503, &[]),
                ),
                Fault::new("POST /wp-json/wp/v2/posts", 1, FaultKind::Answer(503, &[])),
                Fault::new("POST /wp-json/wp/v2/media", 1, FaultKind::Cut(None)),
            ],
        )
        .await;
        let id = connect(
            &app,
            &o,
            &site,
            &Wp::new(px.url.clone(), wp.user.clone(), wp.pass.clone()),
            &wp.user,
            &wp.pass,
        )
        .await;
        let r = app
            .req(
                &o.token,
                "PATCH",
                &format!("/api/v1/integration/integrations/{id}/"),
                Some(json!({"max_concurrent_requests": 1})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{m}: {}", r.body);
        let mut jobs = vec![];
        for c in &contents {
            jobs.push(
                start(
                    &app,
                    &o,
                    &format!("/api/v1/integration/integrations/{id}/publish/"),
                    json!({"content_id": c, "status": "publish",
                           "tags": [format!("tag {tok}")], "categories": [format!("cat {tok}")]}),
                )
                .await,
            );
        }
        for j in &jobs {
            let d = wait_done(&app, &o.token, j).await;
            assert_eq!(d.data()["state"], "SUCCESS", "{m}: {}", d.body);
        }
        assert_eq!(
            px.max_in_flight.load(Ordering::SeqCst),
            1,
            "{m}: one request at a time"
        );
        // One post per content; the first create's 503 was asked about, then sent again.
        assert_eq!(
            px.creates.load(Ordering::SeqCst),
            4,
            "{m}: three posts, one create sent twice"
        );
        let posts = wp.posts_with(&tok).await;
        assert_eq!(posts.len(), 3, "{m}: {posts:?}");
        for (kw, c) in kws.iter().zip(&contents) {
            let mine: Vec<&Value> = posts
                .iter()
                .filter(|p| {
                    p["title"]["raw"]
                        .as_str()
                        .unwrap_or("")
                        .contains(kw.as_str())
                })
                .collect();
            assert_eq!(mine.len(), 1, "{m}: one post for {kw}");
            for sha in image_shas(&app, &o, c).await {
                assert_eq!(
                    wp.media_named(&sha).await,
                    1,
                    "{m}: one attachment of {sha}"
                );
            }
        }
        // The request log tells each story.
        let r = get_now(
            &app,
            &o.token,
            &format!("/api/v1/integration/integrations/{id}/sync_logs/?page_size=500"),
        )
        .await;
        let log = r.data()["results"].as_array().unwrap().clone();
        let find = |path: &str, status: i64, outcome: &str| {
            log.iter()
                .find(|e| {
                    e["path"].as_str().unwrap_or("").starts_with(path)
                        && e["status"] == status
                        && e["outcome"] == outcome
                })
                .cloned()
                .unwrap_or_else(|| panic!("{m}: no {path} {status} {outcome} in {log:?}"))
        };
        let limited = find("/wp-json/wp/v2/tags", 429, "retried");
        find("/wp-json/wp/v2/categories", 503, "retried");
        find("/wp-json/wp/v2/posts", 503, "unknown");
        assert!(
            log.iter().any(|e| e["path"]
                .as_str()
                .unwrap_or("")
                .starts_with("/wp-json/wp/v2/media")
                && e["outcome"] == "unknown"),
            "{m}: the lost upload is logged unknown"
        );
        // The retry of the rate-limited tag came at least Retry-After later.
        let at =
            |e: &Value| chrono::DateTime::parse_from_rfc3339(e["at"].as_str().unwrap()).unwrap();
        let retried = log
            .iter()
            .filter(|e| {
                e["path"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("/wp-json/wp/v2/tags")
                    && e["attempt"] == 2
            })
            .map(at)
            .min()
            .expect("the tag's second attempt");
        assert!(
            retried - at(&limited) >= chrono::Duration::milliseconds(950),
            "{m}: waited {:?}",
            retried - at(&limited)
        );
        app.stop().await;
    }
}

/// Connections are listed per account and removed; a site's old WordPress
/// fields move into a connection (with their password, or without one:
/// then publishing answers NO_APP_PASSWORD until it is set); URLs on
/// loopback or private addresses are refused unless the operator allows them.
#[tokio::test]
async fn connections_listed_removed_moved_from_old_site_fields_and_private_addresses_refused() {
    use igny8_domain::tenancy::{SiteChanges, Tenant, TenantCommand};
    let wp = Wp::plain();
    for app in TestApp::both().await {
        let m = app.mode;
        let o = app.signup("Lister").await;
        let other = app.signup("Stranger").await;
        let (contents_site, contents) =
            illustrated(&app, &o, &[format!("kayaks {}", token())], false).await;
        let id = connect(&app, &o, &contents_site, &wp, &wp.user, &wp.pass).await;
        let r = get_now(&app, &o.token, "/api/v1/integration/integrations/").await;
        assert_eq!(r.data()["count"], 1, "{m}: {}", r.body);
        assert_eq!(r.data()["results"][0]["id"], id.as_str(), "{m}");
        let r = get_now(&app, &other.token, "/api/v1/integration/integrations/").await;
        assert_eq!(r.data()["count"], 0, "{m}: another account sees none");
        let r = app
            .req(
                &other.token,
                "DELETE",
                &format!("/api/v1/integration/integrations/{id}/"),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{m}");
        let r = app
            .req(
                &o.token,
                "DELETE",
                &format!("/api/v1/integration/integrations/{id}/"),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{m}: {}", r.body);
        let r = get_now(&app, &o.token, "/api/v1/integration/integrations/").await;
        assert_eq!(r.data()["count"], 0, "{m}: {}", r.body);
        let r = app
            .req(
                &o.token,
                "GET",
                &format!("/api/v1/integration/integrations/{id}/"),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{m}");
        let r = app
            .req(
                &o.token,
                "POST",
                &format!("/api/v1/integration/integrations/{id}/publish/"),
                Some(json!({"content_id": contents[0], "status": "draft"})),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::NOT_FOUND,
            "{m}: a removed connection publishes nothing"
        );

        // Two sites whose WordPress fields were stored the old way (on the site).
        let bus = &app.state.bus;
        // (Each of a new account: the free plan has one site.)
        let mut olds = vec![];
        let mut owners = vec![];
        for (name, with_password) in [("Old with password", true), ("Old without", false)] {
            let owner = app.signup(name).await;
            let r = app
                .req(
                    &owner.token,
                    "POST",
                    "/api/v1/auth/sites/",
                    Some(json!({"name": name})),
                )
                .await;
            let site: uuid::Uuid = r.data()["id"].as_str().unwrap().parse().unwrap();
            let ctx = igny8_commands::CommandContext {
                account_id: Some(owner.account_id.clone()),
                ..Default::default()
            };
            let sealed = with_password.then(|| {
                app.state
                    .keys
                    .secrets
                    .seal(wp.pass.as_bytes(), site.as_bytes())
            });
            bus.execute::<Tenant>(
                &owner.account_id,
                TenantCommand::UpdateSite {
                    site_id: site,
                    changes: SiteChanges {
                        wp_url: Some(Some(wp.url.clone())),
                        wp_username: Some(Some(wp.user.clone())),
                        wp_credential: Some(sealed),
                        ..Default::default()
                    },
                },
                &ctx,
            )
            .await
            .unwrap();
            olds.push(site);
            owners.push(owner);
        }
        let moved = igny8_commands::publishing::integrations::migrate_site_fields(
            bus,
            &app.state.keys.secrets,
        )
        .await
        .unwrap();
        assert_eq!(moved, 2, "{m}: both sites moved");
        assert_eq!(
            igny8_commands::publishing::integrations::migrate_site_fields(
                bus,
                &app.state.keys.secrets
            )
            .await
            .unwrap(),
            0,
            "{m}: moving again moves nothing"
        );
        let mut conns = vec![];
        for (owner, site) in owners.iter().zip(&olds) {
            let r = get_now(&app, &owner.token, "/api/v1/integration/integrations/").await;
            assert_eq!(r.data()["count"], 1, "{m}: {}", r.body);
            assert_eq!(r.data()["results"][0]["site_id"], site.to_string(), "{m}");
            conns.push(r.data()["results"][0]["id"].as_str().unwrap().to_string());
        }
        let (with, without) = (&conns[0], &conns[1]);
        let o = &owners[1];
        let t = app
            .req(
                &owners[0].token,
                "POST",
                &format!("/api/v1/integration/integrations/{with}/test-connection/"),
                None,
            )
            .await;
        assert_eq!(
            t.data()["ok"],
            true,
            "{m}: the moved password still opens: {}",
            t.body
        );
        let t = app
            .req(
                &o.token,
                "POST",
                &format!("/api/v1/integration/integrations/{without}/test-connection/"),
                None,
            )
            .await;
        assert_eq!(t.data()["error_code"], "NO_APP_PASSWORD", "{m}: {}", t.body);
        // A content of that site, published through the password-less connection.
        let r = app
            .req(
                &o.token,
                "POST",
                &format!("/api/v1/auth/sites/{}/sectors/", olds[1]),
                Some(json!({"name": "Boats"})),
            )
            .await;
        let sector = r.data()["id"].as_str().unwrap().to_string();
        let r = app
            .req(
                &o.token,
                "POST",
                "/api/v1/writer/tasks/",
                Some(json!({"sector_id": sector, "title": "Canoes", "primary_keyword": "canoes"})),
            )
            .await;
        let task = r.data()["id"].as_str().unwrap().to_string();
        let done = job(
            &app,
            o,
            "/api/v1/writer/tasks/auto_generate_content/",
            json!({"task_ids": [task]}),
        )
        .await;
        assert_eq!(done["state"], "SUCCESS", "{m}: {done}");
        let t = get_now(&app, &o.token, &format!("/api/v1/writer/tasks/{task}/")).await;
        let content = t.data()["content_id"].as_str().unwrap().to_string();
        let r = app
            .req(
                &o.token,
                "POST",
                &format!("/api/v1/integration/integrations/{without}/publish/"),
                Some(json!({"content_id": content, "status": "draft"})),
            )
            .await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::CONFLICT, "NO_APP_PASSWORD"),
            "{m}: {}",
            r.body
        );
        app.stop().await;
    }
    // Without the operator's permission, a WordPress on loopback is refused.
    let app = TestApp::embedded_with(igny8_gateway::config::Settings {
        allow_private_fetch: false,
        ..test_settings()
    })
    .await;
    let o = app.signup("Careful").await;
    let (site, _) = app.site_and_sector(&o).await;
    let id = connect(&app, &o, &site, &wp, &wp.user, &wp.pass).await;
    let t = app
        .req(
            &o.token,
            "POST",
            &format!("/api/v1/integration/integrations/{id}/test-connection/"),
            None,
        )
        .await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.body);
    assert_eq!(
        (t.data()["ok"].as_bool(), t.data()["error_code"].as_str()),
        (Some(false), Some("REFUSED_ADDRESS")),
        "{}",
        t.body
    );
    app.stop().await;
}
