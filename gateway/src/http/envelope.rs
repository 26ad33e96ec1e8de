//! `{"success": true, "data": ..., "message": ..., "request_id": ..., "timestamp": ...}`
//! and `{"success": false, "error": ..., "error_code": "UPPER_SNAKE", ...}`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{SecondsFormat, Utc};
use igny8_commands::CommandError;
use igny8_domain::ErrorKind;
use serde::Serialize;
use serde_json::{Value, json};

tokio::task_local! {
    /// The current request's id, set by `middleware::request_context`.
    pub static REQUEST_ID: String;
}

pub fn request_id() -> String {
    REQUEST_ID.try_with(Clone::clone).unwrap_or_default()
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub fn success_body(data: Value, message: Option<&str>) -> Value {
    json!({
        "success": true,
        "data": data,
        "message": message,
        "request_id": request_id(),
        "timestamp": now(),
    })
}

pub fn error_body(error: &str, code: &str, details: Option<&Value>) -> Value {
    let mut v = json!({
        "success": false,
        "error": error,
        "error_code": code,
        "request_id": request_id(),
        "timestamp": now(),
    });
    if let Some(d) = details {
        v["details"] = d.clone();
    }
    v
}

/// 200 with the envelope.
pub struct Ok<T>(pub T);
/// 201 with the envelope.
pub struct Created<T>(pub T);

/// `status` with the envelope around `data` (e.g. 202 for a run started).
pub fn with_status<T: Serialize>(status: StatusCode, data: T) -> Response {
    render(status, data)
}

fn render<T: Serialize>(status: StatusCode, data: T) -> Response {
    match serde_json::to_value(data) {
        Result::Ok(v) => (status, axum::Json(success_body(v, None))).into_response(),
        Err(e) => ApiError::internal(e).into_response(),
    }
}

impl<T: Serialize> IntoResponse for Ok<T> {
    fn into_response(self) -> Response {
        render(StatusCode::OK, self.0)
    }
}

impl<T: Serialize> IntoResponse for Created<T> {
    fn into_response(self) -> Response {
        render(StatusCode::CREATED, self.0)
    }
}

/// A paginated list: `count`, `count_capped`, `next`, `previous`, `results`
/// inside `data`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    /// Rows matching the filters (a lower bound when `count_capped`).
    pub count: i64,
    /// True when `count` was counted only up to a cap (large results);
    /// `next` is exact either way.
    pub count_capped: bool,
    /// The next page's path and query, or null on the last page.
    pub next: Option<String>,
    /// The previous page's path and query, or null on the first page.
    pub previous: Option<String>,
    pub results: Vec<T>,
}

/// The request's path and query without `page` and `page_size`: the base of
/// a list's `next` and `previous` links, keeping every filter.
pub fn page_base(uri: &axum::http::Uri) -> String {
    let kept: Vec<&str> = uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|kv| !kv.is_empty() && !kv.starts_with("page=") && !kv.starts_with("page_size="))
        .collect();
    if kept.is_empty() {
        uri.path().to_string()
    } else {
        format!("{}?{}", uri.path(), kept.join("&"))
    }
}

impl<T> Page<T> {
    /// `base` is the path and the query without `page`.
    pub fn new(results: Vec<T>, count: i64, page: i64, page_size: i64, base: &str) -> Self {
        let sep = if base.contains('?') { '&' } else { '?' };
        let link = |p: i64| format!("{base}{sep}page={p}&page_size={page_size}");
        Page {
            count,
            count_capped: false,
            next: (page.saturating_mul(page_size) < count).then(|| link(page + 1)),
            previous: (page > 1).then(|| link(page - 1)),
            results,
        }
    }

    /// A page whose total was counted only up to a cap: `next` comes from
    /// whether a row beyond this page exists.
    pub fn capped(
        results: Vec<T>,
        count: i64,
        capped: bool,
        more: bool,
        page: i64,
        page_size: i64,
        base: &str,
    ) -> Self {
        let mut p = Self::new(results, count, page, page_size, base);
        let sep = if base.contains('?') { '&' } else { '?' };
        p.next = more.then(|| format!("{base}{sep}page={}&page_size={page_size}", page + 1));
        p.count_capped = capped;
        p
    }
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    pub details: Option<Value>,
    pub retry_after: Option<u64>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.into(),
            message: message.into(),
            details: None,
            retry_after: None,
        }
    }
    pub fn bad_request(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }
    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("{what} not found"),
        )
    }
    pub fn unavailable(code: &str, message: impl Into<String>, retry_after: u64) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
        }
    }
    /// Logged in full, answered without internals.
    pub fn internal(e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL_ERROR",
            "internal error; see the server log for this request_id",
        )
    }
    pub fn with_details(mut self, d: Value) -> Self {
        self.details = Some(d);
        self
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            e if igny8_commands::db::is_unavailable(&e) => {
                tracing::warn!(error = %e, "database unavailable");
                ApiError::unavailable(
                    "DATABASE_UNAVAILABLE",
                    "the database is unavailable; retry",
                    1,
                )
            }
            other => ApiError::internal(other),
        }
    }
}

impl From<CommandError> for ApiError {
    fn from(e: CommandError) -> Self {
        match e {
            CommandError::Domain {
                code,
                kind,
                message,
            } => {
                let status = match kind {
                    ErrorKind::Validation => StatusCode::UNPROCESSABLE_ENTITY,
                    ErrorKind::Conflict => StatusCode::CONFLICT,
                    ErrorKind::NotFound => StatusCode::NOT_FOUND,
                    ErrorKind::InsufficientCredits => StatusCode::PAYMENT_REQUIRED,
                    ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
                    ErrorKind::Forbidden => StatusCode::FORBIDDEN,
                    ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
                };
                ApiError::new(status, code, message)
            }
            CommandError::VersionConflict { expected, actual } => ApiError::new(
                StatusCode::CONFLICT,
                "VERSION_CONFLICT",
                format!("expected version {expected}, current version is {actual}"),
            )
            .with_details(json!({"expected_version": expected, "current_version": actual})),
            CommandError::Contention => ApiError {
                retry_after: Some(1),
                ..ApiError::new(
                    StatusCode::CONFLICT,
                    "CONCURRENCY_CONFLICT",
                    "too many concurrent changes to this resource; retry",
                )
            },
            CommandError::IdempotencyKeyReused => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "IDEMPOTENCY_KEY_REUSED",
                "this Idempotency-Key was already used with a different request",
            ),
            CommandError::Unavailable(m) => {
                tracing::warn!(error = %m, "database unavailable");
                ApiError::unavailable(
                    "DATABASE_UNAVAILABLE",
                    "the database is unavailable; retry",
                    1,
                )
            }
            CommandError::Internal(m) => ApiError::internal(m),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (
            self.status,
            axum::Json(error_body(&self.message, &self.code, self.details.as_ref())),
        )
            .into_response();
        if let Some(s) = self.retry_after {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_links_keep_every_filter() {
        let uri: axum::http::Uri = "/api/v1/jobs/?state=SUCCESS&page=2&page_size=1&min_position=5"
            .parse()
            .unwrap();
        assert_eq!(
            page_base(&uri),
            "/api/v1/jobs/?state=SUCCESS&min_position=5"
        );
        let p = Page::new(vec![1], 3, 2, 1, &page_base(&uri));
        assert_eq!(
            p.next.as_deref(),
            Some("/api/v1/jobs/?state=SUCCESS&min_position=5&page=3&page_size=1")
        );
        let bare: axum::http::Uri = "/api/v1/jobs/?page=1".parse().unwrap();
        assert_eq!(page_base(&bare), "/api/v1/jobs/");
    }
}
