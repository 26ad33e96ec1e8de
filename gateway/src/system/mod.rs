//! Liveness, readiness and operational views.

use crate::app::{AppState, both_slashes};
use crate::http::{ApiError, ApiOk, ApiResult};
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde_json::{Value, json};

pub fn routes(r: Router<AppState>) -> Router<AppState> {
    let r = r.route("/health", get(health)).route("/ready", get(ready));
    both_slashes(r, "/api/v1/system/projections/", get(projections))
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/health", tag = "system", responses((status = 200, description = "Alive", body = Object)))]
pub async fn health() -> ApiOk<Value> {
    ApiOk(json!({"status": "ok"}))
}

/// Readiness: the database answers and, when configured, NATS is connected.
#[utoipa::path(get, path = "/ready", tag = "system",
    responses((status = 200, description = "Ready", body = Object), (status = 503, description = "Not ready", body = crate::openapi::ErrorEnvelope)))]
pub async fn ready(State(s): State<AppState>) -> ApiResult<ApiOk<Value>> {
    let db_ok = tokio::time::timeout(std::time::Duration::from_secs(2), s.db.ping())
        .await
        .map(|r| r.is_ok())
        .unwrap_or(false);
    let nats = s
        .nats
        .as_ref()
        .map(|c| c.connection_state() == async_nats::connection::State::Connected);
    let checks = json!({"database": db_ok, "nats": nats});
    if db_ok && nats.unwrap_or(true) {
        Ok(ApiOk(json!({"status": "ready", "checks": checks})))
    } else {
        Err(
            ApiError::unavailable("NOT_READY", "a dependency is unavailable", 1)
                .with_details(checks),
        )
    }
}

/// Each projection's position and lag.
#[utoipa::path(get, path = "/api/v1/system/projections/", tag = "system", security(("bearer" = [])), responses((status = 200, description = "Status per projection", body = Object)))]
pub async fn projections(
    State(s): State<AppState>,
    _caller: crate::auth::Principal,
) -> ApiResult<ApiOk<Vec<igny8_projections::ProjectionStatus>>> {
    Ok(ApiOk(
        igny8_projections::status(&s.db, &s.feed, &igny8_projections::all()).await?,
    ))
}
