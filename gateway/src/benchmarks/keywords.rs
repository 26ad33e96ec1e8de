//! `igny8 bench --only keywords`: a 100,000-row CSV import until every row
//! is listable, beside PostgreSQL `COPY` of the same rows; and a filtered,
//! sorted page of 50 from 1,000,000 keywords (p50/p99), beside the same
//! `SELECT` straight on the read table.

use igny8_commands::planner::{add_keywords, import};
use igny8_commands::{CommandBus, CommandContext, Db};
use igny8_domain::planner::keyword_id;
use igny8_projections::planner::{KeywordFilter, PlannerProjection, page_keywords};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use uuid::Uuid;

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

async fn count(pool: &sqlx::PgPool, sector: &str) -> anyhow::Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT count(*) FROM rm_keywords WHERE sector_id = $1")
            .bind(sector)
            .fetch_one(pool)
            .await?,
    )
}

pub async fn run(db: &Db, rows: usize, page_rows: i64) -> anyhow::Result<String> {
    let Db::Postgres(pool) = db else {
        anyhow::bail!("PostgreSQL only")
    };
    let mut out = String::from("\n### Keywords: import and list\n\n");
    let bus = CommandBus::new(db.clone());
    let (account, site, sector) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let ctx = CommandContext {
        account_id: Some(account.to_string()),
        actor: "bench".into(),
        ..Default::default()
    };
    // The planner projection, as `igny8 serve` runs it on PostgreSQL.
    let (stop, rx) = watch::channel(false);
    let runner = tokio::spawn(igny8_projections::run_embedded(
        db.clone(),
        bus.feed(),
        Arc::new(PlannerProjection),
        igny8_commands::Health::new(),
        rx,
        None,
    ));
    // A live projection is caught up: let it read past the events of the
    // earlier parts before the clock starts.
    let head = bus.feed().head().await?;
    if head > 0 {
        igny8_projections::wait_for(
            db,
            &bus.feed(),
            igny8_projections::planner::NAME,
            head,
            Duration::from_secs(600),
        )
        .await?;
    }
    let mut csv = String::from("Keyword,Search Volume,KD %,Intent,CPC\n");
    for i in 0..rows {
        let intent = [
            "informational",
            "commercial",
            "transactional",
            "navigational",
        ][i % 4];
        writeln!(
            csv,
            "keyword {i} for benchmark,{},{},{intent},{:.2}",
            (i * 37) % 100_000,
            i % 101,
            (i % 500) as f64 / 100.0
        )?;
    }
    let bytes = csv.into_bytes();
    // Command path: parse, one command (chunked events), projection, listable.
    let t = Instant::now();
    let parsed = import::parse(&bytes, sector).map_err(|e| anyhow::anyhow!("{e}"))?;
    let parse_s = t.elapsed().as_secs_f64();
    let out_cmd = add_keywords(&bus, account, site, sector, parsed.rows, "import", &ctx).await?;
    let command_s = t.elapsed().as_secs_f64();
    let sec = sector.to_string();
    while count(pool, &sec).await? < rows as i64 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let total = t.elapsed().as_secs_f64();
    // Baseline: COPY of the same rows into an equivalent table.
    sqlx::query("CREATE TABLE bench_kw (LIKE rm_keywords INCLUDING DEFAULTS INCLUDING INDEXES)")
        .execute(pool)
        .await?;
    let mut copy_csv = String::with_capacity(bytes.len() * 3);
    for i in 0..rows {
        let k = format!("keyword {i} for benchmark");
        writeln!(
            copy_csv,
            "{},{account},{site},{sector},{k},{k},{},{},commercial,{:.2},active,,,2026-11-23T00:00:00Z,2026-11-23T00:00:00Z",
            keyword_id(sector, &k),
            (i * 37) % 100_000,
            i % 101,
            (i % 500) as f64 / 100.0
        )?;
    }
    let t = Instant::now();
    let mut conn = pool.acquire().await?;
    let mut copy = conn
        .copy_in_raw("COPY bench_kw (keyword_id, account_id, site_id, sector_id, keyword, normalized, volume, difficulty, intent, cpc, status, cluster_id, cluster_name, created_at, updated_at) FROM STDIN (FORMAT csv)")
        .await?;
    copy.send(copy_csv.as_bytes()).await?;
    copy.finish().await?;
    let copy_s = t.elapsed().as_secs_f64();
    drop(conn);
    writeln!(
        out,
        "| measurement | rows | seconds | rows/s | raw baseline | ratio |\n|---|---|---|---|---|---|\n\
         | CSV import until every row is listable (parse {parse_s:.2} s, command {:.2} s, {} events, projection {:.2} s) | {rows} | {total:.2} | {:.0} | COPY of the same rows: {copy_s:.2} s ({:.0} rows/s) | {:.0}× the COPY time |",
        command_s - parse_s,
        out_cmd.events.len(),
        total - command_s,
        rows as f64 / total,
        rows as f64 / copy_s,
        total / copy_s
    )?;
    stop.send(true)?;
    let _ = runner.await;

    // 1,000,000 keywords in one sector (generated straight into the read table).
    let big = Uuid::now_v7().to_string();
    sqlx::query(
        "INSERT INTO rm_keywords (keyword_id, account_id, site_id, sector_id, keyword, normalized, volume, difficulty, intent, cpc, status, created_at, updated_at) \
         SELECT md5(g::text || $1), $2, $3, $1, 'kw ' || g, 'kw ' || g, (g * 7919) % 100000, g % 101, \
                (ARRAY['informational','navigational','commercial','transactional'])[1 + g % 4], (g % 500) / 100.0, 'active', now(), now() \
         FROM generate_series(1::bigint, $4::bigint) g",
    )
    .bind(&big)
    .bind(account.to_string())
    .bind(site.to_string())
    .bind(page_rows)
    .execute(pool)
    .await?;
    sqlx::query("ANALYZE rm_keywords").execute(pool).await?;
    let f = |page: i64| KeywordFilter {
        sector_id: Some(big.clone()),
        intent: Some("commercial".into()),
        volume_min: Some(1000),
        volume_max: Some(50_000),
        ordering: Some("-volume".into()),
        offset: (page - 1) * 50,
        limit: Some(50),
        ..KeywordFilter::default()
    };
    let raw_sql = "SELECT keyword_id, account_id, site_id, sector_id, keyword, volume, difficulty, intent, cpc, status, \
                   cluster_id, cluster_name, created_at, updated_at FROM rm_keywords \
                   WHERE account_id = $1 AND sector_id = $2 AND intent = $3 AND volume >= $4 AND volume <= $5 \
                   ORDER BY volume DESC, keyword_id LIMIT 50 OFFSET $6";
    let (mut ours, mut raw) = (vec![], vec![]);
    for round in 0..200 {
        let page = 1 + (round % 10);
        let t = Instant::now();
        let pg = page_keywords(db, &account.to_string(), &f(page)).await?;
        ours.push(t.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(
            pg.rows.len() == 50 && pg.count > 0,
            "page {page}: {} rows",
            pg.rows.len()
        );
        let t = Instant::now();
        let r: Vec<igny8_projections::planner::KeywordRow> = sqlx::query_as(raw_sql)
            .bind(account.to_string())
            .bind(&big)
            .bind("commercial")
            .bind(1000i64)
            .bind(50_000i64)
            .bind((page - 1) * 50)
            .fetch_all(pool)
            .await?;
        raw.push(t.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(r.len() == 50);
    }
    writeln!(
        out,
        "\n| page of 50 from {page_rows} keywords (sector, intent, volume range, by volume desc; pages 1–10) | p50 (ms) | p99 (ms) |\n|---|---|---|\n\
         | `page_keywords` (what the endpoint runs: page + total counted up to 10,000) | {:.2} | {:.2} |\n\
         | the same page SELECT straight on the read table (no count) | {:.2} | {:.2} |",
        pct(&mut ours.clone(), 0.5),
        pct(&mut ours, 0.99),
        pct(&mut raw.clone(), 0.5),
        pct(&mut raw, 0.99)
    )?;
    Ok(out)
}
