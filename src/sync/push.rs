//! Step 5 of the cycle: drain the outbox with write calls of up to 1,000 records, keeping each
//! record's result (design.md §3.6, §5). A call is one composite request of up to five sObject
//! Collections of 200 (`allOrNone` false on the request and on each Collection), which the CRM
//! counts as one API call; an org that does not serve the composite resource gets plain
//! Collections requests of 200 instead. An object with `bulk_min_writes` due rows or more
//! goes through Bulk API 2.0 ingest jobs ([`ingest`]). The outbox is read a page at a time.
//!
//! A batch's rows are marked SENT (one transaction) before its request, and its results are
//! recorded with the mirror patched to the written values in one transaction after it, so a
//! crash leaves each row either SENT (the outcome is unknown: the engine re-reads the record
//! and settles the row at the start of the next run, see `SyncEngine::settle_in_doubt`) or
//! settled together with the mirror. The drain goes on until no write is due, so a write that
//! queued behind another one for the same record still goes out in the same run.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use chrono::{DateTime, Utc};
use tracing::{info, warn};

use crate::crm::{
    BulkOptions, CrmClient, CrmError, RecordResult, RecordWrite, COMPOSITE_MAX_RECORDS,
};
use crate::store::{OutboxRow, Store, WriteKind};

use super::reads::Composite;
use super::report::WriteFailure;
use super::{off_worker, Hooks, Progress, SyncError};

mod ingest;

/// What a drain did.
#[derive(Debug, Default)]
pub struct Pushed {
    pub records_written: u64,
    pub fields_written: u64,
    pub failures: Vec<WriteFailure>,
}

/// Outbox rows read at a time: a first sync queues a write for most opportunities, and
/// the drain holds one page and the batches it is filling, never the whole queue.
const PAGE_ROWS: usize = 5_000;

/// How a drain writes.
#[derive(Debug, Clone)]
pub struct WriteSettings {
    /// Records per composite write call (at most 1,000).
    pub batch_size: usize,
    /// Objects with at least this many due writes are written through Bulk API 2.0 ingest
    /// jobs.
    pub bulk_min_writes: u64,
    /// The fields the write-back sets, by object: the columns of an ingest job's CSV
    /// (besides those its first record writes).
    pub columns: BTreeMap<String, BTreeSet<String>>,
    /// Outbox rows read at a time.
    pub page_rows: usize,
    /// How ingest jobs are polled.
    pub bulk: BulkOptions,
}

impl WriteSettings {
    /// Composite calls of `batch_size`, ingest jobs from `bulk_min_writes` records of an
    /// object, with `columns` for their CSV.
    pub fn new(
        batch_size: usize,
        bulk_min_writes: u64,
        columns: BTreeMap<String, BTreeSet<String>>,
    ) -> WriteSettings {
        WriteSettings {
            batch_size,
            bulk_min_writes,
            columns,
            page_rows: PAGE_ROWS,
            bulk: BulkOptions::default(),
        }
    }
}

/// Sends every due write: NEW rows and transient failures whose backoff has passed (with
/// `only_object`, only that object's). Each row is sent at most once per drain; a failed one
/// waits for its backoff or an admin. An object with at least `bulk_min_writes` due rows is
/// written through ingest jobs ([`ingest`]) unless the org refuses them.
pub async fn drain(
    crm: &CrmClient,
    composite: &Composite,
    store: &mut Store,
    settings: &WriteSettings,
    only_object: Option<&str>,
    hooks: &Hooks<'_>,
) -> Result<Pushed, SyncError> {
    let writer = Writer { crm, composite };
    let mut drain = Drain {
        batch: settings.batch_size.clamp(1, COMPOSITE_MAX_RECORDS),
        pushed: Pushed::default(),
        attempted: HashSet::new(),
        done: 0,
        total: 0,
        ingest_refused: HashSet::new(),
    };
    loop {
        // A pass reads the due rows page by page, at most one per record (the oldest); a row
        // queued behind one sent in this pass is due once that one is settled.
        let now = hooks.clock.now();
        let due = off_worker(|| store.pending_write_counts(now))?;
        drain.total = drain.done + due.values().sum::<u64>();
        let by_job: HashSet<String> = due
            .iter()
            .filter(|(object, n)| {
                **n >= settings.bulk_min_writes && !drain.ingest_refused.contains(*object)
            })
            .map(|(object, _)| object.clone())
            .collect();
        let mut sent_any = false;
        // Rows by (object, kind), so each request carries one kind of write.
        let mut filling: Vec<((String, WriteKind), Vec<OutboxRow>)> = Vec::new();
        let mut jobs: Vec<ingest::Job> = Vec::new();
        let mut after = 0;
        loop {
            let now = hooks.clock.now();
            let page = off_worker(|| store.pending_writes_after(now, after, settings.page_rows))?;
            let Some(last) = page.last() else { break };
            after = last.id;
            for row in page {
                if drain.attempted.contains(&row.id) || only_object.is_some_and(|o| row.object != o)
                {
                    continue;
                }
                if !sent_any {
                    info!(pending = drain.total - drain.done, "writing back");
                    sent_any = true;
                }
                drain.attempted.insert(row.id);
                let row = if by_job.contains(&row.object)
                    && !drain.ingest_refused.contains(&row.object)
                {
                    match ingest::add(&mut jobs, row, settings) {
                        ingest::Added::Full(at) => {
                            let job = jobs.swap_remove(at);
                            drain.ingest(writer, store, job, settings, hooks).await?;
                            continue;
                        }
                        ingest::Added::Kept => continue,
                        ingest::Added::DoesNotFit(row) => *row,
                    }
                } else {
                    row
                };
                let key = (row.object.clone(), row.kind.clone());
                let at = match filling.iter().position(|(k, _)| *k == key) {
                    Some(at) => at,
                    None => {
                        filling.push((key, Vec::new()));
                        filling.len() - 1
                    }
                };
                filling[at].1.push(row);
                if filling[at].1.len() == drain.batch {
                    let ((object, kind), rows) = filling.swap_remove(at);
                    drain
                        .send(writer, store, &object, &kind, &rows, hooks)
                        .await?;
                }
            }
        }
        for job in jobs {
            drain.ingest(writer, store, job, settings, hooks).await?;
        }
        for ((object, kind), rows) in filling {
            drain
                .send(writer, store, &object, &kind, &rows, hooks)
                .await?;
        }
        if !sent_any {
            return Ok(drain.pushed);
        }
    }
}

/// A drain in progress.
struct Drain {
    /// Records per write call.
    batch: usize,
    pushed: Pushed,
    /// Rows sent in this drain: none is sent twice.
    attempted: HashSet<i64>,
    /// Records sent so far, and that plus those due, for the progress shown.
    done: u64,
    total: u64,
    /// Objects the org would not take an ingest job for: written through composite calls
    /// for the rest of the drain.
    ingest_refused: HashSet<String>,
}

impl Drain {
    async fn send(
        &mut self,
        writer: Writer<'_>,
        store: &mut Store,
        object: &str,
        kind: &WriteKind,
        rows: &[OutboxRow],
        hooks: &Hooks<'_>,
    ) -> Result<(), SyncError> {
        if let Some(why) = (hooks.stop)() {
            return Err(SyncError::Stopped(why));
        }
        send_batch(writer, store, object, kind, rows, &mut self.pushed, hooks).await?;
        self.wrote(rows.len(), hooks);
        Ok(())
    }

    /// Counts `n` more records sent, and shows it.
    fn wrote(&mut self, n: usize, hooks: &Hooks<'_>) {
        self.done += n as u64;
        (hooks.progress)(&Progress::Wrote {
            done: self.done,
            total: self.total.max(self.done),
        });
    }
}

/// Where a batch goes: composite calls while the org serves them, plain Collections requests
/// otherwise.
#[derive(Clone, Copy)]
struct Writer<'a> {
    crm: &'a CrmClient,
    composite: &'a Composite,
}

impl Writer<'_> {
    /// Sends one batch: one composite call, or, when the org refuses the composite resource
    /// (nothing was applied), the same records as plain Collections requests.
    async fn send(
        self,
        object: &str,
        kind: &WriteKind,
        writes: &[RecordWrite],
    ) -> Result<Vec<RecordResult>, CrmError> {
        if self.composite.usable() {
            let sent = match kind {
                WriteKind::Update => self.crm.update_composite(writes).await,
                WriteKind::Upsert { external_id_field } => {
                    self.crm
                        .upsert_composite(object, external_id_field, writes)
                        .await
                }
            };
            match sent {
                Err(e) if self.composite.refused_by(&e) => {}
                other => return other,
            }
        }
        match kind {
            WriteKind::Update => self.crm.update(writes).await,
            WriteKind::Upsert { external_id_field } => {
                self.crm.upsert(object, external_id_field, writes).await
            }
        }
    }
}

/// An outbox row as the write the CRM client sends: by Id for an update, by the external
/// id in its fields for an upsert.
fn record_write(row: &OutboxRow) -> RecordWrite {
    RecordWrite {
        object: row.object.clone(),
        id: matches!(row.kind, WriteKind::Update).then(|| row.record_id.clone()),
        fields: row.fields.clone(),
    }
}

/// Sends one batch and records its results.
async fn send_batch(
    writer: Writer<'_>,
    store: &mut Store,
    object: &str,
    kind: &WriteKind,
    chunk: &[OutboxRow],
    pushed: &mut Pushed,
    hooks: &Hooks<'_>,
) -> Result<(), SyncError> {
    let ids: Vec<i64> = chunk.iter().map(|r| r.id).collect();
    let now = hooks.clock.now();
    off_worker(|| store.mark_sent(&ids, now))?;
    drill::point();
    let writes: Vec<RecordWrite> = chunk.iter().map(record_write).collect();
    let sent = writer.send(object, kind, &writes).await;
    drill::point();
    let results = match sent {
        Ok(results) => results,
        Err(CrmError::QuotaExceeded { message }) => {
            // Refused before it was applied: the rows go back to the queue untouched.
            let now = hooks.clock.now();
            off_worker(|| store.settle_in_doubt(&[], &ids, now))?;
            return Err(SyncError::Stopped(message));
        }
        Err(error) => {
            // The CRM refused the whole request (an object or external id field it does not
            // have, a server failing after retries): every row of the batch fails alike, and
            // the other batches still go.
            let rows: Vec<(i64, &str)> =
                chunk.iter().map(|r| (r.id, r.record_id.as_str())).collect();
            let now = hooks.clock.now();
            return fail_all(store, object, &rows, &error, pushed, now);
        }
    };
    let now = hooks.clock.now();
    off_worker(|| record_results(store, object, kind, chunk, results, pushed, now))
}

/// Records the CRM's refusal of a whole request (`error`) as the failure of each of its
/// rows, given as (outbox id, record id).
fn fail_all(
    store: &mut Store,
    object: &str,
    rows: &[(i64, &str)],
    error: &CrmError,
    pushed: &mut Pushed,
    now: DateTime<Utc>,
) -> Result<(), SyncError> {
    let code = error.error_code().unwrap_or("REQUEST_FAILED").to_string();
    let message = error.to_string();
    let permanent = error.is_permanent();
    warn!(object = %object, %code, %message, rows = rows.len(), "write request refused");
    off_worker(|| {
        store.transaction(|tx| {
            for (id, _) in rows {
                tx.mark_failed(*id, &code, &message, permanent, now)?;
            }
            Ok(())
        })
    })?;
    for (_, record_id) in rows {
        pushed.failures.push(WriteFailure {
            object: object.to_string(),
            record_id: record_id.to_string(),
            status_code: code.clone(),
            message: message.clone(),
            permanent,
        });
    }
    Ok(())
}

/// Records a batch's per-record results and patches the mirror with what the CRM accepted,
/// in one transaction.
fn record_results(
    store: &mut Store,
    object: &str,
    kind: &WriteKind,
    chunk: &[OutboxRow],
    results: Vec<RecordResult>,
    pushed: &mut Pushed,
    now: DateTime<Utc>,
) -> Result<(), SyncError> {
    let mut failures = Vec::new();
    let mut written = (0u64, 0u64);
    store.transaction(|tx| {
        // A result the CRM left out is a failure of its row, never a silent success.
        let mut results = results.into_iter();
        for row in chunk {
            let result = results.next();
            match result {
                Some(result) if result.success => {
                    tx.mark_succeeded(&[row.id], now)?;
                    // The mirror holds what the CRM now has (a record the mirror no longer
                    // holds has nothing to patch).
                    if matches!(kind, WriteKind::Update)
                        && tx.record(object, &row.record_id)?.is_some()
                    {
                        tx.patch_record(object, &row.record_id, &row.fields)?;
                    }
                    written.0 += 1;
                    written.1 += row.fields.len() as u64;
                }
                other => {
                    let (code, message, permanent) = match other
                        .as_ref()
                        .and_then(|r| r.errors.first())
                    {
                        Some(e) => (e.status_code.clone(), e.message.clone(), !e.is_transient()),
                        None if other.is_none() => (
                            "NO_RESULT".to_string(),
                            "the CRM's response had no result for this record".to_string(),
                            false,
                        ),
                        None => ("UNKNOWN".to_string(), "no error given".to_string(), false),
                    };
                    tx.mark_failed(row.id, &code, &message, permanent, now)?;
                    failures.push(WriteFailure {
                        object: object.to_string(),
                        record_id: row.record_id.clone(),
                        status_code: code,
                        message,
                        permanent,
                    });
                }
            }
        }
        Ok(())
    })?;
    for failure in &failures {
        warn!(object = %object, record = %failure.record_id, code = %failure.status_code,
            message = %failure.message, "write refused");
    }
    pushed.records_written += written.0;
    pushed.fields_written += written.1;
    pushed.failures.extend(failures);
    Ok(())
}

#[cfg(test)]
#[path = "push_tests.rs"]
mod tests;

/// Crash drills, in debug builds only: with `PLANSYNC_DRILL_ABORT_AT=N` the process kills
/// itself with SIGKILL (no unwinding, no destructors, no core file) at the N-th point of the
/// write-back. Each batch has two points: after its rows are marked SENT and before the
/// request, and after the CRM has answered and before any result is recorded. Release builds
/// ignore the variable.
mod drill {
    #[cfg(debug_assertions)]
    pub fn point() {
        use std::sync::atomic::{AtomicU64, Ordering};
        static PASSED: AtomicU64 = AtomicU64::new(0);
        let Some(at) = std::env::var("PLANSYNC_DRILL_ABORT_AT")
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
        else {
            return;
        };
        if PASSED.fetch_add(1, Ordering::SeqCst) + 1 == at {
            let pid = std::process::id().to_string();
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &pid])
                .status();
            // No `kill` to run: end without unwinding all the same.
            std::process::abort();
        }
    }

    #[cfg(not(debug_assertions))]
    pub fn point() {}
}
