//! The embedded, numbered, append-only SQLite migrations from `schema/` and the code that
//! applies them, tracking the version in `PRAGMA user_version`.

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use super::StoreError;

/// Every migration, in number order: (number, name, SQL). The number is the one in the file
/// name, and the schema version a database has once the migration is applied. Numbers rise
/// but need not be contiguous (a number may be taken by work not in this build); append only,
/// never edit, renumber or reorder a released entry.
pub(crate) const MIGRATIONS: &[(u32, &str, &str)] = &[
    (1, "0001_init", include_str!("../../schema/0001_init.sql")),
    (
        2,
        "0002_plan_history",
        include_str!("../../schema/0002_plan_history.sql"),
    ),
    (
        3,
        "0003_outbox_set_aside",
        include_str!("../../schema/0003_outbox_set_aside.sql"),
    ),
    (
        4,
        "0004_streaming",
        include_str!("../../schema/0004_streaming.sql"),
    ),
    (
        5,
        "0005_outbox_settled",
        include_str!("../../schema/0005_outbox_settled.sql"),
    ),
];

/// The schema version this binary creates and understands: the last migration's number.
pub const LATEST_VERSION: u32 = MIGRATIONS[MIGRATIONS.len() - 1].0;

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
        // The first migration the database lacks: the one numbered above its version.
        let Some(&(next, name, sql)) = MIGRATIONS.iter().find(|(n, _, _)| *n > current) else {
            return Ok(current);
        };
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
    fn migration_numbers_match_their_files_and_rise() {
        let mut previous = 0;
        for (number, name, _) in MIGRATIONS {
            let named: u32 = name[..4].parse().unwrap();
            assert_eq!(named, *number, "migration {name} carries another number");
            assert_eq!(&name[4..5], "_", "migration {name}: NNNN_what");
            assert!(*number > previous, "migration {name} is out of order");
            previous = *number;
        }
        assert_eq!(LATEST_VERSION, previous);
    }

    #[test]
    fn migration_files_in_schema_are_all_listed() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema");
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter_map(|f| f.strip_suffix(".sql").map(str::to_string))
            .collect();
        files.sort();
        let listed: Vec<String> = MIGRATIONS.iter().map(|(_, n, _)| n.to_string()).collect();
        assert_eq!(files, listed);
    }

    #[test]
    fn a_database_at_an_older_version_gets_only_the_later_migrations() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        let mut conn = Connection::open(&path).unwrap();
        // A version 1 store, as the first release left it, with a queued write.
        conn.execute_batch(MIGRATIONS[0].2).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.execute(
            "INSERT INTO outbox (object, record_id, kind, fields, reason, status, created_at,
                updated_at)
             VALUES ('Account_Plan__c', 'a0P1', 'update', '{}', 'rollups', 'ignored', 't', 't')",
            [],
        )
        .unwrap();
        assert_eq!(migrate(&mut conn, &path).unwrap(), LATEST_VERSION);
        assert_eq!(user_version(&conn).unwrap(), LATEST_VERSION);
        let set_aside: i64 = conn
            .query_row("SELECT set_aside FROM outbox", [], |row| row.get(0))
            .unwrap();
        assert_eq!(set_aside, 0, "an existing row keeps its meaning");
        // Nothing left to do the second time.
        assert_eq!(migrate(&mut conn, &path).unwrap(), LATEST_VERSION);
    }
}
