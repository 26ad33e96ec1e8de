//! Billing over HTTP: the first domain slice (accounts with a credit balance).
//!
//! Route → command (`igny8_commands::billing`) → events → projection
//! (`igny8_projections::billing`) → query here. Until the identity issue
//! lands, these routes are unauthenticated and the account in the path is
//! the idempotency scope.

use crate::app::{AppState, both_slashes};
use crate::http::{
    ApiError, ApiJson, ApiOk, ApiPath, ApiQuery, ApiResult, CommandHeaders, Created, Page,
};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use igny8_commands::{CommandContext, CommandOutcome, IdempotencyKey, billing as cmd};
use igny8_projections::billing::{self as rm, LedgerFilter, LedgerRow};
use igny8_projections::{WaitOutcome, wait_for};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

pub fn routes(r: Router<AppState>) -> Router<AppState> {
    let r = both_slashes(r, "/api/v1/accounts/", post(open_account));
    let r = both_slashes(r, "/api/v1/accounts/{account_id}/", get(get_account));
    let r = both_slashes(
        r,
        "/api/v1/accounts/{account_id}/credits/grant/",
        post(grant_credits),
    );
    let r = both_slashes(
        r,
        "/api/v1/accounts/{account_id}/credits/spend/",
        post(spend_credits),
    );
    let r = both_slashes(r, "/api/v1/accounts/{account_id}/ledger/", get(list_ledger));
    both_slashes(
        r,
        "/api/v1/accounts/{account_id}/events/",
        get(account_events),
    )
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenAccountBody {
    /// Display name, 1–200 characters.
    pub name: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreditsBody {
    /// Whole credits, 1 to 10^12.
    pub amount: i64,
    /// Why (shown in the ledger), at most 500 characters.
    #[serde(default)]
    pub reason: String,
}

/// The result of a command.
#[derive(Debug, Serialize, ToSchema)]
pub struct CommandResult {
    pub account_id: String,
    pub aggregate_type: String,
    /// Aggregate version after the command (use it in `If-Match`).
    pub version: i64,
    /// Global position of the last event written; pass it as `min_position`
    /// to a query to read your own write.
    pub position: Option<i64>,
    #[schema(value_type = Vec<Object>)]
    pub events: Vec<igny8_commands::bus::OutcomeEvent>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReadParams {
    /// Wait (bounded) until the read model includes the event at this position.
    pub min_position: Option<i64>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LedgerParams {
    pub min_position: Option<i64>,
    /// 1-based page number.
    pub page: Option<i64>,
    /// 1 to 500, default 50.
    pub page_size: Option<i64>,
    /// `grant` or `spend`.
    pub entry_type: Option<String>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsParams {
    /// First sequence to return (default 1).
    pub from_sequence: Option<i64>,
    /// 1 to 1000, default 100.
    pub limit: Option<i64>,
}

/// Hash of what the caller sent: method, path and canonical JSON body.
fn request_hash(method: &Method, uri: &Uri, body: &Value) -> String {
    let mut h = Sha256::new();
    h.update(method.as_str());
    h.update(b"\n");
    h.update(uri.path().trim_end_matches('/'));
    h.update(b"\n");
    h.update(body.to_string());
    hex::encode(h.finalize())
}

fn context(
    scope: &str,
    account_id: Option<Uuid>,
    headers: &CommandHeaders,
    hash: String,
) -> CommandContext {
    let request_id = crate::http::envelope::request_id();
    CommandContext {
        account_id: account_id.map(|a| a.to_string()),
        actor: "anonymous".into(),
        correlation_id: request_id.clone(),
        request_id,
        causation_id: None,
        idempotency: headers.idempotency_key.as_ref().map(|k| IdempotencyKey {
            scope: scope.into(),
            key: k.clone(),
            request_hash: hash,
        }),
        expected_version: headers.expected_version,
    }
}

/// The context of a command on one account (its own idempotency scope).
fn account_command<T>(
    account_id: Uuid,
    method: &Method,
    uri: &Uri,
    headers: &CommandHeaders,
    body: ApiJson<T>,
) -> (CommandContext, T) {
    let hash = request_hash(method, uri, &body.canonical);
    (
        context(&account_id.to_string(), Some(account_id), headers, hash),
        body.value,
    )
}

fn result(outcome: CommandOutcome, created: bool) -> Response {
    let replayed = outcome.replayed;
    let data = CommandResult {
        account_id: outcome.aggregate_id,
        aggregate_type: outcome.aggregate_type,
        version: outcome.version,
        position: outcome.position,
        events: outcome.events,
    };
    let mut r = if created {
        Created(data).into_response()
    } else {
        ApiOk(data).into_response()
    };
    if replayed {
        r.headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    r
}

async fn read_your_writes(s: &AppState, min_position: Option<i64>) -> ApiResult<()> {
    let Some(pos) = min_position else {
        return Ok(());
    };
    if pos < 0 {
        return Err(ApiError::bad_request(
            "INVALID_QUERY",
            "min_position must be >= 0",
        ));
    }
    match wait_for(&s.db, &s.feed, rm::NAME, pos, s.read_wait()).await? {
        WaitOutcome::Reached => Ok(()),
        WaitOutcome::TimedOut => Err(ApiError::unavailable(
            "PROJECTION_BEHIND",
            format!("the read model has not reached position {pos} yet; retry"),
            1,
        )),
    }
}

/// Open an account.
#[utoipa::path(post, path = "/api/v1/accounts/", tag = "billing", request_body = OpenAccountBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for the same key and body")),
    responses((status = 201, description = "Opened", body = CommandResult), (status = 422, description = "Invalid", body = crate::openapi::ErrorEnvelope)))]
pub async fn open_account(
    State(s): State<AppState>,
    method: Method,
    uri: Uri,
    headers: CommandHeaders,
    body: ApiJson<OpenAccountBody>,
) -> ApiResult<Response> {
    let hash = request_hash(&method, &uri, &body.canonical);
    // Until identity lands there is no caller account: one public scope.
    let id = Uuid::now_v7();
    let ctx = context("public", Some(id), &headers, hash);
    let outcome = cmd::open_account(&s.bus, id, body.value.name, &ctx).await?;
    Ok(result(outcome, true))
}

/// An account and its balance (read model).
#[utoipa::path(get, path = "/api/v1/accounts/{account_id}/", tag = "billing", params(("account_id" = Uuid, Path), ReadParams),
    responses((status = 200, description = "The account", body = Object), (status = 404, description = "Unknown", body = crate::openapi::ErrorEnvelope),
              (status = 503, description = "min_position not reached in time", body = crate::openapi::ErrorEnvelope)))]
pub async fn get_account(
    State(s): State<AppState>,
    ApiPath(account_id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<ReadParams>,
) -> ApiResult<ApiOk<rm::AccountRow>> {
    read_your_writes(&s, q.min_position).await?;
    rm::get_account(&s.db, &account_id.to_string())
        .await?
        .map(ApiOk)
        .ok_or_else(|| ApiError::not_found("account"))
}

/// Grant credits.
#[utoipa::path(post, path = "/api/v1/accounts/{account_id}/credits/grant/", tag = "billing", request_body = CreditsBody,
    params(("account_id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header), ("If-Match" = Option<String>, Header, description = "Expected version")),
    responses((status = 200, description = "Granted", body = CommandResult), (status = 404, description = "Unknown account", body = crate::openapi::ErrorEnvelope),
              (status = 409, description = "Version conflict", body = crate::openapi::ErrorEnvelope), (status = 422, description = "Invalid", body = crate::openapi::ErrorEnvelope)))]
pub async fn grant_credits(
    State(s): State<AppState>,
    method: Method,
    uri: Uri,
    ApiPath(account_id): ApiPath<Uuid>,
    headers: CommandHeaders,
    body: ApiJson<CreditsBody>,
) -> ApiResult<Response> {
    let (ctx, b) = account_command(account_id, &method, &uri, &headers, body);
    Ok(result(
        cmd::grant_credits(&s.bus, account_id, b.amount, b.reason, &ctx).await?,
        false,
    ))
}

/// Spend credits; 402 `INSUFFICIENT_CREDITS` when it would overdraw.
#[utoipa::path(post, path = "/api/v1/accounts/{account_id}/credits/spend/", tag = "billing", request_body = CreditsBody,
    params(("account_id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header), ("If-Match" = Option<String>, Header, description = "Expected version")),
    responses((status = 200, description = "Spent", body = CommandResult), (status = 402, description = "Insufficient credits", body = crate::openapi::ErrorEnvelope),
              (status = 404, description = "Unknown account", body = crate::openapi::ErrorEnvelope), (status = 422, description = "Invalid", body = crate::openapi::ErrorEnvelope)))]
pub async fn spend_credits(
    State(s): State<AppState>,
    method: Method,
    uri: Uri,
    ApiPath(account_id): ApiPath<Uuid>,
    headers: CommandHeaders,
    body: ApiJson<CreditsBody>,
) -> ApiResult<Response> {
    let (ctx, b) = account_command(account_id, &method, &uri, &headers, body);
    Ok(result(
        cmd::spend_credits(&s.bus, account_id, b.amount, b.reason, &ctx).await?,
        false,
    ))
}

/// The credit ledger of an account, oldest first, paginated.
#[utoipa::path(get, path = "/api/v1/accounts/{account_id}/ledger/", tag = "billing", params(("account_id" = Uuid, Path), LedgerParams),
    responses((status = 200, description = "A page of ledger rows", body = Object), (status = 404, description = "Unknown account", body = crate::openapi::ErrorEnvelope)))]
pub async fn list_ledger(
    State(s): State<AppState>,
    uri: Uri,
    ApiPath(account_id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<LedgerParams>,
) -> ApiResult<ApiOk<Page<LedgerRow>>> {
    read_your_writes(&s, q.min_position).await?;
    let page = q.page.unwrap_or(1);
    let page_size = q.page_size.unwrap_or(50);
    if page < 1 || !(1..=500).contains(&page_size) {
        return Err(ApiError::bad_request(
            "INVALID_QUERY",
            "page must be >= 1 and page_size 1 to 500",
        ));
    }
    if let Some(t) = &q.entry_type
        && t != "grant"
        && t != "spend"
    {
        return Err(ApiError::bad_request(
            "INVALID_QUERY",
            "entry_type must be grant or spend",
        ));
    }
    let id = account_id.to_string();
    if rm::get_account(&s.db, &id).await?.is_none() {
        return Err(ApiError::not_found("account"));
    }
    let f = LedgerFilter {
        entry_type: q.entry_type.clone(),
        offset: (page - 1).saturating_mul(page_size),
        limit: page_size,
    };
    let (rows, count) = rm::list_ledger(&s.db, &id, &f).await?;
    let mut base = uri.path().to_string();
    if let Some(t) = &q.entry_type {
        base.push_str(&format!("?entry_type={t}"));
    }
    Ok(ApiOk(Page::new(rows, count, page, page_size, &base)))
}

/// The account's raw event history (for auditors), straight from the store.
#[utoipa::path(get, path = "/api/v1/accounts/{account_id}/events/", tag = "billing", params(("account_id" = Uuid, Path), EventsParams),
    responses((status = 200, description = "Events in order", body = Object), (status = 404, description = "Unknown account", body = crate::openapi::ErrorEnvelope)))]
pub async fn account_events(
    State(s): State<AppState>,
    ApiPath(account_id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<EventsParams>,
) -> ApiResult<ApiOk<Vec<igny8_commands::StoredEvent>>> {
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
        .await?;
    if events.is_empty() && from == 1 {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "account not found",
        ));
    }
    Ok(ApiOk(events))
}
