//! Billing read models: `rm_accounts` (one row per account with its balance)
//! and `rm_credit_ledger` (one row per credit movement; summing it gives the
//! balance at any point).

mod queries;

pub use queries::{AccountRow, ENTRY_TYPES, LedgerFilter, LedgerRow, get_account, list_ledger};

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
            account_id text COLLATE \"C\" PRIMARY KEY, name text NOT NULL,
            balance bigint NOT NULL DEFAULT 0, total_granted bigint NOT NULL DEFAULT 0,
            total_spent bigint NOT NULL DEFAULT 0, reserved bigint NOT NULL DEFAULT 0, plan text,
            period_start timestamptz, period_end timestamptz, version bigint NOT NULL,
            last_position bigint NOT NULL, created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL)
            WITH (fillfactor = 70)",
        sqlite: "CREATE TABLE IF NOT EXISTS {t} (
            account_id TEXT PRIMARY KEY, name TEXT NOT NULL,
            balance INTEGER NOT NULL DEFAULT 0, total_granted INTEGER NOT NULL DEFAULT 0,
            total_spent INTEGER NOT NULL DEFAULT 0, reserved INTEGER NOT NULL DEFAULT 0, plan TEXT,
            period_start TEXT, period_end TEXT, version INTEGER NOT NULL,
            last_position INTEGER NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL)",
        indexes: &[],
    },
    Table {
        name: "rm_credit_ledger",
        postgres: "CREATE TABLE IF NOT EXISTS {t} (
            event_id text COLLATE \"C\" PRIMARY KEY, account_id text COLLATE \"C\" NOT NULL,
            global_position bigint NOT NULL, sequence bigint NOT NULL, entry_type text NOT NULL,
            amount bigint NOT NULL, delta bigint NOT NULL, balance_after bigint NOT NULL,
            reserved_after bigint NOT NULL DEFAULT 0, reservation_id text, reason text NOT NULL, actor text NOT NULL,
            occurred_at timestamptz NOT NULL)",
        sqlite: "CREATE TABLE IF NOT EXISTS {t} (
            event_id TEXT PRIMARY KEY, account_id TEXT NOT NULL, global_position INTEGER NOT NULL,
            sequence INTEGER NOT NULL, entry_type TEXT NOT NULL, amount INTEGER NOT NULL, delta INTEGER NOT NULL,
            balance_after INTEGER NOT NULL, reserved_after INTEGER NOT NULL DEFAULT 0, reservation_id TEXT,
            reason TEXT NOT NULL, actor TEXT NOT NULL, occurred_at TEXT NOT NULL)",
        indexes: &[
            Index { name: "rm_credit_ledger_account_idx", columns: "account_id, sequence" },
            Index { name: "rm_credit_ledger_time_idx", columns: "account_id, occurred_at" },
        ],
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
                let (granted, spent, entry, delta) = if kind == "CreditsGranted" {
                    (amount, 0, "grant", amount)
                } else {
                    (0, amount, "spend", -amount)
                };
                let update = format!(
                    "UPDATE rm_accounts{sfx} SET balance = $2, total_granted = total_granted + $3, \
                     total_spent = total_spent + $4, version = $5, last_position = $6, updated_at = $7 \
                     WHERE account_id = $1"
                );
                on_tx!(tx, c => {
                    sqlx::query(&update)
                        .bind(&ev.aggregate_id).bind(balance_after).bind(granted).bind(spent)
                        .bind(ev.sequence).bind(ev.global_position).bind(at)
                        .execute(&mut *c).await.map(|_| ())
                })?;
                let row = LedgerEntry {
                    entry,
                    amount,
                    delta,
                    balance_after: Some(balance_after),
                    reserved_after: None,
                    reservation_id: None,
                    reason,
                };
                ledger_row(tx, sfx, ev, &row).await?;
            }
            "CreditsReserved" | "CreditsCaptured" | "ReservationReleased" => {
                let amount = body["amount"].as_i64().unwrap_or(0);
                let reserved_after = body["reserved_after"].as_i64().unwrap_or(0);
                let captured = ev.event_type == "CreditsCaptured";
                let balance_after = body["balance_after"].as_i64();
                let update = format!(
                    "UPDATE rm_accounts{sfx} SET reserved = $2, balance = COALESCE($3, balance), \
                     total_spent = total_spent + $4, version = $5, last_position = $6, updated_at = $7 \
                     WHERE account_id = $1"
                );
                on_tx!(tx, c => sqlx::query(&update)
                    .bind(&ev.aggregate_id).bind(reserved_after).bind(balance_after)
                    .bind(if captured { amount } else { 0 })
                    .bind(ev.sequence).bind(ev.global_position).bind(at)
                    .execute(&mut *c).await.map(|_| ()))?;
                let (entry, delta) = match ev.event_type.as_str() {
                    "CreditsReserved" => ("reserve", 0),
                    "CreditsCaptured" => ("capture", -amount),
                    _ => ("release", 0),
                };
                let row = LedgerEntry {
                    entry,
                    amount,
                    delta,
                    balance_after,
                    reserved_after: Some(reserved_after),
                    reservation_id: body["reservation_id"].as_str(),
                    reason: body["reason"].as_str().unwrap_or_default(),
                };
                ledger_row(tx, sfx, ev, &row).await?;
            }
            "SubscriptionStarted" => {
                let update = format!(
                    "UPDATE rm_accounts{sfx} SET plan = $2, period_start = $3, period_end = $4, \
                     version = $5, last_position = $6, updated_at = $7 WHERE account_id = $1"
                );
                let ts = |k: &str| {
                    body[k]
                        .as_str()
                        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
                        .map(|d| d.with_timezone(&chrono::Utc))
                };
                on_tx!(tx, c => sqlx::query(&update)
                    .bind(&ev.aggregate_id).bind(body["plan"].as_str()).bind(ts("period_start")).bind(ts("period_end"))
                    .bind(ev.sequence).bind(ev.global_position).bind(at)
                    .execute(&mut *c).await.map(|_| ()))?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Rows are per account (its read-model row, its ledger entries).
    fn independent_aggregates(&self) -> bool {
        true
    }

    /// PostgreSQL: three set-based statements per batch (accounts opened,
    /// ledger rows, one folded update per account) instead of two per event.
    async fn apply_all(
        &self,
        tx: &mut DbTx,
        sfx: &str,
        events: &[&StoredEvent],
    ) -> anyhow::Result<()> {
        // The set-based path covers the hot events (open, grant, spend);
        // a batch with anything else is applied one event at a time.
        let simple = events.iter().all(|e| {
            e.aggregate_type != "account"
                || matches!(
                    e.event_type.as_str(),
                    "AccountOpened" | "CreditsGranted" | "CreditsSpent"
                )
        });
        let DbTx::Postgres(t) = tx else {
            for e in events {
                self.apply(tx, sfx, e).await?;
            }
            return Ok(());
        };
        if !simple {
            for e in events {
                self.apply(tx, sfx, e).await?;
            }
            return Ok(());
        }
        let mut opened = Opened::default();
        let mut ledger = Ledger::default();
        let mut folds: Vec<Fold> = vec![];
        let mut index: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        for ev in events.iter().filter(|e| e.aggregate_type == "account") {
            let body = ev.body();
            match ev.event_type.as_str() {
                "AccountOpened" => {
                    opened.id.push(ev.aggregate_id.clone());
                    opened
                        .name
                        .push(body["name"].as_str().unwrap_or_default().to_string());
                    opened.version.push(ev.sequence);
                    opened.pos.push(ev.global_position);
                    opened.at.push(ev.recorded_at);
                }
                kind @ ("CreditsGranted" | "CreditsSpent") => {
                    let amount = body["amount"].as_i64().unwrap_or(0);
                    let balance_after = body["balance_after"].as_i64().unwrap_or(0);
                    let grant = kind == "CreditsGranted";
                    ledger.event_id.push(ev.event_id.to_string());
                    ledger.account_id.push(ev.aggregate_id.clone());
                    ledger.pos.push(ev.global_position);
                    ledger.seq.push(ev.sequence);
                    ledger
                        .entry
                        .push(if grant { "grant" } else { "spend" }.to_string());
                    ledger.amount.push(amount);
                    ledger.delta.push(if grant { amount } else { -amount });
                    ledger.balance_after.push(balance_after);
                    ledger
                        .reason
                        .push(body["reason"].as_str().unwrap_or_default().to_string());
                    ledger
                        .actor
                        .push(ev.meta("actor").unwrap_or("system").to_string());
                    ledger.at.push(ev.recorded_at);
                    let i = *index.entry(ev.aggregate_id.as_str()).or_insert_with(|| {
                        folds.push(Fold {
                            id: ev.aggregate_id.clone(),
                            ..Fold::default()
                        });
                        folds.len() - 1
                    });
                    let f = &mut folds[i];
                    f.balance = balance_after;
                    if grant {
                        f.granted += amount;
                    } else {
                        f.spent += amount;
                    }
                    f.version = ev.sequence;
                    f.pos = ev.global_position;
                    f.at = Some(ev.recorded_at);
                }
                _ => {}
            }
        }
        let c = &mut **t;
        if !opened.id.is_empty() {
            sqlx::query(&format!(
                "INSERT INTO rm_accounts{sfx} (account_id, name, version, last_position, created_at, updated_at) \
                 SELECT u.id, u.name, u.version, u.pos, u.at, u.at \
                 FROM UNNEST($1::text[], $2::text[], $3::int8[], $4::int8[], $5::timestamptz[]) AS u(id, name, version, pos, at) \
                 ON CONFLICT (account_id) DO NOTHING"
            ))
            .bind(&opened.id)
            .bind(&opened.name)
            .bind(&opened.version)
            .bind(&opened.pos)
            .bind(&opened.at)
            .execute(&mut *c)
            .await?;
        }
        if !ledger.event_id.is_empty() {
            // No reservation moves in this batch: each account's reserved
            // amount is what the read model holds now — read once per account.
            let ids: Vec<&str> = folds.iter().map(|f| f.id.as_str()).collect();
            let held: std::collections::HashMap<String, i64> = sqlx::query_as(&format!(
                "SELECT account_id, reserved FROM rm_accounts{sfx} WHERE account_id = ANY($1) AND reserved <> 0"
            ))
            .bind(&ids)
            .fetch_all(&mut *c)
            .await?
            .into_iter()
            .collect();
            let reserved: Vec<i64> = ledger
                .account_id
                .iter()
                .map(|a| held.get(a).copied().unwrap_or(0))
                .collect();
            sqlx::query(&format!(
                "INSERT INTO rm_credit_ledger{sfx} (event_id, account_id, global_position, sequence, entry_type, \
                 amount, balance_after, reason, actor, occurred_at, delta, reserved_after) \
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::int8[], $4::int8[], $5::text[], $6::int8[], \
                 $7::int8[], $8::text[], $9::text[], $10::timestamptz[], $11::int8[], $12::int8[]) \
                 ON CONFLICT (event_id) DO NOTHING"
            ))
            .bind(&ledger.event_id)
            .bind(&ledger.account_id)
            .bind(&ledger.pos)
            .bind(&ledger.seq)
            .bind(&ledger.entry)
            .bind(&ledger.amount)
            .bind(&ledger.balance_after)
            .bind(&ledger.reason)
            .bind(&ledger.actor)
            .bind(&ledger.at)
            .bind(&ledger.delta)
            .bind(&reserved)
            .execute(&mut *c)
            .await?;
        }
        if !folds.is_empty() {
            let col = |f: fn(&Fold) -> i64| folds.iter().map(f).collect::<Vec<i64>>();
            let ids: Vec<String> = folds.iter().map(|f| f.id.clone()).collect();
            let at: Vec<chrono::DateTime<chrono::Utc>> =
                folds.iter().map(|f| f.at.unwrap_or_default()).collect();
            sqlx::query(&format!(
                "UPDATE rm_accounts{sfx} a SET balance = u.balance, total_granted = a.total_granted + u.granted, \
                 total_spent = a.total_spent + u.spent, version = u.version, last_position = u.pos, updated_at = u.at \
                 FROM UNNEST($1::text[], $2::int8[], $3::int8[], $4::int8[], $5::int8[], $6::int8[], $7::timestamptz[]) \
                 AS u(id, balance, granted, spent, version, pos, at) WHERE a.account_id = u.id"
            ))
            .bind(&ids)
            .bind(col(|f| f.balance))
            .bind(col(|f| f.granted))
            .bind(col(|f| f.spent))
            .bind(col(|f| f.version))
            .bind(col(|f| f.pos))
            .bind(&at)
            .execute(&mut *c)
            .await?;
        }
        Ok(())
    }
}

#[derive(Default)]
struct Opened {
    id: Vec<String>,
    name: Vec<String>,
    version: Vec<i64>,
    pos: Vec<i64>,
    at: Vec<chrono::DateTime<chrono::Utc>>,
}

#[derive(Default)]
struct Ledger {
    event_id: Vec<String>,
    account_id: Vec<String>,
    pos: Vec<i64>,
    seq: Vec<i64>,
    entry: Vec<String>,
    amount: Vec<i64>,
    delta: Vec<i64>,
    balance_after: Vec<i64>,
    reason: Vec<String>,
    actor: Vec<String>,
    at: Vec<chrono::DateTime<chrono::Utc>>,
}

/// The net effect of a batch on one account.
#[derive(Default)]
struct Fold {
    id: String,
    balance: i64,
    granted: i64,
    spent: i64,
    version: i64,
    pos: i64,
    at: Option<chrono::DateTime<chrono::Utc>>,
}

/// One ledger row: every movement of credits or reservations.
struct LedgerEntry<'a> {
    entry: &'static str,
    amount: i64,
    /// Signed change of the balance (grant +, spend and capture −, others 0).
    delta: i64,
    /// `None`: the balance did not change (taken from the account row).
    balance_after: Option<i64>,
    reserved_after: Option<i64>,
    reservation_id: Option<&'a str>,
    reason: &'a str,
}

async fn ledger_row(
    tx: &mut DbTx,
    sfx: &str,
    ev: &StoredEvent,
    r: &LedgerEntry<'_>,
) -> anyhow::Result<()> {
    let sql = format!(
        "INSERT INTO rm_credit_ledger{sfx} (event_id, account_id, global_position, sequence, entry_type, \
         amount, delta, balance_after, reserved_after, reservation_id, reason, actor, occurred_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, \
           COALESCE($8, (SELECT balance FROM rm_accounts{sfx} WHERE account_id = $2)), \
           COALESCE($9, (SELECT reserved FROM rm_accounts{sfx} WHERE account_id = $2)), $10, $11, $12, $13) \
         ON CONFLICT (event_id) DO NOTHING"
    );
    let actor = ev.meta("actor").unwrap_or("system");
    on_tx!(tx, c => sqlx::query(&sql)
        .bind(ev.event_id.to_string()).bind(&ev.aggregate_id).bind(ev.global_position)
        .bind(ev.sequence).bind(r.entry).bind(r.amount).bind(r.delta).bind(r.balance_after)
        .bind(r.reserved_after).bind(r.reservation_id).bind(r.reason).bind(actor).bind(ev.recorded_at)
        .execute(&mut *c).await.map(|_| ()))?;
    Ok(())
}
