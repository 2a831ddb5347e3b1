//! The cycle's time-dependent rules, run at instants set by hand (no waiting): the outbox
//! archive after 31 days, the retry backoff of a transient failure and the delete-log window.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use url::Url;

use super::*;
use crate::crm::{AuthConfig, CrmConfig};
use crate::store::{NewWrite, WriteKind, WriteStatus};

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-01T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

/// An engine whose CRM nobody listens for (port 1 refuses at once), on a fresh store.
fn engine(dir: &tempfile::TempDir) -> SyncEngine {
    let crm = CrmClient::new(CrmConfig {
        login_url: Url::parse("http://127.0.0.1:1").unwrap(),
        instance_url: Some(Url::parse("http://127.0.0.1:1").unwrap()),
        api_version: "62.0".into(),
        auth: AuthConfig::ClientCredentials {
            client_id: "id".into(),
            client_secret: "secret".to_string().into(),
        },
        timeout: StdDuration::from_secs(5),
        max_retries: 0,
    })
    .unwrap();
    let store = Store::open(&dir.path().join("plansync.db")).unwrap();
    let mut engine = SyncEngine::new(crm, store, SyncSettings::default());
    engine.set_clock(Clock::fixed(t0()));
    engine
}

/// Hooks that never stop the cycle and report no progress, on `clock`.
fn hooks(clock: &Clock) -> Hooks<'_> {
    Hooks {
        stop: &|| None,
        progress: &|_: &Progress| {},
        clock,
    }
}

/// Sends what is due in the outbox, 1,000 records per call.
async fn drain(engine: &mut SyncEngine, hooks: &Hooks<'_>) -> push::Pushed {
    push::drain(
        &engine.crm,
        &engine.composite,
        &mut engine.store,
        &push::WriteSettings::new(1000, 10_000, Default::default()),
        None,
        hooks,
    )
    .await
    .unwrap()
}

fn queue_one(engine: &mut SyncEngine, at: DateTime<Utc>) -> i64 {
    engine
        .store
        .transaction(|tx| {
            tx.enqueue(
                &[NewWrite {
                    object: "Account_Plan__c".into(),
                    record_id: "a00000000000001AAA".into(),
                    kind: WriteKind::Update,
                    fields: json!({"Won_Amount__c": 1}).as_object().unwrap().clone(),
                    reason: "rollups changed".into(),
                }],
                at,
            )
        })
        .unwrap();
    engine.store.pending_writes(at, 10).unwrap()[0].id
}

#[test]
fn a_settled_write_moves_to_the_archive_31_days_after_it_settled() {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = engine(&dir);
    let id = queue_one(&mut engine, t0());
    engine.store.mark_sent(&[id], t0()).unwrap();
    engine.store.mark_succeeded(&[id], t0()).unwrap();

    engine
        .maintain(t0() + Duration::days(31) - Duration::seconds(1), false)
        .unwrap();
    assert!(
        engine.store.write(id).unwrap().is_some(),
        "a day short of 31, the row stays in the outbox"
    );
    engine
        .maintain(t0() + Duration::days(31) + Duration::seconds(1), false)
        .unwrap();
    assert!(engine.store.write(id).unwrap().is_none(), "archived");
}

#[tokio::test]
async fn a_transient_failure_waits_for_its_backoff_by_the_engines_clock() {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = engine(&dir);
    let id = queue_one(&mut engine, t0());
    engine.store.mark_sent(&[id], t0()).unwrap();
    engine
        .store
        .transaction(|tx| tx.mark_failed(id, "UNABLE_TO_LOCK_ROW", "locked", false, t0()))
        .unwrap();
    assert_eq!(
        engine.store.write(id).unwrap().unwrap().next_attempt_at,
        Some(t0() + Duration::minutes(1)),
        "the first failure waits a minute"
    );

    let clock = Clock::fixed(t0() + Duration::seconds(59));
    let hooks = hooks(&clock);
    let pushed = drain(&mut engine, &hooks).await;
    assert_eq!(pushed.records_written, 0);
    assert_eq!(engine.crm.api_calls(), 0, "not due: nothing is sent");
    assert_eq!(engine.store.write(id).unwrap().unwrap().attempts, 1);

    // A minute on, it is due: it is sent again (to a CRM that refuses the connection) and its
    // failure is stamped with the engine's time.
    let due = t0() + Duration::minutes(1);
    clock.set(due);
    drain(&mut engine, &hooks).await;
    let row = engine.store.write(id).unwrap().unwrap();
    assert_eq!(row.attempts, 2, "{row:?}");
    assert_eq!(row.status, WriteStatus::Failed);
    assert_eq!(row.updated_at, due);
    if !row.permanent {
        assert_eq!(row.next_attempt_at, Some(due + Duration::minutes(2)));
    }
}

#[tokio::test]
async fn the_delete_log_is_read_only_for_a_window_longer_than_a_minute() {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = engine(&dir);
    let clock = engine.clock.clone();
    let hooks = hooks(&clock);
    let start = t0();
    let removed = engine
        .apply_delete_log(
            ObjectKind::Opportunity,
            "Opportunity",
            (start, start + Duration::minutes(1)),
            &hooks,
        )
        .await
        .unwrap();
    assert!(removed.is_empty());
    assert_eq!(
        engine.crm.api_calls(),
        0,
        "a minute's window is not asked for"
    );

    // Longer: the log is asked for (the CRM refuses the connection, which only delays the
    // removals to the nightly full run).
    let removed = engine
        .apply_delete_log(
            ObjectKind::Opportunity,
            "Opportunity",
            (start, start + Duration::minutes(1) + Duration::seconds(1)),
            &hooks,
        )
        .await
        .unwrap();
    assert!(removed.is_empty());
    assert!(engine.crm.api_calls() > 0, "the log was asked for");
}
