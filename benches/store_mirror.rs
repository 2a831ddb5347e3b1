//! The SQLite mirror as a cycle uses it: `Store::apply_page` throughput for 2000-row pages
//! of opportunities (first as inserts, then as updates of stored rows), and the load of the
//! whole mirror with `live_records` and `live_ids`, which the compute step does every cycle.
//!
//! Default: 1,000,000 opportunities in a file store (WAL, synchronous=NORMAL).
//! `PLANSYNC_BENCH_SCALE=N` multiplies the row count.
#![allow(
    clippy::disallowed_methods,
    reason = "a benchmark times itself by the clock"
)]

mod common;

use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use common::{banner, mib, peak_rss_kib, rate, reset_peak_rss, rss_kib, scale, scaled, secs};
use common::{BenchResult, Table};
use plansync::metadata::id;
use plansync::store::{Cursor, MirrorRecord, Store};
use serde_json::{json, Map, Number, Value};

const BASE_ROWS: u64 = 1_000_000;
const PAGE: usize = 2000;
/// Rows re-applied as updates (existing Ids, newer SystemModstamp).
const UPDATE_ROWS: usize = 100_000;
const OBJECT: &str = "Opportunity";

fn stamp(base: DateTime<Utc>, i: usize) -> DateTime<Utc> {
    base + chrono::Duration::milliseconds(i as i64)
}

/// One opportunity as the pull stores it: the fields the sync selects.
fn record(i: usize, modstamp: DateTime<Utc>) -> MirrorRecord {
    let id = id::make("006", "5e0", i as u64 + 1);
    let amount = format!("{}.{:02}", 1_000 + (i * 7919) % 500_000, i % 100)
        .parse::<Number>()
        .map_or(Value::Null, Value::Number);
    let fields = json!({
        "Id": id,
        "SystemModstamp": modstamp.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string(),
        "IsDeleted": false,
        "Name": format!("Opportunity {i}"),
        "AccountId": id::make("001", "5e0", (i % 20_000) as u64 + 1),
        "Amount": amount,
        "CloseDate": format!("2026-{:02}-{:02}", 1 + i % 12, 1 + i % 28),
        "StageName": "Prospecting",
        "IsClosed": false,
        "IsWon": false,
        "Probability": 10,
        "ForecastCategoryName": "Pipeline",
        "Account_Plan__c": if i.is_multiple_of(3) { Value::from(id::make("a01", "5e0", (i % 10_000) as u64 + 1)) } else { Value::Null },
        "Plan_Link_Locked__c": false,
    });
    let fields = match fields {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    MirrorRecord {
        id,
        system_modstamp: modstamp,
        is_deleted: false,
        fields,
    }
}

struct Pass {
    rows: usize,
    apply: Duration,
    build: Duration,
    pages: Vec<Duration>,
}

/// Applies rows `ids` (in pages of 2000) stamped from `base`.
fn apply_all(
    store: &mut Store,
    ids: impl Iterator<Item = usize>,
    base: DateTime<Utc>,
) -> BenchResult<Pass> {
    let ids: Vec<usize> = ids.collect();
    let mut pass = Pass {
        rows: 0,
        apply: Duration::ZERO,
        build: Duration::ZERO,
        pages: Vec::new(),
    };
    for (p, chunk) in ids.chunks(PAGE).enumerate() {
        let t = Instant::now();
        let records: Vec<MirrorRecord> = chunk
            .iter()
            .enumerate()
            .map(|(k, &i)| record(i, stamp(base, p * PAGE + k)))
            .collect();
        pass.build += t.elapsed();
        let cursor = records.last().map(|r| Cursor {
            system_modstamp: r.system_modstamp,
            id: r.id.clone(),
        });
        let t = Instant::now();
        store.apply_page(OBJECT, &records, cursor.as_ref())?;
        let d = t.elapsed();
        pass.apply += d;
        pass.pages.push(d);
        pass.rows += records.len();
    }
    Ok(pass)
}

fn main() {
    if let Err(e) = run() {
        eprintln!("store_mirror failed: {e}");
        std::process::exit(1);
    }
}

fn page_row(t: &mut Table, label: &str, pass: &Pass) {
    let n = pass.pages.len();
    let pick = |i: usize| pass.pages.get(i).copied().unwrap_or_default();
    t.row(vec![
        label.into(),
        pass.rows.to_string(),
        rate(pass.rows as u64, pass.apply),
        secs(pass.apply),
        secs(pick(0)),
        secs(pick(n / 2)),
        secs(pick(n.saturating_sub(1))),
        secs(pass.build),
    ]);
}

fn run() -> BenchResult {
    if !common::selected("store_mirror") {
        return Ok(());
    }
    let rows = usize::try_from(scaled(BASE_ROWS, scale()?))?;
    let updates = UPDATE_ROWS.min(rows);
    banner(
        "store_mirror",
        "SQLite mirror: apply_page (2000-row pages) and whole-mirror loads",
        &[
            (
                "rows",
                format!("{rows} opportunities (14 fields each, as the sync selects)"),
            ),
            (
                "updates",
                format!("{updates} of them re-applied with a newer SystemModstamp"),
            ),
            (
                "store",
                "a file (WAL, synchronous=NORMAL), as `plansync sync` opens it".into(),
            ),
        ],
    );
    let dir = tempfile::Builder::new()
        .prefix("plansync-bench-")
        .tempdir()?;
    let path = dir.path().join("plansync.db");
    let mut store = Store::open(&path)?;
    let base = Utc
        .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .ok_or("bad base time")?;

    let inserted = apply_all(&mut store, 0..rows, base)?;
    // Updates: every (rows/updates)-th row, stamped after the inserts.
    let step = (rows / updates.max(1)).max(1);
    let later = stamp(base, rows + 1);
    let updated = apply_all(&mut store, (0..rows).step_by(step).take(updates), later)?;

    println!();
    let mut t = Table::new(&[
        "apply_page",
        "rows",
        "rows/s",
        "total",
        "first page",
        "middle page",
        "last page",
        "building records (not in total)",
    ]);
    page_row(&mut t, "insert", &inserted);
    page_row(&mut t, "update", &updated);
    t.print();

    let db = std::fs::metadata(&path).map_or(0, |m| m.len());
    let wal = std::fs::metadata(dir.path().join("plansync.db-wal")).map_or(0, |m| m.len());
    println!(
        "\n   store file {:.0} MiB (+ WAL {:.0} MiB)",
        db as f64 / (1024.0 * 1024.0),
        wal as f64 / (1024.0 * 1024.0)
    );

    // Whole-mirror loads: what each cycle's compute step does for every object.
    println!();
    let mut l = Table::new(&[
        "load",
        "rows",
        "time",
        "rows/s",
        "RSS before",
        "peak RSS during",
        "RSS held after",
    ]);
    for label in ["live_ids", "live_records", "live_records (again, warm)"] {
        reset_peak_rss();
        let before = rss_kib();
        let t = Instant::now();
        let (n, held) = if label == "live_ids" {
            let ids = store.live_ids(OBJECT)?;
            (ids.len(), rss_kib())
        } else {
            let recs = store.live_records(OBJECT)?;
            (recs.len(), rss_kib())
        };
        let d = t.elapsed();
        l.row(vec![
            label.into(),
            n.to_string(),
            secs(d),
            rate(n as u64, d),
            mib(before),
            mib(peak_rss_kib()),
            mib(held),
        ]);
    }
    l.print();
    Ok(())
}
