//! The org's change journal: every committed create, update, delete and undelete, in commit
//! order, for the emulator's Change Data Capture feed. Writes inside an open savepoint are
//! journaled too and leave the journal again when the savepoint is rolled back, so a rolled
//! back batch publishes nothing.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::values::parse_datetime;
use super::Org;
use crate::emulator::soql::Record;

/// The operation a journaled change made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    Create,
    Update,
    Delete,
    Undelete,
}

impl ChangeKind {
    /// The `changeType` of a change event.
    pub fn change_type(self) -> &'static str {
        match self {
            ChangeKind::Create => "CREATE",
            ChangeKind::Update => "UPDATE",
            ChangeKind::Delete => "DELETE",
            ChangeKind::Undelete => "UNDELETE",
        }
    }
}

/// One committed record change.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordChange {
    /// The object's API name (`Account`, `Account_Plan__c`).
    pub object: String,
    /// The record's 18-character Id.
    pub id: String,
    pub kind: ChangeKind,
    /// The field values a change event body carries: every non-null field of a created or
    /// undeleted record, the changed fields of an update (nulls included), none for a delete.
    /// Never `IsDeleted` or `SystemModstamp`, which change events leave out.
    pub fields: Map<String, Value>,
    /// The changed fields of an update, in the record's field order; empty otherwise.
    pub changed_fields: Vec<String>,
    /// When the change was committed (the record's new SystemModstamp).
    pub committed_at: DateTime<Utc>,
}

/// Fields a change event body never carries.
const LEFT_OUT: [&str; 2] = ["IsDeleted", "SystemModstamp"];

fn is_deleted(r: &Record) -> bool {
    r.get("IsDeleted") == Some(&Value::Bool(true))
}

fn stamp_of(r: &Record) -> DateTime<Utc> {
    r.get("SystemModstamp")
        .and_then(Value::as_str)
        .and_then(parse_datetime)
        .unwrap_or_else(Utc::now)
}

fn body_of(r: &Record) -> Map<String, Value> {
    r.iter()
        .filter(|(k, v)| !v.is_null() && !LEFT_OUT.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

impl Org {
    /// The canonical object name of a table key.
    fn object_name_of(&self, table: &str) -> String {
        self.catalog
            .object(table)
            .map(|o| o.name.clone())
            .unwrap_or_else(|| table.to_string())
    }

    /// Starts (or stops) journaling writes for [`Org::take_changes`]. Off in a new org, so
    /// that seeding journals nothing.
    pub fn journal_changes(&mut self, on: bool) {
        self.journaling = on;
        if !on {
            self.changes.clear();
        }
    }

    /// Journals the record `id` just inserted into `table`.
    pub(super) fn journal_insert(&mut self, table: &str, id: &str) {
        if !self.journaling {
            return;
        }
        let Some(rec) = self.tables.get(table).and_then(|t| t.records.get(id)) else {
            return;
        };
        let change = RecordChange {
            object: self.object_name_of(table),
            id: id.to_string(),
            kind: ChangeKind::Create,
            fields: body_of(rec),
            changed_fields: Vec::new(),
            committed_at: stamp_of(rec),
        };
        self.changes.push(change);
    }

    /// Journals the replacement of `before` by `after` (the record `id` of `table`): an
    /// update, or a delete or undelete when `IsDeleted` flips.
    pub(super) fn journal_replace(
        &mut self,
        table: &str,
        id: &str,
        before: &Record,
        after: &Record,
    ) {
        if !self.journaling {
            return;
        }
        let kind = match (is_deleted(before), is_deleted(after)) {
            (false, true) => ChangeKind::Delete,
            (true, false) => ChangeKind::Undelete,
            _ => ChangeKind::Update,
        };
        let (fields, changed_fields) = match kind {
            ChangeKind::Delete => (Map::new(), Vec::new()),
            ChangeKind::Undelete | ChangeKind::Create => (body_of(after), Vec::new()),
            ChangeKind::Update => {
                let mut fields = Map::new();
                let mut names: Vec<&String> = after.keys().collect();
                names.extend(before.keys().filter(|k| !after.contains_key(*k)));
                for name in names {
                    if LEFT_OUT.contains(&name.as_str()) {
                        continue;
                    }
                    let old = before.get(name).unwrap_or(&Value::Null);
                    let new = after.get(name).unwrap_or(&Value::Null);
                    if old != new {
                        fields.insert(name.clone(), new.clone());
                    }
                }
                let changed = fields.keys().cloned().collect();
                (fields, changed)
            }
        };
        let change = RecordChange {
            object: self.object_name_of(table),
            id: id.to_string(),
            kind,
            fields,
            changed_fields,
            committed_at: stamp_of(after),
        };
        self.changes.push(change);
    }

    /// Whether committed changes wait for [`Org::take_changes`].
    pub fn has_changes(&self) -> bool {
        self.open_savepoints == 0 && !self.changes.is_empty()
    }

    /// Takes the changes committed since the last call, in commit order. While a savepoint is
    /// open nothing is committed yet, and this returns nothing.
    pub fn take_changes(&mut self) -> Vec<RecordChange> {
        if self.open_savepoints > 0 {
            return Vec::new();
        }
        std::mem::take(&mut self.changes)
    }
}
