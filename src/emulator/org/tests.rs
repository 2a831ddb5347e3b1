//! Tests of the org's validation, derivations, Ids, timestamps, deletion, upsert and
//! savepoints, one file a concern; the helpers below write with the API rules at [`t0`].

mod currency;
mod derive;
mod recycle;
mod stamps;
mod validation;
mod writes;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{json, Map, Value};

use super::{Org, RecordError};
use crate::metadata::standard::catalog;

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

/// Creates a record of `object` with the JSON object `fields`; the write must succeed.
fn create(org: &mut Org, object: &str, fields: Value) -> String {
    org.create(object, &body(fields), t0()).unwrap()
}

/// Updates a record with the JSON object `fields`; the write must succeed.
fn update(org: &mut Org, object: &str, id: &str, fields: Value) {
    org.update(object, id, &body(fields), t0()).unwrap()
}

/// Updates a record with the JSON object `fields`; the write must fail.
fn refused_update(org: &mut Org, object: &str, id: &str, fields: Value) -> RecordError {
    org.update(object, id, &body(fields), t0()).unwrap_err()
}

fn account(org: &mut Org, name: &str) -> String {
    create(org, "Account", json!({"Name": name}))
}

/// Links `account` to `plan` (an Account_Plan_Account__c row).
fn junction(org: &mut Org, plan: &str, account: &str) -> String {
    create(
        org,
        "Account_Plan_Account__c",
        json!({"Account_Plan__c": plan, "Account__c": account}),
    )
}

fn opp(org: &mut Org, extra: Value) -> String {
    let mut b = body(
        json!({"Name": "o", "CloseDate": "2026-09-30", "StageName": "Prospecting", "Amount": 1000}),
    );
    b.extend(body(extra));
    org.create("Opportunity", &b, t0()).unwrap()
}

fn field<'a>(org: &'a Org, object: &str, id: &str, f: &str) -> &'a Value {
    org.get(object, id).unwrap().get(f).unwrap_or(&Value::Null)
}

/// Asserts each `(field, value)` of the record.
fn assert_fields(org: &Org, object: &str, id: &str, expected: &[(&str, Value)]) {
    for (name, value) in expected {
        assert_eq!(field(org, object, id, name), value, "{object}.{name}");
    }
}
