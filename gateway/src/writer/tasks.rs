//! Tasks: list, one, create, change, delete, and `auto_generate_content`.

use super::writer;
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
use igny8_commands::writer as cmd;
use igny8_domain::planner::{ContentType, OutlineSection};
use igny8_domain::writer::{TaskChange, TaskStatus};
use igny8_projections::writer::{self as rm, TaskFilter, TaskRow};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

pub fn routes(r: Router<AppState>) -> Router<AppState> {
    let r = both_slashes(
        r,
        "/api/v1/writer/tasks/",
        get(list_tasks).post(create_task),
    );
    let r = both_slashes(
        r,
        "/api/v1/writer/tasks/auto_generate_content/",
        post(auto_generate_content),
    );
    both_slashes(
        r,
        "/api/v1/writer/tasks/{id}/",
        get(get_task).patch(update_task).delete(delete_task),
    )
}

fn task_status_schema() -> utoipa::openapi::Object {
    crate::http::schema::string_enum(&TaskStatus::ALL.map(TaskStatus::as_str))
}

fn content_type_opt() -> utoipa::openapi::Object {
    crate::http::constraints::or_null(content_type_schema())
}

fn task_ordering_schema() -> utoipa::openapi::Object {
    crate::http::schema::ordering_enum(rm::TASK_ORDERINGS)
}

/// A task as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskView {
    pub id: Uuid,
    pub title: String,
    pub brief: String,
    pub idea_id: Option<Uuid>,
    pub cluster_id: Option<Uuid>,
    pub primary_keyword: String,
    pub secondary_keywords: Vec<String>,
    pub target_word_count: i64,
    #[schema(schema_with = content_type_schema)]
    pub content_type: String,
    pub outline: Vec<Section>,
    pub author_profile_id: Option<Uuid>,
    pub strategy_id: Option<Uuid>,
    /// The task accepted sharing its primary keyword with another live task.
    pub allow_shared_primary: bool,
    #[schema(schema_with = task_status_schema)]
    pub status: String,
    /// The generation job that runs (or ran last).
    pub job_id: Option<Uuid>,
    /// The content it produced.
    pub content_id: Option<Uuid>,
    /// Why the last generation failed.
    pub error: Option<String>,
    pub site_id: Uuid,
    pub sector_id: Uuid,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl From<TaskRow> for TaskView {
    fn from(r: TaskRow) -> Self {
        TaskView {
            id: crate::http::schema::id(&r.task_id),
            title: r.title,
            brief: r.brief,
            idea_id: crate::http::schema::opt_id(&r.idea_id),
            cluster_id: crate::http::schema::opt_id(&r.cluster_id),
            primary_keyword: r.primary_keyword,
            secondary_keywords: parse_json(&r.secondary_keywords),
            target_word_count: r.target_word_count,
            content_type: r.content_type,
            outline: parse_json::<Vec<OutlineSection>>(&r.outline)
                .into_iter()
                .map(Into::into)
                .collect(),
            author_profile_id: crate::http::schema::opt_id(&r.author_profile_id),
            strategy_id: crate::http::schema::opt_id(&r.strategy_id),
            allow_shared_primary: r.allow_shared_primary,
            status: r.status,
            job_id: crate::http::schema::opt_id(&r.job_id),
            content_id: crate::http::schema::opt_id(&r.content_id),
            error: r.error,
            site_id: crate::http::schema::id(&r.site_id),
            sector_id: crate::http::schema::id(&r.sector_id),
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TaskParams {
    pub site_id: Option<Uuid>,
    pub sector_id: Option<Uuid>,
    pub cluster_id: Option<Uuid>,
    pub idea_id: Option<Uuid>,
    #[param(schema_with = task_status_schema)]
    pub status: Option<String>,
    #[param(schema_with = content_type_schema)]
    pub content_type: Option<String>,
    /// Part of the title or the primary keyword (case-insensitive).
    pub search: Option<String>,
    /// created_at, updated_at, title, status, target_word_count; `-` for descending (default `-created_at`).
    #[param(schema_with = task_ordering_schema)]
    pub ordering: Option<String>,
}

/// Tasks, filtered, ordered and paginated.
#[utoipa::path(get, path = "/api/v1/writer/tasks/", tag = "writer", params(PageParams, TaskParams), security(("bearer" = [])),
    responses((status = 200, description = "A page of tasks", body = Page<TaskView>), (status = 400, description = "INVALID_QUERY", body = crate::http::schema::ErrorEnvelope)))]
pub async fn list_tasks(
    State(s): State<AppState>,
    p: Principal,
    paging: Paging,
    ApiQuery(q): ApiQuery<TaskParams>,
) -> ApiResult<ApiOk<Page<TaskView>>> {
    let account = igny8_commands::planner::list_scope(&s.bus, &p, q.site_id, q.sector_id).await?;
    if q.status
        .as_deref()
        .is_some_and(|x| TaskStatus::parse(x).is_none())
    {
        return Err(ApiError::bad_request(
            "INVALID_QUERY",
            "status must be queued, in_progress, completed, failed or published",
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
    crate::http::check_ordering(q.ordering.as_deref(), rm::TASK_ORDERINGS)?;
    paging.read_your_writes(&s, rm::NAME).await?;
    let f = TaskFilter {
        site_in: p.site_filter(),
        site_id: q.site_id.map(|x| x.to_string()),
        sector_id: q.sector_id.map(|x| x.to_string()),
        cluster_id: q.cluster_id.map(|x| x.to_string()),
        idea_id: q.idea_id.map(|x| x.to_string()),
        status: q.status,
        content_type: q.content_type,
        search: q.search,
        ordering: q.ordering,
        offset: paging.offset,
        limit: paging.size,
    };
    let (rows, count) = rm::page_tasks(&s.db, &account.to_string(), &f).await?;
    Ok(paging.page(rows.into_iter().map(TaskView::from).collect(), count))
}

/// One task.
#[utoipa::path(get, path = "/api/v1/writer/tasks/{id}/", tag = "writer", params(("id" = Uuid, Path), crate::http::ReadParams), security(("bearer" = [])),
    responses((status = 200, description = "The task", body = TaskView), (status = 404, description = "Unknown or not visible", body = crate::http::schema::ErrorEnvelope)))]
pub async fn get_task(
    State(s): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(r): ApiQuery<crate::http::ReadParams>,
) -> ApiResult<ApiOk<TaskView>> {
    read_your_writes(&s, rm::NAME, r.min_position).await?;
    let row = rm::get_task(&s.db, &p.account()?.to_string(), &id.to_string())
        .await?
        .filter(|r| p.can_see_site(crate::http::schema::id(&r.site_id)))
        .ok_or_else(|| ApiError::not_found("task"))?;
    Ok(ApiOk(row.into()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTaskBody {
    pub sector_id: Uuid,
    /// 1 to 300 characters after trimming.
    #[schema(schema_with = crate::http::constraints::title)]
    pub title: String,
    /// At most 10,000 characters.
    #[serde(default)]
    #[schema(schema_with = crate::http::constraints::text_10000)]
    pub brief: String,
    /// An idea of the same sector (queued by this task).
    pub idea_id: Option<Uuid>,
    /// A cluster of the same sector.
    pub cluster_id: Option<Uuid>,
    /// 1 to 200 characters; at most one live task per site has it unless shared.
    #[schema(schema_with = crate::http::constraints::name)]
    pub primary_keyword: String,
    #[serde(default)]
    #[schema(schema_with = crate::http::constraints::keywords)]
    pub secondary_keywords: Vec<String>,
    /// 100 to 10,000 (default 1,500).
    #[schema(minimum = 100, maximum = 10000)]
    pub target_word_count: Option<u32>,
    /// post (default), page, guide, how_to, listicle, comparison, review.
    #[schema(schema_with = content_type_opt)]
    pub content_type: Option<String>,
    #[serde(default)]
    #[schema(max_items = 40)]
    pub outline: Vec<Section>,
    pub author_profile_id: Option<Uuid>,
    pub strategy_id: Option<Uuid>,
    /// Accept sharing the primary keyword with another live task (recorded).
    #[serde(default)]
    pub allow_shared_primary: bool,
}

/// `{"id"}` of a task written.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskRef {
    pub id: Uuid,
}

/// Create a task. Its primary keyword is claimed for the site in the same
/// commit: a second live task with it answers 409 KEYWORD_CANNIBALIZATION
/// naming the first, unless `allow_shared_primary` is true.
#[utoipa::path(post, path = "/api/v1/writer/tasks/", tag = "writer", request_body = CreateTaskBody, security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "A retry with the same key answers the first task")),
    responses((status = 201, description = "Created", body = Saved<TaskRef>), (status = 404, description = "Unknown or invisible sector, cluster or idea", body = crate::http::schema::ErrorEnvelope),
              (status = 409, description = "KEYWORD_CANNIBALIZATION, IDEA_ALREADY_QUEUED, IDEA_ARCHIVED", body = crate::http::schema::ErrorEnvelope),
              (status = 422, description = "INVALID_TITLE, INVALID_DESCRIPTION, INVALID_OUTLINE, INVALID_KEYWORD, INVALID_WORD_COUNT, INVALID_CONTENT_TYPE, VALIDATION_ERROR", body = crate::http::schema::ErrorEnvelope)))]
pub async fn create_task(
    State(s): State<AppState>,
    Command {
        principal: p,
        ctx,
        body: b,
        ..
    }: Command<CreateTaskBody>,
) -> ApiResult<Response> {
    let ct = match &b.content_type {
        Some(t) => content_type(t)?,
        None => ContentType::Post,
    };
    let input = cmd::NewTask {
        sector_id: b.sector_id,
        title: b.title,
        brief: b.brief,
        idea_id: b.idea_id,
        cluster_id: b.cluster_id,
        primary_keyword: b.primary_keyword,
        secondary_keywords: b.secondary_keywords,
        target_word_count: b.target_word_count.unwrap_or(1500),
        content_type: ct,
        outline: outline(b.outline),
        author_profile_id: b.author_profile_id,
        strategy_id: b.strategy_id,
        allow_shared_primary: b.allow_shared_primary,
    };
    let done = cmd::create_task(writer!(s), &p, &ctx, input).await?;
    Ok(resource(TaskRef { id: done.id }, &done.outcome, true))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTaskBody {
    #[schema(schema_with = crate::http::constraints::title_or_null)]
    pub title: Option<String>,
    #[schema(schema_with = crate::http::constraints::text_10000_or_null)]
    pub brief: Option<String>,
    /// A new primary keyword is claimed (409 KEYWORD_CANNIBALIZATION) and the old one released.
    #[schema(schema_with = crate::http::constraints::name_or_null)]
    pub primary_keyword: Option<String>,
    #[schema(schema_with = crate::http::constraints::keywords_or_null)]
    pub secondary_keywords: Option<Vec<String>>,
    #[schema(minimum = 100, maximum = 10000)]
    pub target_word_count: Option<u32>,
    #[schema(schema_with = content_type_opt)]
    pub content_type: Option<String>,
    #[schema(max_items = 40)]
    pub outline: Option<Vec<Section>>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "crate::http::nullable")]
    #[schema(value_type = Option<Uuid>)]
    pub author_profile_id: Option<Option<Uuid>>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "crate::http::nullable")]
    #[schema(value_type = Option<Uuid>)]
    pub strategy_id: Option<Option<Uuid>>,
    pub allow_shared_primary: Option<bool>,
}

/// Change a task (409 GENERATION_RUNNING while a job writes it).
#[utoipa::path(patch, path = "/api/v1/writer/tasks/{id}/", tag = "writer", request_body = UpdateTaskBody, params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, description = "Updated", body = Saved<TaskRef>), (status = 404, description = "Unknown or not visible", body = crate::http::schema::ErrorEnvelope),
              (status = 409, description = "GENERATION_RUNNING, KEYWORD_CANNIBALIZATION", body = crate::http::schema::ErrorEnvelope),
              (status = 422, description = "The task's rules; VALIDATION_ERROR (nothing to change)", body = crate::http::schema::ErrorEnvelope)))]
pub async fn update_task(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    Command {
        principal: p,
        ctx,
        body: b,
        ..
    }: Command<UpdateTaskBody>,
) -> ApiResult<Response> {
    let change = TaskChange {
        title: b.title,
        brief: b.brief,
        primary_keyword: b.primary_keyword,
        secondary_keywords: b.secondary_keywords,
        target_word_count: b.target_word_count,
        content_type: b.content_type.as_deref().map(content_type).transpose()?,
        outline: b.outline.map(outline),
        author_profile_id: b.author_profile_id,
        strategy_id: b.strategy_id,
        allow_shared_primary: b.allow_shared_primary,
    };
    let done = cmd::update_task(writer!(s), &p, &ctx, id, change).await?;
    Ok(resource(TaskRef { id }, &done.outcome, false))
}

/// Delete a task (409 while it is generated). Without content it releases
/// its primary keyword; its content, if any, stays readable and keeps it.
#[utoipa::path(delete, path = "/api/v1/writer/tasks/{id}/", tag = "writer", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, description = "Deleted", body = Saved<Deleted>), (status = 404, description = "Unknown or not visible", body = crate::http::schema::ErrorEnvelope),
              (status = 409, description = "GENERATION_RUNNING", body = crate::http::schema::ErrorEnvelope)))]
pub async fn delete_task(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    Command {
        principal: p, ctx, ..
    }: Command<Empty>,
) -> ApiResult<Response> {
    let done = cmd::delete_task(writer!(s), &p, &ctx, id).await?;
    Ok(resource(Deleted::id(id), &done.outcome, false))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GenerateContentBody {
    /// 1 to 100 tasks of one site.
    #[schema(min_items = 1, max_items = 100)]
    pub task_ids: Vec<Uuid>,
}

/// Write the tasks' articles: 202 with the job at once. Each task's
/// credits are reserved up front (its target plus 15%, 1 credit per 500
/// words on the default plans); each article is committed as soon as it is
/// written, charged on the words delivered; a task that fails releases its
/// credits; the job's end releases what is left.
#[utoipa::path(post, path = "/api/v1/writer/tasks/auto_generate_content/", tag = "writer", request_body = GenerateContentBody, security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "A retry with the same key answers the first job")),
    responses((status = 202, description = "job_id, state PENDING", body = crate::http::accepted::JobAccepted), (status = 402, description = "INSUFFICIENT_CREDITS", body = crate::http::schema::ErrorEnvelope),
              (status = 404, description = "Unknown or invisible task", body = crate::http::schema::ErrorEnvelope),
              (status = 409, description = "GENERATION_RUNNING: another job writes one of them", body = crate::http::schema::ErrorEnvelope),
              (status = 422, description = "EMPTY_SELECTION, TOO_MANY_TASKS, VALIDATION_ERROR (tasks of several sites)", body = crate::http::schema::ErrorEnvelope)))]
pub async fn auto_generate_content(
    State(s): State<AppState>,
    Command {
        principal: p,
        ctx,
        body: b,
        ..
    }: Command<GenerateContentBody>,
) -> ApiResult<Response> {
    let job = cmd::auto_generate_content(&s.bus, &p, &ctx, b.task_ids, false).await?;
    crate::http::accepted::accepted(
        job.job_id,
        job.tasks,
        job.reserved,
        job.position,
        job.replayed,
        "content generation started",
    )
}
