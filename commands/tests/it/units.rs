//! Units of work and credit reservations, on PostgreSQL and on SQLite:
//! several aggregates commit together or not at all, emails are unique
//! under concurrent sign-ups, and reservations never overdraw.

use igny8_commands::billing::{account, grant_credits, open_account};
use igny8_commands::secrets::Keyring;
use igny8_commands::testkit::{pg_db, sqlite_db};
use igny8_commands::{CommandBus, CommandContext, CommandError, Db};
use igny8_domain::billing::{Account, AccountCommand};
use igny8_domain::tenancy::{Login, User};
use std::sync::Arc;
use uuid::Uuid;

async fn reserve_credits(
    bus: &CommandBus,
    id: Uuid,
    reservation_id: String,
    amount: i64,
    reason: String,
    ctx: &CommandContext,
) -> Result<igny8_commands::CommandOutcome, CommandError> {
    account(
        bus,
        id,
        AccountCommand::Reserve {
            reservation_id,
            amount,
            reason,
        },
        ctx,
    )
    .await
}

async fn capture_credits(
    bus: &CommandBus,
    id: Uuid,
    reservation_id: String,
    amount: i64,
    ctx: &CommandContext,
) -> Result<igny8_commands::CommandOutcome, CommandError> {
    account(
        bus,
        id,
        AccountCommand::Capture {
            reservation_id,
            amount,
        },
        ctx,
    )
    .await
}

async fn release_credits(
    bus: &CommandBus,
    id: Uuid,
    reservation_id: String,
    reason: String,
    ctx: &CommandContext,
) -> Result<igny8_commands::CommandOutcome, CommandError> {
    account(
        bus,
        id,
        AccountCommand::Release {
            reservation_id,
            reason,
        },
        ctx,
    )
    .await
}

async fn both() -> Vec<(&'static str, Db)> {
    vec![
        ("postgres", pg_db().await.0),
        ("sqlite", sqlite_db().await.0),
    ]
}

fn ctx() -> CommandContext {
    CommandContext {
        actor: "user:test".into(),
        request_id: Uuid::new_v4().to_string(),
        ..Default::default()
    }
}

async fn count(db: &Db) -> i64 {
    igny8_commands::on_db!(db, p => sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(p).await.unwrap())
}

#[tokio::test]
async fn a_unit_of_work_commits_all_or_nothing() {
    for (name, db) in both().await {
        let bus = CommandBus::new(db.clone());
        let c = ctx();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        open_account(&bus, b, "B".into(), &c).await.unwrap();
        // A unit touching a fresh account and one another writer moves on
        // between our load and our commit: nothing of the unit is written.
        let mut uow = bus.unit(&c);
        uow.execute::<Account>(&a.to_string(), AccountCommand::Open { name: "A".into() })
            .await
            .unwrap();
        uow.execute::<Account>(
            &b.to_string(),
            AccountCommand::GrantCredits {
                amount: 5,
                reason: String::new(),
            },
        )
        .await
        .unwrap();
        grant_credits(&bus, b, 1, "concurrent".into(), &c)
            .await
            .unwrap();
        let before = count(&db).await;
        assert!(
            uow.commit().await.unwrap().is_none(),
            "{name}: lost the race"
        );
        assert_eq!(
            count(&db).await,
            before,
            "{name}: nothing of the unit was written"
        );
        let (acc_a, v) = bus.load::<Account>(&a.to_string()).await.unwrap();
        assert_eq!((acc_a.opened, v), (false, 0), "{name}");
        // Decided again, it commits both, in one go.
        let mut uow = bus.unit(&c);
        uow.execute::<Account>(&a.to_string(), AccountCommand::Open { name: "A".into() })
            .await
            .unwrap();
        uow.execute::<Account>(
            &a.to_string(),
            AccountCommand::GrantCredits {
                amount: 3,
                reason: String::new(),
            },
        )
        .await
        .unwrap();
        uow.execute::<Account>(
            &b.to_string(),
            AccountCommand::GrantCredits {
                amount: 5,
                reason: String::new(),
            },
        )
        .await
        .unwrap();
        let outs = uow.commit().await.unwrap().unwrap();
        assert_eq!(outs.len(), 2, "{name}");
        assert_eq!((outs[0].version, outs[1].version), (2, 3), "{name}");
        assert_eq!(
            bus.load::<Account>(&a.to_string()).await.unwrap().0.balance,
            3,
            "{name}"
        );
        assert_eq!(
            bus.load::<Account>(&b.to_string()).await.unwrap().0.balance,
            6,
            "{name}"
        );
        // A refusal anywhere in the unit stops it before anything is written.
        let before = count(&db).await;
        let mut uow = bus.unit(&c);
        uow.execute::<Account>(
            &a.to_string(),
            AccountCommand::GrantCredits {
                amount: 1,
                reason: String::new(),
            },
        )
        .await
        .unwrap();
        let refused = uow
            .execute::<Account>(
                &b.to_string(),
                AccountCommand::SpendCredits {
                    amount: 100,
                    reason: String::new(),
                },
            )
            .await;
        assert!(
            matches!(
                refused,
                Err(CommandError::Domain {
                    code: "INSUFFICIENT_CREDITS",
                    ..
                })
            ),
            "{name}"
        );
        drop(uow);
        assert_eq!(
            count(&db).await,
            before,
            "{name}: the refused unit wrote nothing"
        );
        assert_eq!(
            bus.load::<Account>(&a.to_string()).await.unwrap().0.balance,
            3,
            "{name}: the grant staged before the refusal was not applied"
        );
    }
}

#[tokio::test]
async fn concurrent_signups_with_one_email_create_one_account() {
    for (name, db) in both().await {
        let bus = Arc::new(CommandBus::new(db.clone()));
        let keys = Arc::new(Keyring::generate("k"));
        let mut tasks = vec![];
        for i in 0..8 {
            let (bus, keys) = (bus.clone(), keys.clone());
            tasks.push(tokio::spawn(async move {
                igny8_commands::tenancy::signup(
                    &bus,
                    &keys,
                    "Same@Example.com",
                    "password1",
                    &format!("Acct {i}"),
                    &ctx(),
                )
                .await
            }));
        }
        let mut won = vec![];
        for t in tasks {
            match t.await.unwrap() {
                Ok(s) => won.push(s),
                Err(CommandError::Domain {
                    code: "EMAIL_TAKEN",
                    ..
                }) => {}
                Err(e) => panic!("{name}: {e}"),
            }
        }
        assert_eq!(won.len(), 1, "{name}: exactly one sign-up wins");
        let (login, _) = bus.load::<Login>("same@example.com").await.unwrap();
        assert_eq!(login.user_id, Some(won[0].user_id), "{name}");
        // No orphans: one tenant, one account, one user were written.
        let tenants: i64 = igny8_commands::on_db!(&db, p => sqlx::query_scalar(
            "SELECT count(DISTINCT aggregate_id) FROM events WHERE aggregate_type IN ('tenant', 'user', 'account')").fetch_one(p).await.unwrap());
        assert_eq!(
            tenants, 2,
            "{name}: one account id (tenant + account) and one user"
        );
        let (user, _) = bus.load::<User>(&won[0].user_id.to_string()).await.unwrap();
        assert!(
            user.credential.starts_with("v1.k.") && !user.credential.contains("argon2"),
            "{name}: the hash is sealed, not in clear"
        );
        let who = igny8_commands::tenancy::authenticate(
            &bus,
            &keys,
            "same@example.com",
            "password1",
            &ctx(),
        )
        .await
        .unwrap();
        assert_eq!(who.map(|w| w.0), Some(won[0].user_id), "{name}");
        let nobody = igny8_commands::tenancy::authenticate(
            &bus,
            &keys,
            "same@example.com",
            "password2",
            &ctx(),
        )
        .await
        .unwrap();
        assert!(nobody.is_none(), "{name}");
    }
}

#[tokio::test]
async fn concurrent_reservations_never_exceed_the_balance() {
    for (name, db) in both().await {
        let bus = Arc::new(CommandBus::new(db));
        let id = Uuid::new_v4();
        let c = ctx();
        open_account(&bus, id, "Jobs".into(), &c).await.unwrap();
        grant_credits(&bus, id, 100, "plan".into(), &c)
            .await
            .unwrap();
        // 30 jobs ask for 10 each: exactly 10 get a reservation.
        let mut tasks = vec![];
        for i in 0..30 {
            let bus = bus.clone();
            tasks.push(tokio::spawn(async move {
                reserve_credits(
                    &bus,
                    id,
                    format!("job-{i}"),
                    10,
                    "clustering".into(),
                    &ctx(),
                )
                .await
            }));
        }
        let mut held = vec![];
        for (i, t) in tasks.into_iter().enumerate() {
            match t.await.unwrap() {
                Ok(_) => held.push(format!("job-{i}")),
                Err(CommandError::Domain {
                    code: "INSUFFICIENT_CREDITS",
                    ..
                }) => {}
                Err(e) => panic!("{name}: {e}"),
            }
        }
        assert_eq!(held.len(), 10, "{name}");
        let (a, _) = bus.load::<Account>(&id.to_string()).await.unwrap();
        assert_eq!(
            (a.balance, a.reserved(), a.available()),
            (100, 100, 0),
            "{name}"
        );
        // Capture less than reserved (the rest returns), release another, release twice.
        capture_credits(&bus, id, held[0].clone(), 7, &c)
            .await
            .unwrap();
        release_credits(&bus, id, held[1].clone(), "cancelled".into(), &c)
            .await
            .unwrap();
        let again = release_credits(&bus, id, held[1].clone(), "cancelled".into(), &c)
            .await
            .unwrap();
        assert!(
            again.events.is_empty(),
            "{name}: releasing twice changes nothing"
        );
        let over = capture_credits(&bus, id, held[2].clone(), 11, &c).await;
        assert!(
            matches!(
                over,
                Err(CommandError::Domain {
                    code: "CAPTURE_EXCEEDS_RESERVATION",
                    ..
                })
            ),
            "{name}"
        );
        let (a, _) = bus.load::<Account>(&id.to_string()).await.unwrap();
        assert_eq!(
            (a.balance, a.reserved(), a.available()),
            (93, 80, 13),
            "{name}"
        );
    }
}

#[tokio::test]
async fn jobs_reserve_then_capture_or_release_exactly_once() {
    use igny8_commands::jobs::{Ending, create, finish, start};
    for (name, db) in both().await {
        let bus = CommandBus::new(db.clone());
        let c = ctx();
        let acct = Uuid::new_v4();
        open_account(&bus, acct, "Jobs".into(), &c).await.unwrap();
        grant_credits(&bus, acct, 25_000, "plan".into(), &c)
            .await
            .unwrap();
        // Created with its reservation in one commit.
        let (job, _) = create(
            &bus,
            acct,
            "auto_cluster",
            serde_json::json!({}),
            10_000,
            &c,
        )
        .await
        .unwrap();
        let (a, _) = bus.load::<Account>(&acct.to_string()).await.unwrap();
        assert_eq!(
            (a.balance, a.reserved(), a.available()),
            (25_000, 10_000, 15_000),
            "{name}"
        );
        // Not enough left for a second 20-credit job: nothing written.
        let before = count(&db).await;
        let refused = create(
            &bus,
            acct,
            "auto_cluster",
            serde_json::json!({}),
            20_000,
            &c,
        )
        .await;
        assert!(
            matches!(
                refused,
                Err(CommandError::Domain {
                    code: "INSUFFICIENT_CREDITS",
                    ..
                })
            ),
            "{name}"
        );
        assert_eq!(
            count(&db).await,
            before,
            "{name}: no job without its reservation"
        );
        // A worker starts, dies, another starts: two attempts, one charge.
        let first = start(&bus, job, "w1", &c).await.unwrap();
        let second = start(&bus, job, "w2", &c).await.unwrap();
        assert_eq!((first, second), (1, 2), "{name}");
        // The first worker was only slow: its ending is refused, nothing settles.
        let stale = finish(
            &bus,
            job,
            Ending::Succeeded {
                save: None,
                attempt: first,
                result: serde_json::Value::Null,
                charged: 7_000,
            },
            &c,
        )
        .await;
        assert!(
            matches!(
                stale,
                Err(CommandError::Domain {
                    code: "JOB_SUPERSEDED",
                    ..
                })
            ),
            "{name}: {stale:?}"
        );
        finish(
            &bus,
            job,
            Ending::Succeeded {
                save: None,
                attempt: second,
                result: serde_json::json!({"clusters": 3}),
                charged: 7_000,
            },
            &c,
        )
        .await
        .unwrap();
        let again = finish(
            &bus,
            job,
            Ending::Succeeded {
                save: None,
                attempt: second,
                result: serde_json::Value::Null,
                charged: 7_000,
            },
            &c,
        )
        .await;
        assert!(
            matches!(
                again,
                Err(CommandError::Domain {
                    code: "JOB_FINISHED",
                    ..
                })
            ),
            "{name}"
        );
        let late_failure = finish(
            &bus,
            job,
            Ending::Failed {
                attempt: None,
                error: "late".into(),
            },
            &c,
        )
        .await;
        assert!(
            late_failure.is_err(),
            "{name}: a finished job cannot fail later"
        );
        let (a, _) = bus.load::<Account>(&acct.to_string()).await.unwrap();
        assert_eq!(
            (a.balance, a.reserved()),
            (18_000, 0),
            "{name}: 7 charged once, 3 returned"
        );
        // Failure and cancel release the whole reservation.
        let (j2, _) = create(&bus, acct, "auto_cluster", serde_json::json!({}), 5_000, &c)
            .await
            .unwrap();
        let attempt = start(&bus, j2, "w1", &c).await.unwrap();
        finish(
            &bus,
            j2,
            Ending::Failed {
                attempt: Some(attempt),
                error: "provider 500".into(),
            },
            &c,
        )
        .await
        .unwrap();
        let (j3, _) = create(&bus, acct, "auto_cluster", serde_json::json!({}), 5_000, &c)
            .await
            .unwrap();
        finish(&bus, j3, Ending::Cancelled, &c).await.unwrap();
        let cancel_again = finish(&bus, j3, Ending::Cancelled, &c).await;
        assert!(
            matches!(
                cancel_again,
                Err(CommandError::Domain {
                    code: "JOB_FINISHED",
                    ..
                })
            ),
            "{name}"
        );
        let (a, _) = bus.load::<Account>(&acct.to_string()).await.unwrap();
        assert_eq!((a.balance, a.reserved()), (18_000, 0), "{name}");
    }
}

#[tokio::test]
async fn a_cancelled_job_saves_no_clusters() {
    use igny8_commands::jobs::{Ending, Save, SaveClusters, create, finish, start};
    use igny8_domain::planner::{ClusterSummary, KeywordData};
    for (name, db) in both().await {
        let bus = CommandBus::new(db.clone());
        let c = ctx();
        let (acct, site, sector) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        open_account(&bus, acct, "Jobs".into(), &c).await.unwrap();
        grant_credits(&bus, acct, 10_000, "plan".into(), &c)
            .await
            .unwrap();
        let kw = KeywordData::new(sector, "best crm", 10, 5, None, None).unwrap();
        let kid = kw.id;
        igny8_commands::planner::add_keywords(&bus, acct, site, sector, vec![kw], "manual", &c)
            .await
            .unwrap();
        let (job, _) = create(
            &bus,
            acct,
            "auto_cluster",
            serde_json::json!({}),
            10_000,
            &c,
        )
        .await
        .unwrap();
        let attempt = start(&bus, job, "w1", &c).await.unwrap();
        // Cancelled while the worker clusters …
        finish(&bus, job, Ending::Cancelled, &c).await.unwrap();
        // … the worker's success (with its clusters) is refused as a whole.
        let late = finish(
            &bus,
            job,
            Ending::Succeeded {
                attempt,
                result: serde_json::Value::Null,
                charged: 10_000,
                save: Some(Save::Clusters(SaveClusters {
                    sector_id: sector,
                    clusters: vec![ClusterSummary {
                        cluster_id: Uuid::new_v4(),
                        name: "best crm".into(),
                        description: String::new(),
                        keyword_ids: vec![kid],
                        total_volume: 10,
                        avg_difficulty: 5.0,
                        dominant_intent: None,
                    }],
                })),
            },
            &c,
        )
        .await;
        assert!(
            matches!(
                late,
                Err(CommandError::Domain {
                    code: "JOB_FINISHED",
                    ..
                })
            ),
            "{name}"
        );
        let saved: i64 = igny8_commands::on_db!(&db, p => sqlx::query_scalar(
            "SELECT count(*) FROM events WHERE event_type = 'ClustersAssigned'").fetch_one(p).await.unwrap());
        assert_eq!(saved, 0, "{name}: no clusters without the job's success");
        let (a, _) = bus.load::<Account>(&acct.to_string()).await.unwrap();
        assert_eq!(
            (a.balance, a.reserved()),
            (10_000, 0),
            "{name}: nothing charged"
        );
    }
}

/// An aggregate written only by units of work gets snapshots as it grows,
/// and loading from a snapshot gives exactly the state its events replay to
/// (also when one commit crosses a boundary with several events, and when
/// ordinary commands write it in between).
#[tokio::test]
async fn units_of_work_snapshot_what_they_grow_and_loads_stay_exact() {
    for (mode, db) in both().await {
        let bus = CommandBus::new(db.clone());
        let id = Uuid::now_v7();
        let ctx = CommandContext {
            account_id: Some(id.to_string()),
            actor: "test".into(),
            ..Default::default()
        };
        open_account(&bus, id, "Snap".into(), &ctx).await.unwrap();
        grant_credits(&bus, id, 1_000_000, "seed".into(), &ctx)
            .await
            .unwrap();
        let aid = id.to_string();
        for round in 0..40 {
            // Three events per commit: reserve two, capture one.
            igny8_commands::uow::retry(|| async {
                let mut uow = bus.unit(&ctx);
                for k in 0..2 {
                    uow.execute::<Account>(
                        &aid,
                        AccountCommand::Reserve {
                            reservation_id: format!("r{round}-{k}"),
                            amount: 7,
                            reason: "t".into(),
                        },
                    )
                    .await?;
                }
                uow.execute::<Account>(
                    &aid,
                    AccountCommand::Capture {
                        reservation_id: format!("r{round}-0"),
                        amount: 5,
                    },
                )
                .await?;
                uow.commit().await
            })
            .await
            .unwrap();
            if round % 9 == 0 {
                grant_credits(&bus, id, 1, "between".into(), &ctx)
                    .await
                    .unwrap();
            }
        }
        // The snapshot is recent: units of work wrote it (the few grants in
        // between cannot have carried it past their own sequences).
        let last: i64 = igny8_commands::on_db!(&db, p => sqlx::query_scalar(
            "SELECT last_sequence FROM snapshots WHERE aggregate_type = 'account' AND aggregate_id = $1")
            .bind(&aid).fetch_one(p).await.unwrap());
        assert!(
            last >= 100,
            "{mode}: a snapshot at {last}, written by the units of work"
        );
        let (loaded, version) = bus.load::<Account>(&aid).await.unwrap();
        // The same state replayed from every event.
        let events = bus
            .feed()
            .aggregate_events("account", &aid, 1, 10_000)
            .await
            .unwrap();
        let mut replayed = Account::default();
        for e in &events {
            use igny8_domain::Aggregate;
            replayed.apply(&e.decode().unwrap());
        }
        assert_eq!(version as usize, events.len(), "{mode}");
        assert_eq!(
            loaded, replayed,
            "{mode}: loaded from the snapshot = replayed"
        );
        assert_eq!(loaded.reserved(), 40 * 7, "{mode}");
    }
}

/// Many aggregates preloaded in one go (a scheduler's batch) are exactly
/// what loading each gives — from a snapshot and the events after it, from
/// events only, or new — and their versions hold: a unit of work on them
/// commits, and one whose aggregate another writer changed since is
/// refused whole.
#[tokio::test]
async fn preloaded_aggregates_are_the_loaded_ones() {
    for (mode, db) in both().await {
        let bus = CommandBus::new(db.clone());
        let ctx = CommandContext {
            actor: "test".into(),
            ..Default::default()
        };
        let mut ids = vec![];
        for (i, grants) in [1usize, 2, 3, 60, 120].into_iter().enumerate() {
            let id = Uuid::now_v7();
            open_account(&bus, id, format!("Batch {i}"), &ctx)
                .await
                .unwrap();
            for g in 0..grants {
                grant_credits(&bus, id, 1000 + g as i64, "g".into(), &ctx)
                    .await
                    .unwrap();
            }
            ids.push(id.to_string());
        }
        let never = Uuid::now_v7().to_string();
        ids.push(never.clone());
        let snapshots: i64 = igny8_commands::on_db!(&db, p => sqlx::query_scalar(
            "SELECT count(*) FROM snapshots WHERE aggregate_type = 'account' AND aggregate_id = $1")
            .bind(&ids[4]).fetch_one(p).await.unwrap());
        assert_eq!(snapshots, 1, "{mode}: the long account has a snapshot");
        let mut uow = bus.unit(&ctx);
        uow.preload::<Account>(&ids).await.unwrap();
        for id in &ids {
            let (loaded, _) = bus.load::<Account>(id).await.unwrap();
            assert_eq!(
                uow.state::<Account>(id).await.unwrap(),
                loaded,
                "{mode}: {id}"
            );
        }
        assert_eq!(
            uow.state::<Account>(&never).await.unwrap(),
            Account::default(),
            "{mode}"
        );
        for id in &ids[..5] {
            uow.execute::<Account>(
                id,
                AccountCommand::Reserve {
                    reservation_id: "batch".into(),
                    amount: 1,
                    reason: "t".into(),
                },
            )
            .await
            .unwrap();
        }
        assert!(uow.commit_unread().await.unwrap(), "{mode}: versions hold");
        for id in &ids[..5] {
            let (a, _) = bus.load::<Account>(id).await.unwrap();
            assert_eq!(a.reserved(), 1, "{mode}");
        }
        // Another writer in between: the whole unit is refused.
        let mut uow = bus.unit(&ctx);
        uow.preload::<Account>(&ids[..5]).await.unwrap();
        grant_credits(
            &bus,
            Uuid::parse_str(&ids[2]).unwrap(),
            5,
            "between".into(),
            &ctx,
        )
        .await
        .unwrap();
        for id in &ids[..5] {
            uow.execute::<Account>(
                id,
                AccountCommand::Reserve {
                    reservation_id: "late".into(),
                    amount: 1,
                    reason: "t".into(),
                },
            )
            .await
            .unwrap();
        }
        assert!(!uow.commit_unread().await.unwrap(), "{mode}: refused");
        let (a, _) = bus.load::<Account>(&ids[0]).await.unwrap();
        assert_eq!(a.reserved(), 1, "{mode}: nothing of it written");
    }
}
