//! The two extractors every context's handlers use, so none repeats them:
//!
//! - [`Command<T>`]: a command request — who sends it ([`Principal`]), its
//!   [`CommandContext`] (request and correlation ids, `Idempotency-Key`
//!   hashed over method, path and canonical body, `If-Match`) and its typed
//!   JSON body.
//! - [`Paging`]: a list request's `page`, `page_size` and `min_position`,
//!   the read-your-writes wait, and the `Page` answer with links that keep
//!   every other filter.

use super::command::request_hash;
use super::envelope::{ApiError, ApiResult, Ok as ApiOk, Page, page_base};
use super::extract::{ApiJson, CommandHeaders};
use crate::auth::Principal;
use crate::auth::RequestCaller;
use crate::state::AppState;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use igny8_commands::{CommandContext, IdempotencyKey};
use igny8_projections::{WaitOutcome, wait_for};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use utoipa::IntoParams;

/// A command request: the caller, its command context and the typed body.
pub struct Command<T> {
    pub principal: Principal,
    pub ctx: CommandContext,
    pub body: T,
    /// The body as sent, canonical (what the idempotency hash covers).
    pub canonical: Value,
}

impl<T: DeserializeOwned> FromRequest<AppState> for Command<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, s: &AppState) -> Result<Self, ApiError> {
        let (mut parts, body) = req.into_parts();
        let principal = Principal::from_request_parts(&mut parts, s).await?;
        let headers = CommandHeaders::from_request_parts(&mut parts, s).await?;
        let (method, uri) = (parts.method.clone(), parts.uri.clone());
        let json = ApiJson::<T>::from_request(Request::from_parts(parts, body), s).await?;
        let mut ctx = principal.context();
        ctx.expected_version = headers.expected_version;
        ctx.idempotency = headers.idempotency_key.map(|key| IdempotencyKey {
            scope: principal.account_id.to_string(),
            key,
            request_hash: request_hash(&method, &uri, &json.canonical),
        });
        Ok(Command {
            principal,
            ctx,
            body: json.value,
            canonical: json.canonical,
        })
    }
}

/// The body of a command that takes none (a DELETE): nothing, or `{}`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

/// The paging parameters of every list (documented with `params(PageParams)`).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Wait (bounded) until the read model includes the event at this
    /// position (a command's `position`): read your own writes.
    #[param(minimum = 0)]
    pub min_position: Option<i64>,
    /// 1-based page number.
    #[param(minimum = 1)]
    pub page: Option<i64>,
    /// 1 to 500, default 50.
    #[param(minimum = 1, maximum = 500)]
    pub page_size: Option<i64>,
}

pub const DEFAULT_PAGE_SIZE: i64 = 50;
pub const MAX_PAGE_SIZE: i64 = 500;

/// A list request's window and links.
pub struct Paging {
    pub page: i64,
    pub size: i64,
    pub offset: i64,
    pub min_position: Option<i64>,
    base: String,
    /// The caller named a page size.
    sized: bool,
}

impl<S: Send + Sync> FromRequestParts<S> for Paging {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, s: &S) -> Result<Self, ApiError> {
        let super::extract::ApiQuery(q) =
            super::extract::ApiQuery::<PageParams>::from_request_parts(parts, s).await?;
        let page = q.page.unwrap_or(1);
        let size = q.page_size.unwrap_or(DEFAULT_PAGE_SIZE);
        if page < 1 || !(1..=MAX_PAGE_SIZE).contains(&size) {
            return Err(ApiError::bad_request(
                "INVALID_QUERY",
                format!("page must be >= 1 and page_size 1 to {MAX_PAGE_SIZE}"),
            ));
        }
        if q.min_position.is_some_and(|p| p < 0) {
            return Err(ApiError::bad_request(
                "INVALID_QUERY",
                "min_position must be >= 0",
            ));
        }
        Ok(Paging {
            page,
            size,
            offset: (page - 1).saturating_mul(size),
            min_position: q.min_position,
            base: page_base(&parts.uri),
            sized: q.page_size.is_some(),
        })
    }
}

impl Paging {
    /// Pages of `size` rows unless the caller named a size.
    pub fn default_size(mut self, size: i64) -> Self {
        if !self.sized {
            self.size = size;
            self.offset = (self.page - 1).saturating_mul(size);
        }
        self
    }

    /// Wait until `projection` includes `min_position` (when given).
    pub async fn read_your_writes(&self, s: &AppState, projection: &str) -> ApiResult<()> {
        read_your_writes(s, projection, self.min_position).await
    }

    /// The answer: `count` rows in all, `rows` on this page.
    pub fn page<T>(&self, rows: Vec<T>, count: i64) -> ApiOk<Page<T>> {
        ApiOk(Page::new(rows, count, self.page, self.size, &self.base))
    }

    /// The answer for a total counted up to a cap; `more`: a row exists
    /// beyond this page.
    pub fn capped<T>(&self, rows: Vec<T>, count: i64, capped: bool, more: bool) -> ApiOk<Page<T>> {
        ApiOk(Page::capped(
            rows, count, capped, more, self.page, self.size, &self.base,
        ))
    }

    /// This page of an in-memory list.
    pub fn slice<T>(&self, all: Vec<T>) -> ApiOk<Page<T>> {
        let count = all.len() as i64;
        let rows = all
            .into_iter()
            .skip(self.offset as usize)
            .take(self.size as usize)
            .collect();
        self.page(rows, count)
    }
}

/// Wait until `projection` has applied the event at `min_position` (if
/// given). Position 0 is always reached; a position beyond the log's head
/// cannot be waited for and answers 400 at once.
pub async fn read_your_writes(
    s: &AppState,
    projection: &str,
    min_position: Option<i64>,
) -> ApiResult<()> {
    let Some(pos) = check_position(s, min_position).await? else {
        return Ok(());
    };
    match wait_for(&s.db, &s.feed, projection, pos, s.read_wait()).await? {
        WaitOutcome::Reached => Ok(()),
        WaitOutcome::TimedOut => Err(ApiError::unavailable(
            "PROJECTION_BEHIND",
            format!("the read model has not reached position {pos} yet; retry"),
            1,
        )),
    }
}

/// `min_position` as a position to wait for: `None` when there is nothing
/// to wait for (absent or 0); 400 when negative or beyond the log's head.
pub async fn check_position(s: &AppState, min_position: Option<i64>) -> ApiResult<Option<i64>> {
    let Some(pos) = min_position else {
        return Ok(None);
    };
    if pos < 0 {
        return Err(ApiError::bad_request(
            "INVALID_QUERY",
            "min_position must be >= 0",
        ));
    }
    if pos == 0 {
        return Ok(None);
    }
    let head = s.feed.head().await?;
    if pos > head {
        return Err(ApiError::bad_request(
            "POSITION_NOT_REACHED",
            format!(
                "min_position {pos} is beyond the last event written ({head}); pass the position a command answered"
            ),
        ));
    }
    Ok(Some(pos))
}
