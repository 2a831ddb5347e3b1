//! `plansync run`: the long-running daemon. It runs the sync engine on the cron schedules of
//! `[schedule]` in the org's time zone, one run at a time, backs off after a failed run,
//! stops cleanly when its cancellation token is cancelled (`plansync run` cancels it on
//! SIGTERM or SIGINT, see [`signals`]), talks to systemd (`Type=notify`, watchdog), and keeps
//! the metrics that the opt-in listener serves. Each run ends with one `run finished` log line
//! from the engine (at ERROR when it failed). It reads the time from a [`Clock`] (the system
//! clock unless one is given), so its schedules can be followed in a test with paused time.

pub mod lock;
pub mod metrics;
pub mod notify;
pub mod scheduler;
pub mod signals;
pub mod stream;
pub mod wake;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use rand::Rng;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, info_span, warn, Instrument};

use crate::clock::Clock;
use crate::config::ScheduleSection;
use crate::sync::{CycleOptions, CycleReport, ObjectKind, SyncEngine};

use metrics::{MetricsState, SharedMetrics, StreamingMetrics};
use notify::Activity;
use scheduler::{backoff, fires_between, next_fire, RunKind};
use stream::{StreamMessage, StreamingSettings};
use wake::{Covered, Pending, SubscriptionState};

/// How the daemon runs, besides the engine.
#[derive(Debug, Clone)]
pub struct DaemonSettings {
    pub schedules: ScheduleSection,
    /// The zone the cron schedules are read in.
    pub timezone: Tz,
    /// Serve `/metrics` and `/healthz` there; off when `None`.
    pub metrics: Option<metrics::Endpoint>,
    /// `/healthz` answers 200 while a run succeeded within this long.
    pub healthy_within: Duration,
    /// The wait after the first failed run in a row; it doubles with each further failure.
    pub backoff_base: Duration,
    /// The longest wait after failed runs.
    pub backoff_max: Duration,
    /// After a stop request, how long the run in progress may take to reach a safe point
    /// before it is abandoned.
    pub stop_timeout: Duration,
}

/// Why the daemon could not start or did not stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Lock(#[from] lock::LockError),
    #[error("cannot serve metrics on {addr} ([metrics] listen)")]
    Metrics {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot set up the metrics endpoint")]
    MetricsAccess(#[from] metrics::access::AccessError),
    #[error("cannot install the SIGTERM and SIGINT handlers")]
    Signals(#[source] std::io::Error),
    #[error("no [schedule] expression fires again after {after}: check their year fields")]
    NoFires { after: DateTime<Utc> },
    #[error(
        "the {kind} run did not reach a safe point within {seconds} s of the stop request and \
         was abandoned; the next start resumes from its last committed page"
    )]
    Abandoned { kind: RunKind, seconds: u64 },
}

/// How one run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Succeeded,
    /// Ended early on purpose (API budget, shutdown); not a failure.
    Partial(String),
    Failed(String),
}

impl Outcome {
    fn label(&self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Partial(_) => "partial",
            Outcome::Failed(_) => "failed",
        }
    }
}

/// The daemon: the engine, its schedules and what it reports.
pub struct Daemon {
    engine: SyncEngine,
    settings: DaemonSettings,
    metrics: SharedMetrics,
    activity: Arc<Activity>,
    /// The stop request, given to [`Daemon::run`].
    shutdown: CancellationToken,
    clock: Clock,
    failures: u32,
    /// The last run, for systemd's STATUS line.
    last_status: Option<String>,
    /// Change events wake cycles; `None` when `[streaming]` is off.
    streaming: Option<StreamingSettings>,
    /// The subscription's state, and the events no completed cycle covered yet.
    subscription: SubscriptionState,
    pending: Pending,
    /// The API names of the objects the cycle reads (events of others wake nothing).
    objects: BTreeSet<String>,
    /// The fields the write-back sets, by object: updates of only these by plansync are
    /// echoes of its own writes and wake nothing ([`wake::is_echo`]).
    written_fields: BTreeMap<String, BTreeSet<String>>,
}

/// What ended the daemon's wait.
enum Woke {
    /// The time waited for came (`false`: a stop was requested first).
    Reached(bool),
    /// The subscription task said something (`None`: it ended).
    Stream(Option<StreamMessage>),
}

/// The next message of the subscription task; never, when there is none.
async fn next_message(
    rx: &mut Option<mpsc::UnboundedReceiver<StreamMessage>>,
) -> Option<StreamMessage> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

impl Daemon {
    /// A daemon over `engine`, on the system clock.
    pub fn new(engine: SyncEngine, settings: DaemonSettings) -> Daemon {
        Daemon::with_clock(engine, settings, Clock::system())
    }

    /// A daemon over `engine` that reads the time from `clock`, and gives it to the engine.
    pub fn with_clock(mut engine: SyncEngine, settings: DaemonSettings, clock: Clock) -> Daemon {
        let activity = Arc::new(Activity::default());
        let listener = activity.clone();
        engine.on_progress(move |_| listener.progressed());
        engine.set_clock(clock.clone());
        let mut state = MetricsState::new(clock.now(), settings.healthy_within);
        let names = &engine.settings().names;
        let pulled: Vec<String> = ObjectKind::ALL
            .into_iter()
            .map(|kind| names.object(kind).to_string())
            .collect();
        let written = [
            names.object(ObjectKind::Plan).to_string(),
            names.snapshot.object.clone(),
        ];
        state.preset_series(&pulled, &written);
        let objects = pulled.iter().cloned().collect();
        let written_fields = names.written_fields();
        let metrics = Arc::new(Mutex::new(state));
        Daemon {
            engine,
            settings,
            metrics,
            activity,
            shutdown: CancellationToken::new(),
            clock,
            failures: 0,
            last_status: None,
            streaming: None,
            subscription: SubscriptionState::Disabled,
            pending: Pending::default(),
            objects,
            written_fields,
        }
    }

    /// Subscribes to change events while running: they wake incremental cycles, and while
    /// the subscription is healthy the incremental schedule is `settings.backstop`.
    /// `healthy_within` is the `/healthz` window while subscribed.
    pub fn set_streaming(&mut self, settings: StreamingSettings, healthy_within: Duration) {
        self.lock_metrics().streaming =
            Some(StreamingMetrics::new(self.clock.now(), healthy_within));
        self.subscription = SubscriptionState::Connecting;
        self.streaming = Some(settings);
    }

    /// Starts the subscription task, subscribing from the store's replayIds.
    fn start_subscription(&mut self) -> Option<mpsc::UnboundedReceiver<StreamMessage>> {
        let settings = self.streaming.clone()?;
        let replay = match self.engine.store().replay_ids() {
            Ok(ids) => ids,
            Err(err) => {
                warn!(error = %crate::error::Chain(&err), "cannot read the stored replayIds; subscribing to new events only");
                BTreeMap::new()
            }
        };
        let client = match crate::crm::streaming::CometdClient::new(
            self.engine.crm().clone(),
            settings.channels.clone(),
            replay,
        ) {
            Ok(client) => client,
            Err(err) => {
                warn!(error = %crate::error::Chain(&err), "cannot set up the change-event subscription; polling only");
                let text = crate::error::chain(&err);
                self.on_stream(StreamMessage::State(SubscriptionState::Down(text)));
                return None;
            }
        };
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(stream::subscribe(
            client,
            settings,
            tx,
            self.shutdown.clone(),
        ));
        self.save_streaming_status();
        Some(rx)
    }

    /// Takes in what the subscription task said.
    fn on_stream(&mut self, message: StreamMessage) {
        let now = self.clock.now();
        match message {
            StreamMessage::State(state) => {
                if state != self.subscription {
                    info!(
                        from = self.subscription.as_str(),
                        to = state.as_str(),
                        "change-event subscription {}",
                        state.as_str()
                    );
                    let mut metrics = self.lock_metrics();
                    if let Some(s) = metrics.streaming.as_mut() {
                        s.state = state.as_str().to_string();
                        s.since = now;
                        s.error = state.error().map(str::to_string);
                    }
                    drop(metrics);
                    self.subscription = state;
                    self.save_streaming_status();
                }
            }
            StreamMessage::Subscribed {
                replay_reset,
                refused,
            } => {
                for (channel, error) in &refused {
                    warn!(%channel, %error, "the CRM refused this change-event channel; changes of its object wait for the [streaming] backstop schedule (select the object for Change Data Capture)");
                }
                if !replay_reset.is_empty() {
                    warn!(channels = ?replay_reset, "the stored replayIds were refused; a catch-up cycle reads what changed meanwhile");
                }
                if let Some(s) = self.lock_metrics().streaming.as_mut() {
                    s.subscriptions += 1;
                }
                self.pending.note_catch_up("subscribed", now);
            }
            StreamMessage::Events(events) => {
                let shared = self.metrics.clone();
                let mut metrics = shared.lock().unwrap_or_else(|e| e.into_inner());
                for event in &events {
                    tracing::debug!(
                        entity = %event.entity_name,
                        change = %event.change_type,
                        records = event.record_ids.len(),
                        replay_id = event.replay_id,
                        "change event"
                    );
                    if wake::is_echo(event, &self.written_fields) {
                        self.pending.note_position(event);
                    } else {
                        self.pending.note_event(event, &self.objects, now);
                    }
                    if let Some(s) = metrics.streaming.as_mut() {
                        *s.events.entry(event.change_type.to_string()).or_default() += 1;
                        s.last_event_at = Some(now);
                        if event.commit_timestamp.is_some() {
                            s.last_commit_at = event.commit_timestamp;
                        }
                    }
                }
                drop(metrics);
                self.save_streaming_status();
            }
        }
    }

    /// Writes the subscription's state to the store, for `plansync status`.
    fn save_streaming_status(&self) {
        let Some(settings) = &self.streaming else {
            return;
        };
        let status = {
            let metrics = self.lock_metrics();
            let Some(s) = metrics.streaming.as_ref() else {
                return;
            };
            crate::store::StreamingStatus {
                state: s.state.clone(),
                since: s.since,
                error: s.error.clone(),
                channels: settings.channels.join(","),
                last_event_at: s.last_event_at,
                last_commit_at: s.last_commit_at,
                freshness_lag_ms: s.freshness_lag_seconds.map(|l| (l * 1000.0).round() as i64),
                woken_cycles: s.woken_cycles,
                updated_at: self.clock.now(),
            }
        };
        if let Err(err) = self.engine.store().save_streaming_status(&status) {
            warn!(error = %crate::error::Chain(&err), "cannot record the subscription's state in the store");
        }
    }

    /// After a sync run: keeps the replayIds of what it covered and the freshness lag when it
    /// completed; puts them back to wait for the next cycle otherwise.
    fn settle_covered(&mut self, covered: Covered, outcome: &Outcome) {
        if self.streaming.is_none() || covered.is_empty() {
            return;
        }
        let now = self.clock.now();
        if *outcome != Outcome::Succeeded {
            self.pending.restore(covered, now);
            return;
        }
        if let Err(err) = self.engine.store().save_replay_ids(&covered.replay, now) {
            warn!(error = %crate::error::Chain(&err), "cannot keep the replayIds; a restart replays those events again");
        }
        let lag = covered
            .oldest_commit
            .map(|commit| (now - commit).num_milliseconds().max(0) as f64 / 1000.0);
        if let Some(lag) = lag {
            info!(
                freshness_lag_seconds = lag,
                events = covered.events,
                objects = ?covered.objects,
                "plans written after change events"
            );
        }
        let mut metrics = self.lock_metrics();
        if let Some(s) = metrics.streaming.as_mut() {
            if !covered.reasons.is_empty() {
                s.woken_cycles += 1;
            }
            if lag.is_some() {
                s.freshness_lag_seconds = lag;
            }
        }
        drop(metrics);
        self.save_streaming_status();
    }

    /// The state behind `/metrics` and `/healthz`.
    pub fn metrics(&self) -> SharedMetrics {
        self.metrics.clone()
    }

    /// Runs until `shutdown` is cancelled; the run in progress then stops at its next page or
    /// batch. Returns `Ok` after a clean stop.
    pub async fn run(mut self, shutdown: CancellationToken) -> Result<(), DaemonError> {
        self.shutdown = shutdown;
        self.refresh_from_store(true);
        if let Some(endpoint) = self.settings.metrics.clone() {
            let addr = endpoint.addr;
            let scheme = endpoint.scheme();
            let auth = if endpoint.access.is_required() {
                "required"
            } else {
                "none"
            };
            let bound = metrics::serve(endpoint, self.metrics.clone(), self.shutdown.clone())
                .await
                .map_err(|source| DaemonError::Metrics { addr, source })?;
            info!(%bound, scheme, auth, "serving /metrics and /healthz");
        }
        notify::spawn_watchdog(self.activity.clone(), self.shutdown.clone());
        let mut stream = self.start_subscription();

        let tz = self.settings.timezone;
        let mut after = self.clock.now();
        let mut first = true;
        loop {
            let schedules = wake::effective_schedules(
                &self.settings.schedules,
                self.streaming.as_ref().map(|s| &s.backstop),
                &self.subscription,
            );
            let fire = next_fire(&schedules, after, tz).ok_or(DaemonError::NoFires { after })?;
            let due = self
                .streaming
                .as_ref()
                .and_then(|s| self.pending.due_at(s.debounce));
            // A cycle woken by change events, when it comes before the next scheduled fire.
            let woken = due.filter(|d| *d < fire.at);
            let waiting = match woken {
                Some(at) => format!(
                    "next run: incremental (change events) at {}",
                    at.with_timezone(&tz)
                ),
                None => format!(
                    "next run: {} at {}",
                    kinds_text(&fire.kinds),
                    fire.at.with_timezone(&tz)
                ),
            };
            if first {
                notify::ready(&format!("ready; {waiting}"));
                info!(
                    store = %self.engine.store().path().display(),
                    "daemon started; {waiting}"
                );
                first = false;
            } else {
                notify::status(&format!("{}; {waiting}", self.last_run_status()));
            }
            let target = woken.unwrap_or(fire.at);
            let woke = tokio::select! {
                reached = self.sleep_until(target) => Woke::Reached(reached),
                message = next_message(&mut stream) => Woke::Stream(message),
            };
            match woke {
                Woke::Reached(false) => break,
                Woke::Reached(true) => {}
                Woke::Stream(Some(message)) => {
                    self.on_stream(message);
                    continue;
                }
                Woke::Stream(None) => {
                    stream = None;
                    continue;
                }
            }
            let kinds = if woken.is_some() {
                vec![RunKind::Incremental]
            } else {
                fire.kinds.clone()
            };
            for kind in &kinds {
                if self.shutdown.is_cancelled() {
                    break;
                }
                let outcome = self.run_one(*kind).await?;
                match outcome {
                    Outcome::Failed(_) => self.failures += 1,
                    Outcome::Succeeded | Outcome::Partial(_) => self.failures = 0,
                }
            }
            if self.shutdown.is_cancelled() {
                break;
            }
            let ended = self.clock.now();
            // A woken run consumed no fire: the fires it overran are the ones after `after`.
            let from = if woken.is_some() { after } else { fire.at };
            self.record_skipped(from, ended, "a run was going");
            after = ended;
            if self.failures > 0 {
                let jitter = rand::thread_rng().gen_range(-1.0..=1.0);
                let wait = backoff(
                    self.failures,
                    self.settings.backoff_base,
                    self.settings.backoff_max,
                    jitter,
                );
                let resume = ended + chrono::Duration::from_std(wait).unwrap_or_default();
                warn!(
                    failures = self.failures,
                    backoff_seconds = wait.as_secs(),
                    "backing off after a failed run; the next scheduled run after {resume} follows"
                );
                notify::status(&format!(
                    "{}; backing off {} s after {} failed run(s)",
                    self.last_run_status(),
                    wait.as_secs(),
                    self.failures
                ));
                if !self.sleep_until(resume).await {
                    break;
                }
                self.record_skipped(ended, resume, "backing off after a failed run");
                after = resume;
            }
        }
        notify::stopping("stopping");
        info!("daemon stopped");
        Ok(())
    }

    /// Sleeps until `at` on the wall clock (re-checked every minute, so clock changes are
    /// followed); `false` when a stop was requested.
    async fn sleep_until(&self, at: DateTime<Utc>) -> bool {
        loop {
            let now = self.clock.now();
            if now >= at {
                return !self.shutdown.is_cancelled();
            }
            let wait = (at - now)
                .to_std()
                .unwrap_or_default()
                .min(Duration::from_secs(60));
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = self.shutdown.cancelled() => return false,
            }
        }
    }

    fn record_skipped(&self, from: DateTime<Utc>, to: DateTime<Utc>, why: &str) {
        let skipped = fires_between(&self.settings.schedules, from, to, self.settings.timezone);
        if skipped.is_empty() {
            return;
        }
        let mut state = self.lock_metrics();
        for (kind, count) in skipped {
            info!(kind = kind.as_str(), count, "skipped scheduled runs: {why}");
            *state
                .skipped_fires
                .entry(kind.as_str().to_string())
                .or_default() += count as u64;
        }
    }

    fn lock_metrics(&self) -> std::sync::MutexGuard<'_, MetricsState> {
        self.metrics.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One run, in its own span; its outcome goes to the metrics, the log and systemd.
    async fn run_one(&mut self, kind: RunKind) -> Result<Outcome, DaemonError> {
        let span = info_span!("run", kind = kind.as_str());
        self.activity.set_running(true);
        self.lock_metrics().running = Some(kind.as_str().to_string());
        notify::status(&format!("running a {kind} run"));
        span.in_scope(|| info!("run started"));
        let started = Instant::now();
        // What the events so far asked for: this sync covers it.
        let covered = match kind {
            RunKind::Incremental | RunKind::Full if self.streaming.is_some() => self.pending.take(),
            _ => Covered::default(),
        };
        if !covered.reasons.is_empty() {
            span.in_scope(|| {
                info!(
                    reasons = ?covered.reasons,
                    objects = ?covered.objects,
                    events = covered.events,
                    "woken by change events"
                )
            });
        }
        let result = self.run_engine(kind).instrument(span.clone()).await;
        self.activity.set_running(false);
        {
            let mut state = self.lock_metrics();
            state.observe_duration(kind.as_str(), started.elapsed().as_secs_f64());
            state.running = None;
        }
        let (outcome, report) = result?;
        let _entered = span.enter();
        self.record(kind, &outcome, report.as_ref());
        self.settle_covered(covered, &outcome);
        Ok(outcome)
    }

    async fn run_engine(
        &mut self,
        kind: RunKind,
    ) -> Result<(Outcome, Option<CycleReport>), DaemonError> {
        let stop = self.shutdown.clone();
        let engine_stop = self.engine.cancellation();
        let stop_timeout = self.settings.stop_timeout;
        let today = self
            .clock
            .now()
            .with_timezone(&self.settings.timezone)
            .date_naive();
        let engine = &mut self.engine;
        let work = async move {
            match kind {
                RunKind::Full | RunKind::Incremental => {
                    engine
                        .run_cycle(CycleOptions {
                            full: kind == RunKind::Full,
                            dry_run: false,
                            as_of: None,
                        })
                        .await
                }
                RunKind::Snapshot => engine.snapshot(today, false).await,
            }
        };
        let deadline = async move {
            stop.cancelled().await;
            // The engine stops at its next page or batch.
            engine_stop.cancel();
            tokio::time::sleep(stop_timeout).await;
        };
        let result = tokio::select! {
            result = work => result,
            () = deadline => {
                return Err(DaemonError::Abandoned { kind, seconds: stop_timeout.as_secs() });
            }
        };
        Ok(match result {
            Ok(report) => match &report.stopped_early {
                Some(why) => (Outcome::Partial(why.clone()), Some(report)),
                None => (Outcome::Succeeded, Some(report)),
            },
            Err(err) => (Outcome::Failed(crate::error::chain(&err)), None),
        })
    }

    /// Updates the metrics from the run's report and the store. The engine logged the run's
    /// `run finished` line.
    fn record(&mut self, kind: RunKind, outcome: &Outcome, report: Option<&CycleReport>) {
        let now = self.clock.now();
        let labels = object_names(&self.engine);
        {
            let mut state = self.lock_metrics();
            *state
                .runs
                .entry((kind.as_str().to_string(), outcome.label().to_string()))
                .or_default() += 1;
            state.last_run = Some((kind.as_str().to_string(), outcome.label().to_string(), now));
            if *outcome == Outcome::Succeeded {
                state.last_success = Some(now);
            }
            if let Some(report) = report {
                for (label, stats) in &report.objects {
                    let object = labels.get(label).cloned().unwrap_or_else(|| label.clone());
                    *state.rows_pulled.entry(object.clone()).or_default() += stats.pulled;
                    *state.rows_deleted.entry(object).or_default() += stats.deleted;
                }
                state.fields_written += report.fields_written;
                state.records_written += report.records_written;
                state.api_calls += report.api_calls;
                for failure in &report.write_failures {
                    *state
                        .write_failures
                        .entry(failure.object.clone())
                        .or_default() += 1;
                }
            }
            let summary = match (outcome, report) {
                (Outcome::Failed(why), _) => format!("failed: {why}"),
                (_, Some(r)) => format!(
                    "{} ({} rows pulled, {} fields written, {} API calls, {} ms)",
                    outcome.label(),
                    r.objects.values().map(|s| s.pulled).sum::<u64>(),
                    r.fields_written,
                    r.api_calls,
                    r.duration_ms
                ),
                _ => outcome.label().to_string(),
            };
            drop(state);
            self.last_status = Some(format!(
                "last run: {kind} {summary}, ended {}",
                now.with_timezone(&self.settings.timezone)
                    .format("%Y-%m-%d %H:%M:%S %Z")
            ));
        }
        self.refresh_from_store(false);
    }

    fn last_run_status(&self) -> String {
        self.last_status
            .clone()
            .unwrap_or_else(|| "no run yet".to_string())
    }

    /// Reads the cursors, the outbox and the API usage into the metrics (between runs only,
    /// from the daemon's own task). At start, also the last successful run from the run log.
    fn refresh_from_store(&self, at_start: bool) {
        let store = self.engine.store();
        let mut cursors = BTreeMap::new();
        for kind in ObjectKind::ALL {
            let object = self.engine.settings().names.object(kind).to_string();
            match store.cursor(&object) {
                Ok(Some(cursor)) => {
                    cursors.insert(object, cursor.system_modstamp);
                }
                Ok(None) => {}
                Err(err) => {
                    warn!(%object, error = %crate::error::Chain(&err), "cannot read the cursor for metrics")
                }
            }
        }
        let outbox = store.outbox_depth();
        let last_success = if at_start {
            store.recent_runs(100).ok().and_then(|runs| {
                runs.into_iter()
                    .filter(|r| {
                        // A dry run of any kind wrote nothing: it is not a success to report.
                        crate::sync::RunName::parse(&r.kind).is_some_and(|n| !n.dry_run)
                            && r.outcome.as_deref() == Some("succeeded")
                    })
                    .find_map(|r| r.finished_at)
            })
        } else {
            None
        };
        let usage = self.engine.crm().api_usage();
        let mut state = self.lock_metrics();
        state.cursors = cursors;
        match outbox {
            Ok((depth, oldest)) => {
                state.outbox_depth = depth;
                state.outbox_oldest = oldest;
            }
            Err(err) => {
                warn!(error = %crate::error::Chain(&err), "cannot read the outbox depth for metrics")
            }
        }
        if usage.is_some() {
            state.api_usage = usage;
        }
        if last_success.is_some() {
            state.last_success = last_success;
        }
    }
}

/// The report's object labels (`opportunity`) to the CRM's API names (`Opportunity`).
fn object_names(engine: &SyncEngine) -> BTreeMap<String, String> {
    ObjectKind::ALL
        .into_iter()
        .map(|kind| {
            (
                kind.label().to_string(),
                engine.settings().names.object(kind).to_string(),
            )
        })
        .collect()
}

fn kinds_text(kinds: &[RunKind]) -> String {
    kinds
        .iter()
        .map(|k| k.as_str())
        .collect::<Vec<_>>()
        .join(" + ")
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// The `.rs` files under `dir`, with their text.
    fn sources(dir: &Path, out: &mut Vec<(String, String)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                out.push((path.display().to_string(), text));
            }
        }
    }

    #[test]
    fn the_daemon_does_not_use_the_command_line() {
        // `cli` starts the daemon; the daemon using `cli` would make an import cycle.
        let mut files = Vec::new();
        sources(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("src/daemon"),
            &mut files,
        );
        assert!(files.len() >= 5, "{files:?}");
        for (path, text) in files {
            // Spelled in two parts, so this file does not match itself.
            for root in ["crate", "super", "plansync"] {
                let pattern = format!("{root}::{}", "cli");
                assert!(!text.contains(&pattern), "{path} uses {pattern}");
            }
        }
    }
}
