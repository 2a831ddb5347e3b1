//! Conversion between the CRM's wire values (as mirrored in the store) and the domain's types.
//!
//! Values arrive as the REST API sends them: dates `YYYY-MM-DD`, datetimes
//! `YYYY-MM-DDThh:mm:ss.SSS+0000`, numbers, booleans and `null`. A value of the wrong shape
//! in a field the rules use is treated as absent; the record itself is never dropped.

use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde_json::{Map, Value};

use crate::domain::{Account, Contact, Event, FieldValue, Opportunity, Plan, RollupField, Task};
use crate::store::MirrorRecord;

use super::names::Names;

/// Looks a field up case-insensitively (the CRM's API names are case-insensitive).
pub fn field<'a>(fields: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    fields.get(name).or_else(|| {
        fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

pub fn text(fields: &Map<String, Value>, name: &str) -> Option<String> {
    match field(fields, name)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

pub fn boolean(fields: &Map<String, Value>, name: &str) -> bool {
    matches!(field(fields, name), Some(Value::Bool(true)))
}

pub fn decimal(fields: &Map<String, Value>, name: &str) -> Option<Decimal> {
    json_decimal(field(fields, name)?)
}

/// A JSON number (or numeric string) as an exact decimal: the number's own text is parsed,
/// never a float, so `55118.46` stays `55118.46`.
pub fn json_decimal(value: &Value) -> Option<Decimal> {
    let text = match value {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        _ => return None,
    };
    Decimal::from_str(&text)
        .or_else(|_| Decimal::from_scientific(&text))
        .ok()
}

pub fn date(fields: &Map<String, Value>, name: &str) -> Option<NaiveDate> {
    match field(fields, name)? {
        Value::String(s) => NaiveDate::parse_from_str(s.get(..10)?, "%Y-%m-%d").ok(),
        _ => None,
    }
}

pub fn datetime(fields: &Map<String, Value>, name: &str) -> Option<DateTime<Utc>> {
    match field(fields, name)? {
        Value::String(s) => parse_datetime(s),
        _ => None,
    }
}

/// Parses the CRM's datetime format (`2024-05-01T10:00:00.000+0000`) and RFC 3339.
pub fn parse_datetime(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z")
        .or_else(|_| DateTime::parse_from_rfc3339(s))
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

/// The CRM's datetime format, always UTC with milliseconds.
pub fn format_datetime(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string()
}

/// A decimal as a JSON number with its exact digits.
pub fn decimal_json(d: Decimal) -> Value {
    serde_json::from_str::<serde_json::Number>(&d.normalize().to_string())
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

/// A domain field value as the CRM's JSON value.
pub fn field_value_json(value: &FieldValue) -> Value {
    match value {
        FieldValue::Null => Value::Null,
        FieldValue::Decimal(d) => decimal_json(*d),
        FieldValue::Int(i) => Value::from(*i),
        FieldValue::Date(d) => Value::String(d.format("%Y-%m-%d").to_string()),
    }
}

/// The current value of a rollup output field as read from the CRM, in the field's kind.
pub fn current_rollup(field_kind: RollupField, value: Option<&Value>) -> FieldValue {
    let Some(value) = value else {
        return FieldValue::Null;
    };
    if value.is_null() {
        return FieldValue::Null;
    }
    if field_kind.scale().is_none() {
        return match value {
            Value::String(s) => s
                .get(..10)
                .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
                .map(FieldValue::Date)
                .unwrap_or(FieldValue::Null),
            _ => FieldValue::Null,
        };
    }
    match json_decimal(value) {
        Some(d) if field_kind.scale() == Some(0) && d.fract().is_zero() => d
            .to_i64()
            .map(FieldValue::Int)
            .unwrap_or(FieldValue::Decimal(d)),
        Some(d) => FieldValue::Decimal(d),
        None => FieldValue::Null,
    }
}

pub fn account(names: &Names, r: &MirrorRecord) -> Account {
    Account {
        id: r.id.clone(),
        parent_id: text(&r.fields, &names.account.parent_id),
    }
}

pub fn plan(names: &Names, r: &MirrorRecord, extra_account_ids: Vec<String>) -> Plan {
    let n = &names.plan;
    Plan {
        id: r.id.clone(),
        name: text(&r.fields, &n.name).unwrap_or_default(),
        account_id: text(&r.fields, &n.account),
        extra_account_ids,
        period_start: date(&r.fields, &n.period_start),
        period_end: date(&r.fields, &n.period_end),
        revenue_target: decimal(&r.fields, &n.revenue_target),
        close_ratio_percent: decimal(&r.fields, &n.close_ratio),
        include_child_accounts: boolean(&r.fields, &n.include_child_accounts),
        status: text(&r.fields, &n.status),
        currency: n.currency.as_deref().and_then(|c| text(&r.fields, c)),
        discriminator: n.discriminator.as_deref().and_then(|d| text(&r.fields, d)),
    }
}

pub fn opportunity(names: &Names, r: &MirrorRecord) -> Opportunity {
    let n = &names.opportunity;
    Opportunity {
        id: r.id.clone(),
        account_id: text(&r.fields, &n.account_id),
        amount: decimal(&r.fields, &n.amount),
        close_date: date(&r.fields, &n.close_date),
        is_closed: boolean(&r.fields, &n.is_closed),
        is_won: boolean(&r.fields, &n.is_won),
        probability: decimal(&r.fields, &n.probability),
        forecast_category: text(&r.fields, &n.forecast_category),
        currency: n.currency.as_deref().and_then(|c| text(&r.fields, c)),
        plan_id: text(&r.fields, &n.plan_link),
        link_locked: boolean(&r.fields, &n.plan_link_locked),
        discriminator: n.discriminator.as_deref().and_then(|d| text(&r.fields, d)),
    }
}

pub fn contact(names: &Names, r: &MirrorRecord) -> Contact {
    Contact {
        id: r.id.clone(),
        account_id: text(&r.fields, &names.contact.account_id),
    }
}

pub fn task(names: &Names, r: &MirrorRecord) -> Task {
    let n = &names.task;
    Task {
        id: r.id.clone(),
        account_id: text(&r.fields, &n.account_id),
        what_id: text(&r.fields, &n.what_id),
        who_id: text(&r.fields, &n.who_id),
        activity_date: date(&r.fields, &n.activity_date),
        is_closed: boolean(&r.fields, &n.is_closed),
    }
}

pub fn event(names: &Names, r: &MirrorRecord) -> Event {
    let n = &names.event;
    Event {
        id: r.id.clone(),
        account_id: text(&r.fields, &n.account_id),
        what_id: text(&r.fields, &n.what_id),
        who_id: text(&r.fields, &n.who_id),
        activity_date: date(&r.fields, &n.activity_date),
        start: datetime(&r.fields, &n.start_date_time),
        is_all_day: boolean(&r.fields, &n.is_all_day_event),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_keep_their_exact_digits() {
        let v: Value = serde_json::from_str("55118.46").unwrap();
        assert_eq!(json_decimal(&v), Some(Decimal::new(5511846, 2)));
        let v: Value = serde_json::from_str("1.5E+5").unwrap();
        assert_eq!(json_decimal(&v), Some(Decimal::new(150000, 0)));
        assert_eq!(decimal_json(Decimal::new(4520, 2)).to_string(), "45.2");
    }

    #[test]
    fn crm_datetimes_parse_with_and_without_colon_offsets() {
        let a = parse_datetime("2024-05-01T10:00:00.000+0000").unwrap();
        let b = parse_datetime("2024-05-01T12:00:00+02:00").unwrap();
        assert_eq!(a, b);
        assert_eq!(format_datetime(a), "2024-05-01T10:00:00.000+0000");
    }

    #[test]
    fn current_counts_read_as_integers_and_dates_as_dates() {
        let count = RollupField::all()
            .iter()
            .copied()
            .find(|f| f.scale() == Some(0))
            .unwrap();
        assert_eq!(current_rollup(count, Some(&json!(4))), FieldValue::Int(4));
        let v: Value = serde_json::from_str("4.0").unwrap();
        assert_eq!(current_rollup(count, Some(&v)), FieldValue::Int(4));
        assert_eq!(current_rollup(count, None), FieldValue::Null);
        let day = RollupField::all()
            .iter()
            .copied()
            .find(|f| f.scale().is_none())
            .unwrap();
        assert_eq!(
            current_rollup(day, Some(&json!("2026-08-22"))),
            FieldValue::Date(NaiveDate::from_ymd_opt(2026, 8, 22).unwrap())
        );
    }
}
