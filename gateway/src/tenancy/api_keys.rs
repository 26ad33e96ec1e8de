//! API keys for external automation: created by owners and admins with a
//! role and optional site restriction, shown once, stored as a SHA-256 of
//! the secret, revocable; last use recorded (at most once a minute).

use crate::auth::Principal;
use crate::http::command::Saved;
use crate::http::{ApiOk, ApiPath, ApiResult, Command, Empty, Page, PageParams, Paging, resource};
use crate::state::AppState;
use axum::extract::State;
use axum::response::Response;
use igny8_commands::tenancy::members;
use igny8_projections::tenancy::{self as rm, ApiKeyRow};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKeyBody {
    #[schema(schema_with = crate::http::constraints::name)]
    pub name: String,
    /// admin, editor or viewer.
    #[schema(schema_with = crate::http::constraints::grantable_role)]
    pub role: String,
    /// Restrict the key to these sites (empty or absent: every site).
    #[serde(default)]
    pub site_ids: Vec<Uuid>,
}

/// The account's API keys (never their secrets).
#[utoipa::path(get, path = "/api/v1/auth/api-keys/", tag = "api-keys", params(PageParams), security(("bearer" = [])),
    responses((status = 200, description = "A page of keys", body = Page<ApiKeyRow>), (status = 403, description = "Not owner/admin", body = crate::http::schema::ErrorEnvelope)))]
pub async fn list(
    State(s): State<AppState>,
    p: Principal,
    paging: Paging,
) -> ApiResult<ApiOk<Page<ApiKeyRow>>> {
    p.require_manage()?;
    let account = p.account()?;
    paging.read_your_writes(&s, rm::NAME).await?;
    let (rows, count) =
        rm::list_api_keys(&s.db, &account.to_string(), paging.offset, paging.size).await?;
    Ok(paging.page(rows, count))
}

/// A new API key: the only answer that shows its secret (`key`).
#[derive(Debug, Serialize, ToSchema)]
pub struct NewApiKey {
    pub id: Uuid,
    pub account_id: Uuid,
    pub name: String,
    #[schema(value_type = crate::auth::RoleName)]
    pub role: &'static str,
    pub site_ids: Vec<Uuid>,
    /// The first characters of the key, shown in lists to recognise it.
    pub prefix: String,
    /// `igny8_<id>_<secret>`: send it as `Authorization: Bearer` or `X-API-Key`.
    /// `null` only on a retry (same Idempotency-Key) more than 24 hours later:
    /// the secret is kept sealed for that window only.
    pub key: Option<String>,
}

/// `{"id": ..., "revoked": true}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct RevokedKey {
    pub id: Uuid,
    pub revoked: bool,
}

/// Create a key. The answer's `key` is the only time the secret is shown.
#[utoipa::path(post, path = "/api/v1/auth/api-keys/", tag = "api-keys", request_body = CreateKeyBody, security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "A retry with the same key and body answers the first key, with its secret for 24 hours")),
    responses((status = 201, description = "Created; `key` is shown once (and again to a retry with the same Idempotency-Key within 24 hours)", body = Saved<NewApiKey>), (status = 403, description = "Not owner/admin", body = crate::http::schema::ErrorEnvelope),
              (status = 422, description = "INVALID_ROLE, UNKNOWN_SITE, INVALID_NAME", body = crate::http::schema::ErrorEnvelope)))]
pub async fn create(
    State(s): State<AppState>,
    Command {
        principal: p,
        ctx,
        body: b,
        ..
    }: Command<CreateKeyBody>,
) -> ApiResult<Response> {
    let input = members::NewKey {
        name: b.name,
        role: b.role,
        site_ids: b.site_ids,
    };
    let done = members::create_api_key(&s.bus, &s.keys.secrets, &p, &ctx, input).await?;
    Ok(resource(
        NewApiKey {
            id: done.id,
            account_id: done.account_id,
            name: done.key.name,
            role: done.role.as_str(),
            site_ids: done.key.site_ids.into_iter().collect(),
            prefix: done.prefix,
            key: done.secret,
        },
        &done.outcome,
        true,
    ))
}

/// Revoke a key: it stops working at once.
#[utoipa::path(delete, path = "/api/v1/auth/api-keys/{id}/", tag = "api-keys", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, description = "Revoked", body = Saved<RevokedKey>), (status = 404, description = "Not in this account", body = crate::http::schema::ErrorEnvelope)))]
pub async fn revoke(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    Command {
        principal: p, ctx, ..
    }: Command<Empty>,
) -> ApiResult<Response> {
    let outcome = members::revoke_api_key(&s.bus, &p, &ctx, id).await?;
    Ok(resource(RevokedKey { id, revoked: true }, &outcome, false))
}
