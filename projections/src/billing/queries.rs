//! Read queries over the billing read models (the gateway calls these; it
//! never writes SQL itself).

use chrono::{DateTime, Utc};
use igny8_commands::db::Db;
use igny8_commands::on_db;
use serde::Serialize;

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct AccountRow {
    pub account_id: String,
    pub name: String,
    pub balance: i64,
    pub total_granted: i64,
    pub total_spent: i64,
    pub version: i64,
    pub last_position: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct LedgerRow {
    pub event_id: String,
    pub account_id: String,
    pub global_position: i64,
    pub sequence: i64,
    pub entry_type: String,
    pub amount: i64,
    pub balance_after: i64,
    pub reason: String,
    pub actor: String,
    pub occurred_at: DateTime<Utc>,
}

pub async fn get_account(db: &Db, account_id: &str) -> Result<Option<AccountRow>, sqlx::Error> {
    on_db!(db, p => {
        sqlx::query_as(
            "SELECT account_id, name, balance, total_granted, total_spent, version, last_position, created_at, updated_at \
             FROM rm_accounts WHERE account_id = $1",
        )
        .bind(account_id)
        .fetch_optional(p)
        .await
    })
}

#[derive(Debug, Clone, Default)]
pub struct LedgerFilter {
    pub entry_type: Option<String>,
    pub offset: i64,
    pub limit: i64,
}

/// One page of an account's ledger (oldest first) and the total count.
pub async fn list_ledger(
    db: &Db,
    account_id: &str,
    f: &LedgerFilter,
) -> Result<(Vec<LedgerRow>, i64), sqlx::Error> {
    let (count,): (i64,) = on_db!(db, p => {
        sqlx::query_as("SELECT count(*) FROM rm_credit_ledger WHERE account_id = $1 AND ($2 IS NULL OR entry_type = $2)")
            .bind(account_id)
            .bind(&f.entry_type)
            .fetch_one(p)
            .await?
    });
    let rows = on_db!(db, p => {
        sqlx::query_as(
            "SELECT event_id, account_id, global_position, sequence, entry_type, amount, balance_after, reason, actor, occurred_at \
             FROM rm_credit_ledger WHERE account_id = $1 AND ($2 IS NULL OR entry_type = $2) \
             ORDER BY sequence LIMIT $3 OFFSET $4",
        )
        .bind(account_id)
        .bind(&f.entry_type)
        .bind(f.limit)
        .bind(f.offset)
        .fetch_all(p)
        .await?
    });
    Ok((rows, count))
}
