//! API keys for external automation: created by owners and admins with a
//! role and optional site restriction, shown once, stored as a SHA-256 of
//! the secret, revocable; last use recorded (at most once a minute).

use super::users::{check_sites_exist, parse_role};
use crate::auth::Principal;
use crate::auth::RequestCaller;
use crate::auth::principal::{API_KEY_PREFIX, hash_secret};
use crate::http::command::Saved;
use crate::http::{
    ApiError, ApiJson, ApiOk, ApiPath, ApiResult, Command, Empty, Page, PageParams, Paging,
    resource,
};
use crate::state::AppState;
use axum::extract::State;
use axum::response::Response;
use igny8_commands::secrets::random_bytes;
use igny8_domain::tenancy::{ApiKey, ApiKeyCommand};
use igny8_projections::tenancy::{self as rm, ApiKeyRow};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKeyBody {
    #[schema(schema_with = crate::openapi::constraints::name)]
    pub name: String,
    /// admin, editor or viewer.
    #[schema(schema_with = crate::openapi::constraints::grantable_role)]
    pub role: String,
    /// Restrict the key to these sites (empty or absent: every site).
    #[serde(default)]
    pub site_ids: Vec<Uuid>,
}

/// The account's API keys (never their secrets).
#[utoipa::path(get, path = "/api/v1/auth/api-keys/", tag = "api-keys", params(PageParams), security(("bearer" = [])),
    responses((status = 200, description = "A page of keys", body = Page<ApiKeyRow>), (status = 403, description = "Not owner/admin", body = crate::openapi::ErrorEnvelope)))]
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
    pub key: String,
}

/// `{"id": ..., "revoked": true}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct RevokedKey {
    pub id: Uuid,
    pub revoked: bool,
}

/// Create a key. The answer's `key` is the only time the secret is shown.
#[utoipa::path(post, path = "/api/v1/auth/api-keys/", tag = "api-keys", request_body = CreateKeyBody, security(("bearer" = [])),
    responses((status = 201, description = "Created; `key` is shown once", body = Saved<NewApiKey>), (status = 403, description = "Not owner/admin", body = crate::openapi::ErrorEnvelope),
              (status = 422, description = "INVALID_ROLE, UNKNOWN_SITE, INVALID_NAME", body = crate::openapi::ErrorEnvelope)))]
pub async fn create(
    State(s): State<AppState>,
    p: Principal,
    body: ApiJson<CreateKeyBody>,
) -> ApiResult<Response> {
    p.require_manage()?;
    let account = p.account()?;
    let b = body.value;
    let role = parse_role(&b.role)?;
    if role.account_wide() && !b.site_ids.is_empty() {
        // An admin key manages users and keys: a site list would not hold it.
        return Err(ApiError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "VALIDATION_ERROR",
            "site restrictions apply to editor and viewer keys; an admin key sees every site",
        ));
    }
    check_sites_exist(&s, account, &b.site_ids).await?;
    // Random (v4), so the displayed prefix tells keys apart.
    let key_id = Uuid::new_v4();
    let secret = hex::encode(random_bytes());
    let key = format!("{API_KEY_PREFIX}{}_{secret}", key_id.simple());
    let prefix: String = key.chars().take(API_KEY_PREFIX.len() + 8).collect();
    let out = s
        .bus
        .execute::<ApiKey>(
            &key_id.to_string(),
            ApiKeyCommand::Create {
                account_id: account,
                name: b.name,
                role,
                site_ids: b.site_ids,
                prefix: prefix.clone(),
                secret_hash: hash_secret(&secret),
            },
            &p.context(),
        )
        .await?;
    let (k, _) = s.bus.load::<ApiKey>(&key_id.to_string()).await?;
    Ok(resource(
        NewApiKey {
            id: key_id,
            account_id: account,
            name: k.name,
            role: role.as_str(),
            site_ids: k.site_ids.into_iter().collect(),
            prefix,
            key,
        },
        &out,
        true,
    ))
}

/// Revoke a key: it stops working at once.
#[utoipa::path(delete, path = "/api/v1/auth/api-keys/{id}/", tag = "api-keys", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, description = "Revoked", body = Saved<RevokedKey>), (status = 404, description = "Not in this account", body = crate::openapi::ErrorEnvelope)))]
pub async fn revoke(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    Command {
        principal: p, ctx, ..
    }: Command<Empty>,
) -> ApiResult<Response> {
    let out = do_revoke(&s, &p, &ctx, id).await?;
    Ok(resource(RevokedKey { id, revoked: true }, &out, false))
}

pub(crate) async fn do_revoke(
    s: &AppState,
    p: &Principal,
    ctx: &igny8_commands::CommandContext,
    id: Uuid,
) -> ApiResult<igny8_commands::CommandOutcome> {
    let account = p.account()?;
    let (k, _) = s.bus.load::<ApiKey>(&id.to_string()).await?;
    if !k.created || k.account_id != Some(account) {
        return Err(ApiError::not_found("api key"));
    }
    p.require_manage()?;
    Ok(s.bus
        .execute::<ApiKey>(&id.to_string(), ApiKeyCommand::Revoke, ctx)
        .await?)
}
