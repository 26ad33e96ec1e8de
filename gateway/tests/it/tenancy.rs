//! Identity over HTTP in both run modes: sign-up, login, token rotation and
//! theft detection, logout, bad tokens, deleted users, API keys, sites and
//! sectors, secrets at rest, rate limits.

use crate::harness::{TestApp, test_settings};
use axum::http::StatusCode;
use igny8_commands::secrets::Keyring;
use serde_json::{Value, json};

#[tokio::test]
async fn signup_login_refresh_rotation_and_logout() {
    for app in TestApp::both().await {
        let m = app.mode;
        let o = app.signup("Acme Blog").await;
        // Duplicate email (any case), weak password, bad email, bad name: clear errors, nothing written.
        let head = app.state.feed.head().await.unwrap();
        for (body, status, code) in [
            (
                json!({"email": o.email.to_uppercase(), "password": "long enough", "account_name": "X"}),
                StatusCode::CONFLICT,
                "EMAIL_TAKEN",
            ),
            (
                json!({"email": "new@example.com", "password": "short", "account_name": "X"}),
                StatusCode::UNPROCESSABLE_ENTITY,
                "INVALID_PASSWORD",
            ),
            (
                json!({"email": "not-an-email", "password": "long enough", "account_name": "X"}),
                StatusCode::UNPROCESSABLE_ENTITY,
                "INVALID_EMAIL",
            ),
            (
                json!({"email": "new@example.com", "password": "long enough", "account_name": " "}),
                StatusCode::UNPROCESSABLE_ENTITY,
                "INVALID_NAME",
            ),
            (
                json!({"email": "new@example.com", "password": "long enough"}),
                StatusCode::UNPROCESSABLE_ENTITY,
                "VALIDATION_ERROR",
            ),
        ] {
            let r = app.post("/api/v1/auth/signup/", body).await;
            assert_eq!((r.status, r.code()), (status, code), "{m}: {}", r.body);
        }
        assert_eq!(
            app.state.feed.head().await.unwrap(),
            head,
            "{m}: refused sign-ups write nothing"
        );

        // me
        let r = app.req(&o.token, "GET", "/api/v1/auth/me", None).await;
        assert_eq!(
            (
                r.data()["role"].as_str(),
                r.data()["account"]["id"].as_str()
            ),
            (Some("owner"), Some(o.account_id.as_str())),
            "{m}"
        );
        assert!(
            r.data()["account"]["slug"]
                .as_str()
                .unwrap()
                .starts_with("acme-blog-"),
            "{m}"
        );
        assert!(
            !r.body.to_string().contains("credential"),
            "{m}: no credential in answers"
        );

        // Login: wrong password and unknown email look the same.
        for (email, pw) in [
            (o.email.as_str(), "wrong password"),
            ("nobody@example.com", "whatever1"),
        ] {
            let r = app
                .post(
                    "/api/v1/auth/login/",
                    json!({"email": email, "password": pw}),
                )
                .await;
            assert_eq!(
                (r.status, r.code()),
                (StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS"),
                "{m}"
            );
        }
        let r = app
            .post(
                "/api/v1/auth/login/",
                json!({"email": o.email, "password": "correct horse"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{m}: {}", r.body);
        let refresh1 = r.data()["refresh_token"].as_str().unwrap().to_string();
        let access1 = r.data()["access_token"].as_str().unwrap().to_string();
        assert_eq!(r.data()["expires_in"], 3600);

        // Refresh rotates: the new refresh token works once, the old one is theft.
        let r = app
            .post("/api/v1/auth/refresh/", json!({"refresh_token": refresh1}))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{m}: {}", r.body);
        let refresh2 = r.data()["refresh_token"].as_str().unwrap().to_string();
        let access2 = r.data()["access_token"].as_str().unwrap().to_string();
        assert_eq!(
            app.req(&access2, "GET", "/api/v1/auth/me/", None)
                .await
                .status,
            StatusCode::OK
        );
        let r = app
            .post("/api/v1/auth/refresh/", json!({"refresh_token": refresh1}))
            .await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::UNAUTHORIZED, "TOKEN_REUSED"),
            "{m}"
        );
        // The whole family is revoked: the legitimate holder's tokens stop too.
        let r = app
            .post("/api/v1/auth/refresh/", json!({"refresh_token": refresh2}))
            .await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::UNAUTHORIZED, "TOKEN_REVOKED"),
            "{m}"
        );
        for t in [&access1, &access2] {
            let r = app.req(t, "GET", "/api/v1/auth/me/", None).await;
            assert_eq!(
                (r.status, r.code()),
                (StatusCode::UNAUTHORIZED, "TOKEN_REVOKED"),
                "{m}"
            );
        }
        // An access token is not a refresh token, and vice versa.
        let r = app
            .post("/api/v1/auth/refresh/", json!({"refresh_token": o.token}))
            .await;
        assert_eq!(r.code(), "INVALID_TOKEN", "{m}");
        assert_eq!(
            app.req(&o.refresh, "GET", "/api/v1/auth/me/", None)
                .await
                .code(),
            "INVALID_TOKEN",
            "{m}"
        );

        // Logout revokes the session of the signup tokens; other sessions live on.
        let other = app.login(&o.email, "correct horse").await;
        let r = app
            .req(&o.token, "POST", "/api/v1/auth/logout/", None)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{m}: {}", r.body);
        assert_eq!(
            app.req(&o.token, "GET", "/api/v1/auth/me/", None)
                .await
                .code(),
            "TOKEN_REVOKED",
            "{m}"
        );
        assert_eq!(
            app.post("/api/v1/auth/refresh/", json!({"refresh_token": o.refresh}))
                .await
                .code(),
            "TOKEN_REVOKED",
            "{m}"
        );
        assert_eq!(
            app.req(&other, "GET", "/api/v1/auth/me/", None)
                .await
                .status,
            StatusCode::OK,
            "{m}"
        );

        // Login, refresh and logout are events in the log (the audit trail).
        let failed: i64 = igny8_commands::on_db!(app.state.bus.db(), p => sqlx::query_scalar(
            "SELECT count(*) FROM events WHERE event_type = 'LoginFailed' AND aggregate_id = $1")
            .bind(o.email.to_lowercase()).fetch_one(p).await.unwrap());
        assert_eq!(
            failed, 1,
            "{m}: the wrong password is on record; the unknown email is not"
        );
        let sessions: i64 = igny8_commands::on_db!(app.state.bus.db(), p => sqlx::query_scalar(
            "SELECT count(*) FROM events WHERE aggregate_type = 'session' AND account_id = $1")
            .bind(&o.account_id).fetch_one(p).await.unwrap());
        // signup, login, refresh, reuse → revoked, second login, logout
        assert_eq!(sessions, 6, "{m}: session events");
        app.stop().await;
    }
}

#[tokio::test]
async fn bad_tokens_are_refused_with_clear_codes() {
    for app in TestApp::both().await {
        let m = app.mode;
        let o = app.signup("Tokens").await;
        let foreign = Keyring::generate("t1");
        let now = jsonwebtoken::get_current_timestamp();
        let claims = |exp: u64| {
            json!({
            "sub": o.user_id, "acc": o.account_id, "sid": uuid::Uuid::new_v4(), "typ": "access",
            "gen": 0, "iat": now, "exp": exp, "iss": "igny8", "jti": uuid::Uuid::new_v4()})
        };
        let sign = |keys: &Keyring, c: serde_json::Value| {
            let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
            h.kid = Some(keys.current_kid().to_string());
            jsonwebtoken::encode(
                &h,
                &c,
                &jsonwebtoken::EncodingKey::from_secret(keys.key(keys.current_kid()).unwrap()),
            )
            .unwrap()
        };
        let expired = sign(&app.state.keys.jwt, claims(now - 3600));
        let other_key = sign(&foreign, claims(now + 3600));
        let mut unknown_kid = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        unknown_kid.kid = Some("nope".into());
        let unknown_kid = jsonwebtoken::encode(
            &unknown_kid,
            &claims(now + 3600),
            &jsonwebtoken::EncodingKey::from_secret(b"x"),
        )
        .unwrap();
        let no_session = sign(&app.state.keys.jwt, claims(now + 3600));
        for (token, code) in [
            (expired.as_str(), "TOKEN_EXPIRED"),
            (other_key.as_str(), "INVALID_TOKEN"),
            (unknown_kid.as_str(), "INVALID_TOKEN"),
            ("garbage", "INVALID_TOKEN"),
            ("a.b.c", "INVALID_TOKEN"),
            (no_session.as_str(), "TOKEN_REVOKED"),
            ("igny8_nothex_short", "INVALID_API_KEY"),
        ] {
            let r = app.req(token, "GET", "/api/v1/auth/me/", None).await;
            assert_eq!(
                (r.status, r.code()),
                (StatusCode::UNAUTHORIZED, code),
                "{m}: {token}"
            );
        }
        for (h, v, code) in [
            ("authorization", "Basic abc", "INVALID_TOKEN"),
            ("authorization", "Bearer ", "INVALID_TOKEN"),
            (
                "x-api-key",
                "igny8_00000000000000000000000000000000_0000000000000000000000000000000000000000000000000000000000000000",
                "INVALID_API_KEY",
            ),
        ] {
            let r = app.call("GET", "/api/v1/auth/me/", None, &[(h, v)]).await;
            assert_eq!(
                (r.status, r.code()),
                (StatusCode::UNAUTHORIZED, code),
                "{m}: {h}: {v}"
            );
        }
        let r = app.get("/api/v1/auth/me/").await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::UNAUTHORIZED, "AUTH_REQUIRED"),
            "{m}"
        );

        // A token of a deleted user stops working at once.
        let r = app
            .req(
                &o.token,
                "POST",
                "/api/v1/auth/users/",
                Some(
                    json!({"email": "gone@example.com", "password": "password1", "role": "editor"}),
                ),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{m}: {}", r.body);
        let gone_id = r.data()["id"].as_str().unwrap().to_string();
        let gone = app.login("gone@example.com", "password1").await;
        assert_eq!(
            app.req(&gone, "GET", "/api/v1/auth/me/", None).await.status,
            StatusCode::OK
        );
        let r = app
            .req(
                &o.token,
                "DELETE",
                &format!("/api/v1/auth/users/{gone_id}/"),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{m}: {}", r.body);
        assert_eq!(
            app.req(&gone, "GET", "/api/v1/auth/me/", None).await.code(),
            "USER_INACTIVE",
            "{m}"
        );
        let r = app
            .post(
                "/api/v1/auth/login/",
                json!({"email": "gone@example.com", "password": "password1"}),
            )
            .await;
        assert_eq!(r.code(), "INVALID_CREDENTIALS", "{m}");
        // Its email is free again.
        let r = app
            .req(
                &o.token,
                "POST",
                "/api/v1/auth/users/",
                Some(
                    json!({"email": "gone@example.com", "password": "password2", "role": "viewer"}),
                ),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{m}: {}", r.body);
        app.stop().await;
    }
}

#[tokio::test]
async fn signing_keys_rotate_without_logging_anyone_out() {
    let old = Keyring::generate("k-old");
    let new = Keyring::generate("k-new");
    let mut s1 = test_settings();
    s1.jwt_keys = Some(old.to_spec());
    let app = TestApp::embedded_with(s1.clone()).await;
    let o = app.signup("Rotate").await;
    // Same database, keys rotated: the new key signs, the old one still verifies.
    let mut s2 = s1.clone();
    s2.jwt_keys = Some(format!("{},{}", new.to_spec(), old.to_spec()));
    let keys = igny8_gateway::auth::Keys::load(&s2).unwrap();
    let state2 = igny8_gateway::state::AppState::with_keys(app.state.db.clone(), None, s2, keys);
    let router2 = igny8_gateway::app::router(state2);
    let call = |router: axum::Router, token: String| async move {
        let req = axum::http::Request::get("/api/v1/auth/me/")
            .header("authorization", format!("Bearer {token}"))
            .body(axum::body::Body::empty())
            .unwrap();
        tower::ServiceExt::oneshot(router, req)
            .await
            .unwrap()
            .status()
    };
    assert_eq!(
        call(router2.clone(), o.token.clone()).await,
        StatusCode::OK,
        "old tokens still work"
    );
    let req = axum::http::Request::post("/api/v1/auth/login/")
        .header("content-type", "application/json")
        .body(axum::body::Body::from(
            json!({"email": o.email, "password": "correct horse"}).to_string(),
        ))
        .unwrap();
    let res = tower::ServiceExt::oneshot(router2.clone(), req)
        .await
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(
        &http_body_util::BodyExt::collect(res.into_body())
            .await
            .unwrap()
            .to_bytes(),
    )
    .unwrap();
    let token = body["data"]["access_token"].as_str().unwrap().to_string();
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(
        header.kid.as_deref(),
        Some("k-new"),
        "the current key signs"
    );
    assert_eq!(call(router2, token).await, StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn api_keys_shown_once_hashed_revocable_with_last_use() {
    for app in TestApp::both().await {
        let m = app.mode;
        let o = app.signup("Keys").await;
        let r = app
            .req(
                &o.token,
                "POST",
                "/api/v1/auth/api-keys/",
                Some(json!({"name": "zapier", "role": "editor"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{m}: {}", r.body);
        let key = r.data()["key"].as_str().unwrap().to_string();
        let key_id = r.data()["id"].as_str().unwrap().to_string();
        let pos = r.data()["position"].as_i64().unwrap();
        // Both header forms work.
        let r = app.req(&key, "GET", "/api/v1/auth/me/", None).await;
        assert_eq!(
            (r.status, r.data()["role"].as_str()),
            (StatusCode::OK, Some("editor")),
            "{m}: {}",
            r.body
        );
        let r = app
            .call(
                "GET",
                "/api/v1/billing/credits/",
                None,
                &[("x-api-key", key.as_str())],
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{m}");
        // Listed without the secret, with last use.
        let head = app.state.feed.head().await.unwrap();
        let r = app
            .req(
                &o.token,
                "GET",
                &format!("/api/v1/auth/api-keys/?min_position={}", head.max(pos)),
                None,
            )
            .await;
        let row = &r.data()["results"][0];
        assert_eq!(row["id"], key_id.as_str(), "{m}");
        assert!(!row["last_used_at"].is_null(), "{m}: {row}");
        assert!(
            !r.body.to_string().contains(&key[20..]),
            "{m}: secret never listed"
        );
        // The store holds a hash only.
        let stored: String = igny8_commands::on_db!(app.state.bus.db(), p => sqlx::query_scalar(
            "SELECT CAST(payload AS TEXT) FROM events WHERE aggregate_type = 'api_key' AND aggregate_id = $1 AND sequence = 1")
            .bind(&key_id).fetch_one(p).await.unwrap_or_default());
        let secret = key.rsplit('_').next().unwrap();
        assert!(
            !stored.is_empty() && !stored.contains(secret),
            "{m}: {stored}"
        );
        // Editors' keys cannot manage keys; a wrong secret fails; revocation is immediate.
        let r = app
            .req(
                &key,
                "POST",
                "/api/v1/auth/api-keys/",
                Some(json!({"name": "x", "role": "viewer"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{m}");
        let mut forged = key.clone();
        forged.pop();
        forged.push(if key.ends_with('0') { '1' } else { '0' });
        assert_eq!(
            app.req(&forged, "GET", "/api/v1/auth/me/", None)
                .await
                .code(),
            "INVALID_API_KEY",
            "{m}"
        );
        let r = app
            .req(
                &o.token,
                "DELETE",
                &format!("/api/v1/auth/api-keys/{key_id}/"),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{m}: {}", r.body);
        assert_eq!(
            app.req(&key, "GET", "/api/v1/auth/me/", None).await.code(),
            "INVALID_API_KEY",
            "{m}"
        );
        // Invalid role, unknown site.
        let r = app
            .req(
                &o.token,
                "POST",
                "/api/v1/auth/api-keys/",
                Some(json!({"name": "x", "role": "developer"})),
            )
            .await;
        assert_eq!(r.code(), "INVALID_ROLE", "{m}");
        let r = app
            .req(
                &o.token,
                "POST",
                "/api/v1/auth/api-keys/",
                Some(json!({"name": "x", "role": "viewer", "site_ids": [uuid::Uuid::new_v4()]})),
            )
            .await;
        assert_eq!(r.code(), "UNKNOWN_SITE", "{m}");
        // A site list cannot hold an admin key (it manages users and keys).
        let (site, _) = app.site_and_sector(&o).await;
        let r = app
            .req(
                &o.token,
                "POST",
                "/api/v1/auth/api-keys/",
                Some(json!({"name": "x", "role": "admin", "site_ids": [site]})),
            )
            .await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR"),
            "{m}"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn sites_sectors_limits_slugs_and_sealed_wordpress_passwords() {
    for app in TestApp::both().await {
        let m = app.mode;
        let o = app.signup("Sites").await;
        let t = o.token.as_str();
        let r = app
            .req(
                t,
                "POST",
                "/api/v1/auth/sites/",
                Some(json!({"name": "My Blog", "industry": "Travel"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{m}: {}", r.body);
        assert_eq!(r.data()["slug"], "my-blog");
        let site = r.data()["id"].as_str().unwrap().to_string();
        // The free plan allows one site.
        let r = app
            .req(
                t,
                "POST",
                "/api/v1/auth/sites/",
                Some(json!({"name": "Second"})),
            )
            .await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::UNPROCESSABLE_ENTITY, "SITE_LIMIT"),
            "{m}"
        );
        // Five sectors, not six; slugs unique within the site.
        for i in 0..5 {
            let r = app
                .req(
                    t,
                    "POST",
                    &format!("/api/v1/auth/sites/{site}/sectors/"),
                    Some(json!({"name": format!("Sector {i}")})),
                )
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{m}: {}", r.body);
        }
        let r = app
            .req(
                t,
                "POST",
                &format!("/api/v1/auth/sites/{site}/sectors"),
                Some(json!({"name": "Sixth"})),
            )
            .await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::UNPROCESSABLE_ENTITY, "SECTOR_LIMIT"),
            "{m}"
        );
        let r = app
            .req(
                t,
                "GET",
                &format!("/api/v1/auth/sites/{site}/sectors/"),
                None,
            )
            .await;
        let sectors = r.data().as_array().unwrap().clone();
        assert_eq!(sectors.len(), 5, "{m}");
        let s0 = sectors[0]["id"].as_str().unwrap().to_string();
        let r = app
            .req(
                t,
                "PATCH",
                &format!("/api/v1/auth/sectors/{s0}/"),
                Some(json!({"status": "archived"})),
            )
            .await;
        assert_eq!(r.code(), "INVALID_STATUS", "{m}");
        let r = app
            .req(t, "DELETE", &format!("/api/v1/auth/sectors/{s0}/"), None)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{m}");
        let r = app
            .req(
                t,
                "POST",
                &format!("/api/v1/auth/sites/{site}/sectors/"),
                Some(json!({"name": "Sector 1"})),
            )
            .await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::CONFLICT, "SLUG_TAKEN"),
            "{m}"
        );
        // WordPress application password: sealed, never returned, never in events in clear.
        let r = app.req(t, "PATCH", &format!("/api/v1/auth/sites/{site}/"), Some(json!({
            "wp_url": "https://blog.example.com", "wp_username": "admin", "wp_app_password": "abcd efgh ijkl mnop"}))).await;
        assert_eq!(r.status, StatusCode::OK, "{m}: {}", r.body);
        assert_eq!(r.data()["wp_app_password_set"], true);
        assert!(!r.body.to_string().contains("abcd efgh"), "{m}");
        let r = app
            .req(t, "GET", &format!("/api/v1/auth/sites/{site}/"), None)
            .await;
        assert!(
            !r.body.to_string().contains("abcd efgh")
                && r.data()["sectors"].as_array().unwrap().len() == 4,
            "{m}"
        );
        let all: Vec<String> = igny8_commands::on_db!(app.state.bus.db(), p => sqlx::query_scalar(
            "SELECT CAST(payload AS TEXT) FROM events WHERE aggregate_id = $1 OR account_id = $1").bind(&o.account_id).fetch_all(p).await.unwrap());
        assert!(
            all.iter()
                .all(|e| !e.contains("abcd efgh") && !e.contains("abcdefgh")),
            "{m}: clear text in events"
        );
        assert!(
            all.iter().any(|e| e.contains("v1.s1.")),
            "{m}: sealed with the current key"
        );
        let r = app
            .req(
                t,
                "PATCH",
                &format!("/api/v1/auth/sites/{site}/"),
                Some(json!({"wp_url": "ftp://x", "unknown": 1})),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{m}");
        let r = app
            .req(
                t,
                "PATCH",
                &format!("/api/v1/auth/sites/{site}/"),
                Some(json!({"wp_url": "ftp://x"})),
            )
            .await;
        // The connection's rule (one source of truth for WordPress fields).
        assert_eq!(r.code(), "INVALID_WP_URL", "{m}");
        // Lists read their own writes.
        let pos = r.body["data"]["position"]
            .as_i64()
            .unwrap_or(0)
            .max(app.state.feed.head().await.unwrap());
        let r = app
            .req(
                t,
                "GET",
                &format!("/api/v1/auth/sites/?min_position={pos}"),
                None,
            )
            .await;
        assert_eq!(
            (
                r.data()["count"].as_i64(),
                r.data()["results"][0]["wp_username"].as_str()
            ),
            (Some(1), Some("admin")),
            "{m}"
        );
        // Deleting the site deletes its sectors.
        let r = app
            .req(t, "DELETE", &format!("/api/v1/auth/sites/{site}/"), None)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{m}");
        assert_eq!(
            app.req(t, "GET", &format!("/api/v1/auth/sites/{site}/"), None)
                .await
                .status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            app.req(
                t,
                "PATCH",
                &format!("/api/v1/auth/sectors/{s0}/"),
                Some(json!({"name": "x"}))
            )
            .await
            .status,
            StatusCode::NOT_FOUND
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn login_attempts_are_rate_limited_per_email() {
    let mut s = test_settings();
    s.login_per_minute = 3;
    let app = TestApp::embedded_with(s).await;
    let o = app.signup("Limits").await;
    for _ in 0..3 {
        let r = app
            .post(
                "/api/v1/auth/login/",
                json!({"email": o.email, "password": "wrong password"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let r = app
        .post(
            "/api/v1/auth/login/",
            json!({"email": o.email.to_uppercase(), "password": "correct horse"}),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED"),
        "{}",
        r.body
    );
    let retry: u64 = r
        .headers
        .get("retry-after")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    // Another email is not affected.
    let r = app
        .post(
            "/api/v1/auth/login/",
            json!({"email": "someone@example.com", "password": "wrong password"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    app.stop().await;
}

#[tokio::test]
async fn requests_are_rate_limited_per_user_and_per_address() {
    let mut s = test_settings();
    s.rate_per_minute = 5;
    let app = TestApp::embedded_with(s).await;
    let o = app.signup("Busy").await;
    let mut codes = vec![];
    for _ in 0..7 {
        codes.push(
            app.req(&o.token, "GET", "/api/v1/auth/me/", None)
                .await
                .status
                .as_u16(),
        );
    }
    assert_eq!(&codes[..5], &[200; 5]);
    assert_eq!(codes[6], 429);
    // Per address: the TCP peer (here given as the connection's info).
    let addr: std::net::SocketAddr = "10.1.2.3:5555".parse().unwrap();
    let get = |path: &str, xff: Option<&str>| {
        let mut b = axum::http::Request::get(path);
        if let Some(x) = xff {
            b = b.header("x-forwarded-for", x);
        }
        let mut req = b.body(axum::body::Body::empty()).unwrap();
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(addr));
        req
    };
    let mut codes = vec![];
    for _ in 0..7 {
        codes.push(
            app.raw(get("/api/v1/billing/plans/", None))
                .await
                .status
                .as_u16(),
        );
    }
    assert_eq!(codes[6], 429, "{codes:?}");
    // Health probes are never limited.
    assert_eq!(app.raw(get("/health", None)).await.status, StatusCode::OK);
    // X-Forwarded-For is ignored unless trusted (else a client could pick any address).
    assert_eq!(
        app.raw(get("/api/v1/billing/plans/", Some("10.9.9.9")))
            .await
            .status
            .as_u16(),
        429
    );
    app.stop().await;

    let mut s = test_settings();
    s.rate_per_minute = 2;
    s.trust_forwarded_for = true;
    let app = TestApp::embedded_with(s).await;
    for _ in 0..2 {
        assert_eq!(
            app.raw(get("/api/v1/billing/plans/", Some("1.1.1.1, 10.9.9.9")))
                .await
                .status,
            StatusCode::OK
        );
    }
    assert_eq!(
        app.raw(get("/api/v1/billing/plans/", Some("10.9.9.9")))
            .await
            .status
            .as_u16(),
        429
    );
    assert_eq!(
        app.raw(get("/api/v1/billing/plans/", Some("10.9.9.8")))
            .await
            .status,
        StatusCode::OK,
        "another client behind the proxy"
    );
    app.stop().await;
}

#[tokio::test]
async fn retries_replays_and_atomic_updates() {
    for app in TestApp::both().await {
        let m = app.mode;
        let o = app.signup("Retries").await;
        let auth = format!("Bearer {}", o.token);
        let h = [
            ("authorization", auth.as_str()),
            ("idempotency-key", "site-1"),
        ];
        // Adding a user twice with one key: one user, the same answer (not EMAIL_TAKEN).
        let hu = [
            ("authorization", auth.as_str()),
            ("idempotency-key", "user-1"),
        ];
        let body = json!({"email": format!("{}@example.com", igny8_commands::testkit::unique("u")), "password": "password1", "role": "viewer"});
        let a = app
            .call("POST", "/api/v1/auth/users/", Some(body.clone()), &hu)
            .await;
        let b = app
            .call("POST", "/api/v1/auth/users/", Some(body), &hu)
            .await;
        assert_eq!(
            (a.status, b.status),
            (StatusCode::CREATED, StatusCode::CREATED),
            "{m}: {}",
            b.body
        );
        assert_eq!(
            a.data()["id"],
            b.data()["id"],
            "{m}: {} / {}",
            a.body,
            b.body
        );
        assert_eq!(
            b.headers
                .get("idempotent-replayed")
                .map(|v| v.to_str().unwrap()),
            Some("true"),
            "{m}"
        );
        // An API key created twice with one Idempotency-Key: one key, and the
        // retry shows the same secret (kept sealed for the window), which works.
        let hk = [
            ("authorization", auth.as_str()),
            ("idempotency-key", "key-1"),
        ];
        let body = json!({"name": "automation", "role": "editor"});
        let a = app
            .call("POST", "/api/v1/auth/api-keys/", Some(body.clone()), &hk)
            .await;
        let b = app
            .call("POST", "/api/v1/auth/api-keys/", Some(body), &hk)
            .await;
        assert_eq!(
            (a.status, b.status),
            (StatusCode::CREATED, StatusCode::CREATED),
            "{m}: {}",
            b.body
        );
        assert_eq!(a.data()["id"], b.data()["id"], "{m}");
        assert_eq!(a.data()["prefix"], b.data()["prefix"], "{m}");
        let secret = a.data()["key"].as_str().unwrap().to_string();
        assert_eq!(
            b.data()["key"].as_str(),
            Some(secret.as_str()),
            "{m}: {}",
            b.body
        );
        assert_eq!(b.headers["idempotent-replayed"], "true", "{m}");
        let keys = app.req(&secret, "GET", "/api/v1/auth/me/", None).await;
        assert_eq!(
            keys.status,
            StatusCode::OK,
            "{m}: the replayed secret is the key's"
        );
        let stored: String = igny8_commands::on_db!(app.state.bus.db(), p => sqlx::query_scalar(
            "SELECT sealed FROM idempotent_secrets WHERE idem_key = 'key-1'").fetch_one(p).await.unwrap());
        assert!(
            !stored.contains(&secret[secret.len() - 16..]),
            "{m}: sealed, not in clear"
        );
        // After the window the row is gone and a replay shows no secret.
        igny8_commands::on_db!(app.state.bus.db(), p => sqlx::query(
            "UPDATE idempotent_secrets SET expires_at = 0 WHERE idem_key = 'key-1'").execute(p).await.map(|_| ()).unwrap());
        let c = app
            .call(
                "POST",
                "/api/v1/auth/api-keys/",
                Some(json!({"name": "automation", "role": "editor"})),
                &hk,
            )
            .await;
        assert_eq!(
            (c.status, &c.data()["key"]),
            (StatusCode::CREATED, &Value::Null),
            "{m}: {}",
            c.body
        );
        assert_eq!(c.data()["id"], a.data()["id"], "{m}");
        // Creating a site twice with one key: one site, the same answer.
        let a = app
            .call(
                "POST",
                "/api/v1/auth/sites/",
                Some(json!({"name": "Once"})),
                &h,
            )
            .await;
        let b = app
            .call(
                "POST",
                "/api/v1/auth/sites/",
                Some(json!({"name": "Once"})),
                &h,
            )
            .await;
        assert_eq!(
            (a.status, b.status),
            (StatusCode::CREATED, StatusCode::CREATED),
            "{m}: {}",
            b.body
        );
        assert_eq!(a.data()["id"], b.data()["id"], "{m}");
        let site = a.data()["id"].as_str().unwrap().to_string();
        let h = [
            ("authorization", auth.as_str()),
            ("idempotency-key", "sector-1"),
        ];
        let path = format!("/api/v1/auth/sites/{site}/sectors/");
        let a = app
            .call("POST", &path, Some(json!({"name": "Hotels"})), &h)
            .await;
        let b = app
            .call("POST", &path, Some(json!({"name": "Hotels"})), &h)
            .await;
        assert_eq!(
            (b.status, a.data()["id"].clone()),
            (StatusCode::CREATED, b.data()["id"].clone()),
            "{m}: {}",
            b.body
        );

        // A keyword created twice with one key: the same keyword, not ALREADY_EXISTS.
        let sector = a.data()["id"].as_str().unwrap().to_string();
        let hw = [
            ("authorization", auth.as_str()),
            ("idempotency-key", "kw-1"),
        ];
        let body = json!({"sector_id": sector, "keyword": "once only"});
        let a = app
            .call("POST", "/api/v1/planner/keywords/", Some(body.clone()), &hw)
            .await;
        let b = app
            .call("POST", "/api/v1/planner/keywords/", Some(body), &hw)
            .await;
        assert_eq!(
            (a.status, b.status),
            (StatusCode::CREATED, StatusCode::CREATED),
            "{m}: {}",
            b.body
        );
        assert_eq!(a.data()["id"], b.data()["id"], "{m}");
        assert_eq!(b.headers["idempotent-replayed"], "true", "{m}");

        // PATCH of name and role is one command: a bad role changes nothing.
        let r = app.req(&o.token, "POST", "/api/v1/auth/users/", Some(json!({"email": format!("ed-{}@example.com", &o.account_id[..8]), "password": "password1", "role": "editor"}))).await;
        let uid = r.data()["id"].as_str().unwrap().to_string();
        let r = app
            .req(
                &o.token,
                "PATCH",
                &format!("/api/v1/auth/users/{uid}/"),
                Some(json!({"name": "New Name", "role": "developer"})),
            )
            .await;
        assert_eq!(r.code(), "INVALID_ROLE", "{m}");
        let r = app
            .req(
                &o.token,
                "PATCH",
                &format!("/api/v1/auth/users/{uid}/"),
                Some(json!({"name": "New Name", "role": "owner"})),
            )
            .await;
        assert_eq!(r.code(), "INVALID_ROLE", "{m}");
        let r = app
            .req(&o.token, "GET", &format!("/api/v1/auth/users/{uid}/"), None)
            .await;
        assert_eq!(
            (r.status, r.data()["name"].as_str()),
            (
                StatusCode::OK,
                Some(format!("ed-{}", &o.account_id[..8]).as_str())
            ),
            "{m}: nothing half-applied"
        );
        let r = app
            .req(
                &o.token,
                "PATCH",
                &format!("/api/v1/auth/users/{uid}/"),
                Some(json!({"name": "New Name", "role": "viewer"})),
            )
            .await;
        assert_eq!(
            (r.data()["name"].as_str(), r.data()["role"].as_str()),
            (Some("New Name"), Some("viewer")),
            "{m}"
        );

        // A deleted user's refresh token writes nothing.
        let email = format!("gone-{}@example.com", &o.account_id[..8]);
        let r = app
            .req(
                &o.token,
                "POST",
                "/api/v1/auth/users/",
                Some(json!({"email": email, "password": "password1", "role": "viewer"})),
            )
            .await;
        let gone = r.data()["id"].as_str().unwrap().to_string();
        let r = app
            .post(
                "/api/v1/auth/login/",
                json!({"email": email, "password": "password1"}),
            )
            .await;
        let refresh = r.data()["refresh_token"].as_str().unwrap().to_string();
        app.req(
            &o.token,
            "DELETE",
            &format!("/api/v1/auth/users/{gone}/"),
            None,
        )
        .await;
        let head = app.state.feed.head().await.unwrap();
        let r = app
            .post("/api/v1/auth/refresh/", json!({"refresh_token": refresh}))
            .await;
        assert_eq!(r.code(), "USER_INACTIVE", "{m}");
        assert_eq!(
            app.state.feed.head().await.unwrap(),
            head,
            "{m}: nothing written"
        );

        // Password change: the current one must match; then only the new one works.
        let r = app
            .req(
                &o.token,
                "POST",
                "/api/v1/auth/password/",
                Some(json!({"current_password": "nope nope", "new_password": "another horse"})),
            )
            .await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::UNPROCESSABLE_ENTITY, "WRONG_PASSWORD"),
            "{m}"
        );
        let r = app
            .req(
                &o.token,
                "POST",
                "/api/v1/auth/password/",
                Some(json!({"current_password": "correct horse", "new_password": "short"})),
            )
            .await;
        assert_eq!(r.code(), "INVALID_PASSWORD", "{m}");
        let r = app
            .req(
                &o.token,
                "POST",
                "/api/v1/auth/password/",
                Some(json!({"current_password": "correct horse", "new_password": "another horse"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{m}: {}", r.body);
        let r = app
            .post(
                "/api/v1/auth/login/",
                json!({"email": o.email, "password": "correct horse"}),
            )
            .await;
        assert_eq!(r.code(), "INVALID_CREDENTIALS", "{m}");
        app.login(&o.email, "another horse").await;

        // X-API-Key always means an API key.
        let r = app
            .call(
                "GET",
                "/api/v1/auth/me/",
                None,
                &[("x-api-key", "not-a-key")],
            )
            .await;
        assert_eq!(r.code(), "INVALID_API_KEY", "{m}");
        app.stop().await;
    }
}

#[tokio::test]
async fn auditors_page_through_the_account_history() {
    for app in TestApp::both().await {
        let m = app.mode;
        let o = app.signup("Audit").await;
        let other = app.signup("Other").await;
        app.req(
            &o.token,
            "POST",
            "/api/v1/auth/sites/",
            Some(json!({"name": "Blog"})),
        )
        .await;
        let spent = app
            .req(
                &o.token,
                "POST",
                "/api/v1/commands/SpendCredits",
                Some(json!({"amount": 1})),
            )
            .await;
        assert_eq!(spent.status, StatusCode::OK, "{m}: {}", spent.body);
        // The feed shows a commit once older transactions (other tests') end:
        // min_position waits for our own write.
        let pos = spent.data()["position"].as_i64().unwrap();
        let mut seen = vec![];
        let mut after: Option<String> = None;
        loop {
            let path = match &after {
                Some(a) => format!("/api/v1/audit/events/?limit=3&after={a}"),
                None => format!("/api/v1/audit/events/?limit=3&min_position={pos}"),
            };
            let r = app.req(&o.token, "GET", &path, None).await;
            assert_eq!(r.status, StatusCode::OK, "{m}: {}", r.body);
            for e in r.data()["results"].as_array().unwrap() {
                assert_eq!(
                    e["account_id"],
                    o.account_id.as_str(),
                    "{m}: only this account"
                );
                seen.push(e["event_type"].as_str().unwrap().to_string());
                if e["event_type"] == "UserRegistered" {
                    assert_eq!(
                        e["payload"]["UserRegistered"]["credential"], "[redacted]",
                        "{m}: sealed secrets are not served"
                    );
                }
            }
            match r.data()["next_after"].as_str() {
                Some(n) => after = Some(n.to_string()),
                None => break,
            }
        }
        for t in [
            "TenantCreated",
            "UserRegistered",
            "LoginClaimed",
            "SessionStarted",
            "SiteCreated",
            "CreditsSpent",
        ] {
            assert!(seen.iter().any(|s| s == t), "{m}: {t} in {seen:?}");
        }
        let r = app
            .req(&o.token, "GET", "/api/v1/audit/events/?after=bogus", None)
            .await;
        assert_eq!(r.code(), "INVALID_QUERY", "{m}");
        let r = app
            .req(&other.token, "GET", "/api/v1/audit/events/", None)
            .await;
        assert!(!r.body.to_string().contains(&o.account_id), "{m}");
        app.stop().await;
    }
}

#[tokio::test]
async fn industries_suggest_the_sectors_a_new_site_can_take() {
    for app in TestApp::both().await {
        let m = app.mode;
        let r = app.get("/api/v1/auth/industries/").await;
        assert_eq!(r.status, StatusCode::OK, "{m}: no credentials needed");
        let travel = r
            .data()
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["id"] == "travel")
            .unwrap()
            .clone();
        let suggested: Vec<&str> = travel["sectors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect();
        let o = app.signup("Industries").await;
        let r = app
            .req(
                &o.token,
                "POST",
                "/api/v1/auth/sites/",
                Some(json!({"name": "Trips", "industry_id": "spaceflight"})),
            )
            .await;
        assert_eq!(r.code(), "UNKNOWN_INDUSTRY", "{m}: {}", r.body);
        let r = app
            .req(&o.token, "POST", "/api/v1/auth/sites/",
                Some(json!({"name": "Trips", "industry_id": "travel", "with_suggested_sectors": true})))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{m}: {}", r.body);
        assert_eq!(r.data()["industry"], "Travel & Tourism", "{m}: {}", r.body);
        let names: Vec<&str> = r.data()["sectors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap())
            .collect();
        assert_eq!(names.len(), suggested.len(), "{m}: {}", r.body);
        for s in &suggested {
            assert!(names.contains(s), "{m}: {s} in {names:?}");
        }
        app.stop().await;
    }
}
