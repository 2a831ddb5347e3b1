//! The outbox: queueing and supersession, the state machine, backoff, settling of writes in
//! doubt, admin retry and ignore, and the archive.

use chrono::Duration;
use serde_json::json;

use super::*;

#[test]
fn outbox_moves_new_sent_succeeded() {
    let mut store = Store::open_in_memory().unwrap();
    let ids = queue(
        &mut store,
        [json!({"Won_Amount__c": 10}), json!({"Won_Count__c": 2})],
    );
    assert_eq!(ids.len(), 2);
    assert_eq!(store.outbox_depth().unwrap(), (2, Some(t(0))));
    let pending = store.pending_writes(t(0), 1).unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].id, ids[0]);
    assert_eq!(pending[0].status, WriteStatus::New);
    assert_eq!(pending[0].fields, fields(json!({"Won_Amount__c": 10})));

    store.mark_sent(&ids, t(1)).unwrap();
    // A crash now: SENT rows come back for resending.
    assert_eq!(pending_ids(&store, t(2)), ids);
    store.mark_succeeded(&ids, t(2)).unwrap();
    let row = store.write(ids[0]).unwrap().unwrap();
    assert_eq!(row.status, WriteStatus::Succeeded);
    assert_eq!(row.attempts, 1);
    assert_eq!(row.updated_at, t(2));
    assert!(pending_ids(&store, t(3)).is_empty());
    assert_eq!(store.outbox_depth().unwrap(), (0, None));
}

#[test]
fn enqueue_supersedes_unsent_writes_for_the_same_record() {
    let mut store = Store::open_in_memory().unwrap();
    let first = store
        .enqueue(
            &[update(
                "a0P1",
                json!({"Won_Amount__c": 10, "Won_Count__c": 1}),
            )],
            t(0),
        )
        .unwrap()[0];
    let second = store
        .enqueue(&[update("a0P1", json!({"Won_Amount__c": 20}))], t(5))
        .unwrap()[0];
    assert_eq!(first, second, "the NEW row is replaced in place");
    let row = store.write(first).unwrap().unwrap();
    assert_eq!(row.fields, fields(json!({"Won_Amount__c": 20})));
    assert_eq!(pending_ids(&store, t(5)), vec![first]);

    // A SENT row (left by a run that died with it in flight: nothing is in flight while the
    // engine enqueues) is replaced too, so its outdated values are never sent before the new
    // ones, nor a second write for the record queued behind it.
    store.mark_sent(&[first], t(6)).unwrap();
    let third = store
        .enqueue(&[update("a0P1", json!({"Won_Amount__c": 30}))], t(7))
        .unwrap()[0];
    assert_eq!(third, first);
    let row = store.write(third).unwrap().unwrap();
    assert_eq!(
        (row.status, row.fields["Won_Amount__c"].clone()),
        (WriteStatus::New, json!(30))
    );
    assert_eq!(pending_ids(&store, t(7)), vec![third]);

    // A transient failure is replaced too, and due at once.
    store.mark_sent(&[third], t(9)).unwrap();
    store
        .mark_failed(third, "UNABLE_TO_LOCK_ROW", "locked", false, t(9))
        .unwrap();
    let fourth = store
        .enqueue(&[update("a0P1", json!({"Won_Amount__c": 40}))], t(10))
        .unwrap()[0];
    assert_eq!(fourth, third);
    let row = store.write(fourth).unwrap().unwrap();
    assert_eq!(
        (row.status, row.attempts, row.last_error_code),
        (WriteStatus::New, 0, None)
    );
    assert_eq!(pending_ids(&store, t(10)), vec![fourth]);
}

#[test]
fn writes_in_doubt_are_settled_as_landed_or_queued_again() {
    let mut store = Store::open_in_memory().unwrap();
    let ids = queue(
        &mut store,
        [10, 20, 30].map(|n| json!({"Won_Amount__c": n})),
    );
    store.mark_sent(&ids[..2], t(1)).unwrap();
    let in_doubt: Vec<i64> = store
        .writes_in_doubt()
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(in_doubt, ids[..2].to_vec());

    store.settle_in_doubt(&[ids[0]], &[ids[1]], t(2)).unwrap();
    let landed = store.write(ids[0]).unwrap().unwrap();
    assert_eq!(
        (landed.status, landed.attempts, landed.updated_at),
        (WriteStatus::Succeeded, 1, t(2))
    );
    let requeued = store.write(ids[1]).unwrap().unwrap();
    assert_eq!(
        (requeued.status, requeued.attempts),
        (WriteStatus::New, 1),
        "the attempt stays counted"
    );
    assert!(store.writes_in_doubt().unwrap().is_empty());
    assert_eq!(pending_ids(&store, t(2)), vec![ids[1], ids[2]]);

    // Only SENT rows are settled: one an admin ignored meanwhile keeps that decision.
    store.mark_sent(&[ids[2]], t(4)).unwrap();
    store.ignore_write(ids[2], t(5)).unwrap();
    assert_eq!(
        store.settle_in_doubt(&[ids[1]], &[ids[2]], t(6)).unwrap(),
        0
    );
    assert_eq!(
        store.write(ids[1]).unwrap().unwrap().status,
        WriteStatus::New
    );
    assert_eq!(
        store.write(ids[2]).unwrap().unwrap().status,
        WriteStatus::Ignored
    );
}

#[test]
fn transient_failures_back_off_and_permanent_ones_wait() {
    let mut store = Store::open_in_memory().unwrap();
    let ids = queue(&mut store, [json!({"A": 1}), json!({"B": 2})]);
    store.mark_sent(&ids, t(0)).unwrap();
    store
        .mark_failed(
            ids[0],
            "UNABLE_TO_LOCK_ROW",
            "unable to obtain exclusive access",
            false,
            t(0),
        )
        .unwrap();
    store
        .mark_failed(
            ids[1],
            "FIELD_CUSTOM_VALIDATION_EXCEPTION",
            "Target must be set",
            true,
            t(0),
        )
        .unwrap();
    // Not due before the backoff passes, so a drain loop within one cycle terminates.
    assert!(pending_ids(&store, t(30)).is_empty());
    assert_eq!(pending_ids(&store, t(60)), vec![ids[0]]);
    // Second failure doubles the wait.
    store.mark_sent(&[ids[0]], t(60)).unwrap();
    store
        .mark_failed(ids[0], "SERVER_ERROR", "503", false, t(60))
        .unwrap();
    assert!(pending_ids(&store, t(60 + 119)).is_empty());
    assert_eq!(pending_ids(&store, t(60 + 120)), vec![ids[0]]);
    assert_eq!(crate::store::outbox::backoff_minutes(30), 60);

    let failed = store.failed_writes().unwrap();
    assert_eq!(failed.len(), 2);
    let permanent = failed.iter().find(|r| r.id == ids[1]).unwrap();
    assert!(permanent.permanent);
    assert_eq!(
        permanent.last_error_code.as_deref(),
        Some("FIELD_CUSTOM_VALIDATION_EXCEPTION")
    );
    assert_eq!(
        permanent.last_error_message.as_deref(),
        Some("Target must be set")
    );
    // Transient failures count as depth; permanent ones do not.
    assert_eq!(store.outbox_depth().unwrap().0, 1);

    // A newer write for the permanently failed record supersedes it.
    let newer = store
        .enqueue(&[update("a0P2", json!({"B": 3}))], t(200))
        .unwrap()[0];
    assert_ne!(newer, ids[1]);
    let old = store.write(ids[1]).unwrap().unwrap();
    assert_eq!(old.status, WriteStatus::Ignored);
    assert_eq!(old.superseded_by, Some(newer));
}

#[test]
fn admin_retry_and_ignore() {
    let mut store = Store::open_in_memory().unwrap();
    let id = store
        .enqueue(&[update("a0P1", json!({"A": 1}))], t(0))
        .unwrap()[0];
    let err = store.retry_write(id, t(0)).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::InvalidState {
                status: WriteStatus::New,
                ..
            }
        ),
        "{err:?}"
    );
    store.mark_sent(&[id], t(0)).unwrap();
    store
        .mark_failed(id, "INVALID_FIELD", "no such field", true, t(0))
        .unwrap();
    assert!(pending_ids(&store, t(100_000)).is_empty());
    store.retry_write(id, t(1)).unwrap();
    assert_eq!(pending_ids(&store, t(1)), vec![id]);
    store.ignore_write(id, t(2)).unwrap();
    assert!(pending_ids(&store, t(2)).is_empty());
    assert_eq!(
        store.write(id).unwrap().unwrap().status,
        WriteStatus::Ignored
    );
    assert!(matches!(
        store.ignore_write(999, t(3)).unwrap_err(),
        StoreError::NotFound { .. }
    ));
    store.retry_write(id, t(3)).unwrap();
    store.mark_sent(&[id], t(4)).unwrap();
    store.mark_succeeded(&[id], t(4)).unwrap();
    assert!(matches!(
        store.ignore_write(id, t(5)).unwrap_err(),
        StoreError::InvalidState {
            status: WriteStatus::Succeeded,
            ..
        }
    ));
}

#[test]
fn archive_moves_settled_rows_only() {
    let mut store = Store::open_in_memory().unwrap();
    // Every cycle runs it: it must not read the whole settled history to find nothing.
    assert!(store.archive_uses_index());
    let ids = queue(&mut store, [1, 2, 3, 4].map(|n| json!({"A": n})));
    store.mark_sent(&ids[..3], t(0)).unwrap();
    store.mark_succeeded(&[ids[0]], t(0)).unwrap();
    store.mark_failed(ids[1], "X", "bad", true, t(0)).unwrap();
    store.ignore_write(ids[2], t(0)).unwrap();
    let later = t(0) + Duration::days(40);
    // Rows updated at the cutoff are kept.
    assert_eq!(store.archive_writes(t(0)).unwrap(), 0);
    assert_eq!(store.archive_writes(later - Duration::days(31)).unwrap(), 2);
    assert_eq!(store.write(ids[0]).unwrap(), None);
    assert_eq!(store.write(ids[2]).unwrap(), None);
    assert!(
        store.write(ids[1]).unwrap().is_some(),
        "failed rows stay visible"
    );
    assert!(store.write(ids[3]).unwrap().is_some(), "new rows stay");
    let archived: i64 = store
        .conn
        .query_row("SELECT count(*) FROM outbox_archive", [], |r| r.get(0))
        .unwrap();
    assert_eq!(archived, 2);
}

#[test]
fn upserts_keep_their_external_id_field() {
    let mut store = Store::open_in_memory().unwrap();
    let write = NewWrite {
        object: "Account_Plan_Snapshot__c".into(),
        record_id: "a0P1:2024-05-01".into(),
        kind: WriteKind::Upsert {
            external_id_field: "Snapshot_Key__c".into(),
        },
        fields: fields(json!({"Won_Amount__c": 5})),
        reason: "snapshot".into(),
    };
    let id = store.enqueue(std::slice::from_ref(&write), t(0)).unwrap()[0];
    let row = store.write(id).unwrap().unwrap();
    assert_eq!(row.kind, write.kind);
    assert_eq!(row.record_id, write.record_id);
}

#[test]
fn enqueue_is_one_transaction() {
    let mut store = Store::open_in_memory().unwrap();
    let mut bad = update("", json!({}));
    bad.record_id.clear();
    assert!(store
        .enqueue(&[update("a0P1", json!({"A": 1})), bad], t(0))
        .is_err());
    assert_eq!(store.outbox_depth().unwrap(), (0, None));
}

#[test]
fn unsettled_and_refused_writes_are_told_apart() {
    let mut store = Store::open_in_memory().unwrap();
    let now = Utc::now();
    let write = |id: &str| NewWrite {
        object: "Opportunity".into(),
        record_id: id.into(),
        kind: WriteKind::Update,
        fields: serde_json::from_str(r#"{"Account_Plan__c":"a0P"}"#).unwrap(),
        reason: "link".into(),
    };
    let ids = store
        .enqueue(
            &[
                write("o1"),
                write("o2"),
                write("o3"),
                write("o4"),
                write("o5"),
            ],
            now,
        )
        .unwrap();
    store
        .mark_failed(ids[1], "UNABLE_TO_LOCK_ROW", "locked", false, now)
        .unwrap();
    store
        .mark_failed(ids[2], "FIELD_CUSTOM_VALIDATION_EXCEPTION", "no", true, now)
        .unwrap();
    store.ignore_write(ids[3], now).unwrap();
    // Set aside by the engine (no longer wanted): settled, but no refusal of its values.
    store.set_aside_write(ids[4], now).unwrap();
    let row = store.write(ids[4]).unwrap().unwrap();
    assert_eq!((row.status, row.set_aside), (WriteStatus::Ignored, true));
    assert!(!store.write(ids[3]).unwrap().unwrap().set_aside);
    let unsettled: Vec<String> = store
        .unsettled_writes()
        .unwrap()
        .into_iter()
        .map(|r| r.record_id)
        .collect();
    assert_eq!(unsettled, ["o1", "o2"]);
    let refused: Vec<String> = store
        .standing_refusals()
        .unwrap()
        .into_iter()
        .map(|r| r.record_id)
        .collect();
    assert_eq!(refused, ["o3", "o4"]);
    // An admin may still retry a set-aside write, and ignoring it makes it a refusal.
    store.retry_write(ids[4], now).unwrap();
    store.ignore_write(ids[4], now).unwrap();
    assert!(!store.write(ids[4]).unwrap().unwrap().set_aside);
    assert_eq!(store.standing_refusals().unwrap().len(), 3);
}
