//! One contract, two stores: every test here runs on PostgreSQL (postgres-es)
//! and on SQLite (our repository).

use cqrs_es::persist::{PersistedEventRepository, PersistenceError, SerializedEvent};
use igny8_commands::billing::{grant_credits, open_account, spend_credits};
use igny8_commands::bus::{Es, SNAPSHOT_EVERY};
use igny8_commands::store::Repo;
use igny8_commands::testkit::{pg_db, sqlite_db};
use igny8_commands::{CommandBus, CommandContext, CommandError, Db, IdempotencyKey, Position};
use igny8_domain::billing::Account;
use serde_json::json;
use uuid::Uuid;

async fn both() -> Vec<(&'static str, Db)> {
    vec![
        ("postgres", pg_db().await.0),
        ("sqlite", sqlite_db().await.0),
    ]
}

fn ctx(account: Uuid) -> CommandContext {
    CommandContext {
        account_id: Some(account.to_string()),
        actor: "user:test".into(),
        request_id: Uuid::new_v4().to_string(),
        correlation_id: "corr-1".into(),
        ..Default::default()
    }
}

fn raw_event(id: &str, seq: usize, marker: &str) -> SerializedEvent {
    SerializedEvent::new(
        id.into(),
        seq,
        "account".into(),
        "CreditsGranted".into(),
        "1".into(),
        json!({"CreditsGranted": {"amount": 1, "balance_after": seq, "reason": marker}}),
        json!({"account_id": id, "command_id": marker}),
    )
}

#[tokio::test]
async fn append_and_load_round_trip_with_metadata() {
    for (name, db) in both().await {
        let bus = CommandBus::new(db);
        let id = Uuid::new_v4();
        let c = ctx(id);
        let opened = open_account(&bus, id, "Acme".into(), &c).await.unwrap();
        assert_eq!(opened.version, 1, "{name}");
        let granted = grant_credits(&bus, id, 25, "plan".into(), &c)
            .await
            .unwrap();
        assert_eq!(granted.version, 2, "{name}");
        assert!(granted.position > opened.position, "{name}: positions grow");
        assert_eq!(granted.events[0].payload["balance_after"], 25, "{name}");
        let (state, version) = bus.load::<Account>(&id.to_string()).await.unwrap();
        assert_eq!(
            (state.balance, version, state.name.as_str()),
            (25, 2, "Acme"),
            "{name}"
        );

        let stored = bus
            .feed()
            .aggregate_events("account", &id.to_string(), 1, 10)
            .await
            .unwrap();
        assert_eq!(stored.len(), 2, "{name}");
        for e in &stored {
            for key in [
                "account_id",
                "actor",
                "request_id",
                "correlation_id",
                "causation_id",
                "occurred_at",
                "command_id",
            ] {
                assert!(
                    e.meta(key).is_some(),
                    "{name}: metadata {key} missing in {:?}",
                    e.metadata
                );
            }
            assert_eq!(e.meta("account_id"), Some(id.to_string().as_str()));
            assert_eq!(
                e.account_id.as_deref(),
                Some(id.to_string().as_str()),
                "{name}: account_id column"
            );
            assert_eq!(e.meta("actor"), Some("user:test"));
            assert_eq!(e.meta("correlation_id"), Some("corr-1"));
        }
        assert_ne!(stored[0].event_id, stored[1].event_id);
    }
}

#[tokio::test]
async fn second_writer_at_same_version_fails_and_overwrites_nothing() {
    for (name, db) in both().await {
        let repo = Repo::new(&db);
        let id = Uuid::new_v4().to_string();
        repo.persist::<Es<Account>>(&[raw_event(&id, 1, "first")], None)
            .await
            .unwrap();
        let err = repo
            .persist::<Es<Account>>(&[raw_event(&id, 1, "second")], None)
            .await
            .unwrap_err();
        assert!(
            matches!(err, PersistenceError::OptimisticLockError),
            "{name}: {err:?}"
        );
        // A batch whose second event collides writes nothing at all.
        let err = repo
            .persist::<Es<Account>>(
                &[raw_event(&id, 2, "batch"), raw_event(&id, 1, "batch")],
                None,
            )
            .await
            .unwrap_err();
        assert!(
            matches!(err, PersistenceError::OptimisticLockError),
            "{name}: {err:?}"
        );
        let events = repo.get_events::<Es<Account>>(&id).await.unwrap();
        assert_eq!(events.len(), 1, "{name}");
        assert_eq!(
            events[0].payload["CreditsGranted"]["reason"], "first",
            "{name}"
        );
    }
}

#[tokio::test]
async fn snapshots_are_taken_and_used() {
    for (name, db) in both().await {
        let bus = CommandBus::new(db.clone());
        let repo = Repo::new(&db);
        let id = Uuid::new_v4();
        let c = ctx(id);
        open_account(&bus, id, "Big".into(), &c).await.unwrap();
        let n = SNAPSHOT_EVERY * 2 + 5;
        for _ in 1..n {
            grant_credits(&bus, id, 2, String::new(), &c).await.unwrap();
        }
        let snap = repo
            .get_snapshot::<Es<Account>>(&id.to_string())
            .await
            .unwrap()
            .expect("snapshot");
        assert_eq!(snap.current_sequence, SNAPSHOT_EVERY * 2, "{name}");
        let (state, version) = bus.load::<Account>(&id.to_string()).await.unwrap();
        assert_eq!(version as usize, n, "{name}");
        assert_eq!(state.balance, 2 * (n as i64 - 1), "{name}");
    }
}

#[tokio::test]
async fn global_order_is_total_and_feed_delivers_everything_once() {
    for (name, db) in both().await {
        let bus = CommandBus::new(db);
        let mut expected = vec![];
        for i in 0..5 {
            let id = Uuid::new_v4();
            let o = open_account(&bus, id, format!("a{i}"), &ctx(id))
                .await
                .unwrap();
            expected.push(o.events[0].event_id);
            let o = grant_credits(&bus, id, 1 + i, String::new(), &ctx(id))
                .await
                .unwrap();
            expected.push(o.events[0].event_id);
        }
        let feed = bus.feed();
        let all = igny8_commands::testkit::read_all(&feed, expected.len()).await;
        let mut pos = Position::START;
        let mut seen = vec![];
        for e in all {
            assert!(e.position() > pos, "{name}: feed order");
            pos = e.position();
            seen.push(e.event_id);
        }
        // Small pages deliver the same sequence.
        let mut paged = vec![];
        let mut p = Position::START;
        while paged.len() < seen.len() {
            for e in feed.read_after(p, 3).await.unwrap() {
                p = e.position();
                paged.push(e.event_id);
            }
        }
        assert_eq!(paged, seen, "{name}");
        assert_eq!(seen, expected, "{name}");
        assert_eq!(feed.head().await.unwrap(), pos.global_position, "{name}");
    }
}

#[tokio::test]
async fn idempotency_key_replays_first_outcome_and_rejects_other_bodies() {
    for (name, db) in both().await {
        let bus = CommandBus::new(db);
        let id = Uuid::new_v4();
        open_account(&bus, id, "Idem".into(), &ctx(id))
            .await
            .unwrap();
        let key = |hash: &str| CommandContext {
            idempotency: Some(IdempotencyKey {
                scope: id.to_string(),
                key: "k-1".into(),
                request_hash: hash.into(),
            }),
            ..ctx(id)
        };
        let first = grant_credits(&bus, id, 7, "once".into(), &key("h1"))
            .await
            .unwrap();
        let again = grant_credits(&bus, id, 7, "once".into(), &key("h1"))
            .await
            .unwrap();
        assert!(again.replayed, "{name}");
        assert_eq!(first.events, again.events, "{name}");
        assert_eq!(
            (first.version, first.position),
            (again.version, again.position),
            "{name}"
        );
        let err = grant_credits(&bus, id, 8, "other".into(), &key("h2"))
            .await
            .unwrap_err();
        assert!(
            matches!(err, CommandError::IdempotencyKeyReused),
            "{name}: {err:?}"
        );
        let (state, version) = bus.load::<Account>(&id.to_string()).await.unwrap();
        assert_eq!((state.balance, version), (7, 2), "{name}: appended once");

        // Ten concurrent requests with one key: one append, ten identical answers.
        let mut tasks = vec![];
        for _ in 0..10 {
            let bus = bus.clone();
            let c = CommandContext {
                idempotency: Some(IdempotencyKey {
                    scope: id.to_string(),
                    key: "k-2".into(),
                    request_hash: "h".into(),
                }),
                ..ctx(id)
            };
            tasks.push(tokio::spawn(async move {
                grant_credits(&bus, id, 1, String::new(), &c).await
            }));
        }
        let mut outcomes = vec![];
        for t in tasks {
            outcomes.push(t.await.unwrap().unwrap());
        }
        assert!(
            outcomes.windows(2).all(|w| w[0].events == w[1].events),
            "{name}"
        );
        let (state, _) = bus.load::<Account>(&id.to_string()).await.unwrap();
        assert_eq!(
            state.balance, 8,
            "{name}: concurrent same-key requests appended once"
        );
    }
}

#[tokio::test]
async fn concurrent_spends_never_overdraw() {
    for (name, db) in both().await {
        let bus = CommandBus::new(db);
        let id = Uuid::new_v4();
        open_account(&bus, id, "Race".into(), &ctx(id))
            .await
            .unwrap();
        grant_credits(&bus, id, 10, String::new(), &ctx(id))
            .await
            .unwrap();
        let mut tasks = vec![];
        for _ in 0..50 {
            let bus = bus.clone();
            tasks.push(tokio::spawn(async move {
                spend_credits(&bus, id, 1, "race".into(), &ctx(id)).await
            }));
        }
        let (mut ok, mut refused) = (0, 0);
        for t in tasks {
            match t.await.unwrap() {
                Ok(_) => ok += 1,
                Err(CommandError::Domain {
                    code: "INSUFFICIENT_CREDITS",
                    ..
                }) => refused += 1,
                Err(CommandError::Contention) => refused += 1,
                Err(e) => panic!("{name}: unexpected {e:?}"),
            }
        }
        assert_eq!(ok, 10, "{name}: exactly the balance was spent");
        assert_eq!(refused, 40, "{name}");
        let (state, version) = bus.load::<Account>(&id.to_string()).await.unwrap();
        assert_eq!((state.balance, version), (0, 12), "{name}");
    }
}

#[tokio::test]
async fn expected_version_mismatch_is_a_conflict() {
    for (name, db) in both().await {
        let bus = CommandBus::new(db);
        let id = Uuid::new_v4();
        open_account(&bus, id, "V".into(), &ctx(id)).await.unwrap();
        let c = CommandContext {
            expected_version: Some(5),
            ..ctx(id)
        };
        let err = grant_credits(&bus, id, 1, String::new(), &c)
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                CommandError::VersionConflict {
                    expected: 5,
                    actual: 1
                }
            ),
            "{name}: {err:?}"
        );
        let c = CommandContext {
            expected_version: Some(1),
            ..ctx(id)
        };
        assert_eq!(
            grant_credits(&bus, id, 1, String::new(), &c)
                .await
                .unwrap()
                .version,
            2,
            "{name}"
        );
    }
}

/// Two buses stand for two processes: each caches what it wrote, the other's
/// writes make that cache stale. Stale caches must never decide wrongly.
#[tokio::test]
async fn stale_aggregate_caches_in_two_processes_stay_correct() {
    for (name, db) in both().await {
        let a = CommandBus::new(db.clone());
        let b = CommandBus::new(db.clone());
        let id = Uuid::new_v4();
        open_account(&a, id, "Two".into(), &ctx(id)).await.unwrap();
        grant_credits(&a, id, 5, String::new(), &ctx(id))
            .await
            .unwrap(); // a caches balance 5, v2
        spend_credits(&b, id, 5, String::new(), &ctx(id))
            .await
            .unwrap(); // truth: 0, v3
        // a's cache says 5: the append conflicts, a reloads and refuses.
        let err = spend_credits(&a, id, 1, String::new(), &ctx(id))
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                CommandError::Domain {
                    code: "INSUFFICIENT_CREDITS",
                    ..
                }
            ),
            "{name}: {err:?}"
        );
        grant_credits(&b, id, 7, String::new(), &ctx(id))
            .await
            .unwrap(); // b caches 7, v4
        grant_credits(&a, id, 1, String::new(), &ctx(id))
            .await
            .unwrap(); // truth: 8, v5 (a reloads)
        // b's cache says 7: spending 8 would be refused on it; the refusal is re-checked.
        let o = spend_credits(&b, id, 8, String::new(), &ctx(id))
            .await
            .unwrap();
        assert_eq!(
            (o.version, o.events[0].payload["balance_after"].as_i64()),
            (6, Some(0)),
            "{name}"
        );
        // Expected versions are checked against the store, not a stale cache.
        let c = CommandContext {
            expected_version: Some(6),
            ..ctx(id)
        };
        assert_eq!(
            grant_credits(&a, id, 1, String::new(), &c)
                .await
                .unwrap()
                .version,
            7,
            "{name}"
        );
        let (state, version) = a.load::<Account>(&id.to_string()).await.unwrap();
        assert_eq!((state.balance, version), (1, 7), "{name}");
    }
}

/// A command that writes several events across a snapshot boundary (a big
/// import: one event per chunk of keywords) leaves a snapshot that holds
/// every one of them: later loads see all the keywords.
#[tokio::test]
async fn a_multi_event_command_across_a_snapshot_boundary_loses_nothing() {
    use igny8_domain::planner::{KeywordData, SectorKeywords, keyword_id, normalize};
    for (name, db) in both().await {
        let bus = CommandBus::new(db.clone());
        let (account, site, sector) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let kw = |text: String| KeywordData {
            id: keyword_id(sector, &normalize(&text)),
            keyword: text,
            volume: 1,
            difficulty: 1,
            intent: None,
            cpc: None,
        };
        let add = |batch: Vec<KeywordData>| {
            let bus = bus.clone();
            async move {
                igny8_commands::planner::add_keywords(
                    &bus,
                    account,
                    site,
                    sector,
                    batch,
                    "test",
                    &ctx(account),
                )
                .await
                .unwrap()
            }
        };
        // Sequence 1 (set opened) and 2, then one event each up to 49.
        add(vec![kw("k0".into())]).await;
        for i in 1..48 {
            add(vec![kw(format!("k{i}"))]).await;
        }
        // Three chunks (sequences 50–52): the boundary falls after the first.
        let big: Vec<KeywordData> = (0..4001).map(|i| kw(format!("big {i}"))).collect();
        let out = add(big).await;
        assert_eq!(out.version, 52, "{name}: {:?}", out.events.len());
        for fresh in [CommandBus::new(db.clone()), bus.clone()] {
            let (state, version) = fresh
                .load::<SectorKeywords>(&sector.to_string())
                .await
                .unwrap();
            assert_eq!(version, 52, "{name}");
            assert_eq!(state.ids.len(), 48 + 4001, "{name}: every keyword");
        }
    }
}
