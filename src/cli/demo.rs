//! `plansync demo`: the whole job on the embedded emulator, with no setup. It starts the
//! emulator in-process with the `demo` org, runs a full cycle into a temporary store, prints
//! the plans' numbers, then runs a second cycle to show that nothing changed means nothing is
//! written.

use std::time::Duration;

use chrono::NaiveDate;
use url::Url;

use crate::crm::{AuthConfig, CrmClient, CrmConfig};
use crate::emulator::Emulator;
use crate::store::Store;
use crate::sync::{CycleOptions, CycleReport, Names, SyncEngine, SyncSettings};

use super::plans::plan_table;
use super::CliError;

/// Options of `plansync demo`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = super::help::EXIT_SERVER)]
pub struct DemoArgs {
    /// Volume of the generated org: 1 is the demo org, N multiplies it. Example: --scale 10
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub scale: u32,

    /// Evaluate date-relative rules (activities, win-rate window) as of this date instead of
    /// today. Example: --as-of 2026-08-15
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub as_of: Option<NaiveDate>,
}

pub async fn run(args: DemoArgs) -> Result<(), CliError> {
    let emulator = Emulator::builder()
        .seed("demo")
        .scale(args.scale.max(1))
        .start()
        .await
        .map_err(|e| CliError::Emulator(crate::error::chain(&e)))?;
    println!(
        "Started the CRM emulator at {} with the demo org.",
        emulator.base_url()
    );

    let dir = tempfile::Builder::new()
        .prefix("plansync-demo-")
        .tempdir()
        .map_err(|source| CliError::Io {
            what: "cannot create a temporary directory for the demo store".into(),
            source,
        })?;
    let store_path = dir.path().join("plansync.db");
    let store = Store::open(&store_path)?;
    let login_url = Url::parse(emulator.base_url())
        .map_err(|e| CliError::Emulator(format!("bad emulator URL: {e}")))?;
    let crm = CrmClient::new(CrmConfig {
        login_url,
        instance_url: None,
        api_version: "62.0".into(),
        auth: AuthConfig::ClientCredentials {
            client_id: emulator.client_id().to_string(),
            client_secret: emulator.client_secret().to_string().into(),
        },
        timeout: Duration::from_secs(30),
        max_retries: 2,
    })?;
    let mut engine = SyncEngine::new(crm, store, SyncSettings::default());

    println!(
        "Running a full sync cycle into {} ...",
        store_path.display()
    );
    let cycle = |full| CycleOptions {
        full,
        dry_run: false,
        as_of: args.as_of,
    };
    let first = engine.run_cycle(cycle(true)).await?;
    print_summary("First cycle", &first);
    println!();
    println!("{}", plan_table(engine.store(), &Names::default())?);
    println!();

    let second = engine.run_cycle(cycle(false)).await?;
    print_summary("Second cycle", &second);
    if second.fields_written == 0 && second.write_failures.is_empty() {
        println!("Nothing changed in the CRM, so the second cycle wrote nothing.");
    }
    emulator.shutdown().await;
    Ok(())
}

fn print_summary(title: &str, report: &CycleReport) {
    let pulled: u64 = report.objects.values().map(|s| s.pulled).sum();
    println!(
        "{title}: pulled {pulled} records, recomputed {} plans, changed {} links, wrote {} fields on {} records in {} API calls ({} ms).",
        report.plans_recomputed,
        report.links_changed,
        report.fields_written,
        report.records_written,
        report.api_calls,
        report.duration_ms
    );
    for failure in &report.write_failures {
        println!(
            "  refused: {} {}: {}: {}",
            failure.object, failure.record_id, failure.status_code, failure.message
        );
    }
}
