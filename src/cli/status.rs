//! `plansync status`: what the daemon did and what needs an admin, read from the store while
//! the daemon runs: the last runs, the pull cursors, the org's API usage, the outbox and the
//! findings of the last recompute.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use crate::config::{self, Config};
use crate::store::{OutboxRow, RunRow, Store};
use crate::sync::{Names, ObjectKind, RunName};

use super::sync::{sync_settings, DEFAULT_CONFIG};
use super::table::Table;
use super::CliError;

/// Options of `plansync status`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = super::help::EXIT_ADMIN)]
pub struct StatusArgs {
    /// The configuration file (TOML), layered with PLANSYNC__SECTION__KEY variables.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_CONFIG)]
    pub config: PathBuf,

    /// Print one JSON object instead of the text sections: {"store" (its path), "now",
    /// "currency_mode", "runs": [{"id", "kind", "started_at", "finished_at", "duration_ms",
    /// "outcome", "plans_recomputed", "links_changed", "dry_run", "records_written",
    /// "fields_written", "records_would_write", "fields_would_write", "write_failures"
    /// (count), "api_calls", "currency_mode", "stopped_early", "error"}] newest first,
    /// "cursors": {label: {"object", "system_modstamp", "id", "lag_seconds"}}, "api_usage":
    /// {"used_of_max", "percent", "run_id"} or null, "outbox": {"unsettled",
    /// "oldest_queued_at", "pending": [write], "failed": [write]}, "findings": [{"kind",
    /// "subject", "message"}], "streaming": {"state" (disabled, connecting, subscribed, down,
    /// unsupported), "since", "error", "channels": [..], "last_event_at", "last_commit_at",
    /// "freshness_lag_ms", "woken_cycles", "updated_at"} or null before a daemon subscribed};
    /// a write is as in `plansync writes list --json`; times are
    /// RFC 3339 UTC. Example: plansync status --json
    #[arg(long)]
    pub json: bool,

    /// How many of the latest runs to show. Example: plansync status --runs 20
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub runs: usize,
}

/// The configuration and the existing store it names. Admin commands never create a store:
/// a missing file means no cycle ran yet (or `[store] path` points elsewhere).
pub fn config_and_store(path: &Path) -> Result<(Config, Store), CliError> {
    let config = config::load(path)?;
    let store_path = &config.store.path;
    if !store_path.exists() {
        return Err(CliError::Io {
            what: format!(
                "there is no store at {} (from [store] path); run `plansync sync --config {}` first",
                store_path.display(),
                path.display()
            ),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        });
    }
    let store = Store::open(store_path)?;
    Ok((config, store))
}

/// The object names in pull order, as configured.
pub fn names_of(config: &Config) -> Names {
    sync_settings(config).names
}

pub async fn run(args: StatusArgs) -> Result<(), CliError> {
    let (config, store) = config_and_store(&args.config)?;
    let report = collect(&store, &names_of(&config), args.runs, Utc::now())?;
    if args.json {
        println!("{}", pretty(&report));
    } else {
        print!("{}", render(&report));
    }
    Ok(())
}

/// JSON text of a value (never fails for values built from strings and numbers).
pub fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A duration in words: `3h 12m`, `45s`.
pub fn human_duration(d: chrono::Duration) -> String {
    let s = d.num_seconds().max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {}s", s / 60, s % 60),
        3600..86400 => format!("{}h {}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d {}h", s / 86400, (s % 86400) / 3600),
    }
}

fn run_json(run: &RunRow) -> Value {
    let summary = run.summary.clone().unwrap_or(Value::Null);
    let duration_ms = run
        .finished_at
        .map(|f| (f - run.started_at).num_milliseconds());
    let dry_run = summary
        .get("dry_run")
        .and_then(Value::as_bool)
        .unwrap_or_else(|| RunName::parse(&run.kind).is_some_and(|n| n.dry_run));
    // (written, would write) of `records` or `fields`. A dry run writes nothing; runs logged
    // before the run log kept dry runs' counts apart had them as `*_written`.
    let counts = |what: &str| -> (Value, Value) {
        let written = summary.get(format!("{what}_written").as_str()).cloned();
        let would = summary.get(format!("{what}_would_write").as_str()).cloned();
        match (dry_run, would) {
            (true, None) => (json!(0), written.unwrap_or(Value::Null)),
            (_, would) => (written.unwrap_or(Value::Null), would.unwrap_or(json!(0))),
        }
    };
    let (records_written, records_would_write) = counts("records");
    let (fields_written, fields_would_write) = counts("fields");
    json!({
        "id": run.id,
        "kind": run.kind,
        "started_at": time(run.started_at),
        "finished_at": run.finished_at.map(time),
        "duration_ms": duration_ms,
        "outcome": run.outcome,
        "plans_recomputed": summary.get("plans_recomputed"),
        "links_changed": summary.get("links_changed"),
        "dry_run": dry_run,
        "records_written": records_written,
        "fields_written": fields_written,
        "records_would_write": records_would_write,
        "fields_would_write": fields_would_write,
        "write_failures": summary.get("write_failures").and_then(Value::as_array).map(Vec::len),
        "api_calls": summary.get("api_calls"),
        "currency_mode": summary.get("currency_mode"),
        "stopped_early": summary.get("stopped_early"),
        "error": summary.get("error"),
    })
}

/// One outbox row as JSON (shared with `plansync writes`).
pub fn write_json(row: &OutboxRow) -> Value {
    json!({
        "id": row.id,
        "object": row.object,
        "record_id": row.record_id,
        "status": row.status.as_str(),
        "fields": Value::Object(row.fields.clone()),
        "reason": row.reason,
        "status_code": row.last_error_code,
        "message": row.last_error_message,
        "permanent": row.permanent,
        "attempts": row.attempts,
        "next_attempt_at": row.next_attempt_at.map(time),
        "created_at": time(row.created_at),
        "updated_at": time(row.updated_at),
    })
}

/// Everything `status` shows, as one JSON object.
pub fn collect(
    store: &Store,
    names: &Names,
    runs: usize,
    now: DateTime<Utc>,
) -> Result<Value, CliError> {
    let recent = store.recent_runs(runs)?;
    let mut cursors = Map::new();
    for kind in ObjectKind::ALL {
        let object = names.object(kind);
        let cursor = store.cursor(object)?;
        cursors.insert(
            kind.label().to_string(),
            json!({
                "object": object,
                "system_modstamp": cursor.as_ref().map(|c| time(c.system_modstamp)),
                "id": cursor.as_ref().map(|c| c.id.clone()),
                "lag_seconds": cursor.as_ref().map(|c| (now - c.system_modstamp).num_seconds()),
            }),
        );
    }
    // The last run that reported the org's usage.
    let api_usage = recent
        .iter()
        .find_map(|r| {
            r.summary
                .as_ref()
                .and_then(|s| s.get("api_usage"))
                .and_then(Value::as_str)
                .map(|u| (u.to_string(), r.id))
        })
        .map(|(usage, run)| {
            let percent = usage.split_once('/').and_then(|(u, m)| {
                let (u, m) = (u.parse::<u64>().ok()?, m.parse::<u64>().ok()?);
                (m > 0).then(|| u.saturating_mul(100) / m)
            });
            json!({ "used_of_max": usage, "percent": percent, "run_id": run })
        });
    let (depth, oldest) = store.outbox_depth()?;
    let pending: Vec<Value> = store
        .pending_writes(now, 50)?
        .iter()
        .map(write_json)
        .collect();
    let failed: Vec<Value> = store.failed_writes()?.iter().map(write_json).collect();
    let findings: Vec<Value> = store
        .findings()?
        .into_iter()
        .map(|f| json!({ "kind": f.kind, "subject": f.subject, "message": f.message }))
        .collect();
    Ok(json!({
        "store": store.path().display().to_string(),
        "now": time(now),
        // The currency mode the last cycle used (`auto` decides it per cycle).
        "currency_mode": store.meta(crate::sync::CURRENCY_MODE)?,
        "runs": recent.iter().map(run_json).collect::<Vec<_>>(),
        "cursors": cursors,
        "api_usage": api_usage,
        "outbox": {
            "unsettled": depth,
            "oldest_queued_at": oldest.map(time),
            "pending": pending,
            "failed": failed,
        },
        "findings": findings,
        "streaming": store.streaming_status()?.map(|s| json!({
            "state": s.state,
            "since": time(s.since),
            "error": s.error,
            "channels": s.channels.split(',').filter(|c| !c.is_empty()).collect::<Vec<_>>(),
            "last_event_at": s.last_event_at.map(time),
            "last_commit_at": s.last_commit_at.map(time),
            "freshness_lag_ms": s.freshness_lag_ms,
            "woken_cycles": s.woken_cycles,
            "updated_at": time(s.updated_at),
        })),
    }))
}

fn show(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The text sections of `status`.
pub fn render(r: &Value) -> String {
    let mut out = String::new();
    out.push_str(&format!("Store: {}\n", show(&r["store"])));
    out.push_str(&format!(
        "Currency mode of the last cycle: {}\n\n",
        show(&r["currency_mode"])
    ));

    out.push_str("Recent runs\n");
    let runs = r["runs"].as_array().cloned().unwrap_or_default();
    if runs.is_empty() {
        out.push_str("  none yet: run `plansync sync` or start the daemon\n");
    } else {
        let mut t = Table::new(
            &[
                "id", "kind", "started", "duration", "outcome", "plans", "links", "records",
                "fields", "failures",
            ],
            &[
                "id", "duration", "plans", "links", "records", "fields", "failures",
            ],
        );
        for run in &runs {
            let duration = run["duration_ms"]
                .as_i64()
                .map(|ms| format!("{:.1}s", ms as f64 / 1000.0))
                .unwrap_or_else(|| "running".into());
            t.push(vec![
                show(&run["id"]),
                show(&run["kind"]),
                show(&run["started_at"]),
                duration,
                show(&run["outcome"]),
                show(&run["plans_recomputed"]),
                show(&run["links_changed"]),
                show(&run["records_written"]),
                show(&run["fields_written"]),
                show(&run["write_failures"]),
            ]);
        }
        out.push_str(&indent(&t.render()));
        for run in &runs {
            if run["dry_run"] == true && run["outcome"] == "succeeded" {
                out.push_str(&format!(
                    "  run {} was a dry run: would write {} fields on {} records, wrote nothing\n",
                    show(&run["id"]),
                    show(&run["fields_would_write"]),
                    show(&run["records_would_write"])
                ));
            }
            if let Some(e) = run["error"].as_str() {
                out.push_str(&format!("  run {} failed: {e}\n", show(&run["id"])));
            }
            if let Some(why) = run["stopped_early"].as_str() {
                out.push_str(&format!(
                    "  run {} stopped early: {why}\n",
                    show(&run["id"])
                ));
            }
        }
    }

    out.push_str("\nCursors (last record pulled per object)\n");
    let mut t = Table::new(&["object", "SystemModstamp", "Id", "lag"], &["lag"]);
    if let Some(cursors) = r["cursors"].as_object() {
        for c in cursors.values() {
            t.push(vec![
                show(&c["object"]),
                show(&c["system_modstamp"]),
                show(&c["id"]),
                c["lag_seconds"]
                    .as_i64()
                    .map(|s| human_duration(chrono::Duration::seconds(s)))
                    .unwrap_or_else(|| "never pulled".into()),
            ]);
        }
    }
    out.push_str(&indent(&t.render()));

    out.push_str("\nAPI usage\n");
    match r["api_usage"].as_object() {
        Some(u) => out.push_str(&format!(
            "  {} calls of the org's daily allowance ({}%), as of run {}\n",
            show(&u["used_of_max"]),
            show(&u["percent"]),
            show(&u["run_id"])
        )),
        None => out.push_str("  unknown: no run has reported it yet\n"),
    }

    out.push_str("\nChange events (as the daemon last recorded them)\n");
    match r["streaming"].as_object() {
        Some(st) => {
            out.push_str(&format!(
                "  subscription {} since {}{}\n",
                show(&st["state"]),
                show(&st["since"]),
                st["error"]
                    .as_str()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            ));
            out.push_str(&format!(
                "  last event received {} (committed {}); freshness lag {}; {} cycle(s) woken\n",
                show(&st["last_event_at"]),
                show(&st["last_commit_at"]),
                st["freshness_lag_ms"]
                    .as_i64()
                    .map(|ms| format!("{:.1}s", ms as f64 / 1000.0))
                    .unwrap_or_else(|| "-".into()),
                show(&st["woken_cycles"]),
            ));
        }
        None => out
            .push_str("  none: no daemon has subscribed (see [streaming] in the configuration)\n"),
    }

    let outbox = &r["outbox"];
    out.push_str(&format!(
        "\nOutbox: {} write(s) not settled{}\n",
        show(&outbox["unsettled"]),
        outbox["oldest_queued_at"]
            .as_str()
            .map(|t| format!(", oldest queued {t}"))
            .unwrap_or_default()
    ));
    for w in outbox["pending"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "  pending #{} {} {} ({}), {} attempt(s){}\n",
            show(&w["id"]),
            show(&w["object"]),
            show(&w["record_id"]),
            show(&w["status"]),
            show(&w["attempts"]),
            w["status_code"]
                .as_str()
                .map(|c| format!(", last error {c}: {}", show(&w["message"])))
                .unwrap_or_default()
        ));
    }
    let failed = outbox["failed"].as_array().cloned().unwrap_or_default();
    out.push_str(&format!("\nFailed writes: {}\n", failed.len()));
    for w in &failed {
        let kind = if w["permanent"].as_bool() == Some(true) {
            "refused"
        } else {
            "will retry"
        };
        out.push_str(&format!(
            "  #{} {} {} {kind}: {}: {}\n",
            show(&w["id"]),
            show(&w["object"]),
            show(&w["record_id"]),
            show(&w["status_code"]),
            show(&w["message"])
        ));
    }
    if !failed.is_empty() {
        out.push_str("  (see `plansync writes list`; retry or ignore with `plansync writes retry|ignore ID`)\n");
    }

    let findings = r["findings"].as_array().cloned().unwrap_or_default();
    out.push_str(&format!(
        "\nFindings of the last recompute: {}\n",
        findings.len()
    ));
    for f in &findings {
        out.push_str(&format!(
            "  {}: {}\n",
            show(&f["kind"]),
            show(&f["message"])
        ));
    }
    out
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_in_the_largest_sensible_units() {
        let cases = [
            (0, "0s"),
            (59, "59s"),
            (61, "1m 1s"),
            (3600, "1h 0m"),
            (3 * 3600 + 12 * 60, "3h 12m"),
            (90000, "1d 1h"),
            (-5, "0s"),
        ];
        for (s, want) in cases {
            assert_eq!(human_duration(chrono::Duration::seconds(s)), want, "{s}");
        }
    }
}
