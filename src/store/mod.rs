//! The local SQLite store: migrations from `schema/`, the mirror of CRM records, per-object
//! cursors, the outbox of pending writes, the run log and the write errors.
//!
//! [`Store`] owns one `rusqlite::Connection`. Every write runs in an immediate transaction, so
//! a daemon and an admin command can share the file: WAL lets readers run beside a writer and
//! the busy timeout makes a second writer wait instead of failing. The current time is always
//! passed in; the store never reads the clock.
//!
//! Choices the callers rely on:
//! - Mirror rows whose `IsDeleted` is true are kept as tombstones: [`Store::record`] still
//!   returns them (so the sync engine can see what a deleted opportunity was linked to), while
//!   [`Store::live_records`] and [`Store::live_ids`] exclude them. [`Store::remove_records`]
//!   deletes rows outright (reconcile, `getDeleted`).
//! - A page never replaces a stored record with an older `SystemModstamp`, and a cursor never
//!   moves backwards (the lookback overlap re-reads older rows); [`Store::reset_cursor`] is the
//!   way back.
//! - [`Store::enqueue`] supersedes by replacing: a NEW, SENT or transiently FAILED row for the
//!   same record (same object, record id and kind) takes the new fields, because the sync
//!   engine diffs the whole desired state against the mirror, so a field absent from the new
//!   write no longer needs writing. Other such rows and a permanently FAILED row for the record
//!   become IGNORED with `superseded_by` naming the new row. A SENT row is one whose outcome is
//!   unknown: runs are serialized and the engine settles SENT rows
//!   ([`Store::settle_in_doubt`]) before it enqueues, so nothing is in flight when it does.
//! - [`Store::pending_writes`] returns at most one row per record (the oldest), so a batch
//!   never carries two writes for the same record.
//! - Besides NEW → SENT → SUCCEEDED | FAILED | IGNORED, a SENT row whose outcome was unknown
//!   goes back to NEW when the CRM turns out not to hold its values
//!   ([`Store::settle_in_doubt`]), and a row the sync engine sets aside
//!   ([`Store::set_aside_write`]) is IGNORED with `set_aside`: settled, yet no refusal of its
//!   values, unlike a row an admin ignored ([`Store::standing_refusals`] leaves it out).

mod history;
mod migrations;
mod ops;
mod outbox;
#[cfg(test)]
#[allow(
    clippy::disallowed_methods,
    reason = "the store takes `now` as an argument; these tests pass the current instant"
)]
mod tests;

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use serde_json::{Map, Value};

pub use history::{HistoryPoint, PlanMetrics};
pub use migrations::LATEST_VERSION;

/// How long a statement waits for another process's write lock before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(15);

/// A CRM record as mirrored: the fields plansync reads, keyed by API name.
#[derive(Debug, Clone, PartialEq)]
pub struct MirrorRecord {
    pub id: String,
    pub system_modstamp: DateTime<Utc>,
    pub is_deleted: bool,
    pub fields: Map<String, Value>,
}

/// The pull position of one object: the (SystemModstamp, Id) of the last record stored.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cursor {
    pub system_modstamp: DateTime<Utc>,
    pub id: String,
}

/// What one [`Store::apply_page`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PageStats {
    /// Live records not in the mirror before.
    pub inserted: usize,
    /// Live records that replaced a stored row (live or tombstone).
    pub updated: usize,
    /// Records with `IsDeleted` true, now kept as tombstones.
    pub deleted: usize,
    /// Records older (by SystemModstamp) than the stored row, left out.
    pub stale: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteKind {
    /// PATCH by record Id.
    Update,
    /// Upsert keyed by an external id field; `NewWrite::record_id` holds its value.
    Upsert { external_id_field: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewWrite {
    pub object: String,
    /// The record Id, or the external id value for upserts.
    pub record_id: String,
    pub kind: WriteKind,
    pub fields: Map<String, Value>,
    /// Why the write exists (for `status` and logs), e.g. "rollups changed".
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WriteStatus {
    New,
    Sent,
    Succeeded,
    Failed,
    Ignored,
}

impl WriteStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            WriteStatus::New => "new",
            WriteStatus::Sent => "sent",
            WriteStatus::Succeeded => "succeeded",
            WriteStatus::Failed => "failed",
            WriteStatus::Ignored => "ignored",
        }
    }

    fn parse(text: &str) -> Option<WriteStatus> {
        Some(match text {
            "new" => WriteStatus::New,
            "sent" => WriteStatus::Sent,
            "succeeded" => WriteStatus::Succeeded,
            "failed" => WriteStatus::Failed,
            "ignored" => WriteStatus::Ignored,
            _ => return None,
        })
    }
}

impl std::fmt::Display for WriteStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One outbox row.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRow {
    pub id: i64,
    pub object: String,
    pub record_id: String,
    pub kind: WriteKind,
    pub fields: Map<String, Value>,
    pub reason: String,
    pub status: WriteStatus,
    /// How many times the row was sent.
    pub attempts: u32,
    pub last_error_code: Option<String>,
    pub last_error_message: Option<String>,
    pub permanent: bool,
    /// For a transient failure: when it is due again.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// For a row made IGNORED by a newer write for the same record: that write's id.
    pub superseded_by: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// IGNORED by the sync engine because a recompute no longer wanted its values (not by an
    /// admin): no refusal, the same values go out again when a later recompute wants them.
    pub set_aside: bool,
}

/// One entry of the run log.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRow {
    pub id: i64,
    pub kind: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// `succeeded`, `failed` or `partial`; `None` while running (or after a crash).
    pub outcome: Option<String>,
    pub summary: Option<Value>,
}

/// A problem found by the last recompute (a linking ambiguity, a plan with a bad period ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub kind: String,
    /// The Ids concerned, as the sync engine formats them.
    pub subject: String,
    pub message: String,
}

/// Store errors, by what the caller does next.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file cannot be opened or is not a plansync database: fix the path or permissions.
    #[error(
        "cannot open the store at {path} (check [store] path, that its directory \
         exists and is writable by the plansync user, and that the file is a plansync database)"
    )]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    /// A migration failed; the database stays at the previous version.
    #[error(
        "store migration {version} ({name}) failed; the database was left at version {}, restore \
         a backup or report the error",
        .version - 1
    )]
    Migration {
        version: u32,
        name: String,
        #[source]
        source: rusqlite::Error,
    },
    /// The database was written by a newer plansync: run that version or restore a backup.
    #[error(
        "the store at {path} has schema version {found}, but this plansync supports up to \
         version {supported}; it was upgraded by a newer plansync. Run that newer version, or \
         restore a backup taken before the upgrade (downgrades are not supported)"
    )]
    TooNew {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    /// A stored value cannot be read back (hand-edited or damaged file).
    #[error("the store holds an unreadable value: {what}")]
    Corrupt { what: String },
    /// The row the caller named does not exist.
    #[error("not found in the store: {what}")]
    NotFound { what: String },
    /// The outbox row is not in a state the action applies to.
    #[error("outbox write {id} is {status}; cannot {action} it")]
    InvalidState {
        id: i64,
        status: WriteStatus,
        action: &'static str,
    },
    /// A value given to the store cannot be stored (for instance a non-serializable summary).
    #[error("invalid value for the store: {what}")]
    Invalid { what: String },
    #[error("store query failed")]
    Sqlite(#[from] rusqlite::Error),
}

impl StoreError {
    /// True when another process held the database too long; retrying later may work.
    pub fn is_busy(&self) -> bool {
        let source = match self {
            StoreError::Sqlite(e) => e,
            StoreError::Open { source, .. } | StoreError::Migration { source, .. } => source,
            _ => return false,
        };
        matches!(
            source.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
        )
    }
}

/// The SQLite store. Reads take `&self`, writes `&mut self`.
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens (creating if needed) the database at `path`, refuses one written by a newer
    /// plansync, sets WAL, `synchronous=NORMAL`, `foreign_keys=ON` and the busy timeout, and
    /// applies the missing migrations.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let conn = Connection::open_with_flags(path, flags).map_err(|source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        Store::init(conn, path, true)
    }

    /// A private in-memory database, migrated (for tests and dry runs).
    pub fn open_in_memory() -> Result<Store, StoreError> {
        let conn = Connection::open_in_memory().map_err(|source| StoreError::Open {
            path: PathBuf::from(":memory:"),
            source,
        })?;
        Store::init(conn, Path::new(":memory:"), false)
    }

    fn init(mut conn: Connection, path: &Path, wal: bool) -> Result<Store, StoreError> {
        let open_err = |source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        migrations::check_not_newer(&conn, path)?;
        if wal {
            let mode: String = conn
                .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
                .map_err(open_err)?;
            if !mode.eq_ignore_ascii_case("wal") {
                tracing::warn!(path = %path.display(), mode, "store could not switch to WAL");
            }
        }
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(open_err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(open_err)?;
        migrations::migrate(&mut conn, path)?;
        Ok(Store {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// The file this store was opened from (`:memory:` for an in-memory store).
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn schema_version(&self) -> Result<u32, StoreError> {
        Ok(migrations::user_version(&self.conn)?)
    }

    /// The SQLite journal mode in effect (`wal` for a file store).
    pub fn journal_mode(&self) -> Result<String, StoreError> {
        Ok(self
            .conn
            .query_row("PRAGMA journal_mode", [], |row| row.get(0))?)
    }

    /// Runs `f` in one immediate transaction: committed when `f` returns `Ok`, rolled back
    /// when it returns `Err` or panics.
    pub fn transaction<T>(
        &mut self,
        f: impl FnOnce(&mut StoreTx<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut store_tx = StoreTx { tx };
        let value = f(&mut store_tx)?;
        store_tx.tx.commit()?;
        Ok(value)
    }

    // ---- mirror ----

    /// Stores one page of pulled records and advances the object's cursor, in one transaction.
    pub fn apply_page(
        &mut self,
        object: &str,
        records: &[MirrorRecord],
        cursor: Option<&Cursor>,
    ) -> Result<PageStats, StoreError> {
        self.transaction(|tx| tx.apply_page(object, records, cursor))
    }

    pub fn cursor(&self, object: &str) -> Result<Option<Cursor>, StoreError> {
        ops::cursor(&self.conn, object)
    }

    /// Forgets the object's cursor, so the next pull starts from the beginning.
    pub fn reset_cursor(&mut self, object: &str) -> Result<(), StoreError> {
        self.transaction(|tx| tx.reset_cursor(object))
    }

    /// Every record of `object` that is not deleted, ordered by Id.
    pub fn live_records(&self, object: &str) -> Result<Vec<MirrorRecord>, StoreError> {
        ops::live_records(&self.conn, object)
    }

    /// One record, live or tombstone.
    /// Calls `f` with each live record of `object` in Id order, one at a time (the whole
    /// mirror of a large org does not fit comfortably in memory as parsed records).
    pub fn for_each_live_record(
        &self,
        object: &str,
        mut f: impl FnMut(MirrorRecord),
    ) -> Result<(), StoreError> {
        ops::for_each_live_record(&self.conn, object, &mut f)
    }

    /// The mirror's versions (live or tombstone) of the records with these Ids, by Id; Ids it
    /// does not hold are absent.
    pub fn records_by_id(
        &self,
        object: &str,
        ids: &[String],
    ) -> Result<std::collections::HashMap<String, MirrorRecord>, StoreError> {
        ops::records_by_id(&self.conn, object, ids)
    }

    pub fn record(&self, object: &str, id: &str) -> Result<Option<MirrorRecord>, StoreError> {
        ops::record(&self.conn, object, id)
    }

    /// The Ids of the live records of `object`, ordered.
    pub fn live_ids(&self, object: &str) -> Result<Vec<String>, StoreError> {
        ops::live_ids(&self.conn, object)
    }

    /// Deletes rows (live or tombstone) outright; returns how many existed.
    pub fn remove_records(&mut self, object: &str, ids: &[String]) -> Result<usize, StoreError> {
        self.transaction(|tx| tx.remove_records(object, ids))
    }

    /// Merges `fields` into a stored record after a successful write, so the mirror holds
    /// what the CRM now has. A missing record is [`StoreError::NotFound`].
    pub fn patch_record(
        &mut self,
        object: &str,
        id: &str,
        fields: &Map<String, Value>,
    ) -> Result<(), StoreError> {
        self.transaction(|tx| tx.patch_record(object, id, fields))
    }

    // ---- outbox ----

    /// Queues writes in one transaction (superseding older unsent writes for the same record,
    /// see the module docs); returns the outbox id of each write, in order.
    pub fn enqueue(
        &mut self,
        writes: &[NewWrite],
        now: DateTime<Utc>,
    ) -> Result<Vec<i64>, StoreError> {
        self.transaction(|tx| tx.enqueue(writes, now))
    }

    /// Writes to send, oldest first, at most one per record: NEW rows, SENT rows (in flight, or
    /// left by a process that died; the sync engine settles those before it drains) and
    /// transient failures whose backoff has passed at `now`.
    pub fn pending_writes(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        outbox::pending_writes(&self.conn, now, limit)
    }

    /// Marks rows SENT and counts the attempt; call just before sending.
    pub fn mark_sent(&mut self, ids: &[i64], now: DateTime<Utc>) -> Result<(), StoreError> {
        self.transaction(|tx| tx.mark_sent(ids, now))
    }

    pub fn mark_succeeded(&mut self, ids: &[i64], now: DateTime<Utc>) -> Result<(), StoreError> {
        self.transaction(|tx| tx.mark_succeeded(ids, now))
    }

    /// Records a failure with the CRM's statusCode and message. A transient failure is retried
    /// after a backoff (1, 2, 4 ... minutes, at most 60) by [`Store::pending_writes`]; a
    /// permanent one waits for a newer write for the record or an admin.
    pub fn mark_failed(
        &mut self,
        id: i64,
        error_code: &str,
        message: &str,
        permanent: bool,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.transaction(|tx| tx.mark_failed(id, error_code, message, permanent, now))
    }

    /// Rows left SENT: at the start of a run (runs are serialized) these are writes whose
    /// outcome is unknown, because the process that sent them died before recording it.
    pub fn writes_in_doubt(&self) -> Result<Vec<OutboxRow>, StoreError> {
        outbox::outbox_by_status(&self.conn, WriteStatus::Sent)
    }

    /// Settles SENT rows whose outcome was unknown, in one transaction: `landed` (the CRM holds
    /// their values) become SUCCEEDED, `requeued` go back to NEW. A row no longer SENT (an
    /// admin ignored it meanwhile) is left as it is; returns how many rows were settled.
    pub fn settle_in_doubt(
        &mut self,
        landed: &[i64],
        requeued: &[i64],
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        self.transaction(|tx| outbox::settle_in_doubt(&tx.tx, landed, requeued, now))
    }

    /// Every FAILED row (transient and permanent), oldest first.
    pub fn failed_writes(&self) -> Result<Vec<OutboxRow>, StoreError> {
        outbox::outbox_by_status(&self.conn, WriteStatus::Failed)
    }

    /// Rows not settled yet: NEW, SENT, and transient failures, whatever their backoff.
    pub fn unsettled_writes(&self) -> Result<Vec<OutboxRow>, StoreError> {
        outbox::unsettled_writes(&self.conn)
    }

    /// Writes the CRM refused for good, or an admin ignored, and nothing has replaced since:
    /// the same values are not to be sent again. Writes the sync engine set aside are not
    /// among them.
    pub fn standing_refusals(&self) -> Result<Vec<OutboxRow>, StoreError> {
        outbox::standing_refusals(&self.conn)
    }

    /// Deletes the run log's finished runs that started before `older_than`.
    pub fn prune_runs(&mut self, older_than: DateTime<Utc>) -> Result<usize, StoreError> {
        self.transaction(|tx| ops::prune_runs(&tx.tx, older_than))
    }

    /// Deletes deleted-record tombstones last changed before `older_than` (the CRM's recycle
    /// bin keeps deleted records 15 days; after that nothing refers to them).
    pub fn purge_tombstones(&mut self, older_than: DateTime<Utc>) -> Result<usize, StoreError> {
        self.transaction(|tx| ops::purge_tombstones(&tx.tx, older_than))
    }

    /// One outbox row (live, not archived).
    pub fn write(&self, id: i64) -> Result<Option<OutboxRow>, StoreError> {
        outbox::outbox_row(&self.conn, id)
    }

    /// Admin: puts a FAILED or IGNORED row back to NEW, due at once.
    pub fn retry_write(&mut self, id: i64, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.transaction(|tx| tx.retry_write(id, now))
    }

    /// Admin: gives up on a NEW, SENT or FAILED row.
    pub fn ignore_write(&mut self, id: i64, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.transaction(|tx| tx.ignore_write(id, now))
    }

    /// Sync engine: sets aside a NEW, SENT or FAILED row no recompute wants any more (IGNORED
    /// with `set_aside`, which is no refusal of its values).
    pub fn set_aside_write(&mut self, id: i64, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.transaction(|tx| outbox::set_aside_write(&tx.tx, id, now))
    }

    /// Moves SUCCEEDED and IGNORED rows last updated before `older_than` to the archive
    /// (FAILED rows stay until retried, superseded or ignored); returns how many moved.
    pub fn archive_writes(&mut self, older_than: DateTime<Utc>) -> Result<usize, StoreError> {
        self.transaction(|tx| tx.archive_writes(older_than))
    }

    /// How many writes are not settled (NEW, SENT, transient FAILED) and when the oldest was
    /// queued.
    pub fn outbox_depth(&self) -> Result<(u64, Option<DateTime<Utc>>), StoreError> {
        outbox::outbox_depth(&self.conn)
    }

    // ---- runs ----

    pub fn start_run(&mut self, kind: &str, started_at: DateTime<Utc>) -> Result<i64, StoreError> {
        self.transaction(|tx| tx.start_run(kind, started_at))
    }

    /// `outcome` is `succeeded`, `failed` or `partial`.
    pub fn finish_run(
        &mut self,
        run_id: i64,
        outcome: &str,
        summary: &Value,
        finished_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.transaction(|tx| tx.finish_run(run_id, outcome, summary, finished_at))
    }

    /// The last `n` runs, newest first.
    pub fn recent_runs(&self, n: usize) -> Result<Vec<RunRow>, StoreError> {
        ops::recent_runs(&self.conn, n)
    }

    // ---- findings and meta ----

    /// Replaces every finding with `findings` (kind, subject ids, message).
    pub fn replace_findings(
        &mut self,
        findings: &[(String, String, String)],
    ) -> Result<(), StoreError> {
        self.transaction(|tx| tx.replace_findings(findings))
    }

    pub fn findings(&self) -> Result<Vec<Finding>, StoreError> {
        ops::findings(&self.conn)
    }

    pub fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        ops::meta(&self.conn, key)
    }

    pub fn set_meta(&mut self, key: &str, value: &str) -> Result<(), StoreError> {
        self.transaction(|tx| tx.set_meta(key, value))
    }

    // ---- plan history ----

    /// A plan's recorded metric changes, oldest first (those at or after `since` when given).
    pub fn plan_history(
        &self,
        plan_id: &str,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<HistoryPoint>, StoreError> {
        history::of_plan(&self.conn, plan_id, since)
    }

    /// Deletes history rows recorded before `older_than`, except each plan's newest.
    pub fn prune_history(&mut self, older_than: DateTime<Utc>) -> Result<usize, StoreError> {
        self.transaction(|tx| history::prune(&tx.tx, older_than))
    }
}

/// A transaction on the store, from [`Store::transaction`]: the same operations as [`Store`],
/// committed together or not at all.
pub struct StoreTx<'a> {
    tx: rusqlite::Transaction<'a>,
}

impl StoreTx<'_> {
    pub fn apply_page(
        &mut self,
        object: &str,
        records: &[MirrorRecord],
        cursor: Option<&Cursor>,
    ) -> Result<PageStats, StoreError> {
        ops::apply_page(&self.tx, object, records, cursor)
    }
    pub fn cursor(&self, object: &str) -> Result<Option<Cursor>, StoreError> {
        ops::cursor(&self.tx, object)
    }
    pub fn reset_cursor(&mut self, object: &str) -> Result<(), StoreError> {
        ops::reset_cursor(&self.tx, object)
    }
    pub fn live_records(&self, object: &str) -> Result<Vec<MirrorRecord>, StoreError> {
        ops::live_records(&self.tx, object)
    }
    pub fn record(&self, object: &str, id: &str) -> Result<Option<MirrorRecord>, StoreError> {
        ops::record(&self.tx, object, id)
    }
    pub fn live_ids(&self, object: &str) -> Result<Vec<String>, StoreError> {
        ops::live_ids(&self.tx, object)
    }
    pub fn remove_records(&mut self, object: &str, ids: &[String]) -> Result<usize, StoreError> {
        ops::remove_records(&self.tx, object, ids)
    }
    pub fn patch_record(
        &mut self,
        object: &str,
        id: &str,
        fields: &Map<String, Value>,
    ) -> Result<(), StoreError> {
        ops::patch_record(&self.tx, object, id, fields)
    }
    pub fn enqueue(
        &mut self,
        writes: &[NewWrite],
        now: DateTime<Utc>,
    ) -> Result<Vec<i64>, StoreError> {
        outbox::enqueue(&self.tx, writes, now)
    }
    pub fn pending_writes(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        outbox::pending_writes(&self.tx, now, limit)
    }
    pub fn mark_sent(&mut self, ids: &[i64], now: DateTime<Utc>) -> Result<(), StoreError> {
        outbox::mark_sent(&self.tx, ids, now)
    }
    pub fn mark_succeeded(&mut self, ids: &[i64], now: DateTime<Utc>) -> Result<(), StoreError> {
        outbox::mark_succeeded(&self.tx, ids, now)
    }
    pub fn mark_failed(
        &mut self,
        id: i64,
        error_code: &str,
        message: &str,
        permanent: bool,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        outbox::mark_failed(&self.tx, id, error_code, message, permanent, now)
    }
    pub fn retry_write(&mut self, id: i64, now: DateTime<Utc>) -> Result<(), StoreError> {
        outbox::retry_write(&self.tx, id, now)
    }
    pub fn ignore_write(&mut self, id: i64, now: DateTime<Utc>) -> Result<(), StoreError> {
        outbox::ignore_write(&self.tx, id, now)
    }
    pub fn archive_writes(&mut self, older_than: DateTime<Utc>) -> Result<usize, StoreError> {
        outbox::archive_writes(&self.tx, older_than)
    }
    pub fn start_run(&mut self, kind: &str, started_at: DateTime<Utc>) -> Result<i64, StoreError> {
        ops::start_run(&self.tx, kind, started_at)
    }
    pub fn finish_run(
        &mut self,
        run_id: i64,
        outcome: &str,
        summary: &Value,
        finished_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        ops::finish_run(&self.tx, run_id, outcome, summary, finished_at)
    }
    pub fn replace_findings(
        &mut self,
        findings: &[(String, String, String)],
    ) -> Result<(), StoreError> {
        ops::replace_findings(&self.tx, findings)
    }
    pub fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        ops::meta(&self.tx, key)
    }
    pub fn set_meta(&mut self, key: &str, value: &str) -> Result<(), StoreError> {
        ops::set_meta(&self.tx, key, value)
    }
    /// Records `metrics` (by run `run_id`, at `at`) for each plan whose values changed since
    /// its previous history row; returns how many rows were added.
    pub fn record_history(
        &mut self,
        run_id: i64,
        at: DateTime<Utc>,
        metrics: &[PlanMetrics],
    ) -> Result<usize, StoreError> {
        history::record(&self.tx, run_id, at, metrics)
    }
}
