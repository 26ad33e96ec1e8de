//! What each long-running component of this process says about itself:
//! whether it can do its job right now, and why not. The relay, each
//! projection runner and the job workers report here; the probe server
//! (`IGNY8_PROBE_LISTEN`: `/ready`, `/metrics`) and the logs read it.
//!
//! A component that has never reported is not ready (it is still starting).
//! Every change of readiness is logged once (warn when lost, info when
//! back), so a flapping dependency does not flood the log with the same line.

use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

#[derive(Debug, Clone, serde::Serialize)]
pub struct ComponentState {
    pub name: String,
    pub ready: bool,
    /// `active`, `standby`, or what it is waiting for.
    pub detail: String,
    /// When `ready` last changed.
    pub since: DateTime<Utc>,
}

/// Shared by every component of a process; cheap to clone.
#[derive(Clone, Default)]
pub struct Health(Arc<Mutex<BTreeMap<String, ComponentState>>>);

impl Health {
    pub fn new() -> Self {
        Self::default()
    }

    /// Say that `component` is starting (not ready until it reports).
    pub fn register(&self, component: &str) {
        let Ok(mut m) = self.0.lock() else { return };
        m.entry(component.to_string())
            .or_insert_with(|| ComponentState {
                name: component.to_string(),
                ready: false,
                detail: "starting".into(),
                since: Utc::now(),
            });
    }

    /// Record that `component` can work (`detail`: `active`, `standby`…).
    pub fn ready(&self, component: &str, detail: &str) {
        self.set(component, true, detail);
    }

    /// Record that `component` cannot work, and why.
    pub fn not_ready(&self, component: &str, why: impl std::fmt::Display) {
        self.set(component, false, &why.to_string());
    }

    fn set(&self, component: &str, ready: bool, detail: &str) {
        let Ok(mut m) = self.0.lock() else { return };
        let now = Utc::now();
        match m.get_mut(component) {
            Some(s) if s.ready == ready => {
                if s.detail != detail {
                    s.detail = detail.to_string();
                }
            }
            prior => {
                let was_known = prior.is_some();
                if ready {
                    tracing::info!(component, detail, "ready");
                } else if was_known {
                    tracing::warn!(component, reason = detail, "not ready");
                }
                m.insert(
                    component.to_string(),
                    ComponentState {
                        name: component.to_string(),
                        ready,
                        detail: detail.to_string(),
                        since: now,
                    },
                );
            }
        }
    }

    pub fn components(&self) -> Vec<ComponentState> {
        self.0
            .lock()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Every registered component is ready (and there is at least one).
    pub fn all_ready(&self) -> bool {
        let c = self.components();
        !c.is_empty() && c.iter().all(|s| s.ready)
    }
}

/// Retry delays of a component whose dependency is away: 250 ms, doubling,
/// at most 10 s; `reset` after a success.
pub struct Backoff(Duration);

impl Default for Backoff {
    fn default() -> Self {
        Self::new()
    }
}

impl Backoff {
    pub const FIRST: Duration = Duration::from_millis(250);
    pub const MAX: Duration = Duration::from_secs(10);
    pub fn new() -> Self {
        Backoff(Self::FIRST)
    }
    pub fn reset(&mut self) {
        self.0 = Self::FIRST;
    }
    /// Sleep the current delay (or until shutdown), then double it.
    pub async fn wait(&mut self, shutdown: &mut watch::Receiver<bool>) {
        tokio::select! {
            _ = tokio::time::sleep(self.0) => {}
            _ = shutdown.changed() => {}
        }
        self.0 = (self.0 * 2).min(Self::MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_component_is_not_ready_until_it_says_so() {
        let h = Health::new();
        assert!(!h.all_ready(), "nothing registered: not ready");
        h.register("relay");
        assert!(!h.all_ready());
        h.ready("relay", "active");
        assert!(h.all_ready());
        h.register("relay");
        assert!(h.all_ready(), "registering again keeps the state");
        h.not_ready("relay", "database unavailable");
        assert!(!h.all_ready());
        let c = h.components();
        assert_eq!(c[0].detail, "database unavailable");
    }
}
