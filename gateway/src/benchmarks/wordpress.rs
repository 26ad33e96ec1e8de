//! `igny8 bench --only wordpress`: 100 articles, each with a featured image
//! and two in-article images, published to a real WordPress (the test one
//! from `scripts/wordpress.sh start`: `IGNY8_TEST_WP_URL`,
//! `IGNY8_TEST_WP_USER`, `IGNY8_TEST_WP_APP_PASSWORD`) through the whole
//! stack — publish jobs on PostgreSQL + NATS, the publisher's bookkeeping
//! (recorded intents, request log, read-back check) — beside the same
//! WordPress requests made directly by a plain client in the same run: the
//! same terms, uploads (same bytes) and creates, and the same politeness
//! (at most 2 requests in flight to the site, the publisher's default).

use super::writer::{Stack, account, generate, tasks, wait_jobs};
use anyhow::{Context, bail};
use igny8_commands::{Db, StreamNames};
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

const ARTICLES: usize = 100;
/// Requests in flight to the site: the connection's default limit.
const IN_FLIGHT: usize = 2;

fn var(k: &str) -> anyhow::Result<String> {
    std::env::var(k).with_context(|| {
        format!("{k} is not set: the wordpress bench needs a WordPress (scripts/wordpress.sh start, then `. /tmp/igny8-wordpress/env`)")
    })
}

/// One article as the direct client sends it.
struct Article {
    title: String,
    excerpt: String,
    html: String,
    /// (bytes, mime, file URL in the HTML or None for the featured image, alt text)
    images: Vec<(Vec<u8>, String, Option<String>, String)>,
}

pub async fn run(
    pg: &Db,
    nats: &async_nats::Client,
    names: &StreamNames,
) -> anyhow::Result<String> {
    let (wp_url, wp_user, wp_pass) = (
        var("IGNY8_TEST_WP_URL")?,
        var("IGNY8_TEST_WP_USER")?,
        var("IGNY8_TEST_WP_APP_PASSWORD")?,
    );
    let mut out = String::new();
    writeln!(
        out,
        "\n### WordPress: publishing vs the same requests made directly\n"
    )?;
    let dir = std::env::temp_dir().join(format!("igny8-bench-wp-{}", std::process::id()));
    let stack = Stack::start_with(pg.clone(), Some(nats.clone()), Some(names), move |s| {
        s.data_dir = dir;
        s.allow_private_fetch = true;
    })?;
    let (token, _acct, sector) = account(&stack, 100_000).await?;
    let ids = tasks(&stack, &token, &sector, ARTICLES, 400).await?;
    let jobs = generate(&stack, &token, &ids).await?;
    wait_jobs(&stack, &token, &jobs, Duration::from_secs(300)).await?;
    let mut contents = vec![];
    for t in &ids {
        let d = stack
            .ok(
                Some(&token),
                "GET",
                &format!("/api/v1/writer/tasks/{t}/"),
                None,
            )
            .await?;
        contents.push(d["content_id"].as_str().context("content id")?.to_string());
    }
    let d = stack
        .ok(
            Some(&token),
            "POST",
            "/api/v1/writer/content/extract_image_prompts/",
            Some(json!({"content_ids": contents, "in_article_images": 2})),
        )
        .await?;
    wait_jobs(
        &stack,
        &token,
        &[d["job_id"].as_str().context("job")?.to_string()],
        Duration::from_secs(120),
    )
    .await?;
    let d = stack
        .ok(
            Some(&token),
            "POST",
            "/api/v1/writer/tasks/auto_generate_images/",
            Some(json!({"task_ids": ids, "size": "512x512", "provider": "offline"})),
        )
        .await?;
    wait_jobs(
        &stack,
        &token,
        &[d["job_id"].as_str().context("job")?.to_string()],
        Duration::from_secs(300),
    )
    .await?;

    // What the direct client sends: the same articles, the same bytes.
    let media = stack.state.media.clone().context("media storage")?;
    let mut articles = vec![];
    for c in &contents {
        let head = stack.state.feed.head().await?;
        let d = stack
            .ok(
                Some(&token),
                "GET",
                &format!("/api/v1/writer/content/{c}/?min_position={head}"),
                None,
            )
            .await?;
        let imgs = stack
            .ok(
                Some(&token),
                "GET",
                &format!("/api/v1/writer/images/?content_id={c}&min_position={head}"),
                None,
            )
            .await?;
        let mut images = vec![];
        for i in imgs["results"].as_array().cloned().unwrap_or_default() {
            let sha = i["sha256"].as_str().context("sha")?;
            let bytes = media.get(sha).await?.context("image bytes")?;
            let in_html = (i["slot"].as_i64() != Some(0)).then(|| {
                format!(
                    "/api/v1/writer/images/{}/file",
                    i["id"].as_str().unwrap_or("")
                )
            });
            images.push((
                bytes.to_vec(),
                i["mime_type"].as_str().unwrap_or("image/png").to_string(),
                in_html,
                i["alt_text"].as_str().unwrap_or("").to_string(),
            ));
        }
        if images.len() != 3 {
            bail!("content {c} has {} images, not 3", images.len());
        }
        articles.push(Article {
            title: format!("Direct {}", d["title"].as_str().unwrap_or("")),
            excerpt: d["meta_description"].as_str().unwrap_or("").to_string(),
            html: d["html_content"].as_str().unwrap_or("").to_string(),
            images,
        });
    }

    // Ours: connect, then 100 publish jobs at once, until the last is done.
    let site = stack
        .ok(Some(&token), "GET", "/api/v1/auth/sites/", None)
        .await?["results"][0]["id"]
        .as_str()
        .context("site")?
        .to_string();
    let integ = stack
        .ok(Some(&token), "POST", "/api/v1/integration/integrations/",
            Some(json!({"site_id": site, "wp_url": wp_url, "wp_username": wp_user, "wp_app_password": wp_pass})))
        .await?["id"]
        .as_str()
        .context("integration")?
        .to_string();
    let t0 = Instant::now();
    let mut pubs = vec![];
    for (i, c) in contents.iter().enumerate() {
        let d = stack
            .ok(Some(&token), "POST", &format!("/api/v1/integration/integrations/{integ}/publish/"),
                Some(json!({"content_id": c, "status": "publish", "categories": ["Bench"], "tags": ["bench", format!("bench {i}")]})))
            .await?;
        pubs.push(d["job_id"].as_str().context("job")?.to_string());
    }
    wait_jobs(&stack, &token, &pubs, Duration::from_secs(1200)).await?;
    let ours = t0.elapsed().as_secs_f64();
    let db = stack.state.bus.db();
    let requests: i64 = igny8_commands::on_db!(db, p => sqlx::query_scalar(
        "SELECT count(*) FROM wp_requests WHERE integration_id = $1").bind(&integ).fetch_one(p).await?);
    let published: i64 = igny8_commands::on_db!(db, p => sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE event_type = 'PostPublished' AND aggregate_id IN (SELECT publication_id FROM rm_publications WHERE integration_id = $1)")
        .bind(&integ).fetch_one(p).await?);
    stack.stop().await;
    if published != ARTICLES as i64 {
        bail!("{published} posts published for {ARTICLES}");
    }

    // Direct: the same requests from a plain client, 2 articles at a time.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()?;
    let ctx = Arc::new((
        http,
        wp_url.trim_end_matches('/').to_string(),
        wp_user,
        wp_pass,
    ));
    let t0 = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    let queue = Arc::new(tokio::sync::Mutex::new(
        articles.into_iter().enumerate().collect::<Vec<_>>(),
    ));
    for _ in 0..IN_FLIGHT {
        let (ctx, queue) = (ctx.clone(), queue.clone());
        set.spawn(async move {
            let mut sent = 0usize;
            loop {
                let Some((i, a)) = queue.lock().await.pop() else {
                    return Ok::<usize, anyhow::Error>(sent);
                };
                sent += direct(&ctx, i, a).await?;
            }
        });
    }
    let mut direct_requests = 0;
    while let Some(r) = set.join_next().await {
        direct_requests += r??;
    }
    let direct_wall = t0.elapsed().as_secs_f64();
    writeln!(
        out,
        "| measurement | figure | baseline (same run) | ratio | target |"
    )?;
    writeln!(out, "|---|---|---|---|---|")?;
    writeln!(
        out,
        "| {ARTICLES} articles × (featured + 2 in-article images) + 1 category + 2 tags, published through the API (PostgreSQL + NATS, 100 jobs at once, ≤ {IN_FLIGHT} requests in flight to the site), POST → last job done | {ours:.2} s ({requests} WordPress requests) | direct client, same requests and bytes, {IN_FLIGHT} in flight: {direct_wall:.2} s ({direct_requests} requests) | **{:.2}×** | ≤ 1.2× |",
        ours / direct_wall
    )?;
    Ok(out)
}

/// One article by hand: terms, three uploads, the post, and a read-back
/// (as the publisher checks what WordPress stored). The requests sent.
async fn direct(
    ctx: &(reqwest::Client, String, String, String),
    i: usize,
    a: Article,
) -> anyhow::Result<usize> {
    let (http, base, user, pass) = ctx;
    let url = |r: &str| format!("{base}/wp-json{r}");
    let mut n = 0;
    let mut terms = vec![];
    for (tax, name) in [
        ("categories", "Bench direct".to_string()),
        ("tags", "bench direct".to_string()),
        ("tags", format!("bench direct {i}")),
    ] {
        n += 1;
        let res = http
            .post(url(&format!("/wp/v2/{tax}")))
            .basic_auth(user, Some(pass))
            .json(&json!({"name": name}))
            .send()
            .await?;
        let v: Value = res.json().await?;
        let id = v["id"]
            .as_u64()
            .or_else(|| v["data"]["term_id"].as_u64())
            .context("term id")?;
        terms.push((tax, id));
    }
    let mut html = a.html;
    let mut featured = 0;
    for (k, (bytes, mime, in_html, alt)) in a.images.into_iter().enumerate() {
        n += 1;
        let res = http
            .post(url(&format!("/wp/v2/media?alt_text={}", urlencode(&alt))))
            .basic_auth(user, Some(pass))
            .header("content-type", mime)
            .header(
                "content-disposition",
                format!("attachment; filename=\"direct-{i}-{k}.png\""),
            )
            .body(bytes)
            .send()
            .await?;
        let v: Value = res.json().await?;
        let src = v["source_url"].as_str().context("media url")?.to_string();
        match in_html {
            Some(file) => html = html.replace(&file, &src),
            None => featured = v["id"].as_u64().unwrap_or(0),
        }
    }
    let cats: Vec<u64> = terms
        .iter()
        .filter(|t| t.0 == "categories")
        .map(|t| t.1)
        .collect();
    let tags: Vec<u64> = terms
        .iter()
        .filter(|t| t.0 == "tags")
        .map(|t| t.1)
        .collect();
    n += 1;
    let res = http
        .post(url("/wp/v2/posts?context=edit"))
        .basic_auth(user, Some(pass))
        .json(
            &json!({"title": a.title, "content": html, "excerpt": a.excerpt, "status": "publish",
                      "categories": cats, "tags": tags, "featured_media": featured}),
        )
        .send()
        .await?;
    let v: Value = res.json().await?;
    let id = v["id"].as_u64().context("post id")?;
    n += 1;
    http.get(url(&format!("/wp/v2/posts/{id}?context=edit")))
        .basic_auth(user, Some(pass))
        .send()
        .await?
        .error_for_status()?;
    Ok(n)
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
