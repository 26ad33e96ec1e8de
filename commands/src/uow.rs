//! A unit of work: commands on several aggregates, appended atomically.
//!
//! Sign-up touches the email's login, the new user, the tenant and the
//! billing account; either all of their events are committed or none.
//! Each aggregate is loaded once, decided in order (a second command on the
//! same aggregate sees the first one's events), and everything is appended
//! in one statement (PostgreSQL) or one transaction (SQLite). If another
//! writer got to any of them first, `commit` answers `Ok(None)`: decide
//! again on fresh state (see [`retry`]).
//!
//! ```ignore
//! let outcomes = retry(|| async {
//!     let mut uow = bus.unit(&ctx);
//!     uow.execute::<Login>(&email, LoginCommand::Claim { .. }).await?;
//!     uow.execute::<User>(&user_id, UserCommand::Register { .. }).await?;
//!     uow.commit().await
//! }).await?;
//! ```

use crate::bus::{
    CommandBus, CommandContext, CommandError, CommandOutcome, SNAPSHOT_EVERY, metadata_for,
    outcome_from,
};
use cqrs_es::persist::{PersistenceError, SerializedEvent};
use igny8_domain::{Aggregate, DomainError, DomainEvent};
use serde_json::Value;
use std::any::Any;
use std::collections::HashMap;
use uuid::Uuid;

struct Loaded {
    state: Box<dyn Any + Send + Sync>,
    /// Version in the store when loaded.
    base: usize,
    /// Version after the pending events.
    next: usize,
    /// The state as JSON (for a snapshot).
    to_json: fn(&(dyn Any + Send + Sync)) -> Option<Value>,
}

fn state_json<A: Aggregate>(state: &(dyn Any + Send + Sync)) -> Option<Value> {
    state
        .downcast_ref::<A>()
        .and_then(|a| serde_json::to_value(a).ok())
}

pub struct UnitOfWork<'a> {
    bus: &'a CommandBus,
    ctx: &'a CommandContext,
    command_id: String,
    metadata: Value,
    loaded: HashMap<(&'static str, String), Loaded>,
    /// Aggregates in the order they were first touched.
    order: Vec<(&'static str, String)>,
    pending: Vec<SerializedEvent>,
}

impl<'a> UnitOfWork<'a> {
    pub(crate) fn new(bus: &'a CommandBus, ctx: &'a CommandContext) -> Self {
        let command_id = Uuid::new_v4().to_string();
        let metadata = serde_json::to_value(metadata_for(ctx, &command_id)).unwrap_or_default();
        Self {
            bus,
            ctx,
            command_id,
            metadata,
            loaded: HashMap::new(),
            order: vec![],
            pending: vec![],
        }
    }

    /// The aggregate's state as this unit sees it (pending events applied).
    pub async fn state<A: Aggregate>(&mut self, id: &str) -> Result<A, CommandError> {
        self.ensure::<A>(id).await?;
        Ok(self.loaded[&(A::TYPE, id.to_string())]
            .state
            .downcast_ref::<A>()
            .cloned()
            .unwrap_or_default())
    }

    async fn ensure<A: Aggregate>(&mut self, id: &str) -> Result<(), CommandError> {
        let key = (A::TYPE, id.to_string());
        if !self.loaded.contains_key(&key) {
            let (state, version) = self.bus.load::<A>(id).await?;
            self.loaded.insert(
                key.clone(),
                Loaded {
                    state: Box::new(state),
                    base: version as usize,
                    next: version as usize,
                    to_json: state_json::<A>,
                },
            );
            self.order.push(key);
        }
        Ok(())
    }

    /// Load many aggregates of one type at once (two statements; see
    /// [`crate::store::load_many`]) before commands on them: those already
    /// loaded keep their state; an id never written is new (version 0).
    pub async fn preload<A: Aggregate>(&mut self, ids: &[String]) -> Result<(), CommandError> {
        let missing: Vec<String> = ids
            .iter()
            .filter(|id| !self.loaded.contains_key(&(A::TYPE, id.to_string())))
            .cloned()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut found = crate::store::load_many::<A>(self.bus.db(), &missing)
            .await
            .map_err(CommandError::db)?;
        for id in missing {
            let (state, version) = found.remove(&id).unwrap_or_default();
            let key = (A::TYPE, id);
            self.loaded.insert(
                key.clone(),
                Loaded {
                    state: Box::new(state),
                    base: version as usize,
                    next: version as usize,
                    to_json: state_json::<A>,
                },
            );
            self.order.push(key);
        }
        Ok(())
    }

    /// Decide `command` on the aggregate and stage its events.
    pub async fn execute<A: Aggregate>(
        &mut self,
        id: &str,
        command: A::Command,
    ) -> Result<Vec<A::Event>, CommandError> {
        self.ensure::<A>(id).await?;
        let entry = self
            .loaded
            .get_mut(&(A::TYPE, id.to_string()))
            .ok_or_else(|| CommandError::internal("aggregate not loaded"))?;
        let state = entry
            .state
            .downcast_mut::<A>()
            .ok_or_else(|| CommandError::internal("aggregate type mismatch"))?;
        let events = state.decide(command).map_err(|e| CommandError::Domain {
            code: e.code(),
            kind: e.kind(),
            message: e.to_string(),
        })?;
        for e in &events {
            state.apply(e);
            entry.next += 1;
            self.pending.push(SerializedEvent::new(
                id.to_string(),
                entry.next,
                A::TYPE.to_string(),
                e.event_type().to_string(),
                e.event_version().to_string(),
                serde_json::to_value(e).map_err(CommandError::internal)?,
                self.metadata.clone(),
            ));
        }
        Ok(events)
    }

    /// Append everything staged. `Ok(None)`: another writer changed one of
    /// the aggregates first; nothing was written; decide again.
    pub async fn commit(self) -> Result<Option<Vec<CommandOutcome>>, CommandError> {
        if self.pending.is_empty() {
            return Ok(Some(vec![]));
        }
        if !self.append().await? {
            if let Some(k) = &self.ctx.idempotency
                && let Some(done) = self.bus.replay_idempotent(k).await?
            {
                return Ok(Some(vec![done]));
            }
            return Ok(None);
        }
        self.outcomes().await.map(Some)
    }

    /// [`Self::commit`] for a writer that needs no positions (the
    /// scheduler firing a batch of rules): the events are not read back.
    /// `false`: another writer came first; nothing was written.
    pub async fn commit_unread(self) -> Result<bool, CommandError> {
        if self.pending.is_empty() {
            return Ok(true);
        }
        self.append().await
    }

    /// The append and what follows it (waking the feed, snapshots).
    async fn append(&self) -> Result<bool, CommandError> {
        for (t, id) in &self.order {
            self.bus.cache.remove_key(t, id);
        }
        match self.bus.repo.append_batch(&self.pending).await {
            Ok(()) => {}
            Err(PersistenceError::OptimisticLockError) => return Ok(false),
            Err(e) => return Err(CommandError::internal(e)),
        }
        self.bus.notify.notify_waiters();
        // Aggregates written only by units of work (an account whose jobs
        // reserve and capture per article) would otherwise load from ever
        // longer streams: snapshot those that crossed a boundary.
        for key in &self.order {
            let l = &self.loaded[key];
            if l.next / SNAPSHOT_EVERY != l.base / SNAPSHOT_EVERY
                && let Some(payload) = (l.to_json)(l.state.as_ref())
            {
                crate::store::write_snapshot(self.bus.db(), key.0, &key.1, l.next, &payload).await;
            }
        }
        Ok(true)
    }

    /// What each aggregate's committed events were (read back for their positions).
    async fn outcomes(&self) -> Result<Vec<CommandOutcome>, CommandError> {
        let mut outcomes = vec![];
        for key in &self.order {
            let l = &self.loaded[key];
            if l.next == l.base {
                continue;
            }
            let stored = self
                .bus
                .feed
                .aggregate_events(key.0, &key.1, l.base as i64 + 1, 1000)
                .await
                .map_err(CommandError::internal)?;
            outcomes.push(outcome_from(
                key.0,
                &key.1,
                l.base as i64,
                &self.command_id,
                &stored,
                false,
            ));
        }
        Ok(outcomes)
    }
}

/// Run a unit of work until it commits (bounded; then `Contention`).
pub async fn retry<F, Fut>(mut attempt: F) -> Result<Vec<CommandOutcome>, CommandError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<Vec<CommandOutcome>>, CommandError>>,
{
    for i in 0..crate::bus::MAX_ATTEMPTS {
        if let Some(done) = attempt().await? {
            return Ok(done);
        }
        tokio::time::sleep(std::time::Duration::from_millis(2 * (i as u64 + 1))).await;
    }
    Err(CommandError::Contention)
}

/// [`retry`] for units of work on an aggregate many writers change at once
/// (an account whose jobs capture article after article): more attempts,
/// with a growing, jittered pause (up to 50 ms) so that the writers spread
/// out instead of colliding again in step.
pub async fn retry_hot<F, Fut>(mut attempt: F) -> Result<Vec<CommandOutcome>, CommandError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<Vec<CommandOutcome>>, CommandError>>,
{
    for i in 0..40u32 {
        if let Some(done) = attempt().await? {
            return Ok(done);
        }
        let base = 2u64.saturating_mul(1 << i.min(5)).min(50);
        let jitter = u64::from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0),
        ) % (base + 1);
        tokio::time::sleep(std::time::Duration::from_millis(base / 2 + jitter)).await;
    }
    Err(CommandError::Contention)
}

/// The first answer of an idempotent request already carried out (its
/// `Idempotency-Key` with the same body), before anything is decided: a
/// retried create must not be refused by the state its first try made
/// (the keyword it claimed, the tasks it started).
pub async fn replayed(
    bus: &CommandBus,
    ctx: &CommandContext,
) -> Result<Option<Vec<CommandOutcome>>, CommandError> {
    match &ctx.idempotency {
        Some(k) => Ok(bus.replay_idempotent(k).await?.map(|o| vec![o])),
        None => Ok(None),
    }
}
