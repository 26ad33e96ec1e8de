//! Billing read models: `rm_accounts` (one row per account with its balance)
//! and `rm_credit_ledger` (one row per credit movement; summing it gives the
//! balance at any point).

mod queries;

pub use queries::{AccountRow, ENTRY_TYPES, LedgerFilter, LedgerRow, get_account, list_ledger};

use crate::projection::{Applied, Index, Projection, Table, decode_until};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use igny8_commands::StoredEvent;
use igny8_commands::db::DbTx;
use igny8_domain::Aggregate;
use igny8_domain::billing::{Account, AccountEvent};
use std::collections::HashMap;

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

    fn version(&self) -> u32 {
        1
    }

    fn tables(&self) -> &'static [Table] {
        TABLES
    }

    /// Rows are per account (its read-model row, its ledger entries).
    fn independent_aggregates(&self) -> bool {
        true
    }

    /// One path for live batches and rebuilds: every event becomes its
    /// effect ([`Effects::add`]), then three writes per batch — accounts
    /// opened, ledger rows, one folded update per account (set-based on
    /// PostgreSQL, a prepared statement per row on SQLite).
    async fn apply_all(
        &self,
        tx: &mut DbTx,
        sfx: &str,
        events: &[&StoredEvent],
    ) -> anyhow::Result<Applied> {
        let (typed, applied) = decode_until(events, |ev| {
            (ev.aggregate_type == Account::TYPE)
                .then(|| ev.decode::<AccountEvent>())
                .transpose()
        });
        if !typed.is_empty() {
            let mut fx = Effects {
                running: current(tx, sfx, &typed).await?,
                ..Effects::default()
            };
            for (ev, e) in &typed {
                fx.add(ev, e)?;
            }
            fx.write(tx, sfx).await?;
        }
        Ok(applied)
    }
}

/// Balance and reserved amount of an account as the batch goes.
#[derive(Debug, Clone, Copy, Default)]
struct Running {
    balance: i64,
    reserved: i64,
}

/// Where the batch's accounts stand before it: read once per account (one
/// query on PostgreSQL); accounts opened in the batch start at zero.
async fn current(
    tx: &mut DbTx,
    sfx: &str,
    typed: &[(&StoredEvent, AccountEvent)],
) -> anyhow::Result<HashMap<String, Running>> {
    let mut opened = std::collections::HashSet::new();
    let mut ids: Vec<&str> = vec![];
    let mut seen = std::collections::HashSet::new();
    for (ev, e) in typed {
        let id = ev.aggregate_id.as_str();
        if matches!(e, AccountEvent::AccountOpened { .. }) && !seen.contains(id) {
            opened.insert(id);
        }
        if seen.insert(id) && !opened.contains(id) {
            ids.push(id);
        }
    }
    let rows: Vec<(String, i64, i64)> = match tx {
        DbTx::Postgres(t) if !ids.is_empty() => sqlx::query_as(&format!(
            "SELECT account_id, balance, reserved FROM rm_accounts{sfx} WHERE account_id = ANY($1)"
        ))
        .bind(&ids)
        .fetch_all(&mut **t)
        .await?,
        DbTx::Sqlite(t) => {
            // Take the write lock before reading: a WAL read transaction
            // cannot become a writer once another one has committed
            // ("database is locked" at once, no busy wait).
            sqlx::query(&format!(
                "UPDATE rm_accounts{sfx} SET balance = balance WHERE 0"
            ))
            .execute(&mut **t)
            .await?;
            let sql = format!(
                "SELECT account_id, balance, reserved FROM rm_accounts{sfx} WHERE account_id = $1"
            );
            let mut rows = vec![];
            for id in &ids {
                rows.extend(
                    sqlx::query_as(&sql)
                        .bind(id)
                        .fetch_optional(&mut **t)
                        .await?,
                );
            }
            rows
        }
        _ => vec![],
    };
    let mut out: HashMap<String, Running> = rows
        .into_iter()
        .map(|(id, balance, reserved)| (id, Running { balance, reserved }))
        .collect();
    for id in opened {
        out.insert(id.to_string(), Running::default());
    }
    Ok(out)
}

/// The effects of a batch of account events, ready to write.
#[derive(Default)]
struct Effects {
    running: HashMap<String, Running>,
    opened: Opened,
    ledger: Ledger,
    folds: Vec<Fold>,
    index: HashMap<String, usize>,
}

impl Effects {
    /// The one place that says what an account event writes.
    fn add(&mut self, ev: &StoredEvent, e: &AccountEvent) -> anyhow::Result<()> {
        let id = ev.aggregate_id.as_str();
        if let AccountEvent::AccountOpened { name } = e {
            self.opened.id.push(id.to_string());
            self.opened.name.push(name.clone());
            self.opened.version.push(ev.sequence);
            self.opened.pos.push(ev.global_position);
            self.opened.at.push(ev.recorded_at);
            return Ok(());
        }
        let Some(run) = self.running.get_mut(id) else {
            anyhow::bail!(
                "event {} ({}) is for account {id}, which has no read-model row (its AccountOpened was not applied)",
                ev.event_id,
                ev.event_type
            );
        };
        // (entry, amount, delta, reservation, reason) of the ledger row;
        // granted / spent add to the totals.
        let mut row: Option<(&'static str, i64, i64, Option<&str>, &str)> = None;
        let (mut granted, mut spent) = (0, 0);
        let mut plan = None;
        match e {
            AccountEvent::AccountOpened { .. } => unreachable!("handled above"),
            AccountEvent::CreditsGranted {
                amount,
                balance_after,
                reason,
            } => {
                run.balance = *balance_after;
                granted = *amount;
                row = Some(("grant", *amount, *amount, None, reason));
            }
            AccountEvent::CreditsSpent {
                amount,
                balance_after,
                reason,
            } => {
                run.balance = *balance_after;
                spent = *amount;
                row = Some(("spend", *amount, -amount, None, reason));
            }
            AccountEvent::CreditsReserved {
                reservation_id,
                amount,
                reserved_after,
                reason,
            } => {
                run.reserved = *reserved_after;
                row = Some(("reserve", *amount, 0, Some(reservation_id), reason));
            }
            AccountEvent::CreditsCaptured {
                reservation_id,
                amount,
                balance_after,
                reserved_after,
                ..
            } => {
                run.balance = *balance_after;
                run.reserved = *reserved_after;
                spent = *amount;
                row = Some(("capture", *amount, -amount, Some(reservation_id), ""));
            }
            AccountEvent::ReservationReleased {
                reservation_id,
                amount,
                reserved_after,
                reason,
            } => {
                run.reserved = *reserved_after;
                row = Some(("release", *amount, 0, Some(reservation_id), reason));
            }
            AccountEvent::SubscriptionStarted {
                plan: p,
                period_start,
                period_end,
            } => plan = Some((p.clone(), *period_start, *period_end)),
            AccountEvent::ReservationTransferred {
                reservation_id,
                amount,
                reserved_after,
                reason,
                ..
            } => {
                // A job's credits moved out of a run's budget: nothing became available.
                run.reserved = *reserved_after;
                row = Some(("transfer", *amount, 0, Some(reservation_id), reason));
            }
        }
        let run = *run;
        if let Some((entry, amount, delta, reservation, reason)) = row {
            let l = &mut self.ledger;
            l.event_id.push(ev.event_id.to_string());
            l.account_id.push(id.to_string());
            l.pos.push(ev.global_position);
            l.seq.push(ev.sequence);
            l.entry.push(entry.to_string());
            l.amount.push(amount);
            l.delta.push(delta);
            l.balance_after.push(run.balance);
            l.reserved_after.push(run.reserved);
            l.reservation_id.push(reservation.map(str::to_string));
            l.reason.push(reason.to_string());
            l.actor
                .push(ev.meta("actor").unwrap_or("system").to_string());
            l.at.push(ev.recorded_at);
        }
        let i = match self.index.get(id) {
            Some(i) => *i,
            None => {
                self.folds.push(Fold {
                    id: id.to_string(),
                    ..Fold::default()
                });
                self.index.insert(id.to_string(), self.folds.len() - 1);
                self.folds.len() - 1
            }
        };
        let f = &mut self.folds[i];
        f.balance = run.balance;
        f.reserved = run.reserved;
        f.granted += granted;
        f.spent += spent;
        if let Some((p, start, end)) = plan {
            f.plan = Some(p);
            f.period_start = Some(start);
            f.period_end = Some(end);
        }
        f.version = ev.sequence;
        f.pos = ev.global_position;
        f.at = ev.recorded_at;
        Ok(())
    }

    async fn write(&self, tx: &mut DbTx, sfx: &str) -> anyhow::Result<()> {
        let open_sql = format!(
            "INSERT INTO rm_accounts{sfx} (account_id, name, version, last_position, created_at, updated_at) "
        );
        let ledger_sql = format!(
            "INSERT INTO rm_credit_ledger{sfx} (event_id, account_id, global_position, sequence, entry_type, \
             amount, delta, balance_after, reserved_after, reservation_id, reason, actor, occurred_at) "
        );
        let (o, l) = (&self.opened, &self.ledger);
        match tx {
            DbTx::Postgres(t) => {
                let c = &mut **t;
                if !o.id.is_empty() {
                    sqlx::query(&format!(
                        "{open_sql} SELECT u.id, u.name, u.version, u.pos, u.at, u.at \
                         FROM UNNEST($1::text[], $2::text[], $3::int8[], $4::int8[], $5::timestamptz[]) AS u(id, name, version, pos, at) \
                         ON CONFLICT (account_id) DO NOTHING"
                    ))
                    .bind(&o.id)
                    .bind(&o.name)
                    .bind(&o.version)
                    .bind(&o.pos)
                    .bind(&o.at)
                    .execute(&mut *c)
                    .await?;
                }
                if !l.event_id.is_empty() {
                    sqlx::query(&format!(
                        "{ledger_sql} SELECT * FROM UNNEST($1::text[], $2::text[], $3::int8[], $4::int8[], $5::text[], \
                         $6::int8[], $7::int8[], $8::int8[], $9::int8[], $10::text[], $11::text[], $12::text[], $13::timestamptz[]) \
                         ON CONFLICT (event_id) DO NOTHING"
                    ))
                    .bind(&l.event_id)
                    .bind(&l.account_id)
                    .bind(&l.pos)
                    .bind(&l.seq)
                    .bind(&l.entry)
                    .bind(&l.amount)
                    .bind(&l.delta)
                    .bind(&l.balance_after)
                    .bind(&l.reserved_after)
                    .bind(&l.reservation_id)
                    .bind(&l.reason)
                    .bind(&l.actor)
                    .bind(&l.at)
                    .execute(&mut *c)
                    .await?;
                }
                if !self.folds.is_empty() {
                    let f = &self.folds;
                    let col = |g: fn(&Fold) -> i64| f.iter().map(g).collect::<Vec<i64>>();
                    let ids: Vec<&str> = f.iter().map(|f| f.id.as_str()).collect();
                    let plan: Vec<Option<&str>> = f.iter().map(|f| f.plan.as_deref()).collect();
                    let start: Vec<Option<DateTime<Utc>>> =
                        f.iter().map(|f| f.period_start).collect();
                    let end: Vec<Option<DateTime<Utc>>> = f.iter().map(|f| f.period_end).collect();
                    let at: Vec<DateTime<Utc>> = f.iter().map(|f| f.at).collect();
                    sqlx::query(&format!(
                        "UPDATE rm_accounts{sfx} a SET balance = u.balance, reserved = u.reserved, \
                         total_granted = a.total_granted + u.granted, total_spent = a.total_spent + u.spent, \
                         plan = COALESCE(u.plan, a.plan), period_start = COALESCE(u.ps, a.period_start), \
                         period_end = COALESCE(u.pe, a.period_end), version = u.version, last_position = u.pos, updated_at = u.at \
                         FROM UNNEST($1::text[], $2::int8[], $3::int8[], $4::int8[], $5::int8[], $6::int8[], $7::int8[], \
                         $8::timestamptz[], $9::text[], $10::timestamptz[], $11::timestamptz[]) \
                         AS u(id, balance, reserved, granted, spent, version, pos, at, plan, ps, pe) WHERE a.account_id = u.id"
                    ))
                    .bind(&ids)
                    .bind(col(|f| f.balance))
                    .bind(col(|f| f.reserved))
                    .bind(col(|f| f.granted))
                    .bind(col(|f| f.spent))
                    .bind(col(|f| f.version))
                    .bind(col(|f| f.pos))
                    .bind(&at)
                    .bind(&plan)
                    .bind(&start)
                    .bind(&end)
                    .execute(&mut *c)
                    .await?;
                }
            }
            DbTx::Sqlite(t) => {
                let c = &mut **t;
                let sql = format!(
                    "{open_sql} VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (account_id) DO NOTHING"
                );
                for i in 0..o.id.len() {
                    sqlx::query(&sql)
                        .bind(&o.id[i])
                        .bind(&o.name[i])
                        .bind(o.version[i])
                        .bind(o.pos[i])
                        .bind(o.at[i])
                        .execute(&mut *c)
                        .await?;
                }
                let sql = format!(
                    "{ledger_sql} VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
                     ON CONFLICT (event_id) DO NOTHING"
                );
                for i in 0..l.event_id.len() {
                    sqlx::query(&sql)
                        .bind(&l.event_id[i])
                        .bind(&l.account_id[i])
                        .bind(l.pos[i])
                        .bind(l.seq[i])
                        .bind(&l.entry[i])
                        .bind(l.amount[i])
                        .bind(l.delta[i])
                        .bind(l.balance_after[i])
                        .bind(l.reserved_after[i])
                        .bind(&l.reservation_id[i])
                        .bind(&l.reason[i])
                        .bind(&l.actor[i])
                        .bind(l.at[i])
                        .execute(&mut *c)
                        .await?;
                }
                let sql = format!(
                    "UPDATE rm_accounts{sfx} SET balance = $2, reserved = $3, total_granted = total_granted + $4, \
                     total_spent = total_spent + $5, plan = COALESCE($6, plan), period_start = COALESCE($7, period_start), \
                     period_end = COALESCE($8, period_end), version = $9, last_position = $10, updated_at = $11 \
                     WHERE account_id = $1"
                );
                for f in &self.folds {
                    sqlx::query(&sql)
                        .bind(&f.id)
                        .bind(f.balance)
                        .bind(f.reserved)
                        .bind(f.granted)
                        .bind(f.spent)
                        .bind(&f.plan)
                        .bind(f.period_start)
                        .bind(f.period_end)
                        .bind(f.version)
                        .bind(f.pos)
                        .bind(f.at)
                        .execute(&mut *c)
                        .await?;
                }
            }
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
    at: Vec<DateTime<Utc>>,
}

/// Ledger rows, column by column: every movement of credits or reservations.
#[derive(Default)]
struct Ledger {
    event_id: Vec<String>,
    account_id: Vec<String>,
    pos: Vec<i64>,
    seq: Vec<i64>,
    entry: Vec<String>,
    amount: Vec<i64>,
    /// Signed change of the balance (grant +, spend and capture −, others 0).
    delta: Vec<i64>,
    balance_after: Vec<i64>,
    reserved_after: Vec<i64>,
    reservation_id: Vec<Option<String>>,
    reason: Vec<String>,
    actor: Vec<String>,
    at: Vec<DateTime<Utc>>,
}

/// The net effect of a batch on one account.
#[derive(Default)]
struct Fold {
    id: String,
    balance: i64,
    reserved: i64,
    granted: i64,
    spent: i64,
    plan: Option<String>,
    period_start: Option<DateTime<Utc>>,
    period_end: Option<DateTime<Utc>>,
    version: i64,
    pos: i64,
    at: DateTime<Utc>,
}
