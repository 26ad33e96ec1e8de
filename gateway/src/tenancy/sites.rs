//! Sites and their sectors (1–5 per site). Owners and admins manage; editors
//! and viewers see the sites granted to them; other sites answer 404.
//! The WordPress application password is sealed before it reaches the
//! domain and is never returned: answers say only whether one is set.

use super::bodies::{CreateSectorBody, CreateSiteBody, UpdateSectorBody, UpdateSiteBody};
use crate::auth::Principal;
use crate::http::command::{Deleted, Saved};
use crate::http::{ApiOk, ApiPath, ApiResult, Command, Empty, Page, PageParams, Paging, resource};
use crate::state::AppState;
use axum::extract::State;
use axum::response::Response;
use igny8_commands::tenancy::sites;
use igny8_domain::tenancy::{Sector, Site, Tenant};
use igny8_projections::tenancy::{self as rm, SiteRow};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// A site with its sectors, as answers show it.
#[derive(Debug, Serialize, ToSchema)]
pub struct SiteView {
    pub id: Uuid,
    pub account_id: Uuid,
    pub name: String,
    pub slug: String,
    pub industry: Option<String>,
    pub domain: Option<String>,
    /// active or inactive.
    pub status: String,
    pub wp_url: Option<String>,
    pub wp_username: Option<String>,
    /// Whether a WordPress application password is stored (it is never returned).
    pub wp_app_password_set: bool,
    pub sectors: Vec<SectorView>,
}

/// A sector of a site.
#[derive(Debug, Serialize, ToSchema)]
pub struct SectorView {
    pub id: Uuid,
    pub account_id: Uuid,
    pub site_id: Uuid,
    pub name: String,
    pub slug: String,
    /// active or inactive.
    pub status: String,
}

pub(crate) fn site_view(account: Uuid, id: Uuid, site: &Site, t: &Tenant) -> SiteView {
    SiteView {
        id,
        account_id: account,
        name: site.name.clone(),
        slug: site.slug.clone(),
        industry: site.industry.clone(),
        domain: site.domain.clone(),
        status: site.status.clone(),
        wp_url: site.wp_url.clone(),
        wp_username: site.wp_username.clone(),
        wp_app_password_set: site.wp_credential.is_some(),
        sectors: t
            .sectors_of(id)
            .map(|(sid, sec)| sector_view(account, *sid, sec))
            .collect(),
    }
}

pub(crate) fn sector_view(account: Uuid, id: Uuid, s: &Sector) -> SectorView {
    SectorView {
        id,
        account_id: account,
        site_id: s.site_id,
        name: s.name.clone(),
        slug: s.slug.clone(),
        status: s.status.clone(),
    }
}

/// A site answer from a use case's outcome.
fn saved_site(done: sites::SiteSaved, created: bool) -> Response {
    resource(
        site_view(done.account_id, done.site_id, &done.site, &done.tenant),
        &done.outcome,
        created,
    )
}

fn saved_sector(done: sites::SectorSaved, created: bool) -> Response {
    resource(
        sector_view(done.account_id, done.sector_id, &done.sector),
        &done.outcome,
        created,
    )
}

// --- routes ---------------------------------------------------------------

/// Sites the caller may see, oldest first.
#[utoipa::path(get, path = "/api/v1/auth/sites/", tag = "sites", params(PageParams), security(("bearer" = [])),
    responses((status = 200, description = "A page of sites", body = Page<SiteRow>)))]
pub async fn list(
    State(s): State<AppState>,
    p: Principal,
    paging: Paging,
) -> ApiResult<ApiOk<Page<SiteRow>>> {
    let account = p.account()?;
    paging.read_your_writes(&s, rm::NAME).await?;
    let rows: Vec<SiteRow> = rm::list_sites(&s.db, &account.to_string())
        .await?
        .into_iter()
        .filter(|r| Uuid::parse_str(&r.site_id).is_ok_and(|id| p.can_see_site(id)))
        .collect();
    Ok(paging.slice(rows))
}

/// Create a site (owners and admins; the plan limits how many).
#[utoipa::path(post, path = "/api/v1/auth/sites/", tag = "sites", request_body = CreateSiteBody, security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header), ("If-Match" = Option<String>, Header, description = "Expected version of the account's tenant aggregate")),
    responses((status = 201, description = "Created", body = Saved<SiteView>), (status = 409, description = "SLUG_TAKEN", body = crate::http::schema::ErrorEnvelope),
              (status = 422, description = "SITE_LIMIT, INVALID_NAME, INVALID_SLUG, INVALID_URL", body = crate::http::schema::ErrorEnvelope)))]
pub async fn create(
    State(s): State<AppState>,
    Command {
        principal: p,
        ctx,
        body,
        ..
    }: Command<CreateSiteBody>,
) -> ApiResult<Response> {
    let done = sites::create_site(&s.bus, &p, &ctx, body.into()).await?;
    Ok(saved_site(done, true))
}

/// An industry template and the sectors it suggests.
#[derive(Debug, Serialize, ToSchema)]
pub struct IndustryView {
    pub id: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    /// Suggested sectors (1 to 5): `POST /auth/sites/` with `industry_id`
    /// and `with_suggested_sectors: true` creates them with the site.
    pub sectors: Vec<&'static str>,
}

/// The industry templates (the seeds' global industries and their
/// suggested sectors). No credentials needed.
#[utoipa::path(get, path = "/api/v1/auth/industries/", tag = "sites",
    responses((status = 200, description = "Every industry template", body = Vec<IndustryView>),
              (status = 429, description = "RATE_LIMITED", body = crate::http::schema::ErrorEnvelope),
              (status = 503, description = "NOT_READY", body = crate::http::schema::ErrorEnvelope)))]
pub async fn industries() -> ApiOk<Vec<IndustryView>> {
    ApiOk(
        igny8_domain::tenancy::INDUSTRIES
            .iter()
            .map(|i| IndustryView {
                id: i.slug,
                name: i.name,
                description: i.description,
                sectors: i.sectors.to_vec(),
            })
            .collect(),
    )
}

/// One site with its sectors.
#[utoipa::path(get, path = "/api/v1/auth/sites/{id}/", tag = "sites", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, description = "The site", body = SiteView), (status = 404, description = "Unknown or not visible", body = crate::http::schema::ErrorEnvelope)))]
pub async fn get_one(
    State(s): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<ApiOk<SiteView>> {
    let (account, site, t) = sites::get_site(&s.bus, &p, id).await?;
    Ok(ApiOk(site_view(account, id, &site, &t)))
}

/// Change a site (owners and admins); `null` clears an optional field.
#[utoipa::path(patch, path = "/api/v1/auth/sites/{id}/", tag = "sites", request_body = UpdateSiteBody, params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, description = "Updated", body = Saved<SiteView>), (status = 404, description = "Unknown or not visible", body = crate::http::schema::ErrorEnvelope),
              (status = 409, description = "SLUG_TAKEN", body = crate::http::schema::ErrorEnvelope), (status = 422, description = "Invalid field", body = crate::http::schema::ErrorEnvelope)))]
pub async fn update(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    Command {
        principal: p,
        ctx,
        body,
        ..
    }: Command<UpdateSiteBody>,
) -> ApiResult<Response> {
    let done = sites::update_site(&s.bus, &s.keys.secrets, &p, &ctx, id, body.into()).await?;
    Ok(saved_site(done, false))
}

/// Delete a site and its sectors.
#[utoipa::path(delete, path = "/api/v1/auth/sites/{id}/", tag = "sites", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, description = "Deleted", body = Saved<Deleted>), (status = 404, description = "Unknown or not visible", body = crate::http::schema::ErrorEnvelope)))]
pub async fn remove(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    Command {
        principal: p, ctx, ..
    }: Command<Empty>,
) -> ApiResult<Response> {
    let done = sites::delete_site(&s.bus, &p, &ctx, id).await?;
    Ok(resource(Deleted::id(done.id), &done.outcome, false))
}

/// The sectors of a site.
#[utoipa::path(get, path = "/api/v1/auth/sites/{id}/sectors/", tag = "sites", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, description = "Sectors", body = Vec<SectorView>), (status = 404, description = "Unknown or not visible", body = crate::http::schema::ErrorEnvelope)))]
pub async fn list_sectors(
    State(s): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<ApiOk<Vec<SectorView>>> {
    let (account, t) = sites::visible_site(&s.bus, &p, id).await?;
    Ok(ApiOk(
        t.sectors_of(id)
            .map(|(sid, sec)| sector_view(account, *sid, sec))
            .collect(),
    ))
}

/// Add a sector (at most 5 per site).
#[utoipa::path(post, path = "/api/v1/auth/sites/{id}/sectors/", tag = "sites", request_body = CreateSectorBody, params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 201, description = "Created", body = Saved<SectorView>), (status = 404, description = "Unknown or not visible site", body = crate::http::schema::ErrorEnvelope),
              (status = 409, description = "SLUG_TAKEN", body = crate::http::schema::ErrorEnvelope), (status = 422, description = "SECTOR_LIMIT", body = crate::http::schema::ErrorEnvelope)))]
pub async fn create_sector(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    Command {
        principal: p,
        ctx,
        body,
        ..
    }: Command<CreateSectorBody>,
) -> ApiResult<Response> {
    let done = sites::create_sector(&s.bus, &p, &ctx, id, body.into()).await?;
    Ok(saved_sector(done, true))
}

/// Rename a sector or change its status.
#[utoipa::path(patch, path = "/api/v1/auth/sectors/{id}/", tag = "sites", request_body = UpdateSectorBody, params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, description = "Updated", body = Saved<SectorView>), (status = 404, description = "Unknown or not visible", body = crate::http::schema::ErrorEnvelope)))]
pub async fn update_sector(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    Command {
        principal: p,
        ctx,
        body,
        ..
    }: Command<UpdateSectorBody>,
) -> ApiResult<Response> {
    let done = sites::update_sector(&s.bus, &p, &ctx, id, body.name, body.status).await?;
    Ok(saved_sector(done, false))
}

/// Delete a sector.
#[utoipa::path(delete, path = "/api/v1/auth/sectors/{id}/", tag = "sites", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, description = "Deleted", body = Saved<Deleted>), (status = 404, description = "Unknown or not visible", body = crate::http::schema::ErrorEnvelope)))]
pub async fn remove_sector(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    Command {
        principal: p, ctx, ..
    }: Command<Empty>,
) -> ApiResult<Response> {
    let done = sites::delete_sector(&s.bus, &p, &ctx, id).await?;
    Ok(resource(Deleted::id(done.id), &done.outcome, false))
}
