//! The daemon in-process, with tokio's time paused: hours of schedules, backoff and stop
//! timeouts pass without waiting. The daemon reads a clock that follows tokio's, and gives it
//! to the engine, so the store's run log is written in the same (virtual) time. The emulator
//! is a real HTTP server on 127.0.0.1 in the same runtime (its slow fault sleeps in virtual
//! time too), the store a real SQLite file.

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use chrono_tz::Tz;
use plansync::clock::Clock;
use plansync::config::{self, ScheduleSection};
use plansync::daemon::metrics::SharedMetrics;
use plansync::daemon::scheduler::RunKind;
use plansync::daemon::{Daemon, DaemonError, DaemonSettings};
use plansync::emulator::{Emulator, RunningEmulator};
use plansync::store::{RunRow, Store};
use serde_json::json;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::common::write_config_with;

const EVERY_MINUTE: &str = "0 * * * * *";
const NEVER: &str = "0 0 0 1 1 * 2099";
/// Enough virtual time for anything these tests wait for; a bound, so a bug fails the test
/// instead of hanging it.
const VIRTUAL_PATIENCE: Duration = Duration::from_secs(6 * 3600);

/// A daemon running in this runtime, with what a test checks it by.
struct InProcess {
    emulator: RunningEmulator,
    dir: tempfile::TempDir,
    metrics: SharedMetrics,
    stop: CancellationToken,
    task: JoinHandle<Result<(), DaemonError>>,
    /// Where the daemon's clock started: 30 s past a whole minute.
    start: DateTime<Utc>,
}

/// How a test sets the daemon up.
struct Setup {
    seed: &'static str,
    faults: &'static str,
    incremental: &'static str,
    backoff_base: Duration,
    backoff_max: Duration,
    stop_timeout: Duration,
    /// TOML appended to the config.
    extra: &'static str,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            seed: "empty",
            faults: "",
            incremental: EVERY_MINUTE,
            backoff_base: Duration::from_secs(30),
            backoff_max: Duration::from_secs(1800),
            stop_timeout: Duration::from_secs(60),
            // Requests slowed by the emulator in virtual time must not time out.
            extra: "[http]\ntimeout_seconds = 3600\nmax_retries = 0\n",
        }
    }
}

impl InProcess {
    async fn start(setup: Setup) -> InProcess {
        let emulator = Emulator::builder().seed(setup.seed).start().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = write_config_with(dir.path(), &emulator, setup.extra);
        let config = config::load(&path).unwrap();
        let engine = plansync::cli::sync::engine_from_config(&config).unwrap();
        emulator.set_faults_str(setup.faults).unwrap();
        let settings = DaemonSettings {
            schedules: ScheduleSection {
                incremental: setup.incremental.parse().unwrap(),
                full: NEVER.parse().unwrap(),
                snapshot: NEVER.parse().unwrap(),
            },
            timezone: Tz::UTC,
            metrics: None,
            healthy_within: Duration::from_secs(900),
            backoff_base: setup.backoff_base,
            backoff_max: setup.backoff_max,
            stop_timeout: setup.stop_timeout,
        };
        // Near the real time (the emulator stamps records with it), on a known phase.
        let start =
            Utc::now().duration_trunc(TimeDelta::minutes(1)).unwrap() + TimeDelta::seconds(30);
        let daemon = Daemon::with_clock(engine, settings, Clock::following_tokio(start));
        let metrics = daemon.metrics();
        let stop = CancellationToken::new();
        // The run future holds the store's connection, which is not Sync: it runs on this
        // thread, in the test's LocalSet.
        let task = tokio::task::spawn_local(daemon.run(stop.clone()));
        InProcess {
            emulator,
            dir,
            metrics,
            stop,
            task,
            start,
        }
    }

    fn runs(&self, kind: &str, outcome: &str) -> u64 {
        let state = self.metrics.lock().unwrap();
        state
            .runs
            .get(&(kind.to_string(), outcome.to_string()))
            .copied()
            .unwrap_or(0)
    }

    fn skipped(&self, kind: &str) -> u64 {
        let state = self.metrics.lock().unwrap();
        state.skipped_fires.get(kind).copied().unwrap_or(0)
    }

    fn running(&self) -> Option<String> {
        self.metrics.lock().unwrap().running.clone()
    }

    /// Lets virtual time pass, a second at a time, until `done`.
    async fn wait_until(&self, what: &str, done: impl Fn(&InProcess) -> bool) {
        let began = Instant::now();
        while !done(self) {
            assert!(!self.task.is_finished(), "the daemon ended before {what}");
            assert!(began.elapsed() < VIRTUAL_PATIENCE, "no {what}");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// Asks the daemon to stop; returns what `run` returned and the virtual time it took.
    async fn stop(
        self,
    ) -> (
        Result<(), DaemonError>,
        Duration,
        Vec<RunRow>,
        RunningEmulator,
    ) {
        let asked = Instant::now();
        self.stop.cancel();
        let result = tokio::time::timeout(VIRTUAL_PATIENCE, self.task)
            .await
            .expect("the daemon did not stop")
            .unwrap();
        let took = asked.elapsed();
        let store = Store::open(&self.dir.path().join("plansync.db")).unwrap();
        let mut runs = store.recent_runs(1000).unwrap();
        runs.reverse();
        (result, took, runs, self.emulator)
    }
}

/// Runs a test's body where the daemon can be spawned on the test's thread.
async fn local<F: Future>(body: F) -> F::Output {
    tokio::task::LocalSet::new().run_until(body).await
}

/// Whole minutes `m` with `from < m < to` (the every-minute schedule's fires in between).
fn marks_strictly_between(from: DateTime<Utc>, to: DateTime<Utc>) -> u64 {
    let first = from.duration_trunc(TimeDelta::minutes(1)).unwrap() + TimeDelta::minutes(1);
    if first >= to {
        return 0;
    }
    ((to - first).num_milliseconds() as u64).div_ceil(60_000)
}

/// Whole minutes `m` with `from < m <= to`.
fn marks_in(from: DateTime<Utc>, to: DateTime<Utc>) -> u64 {
    marks_strictly_between(from, to + TimeDelta::milliseconds(1))
}

/// The first whole minute strictly after `t`.
fn next_mark(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(TimeDelta::minutes(1)).unwrap() + TimeDelta::minutes(1)
}

fn finished(run: &RunRow) -> DateTime<Utc> {
    run.finished_at
        .unwrap_or_else(|| panic!("run {} has no end", run.id))
}

#[tokio::test(start_paused = true)]
async fn fires_during_a_long_run_are_skipped_and_counted_and_the_next_run_takes_the_next_fire() {
    local(async {
        // Every data request takes 45 s: a run (two composite reads when nothing changed)
        // lasts over a minute of the every-minute schedule.
        let daemon = InProcess::start(Setup {
            faults: "slow=1:45000",
            ..Setup::default()
        })
        .await;
        daemon
            .wait_until("three successful runs", |d| {
                d.runs("incremental", "succeeded") >= 3
            })
            .await;
        // Stop between runs, so every run in the log ended on its own.
        daemon
            .wait_until("a pause between runs", |d| d.running().is_none())
            .await;
        let succeeded = daemon.runs("incremental", "succeeded");
        let skipped = daemon.skipped("incremental");
        let start = daemon.start;
        let (result, _, runs, emulator) = daemon.stop().await;
        result.unwrap();

        assert_eq!(runs.len() as u64, succeeded, "{runs:?}");
        assert!(runs
            .iter()
            .all(|r| r.kind == "incremental" && r.outcome.as_deref() == Some("succeeded")));
        // The first run starts at the first fire, each next one at the first fire after the
        // previous one ended: never two at once, and no catching up on the fires missed.
        assert_eq!(runs[0].started_at, next_mark(start), "{runs:?}");
        for pair in runs.windows(2) {
            assert_eq!(
                pair[1].started_at,
                next_mark(finished(&pair[0])),
                "{runs:?}"
            );
        }
        // The fires that came while a run was going are counted as skipped, and there are some.
        let expected: u64 = runs
            .iter()
            .map(|r| marks_in(r.started_at, finished(r)))
            .sum();
        assert!(
            expected >= runs.len() as u64,
            "runs this slow span fires: {runs:?}"
        );
        assert_eq!(skipped, expected, "{runs:?}");
        emulator.shutdown().await;
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn failed_runs_back_off_doubling_and_a_success_ends_the_backoff() {
    local(async {
        let base = Duration::from_secs(600);
        let daemon = InProcess::start(Setup {
            faults: "503=1",
            backoff_base: base,
            backoff_max: Duration::from_secs(1500),
            ..Setup::default()
        })
        .await;
        daemon
            .wait_until("three failed runs", |d| {
                d.runs("incremental", "failed") >= 3
            })
            .await;
        // The CRM recovers: the next run succeeds, and the one after it follows the schedule.
        daemon.emulator.set_faults_str("").unwrap();
        daemon
            .wait_until("two successful runs", |d| {
                d.runs("incremental", "succeeded") >= 2
            })
            .await;
        let skipped = daemon.skipped("incremental");
        let (result, _, runs, emulator) = daemon.stop().await;
        result.unwrap();

        let outcomes: Vec<&str> = runs.iter().filter_map(|r| r.outcome.as_deref()).collect();
        assert_eq!(
            outcomes[..5],
            ["failed", "failed", "failed", "succeeded", "succeeded"],
            "{runs:?}"
        );
        // After the n-th failure in a row the daemon waits base × 2^(n-1), capped at the maximum,
        // ±20 % (never above the maximum), then takes the next fire.
        let waits = [(480, 720), (960, 1440), (1200, 1500)];
        for (n, (low, high)) in waits.into_iter().enumerate() {
            let gap = (runs[n + 1].started_at - finished(&runs[n])).num_seconds();
            assert!(
                gap > low && gap <= high + 60,
                "after failure {}: waited {gap} s, not within ({low}, {}]: {runs:?}",
                n + 1,
                high + 60
            );
        }
        // After a success the schedule is followed again.
        assert_eq!(
            runs[4].started_at,
            next_mark(finished(&runs[3])),
            "{runs:?}"
        );
        // The fires passed over while backing off (or running) are counted as skipped.
        let expected: u64 = runs
            .windows(2)
            .take(4)
            .map(|pair| marks_strictly_between(finished(&pair[0]), pair[1].started_at))
            .sum::<u64>()
            + runs
                .iter()
                .take(4)
                .map(|r| marks_in(r.started_at, finished(r)))
                .sum::<u64>();
        assert!(expected > 30, "{runs:?}");
        assert_eq!(skipped, expected, "{runs:?}");
        emulator.shutdown().await;
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_stop_request_while_waiting_for_the_next_fire_ends_run_at_once() {
    local(async {
        // The next fire is months away (at the turn of the year).
        let daemon = InProcess::start(Setup {
            incremental: "0 0 0 1 1 *",
            ..Setup::default()
        })
        .await;
        tokio::time::sleep(Duration::from_secs(3 * 3600)).await;
        assert!(!daemon.task.is_finished());
        let (result, took, runs, emulator) = daemon.stop().await;
        result.unwrap();
        assert!(took < Duration::from_secs(1), "took {took:?}");
        assert!(runs.is_empty(), "{runs:?}");
        emulator.shutdown().await;
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_stop_request_mid_run_ends_it_at_its_next_page_as_partial() {
    local(async {
        // Every data request takes 20 s, writes go ten records at a time: a long first run with
        // many safe points.
        let daemon = InProcess::start(Setup {
            seed: "demo",
            faults: "slow=1:20000",
            stop_timeout: Duration::from_secs(600),
            extra: "[http]\ntimeout_seconds = 3600\nmax_retries = 0\n[sync]\nbatch_size = 10\n",
            ..Setup::default()
        })
        .await;
        daemon
            .wait_until("a run in progress", |d| d.running().is_some())
            .await;
        tokio::time::sleep(Duration::from_secs(90)).await;
        assert!(daemon.running().is_some(), "the first run is still going");
        let metrics = daemon.metrics.clone();
        let (result, took, runs, emulator) = daemon.stop().await;
        result.unwrap();
        // At most the request in flight is waited for, not the rest of the run.
        assert!(took <= Duration::from_secs(21), "took {took:?}");
        assert_eq!(runs.len(), 1, "{runs:?}");
        assert_eq!(runs[0].outcome.as_deref(), Some("partial"), "{runs:?}");
        assert_eq!(
            runs[0].summary.as_ref().unwrap()["stopped_early"],
            json!("shutdown requested")
        );
        let state = metrics.lock().unwrap().clone();
        assert_eq!(
            state.runs.get(&("incremental".into(), "partial".into())),
            Some(&1)
        );
        assert_eq!(state.running, None);
        emulator.shutdown().await;
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_run_that_reaches_no_safe_point_within_the_stop_timeout_is_abandoned() {
    local(async {
        // A data request takes an hour: no safe point comes within the stop timeout.
        let daemon = InProcess::start(Setup {
            faults: "slow=1:3600000",
            stop_timeout: Duration::from_secs(30),
            extra: "[http]\ntimeout_seconds = 7200\nmax_retries = 0\n",
            ..Setup::default()
        })
        .await;
        daemon
            .wait_until("a run in progress", |d| d.running().is_some())
            .await;
        tokio::time::sleep(Duration::from_secs(60)).await;
        let (result, took, _, emulator) = daemon.stop().await;
        match result {
            Err(DaemonError::Abandoned { kind, seconds }) => {
                assert_eq!(kind, RunKind::Incremental);
                assert_eq!(seconds, 30);
            }
            other => panic!("expected the run to be abandoned, got {other:?}"),
        }
        // Given up on after the stop timeout, not after the hour the request takes.
        assert!(
            took >= Duration::from_secs(30) && took < Duration::from_secs(31),
            "took {took:?}"
        );
        emulator.shutdown().await;
    })
    .await;
}
