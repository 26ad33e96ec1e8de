//! AI provider settings use cases (the seeds' `system/settings/integrations`):
//! read, save and remove an account's OpenAI-compatible base URL, models and
//! API key. Owners and admins only. The key is sealed (AES-256-GCM, bound to
//! the integration) before it is written; only its last four characters are
//! kept in clear, and only for keys long enough that they say little.

use super::seal_api_key;
use crate::bus::{CommandBus, CommandContext, CommandError, CommandOutcome};
use crate::caller::Caller;
use crate::secrets::Keyring;
use igny8_domain::tenancy::{Integration, IntegrationCommand, KeyChange, PROVIDERS};
use uuid::Uuid;

pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";
pub const DEFAULT_EMBEDDING_MODEL: &str = "text-embedding-3-small";
pub const DEFAULT_CHAT_MODEL: &str = "gpt-4o-mini";
pub const DEFAULT_IMAGE_MODEL: &str = "gpt-image-1";
pub const RUNWARE_BASE_URL: &str = "https://api.runware.ai";
pub const RUNWARE_IMAGE_MODEL: &str = "runware:101@1";

/// A provider's default base URL and image model.
pub fn defaults(provider: &str) -> (&'static str, &'static str) {
    match provider {
        "runware" => (RUNWARE_BASE_URL, RUNWARE_IMAGE_MODEL),
        _ => (DEFAULT_BASE_URL, DEFAULT_IMAGE_MODEL),
    }
}
/// Longest API key accepted.
pub const MAX_KEY: usize = 512;
/// Keys shorter than this show no hint at all.
pub const MIN_KEY_FOR_HINT: usize = 16;

/// A known provider's name (else "not found").
pub fn provider(name: &str) -> Result<&'static str, CommandError> {
    PROVIDERS
        .iter()
        .find(|p| **p == name)
        .copied()
        .ok_or_else(|| CommandError::not_found("integration"))
}

/// Settings to save: `None` keeps a field (or its default); `api_key`:
/// `None` keeps the stored key, `Some(None)` removes it.
#[derive(Debug, Clone, Default)]
pub struct ProviderSettings {
    pub base_url: Option<String>,
    pub embedding_model: Option<String>,
    pub chat_model: Option<String>,
    pub image_model: Option<String>,
    pub api_key: Option<Option<String>>,
}

async fn load(
    bus: &CommandBus,
    account: Uuid,
    provider: &str,
) -> Result<(Uuid, Integration), CommandError> {
    let id = Integration::id(account, provider);
    let (i, _) = bus.load::<Integration>(&id.to_string()).await?;
    Ok((id, i))
}

/// The account's settings for `provider` (unconfigured: the defaults).
pub async fn get_settings(
    bus: &CommandBus,
    caller: &Caller,
    provider_name: &str,
) -> Result<(&'static str, Integration), CommandError> {
    caller.require_manage()?;
    let provider = provider(provider_name)?;
    let (_, i) = load(bus, caller.account()?, provider).await?;
    Ok((provider, i))
}

fn key_change(
    keyring: &Keyring,
    id: Uuid,
    given: Option<Option<String>>,
) -> Result<KeyChange, CommandError> {
    Ok(match given {
        None => KeyChange::Keep,
        Some(None) => KeyChange::Clear,
        Some(Some(k)) => {
            let k = k.trim();
            if k.is_empty()
                || k.chars().count() > MAX_KEY
                || k.chars().any(|c| c.is_whitespace() || c.is_control())
            {
                return Err(CommandError::invalid(
                    "INVALID_API_KEY",
                    format!("api_key must be 1 to {MAX_KEY} characters without spaces"),
                ));
            }
            // The last four characters, only when they are a small part of
            // the key (a short key's hint would be most of the key).
            let n = k.chars().count();
            let hint: String = if n >= MIN_KEY_FOR_HINT {
                k.chars().skip(n - 4).collect()
            } else {
                String::new()
            };
            KeyChange::Set {
                sealed: seal_api_key(keyring, id, k),
                hint,
            }
        }
    })
}

/// Save the settings; fields left out keep their value (or the default).
pub async fn save_settings(
    bus: &CommandBus,
    keyring: &Keyring,
    caller: &Caller,
    ctx: &CommandContext,
    provider_name: &str,
    input: ProviderSettings,
) -> Result<(&'static str, Integration, CommandOutcome), CommandError> {
    caller.require_manage()?;
    let provider = provider(provider_name)?;
    let account = caller.account()?;
    let (id, current) = load(bus, account, provider).await?;
    let api_key = key_change(keyring, id, input.api_key)?;
    let keep = |given: Option<String>, now: &str, default: &str| {
        given.unwrap_or_else(|| {
            if current.configured {
                now.to_string()
            } else {
                default.to_string()
            }
        })
    };
    let (default_base, default_image) = defaults(provider);
    let current_image = if current.image_model.is_empty() {
        default_image
    } else {
        current.image_model.as_str()
    };
    let out = bus
        .execute::<Integration>(
            &id.to_string(),
            IntegrationCommand::Configure {
                account_id: account,
                provider: provider.to_string(),
                base_url: keep(input.base_url, &current.base_url, default_base),
                embedding_model: keep(
                    input.embedding_model,
                    &current.embedding_model,
                    DEFAULT_EMBEDDING_MODEL,
                ),
                chat_model: keep(input.chat_model, &current.chat_model, DEFAULT_CHAT_MODEL),
                image_model: keep(input.image_model, current_image, default_image),
                api_key,
            },
            ctx,
        )
        .await?;
    let (_, saved) = load(bus, account, provider).await?;
    Ok((provider, saved, out))
}

/// Remove the settings (the `embeddings` and `llm` strategies become unavailable).
pub async fn remove_settings(
    bus: &CommandBus,
    caller: &Caller,
    ctx: &CommandContext,
    provider_name: &str,
) -> Result<(&'static str, CommandOutcome), CommandError> {
    caller.require_manage()?;
    let provider = provider(provider_name)?;
    let (id, _) = load(bus, caller.account()?, provider).await?;
    let out = bus
        .execute::<Integration>(&id.to_string(), IntegrationCommand::Remove, ctx)
        .await?;
    Ok((provider, out))
}
