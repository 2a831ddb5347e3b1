//! `plansync run` end to end: the real daemon binary against the emulator on 127.0.0.1 with an
//! OS-assigned port and a real SQLite file, on a two-second schedule. Results are checked
//! through the CRM's REST API, the daemon's HTTP endpoints, its log, systemd's notify socket
//! and, after it stopped, its store.

use std::fs::File;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use plansync::emulator::{Emulator, RunningEmulator};
use plansync::store::Store;
use serde_json::{json, Value};

use super::common::{plansync, write_config, Crm};

/// Long enough for a loaded two-core machine; never a measure of speed.
const PATIENCE: Duration = Duration::from_secs(90);
const NEVER: &str = "0 0 0 1 1 * 2099";

/// A running `plansync run`, its stderr in a file; killed if a test ends without stopping it.
struct Daemon {
    child: Child,
    log: PathBuf,
}

impl Daemon {
    fn start(config: &Path, name: &str, args: &[&str], env: &[(&str, &str)]) -> Daemon {
        let log = config.with_file_name(format!("{name}.log"));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_plansync"));
        cmd.args(["run", "--config", config.to_str().unwrap()])
            .args(args)
            .env("RUST_LOG", "warn,plansync=info")
            .env("PLANSYNC__SCHEDULE__INCREMENTAL", "*/2 * * * * *")
            .env("PLANSYNC__SCHEDULE__FULL", NEVER)
            .env("PLANSYNC__SCHEDULE__SNAPSHOT", NEVER)
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .env_remove("WATCHDOG_PID")
            .env_remove("JOURNAL_STREAM")
            .env_remove("INVOCATION_ID")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log).unwrap());
        for (key, value) in env {
            cmd.env(key, value);
        }
        Daemon {
            child: cmd.spawn().unwrap(),
            log,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log satisfies `done`; panics with the log after PATIENCE.
    async fn wait_for_log(&mut self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let log = self.log();
            if done(&log) {
                return log;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("the daemon exited ({status}) before {what}:\n{log}");
            }
            assert!(start.elapsed() < PATIENCE, "no {what} in time:\n{log}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .args([format!("-{name}"), self.pid().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{name} {}", self.pid());
    }

    async fn wait_exit(&mut self) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                start.elapsed() < PATIENCE,
                "the daemon did not exit:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGTERM; asserts a clean exit and returns the log.
    async fn stop(&mut self) -> String {
        self.signal("TERM");
        let status = self.wait_exit().await;
        let log = self.log();
        assert_eq!(status.code(), Some(0), "exit status {status}:\n{log}");
        log
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn runs_finished(log: &str, outcome: &str) -> usize {
    log.lines()
        .filter(|l| l.contains("run finished") && l.contains(outcome))
        .count()
}

/// An org with one account, a 2026 plan and an opportunity closing outside it.
struct SmallOrg {
    emulator: RunningEmulator,
    crm: Crm,
    dir: tempfile::TempDir,
    config: PathBuf,
    plan: String,
    opportunity: String,
}

impl SmallOrg {
    async fn new() -> SmallOrg {
        let emulator = Emulator::builder().seed("empty").start().await.unwrap();
        let crm = Crm::connect(&emulator).await;
        let account = crm.create("Account", json!({"Name": "Acme"})).await;
        let plan = crm
            .create(
                "Account_Plan__c",
                json!({"Name": "Acme 2026", "Account__c": account, "Status__c": "Active",
                       "Period_Start__c": "2026-01-01", "Period_End__c": "2026-12-31",
                       "Revenue_Target__c": 100000}),
            )
            .await;
        let opportunity = crm
            .create(
                "Opportunity",
                json!({"Name": "Later", "AccountId": account, "CloseDate": "2030-06-01",
                       "StageName": "Prospecting", "Amount": 20000}),
            )
            .await;
        let dir = tempfile::tempdir().unwrap();
        let config = write_config(dir.path(), &emulator);
        SmallOrg {
            emulator,
            crm,
            dir,
            config,
            plan,
            opportunity,
        }
    }

    async fn link(&self) -> Value {
        self.crm.get("Opportunity", &self.opportunity).await["Account_Plan__c"].clone()
    }

    /// Moves the opportunity into the plan's period and waits until the daemon linked it.
    async fn move_into_plan_and_wait_for_the_link(&self, daemon: &mut Daemon) {
        self.crm
            .update(
                "Opportunity",
                &self.opportunity,
                json!({"CloseDate": "2026-06-01"}),
            )
            .await;
        let start = Instant::now();
        while self.link().await != json!(self.plan) {
            if let Some(status) = daemon.child.try_wait().unwrap() {
                panic!("the daemon exited ({status}):\n{}", daemon.log());
            }
            assert!(
                start.elapsed() < PATIENCE,
                "the change was not synced:\n{}",
                daemon.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_runs_pick_up_a_crm_change_and_tell_systemd() {
    let org = SmallOrg::new().await;
    let socket_path = org.dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    // Read as systemd does, all along: an unread socket fills up after a few messages.
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let reader = std::thread::spawn(move || {
        let mut messages = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match socket.recv(&mut buf) {
                Ok(n) => messages.push(String::from_utf8_lossy(&buf[..n]).into_owned()),
                Err(_) if done_rx.try_recv().is_ok() => return messages,
                Err(_) => {}
            }
        }
    });
    let mut daemon = Daemon::start(
        &org.config,
        "daemon",
        &[],
        &[
            ("NOTIFY_SOCKET", socket_path.to_str().unwrap()),
            // A one-second watchdog: pings every half second.
            ("WATCHDOG_USEC", "1000000"),
        ],
    );
    daemon
        .wait_for_log("a first run", |l| runs_finished(l, "succeeded") >= 1)
        .await;
    // The opportunity closes after the plan's period: no link yet.
    assert_eq!(org.link().await, Value::Null);
    org.move_into_plan_and_wait_for_the_link(&mut daemon).await;
    let log = daemon.stop().await;
    assert!(log.contains("daemon stopped"), "{log}");

    done_tx.send(()).unwrap();
    let messages = reader.join().unwrap();
    let all = messages.join("\n");
    let lines: Vec<&str> = all.lines().collect();
    let position = |line: &str| lines.iter().position(|l| *l == line);
    let ready = position("READY=1").unwrap_or_else(|| panic!("no READY=1 in {all}"));
    let stopping = position("STOPPING=1").unwrap_or_else(|| panic!("no STOPPING=1 in {all}"));
    assert!(ready < stopping, "{all}");
    assert!(lines.contains(&"WATCHDOG=1"), "{all}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("STATUS=last run: incremental succeeded")),
        "{all}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("STATUS=running a")),
        "{all}"
    );
    org.emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_daemon_on_the_same_store_is_refused_and_commands_still_run() {
    let org = SmallOrg::new().await;
    let mut daemon = Daemon::start(&org.config, "daemon", &[], &[]);
    daemon
        .wait_for_log("the start", |l| l.contains("daemon started"))
        .await;

    let config = org.config.to_str().unwrap();
    let (ok, _, stderr) = plansync(&["run", "--config", config]).await;
    assert!(!ok, "a second daemon started:\n{stderr}");
    assert!(stderr.contains("plansync.db.lock"), "{stderr}");
    assert!(
        stderr.contains(&format!("pid {}", daemon.pid())),
        "{stderr}"
    );

    // Commands on the same store run while the daemon's cycles write to it.
    daemon
        .wait_for_log("a first run", |l| runs_finished(l, "succeeded") >= 1)
        .await;
    for _ in 0..3 {
        let (ok, stdout, stderr) = plansync(&["sync", "--config", config, "--dry-run"]).await;
        assert!(ok, "{stderr}\n{stdout}");
        assert!(!stderr.contains("locked"), "{stderr}");
        let (ok, stdout, stderr) = plansync(&["status", "--config", config, "--json"]).await;
        assert!(ok, "{stderr}\n{stdout}");
        assert!(!stderr.contains("locked"), "{stderr}");
        let status: Value = serde_json::from_str(&stdout).unwrap();
        assert!(status.is_object(), "{stdout}");
    }
    // An admin's resync takes its turn between the daemon's runs and writes what it finds:
    // the plan's target changes, and the resync of that plan writes the new numbers.
    org.crm
        .update(
            "Account_Plan__c",
            &org.plan,
            json!({"Revenue_Target__c": 250000}),
        )
        .await;
    let (ok, stdout, stderr) =
        plansync(&["resync", "--plan", &org.plan, "--config", config, "--json"]).await;
    assert!(ok, "{stderr}\n{stdout}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["write_failures"], json!([]), "{report}");
    let plan = org.crm.get("Account_Plan__c", &org.plan).await;
    assert_eq!(plan["New_Sales_Needed__c"].to_string(), "250000", "{plan}");
    // The daemon still works.
    org.move_into_plan_and_wait_for_the_link(&mut daemon).await;
    daemon.stop().await;
    org.emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_snapshot_schedule_upserts_one_snapshot_per_plan_and_day() {
    let org = SmallOrg::new().await;
    let mut daemon = Daemon::start(
        &org.config,
        "snapshot",
        &[],
        &[("PLANSYNC__SCHEDULE__SNAPSHOT", "*/2 * * * * *")],
    );
    daemon
        .wait_for_log("two snapshot runs", |l| {
            l.matches("kind=\"snapshot\"").count() >= 2
                || l.matches("\"kind\":\"snapshot\"").count() >= 2
        })
        .await;
    daemon.stop().await;
    // Several fires on the same day update one record per plan.
    let rows = org
        .crm
        .query("SELECT Snapshot_Key__c, Account_Plan__c FROM Account_Plan_Snapshot__c")
        .await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["Account_Plan__c"], json!(org.plan));
    assert!(rows[0]["Snapshot_Key__c"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{}:", org.plan)));
    org.emulator.shutdown().await;
}

async fn http_get(url: &str) -> (u16, String) {
    let resp = reqwest::get(url).await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap())
}

/// The value of the sample named exactly `sample` (with its labels), if present.
fn sample(text: &str, sample: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keeps_running_through_failed_runs_and_reports_metrics_and_health() {
    let org = SmallOrg::new().await;
    org.emulator.set_faults_str("503=1").unwrap();
    let mut daemon = Daemon::start(
        &org.config,
        "daemon",
        &["--backoff-seconds", "1", "--max-backoff-seconds", "2"],
        &[
            ("PLANSYNC__METRICS__LISTEN", "127.0.0.1:0"),
            ("PLANSYNC__HTTP__MAX_RETRIES", "0"),
        ],
    );
    let log = daemon
        .wait_for_log("the metrics listener", |l| l.contains("serving /metrics"))
        .await;
    let addr = log
        .split("bound=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no bound address in {log}"))
        .to_string();
    let base = format!("http://{addr}");

    // Each failed run ends with one ERROR line naming its kind, outcome and cause.
    let log = daemon
        .wait_for_log("two failed runs", |l| {
            l.lines()
                .filter(|l| l.contains("run finished") && l.contains("outcome=\"failed\""))
                .count()
                >= 2
        })
        .await;
    let failed_line = log
        .lines()
        .find(|l| l.contains("run finished") && l.contains("outcome=\"failed\""))
        .unwrap();
    assert!(failed_line.contains("ERROR"), "{failed_line}");
    assert!(
        failed_line.contains("kind=\"incremental\"") && failed_line.contains("error="),
        "{failed_line}"
    );
    assert!(log.contains("plansync starting"), "{log}");
    assert!(
        log.contains(&format!("version=\"{}\"", env!("CARGO_PKG_VERSION"))),
        "{log}"
    );
    let (status, body) = http_get(&format!("{base}/healthz")).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("no run has succeeded yet"), "{body}");
    assert!(body.contains("incremental failed"), "{body}");
    let (status, metrics) = http_get(&format!("{base}/metrics")).await;
    assert_eq!(status, 200);
    let failed = sample(
        &metrics,
        "plansync_runs_total{kind=\"incremental\",outcome=\"failed\"}",
    )
    .unwrap_or_else(|| panic!("{metrics}"));
    assert!(failed >= 2.0, "{metrics}");
    assert_eq!(sample(&metrics, "plansync_healthy"), Some(0.0), "{metrics}");
    assert_eq!(
        sample(&metrics, "plansync_last_success_timestamp_seconds"),
        Some(0.0)
    );

    // The CRM recovers: the daemon syncs again, and turns healthy.
    org.emulator.set_faults_str("").unwrap();
    org.move_into_plan_and_wait_for_the_link(&mut daemon).await;
    let start = Instant::now();
    loop {
        let (status, body) = http_get(&format!("{base}/healthz")).await;
        if status == 200 {
            assert!(body.starts_with("ok: "), "{body}");
            break;
        }
        assert!(start.elapsed() < PATIENCE, "still unhealthy: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, metrics) = http_get(&format!("{base}/metrics")).await;
    let succeeded = sample(
        &metrics,
        "plansync_runs_total{kind=\"incremental\",outcome=\"succeeded\"}",
    );
    assert!(succeeded >= Some(1.0), "{metrics}");
    assert!(
        sample(
            &metrics,
            "plansync_rows_pulled_total{object=\"Opportunity\"}"
        ) >= Some(1.0),
        "{metrics}"
    );
    let lag = sample(
        &metrics,
        "plansync_cursor_lag_seconds{object=\"Opportunity\"}",
    )
    .unwrap_or_else(|| panic!("{metrics}"));
    assert!((0.0..3600.0).contains(&lag), "{metrics}");
    assert!(sample(&metrics, "plansync_fields_written_total") >= Some(1.0));
    let last_success = sample(&metrics, "plansync_last_success_timestamp_seconds").unwrap();
    assert!(
        last_success > (chrono::Utc::now().timestamp() - 3600) as f64,
        "{metrics}"
    );
    let (used, _) = org.emulator.api_usage();
    let reported = sample(&metrics, "plansync_api_usage_used").unwrap();
    assert!(reported > 0.0 && reported <= used as f64, "{metrics}");
    assert_eq!(sample(&metrics, "plansync_outbox_depth"), Some(0.0));
    assert_eq!(sample(&metrics, "plansync_healthy"), Some(1.0));

    let log = daemon.stop().await;
    assert!(log.contains("backing off after a failed run"), "{log}");
    org.emulator.shutdown().await;
}

async fn dry_run_fields(config: &Path) -> u64 {
    let (ok, stdout, stderr) = plansync(&[
        "sync",
        "--config",
        config.to_str().unwrap(),
        "--dry-run",
        "--json",
    ])
    .await;
    assert!(ok, "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    // A dry run writes nothing; what it would write is counted apart.
    assert_eq!(report["fields_written"], 0, "{report}");
    report["fields_would_write"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_cycle_stops_cleanly_and_the_next_start_finishes() {
    let emulator = Emulator::builder().seed("demo").start().await.unwrap();
    // Every data request takes 300 ms, and writes go ten records at a time: a long cycle
    // with many safe points.
    emulator.set_faults_str("slow=1:300").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &emulator);
    let env = [("PLANSYNC__SYNC__BATCH_SIZE", "10")];
    let mut daemon = Daemon::start(&config, "first", &[], &env);
    daemon
        .wait_for_log("a run in progress", |l| l.contains("run started"))
        .await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let log = daemon.stop().await;
    assert!(log.contains("stopping"), "{log}");
    assert_eq!(runs_finished(&log, "succeeded"), 0, "{log}");

    // The store is consistent and the run log says the run was cut short.
    let store = Store::open(&dir.path().join("plansync.db")).unwrap();
    let runs = store.recent_runs(10).unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0].outcome.as_deref(), Some("partial"), "{runs:?}");
    assert!(runs[0].finished_at.is_some());
    assert_eq!(
        runs[0].summary.as_ref().unwrap()["stopped_early"],
        json!("shutdown requested")
    );
    drop(store);

    // Work is left: a dry run still has changes to make.
    emulator.set_faults_str("").unwrap();
    assert!(dry_run_fields(&config).await > 0);

    // The next start finishes it.
    let mut daemon = Daemon::start(&config, "second", &[], &env);
    daemon
        .wait_for_log("a successful run", |l| runs_finished(l, "succeeded") >= 1)
        .await;
    daemon.stop().await;
    assert_eq!(dry_run_fields(&config).await, 0);

    // No rows lost: the mirror holds every opportunity the CRM has.
    let crm = Crm::connect(&emulator).await;
    let in_crm = crm.query("SELECT Id FROM Opportunity").await.len();
    let store = Store::open(&dir.path().join("plansync.db")).unwrap();
    assert_eq!(store.live_ids("Opportunity").unwrap().len(), in_crm);
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_logs_never_show_the_client_secret_or_the_access_token() {
    let org = SmallOrg::new().await;
    // Every token of this org starts with the org id and "!".
    let token_prefix = &org.crm.token()[..org.crm.token().find('!').unwrap() + 1];
    let mut daemon = Daemon::start(
        &org.config,
        "daemon",
        &[],
        &[("RUST_LOG", "trace"), ("INVOCATION_ID", "0123456789abcdef")],
    );
    // Expire the session after the first run, so the second run requests a new token too.
    daemon
        .wait_for_log("a first run", |l| runs_finished(l, "succeeded") >= 1)
        .await;
    org.emulator.expire_sessions();
    daemon
        .wait_for_log("a second run", |l| runs_finished(l, "succeeded") >= 2)
        .await;
    let log = daemon.stop().await;
    // Started by systemd (INVOCATION_ID): JSON lines.
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        serde_json::from_str::<Value>(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
    }
    assert!(log.contains("\"TRACE\""), "trace logging was not on");
    assert!(log.contains("\"run finished\""), "{log}");
    assert!(
        !log.contains(org.emulator.client_secret()),
        "the client secret is in the log"
    );
    assert!(!log.contains(token_prefix), "an access token is in the log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_exits_at_once_without_waiting_for_the_run() {
    let emulator = Emulator::builder().seed("demo").start().await.unwrap();
    // Every data request takes 5 s: the run's next safe point is far away.
    emulator.set_faults_str("slow=1:5000").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &emulator);
    let mut daemon = Daemon::start(&config, "impatient", &[], &[]);
    daemon
        .wait_for_log("a run in progress", |l| l.contains("run started"))
        .await;
    daemon.signal("TERM");
    daemon
        .wait_for_log("the first signal", |l| l.contains("stopping"))
        .await;
    daemon.signal("TERM");
    let status = daemon.wait_exit().await;
    let log = daemon.log();
    assert_eq!(status.code(), Some(130), "{log}");
    assert!(log.contains("second signal"), "{log}");
    // The store is still usable: the cut run is recorded as not finished.
    let store = Store::open(&dir.path().join("plansync.db")).unwrap();
    let runs = store.recent_runs(10).unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0].outcome, None, "{runs:?}");
    emulator.shutdown().await;
}

/// A token in a file, a basic-auth user and a certificate made now (test-only).
struct Credentials {
    token_file: PathBuf,
    hash: String,
    cert_file: PathBuf,
    key_file: PathBuf,
    cert_pem: String,
}

impl Credentials {
    fn new(dir: &Path) -> Credentials {
        let token_file = dir.join("metrics_token");
        std::fs::write(&token_file, "scrape-t0ken-4c2f\n").unwrap();
        let hash = bcrypt::hash_with_salt("right horse", 4, *b"plansync-daemon!")
            .unwrap()
            .to_string();
        let generated =
            rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
                .unwrap();
        let cert_file = dir.join("metrics.crt");
        let key_file = dir.join("metrics.key");
        std::fs::write(&cert_file, generated.cert.pem()).unwrap();
        std::fs::write(&key_file, generated.signing_key.serialize_pem()).unwrap();
        Credentials {
            token_file,
            hash,
            cert_file,
            key_file,
            cert_pem: generated.cert.pem(),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_metrics_on_every_interface_only_with_a_credential_over_https() {
    let org = SmallOrg::new().await;
    let creds = Credentials::new(org.dir.path());
    let mut daemon = Daemon::start(
        &org.config,
        "remote",
        &[],
        &[
            // Every interface: a central Prometheus scrapes it. The test connects over loopback.
            ("PLANSYNC__METRICS__LISTEN", "0.0.0.0:0"),
            (
                "PLANSYNC__METRICS__BEARER_TOKEN_FILE",
                creds.token_file.to_str().unwrap(),
            ),
            ("PLANSYNC__METRICS__BASIC_AUTH_USERNAME", "prometheus"),
            ("PLANSYNC__METRICS__BASIC_AUTH_PASSWORD_BCRYPT", &creds.hash),
            (
                "PLANSYNC__METRICS__TLS_CERT_FILE",
                creds.cert_file.to_str().unwrap(),
            ),
            (
                "PLANSYNC__METRICS__TLS_KEY_FILE",
                creds.key_file.to_str().unwrap(),
            ),
            ("PLANSYNC__SCHEDULE__INCREMENTAL", NEVER),
        ],
    );
    let log = daemon
        .wait_for_log("the metrics listener", |l| l.contains("serving /metrics"))
        .await;
    let bound: std::net::SocketAddr = log
        .split("bound=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no bound address in {log}"))
        .parse()
        .unwrap();
    assert!(bound.ip().is_unspecified(), "{bound}");
    let base = format!("https://127.0.0.1:{}", bound.port());
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(creds.cert_pem.as_bytes()).unwrap())
        .build()
        .unwrap();

    let resp = client.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert!(resp.headers().contains_key("www-authenticate"));
    let resp = client
        .get(format!("{base}/metrics"))
        .bearer_auth("not-the-token")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let resp = client
        .get(format!("{base}/metrics"))
        .bearer_auth("scrape-t0ken-4c2f")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let metrics = resp.text().await.unwrap();
    // The build, and every labelled series at 0 before any run.
    assert!(
        metrics.contains(&format!(
            "plansync_build_info{{version=\"{}\",commit=\"",
            env!("CARGO_PKG_VERSION")
        )),
        "{metrics}"
    );
    assert_eq!(
        sample(
            &metrics,
            "plansync_runs_total{kind=\"snapshot\",outcome=\"failed\"}"
        ),
        Some(0.0),
        "{metrics}"
    );
    assert_eq!(
        sample(
            &metrics,
            "plansync_rows_pulled_total{object=\"Opportunity\"}"
        ),
        Some(0.0),
        "{metrics}"
    );
    assert!(sample(&metrics, "process_resident_memory_bytes") > Some(0.0));
    let resp = client
        .get(format!("{base}/healthz"))
        .basic_auth("prometheus", Some("right horse"))
        .send()
        .await
        .unwrap();
    // Authenticated; unhealthy since no run has happened.
    assert_eq!(resp.status(), 503);

    let log = daemon.stop().await;
    assert!(
        !log.contains("scrape-t0ken-4c2f") && !log.contains(&creds.hash),
        "{log}"
    );
    org.emulator.shutdown().await;
}
