//! Session use cases: a login or sign-up starts a session (the audit event
//! a token family hangs on), a refresh rotates it (a reused refresh token
//! revokes the whole family), a logout ends it. Token signing is the
//! gateway's; these decide and record.

use crate::bus::{CommandBus, CommandContext, CommandError};
use igny8_domain::ErrorKind;
use igny8_domain::tenancy::{Session, SessionCommand, Tenant, User};
use uuid::Uuid;

/// A user and, when it belongs to one, its account's tenant state.
pub async fn user_and_account(
    bus: &CommandBus,
    user_id: Uuid,
) -> Result<(User, Option<(Uuid, Tenant)>), CommandError> {
    let (user, _) = bus.load::<User>(&user_id.to_string()).await?;
    let account = match user.account_id.filter(|a| !a.is_nil()) {
        Some(a) => Some((a, bus.load::<Tenant>(&a.to_string()).await?.0)),
        None => None,
    };
    Ok((user, account))
}

/// An account's tenant state.
pub async fn tenant(bus: &CommandBus, account_id: Uuid) -> Result<Tenant, CommandError> {
    Ok(bus.load::<Tenant>(&account_id.to_string()).await?.0)
}

/// The context of a command the user makes before any token names them.
fn as_user(ctx: &CommandContext, user_id: Uuid, account_id: Uuid) -> CommandContext {
    CommandContext {
        account_id: (!account_id.is_nil()).then(|| account_id.to_string()),
        actor: format!("user:{user_id}"),
        ..ctx.clone()
    }
}

/// Start a session for `user_id` (`method`: signup, password): its id and
/// the position of its first event.
pub async fn start_session(
    bus: &CommandBus,
    user_id: Uuid,
    account_id: Uuid,
    method: &str,
    ctx: &CommandContext,
) -> Result<(Uuid, Option<i64>), CommandError> {
    let session_id = Uuid::now_v7();
    let ctx = as_user(ctx, user_id, account_id);
    let out = bus
        .execute::<Session>(
            &session_id.to_string(),
            SessionCommand::Start {
                user_id,
                account_id,
                method: method.into(),
            },
            &ctx,
        )
        .await?;
    Ok((session_id, out.position))
}

/// Rotate a session at `generation` (the refresh token's). A deleted user
/// refreshes nothing (401 USER_INACTIVE); a generation already used
/// revokes the session (401 TOKEN_REUSED).
pub async fn refresh_session(
    bus: &CommandBus,
    user_id: Uuid,
    account_id: Uuid,
    session_id: Uuid,
    generation: u32,
    ctx: &CommandContext,
) -> Result<(), CommandError> {
    let (user, _) = bus.load::<User>(&user_id.to_string()).await?;
    if !user.active() {
        return Err(CommandError::refused(
            ErrorKind::Unauthenticated,
            "USER_INACTIVE",
            "the user no longer exists",
        ));
    }
    let ctx = as_user(ctx, user_id, account_id);
    let out = bus
        .execute::<Session>(
            &session_id.to_string(),
            SessionCommand::Refresh { generation },
            &ctx,
        )
        .await?;
    if out.events.iter().any(|e| e.event_type == "SessionRevoked") {
        tracing::warn!(session = %session_id, user = %user_id, "refresh token reused: session revoked");
        return Err(CommandError::refused(
            ErrorKind::Unauthenticated,
            "TOKEN_REUSED",
            "this refresh token was already used; the session has been revoked, log in again",
        ));
    }
    Ok(())
}

/// End a session (logout): its tokens stop working.
pub async fn end_session(
    bus: &CommandBus,
    session_id: Option<Uuid>,
    ctx: &CommandContext,
) -> Result<Option<i64>, CommandError> {
    let Some(sid) = session_id else {
        return Err(CommandError::refused(
            ErrorKind::BadRequest,
            "NO_SESSION",
            "API keys have no session; revoke the key instead",
        ));
    };
    let out = bus
        .execute::<Session>(
            &sid.to_string(),
            SessionCommand::Revoke {
                reason: "logout".into(),
            },
            ctx,
        )
        .await?;
    Ok(out.position)
}
