//! The WordPress publisher: a polite REST client ([`client`]), the
//! connection test ([`connect`]), and the jobs it runs — publish
//! ([`publish`]), sync and unpublish ([`sync`]) — in the job workers (a
//! JetStream work-queue consumer in scale-out, the in-process loop embedded).

pub mod client;
pub mod connect;
pub mod publish;
pub mod sync;

pub use client::{WpClient, WpOptions};
