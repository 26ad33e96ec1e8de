//! The scheduler: fires the rules whose slot is due and the event rules
//! whose burst has settled, drives every run that has not ended, and
//! renews plan periods. It runs in every `igny8 workers` process (and in
//! `igny8 serve`): several copies are safe — a slot fires once because
//! firing is a command on the rule that names the slot, and a run moves by
//! commands on the run that a second driver finds already done.

use igny8_commands::automation::drive::{Step, drive};
use igny8_commands::automation::fire::fire;
use igny8_commands::automation::renew::renew_due;
use igny8_commands::automation::{Automation, AutomationLookup, Clock};
use igny8_commands::planner::PlannerLookup;
use igny8_commands::{Backoff, CommandBus, CommandContext, CommandError, Health};
use igny8_domain::automation::rule::Firing;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use uuid::Uuid;

/// The component name the scheduler reports under in [`Health`].
pub const COMPONENT: &str = "scheduler";

/// What the scheduler needs.
#[derive(Clone)]
pub struct Scheduler {
    pub bus: CommandBus,
    pub lookup: Arc<dyn AutomationLookup>,
    pub planner: Arc<dyn PlannerLookup>,
    pub clock: Arc<dyn Clock>,
    /// How often it looks (the machine's time; the clock may run faster).
    pub tick: Duration,
    /// Firings and run steps in flight at once.
    pub concurrency: usize,
    /// How often plan periods are looked at (the machine's time).
    pub renew_every: Duration,
}

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    pub fired: usize,
    pub driven: usize,
    pub renewed: usize,
}

fn system_context(what: &str) -> CommandContext {
    CommandContext {
        actor: "system:scheduler".into(),
        request_id: Uuid::new_v4().to_string(),
        correlation_id: what.to_string(),
        ..CommandContext::default()
    }
}

/// A refusal that says another scheduler (or this one earlier) did it.
fn done_elsewhere(e: &CommandError) -> bool {
    matches!(
        e,
        CommandError::Domain {
            code: "SLOT_HANDLED" | "RULE_PAUSED" | "NOT_FOUND" | "ALREADY_EXISTS" | "RUN_CONFLICT",
            ..
        }
    )
}

impl Scheduler {
    fn automation(&self) -> Automation<'_> {
        Automation {
            bus: &self.bus,
            lookup: self.lookup.as_ref(),
            planner: self.planner.as_ref(),
            clock: self.clock.as_ref(),
        }
    }

    /// One pass: due slots, settled bursts, unfinished runs; renewals when `renew`.
    pub async fn pass(&self, renew: bool) -> Result<Pass, CommandError> {
        let a = self.automation();
        let now = self.clock.now();
        let mut out = Pass::default();
        let mut started: Vec<Uuid> = vec![];
        // Due slots, fired with bounded concurrency.
        let due = self.lookup.due_rules(now, 1000).await?;
        let firings: Vec<(Uuid, Firing, Option<String>)> = due
            .into_iter()
            .map(|d| (d.rule_id, Firing::Schedule { slot: d.slot }, None))
            .chain(
                self.lookup
                    .settled_events(now, 1000)
                    .await?
                    .into_iter()
                    .map(|p| {
                        (
                            p.rule_id,
                            Firing::Event { burst: p.burst },
                            Some(p.event_type),
                        )
                    }),
            )
            .collect();
        for chunk in firings.chunks(self.concurrency.max(1)) {
            let results = futures::future::join_all(chunk.iter().map(|(rule, firing, ev)| {
                let ctx = system_context(&format!("fire:{rule}"));
                async move { fire(&a, *rule, firing.clone(), ev.as_deref(), &ctx).await }
            }))
            .await;
            for r in results {
                match r {
                    Ok(f) => {
                        out.fired += 1;
                        started.extend(f.run_id);
                    }
                    Err(e) if done_elsewhere(&e) => {}
                    Err(e @ CommandError::Unavailable(_)) => return Err(e),
                    Err(e) => tracing::warn!(error = %e, "a firing failed"),
                }
            }
        }
        // Every run not ended (those just started first).
        let mut runs = started;
        for r in self.lookup.running(1000).await? {
            if !runs.contains(&r) {
                runs.push(r);
            }
        }
        for chunk in runs.chunks(self.concurrency.max(1)) {
            let results = futures::future::join_all(
                chunk
                    .iter()
                    .map(|r| async move { (r, drive(&a, *r).await) }),
            )
            .await;
            for (run, r) in results {
                match r {
                    Ok(Step::Ended | Step::Moved | Step::Waiting) => out.driven += 1,
                    Err(e @ CommandError::Unavailable(_)) => return Err(e),
                    Err(e) => tracing::warn!(run = %run, error = %e, "a run step failed"),
                }
            }
        }
        if renew {
            out.renewed = renew_due(&a, 500).await?;
        }
        Ok(out)
    }
}

/// Run the scheduler until shutdown; it reports not ready while the
/// database is away and goes on when it is back.
pub async fn run(
    s: Scheduler,
    health: Health,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    health.register(COMPONENT);
    let mut backoff = Backoff::new();
    let mut last_renew: Option<tokio::time::Instant> = None;
    loop {
        if *stop.borrow() {
            return Ok(());
        }
        let renew = last_renew.is_none_or(|t| t.elapsed() >= s.renew_every);
        match s.pass(renew).await {
            Ok(p) => {
                health.ready(COMPONENT, "active");
                backoff = Backoff::new();
                if renew {
                    last_renew = Some(tokio::time::Instant::now());
                }
                if p.fired > 0 {
                    tracing::debug!(fired = p.fired, driven = p.driven, "scheduler pass");
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "scheduler pass failed; retrying");
                health.not_ready(COMPONENT, format!("database unavailable: {e}"));
                backoff.wait(&mut stop).await;
                continue;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(s.tick) => {}
            _ = stop.changed() => {}
        }
    }
}
