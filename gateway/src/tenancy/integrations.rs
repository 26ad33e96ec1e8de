//! The account's AI provider settings (the seeds' `system/settings/integrations`):
//! an OpenAI-compatible base URL, the embedding and chat models, and an API
//! key that is sealed (AES-256-GCM, bound to the integration) before it is
//! written and never shown again — answers carry only its last four
//! characters. Owners and admins only. The `embeddings` and `llm`
//! clustering strategies use these settings.

use crate::auth::Principal;
use crate::auth::RequestCaller;
use crate::http::command::Saved;
use crate::http::{ApiJson, ApiOk, ApiPath, ApiResult, resource};
use crate::state::AppState;
use axum::extract::State;
use axum::response::Response;
use igny8_commands::tenancy::providers;
use igny8_domain::tenancy::{Integration, PROVIDERS};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use providers::{DEFAULT_CHAT_MODEL, DEFAULT_EMBEDDING_MODEL};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IntegrationBody {
    /// Base URL of an OpenAI-compatible API (default https://api.openai.com/v1).
    #[schema(schema_with = crate::http::constraints::url_opt)]
    pub base_url: Option<String>,
    /// Model for `/embeddings` (default text-embedding-3-small).
    #[schema(schema_with = crate::http::constraints::name_opt)]
    pub embedding_model: Option<String>,
    /// Model for `/chat/completions` (default gpt-4o-mini).
    #[schema(schema_with = crate::http::constraints::name_opt)]
    pub chat_model: Option<String>,
    /// Model for images (openai: gpt-image-1 by default, or dall-e-3; runware: runware:101@1 by default).
    #[schema(schema_with = crate::http::constraints::name_opt)]
    pub image_model: Option<String>,
    /// The API key: absent keeps the stored one, `null` removes it; 1 to 512
    /// characters without spaces.
    #[serde(default, deserialize_with = "super::nullable")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 512, pattern = "^\\s*[!-~\\u00A1-\\uFFFF]+\\s*$")]
    pub api_key: Option<Option<String>>,
}

/// Provider settings as answers show them: everything but the key.
#[derive(Debug, Serialize, ToSchema)]
pub struct IntegrationView {
    pub provider: String,
    pub configured: bool,
    pub base_url: String,
    pub embedding_model: String,
    pub chat_model: String,
    pub image_model: String,
    pub has_api_key: bool,
    /// The key's last four characters (keys of 16+ characters only).
    pub key_hint: Option<String>,
}

/// The settings after `DELETE`: none.
#[derive(Debug, Serialize, ToSchema)]
pub struct IntegrationRemoved {
    pub provider: String,
    pub configured: bool,
}

fn view(provider: &str, i: &Integration) -> IntegrationView {
    let (default_base, default_image) = providers::defaults(provider);
    if !i.configured {
        return IntegrationView {
            provider: provider.into(),
            configured: false,
            base_url: default_base.into(),
            embedding_model: DEFAULT_EMBEDDING_MODEL.into(),
            chat_model: DEFAULT_CHAT_MODEL.into(),
            image_model: default_image.into(),
            has_api_key: false,
            key_hint: None,
        };
    }
    IntegrationView {
        provider: provider.into(),
        configured: true,
        base_url: i.base_url.clone(),
        embedding_model: i.embedding_model.clone(),
        chat_model: i.chat_model.clone(),
        image_model: if i.image_model.is_empty() {
            default_image.into()
        } else {
            i.image_model.clone()
        },
        has_api_key: i.api_key_sealed.is_some(),
        key_hint: i.key_hint.clone(),
    }
}

/// The providers settings exist for (a schema for documents).
pub struct ProviderName;

impl utoipa::PartialSchema for ProviderName {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::http::schema::string_enum(PROVIDERS).into()
    }
}

impl ToSchema for ProviderName {
    fn name() -> std::borrow::Cow<'static, str> {
        "Provider".into()
    }
}

/// The account's settings for a provider (`openai`: any OpenAI-compatible API).
#[utoipa::path(get, path = "/api/v1/system/settings/integrations/{provider}/", tag = "system", params(("provider" = ProviderName, Path)), security(("bearer" = [])),
    responses((status = 200, description = "Settings (the key only as `has_api_key` and `key_hint`)", body = IntegrationView),
              (status = 403, description = "Not owner/admin", body = crate::http::schema::ErrorEnvelope), (status = 404, description = "Unknown provider", body = crate::http::schema::ErrorEnvelope)))]
pub async fn get_one(
    State(s): State<AppState>,
    p: Principal,
    ApiPath(provider): ApiPath<String>,
) -> ApiResult<ApiOk<IntegrationView>> {
    let (provider, i) = providers::get_settings(&s.bus, &p, &provider).await?;
    Ok(ApiOk(view(provider, &i)))
}

/// Save the settings. Fields left out keep their value (or the default).
#[utoipa::path(put, path = "/api/v1/system/settings/integrations/{provider}/", tag = "system", params(("provider" = ProviderName, Path)), request_body = IntegrationBody, security(("bearer" = [])),
    responses((status = 200, description = "Saved", body = Saved<IntegrationView>), (status = 403, description = "Not owner/admin", body = crate::http::schema::ErrorEnvelope),
              (status = 404, description = "Unknown provider", body = crate::http::schema::ErrorEnvelope),
              (status = 422, description = "INVALID_URL, INVALID_NAME, INVALID_API_KEY", body = crate::http::schema::ErrorEnvelope)))]
pub async fn put(
    State(s): State<AppState>,
    p: Principal,
    ApiPath(provider): ApiPath<String>,
    body: ApiJson<IntegrationBody>,
) -> ApiResult<Response> {
    let b = body.value;
    let input = providers::ProviderSettings {
        base_url: b.base_url,
        embedding_model: b.embedding_model,
        chat_model: b.chat_model,
        image_model: b.image_model,
        api_key: b.api_key,
    };
    let (provider, i, out) =
        providers::save_settings(&s.bus, &s.keys.secrets, &p, &p.context(), &provider, input)
            .await?;
    Ok(resource(view(provider, &i), &out, false))
}

/// Remove the settings (the `embeddings` and `llm` strategies become unavailable).
#[utoipa::path(delete, path = "/api/v1/system/settings/integrations/{provider}/", tag = "system", params(("provider" = ProviderName, Path)), security(("bearer" = [])),
    responses((status = 200, description = "Removed", body = Saved<IntegrationRemoved>), (status = 403, description = "Not owner/admin", body = crate::http::schema::ErrorEnvelope),
              (status = 404, description = "Unknown provider or nothing configured", body = crate::http::schema::ErrorEnvelope)))]
pub async fn remove(
    State(s): State<AppState>,
    p: Principal,
    ApiPath(provider): ApiPath<String>,
) -> ApiResult<Response> {
    let (provider, out) = providers::remove_settings(&s.bus, &p, &p.context(), &provider).await?;
    Ok(resource(
        IntegrationRemoved {
            provider: provider.into(),
            configured: false,
        },
        &out,
        false,
    ))
}

/// What a test call to the provider found.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderTest {
    /// The provider answered a minimal chat completion.
    pub ok: bool,
    /// The model that answered (or was asked).
    pub model: String,
    /// Round trip of the call in milliseconds.
    pub latency_ms: u64,
    /// The provider's HTTP status when it refused.
    pub status: Option<u16>,
    /// The provider's error, when `ok` is false.
    pub error: Option<String>,
}

/// A minimal chat completion with the saved settings (one try, no retry):
/// whether the provider answers, with which model and how fast, or its error.
#[utoipa::path(post, path = "/api/v1/system/settings/integrations/{provider}/test_openai/", tag = "system", params(("provider" = ProviderName, Path)), security(("bearer" = [])),
    responses((status = 200, description = "ok with model and latency, or the provider's error", body = ProviderTest),
              (status = 403, description = "Not owner/admin", body = crate::http::schema::ErrorEnvelope),
              (status = 404, description = "Unknown provider", body = crate::http::schema::ErrorEnvelope),
              (status = 422, description = "NOT_CONFIGURED", body = crate::http::schema::ErrorEnvelope)))]
pub async fn test_provider(
    State(s): State<AppState>,
    p: Principal,
    ApiPath(provider): ApiPath<String>,
) -> ApiResult<ApiOk<ProviderTest>> {
    let (i, client) = test_client(&s, &p, &provider).await?;
    let started = std::time::Instant::now();
    let body = serde_json::json!({"model": i.chat_model, "max_tokens": 5,
        "messages": [{"role": "user", "content": "Reply with OK."}]});
    let answer = client.post("chat/completions", &body).await;
    let latency_ms = started.elapsed().as_millis() as u64;
    Ok(ApiOk(match answer {
        Ok(v) => ProviderTest {
            ok: true,
            model: v["model"].as_str().unwrap_or(&i.chat_model).to_string(),
            latency_ms,
            status: None,
            error: None,
        },
        Err(e) => ProviderTest {
            ok: false,
            model: i.chat_model.clone(),
            latency_ms,
            status: match &e {
                igny8_workers::ai::AiError::Status { status, .. } => Some(*status),
                _ => None,
            },
            error: Some(e.to_string()),
        },
    }))
}

/// The saved settings of `provider` and a client for one try (422 NOT_CONFIGURED).
async fn test_client(
    s: &AppState,
    p: &Principal,
    provider: &str,
) -> ApiResult<(Integration, igny8_workers::ai::Provider)> {
    let (name, i) = providers::get_settings(&s.bus, p, provider).await?;
    if !i.configured {
        return Err(crate::http::ApiError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "NOT_CONFIGURED",
            format!("no provider settings: PUT /api/v1/system/settings/integrations/{name}/ first"),
        ));
    }
    let id = Integration::id(p.account()?, name);
    let api_key = match &i.api_key_sealed {
        Some(sealed) => Some(
            igny8_commands::tenancy::open_api_key(&s.keys.secrets, id, sealed)
                .map_err(crate::http::ApiError::internal)?,
        ),
        None => None,
    };
    let mut options = s.settings.ai_options();
    options.max_attempts = 1;
    let client = igny8_workers::ai::Provider {
        http: igny8_workers::ai::http_client(),
        base_url: i.base_url.clone(),
        api_key,
        options,
    };
    Ok((i, client))
}

/// What a test image call found.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImageTest {
    /// The provider answered with a real image.
    pub ok: bool,
    pub provider: String,
    pub model: String,
    pub latency_ms: u64,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub mime_type: Option<String>,
    pub bytes: Option<u64>,
    /// What the provider said the image cost, in USD.
    pub cost_usd: Option<f64>,
    /// The provider's error, or why its answer is not a usable image.
    pub error: Option<String>,
}

async fn test_image(s: &AppState, p: &Principal, provider: &str) -> ApiResult<ApiOk<ImageTest>> {
    let (i, api) = test_client(s, p, provider).await?;
    let (_, default_model) = providers::defaults(provider);
    let model = if i.image_model.is_empty() {
        default_model.to_string()
    } else {
        i.image_model.clone()
    };
    let fetch = igny8_workers::images::Fetcher::new(
        s.settings.allow_private_fetch,
        std::time::Duration::from_millis(s.settings.ai_timeout_ms),
    );
    let maker = if provider == "runware" {
        igny8_workers::images::ImageProvider::Runware {
            api,
            model: model.clone(),
            fetch,
        }
    } else {
        igny8_workers::images::ImageProvider::OpenAi {
            api,
            model: model.clone(),
            fetch,
        }
    };
    let started = std::time::Instant::now();
    let made = maker
        .make(
            "A small test image: a lighthouse on a cliff at dusk",
            (512, 512),
            igny8_domain::writer::ImageQuality::Basic,
            uuid::Uuid::new_v4(),
        )
        .await
        .and_then(|m| {
            igny8_workers::images::check::check(&m.bytes, m.declared.as_deref()).map(|c| (m, c))
        });
    let latency_ms = started.elapsed().as_millis() as u64;
    let mut out = ImageTest {
        ok: false,
        provider: provider.into(),
        model,
        latency_ms,
        width: None,
        height: None,
        mime_type: None,
        bytes: None,
        cost_usd: None,
        error: None,
    };
    match made {
        Ok((m, c)) => {
            out.ok = true;
            out.width = Some(c.width);
            out.height = Some(c.height);
            out.mime_type = Some(c.mime_type.into());
            out.bytes = Some(m.bytes.len() as u64);
            out.cost_usd = Some(m.cost_usd_micros as f64 / 1_000_000.0);
        }
        Err(e) => out.error = Some(e),
    }
    Ok(ApiOk(out))
}

/// One image from OpenAI's `/images/generations` with the saved settings
/// (one try, 512×512; the seeds' "Generate Image (Test)"): whether a real
/// image came back, its size and type, the model and latency, or the error.
/// No credits are charged.
#[utoipa::path(post, path = "/api/v1/system/settings/integrations/openai/test_image/", tag = "system", security(("bearer" = [])),
    responses((status = 200, description = "ok with the image's size, or the provider's error", body = ImageTest),
              (status = 403, description = "Not owner/admin", body = crate::http::schema::ErrorEnvelope),
              (status = 422, description = "NOT_CONFIGURED", body = crate::http::schema::ErrorEnvelope)))]
pub async fn test_openai_image(
    State(s): State<AppState>,
    p: Principal,
) -> ApiResult<ApiOk<ImageTest>> {
    test_image(&s, &p, "openai").await
}

/// One image from Runware with the saved settings (one try, 512×512):
/// whether a real image came back, its cost, or Runware's task error.
#[utoipa::path(post, path = "/api/v1/system/settings/integrations/runware/test_runware/", tag = "system", security(("bearer" = [])),
    responses((status = 200, description = "ok with the image's size and cost, or the provider's error", body = ImageTest),
              (status = 403, description = "Not owner/admin", body = crate::http::schema::ErrorEnvelope),
              (status = 422, description = "NOT_CONFIGURED", body = crate::http::schema::ErrorEnvelope)))]
pub async fn test_runware(State(s): State<AppState>, p: Principal) -> ApiResult<ApiOk<ImageTest>> {
    test_image(&s, &p, "runware").await
}
