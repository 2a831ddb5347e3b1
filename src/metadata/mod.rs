//! The CRM object schema: which objects and fields exist, their types and properties.
//!
//! This is the one piece of code the emulator and the CRM client share (design.md §1). The
//! custom objects and fields plansync needs are Salesforce metadata in SFDX source format under
//! `schema/salesforce/`: an admin deploys those files to a real org, and the emulator and
//! `plansync doctor` read the same files. Standard objects are described in [`standard`].
//! [`rules`] checks a package against the deploy rules a real org applies (the emulator refuses
//! to start on a package an org would refuse), and [`permsets`] reads its permission sets.

pub mod id;
pub mod permsets;
pub mod rules;
pub mod sfdx;
pub mod standard;

use indexmap::IndexMap;
use serde::Serialize;

/// A field's data type, named as the describe call names it (`"currency"`, `"reference"`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    Id,
    String,
    Textarea,
    Boolean,
    Int,
    Double,
    Currency,
    Percent,
    Date,
    Datetime,
    Picklist,
    Reference,
    Email,
    Phone,
    Url,
}

impl FieldType {
    /// The describe `type` value.
    pub fn as_str(self) -> &'static str {
        match self {
            FieldType::Id => "id",
            FieldType::String => "string",
            FieldType::Textarea => "textarea",
            FieldType::Boolean => "boolean",
            FieldType::Int => "int",
            FieldType::Double => "double",
            FieldType::Currency => "currency",
            FieldType::Percent => "percent",
            FieldType::Date => "date",
            FieldType::Datetime => "datetime",
            FieldType::Picklist => "picklist",
            FieldType::Reference => "reference",
            FieldType::Email => "email",
            FieldType::Phone => "phone",
            FieldType::Url => "url",
        }
    }

    /// Whether values of this type are JSON numbers on the wire.
    pub fn is_numeric(self) -> bool {
        matches!(
            self,
            FieldType::Int | FieldType::Double | FieldType::Currency | FieldType::Percent
        )
    }

    /// Whether values of this type are JSON strings on the wire.
    pub fn is_textual(self) -> bool {
        matches!(
            self,
            FieldType::Id
                | FieldType::String
                | FieldType::Textarea
                | FieldType::Picklist
                | FieldType::Reference
                | FieldType::Email
                | FieldType::Phone
                | FieldType::Url
        )
    }
}

/// One value of a picklist field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PicklistValue {
    pub value: String,
    pub label: String,
    pub default: bool,
    pub active: bool,
}

impl PicklistValue {
    pub fn new(value: &str) -> Self {
        PicklistValue {
            value: value.to_string(),
            label: value.to_string(),
            default: false,
            active: true,
        }
    }
}

/// One field of an object, with the properties the describe call reports.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldDef {
    /// API name with its canonical casing (`Account_Plan__c`, `CloseDate`).
    pub name: String,
    pub label: String,
    pub field_type: FieldType,
    /// Text length (string, textarea, picklist, id and reference fields).
    pub length: u32,
    /// Total digits for numeric fields.
    pub precision: u32,
    /// Digits right of the decimal point for numeric fields.
    pub scale: u32,
    pub nillable: bool,
    pub createable: bool,
    pub updateable: bool,
    /// The field gets a value on create when none is given (a default, or derived).
    pub defaulted_on_create: bool,
    pub external_id: bool,
    pub unique: bool,
    /// For reference fields, the objects it may point to (several for WhatId/WhoId).
    pub reference_to: Vec<String>,
    /// For reference fields, the relationship name used in SOQL (`Account` for `AccountId`,
    /// `Account_Plan__r` for `Account_Plan__c`).
    pub relationship_name: Option<String>,
    /// For picklist fields, the allowed values.
    pub picklist_values: Vec<PicklistValue>,
    /// For picklist fields: values outside the list are refused.
    pub restricted_picklist: bool,
    pub custom: bool,
    /// Computed by the CRM (formula or system-derived): never writable.
    pub calculated: bool,
}

impl FieldDef {
    /// A new writable, nillable field of the given type with Salesforce's usual sizes.
    pub fn new(name: &str, field_type: FieldType) -> Self {
        let (length, precision, scale) = match field_type {
            FieldType::Id | FieldType::Reference => (18, 0, 0),
            FieldType::String => (255, 0, 0),
            FieldType::Textarea => (32000, 0, 0),
            FieldType::Picklist => (255, 0, 0),
            FieldType::Email | FieldType::Phone => (80, 0, 0),
            FieldType::Url => (255, 0, 0),
            FieldType::Int => (0, 9, 0),
            FieldType::Double => (0, 18, 2),
            FieldType::Currency => (0, 18, 2),
            FieldType::Percent => (0, 3, 0),
            FieldType::Boolean | FieldType::Date | FieldType::Datetime => (0, 0, 0),
        };
        FieldDef {
            name: name.to_string(),
            label: name.trim_end_matches("__c").replace('_', " "),
            field_type,
            length,
            precision,
            scale,
            nillable: field_type != FieldType::Boolean,
            createable: true,
            updateable: true,
            defaulted_on_create: field_type == FieldType::Boolean,
            external_id: false,
            unique: false,
            reference_to: Vec::new(),
            relationship_name: None,
            picklist_values: Vec::new(),
            restricted_picklist: false,
            custom: name.ends_with("__c"),
            calculated: false,
        }
    }

    /// Required on create: not nillable, createable and not defaulted.
    pub fn required_on_create(&self) -> bool {
        !self.nillable && self.createable && !self.defaulted_on_create
    }
}

/// One object (sObject type) with its fields in definition order.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectDef {
    /// API name with canonical casing (`Opportunity`, `Account_Plan__c`).
    pub name: String,
    pub label: String,
    pub label_plural: String,
    /// The 3-character Id prefix (`006` for Opportunity; per org for custom objects).
    pub key_prefix: String,
    pub custom: bool,
    pub createable: bool,
    pub updateable: bool,
    pub deletable: bool,
    pub queryable: bool,
    /// Fields keyed by lower-cased API name, in definition order.
    pub fields: IndexMap<String, FieldDef>,
}

impl ObjectDef {
    pub fn new(name: &str, key_prefix: &str) -> Self {
        ObjectDef {
            name: name.to_string(),
            label: name.trim_end_matches("__c").replace('_', " "),
            label_plural: format!("{}s", name.trim_end_matches("__c").replace('_', " ")),
            key_prefix: key_prefix.to_string(),
            custom: name.ends_with("__c"),
            createable: true,
            updateable: true,
            deletable: true,
            queryable: true,
            fields: IndexMap::new(),
        }
    }

    /// Adds or replaces a field (matched case-insensitively).
    pub fn add_field(&mut self, field: FieldDef) {
        self.fields.insert(field.name.to_ascii_lowercase(), field);
    }

    /// The field with this API name, case-insensitively.
    pub fn field(&self, name: &str) -> Option<&FieldDef> {
        self.fields.get(&name.to_ascii_lowercase())
    }

    /// The reference field whose relationship name is `relationship`, case-insensitively
    /// (`Account` → `AccountId`).
    pub fn relationship(&self, relationship: &str) -> Option<&FieldDef> {
        self.fields.values().find(|f| {
            f.relationship_name
                .as_deref()
                .is_some_and(|r| r.eq_ignore_ascii_case(relationship))
        })
    }
}

/// Every object an org has, keyed case-insensitively.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Catalog {
    objects: IndexMap<String, ObjectDef>,
}

impl Catalog {
    pub fn new() -> Self {
        Catalog::default()
    }

    /// Adds or replaces an object.
    pub fn insert(&mut self, object: ObjectDef) {
        self.objects
            .insert(object.name.to_ascii_lowercase(), object);
    }

    /// The object with this API name, case-insensitively.
    pub fn object(&self, name: &str) -> Option<&ObjectDef> {
        self.objects.get(&name.to_ascii_lowercase())
    }

    pub fn object_mut(&mut self, name: &str) -> Option<&mut ObjectDef> {
        self.objects.get_mut(&name.to_ascii_lowercase())
    }

    /// The object whose records' Ids start with this 3-character prefix.
    pub fn object_by_prefix(&self, prefix: &str) -> Option<&ObjectDef> {
        self.objects.values().find(|o| o.key_prefix == prefix)
    }

    /// All objects in insertion order.
    pub fn objects(&self) -> impl Iterator<Item = &ObjectDef> {
        self.objects.values()
    }
}
