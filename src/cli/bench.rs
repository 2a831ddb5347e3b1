//! `plansync bench`: what a sync costs, measured as a user would run it. It starts the emulator
//! in-process with the demo org at a scale and a per-request latency, then runs `plansync sync
//! --json` as child processes of the same binary, with a generated configuration and a fresh
//! store, for four cases: a first full sync, an incremental cycle after 1% of the
//! opportunities changed, an unchanged incremental cycle right after (it reads the write-backs
//! before it again: they are inside its lookback window), and an unchanged cycle an hour on
//! (the org's history aged by an hour). For each it reports the API
//! calls the emulator received (by kind), the floor they are measured against, wall time,
//! rows/s and the child's peak RSS.
//!
//! The peak RSS of one child is its `ru_maxrss`. A process only learns that of its waited-for
//! children as a running maximum (`getrusage(RUSAGE_CHILDREN)`), so each case runs through
//! this binary again (`bench --measure-into FILE -- sync ...`): that intermediate process has
//! exactly one child, and writes its peak into FILE.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::emulator::calls::CallCounts;
use crate::emulator::{Emulator, RunningEmulator};
use crate::sync::{Names, ObjectKind};

/// Rows per query page (the CRM's default and largest `batchSize`).
pub const ROWS_PER_PAGE: u64 = 2000;
/// Records per sObject Collections request.
pub const RECORDS_PER_COLLECTION: u64 = 200;
/// Queries, next pages or Collections per composite request.
pub const SUBREQUESTS_PER_COMPOSITE: u64 = 5;

/// The seeded org's records are given a history spread over the week before an hour ago, as a
/// real org's: loaded in one burst, every incremental cycle's lookback window (some minutes
/// before the last change it saw) would hold the whole org. A week keeps each object's last
/// change inside the CRM's 15-day delete log, as in an org in daily use.
const HISTORY: chrono::Duration = chrono::Duration::days(7);
const QUIET_BEFORE_START: chrono::Duration = chrono::Duration::hours(1);
/// How long the last case runs after the org's last change.
const QUIET_AFTER: chrono::Duration = chrono::Duration::hours(1);

/// Options of `plansync bench`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = BENCH_HELP)]
pub struct BenchArgs {
    /// Volume of the demo org: about 517 records per unit (30 accounts, 12 plans, 200
    /// opportunities, contacts, tasks, events). Example: --scale 100
    #[arg(long, default_value_t = 10, value_name = "N", value_parser = parse_scale)]
    pub scale: u32,

    /// Delay the emulator adds to every request, in milliseconds. Example: --latency-ms 20
    #[arg(long, default_value_t = 0, value_name = "MS")]
    pub latency_ms: u64,

    /// The floor the calls are measured against: `composite` (query pages of 2000 and sObject
    /// Collections of 200, five of them per composite request, as plansync sends them) or
    /// `rest` (each page and each Collections request a call). Full pulls through Bulk API
    /// 2.0 query jobs can go under either. Example: --floor rest
    #[arg(long, value_enum, default_value_t = FloorKind::Composite)]
    pub floor: FloorKind,

    /// Print one JSON object instead of the table: {"scale", "latency_ms", "floor": {"kind",
    /// "formula"}, "org_rows": {label: rows}, "org_rows_total", "cpus", "cases": [{"case"
    /// (full, one_percent, unchanged, quiet), "changed_opportunities", "rows_pulled": {label: rows},
    /// "rows_pulled_total", "records_written", "calls": {"token", "query", "next_page",
    /// "get_deleted", "get_updated", "limits", "write", "composite", "bulk", "describe", "other",
    /// "total"},
    /// "client_api_calls", "floor": {"reads", "writes", "token", "total"}, "calls_per_floor",
    /// "wall_ms", "cycle_ms", "cpu_ms", "rows_per_s", "peak_rss_kib"}]}.
    #[arg(long)]
    pub json: bool,

    /// Runs the command after `--` as a child and writes its peak RSS (KiB) into this file;
    /// used by the bench itself for each case.
    #[arg(long, hide = true, value_name = "FILE", requires = "child")]
    pub measure_into: Option<PathBuf>,

    /// The command `--measure-into` runs.
    #[arg(
        last = true,
        hide = true,
        value_name = "ARGS",
        requires = "measure_into"
    )]
    pub child: Vec<String>,
}

const BENCH_HELP: &str = "\
The four cases run one after the other against the same org and store, as a daemon's cycles \
would: a full sync (`plansync sync --full --json`), an incremental cycle after 1% of the \
opportunities changed their Amount, an incremental cycle with nothing changed (it reads the \
write-backs of the cycles before again: they are inside its lookback window), and `quiet`, \
one more with nothing changed an hour on (the org's history moved an hour back). The seeded \
records get a history spread over the week that ended an hour before the bench started (as \
a real org's), so that incremental cycles see what changed rather than the whole freshly \
loaded org. Build with --release for meaningful times: cargo run --release -- bench \
--scale 100. Progress goes to stderr.

Exit status:
  0    done
  1    a failure: the emulator could not start, or a case's sync failed (its stderr is shown)
  2    an option to fix (a scale of 0, an unknown flag)";

fn parse_scale(text: &str) -> Result<u32, String> {
    match text.parse::<u32>() {
        Ok(0) => Err("the scale must be 1 or more (1 is the demo org, about 517 records)".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!(
            "{text:?} is not a whole number of demo org units, e.g. --scale 100"
        )),
    }
}

/// Which floor the calls are measured against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FloorKind {
    /// Plain REST: every query page and every Collections request is a call.
    Rest,
    /// Composite: up to 5 queries, next pages or Collections per call.
    Composite,
}

/// The fewest calls that move a cycle's rows: reads, writes and one token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Floor {
    pub reads: u64,
    pub writes: u64,
    pub token: u64,
    pub total: u64,
}

impl FloorKind {
    /// How the floor is computed, for the output.
    pub fn formula(self) -> &'static str {
        match self {
            FloorKind::Rest => {
                "pages = sum over objects of max(1, ceil(rows pulled / 2000)); \
                 floor = pages + ceil(records written / 200) + 1 token"
            }
            FloorKind::Composite => {
                "pages = sum over objects of max(1, ceil(rows pulled / 2000)); \
                 floor = ceil(pages / 5) + ceil(records written / 1000) + 1 token"
            }
        }
    }

    /// The floor for a cycle that pulled `rows` of each object and wrote `written` records.
    /// An object with nothing to pull still costs a page: an empty answer is a call too.
    pub fn floor(self, rows: &[u64], written: u64) -> Floor {
        let pages: u64 = rows.iter().map(|r| r.div_ceil(ROWS_PER_PAGE).max(1)).sum();
        let collections = written.div_ceil(RECORDS_PER_COLLECTION);
        let (reads, writes) = match self {
            FloorKind::Rest => (pages, collections),
            FloorKind::Composite => (
                pages.div_ceil(SUBREQUESTS_PER_COMPOSITE),
                collections.div_ceil(SUBREQUESTS_PER_COMPOSITE),
            ),
        };
        Floor {
            reads,
            writes,
            token: 1,
            total: reads + writes + 1,
        }
    }
}

/// Calls by kind, with their total.
#[derive(Debug, Clone, Serialize)]
pub struct Calls {
    #[serde(flatten)]
    pub by_kind: CallCounts,
    pub total: u64,
}

/// What one case measured.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    pub case: &'static str,
    /// Opportunities changed in the org before this case ran.
    pub changed_opportunities: u64,
    pub rows_pulled: BTreeMap<String, u64>,
    pub rows_pulled_total: u64,
    pub records_written: u64,
    pub calls: Calls,
    /// The calls the sync counted itself (its report's `api_calls`).
    pub client_api_calls: u64,
    pub floor: Floor,
    /// Calls divided by the floor.
    pub calls_per_floor: f64,
    /// From starting the child to its exit, as a user would time it.
    pub wall_ms: u64,
    /// The cycle's own duration (its report's `duration_ms`).
    pub cycle_ms: u64,
    /// The sync process's CPU time, user and system: its own work, without the time it
    /// waited for the CRM.
    pub cpu_ms: u64,
    /// Rows pulled per second of wall time.
    pub rows_per_s: f64,
    pub peak_rss_kib: u64,
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub scale: u32,
    pub latency_ms: u64,
    pub floor: FloorReport,
    pub org_rows: BTreeMap<String, u64>,
    pub org_rows_total: u64,
    pub cpus: usize,
    pub cases: Vec<CaseResult>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FloorReport {
    pub kind: FloorKind,
    pub formula: &'static str,
}

/// Why the bench failed.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("the emulator could not start")]
    Emulator(#[source] crate::emulator::EmulatorError),
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the {case} case: `plansync {command}` exited with {status}; its stderr:\n{stderr}")]
    Child {
        case: &'static str,
        command: String,
        status: String,
        stderr: String,
    },
    #[error("the {case} case: `plansync {command}` printed no sync report: {message}")]
    Report {
        case: &'static str,
        command: String,
        message: String,
    },
    #[error("--measure-into {path}: {message}")]
    Measure { path: PathBuf, message: String },
    #[error("cannot read the peak RSS the measuring process wrote to {path}: {message}")]
    PeakRss { path: PathBuf, message: String },
}

impl BenchError {
    pub fn exit_code(&self) -> u8 {
        1
    }
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BenchError {
    let what = what.into();
    move |source| BenchError::Io { what, source }
}

/// Runs `plansync bench`.
pub fn main(args: BenchArgs) -> Result<(), BenchError> {
    if let Some(path) = &args.measure_into {
        return measure(path, &args.child);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(io("cannot start the async runtime"))?;
    let report = runtime.block_on(run(&args))?;
    if args.json {
        let text = serde_json::to_string_pretty(&report).map_err(|e| BenchError::Io {
            what: "cannot render the report as JSON".into(),
            source: std::io::Error::other(e),
        })?;
        println!("{text}");
    } else {
        print!("{}", table(&report));
    }
    Ok(())
}

/// The hidden `--measure-into` mode: runs `child` (this binary's arguments), waits for it,
/// and writes the child's peak RSS in KiB and its CPU time (user and system) in milliseconds
/// into `path`.
fn measure(path: &Path, child: &[String]) -> Result<(), BenchError> {
    let failed = |message: String| BenchError::Measure {
        path: path.to_path_buf(),
        message,
    };
    let exe = std::env::current_exe().map_err(io("cannot find the plansync executable"))?;
    let status = std::process::Command::new(exe)
        .args(child)
        .stdin(std::process::Stdio::null())
        .status()
        .map_err(io("cannot start the measured command"))?;
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .map_err(|e| failed(format!("getrusage: {e}")))?;
    let ms = |t: nix::sys::time::TimeVal| t.tv_sec() * 1000 + t.tv_usec() / 1000;
    let cpu_ms = ms(usage.user_time()) + ms(usage.system_time());
    std::fs::write(path, format!("{} {cpu_ms}", usage.max_rss()))
        .map_err(|e| failed(format!("cannot write: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(failed(format!("the measured command exited with {status}")))
    }
}

async fn run(args: &BenchArgs) -> Result<BenchReport, BenchError> {
    progress(&format!(
        "seeding the demo org at scale {} (latency {} ms) ...",
        args.scale, args.latency_ms
    ));
    let started = Instant::now();
    let emulator = Emulator::builder()
        .seed("demo")
        .scale(args.scale)
        .latency(Duration::from_millis(args.latency_ms))
        // A benchmark's calls are not a daily allocation to run out of.
        .daily_api_limit(u64::MAX)
        .start()
        .await
        .map_err(BenchError::Emulator)?;
    let now = chrono::Utc::now();
    emulator.with_org(|org| {
        org.spread_history(now - QUIET_BEFORE_START - HISTORY, now - QUIET_BEFORE_START)
    });
    let org_rows = org_rows(&emulator);
    let org_rows_total = org_rows.values().sum();
    progress(&format!(
        "the emulator serves {org_rows_total} rows at {} (seeded in {:.1} s)",
        emulator.base_url(),
        started.elapsed().as_secs_f64()
    ));

    let dir = tempfile::Builder::new()
        .prefix("plansync-bench-")
        .tempdir()
        .map_err(io("cannot create a temporary directory for the bench"))?;
    let config = write_config(dir.path(), &emulator)?;
    let config = config.display().to_string();
    let sync = |full: bool| {
        let mut a = vec!["sync".to_string(), "--json".into(), "--config".into()];
        a.push(config.clone());
        if full {
            a.push("--full".into());
        }
        a
    };

    let mut cases = Vec::new();
    let case = Case {
        emulator: &emulator,
        dir: dir.path(),
        floor: args.floor,
    };
    cases.push(case.run("full", sync(true), 0).await?);
    let changed = change_one_percent(&emulator);
    progress(&format!("changed the Amount of {changed} opportunities"));
    cases.push(case.run("one_percent", sync(false), changed).await?);
    cases.push(case.run("unchanged", sync(false), 0).await?);
    // An hour on with nothing changed: the write-backs the cycles above read again (they are
    // inside the lookback window of the last change seen) are behind it.
    emulator.with_org(|org| org.age_history(QUIET_AFTER));
    cases.push(case.run("quiet", sync(false), 0).await?);
    emulator.shutdown().await;

    Ok(BenchReport {
        scale: args.scale,
        latency_ms: args.latency_ms,
        floor: FloorReport {
            kind: args.floor,
            formula: args.floor.formula(),
        },
        org_rows,
        org_rows_total,
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        cases,
    })
}

fn progress(line: &str) {
    eprintln!("bench: {line}");
}

/// Live rows of each object plansync pulls, by its label.
fn org_rows(emulator: &RunningEmulator) -> BTreeMap<String, u64> {
    let names = Names::default();
    emulator.with_org(|org| {
        ObjectKind::ALL
            .into_iter()
            .map(|kind| {
                let rows = org.live_records(names.object(kind)).count() as u64;
                (kind.label().to_string(), rows)
            })
            .collect()
    })
}

/// Adds 1,000 to the Amount of 1% of the opportunities (at least one), spread evenly over
/// them in Id order; returns how many changed.
fn change_one_percent(emulator: &RunningEmulator) -> u64 {
    let object = Names::default().object(ObjectKind::Opportunity).to_string();
    emulator.with_org(|org| {
        let targets: Vec<(String, Decimal)> = org
            .live_records(&object)
            .filter_map(|r| {
                let id = r.get("Id")?.as_str()?.to_string();
                let amount = r
                    .get("Amount")
                    .filter(|v| !v.is_null())
                    .and_then(|v| v.to_string().parse::<Decimal>().ok())
                    .unwrap_or_default();
                Some((id, amount))
            })
            .collect();
        let count = (targets.len() / 100).max(1);
        let step = (targets.len() / count).max(1);
        let now = chrono::Utc::now();
        let mut changed = 0;
        for (id, amount) in targets.iter().step_by(step).take(count) {
            let new = (*amount + Decimal::from(1000)).normalize();
            let Ok(number) = new.to_string().parse::<serde_json::Number>() else {
                continue;
            };
            let mut fields = Map::new();
            fields.insert("Amount".into(), Value::Number(number));
            match org.update(&object, id, &fields, now) {
                Ok(()) => changed += 1,
                Err(e) => tracing::warn!(id = %id, error = %e, "the bench could not change an opportunity"),
            }
        }
        changed
    })
}

/// A configuration for the emulator, with its client secret in a file and a fresh store.
fn write_config(dir: &Path, emulator: &RunningEmulator) -> Result<PathBuf, BenchError> {
    let secret = dir.join("client_secret");
    std::fs::write(&secret, emulator.client_secret())
        .map_err(io(format!("cannot write {}", secret.display())))?;
    let config = dir.join("plansync.toml");
    let text = format!(
        "[crm]\nlogin_url = {base:?}\napi_version = \"62.0\"\n\n\
         [crm.auth]\nflow = \"client_credentials\"\nclient_id = {id:?}\nclient_secret_file = {secret:?}\n\n\
         [store]\npath = {store:?}\n\n\
         [org]\ntimezone = \"UTC\"\n",
        base = emulator.base_url(),
        id = emulator.client_id(),
        secret = secret.display().to_string(),
        store = dir.join("plansync.db").display().to_string(),
    );
    std::fs::write(&config, text).map_err(io(format!("cannot write {}", config.display())))?;
    Ok(config)
}

struct Case<'a> {
    emulator: &'a RunningEmulator,
    dir: &'a Path,
    floor: FloorKind,
}

impl Case<'_> {
    /// Runs `plansync <sync>` through the measuring process and reads what it cost.
    async fn run(
        &self,
        case: &'static str,
        sync: Vec<String>,
        changed_opportunities: u64,
    ) -> Result<CaseResult, BenchError> {
        let command = sync.join(" ");
        progress(&format!("{case}: running plansync {command} ..."));
        let rss_file = self.dir.join(format!("peak-rss-{case}"));
        let exe = std::env::current_exe().map_err(io("cannot find the plansync executable"))?;
        let mut child = std::process::Command::new(exe);
        child
            .arg("bench")
            .arg("--measure-into")
            .arg(&rss_file)
            .arg("--")
            .args(&sync)
            .stdin(std::process::Stdio::null());
        // The generated configuration alone decides: no PLANSYNC__SECTION__KEY overrides.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("PLANSYNC__") {
                child.env_remove(key);
            }
        }
        let before = self.emulator.calls();
        let started = Instant::now();
        // The emulator serves on this runtime's other threads while the child runs.
        let output = tokio::task::spawn_blocking(move || child.output())
            .await
            .map_err(|e| BenchError::Io {
                what: "the child process's waiter failed".into(),
                source: std::io::Error::other(e),
            })?
            .map_err(io("cannot start plansync for a case"))?;
        let wall = started.elapsed();
        let by_kind = self.emulator.calls().since(&before);
        if !output.status.success() {
            return Err(BenchError::Child {
                case,
                command,
                status: output.status.to_string(),
                stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            });
        }
        let report: Value =
            serde_json::from_slice(&output.stdout).map_err(|e| BenchError::Report {
                case,
                command: command.clone(),
                message: e.to_string(),
            })?;
        let (peak_rss_kib, cpu_ms) = std::fs::read_to_string(&rss_file)
            .map_err(|e| e.to_string())
            .and_then(|t| {
                let mut numbers = t.split_whitespace().map(str::parse::<u64>);
                match (numbers.next(), numbers.next()) {
                    (Some(Ok(rss)), Some(Ok(cpu))) => Ok((rss, cpu)),
                    _ => Err(format!("{t:?} is not a peak RSS and a CPU time")),
                }
            })
            .map_err(|message| BenchError::PeakRss {
                path: rss_file.clone(),
                message,
            })?;
        let number = |v: &Value| v.as_u64().unwrap_or(0);
        let rows_pulled: BTreeMap<String, u64> = report["objects"]
            .as_object()
            .map(|objects| {
                objects
                    .iter()
                    .map(|(label, stats)| (label.clone(), number(&stats["pulled"])))
                    .collect()
            })
            .unwrap_or_default();
        if rows_pulled.is_empty() {
            return Err(BenchError::Report {
                case,
                command,
                message: "its report lists no objects".into(),
            });
        }
        let rows_pulled_total: u64 = rows_pulled.values().sum();
        let records_written = number(&report["records_written"]);
        let rows: Vec<u64> = rows_pulled.values().copied().collect();
        let floor = self.floor.floor(&rows, records_written);
        let total = by_kind.total();
        let secs = wall.as_secs_f64();
        let result = CaseResult {
            case,
            changed_opportunities,
            rows_pulled,
            rows_pulled_total,
            records_written,
            calls: Calls { by_kind, total },
            client_api_calls: number(&report["api_calls"]),
            floor,
            calls_per_floor: total as f64 / floor.total as f64,
            wall_ms: u64::try_from(wall.as_millis()).unwrap_or(u64::MAX),
            cycle_ms: number(&report["duration_ms"]),
            cpu_ms,
            rows_per_s: if secs > 0.0 {
                rows_pulled_total as f64 / secs
            } else {
                0.0
            },
            peak_rss_kib,
        };
        progress(&format!(
            "{case}: {total} calls (floor {}), {rows_pulled_total} rows pulled, {records_written} written, {:.2} s, peak RSS {:.1} MiB",
            floor.total,
            secs,
            peak_rss_kib as f64 / 1024.0
        ));
        Ok(result)
    }
}

/// The text form: the setup, the floor's formula and one row per case.
pub fn table(report: &BenchReport) -> String {
    let mut out = String::new();
    let rows: Vec<String> = report
        .org_rows
        .iter()
        .map(|(label, n)| format!("{label} {n}"))
        .collect();
    let _ = writeln!(
        out,
        "demo org at scale {}: {} rows ({}); latency {} ms; {} CPUs",
        report.scale,
        report.org_rows_total,
        rows.join(", "),
        report.latency_ms,
        report.cpus
    );
    let _ = writeln!(
        out,
        "floor ({}): {}",
        match report.floor.kind {
            FloorKind::Rest => "rest",
            FloorKind::Composite => "composite",
        },
        report.floor.formula
    );
    let _ = writeln!(out);
    let header = [
        "case", "rows", "written", "calls", "floor", "x floor", "token", "query", "next", "getDel",
        "limits", "write", "compos", "bulk", "other", "wall s", "CPU s", "rows/s", "RSS MiB",
    ];
    let mut lines = vec![header.iter().map(|s| s.to_string()).collect::<Vec<_>>()];
    for c in &report.cases {
        let k = &c.calls.by_kind;
        lines.push(vec![
            c.case.to_string(),
            c.rows_pulled_total.to_string(),
            c.records_written.to_string(),
            c.calls.total.to_string(),
            c.floor.total.to_string(),
            format!("{:.2}", c.calls_per_floor),
            k.token.to_string(),
            k.query.to_string(),
            k.next_page.to_string(),
            k.get_deleted.to_string(),
            k.limits.to_string(),
            k.write.to_string(),
            k.composite.to_string(),
            k.bulk.to_string(),
            (k.get_updated + k.describe + k.other).to_string(),
            format!("{:.2}", c.wall_ms as f64 / 1000.0),
            format!("{:.2}", c.cpu_ms as f64 / 1000.0),
            format!("{:.0}", c.rows_per_s),
            format!("{:.1}", c.peak_rss_kib as f64 / 1024.0),
        ]);
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|i| lines.iter().map(|l| l[i].len()).max().unwrap_or(0))
        .collect();
    for line in &lines {
        let cells: Vec<String> = line
            .iter()
            .enumerate()
            .map(|(i, cell)| {
                if i == 0 {
                    format!("{cell:<w$}", w = widths[i])
                } else {
                    format!("{cell:>w$}", w = widths[i])
                }
            })
            .collect();
        let _ = writeln!(out, "{}", cells.join("  "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rest_floor_counts_pages_per_object_collections_and_a_token() {
        // 4001 rows are 3 pages; an object with nothing to pull still costs one.
        let floor = FloorKind::Rest.floor(&[4001, 0, 2000], 201);
        assert_eq!(
            floor,
            Floor {
                reads: 3 + 1 + 1,
                writes: 2,
                token: 1,
                total: 8
            }
        );
    }

    #[test]
    fn the_composite_floor_packs_five_requests_per_call() {
        // 7 pages in 2 composite reads; 1001 records are 6 Collections in 2 composite writes.
        let floor = FloorKind::Composite.floor(&[4001, 0, 2000, 1, 1, 1], 1001);
        assert_eq!(
            floor,
            Floor {
                reads: 2,
                writes: 2,
                token: 1,
                total: 5
            }
        );
        assert_eq!(FloorKind::Composite.floor(&[0; 7], 0).total, 2 + 1);
        assert_eq!(FloorKind::Rest.floor(&[0; 7], 0).total, 7 + 1);
    }

    #[test]
    fn a_scale_of_zero_or_not_a_number_is_refused_with_what_to_give() {
        assert_eq!(parse_scale("3"), Ok(3));
        let zero = parse_scale("0").unwrap_err();
        assert!(zero.contains("1 or more"), "{zero}");
        let word = parse_scale("ten").unwrap_err();
        assert!(word.contains("--scale 100"), "{word}");
    }
}
