//! HTTP plumbing shared by every bounded context: the seeds' envelope,
//! extractors whose rejections are envelopes too, request ids, command
//! results, pagination and read-your-writes.

pub mod command;
pub mod constraints;
pub mod credits;
pub mod envelope;
pub mod errors;
pub mod extract;
pub mod middleware;
pub mod redact;
pub mod request;
pub mod schema;

pub mod accepted;
pub mod writing;
pub use command::{ReadParams, command_result, context, resource};
pub use credits::CreditAmount;
pub use envelope::{ApiError, ApiResult, Created, Ok as ApiOk, Page};
pub use extract::{ApiJson, ApiPath, ApiQuery, CommandHeaders, nullable};
pub use redact::redact;
pub use request::{Command, Empty, PageParams, Paging, read_your_writes};

use crate::state::AppState;
use axum::Router;

/// Register `path` both with and without its trailing slash (seed style).
pub fn both_slashes(
    router: Router<AppState>,
    path: &str,
    method: axum::routing::MethodRouter<AppState>,
) -> Router<AppState> {
    let bare = path.trim_end_matches('/');
    router
        .route(&format!("{bare}/"), method.clone())
        .route(bare, method)
}

/// 400 INVALID_QUERY unless `ordering` is one of `allowed` (with `-` for descending).
pub fn check_ordering(ordering: Option<&str>, allowed: &[&str]) -> Result<(), ApiError> {
    match ordering {
        Some(o) if !allowed.contains(&o.trim_start_matches('-')) => Err(ApiError::bad_request(
            "INVALID_QUERY",
            format!(
                "ordering must be one of {} (with - for descending)",
                allowed.join(", ")
            ),
        )),
        _ => Ok(()),
    }
}
