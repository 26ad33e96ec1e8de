//! `igny8 bench --only images`: images end to end over the HTTP API (the
//! whole stack in-process; relay and JetStream in the scale-out mode).
//!
//! - 500 images through the Runware path against a local stub that answers
//!   each task after 1 s with a 1024×1024 PNG: the wall time from the POST
//!   until the job has finished, beside the ideal (500 × 1 s ÷ 16, the
//!   per-account concurrency); every image stored once, charged once.
//! - Serving: `GET /api/v1/writer/images/{id}/file` of a 500 KB image
//!   (through the router, with the caller's token: authentication, the
//!   read model, media storage) beside reading the same file straight from
//!   disk, both at 16 at a time, in the same run.

use super::pct;
use super::writer::{Stack, account, generate, tasks, wait_jobs};
use anyhow::{Context, bail};
use axum::body::Body;
use axum::http::Request;
use igny8_commands::{Db, StreamNames};
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower::ServiceExt;

const STUB_DELAY: Duration = Duration::from_secs(1);
const CONCURRENCY: usize = 16;
const IMAGES: usize = 500;

/// 16 distinct 1024×1024 PNGs the stub hands out in turn.
fn stub_pngs() -> Vec<Vec<u8>> {
    (0..16)
        .map(|i| igny8_workers::images::offline::png(&format!("stub image {i}"), 1024, 1024))
        .collect()
}

/// Runware's `POST /v1` after [`STUB_DELAY`]: one PNG per task, base64.
async fn stub() -> anyhow::Result<(String, tokio::task::JoinHandle<()>)> {
    use base64::Engine;
    let pngs: Arc<Vec<String>> = Arc::new(
        stub_pngs()
            .iter()
            .map(|p| base64::engine::general_purpose::STANDARD.encode(p))
            .collect(),
    );
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let app = axum::Router::new().route(
        "/v1",
        axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
            let (pngs, next) = (pngs.clone(), next.clone());
            async move {
                tokio::time::sleep(STUB_DELAY).await;
                let task = &body[0];
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % pngs.len();
                axum::Json(json!({"data": [{"taskType": "imageInference", "taskUUID": task["taskUUID"],
                    "imageUUID": uuid::Uuid::new_v4(), "imageBase64Data": pngs[i], "cost": 0.0038}]}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let handle = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((url, handle))
}

/// A PNG of about 500 KB (noise compresses to about its raw size).
fn noise_png(side: u32) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let img = image::RgbImage::from_fn(side, side, |_, _| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        image::Rgb([x as u8, (x >> 8) as u8, (x >> 16) as u8])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    let _ = img.write_to(&mut out, image::ImageFormat::Png);
    out.into_inner()
}

pub async fn run(
    pg: &Db,
    nats: &async_nats::Client,
    names: &StreamNames,
) -> anyhow::Result<String> {
    let mut out = String::new();
    writeln!(out, "\n### Images: Runware path and file serving\n")?;
    let dir = std::env::temp_dir().join(format!("igny8-bench-media-{}", std::process::id()));
    let data_dir = dir.clone();
    let stack = Stack::start_with(pg.clone(), Some(nats.clone()), Some(names), move |s| {
        s.data_dir = data_dir;
        s.allow_private_fetch = true;
    })?;
    let (token, acct, sector) = account(&stack, 10_000).await?;
    // 100 articles × (1 featured + 4 in-article) prompts = 500, offline.
    let ids = tasks(&stack, &token, &sector, IMAGES / 5, 600).await?;
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
            Some(json!({"content_ids": contents, "in_article_images": 4})),
        )
        .await?;
    wait_jobs(
        &stack,
        &token,
        &[d["job_id"].as_str().context("job")?.to_string()],
        Duration::from_secs(120),
    )
    .await?;
    let mut prompts = vec![];
    let mut page = 1;
    loop {
        let head = stack.state.feed.head().await?;
        let d = stack
            .ok(
                Some(&token),
                "GET",
                &format!(
                    "/api/v1/writer/image-prompts/?page_size=200&page={page}&min_position={head}"
                ),
                None,
            )
            .await?;
        let rows = d["results"].as_array().cloned().unwrap_or_default();
        prompts.extend(
            rows.iter()
                .filter_map(|r| r["id"].as_str().map(str::to_string)),
        );
        if rows.len() < 200 {
            break;
        }
        page += 1;
    }
    if prompts.len() != IMAGES {
        bail!("{} prompts for {IMAGES} images", prompts.len());
    }
    let (url, server) = stub().await?;
    stack
        .ok(
            Some(&token),
            "PUT",
            "/api/v1/system/settings/integrations/runware/",
            Some(json!({"base_url": url, "api_key": "rw-bench-0000000000"})),
        )
        .await?;
    let before = stack
        .ok(Some(&token), "GET", "/api/v1/billing/credits/", None)
        .await?;
    let t0 = Instant::now();
    let d = stack
        .ok(
            Some(&token),
            "POST",
            "/api/v1/writer/images/generate/",
            Some(json!({"image_prompt_ids": prompts, "provider": "runware", "size": "1024x1024"})),
        )
        .await?;
    let job = d["job_id"].as_str().context("job")?.to_string();
    let charged = wait_jobs(
        &stack,
        &token,
        std::slice::from_ref(&job),
        Duration::from_secs(600),
    )
    .await?;
    let wall = t0.elapsed().as_secs_f64();
    server.abort();
    let db = stack.state.bus.db();
    let stored: i64 = igny8_commands::on_db!(db, p => sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE event_type = 'ImageStored' AND account_id = $1")
        .bind(&acct).fetch_one(p).await?);
    let distinct: i64 = igny8_commands::on_db!(db, p => sqlx::query_scalar(
        "SELECT count(DISTINCT aggregate_id) FROM events WHERE event_type = 'ImageStored' AND account_id = $1")
        .bind(&acct).fetch_one(p).await?);
    let after = stack
        .ok(Some(&token), "GET", "/api/v1/billing/credits/", None)
        .await?;
    let spent =
        before["balance"].as_f64().unwrap_or(0.0) - after["balance"].as_f64().unwrap_or(0.0);
    let objects = walk(&dir.join("media"));
    if stored != IMAGES as i64
        || distinct != IMAGES as i64
        || (spent - IMAGES as f64).abs() > 1e-9
        || charged != IMAGES as f64
    {
        bail!(
            "{stored} images stored ({distinct} prompts) for {IMAGES}; {spent} credits spent, {charged} charged"
        );
    }
    let ideal = IMAGES as f64 * STUB_DELAY.as_secs_f64() / CONCURRENCY as f64;
    writeln!(
        out,
        "| measurement | figure | ideal / baseline (same run) | ratio | target |"
    )?;
    writeln!(out, "|---|---|---|---|---|")?;
    writeln!(
        out,
        "| {IMAGES} images, Runware stub answering each task after 1 s with a 1024×1024 PNG, concurrency {CONCURRENCY}, PostgreSQL + NATS, media on local disk (POST → job done) | {wall:.2} s | ideal {ideal:.2} s ({IMAGES} × 1 s ÷ {CONCURRENCY}) | **{:.0}%** of ideal | ≥ 80% |",
        ideal / wall * 100.0
    )?;
    writeln!(
        out,
        "| check | {stored} ImageStored events, one per prompt; {spent} credits spent = {IMAGES} × 1; {objects} objects in media storage for the stub's 16 distinct PNGs (content-addressed) | | | |"
    )?;

    // Serving a 500 KB image: through the router vs straight from disk.
    let png = noise_png(409);
    let media = stack.state.media.clone().context("media storage")?;
    let sha = media.put(&png).await?;
    let image = uuid::Uuid::new_v4().to_string();
    let some_prompt = igny8_commands::on_db!(db, p => sqlx::query_scalar::<_, String>(
        "SELECT prompt_id FROM rm_image_prompts WHERE account_id = $1 LIMIT 1").bind(&acct).fetch_one(p).await?);
    // A read-model row for the file (the bench's only shortcut: the bytes
    // and the route are the real ones).
    igny8_commands::on_db!(db, p => sqlx::query(
        "INSERT INTO rm_images (image_id, prompt_id, account_id, site_id, sector_id, content_id, slot, job_id, sha256, mime_type,
            width, height, bytes, provider, model, quality, size, prompt, alt_text, cost_usd_micros, credits_milli, is_current, created_at)
         SELECT $1, prompt_id, account_id, site_id, sector_id, content_id, slot, $2, $3, 'image/png', 409, 409, $4, 'bench', 'bench',
            'basic', '409x409', 'noise', '', 0, 0, true, created_at FROM rm_image_prompts WHERE prompt_id = $5")
        .bind(&image).bind(&job).bind(&sha).bind(png.len() as i64).bind(&some_prompt).execute(p).await.map(|_| ())?);
    let path = dir.join("media/sha256").join(&sha[..2]).join(&sha);
    let n = 2000;
    let router = stack.router.clone();
    let (served, served_lat) = timed(n, {
        let (router, token, image) = (router.clone(), token.clone(), image.clone());
        move || {
            let (router, token, image) = (router.clone(), token.clone(), image.clone());
            async move {
                let req = Request::builder()
                    .uri(format!("/api/v1/writer/images/{image}/file"))
                    .header("authorization", format!("Bearer {token}"))
                    .body(Body::empty())?;
                let res = router.oneshot(req).await?;
                if res.status() != 200 {
                    bail!("file: {}", res.status());
                }
                let b = axum::body::to_bytes(res.into_body(), usize::MAX).await?;
                Ok(b.len())
            }
        }
    })
    .await?;
    let (disk, disk_lat) = timed(n, {
        let path = path.clone();
        move || {
            let path = path.clone();
            async move { Ok(tokio::fs::read(&path).await?.len()) }
        }
    })
    .await?;
    stack.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
    writeln!(
        out,
        "| GET …/images/{{id}}/file, {} KB PNG, {n} requests 16 at a time, one gateway (in-process router: token, read model, media) | {served:.0} req/s, p50 {:.2} ms, p99 {:.2} ms | disk read of the same file: {disk:.0} reads/s, p99 {:.2} ms | {:.1}× the disk read's time per file | — |",
        png.len() / 1024,
        pct(&served_lat, 0.5),
        pct(&served_lat, 0.99),
        pct(&disk_lat, 0.99),
        disk / served
    )?;
    Ok(out)
}

/// `n` calls of `f`, 16 at a time: calls per second and sorted latencies.
async fn timed<F, Fut>(n: usize, f: F) -> anyhow::Result<(f64, Vec<Duration>)>
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<usize>> + Send,
{
    let t0 = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    let per = n / CONCURRENCY;
    for _ in 0..CONCURRENCY {
        let f = f.clone();
        set.spawn(async move {
            let mut lat = Vec::with_capacity(per);
            for _ in 0..per {
                let s = Instant::now();
                f().await?;
                lat.push(s.elapsed());
            }
            Ok::<_, anyhow::Error>(lat)
        });
    }
    let mut all = vec![];
    while let Some(r) = set.join_next().await {
        all.extend(r??);
    }
    let secs = t0.elapsed().as_secs_f64();
    all.sort();
    Ok((all.len() as f64 / secs, all))
}

fn walk(p: &std::path::Path) -> usize {
    std::fs::read_dir(p)
        .map(|d| {
            d.flatten()
                .map(|e| {
                    if e.path().is_dir() {
                        walk(&e.path())
                    } else {
                        1
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}
