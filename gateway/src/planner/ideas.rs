//! Content ideas over HTTP: the list (filters, ordering, pagination), one
//! idea, a manual create, change, delete, `bulk_queue_to_writer` (one task
//! per idea) and the `auto_generate_ideas` job for clusters.
//!
//! Route → `igny8_commands::planner::ideas` → `igny8_domain::planner::Idea`
//! → `IdeaCreated` … → `igny8_projections::planner::ideas` (`rm_ideas`) → the
//! list here.

use crate::auth::Principal;
use crate::http::command::{Deleted, Saved};
use crate::http::writing::{Section, content_type, content_type_schema, outline, parse_json};
use crate::http::{
    ApiError, ApiOk, ApiPath, ApiQuery, ApiResult, Command, Empty, Page, PageParams, Paging,
    both_slashes, read_your_writes, resource,
};
use crate::state::AppState;
use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use igny8_commands::planner as cmd;
use igny8_domain::planner::{ContentType, IdeaChange, IdeaData, IdeaStatus, OutlineSection};
use igny8_projections::planner::ideas::{self as rm, IdeaFilter, IdeaRow};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

pub fn routes(r: Router<AppState>) -> Router<AppState> {
    let r = both_slashes(
        r,
        "/api/v1/planner/ideas/",
        get(list_ideas).post(create_idea),
    );
    let r = both_slashes(
        r,
        "/api/v1/planner/ideas/bulk_queue_to_writer/",
        post(bulk_queue_to_writer),
    );
    let r = both_slashes(
        r,
        "/api/v1/planner/clusters/auto_generate_ideas/",
        post(auto_generate_ideas),
    );
    both_slashes(
        r,
        "/api/v1/planner/ideas/{id}/",
        get(get_idea).patch(update_idea).delete(delete_idea),
    )
}

fn content_type_opt() -> utoipa::openapi::Object {
    crate::http::constraints::or_null(content_type_schema())
}

fn idea_status_schema() -> utoipa::openapi::Object {
    crate::http::schema::string_enum(&IdeaStatus::ALL.map(IdeaStatus::as_str))
}

fn idea_status_opt() -> utoipa::openapi::Object {
    crate::http::constraints::or_null(crate::http::schema::string_enum(&[
        "new", "done", "archived",
    ]))
}

fn idea_ordering_schema() -> utoipa::openapi::Object {
    crate::http::schema::ordering_enum(rm::IDEA_ORDERINGS)
}

/// An idea as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct IdeaView {
    pub id: Uuid,
    pub idea_title: String,
    pub description: String,
    pub outline: Vec<Section>,
    #[schema(schema_with = content_type_schema)]
    pub content_type: String,
    pub primary_keyword: String,
    pub secondary_keywords: Vec<String>,
    pub target_word_count: i64,
    pub cluster_id: Option<Uuid>,
    pub site_id: Uuid,
    pub sector_id: Uuid,
    #[schema(schema_with = idea_status_schema)]
    pub status: String,
    /// The task it was queued to.
    pub task_id: Option<Uuid>,
    /// The job that generated it (`null`: written by a person).
    pub job_id: Option<Uuid>,
    /// The author profile its task will write with (`null`: the account's default).
    pub author_profile_id: Option<Uuid>,
    /// The writing strategy its task will follow (`null`: none).
    pub strategy_id: Option<Uuid>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl From<IdeaRow> for IdeaView {
    fn from(r: IdeaRow) -> Self {
        IdeaView {
            id: crate::http::schema::id(&r.idea_id),
            idea_title: r.title,
            description: r.description,
            outline: parse_json::<Vec<OutlineSection>>(&r.outline)
                .into_iter()
                .map(Into::into)
                .collect(),
            content_type: r.content_type,
            primary_keyword: r.primary_keyword,
            secondary_keywords: parse_json(&r.secondary_keywords),
            target_word_count: r.target_word_count,
            cluster_id: crate::http::schema::opt_id(&r.cluster_id),
            site_id: crate::http::schema::id(&r.site_id),
            sector_id: crate::http::schema::id(&r.sector_id),
            status: r.status,
            task_id: crate::http::schema::opt_id(&r.task_id),
            job_id: crate::http::schema::opt_id(&r.job_id),
            author_profile_id: crate::http::schema::opt_id(&r.author_profile_id),
            strategy_id: crate::http::schema::opt_id(&r.strategy_id),
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct IdeaParams {
    pub site_id: Option<Uuid>,
    pub sector_id: Option<Uuid>,
    pub cluster_id: Option<Uuid>,
    #[param(schema_with = idea_status_schema)]
    pub status: Option<String>,
    #[param(schema_with = content_type_schema)]
    pub content_type: Option<String>,
    /// Part of the title or the primary keyword (case-insensitive).
    pub search: Option<String>,
    /// created_at, updated_at, title, target_word_count, status; `-` for descending (default `-created_at`).
    #[param(schema_with = idea_ordering_schema)]
    pub ordering: Option<String>,
}

/// Ideas, filtered, ordered and paginated.
#[utoipa::path(get, path = "/api/v1/planner/ideas/", tag = "planner", params(PageParams, IdeaParams), security(("bearer" = [])),
    responses((status = 200, description = "A page of ideas", body = Page<IdeaView>), (status = 400, description = "INVALID_QUERY", body = crate::http::schema::ErrorEnvelope)))]
pub async fn list_ideas(
    State(s): State<AppState>,
    p: Principal,
    paging: Paging,
    ApiQuery(q): ApiQuery<IdeaParams>,
) -> ApiResult<ApiOk<Page<IdeaView>>> {
    let account = cmd::list_scope(&s.bus, &p, q.site_id, q.sector_id).await?;
    if q.status
        .as_deref()
        .is_some_and(|x| IdeaStatus::parse(x).is_none())
    {
        return Err(ApiError::bad_request(
            "INVALID_QUERY",
            "status must be new, queued, done or archived",
        ));
    }
    if q.content_type
        .as_deref()
        .is_some_and(|x| ContentType::parse(x).is_none())
    {
        return Err(ApiError::bad_request(
            "INVALID_QUERY",
            "unknown content_type",
        ));
    }
    crate::http::check_ordering(q.ordering.as_deref(), rm::IDEA_ORDERINGS)?;
    paging.read_your_writes(&s, rm::NAME).await?;
    let f = IdeaFilter {
        site_in: p.site_filter(),
        site_id: q.site_id.map(|x| x.to_string()),
        sector_id: q.sector_id.map(|x| x.to_string()),
        cluster_id: q.cluster_id.map(|x| x.to_string()),
        status: q.status,
        content_type: q.content_type,
        search: q.search,
        ordering: q.ordering,
        offset: paging.offset,
        limit: paging.size,
    };
    let (rows, count) = rm::page_ideas(&s.db, &account.to_string(), &f).await?;
    Ok(paging.page(rows.into_iter().map(IdeaView::from).collect(), count))
}

/// One idea.
#[utoipa::path(get, path = "/api/v1/planner/ideas/{id}/", tag = "planner", params(("id" = Uuid, Path), crate::http::ReadParams), security(("bearer" = [])),
    responses((status = 200, description = "The idea", body = IdeaView), (status = 404, description = "Unknown or not visible", body = crate::http::schema::ErrorEnvelope)))]
pub async fn get_idea(
    State(s): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(r): ApiQuery<crate::http::ReadParams>,
) -> ApiResult<ApiOk<IdeaView>> {
    read_your_writes(&s, rm::NAME, r.min_position).await?;
    let row = rm::get_idea(&s.db, &p.account()?.to_string(), &id.to_string())
        .await?
        .filter(|r| p.can_see_site(crate::http::schema::id(&r.site_id)))
        .ok_or_else(|| ApiError::not_found("idea"))?;
    Ok(ApiOk(row.into()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateIdeaBody {
    pub sector_id: Uuid,
    /// A cluster of the same sector.
    pub cluster_id: Option<Uuid>,
    /// 1 to 300 characters after trimming.
    #[schema(schema_with = crate::http::constraints::title)]
    pub idea_title: String,
    /// At most 5,000 characters.
    #[serde(default)]
    #[schema(schema_with = crate::http::constraints::text_5000)]
    pub description: String,
    /// At most 40 sections.
    #[serde(default)]
    #[schema(max_items = 40)]
    pub outline: Vec<Section>,
    /// post (default), page, guide, how_to, listicle, comparison, review.
    #[schema(schema_with = content_type_opt)]
    pub content_type: Option<String>,
    /// 1 to 200 characters after trimming.
    #[schema(schema_with = crate::http::constraints::name)]
    pub primary_keyword: String,
    /// At most 30.
    #[serde(default)]
    #[schema(schema_with = crate::http::constraints::keywords)]
    pub secondary_keywords: Vec<String>,
    /// 100 to 10,000 (default 1,500).
    #[schema(minimum = 100, maximum = 10000)]
    pub target_word_count: Option<u32>,
    /// An author profile of the account for the idea's task.
    pub author_profile_id: Option<Uuid>,
    /// A writing strategy of the account for the idea's task.
    pub strategy_id: Option<Uuid>,
}

/// `{"id"}` of an idea written.
#[derive(Debug, Serialize, ToSchema)]
pub struct IdeaRef {
    pub id: Uuid,
}

/// Write an idea by hand.
#[utoipa::path(post, path = "/api/v1/planner/ideas/", tag = "planner", request_body = CreateIdeaBody, security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "A retry with the same key answers the first idea")),
    responses((status = 201, description = "Created", body = Saved<IdeaRef>), (status = 404, description = "Unknown or invisible sector or cluster", body = crate::http::schema::ErrorEnvelope),
              (status = 422, description = "INVALID_TITLE, INVALID_DESCRIPTION, INVALID_OUTLINE, INVALID_KEYWORD, INVALID_WORD_COUNT, INVALID_CONTENT_TYPE, VALIDATION_ERROR", body = crate::http::schema::ErrorEnvelope)))]
pub async fn create_idea(
    State(s): State<AppState>,
    Command {
        principal: p,
        ctx,
        body: b,
        ..
    }: Command<CreateIdeaBody>,
) -> ApiResult<Response> {
    let ct = match &b.content_type {
        Some(t) => content_type(t)?,
        None => ContentType::Post,
    };
    let input = cmd::NewIdea {
        sector_id: b.sector_id,
        idea: IdeaData {
            title: b.idea_title,
            description: b.description,
            outline: outline(b.outline),
            content_type: ct,
            primary_keyword: b.primary_keyword,
            secondary_keywords: b.secondary_keywords,
            target_word_count: b.target_word_count.unwrap_or(1500),
            cluster_id: b.cluster_id,
            author_profile_id: b.author_profile_id,
            strategy_id: b.strategy_id,
        },
    };
    let done = cmd::create_idea(planner!(s), &p, &ctx, input).await?;
    Ok(resource(IdeaRef { id: done.id }, &done.outcome, true))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateIdeaBody {
    #[schema(schema_with = crate::http::constraints::title_or_null)]
    pub idea_title: Option<String>,
    #[schema(schema_with = crate::http::constraints::text_5000_or_null)]
    pub description: Option<String>,
    #[schema(max_items = 40)]
    pub outline: Option<Vec<Section>>,
    #[schema(schema_with = content_type_opt)]
    pub content_type: Option<String>,
    #[schema(schema_with = crate::http::constraints::name_or_null)]
    pub primary_keyword: Option<String>,
    #[schema(schema_with = crate::http::constraints::keywords_or_null)]
    pub secondary_keywords: Option<Vec<String>>,
    #[schema(minimum = 100, maximum = 10000)]
    pub target_word_count: Option<u32>,
    /// new, done or archived.
    #[schema(schema_with = idea_status_opt)]
    pub status: Option<String>,
}

/// Change an idea.
#[utoipa::path(patch, path = "/api/v1/planner/ideas/{id}/", tag = "planner", request_body = UpdateIdeaBody, params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, description = "Updated", body = Saved<IdeaRef>), (status = 404, description = "Unknown or not visible", body = crate::http::schema::ErrorEnvelope),
              (status = 422, description = "The idea's rules; INVALID_STATUS", body = crate::http::schema::ErrorEnvelope)))]
pub async fn update_idea(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    Command {
        principal: p,
        ctx,
        body: b,
        ..
    }: Command<UpdateIdeaBody>,
) -> ApiResult<Response> {
    let status = match &b.status {
        Some(x) => Some(IdeaStatus::parse(x).ok_or_else(|| {
            ApiError::new(
                axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                "INVALID_STATUS",
                "status must be new, done or archived",
            )
        })?),
        None => None,
    };
    let change = IdeaChange {
        title: b.idea_title,
        description: b.description,
        outline: b.outline.map(outline),
        content_type: b.content_type.as_deref().map(content_type).transpose()?,
        primary_keyword: b.primary_keyword,
        secondary_keywords: b.secondary_keywords,
        target_word_count: b.target_word_count,
        status,
    };
    let done = cmd::update_idea(planner!(s), &p, &ctx, id, change).await?;
    Ok(resource(IdeaRef { id }, &done.outcome, false))
}

/// Delete an idea (a task made from it stays).
#[utoipa::path(delete, path = "/api/v1/planner/ideas/{id}/", tag = "planner", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, description = "Deleted", body = Saved<Deleted>), (status = 404, description = "Unknown or not visible", body = crate::http::schema::ErrorEnvelope)))]
pub async fn delete_idea(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    Command {
        principal: p, ctx, ..
    }: Command<Empty>,
) -> ApiResult<Response> {
    let done = cmd::delete_idea(planner!(s), &p, &ctx, id).await?;
    Ok(resource(Deleted::id(id), &done.outcome, false))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueueBody {
    /// 1 to 100 ideas.
    #[schema(min_items = 1, max_items = 100)]
    pub idea_ids: Vec<Uuid>,
    /// Accept sharing a primary keyword with a live task (recorded on the claim).
    #[serde(default)]
    pub allow_shared_primary: bool,
}

/// An idea that became a task.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueuedIdea {
    pub idea_id: Uuid,
    pub task_id: Uuid,
}

/// An idea that did not, and why.
#[derive(Debug, Serialize, ToSchema)]
pub struct SkippedIdea {
    pub idea_id: Uuid,
    /// KEYWORD_CANNIBALIZATION, IDEA_ALREADY_QUEUED, IDEA_ARCHIVED.
    pub error_code: String,
    pub error: String,
}

/// What `bulk_queue_to_writer` did.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueueResult {
    pub queued: Vec<QueuedIdea>,
    pub skipped: Vec<SkippedIdea>,
    /// Position of the last task written: pass it as `min_position`.
    pub position: Option<i64>,
}

/// Queue ideas to the writer: one task per idea (with the idea's title,
/// outline, keywords and target), each in its own commit with its primary
/// keyword's claim; ideas already queued or whose keyword a live task
/// holds are listed in `skipped`.
#[utoipa::path(post, path = "/api/v1/planner/ideas/bulk_queue_to_writer/", tag = "planner", request_body = QueueBody, security(("bearer" = [])),
    responses((status = 200, description = "queued and skipped ideas", body = QueueResult), (status = 404, description = "An idea is unknown or not visible (nothing written)", body = crate::http::schema::ErrorEnvelope),
              (status = 422, description = "EMPTY_SELECTION, VALIDATION_ERROR (more than 100)", body = crate::http::schema::ErrorEnvelope)))]
pub async fn bulk_queue_to_writer(
    State(s): State<AppState>,
    Command {
        principal: p,
        ctx,
        body: b,
        ..
    }: Command<QueueBody>,
) -> ApiResult<ApiOk<QueueResult>> {
    let (queued, skipped) =
        cmd::queue_ideas(planner!(s), &p, &ctx, b.idea_ids, b.allow_shared_primary).await?;
    Ok(ApiOk(QueueResult {
        position: queued.iter().filter_map(|q| q.position).max(),
        queued: queued
            .into_iter()
            .map(|q| QueuedIdea {
                idea_id: q.idea_id,
                task_id: q.task_id,
            })
            .collect(),
        skipped: skipped
            .into_iter()
            .map(|n| SkippedIdea {
                idea_id: n.idea_id,
                error_code: n.code.to_string(),
                error: n.message,
            })
            .collect(),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GenerateIdeasBody {
    /// 1 to 50 clusters of one site.
    #[schema(min_items = 1, max_items = 50)]
    pub cluster_ids: Vec<Uuid>,
    /// 1 to 10 (default 3).
    #[schema(minimum = 1, maximum = 10)]
    pub ideas_per_cluster: Option<u32>,
    /// A writing strategy of the account: its `ideas` prompt override is
    /// used, and the ideas (and the tasks queued from them) carry it.
    pub strategy_id: Option<Uuid>,
    /// An author profile of the account: the ideas' language and tone, and
    /// the profile their tasks write with.
    pub author_profile_id: Option<Uuid>,
}

/// Generate ideas for clusters: 202 with the job at once. Each idea's
/// primary keyword is a keyword of its cluster that no live task of the
/// site has; the ideas' credits (1 per idea on the default plans) are
/// reserved up front and the ideas actually proposed are charged.
#[utoipa::path(post, path = "/api/v1/planner/clusters/auto_generate_ideas/", tag = "planner", request_body = GenerateIdeasBody, security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "A retry with the same key answers the first job")),
    responses((status = 202, description = "job_id, state PENDING", body = crate::http::accepted::JobAccepted), (status = 402, description = "INSUFFICIENT_CREDITS", body = crate::http::schema::ErrorEnvelope),
              (status = 404, description = "Unknown or invisible cluster, author profile or strategy", body = crate::http::schema::ErrorEnvelope),
              (status = 422, description = "EMPTY_SELECTION, VALIDATION_ERROR (more than 50, ideas_per_cluster out of range, clusters of several sites)", body = crate::http::schema::ErrorEnvelope)))]
pub async fn auto_generate_ideas(
    State(s): State<AppState>,
    Command {
        principal: p,
        ctx,
        body: b,
        ..
    }: Command<GenerateIdeasBody>,
) -> ApiResult<Response> {
    let input = cmd::GenerateIdeas {
        cluster_ids: b.cluster_ids,
        ideas_per_cluster: b.ideas_per_cluster,
        strategy_id: b.strategy_id,
        author_profile_id: b.author_profile_id,
    };
    let job = cmd::auto_generate_ideas(planner!(s), &p, &ctx, input).await?;
    let (j, _) = igny8_commands::jobs::load_job(&s.bus, job.job_id).await?;
    crate::http::accepted::accepted(
        job.job_id,
        job.clusters,
        j.reserved,
        job.position,
        job.replayed,
        "idea generation started",
    )
}
