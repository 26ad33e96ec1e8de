//! Jobs: every long operation (clustering now; ideas, content, images
//! later) is a `job` aggregate moving through the seeds' phases. Its events
//! are its progress: state, phase, percentage, message, tokens and cost.
//!
//! The rules that make retries safe live here: a redelivered job starts a
//! new attempt instead of running twice in parallel; a finished job (done,
//! failed or cancelled) refuses to start, progress or finish again, so a
//! worker killed after the job finished cannot charge or save twice.
//! Credits are reserved when the job is created and captured or released
//! when it ends (the application layer commits those together with the
//! job's last event).

use crate::{Aggregate, DomainError, DomainEvent, ErrorKind};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// The seeds' phases, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Phase {
    Init,
    Prep,
    AiCall,
    Parse,
    Save,
    Done,
}

impl Phase {
    /// The percentage range of the phase (seeds: INIT 0–10, …, DONE 95–100).
    pub fn range(self) -> (u8, u8) {
        match self {
            Phase::Init => (0, 10),
            Phase::Prep => (10, 25),
            Phase::AiCall => (25, 60),
            Phase::Parse => (60, 80),
            Phase::Save => (80, 95),
            Phase::Done => (95, 100),
        }
    }
}

/// The seeds' task states (`task_progress.state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobState {
    #[default]
    Pending,
    Progress,
    Success,
    Failure,
    Cancelled,
}

impl JobState {
    pub fn finished(self) -> bool {
        matches!(
            self,
            JobState::Success | JobState::Failure | JobState::Cancelled
        )
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Job {
    pub created: bool,
    pub account_id: Option<Uuid>,
    pub kind: String,
    pub state: JobState,
    pub phase: Option<Phase>,
    pub percentage: u8,
    pub message: String,
    pub attempt: u32,
    /// Milli-credits reserved for the job.
    pub reserved: i64,
    pub tokens: u64,
    /// Cost of the provider calls in micro-dollars (exact).
    pub cost_usd_micros: i64,
    /// The items of a batch job (e.g. the tasks of a content job), each with
    /// its own reservation (`<job id>:<item id>`), captured as the item is
    /// saved; the job's end releases what is left.
    #[serde(default)]
    pub items: Vec<Uuid>,
}

/// The reservation of one item of a batch job.
pub fn item_reservation(job_id: Uuid, item: Uuid) -> String {
    format!("{job_id}:{item}")
}

#[derive(Debug, Clone, PartialEq)]
pub enum JobCommand {
    Create {
        account_id: Uuid,
        kind: String,
        input: Value,
        reserved: i64,
        /// Items reserved one by one (empty: one reservation, the job id).
        items: Vec<Uuid>,
    },
    /// A worker takes the job (again, after a crash: a new attempt).
    Start {
        worker: String,
    },
    /// Progress of `attempt` (a superseded attempt is refused).
    Progress {
        attempt: u32,
        phase: Phase,
        percentage: u8,
        message: String,
        tokens: u64,
        cost_usd_micros: i64,
    },
    Succeed {
        attempt: u32,
        result: Value,
        /// Milli-credits to capture (at most the reservation).
        charged: i64,
    },
    /// `attempt: None` fails whichever attempt runs (e.g. an operator).
    Fail {
        attempt: Option<u32>,
        error: String,
    },
    Cancel,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum JobEvent {
    JobCreated {
        account_id: Uuid,
        kind: String,
        input: Value,
        reserved: i64,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        items: Vec<Uuid>,
    },
    JobStarted {
        attempt: u32,
        worker: String,
    },
    JobProgressed {
        phase: Phase,
        percentage: u8,
        message: String,
        tokens: u64,
        cost_usd_micros: i64,
    },
    JobSucceeded {
        result: Value,
        charged: i64,
    },
    JobFailed {
        error: String,
        attempt: u32,
    },
    JobCancelled {},
}

impl DomainEvent for JobEvent {
    fn event_type(&self) -> &'static str {
        match self {
            JobEvent::JobCreated { .. } => "JobCreated",
            JobEvent::JobStarted { .. } => "JobStarted",
            JobEvent::JobProgressed { .. } => "JobProgressed",
            JobEvent::JobSucceeded { .. } => "JobSucceeded",
            JobEvent::JobFailed { .. } => "JobFailed",
            JobEvent::JobCancelled { .. } => "JobCancelled",
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum JobError {
    #[error("job not found")]
    NotFound,
    #[error("job already exists")]
    AlreadyExists,
    #[error("the job has finished ({0:?})")]
    Finished(JobState),
    #[error("the job has not started")]
    NotStarted,
    #[error("progress must stay within its phase and never go back")]
    InvalidProgress,
    #[error("the charge must be between 0 and the reservation")]
    InvalidCharge,
    #[error("attempt {0} was superseded by a newer attempt")]
    Superseded(u32),
}

impl DomainError for JobError {
    fn code(&self) -> &'static str {
        match self {
            JobError::NotFound => "NOT_FOUND",
            JobError::AlreadyExists => "ALREADY_EXISTS",
            JobError::Finished(_) => "JOB_FINISHED",
            JobError::NotStarted => "JOB_NOT_STARTED",
            JobError::InvalidProgress => "INVALID_PROGRESS",
            JobError::InvalidCharge => "INVALID_CHARGE",
            JobError::Superseded(_) => "JOB_SUPERSEDED",
        }
    }
    fn kind(&self) -> ErrorKind {
        match self {
            JobError::NotFound => ErrorKind::NotFound,
            JobError::AlreadyExists
            | JobError::Finished(_)
            | JobError::NotStarted
            | JobError::Superseded(_) => ErrorKind::Conflict,
            _ => ErrorKind::Validation,
        }
    }
}

impl Aggregate for Job {
    const TYPE: &'static str = "job";
    type Command = JobCommand;
    type Event = JobEvent;
    type Error = JobError;

    fn decide(&self, command: JobCommand) -> Result<Vec<JobEvent>, JobError> {
        if let JobCommand::Create {
            account_id,
            kind,
            input,
            reserved,
            items,
        } = command
        {
            if self.created {
                return Err(JobError::AlreadyExists);
            }
            return Ok(vec![JobEvent::JobCreated {
                account_id,
                kind,
                input,
                reserved: reserved.max(0),
                items,
            }]);
        }
        if !self.created {
            return Err(JobError::NotFound);
        }
        if self.state.finished() {
            return Err(JobError::Finished(self.state));
        }
        match command {
            JobCommand::Create { .. } => unreachable!("handled above"),
            JobCommand::Start { worker } => Ok(vec![JobEvent::JobStarted {
                attempt: self.attempt + 1,
                worker,
            }]),
            JobCommand::Progress {
                attempt,
                phase,
                percentage,
                message,
                tokens,
                cost_usd_micros,
            } => {
                if self.state != JobState::Progress {
                    return Err(JobError::NotStarted);
                }
                if attempt != self.attempt {
                    return Err(JobError::Superseded(attempt));
                }
                let (lo, hi) = phase.range();
                let back = self.phase.is_some_and(|p| phase < p) || percentage < self.percentage;
                if percentage < lo || percentage > hi || back || cost_usd_micros < 0 {
                    return Err(JobError::InvalidProgress);
                }
                Ok(vec![JobEvent::JobProgressed {
                    phase,
                    percentage,
                    message,
                    tokens,
                    cost_usd_micros,
                }])
            }
            JobCommand::Succeed {
                attempt,
                result,
                charged,
            } => {
                if self.state != JobState::Progress {
                    return Err(JobError::NotStarted);
                }
                if attempt != self.attempt {
                    return Err(JobError::Superseded(attempt));
                }
                if !(0..=self.reserved).contains(&charged) {
                    return Err(JobError::InvalidCharge);
                }
                Ok(vec![JobEvent::JobSucceeded { result, charged }])
            }
            JobCommand::Fail { attempt, error } => {
                if let Some(a) = attempt
                    && a != self.attempt
                {
                    return Err(JobError::Superseded(a));
                }
                Ok(vec![JobEvent::JobFailed {
                    error,
                    attempt: self.attempt,
                }])
            }
            JobCommand::Cancel => Ok(vec![JobEvent::JobCancelled {}]),
        }
    }

    fn apply(&mut self, event: &JobEvent) {
        match event {
            JobEvent::JobCreated {
                account_id,
                kind,
                reserved,
                items,
                ..
            } => {
                self.created = true;
                self.items = items.clone();
                self.account_id = Some(*account_id);
                self.kind = kind.clone();
                self.reserved = *reserved;
                self.state = JobState::Pending;
                self.phase = Some(Phase::Init);
                self.message = "queued".into();
            }
            JobEvent::JobStarted { attempt, .. } => {
                self.attempt = *attempt;
                self.state = JobState::Progress;
                // A new attempt starts over.
                self.phase = Some(Phase::Init);
                self.percentage = 0;
            }
            JobEvent::JobProgressed {
                phase,
                percentage,
                message,
                tokens,
                cost_usd_micros,
            } => {
                self.phase = Some(*phase);
                self.percentage = *percentage;
                self.message = message.clone();
                self.tokens = *tokens;
                self.cost_usd_micros = *cost_usd_micros;
            }
            JobEvent::JobSucceeded { .. } => {
                self.state = JobState::Success;
                self.phase = Some(Phase::Done);
                self.percentage = 100;
            }
            JobEvent::JobFailed { error, .. } => {
                self.state = JobState::Failure;
                self.message = error.clone();
            }
            JobEvent::JobCancelled {} => {
                self.state = JobState::Cancelled;
                self.message = "cancelled".into();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(job: &mut Job, c: JobCommand) -> Result<(), JobError> {
        for e in job.decide(c)? {
            job.apply(&e);
        }
        Ok(())
    }

    fn created() -> Job {
        let mut j = Job::default();
        run(
            &mut j,
            JobCommand::Create {
                account_id: Uuid::nil(),
                kind: "auto_cluster".into(),
                input: Value::Null,
                reserved: 10_000,
                items: vec![],
            },
        )
        .unwrap();
        j
    }

    fn progress(phase: Phase, pct: u8) -> JobCommand {
        progress_of(1, phase, pct)
    }

    fn progress_of(attempt: u32, phase: Phase, pct: u8) -> JobCommand {
        JobCommand::Progress {
            attempt,
            phase,
            percentage: pct,
            message: String::new(),
            tokens: 0,
            cost_usd_micros: 0,
        }
    }

    #[test]
    fn lifecycle_retries_and_finished_jobs() {
        let mut j = created();
        assert_eq!(j.state, JobState::Pending);
        assert_eq!(
            run(&mut j, progress(Phase::Prep, 12)).unwrap_err(),
            JobError::NotStarted
        );
        run(
            &mut j,
            JobCommand::Start {
                worker: "w1".into(),
            },
        )
        .unwrap();
        run(&mut j, progress(Phase::Prep, 12)).unwrap();
        run(&mut j, progress(Phase::AiCall, 40)).unwrap();
        // Backwards or outside the phase: refused.
        assert!(run(&mut j, progress(Phase::Prep, 20)).is_err());
        assert!(run(&mut j, progress(Phase::Parse, 90)).is_err());
        // The worker dies; another takes it over: a new attempt, from the start.
        run(
            &mut j,
            JobCommand::Start {
                worker: "w2".into(),
            },
        )
        .unwrap();
        assert_eq!((j.attempt, j.percentage), (2, 0));
        // The first worker, if it was only slow, is told it was superseded.
        assert_eq!(
            run(&mut j, progress(Phase::Save, 85)).unwrap_err(),
            JobError::Superseded(1)
        );
        let succeed = |attempt, charged| JobCommand::Succeed {
            attempt,
            result: Value::Null,
            charged,
        };
        assert_eq!(
            run(&mut j, succeed(1, 1)).unwrap_err(),
            JobError::Superseded(1)
        );
        run(&mut j, progress_of(2, Phase::Save, 85)).unwrap();
        assert_eq!(
            run(&mut j, succeed(2, 10_001)).unwrap_err(),
            JobError::InvalidCharge
        );
        run(&mut j, succeed(2, 10_000)).unwrap();
        assert_eq!((j.state, j.percentage), (JobState::Success, 100));
        // Finished: nothing starts, succeeds, fails or cancels it again.
        for c in [
            JobCommand::Start {
                worker: "w3".into(),
            },
            JobCommand::Succeed {
                attempt: 2,
                result: Value::Null,
                charged: 0,
            },
            JobCommand::Fail {
                attempt: None,
                error: "x".into(),
            },
            JobCommand::Cancel,
        ] {
            assert_eq!(
                run(&mut j, c).unwrap_err(),
                JobError::Finished(JobState::Success)
            );
        }
        let mut k = created();
        run(&mut k, JobCommand::Cancel).unwrap();
        assert_eq!(
            run(&mut k, JobCommand::Start { worker: "w".into() }).unwrap_err(),
            JobError::Finished(JobState::Cancelled)
        );
    }
}
