//! Keywords over HTTP in both run modes: CSV import (dialects, rejects,
//! duplicates, 100,000 rows, concurrent imports), list filters, export,
//! create / update / delete, and bad files that write nothing.

use crate::harness::{Owner, Resp, TestApp};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::json;

async fn sector(app: &TestApp, o: &Owner) -> (String, String) {
    app.site_and_sector(o).await
}

async fn import(app: &TestApp, token: &str, sector: &str, csv: impl Into<Vec<u8>>) -> Resp {
    app.import_csv(token, sector, csv).await
}

#[tokio::test]
async fn import_list_export_and_edit_keywords() {
    for app in TestApp::both().await {
        let m = app.mode;
        let o = app.signup("Planner").await;
        let (site, sec) = sector(&app, &o).await;
        let csv = "\u{feff}Keyword,Search Volume,KD %,Intent,CPC (USD)\n\
                   Best Hiking Boots,1900,42,Commercial,1.5\n\
                   best  hiking boots,10,1,,\n\
                   hiking boots for women,880,35,T,0.9\n\
                   ,5,5,,\n\
                   trail shoes,-3,5,,\n\
                   waterproof hiking boots,720,101,,\n\
                   hiking socks,300,12,informational,0.3\n";
        let r = import(&app, &o.token, &sec, csv).await;
        assert_eq!(r.status, StatusCode::OK, "{m}: {}", r.body);
        let d = r.data();
        assert_eq!(
            (
                d["lines"].as_i64(),
                d["imported"].as_i64(),
                d["duplicates_skipped"].as_i64(),
                d["rejected_count"].as_i64()
            ),
            (Some(7), Some(3), Some(1), Some(3)),
            "{m}: {d}"
        );
        let lines: Vec<i64> = d["rejected"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["line"].as_i64().unwrap())
            .collect();
        assert_eq!(lines, [5, 6, 7], "{m}");
        let pos = d["position"].as_i64().unwrap();
        // Importing the same file again adds nothing.
        let r = import(&app, &o.token, &sec, csv).await;
        assert_eq!(
            (
                r.data()["imported"].as_i64(),
                r.data()["duplicates_skipped"].as_i64()
            ),
            (Some(0), Some(4)),
            "{m}"
        );
        // List, filters, ordering.
        let list = |q: &'static str| list_kw(&app, &o.token, &sec, pos, q);
        let r = list("").await;
        assert_eq!(r.data()["count"], 3, "{m}: {}", r.body);
        assert_eq!(
            r.data()["results"][0]["keyword"],
            "Best Hiking Boots",
            "{m}: ordered by volume, descending"
        );
        assert_eq!(r.data()["results"][0]["site_id"], site.as_str());
        assert_eq!(list("&search=WOMEN").await.data()["count"], 1, "{m}");
        assert_eq!(
            list("&intent=transactional").await.data()["count"],
            1,
            "{m}"
        );
        assert_eq!(
            list("&volume_min=500&volume_max=1000").await.data()["count"],
            1,
            "{m}"
        );
        assert_eq!(list("&difficulty_max=20").await.data()["count"], 1, "{m}");
        assert_eq!(list("&unclustered=true").await.data()["count"], 3, "{m}");
        let r = list("&ordering=keyword&page_size=2").await;
        assert_eq!(
            (
                r.data()["results"][0]["keyword"].as_str(),
                r.data()["next"].is_string()
            ),
            (Some("Best Hiking Boots"), true),
            "{m}"
        );
        assert_eq!(
            list("&ordering=secret").await.code(),
            "INVALID_QUERY",
            "{m}"
        );
        assert_eq!(list("&intent=maybe").await.code(), "INVALID_QUERY", "{m}");
        // Export: same filters, every row, with a header.
        let req = Request::get(format!(
            "/api/v1/planner/keywords/export_csv/?sector_id={sec}&ordering=keyword"
        ))
        .header("authorization", format!("Bearer {}", o.token))
        .body(Body::empty())
        .unwrap();
        let res = tower::ServiceExt::oneshot(app.router.clone(), req)
            .await
            .unwrap();
        assert_eq!(res.headers()["content-type"], "text/csv; charset=utf-8");
        let text = String::from_utf8(
            http_body_util::BodyExt::collect(res.into_body())
                .await
                .unwrap()
                .to_bytes()
                .to_vec(),
        )
        .unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with(
                "id,keyword,volume,difficulty,intent,cpc,status,cluster_id,cluster_name"
            ),
            "{m}: {}",
            lines[0]
        );
        assert_eq!(lines.len(), 4, "{m}: {text}");
        assert!(
            lines[1].contains("Best Hiking Boots,1900,42,commercial,1.5"),
            "{m}: {}",
            lines[1]
        );
        // Create (duplicates refused), update, delete, bulk delete.
        let r = app
            .req(
                &o.token,
                "POST",
                "/api/v1/planner/keywords/",
                Some(json!({"sector_id": sec, "keyword": "BEST hiking boots"})),
            )
            .await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::CONFLICT, "ALREADY_EXISTS"),
            "{m}"
        );
        let r = app.req(&o.token, "POST", "/api/v1/planner/keywords/", Some(json!({"sector_id": sec, "keyword": "Trail Running", "volume": 50, "difficulty": 200}))).await;
        assert_eq!(r.code(), "INVALID_DIFFICULTY", "{m}");
        let r = app
            .req(
                &o.token,
                "POST",
                "/api/v1/planner/keywords/",
                Some(json!({"sector_id": sec, "keyword": "Trail Running", "volume": 50})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{m}: {}", r.body);
        let id = r.data()["id"].as_str().unwrap().to_string();
        let pos = r.data()["position"].as_i64().unwrap();
        app.req(
            &o.token,
            "GET",
            &format!("/api/v1/planner/keywords/?sector_id={sec}&min_position={pos}"),
            None,
        )
        .await;
        let r = app
            .req(
                &o.token,
                "PATCH",
                &format!("/api/v1/planner/keywords/{id}/"),
                Some(json!({"volume": 75, "intent": "navigational", "status": "inactive"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{m}: {}", r.body);
        let pos = r.data()["position"].as_i64().unwrap();
        let r = app
            .req(
                &o.token,
                "GET",
                &format!(
                    "/api/v1/planner/keywords/?sector_id={sec}&status=inactive&min_position={pos}"
                ),
                None,
            )
            .await;
        assert_eq!(
            (
                r.data()["results"][0]["volume"].as_i64(),
                r.data()["results"][0]["intent"].as_str()
            ),
            (Some(75), Some("navigational")),
            "{m}"
        );
        let r = app
            .req(
                &o.token,
                "PATCH",
                &format!("/api/v1/planner/keywords/{id}/"),
                Some(json!({"intent": null, "cpc": 2.5})),
            )
            .await;
        let pos = r.data()["position"].as_i64().unwrap();
        let r = app
            .req(
                &o.token,
                "GET",
                &format!(
                    "/api/v1/planner/keywords/?sector_id={sec}&status=inactive&min_position={pos}"
                ),
                None,
            )
            .await;
        assert_eq!(
            (
                r.data()["results"][0]["intent"].is_null(),
                r.data()["results"][0]["cpc"].as_f64()
            ),
            (true, Some(2.5)),
            "{m}"
        );
        let r = app
            .req(
                &o.token,
                "PATCH",
                &format!("/api/v1/planner/keywords/{id}/"),
                Some(json!({"difficulty": -1})),
            )
            .await;
        assert_eq!(r.code(), "INVALID_DIFFICULTY", "{m}");
        let r = app
            .req(
                &o.token,
                "DELETE",
                &format!("/api/v1/planner/keywords/{id}/"),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{m}");
        let all = list("").await;
        let ids: Vec<String> = all.data()["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["id"].as_str().unwrap().to_string())
            .collect();
        let r = app
            .req(
                &o.token,
                "POST",
                "/api/v1/planner/keywords/bulk_delete/",
                Some(json!({"sector_id": sec, "ids": ids})),
            )
            .await;
        assert_eq!(
            (r.status, r.data()["deleted"].as_i64()),
            (StatusCode::OK, Some(3)),
            "{m}: {}",
            r.body
        );
        let pos = r.data()["position"].as_i64().unwrap();
        let r = app
            .req(
                &o.token,
                "GET",
                &format!("/api/v1/planner/keywords/?sector_id={sec}&min_position={pos}"),
                None,
            )
            .await;
        assert_eq!(r.data()["count"], 0, "{m}");
        app.stop().await;
    }
}

#[tokio::test]
async fn bad_files_write_nothing_and_other_accounts_see_nothing() {
    for app in TestApp::both().await {
        let m = app.mode;
        let o = app.signup("Files").await;
        let (_, sec) = sector(&app, &o).await;
        let head = app.state.feed.head().await.unwrap();
        for (body, code) in [
            (b"".to_vec(), "EMPTY_FILE"),
            (
                b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR".to_vec(),
                "NOT_A_TEXT_FILE",
            ),
            (
                b"Stichw\xf6rter;Volumen\nx;1\n".to_vec(),
                "INVALID_ENCODING",
            ),
            (b"name,volume\nx,1\n".to_vec(), "NO_KEYWORD_COLUMN"),
        ] {
            let r = import(&app, &o.token, &sec, body).await;
            assert_eq!(
                (r.status, r.code()),
                (StatusCode::UNPROCESSABLE_ENTITY, code),
                "{m}: {}",
                r.body
            );
        }
        // Only bad lines: answered, nothing written.
        let r = import(&app, &o.token, &sec, "keyword,volume\n,1\nx,-1\n").await;
        assert_eq!(
            (
                r.data()["imported"].as_i64(),
                r.data()["rejected_count"].as_i64()
            ),
            (Some(0), Some(2)),
            "{m}"
        );
        // NUL characters (PostgreSQL cannot store them) are refused, never a 500:
        // in a CSV line, in a JSON body, in a query string.
        assert_eq!(
            app.state.feed.head().await.unwrap(),
            head,
            "{m}: bad files and bad lines wrote nothing"
        );
        // (A NUL in the first 8 KB makes the file binary, above; later, one line.)
        let mut csv = String::from("keyword\n");
        for i in 0..1000 {
            csv.push_str(&format!("good keyword {i}\n"));
        }
        csv.push_str("nul\u{0}byte\n");
        let nul = import(&app, &o.token, &sec, csv).await;
        assert_eq!(
            (
                nul.data()["imported"].as_i64(),
                nul.data()["rejected_count"].as_i64()
            ),
            (Some(1000), Some(1)),
            "{m}: {}",
            nul.body
        );
        let head = app.state.feed.head().await.unwrap();
        let r = app
            .req(
                &o.token,
                "POST",
                "/api/v1/planner/keywords/",
                Some(json!({"sector_id": sec, "keyword": "a\u{0}b"})),
            )
            .await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR"),
            "{m}"
        );
        let r = app
            .req(
                &o.token,
                "POST",
                "/api/v1/commands/SpendCredits",
                Some(json!({"amount": 1, "reason": "x\u{0}"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{m}");
        for q in ["search=a%00b", "status=%00", "status=archived"] {
            let r = app
                .req(
                    &o.token,
                    "GET",
                    &format!("/api/v1/planner/keywords/?sector_id={sec}&{q}"),
                    None,
                )
                .await;
            assert_eq!(
                (r.status, r.code()),
                (StatusCode::BAD_REQUEST, "INVALID_QUERY"),
                "{m}: {q}"
            );
        }
        // A page far beyond the end is an empty page, not an overflow.
        let r = app
            .req(&o.token, "GET", &format!("/api/v1/planner/keywords/?sector_id={sec}&page=9223372036854775807&page_size=500"), None)
            .await;
        assert_eq!(
            (r.status, r.data()["results"].as_array().map(Vec::len)),
            (StatusCode::OK, Some(0)),
            "{m}: {}",
            r.body
        );
        assert_eq!(
            app.state.feed.head().await.unwrap(),
            head,
            "{m}: none of the above wrote anything"
        );
        // A 10 MB field is one rejected line.
        let big = format!(
            "keyword,volume\n{},1\nfine,2\n",
            "k".repeat(10 * 1024 * 1024)
        );
        let r = import(&app, &o.token, &sec, big).await;
        assert_eq!(
            (
                r.data()["imported"].as_i64(),
                r.data()["rejected_count"].as_i64()
            ),
            (Some(1), Some(1)),
            "{m}: {}",
            r.data()
        );
        let after = app.state.feed.head().await.unwrap();
        assert!(after > head, "{m}: the good line was written");
        // Another account's sector is 404; a viewer may not import.
        let other = app.signup("Other").await;
        let r = import(&app, &other.token, &sec, "keyword\nx\n").await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{m}");
        let r = app
            .req(
                &other.token,
                "GET",
                &format!("/api/v1/planner/keywords/?sector_id={sec}"),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{m}");
        let r = app
            .req(&other.token, "GET", "/api/v1/planner/keywords/", None)
            .await;
        assert_eq!(r.data()["count"], 0, "{m}: no rows of another account");
        let r = app.req(&o.token, "POST", "/api/v1/auth/users/", Some(json!({"email": format!("v-{}@example.com", &o.account_id[..8]), "password": "password1", "role": "viewer"}))).await;
        assert_eq!(r.status, StatusCode::CREATED);
        let viewer = app
            .login(
                &format!("v-{}@example.com", &o.account_id[..8]),
                "password1",
            )
            .await;
        let r = import(&app, &viewer, &sec, "keyword\nx\n").await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{m}");
        // Deleting the sector takes its keywords out of every list.
        let head = app.state.feed.head().await.unwrap();
        let r = app
            .req(
                &o.token,
                "GET",
                &format!("/api/v1/planner/keywords/?min_position={head}"),
                None,
            )
            .await;
        assert_eq!(r.data()["count"], 1001, "{m}");
        let r = app
            .req(
                &o.token,
                "DELETE",
                &format!("/api/v1/auth/sectors/{sec}/"),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{m}");
        let pos = r.data()["position"].as_i64().unwrap();
        let r = app
            .req(
                &o.token,
                "GET",
                &format!("/api/v1/planner/keywords/?min_position={pos}"),
                None,
            )
            .await;
        assert_eq!(r.data()["count"], 0, "{m}: {}", r.body);
        app.stop().await;
    }
}

#[tokio::test]
async fn a_hundred_thousand_rows_and_concurrent_imports() {
    for app in TestApp::both().await {
        let m = app.mode;
        let o = app.signup("Scale").await;
        let (_, sec) = sector(&app, &o).await;
        let mut csv = String::from("keyword,volume,difficulty\n");
        for i in 0..100_000 {
            csv.push_str(&format!("keyword number {i},{},{}\n", i % 5000, i % 101));
        }
        let t = std::time::Instant::now();
        let r = import(&app, &o.token, &sec, csv).await;
        assert_eq!(r.status, StatusCode::OK, "{m}: {}", r.body);
        assert_eq!(r.data()["imported"], 100_000, "{m}");
        let pos = r.data()["position"].as_i64().unwrap();
        // Listable: wait (a debug build applies 100,000 rows slowly) until the read model has them.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        let r = loop {
            let r = app
                .req(
                    &o.token,
                    "GET",
                    &format!(
                        "/api/v1/planner/keywords/?sector_id={sec}&page=100000&page_size=1&min_position={pos}"
                    ),
                    None,
                )
                .await;
            if r.code() != "PROJECTION_BEHIND" || std::time::Instant::now() > deadline {
                break r;
            }
        };
        // The last row is there and is the last one; counted exactly that far.
        assert_eq!(
            (
                r.data()["count"].as_i64(),
                r.data()["results"].as_array().map(Vec::len),
                r.data()["next"].is_null()
            ),
            (Some(100_000), Some(1), true),
            "{m}: {}",
            r.body
        );
        // Page 1 counts up to the cap and says so.
        let r = app
            .req(
                &o.token,
                "GET",
                &format!("/api/v1/planner/keywords/?sector_id={sec}"),
                None,
            )
            .await;
        assert_eq!(
            (
                r.data()["count"].as_i64(),
                r.data()["count_capped"].as_bool()
            ),
            (Some(10_000), Some(true)),
            "{m}"
        );
        eprintln!(
            "{m}: 100,000 rows imported and listable in {:?}",
            t.elapsed()
        );
        // Four concurrent imports overlapping on half their rows: every
        // keyword once, and the imports' counts add up.
        let app = std::sync::Arc::new(app);
        let mut tasks = vec![];
        for part in 0..4 {
            let (app, o, sec) = (app.clone(), o.clone(), sec.clone());
            tasks.push(tokio::spawn(async move {
                let mut csv = String::from("keyword\n");
                for i in 0..1000 {
                    csv.push_str(&format!("Shared {i}\nown {part} {i}\n"));
                }
                import(&app, &o.token, &sec, csv).await
            }));
        }
        let mut imported = 0;
        let mut last = 0;
        for t in tasks {
            let r = t.await.unwrap();
            assert_eq!(r.status, StatusCode::OK, "{m}: {}", r.body);
            imported += r.data()["imported"].as_i64().unwrap();
            last = last.max(r.data()["position"].as_i64().unwrap_or(0));
        }
        assert_eq!(
            imported,
            1000 + 4 * 1000,
            "{m}: shared keywords imported once"
        );
        let r = app.req(&o.token, "GET", &format!("/api/v1/planner/keywords/?sector_id={sec}&search=shared&page_size=1&min_position={last}"), None).await;
        assert_eq!(r.data()["count"], 1000, "{m}");
        std::sync::Arc::into_inner(app).unwrap().stop().await;
    }
}

async fn list_kw(app: &TestApp, token: &str, sec: &str, pos: i64, q: &str) -> Resp {
    app.req(
        token,
        "GET",
        &format!("/api/v1/planner/keywords/?sector_id={sec}&min_position={pos}{q}"),
        None,
    )
    .await
}
