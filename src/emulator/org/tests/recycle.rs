//! Soft deletion, what it does to the records pointing at the deleted one, and savepoints.

use chrono::Duration;
use serde_json::{json, Value};

use super::{account, assert_fields, body, create, field, junction, opp, org, t0, update};
use crate::emulator::org::{DeletedRecord, POD};
use crate::metadata::id;

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
fn rollback_undoes_creates_updates_and_deletes() {
    let mut org = org();
    let a = account(&mut org, "Kept");
    let before = org.get("Account", &a).unwrap().clone();
    let sp = org.savepoint();
    let b = account(&mut org, "Gone");
    update(&mut org, "Account", &a, json!({"Name": "Changed"}));
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

#[test]
fn deleting_a_plan_deletes_its_junction_rows_and_clears_links_to_it() {
    let mut org = org();
    let a = account(&mut org, "A");
    let plan = create(
        &mut org,
        "Account_Plan__c",
        json!({"Name": "P", "Account__c": a}),
    );
    let j = junction(&mut org, &plan, &a);
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
    assert_fields(
        &org,
        "Opportunity",
        &o,
        &[
            ("Account_Plan__c", Value::Null),
            ("LastModifiedDate", modified),
        ],
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
