//! Reading a job's uploaded data: the CSV split into records with the job's column delimiter
//! and line ending, the header row checked against the job's object (every column a field,
//! none twice, the Id column an update needs, the external id column an upsert needs), and
//! each value converted by its field's type into what the REST API would take. Data the job
//! cannot read is a [`DataError`], and the job ends Failed with no row applied.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde_json::Value;

use super::{Operation, NULL_VALUE};
use crate::emulator::org::{format_datetime, normalize_id, number, parse_datetime, RecordError};
use crate::metadata::{FieldDef, FieldType, ObjectDef};

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
    /// The job was made to fail ([`IngestJobs::fail_jobs`](super::IngestJobs::fail_jobs)).
    #[error(
        "InternalServerError : The job failed while it ran and its batches were not processed; \
         load the records through the REST API"
    )]
    Injected,
}

/// One record of CSV data: its values and, when its quoting is broken, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct CsvRecord {
    pub(super) values: Vec<String>,
    pub(super) problem: Option<String>,
}

/// A job's data as read: the header as uploaded, then the rows in upload order.
#[derive(Debug, Clone)]
pub(super) struct Table {
    pub(super) header: Vec<String>,
    pub(super) rows: Vec<CsvRecord>,
}

/// Splits CSV text into records: `delimiter` between values, `\r\n` (`crlf`) or `\n` between
/// records, double quotes around values that need them. Blank lines are skipped. A record
/// ending in the other line ending is refused, as a real org refuses it.
pub(super) fn split_csv(
    text: &str,
    delimiter: char,
    crlf: bool,
) -> Result<Vec<CsvRecord>, DataError> {
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
pub(super) fn read_table(data: &[u8], delimiter: char, crlf: bool) -> Result<Table, DataError> {
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
/// external id are. Built here from the header; `apply.rs` applies the rows with it.
pub(super) struct Plan {
    pub(super) operation: Operation,
    pub(super) def: ObjectDef,
    /// The field of each column, in header order.
    pub(super) columns: Vec<FieldDef>,
    /// The column holding the record Id.
    id_column: Option<usize>,
    /// Upsert: the external id field (canonical name) and its column.
    pub(super) key: Option<(String, usize)>,
}

impl Plan {
    /// Checks the header against the object: every column a field, none twice, the Id column
    /// for an update, the external id column for an upsert.
    pub(super) fn new(
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
    pub(super) fn row_id(&self, row: &CsvRecord) -> String {
        let raw = self
            .id_column
            .and_then(|c| row.values.get(c))
            .map(String::as_str)
            .filter(|v| !v.is_empty() && *v != NULL_VALUE)
            .unwrap_or_default();
        normalize_id(raw).unwrap_or_else(|| raw.to_string())
    }
}

/// A CSV value as the JSON value the REST API would take for `field`; `column` counts from 1.
pub(super) fn convert(field: &FieldDef, text: &str, column: usize) -> Result<Value, RecordError> {
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
