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
    pub reserved: i64,
    pub total_granted: i64,
    pub total_spent: i64,
    pub plan: Option<String>,
    pub period_start: Option<DateTime<Utc>>,
    pub period_end: Option<DateTime<Utc>>,
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
    /// grant, spend, reserve, capture, release
    pub entry_type: String,
    pub amount: i64,
    /// Signed change of the balance; the sum of `delta` up to a row is its `balance_after`.
    pub delta: i64,
    pub balance_after: i64,
    pub reserved_after: i64,
    pub reservation_id: Option<String>,
    pub reason: String,
    pub actor: String,
    pub occurred_at: DateTime<Utc>,
}

pub const ENTRY_TYPES: &[&str] = &["grant", "spend", "reserve", "capture", "release"];

pub async fn get_account(db: &Db, account_id: &str) -> Result<Option<AccountRow>, sqlx::Error> {
    on_db!(db, p => {
        sqlx::query_as(
            "SELECT account_id, name, balance, reserved, total_granted, total_spent, plan, period_start, period_end, \
             version, last_position, created_at, updated_at FROM rm_accounts WHERE account_id = $1",
        )
        .bind(account_id)
        .fetch_optional(p)
        .await
    })
}

#[derive(Debug, Clone, Default)]
pub struct LedgerFilter {
    pub entry_type: Option<String>,
    /// Rows at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Rows before this time.
    pub until: Option<DateTime<Utc>>,
    pub offset: i64,
    pub limit: i64,
}

const LEDGER_WHERE: &str = "account_id = $1 AND ($2 IS NULL OR entry_type = $2) \
     AND ($3 IS NULL OR occurred_at >= $3) AND ($4 IS NULL OR occurred_at < $4)";

/// One page of an account's ledger (oldest first) and the total count.
pub async fn list_ledger(
    db: &Db,
    account_id: &str,
    f: &LedgerFilter,
) -> Result<(Vec<LedgerRow>, i64), sqlx::Error> {
    let count_sql = format!("SELECT count(*) FROM rm_credit_ledger WHERE {LEDGER_WHERE}");
    let (count,): (i64,) = on_db!(db, p => {
        sqlx::query_as(&count_sql)
            .bind(account_id)
            .bind(&f.entry_type)
            .bind(f.since)
            .bind(f.until)
            .fetch_one(p)
            .await?
    });
    let sql = format!(
        "SELECT event_id, account_id, global_position, sequence, entry_type, amount, delta, balance_after, \
         reserved_after, reservation_id, reason, actor, occurred_at \
         FROM rm_credit_ledger WHERE {LEDGER_WHERE} ORDER BY sequence LIMIT $5 OFFSET $6"
    );
    let rows = on_db!(db, p => {
        sqlx::query_as(&sql)
            .bind(account_id)
            .bind(&f.entry_type)
            .bind(f.since)
            .bind(f.until)
            .bind(f.limit)
            .bind(f.offset)
            .fetch_all(p)
            .await?
    });
    Ok((rows, count))
}
