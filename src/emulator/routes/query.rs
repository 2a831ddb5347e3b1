//! `GET query`, `GET queryAll` and their `nextRecordsUrl` pages.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;

use super::query_param;
use crate::emulator::faults::FaultKind;
use crate::emulator::query::{self as exec, InvalidLocator};
use crate::emulator::server::{ApiVersion, Faults, Shared};
use crate::emulator::wire::{json_response, ApiError};

/// `GET query` (`ALL_ROWS` false) and `GET queryAll` (`ALL_ROWS` true: deleted records too).
pub(super) async fn query<const ALL_ROWS: bool>(
    State(shared): State<Arc<Shared>>,
    Extension(version): Extension<ApiVersion>,
    Extension(faults): Extension<Faults>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    if let Some(timeout) = timed_out(&faults) {
        return timeout;
    }
    blocking(move || run(&shared, &version.0, &headers, raw.as_deref(), ALL_ROWS)).await
}

/// The `timeout` fault of the request: a plain query gets it from the gate; a query inside a
/// composite request gets it here (every query subrequest of that composite call times out).
fn timed_out(faults: &Faults) -> Option<Response> {
    let fault = faults.0.lock().unwrap_or_else(|e| e.into_inner()).fault;
    (fault == Some(FaultKind::Timeout)).then(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "QUERY_TIMEOUT",
            "Your query request was running for too long.",
        )
        .into_response()
    })
}

/// Runs a query off the async workers: a query scans and sorts its whole object (seconds for
/// a million rows) and must not stall the requests of other clients meanwhile.
async fn blocking(work: impl FnOnce() -> Response + Send + 'static) -> Response {
    match tokio::task::spawn_blocking(work).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "UNKNOWN_EXCEPTION",
            "An unexpected error occurred while running the query",
        )
        .into_response(),
    }
}

fn run(
    shared: &Shared,
    version: &str,
    headers: &HeaderMap,
    raw: Option<&str>,
    all: bool,
) -> Response {
    let Some(text) = query_param(raw, "q").filter(|t| !t.trim().is_empty()) else {
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            "MALFORMED_QUERY",
            "A query string has to be specified",
        )
        .into_response();
    };
    let batch = exec::batch_size(
        headers
            .get("sforce-query-options")
            .and_then(|v| v.to_str().ok()),
    );
    let org = shared.read_org();
    match exec::run(&org, &text, all, batch) {
        Ok(cursor) => {
            let body = exec::first_page(&org, &shared.locators, cursor, version);
            json_response(StatusCode::OK, &body)
        }
        Err(err) => {
            ApiError::new(StatusCode::BAD_REQUEST, err.error_code, &err.message).into_response()
        }
    }
}

/// `GET query/{locator}` and `GET queryAll/{locator}`.
pub(super) async fn more(
    State(shared): State<Arc<Shared>>,
    Extension(version): Extension<ApiVersion>,
    Path((_version, locator)): Path<(String, String)>,
) -> Response {
    blocking(move || {
        let org = shared.read_org();
        match exec::next_page(&org, &shared.locators, &locator, &version.0) {
            Ok(body) => json_response(StatusCode::OK, &body),
            Err(InvalidLocator) => ApiError::new(
                StatusCode::BAD_REQUEST,
                "INVALID_QUERY_LOCATOR",
                "invalid query locator",
            )
            .into_response(),
        }
    })
    .await
}
