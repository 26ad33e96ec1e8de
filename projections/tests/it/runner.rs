//! The projection runner against PostgreSQL and SQLite: redelivery is
//! idempotent, a gap in the stream is refused, a rebuild swaps tables while
//! the live runner follows, and ledger rows sum to the balance.

use crate::common::*;
use igny8_commands::testkit::{pg_db, sqlite_db};
use igny8_commands::{CommandBus, Db};
use igny8_projections::billing::{AccountsProjection, NAME};
use igny8_projections::checkpoint::{ApplyError, Delivered, apply_batch, load};
use igny8_projections::{WaitOutcome, rebuild, run_embedded, wait_for};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

async fn both() -> Vec<(&'static str, Db)> {
    vec![
        ("postgres", pg_db().await.0),
        ("sqlite", sqlite_db().await.0),
    ]
}

async fn all_events(bus: &CommandBus, expected: usize) -> Vec<igny8_commands::StoredEvent> {
    igny8_commands::testkit::read_all(&bus.feed(), expected).await
}

async fn create_live_tables(db: &Db) {
    // run_embedded creates them; here we apply by hand, so create them via a rebuild of nothing.
    rebuild(db, &CommandBus::new(db.clone()).feed(), &AccountsProjection)
        .await
        .unwrap();
}

#[tokio::test]
async fn redelivered_events_change_nothing() {
    for (name, db) in both().await {
        let bus = CommandBus::new(db.clone());
        create_live_tables(&db).await;
        let ids = write_accounts(&bus, 3, 4).await;
        let batch: Vec<Delivered> = all_events(&bus, 3 * 6)
            .await
            .into_iter()
            .map(|event| Delivered {
                event,
                stream_seq: None,
            })
            .collect();
        let first = apply_batch(&db, &AccountsProjection, "", &batch)
            .await
            .unwrap();
        assert_eq!(first.applied, batch.len(), "{name}");
        let accounts = accounts_table(&db).await;
        let ledger = ledger_table(&db).await;
        // The whole batch again, and again one by one: nothing moves.
        let again = apply_batch(&db, &AccountsProjection, "", &batch)
            .await
            .unwrap();
        assert_eq!((again.applied, again.skipped), (0, batch.len()), "{name}");
        for d in &batch {
            assert_eq!(
                apply_batch(&db, &AccountsProjection, "", std::slice::from_ref(d))
                    .await
                    .unwrap()
                    .applied,
                0
            );
        }
        assert_eq!(accounts_table(&db).await, accounts, "{name}");
        assert_eq!(ledger_table(&db).await, ledger, "{name}");
        let got: Vec<(String, i64)> = accounts.iter().map(|r| (r.0.clone(), r.1)).collect();
        assert_eq!(got, expected_balances(&bus, &ids).await, "{name}");
        assert_eq!(
            ledger.len(),
            3 * 5,
            "{name}: one ledger row per grant/spend"
        );
    }
}

#[tokio::test]
async fn a_stream_gap_is_refused_and_writes_nothing() {
    for (name, db) in both().await {
        let bus = CommandBus::new(db.clone());
        create_live_tables(&db).await;
        write_accounts(&bus, 1, 2).await;
        let events = all_events(&bus, 4).await;
        let d = |i: usize, seq: i64| Delivered {
            event: events[i].clone(),
            stream_seq: Some(seq),
        };
        apply_batch(&db, &AccountsProjection, "", &[d(0, 1)])
            .await
            .unwrap();
        let before = (accounts_table(&db).await, load(&db, NAME).await.unwrap());
        let err = apply_batch(&db, &AccountsProjection, "", &[d(1, 2), d(2, 4)])
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                ApplyError::Gap {
                    expected: 3,
                    got: 4
                }
            ),
            "{name}: {err:?}"
        );
        assert_eq!(
            (accounts_table(&db).await, load(&db, NAME).await.unwrap()),
            before,
            "{name}: all or nothing"
        );
        // A redelivery of an older stream message is skipped, the next one applies.
        let r = apply_batch(&db, &AccountsProjection, "", &[d(0, 1), d(1, 2)])
            .await
            .unwrap();
        assert_eq!((r.applied, r.skipped), (1, 1), "{name}");
    }
}

#[tokio::test]
async fn live_runner_follows_and_rebuild_swaps_without_downtime() {
    for (name, db) in both().await {
        let bus = CommandBus::new(db.clone());
        let (stop_tx, stop) = watch::channel(false);
        let runner = tokio::spawn(run_embedded(
            db.clone(),
            bus.feed(),
            Arc::new(AccountsProjection),
            igny8_commands::Health::new(),
            stop,
            None,
        ));
        let mut ids = write_accounts(&bus, 5, 3).await;
        // Rebuild while writers keep writing and readers keep reading.
        let writer = {
            let bus = bus.clone();
            tokio::spawn(async move { write_accounts(&bus, 5, 3).await })
        };
        let reader = {
            let db = db.clone();
            tokio::spawn(async move {
                for _ in 0..50 {
                    // The live table is always there, even mid-swap.
                    igny8_projections::billing::get_account(&db, "none")
                        .await
                        .expect("live table readable");
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            })
        };
        let report = rebuild(&db, &bus.feed(), &AccountsProjection)
            .await
            .unwrap();
        assert!(report.events > 0, "{name}");
        ids.extend(writer.await.unwrap());
        reader.await.unwrap();
        // A second rebuild works too (index and key names survived the swap).
        rebuild(&db, &bus.feed(), &AccountsProjection)
            .await
            .unwrap();
        let last = bus.feed().head().await.unwrap();
        assert_eq!(
            wait_for(&db, &bus.feed(), NAME, last, Duration::from_secs(10))
                .await
                .unwrap(),
            WaitOutcome::Reached,
            "{name}"
        );
        let got: Vec<(String, i64)> = accounts_table(&db)
            .await
            .into_iter()
            .map(|r| (r.0, r.1))
            .collect();
        assert_eq!(
            got,
            expected_balances(&bus, &ids).await,
            "{name}: read model equals the write side"
        );
        assert_eq!(
            ledger_table(&db).await.len(),
            ids.len() * 4,
            "{name}: no ledger row lost or doubled"
        );
        stop_tx.send(true).unwrap();
        runner.await.unwrap().unwrap();
    }
}

/// Reservations, captures and releases are ledger rows too; the sum of
/// `delta` is the balance at every row, on both databases, and a rebuild
/// produces the same ledger.
#[tokio::test]
async fn ledger_rows_for_every_movement_sum_to_the_balance() {
    for (name, db) in both().await {
        let bus = CommandBus::new(db.clone());
        create_live_tables(&db).await;
        let ids = write_accounts(&bus, 1, 2).await;
        let id = ids[0];
        use igny8_commands::billing::grant_credits;
        reserve_credits(&bus, id, "j1".into(), 30, "job".into(), &ctx(id))
            .await
            .unwrap();
        reserve_credits(&bus, id, "j2".into(), 20, "job".into(), &ctx(id))
            .await
            .unwrap();
        capture_credits(&bus, id, "j1".into(), 12, &ctx(id))
            .await
            .unwrap();
        release_credits(&bus, id, "j2".into(), "failed".into(), &ctx(id))
            .await
            .unwrap();
        reserve_credits(&bus, id, "j3".into(), 5, "job".into(), &ctx(id))
            .await
            .unwrap();
        grant_credits(&bus, id, 10, "top-up".into(), &ctx(id))
            .await
            .unwrap();
        let events = all_events(&bus, 10).await;
        let batch: Vec<Delivered> = events
            .into_iter()
            .map(|event| Delivered {
                event,
                stream_seq: None,
            })
            .collect();
        apply_batch(&db, &AccountsProjection, "", &batch)
            .await
            .unwrap();
        let rows: Vec<(String, i64, i64, i64, i64)> = igny8_commands::on_db!(&db, p => sqlx::query_as(
            "SELECT entry_type, amount, delta, balance_after, reserved_after FROM rm_credit_ledger ORDER BY sequence")
            .fetch_all(p).await.unwrap());
        let kinds: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "grant", "spend", "spend", "reserve", "reserve", "capture", "release", "reserve",
                "grant"
            ],
            "{name}"
        );
        let mut sum = 0;
        for (kind, _, delta, balance_after, _) in &rows {
            sum += delta;
            assert_eq!(sum, *balance_after, "{name}: {kind}");
        }
        assert_eq!(rows[4].4, 50, "{name}: reserved after two reservations");
        assert_eq!(
            (rows[5].3, rows[5].4),
            (86, 20),
            "{name}: capture of 12 (18 returned)"
        );
        assert_eq!(rows[6].4, 0, "{name}: all released");
        assert_eq!(
            (rows[8].3, rows[8].4),
            (96, 5),
            "{name}: a grant keeps the open reservation"
        );
        let acct: (i64, i64, i64) = igny8_commands::on_db!(&db, p => sqlx::query_as(
            "SELECT balance, reserved, total_spent FROM rm_accounts").fetch_one(p).await.unwrap());
        assert_eq!(acct, (96, 5, 14), "{name}");
        // A later batch of grants only (the set-based path on PostgreSQL)
        // still records the reservation held from before.
        grant_credits(&bus, id, 1, "later".into(), &ctx(id))
            .await
            .unwrap();
        let later: Vec<Delivered> = all_events(&bus, 11)
            .await
            .into_iter()
            .skip(10)
            .map(|event| Delivered {
                event,
                stream_seq: None,
            })
            .collect();
        assert_eq!(later.len(), 1, "{name}");
        apply_batch(&db, &AccountsProjection, "", &later)
            .await
            .unwrap();
        let last: (i64, i64) = igny8_commands::on_db!(&db, p => sqlx::query_as(
            "SELECT balance_after, reserved_after FROM rm_credit_ledger ORDER BY sequence DESC LIMIT 1")
            .fetch_one(p).await.unwrap());
        assert_eq!(
            last,
            (97, 5),
            "{name}: reservation carried into a later batch"
        );
        let full = |db: Db| async move {
            let r: Vec<(String, i64, i64, i64)> = igny8_commands::on_db!(&db, p => sqlx::query_as(
                "SELECT event_id, delta, balance_after, reserved_after FROM rm_credit_ledger ORDER BY event_id")
                .fetch_all(p).await.unwrap());
            r
        };
        let before = full(db.clone()).await;
        rebuild(&db, &bus.feed(), &AccountsProjection)
            .await
            .unwrap();
        assert_eq!(
            full(db.clone()).await,
            before,
            "{name}: a rebuild gives the same ledger"
        );
    }
}
