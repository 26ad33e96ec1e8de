//! Automation read model:
//!
//! - `rm_automation_rules`: the rules, their next slot (what the scheduler
//!   reads: `status = 'active' AND next_slot <= now`), their last firing;
//! - `rm_automation_runs`: every run with its stages, items, jobs, credits
//!   and outcome (the log; a row's `state` is the run aggregate's state,
//!   folded here by the domain's own `apply`);
//! - `rm_automation_pending`: for event rules, the burst of matching
//!   events not yet fired — numbered per rule, its last event's time, and
//!   when it settles (last event + debounce). A 100,000-keyword import is
//!   one burst: every event extends it, and it fires once, after it.
//!
//! Every event of the log passes here (event triggers may name any type of
//! the catalogue); only those of an account with active event rules cost
//! a query (the account's rules are read once per batch).

pub mod lookup;
pub mod queries;

use crate::projection::{Applied, Index, Projection, Table, decode_until};
use crate::sql::{Val, exec, json};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use igny8_commands::db::DbTx;
use igny8_commands::{DecodeError, StoredEvent, on_tx};
use igny8_domain::Aggregate;
use igny8_domain::automation::{Rule, RuleDef, RuleEvent, Run, RunEvent, Trigger};
use std::collections::HashMap;

pub struct AutomationProjection;

pub const NAME: &str = "automation";

const TABLES: &[Table] = &[
    Table {
        name: "rm_automation_rules",
        postgres: "CREATE TABLE IF NOT EXISTS {t} (rule_id text COLLATE \"C\" PRIMARY KEY,
            account_id text COLLATE \"C\" NOT NULL, site_id text COLLATE \"C\" NOT NULL, name text NOT NULL,
            trigger_type text NOT NULL, event_types text NOT NULL, debounce_seconds bigint NOT NULL,
            definition text NOT NULL, status text NOT NULL, next_slot timestamptz, runs bigint NOT NULL,
            last_burst bigint NOT NULL, last_run_id text, last_fired_at timestamptz,
            created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL)",
        sqlite: "CREATE TABLE IF NOT EXISTS {t} (rule_id TEXT PRIMARY KEY, account_id TEXT NOT NULL, site_id TEXT NOT NULL,
            name TEXT NOT NULL, trigger_type TEXT NOT NULL, event_types TEXT NOT NULL, debounce_seconds INTEGER NOT NULL,
            definition TEXT NOT NULL, status TEXT NOT NULL, next_slot TEXT, runs INTEGER NOT NULL,
            last_burst INTEGER NOT NULL, last_run_id TEXT, last_fired_at TEXT,
            created_at TEXT NOT NULL, updated_at TEXT NOT NULL)",
        indexes: &[
            Index { name: "rm_automation_rules_account_idx", columns: "account_id, created_at" },
            Index { name: "rm_automation_rules_due_idx", columns: "status, next_slot" },
            Index { name: "rm_automation_rules_events_idx", columns: "account_id, trigger_type" },
        ],
    },
    Table {
        name: "rm_automation_runs",
        postgres: "CREATE TABLE IF NOT EXISTS {t} (run_id text COLLATE \"C\" PRIMARY KEY,
            account_id text COLLATE \"C\" NOT NULL, site_id text COLLATE \"C\" NOT NULL, rule_id text COLLATE \"C\" NOT NULL,
            trigger_type text NOT NULL, slot timestamptz, status text NOT NULL, reason text, budget bigint NOT NULL,
            charged bigint NOT NULL, state text NOT NULL, conditions text NOT NULL,
            created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL, finished_at timestamptz)",
        sqlite: "CREATE TABLE IF NOT EXISTS {t} (run_id TEXT PRIMARY KEY, account_id TEXT NOT NULL, site_id TEXT NOT NULL,
            rule_id TEXT NOT NULL, trigger_type TEXT NOT NULL, slot TEXT, status TEXT NOT NULL, reason TEXT,
            budget INTEGER NOT NULL, charged INTEGER NOT NULL, state TEXT NOT NULL, conditions TEXT NOT NULL,
            created_at TEXT NOT NULL, updated_at TEXT NOT NULL, finished_at TEXT)",
        indexes: &[
            Index { name: "rm_automation_runs_rule_idx", columns: "rule_id, created_at" },
            Index { name: "rm_automation_runs_account_idx", columns: "account_id, created_at" },
            Index { name: "rm_automation_runs_status_idx", columns: "status" },
        ],
    },
    Table {
        name: "rm_automation_pending",
        postgres: "CREATE TABLE IF NOT EXISTS {t} (rule_id text COLLATE \"C\" PRIMARY KEY,
            account_id text COLLATE \"C\" NOT NULL, burst bigint NOT NULL, events bigint NOT NULL,
            first_at timestamptz NOT NULL, last_at timestamptz NOT NULL, last_event_type text NOT NULL,
            due_at timestamptz NOT NULL)",
        sqlite: "CREATE TABLE IF NOT EXISTS {t} (rule_id TEXT PRIMARY KEY, account_id TEXT NOT NULL,
            burst INTEGER NOT NULL, events INTEGER NOT NULL, first_at TEXT NOT NULL, last_at TEXT NOT NULL,
            last_event_type TEXT NOT NULL, due_at TEXT NOT NULL)",
        indexes: &[Index { name: "rm_automation_pending_due_idx", columns: "due_at" }],
    },
    Table {
        name: "rm_automation_slots",
        postgres: "CREATE TABLE IF NOT EXISTS {t} (site_id text COLLATE \"C\" NOT NULL, slot timestamptz NOT NULL,
            account_id text COLLATE \"C\" NOT NULL, run_id text NOT NULL, content_id text NOT NULL,
            PRIMARY KEY (site_id, slot, content_id))",
        sqlite: "CREATE TABLE IF NOT EXISTS {t} (site_id TEXT NOT NULL, slot TEXT NOT NULL, account_id TEXT NOT NULL,
            run_id TEXT NOT NULL, content_id TEXT NOT NULL, PRIMARY KEY (site_id, slot, content_id))",
        indexes: &[],
    },
];

enum Input {
    Rule(RuleEvent),
    Run(RunEvent),
    /// Any other event: a possible trigger.
    Other,
}

fn decode(ev: &StoredEvent) -> Result<Option<Input>, DecodeError> {
    Ok(Some(match ev.aggregate_type.as_str() {
        Rule::TYPE => Input::Rule(ev.decode()?),
        Run::TYPE => Input::Run(ev.decode()?),
        // The lock's events say nothing a rule may wait for.
        "automation_site" => return Ok(None),
        _ => Input::Other,
    }))
}

/// An event rule of an account, as the trigger matching needs it.
#[derive(Clone)]
struct Watch {
    rule_id: String,
    site_id: String,
    event_types: Vec<String>,
    debounce: i64,
}

#[async_trait]
impl Projection for AutomationProjection {
    fn name(&self) -> &'static str {
        NAME
    }
    fn tables(&self) -> &'static [Table] {
        TABLES
    }
    fn version(&self) -> u32 {
        1
    }
    async fn apply_all(
        &self,
        tx: &mut DbTx,
        sfx: &str,
        events: &[&StoredEvent],
    ) -> anyhow::Result<Applied> {
        let (typed, applied) = decode_until(events, decode);
        let t = Tables {
            rules: format!("rm_automation_rules{sfx}"),
            runs: format!("rm_automation_runs{sfx}"),
            pending: format!("rm_automation_pending{sfx}"),
            slots: format!("rm_automation_slots{sfx}"),
            sets: "rm_keyword_sets".to_string(),
        };
        // The account's event rules, read once per batch (and again after a rule changes).
        let mut watches: HashMap<String, Vec<Watch>> = HashMap::new();
        for (ev, e) in &typed {
            match e {
                Input::Rule(e) => {
                    rule(tx, &t, ev, e).await?;
                    if let Some(a) = ev.meta("account_id") {
                        watches.remove(a);
                    }
                }
                Input::Run(e) => run(tx, &t, ev, e).await?,
                Input::Other => {
                    let Some(account) = ev.meta("account_id").map(str::to_string) else {
                        continue;
                    };
                    if !watches.contains_key(&account) {
                        let w = account_watches(tx, &t, &account).await?;
                        watches.insert(account.clone(), w);
                    }
                    let matching: Vec<Watch> = watches[&account]
                        .iter()
                        .filter(|w| w.event_types.contains(&ev.event_type))
                        .cloned()
                        .collect();
                    if matching.is_empty() {
                        continue;
                    }
                    let site = site_of(tx, &t, ev).await?;
                    for w in matching {
                        if site.as_ref().is_none_or(|s| *s == w.site_id) {
                            pend(tx, &t, &account, &w, ev).await?;
                        }
                    }
                }
            }
        }
        Ok(applied)
    }
}

struct Tables {
    rules: String,
    runs: String,
    pending: String,
    slots: String,
    /// The planner's (sector → site), read live.
    sets: String,
}

async fn account_watches(tx: &mut DbTx, t: &Tables, account: &str) -> anyhow::Result<Vec<Watch>> {
    let sql = format!(
        "SELECT rule_id, site_id, event_types, debounce_seconds FROM {} \
         WHERE account_id = $1 AND trigger_type = 'event' AND status = 'active'",
        t.rules
    );
    let rows: Vec<(String, String, String, i64)> = on_tx!(tx, c => sqlx::query_as(&sql)
        .bind(account).fetch_all(&mut *c).await)?;
    Ok(rows
        .into_iter()
        .map(|(rule_id, site_id, types, debounce)| Watch {
            rule_id,
            site_id,
            event_types: serde_json::from_str(&types).unwrap_or_default(),
            debounce,
        })
        .collect())
}

/// The site an event is about, when it says: its payload's `site_id` (or
/// its origin's), or the sector a keyword set belongs to.
async fn site_of(tx: &mut DbTx, t: &Tables, ev: &StoredEvent) -> anyhow::Result<Option<String>> {
    let b = ev.body();
    if let Some(s) = b["site_id"].as_str().or(b["origin"]["site_id"].as_str()) {
        return Ok(Some(s.to_string()));
    }
    if ev.aggregate_type == "sector_keywords" {
        let sql = format!("SELECT site_id FROM {} WHERE sector_id = $1", t.sets);
        let site: Option<String> = on_tx!(tx, c => sqlx::query_scalar(&sql)
            .bind(&ev.aggregate_id).fetch_optional(&mut *c).await)?;
        return Ok(site);
    }
    Ok(None)
}

/// A matching event extends the rule's pending burst (or starts the next one).
async fn pend(
    tx: &mut DbTx,
    t: &Tables,
    account: &str,
    w: &Watch,
    ev: &StoredEvent,
) -> anyhow::Result<()> {
    let at = ev.recorded_at;
    let due = at + chrono::Duration::seconds(w.debounce);
    let sql = format!(
        "UPDATE {} SET events = events + 1, last_at = $2, last_event_type = $3, due_at = $4 WHERE rule_id = $1",
        t.pending
    );
    let updated = on_tx!(tx, c => sqlx::query(&sql)
        .bind(&w.rule_id).bind(at).bind(&ev.event_type).bind(due)
        .execute(&mut *c).await.map(|r| r.rows_affected()))?;
    if updated == 0 {
        let sql = format!(
            "INSERT INTO {} (rule_id, account_id, burst, events, first_at, last_at, last_event_type, due_at) \
             SELECT rule_id, account_id, last_burst + 1, 1, $2, $2, $3, $4 FROM {} WHERE rule_id = $1",
            t.pending, t.rules
        );
        exec(
            tx,
            &sql,
            &[
                w.rule_id.as_str().into(),
                at.into(),
                ev.event_type.as_str().into(),
                due.into(),
            ],
        )
        .await?;
    }
    let _ = account;
    Ok(())
}

fn trigger_fields(def: &RuleDef) -> (&'static str, String, i64) {
    match &def.trigger {
        Trigger::Event {
            event_types,
            debounce_seconds,
        } => ("event", json(event_types), i64::from(*debounce_seconds)),
        t => (t.kind(), "[]".into(), 0),
    }
}

async fn rule(tx: &mut DbTx, t: &Tables, ev: &StoredEvent, e: &RuleEvent) -> anyhow::Result<()> {
    let id = ev.aggregate_id.as_str();
    let at = ev.recorded_at;
    let rules = &t.rules;
    let clear = format!("DELETE FROM {} WHERE rule_id = $1", t.pending);
    match e {
        RuleEvent::RuleCreated {
            account_id,
            site_id,
            def,
            next_slot,
            ..
        } => {
            let (kind, types, debounce) = trigger_fields(def);
            exec(
                tx,
                &format!(
                    "INSERT INTO {rules} (rule_id, account_id, site_id, name, trigger_type, event_types, debounce_seconds, \
                     definition, status, next_slot, runs, last_burst, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'active', $9, 0, 0, $10, $10) ON CONFLICT (rule_id) DO NOTHING"
                ),
                &[
                    id.into(),
                    account_id.to_string().into(),
                    site_id.to_string().into(),
                    def.name.clone().into(),
                    kind.into(),
                    types.into(),
                    debounce.into(),
                    json(def).into(),
                    Val::MaybeAt(*next_slot),
                    at.into(),
                ],
            )
            .await
        }
        RuleEvent::RuleUpdated { def, next_slot } => {
            let (kind, types, debounce) = trigger_fields(def);
            exec(
                tx,
                &format!(
                    "UPDATE {rules} SET name = $2, trigger_type = $3, event_types = $4, debounce_seconds = $5, \
                     definition = $6, next_slot = $7, updated_at = $8 WHERE rule_id = $1"
                ),
                &[
                    id.into(),
                    def.name.clone().into(),
                    kind.into(),
                    types.into(),
                    debounce.into(),
                    json(def).into(),
                    Val::MaybeAt(*next_slot),
                    at.into(),
                ],
            )
            .await?;
            if kind != "event" {
                exec(tx, &clear, &[id.into()]).await?;
            }
            Ok(())
        }
        RuleEvent::RulePaused {} => {
            exec(
                tx,
                &format!("UPDATE {rules} SET status = 'paused', updated_at = $2 WHERE rule_id = $1"),
                &[id.into(), at.into()],
            )
            .await?;
            exec(tx, &clear, &[id.into()]).await
        }
        RuleEvent::RuleResumed { next_slot } => {
            exec(
                tx,
                &format!(
                    "UPDATE {rules} SET status = 'active', next_slot = $2, updated_at = $3 WHERE rule_id = $1"
                ),
                &[id.into(), Val::MaybeAt(*next_slot), at.into()],
            )
            .await
        }
        RuleEvent::RuleDeleted {} => {
            exec(
                tx,
                &format!("DELETE FROM {rules} WHERE rule_id = $1"),
                &[id.into()],
            )
            .await?;
            exec(tx, &clear, &[id.into()]).await
        }
        RuleEvent::RuleFired {
            run_id,
            trigger,
            burst,
            next_slot,
            ..
        } => {
            let schedule = trigger == "schedule";
            exec(
                tx,
                &format!(
                    "UPDATE {rules} SET runs = runs + 1, last_run_id = $2, last_fired_at = $3, \
                     next_slot = CASE WHEN $4 THEN $5 ELSE next_slot END, \
                     last_burst = CASE WHEN $6 > last_burst THEN $6 ELSE last_burst END, updated_at = $3 \
                     WHERE rule_id = $1"
                ),
                &[
                    id.into(),
                    run_id.to_string().into(),
                    at.into(),
                    Val::Bool(schedule),
                    Val::MaybeAt(*next_slot),
                    burst.unwrap_or(0).into(),
                ],
            )
            .await?;
            if let Some(b) = burst {
                exec(
                    tx,
                    &format!("DELETE FROM {} WHERE rule_id = $1 AND burst <= $2", t.pending),
                    &[id.into(), (*b).into()],
                )
                .await?;
            }
            Ok(())
        }
        RuleEvent::SlotsSkipped { next_slot, .. } => {
            exec(
                tx,
                &format!("UPDATE {rules} SET next_slot = $2, updated_at = $3 WHERE rule_id = $1"),
                &[id.into(), Val::MaybeAt(*next_slot), at.into()],
            )
            .await
        }
        RuleEvent::RunBudgetReturned { .. } => Ok(()),
    }
}

/// The run's row: the aggregate's state folded with the domain's `apply`.
async fn run(tx: &mut DbTx, t: &Tables, ev: &StoredEvent, e: &RunEvent) -> anyhow::Result<()> {
    let id = ev.aggregate_id.as_str();
    let at: DateTime<Utc> = ev.recorded_at;
    let runs = &t.runs;
    let sql = format!("SELECT state FROM {runs} WHERE run_id = $1");
    let stored: Option<String> = on_tx!(tx, c => sqlx::query_scalar(&sql)
        .bind(id).fetch_optional(&mut *c).await)?;
    let mut state: Run = stored
        .as_deref()
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_default();
    state.apply(e);
    let conditions = match e {
        RunEvent::RunStarted { conditions, .. } | RunEvent::RunSkipped { conditions, .. } => {
            Some(json(conditions))
        }
        _ => None,
    };
    if let RunEvent::StageJobLaunched { job, .. } = e
        && let (Some(slot), Some(content)) = (job.slot, job.items.first())
    {
        // A post planned at a publish slot: later runs take the next ones.
        exec(
            tx,
            &format!(
                "INSERT INTO {} (site_id, slot, account_id, run_id, content_id) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT DO NOTHING",
                t.slots
            ),
            &[
                state.site_id.unwrap_or_default().to_string().into(),
                slot.into(),
                state.account_id.unwrap_or_default().to_string().into(),
                id.into(),
                content.to_string().into(),
            ],
        )
        .await?;
    }
    let finished = state.finished().then_some(at);
    if stored.is_none() {
        exec(
            tx,
            &format!(
                "INSERT INTO {runs} (run_id, account_id, site_id, rule_id, trigger_type, slot, status, reason, budget, \
                 charged, state, conditions, created_at, updated_at, finished_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13, $14) ON CONFLICT (run_id) DO NOTHING"
            ),
            &[
                id.into(),
                state.account_id.unwrap_or_default().to_string().into(),
                state.site_id.unwrap_or_default().to_string().into(),
                state.rule_id.unwrap_or_default().to_string().into(),
                state.trigger.clone().into(),
                Val::MaybeAt(state.slot),
                state.status.as_str().into(),
                Val::Text(state.reason.clone()),
                state.budget.into(),
                state.charged.into(),
                json(&state).into(),
                conditions.unwrap_or_else(|| "[]".into()).into(),
                at.into(),
                Val::MaybeAt(finished),
            ],
        )
        .await
    } else {
        exec(
            tx,
            &format!(
                "UPDATE {runs} SET status = $2, reason = $3, charged = $4, state = $5, updated_at = $6, \
                 finished_at = COALESCE(finished_at, $7) WHERE run_id = $1"
            ),
            &[
                id.into(),
                state.status.as_str().into(),
                Val::Text(state.reason.clone()),
                state.charged.into(),
                json(&state).into(),
                at.into(),
                Val::MaybeAt(finished),
            ],
        )
        .await
    }
}
