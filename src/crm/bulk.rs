//! Bulk API 2.0 query jobs for large pulls: create the job (`query` or `queryAll`), poll it
//! with backoff until JobComplete, then download its CSV results set by set (`maxRecords`,
//! `Sforce-Locator`), each set parsed into the same JSON records a REST query page holds.
//! Only one set's CSV text is in memory at a time, turned into records 2,000 at a time.
//!
//! When the org refuses Bulk for a query (the object is not supported, the SOQL form is not,
//! Bulk is off, the job ends Failed or Aborted) the answer is [`BulkQuery::Refused`]: the
//! caller reads the same query through REST instead.

use std::collections::HashMap;
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Map, Number, Value};

use super::client::{Body, Target};
use super::wire::decode_error;
use super::{CrmClient, CrmError, QueryPage};

/// Rows per result set when the caller does not say: large sets keep the call count low
/// (1M rows in 10 calls); a set is held as its CSV text (about 20 MB for 100,000 rows) and
/// parsed a page at a time.
pub const DEFAULT_BULK_MAX_RECORDS: usize = 100_000;

/// How a Bulk query is run.
#[derive(Debug, Clone)]
pub struct BulkOptions {
    /// Rows per result set (`maxRecords`).
    pub max_records: usize,
    /// The first wait between two status requests; it doubles up to `poll_max`.
    pub poll_initial: Duration,
    pub poll_max: Duration,
    /// How long the job may take before it is aborted and the query fails with a timeout.
    pub max_wait: Duration,
}

impl Default for BulkOptions {
    fn default() -> Self {
        BulkOptions {
            max_records: DEFAULT_BULK_MAX_RECORDS,
            poll_initial: Duration::from_millis(500),
            poll_max: Duration::from_secs(15),
            max_wait: Duration::from_secs(30 * 60),
        }
    }
}

/// The JSON type a CSV column becomes, as a REST query page would give it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    /// A JSON string (text, Ids, picklists, dates).
    Text,
    /// A JSON number, exactly as written (int, double, currency, percent).
    Number,
    /// `true` / `false`.
    Boolean,
    /// A datetime, rewritten from Bulk's `...000Z` to REST's `...000+0000`.
    DateTime,
}

impl ColumnType {
    /// The column type of a describe field type (`currency`, `boolean`, `datetime`, ...).
    pub fn from_describe(field_type: &str) -> ColumnType {
        match field_type {
            "int" | "double" | "currency" | "percent" | "long" => ColumnType::Number,
            "boolean" => ColumnType::Boolean,
            "datetime" => ColumnType::DateTime,
            _ => ColumnType::Text,
        }
    }
}

/// Column types by column name (`Amount`, `Account.AnnualRevenue`); a column not named is
/// text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ColumnTypes(pub HashMap<String, ColumnType>);

impl ColumnTypes {
    /// The types of every field of a `describe` answer (`{"fields": [{"name", "type"}]}`),
    /// under `prefix` (`""` for the queried object, `"Account."` for a parent).
    pub fn add_describe(&mut self, prefix: &str, describe: &Value) {
        let fields = describe.get("fields").and_then(Value::as_array);
        for field in fields.into_iter().flatten() {
            if let (Some(name), Some(ty)) = (
                field.get("name").and_then(Value::as_str),
                field.get("type").and_then(Value::as_str),
            ) {
                self.0
                    .insert(format!("{prefix}{name}"), ColumnType::from_describe(ty));
            }
        }
    }

    /// Sets one column's type.
    pub fn set(&mut self, column: &str, ty: ColumnType) {
        self.0.insert(column.to_string(), ty);
    }

    fn get(&self, column: &str) -> ColumnType {
        self.0.get(column).copied().unwrap_or(ColumnType::Text)
    }
}

/// Why the org would not run a query through Bulk: read it through REST instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkRefusal {
    /// The CRM's error code (`INVALIDENTITY`, `API_ERROR`, ...) or the job's final state
    /// (`Failed`, `Aborted`).
    pub code: String,
    pub message: String,
}

/// The start of a Bulk query.
#[derive(Debug)]
pub enum BulkQuery {
    /// The job completed; read its rows with [`BulkResults::next_page`].
    Ready(BulkResults),
    /// The org refused Bulk for this query; use REST.
    Refused(BulkRefusal),
}

/// Error codes with which an org refuses a query job it cannot run, for which REST still
/// works: an object the Bulk API does not support, a SOQL form it does not support, Bulk API
/// off or not permitted, a version without query jobs.
const REFUSAL_CODES: &[&str] = &[
    "INVALIDENTITY",
    "API_ERROR",
    "INVALIDJOB",
    "FEATURE_NOT_ENABLED",
    "API_DISABLED_FOR_ORG",
    "INSUFFICIENT_ACCESS",
    "NOT_FOUND",
    "LIMIT_EXCEEDED",
];

/// Whether `error` from a job creation means "use REST for this query".
pub(super) fn refusal(error: &CrmError) -> Option<BulkRefusal> {
    match error {
        CrmError::Api {
            status,
            error_code,
            message,
            ..
        } if (400..500).contains(status) && REFUSAL_CODES.contains(&error_code.as_str()) => {
            Some(BulkRefusal {
                code: error_code.clone(),
                message: message.clone(),
            })
        }
        _ => None,
    }
}

/// The Id of the job a creation request answered with (`what` names the request), checked
/// to be an Id before it goes into a path.
pub(super) fn job_id_of(what: &str, status: u16, body: &[u8]) -> Result<String, CrmError> {
    let job: Value = serde_json::from_slice(body)
        .map_err(|e| decode_error(what, status, format!("not JSON ({e})"), body))?;
    let Some(job_id) = job.get("id").and_then(Value::as_str).map(str::to_string) else {
        return Err(decode_error(what, status, "the job has no id", body));
    };
    if job_id.is_empty() || !job_id.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(decode_error(
            what,
            status,
            format!("{job_id:?} is not a job Id"),
            body,
        ));
    }
    Ok(job_id)
}

/// A completed job whose result sets are read one at a time.
#[derive(Debug)]
pub struct BulkResults {
    client: CrmClient,
    job_id: String,
    object: String,
    total: u64,
    delimiter: char,
    types: ColumnTypes,
    max_records: usize,
    /// `None` before the first set; `Some(None)` after the last one.
    locator: Option<Option<String>>,
    /// The result set being read, while it has rows left.
    set: Option<Box<ResultSet>>,
    read: u64,
}

impl BulkResults {
    pub fn job_id(&self) -> &str {
        &self.job_id
    }

    /// The queried object.
    pub fn object(&self) -> &str {
        &self.object
    }

    /// Rows the job found (`numberRecordsProcessed`).
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The next result set as a query page (`done` on the last one, no `nextRecordsUrl`),
    /// or `None` when every set was read. Retried on transient failures (a set can be
    /// fetched again by its locator).
    pub async fn next_page(&mut self) -> Result<Option<QueryPage>, CrmError> {
        loop {
            if let Some(set) = self.set.as_mut() {
                let records = set.take(self.delimiter, PAGE_ROWS)?;
                let set_read = set.finished();
                if set_read {
                    self.set = None;
                }
                let done = set_read && matches!(self.locator, Some(None));
                if !records.is_empty() || done {
                    self.read += records.len() as u64;
                    return Ok(Some(QueryPage {
                        total_size: self.total.max(self.read),
                        done,
                        next_records_url: None,
                        records,
                    }));
                }
                continue;
            }
            let mut query = vec![("maxRecords".to_string(), self.max_records.to_string())];
            match &self.locator {
                Some(None) => return Ok(None),
                Some(Some(locator)) => query.push(("locator".to_string(), locator.clone())),
                None => {}
            }
            let target = Target {
                path: self
                    .client
                    .data_path(&format!("jobs/query/{}/results", self.job_id)),
                query,
            };
            let what = format!("the results of bulk query job {}", self.job_id);
            let raw = self
                .client
                .execute(Method::GET, target, Body::None, true, &what)
                .await?;
            let header = |name: &str| {
                raw.headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::trim)
                    .map(str::to_string)
            };
            let next = header("sforce-locator").filter(|l| !l.is_empty() && l != "null");
            let expected = header("sforce-numberofrecords").and_then(|v| v.parse::<usize>().ok());
            let status = raw.status;
            let text = String::from_utf8(raw.body).map_err(|e| {
                let reason = format!("not UTF-8 ({})", e.utf8_error());
                decode_error(&what, status, reason, e.as_bytes())
            })?;
            self.set = Some(Box::new(ResultSet::open(
                what,
                status,
                text,
                self.delimiter,
                &self.types,
                expected,
            )?));
            self.locator = Some(next);
        }
    }

    /// Deletes the job and its results from the org (they count against the org's daily
    /// result storage until then).
    pub async fn delete(self) -> Result<(), CrmError> {
        self.client.delete_bulk_job(&self.job_id).await
    }
}

impl CrmClient {
    /// Runs `soql` as a Bulk API 2.0 query job (`queryAll` when `include_deleted`): creates
    /// the job, polls it with doubling waits until it completes, and hands back its results
    /// to read set by set, typed by `types`. [`BulkQuery::Refused`] when the org will not run
    /// it through Bulk (read it through REST); an error for anything else (transport,
    /// session, quota, a timeout after which the job is aborted).
    pub async fn bulk_query(
        &self,
        soql: &str,
        include_deleted: bool,
        types: &ColumnTypes,
        options: &BulkOptions,
    ) -> Result<BulkQuery, CrmError> {
        let operation = if include_deleted { "queryAll" } else { "query" };
        let body = json!({
            "operation": operation,
            "query": soql,
            "contentType": "CSV",
            "columnDelimiter": "COMMA",
            "lineEnding": "LF",
        });
        let (job_id, job) = match self.create_job("query", &body).await? {
            Ok(created) => created,
            Err(refused) => return Ok(BulkQuery::Refused(refused)),
        };
        let object = job
            .get("object")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let info = self
            .wait_for_job(&format!("jobs/query/{job_id}"), &job_id, options)
            .await?;
        if let state @ ("Failed" | "Aborted") = info
            .get("state")
            .and_then(Value::as_str)
            .unwrap_or_default()
        {
            let message = info
                .get("errorMessage")
                .and_then(Value::as_str)
                .unwrap_or("the job ended without results")
                .to_string();
            tracing::info!(job = %job_id, state, %message, "bulk query job did not complete");
            return Ok(BulkQuery::Refused(BulkRefusal {
                code: state.to_string(),
                message,
            }));
        }
        let total = info
            .get("numberRecordsProcessed")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let delimiter = match info.get("columnDelimiter").and_then(Value::as_str) {
            Some("TAB") => '\t',
            Some("PIPE") => '|',
            Some("SEMICOLON") => ';',
            Some("CARET") => '^',
            Some("BACKQUOTE") => '`',
            _ => ',',
        };
        Ok(BulkQuery::Ready(BulkResults {
            client: self.clone(),
            job_id,
            object,
            total,
            delimiter,
            types: types.clone(),
            max_records: options.max_records.max(1),
            locator: None,
            set: None,
            read: 0,
        }))
    }

    /// Creates a Bulk API 2.0 job (`POST jobs/query` or `jobs/ingest`, by `kind`) and gives
    /// its Id and information, or the org's refusal. Not retried: a retry could leave a second
    /// job running.
    pub(super) async fn create_job(
        &self,
        kind: &str,
        body: &Value,
    ) -> Result<Result<(String, Value), BulkRefusal>, CrmError> {
        let what = format!("the creation of a bulk {kind} job");
        let target = Target::path(self.data_path(&format!("jobs/{kind}")));
        let created = match self
            .execute(Method::POST, target, Body::Json(body), false, &what)
            .await
        {
            Ok(raw) => raw,
            Err(error) => {
                return match refusal(&error) {
                    Some(refused) => {
                        tracing::info!(code = %refused.code, message = %refused.message, "the CRM refused a bulk {kind} job");
                        Ok(Err(refused))
                    }
                    None => Err(error),
                }
            }
        };
        let job_id = job_id_of(&what, created.status, &created.body)?;
        let job = serde_json::from_slice(&created.body).unwrap_or(Value::Null);
        Ok(Ok((job_id, job)))
    }

    /// `GET jobs/query/{id}`: the job's information (`state`, `numberRecordsProcessed`, ...).
    pub async fn bulk_job_info(&self, job_id: &str) -> Result<Value, CrmError> {
        let what = format!("the status of bulk query job {job_id}");
        self.get_json(self.data_path(&format!("jobs/query/{job_id}")), &what)
            .await
    }

    /// Deletes a query job and its results (`DELETE jobs/query/{id}`).
    pub async fn delete_bulk_job(&self, job_id: &str) -> Result<(), CrmError> {
        let what = format!("the deletion of bulk query job {job_id}");
        let target = Target::path(self.data_path(&format!("jobs/query/{job_id}")));
        self.execute(Method::DELETE, target, Body::None, true, &what)
            .await?;
        Ok(())
    }
}

/// Reads a CSV text row by row, so a result set is held as its text and parsed a page at a
/// time rather than all at once.
pub(super) struct CsvCursor<'a> {
    text: &'a str,
    /// Byte offset of the next row.
    pos: usize,
    /// Line number of the next row, for errors.
    line: usize,
    delimiter: char,
}

impl<'a> CsvCursor<'a> {
    /// A cursor at the start of `text`.
    pub(super) fn new(text: &'a str, delimiter: char) -> CsvCursor<'a> {
        CsvCursor {
            text,
            pos: 0,
            line: 1,
            delimiter,
        }
    }

    /// The next row, `None` at the end of the text. A field is `None` when empty and not
    /// quoted; a quoted field may hold delimiters, quotes (doubled) and line breaks.
    pub(super) fn next_row(&mut self) -> Result<Option<Vec<Option<String>>>, String> {
        let rest = &self.text[self.pos..];
        if rest.is_empty() {
            return Ok(None);
        }
        let delimiter = self.delimiter;
        let mut row: Vec<Option<String>> = Vec::new();
        let mut field = String::new();
        let mut quoted = false;
        let end_field = |row: &mut Vec<Option<String>>, field: &mut String, quoted: &mut bool| {
            let value = std::mem::take(field);
            row.push(if value.is_empty() && !*quoted {
                None
            } else {
                Some(value)
            });
            *quoted = false;
        };
        let mut chars = rest.char_indices().peekable();
        while let Some((at, c)) = chars.next() {
            match c {
                '"' if field.is_empty() && !quoted => {
                    quoted = true;
                    loop {
                        match chars.next() {
                            Some((_, '"')) if matches!(chars.peek(), Some((_, '"'))) => {
                                chars.next();
                                field.push('"');
                            }
                            Some((_, '"')) => break,
                            Some((_, ch)) => {
                                if ch == '\n' {
                                    self.line += 1;
                                }
                                field.push(ch);
                            }
                            None => {
                                return Err(format!(
                                    "line {}: a quoted field is not closed",
                                    self.line
                                ))
                            }
                        }
                    }
                    match chars.peek() {
                        None | Some((_, '\r' | '\n')) => {}
                        Some(&(_, next)) if next == delimiter => {}
                        Some(&(_, next)) => {
                            return Err(format!(
                                "line {}: {next:?} after a closing quote",
                                self.line
                            ))
                        }
                    }
                }
                c if c == delimiter => end_field(&mut row, &mut field, &mut quoted),
                '\r' if matches!(chars.peek(), Some((_, '\n'))) => {}
                '\n' => {
                    end_field(&mut row, &mut field, &mut quoted);
                    self.pos += at + 1;
                    self.line += 1;
                    return Ok(Some(row));
                }
                c => field.push(c),
            }
        }
        self.pos = self.text.len();
        if !field.is_empty() || quoted || !row.is_empty() {
            end_field(&mut row, &mut field, &mut quoted);
        }
        Ok(Some(row))
    }
}

/// Splits CSV text into rows of fields: quoted fields may hold the delimiter, quotes (`""`)
/// and line breaks; `None` is an empty field (null). Lines end in LF or CRLF.
#[cfg(test)]
fn parse_csv(text: &str, delimiter: char) -> Result<Vec<Vec<Option<String>>>, String> {
    let mut cursor = CsvCursor::new(text, delimiter);
    let mut rows = Vec::new();
    while let Some(row) = cursor.next_row()? {
        rows.push(row);
    }
    Ok(rows)
}

/// The JSON value of one CSV field of a column type.
fn typed(value: Option<String>, ty: ColumnType, column: &str) -> Result<Value, String> {
    let Some(text) = value.filter(|t| !t.is_empty()) else {
        return Ok(Value::Null);
    };
    Ok(match ty {
        ColumnType::Text => Value::String(text),
        ColumnType::Boolean => match text.as_str() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            other => return Err(format!("column {column}: {other:?} is not true or false")),
        },
        ColumnType::Number => match serde_json::from_str::<Number>(&text) {
            Ok(n) => Value::Number(n),
            Err(_) => return Err(format!("column {column}: {text:?} is not a number")),
        },
        ColumnType::DateTime => match text.strip_suffix('Z') {
            Some(utc) => Value::String(format!("{utc}+0000")),
            None => Value::String(text),
        },
    })
}

/// Records per page handed out of a result set: as many as a REST query page holds, so a
/// set of any size is parsed and stored a page at a time.
const PAGE_ROWS: usize = 2000;

/// The columns of a result set (its header row), each with the type its values are parsed as.
#[derive(Debug)]
struct Columns {
    names: Vec<String>,
    types: Vec<ColumnType>,
}

impl Columns {
    fn from_header(header: Vec<Option<String>>, types: &ColumnTypes) -> Result<Columns, String> {
        let names: Vec<String> = header
            .into_iter()
            .map(|h| h.ok_or_else(|| "an empty column name in the header".to_string()))
            .collect::<Result<_, _>>()?;
        let types = names.iter().map(|c| types.get(c)).collect();
        Ok(Columns { names, types })
    }

    /// Data row `n` (from 1) as a REST query record: columns in header order, `Parent.Field`
    /// columns nested under `Parent` (`null` when every field of the parent is empty, as REST
    /// gives a null lookup), values typed by their column.
    fn record(&self, row: Vec<Option<String>>, n: usize) -> Result<Map<String, Value>, String> {
        if row.len() != self.names.len() {
            return Err(format!(
                "row {n} has {} fields for {} columns",
                row.len(),
                self.names.len()
            ));
        }
        let mut record = Map::new();
        for ((column, ty), value) in self.names.iter().zip(&self.types).zip(row) {
            let value = typed(value, *ty, column)?;
            insert_path(&mut record, column, value);
        }
        null_empty_parents(&mut record);
        Ok(record)
    }
}

/// One downloaded result set: its CSV text, turned into records a page at a time. Only the
/// text is held (about a tenth of the memory of the records it makes).
#[derive(Debug)]
struct ResultSet {
    what: String,
    status: u16,
    text: String,
    /// Where the next row starts, and its line number.
    pos: usize,
    line: usize,
    columns: Columns,
    /// `Sforce-NumberOfRecords`, checked once the set is read.
    expected: Option<usize>,
    rows: usize,
}

impl ResultSet {
    /// Reads the header row of a set's `text`.
    fn open(
        what: String,
        status: u16,
        text: String,
        delimiter: char,
        types: &ColumnTypes,
        expected: Option<usize>,
    ) -> Result<ResultSet, CrmError> {
        let mut cursor = CsvCursor::new(&text, delimiter);
        let header = cursor
            .next_row()
            .and_then(|h| Columns::from_header(h.unwrap_or_default(), types));
        let (pos, line) = (cursor.pos, cursor.line);
        match header {
            Ok(columns) => Ok(ResultSet {
                what,
                status,
                text,
                pos,
                line,
                columns,
                expected,
                rows: 0,
            }),
            Err(reason) => Err(decode_error(&what, status, reason, text.as_bytes())),
        }
    }

    /// Every row has been read.
    fn finished(&self) -> bool {
        self.pos >= self.text.len()
    }

    /// The next `max` records at most; once the last row is read, the count is checked
    /// against `Sforce-NumberOfRecords`.
    fn take(&mut self, delimiter: char, max: usize) -> Result<Vec<Map<String, Value>>, CrmError> {
        let mut cursor = CsvCursor {
            text: &self.text,
            pos: self.pos,
            line: self.line,
            delimiter,
        };
        let mut records = Vec::new();
        let mut failure = None;
        while records.len() < max {
            let row = match cursor.next_row() {
                Ok(Some(row)) => row,
                Ok(None) => break,
                Err(reason) => {
                    failure = Some(reason);
                    break;
                }
            };
            match self.columns.record(row, self.rows + records.len() + 1) {
                Ok(record) => records.push(record),
                Err(reason) => {
                    failure = Some(reason);
                    break;
                }
            }
        }
        (self.pos, self.line) = (cursor.pos, cursor.line);
        self.rows += records.len();
        if failure.is_none() && self.finished() {
            failure = self
                .expected
                .filter(|expected| *expected != self.rows)
                .map(|expected| {
                    format!(
                        "Sforce-NumberOfRecords says {expected} rows, the CSV holds {}",
                        self.rows
                    )
                });
        }
        match failure {
            Some(reason) => Err(decode_error(
                &self.what,
                self.status,
                reason,
                self.text.as_bytes(),
            )),
            None => Ok(records),
        }
    }
}

/// A whole result set's rows as REST query records (see [`Columns::record`]), or why not.
#[cfg(test)]
fn parse_csv_records(
    text: &str,
    delimiter: char,
    types: &ColumnTypes,
) -> Result<Vec<Map<String, Value>>, String> {
    ResultSet::open(String::new(), 200, text.to_string(), delimiter, types, None)
        .and_then(|mut set| set.take(delimiter, usize::MAX))
        .map_err(|e| e.to_string())
}

fn insert_path(record: &mut Map<String, Value>, path: &str, value: Value) {
    match path.split_once('.') {
        None => {
            record.insert(path.to_string(), value);
        }
        Some((parent, rest)) => {
            let entry = record
                .entry(parent.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(nested) = entry {
                insert_path(nested, rest, value);
            }
        }
    }
}

/// A parent object all of whose fields are null is a null lookup.
fn null_empty_parents(record: &mut Map<String, Value>) {
    for value in record.values_mut() {
        if let Value::Object(nested) = value {
            null_empty_parents(nested);
            if nested.values().all(Value::is_null) {
                *value = Value::Null;
            }
        }
    }
}

#[cfg(test)]
mod tests;
