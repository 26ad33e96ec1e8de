//! The `igny8` binary: zero-config serve and graceful shutdown, the relay
//! under SIGKILL, and the projections CLI.

use igny8_commands::billing::{grant_credits, open_account};
use igny8_commands::testkit::{nats_url, pg_db, pg_url, sqlite_db, unique};
use igny8_commands::{CommandBus, CommandContext, StreamNames};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

const BIN: &str = env!("CARGO_BIN_EXE_igny8");

fn igny8() -> Command {
    let mut c = Command::new(BIN);
    for v in [
        "DATABASE_URL",
        "NATS_URL",
        "IGNY8_DATA_DIR",
        "IGNY8_LISTEN",
        "IGNY8_DB_SCHEMA",
        "IGNY8_NATS_STREAM",
        "IGNY8_NATS_PREFIX",
    ] {
        c.env_remove(v);
    }
    c.env("RUST_LOG", "warn");
    c
}

/// A minimal HTTP/1.1 client: (status, body).
async fn http(addr: &str, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    http_as(addr, None, method, path, body).await
}

async fn http_as(
    addr: &str,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let body = body.unwrap_or("");
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

fn ctx(id: Uuid) -> CommandContext {
    CommandContext {
        account_id: Some(id.to_string()),
        ..Default::default()
    }
}

#[tokio::test]
async fn serve_with_no_configuration_then_sigterm_finishes_in_flight_requests() {
    let dir = std::env::temp_dir().join(unique("igny8-serve"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut child = igny8()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("IGNY8_READ_WAIT_MS", "1500")
        .current_dir(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut addr = String::new();
    let mut banner = String::new();
    for _ in 0..10 {
        let line = lines.next().expect("banner").unwrap();
        banner.push_str(&line);
        banner.push('\n');
        if let Some(a) = line.strip_prefix("IGNY8 listening on http://") {
            addr = a.trim().to_string();
            break;
        }
    }
    assert!(!addr.is_empty(), "no listen line in {banner}");
    assert!(banner.contains("embedded mode"), "{banner}");
    assert!(
        dir.join("igny8-data/igny8.db").exists(),
        "the embedded database lives under ./igny8-data"
    );
    let docs = lines.next().unwrap().unwrap();
    assert!(
        docs.contains("/api/docs/"),
        "prints how to reach the docs: {docs}"
    );

    let (status, body) = http(
        &addr,
        "POST",
        "/api/v1/auth/signup/",
        Some(r#"{"email":"bin@example.com","password":"password1","account_name":"Bin"}"#),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let signed: serde_json::Value = serde_json::from_str(&body).unwrap();
    let token = signed["data"]["access_token"].as_str().unwrap().to_string();
    let account = signed["data"]["account"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        dir.join("igny8-data/keys.json").exists(),
        "generated keys are kept beside the database"
    );
    // An in-flight request (its body still on the way when SIGTERM arrives)...
    let body = r#"{"name":"Slow Site"}"#;
    let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /api/v1/auth/sites/ HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    conn.write_all(&body.as_bytes()[..5]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // ...is finished, not cut, by SIGTERM.
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    conn.write_all(&body.as_bytes()[5..]).await.unwrap();
    let mut out = String::new();
    conn.read_to_string(&mut out).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 201"), "{out}");
    assert!(out.contains("Slow Site"), "{out}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let code = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "did not exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(code.success(), "clean exit after SIGTERM: {code:?}");
    assert!(
        tokio::net::TcpStream::connect(&addr).await.is_err(),
        "no longer listening"
    );
    // The operator's CLI on the same data folder.
    let out = igny8()
        .args(["admin", "create-operator", "--email", "op@example.com"])
        .env("IGNY8_OPERATOR_PASSWORD", "operator-password")
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = igny8()
        .args([
            "admin",
            "grant-credits",
            "--account",
            &account,
            "--amount",
            "5",
        ])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("granted 5 credits"));
    let out = igny8()
        .args([
            "admin",
            "grant-credits",
            "--account",
            &Uuid::new_v4().to_string(),
            "--amount",
            "5",
        ])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(!out.status.success(), "an unknown account is refused");
}

fn spawn_relay(schema: &str, names: &StreamNames) -> Child {
    igny8()
        .arg("relay")
        .env("DATABASE_URL", pg_url())
        .env("IGNY8_DB_SCHEMA", schema)
        .env("NATS_URL", nats_url())
        .env("IGNY8_NATS_STREAM", &names.stream)
        .env("IGNY8_NATS_PREFIX", &names.prefix)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[tokio::test]
async fn relay_killed_at_any_moment_publishes_every_event_exactly_once() {
    let (db, schema) = pg_db().await;
    let bus = CommandBus::new(db.clone());
    let prefix = unique("k");
    let names = StreamNames {
        stream: prefix.to_uppercase(),
        prefix,
    };
    let client = async_nats::connect(nats_url())
        .await
        .expect("NATS is required (scripts/test.sh starts it)");
    let js = async_nats::jetstream::new(client);

    // Writers keep appending while the relay is killed and restarted.
    let writer = {
        let bus = bus.clone();
        tokio::spawn(async move {
            let mut ids = vec![];
            for _ in 0..8 {
                let id = Uuid::new_v4();
                open_account(&bus, id, "k".into(), &ctx(id)).await.unwrap();
                ids.push(id);
            }
            for round in 0..400 {
                let id = ids[round % ids.len()];
                grant_credits(&bus, id, 1, String::new(), &ctx(id))
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    // Pseudo-random kill times (printed, so a failure can be replayed).
    let mut seed: u64 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    println!("kill schedule seed {seed}");
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    // Each round: two relays at once (one active, one standing by), each
    // SIGKILLed at its own random moment, so the standby takes over mid-stream.
    for _ in 0..4 {
        let mut relays = [spawn_relay(&schema, &names), spawn_relay(&schema, &names)];
        for r in relays.iter_mut() {
            tokio::time::sleep(Duration::from_millis(100 + next() % 1200)).await;
            r.kill().unwrap(); // SIGKILL
            r.wait().unwrap();
        }
    }
    writer.await.unwrap();
    let mut relay = spawn_relay(&schema, &names);
    let head = bus.feed().head().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut stream = loop {
        if let Ok(mut s) = js.get_stream(&names.stream).await
            && s.info().await.unwrap().state.messages as i64 >= head
        {
            break s;
        }
        assert!(Instant::now() < deadline, "relay did not catch up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    relay.kill().unwrap();
    relay.wait().unwrap();

    let info = stream.info().await.unwrap().clone();
    assert_eq!(
        info.state.messages as i64, head,
        "every event once: no loss, no duplicate"
    );
    let stored = igny8_commands::testkit::read_all(&bus.feed(), head as usize).await;
    assert_eq!(
        igny8_commands::testkit::stream_messages(&js, &names.stream).await,
        igny8_commands::testkit::feed_order(&stored),
        "the stream holds each of the store's events once, in feed order"
    );
    js.delete_stream(&names.stream).await.unwrap();
}

#[tokio::test]
async fn projections_cli_status_and_rebuild() {
    // SQLite: events written by the library, read model built by the CLI.
    let (db, path) = sqlite_db().await;
    let bus = CommandBus::new(db.clone());
    let id = Uuid::new_v4();
    open_account(&bus, id, "Cli".into(), &ctx(id))
        .await
        .unwrap();
    grant_credits(&bus, id, 3, String::new(), &ctx(id))
        .await
        .unwrap();
    db.close().await;
    let data_dir = path.parent().unwrap().to_str().unwrap().to_string();

    let out = igny8()
        .args([
            "projections",
            "rebuild",
            "billing_accounts",
            "--data-dir",
            &data_dir,
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("rebuilt billing_accounts: 2 events"),
        "{stdout}"
    );

    let out = igny8()
        .args(["projections", "status", "--data-dir", &data_dir])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    let row = stdout
        .lines()
        .find(|l| l.starts_with("billing_accounts"))
        .unwrap_or_else(|| panic!("{stdout}"));
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!((cols[1], cols[4]), ("2", "0"), "position 2, lag 0: {row}");

    let out = igny8()
        .args(["projections", "rebuild", "nope", "--data-dir", &data_dir])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unknown projection"),
        "clear error"
    );

    // PostgreSQL: the same commands against a schema.
    let (db, schema) = pg_db().await;
    let bus = CommandBus::new(db.clone());
    open_account(&bus, id, "Cli".into(), &ctx(id))
        .await
        .unwrap();
    let out = igny8()
        .args(["projections", "rebuild", "billing_accounts"])
        .env("DATABASE_URL", pg_url())
        .env("IGNY8_DB_SCHEMA", &schema)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let row = igny8_projections::billing::get_account(&db, &id.to_string())
        .await
        .unwrap()
        .expect("rebuilt row");
    assert_eq!(row.name, "Cli");

    // Bad configuration is a clear error, not a panic.
    let out = igny8()
        .args([
            "gateway",
            "--listen",
            "not-an-address",
            "--data-dir",
            &data_dir,
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--listen"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = igny8().arg("relay").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("NATS_URL"));
}

/// A clustering job whose worker process is SIGKILLed mid-call: JetStream
/// hands the job to another worker process after the ack wait, which
/// starts a new attempt and finishes it — charged once, saved once.
#[tokio::test]
async fn worker_killed_mid_job_leaves_it_to_another_worker() {
    use igny8_domain::billing::Account;
    use igny8_domain::jobs::{Job, JobState};
    use igny8_domain::planner::{KeywordData, SectorKeywords, keyword_id, normalize};
    use igny8_domain::tenancy::{Integration, IntegrationCommand, KeyChange};
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, Request as StubRequest, ResponseTemplate};

    let (db, schema) = pg_db().await;
    let bus = CommandBus::new(db.clone());
    let prefix = unique("w");
    let names = StreamNames {
        stream: prefix.to_uppercase(),
        prefix,
    };
    let secrets = igny8_commands::secrets::Keyring::generate("s1");
    // The provider: slow (each batch takes 700 ms), so the job is mid-call when killed.
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/embeddings"))
        .respond_with(|req: &StubRequest| {
            let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
            let data: Vec<serde_json::Value> = body["input"]
                .as_array()
                .unwrap()
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    let t = t.as_str().unwrap();
                    let v: Vec<f32> = ["shoes", "cake", "paris"]
                        .iter()
                        .map(|w| if t.contains(w) { 1.0 } else { 0.01 })
                        .collect();
                    serde_json::json!({"index": i, "embedding": v})
                })
                .collect();
            ResponseTemplate::new(200)
                .set_delay(Duration::from_millis(700))
                .set_body_json(serde_json::json!({"data": data, "usage": {"prompt_tokens": 8, "total_tokens": 8}}))
        })
        .mount(&server)
        .await;
    // An account with credits, settings, and 30 keywords in a sector.
    let account = Uuid::new_v4();
    let c = ctx(account);
    open_account(&bus, account, "w".into(), &c).await.unwrap();
    grant_credits(&bus, account, 100_000, "test".into(), &c)
        .await
        .unwrap();
    let iid = Integration::id(account, "openai");
    bus.execute::<Integration>(
        &iid.to_string(),
        IntegrationCommand::Configure {
            account_id: account,
            provider: "openai".into(),
            base_url: format!("{}/v1", server.uri()),
            embedding_model: "text-embedding-3-small".into(),
            chat_model: "gpt-4o-mini".into(),
            image_model: "gpt-image-1".into(),
            api_key: KeyChange::Set {
                sealed: igny8_commands::tenancy::seal_api_key(&secrets, iid, "sk-x"),
                hint: "sk-x".into(),
            },
        },
        &c,
    )
    .await
    .unwrap();
    let (site, sector) = (Uuid::new_v4(), Uuid::new_v4());
    let keywords: Vec<KeywordData> = ["running shoes", "chocolate cake", "flights to paris"]
        .iter()
        .flat_map(|t| (0..10).map(move |i| format!("{t} {i}")))
        .map(|k| KeywordData {
            id: keyword_id(sector, &normalize(&k)),
            keyword: k,
            volume: 10,
            difficulty: 1,
            intent: None,
            cpc: None,
        })
        .collect();
    igny8_commands::planner::add_keywords(&bus, account, site, sector, keywords, "test", &c)
        .await
        .unwrap();
    let (before, _) = bus.load::<Account>(&account.to_string()).await.unwrap();
    let (job, _) = igny8_commands::jobs::create(
        &bus,
        account,
        "auto_cluster",
        serde_json::json!({"sector_id": sector, "strategy": "embeddings", "num_clusters": 3}),
        10_000,
        &c,
    )
    .await
    .unwrap();
    let worker = || {
        igny8()
            .arg("workers")
            .env("DATABASE_URL", pg_url())
            .env("IGNY8_DB_SCHEMA", &schema)
            .env("NATS_URL", nats_url())
            .env("IGNY8_NATS_STREAM", &names.stream)
            .env("IGNY8_NATS_PREFIX", &names.prefix)
            .env("IGNY8_SECRET_KEYS", secrets.to_spec())
            .env(
                "IGNY8_JWT_KEYS",
                igny8_commands::secrets::Keyring::generate("j").to_spec(),
            )
            .env("IGNY8_JOB_ACK_WAIT_SECS", "2")
            .env("IGNY8_AI_EMBED_BATCH", "5")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut relay = spawn_relay(&schema, &names);
    let mut first = worker();
    // Killed once it is inside the provider calls.
    let deadline = Instant::now() + Duration::from_secs(60);
    while server.received_requests().await.unwrap().len() < 2 {
        assert!(
            Instant::now() < deadline,
            "the first worker never called the provider"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    let (mid, _) = bus.load::<Job>(&job.to_string()).await.unwrap();
    assert_eq!(
        (mid.state, mid.attempt),
        (JobState::Progress, 1),
        "killed mid-job"
    );
    let mut second = worker();
    let deadline = Instant::now() + Duration::from_secs(60);
    let done = loop {
        let (j, _) = bus.load::<Job>(&job.to_string()).await.unwrap();
        if j.state.finished() {
            break j;
        }
        assert!(
            Instant::now() < deadline,
            "the job was not taken over: {j:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    second.kill().unwrap();
    second.wait().unwrap();
    relay.kill().unwrap();
    relay.wait().unwrap();
    assert_eq!(done.state, JobState::Success, "{done:?}");
    assert_eq!(done.attempt, 2, "the second worker ran a new attempt");
    // Charged once: 10 credits gone, nothing left reserved.
    let (after, _) = bus.load::<Account>(&account.to_string()).await.unwrap();
    assert_eq!(before.balance - after.balance, 10_000);
    assert_eq!(after.reserved(), 0);
    // Saved once: three clusters, one clustering run, one success event.
    let (s, _) = bus
        .load::<SectorKeywords>(&sector.to_string())
        .await
        .unwrap();
    assert_eq!((s.clusters.len(), s.runs.len()), (3, 1));
    let events = bus
        .feed()
        .aggregate_events("job", &job.to_string(), 1, 1000)
        .await
        .unwrap();
    let count = |t: &str| events.iter().filter(|e| e.event_type == t).count();
    assert_eq!((count("JobStarted"), count("JobSucceeded")), (2, 1));
    // The provider saw the first attempt's calls and the whole second run.
    assert!(server.received_requests().await.unwrap().len() >= 2 + 6);
}
