//! Billing commands: open an account, grant and spend credits, and any
//! other account command (reservations go through `crate::jobs`). Thin
//! typed entry points over [`CommandBus::execute`]; the rules live in
//! `igny8_domain::billing`. Amounts are milli-credits.

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
