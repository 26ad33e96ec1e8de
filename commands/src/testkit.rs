//! Helpers for tests against the real services (used by every crate's tests).
//!
//! PostgreSQL tests get a fresh schema in the `test` database (fast, isolated,
//! no leftovers between runs); SQLite tests a fresh file. A missing service is
//! a test failure with a clear message, never a silent skip.

use crate::db::{Db, DbOptions};
use std::sync::atomic::{AtomicU64, Ordering};

/// `IGNY8_TEST_DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/test`.
pub fn pg_url() -> String {
    std::env::var("IGNY8_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// `IGNY8_TEST_NATS_URL`, default `nats://127.0.0.1:4222`.
pub fn nats_url() -> String {
    std::env::var("IGNY8_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// A name unique to this process and call: `prefix_<pid>_<n>_<nanos>`.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}_{}_{n}_{t}", std::process::id())
}

/// A migrated PostgreSQL database in a new schema; returns it and the schema name.
pub async fn pg_db() -> (Db, String) {
    let schema = unique("t");
    let url = pg_url();
    let admin = Db::connect(&url, &DbOptions { max_connections: 1, schema: None })
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL is required for this test and is not reachable at {url}: {e}. Run scripts/test.sh, which starts it."));
    crate::on_db!(&admin, p => sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(p).await.map(|_| ()).expect("create schema"));
    admin.close().await;
    let db = Db::connect(
        &url,
        &DbOptions {
            max_connections: 24,
            schema: Some(schema.clone()),
        },
    )
    .await
    .expect("connect");
    db.migrate().await.expect("migrate postgres");
    (db, schema)
}

/// A migrated SQLite database in a new temporary file.
pub async fn sqlite_db() -> (Db, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(unique("igny8"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("igny8.db");
    let db = Db::connect(
        &format!("sqlite://{}", path.display()),
        &DbOptions::default(),
    )
    .await
    .expect("sqlite");
    db.migrate().await.expect("migrate sqlite");
    (db, path)
}

/// Every event of the feed, waiting (bounded) until at least `expected` are
/// visible. On PostgreSQL the feed holds back events while any older
/// transaction in the cluster is still open (that is what makes it
/// gap-safe), so tests running beside each other must wait, not assume.
pub async fn read_all(feed: &crate::Feed, expected: usize) -> Vec<crate::StoredEvent> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut out: Vec<crate::StoredEvent> = vec![];
    let mut pos = crate::Position::START;
    loop {
        let batch = feed.read_after(pos, 10_000).await.expect("feed read");
        if let Some(last) = batch.last() {
            pos = last.position();
        }
        let empty = batch.is_empty();
        out.extend(batch);
        if empty && out.len() >= expected {
            return out;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "feed delivered {} of {expected} events in 30 s",
            out.len()
        );
        if empty {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
}

/// Every message of a JetStream stream of events, in stream order:
/// (`Nats-Msg-Id`, `Igny8-Position`). Compare it with the feed's
/// `(event_id, position)` list to prove "each event once, in feed order".
pub async fn stream_messages(
    js: &async_nats::jetstream::Context,
    stream: &str,
) -> Vec<(String, crate::Position)> {
    let mut s = js.get_stream(stream).await.expect("stream");
    let info = s.info().await.expect("stream info").clone();
    let mut out = vec![];
    for seq in info.state.first_sequence..=info.state.last_sequence {
        let m = s.get_raw_message(seq).await.expect("stream message");
        let header = |name: &str| {
            m.headers
                .get(name)
                .unwrap_or_else(|| panic!("stream seq {seq} has no {name}"))
                .as_str()
                .to_string()
        };
        let position = header(crate::stream::POSITION_HEADER)
            .parse()
            .expect("Igny8-Position");
        out.push((header("Nats-Msg-Id"), position));
    }
    out
}

/// The feed's events as [`stream_messages`] shows them.
pub fn feed_order(events: &[crate::StoredEvent]) -> Vec<(String, crate::Position)> {
    events
        .iter()
        .map(|e| (e.event_id.to_string(), e.position()))
        .collect()
}
