//! The emulator's in-memory org: records of every object in the [`Catalog`], written through
//! the CRM's validation (field existence, writability, types, sizes, required fields,
//! references, restricted picklists, uniqueness) and derivations (opportunity stage fields,
//! expected revenue, task status, activity account, contact names, event times), with Ids,
//! audit timestamps, soft deletion, upsert by external id, and savepoints for all-or-none
//! batches.
//!
//! Synchronous and free of I/O: the caller passes the current time into every write. Records
//! are [`Record`]s keyed by canonical field names holding wire-format values; a field that is
//! absent from a record is null.
//!
//! The parts, one file each: `values` (the wire forms of Ids, timestamps and numbers),
//! `writes` (create, update, upsert), `validation`, `derive` (derived fields), `currency`
//! (the rules on currency records), `recycle` (soft deletion and what it does to child
//! records) and `undo` (savepoints).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Duration, Utc};
use serde_json::{Number, Value};

use crate::emulator::soql::{Lookup, Record};
use crate::metadata::standard::{CURRENCIES, OPPORTUNITY_STAGES, TASK_STATUSES};
use crate::metadata::{id, Catalog};

mod changes;
mod currency;
mod derive;
mod recycle;
mod undo;
mod validation;
mod values;
mod writes;

pub use changes::{ChangeKind, RecordChange};
use undo::Undo;
pub(crate) use values::number;
use values::with_lowercase;
pub use values::{format_datetime, normalize_id, parse_datetime};

/// The instance part of every Id the emulator makes (characters 4-6).
pub const POD: &str = "5e0";

/// The username of the integration user every org has.
pub const INTEGRATION_USERNAME: &str = "integration@plansync.example";

/// A refused record write, as the CRM reports it per record: `statusCode`, `message`, `fields`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status_code}: {message}")]
pub struct RecordError {
    pub status_code: String,
    pub message: String,
    pub fields: Vec<String>,
}

/// The NextStartDate of a currency's latest dated period in a real org.
pub const END_OF_TIME: &str = "9999-12-31";

/// The StartDate of a currency's first dated period in a real org: the beginning of the
/// calendar, so the periods cover every date.
pub const BEGINNING_OF_TIME: &str = "0001-01-01";

impl RecordError {
    pub fn new(status_code: &str, message: impl Into<String>, fields: Vec<String>) -> Self {
        RecordError {
            status_code: status_code.to_string(),
            message: message.into(),
            fields,
        }
    }

    fn not_found() -> Self {
        RecordError::new("NOT_FOUND", "The requested resource does not exist", vec![])
    }

    /// ENTITY_IS_DELETED: the record (or the one `fields` point at) is in the recycle bin.
    pub(crate) fn entity_is_deleted(fields: Vec<String>) -> Self {
        RecordError::new("ENTITY_IS_DELETED", "entity is deleted", fields)
    }

    fn malformed_record_id(id: &str) -> Self {
        RecordError::new(
            "MALFORMED_ID",
            format!("Record ID: id value of incorrect type: {id}"),
            vec!["Id".into()],
        )
    }
}

/// The result of a successful upsert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpsertOutcome {
    pub id: String,
    pub created: bool,
}

/// A refused upsert.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpsertError {
    #[error(transparent)]
    Record(#[from] RecordError),
    /// The external id value matches several records (HTTP 300 with their Ids).
    #[error("the external id value matches {} records", .0.len())]
    MultipleMatches(Vec<String>),
}

/// A soft-deleted record as getDeleted reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletedRecord {
    pub id: String,
    pub deleted_date: DateTime<Utc>,
}

/// A point the org can be rolled back to; see [`Org::savepoint`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "a savepoint must be released or rolled back"]
pub struct Savepoint {
    undo: usize,
    changes: usize,
}

#[derive(Debug, Default)]
struct Table {
    next_seq: u64,
    /// Written only through the methods below, which keep `by_stamp` in step.
    records: BTreeMap<String, Record>,
    /// (SystemModstamp text, Id) of every record: the index a real org keeps on
    /// SystemModstamp, so a "changed since" query reads what changed, not the whole table.
    by_stamp: BTreeSet<(String, String)>,
}

impl Table {
    /// Stores `record` as `id`, returning the one it replaces.
    fn put(&mut self, id: String, record: Record) -> Option<Record> {
        let stamp = Org::stamp_text(&record).map(str::to_string);
        let old = self.records.insert(id.clone(), record);
        if let Some(old_stamp) = old.as_ref().and_then(Org::stamp_text) {
            self.by_stamp.remove(&(old_stamp.to_string(), id.clone()));
        }
        if let Some(stamp) = stamp {
            self.by_stamp.insert((stamp, id));
        }
        old
    }

    /// Removes the record `id`.
    fn take(&mut self, id: &str) -> Option<Record> {
        let old = self.records.remove(id)?;
        if let Some(stamp) = Org::stamp_text(&old) {
            self.by_stamp.remove(&(stamp.to_string(), id.to_string()));
        }
        Some(old)
    }

    /// Changes the record `id` in place.
    fn update(&mut self, id: &str, change: impl FnOnce(&mut Record)) {
        if let Some(mut record) = self.take(id) {
            change(&mut record);
            self.put(id.to_string(), record);
        }
    }

    /// The records whose SystemModstamp text is `floor` or later, in that order.
    fn stamped_from(&self, floor: String) -> impl Iterator<Item = &Record> {
        self.by_stamp
            .range((floor, String::new())..)
            .filter_map(|(_, id)| self.records.get(id))
    }
}

/// Whether a write comes from an API client or from the org itself (seeding system rows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Actor {
    Api,
    System,
}

/// The in-memory org.
#[derive(Debug)]
pub struct Org {
    catalog: Catalog,
    org_id: String,
    user_id: String,
    tables: HashMap<String, Table>,
    last_stamp: Option<DateTime<Utc>>,
    undo: Vec<Undo>,
    open_savepoints: usize,
    validation_failure: Option<String>,
    /// Whether writes are journaled (see [`Org::journal_changes`]).
    journaling: bool,
    /// Committed changes not yet taken by [`Org::take_changes`].
    changes: Vec<RecordChange>,
}
impl Org {
    /// A new org with the catalog's objects, its integration user, and the rows every org
    /// starts with: the OpportunityStage and TaskStatus values of a new org and, when the
    /// catalog is multi-currency, CurrencyType rows (USD corporate).
    pub fn new(catalog: Catalog, now: DateTime<Utc>) -> Org {
        let mut org = Org {
            catalog,
            org_id: id::make("00D", POD, 1),
            user_id: String::new(),
            tables: HashMap::new(),
            last_stamp: None,
            undo: Vec::new(),
            open_savepoints: 0,
            validation_failure: None,
            journaling: false,
            changes: Vec::new(),
        };
        let user = org.system_insert(
            "User",
            &[
                ("Username", Value::from(INTEGRATION_USERNAME)),
                ("FirstName", Value::from("Integration")),
                ("LastName", Value::from("User")),
                ("Email", Value::from(INTEGRATION_USERNAME)),
                ("IsActive", Value::Bool(true)),
                ("TimeZoneSidKey", Value::from("UTC")),
            ],
            now,
        );
        org.user_id = user.unwrap_or_default();
        // The creator fields of the user itself.
        let uid = org.user_id.clone();
        if let Some(t) = org.table_mut("User") {
            t.update(&uid, |r| {
                r.insert("CreatedById".into(), Value::from(uid.clone()));
                r.insert("LastModifiedById".into(), Value::from(uid.clone()));
            });
        }
        for (i, (name, prob, forecast, closed, won)) in OPPORTUNITY_STAGES.iter().enumerate() {
            let own = [
                ("IsActive", Value::Bool(true)),
                ("IsClosed", Value::Bool(*closed)),
                ("IsWon", Value::Bool(*won)),
                ("ForecastCategoryName", Value::from(*forecast)),
                ("DefaultProbability", Value::from(*prob)),
            ];
            org.insert_picklist_value("OpportunityStage", name, i, &own, now);
        }
        for (i, (name, closed, default)) in TASK_STATUSES.iter().enumerate() {
            let own = [
                ("IsClosed", Value::Bool(*closed)),
                ("IsDefault", Value::Bool(*default)),
            ];
            org.insert_picklist_value("TaskStatus", name, i, &own, now);
        }
        if org.catalog.object("CurrencyType").is_some() {
            let rates = ["1", "0.92", "0.79", "151.5", "1.36", "1.52", "0.88"];
            let places = [2u64, 2, 2, 0, 2, 2, 2];
            for (i, code) in CURRENCIES.iter().enumerate() {
                org.system_insert(
                    "CurrencyType",
                    &[
                        ("IsoCode", Value::from(*code)),
                        (
                            "ConversionRate",
                            rates[i]
                                .parse::<Number>()
                                .map(Value::Number)
                                .unwrap_or(Value::Null),
                        ),
                        ("DecimalPlaces", Value::from(places[i])),
                        ("IsActive", Value::Bool(true)),
                        ("IsCorporate", Value::Bool(i == 0)),
                    ],
                    now,
                );
            }
        }
        org
    }

    /// Seeds the value at `index` of a standard picklist kept as records (OpportunityStage,
    /// TaskStatus): its MasterLabel and ApiName, its `own` fields, its SortOrder (from 1).
    fn insert_picklist_value(
        &mut self,
        object: &str,
        name: &str,
        index: usize,
        own: &[(&str, Value)],
        now: DateTime<Utc>,
    ) {
        let mut fields = vec![
            ("MasterLabel", Value::from(name)),
            ("ApiName", Value::from(name)),
        ];
        fields.extend_from_slice(own);
        fields.push(("SortOrder", Value::from(index as u64 + 1)));
        self.system_insert(object, &fields, now);
    }

    /// The org's objects.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The 18-character organization Id (`00D...`).
    pub fn org_id(&self) -> &str {
        &self.org_id
    }

    /// The 15-character organization Id, as access tokens start with it.
    pub fn org_id15(&self) -> &str {
        &self.org_id[..15]
    }

    /// The integration user's 18-character Id (`005...`).
    pub fn user_id(&self) -> &str {
        &self.user_id
    }

    /// The latest SystemModstamp given to any record.
    pub fn last_modstamp(&self) -> Option<DateTime<Utc>> {
        self.last_stamp
    }

    /// Spreads the records' history evenly over `[from, to)`: in the order of their
    /// SystemModstamp, each record gets a CreatedDate, LastModifiedDate and SystemModstamp
    /// later than the one before, as if it had been created then and not changed since. A
    /// seeded org is loaded in a burst of milliseconds, so any "changed since shortly before
    /// the last change" window would hold all of it; spread, such a window holds what a
    /// real org's would. Later writes are stamped with their own time as usual.
    pub fn spread_history(&mut self, from: DateTime<Utc>, to: DateTime<Utc>) {
        let mut order: Vec<(String, String, String)> = self
            .tables
            .iter()
            .flat_map(|(key, table)| {
                table.records.iter().map(move |(id, r)| {
                    let stamp = Self::stamp_text(r).unwrap_or_default().to_string();
                    (stamp, key.clone(), id.clone())
                })
            })
            .collect();
        order.sort();
        let n = i64::try_from(order.len()).unwrap_or(i64::MAX).max(1);
        let span_ms = (to - from).num_milliseconds().max(0);
        let mut last = None;
        for (i, (_, key, id)) in order.iter().enumerate() {
            let i = i64::try_from(i).unwrap_or(i64::MAX);
            let offset = i128::from(span_ms) * i128::from(i) / i128::from(n);
            let t = from + Duration::milliseconds(i64::try_from(offset).unwrap_or(0));
            let t = match last {
                Some(prev) if t <= prev => prev + Duration::milliseconds(1),
                _ => t,
            };
            last = Some(t);
            let text = Value::from(format_datetime(t));
            if let Some(table) = self.tables.get_mut(key) {
                table.update(id, |record| {
                    for field in ["CreatedDate", "LastModifiedDate", "SystemModstamp"] {
                        record.insert(field.into(), text.clone());
                    }
                });
            }
        }
        if last.is_some() {
            self.last_stamp = last;
        }
    }

    /// Moves every record's CreatedDate, LastModifiedDate and SystemModstamp `by` earlier, as
    /// if that long had passed since: a client's "changed since shortly before the last change
    /// I saw" window then holds nothing. Later writes are stamped with their own time as usual.
    pub fn age_history(&mut self, by: Duration) {
        for table in self.tables.values_mut() {
            let ids: Vec<String> = table.records.keys().cloned().collect();
            for id in ids {
                table.update(&id, |record| {
                    for field in ["CreatedDate", "LastModifiedDate", "SystemModstamp"] {
                        let earlier = record
                            .get(field)
                            .and_then(Value::as_str)
                            .and_then(parse_datetime)
                            .map(|t| format_datetime(t - by));
                        if let Some(earlier) = earlier {
                            record.insert(field.into(), Value::from(earlier));
                        }
                    }
                });
            }
        }
    }

    /// Makes updates of records whose Name equals `record_name` fail as a validation rule
    /// would (FIELD_CUSTOM_VALIDATION_EXCEPTION); `None` removes the rule.
    pub fn set_validation_failure(&mut self, record_name: Option<String>) {
        self.validation_failure = record_name;
    }

    fn table(&self, object: &str) -> Option<&Table> {
        with_lowercase(object, |key| self.tables.get(key))
    }

    fn table_mut(&mut self, object: &str) -> Option<&mut Table> {
        self.tables.get_mut(&object.to_ascii_lowercase())
    }

    /// The record of `object` with this 15- or 18-character Id (deleted ones included; check
    /// `IsDeleted`).
    pub fn get(&self, object: &str, id: &str) -> Option<&Record> {
        let id = normalize_id(id)?;
        self.table(object)?.records.get(&id)
    }

    /// The object name and record for an Id of any object, found by its key prefix.
    pub fn find(&self, id: &str) -> Option<(&str, &Record)> {
        let id = normalize_id(id)?;
        let def = self.catalog.object_by_prefix(id::key_prefix(&id)?)?;
        let rec = self.table(&def.name)?.records.get(&id)?;
        Some((def.name.as_str(), rec))
    }

    /// Every record of `object` in Id order, deleted ones included (for queryAll).
    pub fn records<'a>(&'a self, object: &str) -> impl Iterator<Item = &'a Record> + 'a {
        self.table(object)
            .into_iter()
            .flat_map(|t| t.records.values())
    }

    /// The records of `object` whose SystemModstamp (as text) is `floor` or later, deleted
    /// ones included, in SystemModstamp order: read by the index a real org keeps.
    pub fn records_stamped_from<'a>(
        &'a self,
        object: &str,
        floor: &str,
    ) -> impl Iterator<Item = &'a Record> + 'a {
        let floor = floor.to_string();
        self.table(object)
            .into_iter()
            .flat_map(move |t| t.stamped_from(floor.clone()))
    }

    /// The records of `object` that are not deleted, in Id order.
    pub fn live_records<'a>(&'a self, object: &str) -> impl Iterator<Item = &'a Record> + 'a {
        self.records(object)
            .filter(|r| r.get("IsDeleted") != Some(&Value::Bool(true)))
    }

    /// How many records `object` holds, deleted ones included.
    pub fn count(&self, object: &str) -> usize {
        self.table(object).map_or(0, |t| t.records.len())
    }

    /// The SystemModstamp text of a record. The CRM's datetime format sorts as text, so
    /// windows are compared on text without parsing every record.
    fn stamp_text(r: &Record) -> Option<&str> {
        r.get("SystemModstamp").and_then(Value::as_str)
    }

    /// Ids of live records of `object` whose SystemModstamp is in `[start, end)` (getUpdated).
    pub fn updated(&self, object: &str, start: DateTime<Utc>, end: DateTime<Utc>) -> Vec<String> {
        let (start, end) = (format_datetime(start), format_datetime(end));
        self.live_records(object)
            .filter(|r| {
                Self::stamp_text(r).is_some_and(|t| t >= start.as_str() && t < end.as_str())
            })
            .filter_map(|r| r.get("Id").and_then(Value::as_str).map(str::to_string))
            .collect()
    }

    /// Soft-deleted records of `object` deleted in `[start, end)` (getDeleted).
    pub fn deleted(
        &self,
        object: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Vec<DeletedRecord> {
        let (start, end) = (format_datetime(start), format_datetime(end));
        self.records(object)
            .filter(|r| r.get("IsDeleted") == Some(&Value::Bool(true)))
            .filter_map(|r| {
                let t = Self::stamp_text(r)?;
                if t < start.as_str() || t >= end.as_str() {
                    return None;
                }
                let id = r.get("Id")?.as_str()?.to_string();
                Some(DeletedRecord {
                    id,
                    deleted_date: parse_datetime(t)?,
                })
            })
            .collect()
    }
}

impl Lookup for Org {
    fn get(&self, object: &str, id: &str) -> Option<&Record> {
        Org::get(self, object, id)
    }
}

#[cfg(test)]
mod tests;
