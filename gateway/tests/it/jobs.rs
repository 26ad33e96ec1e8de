//! The clustering job end to end, in both run modes: 202 and a job id,
//! progress in the seeds' shape, credits reserved then captured once,
//! clusters saved once even when two workers run the same job, cancel,
//! the job's event stream, and the bad requests.

use crate::harness::{Owner, Resp, TestApp, job_env};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

pub(crate) async fn setup(app: &TestApp, o: &Owner) -> String {
    let (_, sector) = app.site_and_sector(o).await;
    let mut csv = String::from("keyword,volume\n");
    for (topic, words) in [
        (
            "running shoes",
            [
                "best",
                "cheap",
                "trail",
                "women's",
                "men's",
                "waterproof",
                "lightweight",
                "wide",
                "kids",
                "sale",
            ],
        ),
        (
            "chocolate cake recipe",
            [
                "easy",
                "vegan",
                "moist",
                "best",
                "quick",
                "gluten free",
                "simple",
                "homemade",
                "rich",
                "classic",
            ],
        ),
        (
            "flights to paris",
            [
                "cheap",
                "last minute",
                "direct",
                "business class",
                "budget",
                "one way",
                "return",
                "weekend",
                "summer",
                "best",
            ],
        ),
    ] {
        for (i, w) in words.iter().enumerate() {
            csv.push_str(&format!("{w} {topic},{}\n", 100 + i * 10));
        }
    }
    let r = app.import_csv(&o.token, &sector, csv).await;
    assert_eq!(r.data()["imported"], 30, "{}", r.body);
    sector
}

pub(crate) async fn wait_done(app: &TestApp, token: &str, job: &str) -> Resp {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let r = app
            .req(
                token,
                "GET",
                &format!("/api/v1/system/settings/task_progress/{job}/"),
                None,
            )
            .await;
        let state = r.data()["state"].as_str().unwrap_or("").to_string();
        if ["SUCCESS", "FAILURE", "CANCELLED"].contains(&state.as_str())
            || Instant::now() > deadline
        {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn auto_cluster_runs_as_a_job_and_charges_once() {
    for app in TestApp::both().await {
        let m = app.mode;
        let o = app.signup("Jobs").await;
        let sector = setup(&app, &o).await;
        let r = app
            .req(
                &o.token,
                "POST",
                "/api/v1/planner/keywords/auto_cluster/",
                Some(json!({"sector_id": sector, "num_clusters": 3})),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{m}: {}", r.body);
        let job = r.data()["job_id"].as_str().unwrap().to_string();
        let r = wait_done(&app, &o.token, &job).await;
        assert_eq!(r.data()["state"], "SUCCESS", "{m}: {}", r.body);
        assert_eq!(
            (
                r.data()["meta"]["phase"].as_str(),
                r.data()["meta"]["percentage"].as_i64()
            ),
            (Some("DONE"), Some(100)),
            "{m}"
        );
        assert_eq!(
            r.data()["result"]["result"]["clusters"],
            3,
            "{m}: {}",
            r.body
        );
        // 10 credits reserved at once, captured once.
        let r = app
            .req(&o.token, "GET", "/api/v1/billing/credits/", None)
            .await;
        assert_eq!(
            (r.data()["balance"].as_i64(), r.data()["reserved"].as_i64()),
            (Some(240), Some(0)),
            "{m}"
        );
        // The job's answer speaks credits, and its position reads what it wrote.
        let done = wait_done(&app, &o.token, &job).await;
        assert_eq!(
            done.data()["result"]["credits_charged"],
            10,
            "{m}: {}",
            done.body
        );
        assert_eq!(done.data()["meta"]["credits_reserved"], 10, "{m}");
        let job_position = done.data()["position"].as_i64().expect("position");
        let r = app
            .req(
                &o.token,
                "GET",
                &format!("/api/v1/jobs/?min_position={job_position}"),
                None,
            )
            .await;
        assert_eq!(
            r.data()["results"][0]["credits_charged"],
            10,
            "{m}: {}",
            r.body
        );
        // The clusters: the three topics, every keyword in one.
        let head = job_position;
        let r = app
            .req(
                &o.token,
                "GET",
                &format!(
                    "/api/v1/planner/clusters/?sector_id={sector}&min_position={job_position}"
                ),
                None,
            )
            .await;
        let clusters = r.data()["results"].as_array().unwrap().clone();
        assert_eq!(clusters.len(), 3, "{m}: {}", r.body);
        assert_eq!(r.data()["count"], 3, "{m}");
        // Paginated, searchable, ordered; one cluster readable on its own.
        let r = app
            .req(
                &o.token,
                "GET",
                &format!("/api/v1/planner/clusters/?sector_id={sector}&page_size=2&ordering=name"),
                None,
            )
            .await;
        let page: Vec<&str> = r.data()["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            (r.data()["count"].as_i64(), page.len()),
            (Some(3), 2),
            "{m}: {}",
            r.body
        );
        assert!(page[0] <= page[1], "{m}: ordered by name: {page:?}");
        assert!(
            r.data()["next"].as_str().unwrap().contains("page=2"),
            "{m}: {}",
            r.body
        );
        // A page past the end still tells the total.
        let r = app
            .req(
                &o.token,
                "GET",
                &format!("/api/v1/planner/clusters/?sector_id={sector}&page=5&page_size=2"),
                None,
            )
            .await;
        assert_eq!(
            (
                r.data()["count"].as_i64(),
                r.data()["results"].as_array().map(Vec::len)
            ),
            (Some(3), Some(0)),
            "{m}: {}",
            r.body
        );
        let r = app
            .req(
                &o.token,
                "GET",
                &format!("/api/v1/planner/clusters/?sector_id={sector}&search=CAKE"),
                None,
            )
            .await;
        assert_eq!(r.data()["count"], 1, "{m}: {}", r.body);
        let cake = r.data()["results"][0].clone();
        assert_eq!(cake["keyword_count"], 10, "{m}");
        let r = app
            .req(
                &o.token,
                "GET",
                &format!("/api/v1/planner/clusters/{}/", cake["id"].as_str().unwrap()),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{m}: {}", r.body);
        assert_eq!(
            (
                &r.data()["name"],
                &r.data()["keyword_count"],
                &r.data()["total_volume"]
            ),
            (&cake["name"], &cake["keyword_count"], &cake["total_volume"]),
            "{m}"
        );
        let r = app
            .req(
                &o.token,
                "GET",
                "/api/v1/planner/clusters/?ordering=size",
                None,
            )
            .await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::BAD_REQUEST, "INVALID_QUERY"),
            "{m}"
        );
        let stranger = app.signup("Stranger").await;
        let r = app
            .req(
                &stranger.token,
                "GET",
                &format!("/api/v1/planner/clusters/{}/", cake["id"].as_str().unwrap()),
                None,
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::NOT_FOUND,
            "{m}: another account's cluster"
        );
        let r = app
            .req(&stranger.token, "GET", "/api/v1/planner/clusters/", None)
            .await;
        assert_eq!(r.data()["count"], 0, "{m}: another account sees none");
        let mut names: Vec<String> = clusters
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_string())
            .collect();
        names.sort();
        assert!(
            names.iter().any(|n| n.contains("paris"))
                && names.iter().any(|n| n.contains("cake"))
                && names.iter().any(|n| n.contains("shoes")),
            "{m}: {names:?}"
        );
        assert_eq!(
            clusters
                .iter()
                .map(|c| c["keyword_count"].as_i64().unwrap())
                .sum::<i64>(),
            30,
            "{m}"
        );
        let r = app
            .req(
                &o.token,
                "GET",
                &format!("/api/v1/planner/keywords/?sector_id={sector}&unclustered=true"),
                None,
            )
            .await;
        assert_eq!(r.data()["count"], 0, "{m}: every keyword clustered");
        // The usage log.
        let r = app
            .req(
                &o.token,
                "GET",
                &format!("/api/v1/billing/usage/?min_position={head}"),
                None,
            )
            .await;
        assert_eq!(
            (
                r.data()["count"].as_i64(),
                r.data()["results"][0]["operation"].as_str(),
                r.data()["results"][0]["credits"].as_i64()
            ),
            (Some(1), Some("auto_cluster"), Some(10)),
            "{m}: {}",
            r.body
        );
        assert_eq!(r.data()["results"][0]["model"], "offline", "{m}");
        // The job list, cancel of a finished job, and the event stream.
        let r = app
            .req(
                &o.token,
                "GET",
                &format!("/api/v1/jobs/?min_position={head}"),
                None,
            )
            .await;
        assert_eq!(
            (
                r.data()["count"].as_i64(),
                r.data()["results"][0]["state"].as_str()
            ),
            (Some(1), Some("SUCCESS")),
            "{m}"
        );
        let r = app
            .req(
                &o.token,
                "POST",
                &format!("/api/v1/jobs/{job}/cancel/"),
                None,
            )
            .await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::CONFLICT, "JOB_FINISHED"),
            "{m}"
        );
        let req = Request::get(format!("/api/v1/jobs/{job}/events/"))
            .header("authorization", format!("Bearer {}", o.token))
            .body(Body::empty())
            .unwrap();
        let res = tower::ServiceExt::oneshot(app.router.clone(), req)
            .await
            .unwrap();
        assert_eq!(res.headers()["content-type"], "text/event-stream", "{m}");
        let text = String::from_utf8(
            http_body_util::BodyExt::collect(res.into_body())
                .await
                .unwrap()
                .to_bytes()
                .to_vec(),
        )
        .unwrap();
        assert!(
            text.contains("event: progress") && text.contains("SUCCESS"),
            "{m}: {text}"
        );
        // Running the finished job again (a redelivery) changes nothing.
        let id: uuid::Uuid = job.parse().unwrap();
        let before = app.state.feed.head().await.unwrap();
        igny8_workers::jobs::run_job(&job_env(&app.state), id, "late-worker")
            .await
            .unwrap();
        assert_eq!(
            app.state.feed.head().await.unwrap(),
            before,
            "{m}: a finished job writes nothing"
        );
        // An editor without a grant on the job's site sees neither the job nor its progress.
        let email = format!("ed-{}@example.com", &o.account_id[..8]);
        let r = app
            .req(
                &o.token,
                "POST",
                "/api/v1/auth/users/",
                Some(json!({"email": email, "password": "password1", "role": "editor"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{m}: {}", r.body);
        let editor = app.login(&email, "password1").await;
        let r = app
            .req(
                &editor,
                "GET",
                &format!("/api/v1/system/settings/task_progress/{job}/"),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{m}");
        let r = app
            .req(
                &editor,
                "GET",
                &format!("/api/v1/jobs/?min_position={head}"),
                None,
            )
            .await;
        assert_eq!(
            (r.status, r.data()["count"].as_i64()),
            (StatusCode::OK, Some(0)),
            "{m}"
        );
        // The list filters by state.
        let r = app
            .req(
                &o.token,
                "GET",
                &format!("/api/v1/jobs/?state=SUCCESS&page_size=1&min_position={head}"),
                None,
            )
            .await;
        assert_eq!(r.data()["count"], 1, "{m}");
        // Another account's job is 404.
        let other = app.signup("Other").await;
        let r = app
            .req(
                &other.token,
                "GET",
                &format!("/api/v1/system/settings/task_progress/{job}/"),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{m}");
        app.stop().await;
    }
}

#[tokio::test]
async fn two_workers_on_one_job_save_and_charge_once() {
    for app in TestApp::both().await {
        let m = app.mode;
        let o = app.signup("Twice").await;
        let sector = setup(&app, &o).await;
        let account: uuid::Uuid = o.account_id.parse().unwrap();
        let ctx = igny8_commands::CommandContext {
            account_id: Some(o.account_id.clone()),
            actor: "test".into(),
            ..Default::default()
        };
        // A job whose first worker started it and died (attempt 1 never finishes) …
        let (job, _) = igny8_commands::jobs::create(
            &app.state.bus,
            account,
            "auto_cluster",
            json!({"sector_id": sector, "num_clusters": 3}),
            10_000,
            &ctx,
        )
        .await
        .unwrap();
        // (The app's own worker races us for it: the job may even have finished.)
        let dead = match igny8_commands::jobs::start(&app.state.bus, job, "dead-worker", &ctx).await
        {
            Ok(attempt) => Some(attempt),
            Err(igny8_commands::CommandError::Domain {
                code: "JOB_FINISHED",
                ..
            }) => None,
            Err(e) => panic!("{m}: {e}"),
        };
        // … is run by two workers at once (redelivery racing the running worker).
        let env = job_env(&app.state);
        let (a, b) = tokio::join!(
            igny8_workers::jobs::run_job(&env, job, "w-a"),
            igny8_workers::jobs::run_job(&env, job, "w-b"),
        );
        // The loser stops quietly (superseded, or the job finished): no error either way.
        assert!(a.is_ok() && b.is_ok(), "{m}: {a:?} {b:?}");
        let r = wait_done(&app, &o.token, &job.to_string()).await;
        assert_eq!(r.data()["state"], "SUCCESS", "{m}: {}", r.body);
        if let Some(dead) = dead {
            assert!(
                r.data()["meta"]["attempt"].as_i64().unwrap() > i64::from(dead),
                "{m}: a new attempt after the lost worker"
            );
        }
        let r = app
            .req(&o.token, "GET", "/api/v1/billing/credits/", None)
            .await;
        assert_eq!(
            (r.data()["balance"].as_i64(), r.data()["reserved"].as_i64()),
            (Some(240), Some(0)),
            "{m}: charged once"
        );
        let runs: i64 = igny8_commands::on_db!(app.state.bus.db(), p => sqlx::query_scalar(
            "SELECT count(*) FROM events WHERE event_type = 'ClustersAssigned' AND aggregate_id = $1").bind(&sector).fetch_one(p).await.unwrap());
        assert_eq!(runs, 1, "{m}: the clusters were saved once");
        app.stop().await;
    }
}

#[tokio::test]
async fn bad_cluster_requests() {
    for app in TestApp::both().await {
        let m = app.mode;
        let o = app.signup("Bad").await;
        let sector = setup(&app, &o).await;
        let post = |body: Value| {
            app.req(
                &o.token,
                "POST",
                "/api/v1/planner/keywords/auto_cluster/",
                Some(body),
            )
        };
        assert_eq!(
            post(json!({"sector_id": sector, "strategy": "embeddings"}))
                .await
                .code(),
            "STRATEGY_UNAVAILABLE",
            "{m}"
        );
        assert_eq!(
            post(json!({"sector_id": sector, "strategy": "magic"}))
                .await
                .code(),
            "INVALID_STRATEGY",
            "{m}"
        );
        assert_eq!(
            post(json!({"sector_id": sector, "num_clusters": 0}))
                .await
                .code(),
            "INVALID_NUM_CLUSTERS",
            "{m}"
        );
        assert_eq!(
            post(json!({"sector_id": sector, "num_clusters": 31}))
                .await
                .code(),
            "INVALID_NUM_CLUSTERS",
            "{m}"
        );
        assert_eq!(
            post(json!({"keyword_ids": []})).await.code(),
            "EMPTY_SELECTION",
            "{m}"
        );
        assert_eq!(post(json!({})).await.code(), "VALIDATION_ERROR", "{m}");
        // An empty sector (a second one on the same site).
        let head = app.state.feed.head().await.unwrap();
        let r = app
            .req(
                &o.token,
                "GET",
                &format!("/api/v1/auth/sites/?min_position={head}"),
                None,
            )
            .await;
        let site = r.data()["results"][0]["id"].as_str().unwrap().to_string();
        let r = app
            .req(
                &o.token,
                "POST",
                &format!("/api/v1/auth/sites/{site}/sectors/"),
                Some(json!({"name": "Empty"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{m}: {}", r.body);
        let empty = r.data()["id"].as_str().unwrap().to_string();
        assert_eq!(
            post(json!({"sector_id": empty})).await.code(),
            "EMPTY_SELECTION",
            "{m}"
        );
        // Another account's keywords; a stranger's sector.
        let other = app.signup("Other").await;
        let osector = setup(&app, &other).await;
        let head = app.state.feed.head().await.unwrap();
        let r = app
            .req(
                &other.token,
                "GET",
                &format!("/api/v1/planner/keywords/?sector_id={osector}&min_position={head}"),
                None,
            )
            .await;
        let theirs: Vec<Value> = r.data()["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["id"].clone())
            .collect();
        let r = post(json!({"keyword_ids": theirs})).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{m}: {}", r.body);
        let r = post(json!({"sector_id": osector})).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{m}");
        // Short of credits: 402, no job, nothing reserved.
        app.req(
            &o.token,
            "POST",
            "/api/v1/commands/SpendCredits",
            Some(json!({"amount": 245})),
        )
        .await;
        let before = app.state.feed.head().await.unwrap();
        let r = post(json!({"sector_id": sector})).await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::PAYMENT_REQUIRED, "INSUFFICIENT_CREDITS"),
            "{m}"
        );
        assert_eq!(
            app.state.feed.head().await.unwrap(),
            before,
            "{m}: nothing written"
        );
        app.stop().await;
    }
}

pub(crate) async fn clusters(app: &TestApp, token: &str, sector: &str) -> Vec<Value> {
    let head = app.state.feed.head().await.unwrap();
    let r = app
        .req(
            token,
            "GET",
            &format!("/api/v1/planner/clusters/?sector_id={sector}&min_position={head}"),
            None,
        )
        .await;
    r.data()["results"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn clusters_rename_split_move_merge_and_delete() {
    for app in TestApp::both().await {
        let m = app.mode;
        let o = app.signup("Edits").await;
        let sector = setup(&app, &o).await;
        let r = app
            .req(
                &o.token,
                "POST",
                "/api/v1/planner/keywords/auto_cluster/",
                Some(json!({"sector_id": sector, "num_clusters": 3})),
            )
            .await;
        let job = r.data()["job_id"].as_str().unwrap().to_string();
        assert_eq!(
            wait_done(&app, &o.token, &job).await.data()["state"],
            "SUCCESS",
            "{m}"
        );
        let cs = clusters(&app, &o.token, &sector).await;
        assert_eq!(cs.len(), 3, "{m}");
        let (a, b) = (
            cs[0]["id"].as_str().unwrap().to_string(),
            cs[1]["id"].as_str().unwrap().to_string(),
        );
        // Rename.
        let r = app
            .req(
                &o.token,
                "PATCH",
                &format!("/api/v1/planner/clusters/{a}/"),
                Some(json!({"name": "Group A"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{m}: {}", r.body);
        assert_eq!(
            app.req(
                &o.token,
                "PATCH",
                &format!("/api/v1/planner/clusters/{a}/"),
                Some(json!({"name": " "}))
            )
            .await
            .code(),
            "INVALID_NAME",
            "{m}"
        );
        let cs = clusters(&app, &o.token, &sector).await;
        assert!(cs.iter().any(|c| c["name"] == "Group A"), "{m}");
        // Split two keywords of A into a new cluster.
        let head = app.state.feed.head().await.unwrap();
        let r = app
            .req(
                &o.token,
                "GET",
                &format!("/api/v1/planner/keywords/?cluster_id={a}&min_position={head}"),
                None,
            )
            .await;
        let ka: Vec<String> = r.data()["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(r.data()["results"][0]["cluster_name"], "Group A", "{m}");
        let r = app
            .req(
                &o.token,
                "POST",
                &format!("/api/v1/planner/clusters/{a}/split/"),
                Some(json!({"keyword_ids": &ka[..2], "name": "Split off"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{m}: {}", r.body);
        let c = r.data()["id"].as_str().unwrap().to_string();
        let cs = clusters(&app, &o.token, &sector).await;
        assert_eq!(cs.len(), 4, "{m}");
        assert_eq!(
            cs.iter().find(|x| x["id"] == c.as_str()).unwrap()["keyword_count"],
            2,
            "{m}"
        );
        // Move one keyword to B; merge the new cluster into B; delete A.
        let r = app
            .req(
                &o.token,
                "POST",
                "/api/v1/planner/clusters/move_keywords/",
                Some(json!({"keyword_ids": [&ka[2]], "cluster_id": b})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{m}: {}", r.body);
        let r = app
            .req(
                &o.token,
                "POST",
                "/api/v1/planner/clusters/merge/",
                Some(json!({"into": b, "from": [c]})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{m}: {}", r.body);
        let r = app
            .req(
                &o.token,
                "DELETE",
                &format!("/api/v1/planner/clusters/{a}/"),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{m}");
        let cs = clusters(&app, &o.token, &sector).await;
        assert_eq!(cs.len(), 2, "{m}: {cs:?}");
        assert_eq!(
            cs.iter().find(|x| x["id"] == b.as_str()).unwrap()["keyword_count"],
            13,
            "{m}: 10 + 1 moved + 2 merged"
        );
        let r = app
            .req(
                &o.token,
                "GET",
                &format!("/api/v1/planner/keywords/?sector_id={sector}&unclustered=true"),
                None,
            )
            .await;
        assert_eq!(
            r.data()["count"],
            7,
            "{m}: A's remaining keywords have no cluster"
        );
        // Unknown and foreign clusters are 404; a viewer may not edit.
        let other = app.signup("Other").await;
        assert_eq!(
            app.req(
                &other.token,
                "DELETE",
                &format!("/api/v1/planner/clusters/{b}/"),
                None
            )
            .await
            .status,
            StatusCode::NOT_FOUND,
            "{m}"
        );
        let r = app
            .req(
                &o.token,
                "POST",
                "/api/v1/planner/clusters/merge/",
                Some(json!({"into": b, "from": [a]})),
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{m}: a deleted cluster");
        app.stop().await;
    }
}

#[tokio::test]
async fn auto_cluster_retried_with_one_idempotency_key_starts_one_job() {
    for app in TestApp::both().await {
        let m = app.mode;
        let o = app.signup("Retry").await;
        let sector = setup(&app, &o).await;
        let auth = format!("Bearer {}", o.token);
        let send = |body: Value| {
            let auth = auth.clone();
            let app = &app;
            async move {
                app.call(
                    "POST",
                    "/api/v1/planner/keywords/auto_cluster/",
                    Some(body),
                    &[
                        ("authorization", auth.as_str()),
                        ("idempotency-key", "cluster-1"),
                    ],
                )
                .await
            }
        };
        let body = json!({"sector_id": sector, "num_clusters": 3});
        let first = send(body.clone()).await;
        assert_eq!(first.status, StatusCode::ACCEPTED, "{m}: {}", first.body);
        let again = send(body).await;
        assert_eq!(again.status, StatusCode::ACCEPTED, "{m}: {}", again.body);
        assert_eq!(
            again.data()["job_id"],
            first.data()["job_id"],
            "{m}: the same job"
        );
        assert_eq!(
            again
                .headers
                .get("idempotent-replayed")
                .map(|v| v.to_str().unwrap()),
            Some("true"),
            "{m}"
        );
        // The same key with another request is refused.
        let other = send(json!({"sector_id": sector, "num_clusters": 2})).await;
        assert_eq!(
            (other.status, other.code()),
            (StatusCode::UNPROCESSABLE_ENTITY, "IDEMPOTENCY_KEY_REUSED"),
            "{m}: {}",
            other.body
        );
        let job = first.data()["job_id"].as_str().unwrap();
        let r = wait_done(&app, &o.token, job).await;
        assert_eq!(r.data()["state"], "SUCCESS", "{m}: {}", r.body);
        let head = app.state.feed.head().await.unwrap();
        let r = app
            .req(
                &o.token,
                "GET",
                &format!("/api/v1/jobs/?min_position={head}"),
                None,
            )
            .await;
        assert_eq!(r.data()["count"], 1, "{m}: one job: {}", r.body);
        let r = app
            .req(&o.token, "GET", "/api/v1/billing/credits/", None)
            .await;
        assert_eq!(
            (r.data()["balance"].as_i64(), r.data()["reserved"].as_i64()),
            (Some(240), Some(0)),
            "{m}: charged once"
        );
        app.stop().await;
    }
}
