//! What every command route and every read route shares: idempotency
//! hashing, the command result, resource answers carrying `version` and
//! `position`, pagination, and read-your-writes waits.

use super::envelope::{Created, Ok as ApiOk};
use super::extract::CommandHeaders;
use crate::auth::Principal;
use crate::auth::RequestCaller;
use axum::http::{HeaderValue, Method, Uri};
use axum::response::{IntoResponse, Response};
use igny8_commands::bus::OutcomeEvent;
use igny8_commands::{CommandContext, CommandOutcome, IdempotencyKey};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};

/// Hash of what the caller sent: method, path and canonical JSON body.
pub fn request_hash(method: &Method, uri: &Uri, body: &Value) -> String {
    let mut h = Sha256::new();
    h.update(method.as_str());
    h.update(b"\n");
    h.update(uri.path().trim_end_matches('/'));
    h.update(b"\n");
    h.update(body.to_string());
    hex::encode(h.finalize())
}

/// The principal's command context plus `Idempotency-Key` and `If-Match`
/// (keys are scoped to the caller's account).
pub fn context(
    p: &Principal,
    headers: &CommandHeaders,
    method: &Method,
    uri: &Uri,
    body: &Value,
) -> CommandContext {
    let mut ctx = p.context();
    ctx.expected_version = headers.expected_version;
    ctx.idempotency = headers.idempotency_key.as_ref().map(|k| IdempotencyKey {
        scope: p.account_id.to_string(),
        key: k.clone(),
        request_hash: request_hash(method, uri, body),
    });
    ctx
}

/// The result of a command.
#[derive(Debug, Serialize, ToSchema)]
pub struct CommandResult {
    pub aggregate_type: String,
    pub aggregate_id: String,
    /// Aggregate version after the command (send it as `If-Match` or `expected_version`).
    pub version: i64,
    /// Global position of the last event written; pass it as `min_position`
    /// to a query to read your own write.
    pub position: Option<i64>,
    pub events: Vec<OutcomeEvent>,
}

fn mark_replayed(mut r: Response, replayed: bool) -> Response {
    if replayed {
        r.headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    r
}

pub fn command_result(outcome: CommandOutcome, created: bool) -> Response {
    let replayed = outcome.replayed;
    let data = CommandResult {
        aggregate_type: outcome.aggregate_type,
        aggregate_id: outcome.aggregate_id,
        version: outcome.version,
        position: outcome.position,
        events: outcome.events,
    };
    let r = if created {
        Created(data).into_response()
    } else {
        ApiOk(data).into_response()
    };
    mark_replayed(r, replayed)
}

/// A resource after a command: its fields plus `version` and `position`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Saved<T> {
    #[serde(flatten)]
    pub resource: T,
    /// Aggregate version after the command (send it as `If-Match`).
    pub version: i64,
    /// Global position of the last event written; pass it as `min_position`
    /// to a query to read your own write.
    pub position: Option<i64>,
}

/// The answer to a command on a resource: the resource as it is now, with
/// the command's `version` and `position` (201 when `created`).
pub fn resource<T: Serialize>(resource: T, outcome: &CommandOutcome, created: bool) -> Response {
    let v = Saved {
        resource,
        version: outcome.version,
        position: outcome.position,
    };
    let r = if created {
        Created(v).into_response()
    } else {
        ApiOk(v).into_response()
    };
    mark_replayed(r, outcome.replayed)
}

/// `{"id": ..., "deleted": true}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Deleted {
    pub id: uuid::Uuid,
    pub deleted: bool,
}

impl Deleted {
    pub fn id(id: uuid::Uuid) -> Self {
        Deleted { id, deleted: true }
    }
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReadParams {
    /// Wait (bounded) until the read model includes the event at this position.
    #[param(minimum = 0)]
    pub min_position: Option<i64>,
}
