//! IGNY8 gateway: the HTTP API and the `igny8` binary's subcommands.
//!
//! A newcomer tracing one command: `tenancy/sites.rs` (route, authorisation
//! through `auth::Principal`) → `igny8_commands::tenancy` →
//! `igny8_domain::tenancy::Tenant` (decide) → `igny8_commands::bus` (append)
//! → `igny8_projections::tenancy` (read model) → `tenancy/sites.rs` (list).

pub mod app;
pub mod auth;
pub mod automation;
pub mod benchmarks;
pub mod billing;
pub mod cli;
pub mod commands_api;
pub mod config;
pub mod http;
pub mod jobs;
pub mod openapi;
pub mod planner;
pub mod probe;
pub mod publishing;
pub mod runtime;
pub mod state;
pub mod system;
pub mod tenancy;
pub mod writer;
