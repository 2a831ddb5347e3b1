//! `plansync sync` end to end: the real binary against the emulator on 127.0.0.1 with an
//! OS-assigned port and a real SQLite file, every result checked through the CRM's REST API
//! (never through plansync's own store).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use plansync::emulator::{Emulator, RunningEmulator};
use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::common::{plansync, write_config, Acme, Crm};

/// `plansync sync --json` with extra flags; asserts it exits 0 and returns the report.
async fn sync_json(config: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["sync", "--config", config.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    let (ok, stdout, stderr) = plansync(&args).await;
    assert!(ok, "plansync sync failed:\n{stderr}\n{stdout}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{stdout}"))
}

fn dec(v: &Value) -> Option<Decimal> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(Decimal::from_str(s).unwrap()),
        Value::Number(n) => Some(
            Decimal::from_str(&n.to_string())
                .or_else(|_| Decimal::from_scientific(&n.to_string()))
                .unwrap(),
        ),
        other => panic!("not a number: {other}"),
    }
}

/// Values equal as the CRM holds them: numbers by value, everything else exactly.
fn same(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::Null, Value::Null) => true,
        (Value::String(e), Value::String(a)) => e == a || dec(expected) == dec(actual),
        (Value::String(_) | Value::Number(_), Value::Number(_)) => dec(expected) == dec(actual),
        _ => expected == actual,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn golden_org_is_linked_and_rolled_up_as_the_rules_say() {
    let expected: Value =
        serde_json::from_str(include_str!("../fixtures/golden/expected.json")).unwrap();
    let as_of = expected["as_of"].as_str().unwrap();
    let emulator = Emulator::builder().seed("golden").start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &emulator);

    let first = sync_json(&config, &["--full", "--as-of", as_of]).await;
    assert_eq!(first["write_failures"], json!([]), "{first}");
    // The default `auto` mode on a single-currency org (the CRM knows no CurrencyType).
    assert_eq!(first["currency_mode"], "single", "{first}");
    assert!(first["links_changed"].as_u64().unwrap() > 0);
    assert_eq!(first["objects"]["opportunity"]["pulled"], 260);

    let crm = Crm::connect(&emulator).await;
    let links: BTreeMap<String, Value> = crm
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
    let mut wrong = Vec::new();
    for (opp, plan) in expected["links"].as_object().unwrap() {
        if links.get(opp) != Some(plan) {
            wrong.push(format!(
                "{opp}: expected {plan}, CRM has {:?}",
                links.get(opp)
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} links differ:\n{}",
        wrong.len(),
        wrong.join("\n")
    );

    for (plan_id, fields) in expected["rollups"].as_object().unwrap() {
        let record = crm.get("Account_Plan__c", plan_id).await;
        for (field, want) in fields.as_object().unwrap() {
            assert!(
                same(want, &record[field]),
                "plan {plan_id} {field}: expected {want}, CRM has {}",
                record[field]
            );
        }
        assert!(
            record["Rollups_Changed_At__c"].is_string(),
            "plan {plan_id} has no Rollups_Changed_At__c"
        );
    }

    // Nothing changed in the CRM: the second cycle writes nothing.
    let second = sync_json(&config, &["--as-of", as_of]).await;
    assert_eq!(second["fields_written"], 0, "{second}");
    assert_eq!(second["links_changed"], 0, "{second}");
    emulator.shutdown().await;
}

/// A small hand-built org: account A with child B; plan PA on A (with child accounts) for
/// 2026, plan PB on B for Q3 2026.
struct Scenario {
    emulator: RunningEmulator,
    crm: Crm,
    _dir: tempfile::TempDir,
    config: PathBuf,
    account_b: String,
    plan_a: String,
    plan_b: String,
    won_a: String,
    open_b_q3: String,
    open_b_nov: String,
    plan_c: String,
}

const AS_OF: &str = "2026-08-15";

impl Scenario {
    async fn new() -> Scenario {
        let emulator = Emulator::builder().seed("empty").start().await.unwrap();
        let crm = Crm::connect(&emulator).await;
        let Acme {
            account_b,
            plan_a,
            plan_b,
            won_a,
            open_b_q3,
            open_b_nov,
            ..
        } = Acme::create(&crm).await;
        // An unrelated account and plan: no change below touches it.
        let account_c = crm.create("Account", json!({"Name": "Globex"})).await;
        let plan_c = crm
            .create(
                "Account_Plan__c",
                json!({"Name": "Globex 2026", "Account__c": account_c, "Status__c": "Active",
                       "Period_Start__c": "2026-01-01", "Period_End__c": "2026-12-31",
                       "Revenue_Target__c": 10000}),
            )
            .await;
        crm.create(
            "Opportunity",
            json!({"Name": "Globex renewal", "AccountId": account_c, "CloseDate": "2026-09-01",
                   "StageName": "Qualification", "Amount": 5000}),
        )
        .await;
        let dir = tempfile::tempdir().unwrap();
        let config = write_config(dir.path(), &emulator);
        Scenario {
            emulator,
            crm,
            _dir: dir,
            config,
            account_b,
            plan_a,
            plan_b,
            won_a,
            open_b_q3,
            open_b_nov,
            plan_c,
        }
    }

    async fn sync(&self) -> Value {
        let report = sync_json(&self.config, &["--as-of", AS_OF]).await;
        assert_eq!(report["write_failures"], json!([]), "{report}");
        report
    }

    async fn link(&self, opp: &str) -> Value {
        self.crm.get("Opportunity", opp).await["Account_Plan__c"].clone()
    }

    async fn plan(&self, id: &str) -> Value {
        self.crm.get("Account_Plan__c", id).await
    }
}

fn assert_amount(record: &Value, field: &str, want: &str) {
    assert_eq!(
        dec(&record[field]),
        Some(Decimal::from_str(want).unwrap()),
        "{field} of {}: {}",
        record["Name"],
        record[field]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_crm_change_moves_exactly_the_right_numbers() {
    let s = Scenario::new().await;
    let first = s.sync().await;
    assert_eq!(first["plans_recomputed"], 3, "{first}");

    // Direct membership beats hierarchy: August on B goes to B's Q3 plan; November is outside
    // Q3, so it goes to A's plan through the hierarchy.
    assert_eq!(s.link(&s.won_a).await, json!(s.plan_a));
    assert_eq!(s.link(&s.open_b_q3).await, json!(s.plan_b));
    assert_eq!(s.link(&s.open_b_nov).await, json!(s.plan_a));
    let a = s.plan(&s.plan_a).await;
    assert_amount(&a, "Won_Amount__c", "10000");
    assert_amount(&a, "Open_Pipeline__c", "30000");
    // Negotiation/Review defaults to 90 %.
    assert_amount(&a, "Weighted_Pipeline__c", "27000");
    assert_amount(&a, "New_Sales_Needed__c", "90000");
    // Close ratio 50 %: 90000 / 0.5.
    assert_amount(&a, "Pipeline_Needed__c", "180000");
    assert_amount(&a, "Pipeline_Gap__c", "150000");
    assert_amount(&a, "Coverage_Ratio__c", "0.33");
    assert_amount(&a, "Attainment__c", "10");
    let b = s.plan(&s.plan_b).await;
    assert_amount(&b, "Open_Pipeline__c", "20000");
    assert_amount(&b, "Weighted_Pipeline__c", "2000");
    // No close ratio and no win history: the default 25 %.
    assert_amount(&b, "Pipeline_Needed__c", "200000");

    // A close date moves out of Q3: the opportunity moves to A's plan, both plans change.
    s.crm
        .update(
            "Opportunity",
            &s.open_b_q3,
            json!({"CloseDate": "2026-10-15"}),
        )
        .await;
    let report = s.sync().await;
    assert_eq!(report["links_changed"], 1, "{report}");
    // Only the two plans the move touches are recomputed, not Globex's.
    assert_eq!(report["plans_recomputed"], 2, "{report}");
    assert_eq!(s.link(&s.open_b_q3).await, json!(s.plan_a));
    assert_amount(&s.plan(&s.plan_a).await, "Open_Pipeline__c", "50000");
    assert_amount(&s.plan(&s.plan_b).await, "Open_Pipeline__c", "0");
    assert_eq!(s.plan(&s.plan_b).await["Open_Count__c"], json!(0));

    // A stage change: November is won.
    s.crm
        .update(
            "Opportunity",
            &s.open_b_nov,
            json!({"StageName": "Closed Won"}),
        )
        .await;
    s.sync().await;
    let a = s.plan(&s.plan_a).await;
    assert_amount(&a, "Won_Amount__c", "40000");
    assert_amount(&a, "Open_Pipeline__c", "20000");

    // A deleted opportunity leaves the plan's numbers.
    s.crm.delete("Opportunity", &s.won_a).await;
    s.sync().await;
    assert_amount(&s.plan(&s.plan_a).await, "Won_Amount__c", "30000");

    // B leaves A's hierarchy: its opportunities outside Q3 lose their link.
    s.crm
        .update("Account", &s.account_b, json!({"ParentId": null}))
        .await;
    s.sync().await;
    assert_eq!(s.link(&s.open_b_nov).await, Value::Null);
    assert_eq!(s.link(&s.open_b_q3).await, Value::Null);
    assert_amount(&s.plan(&s.plan_a).await, "Won_Amount__c", "0");

    // B's plan period grows to the year: both come back, to B's plan.
    s.crm
        .update(
            "Account_Plan__c",
            &s.plan_b,
            json!({"Period_End__c": "2026-12-31"}),
        )
        .await;
    s.sync().await;
    assert_eq!(s.link(&s.open_b_nov).await, json!(s.plan_b));
    assert_eq!(s.link(&s.open_b_q3).await, json!(s.plan_b));
    let b = s.plan(&s.plan_b).await;
    assert_amount(&b, "Won_Amount__c", "30000");
    assert_amount(&b, "Open_Pipeline__c", "20000");

    // Deleting the plan empties the links that pointed at it.
    s.crm.delete("Account_Plan__c", &s.plan_b).await;
    s.sync().await;
    assert_eq!(s.link(&s.open_b_nov).await, Value::Null);
    assert_eq!(s.link(&s.open_b_q3).await, Value::Null);

    // And with nothing changed, nothing is recomputed or written.
    let report = s.sync().await;
    assert_eq!(report["fields_written"], 0, "{report}");
    assert_eq!(report["plans_recomputed"], 0, "{report}");
    assert_amount(&s.plan(&s.plan_c).await, "Open_Pipeline__c", "5000");

    // The first cycle of a new day recomputes every plan: activity dates age by themselves.
    let next_day = sync_json(&s.config, &["--as-of", "2026-08-16"]).await;
    assert_eq!(next_day["plans_recomputed"], 2, "{next_day}");
    s.emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_prints_the_changes_and_writes_nothing() {
    let s = Scenario::new().await;
    let config = s.config.to_str().unwrap();
    let (ok, stdout, stderr) =
        plansync(&["sync", "--config", config, "--dry-run", "--as-of", AS_OF]).await;
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains(&format!(
            "Opportunity {} (Won in March) Account_Plan__c: null -> \"{}\"",
            s.won_a, s.plan_a
        )),
        "{stdout}"
    );
    assert!(stdout.contains("Won_Amount__c: null -> 10000"), "{stdout}");
    // Nothing reached the CRM.
    assert_eq!(s.link(&s.won_a).await, Value::Null);
    assert_eq!(s.plan(&s.plan_a).await["Won_Amount__c"], Value::Null);
    // A real cycle afterwards still has everything to write.
    let report = s.sync().await;
    assert!(report["fields_written"].as_u64().unwrap() > 0);

    // A dry run refreshes the local mirror: the real cycle after it must still recompute the
    // plans its changes touch.
    s.crm
        .update("Opportunity", &s.won_a, json!({"Amount": 12000}))
        .await;
    let (ok, _, stderr) =
        plansync(&["sync", "--config", config, "--dry-run", "--as-of", AS_OF]).await;
    assert!(ok, "{stderr}");
    s.sync().await;
    assert_amount(&s.plan(&s.plan_a).await, "Won_Amount__c", "12000");
    s.emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_the_crm_refuses_is_reported_and_the_rest_are_written() {
    let s = Scenario::new().await;
    s.emulator
        .with_org(|org| org.set_validation_failure(Some("Acme Europe Q3".into())));
    let report = sync_json(&s.config, &["--as-of", AS_OF]).await;
    let failures = report["write_failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{report}");
    assert_eq!(failures[0]["record_id"], json!(s.plan_b));
    assert_eq!(
        failures[0]["status_code"],
        json!("FIELD_CUSTOM_VALIDATION_EXCEPTION")
    );
    assert_eq!(failures[0]["permanent"], json!(true));
    // Everything else was written.
    assert_eq!(s.link(&s.open_b_q3).await, json!(s.plan_b));
    assert_amount(&s.plan(&s.plan_a).await, "Won_Amount__c", "10000");
    assert_eq!(s.plan(&s.plan_b).await["Open_Pipeline__c"], Value::Null);

    // A permanent refusal is not retried while its inputs are unchanged.
    let again = sync_json(&s.config, &["--as-of", AS_OF]).await;
    assert_eq!(again["write_failures"], json!([]), "{again}");
    assert_eq!(again["fields_written"], 0, "{again}");

    // Once the record changes in the CRM (an admin fixes what the rule checks), it is.
    s.emulator.with_org(|org| org.set_validation_failure(None));
    s.crm
        .update(
            "Account_Plan__c",
            &s.plan_b,
            json!({"Name": "Acme Europe Q3 (fixed)"}),
        )
        .await;
    s.sync().await;
    assert_amount(&s.plan(&s.plan_b).await, "Open_Pipeline__c", "20000");
    s.emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cycle_that_cannot_complete_exits_non_zero_and_says_why() {
    let emulator = Emulator::builder().seed("empty").start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &emulator);
    let path = config.to_str().unwrap();

    // A key the configuration does not have: exit 2, naming the key.
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        std::fs::read_to_string(&config).unwrap() + "\n[rollups]\nclose_ratio = 5\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_plansync"))
        .args(["sync", "--config", bad.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("close_ratio"), "{stderr}");

    // The CRM refuses the credentials: exit 1 with the CRM's reason.
    std::fs::write(dir.path().join("client_secret"), "not-the-secret").unwrap();
    let (ok, _, stderr) = plansync(&["sync", "--config", path]).await;
    assert!(!ok);
    assert!(stderr.contains("invalid_client"), "{stderr}");
    std::fs::write(dir.path().join("client_secret"), emulator.client_secret()).unwrap();

    // The org's API usage is past [limits] max_api_usage_percent: exit 3, cursors untouched.
    emulator.set_api_usage(90_000);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_plansync"))
        .args(["sync", "--config", path])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("API usage"), "{stderr}");
    emulator.set_api_usage(0);
    let report = sync_json(&config, &[]).await;
    assert_eq!(report["stopped_early"], Value::Null, "{report}");

    // The CRM is gone: exit 1 after the retries, saying it could not connect.
    let base = emulator.base_url().to_string();
    emulator.shutdown().await;
    let (ok, _, stderr) = plansync(&["sync", "--config", path]).await;
    assert!(!ok);
    assert!(stderr.contains(&base), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_are_upserted_once_per_plan_and_date() {
    let s = Scenario::new().await;
    s.sync().await;
    let config = plansync::config::load(&s.config).unwrap();
    let mut engine = plansync::cli::sync::engine_from_config(&config).unwrap();
    let date = chrono::NaiveDate::from_ymd_opt(2026, 8, 31).unwrap();
    let report = engine.snapshot(date, false).await.unwrap();
    assert_eq!(report.snapshots, 3);
    assert!(
        report.write_failures.is_empty(),
        "{:?}",
        report.write_failures
    );
    // A repeated run (say, after a crash) updates the same records.
    engine.snapshot(date, false).await.unwrap();
    let rows = s
        .crm
        .query(
            "SELECT Snapshot_Key__c, Won_Amount__c, Open_Pipeline__c FROM Account_Plan_Snapshot__c",
        )
        .await;
    assert_eq!(rows.len(), 3, "{rows:?}");
    let a = rows
        .iter()
        .find(|r| r["Snapshot_Key__c"] == json!(format!("{}:2026-08-31", s.plan_a)))
        .unwrap();
    assert_amount(a, "Won_Amount__c", "10000");
    assert_amount(a, "Open_Pipeline__c", "30000");

    // A change the snapshot run pulled (but, writing only snapshots, did not write) still
    // reaches the plan on the next cycle.
    s.crm
        .update("Opportunity", &s.won_a, json!({"Amount": 15000}))
        .await;
    // (On the cycles' own date, so only the snapshot run's own bookkeeping could tell the next
    // cycle that the plan must be recomputed.)
    let as_of = chrono::NaiveDate::parse_from_str(AS_OF, "%Y-%m-%d").unwrap();
    engine.snapshot(as_of, false).await.unwrap();
    assert_amount(&s.plan(&s.plan_a).await, "Won_Amount__c", "10000");
    drop(engine);
    s.sync().await;
    assert_amount(&s.plan(&s.plan_a).await, "Won_Amount__c", "15000");
    s.emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amounts_in_other_currencies_convert_to_the_plans_currency() {
    let emulator = Emulator::builder()
        .seed("empty")
        .multi_currency("USD")
        .start()
        .await
        .unwrap();
    let crm = Crm::connect(&emulator).await;
    let rate: BTreeMap<String, Decimal> = crm
        .query("SELECT IsoCode, ConversionRate FROM CurrencyType")
        .await
        .iter()
        .map(|r| {
            (
                r["IsoCode"].as_str().unwrap().to_string(),
                dec(&r["ConversionRate"]).unwrap(),
            )
        })
        .collect();
    let account = crm.create("Account", json!({"Name": "Acme"})).await;
    let plan = crm
        .create(
            "Account_Plan__c",
            json!({"Name": "Acme 2026", "Account__c": account, "Status__c": "Active",
                   "CurrencyIsoCode": "USD", "Revenue_Target__c": 100000,
                   "Period_Start__c": "2026-01-01", "Period_End__c": "2026-12-31"}),
        )
        .await;
    crm.create(
        "Opportunity",
        json!({"Name": "Won in euros", "AccountId": account, "CloseDate": "2026-03-01",
               "StageName": "Closed Won", "Amount": 900, "CurrencyIsoCode": "EUR"}),
    )
    .await;
    crm.create(
        "Opportunity",
        json!({"Name": "Open in pounds", "AccountId": account, "CloseDate": "2026-10-01",
               "StageName": "Prospecting", "Amount": 1000, "CurrencyIsoCode": "GBP"}),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    // The default `auto` mode: CurrencyType exists and DatedConversionRate has no rows, so
    // the cycle converts at the static rates.
    let config = write_config(dir.path(), &emulator);

    let report = sync_json(&config, &["--as-of", AS_OF]).await;
    assert_eq!(report["write_failures"], json!([]), "{report}");
    assert_eq!(report["currency_mode"], "static", "{report}");
    // x in c is x × r(P) / r(c) in the plan's currency P (design.md §3.5).
    let usd = |amount: i64, code: &str| {
        (Decimal::from(amount) * rate["USD"] / rate[code])
            .round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
    };
    let p = crm.get("Account_Plan__c", &plan).await;
    assert_ne!(rate["EUR"], rate["USD"]);
    assert_eq!(dec(&p["Won_Amount__c"]), Some(usd(900, "EUR")), "{p}");
    assert_eq!(dec(&p["Open_Pipeline__c"]), Some(usd(1000, "GBP")), "{p}");

    // `plan` explains the same converted numbers, from the rates the cycle kept.
    let (ok, stdout, stderr) = plansync(&[
        "plan",
        &plan,
        "--config",
        config.to_str().unwrap(),
        "--as-of",
        AS_OF,
    ])
    .await;
    assert!(ok, "{stderr}");
    let won = plansync::cli::plans::money(usd(900, "EUR"));
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("Won_Amount__c") && l.contains(&won)),
        "no Won_Amount__c line with {won}:\n{stdout}"
    );
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_write_no_longer_wanted_is_set_aside_not_sent() {
    let s = Scenario::new().await;
    s.sync().await;
    // A user locks the August opportunity on A's plan instead of B's.
    s.crm
        .update(
            "Opportunity",
            &s.open_b_q3,
            json!({"Account_Plan__c": s.plan_a, "Plan_Link_Locked__c": true}),
        )
        .await;
    // Meanwhile the outbox still holds an older link write for it (left by a run that
    // crashed before sending it, or refused it for a row lock).
    let db = s.config.with_file_name("plansync.db");
    {
        let mut store = plansync::store::Store::open(&db).unwrap();
        store
            .enqueue(
                &[plansync::store::NewWrite {
                    object: "Opportunity".into(),
                    record_id: s.open_b_q3.clone(),
                    kind: plansync::store::WriteKind::Update,
                    fields: serde_json::from_value(json!({"Account_Plan__c": s.plan_b})).unwrap(),
                    reason: "link".into(),
                }],
                chrono::Utc::now(),
            )
            .unwrap();
    }
    s.sync().await;
    // The user's locked link stands, and the old write is settled, not pending.
    assert_eq!(s.link(&s.open_b_q3).await, json!(s.plan_a));
    let store = plansync::store::Store::open(&db).unwrap();
    assert!(store.unsettled_writes().unwrap().is_empty());
    s.emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_request_the_crm_refuses_whole_does_not_stop_later_cycles() {
    let s = Scenario::new().await;
    // The snapshot object is mapped to one the org does not have.
    let text = std::fs::read_to_string(&s.config).unwrap()
        + "\n[mapping.snapshot]\nobject = \"Missing_Snapshot__c\"\n";
    std::fs::write(&s.config, text).unwrap();
    let config = s.config.to_str().unwrap();
    let (ok, stdout, stderr) = plansync(&[
        "snapshot",
        "--config",
        config,
        "--date",
        "2026-08-31",
        "--json",
    ])
    .await;
    assert!(ok, "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    let failures = report["write_failures"].as_array().unwrap();
    assert_eq!(failures.len(), 3, "{report}");
    assert!(
        failures.iter().all(|f| f["permanent"] == json!(true)),
        "{report}"
    );
    // A snapshot run writes nothing but snapshots: the plans are untouched ...
    assert_eq!(s.plan(&s.plan_a).await["Won_Amount__c"], Value::Null);
    // ... and the next cycles go on, writing rollups and links.
    s.sync().await;
    assert_amount(&s.plan(&s.plan_a).await, "Won_Amount__c", "10000");
    s.crm
        .update(
            "Opportunity",
            &s.open_b_q3,
            json!({"CloseDate": "2026-10-15"}),
        )
        .await;
    s.sync().await;
    assert_eq!(s.link(&s.open_b_q3).await, json!(s.plan_a));
    s.emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_that_times_out_is_pulled_in_windows() {
    let s = Scenario::new().await;
    // After a first sync, request 1 of a cycle is the composite read of the org's currencies
    // and the first three objects; request 2 carries the queries of the other four,
    // opportunities first: each of them times out.
    s.sync().await;
    s.emulator.set_faults_str("timeout@2").unwrap();
    let report = s.sync().await;
    assert_eq!(report["objects"]["opportunity"]["pulled"], 4, "{report}");
    assert!(
        report["objects"]["opportunity"]["pages"].as_u64().unwrap() >= 2,
        "{report}"
    );
    assert_eq!(s.link(&s.won_a).await, json!(s.plan_a));
    s.emulator.shutdown().await;
}

/// The plan's Sync_Problem__c, as the CRM holds it.
async fn sync_problem(crm: &Crm, plan: &str) -> Value {
    crm.get("Account_Plan__c", plan).await["Sync_Problem__c"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_frozen_by_a_dated_rate_gap_says_why_in_the_crm_until_it_computes_again() {
    let emulator = Emulator::builder()
        .seed("empty")
        .multi_currency("USD")
        .start()
        .await
        .unwrap();
    let crm = Crm::connect(&emulator).await;
    // The org's JPY periods start in 2026: unlike a real org's first period, nothing covers
    // 2025 (an anomaly of the org's data).
    crm.create(
        "DatedConversionRate",
        json!({"IsoCode": "JPY", "ConversionRate": 150, "StartDate": "2026-01-01"}),
    )
    .await;
    let account = crm.create("Account", json!({"Name": "Kyoto"})).await;
    let plan = crm
        .create(
            "Account_Plan__c",
            json!({"Name": "Kyoto FY26", "Account__c": account, "Status__c": "Active",
                   "CurrencyIsoCode": "USD", "Revenue_Target__c": 100000,
                   "Period_Start__c": "2025-07-01", "Period_End__c": "2026-06-30"}),
        )
        .await;
    crm.create(
        "Opportunity",
        json!({"Name": "Won in dollars", "AccountId": account, "CloseDate": "2026-02-01",
               "StageName": "Closed Won", "Amount": 1000, "CurrencyIsoCode": "USD"}),
    )
    .await;
    let open = crm
        .create(
            "Opportunity",
            json!({"Name": "Open in December", "AccountId": account, "CloseDate": "2025-12-15",
                   "StageName": "Prospecting", "Amount": 3000, "CurrencyIsoCode": "USD"}),
        )
        .await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &emulator);

    // Everything converts: auto picks dated (the org has dated rates), rollups are written.
    let first = sync_json(&config, &["--as-of", AS_OF]).await;
    assert_eq!(first["currency_mode"], "dated", "{first}");
    let p = crm.get("Account_Plan__c", &plan).await;
    assert_amount(&p, "Won_Amount__c", "1000");
    assert_amount(&p, "Open_Pipeline__c", "3000");
    assert_eq!(p["Sync_Problem__c"], Value::Null, "{p}");
    let changed_at = p["Rollups_Changed_At__c"].clone();
    assert!(changed_at.is_string(), "{p}");

    // The December opportunity moves to yen: no JPY period covers 2025-12-15.
    crm.update(
        "Opportunity",
        &open,
        json!({"CurrencyIsoCode": "JPY", "Amount": 450000}),
    )
    .await;
    let frozen = sync_json(&config, &["--as-of", AS_OF]).await;
    assert!(
        frozen["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f.as_str().unwrap().contains(&open)
                && f.as_str().unwrap().contains("2025-12-15")),
        "{frozen}"
    );
    let p = crm.get("Account_Plan__c", &plan).await;
    assert_eq!(
        p["Sync_Problem__c"],
        json!(format!(
            "Rollups frozen: no JPY rate for 2025-12-15 (Opportunity {open})"
        )),
        "{p}"
    );
    // The rollups keep their last values, and a problem text is no rollup change.
    assert_amount(&p, "Won_Amount__c", "1000");
    assert_amount(&p, "Open_Pipeline__c", "3000");
    assert_eq!(p["Rollups_Changed_At__c"], changed_at, "{p}");
    // `status` names the opportunity, the currency and the date.
    let (ok, status, stderr) = plansync(&["status", "--config", config.to_str().unwrap()]).await;
    assert!(ok, "{stderr}");
    assert!(status.contains("dated_rate_gap"), "{status}");
    assert!(
        status.contains("Currency mode of the last cycle: dated"),
        "{status}"
    );
    // Nothing changed: nothing is written again.
    let again = sync_json(&config, &["--as-of", AS_OF]).await;
    assert_eq!(again["fields_written"], 0, "{again}");
    assert_eq!(
        sync_problem(&crm, &plan).await,
        p["Sync_Problem__c"],
        "still frozen"
    );

    // The opportunity's currency is fixed: the plan computes again and the problem clears.
    crm.update(
        "Opportunity",
        &open,
        json!({"CurrencyIsoCode": "USD", "Amount": 2500}),
    )
    .await;
    let fixed = sync_json(&config, &["--as-of", AS_OF]).await;
    assert_eq!(fixed["write_failures"], json!([]), "{fixed}");
    let p = crm.get("Account_Plan__c", &plan).await;
    assert_eq!(p["Sync_Problem__c"], Value::Null, "{p}");
    assert_amount(&p, "Open_Pipeline__c", "2500");
    assert_ne!(p["Rollups_Changed_At__c"], changed_at, "{p}");
    let (_, status, _) = plansync(&["status", "--config", config.to_str().unwrap()]).await;
    assert!(!status.contains("dated_rate_gap"), "{status}");
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_explicit_single_mode_on_a_multi_currency_org_is_reported_each_cycle_and_by_doctor() {
    let emulator = Emulator::builder()
        .seed("empty")
        .multi_currency("USD")
        .start()
        .await
        .unwrap();
    let crm = Crm::connect(&emulator).await;
    Acme::create(&crm).await;
    let dir = tempfile::tempdir().unwrap();
    let config = super::common::write_config_with(
        dir.path(),
        &emulator,
        "\n[currency]\nmode = \"single\"\n",
    );
    for _ in 0..2 {
        let report = sync_json(&config, &["--as-of", AS_OF]).await;
        assert_eq!(report["currency_mode"], "single", "{report}");
        assert!(
            report["findings"].as_array().unwrap().iter().any(|f| f
                .as_str()
                .unwrap()
                .contains("mode = \"single\" but the org is multi-currency")),
            "{report}"
        );
    }
    let (ok, out, _) = plansync(&["doctor", "--config", config.to_str().unwrap()]).await;
    assert!(!ok, "{out}");
    assert!(
        out.contains("PROBLEM  currency: [currency] mode = \"single\""),
        "{out}"
    );
    assert!(out.contains("fix: set [currency] mode = \"auto\""), "{out}");
    emulator.shutdown().await;
}
