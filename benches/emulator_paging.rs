//! Paging every opportunity out of the emulator with `queryAll` at batchSize 2000, the way the
//! sync's pull does, through a plain HTTP client: seeding time, first-page latency (the query
//! runs once, on the first page), later-page cost, rows per second, peak memory.
//!
//! Default: the `demo` seed at scale 1000 (200,000 opportunities). `PLANSYNC_BENCH_SCALE=5`
//! pages 1,000,000.
#![allow(
    clippy::disallowed_methods,
    reason = "a benchmark times itself by the clock"
)]

mod common;

use std::time::{Duration, Instant};

use common::{banner, mib, peak_rss_kib, rate, scale, scaled, secs, BenchResult, Table};
use plansync::emulator::Emulator;
use plansync::sync::{pull::build_query, Names, ObjectKind};
use serde_json::Value;

/// Opportunities per unit of demo scale (see `src/emulator/seed.rs`).
const OPPS_PER_UNIT: u64 = 200;
const BASE_SCALE: u64 = 1000;
const API: &str = "/services/data/v62.0";

struct PageTime {
    index: usize,
    rows: usize,
    bytes: usize,
    /// Request sent until the whole body is received.
    serve: Duration,
    /// Client-side JSON parse of the body.
    parse: Duration,
}

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("emulator_paging failed: {e}");
        std::process::exit(1);
    }
}

async fn run() -> BenchResult {
    if !common::selected("emulator_paging") {
        return Ok(());
    }
    let emu_scale = scaled(BASE_SCALE, scale()?);
    let emu_scale = u32::try_from(emu_scale)?;
    let query = build_query(&Names::default(), ObjectKind::Opportunity, None);
    banner(
        "emulator_paging",
        "queryAll over every Opportunity, batchSize=2000, plain HTTP client",
        &[
            ("seed", format!("demo, scale {emu_scale}")),
            (
                "expected opportunities",
                (u64::from(emu_scale) * OPPS_PER_UNIT).to_string(),
            ),
            ("query", query.clone()),
        ],
    );

    let started = Instant::now();
    let emulator = Emulator::builder()
        .seed("demo")
        .scale(emu_scale)
        .start()
        .await?;
    let seed_time = started.elapsed();
    let rss_after_seed = peak_rss_kib();
    println!(
        "   emulator seeded and listening in {} (peak RSS {})",
        secs(seed_time),
        mib(rss_after_seed)
    );

    let http = reqwest::Client::new();
    let login_started = Instant::now();
    let token: Value = http
        .post(format!("{}/services/oauth2/token", emulator.base_url()))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", emulator.client_id()),
            ("client_secret", emulator.client_secret()),
        ])
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let login_time = login_started.elapsed();
    let access = token["access_token"]
        .as_str()
        .ok_or("the token response has no access_token")?
        .to_string();
    let instance = token["instance_url"]
        .as_str()
        .unwrap_or(emulator.base_url())
        .to_string();

    let mut pages: Vec<PageTime> = Vec::new();
    let mut url = format!("{instance}{API}/queryAll");
    let mut first = true;
    let mut total_rows = 0usize;
    let mut total_bytes = 0usize;
    let mut total_size = 0u64;
    let paging_started = Instant::now();
    loop {
        let t = Instant::now();
        let mut request = http
            .get(&url)
            .bearer_auth(&access)
            .header("Sforce-Query-Options", "batchSize=2000");
        if first {
            request = request.query(&[("q", query.as_str())]);
        }
        let body = request.send().await?.error_for_status()?.bytes().await?;
        let serve = t.elapsed();
        let t = Instant::now();
        let page: Value = serde_json::from_slice(&body)?;
        let parse = t.elapsed();
        let rows = page["records"].as_array().map_or(0, Vec::len);
        if first {
            total_size = page["totalSize"].as_u64().unwrap_or(0);
        }
        pages.push(PageTime {
            index: pages.len() + 1,
            rows,
            bytes: body.len(),
            serve,
            parse,
        });
        total_rows += rows;
        total_bytes += body.len();
        first = false;
        match page["nextRecordsUrl"].as_str() {
            Some(next) if page["done"] == Value::Bool(false) => url = format!("{instance}{next}"),
            _ => break,
        }
    }
    let paging_time = paging_started.elapsed();
    let peak = peak_rss_kib();
    emulator.shutdown().await;

    println!(
        "   login (client credentials over HTTP): {}",
        secs(login_time)
    );
    println!(
        "   paged {total_rows} rows of totalSize {total_size} in {} pages, {:.1} MiB of JSON",
        pages.len(),
        total_bytes as f64 / (1024.0 * 1024.0)
    );
    println!();

    let mut t = Table::new(&["page", "rows", "KiB", "serve", "client parse"]);
    let n = pages.len();
    let mut shown: Vec<usize> = vec![0, 1, 2, n / 2 - 1, n / 2, n / 2 + 1, n - 3, n - 2, n - 1]
        .into_iter()
        .filter(|&i| i < n)
        .collect();
    shown.sort_unstable();
    shown.dedup();
    for i in shown {
        let p = &pages[i];
        t.row(vec![
            format!("#{}", p.index),
            p.rows.to_string(),
            format!("{:.0}", p.bytes as f64 / 1024.0),
            secs(p.serve),
            secs(p.parse),
        ]);
    }
    t.print();
    println!();

    let later: Vec<&PageTime> = pages.iter().skip(1).collect();
    let mean = |ps: &[&PageTime]| -> Duration {
        if ps.is_empty() {
            Duration::ZERO
        } else {
            ps.iter().map(|p| p.serve).sum::<Duration>() / ps.len() as u32
        }
    };
    let third = later.len() / 3;
    let served: Duration = pages.iter().map(|p| p.serve).sum();
    let parsed: Duration = pages.iter().map(|p| p.parse).sum();
    let mut s = Table::new(&["figure", "value"]);
    s.row(vec!["emulator seed + start".into(), secs(seed_time)]);
    s.row(vec![
        "first page (runs the query)".into(),
        secs(pages[0].serve),
    ]);
    s.row(vec!["later page, mean".into(), secs(mean(&later))]);
    if third > 0 {
        s.row(vec![
            "later page, mean of first third".into(),
            secs(mean(&later[..third])),
        ]);
        s.row(vec![
            "later page, mean of last third".into(),
            secs(mean(&later[later.len() - third..])),
        ]);
    }
    s.row(vec!["paging wall time".into(), secs(paging_time)]);
    s.row(vec![
        "rows/s served (serve time only)".into(),
        rate(total_rows as u64, served),
    ]);
    s.row(vec![
        "rows/s end to end (incl. client parse)".into(),
        rate(total_rows as u64, paging_time),
    ]);
    s.row(vec!["client JSON parse, total".into(), secs(parsed)]);
    s.row(vec!["peak RSS after seeding".into(), mib(rss_after_seed)]);
    s.row(vec!["peak RSS (emulator + client)".into(), mib(peak)]);
    s.print();
    if total_rows as u64 != total_size {
        return Err(format!("paged {total_rows} rows but totalSize was {total_size}").into());
    }
    Ok(())
}
