//! Automation over HTTP: rules (the seeds' `automation/rules`), running
//! one now, pausing, resuming, the dry run; runs (the log) and cancelling
//! one; the next scheduled firings.
//!
//! Route → `igny8_commands::automation` (rules, fire, drive) →
//! `igny8_domain::automation` (`Rule`, `Run`, `SiteLock` decide) → events →
//! `igny8_projections::automation` (`rm_automation_rules`, `…_runs`) → the
//! lists here. The scheduler that fires and drives runs is
//! `igny8_workers::automation`.

use crate::auth::Principal;
use crate::http::command::Saved;
use crate::http::credits::CreditAmount;
use crate::http::schema::{ErrorEnvelope, id, opt_id};
use crate::http::{
    ApiError, ApiOk, ApiPath, ApiQuery, ApiResult, Command, Page, PageParams, Paging, both_slashes,
    read_your_writes, resource,
};
use crate::state::AppState;
use axum::Router;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use igny8_commands::automation::rules::{self as cmd, DryRun};
use igny8_commands::automation::{Automation, fire::Fired};
use igny8_domain::automation::{
    Action, CONDITION_FIELDS, CatchUp, Condition, EVENT_TYPES, FieldType, OPERATORS, Rule, RuleDef,
    RunStatus, Stage, Trigger,
};
use igny8_projections::automation::queries::{self as rm, RuleRow, RunRow};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// The automation use cases' ports on this state.
macro_rules! automation {
    ($s:expr, $lookup:ident, $planner:ident) => {{
        Automation {
            bus: &$s.bus,
            lookup: &$lookup,
            planner: &$planner,
            clock: $s.clock.as_ref(),
        }
    }};
}

fn ports(
    s: &AppState,
) -> (
    igny8_projections::automation::lookup::Lookup,
    igny8_projections::planner::Lookup<'_>,
) {
    (
        igny8_projections::automation::lookup::Lookup::new(&s.bus),
        igny8_projections::planner::Lookup(&s.db),
    )
}

const NAME: &str = igny8_projections::automation::NAME;

pub fn routes(r: Router<AppState>) -> Router<AppState> {
    let base = "/api/v1/automation/rules";
    let r = both_slashes(r, &format!("{base}/"), get(list_rules).post(create_rule));
    let r = both_slashes(
        r,
        &format!("{base}/{{id}}/"),
        get(get_rule).patch(update_rule).delete(delete_rule),
    );
    let r = both_slashes(r, &format!("{base}/{{id}}/execute/"), post(execute));
    let r = both_slashes(r, &format!("{base}/{{id}}/pause/"), post(pause));
    let r = both_slashes(r, &format!("{base}/{{id}}/resume/"), post(resume));
    let r = both_slashes(r, &format!("{base}/{{id}}/dry_run/"), post(dry_run));
    let r = both_slashes(r, "/api/v1/automation/runs/", get(list_runs));
    let r = both_slashes(r, "/api/v1/automation/runs/{id}/", get(get_run));
    let r = both_slashes(r, "/api/v1/automation/runs/{id}/cancel/", post(cancel_run));
    both_slashes(
        r,
        "/api/v1/automation/scheduled-tasks/",
        get(scheduled_tasks),
    )
}

// --- schemas ---------------------------------------------------------------------

fn enum_of(values: &[&str]) -> utoipa::openapi::Object {
    crate::http::schema::string_enum(values)
}
fn trigger_type_schema() -> utoipa::openapi::Object {
    enum_of(&["schedule", "event", "manual"])
}
fn action_schema() -> utoipa::openapi::Object {
    let all: Vec<&str> = Action::ALL.iter().map(|a| a.as_str()).collect();
    enum_of(&all)
}
fn field_schema() -> utoipa::openapi::Object {
    let all: Vec<&str> = CONDITION_FIELDS.iter().map(|(f, _)| *f).collect();
    enum_of(&all)
}
fn operator_schema() -> utoipa::openapi::Object {
    enum_of(OPERATORS)
}
fn catch_up_schema() -> utoipa::openapi::Object {
    enum_of(&["once", "skip"])
}
fn catch_up_opt() -> utoipa::openapi::Object {
    crate::http::constraints::or_null(catch_up_schema())
}
fn rule_status_schema() -> utoipa::openapi::Object {
    enum_of(rm::RULE_STATUSES)
}
fn run_status_schema() -> utoipa::openapi::Object {
    enum_of(rm::RUN_STATUSES)
}
fn rule_ordering_schema() -> utoipa::openapi::Object {
    crate::http::schema::ordering_enum(rm::RULE_ORDERINGS)
}
fn run_ordering_schema() -> utoipa::openapi::Object {
    crate::http::schema::ordering_enum(rm::RUN_ORDERINGS)
}
fn timezone_schema() -> utoipa::openapi::Object {
    let zones: Vec<&str> = chrono_tz::TZ_VARIANTS.iter().map(|z| z.name()).collect();
    enum_of(&zones)
}
fn timezone_opt() -> utoipa::openapi::Object {
    crate::http::constraints::or_null(timezone_schema())
}
fn event_types_schema() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, SchemaType, Type};
    ArrayBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
        .items(enum_of(EVENT_TYPES))
        .min_items(Some(1))
        .max_items(Some(igny8_domain::automation::MAX_EVENT_TYPES))
        .build()
}
/// A 5-field cron expression: five fields of digits, names, `*`, `,`,
/// `-`, `/`, `L`, `W`, `#`, `?` (what parses and fires is checked by the
/// server: INVALID_CRON, CRON_NEVER_FIRES).
fn cron_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .min_length(Some(9))
        .max_length(Some(100))
        .pattern(Some(
            "^\\s*[0-9A-Za-z*,/#?-]+(\\s+[0-9A-Za-z*,/#?-]+){4}\\s*$",
        ))
        .build()
}
fn cron_opt() -> utoipa::openapi::Object {
    crate::http::constraints::or_null(cron_schema())
}
/// A cap in credits: 0 to 10^9, at most 3 decimals.
fn cap_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::Number)
        .minimum(Some(0.0))
        .maximum(Some(1e9))
        .multiple_of(Some(0.001))
        .build()
}
fn cap_opt() -> utoipa::openapi::Object {
    crate::http::constraints::or_null(cap_schema())
}

/// The cross-field rules of the rule bodies (merged into the document by
/// the contract pass): which trigger needs which field, which operator a
/// field's type takes with which value, and each action's batch and settings.
pub fn cross_field_rules() -> Vec<(&'static str, Value)> {
    let numeric: Vec<&str> = CONDITION_FIELDS
        .iter()
        .filter(|(_, t)| *t == FieldType::Number)
        .map(|(f, _)| *f)
        .collect();
    let text: Vec<&str> = CONDITION_FIELDS
        .iter()
        .filter(|(_, t)| *t == FieldType::Text)
        .map(|(f, _)| *f)
        .collect();
    let text_value = json!({"type": "string", "maxLength": 200, "pattern": "^[^\\u0000]*$"});
    let nothing = json!({"type": "null"});
    let stage = |a: Action, params: Value| {
        json!({"properties": {
            "action": {"enum": [a.as_str()]},
            "batch_size": {"type": ["integer", "null"], "minimum": 1, "maximum": a.max_batch()},
            "params": {"anyOf": [nothing, params]},
        }})
    };
    let params = |props: Value| json!({"type": "object", "additionalProperties": false, "properties": props});
    let terms = json!({"type": ["array", "null"], "maxItems": 20, "items": {"type": "string", "minLength": 1, "maxLength": 200,
        "pattern": "^[^\\u0000-\\u001F\\u007F]*[^\\s\\u0000-\\u001F\\u007F][^\\u0000-\\u001F\\u007F]*$"}});
    let uuid_or_null = json!({"type": ["string", "null"], "format": "uuid"});
    vec![
        (
            "TriggerBody",
            json!({"oneOf": [
                {"required": ["cron"], "properties": {"type": {"enum": ["schedule"]}, "cron": {"type": "string"},
                    "event_types": {"type": "null"}, "debounce_seconds": {"type": "null"}}},
                {"required": ["event_types"], "properties": {"type": {"enum": ["event"]}, "event_types": {"type": "array", "minItems": 1},
                    "cron": {"type": "null"}}},
                {"properties": {"type": {"enum": ["manual"]}, "cron": {"type": "null"}, "event_types": {"type": "null"},
                    "debounce_seconds": {"type": "null"}}},
            ]}),
        ),
        (
            "ConditionBody",
            json!({"oneOf": [
                {"properties": {"field": {"enum": numeric}, "operator": {"enum": ["equals", "not_equals", "gt", "gte", "lt", "lte"]},
                    "value": {"type": "number"}}},
                {"properties": {"field": {"enum": numeric}, "operator": {"enum": ["in"]},
                    "value": {"type": "array", "minItems": 1, "maxItems": 50, "items": {"type": "number"}}}},
                {"properties": {"field": {"enum": text}, "operator": {"enum": ["equals", "not_equals", "contains"]},
                    "value": text_value}},
                {"properties": {"field": {"enum": text}, "operator": {"enum": ["in"]},
                    "value": {"type": "array", "minItems": 1, "maxItems": 50, "items": text_value}}},
            ]}),
        ),
        (
            "StageBody",
            json!({"oneOf": [
                stage(Action::AutoCluster, params(json!({"strategy": {"enum": ["offline", "embeddings", "llm", null]},
                    "num_clusters": {"type": ["integer", "null"], "minimum": 1, "maximum": 1000}}))),
                stage(Action::GenerateIdeas, params(json!({"ideas_per_cluster": {"type": ["integer", "null"], "minimum": 1, "maximum": 10},
                    "strategy_id": uuid_or_null, "author_profile_id": uuid_or_null}))),
                stage(Action::QueueIdeasToWriter, params(json!({}))),
                stage(Action::GenerateContent, params(json!({}))),
                stage(Action::ExtractImagePrompts, params(json!({"in_article_images": {"type": ["integer", "null"], "minimum": 0, "maximum": 6}}))),
                stage(Action::GenerateImages, params(json!({"quality": {"enum": ["basic", "premium", null]},
                    "size": {"type": ["string", "null"], "pattern": "^(25[6-9]|2[6-9][0-9]|[3-9][0-9]{2}|1[0-9]{3}|20[0-3][0-9]|204[0-8])x(25[6-9]|2[6-9][0-9]|[3-9][0-9]{2}|1[0-9]{3}|20[0-3][0-9]|204[0-8])$"}}))),
                stage(Action::Publish, params(json!({"status": {"enum": ["draft", "publish", "future", "pending", "private", null]},
                    "categories": terms, "tags": terms,
                    "slots": {"type": ["array", "null"], "minItems": 1, "maxItems": 24,
                        "items": {"type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$"}}}))),
            ]}),
        ),
    ]
}

/// When a rule fires: `schedule` with `cron`, `event` with `event_types`
/// (and `debounce_seconds`), or `manual`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TriggerBody {
    #[serde(rename = "type")]
    #[schema(schema_with = trigger_type_schema)]
    pub kind: String,
    /// 5 fields (minute hour day-of-month month day-of-week) in the rule's time zone.
    #[schema(schema_with = cron_opt)]
    pub cron: Option<String>,
    /// Event types of the catalogue (docs/events.md), 1 to 20.
    #[schema(schema_with = event_types_schema)]
    pub event_types: Option<Vec<String>>,
    /// A burst fires once, this long after its last event (0 to 86,400; default 60).
    #[schema(minimum = 0, maximum = 86400)]
    pub debounce_seconds: Option<u32>,
}

/// `field operator value`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConditionBody {
    #[schema(schema_with = field_schema)]
    pub field: String,
    #[schema(schema_with = operator_schema)]
    pub operator: String,
    /// A number, text, or (for `in`) a list of them: by the field's type.
    #[schema(value_type = Object)]
    pub value: Value,
}

/// A stage: an action, its batch and its settings.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StageBody {
    #[schema(schema_with = action_schema)]
    pub action: String,
    /// Items per run of the stage (the action's limit; default per action).
    #[schema(minimum = 1, maximum = 50000)]
    pub batch_size: Option<u32>,
    /// The action's settings (see docs/api.md).
    #[schema(value_type = Option<Object>)]
    pub params: Option<Value>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRuleBody {
    pub site_id: Uuid,
    #[schema(schema_with = crate::http::constraints::name)]
    pub name: String,
    #[serde(default)]
    #[schema(schema_with = crate::http::constraints::text_2000)]
    pub description: String,
    pub trigger: TriggerBody,
    /// IANA time zone of the cron, the publish slots and the daily budget (default UTC).
    #[schema(schema_with = timezone_opt)]
    pub timezone: Option<String>,
    #[serde(default)]
    #[schema(max_items = 20)]
    pub conditions: Vec<ConditionBody>,
    #[schema(min_items = 1, max_items = 10)]
    pub stages: Vec<StageBody>,
    /// Hard cap of one run, in credits (reserved when the run starts).
    #[schema(schema_with = cap_schema, value_type = f64)]
    pub max_credits_per_run: CreditAmount,
    /// Cap of all runs of a day in the rule's time zone, in credits.
    #[schema(schema_with = cap_opt, value_type = Option<f64>)]
    pub max_credits_per_day: Option<CreditAmount>,
    /// What a firing does with slots missed while nothing ran: `once` (default) or `skip`.
    #[schema(schema_with = catch_up_opt)]
    pub catch_up: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateRuleBody {
    #[schema(schema_with = crate::http::constraints::name_opt)]
    pub name: Option<String>,
    #[schema(schema_with = crate::http::constraints::text_2000)]
    pub description: Option<String>,
    pub trigger: Option<TriggerBody>,
    #[schema(schema_with = timezone_opt)]
    pub timezone: Option<String>,
    #[schema(max_items = 20)]
    pub conditions: Option<Vec<ConditionBody>>,
    #[schema(min_items = 1, max_items = 10)]
    pub stages: Option<Vec<StageBody>>,
    #[schema(schema_with = cap_opt, value_type = Option<f64>)]
    pub max_credits_per_run: Option<CreditAmount>,
    /// `null` keeps it; 0 stops every run of the day.
    #[schema(schema_with = cap_opt, value_type = Option<f64>)]
    pub max_credits_per_day: Option<CreditAmount>,
    #[schema(schema_with = catch_up_opt)]
    pub catch_up: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DryRunBody {
    /// Firings and publish slots over this many days (1 to 30, default 7).
    #[schema(minimum = 1, maximum = 30)]
    pub days: Option<u32>,
}

fn invalid(code: &'static str, msg: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, msg)
}

fn trigger(b: &TriggerBody) -> ApiResult<Trigger> {
    match b.kind.as_str() {
        "schedule" => Ok(Trigger::Schedule {
            cron: b
                .cron
                .clone()
                .ok_or_else(|| invalid("INVALID_CRON", "a schedule trigger needs cron"))?
                .trim()
                .to_string(),
        }),
        "event" => Ok(Trigger::Event {
            event_types: b.event_types.clone().unwrap_or_default(),
            debounce_seconds: b
                .debounce_seconds
                .unwrap_or(igny8_domain::automation::DEFAULT_DEBOUNCE_SECONDS),
        }),
        "manual" => Ok(Trigger::Manual),
        _ => Err(invalid(
            "VALIDATION_ERROR",
            "type is schedule, event or manual",
        )),
    }
}

fn stages(b: Vec<StageBody>) -> ApiResult<Vec<Stage>> {
    b.into_iter()
        .map(|s| {
            let action = Action::parse(&s.action).ok_or_else(|| {
                invalid("INVALID_STAGES", format!("unknown action {:?}", s.action))
            })?;
            Ok(Stage {
                action,
                batch_size: s.batch_size.unwrap_or(action.default_batch()),
                params: s.params.unwrap_or(Value::Null),
            })
        })
        .collect()
}

fn conditions(b: Vec<ConditionBody>) -> Vec<Condition> {
    b.into_iter()
        .map(|c| Condition {
            field: c.field,
            operator: c.operator,
            value: c.value,
        })
        .collect()
}

fn catch_up(s: Option<&str>) -> ApiResult<Option<CatchUp>> {
    match s {
        None => Ok(None),
        Some("once") => Ok(Some(CatchUp::Once)),
        Some("skip") => Ok(Some(CatchUp::Skip)),
        Some(_) => Err(invalid("VALIDATION_ERROR", "catch_up is once or skip")),
    }
}

// --- views ---------------------------------------------------------------------

#[derive(Debug, Serialize, ToSchema)]
pub struct TriggerView {
    #[serde(rename = "type")]
    #[schema(schema_with = trigger_type_schema)]
    pub kind: String,
    pub cron: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub debounce_seconds: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConditionView {
    #[schema(schema_with = field_schema)]
    pub field: String,
    #[schema(schema_with = operator_schema)]
    pub operator: String,
    #[schema(value_type = Object)]
    pub value: Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StageView {
    #[schema(schema_with = action_schema)]
    pub action: String,
    pub batch_size: u32,
    #[schema(value_type = Option<Object>)]
    pub params: Option<Value>,
}

/// A rule.
#[derive(Debug, Serialize, ToSchema)]
pub struct RuleView {
    pub id: Uuid,
    pub site_id: Uuid,
    pub name: String,
    pub description: String,
    pub trigger: TriggerView,
    pub timezone: String,
    pub conditions: Vec<ConditionView>,
    pub stages: Vec<StageView>,
    #[schema(value_type = f64)]
    pub max_credits_per_run: CreditAmount,
    #[schema(value_type = Option<f64>)]
    pub max_credits_per_day: Option<CreditAmount>,
    #[schema(schema_with = catch_up_schema)]
    pub catch_up: String,
    #[schema(schema_with = rule_status_schema)]
    pub status: String,
    /// The next scheduled firing (schedule triggers).
    pub next_slot: Option<DateTime<Utc>>,
    /// Firings so far.
    pub runs: i64,
    pub last_run_id: Option<Uuid>,
    pub last_fired_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn def_view(def: &RuleDef) -> (TriggerView, Vec<ConditionView>, Vec<StageView>) {
    let t = match &def.trigger {
        Trigger::Schedule { cron } => TriggerView {
            kind: "schedule".into(),
            cron: Some(cron.clone()),
            event_types: None,
            debounce_seconds: None,
        },
        Trigger::Event {
            event_types,
            debounce_seconds,
        } => TriggerView {
            kind: "event".into(),
            cron: None,
            event_types: Some(event_types.clone()),
            debounce_seconds: Some(*debounce_seconds),
        },
        Trigger::Manual => TriggerView {
            kind: "manual".into(),
            cron: None,
            event_types: None,
            debounce_seconds: None,
        },
    };
    let c = def
        .conditions
        .iter()
        .map(|c| ConditionView {
            field: c.field.clone(),
            operator: c.operator.clone(),
            value: c.value.clone(),
        })
        .collect();
    let s = def
        .stages
        .iter()
        .map(|s| StageView {
            action: s.action.as_str().into(),
            batch_size: s.batch_size,
            params: (!s.params.is_null()).then(|| s.params.clone()),
        })
        .collect();
    (t, c, s)
}

fn catch_up_str(c: CatchUp) -> &'static str {
    match c {
        CatchUp::Once => "once",
        CatchUp::Skip => "skip",
    }
}

fn rule_view(r: RuleRow) -> ApiResult<RuleView> {
    let def: RuleDef = serde_json::from_str(&r.definition).map_err(ApiError::internal)?;
    let (trigger, conditions, stages) = def_view(&def);
    Ok(RuleView {
        id: id(&r.rule_id),
        site_id: id(&r.site_id),
        name: def.name.clone(),
        description: def.description.clone(),
        trigger,
        timezone: def.timezone.clone(),
        conditions,
        stages,
        max_credits_per_run: CreditAmount(def.max_credits_per_run),
        max_credits_per_day: def.max_credits_per_day.map(CreditAmount),
        catch_up: catch_up_str(def.catch_up).into(),
        status: r.status,
        next_slot: r.next_slot,
        runs: r.runs,
        last_run_id: opt_id(&r.last_run_id),
        last_fired_at: r.last_fired_at,
        created_at: r.created_at,
        updated_at: r.updated_at,
    })
}

/// A rule after a command (from its aggregate: the read model may lag).
#[derive(Debug, Serialize, ToSchema)]
pub struct RuleSaved {
    pub id: Uuid,
    pub site_id: Uuid,
    pub name: String,
    #[schema(schema_with = rule_status_schema)]
    pub status: String,
    pub trigger: TriggerView,
    pub timezone: String,
    pub next_slot: Option<DateTime<Utc>>,
    pub stages: Vec<StageView>,
    pub conditions: Vec<ConditionView>,
    #[schema(value_type = f64)]
    pub max_credits_per_run: CreditAmount,
    #[schema(value_type = Option<f64>)]
    pub max_credits_per_day: Option<CreditAmount>,
    #[schema(schema_with = catch_up_schema)]
    pub catch_up: String,
}

fn saved(id: Uuid, r: &Rule) -> ApiResult<RuleSaved> {
    let def = r.def.as_ref().ok_or_else(|| ApiError::not_found("rule"))?;
    let (trigger, conditions, stages) = def_view(def);
    Ok(RuleSaved {
        id,
        site_id: r.site_id.unwrap_or_default(),
        name: def.name.clone(),
        status: r.status.as_str().into(),
        trigger,
        timezone: def.timezone.clone(),
        next_slot: r.next_slot,
        stages,
        conditions,
        max_credits_per_run: CreditAmount(def.max_credits_per_run),
        max_credits_per_day: def.max_credits_per_day.map(CreditAmount),
        catch_up: catch_up_str(def.catch_up).into(),
    })
}

async fn saved_now(s: &AppState, rule: Uuid) -> ApiResult<RuleSaved> {
    let (r, _) = s.bus.load::<Rule>(&rule.to_string()).await?;
    saved(rule, &r)
}

// --- rules ---------------------------------------------------------------------

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RuleParams {
    pub site_id: Option<Uuid>,
    #[param(schema_with = rule_status_schema)]
    pub status: Option<String>,
    #[param(schema_with = trigger_type_schema)]
    pub trigger: Option<String>,
    /// Part of the name.
    #[param(max_length = 200)]
    pub search: Option<String>,
    /// created_at, updated_at, name, next_slot, status; `-` for descending.
    #[param(schema_with = rule_ordering_schema)]
    pub ordering: Option<String>,
}

/// The rules of the caller's sites.
#[utoipa::path(get, path = "/api/v1/automation/rules/", tag = "automation", params(PageParams, RuleParams), security(("bearer" = [])),
    responses((status = 200, description = "A page of rules", body = Page<RuleView>), (status = 400, description = "INVALID_QUERY", body = ErrorEnvelope)))]
pub async fn list_rules(
    axum::extract::State(s): axum::extract::State<AppState>,
    p: Principal,
    paging: Paging,
    ApiQuery(q): ApiQuery<RuleParams>,
) -> ApiResult<ApiOk<Page<RuleView>>> {
    let account = p.account()?;
    for (v, allowed, what) in [
        (&q.status, rm::RULE_STATUSES, "status"),
        (&q.trigger, rm::TRIGGER_TYPES, "trigger"),
    ] {
        if v.as_deref().is_some_and(|x| !allowed.contains(&x)) {
            return Err(ApiError::bad_request(
                "INVALID_QUERY",
                format!("{what} must be one of {}", allowed.join(", ")),
            ));
        }
    }
    if q.search.as_deref().is_some_and(|x| x.chars().count() > 200) {
        return Err(ApiError::bad_request(
            "INVALID_QUERY",
            "search is at most 200 characters",
        ));
    }
    crate::http::check_ordering(q.ordering.as_deref(), rm::RULE_ORDERINGS)?;
    paging.read_your_writes(&s, NAME).await?;
    let f = rm::RuleFilter {
        site_in: p.site_filter(),
        site_id: q.site_id.map(|x| x.to_string()),
        status: q.status,
        trigger_type: q.trigger,
        search: q.search,
        ordering: q.ordering,
        offset: paging.offset,
        limit: paging.size,
    };
    let (rows, count) = rm::page_rules(&s.db, &account.to_string(), &f).await?;
    let views = rows
        .into_iter()
        .map(rule_view)
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(paging.page(views, count))
}

/// A rule for a site: when it fires (schedule, events, by hand), under
/// which conditions, its stages and its budgets. Checked whole: an unknown
/// field, operator, event type, action or time zone, a cron that does not
/// parse or never fires, a batch out of range → 422, nothing saved.
#[utoipa::path(post, path = "/api/v1/automation/rules/", tag = "automation", request_body = CreateRuleBody, security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "A retry with the same key answers the first rule")),
    responses((status = 201, description = "Created", body = Saved<RuleSaved>), (status = 404, description = "Unknown or invisible site", body = ErrorEnvelope),
              (status = 422, description = "INVALID_NAME, INVALID_CRON, CRON_NEVER_FIRES, UNKNOWN_TIMEZONE, UNKNOWN_EVENT_TYPE, UNKNOWN_FIELD, UNKNOWN_OPERATOR, INVALID_CONDITION, INVALID_STAGES, INVALID_BATCH_SIZE, INVALID_PARAMS, INVALID_BUDGET, VALIDATION_ERROR", body = ErrorEnvelope)))]
pub async fn create_rule(
    axum::extract::State(s): axum::extract::State<AppState>,
    Command {
        principal: p,
        ctx,
        body: b,
        ..
    }: Command<CreateRuleBody>,
) -> ApiResult<Response> {
    let def = RuleDef {
        name: b.name,
        description: b.description,
        trigger: trigger(&b.trigger)?,
        timezone: b.timezone.unwrap_or_else(|| "UTC".into()),
        conditions: conditions(b.conditions),
        stages: stages(b.stages)?,
        max_credits_per_run: b.max_credits_per_run.milli(),
        max_credits_per_day: b.max_credits_per_day.map(CreditAmount::milli),
        catch_up: catch_up(b.catch_up.as_deref())?.unwrap_or_default(),
    };
    let (lookup, planner) = ports(&s);
    let a = automation!(s, lookup, planner);
    let (rid, out) = cmd::create_rule(&a, &p, &ctx, b.site_id, def).await?;
    Ok(resource(saved_now(&s, rid).await?, &out, true))
}

async fn row(s: &AppState, p: &Principal, rid: Uuid) -> ApiResult<RuleRow> {
    rm::get_rule(&s.db, &p.account()?.to_string(), &rid.to_string())
        .await?
        .filter(|r| p.can_see_site(id(&r.site_id)))
        .ok_or_else(|| ApiError::not_found("rule"))
}

/// One rule.
#[utoipa::path(get, path = "/api/v1/automation/rules/{id}/", tag = "automation", params(("id" = Uuid, Path), crate::http::ReadParams), security(("bearer" = [])),
    responses((status = 200, description = "The rule", body = RuleView), (status = 404, description = "Unknown or not visible", body = ErrorEnvelope)))]
pub async fn get_rule(
    axum::extract::State(s): axum::extract::State<AppState>,
    p: Principal,
    ApiPath(rid): ApiPath<Uuid>,
    ApiQuery(r): ApiQuery<crate::http::ReadParams>,
) -> ApiResult<ApiOk<RuleView>> {
    read_your_writes(&s, NAME, r.min_position).await?;
    Ok(ApiOk(rule_view(row(&s, &p, rid).await?)?))
}

/// Change a rule; fields left out keep their value. A changed trigger or
/// time zone schedules from now.
#[utoipa::path(patch, path = "/api/v1/automation/rules/{id}/", tag = "automation", request_body = UpdateRuleBody, params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, description = "Saved", body = Saved<RuleSaved>), (status = 404, description = "Unknown or not visible", body = ErrorEnvelope),
              (status = 422, description = "As for a new rule", body = ErrorEnvelope)))]
pub async fn update_rule(
    axum::extract::State(s): axum::extract::State<AppState>,
    ApiPath(rid): ApiPath<Uuid>,
    Command {
        principal: p,
        ctx,
        body: b,
        ..
    }: Command<UpdateRuleBody>,
) -> ApiResult<Response> {
    let (lookup, planner) = ports(&s);
    let a = automation!(s, lookup, planner);
    let current = cmd::rule_scope(&a, &p, rid).await?;
    let mut def = current.def.ok_or_else(|| ApiError::not_found("rule"))?;
    if let Some(v) = b.name {
        def.name = v;
    }
    if let Some(v) = b.description {
        def.description = v;
    }
    if let Some(t) = &b.trigger {
        def.trigger = trigger(t)?;
    }
    if let Some(v) = b.timezone {
        def.timezone = v;
    }
    if let Some(v) = b.conditions {
        def.conditions = conditions(v);
    }
    if let Some(v) = b.stages {
        def.stages = stages(v)?;
    }
    if let Some(v) = b.max_credits_per_run {
        def.max_credits_per_run = v.milli();
    }
    if let Some(v) = b.max_credits_per_day {
        def.max_credits_per_day = Some(v.milli());
    }
    if let Some(c) = catch_up(b.catch_up.as_deref())? {
        def.catch_up = c;
    }
    let out = cmd::update_rule(&a, &p, &ctx, rid, def).await?;
    Ok(resource(saved_now(&s, rid).await?, &out, false))
}

/// Delete a rule: its run under way is cancelled (lock and budget
/// released); its runs stay in the log.
#[utoipa::path(delete, path = "/api/v1/automation/rules/{id}/", tag = "automation", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, description = "Deleted", body = Saved<crate::http::command::Deleted>), (status = 404, description = "Unknown or not visible", body = ErrorEnvelope)))]
pub async fn delete_rule(
    axum::extract::State(s): axum::extract::State<AppState>,
    ApiPath(rid): ApiPath<Uuid>,
    Command {
        principal: p, ctx, ..
    }: Command<crate::http::Empty>,
) -> ApiResult<Response> {
    let (lookup, planner) = ports(&s);
    let a = automation!(s, lookup, planner);
    let out = cmd::delete_rule(&a, &p, &ctx, rid).await?;
    Ok(resource(
        crate::http::command::Deleted::id(rid),
        &out,
        false,
    ))
}

/// Pause a rule: it fires no more, and its run under way is cancelled
/// (its jobs cancelled, the site's lock and the unspent budget released).
#[utoipa::path(post, path = "/api/v1/automation/rules/{id}/pause/", tag = "automation", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, description = "Paused", body = Saved<RuleSaved>), (status = 404, description = "Unknown or not visible", body = ErrorEnvelope)))]
pub async fn pause(
    axum::extract::State(s): axum::extract::State<AppState>,
    ApiPath(rid): ApiPath<Uuid>,
    Command {
        principal: p, ctx, ..
    }: Command<crate::http::Empty>,
) -> ApiResult<Response> {
    let (lookup, planner) = ports(&s);
    let a = automation!(s, lookup, planner);
    let out = cmd::pause_rule(&a, &p, &ctx, rid).await?;
    Ok(resource(saved_now(&s, rid).await?, &out, false))
}

/// Resume a paused rule: scheduled again from now (slots that passed while
/// it was paused are not caught up).
#[utoipa::path(post, path = "/api/v1/automation/rules/{id}/resume/", tag = "automation", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, description = "Active", body = Saved<RuleSaved>), (status = 404, description = "Unknown or not visible", body = ErrorEnvelope)))]
pub async fn resume(
    axum::extract::State(s): axum::extract::State<AppState>,
    ApiPath(rid): ApiPath<Uuid>,
    Command {
        principal: p, ctx, ..
    }: Command<crate::http::Empty>,
) -> ApiResult<Response> {
    let (lookup, planner) = ports(&s);
    let a = automation!(s, lookup, planner);
    let out = cmd::resume_rule(&a, &p, &ctx, rid).await?;
    Ok(resource(saved_now(&s, rid).await?, &out, false))
}

/// A run fired by hand (or a skipped one, with why).
#[derive(Debug, Serialize, ToSchema)]
pub struct RunStarted {
    pub run_id: Uuid,
    #[schema(schema_with = run_status_schema)]
    pub status: String,
    /// Why it was skipped (conditions_not_met, no_credits, daily_budget_spent).
    pub reason: Option<String>,
    /// Pass as `min_position` to read the run.
    pub position: Option<i64>,
}

/// Run a rule now (202 with the run; the scheduler drives it): 409
/// RULE_PAUSED, SITE_BUSY (another run holds the site). A run whose
/// conditions do not hold is recorded as skipped, with the values read.
#[utoipa::path(post, path = "/api/v1/automation/rules/{id}/execute/", tag = "automation", params(("id" = Uuid, Path),
        ("Idempotency-Key" = Option<String>, Header, description = "A retry with the same key answers the same run")), security(("bearer" = [])),
    responses((status = 202, description = "The run", body = RunStarted), (status = 404, description = "Unknown or not visible", body = ErrorEnvelope),
              (status = 409, description = "RULE_PAUSED, SITE_BUSY", body = ErrorEnvelope)))]
pub async fn execute(
    axum::extract::State(s): axum::extract::State<AppState>,
    ApiPath(rid): ApiPath<Uuid>,
    Command {
        principal: p, ctx, ..
    }: Command<crate::http::Empty>,
) -> ApiResult<Response> {
    let (lookup, planner) = ports(&s);
    let a = automation!(s, lookup, planner);
    let f: Fired = cmd::execute_rule(&a, &p, &ctx, rid).await?;
    let run_id = f
        .run_id
        .ok_or_else(|| ApiError::internal("a manual firing without a run"))?;
    let data = RunStarted {
        run_id,
        status: f.status.unwrap_or(RunStatus::Running).as_str().into(),
        reason: f.reason,
        position: f.position,
    };
    Ok(crate::http::envelope::with_status(
        StatusCode::ACCEPTED,
        data,
    ))
}

/// One stage of a dry run.
#[derive(Debug, Serialize, ToSchema)]
pub struct DryRunStageView {
    pub stage: usize,
    #[schema(schema_with = action_schema)]
    pub action: String,
    /// Items it would take.
    pub items: usize,
    /// Their ids, for items that exist already.
    pub item_ids: Vec<Uuid>,
    #[schema(value_type = f64)]
    pub credits: CreditAmount,
    /// Items the budget would leave.
    pub left_for_budget: usize,
    /// Items it would make for the next stage.
    pub makes: usize,
    /// The run would stop (budget) before this stage.
    pub not_reached: bool,
}

/// A condition as read now.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConditionCheckView {
    #[schema(schema_with = field_schema)]
    pub field: String,
    #[schema(schema_with = operator_schema)]
    pub operator: String,
    #[schema(value_type = Object)]
    pub value: Value,
    #[schema(value_type = Object)]
    pub actual: Value,
    pub held: bool,
}

/// A post a publish stage would plan.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlannedPost {
    /// `null`: an article earlier stages would write.
    pub content_id: Option<Uuid>,
    /// `null`: published at once (no slots).
    pub slot: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DryRunView {
    pub rule_id: Uuid,
    pub at: DateTime<Utc>,
    /// Active, and its conditions hold now.
    pub would_run: bool,
    #[schema(schema_with = rule_status_schema)]
    pub status: String,
    pub conditions: Vec<ConditionCheckView>,
    /// The rule's allotment now (per-run and daily caps).
    #[schema(value_type = f64)]
    pub allotted: CreditAmount,
    #[schema(value_type = f64)]
    pub available: CreditAmount,
    /// What the run would reserve (the smaller of the two).
    #[schema(value_type = f64)]
    pub reserved: CreditAmount,
    pub stages: Vec<DryRunStageView>,
    /// What its jobs would reserve in all.
    #[schema(value_type = f64)]
    pub credits: CreditAmount,
    pub stops_for_budget: bool,
    pub posts: Vec<PlannedPost>,
    /// Scheduled firings within the days asked.
    pub next_firings: Vec<DateTime<Utc>>,
}

impl From<DryRun> for DryRunView {
    fn from(d: DryRun) -> Self {
        DryRunView {
            rule_id: d.rule_id,
            at: d.at,
            would_run: d.would_run,
            status: d.status.as_str().into(),
            conditions: d
                .conditions
                .into_iter()
                .map(|c| ConditionCheckView {
                    field: c.field,
                    operator: c.operator,
                    value: c.value,
                    actual: c.actual,
                    held: c.held,
                })
                .collect(),
            allotted: CreditAmount(d.allotted),
            available: CreditAmount(d.available),
            reserved: CreditAmount(d.reserved),
            stages: d
                .stages
                .into_iter()
                .map(|s| DryRunStageView {
                    stage: s.stage,
                    action: s.action.as_str().into(),
                    items: s.items,
                    item_ids: s.item_ids,
                    credits: CreditAmount(s.credits),
                    left_for_budget: s.left_for_budget,
                    makes: s.makes,
                    not_reached: s.not_reached,
                })
                .collect(),
            credits: CreditAmount(d.credits),
            stops_for_budget: d.stops_for_budget,
            posts: d
                .posts
                .into_iter()
                .map(|(content_id, slot)| PlannedPost { content_id, slot })
                .collect(),
            next_firings: d.next_firings,
        }
    }
}

/// A dry run: what a run fired now would take, stage by stage, what it
/// would cost at the plan's prices and where the budget would stop it, the
/// posts and their publish slots, and the scheduled firings of the next
/// days — read with the same selection code as a run; nothing is written.
#[utoipa::path(post, path = "/api/v1/automation/rules/{id}/dry_run/", tag = "automation", request_body = DryRunBody, params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, description = "The forecast", body = DryRunView), (status = 404, description = "Unknown or not visible", body = ErrorEnvelope),
              (status = 422, description = "VALIDATION_ERROR (days out of range)", body = ErrorEnvelope)))]
pub async fn dry_run(
    axum::extract::State(s): axum::extract::State<AppState>,
    ApiPath(rid): ApiPath<Uuid>,
    Command {
        principal: p,
        body: b,
        ..
    }: Command<DryRunBody>,
) -> ApiResult<ApiOk<DryRunView>> {
    let days = b.days.unwrap_or(7);
    if !(1..=30).contains(&days) {
        return Err(invalid("VALIDATION_ERROR", "days is 1 to 30"));
    }
    let (lookup, planner) = ports(&s);
    let a = automation!(s, lookup, planner);
    Ok(ApiOk(cmd::dry_run(&a, &p, rid, days).await?.into()))
}

// --- runs ---------------------------------------------------------------------

#[derive(Debug, Serialize, ToSchema)]
pub struct SkippedItemView {
    pub id: Uuid,
    /// budget, or the refusal's or failure's reason.
    pub reason: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StageJobView {
    pub job_id: Uuid,
    pub items: Vec<Uuid>,
    #[schema(value_type = f64)]
    pub reserved: CreditAmount,
    /// A publish job's slot.
    pub slot: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RunStageView {
    pub stage: usize,
    #[schema(schema_with = action_schema)]
    pub action: String,
    pub batch_size: u32,
    #[schema(schema_with = stage_status_schema)]
    pub status: String,
    /// The items it took (`null`: not chosen yet).
    pub items: Option<Vec<Uuid>>,
    /// Items it did not take or that failed, with why.
    pub skipped: Vec<SkippedItemView>,
    pub jobs: Vec<StageJobView>,
    /// What it made (the next stage's items).
    pub outputs: Vec<Uuid>,
    #[schema(value_type = f64)]
    pub credits_charged: CreditAmount,
    pub error: Option<String>,
}

fn stage_status_schema() -> utoipa::openapi::Object {
    enum_of(&["pending", "running", "done", "failed", "skipped"])
}

/// A run: its firing, stages, items, jobs, credits and outcome.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunView {
    pub id: Uuid,
    pub rule_id: Uuid,
    pub site_id: Uuid,
    #[schema(schema_with = trigger_type_schema)]
    pub trigger: String,
    /// The scheduled instant it fired for.
    pub slot: Option<DateTime<Utc>>,
    #[schema(schema_with = run_status_schema)]
    pub status: String,
    pub reason: Option<String>,
    /// Reserved when it started (its cap).
    #[schema(value_type = f64)]
    pub budget: CreditAmount,
    /// Moved to its jobs.
    #[schema(value_type = f64)]
    pub credits_reserved: CreditAmount,
    #[schema(value_type = f64)]
    pub credits_charged: CreditAmount,
    /// The conditions as read when it fired.
    pub conditions: Vec<ConditionCheckView>,
    pub stages: Vec<RunStageView>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

fn stage_status(s: igny8_domain::automation::StageStatus) -> &'static str {
    use igny8_domain::automation::StageStatus as S;
    match s {
        S::Pending => "pending",
        S::Running => "running",
        S::Done => "done",
        S::Failed => "failed",
        S::Skipped => "skipped",
    }
}

fn run_view(r: RunRow) -> ApiResult<RunView> {
    let state: igny8_domain::automation::Run =
        serde_json::from_str(&r.state).map_err(ApiError::internal)?;
    let conditions: Value = serde_json::from_str(&r.conditions).unwrap_or(Value::Null);
    Ok(RunView {
        id: id(&r.run_id),
        rule_id: id(&r.rule_id),
        site_id: id(&r.site_id),
        trigger: r.trigger_type,
        slot: r.slot,
        status: r.status,
        reason: r.reason,
        budget: CreditAmount(state.budget),
        credits_reserved: CreditAmount(state.drawn),
        credits_charged: CreditAmount(state.charged),
        conditions: cmd::checks(&conditions)
            .into_iter()
            .map(|c| ConditionCheckView {
                field: c.field,
                operator: c.operator,
                value: c.value,
                actual: c.actual,
                held: c.held,
            })
            .collect(),
        stages: state
            .stages
            .iter()
            .enumerate()
            .map(|(i, s)| RunStageView {
                stage: i,
                action: s.action.map_or("", |a| a.as_str()).to_string(),
                batch_size: s.batch_size,
                status: stage_status(s.status).into(),
                items: s.items.clone(),
                skipped: s
                    .skipped
                    .iter()
                    .chain(s.dropped.iter())
                    .map(|k| SkippedItemView {
                        id: k.id,
                        reason: k.reason.clone(),
                    })
                    .collect(),
                jobs: s
                    .jobs
                    .iter()
                    .map(|j| StageJobView {
                        job_id: j.job_id,
                        items: j.items.clone(),
                        reserved: CreditAmount(j.reserved),
                        slot: j.slot,
                    })
                    .collect(),
                outputs: s.outputs.clone(),
                credits_charged: CreditAmount(s.charged),
                error: s.error.clone(),
            })
            .collect(),
        created_at: r.created_at,
        updated_at: r.updated_at,
        finished_at: r.finished_at,
    })
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RunParams {
    pub rule_id: Option<Uuid>,
    pub site_id: Option<Uuid>,
    #[param(schema_with = run_status_schema)]
    pub status: Option<String>,
    #[param(schema_with = trigger_type_schema)]
    pub trigger: Option<String>,
    /// created_at, updated_at, finished_at, status; `-` for descending (default `-created_at`).
    #[param(schema_with = run_ordering_schema)]
    pub ordering: Option<String>,
}

/// Runs, newest first: 20 a page unless `page_size` says otherwise; every
/// run stays in the log.
#[utoipa::path(get, path = "/api/v1/automation/runs/", tag = "automation", params(PageParams, RunParams), security(("bearer" = [])),
    responses((status = 200, description = "A page of runs", body = Page<RunView>), (status = 400, description = "INVALID_QUERY", body = ErrorEnvelope)))]
pub async fn list_runs(
    axum::extract::State(s): axum::extract::State<AppState>,
    p: Principal,
    paging: Paging,
    ApiQuery(q): ApiQuery<RunParams>,
) -> ApiResult<ApiOk<Page<RunView>>> {
    let account = p.account()?;
    let paging = paging.default_size(20);
    for (v, allowed, what) in [
        (&q.status, rm::RUN_STATUSES, "status"),
        (&q.trigger, rm::TRIGGER_TYPES, "trigger"),
    ] {
        if v.as_deref().is_some_and(|x| !allowed.contains(&x)) {
            return Err(ApiError::bad_request(
                "INVALID_QUERY",
                format!("{what} must be one of {}", allowed.join(", ")),
            ));
        }
    }
    crate::http::check_ordering(q.ordering.as_deref(), rm::RUN_ORDERINGS)?;
    paging.read_your_writes(&s, NAME).await?;
    let f = rm::RunFilter {
        site_in: p.site_filter(),
        rule_id: q.rule_id.map(|x| x.to_string()),
        site_id: q.site_id.map(|x| x.to_string()),
        status: q.status,
        trigger_type: q.trigger,
        ordering: q.ordering,
        offset: paging.offset,
        limit: paging.size,
    };
    let (rows, count) = rm::page_runs(&s.db, &account.to_string(), &f).await?;
    let views = rows
        .into_iter()
        .map(run_view)
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(paging.page(views, count))
}

/// One run.
#[utoipa::path(get, path = "/api/v1/automation/runs/{id}/", tag = "automation", params(("id" = Uuid, Path), crate::http::ReadParams), security(("bearer" = [])),
    responses((status = 200, description = "The run", body = RunView), (status = 404, description = "Unknown or not visible", body = ErrorEnvelope)))]
pub async fn get_run(
    axum::extract::State(s): axum::extract::State<AppState>,
    p: Principal,
    ApiPath(run): ApiPath<Uuid>,
    ApiQuery(r): ApiQuery<crate::http::ReadParams>,
) -> ApiResult<ApiOk<RunView>> {
    read_your_writes(&s, NAME, r.min_position).await?;
    let row = rm::get_run(&s.db, &p.account()?.to_string(), &run.to_string())
        .await?
        .filter(|r| p.can_see_site(id(&r.site_id)))
        .ok_or_else(|| ApiError::not_found("run"))?;
    Ok(ApiOk(run_view(row)?))
}

/// A run after its cancel.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunCancelled {
    pub run_id: Uuid,
    #[schema(schema_with = run_status_schema)]
    pub status: String,
}

/// Cancel a run: its jobs are cancelled (their credits released), the
/// site's lock and the unspent budget released; 409 RUN_FINISHED when it
/// has ended.
#[utoipa::path(post, path = "/api/v1/automation/runs/{id}/cancel/", tag = "automation", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, description = "Cancelled", body = RunCancelled), (status = 404, description = "Unknown or not visible", body = ErrorEnvelope),
              (status = 409, description = "RUN_FINISHED", body = ErrorEnvelope)))]
pub async fn cancel_run(
    axum::extract::State(s): axum::extract::State<AppState>,
    ApiPath(run): ApiPath<Uuid>,
    Command {
        principal: p, ctx, ..
    }: Command<crate::http::Empty>,
) -> ApiResult<ApiOk<RunCancelled>> {
    let (lookup, planner) = ports(&s);
    let a = automation!(s, lookup, planner);
    cmd::cancel_run(&a, &p, &ctx, run).await?;
    Ok(ApiOk(RunCancelled {
        run_id: run,
        status: "cancelled".into(),
    }))
}

/// The next firings of a schedule rule.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScheduledTask {
    pub rule_id: Uuid,
    pub rule_name: String,
    pub site_id: Uuid,
    pub cron: String,
    pub timezone: String,
    pub next_firings: Vec<DateTime<Utc>>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ScheduledParams {
    pub site_id: Option<Uuid>,
    /// Firings per rule (1 to 50, default 5).
    #[param(minimum = 1, maximum = 50)]
    pub firings: Option<u32>,
    /// Only firings within this many days (1 to 366, default 30).
    #[param(minimum = 1, maximum = 366)]
    pub days: Option<u32>,
}

/// The next firings of every active schedule rule of the caller's sites,
/// soonest rule first.
#[utoipa::path(get, path = "/api/v1/automation/scheduled-tasks/", tag = "automation", params(PageParams, ScheduledParams), security(("bearer" = [])),
    responses((status = 200, description = "A page of rules with their next firings", body = Page<ScheduledTask>), (status = 400, description = "INVALID_QUERY", body = ErrorEnvelope)))]
pub async fn scheduled_tasks(
    axum::extract::State(s): axum::extract::State<AppState>,
    p: Principal,
    paging: Paging,
    ApiQuery(q): ApiQuery<ScheduledParams>,
) -> ApiResult<ApiOk<Page<ScheduledTask>>> {
    let account = p.account()?;
    let n = q.firings.unwrap_or(5);
    let days = q.days.unwrap_or(30);
    if !(1..=50).contains(&n) || !(1..=366).contains(&days) {
        return Err(ApiError::bad_request(
            "INVALID_QUERY",
            "firings is 1 to 50 and days 1 to 366",
        ));
    }
    paging.read_your_writes(&s, NAME).await?;
    let f = rm::RuleFilter {
        site_in: p.site_filter(),
        site_id: q.site_id.map(|x| x.to_string()),
        status: Some("active".into()),
        trigger_type: Some("schedule".into()),
        ordering: Some("next_slot".into()),
        offset: paging.offset,
        limit: paging.size,
        ..Default::default()
    };
    let (rows, count) = rm::page_rules(&s.db, &account.to_string(), &f).await?;
    let until = s.clock.now() + chrono::Duration::days(i64::from(days));
    let mut out = vec![];
    for r in rows {
        let rid = id(&r.rule_id);
        let (rule, _) = s.bus.load::<Rule>(&rid.to_string()).await?;
        let Some(def) = &rule.def else { continue };
        let Trigger::Schedule { cron } = &def.trigger else {
            continue;
        };
        out.push(ScheduledTask {
            rule_id: rid,
            rule_name: def.name.clone(),
            site_id: id(&r.site_id),
            cron: cron.clone(),
            timezone: def.timezone.clone(),
            next_firings: cmd::next_firings(&rule, until, n as usize),
        });
    }
    Ok(paging.page(out, count))
}
