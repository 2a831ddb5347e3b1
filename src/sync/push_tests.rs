//! The drain against the emulator: an outbox read page by page still fills whole write
//! calls and sends each row once.

use serde_json::{json, Map, Value};

use super::*;
use crate::clock::Clock;
use crate::emulator::Emulator;
use crate::store::NewWrite;
use crate::sync::upgrade_tests::engine_on;
use crate::sync::SyncSettings;

fn update(object: &str, id: &str, fields: Value) -> NewWrite {
    let fields: Map<String, Value> = fields.as_object().cloned().unwrap_or_default();
    NewWrite {
        object: object.into(),
        record_id: id.into(),
        kind: WriteKind::Update,
        fields,
        reason: "test".into(),
    }
}

#[tokio::test]
async fn an_outbox_read_in_pages_still_fills_whole_write_calls_and_sends_each_row_once() {
    let emulator = Emulator::builder().seed("demo").start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut engine = engine_on(&emulator, &dir, SyncSettings::default());
    let ids = |object: &str, n: usize| -> Vec<String> {
        emulator.with_org(|org| {
            org.live_records(object)
                .take(n)
                .map(|r| r["Id"].as_str().unwrap().to_string())
                .collect()
        })
    };
    let (opportunities, accounts) = (ids("Opportunity", 180), ids("Account", 20));
    assert_eq!((opportunities.len(), accounts.len()), (180, 20));
    // Queued alternately, so every page holds both objects and ends inside a batch.
    let mut writes = Vec::new();
    for (n, id) in opportunities.iter().enumerate() {
        writes.push(update("Opportunity", id, json!({"Amount": 1000 + n})));
        if let Some(account) = accounts.get(n) {
            writes.push(update(
                "Account",
                account,
                json!({"Name": format!("Renamed {n}")}),
            ));
        }
    }
    let before = emulator.calls();
    let settings = WriteSettings {
        page_rows: 35,
        ..WriteSettings::new(50, u64::MAX, Default::default())
    };
    let pushed = queue_and_drain(&mut engine, &writes, &settings).await;
    let after = emulator.calls();

    assert_eq!(pushed.records_written, 200);
    assert!(pushed.failures.is_empty(), "{:?}", pushed.failures);
    assert_eq!(
        (after.composite + after.write) - (before.composite + before.write),
        4 + 1,
        "180 opportunities in calls of 50 and 20 accounts in one call"
    );
    assert!(engine
        .store
        .pending_write_counts(Clock::system().now())
        .unwrap()
        .is_empty());
    emulator.with_org(|org| {
        for (n, id) in opportunities.iter().enumerate() {
            let amount = org.get("Opportunity", id).unwrap()["Amount"].as_f64();
            assert_eq!(amount, Some(1000.0 + n as f64), "{id}");
        }
    });
    emulator.shutdown().await;
}

/// The Ids of the first `n` live records of `object` in the emulator's org.
fn org_ids(emulator: &crate::emulator::RunningEmulator, object: &str, n: usize) -> Vec<String> {
    emulator.with_org(|org| {
        org.live_records(object)
            .take(n)
            .map(|r| r["Id"].as_str().unwrap().to_string())
            .collect()
    })
}

/// Queues `writes` and drains the outbox with `settings`.
async fn queue_and_drain(
    engine: &mut crate::sync::SyncEngine,
    writes: &[NewWrite],
    settings: &WriteSettings,
) -> Pushed {
    let clock = Clock::system();
    let now = clock.now();
    engine
        .store
        .transaction(|tx| tx.enqueue(writes, now))
        .unwrap();
    let hooks = Hooks {
        stop: &|| None,
        progress: &|_: &Progress| {},
        clock: &clock,
    };
    drain(
        &engine.crm,
        &engine.composite,
        &mut engine.store,
        settings,
        None,
        &hooks,
    )
    .await
    .unwrap()
}

/// Queues an Amount update of each opportunity (1000 + its position) and a rename of each
/// account, then drains with ingest jobs from `bulk_min_writes` writes of an object.
async fn drain_with_ingest(
    engine: &mut crate::sync::SyncEngine,
    (opportunities, accounts): (&[String], &[String]),
    bulk_min_writes: u64,
) -> Pushed {
    let mut writes: Vec<NewWrite> = opportunities
        .iter()
        .enumerate()
        .map(|(n, id)| update("Opportunity", id, json!({"Amount": 1000 + n})))
        .collect();
    writes.extend(
        accounts
            .iter()
            .map(|id| update("Account", id, json!({"Name": format!("Renamed {id}")}))),
    );
    let settings = WriteSettings::new(1000, bulk_min_writes, Default::default());
    queue_and_drain(engine, &writes, &settings).await
}

#[tokio::test]
async fn a_large_write_back_goes_through_an_ingest_job_and_keeps_each_records_result() {
    let emulator = Emulator::builder().seed("demo").start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut engine = engine_on(&emulator, &dir, SyncSettings::default());
    let (opportunities, accounts) = (
        org_ids(&emulator, "Opportunity", 150),
        org_ids(&emulator, "Account", 5),
    );
    // A validation rule refuses the update of one opportunity.
    let refused = opportunities[7].clone();
    let name = emulator.with_org(|org| org.get("Opportunity", &refused).unwrap()["Name"].clone());
    emulator.with_org(|org| org.set_validation_failure(name.as_str().map(str::to_string)));

    let before = emulator.calls();
    let pushed = drain_with_ingest(&mut engine, (&opportunities, &accounts), 100).await;
    let after = emulator.calls();

    assert_eq!(pushed.records_written, 154, "{:?}", pushed.failures);
    assert_eq!(pushed.failures.len(), 1, "{:?}", pushed.failures);
    let failure = &pushed.failures[0];
    assert_eq!(failure.record_id, refused);
    assert_eq!(failure.status_code, "FIELD_CUSTOM_VALIDATION_EXCEPTION");
    assert!(failure.permanent);
    // The opportunities in one job (create, upload, close, polls, result files); the five
    // accounts, under the threshold, in one composite call.
    let bulk = after.bulk - before.bulk;
    assert!((5..=10).contains(&bulk), "{bulk} Bulk calls");
    assert_eq!(after.composite - before.composite, 1);
    assert_eq!(after.write, before.write);
    emulator.with_org(|org| {
        for (n, id) in opportunities.iter().enumerate() {
            let amount = org.get("Opportunity", id).unwrap()["Amount"].as_f64();
            let want = (*id != refused).then_some(1000.0 + n as f64);
            if let Some(want) = want {
                assert_eq!(amount, Some(want), "{id}");
            } else {
                assert_ne!(
                    amount,
                    Some(1000.0 + n as f64),
                    "the refused update is not applied"
                );
            }
        }
    });
    let clock = Clock::system();
    assert!(engine
        .store
        .pending_write_counts(clock.now())
        .unwrap()
        .is_empty());
    let failed = engine.store.failed_writes().unwrap();
    assert_eq!(failed.len(), 1);
    assert!(
        failed[0].permanent && failed[0].record_id == refused,
        "{failed:?}"
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn when_the_org_refuses_ingest_jobs_the_write_back_goes_through_composite_calls() {
    let emulator = Emulator::builder().seed("demo").start().await.unwrap();
    emulator.bulk().refuse_objects(&["Opportunity"]);
    let dir = tempfile::tempdir().unwrap();
    let mut engine = engine_on(&emulator, &dir, SyncSettings::default());
    let opportunities = org_ids(&emulator, "Opportunity", 150);

    let before = emulator.calls();
    let pushed = drain_with_ingest(&mut engine, (&opportunities, &[]), 100).await;
    let after = emulator.calls();

    assert_eq!(pushed.records_written, 150, "{:?}", pushed.failures);
    assert!(pushed.failures.is_empty());
    assert_eq!(after.bulk - before.bulk, 1, "the refused job creation");
    assert_eq!(
        after.composite - before.composite,
        1,
        "then one composite call"
    );
    emulator.with_org(|org| {
        let amount = org.get("Opportunity", &opportunities[3]).unwrap()["Amount"].as_f64();
        assert_eq!(amount, Some(1003.0));
    });
    emulator.shutdown().await;
}
