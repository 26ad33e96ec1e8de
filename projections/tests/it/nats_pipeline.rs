//! PostgreSQL → relay → JetStream → durable consumer → read model, for real.

use crate::common::*;
use igny8_commands::testkit::{nats_url, pg_db, unique};
use igny8_commands::{CommandBus, StreamNames};
use igny8_projections::billing::{AccountsProjection, NAME};
use igny8_projections::{WaitOutcome, run_nats, wait_for};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

pub async fn jetstream() -> async_nats::jetstream::Context {
    let url = nats_url();
    let client = async_nats::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("NATS with JetStream is required and is not reachable at {url}: {e}. Run scripts/test.sh, which starts it."));
    async_nats::jetstream::new(client)
}

pub fn test_stream() -> StreamNames {
    let s = unique("t");
    StreamNames {
        stream: s.to_uppercase(),
        prefix: s,
    }
}

#[tokio::test]
async fn events_flow_through_jetstream_into_the_read_model_and_survive_restarts() {
    let (db, _) = pg_db().await;
    let bus = CommandBus::new(db.clone());
    let js = jetstream().await;
    let names = test_stream();
    let (stop_tx, stop) = watch::channel(false);
    let relay = tokio::spawn(igny8_workers::relay::run(
        db.clone(),
        bus.feed(),
        js.clone(),
        names.clone(),
        igny8_commands::Health::new(),
        stop.clone(),
    ));
    let (p_stop_tx, p_stop) = watch::channel(false);
    let projection = tokio::spawn(run_nats(
        db.clone(),
        js.clone(),
        names.clone(),
        Arc::new(AccountsProjection),
        igny8_commands::Health::new(),
        p_stop,
        None,
    ));

    let mut ids = write_accounts(&bus, 4, 3).await;
    let head = bus.feed().head().await.unwrap();
    assert_eq!(
        wait_for(&db, &bus.feed(), NAME, head, Duration::from_secs(15))
            .await
            .unwrap(),
        WaitOutcome::Reached
    );

    // Stop the projection mid-stream, write more, start it again: it resumes.
    p_stop_tx.send(true).unwrap();
    projection.await.unwrap().unwrap();
    ids.extend(write_accounts(&bus, 3, 2).await);
    let (p_stop_tx, p_stop) = watch::channel(false);
    let projection = tokio::spawn(run_nats(
        db.clone(),
        js.clone(),
        names.clone(),
        Arc::new(AccountsProjection),
        igny8_commands::Health::new(),
        p_stop,
        None,
    ));
    let head = bus.feed().head().await.unwrap();
    assert_eq!(
        wait_for(&db, &bus.feed(), NAME, head, Duration::from_secs(15))
            .await
            .unwrap(),
        WaitOutcome::Reached
    );

    let got: Vec<(String, i64)> = accounts_table(&db)
        .await
        .into_iter()
        .map(|r| (r.0, r.1))
        .collect();
    assert_eq!(got, expected_balances(&bus, &ids).await);
    assert_eq!(ledger_table(&db).await.len(), 4 * 4 + 3 * 3);

    // Every event is in the stream exactly once, with its id as message id.
    let mut stream = js.get_stream(&names.stream).await.unwrap();
    let info = stream.info().await.unwrap();
    assert_eq!(
        info.state.messages as i64, head,
        "one stream message per event"
    );
    let cp = igny8_projections::checkpoint::load(&db, NAME)
        .await
        .unwrap();
    assert_eq!(cp.stream_seq as u64, info.state.last_sequence);

    p_stop_tx.send(true).unwrap();
    stop_tx.send(true).unwrap();
    projection.await.unwrap().unwrap();
    relay.await.unwrap().unwrap();
    js.delete_stream(&names.stream).await.unwrap();
}
