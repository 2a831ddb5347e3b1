//! The writes a recompute plans, staged between the recompute and the enqueue in a temporary
//! table of the connection: a recompute of the whole org plans a write for most of its
//! opportunities, and holding them in memory until the enqueue would make the run's memory
//! grow with the org. Nothing here is durable: the table lives as long as the connection,
//! and a run that dies before its enqueue leaves nothing behind.

use rusqlite::{params, Connection, OptionalExtension};

use super::ops::{fields_text, parse_fields, sql_limit};
use super::outbox::{kind_columns, parse_kind};
use super::{NewWrite, StoreError};

fn ensure(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch(
        "CREATE TEMP TABLE IF NOT EXISTS staged_writes (
             object            TEXT NOT NULL,
             record_id         TEXT NOT NULL,
             kind              TEXT NOT NULL,
             external_id_field TEXT,
             fields            TEXT NOT NULL,
             reason            TEXT NOT NULL,
             PRIMARY KEY (object, record_id)
         ) WITHOUT ROWID",
    )?;
    Ok(())
}

pub(crate) fn clear(conn: &Connection) -> Result<(), StoreError> {
    ensure(conn)?;
    conn.execute("DELETE FROM temp.staged_writes", [])?;
    Ok(())
}

/// Stages `writes`; a record already staged keeps its first write.
pub(crate) fn stage(conn: &Connection, writes: &[NewWrite]) -> Result<(), StoreError> {
    ensure(conn)?;
    let mut stmt = conn.prepare_cached(
        "INSERT OR IGNORE INTO temp.staged_writes
             (object, record_id, kind, external_id_field, fields, reason)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for write in writes {
        let (kind, external_id_field) = kind_columns(&write.kind);
        stmt.execute(params![
            write.object,
            write.record_id,
            kind,
            external_id_field,
            fields_text(&write.fields)?,
            write.reason
        ])?;
    }
    Ok(())
}

pub(crate) fn count(conn: &Connection, object: &str) -> Result<u64, StoreError> {
    ensure(conn)?;
    let n: i64 = conn.query_row(
        "SELECT COUNT(*) FROM temp.staged_writes WHERE object = ?1",
        [object],
        |row| row.get(0),
    )?;
    Ok(u64::try_from(n).unwrap_or(0))
}

pub(crate) fn is_staged(
    conn: &Connection,
    object: &str,
    record_id: &str,
) -> Result<bool, StoreError> {
    ensure(conn)?;
    Ok(conn
        .prepare_cached("SELECT 1 FROM temp.staged_writes WHERE object = ?1 AND record_id = ?2")?
        .query_row([object, record_id], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Up to `limit` staged writes after the (object, record Id) `after`, in that order.
pub(crate) fn page(
    conn: &Connection,
    after: Option<(&str, &str)>,
    limit: usize,
) -> Result<Vec<NewWrite>, StoreError> {
    ensure(conn)?;
    let (object, record_id) = after.unwrap_or(("", ""));
    let mut stmt = conn.prepare_cached(
        "SELECT object, record_id, kind, external_id_field, fields, reason
         FROM temp.staged_writes
         WHERE (object, record_id) > (?1, ?2)
         ORDER BY object, record_id
         LIMIT ?3",
    )?;
    let raws = stmt
        .query_map(params![object, record_id, sql_limit(limit)], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, Option<String>>(3)?,
                row.get::<_, String>(4)?,
                row.get::<_, String>(5)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    raws.into_iter()
        .map(
            |(object, record_id, kind, external_id_field, fields, reason)| {
                let what = format!("staged write for {object} {record_id}");
                Ok(NewWrite {
                    kind: parse_kind(&kind, external_id_field, &what)?,
                    fields: parse_fields(&fields, &what)?,
                    object,
                    record_id,
                    reason,
                })
            },
        )
        .collect()
}
