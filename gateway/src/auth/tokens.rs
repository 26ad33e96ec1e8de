//! JWT access tokens (1 hour) and refresh tokens (7 days), HS256 with a
//! key id in the header. A refresh token names its session (family) and
//! generation; the session aggregate decides whether it may be used.

use crate::http::ApiError;
use axum::http::StatusCode;
use igny8_commands::secrets::Keyring;
use jsonwebtoken::{
    Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, decode_header, encode,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub const ACCESS_TTL_SECS: u64 = 3600;
pub const REFRESH_TTL_SECS: u64 = 7 * 24 * 3600;
const ISSUER: &str = "igny8";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The user.
    pub sub: Uuid,
    /// The user's account.
    pub acc: Uuid,
    /// The session (refresh-token family).
    pub sid: Uuid,
    /// `access` or `refresh`.
    pub typ: String,
    /// Refresh generation (refresh tokens).
    #[serde(default)]
    #[serde(rename = "gen")]
    pub generation: u32,
    pub iat: u64,
    pub exp: u64,
    pub iss: String,
    pub jti: Uuid,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    pub refresh_expires_in: u64,
}

fn unauthorized(code: &str, msg: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, code, msg)
}

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

pub fn sign(keys: &Keyring, claims: &Claims) -> Result<String, ApiError> {
    let kid = keys.current_kid();
    let secret = keys
        .key(kid)
        .ok_or_else(|| ApiError::internal("current JWT key missing"))?;
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(kid.to_string());
    encode(&header, claims, &EncodingKey::from_secret(secret)).map_err(ApiError::internal)
}

pub fn issue(
    keys: &Keyring,
    user: Uuid,
    account: Uuid,
    session: Uuid,
    generation: u32,
) -> Result<TokenPair, ApiError> {
    let t = now();
    let claims = |typ: &str, ttl: u64| Claims {
        sub: user,
        acc: account,
        sid: session,
        typ: typ.to_string(),
        generation,
        iat: t,
        exp: t + ttl,
        iss: ISSUER.into(),
        jti: Uuid::new_v4(),
    };
    Ok(TokenPair {
        access_token: sign(keys, &claims("access", ACCESS_TTL_SECS))?,
        refresh_token: sign(keys, &claims("refresh", REFRESH_TTL_SECS))?,
        token_type: "Bearer",
        expires_in: ACCESS_TTL_SECS,
        refresh_expires_in: REFRESH_TTL_SECS,
    })
}

/// Verify signature (by the header's key id), expiry, issuer and type.
pub fn verify(keys: &Keyring, token: &str, typ: &str) -> Result<Claims, ApiError> {
    let header =
        decode_header(token).map_err(|_| unauthorized("INVALID_TOKEN", "malformed token"))?;
    if header.alg != Algorithm::HS256 {
        return Err(unauthorized("INVALID_TOKEN", "unsupported token algorithm"));
    }
    let kid = header
        .kid
        .ok_or_else(|| unauthorized("INVALID_TOKEN", "token has no key id"))?;
    let secret = keys
        .key(&kid)
        .ok_or_else(|| unauthorized("INVALID_TOKEN", "token signed with an unknown key"))?;
    let mut v = Validation::new(Algorithm::HS256);
    v.leeway = 5;
    v.set_issuer(&[ISSUER]);
    v.set_required_spec_claims(&["exp", "iss", "sub"]);
    let data = decode::<Claims>(token, &DecodingKey::from_secret(secret), &v).map_err(|e| {
        use jsonwebtoken::errors::ErrorKind;
        match e.kind() {
            ErrorKind::ExpiredSignature => unauthorized("TOKEN_EXPIRED", "the token has expired"),
            ErrorKind::InvalidSignature => unauthorized("INVALID_TOKEN", "bad token signature"),
            _ => unauthorized("INVALID_TOKEN", "invalid token"),
        }
    })?;
    if data.claims.typ != typ {
        return Err(unauthorized(
            "INVALID_TOKEN",
            &format!("expected an {typ} token"),
        ));
    }
    Ok(data.claims)
}
