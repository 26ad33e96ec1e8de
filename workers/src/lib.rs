//! IGNY8 workers. For now: the relay, which carries committed events from the
//! store to NATS JetStream. AI workers, the WordPress publisher and the
//! scheduler join here as JetStream work-queue consumers.

pub mod jobs;
pub mod planner;
pub mod relay;
