//! API economy, counted by the emulator (deterministic, never timed): an unchanged
//! incremental cycle, a 1% change, writes of 1,000 records per call, the delete log read in
//! the nightly full run only, an org that refuses the composite resource, and full pulls
//! through Bulk API 2.0 query jobs giving what REST gives.

use std::collections::BTreeMap;
use std::path::Path;

use plansync::emulator::{Emulator, RunningEmulator};
use plansync::store::Store;
use plansync::sync::{Names, ObjectKind};
use serde_json::{json, Map, Value};

use super::common::{plansync, write_config_with, Acme, Crm};

/// `plansync sync --json` with extra flags; asserts it exits 0 and returns the report.
async fn sync_json(config: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["sync", "--config", config.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    let (ok, stdout, stderr) = plansync(&args).await;
    assert!(ok, "plansync sync failed:\n{stderr}\n{stdout}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{stdout}"))
}

/// Data API calls the emulator counted while `run` ran, and the report it returned.
async fn counted<F: std::future::Future<Output = Value>>(
    emulator: &RunningEmulator,
    run: F,
) -> (u64, Value) {
    let before = emulator.api_usage().0;
    let report = run.await;
    (emulator.api_usage().0 - before, report)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unchanged_cycle_costs_two_calls_and_the_delete_log_waits_for_the_nightly_run() {
    // A multi-currency org: the cycle reads CurrencyType and DatedConversionRate besides the
    // seven objects, nine queries in all.
    let emulator = Emulator::builder()
        .seed("demo")
        .multi_currency("USD")
        .start()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config_with(dir.path(), &emulator, "");

    let (full_calls, first) = counted(&emulator, sync_json(&config, &["--full"])).await;
    assert_eq!(first["stopped_early"], Value::Null, "{first}");
    assert_eq!(
        emulator.calls().get_deleted,
        0,
        "a first sync has no log to read"
    );

    // Nothing changed: the queries share two composite calls; no delete log, no /limits.
    let (calls, quiet) = counted(&emulator, sync_json(&config, &[])).await;
    assert!(calls <= 2, "an unchanged cycle made {calls} calls: {quiet}");
    assert_eq!(quiet["records_written"], 0, "{quiet}");
    assert!(
        quiet["api_calls"].as_u64().unwrap() <= 3,
        "two calls and a token at most: {quiet}"
    );
    let (again, _) = counted(&emulator, sync_json(&config, &[])).await;
    assert!(again <= 2, "{again}");
    assert_eq!(
        emulator.calls().get_deleted,
        0,
        "incremental cycles read no delete log"
    );
    assert_eq!(
        emulator.calls().limits,
        0,
        "the usage comes from Sforce-Limit-Info"
    );

    // A 1% change: its pages ride the same two reads; the writes take a call per object.
    let crm = Crm::connect(&emulator).await;
    let opportunities = crm
        .query(
            "SELECT Id, Amount FROM Opportunity WHERE IsClosed = false AND Account_Plan__c != null \
             ORDER BY Id",
        )
        .await;
    let all = crm.query("SELECT Id FROM Opportunity").await.len();
    let step = (opportunities.len() * 100 / all.max(1)).max(1);
    let mut changed = 0;
    for opportunity in opportunities.iter().step_by(step) {
        let amount = opportunity["Amount"].as_f64().unwrap_or(0.0) + 1000.0;
        crm.update(
            "Opportunity",
            opportunity["Id"].as_str().unwrap(),
            json!({ "Amount": amount }),
        )
        .await;
        changed += 1;
    }
    let (change_calls, change) = counted(&emulator, sync_json(&config, &[])).await;
    assert!(change["records_written"].as_u64().unwrap() > 0, "{change}");
    assert!(
        change_calls <= 3,
        "{changed} changed opportunities cost {change_calls} calls: {change}"
    );
    eprintln!(
        "calls: full sync {full_calls}, unchanged cycle {calls}, 1% change ({changed} records) {change_calls}"
    );

    // The nightly full run reads the delete log of every object.
    sync_json(&config, &["--full"]).await;
    assert_eq!(emulator.calls().get_deleted, 7, "one read per object");
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_record_write_back_takes_one_write_call() {
    let emulator = Emulator::builder().seed("empty").start().await.unwrap();
    let crm = Crm::connect(&emulator).await;
    let account = crm.create("Account", json!({"Name": "Initech"})).await;
    let now = chrono::Utc::now();
    emulator.with_org(|org| {
        for n in 0..1000 {
            let fields: Map<String, Value> = json!({
                "Name": format!("Deal {n}"), "AccountId": account, "CloseDate": "2026-06-01",
                "StageName": "Prospecting", "Amount": 100 + n,
            })
            .as_object()
            .unwrap()
            .clone();
            org.create("Opportunity", &fields, now).unwrap();
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let config = write_config_with(dir.path(), &emulator, "");
    sync_json(&config, &["--full", "--as-of", "2026-05-15"]).await;

    // A closed plan on the account: every opportunity links to it (1,000 writes), and a
    // closed plan gets no rollups, so the write-back is exactly those links.
    crm.create(
        "Account_Plan__c",
        json!({"Name": "Initech 2026", "Account__c": account, "Status__c": "Closed",
               "Period_Start__c": "2026-01-01", "Period_End__c": "2026-12-31"}),
    )
    .await;
    let collections_before = emulator.calls().write;
    let (calls, report) = counted(&emulator, sync_json(&config, &["--as-of", "2026-05-15"])).await;
    assert_eq!(report["records_written"], 1000, "{report}");
    assert_eq!(report["write_failures"], json!([]), "{report}");
    assert_eq!(
        calls, 3,
        "two reads and ONE write call for 1,000 records: {report}"
    );
    assert_eq!(emulator.calls().write, collections_before);
    let linked = crm
        .query("SELECT Id FROM Opportunity WHERE Account_Plan__c != null")
        .await;
    assert_eq!(linked.len(), 1000);
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_org_without_composite_is_read_and_written_through_plain_rest() {
    let emulator = Emulator::builder().seed("empty").start().await.unwrap();
    let crm = Crm::connect(&emulator).await;
    let acme = Acme::create(&crm).await;
    emulator.refuse_composite(true);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config_with(dir.path(), &emulator, "");

    let report = sync_json(&config, &["--as-of", "2026-08-15"]).await;
    assert_eq!(report["stopped_early"], Value::Null, "{report}");
    assert!(report["records_written"].as_u64().unwrap() > 0, "{report}");
    assert_eq!(report["write_failures"], json!([]), "{report}");
    // One refused composite call for the process, then one request per query and batch.
    assert_eq!(emulator.calls().composite, 1);
    assert!(
        emulator.calls().query >= 9,
        "two currency and seven object queries"
    );
    assert!(emulator.calls().write >= 1);
    let plan = crm.get("Account_Plan__c", &acme.plan_a).await;
    assert_eq!(plan["Won_Amount__c"].as_f64(), Some(10000.0), "{plan}");
    let opportunity = crm.get("Opportunity", &acme.won_a).await;
    assert_eq!(opportunity["Account_Plan__c"], json!(acme.plan_a));
    emulator.shutdown().await;
}

/// Every record the store at `dir` mirrors, by object and Id: its fields as stored.
fn mirror(dir: &Path) -> BTreeMap<String, BTreeMap<String, Value>> {
    let store = Store::open(&dir.join("plansync.db")).unwrap();
    let names = Names::default();
    let mut all = BTreeMap::new();
    for kind in ObjectKind::ALL {
        let object = names.object(kind);
        let ids = store.live_ids(object).unwrap();
        let records = store.records_by_id(object, &ids).unwrap();
        let rows: BTreeMap<String, Value> = records
            .into_iter()
            .map(|(id, r)| (id, Value::Object(r.fields)))
            .collect();
        assert!(!rows.is_empty(), "{object} is empty");
        all.insert(object.to_string(), rows);
    }
    all
}

/// What a report says the run pulled and planned, for comparing two runs.
fn outcome(report: &Value) -> Value {
    json!({
        "objects": report["objects"].as_object().map(|o| o
            .iter()
            .map(|(k, v)| (k.clone(), v["pulled"].clone()))
            .collect::<Map<String, Value>>()),
        "plans_recomputed": report["plans_recomputed"],
        "links_changed": report["links_changed"],
        "records_would_write": report["records_would_write"],
        "fields_would_write": report["fields_would_write"],
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_sync_through_bulk_mirrors_and_computes_what_rest_does() {
    let emulator = Emulator::builder()
        .seed("demo")
        .multi_currency("USD")
        .start()
        .await
        .unwrap();
    let rest_dir = tempfile::tempdir().unwrap();
    let rest = write_config_with(rest_dir.path(), &emulator, "");
    let bulk_dir = tempfile::tempdir().unwrap();
    let bulk = write_config_with(bulk_dir.path(), &emulator, "\n[sync]\nbulk_min_rows = 1\n");
    let full_dry = ["--full", "--dry-run", "--as-of", "2026-08-15"];

    let by_rest = sync_json(&rest, &full_dry).await;
    assert_eq!(emulator.bulk_jobs_created(), 0, "below the threshold: REST");
    let by_bulk = sync_json(&bulk, &full_dry).await;
    assert_eq!(emulator.bulk_jobs_created(), 7, "one query job per object");
    assert_eq!(outcome(&by_bulk), outcome(&by_rest), "{by_bulk}\n{by_rest}");
    assert!(
        by_rest["records_would_write"].as_u64().unwrap() > 0,
        "{by_rest}"
    );
    let (rest_rows, bulk_rows) = (mirror(rest_dir.path()), mirror(bulk_dir.path()));
    for (object, rows) in &rest_rows {
        assert_eq!(rows.len(), bulk_rows[object].len(), "{object}");
        for (id, fields) in rows {
            assert_eq!(
                Some(fields),
                bulk_rows[object].get(id),
                "{object} {id} by REST and by Bulk"
            );
        }
    }

    // The plan values a Bulk-fed run writes are those a REST-fed run computes: after the
    // first, the second has nothing to write.
    let written = sync_json(&bulk, &["--full", "--as-of", "2026-08-15"]).await;
    assert!(
        written["records_written"].as_u64().unwrap() > 0,
        "{written}"
    );
    let after = sync_json(&rest, &["--full", "--as-of", "2026-08-15"]).await;
    assert_eq!(after["records_written"], 0, "{after}");
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_the_org_will_not_bulk_is_pulled_through_rest() {
    let emulator = Emulator::builder().seed("demo").start().await.unwrap();
    emulator.bulk().refuse_objects(&["Opportunity"]);
    let rest_dir = tempfile::tempdir().unwrap();
    let rest = write_config_with(rest_dir.path(), &emulator, "");
    let bulk_dir = tempfile::tempdir().unwrap();
    let bulk = write_config_with(bulk_dir.path(), &emulator, "\n[sync]\nbulk_min_rows = 1\n");
    let full_dry = ["--full", "--dry-run", "--as-of", "2026-08-15"];
    let by_rest = sync_json(&rest, &full_dry).await;
    let by_bulk = sync_json(&bulk, &full_dry).await;
    assert_eq!(by_bulk["stopped_early"], Value::Null, "{by_bulk}");
    assert_eq!(outcome(&by_bulk), outcome(&by_rest), "{by_bulk}\n{by_rest}");
    assert_eq!(
        emulator.bulk_jobs_created(),
        6,
        "every object but the refused one through Bulk"
    );
    assert_eq!(mirror(bulk_dir.path()), mirror(rest_dir.path()));
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_are_pulled_at_the_same_time_within_the_configured_bound() {
    for (concurrency, at_least, at_most) in [(1, 1, 1), (3, 2, 3)] {
        // Each request takes 50 ms, so requests sent together are served together.
        let emulator = Emulator::builder()
            .seed("demo")
            .latency(std::time::Duration::from_millis(50))
            .start()
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let config = write_config_with(
            dir.path(),
            &emulator,
            &format!("\n[sync]\nbulk_min_rows = 1\npull_concurrency = {concurrency}\n"),
        );
        let report = sync_json(&config, &["--full", "--dry-run", "--as-of", "2026-08-15"]).await;
        assert_eq!(report["stopped_early"], Value::Null, "{report}");
        assert_eq!(emulator.bulk_jobs_created(), 7);
        let most = emulator.most_concurrent_calls();
        assert!(
            (at_least..=at_most).contains(&most),
            "pull_concurrency = {concurrency}: {most} requests at once"
        );
        emulator.shutdown().await;
    }
}

/// The values plansync writes, as an org holds them: each opportunity's plan link and each
/// plan's rollups (their change time aside, it is the time of the run).
fn written_values(emulator: &RunningEmulator) -> BTreeMap<String, Value> {
    let names = Names::default();
    let written = names.written_fields();
    emulator.with_org(|org| {
        let mut values = BTreeMap::new();
        for (object, fields) in &written {
            for record in org.live_records(object) {
                let id = record["Id"].as_str().unwrap_or_default().to_string();
                let kept: Map<String, Value> = fields
                    .iter()
                    .filter(|f| **f != names.plan.rollups_changed_at)
                    .map(|f| (f.clone(), record.get(f).cloned().unwrap_or(Value::Null)))
                    .collect();
                values.insert(format!("{object} {id}"), Value::Object(kept));
            }
        }
        values
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_sync_written_back_through_ingest_jobs_leaves_what_composite_calls_leave() {
    let by_jobs = Emulator::builder().seed("demo").start().await.unwrap();
    let by_calls = Emulator::builder().seed("demo").start().await.unwrap();
    assert_eq!(written_values(&by_jobs), written_values(&by_calls));
    let jobs_dir = tempfile::tempdir().unwrap();
    let jobs = write_config_with(jobs_dir.path(), &by_jobs, "\n[sync]\nbulk_min_writes = 1\n");
    let calls_dir = tempfile::tempdir().unwrap();
    let calls = write_config_with(calls_dir.path(), &by_calls, "");
    let first = ["--as-of", "2026-08-15"];

    let (_, through_jobs) = counted(&by_jobs, sync_json(&jobs, &first)).await;
    let (_, through_calls) = counted(&by_calls, sync_json(&calls, &first)).await;
    let written = through_calls["records_written"].as_u64().unwrap();
    assert!(written > 20, "{through_calls}");
    assert_eq!(through_jobs["records_written"], written, "{through_jobs}");
    assert_eq!(through_jobs["write_failures"], json!([]), "{through_jobs}");
    // One job per object written (opportunity links, plan rollups), no write call.
    let ingest = by_jobs.ingest().summaries();
    assert_eq!(ingest.len(), 2, "{ingest:?}");
    assert_eq!(by_jobs.calls().write, 0);
    assert_eq!(written_values(&by_jobs), written_values(&by_calls));
    assert_ne!(
        written_values(&by_jobs),
        written_values(&Emulator::builder().seed("demo").start().await.unwrap()),
        "the first sync wrote links and rollups"
    );
    // The mirror holds what was written: the next cycle has nothing to write.
    let next = sync_json(&jobs, &first).await;
    assert_eq!(next["records_written"], 0, "{next}");
    by_jobs.shutdown().await;
    by_calls.shutdown().await;
}
