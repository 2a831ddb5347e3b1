//! Reads of the mirror by reference: the live records of an object whose field (an AccountId,
//! a plan link, a WhatId or WhoId) holds one of some Ids, so the sync engine loads only the
//! records a group of plans needs instead of a whole object.
//!
//! The fields are configurable (`[mapping]`), so their indexes follow the mapping: for each
//! (object, field) the engine reads by, [`index_reference`] creates a partial expression index
//! on `json_extract(fields, '$."Field"')` over the object's live rows. SQLite uses such an
//! index only when a query spells the same expression and the same conditions, so the queries
//! here are built with the object and the path as SQL literals (the values stay bound
//! parameters). An index a mapping no longer uses stays and costs only its upkeep.

use std::collections::BTreeSet;

use rusqlite::Connection;

use super::{MirrorRecord, StoreError};

/// Values per `IN (...)` list: well under SQLite's limit on bound parameters.
const CHUNK: usize = 500;

/// `text` as an SQL string literal.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The JSON path of a top-level field, quoted (API names hold only letters, digits and `_`,
/// but a quote in a hand-written mapping must not break the statement).
fn path(field: &str) -> String {
    literal(&format!("$.\"{}\"", field.replace('"', "\"\"")))
}

fn expression(field: &str) -> String {
    format!("json_extract(fields, {})", path(field))
}

/// [`expression`] on the `fields` of the table named `table` in the query.
fn expression_of(table: &str, field: &str) -> String {
    format!("json_extract({table}.fields, {})", path(field))
}

/// The condition the index covers and every query repeats.
fn live_of(object: &str) -> String {
    format!("object = {} AND is_deleted = 0", literal(object))
}

/// The index's name: stable for an (object, field) pair, an SQL identifier whatever they hold.
fn index_name(object: &str, field: &str) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect()
    };
    // A digest of the exact pair keeps two pairs that clean to the same text apart.
    let digest = format!("{object}\u{0}{field}")
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    format!(
        "mirror_ref_{}_{}_{digest:016x}",
        clean(object),
        clean(field)
    )
}

/// Creates, when missing, the index that [`live_by_reference`] uses for `field` of `object`.
pub(crate) fn index_reference(
    conn: &Connection,
    object: &str,
    field: &str,
) -> Result<(), StoreError> {
    conn.execute_batch(&format!(
        "CREATE INDEX IF NOT EXISTS \"{}\" ON mirror_records ({}) WHERE {}",
        index_name(object, field),
        expression(field),
        live_of(object)
    ))?;
    Ok(())
}

/// The query of [`live_by_reference`] for `n` values. It names its index: without
/// statistics, SQLite prices a long `IN` list above a scan of the object's rows and would
/// evaluate the JSON of every row.
fn by_reference_sql(object: &str, field: &str, n: usize) -> String {
    let marks = vec!["?"; n].join(", ");
    format!(
        "SELECT id, system_modstamp, is_deleted, fields FROM mirror_records INDEXED BY \"{}\"
         WHERE {} AND {} IN ({marks})",
        index_name(object, field),
        live_of(object),
        expression(field)
    )
}

/// Calls `f` with each live record of `object` whose `field` is one of `values` (each record
/// once, whatever the order). Makes the index first when it is missing.
pub(crate) fn live_by_reference(
    conn: &Connection,
    object: &str,
    field: &str,
    values: &BTreeSet<String>,
    f: &mut dyn FnMut(MirrorRecord) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    if values.is_empty() {
        return Ok(());
    }
    index_reference(conn, object, field)?;
    let values: Vec<&String> = values.iter().collect();
    for chunk in values.chunks(CHUNK) {
        let mut stmt = conn.prepare_cached(&by_reference_sql(object, field, chunk.len()))?;
        let rows = stmt.query_map(
            rusqlite::params_from_iter(chunk.iter().map(|s| s.as_str())),
            super::ops::mirror_row,
        )?;
        for row in rows {
            f(super::ops::to_record(object, row?)?)?;
        }
    }
    Ok(())
}

/// Calls `f` with each live record of `object` whose `field` holds a value that is the Id of
/// no live record of `target` (a link to a plan that is gone).
pub(crate) fn live_with_dangling_reference(
    conn: &Connection,
    object: &str,
    field: &str,
    target: &str,
    f: &mut dyn FnMut(MirrorRecord) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let expr = expression_of("o", field);
    let sql = format!(
        "SELECT o.id, o.system_modstamp, o.is_deleted, o.fields FROM mirror_records o
         WHERE o.{live} AND {expr} IS NOT NULL AND NOT EXISTS (
             SELECT 1 FROM mirror_records t
             WHERE t.object = {target} AND t.is_deleted = 0 AND t.id = {expr})",
        live = live_of(object).replace(" AND ", " AND o."),
        target = literal(target),
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([], super::ops::mirror_row)?;
    for row in rows {
        f(super::ops::to_record(object, row?)?)?;
    }
    Ok(())
}

/// Whether SQLite plans a [`live_by_reference`] query of `n` values on `field` of `object`
/// as a search of its index (for tests).
#[cfg(test)]
pub(crate) fn uses_index(conn: &Connection, object: &str, field: &str, n: usize) -> bool {
    let sql = format!("EXPLAIN QUERY PLAN {}", by_reference_sql(object, field, n));
    let Ok(mut stmt) = conn.prepare(&sql) else {
        return false;
    };
    let values: Vec<String> = (0..n).map(|i| format!("001{i:015}")).collect();
    let details: Vec<String> = stmt
        .query_map(rusqlite::params_from_iter(values.iter()), |row| {
            row.get::<_, String>(3)
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    details.iter().any(|d| {
        d.starts_with("SEARCH") && d.contains(&index_name(object, field)) && d.contains("<expr>=?")
    })
}
