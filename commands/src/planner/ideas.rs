//! Idea use cases: written by hand, changed, deleted, queued to the writer
//! (one task per idea, the task's id derived from the idea's), and the
//! `auto_generate_ideas` job that proposes ideas for clusters.

use super::Planner;
use super::scope::{cluster_scope, sector_scope};
use crate::bus::{CommandContext, CommandError, CommandOutcome};
use crate::caller::Caller;
use crate::writer::tasks::{Place, idea_scope, write_task};
use igny8_domain::billing::{Account, ideas_cost_milli};
use igny8_domain::planner::{Idea, IdeaChange, IdeaCommand, IdeaData};
use igny8_domain::writer::TaskData;
use serde_json::json;
use std::collections::BTreeSet;
use uuid::Uuid;

pub const MAX_IDEA_CLUSTERS: usize = 50;
pub const MAX_IDEAS_PER_CLUSTER: u32 = 10;
pub const DEFAULT_IDEAS_PER_CLUSTER: u32 = 3;
pub const MAX_QUEUE_IDEAS: usize = 100;
/// Keywords of a cluster handed to the generator (by volume).
pub const IDEA_KEYWORDS: usize = 60;

/// An idea written by hand.
#[derive(Debug, Clone)]
pub struct NewIdea {
    pub sector_id: Uuid,
    pub idea: IdeaData,
}

/// An idea written or changed.
#[derive(Debug, Clone)]
pub struct IdeaSaved {
    pub id: Uuid,
    pub outcome: CommandOutcome,
}

/// Create an idea: 404 for a sector or cluster the caller cannot see, 422
/// for a cluster of another sector and for the idea's rules.
pub async fn create_idea(
    planner: Planner<'_>,
    caller: &Caller,
    ctx: &CommandContext,
    input: NewIdea,
) -> Result<IdeaSaved, CommandError> {
    let scope = sector_scope(planner.bus, caller, input.sector_id).await?;
    if let Some(c) = input.idea.cluster_id
        && cluster_scope(planner.lookup, caller, c).await? != scope.sector_id
    {
        return Err(CommandError::invalid(
            "VALIDATION_ERROR",
            "the cluster belongs to another sector",
        ));
    }
    crate::writer::settings::check_choices(
        planner.bus,
        caller,
        input.idea.author_profile_id,
        input.idea.strategy_id,
    )
    .await?;
    caller.require_write()?;
    let id = Uuid::now_v7();
    let outcome = planner
        .bus
        .execute::<Idea>(
            &id.to_string(),
            IdeaCommand::Create {
                account_id: scope.account_id,
                site_id: scope.site_id,
                sector_id: scope.sector_id,
                idea: input.idea,
                job_id: None,
            },
            ctx,
        )
        .await?;
    let id = Uuid::parse_str(&outcome.aggregate_id).unwrap_or(id);
    Ok(IdeaSaved { id, outcome })
}

/// Change an idea.
pub async fn update_idea(
    planner: Planner<'_>,
    caller: &Caller,
    ctx: &CommandContext,
    id: Uuid,
    change: IdeaChange,
) -> Result<IdeaSaved, CommandError> {
    idea_scope(planner.bus, caller, id).await?;
    caller.require_write()?;
    let outcome = planner
        .bus
        .execute::<Idea>(&id.to_string(), IdeaCommand::Update { change }, ctx)
        .await?;
    Ok(IdeaSaved { id, outcome })
}

/// Delete an idea (a task made from it stays).
pub async fn delete_idea(
    planner: Planner<'_>,
    caller: &Caller,
    ctx: &CommandContext,
    id: Uuid,
) -> Result<IdeaSaved, CommandError> {
    idea_scope(planner.bus, caller, id).await?;
    caller.require_write()?;
    let outcome = planner
        .bus
        .execute::<Idea>(&id.to_string(), IdeaCommand::Delete, ctx)
        .await?;
    Ok(IdeaSaved { id, outcome })
}

/// The task of an idea (one per idea: a retry finds the same id).
pub fn idea_task_id(idea_id: Uuid) -> Uuid {
    Uuid::new_v5(&idea_id, b"task")
}

/// An idea that became a task.
#[derive(Debug, Clone)]
pub struct Queued {
    pub idea_id: Uuid,
    pub task_id: Uuid,
    pub position: Option<i64>,
}

/// An idea that did not, and why (the code and message of the refusal).
#[derive(Debug, Clone)]
pub struct NotQueued {
    pub idea_id: Uuid,
    pub code: &'static str,
    pub message: String,
}

/// Queue ideas to the writer: 1 to 100 ideas the caller can see (404 for
/// any other, before anything is written); each becomes one task in its
/// own commit with its primary keyword's claim. An idea already queued or
/// whose keyword a live task holds is reported, not queued.
pub async fn queue_ideas(
    planner: Planner<'_>,
    caller: &Caller,
    ctx: &CommandContext,
    idea_ids: Vec<Uuid>,
    allow_shared_primary: bool,
) -> Result<(Vec<Queued>, Vec<NotQueued>), CommandError> {
    let ids: Vec<Uuid> = idea_ids
        .iter()
        .copied()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if ids.is_empty() {
        return Err(CommandError::invalid(
            "EMPTY_SELECTION",
            "no ideas to queue",
        ));
    }
    if ids.len() > MAX_QUEUE_IDEAS {
        return Err(CommandError::invalid(
            "VALIDATION_ERROR",
            format!("at most {MAX_QUEUE_IDEAS} ideas at once"),
        ));
    }
    let mut ideas = vec![];
    for id in &ids {
        ideas.push((*id, idea_scope(planner.bus, caller, *id).await?));
    }
    caller.require_write()?;
    let account = caller.account()?;
    let (mut queued, mut skipped) = (vec![], vec![]);
    for (idea_id, idea) in ideas {
        let Some(d) = idea.data.clone() else { continue };
        let task_id = idea_task_id(idea_id);
        // Queued by an earlier try of this request: it is queued.
        if idea.task_id == Some(task_id) {
            queued.push(Queued {
                idea_id,
                task_id,
                position: None,
            });
            continue;
        }
        let data = TaskData {
            title: d.title,
            brief: d.description,
            idea_id: Some(idea_id),
            cluster_id: d.cluster_id,
            primary_keyword: d.primary_keyword,
            secondary_keywords: d.secondary_keywords,
            target_word_count: d.target_word_count,
            content_type: d.content_type,
            outline: d.outline,
            author_profile_id: d.author_profile_id,
            strategy_id: d.strategy_id,
            allow_shared_primary,
        };
        let place = Place {
            account_id: account,
            site_id: idea.site_id.unwrap_or_default(),
            sector_id: idea.sector_id.unwrap_or_default(),
        };
        // Each idea's commit has its own idempotency scope (the request's key plus the idea).
        let mut one = ctx.clone();
        if let Some(k) = &mut one.idempotency {
            k.key = format!("{}:{idea_id}", k.key);
        }
        match write_task(planner.bus, &one, place, task_id, data).await {
            Ok(o) => queued.push(Queued {
                idea_id,
                task_id,
                position: o.position,
            }),
            Err(CommandError::Domain { code, message, .. })
                if matches!(
                    code,
                    "KEYWORD_CANNIBALIZATION"
                        | "IDEA_ALREADY_QUEUED"
                        | "IDEA_ARCHIVED"
                        | "ALREADY_EXISTS"
                ) =>
            {
                skipped.push(NotQueued {
                    idea_id,
                    code,
                    message,
                })
            }
            Err(e) => return Err(e),
        }
    }
    Ok((queued, skipped))
}

/// What to generate ideas for.
#[derive(Debug, Clone)]
pub struct GenerateIdeas {
    pub cluster_ids: Vec<Uuid>,
    pub ideas_per_cluster: Option<u32>,
    /// The account's strategy (its `ideas` prompt; carried by the ideas).
    pub strategy_id: Option<Uuid>,
    /// The account's author profile (language and tone; carried by the ideas).
    pub author_profile_id: Option<Uuid>,
}

/// The job that generates ideas.
#[derive(Debug, Clone)]
pub struct IdeasJob {
    pub job_id: Uuid,
    pub clusters: usize,
    pub position: Option<i64>,
    pub replayed: bool,
}

/// Start `auto_generate_ideas`: 1 to 50 clusters of one site the caller
/// can see (404 for others), 1 to 10 ideas each; the ideas' credits are
/// reserved (402 when short) and the ideas actually proposed are charged.
pub async fn auto_generate_ideas(
    planner: Planner<'_>,
    caller: &Caller,
    ctx: &CommandContext,
    input: GenerateIdeas,
) -> Result<IdeasJob, CommandError> {
    let account = caller.account()?;
    let ids: Vec<Uuid> = input
        .cluster_ids
        .iter()
        .copied()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if ids.is_empty() {
        return Err(CommandError::invalid("EMPTY_SELECTION", "no clusters"));
    }
    if ids.len() > MAX_IDEA_CLUSTERS {
        return Err(CommandError::invalid(
            "VALIDATION_ERROR",
            format!("at most {MAX_IDEA_CLUSTERS} clusters at once"),
        ));
    }
    let per = input.ideas_per_cluster.unwrap_or(DEFAULT_IDEAS_PER_CLUSTER);
    let mut clusters = vec![];
    let mut sites = BTreeSet::new();
    for id in &ids {
        let place = match planner.lookup.cluster(account, *id).await? {
            Some(p) if caller.can_see_site(p.site_id) => p,
            _ => return Err(CommandError::not_found("cluster")),
        };
        sites.insert(place.site_id);
        let keywords = planner
            .lookup
            .cluster_keywords(account, *id, IDEA_KEYWORDS)
            .await?;
        clusters.push(json!({
            "cluster_id": id, "sector_id": place.sector_id,
            "keywords": keywords.iter().map(|k| json!({"keyword": k.keyword, "volume": k.volume})).collect::<Vec<_>>(),
        }));
    }
    if !(1..=MAX_IDEAS_PER_CLUSTER).contains(&per) {
        return Err(CommandError::invalid(
            "VALIDATION_ERROR",
            format!("ideas_per_cluster must be 1 to {MAX_IDEAS_PER_CLUSTER}"),
        ));
    }
    if sites.len() != 1 {
        return Err(CommandError::invalid(
            "VALIDATION_ERROR",
            "the clusters must belong to one site",
        ));
    }
    crate::writer::settings::check_choices(
        planner.bus,
        caller,
        input.author_profile_id,
        input.strategy_id,
    )
    .await?;
    caller.require_write()?;
    let site = sites.into_iter().next().unwrap_or_default();
    let (acct, _) = planner.bus.load::<Account>(&account.to_string()).await?;
    let cost = ideas_cost_milli(acct.plan.as_deref(), ids.len() as u64 * u64::from(per));
    let job_input = json!({"site_id": site, "clusters": clusters, "ideas_per_cluster": per,
                           "strategy_id": input.strategy_id, "author_profile_id": input.author_profile_id});
    let (job_id, outs) = crate::jobs::create(
        planner.bus,
        account,
        "auto_generate_ideas",
        job_input,
        cost,
        ctx,
    )
    .await?;
    let job_id = outs
        .iter()
        .find(|o| o.aggregate_type == "job")
        .and_then(|o| Uuid::parse_str(&o.aggregate_id).ok())
        .unwrap_or(job_id);
    Ok(IdeasJob {
        job_id,
        clusters: ids.len(),
        position: outs.iter().filter_map(|o| o.position).max(),
        replayed: outs.iter().any(|o| o.replayed),
    })
}
