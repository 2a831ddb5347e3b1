//! Plan history: a row per change, rolled back with its transaction, pruned to each
//! plan's newest, and an upgrade from a version 1 store.

use serde_json::json;

use super::*;

fn metrics(plan: &str, won: &str, gap: Option<&str>) -> PlanMetrics {
    let d = |s: &str| s.parse::<rust_decimal::Decimal>().unwrap();
    PlanMetrics {
        plan_id: plan.into(),
        currency: Some("EUR".into()),
        won: d(won),
        open: d("20000"),
        weighted: d("2000"),
        gap: gap.map(d),
        coverage: None,
        attainment: Some(d("10")),
    }
}

#[test]
fn history_adds_a_row_only_when_a_plans_values_change() {
    let mut store = Store::open_in_memory().unwrap();
    let record = |store: &mut Store, run: i64, at: i64, m: Vec<PlanMetrics>| {
        store
            .transaction(|tx| tx.record_history(run, t(at), &m))
            .unwrap()
    };
    assert_eq!(
        record(
            &mut store,
            1,
            0,
            vec![metrics("P1", "10000", None), metrics("P2", "5", None)]
        ),
        2
    );
    // The same values, written with another scale, are no change.
    assert_eq!(
        record(&mut store, 2, 60, vec![metrics("P1", "10000.00", None)]),
        0
    );
    assert_eq!(
        record(&mut store, 3, 120, vec![metrics("P1", "15000", None)]),
        1
    );
    // A value that becomes non-null is a change; so is a change of currency.
    assert_eq!(
        record(&mut store, 4, 180, vec![metrics("P1", "15000", Some("3"))]),
        1
    );
    let mut usd = metrics("P1", "15000", Some("3"));
    usd.currency = Some("USD".into());
    assert_eq!(record(&mut store, 5, 240, vec![usd]), 1);

    let points = store.plan_history("P1", None).unwrap();
    let runs: Vec<i64> = points.iter().map(|p| p.run_id).collect();
    assert_eq!(runs, [1, 3, 4, 5]);
    assert_eq!(points[0].recorded_at, t(0));
    // Read back exactly, at the fields' two places.
    assert_eq!(points[1].metrics.won.to_string(), "15000.00");
    assert_eq!(points[1].metrics.gap, None);
    assert_eq!(
        points[2].metrics.gap.map(|g| g.to_string()),
        Some("3.00".into())
    );
    assert_eq!(
        store
            .plan_history("P1", Some(t(180)))
            .unwrap()
            .iter()
            .map(|p| p.run_id)
            .collect::<Vec<_>>(),
        [4, 5]
    );
    assert!(store.plan_history("P3", None).unwrap().is_empty());
}

#[test]
fn history_is_rolled_back_with_the_writes_of_its_transaction() {
    let mut store = Store::open_in_memory().unwrap();
    let failed: Result<(), StoreError> = store.transaction(|tx| {
        tx.enqueue(&[update("a01", json!({"Won_Amount__c": 1}))], t(0))?;
        tx.record_history(1, t(0), &[metrics("P1", "1", None)])?;
        Err(StoreError::Invalid {
            what: "the cycle failed".into(),
        })
    });
    assert!(failed.is_err());
    assert!(store.plan_history("P1", None).unwrap().is_empty());
    assert!(store.unsettled_writes().unwrap().is_empty());
}

#[test]
fn pruning_history_keeps_each_plans_newest_row() {
    let mut store = Store::open_in_memory().unwrap();
    for (run, won) in [(1, "1"), (2, "2"), (3, "3")] {
        store
            .transaction(|tx| {
                tx.record_history(run, t(run * 100), &[metrics("P1", won, None)])?;
                // P2 changed only once, long ago.
                tx.record_history(run, t(run * 100), &[metrics("P2", "7", None)])
            })
            .unwrap();
    }
    // Everything is older than the cut-off: only the newest row of each plan stays.
    assert_eq!(store.prune_history(t(1000)).unwrap(), 2);
    let p1 = store.plan_history("P1", None).unwrap();
    assert_eq!(p1.iter().map(|p| p.run_id).collect::<Vec<_>>(), [3]);
    assert_eq!(store.plan_history("P2", None).unwrap().len(), 1);
    assert_eq!(store.prune_history(t(1000)).unwrap(), 0);
}

#[test]
fn a_version_1_store_upgrades_keeping_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plansync.db");
    {
        // A store as the previous release left it: migration 1 only, with an outbox row.
        let mut conn = Connection::open(&path).unwrap();
        let tx = conn.transaction().unwrap();
        tx.execute_batch(migrations::MIGRATIONS[0].2).unwrap();
        tx.pragma_update(None, "user_version", 1).unwrap();
        tx.commit().unwrap();
        conn.execute("INSERT INTO meta (key, value) VALUES ('k', 'kept')", [])
            .unwrap();
    }
    let mut store = Store::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), LATEST_VERSION);
    assert_eq!(store.meta("k").unwrap().as_deref(), Some("kept"));
    store
        .transaction(|tx| tx.record_history(1, t(0), &[metrics("P1", "1", None)]))
        .unwrap();
    assert_eq!(store.plan_history("P1", None).unwrap().len(), 1);
}
