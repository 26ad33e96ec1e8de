//! HTTP plumbing shared by every bounded context: the seeds' envelope,
//! extractors whose rejections are envelopes too, request ids, and the
//! mapping of command errors to statuses.

pub mod envelope;
pub mod extract;
pub mod middleware;

pub use envelope::{ApiError, ApiResult, Created, Ok as ApiOk, Page};
pub use extract::{ApiJson, ApiPath, ApiQuery, CommandHeaders};
