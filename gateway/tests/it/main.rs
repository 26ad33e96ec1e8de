//! One test binary for the gateway: HTTP in both run modes (credits,
//! identity, the role/tenant matrix, bad input), and the `igny8` binary
//! itself (relay under SIGKILL, graceful shutdown, CLI).
mod ai;
mod automation;
mod bad_input;
mod binary;
mod contract;
mod faults;
mod harness;
mod http_api;
mod images;
mod jobs;
mod layout;
mod matrix;
mod planner;
mod publishing;
mod tenancy;
mod writer;
mod writer_ai;
