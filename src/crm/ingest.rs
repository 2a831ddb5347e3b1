//! Bulk API 2.0 ingest jobs for large write-backs: the records go up as one CSV upload
//! (`POST jobs/ingest`, `PUT jobs/ingest/{id}/batches`, `PATCH` to UploadComplete), the job
//! is polled until it ends, and each record's outcome is read back: from the job's counts
//! when every record succeeded, else from its `successfulResults`, `failedResults` and
//! `unprocessedrecords` CSVs. A job costs about six API calls whatever its size, where
//! composite writes cost one per 1,000 records.
//!
//! CSV conventions (the "Prepare CSV Files" and "Valid CSV Record Rows" pages): the header
//! holds field API names; a field a record does not write is left empty (an empty value
//! leaves the field as it is on update); `#N/A` sets a field to null; every other value is
//! quoted, quotes doubled. When the org refuses ingest jobs the answer is
//! [`Ingested::Refused`]: the caller writes the records through composite calls instead.

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use reqwest::Method;
use serde_json::{json, Value};

use super::bulk::{BulkOptions, BulkRefusal, CsvCursor};
use super::client::{Body, Target};
use super::wire::decode_error;
use super::{CrmClient, CrmError, RecordError, RecordResult, RecordWrite};

/// The value that sets a field to null.
const NULL: &str = "#N/A";

/// What an ingest job does with its records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestOperation {
    /// Updates by Id.
    Update,
    /// Upserts matched on an external id field.
    Upsert { external_id_field: String },
}

impl IngestOperation {
    /// The column each record is known by in the results: `Id`, or the external id field.
    fn key_column(&self) -> &str {
        match self {
            IngestOperation::Update => "Id",
            IngestOperation::Upsert { external_id_field } => external_id_field,
        }
    }
}

/// The records of one ingest job as the CSV to upload, built record by record.
#[derive(Debug)]
pub struct IngestCsv {
    object: String,
    operation: IngestOperation,
    /// The fields after the key column, in header order.
    fields: Vec<String>,
    text: String,
    /// Each record's key (Id or external id value), in upload order.
    keys: Vec<String>,
}

impl IngestCsv {
    /// An empty upload for records of `object` that write some of `fields` (the key column
    /// comes first in any case).
    pub fn new(object: &str, operation: IngestOperation, fields: &BTreeSet<String>) -> IngestCsv {
        let key = operation.key_column().to_string();
        let fields: Vec<String> = fields.iter().filter(|f| **f != key).cloned().collect();
        let mut text = String::new();
        for (n, name) in std::iter::once(&key).chain(&fields).enumerate() {
            if n > 0 {
                text.push(',');
            }
            text.push_str(name);
        }
        text.push('\n');
        IngestCsv {
            object: object.to_string(),
            operation,
            fields,
            text,
            keys: Vec::new(),
        }
    }

    /// Whether the header has a column for every field `record` writes.
    pub fn fits(&self, record: &RecordWrite) -> bool {
        let key = self.operation.key_column();
        record
            .fields
            .keys()
            .all(|f| f == key || self.fields.iter().any(|h| h == f))
    }

    /// Adds a record (it must [`fit`](IngestCsv::fits)). A value that is an object or a
    /// list, or an update without an Id, is refused.
    pub fn push(&mut self, record: &RecordWrite) -> Result<(), CrmError> {
        let key = match &self.operation {
            IngestOperation::Update => record.id.clone(),
            IngestOperation::Upsert { external_id_field } => record
                .fields
                .get(external_id_field)
                .and_then(|v| cell(v).ok().flatten()),
        }
        .ok_or_else(|| {
            CrmError::InvalidRequest(format!(
                "a record of {} has no {} to write it by",
                self.object,
                self.operation.key_column()
            ))
        })?;
        let mut row = String::new();
        quote_into(&mut row, &key);
        for name in &self.fields {
            row.push(',');
            let Some(value) = record.fields.get(name) else {
                continue;
            };
            match cell(value) {
                Ok(Some(text)) => quote_into(&mut row, &text),
                Ok(None) => row.push_str(NULL),
                Err(kind) => {
                    return Err(CrmError::InvalidRequest(format!(
                        "{name} of {} {key} is {kind}, which a CSV upload cannot carry",
                        self.object
                    )))
                }
            }
        }
        row.push('\n');
        self.text.push_str(&row);
        self.keys.push(key);
        Ok(())
    }

    /// Records added.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Bytes of CSV so far.
    pub fn bytes(&self) -> usize {
        self.text.len()
    }
}

/// A JSON value as CSV text: `None` for null (and an empty text, which the CRM stores as
/// null); `Err` names a value CSV cannot carry.
fn cell(value: &Value) -> Result<Option<String>, &'static str> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) if s.is_empty() => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        Value::Number(n) => Ok(Some(n.to_string())),
        Value::Bool(b) => Ok(Some(b.to_string())),
        Value::Array(_) => Err("a list"),
        Value::Object(_) => Err("an object"),
    }
}

fn quote_into(out: &mut String, text: &str) {
    out.push('"');
    out.push_str(&text.replace('"', "\"\""));
    out.push('"');
}

/// How an ingest job ended.
#[derive(Debug)]
pub enum Ingested {
    /// Each record's outcome, in upload order (a record the job reported nothing for has a
    /// `NO_RESULT` failure).
    Done(Vec<RecordResult>),
    /// The org will not run the job; nothing was written.
    Refused(BulkRefusal),
}

impl CrmClient {
    /// Writes the records of `csv` through one Bulk API 2.0 ingest job and waits for it.
    /// Creating the job is not retried (a retry could leave a second job); the upload, the
    /// status requests and the result downloads are.
    pub async fn ingest(
        &self,
        csv: IngestCsv,
        options: &BulkOptions,
    ) -> Result<Ingested, CrmError> {
        let (operation, external_id) = match &csv.operation {
            IngestOperation::Update => ("update", None),
            IngestOperation::Upsert { external_id_field } => ("upsert", Some(external_id_field)),
        };
        let mut body = json!({
            "object": csv.object,
            "operation": operation,
            "contentType": "CSV",
            "columnDelimiter": "COMMA",
            "lineEnding": "LF",
        });
        if let (Some(field), Some(map)) = (external_id, body.as_object_mut()) {
            map.insert("externalIdFieldName".into(), Value::from(field.clone()));
        }
        let job_id = match self.create_job("ingest", &body).await? {
            Ok((job_id, _)) => job_id,
            Err(refused) => return Ok(Ingested::Refused(refused)),
        };
        let job = format!("jobs/ingest/{job_id}");
        let uploaded = async {
            let what = format!("the upload of bulk ingest job {job_id}");
            let target = Target::path(self.data_path(&format!("{job}/batches")));
            self.execute(
                Method::PUT,
                target,
                Body::Csv(csv.text.as_bytes()),
                true,
                &what,
            )
            .await?;
            let what = format!("the closing of bulk ingest job {job_id}");
            let close = json!({"state": "UploadComplete"});
            let target = Target::path(self.data_path(&job));
            self.execute(Method::PATCH, target, Body::Json(&close), true, &what)
                .await
        }
        .await;
        if let Err(error) = uploaded {
            // Nothing was processed: an open job never runs, and is aborted so it does not
            // linger in the org's job list.
            self.abort_job(&job, &job_id).await;
            return Err(error);
        }
        let info = self.wait_for_job(&job, &job_id, options).await?;
        let count = |name: &str| info.get(name).and_then(Value::as_u64).unwrap_or(0);
        let state = info
            .get("state")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let all = csv.len() as u64;
        if state == "JobComplete"
            && count("numberRecordsProcessed") == all
            && count("numberRecordsFailed") == 0
        {
            let results = csv
                .keys
                .iter()
                .map(|_| RecordResult {
                    id: None,
                    success: true,
                    created: None,
                    errors: Vec::new(),
                })
                .collect();
            return Ok(Ingested::Done(results));
        }
        if state != "JobComplete" && count("numberRecordsProcessed") == 0 {
            let message = info
                .get("errorMessage")
                .and_then(Value::as_str)
                .unwrap_or("the job ended without processing a record")
                .to_string();
            return Ok(Ingested::Refused(BulkRefusal {
                code: state.to_string(),
                message,
            }));
        }
        let mut results: Vec<Option<RecordResult>> = csv.keys.iter().map(|_| None).collect();
        let mut at: HashMap<&str, Vec<usize>> = HashMap::new();
        for (n, key) in csv.keys.iter().enumerate().rev() {
            at.entry(key.as_str()).or_default().push(n);
        }
        let key_column = csv.operation.key_column();
        for file in ["successfulResults", "failedResults", "unprocessedrecords"] {
            let what = format!("the {file} of bulk ingest job {job_id}");
            let target = Target::path(self.data_path(&format!("{job}/{file}/")));
            let raw = self
                .execute(Method::GET, target, Body::None, true, &what)
                .await?;
            let text = String::from_utf8_lossy(&raw.body);
            for (key, result) in result_rows(&text, file, key_column)
                .map_err(|reason| decode_error(&what, raw.status, reason, &raw.body))?
            {
                if let Some(n) = at.get_mut(key.as_str()).and_then(Vec::pop) {
                    results[n] = Some(result);
                }
            }
        }
        Ok(Ingested::Done(
            results
                .into_iter()
                .map(|r| {
                    r.unwrap_or_else(|| {
                        failure(
                            "NO_RESULT",
                            "the bulk job reported no result for this record",
                        )
                    })
                })
                .collect(),
        ))
    }

    /// Polls `job` (`jobs/query/{id}` or `jobs/ingest/{id}`) with doubling waits until it
    /// completes, fails or is aborted; returns its last information. A job still running
    /// after `options.max_wait` is aborted and the wait fails with a timeout.
    pub(super) async fn wait_for_job(
        &self,
        job: &str,
        job_id: &str,
        options: &BulkOptions,
    ) -> Result<Value, CrmError> {
        let started = Instant::now();
        let mut wait = options.poll_initial;
        loop {
            let what = format!("the state of bulk job {job_id}");
            let target = Target::path(self.data_path(job));
            let raw = self
                .execute(Method::GET, target, Body::None, true, &what)
                .await?;
            let info: Value = serde_json::from_slice(&raw.body).map_err(|e| {
                decode_error(&what, raw.status, format!("not JSON ({e})"), &raw.body)
            })?;
            let state = info
                .get("state")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if matches!(state, "JobComplete" | "Failed" | "Aborted") {
                return Ok(info);
            }
            if started.elapsed() + wait > options.max_wait {
                self.abort_job(job, job_id).await;
                return Err(CrmError::Timeout {
                    what: format!("bulk job {job_id}"),
                    timeout: options.max_wait,
                });
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(options.poll_max);
        }
    }

    /// Asks the org to abort `job`; a failure is only logged (the caller is already
    /// reporting a failure of its own).
    pub(super) async fn abort_job(&self, job: &str, job_id: &str) {
        let what = format!("the abort of bulk job {job_id}");
        let body = json!({"state": "Aborted"});
        let target = Target::path(self.data_path(job));
        if let Err(e) = self
            .execute(Method::PATCH, target, Body::Json(&body), true, &what)
            .await
        {
            tracing::warn!(job = %job_id, error = %e, "cannot abort a bulk job");
        }
    }
}

fn failure(code: &str, message: &str) -> RecordResult {
    RecordResult {
        id: None,
        success: false,
        created: None,
        errors: vec![RecordError {
            status_code: code.to_string(),
            message: message.to_string(),
            fields: Vec::new(),
        }],
    }
}

/// The rows of one results file as (key, result): `successfulResults` (`sf__Id`,
/// `sf__Created`), `failedResults` (`sf__Id`, `sf__Error` as `CODE:message:fields`) or
/// `unprocessedrecords` (the uploaded columns only).
fn result_rows(
    text: &str,
    file: &str,
    key_column: &str,
) -> Result<Vec<(String, RecordResult)>, String> {
    let mut cursor = CsvCursor::new(text, ',');
    let Some(header) = cursor.next_row()? else {
        return Ok(Vec::new());
    };
    let column = |name: &str| header.iter().position(|h| h.as_deref() == Some(name));
    let key_at =
        column(key_column).ok_or_else(|| format!("the results have no {key_column} column"))?;
    let (id_at, created_at, error_at) =
        (column("sf__Id"), column("sf__Created"), column("sf__Error"));
    let mut rows = Vec::new();
    while let Some(row) = cursor.next_row()? {
        let get = |at: Option<usize>| at.and_then(|i| row.get(i).cloned().flatten());
        let Some(key) = get(Some(key_at)) else {
            continue;
        };
        let result = match file {
            "successfulResults" => RecordResult {
                id: get(id_at),
                success: true,
                created: get(created_at).map(|c| c.eq_ignore_ascii_case("true")),
                errors: Vec::new(),
            },
            "failedResults" => {
                let error = get(error_at).unwrap_or_default();
                let mut parts = error.splitn(2, ':');
                let code = parts.next().unwrap_or_default().to_string();
                let rest = parts.next().unwrap_or_default();
                // The message may hold colons; the fields come after the last one.
                let (message, fields) = match rest.rsplit_once(':') {
                    Some((message, fields)) => (message, fields),
                    None => (rest, ""),
                };
                // `Name --`, `--` alone when there are none.
                let fields = fields
                    .split(|c: char| c == ',' || c.is_whitespace())
                    .filter(|f| !f.is_empty() && *f != "--")
                    .map(str::to_string)
                    .collect();
                RecordResult {
                    id: get(id_at),
                    success: false,
                    created: None,
                    errors: vec![RecordError {
                        status_code: if code.is_empty() {
                            "UNKNOWN".into()
                        } else {
                            code
                        },
                        message: message.to_string(),
                        fields,
                    }],
                }
            }
            _ => failure(
                "NOT_PROCESSED",
                "the bulk job ended before it processed this record",
            ),
        };
        rows.push((key, result));
    }
    Ok(rows)
}

#[cfg(test)]
#[path = "ingest_tests.rs"]
mod tests;
