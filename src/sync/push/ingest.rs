//! The drain's Bulk API 2.0 ingest jobs: the due rows of an object with at least
//! `bulk_min_writes` of them go into jobs of up to [`JOB_ROWS`] records (and 50 MB of CSV),
//! instead of composite calls of 1,000. A job's rows are marked SENT before it is created
//! and their results are recorded 1,000 at a time with the mirror patched, as a composite
//! batch's are, so a crash leaves them SENT and the next run settles them. When the org
//! refuses the job, its rows go back to the queue and the object is written through
//! composite calls for the rest of the drain.

use tracing::info;

use crate::crm::{IngestCsv, IngestOperation, Ingested};
use crate::store::{OutboxRow, Store, WriteKind};

use super::{
    fail_all, off_worker, record_results, record_write, Drain, Hooks, SyncError, WriteSettings,
    Writer, COMPOSITE_MAX_RECORDS,
};
use crate::crm::CrmError;

/// Most records in one ingest job: the job's CSV and each row's outbox and record Ids are
/// held until its results are recorded (about 100 bytes a link write).
pub const JOB_ROWS: usize = 500_000;
/// Most bytes of CSV in one job: the CRM takes 150 MB, and converts the upload to base64
/// (about 50% more), so it asks for at most 100 MB; half of that bounds what the drain holds.
const JOB_BYTES: usize = 50_000_000;

/// An ingest job being filled.
pub(super) struct Job {
    object: String,
    kind: WriteKind,
    csv: IngestCsv,
    /// The outbox ids and record ids of its rows, in upload order.
    rows: Vec<(i64, String)>,
}

/// What [`add`] did with a row.
pub(super) enum Added {
    /// The row is in a job that can take more.
    Kept,
    /// The row filled the job at this index: send it.
    Full(usize),
    /// The row writes a field its job has no column for, or a value CSV cannot carry: send
    /// it in a composite call.
    DoesNotFit(Box<OutboxRow>),
}

/// Adds `row` to the job of its object and kind, started when there is none.
pub(super) fn add(jobs: &mut Vec<Job>, row: OutboxRow, settings: &WriteSettings) -> Added {
    let write = record_write(&row);
    let at = match jobs
        .iter()
        .position(|j| j.object == row.object && j.kind == row.kind)
    {
        Some(at) => at,
        None => {
            let operation = match &row.kind {
                WriteKind::Update => IngestOperation::Update,
                WriteKind::Upsert { external_id_field } => IngestOperation::Upsert {
                    external_id_field: external_id_field.clone(),
                },
            };
            let mut columns = settings
                .columns
                .get(&row.object)
                .cloned()
                .unwrap_or_default();
            columns.extend(row.fields.keys().cloned());
            jobs.push(Job {
                object: row.object.clone(),
                kind: row.kind.clone(),
                csv: IngestCsv::new(&row.object, operation, &columns),
                rows: Vec::new(),
            });
            jobs.len() - 1
        }
    };
    let job = &mut jobs[at];
    if !job.csv.fits(&write) || job.csv.push(&write).is_err() {
        return Added::DoesNotFit(Box::new(row));
    }
    job.rows.push((row.id, row.record_id));
    if job.csv.len() >= JOB_ROWS || job.csv.bytes() >= JOB_BYTES {
        Added::Full(at)
    } else {
        Added::Kept
    }
}

impl Drain {
    /// Runs one ingest job and records each row's result.
    pub(super) async fn ingest(
        &mut self,
        writer: Writer<'_>,
        store: &mut Store,
        job: Job,
        settings: &WriteSettings,
        hooks: &Hooks<'_>,
    ) -> Result<(), SyncError> {
        if let Some(why) = (hooks.stop)() {
            return Err(SyncError::Stopped(why));
        }
        let Job {
            object,
            kind,
            csv,
            rows,
        } = job;
        let ids: Vec<i64> = rows.iter().map(|(id, _)| *id).collect();
        let now = hooks.clock.now();
        off_worker(|| store.mark_sent(&ids, now))?;
        super::drill::point();
        info!(object = %object, records = rows.len(), "writing back through a Bulk ingest job");
        let sent = writer.crm.ingest(csv, &settings.bulk).await;
        super::drill::point();
        let now = hooks.clock.now();
        match sent {
            Ok(Ingested::Done(results)) => {
                let mut results = results.into_iter();
                for chunk in ids.chunks(COMPOSITE_MAX_RECORDS) {
                    let outcome: Vec<_> = results.by_ref().take(chunk.len()).collect();
                    off_worker(|| {
                        let mut rows = Vec::with_capacity(chunk.len());
                        for id in chunk {
                            rows.extend(store.write(*id)?);
                        }
                        record_results(store, &object, &kind, &rows, outcome, &mut self.pushed, now)
                    })?;
                }
                self.wrote(rows.len(), hooks);
                Ok(())
            }
            Ok(Ingested::Refused(refusal)) => {
                info!(object = %object, code = %refusal.code, message = %refusal.message,
                    "the CRM will not take this write-back as a Bulk ingest job: writing through composite calls");
                off_worker(|| store.settle_in_doubt(&[], &ids, now))?;
                // Due again in the drain's next pass, by composite calls.
                self.ingest_refused.insert(object);
                for id in &ids {
                    self.attempted.remove(id);
                }
                Ok(())
            }
            Err(CrmError::QuotaExceeded { message }) => {
                off_worker(|| store.settle_in_doubt(&[], &ids, now))?;
                Err(SyncError::Stopped(message))
            }
            Err(error) => {
                let rows: Vec<(i64, &str)> = rows.iter().map(|(id, r)| (*id, r.as_str())).collect();
                fail_all(store, &object, &rows, &error, &mut self.pushed, now)?;
                self.wrote(rows.len(), hooks);
                Ok(())
            }
        }
    }
}
