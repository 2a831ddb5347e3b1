//! Metadata and replication routes: the object list, describe, limits, getUpdated and
//! getDeleted.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use chrono::{DateTime, Duration, DurationRound, Utc};
use serde_json::{json, Map, Value};

use super::records::object_def;
use super::{json_or_error, query_param};
use crate::emulator::server::{ApiVersion, Shared};
use crate::emulator::wire::{json_response, ApiError};
use crate::metadata::{FieldDef, FieldType, ObjectDef};

/// Days of history getUpdated serves.
const UPDATED_WINDOW_DAYS: i64 = 30;
/// Days of history getDeleted serves.
const DELETED_WINDOW_DAYS: i64 = 15;
/// Most Ids a getUpdated/getDeleted answer may carry.
const MAX_REPLICATION_IDS: usize = 600_000;

/// `GET limits`.
pub(super) async fn limits(State(shared): State<Arc<Shared>>) -> Response {
    json_response(StatusCode::OK, &shared.usage.limits_body())
}

fn urls(def: &ObjectDef, version: &str) -> Value {
    let base = format!("/services/data/v{version}/sobjects/{}", def.name);
    json!({
        "sobject": base,
        "describe": format!("{base}/describe"),
        "rowTemplate": format!("{base}/{{ID}}"),
    })
}

/// The properties the object list and describe give of an object, then `rest`.
fn object_json<const N: usize>(def: &ObjectDef, rest: [(&str, Value); N]) -> Value {
    let mut object = Map::new();
    let properties = [
        ("name", json!(def.name)),
        ("label", json!(def.label)),
        ("labelPlural", json!(def.label_plural)),
        ("keyPrefix", json!(def.key_prefix)),
        ("custom", json!(def.custom)),
        ("createable", json!(def.createable)),
        ("updateable", json!(def.updateable)),
        ("deletable", json!(def.deletable)),
        ("queryable", json!(def.queryable)),
        ("replicateable", json!(true)),
    ];
    for (key, value) in properties.into_iter().chain(rest) {
        object.insert(key.to_string(), value);
    }
    Value::Object(object)
}

/// `GET sobjects`: the object list.
pub(super) async fn sobjects(
    State(shared): State<Arc<Shared>>,
    Extension(version): Extension<ApiVersion>,
) -> Response {
    let org = shared.read_org();
    let list: Vec<Value> = org
        .catalog()
        .objects()
        .map(|def| object_json(def, [("urls", urls(def, &version.0))]))
        .collect();
    json_response(
        StatusCode::OK,
        &json!({"encoding": "UTF-8", "maxBatchSize": 200, "sobjects": list}),
    )
}

fn field_json(f: &FieldDef) -> Value {
    json!({
        "name": f.name,
        "label": f.label,
        "type": f.field_type.as_str(),
        "length": f.length,
        "precision": f.precision,
        // Integer fields state their size in digits, as a real org's describe does.
        "digits": if f.field_type == FieldType::Int { f.precision } else { 0 },
        "scale": f.scale,
        "nillable": f.nillable,
        "createable": f.createable,
        "updateable": f.updateable,
        "defaultedOnCreate": f.defaulted_on_create,
        "externalId": f.external_id,
        "unique": f.unique,
        "calculated": f.calculated,
        "custom": f.custom,
        "referenceTo": f.reference_to,
        "relationshipName": f.relationship_name,
        "picklistValues": f.picklist_values.iter().map(|p| json!({
            "value": p.value,
            "label": p.label,
            "active": p.active,
            "defaultValue": p.default,
            "validFor": null,
        })).collect::<Vec<_>>(),
        "restrictedPicklist": f.restricted_picklist,
    })
}

/// `GET sobjects/{object}/describe`.
pub(super) async fn describe(
    State(shared): State<Arc<Shared>>,
    Extension(version): Extension<ApiVersion>,
    Path((_version, object)): Path<(String, String)>,
) -> Response {
    let org = shared.read_org();
    let def = match object_def(&org, &object) {
        Ok(def) => def,
        Err(err) => return err.into_response(),
    };
    let fields: Vec<Value> = def.fields.values().map(field_json).collect();
    let body = object_json(
        def,
        [
            ("fields", Value::from(fields)),
            ("urls", urls(def, &version.0)),
        ],
    );
    json_response(StatusCode::OK, &body)
}

/// A replication window `[start, end)`, truncated to the minute.
struct Window {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
}

fn replication_error(message: &str) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "INVALID_REPLICATION_DATE", message)
}

fn parse_instant(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .or_else(|_| DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The `start`/`end` window of getUpdated (`max_age_days`: a start further back is refused)
/// or getDeleted (`None`: any start; the answer's earliestDateAvailable tells the client how
/// far back the log really goes).
fn window(
    raw: Option<&str>,
    max_age_days: Option<i64>,
    now: DateTime<Utc>,
) -> Result<Window, ApiError> {
    let get = |name: &str| -> Result<DateTime<Utc>, ApiError> {
        let text = query_param(raw, name).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "MISSING_ARGUMENT",
                &format!("The '{name}' parameter is required"),
            )
        })?;
        let at = parse_instant(&text).ok_or_else(|| {
            replication_error(&format!("{name} is not a valid date-time: {text}"))
        })?;
        Ok(at.duration_trunc(Duration::minutes(1)).unwrap_or(at))
    };
    let (start, end) = (get("start")?, get("end")?);
    if start >= end {
        return Err(replication_error("start date must be before end date"));
    }
    if let Some(days) = max_age_days.filter(|days| start < now - Duration::days(*days)) {
        return Err(replication_error(&format!(
            "start date cannot be more than {days} days ago"
        )));
    }
    Ok(Window { start, end })
}

fn wire_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string()
}

/// Records of `object` whose SystemModstamp falls in the window: `(id, stamp, deleted)`.
fn changed(shared: &Shared, object: &str, window: &Window) -> Vec<(String, DateTime<Utc>, bool)> {
    let org = shared.read_org();
    org.records(object)
        .filter_map(|r| {
            let stamp = r
                .get("SystemModstamp")
                .and_then(Value::as_str)
                .and_then(parse_instant)?;
            let id = r.get("Id").and_then(Value::as_str)?.to_string();
            let deleted = r.get("IsDeleted") == Some(&Value::Bool(true));
            (window.start <= stamp && stamp < window.end).then_some((id, stamp, deleted))
        })
        .collect()
}

fn latest_covered(window: &Window, now: DateTime<Utc>) -> DateTime<Utc> {
    let now = now.duration_trunc(Duration::minutes(1)).unwrap_or(now);
    window.end.min(now)
}

fn too_many_ids() -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "EXCEEDED_ID_LIMIT",
        "too many ids: narrow the start and end dates",
    )
}

/// A getUpdated or getDeleted answer before it is rendered.
struct Replicated {
    window: Window,
    /// `(Id, SystemModstamp)` of each record.
    records: Vec<(String, DateTime<Utc>)>,
}

/// What getUpdated (`deleted` false) or getDeleted (`deleted` true) answers for `object` and
/// the window in the query string: the window and the `(id, SystemModstamp)` of the live or
/// deleted records changed in it, at most [`MAX_REPLICATION_IDS`].
fn replicated(
    shared: &Shared,
    object: &str,
    raw: Option<&str>,
    max_age_days: Option<i64>,
    deleted: bool,
    now: DateTime<Utc>,
) -> Result<Replicated, ApiError> {
    let name = object_def(&shared.read_org(), object)?.name.clone();
    let window = window(raw, max_age_days, now)?;
    let records: Vec<(String, DateTime<Utc>)> = changed(shared, &name, &window)
        .into_iter()
        .filter(|(_, _, is_deleted)| *is_deleted == deleted)
        .map(|(id, stamp, _)| (id, stamp))
        .collect();
    if records.len() > MAX_REPLICATION_IDS {
        return Err(too_many_ids());
    }
    Ok(Replicated { window, records })
}

/// `GET sobjects/{object}/updated/?start=&end=`.
pub(super) async fn updated(
    State(shared): State<Arc<Shared>>,
    Path((_version, object)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Response {
    let now = Utc::now();
    let answer = replicated(
        &shared,
        &object,
        raw.as_deref(),
        Some(UPDATED_WINDOW_DAYS),
        false,
        now,
    );
    json_or_error(answer.map(|Replicated { window, records }| {
        let ids: Vec<String> = records.into_iter().map(|(id, _)| id).collect();
        json!({"ids": ids, "latestDateCovered": wire_time(latest_covered(&window, now))})
    }))
}

/// `GET /services/data/vXX.X`: the resources of the version (those the emulator serves).
pub(super) async fn resources(Extension(version): Extension<ApiVersion>) -> Response {
    let v = format!("/services/data/v{}", version.0);
    json_response(
        StatusCode::OK,
        &json!({
            "limits": format!("{v}/limits"),
            "query": format!("{v}/query"),
            "queryAll": format!("{v}/queryAll"),
            "sobjects": format!("{v}/sobjects"),
        }),
    )
}

/// `GET sobjects/{object}/deleted/?start=&end=`.
pub(super) async fn deleted(
    State(shared): State<Arc<Shared>>,
    Path((_version, object)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Response {
    let now = Utc::now();
    let answer = replicated(&shared, &object, raw.as_deref(), None, true, now);
    json_or_error(answer.map(|Replicated { window, records }| {
        let records: Vec<Value> = records
            .into_iter()
            .map(|(id, stamp)| json!({"id": id, "deletedDate": wire_time(stamp)}))
            .collect();
        let earliest = now - Duration::days(DELETED_WINDOW_DAYS);
        let earliest = earliest
            .duration_trunc(Duration::minutes(1))
            .unwrap_or(earliest);
        json!({
            "deletedRecords": records,
            "earliestDateAvailable": wire_time(earliest),
            "latestDateCovered": wire_time(latest_covered(&window, now)),
        })
    }))
}
