//! Billing: the account commands (open, grant, spend; reservations go
//! through `crate::jobs`) and the use cases over them — the caller's
//! balance and subscription, spend, operator grants and plan changes. The
//! rules live in `igny8_domain::billing`. Amounts are milli-credits.

use crate::bus::{CommandBus, CommandContext, CommandError, CommandOutcome};
use igny8_domain::billing::{Account, AccountCommand};
use uuid::Uuid;

/// One command on an account's credits.
pub async fn account(
    bus: &CommandBus,
    id: Uuid,
    command: AccountCommand,
    ctx: &CommandContext,
) -> Result<CommandOutcome, CommandError> {
    bus.execute::<Account>(&id.to_string(), command, ctx).await
}

pub async fn open_account(
    bus: &CommandBus,
    id: Uuid,
    name: String,
    ctx: &CommandContext,
) -> Result<CommandOutcome, CommandError> {
    account(bus, id, AccountCommand::Open { name }, ctx).await
}

pub async fn grant_credits(
    bus: &CommandBus,
    id: Uuid,
    amount: i64,
    reason: String,
    ctx: &CommandContext,
) -> Result<CommandOutcome, CommandError> {
    account(
        bus,
        id,
        AccountCommand::GrantCredits { amount, reason },
        ctx,
    )
    .await
}

pub async fn spend_credits(
    bus: &CommandBus,
    id: Uuid,
    amount: i64,
    reason: String,
    ctx: &CommandContext,
) -> Result<CommandOutcome, CommandError> {
    account(
        bus,
        id,
        AccountCommand::SpendCredits { amount, reason },
        ctx,
    )
    .await
}

// --- use cases -------------------------------------------------------------

use crate::caller::Caller;

/// The caller's credit account, as it is now (read from its events).
pub async fn balance(bus: &CommandBus, caller: &Caller) -> Result<(Account, u64), CommandError> {
    let id = caller.account()?;
    let (a, version) = bus.load::<Account>(&id.to_string()).await?;
    if !a.opened {
        return Err(CommandError::not_found("account"));
    }
    Ok((a, version))
}

/// The account's plan and period (owners and admins).
pub async fn subscription(bus: &CommandBus, caller: &Caller) -> Result<Account, CommandError> {
    caller.require_billing()?;
    Ok(balance(bus, caller).await?.0)
}

/// Spend credits of the caller's account (never below zero: 402).
pub async fn spend(
    bus: &CommandBus,
    caller: &Caller,
    ctx: &CommandContext,
    amount_milli: i64,
    reason: String,
) -> Result<CommandOutcome, CommandError> {
    caller.require_write()?;
    spend_credits(bus, caller.account()?, amount_milli, reason, ctx).await
}

/// Grant credits to an account (operators only).
pub async fn grant(
    bus: &CommandBus,
    caller: &Caller,
    ctx: &CommandContext,
    account_id: Uuid,
    amount_milli: i64,
    reason: String,
) -> Result<CommandOutcome, CommandError> {
    caller.require_operator()?;
    let mut ctx = ctx.clone();
    ctx.account_id = Some(account_id.to_string());
    grant_credits(bus, account_id, amount_milli, reason, &ctx).await
}

/// Move the caller's account to another plan (operators only): new limits,
/// a new period and its included credits, in one commit. Answers the
/// account's outcome (an unchanged plan writes nothing).
pub async fn change_plan(
    bus: &CommandBus,
    caller: &Caller,
    ctx: &CommandContext,
    plan: &str,
) -> Result<CommandOutcome, CommandError> {
    caller.require_operator()?;
    if ctx.expected_version.is_some() {
        return Err(CommandError::invalid(
            "VALIDATION_ERROR",
            "ChangePlan changes several aggregates and takes no expected_version",
        ));
    }
    let account = caller.account()?;
    let outs = crate::tenancy::change_plan(bus, account, plan, ctx).await?;
    // An idempotent replay carries only the first aggregate's outcome.
    let pick = outs
        .iter()
        .position(|o| o.aggregate_type == "account")
        .unwrap_or(0);
    if let Some(o) = outs.into_iter().nth(pick) {
        return Ok(o);
    }
    let (_, version) = bus.load::<Account>(&account.to_string()).await?;
    Ok(CommandOutcome {
        aggregate_type: "account".into(),
        aggregate_id: account.to_string(),
        version: version as i64,
        position: None,
        events: vec![],
        replayed: false,
    })
}

/// The account command that holds `amount` milli-credits under
/// `reservation_id` for a job: a new reservation from what is available,
/// or — when the command runs on a budget (`ctx.funding`, an automation
/// run's) — a transfer out of that budget, so a run's jobs never take more
/// than the run was given.
pub fn hold(
    ctx: &crate::bus::CommandContext,
    reservation_id: String,
    amount: i64,
    reason: &str,
) -> igny8_domain::billing::AccountCommand {
    use igny8_domain::billing::AccountCommand;
    match &ctx.funding {
        Some(from) => AccountCommand::Transfer {
            from: from.clone(),
            reservation_id,
            amount,
            reason: reason.to_string(),
        },
        None => AccountCommand::Reserve {
            reservation_id,
            amount,
            reason: reason.to_string(),
        },
    }
}
