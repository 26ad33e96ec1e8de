//! Test harness: a [`TestApp`] running the router with its projections and
//! job workers, either embedded (SQLite, in-process feed) or scale-out
//! (PostgreSQL, relay, NATS JetStream), and helpers to send requests and
//! sign up owners.

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use igny8_commands::StreamNames;
use igny8_commands::secrets::Keyring;
use igny8_commands::testkit::{nats_url, pg_db, sqlite_db, unique};
use igny8_gateway::app::router;
use igny8_gateway::config::Settings;
use igny8_gateway::state::AppState;
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tower::ServiceExt;

pub struct TestApp {
    pub mode: &'static str,
    pub router: Router,
    pub state: AppState,
    /// The PostgreSQL schema of a scale-out app (for processes started beside it).
    pub schema: Option<String>,
    /// Automation's clock: tests move it (the scheduler polls every 100 ms).
    pub clock: igny8_commands::automation::ManualClock,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<anyhow::Result<()>>>,
    stream: Option<(async_nats::jetstream::Context, String)>,
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Resp {
    pub fn data(&self) -> &Value {
        &self.body["data"]
    }
    pub fn code(&self) -> &str {
        self.body["error_code"].as_str().unwrap_or("")
    }
}

/// Settings of a test app: fresh keys (never a key file in the working directory).
pub fn test_settings() -> Settings {
    Settings {
        read_wait_ms: 5000,
        jwt_keys: Some(Keyring::generate("t1").to_spec()),
        secret_keys: Some(Keyring::generate("s1").to_spec()),
        // Provider stubs answer fast: fail a silent one quickly, batch small.
        ai_timeout_ms: 1500,
        ai_max_attempts: 3,
        ai_max_retry_wait_ms: 5000,
        ai_embed_batch: 8,
        // Media on local disk in a folder of its own (never the working directory).
        data_dir: std::env::temp_dir().join(unique("igny8-test-data")),
        // Provider stubs answer on loopback.
        allow_private_fetch: true,
        // A publish asks WordPress about an unanswered create soon.
        wp_settle_ms: 300,
        ..Settings::default()
    }
}

/// The S3-protocol server the scale-out tests store media in (moto's
/// server, started by scripts/test.sh): `s3://bucket?endpoint=…`.
pub fn s3_url() -> String {
    std::env::var("IGNY8_TEST_S3_URL").unwrap_or_else(|_| {
        panic!(
            "IGNY8_TEST_S3_URL is not set: the scale-out tests store images in a real S3-protocol server. \
             Run scripts/test.sh (it starts moto's server), or set IGNY8_TEST_S3_URL=s3://bucket?endpoint=http://127.0.0.1:PORT \
             with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        )
    })
}

/// The test app's scheduler: its clock, polling every 100 ms.
pub fn scheduler(state: &AppState) -> igny8_workers::automation::Scheduler {
    igny8_workers::automation::Scheduler {
        bus: state.bus.clone(),
        lookup: std::sync::Arc::new(igny8_projections::automation::lookup::Lookup::new(
            &state.bus,
        )),
        planner: std::sync::Arc::new(igny8_projections::planner::OwnedLookup(state.db.clone())),
        clock: state.clock.clone(),
        tick: std::time::Duration::from_millis(100),
        concurrency: 8,
        renew_every: std::time::Duration::from_millis(200),
    }
}

/// What the test app's job workers run with (the app's sealing keys).
pub fn job_env(state: &AppState) -> igny8_workers::jobs::JobEnv {
    igny8_workers::jobs::JobEnv::new(
        state.bus.clone(),
        state.keys.secrets.clone(),
        state.settings.ai_options(),
    )
    .with_writer(std::sync::Arc::new(igny8_projections::writer::Lookup(
        state.db.clone(),
    )))
    .with_media(state.media.clone().expect("media storage opens"))
    .allow_private_fetch(state.settings.allow_private_fetch)
    .with_wordpress(state.settings.wp_options())
}

/// A signed-up owner: tokens and ids.
#[derive(Clone, Debug)]
pub struct Owner {
    pub email: String,
    pub token: String,
    pub refresh: String,
    pub account_id: String,
    pub user_id: String,
}

impl TestApp {
    /// SQLite + in-process feed, as `igny8 serve` with no configuration.
    pub async fn embedded() -> Self {
        Self::embedded_with(test_settings()).await
    }

    pub async fn embedded_with(settings: Settings) -> Self {
        let (db, _) = sqlite_db().await;
        let mut state = AppState::new(db.clone(), None, settings).unwrap();
        let clock = igny8_commands::automation::ManualClock::new(chrono::Utc::now());
        state.clock = std::sync::Arc::new(clock.clone());
        let (stop, rx) = watch::channel(false);
        let tasks = igny8_projections::all()
            .into_iter()
            .map(|p| {
                tokio::spawn(igny8_projections::run_embedded(
                    db.clone(),
                    state.feed.clone(),
                    p,
                    igny8_commands::Health::new(),
                    rx.clone(),
                    None,
                ))
            })
            .chain(std::iter::once(tokio::spawn(
                igny8_workers::jobs::run_embedded(
                    job_env(&state),
                    "test-worker".into(),
                    igny8_commands::Health::new(),
                    rx.clone(),
                ),
            )))
            .chain(std::iter::once(tokio::spawn(
                igny8_workers::automation::run(
                    scheduler(&state),
                    igny8_commands::Health::new(),
                    rx.clone(),
                ),
            )))
            .collect();
        TestApp {
            mode: "embedded",
            router: router(state.clone()),
            state,
            schema: None,
            clock,
            stop,
            tasks,
            stream: None,
        }
    }

    /// PostgreSQL + relay + JetStream consumers, as the scale-out mode.
    pub async fn postgres_nats() -> Self {
        Self::postgres_nats_opts(true, |s| s).await
    }

    /// The scale-out mode with no job workers in this process (a test
    /// starts `igny8 workers` processes instead).
    pub async fn postgres_nats_without_workers() -> Self {
        Self::postgres_nats_opts(false, |s| s).await
    }

    async fn postgres_nats_opts(workers: bool, tweak: fn(Settings) -> Settings) -> Self {
        let (db, schema) = pg_db().await;
        let url = nats_url();
        let client = async_nats::connect(&url)
            .await
            .unwrap_or_else(|e| panic!("NATS with JetStream is required and is not reachable at {url}: {e}. Run scripts/test.sh."));
        let prefix = unique("t");
        let names = StreamNames {
            stream: prefix.to_uppercase(),
            prefix: prefix.clone(),
        };
        let settings = tweak(Settings {
            database_url: Some("postgres://test".into()),
            nats_url: Some(url),
            nats_stream: names.stream.clone(),
            nats_prefix: names.prefix.clone(),
            media_url: Some(s3_url()),
            ..test_settings()
        });
        let mut state = AppState::new(db.clone(), Some(client.clone()), settings).unwrap();
        let clock = igny8_commands::automation::ManualClock::new(chrono::Utc::now());
        state.clock = std::sync::Arc::new(clock.clone());
        let js = async_nats::jetstream::new(client);
        let (stop, rx) = watch::channel(false);
        let mut tasks = vec![tokio::spawn(igny8_workers::relay::run(
            db.clone(),
            state.feed.clone(),
            js.clone(),
            names.clone(),
            igny8_commands::Health::new(),
            rx.clone(),
        ))];
        for p in igny8_projections::all() {
            tasks.push(tokio::spawn(igny8_projections::run_nats(
                db.clone(),
                js.clone(),
                names.clone(),
                p,
                igny8_commands::Health::new(),
                rx.clone(),
                None,
            )));
        }
        if workers {
            tasks.push(tokio::spawn(igny8_workers::jobs::run_nats(
                job_env(&state),
                js.clone(),
                names.clone(),
                "test-worker".into(),
                std::time::Duration::from_secs(3),
                igny8_commands::Health::new(),
                rx.clone(),
            )));
            tasks.push(tokio::spawn(igny8_workers::automation::run(
                scheduler(&state),
                igny8_commands::Health::new(),
                rx.clone(),
            )));
        }
        TestApp {
            mode: "postgres+nats",
            router: router(state.clone()),
            state,
            schema: Some(schema),
            clock,
            stop,
            tasks,
            stream: Some((js, names.stream)),
        }
    }

    pub async fn both() -> Vec<TestApp> {
        vec![TestApp::embedded().await, TestApp::postgres_nats().await]
    }

    /// Both run modes with settings changed by `tweak`.
    pub async fn both_with(tweak: fn(Settings) -> Settings) -> Vec<TestApp> {
        vec![
            TestApp::embedded_with(tweak(test_settings())).await,
            TestApp::postgres_nats_opts(true, tweak).await,
        ]
    }

    /// An answer that need not be JSON (a file): status, headers, bytes.
    pub async fn bytes(
        &self,
        token: Option<&str>,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (StatusCode, HeaderMap, Vec<u8>) {
        let mut req = Request::builder().method("GET").uri(path);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = self
            .router
            .clone()
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let (status, headers) = (res.status(), res.headers().clone());
        let bytes = res.into_body().collect().await.unwrap().to_bytes().to_vec();
        (status, headers, bytes)
    }

    pub async fn raw(&self, req: Request<Body>) -> Resp {
        let res = self.router.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let body: Value = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            panic!(
                "{}: every answer is JSON, got {status}: {}",
                self.mode,
                String::from_utf8_lossy(&bytes)
            )
        });
        assert!(
            status != StatusCode::INTERNAL_SERVER_ERROR,
            "{}: 500: {body}",
            self.mode
        );
        assert!(
            body["success"].is_boolean(),
            "{}: envelope: {body}",
            self.mode
        );
        assert!(
            !body["request_id"].as_str().unwrap_or("").is_empty(),
            "{}: request_id: {body}",
            self.mode
        );
        assert!(
            body["timestamp"].is_string(),
            "{}: timestamp: {body}",
            self.mode
        );
        if status.is_success() {
            assert_eq!(body["success"], true);
        } else {
            assert_eq!(body["success"], false, "{}: {body}", self.mode);
            assert!(
                body["error"].is_string() && body["error_code"].is_string(),
                "{}: error envelope: {body}",
                self.mode
            );
        }
        Resp {
            status,
            headers,
            body,
        }
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let mut b = Request::builder().method(method).uri(path);
        if body.is_some() {
            b = b.header("content-type", "application/json");
        }
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let body = body
            .map(|v| Body::from(v.to_string()))
            .unwrap_or_else(Body::empty);
        self.raw(b.body(body).unwrap()).await
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.call("GET", path, None, &[]).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.call("POST", path, Some(body), &[]).await
    }

    /// A request with `Authorization: Bearer <token>`.
    pub async fn req(&self, token: &str, method: &str, path: &str, body: Option<Value>) -> Resp {
        let auth = format!("Bearer {token}");
        self.call(method, path, body, &[("authorization", auth.as_str())])
            .await
    }

    /// Sign up a fresh account; its owner's tokens and ids.
    pub async fn signup(&self, name: &str) -> Owner {
        let email = format!("{}@example.com", unique("owner"));
        let r = self
            .post(
                "/api/v1/auth/signup/",
                serde_json::json!({"email": email, "password": "correct horse", "account_name": name}),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::CREATED,
            "{}: signup: {}",
            self.mode,
            r.body
        );
        let d = r.data();
        Owner {
            email,
            token: d["access_token"].as_str().unwrap().into(),
            refresh: d["refresh_token"].as_str().unwrap().into(),
            account_id: d["account"]["id"].as_str().unwrap().into(),
            user_id: d["user"]["id"].as_str().unwrap().into(),
        }
    }

    /// Log in; the access token.
    pub async fn login(&self, email: &str, password: &str) -> String {
        let r = self
            .post(
                "/api/v1/auth/login/",
                serde_json::json!({"email": email, "password": password}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}: login: {}", self.mode, r.body);
        r.data()["access_token"].as_str().unwrap().to_string()
    }

    /// A site and a sector of the owner's account: (site_id, sector_id).
    pub async fn site_and_sector(&self, o: &Owner) -> (String, String) {
        let r = self
            .req(
                &o.token,
                "POST",
                "/api/v1/auth/sites/",
                Some(serde_json::json!({"name": "Blog"})),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::CREATED,
            "{}: a site: {}",
            self.mode,
            r.body
        );
        let site = r.data()["id"].as_str().unwrap().to_string();
        let r = self
            .req(
                &o.token,
                "POST",
                &format!("/api/v1/auth/sites/{site}/sectors/"),
                Some(serde_json::json!({"name": "Travel"})),
            )
            .await;
        (site, r.data()["id"].as_str().unwrap().to_string())
    }

    /// `POST import_csv` with a raw CSV body.
    pub async fn import_csv(&self, token: &str, sector: &str, csv: impl Into<Vec<u8>>) -> Resp {
        let req = Request::post(format!(
            "/api/v1/planner/keywords/import_csv/?sector_id={sector}"
        ))
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "text/csv")
        .body(Body::from(csv.into()))
        .unwrap();
        self.raw(req).await
    }

    pub async fn stop(self) {
        self.stop.send(true).unwrap();
        for t in self.tasks {
            t.await.unwrap().unwrap();
        }
        if let Some((js, s)) = self.stream {
            let _ = js.delete_stream(&s).await;
        }
    }
}
