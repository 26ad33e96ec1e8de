//! Which items a stage takes, at what expected cost — one function for a
//! run and for its dry run, so the forecast is what the run would do.
//!
//! A stage takes its items from the stage before it when that stage makes
//! what it takes (ideas → tasks → articles …), else from the read model
//! (the site's unclustered keywords, new ideas, queued tasks, …), at most
//! `batch_size`, oldest first. Items are priced as the jobs will reserve
//! them (the plan's prices); they are taken in order while the run's
//! budget covers them: the first one it does not cover and every one after
//! it are left, recorded with the reason `budget`, and the run stops after
//! this stage.

use super::{Automation, TaskPick};
use crate::bus::CommandError;
use crate::writer::tasks::article_reservation;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use igny8_domain::automation::schedule::{parse_hhmm, publish_slots};
use igny8_domain::automation::{Action, Item, SkippedItem, Stage};
use igny8_domain::billing::{
    clustering_cost_milli, ideas_cost_milli, image_cost_milli, image_prompts_cost_milli,
};
use igny8_domain::planner::auto_k;
use uuid::Uuid;

/// The target an article is estimated at when its task is not known yet
/// (a dry run forecasting tasks that ideas will make).
pub const FORECAST_WORDS: u32 = 1500;
/// In-article images per content when a stage names none.
pub const DEFAULT_IN_ARTICLE: u32 = 2;

/// Where a stage's items come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// The site's read model.
    ReadModel,
    /// What the stage before made (these ids).
    Chained(Vec<Uuid>),
    /// A dry run: the stage before would make this many (ids unknown).
    Forecast(usize),
}

/// One item a stage may take.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// `None` in a forecast.
    pub id: Option<Uuid>,
    /// Milli-credits its job will reserve for it.
    pub cost: i64,
    /// A clustering stage's sector: its keywords.
    pub members: Vec<Uuid>,
    /// A publish stage's slot (when the stage has slots).
    pub slot: Option<DateTime<Utc>>,
}

/// What a stage takes and leaves.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub taken: Vec<Candidate>,
    /// Left for the budget (with their ids, when known).
    pub left_for_budget: Vec<Candidate>,
    /// What it would make (a forecast of the next stage's items).
    pub makes: usize,
}

impl Plan {
    pub fn cost(&self) -> i64 {
        self.taken.iter().map(|c| c.cost).sum()
    }
    pub fn ids(&self) -> Vec<Uuid> {
        self.taken.iter().filter_map(|c| c.id).collect()
    }
    pub fn skipped(&self) -> Vec<SkippedItem> {
        self.left_for_budget
            .iter()
            .filter_map(|c| {
                c.id.map(|id| SkippedItem {
                    id,
                    reason: "budget".into(),
                })
            })
            .collect()
    }
    pub fn budget_stop(&self) -> bool {
        !self.left_for_budget.is_empty()
    }
}

/// The source of stage `i`: the stage before's outputs when it makes what
/// this one takes.
pub fn source_of(stages: &[Stage], i: usize, before: Option<Source>) -> Source {
    match (i.checked_sub(1).map(|p| stages[p].action), before) {
        (Some(prev), Some(s)) if prev.makes() == stages[i].action.takes() => s,
        _ => Source::ReadModel,
    }
}

/// What a stage's setting says, with its default.
fn in_article(stage: &Stage) -> u32 {
    stage
        .number("in_article_images")
        .map_or(DEFAULT_IN_ARTICLE, |n| n as u32)
}

fn ideas_per_cluster(stage: &Stage) -> u64 {
    stage.number("ideas_per_cluster").unwrap_or(3)
}

/// Plan stage `stage` of a run of `site`: its candidates from `source`,
/// priced at `plan`'s prices, taken while `left` milli-credits cover them.
#[allow(clippy::too_many_arguments)]
pub async fn plan_stage(
    a: &Automation<'_>,
    account: Uuid,
    site: Uuid,
    plan: Option<&str>,
    stage: &Stage,
    source: Source,
    left: i64,
    now: DateTime<Utc>,
    tz: Tz,
) -> Result<Plan, CommandError> {
    let batch = stage.batch_size as usize;
    let lookup = a.lookup;
    let plain = |ids: Vec<Uuid>, cost: i64| -> Vec<Candidate> {
        ids.into_iter()
            .map(|id| Candidate {
                id: Some(id),
                cost,
                members: vec![],
                slot: None,
            })
            .collect()
    };
    let anonymous = |n: usize, cost: i64| -> Vec<Candidate> {
        (0..n)
            .map(|_| Candidate {
                id: None,
                cost,
                members: vec![],
                slot: None,
            })
            .collect()
    };
    let ids_of = |source: &Source| match source {
        Source::Chained(ids) => Some(ids.iter().copied().take(batch).collect::<Vec<_>>()),
        _ => None,
    };
    let mut candidates: Vec<Candidate> = match stage.action {
        Action::AutoCluster => {
            // One job per sector, on its keywords in no cluster.
            let price = clustering_cost_milli(plan);
            lookup
                .unclustered(account, site, batch)
                .await?
                .into_iter()
                .filter(|(_, kws)| !kws.is_empty())
                .map(|(sector, kws)| Candidate {
                    id: Some(sector),
                    cost: price,
                    members: kws,
                    slot: None,
                })
                .collect()
        }
        Action::GenerateIdeas => {
            let cost = ideas_cost_milli(plan, ideas_per_cluster(stage));
            match &source {
                Source::Forecast(n) => anonymous((*n).min(batch), cost),
                s => plain(
                    match ids_of(s) {
                        Some(ids) => ids,
                        None => lookup.clusters_without_ideas(account, site, batch).await?,
                    },
                    cost,
                ),
            }
        }
        Action::QueueIdeasToWriter => match &source {
            Source::Forecast(n) => anonymous((*n).min(batch), 0),
            s => plain(
                match ids_of(s) {
                    Some(ids) => ids,
                    None => lookup.new_ideas(account, site, batch).await?,
                },
                0,
            ),
        },
        Action::GenerateContent => {
            let priced = |t: TaskPick| Candidate {
                id: Some(t.task_id),
                cost: article_reservation(plan, t.target_word_count),
                members: vec![],
                slot: None,
            };
            match &source {
                Source::Forecast(n) => {
                    anonymous((*n).min(batch), article_reservation(plan, FORECAST_WORDS))
                }
                s => match ids_of(s) {
                    Some(ids) => {
                        // In the order the stage before made them, from the
                        // tasks themselves (the read model may not show them yet).
                        let mut out = vec![];
                        for id in ids {
                            let (t, _) = a
                                .bus
                                .load::<igny8_domain::writer::Task>(&id.to_string())
                                .await?;
                            if let Some(d) = t.data.filter(|_| t.account_id == Some(account)) {
                                out.push(priced(TaskPick {
                                    task_id: id,
                                    target_word_count: d.target_word_count,
                                }));
                            }
                        }
                        out
                    }
                    None => lookup
                        .queued_tasks(account, site, batch)
                        .await?
                        .into_iter()
                        .map(priced)
                        .collect(),
                },
            }
        }
        Action::ExtractImagePrompts => {
            let cost = image_prompts_cost_milli(plan, 1 + u64::from(in_article(stage)));
            match &source {
                Source::Forecast(n) => anonymous((*n).min(batch), cost),
                s => plain(
                    match ids_of(s) {
                        Some(ids) => ids,
                        None => {
                            lookup
                                .contents_without_prompts(account, site, batch)
                                .await?
                        }
                    },
                    cost,
                ),
            }
        }
        Action::GenerateImages => {
            let cost = image_cost_milli(plan, stage.text("quality") == Some("premium"));
            match &source {
                Source::Forecast(n) => anonymous((*n).min(batch), cost),
                s => plain(
                    match ids_of(s) {
                        Some(ids) => ids,
                        None => {
                            lookup
                                .prompts_without_images(account, site, None, batch)
                                .await?
                        }
                    },
                    cost,
                ),
            }
        }
        Action::Publish => match &source {
            Source::Forecast(n) => anonymous((*n).min(batch), 0),
            s => plain(
                match ids_of(s) {
                    Some(ids) => ids,
                    None => lookup.publishable(account, site, batch).await?,
                },
                0,
            ),
        },
    };
    candidates.truncate(batch);
    // Publish slots: the next free ones in the rule's time zone.
    if stage.action == Action::Publish {
        let times: Vec<_> = stage
            .list("slots")
            .iter()
            .filter_map(|t| parse_hhmm(t))
            .collect();
        if !times.is_empty() {
            let taken = lookup.planned_posts(account, site, now).await?;
            let wanted = candidates.len() + taken.len();
            let free: Vec<DateTime<Utc>> = publish_slots(now, tz, &times, wanted)
                .into_iter()
                .filter(|s| !taken.contains(s))
                .collect();
            for (c, s) in candidates.iter_mut().zip(free) {
                c.slot = Some(s);
            }
        }
    }
    let mut out = Plan::default();
    let mut spent = 0i64;
    for c in candidates {
        if out.left_for_budget.is_empty() && spent + c.cost <= left {
            spent += c.cost;
            out.taken.push(c);
        } else {
            out.left_for_budget.push(c);
        }
    }
    out.makes = match stage.action {
        Action::AutoCluster => out
            .taken
            .iter()
            .map(|c| {
                stage
                    .number("num_clusters")
                    .map_or(auto_k(c.members.len()), |k| {
                        (k as usize).min(c.members.len())
                    })
            })
            .sum(),
        Action::GenerateIdeas => out.taken.len() * ideas_per_cluster(stage) as usize,
        Action::ExtractImagePrompts => out.taken.len() * (1 + in_article(stage) as usize),
        _ => out.taken.len(),
    };
    Ok(out)
}

/// The next stage's items in a forecast: what this one makes, except that
/// images land in the contents they illustrate.
pub fn forecast_next(action: Action, makes: usize, contents: usize) -> usize {
    if action.makes() == Item::Content && action == Action::GenerateImages {
        contents
    } else {
        makes
    }
}
