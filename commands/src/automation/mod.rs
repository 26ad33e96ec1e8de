//! Automation use cases: rules (CRUD, pause, resume, execute, dry run),
//! firing (the scheduler's, an event burst's, a person's), driving a run
//! stage by stage through the same use cases as the HTTP routes, and plan
//! renewals.
//!
//! - [`rules`]: the rules' use cases.
//! - [`fire`]: a firing — the rule's `Fire`, the run's start (or skip),
//!   the site's lock and the run's budget reservation in one commit.
//! - [`drive`]: one step of a run at a time (choose a stage's items,
//!   launch its jobs, read their ends, finish), each step a command on the
//!   run that an interrupted driver's successor can take over.
//! - [`select`]: which items a stage takes, and what they should cost —
//!   the same code for a run and its dry run.
//! - [`renew`]: plan periods renewed by the scheduler.

pub mod drive;
pub mod fire;
pub mod renew;
pub mod rules;
pub mod select;

use crate::bus::{CommandBus, CommandContext, CommandError};
use crate::caller::Caller;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use igny8_domain::tenancy::Role;
use std::sync::{Arc, Mutex};
use uuid::Uuid;

/// What time it is (injected: tests move it by hand; a process may run
/// on a clock that starts elsewhere and runs faster, for fault tests).
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The machine's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock tests set and move.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<Mutex<DateTime<Utc>>>);

impl ManualClock {
    pub fn new(at: DateTime<Utc>) -> Self {
        Self(Arc::new(Mutex::new(at)))
    }
    pub fn set(&self, at: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = at;
    }
    pub fn advance(&self, by: chrono::Duration) {
        let mut t = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *t += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A clock that reads `start` when the process starts and runs `rate`
/// times as fast as the machine's (`IGNY8_CLOCK_START`, `IGNY8_CLOCK_RATE`:
/// for tests of processes; never in production).
#[derive(Debug, Clone)]
pub struct ScaledClock {
    pub start: DateTime<Utc>,
    pub rate: f64,
    pub since: std::time::Instant,
}

impl Clock for ScaledClock {
    fn now(&self) -> DateTime<Utc> {
        let real = self.since.elapsed().as_secs_f64() * self.rate;
        self.start + chrono::Duration::microseconds((real * 1e6) as i64)
    }
}

/// Counts of a site's read models that conditions read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SiteCounts {
    pub keywords: i64,
    pub unclustered_keywords: i64,
    pub clusters: i64,
    pub new_ideas: i64,
    pub queued_tasks: i64,
    pub draft_content: i64,
    pub review_content: i64,
    pub approved_content: i64,
    pub published_content: i64,
    pub industry: Option<String>,
}

/// A task a stage may write, with its target.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskPick {
    pub task_id: Uuid,
    pub target_word_count: u32,
}

/// A rule whose scheduled slot is due.
#[derive(Debug, Clone, PartialEq)]
pub struct DueRule {
    pub rule_id: Uuid,
    pub slot: DateTime<Utc>,
    /// Its account and site: firings of one account are batched together.
    pub account_id: Uuid,
    pub site_id: Uuid,
}

/// An event rule whose burst of events has settled (`burst`: its number).
#[derive(Debug, Clone, PartialEq)]
pub struct PendingEvent {
    pub rule_id: Uuid,
    pub burst: i64,
    pub event_type: String,
}

/// The read models automation reads (implemented over the `rm_` tables in
/// `igny8-projections`). Always within one account and site.
#[async_trait]
pub trait AutomationLookup: Send + Sync {
    /// Whether the read models the stages' use cases read have applied
    /// everything up to `global_position` (waits a little first).
    async fn caught_up(&self, global_position: i64) -> Result<bool, CommandError>;
    async fn counts(&self, account: Uuid, site: Uuid) -> Result<SiteCounts, CommandError>;
    /// Keywords of the site in no cluster, by sector (at most `limit` per sector).
    async fn unclustered(
        &self,
        account: Uuid,
        site: Uuid,
        limit: usize,
    ) -> Result<Vec<(Uuid, Vec<Uuid>)>, CommandError>;
    /// Clusters of the site no idea was generated for, oldest first.
    async fn clusters_without_ideas(
        &self,
        account: Uuid,
        site: Uuid,
        limit: usize,
    ) -> Result<Vec<Uuid>, CommandError>;
    /// Ideas of the site in state `new`, oldest first.
    async fn new_ideas(
        &self,
        account: Uuid,
        site: Uuid,
        limit: usize,
    ) -> Result<Vec<Uuid>, CommandError>;
    /// Tasks of the site queued with no content, oldest first.
    async fn queued_tasks(
        &self,
        account: Uuid,
        site: Uuid,
        limit: usize,
    ) -> Result<Vec<TaskPick>, CommandError>;
    /// Contents of the site that have no image prompts, oldest first.
    async fn contents_without_prompts(
        &self,
        account: Uuid,
        site: Uuid,
        limit: usize,
    ) -> Result<Vec<Uuid>, CommandError>;
    /// Image prompts of those contents (or of the site) with no image.
    async fn prompts_without_images(
        &self,
        account: Uuid,
        site: Uuid,
        contents: Option<&[Uuid]>,
        limit: usize,
    ) -> Result<Vec<Uuid>, CommandError>;
    /// Approved contents of the site not published on its WordPress.
    async fn publishable(
        &self,
        account: Uuid,
        site: Uuid,
        limit: usize,
    ) -> Result<Vec<Uuid>, CommandError>;
    /// The site's WordPress connection.
    async fn site_integration(
        &self,
        account: Uuid,
        site: Uuid,
    ) -> Result<Option<Uuid>, CommandError>;
    /// Future posts already planned on the site's WordPress (publish slots taken).
    async fn planned_posts(
        &self,
        account: Uuid,
        site: Uuid,
        after: DateTime<Utc>,
    ) -> Result<Vec<DateTime<Utc>>, CommandError>;
    /// Active schedule rules whose next slot is at or before `now`, in
    /// (slot, rule) order, after `after` (the last of the previous page).
    async fn due_rules(
        &self,
        now: DateTime<Utc>,
        after: Option<&DueRule>,
        limit: usize,
    ) -> Result<Vec<DueRule>, CommandError>;
    /// Event rules whose last matching event is `debounce` old.
    async fn settled_events(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<PendingEvent>, CommandError>;
    /// Runs that have not ended.
    async fn running(&self, limit: usize) -> Result<Vec<Uuid>, CommandError>;
    /// Accounts whose plan period has ended (to renew).
    async fn due_renewals(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<(Uuid, DateTime<Utc>)>, CommandError>;
}

/// What automation's use cases work with.
#[derive(Clone, Copy)]
pub struct Automation<'a> {
    pub bus: &'a CommandBus,
    pub lookup: &'a dyn AutomationLookup,
    pub planner: &'a dyn crate::planner::PlannerLookup,
    pub clock: &'a dyn Clock,
}

/// The caller a rule's jobs run as: the account's system bot.
pub fn rule_caller(account: Uuid) -> Caller {
    Caller {
        account_id: account,
        role: Role::SystemBot,
        user_id: None,
        key_id: None,
        session_id: None,
        sites: None,
    }
}

/// The context of what a run does: the run is the actor's cause.
pub fn run_context(account: Uuid, rule: Uuid, run: Uuid) -> CommandContext {
    CommandContext {
        account_id: Some(account.to_string()),
        actor: format!("automation:{rule}"),
        request_id: Uuid::new_v4().to_string(),
        correlation_id: run.to_string(),
        causation_id: Some(run.to_string()),
        ..CommandContext::default()
    }
}

/// The reservation holding a run's budget.
pub fn budget_reservation(run: Uuid) -> String {
    format!("automation:{run}")
}
