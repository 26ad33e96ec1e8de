//! A firing: one commit that records it on the rule (so the slot, the
//! event burst or the request fires at most once) and starts its run —
//! with the site's lock and the run's budget reserved in the same commit —
//! or records the run as skipped (conditions not met, the site busy, no
//! credits). Nothing else is written by a firing.

use super::{Automation, budget_reservation};
use crate::bus::{CommandContext, CommandError, CommandOutcome};
use crate::uow::retry_hot;
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
    let rid = rule_id.to_string();
    let now = a.clock.now();
    let (rule, _) = a.bus.load::<Rule>(&rid).await?;
    let trigger = match &firing {
        Firing::Schedule { .. } => "schedule",
        Firing::Event { .. } => "event",
        Firing::Manual { .. } => "manual",
    };
    let (checked, held) = conditions(a, &rule, trigger, event_type).await?;
    let outcomes = retry_hot(|| async {
        let mut uow = a.bus.unit(ctx);
        let events = uow
            .execute::<Rule>(
                &rid,
                RuleCommand::Fire {
                    firing: firing.clone(),
                    now,
                },
            )
            .await?;
        let rule: Rule = uow.state(&rid).await?;
        let (Some(def), Some(account), Some(site)) = (&rule.def, rule.account_id, rule.site_id)
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
        }) = events
            .iter()
            .find(|e| matches!(e, RuleEvent::RuleFired { .. }))
            .cloned()
        else {
            return uow.commit().await; // missed slots skipped: no run
        };
        let origin = RunOrigin {
            account_id: account,
            site_id: site,
            rule_id,
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
            conditions: checked.clone(),
        };
        if !held {
            uow.execute::<Run>(&run_key, skip("conditions_not_met"))
                .await?;
            return uow.commit().await;
        }
        let lock: SiteLock = uow.state(&site.to_string()).await?;
        if lock.holder.is_some_and(|h| h != run_id) {
            uow.execute::<Run>(&run_key, skip("site_busy")).await?;
            return uow.commit().await;
        }
        if budget == 0 && def.max_credits_per_run > 0 {
            // The day's cap is spent (a rule capped at 0 per run runs free stages only).
            uow.execute::<Run>(&run_key, skip("daily_budget_spent"))
                .await?;
            return uow.commit().await;
        }
        let acct: Account = uow.state(&account.to_string()).await?;
        let reserve = budget.min(acct.available().max(0));
        if budget > 0 && reserve == 0 {
            uow.execute::<Run>(&run_key, skip("no_credits")).await?;
            return uow.commit().await;
        }
        uow.execute::<SiteLock>(&site.to_string(), SiteLockCommand::Acquire { run_id })
            .await?;
        if reserve > 0 {
            uow.execute::<Account>(
                &account.to_string(),
                AccountCommand::Reserve {
                    reservation_id: budget_reservation(run_id),
                    amount: reserve,
                    reason: format!("automation run of rule {rule_id}"),
                },
            )
            .await?;
        }
        uow.execute::<Run>(
            &run_key,
            RunCommand::Start {
                origin: origin.clone(),
                stages: def.stages.clone(),
                budget: reserve,
                conditions: checked.clone(),
            },
        )
        .await?;
        uow.commit().await
    })
    .await?;
    fired(a, &outcomes).await
}

async fn fired(a: &Automation<'_>, outcomes: &[CommandOutcome]) -> Result<Fired, CommandError> {
    let run = outcomes
        .iter()
        .find(|o| o.aggregate_type == "automation_run");
    let Some(run) = run else {
        return Ok(Fired {
            run_id: None,
            status: None,
            reason: Some("missed slots skipped (catch_up: skip)".into()),
            position: outcomes.iter().filter_map(|o| o.position).max(),
        });
    };
    let id = Uuid::parse_str(&run.aggregate_id).map_err(CommandError::internal)?;
    let (r, _) = a.bus.load::<Run>(&run.aggregate_id).await?;
    Ok(Fired {
        run_id: Some(id),
        status: Some(r.status),
        reason: r.reason,
        position: outcomes.iter().filter_map(|o| o.position).max(),
    })
}
