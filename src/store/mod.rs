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
mod refs;
mod staged;
mod streaming;
#[cfg(test)]
#[allow(
    clippy::disallowed_methods,
    reason = "the store takes `now` as an argument; these tests pass the current instant"
)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use serde_json::{Map, Value};

pub use history::{HistoryPoint, PlanMetrics};
pub use migrations::LATEST_VERSION;
pub use streaming::StreamingStatus;

/// How long a statement waits for another process's write lock before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(15);

/// Switches a database to WAL and returns the journal mode it then has. Switching takes an
/// exclusive lock, and SQLite answers `SQLITE_BUSY` at once, without its busy handler, when
/// another connection holds a lock (a second process creating the same new store, or still
/// migrating it): such an answer is retried every 20 ms for up to [`BUSY_TIMEOUT`].
fn wal_mode(conn: &Connection) -> Result<String, rusqlite::Error> {
    const PAUSE: Duration = Duration::from_millis(20);
    let mut waited = Duration::ZERO;
    loop {
        match conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0)) {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy && waited < BUSY_TIMEOUT =>
            {
                std::thread::sleep(PAUSE);
                waited += PAUSE;
            }
            answer => return answer,
        }
    }
}

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
    /// Mirror rows read to build the rules' inputs, by object ([`Store::mirror_rows_read`]).
    reads: Mutex<BTreeMap<String, u64>>,
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
            let mode = wal_mode(&conn).map_err(open_err)?;
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
            reads: Mutex::new(BTreeMap::new()),
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

    /// Calls `f` with each live record of `object` in Id order, one at a time (the whole
    /// mirror of a large org does not fit comfortably in memory as parsed records).
    pub fn for_each_live_record(
        &self,
        object: &str,
        mut f: impl FnMut(MirrorRecord),
    ) -> Result<(), StoreError> {
        let mut n = 0;
        let done = ops::for_each_live_record(&self.conn, object, &mut |r| {
            n += 1;
            f(r)
        });
        self.count_reads(object, n);
        done
    }

    /// Calls `f` with each live record of `object` whose `field` (a reference: AccountId, a
    /// plan link, WhatId ...) holds one of `values`, each record once, by the pair's index
    /// ([`Store::index_reference`], made here when missing).
    pub fn for_each_live_by_reference(
        &self,
        object: &str,
        field: &str,
        values: &BTreeSet<String>,
        mut f: impl FnMut(MirrorRecord) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut n = 0;
        let done = refs::live_by_reference(&self.conn, object, field, values, &mut |r| {
            n += 1;
            f(r)
        });
        self.count_reads(object, n);
        done
    }

    /// Calls `f` with each live record of `object` whose `field` names no live record of
    /// `target` (an opportunity linked to a plan that is gone).
    pub fn for_each_live_with_dangling_reference(
        &self,
        object: &str,
        field: &str,
        target: &str,
        mut f: impl FnMut(MirrorRecord) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut n = 0;
        let done =
            refs::live_with_dangling_reference(&self.conn, object, field, target, &mut |r| {
                n += 1;
                f(r)
            });
        self.count_reads(object, n);
        done
    }

    /// Creates, when missing, the index [`Store::for_each_live_by_reference`] reads `field` of
    /// `object` by (a partial index over the object's live rows; the fields follow the
    /// mapping, so the indexes are made for the names in use rather than by a migration). An
    /// index holds no data of its own, so this takes `&self` like a read.
    pub fn index_reference(&self, object: &str, field: &str) -> Result<(), StoreError> {
        refs::index_reference(&self.conn, object, field)
    }

    /// Empties the staged writes: the writes a recompute plans wait there, in a temporary
    /// table of this connection, for the enqueue ([`Store::staged_writes`]), so they are not
    /// held in memory. Staging changes nothing in the store file, so this takes `&self`.
    pub fn clear_staged_writes(&self) -> Result<(), StoreError> {
        staged::clear(&self.conn)
    }

    /// Stages writes (see [`Store::clear_staged_writes`]); a record already staged keeps its
    /// first write.
    pub fn stage_writes(&self, writes: &[NewWrite]) -> Result<(), StoreError> {
        staged::stage(&self.conn, writes)
    }

    /// How many mirror rows of `object` the whole-object and by-reference reads above
    /// returned since the store was opened: what building the rules' inputs cost.
    pub fn mirror_rows_read(&self, object: &str) -> u64 {
        self.reads
            .lock()
            .map(|r| r.get(object).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    /// Whether the archive upkeep finds its rows by an index range (for tests).
    #[cfg(test)]
    pub(crate) fn archive_uses_index(&self) -> bool {
        outbox::archive_uses_index(&self.conn)
    }

    /// Whether SQLite reads `n` values of `field` of `object` by its reference index (for
    /// tests).
    #[cfg(test)]
    pub(crate) fn uses_reference_index(&self, object: &str, field: &str, n: usize) -> bool {
        refs::uses_index(&self.conn, object, field, n)
    }

    fn count_reads(&self, object: &str, n: u64) {
        if n == 0 {
            return;
        }
        if let Ok(mut reads) = self.reads.lock() {
            *reads.entry(object.to_string()).or_default() += n;
        }
    }

    /// Rows left SENT: at the start of a run (runs are serialized) these are writes whose
    /// outcome is unknown, because the process that sent them died before recording it.
    pub fn writes_in_doubt(&self) -> Result<Vec<OutboxRow>, StoreError> {
        outbox::outbox_by_status(&self.conn, WriteStatus::Sent)
    }

    /// Every FAILED row (transient and permanent), oldest first.
    pub fn failed_writes(&self) -> Result<Vec<OutboxRow>, StoreError> {
        outbox::outbox_by_status(&self.conn, WriteStatus::Failed)
    }
}

/// Declares the store's operations once each, for [`Store`] and [`StoreTx`] alike. A read runs
/// on the store's connection or in the transaction; a write runs in the caller's transaction
/// on a [`StoreTx`], and in a transaction of its own on a [`Store`].
macro_rules! operations {
    (
        reads { $(
            $(#[$r_doc:meta])*
            fn $r_name:ident($($r_arg:ident: $r_ty:ty),*) -> $r_ret:ty = $r_sql:path;
        )* }
        writes { $(
            $(#[$w_doc:meta])*
            fn $w_name:ident($($w_arg:ident: $w_ty:ty),*) -> $w_ret:ty = $w_sql:path;
        )* }
    ) => {
        impl Store {
            $(
                $(#[$r_doc])*
                pub fn $r_name(&self $(, $r_arg: $r_ty)*) -> Result<$r_ret, StoreError> {
                    $r_sql(&self.conn $(, $r_arg)*)
                }
            )*
            $(
                $(#[$w_doc])*
                pub fn $w_name(&mut self $(, $w_arg: $w_ty)*) -> Result<$w_ret, StoreError> {
                    self.transaction(|tx| tx.$w_name($($w_arg),*))
                }
            )*
        }

        impl StoreTx<'_> {
            $(
                $(#[$r_doc])*
                pub fn $r_name(&self $(, $r_arg: $r_ty)*) -> Result<$r_ret, StoreError> {
                    $r_sql(&self.tx $(, $r_arg)*)
                }
            )*
            $(
                $(#[$w_doc])*
                pub fn $w_name(&mut self $(, $w_arg: $w_ty)*) -> Result<$w_ret, StoreError> {
                    $w_sql(&self.tx $(, $w_arg)*)
                }
            )*
        }
    };
}

operations! {
    reads {
        /// The object's pull position, if it has one.
        fn cursor(object: &str) -> Option<Cursor> = ops::cursor;
        /// Every record of `object` that is not deleted, ordered by Id.
        fn live_records(object: &str) -> Vec<MirrorRecord> = ops::live_records;
        /// The mirror's versions (live or tombstone) of the records with these Ids, by Id; Ids
        /// it does not hold are absent.
        fn records_by_id(object: &str, ids: &[String]) -> HashMap<String, MirrorRecord>
            = ops::records_by_id;
        /// One record, live or tombstone.
        fn record(object: &str, id: &str) -> Option<MirrorRecord> = ops::record;
        /// The Ids of the live records of `object`, ordered.
        fn live_ids(object: &str) -> Vec<String> = ops::live_ids;
        /// The Ids of the live records of `object` a full pull has not noted
        /// ([`Store::note_live`]) since [`Store::clear_noted_live`], ordered.
        fn live_ids_not_noted(object: &str) -> Vec<String> = ops::live_ids_not_noted;
        /// Up to `limit` writes staged since [`Store::clear_staged_writes`], in (object,
        /// record Id) order after `after`.
        fn staged_writes(after: Option<(&str, &str)>, limit: usize) -> Vec<NewWrite>
            = staged::page;
        /// How many writes on `object` are staged.
        fn staged_write_count(object: &str) -> u64 = staged::count;
        /// Whether a write for the record is staged.
        fn is_staged(object: &str, record_id: &str) -> bool = staged::is_staged;

        /// Writes to send, oldest first, at most one per record: NEW rows, SENT rows (in
        /// flight, or left by a process that died; the sync engine settles those before it
        /// drains) and transient failures whose backoff has passed at `now`.
        fn pending_writes(now: DateTime<Utc>, limit: usize) -> Vec<OutboxRow>
            = outbox::pending_writes;
        /// [`Store::pending_writes`] with an id above `after`: the same rows read page by
        /// page.
        fn pending_writes_after(now: DateTime<Utc>, after: i64, limit: usize) -> Vec<OutboxRow>
            = outbox::pending_writes_after;
        /// How many rows [`Store::pending_writes`] would return without a limit, by object.
        fn pending_write_counts(now: DateTime<Utc>) -> BTreeMap<String, u64>
            = outbox::pending_write_counts;
        /// Rows not settled yet: NEW, SENT, and transient failures, whatever their backoff.
        fn unsettled_writes() -> Vec<OutboxRow> = outbox::unsettled_writes;
        /// Writes the CRM refused for good, or an admin ignored, and nothing has replaced
        /// since: the same values are not to be sent again. Writes the sync engine set aside
        /// are not among them.
        fn standing_refusals() -> Vec<OutboxRow> = outbox::standing_refusals;
        /// One outbox row (live, not archived).
        fn write(id: i64) -> Option<OutboxRow> = outbox::outbox_row;
        /// How many writes are not settled (NEW, SENT, transient FAILED) and when the oldest
        /// was queued.
        fn outbox_depth() -> (u64, Option<DateTime<Utc>>) = outbox::outbox_depth;

        /// The last `n` runs, newest first.
        fn recent_runs(n: usize) -> Vec<RunRow> = ops::recent_runs;
        /// The findings of the last recompute, in the order they were recorded.
        fn findings() -> Vec<Finding> = ops::findings;
        /// A value of the store's key-value table.
        fn meta(key: &str) -> Option<String> = ops::meta;

        /// A plan's recorded metric changes, oldest first (those at or after `since` when
        /// given).
        fn plan_history(plan_id: &str, since: Option<DateTime<Utc>>) -> Vec<HistoryPoint>
            = history::of_plan;
    }
    writes {
        /// Stores one page of pulled records and advances the object's cursor, together.
        fn apply_page(object: &str, records: &[MirrorRecord], cursor: Option<&Cursor>)
            -> PageStats = ops::apply_page;
        /// Forgets the object's cursor, so the next pull starts from the beginning.
        fn reset_cursor(object: &str) -> () = ops::reset_cursor;
        /// Starts a full pull's list of the Ids it found live, empty (a temporary table of
        /// this connection: nothing in memory, nothing left after the process).
        fn clear_noted_live(object: &str) -> () = ops::clear_noted_live;
        /// Adds Ids a full pull found live to its list.
        fn note_live(object: &str, ids: &[String]) -> () = ops::note_live;
        /// Deletes rows (live or tombstone) outright; returns how many existed.
        fn remove_records(object: &str, ids: &[String]) -> usize = ops::remove_records;
        /// Merges `fields` into a stored record after a successful write, so the mirror holds
        /// what the CRM now has. A missing record is [`StoreError::NotFound`].
        fn patch_record(object: &str, id: &str, fields: &Map<String, Value>) -> ()
            = ops::patch_record;
        /// Deletes deleted-record tombstones last changed before `older_than` (the CRM's
        /// recycle bin keeps deleted records 15 days; after that nothing refers to them).
        fn purge_tombstones(older_than: DateTime<Utc>) -> usize = ops::purge_tombstones;

        /// Queues writes together (superseding older unsent writes for the same record, see
        /// the module docs); returns the outbox id of each write, in order.
        fn enqueue(writes: &[NewWrite], now: DateTime<Utc>) -> Vec<i64> = outbox::enqueue;
        /// Marks rows SENT and counts the attempt; call just before sending.
        fn mark_sent(ids: &[i64], now: DateTime<Utc>) -> () = outbox::mark_sent;
        /// Marks rows SUCCEEDED: the CRM holds their values.
        fn mark_succeeded(ids: &[i64], now: DateTime<Utc>) -> () = outbox::mark_succeeded;
        /// Records a failure with the CRM's statusCode and message. A transient failure is
        /// retried after a backoff (1, 2, 4 ... minutes, at most 60) by
        /// [`Store::pending_writes`]; a permanent one waits for a newer write for the record or
        /// an admin.
        fn mark_failed(
            id: i64,
            error_code: &str,
            message: &str,
            permanent: bool,
            now: DateTime<Utc>
        ) -> () = outbox::mark_failed;
        /// Settles SENT rows whose outcome was unknown, together: `landed` (the CRM holds
        /// their values) become SUCCEEDED, `requeued` go back to NEW. A row no longer SENT (an
        /// admin ignored it meanwhile) is left as it is; returns how many rows were settled.
        fn settle_in_doubt(landed: &[i64], requeued: &[i64], now: DateTime<Utc>) -> usize
            = outbox::settle_in_doubt;
        /// Admin: puts a FAILED or IGNORED row back to NEW, due at once.
        fn retry_write(id: i64, now: DateTime<Utc>) -> () = outbox::retry_write;
        /// Admin: gives up on a NEW, SENT or FAILED row.
        fn ignore_write(id: i64, now: DateTime<Utc>) -> () = outbox::ignore_write;
        /// Sync engine: sets aside a NEW, SENT or FAILED row no recompute wants any more
        /// (IGNORED with `set_aside`, which is no refusal of its values).
        fn set_aside_write(id: i64, now: DateTime<Utc>) -> () = outbox::set_aside_write;
        /// Moves SUCCEEDED and IGNORED rows last updated before `older_than` to the archive
        /// (FAILED rows stay until retried, superseded or ignored); returns how many moved.
        fn archive_writes(older_than: DateTime<Utc>) -> usize = outbox::archive_writes;

        /// Opens an entry of the run log; returns its id.
        fn start_run(kind: &str, started_at: DateTime<Utc>) -> i64 = ops::start_run;
        /// `outcome` is `succeeded`, `failed` or `partial`.
        fn finish_run(run_id: i64, outcome: &str, summary: &Value, finished_at: DateTime<Utc>)
            -> () = ops::finish_run;
        /// Deletes the run log's finished runs that started before `older_than`.
        fn prune_runs(older_than: DateTime<Utc>) -> usize = ops::prune_runs;
        /// Replaces every finding with `findings` (kind, subject ids, message).
        fn replace_findings(findings: &[(String, String, String)]) -> () = ops::replace_findings;
        /// Replaces the findings of `kind` only, with those of `findings` of that kind.
        fn replace_findings_of_kind(kind: &str, findings: &[(String, String, String)]) -> ()
            = ops::replace_findings_of_kind;
        /// Sets a value of the store's key-value table.
        fn set_meta(key: &str, value: &str) -> () = ops::set_meta;

        /// Records `metrics` (by run `run_id`, at `at`) for each plan whose values changed
        /// since its previous history row; returns how many rows were added.
        fn record_history(run_id: i64, at: DateTime<Utc>, metrics: &[PlanMetrics]) -> usize
            = history::record;
        /// Deletes history rows recorded before `older_than`, except each plan's newest.
        fn prune_history(older_than: DateTime<Utc>) -> usize = history::prune;
    }
}

/// A transaction on the store, from [`Store::transaction`]: the same operations as [`Store`],
/// committed together or not at all.
pub struct StoreTx<'a> {
    tx: rusqlite::Transaction<'a>,
}
