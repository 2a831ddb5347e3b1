//! `plansync snapshot`: takes the plan snapshots now (design.md §3.7): an incremental cycle
//! as of the date, then one Account_Plan_Snapshot__c per rolled-up plan, upserted on
//! `{planId}:{date}` so running it twice for a date never makes duplicates.

use std::path::PathBuf;

use chrono::{NaiveDate, Utc};

use crate::config;
use crate::domain::today_in;

use super::flags::CycleFlags;
use super::resync::Reporter;
use super::sync::{engine_from_config, DEFAULT_CONFIG};
use super::CliError;

/// Options of `plansync snapshot`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = super::help::EXIT_CYCLE)]
#[command(mut_arg("dry_run", |a| a.help(
    "Compute the snapshots, but write nothing to the CRM. Example: plansync snapshot --dry-run"
)))]
pub struct SnapshotArgs {
    /// The configuration file (TOML), layered with PLANSYNC__SECTION__KEY variables.
    /// Example: --config ./plansync.toml
    #[arg(long, value_name = "PATH", default_value = DEFAULT_CONFIG)]
    pub config: PathBuf,

    /// The snapshot date (default: today in the org's time zone); the metrics are evaluated
    /// as of it and the key is `{planId}:{date}`. Example: plansync snapshot --date 2026-09-30
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub date: Option<NaiveDate>,

    #[command(flatten)]
    pub flags: CycleFlags,
}

pub async fn run(args: SnapshotArgs) -> Result<(), CliError> {
    let config = config::load(&args.config)?;
    let date = args
        .date
        .unwrap_or_else(|| today_in(config.org.timezone, Utc::now()));
    let mut engine = engine_from_config(&config)?;
    let progress = Reporter::attach(&mut engine);
    let result = engine.snapshot(date, args.flags.dry_run).await;
    progress.finish();
    match result {
        Ok(report) => args.flags.print_report(&report),
        Err(e) => Err(super::mapping::explain_failure(e, &config, engine.crm()).await),
    }
}
