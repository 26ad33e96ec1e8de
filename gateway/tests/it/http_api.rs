//! The billing slice end to end over HTTP, in both run modes.

use crate::harness::TestApp;
use axum::http::StatusCode;
use serde_json::json;

async fn open(app: &TestApp, name: &str) -> (String, i64) {
    let r = app.post("/api/v1/accounts/", json!({"name": name})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}: {}", app.mode, r.body);
    (
        r.data()["account_id"].as_str().unwrap().to_string(),
        r.data()["position"].as_i64().unwrap(),
    )
}

#[tokio::test]
async fn account_lifecycle_with_read_your_writes() {
    for app in TestApp::both().await {
        let m = app.mode;
        let (id, pos) = open(&app, "Acme").await;
        let r = app
            .get(&format!("/api/v1/accounts/{id}/?min_position={pos}"))
            .await;
        assert_eq!(
            (r.status, r.data()["balance"].as_i64()),
            (StatusCode::OK, Some(0)),
            "{m}: {}",
            r.body
        );

        let r = app
            .post(
                &format!("/api/v1/accounts/{id}/credits/grant/"),
                json!({"amount": 10, "reason": "plan"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{m}: {}", r.body);
        assert_eq!(r.data()["version"], 2);
        assert_eq!(r.data()["events"][0]["event_type"], "CreditsGranted");
        assert_eq!(r.data()["events"][0]["payload"]["balance_after"], 10);
        // Without the trailing slash too.
        let r = app
            .post(
                &format!("/api/v1/accounts/{id}/credits/spend"),
                json!({"amount": 4}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{m}: {}", r.body);
        let pos = r.data()["position"].as_i64().unwrap();

        let r = app
            .get(&format!("/api/v1/accounts/{id}?min_position={pos}"))
            .await;
        assert_eq!(r.data()["balance"], 6, "{m}: read your write: {}", r.body);
        assert_eq!(
            (
                r.data()["total_granted"].as_i64(),
                r.data()["total_spent"].as_i64()
            ),
            (Some(10), Some(4))
        );

        let r = app
            .post(
                &format!("/api/v1/accounts/{id}/credits/spend/"),
                json!({"amount": 7}),
            )
            .await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::PAYMENT_REQUIRED, "INSUFFICIENT_CREDITS"),
            "{m}"
        );

        // Ledger: paginated, filterable; sums to the balance.
        let r = app
            .get(&format!(
                "/api/v1/accounts/{id}/ledger/?page_size=1&min_position={pos}"
            ))
            .await;
        assert_eq!(r.data()["count"], 2, "{m}: {}", r.body);
        assert_eq!(r.data()["results"].as_array().unwrap().len(), 1);
        assert!(r.data()["next"].as_str().unwrap().contains("page=2"), "{m}");
        assert!(r.data()["previous"].is_null());
        let r = app
            .get(&format!("/api/v1/accounts/{id}/ledger/?entry_type=spend"))
            .await;
        assert_eq!(
            (
                r.data()["count"].as_i64(),
                r.data()["results"][0]["amount"].as_i64()
            ),
            (Some(1), Some(4)),
            "{m}"
        );
        let r = app.get(&format!("/api/v1/accounts/{id}/ledger/")).await;
        let sum: i64 = r.data()["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                if e["entry_type"] == "grant" {
                    e["amount"].as_i64().unwrap()
                } else {
                    -e["amount"].as_i64().unwrap()
                }
            })
            .sum();
        assert_eq!(sum, 6, "{m}: the ledger re-sums to the balance");

        // History straight from the store.
        let r = app.get(&format!("/api/v1/accounts/{id}/events/")).await;
        let types: Vec<&str> = r
            .data()
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["event_type"].as_str().unwrap())
            .collect();
        assert_eq!(
            types,
            ["AccountOpened", "CreditsGranted", "CreditsSpent"],
            "{m}"
        );
        assert_eq!(r.data()[0]["metadata"]["account_id"], id.as_str());

        // Optimistic concurrency over HTTP.
        let r = app
            .call(
                "POST",
                &format!("/api/v1/accounts/{id}/credits/grant/"),
                Some(json!({"amount": 1})),
                &[("if-match", "\"2\"")],
            )
            .await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::CONFLICT, "VERSION_CONFLICT"),
            "{m}"
        );
        assert_eq!(r.body["details"]["current_version"], 3);
        let r = app
            .call(
                "POST",
                &format!("/api/v1/accounts/{id}/credits/grant/"),
                Some(json!({"amount": 1})),
                &[("if-match", "3")],
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{m}");

        // Unknown accounts.
        let other = uuid::Uuid::new_v4();
        assert_eq!(
            app.get(&format!("/api/v1/accounts/{other}/")).await.status,
            StatusCode::NOT_FOUND,
            "{m}"
        );
        assert_eq!(
            app.get(&format!("/api/v1/accounts/{other}/ledger/"))
                .await
                .status,
            StatusCode::NOT_FOUND,
            "{m}"
        );
        assert_eq!(
            app.get(&format!("/api/v1/accounts/{other}/events/"))
                .await
                .status,
            StatusCode::NOT_FOUND,
            "{m}"
        );
        let r = app
            .post(
                &format!("/api/v1/accounts/{other}/credits/grant/"),
                json!({"amount": 1}),
            )
            .await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::NOT_FOUND, "NOT_FOUND"),
            "{m}"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn idempotency_keys_replay_and_refuse_reuse() {
    for app in TestApp::both().await {
        let m = app.mode;
        let (id, _) = open(&app, "Idem").await;
        let path = format!("/api/v1/accounts/{id}/credits/grant/");
        let key = [("idempotency-key", "grant-2026-11-22")];
        let first = app
            .call(
                "POST",
                &path,
                Some(json!({"amount": 5, "reason": "x"})),
                &key,
            )
            .await;
        assert_eq!(first.status, StatusCode::OK, "{m}");
        // Same body with fields in another order: same request.
        let again = app
            .call(
                "POST",
                &path,
                Some(json!({"reason": "x", "amount": 5})),
                &key,
            )
            .await;
        assert_eq!(again.status, StatusCode::OK, "{m}");
        assert_eq!(again.data(), first.data(), "{m}: the first response, again");
        assert_eq!(
            again
                .headers
                .get("idempotent-replayed")
                .map(|v| v.to_str().unwrap()),
            Some("true")
        );
        let other = app
            .call(
                "POST",
                &path,
                Some(json!({"amount": 6, "reason": "x"})),
                &key,
            )
            .await;
        assert_eq!(
            (other.status, other.code()),
            (StatusCode::UNPROCESSABLE_ENTITY, "IDEMPOTENCY_KEY_REUSED"),
            "{m}"
        );
        // The same key on another route is another request too.
        let spend = app
            .call(
                "POST",
                &format!("/api/v1/accounts/{id}/credits/spend/"),
                Some(json!({"amount": 5, "reason": "x"})),
                &key,
            )
            .await;
        assert_eq!(spend.code(), "IDEMPOTENCY_KEY_REUSED", "{m}");
        // Appended once.
        let r = app.get(&format!("/api/v1/accounts/{id}/events/")).await;
        assert_eq!(r.data().as_array().unwrap().len(), 2, "{m}");
        // Opening an account twice with one key opens it once.
        let k = [("idempotency-key", "open-once")];
        let a = app
            .call(
                "POST",
                "/api/v1/accounts/",
                Some(json!({"name": "Once"})),
                &k,
            )
            .await;
        let b = app
            .call(
                "POST",
                "/api/v1/accounts/",
                Some(json!({"name": "Once"})),
                &k,
            )
            .await;
        assert_eq!(
            (a.status, b.status),
            (StatusCode::CREATED, StatusCode::CREATED),
            "{m}"
        );
        assert_eq!(a.data()["account_id"], b.data()["account_id"], "{m}");
        app.stop().await;
    }
}

#[tokio::test]
async fn fifty_concurrent_spends_against_ten_credits() {
    for app in TestApp::both().await {
        let m = app.mode;
        let (id, _) = open(&app, "Race").await;
        app.post(
            &format!("/api/v1/accounts/{id}/credits/grant/"),
            json!({"amount": 10}),
        )
        .await;
        let app = std::sync::Arc::new(app);
        let mut tasks = vec![];
        for _ in 0..50 {
            let (app, path) = (app.clone(), format!("/api/v1/accounts/{id}/credits/spend/"));
            tasks.push(tokio::spawn(async move {
                app.post(&path, json!({"amount": 1})).await.status
            }));
        }
        let mut ok = 0;
        for t in tasks {
            match t.await.unwrap() {
                StatusCode::OK => ok += 1,
                StatusCode::PAYMENT_REQUIRED => {}
                s => panic!("{m}: unexpected {s}"),
            }
        }
        assert_eq!(ok, 10, "{m}");
        let head = app.state.feed.head().await.unwrap();
        let r = app
            .get(&format!("/api/v1/accounts/{id}/?min_position={head}"))
            .await;
        assert_eq!(r.data()["balance"], 0, "{m}");
        let r = app
            .get(&format!("/api/v1/accounts/{id}/ledger/?entry_type=spend"))
            .await;
        assert_eq!(r.data()["count"], 10, "{m}");
        std::sync::Arc::into_inner(app).unwrap().stop().await;
    }
}

#[tokio::test]
async fn health_ready_openapi_and_offline_docs() {
    for app in TestApp::both().await {
        let m = app.mode;
        assert_eq!(app.get("/health").await.data()["status"], "ok");
        let r = app.get("/ready").await;
        assert_eq!(
            (r.status, r.data()["checks"]["database"].as_bool()),
            (StatusCode::OK, Some(true)),
            "{m}"
        );
        if m == "postgres+nats" {
            assert_eq!(r.data()["checks"]["nats"], true);
        }
        let r = app.get("/api/v1/system/projections/").await;
        assert_eq!(r.data()[0]["name"], "billing_accounts", "{m}");

        let res = tower::ServiceExt::oneshot(
            app.router.clone(),
            axum::http::Request::get("/api/v1/openapi.json")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
        let bytes = http_body_util::BodyExt::collect(res.into_body())
            .await
            .unwrap()
            .to_bytes();
        let doc: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{m}");
        for p in [
            "/api/v1/accounts/",
            "/api/v1/accounts/{account_id}/credits/spend/",
            "/ready",
        ] {
            assert!(doc["paths"][p].is_object(), "{m}: {p} documented");
        }
        // Every documented path parameter is in its path; query parameters are `in: query`.
        for (path, ops) in doc["paths"].as_object().unwrap() {
            for (method, op) in ops.as_object().unwrap() {
                for param in op["parameters"].as_array().into_iter().flatten() {
                    let name = param["name"].as_str().unwrap();
                    match param["in"].as_str().unwrap() {
                        "path" => assert!(
                            path.contains(&format!("{{{name}}}")),
                            "{method} {path}: path parameter {name} not in the path"
                        ),
                        "query" | "header" => {}
                        other => panic!("{method} {path}: {name} in {other}"),
                    }
                }
            }
        }
        let ledger = &doc["paths"]["/api/v1/accounts/{account_id}/ledger/"]["get"]["parameters"];
        assert!(
            ledger
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "page_size" && p["in"] == "query"),
            "{m}"
        );
        let res = tower::ServiceExt::oneshot(
            app.router.clone(),
            axum::http::Request::get("/api/docs/")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let html = String::from_utf8(
            http_body_util::BodyExt::collect(res.into_body())
                .await
                .unwrap()
                .to_bytes()
                .to_vec(),
        )
        .unwrap();
        assert!(html.contains("swagger-ui"), "{m}");
        assert!(
            !html.contains("https://") && !html.contains("http://"),
            "{m}: the docs page must not load anything from the internet"
        );
        app.stop().await;
    }
}
