use crate::{Aggregate, DomainError, DomainEvent, ErrorKind};
use serde::{Deserialize, Serialize};

/// The largest amount one command may move (guards against overflow and typos).
pub const MAX_AMOUNT: i64 = 1_000_000_000_000;
const MAX_NAME: usize = 200;
const MAX_REASON: usize = 500;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Account {
    pub opened: bool,
    pub name: String,
    pub balance: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum AccountCommand {
    Open { name: String },
    GrantCredits { amount: i64, reason: String },
    SpendCredits { amount: i64, reason: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AccountEvent {
    AccountOpened {
        name: String,
    },
    CreditsGranted {
        amount: i64,
        balance_after: i64,
        reason: String,
    },
    CreditsSpent {
        amount: i64,
        balance_after: i64,
        reason: String,
    },
}

impl DomainEvent for AccountEvent {
    fn event_type(&self) -> &'static str {
        match self {
            AccountEvent::AccountOpened { .. } => "AccountOpened",
            AccountEvent::CreditsGranted { .. } => "CreditsGranted",
            AccountEvent::CreditsSpent { .. } => "CreditsSpent",
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AccountError {
    #[error("account does not exist")]
    NotFound,
    #[error("account already exists")]
    AlreadyOpened,
    #[error("name must be 1 to {MAX_NAME} characters")]
    InvalidName,
    #[error("amount must be between 1 and {MAX_AMOUNT}")]
    InvalidAmount,
    #[error("reason must be at most {MAX_REASON} characters")]
    InvalidReason,
    #[error("insufficient credits: balance {balance}, requested {requested}")]
    InsufficientCredits { balance: i64, requested: i64 },
}

impl DomainError for AccountError {
    fn code(&self) -> &'static str {
        match self {
            AccountError::NotFound => "NOT_FOUND",
            AccountError::AlreadyOpened => "ALREADY_EXISTS",
            AccountError::InvalidName => "INVALID_NAME",
            AccountError::InvalidAmount => "INVALID_AMOUNT",
            AccountError::InvalidReason => "INVALID_REASON",
            AccountError::InsufficientCredits { .. } => "INSUFFICIENT_CREDITS",
        }
    }
    fn kind(&self) -> ErrorKind {
        match self {
            AccountError::NotFound => ErrorKind::NotFound,
            AccountError::AlreadyOpened => ErrorKind::Conflict,
            AccountError::InsufficientCredits { .. } => ErrorKind::InsufficientCredits,
            _ => ErrorKind::Validation,
        }
    }
}

fn check_amount(amount: i64) -> Result<(), AccountError> {
    if (1..=MAX_AMOUNT).contains(&amount) {
        Ok(())
    } else {
        Err(AccountError::InvalidAmount)
    }
}

fn check_reason(reason: &str) -> Result<(), AccountError> {
    if reason.chars().count() <= MAX_REASON {
        Ok(())
    } else {
        Err(AccountError::InvalidReason)
    }
}

impl Aggregate for Account {
    const TYPE: &'static str = "account";
    type Command = AccountCommand;
    type Event = AccountEvent;
    type Error = AccountError;

    fn decide(&self, command: AccountCommand) -> Result<Vec<AccountEvent>, AccountError> {
        match command {
            AccountCommand::Open { name } => {
                if self.opened {
                    return Err(AccountError::AlreadyOpened);
                }
                let name = name.trim().to_string();
                if name.is_empty() || name.chars().count() > MAX_NAME {
                    return Err(AccountError::InvalidName);
                }
                Ok(vec![AccountEvent::AccountOpened { name }])
            }
            AccountCommand::GrantCredits { amount, reason } => {
                if !self.opened {
                    return Err(AccountError::NotFound);
                }
                check_amount(amount)?;
                check_reason(&reason)?;
                let balance_after = self
                    .balance
                    .checked_add(amount)
                    .ok_or(AccountError::InvalidAmount)?;
                Ok(vec![AccountEvent::CreditsGranted {
                    amount,
                    balance_after,
                    reason,
                }])
            }
            AccountCommand::SpendCredits { amount, reason } => {
                if !self.opened {
                    return Err(AccountError::NotFound);
                }
                check_amount(amount)?;
                check_reason(&reason)?;
                if amount > self.balance {
                    return Err(AccountError::InsufficientCredits {
                        balance: self.balance,
                        requested: amount,
                    });
                }
                Ok(vec![AccountEvent::CreditsSpent {
                    amount,
                    balance_after: self.balance - amount,
                    reason,
                }])
            }
        }
    }

    fn apply(&mut self, event: &AccountEvent) {
        match event {
            AccountEvent::AccountOpened { name } => {
                self.opened = true;
                self.name = name.clone();
            }
            AccountEvent::CreditsGranted { balance_after, .. }
            | AccountEvent::CreditsSpent { balance_after, .. } => {
                self.balance = *balance_after;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::given_when;

    fn opened() -> AccountEvent {
        AccountEvent::AccountOpened {
            name: "Acme".into(),
        }
    }

    #[test]
    fn open_then_grant_then_spend() {
        let granted = given_when::<Account>(
            &[opened()],
            AccountCommand::GrantCredits {
                amount: 10,
                reason: "plan".into(),
            },
        )
        .unwrap();
        assert_eq!(
            granted,
            vec![AccountEvent::CreditsGranted {
                amount: 10,
                balance_after: 10,
                reason: "plan".into()
            }]
        );
        let spent = given_when::<Account>(
            &[opened(), granted[0].clone()],
            AccountCommand::SpendCredits {
                amount: 4,
                reason: "x".into(),
            },
        )
        .unwrap();
        assert_eq!(
            spent,
            vec![AccountEvent::CreditsSpent {
                amount: 4,
                balance_after: 6,
                reason: "x".into()
            }]
        );
    }

    #[test]
    fn spend_never_overdraws() {
        let given = [
            opened(),
            AccountEvent::CreditsGranted {
                amount: 3,
                balance_after: 3,
                reason: String::new(),
            },
        ];
        let err = given_when::<Account>(
            &given,
            AccountCommand::SpendCredits {
                amount: 4,
                reason: String::new(),
            },
        )
        .unwrap_err();
        assert_eq!(
            err,
            AccountError::InsufficientCredits {
                balance: 3,
                requested: 4
            }
        );
        assert_eq!(err.kind(), ErrorKind::InsufficientCredits);
    }

    #[test]
    fn rejects_bad_amounts_and_names() {
        for amount in [0, -1, MAX_AMOUNT + 1, i64::MIN] {
            let err = given_when::<Account>(
                &[opened()],
                AccountCommand::GrantCredits {
                    amount,
                    reason: String::new(),
                },
            )
            .unwrap_err();
            assert_eq!(err, AccountError::InvalidAmount);
        }
        let overflow = given_when::<Account>(
            &[
                opened(),
                AccountEvent::CreditsGranted {
                    amount: 1,
                    balance_after: i64::MAX,
                    reason: String::new(),
                },
            ],
            AccountCommand::GrantCredits {
                amount: 1,
                reason: String::new(),
            },
        );
        assert_eq!(overflow.unwrap_err(), AccountError::InvalidAmount);
        assert_eq!(
            given_when::<Account>(&[], AccountCommand::Open { name: "  ".into() }).unwrap_err(),
            AccountError::InvalidName
        );
        assert_eq!(
            given_when::<Account>(&[opened()], AccountCommand::Open { name: "b".into() })
                .unwrap_err(),
            AccountError::AlreadyOpened
        );
        assert_eq!(
            given_when::<Account>(
                &[],
                AccountCommand::SpendCredits {
                    amount: 1,
                    reason: String::new()
                }
            )
            .unwrap_err(),
            AccountError::NotFound
        );
    }
}
