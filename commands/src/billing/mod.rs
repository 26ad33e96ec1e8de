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

/// Hold credits for a job (fails with `INSUFFICIENT_CREDITS` when `available < amount`).
pub async fn reserve_credits(
    bus: &CommandBus,
    id: Uuid,
    reservation_id: String,
    amount: i64,
    reason: String,
    ctx: &CommandContext,
) -> Result<CommandOutcome, CommandError> {
    bus.execute::<Account>(
        &id.to_string(),
        AccountCommand::Reserve {
            reservation_id,
            amount,
            reason,
        },
        ctx,
    )
    .await
}

/// Charge the actual cost of a reservation (≤ reserved); the rest returns.
pub async fn capture_credits(
    bus: &CommandBus,
    id: Uuid,
    reservation_id: String,
    amount: i64,
    ctx: &CommandContext,
) -> Result<CommandOutcome, CommandError> {
    bus.execute::<Account>(
        &id.to_string(),
        AccountCommand::Capture {
            reservation_id,
            amount,
        },
        ctx,
    )
    .await
}

/// Return a whole reservation (job failed or cancelled). Unknown id: no-op.
pub async fn release_credits(
    bus: &CommandBus,
    id: Uuid,
    reservation_id: String,
    reason: String,
    ctx: &CommandContext,
) -> Result<CommandOutcome, CommandError> {
    bus.execute::<Account>(
        &id.to_string(),
        AccountCommand::Release {
            reservation_id,
            reason,
        },
        ctx,
    )
    .await
}
