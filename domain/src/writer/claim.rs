//! The `primary_keyword` aggregate: which live tasks of a site have a
//! keyword as their primary keyword (the cannibalization guard).
//!
//! Its id is UUIDv5 of the site and the keyword's normal form, so two
//! concurrent creates with the same primary keyword write the same
//! aggregate: the store lets one win and the loser decides again on the
//! winner's claim and is refused. A content belongs to its task, so the
//! task's claim covers it.

use crate::{Aggregate, DomainError, DomainEvent, ErrorKind};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use uuid::Uuid;

/// The claim's id: the site and the keyword's normal form.
pub fn claim_id(site_id: Uuid, keyword: &str) -> Uuid {
    Uuid::new_v5(
        &site_id,
        format!("primary:{}", crate::planner::normalize(keyword)).as_bytes(),
    )
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct PrimaryKeyword {
    /// Live tasks with this primary keyword (more than one only when shared
    /// on purpose).
    pub holders: BTreeSet<Uuid>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PrimaryKeywordCommand {
    Claim {
        task_id: Uuid,
        keyword: String,
        /// The request accepted sharing it (recorded on the event).
        allow_shared: bool,
    },
    Release {
        task_id: Uuid,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PrimaryKeywordEvent {
    PrimaryKeywordClaimed {
        task_id: Uuid,
        keyword: String,
        /// Other holders it shares the keyword with (accepted by the request).
        shared_with: Vec<Uuid>,
    },
    PrimaryKeywordReleased {
        task_id: Uuid,
    },
}

impl DomainEvent for PrimaryKeywordEvent {
    fn event_type(&self) -> &'static str {
        match self {
            PrimaryKeywordEvent::PrimaryKeywordClaimed { .. } => "PrimaryKeywordClaimed",
            PrimaryKeywordEvent::PrimaryKeywordReleased { .. } => "PrimaryKeywordReleased",
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClaimError {
    #[error(
        "{keyword:?} is already the primary keyword of task {holder} on this site; pass allow_shared_primary: true to share it"
    )]
    Cannibalization { keyword: String, holder: Uuid },
}

impl DomainError for ClaimError {
    fn code(&self) -> &'static str {
        "KEYWORD_CANNIBALIZATION"
    }
    fn kind(&self) -> ErrorKind {
        ErrorKind::Conflict
    }
}

impl Aggregate for PrimaryKeyword {
    const TYPE: &'static str = "primary_keyword";
    type Command = PrimaryKeywordCommand;
    type Event = PrimaryKeywordEvent;
    type Error = ClaimError;

    fn decide(
        &self,
        command: PrimaryKeywordCommand,
    ) -> Result<Vec<PrimaryKeywordEvent>, ClaimError> {
        match command {
            PrimaryKeywordCommand::Claim {
                task_id,
                keyword,
                allow_shared,
            } => {
                if self.holders.contains(&task_id) {
                    return Ok(vec![]);
                }
                if let Some(holder) = self.holders.iter().next()
                    && !allow_shared
                {
                    return Err(ClaimError::Cannibalization {
                        keyword,
                        holder: *holder,
                    });
                }
                Ok(vec![PrimaryKeywordEvent::PrimaryKeywordClaimed {
                    task_id,
                    keyword,
                    shared_with: self.holders.iter().copied().collect(),
                }])
            }
            PrimaryKeywordCommand::Release { task_id } => {
                if !self.holders.contains(&task_id) {
                    return Ok(vec![]);
                }
                Ok(vec![PrimaryKeywordEvent::PrimaryKeywordReleased {
                    task_id,
                }])
            }
        }
    }

    fn apply(&mut self, event: &PrimaryKeywordEvent) {
        match event {
            PrimaryKeywordEvent::PrimaryKeywordClaimed { task_id, .. } => {
                self.holders.insert(*task_id);
            }
            PrimaryKeywordEvent::PrimaryKeywordReleased { task_id } => {
                self.holders.remove(task_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::given_when;

    #[test]
    fn one_holder_unless_shared_on_purpose() {
        let claim = |t: u128, shared| PrimaryKeywordCommand::Claim {
            task_id: Uuid::from_u128(t),
            keyword: "shoes".into(),
            allow_shared: shared,
        };
        let mut h = given_when::<PrimaryKeyword>(&[], claim(1, false)).unwrap();
        assert!(
            given_when::<PrimaryKeyword>(&h, claim(1, false))
                .unwrap()
                .is_empty()
        );
        let err = given_when::<PrimaryKeyword>(&h, claim(2, false)).unwrap_err();
        assert_eq!(err.code(), "KEYWORD_CANNIBALIZATION");
        assert!(err.to_string().contains(&Uuid::from_u128(1).to_string()));
        h.extend(given_when::<PrimaryKeyword>(&h, claim(2, true)).unwrap());
        h.extend(
            given_when::<PrimaryKeyword>(
                &h,
                PrimaryKeywordCommand::Release {
                    task_id: Uuid::from_u128(1),
                },
            )
            .unwrap(),
        );
        h.extend(
            given_when::<PrimaryKeyword>(
                &h,
                PrimaryKeywordCommand::Release {
                    task_id: Uuid::from_u128(2),
                },
            )
            .unwrap(),
        );
        assert_eq!(
            given_when::<PrimaryKeyword>(&h, claim(3, false))
                .unwrap()
                .len(),
            1
        );
        // Case and white space do not make another keyword.
        assert_eq!(
            claim_id(Uuid::nil(), "Trail  Shoes"),
            claim_id(Uuid::nil(), "trail shoes")
        );
    }
}
