//! The scheduler: fires the rules whose slot is due and the event rules
//! whose burst has settled, drives every run that has not ended, and
//! renews plan periods. It runs in every `igny8 workers` process (and in
//! `igny8 serve`): several copies are safe — a slot fires once because
//! firing is a command on the rule that names the slot, and a run moves by
//! commands on the run that a second driver finds already done.

use igny8_commands::automation::drive::{Step, drive};
use igny8_commands::automation::fire::{DueFiring, fire_batch};
use igny8_commands::automation::renew::renew_due;
use igny8_commands::automation::{Automation, AutomationLookup, Clock, DueRule};
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
        let (fired, started) = self.fire_due().await?;
        let driven = self.drive_runs(started).await?;
        let renewed = if renew {
            renew_due(&self.automation(), 500).await?
        } else {
            0
        };
        Ok(Pass {
            fired,
            driven,
            renewed,
        })
    }

    /// Fire every due slot and settled event burst: pages of the due rules
    /// (an account's firings side by side), fired in units of work of
    /// [`BATCH`] rules, `concurrency` units in flight. Answers how many
    /// fired and the runs they started.
    pub async fn fire_due(&self) -> Result<(usize, Vec<Uuid>), CommandError> {
        let now = self.clock.now();
        let mut fired = 0;
        let mut started = vec![];
        let mut after: Option<DueRule> = None;
        loop {
            let mut page = self.lookup.due_rules(now, after.as_ref(), PAGE).await?;
            let Some(last) = page.last().cloned() else {
                break;
            };
            let full = page.len() == PAGE;
            after = Some(last);
            page.sort_by_key(|d| (d.account_id, d.site_id));
            let due: Vec<DueFiring> = page
                .into_iter()
                .map(|d| DueFiring {
                    rule_id: d.rule_id,
                    firing: Firing::Schedule { slot: d.slot },
                    event_type: None,
                })
                .collect();
            let (n, runs) = self.fire_all(due).await?;
            fired += n;
            started.extend(runs);
            if !full {
                break;
            }
        }
        let settled: Vec<DueFiring> = self
            .lookup
            .settled_events(now, PAGE)
            .await?
            .into_iter()
            .map(|p| DueFiring {
                rule_id: p.rule_id,
                firing: Firing::Event { burst: p.burst },
                event_type: Some(p.event_type),
            })
            .collect();
        let (n, runs) = self.fire_all(settled).await?;
        Ok((fired + n, [started, runs].concat()))
    }

    async fn fire_all(&self, due: Vec<DueFiring>) -> Result<(usize, Vec<Uuid>), CommandError> {
        use futures::StreamExt;
        let a = self.automation();
        // (Collected first: a stream over a borrowing closure trips rustc's
        // `Send` inference for the spawned scheduler.)
        let work: Vec<_> = due
            .chunks(BATCH)
            .map(|batch| {
                let ctx = system_context(&format!("fire:{}", batch[0].rule_id));
                let a = &a;
                async move { fire_batch(a, batch, &ctx).await }
            })
            .collect();
        let mut batches = futures::stream::iter(work).buffer_unordered(self.concurrency.max(1));
        let (mut fired, mut started) = (0, vec![]);
        let mut unavailable = None;
        while let Some(results) = batches.next().await {
            for (rule, r) in results {
                match r {
                    Ok(f) => {
                        fired += 1;
                        started.extend(f.run_id);
                    }
                    Err(e) if done_elsewhere(&e) => {}
                    Err(e @ CommandError::Unavailable(_)) => unavailable = Some(e),
                    Err(e) => tracing::warn!(rule = %rule, error = %e, "a firing failed"),
                }
            }
        }
        match unavailable {
            Some(e) => Err(e),
            None => Ok((fired, started)),
        }
    }

    /// Move every run that has not ended (`first` before the others).
    pub async fn drive_runs(&self, first: Vec<Uuid>) -> Result<usize, CommandError> {
        use futures::StreamExt;
        let a = self.automation();
        let mut runs = first;
        let known: std::collections::HashSet<Uuid> = runs.iter().copied().collect();
        runs.extend(
            self.lookup
                .running(PAGE)
                .await?
                .into_iter()
                .filter(|r| !known.contains(r)),
        );
        let work: Vec<_> = runs
            .into_iter()
            .map(|r| {
                let a = &a;
                async move { (r, drive(a, r).await) }
            })
            .collect();
        let mut steps = futures::stream::iter(work).buffer_unordered(self.concurrency.max(1));
        let mut driven = 0;
        let mut unavailable = None;
        while let Some((run, r)) = steps.next().await {
            match r {
                Ok(Step::Ended | Step::Moved | Step::Waiting) => driven += 1,
                Err(e @ CommandError::Unavailable(_)) => unavailable = Some(e),
                Err(e) => tracing::warn!(run = %run, error = %e, "a run step failed"),
            }
        }
        match unavailable {
            Some(e) => Err(e),
            None => Ok(driven),
        }
    }
}

/// Due rules read per page.
const PAGE: usize = 1000;
/// Firings per unit of work.
pub const BATCH: usize = 100;

/// Run the scheduler until shutdown: one loop fires due slots and settled
/// bursts (and renews plan periods), another drives runs, so a minute's
/// firings never wait behind the runs already going. It reports not ready
/// while the database is away and goes on when it is back.
pub async fn run(s: Scheduler, health: Health, stop: watch::Receiver<bool>) -> anyhow::Result<()> {
    health.register(COMPONENT);
    tokio::join!(
        every(&s, Loop::Fire, &health, stop.clone()),
        every(&s, Loop::Drive, &health, stop)
    );
    Ok(())
}

#[derive(Clone, Copy)]
enum Loop {
    /// Due slots, settled bursts, plan renewals.
    Fire,
    /// Runs not ended.
    Drive,
}

/// One loop of the scheduler, every tick until shutdown, with backoff
/// while the database is away.
async fn every(s: &Scheduler, what: Loop, health: &Health, mut stop: watch::Receiver<bool>) {
    let mut backoff = Backoff::new();
    let mut last_renew: Option<tokio::time::Instant> = None;
    loop {
        if *stop.borrow() {
            return;
        }
        let renew = last_renew.is_none_or(|t| t.elapsed() >= s.renew_every);
        let done = match what {
            Loop::Fire => match s.fire_due().await {
                Ok((n, _)) if renew => renew_due(&s.automation(), 500).await.map(|_| n),
                other => other.map(|(n, _)| n),
            },
            Loop::Drive => s.drive_runs(vec![]).await,
        };
        match done {
            Ok(n) => {
                health.ready(COMPONENT, "active");
                backoff = Backoff::new();
                if renew {
                    last_renew = Some(tokio::time::Instant::now());
                }
                if n > 0 {
                    tracing::debug!(n, "scheduler pass");
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
