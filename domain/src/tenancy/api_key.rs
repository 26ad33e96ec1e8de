//! An API key for external automation. The key is shown once; only a
//! SHA-256 of its secret part is kept (the secret has 256 random bits, so a
//! fast hash is enough: there is nothing to brute-force).

use super::{Role, TenancyError, check_name, check_sites};
use crate::{Aggregate, DomainEvent};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Key use is recorded at most this often per key (last-used time and audit).
pub const USE_RECORD_EVERY_SECS: i64 = 60;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ApiKey {
    pub created: bool,
    pub account_id: Option<Uuid>,
    pub name: String,
    pub role: Option<Role>,
    pub site_ids: Vec<Uuid>,
    pub secret_hash: String,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked: bool,
}

impl ApiKey {
    pub fn live(&self) -> bool {
        self.created && !self.revoked
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ApiKeyCommand {
    Create {
        account_id: Uuid,
        name: String,
        role: Role,
        site_ids: Vec<Uuid>,
        prefix: String,
        secret_hash: String,
    },
    RecordUse {
        at: DateTime<Utc>,
    },
    Revoke,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ApiKeyEvent {
    ApiKeyCreated {
        account_id: Uuid,
        name: String,
        role: Role,
        site_ids: Vec<Uuid>,
        prefix: String,
        secret_hash: String,
    },
    ApiKeyUsed {
        at: DateTime<Utc>,
    },
    ApiKeyRevoked {},
}

impl DomainEvent for ApiKeyEvent {
    fn event_type(&self) -> &'static str {
        match self {
            ApiKeyEvent::ApiKeyCreated { .. } => "ApiKeyCreated",
            ApiKeyEvent::ApiKeyUsed { .. } => "ApiKeyUsed",
            ApiKeyEvent::ApiKeyRevoked { .. } => "ApiKeyRevoked",
        }
    }
}

impl Aggregate for ApiKey {
    const TYPE: &'static str = "api_key";
    type Command = ApiKeyCommand;
    type Event = ApiKeyEvent;
    type Error = TenancyError;

    fn decide(&self, command: ApiKeyCommand) -> Result<Vec<ApiKeyEvent>, TenancyError> {
        match command {
            ApiKeyCommand::Create {
                account_id,
                name,
                role,
                site_ids,
                prefix,
                secret_hash,
            } => {
                if self.created {
                    return Err(TenancyError::AlreadyExists("api key"));
                }
                if !role.grantable() {
                    return Err(TenancyError::InvalidRole(role.as_str()));
                }
                Ok(vec![ApiKeyEvent::ApiKeyCreated {
                    account_id,
                    name: check_name(&name, "name")?,
                    role,
                    site_ids: check_sites(&site_ids)?,
                    prefix,
                    secret_hash,
                }])
            }
            ApiKeyCommand::RecordUse { at } => {
                if !self.created {
                    return Err(TenancyError::NotFound("api key"));
                }
                if self.revoked {
                    return Err(TenancyError::KeyRevoked);
                }
                let recent = self
                    .last_used_at
                    .is_some_and(|l| (at - l).num_seconds() < USE_RECORD_EVERY_SECS);
                if recent {
                    return Ok(vec![]);
                }
                Ok(vec![ApiKeyEvent::ApiKeyUsed { at }])
            }
            ApiKeyCommand::Revoke => {
                if !self.created {
                    return Err(TenancyError::NotFound("api key"));
                }
                if self.revoked {
                    return Ok(vec![]);
                }
                Ok(vec![ApiKeyEvent::ApiKeyRevoked {}])
            }
        }
    }

    fn apply(&mut self, event: &ApiKeyEvent) {
        match event {
            ApiKeyEvent::ApiKeyCreated {
                account_id,
                name,
                role,
                site_ids,
                secret_hash,
                ..
            } => {
                self.created = true;
                self.account_id = Some(*account_id);
                self.name = name.clone();
                self.role = Some(*role);
                self.site_ids = site_ids.clone();
                self.secret_hash = secret_hash.clone();
            }
            ApiKeyEvent::ApiKeyUsed { at } => self.last_used_at = Some(*at),
            ApiKeyEvent::ApiKeyRevoked {} => self.revoked = true,
        }
    }
}
