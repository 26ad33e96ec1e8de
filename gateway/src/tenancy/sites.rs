//! Sites and their sectors (1–5 per site). Owners and admins manage; editors
//! and viewers see the sites granted to them; other sites answer 404.
//! The WordPress application password is sealed before it reaches the
//! domain and is never returned: answers say only whether one is set.

use super::nullable;
use crate::app::AppState;
use crate::auth::Principal;
use crate::http::{
    ApiError, ApiJson, ApiOk, ApiPath, ApiQuery, ApiResult, CommandHeaders, Page, PageParams,
    context, read_your_writes, resource,
};
use axum::extract::State;
use axum::http::{Method, Uri};
use axum::response::Response;
use igny8_commands::{CommandContext, CommandOutcome, tenancy as cmd};
use igny8_domain::tenancy::{Sector, Site, SiteChanges, Tenant, TenantCommand};
use igny8_projections::tenancy::{self as rm, SiteRow};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSiteBody {
    pub name: String,
    /// a-z, 0-9 and '-'; made from the name when absent. Unique in the account.
    pub slug: Option<String>,
    pub industry: Option<String>,
    /// The site's URL (http or https).
    pub domain: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSiteBody {
    pub name: Option<String>,
    pub slug: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub industry: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub domain: Option<Option<String>>,
    /// active or inactive.
    pub status: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub wp_url: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub wp_username: Option<Option<String>>,
    /// WordPress application password: stored encrypted, never returned; `null` removes it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub wp_app_password: Option<Option<String>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSectorBody {
    pub name: String,
    pub slug: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSectorBody {
    pub name: Option<String>,
    /// active or inactive.
    pub status: Option<String>,
}

pub(crate) fn site_json(account: Uuid, id: Uuid, site: &Site, t: &Tenant) -> Value {
    let sectors: Vec<Value> = t
        .sectors_of(id)
        .map(|(sid, sec)| sector_json(account, *sid, sec))
        .collect();
    json!({
        "id": id,
        "account_id": account,
        "name": site.name,
        "slug": site.slug,
        "industry": site.industry,
        "domain": site.domain,
        "status": site.status,
        "wp_url": site.wp_url,
        "wp_username": site.wp_username,
        "wp_app_password_set": site.wp_credential.is_some(),
        "sectors": sectors,
    })
}

pub(crate) fn sector_json(account: Uuid, id: Uuid, s: &Sector) -> Value {
    json!({
        "id": id,
        "account_id": account,
        "site_id": s.site_id,
        "name": s.name,
        "slug": s.slug,
        "status": s.status,
    })
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
        site_json(account, site_id, site, &t),
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
    responses((status = 200, description = "A page of sites", body = Object)))]
pub async fn list(
    State(s): State<AppState>,
    p: Principal,
    uri: Uri,
    ApiQuery(q): ApiQuery<PageParams>,
) -> ApiResult<ApiOk<Page<SiteRow>>> {
    let account = p.account()?;
    let (page, size, offset) = q.window()?;
    read_your_writes(&s, rm::NAME, q.min_position).await?;
    let rows: Vec<SiteRow> = rm::list_sites(&s.db, &account.to_string())
        .await?
        .into_iter()
        .filter(|r| Uuid::parse_str(&r.site_id).is_ok_and(|id| p.can_see_site(id)))
        .collect();
    let count = rows.len() as i64;
    let rows = rows
        .into_iter()
        .skip(offset as usize)
        .take(size as usize)
        .collect();
    Ok(ApiOk(Page::new(
        rows,
        count,
        page,
        size,
        &crate::http::envelope::page_base(&uri),
    )))
}

/// Create a site (owners and admins; the plan limits how many).
#[utoipa::path(post, path = "/api/v1/auth/sites/", tag = "sites", request_body = CreateSiteBody, security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header), ("If-Match" = Option<String>, Header, description = "Expected version of the account's tenant aggregate")),
    responses((status = 201, description = "Created", body = Object), (status = 409, description = "SLUG_TAKEN", body = crate::openapi::ErrorEnvelope),
              (status = 422, description = "SITE_LIMIT, INVALID_NAME, INVALID_SLUG, INVALID_URL", body = crate::openapi::ErrorEnvelope)))]
pub async fn create(
    State(s): State<AppState>,
    p: Principal,
    method: Method,
    uri: Uri,
    headers: CommandHeaders,
    body: ApiJson<CreateSiteBody>,
) -> ApiResult<Response> {
    let ctx = context(&p, &headers, &method, &uri, &body.canonical);
    let (site_id, out) = do_create_site(&s, &p, &ctx, body.value).await?;
    site_answer(&s, p.account()?, site_id, &out, true).await
}

/// One site with its sectors.
#[utoipa::path(get, path = "/api/v1/auth/sites/{id}/", tag = "sites", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, description = "The site", body = Object), (status = 404, description = "Unknown or not visible", body = crate::openapi::ErrorEnvelope)))]
pub async fn get_one(
    State(s): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<ApiOk<Value>> {
    let (account, t) = visible_site(&s, &p, id).await?;
    let site = t
        .sites
        .get(&id)
        .ok_or_else(|| ApiError::not_found("site"))?;
    Ok(ApiOk(site_json(account, id, site, &t)))
}

/// Change a site (owners and admins); `null` clears an optional field.
#[utoipa::path(patch, path = "/api/v1/auth/sites/{id}/", tag = "sites", request_body = UpdateSiteBody, params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, description = "Updated", body = Object), (status = 404, description = "Unknown or not visible", body = crate::openapi::ErrorEnvelope),
              (status = 409, description = "SLUG_TAKEN", body = crate::openapi::ErrorEnvelope), (status = 422, description = "Invalid field", body = crate::openapi::ErrorEnvelope)))]
pub async fn update(
    State(s): State<AppState>,
    p: Principal,
    method: Method,
    uri: Uri,
    ApiPath(id): ApiPath<Uuid>,
    headers: CommandHeaders,
    body: ApiJson<UpdateSiteBody>,
) -> ApiResult<Response> {
    let ctx = context(&p, &headers, &method, &uri, &body.canonical);
    let out = do_update_site(&s, &p, &ctx, id, body.value).await?;
    site_answer(&s, p.account()?, id, &out, false).await
}

/// Delete a site and its sectors.
#[utoipa::path(delete, path = "/api/v1/auth/sites/{id}/", tag = "sites", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, description = "Deleted", body = Object), (status = 404, description = "Unknown or not visible", body = crate::openapi::ErrorEnvelope)))]
pub async fn remove(
    State(s): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Response> {
    let out = do_delete_site(&s, &p, &p.context(), id).await?;
    Ok(resource(json!({"id": id, "deleted": true}), &out, false))
}

/// The sectors of a site.
#[utoipa::path(get, path = "/api/v1/auth/sites/{id}/sectors/", tag = "sites", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, description = "Sectors", body = Object), (status = 404, description = "Unknown or not visible", body = crate::openapi::ErrorEnvelope)))]
pub async fn list_sectors(
    State(s): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<ApiOk<Vec<Value>>> {
    let (account, t) = visible_site(&s, &p, id).await?;
    Ok(ApiOk(
        t.sectors_of(id)
            .map(|(sid, sec)| sector_json(account, *sid, sec))
            .collect(),
    ))
}

/// Add a sector (at most 5 per site).
#[utoipa::path(post, path = "/api/v1/auth/sites/{id}/sectors/", tag = "sites", request_body = CreateSectorBody, params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 201, description = "Created", body = Object), (status = 404, description = "Unknown or not visible site", body = crate::openapi::ErrorEnvelope),
              (status = 409, description = "SLUG_TAKEN", body = crate::openapi::ErrorEnvelope), (status = 422, description = "SECTOR_LIMIT", body = crate::openapi::ErrorEnvelope)))]
pub async fn create_sector(
    State(s): State<AppState>,
    p: Principal,
    method: Method,
    uri: Uri,
    ApiPath(id): ApiPath<Uuid>,
    headers: CommandHeaders,
    body: ApiJson<CreateSectorBody>,
) -> ApiResult<Response> {
    let ctx = context(&p, &headers, &method, &uri, &body.canonical);
    let (sector_id, out) = do_create_sector(&s, &p, &ctx, id, body.value).await?;
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
    Ok(resource(sector_json(account, sector_id, sec), out, created))
}

/// Rename a sector or change its status.
#[utoipa::path(patch, path = "/api/v1/auth/sectors/{id}/", tag = "sites", request_body = UpdateSectorBody, params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, description = "Updated", body = Object), (status = 404, description = "Unknown or not visible", body = crate::openapi::ErrorEnvelope)))]
pub async fn update_sector(
    State(s): State<AppState>,
    p: Principal,
    method: Method,
    uri: Uri,
    ApiPath(id): ApiPath<Uuid>,
    headers: CommandHeaders,
    body: ApiJson<UpdateSectorBody>,
) -> ApiResult<Response> {
    let ctx = context(&p, &headers, &method, &uri, &body.canonical);
    let out = do_update_sector(&s, &p, &ctx, id, body.value).await?;
    sector_answer(&s, p.account()?, id, &out, false).await
}

/// Delete a sector.
#[utoipa::path(delete, path = "/api/v1/auth/sectors/{id}/", tag = "sites", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, description = "Deleted", body = Object), (status = 404, description = "Unknown or not visible", body = crate::openapi::ErrorEnvelope)))]
pub async fn remove_sector(
    State(s): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Response> {
    let out = do_delete_sector(&s, &p, &p.context(), id).await?;
    Ok(resource(json!({"id": id, "deleted": true}), &out, false))
}
