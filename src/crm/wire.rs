//! The REST wire format: response bodies to client types, error envelopes to [`CrmError`],
//! the `Sforce-Limit-Info` header and Salesforce datetimes. Pure functions, no I/O.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{
    ApiUsage, CrmError, DeletedRecords, Limit, Limits, QueryPage, RecordError, RecordResult,
};

/// How many characters of an unexpected body an error keeps.
const EXCERPT_CHARS: usize = 200;

/// The first characters of a body, for error messages.
pub(crate) fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let trimmed = text.trim();
    let mut out: String = trimmed.chars().take(EXCERPT_CHARS).collect();
    if trimmed.chars().count() > EXCERPT_CHARS {
        out.push('…');
    }
    out
}

pub(crate) fn decode_error(
    what: &str,
    status: u16,
    reason: impl Into<String>,
    body: &[u8],
) -> CrmError {
    CrmError::Decode {
        what: what.to_string(),
        status,
        reason: reason.into(),
        excerpt: excerpt(body),
    }
}

/// Parses `api-usage=N/M`, tolerating other `; name=value` parts around it
/// (`per-app-api-usage=...`, `api-bursts=...`).
pub(crate) fn parse_limit_info(header: &str) -> Option<ApiUsage> {
    header.split(';').find_map(|part| {
        let value = part.trim().strip_prefix("api-usage=")?;
        let (used, max) = value.trim().split_once('/')?;
        Some(ApiUsage {
            used: used.trim().parse().ok()?,
            max: max.trim().parse().ok()?,
        })
    })
}

/// A Salesforce datetime: `2013-05-07T22:07:19.000+0000`, or RFC 3339 (`Z`, `+00:00`).
pub(crate) fn parse_datetime(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(dt.with_timezone(&Utc));
    }
    if let Ok(dt) = DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z") {
        return Some(dt.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.fZ")
        .ok()
        .map(|n| n.and_utc())
}

/// Maps a non-2xx answer from a data endpoint to an error. The body is the documented
/// `[{message, errorCode, fields}]` array; an empty body gives `HTTP_<status>`; anything else
/// (HTML from a proxy, a stray object) is a decode error with an excerpt.
pub(crate) fn api_error(what: &str, status: u16, body: &[u8]) -> CrmError {
    #[derive(Deserialize)]
    struct Item {
        #[serde(rename = "errorCode")]
        error_code: String,
        #[serde(default)]
        message: String,
        #[serde(default)]
        fields: Option<Vec<String>>,
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return CrmError::Api {
            status,
            error_code: format!("HTTP_{status}"),
            message: "empty response body".to_string(),
            fields: Vec::new(),
        };
    }
    let items: Vec<Item> = match serde_json::from_slice(body) {
        Ok(items) => items,
        Err(e) => {
            return decode_error(what, status, format!("not a JSON error array ({e})"), body);
        }
    };
    let Some(first) = items.into_iter().next() else {
        return decode_error(what, status, "an empty error array", body);
    };
    // The rolling 24-hour limit ends the cycle; the concurrent-request limits
    // ("ConcurrentRequests", "ConcurrentPerOrgLongTxn") only ask for a back-off.
    if status == 403
        && first.error_code == "REQUEST_LIMIT_EXCEEDED"
        && !first.message.contains("Concurrent")
    {
        return CrmError::QuotaExceeded {
            message: first.message,
        };
    }
    CrmError::Api {
        status,
        error_code: first.error_code,
        message: first.message,
        fields: first.fields.unwrap_or_default(),
    }
}

/// True when a 401 body says the session is expired or invalid (or says nothing at all).
pub(crate) fn is_session_error(body: &[u8]) -> bool {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(items)) => items.iter().any(|i| {
            i.get("errorCode")
                .and_then(Value::as_str)
                .is_some_and(|c| c == "INVALID_SESSION_ID")
        }),
        // jsforce treats every 401 as an expired session; an unparseable 401 is the same.
        _ => true,
    }
}

/// Removes `attributes` from a record and from every nested parent record and subquery row.
pub(crate) fn strip_attributes(record: &mut Map<String, Value>) {
    record.remove("attributes");
    for value in record.values_mut() {
        if let Value::Object(nested) = value {
            if nested.contains_key("attributes") {
                strip_attributes(nested);
            } else if let Some(Value::Array(rows)) = nested.get_mut("records") {
                for row in rows.iter_mut() {
                    if let Value::Object(row) = row {
                        strip_attributes(row);
                    }
                }
            }
        }
    }
}

pub(crate) fn parse_query_page(body: &[u8]) -> Result<QueryPage, String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Wire {
        total_size: u64,
        done: bool,
        #[serde(default)]
        next_records_url: Option<String>,
        records: Vec<Map<String, Value>>,
    }
    let wire: Wire =
        serde_json::from_slice(body).map_err(|e| format!("not a query result ({e})"))?;
    let mut records = wire.records;
    for record in &mut records {
        strip_attributes(record);
    }
    Ok(QueryPage {
        total_size: wire.total_size,
        done: wire.done,
        next_records_url: wire.next_records_url.filter(|_| !wire.done),
        records,
    })
}

#[derive(Deserialize)]
struct WireRecordResult {
    #[serde(default)]
    id: Option<String>,
    success: bool,
    #[serde(default)]
    created: Option<bool>,
    #[serde(default)]
    errors: Option<Vec<RecordError>>,
}

impl From<WireRecordResult> for RecordResult {
    fn from(w: WireRecordResult) -> Self {
        RecordResult {
            id: w.id,
            success: w.success,
            created: w.created,
            errors: w.errors.unwrap_or_default(),
        }
    }
}

/// A collections answer: one result per input record, in input order.
pub(crate) fn parse_record_results(
    body: &[u8],
    expected: usize,
) -> Result<Vec<RecordResult>, String> {
    let wire: Vec<WireRecordResult> = serde_json::from_slice(body)
        .map_err(|e| format!("not an array of record results ({e})"))?;
    if wire.len() != expected {
        return Err(format!("{} results for {} records", wire.len(), expected));
    }
    Ok(wire.into_iter().map(RecordResult::from).collect())
}

/// A single-record create answer `{id, success, errors}`.
pub(crate) fn parse_record_result(body: &[u8]) -> Result<RecordResult, String> {
    serde_json::from_slice::<WireRecordResult>(body)
        .map(RecordResult::from)
        .map_err(|e| format!("not a record result ({e})"))
}

pub(crate) fn parse_limits(body: &[u8]) -> Result<Limits, String> {
    let map: Map<String, Value> =
        serde_json::from_slice(body).map_err(|e| format!("not a limits object ({e})"))?;
    let mut all = std::collections::BTreeMap::new();
    for (name, value) in &map {
        let max = value.get("Max").and_then(Value::as_u64);
        let remaining = value.get("Remaining").and_then(Value::as_u64);
        if let (Some(max), Some(remaining)) = (max, remaining) {
            all.insert(name.clone(), Limit { max, remaining });
        }
    }
    Ok(Limits {
        daily_api_requests: all.get("DailyApiRequests").copied(),
        all,
    })
}

pub(crate) fn parse_deleted(body: &[u8]) -> Result<DeletedRecords, String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Row {
        id: String,
        deleted_date: String,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Wire {
        #[serde(default)]
        deleted_records: Vec<Row>,
        #[serde(default)]
        earliest_date_available: Option<String>,
        #[serde(default)]
        latest_date_covered: Option<String>,
    }
    let wire: Wire =
        serde_json::from_slice(body).map_err(|e| format!("not a getDeleted result ({e})"))?;
    let date = |s: &str| parse_datetime(s).ok_or_else(|| format!("bad datetime {s:?}"));
    let mut deleted = Vec::with_capacity(wire.deleted_records.len());
    for row in wire.deleted_records {
        let when = date(&row.deleted_date)?;
        deleted.push((row.id, when));
    }
    Ok(DeletedRecords {
        deleted,
        earliest_date_available: wire
            .earliest_date_available
            .as_deref()
            .map(date)
            .transpose()?,
        latest_date_covered: wire.latest_date_covered.as_deref().map(date).transpose()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_info_forms() {
        assert_eq!(
            parse_limit_info("api-usage=18/5000"),
            Some(ApiUsage {
                used: 18,
                max: 5000
            })
        );
        assert_eq!(
            parse_limit_info(
                "api-usage=25/5000; per-app-api-usage=17/250(appName=sample-connected-app)"
            ),
            Some(ApiUsage {
                used: 25,
                max: 5000
            })
        );
        assert_eq!(
            parse_limit_info("per-app-api-usage=17/250(appName=x); api-usage=10018/100000"),
            Some(ApiUsage {
                used: 10018,
                max: 100000
            })
        );
        assert_eq!(
            parse_limit_info("api-usage=10018/100000; api-bursts=1/750"),
            Some(ApiUsage {
                used: 10018,
                max: 100000
            })
        );
        assert_eq!(
            parse_limit_info("per-app-api-usage=17/250(appName=x)"),
            None
        );
        assert_eq!(parse_limit_info("api-usage=abc/100"), None);
        assert_eq!(parse_limit_info(""), None);
    }

    #[test]
    fn datetimes_in_every_form() {
        let want = chrono::TimeZone::with_ymd_and_hms(&Utc, 2013, 5, 7, 22, 7, 19).unwrap();
        assert_eq!(parse_datetime("2013-05-07T22:07:19.000+0000"), Some(want));
        assert_eq!(parse_datetime("2013-05-07T22:07:19Z"), Some(want));
        assert_eq!(parse_datetime("2013-05-08T00:07:19.000+02:00"), Some(want));
        assert_eq!(parse_datetime("2013-05-07"), None);
    }

    #[test]
    fn strips_attributes_in_parents_and_subqueries() {
        let body = br#"{"totalSize":1,"done":true,"records":[{"attributes":{"type":"Account"},"Name":"A",
            "Owner":{"attributes":{"type":"User"},"Name":"U","Manager":{"attributes":{"type":"User"},"Name":"M"}},
            "Parent":null,
            "Contacts":{"totalSize":1,"done":true,"records":[{"attributes":{"type":"Contact"},"LastName":"L"}]}}]}"#;
        let page = parse_query_page(body).unwrap();
        let text = serde_json::to_string(&page.records).unwrap();
        assert!(!text.contains("attributes"), "{text}");
        assert_eq!(page.records[0]["Owner"]["Manager"]["Name"], "M");
        assert_eq!(page.records[0]["Parent"], Value::Null);
    }

    #[test]
    fn error_array_with_null_fields_and_quota() {
        let e = api_error(
            "q",
            400,
            br#"[{"message":"m","errorCode":"INVALID_FIELD","fields":null}]"#,
        );
        assert!(matches!(e, CrmError::Api { ref error_code, .. } if error_code == "INVALID_FIELD"));
        let e = api_error("q", 403, br#"[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]"#);
        assert!(matches!(e, CrmError::QuotaExceeded { .. }));
        let e = api_error(
            "q",
            403,
            br#"[{"message":"ConcurrentPerOrgLongTxn Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]"#,
        );
        assert!(
            matches!(e, CrmError::Api { .. }) && e.is_retryable(),
            "{e:?}"
        );
        assert!(api_error("q", 406, b"").is_retryable());
        let e = api_error("q", 503, b"");
        assert!(e.is_retryable());
        let e = api_error("q", 502, b"<html>bad gateway</html>");
        assert!(matches!(e, CrmError::Decode { .. }) && e.is_retryable());
    }
}
