//! The `automation_run` aggregate: one firing of a rule.
//!
//! A run walks its stages in order. For the current stage it records the
//! items it takes (and those it leaves, with why: the budget, the batch)
//! *before* launching any job, then one job per group of items — each item
//! in at most one job, each job recorded once — then the stage's outcome.
//! Whoever drives the run after a crash reads this state and goes on from
//! it: a stage's items are never chosen again and never sent to a second
//! job. A run ends once (succeeded, failed, stopped by its budget, or
//! cancelled); a skipped firing is a run that ended as it started.

use super::{Action, AutomationError, Stage};
use crate::{Aggregate, DomainEvent};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    #[default]
    Running,
    Succeeded,
    Failed,
    /// Stopped because the next item would have exceeded the budget.
    BudgetExhausted,
    Cancelled,
    /// The firing started nothing (conditions not met, site busy, no credits).
    Skipped,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::BudgetExhausted => "budget_exhausted",
            RunStatus::Cancelled => "cancelled",
            RunStatus::Skipped => "skipped",
        }
    }
    pub const ALL: [RunStatus; 6] = [
        RunStatus::Running,
        RunStatus::Succeeded,
        RunStatus::Failed,
        RunStatus::BudgetExhausted,
        RunStatus::Cancelled,
        RunStatus::Skipped,
    ];
}

/// How a run ended (what [`RunCommand::Finish`] says).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    Succeeded,
    Failed,
    BudgetExhausted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum StageStatus {
    #[default]
    Pending,
    Running,
    Done,
    Failed,
    /// Not run (the run stopped before it).
    Skipped,
}

/// An item a stage did not take, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SkippedItem {
    pub id: Uuid,
    /// `budget`, `batch`, or the refusal's code.
    pub reason: String,
}

/// One job of a stage and the items it took.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageJob {
    pub job_id: Uuid,
    pub items: Vec<Uuid>,
    /// Milli-credits it reserved from the run's budget.
    pub reserved: i64,
    /// A publish job's slot (the post's scheduled time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StageState {
    pub action: Option<Action>,
    pub batch_size: u32,
    #[serde(default)]
    pub params: Value,
    pub status: StageStatus,
    /// Chosen (`None`: not yet).
    pub items: Option<Vec<Uuid>>,
    #[serde(default)]
    pub skipped: Vec<SkippedItem>,
    #[serde(default)]
    pub jobs: Vec<StageJob>,
    /// Chosen items no job took (its launch was refused), and why.
    #[serde(default)]
    pub dropped: Vec<SkippedItem>,
    /// What it made (for the next stage).
    #[serde(default)]
    pub outputs: Vec<Uuid>,
    #[serde(default)]
    pub charged: i64,
    #[serde(default)]
    pub error: Option<String>,
}

impl StageState {
    /// Items of this stage a job has taken, or that were dropped.
    pub fn launched(&self) -> impl Iterator<Item = &Uuid> {
        self.jobs
            .iter()
            .flat_map(|j| j.items.iter())
            .chain(self.dropped.iter().map(|d| &d.id))
    }
    /// Chosen items neither launched nor dropped yet.
    pub fn waiting(&self) -> Vec<Uuid> {
        let done: std::collections::HashSet<&Uuid> = self.launched().collect();
        self.items
            .iter()
            .flatten()
            .filter(|i| !done.contains(i))
            .copied()
            .collect()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Run {
    pub created: bool,
    pub account_id: Option<Uuid>,
    pub site_id: Option<Uuid>,
    pub rule_id: Option<Uuid>,
    pub trigger: String,
    pub slot: Option<DateTime<Utc>>,
    pub day: Option<NaiveDate>,
    /// Milli-credits allotted to the run by its rule.
    pub allotted: i64,
    /// Milli-credits reserved for the run when it started (≤ allotted).
    pub budget: i64,
    pub stages: Vec<StageState>,
    pub status: RunStatus,
    pub reason: Option<String>,
    /// Milli-credits its jobs reserved from the budget.
    pub drawn: i64,
    /// Milli-credits its jobs charged.
    pub charged: i64,
}

impl Run {
    /// The stage being worked on (the first not finished), if any.
    pub fn current(&self) -> Option<usize> {
        self.stages
            .iter()
            .position(|s| matches!(s.status, StageStatus::Pending | StageStatus::Running))
    }
    pub fn finished(&self) -> bool {
        self.created && self.status != RunStatus::Running
    }
    /// What is left of the budget for the next job.
    pub fn left(&self) -> i64 {
        (self.budget - self.drawn).max(0)
    }
    fn running(&self) -> Result<(), AutomationError> {
        if !self.created {
            return Err(AutomationError::NotFound("run"));
        }
        if self.finished() {
            return Err(AutomationError::Finished(self.status.as_str().into()));
        }
        Ok(())
    }
    fn stage(&self, i: usize) -> Result<&StageState, AutomationError> {
        self.running()?;
        if self.current() != Some(i) {
            return Err(AutomationError::Conflict(format!(
                "stage {i} is not the run's current stage"
            )));
        }
        Ok(&self.stages[i])
    }
}

/// Where a run comes from (carried by its start or its skip).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunOrigin {
    pub account_id: Uuid,
    pub site_id: Uuid,
    pub rule_id: Uuid,
    /// schedule, event or manual.
    pub trigger: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<DateTime<Utc>>,
    /// The burst of events (event triggers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<i64>,
    pub day: NaiveDate,
    /// Milli-credits the rule allotted.
    pub allotted: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RunCommand {
    Start {
        origin: RunOrigin,
        stages: Vec<Stage>,
        /// Milli-credits reserved (≤ allotted).
        budget: i64,
        /// The conditions as they were read: (condition, value, held).
        conditions: Value,
    },
    Skip {
        origin: RunOrigin,
        reason: String,
        conditions: Value,
    },
    SelectItems {
        stage: usize,
        items: Vec<Uuid>,
        skipped: Vec<SkippedItem>,
    },
    LaunchJob {
        stage: usize,
        job: StageJob,
    },
    /// Chosen items whose job was refused (their reason: the refusal's code).
    DropItems {
        stage: usize,
        items: Vec<SkippedItem>,
    },
    CompleteStage {
        stage: usize,
        outputs: Vec<Uuid>,
        charged: i64,
        failed: Vec<SkippedItem>,
    },
    FailStage {
        stage: usize,
        error: String,
        charged: i64,
    },
    Finish {
        outcome: RunOutcome,
        reason: Option<String>,
    },
    Cancel {
        by: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum RunEvent {
    RunStarted {
        origin: RunOrigin,
        stages: Vec<Stage>,
        budget: i64,
        #[serde(default)]
        conditions: Value,
    },
    RunSkipped {
        origin: RunOrigin,
        reason: String,
        #[serde(default)]
        conditions: Value,
    },
    StageItemsSelected {
        stage: usize,
        items: Vec<Uuid>,
        #[serde(default)]
        skipped: Vec<SkippedItem>,
    },
    StageJobLaunched {
        stage: usize,
        job: StageJob,
    },
    StageItemsDropped {
        stage: usize,
        items: Vec<SkippedItem>,
    },
    StageCompleted {
        stage: usize,
        outputs: Vec<Uuid>,
        charged: i64,
        #[serde(default)]
        failed: Vec<SkippedItem>,
    },
    StageFailed {
        stage: usize,
        error: String,
        #[serde(default)]
        charged: i64,
    },
    RunFinished {
        outcome: RunOutcome,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        charged: i64,
    },
    RunCancelled {
        by: String,
        charged: i64,
    },
}

impl DomainEvent for RunEvent {
    fn event_type(&self) -> &'static str {
        match self {
            RunEvent::RunStarted { .. } => "RunStarted",
            RunEvent::RunSkipped { .. } => "RunSkipped",
            RunEvent::StageItemsSelected { .. } => "StageItemsSelected",
            RunEvent::StageJobLaunched { .. } => "StageJobLaunched",
            RunEvent::StageItemsDropped { .. } => "StageItemsDropped",
            RunEvent::StageCompleted { .. } => "StageCompleted",
            RunEvent::StageFailed { .. } => "StageFailed",
            RunEvent::RunFinished { .. } => "RunFinished",
            RunEvent::RunCancelled { .. } => "RunCancelled",
        }
    }
}

impl Aggregate for Run {
    const TYPE: &'static str = "automation_run";
    type Command = RunCommand;
    type Event = RunEvent;
    type Error = AutomationError;

    fn decide(&self, command: RunCommand) -> Result<Vec<RunEvent>, AutomationError> {
        use RunCommand as C;
        use RunEvent as E;
        match command {
            C::Start {
                origin,
                stages,
                budget,
                conditions,
            } => {
                if self.created {
                    return Err(AutomationError::AlreadyExists);
                }
                Ok(vec![E::RunStarted {
                    budget: budget.clamp(0, origin.allotted.max(0)),
                    origin,
                    stages,
                    conditions,
                }])
            }
            C::Skip {
                origin,
                reason,
                conditions,
            } => {
                if self.created {
                    return Err(AutomationError::AlreadyExists);
                }
                Ok(vec![E::RunSkipped {
                    origin,
                    reason,
                    conditions,
                }])
            }
            C::SelectItems {
                stage,
                items,
                skipped,
            } => {
                let s = self.stage(stage)?;
                if s.items.is_some() {
                    return Err(AutomationError::Conflict(format!(
                        "stage {stage} has chosen its items"
                    )));
                }
                let mut seen = std::collections::HashSet::new();
                if !items.iter().all(|i| seen.insert(*i)) {
                    return Err(AutomationError::Conflict("an item twice".into()));
                }
                Ok(vec![E::StageItemsSelected {
                    stage,
                    items,
                    skipped,
                }])
            }
            C::LaunchJob { stage, job } => {
                let s = self.stage(stage)?;
                let Some(items) = &s.items else {
                    return Err(AutomationError::Conflict(format!(
                        "stage {stage} has not chosen its items"
                    )));
                };
                if s.jobs.iter().any(|j| j.job_id == job.job_id) {
                    return Ok(vec![]); // recorded by an earlier attempt
                }
                let taken: std::collections::HashSet<&Uuid> = s.launched().collect();
                if job
                    .items
                    .iter()
                    .any(|i| taken.contains(i) || !items.contains(i))
                {
                    return Err(AutomationError::Conflict(
                        "an item of this job is another job's, or not the stage's".into(),
                    ));
                }
                if job.reserved > self.left() {
                    return Err(AutomationError::Conflict(
                        "the job reserved more than the run has left".into(),
                    ));
                }
                Ok(vec![E::StageJobLaunched { stage, job }])
            }
            C::DropItems { stage, items } => {
                let s = self.stage(stage)?;
                let waiting = s.waiting();
                let items: Vec<SkippedItem> = items
                    .into_iter()
                    .filter(|i| waiting.contains(&i.id))
                    .collect();
                if items.is_empty() {
                    return Ok(vec![]);
                }
                Ok(vec![E::StageItemsDropped { stage, items }])
            }
            C::CompleteStage {
                stage,
                outputs,
                charged,
                failed,
            } => {
                self.stage(stage)?;
                Ok(vec![E::StageCompleted {
                    stage,
                    outputs,
                    charged: charged.max(0),
                    failed,
                }])
            }
            C::FailStage {
                stage,
                error,
                charged,
            } => {
                self.stage(stage)?;
                Ok(vec![E::StageFailed {
                    stage,
                    error,
                    charged: charged.max(0),
                }])
            }
            C::Finish { outcome, reason } => {
                self.running()?;
                if outcome == RunOutcome::Succeeded && self.current().is_some() {
                    return Err(AutomationError::Conflict("stages are left to run".into()));
                }
                Ok(vec![E::RunFinished {
                    outcome,
                    reason,
                    charged: self.charged,
                }])
            }
            C::Cancel { by } => {
                self.running()?;
                Ok(vec![E::RunCancelled {
                    by,
                    charged: self.charged,
                }])
            }
        }
    }

    fn apply(&mut self, event: &RunEvent) {
        use RunEvent as E;
        let origin = |r: &mut Run, o: &RunOrigin| {
            r.created = true;
            r.account_id = Some(o.account_id);
            r.site_id = Some(o.site_id);
            r.rule_id = Some(o.rule_id);
            r.trigger = o.trigger.clone();
            r.slot = o.slot;
            r.day = Some(o.day);
            r.allotted = o.allotted;
        };
        match event {
            E::RunStarted {
                origin: o,
                stages,
                budget,
                ..
            } => {
                origin(self, o);
                self.budget = *budget;
                self.stages = stages
                    .iter()
                    .map(|s| StageState {
                        action: Some(s.action),
                        batch_size: s.batch_size,
                        params: s.params.clone(),
                        ..StageState::default()
                    })
                    .collect();
            }
            E::RunSkipped {
                origin: o, reason, ..
            } => {
                origin(self, o);
                self.status = RunStatus::Skipped;
                self.reason = Some(reason.clone());
            }
            E::StageItemsSelected {
                stage,
                items,
                skipped,
            } => {
                if let Some(s) = self.stages.get_mut(*stage) {
                    s.items = Some(items.clone());
                    s.skipped = skipped.clone();
                    s.status = StageStatus::Running;
                }
            }
            E::StageJobLaunched { stage, job } => {
                self.drawn += job.reserved;
                if let Some(s) = self.stages.get_mut(*stage) {
                    s.jobs.push(job.clone());
                }
            }
            E::StageItemsDropped { stage, items } => {
                if let Some(s) = self.stages.get_mut(*stage) {
                    s.dropped.extend(items.iter().cloned());
                }
            }
            E::StageCompleted {
                stage,
                outputs,
                charged,
                failed,
            } => {
                self.charged += charged;
                if let Some(s) = self.stages.get_mut(*stage) {
                    s.status = StageStatus::Done;
                    s.outputs = outputs.clone();
                    s.charged = *charged;
                    s.skipped.extend(failed.iter().cloned());
                }
            }
            E::StageFailed {
                stage,
                error,
                charged,
            } => {
                self.charged += charged;
                if let Some(s) = self.stages.get_mut(*stage) {
                    s.status = StageStatus::Failed;
                    s.error = Some(error.clone());
                    s.charged = *charged;
                }
            }
            E::RunFinished {
                outcome, reason, ..
            } => {
                self.status = match outcome {
                    RunOutcome::Succeeded => RunStatus::Succeeded,
                    RunOutcome::Failed => RunStatus::Failed,
                    RunOutcome::BudgetExhausted => RunStatus::BudgetExhausted,
                };
                self.reason = reason.clone();
                self.skip_the_rest();
            }
            E::RunCancelled { by, .. } => {
                self.status = RunStatus::Cancelled;
                self.reason = Some(format!("cancelled by {by}"));
                self.skip_the_rest();
            }
        }
    }
}

impl Run {
    fn skip_the_rest(&mut self) {
        for s in &mut self.stages {
            if matches!(s.status, StageStatus::Pending | StageStatus::Running) {
                s.status = StageStatus::Skipped;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> RunOrigin {
        RunOrigin {
            account_id: Uuid::nil(),
            site_id: Uuid::nil(),
            rule_id: Uuid::nil(),
            trigger: "manual".into(),
            slot: None,
            burst: None,
            day: NaiveDate::from_ymd_opt(2026, 12, 7).unwrap(),
            allotted: 5_000,
        }
    }

    fn run(r: &mut Run, c: RunCommand) -> Result<(), AutomationError> {
        let events = r.decide(c)?;
        events.iter().for_each(|e| r.apply(e));
        Ok(())
    }

    #[test]
    fn items_are_chosen_once_and_go_to_one_job() {
        let mut r = Run::default();
        run(
            &mut r,
            RunCommand::Start {
                origin: origin(),
                stages: vec![
                    Stage {
                        action: Action::GenerateContent,
                        batch_size: 2,
                        params: Value::Null,
                    },
                    Stage {
                        action: Action::Publish,
                        batch_size: 2,
                        params: Value::Null,
                    },
                ],
                budget: 4_000,
                conditions: Value::Null,
            },
        )
        .unwrap();
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        assert!(
            run(
                &mut r,
                RunCommand::LaunchJob {
                    stage: 0,
                    job: StageJob {
                        job_id: Uuid::from_u128(9),
                        items: vec![a],
                        reserved: 1_000,
                        slot: None,
                    }
                }
            )
            .is_err(),
            "no job before the items are chosen"
        );
        run(
            &mut r,
            RunCommand::SelectItems {
                stage: 0,
                items: vec![a, b],
                skipped: vec![],
            },
        )
        .unwrap();
        assert!(
            run(
                &mut r,
                RunCommand::SelectItems {
                    stage: 0,
                    items: vec![a],
                    skipped: vec![]
                }
            )
            .is_err(),
            "chosen once"
        );
        let job = StageJob {
            job_id: Uuid::from_u128(9),
            items: vec![a, b],
            reserved: 3_000,
            slot: None,
        };
        run(
            &mut r,
            RunCommand::LaunchJob {
                stage: 0,
                job: job.clone(),
            },
        )
        .unwrap();
        run(&mut r, RunCommand::LaunchJob { stage: 0, job }).unwrap();
        assert_eq!(r.drawn, 3_000, "a job recorded twice counts once");
        let other = StageJob {
            job_id: Uuid::from_u128(10),
            items: vec![a],
            reserved: 0,
            slot: None,
        };
        assert!(
            run(
                &mut r,
                RunCommand::LaunchJob {
                    stage: 0,
                    job: other
                }
            )
            .is_err(),
            "an item goes to one job"
        );
        assert!(
            run(
                &mut r,
                RunCommand::Finish {
                    outcome: RunOutcome::Succeeded,
                    reason: None
                }
            )
            .is_err(),
            "stages are left"
        );
        run(
            &mut r,
            RunCommand::CompleteStage {
                stage: 0,
                outputs: vec![a],
                charged: 2_000,
                failed: vec![],
            },
        )
        .unwrap();
        assert_eq!(r.current(), Some(1));
        run(
            &mut r,
            RunCommand::Finish {
                outcome: RunOutcome::BudgetExhausted,
                reason: Some("budget".into()),
            },
        )
        .unwrap();
        assert_eq!(r.status, RunStatus::BudgetExhausted);
        assert_eq!(r.stages[1].status, StageStatus::Skipped);
        assert!(
            run(&mut r, RunCommand::Cancel { by: "u".into() }).is_err(),
            "an ended run cannot be cancelled"
        );
    }
}
