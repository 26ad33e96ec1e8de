//! The router: every context's routes, the docs, and the layers every
//! request passes (request id, limits, CORS, panics answered in the envelope).

use crate::http::middleware;
use crate::state::AppState;
use crate::{billing, commands_api, jobs, openapi, planner, system, tenancy, writer};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request};
use std::time::Duration;
use tower_http::cors::CorsLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

pub fn router(state: AppState) -> Router {
    let x_request_id = HeaderName::from_static("x-request-id");
    let api = billing::routes(Router::new());
    let api = tenancy::routes(api);
    let api = commands_api::routes(api);
    let api = planner::routes(api);
    let api = jobs::routes(api);
    let api = writer::routes(api);
    let api = crate::publishing::routes(api);
    let api = crate::automation::routes(api);
    let api = system::routes(api);
    Router::new()
        .merge(api)
        .merge(openapi::docs())
        .fallback(middleware::not_found)
        .layer(DefaultBodyLimit::max(state.settings.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(state.clone(), per_address_limit))
        // A bug must not drop the connection: a panic answers 500 in the envelope.
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            |_: Box<dyn std::any::Any + Send>| {
                use axum::response::IntoResponse;
                crate::http::ApiError::internal("a request handler panicked").into_response()
            },
        ))
        .layer(axum::middleware::from_fn(middleware::request_context))
        .layer(axum::middleware::from_fn(middleware::security_headers))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("");
                tracing::info_span!("http", method = %req.method(), path = %req.uri().path(), request_id = %id)
            }),
        )
        .layer(PropagateRequestIdLayer::new(x_request_id.clone()))
        .layer(SetRequestIdLayer::new(x_request_id, MakeRequestUuid))
        .layer(cors(&state.settings.cors_origins))
        .with_state(state)
}

/// Requests per client address (when the server knows the peer address).
async fn per_address_limit(
    axum::extract::State(s): axum::extract::State<AppState>,
    addr: crate::auth::principal::ClientAddr,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let probe = matches!(req.uri().path(), "/health" | "/ready");
    if !probe
        && let Some(ip) = addr.0
        && let Err(e) = s.limits.request(&format!("ip:{ip}"))
    {
        return e.into_response();
    }
    next.run(req).await
}

/// Any origin with `*` (bearer tokens, no cookies); otherwise the listed ones.
/// `*` is the embedded default; on PostgreSQL (a deployment) without an
/// explicit `IGNY8_CORS_ORIGINS` the server says so at start.
pub fn warn_if_open_cors(s: &crate::config::Settings) {
    if !s.is_embedded()
        && s.cors_origins.iter().any(|o| o.trim() == "*")
        && std::env::var_os("IGNY8_CORS_ORIGINS").is_none()
    {
        tracing::warn!(
            "CORS allows any origin (the embedded default) while running on PostgreSQL: set IGNY8_CORS_ORIGINS to your SPA's origins"
        );
    }
}

fn cors(origins: &[String]) -> CorsLayer {
    if origins.iter().any(|o| o.trim() == "*") {
        return CorsLayer::permissive();
    }
    let list: Vec<axum::http::HeaderValue> = origins
        .iter()
        .filter_map(|o| o.trim().parse().ok())
        .collect();
    CorsLayer::new()
        .allow_origin(tower_http::cors::AllowOrigin::list(list))
        .allow_methods(tower_http::cors::Any)
        .allow_headers(tower_http::cors::Any)
        .expose_headers(tower_http::cors::Any)
        .max_age(Duration::from_secs(3600))
}
