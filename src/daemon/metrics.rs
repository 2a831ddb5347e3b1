//! What the daemon knows about its runs, and the opt-in listener that serves it: Prometheus
//! text at `/metrics` and `/healthz`. The HTTP handlers only read this shared state, which the
//! daemon updates after each run; they never touch the store.
//!
//! The exposition is written by `prometheus-client` (the Prometheus project's Rust client):
//! the text format 0.0.4 by default, OpenMetrics when a scraper asks for it. The listener is
//! open on a loopback address; elsewhere the configuration requires a bearer token or basic
//! auth (see [`access`]), and it can serve HTTPS ([`serve`]).

pub mod access;
pub mod process;
mod server;

pub use server::{router, serve, Endpoint};

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::crm::ApiUsage;
use crate::daemon::scheduler::RunKind;

use process::ProcessStats;

/// The version of this build.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The commit this build came from (`git rev-parse --short HEAD`), or "unknown".
pub const COMMIT: &str = env!("PLANSYNC_GIT_COMMIT");

/// The outcomes a run ends with.
pub const OUTCOMES: [&str; 3] = ["succeeded", "partial", "failed"];

/// The bucket bounds of `plansync_run_duration_seconds`: a quick incremental run takes about
/// a second, a full one on a large org many minutes.
const DURATION_BUCKETS: [f64; 12] = [
    0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
];

/// A label set, in the order written.
pub type Labels = Vec<(String, String)>;

fn run_duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

fn kind_label(kind: &str) -> Labels {
    vec![("kind".to_string(), kind.to_string())]
}

/// The daemon's counters and gauges.
#[derive(Debug, Clone)]
pub struct MetricsState {
    pub started_at: DateTime<Utc>,
    /// A cycle that ends succeeded within this long keeps `/healthz` at 200.
    pub healthy_within: Duration,
    /// The SystemModstamp of each object's cursor (API name).
    pub cursors: BTreeMap<String, DateTime<Utc>>,
    /// Rows pulled (created or changed) per object, since start.
    pub rows_pulled: BTreeMap<String, u64>,
    /// Rows received as deleted or removed by a full reconcile, per object.
    pub rows_deleted: BTreeMap<String, u64>,
    pub fields_written: u64,
    pub records_written: u64,
    /// Records the CRM refused, per object.
    pub write_failures: BTreeMap<String, u64>,
    /// HTTP requests to the CRM made by runs.
    pub api_calls: u64,
    pub api_usage: Option<ApiUsage>,
    /// Writes not yet settled, and when the oldest was queued.
    pub outbox_depth: u64,
    pub outbox_oldest: Option<DateTime<Utc>>,
    /// When a run last ended `succeeded`.
    pub last_success: Option<DateTime<Utc>>,
    /// The last run's kind, outcome and end.
    pub last_run: Option<(String, String, DateTime<Utc>)>,
    /// Runs by (kind, outcome).
    pub runs: BTreeMap<(String, String), u64>,
    /// Scheduled fires skipped (a run was going, or the daemon was backing off), by kind.
    pub skipped_fires: BTreeMap<String, u64>,
    /// The kind of run in progress.
    pub running: Option<String>,
    /// How long runs took, by kind (shared by clones: the listener reads what the daemon
    /// observes).
    pub run_durations: Family<Labels, Histogram>,
    /// The change-event subscription; `None` when `[streaming]` is off.
    pub streaming: Option<StreamingMetrics>,
}

/// The change-event subscription, as `/metrics` and `/healthz` show it.
#[derive(Debug, Clone)]
pub struct StreamingMetrics {
    /// `connecting`, `subscribed`, `down` or `unsupported`.
    pub state: String,
    pub since: DateTime<Utc>,
    pub error: Option<String>,
    /// Events received, by change type (`UPDATE`, `GAP_OVERFLOW`, ...).
    pub events: BTreeMap<String, u64>,
    pub last_event_at: Option<DateTime<Utc>>,
    /// The commit timestamp of the last event received.
    pub last_commit_at: Option<DateTime<Utc>>,
    /// The oldest change a woken cycle covered, from its commit to the end of that cycle.
    pub freshness_lag_seconds: Option<f64>,
    /// Cycles change events (or a resubscription) woke.
    pub woken_cycles: u64,
    /// Successful (re)subscriptions.
    pub subscriptions: u64,
    /// While subscribed, `/healthz` accepts a last success this old (the sparse backstop
    /// schedule runs seldom when nothing changes).
    pub healthy_within: Duration,
}

/// The states a subscription can be in, for the `plansync_streaming_state` series.
pub const STREAMING_STATES: [&str; 4] = ["connecting", "subscribed", "down", "unsupported"];

impl StreamingMetrics {
    pub fn new(since: DateTime<Utc>, healthy_within: Duration) -> StreamingMetrics {
        StreamingMetrics {
            state: "connecting".into(),
            since,
            error: None,
            events: BTreeMap::new(),
            last_event_at: None,
            last_commit_at: None,
            freshness_lag_seconds: None,
            woken_cycles: 0,
            subscriptions: 0,
            healthy_within,
        }
    }
}

impl MetricsState {
    pub fn new(started_at: DateTime<Utc>, healthy_within: Duration) -> MetricsState {
        MetricsState {
            started_at,
            healthy_within,
            cursors: BTreeMap::new(),
            rows_pulled: BTreeMap::new(),
            rows_deleted: BTreeMap::new(),
            fields_written: 0,
            records_written: 0,
            write_failures: BTreeMap::new(),
            api_calls: 0,
            api_usage: None,
            outbox_depth: 0,
            outbox_oldest: None,
            last_success: None,
            last_run: None,
            runs: BTreeMap::new(),
            skipped_fires: BTreeMap::new(),
            running: None,
            run_durations: Family::new_with_constructor(run_duration_histogram),
            streaming: None,
        }
    }

    /// Creates every labelled series at zero, so that rates and alerts work from the first
    /// scrape: runs for each kind and outcome, skipped fires and durations for each kind,
    /// rows for each pulled object and write failures for each written one.
    pub fn preset_series(&mut self, pulled: &[String], written: &[String]) {
        for kind in RunKind::ALL {
            let kind = kind.as_str().to_string();
            for outcome in OUTCOMES {
                self.runs
                    .entry((kind.clone(), outcome.to_string()))
                    .or_default();
            }
            self.skipped_fires.entry(kind.clone()).or_default();
            let _ = self.run_durations.get_or_create(&kind_label(&kind));
        }
        for object in pulled {
            self.rows_pulled.entry(object.clone()).or_default();
            self.rows_deleted.entry(object.clone()).or_default();
        }
        for object in written {
            self.write_failures.entry(object.clone()).or_default();
        }
    }

    /// Counts a run's duration under its kind.
    pub fn observe_duration(&self, kind: &str, seconds: f64) {
        self.run_durations
            .get_or_create(&kind_label(kind))
            .observe(seconds);
    }

    /// Whether a cycle succeeded recently enough, and a one-line reason.
    pub fn health(&self, now: DateTime<Utc>) -> (bool, String) {
        let (ok, why) = self.run_health(now);
        match &self.streaming {
            Some(s) => {
                let since = (now - s.since).num_seconds().max(0);
                let detail = match &s.error {
                    Some(e) => format!("{} for {since} s: {e}", s.state),
                    None => format!("{} for {since} s", s.state),
                };
                (ok, format!("{why}; change events: {detail}"))
            }
            None => (ok, why),
        }
    }

    fn run_health(&self, now: DateTime<Utc>) -> (bool, String) {
        let mut window = self.healthy_within.as_secs();
        if let Some(s) = &self.streaming {
            if s.state == "subscribed" {
                window = window.max(s.healthy_within.as_secs());
            }
        }
        match self.last_success {
            Some(at) => {
                let age = (now - at).num_seconds().max(0);
                if age as u64 <= window {
                    (
                        true,
                        format!("ok: the last successful run ended {age} s ago"),
                    )
                } else {
                    (
                        false,
                        format!(
                            "unhealthy: the last successful run ended {age} s ago, more than \
                             {window} s ({})",
                            self.last_run_text()
                        ),
                    )
                }
            }
            None => (
                false,
                format!(
                    "unhealthy: no run has succeeded yet (started {} s ago; {})",
                    (now - self.started_at).num_seconds().max(0),
                    self.last_run_text()
                ),
            ),
        }
    }

    fn last_run_text(&self) -> String {
        match &self.last_run {
            Some((kind, outcome, at)) => format!("last run: {kind} {outcome} at {at}"),
            None => "no run finished since start".into(),
        }
    }

    /// The Prometheus text exposition (format 0.0.4) of every metric, ages taken at `now`.
    pub fn render(&self, now: DateTime<Utc>) -> String {
        let mut out = String::new();
        let registry = self.registry(now, ProcessStats::read().as_ref());
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &registry);
        out
    }

    /// The same metrics in the OpenMetrics text format.
    pub fn render_openmetrics(&self, now: DateTime<Utc>) -> String {
        let mut out = String::new();
        let registry = self.registry(now, ProcessStats::read().as_ref());
        let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
        out
    }

    /// Every metric as it stands at `now`. Counter names are registered without `_total`,
    /// which the encoder adds.
    pub fn registry(&self, now: DateTime<Utc>, process: Option<&ProcessStats>) -> Registry {
        let secs = |d: chrono::Duration| d.num_milliseconds() as f64 / 1000.0;
        let mut r = Registry::default();

        let build: Family<Labels, Gauge> = Family::default();
        build
            .get_or_create(&vec![
                ("version".to_string(), VERSION.to_string()),
                ("commit".to_string(), COMMIT.to_string()),
            ])
            .set(1);
        r.register(
            "plansync_build_info",
            "The version and commit of this build; always 1.",
            build,
        );

        let lags: Family<Labels, Gauge<f64, AtomicU64>> = Family::default();
        for (object, at) in &self.cursors {
            lags.get_or_create(&object_label(object))
                .set(secs(now - *at));
        }
        r.register(
            "plansync_cursor_lag_seconds",
            "Now minus the SystemModstamp of the object's pull cursor.",
            lags,
        );
        r.register(
            "plansync_rows_pulled",
            "Rows pulled from the CRM (created or changed), by object.",
            by_object(&self.rows_pulled),
        );
        r.register(
            "plansync_rows_deleted",
            "Rows received as deleted or removed by a full reconcile, by object.",
            by_object(&self.rows_deleted),
        );
        r.register(
            "plansync_fields_written",
            "Field values written to the CRM and accepted.",
            counter(self.fields_written),
        );
        r.register(
            "plansync_records_written",
            "Records written to the CRM and accepted.",
            counter(self.records_written),
        );
        r.register(
            "plansync_write_failures",
            "Record writes the CRM refused, by object.",
            by_object(&self.write_failures),
        );
        r.register(
            "plansync_api_calls",
            "HTTP requests sent to the CRM by runs, including retries and token requests.",
            counter(self.api_calls),
        );
        if let Some(usage) = self.api_usage {
            r.register(
                "plansync_api_usage_used",
                "The org's API calls in the rolling 24 hours, as the CRM last reported.",
                gauge(usage.used),
            );
            r.register(
                "plansync_api_usage_max",
                "The org's 24-hour API allowance.",
                gauge(usage.max),
            );
            r.register(
                "plansync_api_remaining",
                "API calls left in the org's rolling 24 hours.",
                gauge(usage.max.saturating_sub(usage.used)),
            );
        }
        r.register(
            "plansync_outbox_depth",
            "Writes queued for the CRM and not yet settled.",
            gauge(self.outbox_depth),
        );
        r.register(
            "plansync_outbox_oldest_age_seconds",
            "Age of the oldest unsettled write (0 when none).",
            gauge_f64(self.outbox_oldest.map(|at| secs(now - at)).unwrap_or(0.0)),
        );
        let last_success: Gauge = Gauge::default();
        last_success.set(self.last_success.map(|t| t.timestamp()).unwrap_or(0));
        r.register(
            "plansync_last_success_timestamp_seconds",
            "When a run last ended succeeded (unix seconds; 0 when never).",
            last_success,
        );
        let runs: Family<Labels, Counter> = Family::default();
        for ((kind, outcome), n) in &self.runs {
            runs.get_or_create(&vec![
                ("kind".to_string(), kind.clone()),
                ("outcome".to_string(), outcome.clone()),
            ])
            .inc_by(*n);
        }
        r.register(
            "plansync_runs",
            "Runs by kind and outcome (succeeded, partial, failed).",
            runs,
        );
        r.register(
            "plansync_run_duration_seconds",
            "How long runs took, by kind.",
            self.run_durations.clone(),
        );
        let skipped: Family<Labels, Counter> = Family::default();
        for (kind, n) in &self.skipped_fires {
            skipped.get_or_create(&kind_label(kind)).inc_by(*n);
        }
        r.register(
            "plansync_skipped_fires",
            "Scheduled fires skipped because a run was going or the daemon was backing off.",
            skipped,
        );
        r.register(
            "plansync_run_in_progress",
            "1 while a run is going.",
            gauge(u64::from(self.running.is_some())),
        );
        if let Some(s) = &self.streaming {
            let states: Family<Labels, Gauge> = Family::default();
            for state in STREAMING_STATES {
                states
                    .get_or_create(&vec![("state".to_string(), state.to_string())])
                    .set(i64::from(s.state == state));
            }
            r.register(
                "plansync_streaming_state",
                "1 for the change-event subscription's current state (connecting, subscribed, \
                 down, unsupported).",
                states,
            );
            r.register(
                "plansync_streaming_subscribed",
                "1 while every change-event channel is subscribed.",
                gauge(u64::from(s.state == "subscribed")),
            );
            let events: Family<Labels, Counter> = Family::default();
            for (change_type, n) in &s.events {
                events
                    .get_or_create(&vec![("change_type".to_string(), change_type.clone())])
                    .inc_by(*n);
            }
            r.register(
                "plansync_streaming_events",
                "Change events received, by change type.",
                events,
            );
            let last_event: Gauge = Gauge::default();
            last_event.set(s.last_event_at.map(|t| t.timestamp()).unwrap_or(0));
            r.register(
                "plansync_streaming_last_event_timestamp_seconds",
                "When the last change event was received (unix seconds; 0 when none).",
                last_event,
            );
            if let Some(lag) = s.freshness_lag_seconds {
                r.register(
                    "plansync_streaming_freshness_lag_seconds",
                    "From the commit of the oldest change a woken cycle covered to the end of \
                     that cycle (the plans written), for the last such cycle.",
                    gauge_f64(lag),
                );
            }
            r.register(
                "plansync_streaming_woken_cycles",
                "Cycles that change events (or a resubscription) woke.",
                counter(s.woken_cycles),
            );
            r.register(
                "plansync_streaming_subscriptions",
                "Successful subscriptions (the first and every resubscription).",
                counter(s.subscriptions),
            );
        }
        r.register(
            "plansync_healthy",
            "1 when a run succeeded within the health window (what /healthz answers).",
            gauge(u64::from(self.health(now).0)),
        );
        if let Some(p) = process {
            let cpu: Counter<f64, AtomicU64> = Counter::default();
            cpu.inc_by(p.cpu_seconds);
            r.register(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds.",
                cpu,
            );
            r.register(
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                gauge(p.resident_memory_bytes),
            );
            r.register(
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                gauge(p.virtual_memory_bytes),
            );
            r.register(
                "process_open_fds",
                "Number of open file descriptors.",
                gauge(p.open_fds),
            );
            if let Some(max) = p.max_fds {
                r.register(
                    "process_max_fds",
                    "Maximum number of open file descriptors.",
                    gauge(max),
                );
            }
            r.register(
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
                gauge_f64(p.start_time_seconds),
            );
        }
        r
    }
}

fn object_label(object: &str) -> Labels {
    vec![("object".to_string(), object.to_string())]
}

fn counter(value: u64) -> Counter {
    let c = Counter::default();
    c.inc_by(value);
    c
}

fn gauge(value: u64) -> Gauge {
    let g = Gauge::default();
    g.set(i64::try_from(value).unwrap_or(i64::MAX));
    g
}

fn gauge_f64(value: f64) -> Gauge<f64, AtomicU64> {
    let g = Gauge::default();
    g.set(value);
    g
}

fn by_object(values: &BTreeMap<String, u64>) -> Family<Labels, Counter> {
    let family: Family<Labels, Counter> = Family::default();
    for (object, n) in values {
        family.get_or_create(&object_label(object)).inc_by(*n);
    }
    family
}

/// The state the daemon updates and the listener reads.
pub type SharedMetrics = Arc<Mutex<MetricsState>>;

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    /// The value of the sample named exactly `sample` (with its labels), if present.
    pub(super) fn sample(text: &str, sample: &str) -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' ')?.parse().ok())
    }

    #[test]
    fn health_follows_the_last_success_and_the_window() {
        let start = utc("2026-03-10T10:00:00Z");
        let mut state = MetricsState::new(start, Duration::from_secs(900));
        let (ok, why) = state.health(utc("2026-03-10T10:01:00Z"));
        assert!(!ok);
        assert!(why.contains("no run has succeeded yet"), "{why}");
        assert!(why.contains("started 60 s ago"), "{why}");

        state.last_success = Some(utc("2026-03-10T10:05:00Z"));
        let (ok, why) = state.health(utc("2026-03-10T10:20:00Z"));
        assert!(ok, "{why}");
        let (ok, why) = state.health(utc("2026-03-10T10:20:01Z"));
        assert!(!ok);
        assert!(why.contains("901 s ago") && why.contains("900 s"), "{why}");
    }

    #[test]
    fn render_reports_lags_counters_and_ages() {
        let now = utc("2026-03-10T10:10:00Z");
        let mut state = MetricsState::new(utc("2026-03-10T10:00:00Z"), Duration::from_secs(60));
        state
            .cursors
            .insert("Opportunity".into(), utc("2026-03-10T10:08:30Z"));
        state.rows_pulled.insert("Opportunity".into(), 42);
        state.write_failures.insert("Account_Plan__c".into(), 2);
        state.fields_written = 17;
        state.api_usage = Some(ApiUsage {
            used: 120,
            max: 15000,
        });
        state.outbox_depth = 3;
        state.outbox_oldest = Some(utc("2026-03-10T10:09:00Z"));
        state.last_success = Some(utc("2026-03-10T10:09:30Z"));
        state
            .runs
            .insert(("incremental".into(), "succeeded".into()), 5);
        let text = state.render(now);
        for (name, value) in [
            ("plansync_cursor_lag_seconds{object=\"Opportunity\"}", 90.0),
            ("plansync_rows_pulled_total{object=\"Opportunity\"}", 42.0),
            (
                "plansync_write_failures_total{object=\"Account_Plan__c\"}",
                2.0,
            ),
            ("plansync_fields_written_total", 17.0),
            ("plansync_api_usage_used", 120.0),
            ("plansync_api_remaining", 14880.0),
            ("plansync_outbox_depth", 3.0),
            ("plansync_outbox_oldest_age_seconds", 60.0),
            ("plansync_last_success_timestamp_seconds", 1773137370.0),
            (
                "plansync_runs_total{kind=\"incremental\",outcome=\"succeeded\"}",
                5.0,
            ),
            ("plansync_healthy", 1.0),
            ("plansync_run_in_progress", 0.0),
        ] {
            assert_eq!(sample(&text, name), Some(value), "{name} in\n{text}");
        }
        assert!(text.contains(&format!(
            "plansync_build_info{{version=\"{VERSION}\",commit=\"{COMMIT}\"}} 1\n"
        )));
        // Every sample belongs to a family declared with HELP and TYPE (histograms add
        // _bucket, _sum and _count to their name).
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap();
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .filter(|base| text.contains(&format!("# TYPE {base} histogram")))
                .unwrap_or(name);
            assert!(
                text.contains(&format!("# TYPE {family} ")),
                "{name} has no TYPE line"
            );
            assert!(
                text.contains(&format!("# HELP {family} ")),
                "{name} has no HELP line"
            );
        }
    }

    #[test]
    fn every_labelled_series_exists_at_zero_from_the_start() {
        let mut state = MetricsState::new(Utc::now(), Duration::from_secs(60));
        state.preset_series(
            &["Opportunity".to_string(), "Account".to_string()],
            &["Account_Plan__c".to_string()],
        );
        let text = state.render(Utc::now());
        for kind in ["incremental", "full", "snapshot"] {
            for outcome in OUTCOMES {
                let name = format!("plansync_runs_total{{kind=\"{kind}\",outcome=\"{outcome}\"}}");
                assert_eq!(sample(&text, &name), Some(0.0), "{name} in\n{text}");
            }
            let name = format!("plansync_skipped_fires_total{{kind=\"{kind}\"}}");
            assert_eq!(sample(&text, &name), Some(0.0), "{name}");
            let name = format!("plansync_run_duration_seconds_count{{kind=\"{kind}\"}}");
            assert_eq!(sample(&text, &name), Some(0.0), "{name}");
        }
        for object in ["Opportunity", "Account"] {
            for metric in ["plansync_rows_pulled_total", "plansync_rows_deleted_total"] {
                let name = format!("{metric}{{object=\"{object}\"}}");
                assert_eq!(sample(&text, &name), Some(0.0), "{name}");
            }
        }
        assert_eq!(
            sample(
                &text,
                "plansync_write_failures_total{object=\"Account_Plan__c\"}"
            ),
            Some(0.0)
        );
    }

    #[test]
    fn run_durations_fill_the_histogram_by_kind() {
        let state = MetricsState::new(Utc::now(), Duration::from_secs(60));
        let reader = state.clone();
        state.observe_duration("incremental", 0.8);
        state.observe_duration("incremental", 42.0);
        state.observe_duration("full", 700.0);
        // A clone (the listener's snapshot) sees the observations.
        let text = reader.render(Utc::now());
        let bucket = |kind: &str, le: &str| {
            sample(
                &text,
                &format!("plansync_run_duration_seconds_bucket{{kind=\"{kind}\",le=\"{le}\"}}"),
            )
        };
        assert_eq!(bucket("incremental", "0.5"), Some(0.0), "{text}");
        assert_eq!(bucket("incremental", "1"), Some(1.0), "{text}");
        assert_eq!(bucket("incremental", "60"), Some(2.0), "{text}");
        assert_eq!(bucket("full", "600"), Some(0.0), "{text}");
        assert_eq!(bucket("full", "+Inf"), Some(1.0), "{text}");
        assert_eq!(
            sample(
                &text,
                "plansync_run_duration_seconds_sum{kind=\"incremental\"}"
            ),
            Some(42.8)
        );
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn process_metrics_are_exposed() {
        let state = MetricsState::new(Utc::now(), Duration::from_secs(60));
        let text = state.render(Utc::now());
        for name in [
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_virtual_memory_bytes",
            "process_open_fds",
            "process_max_fds",
            "process_start_time_seconds",
        ] {
            assert!(sample(&text, name).is_some(), "no {name} in\n{text}");
        }
        assert!(sample(&text, "process_resident_memory_bytes") > Some(0.0));
        assert!(text.contains("# TYPE process_cpu_seconds_total counter"));
    }

    #[test]
    fn the_subscription_is_rendered_and_widens_health_while_subscribed() {
        let start = utc("2026-03-10T10:00:00Z");
        let mut state = MetricsState::new(start, Duration::from_secs(900));
        state.last_success = Some(utc("2026-03-10T10:05:00Z"));
        let mut s = StreamingMetrics::new(start, Duration::from_secs(3 * 3600));
        s.state = "subscribed".into();
        s.events.insert("UPDATE".into(), 4);
        s.events.insert("GAP_OVERFLOW".into(), 1);
        s.last_event_at = Some(utc("2026-03-10T10:04:58Z"));
        s.freshness_lag_seconds = Some(2.75);
        s.woken_cycles = 3;
        s.subscriptions = 1;
        state.streaming = Some(s);
        // 40 minutes after the last run: quiet, but subscribed, so healthy (the backstop).
        let now = utc("2026-03-10T10:45:00Z");
        let (ok, why) = state.health(now);
        assert!(ok, "{why}");
        assert!(
            why.contains("change events: subscribed for 2700 s"),
            "{why}"
        );
        let text = state.render(now);
        for (name, value) in [
            ("plansync_streaming_state{state=\"subscribed\"}", 1.0),
            ("plansync_streaming_state{state=\"down\"}", 0.0),
            ("plansync_streaming_subscribed", 1.0),
            (
                "plansync_streaming_events_total{change_type=\"UPDATE\"}",
                4.0,
            ),
            (
                "plansync_streaming_events_total{change_type=\"GAP_OVERFLOW\"}",
                1.0,
            ),
            (
                "plansync_streaming_last_event_timestamp_seconds",
                1773137098.0,
            ),
            ("plansync_streaming_freshness_lag_seconds", 2.75),
            ("plansync_streaming_woken_cycles_total", 3.0),
            ("plansync_streaming_subscriptions_total", 1.0),
            ("plansync_healthy", 1.0),
        ] {
            assert_eq!(sample(&text, name), Some(value), "{name} in\n{text}");
        }
        // Down: the normal window applies again, and the reason says why.
        if let Some(s) = state.streaming.as_mut() {
            s.state = "down".into();
            s.since = utc("2026-03-10T10:40:00Z");
            s.error = Some("403::Unknown client".into());
        }
        let (ok, why) = state.health(now);
        assert!(!ok, "{why}");
        assert!(
            why.contains("change events: down for 300 s: 403::Unknown client"),
            "{why}"
        );
        assert_eq!(
            sample(&state.render(now), "plansync_streaming_subscribed"),
            Some(0.0)
        );
    }

    #[test]
    fn openmetrics_is_the_same_metrics_with_an_eof() {
        let mut state = MetricsState::new(Utc::now(), Duration::from_secs(60));
        state.fields_written = 3;
        let text = state.render_openmetrics(Utc::now());
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert!(
            text.contains("# TYPE plansync_fields_written counter"),
            "{text}"
        );
        assert!(
            text.contains("\nplansync_fields_written_total 3\n"),
            "{text}"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        let mut state = MetricsState::new(Utc::now(), Duration::from_secs(60));
        state.rows_pulled.insert("a\"b\\c\nd".into(), 1);
        let text = state.render(Utc::now());
        assert!(
            text.contains("plansync_rows_pulled_total{object=\"a\\\"b\\\\c\\nd\"} 1"),
            "{text}"
        );
    }
}
