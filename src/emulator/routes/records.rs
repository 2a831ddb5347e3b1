//! Single-record routes: create, read, update, delete, and upsert by external Id.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use chrono::Utc;
use serde_json::{json, Map, Value};

use super::{json_or_error, no_content_or_error, parse_object, query_param};
use crate::emulator::org::{Org, RecordError, UpsertError, UpsertOutcome};
use crate::emulator::server::{ApiVersion, Shared};
use crate::emulator::soql::Record;
use crate::emulator::wire::{json_response, ApiError};
use crate::metadata::{id, ObjectDef};

/// The object named in the URL, or 404 `NOT_FOUND`.
pub(super) fn object_def<'a>(org: &'a Org, name: &str) -> Result<&'a ObjectDef, ApiError> {
    org.catalog().object(name).ok_or_else(ApiError::not_found)
}

/// The 18-character form of a record Id in the URL: 400 `MALFORMED_ID` when it is not an Id,
/// 404 `NOT_FOUND` when it belongs to another object.
pub(super) fn url_id(def: &ObjectDef, raw: &str) -> Result<String, ApiError> {
    let Ok(id18) = id::to18(raw) else {
        let label = if def.custom {
            "Record"
        } else {
            def.label.as_str()
        };
        return Err(ApiError::with_fields(
            StatusCode::BAD_REQUEST,
            "MALFORMED_ID",
            &format!("{label} ID: id value of incorrect type: {raw}"),
            &["Id".to_string()],
        ));
    };
    if id::key_prefix(&id18) != Some(def.key_prefix.as_str()) {
        return Err(ApiError {
            status: StatusCode::NOT_FOUND,
            body: json!([{
                "errorCode": "NOT_FOUND",
                "message": format!("Provided external ID field does not exist or is not accessible: {raw}"),
            }]),
        });
    }
    Ok(id18)
}

/// A record write error as a request-level error: 404 for deleted or missing records,
/// 400 otherwise; `fields` only when the CRM sends it.
pub(super) fn single_error(err: RecordError) -> ApiError {
    let status = match err.status_code.as_str() {
        "ENTITY_IS_DELETED" | "NOT_FOUND" => StatusCode::NOT_FOUND,
        _ => StatusCode::BAD_REQUEST,
    };
    let body = if err.fields.is_empty() && err.status_code != "ENTITY_IS_DELETED" {
        json!([{"message": err.message, "errorCode": err.status_code}])
    } else {
        json!([{"message": err.message, "errorCode": err.status_code, "fields": err.fields}])
    };
    ApiError { status, body }
}

/// The fields of a write body, without `attributes` and the Id (refused on create).
pub(super) fn write_fields(body: &Map<String, Value>) -> Map<String, Value> {
    body.iter()
        .filter(|(k, _)| *k != "attributes" && !k.eq_ignore_ascii_case("id"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn is_deleted(record: &Record) -> bool {
    record.get("IsDeleted") == Some(&Value::Bool(true))
}

/// Whether the record `id18` of `def` can be written: 404 `NOT_FOUND` when there is none,
/// 404 `ENTITY_IS_DELETED` when it is deleted.
fn live(org: &Org, def: &ObjectDef, id18: &str) -> Result<(), ApiError> {
    match org.get(&def.name, id18) {
        None => Err(ApiError::not_found()),
        Some(r) if is_deleted(r) => Err(single_error(RecordError::entity_is_deleted(vec![]))),
        Some(_) => Ok(()),
    }
}

/// `POST sobjects/{object}/`: 201 `{"id", "success", "errors"}`.
pub(super) async fn create(
    State(shared): State<Arc<Shared>>,
    Path((_version, object)): Path<(String, String)>,
    Extension(version): Extension<ApiVersion>,
    body: Bytes,
) -> Response {
    let mut org = shared.write_org();
    let def = match object_def(&org, &object) {
        Ok(def) => def.clone(),
        Err(err) => return err.into_response(),
    };
    let body = match parse_object(&body) {
        Ok(body) => body,
        Err(err) => return err.into_response(),
    };
    if body.keys().any(|k| k.eq_ignore_ascii_case("id")) {
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            "INVALID_FIELD",
            "The Id field should not be specified in the sobject data.",
        )
        .into_response();
    }
    match org.create(&def.name, &write_fields(&body), Utc::now()) {
        Ok(new_id) => {
            let mut response = json_response(
                StatusCode::CREATED,
                &json!({"id": new_id, "success": true, "errors": []}),
            );
            let location = format!(
                "/services/data/v{}/sobjects/{}/{new_id}",
                version.0, def.name
            );
            if let Ok(value) = HeaderValue::from_str(&location) {
                response.headers_mut().insert(header::LOCATION, value);
            }
            response
        }
        Err(err) => single_error(err).into_response(),
    }
}

/// `GET sobjects/{object}/{id}[?fields=A,B]`.
pub(super) async fn read(
    State(shared): State<Arc<Shared>>,
    Path((_version, object, raw_id)): Path<(String, String, String)>,
    Extension(version): Extension<ApiVersion>,
    RawQuery(raw): RawQuery,
) -> Response {
    let org = shared.read_org();
    let result = (|| {
        let def = object_def(&org, &object)?;
        let id18 = url_id(def, &raw_id)?;
        let record = org
            .get(&def.name, &id18)
            .filter(|r| !is_deleted(r))
            .ok_or_else(ApiError::not_found)?;
        let wanted = query_param(raw.as_deref(), "fields");
        let mut out = Map::new();
        out.insert(
            "attributes".into(),
            json!({"type": def.name, "url": format!("/services/data/v{}/sobjects/{}/{id18}", version.0, def.name)}),
        );
        match wanted {
            Some(list) => {
                for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                    let field = def.field(name).ok_or_else(|| {
                        ApiError::new(
                            StatusCode::BAD_REQUEST,
                            "INVALID_FIELD",
                            &format!(
                                "No such column '{name}' on entity '{}'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.",
                                def.name
                            ),
                        )
                    })?;
                    out.insert(
                        field.name.clone(),
                        record.get(&field.name).cloned().unwrap_or(Value::Null),
                    );
                }
            }
            None => {
                for field in def.fields.values() {
                    out.insert(
                        field.name.clone(),
                        record.get(&field.name).cloned().unwrap_or(Value::Null),
                    );
                }
            }
        }
        Ok::<Value, ApiError>(Value::Object(out))
    })();
    json_or_error(result)
}

/// `PATCH sobjects/{object}/{id}`: 204.
pub(super) async fn update(
    State(shared): State<Arc<Shared>>,
    Path((_version, object, raw_id)): Path<(String, String, String)>,
    body: Bytes,
) -> Response {
    let mut org = shared.write_org();
    let result = (|| {
        let def = object_def(&org, &object)?.clone();
        let id18 = url_id(&def, &raw_id)?;
        let body = parse_object(&body)?;
        live(&org, &def, &id18)?;
        org.update(&def.name, &id18, &write_fields(&body), Utc::now())
            .map_err(single_error)
    })();
    no_content_or_error(result)
}

/// `DELETE sobjects/{object}/{id}`: 204; 404 `ENTITY_IS_DELETED` the second time.
pub(super) async fn delete(
    State(shared): State<Arc<Shared>>,
    Path((_version, object, raw_id)): Path<(String, String, String)>,
) -> Response {
    let mut org = shared.write_org();
    let result = (|| {
        let def = object_def(&org, &object)?.clone();
        let id18 = url_id(&def, &raw_id)?;
        live(&org, &def, &id18)?;
        org.delete(Some(&def.name), &id18, Utc::now())
            .map_err(single_error)
    })();
    no_content_or_error(result)
}

/// The outcome of one upsert.
pub(super) enum Upserted {
    Created(String),
    Updated(String),
    /// The external Id matched several records: their Ids.
    Ambiguous(Vec<String>),
}

/// Upserts `fields` into `object`, matching `field == value` among live records.
pub(super) fn upsert_one(
    org: &mut Org,
    def: &ObjectDef,
    field: &str,
    value: &str,
    fields: &Map<String, Value>,
) -> Result<Upserted, RecordError> {
    match org.upsert(&def.name, field, value, fields, Utc::now()) {
        Ok(UpsertOutcome { id, created: true }) => Ok(Upserted::Created(id)),
        Ok(UpsertOutcome { id, created: false }) => Ok(Upserted::Updated(id)),
        Err(UpsertError::MultipleMatches(ids)) => Ok(Upserted::Ambiguous(ids)),
        Err(UpsertError::Record(err)) => Err(err),
    }
}

/// The external Id field named in an upsert URL, or 404 `NOT_FOUND`.
pub(super) fn external_field(def: &ObjectDef, name: &str) -> Result<String, ApiError> {
    match def.field(name) {
        Some(f) if f.external_id || f.name == "Id" => Ok(f.name.clone()),
        _ => Err(ApiError {
            status: StatusCode::NOT_FOUND,
            body: json!([{
                "errorCode": "NOT_FOUND",
                "message": format!("Provided external ID field does not exist or is not accessible: {name}"),
            }]),
        }),
    }
}

/// `PATCH sobjects/{object}/{field}/{value}`: 201 created, 200 updated, 300 ambiguous.
pub(super) async fn upsert(
    State(shared): State<Arc<Shared>>,
    Path((_version, object, field, value)): Path<(String, String, String, String)>,
    Extension(version): Extension<ApiVersion>,
    body: Bytes,
) -> Response {
    let mut org = shared.write_org();
    let result = (|| {
        let def = object_def(&org, &object)?.clone();
        let field = external_field(&def, &field)?;
        let body = parse_object(&body)?;
        let outcome = upsert_one(&mut org, &def, &field, &value, &write_fields(&body))
            .map_err(single_error)?;
        Ok::<_, ApiError>((def, outcome))
    })();
    match result {
        Ok((_, Upserted::Created(id))) => json_response(
            StatusCode::CREATED,
            &json!({"id": id, "success": true, "errors": [], "created": true}),
        ),
        Ok((_, Upserted::Updated(id))) => json_response(
            StatusCode::OK,
            &json!({"id": id, "success": true, "errors": [], "created": false}),
        ),
        Ok((def, Upserted::Ambiguous(ids))) => {
            let urls: Vec<String> = ids
                .iter()
                .map(|id| format!("/services/data/v{}/sobjects/{}/{id}", version.0, def.name))
                .collect();
            json_response(StatusCode::MULTIPLE_CHOICES, &json!(urls))
        }
        Err(err) => err.into_response(),
    }
}
