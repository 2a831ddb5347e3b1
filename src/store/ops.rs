//! The SQL behind [`super::Store`] and [`super::StoreTx`] for the mirror, the cursors, the run
//! log, findings and meta, and the value conversions every table shares (the outbox is in
//! [`super::outbox`], plan history in [`super::history`]). Every function takes a connection
//! (a transaction derefs to one), so the store's methods and its transactions share one body.

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde_json::{Map, Value};

use super::{Cursor, Finding, MirrorRecord, PageStats, RunRow, StoreError};

/// RFC 3339 UTC with milliseconds: fixed width, so text order is time order.
pub(crate) fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub(super) fn parse_ts(text: &str, what: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt {
            what: format!("{what}: timestamp {text:?}: {e}"),
        })
}

pub(super) fn parse_fields(text: &str, what: &str) -> Result<Map<String, Value>, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt {
        what: format!("{what}: fields JSON: {e}"),
    })
}

pub(super) fn fields_text(fields: &Map<String, Value>) -> Result<String, StoreError> {
    serde_json::to_string(fields).map_err(|e| StoreError::Invalid {
        what: format!("fields cannot be written as JSON: {e}"),
    })
}

pub(super) fn sql_limit(limit: usize) -> i64 {
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
            |row| row.try_into(),
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

pub(crate) fn mirror_row(row: &Row<'_>) -> rusqlite::Result<(String, String, bool, String)> {
    row.try_into()
}

pub(crate) fn to_record(
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

/// The Ids a full pull found live, object by object: a temporary table of this connection,
/// so a full pull of a million records holds none of their Ids in memory, and a process that
/// dies leaves nothing behind (its full pull is not complete, and reconciles nothing).
fn ensure_noted(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch(
        "CREATE TEMP TABLE IF NOT EXISTS pulled_live (
             object TEXT NOT NULL,
             id     TEXT NOT NULL,
             PRIMARY KEY (object, id)
         ) WITHOUT ROWID",
    )?;
    Ok(())
}

pub(crate) fn clear_noted_live(conn: &Connection, object: &str) -> Result<(), StoreError> {
    ensure_noted(conn)?;
    conn.execute("DELETE FROM temp.pulled_live WHERE object = ?1", [object])?;
    Ok(())
}

pub(crate) fn note_live(conn: &Connection, object: &str, ids: &[String]) -> Result<(), StoreError> {
    ensure_noted(conn)?;
    let mut stmt =
        conn.prepare_cached("INSERT OR IGNORE INTO temp.pulled_live (object, id) VALUES (?1, ?2)")?;
    for id in ids {
        stmt.execute([object, id.as_str()])?;
    }
    Ok(())
}

pub(crate) fn live_ids_not_noted(
    conn: &Connection,
    object: &str,
) -> Result<Vec<String>, StoreError> {
    ensure_noted(conn)?;
    let mut stmt = conn.prepare_cached(
        "SELECT m.id FROM mirror_records m WHERE m.object = ?1 AND m.is_deleted = 0 \
         AND NOT EXISTS (SELECT 1 FROM temp.pulled_live p WHERE p.object = ?1 AND p.id = m.id) \
         ORDER BY m.id",
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
        .query_map([sql_limit(n)], |row| RawRun::try_from(row))?
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
    insert_findings(conn, findings.iter())
}

fn insert_findings<'a>(
    conn: &Connection,
    findings: impl Iterator<Item = &'a (String, String, String)>,
) -> Result<(), StoreError> {
    let mut stmt =
        conn.prepare_cached("INSERT INTO findings (kind, subject, message) VALUES (?1, ?2, ?3)")?;
    for (kind, subject, message) in findings {
        stmt.execute([kind, subject, message])?;
    }
    Ok(())
}

pub(crate) fn replace_findings_of_kind(
    conn: &Connection,
    kind: &str,
    findings: &[(String, String, String)],
) -> Result<(), StoreError> {
    conn.execute("DELETE FROM findings WHERE kind = ?1", [kind])?;
    insert_findings(conn, findings.iter().filter(|(k, _, _)| k == kind))
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
