//! Crash drills: the real binary killed (SIGKILL) at every point of a write-back, in
//! batches of 4 over the golden org; then ONE cycle must leave the CRM exactly as a clean run
//! leaves it, with and without a CRM change between the crash and the restart, and must not
//! restamp `Rollups_Changed_At__c` on plans whose values had already reached the CRM.
//!
//! The kill points come from `PLANSYNC_DRILL_ABORT_AT`, which debug builds of the binary read
//! in the write path only (two points per batch: before the request, and after the CRM
//! answered but before the results are recorded), sending themselves SIGKILL there.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Instant;

use plansync::emulator::{Emulator, RunningEmulator};
use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::common::{write_config_with, Crm};

const AS_OF: &str = "2026-08-15";
const DRILL: &str = "PLANSYNC_DRILL_ABORT_AT";
const PLAN: &str = "Account_Plan__c";
const CHANGED_AT: &str = "Rollups_Changed_At__c";

/// Runs `plansync sync --as-of AS_OF --json`, killed at write-back point `abort_at` when given;
/// returns (exit code, None when a signal ended it; stdout; stderr).
async fn sync(config: &Path, abort_at: Option<u64>) -> (Option<i32>, String, String) {
    let config = config.to_path_buf();
    let output = tokio::task::spawn_blocking(move || {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_plansync"));
        command
            .args(["sync", "--config"])
            .arg(&config)
            .args(["--as-of", AS_OF, "--json"])
            .env("RUST_LOG", "error")
            .env_remove(DRILL);
        if let Some(point) = abort_at {
            command.env(DRILL, point.to_string());
        }
        command.output().unwrap()
    })
    .await
    .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

async fn sync_ok(config: &Path) -> Value {
    let (code, stdout, stderr) = sync(config, None).await;
    assert_eq!(code, Some(0), "plansync sync failed:\n{stderr}\n{stdout}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{stdout}"))
}

fn dec(v: &Value) -> Option<Decimal> {
    match v {
        Value::String(s) => Decimal::from_str(s).ok(),
        Value::Number(n) => Decimal::from_str(&n.to_string())
            .or_else(|_| Decimal::from_scientific(&n.to_string()))
            .ok(),
        _ => None,
    }
}

/// Values equal as the CRM holds them: numbers by value, everything else exactly.
fn same(a: &Value, b: &Value) -> bool {
    a == b || (dec(a).is_some() && dec(a) == dec(b))
}

/// What the drills compare: every plan's rollup fields and every opportunity's link.
#[derive(Debug, Clone)]
struct CrmState {
    /// Plan Id → rollup field → value.
    plans: BTreeMap<String, BTreeMap<String, Value>>,
    /// Plan Id → Rollups_Changed_At__c.
    changed_at: BTreeMap<String, Value>,
    /// Opportunity Id → Account_Plan__c.
    links: BTreeMap<String, Value>,
}

fn rollup_fields() -> Vec<String> {
    let expected: Value =
        serde_json::from_str(include_str!("../fixtures/golden/expected.json")).unwrap();
    let first = expected["rollups"].as_object().unwrap().values().next();
    first
        .unwrap()
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect()
}

impl CrmState {
    async fn read(crm: &Crm) -> CrmState {
        let fields = rollup_fields();
        let soql = format!("SELECT Id, {CHANGED_AT}, {} FROM {PLAN}", fields.join(", "));
        let mut plans = BTreeMap::new();
        let mut changed_at = BTreeMap::new();
        for row in crm.query(&soql).await {
            let id = row["Id"].as_str().unwrap().to_string();
            let values = fields.iter().map(|f| (f.clone(), row[f].clone())).collect();
            plans.insert(id.clone(), values);
            changed_at.insert(id, row[CHANGED_AT].clone());
        }
        let links = crm
            .query("SELECT Id, Account_Plan__c FROM Opportunity")
            .await
            .into_iter()
            .map(|r| {
                (
                    r["Id"].as_str().unwrap().to_string(),
                    r["Account_Plan__c"].clone(),
                )
            })
            .collect();
        CrmState {
            plans,
            changed_at,
            links,
        }
    }

    /// Where `self` differs from `want`, one line each.
    fn differences(&self, want: &CrmState) -> Vec<String> {
        let mut out = Vec::new();
        for (plan, fields) in &want.plans {
            for (field, value) in fields {
                let got = self.plans.get(plan).and_then(|f| f.get(field));
                if !got.is_some_and(|g| same(value, g)) {
                    out.push(format!(
                        "plan {plan} {field}: want {value}, CRM has {got:?}"
                    ));
                }
            }
        }
        for (opp, plan) in &want.links {
            if self.links.get(opp) != Some(plan) {
                out.push(format!(
                    "opportunity {opp} link: want {plan}, CRM has {:?}",
                    self.links.get(opp)
                ));
            }
        }
        out
    }

    /// Whether plan `id` holds the rollup values `want` gives it.
    fn plan_matches(&self, want: &CrmState, id: &str) -> bool {
        want.plans[id]
            .iter()
            .all(|(f, v)| self.plans[id].get(f).is_some_and(|g| same(v, g)))
    }
}

/// CRM changes made through the REST API: (object, Id, fields).
type Changes = Vec<(String, String, Value)>;

async fn apply(crm: &Crm, changes: &Changes) {
    for (object, id, fields) in changes {
        crm.update(object, id, fields.clone()).await;
    }
}

/// One golden org after a clean first cycle, with a store in a temp dir and batches of 4.
struct Org {
    emulator: RunningEmulator,
    crm: Crm,
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Org {
    /// The golden org, synced once with the `[sync]` settings `settings`.
    async fn synced(settings: &str) -> Org {
        let emulator = Emulator::builder().seed("golden").start().await.unwrap();
        let crm = Crm::connect(&emulator).await;
        let dir = tempfile::tempdir().unwrap();
        let config = write_config_with(dir.path(), &emulator, &format!("\n[sync]\n{settings}\n"));
        sync_ok(&config).await;
        Org {
            emulator,
            crm,
            dir,
            config,
        }
    }

    fn unsettled_writes(&self) -> usize {
        let store = plansync::store::Store::open(&self.dir.path().join("plansync.db")).unwrap();
        store.unsettled_writes().unwrap().len()
    }
}

/// The change a crashed cycle writes back (`before`): one opportunity of each active plan gets
/// 1,000 more, and three linked opportunities move out of every plan's period. And the change
/// made while the binary is down (`between`): those amounts move again, and one of the moved
/// opportunities comes back, so writes in flight at the crash are outdated.
async fn drill_changes(crm: &Crm, state: &CrmState) -> (Changes, Changes) {
    let rows = crm
        .query("SELECT Id, Account_Plan__c, Amount, CloseDate FROM Opportunity ORDER BY Id")
        .await;
    let mut bumped: BTreeMap<String, (String, Decimal)> = BTreeMap::new();
    let mut moved = Vec::new();
    for row in &rows {
        let (Some(plan), Some(amount)) = (row["Account_Plan__c"].as_str(), dec(&row["Amount"]))
        else {
            continue;
        };
        let id = row["Id"].as_str().unwrap().to_string();
        let active = state.changed_at.get(plan).is_some_and(|t| !t.is_null());
        if active && !bumped.contains_key(plan) {
            bumped.insert(plan.to_string(), (id, amount));
        } else if moved.len() < 3 && !bumped.values().any(|(b, _)| *b == id) {
            moved.push((id, row["CloseDate"].clone()));
        }
    }
    assert!(bumped.len() >= 8, "too few active plans: {bumped:?}");
    let opp = |id: &str, fields: Value| ("Opportunity".to_string(), id.to_string(), fields);
    let mut before: Changes = bumped
        .values()
        .map(|(id, amount)| {
            opp(
                id,
                json!({ "Amount": number(amount + Decimal::from(1000)) }),
            )
        })
        .collect();
    before.extend(
        moved
            .iter()
            .map(|(id, _)| opp(id, json!({"CloseDate": "2031-01-15"}))),
    );
    let mut between: Changes = bumped
        .values()
        .map(|(id, amount)| {
            opp(
                id,
                json!({ "Amount": number(amount + Decimal::from(2500)) }),
            )
        })
        .collect();
    between.push(opp(&moved[0].0, json!({"CloseDate": moved[0].1})));
    (before, between)
}

fn number(d: Decimal) -> Value {
    Value::Number(serde_json::Number::from_str(&d.to_string()).unwrap())
}

/// One trial: a synced org, the `before` change, a cycle aborted at `point`, the `between`
/// change when given, then one cycle that must leave the CRM equal to `want`. Returns false
/// when the run meant to abort finished instead: the write-back has fewer points than `point`.
async fn trial(
    settings: &str,
    point: u64,
    before: &Changes,
    between: Option<&Changes>,
    want: &CrmState,
) -> bool {
    let org = Org::synced(settings).await;
    apply(&org.crm, before).await;
    let (code, stdout, stderr) = sync(&org.config, Some(point)).await;
    if code == Some(0) {
        org.emulator.shutdown().await;
        return false;
    }
    assert!(
        code.is_none() && stdout.is_empty(),
        "point {point}: the run was not killed ({code:?}):\n{stdout}\n{stderr}"
    );
    let at_crash = CrmState::read(&org.crm).await;
    if let Some(between) = between {
        apply(&org.crm, between).await;
    }

    let report = sync_ok(&org.config).await;
    let after = CrmState::read(&org.crm).await;
    let differences = after.differences(want);
    let label = if between.is_some() {
        "with a CRM change"
    } else {
        "without a CRM change"
    };
    assert!(
        differences.is_empty(),
        "abort at point {point}, {label}: the cycle after the crash left {} difference(s) from a clean run:\n{}\nreport: {report}",
        differences.len(),
        differences.join("\n")
    );
    assert_eq!(
        org.unsettled_writes(),
        0,
        "abort at point {point}, {label}: writes are still queued after a cycle that exited 0"
    );
    if between.is_none() {
        // Plans whose new values had reached the CRM before the crash keep their change time.
        for (plan, stamp) in &at_crash.changed_at {
            if at_crash.plan_matches(want, plan) {
                assert_eq!(
                    after.changed_at[plan], *stamp,
                    "abort at point {point}: plan {plan} already held its values, yet {CHANGED_AT} moved"
                );
            }
        }
    }
    // And the cycle after that has nothing left to write.
    let next = sync_ok(&org.config).await;
    assert_eq!(
        next["records_written"], 0,
        "abort at point {point}, {label}: the next cycle still wrote: {next}"
    );
    org.emulator.shutdown().await;
    true
}

#[cfg(debug_assertions)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_cycle_after_a_crash_mid_write_back_leaves_the_crm_as_a_clean_run_would() {
    // Two points per batch, at least two batches of 4 for the plans and one for the links.
    drill("batch_size = 4", 6).await;
}

#[cfg(debug_assertions)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_cycle_after_a_crash_mid_ingest_job_leaves_the_crm_as_a_clean_run_would() {
    // Every write-back through Bulk ingest jobs: two points per job, a job for the plans and
    // one for the links.
    drill("bulk_min_writes = 1", 4).await;
}

/// Kills the binary at every drill point of the write-back, with the `[sync]` settings
/// `settings`, and checks the cycle after each crash; `min_points` is the fewest points the
/// write-back must have.
async fn drill(settings: &str, min_points: u64) {
    let started = Instant::now();
    // The reference: the same org and changes, synced without a crash.
    let reference = Org::synced(settings).await;
    let first = CrmState::read(&reference.crm).await;
    let (before, between) = drill_changes(&reference.crm, &first).await;
    apply(&reference.crm, &before).await;
    let written = sync_ok(&reference.config).await;
    let records = written["records_written"].as_u64().unwrap();
    assert!(
        records >= 10,
        "the drill's write-back is too small: {written}"
    );
    let want_unchanged = CrmState::read(&reference.crm).await;
    apply(&reference.crm, &between).await;
    sync_ok(&reference.config).await;
    let want_changed = CrmState::read(&reference.crm).await;
    assert!(
        !want_changed.differences(&want_unchanged).is_empty(),
        "the change between crash and restart must move values"
    );
    reference.emulator.shutdown().await;

    // Every abort point, with and without a CRM change before the restart, two at a time.
    let mut point = 1;
    let points_seen = 'points: loop {
        assert!(point < 40, "the drill never ran to completion");
        let mut set = tokio::task::JoinSet::new();
        for variant in [false, true] {
            let (before, between, settings) =
                (before.clone(), between.clone(), settings.to_string());
            let want = if variant {
                want_changed.clone()
            } else {
                want_unchanged.clone()
            };
            set.spawn(async move {
                trial(
                    &settings,
                    point,
                    &before,
                    variant.then_some(&between),
                    &want,
                )
                .await
            });
        }
        let mut completed = false;
        while let Some(done) = set.join_next().await {
            completed |= !done.unwrap();
        }
        if completed {
            break 'points point - 1;
        }
        point += 1;
    };
    assert!(points_seen >= min_points, "only {points_seen} abort points");
    eprintln!(
        "crash drill ({settings}): {points_seen} abort points, {} trials, {:?}",
        2 * points_seen,
        started.elapsed()
    );
}
