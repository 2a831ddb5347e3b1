//! `plansync::domain::compute` over a generated org: links for every opportunity, rollups for
//! every active plan, findings. Prints the time and the memory of one evaluation at 1/10 of the
//! full volume and at the full volume, to show the cost grows with the records (not with
//! plans × opportunities).
//!
//! Full volume: 20,000 accounts in a three-level hierarchy, 10,000 plans (some with junction
//! accounts, some overlapping), 1,000,000 opportunities, 100,000 contacts, 300,000 tasks,
//! 100,000 events. `PLANSYNC_BENCH_SCALE=N` multiplies both volumes.
#![allow(
    clippy::disallowed_methods,
    reason = "a benchmark times itself by the clock"
)]

mod common;

use std::time::{Duration, Instant};

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use common::{banner, mib, peak_rss_kib, rate, reset_peak_rss, rss_kib, scale, secs};
use common::{BenchResult, Table};
use plansync::domain::{
    compute, Account, Contact, Event, Opportunity, OrgData, Plan, Rates, Rules, Task,
};
use plansync::metadata::id;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;

/// Accounts per group: a root, 3 children, 6 grandchildren.
const GROUP: usize = 10;

struct Volume {
    accounts: usize,
    plans: usize,
    opportunities: usize,
    contacts: usize,
    tasks: usize,
    events: usize,
}

impl Volume {
    fn full(scale: f64) -> Volume {
        let n = |base: f64| ((base * scale).round() as usize).max(1);
        Volume {
            accounts: (n(20_000.0) / GROUP).max(1) * GROUP,
            plans: n(10_000.0),
            opportunities: n(1_000_000.0),
            contacts: n(100_000.0),
            tasks: n(300_000.0),
            events: n(100_000.0),
        }
    }

    fn tenth(&self) -> Volume {
        Volume {
            accounts: (self.accounts / 10 / GROUP).max(1) * GROUP,
            plans: (self.plans / 10).max(1),
            opportunities: (self.opportunities / 10).max(1),
            contacts: (self.contacts / 10).max(1),
            tasks: (self.tasks / 10).max(1),
            events: (self.events / 10).max(1),
        }
    }

    fn records(&self) -> usize {
        self.accounts + self.plans + self.opportunities + self.contacts + self.tasks + self.events
    }
}

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 8, 15).unwrap_or_default()
}

/// The generated org, deterministic for a volume.
fn generate(v: &Volume) -> OrgData {
    let mut rng = ChaCha8Rng::seed_from_u64(20_260_815);
    let today = today();
    let year = today.year();
    let day = |rng: &mut ChaCha8Rng, back: i64, ahead: i64| {
        today + chrono::Duration::days(rng.gen_range(-back..=ahead))
    };

    // Accounts: groups of a root, 3 children (parent: the root), 6 grandchildren (2 per child).
    let accounts: Vec<Account> = (0..v.accounts)
        .map(|i| {
            let base = i - i % GROUP;
            let parent = match i % GROUP {
                0 => None,
                1..=3 => Some(base),
                k => Some(base + 1 + (k - 4) / 2),
            };
            Account {
                id: id::make("001", "5e0", i as u64 + 1),
                parent_id: parent.map(|p| id::make("001", "5e0", p as u64 + 1)),
            }
        })
        .collect();
    let account_id = |i: usize| accounts[i % accounts.len()].id.clone();

    // Plans: a group's root plan takes the whole group; others a single account, sometimes a
    // junction account from the next group. Yearly and quarterly periods overlap on purpose.
    let statuses = ["Active", "Active", "Active", "Active", "Closed", "Draft"];
    let plans: Vec<Plan> = (0..v.plans)
        .map(|i| {
            let group = rng.gen_range(0..accounts.len() / GROUP);
            let root = rng.gen_bool(0.3);
            let account = if root {
                group * GROUP
            } else {
                group * GROUP + rng.gen_range(1..GROUP)
            };
            let extra = if rng.gen_bool(0.1) {
                vec![account_id(account + GROUP)]
            } else {
                Vec::new()
            };
            let y = year + rng.gen_range(-1..=1);
            let (start, end) = if rng.gen_bool(0.5) {
                (
                    NaiveDate::from_ymd_opt(y, 1, 1),
                    NaiveDate::from_ymd_opt(y, 12, 31),
                )
            } else {
                let q = rng.gen_range(0..4u32);
                let start = NaiveDate::from_ymd_opt(y, 1 + 3 * q, 1);
                let end = start
                    .and_then(|s| s.checked_add_months(chrono::Months::new(3)))
                    .and_then(|e| e.pred_opt());
                (start, end)
            };
            Plan {
                id: id::make("a01", "5e0", i as u64 + 1),
                name: format!("Plan {i}"),
                account_id: Some(account_id(account)),
                extra_account_ids: extra,
                period_start: start,
                period_end: end,
                revenue_target: Some(Decimal::new(rng.gen_range(10..500) * 10_000, 0)),
                close_ratio_percent: rng
                    .gen_bool(0.3)
                    .then(|| Decimal::from(rng.gen_range(10..60))),
                include_child_accounts: root,
                status: Some(statuses[rng.gen_range(0..statuses.len())].to_string()),
                currency: None,
                discriminator: None,
            }
        })
        .collect();

    let categories = ["Pipeline", "BestCase", "Commit", "Omitted", "Closed"];
    let opportunities: Vec<Opportunity> = (0..v.opportunities)
        .map(|i| {
            let is_closed = rng.gen_bool(0.5);
            let is_won = is_closed && rng.gen_bool(0.4);
            let linked = rng.gen_bool(0.3);
            Opportunity {
                id: id::make("006", "5e0", i as u64 + 1),
                account_id: rng
                    .gen_bool(0.98)
                    .then(|| account_id(rng.gen_range(0..v.accounts))),
                amount: rng
                    .gen_bool(0.95)
                    .then(|| Decimal::new(rng.gen_range(100_000..50_000_000), 2)),
                close_date: Some(day(&mut rng, 500, 400)),
                is_closed,
                is_won,
                probability: Some(Decimal::from(if is_won {
                    100
                } else if is_closed {
                    0
                } else {
                    rng.gen_range(10..90)
                })),
                forecast_category: Some(categories[rng.gen_range(0..categories.len())].into()),
                currency: None,
                plan_id: linked.then(|| plans[rng.gen_range(0..plans.len())].id.clone()),
                link_locked: linked && rng.gen_bool(0.03),
                discriminator: None,
            }
        })
        .collect();

    let contacts: Vec<Contact> = (0..v.contacts)
        .map(|i| Contact {
            id: id::make("003", "5e0", i as u64 + 1),
            account_id: Some(account_id(rng.gen_range(0..v.accounts))),
        })
        .collect();
    let who = |rng: &mut ChaCha8Rng| {
        rng.gen_bool(0.6)
            .then(|| contacts[rng.gen_range(0..contacts.len())].id.clone())
    };
    let what = |rng: &mut ChaCha8Rng| {
        rng.gen_bool(0.4).then(|| {
            opportunities[rng.gen_range(0..opportunities.len())]
                .id
                .clone()
        })
    };
    let tasks: Vec<Task> = (0..v.tasks)
        .map(|i| Task {
            id: id::make("00T", "5e0", i as u64 + 1),
            account_id: Some(account_id(rng.gen_range(0..v.accounts))),
            what_id: what(&mut rng),
            who_id: who(&mut rng),
            activity_date: Some(day(&mut rng, 200, 60)),
            is_closed: rng.gen_bool(0.6),
        })
        .collect();
    let events: Vec<Event> = (0..v.events)
        .map(|i| {
            let date = day(&mut rng, 200, 60);
            let all_day = rng.gen_bool(0.2);
            let start: Option<DateTime<Utc>> = (!all_day)
                .then(|| date.and_hms_opt(rng.gen_range(7..19), 0, 0))
                .flatten()
                .map(|t| Utc.from_utc_datetime(&t));
            Event {
                id: id::make("00U", "5e0", i as u64 + 1),
                account_id: Some(account_id(rng.gen_range(0..v.accounts))),
                what_id: what(&mut rng),
                who_id: who(&mut rng),
                activity_date: Some(date),
                start,
                is_all_day: all_day,
            }
        })
        .collect();

    OrgData {
        accounts,
        plans,
        opportunities,
        contacts,
        tasks,
        events,
        rates: Rates::single(),
    }
}

struct Run {
    label: &'static str,
    records: usize,
    opportunities: usize,
    plans: usize,
    generate: Duration,
    input_rss: Option<u64>,
    compute: Vec<Duration>,
    peak: Option<u64>,
    links: usize,
    rollups: usize,
    findings: usize,
}

fn measure(label: &'static str, v: &Volume, repeats: usize) -> Run {
    let t = Instant::now();
    let org = generate(v);
    let generate_time = t.elapsed();
    let input_rss = rss_kib();
    let rules = Rules::default();
    let mut times = Vec::new();
    let mut peak = None;
    let mut sizes = (0, 0, 0);
    for _ in 0..repeats {
        reset_peak_rss();
        let t = Instant::now();
        let outcome = compute(&org, &rules, today(), None);
        times.push(t.elapsed());
        peak = peak.max(peak_rss_kib());
        sizes = (
            outcome.links.len(),
            outcome.rollups.len(),
            outcome.findings.len(),
        );
        drop(outcome);
    }
    Run {
        label,
        records: v.records(),
        opportunities: v.opportunities,
        plans: v.plans,
        generate: generate_time,
        input_rss,
        compute: times,
        peak,
        links: sizes.0,
        rollups: sizes.1,
        findings: sizes.2,
    }
}

fn main() {
    if let Err(e) = run() {
        eprintln!("domain_compute failed: {e}");
        std::process::exit(1);
    }
}

fn run() -> BenchResult {
    if !common::selected("domain_compute") {
        return Ok(());
    }
    let full = Volume::full(scale()?);
    let tenth = full.tenth();
    banner(
        "domain_compute",
        "plansync::domain::compute (links, rollups, findings) over a generated org",
        &[
            (
                "full volume",
                format!(
                    "{} accounts (3-level groups of {GROUP}), {} plans, {} opportunities, {} contacts, {} tasks, {} events",
                    full.accounts, full.plans, full.opportunities, full.contacts, full.tasks, full.events
                ),
            ),
            ("rules", "the defaults; today 2026-08-15; single currency".into()),
            (
                "memory",
                "input = RSS with the org built; peak = VmHWM during compute (reset before it)".into(),
            ),
        ],
    );
    // The small volume first, so its peak is not the big one's.
    let runs = [measure("1/10", &tenth, 3), measure("full", &full, 2)];
    let mut t = Table::new(&[
        "volume",
        "records",
        "opps",
        "plans",
        "generate",
        "compute (best)",
        "compute (runs)",
        "opps/s",
        "input RSS",
        "peak RSS",
        "links",
        "rollups",
        "findings",
    ]);
    for r in &runs {
        let best = r.compute.iter().min().copied().unwrap_or_default();
        t.row(vec![
            r.label.into(),
            r.records.to_string(),
            r.opportunities.to_string(),
            r.plans.to_string(),
            secs(r.generate),
            secs(best),
            r.compute
                .iter()
                .map(|d| secs(*d))
                .collect::<Vec<_>>()
                .join(", "),
            rate(r.opportunities as u64, best),
            mib(r.input_rss),
            mib(r.peak),
            r.links.to_string(),
            r.rollups.to_string(),
            r.findings.to_string(),
        ]);
    }
    println!();
    t.print();
    let best = |r: &Run| r.compute.iter().min().copied().unwrap_or_default();
    let ratio = best(&runs[1]).as_secs_f64() / best(&runs[0]).as_secs_f64().max(1e-9);
    println!();
    println!(
        "   full / (1/10) compute time: {ratio:.1}x for {:.1}x the records",
        runs[1].records as f64 / runs[0].records.max(1) as f64
    );
    Ok(())
}
