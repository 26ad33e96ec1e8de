//! Schema types the API's documents share (the error envelope, the
//! `error_code` and job-state enums, string enums): leaves that the
//! contexts' annotations name, so that `openapi` (which assembles the
//! document from the contexts) is depended on by nothing but the router.

use serde::Serialize;
use utoipa::ToSchema;

/// Every error answers with this shape.
#[derive(Serialize, ToSchema)]
pub struct ErrorEnvelope {
    /// Always false.
    pub success: bool,
    /// Human-readable message (may change; switch on `error_code`).
    pub error: String,
    /// Stable UPPER_SNAKE code; each is explained in docs/api.md, "Status codes and error codes".
    #[schema(value_type = ErrorCode)]
    pub error_code: String,
    /// Extra facts for some codes (VERSION_CONFLICT: both versions; NOT_READY: the checks).
    #[schema(value_type = Option<Object>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
    pub request_id: String,
    /// RFC 3339.
    #[schema(format = DateTime)]
    pub timestamp: String,
}

/// A string parameter or field that takes one of `values`.
pub fn string_enum(values: &[&str]) -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(values.iter().copied()))
        .build()
}

/// PENDING, PROGRESS, SUCCESS, FAILURE or CANCELLED (a schema for documents).
pub struct JobState;

pub const JOB_STATES: &[&str] = &["PENDING", "PROGRESS", "SUCCESS", "FAILURE", "CANCELLED"];

impl utoipa::PartialSchema for JobState {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::http::schema::string_enum(JOB_STATES).into()
    }
}

impl ToSchema for JobState {
    fn name() -> std::borrow::Cow<'static, str> {
        "JobState".into()
    }
}

/// The `error_code` values (docs/api.md explains each).
pub struct ErrorCode;

impl utoipa::PartialSchema for ErrorCode {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(crate::http::errors::ERROR_CODES.iter().copied()))
            .description(Some(
                "Stable error code; the table in docs/api.md (Status codes and error codes) explains each.",
            ))
            .into()
    }
}

impl ToSchema for ErrorCode {
    fn name() -> std::borrow::Cow<'static, str> {
        "ErrorCode".into()
    }
}

/// The `ordering` values of a list: each sortable name, and each with `-`
/// in front (descending).
pub fn ordering_enum(names: &[&str]) -> utoipa::openapi::Object {
    let v: Vec<String> = names
        .iter()
        .flat_map(|n| [n.to_string(), format!("-{n}")])
        .collect();
    string_enum(&v.iter().map(String::as_str).collect::<Vec<_>>())
}

/// An id a read model keeps as text (the nil UUID if it is not one).
pub fn id(s: &str) -> uuid::Uuid {
    uuid::Uuid::parse_str(s).unwrap_or_default()
}

/// An optional id a read model keeps as text.
pub fn opt_id(s: &Option<String>) -> Option<uuid::Uuid> {
    s.as_deref().and_then(|s| uuid::Uuid::parse_str(s).ok())
}
