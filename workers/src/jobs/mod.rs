//! Job workers. A job is taken by one worker at a time: in scale-out mode
//! through a durable JetStream consumer shared by every `igny8 workers`
//! process (a work queue: each `JobCreated` goes to one of them; a worker
//! that dies stops acknowledging and the job is redelivered to another
//! after the ack wait); in the embedded mode by a loop over the jobs the
//! store says are unfinished. Either way a job that is already finished is
//! skipped, a new attempt starts the work over, and the job's last event
//! settles its credits in the same commit (`igny8_commands::jobs`), so a
//! retry never charges twice; a clustering run is saved once per job.

pub mod cluster;
pub mod content;
pub mod ideas;
pub mod images;
pub mod prompts;

use crate::ai::{self, AiOptions};
use igny8_commands::jobs::{self as jobcmd, Ending};
use igny8_commands::secrets::Keyring;
use igny8_commands::writer::WriterLookup;
use igny8_commands::{
    Backoff, CommandBus, CommandContext, CommandError, Health, Position, StreamNames,
};
use igny8_domain::jobs::{Job, Phase};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use uuid::Uuid;

/// What job workers need: the store, the key that opens sealed provider
/// keys, an HTTP client and how provider calls behave.
#[derive(Clone)]
pub struct JobEnv {
    pub bus: CommandBus,
    pub secrets: Keyring,
    pub http: reqwest::Client,
    pub ai: AiOptions,
    /// The writer's read model (internal links); `None`: no links.
    pub writer: Option<Arc<dyn WriterLookup>>,
    /// Provider calls in flight, in total and per account.
    pub limits: Arc<Limits>,
    /// Where images are stored (`None`: image jobs fail their items).
    pub media: Option<crate::images::MediaStore>,
    /// Fetches URLs providers hand back (internal addresses refused).
    pub fetch: crate::images::Fetcher,
    /// Talks to WordPress sites (internal addresses refused).
    pub wp: crate::publishing::WpClient,
    /// Jobs a scale-out process runs at once.
    pub jobs_per_process: usize,
}

impl JobEnv {
    pub fn new(bus: CommandBus, secrets: Keyring, ai: AiOptions) -> Self {
        Self {
            bus,
            secrets,
            http: ai::http_client(),
            limits: Arc::new(Limits::new(
                ai.max_concurrent,
                ai.max_concurrent_per_account,
            )),
            fetch: crate::images::Fetcher::new(false, ai.timeout),
            wp: crate::publishing::WpClient::new(crate::publishing::WpOptions::default()),
            ai,
            writer: None,
            media: None,
            jobs_per_process: JOBS_PER_PROCESS,
        }
    }

    /// Run this many jobs at once in a scale-out process.
    pub fn with_jobs_per_process(mut self, n: usize) -> Self {
        self.jobs_per_process = n.max(1);
        self
    }

    /// With media storage for images.
    pub fn with_media(mut self, media: crate::images::MediaStore) -> Self {
        self.media = Some(media);
        self
    }

    /// Let provider URLs point at internal addresses (tests; an operator's
    /// choice, never an account's).
    pub fn allow_private_fetch(mut self, allow: bool) -> Self {
        self.fetch = crate::images::Fetcher::new(allow, self.ai.timeout);
        let opts = crate::publishing::WpOptions {
            allow_private: allow,
            ..self.wp.opts.clone()
        };
        self.wp = crate::publishing::WpClient::new(opts);
        self
    }

    /// With these WordPress request settings.
    pub fn with_wordpress(mut self, opts: crate::publishing::WpOptions) -> Self {
        self.wp = crate::publishing::WpClient::new(opts);
        self
    }

    /// With the writer's read model (for internal links).
    pub fn with_writer(mut self, lookup: Arc<dyn WriterLookup>) -> Self {
        self.writer = Some(lookup);
        self
    }
}

/// Bounded concurrency of provider calls: a permit of the account's
/// semaphore, then one of the process-wide one.
pub struct Limits {
    total: Arc<tokio::sync::Semaphore>,
    per_account: usize,
    accounts: Mutex<std::collections::HashMap<Uuid, Arc<tokio::sync::Semaphore>>>,
}

impl Limits {
    pub fn new(total: usize, per_account: usize) -> Self {
        Self {
            total: Arc::new(tokio::sync::Semaphore::new(total.max(1))),
            per_account: per_account.max(1),
            accounts: Mutex::default(),
        }
    }

    /// Wait for a slot of `account` and of the process; hold both while calling.
    pub async fn acquire(
        &self,
        account: Uuid,
    ) -> (
        tokio::sync::OwnedSemaphorePermit,
        tokio::sync::OwnedSemaphorePermit,
    ) {
        let mine = {
            let mut a = self.accounts.lock().unwrap_or_else(|e| e.into_inner());
            a.entry(account)
                .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(self.per_account)))
                .clone()
        };
        // Semaphores are never closed, so acquiring cannot fail.
        let mine = mine.acquire_owned().await.expect("semaphore open");
        let total = self
            .total
            .clone()
            .acquire_owned()
            .await
            .expect("semaphore open");
        (mine, total)
    }
}

/// What a job's work produced: its result, what to save with its success,
/// and what to charge (`None`: the whole reservation).
pub struct JobOutput {
    pub result: serde_json::Value,
    pub save: Option<jobcmd::Save>,
    pub charged: Option<i64>,
}

impl JobOutput {
    pub fn saving(result: serde_json::Value, save: jobcmd::Save) -> Self {
        Self {
            result,
            save: Some(save),
            charged: None,
        }
    }
}

/// Why the work stopped: it failed (the job ends as failed, its credits
/// released), or a newer attempt took the job over (this worker just stops).
#[derive(Debug)]
pub enum JobFailure {
    Failed(String),
    Superseded,
    /// The database (or another part of the infrastructure) failed: the
    /// job stays unfinished and is tried again later, nothing is settled.
    Retry(String),
    /// The work cannot go on yet (e.g. WordPress did not answer and must be
    /// asked again before anything is sent twice): the job stays
    /// unfinished, its progress says why, and it runs again after the delay.
    Later(String, Duration),
}

/// How an attempt at a job ended, when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ran {
    /// Finished (or not ours to run: finished, cancelled, superseded).
    Done,
    /// Unfinished on purpose: run it again after this long.
    Later(Duration),
}

impl From<CommandError> for JobFailure {
    fn from(e: CommandError) -> Self {
        match e {
            CommandError::Domain {
                code: "JOB_SUPERSEDED",
                ..
            } => JobFailure::Superseded,
            CommandError::Unavailable(e) => JobFailure::Retry(e),
            other => JobFailure::Failed(other.to_string()),
        }
    }
}

impl From<sqlx::Error> for JobFailure {
    fn from(e: sqlx::Error) -> Self {
        JobFailure::Failed(e.to_string())
    }
}

impl From<tokio::task::JoinError> for JobFailure {
    fn from(e: tokio::task::JoinError) -> Self {
        JobFailure::Failed(e.to_string())
    }
}

/// One attempt at a job: its progress is written under its number, so a
/// superseded attempt learns it at its next report and stops.
pub struct Attempt<'a> {
    pub bus: &'a CommandBus,
    pub job_id: Uuid,
    pub attempt: u32,
    pub ctx: &'a CommandContext,
}

impl Attempt<'_> {
    /// Report progress (tokens and cost so far, cumulative).
    pub async fn progress(
        &self,
        phase: Phase,
        percentage: u8,
        message: &str,
        tokens: u64,
        cost_usd_micros: i64,
    ) -> Result<(), JobFailure> {
        jobcmd::progress(
            self.bus,
            self.job_id,
            self.attempt,
            phase,
            percentage,
            message,
            tokens,
            cost_usd_micros,
            self.ctx,
        )
        .await?;
        Ok(())
    }
}

/// The context of a worker's commands (caused by the job).
pub fn context(job: &Job, job_id: Uuid, worker: &str) -> CommandContext {
    CommandContext {
        account_id: job.account_id.map(|a| a.to_string()),
        actor: format!("worker:{worker}"),
        request_id: Uuid::new_v4().to_string(),
        correlation_id: job_id.to_string(),
        causation_id: Some(job_id.to_string()),
        ..CommandContext::default()
    }
}

/// Run one job to its end (or skip it when it has finished). Errors are
/// infrastructure failures (the job stays unfinished and is retried);
/// failures of the work itself end the job as failed, credits released.
pub async fn run_job(env: &JobEnv, job_id: Uuid, worker: &str) -> Result<Ran, CommandError> {
    let bus = &env.bus;
    let (job, _) = bus.load::<Job>(&job_id.to_string()).await?;
    if !job.created || job.state.finished() {
        return Ok(Ran::Done);
    }
    let ctx = context(&job, job_id, worker);
    let attempt = match jobcmd::start(bus, job_id, worker, &ctx).await {
        Ok(a) => a,
        // Finished meanwhile (another worker, or a cancel).
        Err(CommandError::Domain {
            code: "JOB_FINISHED",
            ..
        }) => return Ok(Ran::Done),
        Err(e) => return Err(e),
    };
    let input = first_input(bus, job_id).await?;
    let run = Attempt {
        bus,
        job_id,
        attempt,
        ctx: &ctx,
    };
    let outcome = match job.kind.as_str() {
        "auto_cluster" => cluster::run(env, &run, job.account_id, &input).await,
        "auto_generate_ideas" => ideas::run(env, &run, &job, &input).await,
        "auto_generate_content" => content::run(env, &run, &job, &input).await,
        "extract_image_prompts" => prompts::run(env, &run, &job, &input).await,
        "generate_images" => images::run(env, &run, &job, &input).await,
        "publish_wordpress" => crate::publishing::publish::run(env, &run, &job, &input).await,
        "unpublish_wordpress" => crate::publishing::sync::run_unpublish(env, &run, &input).await,
        "sync_wordpress" => crate::publishing::sync::run_sync(env, &run, &input).await,
        other => Err(JobFailure::Failed(format!("unknown job kind {other:?}"))),
    };
    let ending = match outcome {
        Ok(out) => Ending::Succeeded {
            save: out.save,
            attempt,
            result: out.result,
            charged: out.charged.unwrap_or(job.reserved).clamp(0, job.reserved),
        },
        Err(JobFailure::Failed(error)) => Ending::Failed {
            attempt: Some(attempt),
            error,
        },
        // A newer attempt owns the job now.
        Err(JobFailure::Superseded) => return Ok(Ran::Done),
        // Tried again later (the embedded scan, or JetStream's redelivery).
        Err(JobFailure::Retry(e)) => return Err(CommandError::Unavailable(e)),
        Err(JobFailure::Later(why, after)) => {
            tracing::info!(job = %job_id, ?after, why, "job runs again later");
            return Ok(Ran::Later(after));
        }
    };
    match jobcmd::finish(bus, job_id, ending, &ctx).await {
        // Cancelled, finished or taken over meanwhile: nothing to settle here.
        Err(CommandError::Domain {
            code: "JOB_FINISHED" | "JOB_SUPERSEDED",
            ..
        }) => Ok(Ran::Done),
        other => other.map(|_| Ran::Done),
    }
}

/// The ids listed under `key` in a job's input (the items it works on).
pub(crate) fn input_ids(input: &serde_json::Value, key: &str) -> Vec<Uuid> {
    input[key]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|t| t.as_str().and_then(|s| Uuid::parse_str(s).ok()))
        .collect()
}

/// The job's input, from its first event.
async fn first_input(bus: &CommandBus, job_id: Uuid) -> Result<serde_json::Value, CommandError> {
    let events = bus
        .feed()
        .aggregate_events("job", &job_id.to_string(), 1, 1)
        .await
        .map_err(|e| CommandError::Internal(e.to_string()))?;
    Ok(events
        .first()
        .map(|e| e.body()["input"].clone())
        .unwrap_or_default())
}

/// Jobs the store says are unfinished (created, not succeeded, failed or cancelled).
async fn unfinished(bus: &CommandBus) -> Result<Vec<Uuid>, sqlx::Error> {
    let sql = "SELECT aggregate_id FROM events WHERE aggregate_type = 'job' GROUP BY aggregate_id \
               HAVING SUM(CASE WHEN event_type IN ('JobSucceeded', 'JobFailed', 'JobCancelled') THEN 1 ELSE 0 END) = 0";
    let ids: Vec<String> =
        igny8_commands::on_db!(bus.db(), p => sqlx::query_scalar(sql).fetch_all(p).await?);
    Ok(ids.iter().filter_map(|i| Uuid::parse_str(i).ok()).collect())
}

/// How often the embedded workers look for every unfinished job (jobs a
/// crash interrupted, attempts that hit an infrastructure error); new jobs
/// are picked up at once from the feed.
const RESCAN: Duration = Duration::from_secs(30);

/// Run `id` unless this process runs it already.
fn spawn_job(env: &JobEnv, worker: &str, running: &Arc<Mutex<HashSet<Uuid>>>, id: Uuid) {
    let fresh = running.lock().map(|mut r| r.insert(id)).unwrap_or(false);
    if !fresh {
        return;
    }
    let (env, worker, running) = (env.clone(), worker.to_string(), running.clone());
    tokio::spawn(async move {
        loop {
            match run_job(&env, id, &worker).await {
                Ok(Ran::Later(after)) => tokio::time::sleep(after).await,
                Ok(Ran::Done) => break,
                Err(e) => {
                    tracing::warn!(job = %id, error = %e, "job attempt failed; retried at the next scan");
                    break;
                }
            }
        }
        if let Ok(mut r) = running.lock() {
            r.remove(&id);
        }
    });
}

/// Embedded mode: new jobs come from the feed as they are committed (woken
/// by local commits); a scan of the unfinished ones at start and every
/// [`RESCAN`] picks up the rest.
pub async fn run_embedded(
    env: JobEnv,
    worker: String,
    health: Health,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    health.register(COMPONENT);
    let running: Arc<Mutex<HashSet<Uuid>>> = Arc::default();
    let bus = env.bus.clone();
    let feed = bus.feed();
    let notify = feed.notify.clone();
    let mut backoff = Backoff::new();
    // From the head: what came before is found by the first scan.
    let mut pos = loop {
        if *stop.borrow() {
            return Ok(());
        }
        let head = match feed.head().await {
            Ok(h) => feed.position_of(h).await,
            Err(e) => Err(e),
        };
        match head {
            Ok(p) => break p.unwrap_or(Position::START),
            Err(e) => {
                health.not_ready(COMPONENT, format!("database unavailable: {e}"));
                backoff.wait(&mut stop).await;
            }
        }
    };
    let mut next_scan = tokio::time::Instant::now();
    loop {
        if *stop.borrow() {
            return Ok(());
        }
        if tokio::time::Instant::now() >= next_scan {
            match unfinished(&bus).await {
                Ok(ids) => {
                    ids.into_iter()
                        .for_each(|id| spawn_job(&env, &worker, &running, id));
                    next_scan = tokio::time::Instant::now() + RESCAN;
                }
                // Scanned again as soon as the database answers.
                Err(e) => tracing::warn!(error = %e, "cannot list unfinished jobs"),
            }
        }
        loop {
            let events = match feed.type_after("job", pos, 1000).await {
                Ok(e) => {
                    health.ready(COMPONENT, "active");
                    e
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the feed");
                    health.not_ready(COMPONENT, format!("database unavailable: {e}"));
                    break;
                }
            };
            let Some(last) = events.last() else { break };
            pos = last.position();
            for e in events
                .iter()
                .filter(|e| e.aggregate_type == "job" && e.event_type == "JobCreated")
            {
                if let Ok(id) = Uuid::parse_str(&e.aggregate_id) {
                    spawn_job(&env, &worker, &running, id);
                }
            }
        }
        tokio::select! {
            _ = notify.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.changed() => {}
        }
    }
}

/// The durable consumer every worker process shares.
pub const CONSUMER: &str = "igny8_jobs";

/// Jobs one `igny8 workers` process runs at once unless configured
/// (`IGNY8_JOBS_PER_PROCESS`): jobs mostly wait on providers and WordPress.
pub const JOBS_PER_PROCESS: usize = 8;

/// The component name job workers report under in [`Health`].
pub const COMPONENT: &str = "workers";

/// Scale-out mode: take `JobCreated` events from the stream's work queue.
/// While a job runs the message is kept alive with progress acks; a worker
/// that dies stops them and JetStream hands the job to another worker.
pub async fn run_nats(
    env: JobEnv,
    js: async_nats::jetstream::Context,
    names: StreamNames,
    worker: String,
    ack_wait: Duration,
    health: Health,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    health.register(COMPONENT);
    let mut backoff = Backoff::new();
    loop {
        match take_jobs(&env, &js, &names, &worker, ack_wait, &health, &mut stop).await {
            Ok(()) => return Ok(()),
            Err(e) => {
                tracing::warn!(error = %e, "job queue unavailable; retrying");
                health.not_ready(COMPONENT, format!("NATS unavailable: {e}"));
                backoff.wait(&mut stop).await;
                if *stop.borrow() {
                    return Ok(());
                }
            }
        }
    }
}

/// Take jobs from the work queue until shutdown (`Ok`) or until NATS fails.
async fn take_jobs(
    env: &JobEnv,
    js: &async_nats::jetstream::Context,
    names: &StreamNames,
    worker: &str,
    ack_wait: Duration,
    health: &Health,
    stop: &mut watch::Receiver<bool>,
) -> anyhow::Result<()> {
    use async_nats::jetstream::{AckKind, consumer};
    use futures::StreamExt;
    let stream = names
        .ensure_stream(js)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let consumer: consumer::PullConsumer = stream
        .get_or_create_consumer(
            CONSUMER,
            consumer::pull::Config {
                durable_name: Some(CONSUMER.into()),
                filter_subject: format!("{}.events.*.job.JobCreated", names.prefix),
                ack_policy: consumer::AckPolicy::Explicit,
                ack_wait,
                max_deliver: -1,
                ..Default::default()
            },
        )
        .await?;
    // Several jobs at once per process (a job waits on its provider most
    // of the time): a slot is taken before a message is fetched, so a
    // process never holds more messages than it runs.
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(env.jobs_per_process.max(1)));
    let mut running = tokio::task::JoinSet::new();
    loop {
        while running.try_join_next().is_some() {}
        if *stop.borrow() {
            // Shutting down: unfinished jobs are left to another worker
            // (their messages are redelivered after the ack wait).
            running.abort_all();
            return Ok(());
        }
        let slot = tokio::select! {
            s = slots.clone().acquire_owned() => s?,
            _ = stop.changed() => continue,
        };
        let mut batch = consumer
            .fetch()
            .max_messages(1)
            .expires(Duration::from_secs(1))
            .messages()
            .await?;
        health.ready(COMPONENT, "active");
        while let Some(msg) = batch.next().await {
            let msg = msg.map_err(|e| anyhow::anyhow!("{e}"))?;
            let event: igny8_commands::StoredEvent = match serde_json::from_slice(&msg.payload) {
                Ok(e) => e,
                Err(e) => {
                    tracing::error!(error = %e, "unreadable JobCreated message; dropped");
                    let _ = msg.ack_with(AckKind::Term).await;
                    continue;
                }
            };
            let Ok(job_id) = Uuid::parse_str(&event.aggregate_id) else {
                let _ = msg.ack_with(AckKind::Term).await;
                continue;
            };
            let (env, worker, health, mut stop) = (
                env.clone(),
                worker.to_string(),
                health.clone(),
                stop.clone(),
            );
            let slot = slot;
            running.spawn(async move {
                let _slot = slot;
                // Keep the message ours while the job runs.
                let keepalive = {
                    let msg = msg.clone();
                    let every = ack_wait / 3;
                    tokio::spawn(async move {
                        loop {
                            tokio::time::sleep(every).await;
                            if msg.ack_with(AckKind::Progress).await.is_err() {
                                return;
                            }
                        }
                    })
                };
                let result = tokio::select! {
                    r = run_job(&env, job_id, &worker) => Some(r),
                    _ = stop.changed() => None,
                };
                keepalive.abort();
                match result {
                    Some(Ok(Ran::Done)) => {
                        let _ = msg.double_ack().await;
                    }
                    Some(Ok(Ran::Later(after))) => {
                        let _ = msg.ack_with(AckKind::Nak(Some(after))).await;
                    }
                    Some(Err(e)) => {
                        tracing::warn!(job = %job_id, error = %e, "job attempt failed; redelivered later");
                        if matches!(e, CommandError::Unavailable(_)) {
                            health.not_ready(COMPONENT, format!("database unavailable: {e}"));
                        }
                        let _ = msg
                            .ack_with(AckKind::Nak(Some(Duration::from_secs(2))))
                            .await;
                    }
                    // Shutting down mid-job: leave it to another worker.
                    None => {}
                }
            });
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Limits;
    use std::time::Duration;
    use uuid::Uuid;

    /// One account's batch holds at most its share of the provider slots:
    /// another account still gets a slot at once, and the batch's next
    /// call waits until one of its own ends.
    #[tokio::test]
    async fn one_accounts_batch_does_not_starve_another() {
        let limits = Limits::new(4, 2);
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let held = vec![limits.acquire(a).await, limits.acquire(a).await];
        let third = tokio::time::timeout(Duration::from_millis(100), limits.acquire(a)).await;
        assert!(third.is_err(), "a third call of the same account waits");
        let other = tokio::time::timeout(Duration::from_millis(100), limits.acquire(b)).await;
        assert!(other.is_ok(), "another account is served at once");
        drop(held);
        let again = tokio::time::timeout(Duration::from_millis(100), limits.acquire(a)).await;
        assert!(again.is_ok(), "a slot of its own came free");
    }
}
