//! Settings: flags, or the environment variables named beside each one.

use clap::Args;
use std::path::PathBuf;

#[derive(Args, Clone, Debug)]
pub struct Settings {
    /// PostgreSQL URL. Unset: embedded SQLite under --data-dir.
    #[arg(long, env = "DATABASE_URL", global = true)]
    pub database_url: Option<String>,
    /// NATS URL (JetStream). Unset: in-process feed.
    #[arg(long, env = "NATS_URL", global = true)]
    pub nats_url: Option<String>,
    /// Folder of the embedded database (and later local files).
    #[arg(
        long,
        env = "IGNY8_DATA_DIR",
        default_value = "./igny8-data",
        global = true
    )]
    pub data_dir: PathBuf,
    /// Address the HTTP server listens on.
    #[arg(
        long,
        env = "IGNY8_LISTEN",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub listen: String,
    /// Address of this process's probe server (`/health`, `/ready`,
    /// `/metrics`): for the relay, projections and workers, which serve no
    /// API. Unset: no probe server.
    #[arg(long, env = "IGNY8_PROBE_LISTEN", global = true)]
    pub probe_listen: Option<String>,
    /// JetStream stream name.
    #[arg(
        long,
        env = "IGNY8_NATS_STREAM",
        default_value = "IGNY8_EVENTS",
        global = true
    )]
    pub nats_stream: String,
    /// First token of every event subject.
    #[arg(
        long,
        env = "IGNY8_NATS_PREFIX",
        default_value = "igny8",
        global = true
    )]
    pub nats_prefix: String,
    /// Largest accepted request body.
    #[arg(long, env = "IGNY8_MAX_BODY_BYTES", default_value_t = 1024 * 1024, global = true)]
    pub max_body_bytes: usize,
    /// Longest a query waits for its `min_position` (milliseconds).
    #[arg(
        long,
        env = "IGNY8_READ_WAIT_MS",
        default_value_t = 5000,
        global = true
    )]
    pub read_wait_ms: u64,
    /// Database connection pool size.
    #[arg(
        long,
        env = "IGNY8_DB_MAX_CONNECTIONS",
        default_value_t = 20,
        global = true
    )]
    pub db_max_connections: u32,
    /// PostgreSQL schema to use (default: the connection's search_path).
    #[arg(long, env = "IGNY8_DB_SCHEMA", global = true)]
    pub db_schema: Option<String>,
    /// Origins allowed by CORS, comma-separated; `*` allows any origin.
    #[arg(
        long,
        env = "IGNY8_CORS_ORIGINS",
        default_value = "*",
        value_delimiter = ',',
        global = true
    )]
    pub cors_origins: Vec<String>,
    /// JWT signing keys, `kid:64-hex[,kid:64-hex…]` (HS256). The first signs
    /// (or the one named by IGNY8_JWT_CURRENT_KID); all verify, so a key can
    /// be rotated without logging everyone out. Unset: generated once and kept
    /// in `<data-dir>/keys.json` (set it when several gateways run).
    #[arg(long, env = "IGNY8_JWT_KEYS", global = true, hide_env_values = true)]
    pub jwt_keys: Option<String>,
    #[arg(long, env = "IGNY8_JWT_CURRENT_KID", global = true)]
    pub jwt_current_kid: Option<String>,
    /// Keys that seal secrets at rest (AES-256-GCM), same format and rules as IGNY8_JWT_KEYS.
    #[arg(long, env = "IGNY8_SECRET_KEYS", global = true, hide_env_values = true)]
    pub secret_keys: Option<String>,
    #[arg(long, env = "IGNY8_SECRET_CURRENT_KID", global = true)]
    pub secret_current_kid: Option<String>,
    /// Requests per minute per user, per API key and per client address.
    #[arg(
        long,
        env = "IGNY8_RATE_PER_MINUTE",
        default_value_t = 600,
        global = true
    )]
    pub rate_per_minute: u32,
    /// Take the client address from the first `X-Forwarded-For` entry (only
    /// behind a proxy that sets it; otherwise clients could pick their address).
    #[arg(
        long,
        env = "IGNY8_TRUST_FORWARDED_FOR",
        default_value_t = false,
        global = true
    )]
    pub trust_forwarded_for: bool,
    /// Login attempts per minute per email and per client address.
    #[arg(
        long,
        env = "IGNY8_LOGIN_PER_MINUTE",
        default_value_t = 10,
        global = true
    )]
    pub login_per_minute: u32,
    /// Longest one AI provider request may take (milliseconds).
    #[arg(
        long,
        env = "IGNY8_AI_TIMEOUT_MS",
        default_value_t = 60_000,
        global = true
    )]
    pub ai_timeout_ms: u64,
    /// Tries per AI provider request (429, 5xx and timeouts are retried).
    #[arg(
        long,
        env = "IGNY8_AI_MAX_ATTEMPTS",
        default_value_t = 4,
        global = true
    )]
    pub ai_max_attempts: u32,
    /// Longest wait between tries, `Retry-After` included (milliseconds).
    #[arg(
        long,
        env = "IGNY8_AI_MAX_RETRY_WAIT_MS",
        default_value_t = 30_000,
        global = true
    )]
    pub ai_max_retry_wait_ms: u64,
    /// Keywords per `/embeddings` request.
    #[arg(
        long,
        env = "IGNY8_AI_EMBED_BATCH",
        default_value_t = 512,
        global = true
    )]
    pub ai_embed_batch: usize,
    /// Text-generation calls in flight at once, in total.
    #[arg(
        long,
        env = "IGNY8_AI_MAX_CONCURRENT",
        default_value_t = 32,
        global = true
    )]
    pub ai_max_concurrent: usize,
    /// Text-generation calls in flight at once per account (one account's
    /// batch cannot starve the others).
    #[arg(
        long,
        env = "IGNY8_AI_MAX_CONCURRENT_PER_ACCOUNT",
        default_value_t = 16,
        global = true
    )]
    pub ai_max_concurrent_per_account: usize,
    /// How long a job message stays with a silent worker before JetStream
    /// gives it to another (seconds; running workers renew it).
    #[arg(
        long,
        env = "IGNY8_JOB_ACK_WAIT_SECS",
        default_value_t = 30,
        global = true
    )]
    pub job_ack_wait_secs: u64,
    /// Log format: text or json.
    /// Media storage of images: `s3://bucket?endpoint=…&region=…` (credentials
    /// from `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`), `file:///dir`, or
    /// unset for `<data dir>/media`. Every gateway and worker of one
    /// deployment must use the same.
    #[arg(long, env = "IGNY8_MEDIA_URL", global = true)]
    pub media_url: Option<String>,
    /// Let workers fetch provider URLs on loopback, private and link-local
    /// addresses (tests and closed networks; never needed for OpenAI or Runware).
    #[arg(
        long,
        env = "IGNY8_ALLOW_PRIVATE_FETCH",
        default_value_t = false,
        global = true
    )]
    pub allow_private_fetch: bool,
    /// The address WordPress reaches this API at (e.g.
    /// `https://api.example.com`): the companion plugin's webhooks go to
    /// `<public url>/api/v1/integration/webhooks/wordpress/{id}/`. Unset:
    /// connection tests do not set the plugin's webhooks up.
    #[arg(long, env = "IGNY8_PUBLIC_URL", global = true)]
    pub public_url: Option<String>,
    /// Longest one request to a WordPress site may take (milliseconds).
    #[arg(
        long,
        env = "IGNY8_WP_TIMEOUT_MS",
        default_value_t = 30_000,
        global = true
    )]
    pub wp_timeout_ms: u64,
    /// After a create or upload WordPress did not answer (a timeout, a cut
    /// connection, a 5xx), the publisher waits this long before each of
    /// its two looks for what it may have made, and only then sends the
    /// request again (milliseconds; 0: the request timeout).
    #[arg(long, env = "IGNY8_WP_SETTLE_MS", default_value_t = 0, global = true)]
    pub wp_settle_ms: u64,
    /// Jobs one `igny8 workers` process runs at once (they mostly wait on
    /// providers and WordPress; provider calls have their own limits).
    #[arg(
        long,
        env = "IGNY8_JOBS_PER_PROCESS",
        default_value_t = 8,
        global = true
    )]
    pub jobs_per_process: usize,
    /// How often the automation scheduler looks for due slots, settled
    /// event bursts and runs to drive (milliseconds).
    #[arg(
        long,
        env = "IGNY8_SCHEDULER_TICK_MS",
        default_value_t = 1000,
        global = true
    )]
    pub scheduler_tick_ms: u64,
    /// Firings and run steps the scheduler has in flight at once.
    #[arg(
        long,
        env = "IGNY8_SCHEDULER_CONCURRENCY",
        default_value_t = 16,
        global = true
    )]
    pub scheduler_concurrency: usize,
    /// Tests only: the clock reads this instant (RFC 3339) when the process
    /// starts …
    #[arg(long, env = "IGNY8_CLOCK_START", global = true)]
    pub clock_start: Option<String>,
    /// … and runs this many times as fast as the machine's.
    #[arg(long, env = "IGNY8_CLOCK_RATE", default_value_t = 1.0, global = true)]
    pub clock_rate: f64,
    #[arg(long, env = "IGNY8_LOG_FORMAT", default_value = "text", global = true)]
    pub log_format: String,
}

impl Settings {
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(u) => u.clone(),
            None => format!("sqlite://{}", self.data_dir.join("igny8.db").display()),
        }
    }

    pub fn stream_names(&self) -> igny8_commands::StreamNames {
        igny8_commands::StreamNames {
            stream: self.nats_stream.clone(),
            prefix: self.nats_prefix.clone(),
        }
    }

    pub fn ai_options(&self) -> igny8_workers::ai::AiOptions {
        use std::time::Duration;
        igny8_workers::ai::AiOptions {
            timeout: Duration::from_millis(self.ai_timeout_ms.max(1)),
            max_attempts: self.ai_max_attempts.max(1),
            max_retry_wait: Duration::from_millis(self.ai_max_retry_wait_ms),
            embed_batch: self.ai_embed_batch.clamp(1, 2048),
            max_concurrent: self.ai_max_concurrent.clamp(1, 1024),
            max_concurrent_per_account: self.ai_max_concurrent_per_account.clamp(1, 1024),
        }
    }

    /// How requests to WordPress sites behave (private addresses as for
    /// provider URLs: an operator's choice).
    pub fn wp_options(&self) -> igny8_workers::publishing::WpOptions {
        igny8_workers::publishing::WpOptions {
            timeout: std::time::Duration::from_millis(self.wp_timeout_ms.max(1)),
            allow_private: self.allow_private_fetch,
            settle: std::time::Duration::from_millis(if self.wp_settle_ms == 0 {
                self.wp_timeout_ms.max(1)
            } else {
                self.wp_settle_ms
            }),
            ..Default::default()
        }
    }

    /// The clock of the scheduler and of automation's use cases: the
    /// machine's, unless a test process set `IGNY8_CLOCK_START`.
    pub fn clock(&self) -> std::sync::Arc<dyn igny8_commands::automation::Clock> {
        use igny8_commands::automation::{ScaledClock, SystemClock};
        match self
            .clock_start
            .as_deref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        {
            Some(start) => std::sync::Arc::new(ScaledClock {
                start: start.with_timezone(&chrono::Utc),
                rate: if self.clock_rate.is_finite() && self.clock_rate > 0.0 {
                    self.clock_rate
                } else {
                    1.0
                },
                since: std::time::Instant::now(),
            }),
            None => std::sync::Arc::new(SystemClock),
        }
    }

    pub fn is_embedded(&self) -> bool {
        self.database_url.is_none()
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            database_url: None,
            nats_url: None,
            data_dir: "./igny8-data".into(),
            listen: "127.0.0.1:8080".into(),
            probe_listen: None,
            nats_stream: "IGNY8_EVENTS".into(),
            nats_prefix: "igny8".into(),
            max_body_bytes: 1024 * 1024,
            read_wait_ms: 5000,
            db_max_connections: 20,
            db_schema: None,
            cors_origins: vec!["*".into()],
            log_format: "text".into(),
            jwt_keys: None,
            jwt_current_kid: None,
            secret_keys: None,
            secret_current_kid: None,
            rate_per_minute: 600,
            login_per_minute: 10,
            trust_forwarded_for: false,
            ai_timeout_ms: 60_000,
            ai_max_attempts: 4,
            ai_max_retry_wait_ms: 30_000,
            ai_embed_batch: 512,
            ai_max_concurrent: 32,
            ai_max_concurrent_per_account: 16,
            job_ack_wait_secs: 30,
            media_url: None,
            allow_private_fetch: false,
            public_url: None,
            wp_timeout_ms: 30_000,
            wp_settle_ms: 0,
            jobs_per_process: 8,
            scheduler_tick_ms: 1000,
            scheduler_concurrency: 16,
            clock_start: None,
            clock_rate: 1.0,
        }
    }
}
