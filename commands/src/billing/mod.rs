//! Billing commands: open an account, grant and spend credits.
//! Thin typed entry points over [`CommandBus::execute`]; the rules live in
//! `igny8_domain::billing`.

use crate::bus::{CommandBus, CommandContext, CommandError, CommandOutcome};
use igny8_domain::billing::{Account, AccountCommand};
use uuid::Uuid;

pub async fn open_account(
    bus: &CommandBus,
    id: Uuid,
    name: String,
    ctx: &CommandContext,
) -> Result<CommandOutcome, CommandError> {
    bus.execute::<Account>(&id.to_string(), AccountCommand::Open { name }, ctx)
        .await
}

pub async fn grant_credits(
    bus: &CommandBus,
    id: Uuid,
    amount: i64,
    reason: String,
    ctx: &CommandContext,
) -> Result<CommandOutcome, CommandError> {
    bus.execute::<Account>(
        &id.to_string(),
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
    bus.execute::<Account>(
        &id.to_string(),
        AccountCommand::SpendCredits { amount, reason },
        ctx,
    )
    .await
}
