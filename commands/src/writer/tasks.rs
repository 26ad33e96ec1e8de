//! Task use cases. A task and its primary keyword's claim are written in
//! one commit (the cannibalization guard: two concurrent creates with one
//! primary keyword write the same claim, so one of them loses and is
//! refused on the winner's claim). `auto_generate_content` creates one job
//! for up to [`MAX_GENERATE_TASKS`] tasks: the job, each task's start and
//! each task's reservation (`<job>:<task>`, priced on the target length
//! plus the 15% an article may run over) in one commit.

use super::Writer;
use crate::bus::{CommandBus, CommandContext, CommandError, CommandOutcome};
use crate::caller::Caller;
use crate::planner::{cluster_scope, sector_scope};
use crate::uow::{replayed, retry, retry_hot};
use igny8_domain::billing::{Account, content_cost_milli};
use igny8_domain::jobs::{Job, JobCommand, item_reservation};
use igny8_domain::planner::{ContentType, Idea, IdeaCommand, OutlineSection};
use igny8_domain::writer::{
    PrimaryKeyword, PrimaryKeywordCommand, Task, TaskChange, TaskCommand, TaskData, claim_id,
};
use serde_json::json;
use std::collections::BTreeSet;
use uuid::Uuid;

/// Most tasks one content job takes.
pub const MAX_GENERATE_TASKS: usize = 100;

/// A task to create.
#[derive(Debug, Clone)]
pub struct NewTask {
    pub sector_id: Uuid,
    pub title: String,
    pub brief: String,
    pub idea_id: Option<Uuid>,
    pub cluster_id: Option<Uuid>,
    pub primary_keyword: String,
    pub secondary_keywords: Vec<String>,
    pub target_word_count: u32,
    pub content_type: ContentType,
    pub outline: Vec<OutlineSection>,
    pub author_profile_id: Option<Uuid>,
    pub strategy_id: Option<Uuid>,
    pub allow_shared_primary: bool,
}

/// A task written: its id and the commit.
#[derive(Debug, Clone)]
pub struct TaskSaved {
    pub id: Uuid,
    pub outcome: CommandOutcome,
}

/// A change of a task.
pub type TaskUpdate = TaskChange;

/// The task the caller may see (of its account and a visible site), else 404.
pub async fn task_scope(bus: &CommandBus, caller: &Caller, id: Uuid) -> Result<Task, CommandError> {
    let account = caller.account()?;
    let (t, _) = bus.load::<Task>(&id.to_string()).await?;
    match (t.live(), t.account_id, t.site_id) {
        (true, Some(a), Some(site)) if a == account && caller.can_see_site(site) => Ok(t),
        _ => Err(CommandError::not_found("task")),
    }
}

/// The idea the caller may see, else 404.
pub async fn idea_scope(bus: &CommandBus, caller: &Caller, id: Uuid) -> Result<Idea, CommandError> {
    let account = caller.account()?;
    let (i, _) = bus.load::<Idea>(&id.to_string()).await?;
    match (i.live(), i.account_id, i.site_id) {
        (true, Some(a), Some(site)) if a == account && caller.can_see_site(site) => Ok(i),
        _ => Err(CommandError::not_found("idea")),
    }
}

/// Where a new task goes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Place {
    pub account_id: Uuid,
    pub site_id: Uuid,
    pub sector_id: Uuid,
}

/// Create `task_id` with its claim (and queue its idea) in one commit.
pub(crate) async fn write_task(
    bus: &CommandBus,
    ctx: &CommandContext,
    place: Place,
    task_id: Uuid,
    data: TaskData,
) -> Result<CommandOutcome, CommandError> {
    if let Some(done) = replayed(bus, ctx).await? {
        return first(done, "task");
    }
    let tid = task_id.to_string();
    let claim = claim_id(place.site_id, &data.primary_keyword).to_string();
    let outcomes = retry(|| async {
        let mut uow = bus.unit(ctx);
        uow.execute::<Task>(
            &tid,
            TaskCommand::Create {
                account_id: place.account_id,
                site_id: place.site_id,
                sector_id: place.sector_id,
                task: data.clone(),
            },
        )
        .await?;
        uow.execute::<PrimaryKeyword>(
            &claim,
            PrimaryKeywordCommand::Claim {
                task_id,
                keyword: data.primary_keyword.trim().to_string(),
                allow_shared: data.allow_shared_primary,
            },
        )
        .await?;
        if let Some(idea) = data.idea_id {
            uow.execute::<Idea>(&idea.to_string(), IdeaCommand::Queue { task_id })
                .await?;
        }
        uow.commit().await
    })
    .await?;
    first(outcomes, "task")
}

/// The outcome of the aggregate type asked for (the first one otherwise).
pub(crate) fn first(
    outcomes: Vec<CommandOutcome>,
    aggregate_type: &str,
) -> Result<CommandOutcome, CommandError> {
    let i = outcomes
        .iter()
        .position(|o| o.aggregate_type == aggregate_type)
        .unwrap_or(0);
    outcomes
        .into_iter()
        .nth(i)
        .ok_or_else(|| CommandError::Internal("a commit without events".into()))
}

/// Create a task: 404 for a sector, cluster or idea the caller cannot see;
/// 422 for a cluster or idea of another sector and for the task's own
/// rules; 409 KEYWORD_CANNIBALIZATION when a live task of the site has its
/// primary keyword (unless `allow_shared_primary`); 409 IDEA_ALREADY_QUEUED.
pub async fn create_task(
    w: Writer<'_>,
    caller: &Caller,
    ctx: &CommandContext,
    input: NewTask,
) -> Result<TaskSaved, CommandError> {
    let scope = sector_scope(w.bus, caller, input.sector_id).await?;
    if let Some(c) = input.cluster_id
        && cluster_scope(w.planner, caller, c).await? != scope.sector_id
    {
        return Err(CommandError::invalid(
            "VALIDATION_ERROR",
            "the cluster belongs to another sector",
        ));
    }
    if let Some(i) = input.idea_id
        && idea_scope(w.bus, caller, i).await?.sector_id != Some(scope.sector_id)
    {
        return Err(CommandError::invalid(
            "VALIDATION_ERROR",
            "the idea belongs to another sector",
        ));
    }
    super::settings::check_choices(w.bus, caller, input.author_profile_id, input.strategy_id)
        .await?;
    caller.require_write()?;
    let id = Uuid::now_v7();
    let data = TaskData {
        title: input.title,
        brief: input.brief,
        idea_id: input.idea_id,
        cluster_id: input.cluster_id,
        primary_keyword: input.primary_keyword,
        secondary_keywords: input.secondary_keywords,
        target_word_count: input.target_word_count,
        content_type: input.content_type,
        outline: input.outline,
        author_profile_id: input.author_profile_id,
        strategy_id: input.strategy_id,
        allow_shared_primary: input.allow_shared_primary,
    };
    let place = Place {
        account_id: scope.account_id,
        site_id: scope.site_id,
        sector_id: scope.sector_id,
    };
    let outcome = write_task(w.bus, ctx, place, id, data).await?;
    let id = Uuid::parse_str(&outcome.aggregate_id).unwrap_or(id);
    Ok(TaskSaved { id, outcome })
}

/// Change a task (409 GENERATION_RUNNING while a job writes it). A new
/// primary keyword is claimed and the old one released in the same commit.
pub async fn update_task(
    w: Writer<'_>,
    caller: &Caller,
    ctx: &CommandContext,
    id: Uuid,
    change: TaskUpdate,
) -> Result<TaskSaved, CommandError> {
    let task = task_scope(w.bus, caller, id).await?;
    super::settings::check_choices(
        w.bus,
        caller,
        change.author_profile_id.flatten(),
        change.strategy_id.flatten(),
    )
    .await?;
    caller.require_write()?;
    let site = task.site_id.unwrap_or_default();
    let old = task
        .data
        .as_ref()
        .map(|d| d.primary_keyword.clone())
        .unwrap_or_default();
    let allow = change
        .allow_shared_primary
        .unwrap_or_else(|| task.data.as_ref().is_some_and(|d| d.allow_shared_primary));
    let tid = id.to_string();
    let outcomes = retry(|| async {
        let mut uow = w.bus.unit(ctx);
        uow.execute::<Task>(
            &tid,
            TaskCommand::Update {
                change: change.clone(),
            },
        )
        .await?;
        if let Some(new) = &change.primary_keyword {
            let (from, to) = (claim_id(site, &old), claim_id(site, new));
            if from != to {
                uow.execute::<PrimaryKeyword>(
                    &to.to_string(),
                    PrimaryKeywordCommand::Claim {
                        task_id: id,
                        keyword: new.trim().to_string(),
                        allow_shared: allow,
                    },
                )
                .await?;
                uow.execute::<PrimaryKeyword>(
                    &from.to_string(),
                    PrimaryKeywordCommand::Release { task_id: id },
                )
                .await?;
            }
        }
        uow.commit().await
    })
    .await?;
    Ok(TaskSaved {
        id,
        outcome: first(outcomes, "task")?,
    })
}

/// Delete a task (409 while it is generated). A task without content
/// releases its primary keyword; one with content keeps it claimed for that
/// content, which stays readable with its versions.
pub async fn delete_task(
    w: Writer<'_>,
    caller: &Caller,
    ctx: &CommandContext,
    id: Uuid,
) -> Result<TaskSaved, CommandError> {
    let task = task_scope(w.bus, caller, id).await?;
    caller.require_write()?;
    let claim = claim_id(
        task.site_id.unwrap_or_default(),
        task.data
            .as_ref()
            .map(|d| d.primary_keyword.as_str())
            .unwrap_or(""),
    )
    .to_string();
    let tid = id.to_string();
    let outcomes = retry(|| async {
        let mut uow = w.bus.unit(ctx);
        uow.execute::<Task>(&tid, TaskCommand::Delete).await?;
        // A task's content outlives it and keeps the keyword: only a task
        // that produced nothing frees it.
        if task.content_id.is_none() {
            uow.execute::<PrimaryKeyword>(&claim, PrimaryKeywordCommand::Release { task_id: id })
                .await?;
        }
        uow.commit().await
    })
    .await?;
    Ok(TaskSaved {
        id,
        outcome: first(outcomes, "task")?,
    })
}

/// The job that writes the articles.
#[derive(Debug, Clone)]
pub struct ContentJob {
    pub job_id: Uuid,
    pub tasks: usize,
    /// Milli-credits reserved (the sum of the tasks' reservations).
    pub reserved: i64,
    pub position: Option<i64>,
    pub replayed: bool,
}

/// The reservation of one article: its target plus 15%, priced by the plan.
pub fn article_reservation(plan: Option<&str>, target_words: u32) -> i64 {
    content_cost_milli(plan, (u64::from(target_words) * 115).div_ceil(100))
}

/// Generate the articles of `task_ids` (1 to 100, of one site): 422
/// EMPTY_SELECTION / TOO_MANY_TASKS / VALIDATION_ERROR, 404 for a task the
/// caller cannot see, 409 GENERATION_RUNNING when another job writes one of
/// them, 402 when the account cannot cover the reservations. `regenerate`
/// records that the job adds a version to existing content.
pub async fn auto_generate_content(
    bus: &CommandBus,
    caller: &Caller,
    ctx: &CommandContext,
    task_ids: Vec<Uuid>,
    regenerate: bool,
) -> Result<ContentJob, CommandError> {
    let account = caller.account()?;
    if let Some(done) = replayed(bus, ctx).await? {
        let job = first(done, "job")?;
        let (j, _) = bus.load::<Job>(&job.aggregate_id).await?;
        return Ok(ContentJob {
            job_id: Uuid::parse_str(&job.aggregate_id).unwrap_or_default(),
            tasks: j.items.len(),
            reserved: j.reserved,
            position: job.position,
            replayed: true,
        });
    }
    if task_ids.is_empty() {
        return Err(CommandError::invalid(
            "EMPTY_SELECTION",
            "no tasks to write",
        ));
    }
    let ids: Vec<Uuid> = task_ids
        .iter()
        .copied()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if ids.len() > MAX_GENERATE_TASKS {
        return Err(CommandError::invalid(
            "TOO_MANY_TASKS",
            format!("at most {MAX_GENERATE_TASKS} tasks per job"),
        ));
    }
    let mut tasks = vec![];
    for id in &ids {
        tasks.push((*id, task_scope(bus, caller, *id).await?));
    }
    let sites: BTreeSet<Uuid> = tasks.iter().filter_map(|(_, t)| t.site_id).collect();
    if sites.len() != 1 {
        return Err(CommandError::invalid(
            "VALIDATION_ERROR",
            "the tasks must belong to one site",
        ));
    }
    caller.require_write()?;
    let site = sites.into_iter().next().unwrap_or_default();
    let (acct, _) = bus.load::<Account>(&account.to_string()).await?;
    let prices: Vec<(Uuid, i64)> = tasks
        .iter()
        .map(|(id, t)| {
            let words = t.data.as_ref().map_or(0, |d| d.target_word_count);
            (*id, article_reservation(acct.plan.as_deref(), words))
        })
        .collect();
    let reserved: i64 = prices.iter().map(|(_, p)| p).sum();
    let job_id = Uuid::now_v7();
    let (jid, aid) = (job_id.to_string(), account.to_string());
    let input = json!({"site_id": site, "task_ids": ids, "regenerate": regenerate});
    let outcomes = retry_hot(|| async {
        let mut uow = bus.unit(ctx);
        uow.execute::<Job>(
            &jid,
            JobCommand::Create {
                account_id: account,
                kind: "auto_generate_content".into(),
                input: input.clone(),
                reserved,
                items: ids.clone(),
            },
        )
        .await?;
        for (task, _) in &prices {
            uow.execute::<Task>(&task.to_string(), TaskCommand::StartGeneration { job_id })
                .await?;
        }
        // The account last: running jobs write it all the time, so it is
        // loaded as late as possible before the commit.
        for (task, price) in &prices {
            uow.execute::<Account>(
                &aid,
                crate::billing::hold(
                    ctx,
                    item_reservation(job_id, *task),
                    *price,
                    "auto_generate_content",
                ),
            )
            .await?;
        }
        uow.commit().await
    })
    .await?;
    let job = first(outcomes.clone(), "job")?;
    Ok(ContentJob {
        job_id: Uuid::parse_str(&job.aggregate_id).unwrap_or(job_id),
        tasks: ids.len(),
        reserved,
        position: outcomes.iter().filter_map(|o| o.position).max(),
        replayed: outcomes.iter().any(|o| o.replayed),
    })
}
