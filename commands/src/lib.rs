//! IGNY8 application layer.
//!
//! - [`db`]: the database handle (PostgreSQL or SQLite) and migrations.
//! - [`store`]: event stores behind cqrs-es's `PersistedEventRepository`:
//!   postgres-es for PostgreSQL, our own for SQLite; one contract.
//! - [`feed`]: the gap-safe global feed (every committed event once, in one order).
//! - [`bus`]: executes commands: load, decide, append with metadata,
//!   optimistic concurrency with bounded retries, idempotency keys.
//! - [`caller`]: who asks and what they may do (the only authorisation code).
//! - one module per bounded context (`billing`, `tenancy`, `planner`, `jobs`, `writer`):
//!   its use cases, each one function taking the [`Caller`], the command
//!   context and a typed input, returning a typed outcome.
//! - `testkit` (feature `testkit`, for tests only): fresh PostgreSQL schemas,
//!   SQLite files and NATS names for tests against the real services.

pub mod automation;
pub mod billing;
pub mod bus;
pub mod caller;
pub mod db;
pub mod event;
pub mod feed;
pub mod health;
pub mod jobs;
pub mod planner;
pub mod publishing;
pub mod secrets;
pub mod store;
pub mod stream;
pub mod tenancy;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod uow;
pub mod writer;

pub use bus::{CommandBus, CommandContext, CommandError, CommandOutcome, IdempotencyKey};
pub use caller::Caller;
pub use db::{Backend, Db, DbTx};
pub use event::{DecodeError, Position, StoredEvent};
pub use feed::Feed;
pub use health::{Backoff, Health};
pub use stream::StreamNames;
