//! Router-wide middleware: the request id in scope for envelopes and logs,
//! framework errors (404, 405, 413, ...) rewritten into the JSON error
//! envelope, and the fallback for unknown routes.

use super::envelope::{REQUEST_ID, error_body};
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Runs the request with its id in scope (for envelopes and logs), and turns
/// any error the framework produced without an envelope (405, 413, ...) into
/// one, so clients always get the same shape.
pub async fn request_context(req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    REQUEST_ID
        .scope(id, async move {
            let res = next.run(req).await;
            let status = res.status();
            let is_json = res
                .headers()
                .get(header::CONTENT_TYPE)
                .map(|v| v.as_bytes().starts_with(b"application/json"))
                .unwrap_or(false);
            if !status.is_client_error() && !status.is_server_error() || is_json {
                return res;
            }
            let (code, message) = match status {
                StatusCode::NOT_FOUND => ("NOT_FOUND", "no such route".to_string()),
                StatusCode::METHOD_NOT_ALLOWED => (
                    "METHOD_NOT_ALLOWED",
                    "method not allowed on this route".to_string(),
                ),
                StatusCode::PAYLOAD_TOO_LARGE => {
                    ("PAYLOAD_TOO_LARGE", "request body is too large".to_string())
                }
                StatusCode::REQUEST_TIMEOUT => ("REQUEST_TIMEOUT", "request timed out".to_string()),
                StatusCode::UNSUPPORTED_MEDIA_TYPE => (
                    "UNSUPPORTED_MEDIA_TYPE",
                    "unsupported media type".to_string(),
                ),
                s if s.is_server_error() => ("INTERNAL_ERROR", "internal error".to_string()),
                s => (
                    "HTTP_ERROR",
                    s.canonical_reason().unwrap_or("error").to_string(),
                ),
            };
            let allow = res.headers().get(header::ALLOW).cloned();
            let retry = res.headers().get(header::RETRY_AFTER).cloned();
            let mut out = (status, axum::Json(error_body(&message, code, None))).into_response();
            if let Some(a) = allow {
                out.headers_mut().insert(header::ALLOW, a);
            }
            if let Some(r) = retry {
                out.headers_mut().insert(header::RETRY_AFTER, r);
            }
            out
        })
        .await
}

/// Fallback for unknown routes.
pub async fn not_found() -> StatusCode {
    StatusCode::NOT_FOUND
}

/// `X-Content-Type-Options: nosniff` on every answer, and `Cache-Control:
/// no-store` on the API's (they carry tokens, keys and account data) unless
/// a route chose its own caching; the OpenAPI document and the docs may be
/// cached.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        axum::http::HeaderValue::from_static("nosniff"),
    );
    if path.starts_with("/api/v1/")
        && !path.starts_with("/api/v1/openapi.json")
        && !h.contains_key(header::CACHE_CONTROL)
    {
        h.insert(
            header::CACHE_CONTROL,
            axum::http::HeaderValue::from_static("no-store"),
        );
    }
    res
}
