//! Unit tests of the store: migrations, mirror pages and cursors, the outbox state machine,
//! runs, findings, meta, and two handles on one file.

use chrono::{Duration, TimeZone};
use serde_json::json;

use super::*;

fn t(secs: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap() + Duration::seconds(secs)
}

fn fields(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

fn rec(id: &str, at: i64, deleted: bool, value: Value) -> MirrorRecord {
    MirrorRecord {
        id: id.to_string(),
        system_modstamp: t(at),
        is_deleted: deleted,
        fields: fields(value),
    }
}

fn cur(at: i64, id: &str) -> Cursor {
    Cursor {
        system_modstamp: t(at),
        id: id.to_string(),
    }
}

fn update(record_id: &str, value: Value) -> NewWrite {
    NewWrite {
        object: "Account_Plan__c".into(),
        record_id: record_id.into(),
        kind: WriteKind::Update,
        fields: fields(value),
        reason: "rollups changed".into(),
    }
}

fn pending_ids(store: &Store, now: DateTime<Utc>) -> Vec<i64> {
    store
        .pending_writes(now, 100)
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect()
}

// ---- migrations and opening ----

#[test]
fn migrates_from_empty_and_reopens_idempotently() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plansync.db");
    {
        let mut store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), LATEST_VERSION);
        store.set_meta("k", "v").unwrap();
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), LATEST_VERSION);
    assert_eq!(store.meta("k").unwrap().as_deref(), Some("v"));
    let mem = Store::open_in_memory().unwrap();
    assert_eq!(mem.schema_version().unwrap(), LATEST_VERSION);
}

#[test]
fn refuses_a_database_from_a_newer_plansync() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plansync.db");
    drop(Store::open(&path).unwrap());
    {
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", LATEST_VERSION + 3)
            .unwrap();
    }
    let err = Store::open(&path).unwrap_err();
    match &err {
        StoreError::TooNew {
            path: p,
            found,
            supported,
        } => {
            assert_eq!(p, &path);
            assert_eq!(*found, LATEST_VERSION + 3);
            assert_eq!(*supported, LATEST_VERSION);
        }
        other => panic!("expected TooNew, got {other:?}"),
    }
    let message = err.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("newer plansync"), "{message}");
}

#[test]
fn a_file_that_is_not_a_database_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    std::fs::write(
        &path,
        "this is not sqlite, just text long enough to be a header",
    )
    .unwrap();
    let err = Store::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
    assert!(err.to_string().contains("notes.txt"));
}

#[test]
fn file_store_uses_wal_and_pragmas() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("p.db")).unwrap();
    assert_eq!(store.journal_mode().unwrap(), "wal");
    let sync: i64 = store
        .conn
        .query_row("PRAGMA synchronous", [], |r| r.get(0))
        .unwrap();
    assert_eq!(sync, 1, "synchronous=NORMAL");
    let fk: i64 = store
        .conn
        .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
        .unwrap();
    assert_eq!(fk, 1);
}

// ---- mirror ----

#[test]
fn page_upserts_by_id_and_advances_cursor() {
    let mut store = Store::open_in_memory().unwrap();
    let stats = store
        .apply_page(
            "Opportunity",
            &[
                rec("006A", 1, false, json!({"Amount": 100.10, "Name": "a"})),
                rec("006B", 2, false, json!({"Amount": null})),
            ],
            Some(&cur(2, "006B")),
        )
        .unwrap();
    assert_eq!((stats.inserted, stats.updated, stats.deleted), (2, 0, 0));
    assert_eq!(store.cursor("Opportunity").unwrap(), Some(cur(2, "006B")));
    assert_eq!(store.cursor("Account").unwrap(), None);

    let stats = store
        .apply_page(
            "Opportunity",
            &[rec("006A", 3, false, json!({"Amount": 250.5}))],
            Some(&cur(3, "006A")),
        )
        .unwrap();
    assert_eq!((stats.inserted, stats.updated), (0, 1));
    let a = store.record("Opportunity", "006A").unwrap().unwrap();
    assert_eq!(a.fields, fields(json!({"Amount": 250.5})));
    assert_eq!(a.system_modstamp, t(3));
    assert_eq!(store.live_ids("Opportunity").unwrap(), vec!["006A", "006B"]);
}

#[test]
fn numbers_keep_their_exact_text() {
    let mut store = Store::open_in_memory().unwrap();
    let value: Map<String, Value> =
        serde_json::from_str(r#"{"Amount": 12345678901234.10, "P": 1E+2}"#).unwrap();
    let record = MirrorRecord {
        id: "006A".into(),
        system_modstamp: t(0),
        is_deleted: false,
        fields: value,
    };
    store.apply_page("Opportunity", &[record], None).unwrap();
    let back = store.record("Opportunity", "006A").unwrap().unwrap();
    assert_eq!(back.fields["Amount"].to_string(), "12345678901234.10");
}

#[test]
fn older_rows_and_cursors_do_not_overwrite_newer_ones() {
    let mut store = Store::open_in_memory().unwrap();
    store
        .apply_page(
            "Account",
            &[rec("001A", 10, false, json!({"Name": "new"}))],
            Some(&cur(10, "001A")),
        )
        .unwrap();
    let stats = store
        .apply_page(
            "Account",
            &[rec("001A", 5, false, json!({"Name": "old"}))],
            Some(&cur(5, "001A")),
        )
        .unwrap();
    assert_eq!(stats.stale, 1);
    assert_eq!(
        store.record("Account", "001A").unwrap().unwrap().fields["Name"],
        json!("new")
    );
    assert_eq!(store.cursor("Account").unwrap(), Some(cur(10, "001A")));
    // Same modstamp, larger Id moves the cursor.
    store
        .apply_page("Account", &[], Some(&cur(10, "001B")))
        .unwrap();
    assert_eq!(store.cursor("Account").unwrap(), Some(cur(10, "001B")));
    store.reset_cursor("Account").unwrap();
    assert_eq!(store.cursor("Account").unwrap(), None);
}

#[test]
fn a_page_and_its_cursor_commit_together() {
    let mut store = Store::open_in_memory().unwrap();
    store
        .apply_page(
            "Task",
            &[rec("00TA", 1, false, json!({"Status": "Open"}))],
            Some(&cur(1, "00TA")),
        )
        .unwrap();
    // The second record violates the non-empty Id constraint halfway through the page.
    let err = store
        .apply_page(
            "Task",
            &[
                rec("00TA", 5, false, json!({"Status": "Done"})),
                rec("00TB", 5, false, json!({})),
                rec("", 6, false, json!({})),
            ],
            Some(&cur(6, "00TZ")),
        )
        .unwrap_err();
    assert!(matches!(err, StoreError::Sqlite(_)), "{err:?}");
    assert_eq!(store.cursor("Task").unwrap(), Some(cur(1, "00TA")));
    assert_eq!(store.live_ids("Task").unwrap(), vec!["00TA"]);
    assert_eq!(
        store.record("Task", "00TA").unwrap().unwrap().fields["Status"],
        json!("Open")
    );
}

#[test]
fn deleted_rows_leave_the_live_view_but_stay_readable() {
    let mut store = Store::open_in_memory().unwrap();
    store
        .apply_page(
            "Opportunity",
            &[
                rec("006A", 1, false, json!({"Account_Plan__c": "a0P1"})),
                rec("006B", 1, false, json!({})),
            ],
            None,
        )
        .unwrap();
    let stats = store
        .apply_page(
            "Opportunity",
            &[rec("006A", 2, true, json!({"Account_Plan__c": "a0P1"}))],
            None,
        )
        .unwrap();
    assert_eq!(stats.deleted, 1);
    assert_eq!(store.live_ids("Opportunity").unwrap(), vec!["006B"]);
    let live: Vec<String> = store
        .live_records("Opportunity")
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(live, vec!["006B"]);
    let tomb = store.record("Opportunity", "006A").unwrap().unwrap();
    assert!(tomb.is_deleted);
    assert_eq!(tomb.fields["Account_Plan__c"], json!("a0P1"));
    // An undelete brings it back.
    store
        .apply_page("Opportunity", &[rec("006A", 3, false, json!({}))], None)
        .unwrap();
    assert_eq!(store.live_ids("Opportunity").unwrap(), vec!["006A", "006B"]);

    let removed = store
        .remove_records("Opportunity", &["006A".into(), "006Z".into()])
        .unwrap();
    assert_eq!(removed, 1);
    assert_eq!(store.record("Opportunity", "006A").unwrap(), None);
}

#[test]
fn patch_record_merges_fields() {
    let mut store = Store::open_in_memory().unwrap();
    store
        .apply_page(
            "Account_Plan__c",
            &[rec(
                "a0P1",
                1,
                false,
                json!({"Name": "P", "Won_Amount__c": 1, "Won_Count__c": 1}),
            )],
            None,
        )
        .unwrap();
    store
        .patch_record(
            "Account_Plan__c",
            "a0P1",
            &fields(json!({"Won_Amount__c": 250.00, "Attainment__c": null})),
        )
        .unwrap();
    let r = store.record("Account_Plan__c", "a0P1").unwrap().unwrap();
    assert_eq!(
        r.fields,
        fields(
            json!({"Name": "P", "Won_Amount__c": 250.00, "Won_Count__c": 1, "Attainment__c": null})
        )
    );
    assert_eq!(r.system_modstamp, t(1));
    let err = store
        .patch_record("Account_Plan__c", "missing", &Map::new())
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }));
}

// ---- outbox ----

#[test]
fn outbox_moves_new_sent_succeeded() {
    let mut store = Store::open_in_memory().unwrap();
    let ids = store
        .enqueue(
            &[
                update("a0P1", json!({"Won_Amount__c": 10})),
                update("a0P2", json!({"Won_Count__c": 2})),
            ],
            t(0),
        )
        .unwrap();
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
    let ids = store
        .enqueue(
            &[
                update("a0P1", json!({"Won_Amount__c": 10})),
                update("a0P2", json!({"Won_Amount__c": 20})),
                update("a0P3", json!({"Won_Amount__c": 30})),
            ],
            t(0),
        )
        .unwrap();
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
    let ids = store
        .enqueue(
            &[
                update("a0P1", json!({"A": 1})),
                update("a0P2", json!({"B": 2})),
            ],
            t(0),
        )
        .unwrap();
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
    assert_eq!(super::ops::backoff_minutes(30), 60);

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
    let ids = store
        .enqueue(
            &[
                update("a0P1", json!({"A": 1})),
                update("a0P2", json!({"A": 2})),
                update("a0P3", json!({"A": 3})),
                update("a0P4", json!({"A": 4})),
            ],
            t(0),
        )
        .unwrap();
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

// ---- runs, findings, meta, transactions ----

#[test]
fn runs_findings_and_meta() {
    let mut store = Store::open_in_memory().unwrap();
    let r1 = store.start_run("incremental", t(0)).unwrap();
    store
        .finish_run(r1, "succeeded", &json!({"written": 3}), t(10))
        .unwrap();
    let r2 = store.start_run("full", t(20)).unwrap();
    assert!(matches!(
        store
            .finish_run(r2, "great", &json!({}), t(21))
            .unwrap_err(),
        StoreError::Invalid { .. }
    ));
    let runs = store.recent_runs(5).unwrap();
    assert_eq!(runs.iter().map(|r| r.id).collect::<Vec<_>>(), vec![r2, r1]);
    assert_eq!(runs[0].outcome, None);
    assert_eq!(runs[1].outcome.as_deref(), Some("succeeded"));
    assert_eq!(runs[1].finished_at, Some(t(10)));
    assert_eq!(runs[1].summary, Some(json!({"written": 3})));
    assert_eq!(store.recent_runs(1).unwrap().len(), 1);

    store
        .replace_findings(&[(
            "ambiguous_link".into(),
            "006A a0P1 a0P2".into(),
            "two plans".into(),
        )])
        .unwrap();
    store
        .replace_findings(&[(
            "bad_period".into(),
            "a0P3".into(),
            "end before start".into(),
        )])
        .unwrap();
    let f = store.findings().unwrap();
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].kind, "bad_period");

    assert_eq!(store.meta("last_full").unwrap(), None);
    store.set_meta("last_full", "a").unwrap();
    store.set_meta("last_full", "b").unwrap();
    assert_eq!(store.meta("last_full").unwrap().as_deref(), Some("b"));
}

#[test]
fn transaction_rolls_back_unless_committed() {
    let mut store = Store::open_in_memory().unwrap();
    let result: Result<(), StoreError> = store.transaction(|tx| {
        tx.set_meta("k", "v")?;
        tx.enqueue(&[update("a0P1", json!({"A": 1}))], t(0))?;
        Err(StoreError::Invalid {
            what: "abort".into(),
        })
    });
    assert!(result.is_err());
    assert_eq!(store.meta("k").unwrap(), None);
    assert_eq!(store.outbox_depth().unwrap().0, 0);
    store
        .transaction(|tx| {
            tx.set_meta("k", "v")?;
            tx.enqueue(&[update("a0P1", json!({"A": 1}))], t(0))
        })
        .unwrap();
    assert_eq!(store.meta("k").unwrap().as_deref(), Some("v"));
    assert_eq!(store.outbox_depth().unwrap().0, 1);
}

#[test]
fn two_handles_on_one_file_read_and_write() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plansync.db");
    let daemon_path = path.clone();
    let daemon = std::thread::spawn(move || {
        let mut store = Store::open(&daemon_path).unwrap();
        for i in 0..200 {
            let id = format!("006{i:04}");
            store
                .apply_page(
                    "Opportunity",
                    &[rec(&id, i, false, json!({"n": i}))],
                    Some(&cur(i, &id)),
                )
                .unwrap();
            store
                .transaction(|tx| {
                    let n = tx.live_ids("Opportunity")?.len();
                    tx.set_meta("daemon_seen", &n.to_string())
                })
                .unwrap();
        }
    });
    let mut admin = Store::open(&path).unwrap();
    for i in 0..200 {
        admin.set_meta(&format!("admin{i}"), "x").unwrap();
        let id = admin
            .enqueue(&[update(&format!("a0P{i}"), json!({"i": i}))], t(i))
            .unwrap()[0];
        if i % 2 == 0 {
            admin.ignore_write(id, t(i)).unwrap();
        }
        admin.live_ids("Opportunity").unwrap();
    }
    daemon.join().unwrap();
    assert_eq!(admin.live_ids("Opportunity").unwrap().len(), 200);
    assert_eq!(admin.meta("daemon_seen").unwrap().as_deref(), Some("200"));
    assert_eq!(admin.outbox_depth().unwrap().0, 100);
}

#[test]
fn live_records_stream_in_id_order_without_the_deleted_ones() {
    let mut store = Store::open_in_memory().unwrap();
    let at = Utc::now();
    let rec = |id: &str, deleted: bool| MirrorRecord {
        id: id.into(),
        system_modstamp: at,
        is_deleted: deleted,
        fields: serde_json::from_str(&format!(r#"{{"Id":"{id}"}}"#)).unwrap(),
    };
    store
        .apply_page(
            "Contact",
            &[rec("b", false), rec("a", false), rec("c", true)],
            None,
        )
        .unwrap();
    let mut seen = Vec::new();
    store
        .for_each_live_record("Contact", |r| seen.push(r.id))
        .unwrap();
    assert_eq!(seen, ["a", "b"]);
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

#[test]
fn old_runs_and_old_tombstones_are_pruned() {
    let mut store = Store::open_in_memory().unwrap();
    let long_ago = Utc::now() - Duration::days(100);
    let run = store.start_run("incremental", long_ago).unwrap();
    store
        .finish_run(run, "succeeded", &serde_json::json!({}), long_ago)
        .unwrap();
    let recent = store.start_run("incremental", Utc::now()).unwrap();
    store
        .finish_run(recent, "succeeded", &serde_json::json!({}), Utc::now())
        .unwrap();
    assert_eq!(
        store.prune_runs(Utc::now() - Duration::days(90)).unwrap(),
        1
    );
    assert_eq!(store.recent_runs(10).unwrap().len(), 1);

    let rec = |id: &str, at, deleted| MirrorRecord {
        id: id.into(),
        system_modstamp: at,
        is_deleted: deleted,
        fields: serde_json::from_str(&format!(r#"{{"Id":"{id}"}}"#)).unwrap(),
    };
    store
        .apply_page(
            "Task",
            &[
                rec("old", long_ago, true),
                rec("new", Utc::now(), true),
                rec("live", long_ago, false),
            ],
            None,
        )
        .unwrap();
    assert_eq!(
        store
            .purge_tombstones(Utc::now() - Duration::days(30))
            .unwrap(),
        1
    );
    assert!(store.record("Task", "old").unwrap().is_none());
    assert!(store.record("Task", "new").unwrap().is_some());
    assert!(store.record("Task", "live").unwrap().is_some());
}

#[test]
fn records_by_id_returns_live_and_deleted_versions_of_the_ids_it_holds() {
    let mut store = Store::open_in_memory().unwrap();
    let at = Utc::now();
    let rec = |id: &str, deleted: bool| MirrorRecord {
        id: id.into(),
        system_modstamp: at,
        is_deleted: deleted,
        fields: serde_json::from_str(&format!(r#"{{"Id":"{id}"}}"#)).unwrap(),
    };
    let many: Vec<MirrorRecord> = (0..1200)
        .map(|i| rec(&format!("r{i:04}"), i == 7))
        .collect();
    store.apply_page("Event", &many, None).unwrap();
    let ids: Vec<String> = ["r0007", "r1100", "missing", "r0001"]
        .iter()
        .map(|s| s.to_string())
        .chain((0..1000).map(|i| format!("r{i:04}")))
        .collect();
    let found = store.records_by_id("Event", &ids).unwrap();
    assert_eq!(found.len(), 1001);
    assert!(found["r0007"].is_deleted);
    assert!(!found["r1100"].is_deleted);
    assert!(!found.contains_key("missing"));
    assert!(store.records_by_id("Task", &ids).unwrap().is_empty());
}

// ---- plan history ----

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
