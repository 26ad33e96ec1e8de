//! The `automation_site` aggregate (id: the site's): one automation run
//! per site at a time. A run takes the lock in the commit that starts it
//! and gives it back in the commit that ends it — however it ends:
//! finished, failed, stopped by its budget, cancelled, or its rule paused.

use super::AutomationError;
use crate::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SiteLock {
    /// The run holding the site.
    pub holder: Option<Uuid>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SiteLockCommand {
    Acquire { run_id: Uuid },
    Release { run_id: Uuid },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SiteLockEvent {
    SiteLockAcquired { run_id: Uuid },
    SiteLockReleased { run_id: Uuid },
}

impl DomainEvent for SiteLockEvent {
    fn event_type(&self) -> &'static str {
        match self {
            SiteLockEvent::SiteLockAcquired { .. } => "SiteLockAcquired",
            SiteLockEvent::SiteLockReleased { .. } => "SiteLockReleased",
        }
    }
}

impl Aggregate for SiteLock {
    const TYPE: &'static str = "automation_site";
    type Command = SiteLockCommand;
    type Event = SiteLockEvent;
    type Error = AutomationError;

    fn decide(&self, command: SiteLockCommand) -> Result<Vec<SiteLockEvent>, AutomationError> {
        match command {
            SiteLockCommand::Acquire { run_id } => match self.holder {
                Some(h) if h == run_id => Ok(vec![]),
                Some(h) => Err(AutomationError::SiteBusy(h)),
                None => Ok(vec![SiteLockEvent::SiteLockAcquired { run_id }]),
            },
            // Only the holder gives it back; anyone else changes nothing.
            SiteLockCommand::Release { run_id } => match self.holder {
                Some(h) if h == run_id => Ok(vec![SiteLockEvent::SiteLockReleased { run_id }]),
                _ => Ok(vec![]),
            },
        }
    }

    fn apply(&mut self, event: &SiteLockEvent) {
        match event {
            SiteLockEvent::SiteLockAcquired { run_id } => self.holder = Some(*run_id),
            SiteLockEvent::SiteLockReleased { .. } => self.holder = None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::given_when;

    #[test]
    fn one_run_per_site() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let held = [SiteLockEvent::SiteLockAcquired { run_id: a }];
        assert_eq!(
            given_when::<SiteLock>(&held, SiteLockCommand::Acquire { run_id: b }),
            Err(AutomationError::SiteBusy(a))
        );
        assert_eq!(
            given_when::<SiteLock>(&held, SiteLockCommand::Release { run_id: b }),
            Ok(vec![]),
            "only the holder releases"
        );
        let released = [
            SiteLockEvent::SiteLockAcquired { run_id: a },
            SiteLockEvent::SiteLockReleased { run_id: a },
        ];
        assert!(given_when::<SiteLock>(&released, SiteLockCommand::Acquire { run_id: b }).is_ok());
    }
}
