//! A person in one account. The password arrives hashed and sealed
//! (`credential`); this crate never sees it in clear.

use super::{Role, TenancyError, check_name, check_sites};
use crate::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct User {
    pub registered: bool,
    pub deleted: bool,
    pub account_id: Option<Uuid>,
    pub email: String,
    pub name: String,
    pub role: Option<Role>,
    pub credential: String,
    pub site_ids: Vec<Uuid>,
}

impl User {
    pub fn active(&self) -> bool {
        self.registered && !self.deleted
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum UserCommand {
    Register {
        account_id: Uuid,
        email: String,
        name: String,
        role: Role,
        credential: String,
    },
    ChangeRole {
        role: Role,
    },
    /// Name and/or role in one go (both or neither).
    Update {
        name: Option<String>,
        role: Option<Role>,
    },
    Rename {
        name: String,
    },
    SetSites {
        site_ids: Vec<Uuid>,
    },
    ChangeCredential {
        credential: String,
    },
    Delete,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum UserEvent {
    UserRegistered {
        account_id: Uuid,
        email: String,
        name: String,
        role: Role,
        credential: String,
    },
    UserRoleChanged {
        role: Role,
    },
    UserRenamed {
        name: String,
    },
    UserSitesSet {
        site_ids: Vec<Uuid>,
    },
    UserCredentialChanged {
        credential: String,
    },
    UserDeleted {},
}

impl DomainEvent for UserEvent {
    fn event_type(&self) -> &'static str {
        match self {
            UserEvent::UserRegistered { .. } => "UserRegistered",
            UserEvent::UserRoleChanged { .. } => "UserRoleChanged",
            UserEvent::UserRenamed { .. } => "UserRenamed",
            UserEvent::UserSitesSet { .. } => "UserSitesSet",
            UserEvent::UserCredentialChanged { .. } => "UserCredentialChanged",
            UserEvent::UserDeleted { .. } => "UserDeleted",
        }
    }
}

impl Aggregate for User {
    const TYPE: &'static str = "user";
    type Command = UserCommand;
    type Event = UserEvent;
    type Error = TenancyError;

    fn decide(&self, command: UserCommand) -> Result<Vec<UserEvent>, TenancyError> {
        if let UserCommand::Register {
            account_id,
            email,
            name,
            role,
            credential,
        } = command
        {
            if self.registered {
                return Err(TenancyError::AlreadyExists("user"));
            }
            let name = if name.trim().is_empty() {
                email.split('@').next().unwrap_or_default().to_string()
            } else {
                check_name(&name, "name")?
            };
            return Ok(vec![UserEvent::UserRegistered {
                account_id,
                email,
                name,
                role,
                credential,
            }]);
        }
        if !self.active() {
            return Err(TenancyError::NotFound("user"));
        }
        let owner = self.role == Some(Role::Owner);
        match command {
            UserCommand::Register { .. } => unreachable!("handled above"),
            UserCommand::Update { name, role } => {
                let mut next = self.clone();
                let mut events = vec![];
                let steps = [
                    name.map(|name| UserCommand::Rename { name }),
                    role.map(|role| UserCommand::ChangeRole { role }),
                ];
                for c in steps.into_iter().flatten() {
                    for e in next.decide(c)? {
                        next.apply(&e);
                        events.push(e);
                    }
                }
                Ok(events)
            }
            UserCommand::ChangeRole { role } => {
                if owner && role != Role::Owner {
                    return Err(TenancyError::OwnerProtected);
                }
                if !owner && !role.grantable() {
                    return Err(TenancyError::InvalidRole(role.as_str()));
                }
                if self.role == Some(role) {
                    return Ok(vec![]);
                }
                Ok(vec![UserEvent::UserRoleChanged { role }])
            }
            UserCommand::Rename { name } => {
                let name = check_name(&name, "name")?;
                if name == self.name {
                    return Ok(vec![]);
                }
                Ok(vec![UserEvent::UserRenamed { name }])
            }
            UserCommand::SetSites { site_ids } => {
                let site_ids = check_sites(&site_ids)?;
                if site_ids == self.site_ids {
                    return Ok(vec![]);
                }
                Ok(vec![UserEvent::UserSitesSet { site_ids }])
            }
            UserCommand::ChangeCredential { credential } => {
                Ok(vec![UserEvent::UserCredentialChanged { credential }])
            }
            UserCommand::Delete => {
                if owner {
                    return Err(TenancyError::OwnerProtected);
                }
                Ok(vec![UserEvent::UserDeleted {}])
            }
        }
    }

    fn apply(&mut self, event: &UserEvent) {
        match event {
            UserEvent::UserRegistered {
                account_id,
                email,
                name,
                role,
                credential,
            } => {
                self.registered = true;
                self.account_id = Some(*account_id);
                self.email = email.clone();
                self.name = name.clone();
                self.role = Some(*role);
                self.credential = credential.clone();
            }
            UserEvent::UserRoleChanged { role } => self.role = Some(*role),
            UserEvent::UserRenamed { name } => self.name = name.clone(),
            UserEvent::UserSitesSet { site_ids } => self.site_ids = site_ids.clone(),
            UserEvent::UserCredentialChanged { credential } => self.credential = credential.clone(),
            UserEvent::UserDeleted {} => self.deleted = true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::given_when;

    fn registered(role: Role) -> UserEvent {
        UserEvent::UserRegistered {
            account_id: Uuid::nil(),
            email: "a@b.io".into(),
            name: "A".into(),
            role,
            credential: "sealed".into(),
        }
    }

    #[test]
    fn owner_is_protected_and_operator_roles_are_not_grantable() {
        let owner = [registered(Role::Owner)];
        assert_eq!(
            given_when::<User>(&owner, UserCommand::Delete).unwrap_err(),
            TenancyError::OwnerProtected
        );
        assert_eq!(
            given_when::<User>(&owner, UserCommand::ChangeRole { role: Role::Admin }).unwrap_err(),
            TenancyError::OwnerProtected
        );
        let editor = [registered(Role::Editor)];
        assert_eq!(
            given_when::<User>(
                &editor,
                UserCommand::ChangeRole {
                    role: Role::Developer
                }
            )
            .unwrap_err(),
            TenancyError::InvalidRole("developer")
        );
        let deleted = [registered(Role::Editor), UserEvent::UserDeleted {}];
        assert_eq!(
            given_when::<User>(&deleted, UserCommand::Rename { name: "x".into() }).unwrap_err(),
            TenancyError::NotFound("user")
        );
    }
}
