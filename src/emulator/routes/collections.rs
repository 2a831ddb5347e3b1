//! sObject Collections: create, update, upsert and delete up to 200 records in one request,
//! with per-record results in input order and `allOrNone` rollback.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use super::records::{external_field, upsert_one, write_fields, Upserted};
use super::{parse_object, query_param, record_error_json};
use crate::emulator::org::{Org, RecordError};
use crate::emulator::server::{Faults, Shared};
use crate::emulator::wire::{json_response, ApiError};
use crate::metadata::{id, ObjectDef};

/// Most records one collections request may carry.
pub const MAX_RECORDS: usize = 200;

fn too_many() -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "EXCEEDED_ID_LIMIT",
        "record limit reached. cannot submit more than 200 records into this call",
    )
}

/// One record's outcome.
struct Outcome {
    id: Option<String>,
    created: Option<bool>,
    error: Option<RecordError>,
}

impl Outcome {
    fn ok(id: String, created: Option<bool>) -> Outcome {
        Outcome {
            id: Some(id),
            created,
            error: None,
        }
    }
    fn failed(id: Option<String>, created: Option<bool>, error: RecordError) -> Outcome {
        Outcome {
            id,
            created,
            error: Some(error),
        }
    }
}

fn locked() -> RecordError {
    RecordError::new(
        "UNABLE_TO_LOCK_ROW",
        "unable to obtain exclusive access to this record",
        vec![],
    )
}

fn rolled_back() -> Value {
    json!({
        "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
        "message": "Record rolled back because not all records were valid and the request was using AllOrNone header",
        "fields": [],
    })
}

/// The request body `{allOrNone, records}`.
fn envelope(body: &[u8]) -> Result<(bool, Vec<Map<String, Value>>), ApiError> {
    let body = parse_object(body)?;
    let all_or_none = body
        .get("allOrNone")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let records = match body.get("records") {
        Some(Value::Array(items)) => items,
        _ => return Err(ApiError::bad_json("The request body needs a records array")),
    };
    if records.len() > MAX_RECORDS {
        return Err(too_many());
    }
    let records = records
        .iter()
        .map(|r| {
            r.as_object()
                .cloned()
                .ok_or_else(|| ApiError::bad_json("Each record must be a JSON object"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((all_or_none, records))
}

fn record_type(record: &Map<String, Value>) -> Option<&str> {
    record.get("attributes")?.get("type")?.as_str()
}

fn unknown_type(name: &str) -> RecordError {
    RecordError::new(
        "INVALID_TYPE",
        format!("sObject type '{name}' is not supported."),
        vec![],
    )
}

fn missing_type() -> RecordError {
    RecordError::new("INVALID_TYPE", "Each record needs attributes.type.", vec![])
}

/// Applies `op` to each record in order, with row-lock faults and `allOrNone` rollback, and
/// renders the per-record results. `keep_ids`: failed rows still carry their `id` (update,
/// delete).
fn run(
    shared: &Shared,
    faults: &Faults,
    all_or_none: bool,
    keep_ids: bool,
    count: usize,
    mut op: impl FnMut(&mut Org, usize) -> Outcome,
) -> Response {
    let mut org = shared.write_org();
    let savepoint = org.savepoint();
    let mut outcomes = Vec::with_capacity(count);
    {
        let mut faults = faults.0.lock().unwrap_or_else(|e| e.into_inner());
        for index in 0..count {
            if faults.row_locked() {
                outcomes.push(Outcome::failed(None, None, locked()));
                continue;
            }
            outcomes.push(op(&mut org, index));
        }
    }
    let any_failed = outcomes.iter().any(|o| o.error.is_some());
    let rolled = all_or_none && any_failed;
    if rolled {
        org.rollback_to(savepoint);
    } else {
        org.release(savepoint);
    }
    let results: Vec<Value> = outcomes
        .into_iter()
        .map(|o| {
            let mut item = Map::new();
            match (&o.error, rolled) {
                (None, false) => {
                    if let Some(id) = &o.id {
                        item.insert("id".into(), json!(id));
                    }
                    item.insert("success".into(), json!(true));
                    item.insert("errors".into(), json!([]));
                }
                (error, _) => {
                    if let (Some(id), true) = (&o.id, keep_ids) {
                        item.insert("id".into(), json!(id));
                    }
                    item.insert("success".into(), json!(false));
                    let errors = match error {
                        Some(e) => vec![record_error_json(e)],
                        None => vec![rolled_back()],
                    };
                    item.insert("errors".into(), Value::Array(errors));
                }
            }
            if let Some(created) = o.created {
                item.insert("created".into(), json!(created || rolled));
            }
            Value::Object(item)
        })
        .collect();
    json_response(StatusCode::OK, &Value::Array(results))
}

/// Parses an `{allOrNone, records}` body and runs `op` on each record as [`run`] does.
fn run_records(
    shared: &Shared,
    faults: &Faults,
    body: &[u8],
    keep_ids: bool,
    mut op: impl FnMut(&mut Org, &Map<String, Value>) -> Outcome,
) -> Response {
    let (all_or_none, records) = match envelope(body) {
        Ok(e) => e,
        Err(err) => return err.into_response(),
    };
    run(
        shared,
        faults,
        all_or_none,
        keep_ids,
        records.len(),
        |org, i| op(org, &records[i]),
    )
}

/// Why an update or delete cannot write the record `id18` of `object`: there is none
/// (`INVALID_CROSS_REFERENCE_KEY`) or it is deleted (`ENTITY_IS_DELETED`).
fn not_writable(org: &Org, object: &str, id18: &str) -> Option<RecordError> {
    match org.get(object, id18) {
        None => Some(RecordError::new(
            "INVALID_CROSS_REFERENCE_KEY",
            "invalid cross reference id",
            vec![],
        )),
        Some(r) if r.get("IsDeleted") == Some(&Value::Bool(true)) => {
            Some(RecordError::entity_is_deleted(vec![]))
        }
        Some(_) => None,
    }
}

/// `POST composite/sobjects`.
pub(super) async fn create(
    State(shared): State<Arc<Shared>>,
    Extension(faults): Extension<Faults>,
    body: Bytes,
) -> Response {
    let now = Utc::now();
    run_records(&shared, &faults, &body, false, |org, record| {
        let Some(name) = record_type(record) else {
            return Outcome::failed(None, None, missing_type());
        };
        let Some(def) = org.catalog().object(name).map(|d| d.name.clone()) else {
            return Outcome::failed(None, None, unknown_type(name));
        };
        if record.keys().any(|k| k.eq_ignore_ascii_case("id")) {
            return Outcome::failed(
                None,
                None,
                RecordError::new(
                    "INVALID_FIELD",
                    "cannot specify Id in an insert call",
                    vec!["Id".into()],
                ),
            );
        }
        match org.create(&def, &write_fields(record), now) {
            Ok(id) => Outcome::ok(id, None),
            Err(e) => Outcome::failed(None, None, e),
        }
    })
}

/// `PATCH composite/sobjects`: records carry `attributes.type` and `id`.
pub(super) async fn update(
    State(shared): State<Arc<Shared>>,
    Extension(faults): Extension<Faults>,
    body: Bytes,
) -> Response {
    let now = Utc::now();
    run_records(&shared, &faults, &body, true, |org, record| {
        let raw_id = record
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("id"))
            .and_then(|(_, v)| v.as_str())
            .map(str::to_string);
        let Some(raw_id) = raw_id else {
            return Outcome::failed(
                None,
                None,
                RecordError::new(
                    "MISSING_ARGUMENT",
                    "Id not specified in an update call",
                    vec!["Id".into()],
                ),
            );
        };
        let Some(name) = record_type(record) else {
            return Outcome::failed(Some(raw_id), None, missing_type());
        };
        let Some(def) = org.catalog().object(name).cloned() else {
            return Outcome::failed(Some(raw_id), None, unknown_type(name));
        };
        match update_record(org, &def, &raw_id, &write_fields(record), now) {
            Ok(id18) => Outcome::ok(id18, None),
            Err((id, e)) => Outcome::failed(Some(id), None, e),
        }
    })
}

/// Updates the record `raw_id` of `def` with `fields` as one record of a Collections update
/// is updated: `MALFORMED_ID` when `raw_id` is not an Id of `def`, `INVALID_CROSS_REFERENCE_KEY`
/// or `ENTITY_IS_DELETED` when the record cannot be written, then the org's own rules. Gives
/// the 18-character Id, or the Id to report with the error (`raw_id` when it is not an Id).
/// Bulk API 2.0 ingest jobs apply their update rows through it too.
pub(crate) fn update_record(
    org: &mut Org,
    def: &ObjectDef,
    raw_id: &str,
    fields: &Map<String, Value>,
    now: DateTime<Utc>,
) -> Result<String, (String, RecordError)> {
    let id18 = match id::to18(raw_id) {
        Ok(id18) if id::key_prefix(&id18) == Some(def.key_prefix.as_str()) => id18,
        _ => {
            return Err((
                raw_id.to_string(),
                RecordError::new(
                    "MALFORMED_ID",
                    format!("{} ID: id value of incorrect type: {raw_id}", def.label),
                    vec!["Id".into()],
                ),
            ))
        }
    };
    if let Some(e) = not_writable(org, &def.name, &id18) {
        return Err((id18, e));
    }
    match org.update(&def.name, &id18, fields, now) {
        Ok(()) => Ok(id18),
        Err(e) => Err((id18, e)),
    }
}

/// Upserts `fields` into `def` by `field == value` as one record of a Collections upsert is
/// upserted: the record's Id and whether it was created, or the error
/// (`DUPLICATE_EXTERNAL_ID` when the value matches several records). Bulk API 2.0 ingest jobs
/// apply their upsert rows through it too.
pub(crate) fn upsert_record(
    org: &mut Org,
    def: &ObjectDef,
    field: &str,
    value: &str,
    fields: &Map<String, Value>,
) -> Result<(String, bool), RecordError> {
    match upsert_one(org, def, field, value, fields)? {
        Upserted::Created(id) => Ok((id, true)),
        Upserted::Updated(id) => Ok((id, false)),
        Upserted::Ambiguous(_) => Err(RecordError::new(
            "DUPLICATE_EXTERNAL_ID",
            format!("{field}: more than one record found for external id field"),
            vec![field.to_string()],
        )),
    }
}

/// `PATCH composite/sobjects/{object}/{field}`: results carry `created`.
pub(super) async fn upsert(
    State(shared): State<Arc<Shared>>,
    Extension(faults): Extension<Faults>,
    Path((_version, object, field)): Path<(String, String, String)>,
    body: Bytes,
) -> Response {
    let def = match shared.read_org().catalog().object(&object).cloned() {
        Some(def) => def,
        None => return ApiError::not_found().into_response(),
    };
    let field = match external_field(&def, &field) {
        Ok(f) => f,
        Err(err) => return err.into_response(),
    };
    run_records(&shared, &faults, &body, false, |org, record| {
        let value = match record.get(&field) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        let Some(value) = value else {
            return Outcome::failed(
                None,
                Some(false),
                RecordError::new(
                    "MISSING_ARGUMENT",
                    format!("{field} not specified"),
                    vec![field.clone()],
                ),
            );
        };
        match upsert_record(org, &def, &field, &value, &write_fields(record)) {
            Ok((id, created)) => Outcome::ok(id, Some(created)),
            Err(e) => Outcome::failed(None, Some(false), e),
        }
    })
}

/// `DELETE composite/sobjects?ids=a,b[&allOrNone=true]`.
pub(super) async fn delete(
    State(shared): State<Arc<Shared>>,
    Extension(faults): Extension<Faults>,
    RawQuery(raw): RawQuery,
) -> Response {
    let param = |name: &str| query_param(raw.as_deref(), name);
    let ids: Vec<String> = param("ids")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if ids.is_empty() {
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            "MISSING_ARGUMENT",
            "ids parameter is required",
        )
        .into_response();
    }
    if ids.len() > MAX_RECORDS {
        return too_many().into_response();
    }
    let all_or_none = param("allOrNone").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let now = Utc::now();
    run(&shared, &faults, all_or_none, true, ids.len(), |org, i| {
        let raw_id = &ids[i];
        let malformed =
            || RecordError::new("MALFORMED_ID", format!("malformed id {raw_id}"), vec![]);
        let Ok(id18) = id::to18(raw_id) else {
            return Outcome::failed(Some(raw_id.clone()), None, malformed());
        };
        let object = id::key_prefix(&id18)
            .and_then(|p| org.catalog().object_by_prefix(p))
            .map(|d| d.name.clone());
        let Some(object) = object else {
            return Outcome::failed(Some(id18), None, malformed());
        };
        if let Some(e) = not_writable(org, &object, &id18) {
            return Outcome::failed(Some(id18), None, e);
        }
        match org.delete(Some(&object), &id18, now) {
            Ok(()) => Outcome::ok(id18, None),
            Err(e) => Outcome::failed(Some(id18), None, e),
        }
    })
}
