//! Tests of the org's validation, derivations, Ids, timestamps, deletion, upsert and
//! savepoints.

use super::*;
use crate::metadata::standard::catalog;
use serde_json::json;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 8, 15, 12, 0, 0).unwrap()
}

fn org() -> Org {
    Org::new(catalog(false).unwrap(), t0())
}

fn body(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => panic!("not an object"),
    }
}

fn err(r: Result<String, RecordError>) -> RecordError {
    r.expect_err("the write should fail")
}

fn account(org: &mut Org, name: &str) -> String {
    org.create("Account", &body(json!({"Name": name})), t0())
        .unwrap()
}

fn field<'a>(org: &'a Org, object: &str, id: &str, f: &str) -> &'a Value {
    org.get(object, id).unwrap().get(f).unwrap_or(&Value::Null)
}

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

#[test]
fn required_fields_are_reported_in_definition_order() {
    let mut org = org();
    let e = err(org.create("Account", &Map::new(), t0()));
    assert_eq!(e.status_code, "REQUIRED_FIELD_MISSING");
    assert_eq!(e.message, "Required fields are missing: [Name]");
    assert_eq!(e.fields, ["Name"]);
    let e = err(org.create("Opportunity", &body(json!({"Amount": 5})), t0()));
    assert_eq!(
        e.message,
        "Required fields are missing: [Name, CloseDate, StageName]"
    );
    let a = account(&mut org, "A");
    let e = org
        .update("Account", &a, &body(json!({"Name": null})), t0())
        .unwrap_err();
    assert_eq!(
        (e.status_code.as_str(), e.fields.clone()),
        ("REQUIRED_FIELD_MISSING", vec!["Name".to_string()])
    );
}

#[test]
fn unknown_fields_ids_and_read_only_fields_are_refused() {
    let mut org = org();
    let e = err(org.create(
        "Account",
        &body(json!({"Name": "x", "FavoritePet__c": "Dog"})),
        t0(),
    ));
    assert_eq!(e.status_code, "INVALID_FIELD");
    assert_eq!(
        e.message,
        "No such column 'FavoritePet__c' on sobject of type Account"
    );
    let e = err(org.create(
        "Account",
        &body(json!({"Name": "x", "Id": "0015e0000000001AAA"})),
        t0(),
    ));
    assert_eq!(
        e.message,
        "The Id field should not be specified in the sobject data."
    );
    let e = err(org.create(
        "Opportunity",
        &body(json!({"Name": "o", "CloseDate": "2026-01-01", "StageName": "Prospecting", "IsClosed": true})),
        t0(),
    ));
    assert_eq!(e.status_code, "INVALID_FIELD_FOR_INSERT_UPDATE");
    assert_eq!(
        e.message,
        "Unable to create/update fields: IsClosed. Please check the security settings of this field and verify that it is read/write for your profile or permission set."
    );
    assert_eq!(e.fields, ["IsClosed"]);
    let e = err(org.create("OpportunityStage", &body(json!({"ApiName": "x"})), t0()));
    assert_eq!(e.status_code, "INVALID_TYPE_FOR_OPERATION");
    let junction_master = {
        let plan = org
            .create("Account_Plan__c", &body(json!({"Name": "P"})), t0())
            .unwrap();
        let a = account(&mut org, "A");
        let j = org
            .create(
                "Account_Plan_Account__c",
                &body(json!({"Account_Plan__c": plan, "Account__c": a})),
                t0(),
            )
            .unwrap();
        org.update(
            "Account_Plan_Account__c",
            &j,
            &body(json!({"Account_Plan__c": plan})),
            t0(),
        )
        .unwrap_err()
    };
    assert_eq!(
        junction_master.status_code,
        "INVALID_FIELD_FOR_INSERT_UPDATE"
    );
}

#[test]
fn values_are_checked_against_their_types() {
    let mut org = org();
    let base = json!({"Name": "o", "CloseDate": "2026-01-01", "StageName": "Prospecting"});
    let with = |k: &str, v: Value| {
        let mut b = body(base.clone());
        b.insert(k.into(), v);
        b
    };
    let e = err(org.create("Opportunity", &with("StageName", json!("Foo")), t0()));
    assert_eq!(e.status_code, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST");
    assert_eq!(
        e.message,
        "Stage: bad value for restricted picklist field: Foo"
    );
    assert_eq!(e.fields, ["StageName"]);
    let e = err(org.create("Opportunity", &with("CloseDate", json!("2024-13-01")), t0()));
    assert_eq!(e.status_code, "INVALID_TYPE_ON_FIELD_IN_RECORD");
    assert_eq!(
        e.message,
        "Close Date: value not of required type: 2024-13-01"
    );
    let e = err(org.create("Opportunity", &with("Amount", json!("lots")), t0()));
    assert_eq!(e.status_code, "INVALID_TYPE_ON_FIELD_IN_RECORD");
    let e = err(org.create(
        "Opportunity",
        &with("Plan_Link_Locked__c", json!("yes")),
        t0(),
    ));
    assert_eq!(e.status_code, "INVALID_TYPE_ON_FIELD_IN_RECORD");
    let e = err(org.create(
        "Opportunity",
        &with("Amount", json!(100000000000000u64)),
        t0(),
    ));
    assert_eq!(e.status_code, "NUMBER_OUTSIDE_VALID_RANGE");
    assert_eq!(e.fields, ["Amount"]);
    let ok = org
        .create(
            "Opportunity",
            &with("Amount", serde_json::from_str("99999999999999.99").unwrap()),
            t0(),
        )
        .unwrap();
    assert_eq!(
        field(&org, "Opportunity", &ok, "Amount").to_string(),
        "99999999999999.99"
    );
    let rounded = org
        .create(
            "Opportunity",
            &with("Amount", serde_json::from_str("10.005").unwrap()),
            t0(),
        )
        .unwrap();
    assert_eq!(
        field(&org, "Opportunity", &rounded, "Amount").to_string(),
        "10.01"
    );
    let e = err(org.create("Opportunity", &with("Name", json!("x".repeat(121))), t0()));
    assert_eq!(e.status_code, "STRING_TOO_LONG");
    assert_eq!(e.fields, ["Name"]);
    let dt = org
        .create(
            "Account_Plan__c",
            &body(json!({"Rollups_Changed_At__c": "2026-08-15T14:00:00+02:00"})),
            t0(),
        )
        .unwrap();
    assert_eq!(
        field(&org, "Account_Plan__c", &dt, "Rollups_Changed_At__c"),
        &json!("2026-08-15T12:00:00.000+0000")
    );
    let e = err(org.create(
        "Account_Plan__c",
        &body(json!({"Rollups_Changed_At__c": "yesterday"})),
        t0(),
    ));
    assert_eq!(
        e.message,
        "Rollups Changed At: value not of required type: yesterday"
    );
}

#[test]
fn references_must_name_live_records_of_the_right_object() {
    let mut org = org();
    let a = account(&mut org, "A");
    let c = org
        .create(
            "Contact",
            &body(json!({"LastName": "Lee", "AccountId": a})),
            t0(),
        )
        .unwrap();
    let opp = |acc: &str| {
        body(
            json!({"Name": "o", "CloseDate": "2026-01-01", "StageName": "Prospecting", "AccountId": acc}),
        )
    };
    let e = err(org.create("Opportunity", &opp("garbage"), t0()));
    assert_eq!(e.status_code, "MALFORMED_ID");
    assert_eq!(e.message, "Account ID: id value of incorrect type: garbage");
    let e = err(org.create("Opportunity", &opp(&c), t0()));
    assert_eq!(e.status_code, "FIELD_INTEGRITY_EXCEPTION");
    assert_eq!(e.fields, ["AccountId"]);
    let e = err(org.create("Opportunity", &opp(&id::make("001", POD, 999_999)), t0()));
    assert_eq!(e.status_code, "INVALID_CROSS_REFERENCE_KEY");
    let stored = org.create("Opportunity", &opp(&a[..15]), t0()).unwrap();
    assert_eq!(field(&org, "Opportunity", &stored, "AccountId"), &json!(a));
    org.delete(None, &a, t0()).unwrap();
    let e = err(org.create("Opportunity", &opp(&a), t0()));
    assert_eq!(e.status_code, "ENTITY_IS_DELETED");
}

#[test]
fn malformed_and_unknown_record_ids_on_update() {
    let mut org = org();
    let plan = org
        .create("Account_Plan__c", &body(json!({"Name": "P"})), t0())
        .unwrap();
    let mut bad = plan.clone();
    bad.replace_range(15.., "ZZ1");
    let e = org
        .update("Account_Plan__c", &bad, &body(json!({"Name": "Q"})), t0())
        .unwrap_err();
    assert_eq!(e.status_code, "MALFORMED_ID");
    assert_eq!(
        e.message,
        format!("Record ID: id value of incorrect type: {bad}")
    );
    assert_eq!(e.fields, ["Id"]);
    let a = account(&mut org, "A");
    let e = org
        .update("Account_Plan__c", &a, &body(json!({"Name": "Q"})), t0())
        .unwrap_err();
    assert_eq!(e.status_code, "MALFORMED_ID");
    let missing = id::make("a0P", POD, 999_999);
    let e = org
        .update(
            "Account_Plan__c",
            &missing,
            &body(json!({"Name": "Q"})),
            t0(),
        )
        .unwrap_err();
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
    org.create("Account_Plan_Snapshot__c", &body(key.clone()), t0())
        .unwrap();
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
fn validation_failure_hook_refuses_updates_of_the_named_record() {
    let mut org = org();
    let plan = org
        .create(
            "Account_Plan__c",
            &body(json!({"Name": "Locked plan"})),
            t0(),
        )
        .unwrap();
    let other = org
        .create("Account_Plan__c", &body(json!({"Name": "Free plan"})), t0())
        .unwrap();
    org.set_validation_failure(Some("Locked plan".into()));
    let e = org
        .update(
            "Account_Plan__c",
            &plan,
            &body(json!({"Won_Amount__c": 5})),
            t0(),
        )
        .unwrap_err();
    assert_eq!(e.status_code, "FIELD_CUSTOM_VALIDATION_EXCEPTION");
    assert!(e.fields.is_empty());
    org.update(
        "Account_Plan__c",
        &other,
        &body(json!({"Won_Amount__c": 5})),
        t0(),
    )
    .unwrap();
    org.set_validation_failure(None);
    org.update(
        "Account_Plan__c",
        &plan,
        &body(json!({"Won_Amount__c": 5})),
        t0(),
    )
    .unwrap();
}

#[test]
fn soft_delete_marks_bumps_and_refuses_a_second_time() {
    let mut org = org();
    let a = account(&mut org, "A");
    let before = field(&org, "Account", &a, "SystemModstamp").clone();
    let later = t0() + Duration::minutes(5);
    org.delete(Some("Account"), &a, later).unwrap();
    assert_eq!(field(&org, "Account", &a, "IsDeleted"), &json!(true));
    assert_ne!(field(&org, "Account", &a, "SystemModstamp"), &before);
    assert_eq!(org.live_records("Account").count(), 0);
    assert_eq!(org.records("Account").count(), 1);
    let e = org.delete(None, &a, later).unwrap_err();
    assert_eq!(
        (e.status_code.as_str(), e.message.as_str()),
        ("ENTITY_IS_DELETED", "entity is deleted")
    );
    let e = org
        .update("Account", &a, &body(json!({"Name": "B"})), later)
        .unwrap_err();
    assert_eq!(e.status_code, "ENTITY_IS_DELETED");
    let gone = org.deleted("Account", later, later + Duration::seconds(1));
    assert_eq!(
        gone,
        vec![DeletedRecord {
            id: a.clone(),
            deleted_date: later
        }]
    );
    assert!(org
        .updated("Account", t0(), later + Duration::seconds(1))
        .is_empty());
    let e = org
        .delete(None, &id::make("001", POD, 777), later)
        .unwrap_err();
    assert_eq!(e.status_code, "NOT_FOUND");
    let b = account(&mut org, "B");
    let e = org.delete(Some("Contact"), &b, later).unwrap_err();
    assert_eq!(e.status_code, "NOT_FOUND");
}

#[test]
fn upsert_inserts_updates_and_reports_several_matches() {
    let mut cat = catalog(false).unwrap();
    let mut ext = FieldDef::new("Legacy_Key__c", FieldType::String);
    ext.external_id = true;
    cat.object_mut("Account").unwrap().add_field(ext);
    let mut org = Org::new(cat, t0());
    let first = org
        .upsert(
            "Account",
            "Legacy_Key__c",
            "K1",
            &body(json!({"Name": "One"})),
            t0(),
        )
        .unwrap();
    assert!(first.created);
    assert_eq!(
        field(&org, "Account", &first.id, "Legacy_Key__c"),
        &json!("K1")
    );
    let again = org
        .upsert(
            "Account",
            "legacy_key__c",
            "K1",
            &body(json!({"Name": "Uno"})),
            t0(),
        )
        .unwrap();
    assert_eq!(
        again,
        UpsertOutcome {
            id: first.id.clone(),
            created: false
        }
    );
    assert_eq!(field(&org, "Account", &first.id, "Name"), &json!("Uno"));
    let second = org
        .create(
            "Account",
            &body(json!({"Name": "Two", "Legacy_Key__c": "K1"})),
            t0(),
        )
        .unwrap();
    match org.upsert(
        "Account",
        "Legacy_Key__c",
        "K1",
        &body(json!({"Name": "x"})),
        t0(),
    ) {
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
    let snap = org
        .upsert(
            "Account_Plan_Snapshot__c",
            "Snapshot_Key__c",
            "p:2026-08-15",
            &body(json!({"Won_Amount__c": 1})),
            t0(),
        )
        .unwrap();
    assert!(snap.created);
    let snap2 = org
        .upsert(
            "Account_Plan_Snapshot__c",
            "Snapshot_Key__c",
            "p:2026-08-15",
            &body(json!({"Won_Amount__c": 2})),
            t0(),
        )
        .unwrap();
    assert_eq!(
        (snap2.id.as_str(), snap2.created),
        (snap.id.as_str(), false)
    );
}

#[test]
fn rollback_undoes_creates_updates_and_deletes() {
    let mut org = org();
    let a = account(&mut org, "Kept");
    let before = org.get("Account", &a).unwrap().clone();
    let sp = org.savepoint();
    let b = account(&mut org, "Gone");
    org.update("Account", &a, &body(json!({"Name": "Changed"})), t0())
        .unwrap();
    let inner = org.savepoint();
    org.delete(None, &a, t0()).unwrap();
    org.release(inner);
    org.rollback_to(sp);
    assert!(org.get("Account", &b).is_none());
    assert_eq!(org.get("Account", &a).unwrap(), &before);
    // Released outer savepoint: later writes are kept and not logged.
    let sp = org.savepoint();
    let c = account(&mut org, "C");
    org.release(sp);
    assert!(org.get("Account", &c).is_some());
    assert!(org.undo.is_empty());
    let d = account(&mut org, "D");
    assert_ne!(d, b, "Ids are not reused after a rollback");
}

fn opp(org: &mut Org, extra: Value) -> String {
    let mut b = body(
        json!({"Name": "o", "CloseDate": "2026-09-30", "StageName": "Prospecting", "Amount": 1000}),
    );
    b.extend(body(extra));
    org.create("Opportunity", &b, t0()).unwrap()
}

#[test]
fn opportunity_stage_drives_closed_won_probability_and_forecast() {
    let mut org = org();
    let o = opp(&mut org, json!({"StageName": "Negotiation/Review"}));
    let f = |org: &Org, k: &str| field(org, "Opportunity", &o, k).clone();
    assert_eq!(f(&org, "IsClosed"), json!(false));
    assert_eq!(f(&org, "Probability"), json!(90));
    assert_eq!(f(&org, "ForecastCategoryName"), json!("Pipeline"));
    assert_eq!(f(&org, "ForecastCategory"), json!("Pipeline"));
    assert_eq!(f(&org, "ExpectedRevenue").to_string(), "900");
    org.update(
        "Opportunity",
        &o,
        &body(json!({"StageName": "Closed Won"})),
        t0(),
    )
    .unwrap();
    assert_eq!(
        (f(&org, "IsClosed"), f(&org, "IsWon")),
        (json!(true), json!(true))
    );
    assert_eq!(f(&org, "Probability"), json!(100));
    assert_eq!(f(&org, "ForecastCategoryName"), json!("Closed"));
    org.update(
        "Opportunity",
        &o,
        &body(json!({"StageName": "Closed Lost"})),
        t0(),
    )
    .unwrap();
    assert_eq!(
        (f(&org, "IsClosed"), f(&org, "IsWon")),
        (json!(true), json!(false))
    );
    assert_eq!(f(&org, "ForecastCategoryName"), json!("Omitted"));
    assert_eq!(f(&org, "ExpectedRevenue").to_string(), "0");
    org.update("Opportunity", &o, &body(json!({"Amount": null})), t0())
        .unwrap();
    assert_eq!(f(&org, "ExpectedRevenue"), Value::Null);
}

#[test]
fn explicit_probability_and_forecast_override_until_the_stage_changes() {
    let mut org = org();
    let o = opp(
        &mut org,
        json!({"Probability": 35, "ForecastCategoryName": "Omitted", "Amount": 2000.5}),
    );
    let f = |org: &Org, k: &str| field(org, "Opportunity", &o, k).clone();
    assert_eq!(f(&org, "Probability"), json!(35));
    assert_eq!(f(&org, "ForecastCategory"), json!("Omitted"));
    assert_eq!(f(&org, "ExpectedRevenue").to_string(), "700.18");
    org.update("Opportunity", &o, &body(json!({"Amount": 3000})), t0())
        .unwrap();
    assert_eq!(
        f(&org, "Probability"),
        json!(35),
        "other writes keep the override"
    );
    assert_eq!(f(&org, "ExpectedRevenue").to_string(), "1050");
    org.update(
        "Opportunity",
        &o,
        &body(json!({"StageName": "Prospecting"})),
        t0(),
    )
    .unwrap();
    assert_eq!(
        f(&org, "Probability"),
        json!(35),
        "an unchanged stage resets nothing"
    );
    org.update(
        "Opportunity",
        &o,
        &body(json!({"StageName": "Value Proposition"})),
        t0(),
    )
    .unwrap();
    assert_eq!(f(&org, "Probability"), json!(50));
    assert_eq!(f(&org, "ForecastCategoryName"), json!("Pipeline"));
    org.update(
        "Opportunity",
        &o,
        &body(json!({"StageName": "Qualification", "Probability": 15})),
        t0(),
    )
    .unwrap();
    assert_eq!(f(&org, "Probability"), json!(15));
}

#[test]
fn task_status_and_defaults() {
    let mut org = org();
    let t = org
        .create("Task", &body(json!({"Subject": "Call"})), t0())
        .unwrap();
    assert_eq!(field(&org, "Task", &t, "Status"), &json!("Not Started"));
    assert_eq!(field(&org, "Task", &t, "Priority"), &json!("Normal"));
    assert_eq!(field(&org, "Task", &t, "IsClosed"), &json!(false));
    assert_eq!(field(&org, "Task", &t, "IsArchived"), &json!(false));
    org.update("Task", &t, &body(json!({"Status": "Completed"})), t0())
        .unwrap();
    assert_eq!(field(&org, "Task", &t, "IsClosed"), &json!(true));
    org.update("Task", &t, &body(json!({"Status": "Deferred"})), t0())
        .unwrap();
    assert_eq!(field(&org, "Task", &t, "IsClosed"), &json!(false));
    let e = org
        .update("Task", &t, &body(json!({"Status": "Done"})), t0())
        .unwrap_err();
    assert_eq!(e.status_code, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST");
}

#[test]
fn activity_account_follows_what_then_who_and_stays_put_when_the_opportunity_moves() {
    let mut org = org();
    let a = account(&mut org, "A");
    let b = account(&mut org, "B");
    let c = org
        .create(
            "Contact",
            &body(json!({"LastName": "Lee", "FirstName": "Ann", "AccountId": b})),
            t0(),
        )
        .unwrap();
    assert_eq!(field(&org, "Contact", &c, "Name"), &json!("Ann Lee"));
    let o = opp(&mut org, json!({"AccountId": a}));
    let orphan = opp(&mut org, json!({}));
    let task = |org: &mut Org, v: Value| org.create("Task", &body(v), t0()).unwrap();
    let on_account = task(&mut org, json!({"WhatId": a, "WhoId": c}));
    assert_eq!(field(&org, "Task", &on_account, "AccountId"), &json!(a));
    let on_opp = task(&mut org, json!({"WhatId": o, "WhoId": c}));
    assert_eq!(field(&org, "Task", &on_opp, "AccountId"), &json!(a));
    let on_orphan = task(&mut org, json!({"WhatId": orphan, "WhoId": c}));
    assert_eq!(field(&org, "Task", &on_orphan, "AccountId"), &Value::Null);
    let on_who = task(&mut org, json!({"WhoId": c}));
    assert_eq!(field(&org, "Task", &on_who, "AccountId"), &json!(b));
    let on_none = task(&mut org, json!({}));
    assert_eq!(field(&org, "Task", &on_none, "AccountId"), &Value::Null);

    let stamp = field(&org, "Task", &on_opp, "SystemModstamp").clone();
    org.update("Opportunity", &o, &body(json!({"AccountId": b})), t0())
        .unwrap();
    assert_eq!(
        field(&org, "Task", &on_opp, "AccountId"),
        &json!(a),
        "not recomputed"
    );
    assert_eq!(field(&org, "Task", &on_opp, "SystemModstamp"), &stamp);
    org.update("Task", &on_opp, &body(json!({"WhatId": null})), t0())
        .unwrap();
    assert_eq!(
        field(&org, "Task", &on_opp, "AccountId"),
        &json!(b),
        "now from the contact"
    );
    org.update("Task", &on_who, &body(json!({"WhatId": o})), t0())
        .unwrap();
    assert_eq!(field(&org, "Task", &on_who, "AccountId"), &json!(b));

    let ev = org
        .create("Event", &body(json!({"WhatId": a, "StartDateTime": "2026-08-20T23:30:00.000+0000", "DurationInMinutes": 60})), t0())
        .unwrap();
    assert_eq!(field(&org, "Event", &ev, "AccountId"), &json!(a));
}

#[test]
fn event_times_follow_the_start() {
    let mut org = org();
    let e = org
        .create(
            "Event",
            &body(json!({"StartDateTime": "2026-08-20T23:30:00Z", "DurationInMinutes": 45})),
            t0(),
        )
        .unwrap();
    assert_eq!(
        field(&org, "Event", &e, "ActivityDate"),
        &json!("2026-08-20")
    );
    assert_eq!(
        field(&org, "Event", &e, "ActivityDateTime"),
        &json!("2026-08-20T23:30:00.000+0000")
    );
    assert_eq!(
        field(&org, "Event", &e, "EndDateTime"),
        &json!("2026-08-21T00:15:00.000+0000")
    );
    org.update(
        "Event",
        &e,
        &body(json!({"StartDateTime": "2026-08-22T10:00:00Z"})),
        t0(),
    )
    .unwrap();
    assert_eq!(
        field(&org, "Event", &e, "ActivityDate"),
        &json!("2026-08-22")
    );
    assert_eq!(
        field(&org, "Event", &e, "EndDateTime"),
        &json!("2026-08-22T10:45:00.000+0000")
    );
    org.update(
        "Event",
        &e,
        &body(json!({"EndDateTime": "2026-08-22T12:00:00Z"})),
        t0(),
    )
    .unwrap();
    assert_eq!(field(&org, "Event", &e, "DurationInMinutes"), &json!(120));
    let missing = org
        .create(
            "Event",
            &body(json!({"StartDateTime": "2026-08-20T10:00:00Z"})),
            t0(),
        )
        .unwrap_err();
    assert_eq!(missing.status_code, "REQUIRED_FIELD_MISSING");
    let all_day = org
        .create(
            "Event",
            &body(json!({"IsAllDayEvent": true, "ActivityDate": "2026-09-17"})),
            t0(),
        )
        .unwrap();
    assert_eq!(
        field(&org, "Event", &all_day, "StartDateTime"),
        &json!("2026-09-17T00:00:00.000+0000")
    );
    assert_eq!(
        field(&org, "Event", &all_day, "ActivityDateTime"),
        &Value::Null
    );
}

#[test]
fn seeded_rows_and_multi_currency() {
    let org = org();
    assert_eq!(org.count("OpportunityStage"), 10);
    assert_eq!(org.count("TaskStatus"), 5);
    assert_eq!(org.count("User"), 1);
    assert_eq!(org.count("CurrencyType"), 0);
    let mut multi = Org::new(catalog(true).unwrap(), t0());
    assert_eq!(multi.count("CurrencyType"), CURRENCIES.len());
    let corporate: Vec<_> = multi
        .records("CurrencyType")
        .filter(|r| r.get("IsCorporate") == Some(&json!(true)))
        .collect();
    assert_eq!(corporate.len(), 1);
    let o = opp(&mut multi, json!({}));
    assert_eq!(
        field(&multi, "Opportunity", &o, "CurrencyIsoCode"),
        &json!("USD")
    );
    let rate = |org: &mut Org, start: &str| {
        org.create(
            "DatedConversionRate",
            &body(json!({"IsoCode": "EUR", "ConversionRate": 0.9, "StartDate": start})),
            t0(),
        )
        .unwrap()
    };
    let late = rate(&mut multi, "2026-07-01");
    let early = rate(&mut multi, "2026-01-01");
    assert_eq!(
        field(&multi, "DatedConversionRate", &early, "NextStartDate"),
        &json!("2026-07-01")
    );
    assert_eq!(
        field(&multi, "DatedConversionRate", &late, "NextStartDate"),
        &json!("9999-12-31"),
        "the latest period runs to the end of time"
    );
    let gbp = multi
        .create(
            "DatedConversionRate",
            &body(json!({"IsoCode": "GBP", "ConversionRate": 0.8, "StartDate": "2026-03-01"})),
            t0(),
        )
        .unwrap();
    assert_eq!(
        field(&multi, "DatedConversionRate", &gbp, "NextStartDate"),
        &json!("9999-12-31"),
        "other currencies do not count"
    );
    let middle = rate(&mut multi, "2026-04-01");
    assert_eq!(
        field(&multi, "DatedConversionRate", &early, "NextStartDate"),
        &json!("2026-04-01")
    );
    assert_eq!(
        field(&multi, "DatedConversionRate", &middle, "NextStartDate"),
        &json!("2026-07-01")
    );
    multi.delete(None, &late, t0()).unwrap();
    assert_eq!(
        field(&multi, "DatedConversionRate", &middle, "NextStartDate"),
        &json!("9999-12-31")
    );
}

#[test]
fn deleting_a_plan_deletes_its_junction_rows_and_clears_links_to_it() {
    let mut org = org();
    let a = account(&mut org, "A");
    let plan = org
        .create(
            "Account_Plan__c",
            &body(json!({"Name": "P", "Account__c": a})),
            t0(),
        )
        .unwrap();
    let j = org
        .create(
            "Account_Plan_Account__c",
            &body(json!({"Account_Plan__c": plan, "Account__c": a})),
            t0(),
        )
        .unwrap();
    let o = opp(&mut org, json!({"Account_Plan__c": plan, "AccountId": a}));
    let modified = field(&org, "Opportunity", &o, "LastModifiedDate").clone();
    let stamp = field(&org, "Opportunity", &o, "SystemModstamp").clone();
    let sp = org.savepoint();
    let later = t0() + Duration::minutes(1);
    org.delete(None, &plan, later).unwrap();
    assert_eq!(
        field(&org, "Account_Plan_Account__c", &j, "IsDeleted"),
        &json!(true)
    );
    assert_eq!(
        field(&org, "Opportunity", &o, "Account_Plan__c"),
        &Value::Null
    );
    assert_eq!(
        field(&org, "Opportunity", &o, "LastModifiedDate"),
        &modified
    );
    assert_ne!(field(&org, "Opportunity", &o, "SystemModstamp"), &stamp);
    org.rollback_to(sp);
    assert_eq!(
        field(&org, "Account_Plan_Account__c", &j, "IsDeleted"),
        &json!(false)
    );
    assert_eq!(
        field(&org, "Opportunity", &o, "Account_Plan__c"),
        &json!(plan)
    );
    // Deleting the account clears the plan's primary account (a custom lookup).
    org.delete(None, &a, later).unwrap();
    assert_eq!(
        field(&org, "Account_Plan__c", &plan, "Account__c"),
        &Value::Null
    );
    assert_eq!(
        field(&org, "Account_Plan_Account__c", &j, "Account__c"),
        &Value::Null
    );
}
