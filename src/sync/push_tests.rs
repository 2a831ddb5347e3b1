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
    let clock = Clock::system();
    let now = clock.now();
    engine
        .store
        .transaction(|tx| tx.enqueue(&writes, now))
        .unwrap();

    let hooks = Hooks {
        stop: &|| None,
        progress: &|_: &Progress| {},
        clock: &clock,
    };
    let before = emulator.calls();
    let pushed = drain_in_pages(
        &engine.crm,
        &engine.composite,
        &mut engine.store,
        (50, 35),
        None,
        &hooks,
    )
    .await
    .unwrap();
    let after = emulator.calls();

    assert_eq!(pushed.records_written, 200);
    assert!(pushed.failures.is_empty(), "{:?}", pushed.failures);
    assert_eq!(
        (after.composite + after.write) - (before.composite + before.write),
        4 + 1,
        "180 opportunities in calls of 50 and 20 accounts in one call"
    );
    assert_eq!(engine.store.pending_write_count(clock.now()).unwrap(), 0);
    emulator.with_org(|org| {
        for (n, id) in opportunities.iter().enumerate() {
            let amount = org.get("Opportunity", id).unwrap()["Amount"].as_f64();
            assert_eq!(amount, Some(1000.0 + n as f64), "{id}");
        }
    });
    emulator.shutdown().await;
}
