//! Bulk API 2.0 ingest jobs: `POST jobs/ingest` creates a job (insert, update or upsert of one
//! object) in the state Open, `PUT jobs/ingest/{id}/batches` uploads its CSV data (once),
//! `PATCH jobs/ingest/{id}` closes it (`UploadComplete`) or aborts it (`Aborted`),
//! `GET jobs/ingest/{id}` reports it, `DELETE` removes it, `GET jobs/ingest` lists the jobs,
//! and `successfulResults/`, `failedResults/` and `unprocessedrecords/` download what became
//! of each row as CSV.
//!
//! # When rows are applied
//! Like the query jobs, a job moves one state per status request: a closed job
//! (UploadComplete) is InProgress on the first `GET jobs/ingest/{id}` and JobComplete (or
//! Failed) on the second. The rows are applied by that second request, when the job reaches
//! JobComplete: before it, the org is untouched, and a job aborted before it leaves every
//! row unprocessed.
//!
//! # How a row is applied
//! Each row on its own, exactly as one record of an sObject Collections request: updates
//! through the Collections update (`MALFORMED_ID`, `INVALID_CROSS_REFERENCE_KEY`,
//! `ENTITY_IS_DELETED`, then [`Org::update`]), upserts through the Collections upsert
//! ([`Org::upsert`]), inserts through [`Org::create`]: the same validation, derivations,
//! SystemModstamps and change journal. One row's failure never touches another row. Rows
//! are written in transactions of [`TRANSACTION_ROWS`] (a real org processes a job in chunks
//! of 200 records); each transaction's change events are published as API writes of the
//! job's API version, carrying the `Sforce-Call-Options` client name of the request that
//! created the job. The row-lock fault (`lock=P`, `lock@N`) of the status request that
//! applies the rows fails rows with `UNABLE_TO_LOCK_ROW` as it fails Collections records.
//!
//! # The data
//! RFC 4180 CSV in UTF-8 with the job's column delimiter and line ending (a UTF-8 byte order
//! mark is skipped, blank lines are skipped): a header of field API names (any case), then
//! one record per row. A value holding the delimiter, a double quote or a line break is
//! quoted, quotes doubled. On update an empty value leaves the field as it is and `#N/A`
//! sets it to null. Values are text converted by the field's type: numbers, currency and
//! percent as decimal text, booleans `true`/`false`, dates `YYYY-MM-DD`, datetimes
//! `YYYY-MM-DDThh:mm:ss.SSSZ` (or `+0000`, or any RFC 3339 offset), the rest as is; a value
//! that does not convert fails its row (`INVALID_FIELD:Failed to deserialize field at col
//! N...`). Data the job cannot read (not UTF-8, the other line ending, an unknown or
//! repeated column, no Id column for an update, no external id column for an upsert) makes
//! the job Failed with an `errorMessage`, and no row is applied.
//!
//! # Results
//! `text/csv` with the job's delimiter and line ending, every value in double quotes:
//! `sf__Id`, `sf__Created` and the uploaded columns for each row written; `sf__Id`,
//! `sf__Error` (`STATUS_CODE:message:fields`, the fields followed by `--`) and the uploaded
//! columns for each row refused; the uploaded columns of each row not processed. Results are
//! served once the job is JobComplete, Failed or Aborted. A real org does not promise the
//! upload's order in the results; the emulator keeps it.
//!
//! # Where the code is
//! This file holds the job store ([`IngestJobs`], each job's state and info) and the HTTP
//! handlers. `ingest/data.rs` reads the uploaded CSV (records, header checks, value
//! conversion), `ingest/apply.rs` runs a closed job and writes its rows to the org, and
//! `ingest/results.rs` renders the result files.
//!
//! [`Org::update`]: super::org::Org::update
//! [`Org::upsert`]: super::org::Org::upsert
//! [`Org::create`]: super::org::Org::create

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use chrono::Utc;
use serde_json::{json, Value};

use super::jobs::{
    bad_request, csv_response, invalid_state, job_not_complete, job_not_found, json_object,
    list_response, refuse_abort, refuse_before, requested_state, unknown_exception, CsvFormat,
    InfoHead,
};
use super::org::{format_datetime, RecordError};
use super::server::{call_options_client, ApiVersion, Faults, Shared};
use super::wire::{json_response, ApiError};

mod apply;
mod data;
mod results;

use apply::run;
use data::{read_table, Table};
use results::ResultSet;
// The tests reach these as `super::...`.
#[cfg(test)]
use data::{convert, split_csv};
#[cfg(test)]
use results::error_text;

pub use data::DataError;

/// A job's state, as the API spells it (the states query jobs use too).
pub use super::jobs::JobState as IngestState;

/// The first API version with Bulk API 2.0 ingest jobs.
pub const MIN_INGEST_VERSION: u32 = 41;
/// The most bytes one upload may carry.
pub const MAX_UPLOAD_BYTES: usize = 150_000_000;
/// Rows written in one transaction (one set of change events).
pub const TRANSACTION_ROWS: usize = 200;
/// The value that sets a field to null.
pub const NULL_VALUE: &str = "#N/A";

/// What a job does with each row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Creates a record per row.
    Insert,
    /// Updates the record named by the row's Id.
    Update,
    /// Updates the record whose external id field holds the row's value, or creates one.
    Upsert,
}

impl Operation {
    /// The `operation` value of the job.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Insert => "insert",
            Operation::Update => "update",
            Operation::Upsert => "upsert",
        }
    }

    fn parse(text: &str) -> Option<Operation> {
        Some(match text {
            "insert" => Operation::Insert,
            "update" => Operation::Update,
            "upsert" => Operation::Upsert,
            _ => return None,
        })
    }
}

/// What became of one data row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowResult {
    /// Written: the record's 18-character Id, and whether the row created it.
    Succeeded { id: String, created: bool },
    /// Refused: the Id to report (empty when there is none) and why.
    Failed { id: String, error: RecordError },
    /// Not processed: the job was aborted, or failed, before the row's turn.
    Unprocessed,
}
/// One ingest job.
#[derive(Debug)]
struct Job {
    id: String,
    operation: Operation,
    object: String,
    /// Upsert: the external id field, canonical name.
    external_id: Option<String>,
    api_version: String,
    format: CsvFormat,
    created_by: String,
    created: String,
    modstamp: String,
    state: IngestState,
    /// The `Sforce-Call-Options` client of the creating request.
    client: Option<String>,
    /// The uploaded data, kept until the job is deleted.
    data: Option<Bytes>,
    /// Fails instead of running (set by [`IngestJobs::fail_jobs`] when it was created).
    fails: bool,
    error_message: Option<String>,
    /// The data as read, once the job has read it (or was aborted with data).
    table: Option<Table>,
    /// The result of each row processed, in upload order; rows past its end are unprocessed.
    results: Vec<RowResult>,
    processing_ms: u64,
}

impl Job {
    fn set_state(&mut self, state: IngestState) {
        self.state = state;
        self.modstamp = format_datetime(Utc::now());
    }

    fn failed_count(&self) -> usize {
        self.results
            .iter()
            .filter(|r| matches!(r, RowResult::Failed { .. }))
            .count()
    }

    fn processed_count(&self) -> usize {
        self.results
            .iter()
            .filter(|r| !matches!(r, RowResult::Unprocessed))
            .count()
    }

    /// The job info: what creation, close, abort and the list answer; `detailed` adds what
    /// `GET jobs/ingest/{id}` reports.
    fn info(&self, detailed: bool) -> Value {
        let mut info = InfoHead {
            id: &self.id,
            operation: self.operation.as_str(),
            object: &self.object,
            created_by: &self.created_by,
            created: &self.created,
            modstamp: &self.modstamp,
            state: self.state,
            external_id: self.external_id.as_deref(),
            api_version: &self.api_version,
            job_type: "V2Ingest",
            content_url: Some(format!(
                "services/data/v{}/jobs/ingest/{}/batches",
                self.api_version, self.id
            )),
            format: &self.format,
        }
        .write(detailed);
        if detailed {
            info.insert(
                "numberRecordsProcessed".into(),
                json!(self.processed_count()),
            );
            info.insert("numberRecordsFailed".into(), json!(self.failed_count()));
            info.insert("retries".into(), json!(0));
            info.insert("totalProcessingTime".into(), json!(self.processing_ms));
            info.insert("apiActiveProcessingTime".into(), json!(self.processing_ms));
            info.insert("apexProcessingTime".into(), json!(0));
            if let Some(message) = &self.error_message {
                info.insert("errorMessage".into(), json!(message));
            }
        }
        Value::Object(info)
    }

    /// Reads the uploaded data, if any, so its rows can be reported unprocessed.
    fn keep_rows(&mut self) {
        if self.table.is_none() {
            if let Some(data) = &self.data {
                self.table = read_table(data, self.format.delimiter, self.format.crlf).ok();
            }
        }
    }

    /// The job's public view.
    fn summary(&self) -> IngestJobSummary {
        let rows = self.table.as_ref().map_or(0, |t| t.rows.len());
        let mut results = self.results.clone();
        results.resize(rows.max(results.len()), RowResult::Unprocessed);
        IngestJobSummary {
            id: self.id.clone(),
            object: self.object.clone(),
            operation: self.operation,
            state: self.state,
            external_id_field: self.external_id.clone(),
            records_processed: self.processed_count(),
            records_failed: self.failed_count(),
            error_message: self.error_message.clone(),
            rows: results,
        }
    }
}

/// What a test (or a benchmark) can see of an ingest job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestJobSummary {
    /// The job Id (`750...`).
    pub id: String,
    /// The object's API name.
    pub object: String,
    /// What the job does with each row.
    pub operation: Operation,
    /// Where the job stands.
    pub state: IngestState,
    /// Upsert: the external id field.
    pub external_id_field: Option<String>,
    /// Rows written or refused (`numberRecordsProcessed`).
    pub records_processed: usize,
    /// Rows refused (`numberRecordsFailed`).
    pub records_failed: usize,
    /// Why the job is Failed.
    pub error_message: Option<String>,
    /// What became of each data row, in upload order; empty until the job has read its data
    /// (or was aborted with data).
    pub rows: Vec<RowResult>,
}

/// The org's ingest jobs, with the switches tests use.
#[derive(Debug, Default)]
pub struct IngestJobs {
    jobs: Mutex<BTreeMap<String, Job>>,
    fail_jobs: AtomicBool,
    /// The upload limit in bytes; 0 for [`MAX_UPLOAD_BYTES`].
    upload_limit: AtomicUsize,
}

impl IngestJobs {
    fn jobs(&self) -> MutexGuard<'_, BTreeMap<String, Job>> {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Jobs created from now on end in the Failed state, with no row applied, instead of
    /// running: a client can then load the records through the REST API.
    pub fn fail_jobs(&self, fail: bool) {
        self.fail_jobs.store(fail, Ordering::SeqCst);
    }

    /// Sets the most bytes one upload may carry (`None`: [`MAX_UPLOAD_BYTES`]), so a test can
    /// reach the limit without sending 150 MB.
    pub fn set_upload_limit(&self, bytes: Option<usize>) {
        self.upload_limit
            .store(bytes.map_or(0, |b| b.max(1)), Ordering::SeqCst);
    }

    /// The most bytes one upload may carry.
    pub fn upload_limit(&self) -> usize {
        match self.upload_limit.load(Ordering::SeqCst) {
            0 => MAX_UPLOAD_BYTES,
            n => n,
        }
    }

    /// The job `id`, if the org has it.
    pub fn summary(&self, id: &str) -> Option<IngestJobSummary> {
        self.jobs().get(id).map(Job::summary)
    }

    /// Every job of the org, by Id.
    pub fn summaries(&self) -> Vec<IngestJobSummary> {
        self.jobs().values().map(Job::summary).collect()
    }
}

/// 404 for API versions before ingest jobs.
fn too_old(version: &str) -> Option<Response> {
    refuse_before(version, MIN_INGEST_VERSION)
}

/// `POST jobs/ingest`.
pub(crate) async fn create(
    State(shared): State<Arc<Shared>>,
    Extension(version): Extension<ApiVersion>,
    headers: HeaderMap,
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
        Some(op) => match Operation::parse(op) {
            Some(operation) => operation,
            None => {
                return bad_request(
                    "INVALIDJOB",
                    &format!(
                        "Invalid operation {op}: the emulator's ingest jobs are insert, update \
                         or upsert"
                    ),
                )
            }
        },
        None => {
            return bad_request(
                "INVALIDJOB",
                "The job needs an operation: insert, update or upsert",
            )
        }
    };
    let Some(object_name) = text("object").filter(|o| !o.is_empty()) else {
        return bad_request("INVALIDJOB", "The job needs an object");
    };
    let format = match CsvFormat::from_body(&body) {
        Ok(format) => format,
        Err(refused) => return refused.into_response(),
    };
    let (def, user_id) = {
        let org = shared.read_org();
        let def = org.catalog().object(object_name).cloned();
        (def, org.user_id().to_string())
    };
    let Some(def) = def else {
        return bad_request(
            "INVALIDJOB",
            &format!("Unable to find object: {object_name}"),
        );
    };
    if let Some(refused) = shared.bulk.refusal(&def.name) {
        return refused;
    }
    let external_id = match operation {
        Operation::Upsert => {
            let Some(name) = text("externalIdFieldName").filter(|n| !n.is_empty()) else {
                return bad_request(
                    "INVALIDJOB",
                    "External ID field name is required for an upsert job: give \
                     externalIdFieldName",
                );
            };
            match def.field(name).filter(|f| f.external_id || f.name == "Id") {
                Some(field) => Some(field.name.clone()),
                None => {
                    return bad_request(
                        "INVALIDJOB",
                        &format!(
                            "Field name provided, {name} does not match an External ID or \
                             Salesforce Id for {}",
                            def.name
                        ),
                    )
                }
            }
        }
        _ => None,
    };
    let created = format_datetime(Utc::now());
    let job = Job {
        id: shared.bulk.next_job_id(),
        operation,
        object: def.name.clone(),
        external_id,
        api_version: version.0.clone(),
        format,
        created_by: user_id,
        created: created.clone(),
        modstamp: created,
        state: IngestState::Open,
        client: call_options_client(&headers),
        data: None,
        fails: shared.ingest.fail_jobs.load(Ordering::SeqCst),
        error_message: None,
        table: None,
        results: Vec::new(),
        processing_ms: 0,
    };
    let info = job.info(false);
    shared.ingest.jobs().insert(job.id.clone(), job);
    json_response(StatusCode::OK, &info)
}

/// `GET jobs/ingest`: every ingest job of the org.
pub(crate) async fn list(
    State(shared): State<Arc<Shared>>,
    Extension(version): Extension<ApiVersion>,
) -> Response {
    if let Some(refused) = too_old(&version.0) {
        return refused;
    }
    list_response(
        shared
            .ingest
            .jobs()
            .values()
            .map(|j| j.info(false))
            .collect(),
    )
}

/// Whether `headers` say the body is CSV (`text/csv`, any parameters).
fn is_csv(headers: &HeaderMap) -> Result<(), String> {
    let given = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media = given.split(';').next().unwrap_or("").trim();
    if media.eq_ignore_ascii_case("text/csv") {
        Ok(())
    } else {
        Err(given.to_string())
    }
}

fn too_large(limit: usize) -> Response {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "BULK_API_ERROR",
        &format!(
            "Exceeded max size limit of {limit} bytes for the job data: split the data into \
             several jobs"
        ),
    )
    .into_response()
}

/// `PUT jobs/ingest/{id}/batches`: the job's one upload, 201 without a body.
pub(crate) async fn upload(
    State(shared): State<Arc<Shared>>,
    Extension(version): Extension<ApiVersion>,
    Path((_version, job_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Some(refused) = too_old(&version.0) {
        return refused;
    }
    {
        let jobs = shared.ingest.jobs();
        let Some(job) = jobs.get(&job_id) else {
            return job_not_found();
        };
        if job.data.is_some() {
            return multiple_contents(&job_id);
        }
        if job.state != IngestState::Open {
            return invalid_state(&format!(
                "The job {job_id} is {}: data can only be uploaded to an Open job",
                job.state.as_str()
            ));
        }
    }
    if let Err(given) = is_csv(&headers) {
        return ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            &format!("MediaType of '{given}' is not supported: send the job data as text/csv"),
        )
        .into_response();
    }
    let limit = shared.ingest.upload_limit();
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return too_large(limit);
    }
    let Ok(data) = axum::body::to_bytes(body, limit).await else {
        return too_large(limit);
    };
    if data.is_empty() {
        return bad_request(
            "BULK_API_ERROR",
            "The job data is empty: upload the CSV data, its header row first",
        );
    }
    let mut jobs = shared.ingest.jobs();
    let Some(job) = jobs.get_mut(&job_id) else {
        return job_not_found();
    };
    // Checked again: another upload or a close may have come in while this one was read.
    if job.data.is_some() || job.state != IngestState::Open {
        return multiple_contents(&job_id);
    }
    job.data = Some(data);
    job.modstamp = format_datetime(Utc::now());
    StatusCode::CREATED.into_response()
}

/// `PATCH jobs/ingest/{id}` with `{"state": "UploadComplete"}` (close an Open job) or
/// `{"state": "Aborted"}` (abort a job that has not ended).
pub(crate) async fn set_state(
    State(shared): State<Arc<Shared>>,
    Extension(version): Extension<ApiVersion>,
    Path((_version, job_id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    if let Some(refused) = too_old(&version.0) {
        return refused;
    }
    let wanted = requested_state(&body);
    let mut jobs = shared.ingest.jobs();
    let Some(job) = jobs.get_mut(&job_id) else {
        return job_not_found();
    };
    match wanted.as_deref() {
        Some("UploadComplete") => {
            if job.state != IngestState::Open {
                return invalid_state(&format!(
                    "The job is {}: only an Open job can be closed",
                    job.state.as_str()
                ));
            }
            job.set_state(IngestState::UploadComplete);
        }
        Some("Aborted") => {
            if let Some(refused) = refuse_abort(job.state) {
                return refused;
            }
            job.set_state(IngestState::Aborted);
            job.keep_rows();
        }
        _ => {
            return invalid_state(
                "An ingest job's state can only be set to UploadComplete or Aborted",
            )
        }
    }
    json_response(StatusCode::OK, &job.info(false))
}

/// `DELETE jobs/ingest/{id}`: a job that is UploadComplete, JobComplete, Failed or Aborted.
pub(crate) async fn delete(
    State(shared): State<Arc<Shared>>,
    Extension(version): Extension<ApiVersion>,
    Path((_version, job_id)): Path<(String, String)>,
) -> Response {
    if let Some(refused) = too_old(&version.0) {
        return refused;
    }
    let mut jobs = shared.ingest.jobs();
    let Some(job) = jobs.get(&job_id) else {
        return job_not_found();
    };
    if matches!(job.state, IngestState::Open | IngestState::InProgress) {
        return invalid_state(&format!(
            "The job is {}: only a job that is UploadComplete, JobComplete, Aborted or Failed \
             can be deleted",
            job.state.as_str()
        ));
    }
    jobs.remove(&job_id);
    StatusCode::NO_CONTENT.into_response()
}

/// `GET jobs/ingest/{id}`: each request moves an unfinished job one state on (the second
/// applies its rows), then reports it.
pub(crate) async fn info(
    State(shared): State<Arc<Shared>>,
    Extension(version): Extension<ApiVersion>,
    Extension(faults): Extension<Faults>,
    Path((_version, job_id)): Path<(String, String)>,
) -> Response {
    if let Some(refused) = too_old(&version.0) {
        return refused;
    }
    let ran = tokio::task::spawn_blocking(move || {
        let mut jobs = shared.ingest.jobs();
        let job = jobs.get_mut(&job_id)?;
        match job.state {
            IngestState::UploadComplete => job.set_state(IngestState::InProgress),
            IngestState::InProgress => run(&shared, job, &faults),
            _ => {}
        }
        Some(job.info(true))
    })
    .await;
    match ran {
        Ok(Some(info)) => json_response(StatusCode::OK, &info),
        Ok(None) => job_not_found(),
        Err(_) => unknown_exception("An unexpected error occurred while processing the job"),
    }
}
/// One result set of an ended job as `text/csv`, or why not.
fn results(shared: &Shared, version: &ApiVersion, job_id: &str, set: ResultSet) -> Response {
    if let Some(refused) = too_old(&version.0) {
        return refused;
    }
    let csv = {
        let jobs = shared.ingest.jobs();
        let Some(job) = jobs.get(job_id) else {
            return job_not_found();
        };
        if !job.state.is_final() {
            return job_not_complete(&format!(
                "can only download the results of an ingest job that has ended, with \
                 status: JOB_COMPLETE, FAILED or ABORTED. Current status: {}",
                job.state.shouting()
            ));
        }
        set.render(job)
    };
    csv_response(csv)
}

/// The answer to a second upload to a job: its data goes in one upload.
fn multiple_contents(job_id: &str) -> Response {
    bad_request(
        "BULK_API_ERROR",
        &format!(
            "Found multiple contents for job: <{job_id}>, please 'Close' / 'Abort' / 'Delete' \
             the current Job then create a new Job and make sure you only do 'PUT' once on a \
             given Job."
        ),
    )
}

/// `GET jobs/ingest/{id}/{file}/` for the result files `successfulResults`, `failedResults`
/// and `unprocessedrecords`; any other name is the API's `NOT_FOUND`, as an unknown resource.
pub(crate) async fn result_file(
    State(shared): State<Arc<Shared>>,
    Extension(version): Extension<ApiVersion>,
    Path((_version, job_id, file)): Path<(String, String, String)>,
) -> Response {
    let set = match file.as_str() {
        "successfulResults" => ResultSet::Successful,
        "failedResults" => ResultSet::Failed,
        "unprocessedrecords" => ResultSet::Unprocessed,
        _ => return ApiError::not_found().into_response(),
    };
    results(&shared, &version, &job_id, set)
}

#[cfg(test)]
mod tests;
