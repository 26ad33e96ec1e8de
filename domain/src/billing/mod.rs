//! Billing context. The first slice: an account with a credit balance.
//!
//! Amounts are integer credits (`i64`), never floats. The balance can never
//! go below zero: `decide` refuses a spend that would overdraw, and the
//! store's optimistic concurrency makes concurrent spends on one account
//! serialise (a loser reloads and decides again on the new balance).

mod account;

pub use account::{Account, AccountCommand, AccountError, AccountEvent, MAX_AMOUNT};
