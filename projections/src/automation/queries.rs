//! The queries of `/api/v1/automation/…`: rules, runs, scheduled firings.

use crate::sql::Listing;
use chrono::{DateTime, Utc};
use igny8_commands::db::Db;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RuleRow {
    pub rule_id: String,
    pub account_id: String,
    pub site_id: String,
    pub name: String,
    pub trigger_type: String,
    /// JSON: the rule's definition.
    pub definition: String,
    pub status: String,
    pub next_slot: Option<DateTime<Utc>>,
    pub runs: i64,
    pub last_run_id: Option<String>,
    pub last_fired_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const RULE_COLUMNS: &str = "rule_id, account_id, site_id, name, trigger_type, definition, status, next_slot, runs, \
    last_run_id, last_fired_at, created_at, updated_at";

pub const RULE_ORDERINGS: &[&str] = &["created_at", "updated_at", "name", "next_slot", "status"];
pub const RULE_STATUSES: &[&str] = &["active", "paused"];
pub const TRIGGER_TYPES: &[&str] = &["schedule", "event", "manual"];

#[derive(Debug, Clone, Default)]
pub struct RuleFilter {
    pub site_in: Option<Vec<String>>,
    pub site_id: Option<String>,
    pub status: Option<String>,
    pub trigger_type: Option<String>,
    pub search: Option<String>,
    pub ordering: Option<String>,
    pub offset: i64,
    pub limit: i64,
}

pub async fn page_rules(
    db: &Db,
    account: &str,
    f: &RuleFilter,
) -> Result<(Vec<RuleRow>, i64), sqlx::Error> {
    Listing::new("rm_automation_rules", RULE_COLUMNS, "rule_id", account)
        .sites(f.site_in.clone())
        .eq("site_id", f.site_id.clone())
        .eq("status", f.status.clone())
        .eq("trigger_type", f.trigger_type.clone())
        .search(&["name"], f.search.clone())
        .page(
            db,
            f.ordering.as_deref(),
            RULE_ORDERINGS,
            "created_at",
            f.offset,
            f.limit,
        )
        .await
}

pub async fn get_rule(db: &Db, account: &str, id: &str) -> Result<Option<RuleRow>, sqlx::Error> {
    Listing::new("rm_automation_rules", RULE_COLUMNS, "rule_id", account)
        .eq("rule_id", Some(id.to_string()))
        .one(db)
        .await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RunRow {
    pub run_id: String,
    pub account_id: String,
    pub site_id: String,
    pub rule_id: String,
    pub trigger_type: String,
    pub slot: Option<DateTime<Utc>>,
    pub status: String,
    pub reason: Option<String>,
    pub budget: i64,
    pub charged: i64,
    /// JSON: the run aggregate's state (stages, items, jobs).
    pub state: String,
    /// JSON: the conditions as read when it fired.
    pub conditions: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

const RUN_COLUMNS: &str = "run_id, account_id, site_id, rule_id, trigger_type, slot, status, reason, budget, charged, \
    state, conditions, created_at, updated_at, finished_at";

pub const RUN_ORDERINGS: &[&str] = &["created_at", "updated_at", "finished_at", "status"];
pub const RUN_STATUSES: &[&str] = &[
    "running",
    "succeeded",
    "failed",
    "budget_exhausted",
    "cancelled",
    "skipped",
];

#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    pub site_in: Option<Vec<String>>,
    pub rule_id: Option<String>,
    pub site_id: Option<String>,
    pub status: Option<String>,
    pub trigger_type: Option<String>,
    pub ordering: Option<String>,
    pub offset: i64,
    pub limit: i64,
}

pub async fn page_runs(
    db: &Db,
    account: &str,
    f: &RunFilter,
) -> Result<(Vec<RunRow>, i64), sqlx::Error> {
    Listing::new("rm_automation_runs", RUN_COLUMNS, "run_id", account)
        .sites(f.site_in.clone())
        .eq("rule_id", f.rule_id.clone())
        .eq("site_id", f.site_id.clone())
        .eq("status", f.status.clone())
        .eq("trigger_type", f.trigger_type.clone())
        .page(
            db,
            f.ordering.as_deref(),
            RUN_ORDERINGS,
            "-created_at",
            f.offset,
            f.limit,
        )
        .await
}

pub async fn get_run(db: &Db, account: &str, id: &str) -> Result<Option<RunRow>, sqlx::Error> {
    Listing::new("rm_automation_runs", RUN_COLUMNS, "run_id", account)
        .eq("run_id", Some(id.to_string()))
        .one(db)
        .await
}
