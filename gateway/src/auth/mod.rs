//! Authentication and authorisation: keys, tokens, the caller
//! ([`Principal`]) and rate limits. The routes that issue tokens live in
//! `tenancy/`; every other route only consumes a `Principal`.

pub mod keys;
pub mod principal;
pub mod ratelimit;
pub mod tokens;

pub use keys::Keys;
pub use principal::{Principal, forbidden};
pub use ratelimit::Limits;
