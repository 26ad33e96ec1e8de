//! The `account` aggregate: an account's credit balance, its open
//! reservations (credits held for running jobs) and its subscription period.
//!
//! `decide` validates amounts (1 to [`MAX_AMOUNT`] milli-credits), reasons
//! and reservation ids and never lets the balance, or what is available
//! (balance minus reserved), go below zero; every credit event carries the
//! resulting `balance_after` / `reserved_after`.

use crate::{Aggregate, DomainError, DomainEvent, ErrorKind};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Milli-credits in one credit. Every amount here is an integer number of
/// milli-credits (the seeds price some operations at 0.5 credit).
pub const MILLI: i64 = 1000;
/// The largest amount one command may move: 10^12 credits (guards against
/// overflow and typos).
pub const MAX_AMOUNT: i64 = 1_000_000_000_000 * MILLI;

/// `249500` milli-credits → `"249.5"`.
pub fn credits(milli: i64) -> String {
    let sign = if milli < 0 { "-" } else { "" };
    let m = milli.unsigned_abs();
    let (whole, frac) = (m / 1000, m % 1000);
    if frac == 0 {
        format!("{sign}{whole}")
    } else {
        format!(
            "{sign}{whole}.{}",
            format!("{frac:03}").trim_end_matches('0')
        )
    }
}
const MAX_NAME: usize = 200;
const MAX_REASON: usize = 500;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Account {
    pub opened: bool,
    pub name: String,
    pub balance: i64,
    /// Open reservations by id (credits held for running jobs).
    #[serde(default)]
    pub reservations: BTreeMap<String, i64>,
    #[serde(default)]
    pub plan: Option<String>,
    #[serde(default)]
    pub period_start: Option<DateTime<Utc>>,
    #[serde(default)]
    pub period_end: Option<DateTime<Utc>>,
}

impl Account {
    pub fn reserved(&self) -> i64 {
        self.reservations.values().sum()
    }
    /// What a spend or a new reservation may use.
    pub fn available(&self) -> i64 {
        self.balance - self.reserved()
    }
}

pub const MAX_RESERVATION_ID: usize = 100;

#[derive(Debug, Clone, PartialEq)]
pub enum AccountCommand {
    Open {
        name: String,
    },
    GrantCredits {
        amount: i64,
        reason: String,
    },
    SpendCredits {
        amount: i64,
        reason: String,
    },
    /// Hold credits for a job; fails when `available < amount`.
    Reserve {
        reservation_id: String,
        amount: i64,
        reason: String,
    },
    /// Charge the actual cost (≤ reserved); the rest returns.
    Capture {
        reservation_id: String,
        amount: i64,
    },
    /// Return the whole reservation (failure, cancel). Unknown id: nothing.
    Release {
        reservation_id: String,
        reason: String,
    },
    Subscribe {
        plan: String,
        at: DateTime<Utc>,
    },
    /// Move `amount` of an open reservation (a run's budget) to a new one
    /// (a job's): nothing becomes available on the way, so a job funded
    /// by a run can never take more than the run holds.
    Transfer {
        from: String,
        reservation_id: String,
        amount: i64,
        reason: String,
    },
    /// Start the next period of the plan at the end of the current one and
    /// grant the plan's included credits: once per period (`period_end`
    /// must be the current period's end).
    RenewPeriod {
        period_end: DateTime<Utc>,
    },
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
    CreditsReserved {
        reservation_id: String,
        amount: i64,
        reserved_after: i64,
        reason: String,
    },
    CreditsCaptured {
        reservation_id: String,
        amount: i64,
        released: i64,
        balance_after: i64,
        reserved_after: i64,
    },
    ReservationReleased {
        reservation_id: String,
        amount: i64,
        reserved_after: i64,
        reason: String,
    },
    SubscriptionStarted {
        plan: String,
        period_start: DateTime<Utc>,
        period_end: DateTime<Utc>,
    },
    ReservationTransferred {
        from: String,
        reservation_id: String,
        amount: i64,
        /// What the reservation moved from holds after.
        from_after: i64,
        reserved_after: i64,
        reason: String,
    },
}

impl DomainEvent for AccountEvent {
    fn event_type(&self) -> &'static str {
        match self {
            AccountEvent::AccountOpened { .. } => "AccountOpened",
            AccountEvent::CreditsGranted { .. } => "CreditsGranted",
            AccountEvent::CreditsSpent { .. } => "CreditsSpent",
            AccountEvent::CreditsReserved { .. } => "CreditsReserved",
            AccountEvent::CreditsCaptured { .. } => "CreditsCaptured",
            AccountEvent::ReservationReleased { .. } => "ReservationReleased",
            AccountEvent::SubscriptionStarted { .. } => "SubscriptionStarted",
            AccountEvent::ReservationTransferred { .. } => "ReservationTransferred",
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
    #[error("amount must be at least 0.001 and at most 1000000000000 credits")]
    InvalidAmount,
    #[error("reason must be at most {MAX_REASON} characters, without control characters")]
    InvalidReason,
    #[error("insufficient credits: {} available, {} requested", credits(*available), credits(*requested))]
    InsufficientCredits { available: i64, requested: i64 },
    #[error("reservation {0:?} is not open")]
    ReservationNotFound(String),
    #[error("reservation {0:?} already exists with another amount")]
    ReservationConflict(String),
    #[error("capture of {} credits exceeds the reservation of {}", credits(*amount), credits(*reserved))]
    CaptureExceedsReservation { amount: i64, reserved: i64 },
    #[error("reservation id must be 1 to {MAX_RESERVATION_ID} characters")]
    InvalidReservationId,
    #[error("unknown plan {0:?}")]
    UnknownPlan(String),
    #[error("the budget holds {} credits, {} were asked", credits(*held), credits(*requested))]
    BudgetExceeded { held: i64, requested: i64 },
    #[error("that period was renewed already")]
    PeriodRenewed,
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
            AccountError::ReservationNotFound(_) => "RESERVATION_NOT_FOUND",
            AccountError::ReservationConflict(_) => "RESERVATION_CONFLICT",
            AccountError::CaptureExceedsReservation { .. } => "CAPTURE_EXCEEDS_RESERVATION",
            AccountError::InvalidReservationId => "INVALID_RESERVATION_ID",
            AccountError::UnknownPlan(_) => "UNKNOWN_PLAN",
            AccountError::BudgetExceeded { .. } => "RUN_BUDGET_EXCEEDED",
            AccountError::PeriodRenewed => "PERIOD_RENEWED",
        }
    }
    fn kind(&self) -> ErrorKind {
        match self {
            AccountError::NotFound => ErrorKind::NotFound,
            AccountError::AlreadyOpened
            | AccountError::ReservationNotFound(_)
            | AccountError::ReservationConflict(_)
            | AccountError::PeriodRenewed => ErrorKind::Conflict,
            AccountError::BudgetExceeded { .. } => ErrorKind::InsufficientCredits,
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

fn check_reservation_id(id: &str) -> Result<(), AccountError> {
    if id.is_empty() || id.len() > MAX_RESERVATION_ID || id.chars().any(|c| c.is_control()) {
        Err(AccountError::InvalidReservationId)
    } else {
        Ok(())
    }
}

fn check_reason(reason: &str) -> Result<(), AccountError> {
    let printable = !reason
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'));
    if reason.chars().count() <= MAX_REASON && printable {
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
                if amount > self.available() {
                    return Err(AccountError::InsufficientCredits {
                        available: self.available(),
                        requested: amount,
                    });
                }
                Ok(vec![AccountEvent::CreditsSpent {
                    amount,
                    balance_after: self.balance - amount,
                    reason,
                }])
            }
            AccountCommand::Reserve {
                reservation_id,
                amount,
                reason,
            } => {
                if !self.opened {
                    return Err(AccountError::NotFound);
                }
                check_reservation_id(&reservation_id)?;
                check_amount(amount)?;
                check_reason(&reason)?;
                match self.reservations.get(&reservation_id) {
                    Some(a) if *a == amount => return Ok(vec![]),
                    Some(_) => return Err(AccountError::ReservationConflict(reservation_id)),
                    None => {}
                }
                if amount > self.available() {
                    return Err(AccountError::InsufficientCredits {
                        available: self.available(),
                        requested: amount,
                    });
                }
                Ok(vec![AccountEvent::CreditsReserved {
                    reservation_id,
                    amount,
                    reserved_after: self.reserved() + amount,
                    reason,
                }])
            }
            AccountCommand::Capture {
                reservation_id,
                amount,
            } => {
                if !self.opened {
                    return Err(AccountError::NotFound);
                }
                let reserved = *self
                    .reservations
                    .get(&reservation_id)
                    .ok_or_else(|| AccountError::ReservationNotFound(reservation_id.clone()))?;
                if amount < 0 {
                    return Err(AccountError::InvalidAmount);
                }
                if amount > reserved {
                    return Err(AccountError::CaptureExceedsReservation { amount, reserved });
                }
                Ok(vec![AccountEvent::CreditsCaptured {
                    reservation_id,
                    amount,
                    released: reserved - amount,
                    balance_after: self.balance - amount,
                    reserved_after: self.reserved() - reserved,
                }])
            }
            AccountCommand::Release {
                reservation_id,
                reason,
            } => {
                if !self.opened {
                    return Err(AccountError::NotFound);
                }
                check_reason(&reason)?;
                let Some(amount) = self.reservations.get(&reservation_id) else {
                    return Ok(vec![]);
                };
                Ok(vec![AccountEvent::ReservationReleased {
                    reservation_id,
                    amount: *amount,
                    reserved_after: self.reserved() - amount,
                    reason,
                }])
            }
            AccountCommand::Subscribe { plan, at } => {
                if !self.opened {
                    return Err(AccountError::NotFound);
                }
                if super::plan(&plan).is_none() {
                    return Err(AccountError::UnknownPlan(plan));
                }
                Ok(vec![AccountEvent::SubscriptionStarted {
                    plan,
                    period_start: at,
                    period_end: at + chrono::Duration::days(30),
                }])
            }
            AccountCommand::Transfer {
                from,
                reservation_id,
                amount,
                reason,
            } => {
                if !self.opened {
                    return Err(AccountError::NotFound);
                }
                check_reservation_id(&reservation_id)?;
                check_amount(amount)?;
                check_reason(&reason)?;
                match self.reservations.get(&reservation_id) {
                    Some(a) if *a == amount => return Ok(vec![]),
                    Some(_) => return Err(AccountError::ReservationConflict(reservation_id)),
                    None => {}
                }
                let held = self.reservations.get(&from).copied().unwrap_or(0);
                if amount > held {
                    return Err(AccountError::BudgetExceeded {
                        held,
                        requested: amount,
                    });
                }
                Ok(vec![AccountEvent::ReservationTransferred {
                    from,
                    reservation_id,
                    amount,
                    from_after: held - amount,
                    reserved_after: self.reserved(),
                    reason,
                }])
            }
            AccountCommand::RenewPeriod { period_end } => {
                if !self.opened {
                    return Err(AccountError::NotFound);
                }
                let plan = self
                    .plan
                    .clone()
                    .unwrap_or_else(|| super::DEFAULT_PLAN.to_string());
                // Read models keep microseconds: compare at that precision.
                let micros = |t: DateTime<Utc>| t.timestamp_micros();
                let Some(period_end) = self.period_end.filter(|e| micros(*e) == micros(period_end))
                else {
                    return Err(AccountError::PeriodRenewed);
                };
                let included = super::plan(&plan)
                    .ok_or_else(|| AccountError::UnknownPlan(plan.clone()))?
                    .included_milli();
                let mut out = vec![AccountEvent::SubscriptionStarted {
                    plan: plan.clone(),
                    period_start: period_end,
                    period_end: period_end + chrono::Duration::days(30),
                }];
                if included > 0 {
                    out.push(AccountEvent::CreditsGranted {
                        amount: included,
                        balance_after: self.balance + included,
                        reason: format!(
                            "{plan} plan: included credits of the period from {}",
                            period_end.format("%Y-%m-%d")
                        ),
                    });
                }
                Ok(out)
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
            AccountEvent::CreditsReserved {
                reservation_id,
                amount,
                ..
            } => {
                self.reservations.insert(reservation_id.clone(), *amount);
            }
            AccountEvent::CreditsCaptured {
                reservation_id,
                balance_after,
                ..
            } => {
                self.reservations.remove(reservation_id);
                self.balance = *balance_after;
            }
            AccountEvent::ReservationReleased { reservation_id, .. } => {
                self.reservations.remove(reservation_id);
            }
            AccountEvent::SubscriptionStarted {
                plan,
                period_start,
                period_end,
            } => {
                self.plan = Some(plan.clone());
                self.period_start = Some(*period_start);
                self.period_end = Some(*period_end);
            }
            AccountEvent::ReservationTransferred {
                from,
                reservation_id,
                amount,
                from_after,
                ..
            } => {
                if *from_after > 0 {
                    self.reservations.insert(from.clone(), *from_after);
                } else {
                    self.reservations.remove(from);
                }
                self.reservations.insert(reservation_id.clone(), *amount);
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
                available: 3,
                requested: 4
            }
        );
        assert_eq!(err.kind(), ErrorKind::InsufficientCredits);
    }

    #[test]
    fn credits_print_exactly() {
        assert_eq!(credits(249_500), "249.5");
        assert_eq!(credits(1), "0.001");
        assert_eq!(credits(250_000), "250");
        assert_eq!(credits(-1_050), "-1.05");
    }

    #[test]
    fn reservations_hold_capture_and_release() {
        let given = vec![
            opened(),
            AccountEvent::CreditsGranted {
                amount: 10,
                balance_after: 10,
                reason: String::new(),
            },
        ];
        let reserve = |id: &str, amount| AccountCommand::Reserve {
            reservation_id: id.into(),
            amount,
            reason: "job".into(),
        };
        let r1 = given_when::<Account>(&given, reserve("j1", 8)).unwrap();
        let mut after = given.clone();
        after.extend(r1);
        // Only 2 available now: a spend of 3 or a reservation of 3 fails.
        assert_eq!(
            given_when::<Account>(
                &after,
                AccountCommand::SpendCredits {
                    amount: 3,
                    reason: String::new()
                }
            )
            .unwrap_err(),
            AccountError::InsufficientCredits {
                available: 2,
                requested: 3
            }
        );
        assert!(given_when::<Account>(&after, reserve("j2", 3)).is_err());
        // The same reservation again is a no-op; with another amount, a conflict.
        assert_eq!(
            given_when::<Account>(&after, reserve("j1", 8)).unwrap(),
            vec![]
        );
        assert!(given_when::<Account>(&after, reserve("j1", 7)).is_err());
        // Capture 5 of 8: balance 5, nothing reserved.
        let captured = given_when::<Account>(
            &after,
            AccountCommand::Capture {
                reservation_id: "j1".into(),
                amount: 5,
            },
        )
        .unwrap();
        assert_eq!(
            captured,
            vec![AccountEvent::CreditsCaptured {
                reservation_id: "j1".into(),
                amount: 5,
                released: 3,
                balance_after: 5,
                reserved_after: 0
            }]
        );
        assert!(
            given_when::<Account>(
                &after,
                AccountCommand::Capture {
                    reservation_id: "j1".into(),
                    amount: 9
                }
            )
            .is_err()
        );
        // Release after capture: nothing to release.
        let mut done = after.clone();
        done.extend(captured);
        assert_eq!(
            given_when::<Account>(
                &done,
                AccountCommand::Release {
                    reservation_id: "j1".into(),
                    reason: "x".into()
                }
            )
            .unwrap(),
            vec![]
        );
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

    fn fold(events: &[AccountEvent]) -> Account {
        let mut a = Account::default();
        events.iter().for_each(|e| a.apply(e));
        a
    }

    #[test]
    fn a_budget_funds_jobs_without_freeing_credits() {
        let mut given = vec![
            opened(),
            AccountEvent::CreditsGranted {
                amount: 10_000,
                balance_after: 10_000,
                reason: String::new(),
            },
            AccountEvent::CreditsReserved {
                reservation_id: "run".into(),
                amount: 6_000,
                reserved_after: 6_000,
                reason: String::new(),
            },
        ];
        let transfer = |to: &str, amount: i64| AccountCommand::Transfer {
            from: "run".into(),
            reservation_id: to.into(),
            amount,
            reason: "job".into(),
        };
        given.extend(given_when::<Account>(&given, transfer("job1", 4_000)).unwrap());
        let a = fold(&given);
        assert_eq!(
            (a.reservations["run"], a.reservations["job1"]),
            (2_000, 4_000)
        );
        assert_eq!(a.available(), 4_000, "nothing became available");
        assert_eq!(
            given_when::<Account>(&given, transfer("job2", 2_001)).unwrap_err(),
            AccountError::BudgetExceeded {
                held: 2_000,
                requested: 2_001
            }
        );
        assert_eq!(
            given_when::<Account>(&given, transfer("job1", 4_000)).unwrap(),
            vec![],
            "a retried transfer changes nothing"
        );
        given.extend(given_when::<Account>(&given, transfer("job2", 2_000)).unwrap());
        assert!(
            !fold(&given).reservations.contains_key("run"),
            "an emptied budget closes"
        );
    }

    #[test]
    fn a_period_is_renewed_once() {
        let start = chrono::Utc::now();
        let given = vec![
            opened(),
            AccountEvent::SubscriptionStarted {
                plan: "starter".into(),
                period_start: start,
                period_end: start + chrono::Duration::days(30),
            },
        ];
        let end = start + chrono::Duration::days(30);
        let renewed =
            given_when::<Account>(&given, AccountCommand::RenewPeriod { period_end: end }).unwrap();
        assert!(matches!(
            &renewed[1],
            AccountEvent::CreditsGranted {
                amount: 2_000_000,
                ..
            }
        ));
        let mut after = given.clone();
        after.extend(renewed);
        assert_eq!(
            given_when::<Account>(&after, AccountCommand::RenewPeriod { period_end: end })
                .unwrap_err(),
            AccountError::PeriodRenewed
        );
        assert_eq!(
            fold(&after).period_end,
            Some(end + chrono::Duration::days(30))
        );
    }
}
