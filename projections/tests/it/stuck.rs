//! A projection that cannot read an event stops there, says so, and goes on
//! once it can; a layout version change rebuilds on start.

use crate::common::*;
use crate::nats_pipeline::{jetstream, test_stream};
use async_trait::async_trait;
use igny8_commands::db::DbTx;
use igny8_commands::testkit::{pg_db, sqlite_db};
use igny8_commands::{CommandBus, Db, StoredEvent, on_db};
use igny8_projections::billing::{AccountsProjection, NAME};
use igny8_projections::checkpoint::load;
use igny8_projections::{
    Applied, Projection, ProjectionStatus, Table, WaitOutcome, run_embedded, run_nats, status,
    stuck, wait_for,
};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use uuid::Uuid;

/// The billing projection as a later build: another layout version, and/or
/// one that reads the renamed field (`amt`) a bad event carries.
struct Billing {
    version: u32,
    reads_amt: bool,
}

#[async_trait]
impl Projection for Billing {
    fn name(&self) -> &'static str {
        AccountsProjection.name()
    }
    fn version(&self) -> u32 {
        self.version
    }
    fn tables(&self) -> &'static [Table] {
        AccountsProjection.tables()
    }
    fn independent_aggregates(&self) -> bool {
        true
    }
    async fn apply_all(
        &self,
        tx: &mut DbTx,
        sfx: &str,
        events: &[&StoredEvent],
    ) -> anyhow::Result<Applied> {
        if !self.reads_amt {
            return AccountsProjection.apply_all(tx, sfx, events).await;
        }
        let fixed: Vec<StoredEvent> = events
            .iter()
            .map(|e| {
                let mut e = (*e).clone();
                e.payload = rename(&e.payload, "amt", "amount");
                e
            })
            .collect();
        let refs: Vec<&StoredEvent> = fixed.iter().collect();
        AccountsProjection.apply_all(tx, sfx, &refs).await
    }
}

/// `{"Type": {from: v, ..}}` with the field renamed to `to`.
fn rename(payload: &Value, from: &str, to: &str) -> Value {
    let mut p = payload.clone();
    if let Some(body) = p
        .as_object_mut()
        .and_then(|o| o.values_mut().next())
        .and_then(Value::as_object_mut)
        && let Some(v) = body.remove(from)
    {
        body.insert(to.to_string(), v);
    }
    p
}

async fn set_payload(db: &Db, event_id: Uuid, payload: &Value) {
    match db {
        Db::Postgres(p) => sqlx::query("UPDATE events SET payload = $1 WHERE event_id = $2")
            .bind(payload)
            .bind(event_id)
            .execute(p)
            .await
            .map(|_| ()),
        Db::Sqlite(p) => sqlx::query("UPDATE events SET payload = $1 WHERE event_id = $2")
            .bind(payload.to_string())
            .bind(event_id.to_string())
            .execute(p)
            .await
            .map(|_| ()),
    }
    .unwrap();
}

async fn billing_status(db: &Db, bus: &CommandBus) -> ProjectionStatus {
    let p: Arc<dyn Projection> = Arc::new(AccountsProjection);
    status(db, &bus.feed(), &[p]).await.unwrap().remove(0)
}

async fn until<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn balance(db: &Db, id: Uuid) -> Option<i64> {
    on_db!(db, p => sqlx::query_as::<_, (i64,)>("SELECT balance FROM rm_accounts WHERE account_id = $1")
        .bind(id.to_string()).fetch_optional(p).await.unwrap()).map(|r| r.0)
}

/// Two accounts (open, grant 100, spend 1, spend 1 each); the first spend
/// of the first account loses its `amount` (renamed `amt`). Returns the
/// accounts, the events in feed order and the bad event's original payload.
async fn with_a_bad_event(bus: &CommandBus, db: &Db) -> (Vec<Uuid>, Vec<StoredEvent>, Value) {
    let ids = write_accounts(bus, 2, 2).await;
    let events = igny8_commands::testkit::read_all(&bus.feed(), 8).await;
    let bad = &events[2];
    assert_eq!(bad.event_type, "CreditsSpent");
    let original = bad.payload.clone();
    set_payload(db, bad.event_id, &rename(&original, "amount", "amt")).await;
    (ids, events, original)
}

/// Stuck at `bad`: error and event id in status and `stuck`, checkpoint
/// right before it, nothing after it applied.
async fn assert_stuck_at(
    name: &str,
    db: &Db,
    bus: &CommandBus,
    ids: &[Uuid],
    events: &[StoredEvent],
) {
    let bad = &events[2];
    let s = billing_status(db, bus).await;
    assert_eq!(
        s.error_event_id.as_deref(),
        Some(bad.event_id.to_string().as_str()),
        "{name}"
    );
    let error = s.error.clone().unwrap();
    assert!(
        error.contains("amount") && error.contains(&bad.event_id.to_string()),
        "{name}: {error}"
    );
    assert!(s.error_at.is_some(), "{name}");
    assert_eq!(
        load(db, NAME).await.unwrap().position,
        events[1].position(),
        "{name}: the checkpoint stays right before the bad event"
    );
    assert_eq!(s.events_applied, 2, "{name}");
    assert_eq!(
        balance(db, ids[0]).await,
        Some(100),
        "{name}: the grant before it applied, the spends not"
    );
    assert_eq!(balance(db, ids[1]).await, None, "{name}: later events wait");
    let all: Vec<Arc<dyn Projection>> = igny8_projections::all();
    let st = stuck(db, &all).await.unwrap();
    assert_eq!(st.len(), 1, "{name}: {st:?}");
    assert_eq!(st[0].projection, NAME, "{name}");
    assert_eq!(
        st[0].event_id.as_deref(),
        Some(bad.event_id.to_string().as_str())
    );
}

async fn caught_up(name: &str, db: &Db, bus: &CommandBus, ids: &[Uuid]) {
    let head = bus.feed().head().await.unwrap();
    assert_eq!(
        wait_for(db, &bus.feed(), NAME, head, Duration::from_secs(30))
            .await
            .unwrap(),
        WaitOutcome::Reached,
        "{name}"
    );
    let s = billing_status(db, bus).await;
    assert_eq!(
        (s.error, s.error_event_id, s.error_at),
        (None, None, None),
        "{name}: the error is cleared once events apply"
    );
    let got: Vec<(String, i64)> = accounts_table(db)
        .await
        .into_iter()
        .map(|r| (r.0, r.1))
        .collect();
    assert_eq!(got, expected_balances(bus, ids).await, "{name}");
    assert!(
        stuck(db, &igny8_projections::all())
            .await
            .unwrap()
            .is_empty(),
        "{name}"
    );
}

#[tokio::test]
async fn an_undecodable_event_stops_the_embedded_runner_until_it_is_fixed() {
    for (name, db) in [
        ("postgres", pg_db().await.0),
        ("sqlite", sqlite_db().await.0),
    ] {
        let bus = CommandBus::new(db.clone());
        let (ids, events, original) = with_a_bad_event(&bus, &db).await;
        let (stop_tx, stop) = watch::channel(false);
        let runner = tokio::spawn(run_embedded(
            db.clone(),
            bus.feed(),
            Arc::new(AccountsProjection),
            igny8_commands::Health::new(),
            stop,
            None,
        ));
        until("the error to be recorded", || async {
            billing_status(&db, &bus).await.error.is_some()
        })
        .await;
        assert_stuck_at(name, &db, &bus, &ids, &events).await;
        // It keeps retrying at that event: never past it, never exits.
        let first = billing_status(&db, &bus).await.error_at;
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert!(!runner.is_finished(), "{name}");
        assert_stuck_at(name, &db, &bus, &ids, &events).await;
        assert_eq!(
            billing_status(&db, &bus).await.error_at,
            first,
            "{name}: stuck since the first failure"
        );
        // Fixed in the store: the runner goes on by itself.
        set_payload(&db, events[2].event_id, &original).await;
        caught_up(name, &db, &bus, &ids).await;
        stop_tx.send(true).unwrap();
        runner.await.unwrap().unwrap();
    }
}

#[tokio::test]
async fn an_undecodable_event_stops_the_nats_runner_until_a_build_reads_it() {
    let (db, _) = pg_db().await;
    let bus = CommandBus::new(db.clone());
    let (ids, events, original) = with_a_bad_event(&bus, &db).await;
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
    let old = tokio::spawn(run_nats(
        db.clone(),
        js.clone(),
        names.clone(),
        Arc::new(AccountsProjection),
        igny8_commands::Health::new(),
        p_stop,
        None,
    ));
    until("the error to be recorded", || async {
        billing_status(&db, &bus).await.error.is_some()
    })
    .await;
    assert_stuck_at("nats", &db, &bus, &ids, &events).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(!old.is_finished());
    assert_stuck_at("nats", &db, &bus, &ids, &events).await;
    // The stream keeps the bad message (the store is mended for the write
    // side's own check below); a build that reads it is deployed.
    set_payload(&db, events[2].event_id, &original).await;
    p_stop_tx.send(true).unwrap();
    old.await.unwrap().unwrap();
    let (p_stop_tx, p_stop) = watch::channel(false);
    let new = tokio::spawn(run_nats(
        db.clone(),
        js.clone(),
        names.clone(),
        Arc::new(Billing {
            version: 1,
            reads_amt: true,
        }),
        igny8_commands::Health::new(),
        p_stop,
        None,
    ));
    caught_up("nats", &db, &bus, &ids).await;
    p_stop_tx.send(true).unwrap();
    new.await.unwrap().unwrap();
    stop_tx.send(true).unwrap();
    relay.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_layout_version_change_rebuilds_on_start() {
    for (name, db) in [
        ("postgres", pg_db().await.0),
        ("sqlite", sqlite_db().await.0),
    ] {
        let bus = CommandBus::new(db.clone());
        let mut ids = write_accounts(&bus, 3, 2).await;
        let run = |version: u32| {
            let (stop_tx, stop) = watch::channel(false);
            let task = tokio::spawn(run_embedded(
                db.clone(),
                bus.feed(),
                Arc::new(Billing {
                    version,
                    reads_amt: false,
                }),
                igny8_commands::Health::new(),
                stop,
                None,
            ));
            (stop_tx, task)
        };
        // A fresh database records the version.
        let (stop, task) = run(1);
        caught_up(name, &db, &bus, &ids).await;
        stop.send(true).unwrap();
        task.await.unwrap().unwrap();
        assert_eq!(billing_status(&db, &bus).await.stored_version, Some(1));
        // Rows that the same version would not rebuild...
        let tamper = |db: Db| async move {
            on_db!(&db, p => sqlx::query("UPDATE rm_accounts SET balance = -1").execute(p).await.map(|_| ()))
                .unwrap()
        };
        tamper(db.clone()).await;
        let (stop, task) = run(1);
        tokio::time::sleep(Duration::from_millis(300)).await;
        stop.send(true).unwrap();
        task.await.unwrap().unwrap();
        assert!(
            accounts_table(&db).await.iter().all(|r| r.1 == -1),
            "{name}: same version, no rebuild"
        );
        // ...a new version rebuilds beside the live tables, then follows.
        let (stop, task) = run(2);
        until("the rebuild", || async {
            billing_status(&db, &bus).await.stored_version == Some(2)
        })
        .await;
        ids.extend(write_accounts(&bus, 2, 1).await);
        caught_up(name, &db, &bus, &ids).await;
        assert_eq!(
            ledger_table(&db).await.len(),
            3 * 3 + 2 * 2,
            "{name}: every movement once"
        );
        stop.send(true).unwrap();
        task.await.unwrap().unwrap();
        let s = billing_status(&db, &bus).await;
        assert_eq!((s.version, s.stored_version), (1, Some(2)), "{name}");
    }
}
