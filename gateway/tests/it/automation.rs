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
/// after the debounce window, and runs the pipeline from the new keywords
/// to a post on WordPress; a later import is a new burst.
#[tokio::test]
async fn a_burst_of_events_fires_an_event_rule_once() {
    let (wp_url, wp_user, wp_pass) = wp_env();
    for app in TestApp::both().await {
        let m = app.mode;
        let tok = token();
        let o = app.signup("Bursts").await;
        let (site, sector) = app.site_and_sector(&o).await;
        let r = app
            .req(&o.token, "POST", "/api/v1/integration/integrations/",
                Some(json!({"site_id": site, "wp_url": wp_url, "wp_username": wp_user, "wp_app_password": wp_pass})))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{m}: {}", r.body);
        let rule = create_rule(&app, &o, json!({
            "site_id": site, "name": "On new keywords",
            "trigger": {"type": "event", "event_types": ["KeywordsAdded"], "debounce_seconds": 30},
            "stages": [
                {"action": "auto_cluster", "batch_size": 500, "params": {"num_clusters": 1}},
                {"action": "generate_ideas", "batch_size": 5, "params": {"ideas_per_cluster": 1}},
                {"action": "queue_ideas_to_writer", "batch_size": 5},
                {"action": "generate_content", "batch_size": 5},
                {"action": "publish", "batch_size": 5, "params": {"status": "draft"}}
            ],
            "max_credits_per_run": 40
        })).await;
        let id = rule["id"].as_str().unwrap().to_string();
        for i in 0..3 {
            let csv =
                format!("keyword,volume\nburst {i} {tok} alpha,10\nburst {i} {tok} beta,20\n");
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
        let posts = wp_posts(&tok).await;
        assert_eq!(
            posts.len(),
            1,
            "{m}: one cluster, one idea, one article, one post: {posts:?}"
        );
        assert_eq!(posts[0]["status"], "draft", "{m}");
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

/// A run's progress: wait until `pred` holds for the run (or fail).
async fn wait_run(
    app: &TestApp,
    o: &Owner,
    run: &str,
    what: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = get_now(app, &o.token, &format!("/api/v1/automation/runs/{run}/")).await;
        if r.status == StatusCode::OK && pred(r.data()) {
            return r.data().clone();
        }
        assert!(
            Instant::now() < deadline,
            "{}: run {run} never {what}: {}",
            app.mode,
            r.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn execute(app: &TestApp, o: &Owner, rule: &str) -> Resp {
    app.req(
        &o.token,
        "POST",
        &format!("/api/v1/automation/rules/{rule}/execute/"),
        None,
    )
    .await
}

/// Tasks of 500 words for a sector (each reserves 2 credits: 575 words estimated).
async fn tasks(app: &TestApp, o: &Owner, sector: &str, n: usize, tag: &str) -> Vec<String> {
    let mut out = vec![];
    for i in 0..n {
        let r = app
            .req(&o.token, "POST", "/api/v1/writer/tasks/",
                Some(json!({"sector_id": sector, "title": format!("Guide {i} {tag}"), "primary_keyword": format!("topic {i} {tag}"),
                            "target_word_count": 500})))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}: {}", app.mode, r.body);
        out.push(r.data()["id"].as_str().unwrap().to_string());
    }
    out
}

/// The credit cap: a run reserves its cap when it starts, takes the items
/// the cap covers and stops cleanly before the next, recording what it
/// left; every credit it did not spend comes back.
#[tokio::test]
async fn the_credit_cap_stops_a_run_cleanly() {
    for app in TestApp::both().await {
        let m = app.mode;
        let o = app.signup("Capped").await;
        let (site, sector) = app.site_and_sector(&o).await;
        let ids = tasks(&app, &o, &sector, 5, "cap").await;
        let before = credits(&app, &o).await;
        let rule = create_rule(
            &app,
            &o,
            json!({
                "site_id": site, "name": "Capped writer", "trigger": {"type": "manual"},
                "stages": [{"action": "generate_content", "batch_size": 10}],
                "max_credits_per_run": 5
            }),
        )
        .await;
        let id = rule["id"].as_str().unwrap().to_string();
        let r = execute(&app, &o, &id).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{m}: {}", r.body);
        assert_eq!(r.data()["status"], "running", "{m}: {}", r.body);
        let run = r.data()["run_id"].as_str().unwrap().to_string();
        let done = wait_run(&app, &o, &run, "ended", |r| r["status"] != "running").await;
        assert_eq!(done["status"], "budget_exhausted", "{m}: {done}");
        assert_eq!(done["budget"], 5, "{m}: the cap was reserved");
        let stage = &done["stages"][0];
        let taken: Vec<&str> = stage["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(
            taken,
            [ids[0].as_str(), ids[1].as_str()],
            "{m}: two articles fit in 5 credits (2 each)"
        );
        let left: Vec<&Value> = stage["skipped"].as_array().unwrap().iter().collect();
        assert_eq!(left.len(), 3, "{m}: {stage}");
        assert!(left.iter().all(|l| l["reason"] == "budget"), "{m}: {stage}");
        assert_eq!(done["credits_reserved"], 4, "{m}: {done}");
        let charged = done["credits_charged"].as_f64().unwrap();
        assert!(charged > 0.0 && charged <= 5.0, "{m}: {done}");
        let after = credits(&app, &o).await;
        assert_eq!(
            after,
            (before.0 - charged, 0.0),
            "{m}: nothing stays reserved"
        );
        // The tasks it left are still queued for the next run.
        let t = get_now(&app, &o.token, &format!("/api/v1/writer/tasks/{}/", ids[4])).await;
        assert_eq!(t.data()["status"], "queued", "{m}");
        app.stop().await;
    }
}

/// An OpenAI-compatible stub that answers every call after `secs` seconds.
async fn slow_provider(app: &TestApp, o: &Owner, secs: u64) -> wiremock::MockServer {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(500).set_delay(Duration::from_secs(secs)))
        .mount(&server)
        .await;
    let r = app
        .req(&o.token, "PUT", "/api/v1/system/settings/integrations/openai/",
            Some(json!({"base_url": format!("{}/v1", server.uri()), "api_key": "sk-test-0000000000000000", "chat_model": "gpt-test"})))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}: {}", app.mode, r.body);
    server
}

/// One run per site; cancelling a run, pausing its rule or deleting it
/// cancels its job and gives the site and every credit back at once.
#[tokio::test]
async fn cancel_pause_and_delete_release_the_site_and_the_credits() {
    for app in TestApp::both().await {
        let m = app.mode;
        let o = app.signup("Releases").await;
        let (site, sector) = app.site_and_sector(&o).await;
        let _server = slow_provider(&app, &o, 30).await;
        tasks(&app, &o, &sector, 3, "rel").await;
        let before = credits(&app, &o).await;
        let rule = |name: &str| {
            json!({"site_id": site, "name": name, "trigger": {"type": "manual"},
                   "stages": [{"action": "generate_content", "batch_size": 1}], "max_credits_per_run": 20})
        };
        let a = create_rule(&app, &o, rule("Slow A")).await["id"]
            .as_str()
            .unwrap()
            .to_string();
        let b = create_rule(&app, &o, rule("Slow B")).await["id"]
            .as_str()
            .unwrap()
            .to_string();
        let launched = |r: &Value| {
            r["stages"][0]["jobs"]
                .as_array()
                .is_some_and(|j| !j.is_empty())
        };
        // Cancel.
        let run = execute(&app, &o, &a).await.data()["run_id"]
            .as_str()
            .unwrap()
            .to_string();
        let r = wait_run(&app, &o, &run, "launched its job", launched).await;
        let job = r["stages"][0]["jobs"][0]["job_id"]
            .as_str()
            .unwrap()
            .to_string();
        let busy = execute(&app, &o, &b).await;
        assert_eq!(
            (busy.status, busy.code()),
            (StatusCode::CONFLICT, "SITE_BUSY"),
            "{m}: {}",
            busy.body
        );
        assert_eq!(credits(&app, &o).await.1, 20.0, "{m}: the cap is reserved");
        let c = app
            .req(
                &o.token,
                "POST",
                &format!("/api/v1/automation/runs/{run}/cancel/"),
                None,
            )
            .await;
        assert_eq!(c.status, StatusCode::OK, "{m}: {}", c.body);
        let r = get_now(&app, &o.token, &format!("/api/v1/automation/runs/{run}/")).await;
        assert_eq!(r.data()["status"], "cancelled", "{m}: {}", r.body);
        let j = get_now(
            &app,
            &o.token,
            &format!("/api/v1/system/settings/task_progress/{job}/"),
        )
        .await;
        assert_eq!(j.data()["state"], "CANCELLED", "{m}: {}", j.body);
        assert_eq!(credits(&app, &o).await, before, "{m}: every credit back");
        let again = app
            .req(
                &o.token,
                "POST",
                &format!("/api/v1/automation/runs/{run}/cancel/"),
                None,
            )
            .await;
        assert_eq!(
            (again.status, again.code()),
            (StatusCode::CONFLICT, "RUN_FINISHED"),
            "{m}"
        );
        // The site is free: B runs; pausing B cancels its run and frees the site.
        let r = execute(&app, &o, &b).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{m}: {}", r.body);
        let run_b = r.data()["run_id"].as_str().unwrap().to_string();
        wait_run(&app, &o, &run_b, "launched its job", launched).await;
        let p = app
            .req(
                &o.token,
                "POST",
                &format!("/api/v1/automation/rules/{b}/pause/"),
                None,
            )
            .await;
        assert_eq!(
            (p.status, p.data()["status"].as_str()),
            (StatusCode::OK, Some("paused")),
            "{m}: {}",
            p.body
        );
        let r = get_now(&app, &o.token, &format!("/api/v1/automation/runs/{run_b}/")).await;
        assert_eq!(
            (r.data()["status"].as_str(), r.data()["reason"].as_str()),
            (Some("cancelled"), Some("cancelled by pause")),
            "{m}: {}",
            r.body
        );
        let paused = execute(&app, &o, &b).await;
        assert_eq!(
            (paused.status, paused.code()),
            (StatusCode::CONFLICT, "RULE_PAUSED"),
            "{m}"
        );
        // Deleting A while it runs does the same.
        let run_a = execute(&app, &o, &a).await.data()["run_id"]
            .as_str()
            .unwrap()
            .to_string();
        wait_run(&app, &o, &run_a, "launched its job", launched).await;
        let d = app
            .req(
                &o.token,
                "DELETE",
                &format!("/api/v1/automation/rules/{a}/"),
                None,
            )
            .await;
        assert_eq!(d.status, StatusCode::OK, "{m}: {}", d.body);
        let r = get_now(&app, &o.token, &format!("/api/v1/automation/runs/{run_a}/")).await;
        assert_eq!(r.data()["status"], "cancelled", "{m}: {}", r.body);
        assert_eq!(credits(&app, &o).await, before, "{m}: every credit back");
        let r = app
            .req(
                &o.token,
                "POST",
                &format!("/api/v1/automation/rules/{b}/resume/"),
                None,
            )
            .await;
        assert_eq!(r.data()["status"], "active", "{m}: {}", r.body);
        // The run log keeps all three.
        let all = get_now(&app, &o.token, "/api/v1/automation/runs/").await;
        assert_eq!(all.data()["count"], 3, "{m}: {}", all.body);
        app.stop().await;
    }
}

/// The dry run forecasts what the real run then does: the same items per
/// stage, the same credits reserved, the same publish slots.
#[tokio::test]
async fn a_dry_run_forecasts_what_the_run_does() {
    let (wp_url, wp_user, wp_pass) = wp_env();
    for app in TestApp::both().await {
        let m = app.mode;
        let tok = token();
        let o = app.signup("Forecast").await;
        let (site, sector) = app.site_and_sector(&o).await;
        tasks(&app, &o, &sector, 5, &tok).await;
        let r = app
            .req(&o.token, "POST", "/api/v1/integration/integrations/",
                Some(json!({"site_id": site, "wp_url": wp_url, "wp_username": wp_user, "wp_app_password": wp_pass})))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{m}: {}", r.body);
        let rule = create_rule(&app, &o, json!({
            "site_id": site, "name": "Writer and publisher", "trigger": {"type": "schedule", "cron": "30 7 * * *"},
            "timezone": "America/New_York",
            "stages": [
                {"action": "generate_content", "batch_size": 3},
                {"action": "extract_image_prompts", "batch_size": 10, "params": {"in_article_images": 1}},
                {"action": "generate_images", "batch_size": 10, "params": {"size": "512x512"}},
                {"action": "publish", "batch_size": 10, "params": {"slots": ["09:00"]}}
            ],
            "max_credits_per_run": 100
        })).await;
        let id = rule["id"].as_str().unwrap().to_string();
        let dry = app
            .req(
                &o.token,
                "POST",
                &format!("/api/v1/automation/rules/{id}/dry_run/"),
                Some(json!({"days": 3})),
            )
            .await;
        assert_eq!(dry.status, StatusCode::OK, "{m}: {}", dry.body);
        let d = dry.data().clone();
        let items: Vec<i64> = d["stages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["items"].as_i64().unwrap())
            .collect();
        assert_eq!(items, [3, 3, 6, 3], "{m}: {d}");
        let credits_by_stage: Vec<f64> = d["stages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["credits"].as_f64().unwrap())
            .collect();
        assert_eq!(credits_by_stage, [6.0, 3.0, 6.0, 0.0], "{m}: {d}");
        assert_eq!(
            d["next_firings"].as_array().unwrap().len(),
            3,
            "{m}: a firing a day for 3 days"
        );
        let slots: Vec<String> = d["posts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["slot"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(slots.len(), 3, "{m}: {d}");
        // Nothing was written by the dry run.
        assert!(runs(&app, &o, &id).await.is_empty(), "{m}");
        // The real run, at the time the dry run was made for.
        let r = execute(&app, &o, &id).await;
        let run = r.data()["run_id"].as_str().unwrap().to_string();
        let done = wait_run(&app, &o, &run, "ended", |r| r["status"] != "running").await;
        assert_eq!(done["status"], "succeeded", "{m}: {done}");
        let real_items: Vec<i64> = done["stages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["items"].as_array().unwrap().len() as i64)
            .collect();
        assert_eq!(real_items, items, "{m}: {done}");
        let real_reserved: Vec<f64> = done["stages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                s["jobs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|j| j["reserved"].as_f64().unwrap())
                    .sum()
            })
            .collect();
        assert_eq!(
            real_reserved, credits_by_stage,
            "{m}: the jobs reserved what the dry run said: {done}"
        );
        let mut real_slots: Vec<String> = done["stages"][3]["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["slot"].as_str().unwrap().to_string())
            .collect();
        let mut dry_slots = slots.clone();
        real_slots.sort();
        dry_slots.sort();
        let norm = |v: &Vec<String>| {
            v.iter()
                .map(|s| s.parse::<chrono::DateTime<chrono::Utc>>().unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            norm(&real_slots),
            norm(&dry_slots),
            "{m}: the same publish slots"
        );
        assert_eq!(wp_posts(&tok).await.len(), 3, "{m}");
        app.stop().await;
    }
}

/// Two schedulers over the same store: every due slot fires once. Missed
/// slots fire once (catch_up: once) or are skipped (catch_up: skip).
#[tokio::test]
async fn two_schedulers_fire_each_slot_once() {
    for app in TestApp::both().await {
        let m = app.mode;
        let (stop, rx) = tokio::sync::watch::channel(false);
        let second = tokio::spawn(igny8_workers::automation::run(
            crate::harness::scheduler(&app.state),
            igny8_commands::Health::new(),
            rx,
        ));
        let mut rules = vec![];
        let mut owners = vec![];
        for i in 0..5 {
            let o = app.signup(&format!("Twice {i}")).await;
            let (site, _) = app.site_and_sector(&o).await;
            for (name, catch_up) in [("once", "once"), ("skip", "skip")] {
                let r = create_rule(&app, &o, json!({
                    "site_id": site, "name": format!("Hourly {name}"), "trigger": {"type": "schedule", "cron": "0 * * * *"},
                    "stages": [{"action": "queue_ideas_to_writer", "batch_size": 5}], "max_credits_per_run": 0,
                    "catch_up": catch_up
                })).await;
                rules.push((o.clone(), r["id"].as_str().unwrap().to_string(), catch_up));
            }
            owners.push(o);
        }
        let slot: chrono::DateTime<chrono::Utc> = {
            let r = get_now(
                &app,
                &owners[0].token,
                &format!("/api/v1/automation/rules/{}/", rules[0].1),
            )
            .await;
            r.data()["next_slot"].as_str().unwrap().parse().unwrap()
        };
        app.clock.set(slot + chrono::Duration::seconds(1));
        // Each site has two rules: one runs, the other is skipped (site busy) or runs after.
        for (o, id, _) in &rules {
            settled_runs(&app, o, id, 1).await;
        }
        tokio::time::sleep(Duration::from_millis(800)).await;
        let fired = |id: &str| {
            let db = app.state.db.clone();
            let id = id.to_string();
            async move {
                let n: i64 = igny8_commands::on_db!(&db, p => sqlx::query_scalar(
                    "SELECT count(*) FROM events WHERE aggregate_type = 'automation_rule' AND aggregate_id = $1 AND event_type = 'RuleFired'")
                    .bind(id).fetch_one(p).await.unwrap());
                n
            }
        };
        for (o, id, _) in &rules {
            assert_eq!(
                runs(&app, o, id).await.len(),
                1,
                "{m}: one run for the slot"
            );
            assert_eq!(fired(id).await, 1, "{m}: fired once");
        }
        // Three hours and a half with nothing running: `once` fires one run
        // for the three slots missed; `skip` skips them (the latest is 30
        // minutes late, no longer on time).
        app.clock
            .set(slot + chrono::Duration::hours(3) + chrono::Duration::minutes(30));
        for (o, id, catch_up) in &rules {
            if *catch_up == "once" {
                let rs = settled_runs(&app, o, id, 2).await;
                assert_eq!(rs.len(), 2, "{m}: {rs:?}");
            }
        }
        tokio::time::sleep(Duration::from_millis(800)).await;
        for (o, id, catch_up) in &rules {
            let n = runs(&app, o, id).await.len();
            assert_eq!(
                n,
                if *catch_up == "once" { 2 } else { 1 },
                "{m}: {catch_up}"
            );
            let r = get_now(&app, &o.token, &format!("/api/v1/automation/rules/{id}/")).await;
            let next: chrono::DateTime<chrono::Utc> =
                r.data()["next_slot"].as_str().unwrap().parse().unwrap();
            assert_eq!(next, slot + chrono::Duration::hours(4), "{m}: {catch_up}");
        }
        stop.send(true).unwrap();
        second.await.unwrap().unwrap();
        app.stop().await;
    }
}

/// Plan renewal: when a period ends, the scheduler starts the next one
/// and grants the plan's included credits — once.
#[tokio::test]
async fn a_plan_period_is_renewed_once() {
    for app in TestApp::both().await {
        let m = app.mode;
        let o = app.signup("Renewed").await;
        let sub = app
            .req(&o.token, "GET", "/api/v1/billing/subscription/", None)
            .await;
        let end: chrono::DateTime<chrono::Utc> = sub.data()["current_period_end"]
            .as_str()
            .or(sub.data()["period_end"].as_str())
            .unwrap_or_else(|| panic!("{m}: {}", sub.body))
            .parse()
            .unwrap();
        let before = credits(&app, &o).await.0;
        app.clock.set(end + chrono::Duration::seconds(1));
        let deadline = Instant::now() + Duration::from_secs(20);
        while credits(&app, &o).await.0 == before {
            assert!(Instant::now() < deadline, "{m}: never renewed");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_millis(1000)).await;
        assert_eq!(
            credits(&app, &o).await.0,
            before + 250.0,
            "{m}: the free plan's 250 credits, once"
        );
        app.stop().await;
    }
}

/// Bad rules are refused whole with their code, nothing saved; another
/// account's rules and runs are not found.
#[tokio::test]
async fn bad_rules_and_other_accounts() {
    for app in TestApp::both().await {
        let m = app.mode;
        let o = app.signup("Strict").await;
        let other = app.signup("Elsewhere").await;
        let (site, _) = app.site_and_sector(&o).await;
        let (other_site, _) = app.site_and_sector(&other).await;
        let base = json!({"site_id": site, "name": "Rule", "trigger": {"type": "schedule", "cron": "0 9 * * *"},
                          "stages": [{"action": "generate_content", "batch_size": 5}], "max_credits_per_run": 10});
        let with = |patch: Value| {
            let mut b = base.clone();
            b.as_object_mut()
                .unwrap()
                .extend(patch.as_object().unwrap().clone());
            b
        };
        for (body, status, code) in [
            (
                with(json!({"trigger": {"type": "schedule", "cron": "61 * * * *"}})),
                422,
                "INVALID_CRON",
            ),
            (
                with(json!({"trigger": {"type": "schedule", "cron": "0 0 30 2 *"}})),
                422,
                "CRON_NEVER_FIRES",
            ),
            (
                with(json!({"timezone": "Mars/Olympus_Mons"})),
                422,
                "UNKNOWN_TIMEZONE",
            ),
            (
                with(json!({"trigger": {"type": "event", "event_types": ["KeywordsDanced"]}})),
                422,
                "UNKNOWN_EVENT_TYPE",
            ),
            (
                with(json!({"conditions": [{"field": "mood", "operator": "gt", "value": 1}]})),
                422,
                "UNKNOWN_FIELD",
            ),
            (
                with(
                    json!({"conditions": [{"field": "new_ideas", "operator": "approx", "value": 1}]}),
                ),
                422,
                "UNKNOWN_OPERATOR",
            ),
            (
                with(
                    json!({"conditions": [{"field": "new_ideas", "operator": "contains", "value": "x"}]}),
                ),
                422,
                "INVALID_CONDITION",
            ),
            (
                with(json!({"stages": [{"action": "generate_ideas", "batch_size": 51}]})),
                422,
                "INVALID_BATCH_SIZE",
            ),
            (
                with(
                    json!({"stages": [{"action": "auto_cluster", "params": {"num_clusters": 0}}]}),
                ),
                422,
                "INVALID_PARAMS",
            ),
            (
                with(json!({"stages": [{"action": "publish", "params": {"slots": ["9am"]}}]})),
                422,
                "INVALID_PARAMS",
            ),
            (
                with(json!({"stages": [{"action": "dance"}]})),
                422,
                "INVALID_STAGES",
            ),
            (with(json!({"stages": []})), 422, "INVALID_STAGES"),
            (
                with(json!({"max_credits_per_run": -1})),
                422,
                "INVALID_BUDGET",
            ),
            (with(json!({"name": "  "})), 422, "INVALID_NAME"),
            (with(json!({"site_id": other_site})), 404, "NOT_FOUND"),
        ] {
            let r = app
                .req(
                    &o.token,
                    "POST",
                    "/api/v1/automation/rules/",
                    Some(body.clone()),
                )
                .await;
            assert_eq!(
                (r.status.as_u16(), r.code()),
                (status, code),
                "{m}: {body}: {}",
                r.body
            );
        }
        let r = get_now(&app, &o.token, "/api/v1/automation/rules/").await;
        assert_eq!(r.data()["count"], 0, "{m}: nothing saved: {}", r.body);
        // A good one, then what another account may not do with it.
        let rule = create_rule(&app, &o, base.clone()).await;
        let id = rule["id"].as_str().unwrap();
        let r = app
            .req(
                &o.token,
                "PATCH",
                &format!("/api/v1/automation/rules/{id}/"),
                Some(json!({"trigger": {"type": "schedule", "cron": "0 0 31 4 *"}})),
            )
            .await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::UNPROCESSABLE_ENTITY, "CRON_NEVER_FIRES"),
            "{m}"
        );
        for (method, path, body) in [
            ("GET", format!("/api/v1/automation/rules/{id}/"), None),
            (
                "PATCH",
                format!("/api/v1/automation/rules/{id}/"),
                Some(json!({"name": "theirs"})),
            ),
            ("DELETE", format!("/api/v1/automation/rules/{id}/"), None),
            (
                "POST",
                format!("/api/v1/automation/rules/{id}/execute/"),
                None,
            ),
            (
                "POST",
                format!("/api/v1/automation/rules/{id}/pause/"),
                None,
            ),
            (
                "POST",
                format!("/api/v1/automation/rules/{id}/dry_run/"),
                None,
            ),
        ] {
            let r = app.req(&other.token, method, &path, body).await;
            assert_eq!(
                r.status,
                StatusCode::NOT_FOUND,
                "{m}: {method} {path}: {}",
                r.body
            );
        }
        let r = app
            .req(
                &o.token,
                "POST",
                &format!("/api/v1/automation/rules/{id}/dry_run/"),
                Some(json!({"days": 31})),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{m}: {}",
            r.body
        );
        let r = get_now(&app, &other.token, "/api/v1/automation/rules/").await;
        assert_eq!(r.data()["count"], 0, "{m}");
        let r = get_now(
            &app,
            &o.token,
            "/api/v1/automation/scheduled-tasks/?firings=3",
        )
        .await;
        assert_eq!(
            r.data()["results"][0]["next_firings"]
                .as_array()
                .map(Vec::len),
            Some(3),
            "{m}: {}",
            r.body
        );
        let r = get_now(&app, &other.token, "/api/v1/automation/scheduled-tasks/").await;
        assert_eq!(r.data()["count"], 0, "{m}");
        let r = app
            .req(
                &o.token,
                "GET",
                "/api/v1/automation/runs/?status=bogus",
                None,
            )
            .await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::BAD_REQUEST, "INVALID_QUERY"),
            "{m}"
        );
        app.stop().await;
    }
}

/// The article stub, answering each call after a delay.
#[derive(Clone)]
struct SlowWriter(crate::writer_ai::Writer, Duration);

impl wiremock::Respond for SlowWriter {
    fn respond(&self, req: &wiremock::Request) -> wiremock::ResponseTemplate {
        self.0.respond(req).set_delay(self.1)
    }
}

/// Scale-out: the `igny8 workers` process driving a run is SIGKILLed while
/// the run's content job waits for the provider; a second process takes
/// the run and the job over. The run ends once; its stage launched one
/// job; every article is written and charged once.
#[tokio::test]
async fn a_run_whose_workers_process_is_killed_goes_on_once() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer};
    let _ = rustls::crypto::ring::default_provider().install_default();
    let app = TestApp::postgres_nats_without_workers().await;
    let schema = app.schema.clone().unwrap();
    let s = &app.state.settings;
    let log = std::env::temp_dir().join(format!("{schema}-automation-workers.log"));
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
            .env("IGNY8_SCHEDULER_TICK_MS", "100")
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&log)
                    .unwrap(),
            )
            .spawn()
            .unwrap()
    };
    let server = MockServer::start().await;
    let stub = crate::writer_ai::Writer::default();
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(SlowWriter(stub.clone(), Duration::from_secs(3)))
        .mount(&server)
        .await;
    let o = app.signup("Killed run").await;
    let r = app
        .req(&o.token, "PUT", "/api/v1/system/settings/integrations/openai/",
            Some(json!({"base_url": format!("{}/v1", server.uri()), "api_key": crate::writer_ai::KEY, "chat_model": crate::writer_ai::MODEL})))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let (site, sector) = app.site_and_sector(&o).await;
    let ids = tasks(&app, &o, &sector, 2, "kill").await;
    let before = credits(&app, &o).await;
    let rule = create_rule(
        &app,
        &o,
        json!({
            "site_id": site, "name": "Writer", "trigger": {"type": "manual"},
            "stages": [{"action": "generate_content", "batch_size": 5}], "max_credits_per_run": 20
        }),
    )
    .await;
    let mut first = worker();
    let r = execute(&app, &o, rule["id"].as_str().unwrap()).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let run = r.data()["run_id"].as_str().unwrap().to_string();
    // The first process launched the job and the provider has its first call.
    wait_run(&app, &o, &run, "launched its job", |r| {
        r["stages"][0]["jobs"]
            .as_array()
            .is_some_and(|j| !j.is_empty())
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while stub.seen.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "the provider was never called");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    first.kill().unwrap();
    first.wait().unwrap();
    let mut second = worker();
    let done = wait_run(&app, &o, &run, "ended", |r| r["status"] != "running").await;
    second.kill().unwrap();
    second.wait().unwrap();
    assert_eq!(
        done["status"],
        "succeeded",
        "{done}\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    assert_eq!(
        done["stages"][0]["jobs"].as_array().unwrap().len(),
        1,
        "one job for the stage: {done}"
    );
    let db = app.state.db.clone();
    let count = |sql: &'static str, id: String| {
        let db = db.clone();
        async move {
            let n: i64 = igny8_commands::on_db!(&db, p => sqlx::query_scalar(sql).bind(id).fetch_one(p).await.unwrap());
            n
        }
    };
    assert_eq!(
        count("SELECT count(*) FROM events WHERE aggregate_id = $1 AND event_type = 'StageJobLaunched'", run.clone()).await,
        1,
        "the job was launched once"
    );
    assert_eq!(
        count(
            "SELECT count(*) FROM events WHERE aggregate_id = $1 AND event_type = 'RunFinished'",
            run.clone()
        )
        .await,
        1,
        "the run ended once"
    );
    let mut charged = 0.0;
    for t in &ids {
        let task = get_now(&app, &o.token, &format!("/api/v1/writer/tasks/{t}/")).await;
        assert_eq!(task.data()["status"], "completed", "{}", task.body);
        let content = task.data()["content_id"].as_str().unwrap().to_string();
        assert_eq!(
            count("SELECT count(*) FROM events WHERE aggregate_id = $1 AND event_type = 'ContentVersionAdded'", content).await,
            1,
            "each article stored once"
        );
    }
    charged += done["credits_charged"].as_f64().unwrap();
    assert!(charged > 0.0, "{done}");
    assert_eq!(
        credits(&app, &o).await,
        (before.0 - charged, 0.0),
        "charged once, nothing left reserved"
    );
    app.stop().await;
}
