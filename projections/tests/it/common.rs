//! Shared helpers: write accounts and credit movements through the command
//! bus, read the projections' tables, and the balances the event store holds.

use igny8_commands::billing::{grant_credits, open_account, spend_credits};
use igny8_commands::{CommandBus, CommandContext, Db, on_db};
use uuid::Uuid;

pub fn ctx(id: Uuid) -> CommandContext {
    CommandContext {
        account_id: Some(id.to_string()),
        actor: "user:t".into(),
        ..Default::default()
    }
}

/// `n` accounts, each opened, granted 100 and spent 1 `k` times.
pub async fn write_accounts(bus: &CommandBus, n: usize, k: usize) -> Vec<Uuid> {
    let mut ids = vec![];
    for i in 0..n {
        let id = Uuid::new_v4();
        open_account(bus, id, format!("acct {i}"), &ctx(id))
            .await
            .unwrap();
        grant_credits(bus, id, 100, "plan".into(), &ctx(id))
            .await
            .unwrap();
        for _ in 0..k {
            spend_credits(bus, id, 1, "use".into(), &ctx(id))
                .await
                .unwrap();
        }
        ids.push(id);
    }
    ids
}

/// (account_id, balance, total_granted, total_spent, version) of every account, sorted.
pub async fn accounts_table(db: &Db) -> Vec<(String, i64, i64, i64, i64)> {
    on_db!(db, p => sqlx::query_as(
        "SELECT account_id, balance, total_granted, total_spent, version FROM rm_accounts ORDER BY account_id")
        .fetch_all(p).await.unwrap())
}

/// (event_id, account_id, amount, balance_after) of every ledger row, sorted.
pub async fn ledger_table(db: &Db) -> Vec<(String, String, i64, i64)> {
    on_db!(db, p => sqlx::query_as(
        "SELECT event_id, account_id, amount, balance_after FROM rm_credit_ledger ORDER BY event_id")
        .fetch_all(p).await.unwrap())
}

/// The truth from the write side: each account's balance per the event store.
pub async fn expected_balances(bus: &CommandBus, ids: &[Uuid]) -> Vec<(String, i64)> {
    let mut out = vec![];
    for id in ids {
        let (a, _) = bus
            .load::<igny8_domain::billing::Account>(&id.to_string())
            .await
            .unwrap();
        out.push((id.to_string(), a.balance));
    }
    out.sort();
    out
}

pub async fn reserve_credits(
    bus: &CommandBus,
    id: Uuid,
    reservation_id: String,
    amount: i64,
    reason: String,
    ctx: &CommandContext,
) -> Result<igny8_commands::CommandOutcome, igny8_commands::CommandError> {
    igny8_commands::billing::account(
        bus,
        id,
        igny8_domain::billing::AccountCommand::Reserve {
            reservation_id,
            amount,
            reason,
        },
        ctx,
    )
    .await
}

pub async fn capture_credits(
    bus: &CommandBus,
    id: Uuid,
    reservation_id: String,
    amount: i64,
    ctx: &CommandContext,
) -> Result<igny8_commands::CommandOutcome, igny8_commands::CommandError> {
    igny8_commands::billing::account(
        bus,
        id,
        igny8_domain::billing::AccountCommand::Capture {
            reservation_id,
            amount,
        },
        ctx,
    )
    .await
}

pub async fn release_credits(
    bus: &CommandBus,
    id: Uuid,
    reservation_id: String,
    reason: String,
    ctx: &CommandContext,
) -> Result<igny8_commands::CommandOutcome, igny8_commands::CommandError> {
    igny8_commands::billing::account(
        bus,
        id,
        igny8_domain::billing::AccountCommand::Release {
            reservation_id,
            reason,
        },
        ctx,
    )
    .await
}
