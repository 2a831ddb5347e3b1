//! Derived fields: opportunity stage fields and expected revenue, task status, the activity's
//! account, names and event times.

use serde_json::{json, Value};

use super::{
    account, assert_fields, body, create, err, field, opp, org, refused_update, t0, update,
};
use crate::emulator::org::Org;

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
    let set_stage = |org: &mut Org, stage: &str| {
        update(org, "Opportunity", &o, json!({ "StageName": stage }));
        (f(org, "IsClosed"), f(org, "IsWon"))
    };
    assert_eq!(
        set_stage(&mut org, "Closed Won"),
        (json!(true), json!(true))
    );
    assert_eq!(f(&org, "Probability"), json!(100));
    assert_eq!(f(&org, "ForecastCategoryName"), json!("Closed"));
    assert_eq!(
        set_stage(&mut org, "Closed Lost"),
        (json!(true), json!(false))
    );
    assert_eq!(f(&org, "ForecastCategoryName"), json!("Omitted"));
    assert_eq!(f(&org, "ExpectedRevenue").to_string(), "0");
    update(&mut org, "Opportunity", &o, json!({"Amount": null}));
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
    update(&mut org, "Opportunity", &o, json!({"Amount": 3000}));
    assert_eq!(
        f(&org, "Probability"),
        json!(35),
        "other writes keep the override"
    );
    assert_eq!(f(&org, "ExpectedRevenue").to_string(), "1050");
    update(
        &mut org,
        "Opportunity",
        &o,
        json!({"StageName": "Prospecting"}),
    );
    assert_eq!(
        f(&org, "Probability"),
        json!(35),
        "an unchanged stage resets nothing"
    );
    update(
        &mut org,
        "Opportunity",
        &o,
        json!({"StageName": "Value Proposition"}),
    );
    assert_eq!(f(&org, "Probability"), json!(50));
    assert_eq!(f(&org, "ForecastCategoryName"), json!("Pipeline"));
    update(
        &mut org,
        "Opportunity",
        &o,
        json!({"StageName": "Qualification", "Probability": 15}),
    );
    assert_eq!(f(&org, "Probability"), json!(15));
}

#[test]
fn task_status_and_defaults() {
    let mut org = org();
    let t = create(&mut org, "Task", json!({"Subject": "Call"}));
    assert_fields(
        &org,
        "Task",
        &t,
        &[
            ("Status", json!("Not Started")),
            ("Priority", json!("Normal")),
            ("IsClosed", json!(false)),
            ("IsArchived", json!(false)),
        ],
    );
    update(&mut org, "Task", &t, json!({"Status": "Completed"}));
    assert_eq!(field(&org, "Task", &t, "IsClosed"), &json!(true));
    update(&mut org, "Task", &t, json!({"Status": "Deferred"}));
    assert_eq!(field(&org, "Task", &t, "IsClosed"), &json!(false));
    let e = refused_update(&mut org, "Task", &t, json!({"Status": "Done"}));
    assert_eq!(e.status_code, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST");
}

#[test]
fn activity_account_follows_what_then_who_and_stays_put_when_the_opportunity_moves() {
    let mut org = org();
    let a = account(&mut org, "A");
    let b = account(&mut org, "B");
    let c = create(
        &mut org,
        "Contact",
        json!({"LastName": "Lee", "FirstName": "Ann", "AccountId": b}),
    );
    assert_eq!(field(&org, "Contact", &c, "Name"), &json!("Ann Lee"));
    let o = opp(&mut org, json!({"AccountId": a}));
    let orphan = opp(&mut org, json!({}));
    let task = |org: &mut Org, v: Value| create(org, "Task", v);
    let on_account = task(&mut org, json!({"WhatId": a, "WhoId": c}));
    assert_eq!(field(&org, "Task", &on_account, "AccountId"), &json!(a));
    let on_opp = task(&mut org, json!({"WhatId": o, "WhoId": c}));
    assert_eq!(field(&org, "Task", &on_opp, "AccountId"), &json!(a));
    let on_orphan = task(&mut org, json!({"WhatId": orphan, "WhoId": c}));
    assert_eq!(field(&org, "Task", &on_orphan, "AccountId"), &Value::Null);
    let on_who = task(&mut org, json!({ "WhoId": c }));
    assert_eq!(field(&org, "Task", &on_who, "AccountId"), &json!(b));
    let on_none = task(&mut org, json!({}));
    assert_eq!(field(&org, "Task", &on_none, "AccountId"), &Value::Null);

    let stamp = field(&org, "Task", &on_opp, "SystemModstamp").clone();
    update(&mut org, "Opportunity", &o, json!({ "AccountId": b }));
    assert_eq!(
        field(&org, "Task", &on_opp, "AccountId"),
        &json!(a),
        "not recomputed"
    );
    assert_eq!(field(&org, "Task", &on_opp, "SystemModstamp"), &stamp);
    update(&mut org, "Task", &on_opp, json!({"WhatId": null}));
    assert_eq!(
        field(&org, "Task", &on_opp, "AccountId"),
        &json!(b),
        "now from the contact"
    );
    update(&mut org, "Task", &on_who, json!({ "WhatId": o }));
    assert_eq!(field(&org, "Task", &on_who, "AccountId"), &json!(b));

    let ev = create(
        &mut org,
        "Event",
        json!({"WhatId": a, "StartDateTime": "2026-08-20T23:30:00.000+0000", "DurationInMinutes": 60}),
    );
    assert_eq!(field(&org, "Event", &ev, "AccountId"), &json!(a));
}

#[test]
fn event_times_follow_the_start() {
    let mut org = org();
    let e = create(
        &mut org,
        "Event",
        json!({"StartDateTime": "2026-08-20T23:30:00Z", "DurationInMinutes": 45}),
    );
    let expect = |org: &Org, fields: &[(&str, Value)]| assert_fields(org, "Event", &e, fields);
    let set = |org: &mut Org, fields: Value| update(org, "Event", &e, fields);
    expect(
        &org,
        &[
            ("ActivityDate", json!("2026-08-20")),
            ("ActivityDateTime", json!("2026-08-20T23:30:00.000+0000")),
            ("EndDateTime", json!("2026-08-21T00:15:00.000+0000")),
        ],
    );
    set(&mut org, json!({"StartDateTime": "2026-08-22T10:00:00Z"}));
    expect(
        &org,
        &[
            ("ActivityDate", json!("2026-08-22")),
            ("EndDateTime", json!("2026-08-22T10:45:00.000+0000")),
        ],
    );
    set(&mut org, json!({"EndDateTime": "2026-08-22T12:00:00Z"}));
    assert_eq!(field(&org, "Event", &e, "DurationInMinutes"), &json!(120));
    let missing = err(org.create(
        "Event",
        &body(json!({"StartDateTime": "2026-08-20T10:00:00Z"})),
        t0(),
    ));
    assert_eq!(missing.status_code, "REQUIRED_FIELD_MISSING");
    let all_day = create(
        &mut org,
        "Event",
        json!({"IsAllDayEvent": true, "ActivityDate": "2026-09-17"}),
    );
    assert_fields(
        &org,
        "Event",
        &all_day,
        &[
            ("StartDateTime", json!("2026-09-17T00:00:00.000+0000")),
            ("ActivityDateTime", Value::Null),
        ],
    );
}
