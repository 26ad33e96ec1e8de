//! Who is calling: the request's credential (a JWT or an API key, and an
//! operator's `X-Account-Id`) becomes the application layer's
//! [`Caller`], whose checks are the only authorisation code. Another
//! account's ids answer 404, exactly like ids that do not exist.

use crate::auth::tokens;
use crate::http::ApiError;
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use igny8_commands::{Caller, CommandContext};
use igny8_domain::tenancy::{ApiKey, ApiKeyCommand, Session, User};
use uuid::Uuid;

pub use igny8_commands::tenancy::members::{API_KEY_PREFIX, hash_secret};

/// The caller of a request (the application layer's [`Caller`], built here
/// from the request's credential).
pub type Principal = Caller;

fn unauthorized(code: &str, msg: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, code, msg)
}

pub fn forbidden(msg: &str) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "FORBIDDEN", msg)
}

/// What only HTTP knows of a caller: the request id its commands carry,
/// and the key its rate limit counts under.
pub trait RequestCaller {
    /// Metadata for the commands of this request.
    fn context(&self) -> CommandContext;
    fn rate_key(&self) -> String;
}

impl RequestCaller for Caller {
    fn context(&self) -> CommandContext {
        self.context_for(crate::http::envelope::request_id())
    }

    fn rate_key(&self) -> String {
        match (self.user_id, self.key_id) {
            (Some(u), _) => format!("user:{u}"),
            (None, Some(k)) => format!("key:{k}"),
            _ => "anonymous".into(),
        }
    }
}

/// The credential of a request and whether it is an API key:
/// `X-API-Key: …` (always a key) or `Authorization: Bearer …` (a key when
/// it starts with `igny8_`, else a JWT).
fn credential(parts: &Parts) -> Result<(String, bool), ApiError> {
    if let Some(v) = parts.headers.get("x-api-key") {
        let k = v
            .to_str()
            .map_err(|_| unauthorized("INVALID_API_KEY", "malformed API key"))?;
        return Ok((k.trim().to_string(), true));
    }
    let Some(v) = parts.headers.get(header::AUTHORIZATION) else {
        return Err(unauthorized(
            "AUTH_REQUIRED",
            "authentication required: Authorization: Bearer <token or API key>",
        ));
    };
    let v = v
        .to_str()
        .map_err(|_| unauthorized("INVALID_TOKEN", "malformed Authorization header"))?;
    let (scheme, token) = v
        .trim()
        .split_once(' ')
        .ok_or_else(|| unauthorized("INVALID_TOKEN", "expected: Bearer <token>"))?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(unauthorized("INVALID_TOKEN", "expected: Bearer <token>"));
    }
    Ok((token.to_string(), token.starts_with(API_KEY_PREFIX)))
}

/// Constant-time comparison of two hex digests.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// `igny8_<key id, 32 hex>_<secret, 64 hex>` → (key id, secret).
pub fn parse_api_key(raw: &str) -> Option<(Uuid, &str)> {
    let rest = raw.strip_prefix(API_KEY_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    if id.len() != 32 || secret.len() != 64 || !secret.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some((Uuid::parse_str(id).ok()?, secret))
}

async fn from_api_key(s: &AppState, raw: &str) -> Result<Principal, ApiError> {
    let invalid = || unauthorized("INVALID_API_KEY", "invalid or revoked API key");
    let (key_id, secret) = parse_api_key(raw).ok_or_else(invalid)?;
    let (key, _) = s.bus.load::<ApiKey>(&key_id.to_string()).await?;
    if !key.live() || !same(&key.secret_hash, &hash_secret(secret)) {
        return Err(invalid());
    }
    let (Some(account_id), Some(role)) = (key.account_id, key.role) else {
        return Err(invalid());
    };
    let now = chrono::Utc::now();
    let stale = key
        .last_used_at
        .is_none_or(|l| (now - l).num_seconds() >= igny8_domain::tenancy::USE_RECORD_EVERY_SECS);
    let p = Principal {
        account_id,
        role,
        user_id: None,
        key_id: Some(key_id),
        session_id: None,
        sites: (!key.site_ids.is_empty()).then(|| key.site_ids.clone()),
    };
    if stale {
        // Last-used time and the audit trail; at most once a minute per key.
        if let Err(e) = s
            .bus
            .execute::<ApiKey>(
                &key_id.to_string(),
                ApiKeyCommand::RecordUse { at: now },
                &p.context(),
            )
            .await
        {
            tracing::warn!(error = %e, %key_id, "could not record API key use");
        }
    }
    Ok(p)
}

async fn from_jwt(s: &AppState, token: &str) -> Result<Principal, ApiError> {
    let claims = tokens::verify(&s.keys.jwt, token, "access")?;
    let (session, _) = s.bus.load::<Session>(&claims.sid.to_string()).await?;
    if !session.live() || session.user_id != Some(claims.sub) {
        return Err(unauthorized(
            "TOKEN_REVOKED",
            "the session has ended; log in again",
        ));
    }
    let (user, _) = s.bus.load::<User>(&claims.sub.to_string()).await?;
    let (true, Some(role), Some(account_id)) = (user.active(), user.role, user.account_id) else {
        return Err(unauthorized("USER_INACTIVE", "the user no longer exists"));
    };
    Ok(Principal {
        account_id,
        role,
        user_id: Some(claims.sub),
        key_id: None,
        session_id: Some(claims.sid),
        sites: (!role.account_wide()).then(|| user.site_ids.clone()),
    })
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, ApiError> {
        let (raw, is_key) = credential(parts)?;
        let mut p = if is_key {
            from_api_key(s, &raw).await?
        } else {
            from_jwt(s, &raw).await?
        };
        s.limits.request(&p.rate_key())?;
        if p.is_operator() {
            p.account_id = match parts.headers.get("x-account-id") {
                None => Uuid::nil(),
                Some(v) => v
                    .to_str()
                    .ok()
                    .and_then(|v| Uuid::parse_str(v.trim()).ok())
                    .ok_or_else(|| {
                        ApiError::bad_request("INVALID_ACCOUNT_ID", "X-Account-Id must be a UUID")
                    })?,
            };
        }
        Ok(p)
    }
}

/// The client's address: the TCP peer, or the last `X-Forwarded-For`
/// entry (the one the trusted proxy appended) when
/// `IGNY8_TRUST_FORWARDED_FOR` is set.
pub struct ClientAddr(pub Option<std::net::IpAddr>);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, Self::Rejection> {
        if s.settings.trust_forwarded_for
            && let Some(ip) = parts
                .headers
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                // The proxy appends the address it saw: the last entry is
                // the one a client cannot choose.
                .and_then(|v| v.rsplit(',').next())
                .and_then(|v| v.trim().parse().ok())
        {
            return Ok(ClientAddr(Some(ip)));
        }
        Ok(ClientAddr(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}
