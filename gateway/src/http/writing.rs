//! What the planner's ideas and the writer's tasks share on the wire: an
//! outline's sections, the content types, JSON text read back from a read
//! model.

use crate::http::{ApiError, ApiResult};
use igny8_domain::planner::{ContentType, OutlineSection};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One section of an outline.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Section {
    /// 1 to 200 characters after trimming.
    #[schema(schema_with = crate::http::constraints::name)]
    pub heading: String,
    /// 2 (H2) or 3 (H3).
    #[schema(minimum = 2, maximum = 3)]
    pub level: u8,
    /// At most 12, each 1 to 300 characters.
    #[serde(default)]
    #[schema(schema_with = crate::http::constraints::key_points)]
    pub key_points: Vec<String>,
}

impl From<Section> for OutlineSection {
    fn from(s: Section) -> Self {
        OutlineSection {
            heading: s.heading,
            level: s.level,
            key_points: s.key_points,
        }
    }
}

impl From<OutlineSection> for Section {
    fn from(s: OutlineSection) -> Self {
        Section {
            heading: s.heading,
            level: s.level,
            key_points: s.key_points,
        }
    }
}

pub fn outline(v: Vec<Section>) -> Vec<OutlineSection> {
    v.into_iter().map(Into::into).collect()
}

/// An outline or a keyword list kept as JSON text in a read model.
pub fn parse_json<T: serde::de::DeserializeOwned + Default>(raw: &str) -> T {
    serde_json::from_str(raw).unwrap_or_default()
}

pub fn content_type_schema() -> utoipa::openapi::Object {
    crate::http::schema::string_enum(&ContentType::ALL.map(ContentType::as_str))
}

/// 422 INVALID_CONTENT_TYPE for an unknown type.
pub fn content_type(raw: &str) -> ApiResult<ContentType> {
    ContentType::parse(raw).ok_or_else(|| {
        ApiError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_CONTENT_TYPE",
            format!(
                "content_type must be one of {}",
                ContentType::ALL.map(ContentType::as_str).join(", ")
            ),
        )
    })
}
