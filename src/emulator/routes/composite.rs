//! `POST composite`: up to 25 subrequests in one call, run in order by the same routes as
//! the plain REST requests, with `@{referenceId.path}` references to earlier results and
//! `allOrNone` rollback. The whole request passes the gate once, so it counts as one API call.
//!
//! Rules (Salesforce REST API Developer Guide, "Composite", "Composite Request Body",
//! "Composite Response Body", "allOrNone Parameters in Composite and Collections Requests"):
//! - at most 25 subrequests, of which at most 5 are query operations (query, queryAll and
//!   their next-page requests) or sObject Collections requests;
//! - the top-level answer is HTTP 200 with `{"compositeResponse": [...]}`, one result per
//!   subrequest in order: `{body, httpHeaders, httpStatusCode, referenceId}`;
//! - `allOrNone: true`: when a subrequest fails every write is rolled back and every other
//!   subrequest reports 400 `PROCESSING_HALTED`; the flag also overrides the `allOrNone` of
//!   each Collections subrequest;
//! - `allOrNone: false`: a subrequest that refers to a failed one is not run (400
//!   `PROCESSING_HALTED`); the others run.
//!
//! The rollback of `allOrNone` uses an org savepoint taken before the first subrequest and
//! does not hold the org's lock in between: a write another client makes while such a request
//! runs is rolled back with it. A real org isolates the transaction; the emulator's tests and
//! demo do not write concurrently with an all-or-none composite request.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderName, HeaderValue, Method, Request, StatusCode};
use axum::response::Response;
use axum::{Extension, Router};
use serde_json::{json, Map, Value};
use tower::ServiceExt;

use super::parse_object;
use crate::emulator::server::{ApiVersion, Faults, Shared};
use crate::emulator::wire::{self, json_response, ApiError};

/// Most subrequests in one composite request.
pub const MAX_SUBREQUESTS: usize = 25;
/// Most query operations and sObject Collections subrequests in one composite request.
pub const MAX_QUERY_OR_COLLECTIONS: usize = 5;
/// Largest subrequest answer read back (a query page of 2,000 wide rows fits easily).
const MAX_SUBRESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// Headers a subrequest may not set: it inherits them from the composite request.
const INHERITED_HEADERS: &[&str] = &["accept", "authorization", "content-type"];

/// One parsed subrequest.
#[derive(Debug)]
struct Subrequest {
    method: Method,
    url: String,
    reference_id: String,
    body: Option<Value>,
    headers: Vec<(String, String)>,
}

/// The parsed composite request.
#[derive(Debug)]
struct Composite {
    all_or_none: bool,
    subrequests: Vec<Subrequest>,
}

fn invalid(message: &str) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "INVALID_INPUT", message)
}

/// A referenceId: letters, digits and `_`, starting with a letter.
fn valid_reference_id(id: &str) -> bool {
    id.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The resource of a data URL after `/services/data/vXX.X/`, without its query string.
fn resource_of(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("/services/data/")?;
    let (_, rest) = rest.split_once('/')?;
    Some(rest.split(['?', '#']).next().unwrap_or(rest))
}

/// Whether a subrequest counts toward the limit of 5: a query operation (query, queryAll,
/// a next page, including a page taken by reference to a `nextRecordsUrl`) or a Collections
/// request.
fn is_query_or_collections(url: &str) -> bool {
    let trimmed = url.trim();
    if trimmed.starts_with("@{") && trimmed.trim_end_matches('}').ends_with("nextRecordsUrl") {
        return true;
    }
    match resource_of(trimmed) {
        Some(resource) => {
            let first = resource.split('/').next().unwrap_or("");
            matches!(first, "query" | "queryAll") || resource.starts_with("composite/sobjects")
        }
        None => false,
    }
}

fn parse(body: &[u8]) -> Result<Composite, ApiError> {
    let body = parse_object(body)?;
    let flag = |name: &str| -> Result<bool, ApiError> {
        match body.get(name) {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(ApiError::bad_json(&format!("{name} must be a boolean"))),
        }
    };
    let all_or_none = flag("allOrNone")?;
    // collateSubrequests only lets the CRM group unrelated subrequests for speed; the answer
    // is the same either way.
    flag("collateSubrequests")?;
    let Some(Value::Array(items)) = body.get("compositeRequest") else {
        return Err(invalid("The request needs a compositeRequest array."));
    };
    if items.is_empty() {
        return Err(invalid("The compositeRequest array is empty."));
    }
    if items.len() > MAX_SUBREQUESTS {
        return Err(invalid(&format!(
            "A composite request can hold at most {MAX_SUBREQUESTS} subrequests; this one has {}.",
            items.len()
        )));
    }
    let mut subrequests = Vec::with_capacity(items.len());
    let mut seen = std::collections::HashSet::new();
    for (index, item) in items.iter().enumerate() {
        let Some(item) = item.as_object() else {
            return Err(ApiError::bad_json("Each subrequest must be a JSON object"));
        };
        let text = |name: &str| item.get(name).and_then(Value::as_str).map(str::to_string);
        let (Some(method), Some(url), Some(reference_id)) =
            (text("method"), text("url"), text("referenceId"))
        else {
            return Err(invalid(&format!(
                "Subrequest {index} needs method, url and referenceId."
            )));
        };
        let method = match method.to_ascii_uppercase().as_str() {
            "GET" => Method::GET,
            "POST" => Method::POST,
            "PATCH" => Method::PATCH,
            "PUT" => Method::PUT,
            "DELETE" => Method::DELETE,
            "HEAD" => Method::HEAD,
            _ => {
                return Err(invalid(&format!(
                    "Subrequest {reference_id}: unsupported method {method}."
                )))
            }
        };
        if !valid_reference_id(&reference_id) {
            return Err(invalid(&format!(
                "Invalid referenceId {reference_id:?}: use letters, digits and underscores, \
                 starting with a letter."
            )));
        }
        if !seen.insert(reference_id.clone()) {
            return Err(invalid(&format!(
                "Duplicate referenceId {reference_id:?}: each subrequest needs its own."
            )));
        }
        let mut headers = Vec::new();
        if let Some(map) = item.get("httpHeaders").and_then(Value::as_object) {
            for (name, value) in map {
                if INHERITED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                    return Err(invalid(&format!(
                        "Subrequest {reference_id} sets the {name} header, which subrequests \
                         inherit from the composite request."
                    )));
                }
                let value = match value {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                headers.push((name.clone(), value));
            }
        }
        subrequests.push(Subrequest {
            method,
            url,
            reference_id,
            body: item.get("body").cloned(),
            headers,
        });
    }
    let heavy = subrequests
        .iter()
        .filter(|s| is_query_or_collections(&s.url))
        .count();
    if heavy > MAX_QUERY_OR_COLLECTIONS {
        return Err(invalid(&format!(
            "A composite request can hold at most {MAX_QUERY_OR_COLLECTIONS} query operations \
             and sObject Collections subrequests; this one has {heavy}."
        )));
    }
    Ok(Composite {
        all_or_none,
        subrequests,
    })
}

/// Why a reference could not be resolved.
#[derive(Debug)]
struct Unresolved(String);

/// The value at `path` (`id`, `records[0].Id`, `nextRecordsUrl`, `compositeResponse.x`) in
/// an earlier result body.
fn lookup<'a>(body: &'a Value, path: &str) -> Option<&'a Value> {
    let mut current = body;
    for part in path.split('.') {
        let (name, indexes) = match part.find('[') {
            Some(at) => (&part[..at], &part[at..]),
            None => (part, ""),
        };
        if !name.is_empty() {
            current = current.get(name)?;
        }
        let mut rest = indexes;
        while let Some(open) = rest.strip_prefix('[') {
            let (index, after) = open.split_once(']')?;
            current = current.get(index.trim().parse::<usize>().ok()?)?;
            rest = after;
        }
    }
    Some(current)
}

/// Resolves one `@{ref.path}` expression.
fn resolve_one(
    expression: &str,
    results: &HashMap<String, Value>,
    failed: &std::collections::HashSet<String>,
) -> Result<Value, Unresolved> {
    let (reference, path) = expression.split_once('.').unwrap_or((expression, ""));
    if failed.contains(reference) {
        return Err(Unresolved(format!(
            "Invalid reference specified. No value for {expression} found in {reference}. \
             Provided referenceId ('{reference}') refers to a subrequest that failed."
        )));
    }
    let Some(body) = results.get(reference) else {
        return Err(Unresolved(format!(
            "Invalid reference specified. No value for {expression} found: there is no \
             earlier subrequest with referenceId '{reference}'."
        )));
    };
    match lookup(body, path) {
        Some(Value::Null) | None => Err(Unresolved(format!(
            "Invalid reference specified. No value for {expression} found in {reference}."
        ))),
        Some(value) => Ok(value.clone()),
    }
}

/// Replaces every `@{...}` in `text`; values are inserted as text.
fn resolve_text(
    text: &str,
    results: &HashMap<String, Value>,
    failed: &std::collections::HashSet<String>,
) -> Result<String, Unresolved> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("@{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        match resolve_one(&after[..end], results, failed)? {
            Value::String(s) => out.push_str(&s),
            other => out.push_str(&other.to_string()),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Resolves references inside a JSON body: a string that is one reference takes the
/// referenced value as it is (a number stays a number); other strings get text.
fn resolve_value(
    value: &Value,
    results: &HashMap<String, Value>,
    failed: &std::collections::HashSet<String>,
) -> Result<Value, Unresolved> {
    Ok(match value {
        Value::String(s) => {
            let trimmed = s.trim();
            if trimmed.starts_with("@{")
                && trimmed.ends_with('}')
                && trimmed[2..].find('}') == Some(trimmed.len() - 3)
            {
                resolve_one(&trimmed[2..trimmed.len() - 1], results, failed)?
            } else {
                Value::String(resolve_text(s, results, failed)?)
            }
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| resolve_value(v, results, failed))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                out.insert(k.clone(), resolve_value(v, results, failed)?);
            }
            Value::Object(out)
        }
        other => other.clone(),
    })
}

/// One subrequest result.
fn result(body: Value, headers: Map<String, Value>, status: u16, reference_id: &str) -> Value {
    json!({
        "body": body,
        "httpHeaders": headers,
        "httpStatusCode": status,
        "referenceId": reference_id,
    })
}

fn halted(message: &str, reference_id: &str) -> Value {
    result(
        json!([{"errorCode": "PROCESSING_HALTED", "message": message}]),
        Map::new(),
        400,
        reference_id,
    )
}

const ROLLED_BACK: &str =
    "The transaction was rolled back since another operation in the same transaction failed.";

/// Runs one resolved subrequest through the data routes, without the gate (the composite
/// request was counted once).
async fn dispatch(
    router: &Router,
    sub: &Subrequest,
    url: &str,
    body: Option<Value>,
    faults: &Faults,
) -> (u16, Map<String, Value>, Value) {
    let not_found = || {
        let e = ApiError::not_found();
        (e.status.as_u16(), Map::new(), e.body)
    };
    // The URL as a client would send it: spaces and quotes percent-encoded.
    let Ok(parsed) = url::Url::parse("http://composite.invalid").and_then(|b| b.join(url)) else {
        return not_found();
    };
    let path_and_query = match parsed.query() {
        Some(q) => format!("{}?{q}", parsed.path()),
        None => parsed.path().to_string(),
    };
    let version = parsed
        .path()
        .split('/')
        .nth(3)
        .and_then(wire::parse_version)
        .map(str::to_string);
    let Some(version) = version.filter(|_| parsed.path().starts_with("/services/data/v")) else {
        return not_found();
    };
    let bytes = match &body {
        Some(v) => v.to_string().into_bytes(),
        None => Vec::new(),
    };
    let mut builder = Request::builder()
        .method(sub.method.clone())
        .uri(path_and_query)
        .header(header::CONTENT_TYPE, "application/json");
    for (name, value) in &sub.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            builder = builder.header(name, value);
        }
    }
    let Ok(mut request) = builder.body(Body::from(bytes)) else {
        return not_found();
    };
    request.extensions_mut().insert(ApiVersion(version));
    request.extensions_mut().insert(faults.clone());
    let response: Response = match router.clone().oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    let status = response.status().as_u16();
    let mut headers = Map::new();
    if let Some(location) = response
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
    {
        headers.insert("Location".into(), json!(location));
    }
    let bytes = axum::body::to_bytes(response.into_body(), MAX_SUBRESPONSE_BYTES)
        .await
        .unwrap_or_default();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    (status, headers, body)
}

/// `GET composite`: the composite resources this org serves (the documented GET lists them).
pub(super) async fn resources(Extension(version): Extension<ApiVersion>) -> Response {
    json_response(
        StatusCode::OK,
        &json!({"sobjects": format!("/services/data/v{}/composite/sobjects", version.0)}),
    )
}

/// `POST composite`.
pub(super) async fn composite(
    State(shared): State<Arc<Shared>>,
    Extension(_version): Extension<ApiVersion>,
    Extension(faults): Extension<Faults>,
    body: Bytes,
) -> Response {
    if shared
        .composite_refused
        .load(std::sync::atomic::Ordering::SeqCst)
    {
        return axum::response::IntoResponse::into_response(ApiError::not_found());
    }
    let composite = match parse(&body) {
        Ok(c) => c,
        Err(err) => return axum::response::IntoResponse::into_response(err),
    };
    let router = super::data_routes().with_state(shared.clone());
    let savepoint = composite
        .all_or_none
        .then(|| shared.write_org().savepoint());
    let mut bodies: HashMap<String, Value> = HashMap::new();
    let mut failed: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut results: Vec<Value> = Vec::with_capacity(composite.subrequests.len());
    // The index of the subrequest that failed first, under allOrNone.
    let mut first_failure: Option<usize> = None;
    for (index, sub) in composite.subrequests.iter().enumerate() {
        if composite.all_or_none && first_failure.is_some() {
            results.push(halted(ROLLED_BACK, &sub.reference_id));
            continue;
        }
        let resolved = resolve_text(&sub.url, &bodies, &failed).and_then(|url| {
            let body = match &sub.body {
                Some(b) => Some(resolve_value(b, &bodies, &failed)?),
                None => None,
            };
            Ok((url, body))
        });
        let (url, mut body) = match resolved {
            Ok(r) => r,
            Err(Unresolved(message)) => {
                failed.insert(sub.reference_id.clone());
                first_failure.get_or_insert(index);
                results.push(halted(&message, &sub.reference_id));
                continue;
            }
        };
        let collections = resource_of(&url).is_some_and(|r| r.starts_with("composite/sobjects"));
        if composite.all_or_none && collections {
            if let Some(Value::Object(map)) = body.as_mut() {
                map.insert("allOrNone".into(), Value::Bool(true));
            }
        }
        let unsupported = match resource_of(&url) {
            Some(r) => {
                let first = r.split('/').next().unwrap_or("");
                !(matches!(first, "sobjects" | "query" | "queryAll") || collections)
            }
            None => true,
        };
        let (status, headers, answer) = if unsupported {
            let e = ApiError::not_found();
            (e.status.as_u16(), Map::new(), e.body)
        } else {
            dispatch(&router, sub, &url, body, &faults).await
        };
        if status >= 400 {
            failed.insert(sub.reference_id.clone());
            first_failure.get_or_insert(index);
        } else {
            bodies.insert(sub.reference_id.clone(), answer.clone());
        }
        results.push(result(answer, headers, status, &sub.reference_id));
    }
    if let Some(savepoint) = savepoint {
        let mut org = shared.write_org();
        match first_failure {
            Some(failure) => {
                org.rollback_to(savepoint);
                drop(org);
                for (index, item) in results.iter_mut().enumerate() {
                    if index != failure {
                        let reference_id = composite.subrequests[index].reference_id.as_str();
                        *item = halted(ROLLED_BACK, reference_id);
                    }
                }
            }
            None => org.release(savepoint),
        }
    }
    json_response(StatusCode::OK, &json!({ "compositeResponse": results }))
}

#[cfg(test)]
mod tests;
