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

/// A nats-server killed right after acknowledging can come back without
/// those messages, while the relay's checkpoint already counts them. The
/// stream is what consumers read, so the relay resumes from its tail and
/// publishes them again, in feed order, each once.
#[tokio::test]
async fn a_relay_behind_whose_checkpoint_the_stream_lost_messages_publishes_them_again() {
    let (db, _) = pg_db().await;
    let bus = CommandBus::new(db.clone());
    let js = jetstream().await;
    let names = test_stream();
    let relay = |stop| {
        tokio::spawn(igny8_workers::relay::run(
            db.clone(),
            bus.feed(),
            js.clone(),
            names.clone(),
            igny8_commands::Health::new(),
            stop,
        ))
    };
    let wait_stream = |n: usize| {
        let (js, names) = (js.clone(), names.clone());
        async move {
            let deadline = std::time::Instant::now() + Duration::from_secs(15);
            loop {
                if let Ok(mut s) = js.get_stream(&names.stream).await
                    && s.info().await.unwrap().state.messages as usize >= n
                {
                    return;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "stream never held {n}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let (stop_tx, stop) = watch::channel(false);
    let first = relay(stop);
    write_accounts(&bus, 2, 1).await;
    let published = igny8_commands::testkit::read_all(&bus.feed(), 6).await;
    wait_stream(published.len()).await;
    stop_tx.send(true).unwrap();
    first.await.unwrap().unwrap();

    // More events, and a checkpoint that says they were published (the
    // acknowledgements the restarted nats-server forgot).
    write_accounts(&bus, 2, 1).await;
    let all = igny8_commands::testkit::read_all(&bus.feed(), 12).await;
    let last = all.last().unwrap().position();
    igny8_commands::on_db!(&db, p => {
        sqlx::query("UPDATE relay_checkpoints SET tx_id = $1, global_position = $2 WHERE stream = $3")
            .bind(last.tx_id)
            .bind(last.global_position)
            .bind(&names.stream)
            .execute(p)
            .await
            .map(|_| ())
            .unwrap()
    });

    let (stop_tx, stop) = watch::channel(false);
    let second = relay(stop);
    wait_stream(all.len()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        igny8_commands::testkit::stream_messages(&js, &names.stream).await,
        igny8_commands::testkit::feed_order(&all),
        "every event once, in feed order"
    );
    stop_tx.send(true).unwrap();
    second.await.unwrap().unwrap();
    js.delete_stream(&names.stream).await.unwrap();
}
