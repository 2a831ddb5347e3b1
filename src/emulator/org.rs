//! The in-memory org (minimal placeholder until the full org lands): records by object, with
//! create, update, upsert and soft delete.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::soql::{Lookup, Record};
use crate::metadata::{id, Catalog};

/// A refused record write.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status_code}: {message}")]
pub struct RecordError {
    pub status_code: String,
    pub message: String,
    pub fields: Vec<String>,
}

impl RecordError {
    pub fn new(code: &str, message: &str, fields: &[&str]) -> RecordError {
        RecordError {
            status_code: code.into(),
            message: message.into(),
            fields: fields.iter().map(|f| f.to_string()).collect(),
        }
    }
}

/// Why an org could not be built.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct OrgError(String);

#[derive(Debug, Clone)]
pub struct Org {
    catalog: Catalog,
    records: HashMap<String, BTreeMap<String, Record>>,
    seq: u64,
    validation_failures: Vec<String>,
    org_id: String,
    user_id: String,
}

fn now_text(now: DateTime<Utc>) -> String {
    now.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string()
}

impl Org {
    pub fn new(multi_currency: Option<&str>) -> Result<Org, OrgError> {
        let catalog = crate::metadata::standard::catalog(multi_currency.is_some())
            .map_err(|e| OrgError(e.to_string()))?;
        Ok(Org {
            catalog,
            records: HashMap::new(),
            seq: 0,
            validation_failures: Vec::new(),
            org_id: id::make("00D", "5e0", 1),
            user_id: id::make("005", "5e0", 1),
        })
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }
    pub fn org_id(&self) -> &str {
        &self.org_id
    }
    pub fn user_id(&self) -> &str {
        &self.user_id
    }

    pub fn set_validation_failure(&mut self, name: &str) {
        self.validation_failures.push(name.into());
    }

    /// Every record of `object` in Id order, deleted ones included.
    pub fn records(&self, object: &str) -> impl Iterator<Item = &Record> {
        self.records
            .get(&object.to_ascii_lowercase())
            .into_iter()
            .flat_map(|m| m.values())
    }

    pub fn get_record(&self, object: &str, id: &str) -> Option<&Record> {
        self.records.get(&object.to_ascii_lowercase())?.get(id)
    }

    fn check(
        &self,
        object: &str,
        fields: &Map<String, Value>,
    ) -> Result<Map<String, Value>, RecordError> {
        let def = self.catalog.object(object).ok_or_else(|| {
            RecordError::new("NOT_FOUND", "The requested resource does not exist", &[])
        })?;
        let mut out = Map::new();
        for (k, v) in fields {
            let f = def.field(k).ok_or_else(|| {
                RecordError::new(
                    "INVALID_FIELD",
                    &format!("No such column '{k}' on sobject of type {}", def.name),
                    &[],
                )
            })?;
            if let Some(name) = v.as_str() {
                if f.name == "Name" && self.validation_failures.iter().any(|n| n == name) {
                    return Err(RecordError::new(
                        "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                        "This record fails a validation rule",
                        &[],
                    ));
                }
            }
            out.insert(f.name.clone(), v.clone());
        }
        Ok(out)
    }

    pub fn create(
        &mut self,
        object: &str,
        fields: &Map<String, Value>,
        now: DateTime<Utc>,
    ) -> Result<String, RecordError> {
        let values = self.check(object, fields)?;
        let def = self.catalog.object(object).ok_or_else(|| {
            RecordError::new("NOT_FOUND", "The requested resource does not exist", &[])
        })?;
        self.seq += 1;
        let new_id = id::make(&def.key_prefix, "5e0", self.seq);
        let mut record = Map::new();
        record.insert("Id".into(), Value::String(new_id.clone()));
        record.insert("IsDeleted".into(), Value::Bool(false));
        record.extend(values);
        record.insert("SystemModstamp".into(), Value::String(now_text(now)));
        self.records
            .entry(object.to_ascii_lowercase())
            .or_default()
            .insert(new_id.clone(), record);
        Ok(new_id)
    }

    pub fn update(
        &mut self,
        object: &str,
        record_id: &str,
        fields: &Map<String, Value>,
        now: DateTime<Utc>,
    ) -> Result<(), RecordError> {
        let values = self.check(object, fields)?;
        let record = self
            .records
            .get_mut(&object.to_ascii_lowercase())
            .and_then(|m| m.get_mut(record_id))
            .ok_or_else(|| RecordError::new("ENTITY_IS_DELETED", "entity is deleted", &[]))?;
        if record.get("IsDeleted") == Some(&Value::Bool(true)) {
            return Err(RecordError::new(
                "ENTITY_IS_DELETED",
                "entity is deleted",
                &[],
            ));
        }
        record.extend(values);
        record.insert("SystemModstamp".into(), Value::String(now_text(now)));
        Ok(())
    }

    pub fn delete(
        &mut self,
        object: &str,
        record_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), RecordError> {
        let record = self
            .records
            .get_mut(&object.to_ascii_lowercase())
            .and_then(|m| m.get_mut(record_id))
            .ok_or_else(|| RecordError::new("ENTITY_IS_DELETED", "entity is deleted", &[]))?;
        if record.get("IsDeleted") == Some(&Value::Bool(true)) {
            return Err(RecordError::new(
                "ENTITY_IS_DELETED",
                "entity is deleted",
                &[],
            ));
        }
        record.insert("IsDeleted".into(), Value::Bool(true));
        record.insert("SystemModstamp".into(), Value::String(now_text(now)));
        Ok(())
    }
}

impl Lookup for Org {
    fn get(&self, object: &str, id: &str) -> Option<&Record> {
        self.get_record(object, id)
    }
}
