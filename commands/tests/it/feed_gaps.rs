//! The feed never skips a slow transaction and never delivers a rolled-back
//! or duplicate event — on real PostgreSQL, with interleaved commits.

use igny8_commands::billing::{grant_credits, open_account};
use igny8_commands::testkit::pg_db;
use igny8_commands::{CommandBus, CommandContext, Db, Position};
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use uuid::Uuid;

async fn insert_raw(tx: &mut sqlx::PgConnection, id: &str) -> Uuid {
    let (event_id,): (Uuid,) = sqlx::query_as(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
         VALUES ('probe', $1, 1, 'Probe', '1', '{}'::jsonb, '{}'::jsonb) RETURNING event_id",
    )
    .bind(id)
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    event_id
}

#[tokio::test]
async fn feed_is_gap_safe_under_concurrent_slow_and_rolled_back_transactions() {
    let (db, _schema) = pg_db().await;
    let Db::Postgres(pool) = db.clone() else {
        unreachable!()
    };
    let bus = CommandBus::new(db.clone());
    let feed = bus.feed();
    let stop = Arc::new(AtomicBool::new(false));

    // The reader under test, and a naive `global_position > last` reader
    // beside it to show the scenario really produces out-of-order commits.
    let reader = {
        let (feed, stop) = (feed.clone(), stop.clone());
        tokio::spawn(async move {
            let mut pos = Position::START;
            let mut seen = vec![];
            loop {
                let done = stop.load(Ordering::SeqCst);
                let batch = feed.read_after(pos, 50).await.unwrap();
                for e in &batch {
                    assert!(e.position() > pos, "feed went backwards");
                    pos = e.position();
                    seen.push(e.event_id);
                }
                if batch.is_empty() {
                    if done {
                        return seen;
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
        })
    };
    let naive = {
        let (pool, stop) = (pool.clone(), stop.clone());
        tokio::spawn(async move {
            let mut last = 0i64;
            let mut seen = vec![];
            loop {
                let done = stop.load(Ordering::SeqCst);
                let rows: Vec<(i64, Uuid)> = sqlx::query_as(
                    "SELECT global_position, event_id FROM events WHERE global_position > $1 ORDER BY global_position LIMIT 50",
                )
                .bind(last)
                .fetch_all(&pool)
                .await
                .unwrap();
                for (g, id) in &rows {
                    last = *g;
                    seen.push(*id);
                }
                if rows.is_empty() {
                    if done {
                        return seen;
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
        })
    };

    // A slow transaction takes an early position and stays open.
    let mut slow = pool.begin().await.unwrap();
    let slow_id = insert_raw(&mut slow, "slow").await;
    // A transaction that will roll back.
    let mut doomed = pool.begin().await.unwrap();
    let doomed_id = insert_raw(&mut doomed, "doomed").await;

    // Many concurrent appenders through the real command path.
    let mut tasks = vec![];
    for w in 0..16 {
        let bus = bus.clone();
        tasks.push(tokio::spawn(async move {
            let id = Uuid::new_v4();
            let c = CommandContext {
                account_id: Some(id.to_string()),
                ..Default::default()
            };
            let mut ids = vec![
                open_account(&bus, id, format!("w{w}"), &c)
                    .await
                    .unwrap()
                    .events[0]
                    .event_id,
            ];
            for _ in 0..25 {
                ids.push(
                    grant_credits(&bus, id, 1, String::new(), &c)
                        .await
                        .unwrap()
                        .events[0]
                        .event_id,
                );
            }
            ids
        }));
    }
    let mut committed: Vec<Uuid> = vec![];
    for t in tasks {
        committed.extend(t.await.unwrap());
    }
    // Let both readers catch up with what they can see, then finish the slow ones.
    tokio::time::sleep(Duration::from_millis(300)).await;
    doomed.rollback().await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    slow.commit().await.unwrap();
    committed.push(slow_id);
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);
    let seen = reader.await.unwrap();
    let naive_seen = naive.await.unwrap();

    let unique: HashSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "an event was delivered twice");
    assert!(
        !unique.contains(&doomed_id),
        "a rolled-back event was delivered"
    );
    let expected: HashSet<_> = committed.iter().collect();
    assert_eq!(
        unique, expected,
        "the feed must deliver every committed event"
    );
    assert!(
        seen.contains(&slow_id),
        "the slow transaction's event was skipped"
    );
    assert!(
        !naive_seen.contains(&slow_id),
        "the naive reader should have skipped the slow event; the scenario did not interleave"
    );
}

/// Reads the feed from `after` until `want` is delivered or `wait` passes.
async fn delivered_within(
    feed: &igny8_commands::Feed,
    after: Position,
    want: Uuid,
    wait: Duration,
) -> bool {
    let deadline = tokio::time::Instant::now() + wait;
    let mut pos = after;
    loop {
        for e in feed.read_after(pos, 100).await.unwrap() {
            pos = e.position();
            if e.event_id == want {
                return true;
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Transactions that append nothing to this schema's log — in another
/// database of the server, an append of another schema, a plain
/// transaction in this very schema — do not hold the feed back; an append
/// of ours still does, and is delivered (first) once it commits.
#[tokio::test]
async fn only_our_own_appends_hold_the_feed_back() {
    use sqlx::Connection;
    let (db, _schema) = pg_db().await;
    let Db::Postgres(pool) = db.clone() else {
        unreachable!()
    };
    let bus = CommandBus::new(db.clone());
    let feed = bus.feed();
    let account = Uuid::new_v4();
    let c = CommandContext {
        account_id: Some(account.to_string()),
        ..Default::default()
    };
    open_account(&bus, account, "feed".into(), &c)
        .await
        .unwrap();
    let start = feed.read_after(Position::START, 100).await.unwrap();
    let start = start
        .last()
        .map(|e| e.position())
        .unwrap_or(Position::START);

    // Three strangers, each holding a transaction id, left open.
    let url = igny8_commands::testkit::pg_url();
    let other_db_url = format!("{}/postgres", url.rsplit_once('/').unwrap().0);
    let mut other_database = sqlx::PgConnection::connect(&other_db_url).await.unwrap();
    sqlx::query("BEGIN")
        .execute(&mut other_database)
        .await
        .unwrap();
    sqlx::query("SELECT pg_current_xact_id()")
        .execute(&mut other_database)
        .await
        .unwrap();
    let (other, _other_schema) = pg_db().await;
    let Db::Postgres(other_pool) = other.clone() else {
        unreachable!()
    };
    let mut other_schema_append = other_pool.begin().await.unwrap();
    insert_raw(&mut other_schema_append, "theirs").await;
    let mut same_schema_plain = pool.begin().await.unwrap();
    sqlx::query("SELECT pg_current_xact_id()")
        .execute(&mut *same_schema_plain)
        .await
        .unwrap();

    // Our append is delivered while all three stay open.
    let ours = grant_credits(&bus, account, 1, String::new(), &c)
        .await
        .unwrap()
        .events[0]
        .event_id;
    assert!(
        delivered_within(&feed, start, ours, Duration::from_secs(3)).await,
        "a stranger's open transaction held the feed back"
    );

    // An append of ours left open holds back what commits after it...
    let after_ours = feed.read_after(start, 100).await.unwrap();
    let from = after_ours.last().unwrap().position();
    let mut slow = pool.begin().await.unwrap();
    let slow_id = insert_raw(&mut slow, "slow").await;
    let later = grant_credits(&bus, account, 1, String::new(), &c)
        .await
        .unwrap()
        .events[0]
        .event_id;
    assert!(
        !delivered_within(&feed, from, later, Duration::from_millis(300)).await,
        "a later commit was delivered while an earlier append of ours was open"
    );
    // ...and once it commits, both arrive, the slow one first: none skipped.
    slow.commit().await.unwrap();
    assert!(delivered_within(&feed, from, later, Duration::from_secs(3)).await);
    let order: Vec<Uuid> = feed
        .read_after(from, 100)
        .await
        .unwrap()
        .iter()
        .map(|e| e.event_id)
        .collect();
    assert_eq!(
        order,
        vec![slow_id, later],
        "the slow append first, then the later one"
    );

    same_schema_plain.rollback().await.unwrap();
    other_schema_append.rollback().await.unwrap();
    sqlx::query("ROLLBACK")
        .execute(&mut other_database)
        .await
        .unwrap();
}

/// An append must be its transaction's first write: otherwise its id could
/// be below a horizon a reader already took. The store refuses it.
#[tokio::test]
async fn an_append_after_another_write_in_its_transaction_is_refused() {
    let (db, _schema) = pg_db().await;
    let Db::Postgres(pool) = db.clone() else {
        unreachable!()
    };
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("UPDATE projection_checkpoints SET tx_id = tx_id")
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("SELECT pg_current_xact_id()")
        .execute(&mut *tx)
        .await
        .unwrap();
    let r = sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
         VALUES ('probe', 'x', 1, 'Probe', '1', '{}'::jsonb, '{}'::jsonb)",
    )
    .execute(&mut *tx)
    .await;
    let e = r.expect_err("refused");
    assert!(
        e.to_string().contains("first write of their transaction"),
        "{e}"
    );
}
