//! Who sends a command or asks a query, and what they may do. Every use
//! case takes a [`Caller`]; its checks are the only authorisation code
//! (the gateway builds one from a token or an API key).
//!
//! - owner, admin: the whole account; editor, viewer: granted sites only;
//!   viewer never writes; editor does not manage users, keys or billing.
//! - developer / system bot (operators, created by the CLI only): any
//!   account, chosen per request.
//! - Another account's ids answer "not found", exactly like ids that do
//!   not exist.

use crate::bus::{CommandContext, CommandError};
use igny8_domain::ErrorKind;
use igny8_domain::tenancy::Role;
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct Caller {
    /// The account acted on (`nil` for an operator who named none).
    pub account_id: Uuid,
    pub role: Role,
    pub user_id: Option<Uuid>,
    pub key_id: Option<Uuid>,
    pub session_id: Option<Uuid>,
    /// `None`: every site of the account.
    pub sites: Option<Vec<Uuid>>,
}

impl Caller {
    /// `user:<id>`, `api_key:<id>` (the `actor` of its events).
    pub fn actor(&self) -> String {
        match (self.user_id, self.key_id) {
            (Some(u), _) => format!("user:{u}"),
            (None, Some(k)) => format!("api_key:{k}"),
            _ => "anonymous".into(),
        }
    }

    pub fn is_operator(&self) -> bool {
        self.role.is_operator()
    }

    /// The account this request acts on; operators must name one.
    pub fn account(&self) -> Result<Uuid, CommandError> {
        if self.account_id.is_nil() {
            return Err(CommandError::refused(
                ErrorKind::BadRequest,
                "ACCOUNT_REQUIRED",
                "operators name the account with the X-Account-Id header",
            ));
        }
        Ok(self.account_id)
    }

    pub fn require_write(&self) -> Result<(), CommandError> {
        if self.role.can_write() {
            Ok(())
        } else {
            Err(CommandError::forbidden("viewers cannot change anything"))
        }
    }

    pub fn require_manage(&self) -> Result<(), CommandError> {
        if self.role.can_manage_account() {
            Ok(())
        } else {
            Err(CommandError::forbidden(
                "only owners and admins manage users, API keys, sites and sectors",
            ))
        }
    }

    pub fn require_billing(&self) -> Result<(), CommandError> {
        if self.role.can_see_billing() {
            Ok(())
        } else {
            Err(CommandError::forbidden(
                "only owners and admins see billing details",
            ))
        }
    }

    pub fn require_operator(&self) -> Result<(), CommandError> {
        if self.is_operator() {
            Ok(())
        } else {
            Err(CommandError::forbidden("operators only"))
        }
    }

    pub fn can_see_site(&self, site_id: Uuid) -> bool {
        self.sites.as_ref().is_none_or(|s| s.contains(&site_id))
    }

    /// The caller's granted sites as strings (`None`: all of them), for
    /// read-model filters.
    pub fn site_filter(&self) -> Option<Vec<String>> {
        self.sites
            .as_ref()
            .map(|v| v.iter().map(Uuid::to_string).collect())
    }

    /// Metadata for the commands of a request with this id.
    pub fn context_for(&self, request_id: String) -> CommandContext {
        CommandContext {
            account_id: (!self.account_id.is_nil()).then(|| self.account_id.to_string()),
            actor: self.actor(),
            correlation_id: request_id.clone(),
            request_id,
            ..CommandContext::default()
        }
    }
}
