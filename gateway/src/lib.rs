//! IGNY8 gateway: the HTTP API and the `igny8` binary's subcommands.
//!
//! A newcomer tracing one command: `billing/mod.rs` (route) →
//! `igny8_commands::billing` → `igny8_domain::billing` (decide) →
//! `igny8_commands::bus` (append) → `igny8_projections::billing` (read model)
//! → `billing/mod.rs` (query).

pub mod app;
pub mod bench;
pub mod billing;
pub mod cli;
pub mod config;
pub mod http;
pub mod openapi;
pub mod runtime;
pub mod system;
