//! A firing: one commit that records it on the rule (so the slot, the
//! event burst or the request fires at most once) and starts its run —
//! with the site's lock and the run's budget reserved in the same commit —
//! or records the run as skipped (conditions not met, the site busy, no
//! credits). Nothing else is written by a firing.

use super::{Automation, budget_reservation};
use crate::bus::{CommandContext, CommandError};
use crate::uow::{UnitOfWork, retry_hot};
use igny8_domain::automation::rule::Firing;
use igny8_domain::automation::run::RunOrigin;
use igny8_domain::automation::{
    Rule, RuleCommand, RuleEvent, Run, RunCommand, RunStatus, SiteLock, SiteLockCommand,
};
use igny8_domain::billing::{Account, AccountCommand, MILLI};
use serde_json::{Value, json};
use uuid::Uuid;

/// What a firing did.
#[derive(Debug, Clone)]
pub struct Fired {
    /// The run it started or skipped (`None`: missed slots skipped, no run).
    pub run_id: Option<Uuid>,
    pub status: Option<RunStatus>,
    pub reason: Option<String>,
    pub position: Option<i64>,
}

/// The conditions of a rule read now: `[{field, operator, value, actual, held}]`
/// and whether all held.
pub async fn conditions(
    a: &Automation<'_>,
    rule: &Rule,
    trigger: &str,
    event_type: Option<&str>,
) -> Result<(Value, bool), CommandError> {
    let (Some(def), Some(account), Some(site)) = (&rule.def, rule.account_id, rule.site_id) else {
        return Err(CommandError::not_found("rule"));
    };
    if def.conditions.is_empty() {
        return Ok((json!([]), true));
    }
    let counts = a.lookup.counts(account, site).await?;
    let (acct, _) = a.bus.load::<Account>(&account.to_string()).await?;
    let mut out = vec![];
    let mut all = true;
    for c in &def.conditions {
        let actual = match c.field.as_str() {
            "keywords" => json!(counts.keywords),
            "unclustered_keywords" => json!(counts.unclustered_keywords),
            "clusters" => json!(counts.clusters),
            "new_ideas" => json!(counts.new_ideas),
            "queued_tasks" => json!(counts.queued_tasks),
            "draft_content" => json!(counts.draft_content),
            "review_content" => json!(counts.review_content),
            "approved_content" => json!(counts.approved_content),
            "published_content" => json!(counts.published_content),
            "available_credits" => json!(acct.available() as f64 / MILLI as f64),
            "trigger" => json!(trigger),
            "event_type" => json!(event_type),
            "site_industry" => json!(counts.industry),
            _ => Value::Null,
        };
        let held = c.holds(&actual);
        all &= held;
        out.push(json!({"field": c.field, "operator": c.operator, "value": c.value, "actual": actual, "held": held}));
    }
    Ok((Value::Array(out), all))
}

/// What the rule's `Fire` decided, for the run's start or skip.
struct Decided {
    rule_id: Uuid,
    rule: Rule,
    fired: Option<RuleEvent>,
    checked: Value,
    held: bool,
}

/// Decide the rule's `Fire` in `uow` (refused: nothing staged).
async fn decide_fire(
    uow: &mut UnitOfWork<'_>,
    rule_id: Uuid,
    firing: &Firing,
    now: chrono::DateTime<chrono::Utc>,
    checked: Value,
    held: bool,
) -> Result<Decided, CommandError> {
    let rid = rule_id.to_string();
    let events = uow
        .execute::<Rule>(
            &rid,
            RuleCommand::Fire {
                firing: firing.clone(),
                now,
            },
        )
        .await?;
    Ok(Decided {
        rule_id,
        rule: uow.state(&rid).await?,
        fired: events
            .into_iter()
            .find(|e| matches!(e, RuleEvent::RuleFired { .. })),
        checked,
        held,
    })
}

/// Stage the run a firing decided — started with the site's lock and its
/// budget reserved, or skipped with the reason — and say what it is.
async fn start_or_skip(uow: &mut UnitOfWork<'_>, d: &Decided) -> Result<Fired, CommandError> {
    let (Some(def), Some(account), Some(site)) = (&d.rule.def, d.rule.account_id, d.rule.site_id)
    else {
        return Err(CommandError::not_found("rule"));
    };
    let Some(RuleEvent::RuleFired {
        run_id,
        trigger,
        slot,
        burst,
        budget,
        day,
        ..
    }) = d.fired.clone()
    else {
        // Missed slots skipped: no run.
        return Ok(Fired {
            run_id: None,
            status: None,
            reason: Some("missed slots skipped (catch_up: skip)".into()),
            position: None,
        });
    };
    let origin = RunOrigin {
        account_id: account,
        site_id: site,
        rule_id: d.rule_id,
        trigger,
        slot,
        burst,
        day,
        allotted: budget,
    };
    let run_key = run_id.to_string();
    let skip = |reason: &str| RunCommand::Skip {
        origin: origin.clone(),
        reason: reason.to_string(),
        conditions: d.checked.clone(),
    };
    let lock: SiteLock = uow.state(&site.to_string()).await?;
    let command = if !d.held {
        skip("conditions_not_met")
    } else if lock.holder.is_some_and(|h| h != run_id) {
        skip("site_busy")
    } else if budget == 0 && def.max_credits_per_run > 0 {
        // The day's cap is spent (a rule capped at 0 per run runs free stages only).
        skip("daily_budget_spent")
    } else {
        let reserve = if budget > 0 {
            let acct: Account = uow.state(&account.to_string()).await?;
            budget.min(acct.available().max(0))
        } else {
            0
        };
        if budget > 0 && reserve == 0 {
            skip("no_credits")
        } else {
            uow.execute::<SiteLock>(&site.to_string(), SiteLockCommand::Acquire { run_id })
                .await?;
            if reserve > 0 {
                uow.execute::<Account>(
                    &account.to_string(),
                    AccountCommand::Reserve {
                        reservation_id: budget_reservation(run_id),
                        amount: reserve,
                        reason: format!("automation run of rule {}", d.rule_id),
                    },
                )
                .await?;
            }
            RunCommand::Start {
                origin: origin.clone(),
                stages: def.stages.clone(),
                budget: reserve,
                conditions: d.checked.clone(),
            }
        }
    };
    uow.execute::<Run>(&run_key, command).await?;
    let run: Run = uow.state(&run_key).await?;
    Ok(Fired {
        run_id: Some(run_id),
        status: Some(run.status),
        reason: run.reason,
        position: None,
    })
}

/// Fire `rule_id` as `firing`: the rule's `Fire` and the run's start (or
/// skip) in one commit. `event_type`: the event that settled an event
/// burst. 409 SLOT_HANDLED when this slot or burst fired already,
/// RULE_PAUSED, 404 for a deleted rule.
pub async fn fire(
    a: &Automation<'_>,
    rule_id: Uuid,
    firing: Firing,
    event_type: Option<&str>,
    ctx: &CommandContext,
) -> Result<Fired, CommandError> {
    let now = a.clock.now();
    let (rule, _) = a.bus.load::<Rule>(&rule_id.to_string()).await?;
    let (checked, held) = conditions(a, &rule, trigger_of(&firing), event_type).await?;
    // What the attempt that committed decided.
    let decided = std::sync::Mutex::new(None);
    let outcomes = retry_hot(|| {
        let (checked, decided, firing) = (checked.clone(), &decided, &firing);
        async move {
            let mut uow = a.bus.unit(ctx);
            let d = decide_fire(&mut uow, rule_id, firing, now, checked, held).await?;
            let f = start_or_skip(&mut uow, &d).await?;
            *decided.lock().unwrap_or_else(|e| e.into_inner()) = Some(f);
            uow.commit().await
        }
    })
    .await?;
    let mut fired = decided
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .ok_or_else(|| CommandError::internal("no firing decided"))?;
    fired.position = outcomes.iter().filter_map(|o| o.position).max();
    Ok(fired)
}

fn trigger_of(firing: &Firing) -> &'static str {
    match firing {
        Firing::Schedule { .. } => "schedule",
        Firing::Event { .. } => "event",
        Firing::Manual { .. } => "manual",
    }
}

/// One firing the scheduler found due.
#[derive(Debug, Clone)]
pub struct DueFiring {
    pub rule_id: Uuid,
    pub firing: Firing,
    /// The event that settled an event burst.
    pub event_type: Option<String>,
}

/// Fire many rules in one unit of work — their rules, runs, site locks and
/// accounts loaded in a few statements, everything appended in one — the
/// scheduler's way through a minute when thousands of rules are due. Each
/// firing decides exactly as [`fire`] does: a rule whose slot fired already
/// is answered SLOT_HANDLED (and nothing of it is staged) while the others
/// go on; if another writer changed any of the aggregates first, the batch
/// is decided again on fresh state; any other failure of a firing's run
/// falls back to [`fire`] one rule at a time, so one rule never stops the
/// others. A firing is still one commit of the rule's slot with its run.
pub async fn fire_batch(
    a: &Automation<'_>,
    due: &[DueFiring],
    ctx: &CommandContext,
) -> Vec<(Uuid, Result<Fired, CommandError>)> {
    let mut answered: Vec<(Uuid, Result<Fired, CommandError>)> = vec![];
    let mut left: Vec<&DueFiring> = due.iter().collect();
    for attempt in 0..8u64 {
        match try_batch(a, &left, ctx).await {
            Ok(Some(done)) => {
                answered.extend(done);
                left.clear();
                break;
            }
            Ok(None) => {
                // Another writer first: decide again (those it fired are
                // SLOT_HANDLED now).
                let pause = 5 * (attempt + 1) + u64::from(Uuid::new_v4().as_bytes()[0] % 10);
                tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
            }
            Err(CommandError::Unavailable(m)) => {
                answered.extend(
                    left.iter()
                        .map(|d| (d.rule_id, Err(CommandError::Unavailable(m.clone())))),
                );
                left.clear();
                break;
            }
            Err(e) => {
                tracing::debug!(error = %e, "a batch of firings falls back to one at a time");
                break;
            }
        }
    }
    for d in left {
        let r = fire(a, d.rule_id, d.firing.clone(), d.event_type.as_deref(), ctx).await;
        answered.push((d.rule_id, r));
    }
    answered
}

/// One attempt at a batch: `Ok(None)` when another writer came first.
async fn try_batch(
    a: &Automation<'_>,
    due: &[&DueFiring],
    ctx: &CommandContext,
) -> Result<Option<Vec<(Uuid, Result<Fired, CommandError>)>>, CommandError> {
    let now = a.clock.now();
    let mut uow = a.bus.unit(ctx);
    let ids: Vec<String> = due.iter().map(|d| d.rule_id.to_string()).collect();
    uow.preload::<Rule>(&ids).await?;
    let mut out = vec![];
    let mut decided = vec![];
    for d in due {
        let rule: Rule = uow.state(&d.rule_id.to_string()).await?;
        if !rule.created {
            out.push((d.rule_id, Err(CommandError::not_found("rule"))));
            continue;
        }
        let (checked, held) =
            conditions(a, &rule, trigger_of(&d.firing), d.event_type.as_deref()).await?;
        match decide_fire(&mut uow, d.rule_id, &d.firing, now, checked, held).await {
            Ok(x) => decided.push(x),
            Err(e @ CommandError::Domain { .. }) => out.push((d.rule_id, Err(e))),
            Err(e) => return Err(e),
        }
    }
    // The runs (new), the sites' locks and the accounts that will reserve.
    let mut runs = vec![];
    let mut sites = vec![];
    let mut accounts = vec![];
    for d in &decided {
        if let Some(RuleEvent::RuleFired { run_id, budget, .. }) = &d.fired {
            runs.push(run_id.to_string());
            sites.extend(d.rule.site_id.map(|s| s.to_string()));
            if *budget > 0 {
                accounts.extend(d.rule.account_id.map(|s| s.to_string()));
            }
        }
    }
    uow.preload::<Run>(&runs).await?;
    uow.preload::<SiteLock>(&sites).await?;
    uow.preload::<Account>(&accounts).await?;
    for d in &decided {
        let fired = start_or_skip(&mut uow, d).await?;
        out.push((d.rule_id, Ok(fired)));
    }
    Ok(uow.commit_unread().await?.then_some(out))
}
