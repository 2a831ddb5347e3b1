//! `plansync snapshot`: takes the plan snapshots now (design.md §3.7): an incremental cycle
//! as of the date, then one Account_Plan_Snapshot__c per rolled-up plan, upserted on
//! `{planId}:{date}` so running it twice for a date never makes duplicates.

use std::io::IsTerminal;
use std::path::PathBuf;

use chrono::{NaiveDate, Utc};

use crate::config;
use crate::domain::today_in;

use super::resync::{print_report, Reporter};
use super::sync::{engine_from_config, DEFAULT_CONFIG};
use super::CliError;

/// Options of `plansync snapshot`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = super::help::EXIT_CYCLE)]
pub struct SnapshotArgs {
    /// The configuration file (TOML), layered with PLANSYNC__SECTION__KEY variables.
    /// Example: --config ./plansync.toml
    #[arg(long, value_name = "PATH", default_value = DEFAULT_CONFIG)]
    pub config: PathBuf,

    /// The snapshot date (default: today in the org's time zone); the metrics are evaluated
    /// as of it and the key is `{planId}:{date}`. Example: plansync snapshot --date 2026-09-30
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub date: Option<NaiveDate>,

    /// Compute the snapshots, but write nothing to the CRM. Example: plansync snapshot --dry-run
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
    /// "old", "new"}])}.
    /// Example: --json
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: SnapshotArgs) -> Result<(), CliError> {
    let config = config::load(&args.config)?;
    let date = args
        .date
        .unwrap_or_else(|| today_in(config.org.timezone, Utc::now()));
    let mut engine = engine_from_config(&config)?;
    let progress = Reporter::new(std::io::stderr().is_terminal());
    let listener = progress.clone();
    engine.on_progress(move |p| listener.report(p));
    let result = engine.snapshot(date, args.dry_run).await;
    progress.finish();
    match result {
        Ok(report) => print_report(&report, args.json),
        Err(e) => Err(super::mapping::explain_failure(e, &config, engine.crm()).await),
    }
}
