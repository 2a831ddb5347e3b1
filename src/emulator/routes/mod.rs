//! The data routes under `/services/data/vXX.X/`: query and paging, sObject CRUD and upsert,
//! sObject Collections, composite, Bulk API 2.0 query and ingest jobs, getUpdated/getDeleted,
//! describe and limits. Each handler runs after the gate in `server` has checked the version,
//! the session, the daily limit and the faults.

pub(super) mod collections;
mod composite;
mod meta;
mod query;
mod records;

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, patch, post, put};
use axum::Router;
use serde_json::{Map, Value};

use super::org::RecordError;
use super::server::Shared;
use super::{bulk, ingest};

/// Every route of the data API, with full paths.
pub(crate) fn data_routes() -> Router<Arc<Shared>> {
    const V: &str = "/services/data/{version}";
    let r = |path: &str| format!("{V}{path}");
    Router::new()
        .route(&r("/limits"), get(meta::limits))
        .route(&r("/limits/"), get(meta::limits))
        .route(&r("/query"), get(query::query::<false>))
        .route(&r("/query/"), get(query::query::<false>))
        .route(&r("/queryAll"), get(query::query::<true>))
        .route(&r("/queryAll/"), get(query::query::<true>))
        .route(&r("/query/{locator}"), get(query::more))
        .route(&r("/queryAll/{locator}"), get(query::more))
        .route(&r("/sobjects"), get(meta::sobjects))
        .route(&r("/sobjects/"), get(meta::sobjects))
        .route(&r("/sobjects/{object}"), post(records::create))
        .route(&r("/sobjects/{object}/"), post(records::create))
        .route(&r("/sobjects/{object}/describe"), get(meta::describe))
        .route(&r("/sobjects/{object}/describe/"), get(meta::describe))
        .route(&r("/sobjects/{object}/updated"), get(meta::updated))
        .route(&r("/sobjects/{object}/updated/"), get(meta::updated))
        .route(&r("/sobjects/{object}/deleted"), get(meta::deleted))
        .route(&r("/sobjects/{object}/deleted/"), get(meta::deleted))
        .route(
            &r("/sobjects/{object}/{id}"),
            get(records::read)
                .patch(records::update)
                .delete(records::delete),
        )
        .route(
            &r("/sobjects/{object}/{field}/{value}"),
            patch(records::upsert),
        )
        .route(
            &r("/composite/sobjects"),
            post(collections::create)
                .patch(collections::update)
                .delete(collections::delete),
        )
        .route(
            &r("/composite"),
            post(composite::composite).get(composite::resources),
        )
        .route(
            &r("/composite/"),
            post(composite::composite).get(composite::resources),
        )
        .route(
            &r("/composite/sobjects/{object}/{field}"),
            patch(collections::upsert),
        )
        .route(&r("/jobs/query"), post(bulk::create).get(bulk::list))
        .route(
            &r("/jobs/query/{id}"),
            get(bulk::info).patch(bulk::abort).delete(bulk::delete),
        )
        .route(&r("/jobs/query/{id}/results"), get(bulk::results))
        .route(&r("/jobs/ingest"), post(ingest::create).get(ingest::list))
        .route(&r("/jobs/ingest/"), post(ingest::create).get(ingest::list))
        .route(
            &r("/jobs/ingest/{id}"),
            get(ingest::info)
                .patch(ingest::set_state)
                .delete(ingest::delete),
        )
        .route(&r("/jobs/ingest/{id}/batches"), put(ingest::upload))
        .route(&r("/jobs/ingest/{id}/batches/"), put(ingest::upload))
        // The result files (`successfulResults`, `failedResults`, `unprocessedrecords`).
        .route(&r("/jobs/ingest/{id}/{file}"), get(ingest::result_file))
        .route(&r("/jobs/ingest/{id}/{file}/"), get(ingest::result_file))
        .route(V, get(meta::resources))
        .route(&r("/"), get(meta::resources))
        // Anything else under a version still passes the session gate and is counted, and
        // answers the CRM's NOT_FOUND array.
        .route(&r("/{*rest}"), any(not_found))
}

async fn not_found() -> super::wire::ApiError {
    super::wire::ApiError::not_found()
}

/// A JSON object body, or why it is not one.
fn parse_object(body: &[u8]) -> Result<Map<String, Value>, super::wire::ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(super::wire::ApiError::bad_json(
            "Expected a JSON object as the request body",
        )),
        Err(err) => Err(super::wire::ApiError::bad_json(&format!(
            "Unexpected character in the request body: {err}"
        ))),
    }
}

/// A per-record error object `{statusCode, message, fields}`.
fn record_error_json(err: &RecordError) -> Value {
    serde_json::json!({
        "statusCode": err.status_code,
        "message": err.message,
        "fields": err.fields,
    })
}

/// The first value of the query-string parameter `name` in `raw`, decoded.
fn query_param(raw: Option<&str>, name: &str) -> Option<String> {
    let raw = raw?;
    url::form_urlencoded::parse(raw.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// 200 with the JSON body, or the error.
fn json_or_error(result: Result<Value, super::wire::ApiError>) -> Response {
    match result {
        Ok(body) => super::wire::json_response(StatusCode::OK, &body),
        Err(err) => err.into_response(),
    }
}

/// 204 without a body, or the error.
fn no_content_or_error(result: Result<(), super::wire::ApiError>) -> Response {
    match result {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(err) => err.into_response(),
    }
}
