//! `igny8 <subcommand>`.

use crate::config::Settings;
use crate::runtime::{self, connect, shutdown_signal, supervise};
use crate::state::AppState;
use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use std::process::ExitCode;
use tokio::task::JoinSet;

#[derive(Parser, Debug)]
#[command(
    name = "igny8",
    version,
    about = "IGNY8: event-sourced AI SEO content platform backend",
    long_about = "IGNY8: event-sourced AI SEO content platform backend.\n\n\
    With no configuration, `igny8 serve` runs everything in one process on an embedded SQLite \
    database under ./igny8-data with an in-process event feed. Set DATABASE_URL and NATS_URL to \
    run on PostgreSQL + NATS JetStream, where gateway, relay, projections and workers can run as \
    separate processes."
)]
pub struct Cli {
    #[command(flatten)]
    pub settings: Settings,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Everything in one process (HTTP, projections, relay when NATS is set).
    Serve,
    /// The HTTP API only.
    Gateway,
    /// Publish committed events to NATS JetStream (needs NATS_URL).
    Relay,
    /// Projection runners and tools.
    Projections {
        #[command(subcommand)]
        command: ProjectionsCommand,
    },
    /// Job workers (clustering now; AI writing and publishing next). With
    /// NATS_URL they share a JetStream work queue; run as many as you like.
    Workers,
    /// Apply database migrations and exit.
    Migrate,
    /// Operator tools (never exposed over HTTP).
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Benchmarks against PostgreSQL + NATS (see docs/benchmarks.md).
    Bench(crate::benchmarks::BenchArgs),
    /// Clustering quality and speed on labelled sets (no database needed).
    BenchClustering(crate::benchmarks::clustering::ClusterBenchArgs),
}

#[derive(Subcommand, Debug)]
pub enum ProjectionsCommand {
    /// Run every projection (JetStream consumers with NATS_URL, else the in-process feed).
    Run,
    /// Print each projection's position and lag.
    Status,
    /// Rebuild one projection from the log beside the live one, then swap.
    Rebuild {
        /// Projection name (see `status`).
        name: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum AdminCommand {
    /// Create a `developer` operator: any account, chosen per request with X-Account-Id.
    CreateOperator {
        #[arg(long)]
        email: String,
        /// At least 8 characters.
        #[arg(long, env = "IGNY8_OPERATOR_PASSWORD", hide_env_values = true)]
        password: String,
    },
    /// Grant credits to an account (recorded with actor `operator-cli`).
    GrantCredits {
        #[arg(long)]
        account: uuid::Uuid,
        /// Credits (at most 3 decimals).
        #[arg(long)]
        amount: String,
        #[arg(long, default_value = "operator grant")]
        reason: String,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(&cli.settings);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(s: &Settings) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,async_nats=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if s.log_format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let s = cli.settings;
    match cli.command {
        Command::Migrate => {
            connect(&s).await?;
            println!(
                "migrations applied to {}",
                if s.is_embedded() {
                    s.database_url()
                } else {
                    "the configured database".into()
                }
            );
            Ok(())
        }
        Command::Serve => {
            let needs_nats = s.nats_url.is_some();
            let Some(mut p) = Process::start(&s, "serve", needs_nats).await? else {
                return Ok(());
            };
            let state = AppState::new(p.svc.db.clone(), p.svc.nats.clone(), s.clone())?;
            runtime::migrate_wordpress_fields(&state).await;
            if let Some(client) = &p.svc.nats {
                runtime::spawn_relay(
                    &mut p.tasks,
                    &p.svc.db,
                    &state.feed,
                    client,
                    &s,
                    &p.health,
                    &p.rx,
                );
            }
            runtime::spawn_projections(
                &mut p.tasks,
                &p.svc.db,
                &state.feed,
                &p.svc.nats,
                &s,
                &p.health,
                &p.rx,
            );
            runtime::spawn_job_workers(
                &mut p.tasks,
                &state.bus,
                &state.keys.secrets,
                &p.svc.nats,
                &s,
                &p.health,
                &p.rx,
            );
            runtime::spawn_scheduler(
                &mut p.tasks,
                &state.bus,
                state.clock.clone(),
                &s,
                &p.health,
                &p.rx,
            );
            if s.is_embedded() {
                println!(
                    "IGNY8 embedded mode: SQLite at {}, in-process event feed",
                    s.data_dir.join("igny8.db").display()
                );
            }
            p.run(Some(state)).await
        }
        Command::Gateway => {
            let Some(p) = Process::start(&s, "gateway", false).await? else {
                return Ok(());
            };
            // The gateway's own components: none but HTTP (ready on `/ready`).
            p.health.ready("gateway", "active");
            let state = AppState::new(p.svc.db.clone(), p.svc.nats.clone(), s.clone())?;
            runtime::migrate_wordpress_fields(&state).await;
            p.run(Some(state)).await
        }
        Command::Relay => {
            if s.nats_url.is_none() {
                bail!(
                    "the relay needs NATS_URL (and DATABASE_URL): it publishes the store's events to JetStream"
                );
            }
            let Some(mut p) = Process::start(&s, "relay", true).await? else {
                return Ok(());
            };
            let client = p.svc.nats.clone().context("NATS")?;
            let feed = igny8_commands::CommandBus::new(p.svc.db.clone()).feed();
            runtime::spawn_relay(
                &mut p.tasks,
                &p.svc.db,
                &feed,
                &client,
                &s,
                &p.health,
                &p.rx,
            );
            p.run(None).await
        }
        Command::Projections { command } => projections(s, command).await,
        Command::Workers => {
            let needs_nats = s.nats_url.is_some();
            let Some(mut p) = Process::start(&s, "workers", needs_nats).await? else {
                return Ok(());
            };
            let bus = igny8_commands::CommandBus::new(p.svc.db.clone());
            let keys = crate::auth::keys::Keys::load(&s)?;
            runtime::spawn_job_workers(
                &mut p.tasks,
                &bus,
                &keys.secrets,
                &p.svc.nats,
                &s,
                &p.health,
                &p.rx,
            );
            runtime::spawn_scheduler(&mut p.tasks, &bus, s.clock(), &s, &p.health, &p.rx);
            p.run(None).await
        }
        Command::Bench(args) => crate::benchmarks::run(&s, args).await,
        Command::BenchClustering(args) => {
            tokio::task::spawn_blocking(move || crate::benchmarks::clustering::run(args)).await?
        }
        Command::Admin { command } => admin(s, command).await,
    }
}

/// A long-running process (serve, gateway, relay, projections, workers):
/// its stop switch, its probe server when `IGNY8_PROBE_LISTEN` is set, its
/// connections (waited for while the database is away) and its tasks.
struct Process {
    svc: runtime::Services,
    stop: std::sync::Arc<tokio::sync::watch::Sender<bool>>,
    rx: tokio::sync::watch::Receiver<bool>,
    health: igny8_commands::Health,
    tasks: JoinSet<anyhow::Result<()>>,
}

impl Process {
    /// `None`: stopped (SIGTERM) while waiting for the database.
    async fn start(
        s: &Settings,
        name: &'static str,
        needs_nats: bool,
    ) -> anyhow::Result<Option<Process>> {
        let (stop, rx) = shutdown_signal();
        let health = igny8_commands::Health::new();
        let probe = crate::probe::Probe::new(name, health.clone());
        let mut tasks = JoinSet::new();
        if let Some(addr) = &s.probe_listen {
            let listener = crate::probe::bind(addr).await?;
            tasks.spawn(crate::probe::serve(listener, probe.clone(), rx.clone()));
        }
        let Some(svc) = runtime::connect_waiting(s, &probe, needs_nats, rx.clone()).await? else {
            return Ok(None);
        };
        Ok(Some(Process {
            svc,
            stop,
            rx,
            health,
            tasks,
        }))
    }

    /// Run until shutdown (or a component's failure), then close the pool.
    async fn run(self, http: Option<AppState>) -> anyhow::Result<()> {
        let r = supervise(self.tasks, self.stop, http).await;
        self.svc.db.close().await;
        r
    }
}

async fn admin(s: Settings, command: AdminCommand) -> anyhow::Result<()> {
    let svc = connect(&s).await?;
    let bus = igny8_commands::CommandBus::new(svc.db.clone());
    let ctx = igny8_commands::CommandContext {
        actor: "operator-cli".into(),
        request_id: uuid::Uuid::new_v4().to_string(),
        ..Default::default()
    };
    let r = match command {
        AdminCommand::CreateOperator { email, password } => {
            let keys = crate::auth::Keys::load(&s)?;
            let id =
                igny8_commands::tenancy::create_operator(&bus, &keys.secrets, &email, &password)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("operator {email} created (user id {id}); log in at /api/v1/auth/login/");
            Ok(())
        }
        AdminCommand::GrantCredits {
            account,
            amount,
            reason,
        } => {
            let ctx = igny8_commands::CommandContext {
                account_id: Some(account.to_string()),
                ..ctx
            };
            let milli: crate::http::CreditAmount = serde_json::from_str(amount.trim())
                .map_err(|e| anyhow::anyhow!("--amount {amount:?}: {e}"))?;
            let out =
                igny8_commands::billing::grant_credits(&bus, account, milli.milli(), reason, &ctx)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "granted {amount} credits to {account}; account version {}, position {}",
                out.version,
                out.position.unwrap_or_default()
            );
            Ok(())
        }
    };
    svc.db.close().await;
    r
}

async fn projections(s: Settings, command: ProjectionsCommand) -> anyhow::Result<()> {
    if let ProjectionsCommand::Run = command {
        let needs_nats = s.nats_url.is_some();
        let Some(mut p) = Process::start(&s, "projections", needs_nats).await? else {
            return Ok(());
        };
        let feed = igny8_commands::CommandBus::new(p.svc.db.clone()).feed();
        runtime::spawn_projections(
            &mut p.tasks,
            &p.svc.db,
            &feed,
            &p.svc.nats,
            &s,
            &p.health,
            &p.rx,
        );
        return p.run(None).await;
    }
    let svc = connect(&s).await?;
    let feed = igny8_commands::CommandBus::new(svc.db.clone()).feed();
    match command {
        ProjectionsCommand::Run => unreachable!("handled above"),
        ProjectionsCommand::Status => {
            let rows = igny8_projections::status(&svc.db, &feed, &igny8_projections::all()).await?;
            println!(
                "{:<20} {:>14} {:>12} {:>14} {:>10} {:>12}  updated_at",
                "projection", "position", "stream_seq", "applied", "lag", "head"
            );
            for r in rows {
                println!(
                    "{:<20} {:>14} {:>12} {:>14} {:>10} {:>12}  {}",
                    r.name,
                    r.global_position,
                    r.stream_seq,
                    r.events_applied,
                    r.lag,
                    r.head,
                    r.updated_at
                        .map(|t| t.to_rfc3339())
                        .unwrap_or_else(|| "never".into())
                );
                if let Some(e) = &r.error {
                    println!(
                        "  STUCK at event {} since {}: {e}",
                        r.error_event_id.as_deref().unwrap_or("?"),
                        r.error_at.map(|t| t.to_rfc3339()).unwrap_or_default()
                    );
                }
                if r.stored_version.is_some_and(|v| v != i64::from(r.version)) {
                    println!(
                        "  layout version {} stored, {} in this build: rebuilt on the next start",
                        r.stored_version.unwrap_or_default(),
                        r.version
                    );
                }
            }
            if let Some(_client) = &svc.nats {
                let relay = igny8_workers::relay::status(&svc.db, &s.stream_names()).await?;
                println!("relay checkpoint: {}", relay.checkpoint);
            }
            Ok(())
        }
        ProjectionsCommand::Rebuild { name } => {
            let Some(p) = igny8_projections::by_name(&name) else {
                let known: Vec<_> = igny8_projections::all().iter().map(|p| p.name()).collect();
                bail!("unknown projection {name:?}; known: {}", known.join(", "));
            };
            let report = igny8_projections::rebuild(&svc.db, &feed, p.as_ref()).await?;
            println!(
                "rebuilt {}: {} events in {} ms ({:.0} events/s); live tables swapped",
                report.projection, report.events, report.elapsed_ms, report.events_per_sec
            );
            Ok(())
        }
    }
}
