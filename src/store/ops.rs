//! The SQL behind [`super::Store`] and [`super::StoreTx`]: every function takes a connection
//! (a transaction derefs to one), so the store's methods and its transactions share one body.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde_json::{Map, Value};

use super::{
    Cursor, Finding, MirrorRecord, NewWrite, OutboxRow, PageStats, RunRow, StoreError, WriteKind,
    WriteStatus,
};

/// Longest wait before a transient failure is retried.
const MAX_BACKOFF_MINUTES: i64 = 60;

/// RFC 3339 UTC with milliseconds: fixed width, so text order is time order.
pub(crate) fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn parse_ts(text: &str, what: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt {
            what: format!("{what}: timestamp {text:?}: {e}"),
        })
}

fn parse_fields(text: &str, what: &str) -> Result<Map<String, Value>, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt {
        what: format!("{what}: fields JSON: {e}"),
    })
}

fn fields_text(fields: &Map<String, Value>) -> Result<String, StoreError> {
    serde_json::to_string(fields).map_err(|e| StoreError::Invalid {
        what: format!("fields cannot be written as JSON: {e}"),
    })
}

fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

// ---- mirror ----

pub(crate) fn apply_page(
    conn: &Connection,
    object: &str,
    records: &[MirrorRecord],
    cursor: Option<&Cursor>,
) -> Result<PageStats, StoreError> {
    let mut stats = PageStats::default();
    let mut existing = conn.prepare_cached(
        "SELECT system_modstamp FROM mirror_records WHERE object = ?1 AND id = ?2",
    )?;
    let mut upsert = conn.prepare_cached(
        "INSERT INTO mirror_records (object, id, system_modstamp, is_deleted, fields)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (object, id) DO UPDATE SET
            system_modstamp = excluded.system_modstamp,
            is_deleted = excluded.is_deleted,
            fields = excluded.fields",
    )?;
    for record in records {
        let modstamp = ts(record.system_modstamp);
        let stored: Option<String> = existing
            .query_row(params![object, record.id], |row| row.get(0))
            .optional()?;
        if stored.as_deref().is_some_and(|s| s > modstamp.as_str()) {
            stats.stale += 1;
            continue;
        }
        upsert.execute(params![
            object,
            record.id,
            modstamp,
            record.is_deleted,
            fields_text(&record.fields)?
        ])?;
        if record.is_deleted {
            stats.deleted += 1;
        } else if stored.is_some() {
            stats.updated += 1;
        } else {
            stats.inserted += 1;
        }
    }
    if let Some(new) = cursor {
        let advance = match self::cursor(conn, object)? {
            Some(old) => *new > old,
            None => true,
        };
        if advance {
            conn.execute(
                "INSERT INTO cursors (object, system_modstamp, id) VALUES (?1, ?2, ?3)
                 ON CONFLICT (object) DO UPDATE SET
                    system_modstamp = excluded.system_modstamp, id = excluded.id",
                params![object, ts(new.system_modstamp), new.id],
            )?;
        }
    }
    Ok(stats)
}

pub(crate) fn cursor(conn: &Connection, object: &str) -> Result<Option<Cursor>, StoreError> {
    let row: Option<(String, String)> = conn
        .query_row(
            "SELECT system_modstamp, id FROM cursors WHERE object = ?1",
            [object],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()?;
    row.map(|(modstamp, id)| {
        Ok(Cursor {
            system_modstamp: parse_ts(&modstamp, &format!("cursor of {object}"))?,
            id,
        })
    })
    .transpose()
}

pub(crate) fn reset_cursor(conn: &Connection, object: &str) -> Result<(), StoreError> {
    conn.execute("DELETE FROM cursors WHERE object = ?1", [object])?;
    Ok(())
}

fn mirror_row(row: &Row<'_>) -> rusqlite::Result<(String, String, bool, String)> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
}

fn to_record(
    object: &str,
    (id, modstamp, is_deleted, fields): (String, String, bool, String),
) -> Result<MirrorRecord, StoreError> {
    let what = format!("{object} {id}");
    Ok(MirrorRecord {
        system_modstamp: parse_ts(&modstamp, &what)?,
        fields: parse_fields(&fields, &what)?,
        is_deleted,
        id,
    })
}

pub(crate) fn live_records(
    conn: &Connection,
    object: &str,
) -> Result<Vec<MirrorRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, system_modstamp, is_deleted, fields FROM mirror_records
         WHERE object = ?1 AND is_deleted = 0 ORDER BY id",
    )?;
    let rows = stmt.query_map([object], mirror_row)?;
    rows.map(|row| to_record(object, row?)).collect()
}

/// Calls `f` with each live record of `object` in Id order, one row at a time, so a caller
/// that converts rows need not hold every parsed record at once.
pub(crate) fn for_each_live_record(
    conn: &Connection,
    object: &str,
    f: &mut dyn FnMut(MirrorRecord),
) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, system_modstamp, is_deleted, fields FROM mirror_records
         WHERE object = ?1 AND is_deleted = 0 ORDER BY id",
    )?;
    let rows = stmt.query_map([object], mirror_row)?;
    for row in rows {
        f(to_record(object, row?)?);
    }
    Ok(())
}

/// The mirror's versions (live or tombstone) of the records with these Ids, by Id.
pub(crate) fn records_by_id(
    conn: &Connection,
    object: &str,
    ids: &[String],
) -> Result<std::collections::HashMap<String, MirrorRecord>, StoreError> {
    let mut found = std::collections::HashMap::with_capacity(ids.len());
    // Well under SQLite's limit on bound parameters per statement.
    for chunk in ids.chunks(500) {
        let marks = vec!["?"; chunk.len()].join(", ");
        let sql = format!(
            "SELECT id, system_modstamp, is_deleted, fields FROM mirror_records
             WHERE object = ? AND id IN ({marks})"
        );
        let mut stmt = conn.prepare_cached(&sql)?;
        let params = std::iter::once(object).chain(chunk.iter().map(String::as_str));
        let rows = stmt.query_map(rusqlite::params_from_iter(params), mirror_row)?;
        for row in rows {
            let record = to_record(object, row?)?;
            found.insert(record.id.clone(), record);
        }
    }
    Ok(found)
}

pub(crate) fn record(
    conn: &Connection,
    object: &str,
    id: &str,
) -> Result<Option<MirrorRecord>, StoreError> {
    let row = conn
        .query_row(
            "SELECT id, system_modstamp, is_deleted, fields FROM mirror_records
             WHERE object = ?1 AND id = ?2",
            [object, id],
            mirror_row,
        )
        .optional()?;
    row.map(|row| to_record(object, row)).transpose()
}

pub(crate) fn live_ids(conn: &Connection, object: &str) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id FROM mirror_records WHERE object = ?1 AND is_deleted = 0 ORDER BY id",
    )?;
    let ids = stmt
        .query_map([object], |row| row.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    Ok(ids)
}

pub(crate) fn remove_records(
    conn: &Connection,
    object: &str,
    ids: &[String],
) -> Result<usize, StoreError> {
    let mut stmt =
        conn.prepare_cached("DELETE FROM mirror_records WHERE object = ?1 AND id = ?2")?;
    let mut removed = 0;
    for id in ids {
        removed += stmt.execute([object, id.as_str()])?;
    }
    Ok(removed)
}

pub(crate) fn patch_record(
    conn: &Connection,
    object: &str,
    id: &str,
    fields: &Map<String, Value>,
) -> Result<(), StoreError> {
    let Some(mut current) = record(conn, object, id)? else {
        return Err(StoreError::NotFound {
            what: format!("{object} record {id} in the mirror"),
        });
    };
    for (name, value) in fields {
        current.fields.insert(name.clone(), value.clone());
    }
    conn.execute(
        "UPDATE mirror_records SET fields = ?3 WHERE object = ?1 AND id = ?2",
        params![object, id, fields_text(&current.fields)?],
    )?;
    Ok(())
}

// ---- outbox ----

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
        let kind = match (raw.kind.as_str(), raw.external_id_field) {
            ("update", None) => WriteKind::Update,
            ("upsert", Some(external_id_field)) => WriteKind::Upsert { external_id_field },
            (kind, _) => {
                return Err(StoreError::Corrupt {
                    what: format!("{what}: kind {kind:?} with a mismatched external id field"),
                })
            }
        };
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
        let (kind, external_id_field) = match &write.kind {
            WriteKind::Update => ("update", None),
            WriteKind::Upsert { external_id_field } => ("upsert", Some(external_id_field.as_str())),
        };
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
    let sql = format!(
        "SELECT {OUTBOX_COLUMNS} FROM outbox AS o
         WHERE (o.status IN ('new', 'sent')
                OR (o.status = 'failed' AND o.permanent = 0
                    AND (o.next_attempt_at IS NULL OR o.next_attempt_at <= ?1)))
           AND NOT EXISTS (
                SELECT 1 FROM outbox AS p
                WHERE p.object = o.object AND p.record_id = o.record_id AND p.id < o.id
                  AND (p.status IN ('new', 'sent') OR (p.status = 'failed' AND p.permanent = 0)))
         ORDER BY o.id
         LIMIT ?2"
    );
    query_outbox(conn, &sql, params![ts(now), sql_limit(limit)])
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

pub(crate) fn mark_sent(
    conn: &Connection,
    ids: &[i64],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    use WriteStatus::*;
    let now = ts(now);
    for &id in ids {
        status_for(conn, id, &[New, Sent, Failed], "send")?;
        conn.execute(
            "UPDATE outbox SET status = 'sent', attempts = attempts + 1, next_attempt_at = NULL,
                updated_at = ?2
             WHERE id = ?1",
            params![id, now],
        )?;
    }
    Ok(())
}

/// The CRM has the values, whatever happened to the row meanwhile, so any state may succeed.
pub(crate) fn mark_succeeded(
    conn: &Connection,
    ids: &[i64],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    use WriteStatus::*;
    let now = ts(now);
    for &id in ids {
        status_for(
            conn,
            id,
            &[New, Sent, Failed, Ignored, Succeeded],
            "mark as succeeded",
        )?;
        conn.execute(
            "UPDATE outbox SET status = 'succeeded', last_error_code = NULL,
                last_error_message = NULL, permanent = 0, next_attempt_at = NULL, updated_at = ?2
             WHERE id = ?1",
            params![id, now],
        )?;
    }
    Ok(())
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

pub(crate) fn retry_write(
    conn: &Connection,
    id: i64,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    use WriteStatus::*;
    status_for(conn, id, &[Failed, Ignored], "retry")?;
    conn.execute(
        "UPDATE outbox SET status = 'new', permanent = 0, next_attempt_at = NULL,
            superseded_by = NULL, set_aside = 0, updated_at = ?2
         WHERE id = ?1",
        params![id, ts(now)],
    )?;
    Ok(())
}

pub(crate) fn ignore_write(
    conn: &Connection,
    id: i64,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    use WriteStatus::*;
    status_for(conn, id, &[New, Sent, Failed], "ignore")?;
    conn.execute(
        "UPDATE outbox SET status = 'ignored', next_attempt_at = NULL, set_aside = 0,
            updated_at = ?2
         WHERE id = ?1",
        params![id, ts(now)],
    )?;
    Ok(())
}

/// The sync engine's setting aside of a write no recompute wants any more: IGNORED, but no
/// refusal of its values (see [`standing_refusals`]).
pub(crate) fn set_aside_write(
    conn: &Connection,
    id: i64,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    use WriteStatus::*;
    status_for(conn, id, &[New, Sent, Failed], "set aside")?;
    conn.execute(
        "UPDATE outbox SET status = 'ignored', next_attempt_at = NULL, set_aside = 1,
            updated_at = ?2
         WHERE id = ?1",
        params![id, ts(now)],
    )?;
    Ok(())
}

pub(crate) fn archive_writes(
    conn: &Connection,
    older_than: DateTime<Utc>,
) -> Result<usize, StoreError> {
    let cutoff = ts(older_than);
    let settled = "status IN ('succeeded', 'ignored') AND updated_at < ?1";
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
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    let oldest = oldest
        .map(|t| parse_ts(&t, "oldest outbox write"))
        .transpose()?;
    Ok((count, oldest))
}

// ---- runs ----

pub(crate) fn start_run(
    conn: &Connection,
    kind: &str,
    started_at: DateTime<Utc>,
) -> Result<i64, StoreError> {
    conn.execute(
        "INSERT INTO runs (kind, started_at) VALUES (?1, ?2)",
        params![kind, ts(started_at)],
    )?;
    Ok(conn.last_insert_rowid())
}

pub(crate) fn finish_run(
    conn: &Connection,
    run_id: i64,
    outcome: &str,
    summary: &Value,
    finished_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    if !matches!(outcome, "succeeded" | "failed" | "partial") {
        return Err(StoreError::Invalid {
            what: format!("run outcome {outcome:?} (expected succeeded, failed or partial)"),
        });
    }
    let summary = serde_json::to_string(summary).map_err(|e| StoreError::Invalid {
        what: format!("run summary: {e}"),
    })?;
    let changed = conn.execute(
        "UPDATE runs SET outcome = ?2, summary = ?3, finished_at = ?4 WHERE id = ?1",
        params![run_id, outcome, summary, ts(finished_at)],
    )?;
    if changed == 0 {
        return Err(StoreError::NotFound {
            what: format!("run {run_id}"),
        });
    }
    Ok(())
}

pub(crate) fn recent_runs(conn: &Connection, n: usize) -> Result<Vec<RunRow>, StoreError> {
    type RawRun = (
        i64,
        String,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    let mut stmt = conn.prepare_cached(
        "SELECT id, kind, started_at, finished_at, outcome, summary FROM runs
         ORDER BY id DESC LIMIT ?1",
    )?;
    let raws = stmt
        .query_map([sql_limit(n)], |row| {
            Ok((
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
                row.get(4)?,
                row.get(5)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<RawRun>>>()?;
    raws.into_iter()
        .map(|(id, kind, started_at, finished_at, outcome, summary)| {
            let what = format!("run {id}");
            Ok(RunRow {
                started_at: parse_ts(&started_at, &what)?,
                finished_at: finished_at
                    .as_deref()
                    .map(|t| parse_ts(t, &what))
                    .transpose()?,
                summary: summary
                    .as_deref()
                    .map(serde_json::from_str)
                    .transpose()
                    .map_err(|e| StoreError::Corrupt {
                        what: format!("{what}: summary JSON: {e}"),
                    })?,
                id,
                kind,
                outcome,
            })
        })
        .collect()
}

// ---- findings and meta ----

pub(crate) fn replace_findings(
    conn: &Connection,
    findings: &[(String, String, String)],
) -> Result<(), StoreError> {
    conn.execute("DELETE FROM findings", [])?;
    let mut stmt =
        conn.prepare_cached("INSERT INTO findings (kind, subject, message) VALUES (?1, ?2, ?3)")?;
    for (kind, subject, message) in findings {
        stmt.execute([kind, subject, message])?;
    }
    Ok(())
}

pub(crate) fn findings(conn: &Connection) -> Result<Vec<Finding>, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT kind, subject, message FROM findings ORDER BY id")?;
    let rows = stmt
        .query_map([], |row| {
            Ok(Finding {
                kind: row.get(0)?,
                subject: row.get(1)?,
                message: row.get(2)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

pub(crate) fn meta(conn: &Connection, key: &str) -> Result<Option<String>, StoreError> {
    Ok(conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [key], |row| {
            row.get(0)
        })
        .optional()?)
}

pub(crate) fn set_meta(conn: &Connection, key: &str, value: &str) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [key, value],
    )?;
    Ok(())
}

pub(crate) fn unsettled_writes(conn: &Connection) -> Result<Vec<OutboxRow>, StoreError> {
    let sql = format!(
        "SELECT {OUTBOX_COLUMNS} FROM outbox
         WHERE status IN ('new', 'sent') OR (status = 'failed' AND permanent = 0)
         ORDER BY id"
    );
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

pub(crate) fn prune_runs(
    conn: &Connection,
    older_than: DateTime<Utc>,
) -> Result<usize, StoreError> {
    Ok(conn.execute(
        "DELETE FROM runs WHERE finished_at IS NOT NULL AND started_at < ?1",
        params![ts(older_than)],
    )?)
}

pub(crate) fn purge_tombstones(
    conn: &Connection,
    older_than: DateTime<Utc>,
) -> Result<usize, StoreError> {
    Ok(conn.execute(
        "DELETE FROM mirror_records WHERE is_deleted = 1 AND system_modstamp < ?1",
        params![ts(older_than)],
    )?)
}
