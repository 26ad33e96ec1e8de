//! Prompts, author profiles and writing strategies (the seeds' "Thinker"):
//! read by everyone of the account, changed by owners and admins. Read
//! straight from the account's `writer_settings` aggregate.

use crate::auth::Principal;
use crate::http::command::{Deleted, Saved};
use crate::http::{
    ApiError, ApiOk, ApiPath, ApiResult, Command, Empty, Page, Paging, both_slashes, resource,
};
use crate::state::AppState;
use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post, put};
use igny8_commands::writer::settings as cmd;
use igny8_domain::writer::{AuthorProfile, PROMPT_TYPES, WriterSettings, WritingStrategy};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;
use uuid::Uuid;

pub fn routes(r: Router<AppState>) -> Router<AppState> {
    let r = both_slashes(r, "/api/v1/system/prompts/", get(prompts));
    let r = both_slashes(r, "/api/v1/system/prompts/{prompt_type}/", put(set_prompt));
    let r = both_slashes(
        r,
        "/api/v1/system/prompts/{prompt_type}/reset/",
        post(reset_prompt),
    );
    let r = both_slashes(
        r,
        "/api/v1/system/author-profiles/",
        get(profiles).post(create_profile),
    );
    let r = both_slashes(
        r,
        "/api/v1/system/author-profiles/{id}/",
        get(get_profile)
            .patch(update_profile)
            .delete(delete_profile),
    );
    let r = both_slashes(
        r,
        "/api/v1/system/strategies/",
        get(strategies).post(create_strategy),
    );
    both_slashes(
        r,
        "/api/v1/system/strategies/{id}/",
        get(get_strategy)
            .patch(update_strategy)
            .delete(delete_strategy),
    )
}

fn overrides_schema() -> utoipa::openapi::Object {
    let names: Vec<&str> = PROMPT_TYPES.iter().map(|(t, _)| *t).collect();
    let mut o = utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
            utoipa::openapi::schema::Type::Object,
            utoipa::openapi::schema::Type::Null,
        ]))
        .additional_properties(Some(utoipa::openapi::schema::AdditionalProperties::RefOr(
            utoipa::openapi::RefOr::T(utoipa::openapi::Schema::Object(
                crate::http::constraints::template(),
            )),
        )))
        .build();
    o.property_names = Some(Box::new(crate::http::schema::string_enum(&names).into()));
    o
}

fn prompt_type_schema() -> utoipa::openapi::Object {
    let names: Vec<&str> = PROMPT_TYPES.iter().map(|(t, _)| *t).collect();
    crate::http::schema::string_enum(&names)
}

/// A prompt type's effective template.
#[derive(Debug, Serialize, ToSchema)]
pub struct PromptView {
    #[schema(schema_with = prompt_type_schema)]
    pub prompt_type: String,
    pub template: String,
    /// The account's version of this template (0: never changed).
    pub prompt_version: u32,
    /// The template is the default (never changed, or reset).
    pub is_default: bool,
    /// The placeholders this type's templates may use, as `{name}`.
    pub placeholders: Vec<String>,
}

fn prompt_views(s: &WriterSettings) -> Vec<PromptView> {
    PROMPT_TYPES
        .iter()
        .map(|(t, allowed)| {
            let (template, version, _) = s.template(t, None);
            PromptView {
                prompt_type: t.to_string(),
                template,
                prompt_version: version,
                is_default: s.prompts.get(*t).is_none_or(|p| p.template.is_none()),
                placeholders: allowed.iter().map(|p| format!("{{{p}}}")).collect(),
            }
        })
        .collect()
}

/// Every prompt type with its effective template (the account's or the default).
#[utoipa::path(get, path = "/api/v1/system/prompts/", tag = "writer", security(("bearer" = [])),
    responses((status = 200, description = "The prompt types", body = Vec<PromptView>)))]
pub async fn prompts(State(s): State<AppState>, p: Principal) -> ApiResult<ApiOk<Vec<PromptView>>> {
    Ok(ApiOk(prompt_views(&cmd::settings(&s.bus, &p).await?)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PromptBody {
    /// 1 to 20,000 characters; `{placeholders}` of the type only.
    #[schema(schema_with = crate::http::constraints::template)]
    pub template: String,
}

async fn prompt_answer(
    s: &AppState,
    p: &Principal,
    prompt_type: &str,
    out: &igny8_commands::CommandOutcome,
) -> ApiResult<Response> {
    let settings = cmd::settings(&s.bus, p).await?;
    let view = prompt_views(&settings)
        .into_iter()
        .find(|v| v.prompt_type == prompt_type)
        .ok_or_else(|| ApiError::not_found("prompt type"))?;
    Ok(resource(view, out, false))
}

/// A new version of the account's template for a prompt type.
#[utoipa::path(put, path = "/api/v1/system/prompts/{prompt_type}/", tag = "writer", request_body = PromptBody,
    params(("prompt_type" = String, Path, description = "clustering, ideas, content or image_prompts")), security(("bearer" = [])),
    responses((status = 200, description = "The template now", body = Saved<PromptView>), (status = 403, description = "Not owner/admin", body = crate::http::schema::ErrorEnvelope),
              (status = 404, description = "Unknown prompt type", body = crate::http::schema::ErrorEnvelope),
              (status = 422, description = "UNKNOWN_PLACEHOLDER, INVALID_TEMPLATE", body = crate::http::schema::ErrorEnvelope)))]
pub async fn set_prompt(
    State(s): State<AppState>,
    ApiPath(prompt_type): ApiPath<String>,
    Command {
        principal: p,
        ctx,
        body: b,
        ..
    }: Command<PromptBody>,
) -> ApiResult<Response> {
    let out = cmd::set_prompt(&s.bus, &p, &ctx, &prompt_type, b.template).await?;
    prompt_answer(&s, &p, &prompt_type, &out).await
}

/// Back to the default template (a new version; nothing when it is the default).
#[utoipa::path(post, path = "/api/v1/system/prompts/{prompt_type}/reset/", tag = "writer",
    params(("prompt_type" = String, Path, description = "clustering, ideas, content or image_prompts")), security(("bearer" = [])),
    responses((status = 200, description = "The template now", body = Saved<PromptView>), (status = 403, description = "Not owner/admin", body = crate::http::schema::ErrorEnvelope),
              (status = 404, description = "Unknown prompt type", body = crate::http::schema::ErrorEnvelope)))]
pub async fn reset_prompt(
    State(s): State<AppState>,
    ApiPath(prompt_type): ApiPath<String>,
    Command {
        principal: p, ctx, ..
    }: Command<Empty>,
) -> ApiResult<Response> {
    let out = cmd::reset_prompt(&s.bus, &p, &ctx, &prompt_type).await?;
    prompt_answer(&s, &p, &prompt_type, &out).await
}

/// An author profile.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProfileView {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub tone: String,
    /// BCP 47: the language articles are written in.
    pub language: String,
}

fn profile_view(id: Uuid, p: &AuthorProfile) -> ProfileView {
    ProfileView {
        id,
        name: p.name.clone(),
        description: p.description.clone(),
        tone: p.tone.clone(),
        language: p.language.clone(),
    }
}

/// The account's author profiles.
#[utoipa::path(get, path = "/api/v1/system/author-profiles/", tag = "writer", params(crate::http::PageParams), security(("bearer" = [])),
    responses((status = 200, description = "A page of profiles", body = Page<ProfileView>)))]
pub async fn profiles(
    State(s): State<AppState>,
    p: Principal,
    paging: Paging,
) -> ApiResult<ApiOk<Page<ProfileView>>> {
    let st = cmd::settings(&s.bus, &p).await?;
    Ok(paging.slice(
        st.profiles
            .iter()
            .map(|(id, x)| profile_view(*id, x))
            .collect(),
    ))
}

/// One author profile.
#[utoipa::path(get, path = "/api/v1/system/author-profiles/{id}/", tag = "writer", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, description = "The profile", body = ProfileView), (status = 404, description = "Unknown", body = crate::http::schema::ErrorEnvelope)))]
pub async fn get_profile(
    State(s): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<ApiOk<ProfileView>> {
    let st = cmd::settings(&s.bus, &p).await?;
    st.profiles
        .get(&id)
        .map(|x| ApiOk(profile_view(id, x)))
        .ok_or_else(|| ApiError::not_found("author profile"))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileBody {
    /// 1 to 200 characters after trimming (default on create: "Author profile").
    #[schema(schema_with = crate::http::constraints::name_or_null)]
    pub name: Option<String>,
    #[schema(schema_with = crate::http::constraints::text_2000_or_null)]
    pub description: Option<String>,
    /// e.g. "warm and practical" (at most 200 characters).
    #[schema(schema_with = crate::http::constraints::optional_name_or_null)]
    pub tone: Option<String>,
    /// BCP 47 such as en, de, pt-BR (default en).
    #[schema(pattern = "^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")]
    pub language: Option<String>,
}

fn profile_input(b: ProfileBody) -> cmd::ProfileInput {
    cmd::ProfileInput {
        name: b.name,
        description: b.description,
        tone: b.tone,
        language: b.language,
    }
}

async fn profile_answer(
    s: &AppState,
    p: &Principal,
    id: Uuid,
    out: &igny8_commands::CommandOutcome,
    created: bool,
) -> ApiResult<Response> {
    let st = cmd::settings(&s.bus, p).await?;
    let x = st
        .profiles
        .get(&id)
        .ok_or_else(|| ApiError::not_found("author profile"))?;
    Ok(resource(profile_view(id, x), out, created))
}

/// Create an author profile (at most 50 per account).
#[utoipa::path(post, path = "/api/v1/system/author-profiles/", tag = "writer", request_body = ProfileBody, security(("bearer" = [])),
    responses((status = 201, description = "Created", body = Saved<ProfileView>), (status = 403, description = "Not owner/admin", body = crate::http::schema::ErrorEnvelope),
              (status = 422, description = "VALIDATION_ERROR, LIMIT_REACHED", body = crate::http::schema::ErrorEnvelope)))]
pub async fn create_profile(
    State(s): State<AppState>,
    Command {
        principal: p,
        ctx,
        body: b,
        ..
    }: Command<ProfileBody>,
) -> ApiResult<Response> {
    let (id, out) = cmd::save_profile(&s.bus, &p, &ctx, None, profile_input(b)).await?;
    profile_answer(&s, &p, id, &out, true).await
}

/// Change an author profile.
#[utoipa::path(patch, path = "/api/v1/system/author-profiles/{id}/", tag = "writer", request_body = ProfileBody, params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, description = "Updated", body = Saved<ProfileView>), (status = 403, description = "Not owner/admin", body = crate::http::schema::ErrorEnvelope),
              (status = 404, description = "Unknown", body = crate::http::schema::ErrorEnvelope), (status = 422, description = "VALIDATION_ERROR", body = crate::http::schema::ErrorEnvelope)))]
pub async fn update_profile(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    Command {
        principal: p,
        ctx,
        body: b,
        ..
    }: Command<ProfileBody>,
) -> ApiResult<Response> {
    let (id, out) = cmd::save_profile(&s.bus, &p, &ctx, Some(id), profile_input(b)).await?;
    profile_answer(&s, &p, id, &out, false).await
}

/// Delete an author profile (409 IN_USE while a strategy names it as its default).
#[utoipa::path(delete, path = "/api/v1/system/author-profiles/{id}/", tag = "writer", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, description = "Deleted", body = Saved<Deleted>), (status = 403, description = "Not owner/admin", body = crate::http::schema::ErrorEnvelope),
              (status = 404, description = "Unknown", body = crate::http::schema::ErrorEnvelope), (status = 409, description = "IN_USE", body = crate::http::schema::ErrorEnvelope)))]
pub async fn delete_profile(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    Command {
        principal: p, ctx, ..
    }: Command<Empty>,
) -> ApiResult<Response> {
    let out = cmd::delete_profile(&s.bus, &p, &ctx, id).await?;
    Ok(resource(Deleted::id(id), &out, false))
}

/// A writing strategy.
#[derive(Debug, Serialize, ToSchema)]
pub struct StrategyView {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    /// The sector it is meant for (`null`: any).
    pub sector_id: Option<Uuid>,
    /// Templates that replace the account's for these prompt types.
    pub prompt_overrides: BTreeMap<String, String>,
    pub default_author_profile_id: Option<Uuid>,
}

fn strategy_view(id: Uuid, x: &WritingStrategy) -> StrategyView {
    StrategyView {
        id,
        name: x.name.clone(),
        description: x.description.clone(),
        sector_id: x.sector_id,
        prompt_overrides: x.prompt_overrides.clone(),
        default_author_profile_id: x.default_author_profile_id,
    }
}

/// The account's writing strategies.
#[utoipa::path(get, path = "/api/v1/system/strategies/", tag = "writer", params(crate::http::PageParams), security(("bearer" = [])),
    responses((status = 200, description = "A page of strategies", body = Page<StrategyView>)))]
pub async fn strategies(
    State(s): State<AppState>,
    p: Principal,
    paging: Paging,
) -> ApiResult<ApiOk<Page<StrategyView>>> {
    let st = cmd::settings(&s.bus, &p).await?;
    Ok(paging.slice(
        st.strategies
            .iter()
            .map(|(id, x)| strategy_view(*id, x))
            .collect(),
    ))
}

/// One writing strategy.
#[utoipa::path(get, path = "/api/v1/system/strategies/{id}/", tag = "writer", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, description = "The strategy", body = StrategyView), (status = 404, description = "Unknown", body = crate::http::schema::ErrorEnvelope)))]
pub async fn get_strategy(
    State(s): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<ApiOk<StrategyView>> {
    let st = cmd::settings(&s.bus, &p).await?;
    st.strategies
        .get(&id)
        .map(|x| ApiOk(strategy_view(id, x)))
        .ok_or_else(|| ApiError::not_found("strategy"))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StrategyBody {
    /// 1 to 200 characters after trimming (default on create: "Strategy").
    #[schema(schema_with = crate::http::constraints::name_or_null)]
    pub name: Option<String>,
    #[schema(schema_with = crate::http::constraints::text_2000_or_null)]
    pub description: Option<String>,
    /// A sector of the account; `null` clears it.
    #[serde(default, deserialize_with = "crate::http::nullable")]
    #[schema(value_type = Option<Uuid>)]
    pub sector_id: Option<Option<Uuid>>,
    /// Prompt type → template (the type's placeholders only).
    #[schema(schema_with = overrides_schema)]
    pub prompt_overrides: Option<BTreeMap<String, String>>,
    /// An author profile of the account; `null` clears it.
    #[serde(default, deserialize_with = "crate::http::nullable")]
    #[schema(value_type = Option<Uuid>)]
    pub default_author_profile_id: Option<Option<Uuid>>,
}

fn strategy_input(b: StrategyBody) -> cmd::StrategyInput {
    cmd::StrategyInput {
        name: b.name,
        description: b.description,
        sector_id: b.sector_id,
        prompt_overrides: b.prompt_overrides,
        default_author_profile_id: b.default_author_profile_id,
    }
}

async fn strategy_answer(
    s: &AppState,
    p: &Principal,
    id: Uuid,
    out: &igny8_commands::CommandOutcome,
    created: bool,
) -> ApiResult<Response> {
    let st = cmd::settings(&s.bus, p).await?;
    let x = st
        .strategies
        .get(&id)
        .ok_or_else(|| ApiError::not_found("strategy"))?;
    Ok(resource(strategy_view(id, x), out, created))
}

/// Create a writing strategy (at most 50 per account).
#[utoipa::path(post, path = "/api/v1/system/strategies/", tag = "writer", request_body = StrategyBody, security(("bearer" = [])),
    responses((status = 201, description = "Created", body = Saved<StrategyView>), (status = 403, description = "Not owner/admin", body = crate::http::schema::ErrorEnvelope),
              (status = 404, description = "Unknown sector, author profile or prompt type", body = crate::http::schema::ErrorEnvelope),
              (status = 422, description = "VALIDATION_ERROR, UNKNOWN_PLACEHOLDER, INVALID_TEMPLATE, LIMIT_REACHED", body = crate::http::schema::ErrorEnvelope)))]
pub async fn create_strategy(
    State(s): State<AppState>,
    Command {
        principal: p,
        ctx,
        body: b,
        ..
    }: Command<StrategyBody>,
) -> ApiResult<Response> {
    let (id, out) = cmd::save_strategy(&s.bus, &p, &ctx, None, strategy_input(b)).await?;
    strategy_answer(&s, &p, id, &out, true).await
}

/// Change a writing strategy.
#[utoipa::path(patch, path = "/api/v1/system/strategies/{id}/", tag = "writer", request_body = StrategyBody, params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, description = "Updated", body = Saved<StrategyView>), (status = 403, description = "Not owner/admin", body = crate::http::schema::ErrorEnvelope),
              (status = 404, description = "Unknown strategy, sector, author profile or prompt type", body = crate::http::schema::ErrorEnvelope),
              (status = 422, description = "VALIDATION_ERROR, UNKNOWN_PLACEHOLDER, INVALID_TEMPLATE", body = crate::http::schema::ErrorEnvelope)))]
pub async fn update_strategy(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    Command {
        principal: p,
        ctx,
        body: b,
        ..
    }: Command<StrategyBody>,
) -> ApiResult<Response> {
    let (id, out) = cmd::save_strategy(&s.bus, &p, &ctx, Some(id), strategy_input(b)).await?;
    strategy_answer(&s, &p, id, &out, false).await
}

/// Delete a writing strategy (tasks that name it keep their text).
#[utoipa::path(delete, path = "/api/v1/system/strategies/{id}/", tag = "writer", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, description = "Deleted", body = Saved<Deleted>), (status = 403, description = "Not owner/admin", body = crate::http::schema::ErrorEnvelope),
              (status = 404, description = "Unknown", body = crate::http::schema::ErrorEnvelope)))]
pub async fn delete_strategy(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    Command {
        principal: p, ctx, ..
    }: Command<Empty>,
) -> ApiResult<Response> {
    let out = cmd::delete_strategy(&s.bus, &p, &ctx, id).await?;
    Ok(resource(Deleted::id(id), &out, false))
}
