//! Jobs over HTTP: progress in the seeds' shape, the list, cancel, and a
//! server-sent event stream of one job's progress.

use crate::auth::Principal;
use crate::http::both_slashes;
use crate::http::command::Saved;
use crate::http::{
    ApiError, ApiOk, ApiPath, ApiQuery, ApiResult, Command, CreditAmount, Empty, Page, PageParams,
    Paging, resource,
};
use crate::state::AppState;
use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::{get, post};
use igny8_commands::jobs;
use igny8_domain::jobs::Job;
use igny8_projections::jobs::{self as rm, JobRow};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::Duration;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

pub fn routes(r: Router<AppState>) -> Router<AppState> {
    let r = both_slashes(
        r,
        "/api/v1/system/settings/task_progress/{id}/",
        get(task_progress),
    );
    let r = both_slashes(r, "/api/v1/jobs/", get(list));
    let r = both_slashes(r, "/api/v1/jobs/{id}/cancel/", post(cancel));
    both_slashes(r, "/api/v1/jobs/{id}/events/", get(events))
}

/// A job's progress in the seeds' shape.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskProgress {
    pub id: Uuid,
    /// e.g. auto_cluster.
    pub kind: String,
    #[schema(value_type = crate::http::schema::JobState)]
    pub state: igny8_domain::jobs::JobState,
    pub meta: ProgressMeta,
    /// How the job ended, once it has finished; else `null`.
    pub result: Option<JobResult>,
    /// Position of the job's last event: pass it as `min_position` to read
    /// what the job wrote (keywords, clusters, usage) once it has finished.
    pub position: Option<i64>,
}

/// How a finished job ended (amounts in credits).
#[derive(Debug, Serialize, ToSchema)]
pub struct JobResult {
    /// What a successful job made (auto_cluster: keywords, clusters,
    /// strategy, model, tokens); `null` otherwise.
    #[schema(value_type = Option<Object>)]
    pub result: Option<Value>,
    /// Credits charged: the capture of a success, 0 otherwise.
    #[schema(value_type = f64)]
    pub credits_charged: CreditAmount,
    /// Why a failed job failed.
    pub error: Option<String>,
}

fn job_result(e: &igny8_commands::StoredEvent) -> Option<JobResult> {
    use igny8_domain::jobs::JobEvent;
    let ended = |result, charged, error| JobResult {
        result,
        credits_charged: CreditAmount(charged),
        error,
    };
    match e.decode::<JobEvent>().ok()? {
        JobEvent::JobSucceeded { result, charged } => Some(ended(Some(result), charged, None)),
        JobEvent::JobFailed { error, .. } => Some(ended(None, 0, Some(error))),
        JobEvent::JobCancelled {} => Some(ended(None, 0, None)),
        _ => None,
    }
}

/// Phase, percentage, message, provider cost and tokens, credits held.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProgressMeta {
    /// INIT, PREP, AI_CALL, PARSE, SAVE or DONE (`null` before the first).
    #[schema(value_type = Option<String>)]
    pub phase: Option<igny8_domain::jobs::Phase>,
    pub percentage: u8,
    pub message: String,
    /// Provider cost in USD.
    pub cost: f64,
    pub tokens: u64,
    pub attempt: u32,
    /// Credits held for the job while it runs.
    #[schema(value_type = f64)]
    pub credits_reserved: CreditAmount,
}

async fn progress(s: &AppState, id: Uuid, job: &Job) -> ApiResult<TaskProgress> {
    let events = s
        .feed
        .aggregate_events("job", &id.to_string(), 1, 1000)
        .await?;
    let last = events.last();
    let result = match last {
        Some(e) if job.state.finished() => job_result(e),
        _ => None,
    };
    Ok(TaskProgress {
        id,
        kind: job.kind.clone(),
        state: job.state,
        meta: ProgressMeta {
            phase: job.phase,
            percentage: job.percentage,
            message: job.message.clone(),
            cost: job.cost_usd_micros as f64 / 1_000_000.0,
            tokens: job.tokens,
            attempt: job.attempt,
            credits_reserved: CreditAmount(job.reserved),
        },
        result,
        position: last.map(|e| e.global_position),
    })
}

/// A job's progress in the seeds' shape: `state` (PENDING, PROGRESS,
/// SUCCESS, FAILURE, CANCELLED) and `meta` (phase, percentage, message, cost
/// in USD, tokens).
#[utoipa::path(get, path = "/api/v1/system/settings/task_progress/{id}/", tag = "jobs", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, description = "Progress", body = TaskProgress), (status = 404, description = "Unknown job", body = crate::http::schema::ErrorEnvelope)))]
pub async fn task_progress(
    State(s): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<ApiOk<TaskProgress>> {
    let (job, _) = jobs::own_job(&s.bus, &p, id).await?;
    Ok(ApiOk(progress(&s, id, &job).await?))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobParams {
    /// PENDING, PROGRESS, SUCCESS, FAILURE or CANCELLED.
    #[param(value_type = Option<crate::http::schema::JobState>)]
    pub state: Option<String>,
}

/// A job in the list: amounts in credits.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobView {
    pub id: String,
    pub account_id: String,
    pub kind: String,
    #[schema(value_type = crate::http::schema::JobState)]
    pub state: String,
    pub phase: String,
    pub percentage: i64,
    pub message: String,
    pub attempt: i64,
    pub tokens: i64,
    /// Provider cost in USD.
    pub cost_usd: f64,
    /// Credits held when the job started.
    #[schema(value_type = f64)]
    pub credits_reserved: CreditAmount,
    /// Credits charged when it succeeded (0 otherwise).
    #[schema(value_type = f64)]
    pub credits_charged: CreditAmount,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl From<JobRow> for JobView {
    fn from(r: JobRow) -> Self {
        JobView {
            id: r.job_id,
            account_id: r.account_id,
            kind: r.kind,
            state: r.state,
            phase: r.phase,
            percentage: r.percentage,
            message: r.message,
            attempt: r.attempt,
            tokens: r.tokens,
            cost_usd: r.cost_usd_micros as f64 / 1_000_000.0,
            credits_reserved: CreditAmount(r.reserved),
            credits_charged: CreditAmount(r.charged),
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// The account's jobs, newest first.
#[utoipa::path(get, path = "/api/v1/jobs/", tag = "jobs", params(PageParams, JobParams), security(("bearer" = [])),
    responses((status = 200, description = "A page of jobs", body = Page<JobView>)))]
pub async fn list(
    State(s): State<AppState>,
    p: Principal,
    paging: Paging,
    ApiQuery(q): ApiQuery<JobParams>,
) -> ApiResult<ApiOk<Page<JobView>>> {
    let account = p.account()?;
    if let Some(st) = &q.state
        && !crate::http::schema::JOB_STATES.contains(&st.as_str())
    {
        return Err(ApiError::bad_request(
            "INVALID_QUERY",
            "state must be PENDING, PROGRESS, SUCCESS, FAILURE or CANCELLED",
        ));
    }
    paging.read_your_writes(&s, rm::NAME).await?;
    let sites: Option<Vec<String>> = p
        .sites
        .as_ref()
        .map(|v| v.iter().map(Uuid::to_string).collect());
    let (rows, count) = rm::list_jobs(
        &s.db,
        &account.to_string(),
        q.state.as_deref(),
        sites.as_deref(),
        paging.offset,
        paging.size,
    )
    .await?;
    Ok(paging.page(rows.into_iter().map(JobView::from).collect(), count))
}

/// `{"id": ..., "state": "CANCELLED"}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Cancelled {
    pub id: Uuid,
    #[schema(value_type = crate::http::schema::JobState)]
    pub state: &'static str,
}

/// Cancel a job that has not finished; its credits are released in the same commit.
#[utoipa::path(post, path = "/api/v1/jobs/{id}/cancel/", tag = "jobs", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, description = "Cancelled", body = Saved<Cancelled>), (status = 404, description = "Unknown job", body = crate::http::schema::ErrorEnvelope),
              (status = 409, description = "JOB_FINISHED", body = crate::http::schema::ErrorEnvelope)))]
pub async fn cancel(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    Command {
        principal: p, ctx, ..
    }: Command<Empty>,
) -> ApiResult<Response> {
    let out = jobs::cancel(&s.bus, &p, &ctx, id).await?;
    Ok(resource(
        Cancelled {
            id,
            state: "CANCELLED",
        },
        &out,
        false,
    ))
}

/// Server-sent events: one `progress` event (the task_progress object) each
/// time the job changes, until it finishes.
#[utoipa::path(get, path = "/api/v1/jobs/{id}/events/", tag = "jobs", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, description = "text/event-stream of progress events", content_type = "text/event-stream"),
              (status = 404, description = "Unknown job", body = crate::http::schema::ErrorEnvelope)))]
pub async fn events(
    State(s): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Sse<impl futures::Stream<Item = Result<Event, std::convert::Infallible>>>> {
    jobs::own_job(&s.bus, &p, id).await?;
    let stream = futures::stream::unfold((s, Some(0u64)), move |(s, last)| async move {
        let mut last = last?;
        loop {
            let Ok((job, version)) = jobs::load_job(&s.bus, id).await else {
                return None;
            };
            if version != last {
                last = version;
                let data = match progress(&s, id, &job).await {
                    Ok(p) => serde_json::to_string(&p).unwrap_or_default(),
                    Err(_) => "null".into(),
                };
                let event = Event::default().event("progress").data(data);
                let next = if job.state.finished() {
                    None
                } else {
                    Some(last)
                };
                return Some((Ok(event), (s, next)));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
