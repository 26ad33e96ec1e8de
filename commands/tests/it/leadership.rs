//! Leadership of a singleton (relay, projection) when the leader's lock
//! session dies, as it does when PostgreSQL restarts: the old leader finds
//! out before its next batch, the standby takes over, and the two never
//! both believe they lead after the check.

use igny8_commands::Health;
use igny8_commands::db::Leadership;
use igny8_commands::on_db;
use igny8_commands::testkit::pg_db;
use std::time::{Duration, Instant};

/// Backends holding the advisory lock of `key` in `schema` (as the
/// leadership computes it).
async fn holders(db: &igny8_commands::Db, schema: &str, key: &str) -> Vec<i32> {
    on_db!(db, p => {
        sqlx::query_scalar(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1 \
             AND ((classid::bigint << 32) | objid::bigint) = hashtextextended($1 || ':' || $2, 0)",
        )
        .bind(schema)
        .bind(key)
        .fetch_all(p)
        .await
        .unwrap()
    })
}

#[tokio::test]
async fn a_leader_whose_session_died_knows_before_its_next_batch_and_the_standby_takes_over() {
    let (db, schema) = pg_db().await;
    let health = Health::new();
    let (_stop, rx) = tokio::sync::watch::channel(false);
    let key = "test:singleton";

    let mut a = Leadership::acquire(&db, key, &health, "a", &mut rx.clone())
        .await
        .unwrap();
    assert!(a.check().await, "the new leader leads");
    let first = holders(&db, &schema, key).await;
    assert_eq!(first.len(), 1, "one session holds the lock");

    // A second copy stands by (and says so) while the first leads.
    let standby = {
        let (db, health, mut rx) = (db.clone(), health.clone(), rx.clone());
        tokio::spawn(async move { Leadership::acquire(&db, key, &health, "b", &mut rx).await })
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !health
        .components()
        .iter()
        .any(|c| c.name == "b" && c.ready && c.detail == "standby")
    {
        assert!(Instant::now() < deadline, "b never stood by");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!standby.is_finished(), "b does not lead while a does");

    // The leader's session is killed (what a PostgreSQL restart does to it).
    let killed: bool = on_db!(&db, p => {
        sqlx::query_scalar("SELECT pg_terminate_backend($1)")
            .bind(first[0])
            .fetch_one(p)
            .await
            .unwrap()
    });
    assert!(killed);
    assert!(!a.check().await, "a knows it lost the lock");
    assert!(!a.check().await, "and stays lost until it acquires again");

    let mut b = tokio::time::timeout(Duration::from_secs(10), standby)
        .await
        .expect("b takes over within its polling interval")
        .unwrap()
        .unwrap();
    assert!(b.check().await);
    let now = holders(&db, &schema, key).await;
    assert_eq!(now.len(), 1, "still one holder");
    assert_ne!(now[0], first[0], "b's session, not a's");

    // a queues up again: it stands by behind b.
    let again = {
        let (db, health, mut rx) = (db.clone(), health.clone(), rx.clone());
        tokio::spawn(async move { Leadership::acquire(&db, key, &health, "a", &mut rx).await })
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!again.is_finished(), "a does not lead while b does");
    assert!(b.check().await);
    again.abort();
}
