//! Parsing one object or field file into its definition, and the fields the org gives every
//! object (system fields, the owner).

use super::{custom_key_prefix, MetadataError, SourceFile};
use crate::metadata::{FieldDef, FieldType, ObjectDef, PicklistValue};

fn object_name_of(path: &str) -> Option<String> {
    let file = path.rsplit('/').next()?;
    file.strip_suffix(".object-meta.xml").map(str::to_string)
}

fn invalid(file: &str, element: &str, problem: impl Into<String>) -> MetadataError {
    MetadataError::Invalid {
        file: file.to_string(),
        element: element.to_string(),
        problem: problem.into(),
    }
}

/// Parses `text`, whose root element must be `<tag>`.
fn parse_root<'a>(
    file: &str,
    text: &'a str,
    tag: &str,
) -> Result<roxmltree::Document<'a>, MetadataError> {
    let doc = roxmltree::Document::parse(text).map_err(|source| MetadataError::Xml {
        file: file.to_string(),
        source,
    })?;
    let found = doc.root_element().tag_name().name();
    if found != tag {
        return Err(invalid(
            file,
            found,
            format!("expected a <{tag}> root element"),
        ));
    }
    Ok(doc)
}

fn child<'a, 'i>(node: roxmltree::Node<'a, 'i>, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
    node.children()
        .find(|c| c.is_element() && c.tag_name().name() == name)
}

fn child_text<'a>(node: roxmltree::Node<'a, '_>, name: &str) -> Option<&'a str> {
    child(node, name).and_then(|c| c.text()).map(str::trim)
}

fn child_bool(file: &str, node: roxmltree::Node, name: &str) -> Result<bool, MetadataError> {
    match child_text(node, name) {
        None => Ok(false),
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(other) => Err(invalid(
            file,
            name,
            format!("expected true or false, found {other:?}"),
        )),
    }
}

fn child_u32(file: &str, node: roxmltree::Node, name: &str) -> Result<Option<u32>, MetadataError> {
    child_text(node, name)
        .map(|t| {
            t.parse::<u32>()
                .map_err(|_| invalid(file, name, format!("expected a whole number, found {t:?}")))
        })
        .transpose()
}

/// The system fields every object has.
pub fn add_system_fields(object: &mut ObjectDef) {
    let mut id = FieldDef::new("Id", FieldType::Id);
    id.label = format!("{} ID", object.label);
    id.nillable = false;
    id.defaulted_on_create = true;
    read_only(&mut id);
    object.add_field(id);
    let mut deleted = FieldDef::new("IsDeleted", FieldType::Boolean);
    deleted.label = "Deleted".into();
    read_only(&mut deleted);
    object.add_field(deleted);
    for (name, label, ty) in [
        ("CreatedDate", "Created Date", FieldType::Datetime),
        ("CreatedById", "Created By ID", FieldType::Reference),
        (
            "LastModifiedDate",
            "Last Modified Date",
            FieldType::Datetime,
        ),
        (
            "LastModifiedById",
            "Last Modified By ID",
            FieldType::Reference,
        ),
        ("SystemModstamp", "System Modstamp", FieldType::Datetime),
    ] {
        let mut f = FieldDef::new(name, ty);
        f.label = label.into();
        f.nillable = false;
        f.defaulted_on_create = true;
        if ty == FieldType::Reference {
            f.reference_to = vec!["User".into()];
            f.relationship_name = Some(name.trim_end_matches("Id").to_string());
        }
        read_only(&mut f);
        object.add_field(f);
    }
}

/// Makes a field read-only (neither createable nor updateable).
pub fn read_only(field: &mut FieldDef) {
    field.createable = false;
    field.updateable = false;
}

pub(super) fn parse_object(file: &SourceFile) -> Result<ObjectDef, MetadataError> {
    let path = file.path.as_str();
    let name = object_name_of(path)
        .ok_or_else(|| invalid(path, "CustomObject", "unexpected file name"))?;
    let doc = parse_root(path, &file.text, "CustomObject")?;
    let root = doc.root_element();
    let mut object = ObjectDef::new(&name, custom_key_prefix(&name));
    if let Some(label) = child_text(root, "label") {
        object.label = label.to_string();
    }
    if let Some(plural) = child_text(root, "pluralLabel") {
        object.label_plural = plural.to_string();
    }
    add_system_fields(&mut object);
    let name_field = child(root, "nameField")
        .ok_or_else(|| invalid(path, "nameField", "a custom object needs a <nameField>"))?;
    let name_type = child_text(name_field, "type").unwrap_or("Text");
    let mut name_def = FieldDef::new("Name", FieldType::String);
    name_def.length = 80;
    name_def.custom = false;
    name_def.nillable = false;
    // The CRM names a record after its Id when no Name is given through the API.
    name_def.defaulted_on_create = true;
    name_def.label = child_text(name_field, "label")
        .unwrap_or("Name")
        .to_string();
    match name_type {
        "Text" => {}
        "AutoNumber" => read_only(&mut name_def),
        other => {
            return Err(invalid(
                path,
                "nameField",
                format!("unsupported name field type {other:?} (Text or AutoNumber)"),
            ))
        }
    }
    object.add_field(name_def);
    Ok(object)
}

/// Gives a custom object its OwnerId, which every custom object has except master-detail
/// children (their master owns them).
pub(super) fn add_owner(object: &mut ObjectDef) {
    if object.field("OwnerId").is_none() {
        let mut owner = FieldDef::new("OwnerId", FieldType::Reference);
        owner.label = "Owner ID".into();
        owner.nillable = false;
        owner.defaulted_on_create = true;
        owner.reference_to = vec!["User".into()];
        owner.relationship_name = Some("Owner".into());
        object.add_field(owner);
    }
}

/// Parses one `<CustomField>` file.
pub fn parse_field(path: &str, text: &str) -> Result<FieldDef, MetadataError> {
    let doc = parse_root(path, text, "CustomField")?;
    let root = doc.root_element();
    let name = child_text(root, "fullName")
        .ok_or_else(|| invalid(path, "fullName", "missing"))?
        .to_string();
    if !name.ends_with("__c") {
        return Err(invalid(
            path,
            "fullName",
            format!("a custom field's name ends with __c, found {name:?}"),
        ));
    }
    let sfdx_type = child_text(root, "type").ok_or_else(|| invalid(path, "type", "missing"))?;
    let field_type = match sfdx_type {
        "Text" => FieldType::String,
        "TextArea" | "LongTextArea" => FieldType::Textarea,
        "Number" => FieldType::Double,
        "Currency" => FieldType::Currency,
        "Percent" => FieldType::Percent,
        "Date" => FieldType::Date,
        "DateTime" => FieldType::Datetime,
        "Checkbox" => FieldType::Boolean,
        "Picklist" => FieldType::Picklist,
        "Lookup" | "MasterDetail" => FieldType::Reference,
        "Email" => FieldType::Email,
        "Phone" => FieldType::Phone,
        "Url" => FieldType::Url,
        other => {
            return Err(invalid(
                path,
                "type",
                format!("unsupported field type {other:?}"),
            ))
        }
    };
    let mut field = FieldDef::new(&name, field_type);
    if let Some(label) = child_text(root, "label") {
        field.label = label.to_string();
    }
    let required = child_bool(path, root, "required")?;
    field.external_id = child_bool(path, root, "externalId")?;
    field.unique = child_bool(path, root, "unique")?;
    if let Some(length) = child_u32(path, root, "length")? {
        field.length = length;
    }
    if field_type.is_numeric() {
        let precision = child_u32(path, root, "precision")?
            .ok_or_else(|| invalid(path, "precision", "required for numeric fields"))?;
        let scale = child_u32(path, root, "scale")?.unwrap_or(0);
        if scale > precision || precision > 18 {
            return Err(invalid(
                path,
                "scale",
                format!("scale {scale} and precision {precision}: need scale ≤ precision ≤ 18"),
            ));
        }
        field.precision = precision;
        field.scale = scale;
        // The describe call reports whole numbers as int when they have no decimals.
        if field_type == FieldType::Double && scale == 0 && precision <= 9 {
            field.field_type = FieldType::Int;
        }
    }
    if field_type == FieldType::Boolean {
        field.nillable = false;
        field.defaulted_on_create = true;
        if let Some(default) = child_text(root, "defaultValue") {
            if default != "true" && default != "false" {
                return Err(invalid(
                    path,
                    "defaultValue",
                    format!("a checkbox default is true or false, found {default:?}"),
                ));
            }
        }
    }
    if field_type == FieldType::Reference {
        let to = child_text(root, "referenceTo")
            .ok_or_else(|| invalid(path, "referenceTo", "required for Lookup and MasterDetail"))?;
        field.reference_to = vec![to.to_string()];
        field.relationship_name = Some(format!("{}__r", name.trim_end_matches("__c")));
        if child_text(root, "relationshipName").is_none() {
            return Err(invalid(
                path,
                "relationshipName",
                "required for Lookup and MasterDetail",
            ));
        }
        if sfdx_type == "MasterDetail" {
            field.nillable = false;
            field.updateable = child_bool(path, root, "reparentableMasterDetail")?;
        }
    }
    if field_type == FieldType::Picklist {
        let value_set = child(root, "valueSet")
            .ok_or_else(|| invalid(path, "valueSet", "required for Picklist"))?;
        field.restricted_picklist = child_bool(path, value_set, "restricted")?;
        let definition = child(value_set, "valueSetDefinition")
            .ok_or_else(|| invalid(path, "valueSetDefinition", "required in <valueSet>"))?;
        for value in definition
            .children()
            .filter(|c| c.is_element() && c.tag_name().name() == "value")
        {
            let full = child_text(value, "fullName")
                .ok_or_else(|| invalid(path, "value", "a picklist value needs <fullName>"))?;
            let mut pv = PicklistValue::new(full);
            if let Some(label) = child_text(value, "label") {
                pv.label = label.to_string();
            }
            pv.default = child_bool(path, value, "default")?;
            if child_text(value, "isActive") == Some("false") {
                pv.active = false;
            }
            field.picklist_values.push(pv);
        }
        if field.picklist_values.is_empty() {
            return Err(invalid(path, "valueSetDefinition", "no picklist values"));
        }
        if field.picklist_values.iter().any(|v| v.default) {
            field.defaulted_on_create = true;
        }
    }
    if required {
        field.nillable = false;
    }
    Ok(field)
}

/// The default value of a field declared in its metadata, as a wire value (checkbox default,
/// default picklist value).
pub fn default_value(field: &FieldDef) -> Option<serde_json::Value> {
    match field.field_type {
        FieldType::Picklist => field
            .picklist_values
            .iter()
            .find(|v| v.default && v.active)
            .map(|v| serde_json::Value::String(v.value.clone())),
        _ => None,
    }
}
