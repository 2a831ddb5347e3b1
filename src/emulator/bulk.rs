//! Bulk API 2.0 query jobs: `POST jobs/query` creates a job, `GET jobs/query/{id}` reports its
//! state (UploadComplete, then InProgress, then JobComplete; or Failed, or Aborted), `PATCH`
//! aborts it, `DELETE` removes it, and `GET jobs/query/{id}/results` downloads its rows as
//! CSV in sets of `maxRecords`, paged by the `Sforce-Locator` header (the string `null` after
//! the last set).
//!
//! A job runs its query when it is created and keeps the ordered Ids of the matching records;
//! each result set renders those records as CSV the way Salesforce writes it: a header of API
//! names (`Account.Name` for a parent's field), every value in double quotes, an empty field
//! for null, `true`/`false`, dates `YYYY-MM-DD` and datetimes `YYYY-MM-DDThh:mm:ss.SSSZ`.
//! The job advances one state per status request, so a client sees InProgress on its first
//! poll and JobComplete (or Failed) on its second.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use base64::Engine;
use chrono::Utc;
use serde_json::{json, Value};

use super::jobs::{
    bad_request, csv_line, csv_response, invalid_state, job_not_complete, job_not_found,
    json_object, list_response, push_quoted, refuse_abort, refuse_before, requested_state,
    unknown_exception, CsvFormat, InfoHead,
};
use super::limits::DAILY_BULK_QUERY_JOBS;
use super::org::{format_datetime, Org, POD};
use super::query::{is_deleted, matching, record_id};
use super::server::{ApiVersion, Shared};
use super::soql::{self, Query};
use super::wire::{json_response, ApiError};
use crate::metadata::id;

pub use super::jobs::JobState;

/// The first API version with Bulk API 2.0 query jobs.
pub const MIN_BULK_QUERY_VERSION: u32 = 47;
/// Rows in a result set when the request gives no `maxRecords`.
pub const DEFAULT_MAX_RECORDS: usize = 50_000;

/// One query job.
#[derive(Debug)]
struct Job {
    id: String,
    operation: String,
    object: String,
    query: Query,
    api_version: String,
    format: CsvFormat,
    created: String,
    state: JobState,
    /// The ordered Ids of the result, kept from the moment the job ran.
    ids: Arc<Vec<String>>,
    all_rows: bool,
    /// Fails instead of completing (set by [`BulkJobs::fail_jobs`]).
    fails: bool,
}

impl Job {
    /// The job info: what creation, abort and the list answer; `detailed` adds what
    /// `GET jobs/query/{id}` reports.
    fn info(&self, detailed: bool) -> Value {
        let mut info = InfoHead {
            id: &self.id,
            operation: &self.operation,
            object: &self.object,
            created_by: "",
            created: &self.created,
            modstamp: &self.created,
            state: self.state,
            external_id: None,
            api_version: &self.api_version,
            job_type: "V2Query",
            content_url: None,
            format: &self.format,
        }
        .write(detailed);
        if detailed {
            let processed = if self.state == JobState::JobComplete {
                self.ids.len()
            } else {
                0
            };
            info.insert("numberRecordsProcessed".into(), json!(processed));
            info.insert("retries".into(), json!(0));
            info.insert("totalProcessingTime".into(), json!(0));
            if self.state == JobState::Failed {
                info.insert(
                    "errorMessage".into(),
                    json!("The query job failed while it ran; run the query through the REST API"),
                );
            }
        }
        Value::Object(info)
    }
}

/// The org's query jobs and its daily bulk allowances.
#[derive(Debug, Default)]
pub struct BulkJobs {
    jobs: Mutex<BTreeMap<String, Job>>,
    sequence: AtomicU64,
    refused_objects: Mutex<HashSet<String>>,
    fail_jobs: std::sync::atomic::AtomicBool,
}

impl BulkJobs {
    fn jobs(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Job>> {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Objects whose query jobs and ingest jobs (see [`super::ingest`]) are refused at
    /// creation, as a real org refuses objects the Bulk API does not support
    /// (`INVALIDENTITY`).
    pub fn refuse_objects(&self, objects: &[&str]) {
        let mut refused = self
            .refused_objects
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        refused.clear();
        refused.extend(objects.iter().map(|o| o.to_ascii_lowercase()));
    }

    /// Jobs created from now on end in the Failed state instead of JobComplete.
    pub fn fail_jobs(&self, fail: bool) {
        self.fail_jobs.store(fail, Ordering::SeqCst);
    }

    /// Whether jobs on `object` are refused (see [`BulkJobs::refuse_objects`]).
    pub(crate) fn refuses(&self, object: &str) -> bool {
        self.refused_objects
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&object.to_ascii_lowercase())
    }

    /// 400 `INVALIDENTITY` when jobs on `object` are refused (see
    /// [`BulkJobs::refuse_objects`]); `None` when they are taken.
    pub(crate) fn refusal(&self, object: &str) -> Option<Response> {
        self.refuses(object).then(|| {
            bad_request(
                "INVALIDENTITY",
                &format!("{object} is not supported by the Bulk API"),
            )
        })
    }

    /// The Id (`750...`) of the next Bulk API 2.0 job, query or ingest: their Ids come from one
    /// sequence, so no two jobs share an Id.
    pub(crate) fn next_job_id(&self) -> String {
        id::make("750", POD, self.sequence.fetch_add(1, Ordering::SeqCst) + 1)
    }
}

/// 404 for API versions before query jobs.
fn too_old(version: &str) -> Option<Response> {
    refuse_before(version, MIN_BULK_QUERY_VERSION)
}

/// The SOQL forms Bulk API 2.0 refuses, by a look at the text: GROUP BY, OFFSET, TYPEOF,
/// aggregates, FIELDS() and parent-to-child subqueries.
fn unsupported_form(text: &str, query: Option<&Query>) -> Option<&'static str> {
    let upper = text.to_ascii_uppercase();
    let words: Vec<&str> = upper
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .collect();
    let has_pair = |a: &str, b: &str| words.windows(2).any(|w| w[0] == a && w[1] == b);
    if has_pair("GROUP", "BY") {
        return Some("GROUP BY");
    }
    if words.contains(&"TYPEOF") {
        return Some("TYPEOF");
    }
    let compact: String = upper.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.contains("FIELDS(") {
        return Some("FIELDS()");
    }
    if compact.contains("(SELECT") {
        return Some("parent-to-child relationship queries");
    }
    for aggregate in ["COUNT(", "COUNT_DISTINCT(", "SUM(", "AVG(", "MIN(", "MAX("] {
        if compact.contains(aggregate) {
            return Some("aggregate functions");
        }
    }
    if words.contains(&"OFFSET") || query.is_some_and(|q| q.offset.is_some()) {
        return Some("OFFSET");
    }
    if query.is_some_and(|q| q.count_only) {
        return Some("aggregate functions");
    }
    None
}

/// Runs `query` the way the REST query does: matching rows (deleted ones too for queryAll),
/// ORDER BY or Id order, LIMIT.
fn run(org: &Org, query: &Query, all_rows: bool) -> Vec<String> {
    let rows = matching(org, query, all_rows);
    let end = query.limit.map_or(rows.len(), |l| l.min(rows.len()));
    rows[..end]
        .iter()
        .map(|r| record_id(r).to_string())
        .collect()
}

/// `POST jobs/query`.
pub(crate) async fn create(
    State(shared): State<Arc<Shared>>,
    Extension(version): Extension<ApiVersion>,
    body: Bytes,
) -> Response {
    if let Some(refused) = too_old(&version.0) {
        return refused;
    }
    let body = match json_object(&body) {
        Ok(map) => map,
        Err(refused) => return refused.into_response(),
    };
    let text = |name: &str| body.get(name).and_then(Value::as_str);
    let operation = match text("operation") {
        Some(op @ ("query" | "queryAll")) => op.to_string(),
        Some(other) => {
            return bad_request(
                "INVALIDJOB",
                &format!("Invalid operation {other}: a query job's operation is query or queryAll"),
            )
        }
        None => {
            return bad_request(
                "INVALIDJOB",
                "The job needs an operation: query or queryAll",
            )
        }
    };
    let Some(soql_text) = text("query").filter(|q| !q.trim().is_empty()) else {
        return bad_request("INVALIDJOB", "The job needs a query");
    };
    let format = match CsvFormat::from_body(&body) {
        Ok(format) => format,
        Err(refused) => return refused.into_response(),
    };
    if let Some(form) = unsupported_form(soql_text, None) {
        return bad_request(
            "API_ERROR",
            &format!("Bulk API 2.0 query jobs do not support {form}"),
        );
    }
    let all_rows = operation == "queryAll";
    let shared2 = shared.clone();
    let soql_owned = soql_text.to_string();
    let ran = tokio::task::spawn_blocking(move || {
        let org = shared2.read_org();
        let query = soql::parse(&soql_owned, org.catalog())?;
        let ids = run(&org, &query, all_rows);
        Ok::<_, soql::SoqlError>((query, ids))
    })
    .await;
    let (query, ids) = match ran {
        Ok(Ok(done)) => done,
        Ok(Err(err)) => return bad_request(err.error_code, &err.message),
        Err(_) => return unknown_exception("An unexpected error occurred while running the query"),
    };
    if let Some(form) = unsupported_form(soql_text, Some(&query)) {
        return bad_request(
            "API_ERROR",
            &format!("Bulk API 2.0 query jobs do not support {form}"),
        );
    }
    if let Some(refused) = shared.bulk.refusal(&query.object) {
        return refused;
    }
    let bulk = &shared.bulk;
    if let Err(n) = shared.usage.count_bulk_job() {
        return bad_request(
            "LIMIT_EXCEEDED",
            &format!(
                "Max bulk v2 query jobs ({DAILY_BULK_QUERY_JOBS}) per 24 hrs has been reached ({n})"
            ),
        );
    }
    let job = Job {
        id: bulk.next_job_id(),
        operation,
        object: query.object.clone(),
        query,
        api_version: version.0.clone(),
        format,
        created: format_datetime(Utc::now()),
        state: JobState::UploadComplete,
        ids: Arc::new(ids),
        all_rows,
        fails: bulk.fail_jobs.load(Ordering::SeqCst),
    };
    let info = job.info(false);
    bulk.jobs().insert(job.id.clone(), job);
    json_response(StatusCode::OK, &info)
}

/// `GET jobs/query`: every job of the org.
pub(crate) async fn list(
    State(shared): State<Arc<Shared>>,
    Extension(version): Extension<ApiVersion>,
) -> Response {
    if let Some(refused) = too_old(&version.0) {
        return refused;
    }
    list_response(shared.bulk.jobs().values().map(|j| j.info(false)).collect())
}

/// `GET jobs/query/{id}`: each request moves an unfinished job one state on, then reports it.
pub(crate) async fn info(
    State(shared): State<Arc<Shared>>,
    Extension(version): Extension<ApiVersion>,
    Path((_version, job_id)): Path<(String, String)>,
) -> Response {
    if let Some(refused) = too_old(&version.0) {
        return refused;
    }
    let mut jobs = shared.bulk.jobs();
    let Some(job) = jobs.get_mut(&job_id) else {
        return job_not_found();
    };
    job.state = match job.state {
        JobState::UploadComplete => JobState::InProgress,
        JobState::InProgress if job.fails => JobState::Failed,
        JobState::InProgress => JobState::JobComplete,
        done => done,
    };
    json_response(StatusCode::OK, &job.info(true))
}

/// `PATCH jobs/query/{id}` with `{"state": "Aborted"}`.
pub(crate) async fn abort(
    State(shared): State<Arc<Shared>>,
    Extension(version): Extension<ApiVersion>,
    Path((_version, job_id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    if let Some(refused) = too_old(&version.0) {
        return refused;
    }
    if requested_state(&body).as_deref() != Some("Aborted") {
        return invalid_state("A query job can only be set to the state Aborted");
    }
    let mut jobs = shared.bulk.jobs();
    let Some(job) = jobs.get_mut(&job_id) else {
        return job_not_found();
    };
    if let Some(refused) = refuse_abort(job.state) {
        return refused;
    }
    job.state = JobState::Aborted;
    json_response(StatusCode::OK, &job.info(false))
}

/// `DELETE jobs/query/{id}`.
pub(crate) async fn delete(
    State(shared): State<Arc<Shared>>,
    Extension(version): Extension<ApiVersion>,
    Path((_version, job_id)): Path<(String, String)>,
) -> Response {
    if let Some(refused) = too_old(&version.0) {
        return refused;
    }
    match shared.bulk.jobs().remove(&job_id) {
        Some(_) => StatusCode::NO_CONTENT.into_response(),
        None => job_not_found(),
    }
}

/// A value as a CSV field: empty for null, the text in double quotes otherwise (internal
/// quotes doubled); datetimes in the `Z` form.
fn csv_field(value: &Value, out: &mut String) {
    let text = match value {
        Value::Null => return,
        Value::String(s) => {
            if let Some(utc) = s.strip_suffix("+0000").filter(|d| {
                d.len() == 23 && d.as_bytes().get(10) == Some(&b'T') && d.as_bytes()[19] == b'.'
            }) {
                format!("{utc}Z")
            } else {
                s.clone()
            }
        }
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    };
    push_quoted(out, &text);
}

/// The value at a dotted column path of a projected record (`Account.Name`).
fn column_value<'a>(record: &'a Value, column: &str) -> &'a Value {
    let mut current = record;
    for part in column.split('.') {
        match current.get(part) {
            Some(v) => current = v,
            None => return &Value::Null,
        }
    }
    current
}

/// The locator of the set starting at `offset`: opaque to clients.
fn locator(offset: usize) -> String {
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(offset.to_string())
}

fn parse_locator(text: &str) -> Option<usize> {
    let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(text)
        .ok()?;
    String::from_utf8(bytes).ok()?.parse().ok()
}

/// `GET jobs/query/{id}/results?locator=L&maxRecords=N`.
pub(crate) async fn results(
    State(shared): State<Arc<Shared>>,
    Extension(version): Extension<ApiVersion>,
    Path((_version, job_id)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Response {
    if let Some(refused) = too_old(&version.0) {
        return refused;
    }
    let params: Vec<(String, String)> = raw
        .as_deref()
        .map(|r| {
            url::form_urlencoded::parse(r.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let max_records = match param("maxRecords") {
        None => DEFAULT_MAX_RECORDS,
        Some(n) => match n.parse::<usize>() {
            Ok(n) if n > 0 => n,
            _ => {
                return bad_request(
                    "INVALIDREQUEST",
                    &format!("Invalid maxRecords {n}: give a positive whole number"),
                )
            }
        },
    };
    let offset = match param("locator").filter(|l| !l.is_empty()) {
        None => 0,
        Some(text) => match parse_locator(text) {
            Some(offset) => offset,
            None => return bad_request("INVALIDLOCATOR", &format!("Invalid locator {text}")),
        },
    };
    let (query, ids, all_rows, delim, line_ending) = {
        let jobs = shared.bulk.jobs();
        let Some(job) = jobs.get(&job_id) else {
            return job_not_found();
        };
        if job.api_version != version.0 {
            return ApiError::new(
                StatusCode::CONFLICT,
                "API_VERSION_MISMATCH",
                &format!(
                    "The job was created with API version {}: get its results with the same version",
                    job.api_version
                ),
            )
            .into_response();
        }
        if job.state != JobState::JobComplete {
            return job_not_complete(&format!(
                "can only download query results of successfully completed bulk job with \
                 status: JOB_COMPLETE. Current status: {}",
                job.state.shouting()
            ));
        }
        (
            job.query.clone(),
            job.ids.clone(),
            job.all_rows,
            job.format.delimiter,
            job.format.line_ending(),
        )
    };
    if offset > ids.len() {
        return bad_request(
            "INVALIDLOCATOR",
            "The locator is past the end of the results",
        );
    }
    let shared2 = shared.clone();
    let version2 = version.0.clone();
    let rendered = tokio::task::spawn_blocking(move || {
        let org = shared2.read_org();
        let columns = query.columns();
        let end = offset.saturating_add(max_records).min(ids.len());
        let mut csv = String::new();
        csv_line(
            &mut csv,
            columns.iter().map(String::as_str),
            delim,
            line_ending,
        );
        let mut count = 0usize;
        for id in &ids[offset..end] {
            let Some(record) = org.get(&query.object, id) else {
                continue;
            };
            if !all_rows && is_deleted(record) {
                continue;
            }
            let projected = query.project(record, &*org, &version2);
            for (i, column) in columns.iter().enumerate() {
                if i > 0 {
                    csv.push(delim);
                }
                csv_field(column_value(&projected, column), &mut csv);
            }
            csv.push_str(line_ending);
            count += 1;
        }
        let next = (end < ids.len()).then(|| locator(end));
        (csv, count, next)
    })
    .await;
    let Ok((csv, count, next)) = rendered else {
        return unknown_exception("An unexpected error occurred while writing the results");
    };
    shared.usage.add_bulk_bytes(csv.len() as u64);
    let mut response = csv_response(csv);
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(next.as_deref().unwrap_or("null")) {
        headers.insert("sforce-locator", v);
    }
    headers.insert("sforce-numberofrecords", HeaderValue::from(count));
    response
}

#[cfg(test)]
mod tests;
