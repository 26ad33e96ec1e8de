//! Content: list, the current version, a person's edit, regenerate,
//! versions, one version, a diff between two, revert, review status.

use crate::auth::Principal;
use crate::http::command::Saved;
use crate::http::{
    ApiError, ApiOk, ApiPath, ApiQuery, ApiResult, Command, Empty, Page, PageParams, Paging,
    both_slashes, read_your_writes, resource,
};
use crate::state::AppState;
use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use igny8_commands::writer as cmd;
use igny8_domain::writer::{ContentStatus, InternalLink, VersionAuthor};
use igny8_projections::writer::{self as rm, ContentFilter, ContentRow};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

pub fn routes(r: Router<AppState>) -> Router<AppState> {
    let r = both_slashes(r, "/api/v1/writer/content/", get(list_content));
    let r = both_slashes(
        r,
        "/api/v1/writer/content/{id}/",
        get(get_content).patch(edit_content),
    );
    let r = both_slashes(
        r,
        "/api/v1/writer/content/{id}/regenerate/",
        post(regenerate),
    );
    let r = both_slashes(r, "/api/v1/writer/content/{id}/revert/", post(revert));
    let r = both_slashes(r, "/api/v1/writer/content/{id}/status/", post(set_status));
    let r = both_slashes(
        r,
        "/api/v1/writer/content/{id}/versions/",
        get(list_versions),
    );
    let r = both_slashes(
        r,
        "/api/v1/writer/content/{id}/versions/{n}/",
        get(get_version),
    );
    both_slashes(
        r,
        "/api/v1/writer/content/{id}/versions/{n}/diff/",
        get(diff_versions),
    )
}

fn content_status_schema() -> utoipa::openapi::Object {
    crate::http::schema::string_enum(&ContentStatus::ALL.map(ContentStatus::as_str))
}

fn content_ordering_schema() -> utoipa::openapi::Object {
    crate::http::schema::ordering_enum(rm::CONTENT_ORDERINGS)
}

/// Who made a version: a user, an AI job with its provider, model,
/// prompt, tokens, cost and the credits it was charged, or an image job
/// that placed the article's images.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuthorView {
    /// `ai` or `user`.
    #[schema(schema_with = author_kind_schema)]
    pub kind: &'static str,
    pub user_id: Option<Uuid>,
    /// A revert: the version it copies.
    pub reverted_from: Option<u32>,
    pub job_id: Option<Uuid>,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub prompt_type: Option<String>,
    pub prompt_version: Option<u32>,
    /// The strategy whose template override was used.
    pub strategy_id: Option<Uuid>,
    pub tokens: Option<u64>,
    /// Provider cost in USD.
    pub cost_usd: Option<f64>,
    /// Credits charged for the version.
    #[schema(value_type = Option<f64>)]
    pub credits: Option<crate::http::CreditAmount>,
    /// `images`: the images the version placed.
    pub image_ids: Option<Vec<Uuid>>,
}

fn author_kind_schema() -> utoipa::openapi::Object {
    crate::http::schema::string_enum(&["ai", "user", "images"])
}

impl From<VersionAuthor> for AuthorView {
    fn from(a: VersionAuthor) -> Self {
        match a {
            VersionAuthor::Ai {
                job_id,
                provider,
                model,
                prompt_type,
                prompt_version,
                strategy_id,
                tokens,
                cost_usd_micros,
                credits_milli,
            } => AuthorView {
                kind: "ai",
                user_id: None,
                reverted_from: None,
                job_id: Some(job_id),
                provider: Some(provider),
                model: Some(model),
                prompt_type: Some(prompt_type),
                prompt_version: Some(prompt_version),
                strategy_id,
                tokens: Some(tokens),
                cost_usd: Some(cost_usd_micros as f64 / 1_000_000.0),
                credits: Some(crate::http::CreditAmount(credits_milli)),
                image_ids: None,
            },
            VersionAuthor::Images { job_id, image_ids } => AuthorView {
                kind: "images",
                user_id: None,
                reverted_from: None,
                job_id: Some(job_id),
                provider: None,
                model: None,
                prompt_type: None,
                prompt_version: None,
                strategy_id: None,
                tokens: None,
                cost_usd: None,
                credits: None,
                image_ids: Some(image_ids),
            },
            VersionAuthor::User {
                user_id,
                reverted_from,
            } => AuthorView {
                kind: "user",
                user_id,
                reverted_from,
                job_id: None,
                provider: None,
                model: None,
                prompt_type: None,
                prompt_version: None,
                strategy_id: None,
                tokens: None,
                cost_usd: None,
                credits: None,
                image_ids: None,
            },
        }
    }
}

/// A link to another content of the site whose primary keyword the text uses.
#[derive(Debug, Serialize, ToSchema)]
pub struct LinkView {
    pub content_id: Uuid,
    pub keyword: String,
}

fn links(v: Vec<InternalLink>) -> Vec<LinkView> {
    v.into_iter()
        .map(|l| LinkView {
            content_id: l.content_id,
            keyword: l.keyword,
        })
        .collect()
}

/// A content's current version, and its lineage (task, idea, cluster).
#[derive(Debug, Serialize, ToSchema)]
pub struct ContentView {
    pub id: Uuid,
    pub task_id: Uuid,
    pub idea_id: Option<Uuid>,
    pub cluster_id: Option<Uuid>,
    pub site_id: Uuid,
    pub sector_id: Uuid,
    #[schema(schema_with = content_status_schema)]
    pub status: String,
    /// The current version's number.
    pub version: i64,
    pub title: String,
    /// Sanitised HTML.
    pub html_content: String,
    pub meta_title: String,
    pub meta_description: String,
    pub word_count: i64,
    pub primary_keyword: String,
    pub secondary_keywords: Vec<String>,
    pub internal_links: Vec<LinkView>,
    /// The featured image (placed by an image job).
    pub featured_image_id: Option<Uuid>,
    /// Who made the current version.
    pub author: AuthorView,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

fn parse<T: serde::de::DeserializeOwned>(raw: &str) -> Option<T> {
    serde_json::from_str(raw).ok()
}

impl From<ContentRow> for ContentView {
    fn from(r: ContentRow) -> Self {
        let author = parse::<VersionAuthor>(&r.author).unwrap_or(VersionAuthor::User {
            user_id: None,
            reverted_from: None,
        });
        ContentView {
            id: crate::http::schema::id(&r.content_id),
            task_id: crate::http::schema::id(&r.task_id),
            idea_id: crate::http::schema::opt_id(&r.idea_id),
            cluster_id: crate::http::schema::opt_id(&r.cluster_id),
            site_id: crate::http::schema::id(&r.site_id),
            sector_id: crate::http::schema::id(&r.sector_id),
            status: r.status,
            version: r.version,
            title: r.title,
            html_content: r.html_content,
            meta_title: r.meta_title,
            meta_description: r.meta_description,
            word_count: r.word_count,
            primary_keyword: r.primary_keyword,
            secondary_keywords: parse(&r.secondary_keywords).unwrap_or_default(),
            internal_links: links(parse(&r.internal_links).unwrap_or_default()),
            featured_image_id: crate::http::schema::opt_id(&r.featured_image_id),
            author: author.into(),
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ContentParams {
    pub site_id: Option<Uuid>,
    pub sector_id: Option<Uuid>,
    #[param(schema_with = content_status_schema)]
    pub status: Option<String>,
    pub task_id: Option<Uuid>,
    pub cluster_id: Option<Uuid>,
    /// Part of the title or the primary keyword (case-insensitive).
    pub search: Option<String>,
    /// created_at, updated_at, title, word_count, status, version; `-` for descending (default `-created_at`).
    #[param(schema_with = content_ordering_schema)]
    pub ordering: Option<String>,
}

/// Content, filtered, ordered and paginated (each with its current version).
#[utoipa::path(get, path = "/api/v1/writer/content/", tag = "writer", params(PageParams, ContentParams), security(("bearer" = [])),
    responses((status = 200, description = "A page of content", body = Page<ContentView>), (status = 400, description = "INVALID_QUERY", body = crate::http::schema::ErrorEnvelope)))]
pub async fn list_content(
    State(s): State<AppState>,
    p: Principal,
    paging: Paging,
    ApiQuery(q): ApiQuery<ContentParams>,
) -> ApiResult<ApiOk<Page<ContentView>>> {
    let account = igny8_commands::planner::list_scope(&s.bus, &p, q.site_id, q.sector_id).await?;
    if q.status
        .as_deref()
        .is_some_and(|x| ContentStatus::parse(x).is_none())
    {
        return Err(ApiError::bad_request(
            "INVALID_QUERY",
            "status must be draft, review or approved",
        ));
    }
    crate::http::check_ordering(q.ordering.as_deref(), rm::CONTENT_ORDERINGS)?;
    paging.read_your_writes(&s, rm::NAME).await?;
    let f = ContentFilter {
        site_in: p.site_filter(),
        site_id: q.site_id.map(|x| x.to_string()),
        sector_id: q.sector_id.map(|x| x.to_string()),
        status: q.status,
        task_id: q.task_id.map(|x| x.to_string()),
        cluster_id: q.cluster_id.map(|x| x.to_string()),
        search: q.search,
        ordering: q.ordering,
        offset: paging.offset,
        limit: paging.size,
    };
    let (rows, count) = rm::page_content(&s.db, &account.to_string(), &f).await?;
    Ok(paging.page(rows.into_iter().map(ContentView::from).collect(), count))
}

/// One content: its current version.
#[utoipa::path(get, path = "/api/v1/writer/content/{id}/", tag = "writer", params(("id" = Uuid, Path), crate::http::ReadParams), security(("bearer" = [])),
    responses((status = 200, description = "The content", body = ContentView), (status = 404, description = "Unknown or not visible", body = crate::http::schema::ErrorEnvelope)))]
pub async fn get_content(
    State(s): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(r): ApiQuery<crate::http::ReadParams>,
) -> ApiResult<ApiOk<ContentView>> {
    read_your_writes(&s, rm::NAME, r.min_position).await?;
    let row = rm::get_content(&s.db, &p.account()?.to_string(), &id.to_string())
        .await?
        .filter(|r| p.can_see_site(crate::http::schema::id(&r.site_id)) && r.version > 0)
        .ok_or_else(|| ApiError::not_found("content"))?;
    Ok(ApiOk(row.into()))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EditContentBody {
    #[schema(schema_with = crate::http::constraints::title_or_null)]
    pub title: Option<String>,
    /// HTML; sanitised before it is stored (scripts, event handlers,
    /// `javascript:` URLs and unknown tags are dropped; `sanitized` says so).
    #[schema(schema_with = crate::http::constraints::html_or_null)]
    pub html_content: Option<String>,
    #[schema(schema_with = crate::http::constraints::meta_title_or_null)]
    pub meta_title: Option<String>,
    #[schema(schema_with = crate::http::constraints::meta_description_or_null)]
    pub meta_description: Option<String>,
    #[schema(schema_with = crate::http::constraints::keywords_or_null)]
    pub secondary_keywords: Option<Vec<String>>,
}

/// A new version.
#[derive(Debug, Serialize, ToSchema)]
pub struct VersionSaved {
    pub id: Uuid,
    /// The new version's number.
    pub content_version: u32,
    pub word_count: u32,
    /// The HTML sent had to be sanitised.
    pub sanitized: bool,
}

/// A person edits the content: a new version attributed to them.
#[utoipa::path(patch, path = "/api/v1/writer/content/{id}/", tag = "writer", request_body = EditContentBody, params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, description = "The new version", body = Saved<VersionSaved>), (status = 404, description = "Unknown or not visible", body = crate::http::schema::ErrorEnvelope),
              (status = 422, description = "VALIDATION_ERROR (nothing to change), INVALID_TITLE, INVALID_META_TITLE, INVALID_META_DESCRIPTION, INVALID_HTML", body = crate::http::schema::ErrorEnvelope)))]
pub async fn edit_content(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    Command {
        principal: p,
        ctx,
        body: b,
        ..
    }: Command<EditContentBody>,
) -> ApiResult<Response> {
    let edit = cmd::ContentEdit {
        title: b.title,
        html_content: b.html_content,
        meta_title: b.meta_title,
        meta_description: b.meta_description,
        secondary_keywords: b.secondary_keywords,
    };
    let done = cmd::edit_content(&s.bus, &p, &ctx, id, edit).await?;
    Ok(saved(done))
}

fn saved(done: cmd::ContentSaved) -> Response {
    resource(
        VersionSaved {
            id: done.id,
            content_version: done.version,
            word_count: done.word_count,
            sanitized: done.sanitized,
        },
        &done.outcome,
        false,
    )
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevertBody {
    /// The version to copy (≥ 1).
    #[schema(minimum = 1)]
    pub version: u32,
}

/// A new version equal to an earlier one (the versions in between stay).
#[utoipa::path(post, path = "/api/v1/writer/content/{id}/revert/", tag = "writer", request_body = RevertBody, params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, description = "The new version", body = Saved<VersionSaved>), (status = 404, description = "Unknown content, or VERSION_NOT_FOUND", body = crate::http::schema::ErrorEnvelope)))]
pub async fn revert(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    Command {
        principal: p,
        ctx,
        body: b,
        ..
    }: Command<RevertBody>,
) -> ApiResult<Response> {
    let done = cmd::revert(&s.bus, &p, &ctx, id, b.version).await?;
    Ok(saved(done))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusBody {
    /// draft, review or approved.
    #[schema(schema_with = content_status_schema)]
    pub status: String,
}

/// The content's review status.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatusView {
    pub id: Uuid,
    #[schema(schema_with = content_status_schema)]
    pub status: String,
}

/// Move the content through review: draft, review, approved.
#[utoipa::path(post, path = "/api/v1/writer/content/{id}/status/", tag = "writer", request_body = StatusBody, params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, description = "The status", body = Saved<StatusView>), (status = 404, description = "Unknown or not visible", body = crate::http::schema::ErrorEnvelope),
              (status = 422, description = "INVALID_STATUS", body = crate::http::schema::ErrorEnvelope)))]
pub async fn set_status(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    Command {
        principal: p,
        ctx,
        body: b,
        ..
    }: Command<StatusBody>,
) -> ApiResult<Response> {
    let status = ContentStatus::parse(&b.status).ok_or_else(|| {
        ApiError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_STATUS",
            "status must be draft, review or approved",
        )
    })?;
    let outcome = cmd::set_status(&s.bus, &p, &ctx, id, status).await?;
    Ok(resource(
        StatusView {
            id,
            status: status.as_str().into(),
        },
        &outcome,
        false,
    ))
}

/// A new AI version of the content (202, a content job on its task; the
/// previous versions stay).
#[utoipa::path(post, path = "/api/v1/writer/content/{id}/regenerate/", tag = "writer", params(("id" = Uuid, Path),
        ("Idempotency-Key" = Option<String>, Header, description = "A retry with the same key answers the first job")), security(("bearer" = [])),
    responses((status = 202, description = "job_id, state PENDING", body = crate::http::accepted::JobAccepted), (status = 402, description = "INSUFFICIENT_CREDITS", body = crate::http::schema::ErrorEnvelope),
              (status = 404, description = "Unknown or not visible", body = crate::http::schema::ErrorEnvelope),
              (status = 409, description = "GENERATION_RUNNING, TASK_DELETED", body = crate::http::schema::ErrorEnvelope)))]
pub async fn regenerate(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    Command {
        principal: p, ctx, ..
    }: Command<Empty>,
) -> ApiResult<Response> {
    let job = cmd::regenerate(&s.bus, &p, &ctx, id).await?;
    crate::http::accepted::accepted(
        job.job_id,
        job.tasks,
        job.reserved,
        job.position,
        job.replayed,
        "regeneration started",
    )
}

/// One version of a content.
#[derive(Debug, Serialize, ToSchema)]
pub struct VersionView {
    pub version: u32,
    pub title: String,
    pub html_content: String,
    pub meta_title: String,
    pub meta_description: String,
    pub word_count: u32,
    pub primary_keyword: String,
    pub secondary_keywords: Vec<String>,
    pub internal_links: Vec<LinkView>,
    pub author: AuthorView,
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Position of the version's event.
    pub position: i64,
}

impl From<cmd::VersionView> for VersionView {
    fn from(v: cmd::VersionView) -> Self {
        VersionView {
            version: v.version,
            title: v.body.title,
            html_content: v.body.html,
            meta_title: v.body.meta_title,
            meta_description: v.body.meta_description,
            word_count: v.body.word_count,
            primary_keyword: v.body.primary_keyword,
            secondary_keywords: v.body.secondary_keywords,
            internal_links: links(v.body.internal_links),
            author: v.author.into(),
            created_at: v.created_at,
            position: v.position,
        }
    }
}

/// Every version of a content, newest first, paginated.
#[utoipa::path(get, path = "/api/v1/writer/content/{id}/versions/", tag = "writer", params(("id" = Uuid, Path), PageParams), security(("bearer" = [])),
    responses((status = 200, description = "A page of versions", body = Page<VersionView>), (status = 404, description = "Unknown or not visible", body = crate::http::schema::ErrorEnvelope)))]
pub async fn list_versions(
    State(s): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<Uuid>,
    paging: Paging,
) -> ApiResult<ApiOk<Page<VersionView>>> {
    cmd::content_scope(&s.bus, &p, id).await?;
    let mut all: Vec<VersionView> = cmd::versions(&s.bus, id)
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    all.reverse();
    Ok(paging.slice(all))
}

/// One version.
#[utoipa::path(get, path = "/api/v1/writer/content/{id}/versions/{n}/", tag = "writer",
    params(("id" = Uuid, Path), ("n" = u32, Path, minimum = 1, description = "The version number")), security(("bearer" = [])),
    responses((status = 200, description = "The version", body = VersionView), (status = 404, description = "Unknown content, or VERSION_NOT_FOUND", body = crate::http::schema::ErrorEnvelope)))]
pub async fn get_version(
    State(s): State<AppState>,
    p: Principal,
    ApiPath((id, n)): ApiPath<(Uuid, u32)>,
) -> ApiResult<ApiOk<VersionView>> {
    cmd::content_scope(&s.bus, &p, id).await?;
    Ok(ApiOk(cmd::version(&s.bus, id, n).await?.into()))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DiffParams {
    /// The version to compare with (default: the one before `n`).
    #[param(minimum = 1)]
    pub against: Option<u32>,
}

/// One line of a diff.
#[derive(Debug, Serialize, ToSchema)]
pub struct DiffLineView {
    /// `equal`, `insert` (in version n only) or `delete` (in `against` only).
    #[schema(schema_with = diff_tag_schema)]
    pub tag: &'static str,
    pub text: String,
}

fn diff_tag_schema() -> utoipa::openapi::Object {
    crate::http::schema::string_enum(&["equal", "insert", "delete"])
}

/// What changed from version `against` to version `n`, as text (title,
/// meta fields, then one line per paragraph, heading or list item).
#[derive(Debug, Serialize, ToSchema)]
pub struct DiffView {
    pub from_version: u32,
    pub to_version: u32,
    pub added: usize,
    pub removed: usize,
    pub lines: Vec<DiffLineView>,
    /// The same as a unified diff.
    pub unified: String,
}

/// A readable diff between two versions.
#[utoipa::path(get, path = "/api/v1/writer/content/{id}/versions/{n}/diff/", tag = "writer",
    params(("id" = Uuid, Path), ("n" = u32, Path, minimum = 1, description = "The version number"), DiffParams), security(("bearer" = [])),
    responses((status = 200, description = "The diff", body = DiffView), (status = 404, description = "Unknown content, or VERSION_NOT_FOUND", body = crate::http::schema::ErrorEnvelope)))]
pub async fn diff_versions(
    State(s): State<AppState>,
    p: Principal,
    ApiPath((id, n)): ApiPath<(Uuid, u32)>,
    ApiQuery(q): ApiQuery<DiffParams>,
) -> ApiResult<ApiOk<DiffView>> {
    cmd::content_scope(&s.bus, &p, id).await?;
    let against = q.against.unwrap_or(n.saturating_sub(1).max(1));
    let (old, new) = cmd::version_pair(&s.bus, id, against, n).await?;
    let d = cmd::diff(&old, &new);
    Ok(ApiOk(DiffView {
        from_version: against,
        to_version: n,
        added: d.added,
        removed: d.removed,
        lines: d
            .lines
            .into_iter()
            .map(|l| DiffLineView {
                tag: l.tag,
                text: l.text,
            })
            .collect(),
        unified: d.unified,
    }))
}
