//! The fields the CRM derives from others on the same record: opportunity stage fields and
//! expected revenue, task status, the activity's account, contact and user names, event times.

use chrono::{Duration, NaiveDate, TimeZone, Utc};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::Value;

use super::values::{decimal_of, format_datetime, number, parse_datetime};
use super::{Org, RecordError};
use crate::emulator::soql::Record;
use crate::metadata::standard::FORECAST_CATEGORIES;
use crate::metadata::ObjectDef;

impl Org {
    fn lookup_row(&self, object: &str, api_name: &str) -> Option<&Record> {
        self.live_records(object).find(|r| {
            r.get("ApiName").and_then(Value::as_str) == Some(api_name)
                || r.get("MasterLabel").and_then(Value::as_str) == Some(api_name)
        })
    }

    fn activity_account(&self, rec: &Record) -> Option<String> {
        if let Some(what) = rec.get("WhatId").and_then(Value::as_str) {
            match self.find(what) {
                Some(("Account", _)) => return Some(what.to_string()),
                Some(("Opportunity", opp)) => {
                    return opp
                        .get("AccountId")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                }
                _ => {}
            }
        }
        let who = rec.get("WhoId").and_then(Value::as_str)?;
        match self.find(who) {
            Some(("Contact", c)) => c
                .get("AccountId")
                .and_then(Value::as_str)
                .map(str::to_string),
            _ => None,
        }
    }

    /// The fields the CRM computes from others on the same record.
    pub(super) fn derive(
        &self,
        def: &ObjectDef,
        before: Option<&Record>,
        changed: &[&str],
        rec: &mut Record,
    ) -> Result<(), RecordError> {
        let creating = before.is_none();
        let has = |name: &str| changed.contains(&name);
        match def.name.as_str() {
            "Opportunity" => {
                let stage = rec
                    .get("StageName")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                let old_stage = before
                    .and_then(|b| b.get("StageName"))
                    .and_then(Value::as_str);
                let stage_moved = creating || (has("StageName") && old_stage != stage.as_deref());
                if stage_moved {
                    if let Some(row) = stage
                        .as_deref()
                        .and_then(|s| self.lookup_row("OpportunityStage", s))
                    {
                        let flag = |k: &str| Value::Bool(row.get(k) == Some(&Value::Bool(true)));
                        rec.insert("IsClosed".into(), flag("IsClosed"));
                        rec.insert("IsWon".into(), flag("IsWon"));
                        if !has("Probability") {
                            match row.get("DefaultProbability") {
                                Some(p) if !p.is_null() => {
                                    rec.insert("Probability".into(), p.clone())
                                }
                                _ => rec.remove("Probability"),
                            };
                        }
                        if !has("ForecastCategoryName") {
                            match row.get("ForecastCategoryName") {
                                Some(p) if !p.is_null() => {
                                    rec.insert("ForecastCategoryName".into(), p.clone())
                                }
                                _ => rec.remove("ForecastCategoryName"),
                            };
                        }
                    }
                }
                let category = rec
                    .get("ForecastCategoryName")
                    .and_then(Value::as_str)
                    .and_then(|n| FORECAST_CATEGORIES.iter().find(|(name, _)| *name == n))
                    .map(|(_, c)| Value::from(*c));
                match category {
                    Some(c) => rec.insert("ForecastCategory".into(), c),
                    None => rec.remove("ForecastCategory"),
                };
                let amount = rec.get("Amount").and_then(decimal_of);
                let probability = rec.get("Probability").and_then(decimal_of);
                match (amount, probability) {
                    (Some(a), Some(p)) => {
                        let e = (a * p / Decimal::ONE_HUNDRED)
                            .round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
                        rec.insert("ExpectedRevenue".into(), number(e));
                    }
                    _ => {
                        rec.remove("ExpectedRevenue");
                    }
                }
            }
            "Task" => {
                if creating || has("Status") {
                    let closed = rec
                        .get("Status")
                        .and_then(Value::as_str)
                        .and_then(|s| self.lookup_row("TaskStatus", s))
                        .is_some_and(|r| r.get("IsClosed") == Some(&Value::Bool(true)));
                    rec.insert("IsClosed".into(), Value::Bool(closed));
                }
                self.derive_activity_account(creating, &has, rec);
            }
            "Event" => {
                self.derive_activity_account(creating, &has, rec);
                let timing = [
                    "StartDateTime",
                    "EndDateTime",
                    "DurationInMinutes",
                    "ActivityDate",
                    "ActivityDateTime",
                    "IsAllDayEvent",
                ];
                if creating || timing.iter().any(|t| has(t)) {
                    derive_event_times(rec, &has)?;
                }
            }
            "Contact" | "User" if creating || has("FirstName") || has("LastName") => {
                let first = rec.get("FirstName").and_then(Value::as_str).unwrap_or("");
                let last = rec.get("LastName").and_then(Value::as_str).unwrap_or("");
                let name = format!("{first} {last}").trim().to_string();
                rec.insert("Name".into(), Value::from(name));
            }
            _ => {}
        }
        Ok(())
    }

    fn derive_activity_account(
        &self,
        creating: bool,
        has: &dyn Fn(&str) -> bool,
        rec: &mut Record,
    ) {
        if creating || has("WhatId") || has("WhoId") {
            match self.activity_account(rec) {
                Some(a) => rec.insert("AccountId".into(), Value::from(a)),
                None => rec.remove("AccountId"),
            };
        }
    }
}

fn derive_event_times(rec: &mut Record, has: &dyn Fn(&str) -> bool) -> Result<(), RecordError> {
    let get_dt =
        |rec: &Record, k: &str| rec.get(k).and_then(Value::as_str).and_then(parse_datetime);
    let all_day = rec.get("IsAllDayEvent") == Some(&Value::Bool(true));
    let duration = rec
        .get("DurationInMinutes")
        .and_then(decimal_of)
        .and_then(|d| d.trunc().to_i64());
    if all_day {
        let date = if has("ActivityDate") || get_dt(rec, "StartDateTime").is_none() {
            rec.get("ActivityDate")
                .and_then(Value::as_str)
                .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
        } else {
            get_dt(rec, "StartDateTime").map(|t| t.date_naive())
        };
        let Some(date) = date else {
            return Err(RecordError::new(
                "REQUIRED_FIELD_MISSING",
                "Required fields are missing: [ActivityDate]",
                vec!["ActivityDate".into()],
            ));
        };
        let start = Utc.from_utc_datetime(&date.and_hms_opt(0, 0, 0).unwrap_or_default());
        let minutes = duration.filter(|d| *d >= 1440).unwrap_or(1440);
        rec.insert(
            "ActivityDate".into(),
            Value::from(date.format("%Y-%m-%d").to_string()),
        );
        rec.insert("StartDateTime".into(), Value::from(format_datetime(start)));
        rec.insert(
            "EndDateTime".into(),
            Value::from(format_datetime(start + Duration::minutes(minutes - 1440))),
        );
        rec.insert("DurationInMinutes".into(), Value::from(minutes));
        rec.remove("ActivityDateTime");
        return Ok(());
    }
    let start = if has("ActivityDateTime") && !has("StartDateTime") {
        get_dt(rec, "ActivityDateTime")
    } else {
        get_dt(rec, "StartDateTime").or_else(|| get_dt(rec, "ActivityDateTime"))
    };
    let Some(start) = start else {
        return Err(RecordError::new(
            "REQUIRED_FIELD_MISSING",
            "Required fields are missing: [StartDateTime]",
            vec!["StartDateTime".into()],
        ));
    };
    let end = get_dt(rec, "EndDateTime");
    let minutes = if has("EndDateTime") || duration.is_none() {
        match end {
            Some(end) if end >= start => (end - start).num_minutes(),
            Some(_) => {
                return Err(RecordError::new(
                    "FIELD_INTEGRITY_EXCEPTION",
                    "End Date Time: the end must not be before the start",
                    vec!["EndDateTime".into()],
                ))
            }
            None => duration.unwrap_or(-1),
        }
    } else {
        duration.unwrap_or(-1)
    };
    if minutes < 0 {
        return Err(RecordError::new(
            "REQUIRED_FIELD_MISSING",
            "Required fields are missing: [DurationInMinutes]",
            vec!["DurationInMinutes".into()],
        ));
    }
    let start_text = Value::from(format_datetime(start));
    rec.insert("StartDateTime".into(), start_text.clone());
    rec.insert("ActivityDateTime".into(), start_text);
    rec.insert(
        "ActivityDate".into(),
        Value::from(start.date_naive().format("%Y-%m-%d").to_string()),
    );
    rec.insert("DurationInMinutes".into(), Value::from(minutes));
    rec.insert(
        "EndDateTime".into(),
        Value::from(format_datetime(start + Duration::minutes(minutes))),
    );
    Ok(())
}
