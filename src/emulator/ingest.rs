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

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use chrono::{NaiveDate, Utc};
use rust_decimal::Decimal;
use serde_json::{json, Map, Value};

use super::jobs::{
    bad_request, csv_line, csv_response, invalid_state, job_not_complete, job_not_found,
    json_object, list_response, refuse_abort, refuse_before, requested_state, unknown_exception,
    CsvFormat, InfoHead,
};
use super::org::{format_datetime, normalize_id, number, parse_datetime, Org, RecordError};
use super::routes::collections::{update_record, upsert_record};
use super::server::{call_options_client, ApiVersion, Faults, Shared};
use super::streaming::Origin;
use super::wire::{json_response, ApiError};
use crate::metadata::{FieldDef, FieldType, ObjectDef};

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

/// Why a job cannot read its data: the job ends Failed with this as its `errorMessage`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DataError {
    /// The job was closed without an upload.
    #[error("InvalidBatch : No data was uploaded for the job")]
    NoData,
    /// The upload is not UTF-8.
    #[error("InvalidBatch : The job data is not UTF-8 text")]
    NotUtf8,
    /// A record ends in the other line ending than the job's (`LF` or `CRLF`).
    #[error(
        "ClientInputError : LineEnding is invalid on user data. Current LineEnding setting is {0}"
    )]
    LineEnding(&'static str),
    /// A quoted value runs to the end of the data.
    #[error("InvalidBatch : The quoted value starting in line {line} has no closing double quote")]
    Unterminated { line: usize },
    /// The upload holds no record at all.
    #[error("InvalidBatch : The job data has no header row")]
    NoHeader,
    /// The header row's quoting is broken.
    #[error("InvalidBatch : The header row is not valid CSV: {0}")]
    BadHeader(String),
    /// A column is not a field of the object (relationship columns included).
    #[error("InvalidBatch : Field name not found : {0}")]
    UnknownField(String),
    /// Two columns name the same field.
    #[error("InvalidBatch : Duplicate field name in the header row: {0}")]
    DuplicateField(String),
    /// An update job's data has no Id column.
    #[error("InvalidBatch : The Id column is required for an update job")]
    MissingId,
    /// An upsert job's data has no column for its external id field.
    #[error("InvalidBatch : The external id column {0} is required for an upsert job")]
    MissingKey(String),
    /// The job was made to fail ([`IngestJobs::fail_jobs`]).
    #[error(
        "InternalServerError : The job failed while it ran and its batches were not processed; \
         load the records through the REST API"
    )]
    Injected,
}

/// One record of CSV data: its values and, when its quoting is broken, why.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CsvRecord {
    values: Vec<String>,
    problem: Option<String>,
}

/// A job's data as read: the header as uploaded, then the rows in upload order.
#[derive(Debug, Clone)]
struct Table {
    header: Vec<String>,
    rows: Vec<CsvRecord>,
}

/// Splits CSV text into records: `delimiter` between values, `\r\n` (`crlf`) or `\n` between
/// records, double quotes around values that need them. Blank lines are skipped. A record
/// ending in the other line ending is refused, as a real org refuses it.
fn split_csv(text: &str, delimiter: char, crlf: bool) -> Result<Vec<CsvRecord>, DataError> {
    let mut records = Vec::new();
    let mut values: Vec<String> = Vec::new();
    let mut value = String::new();
    let mut problem: Option<String> = None;
    // At the start of a value; after the closing quote of a quoted one; nothing read yet in
    // this record.
    let mut at_start = true;
    let mut closed = false;
    let mut blank = true;
    let mut line = 1usize;
    let mut record_line = 1usize;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '"' && at_start {
            at_start = false;
            blank = false;
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        value.push('"');
                    }
                    Some('"') => break,
                    Some(inner) => {
                        if inner == '\n' {
                            line += 1;
                        }
                        value.push(inner);
                    }
                    None => return Err(DataError::Unterminated { line: record_line }),
                }
            }
            closed = true;
            continue;
        }
        let record_end = match c {
            '\n' if crlf => return Err(DataError::LineEnding("CRLF")),
            '\n' => true,
            '\r' if chars.peek() == Some(&'\n') => {
                if !crlf {
                    return Err(DataError::LineEnding("LF"));
                }
                chars.next();
                true
            }
            _ => false,
        };
        if record_end {
            line += 1;
            if !blank {
                values.push(std::mem::take(&mut value));
                records.push(CsvRecord {
                    values: std::mem::take(&mut values),
                    problem: problem.take(),
                });
            }
            at_start = true;
            closed = false;
            blank = true;
            record_line = line;
            continue;
        }
        blank = false;
        if c == delimiter {
            values.push(std::mem::take(&mut value));
            at_start = true;
            closed = false;
            continue;
        }
        if closed && problem.is_none() {
            problem = Some(format!(
                "Characters follow the closing double quote of the value in column {}",
                values.len() + 1
            ));
        }
        at_start = false;
        value.push(c);
    }
    if !blank {
        values.push(value);
        records.push(CsvRecord { values, problem });
    }
    Ok(records)
}

/// Reads uploaded data into its header and rows.
fn read_table(data: &[u8], delimiter: char, crlf: bool) -> Result<Table, DataError> {
    let text = std::str::from_utf8(data).map_err(|_| DataError::NotUtf8)?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut records = split_csv(text, delimiter, crlf)?.into_iter();
    let header = records.next().ok_or(DataError::NoHeader)?;
    if let Some(problem) = header.problem {
        return Err(DataError::BadHeader(problem));
    }
    Ok(Table {
        header: header.values,
        rows: records.collect(),
    })
}

/// How a job applies its rows: the object, the field of each column, where the Id and the
/// external id are.
struct Plan {
    operation: Operation,
    def: ObjectDef,
    /// The field of each column, in header order.
    columns: Vec<FieldDef>,
    /// The column holding the record Id.
    id_column: Option<usize>,
    /// Upsert: the external id field (canonical name) and its column.
    key: Option<(String, usize)>,
}

impl Plan {
    /// Checks the header against the object: every column a field, none twice, the Id column
    /// for an update, the external id column for an upsert.
    fn new(
        operation: Operation,
        def: &ObjectDef,
        external_id: Option<&str>,
        header: &[String],
    ) -> Result<Plan, DataError> {
        let mut columns: Vec<FieldDef> = Vec::with_capacity(header.len());
        for name in header {
            let field = def
                .field(name)
                .ok_or_else(|| DataError::UnknownField(name.clone()))?;
            if columns.iter().any(|c| c.name == field.name) {
                return Err(DataError::DuplicateField(name.clone()));
            }
            columns.push(field.clone());
        }
        let position = |name: &str| columns.iter().position(|c| c.name == name);
        let id_column = position("Id");
        if operation == Operation::Update && id_column.is_none() {
            return Err(DataError::MissingId);
        }
        let key = match (operation, external_id) {
            (Operation::Upsert, Some(field)) => {
                let column = position(field).ok_or_else(|| DataError::MissingKey(field.into()))?;
                Some((field.to_string(), column))
            }
            _ => None,
        };
        Ok(Plan {
            operation,
            def: def.clone(),
            columns,
            id_column,
            key,
        })
    }

    /// The record Id a row names (18 characters when it is an Id), or empty.
    fn row_id(&self, row: &CsvRecord) -> String {
        let raw = self
            .id_column
            .and_then(|c| row.values.get(c))
            .map(String::as_str)
            .filter(|v| !v.is_empty() && *v != NULL_VALUE)
            .unwrap_or_default();
        normalize_id(raw).unwrap_or_else(|| raw.to_string())
    }

    /// Applies one row as one record of a Collections request, on its own.
    fn apply(&self, org: &mut Org, row: &CsvRecord, now: chrono::DateTime<Utc>) -> RowResult {
        let failed = |error: RecordError| RowResult::Failed {
            id: self.row_id(row),
            error,
        };
        if let Some(problem) = &row.problem {
            return failed(RecordError::new("INVALID_FIELD", problem.clone(), vec![]));
        }
        if row.values.len() != self.columns.len() {
            return failed(RecordError::new(
                "INVALID_FIELD",
                format!(
                    "The row has {} values but the header has {} columns",
                    row.values.len(),
                    self.columns.len()
                ),
                vec![],
            ));
        }
        let mut fields = Map::new();
        for (i, (field, text)) in self.columns.iter().zip(&row.values).enumerate() {
            if field.name == "Id" || text.is_empty() {
                continue;
            }
            let value = if text == NULL_VALUE {
                Value::Null
            } else {
                match convert(field, text, i + 1) {
                    Ok(value) => value,
                    Err(error) => return failed(error),
                }
            };
            fields.insert(field.name.clone(), value);
        }
        let raw_id = self.row_id(row);
        match self.operation {
            Operation::Update => {
                if raw_id.is_empty() {
                    return failed(RecordError::new(
                        "MISSING_ARGUMENT",
                        "Id not specified in an update call",
                        vec!["Id".into()],
                    ));
                }
                match update_record(org, &self.def, &raw_id, &fields, now) {
                    Ok(id) => RowResult::Succeeded { id, created: false },
                    Err((id, error)) => RowResult::Failed { id, error },
                }
            }
            Operation::Upsert => {
                let Some((key, column)) = &self.key else {
                    return failed(RecordError::new(
                        "MISSING_ARGUMENT",
                        "The job has no external id field",
                        vec![],
                    ));
                };
                let value = if key == "Id" {
                    raw_id
                } else {
                    let value = row.values.get(*column).map(String::as_str);
                    match value.filter(|v| !v.is_empty() && *v != NULL_VALUE) {
                        Some(v) => v.to_string(),
                        None => {
                            return failed(RecordError::new(
                                "MISSING_ARGUMENT",
                                format!("{key} not specified"),
                                vec![key.clone()],
                            ))
                        }
                    }
                };
                match upsert_record(org, &self.def, key, &value, &fields) {
                    Ok((id, created)) => RowResult::Succeeded { id, created },
                    Err(error) => failed(error),
                }
            }
            Operation::Insert => {
                if !raw_id.is_empty() {
                    return failed(RecordError::new(
                        "INVALID_FIELD",
                        "cannot specify Id in an insert call",
                        vec!["Id".into()],
                    ));
                }
                match org.create(&self.def.name, &fields, now) {
                    Ok(id) => RowResult::Succeeded { id, created: true },
                    Err(error) => failed(error),
                }
            }
        }
    }
}

/// A CSV value as the JSON value the REST API would take for `field`; `column` counts from 1.
fn convert(field: &FieldDef, text: &str, column: usize) -> Result<Value, RecordError> {
    let refused = |xsd: &str| {
        RecordError::new(
            "INVALID_FIELD",
            format!(
                "Failed to deserialize field at col {column}. Due to, '{text}' is not a valid \
                 value for the type xsd:{xsd}"
            ),
            vec![field.name.clone()],
        )
    };
    let decimal = |text: &str| {
        text.parse::<Decimal>()
            .ok()
            .or_else(|| Decimal::from_scientific(text).ok())
    };
    match field.field_type {
        FieldType::Int => decimal(text)
            .filter(|d| d.fract().is_zero())
            .map(number)
            .ok_or_else(|| refused("int")),
        FieldType::Double | FieldType::Currency | FieldType::Percent => {
            decimal(text).map(number).ok_or_else(|| refused("double"))
        }
        FieldType::Boolean => {
            if text.eq_ignore_ascii_case("true") {
                Ok(Value::Bool(true))
            } else if text.eq_ignore_ascii_case("false") {
                Ok(Value::Bool(false))
            } else {
                Err(refused("boolean"))
            }
        }
        FieldType::Date => {
            let day = text.strip_suffix('Z').unwrap_or(text);
            NaiveDate::parse_from_str(day, "%Y-%m-%d")
                .ok()
                .filter(|_| day.len() == 10)
                .map(|d| Value::from(d.format("%Y-%m-%d").to_string()))
                .ok_or_else(|| refused("date"))
        }
        FieldType::Datetime => parse_datetime(text)
            .map(|t| Value::from(format_datetime(t)))
            .ok_or_else(|| refused("dateTime")),
        _ => Ok(Value::from(text)),
    }
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
            return bad_request(
                "BULK_API_ERROR",
                &format!(
                    "Found multiple contents for job: <{job_id}>, please 'Close' / 'Abort' / \
                     'Delete' the current Job then create a new Job and make sure you only do \
                     'PUT' once on a given Job."
                ),
            );
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
        return bad_request(
            "BULK_API_ERROR",
            &format!(
                "Found multiple contents for job: <{job_id}>, please 'Close' / 'Abort' / \
                 'Delete' the current Job then create a new Job and make sure you only do \
                 'PUT' once on a given Job."
            ),
        );
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

/// Runs an InProgress job to its end: reads its data, applies its rows (JobComplete), or
/// fails it with no row applied (Failed).
fn run(shared: &Shared, job: &mut Job, faults: &Faults) {
    let started = Instant::now();
    let ended = (|| {
        if job.fails {
            job.keep_rows();
            return Err(DataError::Injected);
        }
        let data = job.data.as_ref().ok_or(DataError::NoData)?;
        let table = read_table(data, job.format.delimiter, job.format.crlf)?;
        let def = shared.read_org().catalog().object(&job.object).cloned();
        let plan = def
            .ok_or_else(|| DataError::UnknownField(job.object.clone()))
            .and_then(|def| {
                Plan::new(
                    job.operation,
                    &def,
                    job.external_id.as_deref(),
                    &table.header,
                )
            });
        let plan = match plan {
            Ok(plan) => plan,
            Err(err) => {
                job.table = Some(table);
                return Err(err);
            }
        };
        job.results = apply(
            shared,
            &plan,
            &table.rows,
            faults,
            &job.api_version,
            job.client.as_deref(),
        );
        job.table = Some(table);
        Ok(())
    })();
    job.processing_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    match ended {
        Ok(()) => job.set_state(IngestState::JobComplete),
        Err(err) => {
            job.error_message = Some(err.to_string());
            job.set_state(IngestState::Failed);
        }
    }
}

/// Applies `rows` in transactions of [`TRANSACTION_ROWS`], each row on its own, and publishes
/// each transaction's change events as API writes of `version` by `client`.
fn apply(
    shared: &Shared,
    plan: &Plan,
    rows: &[CsvRecord],
    faults: &Faults,
    version: &str,
    client: Option<&str>,
) -> Vec<RowResult> {
    let mut results = Vec::with_capacity(rows.len());
    for chunk in rows.chunks(TRANSACTION_ROWS) {
        let mut org = shared.write_org();
        let now = Utc::now();
        {
            let mut faults = faults.0.lock().unwrap_or_else(|e| e.into_inner());
            for row in chunk {
                if faults.row_locked() {
                    results.push(RowResult::Failed {
                        id: plan.row_id(row),
                        error: RecordError::new(
                            "UNABLE_TO_LOCK_ROW",
                            "unable to obtain exclusive access to this record",
                            vec![],
                        ),
                    });
                    continue;
                }
                results.push(plan.apply(&mut org, row, now));
            }
        }
        let changes = org.take_changes();
        if !changes.is_empty() {
            let origin = Origin::rest(org.user_id(), version, client);
            shared.streaming.publish_transaction(changes, &origin);
        }
    }
    results
}

/// `STATUS_CODE:message:fields`, the fields (space-separated) followed by `--`.
fn error_text(error: &RecordError) -> String {
    let mut fields = String::new();
    for field in &error.fields {
        fields.push_str(field);
        fields.push(' ');
    }
    format!("{}:{}:{fields}--", error.status_code, error.message)
}

/// Which of a job's result files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ResultSet {
    Successful,
    Failed,
    Unprocessed,
}

impl ResultSet {
    /// The CSV of this set for `job`.
    fn render(self, job: &Job) -> String {
        let ending = job.format.line_ending();
        let delimiter = job.format.delimiter;
        let mut csv = String::new();
        let leading: &[&str] = match self {
            ResultSet::Successful => &["sf__Id", "sf__Created"],
            ResultSet::Failed => &["sf__Id", "sf__Error"],
            ResultSet::Unprocessed => &[],
        };
        let Some(table) = &job.table else {
            if !leading.is_empty() {
                csv_line(&mut csv, leading.iter().copied(), delimiter, ending);
            }
            return csv;
        };
        let header = table.header.iter().map(String::as_str);
        csv_line(
            &mut csv,
            leading.iter().copied().chain(header),
            delimiter,
            ending,
        );
        let width = table.header.len();
        for (i, row) in table.rows.iter().enumerate() {
            let result = job.results.get(i).unwrap_or(&RowResult::Unprocessed);
            let (first, second): (String, String) = match (self, result) {
                (ResultSet::Successful, RowResult::Succeeded { id, created }) => {
                    (id.clone(), created.to_string())
                }
                (ResultSet::Failed, RowResult::Failed { id, error }) => {
                    (id.clone(), error_text(error))
                }
                (ResultSet::Unprocessed, RowResult::Unprocessed) => (String::new(), String::new()),
                _ => continue,
            };
            let values = (0..width).map(|c| row.values.get(c).map_or("", String::as_str));
            let lead = [first.as_str(), second.as_str()];
            csv_line(
                &mut csv,
                lead[..leading.len()].iter().copied().chain(values),
                delimiter,
                ending,
            );
        }
        csv
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

/// `GET jobs/ingest/{id}/successfulResults/`.
pub(crate) async fn successful_results(
    State(shared): State<Arc<Shared>>,
    Extension(version): Extension<ApiVersion>,
    Path((_version, job_id)): Path<(String, String)>,
) -> Response {
    results(&shared, &version, &job_id, ResultSet::Successful)
}

/// `GET jobs/ingest/{id}/failedResults/`.
pub(crate) async fn failed_results(
    State(shared): State<Arc<Shared>>,
    Extension(version): Extension<ApiVersion>,
    Path((_version, job_id)): Path<(String, String)>,
) -> Response {
    results(&shared, &version, &job_id, ResultSet::Failed)
}

/// `GET jobs/ingest/{id}/unprocessedrecords/`.
pub(crate) async fn unprocessed_records(
    State(shared): State<Arc<Shared>>,
    Extension(version): Extension<ApiVersion>,
    Path((_version, job_id)): Path<(String, String)>,
) -> Response {
    results(&shared, &version, &job_id, ResultSet::Unprocessed)
}

#[cfg(test)]
mod tests;
