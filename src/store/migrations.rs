//! The embedded, numbered, append-only SQLite migrations from `schema/` and the code that
//! applies them, tracking the version in `PRAGMA user_version`.

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use super::StoreError;

/// Every migration, in order: entry `i` moves the schema from version `i` to `i + 1`.
/// Append only; never edit or reorder a released entry.
pub(crate) const MIGRATIONS: &[(&str, &str)] = &[
    ("0001_init", include_str!("../../schema/0001_init.sql")),
    (
        "0002_plan_history",
        include_str!("../../schema/0002_plan_history.sql"),
    ),
];

/// The schema version this binary creates and understands.
pub const LATEST_VERSION: u32 = MIGRATIONS.len() as u32;

pub(crate) fn user_version(conn: &Connection) -> Result<u32, rusqlite::Error> {
    conn.query_row("PRAGMA user_version", [], |row| row.get::<_, u32>(0))
}

/// Refuses a database written by a newer plansync, before anything touches it.
pub(crate) fn check_not_newer(conn: &Connection, path: &Path) -> Result<u32, StoreError> {
    let found = user_version(conn).map_err(|source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    if found > LATEST_VERSION {
        return Err(StoreError::TooNew {
            path: path.to_path_buf(),
            found,
            supported: LATEST_VERSION,
        });
    }
    Ok(found)
}

/// Applies every migration the database lacks, each in its own immediate transaction that
/// also sets `user_version`, so a crash leaves the database at a whole version. Two processes
/// migrating at once serialize on the write lock and the second finds nothing to do.
pub(crate) fn migrate(conn: &mut Connection, path: &Path) -> Result<u32, StoreError> {
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let current = user_version(&tx)?;
        if current > LATEST_VERSION {
            return Err(StoreError::TooNew {
                path: path.to_path_buf(),
                found: current,
                supported: LATEST_VERSION,
            });
        }
        if current == LATEST_VERSION {
            return Ok(current);
        }
        let next = current + 1;
        let (name, sql) = MIGRATIONS[current as usize];
        tx.execute_batch(sql)
            .and_then(|()| tx.pragma_update(None, "user_version", next))
            .and_then(|()| tx.commit())
            .map_err(|source| StoreError::Migration {
                version: next,
                name: name.to_string(),
                source,
            })?;
        tracing::info!(version = next, migration = name, "applied store migration");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migration_count_matches_the_numbered_files() {
        for (i, (name, _)) in MIGRATIONS.iter().enumerate() {
            let number: usize = name[..4].parse().unwrap();
            assert_eq!(number, i + 1, "migration {name} is out of order");
        }
        assert_eq!(LATEST_VERSION as usize, MIGRATIONS.len());
    }
}
