//! What the CRM checks on a write: the object and field permissions, field existence, types,
//! sizes, required and unique fields, references and restricted picklists.

use chrono::NaiveDate;
use rust_decimal::RoundingStrategy;
use serde_json::{Map, Value};

use super::values::{
    decimal_of, digits_before_point, display, field_of, format_datetime, normalize_id, number,
    parse_datetime, text_of,
};
use super::{Actor, Org, RecordError};
use crate::emulator::soql::Record;
use crate::metadata::{id, FieldDef, FieldType, ObjectDef};

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
    /// Checks `body` against the object's rules and returns the full record after the write
    /// (without system fields for a create), with derived fields set.
    pub(super) fn prepare(
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
                        Err(RecordError::entity_is_deleted(vec![f.name.clone()]))
                    }
                    Some(_) => Ok(Some(Value::from(id18))),
                }
            }
        }
    }
}
