//! Job commands. A job and its credits move together: creating a job
//! reserves its credits (reservation id = job id) in the same commit;
//! success captures the charge (the rest returns), failure and cancel
//! release everything — each in one unit of work with the job's event, so
//! a crash between the two is impossible and a retry cannot charge twice
//! (a finished job refuses to finish again).

use crate::bus::{CommandBus, CommandContext, CommandError, CommandOutcome};
use crate::uow::retry_hot;
use igny8_domain::billing::{Account, AccountCommand};
use igny8_domain::jobs::{Job, JobCommand, Phase};
use igny8_domain::planner::{
    ClusterSummary, Idea, IdeaCommand, IdeaData, SectorKeywords, SectorKeywordsCommand,
};
use serde_json::Value;
use uuid::Uuid;

/// Create a job and reserve `reserve` milli-credits for it (402 when the
/// account cannot cover it; then nothing is written).
pub async fn create(
    bus: &CommandBus,
    account_id: Uuid,
    kind: &str,
    input: Value,
    reserve: i64,
    ctx: &CommandContext,
) -> Result<(Uuid, Vec<CommandOutcome>), CommandError> {
    let job_id = Uuid::now_v7();
    let (jid, aid) = (job_id.to_string(), account_id.to_string());
    let outcomes = retry_hot(|| async {
        let mut uow = bus.unit(ctx);
        uow.execute::<Job>(
            &jid,
            JobCommand::Create {
                account_id,
                kind: kind.to_string(),
                input: input.clone(),
                reserved: reserve,
                items: vec![],
            },
        )
        .await?;
        if reserve > 0 {
            uow.execute::<Account>(&aid, crate::billing::hold(ctx, jid.clone(), reserve, kind))
                .await?;
        }
        uow.commit().await
    })
    .await?;
    Ok((job_id, outcomes))
}

/// A worker takes the job (a new attempt if another worker had it); the
/// attempt number, which its progress and ending must name.
pub async fn start(
    bus: &CommandBus,
    job_id: Uuid,
    worker: &str,
    ctx: &CommandContext,
) -> Result<u32, CommandError> {
    let out = bus
        .execute::<Job>(
            &job_id.to_string(),
            JobCommand::Start {
                worker: worker.to_string(),
            },
            ctx,
        )
        .await?;
    out.events
        .iter()
        .find_map(|e| e.payload["attempt"].as_u64())
        .map(|a| a as u32)
        .ok_or_else(|| CommandError::Internal("JobStarted without an attempt".into()))
}

#[allow(clippy::too_many_arguments)]
pub async fn progress(
    bus: &CommandBus,
    job_id: Uuid,
    attempt: u32,
    phase: Phase,
    percentage: u8,
    message: &str,
    tokens: u64,
    cost_usd_micros: i64,
    ctx: &CommandContext,
) -> Result<CommandOutcome, CommandError> {
    bus.execute::<Job>(
        &job_id.to_string(),
        JobCommand::Progress {
            attempt,
            phase,
            percentage,
            message: message.to_string(),
            tokens,
            cost_usd_micros,
        },
        ctx,
    )
    .await
}

/// A clustering run to save with the job's success.
pub struct SaveClusters {
    pub sector_id: Uuid,
    pub clusters: Vec<ClusterSummary>,
}

/// Ideas to save with the job's success (ids derived from the job).
pub struct SaveIdeas {
    pub site_id: Uuid,
    pub ideas: Vec<(Uuid, Uuid, IdeaData)>,
}

/// What a job produced, saved in its success's commit.
pub enum Save {
    Clusters(SaveClusters),
    /// (idea id, sector id, idea) of one site.
    Ideas(SaveIdeas),
}

/// How a job ends, and what happens to its reservation with it.
pub enum Ending {
    /// Capture `charged` milli-credits (≤ reserved); the rest returns.
    Succeeded {
        attempt: u32,
        result: Value,
        charged: i64,
        /// What the job produced, saved in the same commit (so a cancelled,
        /// failed or superseded attempt saves nothing).
        save: Option<Save>,
    },
    /// `attempt: None`: whichever attempt runs.
    Failed {
        attempt: Option<u32>,
        error: String,
    },
    Cancelled,
}

/// End the job and settle its credits in one commit.
pub async fn finish(
    bus: &CommandBus,
    job_id: Uuid,
    ending: Ending,
    ctx: &CommandContext,
) -> Result<Vec<CommandOutcome>, CommandError> {
    let jid = job_id.to_string();
    retry_hot(|| async {
        let mut uow = bus.unit(ctx);
        let job: Job = uow.state(&jid).await?;
        let account = job.account_id.map(|a| a.to_string()).unwrap_or_default();
        let (job_cmd, account_cmd) = match &ending {
            Ending::Succeeded {
                attempt,
                result,
                charged,
                ..
            } => (
                JobCommand::Succeed {
                    attempt: *attempt,
                    result: result.clone(),
                    charged: *charged,
                },
                AccountCommand::Capture {
                    reservation_id: jid.clone(),
                    amount: *charged,
                },
            ),
            Ending::Failed { attempt, error } => (
                JobCommand::Fail {
                    attempt: *attempt,
                    error: error.clone(),
                },
                AccountCommand::Release {
                    reservation_id: jid.clone(),
                    reason: "job failed".into(),
                },
            ),
            Ending::Cancelled => (
                JobCommand::Cancel,
                AccountCommand::Release {
                    reservation_id: jid.clone(),
                    reason: "job cancelled".into(),
                },
            ),
        };
        uow.execute::<Job>(&jid, job_cmd).await?;
        match &ending {
            Ending::Succeeded {
                save: Some(Save::Clusters(save)),
                ..
            } => {
                uow.execute::<SectorKeywords>(
                    &save.sector_id.to_string(),
                    SectorKeywordsCommand::AssignClusters {
                        run_id: job_id,
                        clusters: save.clusters.clone(),
                    },
                )
                .await?;
            }
            Ending::Succeeded {
                save: Some(Save::Ideas(save)),
                ..
            } => {
                for (id, sector, idea) in &save.ideas {
                    uow.execute::<Idea>(
                        &id.to_string(),
                        IdeaCommand::Create {
                            account_id: job.account_id.unwrap_or_default(),
                            site_id: save.site_id,
                            sector_id: *sector,
                            idea: idea.clone(),
                            job_id: Some(job_id),
                        },
                    )
                    .await?;
                }
            }
            _ => {}
        }
        if !job.items.is_empty() {
            // A batch job: its items were charged one by one; what is left returns.
            let reason = match &ending {
                Ending::Succeeded { .. } => "not written by the job",
                Ending::Failed { .. } => "the job failed",
                Ending::Cancelled => "the job was cancelled",
            };
            crate::writer::settle_items(&mut uow, &job, job_id, reason).await?;
        } else if job.reserved > 0 {
            uow.execute::<Account>(&account, account_cmd).await?;
        }
        uow.commit().await
    })
    .await
}

// --- use cases -------------------------------------------------------------

use crate::caller::Caller;

/// A job and its version.
pub async fn load_job(bus: &CommandBus, id: Uuid) -> Result<(Job, u64), CommandError> {
    bus.load::<Job>(&id.to_string()).await
}

/// The caller's job: of its account and, for callers limited to granted
/// sites, of one of those sites (anything else is "not found").
pub async fn own_job(
    bus: &CommandBus,
    caller: &Caller,
    id: Uuid,
) -> Result<(Job, u64), CommandError> {
    let account = caller.account()?;
    let (job, version) = load_job(bus, id).await?;
    if !job.created || job.account_id != Some(account) {
        return Err(CommandError::not_found("job"));
    }
    if caller.sites.is_some() {
        let first = bus
            .feed()
            .aggregate_events("job", &id.to_string(), 1, 1)
            .await
            .map_err(CommandError::db)?;
        let site = first
            .first()
            .and_then(|e| e.body()["input"]["site_id"].as_str())
            .and_then(|v| Uuid::parse_str(v).ok());
        if !site.is_some_and(|site| caller.can_see_site(site)) {
            return Err(CommandError::not_found("job"));
        }
    }
    Ok((job, version))
}

/// Cancel a job that has not finished; its credits are released in the
/// same commit (409 JOB_FINISHED when it has).
pub async fn cancel(
    bus: &CommandBus,
    caller: &Caller,
    ctx: &CommandContext,
    id: Uuid,
) -> Result<CommandOutcome, CommandError> {
    own_job(bus, caller, id).await?;
    caller.require_write()?;
    finish(bus, id, Ending::Cancelled, ctx)
        .await?
        .into_iter()
        .find(|o| o.aggregate_type == "job")
        .ok_or_else(|| {
            CommandError::refused(
                igny8_domain::ErrorKind::Conflict,
                "JOB_FINISHED",
                "the job has finished",
            )
        })
}
