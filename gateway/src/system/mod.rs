//! Liveness, readiness and operational views.

use crate::http::both_slashes;
use crate::http::{ApiError, ApiOk, ApiResult};
use crate::state::AppState;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde_json::json;

pub fn routes(r: Router<AppState>) -> Router<AppState> {
    let r = r.route("/health", get(health)).route("/ready", get(ready));
    let r = both_slashes(r, "/api/v1/system/projections/", get(projections));
    let r = both_slashes(r, "/api/v1/system/projections/mine/", get(my_projections));
    both_slashes(r, "/api/v1/audit/events/", get(audit_events))
}

/// `{"status": "ok"}`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Health {
    pub status: &'static str,
}

/// Readiness and what was checked.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Readiness {
    /// `ready`.
    pub status: &'static str,
    pub checks: ReadyChecks,
}

/// Each dependency: whether it answers (`nats` is `null` without NATS).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ReadyChecks {
    pub database: bool,
    pub nats: Option<bool>,
    /// Projections stopped at an event they cannot apply (see `igny8 projections status`).
    pub projections_stuck: Vec<igny8_projections::Stuck>,
}

/// A page of an account's events and the cursor of the next.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct AuditPage {
    pub results: Vec<igny8_commands::StoredEvent>,
    /// Pass as `after` for the next page; `null` on the last.
    pub next_after: Option<String>,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/health", tag = "system", responses((status = 200, description = "Alive", body = Health)))]
pub async fn health() -> ApiOk<Health> {
    ApiOk(Health { status: "ok" })
}

/// Readiness of this gateway: the database answers and no projection is
/// stuck at an event (`checks.projections_stuck` names the projection and
/// the event). NATS, when configured, is reported in `checks.nats` but does
/// not make the gateway unready: commands work without it and the relay
/// catches up after. Load balancers route on this; `/health` is liveness.
#[utoipa::path(get, path = "/ready", tag = "system",
    responses((status = 200, description = "Ready", body = Readiness), (status = 503, description = "Not ready", body = crate::http::schema::ErrorEnvelope)))]
pub async fn ready(State(s): State<AppState>) -> ApiResult<ApiOk<Readiness>> {
    let db_ok = tokio::time::timeout(std::time::Duration::from_secs(2), s.db.ping())
        .await
        .map(|r| r.is_ok())
        .unwrap_or(false);
    let nats = s
        .nats
        .as_ref()
        .map(|c| c.connection_state() == async_nats::connection::State::Connected);
    // A projection stuck at an event it cannot apply: not ready.
    let stuck = if db_ok {
        igny8_projections::stuck(&s.db, &igny8_projections::all())
            .await
            .unwrap_or_default()
    } else {
        vec![]
    };
    let checks = ReadyChecks {
        database: db_ok,
        nats,
        projections_stuck: stuck,
    };
    if !checks.projections_stuck.is_empty() {
        return Err(
            ApiError::unavailable("NOT_READY", "a projection is stuck at an event", 1)
                .with_details(json!(checks)),
        );
    }
    // NATS is reported, not required: commands keep working while it is
    // down (the store is the database) and the relay catches up after.
    if db_ok {
        Ok(ApiOk(Readiness {
            status: "ready",
            checks,
        }))
    } else {
        Err(
            ApiError::unavailable("NOT_READY", "a dependency is unavailable", 1)
                .with_details(json!(checks)),
        )
    }
}

/// Each projection's position, lag, layout version and error, over every
/// account (operators only: it shows the whole system's activity).
#[utoipa::path(get, path = "/api/v1/system/projections/", tag = "system", security(("bearer" = [])),
    responses((status = 200, description = "Status per projection", body = Vec<igny8_projections::ProjectionStatus>),
              (status = 403, description = "Not an operator", body = crate::http::schema::ErrorEnvelope)))]
pub async fn projections(
    State(s): State<AppState>,
    caller: crate::auth::Principal,
) -> ApiResult<ApiOk<Vec<igny8_projections::ProjectionStatus>>> {
    caller.require_operator()?;
    Ok(ApiOk(
        igny8_projections::status(&s.db, &s.feed, &igny8_projections::all()).await?,
    ))
}

/// How far each projection is behind the caller's own account: its events
/// not applied yet (owners and admins; nothing of other accounts).
#[utoipa::path(get, path = "/api/v1/system/projections/mine/", tag = "system", security(("bearer" = [])),
    responses((status = 200, description = "Per projection: the account's events not applied yet", body = Vec<igny8_projections::AccountLag>),
              (status = 403, description = "Not owner/admin", body = crate::http::schema::ErrorEnvelope)))]
pub async fn my_projections(
    State(s): State<AppState>,
    caller: crate::auth::Principal,
) -> ApiResult<ApiOk<Vec<igny8_projections::AccountLag>>> {
    caller.require_manage()?;
    let account = caller.account()?;
    Ok(ApiOk(
        igny8_projections::account_lag(
            &s.db,
            &s.feed,
            &igny8_projections::all(),
            &account.to_string(),
        )
        .await?,
    ))
}

#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Cursor: `next_after` of the previous page (`tx_id:global_position`); absent: from the start.
    #[param(pattern = "^[0-9]{1,18}:[0-9]{1,18}$")]
    pub after: Option<String>,
    /// 1 to 1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// Wait (bounded) until the event at this position (a command's
    /// `position`) can be read: your own writes are in the page.
    #[param(minimum = 0)]
    pub min_position: Option<i64>,
}

/// Every event of the caller's account (users, sessions, sites, keys,
/// credits, …) in commit order, for auditors; page with `after`.
#[utoipa::path(get, path = "/api/v1/audit/events/", tag = "system", params(AuditParams), security(("bearer" = [])),
    responses((status = 200, description = "A page of events and the cursor of the next", body = AuditPage),
              (status = 403, description = "Not owner/admin", body = crate::http::schema::ErrorEnvelope)))]
pub async fn audit_events(
    State(s): State<AppState>,
    p: crate::auth::Principal,
    crate::http::ApiQuery(q): crate::http::ApiQuery<AuditParams>,
) -> ApiResult<ApiOk<AuditPage>> {
    p.require_billing()?;
    let account = p.account()?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(crate::http::ApiError::bad_request(
            "INVALID_QUERY",
            "limit must be 1 to 1000",
        ));
    }
    let after = match &q.after {
        None => igny8_commands::Position::START,
        Some(a) => a.parse().map_err(|_| {
            crate::http::ApiError::bad_request(
                "INVALID_QUERY",
                "after must be tx_id:global_position from next_after",
            )
        })?,
    };
    if let Some(min) = crate::http::request::check_position(&s, q.min_position).await? {
        // The feed shows a commit once every older transaction has ended.
        let deadline =
            tokio::time::Instant::now() + std::time::Duration::from_millis(s.settings.read_wait_ms);
        while !s.feed.visible(min).await? && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
    let events = s
        .feed
        .account_after(&account.to_string(), after, limit)
        .await?;
    let next = (events.len() as i64 == limit)
        .then(|| events.last().map(|e| e.position().to_string()))
        .flatten();
    let events: Vec<igny8_commands::StoredEvent> =
        events.into_iter().map(crate::http::redact).collect();
    Ok(ApiOk(AuditPage {
        results: events,
        next_after: next,
    }))
}
