//! The golden org: its records fed straight to [`compute`] must give exactly the links and
//! rollups of `tests/fixtures/golden/expected.json`, computed independently from design.md.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde_json::Value;

use super::compute::compute;
use super::currency::Rates;
use super::diff::FieldValue;
use super::model::{Account, Contact, Event, Opportunity, OrgData, Plan, Rules, Task};
use super::rollups::RollupField;

const ORG: &str = include_str!("../../tests/fixtures/golden/org.json");
const EXPECTED: &str = include_str!("../../tests/fixtures/golden/expected.json");

fn s(v: &Value, k: &str) -> Option<String> {
    v[k].as_str().map(str::to_string)
}

fn date(v: &Value, k: &str) -> Option<NaiveDate> {
    v[k].as_str().map(|s| s.parse().unwrap())
}

fn num(v: &Value, k: &str) -> Option<Decimal> {
    match &v[k] {
        Value::Null => None,
        Value::Number(n) => Some(n.to_string().parse().unwrap()),
        other => panic!("{k} is not a number: {other}"),
    }
}

fn flag(v: &Value, k: &str) -> bool {
    v[k].as_bool().unwrap_or(false)
}

fn list<'a>(org: &'a Value, k: &str) -> &'a Vec<Value> {
    org[k].as_array().unwrap()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}

fn org_data(org: &Value) -> OrgData {
    let mut extra: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for j in list(org, "Account_Plan_Account__c") {
        extra
            .entry(s(j, "Account_Plan__c").unwrap())
            .or_default()
            .push(s(j, "Account__c").unwrap());
    }
    OrgData {
        accounts: list(org, "Account")
            .iter()
            .map(|a| Account {
                id: s(a, "Id").unwrap(),
                parent_id: s(a, "ParentId"),
            })
            .collect(),
        plans: list(org, "Account_Plan__c")
            .iter()
            .map(|p| Plan {
                id: s(p, "Id").unwrap(),
                name: s(p, "Name").unwrap(),
                account_id: s(p, "Account__c"),
                extra_account_ids: extra.get(&s(p, "Id").unwrap()).cloned().unwrap_or_default(),
                period_start: date(p, "Period_Start__c"),
                period_end: date(p, "Period_End__c"),
                revenue_target: num(p, "Revenue_Target__c"),
                close_ratio_percent: num(p, "Close_Ratio__c"),
                include_child_accounts: flag(p, "Include_Child_Accounts__c"),
                status: s(p, "Status__c"),
                currency: s(p, "CurrencyIsoCode"),
                discriminator: None,
            })
            .collect(),
        opportunities: list(org, "Opportunity")
            .iter()
            .map(|o| Opportunity {
                id: s(o, "Id").unwrap(),
                account_id: s(o, "AccountId"),
                amount: num(o, "Amount"),
                close_date: date(o, "CloseDate"),
                is_closed: flag(o, "IsClosed"),
                is_won: flag(o, "IsWon"),
                probability: num(o, "Probability"),
                forecast_category: s(o, "ForecastCategoryName"),
                currency: s(o, "CurrencyIsoCode"),
                plan_id: s(o, "Account_Plan__c"),
                link_locked: flag(o, "Plan_Link_Locked__c"),
                discriminator: None,
            })
            .collect(),
        contacts: list(org, "Contact")
            .iter()
            .map(|c| Contact {
                id: s(c, "Id").unwrap(),
                account_id: s(c, "AccountId"),
            })
            .collect(),
        tasks: list(org, "Task")
            .iter()
            .map(|t| Task {
                id: s(t, "Id").unwrap(),
                account_id: s(t, "AccountId"),
                what_id: s(t, "WhatId"),
                who_id: s(t, "WhoId"),
                activity_date: date(t, "ActivityDate"),
                is_closed: flag(t, "IsClosed"),
            })
            .collect(),
        events: list(org, "Event")
            .iter()
            .map(|e| Event {
                id: s(e, "Id").unwrap(),
                account_id: s(e, "AccountId"),
                what_id: s(e, "WhatId"),
                who_id: s(e, "WhoId"),
                activity_date: date(e, "ActivityDate"),
                start: e["StartDateTime"].as_str().map(|t| {
                    DateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.f%z")
                        .unwrap()
                        .with_timezone(&Utc)
                }),
                is_all_day: flag(e, "IsAllDayEvent"),
            })
            .collect(),
        rates: Rates::single(),
    }
}

fn rules(org: &Value) -> Rules {
    Rules {
        linkable_statuses: strings(&org["linkable_statuses"]),
        rollup_statuses: strings(&org["rollup_statuses"]),
        default_close_ratio_percent: num(org, "default_close_ratio").unwrap(),
        engaged_contact_days: org["engaged_contact_days"].as_i64().unwrap(),
        timezone: org["org_timezone"].as_str().unwrap().parse().unwrap(),
        use_discriminator: false,
    }
}

/// The golden org as the domain's inputs, the rules it was evaluated with, and its `today`.
pub(in crate::domain) fn golden() -> (OrgData, Rules, NaiveDate) {
    let org: Value = serde_json::from_str(ORG).unwrap();
    let today = org["as_of"].as_str().unwrap().parse().unwrap();
    (org_data(&org), rules(&org), today)
}

fn expected_value(field: RollupField, v: &Value) -> FieldValue {
    match v {
        Value::Null => FieldValue::Null,
        Value::String(s) if field.scale().is_none() => FieldValue::Date(s.parse().unwrap()),
        Value::String(s) => FieldValue::Decimal(s.parse().unwrap()),
        Value::Number(n) => FieldValue::Int(n.as_i64().unwrap()),
        other => panic!("unexpected value {other}"),
    }
}

#[test]
fn golden_org_gives_the_expected_links_and_rollups() {
    let org: Value = serde_json::from_str(ORG).unwrap();
    let expected: Value = serde_json::from_str(EXPECTED).unwrap();
    let today: NaiveDate = org["as_of"].as_str().unwrap().parse().unwrap();
    let out = compute(&org_data(&org), &rules(&org), today, None);

    let mut mismatches = Vec::new();
    let want_links = expected["links"].as_object().unwrap();
    assert_eq!(out.links.len(), want_links.len());
    for (opp, want) in want_links {
        let want = want.as_str().map(str::to_string);
        let got = out.links.get(opp).cloned().flatten();
        if got != want {
            mismatches.push(format!("link {opp}: got {got:?}, expected {want:?}"));
        }
    }
    let want_rollups = expected["rollups"].as_object().unwrap();
    let got_plans: Vec<&String> = out.rollups.keys().collect();
    let want_plans: Vec<&String> = want_rollups.keys().collect();
    assert_eq!(got_plans, want_plans);
    for (plan, fields) in want_rollups {
        let got = &out.rollups[plan];
        let fields = fields.as_object().unwrap();
        assert_eq!(fields.len(), RollupField::all().len(), "fields of {plan}");
        for (name, want) in fields {
            let field = RollupField::from_api_name(name).unwrap();
            let want = expected_value(field, want);
            let got = got.value(field);
            if !got.same_as(&want) {
                mismatches.push(format!("{plan} {name}: got {got:?}, expected {want:?}"));
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}
