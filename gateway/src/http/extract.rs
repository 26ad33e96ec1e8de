//! Extractors whose failures answer with the envelope and a precise status:
//! 415 wrong media type, 413 too large, 400 malformed JSON, 422 wrong
//! types / missing or unknown fields, 400 bad path or query parameters.
//! A request without any body (and no Content-Type) reads as `{}`: an
//! optional body may be left out.

use super::envelope::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// A JSON body, plus its canonical form (for idempotency hashing).
pub struct ApiJson<T> {
    pub value: T,
    pub canonical: Value,
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|m| {
                let m = m.trim().to_ascii_lowercase();
                m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
            })
            .unwrap_or(false);
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "PAYLOAD_TOO_LARGE",
                    "request body is too large",
                )
            } else {
                ApiError::bad_request(
                    "INVALID_BODY",
                    format!("could not read the request body: {e}"),
                )
            }
        })?;
        if !is_json && !bytes.is_empty() {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UNSUPPORTED_MEDIA_TYPE",
                "expected a JSON body with Content-Type: application/json",
            ));
        }
        // No body at all (an optional body left out, a DELETE): an empty object.
        let bytes = if bytes.is_empty() && !is_json {
            Bytes::from_static(b"{}")
        } else {
            bytes
        };
        let mut canonical: Value = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::bad_request("MALFORMED_JSON", format!("malformed JSON: {e}")))?;
        // JSON has one number type: `100.0` is the integer 100 (as JSON Schema says).
        whole_numbers(&mut canonical);
        if has_nul(&canonical) {
            // PostgreSQL text and jsonb cannot hold U+0000: refuse it here, for every route.
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "VALIDATION_ERROR",
                "text must not contain NUL (U+0000) characters",
            ));
        }
        let value = T::deserialize(&canonical).map_err(|e| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "VALIDATION_ERROR",
                format!("invalid request body: {e}"),
            )
        })?;
        Ok(ApiJson { value, canonical })
    }
}

/// Numbers written with a fraction of zero (`100.0`, `1e3`) become integers,
/// so integer fields take them; other numbers stay as they are.
fn whole_numbers(v: &mut Value) {
    match v {
        Value::Number(n) if !n.is_i64() && !n.is_u64() => {
            if let Some(f) = n.as_f64()
                && f.fract() == 0.0
                && f.abs() <= 9_007_199_254_740_992.0
            {
                *v = Value::from(f as i64);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(whole_numbers),
        Value::Object(m) => m.values_mut().for_each(whole_numbers),
        _ => {}
    }
}

/// `Option<Option<T>>` from JSON: absent → `None`, `null` → `Some(None)`.
pub fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    use serde::Deserialize;
    Ok(Some(Option::<T>::deserialize(d)?))
}

/// Whether any key or string in `v` contains U+0000.
fn has_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(a) => a.iter().any(has_nul),
        Value::Object(m) => m.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|e| ApiError::bad_request("INVALID_PATH", e.body_text()))
    }
}

pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let raw = parts.uri.query().unwrap_or_default();
        if raw.to_ascii_lowercase().contains("%00") {
            return Err(ApiError::bad_request(
                "INVALID_QUERY",
                "query parameters must not contain NUL (%00)",
            ));
        }
        Query::<T>::try_from_uri(&parts.uri)
            .map(|q| ApiQuery(q.0))
            .map_err(|e| ApiError::bad_request("INVALID_QUERY", e.body_text()))
    }
}

/// Command headers: `Idempotency-Key` and `If-Match: <version>`.
#[derive(Debug, Default, Clone)]
pub struct CommandHeaders {
    pub idempotency_key: Option<String>,
    pub expected_version: Option<u64>,
}

pub const MAX_IDEMPOTENCY_KEY: usize = 255;

impl<S: Send + Sync> FromRequestParts<S> for CommandHeaders {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let mut h = CommandHeaders::default();
        if let Some(v) = parts.headers.get("idempotency-key") {
            let k = v.to_str().unwrap_or("").trim();
            if k.is_empty()
                || k.len() > MAX_IDEMPOTENCY_KEY
                || !k.chars().all(|c| c.is_ascii_graphic())
            {
                return Err(ApiError::bad_request(
                    "INVALID_IDEMPOTENCY_KEY",
                    format!(
                        "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters"
                    ),
                ));
            }
            h.idempotency_key = Some(k.to_string());
        }
        if let Some(v) = parts.headers.get(header::IF_MATCH) {
            let raw = v
                .to_str()
                .unwrap_or("")
                .trim()
                .trim_start_matches("W/")
                .trim_matches('"');
            h.expected_version = Some(raw.parse().map_err(|_| {
                ApiError::bad_request(
                    "INVALID_IF_MATCH",
                    "If-Match must be the aggregate version, e.g. If-Match: \"3\"",
                )
            })?);
        }
        Ok(h)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn whole_floats_are_integers() {
        let mut v = serde_json::json!({"a": 100.0, "b": [1.5, 2e3, -0.0], "c": 7});
        super::whole_numbers(&mut v);
        assert_eq!(
            v,
            serde_json::json!({"a": 100, "b": [1.5, 2000, 0], "c": 7})
        );
    }

    /// An exact integer written with `.0` near 2^51 (found by schemathesis):
    /// it needs correctly rounded float parsing (serde_json's
    /// `float_roundtrip`), or it arrives with a fraction and is refused.
    #[test]
    fn large_whole_floats_parse_exactly() {
        let mut v: serde_json::Value =
            serde_json::from_str(r#"{"v": 2073760921947499.0}"#).unwrap();
        super::whole_numbers(&mut v);
        assert_eq!(v["v"].as_u64(), Some(2_073_760_921_947_499));
    }
}
