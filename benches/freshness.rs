//! Freshness with change events: the daemon (in-process, subscribed to the emulator's CometD
//! endpoint, the incremental schedule never firing) and edits through the emulator's REST API
//! at one per second for a minute. For each edit: from its commit (the PATCH's answer) to the
//! plan's field showing its value in the CRM; p50, p95 and the worst. The emulator runs on a
//! runtime of its own (as a CRM would run elsewhere), with the `demo` org at scale 1.
//!
//! `PLANSYNC_BENCH_SCALE=N` multiplies the number of edits (60).
#![allow(
    clippy::disallowed_methods,
    reason = "a benchmark times itself by the clock"
)]

mod common;

use std::time::{Duration, Instant};

use common::{banner, scale, scaled, secs, BenchResult, Table};
use plansync::config::{AuthFlow, Config};
use plansync::daemon::{Daemon, DaemonSettings};
use plansync::emulator::Emulator;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

const NEVER: &str = "0 0 0 1 1 * 2099";

fn main() {
    if !common::selected("freshness") {
        return;
    }
    if let Err(e) = run() {
        eprintln!("freshness failed: {e}");
        std::process::exit(1);
    }
}

/// The emulator on a thread and runtime of its own: (base URL, client id, client secret) and
/// the sender that stops it.
fn emulator() -> BenchResult<((String, String, String), tokio::sync::oneshot::Sender<()>)> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let rt = match tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                let _ = ready_tx.send(Err(e.to_string()));
                return;
            }
        };
        rt.block_on(async move {
            match Emulator::builder().seed("demo").start().await {
                Ok(e) => {
                    let _ = ready_tx.send(Ok((
                        e.base_url().to_string(),
                        e.client_id().to_string(),
                        e.client_secret().to_string(),
                    )));
                    let _ = stop_rx.await;
                    e.shutdown().await;
                }
                Err(err) => {
                    let _ = ready_tx.send(Err(err.to_string()));
                }
            }
        });
    });
    let ready = ready_rx.recv()??;
    Ok((ready, stop_tx))
}

struct Rest {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Rest {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> BenchResult<Value> {
        let mut request = self
            .http
            .request(method, format!("{}/services/data/v62.0/{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status();
        let text = response.text().await?;
        if !status.is_success() {
            return Err(format!("{path}: HTTP {status}: {text}").into());
        }
        Ok(if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)?
        })
    }

    async fn create(&self, object: &str, fields: Value) -> BenchResult<String> {
        let v = self
            .send(
                reqwest::Method::POST,
                &format!("sobjects/{object}/"),
                Some(fields),
            )
            .await?;
        Ok(v["id"].as_str().ok_or("no id")?.to_string())
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn run() -> BenchResult {
    let edits = scaled(60, scale()?);
    let ((base, client_id, secret), stop_emulator) = emulator()?;
    banner(
        "freshness",
        "edit commit -> plan field written, with change events",
        &[
            ("edits", format!("{edits}, one per second")),
            ("org", "demo seed, scale 1".into()),
            ("debounce", "2 s ([streaming] default)".into()),
        ],
    );
    let dir = tempfile::tempdir()?;
    let secret_file = dir.path().join("client_secret");
    std::fs::write(&secret_file, &secret)?;
    let mut config = Config::default();
    config.crm.login_url = base.clone();
    config.crm.auth.flow = AuthFlow::ClientCredentials;
    config.crm.auth.client_id = Some(client_id.clone());
    config.crm.auth.client_secret_file = Some(secret_file);
    config.store.path = dir.path().join("plansync.db");
    config.schedule.incremental = NEVER.parse()?;
    config.schedule.full = NEVER.parse()?;
    config.schedule.snapshot = NEVER.parse()?;
    config.streaming.backstop = NEVER.parse()?;

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    let result = local.block_on(&rt, async move {
        let http = reqwest::Client::new();
        let token: Value = http
            .post(format!("{base}/services/oauth2/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", client_id.as_str()),
                ("client_secret", secret.as_str()),
            ])
            .send()
            .await?
            .json()
            .await?;
        let rest = Rest {
            http,
            base: base.clone(),
            token: token["access_token"]
                .as_str()
                .ok_or("no token")?
                .to_string(),
        };
        let account = rest.create("Account", json!({"Name": "Freshness"})).await?;
        let plan = rest
            .create(
                "Account_Plan__c",
                json!({"Name": "Freshness 2026", "Account__c": account, "Status__c": "Active",
                       "Period_Start__c": "2026-01-01", "Period_End__c": "2026-12-31",
                       "Revenue_Target__c": 1000000}),
            )
            .await?;
        let opp = rest
            .create(
                "Opportunity",
                json!({"Name": "Freshness deal", "AccountId": account, "CloseDate": "2026-06-30",
                       "StageName": "Prospecting", "Amount": 1000}),
            )
            .await?;

        let engine = plansync::cli::sync::engine_from_config(&config)?;
        let (streaming, healthy) =
            plansync::cli::run::streaming_settings(&config).ok_or("streaming is off")?;
        let settings = DaemonSettings {
            schedules: config.schedule.clone(),
            timezone: config.org.timezone,
            metrics: None,
            healthy_within: Duration::from_secs(900),
            backoff_base: Duration::from_secs(5),
            backoff_max: Duration::from_secs(60),
            stop_timeout: Duration::from_secs(60),
        };
        let mut daemon = Daemon::new(engine, settings);
        daemon.set_streaming(streaming, healthy);
        let metrics = daemon.metrics();
        let stop = CancellationToken::new();
        let task = tokio::task::spawn_local(daemon.run(stop.clone()));

        let pipeline = |v: &Value| v["Open_Pipeline__c"].as_f64();
        // The catch-up cycle after subscribing writes the plan's first value.
        let began = Instant::now();
        loop {
            let p = rest
                .send(
                    reqwest::Method::GET,
                    &format!("sobjects/Account_Plan__c/{plan}"),
                    None,
                )
                .await?;
            if pipeline(&p) == Some(1000.0) {
                break;
            }
            if began.elapsed() > Duration::from_secs(120) {
                return Err("the first cycle did not write the plan within 2 minutes".into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        println!(
            "   first (catch-up) cycle done after {}",
            secs(began.elapsed())
        );

        // (amount, committed at, seen at)
        let mut pending: Vec<(f64, Instant)> = Vec::new();
        let mut lags = Vec::new();
        let start = Instant::now();
        let mut sent = 0u64;
        while sent < edits || !pending.is_empty() {
            if sent < edits && start.elapsed() >= Duration::from_secs(sent) {
                sent += 1;
                let amount = 1000.0 + sent as f64;
                rest.send(
                    reqwest::Method::PATCH,
                    &format!("sobjects/Opportunity/{opp}"),
                    Some(json!({"Amount": amount})),
                )
                .await?;
                pending.push((amount, Instant::now()));
            }
            let p = rest
                .send(
                    reqwest::Method::GET,
                    &format!("sobjects/Account_Plan__c/{plan}"),
                    None,
                )
                .await?;
            let now = Instant::now();
            if let Some(value) = pipeline(&p) {
                pending.retain(|(amount, at)| {
                    if value >= *amount {
                        lags.push(now - *at);
                        false
                    } else {
                        true
                    }
                });
            }
            if start.elapsed() > Duration::from_secs(edits + 60) {
                return Err(format!("{} edit(s) never reached the plan", pending.len()).into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let (runs, woken) = {
            let m = metrics.lock().map_err(|_| "metrics lock")?;
            let runs: u64 = m
                .runs
                .iter()
                .filter(|((kind, _), _)| kind == "incremental")
                .map(|(_, n)| *n)
                .sum();
            (
                runs,
                m.streaming.as_ref().map(|s| s.woken_cycles).unwrap_or(0),
            )
        };
        stop.cancel();
        task.await??;
        lags.sort();
        let mut t = Table::new(&["edits", "p50", "p95", "max", "cycles", "woken"]);
        t.row(vec![
            lags.len().to_string(),
            secs(percentile(&lags, 50.0)),
            secs(percentile(&lags, 95.0)),
            secs(lags.last().copied().unwrap_or_default()),
            runs.to_string(),
            woken.to_string(),
        ]);
        t.print();
        Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
    });
    let _ = stop_emulator.send(());
    result
}
