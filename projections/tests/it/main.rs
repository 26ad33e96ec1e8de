//! One test binary for the read side.
mod common;
mod nats_pipeline;
mod runner;
mod stuck;
