//! `igny8 bench`: the spine's figures, each beside a raw baseline measured in
//! the same run (these machines are noisy; ratios travel better than times).
//!
//! Needs DATABASE_URL and NATS_URL. Works in its own PostgreSQL schema and
//! its own JetStream stream, removed afterwards unless `--keep`.

pub mod automation;
pub mod clustering;
pub mod images;
pub mod keywords;
pub mod wordpress;
pub mod writer;

use crate::config::Settings;
use anyhow::{Context, bail};
use igny8_commands::billing::{grant_credits, open_account};
use igny8_commands::db::DbOptions;
use igny8_commands::{CommandBus, CommandContext, Db, Position, StreamNames};
use igny8_projections::billing::AccountsProjection;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use uuid::Uuid;

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Seconds per append measurement (each round measures both paths).
    #[arg(long, default_value_t = 5)]
    pub append_secs: u64,
    /// Interleaved rounds per writer count (the report gives medians).
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
    /// Writer counts for the append measurement.
    #[arg(long, default_value = "1,16", value_delimiter = ',')]
    pub writers: Vec<usize>,
    /// Offered load for the lag measurement (commands/s).
    #[arg(long, default_value_t = 500)]
    pub rate: u64,
    /// Seconds of offered load for the lag measurement.
    #[arg(long, default_value_t = 20)]
    pub lag_secs: u64,
    /// Events generated for the feed-read and rebuild measurement.
    #[arg(long, default_value_t = 1_000_000)]
    pub events: i64,
    /// Rows of the keyword CSV import measurement.
    #[arg(long, default_value_t = 100_000)]
    pub import_rows: usize,
    /// Keywords in the read table for the page query measurement.
    #[arg(long, default_value_t = 1_000_000)]
    pub page_rows: i64,
    /// Parts to run: append, lag, rebuild, keywords, writer, images, wordpress, automation (the last four not in the default set; wordpress needs IGNY8_TEST_WP_* from scripts/wordpress.sh).
    #[arg(
        long,
        default_value = "append,lag,rebuild,keywords",
        value_delimiter = ','
    )]
    pub only: Vec<String>,
    /// Also write the report (markdown) to this file.
    #[arg(long)]
    pub out: Option<std::path::PathBuf>,
    /// Keep the bench schema and stream afterwards.
    #[arg(long)]
    pub keep: bool,
}

fn ctx(id: Uuid) -> CommandContext {
    CommandContext {
        account_id: Some(id.to_string()),
        actor: "bench".into(),
        ..Default::default()
    }
}

/// The `p` percentile of sorted latencies, in milliseconds (nearest rank).
pub(super) fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

async fn machine(db: &Db, nats: &async_nats::Client) -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines().next().map(|l| {
                l.split_whitespace()
                    .nth(1)
                    .unwrap_or("0")
                    .parse::<u64>()
                    .unwrap_or(0)
            })
        })
        .unwrap_or(0);
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let pg: String = match db {
        Db::Postgres(p) => sqlx::query_scalar("SHOW server_version")
            .fetch_one(p)
            .await
            .unwrap_or_default(),
        Db::Sqlite(_) => "sqlite".into(),
    };
    format!(
        "{cores} cores ({cpu}), {:.1} GiB RAM, PostgreSQL {pg}, NATS {}, igny8 {} (release build: {})",
        mem as f64 / 1024.0 / 1024.0,
        nats.server_info().version,
        env!("CARGO_PKG_VERSION"),
        !cfg!(debug_assertions)
    )
}

pub async fn run(s: &Settings, a: BenchArgs) -> anyhow::Result<()> {
    let (Some(url), Some(nats_url)) = (&s.database_url, &s.nats_url) else {
        bail!("the benchmark runs on PostgreSQL + NATS: set DATABASE_URL and NATS_URL");
    };
    if cfg!(debug_assertions) {
        eprintln!(
            "warning: this is a debug build; figures are only meaningful from `cargo run --release -- bench`"
        );
    }
    let schema = format!("bench_{}", std::process::id());
    let admin = Db::connect(
        url,
        &DbOptions {
            max_connections: 1,
            schema: None,
        },
    )
    .await
    .context("PostgreSQL")?;
    let Db::Postgres(admin_pool) = &admin else {
        bail!("DATABASE_URL must be PostgreSQL")
    };
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .execute(admin_pool)
        .await?;
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(admin_pool)
        .await?;
    let db = Db::connect(
        url,
        &DbOptions {
            max_connections: 40,
            schema: Some(schema.clone()),
        },
    )
    .await?;
    db.migrate().await?;
    let client = async_nats::connect(nats_url.as_str())
        .await
        .context("NATS")?;
    let names = StreamNames {
        stream: schema.to_uppercase(),
        prefix: schema.clone(),
    };

    let mut report = String::new();
    writeln!(report, "Machine: {}", machine(&db, &client).await)?;
    writeln!(
        report,
        "Command: igny8 bench {}",
        std::env::args().skip(2).collect::<Vec<_>>().join(" ")
    )?;
    println!("{report}");
    let want = |p: &str| a.only.iter().any(|o| o == p);

    if want("append") {
        let section = append(&db, &a).await?;
        println!("{section}");
        report.push_str(&section);
    }
    if want("lag") {
        let section = lag(&db, &client, &names, &a).await?;
        println!("{section}");
        report.push_str(&section);
    }
    if want("rebuild") {
        let section = rebuild(&db, &a).await?;
        println!("{section}");
        report.push_str(&section);
    }
    if want("keywords") {
        let section = self::keywords::run(&db, a.import_rows, a.page_rows).await?;
        println!("{section}");
        report.push_str(&section);
    }
    if want("images") {
        let section = self::images::run(&db, &client, &names).await?;
        println!("{section}");
        report.push_str(&section);
    }
    if want("wordpress") {
        let section = self::wordpress::run(&db, &client, &names).await?;
        println!("{section}");
        report.push_str(&section);
    }
    if want("automation") {
        let section = self::automation::run(&db).await?;
        println!("{section}");
        report.push_str(&section);
    }
    if want("writer") {
        let section = self::writer::run(&db, &client, &names).await?;
        println!("{section}");
        report.push_str(&section);
    }
    if let Some(out) = &a.out {
        std::fs::write(out, &report).with_context(|| format!("writing {}", out.display()))?;
    }
    db.close().await;
    if !a.keep {
        let js = async_nats::jetstream::new(client.clone());
        let _ = js.delete_stream(&names.stream).await;
        sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            .execute(admin_pool)
            .await?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Append throughput: the real command path vs one-row INSERT transactions.

async fn append(db: &Db, a: &BenchArgs) -> anyhow::Result<String> {
    let Db::Postgres(pool) = db else {
        unreachable!()
    };
    for table in ["bench_raw", "bench_raw_announced"] {
        sqlx::query(&format!(
            "CREATE TABLE {table} (LIKE events INCLUDING DEFAULTS INCLUDING GENERATED INCLUDING INDEXES)"
        ))
        .execute(pool)
        .await?;
    }
    // The same table with the feed's appender announcement (migration 0004):
    // what announcing costs a raw INSERT, measured beside it.
    sqlx::query(
        "CREATE TRIGGER bench_announce BEFORE INSERT ON bench_raw_announced \
         FOR EACH STATEMENT EXECUTE FUNCTION igny8_announce_appender()",
    )
    .execute(pool)
    .await?;
    let mut out = format!(
        "\n### Append throughput (one event per command)\n\n{} interleaved rounds of {} s each (command path, raw baseline, raw with the appender announcement); medians, and the range of the per-round ratio.\n\n",
        a.rounds, a.append_secs
    );
    out.push_str("| writers | command path (commands/s) | raw INSERT, one row per transaction (rows/s) | ratio (median) | ratio (min–max) | raw INSERT with the announcement (rows/s) | announcement's share of raw (median) |\n|---|---|---|---|---|---|---|\n");
    let bus = CommandBus::new(db.clone());
    let secs = Duration::from_secs(a.append_secs);
    for &w in &a.writers {
        let mut ids = vec![];
        for i in 0..w {
            let id = Uuid::new_v4();
            open_account(&bus, id, format!("w{i}"), &ctx(id)).await?;
            ids.push(id);
        }
        let (mut cmd, mut raw, mut ratio) = (vec![], vec![], vec![]);
        let (mut announced, mut kept) = (vec![], vec![]);
        for _ in 0..a.rounds.max(1) {
            let c = append_commands(&bus, &ids, secs).await?;
            let r = append_raw(pool, "bench_raw", w, secs).await?;
            let n = append_raw(pool, "bench_raw_announced", w, secs).await?;
            cmd.push(c);
            raw.push(r);
            ratio.push(c / r);
            announced.push(n);
            kept.push(n / r);
        }
        let median = |v: &mut Vec<f64>| {
            v.sort_by(|x, y| x.total_cmp(y));
            v[v.len() / 2]
        };
        let (lo, hi) = (
            ratio.iter().cloned().fold(f64::MAX, f64::min),
            ratio.iter().cloned().fold(0.0, f64::max),
        );
        writeln!(
            out,
            "| {w} | {:.0} | {:.0} | {:.0}% | {:.0}–{:.0}% | {:.0} | {:.0}% |",
            median(&mut cmd),
            median(&mut raw),
            100.0 * median(&mut ratio),
            100.0 * lo,
            100.0 * hi,
            median(&mut announced),
            100.0 * median(&mut kept),
        )?;
    }
    Ok(out)
}

/// The command path: (cached or loaded) aggregate, decide, append, read back the position.
async fn append_commands(bus: &CommandBus, ids: &[Uuid], secs: Duration) -> anyhow::Result<f64> {
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = vec![];
    for &id in ids {
        let (bus, done) = (bus.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            while start.elapsed() < secs {
                grant_credits(&bus, id, 1, String::new(), &ctx(id)).await?;
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64())
}

/// The raw baseline: the same rows into an equivalent table (same columns,
/// defaults and indexes), one autocommit INSERT per row.
async fn append_raw(
    pool: &sqlx::PgPool,
    table: &'static str,
    writers: usize,
    secs: Duration,
) -> anyhow::Result<f64> {
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = vec![];
    for _ in 0..writers {
        let (pool, done) = (pool.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let id = Uuid::new_v4().to_string();
            let mut seq = 0i64;
            while start.elapsed() < secs {
                seq += 1;
                let payload = serde_json::json!({"CreditsGranted": {"amount": 1, "balance_after": seq, "reason": ""}});
                let meta = serde_json::json!({"account_id": id, "actor": "bench", "request_id": "", "correlation_id": "",
                    "causation_id": Uuid::new_v4().to_string(), "command_id": Uuid::new_v4().to_string(),
                    "occurred_at": chrono::Utc::now().to_rfc3339()});
                sqlx::query(&format!(
                    "INSERT INTO {table} (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
                     VALUES ('account', $1, $2, 'CreditsGranted', '1', $3, $4)"
                ))
                .bind(&id)
                .bind(seq)
                .bind(payload)
                .bind(meta)
                .execute(&pool)
                .await?;
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64())
}

// ---------------------------------------------------------------------------
// End-to-end lag at a fixed offered load vs raw NATS publish -> receive.

async fn lag(
    db: &Db,
    client: &async_nats::Client,
    names: &StreamNames,
    a: &BenchArgs,
) -> anyhow::Result<String> {
    let bus = CommandBus::new(db.clone());
    let js = async_nats::jetstream::new(client.clone());
    let (stop_tx, stop) = watch::channel(false);
    let (obs_tx, mut obs_rx) = mpsc::unbounded_channel();
    let relay = tokio::spawn(igny8_workers::relay::run(
        db.clone(),
        bus.feed(),
        js.clone(),
        names.clone(),
        igny8_commands::Health::new(),
        stop.clone(),
    ));
    let proj = tokio::spawn(igny8_projections::run_nats(
        db.clone(),
        js.clone(),
        names.clone(),
        Arc::new(AccountsProjection),
        igny8_commands::Health::new(),
        stop.clone(),
        Some(obs_tx),
    ));
    let mut ids = vec![];
    for i in 0..64 {
        let id = Uuid::new_v4();
        open_account(&bus, id, format!("lag{i}"), &ctx(id)).await?;
        ids.push(id);
    }
    // Let the pipeline settle before measuring.
    let head = bus.feed().head().await?;
    igny8_projections::wait_for(
        db,
        &bus.feed(),
        igny8_projections::billing::NAME,
        head,
        Duration::from_secs(30),
    )
    .await?;
    while obs_rx.try_recv().is_ok() {}

    let total = a.rate * a.lag_secs;
    let (commit_tx, mut commit_rx) = mpsc::unbounded_channel::<(i64, Instant)>();
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / a.rate as f64));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let offered_start = Instant::now();
    for i in 0..total {
        ticker.tick().await;
        let (bus, tx, id) = (bus.clone(), commit_tx.clone(), ids[i as usize % ids.len()]);
        tokio::spawn(async move {
            if let Ok(o) = grant_credits(&bus, id, 1, String::new(), &ctx(id)).await {
                let _ = tx.send((o.position.unwrap_or(0), Instant::now()));
            }
        });
    }
    let offered = total as f64 / offered_start.elapsed().as_secs_f64();
    drop(commit_tx);
    let mut commits = HashMap::new();
    while let Some((p, t)) = commit_rx.recv().await {
        commits.insert(p, t);
    }
    let mut applied = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while applied.len() < commits.len() && Instant::now() < deadline {
        if let Ok(Some((p, t))) = tokio::time::timeout(Duration::from_secs(1), obs_rx.recv()).await
        {
            applied.insert(p, t);
        }
    }
    let mut lags: Vec<Duration> = commits
        .iter()
        .filter_map(|(p, c)| {
            applied
                .get(p)
                .map(|a: &Instant| a.saturating_duration_since(*c))
        })
        .collect();
    lags.sort();
    let _ = stop_tx.send(true);
    relay.await??;
    proj.await??;

    // Raw NATS core publish -> receive at the same rate and message size.
    let subject = format!("{}.raw", names.prefix);
    let mut sub = client.subscribe(subject.clone()).await?;
    let sizes = 600;
    let pubc = client.clone();
    let mut sent: Vec<Instant> = Vec::with_capacity(total as usize);
    let recv = tokio::spawn(async move {
        use futures::StreamExt;
        let mut got: Vec<(u64, Instant)> = Vec::with_capacity(total as usize);
        while (got.len() as u64) < total {
            match tokio::time::timeout(Duration::from_secs(5), sub.next()).await {
                Ok(Some(m)) => {
                    let n = u64::from_le_bytes(m.payload[..8].try_into().unwrap_or([0; 8]));
                    got.push((n, Instant::now()));
                }
                _ => break,
            }
        }
        got
    });
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / a.rate as f64));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    for n in 0..total {
        ticker.tick().await;
        let mut payload = vec![0u8; sizes];
        payload[..8].copy_from_slice(&n.to_le_bytes());
        sent.push(Instant::now());
        pubc.publish(subject.clone(), payload.into()).await?;
    }
    let got = recv.await?;
    let mut raw: Vec<Duration> = got
        .iter()
        .map(|(n, t)| t.saturating_duration_since(sent[*n as usize]))
        .collect();
    raw.sort();

    let mut out = format!(
        "\n### End-to-end lag at {} commands/s offered ({:.0} achieved) for {} s\n\n",
        a.rate, offered, a.lag_secs
    );
    out.push_str("Append committed (command answered) -> projection row committed, through relay, JetStream and a durable consumer; beside raw NATS core publish -> receive of a 600-byte message at the same rate.\n\n");
    out.push_str("| path | samples | p50 (ms) | p99 (ms) | p99.9 (ms) | max (ms) |\n|---|---|---|---|---|---|\n");
    writeln!(
        out,
        "| command -> read model | {} of {} | {:.2} | {:.2} | {:.2} | {:.2} |",
        lags.len(),
        commits.len(),
        pct(&lags, 0.5),
        pct(&lags, 0.99),
        pct(&lags, 0.999),
        pct(&lags, 1.0)
    )?;
    writeln!(
        out,
        "| raw NATS publish -> receive | {} of {} | {:.3} | {:.3} | {:.3} | {:.3} |",
        raw.len(),
        total,
        pct(&raw, 0.5),
        pct(&raw, 0.99),
        pct(&raw, 0.999),
        pct(&raw, 1.0)
    )?;
    Ok(out)
}

// ---------------------------------------------------------------------------
// Feed read and projection rebuild over N events vs a raw sequential SELECT.

async fn rebuild(db: &Db, a: &BenchArgs) -> anyhow::Result<String> {
    let Db::Postgres(pool) = db else {
        unreachable!()
    };
    let accounts: i64 = 10_000.min(a.events / 2).max(1);
    let gen_start = Instant::now();
    let meta = "jsonb_build_object('account_id', 'bench-' || acct, 'actor', 'system', 'request_id', md5(i::text), \
                'correlation_id', md5(i::text), 'causation_id', md5(i::text), 'command_id', md5(i::text), \
                'occurred_at', '2026-11-22T00:00:00Z')";
    sqlx::query(&format!(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
         SELECT 'account', 'bench-' || acct, 1, 'AccountOpened', '1', \
                jsonb_build_object('AccountOpened', jsonb_build_object('name', 'Bench ' || acct)), {meta} \
         FROM (SELECT i, i AS acct FROM generate_series(1, $1) i) s"
    ))
    .bind(accounts)
    .execute(pool)
    .await?;
    let chunk = 100_000i64;
    let mut from = 0i64;
    let grants = a.events - accounts;
    while from < grants {
        let to = (from + chunk).min(grants);
        sqlx::query(&format!(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
             SELECT 'account', 'bench-' || acct, i / $3 + 2, 'CreditsGranted', '1', \
                    jsonb_build_object('CreditsGranted', jsonb_build_object('amount', 1, 'balance_after', i / $3 + 1, 'reason', 'bench')), {meta} \
             FROM (SELECT i, i % $3 + 1 AS acct FROM generate_series($1, $2 - 1) i) s"
        ))
        .bind(from)
        .bind(to)
        .bind(accounts)
        .execute(pool)
        .await?;
        from = to;
    }
    sqlx::query("ANALYZE events").execute(pool).await?;
    let generated = gen_start.elapsed();

    let feed = CommandBus::new(db.clone()).feed();
    // Feed read: the gap-safe reader, in pages of 5000.
    let start = Instant::now();
    let mut pos = Position::START;
    let mut n = 0u64;
    loop {
        let batch = feed.read_after(pos, 5000).await?;
        let Some(last) = batch.last() else { break };
        pos = last.position();
        n += batch.len() as u64;
    }
    let feed_rate = n as f64 / start.elapsed().as_secs_f64();

    // Raw baseline: one sequential SELECT of the same columns, same order, decoded the same way.
    let start = Instant::now();
    let mut raw_n = 0u64;
    {
        use futures::TryStreamExt;
        let mut rows = sqlx::query_as::<_, (Uuid, i64, i64, String, String, i64, String, String, serde_json::Value, serde_json::Value, chrono::DateTime<chrono::Utc>, Option<String>)>(
            "SELECT event_id, global_position, tx_id, aggregate_type, aggregate_id, sequence, event_type, event_version, \
             payload, metadata, recorded_at, account_id FROM events ORDER BY tx_id, global_position",
        )
        .fetch(pool);
        while rows.try_next().await?.is_some() {
            raw_n += 1;
        }
    }
    let raw_rate = raw_n as f64 / start.elapsed().as_secs_f64();

    let report = igny8_projections::rebuild(db, &feed, &AccountsProjection).await?;
    let mut out = format!(
        "\n### Feed read and projection rebuild over {n} events ({accounts} accounts; generated in {:.1} s)\n\n",
        generated.as_secs_f64()
    );
    out.push_str("| measurement | events | events/s | raw baseline (events/s) | ratio |\n|---|---|---|---|---|\n");
    writeln!(
        out,
        "| feed read (gap-safe pages of 5000) | {n} | {feed_rate:.0} | {raw_rate:.0} (one sequential SELECT, same columns and order) | {:.0}% |",
        100.0 * feed_rate / raw_rate
    )?;
    writeln!(
        out,
        "| rebuild `billing_accounts` (read + apply + swap) | {} | {:.0} | — | — |",
        report.events, report.events_per_sec
    )?;
    Ok(out)
}
