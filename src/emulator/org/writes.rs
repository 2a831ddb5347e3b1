//! Creates, updates and upserts: Ids, audit fields and SystemModstamps around the validated
//! record.

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{Map, Value};

use super::undo::Undo;
use super::values::{decode_sequence, format_datetime, normalize_id};
use super::{Actor, Org, RecordError, UpsertError, UpsertOutcome, POD};
use crate::emulator::soql::Record;
use crate::metadata::{id, ObjectDef};

impl Org {
    pub(super) fn next_stamp(&mut self, now: DateTime<Utc>) -> DateTime<Utc> {
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
            .put(id.clone(), rec);
        self.journal_insert(&key, &id);
        self.log(Undo::Inserted { table: key, id });
    }

    pub(super) fn system_insert(
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

    /// The definition of `object`, or NOT_FOUND.
    fn object_def(&self, object: &str) -> Result<&ObjectDef, RecordError> {
        self.catalog
            .object(object)
            .ok_or_else(RecordError::not_found)
    }

    /// The object's name and the 18-character form of `id`, which must be an Id of `object`
    /// (MALFORMED_ID otherwise).
    fn record_id(&self, object: &str, id: &str) -> Result<(String, String), RecordError> {
        let def = self.object_def(object)?;
        let id18 = normalize_id(id).ok_or_else(|| RecordError::malformed_record_id(id))?;
        if id::key_prefix(&id18) != Some(def.key_prefix.as_str()) {
            return Err(RecordError::malformed_record_id(id));
        }
        Ok((def.name.clone(), id18))
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
        let (name, id18) = self.record_id(object, id)?;
        if self.get(object, &id18).is_some() {
            return Err(RecordError::new(
                "DUPLICATE_VALUE",
                format!("duplicate value found: Id duplicates value on record with id: {id18}"),
                vec!["Id".into()],
            ));
        }
        if id18.get(3..6) == Some(POD) {
            if let Some(seq) = decode_sequence(&id18) {
                let t = self.tables.entry(name.to_ascii_lowercase()).or_default();
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
        let (_, id18) = self.record_id(object, id)?;
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
        let def = self.object_def(object)?;
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
        let def = self.object_def(object)?;
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
                    return Err(RecordError::entity_is_deleted(vec![]));
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
}
