//! The role/tenant matrix: every endpoint, called by every role of one
//! account and by the owner of a second account, in both run modes.
//! Another account's ids answer 404 (never 403: no existence leak); lists
//! never show another account's rows.

use crate::harness::{Resp, TestApp};
use axum::http::StatusCode;
use serde_json::{Value, json};

/// Actors, in the order they call: those refused first, the allowed last
/// (so a mutation that succeeds does not change what the others see).
const ACTORS: [&str; 6] = [
    "other",
    "viewer",
    "editor_nogrant",
    "editor",
    "owner",
    "admin",
];

struct World {
    tokens: std::collections::HashMap<&'static str, String>,
    ids: std::collections::HashMap<&'static str, String>,
    /// Ids of account A that must never appear in the other account's answers.
    secrets_of_a: Vec<String>,
}

async fn ok(r: Resp, what: &str) -> Value {
    assert!(r.status.is_success(), "{what}: {} {}", r.status, r.body);
    r.data().clone()
}

async fn user(app: &TestApp, owner: &str, email: &str, role: &str) -> (String, String) {
    let r = app
        .req(
            owner,
            "POST",
            "/api/v1/auth/users/",
            Some(json!({"email": email, "password": "password1", "role": role})),
        )
        .await;
    let id = ok(r, "create user").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    (id, app.login(email, "password1").await)
}

async fn world(app: &TestApp) -> World {
    let a = app.signup("Account A").await;
    let b = app.signup("Account B").await;
    let n = igny8_commands::testkit::unique("m");
    // An operator moves A to a plan with room for two sites.
    igny8_commands::tenancy::create_operator(
        &app.state.bus,
        &app.state.keys.secrets,
        &format!("op-{n}@example.com"),
        "operator-pw",
    )
    .await
    .unwrap();
    let op = app
        .login(&format!("op-{n}@example.com"), "operator-pw")
        .await;
    let r = app
        .call(
            "POST",
            "/api/v1/commands/ChangePlan",
            Some(json!({"plan": "starter"})),
            &[
                ("authorization", &format!("Bearer {op}")),
                ("x-account-id", &a.account_id),
            ],
        )
        .await;
    ok(r, "change plan").await;
    let t = a.token.as_str();
    let s1 = ok(
        app.req(
            t,
            "POST",
            "/api/v1/auth/sites/",
            Some(json!({"name": "Site One"})),
        )
        .await,
        "s1",
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let s2 = ok(
        app.req(
            t,
            "POST",
            "/api/v1/auth/sites/",
            Some(json!({"name": "Site Two"})),
        )
        .await,
        "s2",
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let x1 = ok(
        app.req(
            t,
            "POST",
            &format!("/api/v1/auth/sites/{s1}/sectors/"),
            Some(json!({"name": "Sector One"})),
        )
        .await,
        "x1",
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let x2 = ok(
        app.req(
            t,
            "POST",
            &format!("/api/v1/auth/sites/{s1}/sectors/"),
            Some(json!({"name": "Sector Two"})),
        )
        .await,
        "x2",
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (admin_id, admin) = user(app, t, &format!("admin-{n}@example.com"), "admin").await;
    let (editor_id, editor) = user(app, t, &format!("editor-{n}@example.com"), "editor").await;
    let (viewer_id, viewer) = user(app, t, &format!("viewer-{n}@example.com"), "viewer").await;
    let (_, editor_nogrant) = user(app, t, &format!("editor2-{n}@example.com"), "editor").await;
    let (target, _) = user(app, t, &format!("target-{n}@example.com"), "viewer").await;
    for u in [&editor_id, &viewer_id] {
        ok(
            app.req(
                t,
                "PUT",
                &format!("/api/v1/auth/users/{u}/sites/"),
                Some(json!({"site_ids": [s1]})),
            )
            .await,
            "grant",
        )
        .await;
    }
    let k1 = ok(
        app.req(
            t,
            "POST",
            "/api/v1/auth/api-keys/",
            Some(json!({"name": "k1", "role": "viewer"})),
        )
        .await,
        "k1",
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let k2 = ok(
        app.req(
            t,
            "POST",
            "/api/v1/auth/api-keys/",
            Some(json!({"name": "k2", "role": "viewer"})),
        )
        .await,
        "k2",
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    // B has its own site.
    ok(
        app.req(
            &b.token,
            "POST",
            "/api/v1/auth/sites/",
            Some(json!({"name": "B site"})),
        )
        .await,
        "b site",
    )
    .await;
    // Two keywords in sector X1 (of site S1).
    let mut kws = vec![];
    for k in ["alpha keyword", "beta keyword"] {
        let r = app
            .req(
                t,
                "POST",
                "/api/v1/planner/keywords/",
                Some(json!({"sector_id": x1, "keyword": k})),
            )
            .await;
        kws.push(ok(r, "keyword").await["id"].as_str().unwrap().to_string());
    }
    // An idea and a task in X1.
    let r = app
        .req(
            t,
            "POST",
            "/api/v1/planner/ideas/",
            Some(json!({"sector_id": x1, "idea_title": "Matrix idea", "primary_keyword": "matrix idea"})),
        )
        .await;
    let idea = ok(r, "idea").await["id"].as_str().unwrap().to_string();
    let r = app
        .req(
            t,
            "POST",
            "/api/v1/writer/tasks/",
            Some(
                json!({"sector_id": x1, "title": "Matrix task", "primary_keyword": "matrix task"}),
            ),
        )
        .await;
    let task = ok(r, "task").await["id"].as_str().unwrap().to_string();
    let w = writer_world(app, t, &x1, &s1).await;
    let head = app.state.feed.head().await.unwrap();
    // Commands on one keyword find it in the read model: wait until it is there.
    let r = app
        .req(
            t,
            "GET",
            &format!("/api/v1/planner/keywords/?min_position={head}"),
            None,
        )
        .await;
    ok(r, "keywords projected").await;
    // Lists below read at least this far.
    let tokens = [
        ("owner", a.token.clone()),
        ("admin", admin),
        ("editor", editor),
        ("viewer", viewer),
        ("editor_nogrant", editor_nogrant),
        ("other", b.token.clone()),
        ("operator", op),
    ]
    .into_iter()
    .collect();
    let ids = [
        ("A", a.account_id.clone()),
        ("S1", s1.clone()),
        ("S2", s2.clone()),
        ("X1", x1.clone()),
        ("X2", x2.clone()),
        ("T", target.clone()),
        ("K1", k1.clone()),
        ("K2", k2.clone()),
        ("HEAD", head.to_string()),
        ("ADMIN", admin_id),
        ("KW1", kws[0].clone()),
        ("KW2", kws[1].clone()),
        ("ID1", idea.clone()),
        ("TK1", task.clone()),
    ]
    .into_iter()
    .chain(w.iter().map(|(k, v)| (*k, v.clone())))
    .collect();
    World {
        tokens,
        ids,
        secrets_of_a: vec![
            s1,
            s2,
            x1,
            x2,
            target,
            k1,
            k2,
            a.user_id,
            kws[0].clone(),
            kws[1].clone(),
            idea,
            task,
        ]
        .into_iter()
        .chain(w.into_iter().map(|(_, v)| v))
        .collect(),
    }
}

/// What the writer, images and publishing rows act on, all of account A's
/// site S1: an article (CN1, offline, one version), a cluster (CL1), an
/// idea and a task to delete (ID2, TK3), an author profile and a strategy
/// (AP1, ST1) and a WordPress connection (WP1, to an address nothing
/// answers: its jobs fail, which these rows do not look at).
async fn writer_world(app: &TestApp, t: &str, x1: &str, s1: &str) -> Vec<(&'static str, String)> {
    let id = |v: &Value| v["id"].as_str().unwrap().to_string();
    let r = app
        .req(t, "POST", "/api/v1/writer/tasks/",
            Some(json!({"sector_id": x1, "title": "Matrix article", "primary_keyword": "matrix article", "target_word_count": 500})))
        .await;
    let tk2 = id(&ok(r, "task 2").await);
    let r = app
        .req(
            t,
            "POST",
            "/api/v1/writer/tasks/auto_generate_content/",
            Some(json!({"task_ids": [tk2]})),
        )
        .await;
    let job = ok(r, "content job").await["job_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        crate::jobs::wait_done(app, t, &job).await.data()["state"],
        "SUCCESS"
    );
    let r = app
        .req(
            t,
            "POST",
            "/api/v1/planner/keywords/auto_cluster/",
            Some(json!({"sector_id": x1, "num_clusters": 1})),
        )
        .await;
    let job = ok(r, "cluster job").await["job_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        crate::jobs::wait_done(app, t, &job).await.data()["state"],
        "SUCCESS"
    );
    let cl1 = crate::jobs::clusters(app, t, x1).await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let head = app.state.feed.head().await.unwrap();
    let r = app
        .req(
            t,
            "GET",
            &format!("/api/v1/writer/tasks/{tk2}/?min_position={head}"),
            None,
        )
        .await;
    let cn1 = ok(r, "task 2 again").await["content_id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = app
        .req(t, "POST", "/api/v1/planner/ideas/",
            Some(json!({"sector_id": x1, "idea_title": "Doomed idea", "primary_keyword": "doomed idea"})))
        .await;
    let id2 = id(&ok(r, "idea 2").await);
    let r = app
        .req(
            t,
            "POST",
            "/api/v1/writer/tasks/",
            Some(
                json!({"sector_id": x1, "title": "Doomed task", "primary_keyword": "doomed task"}),
            ),
        )
        .await;
    let tk3 = id(&ok(r, "task 3").await);
    let r = app
        .req(
            t,
            "POST",
            "/api/v1/system/author-profiles/",
            Some(json!({"name": "Matrix voice"})),
        )
        .await;
    let ap1 = id(&ok(r, "profile").await);
    let r = app
        .req(
            t,
            "POST",
            "/api/v1/system/strategies/",
            Some(json!({"name": "Matrix plan"})),
        )
        .await;
    let st1 = id(&ok(r, "strategy").await);
    let r = app
        .req(
            t,
            "POST",
            "/api/v1/integration/integrations/",
            Some(
                json!({"site_id": s1, "wp_url": "http://127.0.0.1:9/", "wp_username": "admin",
                        "wp_app_password": "abcd efgh ijkl mnop qrst uvwx"}),
            ),
        )
        .await;
    let wp1 = id(&ok(r, "integration").await);
    // Automation: a rule, another to delete, and a run that has ended.
    let rule = |name: &str| {
        json!({"site_id": s1, "name": name, "trigger": {"type": "schedule", "cron": "0 9 * * *"},
               "stages": [{"action": "queue_ideas_to_writer", "batch_size": 1}], "max_credits_per_run": 0})
    };
    let r = app
        .req(
            t,
            "POST",
            "/api/v1/automation/rules/",
            Some(rule("Matrix rule")),
        )
        .await;
    let rl1 = id(&ok(r, "rule").await);
    let r = app
        .req(
            t,
            "POST",
            "/api/v1/automation/rules/",
            Some(rule("Doomed rule")),
        )
        .await;
    let rl2 = id(&ok(r, "rule 2").await);
    let r = app
        .req(
            t,
            "POST",
            &format!("/api/v1/automation/rules/{rl2}/execute/"),
            None,
        )
        .await;
    let rn1 = ok(r, "execute").await["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let h = app.state.feed.head().await.unwrap();
        let r = app
            .req(
                t,
                "GET",
                &format!("/api/v1/automation/runs/{rn1}/?min_position={h}"),
                None,
            )
            .await;
        if r.data()["status"] != "running" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the matrix run never ended: {}",
            r.body
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    vec![
        ("RL1", rl1),
        ("RL2", rl2),
        ("RN1", rn1),
        ("CN1", cn1),
        ("CL1", cl1),
        ("ID2", id2),
        ("TK3", tk3),
        ("AP1", ap1),
        ("ST1", st1),
        ("WP1", wp1),
    ]
}

/// (method, path, body, expected status per actor in ACTORS order; 0 = not called).
type Row = (&'static str, &'static str, Option<Value>, [u16; 6]);

fn rows() -> Vec<Row> {
    //                                                                              other viewer eng  editor owner admin
    vec![
        (
            "GET",
            "/api/v1/auth/me/",
            None,
            [200, 200, 200, 200, 200, 200],
        ),
        (
            "GET",
            "/api/v1/auth/users/?min_position={HEAD}",
            None,
            [200, 403, 403, 403, 200, 200],
        ),
        (
            "GET",
            "/api/v1/auth/users/{T}/",
            None,
            [404, 403, 403, 403, 200, 200],
        ),
        (
            "GET",
            "/api/v1/auth/sites/?min_position={HEAD}",
            None,
            [200, 200, 200, 200, 200, 200],
        ),
        (
            "GET",
            "/api/v1/auth/sites/{S1}/",
            None,
            [404, 200, 404, 200, 200, 200],
        ),
        (
            "GET",
            "/api/v1/auth/sites/{S2}/",
            None,
            [404, 404, 404, 404, 200, 200],
        ),
        (
            "GET",
            "/api/v1/auth/sites/{S1}/sectors/",
            None,
            [404, 200, 404, 200, 200, 200],
        ),
        (
            "GET",
            "/api/v1/auth/api-keys/?min_position={HEAD}",
            None,
            [200, 403, 403, 403, 200, 200],
        ),
        // Provider settings: each account its own; owners and admins only.
        (
            "PUT",
            "/api/v1/system/settings/integrations/openai/",
            Some(json!({"chat_model": "gpt-4o"})),
            [200, 403, 403, 403, 200, 200],
        ),
        (
            "GET",
            "/api/v1/system/settings/integrations/openai/",
            None,
            [200, 403, 403, 403, 200, 200],
        ),
        (
            "GET",
            "/api/v1/billing/credits/",
            None,
            [200, 200, 200, 200, 200, 200],
        ),
        (
            "GET",
            "/api/v1/billing/transactions/?min_position={HEAD}",
            None,
            [200, 403, 403, 403, 200, 200],
        ),
        (
            "GET",
            "/api/v1/billing/subscription/",
            None,
            [200, 403, 403, 403, 200, 200],
        ),
        (
            "GET",
            "/api/v1/billing/events/",
            None,
            [200, 403, 403, 403, 200, 200],
        ),
        (
            "GET",
            "/api/v1/billing/plans/",
            None,
            [200, 200, 200, 200, 200, 200],
        ),
        (
            "GET",
            "/api/v1/commands/",
            None,
            [200, 200, 200, 200, 200, 200],
        ),
        (
            "GET",
            "/api/v1/system/projections/",
            None,
            [403, 403, 403, 403, 403, 403],
        ),
        (
            "GET",
            "/api/v1/system/projections/mine/",
            None,
            [200, 403, 403, 403, 200, 200],
        ),
        (
            "GET",
            "/api/v1/billing/usage/",
            None,
            [200, 403, 403, 403, 200, 200],
        ),
        ("GET", "/api/v1/jobs/", None, [200, 200, 200, 200, 200, 200]),
        (
            "GET",
            "/api/v1/planner/clusters/?sector_id={X1}",
            None,
            [404, 200, 404, 200, 200, 200],
        ),
        (
            "POST",
            "/api/v1/planner/keywords/auto_cluster/",
            Some(json!({"sector_id": "{X1}", "strategy": "bogus"})),
            [404, 403, 404, 422, 422, 422],
        ),
        (
            "GET",
            "/api/v1/planner/keywords/?sector_id={X1}&min_position={HEAD}",
            None,
            [404, 200, 404, 200, 200, 200],
        ),
        (
            "GET",
            "/api/v1/planner/keywords/?min_position={HEAD}",
            None,
            [200, 200, 200, 200, 200, 200],
        ),
        (
            "POST",
            "/api/v1/planner/keywords/",
            Some(json!({"sector_id": "{X1}", "keyword": "kw {UNIQ}"})),
            [404, 403, 404, 201, 0, 201],
        ),
        (
            "PATCH",
            "/api/v1/planner/keywords/{KW1}/",
            Some(json!({"volume": 5})),
            [404, 403, 404, 200, 0, 200],
        ),
        (
            "POST",
            "/api/v1/planner/keywords/bulk_delete/",
            Some(json!({"sector_id": "{X1}", "ids": ["{KW2}"]})),
            [404, 403, 404, 0, 0, 200],
        ),
        (
            "DELETE",
            "/api/v1/planner/keywords/{KW1}/",
            None,
            [404, 403, 404, 0, 0, 200],
        ),
        // The writer: ideas, tasks, content.
        (
            "GET",
            "/api/v1/planner/ideas/?min_position={HEAD}",
            None,
            [200, 200, 200, 200, 200, 200],
        ),
        (
            "GET",
            "/api/v1/planner/ideas/{ID1}/?min_position={HEAD}",
            None,
            [404, 200, 404, 200, 200, 200],
        ),
        (
            "PATCH",
            "/api/v1/planner/ideas/{ID1}/",
            Some(json!({"description": "changed"})),
            [404, 403, 404, 200, 0, 200],
        ),
        (
            "POST",
            "/api/v1/planner/ideas/",
            Some(
                json!({"sector_id": "{X1}", "idea_title": "Idea {UNIQ}", "primary_keyword": "kw {UNIQ}"}),
            ),
            [404, 403, 404, 201, 0, 201],
        ),
        (
            "GET",
            "/api/v1/writer/tasks/?min_position={HEAD}",
            None,
            [200, 200, 200, 200, 200, 200],
        ),
        (
            "GET",
            "/api/v1/writer/tasks/{TK1}/?min_position={HEAD}",
            None,
            [404, 200, 404, 200, 200, 200],
        ),
        (
            "PATCH",
            "/api/v1/writer/tasks/{TK1}/",
            Some(json!({"brief": "changed"})),
            [404, 403, 404, 200, 0, 200],
        ),
        (
            "POST",
            "/api/v1/writer/tasks/",
            Some(
                json!({"sector_id": "{X1}", "title": "Task {UNIQ}", "primary_keyword": "kw {UNIQ}"}),
            ),
            [404, 403, 404, 201, 0, 201],
        ),
        (
            "POST",
            "/api/v1/planner/ideas/bulk_queue_to_writer/",
            Some(json!({"idea_ids": ["{ID1}"]})),
            [404, 403, 404, 0, 0, 200],
        ),
        (
            "POST",
            "/api/v1/writer/tasks/auto_generate_content/",
            Some(json!({"task_ids": ["{TK1}"]})),
            [404, 403, 404, 0, 0, 202],
        ),
        (
            "GET",
            "/api/v1/writer/content/?min_position={HEAD}",
            None,
            [200, 200, 200, 200, 200, 200],
        ),
        (
            "GET",
            "/api/v1/writer/content/{TK1}/",
            None,
            [404, 404, 404, 404, 404, 404],
        ),
        (
            "GET",
            "/api/v1/writer/content/{CN1}/?min_position={HEAD}",
            None,
            [404, 200, 404, 200, 200, 200],
        ),
        (
            "GET",
            "/api/v1/writer/content/{CN1}/versions/",
            None,
            [404, 200, 404, 200, 200, 200],
        ),
        (
            "GET",
            "/api/v1/writer/content/{CN1}/versions/1/",
            None,
            [404, 200, 404, 200, 200, 200],
        ),
        (
            "GET",
            "/api/v1/writer/content/{CN1}/versions/1/diff/?against=1",
            None,
            [404, 200, 404, 200, 200, 200],
        ),
        (
            "GET",
            "/api/v1/planner/clusters/{CL1}/",
            None,
            [404, 200, 404, 200, 200, 200],
        ),
        (
            "GET",
            "/api/v1/integration/integrations/{WP1}/?min_position={HEAD}",
            None,
            [404, 200, 404, 200, 200, 200],
        ),
        (
            "GET",
            "/api/v1/integration/integrations/{WP1}/sync_logs/",
            None,
            [404, 200, 404, 200, 200, 200],
        ),
        (
            "GET",
            "/api/v1/writer/image-prompts/?min_position={HEAD}",
            None,
            [200, 200, 200, 200, 200, 200],
        ),
        (
            "GET",
            "/api/v1/writer/images/?min_position={HEAD}",
            None,
            [200, 200, 200, 200, 200, 200],
        ),
        (
            "GET",
            "/api/v1/integration/integrations/?min_position={HEAD}",
            None,
            [200, 200, 200, 200, 200, 200],
        ),
        (
            "GET",
            "/api/v1/integration/publications/?min_position={HEAD}",
            None,
            [200, 200, 200, 200, 200, 200],
        ),
        (
            "GET",
            "/api/v1/system/prompts/",
            None,
            [200, 200, 200, 200, 200, 200],
        ),
        (
            "GET",
            "/api/v1/system/author-profiles/",
            None,
            [200, 200, 200, 200, 200, 200],
        ),
        (
            "GET",
            "/api/v1/system/strategies/",
            None,
            [200, 200, 200, 200, 200, 200],
        ),
        (
            "GET",
            "/api/v1/system/author-profiles/{AP1}/",
            None,
            [404, 200, 200, 200, 200, 200],
        ),
        (
            "GET",
            "/api/v1/system/strategies/{ST1}/",
            None,
            [404, 200, 200, 200, 200, 200],
        ),
        // Writer mutations on A's article and settings.
        (
            "PATCH",
            "/api/v1/writer/content/{CN1}/",
            Some(json!({"title": "Matrix article, edited"})),
            [404, 403, 404, 200, 0, 200],
        ),
        (
            "POST",
            "/api/v1/writer/content/{CN1}/status/",
            Some(json!({"status": "review"})),
            [404, 403, 404, 0, 0, 200],
        ),
        (
            "POST",
            "/api/v1/writer/content/{CN1}/revert/",
            Some(json!({"version": 1})),
            [404, 403, 404, 0, 0, 200],
        ),
        (
            "POST",
            "/api/v1/planner/clusters/auto_generate_ideas/",
            Some(json!({"cluster_ids": ["{CL1}"], "ideas_per_cluster": 1})),
            [404, 403, 404, 0, 0, 202],
        ),
        (
            "DELETE",
            "/api/v1/planner/ideas/{ID2}/",
            None,
            [404, 403, 404, 0, 0, 200],
        ),
        (
            "DELETE",
            "/api/v1/writer/tasks/{TK3}/",
            None,
            [404, 403, 404, 0, 0, 200],
        ),
        (
            "PUT",
            "/api/v1/system/prompts/ideas/",
            Some(json!({"template": "Ideas for {keywords}"})),
            [200, 403, 403, 403, 0, 200],
        ),
        (
            "POST",
            "/api/v1/system/prompts/ideas/reset/",
            None,
            [200, 403, 403, 403, 0, 200],
        ),
        (
            "POST",
            "/api/v1/system/author-profiles/",
            Some(json!({"name": "Voice {UNIQ}"})),
            [201, 403, 403, 403, 0, 201],
        ),
        (
            "PATCH",
            "/api/v1/system/author-profiles/{AP1}/",
            Some(json!({"tone": "dry"})),
            [404, 403, 403, 403, 0, 200],
        ),
        (
            "PATCH",
            "/api/v1/system/strategies/{ST1}/",
            Some(json!({"description": "changed"})),
            [404, 403, 403, 403, 0, 200],
        ),
        (
            "DELETE",
            "/api/v1/system/strategies/{ST1}/",
            None,
            [404, 403, 403, 403, 0, 200],
        ),
        (
            "DELETE",
            "/api/v1/system/author-profiles/{AP1}/",
            None,
            [404, 403, 403, 403, 0, 200],
        ),
        (
            "PATCH",
            "/api/v1/integration/integrations/{WP1}/",
            Some(json!({"max_concurrent_requests": 1})),
            [404, 403, 404, 403, 0, 200],
        ),
        (
            "POST",
            "/api/v1/writer/content/{CN1}/regenerate/",
            None,
            [404, 403, 404, 0, 0, 202],
        ),
        (
            "POST",
            "/api/v1/integration/integrations/{WP1}/publish/",
            Some(json!({"content_id": "{CN1}", "status": "draft"})),
            [404, 403, 404, 0, 0, 202],
        ),
        (
            "DELETE",
            "/api/v1/integration/integrations/{WP1}/",
            None,
            [404, 403, 404, 403, 0, 200],
        ),
        // Automation: rules, runs, scheduled firings.
        (
            "GET",
            "/api/v1/automation/rules/?min_position={HEAD}",
            None,
            [200, 200, 200, 200, 200, 200],
        ),
        (
            "GET",
            "/api/v1/automation/runs/?min_position={HEAD}",
            None,
            [200, 200, 200, 200, 200, 200],
        ),
        (
            "GET",
            "/api/v1/automation/scheduled-tasks/?min_position={HEAD}",
            None,
            [200, 200, 200, 200, 200, 200],
        ),
        (
            "GET",
            "/api/v1/automation/rules/{RL1}/?min_position={HEAD}",
            None,
            [404, 200, 404, 200, 200, 200],
        ),
        (
            "GET",
            "/api/v1/automation/runs/{RN1}/?min_position={HEAD}",
            None,
            [404, 200, 404, 200, 200, 200],
        ),
        (
            "POST",
            "/api/v1/automation/rules/{RL1}/dry_run/",
            None,
            [404, 200, 404, 200, 200, 200],
        ),
        (
            "POST",
            "/api/v1/automation/rules/",
            Some(
                json!({"site_id": "{S1}", "name": "Rule {UNIQ}", "trigger": {"type": "manual"}, "stages": [{"action": "generate_content"}], "max_credits_per_run": 1}),
            ),
            [404, 403, 404, 201, 0, 201],
        ),
        (
            "PATCH",
            "/api/v1/automation/rules/{RL1}/",
            Some(json!({"name": "Renamed rule"})),
            [404, 403, 404, 200, 0, 200],
        ),
        (
            "POST",
            "/api/v1/automation/rules/{RL1}/pause/",
            None,
            [404, 403, 404, 0, 0, 200],
        ),
        (
            "POST",
            "/api/v1/automation/rules/{RL1}/resume/",
            None,
            [404, 403, 404, 0, 0, 200],
        ),
        (
            "POST",
            "/api/v1/automation/runs/{RN1}/cancel/",
            None,
            [404, 403, 404, 0, 0, 409],
        ),
        (
            "DELETE",
            "/api/v1/automation/rules/{RL2}/",
            None,
            [404, 403, 404, 0, 0, 200],
        ),
        (
            "POST",
            "/api/v1/automation/rules/{RL1}/execute/",
            None,
            [404, 403, 404, 0, 0, 202],
        ),
        // Mutations: the refused first; the last allowed actor's call succeeds.
        (
            "POST",
            "/api/v1/auth/users/",
            Some(json!({"email": "{UNIQ}@example.com", "password": "password1", "role": "viewer"})),
            [201, 403, 403, 403, 0, 201],
        ),
        (
            "POST",
            "/api/v1/auth/users/",
            Some(json!({"email": "{UNIQ}@example.com", "password": "password1", "role": "owner"})),
            [0, 0, 0, 0, 0, 422],
        ),
        (
            "PATCH",
            "/api/v1/auth/users/{T}/",
            Some(json!({"name": "Renamed"})),
            [404, 403, 403, 403, 0, 200],
        ),
        (
            "PATCH",
            "/api/v1/auth/users/{ADMIN}/",
            Some(json!({"role": "developer"})),
            [404, 403, 403, 403, 422, 0],
        ),
        (
            "PUT",
            "/api/v1/auth/users/{T}/sites/",
            Some(json!({"site_ids": ["{S1}"]})),
            [404, 403, 403, 403, 0, 200],
        ),
        (
            "POST",
            "/api/v1/auth/sites/",
            Some(json!({"name": "Site {UNIQ}"})),
            [422, 403, 403, 403, 0, 201],
        ),
        (
            "PATCH",
            "/api/v1/auth/sites/{S1}/",
            Some(json!({"industry": "Travel"})),
            [404, 403, 404, 403, 0, 200],
        ),
        (
            "POST",
            "/api/v1/auth/sites/{S1}/sectors/",
            Some(json!({"name": "Sector {UNIQ}"})),
            [404, 403, 404, 403, 0, 201],
        ),
        (
            "PATCH",
            "/api/v1/auth/sectors/{X1}/",
            Some(json!({"name": "Renamed"})),
            [404, 403, 404, 403, 0, 200],
        ),
        (
            "POST",
            "/api/v1/auth/api-keys/",
            Some(json!({"name": "k", "role": "viewer"})),
            [201, 403, 403, 403, 0, 201],
        ),
        (
            "POST",
            "/api/v1/commands/SpendCredits",
            Some(json!({"amount": 1})),
            [200, 403, 200, 200, 200, 200],
        ),
        (
            "POST",
            "/api/v1/billing/credits/grant/",
            Some(json!({"account_id": "{A}", "amount": 1})),
            [403, 403, 403, 403, 403, 403],
        ),
        (
            "POST",
            "/api/v1/commands/GrantCredits",
            Some(json!({"amount": 1})),
            [403, 403, 403, 403, 403, 403],
        ),
        (
            "POST",
            "/api/v1/commands/ChangePlan",
            Some(json!({"plan": "scale"})),
            [403, 403, 403, 403, 403, 403],
        ),
        (
            "POST",
            "/api/v1/commands/UpdateSite",
            Some(json!({"site_id": "{S1}", "industry": "Food"})),
            [404, 403, 404, 403, 0, 200],
        ),
        (
            "POST",
            "/api/v1/commands/UpdateSector",
            Some(json!({"sector_id": "{X1}", "status": "inactive"})),
            [404, 403, 404, 403, 0, 200],
        ),
        (
            "POST",
            "/api/v1/commands/SetUserSites",
            Some(json!({"user_id": "{T}", "site_ids": []})),
            [404, 403, 403, 403, 0, 200],
        ),
        (
            "POST",
            "/api/v1/commands/ChangeUserRole",
            Some(json!({"user_id": "{T}", "role": "editor"})),
            [404, 403, 403, 403, 0, 200],
        ),
        (
            "POST",
            "/api/v1/commands/RevokeApiKey",
            Some(json!({"api_key_id": "{K1}"})),
            [404, 403, 403, 403, 0, 200],
        ),
        (
            "DELETE",
            "/api/v1/auth/api-keys/{K2}/",
            None,
            [404, 403, 403, 403, 0, 200],
        ),
        (
            "DELETE",
            "/api/v1/auth/sectors/{X2}/",
            None,
            [404, 403, 404, 403, 0, 200],
        ),
        (
            "DELETE",
            "/api/v1/auth/users/{T}/",
            None,
            [404, 403, 403, 403, 0, 200],
        ),
        (
            "DELETE",
            "/api/v1/auth/sites/{S2}/",
            None,
            [404, 404, 404, 404, 0, 200],
        ),
        (
            "DELETE",
            "/api/v1/auth/users/{ADMIN}/",
            None,
            [0, 0, 0, 0, 0, 403],
        ),
    ]
}

fn fill(s: &str, w: &World) -> String {
    let mut out = s.to_string();
    for (k, v) in &w.ids {
        out = out.replace(&format!("{{{k}}}"), v);
    }
    out.replace("{UNIQ}", &igny8_commands::testkit::unique("u"))
}

#[tokio::test]
async fn every_endpoint_with_every_role_and_another_account() {
    for app in TestApp::both().await {
        let m = app.mode;
        let w = world(&app).await;
        let mut checked = 0;
        for (method, path, body, expected) in rows() {
            for (actor, want) in ACTORS.iter().zip(expected) {
                if want == 0 {
                    continue;
                }
                let path = fill(path, &w);
                let body = body
                    .as_ref()
                    .map(|b| serde_json::from_str(&fill(&b.to_string(), &w)).unwrap());
                let r = app.req(&w.tokens[actor], method, &path, body).await;
                assert_eq!(
                    r.status.as_u16(),
                    want,
                    "{m}: {actor} {method} {path}: {}",
                    r.body
                );
                if *actor == "other" {
                    let text = r.body.to_string();
                    for id in &w.secrets_of_a {
                        assert!(
                            !text.contains(id.as_str()),
                            "{m}: {method} {path} shows account A's {id} to account B"
                        );
                    }
                }
                checked += 1;
            }
        }
        assert!(checked > 150, "{checked}");

        // Editors and viewers list only their granted sites.
        let r = app
            .req(
                &w.tokens["editor"],
                "GET",
                &format!(
                    "/api/v1/auth/sites/?min_position={}",
                    app.state.feed.head().await.unwrap()
                ),
                None,
            )
            .await;
        let ids: Vec<&str> = r.data()["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, [w.ids["S1"].as_str()], "{m}");
        let r = app
            .req(
                &w.tokens["editor_nogrant"],
                "GET",
                "/api/v1/auth/sites/",
                None,
            )
            .await;
        assert_eq!(r.data()["count"], 0, "{m}");

        // Operators: any account by X-Account-Id, none without.
        let op = format!("Bearer {}", w.tokens["operator"]);
        let r = app
            .call(
                "GET",
                "/api/v1/auth/users/",
                None,
                &[("authorization", &op)],
            )
            .await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::BAD_REQUEST, "ACCOUNT_REQUIRED"),
            "{m}"
        );
        let r = app
            .call(
                "GET",
                "/api/v1/auth/users/",
                None,
                &[("authorization", &op), ("x-account-id", &w.ids["A"])],
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{m}: {}", r.body);
        let r = app
            .call(
                "POST",
                "/api/v1/billing/credits/grant/",
                Some(json!({"account_id": w.ids["A"], "amount": 7, "reason": "goodwill"})),
                &[("authorization", &op)],
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{m}: {}", r.body);
        let r = app
            .call(
                "GET",
                "/api/v1/auth/users/",
                None,
                &[("authorization", &op), ("x-account-id", "nope")],
            )
            .await;
        assert_eq!(r.code(), "INVALID_ACCOUNT_ID", "{m}");
        // Changing to the plan the account is on grants nothing again;
        // a multi-aggregate command takes no expected_version.
        let owner = w.tokens["owner"].clone();
        let before = balance(&app, &owner).await;
        let r = change_plan(&app, &op, &w.ids["A"], json!({"plan": "starter"})).await;
        assert_eq!(
            (r.status, r.data()["events"].as_array().map(Vec::len)),
            (StatusCode::OK, Some(0)),
            "{m}: {}",
            r.body
        );
        assert_eq!(balance(&app, &owner).await, before, "{m}");
        let r = change_plan(
            &app,
            &op,
            &w.ids["A"],
            json!({"plan": "growth", "expected_version": 1}),
        )
        .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{m}");
        let r = change_plan(&app, &op, &w.ids["A"], json!({"plan": "platinum"})).await;
        assert_eq!(r.code(), "UNKNOWN_PLAN", "{m}");
        // Operator roles are never granted through the API.
        for role in ["developer", "system_bot", "owner", "god"] {
            let r = app.req(&w.tokens["owner"], "POST", "/api/v1/auth/users/", Some(json!({"email": format!("{}@example.com", igny8_commands::testkit::unique("r")), "password": "password1", "role": role}))).await;
            assert_eq!(r.code(), "INVALID_ROLE", "{m}: {role}");
        }
        app.stop().await;
    }
}

async fn balance(app: &TestApp, token: &str) -> Value {
    app.req(token, "GET", "/api/v1/billing/credits/", None)
        .await
        .data()["balance"]
        .clone()
}

async fn change_plan(app: &TestApp, op: &str, account: &str, body: Value) -> Resp {
    app.call(
        "POST",
        "/api/v1/commands/ChangePlan",
        Some(body),
        &[("authorization", op), ("x-account-id", account)],
    )
    .await
}
