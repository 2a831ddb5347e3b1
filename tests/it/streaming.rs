//! Change events wake the daemon: the daemon in-process (real time) subscribed to the
//! emulator's CometD endpoint, the emulator a real HTTP server on 127.0.0.1, the store a real
//! SQLite file. The incremental schedule never fires in these tests, so only change events
//! (and the catch-up after each subscription) run cycles.

use std::time::{Duration, Instant};

use plansync::config;
use plansync::daemon::metrics::SharedMetrics;
use plansync::daemon::{Daemon, DaemonError, DaemonSettings};
use plansync::emulator::{Emulator, RunningEmulator};
use plansync::store::Store;
use serde_json::{json, Value};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::common::{plansync, write_config_with, Acme, Crm};

const NEVER: &str = "0 0 0 1 1 * 2099";

struct Running {
    emulator: RunningEmulator,
    dir: tempfile::TempDir,
    metrics: SharedMetrics,
    stop: CancellationToken,
    task: JoinHandle<Result<(), DaemonError>>,
}

impl Running {
    async fn start(emulator: RunningEmulator, streaming: &str) -> Running {
        let dir = tempfile::tempdir().unwrap();
        let extra = format!(
            "[schedule]\nincremental = \"{NEVER}\"\nfull = \"{NEVER}\"\nsnapshot = \"{NEVER}\"\n\
             [streaming]\nbackstop = \"{NEVER}\"\n{streaming}\n"
        );
        let path = write_config_with(dir.path(), &emulator, &extra);
        let config = config::load(&path).unwrap();
        let engine = plansync::cli::sync::engine_from_config(&config).unwrap();
        let (streaming, healthy) = plansync::cli::run::streaming_settings(&config).unwrap();
        let settings = DaemonSettings {
            schedules: config.schedule.clone(),
            timezone: config.org.timezone,
            metrics: None,
            healthy_within: Duration::from_secs(900),
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(2),
            stop_timeout: Duration::from_secs(30),
        };
        let mut daemon = Daemon::new(engine, settings);
        daemon.set_streaming(streaming, healthy);
        let metrics = daemon.metrics();
        let stop = CancellationToken::new();
        let task = tokio::task::spawn_local(daemon.run(stop.clone()));
        Running {
            emulator,
            dir,
            metrics,
            stop,
            task,
        }
    }

    fn streaming(&self) -> plansync::daemon::metrics::StreamingMetrics {
        self.metrics.lock().unwrap().streaming.clone().unwrap()
    }

    fn incremental_runs(&self) -> u64 {
        let state = self.metrics.lock().unwrap();
        state
            .runs
            .iter()
            .filter(|((kind, _), _)| kind == "incremental")
            .map(|(_, n)| *n)
            .sum()
    }

    async fn wait_until(&self, what: &str, within: Duration, done: impl Fn(&Running) -> bool) {
        let began = Instant::now();
        while !done(self) {
            assert!(!self.task.is_finished(), "the daemon ended before {what}");
            assert!(began.elapsed() < within, "no {what} within {within:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for the catch-up cycle after the first subscription to have run and ended.
    async fn caught_up(&self, within: Duration) {
        self.wait_until("the catch-up cycle", within, |d| {
            d.streaming().woken_cycles >= 1 && d.metrics.lock().unwrap().running.is_none()
        })
        .await;
    }

    /// Waits until the CRM holds `value` in the plan's field; returns how long it took.
    async fn wait_for_field(&self, crm: &Crm, plan: &str, field: &str, value: Value) -> Duration {
        let began = Instant::now();
        loop {
            let got = crm.get("Account_Plan__c", plan).await[field].clone();
            if got.as_f64() == value.as_f64() && got.is_null() == value.is_null() {
                return began.elapsed();
            }
            assert!(!self.task.is_finished(), "the daemon ended");
            assert!(
                began.elapsed() < Duration::from_secs(20),
                "{field} of {plan} is {got}, not {value}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn stop(self) -> (RunningEmulator, tempfile::TempDir) {
        self.stop.cancel();
        self.task.await.unwrap().unwrap();
        (self.emulator, self.dir)
    }
}

async fn emulator() -> RunningEmulator {
    Emulator::builder()
        .seed("empty")
        .long_poll_timeout(Duration::from_secs(2))
        .start()
        .await
        .unwrap()
}

/// The emulator with the Acme fixture, and a client of it.
async fn acme_org() -> (RunningEmulator, Crm, Acme) {
    let emulator = emulator().await;
    let crm = Crm::connect(&emulator).await;
    let acme = Acme::create(&crm).await;
    (emulator, crm, acme)
}

fn in_local(test: impl std::future::Future<Output = ()>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tokio::task::LocalSet::new().block_on(&rt, test);
}

#[test]
fn a_rest_edit_reaches_the_plan_without_waiting_for_the_schedule() {
    in_local(async {
        let (emulator, crm, acme) = acme_org().await;
        let d = Running::start(emulator, "debounce_seconds = 1").await;
        d.wait_until("a subscription", Duration::from_secs(15), |d| {
            d.streaming().state == "subscribed"
        })
        .await;
        // The catch-up after subscribing reads the org as it is.
        d.wait_for_field(&crm, &acme.plan_a, "Won_Amount__c", json!(10000))
            .await;
        d.wait_until("the catch-up cycle", Duration::from_secs(15), |d| {
            d.streaming().woken_cycles >= 1
        })
        .await;

        // A rep wins a deal: the plan's won amount and gap move within seconds.
        let runs = d.incremental_runs();
        crm.update(
            "Opportunity",
            &acme.open_b_q3,
            json!({"StageName": "Closed Won"}),
        )
        .await;
        let took = d
            .wait_for_field(&crm, &acme.plan_b, "Won_Amount__c", json!(20000))
            .await;
        assert!(took < Duration::from_secs(10), "took {took:?}");
        assert!(d.incremental_runs() > runs);
        let s = d.streaming();
        assert!(s.events.get("UPDATE").copied().unwrap_or(0) >= 1, "{s:?}");
        let lag = s.freshness_lag_seconds.unwrap();
        assert!(lag > 0.0 && lag < 10.0, "lag {lag}");

        let (_emulator, dir) = d.stop().await;
        // The replayIds of the covered events are kept, and status shows the subscription.
        let store = Store::open(&dir.path().join("plansync.db")).unwrap();
        let replay = store.replay_ids().unwrap();
        assert!(
            replay
                .get("/data/OpportunityChangeEvent")
                .copied()
                .unwrap_or(0)
                > 0,
            "{replay:?}"
        );
        let config = dir.path().join("plansync.toml");
        let (ok, out, err) =
            plansync(&["status", "--json", "--config", config.to_str().unwrap()]).await;
        assert!(ok, "{err}");
        let status: Value = serde_json::from_str(&out).unwrap();
        let streaming = &status["streaming"];
        assert_eq!(streaming["state"], "subscribed", "{streaming}");
        assert!(streaming["last_event_at"].is_string(), "{streaming}");
        assert!(
            streaming["freshness_lag_ms"].as_i64().unwrap() > 0,
            "{streaming}"
        );
        let (ok, text, err) = plansync(&["status", "--config", config.to_str().unwrap()]).await;
        assert!(ok, "{err}");
        assert!(text.contains("Change events"), "{text}");
        assert!(text.contains("subscribed"), "{text}");
    });
}

#[test]
fn a_dropped_subscription_recovers_and_misses_no_change() {
    in_local(async {
        let (emulator, crm, acme) = acme_org().await;
        let d = Running::start(
            emulator,
            "debounce_seconds = 1\nresubscribe_backoff_seconds = 1\nmax_resubscribe_backoff_seconds = 2",
        )
        .await;
        d.wait_until("a subscription", Duration::from_secs(15), |d| {
            d.streaming().subscriptions >= 1
        })
        .await;
        d.wait_for_field(&crm, &acme.plan_a, "Won_Amount__c", json!(10000))
            .await;

        // The server forgets the client (403::Unknown client) and an edit happens meanwhile.
        d.emulator.streaming().forget_clients();
        crm.update(
            "Opportunity",
            &acme.open_b_q3,
            json!({"StageName": "Closed Won"}),
        )
        .await;
        d.wait_for_field(&crm, &acme.plan_b, "Won_Amount__c", json!(20000))
            .await;
        d.wait_until("a resubscription", Duration::from_secs(15), |d| {
            d.streaming().subscriptions >= 2
        })
        .await;

        // The connection drops without an answer: down, then back within the backoff, and
        // the edit made while it was down reaches the plan.
        d.emulator.streaming().drop_next_connect();
        d.wait_until("the drop", Duration::from_secs(15), |d| {
            d.streaming().state != "subscribed"
        })
        .await;
        let dropped = Instant::now();
        crm.update(
            "Opportunity",
            &acme.open_b_nov,
            json!({"StageName": "Closed Won"}),
        )
        .await;
        d.wait_until("a recovery", Duration::from_secs(15), |d| {
            d.streaming().state == "subscribed" && d.streaming().subscriptions >= 3
        })
        .await;
        // Backoff at most 2 s (+20 % jitter), plus the handshake.
        assert!(
            dropped.elapsed() < Duration::from_secs(6),
            "{:?}",
            dropped.elapsed()
        );
        // November is outside plan B's quarter: plan A (B's parent, with child accounts)
        // takes the win.
        d.wait_for_field(&crm, &acme.plan_a, "Won_Amount__c", json!(40000))
            .await;
        d.stop().await;
    });
}

#[test]
fn a_burst_of_edits_coalesces_into_few_cycles() {
    in_local(async {
        let (emulator, crm, acme) = acme_org().await;
        let mut opps = Vec::new();
        for i in 0..20 {
            opps.push(
                crm.create(
                    "Opportunity",
                    json!({"Name": format!("Burst {i}"), "AccountId": acme.account_b,
                           "CloseDate": "2026-08-15", "StageName": "Prospecting",
                           "Amount": 1000}),
                )
                .await,
            );
        }
        let d = Running::start(emulator, "debounce_seconds = 2").await;
        d.caught_up(Duration::from_secs(20)).await;
        d.wait_for_field(&crm, &acme.plan_b, "Open_Pipeline__c", json!(40000))
            .await;
        let runs = d.incremental_runs();
        let events = d.streaming().events.values().sum::<u64>();

        // 200 edits within about a second, each its own REST request (its own event).
        let began = Instant::now();
        let http = reqwest::Client::new();
        let base = d.emulator.base_url().to_string();
        let token = crm.token().to_string();
        // Ten edits of each of the 20 opportunities, in order (the last sets 1010).
        let mut tasks = Vec::new();
        for id in opps.clone() {
            let http = http.clone();
            let base = base.clone();
            let token = token.clone();
            tasks.push(tokio::task::spawn_local(async move {
                for amount in 1001..=1010 {
                    let resp = http
                        .patch(format!(
                            "{base}/services/data/v62.0/sobjects/Opportunity/{id}"
                        ))
                        .bearer_auth(&token)
                        .json(&json!({"Amount": amount}))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(resp.status(), 204);
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let burst = began.elapsed();
        // The last amounts: 1010 each for 20 opportunities, with the 20,000 one.
        d.wait_for_field(&crm, &acme.plan_b, "Open_Pipeline__c", json!(40200))
            .await;
        d.wait_until("every event", Duration::from_secs(20), |d| {
            d.streaming().events.values().sum::<u64>() >= events + 200
        })
        .await;
        // Let any cycle the tail of the burst woke finish.
        tokio::time::sleep(Duration::from_secs(4)).await;
        d.wait_until("the last cycle", Duration::from_secs(20), |d| {
            d.metrics.lock().unwrap().running.is_none()
        })
        .await;
        let cycles = d.incremental_runs() - runs;
        assert!(
            (1..=3).contains(&cycles),
            "{cycles} cycles for a burst of 200 edits in {burst:?}"
        );
        d.stop().await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_checks_the_handshake_and_every_subscription() {
    let emulator = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config_with(dir.path(), &emulator, "");
    let (ok, out, err) = plansync(&["doctor", "--config", config.to_str().unwrap()]).await;
    assert!(ok, "{out}\n{err}");
    assert!(
        out.contains("ok       change events: the CometD handshake and 7 subscription(s) succeed"),
        "{out}"
    );
    assert!(out.contains("/data/Account_Plan__ChangeEvent"), "{out}");
    // The doctor's session ends: the emulator keeps no client.
    assert_eq!(emulator.streaming().client_count(), 0);

    let off = write_config_with(dir.path(), &emulator, "[streaming]\nenabled = false\n");
    let (ok, out, _) = plansync(&["doctor", "--config", off.to_str().unwrap()]).await;
    assert!(ok, "{out}");
    assert!(out.contains("ok       change events: off"), "{out}");
}

/// The daemon with tokio's time paused: an idle hour passes without waiting.
#[tokio::test(start_paused = true)]
async fn while_subscribed_an_idle_hour_costs_no_rest_call_between_backstop_runs() {
    use chrono::{DurationRound, TimeDelta, Utc};
    use plansync::clock::Clock;

    tokio::task::LocalSet::new()
        .run_until(async {
            let emulator = Emulator::builder().seed("empty").start().await.unwrap();
            let dir = tempfile::tempdir().unwrap();
            let extra = format!(
                "[http]\ntimeout_seconds = 3600\nmax_retries = 0\n\
                 [schedule]\nfull = \"{NEVER}\"\nsnapshot = \"{NEVER}\"\n"
            );
            let path = write_config_with(dir.path(), &emulator, &extra);
            let config = config::load(&path).unwrap();
            let engine = plansync::cli::sync::engine_from_config(&config).unwrap();
            let (streaming, healthy) = plansync::cli::run::streaming_settings(&config).unwrap();
            // Every 5 minutes normally, hourly (the default backstop) while subscribed.
            assert_eq!(config.schedule.incremental.to_string(), "0 */5 * * * *");
            let settings = DaemonSettings {
                schedules: config.schedule.clone(),
                timezone: config.org.timezone,
                metrics: None,
                healthy_within: Duration::from_secs(900),
                backoff_base: Duration::from_secs(30),
                backoff_max: Duration::from_secs(1800),
                stop_timeout: Duration::from_secs(60),
            };
            // Half past an hour, near the real time (the emulator stamps records with it).
            let start =
                Utc::now().duration_trunc(TimeDelta::hours(1)).unwrap() + TimeDelta::minutes(30);
            let mut daemon = Daemon::with_clock(engine, settings, Clock::following_tokio(start));
            daemon.set_streaming(streaming, healthy);
            let metrics = daemon.metrics();
            let stop = CancellationToken::new();
            let task = tokio::task::spawn_local(daemon.run(stop.clone()));
            let runs = || {
                metrics
                    .lock()
                    .unwrap()
                    .runs
                    .iter()
                    .filter(|((kind, _), _)| kind == "incremental")
                    .map(|(_, n)| *n)
                    .sum::<u64>()
            };
            let began = tokio::time::Instant::now();
            // The catch-up cycle after subscribing.
            while runs() < 1 || metrics.lock().unwrap().running.is_some() {
                assert!(!task.is_finished());
                assert!(
                    began.elapsed() < Duration::from_secs(600),
                    "no catch-up cycle"
                );
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            let subscribed = metrics.lock().unwrap().streaming.clone().unwrap();
            assert_eq!(subscribed.state, "subscribed");
            let calls = emulator.api_usage().0;
            // Ten seconds before the hour: five 5-minute marks passed, no run, no REST call.
            tokio::time::sleep_until(began + Duration::from_secs(29 * 60 + 50)).await;
            assert_eq!(runs(), 1, "{:?}", metrics.lock().unwrap().streaming);
            assert_eq!(emulator.api_usage().0, calls, "REST calls while idle");
            // The backstop on the hour.
            while runs() < 2 {
                assert!(
                    began.elapsed() < Duration::from_secs(45 * 60),
                    "no backstop run"
                );
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            assert!(emulator.api_usage().0 > calls);
            assert_eq!(metrics.lock().unwrap().skipped_fires["incremental"], 0);

            // The subscription drops: the 5-minute schedule applies again until it is back.
            emulator.streaming().drop_next_connect();
            let before = runs();
            while metrics
                .lock()
                .unwrap()
                .streaming
                .as_ref()
                .unwrap()
                .subscriptions
                < 2
            {
                assert!(
                    began.elapsed() < Duration::from_secs(3 * 3600),
                    "no resubscription"
                );
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            // The resubscription's catch-up cycle.
            while runs() <= before {
                assert!(
                    began.elapsed() < Duration::from_secs(3 * 3600),
                    "no catch-up"
                );
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            stop.cancel();
            task.await.unwrap().unwrap();
        })
        .await;
}

#[test]
fn gap_and_overflow_events_wake_a_cycle_too() {
    in_local(async {
        let (emulator, crm, acme) = acme_org().await;
        let d = Running::start(emulator, "debounce_seconds = 1").await;
        d.caught_up(Duration::from_secs(15)).await;
        // (the entity, the change type, the records named: none for an overflow)
        let cases: [(&str, &str, &[&str]); 2] = [
            ("Opportunity", "GAP_OVERFLOW", &[]),
            ("Account", "GAP_UPDATE", &["001000000000001AAA"]),
        ];
        for (entity, change_type, ids) in cases {
            let runs = d.incremental_runs();
            let woken = d.streaming().woken_cycles;
            let ids: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
            d.emulator
                .streaming()
                .publish_gap(entity, change_type, &ids);
            d.wait_until(change_type, Duration::from_secs(15), |d| {
                d.incremental_runs() > runs
                    && d.streaming().woken_cycles > woken
                    && d.metrics.lock().unwrap().running.is_none()
            })
            .await;
            assert_eq!(
                d.streaming().events.get(change_type),
                Some(&1),
                "{change_type}"
            );
        }
        // Nothing changed in the CRM: the plans keep their values.
        d.wait_for_field(&crm, &acme.plan_a, "Won_Amount__c", json!(10000))
            .await;
        d.stop().await;
    });
}

#[test]
fn the_events_of_plansyncs_own_writes_wake_no_cycle() {
    in_local(async {
        let (emulator, crm, acme) = acme_org().await;
        let d = Running::start(emulator, "debounce_seconds = 1").await;
        d.caught_up(Duration::from_secs(15)).await;
        d.wait_for_field(&crm, &acme.plan_a, "Won_Amount__c", json!(10000))
            .await;
        // The catch-up's write-back published events of its own: they wake nothing.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let runs = d.incremental_runs();
        let events = d.streaming().events.get("UPDATE").copied().unwrap_or(0);

        // One edit: one cycle, whose write-back (the plan's rollups) wakes no second one.
        crm.update(
            "Opportunity",
            &acme.open_b_q3,
            json!({"StageName": "Closed Won"}),
        )
        .await;
        d.wait_for_field(&crm, &acme.plan_b, "Won_Amount__c", json!(20000))
            .await;
        tokio::time::sleep(Duration::from_secs(3)).await;
        d.wait_until("the cycle to end", Duration::from_secs(15), |d| {
            d.metrics.lock().unwrap().running.is_none()
        })
        .await;
        assert_eq!(d.incremental_runs() - runs, 1);
        let s = d.streaming();
        assert!(
            s.events.get("UPDATE").copied().unwrap_or(0) >= events + 2,
            "the edit's event and the write-back's arrived: {s:?}"
        );
        d.stop().await;
    });
}
