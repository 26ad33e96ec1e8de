//! Sites and their sectors (1–5 per site). Owners and admins manage; editors
//! and viewers see the sites granted to them; other sites answer 404.
//! The WordPress application password is sealed before it reaches the
//! domain and is never returned: answers say only whether one is set.

use super::nullable;
use crate::auth::Principal;
use crate::http::command::{Deleted, Saved};
use crate::http::{
    ApiError, ApiOk, ApiPath, ApiResult, Command, Empty, Page, PageParams, Paging, resource,
};
use crate::state::AppState;
use axum::extract::State;
use axum::response::Response;
use igny8_commands::{CommandContext, CommandOutcome, tenancy as cmd};
use igny8_domain::tenancy::{Sector, Site, SiteChanges, Tenant, TenantCommand};
use igny8_projections::tenancy::{self as rm, SiteRow};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSiteBody {
    #[schema(schema_with = crate::openapi::constraints::name)]
    pub name: String,
    /// a-z, 0-9 and '-'; made from the name when absent. Unique in the account.
    #[schema(schema_with = crate::openapi::constraints::slug_opt)]
    pub slug: Option<String>,
    #[schema(schema_with = crate::openapi::constraints::name_opt)]
    pub industry: Option<String>,
    /// The site's URL (http or https).
    #[schema(schema_with = crate::openapi::constraints::url_opt)]
    pub domain: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSiteBody {
    #[schema(schema_with = crate::openapi::constraints::name_opt)]
    pub name: Option<String>,
    #[schema(schema_with = crate::openapi::constraints::slug_opt)]
    pub slug: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(schema_with = crate::openapi::constraints::name_or_null)]
    pub industry: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(schema_with = crate::openapi::constraints::url_or_null)]
    pub domain: Option<Option<String>>,
    /// active or inactive.
    #[schema(schema_with = crate::openapi::constraints::status_opt)]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(schema_with = crate::openapi::constraints::url_or_null)]
    pub wp_url: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(schema_with = crate::openapi::constraints::name_or_null)]
    pub wp_username: Option<Option<String>>,
    /// WordPress application password: stored encrypted, never returned; `null` removes it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 1000, pattern = "^[^\\u0000]*$")]
    pub wp_app_password: Option<Option<String>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSectorBody {
    #[schema(schema_with = crate::openapi::constraints::name)]
    pub name: String,
    /// Made from the name when absent; unique in the site.
    #[schema(schema_with = crate::openapi::constraints::slug_opt)]
    pub slug: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSectorBody {
    #[schema(schema_with = crate::openapi::constraints::name_opt)]
    pub name: Option<String>,
    /// active or inactive.
    #[schema(schema_with = crate::openapi::constraints::status_opt)]
    pub status: Option<String>,
}

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

/// The account's tenant state, when the caller may see `site_id` (else 404).
async fn visible_site(s: &AppState, p: &Principal, site_id: Uuid) -> ApiResult<(Uuid, Tenant)> {
    let account = p.account()?;
    let (t, _) = s.bus.load::<Tenant>(&account.to_string()).await?;
    if !t.sites.contains_key(&site_id) || !p.can_see_site(site_id) {
        return Err(ApiError::not_found("site"));
    }
    Ok((account, t))
}

async fn visible_sector(s: &AppState, p: &Principal, sector_id: Uuid) -> ApiResult<(Uuid, Tenant)> {
    let account = p.account()?;
    let (t, _) = s.bus.load::<Tenant>(&account.to_string()).await?;
    match t.sectors.get(&sector_id) {
        Some(sec) if p.can_see_site(sec.site_id) => Ok((account, t)),
        _ => Err(ApiError::not_found("sector")),
    }
}

/// Run a tenant command, then answer with the site as it is now.
async fn site_answer(
    s: &AppState,
    account: Uuid,
    site_id: Uuid,
    out: &CommandOutcome,
    created: bool,
) -> ApiResult<Response> {
    let (t, _) = s.bus.load::<Tenant>(&account.to_string()).await?;
    let site = t
        .sites
        .get(&site_id)
        .ok_or_else(|| ApiError::not_found("site"))?;
    Ok(resource(
        site_view(account, site_id, site, &t),
        out,
        created,
    ))
}

// --- the operations, shared with the generic command endpoint -------------

/// The id a create command wrote (from its events: an idempotent replay
/// returns the first request's id, not the one this request minted).
fn created_id(out: &CommandOutcome, field: &str, minted: Uuid) -> Uuid {
    out.events
        .iter()
        .find_map(|e| e.payload.get(field)?.as_str()?.parse().ok())
        .unwrap_or(minted)
}

pub(crate) async fn do_create_site(
    s: &AppState,
    p: &Principal,
    ctx: &CommandContext,
    b: CreateSiteBody,
) -> ApiResult<(Uuid, CommandOutcome)> {
    p.require_manage()?;
    let account = p.account()?;
    let site_id = Uuid::now_v7();
    let out = cmd::tenant(
        &s.bus,
        account,
        TenantCommand::CreateSite {
            site_id,
            name: b.name,
            slug: b.slug,
            industry: b.industry,
            domain: b.domain,
        },
        ctx,
    )
    .await?;
    Ok((created_id(&out, "site_id", site_id), out))
}

pub(crate) async fn do_update_site(
    s: &AppState,
    p: &Principal,
    ctx: &CommandContext,
    site_id: Uuid,
    b: UpdateSiteBody,
) -> ApiResult<CommandOutcome> {
    let (account, _) = visible_site(s, p, site_id).await?;
    p.require_manage()?;
    let wp_credential = b.wp_app_password.map(|pw| {
        pw.filter(|v| !v.is_empty())
            .map(|v| s.keys.secrets.seal(v.as_bytes(), site_id.as_bytes()))
    });
    let changes = SiteChanges {
        name: b.name,
        slug: b.slug,
        industry: b.industry,
        domain: b.domain,
        status: b.status,
        wp_url: b.wp_url,
        wp_username: b.wp_username,
        wp_credential,
    };
    Ok(cmd::tenant(
        &s.bus,
        account,
        TenantCommand::UpdateSite { site_id, changes },
        ctx,
    )
    .await?)
}

pub(crate) async fn do_delete_site(
    s: &AppState,
    p: &Principal,
    ctx: &CommandContext,
    site_id: Uuid,
) -> ApiResult<CommandOutcome> {
    let (account, _) = visible_site(s, p, site_id).await?;
    p.require_manage()?;
    Ok(cmd::tenant(&s.bus, account, TenantCommand::DeleteSite { site_id }, ctx).await?)
}

pub(crate) async fn do_create_sector(
    s: &AppState,
    p: &Principal,
    ctx: &CommandContext,
    site_id: Uuid,
    b: CreateSectorBody,
) -> ApiResult<(Uuid, CommandOutcome)> {
    let (account, _) = visible_site(s, p, site_id).await?;
    p.require_manage()?;
    let sector_id = Uuid::now_v7();
    let out = cmd::tenant(
        &s.bus,
        account,
        TenantCommand::CreateSector {
            site_id,
            sector_id,
            name: b.name,
            slug: b.slug,
        },
        ctx,
    )
    .await?;
    Ok((created_id(&out, "sector_id", sector_id), out))
}

pub(crate) async fn do_update_sector(
    s: &AppState,
    p: &Principal,
    ctx: &CommandContext,
    sector_id: Uuid,
    b: UpdateSectorBody,
) -> ApiResult<CommandOutcome> {
    let (account, _) = visible_sector(s, p, sector_id).await?;
    p.require_manage()?;
    Ok(cmd::tenant(
        &s.bus,
        account,
        TenantCommand::UpdateSector {
            sector_id,
            name: b.name,
            status: b.status,
        },
        ctx,
    )
    .await?)
}

pub(crate) async fn do_delete_sector(
    s: &AppState,
    p: &Principal,
    ctx: &CommandContext,
    sector_id: Uuid,
) -> ApiResult<CommandOutcome> {
    let (account, _) = visible_sector(s, p, sector_id).await?;
    p.require_manage()?;
    Ok(cmd::tenant(
        &s.bus,
        account,
        TenantCommand::DeleteSector { sector_id },
        ctx,
    )
    .await?)
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
    responses((status = 201, description = "Created", body = Saved<SiteView>), (status = 409, description = "SLUG_TAKEN", body = crate::openapi::ErrorEnvelope),
              (status = 422, description = "SITE_LIMIT, INVALID_NAME, INVALID_SLUG, INVALID_URL", body = crate::openapi::ErrorEnvelope)))]
pub async fn create(
    State(s): State<AppState>,
    Command {
        principal: p,
        ctx,
        body,
        ..
    }: Command<CreateSiteBody>,
) -> ApiResult<Response> {
    let (site_id, out) = do_create_site(&s, &p, &ctx, body).await?;
    site_answer(&s, p.account()?, site_id, &out, true).await
}

/// One site with its sectors.
#[utoipa::path(get, path = "/api/v1/auth/sites/{id}/", tag = "sites", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, description = "The site", body = SiteView), (status = 404, description = "Unknown or not visible", body = crate::openapi::ErrorEnvelope)))]
pub async fn get_one(
    State(s): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<ApiOk<SiteView>> {
    let (account, t) = visible_site(&s, &p, id).await?;
    let site = t
        .sites
        .get(&id)
        .ok_or_else(|| ApiError::not_found("site"))?;
    Ok(ApiOk(site_view(account, id, site, &t)))
}

/// Change a site (owners and admins); `null` clears an optional field.
#[utoipa::path(patch, path = "/api/v1/auth/sites/{id}/", tag = "sites", request_body = UpdateSiteBody, params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, description = "Updated", body = Saved<SiteView>), (status = 404, description = "Unknown or not visible", body = crate::openapi::ErrorEnvelope),
              (status = 409, description = "SLUG_TAKEN", body = crate::openapi::ErrorEnvelope), (status = 422, description = "Invalid field", body = crate::openapi::ErrorEnvelope)))]
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
    let out = do_update_site(&s, &p, &ctx, id, body).await?;
    site_answer(&s, p.account()?, id, &out, false).await
}

/// Delete a site and its sectors.
#[utoipa::path(delete, path = "/api/v1/auth/sites/{id}/", tag = "sites", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, description = "Deleted", body = Saved<Deleted>), (status = 404, description = "Unknown or not visible", body = crate::openapi::ErrorEnvelope)))]
pub async fn remove(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    Command {
        principal: p, ctx, ..
    }: Command<Empty>,
) -> ApiResult<Response> {
    let out = do_delete_site(&s, &p, &ctx, id).await?;
    Ok(resource(Deleted::id(id), &out, false))
}

/// The sectors of a site.
#[utoipa::path(get, path = "/api/v1/auth/sites/{id}/sectors/", tag = "sites", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, description = "Sectors", body = Vec<SectorView>), (status = 404, description = "Unknown or not visible", body = crate::openapi::ErrorEnvelope)))]
pub async fn list_sectors(
    State(s): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<ApiOk<Vec<SectorView>>> {
    let (account, t) = visible_site(&s, &p, id).await?;
    Ok(ApiOk(
        t.sectors_of(id)
            .map(|(sid, sec)| sector_view(account, *sid, sec))
            .collect(),
    ))
}

/// Add a sector (at most 5 per site).
#[utoipa::path(post, path = "/api/v1/auth/sites/{id}/sectors/", tag = "sites", request_body = CreateSectorBody, params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 201, description = "Created", body = Saved<SectorView>), (status = 404, description = "Unknown or not visible site", body = crate::openapi::ErrorEnvelope),
              (status = 409, description = "SLUG_TAKEN", body = crate::openapi::ErrorEnvelope), (status = 422, description = "SECTOR_LIMIT", body = crate::openapi::ErrorEnvelope)))]
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
    let (sector_id, out) = do_create_sector(&s, &p, &ctx, id, body).await?;
    sector_answer(&s, p.account()?, sector_id, &out, true).await
}

async fn sector_answer(
    s: &AppState,
    account: Uuid,
    sector_id: Uuid,
    out: &CommandOutcome,
    created: bool,
) -> ApiResult<Response> {
    let (t, _) = s.bus.load::<Tenant>(&account.to_string()).await?;
    let sec = t
        .sectors
        .get(&sector_id)
        .ok_or_else(|| ApiError::not_found("sector"))?;
    Ok(resource(sector_view(account, sector_id, sec), out, created))
}

/// Rename a sector or change its status.
#[utoipa::path(patch, path = "/api/v1/auth/sectors/{id}/", tag = "sites", request_body = UpdateSectorBody, params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, description = "Updated", body = Saved<SectorView>), (status = 404, description = "Unknown or not visible", body = crate::openapi::ErrorEnvelope)))]
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
    let out = do_update_sector(&s, &p, &ctx, id, body).await?;
    sector_answer(&s, p.account()?, id, &out, false).await
}

/// Delete a sector.
#[utoipa::path(delete, path = "/api/v1/auth/sectors/{id}/", tag = "sites", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, description = "Deleted", body = Saved<Deleted>), (status = 404, description = "Unknown or not visible", body = crate::openapi::ErrorEnvelope)))]
pub async fn remove_sector(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    Command {
        principal: p, ctx, ..
    }: Command<Empty>,
) -> ApiResult<Response> {
    let out = do_delete_sector(&s, &p, &ctx, id).await?;
    Ok(resource(Deleted::id(id), &out, false))
}
