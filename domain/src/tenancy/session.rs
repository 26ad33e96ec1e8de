//! A refresh-token family. Each refresh token carries the family id and a
//! generation; only the current generation may refresh (and moves it on).
//! Presenting an older one means the token was copied: the whole family is
//! revoked, so the thief's and the victim's tokens both stop working.

use super::TenancyError;
use crate::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Session {
    pub started: bool,
    pub user_id: Option<Uuid>,
    pub account_id: Option<Uuid>,
    pub generation: u32,
    pub revoked: Option<String>,
}

impl Session {
    pub fn live(&self) -> bool {
        self.started && self.revoked.is_none()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum SessionCommand {
    Start {
        user_id: Uuid,
        account_id: Uuid,
        method: String,
    },
    /// Present the refresh token of `generation`.
    Refresh {
        generation: u32,
    },
    Revoke {
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SessionEvent {
    SessionStarted {
        user_id: Uuid,
        account_id: Uuid,
        method: String,
    },
    SessionRefreshed {
        generation: u32,
    },
    SessionRevoked {
        reason: String,
    },
}

impl DomainEvent for SessionEvent {
    fn event_type(&self) -> &'static str {
        match self {
            SessionEvent::SessionStarted { .. } => "SessionStarted",
            SessionEvent::SessionRefreshed { .. } => "SessionRefreshed",
            SessionEvent::SessionRevoked { .. } => "SessionRevoked",
        }
    }
}

pub const REUSE_DETECTED: &str = "refresh_token_reuse";

impl Aggregate for Session {
    const TYPE: &'static str = "session";
    type Command = SessionCommand;
    type Event = SessionEvent;
    type Error = TenancyError;

    fn decide(&self, command: SessionCommand) -> Result<Vec<SessionEvent>, TenancyError> {
        match command {
            SessionCommand::Start {
                user_id,
                account_id,
                method,
            } => {
                if self.started {
                    return Err(TenancyError::AlreadyExists("session"));
                }
                Ok(vec![SessionEvent::SessionStarted {
                    user_id,
                    account_id,
                    method,
                }])
            }
            SessionCommand::Refresh { generation } => {
                if !self.started {
                    return Err(TenancyError::SessionRevoked);
                }
                if self.revoked.is_some() {
                    return Err(TenancyError::SessionRevoked);
                }
                if generation != self.generation {
                    return Ok(vec![SessionEvent::SessionRevoked {
                        reason: REUSE_DETECTED.into(),
                    }]);
                }
                Ok(vec![SessionEvent::SessionRefreshed {
                    generation: self.generation + 1,
                }])
            }
            SessionCommand::Revoke { reason } => {
                if !self.started || self.revoked.is_some() {
                    return Ok(vec![]);
                }
                Ok(vec![SessionEvent::SessionRevoked { reason }])
            }
        }
    }

    fn apply(&mut self, event: &SessionEvent) {
        match event {
            SessionEvent::SessionStarted {
                user_id,
                account_id,
                ..
            } => {
                self.started = true;
                self.user_id = Some(*user_id);
                self.account_id = Some(*account_id);
            }
            SessionEvent::SessionRefreshed { generation } => self.generation = *generation,
            SessionEvent::SessionRevoked { reason } => self.revoked = Some(reason.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::given_when;

    #[test]
    fn reuse_of_an_old_generation_revokes_the_family() {
        let started = SessionEvent::SessionStarted {
            user_id: Uuid::nil(),
            account_id: Uuid::nil(),
            method: "password".into(),
        };
        let rotated = SessionEvent::SessionRefreshed { generation: 1 };
        assert_eq!(
            given_when::<Session>(
                std::slice::from_ref(&started),
                SessionCommand::Refresh { generation: 0 }
            )
            .unwrap(),
            vec![rotated.clone()]
        );
        assert_eq!(
            given_when::<Session>(
                &[started.clone(), rotated.clone()],
                SessionCommand::Refresh { generation: 0 }
            )
            .unwrap(),
            vec![SessionEvent::SessionRevoked {
                reason: REUSE_DETECTED.into()
            }]
        );
        let revoked = SessionEvent::SessionRevoked {
            reason: "logout".into(),
        };
        assert_eq!(
            given_when::<Session>(
                &[started, rotated, revoked],
                SessionCommand::Refresh { generation: 1 }
            )
            .unwrap_err(),
            TenancyError::SessionRevoked
        );
    }
}
