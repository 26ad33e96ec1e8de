//! IGNY8 workers: the relay, which carries committed events from the store
//! to NATS JetStream, and the job workers (JetStream work-queue consumers,
//! or an in-process loop in the embedded mode) with the AI provider client
//! (`ai`) they call, the WordPress publisher, and the automation scheduler.

pub mod ai;
pub mod automation;
pub mod images;
pub mod jobs;
pub mod planner;
pub mod publishing;
pub mod relay;
pub mod writer;
