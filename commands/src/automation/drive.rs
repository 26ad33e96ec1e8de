//! Driving a run: one step at a time, each step a command on the run, so
//! any driver (a second scheduler process, or this one after a SIGKILL)
//! reads where the run is and goes on from there.
//!
//! A step, for the current stage: choose its items (recorded before any
//! job is launched), or launch the job of its next group of items — with
//! an idempotency key derived from the run, the stage and the group (a
//! launch repeated after a crash answers the first job) and on the run's
//! budget (the job's credits move out of the run's reservation) — or,
//! once every group's job has ended, record what the stage made and
//! charged. When no stage is left, or one failed, or the budget stopped
//! the run, the run ends in one commit with the site's lock released, the
//! unspent budget released and the day's allotment given back.

use super::select::{Source, plan_stage, source_of};
use super::{Automation, budget_reservation, rule_caller, run_context};
use crate::bus::{CommandBus, CommandContext, CommandError, IdempotencyKey};
use crate::caller::Caller;
use crate::jobs::{Ending, finish, load_job};
use crate::planner::Planner;
use crate::uow::retry_hot;
use chrono::{DateTime, Utc};
use igny8_domain::automation::run::StageJob;
use igny8_domain::automation::schedule::zone;
use igny8_domain::automation::{
    Action, Rule, RuleCommand, Run, RunCommand, RunOutcome, SiteLock, SiteLockCommand, SkippedItem,
    Stage,
};
use igny8_domain::billing::{Account, AccountCommand};
use igny8_domain::jobs::JobState;
use serde_json::Value;
use uuid::Uuid;

/// What one step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Waiting for the stage's jobs.
    Waiting,
    /// Moved on (step again).
    Moved,
    /// The run has ended.
    Ended,
}

/// A run being driven: its id, state and context.
struct Driving<'r> {
    id: Uuid,
    key: String,
    run: &'r Run,
    account: Uuid,
    site: Uuid,
    rule: Uuid,
    ctx: CommandContext,
}

/// The key of a stage's group's job.
fn group_key(account: Uuid, run: Uuid, stage: usize, group: Uuid) -> IdempotencyKey {
    let key = format!("automation:{run}:{stage}:{group}");
    IdempotencyKey {
        scope: account.to_string(),
        request_hash: key.clone(),
        key,
    }
}

/// A refusal of the run aggregate means another driver got there first.
fn raced(e: &CommandError) -> bool {
    matches!(
        e,
        CommandError::Domain {
            code: "RUN_CONFLICT" | "RUN_FINISHED" | "ALREADY_EXISTS",
            ..
        }
    )
}

/// Advance run `run_id` by one step.
pub async fn step(a: &Automation<'_>, run_id: Uuid) -> Result<Step, CommandError> {
    let key = run_id.to_string();
    let (run, _) = a.bus.load::<Run>(&key).await?;
    if !run.created || run.finished() {
        return Ok(Step::Ended);
    }
    let (Some(account), Some(site), Some(rule)) = (run.account_id, run.site_id, run.rule_id) else {
        return Ok(Step::Ended);
    };
    let d = Driving {
        id: run_id,
        key,
        run: &run,
        account,
        site,
        rule,
        ctx: run_context(account, rule, run_id),
    };
    let Some(i) = run.current() else {
        end(
            a.bus,
            run_id,
            End::Finish(RunOutcome::Succeeded, None),
            &d.ctx,
        )
        .await?;
        return Ok(Step::Ended);
    };
    let s = &run.stages[i];
    let stage = Stage {
        action: s.action.unwrap_or(Action::Publish),
        batch_size: s.batch_size,
        params: s.params.clone(),
    };
    let result = match &s.items {
        // What the stage before made (or, for the first stage, what was
        // written before the run started) must be in the read models its
        // use case reads before it is chosen and launched.
        None if !caught_up(a).await? => Ok(Step::Waiting),
        None => choose(a, &d, i, &stage).await,
        Some(_) if !s.waiting().is_empty() => launch(a, &d, i, &stage).await,
        Some(_) => settle(a, &d, i, &stage).await,
    };
    match result {
        Err(e) if raced(&e) => Ok(Step::Moved),
        other => other,
    }
}

async fn caught_up(a: &Automation<'_>) -> Result<bool, CommandError> {
    let head = a.bus.feed().head().await.map_err(CommandError::db)?;
    a.lookup.caught_up(head).await
}

/// Drive a run until it waits for a job or ends.
pub async fn drive(a: &Automation<'_>, run_id: Uuid) -> Result<Step, CommandError> {
    // Bounded: a stage takes a handful of steps.
    for _ in 0..64 {
        match step(a, run_id).await? {
            Step::Moved => continue,
            other => return Ok(other),
        }
    }
    Ok(Step::Moved)
}

fn stages(run: &Run) -> Vec<Stage> {
    run.stages
        .iter()
        .map(|s| Stage {
            action: s.action.unwrap_or(Action::Publish),
            batch_size: s.batch_size,
            params: s.params.clone(),
        })
        .collect()
}

async fn rule_zone(bus: &CommandBus, rule: Uuid) -> Result<chrono_tz::Tz, CommandError> {
    let (r, _) = bus.load::<Rule>(&rule.to_string()).await?;
    Ok(r.def
        .and_then(|d| zone(&d.timezone).ok())
        .unwrap_or(chrono_tz::Tz::UTC))
}

/// What stage `i` would take now (with a chained source, the stage before's outputs).
async fn plan_now(
    a: &Automation<'_>,
    d: &Driving<'_>,
    i: usize,
    stage: &Stage,
) -> Result<super::select::Plan, CommandError> {
    let before = i
        .checked_sub(1)
        .map(|p| Source::Chained(d.run.stages[p].outputs.clone()));
    let source = source_of(&stages(d.run), i, before);
    let (acct, _) = a.bus.load::<Account>(&d.account.to_string()).await?;
    plan_stage(
        a,
        d.account,
        d.site,
        acct.plan.as_deref(),
        stage,
        source,
        d.run.left(),
        a.clock.now(),
        rule_zone(a.bus, d.rule).await?,
    )
    .await
}

async fn choose(
    a: &Automation<'_>,
    d: &Driving<'_>,
    i: usize,
    stage: &Stage,
) -> Result<Step, CommandError> {
    let plan = plan_now(a, d, i, stage).await?;
    a.bus
        .execute::<Run>(
            &d.key,
            RunCommand::SelectItems {
                stage: i,
                items: plan.ids(),
                skipped: plan.skipped(),
            },
            &d.ctx,
        )
        .await?;
    Ok(Step::Moved)
}

/// The groups of a stage's items, one job each: a sector per clustering
/// job, a content per publish job, the whole batch otherwise.
fn groups(action: Action, items: &[Uuid]) -> Vec<Vec<Uuid>> {
    match action {
        Action::AutoCluster | Action::Publish => items.iter().map(|i| vec![*i]).collect(),
        _ if items.is_empty() => vec![],
        _ => vec![items.to_vec()],
    }
}

/// Launch the job of the next group of the stage's items not yet taken.
async fn launch(
    a: &Automation<'_>,
    d: &Driving<'_>,
    i: usize,
    stage: &Stage,
) -> Result<Step, CommandError> {
    let s = &d.run.stages[i];
    let waiting = s.waiting();
    let Some(group) = groups(stage.action, &waiting).into_iter().next() else {
        return Ok(Step::Moved);
    };
    let caller = rule_caller(d.account);
    let mut ctx = d.ctx.clone();
    ctx.idempotency = Some(group_key(d.account, d.id, i, group[0]));
    ctx.funding = Some(budget_reservation(d.id));
    let started = start_job(a, d, stage, &caller, &ctx, &group).await;
    match started {
        Ok(Started::Job(job_id, slot)) => {
            let (job, _) = load_job(a.bus, job_id).await?;
            a.bus
                .execute::<Run>(
                    &d.key,
                    RunCommand::LaunchJob {
                        stage: i,
                        job: StageJob {
                            job_id,
                            items: group,
                            reserved: job.reserved,
                            slot,
                        },
                    },
                    &d.ctx,
                )
                .await?;
        }
        Ok(Started::Done { outputs, failed }) => {
            // A stage without a job (queueing ideas) is done at once.
            a.bus
                .execute::<Run>(
                    &d.key,
                    RunCommand::CompleteStage {
                        stage: i,
                        outputs,
                        charged: 0,
                        failed,
                    },
                    &d.ctx,
                )
                .await?;
        }
        Err(CommandError::Domain { code, message, .. }) => {
            tracing::info!(run = %d.id, stage = i, code, message, "a stage's job was refused");
            a.bus
                .execute::<Run>(
                    &d.key,
                    RunCommand::DropItems {
                        stage: i,
                        items: group
                            .iter()
                            .map(|id| SkippedItem {
                                id: *id,
                                reason: code.to_string(),
                            })
                            .collect(),
                    },
                    &d.ctx,
                )
                .await?;
        }
        Err(e) => return Err(e),
    }
    Ok(Step::Moved)
}

enum Started {
    /// A job (a publish job's slot with it).
    Job(Uuid, Option<DateTime<Utc>>),
    Done {
        outputs: Vec<Uuid>,
        failed: Vec<SkippedItem>,
    },
}

/// The same use case as the HTTP route, for one group of items.
async fn start_job(
    a: &Automation<'_>,
    d: &Driving<'_>,
    stage: &Stage,
    caller: &Caller,
    ctx: &CommandContext,
    group: &[Uuid],
) -> Result<Started, CommandError> {
    let planner = Planner {
        bus: a.bus,
        lookup: a.planner,
    };
    let uuid = |k: &str| stage.text(k).and_then(|s| Uuid::parse_str(s).ok());
    Ok(match stage.action {
        Action::AutoCluster => {
            let sector = group[0];
            let keywords = a
                .lookup
                .unclustered(d.account, d.site, stage.batch_size as usize)
                .await?
                .into_iter()
                .find(|(s, _)| *s == sector)
                .map(|(_, k)| k)
                .unwrap_or_default();
            let job = crate::planner::clustering::auto_cluster(
                planner,
                caller,
                ctx,
                crate::planner::clustering::AutoCluster {
                    sector_id: None,
                    keyword_ids: Some(keywords),
                    strategy: stage.text("strategy").map(str::to_string),
                    num_clusters: stage.number("num_clusters"),
                },
            )
            .await?;
            Started::Job(job.job_id, None)
        }
        Action::GenerateIdeas => {
            let job = crate::planner::ideas::auto_generate_ideas(
                planner,
                caller,
                ctx,
                crate::planner::ideas::GenerateIdeas {
                    cluster_ids: group.to_vec(),
                    ideas_per_cluster: stage.number("ideas_per_cluster").map(|n| n as u32),
                    strategy_id: uuid("strategy_id"),
                    author_profile_id: uuid("author_profile_id"),
                },
            )
            .await?;
            Started::Job(job.job_id, None)
        }
        Action::QueueIdeasToWriter => {
            let (queued, skipped) =
                crate::planner::ideas::queue_ideas(planner, caller, ctx, group.to_vec(), false)
                    .await?;
            Started::Done {
                outputs: queued.iter().map(|q| q.task_id).collect(),
                failed: skipped
                    .iter()
                    .map(|n| SkippedItem {
                        id: n.idea_id,
                        reason: n.code.to_string(),
                    })
                    .collect(),
            }
        }
        Action::GenerateContent => {
            let job = crate::writer::tasks::auto_generate_content(
                a.bus,
                caller,
                ctx,
                group.to_vec(),
                false,
            )
            .await?;
            Started::Job(job.job_id, None)
        }
        Action::ExtractImagePrompts => {
            let n = stage
                .number("in_article_images")
                .map_or(super::select::DEFAULT_IN_ARTICLE, |n| n as u32);
            let job =
                crate::writer::images::extract_image_prompts(a.bus, caller, ctx, group.to_vec(), n)
                    .await?;
            Started::Job(job.job_id, None)
        }
        Action::GenerateImages => {
            let quality = if stage.text("quality") == Some("premium") {
                igny8_domain::writer::ImageQuality::Premium
            } else {
                igny8_domain::writer::ImageQuality::Basic
            };
            let job = crate::writer::images::generate_images(
                a.bus,
                caller,
                ctx,
                group.to_vec(),
                crate::writer::images::ImageRequest {
                    provider: None,
                    quality,
                    size: stage.text("size").unwrap_or("1024x1024").to_string(),
                },
            )
            .await?;
            Started::Job(job.job_id, None)
        }
        Action::Publish => {
            let Some(integration) = a.lookup.site_integration(d.account, d.site).await? else {
                return Err(CommandError::refused(
                    igny8_domain::ErrorKind::Conflict,
                    "NO_INTEGRATION",
                    "the site has no WordPress connection",
                ));
            };
            // The group's slot: its place among the stage's items.
            let slot = publish_slot(a, d, stage).await?;
            let status = match (slot, stage.text("status")) {
                (Some(_), _) => "future",
                (None, Some(s)) => s,
                (None, None) => "publish",
            };
            let job = crate::publishing::publish::publish(
                a.bus,
                caller,
                ctx,
                integration,
                crate::publishing::publish::PublishRequest {
                    content_id: group[0],
                    status: status.to_string(),
                    date_gmt: slot.map(|s| s.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                    categories: stage.list("categories"),
                    tags: stage.list("tags"),
                    force: false,
                },
            )
            .await?;
            Started::Job(job.job_id, slot)
        }
    })
}

/// The publish slot of `content` (with slots): the next free slot when
/// this content's job is launched — each launched job takes one, and a
/// slot a planned post holds is skipped.
async fn publish_slot(
    a: &Automation<'_>,
    d: &Driving<'_>,
    stage: &Stage,
) -> Result<Option<DateTime<Utc>>, CommandError> {
    let times: Vec<_> = stage
        .list("slots")
        .iter()
        .filter_map(|t| igny8_domain::automation::schedule::parse_hhmm(t))
        .collect();
    if times.is_empty() {
        return Ok(None);
    }
    let now = a.clock.now();
    let taken = a.lookup.planned_posts(d.account, d.site, now).await?;
    let tz = rule_zone(a.bus, d.rule).await?;
    // Slots this run's publish jobs took (the read model may not show them yet).
    let mine: Vec<DateTime<Utc>> = d
        .run
        .stages
        .iter()
        .flat_map(|s| s.jobs.iter().filter_map(|j| j.slot))
        .collect();
    Ok(igny8_domain::automation::schedule::publish_slots(
        now,
        tz,
        &times,
        taken.len() + mine.len() + 1,
    )
    .into_iter()
    .find(|s| !taken.contains(s) && !mine.contains(s)))
}

/// How a job ended: its state, the result of a success, what it charged.
struct JobEnd {
    state: JobState,
    result: Value,
    charged: i64,
    error: Option<String>,
}

async fn job_end(bus: &CommandBus, job: Uuid) -> Result<JobEnd, CommandError> {
    let (j, version) = load_job(bus, job).await?;
    let mut end = JobEnd {
        state: j.state,
        result: Value::Null,
        charged: 0,
        error: None,
    };
    if !j.state.finished() {
        return Ok(end);
    }
    let events = bus
        .feed()
        .aggregate_events("job", &job.to_string(), version as i64, 1)
        .await
        .map_err(CommandError::db)?;
    if let Some(e) = events.first() {
        let b = e.body();
        end.result = b["result"].clone();
        end.charged = b["charged"].as_i64().unwrap_or(0);
        end.error = b["error"].as_str().map(str::to_string);
    }
    Ok(end)
}

/// Ids listed under `key` of a job's result.
fn ids(result: &Value, key: &str) -> Vec<Uuid> {
    result[key]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().and_then(|s| Uuid::parse_str(s).ok()))
        .collect()
}

/// What a job's result says its items were (failed ones with why).
fn failed_items(result: &Value) -> Vec<SkippedItem> {
    result["failed"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| {
            let id = ["task_id", "content_id", "image_prompt_id"]
                .iter()
                .find_map(|k| f[*k].as_str())
                .and_then(|s| Uuid::parse_str(s).ok())?;
            Some(SkippedItem {
                id,
                reason: f["error"]
                    .as_str()
                    .unwrap_or("failed")
                    .chars()
                    .take(300)
                    .collect(),
            })
        })
        .collect()
}

/// Once every job of the stage has ended: what it made and charged.
async fn settle(
    a: &Automation<'_>,
    d: &Driving<'_>,
    i: usize,
    stage: &Stage,
) -> Result<Step, CommandError> {
    let s = &d.run.stages[i];
    let mut ends = vec![];
    for j in &s.jobs {
        let e = job_end(a.bus, j.job_id).await?;
        if !e.state.finished() {
            return Ok(Step::Waiting);
        }
        ends.push((j, e));
    }
    let charged: i64 = ends.iter().map(|(_, e)| e.charged).sum();
    let key = match stage.action {
        Action::AutoCluster => "cluster_ids",
        Action::GenerateIdeas => "idea_ids",
        Action::GenerateContent => "content_ids",
        Action::ExtractImagePrompts => "image_prompt_ids",
        Action::GenerateImages => "contents_placed",
        Action::QueueIdeasToWriter | Action::Publish => "",
    };
    let mut outputs = vec![];
    let mut failed = vec![];
    for (j, e) in &ends {
        match e.state {
            JobState::Success => {
                outputs.extend(ids(&e.result, key));
                failed.extend(failed_items(&e.result));
                if stage.action == Action::Publish {
                    outputs.extend(j.items.iter().copied());
                }
            }
            _ => failed.extend(j.items.iter().map(|id| {
                SkippedItem {
                    id: *id,
                    reason: e
                        .error
                        .clone()
                        .unwrap_or_else(|| "the job was cancelled".into())
                        .chars()
                        .take(300)
                        .collect(),
                }
            })),
        }
    }
    let all_failed = !ends.is_empty() && ends.iter().all(|(_, e)| e.state != JobState::Success);
    if all_failed {
        let error = ends
            .iter()
            .find_map(|(_, e)| e.error.clone())
            .unwrap_or_else(|| "the stage's jobs were cancelled".into());
        a.bus
            .execute::<Run>(
                &d.key,
                RunCommand::FailStage {
                    stage: i,
                    error: error.clone(),
                    charged,
                },
                &d.ctx,
            )
            .await?;
        end(
            a.bus,
            d.id,
            End::Finish(
                RunOutcome::Failed,
                Some(format!("stage {i} ({}): {error}", stage.action.as_str())),
            ),
            &d.ctx,
        )
        .await?;
        return Ok(Step::Ended);
    }
    a.bus
        .execute::<Run>(
            &d.key,
            RunCommand::CompleteStage {
                stage: i,
                outputs,
                charged,
                failed,
            },
            &d.ctx,
        )
        .await?;
    let budget_stop = s.skipped.iter().any(|k| k.reason == "budget")
        || s.dropped.iter().any(|k| {
            matches!(
                k.reason.as_str(),
                "RUN_BUDGET_EXCEEDED" | "INSUFFICIENT_CREDITS"
            )
        });
    if budget_stop {
        end(
            a.bus,
            d.id,
            End::Finish(
                RunOutcome::BudgetExhausted,
                Some(format!(
                    "stage {i} ({}) left items the budget did not cover",
                    stage.action.as_str()
                )),
            ),
            &d.ctx,
        )
        .await?;
        return Ok(Step::Ended);
    }
    Ok(Step::Moved)
}

/// How a run ends.
pub enum End {
    Finish(RunOutcome, Option<String>),
    Cancel(String),
}

/// End the run in one commit: its last event, the site's lock released,
/// its unspent budget released, and the day's allotment less what it
/// charged given back to its rule.
pub async fn end(
    bus: &CommandBus,
    run_id: Uuid,
    how: End,
    ctx: &CommandContext,
) -> Result<(), CommandError> {
    let key = run_id.to_string();
    retry_hot(|| async {
        let mut uow = bus.unit(ctx);
        let run: Run = uow.state(&key).await?;
        let (Some(account), Some(site), Some(rule)) = (run.account_id, run.site_id, run.rule_id)
        else {
            return Err(CommandError::not_found("run"));
        };
        let cmd = match &how {
            End::Finish(o, r) => RunCommand::Finish {
                outcome: *o,
                reason: r.clone(),
            },
            End::Cancel(by) => RunCommand::Cancel { by: by.clone() },
        };
        uow.execute::<Run>(&key, cmd).await?;
        uow.execute::<SiteLock>(&site.to_string(), SiteLockCommand::Release { run_id })
            .await?;
        uow.execute::<Account>(
            &account.to_string(),
            AccountCommand::Release {
                reservation_id: budget_reservation(run_id),
                reason: "automation run ended".into(),
            },
        )
        .await?;
        if let Some(day) = run.day {
            uow.execute::<Rule>(
                &rule.to_string(),
                RuleCommand::ReturnBudget {
                    run_id,
                    day,
                    amount: run.allotted - run.charged,
                },
            )
            .await?;
        }
        uow.commit().await
    })
    .await
    .map(|_| ())
}

/// Cancel a run: its unfinished jobs are cancelled (their credits
/// released), then the run ends as cancelled (lock and budget released).
/// 409 RUN_FINISHED when it has ended.
pub async fn cancel(
    bus: &CommandBus,
    run_id: Uuid,
    by: &str,
    ctx: &CommandContext,
) -> Result<(), CommandError> {
    let (run, _) = bus.load::<Run>(&run_id.to_string()).await?;
    if !run.created {
        return Err(CommandError::not_found("run"));
    }
    if run.finished() {
        return Err(CommandError::refused(
            igny8_domain::ErrorKind::Conflict,
            "RUN_FINISHED",
            format!("the run has ended ({})", run.status.as_str()),
        ));
    }
    // The run ends first (a driver stepping it meanwhile finds it ended),
    // then its unfinished jobs are cancelled, their credits released.
    end(bus, run_id, End::Cancel(by.to_string()), ctx).await?;
    for s in &run.stages {
        for j in &s.jobs {
            match finish(bus, j.job_id, Ending::Cancelled, ctx).await {
                Ok(_) => {}
                Err(CommandError::Domain {
                    code: "JOB_FINISHED",
                    ..
                }) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}
