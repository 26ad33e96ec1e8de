//! Executes commands against aggregates.
//!
//! `execute` = (idempotency look-up) → load (snapshot + newer events) →
//! `decide` (pure, in `igny8-domain`) → append with metadata in one
//! transaction → position of the new events. A concurrent writer at the same
//! version makes the append fail (never overwrite); the command is then
//! decided again on the fresh state, a bounded number of times, unless the
//! caller pinned `expected_version` (then it is a `VersionConflict`).
//!
//! Idempotency: the key is claimed by a trigger in the append's own
//! transaction, so "key recorded" and "events committed" are one fact.
//! A repeat with the same body replays the first outcome from the stored
//! events; a different body is `IdempotencyKeyReused`.

use crate::db::Db;
use crate::event::StoredEvent;
use crate::feed::Feed;
use crate::store::Repo;
use chrono::Utc;
use cqrs_es::persist::{EventStoreAggregateContext, PersistedEventStore};
use cqrs_es::{AggregateError, EventStore};
use igny8_domain::{Aggregate, DomainError, DomainEvent, ErrorKind};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use uuid::Uuid;

/// Take a snapshot every this many events (aggregates that grow load fast).
pub const SNAPSHOT_EVERY: usize = 50;
/// Re-decide this many times after losing an optimistic-concurrency race.
pub const MAX_ATTEMPTS: usize = 10;

// ---------------------------------------------------------------------------
// cqrs-es adapter: the pure domain aggregate seen as a cqrs-es aggregate.

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Es<A>(pub A);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EsEvent<E>(pub E);

impl<E: DomainEvent> cqrs_es::DomainEvent for EsEvent<E> {
    fn event_type(&self) -> String {
        self.0.event_type().to_string()
    }
    fn event_version(&self) -> String {
        self.0.event_version().to_string()
    }
}

impl<A: Aggregate> cqrs_es::Aggregate for Es<A> {
    const TYPE: &'static str = A::TYPE;
    type Command = A::Command;
    type Event = EsEvent<A::Event>;
    type Error = A::Error;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _service: &(),
        sink: &cqrs_es::event_sink::EventSink<Self>,
    ) -> Result<(), Self::Error> {
        for e in self.0.decide(command)? {
            sink.write(EsEvent(e), self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        self.0.apply(&event.0);
    }
}

// ---------------------------------------------------------------------------

/// Who and why: copied into every event's metadata.
#[derive(Debug, Clone, Default)]
pub struct CommandContext {
    pub account_id: Option<String>,
    /// user id, API key id, or `system`.
    pub actor: String,
    pub request_id: String,
    pub correlation_id: String,
    pub causation_id: Option<String>,
    pub idempotency: Option<IdempotencyKey>,
    pub expected_version: Option<u64>,
    /// An open reservation (an automation run's budget) that pays for
    /// what this command reserves: the credits move from it instead of
    /// being held anew (see [`crate::billing::hold`]).
    pub funding: Option<String>,
}

#[derive(Debug, Clone)]
pub struct IdempotencyKey {
    /// Keys are unique per scope (the caller's account).
    pub scope: String,
    pub key: String,
    /// Hash of what the caller sent (method, path, body).
    pub request_hash: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OutcomeEvent {
    pub event_id: Uuid,
    pub event_type: String,
    pub sequence: i64,
    pub position: i64,
    #[schema(value_type = Object)]
    pub payload: Value,
}

/// What a command did. Built only from the stored events, so an idempotent
/// replay returns exactly the first outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandOutcome {
    pub aggregate_type: String,
    pub aggregate_id: String,
    /// The aggregate's version (sequence of its last event) after the command.
    pub version: i64,
    /// Global position of the command's last event: pass it as
    /// `min_position` to read your own write.
    pub position: Option<i64>,
    pub events: Vec<OutcomeEvent>,
    #[serde(skip)]
    pub replayed: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("{message}")]
    Domain {
        code: &'static str,
        kind: ErrorKind,
        message: String,
    },
    #[error("expected version {expected}, aggregate is at {actual}")]
    VersionConflict { expected: u64, actual: u64 },
    #[error("too many concurrent writers on this aggregate; retry")]
    Contention,
    #[error("this Idempotency-Key was already used with a different request")]
    IdempotencyKeyReused,
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl CommandError {
    pub(crate) fn internal(e: impl std::fmt::Display) -> Self {
        CommandError::Internal(e.to_string())
    }
    /// A database error: `Unavailable` when the database cannot be reached
    /// (the request may be retried), else `Internal`.
    pub fn db(e: sqlx::Error) -> Self {
        if crate::db::is_unavailable(&e) {
            CommandError::Unavailable(e.to_string())
        } else {
            CommandError::Internal(e.to_string())
        }
    }
    /// A refusal of a use case (not of an aggregate): `code` for clients.
    pub fn refused(kind: ErrorKind, code: &'static str, message: impl Into<String>) -> Self {
        CommandError::Domain {
            code,
            kind,
            message: message.into(),
        }
    }
    pub fn not_found(what: &str) -> Self {
        Self::refused(
            ErrorKind::NotFound,
            "NOT_FOUND",
            format!("{what} not found"),
        )
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::refused(ErrorKind::Forbidden, "FORBIDDEN", message)
    }
    /// A rule of the use case refused the input (422).
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self::refused(ErrorKind::Validation, code, message)
    }
}

/// In-process lock stripes: commands on one aggregate queue here instead of
/// racing to the database and retrying. Other processes still race; the
/// store's optimistic concurrency settles those.
const STRIPES: usize = 1024;

#[derive(Clone)]
pub struct CommandBus {
    db: Db,
    pub(crate) repo: Repo,
    pub(crate) feed: Feed,
    pub(crate) notify: Arc<Notify>,
    stripes: Arc<Vec<tokio::sync::Mutex<()>>>,
    pub(crate) cache: Arc<AggregateCache>,
}

impl CommandBus {
    pub fn new(db: Db) -> Self {
        let notify = Arc::new(Notify::new());
        let repo = Repo::new(&db);
        let feed = Feed::new(db.clone(), notify.clone());
        let stripes = Arc::new((0..STRIPES).map(|_| tokio::sync::Mutex::new(())).collect());
        Self {
            db,
            repo,
            feed,
            notify,
            stripes,
            cache: Arc::new(AggregateCache::default()),
        }
    }

    fn stripe(&self, aggregate_type: &str, aggregate_id: &str) -> &tokio::sync::Mutex<()> {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (aggregate_type, aggregate_id).hash(&mut h);
        &self.stripes[(h.finish() as usize) % STRIPES]
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The feed over this bus's store; woken after every local commit.
    pub fn feed(&self) -> Feed {
        self.feed.clone()
    }

    fn store<A: Aggregate>(&self) -> PersistedEventStore<Repo, Es<A>> {
        PersistedEventStore::new_snapshot_store(self.repo.clone(), SNAPSHOT_EVERY)
    }

    /// Current state and version of one aggregate (version 0: never written).
    pub async fn load<A: Aggregate>(&self, aggregate_id: &str) -> Result<(A, u64), CommandError> {
        let ctx = self
            .store::<A>()
            .load_aggregate(aggregate_id)
            .await
            .map_err(|e| map_agg_err::<A>(e))?;
        Ok((ctx.aggregate.0, ctx.current_sequence as u64))
    }

    /// Several aggregates in one atomic append: see [`crate::uow`].
    pub fn unit<'a>(&'a self, ctx: &'a CommandContext) -> crate::uow::UnitOfWork<'a> {
        crate::uow::UnitOfWork::new(self, ctx)
    }

    pub async fn execute<A: Aggregate>(
        &self,
        aggregate_id: &str,
        command: A::Command,
        ctx: &CommandContext,
    ) -> Result<CommandOutcome, CommandError>
    where
        A::Command: Clone,
    {
        if let Some(k) = &ctx.idempotency
            && let Some(done) = self.replay_idempotent(k).await?
        {
            return Ok(done);
        }
        let command_id = Uuid::new_v4().to_string();
        let store = self.store::<A>();
        let _serialised = self.stripe(A::TYPE, aggregate_id).lock().await;
        let mut trust_cache = true;
        for attempt in 0..MAX_ATTEMPTS {
            // A cached state is only trusted on the way to an append (which
            // optimistic concurrency validates); any refusal decided on a
            // cached state is checked again against the store.
            let cached = if trust_cache {
                self.cache.get::<A>(aggregate_id)
            } else {
                None
            };
            let from_cache = cached.is_some();
            let loaded = match cached {
                Some(c) => c,
                None => store
                    .load_aggregate(aggregate_id)
                    .await
                    .map_err(|e| map_agg_err::<A>(e))?,
            };
            let version = loaded.current_sequence as u64;
            if let Some(expected) = ctx.expected_version
                && expected != version
            {
                if from_cache {
                    trust_cache = false;
                    continue;
                }
                return Err(CommandError::VersionConflict {
                    expected,
                    actual: version,
                });
            }
            let decided = loaded.aggregate.0.decide(command.clone());
            let events = match decided {
                Ok(events) => events,
                Err(_) if from_cache => {
                    trust_cache = false;
                    continue;
                }
                Err(e) => {
                    return Err(CommandError::Domain {
                        code: e.code(),
                        kind: e.kind(),
                        message: e.to_string(),
                    });
                }
            };
            if events.is_empty() {
                return Ok(CommandOutcome {
                    aggregate_type: A::TYPE.into(),
                    aggregate_id: aggregate_id.into(),
                    version: version as i64,
                    position: None,
                    events: vec![],
                    replayed: false,
                });
            }
            // The state after this command, for the cache if the append succeeds.
            let mut next = loaded.aggregate.0.clone();
            for e in &events {
                next.apply(e);
            }
            let (next_version, snapshot_version) =
                (version as usize + events.len(), loaded.current_snapshot);
            let metadata = metadata_for(ctx, &command_id);
            let events = events.into_iter().map(EsEvent).collect();
            match store.commit(events, loaded, metadata).await {
                Ok(committed) => {
                    self.notify.notify_waiters();
                    self.cache.put::<A>(
                        aggregate_id,
                        next,
                        version as usize,
                        next_version,
                        snapshot_version,
                    );
                    return self.committed_outcome::<A>(aggregate_id, &committed).await;
                }
                Err(AggregateError::AggregateConflict) => {
                    self.cache.remove::<A>(aggregate_id);
                    trust_cache = false;
                    // Did our events land after all (postgres-es reports a stale
                    // snapshot after committing)? Then that is our outcome.
                    let mine = self
                        .outcome_of::<A>(aggregate_id, version as i64 + 1, &command_id, false)
                        .await?;
                    if !mine.events.is_empty() {
                        self.notify.notify_waiters();
                        return Ok(mine);
                    }
                    if let Some(k) = &ctx.idempotency
                        && let Some(done) = self.replay_idempotent(k).await?
                    {
                        return Ok(done);
                    }
                    if let Some(expected) = ctx.expected_version {
                        let (_, actual) = self.load::<A>(aggregate_id).await?;
                        return Err(CommandError::VersionConflict { expected, actual });
                    }
                    // Back off a little, growing, with jitter from the command id.
                    let jitter = command_id.as_bytes()[0] as u64 % 5;
                    tokio::time::sleep(Duration::from_millis((attempt as u64 + 1) * 2 + jitter))
                        .await;
                }
                Err(e) => {
                    self.cache.remove::<A>(aggregate_id);
                    return Err(map_agg_err::<A>(e));
                }
            }
        }
        Err(CommandError::Contention)
    }

    /// The events of `command_id` on one aggregate from `from_sequence` on.
    async fn outcome_of<A: Aggregate>(
        &self,
        aggregate_id: &str,
        from_sequence: i64,
        command_id: &str,
        replayed: bool,
    ) -> Result<CommandOutcome, CommandError> {
        let stored = self
            .feed
            .aggregate_events(A::TYPE, aggregate_id, from_sequence, 1000)
            .await
            .map_err(CommandError::db)?;
        Ok(outcome_from(
            A::TYPE,
            aggregate_id,
            from_sequence - 1,
            command_id,
            &stored,
            replayed,
        ))
    }

    /// The outcome of events this bus just committed: payloads from memory,
    /// ids and positions (assigned by the database) read back by primary key.
    async fn committed_outcome<A: Aggregate>(
        &self,
        aggregate_id: &str,
        committed: &[cqrs_es::EventEnvelope<Es<A>>],
    ) -> Result<CommandOutcome, CommandError> {
        let (Some(first), Some(last)) = (committed.first(), committed.last()) else {
            return Err(CommandError::internal("commit returned no events"));
        };
        let sql = "SELECT sequence, event_id, global_position FROM events \
                   WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence BETWEEN $3 AND $4 ORDER BY sequence";
        let rows: Vec<(i64, Uuid, i64)> = match &self.db {
            Db::Postgres(p) => sqlx::query_as(sql)
                .bind(A::TYPE)
                .bind(aggregate_id)
                .bind(first.sequence as i64)
                .bind(last.sequence as i64)
                .fetch_all(p)
                .await
                .map_err(CommandError::db)?,
            Db::Sqlite(p) => {
                let rows: Vec<(i64, String, i64)> = sqlx::query_as(sql)
                    .bind(A::TYPE)
                    .bind(aggregate_id)
                    .bind(first.sequence as i64)
                    .bind(last.sequence as i64)
                    .fetch_all(p)
                    .await
                    .map_err(CommandError::db)?;
                rows.into_iter()
                    .map(|(s, id, g)| {
                        Ok((s, Uuid::parse_str(&id).map_err(CommandError::internal)?, g))
                    })
                    .collect::<Result<_, CommandError>>()?
            }
        };
        if rows.len() != committed.len() {
            return Err(CommandError::internal("committed events not found"));
        }
        let events = committed
            .iter()
            .zip(rows)
            .map(|(e, (sequence, event_id, position))| {
                let event_type = e.payload.0.event_type().to_string();
                let mut payload = serde_json::to_value(&e.payload.0).unwrap_or(Value::Null);
                let payload = payload
                    .get_mut(&event_type)
                    .map(Value::take)
                    .unwrap_or(payload);
                OutcomeEvent {
                    event_id,
                    event_type,
                    sequence,
                    position,
                    payload,
                }
            })
            .collect::<Vec<_>>();
        Ok(CommandOutcome {
            aggregate_type: A::TYPE.into(),
            aggregate_id: aggregate_id.into(),
            version: last.sequence as i64,
            position: events.iter().map(|e| e.position).max(),
            events,
            replayed: false,
        })
    }

    pub(crate) async fn replay_idempotent(
        &self,
        k: &IdempotencyKey,
    ) -> Result<Option<CommandOutcome>, CommandError> {
        let row: Option<(String, String, String, String, i64)> = crate::on_db!(&self.db, p => {
            sqlx::query_as(
                "SELECT request_hash, command_id, aggregate_type, aggregate_id, first_sequence \
                 FROM idempotency_keys WHERE scope = $1 AND idem_key = $2",
            )
            .bind(&k.scope)
            .bind(&k.key)
            .fetch_optional(p)
            .await
            .map_err(CommandError::db)?
        });
        let Some((hash, command_id, aggregate_type, aggregate_id, first_sequence)) = row else {
            return Ok(None);
        };
        if hash != k.request_hash {
            return Err(CommandError::IdempotencyKeyReused);
        }
        let stored = self
            .feed
            .aggregate_events(&aggregate_type, &aggregate_id, first_sequence, 1000)
            .await
            .map_err(CommandError::db)?;
        Ok(Some(outcome_from(
            &aggregate_type,
            &aggregate_id,
            first_sequence - 1,
            &command_id,
            &stored,
            true,
        )))
    }
}

pub(crate) fn outcome_from(
    aggregate_type: &str,
    aggregate_id: &str,
    prior_version: i64,
    command_id: &str,
    stored: &[StoredEvent],
    replayed: bool,
) -> CommandOutcome {
    let mine: Vec<&StoredEvent> = stored
        .iter()
        .skip_while(|e| e.meta("command_id") != Some(command_id))
        .take_while(|e| e.meta("command_id") == Some(command_id))
        .collect();
    CommandOutcome {
        aggregate_type: aggregate_type.into(),
        aggregate_id: aggregate_id.into(),
        version: mine.last().map(|e| e.sequence).unwrap_or(prior_version),
        position: mine.iter().map(|e| e.global_position).max(),
        events: mine
            .iter()
            .map(|e| OutcomeEvent {
                event_id: e.event_id,
                event_type: e.event_type.clone(),
                sequence: e.sequence,
                position: e.global_position,
                payload: e.body().clone(),
            })
            .collect(),
        replayed,
    }
}

pub(crate) fn metadata_for(ctx: &CommandContext, command_id: &str) -> HashMap<String, String> {
    let mut m = HashMap::new();
    if let Some(a) = &ctx.account_id {
        m.insert("account_id".into(), a.clone());
    }
    m.insert(
        "actor".into(),
        if ctx.actor.is_empty() {
            "system".into()
        } else {
            ctx.actor.clone()
        },
    );
    m.insert("request_id".into(), ctx.request_id.clone());
    let correlation = if ctx.correlation_id.is_empty() {
        ctx.request_id.clone()
    } else {
        ctx.correlation_id.clone()
    };
    m.insert("correlation_id".into(), correlation);
    m.insert(
        "causation_id".into(),
        ctx.causation_id
            .clone()
            .unwrap_or_else(|| command_id.to_string()),
    );
    m.insert("command_id".into(), command_id.to_string());
    m.insert(
        "occurred_at".into(),
        Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
    );
    if let Some(k) = &ctx.idempotency {
        m.insert("idempotency_scope".into(), k.scope.clone());
        m.insert("idempotency_key".into(), k.key.clone());
        m.insert("request_hash".into(), k.request_hash.clone());
    }
    m
}

fn map_agg_err<A: Aggregate>(e: AggregateError<A::Error>) -> CommandError {
    match e {
        AggregateError::UserError(e) => CommandError::Domain {
            code: e.code(),
            kind: e.kind(),
            message: e.to_string(),
        },
        AggregateError::AggregateConflict => CommandError::Contention,
        AggregateError::DatabaseConnectionError(e) => CommandError::Unavailable(e.to_string()),
        // postgres-es reports most database errors as unexpected: a lost
        // connection, a closed or exhausted pool or a server shutting down
        // is still "unavailable" (503, retry), not a bug.
        AggregateError::UnexpectedError(e)
            if e.downcast_ref::<sqlx::Error>()
                .is_some_and(crate::db::is_unavailable) =>
        {
            CommandError::Unavailable(e.to_string())
        }
        other => CommandError::internal(other),
    }
}

// ---------------------------------------------------------------------------

/// Recently written aggregates, kept in memory so the next command on them
/// skips the load. Safe because it is only a guess: an append from a stale
/// entry conflicts on `(aggregate, sequence)` and the command reloads.
/// Entries are dropped when a snapshot boundary is crossed (the snapshot
/// version changed in the store), on any failure, and when the cache is full.
#[derive(Default)]
pub(crate) struct AggregateCache {
    entries: std::sync::Mutex<HashMap<(&'static str, String), CacheEntry>>,
}

struct CacheEntry {
    state: Box<dyn std::any::Any + Send + Sync>,
    sequence: usize,
    snapshot: Option<usize>,
}

const CACHE_CAPACITY: usize = 10_000;

impl AggregateCache {
    fn get<A: Aggregate>(&self, id: &str) -> Option<EventStoreAggregateContext<Es<A>>> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let e = entries.get(&(A::TYPE, id.to_string()))?;
        let state = e.state.downcast_ref::<A>()?.clone();
        Some(EventStoreAggregateContext {
            aggregate_id: id.to_string(),
            aggregate: Es(state),
            current_sequence: e.sequence,
            current_snapshot: e.snapshot,
        })
    }

    fn put<A: Aggregate>(
        &self,
        id: &str,
        state: A,
        from: usize,
        to: usize,
        snapshot: Option<usize>,
    ) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let key = (A::TYPE, id.to_string());
        // The store may have written a snapshot in this commit: reload next time.
        if from / SNAPSHOT_EVERY != to / SNAPSHOT_EVERY {
            entries.remove(&key);
            return;
        }
        if entries.len() >= CACHE_CAPACITY && !entries.contains_key(&key) {
            entries.clear();
        }
        entries.insert(
            key,
            CacheEntry {
                state: Box::new(state),
                sequence: to,
                snapshot,
            },
        );
    }

    pub(crate) fn remove<A: Aggregate>(&self, id: &str) {
        self.remove_key(A::TYPE, id);
    }

    pub(crate) fn remove_key(&self, aggregate_type: &'static str, id: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.remove(&(aggregate_type, id.to_string()));
    }
}
