//! The writer end to end over HTTP, in both run modes: cluster → ideas →
//! tasks → content → review → revert with the offline provider; credits
//! reserved then charged once per idea and per article; the
//! cannibalization guard (also under concurrent creates); sanitised HTML;
//! an article never stored or charged twice when two workers run its job;
//! and the bad requests.

use crate::harness::{Owner, Resp, TestApp, job_env};
use crate::jobs::{clusters, setup, wait_done};
use axum::http::StatusCode;
use serde_json::{Value, json};

async fn head(app: &TestApp) -> i64 {
    app.state.feed.head().await.unwrap()
}

/// GET `path` once every projection has read what is committed now.
async fn get_now(app: &TestApp, token: &str, path: &str) -> Resp {
    let sep = if path.contains('?') { '&' } else { '?' };
    let h = head(app).await;
    app.req(token, "GET", &format!("{path}{sep}min_position={h}"), None)
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

/// Clustered keywords: (sector, cluster ids).
async fn clustered(app: &TestApp, o: &Owner) -> (String, Vec<String>) {
    let sector = setup(app, o).await;
    let r = app
        .req(
            &o.token,
            "POST",
            "/api/v1/planner/keywords/auto_cluster/",
            Some(json!({"sector_id": sector, "num_clusters": 3})),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let job = r.data()["job_id"].as_str().unwrap().to_string();
    assert_eq!(
        wait_done(app, &o.token, &job).await.data()["state"],
        "SUCCESS"
    );
    let ids = clusters(app, &o.token, &sector)
        .await
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    (sector, ids)
}

async fn job_of(app: &TestApp, o: &Owner, path: &str, body: Value) -> String {
    let r = app.req(&o.token, "POST", path, Some(body)).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}: {}", app.mode, r.body);
    r.data()["job_id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn cluster_to_ideas_to_tasks_to_content_to_review_and_revert() {
    for app in TestApp::both().await {
        let m = app.mode;
        let o = app.signup("Writer").await;
        let (sector, cl) = clustered(&app, &o).await;
        assert_eq!(credits(&app, &o).await, (240.0, 0.0), "{m}");
        // Out of range: refused before anything is reserved.
        for (body, code) in [
            (
                json!({"cluster_ids": [cl[0]], "ideas_per_cluster": 0}),
                "VALIDATION_ERROR",
            ),
            (
                json!({"cluster_ids": [cl[0]], "ideas_per_cluster": 11}),
                "VALIDATION_ERROR",
            ),
            (
                json!({"cluster_ids": (0..51).map(|_| uuid::Uuid::new_v4()).collect::<Vec<_>>()}),
                "VALIDATION_ERROR",
            ),
        ] {
            let r = app
                .req(
                    &o.token,
                    "POST",
                    "/api/v1/planner/clusters/auto_generate_ideas/",
                    Some(body.clone()),
                )
                .await;
            assert_eq!(
                (r.status, r.code()),
                (StatusCode::UNPROCESSABLE_ENTITY, code),
                "{m}: {body}: {}",
                r.body
            );
        }
        assert_eq!(credits(&app, &o).await, (240.0, 0.0), "{m}");

        // Ideas: 2 clusters × 2 ideas, reserved then charged per idea.
        let job = job_of(
            &app,
            &o,
            "/api/v1/planner/clusters/auto_generate_ideas/",
            json!({"cluster_ids": [cl[0], cl[1]], "ideas_per_cluster": 2}),
        )
        .await;
        let done = wait_done(&app, &o.token, &job).await;
        assert_eq!(done.data()["state"], "SUCCESS", "{m}: {}", done.body);
        assert_eq!(done.data()["result"]["result"]["ideas"], 4, "{m}");
        assert_eq!(done.data()["result"]["credits_charged"], 4, "{m}");
        assert_eq!(credits(&app, &o).await, (236.0, 0.0), "{m}");
        let r = get_now(
            &app,
            &o.token,
            &format!("/api/v1/planner/ideas/?cluster_id={}", cl[0]),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{m}: {}", r.body);
        let ideas = r.data()["results"].as_array().unwrap().clone();
        assert_eq!(ideas.len(), 2, "{m}: {}", r.body);
        for i in &ideas {
            assert_eq!(i["status"], "new");
            assert_eq!(i["cluster_id"], cl[0].as_str());
            assert!(!i["outline"].as_array().unwrap().is_empty());
            assert!(i["idea_title"].as_str().unwrap().len() > 5);
        }
        // The ideas' primary keywords are keywords of their cluster.
        let kw = get_now(
            &app,
            &o.token,
            &format!("/api/v1/planner/keywords/?cluster_id={}", cl[0]),
        )
        .await;
        let words: Vec<String> = kw.data()["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["keyword"].as_str().unwrap().to_string())
            .collect();
        assert!(
            ideas
                .iter()
                .all(|i| words.contains(&i["primary_keyword"].as_str().unwrap().to_string())),
            "{m}"
        );

        // Queue them: one task per idea; queuing again changes nothing.
        let ids: Vec<&str> = ideas.iter().map(|i| i["id"].as_str().unwrap()).collect();
        let r = app
            .req(
                &o.token,
                "POST",
                "/api/v1/planner/ideas/bulk_queue_to_writer/",
                Some(json!({"idea_ids": ids})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{m}: {}", r.body);
        assert_eq!(
            r.data()["queued"].as_array().unwrap().len(),
            2,
            "{m}: {}",
            r.body
        );
        let tasks: Vec<String> = r.data()["queued"]
            .as_array()
            .unwrap()
            .iter()
            .map(|q| q["task_id"].as_str().unwrap().to_string())
            .collect();
        let again = app
            .req(
                &o.token,
                "POST",
                "/api/v1/planner/ideas/bulk_queue_to_writer/",
                Some(json!({"idea_ids": ids})),
            )
            .await;
        assert_eq!(
            again.data()["queued"],
            r.data()["queued"],
            "{m}: {}",
            again.body
        );
        let t = get_now(
            &app,
            &o.token,
            &format!("/api/v1/writer/tasks/{}/", tasks[0]),
        )
        .await;
        assert_eq!(t.status, StatusCode::OK, "{m}: {}", t.body);
        assert_eq!(t.data()["status"], "queued");
        assert!(
            ids.contains(&t.data()["idea_id"].as_str().unwrap()),
            "{m}: lineage idea → task"
        );
        let i = get_now(
            &app,
            &o.token,
            &format!("/api/v1/planner/ideas/{}/", ids[0]),
        )
        .await;
        assert_eq!(i.data()["status"], "queued", "{m}");

        // Content: reserved per task, charged per 500 words delivered.
        let job = job_of(
            &app,
            &o,
            "/api/v1/writer/tasks/auto_generate_content/",
            json!({"task_ids": tasks}),
        )
        .await;
        let done = wait_done(&app, &o.token, &job).await;
        assert_eq!(done.data()["state"], "SUCCESS", "{m}: {}", done.body);
        assert_eq!(
            done.data()["result"]["result"]["articles"],
            2,
            "{m}: {}",
            done.body
        );
        let r = get_now(
            &app,
            &o.token,
            &format!("/api/v1/writer/content/?sector_id={sector}"),
        )
        .await;
        let list = r.data()["results"].as_array().unwrap().clone();
        assert_eq!(list.len(), 2, "{m}: {}", r.body);
        let mut expected_charge = 0.0;
        for c in &list {
            let words = c["word_count"].as_f64().unwrap();
            let target = get_now(
                &app,
                &o.token,
                &format!("/api/v1/writer/tasks/{}/", c["task_id"].as_str().unwrap()),
            )
            .await;
            assert_eq!(target.data()["status"], "completed", "{m}");
            assert_eq!(target.data()["content_id"], c["id"], "{m}");
            let target = target.data()["target_word_count"].as_f64().unwrap();
            assert!(
                (words - target).abs() <= target * 0.15,
                "{m}: {words} words for {target}"
            );
            expected_charge += (words / 500.0).ceil();
            let kw = c["primary_keyword"].as_str().unwrap().to_lowercase();
            assert!(
                c["title"].as_str().unwrap().to_lowercase().contains(&kw),
                "{m}: {}",
                c["title"]
            );
            assert!(
                c["meta_description"]
                    .as_str()
                    .unwrap()
                    .to_lowercase()
                    .contains(&kw)
            );
            assert!(c["meta_title"].as_str().unwrap().chars().count() <= 60);
            assert!(c["meta_description"].as_str().unwrap().chars().count() <= 160);
            let html = c["html_content"].as_str().unwrap();
            assert!(
                html.split("</p>")
                    .next()
                    .unwrap()
                    .to_lowercase()
                    .contains(&kw),
                "{m}: first paragraph"
            );
            assert!(html.contains("<h2>"), "{m}");
            assert_eq!(
                (c["status"].as_str(), c["version"].as_i64()),
                (Some("draft"), Some(1))
            );
            assert_eq!(c["author"]["kind"], "ai");
            assert_eq!(c["author"]["model"], "offline");
            assert_eq!(
                c["author"]["job_id"].as_str(),
                Some(job.as_str()),
                "{m}: lineage job → version"
            );
            assert_eq!(
                c["cluster_id"].as_str(),
                Some(cl[0].as_str()),
                "{m}: lineage cluster → content"
            );
            assert!(c["idea_id"].is_string(), "{m}");
        }
        assert_eq!(
            done.data()["result"]["credits_charged"].as_f64(),
            Some(expected_charge),
            "{m}: {}",
            done.body
        );
        assert_eq!(
            credits(&app, &o).await,
            (236.0 - expected_charge, 0.0),
            "{m}: charged once per article, nothing held"
        );

        // A person edits: sanitised, a new version attributed to them.
        let id = list[0]["id"].as_str().unwrap().to_string();
        let v1 = list[0]["html_content"].as_str().unwrap().to_string();
        let edited = "<h2 onclick=\"steal()\">Fresh start</h2><script>alert(1)</script><p>New words about it <a href=\"javascript:alert(1)\">here</a>.</p>";
        let r = app
            .req(
                &o.token,
                "PATCH",
                &format!("/api/v1/writer/content/{id}/"),
                Some(json!({"html_content": edited})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{m}: {}", r.body);
        assert_eq!(
            (
                r.data()["content_version"].as_i64(),
                r.data()["sanitized"].as_bool()
            ),
            (Some(2), Some(true)),
            "{m}"
        );
        let c = get_now(&app, &o.token, &format!("/api/v1/writer/content/{id}/")).await;
        let html = c.data()["html_content"].as_str().unwrap();
        for bad in ["script", "onclick", "javascript"] {
            assert!(
                !html.contains(bad),
                "{m}: {bad} reached the read model: {html}"
            );
        }
        assert_eq!(c.data()["author"]["kind"], "user");
        assert_eq!(
            c.data()["author"]["user_id"].as_str(),
            Some(o.user_id.as_str())
        );
        assert_eq!(c.data()["word_count"], 7, "{m}: {html}");

        // Versions, one version, the diff, revert.
        let r = app
            .req(
                &o.token,
                "GET",
                &format!("/api/v1/writer/content/{id}/versions/"),
                None,
            )
            .await;
        assert_eq!(r.data()["count"], 2, "{m}: {}", r.body);
        assert_eq!(r.data()["results"][0]["version"], 2, "newest first");
        let r = app
            .req(
                &o.token,
                "GET",
                &format!("/api/v1/writer/content/{id}/versions/1/"),
                None,
            )
            .await;
        assert_eq!(r.data()["html_content"].as_str(), Some(v1.as_str()), "{m}");
        let r = app
            .req(
                &o.token,
                "GET",
                &format!("/api/v1/writer/content/{id}/versions/2/diff/?against=1"),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{m}: {}", r.body);
        assert!(
            r.data()["lines"]
                .as_array()
                .unwrap()
                .iter()
                .any(|l| l["tag"] == "insert" && l["text"] == "Fresh start"),
            "{m}: {}",
            r.body
        );
        assert!(r.data()["removed"].as_i64().unwrap() > 0);
        assert!(
            r.data()["unified"]
                .as_str()
                .unwrap()
                .contains("+Fresh start"),
            "{m}"
        );
        let r = app
            .req(
                &o.token,
                "POST",
                &format!("/api/v1/writer/content/{id}/revert/"),
                Some(json!({"version": 1})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{m}: {}", r.body);
        assert_eq!(r.data()["content_version"], 3);
        let c = get_now(&app, &o.token, &format!("/api/v1/writer/content/{id}/")).await;
        assert_eq!(
            c.data()["html_content"].as_str(),
            Some(v1.as_str()),
            "{m}: reverted"
        );
        assert_eq!(c.data()["author"]["reverted_from"], 1);
        let r = app
            .req(
                &o.token,
                "POST",
                &format!("/api/v1/writer/content/{id}/revert/"),
                Some(json!({"version": 9})),
            )
            .await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::NOT_FOUND, "VERSION_NOT_FOUND"),
            "{m}"
        );

        // Review.
        let r = app
            .req(
                &o.token,
                "POST",
                &format!("/api/v1/writer/content/{id}/status/"),
                Some(json!({"status": "approved"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{m}: {}", r.body);
        let r = get_now(&app, &o.token, "/api/v1/writer/content/?status=approved").await;
        assert_eq!(r.data()["count"], 1, "{m}");
        let r = app
            .req(
                &o.token,
                "POST",
                &format!("/api/v1/writer/content/{id}/status/"),
                Some(json!({"status": "published"})),
            )
            .await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::UNPROCESSABLE_ENTITY, "INVALID_STATUS"),
            "{m}"
        );

        // Regenerate: a new AI version, the others stay.
        let before = credits(&app, &o).await.0;
        let job = job_of(
            &app,
            &o,
            &format!("/api/v1/writer/content/{id}/regenerate/"),
            json!({}),
        )
        .await;
        let done = wait_done(&app, &o.token, &job).await;
        assert_eq!(done.data()["state"], "SUCCESS", "{m}: {}", done.body);
        let c = get_now(&app, &o.token, &format!("/api/v1/writer/content/{id}/")).await;
        assert_eq!(
            (
                c.data()["version"].as_i64(),
                c.data()["author"]["kind"].as_str()
            ),
            (Some(4), Some("ai")),
            "{m}"
        );
        let charged = done.data()["result"]["credits_charged"].as_f64().unwrap();
        assert!(charged > 0.0);
        assert_eq!(credits(&app, &o).await, (before - charged, 0.0), "{m}");
        app.stop().await;
    }
}

#[tokio::test]
async fn a_primary_keyword_has_one_live_task_per_site_even_under_concurrent_creates() {
    for app in TestApp::both().await {
        let m = app.mode;
        let o = app.signup("Cannibal").await;
        let (_, sector) = app.site_and_sector(&o).await;
        let body = |kw: &str, shared: bool| json!({"sector_id": sector, "title": format!("About {kw}"), "primary_keyword": kw, "allow_shared_primary": shared});
        let r = app
            .req(
                &o.token,
                "POST",
                "/api/v1/writer/tasks/",
                Some(body("trail shoes", false)),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{m}: {}", r.body);
        let first = r.data()["id"].as_str().unwrap().to_string();
        // Case and spacing make no other keyword.
        let r = app
            .req(
                &o.token,
                "POST",
                "/api/v1/writer/tasks/",
                Some(body("Trail  Shoes", false)),
            )
            .await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::CONFLICT, "KEYWORD_CANNIBALIZATION"),
            "{m}: {}",
            r.body
        );
        assert!(
            r.body["error"].as_str().unwrap().contains(&first),
            "{m}: names the other task"
        );
        let r = app
            .req(
                &o.token,
                "POST",
                "/api/v1/writer/tasks/",
                Some(body("trail shoes", true)),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::CREATED,
            "{m}: shared on purpose: {}",
            r.body
        );
        // Deleting the first frees the keyword only when no other holds it.
        let r = app
            .req(
                &o.token,
                "DELETE",
                &format!("/api/v1/writer/tasks/{first}/"),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{m}");
        let r = app
            .req(
                &o.token,
                "POST",
                "/api/v1/writer/tasks/",
                Some(body("trail shoes", false)),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::CONFLICT,
            "{m}: the shared task still holds it"
        );

        // A retried create with its Idempotency-Key answers the first task.
        let auth = format!("Bearer {}", o.token);
        let hdrs = [
            ("authorization", auth.as_str()),
            ("idempotency-key", "task-once"),
        ];
        let a = app
            .call(
                "POST",
                "/api/v1/writer/tasks/",
                Some(body("idem shoes", false)),
                &hdrs,
            )
            .await;
        let b = app
            .call(
                "POST",
                "/api/v1/writer/tasks/",
                Some(body("idem shoes", false)),
                &hdrs,
            )
            .await;
        assert_eq!(
            (a.status, b.status),
            (StatusCode::CREATED, StatusCode::CREATED),
            "{m}: {}",
            b.body
        );
        assert_eq!(a.data()["id"], b.data()["id"], "{m}");
        assert_eq!(
            b.headers
                .get("idempotent-replayed")
                .map(|v| v.to_str().unwrap()),
            Some("true"),
            "{m}"
        );

        // Eight concurrent creates with a new keyword: exactly one wins.
        let futs = (0..8).map(|_| {
            app.req(
                &o.token,
                "POST",
                "/api/v1/writer/tasks/",
                Some(body("road shoes", false)),
            )
        });
        let all = futures::future::join_all(futs).await;
        let won = all
            .iter()
            .filter(|r| r.status == StatusCode::CREATED)
            .count();
        let refused = all
            .iter()
            .filter(|r| r.code() == "KEYWORD_CANNIBALIZATION")
            .count();
        assert_eq!(
            (won, refused),
            (1, 7),
            "{m}: {:?}",
            all.iter().map(|r| r.status).collect::<Vec<_>>()
        );
        let r = get_now(&app, &o.token, "/api/v1/writer/tasks/?search=road").await;
        assert_eq!(r.data()["count"], 1, "{m}");
        app.stop().await;
    }
}

#[tokio::test]
async fn a_content_job_run_by_two_workers_stores_and_charges_each_article_once() {
    for app in TestApp::both().await {
        let m = app.mode;
        let o = app.signup("TwiceWriter").await;
        let (_, sector) = app.site_and_sector(&o).await;
        let mut tasks = vec![];
        for kw in ["alpha topic", "beta topic", "gamma topic"] {
            let r = app.req(&o.token, "POST", "/api/v1/writer/tasks/", Some(json!({"sector_id": sector, "title": kw, "primary_keyword": kw, "target_word_count": 600}))).await;
            assert_eq!(r.status, StatusCode::CREATED, "{m}: {}", r.body);
            tasks.push(r.data()["id"].as_str().unwrap().to_string());
        }
        let job = job_of(
            &app,
            &o,
            "/api/v1/writer/tasks/auto_generate_content/",
            json!({"task_ids": tasks}),
        )
        .await;
        let job_id: uuid::Uuid = job.parse().unwrap();
        // Redelivery racing the app's own worker: three workers at once.
        let env = job_env(&app.state);
        let (a, b) = tokio::join!(
            igny8_workers::jobs::run_job(&env, job_id, "w-a"),
            igny8_workers::jobs::run_job(&env, job_id, "w-b"),
        );
        assert!(a.is_ok() && b.is_ok(), "{m}: {a:?} {b:?}");
        let done = wait_done(&app, &o.token, &job).await;
        assert_eq!(done.data()["state"], "SUCCESS", "{m}: {}", done.body);
        let versions: i64 = igny8_commands::on_db!(app.state.bus.db(), p => sqlx::query_scalar(
            "SELECT count(*) FROM events WHERE event_type = 'ContentVersionAdded' AND CAST(metadata AS TEXT) LIKE $1")
            .bind(format!("%{job}%")).fetch_one(p).await.unwrap());
        assert_eq!(versions, 3, "{m}: one version per article");
        let captures: i64 = igny8_commands::on_db!(app.state.bus.db(), p => sqlx::query_scalar(
            "SELECT count(*) FROM events WHERE event_type = 'CreditsCaptured' AND CAST(payload AS TEXT) LIKE $1")
            .bind(format!("%{job}:%")).fetch_one(p).await.unwrap());
        assert_eq!(captures, 3, "{m}: one charge per article");
        // 600 words ± 15%: 2 credits each.
        assert_eq!(credits(&app, &o).await, (244.0, 0.0), "{m}");
        assert_eq!(done.data()["result"]["credits_charged"], 6, "{m}");
        // A deleted task's content keeps its primary keyword.
        let r = app
            .req(
                &o.token,
                "DELETE",
                &format!("/api/v1/writer/tasks/{}/", tasks[0]),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{m}: {}", r.body);
        let r = app.req(&o.token, "POST", "/api/v1/writer/tasks/", Some(json!({"sector_id": sector, "title": "again", "primary_keyword": "alpha topic"}))).await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::CONFLICT, "KEYWORD_CANNIBALIZATION"),
            "{m}: {}",
            r.body
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn bad_writer_requests() {
    for app in TestApp::both().await {
        let m = app.mode;
        let o = app.signup("BadWriter").await;
        let other = app.signup("Other").await;
        let (_, sector) = app.site_and_sector(&o).await;
        let post = |path: &'static str, body: Value| {
            let token = o.token.clone();
            let app = &app;
            async move { app.req(&token, "POST", path, Some(body)).await }
        };
        let cases: Vec<(&str, Value, StatusCode, &str)> = vec![
            (
                "/api/v1/writer/tasks/",
                json!({"sector_id": sector, "title": "x", "primary_keyword": "k", "content_type": "novel"}),
                StatusCode::UNPROCESSABLE_ENTITY,
                "INVALID_CONTENT_TYPE",
            ),
            (
                "/api/v1/writer/tasks/",
                json!({"sector_id": sector, "title": "x", "primary_keyword": "k", "target_word_count": 50}),
                StatusCode::UNPROCESSABLE_ENTITY,
                "INVALID_WORD_COUNT",
            ),
            (
                "/api/v1/writer/tasks/",
                json!({"sector_id": sector, "title": " ", "primary_keyword": "k"}),
                StatusCode::UNPROCESSABLE_ENTITY,
                "INVALID_TITLE",
            ),
            (
                "/api/v1/writer/tasks/",
                json!({"sector_id": sector, "title": "x", "primary_keyword": "k", "outline": [{"heading": "h", "level": 5}]}),
                StatusCode::UNPROCESSABLE_ENTITY,
                "INVALID_OUTLINE",
            ),
            (
                "/api/v1/writer/tasks/",
                json!({"sector_id": uuid::Uuid::new_v4(), "title": "x", "primary_keyword": "k"}),
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
            ),
            (
                "/api/v1/writer/tasks/auto_generate_content/",
                json!({"task_ids": []}),
                StatusCode::UNPROCESSABLE_ENTITY,
                "EMPTY_SELECTION",
            ),
            (
                "/api/v1/writer/tasks/auto_generate_content/",
                json!({"task_ids": (0..101).map(|_| uuid::Uuid::new_v4()).collect::<Vec<_>>()}),
                StatusCode::UNPROCESSABLE_ENTITY,
                "TOO_MANY_TASKS",
            ),
            (
                "/api/v1/writer/tasks/auto_generate_content/",
                json!({"task_ids": [uuid::Uuid::new_v4()]}),
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
            ),
            (
                "/api/v1/planner/clusters/auto_generate_ideas/",
                json!({"cluster_ids": []}),
                StatusCode::UNPROCESSABLE_ENTITY,
                "EMPTY_SELECTION",
            ),
            (
                "/api/v1/planner/clusters/auto_generate_ideas/",
                json!({"cluster_ids": [uuid::Uuid::new_v4()]}),
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
            ),
            (
                "/api/v1/planner/ideas/bulk_queue_to_writer/",
                json!({"idea_ids": [uuid::Uuid::new_v4()]}),
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
            ),
            (
                "/api/v1/planner/ideas/",
                json!({"sector_id": sector, "idea_title": "x", "primary_keyword": "k", "target_word_count": 20000}),
                StatusCode::UNPROCESSABLE_ENTITY,
                "INVALID_WORD_COUNT",
            ),
        ];
        for (path, body, status, code) in cases {
            let r = post(path, body.clone()).await;
            assert_eq!(
                (r.status, r.code()),
                (status, code),
                "{m}: {path} {body}: {}",
                r.body
            );
        }
        // Another account's task and content are not found; nothing was written for the refusals.
        let r = post(
            "/api/v1/writer/tasks/",
            json!({"sector_id": sector, "title": "Mine", "primary_keyword": "mine"}),
        )
        .await;
        let task = r.data()["id"].as_str().unwrap().to_string();
        for (method, path) in [
            ("GET", format!("/api/v1/writer/tasks/{task}/")),
            ("PATCH", format!("/api/v1/writer/tasks/{task}/")),
            ("DELETE", format!("/api/v1/writer/tasks/{task}/")),
        ] {
            let body = (method == "PATCH").then(|| json!({"title": "theirs"}));
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
                &other.token,
                "POST",
                "/api/v1/writer/tasks/auto_generate_content/",
                Some(json!({"task_ids": [task]})),
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{m}");
        let r = get_now(&app, &o.token, "/api/v1/writer/tasks/").await;
        assert_eq!(
            r.data()["count"],
            1,
            "{m}: only the valid task exists: {}",
            r.body
        );
        let r = app
            .req(
                &o.token,
                "GET",
                "/api/v1/writer/tasks/?ordering=-nonsense",
                None,
            )
            .await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::BAD_REQUEST, "INVALID_QUERY"),
            "{m}"
        );
        let r = app
            .req(
                &o.token,
                "GET",
                &format!("/api/v1/writer/content/{}/", uuid::Uuid::new_v4()),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{m}");
        assert_eq!(
            credits(&app, &o).await,
            (250.0, 0.0),
            "{m}: nothing reserved by a refusal"
        );
        app.stop().await;
    }
}

/// Internal links: an article whose text names another article's primary
/// keyword links to it (at most three, never to itself); the earlier
/// article, whose text names no other, links to nothing.
#[tokio::test]
async fn an_article_links_to_the_sites_other_articles_it_mentions() {
    for app in TestApp::both().await {
        let m = app.mode;
        let o = app.signup("Linker").await;
        let (_, sector) = app.site_and_sector(&o).await;
        let task = |title: &str, kw: &str, secondary: Vec<&str>| {
            json!({"sector_id": sector, "title": title, "primary_keyword": kw,
                   "secondary_keywords": secondary, "target_word_count": 600})
        };
        let mut contents = vec![];
        // Four earlier articles; the last one mentions them all (and itself).
        let earlier = [
            "alpine hiking boots",
            "trekking poles",
            "rain shells",
            "camp stoves",
        ];
        let mut specs: Vec<Value> = earlier
            .iter()
            .map(|kw| task(&format!("Guide to {kw}"), kw, vec![]))
            .collect();
        specs.push(task(
            "Mountain trail maps",
            "mountain trail maps",
            earlier.to_vec(),
        ));
        for spec in specs {
            let r = app
                .req(&o.token, "POST", "/api/v1/writer/tasks/", Some(spec))
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{m}: {}", r.body);
            let id = r.data()["id"].as_str().unwrap().to_string();
            // One job per article, in order: each sees the ones before it.
            let job = job_of(
                &app,
                &o,
                "/api/v1/writer/tasks/auto_generate_content/",
                json!({"task_ids": [id]}),
            )
            .await;
            assert_eq!(
                wait_done(&app, &o.token, &job).await.data()["state"],
                "SUCCESS",
                "{m}"
            );
            let t = get_now(&app, &o.token, &format!("/api/v1/writer/tasks/{id}/")).await;
            contents.push(t.data()["content_id"].as_str().unwrap().to_string());
        }
        let first = get_now(
            &app,
            &o.token,
            &format!("/api/v1/writer/content/{}/", contents[0]),
        )
        .await;
        assert_eq!(
            first.data()["internal_links"],
            json!([]),
            "{m}: {}",
            first.body
        );
        let last = get_now(
            &app,
            &o.token,
            &format!("/api/v1/writer/content/{}/", contents[4]),
        )
        .await;
        let links = last.data()["internal_links"].as_array().unwrap().clone();
        assert_eq!(links.len(), 3, "{m}: at most three: {}", last.body);
        let html = last.data()["html_content"].as_str().unwrap().to_lowercase();
        for l in &links {
            let target = l["content_id"].as_str().unwrap();
            let i = contents
                .iter()
                .position(|c| c == target)
                .expect("a link to one of the site's articles");
            assert!(i < 4, "{m}: never to itself");
            assert_eq!(l["keyword"], earlier[i], "{m}");
            assert!(
                html.contains(earlier[i]),
                "{m}: the text names {}",
                earlier[i]
            );
        }
        // The version records them too.
        let v = get_now(
            &app,
            &o.token,
            &format!("/api/v1/writer/content/{}/versions/1/", contents[4]),
        )
        .await;
        assert_eq!(v.data()["internal_links"], json!(links), "{m}: {}", v.body);
        app.stop().await;
    }
}
