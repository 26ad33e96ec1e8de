//! One aggregate per normalised email address (the aggregate id): two
//! sign-ups with one email race on the same aggregate, and the store's
//! optimistic concurrency lets exactly one win.

use super::TenancyError;
use crate::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Login {
    /// The user holding this email now (`None`: free).
    pub user_id: Option<Uuid>,
    pub account_id: Option<Uuid>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum LoginCommand {
    Claim {
        user_id: Uuid,
        account_id: Uuid,
    },
    Release {
        user_id: Uuid,
    },
    /// A wrong password for this email (the audit trail of failed logins).
    RecordFailure,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum LoginEvent {
    LoginClaimed { user_id: Uuid, account_id: Uuid },
    LoginReleased { user_id: Uuid },
    LoginFailed { user_id: Uuid },
}

impl DomainEvent for LoginEvent {
    fn event_type(&self) -> &'static str {
        match self {
            LoginEvent::LoginClaimed { .. } => "LoginClaimed",
            LoginEvent::LoginReleased { .. } => "LoginReleased",
            LoginEvent::LoginFailed { .. } => "LoginFailed",
        }
    }
}

impl Aggregate for Login {
    const TYPE: &'static str = "login";
    type Command = LoginCommand;
    type Event = LoginEvent;
    type Error = TenancyError;

    fn decide(&self, command: LoginCommand) -> Result<Vec<LoginEvent>, TenancyError> {
        match command {
            LoginCommand::Claim {
                user_id,
                account_id,
            } => {
                if self.user_id.is_some() {
                    return Err(TenancyError::EmailTaken);
                }
                Ok(vec![LoginEvent::LoginClaimed {
                    user_id,
                    account_id,
                }])
            }
            LoginCommand::Release { user_id } => {
                if self.user_id != Some(user_id) {
                    return Ok(vec![]);
                }
                Ok(vec![LoginEvent::LoginReleased { user_id }])
            }
            LoginCommand::RecordFailure => Ok(self
                .user_id
                .map(|user_id| LoginEvent::LoginFailed { user_id })
                .into_iter()
                .collect()),
        }
    }

    fn apply(&mut self, event: &LoginEvent) {
        match event {
            LoginEvent::LoginClaimed {
                user_id,
                account_id,
            } => {
                self.user_id = Some(*user_id);
                self.account_id = Some(*account_id);
            }
            LoginEvent::LoginReleased { .. } => {
                self.user_id = None;
                self.account_id = None;
            }
            LoginEvent::LoginFailed { .. } => {}
        }
    }
}
