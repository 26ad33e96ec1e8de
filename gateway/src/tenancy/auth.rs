//! Sign-up, login, refresh (rotating, with reuse detection), logout, me.

use crate::auth::RequestCaller;
use crate::auth::principal::ClientAddr;
use crate::auth::{Principal, tokens};
use crate::http::{ApiError, ApiJson, ApiOk, ApiResult, Created};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use igny8_commands::CommandContext;
use igny8_commands::tenancy::{self as cmd, sessions};
use igny8_domain::tenancy::{Tenant, User};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignupBody {
    #[schema(schema_with = crate::http::constraints::email)]
    pub email: String,
    /// At least 8 characters.
    #[schema(schema_with = crate::http::constraints::password)]
    pub password: String,
    #[schema(schema_with = crate::http::constraints::name)]
    pub account_name: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    /// The email signed up with (any letter case).
    #[schema(max_length = 254, pattern = "^[^\\u0000]*$")]
    pub email: String,
    #[schema(max_length = 1024, pattern = "^[^\\u0000]*$")]
    pub password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordBody {
    #[schema(max_length = 1024, pattern = "^[^\\u0000]*$")]
    pub current_password: String,
    /// At least 8 characters.
    #[schema(schema_with = crate::http::constraints::password)]
    pub new_password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshBody {
    #[schema(max_length = 4096, pattern = "^[^\\u0000]*$")]
    pub refresh_token: String,
}

fn anonymous() -> CommandContext {
    let request_id = crate::http::envelope::request_id();
    CommandContext {
        actor: "anonymous".into(),
        correlation_id: request_id.clone(),
        request_id,
        ..CommandContext::default()
    }
}

/// A user as answers show it.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    pub id: Uuid,
    /// `null` for operators (they belong to no account).
    pub account_id: Option<Uuid>,
    pub email: String,
    pub name: String,
    /// owner, admin, editor, viewer, developer or system_bot.
    #[schema(value_type = Option<crate::auth::RoleName>)]
    pub role: Option<&'static str>,
    /// The sites an editor or viewer may see (owners and admins see all).
    pub site_ids: Vec<Uuid>,
}

pub(crate) fn user_view(id: Uuid, u: &User) -> UserView {
    UserView {
        id,
        account_id: u.account_id.filter(|a| !a.is_nil()),
        email: u.email.clone(),
        name: u.name.clone(),
        role: u.role.map(|r| r.as_str()),
        site_ids: u.site_ids.to_vec(),
    }
}

/// An account as answers show it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountView {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    pub plan: String,
    pub owner_id: Option<Uuid>,
    /// Always `active` for now.
    pub status: &'static str,
}

fn account_view(id: Uuid, t: &Tenant) -> AccountView {
    AccountView {
        id,
        name: t.name.clone(),
        slug: t.slug.clone(),
        plan: t.plan.clone(),
        owner_id: t.owner_id,
        status: "active",
    }
}

/// Sign-up and login: the user, the account and the first tokens.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionAnswer {
    pub user: UserView,
    /// `null` for operators.
    pub account: Option<AccountView>,
    /// Position of the session's first event.
    pub position: Option<i64>,
    #[serde(flatten)]
    pub tokens: tokens::TokenPair,
}

/// The caller of `GET /auth/me/`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    /// `null` when the caller is an API key.
    pub user: Option<UserView>,
    pub api_key_id: Option<Uuid>,
    pub account: Option<AccountView>,
    #[schema(value_type = crate::auth::RoleName)]
    pub role: &'static str,
    /// `null`: every site of the account.
    pub site_ids: Option<Vec<Uuid>>,
    pub all_sites: bool,
}

/// A session ended (logout), with the position of the change.
#[derive(Debug, Serialize, ToSchema)]
pub struct Revoked {
    pub revoked: bool,
    pub position: Option<i64>,
}

/// A password changed, with the position of the change.
#[derive(Debug, Serialize, ToSchema)]
pub struct Changed {
    pub changed: bool,
    pub position: Option<i64>,
}

/// Start a session (the login audit event) and answer with its first
/// tokens, the user and the account.
async fn session_answer(s: &AppState, user_id: Uuid, method: &str) -> ApiResult<SessionAnswer> {
    let (user, account) = sessions::user_and_account(&s.bus, user_id).await?;
    let account_id = account.as_ref().map(|(a, _)| *a).unwrap_or_default();
    let (session_id, position) =
        sessions::start_session(&s.bus, user_id, account_id, method, &anonymous()).await?;
    Ok(SessionAnswer {
        user: user_view(user_id, &user),
        account: account.map(|(id, t)| account_view(id, &t)),
        position,
        tokens: tokens::issue(&s.keys.jwt, user_id, account_id, session_id, 0)?,
    })
}

fn email_key(raw: &str) -> String {
    format!("email:{}", raw.trim().to_lowercase())
}

/// Create an account with its owner, the default plan and its starting credits.
#[utoipa::path(post, path = "/api/v1/auth/signup/", tag = "auth", request_body = SignupBody,
    responses((status = 201, description = "Account, user and tokens", body = SessionAnswer),
              (status = 409, description = "EMAIL_TAKEN", body = crate::http::schema::ErrorEnvelope),
              (status = 422, description = "INVALID_EMAIL, INVALID_PASSWORD, INVALID_NAME", body = crate::http::schema::ErrorEnvelope),
              (status = 429, description = "Too many attempts", body = crate::http::schema::ErrorEnvelope)))]
pub async fn signup(
    State(s): State<AppState>,
    addr: ClientAddr,
    body: ApiJson<SignupBody>,
) -> ApiResult<Response> {
    if let Some(ip) = addr.0 {
        s.limits.login(&format!("ip:{ip}"))?;
    }
    let b = body.value;
    let done = cmd::signup(
        &s.bus,
        &s.keys.secrets,
        &b.email,
        &b.password,
        &b.account_name,
        &anonymous(),
    )
    .await?;
    let data = session_answer(&s, done.user_id, "signup").await?;
    Ok(Created(data).into_response())
}

/// Exchange email and password for tokens.
#[utoipa::path(post, path = "/api/v1/auth/login/", tag = "auth", request_body = LoginBody,
    responses((status = 200, description = "User, account and tokens", body = SessionAnswer),
              (status = 401, description = "INVALID_CREDENTIALS", body = crate::http::schema::ErrorEnvelope),
              (status = 429, description = "Too many attempts (per email and per address)", body = crate::http::schema::ErrorEnvelope)))]
pub async fn login(
    State(s): State<AppState>,
    addr: ClientAddr,
    body: ApiJson<LoginBody>,
) -> ApiResult<ApiOk<SessionAnswer>> {
    let b = body.value;
    s.limits.login(&email_key(&b.email))?;
    if let Some(ip) = addr.0 {
        s.limits.login(&format!("ip:{ip}"))?;
    }
    let Some((user_id, _)) =
        cmd::authenticate(&s.bus, &s.keys.secrets, &b.email, &b.password, &anonymous()).await?
    else {
        tracing::info!(email = %b.email.trim().to_lowercase(), "login refused");
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "INVALID_CREDENTIALS",
            "email or password is wrong",
        ));
    };
    Ok(ApiOk(session_answer(&s, user_id, "password").await?))
}

/// Rotate: a refresh token works once. Presenting a used one revokes the
/// whole session (both the thief's and the owner's tokens stop working).
#[utoipa::path(post, path = "/api/v1/auth/refresh/", tag = "auth", request_body = RefreshBody,
    responses((status = 200, description = "A new token pair", body = tokens::TokenPair),
              (status = 401, description = "INVALID_TOKEN, TOKEN_EXPIRED, TOKEN_REVOKED, TOKEN_REUSED", body = crate::http::schema::ErrorEnvelope)))]
pub async fn refresh(
    State(s): State<AppState>,
    body: ApiJson<RefreshBody>,
) -> ApiResult<ApiOk<tokens::TokenPair>> {
    let claims = tokens::verify(&s.keys.jwt, &body.value.refresh_token, "refresh")?;
    sessions::refresh_session(
        &s.bus,
        claims.sub,
        claims.acc,
        claims.sid,
        claims.generation,
        &anonymous(),
    )
    .await?;
    Ok(ApiOk(tokens::issue(
        &s.keys.jwt,
        claims.sub,
        claims.acc,
        claims.sid,
        claims.generation + 1,
    )?))
}

/// End the session of the presented access token (its refresh token too).
#[utoipa::path(post, path = "/api/v1/auth/logout/", tag = "auth", security(("bearer" = [])),
    responses((status = 200, description = "Session revoked", body = Revoked),
              (status = 401, description = "Not authenticated", body = crate::http::schema::ErrorEnvelope)))]
pub async fn logout(State(s): State<AppState>, p: Principal) -> ApiResult<ApiOk<Revoked>> {
    let position = sessions::end_session(&s.bus, p.session_id, &p.context()).await?;
    Ok(ApiOk(Revoked {
        revoked: true,
        position,
    }))
}

/// Change your own password (sessions stay valid).
#[utoipa::path(post, path = "/api/v1/auth/password/", tag = "auth", request_body = PasswordBody, security(("bearer" = [])),
    responses((status = 200, description = "Changed", body = Changed),
              (status = 422, description = "WRONG_PASSWORD, INVALID_PASSWORD", body = crate::http::schema::ErrorEnvelope),
              (status = 429, description = "Too many attempts", body = crate::http::schema::ErrorEnvelope)))]
pub async fn change_password(
    State(s): State<AppState>,
    p: Principal,
    body: ApiJson<PasswordBody>,
) -> ApiResult<ApiOk<Changed>> {
    let Some(user_id) = p.user_id else {
        return Err(ApiError::bad_request(
            "NO_SESSION",
            "API keys have no password",
        ));
    };
    s.limits.login(&format!("password:{user_id}"))?;
    let b = body.value;
    let out = cmd::change_password(
        &s.bus,
        &s.keys.secrets,
        user_id,
        &b.current_password,
        &b.new_password,
        &p.context(),
    )
    .await?;
    Ok(ApiOk(Changed {
        changed: true,
        position: out.position,
    }))
}

/// The caller: user (or API key), account, role and visible sites.
#[utoipa::path(get, path = "/api/v1/auth/me/", tag = "auth", security(("bearer" = [])),
    responses((status = 200, description = "The caller", body = Me),
              (status = 401, description = "Not authenticated", body = crate::http::schema::ErrorEnvelope)))]
pub async fn me(State(s): State<AppState>, p: Principal) -> ApiResult<ApiOk<Me>> {
    let user = match p.user_id {
        Some(id) => Some(user_view(
            id,
            &sessions::user_and_account(&s.bus, id).await?.0,
        )),
        None => None,
    };
    let account = if p.account_id.is_nil() {
        None
    } else {
        let t = sessions::tenant(&s.bus, p.account_id).await?;
        Some(account_view(p.account_id, &t))
    };
    Ok(ApiOk(Me {
        user,
        api_key_id: p.key_id,
        account,
        role: p.role.as_str(),
        site_ids: p.sites.clone(),
        all_sites: p.sites.is_none(),
    }))
}
