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

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{Map, Number, Value};

use crate::emulator::soql::{Lookup, Record};
use crate::metadata::standard::{
    CURRENCIES, FORECAST_CATEGORIES, OPPORTUNITY_STAGES, TASK_STATUSES,
};
use crate::metadata::{id, Catalog, FieldDef, FieldType, ObjectDef};

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
pub struct Savepoint(usize);

#[derive(Debug, Default)]
struct Table {
    next_seq: u64,
    records: BTreeMap<String, Record>,
}

#[derive(Debug)]
enum Undo {
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
}

/// Formats a timestamp as the CRM does: `2024-05-08T21:20:00.000+0000`.
pub fn format_datetime(t: DateTime<Utc>) -> String {
    use chrono::Timelike;
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}+0000",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.timestamp_subsec_millis().min(999)
    )
}

/// Runs `f` with the ASCII-lowercased `name`, without allocating for short names.
fn with_lowercase<R>(name: &str, f: impl FnOnce(&str) -> R) -> R {
    let mut buf = [0u8; 64];
    if name.len() <= buf.len() {
        let bytes = &mut buf[..name.len()];
        bytes.copy_from_slice(name.as_bytes());
        bytes.make_ascii_lowercase();
        if let Ok(lower) = std::str::from_utf8(bytes) {
            return f(lower);
        }
    }
    f(&name.to_ascii_lowercase())
}

/// The field named `name` (any case) of `def`.
fn field_of<'a>(def: &'a ObjectDef, name: &str) -> Option<&'a FieldDef> {
    with_lowercase(name, |key| def.fields.get(key))
}

/// Parses a datetime in the forms clients send: RFC 3339 (`Z`, `+00:00`) or the CRM's own
/// `+0000` form, with or without fractional seconds.
pub fn parse_datetime(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%dT%H:%M:%S%z"] {
        if let Ok(t) = DateTime::parse_from_str(s, fmt) {
            return Some(t.with_timezone(&Utc));
        }
    }
    None
}

/// Normalises a 15- or 18-character Id to its 18-character form. An 18-character Id is
/// case-insensitive: its checksum restores the case of the first 15 characters.
pub fn normalize_id(raw: &str) -> Option<String> {
    match raw.len() {
        15 => id::to18(raw).ok(),
        18 => id::case_restored(raw),
        _ => None,
    }
}

fn decode_sequence(id18: &str) -> Option<u64> {
    const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let body = id18.get(6..15)?;
    let mut n: u64 = 0;
    for c in body.bytes() {
        let d = BASE62.iter().position(|&b| b == c)? as u64;
        n = n.checked_mul(62)?.checked_add(d)?;
    }
    Some(n)
}

fn number(d: Decimal) -> Value {
    let text = d.normalize().to_string();
    match text.parse::<Number>() {
        Ok(n) => Value::Number(n),
        Err(_) => Value::Null,
    }
}

fn decimal_of(v: &Value) -> Option<Decimal> {
    match v {
        Value::Number(n) => {
            let s = n.to_string();
            s.parse::<Decimal>()
                .ok()
                .or_else(|| Decimal::from_scientific(&s).ok())
        }
        Value::String(s) => {
            let s = s.trim();
            s.parse::<Decimal>()
                .ok()
                .or_else(|| Decimal::from_scientific(s).ok())
        }
        _ => None,
    }
}

fn text_of(v: &Value) -> Option<&str> {
    v.as_str()
}

fn display(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn digits_before_point(d: Decimal) -> u32 {
    let whole = d.trunc().abs();
    if whole.is_zero() {
        0
    } else {
        whole.to_string().len() as u32
    }
}

/// STRING_TOO_LONG when a text value is longer than its field allows.
fn check_length(f: &FieldDef, s: &str) -> Result<(), RecordError> {
    if s.chars().count() > f.length as usize {
        return Err(RecordError::new(
            "STRING_TOO_LONG",
            format!(
                "{}: data value too large: {} (max length={})",
                f.label, s, f.length
            ),
            vec![f.name.clone()],
        ));
    }
    Ok(())
}

fn type_error(f: &FieldDef, v: &Value) -> RecordError {
    RecordError::new(
        "INVALID_TYPE_ON_FIELD_IN_RECORD",
        format!("{}: value not of required type: {}", f.label, display(v)),
        vec![f.name.clone()],
    )
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
        if let Some(r) = org.table_mut("User").and_then(|t| t.records.get_mut(&uid)) {
            r.insert("CreatedById".into(), Value::from(uid.clone()));
            r.insert("LastModifiedById".into(), Value::from(uid.clone()));
        }
        for (i, (name, prob, forecast, closed, won)) in OPPORTUNITY_STAGES.iter().enumerate() {
            org.system_insert(
                "OpportunityStage",
                &[
                    ("MasterLabel", Value::from(*name)),
                    ("ApiName", Value::from(*name)),
                    ("IsActive", Value::Bool(true)),
                    ("IsClosed", Value::Bool(*closed)),
                    ("IsWon", Value::Bool(*won)),
                    ("ForecastCategoryName", Value::from(*forecast)),
                    ("DefaultProbability", Value::from(*prob)),
                    ("SortOrder", Value::from(i as u64 + 1)),
                ],
                now,
            );
        }
        for (i, (name, closed, default)) in TASK_STATUSES.iter().enumerate() {
            org.system_insert(
                "TaskStatus",
                &[
                    ("MasterLabel", Value::from(*name)),
                    ("ApiName", Value::from(*name)),
                    ("IsClosed", Value::Bool(*closed)),
                    ("IsDefault", Value::Bool(*default)),
                    ("SortOrder", Value::from(i as u64 + 1)),
                ],
                now,
            );
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
            if let Some(record) = self.tables.get_mut(key).and_then(|t| t.records.get_mut(id)) {
                for field in ["CreatedDate", "LastModifiedDate", "SystemModstamp"] {
                    record.insert(field.into(), text.clone());
                }
            }
        }
        if last.is_some() {
            self.last_stamp = last;
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

    // ----- savepoints -------------------------------------------------------------------

    /// Starts recording undo information; [`Org::rollback_to`] undoes every write made since,
    /// [`Org::release`] keeps them. Savepoints nest.
    pub fn savepoint(&mut self) -> Savepoint {
        self.open_savepoints += 1;
        Savepoint(self.undo.len())
    }

    /// Undoes every write since `savepoint` and releases it. Ids and SystemModstamps handed
    /// out meanwhile are not reused.
    pub fn rollback_to(&mut self, savepoint: Savepoint) {
        while self.undo.len() > savepoint.0 {
            match self.undo.pop() {
                Some(Undo::Inserted { table, id }) => {
                    if let Some(t) = self.tables.get_mut(&table) {
                        t.records.remove(&id);
                    }
                }
                Some(Undo::Replaced { table, id, before }) => {
                    if let Some(t) = self.tables.get_mut(&table) {
                        t.records.insert(id, before);
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

    fn log(&mut self, entry: Undo) {
        if self.open_savepoints > 0 {
            self.undo.push(entry);
        }
    }

    // ----- writes -----------------------------------------------------------------------

    fn next_stamp(&mut self, now: DateTime<Utc>) -> DateTime<Utc> {
        let ms = now.timestamp_millis();
        let mut t = Utc.timestamp_millis_opt(ms).single().unwrap_or(now);
        if let Some(last) = self.last_stamp {
            if t <= last {
                t = last + Duration::milliseconds(1);
            }
        }
        self.last_stamp = Some(t);
        t
    }

    fn new_id(&mut self, key: &str, prefix: &str) -> String {
        let table = self.tables.entry(key.to_string()).or_default();
        loop {
            table.next_seq += 1;
            let id = id::make(prefix, POD, table.next_seq);
            if !table.records.contains_key(&id) {
                return id;
            }
        }
    }

    fn store_new(&mut self, object: &str, id: String, mut rec: Record, now: DateTime<Utc>) {
        let stamp = Value::from(format_datetime(self.next_stamp(now)));
        let user = Value::from(self.user_id.clone());
        rec.insert("Id".into(), Value::from(id.clone()));
        rec.insert("IsDeleted".into(), Value::Bool(false));
        rec.insert("CreatedDate".into(), stamp.clone());
        rec.insert("CreatedById".into(), user.clone());
        rec.insert("LastModifiedDate".into(), stamp.clone());
        rec.insert("LastModifiedById".into(), user);
        rec.insert("SystemModstamp".into(), stamp);
        let key = object.to_ascii_lowercase();
        self.tables
            .entry(key.clone())
            .or_default()
            .records
            .insert(id.clone(), rec);
        self.log(Undo::Inserted { table: key, id });
    }

    fn system_insert(
        &mut self,
        object: &str,
        fields: &[(&str, Value)],
        now: DateTime<Utc>,
    ) -> Option<String> {
        let body: Map<String, Value> = fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        self.write(Actor::System, object, None, None, &body, now)
            .ok()
    }

    /// Creates a record through the API rules and returns its 18-character Id.
    pub fn create(
        &mut self,
        object: &str,
        fields: &Map<String, Value>,
        now: DateTime<Utc>,
    ) -> Result<String, RecordError> {
        self.write(Actor::Api, object, None, None, fields, now)
    }

    /// Creates a record with a given Id (for loading fixtures whose Ids must stay stable);
    /// otherwise the API rules apply. The Id must carry the object's key prefix and be unused.
    pub fn create_with_id(
        &mut self,
        object: &str,
        id: &str,
        fields: &Map<String, Value>,
        now: DateTime<Utc>,
    ) -> Result<String, RecordError> {
        let def = self
            .catalog
            .object(object)
            .ok_or_else(RecordError::not_found)?;
        let id18 = normalize_id(id).ok_or_else(|| RecordError::malformed_record_id(id))?;
        if id::key_prefix(&id18) != Some(def.key_prefix.as_str()) {
            return Err(RecordError::malformed_record_id(id));
        }
        if self.get(object, &id18).is_some() {
            return Err(RecordError::new(
                "DUPLICATE_VALUE",
                format!("duplicate value found: Id duplicates value on record with id: {id18}"),
                vec!["Id".into()],
            ));
        }
        if id18.get(3..6) == Some(POD) {
            if let Some(seq) = decode_sequence(&id18) {
                let t = self
                    .tables
                    .entry(def.name.to_ascii_lowercase())
                    .or_default();
                t.next_seq = t.next_seq.max(seq);
            }
        }
        self.write(Actor::Api, object, None, Some(id18), fields, now)
    }

    /// Updates a record (15- or 18-character Id) with the given fields.
    pub fn update(
        &mut self,
        object: &str,
        id: &str,
        fields: &Map<String, Value>,
        now: DateTime<Utc>,
    ) -> Result<(), RecordError> {
        let def = self
            .catalog
            .object(object)
            .ok_or_else(RecordError::not_found)?;
        let id18 = normalize_id(id).ok_or_else(|| RecordError::malformed_record_id(id))?;
        if id::key_prefix(&id18) != Some(def.key_prefix.as_str()) {
            return Err(RecordError::malformed_record_id(id));
        }
        self.write(Actor::Api, object, Some(&id18), None, fields, now)
            .map(|_| ())
    }

    /// Inserts or updates the record of `object` whose `ext_field` (an external id field, or
    /// `Id`) equals `ext_value`.
    pub fn upsert(
        &mut self,
        object: &str,
        ext_field: &str,
        ext_value: &str,
        fields: &Map<String, Value>,
        now: DateTime<Utc>,
    ) -> Result<UpsertOutcome, UpsertError> {
        let def = self
            .catalog
            .object(object)
            .ok_or_else(RecordError::not_found)?;
        let field = def
            .field(ext_field)
            .filter(|f| f.external_id || f.name == "Id")
            .ok_or_else(|| {
                RecordError::new(
                    "NOT_FOUND",
                    format!("Provided external ID field does not exist or is not accessible: {ext_field}"),
                    vec![],
                )
            })?;
        let name = field.name.clone();
        let mut body = fields.clone();
        body.retain(|k, _| !k.eq_ignore_ascii_case(&name));
        if name == "Id" {
            if ext_value.is_empty() {
                let id = self.create(object, &body, now)?;
                return Ok(UpsertOutcome { id, created: true });
            }
            self.update(object, ext_value, &body, now)?;
            let id = normalize_id(ext_value).unwrap_or_default();
            return Ok(UpsertOutcome { id, created: false });
        }
        let matches: Vec<String> = self
            .live_records(object)
            .filter(|r| {
                r.get(&name)
                    .and_then(Value::as_str)
                    .is_some_and(|v| v.eq_ignore_ascii_case(ext_value))
            })
            .filter_map(|r| r.get("Id").and_then(Value::as_str).map(str::to_string))
            .collect();
        match matches.len() {
            0 => {
                body.insert(name, Value::from(ext_value));
                let id = self.create(object, &body, now)?;
                Ok(UpsertOutcome { id, created: true })
            }
            1 => {
                let id = matches.into_iter().next().unwrap_or_default();
                self.update(object, &id, &body, now)?;
                Ok(UpsertOutcome { id, created: false })
            }
            _ => Err(UpsertError::MultipleMatches(matches)),
        }
    }

    /// Soft-deletes a record: IsDeleted becomes true and SystemModstamp moves. With `object`
    /// given, the Id must belong to it.
    pub fn delete(
        &mut self,
        object: Option<&str>,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), RecordError> {
        let id18 = normalize_id(id).ok_or_else(|| RecordError::malformed_record_id(id))?;
        let prefix = id::key_prefix(&id18).unwrap_or_default();
        let def = self
            .catalog
            .object_by_prefix(prefix)
            .ok_or_else(RecordError::not_found)?;
        if object.is_some_and(|o| !o.eq_ignore_ascii_case(&def.name)) {
            return Err(RecordError::not_found());
        }
        if !def.deletable {
            return Err(RecordError::new(
                "INSUFFICIENT_ACCESS_OR_READONLY",
                format!("entity type {} does not support delete", def.name),
                vec![],
            ));
        }
        let key = def.name.to_ascii_lowercase();
        let before = self
            .tables
            .get(&key)
            .and_then(|t| t.records.get(&id18))
            .ok_or_else(RecordError::not_found)?;
        if before.get("IsDeleted") == Some(&Value::Bool(true)) {
            return Err(RecordError::new(
                "ENTITY_IS_DELETED",
                "entity is deleted",
                vec![],
            ));
        }
        let object_name = def.name.clone();
        self.soft_delete(&key, &id18, now);
        self.cascade(&object_name, &id18, now);
        if object_name == "DatedConversionRate" {
            self.refresh_next_start_dates();
        }
        Ok(())
    }

    fn soft_delete(&mut self, key: &str, id: &str, now: DateTime<Utc>) {
        let Some(before) = self
            .tables
            .get(key)
            .and_then(|t| t.records.get(id))
            .cloned()
        else {
            return;
        };
        let stamp = format_datetime(self.next_stamp(now));
        let mut after = before.clone();
        after.insert("IsDeleted".into(), Value::Bool(true));
        after.insert("SystemModstamp".into(), Value::from(stamp));
        self.replace(key, id, after, before);
    }

    /// What deleting a record does to the custom records pointing at it: master-detail
    /// children are deleted with it; custom lookups to it are cleared (the CRM's SetNull),
    /// which moves the child's SystemModstamp but not its LastModifiedDate.
    fn cascade(&mut self, parent_object: &str, parent_id: &str, now: DateTime<Utc>) {
        let links: Vec<(String, String, bool)> = self
            .catalog
            .objects()
            .flat_map(|o| {
                o.fields
                    .values()
                    .filter(|f| {
                        f.custom
                            && f.field_type == FieldType::Reference
                            && f.reference_to.iter().any(|r| r == parent_object)
                    })
                    .map(|f| (o.name.to_ascii_lowercase(), f.name.clone(), !f.nillable))
            })
            .collect();
        for (key, field, master_detail) in links {
            let children: Vec<(String, String)> = self
                .tables
                .get(&key)
                .into_iter()
                .flat_map(|t| t.records.iter())
                .filter(|(_, r)| {
                    r.get("IsDeleted") != Some(&Value::Bool(true))
                        && r.get(&field).and_then(Value::as_str) == Some(parent_id)
                })
                .map(|(id, _)| (id.clone(), key.clone()))
                .collect();
            for (child, key) in children {
                if master_detail {
                    self.soft_delete(&key, &child, now);
                    let name = self
                        .catalog
                        .object(&key)
                        .map(|o| o.name.clone())
                        .unwrap_or_default();
                    self.cascade(&name, &child, now);
                } else if let Some(before) = self
                    .tables
                    .get(&key)
                    .and_then(|t| t.records.get(&child))
                    .cloned()
                {
                    let mut after = before.clone();
                    after.remove(&field);
                    let stamp = format_datetime(self.next_stamp(now));
                    after.insert("SystemModstamp".into(), Value::from(stamp));
                    self.replace(&key, &child, after, before);
                }
            }
        }
    }

    fn replace(&mut self, table: &str, id: &str, after: Record, before: Record) {
        if let Some(t) = self.tables.get_mut(table) {
            t.records.insert(id.to_string(), after);
        }
        self.log(Undo::Replaced {
            table: table.to_string(),
            id: id.to_string(),
            before,
        });
    }

    /// Validates, derives and stores one create (`existing` None) or update.
    fn write(
        &mut self,
        actor: Actor,
        object: &str,
        existing: Option<&str>,
        forced_id: Option<String>,
        body: &Map<String, Value>,
        now: DateTime<Utc>,
    ) -> Result<String, RecordError> {
        let def = self
            .catalog
            .object(object)
            .ok_or_else(RecordError::not_found)?;
        let object_name = def.name.clone();
        let prefix = def.key_prefix.clone();
        // Custom records get their Id as Name when the API gives none.
        let named_after_id = def
            .field("Name")
            .is_some_and(|f| f.defaulted_on_create && f.createable);
        let key = object_name.to_ascii_lowercase();
        let before = match existing {
            Some(id) => {
                let r = self
                    .table(&object_name)
                    .and_then(|t| t.records.get(id))
                    .ok_or_else(RecordError::not_found)?;
                if r.get("IsDeleted") == Some(&Value::Bool(true)) {
                    return Err(RecordError::new(
                        "ENTITY_IS_DELETED",
                        "entity is deleted",
                        vec![],
                    ));
                }
                Some(r)
            }
            None => None,
        };
        let rec = self.prepare(actor, def, before, body)?;
        self.check_currency_rules(&object_name, existing, &rec)?;
        match existing {
            None => {
                let id = match forced_id {
                    Some(id) => id,
                    None => self.new_id(&key, &prefix),
                };
                let mut rec = rec;
                if named_after_id && !rec.contains_key("Name") {
                    rec.insert("Name".into(), Value::from(id.clone()));
                }
                self.store_new(&object_name, id.clone(), rec, now);
                if object_name == "DatedConversionRate" {
                    self.refresh_next_start_dates();
                }
                Ok(id)
            }
            Some(id) => {
                let before = before.cloned().unwrap_or_default();
                let mut after = rec;
                let stamp = Value::from(format_datetime(self.next_stamp(now)));
                after.insert("LastModifiedDate".into(), stamp.clone());
                after.insert("LastModifiedById".into(), Value::from(self.user_id.clone()));
                after.insert("SystemModstamp".into(), stamp);
                self.replace(&key, id, after, before);
                if object_name == "DatedConversionRate" {
                    self.refresh_next_start_dates();
                }
                Ok(id.to_string())
            }
        }
    }

    /// The CRM's own rules on its currency records, checked on the record as it would be
    /// after the write (`id`: the record updated): a conversion rate is greater than zero;
    /// at most one CurrencyType is the corporate currency; no two DatedConversionRate
    /// periods of a currency start on the same day.
    fn check_currency_rules(
        &self,
        object: &str,
        id: Option<&str>,
        rec: &Record,
    ) -> Result<(), RecordError> {
        if object != "CurrencyType" && object != "DatedConversionRate" {
            return Ok(());
        }
        let others = || {
            self.live_records(object).filter(move |r| {
                id.is_none_or(|id| r.get("Id").and_then(Value::as_str) != Some(id))
            })
        };
        let rate = rec
            .get("ConversionRate")
            .and_then(|v| v.to_string().parse::<rust_decimal::Decimal>().ok());
        if rate.is_some_and(|r| r <= rust_decimal::Decimal::ZERO) {
            return Err(RecordError::new(
                "FIELD_INTEGRITY_EXCEPTION",
                "Conversion Rate: the conversion rate must be greater than zero",
                vec!["ConversionRate".into()],
            ));
        }
        if object == "CurrencyType" {
            if rec.get("IsCorporate") == Some(&Value::Bool(true)) {
                if let Some(corporate) =
                    others().find(|r| r.get("IsCorporate") == Some(&Value::Bool(true)))
                {
                    return Err(RecordError::new(
                        "FIELD_INTEGRITY_EXCEPTION",
                        format!(
                            "Corporate Currency: {} is already the corporate currency; an org has one",
                            corporate.get("IsoCode").and_then(Value::as_str).unwrap_or("?")
                        ),
                        vec!["IsCorporate".into()],
                    ));
                }
            }
            return Ok(());
        }
        let key = |r: &Record| {
            (
                r.get("IsoCode")
                    .and_then(Value::as_str)
                    .map(str::to_ascii_uppercase),
                r.get("StartDate")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            )
        };
        let mine = key(rec);
        if let Some(other) = others().find(|r| key(r) == mine) {
            let other_id = other.get("Id").and_then(Value::as_str).unwrap_or_default();
            return Err(RecordError::new(
                "DUPLICATE_VALUE",
                format!(
                    "duplicate value found: StartDate duplicates value on record with id: {other_id}"
                ),
                vec!["IsoCode".into(), "StartDate".into()],
            ));
        }
        Ok(())
    }

    /// DatedConversionRate.NextStartDate: the StartDate of the next period of the same
    /// currency, and for the latest the end of time (9999-12-31), as a real org shows it. A
    /// derivation across records, so it moves no SystemModstamp.
    fn refresh_next_start_dates(&mut self) {
        const OBJECT: &str = "DatedConversionRate";
        let mut rows: Vec<(String, String, String)> = self
            .live_records(OBJECT)
            .filter_map(|r| {
                Some((
                    r.get("IsoCode")?.as_str()?.to_string(),
                    r.get("StartDate")?.as_str()?.to_string(),
                    r.get("Id")?.as_str()?.to_string(),
                ))
            })
            .collect();
        rows.sort();
        let key = OBJECT.to_ascii_lowercase();
        for i in 0..rows.len() {
            let next = rows
                .get(i + 1)
                .filter(|(iso, _, _)| *iso == rows[i].0)
                .map(|(_, d, _)| Value::from(d.clone()));
            let next = next.unwrap_or_else(|| Value::from(END_OF_TIME));
            let id = rows[i].2.clone();
            let Some(before) = self.tables.get(&key).and_then(|t| t.records.get(&id)) else {
                continue;
            };
            if before.get("NextStartDate") == Some(&next) {
                continue;
            }
            let before = before.clone();
            let mut after = before.clone();
            after.insert("NextStartDate".into(), next);
            self.replace(&key, &id, after, before);
        }
    }

    /// Checks `body` against the object's rules and returns the full record after the write
    /// (without system fields for a create), with derived fields set.
    fn prepare(
        &self,
        actor: Actor,
        def: &ObjectDef,
        before: Option<&Record>,
        body: &Map<String, Value>,
    ) -> Result<Record, RecordError> {
        let creating = before.is_none();
        if actor == Actor::Api && ((creating && !def.createable) || (!creating && !def.updateable))
        {
            return Err(RecordError::new(
                "INVALID_TYPE_FOR_OPERATION",
                format!(
                    "entity type {} does not support {}",
                    def.name,
                    if creating { "insert" } else { "update" }
                ),
                vec![],
            ));
        }
        // Unknown fields and Id first, as the CRM refuses those before looking at values.
        let mut given: Vec<(&FieldDef, &Value)> = Vec::with_capacity(body.len());
        for (k, v) in body {
            if k == "attributes" {
                continue;
            }
            let Some(f) = field_of(def, k) else {
                return Err(RecordError::new(
                    "INVALID_FIELD",
                    format!("No such column '{k}' on sobject of type {}", def.name),
                    vec![],
                ));
            };
            if f.name == "Id" {
                if creating {
                    return Err(RecordError::new(
                        "INVALID_FIELD",
                        "The Id field should not be specified in the sobject data.",
                        vec![],
                    ));
                }
                continue;
            }
            given.push((f, v));
        }
        if actor == Actor::Api {
            let read_only: Vec<String> = given
                .iter()
                .filter(|(f, _)| {
                    if creating {
                        !f.createable
                    } else {
                        !f.updateable
                    }
                })
                .map(|(f, _)| f.name.clone())
                .collect();
            if !read_only.is_empty() {
                return Err(RecordError::new(
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    format!(
                        "Unable to create/update fields: {}. Please check the security settings of this field and verify that it is read/write for your profile or permission set.",
                        read_only.join(", ")
                    ),
                    read_only,
                ));
            }
        }
        // Sized once: growing a record field by field dominates the cost of bulk creates.
        let mut rec = match before {
            Some(b) => b.clone(),
            None => Map::with_capacity(def.fields.len()),
        };
        let mut changed: Vec<&str> = Vec::with_capacity(given.len());
        let mut nulled = Vec::new();
        for (f, v) in &given {
            match self.coerce(f, v)? {
                Some(value) => {
                    rec.insert(f.name.clone(), value);
                }
                None => {
                    if f.field_type == FieldType::Boolean {
                        rec.insert(f.name.clone(), Value::Bool(false));
                    } else {
                        rec.remove(&f.name);
                        nulled.push(f.name.clone());
                    }
                }
            }
            changed.push(f.name.as_str());
        }
        if creating {
            for f in def.fields.values() {
                if rec.contains_key(&f.name) || !f.defaulted_on_create {
                    continue;
                }
                match f.field_type {
                    FieldType::Boolean if !f.calculated || f.name == "IsArchived" => {
                        rec.insert(f.name.clone(), Value::Bool(false));
                    }
                    FieldType::Picklist => {
                        if let Some(v) = f.picklist_values.iter().find(|v| v.default && v.active) {
                            rec.insert(f.name.clone(), Value::from(v.value.clone()));
                        }
                    }
                    FieldType::Reference if f.name == "OwnerId" => {
                        rec.insert(f.name.clone(), Value::from(self.user_id.clone()));
                    }
                    _ => {}
                }
            }
        }
        // Required fields: on create every non-nillable field without a default; on update
        // those the body sets to null.
        let missing: Vec<String> = def
            .fields
            .values()
            .filter(|f| !f.nillable && f.field_type != FieldType::Boolean)
            .filter(|f| actor == Actor::Api || f.createable)
            .filter(|f| {
                if creating {
                    f.required_on_create() && !rec.contains_key(&f.name)
                } else {
                    nulled.contains(&f.name)
                }
            })
            .map(|f| f.name.clone())
            .collect();
        if !missing.is_empty() && actor == Actor::Api {
            return Err(RecordError::new(
                "REQUIRED_FIELD_MISSING",
                format!("Required fields are missing: [{}]", missing.join(", ")),
                missing,
            ));
        }
        // Unique fields.
        for (f, _) in &given {
            if !f.unique {
                continue;
            }
            let Some(value) = rec.get(&f.name).and_then(Value::as_str) else {
                continue;
            };
            let own = before.and_then(|b| b.get("Id"));
            if let Some(other) = self.live_records(&def.name).find(|r| {
                r.get("Id") != own
                    && r.get(&f.name)
                        .and_then(Value::as_str)
                        .is_some_and(|v| v.eq_ignore_ascii_case(value))
            }) {
                let other_id = other.get("Id").and_then(Value::as_str).unwrap_or_default();
                return Err(RecordError::new(
                    "DUPLICATE_VALUE",
                    format!(
                        "duplicate value found: {} duplicates value on record with id: {other_id}",
                        f.name
                    ),
                    vec![f.name.clone()],
                ));
            }
        }
        if actor == Actor::Api && !creating {
            if let Some(name) = &self.validation_failure {
                let hit = |r: &Record| r.get("Name").and_then(Value::as_str) == Some(name.as_str());
                if hit(&rec) || before.is_some_and(hit) {
                    return Err(RecordError::new(
                        "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                        "Plan is locked by a validation rule",
                        vec![],
                    ));
                }
            }
        }
        self.derive(def, before, &changed, &mut rec)?;
        Ok(rec)
    }

    /// Converts a wire value to the stored form of the field, or None for null.
    fn coerce(&self, f: &FieldDef, v: &Value) -> Result<Option<Value>, RecordError> {
        if v.is_null() {
            return Ok(None);
        }
        match f.field_type {
            FieldType::Id => Err(type_error(f, v)),
            FieldType::String
            | FieldType::Textarea
            | FieldType::Email
            | FieldType::Phone
            | FieldType::Url => {
                let s = match v {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    _ => return Err(type_error(f, v)),
                };
                if s.is_empty() {
                    return Ok(None);
                }
                check_length(f, &s)?;
                Ok(Some(Value::String(s)))
            }
            FieldType::Picklist => {
                let s = text_of(v).ok_or_else(|| type_error(f, v))?;
                if s.is_empty() {
                    return Ok(None);
                }
                if f.restricted_picklist {
                    match f.picklist_values.iter().find(|p| p.active && p.value == s) {
                        Some(p) => return Ok(Some(Value::from(p.value.clone()))),
                        None => {
                            return Err(RecordError::new(
                                "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                                format!(
                                    "{}: bad value for restricted picklist field: {}",
                                    f.label, s
                                ),
                                vec![f.name.clone()],
                            ))
                        }
                    }
                }
                check_length(f, s)?;
                Ok(Some(Value::from(s)))
            }
            FieldType::Boolean => match v {
                Value::Bool(b) => Ok(Some(Value::Bool(*b))),
                Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(Some(Value::Bool(true))),
                Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(Some(Value::Bool(false))),
                _ => Err(type_error(f, v)),
            },
            FieldType::Int | FieldType::Double | FieldType::Currency | FieldType::Percent => {
                if matches!(v, Value::String(s) if s.trim().is_empty()) {
                    return Ok(None);
                }
                let d = decimal_of(v).ok_or_else(|| type_error(f, v))?;
                let rounded =
                    d.round_dp_with_strategy(f.scale, RoundingStrategy::MidpointAwayFromZero);
                if digits_before_point(rounded) > f.precision.saturating_sub(f.scale) {
                    return Err(RecordError::new(
                        "NUMBER_OUTSIDE_VALID_RANGE",
                        format!(
                            "{}: value outside of valid range on numeric field: {}",
                            f.label,
                            display(v)
                        ),
                        vec![f.name.clone()],
                    ));
                }
                Ok(Some(number(rounded)))
            }
            FieldType::Date => {
                let s = text_of(v).ok_or_else(|| type_error(f, v))?;
                if s.is_empty() {
                    return Ok(None);
                }
                let d = NaiveDate::parse_from_str(s, "%Y-%m-%d")
                    .ok()
                    .filter(|_| s.len() == 10)
                    .ok_or_else(|| type_error(f, v))?;
                Ok(Some(Value::from(d.format("%Y-%m-%d").to_string())))
            }
            FieldType::Datetime => {
                let s = text_of(v).ok_or_else(|| type_error(f, v))?;
                if s.is_empty() {
                    return Ok(None);
                }
                let t = parse_datetime(s).ok_or_else(|| type_error(f, v))?;
                Ok(Some(Value::from(format_datetime(t))))
            }
            FieldType::Reference => {
                let s = text_of(v).ok_or_else(|| type_error(f, v))?;
                if s.is_empty() {
                    return Ok(None);
                }
                let wrong = || {
                    RecordError::new(
                        "MALFORMED_ID",
                        format!("{}: id value of incorrect type: {}", f.label, s),
                        vec![f.name.clone()],
                    )
                };
                let id18 = normalize_id(s).ok_or_else(wrong)?;
                let target = self
                    .catalog
                    .object_by_prefix(id::key_prefix(&id18).unwrap_or_default())
                    .filter(|o| {
                        f.reference_to
                            .iter()
                            .any(|r| r.eq_ignore_ascii_case(&o.name))
                    })
                    .ok_or_else(|| {
                        RecordError::new(
                            "FIELD_INTEGRITY_EXCEPTION",
                            format!("{}: id value of incorrect type: {}", f.label, s),
                            vec![f.name.clone()],
                        )
                    })?;
                match self.table(&target.name).and_then(|t| t.records.get(&id18)) {
                    None => Err(RecordError::new(
                        "INVALID_CROSS_REFERENCE_KEY",
                        format!("invalid cross reference id: {}", f.label),
                        vec![f.name.clone()],
                    )),
                    Some(r) if r.get("IsDeleted") == Some(&Value::Bool(true)) => {
                        Err(RecordError::new(
                            "ENTITY_IS_DELETED",
                            "entity is deleted",
                            vec![f.name.clone()],
                        ))
                    }
                    Some(_) => Ok(Some(Value::from(id18))),
                }
            }
        }
    }

    fn lookup_row(&self, object: &str, api_name: &str) -> Option<&Record> {
        self.live_records(object).find(|r| {
            r.get("ApiName").and_then(Value::as_str) == Some(api_name)
                || r.get("MasterLabel").and_then(Value::as_str) == Some(api_name)
        })
    }

    fn activity_account(&self, rec: &Record) -> Option<String> {
        if let Some(what) = rec.get("WhatId").and_then(Value::as_str) {
            match self.find(what) {
                Some(("Account", _)) => return Some(what.to_string()),
                Some(("Opportunity", opp)) => {
                    return opp
                        .get("AccountId")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                }
                _ => {}
            }
        }
        let who = rec.get("WhoId").and_then(Value::as_str)?;
        match self.find(who) {
            Some(("Contact", c)) => c
                .get("AccountId")
                .and_then(Value::as_str)
                .map(str::to_string),
            _ => None,
        }
    }

    /// The fields the CRM computes from others on the same record.
    fn derive(
        &self,
        def: &ObjectDef,
        before: Option<&Record>,
        changed: &[&str],
        rec: &mut Record,
    ) -> Result<(), RecordError> {
        let creating = before.is_none();
        let has = |name: &str| changed.contains(&name);
        match def.name.as_str() {
            "Opportunity" => {
                let stage = rec
                    .get("StageName")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                let old_stage = before
                    .and_then(|b| b.get("StageName"))
                    .and_then(Value::as_str);
                let stage_moved = creating || (has("StageName") && old_stage != stage.as_deref());
                if stage_moved {
                    if let Some(row) = stage
                        .as_deref()
                        .and_then(|s| self.lookup_row("OpportunityStage", s))
                    {
                        let flag = |k: &str| Value::Bool(row.get(k) == Some(&Value::Bool(true)));
                        rec.insert("IsClosed".into(), flag("IsClosed"));
                        rec.insert("IsWon".into(), flag("IsWon"));
                        if !has("Probability") {
                            match row.get("DefaultProbability") {
                                Some(p) if !p.is_null() => {
                                    rec.insert("Probability".into(), p.clone())
                                }
                                _ => rec.remove("Probability"),
                            };
                        }
                        if !has("ForecastCategoryName") {
                            match row.get("ForecastCategoryName") {
                                Some(p) if !p.is_null() => {
                                    rec.insert("ForecastCategoryName".into(), p.clone())
                                }
                                _ => rec.remove("ForecastCategoryName"),
                            };
                        }
                    }
                }
                let category = rec
                    .get("ForecastCategoryName")
                    .and_then(Value::as_str)
                    .and_then(|n| FORECAST_CATEGORIES.iter().find(|(name, _)| *name == n))
                    .map(|(_, c)| Value::from(*c));
                match category {
                    Some(c) => rec.insert("ForecastCategory".into(), c),
                    None => rec.remove("ForecastCategory"),
                };
                let amount = rec.get("Amount").and_then(decimal_of);
                let probability = rec.get("Probability").and_then(decimal_of);
                match (amount, probability) {
                    (Some(a), Some(p)) => {
                        let e = (a * p / Decimal::ONE_HUNDRED)
                            .round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
                        rec.insert("ExpectedRevenue".into(), number(e));
                    }
                    _ => {
                        rec.remove("ExpectedRevenue");
                    }
                }
            }
            "Task" => {
                if creating || has("Status") {
                    let closed = rec
                        .get("Status")
                        .and_then(Value::as_str)
                        .and_then(|s| self.lookup_row("TaskStatus", s))
                        .is_some_and(|r| r.get("IsClosed") == Some(&Value::Bool(true)));
                    rec.insert("IsClosed".into(), Value::Bool(closed));
                }
                self.derive_activity_account(creating, &has, rec);
            }
            "Event" => {
                self.derive_activity_account(creating, &has, rec);
                let timing = [
                    "StartDateTime",
                    "EndDateTime",
                    "DurationInMinutes",
                    "ActivityDate",
                    "ActivityDateTime",
                    "IsAllDayEvent",
                ];
                if creating || timing.iter().any(|t| has(t)) {
                    derive_event_times(rec, &has)?;
                }
            }
            "Contact" | "User" if creating || has("FirstName") || has("LastName") => {
                let first = rec.get("FirstName").and_then(Value::as_str).unwrap_or("");
                let last = rec.get("LastName").and_then(Value::as_str).unwrap_or("");
                let name = format!("{first} {last}").trim().to_string();
                rec.insert("Name".into(), Value::from(name));
            }
            _ => {}
        }
        Ok(())
    }

    fn derive_activity_account(
        &self,
        creating: bool,
        has: &dyn Fn(&str) -> bool,
        rec: &mut Record,
    ) {
        if creating || has("WhatId") || has("WhoId") {
            match self.activity_account(rec) {
                Some(a) => rec.insert("AccountId".into(), Value::from(a)),
                None => rec.remove("AccountId"),
            };
        }
    }
}

fn derive_event_times(rec: &mut Record, has: &dyn Fn(&str) -> bool) -> Result<(), RecordError> {
    let get_dt =
        |rec: &Record, k: &str| rec.get(k).and_then(Value::as_str).and_then(parse_datetime);
    let all_day = rec.get("IsAllDayEvent") == Some(&Value::Bool(true));
    let duration = rec
        .get("DurationInMinutes")
        .and_then(decimal_of)
        .and_then(|d| d.trunc().to_i64());
    if all_day {
        let date = if has("ActivityDate") || get_dt(rec, "StartDateTime").is_none() {
            rec.get("ActivityDate")
                .and_then(Value::as_str)
                .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
        } else {
            get_dt(rec, "StartDateTime").map(|t| t.date_naive())
        };
        let Some(date) = date else {
            return Err(RecordError::new(
                "REQUIRED_FIELD_MISSING",
                "Required fields are missing: [ActivityDate]",
                vec!["ActivityDate".into()],
            ));
        };
        let start = Utc.from_utc_datetime(&date.and_hms_opt(0, 0, 0).unwrap_or_default());
        let minutes = duration.filter(|d| *d >= 1440).unwrap_or(1440);
        rec.insert(
            "ActivityDate".into(),
            Value::from(date.format("%Y-%m-%d").to_string()),
        );
        rec.insert("StartDateTime".into(), Value::from(format_datetime(start)));
        rec.insert(
            "EndDateTime".into(),
            Value::from(format_datetime(start + Duration::minutes(minutes - 1440))),
        );
        rec.insert("DurationInMinutes".into(), Value::from(minutes));
        rec.remove("ActivityDateTime");
        return Ok(());
    }
    let start = if has("ActivityDateTime") && !has("StartDateTime") {
        get_dt(rec, "ActivityDateTime")
    } else {
        get_dt(rec, "StartDateTime").or_else(|| get_dt(rec, "ActivityDateTime"))
    };
    let Some(start) = start else {
        return Err(RecordError::new(
            "REQUIRED_FIELD_MISSING",
            "Required fields are missing: [StartDateTime]",
            vec!["StartDateTime".into()],
        ));
    };
    let end = get_dt(rec, "EndDateTime");
    let minutes = if has("EndDateTime") || duration.is_none() {
        match end {
            Some(end) if end >= start => (end - start).num_minutes(),
            Some(_) => {
                return Err(RecordError::new(
                    "FIELD_INTEGRITY_EXCEPTION",
                    "End Date Time: the end must not be before the start",
                    vec!["EndDateTime".into()],
                ))
            }
            None => duration.unwrap_or(-1),
        }
    } else {
        duration.unwrap_or(-1)
    };
    if minutes < 0 {
        return Err(RecordError::new(
            "REQUIRED_FIELD_MISSING",
            "Required fields are missing: [DurationInMinutes]",
            vec!["DurationInMinutes".into()],
        ));
    }
    let start_text = Value::from(format_datetime(start));
    rec.insert("StartDateTime".into(), start_text.clone());
    rec.insert("ActivityDateTime".into(), start_text);
    rec.insert(
        "ActivityDate".into(),
        Value::from(start.date_naive().format("%Y-%m-%d").to_string()),
    );
    rec.insert("DurationInMinutes".into(), Value::from(minutes));
    rec.insert(
        "EndDateTime".into(),
        Value::from(format_datetime(start + Duration::minutes(minutes))),
    );
    Ok(())
}

impl Lookup for Org {
    fn get(&self, object: &str, id: &str) -> Option<&Record> {
        Org::get(self, object, id)
    }
}

#[cfg(test)]
mod tests;
