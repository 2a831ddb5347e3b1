//! Ids, audit timestamps, naming, uniqueness and upsert.

use chrono::Duration;
use serde_json::{json, Map};

use super::{account, body, create, err, field, org, refused_update, t0};
use crate::emulator::org::values::format_datetime;
use crate::emulator::org::{normalize_id, Org, UpsertError, UpsertOutcome, POD};
use crate::metadata::standard::catalog;
use crate::metadata::{id, FieldDef, FieldType};

#[test]
fn ids_carry_prefix_and_checksum_and_resolve_from_15_or_18_chars() {
    let mut org = org();
    let id = account(&mut org, "Acme");
    assert_eq!(id.len(), 18);
    assert!(id.starts_with("0015e0"));
    assert_eq!(id::to18(&id).unwrap(), id);
    assert!(org.get("Account", &id[..15]).is_some());
    assert!(org.get("account", &id.to_ascii_lowercase()).is_some());
    assert_ne!(
        normalize_id("0015e000000000a"),
        normalize_id("0015e000000000A")
    );
    let upper = id::make("001", POD, 10);
    assert_eq!(
        normalize_id(&upper.to_ascii_lowercase()).as_deref(),
        Some(upper.as_str())
    );
    assert_eq!(normalize_id("0015e000000000A"), Some(upper));
    assert_eq!(org.find(&id).unwrap().0, "Account");
    let other = account(&mut org, "Other");
    assert!(other > id, "Ids grow in byte order");
    assert!(org.org_id().starts_with("00D") && org.org_id().len() == 18);
    assert_eq!(org.org_id15(), &org.org_id()[..15]);
    assert!(org.user_id().starts_with("005"));
    assert_eq!(
        field(&org, "Account", &id, "OwnerId"),
        &json!(org.user_id())
    );
}

#[test]
fn timestamps_are_set_bumped_and_strictly_increasing() {
    let mut org = org();
    let a = account(&mut org, "A");
    let b = account(&mut org, "B");
    let sa = field(&org, "Account", &a, "SystemModstamp").clone();
    let sb = field(&org, "Account", &b, "SystemModstamp").clone();
    assert!(sb.as_str() > sa.as_str(), "{sa} then {sb}");
    assert_eq!(field(&org, "Account", &a, "CreatedDate"), &sa);
    assert_eq!(field(&org, "Account", &a, "IsDeleted"), &json!(false));
    let later = t0() + Duration::seconds(30);
    org.update("Account", &a, &body(json!({"Name": "A2"})), later)
        .unwrap();
    assert_eq!(
        field(&org, "Account", &a, "LastModifiedDate"),
        &json!("2026-08-15T12:00:30.000+0000")
    );
    assert_eq!(
        field(&org, "Account", &a, "SystemModstamp"),
        field(&org, "Account", &a, "LastModifiedDate")
    );
    assert_eq!(field(&org, "Account", &a, "CreatedDate"), &sa);
    assert_eq!(
        org.updated("Account", later, later + Duration::seconds(1)),
        vec![a.clone()]
    );
}

#[test]
fn malformed_and_unknown_record_ids_on_update() {
    let mut org = org();
    let plan = create(&mut org, "Account_Plan__c", json!({"Name": "P"}));
    let mut bad = plan.clone();
    bad.replace_range(15.., "ZZ1");
    let e = refused_update(&mut org, "Account_Plan__c", &bad, json!({"Name": "Q"}));
    assert_eq!(e.status_code, "MALFORMED_ID");
    assert_eq!(
        e.message,
        format!("Record ID: id value of incorrect type: {bad}")
    );
    assert_eq!(e.fields, ["Id"]);
    let a = account(&mut org, "A");
    let e = refused_update(&mut org, "Account_Plan__c", &a, json!({"Name": "Q"}));
    assert_eq!(e.status_code, "MALFORMED_ID");
    let missing = id::make("a0P", POD, 999_999);
    let e = refused_update(&mut org, "Account_Plan__c", &missing, json!({"Name": "Q"}));
    assert_eq!(e.status_code, "NOT_FOUND");
}

#[test]
fn custom_records_are_named_after_their_id_when_unnamed() {
    let mut org = org();
    let plan = org.create("Account_Plan__c", &Map::new(), t0()).unwrap();
    assert_eq!(field(&org, "Account_Plan__c", &plan, "Name"), &json!(plan));
    assert_eq!(
        field(&org, "Account_Plan__c", &plan, "Status__c"),
        &json!("Draft")
    );
    assert_eq!(
        field(&org, "Account_Plan__c", &plan, "Include_Child_Accounts__c"),
        &json!(false)
    );
    assert!(plan.starts_with("a0P"));
}

#[test]
fn unique_external_ids_refuse_duplicates() {
    let mut org = org();
    let key = json!({"Snapshot_Key__c": "a0P:2026-08-15"});
    create(&mut org, "Account_Plan_Snapshot__c", key.clone());
    let e = err(org.create("Account_Plan_Snapshot__c", &body(key), t0()));
    assert_eq!(e.status_code, "DUPLICATE_VALUE");
    let e = err(org.create(
        "Account_Plan_Snapshot__c",
        &body(json!({"Snapshot_Key__c": "k".repeat(41)})),
        t0(),
    ));
    assert_eq!(e.status_code, "STRING_TOO_LONG");
}

#[test]
fn upsert_inserts_updates_and_reports_several_matches() {
    let mut cat = catalog(false).unwrap();
    let mut ext = FieldDef::new("Legacy_Key__c", FieldType::String);
    ext.external_id = true;
    cat.object_mut("Account").unwrap().add_field(ext);
    let mut org = Org::new(cat, t0());
    let upsert_k1 = |org: &mut Org, ext_field: &str, name: &str| {
        org.upsert(
            "Account",
            ext_field,
            "K1",
            &body(json!({ "Name": name })),
            t0(),
        )
    };
    let first = upsert_k1(&mut org, "Legacy_Key__c", "One").unwrap();
    assert!(first.created);
    assert_eq!(
        field(&org, "Account", &first.id, "Legacy_Key__c"),
        &json!("K1")
    );
    let again = upsert_k1(&mut org, "legacy_key__c", "Uno").unwrap();
    assert_eq!(
        again,
        UpsertOutcome {
            id: first.id.clone(),
            created: false
        }
    );
    assert_eq!(field(&org, "Account", &first.id, "Name"), &json!("Uno"));
    let second = create(
        &mut org,
        "Account",
        json!({"Name": "Two", "Legacy_Key__c": "K1"}),
    );
    match upsert_k1(&mut org, "Legacy_Key__c", "x") {
        Err(UpsertError::MultipleMatches(ids)) => assert_eq!(ids, vec![first.id.clone(), second]),
        other => panic!("{other:?}"),
    }
    match org.upsert("Account", "Name", "x", &Map::new(), t0()) {
        Err(UpsertError::Record(e)) => {
            assert_eq!(e.status_code, "NOT_FOUND");
            assert_eq!(
                e.message,
                "Provided external ID field does not exist or is not accessible: Name"
            );
        }
        other => panic!("{other:?}"),
    }
    let snapshot = |org: &mut Org, won: u32| {
        let fields = body(json!({ "Won_Amount__c": won }));
        org.upsert(
            "Account_Plan_Snapshot__c",
            "Snapshot_Key__c",
            "p:2026-08-15",
            &fields,
            t0(),
        )
        .unwrap()
    };
    let snap = snapshot(&mut org, 1);
    assert!(snap.created);
    let snap2 = snapshot(&mut org, 2);
    assert_eq!(
        (snap2.id.as_str(), snap2.created),
        (snap.id.as_str(), false)
    );
}

#[test]
fn spreading_the_history_orders_stamps_evenly_over_the_window() {
    let mut org = org();
    let a = account(&mut org, "A");
    let b = account(&mut org, "B");
    let from = t0() - Duration::days(10);
    let to = t0() - Duration::hours(1);
    org.spread_history(from, to);
    let stamps: Vec<String> = ["Account", "User", "OpportunityStage", "TaskStatus"]
        .iter()
        .flat_map(|o| org.records(o))
        .map(|r| r["SystemModstamp"].as_str().unwrap().to_string())
        .collect();
    // The org's own rows and the two accounts: all in the window, none twice.
    let mut sorted = stamps.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), stamps.len());
    assert_eq!(sorted.first().unwrap(), &format_datetime(from));
    assert!(sorted.last().unwrap() < &format_datetime(to));
    // B was stamped after A and still is; its three dates agree.
    let (sa, sb) = (
        field(&org, "Account", &a, "SystemModstamp").clone(),
        field(&org, "Account", &b, "SystemModstamp").clone(),
    );
    assert!(sa.as_str() < sb.as_str(), "{sa} then {sb}");
    assert_eq!(sb, sorted.last().map(|s| json!(s)).unwrap());
    for f in ["CreatedDate", "LastModifiedDate"] {
        assert_eq!(field(&org, "Account", &b, f), &sb, "{f}");
    }
    // Nothing changed in the hour before t0.
    assert!(org
        .updated("Account", t0() - Duration::minutes(59), t0())
        .is_empty());
    // A write after the window is stamped with its own time, even one before the original
    // stamps: the org's latest stamp moved back too.
    let later = t0() - Duration::minutes(30);
    org.update("Account", &a, &body(json!({"Name": "A2"})), later)
        .unwrap();
    assert_eq!(
        field(&org, "Account", &a, "SystemModstamp"),
        &json!("2026-08-15T11:30:00.000+0000")
    );
}
