//! Publishing use cases: WordPress connections ([`integrations`]), publish,
//! unpublish and sync jobs and the publisher's recorded steps
//! ([`publish`]), the companion plugin's signed webhooks ([`webhook`]) and
//! the per-connection request log ([`log`]).

pub mod integrations;
pub mod log;
pub mod publish;
pub mod webhook;
