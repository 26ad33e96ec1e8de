//! Run modes: which components run in this process, and their shutdown.

use crate::app::router;
use crate::config::Settings;
use crate::state::AppState;
use anyhow::Context;
use igny8_commands::db::DbOptions;
use igny8_commands::{Db, Feed};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;

pub struct Services {
    pub db: Db,
    pub nats: Option<async_nats::Client>,
}

/// Connect to the database (migrating it) and, when configured, to NATS;
/// fail at once if either is away (one-shot commands: migrate, admin, CLI).
pub async fn connect(s: &Settings) -> anyhow::Result<Services> {
    let db = open_db(s).await?;
    let nats = match &s.nats_url {
        None => None,
        Some(u) => Some(
            async_nats::ConnectOptions::new()
                .name("igny8")
                .connect(u.as_str())
                .await
                .with_context(|| format!("cannot connect to NATS at {u}"))?,
        ),
    };
    Ok(Services { db, nats })
}

async fn open_db(s: &Settings) -> anyhow::Result<Db> {
    if s.is_embedded() {
        std::fs::create_dir_all(&s.data_dir)
            .with_context(|| format!("cannot create data dir {}", s.data_dir.display()))?;
    }
    let url = s.database_url();
    let opts = DbOptions {
        max_connections: s.db_max_connections,
        schema: s.db_schema.clone(),
    };
    let db = Db::connect(&url, &opts)
        .await
        .with_context(|| format!("cannot connect to the database ({})", redact(&url)))?;
    db.migrate().await.context("database migration failed")?;
    Ok(db)
}

/// Whether `e` says a service is away (worth waiting for), as opposed to a
/// bad URL, refused credentials or a failed migration (worth exiting for).
fn unavailable(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<sqlx::Error>()
            .is_some_and(igny8_commands::db::is_unavailable)
            || matches!(
                c.downcast_ref::<sqlx::migrate::MigrateError>(),
                Some(sqlx::migrate::MigrateError::Execute(e)) if igny8_commands::db::is_unavailable(e)
            )
    })
}

/// Connect as a long-running process: wait (retrying with backoff, saying
/// so in the log and on the probe) while the database is away, and let
/// NATS connect in the background whenever it comes. `None`: shutdown was
/// asked for while waiting. A configuration error still ends the process.
pub async fn connect_waiting(
    s: &Settings,
    probe: &crate::probe::Probe,
    needs_nats: bool,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<Option<Services>> {
    let mut backoff = igny8_commands::Backoff::new();
    let db = loop {
        if *shutdown.borrow() {
            return Ok(None);
        }
        match open_db(s).await {
            Ok(db) => break db,
            Err(e) if unavailable(&e) => {
                tracing::warn!(error = %format!("{e:#}"), "database unavailable; retrying");
                backoff.wait(&mut shutdown).await;
            }
            Err(e) => return Err(e),
        }
    };
    let _ = probe.db.set(db.clone());
    let nats = match &s.nats_url {
        None => None,
        Some(u) => {
            let c = async_nats::ConnectOptions::new()
                .name("igny8")
                .retry_on_initial_connect()
                .event_callback(|e| async move {
                    match e {
                        async_nats::Event::Connected => tracing::info!("NATS connected"),
                        async_nats::Event::Disconnected => {
                            tracing::warn!("NATS disconnected; reconnecting")
                        }
                        other => tracing::info!(event = %other, "NATS"),
                    }
                })
                .connect(u.as_str())
                .await
                .with_context(|| format!("NATS_URL {u}"))?;
            if needs_nats {
                let _ = probe.nats.set(c.clone());
            }
            Some(c)
        }
    };
    Ok(Some(Services { db, nats }))
}

fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(a), Some(b)) if b > a => format!("{}://***@{}", &url[..a], &url[b + 1..]),
        _ => url.to_string(),
    }
}

/// The process-wide stop switch: SIGTERM or Ctrl-C flips it to true, and so
/// does the failure of a component (see [`supervise`]).
pub fn shutdown_signal() -> (Arc<watch::Sender<bool>>, watch::Receiver<bool>) {
    let (tx, rx) = watch::channel(false);
    let tx = Arc::new(tx);
    let signal_tx = tx.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => {}
            _ = term => {}
        }
        tracing::info!("shutdown requested; finishing in-flight work");
        let _ = signal_tx.send(true);
    });
    (tx, rx)
}

/// Projection runners: JetStream consumers when NATS is configured, the
/// in-process feed otherwise.
pub fn spawn_projections(
    tasks: &mut JoinSet<anyhow::Result<()>>,
    db: &Db,
    feed: &Feed,
    nats: &Option<async_nats::Client>,
    s: &Settings,
    health: &igny8_commands::Health,
    shutdown: &watch::Receiver<bool>,
) {
    for p in igny8_projections::all() {
        let (db, feed, sd) = (db.clone(), feed.clone(), shutdown.clone());
        match nats {
            Some(client) => {
                let js = async_nats::jetstream::new(client.clone());
                let names = s.stream_names();
                tasks.spawn(igny8_projections::run_nats(
                    db,
                    js,
                    names,
                    p,
                    health.clone(),
                    sd,
                    None,
                ));
            }
            None => {
                tasks.spawn(igny8_projections::run_embedded(
                    db,
                    feed,
                    p,
                    health.clone(),
                    sd,
                    None,
                ));
            }
        }
    }
}

/// Move WordPress fields that sites stored before connections existed
/// into connections (idempotent; a failure is logged and tried again at
/// the next start).
pub async fn migrate_wordpress_fields(state: &AppState) {
    match igny8_commands::publishing::integrations::migrate_site_fields(
        &state.bus,
        &state.keys.secrets,
    )
    .await
    {
        Ok(0) => {}
        Ok(n) => tracing::info!(sites = n, "site WordPress fields moved into connections"),
        Err(e) => tracing::warn!(error = %e, "site WordPress fields not migrated yet"),
    }
}

/// The automation scheduler (fires due rules, drives runs, renews plan
/// periods): in every `igny8 workers` process and in `igny8 serve`.
pub fn spawn_scheduler(
    tasks: &mut JoinSet<anyhow::Result<()>>,
    bus: &igny8_commands::CommandBus,
    clock: std::sync::Arc<dyn igny8_commands::automation::Clock>,
    s: &Settings,
    health: &igny8_commands::Health,
    shutdown: &watch::Receiver<bool>,
) {
    let db = bus.db().clone();
    tasks.spawn(igny8_workers::automation::run(
        igny8_workers::automation::Scheduler {
            bus: bus.clone(),
            lookup: std::sync::Arc::new(igny8_projections::automation::lookup::Lookup::new(bus)),
            planner: std::sync::Arc::new(igny8_projections::planner::OwnedLookup(db)),
            clock,
            tick: std::time::Duration::from_millis(s.scheduler_tick_ms.max(10)),
            concurrency: s.scheduler_concurrency.clamp(1, 256),
            renew_every: std::time::Duration::from_secs(60),
        },
        health.clone(),
        shutdown.clone(),
    ));
}

/// Job workers: JetStream work-queue consumers with NATS, else the
/// embedded loop over unfinished jobs.
pub fn spawn_job_workers(
    tasks: &mut JoinSet<anyhow::Result<()>>,
    bus: &igny8_commands::CommandBus,
    secrets: &igny8_commands::secrets::Keyring,
    nats: &Option<async_nats::Client>,
    s: &Settings,
    health: &igny8_commands::Health,
    shutdown: &watch::Receiver<bool>,
) {
    let name = format!(
        "{}-{}",
        std::env::var("HOSTNAME").unwrap_or_else(|_| "igny8".into()),
        std::process::id()
    );
    let mut env = igny8_workers::jobs::JobEnv::new(bus.clone(), secrets.clone(), s.ai_options())
        .with_writer(std::sync::Arc::new(igny8_projections::writer::Lookup(
            bus.db().clone(),
        )))
        .allow_private_fetch(s.allow_private_fetch)
        .with_wordpress(s.wp_options())
        .with_jobs_per_process(s.jobs_per_process.clamp(1, 256));
    match igny8_workers::images::MediaStore::open(s.media_url.as_deref(), &s.data_dir) {
        Ok(m) => env = env.with_media(m),
        Err(e) => tracing::error!(error = %e, "media storage cannot be opened; image jobs fail"),
    }
    let sd = shutdown.clone();
    match nats {
        Some(client) => {
            let js = async_nats::jetstream::new(client.clone());
            tasks.spawn(igny8_workers::jobs::run_nats(
                env,
                js,
                s.stream_names(),
                name,
                std::time::Duration::from_secs(s.job_ack_wait_secs.max(1)),
                health.clone(),
                sd,
            ));
        }
        None => {
            tasks.spawn(igny8_workers::jobs::run_embedded(
                env,
                name,
                health.clone(),
                sd,
            ));
        }
    }
}

pub fn spawn_relay(
    tasks: &mut JoinSet<anyhow::Result<()>>,
    db: &Db,
    feed: &Feed,
    client: &async_nats::Client,
    s: &Settings,
    health: &igny8_commands::Health,
    shutdown: &watch::Receiver<bool>,
) {
    let js = async_nats::jetstream::new(client.clone());
    tasks.spawn(igny8_workers::relay::run(
        db.clone(),
        feed.clone(),
        js,
        s.stream_names(),
        health.clone(),
        shutdown.clone(),
    ));
}

/// Serve HTTP until shutdown; in-flight requests finish first.
pub async fn serve_http(
    state: AppState,
    shutdown: watch::Receiver<bool>,
    banner: bool,
) -> anyhow::Result<()> {
    crate::app::warn_if_open_cors(&state.settings);
    let addr: SocketAddr = state.settings.listen.parse().with_context(|| {
        format!(
            "--listen / IGNY8_LISTEN must be an address like 127.0.0.1:8080, got {:?}",
            state.settings.listen
        )
    })?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    if banner {
        println!("IGNY8 listening on http://{local}");
        println!("  API docs:  http://{local}/api/docs/");
        println!("  OpenAPI:   http://{local}/api/v1/openapi.json");
        println!("  Health:    http://{local}/health");
    }
    tracing::info!(%local, "listening");
    let mut sd = shutdown.clone();
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        let _ = sd.wait_for(|v| *v).await;
    })
    .await?;
    Ok(())
}

/// Wait for background tasks after shutdown (bounded), reporting failures.
pub async fn drain(mut tasks: JoinSet<anyhow::Result<()>>) -> anyhow::Result<()> {
    let mut result = Ok(());
    let deadline = tokio::time::sleep(Duration::from_secs(15));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            next = tasks.join_next() => match next {
                None => return result,
                Some(Ok(Ok(()))) => {}
                Some(Ok(Err(e))) => { tracing::error!(error = %e, "component failed"); result = Err(e); }
                Some(Err(e)) => { tracing::error!(error = %e, "component panicked"); result = Err(e.into()); }
            },
            _ = &mut deadline => { tasks.abort_all(); return result; }
        }
    }
}

/// Run until shutdown; if any component (HTTP included) fails, stop everything.
pub async fn supervise(
    mut tasks: JoinSet<anyhow::Result<()>>,
    stop: Arc<watch::Sender<bool>>,
    http: Option<AppState>,
) -> anyhow::Result<()> {
    let mut shutdown = stop.subscribe();
    let mut http_task = http.map(|state| tokio::spawn(serve_http(state, stop.subscribe(), true)));
    let http_done = async {
        match http_task.as_mut() {
            Some(h) => h.await,
            None => std::future::pending().await,
        }
    };
    let failure: Option<anyhow::Error> = tokio::select! {
        _ = shutdown.wait_for(|v| *v) => None,
        Some(res) = tasks.join_next() => match res {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e),
            Err(e) => Some(e.into()),
        },
        res = http_done => {
            http_task = None;
            match res {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e),
                Err(e) => Some(e.into()),
            }
        }
    };
    let _ = stop.send(true);
    let mut result = failure.map_or(Ok(()), Err);
    if let Some(h) = http_task {
        match h.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => result = result.and(Err(e)),
            Err(e) => result = result.and(Err(e.into())),
        }
    }
    let drained = drain(tasks).await;
    result.and(drained)
}
