//! Billing read models: `rm_accounts` (one row per account with its balance)
//! and `rm_credit_ledger` (one row per credit movement; summing it gives the
//! balance at any point).

mod queries;

pub use queries::{AccountRow, LedgerFilter, LedgerRow, get_account, list_ledger};

use crate::projection::{Index, Projection, Table};
use async_trait::async_trait;
use igny8_commands::db::DbTx;
use igny8_commands::{StoredEvent, on_tx};

pub struct AccountsProjection;

pub const NAME: &str = "billing_accounts";

const TABLES: &[Table] = &[
    Table {
        name: "rm_accounts",
        postgres: "CREATE TABLE IF NOT EXISTS {t} (
            account_id text PRIMARY KEY, name text NOT NULL,
            balance bigint NOT NULL DEFAULT 0, total_granted bigint NOT NULL DEFAULT 0,
            total_spent bigint NOT NULL DEFAULT 0, version bigint NOT NULL,
            last_position bigint NOT NULL, created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL)",
        sqlite: "CREATE TABLE IF NOT EXISTS {t} (
            account_id TEXT PRIMARY KEY, name TEXT NOT NULL,
            balance INTEGER NOT NULL DEFAULT 0, total_granted INTEGER NOT NULL DEFAULT 0,
            total_spent INTEGER NOT NULL DEFAULT 0, version INTEGER NOT NULL,
            last_position INTEGER NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL)",
        indexes: &[],
    },
    Table {
        name: "rm_credit_ledger",
        postgres: "CREATE TABLE IF NOT EXISTS {t} (
            event_id text PRIMARY KEY, account_id text NOT NULL, global_position bigint NOT NULL,
            sequence bigint NOT NULL, entry_type text NOT NULL, amount bigint NOT NULL,
            balance_after bigint NOT NULL, reason text NOT NULL, actor text NOT NULL,
            occurred_at timestamptz NOT NULL)",
        sqlite: "CREATE TABLE IF NOT EXISTS {t} (
            event_id TEXT PRIMARY KEY, account_id TEXT NOT NULL, global_position INTEGER NOT NULL,
            sequence INTEGER NOT NULL, entry_type TEXT NOT NULL, amount INTEGER NOT NULL,
            balance_after INTEGER NOT NULL, reason TEXT NOT NULL, actor TEXT NOT NULL,
            occurred_at TEXT NOT NULL)",
        indexes: &[Index { name: "rm_credit_ledger_account_idx", columns: "account_id, sequence" }],
    },
];

#[async_trait]
impl Projection for AccountsProjection {
    fn name(&self) -> &'static str {
        NAME
    }

    fn tables(&self) -> &'static [Table] {
        TABLES
    }

    async fn apply(&self, tx: &mut DbTx, sfx: &str, ev: &StoredEvent) -> anyhow::Result<()> {
        if ev.aggregate_type != "account" {
            return Ok(());
        }
        let body = ev.body();
        let at = ev.recorded_at;
        match ev.event_type.as_str() {
            "AccountOpened" => {
                let name = body["name"].as_str().unwrap_or_default();
                let sql = format!(
                    "INSERT INTO rm_accounts{sfx} (account_id, name, version, last_position, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (account_id) DO NOTHING"
                );
                on_tx!(tx, c => sqlx::query(&sql)
                    .bind(&ev.aggregate_id).bind(name).bind(ev.sequence).bind(ev.global_position).bind(at)
                    .execute(&mut *c).await.map(|_| ()))?;
            }
            kind @ ("CreditsGranted" | "CreditsSpent") => {
                let amount = body["amount"].as_i64().unwrap_or(0);
                let balance_after = body["balance_after"].as_i64().unwrap_or(0);
                let reason = body["reason"].as_str().unwrap_or_default();
                let (granted, spent, entry) = if kind == "CreditsGranted" {
                    (amount, 0, "grant")
                } else {
                    (0, amount, "spend")
                };
                let update = format!(
                    "UPDATE rm_accounts{sfx} SET balance = $2, total_granted = total_granted + $3, \
                     total_spent = total_spent + $4, version = $5, last_position = $6, updated_at = $7 \
                     WHERE account_id = $1"
                );
                let ledger = format!(
                    "INSERT INTO rm_credit_ledger{sfx} (event_id, account_id, global_position, sequence, entry_type, \
                     amount, balance_after, reason, actor, occurred_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (event_id) DO NOTHING"
                );
                let actor = ev.meta("actor").unwrap_or("system");
                on_tx!(tx, c => {
                    sqlx::query(&update)
                        .bind(&ev.aggregate_id).bind(balance_after).bind(granted).bind(spent)
                        .bind(ev.sequence).bind(ev.global_position).bind(at)
                        .execute(&mut *c).await?;
                    sqlx::query(&ledger)
                        .bind(ev.event_id.to_string()).bind(&ev.aggregate_id).bind(ev.global_position)
                        .bind(ev.sequence).bind(entry).bind(amount).bind(balance_after).bind(reason)
                        .bind(actor).bind(at)
                        .execute(&mut *c).await.map(|_| ())
                })?;
            }
            _ => {}
        }
        Ok(())
    }
}
