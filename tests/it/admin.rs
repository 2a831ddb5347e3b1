//! The admin commands end to end: the real binary against the emulator on 127.0.0.1 with an
//! OS-assigned port and a real SQLite file, after a `plansync sync` has filled the store.

use std::path::{Path, PathBuf};
use std::time::Duration;

use plansync::emulator::{Emulator, RunningEmulator};
use serde_json::{json, Value};

use super::common::{plansync, plansync_code, write_config, write_config_with, Acme, Crm};

const AS_OF: &str = "2026-08-15";

/// Runs `plansync <command> <args> --config <config>`, asserting success; returns stdout.
async fn ok(command: &[&str], config: &Path) -> String {
    let mut args = command.to_vec();
    args.extend(["--config", config.to_str().unwrap()]);
    let (success, stdout, stderr) = plansync(&args).await;
    assert!(success, "plansync {args:?} failed:\n{stderr}\n{stdout}");
    stdout
}

/// Runs the command expecting failure; returns stderr.
async fn fails(command: &[&str], config: &Path) -> String {
    let mut args = command.to_vec();
    args.extend(["--config", config.to_str().unwrap()]);
    let (success, stdout, stderr) = plansync(&args).await;
    assert!(!success, "plansync {args:?} succeeded:\n{stdout}");
    stderr
}

/// Account A (Acme) with child B; plan PA on A with child accounts for 2026 (target 100000,
/// close ratio 50 %), plan PB on B for Q3 2026; a won opportunity on A, an open one on B in
/// August (a candidate of both plans) and one on B in November.
struct Scenario {
    emulator: RunningEmulator,
    crm: Crm,
    _dir: tempfile::TempDir,
    config: PathBuf,
    plan_a: String,
    plan_b: String,
    won_a: String,
    open_b_q3: String,
    open_b_nov: String,
}

impl Scenario {
    async fn new() -> Scenario {
        Scenario::with_config("").await
    }

    async fn with_config(extra: &str) -> Scenario {
        let emulator = Emulator::builder().seed("empty").start().await.unwrap();
        let crm = Crm::connect(&emulator).await;
        let Acme {
            plan_a,
            plan_b,
            won_a,
            open_b_q3,
            open_b_nov,
            ..
        } = Acme::create(&crm).await;
        let dir = tempfile::tempdir().unwrap();
        let config = write_config_with(dir.path(), &emulator, extra);
        Scenario {
            emulator,
            crm,
            _dir: dir,
            config,
            plan_a,
            plan_b,
            won_a,
            open_b_q3,
            open_b_nov,
        }
    }

    async fn sync(&self) -> Value {
        let out = ok(&["sync", "--json", "--as-of", AS_OF], &self.config).await;
        serde_json::from_str(&out).unwrap()
    }

    async fn status_json(&self) -> Value {
        let out = ok(&["status", "--json"], &self.config).await;
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}):\n{out}"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_runs_cursors_usage_and_findings() {
    let s = Scenario::new().await;
    // Before any cycle there is no store, and status says what to do.
    let err = fails(&["status"], &s.config).await;
    assert!(err.contains("plansync sync"), "{err}");

    let before = chrono::Utc::now();
    let report = s.sync().await;
    let after = chrono::Utc::now();
    let status = s.status_json().await;
    let run = &status["runs"][0];
    assert_eq!(run["kind"], "incremental");
    assert_eq!(run["outcome"], "succeeded");
    assert_eq!(run["links_changed"], report["links_changed"]);
    assert_eq!(run["fields_written"], report["fields_written"]);
    // The run lies within the command (its times are shown to the second), and its duration
    // is from its start to its end.
    let time = |v: &Value| {
        chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap())
            .unwrap()
            .with_timezone(&chrono::Utc)
    };
    let (started, finished) = (time(&run["started_at"]), time(&run["finished_at"]));
    assert!(
        before.timestamp() <= started.timestamp() && finished <= after,
        "{run}"
    );
    let duration = run["duration_ms"].as_i64().unwrap();
    assert!(duration <= (after - before).num_milliseconds(), "{run}");
    assert!(
        (duration - (finished - started).num_milliseconds()).abs() < 1000,
        "{run}"
    );
    // The opportunity cursor stands at the newest opportunity pulled.
    let cursor = &status["cursors"]["opportunity"];
    assert_eq!(cursor["object"], "Opportunity");
    let newest = [&s.won_a, &s.open_b_q3, &s.open_b_nov]
        .into_iter()
        .max()
        .unwrap();
    assert_eq!(cursor["id"], json!(newest));
    assert!(cursor["lag_seconds"].as_i64().is_some());
    assert_eq!(status["cursors"]["plan_account"]["id"], Value::Null);
    // The org's usage, as the run reported it.
    assert_eq!(status["api_usage"]["used_of_max"], report["api_usage"]);
    assert_eq!(status["outbox"]["unsettled"], 0);
    // August on B fits both plans: an ambiguity naming the opportunity.
    let findings = status["findings"].as_array().unwrap();
    assert!(
        findings
            .iter()
            .any(|f| f["kind"] == "ambiguity"
                && f["subject"].as_str().unwrap().contains(&s.open_b_q3)),
        "{findings:?}"
    );

    let text = ok(&["status"], &s.config).await;
    for section in [
        "Recent runs",
        "Cursors",
        "API usage",
        "Outbox: 0 write(s) not settled",
        "Failed writes: 0",
        "Findings of the last recompute: 1",
    ] {
        assert!(text.contains(section), "no {section:?} in:\n{text}");
    }
    assert!(
        text.contains("incremental") && text.contains("succeeded"),
        "{text}"
    );
    assert!(text.contains(newest.as_str()), "{text}");
    s.emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_names_the_candidates_the_deciding_rule_and_what_would_change_the_link() {
    let s = Scenario::new().await;
    s.sync().await;
    let out = ok(&["explain", &s.open_b_q3], &s.config).await;
    assert!(out.contains("Europe in August"), "{out}");
    assert!(out.contains(&format!("links to: {}", s.plan_b)), "{out}");
    assert!(out.contains("closest membership"), "{out}");
    assert!(out.contains("Candidates (2)"), "{out}");
    let first = out.find(&format!("1. Acme Europe Q3 ({})", s.plan_b));
    let second = out.find(&format!("2. Acme 2026 ({})", s.plan_a));
    assert!(first.is_some() && second.is_some(), "{out}");
    assert!(out.contains("hierarchy, 1 level(s) below"), "{out}");
    assert!(
        out.contains(&format!(
            "moving CloseDate after 2026-09-30 leaves plan {} (the link would be plan {})",
            s.plan_b, s.plan_a
        )),
        "{out}"
    );
    assert!(
        out.contains("setting Plan_Link_Locked__c keeps the current link"),
        "{out}"
    );

    // November: plan B's period does not contain it.
    let out = ok(&["explain", &s.open_b_nov], &s.config).await;
    assert!(out.contains(&format!("links to: {}", s.plan_a)), "{out}");
    assert!(out.contains("the only candidate"), "{out}");
    assert!(
        out.contains(&format!("Acme Europe Q3 ({})", s.plan_b))
            && out.contains("the period does not contain the close date"),
        "{out}"
    );

    // A locked link is kept, and the explanation says so.
    s.crm
        .update(
            "Opportunity",
            &s.open_b_q3,
            json!({"Plan_Link_Locked__c": true, "Account_Plan__c": s.plan_a}),
        )
        .await;
    s.sync().await;
    let out = ok(&["explain", &s.open_b_q3], &s.config).await;
    assert!(out.contains("locked (Plan_Link_Locked__c)"), "{out}");
    assert!(out.contains(&format!("links to: {}", s.plan_a)), "{out}");
    assert!(
        out.contains(&format!("the rules alone would give {}", s.plan_b)),
        "{out}"
    );
    assert!(out.contains("clearing Plan_Link_Locked__c"), "{out}");

    let err = fails(&["explain", "006000000000099AAA"], &s.config).await;
    assert!(err.contains("no opportunity 006000000000099AAA"), "{err}");
    s.emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_breaks_each_rollup_down_to_its_records() {
    let s = Scenario::new().await;
    s.sync().await;
    let out = ok(&["plan", &s.plan_a, "--as-of", AS_OF], &s.config).await;
    assert!(out.contains("Plan Acme 2026"), "{out}");
    assert!(out.contains("rollups are written"), "{out}");
    assert!(out.contains("child accounts included"), "{out}");
    assert!(
        out.contains("close ratio 50% from the plan's Close_Ratio__c"),
        "{out}"
    );
    assert!(out.contains("Won: 1 opportunity, 10,000.00"), "{out}");
    assert!(out.contains(&format!("{} Won in March", s.won_a)), "{out}");
    assert!(
        out.contains("Open pipeline: 1 opportunity, 30,000.00"),
        "{out}"
    );
    assert!(out.contains("30,000.00 x 90% = 27,000.00"), "{out}");
    // Every rollup, with the value the cycle wrote to the CRM.
    let crm_plan = s.crm.get("Account_Plan__c", &s.plan_a).await;
    assert_eq!(crm_plan["Pipeline_Needed__c"], json!(180000));
    let line = out
        .lines()
        .find(|l| l.trim_start().starts_with("Pipeline_Needed__c"))
        .unwrap();
    assert!(line.contains("180,000.00"), "{line}");
    for field in [
        "Won_Amount__c",
        "Coverage_Ratio__c",
        "Engaged_Contact_Count__c",
    ] {
        assert!(out.contains(field), "no {field} in:\n{out}");
    }

    // Plan B: no close ratio and no history, so the default; the August opportunity.
    let out = ok(&["plan", &s.plan_b, "--as-of", AS_OF], &s.config).await;
    assert!(
        out.contains("close ratio 25% from [rollups] default_close_ratio"),
        "{out}"
    );
    assert!(out.contains(&s.open_b_q3), "{out}");

    // A plan Id the mirror does not hold; then Ids of the wrong shape or object, refused
    // before anything is computed.
    let missing = plansync::metadata::id::to18(&format!("{}zz", &s.plan_a[..13])).unwrap();
    let err = fails(&["plan", &missing], &s.config).await;
    assert!(err.contains("no account plan"), "{err}");
    s.emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_lists_refusals_and_an_admin_retries_or_ignores_them() {
    let s = Scenario::new().await;
    s.emulator
        .with_org(|org| org.set_validation_failure(Some("Acme Europe Q3".into())));
    s.sync().await;

    let text = ok(&["writes", "list"], &s.config).await;
    assert!(text.contains(&s.plan_b), "{text}");
    assert!(text.contains("FIELD_CUSTOM_VALIDATION_EXCEPTION"), "{text}");
    assert!(text.contains("refused (permanent"), "{text}");
    let list: Value =
        serde_json::from_str(&ok(&["writes", "list", "--json"], &s.config).await).unwrap();
    let rows = list.as_array().unwrap();
    assert_eq!(rows.len(), 1, "{list}");
    assert_eq!(rows[0]["record_id"], json!(s.plan_b));
    assert_eq!(rows[0]["permanent"], true);
    assert_eq!(rows[0]["attempts"], 1);
    assert!(rows[0]["fields"]["Open_Pipeline__c"].is_number());
    let id = rows[0]["id"].as_i64().unwrap().to_string();

    // status shows the refusal with the CRM's code.
    let status = s.status_json().await;
    assert_eq!(
        status["outbox"]["failed"][0]["status_code"],
        "FIELD_CUSTOM_VALIDATION_EXCEPTION"
    );

    // Unknown ids and wrong states are clear errors.
    let err = fails(&["writes", "retry", "999999"], &s.config).await;
    assert!(err.contains("no write #999999"), "{err}");
    ok(&["writes", "ignore", &id], &s.config).await;
    let err = fails(&["writes", "ignore", &id], &s.config).await;
    assert!(err.contains("already ignored"), "{err}");
    // An ignored write stays listed, so its id is there to retry it.
    let text = ok(&["writes", "list"], &s.config).await;
    assert!(text.contains(&format!("#{id} ")), "{text}");
    assert!(text.contains("ignored (not sent again"), "{text}");

    // The admin fixed the rule and retries: the next cycle sends the write first.
    s.emulator.with_org(|org| org.set_validation_failure(None));
    let out = ok(&["writes", "retry", &id], &s.config).await;
    assert!(out.contains("queued again"), "{out}");
    let err = fails(&["writes", "retry", &id], &s.config).await;
    assert!(err.contains("already queued"), "{err}");
    assert_eq!(s.status_json().await["outbox"]["unsettled"], 1);
    s.sync().await;
    let plan_b = s.crm.get("Account_Plan__c", &s.plan_b).await;
    assert_eq!(plan_b["Open_Pipeline__c"], json!(20000));
    assert_eq!(s.status_json().await["outbox"]["unsettled"], 0);
    s.emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_passes_on_a_good_setup_and_names_each_problem() {
    let s = Scenario::new().await;
    let (success, out, err) = plansync(&["doctor", "--config", s.config.to_str().unwrap()]).await;
    assert!(success, "{out}\n{err}");
    for check in [
        "ok       configuration",
        "ok       store: no store yet",
        "ok       secrets",
        "ok       CRM reachable",
        "ok       authentication",
        "ok       API version: v62.0 is served",
        "ok       object Opportunity",
        "ok       object Account_Plan__c",
        "ok       object Account_Plan_Snapshot__c",
        "All ",
    ] {
        assert!(out.contains(check), "no {check:?} in:\n{out}");
    }
    assert!(!out.contains("PROBLEM"), "{out}");
    // With a store: its schema version.
    s.sync().await;
    let out = ok(&["doctor"], &s.config).await;
    assert!(out.contains("schema version"), "{out}");

    // A mapped field the CRM does not have.
    let broken =
        Scenario::with_config("\n[mapping.opportunity]\nplan_link = \"Missing_Link__c\"\n").await;
    let broken_config = broken.config.to_str().unwrap();
    let (success, out, err) = plansync(&["doctor", "--config", broken_config]).await;
    assert!(!success, "{out}");
    assert!(out.contains("PROBLEM  object Opportunity"), "{out}");
    assert!(
        out.contains("Missing_Link__c ([mapping.opportunity] plan_link) does not exist"),
        "{out}"
    );
    assert!(out.contains("ok       object Account_Plan__c"), "{out}");
    assert!(out.contains("fix: "), "{out}");
    assert!(err.contains("1 of "), "{err}");
    assert!(err.contains("checks found a problem"), "{err}");

    // An API version the CRM does not serve.
    let text = std::fs::read_to_string(&broken.config)
        .unwrap()
        .replace("api_version = \"62.0\"", "api_version = \"20.0\"");
    std::fs::write(&broken.config, text).unwrap();
    let (success, out, _) = plansync(&["doctor", "--config", broken_config]).await;
    assert!(!success, "{out}");
    assert!(
        out.contains("PROBLEM  API version: v20.0 is not served"),
        "{out}"
    );

    // Bad credentials stop at authentication.
    std::fs::write(broken._dir.path().join("client_secret"), "wrong").unwrap();
    let (success, out, _) = plansync(&["doctor", "--config", broken_config]).await;
    assert!(!success);
    assert!(out.contains("ok       CRM reachable"), "{out}");
    assert!(out.contains("PROBLEM  authentication"), "{out}");
    s.emulator.shutdown().await;
    broken.emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_commands_read_the_store_while_a_cycle_writes_it() {
    let emulator = Emulator::builder()
        .seed("demo")
        .latency(Duration::from_millis(15))
        .start()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &emulator);
    ok(&["sync", "--as-of", AS_OF], &config).await;
    let config_for_cycle = config.clone();
    let cycle =
        tokio::spawn(
            async move { ok(&["sync", "--full", "--as-of", AS_OF], &config_for_cycle).await },
        );
    for _ in 0..4 {
        let status = ok(&["status", "--json"], &config).await;
        let v: Value = serde_json::from_str(&status).unwrap();
        // The first cycle's record is readable whatever the second is doing.
        let runs = v["runs"].as_array().unwrap();
        assert!(
            runs.iter()
                .any(|r| r["kind"] == "incremental" && r["outcome"] == "succeeded"),
            "{v}"
        );
        ok(&["writes", "list"], &config).await;
    }
    cycle.await.unwrap();
    let v: Value = serde_json::from_str(&ok(&["status", "--json"], &config).await).unwrap();
    assert_eq!(v["runs"][0]["kind"], "full");
    assert_eq!(v["runs"][0]["outcome"], "succeeded");
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_and_help_cover_every_command() {
    for shell in ["bash", "zsh", "fish"] {
        let (success, out, err) = plansync(&["completions", shell]).await;
        assert!(success, "{err}");
        for sub in [
            "status", "explain", "plan", "resync", "snapshot", "writes", "doctor",
        ] {
            assert!(out.contains(sub), "{shell} completions lack {sub}");
        }
    }
    let (success, _, err) = plansync(&["completions", "powershell-ish"]).await;
    assert!(!success);
    assert!(err.contains("bash"), "{err}");
    for command in [
        "status", "explain", "plan", "resync", "snapshot", "writes", "doctor", "sync",
    ] {
        let (success, out, err) = plansync(&[command, "--help"]).await;
        assert!(success, "{err}");
        assert!(out.contains("--config"), "{command} --help:\n{out}");
        assert!(
            out.contains("Example"),
            "{command} --help has no example:\n{out}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resync_re_pulls_what_it_names_and_reports_progress() {
    // No lookback: an incremental cycle re-reads nothing before its cursors.
    let s = Scenario::with_config("\n[sync]\nlookback_seconds = 0\n").await;
    s.sync().await;
    // The first cycle's own writes moved SystemModstamps: the second re-reads them.
    s.sync().await;
    let incremental = s.sync().await;
    assert!(
        incremental["objects"]["opportunity"]["pulled"]
            .as_u64()
            .unwrap()
            < 3,
        "{incremental}"
    );

    // One object: every opportunity again, with a progress line per page on stderr.
    let config = s.config.to_str().unwrap();
    let (success, stdout, stderr) = plansync(&[
        "resync",
        "--object",
        "opportunity",
        "--json",
        "--config",
        config,
        "--as-of",
        AS_OF,
    ])
    .await;
    assert!(success, "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["objects"]["opportunity"]["pulled"], 3, "{report}");
    assert_eq!(report["fields_written"], 0, "{report}");
    assert!(stderr.contains("pulling Opportunity: 3/3"), "{stderr}");

    // One plan: its record is pulled again; a dry run writes nothing.
    s.crm
        .update("Opportunity", &s.open_b_q3, json!({"Amount": 25000}))
        .await;
    let out = ok(
        &["resync", "--plan", &s.plan_b, "--dry-run", "--as-of", AS_OF],
        &s.config,
    )
    .await;
    assert!(out.contains("would set"), "{out}");
    assert!(out.contains("Open_Pipeline__c: 20000 -> 25000"), "{out}");
    assert_eq!(
        s.crm.get("Account_Plan__c", &s.plan_b).await["Open_Pipeline__c"],
        json!(20000)
    );
    let out = ok(
        &["resync", "--plan", &s.plan_b, "--as-of", AS_OF],
        &s.config,
    )
    .await;
    assert!(!out.contains("would set"), "{out}");
    assert_eq!(
        s.crm.get("Account_Plan__c", &s.plan_b).await["Open_Pipeline__c"],
        json!(25000)
    );
    let status = s.status_json().await;
    assert_eq!(status["runs"][0]["kind"], "resync", "{status}");

    // Bad targets are refused before anything runs.
    let err = fails(&["resync", "--object", "Widget__c"], &s.config).await;
    assert!(err.contains("opportunity"), "{err}");
    let err = fails(&["resync"], &s.config).await;
    assert!(err.contains("--plan") && err.contains("--all"), "{err}");
    let err = fails(&["resync", "--all", "--plan", &s.plan_a], &s.config).await;
    assert!(err.contains("cannot be used with"), "{err}");
    s.emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_upserts_one_record_per_plan_and_date_even_when_repeated() {
    let s = Scenario::new().await;
    s.sync().await;
    let key = |plan: &str| format!("{plan}:2026-08-15");
    for _ in 0..2 {
        let out = ok(&["snapshot", "--date", "2026-08-15", "--json"], &s.config).await;
        let report: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(report["snapshots"], 2, "{report}");
    }
    let rows = s
        .crm
        .query(
            "SELECT Snapshot_Key__c, Account_Plan__c, Won_Amount__c FROM Account_Plan_Snapshot__c",
        )
        .await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    let a = rows
        .iter()
        .find(|r| r["Snapshot_Key__c"] == json!(key(&s.plan_a)))
        .unwrap();
    assert_eq!(a["Account_Plan__c"], json!(s.plan_a));
    assert_eq!(a["Won_Amount__c"], json!(10000));
    assert!(rows
        .iter()
        .any(|r| r["Snapshot_Key__c"] == json!(key(&s.plan_b))));
    s.emulator.shutdown().await;
}

/// Runs the command expecting exit status 2 (an input or configuration to fix); returns
/// stderr.
async fn refused(command: &[&str], config: &Path) -> String {
    let mut args = command.to_vec();
    args.extend(["--config", config.to_str().unwrap()]);
    let (code, stdout, stderr) = plansync_code(&args).await;
    assert_eq!(code, 2, "plansync {args:?}:\n{stderr}\n{stdout}");
    stderr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_given_to_admin_commands_are_checked_before_anything_runs() {
    let s = Scenario::new().await;
    let account = s
        .crm
        .query("SELECT Id FROM Account WHERE Name = 'Acme'")
        .await[0]["Id"]
        .as_str()
        .unwrap()
        .to_string();

    // Before any cycle: the store knows no prefix yet, the CRM names the plan's.
    let err = refused(&["resync", "--account", &s.plan_a], &s.config).await;
    assert!(
        err.contains(&format!(
            "{} is an Account_Plan__c Id (key prefix a0P); --account takes an Account Id",
            s.plan_a
        )),
        "{err}"
    );
    s.sync().await;
    let runs_before = s.status_json().await["runs"].as_array().unwrap().len();

    // resync: another object's Id, an Id the CRM does not have, text that is no Id.
    let err = refused(&["resync", "--account", &s.plan_a], &s.config).await;
    assert!(err.contains("is an Account_Plan__c Id"), "{err}");
    let err = refused(&["resync", "--plan", &account], &s.config).await;
    assert!(
        err.contains(&format!(
            "{account} is an Account Id (key prefix 001); --plan takes an Account_Plan__c Id"
        )),
        "{err}"
    );
    let err = refused(&["resync", "--plan", &s.open_b_q3], &s.config).await;
    assert!(err.contains("is an Opportunity Id"), "{err}");
    let missing = plansync::metadata::id::to18(&format!("{}zz", &s.plan_a[..13])).unwrap();
    let err = refused(&["resync", "--plan", &missing], &s.config).await;
    assert!(
        err.contains(&format!("the CRM has no Account_Plan__c with Id {missing}")),
        "{err}"
    );
    let err = refused(&["resync", "--plan", "not-an-id"], &s.config).await;
    assert!(
        err.contains("\"not-an-id\" is not a record Id (an Id has only letters and digits"),
        "{err}"
    );
    assert!(!err.contains("MALFORMED") && !err.contains("SOQL"), "{err}");
    let mangled = format!("{}XYZ", &s.plan_a[..15]);
    let err = refused(&["resync", "--plan", &mangled], &s.config).await;
    assert!(err.contains("checksum"), "{err}");
    // None of them ran anything.
    let runs_after = s.status_json().await["runs"].as_array().unwrap().len();
    assert_eq!(runs_after, runs_before);
    // The 15-character and the lower-cased 18-character forms are the same plan.
    ok(
        &["resync", "--plan", &s.plan_a[..15], "--as-of", AS_OF],
        &s.config,
    )
    .await;

    // explain and plan: the object the Id belongs to, not "run plansync sync".
    let err = refused(&["explain", &account], &s.config).await;
    assert!(
        err.contains(&format!(
            "{account} is an Account Id (key prefix 001); explain takes an Opportunity Id"
        )),
        "{err}"
    );
    assert!(!err.contains("plansync sync"), "{err}");
    let err = refused(&["explain", &s.plan_b], &s.config).await;
    assert!(err.contains("is an Account_Plan__c Id"), "{err}");
    let err = refused(&["plan", &s.open_b_nov], &s.config).await;
    assert!(
        err.contains("is an Opportunity Id (key prefix 006); plan takes an Account_Plan__c Id"),
        "{err}"
    );
    let err = refused(&["plan", "a0P-1"], &s.config).await;
    assert!(err.contains("is not a record Id"), "{err}");
    let err = refused(&["explain", "00Q000000000001"], &s.config).await;
    assert!(err.contains("is a Lead Id"), "{err}");
    let lower = s.open_b_q3.to_ascii_lowercase();
    let out = ok(&["explain", &lower], &s.config).await;
    assert!(
        out.contains(&format!("Opportunity {}", s.open_b_q3)),
        "{out}"
    );
    s.emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mapped_field_the_org_lacks_stops_the_cycle_naming_the_key_field_and_file() {
    let s =
        Scenario::with_config("\n[mapping.opportunity]\nplan_link = \"Missing_Link__c\"\n").await;
    let file = s.config.to_str().unwrap();
    for command in [
        vec!["sync"],
        vec!["sync", "--dry-run"],
        vec!["snapshot", "--date", AS_OF],
        vec!["resync", "--object", "opportunity"],
    ] {
        let stderr = refused(&command, &s.config).await;
        // The command's answer: what follows the log lines (the failed run's ERROR line keeps
        // the CRM's own text for the journal).
        let err = stderr
            .rfind("\nplansync: ")
            .map_or(stderr.as_str(), |at| &stderr[at + 1..]);
        assert!(
            err.contains(&format!("plansync: {file}: the CRM refused a query")),
            "{command:?}: {err}"
        );
        assert!(
            err.contains(
                "[mapping.opportunity] plan_link = \"Missing_Link__c\": Opportunity has no field \
                 Missing_Link__c"
            ),
            "{command:?}: {err}"
        );
        assert!(
            err.contains(&format!("under [mapping] in {file}")) && err.contains("plansync doctor"),
            "{command:?}: {err}"
        );
        // The CRM's raw query error is replaced, not repeated.
        assert!(!err.contains("No such column"), "{command:?}: {err}");
        // Only the field that is missing is named.
        assert!(!err.contains("Won_Amount__c"), "{command:?}: {err}");
    }
    s.emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configuration_errors_are_printed_once_with_the_file_the_key_and_the_flow() {
    let s = Scenario::new().await;
    let file = s.config.to_str().unwrap().to_string();
    let good = std::fs::read_to_string(&s.config).unwrap();

    // doctor names the flow as the configuration does.
    let (success, out, _) = plansync(&["doctor", "--config", &file]).await;
    assert!(success, "{out}");
    assert!(
        out.contains("ok       secrets: the client_credentials credentials are readable"),
        "{out}"
    );

    // No client id: exit 2, the file, the key and the flow's name, said once.
    let client_id_line = good
        .lines()
        .find(|l| l.starts_with("client_id"))
        .unwrap()
        .to_string();
    std::fs::write(&s.config, good.replace(&client_id_line, "")).unwrap();
    let (code, _, err) = plansync_code(&["sync", "--config", &file]).await;
    assert_eq!(code, 2, "{err}");
    assert_eq!(
        err.trim(),
        format!(
            "plansync: {file}: `crm.auth.client_id` is required by the client_credentials flow: \
             set it under [crm.auth] to the connected app's consumer key, or set \
             PLANSYNC__CRM__AUTH__CLIENT_ID"
        )
    );
    let (success, out, _) = plansync(&["doctor", "--config", &file]).await;
    assert!(!success);
    assert!(out.contains("PROBLEM  secrets:"), "{out}");
    assert!(
        out.contains(&format!(
            "fix: set [crm.auth] client_id in {file} (or the variable PLANSYNC__CRM__AUTH__CLIENT_ID)"
        )),
        "{out}"
    );
    assert!(!out.contains("secret file"), "{out}");

    // An unreadable secret file: its path and key, and the system's reason once.
    let missing_secret = good.replace("client_secret\"", "no_such_secret\"");
    std::fs::write(&s.config, &missing_secret).unwrap();
    let (code, _, err) = plansync_code(&["sync", "--config", &file]).await;
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("cannot read the secret file")
            && err.contains("no_such_secret")
            && err.contains("`crm.auth.client_secret_file`"),
        "{err}"
    );
    assert_eq!(err.matches("No such file").count(), 1, "{err}");
    let (_, out, _) = plansync(&["doctor", "--config", &file]).await;
    assert!(
        out.contains("fix: make the secret file named above readable"),
        "{out}"
    );

    // No configuration file at all.
    let absent = format!("{file}.absent");
    let (code, _, err) = plansync_code(&["status", "--config", &absent]).await;
    assert_eq!(code, 2, "{err}");
    assert!(
        err.starts_with(&format!(
            "plansync: cannot read the configuration file {absent} (give its path with --config PATH): "
        )),
        "{err}"
    );
    assert_eq!(err.matches("No such file").count(), 1, "{err}");

    // An unknown key: named with the file, once.
    std::fs::write(&s.config, format!("{good}\n[sync]\nlookback = 5\n")).unwrap();
    let (code, _, err) = plansync_code(&["sync", "--config", &file]).await;
    assert_eq!(code, 2, "{err}");
    assert!(
        err.starts_with(&format!("plansync: {file}: unknown key `sync.lookback`")),
        "{err}"
    );
    for text in [&err, &out] {
        assert!(!text.contains("configuration: configuration"), "{text}");
        assert!(
            !text.contains("ClientCredentials") && !text.contains("clientcredentials"),
            "{text}"
        );
    }
    s.emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_reports_what_it_would_write_and_the_run_log_keeps_it_apart() {
    let s = Scenario::new().await;
    s.sync().await;
    let out = ok(
        &["snapshot", "--date", AS_OF, "--dry-run", "--json"],
        &s.config,
    )
    .await;
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["dry_run"], true, "{report}");
    assert_eq!(report["records_written"], 0, "{report}");
    assert_eq!(report["fields_written"], 0, "{report}");
    // Two plans get rollups: two snapshot records would be written.
    assert_eq!(report["records_would_write"], 2, "{report}");
    let fields = report["fields_would_write"].as_u64().unwrap();
    assert!(fields > 2 * 3, "{report}");
    // Nothing was written.
    let rows = s.crm.query("SELECT Id FROM Account_Plan_Snapshot__c").await;
    assert!(rows.is_empty(), "{rows:?}");

    let status = s.status_json().await;
    let run = &status["runs"][0];
    assert_eq!(run["kind"], "snapshot-dry-run", "{run}");
    assert_eq!(run["dry_run"], true, "{run}");
    assert_eq!(run["records_written"], 0, "{run}");
    assert_eq!(run["fields_written"], 0, "{run}");
    assert_eq!(run["records_would_write"], 2, "{run}");
    assert_eq!(run["fields_would_write"], fields, "{run}");
    // The real cycle before it wrote, and would have written nothing more.
    assert!(status["runs"][1]["records_written"].as_u64().unwrap() > 0);
    assert_eq!(status["runs"][1]["records_would_write"], 0);

    let text = ok(&["status"], &s.config).await;
    assert!(
        text.contains(&format!(
            "was a dry run: would write {fields} fields on 2 records, wrote nothing"
        )),
        "{text}"
    );
    let text = ok(&["sync", "--dry-run", "--as-of", AS_OF], &s.config).await;
    assert!(text.contains("dry run: would write"), "{text}");
    assert!(!text.contains("fields written"), "{text}");
    s.emulator.shutdown().await;
}
