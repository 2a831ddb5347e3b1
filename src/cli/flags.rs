//! The flags the commands that run a cycle share (`sync`, `resync`, `snapshot`): what to
//! write and how to report it, and the date the rules are evaluated at.

use chrono::NaiveDate;

use crate::sync::CycleReport;

use super::CliError;

/// `--dry-run` and `--json`.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct CycleFlags {
    /// Pull and compute, but write nothing to the CRM; print each change it would make
    /// (record, field, old -> new). Example: --dry-run
    #[arg(long)]
    pub dry_run: bool,

    /// Print one JSON object with what the run did instead of the text summary: {"kind"
    /// (incremental, full, dry-run, resync, snapshot ...), "full", "dry_run", "today" (the
    /// date the rules used), "currency_mode", "objects": {label: {"pulled", "deleted",
    /// "pages"}}, "plans_recomputed", "links_changed", "fields_written", "records_written",
    /// "fields_would_write", "records_would_write" (dry runs), "snapshots", "write_failures":
    /// [{"object", "record_id", "status_code", "message", "permanent"}], "findings": [text],
    /// "api_calls", "api_usage" ("used/max" or null), "duration_ms", "stopped_early" (why, or
    /// null), "changes" (dry runs only: [{"object", "record_id", "record_name", "field",
    /// "old", "new"}])}. Example: --json
    #[arg(long)]
    pub json: bool,
}

/// `--as-of`.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct AsOf {
    /// Evaluate date-relative rules (activities, win-rate window) as of this date instead of
    /// today in the org's time zone. Example: --as-of 2026-08-15
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub as_of: Option<NaiveDate>,
}

impl CycleFlags {
    /// Prints a run's report as text or JSON; a run that stopped early (the API budget, a
    /// shutdown) is an error, exit status 3.
    pub fn print_report(&self, report: &CycleReport) -> Result<(), CliError> {
        if self.json {
            let text = serde_json::to_string_pretty(report).map_err(|e| CliError::Io {
                what: "cannot render the report as JSON".into(),
                source: std::io::Error::other(e),
            })?;
            println!("{text}");
        } else {
            println!("{report}");
        }
        match &report.stopped_early {
            Some(why) => Err(CliError::StoppedEarly(why.clone())),
            None => Ok(()),
        }
    }
}
