//! Credits and the ledger over HTTP in both run modes: sign-up's starting
//! credits, spending through the generic command endpoint, the ledger,
//! idempotency, optimistic versions, and 50 concurrent spends.

use crate::harness::{Owner, TestApp};
use axum::http::StatusCode;
use serde_json::json;

async fn spend(
    app: &TestApp,
    o: &Owner,
    amount: i64,
    headers: &[(&str, &str)],
) -> crate::harness::Resp {
    let auth = format!("Bearer {}", o.token);
    let mut h = vec![("authorization", auth.as_str())];
    h.extend_from_slice(headers);
    app.call(
        "POST",
        "/api/v1/commands/SpendCredits",
        Some(json!({"amount": amount, "reason": "test"})),
        &h,
    )
    .await
}

#[tokio::test]
async fn signup_credits_spend_and_ledger_with_read_your_writes() {
    for app in TestApp::both().await {
        let m = app.mode;
        let o = app.signup("Ledger Co").await;
        // Starting credits of the default plan, current at once (read from the aggregate).
        let r = app
            .req(&o.token, "GET", "/api/v1/billing/credits/", None)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{m}: {}", r.body);
        assert_eq!(
            (r.data()["balance"].as_i64(), r.data()["available"].as_i64()),
            (Some(250), Some(250)),
            "{m}"
        );
        assert_eq!(r.data()["plan"], "free", "{m}");
        let r = spend(&app, &o, 40, &[]).await;
        assert_eq!(r.status, StatusCode::OK, "{m}: {}", r.body);
        assert_eq!(r.data()["aggregate_id"], o.account_id.as_str(), "{m}");
        assert_eq!(
            r.data()["events"][0]["payload"]["balance_after"],
            210_000,
            "{m}"
        );
        let pos = r.data()["position"].as_i64().unwrap();
        // Overdraw: 402, nothing written.
        let r = spend(&app, &o, 211, &[]).await;
        assert!(
            r.body["error"].as_str().unwrap().contains("210 available"),
            "{m}: {}",
            r.body
        );
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::PAYMENT_REQUIRED, "INSUFFICIENT_CREDITS"),
            "{m}"
        );
        // The ledger reads its own write; summing delta gives the balance.
        let r = app
            .req(
                &o.token,
                "GET",
                &format!("/api/v1/billing/transactions/?min_position={pos}"),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{m}: {}", r.body);
        let rows = r.data()["results"].as_array().unwrap().clone();
        assert_eq!(rows.len(), 2, "{m}: {}", r.body);
        assert_eq!(
            (
                rows[0]["entry_type"].as_str(),
                rows[1]["entry_type"].as_str()
            ),
            (Some("grant"), Some("spend"))
        );
        let sum: i64 = rows.iter().map(|r| r["delta"].as_i64().unwrap()).sum();
        assert_eq!(sum, 210, "{m}");
        assert_eq!(rows[1]["balance_after"], 210);
        assert_eq!(rows[1]["actor"], format!("user:{}", o.user_id).as_str());
        // Fractions of a credit are exact (milli-credits inside).
        let r = app
            .req(
                &o.token,
                "POST",
                "/api/v1/commands/SpendCredits",
                Some(json!({"amount": 0.5})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{m}: {}", r.body);
        let half = r.data()["position"].as_i64().unwrap();
        let r = app
            .req(&o.token, "GET", "/api/v1/billing/credits/", None)
            .await;
        assert_eq!(r.data()["balance"], 209.5, "{m}");
        // Filters and pagination.
        let r = app
            .req(
                &o.token,
                "GET",
                &format!(
                    "/api/v1/billing/transactions/?entry_type=spend&page_size=1&min_position={half}"
                ),
                None,
            )
            .await;
        assert_eq!(
            (r.data()["count"].as_i64(), r.data()["next"].is_null()),
            (Some(2), false),
            "{m}"
        );
        let r = app
            .req(
                &o.token,
                "GET",
                "/api/v1/billing/transactions/?since=2999-01-01T00:00:00Z",
                None,
            )
            .await;
        assert_eq!(r.data()["count"], 0, "{m}");
        // Auditors: the account's raw events; plans; subscription.
        let r = app
            .req(&o.token, "GET", "/api/v1/billing/events/", None)
            .await;
        let types: Vec<&str> = r
            .data()
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["event_type"].as_str().unwrap())
            .collect();
        assert_eq!(
            types,
            [
                "AccountOpened",
                "SubscriptionStarted",
                "CreditsGranted",
                "CreditsSpent",
                "CreditsSpent"
            ],
            "{m}"
        );
        let r = app.get("/api/v1/billing/plans/").await;
        assert!(r.data().as_array().unwrap().len() >= 3, "{m}");
        let r = app
            .req(&o.token, "GET", "/api/v1/billing/subscription/", None)
            .await;
        assert_eq!(
            (r.data()["plan"].as_str(), r.data()["status"].as_str()),
            (Some("free"), Some("active")),
            "{m}"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn idempotency_keys_replay_and_refuse_reuse() {
    for app in TestApp::both().await {
        let m = app.mode;
        let o = app.signup("Idem").await;
        let key = [("idempotency-key", "spend-2026-11-23")];
        let first = spend(&app, &o, 5, &key).await;
        assert_eq!(first.status, StatusCode::OK, "{m}: {}", first.body);
        let again = spend(&app, &o, 5, &key).await;
        assert_eq!(again.status, StatusCode::OK, "{m}");
        assert_eq!(again.data(), first.data(), "{m}: the first response, again");
        assert_eq!(
            again
                .headers
                .get("idempotent-replayed")
                .map(|v| v.to_str().unwrap()),
            Some("true")
        );
        let other = spend(&app, &o, 6, &key).await;
        assert_eq!(
            (other.status, other.code()),
            (StatusCode::UNPROCESSABLE_ENTITY, "IDEMPOTENCY_KEY_REUSED"),
            "{m}"
        );
        let r = app
            .req(&o.token, "GET", "/api/v1/billing/credits/", None)
            .await;
        assert_eq!(r.data()["balance"], 245, "{m}: spent once");
        // Keys are per account: another account may use the same key.
        let o2 = app.signup("Idem 2").await;
        let r = spend(&app, &o2, 5, &key).await;
        assert_eq!(
            (r.status, r.headers.get("idempotent-replayed").is_none()),
            (StatusCode::OK, true),
            "{m}"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn expected_version_pins_the_aggregate() {
    for app in TestApp::both().await {
        let m = app.mode;
        let o = app.signup("Versions").await;
        let r = app
            .req(&o.token, "GET", "/api/v1/billing/credits/", None)
            .await;
        let v = r.data()["version"].as_i64().unwrap();
        let body = |ev: i64| Some(json!({"amount": 1, "expected_version": ev}));
        let r = app
            .req(&o.token, "POST", "/api/v1/commands/SpendCredits", body(v))
            .await;
        assert_eq!(
            (r.status, r.data()["version"].as_i64()),
            (StatusCode::OK, Some(v + 1)),
            "{m}: {}",
            r.body
        );
        let r = app
            .req(&o.token, "POST", "/api/v1/commands/SpendCredits", body(v))
            .await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::CONFLICT, "VERSION_CONFLICT"),
            "{m}"
        );
        assert_eq!(r.body["details"]["current_version"], v + 1);
        let r = app
            .req(
                &o.token,
                "POST",
                "/api/v1/commands/SpendCredits",
                Some(json!({"amount": 1, "expected_version": "x"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{m}");
        app.stop().await;
    }
}

#[tokio::test]
async fn fifty_concurrent_spends_against_ten_credits() {
    for app in TestApp::both().await {
        let m = app.mode;
        let o = app.signup("Race").await;
        assert_eq!(
            spend(&app, &o, 240, &[]).await.status,
            StatusCode::OK,
            "{m}"
        );
        let app = std::sync::Arc::new(app);
        let mut tasks = vec![];
        for _ in 0..50 {
            let (app, o) = (app.clone(), o.clone());
            tasks.push(tokio::spawn(
                async move { spend(&app, &o, 1, &[]).await.status },
            ));
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
        let r = app
            .req(&o.token, "GET", "/api/v1/billing/credits/", None)
            .await;
        assert_eq!(
            (r.data()["balance"].as_i64(), r.data()["available"].as_i64()),
            (Some(0), Some(0)),
            "{m}"
        );
        let head = app.state.feed.head().await.unwrap();
        let r = app
            .req(&o.token, "GET", &format!("/api/v1/billing/transactions/?entry_type=spend&page_size=100&min_position={head}"), None)
            .await;
        let ones = r.data()["results"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["amount"] == 1)
            .count();
        assert_eq!(
            (r.data()["count"].as_i64(), ones),
            (Some(11), 10),
            "{m}: 10 debits of 1 (and the 240)"
        );
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
        assert_eq!(
            app.get("/api/v1/system/projections/").await.status,
            StatusCode::UNAUTHORIZED
        );
        let o = app.signup("Ops").await;
        // Answers are not sniffed, and none that carries account data is cached.
        let me = app.req(&o.token, "GET", "/api/v1/auth/me/", None).await;
        assert_eq!(
            me.headers.get("x-content-type-options").unwrap(),
            "nosniff",
            "{m}"
        );
        assert_eq!(me.headers.get("cache-control").unwrap(), "no-store", "{m}");
        let health = app.get("/health").await;
        assert_eq!(
            health.headers.get("x-content-type-options").unwrap(),
            "nosniff",
            "{m}"
        );
        // The system-wide status is for operators; an owner sees only how
        // far each projection is behind the account's own events.
        let r = app
            .req(&o.token, "GET", "/api/v1/system/projections/", None)
            .await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::FORBIDDEN, "FORBIDDEN"),
            "{m}: {}",
            r.body
        );
        let r = app
            .req(&o.token, "GET", "/api/v1/system/projections/mine/", None)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{m}: {}", r.body);
        assert_eq!(r.data()[0]["name"], "billing_accounts", "{m}");
        assert!(r.data()[0]["behind"].as_i64().unwrap() >= 0, "{m}");
        assert!(
            r.data()[0].get("head").is_none(),
            "{m}: nothing of the other accounts"
        );
        let n = igny8_commands::testkit::unique("op");
        igny8_commands::tenancy::create_operator(
            &app.state.bus,
            &app.state.keys.secrets,
            &format!("{n}@example.com"),
            "operator-pw",
        )
        .await
        .unwrap();
        let op = app.login(&format!("{n}@example.com"), "operator-pw").await;
        let r = app
            .req(&op, "GET", "/api/v1/system/projections/", None)
            .await;
        assert_eq!(r.data()[0]["name"], "billing_accounts", "{m}: {}", r.body);
        assert_eq!(r.data()[1]["name"], "tenancy", "{m}");

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
            "/api/v1/auth/signup/",
            "/api/v1/auth/sites/{id}/sectors/",
            "/api/v1/billing/transactions/",
            // The generic command route, documented once per command.
            "/api/v1/commands/SpendCredits",
            "/api/v1/commands/CreateSite",
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
        assert!(
            doc["components"]["securitySchemes"]["bearer"].is_object(),
            "{m}"
        );
        let ledger = &doc["paths"]["/api/v1/billing/transactions/"]["get"]["parameters"];
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

/// A lost database (here: its pool closed under the running app) answers
/// 503 DATABASE_UNAVAILABLE with Retry-After on commands, single reads and
/// lists alike — never a 500.
#[tokio::test]
async fn a_lost_database_answers_503_not_500() {
    for app in TestApp::both().await {
        let m = app.mode;
        let o = app.signup("Gone").await;
        app.state.db.close().await;
        for (method, path, body) in [
            ("GET", "/api/v1/billing/credits/", None),
            ("GET", "/api/v1/auth/sites/", None),
            (
                "POST",
                "/api/v1/commands/SpendCredits",
                Some(serde_json::json!({"amount": 1})),
            ),
            (
                "POST",
                "/api/v1/auth/sites/",
                Some(serde_json::json!({"name": "Down"})),
            ),
        ] {
            let r = app.req(&o.token, method, path, body).await;
            assert_eq!(
                (r.status, r.code()),
                (StatusCode::SERVICE_UNAVAILABLE, "DATABASE_UNAVAILABLE"),
                "{m}: {method} {path}: {}",
                r.body
            );
            assert!(r.headers.contains_key("retry-after"), "{m}: {path}");
        }
        // The app's background tasks end with the test's runtime.
    }
}

/// The gateway stays ready while NATS is down — commands keep working (the
/// store is the database; the relay catches up after) — and `/ready` says
/// that NATS is down in `checks.nats`. Against a private nats-server this
/// test starts and kills (never the machine's shared one).
#[tokio::test]
async fn the_gateway_stays_ready_while_nats_is_down() {
    use tower::ServiceExt;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let bin = ["nats-server", "/usr/sbin/nats-server"]
        .into_iter()
        .find(|b| {
            std::process::Command::new(b)
                .arg("--version")
                .output()
                .is_ok()
        })
        .expect("nats-server is required (scripts/test.sh checks it is installed)");
    let mut server = std::process::Command::new(bin)
        .args(["-a", "127.0.0.1", "-p", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("nats://127.0.0.1:{port}");
    let mut client = None;
    for _ in 0..100 {
        if let Ok(c) = async_nats::connect(&url).await {
            client = Some(c);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let client = client.expect("private nats-server did not start");
    let (db, _) = igny8_commands::testkit::sqlite_db().await;
    let state = igny8_gateway::state::AppState::new(
        db,
        Some(client.clone()),
        crate::harness::test_settings(),
    )
    .unwrap();
    let app = igny8_gateway::app::router(state);
    let ready = |app: axum::Router| async move {
        let res = app
            .oneshot(
                axum::http::Request::get("/ready")
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        let status = res.status();
        let body = http_body_util::BodyExt::collect(res.into_body())
            .await
            .unwrap()
            .to_bytes();
        (
            status,
            serde_json::from_slice::<serde_json::Value>(&body).unwrap(),
        )
    };
    let (status, body) = ready(app.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["checks"]["nats"], true, "{body}");

    server.kill().unwrap();
    server.wait().unwrap();
    for _ in 0..100 {
        if client.connection_state() != async_nats::connection::State::Connected {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (status, body) = ready(app.clone()).await;
    assert_eq!(status, StatusCode::OK, "ready without NATS: {body}");
    assert_eq!(body["data"]["checks"]["nats"], false, "{body}");
    // And a command still works.
    let res = app
        .oneshot(
            axum::http::Request::post("/api/v1/auth/signup/")
                .header("content-type", "application/json")
                .body(axum::body::Body::from(
                    r#"{"email":"nats-down@example.com","password":"password1","account_name":"Down"}"#,
                ))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
}
