//! The answer of a command that started a job: 202 with the job's id and
//! where to follow it (shared by every context that starts jobs).

use crate::http::ApiResult;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// A job a command started: 202 with its id and where to follow it.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobAccepted {
    pub job_id: Uuid,
    /// The same id (the seeds' name).
    pub task_id: Uuid,
    #[schema(value_type = crate::http::schema::JobState)]
    pub state: &'static str,
    /// Items the job works on (clusters, tasks).
    pub items: usize,
    /// Credits held for the job until it ends.
    #[schema(value_type = f64)]
    pub credits_reserved: crate::http::CreditAmount,
    /// Position of the job's first commit.
    pub position: Option<i64>,
    pub progress_url: String,
    pub events_url: String,
}

/// The 202 answer of a command that started `job_id`.
pub fn accepted(
    job_id: Uuid,
    items: usize,
    reserved: i64,
    position: Option<i64>,
    replayed: bool,
    message: &str,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    let data = JobAccepted {
        job_id,
        task_id: job_id,
        state: "PENDING",
        items,
        credits_reserved: crate::http::CreditAmount(reserved),
        position,
        progress_url: format!("/api/v1/system/settings/task_progress/{job_id}/"),
        events_url: format!("/api/v1/jobs/{job_id}/events/"),
    };
    let mut r = (
        axum::http::StatusCode::ACCEPTED,
        axum::Json(crate::http::envelope::success_body(
            serde_json::to_value(data).map_err(crate::http::ApiError::internal)?,
            Some(message),
        )),
    )
        .into_response();
    if replayed {
        r.headers_mut().insert(
            "idempotent-replayed",
            axum::http::HeaderValue::from_static("true"),
        );
    }
    Ok(r)
}
