//! `igny8 bench --only writer`: articles end to end over the HTTP API, with
//! the whole process in-process (router, projections, job workers; relay
//! and JetStream in the scale-out mode).
//!
//! - 200 articles of 1,500 words through the OpenAI-compatible path
//!   against a local stub that answers each call after 500 ms: the wall
//!   time from the first POST until both jobs have finished, beside the
//!   ideal (calls × 0.5 s ÷ 16, the per-account concurrency).
//! - 1,000 articles with the offline provider, from the first POST until
//!   every one is listable, on the embedded default (SQLite, in-process
//!   feed) and on PostgreSQL + NATS.
//!
//! Each run checks that every article is stored once and the credits
//! charged are exactly the sum of the articles' prices.

use crate::app::router;
use crate::config::Settings;
use crate::state::AppState;
use anyhow::{Context, bail};
use axum::body::Body;
use axum::http::Request;
use igny8_commands::{Db, StreamNames};
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tower::ServiceExt;

/// Milliseconds the stub provider takes per call.
const STUB_DELAY_MS: u64 = 500;
const CONCURRENCY: usize = 16;

pub(super) struct Stack {
    pub(super) state: AppState,
    pub(super) router: axum::Router,
    stop: watch::Sender<bool>,
    tasks: JoinSet<anyhow::Result<()>>,
}

impl Stack {
    fn start(
        db: Db,
        nats: Option<async_nats::Client>,
        names: Option<&StreamNames>,
    ) -> anyhow::Result<Self> {
        Self::start_with(db, nats, names, |_| {})
    }

    /// With settings changed by `tweak`.
    pub(super) fn start_with(
        db: Db,
        nats: Option<async_nats::Client>,
        names: Option<&StreamNames>,
        tweak: impl FnOnce(&mut Settings),
    ) -> anyhow::Result<Self> {
        let mut s = Settings {
            jwt_keys: Some(igny8_commands::secrets::Keyring::generate("bench-jwt").to_spec()),
            secret_keys: Some(igny8_commands::secrets::Keyring::generate("bench-sec").to_spec()),
            rate_per_minute: 10_000_000,
            ai_max_concurrent: 64,
            ai_max_concurrent_per_account: CONCURRENCY,
            ai_timeout_ms: 30_000,
            job_ack_wait_secs: 60,
            ..Settings::default()
        };
        if let Some(n) = names {
            s.nats_stream = n.stream.clone();
            s.nats_prefix = n.prefix.clone();
        }
        tweak(&mut s);
        let state = AppState::new(db.clone(), nats.clone(), s.clone())?;
        let (stop, rx) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let health = igny8_commands::Health::new();
        crate::runtime::spawn_projections(&mut tasks, &db, &state.feed, &nats, &s, &health, &rx);
        crate::runtime::spawn_job_workers(
            &mut tasks,
            &state.bus,
            &state.keys.secrets,
            &nats,
            &s,
            &health,
            &rx,
        );
        if let Some(c) = &nats {
            crate::runtime::spawn_relay(&mut tasks, &db, &state.feed, c, &s, &health, &rx);
        }
        Ok(Stack {
            router: router(state.clone()),
            state,
            stop,
            tasks,
        })
    }

    async fn call(
        &self,
        token: Option<&str>,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", "application/json");
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let req = req.body(match body {
            Some(b) => Body::from(b.to_string()),
            None => Body::empty(),
        })?;
        let res = self.router.clone().oneshot(req).await?;
        let status = res.status().as_u16();
        let bytes = axum::body::to_bytes(res.into_body(), usize::MAX).await?;
        Ok((
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        ))
    }

    pub(super) async fn ok(
        &self,
        token: Option<&str>,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let (status, v) = self.call(token, method, path, body).await?;
        if !(200..300).contains(&status) {
            bail!("{method} {path}: {status} {v}");
        }
        Ok(v["data"].clone())
    }

    pub(super) async fn stop(mut self) {
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
    }
}

/// An account with enough credits, a site and a sector: (token, account id, sector id).
pub(super) async fn account(
    stack: &Stack,
    credits: i64,
) -> anyhow::Result<(String, String, String)> {
    let email = format!("{}@example.com", uuid::Uuid::new_v4());
    let d = stack
        .ok(
            None,
            "POST",
            "/api/v1/auth/signup/",
            Some(json!({"email": email, "password": "correct horse", "account_name": "Bench"})),
        )
        .await?;
    let token = d["access_token"].as_str().context("token")?.to_string();
    let account = d["account"]["id"].as_str().context("account")?.to_string();
    let ctx = igny8_commands::CommandContext {
        account_id: Some(account.clone()),
        actor: "bench".into(),
        ..Default::default()
    };
    igny8_commands::billing::grant_credits(
        &stack.state.bus,
        account.parse()?,
        credits * igny8_domain::billing::MILLI,
        "bench".into(),
        &ctx,
    )
    .await?;
    let site = stack
        .ok(
            Some(&token),
            "POST",
            "/api/v1/auth/sites/",
            Some(json!({"name": "Blog"})),
        )
        .await?;
    let site = site["id"].as_str().context("site")?.to_string();
    let sector = stack
        .ok(
            Some(&token),
            "POST",
            &format!("/api/v1/auth/sites/{site}/sectors/"),
            Some(json!({"name": "Travel"})),
        )
        .await?;
    Ok((
        token,
        account,
        sector["id"].as_str().context("sector")?.to_string(),
    ))
}

pub(super) async fn tasks(
    stack: &Stack,
    token: &str,
    sector: &str,
    n: usize,
    words: u32,
) -> anyhow::Result<Vec<String>> {
    let mut ids = vec![];
    for i in 0..n {
        let d = stack
            .ok(Some(token), "POST", "/api/v1/writer/tasks/", Some(json!({
                "sector_id": sector, "title": format!("Article number {i}"), "primary_keyword": format!("bench topic {i}"),
                "target_word_count": words, "content_type": "guide",
                "outline": [{"heading": "One", "level": 2}, {"heading": "Two", "level": 2}, {"heading": "Three", "level": 2}, {"heading": "Four", "level": 2}]})))
            .await?;
        ids.push(d["id"].as_str().context("task id")?.to_string());
    }
    Ok(ids)
}

/// POST the content jobs (100 tasks each): their ids.
pub(super) async fn generate(
    stack: &Stack,
    token: &str,
    tasks: &[String],
) -> anyhow::Result<Vec<String>> {
    let mut jobs = vec![];
    for chunk in tasks.chunks(100) {
        let d = stack
            .ok(
                Some(token),
                "POST",
                "/api/v1/writer/tasks/auto_generate_content/",
                Some(json!({"task_ids": chunk})),
            )
            .await?;
        jobs.push(d["job_id"].as_str().context("job id")?.to_string());
    }
    Ok(jobs)
}

pub(super) async fn wait_jobs(
    stack: &Stack,
    token: &str,
    jobs: &[String],
    limit: Duration,
) -> anyhow::Result<f64> {
    let start = Instant::now();
    let mut charged = 0.0;
    for j in jobs {
        loop {
            let d = stack
                .ok(
                    Some(token),
                    "GET",
                    &format!("/api/v1/system/settings/task_progress/{j}/"),
                    None,
                )
                .await?;
            match d["state"].as_str() {
                Some("SUCCESS") => {
                    charged += d["result"]["credits_charged"].as_f64().unwrap_or(0.0);
                    break;
                }
                Some("FAILURE") | Some("CANCELLED") => bail!("job {j} ended as {}", d),
                _ => {}
            }
            if start.elapsed() > limit {
                bail!("job {j} did not finish within {limit:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    Ok(charged)
}

/// Wait until the content list counts `n`.
async fn wait_listed(stack: &Stack, token: &str, n: i64, limit: Duration) -> anyhow::Result<()> {
    let start = Instant::now();
    loop {
        let d = stack
            .ok(
                Some(token),
                "GET",
                "/api/v1/writer/content/?page_size=1",
                None,
            )
            .await?;
        if d["count"].as_i64() == Some(n) {
            return Ok(());
        }
        if start.elapsed() > limit {
            bail!("{} of {n} articles listed after {limit:?}", d["count"]);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Every article stored once, and the charges exactly their prices.
async fn check(
    stack: &Stack,
    token: &str,
    account: &str,
    n: i64,
    charged: f64,
) -> anyhow::Result<String> {
    let db = stack.state.bus.db();
    let versions: i64 = igny8_commands::on_db!(db, p => sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE event_type = 'ContentVersionAdded' AND account_id = $1")
        .bind(account).fetch_one(p).await?);
    let mut expected = 0.0;
    let mut page = 1;
    loop {
        let d = stack
            .ok(
                Some(token),
                "GET",
                &format!("/api/v1/writer/content/?page_size=500&page={page}"),
                None,
            )
            .await?;
        let rows = d["results"].as_array().cloned().unwrap_or_default();
        for r in &rows {
            expected += (r["word_count"].as_f64().unwrap_or(0.0) / 500.0).ceil();
        }
        if rows.len() < 500 {
            break;
        }
        page += 1;
    }
    let credits = stack
        .ok(Some(token), "GET", "/api/v1/billing/credits/", None)
        .await?;
    let reserved = credits["reserved"].as_f64().unwrap_or(-1.0);
    if versions != n || (expected - charged).abs() > 1e-9 || reserved != 0.0 {
        bail!(
            "{versions} versions for {n} articles; charged {charged} for {expected} expected; {reserved} still reserved"
        );
    }
    Ok(format!(
        "{versions} versions for {n} articles, {charged} credits charged = the sum of the articles' prices, 0 reserved"
    ))
}

/// The stub: `/v1/chat/completions` after [`STUB_DELAY_MS`], an article part
/// of the words asked for.
async fn stub() -> anyhow::Result<(String, tokio::task::JoinHandle<()>)> {
    async fn answer(axum::Json(body): axum::Json<Value>) -> axum::Json<Value> {
        tokio::time::sleep(Duration::from_millis(STUB_DELAY_MS)).await;
        let user = body["messages"][1]["content"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let words: usize = user
            .split("Write about ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(500);
        let headings: Vec<&str> = user
            .lines()
            .filter(|l| l.starts_with("## "))
            .map(|l| l.trim_start_matches("## "))
            .collect();
        let per = words / (headings.len() + 1).max(1);
        let para = format!("<p>{}</p>", vec!["word"; per].join(" "));
        let sections: Vec<Value> = headings
            .iter()
            .map(|h| json!({"heading": h, "level": 2, "html": para}))
            .collect();
        let content = json!({"title": "Bench topic article", "meta_title": "Bench topic", "meta_description": "About the bench topic.",
                             "intro_html": para, "sections": sections});
        axum::Json(
            json!({"id": "x", "object": "chat.completion", "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content.to_string()}}],
            "usage": {"prompt_tokens": 200, "completion_tokens": 2000, "total_tokens": 2200}}),
        )
    }
    let app = axum::Router::new().route("/v1/chat/completions", axum::routing::post(answer));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/v1", listener.local_addr()?);
    let handle = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((url, handle))
}

pub async fn run(
    pg: &Db,
    nats: &async_nats::Client,
    names: &StreamNames,
) -> anyhow::Result<String> {
    let mut out = String::new();
    writeln!(out, "\n### Writer: articles end to end over HTTP\n")?;

    // 1. The OpenAI-compatible path against a 500 ms stub, PostgreSQL + NATS.
    let stack = Stack::start(pg.clone(), Some(nats.clone()), Some(names))?;
    let (token, acct, sector) = account(&stack, 5_000).await?;
    let (url, server) = stub().await?;
    stack
        .ok(
            Some(&token),
            "PUT",
            "/api/v1/system/settings/integrations/openai/",
            Some(json!({"base_url": url, "api_key": "sk-bench-0000"})),
        )
        .await?;
    let n = 200;
    let ids = tasks(&stack, &token, &sector, n, 1500).await?;
    let t0 = Instant::now();
    let jobs = generate(&stack, &token, &ids).await?;
    let charged = wait_jobs(&stack, &token, &jobs, Duration::from_secs(600)).await?;
    let wall = t0.elapsed().as_secs_f64();
    wait_listed(&stack, &token, n as i64, Duration::from_secs(60)).await?;
    let verdict = check(&stack, &token, &acct, n as i64, charged).await?;
    let calls = n as f64; // 1,500 words: one call per article
    let ideal = calls * STUB_DELAY_MS as f64 / 1000.0 / CONCURRENCY as f64;
    server.abort();
    stack.stop().await;
    writeln!(
        out,
        "| measurement | figure | ideal / baseline (same run) | ratio | target |"
    )?;
    writeln!(out, "|---|---|---|---|---|")?;
    writeln!(
        out,
        "| {n} articles of 1,500 words, OpenAI-compatible stub answering after {STUB_DELAY_MS} ms, concurrency {CONCURRENCY}, PostgreSQL + NATS (POST → both jobs done) | {wall:.2} s | ideal {ideal:.2} s ({calls} calls × 0.5 s ÷ {CONCURRENCY}) | **{:.0}%** of ideal | ≥ 80% |",
        ideal / wall * 100.0
    )?;
    writeln!(out, "| check | {verdict} | | | |")?;

    // 2. 1,000 offline articles until listable: embedded, then PostgreSQL + NATS.
    let n = 1000;
    let dir = std::env::temp_dir().join(format!("igny8-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let sqlite = Db::connect(
        &format!("sqlite://{}", dir.join("bench.db").display()),
        &igny8_commands::db::DbOptions::default(),
    )
    .await?;
    sqlite.migrate().await?;
    for (mode, db, nats) in [
        ("embedded (SQLite, in-process feed)", sqlite.clone(), None),
        ("PostgreSQL + NATS", pg.clone(), Some(nats.clone())),
    ] {
        let stack = Stack::start(db, nats.clone(), nats.as_ref().map(|_| names))?;
        let (token, acct, sector) = account(&stack, 10_000).await?;
        let ids = tasks(&stack, &token, &sector, n, 1500).await?;
        let t0 = Instant::now();
        let jobs = generate(&stack, &token, &ids).await?;
        wait_listed(&stack, &token, n as i64, Duration::from_secs(900)).await?;
        let listed = t0.elapsed().as_secs_f64();
        let charged = wait_jobs(&stack, &token, &jobs, Duration::from_secs(300)).await?;
        let verdict = check(&stack, &token, &acct, n as i64, charged).await?;
        stack.stop().await;
        let target = if nats.is_none() { "≤ 20 s" } else { "—" };
        writeln!(
            out,
            "| {n} offline articles of 1,500 words, {mode} (POST → every one listable) | {listed:.2} s | {:.0} articles/s | | {target} |",
            n as f64 / listed
        )?;
        writeln!(out, "| check | {verdict} | | | |")?;
    }
    sqlite.close().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(out)
}
