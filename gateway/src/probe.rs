//! The probe server of a process (`IGNY8_PROBE_LISTEN`): what an
//! orchestrator asks the relay, the projections and the workers, which
//! serve no API.
//!
//! - `GET /health`: liveness — the process answers (restart it if not).
//! - `GET /ready`: 200 when this process can do its job right now — the
//!   database answers, NATS is connected (when the process works from it)
//!   and every component reports ready (`active` or `standby`); 503 with
//!   the same body otherwise, naming what is missing.
//! - `GET /metrics`: the same as Prometheus gauges (`igny8_ready`,
//!   `igny8_dependency_up{dependency}`, `igny8_component_ready{component}`).

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use igny8_commands::health::ComponentState;
use igny8_commands::{Db, Health};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// What the probe looks at. The database is set once the process has
/// connected (it may start while the database is away).
#[derive(Clone)]
pub struct Probe {
    pub process: &'static str,
    pub health: Health,
    pub db: Arc<OnceLock<Db>>,
    /// Set when this process works from NATS (its readiness needs it).
    pub nats: Arc<OnceLock<async_nats::Client>>,
}

impl Probe {
    pub fn new(process: &'static str, health: Health) -> Self {
        Self {
            process,
            health,
            db: Arc::default(),
            nats: Arc::default(),
        }
    }

    /// `(ready, report)`: the report is the `/ready` body.
    pub async fn check(&self) -> (bool, Report) {
        let database = match self.db.get() {
            Some(db) => matches!(
                tokio::time::timeout(Duration::from_secs(2), db.ping()).await,
                Ok(Ok(()))
            ),
            None => false,
        };
        let nats = self
            .nats
            .get()
            .map(|c| c.connection_state() == async_nats::connection::State::Connected);
        let components = self.health.components();
        let ready = database
            && nats.unwrap_or(true)
            && !components.is_empty()
            && components.iter().all(|c| c.ready);
        let report = Report {
            status: if ready { "ready" } else { "not_ready" },
            process: self.process,
            checks: Checks { database, nats },
            components,
        };
        (ready, report)
    }
}

#[derive(serde::Serialize)]
pub struct Report {
    pub status: &'static str,
    pub process: &'static str,
    pub checks: Checks,
    pub components: Vec<ComponentState>,
}

#[derive(serde::Serialize)]
pub struct Checks {
    pub database: bool,
    /// `null` when this process does not use NATS.
    pub nats: Option<bool>,
}

pub fn router(probe: Probe) -> Router {
    Router::new()
        .route(
            "/health",
            get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }),
        )
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .with_state(probe)
}

async fn ready(State(p): State<Probe>) -> Response {
    let (ok, report) = p.check().await;
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(report)).into_response()
}

async fn metrics(State(p): State<Probe>) -> Response {
    let (ok, r) = p.check().await;
    let b = |v: bool| u8::from(v);
    let mut out = String::new();
    out.push_str("# HELP igny8_ready Whether this process can do its job (1) or not (0).\n");
    out.push_str("# TYPE igny8_ready gauge\n");
    out.push_str(&format!(
        "igny8_ready{{process=\"{}\"}} {}\n",
        r.process,
        b(ok)
    ));
    out.push_str("# HELP igny8_dependency_up Whether a dependency answers.\n");
    out.push_str("# TYPE igny8_dependency_up gauge\n");
    out.push_str(&format!(
        "igny8_dependency_up{{dependency=\"database\"}} {}\n",
        b(r.checks.database)
    ));
    if let Some(n) = r.checks.nats {
        out.push_str(&format!(
            "igny8_dependency_up{{dependency=\"nats\"}} {}\n",
            b(n)
        ));
    }
    out.push_str("# HELP igny8_component_ready Whether a component of this process can work.\n");
    out.push_str("# TYPE igny8_component_ready gauge\n");
    for ComponentState { name, ready, .. } in &r.components {
        out.push_str(&format!(
            "igny8_component_ready{{component=\"{name}\"}} {}\n",
            b(*ready)
        ));
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}

/// Bind the probe's address (at start, so a bad one fails at once).
pub async fn bind(addr: &str) -> anyhow::Result<tokio::net::TcpListener> {
    use anyhow::Context;
    let addr: std::net::SocketAddr = addr.parse().with_context(|| {
        format!("--probe-listen / IGNY8_PROBE_LISTEN must be an address like 127.0.0.1:9090, got {addr:?}")
    })?;
    tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (probe)"))
}

/// Serve the probe until shutdown.
pub async fn serve(
    listener: tokio::net::TcpListener,
    probe: Probe,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    tracing::info!(local = %listener.local_addr()?, "probe listening");
    axum::serve(listener, router(probe))
        .with_graceful_shutdown(async move {
            let _ = shutdown.wait_for(|v| *v).await;
        })
        .await?;
    Ok(())
}
