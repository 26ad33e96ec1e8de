//! Users of an account: list, create, read, change role or name, delete,
//! grant sites. Owners and admins manage; everyone may read themselves.

use super::auth::{UserView, user_view};
use crate::auth::Principal;
use crate::http::command::{Deleted, Saved};
use crate::http::{ApiOk, ApiPath, ApiResult, Command, Empty, Page, PageParams, Paging, resource};
use crate::state::AppState;
use axum::extract::State;
use axum::response::Response;
use igny8_commands::tenancy::members;
use igny8_projections::tenancy::{self as rm, UserRow};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserBody {
    #[schema(schema_with = crate::http::constraints::email)]
    pub email: String,
    /// At least 8 characters.
    #[schema(schema_with = crate::http::constraints::password)]
    pub password: String,
    /// admin, editor or viewer.
    #[schema(schema_with = crate::http::constraints::grantable_role)]
    pub role: String,
    /// Empty or absent: the email is used.
    #[serde(default)]
    #[schema(schema_with = crate::http::constraints::optional_name)]
    pub name: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUserBody {
    /// admin, editor or viewer (the owner stays owner).
    #[schema(schema_with = crate::http::constraints::grantable_role_opt)]
    pub role: Option<String>,
    #[schema(schema_with = crate::http::constraints::name_opt)]
    pub name: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SitesBody {
    /// The sites an editor or viewer may see (replaces the current grants).
    pub site_ids: Vec<Uuid>,
}

/// Users of the account (owners and admins).
#[utoipa::path(get, path = "/api/v1/auth/users/", tag = "users", params(PageParams), security(("bearer" = [])),
    responses((status = 200, description = "A page of users", body = Page<UserRow>), (status = 403, description = "Not owner/admin", body = crate::http::schema::ErrorEnvelope)))]
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
#[utoipa::path(post, path = "/api/v1/auth/users/", tag = "users", request_body = CreateUserBody, params(("Idempotency-Key" = Option<String>, Header, description = "A retry with the same key and body answers the first user")), security(("bearer" = [])),
    responses((status = 201, description = "Created", body = Saved<UserView>), (status = 403, description = "Not owner/admin", body = crate::http::schema::ErrorEnvelope),
              (status = 409, description = "EMAIL_TAKEN", body = crate::http::schema::ErrorEnvelope), (status = 422, description = "INVALID_ROLE, INVALID_EMAIL, INVALID_PASSWORD", body = crate::http::schema::ErrorEnvelope)))]
pub async fn create(
    State(s): State<AppState>,
    // A retry with the same Idempotency-Key answers the first user.
    Command {
        principal: p,
        ctx,
        body: b,
        ..
    }: Command<CreateUserBody>,
) -> ApiResult<Response> {
    let input = members::NewUser {
        email: b.email,
        password: b.password,
        name: b.name,
        role: b.role,
    };
    let done = members::add_user(&s.bus, &s.keys.secrets, &p, &ctx, input).await?;
    Ok(resource(
        user_view(done.id, &done.user),
        &done.outcome,
        true,
    ))
}

/// One user (owners and admins; anyone for themselves).
#[utoipa::path(get, path = "/api/v1/auth/users/{id}/", tag = "users", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, description = "The user", body = UserView), (status = 404, description = "Not in this account", body = crate::http::schema::ErrorEnvelope)))]
pub async fn get_one(
    State(s): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<ApiOk<UserView>> {
    let u = members::get_user(&s.bus, &p, id).await?;
    Ok(ApiOk(user_view(id, &u)))
}

/// Change a user's role or name.
#[utoipa::path(patch, path = "/api/v1/auth/users/{id}/", tag = "users", request_body = UpdateUserBody, params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, description = "Updated", body = Saved<UserView>), (status = 404, description = "Not in this account", body = crate::http::schema::ErrorEnvelope),
              (status = 409, description = "OWNER_PROTECTED", body = crate::http::schema::ErrorEnvelope), (status = 422, description = "INVALID_ROLE", body = crate::http::schema::ErrorEnvelope)))]
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
    let done = members::update_user(&s.bus, &p, &ctx, id, b.name, b.role).await?;
    Ok(resource(user_view(id, &done.user), &done.outcome, false))
}

/// Remove a user (the owner cannot be removed); their email becomes free.
#[utoipa::path(delete, path = "/api/v1/auth/users/{id}/", tag = "users", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, description = "Deleted", body = Saved<Deleted>), (status = 404, description = "Not in this account", body = crate::http::schema::ErrorEnvelope),
              (status = 409, description = "OWNER_PROTECTED", body = crate::http::schema::ErrorEnvelope)))]
pub async fn remove(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    Command {
        principal: p, ctx, ..
    }: Command<Empty>,
) -> ApiResult<Response> {
    let outcome = members::remove_user(&s.bus, &p, &ctx, id).await?;
    Ok(resource(Deleted::id(id), &outcome, false))
}

/// Replace the sites an editor or viewer may see.
#[utoipa::path(put, path = "/api/v1/auth/users/{id}/sites/", tag = "users", request_body = SitesBody, params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, description = "Granted", body = Saved<UserView>), (status = 404, description = "Not in this account", body = crate::http::schema::ErrorEnvelope),
              (status = 422, description = "UNKNOWN_SITE", body = crate::http::schema::ErrorEnvelope)))]
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
    let done = members::set_user_sites(&s.bus, &p, &ctx, id, body.site_ids).await?;
    Ok(resource(user_view(id, &done.user), &done.outcome, false))
}
