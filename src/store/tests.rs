//! Unit tests of the store: opening and migrations, runs, findings, meta, transactions and
//! two handles on one file here; the mirror, the outbox and plan history in `tests/`. The
//! helpers below are shared by all of them.

mod history;
mod mirror;
mod outbox;

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

/// A record whose only field is its Id.
fn bare(id: &str, at: DateTime<Utc>, deleted: bool) -> MirrorRecord {
    MirrorRecord {
        id: id.into(),
        system_modstamp: at,
        is_deleted: deleted,
        fields: fields(json!({ "Id": id })),
    }
}

/// Queues an update of plan `a0P<n>` for the n-th (1-based) of `values` at `t(0)`; returns
/// their outbox ids.
fn queue<const N: usize>(store: &mut Store, values: [Value; N]) -> Vec<i64> {
    let writes: Vec<NewWrite> = values
        .into_iter()
        .enumerate()
        .map(|(i, v)| update(&format!("a0P{}", i + 1), v))
        .collect();
    store.enqueue(&writes, t(0)).unwrap()
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

    store
        .apply_page(
            "Task",
            &[
                bare("old", long_ago, true),
                bare("new", Utc::now(), true),
                bare("live", long_ago, false),
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
