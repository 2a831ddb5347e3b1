//! The mirror: pages and cursors, tombstones, patches and reads.

use serde_json::json;

use super::*;

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

#[test]
fn live_records_stream_in_id_order_without_the_deleted_ones() {
    let mut store = Store::open_in_memory().unwrap();
    let at = Utc::now();
    let rec = |id: &str, deleted: bool| bare(id, at, deleted);
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
fn records_by_id_returns_live_and_deleted_versions_of_the_ids_it_holds() {
    let mut store = Store::open_in_memory().unwrap();
    let at = Utc::now();
    let rec = |id: &str, deleted: bool| bare(id, at, deleted);
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

#[test]
fn a_full_pulls_noted_ids_leave_the_live_rows_it_did_not_see() {
    let mut store = Store::open_in_memory().unwrap();
    let page = |ids: &[&str]| -> Vec<MirrorRecord> {
        ids.iter().map(|id| rec(id, 1, false, json!({}))).collect()
    };
    store
        .apply_page("Opportunity", &page(&["006A", "006B", "006C"]), None)
        .unwrap();
    store.apply_page("Account", &page(&["001A"]), None).unwrap();
    store
        .apply_page("Opportunity", &[rec("006D", 2, true, json!({}))], None)
        .unwrap();

    // Nothing noted yet: every live row is unseen; tombstones never count.
    store.clear_noted_live("Opportunity").unwrap();
    assert_eq!(
        store.live_ids_not_noted("Opportunity").unwrap(),
        ["006A", "006B", "006C"]
    );
    store
        .note_live("Opportunity", &["006C".to_string(), "006A".to_string()])
        .unwrap();
    store.note_live("Account", &["006B".to_string()]).unwrap();
    store
        .note_live("Opportunity", &["006A".to_string()])
        .unwrap();
    assert_eq!(store.live_ids_not_noted("Opportunity").unwrap(), ["006B"]);
    assert_eq!(store.live_ids_not_noted("Account").unwrap(), ["001A"]);

    // A new full pull starts its list empty, for its object only.
    store.clear_noted_live("Opportunity").unwrap();
    assert_eq!(store.live_ids_not_noted("Opportunity").unwrap().len(), 3);
    store.note_live("Account", &["001A".to_string()]).unwrap();
    assert!(store.live_ids_not_noted("Account").unwrap().is_empty());
}
