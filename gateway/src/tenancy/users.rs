//! Users of an account: list, create, read, change role or name, delete,
//! grant sites. Owners and admins manage; everyone may read themselves.

use super::auth::user_json;
use crate::app::AppState;
use crate::auth::{Principal, forbidden};
use crate::http::{
    ApiError, ApiJson, ApiOk, ApiPath, ApiQuery, ApiResult, CommandHeaders, Page, PageParams,
    context, read_your_writes, resource,
};
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri};
use axum::response::Response;
use igny8_commands::tenancy as cmd;
use igny8_domain::tenancy::{Role, Tenant, User, UserCommand};
use igny8_projections::tenancy::{self as rm, UserRow};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserBody {
    pub email: String,
    /// At least 8 characters.
    pub password: String,
    /// admin, editor or viewer.
    pub role: String,
    #[serde(default)]
    pub name: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUserBody {
    /// admin, editor or viewer (the owner stays owner).
    pub role: Option<String>,
    pub name: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SitesBody {
    /// The sites an editor or viewer may see (replaces the current grants).
    pub site_ids: Vec<Uuid>,
}

pub(crate) fn parse_role(raw: &str) -> ApiResult<Role> {
    match Role::parse(raw.trim()) {
        Some(r) if r.grantable() => Ok(r),
        _ => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_ROLE",
            format!("role must be admin, editor or viewer, not {raw:?}"),
        )),
    }
}

/// The user, if it belongs to the caller's account (else 404, like a missing one).
pub(crate) async fn user_in_account(s: &AppState, p: &Principal, id: Uuid) -> ApiResult<User> {
    let account = p.account()?;
    let (u, _) = s.bus.load::<User>(&id.to_string()).await?;
    if !u.active() || u.account_id != Some(account) {
        return Err(ApiError::not_found("user"));
    }
    Ok(u)
}

/// Every id must be a site of the account.
pub(crate) async fn check_sites_exist(s: &AppState, account: Uuid, ids: &[Uuid]) -> ApiResult<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let (t, _) = s.bus.load::<Tenant>(&account.to_string()).await?;
    if let Some(missing) = ids.iter().find(|id| !t.sites.contains_key(id)) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "UNKNOWN_SITE",
            format!("site {missing} does not exist in this account"),
        ));
    }
    Ok(())
}

/// Users of the account (owners and admins).
#[utoipa::path(get, path = "/api/v1/auth/users/", tag = "users", params(PageParams), security(("bearer" = [])),
    responses((status = 200, description = "A page of users", body = Object), (status = 403, description = "Not owner/admin", body = crate::openapi::ErrorEnvelope)))]
pub async fn list(
    State(s): State<AppState>,
    p: Principal,
    uri: Uri,
    ApiQuery(q): ApiQuery<PageParams>,
) -> ApiResult<ApiOk<Page<UserRow>>> {
    p.require_manage()?;
    let account = p.account()?;
    let (page, size, offset) = q.window()?;
    read_your_writes(&s, rm::NAME, q.min_position).await?;
    let (rows, count) = rm::list_users(&s.db, &account.to_string(), offset, size).await?;
    Ok(ApiOk(Page::new(
        rows,
        count,
        page,
        size,
        &crate::http::envelope::page_base(&uri),
    )))
}

/// Add a user to the account.
#[utoipa::path(post, path = "/api/v1/auth/users/", tag = "users", request_body = CreateUserBody, security(("bearer" = [])),
    responses((status = 201, description = "Created", body = Object), (status = 403, description = "Not owner/admin", body = crate::openapi::ErrorEnvelope),
              (status = 409, description = "EMAIL_TAKEN", body = crate::openapi::ErrorEnvelope), (status = 422, description = "INVALID_ROLE, INVALID_EMAIL, INVALID_PASSWORD", body = crate::openapi::ErrorEnvelope)))]
pub async fn create(
    State(s): State<AppState>,
    p: Principal,
    body: ApiJson<CreateUserBody>,
) -> ApiResult<Response> {
    p.require_manage()?;
    let account = p.account()?;
    let b = body.value;
    let role = parse_role(&b.role)?;
    let (id, outcomes) = cmd::create_user(
        &s.bus,
        &s.keys.secrets,
        account,
        &b.email,
        &b.password,
        &b.name,
        role,
        &p.context(),
    )
    .await?;
    let (u, _) = s.bus.load::<User>(&id.to_string()).await?;
    let outcome = outcomes
        .into_iter()
        .find(|o| o.aggregate_type == "user")
        .ok_or_else(|| ApiError::internal("user not written"))?;
    Ok(resource(user_json(id, &u), &outcome, true))
}

/// One user (owners and admins; anyone for themselves).
#[utoipa::path(get, path = "/api/v1/auth/users/{id}/", tag = "users", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, description = "The user", body = Object), (status = 404, description = "Not in this account", body = crate::openapi::ErrorEnvelope)))]
pub async fn get_one(
    State(s): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<ApiOk<serde_json::Value>> {
    let u = user_in_account(&s, &p, id).await?;
    if p.user_id != Some(id) {
        p.require_manage()?;
    }
    Ok(ApiOk(user_json(id, &u)))
}

/// Change a user's role or name.
#[utoipa::path(patch, path = "/api/v1/auth/users/{id}/", tag = "users", request_body = UpdateUserBody, params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, description = "Updated", body = Object), (status = 404, description = "Not in this account", body = crate::openapi::ErrorEnvelope),
              (status = 409, description = "OWNER_PROTECTED", body = crate::openapi::ErrorEnvelope), (status = 422, description = "INVALID_ROLE", body = crate::openapi::ErrorEnvelope)))]
pub async fn update(
    State(s): State<AppState>,
    p: Principal,
    method: Method,
    uri: Uri,
    ApiPath(id): ApiPath<Uuid>,
    headers: CommandHeaders,
    body: ApiJson<UpdateUserBody>,
) -> ApiResult<Response> {
    user_in_account(&s, &p, id).await?;
    p.require_manage()?;
    let ctx = context(&p, &headers, &method, &uri, &body.canonical);
    let b = body.value;
    let role = b.role.as_deref().map(parse_role).transpose()?;
    // One command: the rename and the role change commit together or not at all.
    let out = cmd::user(&s.bus, id, UserCommand::Update { name: b.name, role }, &ctx).await?;
    let (u, _) = s.bus.load::<User>(&id.to_string()).await?;
    Ok(resource(user_json(id, &u), &out, false))
}

/// Remove a user (the owner cannot be removed); their email becomes free.
#[utoipa::path(delete, path = "/api/v1/auth/users/{id}/", tag = "users", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, description = "Deleted", body = Object), (status = 404, description = "Not in this account", body = crate::openapi::ErrorEnvelope),
              (status = 409, description = "OWNER_PROTECTED", body = crate::openapi::ErrorEnvelope)))]
pub async fn remove(
    State(s): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Response> {
    user_in_account(&s, &p, id).await?;
    p.require_manage()?;
    if p.user_id == Some(id) {
        return Err(forbidden("you cannot delete yourself"));
    }
    let outcomes = cmd::delete_user(&s.bus, id, &p.context()).await?;
    let outcome = outcomes
        .into_iter()
        .find(|o| o.aggregate_type == "user")
        .ok_or_else(|| ApiError::internal("user not written"))?;
    Ok(resource(
        serde_json::json!({"id": id, "deleted": true}),
        &outcome,
        false,
    ))
}

/// Replace the sites an editor or viewer may see.
#[utoipa::path(put, path = "/api/v1/auth/users/{id}/sites/", tag = "users", request_body = SitesBody, params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, description = "Granted", body = Object), (status = 404, description = "Not in this account", body = crate::openapi::ErrorEnvelope),
              (status = 422, description = "UNKNOWN_SITE", body = crate::openapi::ErrorEnvelope)))]
pub async fn set_sites(
    State(s): State<AppState>,
    p: Principal,
    method: Method,
    uri: Uri,
    ApiPath(id): ApiPath<Uuid>,
    headers: CommandHeaders,
    body: ApiJson<SitesBody>,
) -> ApiResult<Response> {
    user_in_account(&s, &p, id).await?;
    p.require_manage()?;
    let account = p.account()?;
    let ctx = context(&p, &headers, &method, &uri, &body.canonical);
    check_sites_exist(&s, account, &body.value.site_ids).await?;
    let out = cmd::user(
        &s.bus,
        id,
        UserCommand::SetSites {
            site_ids: body.value.site_ids,
        },
        &ctx,
    )
    .await?;
    let (u, _) = s.bus.load::<User>(&id.to_string()).await?;
    Ok(resource(user_json(id, &u), &out, false))
}
