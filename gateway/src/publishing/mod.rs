//! Publishing over HTTP: a site's WordPress connection (the seeds'
//! `integration/integrations`), its test, publish / unpublish / sync jobs,
//! the request log, what was published (`publications`), and the companion
//! plugin's signed webhooks.
//!
//! Route → `igny8_commands::publishing` → `igny8_domain::publishing`
//! (`WpIntegration`, `Publication` decide) → events →
//! `igny8_projections::publishing` (`rm_wp_integrations`, `rm_publications`)
//! → the lists here. The publisher itself is `igny8_workers::publishing`.

use crate::auth::Principal;
use crate::http::command::Saved;
use crate::http::schema::{ErrorEnvelope, id};
use crate::http::{
    ApiError, ApiOk, ApiPath, ApiQuery, ApiResult, Command, Page, PageParams, Paging, both_slashes,
    read_your_writes, resource,
};
use crate::state::AppState;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{get, post};
use igny8_commands::publishing::{integrations as cmd, log, publish as pubcmd, webhook};
use igny8_domain::publishing::{ConnectionTest, ExternalChange, PUBLISH_STATUSES, WpIntegration};
use igny8_projections::publishing::{self as rm, IntegrationRow, PublicationRow};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

pub fn routes(r: Router<AppState>) -> Router<AppState> {
    let base = "/api/v1/integration/integrations";
    let r = both_slashes(r, &format!("{base}/"), get(list).post(create));
    let r = both_slashes(
        r,
        &format!("{base}/{{id}}/"),
        get(get_one).patch(update).delete(remove),
    );
    let r = both_slashes(
        r,
        &format!("{base}/{{id}}/test-connection/"),
        post(test_connection),
    );
    let r = both_slashes(r, &format!("{base}/{{id}}/publish/"), post(publish));
    let r = both_slashes(r, &format!("{base}/{{id}}/unpublish/"), post(unpublish));
    let r = both_slashes(r, &format!("{base}/{{id}}/sync/"), post(sync));
    let r = both_slashes(r, &format!("{base}/{{id}}/sync_logs/"), get(sync_logs));
    let r = both_slashes(
        r,
        "/api/v1/integration/publications/",
        get(list_publications),
    );
    let r = both_slashes(
        r,
        "/api/v1/integration/publications/{id}/",
        get(get_publication),
    );
    both_slashes(
        r,
        "/api/v1/integration/webhooks/wordpress/{id}/",
        post(wordpress_webhook),
    )
}

fn integration_status_schema() -> utoipa::openapi::Object {
    crate::http::schema::string_enum(rm::INTEGRATION_STATUSES)
}
fn integration_ordering_schema() -> utoipa::openapi::Object {
    crate::http::schema::ordering_enum(rm::INTEGRATION_ORDERINGS)
}
fn publication_state_schema() -> utoipa::openapi::Object {
    crate::http::schema::string_enum(rm::PUBLICATION_STATES)
}
fn publication_ordering_schema() -> utoipa::openapi::Object {
    crate::http::schema::ordering_enum(rm::PUBLICATION_ORDERINGS)
}
fn publish_status_schema() -> utoipa::openapi::Object {
    crate::http::schema::string_enum(PUBLISH_STATUSES)
}
fn unpublish_schema() -> utoipa::openapi::Object {
    crate::http::schema::string_enum(&["draft", "trash"])
}
fn outcome_schema() -> utoipa::openapi::Object {
    crate::http::schema::string_enum(log::OUTCOMES)
}
fn change_kind_schema() -> utoipa::openapi::Object {
    crate::http::schema::string_enum(&["edited", "trashed", "deleted", "restored"])
}
fn wp_url_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .min_length(Some(8))
        .max_length(Some(500))
        .pattern(Some("^\\s*https?://[^\\s/?#@]+[^\\s?#]*\\s*$"))
        .build()
}
fn wp_url_opt() -> utoipa::openapi::Object {
    crate::http::constraints::or_null(wp_url_schema())
}
fn username_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .min_length(Some(1))
        .max_length(Some(60))
        .pattern(Some(
            "^[^\\u0000-\\u001F\\u007F]*[^\\s\\u0000-\\u001F\\u007F][^\\u0000-\\u001F\\u007F]*$",
        ))
        .build()
}
fn username_opt() -> utoipa::openapi::Object {
    crate::http::constraints::or_null(username_schema())
}
fn password_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .min_length(Some(1))
        .max_length(Some(200))
        .pattern(Some(
            "^[^\\u0000-\\u001F\\u007F]*[^\\s\\u0000-\\u001F\\u007F][^\\u0000-\\u001F\\u007F]*$",
        ))
        .build()
}
fn password_opt() -> utoipa::openapi::Object {
    crate::http::constraints::or_null(password_schema())
}
fn term_list() -> utoipa::openapi::schema::Array {
    let item = utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .min_length(Some(1))
        .max_length(Some(200))
        .pattern(Some(
            "^[^\\u0000-\\u001F\\u007F]*[^\\s\\u0000-\\u001F\\u007F][^\\u0000-\\u001F\\u007F]*$",
        ))
        .build();
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(item)
        .max_items(Some(pubcmd::MAX_TERMS))
        .build()
}
fn term_list_opt() -> utoipa::openapi::schema::Array {
    term_list()
}

// --- views ---------------------------------------------------------------------

/// The codes a connection test or a publish job names besides WordPress's
/// own (`incorrect_password`, `rest_not_logged_in`, …): in
/// `ConnectionTestView.error_code` and at the start of a failed job's
/// message, never as an HTTP `error_code` (docs/api.md lists them).
pub const CONNECTION_CODES: &[&str] = &[
    "NO_REST_API",
    "NO_APP_PASSWORD",
    "WRONG_USER",
    "CANNOT_PUBLISH",
    "CANNOT_UPLOAD",
    "DNS_ERROR",
    "CONNECT_ERROR",
    "TLS_ERROR",
    "TIMEOUT",
    "REFUSED_ADDRESS",
    "WP_REDIRECT",
    "OUTCOME_UNKNOWN",
    "UNEXPECTED_ANSWER",
];

/// What a connection test found.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionTestView {
    pub ok: bool,
    /// WordPress's code (incorrect_password, invalid_username, rest_not_logged_in, …) or ours
    /// (NO_REST_API, NO_APP_PASSWORD, DNS_ERROR, TLS_ERROR, CONNECT_ERROR, TIMEOUT, REFUSED_ADDRESS,
    /// WP_REDIRECT, WRONG_USER, CANNOT_PUBLISH, CANNOT_UPLOAD).
    pub error_code: Option<String>,
    pub message: String,
    pub wp_version: Option<String>,
    pub site_name: Option<String>,
    pub user: Option<String>,
    pub roles: Vec<String>,
    pub application_passwords: bool,
    pub can_publish: bool,
    pub can_upload: bool,
    /// The companion plugin's version, when it is active.
    pub plugin_version: Option<String>,
    /// The plugin sends signed webhooks here.
    pub webhooks: bool,
}

impl From<ConnectionTest> for ConnectionTestView {
    fn from(t: ConnectionTest) -> Self {
        ConnectionTestView {
            ok: t.ok,
            error_code: t.error_code,
            message: t.message,
            wp_version: t.wp_version,
            site_name: t.site_name,
            user: t.user,
            roles: t.roles,
            application_passwords: t.application_passwords,
            can_publish: t.can_publish,
            can_upload: t.can_upload,
            plugin_version: t.plugin_version,
            webhooks: t.webhooks,
        }
    }
}

/// A site's WordPress connection (never its Application Password).
#[derive(Debug, Serialize, ToSchema)]
pub struct WpIntegrationView {
    pub id: Uuid,
    pub site_id: Uuid,
    /// `wordpress`.
    pub platform: &'static str,
    pub wp_url: String,
    pub wp_username: String,
    pub wp_app_password_set: bool,
    /// Requests in flight to this WordPress at most (per publisher process).
    pub max_concurrent_requests: i64,
    #[schema(schema_with = integration_status_schema)]
    pub status: String,
    pub last_test: Option<ConnectionTestView>,
    pub tested_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Where the companion plugin sends its webhooks (`null`: this server has no public URL).
    pub webhook_url: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

fn webhook_url(s: &AppState, id: Uuid) -> Option<String> {
    s.settings.public_url.as_ref().map(|u| {
        format!(
            "{}/api/v1/integration/webhooks/wordpress/{id}/",
            u.trim_end_matches('/')
        )
    })
}

fn integration_view(s: &AppState, r: IntegrationRow) -> WpIntegrationView {
    let iid = id(&r.integration_id);
    WpIntegrationView {
        id: iid,
        site_id: id(&r.site_id),
        platform: "wordpress",
        wp_url: r.url,
        wp_username: r.username,
        wp_app_password_set: r.app_password_set,
        max_concurrent_requests: r.max_concurrent,
        status: r.status,
        last_test: r
            .last_test
            .and_then(|t| serde_json::from_str::<ConnectionTest>(&t).ok())
            .map(Into::into),
        tested_at: r.tested_at,
        webhook_url: webhook_url(s, iid),
        created_at: r.created_at,
        updated_at: r.updated_at,
    }
}

/// A connection after a command.
#[derive(Debug, Serialize, ToSchema)]
pub struct IntegrationSaved {
    pub id: Uuid,
    pub site_id: Uuid,
    pub wp_url: String,
    pub wp_username: String,
    pub wp_app_password_set: bool,
    pub max_concurrent_requests: u32,
}

fn saved(id: Uuid, i: &WpIntegration) -> IntegrationSaved {
    IntegrationSaved {
        id,
        site_id: i.site_id.unwrap_or_default(),
        wp_url: i.url.clone(),
        wp_username: i.username.clone(),
        wp_app_password_set: !i.credential.is_empty(),
        max_concurrent_requests: i.max_concurrent,
    }
}

// --- connections -------------------------------------------------------------------

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct IntegrationParams {
    pub site_id: Option<Uuid>,
    #[param(schema_with = integration_status_schema)]
    pub status: Option<String>,
    /// created_at, updated_at, url, status; `-` for descending (default `created_at`).
    #[param(schema_with = integration_ordering_schema)]
    pub ordering: Option<String>,
}

/// The WordPress connections of the caller's sites.
#[utoipa::path(get, path = "/api/v1/integration/integrations/", tag = "integration", params(PageParams, IntegrationParams), security(("bearer" = [])),
    responses((status = 200, description = "A page of connections", body = Page<WpIntegrationView>), (status = 400, description = "INVALID_QUERY", body = ErrorEnvelope)))]
pub async fn list(
    State(s): State<AppState>,
    p: Principal,
    paging: Paging,
    ApiQuery(q): ApiQuery<IntegrationParams>,
) -> ApiResult<ApiOk<Page<WpIntegrationView>>> {
    let account = p.account()?;
    if q.status
        .as_deref()
        .is_some_and(|x| !rm::INTEGRATION_STATUSES.contains(&x))
    {
        return Err(ApiError::bad_request(
            "INVALID_QUERY",
            "status must be untested, connected or failing",
        ));
    }
    crate::http::check_ordering(q.ordering.as_deref(), rm::INTEGRATION_ORDERINGS)?;
    paging.read_your_writes(&s, rm::NAME).await?;
    let f = rm::IntegrationFilter {
        site_in: p.site_filter(),
        site_id: q.site_id.map(|x| x.to_string()),
        status: q.status,
        ordering: q.ordering,
        offset: paging.offset,
        limit: paging.size,
    };
    let (rows, count) = rm::page_integrations(&s.db, &account.to_string(), &f).await?;
    Ok(paging.page(
        rows.into_iter().map(|r| integration_view(&s, r)).collect(),
        count,
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateIntegrationBody {
    pub site_id: Uuid,
    /// `wordpress` (the only platform; default).
    #[schema(schema_with = platform_schema)]
    pub platform: Option<String>,
    /// The WordPress site's address (http or https).
    #[schema(schema_with = wp_url_schema)]
    pub wp_url: String,
    /// The WordPress login the Application Password belongs to.
    #[schema(schema_with = username_schema)]
    pub wp_username: String,
    /// An Application Password (Users → Profile → Application Passwords); sealed at rest, never answered.
    #[schema(schema_with = password_schema)]
    pub wp_app_password: String,
    /// Requests in flight to this WordPress at most (1 to 8, default 2).
    #[schema(minimum = 1, maximum = 8)]
    pub max_concurrent_requests: Option<u32>,
}

fn platform_schema() -> utoipa::openapi::Object {
    crate::http::schema::string_enum(&["wordpress"])
}

fn check_platform(p: Option<&str>) -> ApiResult<()> {
    match p {
        None | Some("wordpress") => Ok(()),
        Some(_) => Err(ApiError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "VALIDATION_ERROR",
            "platform must be wordpress",
        )),
    }
}

/// Connect a site to its WordPress (owners and admins; one per site).
/// Test it with `…/test-connection/`.
#[utoipa::path(post, path = "/api/v1/integration/integrations/", tag = "integration", request_body = CreateIntegrationBody, security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "A retry with the same key answers the first connection")),
    responses((status = 201, description = "Created", body = Saved<IntegrationSaved>), (status = 403, description = "Not owner/admin", body = ErrorEnvelope),
              (status = 404, description = "Unknown or invisible site", body = ErrorEnvelope),
              (status = 409, description = "INTEGRATION_EXISTS: the site has a connection (PATCH it)", body = ErrorEnvelope),
              (status = 422, description = "INVALID_WP_URL, INVALID_WP_USERNAME, INVALID_WP_APP_PASSWORD, INVALID_CONCURRENCY, VALIDATION_ERROR", body = ErrorEnvelope)))]
pub async fn create(
    State(s): State<AppState>,
    Command {
        principal: p,
        ctx,
        body: b,
        ..
    }: Command<CreateIntegrationBody>,
) -> ApiResult<Response> {
    check_platform(b.platform.as_deref())?;
    let input = cmd::NewConnection {
        site_id: b.site_id,
        url: b.wp_url,
        username: b.wp_username,
        app_password: b.wp_app_password,
        max_concurrent: b.max_concurrent_requests,
    };
    let (iid, out) = cmd::connect(&s.bus, &s.keys.secrets, &p, &ctx, input).await?;
    let (i, _) = s.bus.load::<WpIntegration>(&iid.to_string()).await?;
    Ok(resource(saved(iid, &i), &out, true))
}

async fn row(s: &AppState, p: &Principal, iid: Uuid) -> ApiResult<IntegrationRow> {
    rm::get_integration(&s.db, &p.account()?.to_string(), &iid.to_string())
        .await?
        .filter(|r| p.can_see_site(id(&r.site_id)))
        .ok_or_else(|| ApiError::not_found("integration"))
}

/// One connection.
#[utoipa::path(get, path = "/api/v1/integration/integrations/{id}/", tag = "integration", params(("id" = Uuid, Path), crate::http::ReadParams), security(("bearer" = [])),
    responses((status = 200, description = "The connection", body = WpIntegrationView), (status = 404, description = "Unknown or not visible", body = ErrorEnvelope)))]
pub async fn get_one(
    State(s): State<AppState>,
    p: Principal,
    ApiPath(iid): ApiPath<Uuid>,
    ApiQuery(r): ApiQuery<crate::http::ReadParams>,
) -> ApiResult<ApiOk<WpIntegrationView>> {
    read_your_writes(&s, rm::NAME, r.min_position).await?;
    Ok(ApiOk(integration_view(&s, row(&s, &p, iid).await?)))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateIntegrationBody {
    #[schema(schema_with = wp_url_opt)]
    pub wp_url: Option<String>,
    #[schema(schema_with = username_opt)]
    pub wp_username: Option<String>,
    /// A new Application Password (absent: keep the stored one).
    #[schema(schema_with = password_opt)]
    pub wp_app_password: Option<String>,
    #[schema(minimum = 1, maximum = 8)]
    pub max_concurrent_requests: Option<u32>,
}

/// Change a connection (owners and admins); fields left out keep their value.
/// A new URL, user or password forgets the last test.
#[utoipa::path(patch, path = "/api/v1/integration/integrations/{id}/", tag = "integration", request_body = UpdateIntegrationBody, params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, description = "Saved", body = Saved<IntegrationSaved>), (status = 403, description = "Not owner/admin", body = ErrorEnvelope),
              (status = 404, description = "Unknown or not visible", body = ErrorEnvelope),
              (status = 422, description = "INVALID_WP_URL, INVALID_WP_USERNAME, INVALID_WP_APP_PASSWORD, INVALID_CONCURRENCY", body = ErrorEnvelope)))]
pub async fn update(
    State(s): State<AppState>,
    ApiPath(iid): ApiPath<Uuid>,
    Command {
        principal: p,
        ctx,
        body: b,
        ..
    }: Command<UpdateIntegrationBody>,
) -> ApiResult<Response> {
    let change = cmd::ConnectionChange {
        url: b.wp_url,
        username: b.wp_username,
        app_password: b.wp_app_password,
        max_concurrent: b.max_concurrent_requests,
    };
    let out = cmd::change(&s.bus, &s.keys.secrets, &p, &ctx, iid, change).await?;
    let (i, _) = s.bus.load::<WpIntegration>(&iid.to_string()).await?;
    Ok(resource(saved(iid, &i), &out, false))
}

/// Remove a connection (owners and admins). Posts stay in WordPress; the
/// publications stay in the history.
#[utoipa::path(delete, path = "/api/v1/integration/integrations/{id}/", tag = "integration", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, description = "Removed", body = Saved<crate::http::command::Deleted>), (status = 403, description = "Not owner/admin", body = ErrorEnvelope),
              (status = 404, description = "Unknown or not visible", body = ErrorEnvelope)))]
pub async fn remove(
    State(s): State<AppState>,
    ApiPath(iid): ApiPath<Uuid>,
    Command {
        principal: p, ctx, ..
    }: Command<crate::http::Empty>,
) -> ApiResult<Response> {
    let out = cmd::disconnect(&s.bus, &p, &ctx, iid).await?;
    Ok(resource(
        crate::http::command::Deleted::id(iid),
        &out,
        false,
    ))
}

/// Test a connection: the REST API, Application Passwords, the user and
/// what it may do, the WordPress version and the companion plugin (whose
/// webhooks are set up here when this server has a public URL). 200 with
/// what was found — `ok: false` and WordPress's error code when it failed.
#[utoipa::path(post, path = "/api/v1/integration/integrations/{id}/test-connection/", tag = "integration", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, description = "What the test found", body = ConnectionTestView), (status = 403, description = "Not owner/admin", body = ErrorEnvelope),
              (status = 404, description = "Unknown or not visible", body = ErrorEnvelope),
              (status = 409, description = "CREDENTIAL_UNREADABLE: set the password again", body = ErrorEnvelope)))]
pub async fn test_connection(
    State(s): State<AppState>,
    ApiPath(iid): ApiPath<Uuid>,
    Command {
        principal: p, ctx, ..
    }: Command<crate::http::Empty>,
) -> ApiResult<ApiOk<ConnectionTestView>> {
    let i = cmd::integration_scope(&s.bus, &p, iid).await?;
    p.require_manage()?;
    let conn = cmd::open(&s.keys.secrets, iid, &i)?;
    let hook = webhook_url(&s, iid).zip(cmd::webhook_secret(&s.keys.secrets, iid, &i));
    let test = igny8_workers::publishing::connect::test_connection(
        &s.wp,
        &conn,
        Some(s.bus.clone()),
        hook,
    )
    .await;
    cmd::record_test(&s.bus, &ctx, iid, test.clone()).await?;
    Ok(ApiOk(test.into()))
}

// --- publish, unpublish, sync ----------------------------------------------------

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishBody {
    pub content_id: Uuid,
    /// draft, publish, future (needs date_gmt), pending or private (default draft).
    #[schema(schema_with = publish_status_schema)]
    pub status: Option<String>,
    /// RFC 3339; required for future (and then in the future).
    #[schema(format = DateTime)]
    pub date_gmt: Option<String>,
    /// Category names (created when missing), at most 20.
    #[schema(schema_with = term_list_opt)]
    pub categories: Option<Vec<String>>,
    /// Tag names (created when missing), at most 20.
    #[schema(schema_with = term_list_opt)]
    pub tags: Option<Vec<String>>,
    /// Publish over a change made in WordPress since our last write.
    pub force: Option<bool>,
}

/// Publish a content (with its featured and in-article images, categories
/// and tags) to this WordPress: 202 with the job. Publishing it again
/// updates the same post; never a second post, even after a timeout or a
/// crash. Not priced.
#[utoipa::path(post, path = "/api/v1/integration/integrations/{id}/publish/", tag = "integration", request_body = PublishBody, params(("id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "A retry with the same key answers the first job")), security(("bearer" = [])),
    responses((status = 202, description = "job_id, state PENDING", body = crate::http::accepted::JobAccepted),
              (status = 403, description = "Read-only role", body = ErrorEnvelope),
              (status = 404, description = "Unknown or invisible connection or content", body = ErrorEnvelope),
              (status = 409, description = "PUBLISH_RUNNING, EXTERNAL_EDIT (publish with force: true), NO_APP_PASSWORD", body = ErrorEnvelope),
              (status = 422, description = "INVALID_STATUS, INVALID_DATE, INVALID_TERMS, VALIDATION_ERROR (content of another site)", body = ErrorEnvelope)))]
pub async fn publish(
    State(s): State<AppState>,
    ApiPath(iid): ApiPath<Uuid>,
    Command {
        principal: p,
        ctx,
        body: b,
        ..
    }: Command<PublishBody>,
) -> ApiResult<Response> {
    let r = pubcmd::PublishRequest {
        content_id: b.content_id,
        status: b.status.unwrap_or_else(|| "draft".into()),
        date_gmt: b.date_gmt,
        categories: b.categories.unwrap_or_default(),
        tags: b.tags.unwrap_or_default(),
        force: b.force.unwrap_or(false),
    };
    let job = pubcmd::publish(&s.bus, &p, &ctx, iid, r).await?;
    crate::http::accepted::accepted(
        job.job_id,
        1,
        0,
        job.position,
        job.replayed,
        "publishing started",
    )
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UnpublishBody {
    pub content_id: Uuid,
    /// draft (default) or trash.
    #[schema(schema_with = unpublish_schema)]
    pub to: Option<String>,
}

/// Move a published post back to draft, or to the trash: 202 with the job.
#[utoipa::path(post, path = "/api/v1/integration/integrations/{id}/unpublish/", tag = "integration", request_body = UnpublishBody, params(("id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header)), security(("bearer" = [])),
    responses((status = 202, description = "job_id, state PENDING", body = crate::http::accepted::JobAccepted),
              (status = 403, description = "Read-only role", body = ErrorEnvelope),
              (status = 404, description = "Unknown or invisible connection or content", body = ErrorEnvelope),
              (status = 409, description = "NOT_PUBLISHED, PUBLISH_RUNNING", body = ErrorEnvelope),
              (status = 422, description = "INVALID_STATUS", body = ErrorEnvelope)))]
pub async fn unpublish(
    State(s): State<AppState>,
    ApiPath(iid): ApiPath<Uuid>,
    Command {
        principal: p,
        ctx,
        body: b,
        ..
    }: Command<UnpublishBody>,
) -> ApiResult<Response> {
    let to = b.to.unwrap_or_else(|| "draft".into());
    let job = pubcmd::unpublish(&s.bus, &p, &ctx, iid, b.content_id, &to).await?;
    crate::http::accepted::accepted(
        job.job_id,
        1,
        0,
        job.position,
        job.replayed,
        "unpublishing started",
    )
}

/// Read back every post published through this connection (status,
/// `modified_gmt`, a hash of the content): a post changed, trashed or
/// deleted in WordPress is recorded on its publication. 202 with the job.
#[utoipa::path(post, path = "/api/v1/integration/integrations/{id}/sync/", tag = "integration", params(("id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header)), security(("bearer" = [])),
    responses((status = 202, description = "job_id, state PENDING", body = crate::http::accepted::JobAccepted),
              (status = 403, description = "Read-only role", body = ErrorEnvelope),
              (status = 404, description = "Unknown or not visible", body = ErrorEnvelope)))]
pub async fn sync(
    State(s): State<AppState>,
    ApiPath(iid): ApiPath<Uuid>,
    Command {
        principal: p, ctx, ..
    }: Command<crate::http::Empty>,
) -> ApiResult<Response> {
    let account = p.account()?.to_string();
    let ids = rm::published_ids(&s.db, &account, &iid.to_string()).await?;
    let ids: Vec<Uuid> = ids.iter().map(|x| id(x)).collect();
    let n = ids.len().min(pubcmd::MAX_SYNC);
    let job = pubcmd::sync(&s.bus, &p, &ctx, iid, ids).await?;
    crate::http::accepted::accepted(job.job_id, n, 0, job.position, job.replayed, "sync started")
}

// --- the request log -----------------------------------------------------------

/// One request the publisher made to this WordPress.
#[derive(Debug, Serialize, ToSchema)]
pub struct SyncLogView {
    pub id: i64,
    pub job_id: Option<Uuid>,
    pub content_id: Option<Uuid>,
    pub method: String,
    /// The REST route and query.
    pub path: String,
    /// HTTP status (`null`: no answer).
    pub status: Option<i32>,
    pub duration_ms: i64,
    /// WordPress's error code (or ours: TIMEOUT, CONNECT_ERROR, …).
    pub wp_code: Option<String>,
    /// 1 for the first try of a request.
    pub attempt: i32,
    #[schema(schema_with = outcome_schema)]
    pub outcome: String,
    pub error: Option<String>,
    pub at: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SyncLogParams {
    /// ok, error, retried or unknown.
    #[param(schema_with = outcome_schema)]
    pub outcome: Option<String>,
    /// Only this job's requests.
    pub job_id: Option<Uuid>,
}

/// Every request made to this WordPress, newest first.
#[utoipa::path(get, path = "/api/v1/integration/integrations/{id}/sync_logs/", tag = "integration", params(("id" = Uuid, Path), PageParams, SyncLogParams), security(("bearer" = [])),
    responses((status = 200, description = "A page of requests", body = Page<SyncLogView>), (status = 400, description = "INVALID_QUERY", body = ErrorEnvelope),
              (status = 404, description = "Unknown or not visible", body = ErrorEnvelope)))]
pub async fn sync_logs(
    State(s): State<AppState>,
    p: Principal,
    ApiPath(iid): ApiPath<Uuid>,
    paging: Paging,
    ApiQuery(q): ApiQuery<SyncLogParams>,
) -> ApiResult<ApiOk<Page<SyncLogView>>> {
    cmd::integration_scope(&s.bus, &p, iid).await?;
    if q.outcome
        .as_deref()
        .is_some_and(|o| !log::OUTCOMES.contains(&o))
    {
        return Err(ApiError::bad_request(
            "INVALID_QUERY",
            "outcome must be ok, error, retried or unknown",
        ));
    }
    let f = log::Filter {
        outcome: q.outcome,
        job_id: q.job_id,
        offset: paging.offset,
        limit: paging.size,
    };
    let (rows, count) = log::page(&s.bus, iid, &f).await?;
    let views = rows
        .into_iter()
        .map(|r| SyncLogView {
            id: r.id,
            job_id: crate::http::schema::opt_id(&r.job_id),
            content_id: crate::http::schema::opt_id(&r.content_id),
            method: r.method,
            path: r.path,
            status: r.status,
            duration_ms: r.duration_ms,
            wp_code: r.wp_code,
            attempt: r.attempt,
            outcome: r.outcome,
            error: r.error,
            at: r.at,
        })
        .collect();
    Ok(paging.page(views, count))
}

// --- publications ----------------------------------------------------------------

/// A change made in WordPress since our last write.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExternalChangeView {
    #[schema(schema_with = change_kind_schema)]
    pub kind: String,
    /// sync, webhook or publish (found while publishing).
    pub source: String,
    pub status: Option<String>,
    pub modified_gmt: Option<String>,
    pub at: Option<chrono::DateTime<chrono::Utc>>,
}

/// One content on one WordPress: its post and what happened to it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PublicationView {
    pub id: Uuid,
    pub integration_id: Uuid,
    pub site_id: Uuid,
    pub content_id: Uuid,
    #[schema(schema_with = publication_state_schema)]
    pub state: String,
    /// The last publish (a job).
    pub publish_id: Option<Uuid>,
    pub post_id: Option<i64>,
    pub link: Option<String>,
    /// The post's status in WordPress (draft, publish, future, pending, private, trash, deleted).
    pub wp_status: Option<String>,
    pub slug: Option<String>,
    pub modified_gmt: Option<String>,
    /// The content version the post shows.
    pub version: Option<i64>,
    /// What WordPress did differently from what was asked (TERM_DROPPED, FEATURED_MEDIA_DROPPED, SLUG_CHANGED, STATUS_CHANGED).
    pub warnings: Vec<String>,
    pub error: Option<String>,
    /// A change made in WordPress since our last write: publishing over it needs `force: true`.
    pub external_change: Option<ExternalChangeView>,
    /// Images uploaded to the media library.
    pub media: i64,
    pub publishes: i64,
    pub published_at: Option<chrono::DateTime<chrono::Utc>>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl From<PublicationRow> for PublicationView {
    fn from(r: PublicationRow) -> Self {
        let change = r
            .external_change
            .as_deref()
            .and_then(|c| serde_json::from_str::<ExternalChange>(c).ok())
            .map(|c| ExternalChangeView {
                kind: c.kind,
                source: c.source,
                status: c.status,
                modified_gmt: c.modified_gmt,
                at: r.external_at,
            });
        PublicationView {
            id: id(&r.publication_id),
            integration_id: id(&r.integration_id),
            site_id: id(&r.site_id),
            content_id: id(&r.content_id),
            state: r.state,
            publish_id: crate::http::schema::opt_id(&r.publish_id),
            post_id: r.post_id,
            link: r.link,
            wp_status: r.wp_status,
            slug: r.slug,
            modified_gmt: r.modified_gmt,
            version: r.version,
            warnings: serde_json::from_str(&r.warnings).unwrap_or_default(),
            error: r.error,
            external_change: change,
            media: r.media,
            publishes: r.publishes,
            published_at: r.published_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PublicationParams {
    pub integration_id: Option<Uuid>,
    pub content_id: Option<Uuid>,
    #[param(schema_with = publication_state_schema)]
    pub state: Option<String>,
    /// Only those with (true) or without (false) a change made in WordPress.
    pub external_change: Option<bool>,
    /// created_at, updated_at, published_at, state; `-` for descending (default `created_at`).
    #[param(schema_with = publication_ordering_schema)]
    pub ordering: Option<String>,
}

/// What was published where: one row per content and WordPress.
#[utoipa::path(get, path = "/api/v1/integration/publications/", tag = "integration", params(PageParams, PublicationParams), security(("bearer" = [])),
    responses((status = 200, description = "A page of publications", body = Page<PublicationView>), (status = 400, description = "INVALID_QUERY", body = ErrorEnvelope)))]
pub async fn list_publications(
    State(s): State<AppState>,
    p: Principal,
    paging: Paging,
    ApiQuery(q): ApiQuery<PublicationParams>,
) -> ApiResult<ApiOk<Page<PublicationView>>> {
    let account = p.account()?;
    if q.state
        .as_deref()
        .is_some_and(|x| !rm::PUBLICATION_STATES.contains(&x))
    {
        return Err(ApiError::bad_request(
            "INVALID_QUERY",
            "state must be publishing, published, unpublished, failed or cancelled",
        ));
    }
    crate::http::check_ordering(q.ordering.as_deref(), rm::PUBLICATION_ORDERINGS)?;
    paging.read_your_writes(&s, rm::NAME).await?;
    let f = rm::PublicationFilter {
        site_in: p.site_filter(),
        integration_id: q.integration_id.map(|x| x.to_string()),
        content_id: q.content_id.map(|x| x.to_string()),
        state: q.state,
        external: q.external_change,
        ordering: q.ordering,
        offset: paging.offset,
        limit: paging.size,
    };
    let (rows, count) = rm::page_publications(&s.db, &account.to_string(), &f).await?;
    Ok(paging.page(rows.into_iter().map(PublicationView::from).collect(), count))
}

/// One publication.
#[utoipa::path(get, path = "/api/v1/integration/publications/{id}/", tag = "integration", params(("id" = Uuid, Path), crate::http::ReadParams), security(("bearer" = [])),
    responses((status = 200, description = "The publication", body = PublicationView), (status = 404, description = "Unknown or not visible", body = ErrorEnvelope)))]
pub async fn get_publication(
    State(s): State<AppState>,
    p: Principal,
    ApiPath(pid): ApiPath<Uuid>,
    ApiQuery(r): ApiQuery<crate::http::ReadParams>,
) -> ApiResult<ApiOk<PublicationView>> {
    read_your_writes(&s, rm::NAME, r.min_position).await?;
    let row = rm::get_publication(&s.db, &p.account()?.to_string(), &pid.to_string())
        .await?
        .filter(|r| p.can_see_site(id(&r.site_id)))
        .ok_or_else(|| ApiError::not_found("publication"))?;
    Ok(ApiOk(row.into()))
}

// --- webhooks ------------------------------------------------------------------------

/// What a webhook changed.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookReceived {
    /// false: the change was already known (or was our own write).
    pub recorded: bool,
}

/// A signed webhook from the companion plugin (a post we published was
/// edited, trashed, restored or deleted). No bearer token: the
/// `X-Igny8-Signature` (HMAC-SHA256 of `<timestamp>.<body>` under the
/// connection's secret) and `X-Igny8-Timestamp` (within 5 minutes) are the
/// credentials; anything else is 401 and nothing is recorded.
#[utoipa::path(post, path = "/api/v1/integration/webhooks/wordpress/{id}/", tag = "integration", params(("id" = Uuid, Path),
        ("X-Igny8-Timestamp" = String, Header, description = "Unix seconds"),
        ("X-Igny8-Signature" = String, Header, description = "sha256=<hex>")),
    request_body(content = Object, description = "{event, post_id, publish_id, content_id, status, modified_gmt, content_sha256}"),
    responses((status = 200, description = "Verified", body = WebhookReceived),
              (status = 401, description = "INVALID_WEBHOOK_SIGNATURE", body = ErrorEnvelope),
              (status = 404, description = "No such publication", body = ErrorEnvelope),
              (status = 422, description = "VALIDATION_ERROR", body = ErrorEnvelope)))]
pub async fn wordpress_webhook(
    State(s): State<AppState>,
    ApiPath(iid): ApiPath<Uuid>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<ApiOk<WebhookReceived>> {
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    let recorded = webhook::receive(
        &s.bus,
        &s.keys.secrets,
        iid,
        h("x-igny8-timestamp"),
        h("x-igny8-signature"),
        &body,
    )
    .await?;
    Ok(ApiOk(WebhookReceived { recorded }))
}
