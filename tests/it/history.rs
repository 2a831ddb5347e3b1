//! What a plan looked like over time: the snapshot records' plan state and currency, and
//! `plansync plan --history`, end to end with the real binary against the emulator on
//! 127.0.0.1 with an OS-assigned port and a real SQLite file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::str::FromStr;

use plansync::emulator::Emulator;
use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::common::{plansync, write_config_with, Crm};

/// Runs `plansync <args> --config <config>`, asserting success; returns stdout.
async fn ok(args: &[&str], config: &Path) -> String {
    let mut all = args.to_vec();
    all.extend(["--config", config.to_str().unwrap()]);
    let (success, stdout, stderr) = plansync(&all).await;
    assert!(success, "plansync {all:?} failed:\n{stderr}\n{stdout}");
    stdout
}

/// Runs the command expecting failure; returns stderr.
async fn fails(args: &[&str], config: &Path) -> String {
    let mut all = args.to_vec();
    all.extend(["--config", config.to_str().unwrap()]);
    let (success, stdout, stderr) = plansync(&all).await;
    assert!(!success, "plansync {all:?} succeeded:\n{stdout}");
    stderr
}

/// A wire number or numeric string as a decimal.
fn dec(v: &Value) -> Option<Decimal> {
    match v {
        Value::String(s) => Decimal::from_str(s).ok(),
        Value::Number(n) => Decimal::from_str(&n.to_string())
            .or_else(|_| Decimal::from_scientific(&n.to_string()))
            .ok(),
        _ => None,
    }
}

fn money(d: Decimal) -> Decimal {
    d.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_of_a_eur_plan_in_a_usd_org_is_a_eur_record() {
    let emulator = Emulator::builder()
        .seed("empty")
        .multi_currency("USD")
        .start()
        .await
        .unwrap();
    let crm = Crm::connect(&emulator).await;
    let rate: BTreeMap<String, Decimal> = crm
        .query("SELECT IsoCode, ConversionRate, IsCorporate FROM CurrencyType")
        .await
        .iter()
        .map(|r| {
            (
                r["IsoCode"].as_str().unwrap().to_string(),
                dec(&r["ConversionRate"]).unwrap(),
            )
        })
        .collect();
    assert_eq!(rate["USD"], Decimal::ONE, "USD is the corporate currency");
    assert_ne!(rate["EUR"], Decimal::ONE);
    let account = crm.create("Account", json!({"Name": "Acme"})).await;
    // No Close_Ratio__c and no closed history: the default close ratio (25 %) applies.
    let plan = crm
        .create(
            "Account_Plan__c",
            json!({"Name": "Acme Europe 2026", "Account__c": account, "Status__c": "Active",
                   "CurrencyIsoCode": "EUR", "Revenue_Target__c": 100000,
                   "Period_Start__c": "2026-01-01", "Period_End__c": "2026-12-31"}),
        )
        .await;
    crm.create(
        "Opportunity",
        json!({"Name": "Won in dollars", "AccountId": account, "CloseDate": "2026-03-01",
               "StageName": "Closed Won", "Amount": 9000, "CurrencyIsoCode": "USD"}),
    )
    .await;
    crm.create(
        "Opportunity",
        json!({"Name": "Open in euros", "AccountId": account, "CloseDate": "2026-10-01",
               "StageName": "Prospecting", "Amount": 4000, "CurrencyIsoCode": "EUR"}),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config_with(dir.path(), &emulator, "\n[currency]\nmode = \"static\"\n");

    let out = ok(&["snapshot", "--date", "2026-08-15", "--json"], &config).await;
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["snapshots"], 1, "{report}");
    assert_eq!(report["write_failures"], json!([]), "{report}");

    let rows = crm
        .query(
            "SELECT Id, Snapshot_Key__c, CurrencyIsoCode, Won_Amount__c, Open_Pipeline__c, \
             Revenue_Target__c, Close_Ratio_Used__c, Plan_Status__c FROM Account_Plan_Snapshot__c",
        )
        .await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    let snap = &rows[0];
    assert_eq!(snap["Snapshot_Key__c"], json!(format!("{plan}:2026-08-15")));
    // The record says the currency its amounts are in: the plan's.
    assert_eq!(snap["CurrencyIsoCode"], "EUR", "{snap}");
    // 9000 USD is 9000 × r(EUR) / r(USD) euros (design.md §3.5); the open one is in euros.
    let won_eur = money(Decimal::from(9000) * rate["EUR"] / rate["USD"]);
    assert_eq!(dec(&snap["Won_Amount__c"]), Some(won_eur), "{snap}");
    assert_eq!(
        dec(&snap["Open_Pipeline__c"]),
        Some(Decimal::from(4000)),
        "{snap}"
    );
    // The plan's state on that date.
    assert_eq!(
        dec(&snap["Revenue_Target__c"]),
        Some(Decimal::from(100000)),
        "{snap}"
    );
    assert_eq!(
        dec(&snap["Close_Ratio_Used__c"]),
        Some(Decimal::from(25)),
        "{snap}"
    );
    assert_eq!(snap["Plan_Status__c"], "Active", "{snap}");
    // The same record read by Id over REST.
    let by_id = crm
        .get("Account_Plan_Snapshot__c", snap["Id"].as_str().unwrap())
        .await;
    assert_eq!(by_id["CurrencyIsoCode"], "EUR", "{by_id}");
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_history_shows_each_change_the_cycles_recorded() {
    let emulator = Emulator::builder().seed("empty").start().await.unwrap();
    let crm = Crm::connect(&emulator).await;
    let account = crm.create("Account", json!({"Name": "Acme"})).await;
    let plan = crm
        .create(
            "Account_Plan__c",
            json!({"Name": "Acme 2026", "Account__c": account, "Status__c": "Active",
                   "Revenue_Target__c": 100000, "Close_Ratio__c": 50,
                   "Period_Start__c": "2026-01-01", "Period_End__c": "2026-12-31"}),
        )
        .await;
    let draft = crm
        .create(
            "Account_Plan__c",
            json!({"Name": "Acme draft", "Account__c": account, "Status__c": "Draft",
                   "Period_Start__c": "2026-01-01", "Period_End__c": "2026-12-31"}),
        )
        .await;
    let opp = crm
        .create(
            "Opportunity",
            json!({"Name": "Big deal", "AccountId": account, "CloseDate": "2026-10-01",
                   "StageName": "Prospecting", "Amount": 20000}),
        )
        .await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config_with(dir.path(), &emulator, "");

    let today = chrono::Utc::now().date_naive();
    // Three cycles, each after a change of the opportunity's Amount.
    ok(&["sync"], &config).await;
    for amount in [30000, 45000] {
        crm.update("Opportunity", &opp, json!({"Amount": amount}))
            .await;
        ok(&["sync"], &config).await;
    }
    // A cycle with nothing changed, a dry run after a change and a snapshot record nothing.
    ok(&["sync"], &config).await;
    crm.update("Opportunity", &opp, json!({"Amount": 50000}))
        .await;
    ok(&["sync", "--dry-run"], &config).await;
    // A snapshot run computes the plans too, but writes (and records) no plan values.
    ok(&["snapshot"], &config).await;

    let out = ok(&["plan", &plan, "--history", "--json"], &config).await;
    let history: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}:\n{out}"));
    assert_eq!(history["plan_id"], json!(plan));
    assert_eq!(history["name"], "Acme 2026");
    let points = history["points"].as_array().unwrap();
    assert_eq!(points.len(), 3, "{history}");
    let open: Vec<Decimal> = points.iter().map(|p| dec(&p["open"]).unwrap()).collect();
    assert_eq!(open, [20000, 30000, 45000].map(Decimal::from), "{history}");
    assert_eq!(open.iter().collect::<BTreeSet<_>>().len(), 3);
    // Each point: when, which run, every metric as a decimal string (or null).
    let runs: Vec<i64> = points.iter().map(|p| p["run"].as_i64().unwrap()).collect();
    assert!(runs.windows(2).all(|w| w[0] < w[1]), "{runs:?}");
    for p in points {
        assert!(
            chrono::DateTime::parse_from_rfc3339(p["time"].as_str().unwrap()).is_ok(),
            "{p}"
        );
        for metric in ["won", "open", "weighted", "gap", "coverage", "attainment"] {
            assert!(p[metric].is_string(), "{metric} of {p}");
        }
    }
    // Prospecting is 10 %: weighted is 4500. Nothing won of a 100000 target at a 50 % close
    // ratio needs 200000 of pipeline: the gap is 200000 − 45000 open.
    assert_eq!(points[2]["weighted"], "4500.00");
    assert_eq!(points[2]["gap"], "155000.00");
    assert_eq!(points[0]["won"], "0.00");

    // As text, not on a terminal: a row per change and plain numbers, no sparkline.
    let text = ok(&["plan", &plan, "--history"], &config).await;
    for amount in ["20,000.00", "30,000.00", "45,000.00"] {
        assert!(
            text.lines().any(|l| l.contains(amount)),
            "no row with {amount}:\n{text}"
        );
    }
    assert!(
        !text.contains(plansync::cli::plan_cmd::SPARK_BARS),
        "{text}"
    );

    // --since: the start of a day in the org's time zone (UTC here).
    // (The day the test started, so a run across midnight cannot move a point past either.)
    let later = (today + chrono::Duration::days(2)).to_string();
    let out = ok(
        &["plan", &plan, "--history", "--json", "--since", &later],
        &config,
    )
    .await;
    let none_later: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(none_later["points"], json!([]), "{none_later}");
    let out = ok(&["plan", &plan, "--history", "--since", &later], &config).await;
    assert!(
        out.contains("No change recorded") && out.contains("The last change was recorded at"),
        "{out}"
    );
    // The next cycle records the change the dry run and the snapshot left.
    ok(&["sync"], &config).await;
    let out = ok(&["plan", &plan, "--history", "--json"], &config).await;
    let history: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(history["points"].as_array().unwrap().len(), 4, "{history}");
    assert_eq!(history["points"][3]["open"], "50000.00", "{history}");
    let out = ok(
        &["plan", &plan, "--history", "--since", &today.to_string()],
        &config,
    )
    .await;
    assert!(out.contains("45,000.00"), "{out}");

    // Clear errors: a bad date, an Id that is not a plan, a plan without history.
    let err = fails(
        &["plan", &plan, "--history", "--since", "2026-02-30"],
        &config,
    )
    .await;
    assert!(err.contains("YYYY-MM-DD"), "{err}");
    let err = fails(&["plan", &opp, "--history"], &config).await;
    assert!(
        err.contains("is an Opportunity Id (key prefix 006); plan takes an Account_Plan__c Id"),
        "{err}"
    );
    let err = fails(&["plan", &draft, "--history"], &config).await;
    assert!(
        err.contains("no history yet") && err.contains("Draft"),
        "{err}"
    );
    emulator.shutdown().await;
}
