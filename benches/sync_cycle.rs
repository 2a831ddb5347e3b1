//! Full plansync sync cycles through the library, wired from a configuration exactly as
//! `plansync sync` wires them (`cli::sync::engine_from_config`), against the emulator with the
//! `demo` seed, into a SQLite file: rows pulled per second, the time of a full cycle split into
//! pull, compute and write, and of the incremental cycles that follow, with their API calls.
//!
//! Default: demo scale 1 (the demo org) and scale 200. `PLANSYNC_BENCH_SCALE=N` multiplies the
//! larger scale.
#![allow(
    clippy::disallowed_methods,
    reason = "a benchmark times itself by the clock"
)]

mod common;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{banner, mib, peak_rss_kib, rate, reset_peak_rss, scale, scaled, secs, BenchResult};
use common::{rss_kib, Table};
use plansync::cli::sync::engine_from_config;
use plansync::config::{AuthFlow, Config};
use plansync::emulator::{Emulator, RunningEmulator};
use plansync::sync::{CycleOptions, CycleReport, Progress, SyncEngine};

const LARGE_SCALE: u64 = 200;

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("sync_cycle failed: {e}");
        std::process::exit(1);
    }
}

/// When the phases of one cycle ended, from the engine's progress reports.
#[derive(Default)]
struct Phases {
    last_pulled: Option<Instant>,
    first_wrote: Option<Instant>,
}

struct Measured {
    label: String,
    report: CycleReport,
    wall: Duration,
    pull: Duration,
    compute: Duration,
    write: Duration,
}

fn config_for(
    emulator: &RunningEmulator,
    dir: &Path,
    lookback_seconds: u64,
) -> BenchResult<Config> {
    let secret = dir.join("client_secret");
    std::fs::write(&secret, emulator.client_secret())?;
    let mut config = Config::default();
    config.crm.login_url = emulator.base_url().to_string();
    config.crm.auth.flow = AuthFlow::ClientCredentials;
    config.crm.auth.client_id = Some(emulator.client_id().to_string());
    config.crm.auth.client_secret_file = Some(secret);
    config.store.path = dir.join("plansync.db");
    config.sync.lookback_seconds = lookback_seconds;
    Ok(config)
}

async fn cycle(engine: &mut SyncEngine, label: &str, full: bool) -> BenchResult<Measured> {
    let phases = Arc::new(Mutex::new(Phases::default()));
    let sink = phases.clone();
    engine.on_progress(move |p| {
        let now = Instant::now();
        let mut ph = sink.lock().unwrap_or_else(|e| e.into_inner());
        match p {
            Progress::Pulled { .. } => ph.last_pulled = Some(now),
            Progress::Wrote { .. } => {
                ph.first_wrote.get_or_insert(now);
            }
        }
    });
    let started = Instant::now();
    let report = engine
        .run_cycle(CycleOptions {
            full,
            dry_run: false,
            as_of: None,
        })
        .await?;
    let ended = Instant::now();
    let ph = phases.lock().unwrap_or_else(|e| e.into_inner());
    let pulled_at = ph.last_pulled.unwrap_or(started);
    // Without a write batch the compute step runs to the end of the cycle.
    let wrote_from = ph.first_wrote.unwrap_or(ended).max(pulled_at);
    Ok(Measured {
        label: label.to_string(),
        wall: ended - started,
        pull: pulled_at - started,
        compute: wrote_from - pulled_at,
        write: ended - wrote_from,
        report,
    })
}

async fn one_scale(demo_scale: u32, table: &mut Table) -> BenchResult {
    reset_peak_rss();
    let t = Instant::now();
    let emulator = Emulator::builder()
        .seed("demo")
        .scale(demo_scale)
        .start()
        .await?;
    let seed_time = t.elapsed();
    let rss_emulator = rss_kib();
    let dir = tempfile::Builder::new()
        .prefix("plansync-bench-")
        .tempdir()?;

    let mut measured = Vec::new();
    {
        let config = config_for(&emulator, dir.path(), 600)?;
        let mut engine = engine_from_config(&config)?;
        measured.push(cycle(&mut engine, "full (first run)", true).await?);
        measured.push(cycle(&mut engine, "incremental, lookback 600s", false).await?);
    }
    {
        // The same store with no lookback: what a cycle costs when nothing changed at all.
        let config = config_for(&emulator, dir.path(), 0)?;
        let mut engine = engine_from_config(&config)?;
        measured.push(cycle(&mut engine, "incremental, lookback 0s", false).await?);
    }
    let peak = peak_rss_kib();
    let db_size = std::fs::metadata(dir.path().join("plansync.db")).map_or(0, |m| m.len());
    emulator.shutdown().await;

    println!(
        "   scale {demo_scale}: emulator seeded in {} (RSS {}); store file {:.1} MiB; peak RSS {}",
        secs(seed_time),
        mib(rss_emulator),
        db_size as f64 / (1024.0 * 1024.0),
        mib(peak)
    );
    for m in measured {
        let r = &m.report;
        let pulled: u64 = r.objects.values().map(|s| s.pulled + s.deleted).sum();
        let pages: u64 = r.objects.values().map(|s| s.pages).sum();
        table.row(vec![
            demo_scale.to_string(),
            m.label,
            pulled.to_string(),
            pages.to_string(),
            rate(pulled, m.pull),
            secs(m.pull),
            secs(m.compute),
            secs(m.write),
            secs(m.wall),
            r.plans_recomputed.to_string(),
            format!("{}/{}", r.records_written, r.fields_written),
            r.api_calls.to_string(),
        ]);
        if let Some(why) = &r.stopped_early {
            println!("   note: the cycle stopped early: {why}");
        }
        if !r.write_failures.is_empty() {
            println!("   note: {} records refused", r.write_failures.len());
        }
    }
    Ok(())
}

async fn run() -> BenchResult {
    if !common::selected("sync_cycle") {
        return Ok(());
    }
    let large = u32::try_from(scaled(LARGE_SCALE, scale()?))?;
    let mut scales = vec![1u32];
    if large > 1 {
        scales.push(large);
    }
    banner(
        "sync_cycle",
        "plansync cycles (engine_from_config, SQLite file store) against the emulator",
        &[
            ("seed", format!("demo at scales {scales:?} (200 opportunities, 12 plans, 30 accounts, 60 contacts, 150 tasks, 60 events per unit)")),
            ("settings", "the configuration defaults (batch_size 200, lookback 600 s), client credentials over HTTP".into()),
            ("columns", "pull = cycle start to the last stored page; compute = to the first write batch; write = the rest".into()),
        ],
    );
    let mut table = Table::new(&[
        "scale",
        "cycle",
        "rows pulled",
        "pages",
        "rows/s (pull)",
        "pull",
        "compute",
        "write",
        "cycle time",
        "plans",
        "recs/fields written",
        "API calls",
    ]);
    for s in scales {
        one_scale(s, &mut table).await?;
    }
    println!();
    table.print();
    Ok(())
}
