//! IGNY8 application layer.
//!
//! - [`db`]: the database handle (PostgreSQL or SQLite) and migrations.
//! - [`store`]: event stores behind cqrs-es's `PersistedEventRepository`:
//!   postgres-es for PostgreSQL, our own for SQLite; one contract.
//! - [`feed`]: the gap-safe global feed (every committed event once, in one order).
//! - [`bus`]: executes commands: load, decide, append with metadata,
//!   optimistic concurrency with bounded retries, idempotency keys.
//! - one module per bounded context (`billing`, ...) with its command API.

pub mod billing;
pub mod bus;
pub mod db;
pub mod event;
pub mod feed;
pub mod jobs;
pub mod planner;
pub mod secrets;
pub mod store;
pub mod stream;
pub mod tenancy;
pub mod testkit;
pub mod uow;

pub use bus::{CommandBus, CommandContext, CommandError, CommandOutcome, IdempotencyKey};
pub use db::{Backend, Db, DbTx};
pub use event::{DecodeError, Position, StoredEvent};
pub use feed::Feed;
pub use stream::StreamNames;
