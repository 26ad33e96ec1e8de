//! Rules' use cases: create, change, pause (its run cancelled), resume,
//! delete, run now, and the dry run.
//!
//! Anyone of the account who may write (owners, admins, editors of the
//! site) manages a site's rules; viewers read them. Another account's
//! rules, and rules of a site an editor was not granted, are not found.

use super::drive::{End, cancel, end};
use super::fire::{Fired, conditions, fire};
use super::select::{Source, forecast_next, plan_stage};
use super::{Automation, run_context};
use crate::bus::{CommandContext, CommandError, CommandOutcome};
use crate::caller::Caller;
use crate::tenancy::sites::visible_site;
use chrono::{DateTime, Utc};
use igny8_domain::ErrorKind;
use igny8_domain::automation::rule::Firing;
use igny8_domain::automation::schedule::{Schedule, zone};
use igny8_domain::automation::{
    Action, Item, Rule, RuleCommand, RuleDef, RuleStatus, Run, SiteLock, Trigger,
};
use igny8_domain::billing::Account;
use serde_json::Value;
use uuid::Uuid;

/// The rule, when the caller may see it (else 404).
pub async fn rule_scope(
    a: &Automation<'_>,
    caller: &Caller,
    id: Uuid,
) -> Result<Rule, CommandError> {
    let account = caller.account()?;
    let (r, _) = a.bus.load::<Rule>(&id.to_string()).await?;
    match (r.created && !r.deleted, r.account_id, r.site_id) {
        (true, Some(acc), Some(site)) if acc == account && caller.can_see_site(site) => Ok(r),
        _ => Err(CommandError::not_found("rule")),
    }
}

/// A new rule of a site the caller may see (404 otherwise): 422 for a
/// rule that breaks one of its rules (cron, time zone, event types,
/// conditions, stages, budgets).
pub async fn create_rule(
    a: &Automation<'_>,
    caller: &Caller,
    ctx: &CommandContext,
    site_id: Uuid,
    def: RuleDef,
) -> Result<(Uuid, CommandOutcome), CommandError> {
    let (account, _) = visible_site(a.bus, caller, site_id).await?;
    caller.require_write()?;
    let id = match &ctx.idempotency {
        // A retry with the same key names the same rule.
        Some(k) => Uuid::new_v5(&account, format!("rule:{}", k.key).as_bytes()),
        None => Uuid::now_v7(),
    };
    let out = a
        .bus
        .execute::<Rule>(
            &id.to_string(),
            RuleCommand::Create {
                id,
                account_id: account,
                site_id,
                def,
                now: a.clock.now(),
            },
            ctx,
        )
        .await?;
    Ok((id, out))
}

/// Replace a rule's definition (the route merges a PATCH into it).
pub async fn update_rule(
    a: &Automation<'_>,
    caller: &Caller,
    ctx: &CommandContext,
    id: Uuid,
    def: RuleDef,
) -> Result<CommandOutcome, CommandError> {
    rule_scope(a, caller, id).await?;
    caller.require_write()?;
    a.bus
        .execute::<Rule>(
            &id.to_string(),
            RuleCommand::Update {
                def,
                now: a.clock.now(),
            },
            ctx,
        )
        .await
}

/// The run of this rule that holds its site now, if any.
async fn active_run(a: &Automation<'_>, r: &Rule, id: Uuid) -> Result<Option<Uuid>, CommandError> {
    let Some(site) = r.site_id else {
        return Ok(None);
    };
    let (lock, _) = a.bus.load::<SiteLock>(&site.to_string()).await?;
    let Some(holder) = lock.holder else {
        return Ok(None);
    };
    let (run, _) = a.bus.load::<Run>(&holder.to_string()).await?;
    Ok((run.rule_id == Some(id) && !run.finished()).then_some(holder))
}

/// Stop the rule's run under way (its jobs cancelled, lock and budget released).
async fn stop_active(
    a: &Automation<'_>,
    r: &Rule,
    id: Uuid,
    by: &str,
    ctx: &CommandContext,
) -> Result<(), CommandError> {
    if let Some(run) = active_run(a, r, id).await? {
        match cancel(a.bus, run, by, ctx).await {
            Err(CommandError::Domain {
                code: "RUN_FINISHED",
                ..
            }) => {}
            other => other?,
        }
    }
    Ok(())
}

/// Pause: the rule fires no more, and its run under way is cancelled.
pub async fn pause_rule(
    a: &Automation<'_>,
    caller: &Caller,
    ctx: &CommandContext,
    id: Uuid,
) -> Result<CommandOutcome, CommandError> {
    let r = rule_scope(a, caller, id).await?;
    caller.require_write()?;
    let out = a
        .bus
        .execute::<Rule>(&id.to_string(), RuleCommand::Pause, ctx)
        .await?;
    stop_active(a, &r, id, "pause", ctx).await?;
    Ok(out)
}

/// Resume: scheduled again from now (slots passed while paused are not caught up).
pub async fn resume_rule(
    a: &Automation<'_>,
    caller: &Caller,
    ctx: &CommandContext,
    id: Uuid,
) -> Result<CommandOutcome, CommandError> {
    rule_scope(a, caller, id).await?;
    caller.require_write()?;
    a.bus
        .execute::<Rule>(
            &id.to_string(),
            RuleCommand::Resume { now: a.clock.now() },
            ctx,
        )
        .await
}

/// Delete: its run under way is cancelled; its runs stay in the log.
pub async fn delete_rule(
    a: &Automation<'_>,
    caller: &Caller,
    ctx: &CommandContext,
    id: Uuid,
) -> Result<CommandOutcome, CommandError> {
    let r = rule_scope(a, caller, id).await?;
    caller.require_write()?;
    stop_active(a, &r, id, "delete", ctx).await?;
    a.bus
        .execute::<Rule>(&id.to_string(), RuleCommand::Delete, ctx)
        .await
}

/// Run now: 409 RULE_PAUSED, SITE_BUSY (another run holds the site);
/// a run skipped for its conditions or credits is answered as such. A
/// retry with the same Idempotency-Key answers the same run.
pub async fn execute_rule(
    a: &Automation<'_>,
    caller: &Caller,
    ctx: &CommandContext,
    id: Uuid,
) -> Result<Fired, CommandError> {
    let r = rule_scope(a, caller, id).await?;
    caller.require_write()?;
    let run_id = match &ctx.idempotency {
        Some(k) => Uuid::new_v5(&id, format!("manual:{}", k.key).as_bytes()),
        None => Uuid::now_v7(),
    };
    let (existing, _) = a.bus.load::<Run>(&run_id.to_string()).await?;
    if existing.created {
        return Ok(Fired {
            run_id: Some(run_id),
            status: Some(existing.status),
            reason: existing.reason,
            position: None,
        });
    }
    if r.status == RuleStatus::Paused {
        return Err(CommandError::refused(
            ErrorKind::Conflict,
            "RULE_PAUSED",
            "the rule is paused: resume it first",
        ));
    }
    if let Some(site) = r.site_id {
        let (lock, _) = a.bus.load::<SiteLock>(&site.to_string()).await?;
        if let Some(holder) = lock.holder {
            return Err(CommandError::refused(
                ErrorKind::Conflict,
                "SITE_BUSY",
                format!("run {holder} is under way on this site (one run per site at a time)"),
            ));
        }
    }
    let mut c = ctx.clone();
    c.idempotency = None; // the run's id carries it
    fire(a, id, Firing::Manual { run_id }, None, &c).await
}

/// Cancel a run the caller may see: 409 RUN_FINISHED when it has ended.
pub async fn cancel_run(
    a: &Automation<'_>,
    caller: &Caller,
    ctx: &CommandContext,
    run_id: Uuid,
) -> Result<(), CommandError> {
    run_scope(a, caller, run_id).await?;
    caller.require_write()?;
    cancel(a.bus, run_id, &caller.actor(), ctx).await
}

/// The run, when the caller may see it (else 404).
pub async fn run_scope(
    a: &Automation<'_>,
    caller: &Caller,
    run_id: Uuid,
) -> Result<Run, CommandError> {
    let account = caller.account()?;
    let (run, _) = a.bus.load::<Run>(&run_id.to_string()).await?;
    match (run.created, run.account_id, run.site_id) {
        (true, Some(acc), Some(site)) if acc == account && caller.can_see_site(site) => Ok(run),
        _ => Err(CommandError::not_found("run")),
    }
}

/// End a run that cannot go on (its rule or site is gone): as failed.
pub async fn abandon(a: &Automation<'_>, run_id: Uuid, reason: &str) -> Result<(), CommandError> {
    let (run, _) = a.bus.load::<Run>(&run_id.to_string()).await?;
    let (Some(account), Some(rule)) = (run.account_id, run.rule_id) else {
        return Ok(());
    };
    let ctx = run_context(account, rule, run_id);
    end(
        a.bus,
        run_id,
        End::Finish(
            igny8_domain::automation::RunOutcome::Failed,
            Some(reason.into()),
        ),
        &ctx,
    )
    .await
}

/// The next firings (at most `n`, up to `until`) of an active schedule
/// rule; none for other triggers or a paused rule.
pub fn next_firings(r: &Rule, until: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
    let (Some(def), RuleStatus::Active, Some(first)) = (&r.def, r.status, r.next_slot) else {
        return vec![];
    };
    let (Trigger::Schedule { cron }, Ok(tz)) = (&def.trigger, zone(&def.timezone)) else {
        return vec![];
    };
    let Ok(s) = Schedule::new(cron, tz) else {
        return vec![];
    };
    if first > until || n == 0 {
        return vec![];
    }
    let mut out = vec![first];
    out.extend(s.between(first, until, n - 1));
    out
}

/// One stage of a dry run.
#[derive(Debug, Clone)]
pub struct DryRunStage {
    pub stage: usize,
    pub action: Action,
    /// Items it would take (their ids when they exist already).
    pub items: usize,
    pub item_ids: Vec<Uuid>,
    /// Milli-credits its jobs would reserve.
    pub credits: i64,
    /// Items the budget would leave.
    pub left_for_budget: usize,
    /// What it would make (the next stage's items).
    pub makes: usize,
    /// The run would stop for its budget before this stage.
    pub not_reached: bool,
}

/// A condition as read now.
#[derive(Debug, Clone)]
pub struct ConditionCheck {
    pub field: String,
    pub operator: String,
    pub value: Value,
    pub actual: Value,
    pub held: bool,
}

/// What a run fired now would do.
#[derive(Debug, Clone)]
pub struct DryRun {
    pub rule_id: Uuid,
    pub at: DateTime<Utc>,
    pub would_run: bool,
    pub status: RuleStatus,
    pub conditions: Vec<ConditionCheck>,
    /// Milli-credits: the rule's allotment now, the account's available
    /// credits, and what the run would reserve (the smaller).
    pub allotted: i64,
    pub available: i64,
    pub reserved: i64,
    pub stages: Vec<DryRunStage>,
    pub credits: i64,
    pub stops_for_budget: bool,
    /// The posts a publish stage would plan: (content, slot).
    pub posts: Vec<(Option<Uuid>, Option<DateTime<Utc>>)>,
    pub next_firings: Vec<DateTime<Utc>>,
}

/// Read the conditions' JSON record as checks.
pub fn checks(v: &Value) -> Vec<ConditionCheck> {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|c| ConditionCheck {
            field: c["field"].as_str().unwrap_or("").to_string(),
            operator: c["operator"].as_str().unwrap_or("").to_string(),
            value: c["value"].clone(),
            actual: c["actual"].clone(),
            held: c["held"].as_bool().unwrap_or(false),
        })
        .collect()
}

/// A dry run: what a run fired now would take and charge, stage by stage,
/// read with the same selection code as a run — and, for a schedule, its
/// firings over the next `days` days. Nothing is written.
pub async fn dry_run(
    a: &Automation<'_>,
    caller: &Caller,
    id: Uuid,
    days: u32,
) -> Result<DryRun, CommandError> {
    let r = rule_scope(a, caller, id).await?;
    let (Some(def), Some(account), Some(site)) = (&r.def, r.account_id, r.site_id) else {
        return Err(CommandError::not_found("rule"));
    };
    // What the caller wrote just before (the tasks it queued) must be in
    // the read models the forecast reads: wait for them (up to 5 s).
    let head = a.bus.feed().head().await.map_err(CommandError::db)?;
    for _ in 0..20 {
        if a.lookup.caught_up(head).await? {
            break;
        }
    }
    let now = a.clock.now();
    let tz = zone(&def.timezone).unwrap_or(chrono_tz::Tz::UTC);
    let (checked, held) = conditions(a, &r, def.trigger.kind(), None).await?;
    let (acct, _) = a.bus.load::<Account>(&account.to_string()).await?;
    let allotted = r.allotment(def, now.with_timezone(&tz).date_naive());
    let budget = allotted.min(acct.available().max(0));
    let mut left = budget;
    let mut stages = vec![];
    let mut before: Option<Source> = None;
    let mut contents = 0usize;
    let mut total = 0i64;
    let mut stops = false;
    let mut posts = vec![];
    for (i, stage) in def.stages.iter().enumerate() {
        if stops {
            stages.push(DryRunStage {
                stage: i,
                action: stage.action,
                items: 0,
                item_ids: vec![],
                credits: 0,
                left_for_budget: 0,
                makes: 0,
                not_reached: true,
            });
            continue;
        }
        let source = super::select::source_of(&def.stages, i, before.take());
        let plan = plan_stage(
            a,
            account,
            site,
            acct.plan.as_deref(),
            stage,
            source,
            left,
            now,
            tz,
        )
        .await?;
        let cost = plan.cost();
        left -= cost;
        total += cost;
        stops = plan.budget_stop();
        if (stage.action.takes() == Item::Content || stage.action.makes() == Item::Content)
            && stage.action != Action::GenerateImages
        {
            contents = plan.taken.len();
        }
        if stage.action == Action::Publish {
            posts.extend(plan.taken.iter().map(|c| (c.id, c.slot)));
        }
        let next = forecast_next(stage.action, plan.makes, contents);
        stages.push(DryRunStage {
            stage: i,
            action: stage.action,
            items: plan.taken.len(),
            item_ids: plan.ids(),
            credits: cost,
            left_for_budget: plan.left_for_budget.len(),
            makes: next,
            not_reached: false,
        });
        before = Some(Source::Forecast(next));
    }
    let until = now + chrono::Duration::days(i64::from(days));
    Ok(DryRun {
        rule_id: id,
        at: now,
        would_run: held && r.status == RuleStatus::Active,
        status: r.status,
        conditions: checks(&checked),
        allotted,
        available: acct.available(),
        reserved: budget,
        stages,
        credits: total,
        stops_for_budget: stops,
        posts,
        next_firings: next_firings(&r, until, 1000),
    })
}
