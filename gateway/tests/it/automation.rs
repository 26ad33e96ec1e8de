//! Automation over HTTP, in both run modes, with the scheduler on a clock
//! the tests move: a rule that clusters new keywords, makes ideas, writes,
//! illustrates and publishes to the real loopback WordPress, on its
//! schedule and on an event burst; one firing per slot with two
//! schedulers; the credit cap; cancel and pause releasing the site;
//! dry run against the real run; plan renewals; and the bad requests.

use crate::harness::{Owner, Resp, TestApp};
use axum::http::StatusCode;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

async fn get_now(app: &TestApp, token: &str, p: &str) -> Resp {
    let sep = if p.contains('?') { '&' } else { '?' };
    let h = app.state.feed.head().await.unwrap();
    app.req(token, "GET", &format!("{p}{sep}min_position={h}"), None)
        .await
}

async fn credits(app: &TestApp, o: &Owner) -> (f64, f64) {
    let r = app
        .req(&o.token, "GET", "/api/v1/billing/credits/", None)
        .await;
    (
        r.data()["balance"].as_f64().unwrap(),
        r.data()["reserved"].as_f64().unwrap(),
    )
}

async fn create_rule(app: &TestApp, o: &Owner, body: Value) -> Value {
    let r = app
        .req(&o.token, "POST", "/api/v1/automation/rules/", Some(body))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}: {}", app.mode, r.body);
    r.data().clone()
}

/// The runs of a rule (newest first).
async fn runs(app: &TestApp, o: &Owner, rule: &str) -> Vec<Value> {
    let r = get_now(
        app,
        &o.token,
        &format!("/api/v1/automation/runs/?rule_id={rule}&page_size=100"),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.data()["results"].as_array().unwrap().clone()
}

/// Wait until the rule has `n` runs and none is running; its runs.
async fn settled_runs(app: &TestApp, o: &Owner, rule: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let rs = runs(app, o, rule).await;
        if rs.len() >= n && rs.iter().all(|r| r["status"] != "running") {
            return rs;
        }
        assert!(
            Instant::now() < deadline,
            "{}: rule {rule} never had {n} settled runs: {rs:?}",
            app.mode
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

fn wp_env() -> (String, String, String) {
    let v = |k: &str| {
        std::env::var(k).unwrap_or_else(|_| {
            panic!("{k} is not set: the automation tests publish to the real WordPress (scripts/test.sh starts it)")
        })
    };
    (
        v("IGNY8_TEST_WP_URL"),
        v("IGNY8_TEST_WP_USER"),
        v("IGNY8_TEST_WP_APP_PASSWORD"),
    )
}

/// Posts of the test WordPress whose content holds `token`, any status.
async fn wp_posts(token: &str) -> Vec<Value> {
    let (url, user, pass) = wp_env();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let v: Value = reqwest::Client::new()
        .get(format!(
            "{url}/wp-json/wp/v2/posts?search={token}&status=any&context=edit&per_page=100"
        ))
        .basic_auth(user, Some(pass))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .filter(|p| {
            p["content"]["raw"].as_str().unwrap_or("").contains(token)
                || p["title"]["raw"].as_str().unwrap_or("").contains(token)
        })
        .cloned()
        .collect()
}

fn token() -> String {
    igny8_commands::testkit::unique("a").replace('_', "")
}

/// The whole pipeline from a schedule: new keywords are clustered, each
/// cluster gets an idea, the ideas become tasks, articles, illustrated,
/// and published to WordPress at the rule's publish slots — once per slot.
/// The next slot finds nothing new and does nothing.
#[tokio::test]
async fn a_scheduled_rule_runs_the_pipeline_to_wordpress() {
    let (wp_url, wp_user, wp_pass) = wp_env();
    for app in TestApp::both().await {
        let m = app.mode;
        let tok = token();
        let o = app.signup("Pipeline").await;
        let (site, sector) = app.site_and_sector(&o).await;
        let mut csv = String::from("keyword,volume\n");
        for (i, k) in ["tents", "sleeping bags", "camp stoves", "hiking boots"]
            .iter()
            .enumerate()
        {
            for j in 0..3 {
                csv.push_str(&format!("{k} {tok} {j},{}\n", 100 + i * 10 + j));
            }
        }
        let r = app.import_csv(&o.token, &sector, csv).await;
        assert_eq!(r.data()["imported"], 12, "{m}: {}", r.body);
        let r = app
            .req(&o.token, "POST", "/api/v1/integration/integrations/",
                Some(json!({"site_id": site, "wp_url": wp_url, "wp_username": wp_user, "wp_app_password": wp_pass})))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{m}: {}", r.body);
        let before = credits(&app, &o).await;
        let rule = create_rule(&app, &o, json!({
            "site_id": site, "name": "Daily pipeline",
            "trigger": {"type": "schedule", "cron": "0 6 * * *"}, "timezone": "Europe/Berlin",
            "conditions": [{"field": "unclustered_keywords", "operator": "gte", "value": 1}],
            "stages": [
                {"action": "auto_cluster", "batch_size": 1000, "params": {"num_clusters": 2}},
                {"action": "generate_ideas", "batch_size": 10, "params": {"ideas_per_cluster": 1}},
                {"action": "queue_ideas_to_writer", "batch_size": 10},
                {"action": "generate_content", "batch_size": 10},
                {"action": "extract_image_prompts", "batch_size": 10, "params": {"in_article_images": 1}},
                {"action": "generate_images", "batch_size": 10, "params": {"size": "512x512"}},
                {"action": "publish", "batch_size": 10, "params": {"slots": ["09:00", "15:00"], "tags": [format!("auto {tok}")]}}
            ],
            "max_credits_per_run": 100
        })).await;
        let id = rule["id"].as_str().unwrap().to_string();
        let slot: chrono::DateTime<chrono::Utc> =
            rule["next_slot"].as_str().unwrap().parse().unwrap();
        assert_eq!(
            slot.format("%H:%M").to_string(),
            "05:00",
            "{m}: 06:00 in Berlin in December is 05:00 UTC"
        );
        // Nothing fires before the slot.
        app.clock.set(slot - chrono::Duration::seconds(5));
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(runs(&app, &o, &id).await.is_empty(), "{m}");
        app.clock.set(slot + chrono::Duration::seconds(1));
        let rs = settled_runs(&app, &o, &id, 1).await;
        assert_eq!(rs.len(), 1, "{m}: {rs:?}");
        let run = &rs[0];
        assert_eq!(run["status"], "succeeded", "{m}: {run}");
        assert_eq!(run["trigger"], "schedule");
        let stages = run["stages"].as_array().unwrap();
        let taken: Vec<usize> = stages
            .iter()
            .map(|s| s["items"].as_array().map_or(0, Vec::len))
            .collect();
        // 1 sector; 2 clusters; 2 ideas → 2 tasks → 2 articles → 2×2 prompts → 4 images → 2 posts.
        assert_eq!(taken, [1, 2, 2, 2, 2, 4, 2], "{m}: {run}");
        assert!(stages.iter().all(|s| s["status"] == "done"), "{m}: {run}");
        // Posts on WordPress, scheduled at the next two slots in Berlin.
        let posts = wp_posts(&tok).await;
        assert_eq!(posts.len(), 2, "{m}: {posts:?}");
        let mut dates: Vec<String> = posts
            .iter()
            .map(|p| p["date_gmt"].as_str().unwrap().to_string())
            .collect();
        dates.sort();
        let day = slot.format("%Y-%m-%d").to_string();
        assert_eq!(
            dates,
            [format!("{day}T08:00:00"), format!("{day}T14:00:00")],
            "{m}: 09:00 and 15:00 in Berlin"
        );
        assert!(posts.iter().all(|p| p["status"] == "future"), "{m}");
        // Credits: exactly what the stages charged, nothing left reserved.
        let charged = run["credits_charged"].as_f64().unwrap();
        let sum: f64 = stages
            .iter()
            .map(|s| s["credits_charged"].as_f64().unwrap())
            .sum();
        assert_eq!(charged, sum, "{m}: {run}");
        assert!(charged > 10.0, "{m}: clustering alone is 10 credits: {run}");
        let after = credits(&app, &o).await;
        assert_eq!(
            (after.0, after.1),
            (before.0 - charged, 0.0),
            "{m}: {before:?} → {after:?}"
        );
        // The next day: nothing new, the conditions do not hold: a skipped run.
        let rule_now = get_now(&app, &o.token, &format!("/api/v1/automation/rules/{id}/")).await;
        let next: chrono::DateTime<chrono::Utc> = rule_now.data()["next_slot"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(next, slot + chrono::Duration::days(1), "{m}");
        app.clock.set(next + chrono::Duration::seconds(1));
        let rs = settled_runs(&app, &o, &id, 2).await;
        assert_eq!(rs[0]["status"], "skipped", "{m}: {}", rs[0]);
        assert_eq!(rs[0]["reason"], "conditions_not_met", "{m}");
        assert_eq!(rs[0]["conditions"][0]["actual"], 0, "{m}: {}", rs[0]);
        assert_eq!(wp_posts(&tok).await.len(), 2, "{m}: no post twice");
        app.stop().await;
    }
}

/// An event rule: a burst of imports (three requests) fires it once,
/// after the debounce window; a later import is a new burst.
#[tokio::test]
async fn a_burst_of_events_fires_an_event_rule_once() {
    for app in TestApp::both().await {
        let m = app.mode;
        let o = app.signup("Bursts").await;
        let (site, sector) = app.site_and_sector(&o).await;
        let rule = create_rule(&app, &o, json!({
            "site_id": site, "name": "On new keywords",
            "trigger": {"type": "event", "event_types": ["KeywordsAdded"], "debounce_seconds": 30},
            "stages": [{"action": "auto_cluster", "batch_size": 500}],
            "max_credits_per_run": 20
        })).await;
        let id = rule["id"].as_str().unwrap().to_string();
        for i in 0..3 {
            let csv = format!("keyword,volume\nburst {i} alpha,10\nburst {i} beta,20\n");
            let r = app.import_csv(&o.token, &sector, csv).await;
            assert_eq!(r.status, StatusCode::OK, "{m}: {}", r.body);
        }
        // Not yet: the burst settles 30 s after its last event.
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(runs(&app, &o, &id).await.is_empty(), "{m}");
        app.clock
            .set(chrono::Utc::now() + chrono::Duration::seconds(31));
        let rs = settled_runs(&app, &o, &id, 1).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let rs2 = runs(&app, &o, &id).await;
        assert_eq!(rs2.len(), 1, "{m}: one run for the burst: {rs2:?}");
        assert_eq!(rs[0]["status"], "succeeded", "{m}: {}", rs[0]);
        assert_eq!(rs[0]["trigger"], "event");
        assert_eq!(
            rs[0]["stages"][0]["items"].as_array().unwrap().len(),
            1,
            "{m}: the sector"
        );
        // Another import later: another burst, another run.
        let r = app
            .import_csv(
                &o.token,
                &sector,
                "keyword\nlater one\nlater two\n".to_string(),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{m}: {}", r.body);
        tokio::time::sleep(Duration::from_millis(300)).await;
        app.clock
            .set(chrono::Utc::now() + chrono::Duration::seconds(31));
        let rs = settled_runs(&app, &o, &id, 2).await;
        assert_eq!(rs.len(), 2, "{m}: {rs:?}");
        app.stop().await;
    }
}
