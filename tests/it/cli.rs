//! The command line as operators script it: exit statuses in `--help`, completions of
//! `--object`, and one documented JSON object per command with `--json`.

use std::path::Path;

use plansync::emulator::Emulator;
use serde_json::{json, Value};

use super::common::{plansync, plansync_code, write_config, Acme, Crm};

const AS_OF: &str = "2026-08-15";

/// Runs `plansync <command> --config <config>`, expecting `code`; parses stdout as JSON and
/// checks it has every documented key.
async fn json_of(command: &[&str], config: &Path, code: i32, keys: &[&str]) -> Value {
    let mut args = command.to_vec();
    args.extend(["--config", config.to_str().unwrap()]);
    let (got, stdout, stderr) = plansync_code(&args).await;
    assert_eq!(got, code, "plansync {args:?}:\n{stderr}\n{stdout}");
    let value: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("plansync {args:?} printed no JSON ({e}):\n{stdout}"));
    for key in keys {
        assert!(value.get(key).is_some(), "{args:?} lacks {key:?}: {value}");
    }
    value
}

const REPORT_KEYS: &[&str] = &[
    "kind",
    "full",
    "dry_run",
    "today",
    "objects",
    "plans_recomputed",
    "links_changed",
    "fields_written",
    "records_written",
    "fields_would_write",
    "records_would_write",
    "snapshots",
    "write_failures",
    "findings",
    "api_calls",
    "duration_ms",
    "stopped_early",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_with_json_prints_one_documented_object() {
    let emulator = Emulator::builder().seed("empty").start().await.unwrap();
    let crm = Crm::connect(&emulator).await;
    let acme = Acme::create(&crm).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &emulator);
    // The CRM refuses plan B's rollups, so `writes` has one to decide on.
    emulator.with_org(|org| org.set_validation_failure(Some("Acme Europe Q3".into())));

    let sync = json_of(
        &["sync", "--json", "--as-of", AS_OF],
        &config,
        0,
        REPORT_KEYS,
    )
    .await;
    assert_eq!(sync["plans_recomputed"], 2, "{sync}");
    assert_eq!(sync["objects"]["opportunity"]["pulled"], 3, "{sync}");
    assert_eq!(sync["write_failures"][0]["record_id"], json!(acme.plan_b));

    let status = json_of(
        &["status", "--json"],
        &config,
        0,
        &[
            "store",
            "now",
            "currency_mode",
            "runs",
            "cursors",
            "api_usage",
            "outbox",
        ],
    )
    .await;
    assert_eq!(status["runs"][0]["plans_recomputed"], 2, "{status}");
    assert_eq!(status["cursors"]["plan"]["object"], "Account_Plan__c");

    let explain = json_of(
        &["explain", &acme.open_b_q3, "--json"],
        &config,
        0,
        &[
            "opportunity_id",
            "opportunity_name",
            "account_id",
            "account_name",
            "close_date",
            "current_link",
            "locked",
            "link",
            "rules_link",
            "changes",
            "decider",
            "empty_because",
            "candidates",
            "not_candidates",
            "levers",
        ],
    )
    .await;
    assert_eq!(explain["opportunity_name"], "Europe in August", "{explain}");
    assert_eq!(explain["account_name"], "Acme Europe", "{explain}");
    assert_eq!(explain["link"], json!(acme.plan_b), "{explain}");
    let candidates = explain["candidates"].as_array().unwrap();
    assert_eq!(candidates.len(), 2, "{explain}");
    assert_eq!(candidates[0]["plan_id"], json!(acme.plan_b));
    assert_eq!(candidates[0]["membership"], "direct");
    assert_eq!(candidates[1]["plan_id"], json!(acme.plan_a));
    assert_eq!(candidates[1]["membership"], "hierarchy");
    assert_eq!(candidates[1]["hops"], 1);

    let plan = json_of(
        &["plan", &acme.plan_a, "--as-of", AS_OF, "--json"],
        &config,
        0,
        &[
            "plan_id",
            "name",
            "status",
            "gets_rollups",
            "as_of",
            "period_start",
            "period_end",
            "revenue_target",
            "currency",
            "accounts",
            "close_ratio",
            "won",
            "lost",
            "open",
            "omitted",
            "sums",
            "rollups",
            "last_activity",
            "next_activity",
            "overdue_tasks",
            "contacts",
            "engaged_contacts",
        ],
    )
    .await;
    assert_eq!(plan["name"], "Acme 2026", "{plan}");
    assert_eq!(plan["as_of"], AS_OF, "{plan}");
    assert_eq!(plan["won"][0]["id"], json!(acme.won_a), "{plan}");
    assert_eq!(plan["won"][0]["name"], "Won in March", "{plan}");
    assert_eq!(plan["accounts"].as_array().unwrap().len(), 2, "{plan}");
    assert_eq!(plan["close_ratio"]["source"], "plan", "{plan}");
    let won: rust_decimal::Decimal = plan["rollups"]["won_amount"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(won, rust_decimal::Decimal::from(10000), "{plan}");
    let history = json_of(
        &["plan", &acme.plan_a, "--history", "--json"],
        &config,
        0,
        &["plan_id", "name", "currency", "since", "points"],
    )
    .await;
    assert_eq!(history["plan_id"], json!(acme.plan_a), "{history}");

    let doctor = json_of(
        &["doctor", "--json"],
        &config,
        0,
        &["ok", "passed", "problems", "checks"],
    )
    .await;
    assert_eq!(doctor["ok"], true, "{doctor}");
    assert_eq!(doctor["problems"], 0, "{doctor}");
    let checks = doctor["checks"].as_array().unwrap();
    assert_eq!(doctor["passed"], checks.len(), "{doctor}");
    assert!(checks.iter().any(|c| c["name"] == "configuration"
        && c["detail"]
            .as_str()
            .unwrap()
            .contains(config.to_str().unwrap())));

    let list = json_of(&["writes", "list", "--json"], &config, 0, &[]).await;
    let rows = list.as_array().unwrap();
    assert_eq!(rows.len(), 1, "{list}");
    assert_eq!(rows[0]["record_id"], json!(acme.plan_b));
    let id = rows[0]["id"].as_i64().unwrap().to_string();
    let write_keys = &[
        "id",
        "object",
        "record_id",
        "status",
        "fields",
        "status_code",
        "permanent",
    ];
    let ignored = json_of(&["writes", "ignore", &id, "--json"], &config, 0, write_keys).await;
    assert_eq!(ignored["status"], "ignored", "{ignored}");
    assert_eq!(ignored["record_id"], json!(acme.plan_b));
    let retried = json_of(&["writes", "retry", &id, "--json"], &config, 0, write_keys).await;
    assert_ne!(retried["status"], "ignored", "{retried}");
    assert_eq!(retried["object"], "Account_Plan__c", "{retried}");

    let resync = json_of(
        &[
            "resync",
            "--object",
            "opportunity",
            "--json",
            "--as-of",
            AS_OF,
        ],
        &config,
        0,
        REPORT_KEYS,
    )
    .await;
    assert_eq!(resync["kind"], "resync", "{resync}");
    assert_eq!(resync["objects"]["opportunity"]["pulled"], 3, "{resync}");

    let snapshot = json_of(
        &["snapshot", "--date", AS_OF, "--dry-run", "--json"],
        &config,
        0,
        REPORT_KEYS,
    )
    .await;
    assert_eq!(snapshot["snapshots"], 2, "{snapshot}");
    assert_eq!(snapshot["dry_run"], true, "{snapshot}");
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_help_states_its_exit_status() {
    for command in [
        vec!["sync"],
        vec!["resync"],
        vec!["snapshot"],
        vec!["run"],
        vec!["status"],
        vec!["explain"],
        vec!["plan"],
        vec!["writes"],
        vec!["writes", "list"],
        vec!["doctor"],
        vec!["demo"],
        vec!["emulator"],
        vec!["completions"],
    ] {
        let mut args = command.clone();
        args.push("--help");
        let (success, out, err) = plansync(&args).await;
        assert!(success, "{err}");
        assert!(out.contains("Exit status:"), "{command:?} --help:\n{out}");
        assert!(out.contains("  0 "), "{command:?} --help:\n{out}");
    }
    let (_, run_help, _) = plansync(&["run", "--help"]).await;
    assert!(run_help.contains("130"), "{run_help}");
    let (_, sync_help, _) = plansync(&["sync", "--help"]).await;
    assert!(sync_help.contains("3    stopped early"), "{sync_help}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_names_complete_and_a_wrong_one_exits_2_naming_them() {
    let (success, bash, err) = plansync(&["completions", "bash"]).await;
    assert!(success, "{err}");
    let object_case = bash
        .split("--object)")
        .nth(1)
        .and_then(|rest| rest.split(";;").next())
        .unwrap_or_default();
    for name in [
        "account",
        "plan",
        "plan_account",
        "opportunity",
        "contact",
        "task",
        "event",
    ] {
        assert!(object_case.contains(name), "{name} missing:\n{object_case}");
    }
    let (code, _, err) = plansync_code(&["resync", "--object", "Widget__c"]).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("plan_account"), "{err}");
}
