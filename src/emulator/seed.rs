//! Seed data sets for a new org (a minimal stand-in: `empty`, and `demo` with accounts and
//! opportunities).

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{json, Map, Value};

use super::org::{Org, RecordError};

fn fields(value: Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap_or_default()
}

/// Fills `org` with the named data set (`empty` or `demo`), `scale` times.
pub fn seed(
    org: &mut Org,
    name: &str,
    scale: u32,
    today: NaiveDate,
    now: DateTime<Utc>,
) -> Result<(), RecordError> {
    match name {
        "empty" => Ok(()),
        "demo" => {
            for a in 0..scale.max(1) as usize {
                let account = org.create(
                    "Account",
                    &fields(json!({"Name": format!("Account {a}")})),
                    now,
                )?;
                for i in 0..10 {
                    let body = fields(json!({
                        "Name": format!("Opportunity {a}-{i}"),
                        "AccountId": account,
                        "CloseDate": today.to_string(),
                        "StageName": "Prospecting",
                        "Amount": 1000 + i,
                    }));
                    org.create("Opportunity", &body, now)?;
                }
            }
            Ok(())
        }
        other => Err(RecordError::new(
            "UNKNOWN_SEED",
            format!("there is no seed data set named {other:?}; use empty or demo"),
            vec![],
        )),
    }
}
