//! Seed data sets for a new org (minimal placeholder until the full seeds land).

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{json, Map, Value};

use super::org::{Org, RecordError};

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
            for i in 0..(10 * scale.max(1) as usize) {
                let fields: Map<String, Value> = json!({
                    "Name": format!("Opportunity {i}"),
                    "CloseDate": today.to_string(),
                    "StageName": "Prospecting",
                    "Amount": 1000,
                })
                .as_object()
                .cloned()
                .unwrap_or_default();
                org.create("Opportunity", &fields, now)?;
            }
            Ok(())
        }
        other => Err(RecordError::new(
            "UNKNOWN_SEED",
            &format!("no seed named {other}"),
            &[],
        )),
    }
}
