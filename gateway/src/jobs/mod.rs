//! Jobs over HTTP: progress in the seeds' shape, the list, cancel, and a
//! server-sent event stream of one job's progress.

use crate::app::{AppState, both_slashes};
use crate::auth::Principal;
use crate::http::{
    ApiError, ApiOk, ApiPath, ApiQuery, ApiResult, Page, PageParams, read_your_writes, resource,
};
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::{get, post};
use igny8_commands::jobs::{Ending, finish};
use igny8_domain::jobs::Job;
use igny8_projections::jobs::{self as rm, JobRow};
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::Duration;
use utoipa::IntoParams;
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

/// The caller's job (another account's is 404).
async fn own_job(s: &AppState, p: &Principal, id: Uuid) -> ApiResult<(Job, u64)> {
    let account = p.account()?;
    let (job, version) = s.bus.load::<Job>(&id.to_string()).await?;
    if !job.created || job.account_id != Some(account) {
        return Err(ApiError::not_found("job"));
    }
    if p.sites.is_some() {
        // Callers limited to granted sites see the jobs of those sites only.
        let first = s
            .feed
            .aggregate_events("job", &id.to_string(), 1, 1)
            .await?;
        let site = first
            .first()
            .and_then(|e| e.body()["input"]["site_id"].as_str())
            .and_then(|v| Uuid::parse_str(v).ok());
        if !site.is_some_and(|site| p.can_see_site(site)) {
            return Err(ApiError::not_found("job"));
        }
    }
    Ok((job, version))
}

async fn progress_json(s: &AppState, id: Uuid, job: &Job) -> ApiResult<Value> {
    let mut result = Value::Null;
    if job.state.finished() {
        let last = s
            .feed
            .aggregate_events("job", &id.to_string(), 1, 1000)
            .await?;
        if let Some(e) = last.last() {
            result = e.body().clone();
        }
    }
    Ok(json!({
        "id": id,
        "kind": job.kind,
        "state": job.state,
        "meta": {
            "phase": job.phase,
            "percentage": job.percentage,
            "message": job.message,
            "cost": job.cost_usd_micros as f64 / 1_000_000.0,
            "tokens": job.tokens,
            "attempt": job.attempt,
            "credits_reserved": crate::http::CreditAmount(job.reserved),
        },
        "result": result,
    }))
}

/// A job's progress in the seeds' shape: `state` (PENDING, PROGRESS,
/// SUCCESS, FAILURE, CANCELLED) and `meta` (phase, percentage, message, cost
/// in USD, tokens).
#[utoipa::path(get, path = "/api/v1/system/settings/task_progress/{id}/", tag = "jobs", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, description = "Progress", body = Object), (status = 404, description = "Unknown job", body = crate::openapi::ErrorEnvelope)))]
pub async fn task_progress(
    State(s): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<ApiOk<Value>> {
    let (job, _) = own_job(&s, &p, id).await?;
    Ok(ApiOk(progress_json(&s, id, &job).await?))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobParams {
    /// PENDING, PROGRESS, SUCCESS, FAILURE or CANCELLED.
    pub state: Option<String>,
    pub page: Option<i64>,
    pub page_size: Option<i64>,
    pub min_position: Option<i64>,
}

/// The account's jobs, newest first.
#[utoipa::path(get, path = "/api/v1/jobs/", tag = "jobs", params(JobParams), security(("bearer" = [])),
    responses((status = 200, description = "A page of jobs", body = Object)))]
pub async fn list(
    State(s): State<AppState>,
    p: Principal,
    uri: Uri,
    ApiQuery(q): ApiQuery<JobParams>,
) -> ApiResult<ApiOk<Page<JobRow>>> {
    let account = p.account()?;
    let (page, size, offset) = PageParams {
        min_position: None,
        page: q.page,
        page_size: q.page_size,
    }
    .window()?;
    if let Some(st) = &q.state
        && !["PENDING", "PROGRESS", "SUCCESS", "FAILURE", "CANCELLED"].contains(&st.as_str())
    {
        return Err(ApiError::bad_request(
            "INVALID_QUERY",
            "state must be PENDING, PROGRESS, SUCCESS, FAILURE or CANCELLED",
        ));
    }
    read_your_writes(&s, rm::NAME, q.min_position).await?;
    let sites: Option<Vec<String>> = p
        .sites
        .as_ref()
        .map(|v| v.iter().map(Uuid::to_string).collect());
    let (rows, count) = rm::list_jobs(
        &s.db,
        &account.to_string(),
        q.state.as_deref(),
        sites.as_deref(),
        offset,
        size,
    )
    .await?;
    Ok(ApiOk(Page::new(
        rows,
        count,
        page,
        size,
        &crate::http::envelope::page_base(&uri),
    )))
}

/// Cancel a job that has not finished; its credits are released in the same commit.
#[utoipa::path(post, path = "/api/v1/jobs/{id}/cancel/", tag = "jobs", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, description = "Cancelled", body = Object), (status = 404, description = "Unknown job", body = crate::openapi::ErrorEnvelope),
              (status = 409, description = "JOB_FINISHED", body = crate::openapi::ErrorEnvelope)))]
pub async fn cancel(
    State(s): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Response> {
    own_job(&s, &p, id).await?;
    p.require_write()?;
    let outs = finish(&s.bus, id, Ending::Cancelled, &p.context()).await?;
    let out = outs
        .into_iter()
        .find(|o| o.aggregate_type == "job")
        .ok_or_else(|| {
            ApiError::new(StatusCode::CONFLICT, "JOB_FINISHED", "the job has finished")
        })?;
    Ok(resource(
        json!({"id": id, "state": "CANCELLED"}),
        &out,
        false,
    ))
}

/// Server-sent events: one `progress` event (the task_progress object) each
/// time the job changes, until it finishes.
#[utoipa::path(get, path = "/api/v1/jobs/{id}/events/", tag = "jobs", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, description = "text/event-stream of progress events", content_type = "text/event-stream"),
              (status = 404, description = "Unknown job", body = crate::openapi::ErrorEnvelope)))]
pub async fn events(
    State(s): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Sse<impl futures::Stream<Item = Result<Event, std::convert::Infallible>>>> {
    own_job(&s, &p, id).await?;
    let stream = futures::stream::unfold((s, Some(0u64)), move |(s, last)| async move {
        let mut last = last?;
        loop {
            let Ok((job, version)) = s.bus.load::<Job>(&id.to_string()).await else {
                return None;
            };
            if version != last {
                last = version;
                let data = progress_json(&s, id, &job).await.unwrap_or(Value::Null);
                let event = Event::default().event("progress").data(data.to_string());
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
