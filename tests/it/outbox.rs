//! The outbox across cycles, end to end: a write a recompute no longer wants is set aside, and
//! goes out again when a later recompute wants the same values.

use plansync::emulator::Emulator;
use serde_json::{json, Value};

use super::common::{plansync, write_config, Acme, Crm};

const AS_OF: &str = "2026-08-15";

async fn sync(config: &std::path::Path) -> Value {
    let config = config.to_str().unwrap();
    let (ok, stdout, stderr) =
        plansync(&["sync", "--config", config, "--as-of", AS_OF, "--json"]).await;
    assert!(ok, "plansync sync failed:\n{stderr}\n{stdout}");
    serde_json::from_str(&stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_set_aside_goes_out_when_its_values_are_wanted_again() {
    let emulator = Emulator::builder().seed("empty").start().await.unwrap();
    let crm = Crm::connect(&emulator).await;
    let acme = Acme::create(&crm).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &emulator);
    sync(&config).await;
    let won = |plan: Value| plan["Won_Amount__c"].clone();
    assert_eq!(
        won(crm.get("Account_Plan__c", &acme.plan_a).await),
        json!(10000)
    );

    // The March deal grows to 12,000, but every row is locked: the plan's write fails for now.
    crm.update("Opportunity", &acme.won_a, json!({"Amount": 12000}))
        .await;
    emulator.set_faults_str("lock=1").unwrap();
    let locked = sync(&config).await;
    assert_eq!(
        locked["write_failures"][0]["status_code"], "UNABLE_TO_LOCK_ROW",
        "{locked}"
    );
    emulator.set_faults_str("").unwrap();

    // Back to 10,000 before the retry is due: the queued write is set aside, nothing is sent.
    crm.update("Opportunity", &acme.won_a, json!({"Amount": 10000}))
        .await;
    let back = sync(&config).await;
    assert_eq!(back["records_written"], 0, "{back}");
    let (ok, listed, _) = plansync(&[
        "writes",
        "list",
        "--config",
        config.to_str().unwrap(),
        "--json",
    ])
    .await;
    assert!(ok);
    assert_eq!(
        serde_json::from_str::<Value>(&listed).unwrap(),
        json!([]),
        "a write set aside is neither failed nor ignored by an admin"
    );

    // And 12,000 again: the same values as the write set aside, which was no refusal.
    crm.update("Opportunity", &acme.won_a, json!({"Amount": 12000}))
        .await;
    let again = sync(&config).await;
    assert_eq!(again["write_failures"], json!([]), "{again}");
    assert_eq!(
        won(crm.get("Account_Plan__c", &acme.plan_a).await),
        json!(12000)
    );
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_run_sends_snapshots_only_and_the_next_cycle_reconciles_the_rest() {
    let emulator = Emulator::builder().seed("empty").start().await.unwrap();
    let crm = Crm::connect(&emulator).await;
    let acme = Acme::create(&crm).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &emulator);
    sync(&config).await;
    // A plan write left queued by an earlier run, its value outdated since.
    queue_plan_write(
        &dir.path().join("plansync.db"),
        &acme.plan_a,
        json!({"Won_Amount__c": 55555}),
    );
    let config_text = config.to_str().unwrap();
    let (ok, stdout, stderr) = plansync(&[
        "snapshot",
        "--config",
        config_text,
        "--date",
        "2026-08-31",
        "--json",
    ])
    .await;
    assert!(ok, "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["snapshots"], 2, "{report}");
    assert_eq!(report["records_written"], 2, "only the snapshots: {report}");
    let won = |plan: Value| plan["Won_Amount__c"].clone();
    assert_eq!(
        won(crm.get("Account_Plan__c", &acme.plan_a).await),
        json!(10000)
    );
    // The next cycle recomputes the plan, wants nothing of it, and sets the old write aside.
    let next = sync(&config).await;
    assert_eq!(next["records_written"], 0, "{next}");
    assert_eq!(
        won(crm.get("Account_Plan__c", &acme.plan_a).await),
        json!(10000)
    );
    let store = plansync::store::Store::open(&dir.path().join("plansync.db")).unwrap();
    assert!(store.unsettled_writes().unwrap().is_empty());
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_write_for_a_plan_deleted_since_is_set_aside_not_sent() {
    let emulator = Emulator::builder().seed("empty").start().await.unwrap();
    let crm = Crm::connect(&emulator).await;
    let acme = Acme::create(&crm).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &emulator);
    sync(&config).await;
    // A write for B's plan left queued (a crash, a row lock), and the plan deleted since.
    let db = dir.path().join("plansync.db");
    queue_plan_write(&db, &acme.plan_b, json!({"Open_Pipeline__c": 1}));
    crm.delete("Account_Plan__c", &acme.plan_b).await;
    let report = sync(&config).await;
    assert_eq!(report["write_failures"], json!([]), "{report}");
    // The August deal moves to A's plan, the only one left for it; nothing else is queued.
    assert_eq!(
        crm.get("Opportunity", &acme.open_b_q3).await["Account_Plan__c"],
        json!(acme.plan_a)
    );
    let store = plansync::store::Store::open(&db).unwrap();
    assert!(store.unsettled_writes().unwrap().is_empty());
    assert!(store.standing_refusals().unwrap().is_empty());
    emulator.shutdown().await;
}

/// Puts a plan write in the store's outbox as an earlier run would have left it queued.
fn queue_plan_write(db: &std::path::Path, plan_id: &str, fields: Value) {
    let mut store = plansync::store::Store::open(db).unwrap();
    store
        .enqueue(
            &[plansync::store::NewWrite {
                object: "Account_Plan__c".into(),
                record_id: plan_id.to_string(),
                kind: plansync::store::WriteKind::Update,
                fields: serde_json::from_value(fields).unwrap(),
                reason: "rollups".into(),
            }],
            chrono::Utc::now(),
        )
        .unwrap();
}
