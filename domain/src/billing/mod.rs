//! Billing context: an account's credits (with reservations for AI jobs),
//! its subscription, and the plan catalogue.
//!
//! Amounts are integer milli-credits (`i64`, [`MILLI`] per credit), never
//! floats: the seeds price image prompts at 0.5 credit. The balance can never
//! go below zero and a reservation never exceeds what is available: `decide`
//! refuses, and the store's optimistic concurrency makes concurrent commands
//! on one account serialise (a loser reloads and decides again).

mod account;
mod plans;

pub use account::{
    Account, AccountCommand, AccountError, AccountEvent, MAX_AMOUNT, MILLI, credits,
};
pub use plans::{
    CreditCosts, DEFAULT_PLAN, PLANS, Plan, SEED_COSTS, clustering_cost_milli, content_cost_milli,
    costs, ideas_cost_milli, image_cost_milli, image_prompts_cost_milli, plan,
};
