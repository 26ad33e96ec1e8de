//! An account's AI provider settings (the seeds' integration settings): an
//! OpenAI-compatible endpoint, its models, and its API key — sealed by the
//! application layer before it reaches this crate, so the key is never in
//! clear in the event log. One aggregate per account and provider, id
//! [`Integration::id`].

use super::{TenancyError, check_name, check_url};
use crate::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The providers we speak to (any OpenAI-compatible API under `openai`;
/// Runware for images only: its settings use `base_url`, `image_model`
/// and the key).
pub const PROVIDERS: &[&str] = &["openai", "runware"];

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Integration {
    pub configured: bool,
    pub account_id: Option<Uuid>,
    pub provider: String,
    pub base_url: String,
    pub embedding_model: String,
    pub chat_model: String,
    /// Model for images (`gpt-image-1`, `dall-e-3`, a Runware model id).
    pub image_model: String,
    /// AES-GCM sealed API key (`None`: the endpoint takes no key).
    pub api_key_sealed: Option<String>,
    /// The key's last four characters, to recognise it.
    pub key_hint: Option<String>,
}

impl Integration {
    /// The aggregate id of an account's settings for `provider`.
    pub fn id(account_id: Uuid, provider: &str) -> Uuid {
        Uuid::new_v5(&account_id, provider.as_bytes())
    }
}

/// What happens to the stored key.
#[derive(Debug, Clone, PartialEq)]
pub enum KeyChange {
    Keep,
    Set { sealed: String, hint: String },
    Clear,
}

#[derive(Debug, Clone, PartialEq)]
pub enum IntegrationCommand {
    Configure {
        account_id: Uuid,
        provider: String,
        base_url: String,
        embedding_model: String,
        chat_model: String,
        image_model: String,
        api_key: KeyChange,
    },
    Remove,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum IntegrationEvent {
    /// The whole configuration as it now stands.
    IntegrationConfigured {
        account_id: Uuid,
        provider: String,
        base_url: String,
        embedding_model: String,
        chat_model: String,
        /// Absent in events written before images existed (the default model).
        #[serde(default, skip_serializing_if = "String::is_empty")]
        image_model: String,
        api_key_sealed: Option<String>,
        key_hint: Option<String>,
    },
    IntegrationRemoved {},
}

impl DomainEvent for IntegrationEvent {
    fn event_type(&self) -> &'static str {
        match self {
            IntegrationEvent::IntegrationConfigured { .. } => "IntegrationConfigured",
            IntegrationEvent::IntegrationRemoved { .. } => "IntegrationRemoved",
        }
    }
}

impl Aggregate for Integration {
    const TYPE: &'static str = "integration";
    type Command = IntegrationCommand;
    type Event = IntegrationEvent;
    type Error = TenancyError;

    fn decide(&self, command: IntegrationCommand) -> Result<Vec<IntegrationEvent>, TenancyError> {
        match command {
            IntegrationCommand::Configure {
                account_id,
                provider,
                base_url,
                embedding_model,
                chat_model,
                image_model,
                api_key,
            } => {
                if !PROVIDERS.contains(&provider.as_str()) {
                    return Err(TenancyError::NotFound("integration"));
                }
                let (api_key_sealed, key_hint) = match api_key {
                    KeyChange::Keep => (self.api_key_sealed.clone(), self.key_hint.clone()),
                    KeyChange::Set { sealed, hint } => (Some(sealed), Some(hint)),
                    KeyChange::Clear => (None, None),
                };
                let base_url = check_url(&base_url, "base_url")?
                    .trim_end_matches('/')
                    .to_string();
                Ok(vec![IntegrationEvent::IntegrationConfigured {
                    account_id,
                    provider,
                    base_url,
                    embedding_model: check_name(&embedding_model, "embedding_model")?,
                    chat_model: check_name(&chat_model, "chat_model")?,
                    image_model: check_name(&image_model, "image_model")?,
                    api_key_sealed,
                    key_hint,
                }])
            }
            IntegrationCommand::Remove => {
                if !self.configured {
                    return Err(TenancyError::NotFound("integration"));
                }
                Ok(vec![IntegrationEvent::IntegrationRemoved {}])
            }
        }
    }

    fn apply(&mut self, event: &IntegrationEvent) {
        match event {
            IntegrationEvent::IntegrationConfigured {
                account_id,
                provider,
                base_url,
                embedding_model,
                chat_model,
                image_model,
                api_key_sealed,
                key_hint,
            } => {
                *self = Integration {
                    configured: true,
                    account_id: Some(*account_id),
                    provider: provider.clone(),
                    base_url: base_url.clone(),
                    embedding_model: embedding_model.clone(),
                    chat_model: chat_model.clone(),
                    image_model: image_model.clone(),
                    api_key_sealed: api_key_sealed.clone(),
                    key_hint: key_hint.clone(),
                }
            }
            IntegrationEvent::IntegrationRemoved {} => {
                *self = Integration {
                    account_id: self.account_id,
                    provider: self.provider.clone(),
                    ..Integration::default()
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::given_when;

    fn configure(key: KeyChange) -> IntegrationCommand {
        IntegrationCommand::Configure {
            account_id: Uuid::from_u128(1),
            provider: "openai".into(),
            base_url: "https://api.example.com/v1/".into(),
            embedding_model: "text-embedding-3-small".into(),
            chat_model: "gpt-4o-mini".into(),
            image_model: "gpt-image-1".into(),
            api_key: key,
        }
    }

    #[test]
    fn keeps_or_replaces_the_sealed_key_and_checks_the_rest() {
        let first = given_when::<Integration>(
            &[],
            configure(KeyChange::Set {
                sealed: "k1:sealed".into(),
                hint: "abcd".into(),
            }),
        )
        .unwrap();
        let IntegrationEvent::IntegrationConfigured {
            base_url,
            api_key_sealed,
            ..
        } = &first[0]
        else {
            panic!()
        };
        assert_eq!(base_url, "https://api.example.com/v1");
        assert_eq!(api_key_sealed.as_deref(), Some("k1:sealed"));
        let kept = given_when::<Integration>(&first, configure(KeyChange::Keep)).unwrap();
        assert_eq!(kept, first, "Keep leaves the key as it was");
        let cleared = given_when::<Integration>(&first, configure(KeyChange::Clear)).unwrap();
        assert!(matches!(
            &cleared[0],
            IntegrationEvent::IntegrationConfigured {
                api_key_sealed: None,
                ..
            }
        ));
        let mut bad = configure(KeyChange::Keep);
        if let IntegrationCommand::Configure { base_url, .. } = &mut bad {
            *base_url = "ftp://x".into();
        }
        assert!(given_when::<Integration>(&[], bad).is_err());
        assert!(given_when::<Integration>(&[], IntegrationCommand::Remove).is_err());
    }
}
