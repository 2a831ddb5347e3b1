//! Running a closed job: once its data reads, its rows are applied to the org in
//! transactions of [`TRANSACTION_ROWS`], each row on its own as one record of an sObject
//! Collections request (insert, update or upsert), and each transaction's change events are
//! published as the job's API writes. A job that cannot run ends Failed with no row applied.

use std::time::Instant;

use chrono::Utc;
use serde_json::{Map, Value};

use super::data::{convert, read_table, CsvRecord, DataError, Plan};
use super::{IngestState, Job, Operation, RowResult, NULL_VALUE, TRANSACTION_ROWS};
use crate::emulator::org::{Org, RecordError};
use crate::emulator::routes::collections::{update_record, upsert_record};
use crate::emulator::server::{Faults, Shared};
use crate::emulator::streaming::Origin;

impl Plan {
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

/// Runs an InProgress job to its end: reads its data, applies its rows (JobComplete), or
/// fails it with no row applied (Failed).
pub(super) fn run(shared: &Shared, job: &mut Job, faults: &Faults) {
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
