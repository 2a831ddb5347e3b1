//! The rows every org starts with, and the currency records of a multi-currency org.

use serde_json::json;

use super::{create, field, opp, org, t0};
use crate::emulator::org::Org;
use crate::metadata::standard::{catalog, CURRENCIES};

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
    let rate = |org: &mut Org, iso: &str, rate: f64, start: &str| {
        create(
            org,
            "DatedConversionRate",
            json!({"IsoCode": iso, "ConversionRate": rate, "StartDate": start}),
        )
    };
    let next_start =
        |org: &Org, id: &str| field(org, "DatedConversionRate", id, "NextStartDate").clone();
    let late = rate(&mut multi, "EUR", 0.9, "2026-07-01");
    let early = rate(&mut multi, "EUR", 0.9, "2026-01-01");
    assert_eq!(next_start(&multi, &early), json!("2026-07-01"));
    assert_eq!(
        next_start(&multi, &late),
        json!("9999-12-31"),
        "the latest period runs to the end of time"
    );
    let gbp = rate(&mut multi, "GBP", 0.8, "2026-03-01");
    assert_eq!(
        next_start(&multi, &gbp),
        json!("9999-12-31"),
        "other currencies do not count"
    );
    let middle = rate(&mut multi, "EUR", 0.9, "2026-04-01");
    assert_eq!(next_start(&multi, &early), json!("2026-04-01"));
    assert_eq!(next_start(&multi, &middle), json!("2026-07-01"));
    multi.delete(None, &late, t0()).unwrap();
    assert_eq!(next_start(&multi, &middle), json!("9999-12-31"));
}
