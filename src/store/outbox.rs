//! The outbox of pending CRM writes: queueing with supersession, what is due, and the
//! state machine NEW → SENT → SUCCEEDED | FAILED | IGNORED with its backoff, settling of
//! writes in doubt, admin retry and ignore, and the archive (see the rules in [`super`]).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row};

use super::ops::{fields_text, parse_fields, parse_ts, sql_limit, ts};
use super::{NewWrite, OutboxRow, StoreError, WriteKind, WriteStatus};

/// Longest wait before a transient failure is retried.
const MAX_BACKOFF_MINUTES: i64 = 60;

const OUTBOX_COLUMNS: &str = "id, object, record_id, kind, external_id_field, fields, reason, \
     status, attempts, last_error_code, last_error_message, permanent, next_attempt_at, \
     superseded_by, created_at, updated_at, set_aside";

/// Unsettled rows: they still have to reach the CRM.
const UNSETTLED: &str = "(status IN ('new', 'sent') OR (status = 'failed' AND permanent = 0))";

struct RawOutbox {
    id: i64,
    object: String,
    record_id: String,
    kind: String,
    external_id_field: Option<String>,
    fields: String,
    reason: String,
    status: String,
    attempts: u32,
    last_error_code: Option<String>,
    last_error_message: Option<String>,
    permanent: bool,
    next_attempt_at: Option<String>,
    superseded_by: Option<i64>,
    created_at: String,
    updated_at: String,
    set_aside: bool,
}

fn raw_outbox(row: &Row<'_>) -> rusqlite::Result<RawOutbox> {
    Ok(RawOutbox {
        id: row.get(0)?,
        object: row.get(1)?,
        record_id: row.get(2)?,
        kind: row.get(3)?,
        external_id_field: row.get(4)?,
        fields: row.get(5)?,
        reason: row.get(6)?,
        status: row.get(7)?,
        attempts: row.get(8)?,
        last_error_code: row.get(9)?,
        last_error_message: row.get(10)?,
        permanent: row.get(11)?,
        next_attempt_at: row.get(12)?,
        superseded_by: row.get(13)?,
        created_at: row.get(14)?,
        updated_at: row.get(15)?,
        set_aside: row.get(16)?,
    })
}

fn parse_status(text: &str, what: &str) -> Result<WriteStatus, StoreError> {
    WriteStatus::parse(text).ok_or_else(|| StoreError::Corrupt {
        what: format!("{what}: unknown status {text:?}"),
    })
}

impl TryFrom<RawOutbox> for OutboxRow {
    type Error = StoreError;

    fn try_from(raw: RawOutbox) -> Result<OutboxRow, StoreError> {
        let what = format!("outbox write {}", raw.id);
        let kind = parse_kind(&raw.kind, raw.external_id_field, &what)?;
        Ok(OutboxRow {
            id: raw.id,
            kind,
            fields: parse_fields(&raw.fields, &what)?,
            status: parse_status(&raw.status, &what)?,
            next_attempt_at: raw
                .next_attempt_at
                .as_deref()
                .map(|t| parse_ts(t, &what))
                .transpose()?,
            created_at: parse_ts(&raw.created_at, &what)?,
            updated_at: parse_ts(&raw.updated_at, &what)?,
            object: raw.object,
            record_id: raw.record_id,
            reason: raw.reason,
            attempts: raw.attempts,
            last_error_code: raw.last_error_code,
            last_error_message: raw.last_error_message,
            permanent: raw.permanent,
            superseded_by: raw.superseded_by,
            set_aside: raw.set_aside,
        })
    }
}

/// A write kind as its two columns: `update` or `upsert`, and the upsert's external id field.
pub(super) fn kind_columns(kind: &WriteKind) -> (&'static str, Option<&str>) {
    match kind {
        WriteKind::Update => ("update", None),
        WriteKind::Upsert { external_id_field } => ("upsert", Some(external_id_field.as_str())),
    }
}

/// The write kind of [`kind_columns`]' two columns, of the row `what`.
pub(super) fn parse_kind(
    kind: &str,
    external_id_field: Option<String>,
    what: &str,
) -> Result<WriteKind, StoreError> {
    match (kind, external_id_field) {
        ("update", None) => Ok(WriteKind::Update),
        ("upsert", Some(external_id_field)) => Ok(WriteKind::Upsert { external_id_field }),
        (kind, _) => Err(StoreError::Corrupt {
            what: format!("{what}: kind {kind:?} with a mismatched external id field"),
        }),
    }
}

fn query_outbox(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<OutboxRow>, StoreError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let raws = stmt
        .query_map(params, raw_outbox)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    raws.into_iter().map(OutboxRow::try_from).collect()
}

pub(crate) fn outbox_row(conn: &Connection, id: i64) -> Result<Option<OutboxRow>, StoreError> {
    let sql = format!("SELECT {OUTBOX_COLUMNS} FROM outbox WHERE id = ?1");
    Ok(query_outbox(conn, &sql, [id])?.into_iter().next())
}

pub(crate) fn outbox_by_status(
    conn: &Connection,
    status: WriteStatus,
) -> Result<Vec<OutboxRow>, StoreError> {
    let sql = format!("SELECT {OUTBOX_COLUMNS} FROM outbox WHERE status = ?1 ORDER BY id");
    query_outbox(conn, &sql, [status.as_str()])
}

pub(crate) fn enqueue(
    conn: &Connection,
    writes: &[NewWrite],
    now: DateTime<Utc>,
) -> Result<Vec<i64>, StoreError> {
    let now = ts(now);
    let mut ids = Vec::with_capacity(writes.len());
    for write in writes {
        let (kind, external_id_field) = kind_columns(&write.kind);
        let fields = fields_text(&write.fields)?;
        let supersedable: Vec<i64> = conn
            .prepare_cached(
                "SELECT id FROM outbox
                 WHERE object = ?1 AND record_id = ?2 AND kind = ?3 AND external_id_field IS ?4
                   AND (status IN ('new', 'sent') OR (status = 'failed' AND permanent = 0))
                 ORDER BY id",
            )?
            .query_map(
                params![write.object, write.record_id, kind, external_id_field],
                |row| row.get(0),
            )?
            .collect::<rusqlite::Result<_>>()?;
        let id = match supersedable.first() {
            Some(&id) => {
                conn.execute(
                    "UPDATE outbox SET fields = ?2, reason = ?3, status = 'new', attempts = 0,
                        last_error_code = NULL, last_error_message = NULL, permanent = 0,
                        next_attempt_at = NULL, set_aside = 0, updated_at = ?4
                     WHERE id = ?1",
                    params![id, fields, write.reason, now],
                )?;
                id
            }
            None => {
                conn.execute(
                    "INSERT INTO outbox (object, record_id, kind, external_id_field, fields,
                        reason, status, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'new', ?7, ?7)",
                    params![
                        write.object,
                        write.record_id,
                        kind,
                        external_id_field,
                        fields,
                        write.reason,
                        now
                    ],
                )?;
                conn.last_insert_rowid()
            }
        };
        // Older duplicates not known to have reached the CRM, and permanent failures for the
        // record, are replaced by `id`.
        conn.execute(
            "UPDATE outbox SET status = 'ignored', superseded_by = ?4, updated_at = ?5
             WHERE object = ?1 AND record_id = ?2 AND kind = ?3 AND id <> ?4
               AND status IN ('new', 'sent', 'failed')",
            params![write.object, write.record_id, kind, id, now],
        )?;
        ids.push(id);
    }
    Ok(ids)
}

pub(crate) fn pending_writes(
    conn: &Connection,
    now: DateTime<Utc>,
    limit: usize,
) -> Result<Vec<OutboxRow>, StoreError> {
    pending_writes_after(conn, now, 0, limit)
}

/// Due rows, at most one per record (the oldest unsettled one): the WHERE of the pending
/// reads.
const DUE: &str = "(o.status IN ('new', 'sent')
                OR (o.status = 'failed' AND o.permanent = 0
                    AND (o.next_attempt_at IS NULL OR o.next_attempt_at <= ?1)))
           AND NOT EXISTS (
                SELECT 1 FROM outbox AS p
                WHERE p.object = o.object AND p.record_id = o.record_id AND p.id < o.id
                  AND (p.status IN ('new', 'sent') OR (p.status = 'failed' AND p.permanent = 0)))";

pub(crate) fn pending_writes_after(
    conn: &Connection,
    now: DateTime<Utc>,
    after: i64,
    limit: usize,
) -> Result<Vec<OutboxRow>, StoreError> {
    let sql = format!(
        "SELECT {OUTBOX_COLUMNS} FROM outbox AS o
         WHERE o.id > ?3 AND {DUE}
         ORDER BY o.id
         LIMIT ?2"
    );
    query_outbox(conn, &sql, params![ts(now), sql_limit(limit), after])
}

pub(crate) fn pending_write_counts(
    conn: &Connection,
    now: DateTime<Utc>,
) -> Result<BTreeMap<String, u64>, StoreError> {
    let sql = format!("SELECT o.object, COUNT(*) FROM outbox AS o WHERE {DUE} GROUP BY o.object");
    let mut stmt = conn.prepare_cached(&sql)?;
    let counts = stmt
        .query_map(params![ts(now)], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(counts
        .into_iter()
        .map(|(object, n)| (object, u64::try_from(n).unwrap_or(0)))
        .collect())
}

/// Settles writes whose outcome was unknown: `landed` (the CRM holds their values) succeed,
/// `requeued` go back to NEW, to be superseded, set aside or sent again. A row no longer SENT
/// (an admin ignored it meanwhile) keeps the admin's decision; returns how many were settled.
pub(crate) fn settle_in_doubt(
    conn: &Connection,
    landed: &[i64],
    requeued: &[i64],
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    let now = ts(now);
    let mut stmt = conn.prepare_cached(
        "UPDATE outbox SET status = ?2, last_error_code = NULL, last_error_message = NULL,
            permanent = 0, next_attempt_at = NULL, updated_at = ?3
         WHERE id = ?1 AND status = 'sent'",
    )?;
    let mut settled = 0;
    for (ids, status) in [(landed, "succeeded"), (requeued, "new")] {
        for &id in ids {
            settled += stmt.execute(params![id, status, now])?;
        }
    }
    Ok(settled)
}

/// Reads a row's status and checks it is one of `allowed`.
fn status_for(
    conn: &Connection,
    id: i64,
    allowed: &[WriteStatus],
    action: &'static str,
) -> Result<WriteStatus, StoreError> {
    let text: Option<String> = conn
        .query_row("SELECT status FROM outbox WHERE id = ?1", [id], |row| {
            row.get(0)
        })
        .optional()?;
    let Some(text) = text else {
        return Err(StoreError::NotFound {
            what: format!("outbox write {id}"),
        });
    };
    let status = parse_status(&text, &format!("outbox write {id}"))?;
    if allowed.contains(&status) {
        Ok(status)
    } else {
        Err(StoreError::InvalidState { id, status, action })
    }
}

/// A status change of outbox rows: the states it applies to, its name in
/// [`StoreError::InvalidState`], and the columns it sets (besides `updated_at`).
struct Transition {
    from: &'static [WriteStatus],
    action: &'static str,
    set: &'static str,
}

/// Just before sending: counts the attempt.
const SEND: Transition = Transition {
    from: &[WriteStatus::New, WriteStatus::Sent, WriteStatus::Failed],
    action: "send",
    set: "status = 'sent', attempts = attempts + 1, next_attempt_at = NULL",
};

/// The CRM has the values, whatever happened to the row meanwhile, so any state may succeed.
const SUCCEED: Transition = Transition {
    from: &[
        WriteStatus::New,
        WriteStatus::Sent,
        WriteStatus::Failed,
        WriteStatus::Ignored,
        WriteStatus::Succeeded,
    ],
    action: "mark as succeeded",
    set: "status = 'succeeded', last_error_code = NULL, last_error_message = NULL, \
          permanent = 0, next_attempt_at = NULL",
};

/// An admin's retry: due at once, no longer superseded or set aside.
const RETRY: Transition = Transition {
    from: &[WriteStatus::Failed, WriteStatus::Ignored],
    action: "retry",
    set: "status = 'new', permanent = 0, next_attempt_at = NULL, superseded_by = NULL, \
          set_aside = 0",
};

/// An admin's giving up on a write: IGNORED, a refusal of its values.
const IGNORE: Transition = Transition {
    from: &[WriteStatus::New, WriteStatus::Sent, WriteStatus::Failed],
    action: "ignore",
    set: "status = 'ignored', next_attempt_at = NULL, set_aside = 0",
};

/// The sync engine's setting aside of a write no recompute wants any more: IGNORED, but no
/// refusal of its values (see [`standing_refusals`]).
const SET_ASIDE: Transition = Transition {
    from: &[WriteStatus::New, WriteStatus::Sent, WriteStatus::Failed],
    action: "set aside",
    set: "status = 'ignored', next_attempt_at = NULL, set_aside = 1",
};

impl Transition {
    /// Moves each row of `ids`, after checking its status is one the change applies to.
    fn apply(&self, conn: &Connection, ids: &[i64], now: DateTime<Utc>) -> Result<(), StoreError> {
        let now = ts(now);
        let sql = format!(
            "UPDATE outbox SET {}, updated_at = ?2 WHERE id = ?1",
            self.set
        );
        for &id in ids {
            status_for(conn, id, self.from, self.action)?;
            conn.execute(&sql, params![id, now])?;
        }
        Ok(())
    }
}

pub(crate) fn mark_sent(
    conn: &Connection,
    ids: &[i64],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    SEND.apply(conn, ids, now)
}

pub(crate) fn mark_succeeded(
    conn: &Connection,
    ids: &[i64],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    SUCCEED.apply(conn, ids, now)
}

pub(crate) fn retry_write(
    conn: &Connection,
    id: i64,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    RETRY.apply(conn, &[id], now)
}

pub(crate) fn ignore_write(
    conn: &Connection,
    id: i64,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    IGNORE.apply(conn, &[id], now)
}

pub(crate) fn set_aside_write(
    conn: &Connection,
    id: i64,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    SET_ASIDE.apply(conn, &[id], now)
}

/// Minutes to wait after the `attempts`-th send failed transiently: 1, 2, 4 ... at most 60.
pub(crate) fn backoff_minutes(attempts: u32) -> i64 {
    let exponent = attempts.saturating_sub(1).min(6);
    (1_i64 << exponent).min(MAX_BACKOFF_MINUTES)
}

pub(crate) fn mark_failed(
    conn: &Connection,
    id: i64,
    error_code: &str,
    message: &str,
    permanent: bool,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    use WriteStatus::*;
    let status = status_for(conn, id, &[New, Sent, Failed, Ignored], "mark as failed")?;
    let attempts: u32 =
        conn.query_row("SELECT attempts FROM outbox WHERE id = ?1", [id], |row| {
            row.get(0)
        })?;
    let next_attempt_at =
        (!permanent).then(|| ts(now + Duration::minutes(backoff_minutes(attempts))));
    // An admin may have ignored the row while it was in flight: keep it ignored.
    let new_status = if status == Ignored { Ignored } else { Failed };
    conn.execute(
        "UPDATE outbox SET status = ?2, last_error_code = ?3, last_error_message = ?4,
            permanent = ?5, next_attempt_at = ?6, updated_at = ?7
         WHERE id = ?1",
        params![
            id,
            new_status.as_str(),
            error_code,
            message,
            permanent,
            next_attempt_at,
            ts(now)
        ],
    )?;
    Ok(())
}

/// Settled rows last updated before `?1`, found by the `outbox_settled` index.
const SETTLED_BEFORE: &str = "status IN ('succeeded', 'ignored') AND updated_at < ?1";

pub(crate) fn archive_writes(
    conn: &Connection,
    older_than: DateTime<Utc>,
) -> Result<usize, StoreError> {
    let cutoff = ts(older_than);
    let settled = SETTLED_BEFORE;
    conn.execute(
        &format!(
            "INSERT INTO outbox_archive (id, object, record_id, kind, external_id_field, fields,
                reason, status, attempts, last_error_code, last_error_message, permanent,
                superseded_by, created_at, updated_at, set_aside)
             SELECT id, object, record_id, kind, external_id_field, fields, reason, status,
                attempts, last_error_code, last_error_message, permanent, superseded_by,
                created_at, updated_at, set_aside
             FROM outbox WHERE {settled}"
        ),
        [&cutoff],
    )?;
    Ok(conn.execute(&format!("DELETE FROM outbox WHERE {settled}"), [&cutoff])?)
}

pub(crate) fn outbox_depth(conn: &Connection) -> Result<(u64, Option<DateTime<Utc>>), StoreError> {
    let (count, oldest): (u64, Option<String>) = conn.query_row(
        &format!("SELECT count(*), min(created_at) FROM outbox WHERE {UNSETTLED}"),
        [],
        |row| row.try_into(),
    )?;
    let oldest = oldest
        .map(|t| parse_ts(&t, "oldest outbox write"))
        .transpose()?;
    Ok((count, oldest))
}

pub(crate) fn unsettled_writes(conn: &Connection) -> Result<Vec<OutboxRow>, StoreError> {
    let sql = format!("SELECT {OUTBOX_COLUMNS} FROM outbox WHERE {UNSETTLED} ORDER BY id");
    query_outbox(conn, &sql, [])
}

pub(crate) fn standing_refusals(conn: &Connection) -> Result<Vec<OutboxRow>, StoreError> {
    let sql = format!(
        "SELECT {OUTBOX_COLUMNS} FROM outbox
         WHERE (status = 'failed' AND permanent = 1)
            OR (status = 'ignored' AND superseded_by IS NULL AND set_aside = 0)
         ORDER BY id"
    );
    query_outbox(conn, &sql, [])
}

/// Whether SQLite finds the rows to archive by a range of the `outbox_settled` index rather
/// than by reading every settled row (for tests).
#[cfg(test)]
pub(crate) fn archive_uses_index(conn: &Connection) -> bool {
    let sql = format!("EXPLAIN QUERY PLAN SELECT id FROM outbox WHERE {SETTLED_BEFORE}");
    let Ok(mut stmt) = conn.prepare(&sql) else {
        return false;
    };
    let details: Vec<String> = stmt
        .query_map(["2026-01-01T00:00:00.000Z"], |row| row.get::<_, String>(3))
        .map(|rows| rows.filter_map(Result::ok).collect())
        .unwrap_or_default();
    details
        .iter()
        .any(|d| d.contains("outbox_settled (status=? AND updated_at<?)"))
}
