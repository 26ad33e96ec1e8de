//! Users of an account: list, create, read, change role or name, delete,
//! grant sites. Owners and admins manage; everyone may read themselves.

use super::auth::{UserView, user_view};
use crate::auth::RequestCaller;
use crate::auth::{Principal, forbidden};
use crate::http::command::{Deleted, Saved};
use crate::http::{
    ApiError, ApiJson, ApiOk, ApiPath, ApiResult, Command, Empty, Page, PageParams, Paging,
    resource,
};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
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
    #[schema(schema_with = crate::openapi::constraints::email)]
    pub email: String,
    /// At least 8 characters.
    #[schema(schema_with = crate::openapi::constraints::password)]
    pub password: String,
    /// admin, editor or viewer.
    #[schema(schema_with = crate::openapi::constraints::grantable_role)]
    pub role: String,
    /// Empty or absent: the email is used.
    #[serde(default)]
    #[schema(schema_with = crate::openapi::constraints::optional_name)]
    pub name: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUserBody {
    /// admin, editor or viewer (the owner stays owner).
    #[schema(schema_with = crate::openapi::constraints::grantable_role_opt)]
    pub role: Option<String>,
    #[schema(schema_with = crate::openapi::constraints::name_opt)]
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
    responses((status = 200, description = "A page of users", body = Page<UserRow>), (status = 403, description = "Not owner/admin", body = crate::openapi::ErrorEnvelope)))]
pub async fn list(
    State(s): State<AppState>,
    p: Principal,
    paging: Paging,
) -> ApiResult<ApiOk<Page<UserRow>>> {
    p.require_manage()?;
    let account = p.account()?;
    paging.read_your_writes(&s, rm::NAME).await?;
    let (rows, count) =
        rm::list_users(&s.db, &account.to_string(), paging.offset, paging.size).await?;
    Ok(paging.page(rows, count))
}

/// Add a user to the account.
#[utoipa::path(post, path = "/api/v1/auth/users/", tag = "users", request_body = CreateUserBody, security(("bearer" = [])),
    responses((status = 201, description = "Created", body = Saved<UserView>), (status = 403, description = "Not owner/admin", body = crate::openapi::ErrorEnvelope),
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
    Ok(resource(user_view(id, &u), &outcome, true))
}

/// One user (owners and admins; anyone for themselves).
#[utoipa::path(get, path = "/api/v1/auth/users/{id}/", tag = "users", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, description = "The user", body = UserView), (status = 404, description = "Not in this account", body = crate::openapi::ErrorEnvelope)))]
pub async fn get_one(
    State(s): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<ApiOk<UserView>> {
    let u = user_in_account(&s, &p, id).await?;
    if p.user_id != Some(id) {
        p.require_manage()?;
    }
    Ok(ApiOk(user_view(id, &u)))
}

/// Change a user's role or name.
#[utoipa::path(patch, path = "/api/v1/auth/users/{id}/", tag = "users", request_body = UpdateUserBody, params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, description = "Updated", body = Saved<UserView>), (status = 404, description = "Not in this account", body = crate::openapi::ErrorEnvelope),
              (status = 409, description = "OWNER_PROTECTED", body = crate::openapi::ErrorEnvelope), (status = 422, description = "INVALID_ROLE", body = crate::openapi::ErrorEnvelope)))]
pub async fn update(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    Command {
        principal: p,
        ctx,
        body: b,
        ..
    }: Command<UpdateUserBody>,
) -> ApiResult<Response> {
    user_in_account(&s, &p, id).await?;
    p.require_manage()?;
    let role = b.role.as_deref().map(parse_role).transpose()?;
    // One command: the rename and the role change commit together or not at all.
    let out = cmd::user(&s.bus, id, UserCommand::Update { name: b.name, role }, &ctx).await?;
    let (u, _) = s.bus.load::<User>(&id.to_string()).await?;
    Ok(resource(user_view(id, &u), &out, false))
}

/// Remove a user (the owner cannot be removed); their email becomes free.
#[utoipa::path(delete, path = "/api/v1/auth/users/{id}/", tag = "users", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, description = "Deleted", body = Saved<Deleted>), (status = 404, description = "Not in this account", body = crate::openapi::ErrorEnvelope),
              (status = 409, description = "OWNER_PROTECTED", body = crate::openapi::ErrorEnvelope)))]
pub async fn remove(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    Command {
        principal: p, ctx, ..
    }: Command<Empty>,
) -> ApiResult<Response> {
    user_in_account(&s, &p, id).await?;
    p.require_manage()?;
    if p.user_id == Some(id) {
        return Err(forbidden("you cannot delete yourself"));
    }
    let outcomes = cmd::delete_user(&s.bus, id, &ctx).await?;
    let outcome = outcomes
        .into_iter()
        .find(|o| o.aggregate_type == "user")
        .ok_or_else(|| ApiError::internal("user not written"))?;
    Ok(resource(Deleted::id(id), &outcome, false))
}

/// Replace the sites an editor or viewer may see.
#[utoipa::path(put, path = "/api/v1/auth/users/{id}/sites/", tag = "users", request_body = SitesBody, params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, description = "Granted", body = Saved<UserView>), (status = 404, description = "Not in this account", body = crate::openapi::ErrorEnvelope),
              (status = 422, description = "UNKNOWN_SITE", body = crate::openapi::ErrorEnvelope)))]
pub async fn set_sites(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    Command {
        principal: p,
        ctx,
        body,
        ..
    }: Command<SitesBody>,
) -> ApiResult<Response> {
    user_in_account(&s, &p, id).await?;
    p.require_manage()?;
    let account = p.account()?;
    check_sites_exist(&s, account, &body.site_ids).await?;
    let out = cmd::user(
        &s.bus,
        id,
        UserCommand::SetSites {
            site_ids: body.site_ids,
        },
        &ctx,
    )
    .await?;
    let (u, _) = s.bus.load::<User>(&id.to_string()).await?;
    Ok(resource(user_view(id, &u), &out, false))
}
