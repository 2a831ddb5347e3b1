//! The CRM's rules on its currency records (CurrencyType, DatedConversionRate) and the
//! NextStartDate chain of dated rates.

use serde_json::Value;

use super::{Org, RecordError, END_OF_TIME};
use crate::emulator::soql::Record;

impl Org {
    /// The CRM's own rules on its currency records, checked on the record as it would be
    /// after the write (`id`: the record updated): a conversion rate is greater than zero;
    /// at most one CurrencyType is the corporate currency; no two DatedConversionRate
    /// periods of a currency start on the same day.
    pub(super) fn check_currency_rules(
        &self,
        object: &str,
        id: Option<&str>,
        rec: &Record,
    ) -> Result<(), RecordError> {
        if object != "CurrencyType" && object != "DatedConversionRate" {
            return Ok(());
        }
        let others = || {
            self.live_records(object).filter(move |r| {
                id.is_none_or(|id| r.get("Id").and_then(Value::as_str) != Some(id))
            })
        };
        let rate = rec
            .get("ConversionRate")
            .and_then(|v| v.to_string().parse::<rust_decimal::Decimal>().ok());
        if rate.is_some_and(|r| r <= rust_decimal::Decimal::ZERO) {
            return Err(RecordError::new(
                "FIELD_INTEGRITY_EXCEPTION",
                "Conversion Rate: the conversion rate must be greater than zero",
                vec!["ConversionRate".into()],
            ));
        }
        if object == "CurrencyType" {
            if rec.get("IsCorporate") == Some(&Value::Bool(true)) {
                if let Some(corporate) =
                    others().find(|r| r.get("IsCorporate") == Some(&Value::Bool(true)))
                {
                    return Err(RecordError::new(
                        "FIELD_INTEGRITY_EXCEPTION",
                        format!(
                            "Corporate Currency: {} is already the corporate currency; an org has one",
                            corporate.get("IsoCode").and_then(Value::as_str).unwrap_or("?")
                        ),
                        vec!["IsCorporate".into()],
                    ));
                }
            }
            return Ok(());
        }
        let key = |r: &Record| {
            (
                r.get("IsoCode")
                    .and_then(Value::as_str)
                    .map(str::to_ascii_uppercase),
                r.get("StartDate")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            )
        };
        let mine = key(rec);
        if let Some(other) = others().find(|r| key(r) == mine) {
            let other_id = other.get("Id").and_then(Value::as_str).unwrap_or_default();
            return Err(RecordError::new(
                "DUPLICATE_VALUE",
                format!(
                    "duplicate value found: StartDate duplicates value on record with id: {other_id}"
                ),
                vec!["IsoCode".into(), "StartDate".into()],
            ));
        }
        Ok(())
    }

    /// DatedConversionRate.NextStartDate: the StartDate of the next period of the same
    /// currency, and for the latest the end of time (9999-12-31), as a real org shows it. A
    /// derivation across records, so it moves no SystemModstamp.
    pub(super) fn refresh_next_start_dates(&mut self) {
        const OBJECT: &str = "DatedConversionRate";
        let mut rows: Vec<(String, String, String)> = self
            .live_records(OBJECT)
            .filter_map(|r| {
                Some((
                    r.get("IsoCode")?.as_str()?.to_string(),
                    r.get("StartDate")?.as_str()?.to_string(),
                    r.get("Id")?.as_str()?.to_string(),
                ))
            })
            .collect();
        rows.sort();
        let key = OBJECT.to_ascii_lowercase();
        for i in 0..rows.len() {
            let next = rows
                .get(i + 1)
                .filter(|(iso, _, _)| *iso == rows[i].0)
                .map(|(_, d, _)| Value::from(d.clone()));
            let next = next.unwrap_or_else(|| Value::from(END_OF_TIME));
            let id = rows[i].2.clone();
            let Some(before) = self.tables.get(&key).and_then(|t| t.records.get(&id)) else {
                continue;
            };
            if before.get("NextStartDate") == Some(&next) {
                continue;
            }
            let before = before.clone();
            let mut after = before.clone();
            after.insert("NextStartDate".into(), next);
            self.replace(&key, &id, after, before);
        }
    }
}
