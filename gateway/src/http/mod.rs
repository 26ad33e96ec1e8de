//! HTTP plumbing shared by every bounded context: the seeds' envelope,
//! extractors whose rejections are envelopes too, request ids, command
//! results, pagination and read-your-writes.

pub mod command;
pub mod credits;
pub mod envelope;
pub mod extract;
pub mod middleware;

pub use command::{PageParams, ReadParams, command_result, context, read_your_writes, resource};
pub use credits::CreditAmount;
pub use envelope::{ApiError, ApiResult, Created, Ok as ApiOk, Page};
pub use extract::{ApiJson, ApiPath, ApiQuery, CommandHeaders};
