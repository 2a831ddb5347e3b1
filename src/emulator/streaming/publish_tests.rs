//! The streaming state without a server: a transaction's events and their overflow, the
//! replay positions a subscription may start from, retention by age, channel names, and the
//! org's journal of committed changes the events are published from.

use std::time::Duration;

use serde_json::{json, Value};

use super::*;

#[test]
fn overflow_threshold_turns_the_rest_of_a_transaction_into_overflow_events() {
    let streaming = Streaming::new(StreamingConfig {
        overflow_threshold: 2,
        ..StreamingConfig::default()
    });
    let change = |object: &str, id: &str| RecordChange {
        object: object.into(),
        id: id.into(),
        kind: ChangeKind::Create,
        fields: Map::from_iter([("Name".to_string(), json!(id))]),
        changed_fields: vec![],
        committed_at: Utc::now(),
    };
    let origin = Origin::rest("005000000000001AAA", "62.0", Some("plansync"));
    let ids = streaming.publish_transaction(
        vec![
            change("Account", "a1"),
            change("Account", "a2"),
            change("Account", "a3"),
            change("Opportunity", "o1"),
            change("Account", "a4"),
        ],
        &origin,
    );
    assert_eq!(ids, vec![1, 2, 3, 4]);
    let events = streaming.retained();
    let types: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            let h = &e.data["payload"]["ChangeEventHeader"];
            (
                h["entityName"].as_str().unwrap().to_string(),
                h["changeType"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        types,
        vec![
            ("Account".into(), "CREATE".into()),
            ("Account".into(), "CREATE".into()),
            ("Account".into(), "GAP_OVERFLOW".into()),
            ("Opportunity".into(), "GAP_OVERFLOW".into()),
        ]
    );
    assert_eq!(
        events[0].data["payload"]["ChangeEventHeader"]["changeOrigin"],
        "com/salesforce/api/rest/62.0;client=plansync"
    );
}

#[test]
fn replay_options_start_where_the_docs_say() {
    let streaming = Streaming::new(StreamingConfig {
        retention_count: 3,
        ..StreamingConfig::default()
    });
    assert_eq!(streaming.start_after(-1), Some(0));
    assert_eq!(streaming.start_after(-2), Some(0));
    assert_eq!(streaming.start_after(0), Some(0));
    assert_eq!(streaming.start_after(1), None, "not given yet");
    for _ in 0..5 {
        streaming.publish_overflow("Account");
    }
    // Events 1 and 2 were dropped: replaying after 2 loses nothing, after 1 would.
    assert_eq!(streaming.start_after(-1), Some(5));
    assert_eq!(streaming.start_after(-2), Some(2));
    assert_eq!(streaming.start_after(1), None);
    assert_eq!(streaming.start_after(2), Some(2));
    assert_eq!(streaming.start_after(5), Some(5));
    assert_eq!(streaming.start_after(6), None);
    assert_eq!(streaming.start_after(-3), None);
}

#[test]
fn channel_names_follow_the_change_event_names() {
    assert_eq!(channel_of("Account"), "/data/AccountChangeEvent");
    assert_eq!(
        channel_of("Account_Plan__c"),
        "/data/Account_Plan__ChangeEvent"
    );
    assert_eq!(schema_id("Account"), schema_id("Account"));
    assert_ne!(schema_id("Account"), schema_id("Opportunity"));
}

#[test]
fn the_journal_records_committed_writes_only() {
    use crate::emulator::org::Org;
    use crate::metadata::standard::catalog;
    let now = Utc::now();
    let mut org = Org::new(catalog(false).unwrap(), now);
    let fields = |v: Value| v.as_object().unwrap().clone();
    let quiet = org.create("Account", &fields(json!({"Name": "Q"})), now);
    assert!(quiet.is_ok());
    assert!(
        org.take_changes().is_empty(),
        "journaling starts switched off"
    );

    org.journal_changes(true);
    let id = org
        .create(
            "Account",
            &fields(json!({"Name": "J", "Industry": "Energy"})),
            now,
        )
        .unwrap();
    org.update(
        "Account",
        &id,
        &fields(json!({"Industry": null, "Phone": "555"})),
        now,
    )
    .unwrap();
    let sp = org.savepoint();
    org.update("Account", &id, &fields(json!({"Name": "Gone"})), now)
        .unwrap();
    assert!(
        org.take_changes().is_empty(),
        "nothing is committed inside a savepoint"
    );
    org.rollback_to(sp);
    org.delete(Some("Account"), &id, now).unwrap();
    let changes = org.take_changes();
    let kinds: Vec<ChangeKind> = changes.iter().map(|c| c.kind).collect();
    assert_eq!(
        kinds,
        vec![ChangeKind::Create, ChangeKind::Update, ChangeKind::Delete],
        "the rolled back update left the journal"
    );
    assert_eq!(changes[0].fields["Name"], "J");
    assert!(!changes[0].fields.contains_key("IsDeleted"));
    let update = &changes[1];
    assert_eq!(
        update.fields["Industry"],
        Value::Null,
        "a cleared field is sent as null"
    );
    assert_eq!(update.fields["Phone"], "555");
    for name in ["Industry", "Phone", "LastModifiedDate"] {
        assert!(update.changed_fields.iter().any(|f| f == name), "{name}");
    }
    assert!(!update.changed_fields.iter().any(|f| f == "SystemModstamp"));
    assert!(!update.changed_fields.iter().any(|f| f == "Name"));
    assert!(changes[2].fields.is_empty());
    assert!(org.take_changes().is_empty());
}

#[test]
fn events_older_than_the_retention_age_are_dropped() {
    let streaming = Streaming::new(StreamingConfig {
        retention_age: Duration::from_millis(50),
        ..StreamingConfig::default()
    });
    streaming.publish_overflow("Account");
    assert_eq!(streaming.retained().len(), 1);
    std::thread::sleep(Duration::from_millis(120));
    assert!(streaming.retained().is_empty());
    assert_eq!(
        streaming.start_after(1),
        Some(1),
        "nothing after 1 was lost"
    );
    assert_eq!(streaming.start_after(0), None, "event 1 is gone");
    assert_eq!(streaming.start_after(-2), Some(1));
}
