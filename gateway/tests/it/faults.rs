//! The scale-out mode under faults. A gateway, two relays, two projection
//! runners and a job worker run as separate `igny8` processes on a private
//! PostgreSQL and a private nats-server that this test starts, SIGKILLs and
//! restarts (never the machine's shared ones), while a credit load goes
//! through the gateway over HTTP with an `Idempotency-Key` per grant,
//! retried as a client would.
//!
//! What must hold: no process exits; each says the truth on `/ready` (503
//! while what it needs is away, 200 once it is back; the gateway stays
//! ready without NATS); the gateway answers 200 or 503 with `Retry-After`,
//! never 500; every grant is in the store once; the billing read model
//! matches the store (nothing applied twice by two leaders); JetStream holds
//! every event once, in feed order.

use igny8_commands::billing::open_account;
use igny8_commands::db::DbOptions;
use igny8_commands::testkit::unique;
use igny8_commands::{CommandBus, CommandContext, Db, Position};
use igny8_domain::billing::Account;
use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

const BIN: &str = env!("CARGO_BIN_EXE_igny8");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `(uid, gid)` to run PostgreSQL as when this test runs as root (it
/// refuses to run as root): the `postgres` user's.
fn postgres_user() -> Option<(u32, u32)> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("0");
    if euid != "0" {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let line = passwd
        .lines()
        .find(|l| l.starts_with("postgres:"))
        .expect("this test runs as root and PostgreSQL refuses root: a `postgres` user is required (the postgresql package creates it)");
    let f: Vec<&str> = line.split(':').collect();
    Some((f[2].parse().unwrap(), f[3].parse().unwrap()))
}

/// The newest installed PostgreSQL server binaries (`initdb`, `postgres`).
fn pg_bin_dir() -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").exists() && p.join("postgres").exists())
        .collect();
    dirs.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    dirs.pop().expect(
        "PostgreSQL server binaries (initdb, postgres) are required under /usr/lib/postgresql/<version>/bin (scripts/test.sh checks them)",
    )
}

/// A private PostgreSQL cluster: its own data directory and port.
struct Pg {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    user: Option<(u32, u32)>,
    child: Option<Child>,
}

impl Pg {
    fn init(dir: &Path) -> Pg {
        let user = postgres_user();
        std::fs::create_dir_all(dir).unwrap();
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(dir, Some(uid), Some(gid)).unwrap();
        }
        let pg = Pg {
            dir: dir.to_path_buf(),
            bin: pg_bin_dir(),
            port: free_port(),
            user,
            child: None,
        };
        let out = pg
            .cmd("initdb")
            .args(["-D", "data", "-U", "postgres", "-A", "trust", "--no-sync"])
            .args(["-E", "UTF8", "--locale=C"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        pg
    }

    fn cmd(&self, name: &str) -> Command {
        let mut c = Command::new(self.bin.join(name));
        c.current_dir(&self.dir);
        if let Some((uid, gid)) = self.user {
            c.uid(uid).gid(gid);
        }
        c
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Start (or restart after a SIGKILL: the old server's backends may
    /// hold its shared memory for a moment, so retry until it comes up).
    async fn start(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let log = std::fs::File::create(self.dir.join("postgres.log")).unwrap();
            let mut child = self
                .cmd("postgres")
                .args(["-D", "data", "-p", &self.port.to_string()])
                .args(["-k", self.dir.to_str().unwrap()])
                .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
                .args(["-c", "max_connections=300", "-c", "shared_buffers=32MB"])
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap();
            loop {
                if child.try_wait().unwrap().is_some() {
                    break; // exited (shared memory still in use): try again
                }
                let ready = self
                    .cmd("pg_isready")
                    .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-q"])
                    .status()
                    .unwrap()
                    .success();
                if ready {
                    self.child = Some(child);
                    return;
                }
                assert!(
                    Instant::now() < deadline,
                    "private PostgreSQL did not start: {}",
                    tail(&self.dir.join("postgres.log"))
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            assert!(
                Instant::now() < deadline,
                "private PostgreSQL did not restart: {}",
                tail(&self.dir.join("postgres.log"))
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap(); // SIGKILL: no shutdown checkpoint, crash recovery on start
            c.wait().unwrap();
        }
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        self.kill();
        // Orphaned backends exit on their own once the postmaster is gone.
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A private nats-server with JetStream, its store in `dir` (kept across restarts).
struct Nats {
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl Nats {
    fn new(dir: &Path) -> Nats {
        std::fs::create_dir_all(dir).unwrap();
        Nats {
            dir: dir.to_path_buf(),
            port: free_port(),
            child: None,
        }
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    async fn start(&mut self) {
        let bin = ["nats-server", "/usr/sbin/nats-server"]
            .into_iter()
            .find(|b| Command::new(b).arg("--version").output().is_ok())
            .expect("nats-server is required (scripts/test.sh checks it is installed)");
        let log = std::fs::File::create(self.dir.join("nats.log")).unwrap();
        self.child = Some(
            Command::new(bin)
                .args(["-a", "127.0.0.1", "-p", &self.port.to_string(), "-js"])
                .args(["-sd", self.dir.to_str().unwrap()])
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap(),
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "private nats-server did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The last lines of a log file, for failure messages.
fn tail(path: &Path) -> String {
    let s = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// One `igny8` process and the address of what tells its readiness.
struct Proc {
    name: String,
    args: Vec<String>,
    /// `/ready` is served here (the probe server, or the gateway itself).
    ready_addr: String,
    log: PathBuf,
    child: Option<Child>,
}

struct Cluster {
    dir: PathBuf,
    env: Vec<(String, String)>,
    procs: Vec<Proc>,
}

impl Cluster {
    fn spawn(&mut self, name: &str, args: &[&str], gateway: bool) {
        let ready_port = free_port();
        let ready_addr = format!("127.0.0.1:{ready_port}");
        let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        if gateway {
            args.extend(["--listen".into(), ready_addr.clone()]);
        } else {
            args.extend(["--probe-listen".into(), ready_addr.clone()]);
        }
        let mut p = Proc {
            name: name.to_string(),
            args,
            ready_addr,
            log: self.dir.join(format!("{name}.log")),
            child: None,
        };
        self.start(&mut p);
        self.procs.push(p);
    }

    fn start(&self, p: &mut Proc) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&p.log)
            .unwrap();
        let mut c = Command::new(BIN);
        c.args(&p.args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_LOG", "info,sqlx=warn,async_nats=error")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&self.dir)
            .stdout(Stdio::null())
            .stderr(log);
        p.child = Some(c.spawn().unwrap());
    }

    fn get(&self, name: &str) -> &Proc {
        self.procs.iter().find(|p| p.name == name).unwrap()
    }

    /// SIGKILL a process and start it again with the same arguments.
    fn kill_and_restart(&mut self, name: &str) {
        let i = self.procs.iter().position(|p| p.name == name).unwrap();
        let mut p = std::mem::replace(
            &mut self.procs[i],
            Proc {
                name: String::new(),
                args: vec![],
                ready_addr: String::new(),
                log: PathBuf::new(),
                child: None,
            },
        );
        let mut c = p.child.take().unwrap();
        c.kill().unwrap();
        c.wait().unwrap();
        self.start(&mut p);
        self.procs[i] = p;
    }

    fn logs(&self) -> String {
        self.procs
            .iter()
            .map(|p| format!("--- {} ---\n{}", p.name, tail(&p.log)))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// No process has exited.
    fn assert_all_running(&mut self) {
        let mut exited = vec![];
        for p in &mut self.procs {
            if let Some(status) = p.child.as_mut().unwrap().try_wait().unwrap() {
                exited.push(format!("{} exited: {status}", p.name));
            }
        }
        assert!(exited.is_empty(), "{exited:?}\n{}", self.logs());
    }

    /// Wait until `/ready` of each named process answers `want`.
    async fn wait_ready(&self, names: &[&str], want: u16, why: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        for name in names {
            let p = self.get(name);
            loop {
                let got = call(&p.ready_addr, "GET", "/ready", &[], None).await;
                if matches!(&got, Ok(r) if r.status == want) {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{why}: {name} /ready never answered {want} (last: {got:?})\n{}",
                    self.logs()
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for p in &mut self.procs {
            if let Some(c) = p.child.as_mut() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

#[derive(Debug)]
#[allow(dead_code)] // read in failure messages
struct Answer {
    status: u16,
    retry_after: Option<String>,
    body: String,
}

/// A minimal HTTP/1.1 call; an error when the server does not answer (in 15 s).
async fn call(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> std::io::Result<Answer> {
    let work = async {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        let body = body.unwrap_or("");
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ));
        s.write_all(req.as_bytes()).await?;
        let mut out = String::new();
        s.read_to_string(&mut out).await?;
        let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("no status line in {out:?}")))?;
        let retry_after = head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("retry-after")
                .then(|| v.trim().to_string())
        });
        Ok(Answer {
            status,
            retry_after,
            body: body.to_string(),
        })
    };
    tokio::time::timeout(Duration::from_secs(15), work)
        .await
        .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
}

/// What the credit load saw.
#[derive(Default)]
struct LoadReport {
    /// Grants answered 200, per account.
    granted: BTreeMap<Uuid, i64>,
    /// Every status the gateway answered, with how often.
    statuses: BTreeMap<u16, u64>,
    /// Calls that got no answer (gateway busy reconnecting, connection reset).
    no_answer: u64,
}

/// Grants of 1 credit to each account in turn, each with its own
/// `Idempotency-Key`, retried with that key until it is answered 200.
async fn credit_load(
    gateway: String,
    token: String,
    accounts: Vec<Uuid>,
    stop: Arc<AtomicBool>,
) -> LoadReport {
    let mut r = LoadReport::default();
    let auth = format!("Bearer {token}");
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let account = accounts[(i as usize) % accounts.len()];
        let key = format!("grant-{account}-{i}");
        let body =
            serde_json::json!({"account_id": account, "amount": 1, "reason": "load"}).to_string();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let headers = [("Authorization", auth.as_str()), ("Idempotency-Key", &key)];
            match call(
                &gateway,
                "POST",
                "/api/v1/billing/credits/grant/",
                &headers,
                Some(&body),
            )
            .await
            {
                Ok(a) => {
                    *r.statuses.entry(a.status).or_default() += 1;
                    match a.status {
                        200 => {
                            *r.granted.entry(account).or_default() += 1;
                            break;
                        }
                        503 => assert!(a.retry_after.is_some(), "a 503 says when to retry: {a:?}"),
                        _ => panic!("the gateway answered {} to a grant: {}", a.status, a.body),
                    }
                }
                Err(_) => r.no_answer += 1,
            }
            assert!(Instant::now() < deadline, "grant {key} never succeeded");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        i += 1;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    r
}

/// The process's `/metrics` holds this exact line.
async fn assert_metric(cluster: &Cluster, name: &str, line: &str) {
    let r = call(&cluster.get(name).ready_addr, "GET", "/metrics", &[], None)
        .await
        .unwrap_or_else(|e| panic!("{name}: /metrics does not answer: {e}"));
    assert!(
        r.body.lines().any(|l| l == line),
        "{name}: /metrics lacks `{line}`:\n{}",
        r.body
    );
}

#[tokio::test]
async fn scale_out_rides_out_postgres_and_nats_restarts_under_load() {
    let root = std::env::temp_dir().join(unique("igny8-faults"));
    std::fs::create_dir_all(&root).unwrap();
    let mut pg = Pg::init(&root.join("pg"));
    pg.start().await;
    // NATS is not started yet: processes must start without it.
    let mut nats = Nats::new(&root.join("nats"));
    let secrets = igny8_commands::secrets::Keyring::generate("s");
    let mut cluster = Cluster {
        dir: root.clone(),
        env: vec![
            ("DATABASE_URL".into(), pg.url()),
            ("NATS_URL".into(), nats.url()),
            ("IGNY8_DB_MAX_CONNECTIONS".into(), "8".into()),
            ("IGNY8_SECRET_KEYS".into(), secrets.to_spec()),
            (
                "IGNY8_JWT_KEYS".into(),
                igny8_commands::secrets::Keyring::generate("j").to_spec(),
            ),
        ],
        procs: vec![],
    };
    cluster.spawn("gateway", &["gateway"], true);
    // The gateway migrates; the others start beside it.
    cluster
        .wait_ready(&["gateway"], 200, "the gateway is ready without NATS")
        .await;
    for name in ["relay-a", "relay-b"] {
        cluster.spawn(name, &["relay"], false);
    }
    for name in ["projections-a", "projections-b"] {
        cluster.spawn(name, &["projections", "run"], false);
    }
    cluster.spawn("workers", &["workers"], false);
    let needs_nats = [
        "relay-a",
        "relay-b",
        "projections-a",
        "projections-b",
        "workers",
    ];
    let all = [
        "gateway",
        "relay-a",
        "relay-b",
        "projections-a",
        "projections-b",
        "workers",
    ];
    tokio::time::sleep(Duration::from_secs(2)).await;
    cluster.assert_all_running();
    for name in needs_nats {
        let r = call(&cluster.get(name).ready_addr, "GET", "/ready", &[], None)
            .await
            .unwrap_or_else(|e| panic!("{name}: probe does not answer: {e}\n{}", cluster.logs()));
        assert_eq!(r.status, 503, "{name} is not ready without NATS: {r:?}");
        let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(v["checks"]["nats"], false, "{name}: {v}");
        assert_eq!(v["checks"]["database"], true, "{name}: {v}");
    }
    nats.start().await;
    cluster
        .wait_ready(&all, 200, "NATS came after the processes")
        .await;

    // An operator, accounts, and the credit load through the gateway.
    let db = Db::connect(
        &pg.url(),
        &DbOptions {
            max_connections: 4,
            schema: None,
        },
    )
    .await
    .unwrap();
    let bus = CommandBus::new(db.clone());
    igny8_commands::tenancy::create_operator(&bus, &secrets, "op@example.com", "operator-pw")
        .await
        .unwrap();
    let mut accounts = vec![];
    for n in 0..4 {
        let id = Uuid::new_v4();
        let c = CommandContext {
            account_id: Some(id.to_string()),
            ..Default::default()
        };
        open_account(&bus, id, format!("Load {n}"), &c)
            .await
            .unwrap();
        accounts.push(id);
    }
    let mut opening = BTreeMap::new();
    for id in &accounts {
        let (a, _) = bus.load::<Account>(&id.to_string()).await.unwrap();
        opening.insert(*id, a.balance);
    }
    let gateway = cluster.get("gateway").ready_addr.clone();
    let login = r#"{"email":"op@example.com","password":"operator-pw"}"#;
    let deadline = Instant::now() + Duration::from_secs(30);
    let token = loop {
        // The users read model is built by the projection processes.
        let r = call(&gateway, "POST", "/api/v1/auth/login/", &[], Some(login))
            .await
            .unwrap();
        if r.status == 200 {
            let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
            break v["data"]["access_token"].as_str().unwrap().to_string();
        }
        assert!(Instant::now() < deadline, "login: {r:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn(credit_load(
        gateway.clone(),
        token,
        accounts.clone(),
        stop.clone(),
    ));
    tokio::time::sleep(Duration::from_secs(2)).await;

    // PostgreSQL SIGKILLed and restarted twice: every process says it is
    // not ready while it is away, none exits, all are ready after.
    // In the first round a second workers process starts while PostgreSQL
    // is away: it waits for it (never exits) and is not ready until then.
    // The metrics say what /ready says.
    for round in 1..=2 {
        pg.kill();
        cluster
            .wait_ready(&all, 503, &format!("PostgreSQL down (round {round})"))
            .await;
        assert_metric(
            &cluster,
            "workers",
            "igny8_dependency_up{dependency=\"database\"} 0",
        )
        .await;
        assert_metric(&cluster, "workers", "igny8_ready{process=\"workers\"} 0").await;
        if round == 1 {
            cluster.spawn("late-workers", &["workers"], false);
            tokio::time::sleep(Duration::from_secs(2)).await;
            cluster.assert_all_running();
            cluster
                .wait_ready(
                    &["late-workers"],
                    503,
                    "a process started while PostgreSQL is down",
                )
                .await;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        pg.start().await;
        cluster
            .wait_ready(&all, 200, &format!("PostgreSQL back (round {round})"))
            .await;
        cluster
            .wait_ready(
                &["late-workers"],
                200,
                "the late process once PostgreSQL is back",
            )
            .await;
        assert_metric(&cluster, "workers", "igny8_ready{process=\"workers\"} 1").await;
        assert_metric(
            &cluster,
            "late-workers",
            "igny8_dependency_up{dependency=\"database\"} 1",
        )
        .await;
        cluster.assert_all_running();
        tokio::time::sleep(Duration::from_secs(2)).await;
    }

    // One copy of each singleton SIGKILLed: the standby takes over.
    cluster.kill_and_restart("relay-a");
    cluster.kill_and_restart("projections-a");
    tokio::time::sleep(Duration::from_secs(2)).await;

    // NATS SIGKILLed and restarted: what works from it is not ready
    // meanwhile; the gateway stays ready and commands keep working.
    nats.kill();
    cluster.wait_ready(&needs_nats, 503, "NATS down").await;
    cluster
        .wait_ready(&["gateway"], 200, "the gateway without NATS")
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    nats.start().await;
    cluster.wait_ready(&all, 200, "NATS back").await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    stop.store(true, Ordering::Relaxed);
    let report = load.await.unwrap();
    println!(
        "grants per account {:?}; gateway statuses {:?}; unanswered calls {}",
        report.granted, report.statuses, report.no_answer
    );
    assert!(
        report.granted.values().sum::<i64>() > 20,
        "the load ran: {:?}",
        report.granted
    );
    cluster.assert_all_running();

    // Every grant once in the store.
    for id in &accounts {
        let (a, _) = bus.load::<Account>(&id.to_string()).await.unwrap();
        let granted = report.granted.get(id).copied().unwrap_or(0);
        assert_eq!(
            a.balance - opening[id],
            granted * 1000,
            "account {id}: each answered grant counted exactly once"
        );
    }
    // The billing read model catches up to exactly the store's balances.
    let deadline = Instant::now() + Duration::from_secs(60);
    for id in &accounts {
        let (a, version) = bus.load::<Account>(&id.to_string()).await.unwrap();
        loop {
            let row = igny8_projections::billing::get_account(&db, &id.to_string())
                .await
                .unwrap();
            if let Some(row) = &row
                && row.version as u64 >= version
            {
                assert_eq!(
                    (row.balance, row.version as u64),
                    (a.balance, version),
                    "account {id}: the read model applied each event once"
                );
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the billing projection did not catch up for {id}: {row:?}\n{}",
                cluster.logs()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let (rows, total) = igny8_projections::billing::list_ledger(
            &db,
            &id.to_string(),
            &igny8_projections::billing::LedgerFilter::default(),
        )
        .await
        .unwrap();
        let granted = report.granted.get(id).copied().unwrap_or(0);
        assert_eq!(total, granted, "one ledger row per grant: {rows:?}");
    }

    // JetStream: every event of the store once, in feed order. (Global
    // positions skip numbers after a crash — PostgreSQL sequences jump
    // ahead on recovery — so count the events, not the head.)
    let head = bus.feed().head().await.unwrap();
    let mut stored_events = vec![];
    let mut at = Position::START;
    while at.global_position < head {
        let batch = bus.feed().read_after(at, 10_000).await.unwrap();
        match batch.last() {
            Some(e) => at = e.position(),
            None => tokio::time::sleep(Duration::from_millis(20)).await,
        }
        stored_events.extend(batch);
    }
    let count = stored_events.len() as i64;
    let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    let names = igny8_commands::StreamNames::default();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut stream = loop {
        if let Ok(mut s) = js.get_stream(&names.stream).await
            && s.info().await.unwrap().state.messages as i64 >= count
        {
            break s;
        }
        if Instant::now() > deadline {
            let state = match js.get_stream(&names.stream).await {
                Ok(mut s) => format!("{:?}", s.info().await.map(|i| i.state.clone())),
                Err(e) => format!("no stream: {e}"),
            };
            let cp: Vec<(String, i64, i64)> = igny8_commands::on_db!(&db, p => {
                sqlx::query_as("SELECT stream, tx_id, global_position FROM relay_checkpoints")
                    .fetch_all(p)
                    .await
                    .unwrap()
            });
            let feed_ids: Vec<String> = stored_events
                .iter()
                .map(|e| e.event_id.to_string())
                .collect();
            let mut gaps = vec![];
            let mut fi = 0;
            for (seq, (id, _)) in igny8_commands::testkit::stream_messages(&js, &names.stream)
                .await
                .iter()
                .enumerate()
            {
                match feed_ids[fi..].iter().position(|f| f == id) {
                    Some(0) => {}
                    Some(n) => {
                        gaps.push(format!("before seq {}: {n} feed events missing", seq + 1))
                    }
                    None => gaps.push(format!("seq {}: not next in feed order", seq + 1)),
                }
                fi += feed_ids[fi..]
                    .iter()
                    .position(|f| f == id)
                    .map_or(0, |n| n + 1);
            }
            gaps.push(format!(
                "after the last seq: {} feed events missing",
                feed_ids.len() - fi
            ));
            panic!(
                "the relays did not catch up: {count} events (head {head}), stream {state}, checkpoints {cp:?}, gaps {gaps:?}\n{}",
                cluster.logs()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let info = stream.info().await.unwrap().clone();
    assert_eq!(info.state.messages as i64, count, "every event once");
    assert_eq!(
        igny8_commands::testkit::stream_messages(&js, &names.stream).await,
        igny8_commands::testkit::feed_order(&stored_events),
        "the stream holds each of the store's events once, in feed order"
    );
    cluster.assert_all_running();
    db.close().await;
    drop(cluster);
    drop(nats);
    drop(pg);
    let _ = std::fs::remove_dir_all(&root);
}
