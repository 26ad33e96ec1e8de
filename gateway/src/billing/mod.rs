//! Billing over HTTP: credits (balance, reserved, available), the ledger,
//! plans, the subscription, operator grants and the raw event history.
//!
//! Route → `igny8_commands::billing` → `igny8_domain::billing` (decide) →
//! events → `igny8_projections::billing` (ledger read model) → query here.
//! Balances are read from the aggregate itself (always current); the ledger
//! from its read model (`min_position` waits for your own writes).

use crate::auth::Principal;
use crate::http::both_slashes;
use crate::http::{
    ApiError, ApiOk, ApiQuery, ApiResult, Command, CreditAmount, Page, Paging, command_result,
};
use crate::state::AppState;
use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use igny8_commands::billing as cmd;
use igny8_domain::billing::{PLANS, Plan};
use igny8_projections::billing::{self as rm, ENTRY_TYPES, LedgerFilter, LedgerRow};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

pub fn routes(r: Router<AppState>) -> Router<AppState> {
    let r = both_slashes(r, "/api/v1/billing/credits/", get(credits));
    let r = both_slashes(r, "/api/v1/billing/credits/grant/", post(grant_credits));
    let r = both_slashes(r, "/api/v1/billing/transactions/", get(transactions));
    let r = both_slashes(r, "/api/v1/billing/plans/", get(plans));
    let r = both_slashes(r, "/api/v1/billing/subscription/", get(subscription));
    let r = both_slashes(r, "/api/v1/billing/usage/", get(usage));
    both_slashes(r, "/api/v1/billing/events/", get(account_events))
}

/// Amounts in credits (numbers with at most 3 decimals).
#[derive(Debug, Serialize, ToSchema)]
pub struct Credits {
    pub account_id: Uuid,
    #[schema(value_type = f64)]
    pub balance: CreditAmount,
    /// Held by running jobs.
    #[schema(value_type = f64)]
    pub reserved: CreditAmount,
    /// `balance - reserved`: what a spend or a new job may use.
    #[schema(value_type = f64)]
    pub available: CreditAmount,
    pub plan: Option<String>,
    /// Version of the account aggregate.
    pub version: u64,
}

/// The balance of the caller's account (always current: read from its events).
#[utoipa::path(get, path = "/api/v1/billing/credits/", tag = "billing", security(("bearer" = [])),
    responses((status = 200, description = "Balance", body = Credits), (status = 401, description = "Not authenticated", body = crate::http::schema::ErrorEnvelope)))]
pub async fn credits(State(s): State<AppState>, p: Principal) -> ApiResult<ApiOk<Credits>> {
    let (a, version) = cmd::balance(&s.bus, &p).await?;
    Ok(ApiOk(Credits {
        account_id: p.account_id,
        balance: CreditAmount(a.balance),
        reserved: CreditAmount(a.reserved()),
        available: CreditAmount(a.available()),
        plan: a.plan.clone(),
        version,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantBody {
    /// The account to credit.
    pub account_id: Uuid,
    /// Credits, at most 3 decimals, 0.001 to 10^12.
    #[schema(schema_with = crate::http::constraints::credits)]
    pub amount: CreditAmount,
    /// Why (shown in the ledger), at most 500 characters.
    #[serde(default)]
    #[schema(schema_with = crate::http::constraints::reason)]
    pub reason: String,
}

/// Grant credits to an account (operators only).
#[utoipa::path(post, path = "/api/v1/billing/credits/grant/", tag = "billing", request_body = GrantBody, security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header), ("If-Match" = Option<String>, Header, description = "Expected version")),
    responses((status = 200, description = "Granted", body = crate::http::command::CommandResult), (status = 403, description = "Not an operator", body = crate::http::schema::ErrorEnvelope),
              (status = 404, description = "Unknown account", body = crate::http::schema::ErrorEnvelope), (status = 422, description = "Invalid", body = crate::http::schema::ErrorEnvelope)))]
pub async fn grant_credits(
    State(s): State<AppState>,
    Command {
        principal: p,
        ctx,
        body: b,
        ..
    }: Command<GrantBody>,
) -> ApiResult<Response> {
    Ok(command_result(
        cmd::grant(&s.bus, &p, &ctx, b.account_id, b.amount.milli(), b.reason).await?,
        false,
    ))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TransactionParams {
    /// grant, spend, reserve, capture or release.
    #[param(schema_with = entry_type_schema)]
    pub entry_type: Option<String>,
    /// Rows at or after this time (RFC 3339).
    pub since: Option<DateTime<Utc>>,
    /// Rows before this time (RFC 3339).
    pub until: Option<DateTime<Utc>>,
}

/// One ledger row over HTTP: amounts in credits.
#[derive(Debug, Serialize, ToSchema)]
pub struct LedgerEntry {
    pub event_id: String,
    pub global_position: i64,
    pub sequence: i64,
    /// grant, spend, reserve, capture or release.
    pub entry_type: String,
    #[schema(value_type = f64)]
    pub amount: CreditAmount,
    /// Signed change of the balance: the sum of `delta` up to a row is its `balance_after`.
    #[schema(value_type = f64)]
    pub delta: CreditAmount,
    #[schema(value_type = f64)]
    pub balance_after: CreditAmount,
    #[schema(value_type = f64)]
    pub reserved_after: CreditAmount,
    pub reservation_id: Option<String>,
    pub reason: String,
    pub actor: String,
    pub occurred_at: DateTime<Utc>,
}

impl From<LedgerRow> for LedgerEntry {
    fn from(r: LedgerRow) -> Self {
        LedgerEntry {
            event_id: r.event_id,
            global_position: r.global_position,
            sequence: r.sequence,
            entry_type: r.entry_type,
            amount: CreditAmount(r.amount),
            delta: CreditAmount(r.delta),
            balance_after: CreditAmount(r.balance_after),
            reserved_after: CreditAmount(r.reserved_after),
            reservation_id: r.reservation_id,
            reason: r.reason,
            actor: r.actor,
            occurred_at: r.occurred_at,
        }
    }
}

/// The credit ledger, oldest first, paginated; summing `delta` gives the balance.
#[utoipa::path(get, path = "/api/v1/billing/transactions/", tag = "billing", params(crate::http::PageParams, TransactionParams), security(("bearer" = [])),
    responses((status = 200, description = "A page of ledger rows", body = Page<LedgerEntry>), (status = 403, description = "Not owner/admin", body = crate::http::schema::ErrorEnvelope)))]
pub async fn transactions(
    State(s): State<AppState>,
    p: Principal,
    paging: Paging,
    ApiQuery(q): ApiQuery<TransactionParams>,
) -> ApiResult<ApiOk<Page<LedgerEntry>>> {
    p.require_billing()?;
    let account_id = p.account()?;
    if let Some(t) = &q.entry_type
        && !ENTRY_TYPES.contains(&t.as_str())
    {
        return Err(ApiError::bad_request(
            "INVALID_QUERY",
            format!("entry_type must be one of {}", ENTRY_TYPES.join(", ")),
        ));
    }
    paging.read_your_writes(&s, rm::NAME).await?;
    let f = LedgerFilter {
        entry_type: q.entry_type.clone(),
        since: q.since,
        until: q.until,
        offset: paging.offset,
        limit: paging.size,
    };
    let (rows, count) = rm::list_ledger(&s.db, &account_id.to_string(), &f).await?;
    Ok(paging.page(rows.into_iter().map(LedgerEntry::from).collect(), count))
}

/// The plan catalogue (public).
#[utoipa::path(get, path = "/api/v1/billing/plans/", tag = "billing",
    responses((status = 200, description = "Plans", body = Vec<PlanView>)))]
pub async fn plans() -> ApiOk<Vec<PlanView>> {
    ApiOk(PLANS.iter().map(PlanView::from).collect())
}

/// A plan of the catalogue.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanView {
    pub id: &'static str,
    pub name: &'static str,
    pub price_usd_cents: i64,
    /// Whole credits granted when a period starts.
    pub included_credits: i64,
    /// `null`: unlimited.
    pub max_sites: Option<u32>,
    /// Whole credits per operation on this plan.
    pub credit_costs: CreditCostsView,
}

/// What each operation costs on a plan, in whole credits.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreditCostsView {
    /// One keyword clustering run (any strategy).
    pub clustering: i64,
    /// One content idea.
    pub idea: i64,
    /// An article, per 500 words delivered (rounded up).
    pub content_per_500_words: i64,
    /// One image prompt (credits; 0.5 on the default plans).
    pub image_prompt: f64,
    /// One stored image of basic quality.
    pub image_basic: i64,
    /// One stored image of premium quality.
    pub image_premium: i64,
}

impl From<&Plan> for PlanView {
    fn from(p: &Plan) -> Self {
        PlanView {
            id: p.id,
            name: p.name,
            price_usd_cents: p.price_usd_cents,
            included_credits: p.included_credits,
            max_sites: p.max_sites,
            credit_costs: CreditCostsView {
                clustering: p.credit_costs.clustering,
                idea: p.credit_costs.idea,
                content_per_500_words: p.credit_costs.content_per_500_words,
                image_prompt: p.credit_costs.image_prompt_milli as f64 / 1000.0,
                image_basic: p.credit_costs.image_basic,
                image_premium: p.credit_costs.image_premium,
            },
        }
    }
}

fn entry_type_schema() -> utoipa::openapi::Object {
    crate::http::schema::string_enum(ENTRY_TYPES)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Subscription {
    pub account_id: Uuid,
    pub plan: Option<String>,
    pub plan_details: Option<PlanView>,
    /// active or expired.
    pub status: &'static str,
    pub period_start: Option<DateTime<Utc>>,
    pub period_end: Option<DateTime<Utc>>,
}

/// The account's subscription (owners and admins).
#[utoipa::path(get, path = "/api/v1/billing/subscription/", tag = "billing", security(("bearer" = [])),
    responses((status = 200, description = "Subscription", body = Subscription), (status = 403, description = "Not owner/admin", body = crate::http::schema::ErrorEnvelope)))]
pub async fn subscription(
    State(s): State<AppState>,
    p: Principal,
) -> ApiResult<ApiOk<Subscription>> {
    let a = cmd::subscription(&s.bus, &p).await?;
    Ok(ApiOk(Subscription {
        account_id: p.account_id,
        plan_details: a
            .plan
            .as_deref()
            .and_then(igny8_domain::billing::plan)
            .map(PlanView::from),
        plan: a.plan.clone(),
        status: if a.period_end.is_some_and(|e| e > Utc::now()) {
            "active"
        } else {
            "expired"
        },
        period_start: a.period_start,
        period_end: a.period_end,
    }))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsParams {
    /// First sequence to return (default 1).
    #[param(minimum = 1)]
    pub from_sequence: Option<i64>,
    /// 1 to 1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

/// The credit account's raw event history (auditors), straight from the store.
#[utoipa::path(get, path = "/api/v1/billing/events/", tag = "billing", params(EventsParams), security(("bearer" = [])),
    responses((status = 200, description = "Events in order", body = Vec<igny8_commands::StoredEvent>), (status = 403, description = "Not owner/admin", body = crate::http::schema::ErrorEnvelope)))]
pub async fn account_events(
    State(s): State<AppState>,
    p: Principal,
    ApiQuery(q): ApiQuery<EventsParams>,
) -> ApiResult<ApiOk<Vec<igny8_commands::StoredEvent>>> {
    p.require_billing()?;
    let account_id = p.account()?;
    let from = q.from_sequence.unwrap_or(1);
    let limit = q.limit.unwrap_or(100);
    if from < 1 || !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request(
            "INVALID_QUERY",
            "from_sequence must be >= 1 and limit 1 to 1000",
        ));
    }
    let events = s
        .feed
        .aggregate_events("account", &account_id.to_string(), from, limit)
        .await?
        .into_iter()
        .map(crate::http::redact)
        .collect();
    Ok(ApiOk(events))
}

/// One unit of work that used credits.
#[derive(Debug, Serialize, ToSchema)]
pub struct Usage {
    pub job_id: String,
    /// e.g. auto_cluster.
    pub operation: String,
    #[schema(value_type = f64)]
    pub credits: CreditAmount,
    pub tokens: i64,
    pub cost_usd: f64,
    /// The provider's model, or `offline` (no provider).
    pub model: String,
    pub finished_at: DateTime<Utc>,
}

/// The usage log: finished work, credits, tokens, provider cost, model (owners and admins).
#[utoipa::path(get, path = "/api/v1/billing/usage/", tag = "billing", params(crate::http::PageParams), security(("bearer" = [])),
    responses((status = 200, description = "A page of usage rows", body = Page<Usage>), (status = 403, description = "Not owner/admin", body = crate::http::schema::ErrorEnvelope)))]
pub async fn usage(
    State(s): State<AppState>,
    p: Principal,
    paging: Paging,
) -> ApiResult<ApiOk<Page<Usage>>> {
    p.require_billing()?;
    let account = p.account()?;
    paging
        .read_your_writes(&s, igny8_projections::jobs::NAME)
        .await?;
    let (rows, count) = igny8_projections::jobs::list_usage(
        &s.db,
        &account.to_string(),
        paging.offset,
        paging.size,
    )
    .await?;
    let rows = rows
        .into_iter()
        .map(|r| {
            let input: serde_json::Value = serde_json::from_str(&r.input).unwrap_or_default();
            let result: serde_json::Value = r
                .result
                .as_deref()
                .and_then(|t| serde_json::from_str(t).ok())
                .unwrap_or_default();
            Usage {
                job_id: r.job_id,
                operation: r.kind,
                credits: CreditAmount(r.charged),
                tokens: r.tokens,
                cost_usd: r.cost_usd_micros as f64 / 1_000_000.0,
                model: result["model"]
                    .as_str()
                    .or(input["strategy"].as_str())
                    .unwrap_or("offline")
                    .to_string(),
                finished_at: r.updated_at,
            }
        })
        .collect();
    Ok(paging.page(rows, count))
}
