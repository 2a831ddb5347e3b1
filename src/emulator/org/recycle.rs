//! Deletion: soft deletes (IsDeleted, a moved SystemModstamp) and what they do to the custom
//! records pointing at the deleted one.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::values::{format_datetime, normalize_id};
use super::{Org, RecordError};
use crate::metadata::{id, FieldType, ObjectDef};

impl Org {
    /// Soft-deletes a record: IsDeleted becomes true and SystemModstamp moves. With `object`
    /// given, the Id must belong to it.
    pub fn delete(
        &mut self,
        object: Option<&str>,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), RecordError> {
        let (id18, def) = self.object_of(id)?;
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
            return Err(RecordError::entity_is_deleted(vec![]));
        }
        let object_name = def.name.clone();
        self.soft_delete(&key, &id18, now);
        self.cascade(&object_name, &id18, now);
        if object_name == "DatedConversionRate" {
            self.refresh_next_start_dates();
        }
        Ok(())
    }

    /// Restores a soft-deleted record from the recycle bin (IsDeleted false, SystemModstamp
    /// moves), as the SOAP API's undelete does. The custom records a deletion cleared or
    /// deleted with it stay as they are.
    pub fn undelete(&mut self, id: &str, now: DateTime<Utc>) -> Result<(), RecordError> {
        let (id18, def) = self.object_of(id)?;
        let key = def.name.to_ascii_lowercase();
        let before = self
            .tables
            .get(&key)
            .and_then(|t| t.records.get(&id18))
            .cloned()
            .ok_or_else(RecordError::not_found)?;
        if before.get("IsDeleted") != Some(&Value::Bool(true)) {
            return Err(RecordError::new(
                "UNDELETE_FAILED",
                "Entity is not in the recycle bin",
                vec![],
            ));
        }
        let object_name = def.name.clone();
        let stamp = format_datetime(self.next_stamp(now));
        let mut after = before.clone();
        after.insert("IsDeleted".into(), Value::Bool(false));
        after.insert("SystemModstamp".into(), Value::from(stamp));
        self.replace(&key, &id18, after, before);
        if object_name == "DatedConversionRate" {
            self.refresh_next_start_dates();
        }
        Ok(())
    }

    /// The 18-character form of `id` and the object its key prefix names: a malformed Id or
    /// an unknown prefix is the CRM's error.
    fn object_of(&self, id: &str) -> Result<(String, &ObjectDef), RecordError> {
        let id18 = normalize_id(id).ok_or_else(|| RecordError::malformed_record_id(id))?;
        let prefix = id::key_prefix(&id18).unwrap_or_default();
        let def = self
            .catalog
            .object_by_prefix(prefix)
            .ok_or_else(RecordError::not_found)?;
        Ok((id18, def))
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
}
