//! What the daemon knows about its runs, and the opt-in loopback listener that serves it:
//! Prometheus text at `/metrics` and `/healthz`. The HTTP handlers only read this shared
//! state, which the daemon updates after each run; they never touch the store.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, Utc};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::crm::ApiUsage;

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
        }
    }

    /// Whether a cycle succeeded recently enough, and a one-line reason.
    pub fn health(&self, now: DateTime<Utc>) -> (bool, String) {
        let window = self.healthy_within.as_secs();
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

    /// The Prometheus text exposition of every metric, ages taken at `now`.
    pub fn render(&self, now: DateTime<Utc>) -> String {
        let mut out = String::new();
        let secs = |d: chrono::Duration| d.num_milliseconds() as f64 / 1000.0;

        family(
            &mut out,
            "plansync_cursor_lag_seconds",
            "gauge",
            "Now minus the SystemModstamp of the object's pull cursor.",
        );
        for (object, at) in &self.cursors {
            let _ = writeln!(
                out,
                "plansync_cursor_lag_seconds{{object=\"{}\"}} {}",
                escape(object),
                secs(now - *at)
            );
        }
        family(
            &mut out,
            "plansync_rows_pulled_total",
            "counter",
            "Rows pulled from the CRM (created or changed), by object.",
        );
        by_object(&mut out, "plansync_rows_pulled_total", &self.rows_pulled);
        family(
            &mut out,
            "plansync_rows_deleted_total",
            "counter",
            "Rows received as deleted or removed by a full reconcile, by object.",
        );
        by_object(&mut out, "plansync_rows_deleted_total", &self.rows_deleted);
        family(
            &mut out,
            "plansync_fields_written_total",
            "counter",
            "Field values written to the CRM and accepted.",
        );
        let _ = writeln!(out, "plansync_fields_written_total {}", self.fields_written);
        family(
            &mut out,
            "plansync_records_written_total",
            "counter",
            "Records written to the CRM and accepted.",
        );
        let _ = writeln!(
            out,
            "plansync_records_written_total {}",
            self.records_written
        );
        family(
            &mut out,
            "plansync_write_failures_total",
            "counter",
            "Record writes the CRM refused, by object.",
        );
        by_object(
            &mut out,
            "plansync_write_failures_total",
            &self.write_failures,
        );
        family(
            &mut out,
            "plansync_api_calls_total",
            "counter",
            "HTTP requests sent to the CRM by runs, including retries and token requests.",
        );
        let _ = writeln!(out, "plansync_api_calls_total {}", self.api_calls);
        if let Some(usage) = self.api_usage {
            family(
                &mut out,
                "plansync_api_usage_used",
                "gauge",
                "The org's API calls in the rolling 24 hours, as the CRM last reported.",
            );
            let _ = writeln!(out, "plansync_api_usage_used {}", usage.used);
            family(
                &mut out,
                "plansync_api_usage_max",
                "gauge",
                "The org's 24-hour API allowance.",
            );
            let _ = writeln!(out, "plansync_api_usage_max {}", usage.max);
            family(
                &mut out,
                "plansync_api_remaining",
                "gauge",
                "API calls left in the org's rolling 24 hours.",
            );
            let _ = writeln!(
                out,
                "plansync_api_remaining {}",
                usage.max.saturating_sub(usage.used)
            );
        }
        family(
            &mut out,
            "plansync_outbox_depth",
            "gauge",
            "Writes queued for the CRM and not yet settled.",
        );
        let _ = writeln!(out, "plansync_outbox_depth {}", self.outbox_depth);
        family(
            &mut out,
            "plansync_outbox_oldest_age_seconds",
            "gauge",
            "Age of the oldest unsettled write (0 when none).",
        );
        let age = self.outbox_oldest.map(|at| secs(now - at)).unwrap_or(0.0);
        let _ = writeln!(out, "plansync_outbox_oldest_age_seconds {age}");
        family(
            &mut out,
            "plansync_last_success_timestamp_seconds",
            "gauge",
            "When a run last ended succeeded (unix seconds; 0 when never).",
        );
        let _ = writeln!(
            out,
            "plansync_last_success_timestamp_seconds {}",
            self.last_success.map(|t| t.timestamp()).unwrap_or(0)
        );
        family(
            &mut out,
            "plansync_runs_total",
            "counter",
            "Runs by kind and outcome (succeeded, partial, failed).",
        );
        for ((kind, outcome), n) in &self.runs {
            let _ = writeln!(
                out,
                "plansync_runs_total{{kind=\"{}\",outcome=\"{}\"}} {n}",
                escape(kind),
                escape(outcome)
            );
        }
        family(
            &mut out,
            "plansync_skipped_fires_total",
            "counter",
            "Scheduled fires skipped because a run was going or the daemon was backing off.",
        );
        for (kind, n) in &self.skipped_fires {
            let _ = writeln!(
                out,
                "plansync_skipped_fires_total{{kind=\"{}\"}} {n}",
                escape(kind)
            );
        }
        family(
            &mut out,
            "plansync_run_in_progress",
            "gauge",
            "1 while a run is going.",
        );
        let _ = writeln!(
            out,
            "plansync_run_in_progress {}",
            u8::from(self.running.is_some())
        );
        family(
            &mut out,
            "plansync_healthy",
            "gauge",
            "1 when a run succeeded within the health window (what /healthz answers).",
        );
        let _ = writeln!(out, "plansync_healthy {}", u8::from(self.health(now).0));
        out
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn by_object(out: &mut String, name: &str, values: &BTreeMap<String, u64>) {
    for (object, n) in values {
        let _ = writeln!(out, "{name}{{object=\"{}\"}} {n}", escape(object));
    }
}

/// A label value as the text format wants it.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The state the daemon updates and the listener reads.
pub type SharedMetrics = Arc<Mutex<MetricsState>>;

fn snapshot(shared: &SharedMetrics) -> MetricsState {
    shared.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

async fn metrics(State(shared): State<SharedMetrics>) -> impl IntoResponse {
    let text = snapshot(&shared).render(Utc::now());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
}

async fn healthz(State(shared): State<SharedMetrics>) -> impl IntoResponse {
    let (healthy, reason) = snapshot(&shared).health(Utc::now());
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{reason}\n"),
    )
}

/// The routes: `/metrics` and `/healthz`.
pub fn router(shared: SharedMetrics) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .with_state(shared)
}

/// Binds `addr` now (so a taken port fails the start) and serves until `shutdown`.
pub async fn serve(
    addr: SocketAddr,
    shared: SharedMetrics,
    shutdown: CancellationToken,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        let server = axum::serve(listener, router(shared))
            .with_graceful_shutdown(async move { shutdown.cancelled().await });
        if let Err(err) = server.await {
            tracing::warn!(error = %err, "the metrics listener stopped");
        }
    });
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
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
        for line in [
            "plansync_cursor_lag_seconds{object=\"Opportunity\"} 90",
            "plansync_rows_pulled_total{object=\"Opportunity\"} 42",
            "plansync_write_failures_total{object=\"Account_Plan__c\"} 2",
            "plansync_fields_written_total 17",
            "plansync_api_usage_used 120",
            "plansync_api_remaining 14880",
            "plansync_outbox_depth 3",
            "plansync_outbox_oldest_age_seconds 60",
            "plansync_last_success_timestamp_seconds 1773137370",
            "plansync_runs_total{kind=\"incremental\",outcome=\"succeeded\"} 5",
            "plansync_healthy 1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        // Every sample belongs to a declared family.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap();
            assert!(
                text.contains(&format!("# TYPE {name} ")),
                "{name} has no TYPE line"
            );
        }
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
