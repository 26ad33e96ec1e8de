//! IGNY8 read side.
//!
//! A [`Projection`] turns events into rows of `rm_*` tables. The runner
//! applies each batch of events and the projection's checkpoint in one SQL
//! transaction, so a redelivered event changes nothing and a crash loses
//! nothing. Two sources feed the same code: the in-process feed over the
//! store (embedded mode) and durable JetStream consumers (scale-out mode).
//! A rebuild replays the log into shadow tables and swaps them in.
//!
//! Projections read typed domain events ([`igny8_commands::StoredEvent::decode`]).
//! An event a projection cannot decode stops it at that event: nothing
//! after it is applied, the error and the event id are recorded on the
//! checkpoint (status, `/ready`) and the runner retries with backoff.

pub mod automation;
pub mod billing;
pub mod checkpoint;
pub mod jobs;
pub mod planner;
pub mod projection;
pub mod publishing;
pub mod rebuild;
pub mod runner;
pub mod sql;
pub mod tenancy;
pub mod writer;

pub use checkpoint::{
    AccountLag, Checkpoint, ProjectionStatus, Stuck, WaitOutcome, account_lag, status, stuck,
    wait_for,
};
pub use projection::{Applied, Index, Projection, Table, decode_until};
pub use rebuild::rebuild;
pub use runner::{Observer, run_embedded, run_nats};

use std::sync::Arc;

/// Every projection of the product, in one place.
pub fn all() -> Vec<Arc<dyn Projection>> {
    vec![
        Arc::new(billing::AccountsProjection),
        Arc::new(tenancy::TenancyProjection),
        Arc::new(planner::PlannerProjection),
        Arc::new(jobs::JobsProjection),
        Arc::new(planner::ideas::IdeasProjection),
        Arc::new(writer::WriterProjection),
        Arc::new(writer::images::ImagesProjection),
        Arc::new(publishing::PublishingProjection),
        Arc::new(automation::AutomationProjection),
    ]
}

pub fn by_name(name: &str) -> Option<Arc<dyn Projection>> {
    all().into_iter().find(|p| p.name() == name)
}
