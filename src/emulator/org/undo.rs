//! Savepoints: the undo log of the writes made while one is open, and rolling back to it.

use super::{Org, Savepoint};
use crate::emulator::soql::Record;

/// How to undo one write.
#[derive(Debug)]
pub(super) enum Undo {
    Inserted {
        table: String,
        id: String,
    },
    Replaced {
        table: String,
        id: String,
        before: Record,
    },
}

impl Org {
    /// Starts recording undo information; [`Org::rollback_to`] undoes every write made since,
    /// [`Org::release`] keeps them. Savepoints nest.
    pub fn savepoint(&mut self) -> Savepoint {
        self.open_savepoints += 1;
        Savepoint {
            undo: self.undo.len(),
            changes: self.changes.len(),
        }
    }

    /// Undoes every write since `savepoint` and releases it. Ids and SystemModstamps handed
    /// out meanwhile are not reused.
    pub fn rollback_to(&mut self, savepoint: Savepoint) {
        self.changes.truncate(savepoint.changes);
        while self.undo.len() > savepoint.undo {
            match self.undo.pop() {
                Some(Undo::Inserted { table, id }) => {
                    if let Some(t) = self.tables.get_mut(&table) {
                        t.take(&id);
                    }
                }
                Some(Undo::Replaced { table, id, before }) => {
                    if let Some(t) = self.tables.get_mut(&table) {
                        t.put(id, before);
                    }
                }
                None => break,
            }
        }
        self.release(savepoint);
    }

    /// Keeps the writes made since `savepoint`.
    pub fn release(&mut self, savepoint: Savepoint) {
        let _ = savepoint;
        self.open_savepoints = self.open_savepoints.saturating_sub(1);
        if self.open_savepoints == 0 {
            self.undo.clear();
        }
    }

    /// Records how to undo a write while a savepoint is open.
    pub(super) fn log(&mut self, entry: Undo) {
        if self.open_savepoints > 0 {
            self.undo.push(entry);
        }
    }

    /// Stores `after` in place of `before` (the record `id` of `table`), undoably.
    pub(super) fn replace(&mut self, table: &str, id: &str, after: Record, before: Record) {
        self.journal_replace(table, id, &before, &after);
        if let Some(t) = self.tables.get_mut(table) {
            t.put(id.to_string(), after);
        }
        self.log(Undo::Replaced {
            table: table.to_string(),
            id: id.to_string(),
            before,
        });
    }
}
