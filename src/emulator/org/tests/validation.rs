//! What a write is refused for: required, unknown, read-only and mistyped fields, references,
//! and the validation-rule hook.

use serde_json::{json, Map, Value};

use super::{account, body, create, err, field, junction, org, refused_update, t0, update};
use crate::emulator::org::POD;
use crate::metadata::id;

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
    let e = refused_update(&mut org, "Account", &a, json!({"Name": null}));
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
        let plan = create(&mut org, "Account_Plan__c", json!({"Name": "P"}));
        let a = account(&mut org, "A");
        let j = junction(&mut org, &plan, &a);
        refused_update(
            &mut org,
            "Account_Plan_Account__c",
            &j,
            json!({ "Account_Plan__c": plan }),
        )
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
    let mut amount = |text: &str| {
        let amount = serde_json::from_str(text).unwrap();
        let id = org
            .create("Opportunity", &with("Amount", amount), t0())
            .unwrap();
        field(&org, "Opportunity", &id, "Amount").to_string()
    };
    assert_eq!(amount("99999999999999.99"), "99999999999999.99");
    assert_eq!(amount("10.005"), "10.01");
    let e = err(org.create("Opportunity", &with("Name", json!("x".repeat(121))), t0()));
    assert_eq!(e.status_code, "STRING_TOO_LONG");
    assert_eq!(e.fields, ["Name"]);
    let dt = create(
        &mut org,
        "Account_Plan__c",
        json!({"Rollups_Changed_At__c": "2026-08-15T14:00:00+02:00"}),
    );
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
    let c = create(
        &mut org,
        "Contact",
        json!({"LastName": "Lee", "AccountId": a}),
    );
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
fn validation_failure_hook_refuses_updates_of_the_named_record() {
    let mut org = org();
    let plan = create(&mut org, "Account_Plan__c", json!({"Name": "Locked plan"}));
    let other = create(&mut org, "Account_Plan__c", json!({"Name": "Free plan"}));
    let won = json!({"Won_Amount__c": 5});
    org.set_validation_failure(Some("Locked plan".into()));
    let e = refused_update(&mut org, "Account_Plan__c", &plan, won.clone());
    assert_eq!(e.status_code, "FIELD_CUSTOM_VALIDATION_EXCEPTION");
    assert!(e.fields.is_empty());
    update(&mut org, "Account_Plan__c", &other, won.clone());
    org.set_validation_failure(None);
    update(&mut org, "Account_Plan__c", &plan, won);
}
