//! Bad input: a clear envelope error with the right status, never a 500,
//! and nothing written.

use crate::harness::TestApp;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::json;

#[tokio::test]
async fn bad_input_gets_clear_errors_and_writes_nothing() {
    for app in TestApp::both().await {
        let m = app.mode;
        let o = app.signup("Target").await;
        let auth = format!("Bearer {}", o.token);
        let before = app.state.feed.head().await.unwrap();
        let grant = "/api/v1/commands/SpendCredits".to_string();
        let long = "x".repeat(501);
        let json_cases: Vec<(&str, String, String, StatusCode, &str)> = vec![
            (
                "POST",
                "/api/v1/auth/sites/".into(),
                "{".into(),
                StatusCode::BAD_REQUEST,
                "MALFORMED_JSON",
            ),
            (
                "POST",
                "/api/v1/auth/sites/".into(),
                "".into(),
                StatusCode::BAD_REQUEST,
                "MALFORMED_JSON",
            ),
            (
                "POST",
                "/api/v1/auth/sites/".into(),
                "{\"name\": \"a\"} trailing".into(),
                StatusCode::BAD_REQUEST,
                "MALFORMED_JSON",
            ),
            (
                "POST",
                "/api/v1/auth/sites/".into(),
                "[]".into(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "VALIDATION_ERROR",
            ),
            (
                "POST",
                "/api/v1/auth/sites/".into(),
                "{}".into(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "VALIDATION_ERROR",
            ),
            (
                "POST",
                "/api/v1/auth/sites/".into(),
                json!({"name": 5}).to_string(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "VALIDATION_ERROR",
            ),
            (
                "POST",
                "/api/v1/auth/sites/".into(),
                json!({"name": "a", "plan": "x"}).to_string(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "VALIDATION_ERROR",
            ),
            (
                "POST",
                "/api/v1/auth/sites/".into(),
                json!({"name": "   "}).to_string(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "INVALID_NAME",
            ),
            (
                "POST",
                "/api/v1/auth/sites/".into(),
                json!({"name": "n".repeat(201)}).to_string(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "INVALID_NAME",
            ),
            (
                "POST",
                grant.clone(),
                json!({"amount": "10"}).to_string(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "VALIDATION_ERROR",
            ),
            (
                "POST",
                grant.clone(),
                json!({"amount": 1.0005}).to_string(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "VALIDATION_ERROR",
            ),
            (
                "POST",
                grant.clone(),
                json!({"amount": null}).to_string(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "VALIDATION_ERROR",
            ),
            (
                "POST",
                grant.clone(),
                "{\"amount\": 1e30}".into(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "VALIDATION_ERROR",
            ),
            (
                "POST",
                grant.clone(),
                "{\"amount\": 99999999999999999999999}".into(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "VALIDATION_ERROR",
            ),
            (
                "POST",
                grant.clone(),
                json!({"amount": 0}).to_string(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "INVALID_AMOUNT",
            ),
            (
                "POST",
                grant.clone(),
                json!({"amount": -5}).to_string(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "INVALID_AMOUNT",
            ),
            (
                "POST",
                grant.clone(),
                json!({"amount": 10_000_000_000_000i64}).to_string(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "INVALID_AMOUNT",
            ),
            (
                "POST",
                grant.clone(),
                json!({"amount": 1, "reason": long}).to_string(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "INVALID_REASON",
            ),
        ];
        for (method, path, body, status, code) in json_cases {
            let req = Request::builder()
                .method(method)
                .uri(&path)
                .header("content-type", "application/json")
                .header("authorization", &auth)
                .body(Body::from(body.clone()))
                .unwrap();
            let r = app.raw(req).await;
            assert_eq!(
                (r.status, r.code()),
                (status, code),
                "{m}: {method} {path} {body:?} -> {}",
                r.body
            );
        }
        let raw_cases: Vec<(Request<Body>, StatusCode, &str)> = vec![
            (
                Request::post("/api/v1/auth/sites/")
                    .body(Body::from("{\"name\":\"a\"}"))
                    .unwrap(),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UNSUPPORTED_MEDIA_TYPE",
            ),
            (
                Request::post("/api/v1/auth/sites/")
                    .header("content-type", "text/plain")
                    .body(Body::from("{\"name\":\"a\"}"))
                    .unwrap(),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UNSUPPORTED_MEDIA_TYPE",
            ),
            (
                Request::post("/api/v1/auth/sites/")
                    .header("content-type", "application/json")
                    .body(Body::from(vec![0xff, 0xfe, 0x00]))
                    .unwrap(),
                StatusCode::BAD_REQUEST,
                "MALFORMED_JSON",
            ),
            (
                Request::post("/api/v1/auth/sites/")
                    .header("content-type", "application/json")
                    .body(Body::from(format!(
                        "{{\"name\":\"{}\"}}",
                        "a".repeat(2 * 1024 * 1024)
                    )))
                    .unwrap(),
                StatusCode::PAYLOAD_TOO_LARGE,
                "PAYLOAD_TOO_LARGE",
            ),
            (
                Request::delete("/api/v1/auth/sites/")
                    .body(Body::empty())
                    .unwrap(),
                StatusCode::METHOD_NOT_ALLOWED,
                "METHOD_NOT_ALLOWED",
            ),
            (
                Request::put("/health").body(Body::empty()).unwrap(),
                StatusCode::METHOD_NOT_ALLOWED,
                "METHOD_NOT_ALLOWED",
            ),
            (
                Request::post("/api/v1/commands/NoSuchCommand")
                    .header("content-type", "application/json")
                    .body(Body::from("{}"))
                    .unwrap(),
                StatusCode::NOT_FOUND,
                "UNKNOWN_COMMAND",
            ),
            (
                Request::post("/api/v1/commands/SpendCredits")
                    .header("content-type", "application/json")
                    .body(Body::from("[1]"))
                    .unwrap(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "VALIDATION_ERROR",
            ),
            (
                Request::post("/api/v1/commands/UpdateSite")
                    .header("content-type", "application/json")
                    .body(Body::from("{\"site_id\": \"nope\"}"))
                    .unwrap(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "VALIDATION_ERROR",
            ),
            (
                Request::put("/api/v1/auth/users/00000000-0000-0000-0000-000000000001/sites/")
                    .header("content-type", "application/json")
                    .body(Body::from("{\"site_ids\": [\"x\"]}"))
                    .unwrap(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "VALIDATION_ERROR",
            ),
            (
                Request::get("/api/v1/nope/").body(Body::empty()).unwrap(),
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
            ),
            (
                Request::get("/api/v1/auth/sites/not-a-uuid/")
                    .body(Body::empty())
                    .unwrap(),
                StatusCode::BAD_REQUEST,
                "INVALID_PATH",
            ),
            (
                Request::get("/api/v1/auth/sites/?min_position=abc")
                    .body(Body::empty())
                    .unwrap(),
                StatusCode::BAD_REQUEST,
                "INVALID_QUERY",
            ),
            (
                Request::get("/api/v1/auth/sites/?min_position=-1")
                    .body(Body::empty())
                    .unwrap(),
                StatusCode::BAD_REQUEST,
                "INVALID_QUERY",
            ),
            (
                Request::get("/api/v1/billing/transactions/?page=0")
                    .body(Body::empty())
                    .unwrap(),
                StatusCode::BAD_REQUEST,
                "INVALID_QUERY",
            ),
            (
                Request::get("/api/v1/billing/transactions/?page_size=501")
                    .body(Body::empty())
                    .unwrap(),
                StatusCode::BAD_REQUEST,
                "INVALID_QUERY",
            ),
            (
                Request::get("/api/v1/billing/transactions/?page=99999999999999999999")
                    .body(Body::empty())
                    .unwrap(),
                StatusCode::BAD_REQUEST,
                "INVALID_QUERY",
            ),
            (
                Request::get("/api/v1/billing/transactions/?entry_type=refund")
                    .body(Body::empty())
                    .unwrap(),
                StatusCode::BAD_REQUEST,
                "INVALID_QUERY",
            ),
            (
                Request::get("/api/v1/billing/events/?limit=0")
                    .body(Body::empty())
                    .unwrap(),
                StatusCode::BAD_REQUEST,
                "INVALID_QUERY",
            ),
            (
                Request::post(grant.clone())
                    .header("content-type", "application/json")
                    .header("idempotency-key", "k".repeat(300))
                    .body(Body::from("{\"amount\":1}"))
                    .unwrap(),
                StatusCode::BAD_REQUEST,
                "INVALID_IDEMPOTENCY_KEY",
            ),
            (
                Request::post(grant.clone())
                    .header("content-type", "application/json")
                    .header("if-match", "abc")
                    .body(Body::from("{\"amount\":1}"))
                    .unwrap(),
                StatusCode::BAD_REQUEST,
                "INVALID_IF_MATCH",
            ),
        ];
        for (mut req, status, code) in raw_cases {
            req.headers_mut()
                .insert("authorization", auth.parse().unwrap());
            let what = format!("{} {}", req.method(), req.uri());
            let r = app.raw(req).await;
            assert_eq!(
                (r.status, r.code()),
                (status, code),
                "{m}: {what} -> {}",
                r.body
            );
        }
        // A very large page number must not overflow into a 500.
        let r = app
            .req(
                &o.token,
                "GET",
                &format!(
                    "/api/v1/billing/transactions/?page=9223372036854775807&page_size=500&min_position={before}"
                ),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{m}: {}", r.body);
        // min_position 0 is always reached; one beyond the log's head answers
        // at once (no wait) with a 400 that says so.
        let r = app
            .req(&o.token, "GET", "/api/v1/auth/sites/?min_position=0", None)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{m}: {}", r.body);
        let started = std::time::Instant::now();
        let r = app
            .req(
                &o.token,
                "GET",
                &format!("/api/v1/auth/sites/?min_position={}", before + 1_000_000),
                None,
            )
            .await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::BAD_REQUEST, "POSITION_NOT_REACHED"),
            "{m}: {}",
            r.body
        );
        assert!(
            started.elapsed() < std::time::Duration::from_millis(app.state.settings.read_wait_ms),
            "{m}: answered without waiting"
        );
        assert_eq!(
            app.state.feed.head().await.unwrap(),
            before,
            "{m}: bad input wrote nothing"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn an_optional_body_may_be_left_out() {
    for app in TestApp::both().await {
        let m = app.mode;
        let o = app.signup("Nobody").await;
        let r = app
            .req(
                &o.token,
                "POST",
                "/api/v1/auth/sites/",
                Some(json!({"name": "Blog"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{m}: {}", r.body);
        let id = r.data()["id"].as_str().unwrap().to_string();
        // PATCH with no body at all (every field of the body is optional).
        let req = Request::patch(format!("/api/v1/auth/sites/{id}/"))
            .header("authorization", format!("Bearer {}", o.token))
            .body(Body::empty())
            .unwrap();
        let r = app.raw(req).await;
        assert_eq!(r.status, StatusCode::OK, "{m}: {}", r.body);
        assert_eq!(r.data()["name"], "Blog", "{m}");
        // A body that is not JSON is still refused.
        let req = Request::patch(format!("/api/v1/auth/sites/{id}/"))
            .header("authorization", format!("Bearer {}", o.token))
            .header("content-type", "text/plain")
            .body(Body::from("name=x"))
            .unwrap();
        let r = app.raw(req).await;
        assert_eq!(
            r.status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{m}: {}",
            r.body
        );
        app.stop().await;
    }
}
