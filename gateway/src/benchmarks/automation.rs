//! `igny8 bench --only automation`: 10,000 schedule rules across 1,000
//! accounts due in the same minute — from the slot to each run's start
//! (`RunStarted` recorded), p50 / p99, with the scheduler as it ships (one
//! pass a second, 16 firings in flight) — beside a raw baseline measured in
//! the same run (10,000 one-row INSERT transactions at the same
//! concurrency); and the idle cost of the scheduler holding 100,000 rules:
//! process CPU per minute with it running, beside the same process with it
//! stopped.

use igny8_commands::automation::{Clock, ManualClock};
use igny8_commands::{CommandBus, CommandContext, Db, Health};
use igny8_domain::automation::{Action, CatchUp, RuleCommand, RuleDef, Stage, Trigger};
use igny8_domain::billing::{Account, AccountCommand};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use uuid::Uuid;

const ACCOUNTS: usize = 1_000;
const RULES_PER_ACCOUNT: usize = 10;
const IDLE_RULES: usize = 100_000;
const CONCURRENCY: usize = 16;

fn def(cron: &str) -> RuleDef {
    RuleDef {
        name: "bench".into(),
        description: String::new(),
        trigger: Trigger::Schedule { cron: cron.into() },
        timezone: "UTC".into(),
        conditions: vec![],
        stages: vec![Stage {
            action: Action::QueueIdeasToWriter,
            batch_size: 1,
            params: serde_json::Value::Null,
        }],
        max_credits_per_run: 0,
        max_credits_per_day: None,
        catch_up: CatchUp::Once,
    }
}

/// CPU time (user + system) this process has used.
fn cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // Fields 14 and 15 of stat (utime, stime) are 12 and 13 after the name.
    let hz = 100.0; // USER_HZ on Linux
    Duration::from_secs_f64((ticks(11) + ticks(12)) as f64 / hz)
}

/// `n` rules of `cron`, `per_account` to an account (opened here), in
/// units of work of 200 aggregates.
async fn rules(
    bus: &CommandBus,
    clock: &ManualClock,
    n: usize,
    per_account: usize,
    cron: &str,
) -> anyhow::Result<()> {
    let accounts = n.div_ceil(per_account);
    let ctx = CommandContext {
        actor: "bench".into(),
        ..Default::default()
    };
    let mut made = 0;
    for chunk in (0..accounts).collect::<Vec<_>>().chunks(20) {
        let mut uow = bus.unit(&ctx);
        for _ in chunk {
            let account = Uuid::new_v4();
            uow.execute::<Account>(
                &account.to_string(),
                AccountCommand::Open {
                    name: "bench".into(),
                },
            )
            .await?;
            for _ in 0..per_account.min(n - made) {
                let id = Uuid::now_v7();
                uow.execute::<igny8_domain::automation::Rule>(
                    &id.to_string(),
                    RuleCommand::Create {
                        id,
                        account_id: account,
                        site_id: Uuid::new_v4(),
                        def: def(cron),
                        now: clock.now(),
                    },
                )
                .await?;
                made += 1;
            }
        }
        if uow.commit().await?.is_none() {
            anyhow::bail!("a bench unit of work met a concurrent writer");
        }
    }
    Ok(())
}

async fn count(db: &Db, sql: &str) -> anyhow::Result<i64> {
    Ok(igny8_commands::on_db!(db, p => sqlx::query_scalar::<_, i64>(sql).fetch_one(p).await?))
}

async fn wait_count(db: &Db, sql: &str, n: i64, secs: u64) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while count(db, sql).await? < n {
        if Instant::now() > deadline {
            anyhow::bail!("timed out waiting for {n}: {sql}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

pub async fn run(db: &Db) -> anyhow::Result<String> {
    let mut out = String::from(
        "\n### Automation: 10,000 rules due in the same minute; the idle scheduler\n\n",
    );
    let bus = CommandBus::new(db.clone());
    let (stop, rx) = watch::channel(false);
    // The read models, fed in-process.
    let mut tasks = vec![];
    for p in igny8_projections::all() {
        tasks.push(tokio::spawn(igny8_projections::run_embedded(
            db.clone(),
            bus.feed(),
            p,
            Health::new(),
            rx.clone(),
            None,
        )));
    }
    let clock = ManualClock::new(chrono::Utc::now());
    let started = Instant::now();
    rules(
        &bus,
        &clock,
        ACCOUNTS * RULES_PER_ACCOUNT,
        RULES_PER_ACCOUNT,
        "* * * * *",
    )
    .await?;
    wait_count(
        db,
        "SELECT count(*) FROM rm_automation_rules",
        (ACCOUNTS * RULES_PER_ACCOUNT) as i64,
        300,
    )
    .await?;
    let setup = started.elapsed();
    let slot: chrono::DateTime<chrono::Utc> = igny8_commands::on_db!(db, p => sqlx::query_scalar(
        "SELECT min(next_slot) FROM rm_automation_rules").fetch_one(p).await?);
    let scheduler = igny8_workers::automation::Scheduler {
        bus: bus.clone(),
        lookup: Arc::new(igny8_projections::automation::lookup::Lookup::new(&bus)),
        planner: Arc::new(igny8_projections::planner::OwnedLookup(db.clone())),
        clock: Arc::new(clock.clone()),
        tick: Duration::from_millis(1000),
        concurrency: CONCURRENCY,
        renew_every: Duration::from_secs(3600),
    };
    let (sched_stop, sched_rx) = watch::channel(false);
    let sched = tokio::spawn(igny8_workers::automation::run(
        scheduler.clone(),
        Health::new(),
        sched_rx,
    ));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // The slot arrives.
    let at = chrono::Utc::now();
    clock.set(slot + chrono::Duration::milliseconds(1));
    let n = (ACCOUNTS * RULES_PER_ACCOUNT) as i64;
    wait_count(
        db,
        "SELECT count(*) FROM events WHERE event_type = 'RunStarted'",
        n,
        600,
    )
    .await?;
    let mut lat: Vec<Duration> =
        igny8_commands::on_db!(db, p => sqlx::query_scalar::<_, chrono::DateTime<chrono::Utc>>(
        "SELECT recorded_at FROM events WHERE event_type = 'RunStarted'").fetch_all(p).await?)
        .into_iter()
        .map(|t| (t - at).to_std().unwrap_or_default())
        .collect();
    lat.sort();
    let last = *lat.last().unwrap_or(&Duration::ZERO);
    // Every run ends (its empty stage) before the idle measurement.
    wait_count(
        db,
        "SELECT count(*) FROM events WHERE event_type = 'RunFinished'",
        n,
        600,
    )
    .await?;
    let fired: i64 = count(
        db,
        "SELECT count(*) FROM events WHERE event_type = 'RuleFired'",
    )
    .await?;
    // Raw baseline: 10,000 one-row INSERT transactions, 16 at a time.
    let Db::Postgres(pool) = db else {
        anyhow::bail!("PostgreSQL only")
    };
    sqlx::query("CREATE TABLE bench_auto_raw (id uuid PRIMARY KEY, payload jsonb NOT NULL, at timestamptz NOT NULL DEFAULT now())")
        .execute(pool)
        .await?;
    let raw_start = Instant::now();
    let mut joins = vec![];
    for w in 0..CONCURRENCY {
        let pool = pool.clone();
        joins.push(tokio::spawn(async move {
            for _ in (w..n as usize).step_by(CONCURRENCY) {
                sqlx::query("INSERT INTO bench_auto_raw (id, payload) VALUES ($1, $2)")
                    .bind(Uuid::new_v4())
                    .bind(serde_json::json!({"RunStarted": {"budget": 0}}))
                    .execute(&pool)
                    .await?;
            }
            Ok::<_, sqlx::Error>(())
        }));
    }
    for j in joins {
        j.await??;
    }
    let raw = raw_start.elapsed();
    writeln!(
        out,
        "{ACCOUNTS} accounts × {RULES_PER_ACCOUNT} rules, each `* * * * *` on a site of its own (one stage, no credits); set up in {:.1} s. The scheduler as it ships (a pass every 1 s, {CONCURRENCY} firings in flight) runs in this process; the slot is made to arrive by moving its clock, and each run's start is its `RunStarted` commit.\n",
        setup.as_secs_f64()
    )?;
    out.push_str(
        "| measurement | figure | baseline (same run) | ratio | target |\n|---|---|---|---|---|\n",
    );
    writeln!(
        out,
        "| slot → run started, {n} rules | p50 {:.0} ms, p99 {:.0} ms, last {:.2} s ({fired} firings, one per rule) | {n} one-row INSERT transactions, {CONCURRENCY} at a time: {:.2} s | last start / raw: {:.1}× | p99 ≤ 2 s: **{}** |",
        super::pct(&lat, 0.50),
        super::pct(&lat, 0.99),
        last.as_secs_f64(),
        raw.as_secs_f64(),
        last.as_secs_f64() / raw.as_secs_f64().max(1e-9),
        if super::pct(&lat, 0.99) <= 2000.0 {
            "met".to_string()
        } else {
            format!("missed by {:.1} s", super::pct(&lat, 0.99) / 1000.0 - 2.0)
        }
    )?;
    // Idle: 100,000 rules in all, none due (a yearly cron for the new ones;
    // the clock stays before the minute rules' next slot).
    rules(&bus, &clock, IDLE_RULES - n as usize, 100, "0 0 1 1 *").await?;
    wait_count(
        db,
        "SELECT count(*) FROM rm_automation_rules",
        IDLE_RULES as i64,
        900,
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let window = Duration::from_secs(60);
    let c0 = cpu();
    tokio::time::sleep(window).await;
    let with = cpu() - c0;
    let _ = sched_stop.send(true);
    let _ = sched.await;
    let c1 = cpu();
    tokio::time::sleep(window).await;
    let without = cpu() - c1;
    writeln!(
        out,
        "| idle, {IDLE_RULES} rules, none due: process CPU per minute with the scheduler | {:.2} s ({:.2}% of one core) | the same process without it: {:.2} s | +{:.2} s of CPU per minute | — |",
        with.as_secs_f64(),
        with.as_secs_f64() / 60.0 * 100.0,
        without.as_secs_f64(),
        with.as_secs_f64() - without.as_secs_f64()
    )?;
    let _ = stop.send(true);
    for t in tasks {
        let _ = t.await;
    }
    Ok(out)
}
