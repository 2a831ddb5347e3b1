//! Step 5 of the cycle: drain the outbox with sObject Collections writes of up to 200 records
//! (allOrNone=false), keeping each record's result (design.md §3.6, §5).

use chrono::Utc;
use tracing::{info, warn};

use crate::crm::{CrmClient, CrmError, RecordWrite};
use crate::store::{OutboxRow, Store, WriteKind};

use super::report::WriteFailure;
use super::{Hooks, Progress, SyncError};

/// What a drain did.
#[derive(Debug, Default)]
pub struct Pushed {
    pub records_written: u64,
    pub fields_written: u64,
    pub failures: Vec<WriteFailure>,
}

/// Sends every pending write once. Rows are marked SENT before the request, so a crash
/// mid-batch re-sends them on the next start (updates and upserts are idempotent).
pub async fn drain(
    crm: &CrmClient,
    store: &mut Store,
    batch_size: usize,
    hooks: &Hooks<'_>,
) -> Result<Pushed, SyncError> {
    let mut pushed = Pushed::default();
    let rows = store.pending_writes(Utc::now(), 1_000_000)?;
    if rows.is_empty() {
        return Ok(pushed);
    }
    info!(pending = rows.len(), "writing back");
    let total = rows.len() as u64;
    let mut done = 0u64;
    // Group by (object, kind) so each request carries one kind of write.
    let mut groups: Vec<((String, WriteKind), Vec<OutboxRow>)> = Vec::new();
    for row in rows {
        let key = (row.object.clone(), row.kind.clone());
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => v.push(row),
            None => groups.push((key, vec![row])),
        }
    }
    for ((object, kind), rows) in groups {
        for chunk in rows.chunks(batch_size.clamp(1, 200)) {
            if let Some(why) = (hooks.stop)() {
                return Err(SyncError::Stopped(why));
            }
            let ids: Vec<i64> = chunk.iter().map(|r| r.id).collect();
            store.mark_sent(&ids, Utc::now())?;
            let sent = match &kind {
                WriteKind::Update => {
                    let writes: Vec<RecordWrite> = chunk
                        .iter()
                        .map(|r| RecordWrite {
                            object: object.clone(),
                            id: Some(r.record_id.clone()),
                            fields: r.fields.clone(),
                        })
                        .collect();
                    crm.update(&writes).await
                }
                WriteKind::Upsert { external_id_field } => {
                    let writes: Vec<RecordWrite> = chunk
                        .iter()
                        .map(|r| RecordWrite {
                            object: object.clone(),
                            id: None,
                            fields: r.fields.clone(),
                        })
                        .collect();
                    crm.upsert(&object, external_id_field, &writes).await
                }
            };
            let results = match sent {
                Ok(results) => results,
                Err(CrmError::QuotaExceeded { message }) => {
                    return Err(SyncError::Stopped(message));
                }
                Err(error) => {
                    // The CRM refused the whole request (an object or external id field it
                    // does not have, a server failing after retries): every row of the batch
                    // fails alike, and the other batches still go.
                    let code = error.error_code().unwrap_or("REQUEST_FAILED").to_string();
                    let message = error.to_string();
                    let permanent = error.is_permanent();
                    warn!(object = %object, %code, %message, rows = chunk.len(), "write request refused");
                    let now = Utc::now();
                    for row in chunk {
                        store.mark_failed(row.id, &code, &message, permanent, now)?;
                        pushed.failures.push(WriteFailure {
                            object: object.clone(),
                            record_id: row.record_id.clone(),
                            status_code: code.clone(),
                            message: message.clone(),
                            permanent,
                        });
                    }
                    done += chunk.len() as u64;
                    (hooks.progress)(&Progress::Wrote { done, total });
                    continue;
                }
            };
            let now = Utc::now();
            for (row, result) in chunk.iter().zip(results) {
                if result.success {
                    store.mark_succeeded(&[row.id], now)?;
                    if matches!(kind, WriteKind::Update) {
                        store.patch_record(&object, &row.record_id, &row.fields)?;
                    }
                    pushed.records_written += 1;
                    pushed.fields_written += row.fields.len() as u64;
                } else {
                    let (code, message, permanent) = match result.errors.first() {
                        Some(e) => (e.status_code.clone(), e.message.clone(), !e.is_transient()),
                        None => ("UNKNOWN".to_string(), "no error given".to_string(), false),
                    };
                    warn!(object = %object, record = %row.record_id, %code, %message, "write refused");
                    store.mark_failed(row.id, &code, &message, permanent, now)?;
                    pushed.failures.push(WriteFailure {
                        object: object.clone(),
                        record_id: row.record_id.clone(),
                        status_code: code,
                        message,
                        permanent,
                    });
                }
            }
            done += chunk.len() as u64;
            (hooks.progress)(&Progress::Wrote { done, total });
        }
    }
    Ok(pushed)
}
