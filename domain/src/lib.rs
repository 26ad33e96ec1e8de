//! IGNY8 domain: aggregates, commands, events and the pure rules between them.
//!
//! Nothing here does IO or depends on an async runtime, a database or HTTP.
//! An aggregate *decides* which events a command produces from its current
//! state, and *applies* events to evolve that state. The application layer
//! (`igny8-commands`) loads, persists and publishes; it never decides.
//!
//! One folder per bounded context: `billing` holds the first slice (accounts
//! with a credit balance); tenancy, planner, jobs, writer, publishing and
//! automation follow the same shape. [`catalogue`] renders the event
//! catalogue (`docs/events.md`) from the events' JSON Schemas.

pub mod automation;
pub mod billing;
pub mod catalogue;
pub mod jobs;
pub mod planner;
pub mod publishing;
pub mod tenancy;
pub mod writer;

use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Debug;

/// How a domain error should be understood by callers (the gateway maps this
/// to an HTTP status; automation clients get the `code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The command is well-formed but breaks a rule (HTTP 422).
    Validation,
    /// The aggregate's state forbids it now (HTTP 409).
    Conflict,
    /// The aggregate does not exist (HTTP 404).
    NotFound,
    /// Not enough credits (HTTP 402).
    InsufficientCredits,
    /// The credential is no longer valid (HTTP 401).
    Unauthenticated,
    /// The caller's role may not do this (HTTP 403).
    Forbidden,
    /// The request is missing something it must name (HTTP 400).
    BadRequest,
}

/// Errors returned by `Aggregate::decide`.
pub trait DomainError: std::error::Error + Send + Sync + 'static {
    /// Stable UPPER_SNAKE code for clients.
    fn code(&self) -> &'static str;
    fn kind(&self) -> ErrorKind;
}

/// An event of one aggregate type. Events are facts: past tense, immutable,
/// serialised as `{"<EventType>": {...}}` in the store.
pub trait DomainEvent:
    Serialize + DeserializeOwned + Clone + PartialEq + Debug + Send + Sync + 'static
{
    /// Stable name, used in NATS subjects and the event catalogue.
    fn event_type(&self) -> &'static str;
    /// Schema version of this event type's payload.
    fn event_version(&self) -> &'static str {
        "1"
    }
}

/// An event-sourced aggregate: state rebuilt by applying its own events.
pub trait Aggregate:
    Default + Serialize + DeserializeOwned + Clone + Debug + Send + Sync + 'static
{
    /// Stable aggregate type name (snake_case), used in subjects and tables.
    const TYPE: &'static str;
    type Command: Debug + Send + Sync;
    type Event: DomainEvent;
    type Error: DomainError;

    /// Decide which events `command` produces. Must be pure and deterministic.
    fn decide(&self, command: Self::Command) -> Result<Vec<Self::Event>, Self::Error>;

    /// Evolve the state with one event. Never fails: events are facts.
    fn apply(&mut self, event: &Self::Event);
}

/// Test helper: given past events, when a command, then these events or that error.
pub fn given_when<A: Aggregate>(
    given: &[A::Event],
    when: A::Command,
) -> Result<Vec<A::Event>, A::Error> {
    let mut state = A::default();
    for e in given {
        state.apply(e);
    }
    state.decide(when)
}
