//! Rules on custom objects and their fields: definitions, sharing, name fields, field types,
//! sizes, picklists, lookups and relationships.

use std::collections::BTreeSet;

use super::{
    child, children, flag, lower, stem, text, violation, Package, Rule, Violation, FIELD_TYPES,
    VALID_SHARING,
};
use crate::metadata::sfdx::SourceFile;

pub(super) fn check_object(
    file: &SourceFile,
    root: roxmltree::Node,
    package: &Package,
    out: &mut Vec<Violation>,
) {
    let name = stem(&file.path);
    for element in ["label", "pluralLabel", "deploymentStatus"] {
        if text(root, element).is_none() {
            out.push(violation(
                file,
                Rule::ObjectDefinition,
                format!("<{element}> is missing"),
            ));
        }
    }
    let sharing = text(root, "sharingModel");
    match sharing.as_deref() {
        Some(s) if VALID_SHARING.contains(&s) => {}
        other => out.push(violation(
            file,
            Rule::ObjectDefinition,
            format!(
                "<sharingModel> {other:?} is not one of {}",
                VALID_SHARING.join(", ")
            ),
        )),
    }
    if package.is_detail(name) && sharing.as_deref() != Some("ControlledByParent") {
        out.push(violation(
            file,
            Rule::DetailSharing,
            format!(
                "{name} has a master-detail field, so its <sharingModel> must be ControlledByParent, not {}",
                sharing.as_deref().unwrap_or("missing")
            ),
        ));
    }
    match child(root, "nameField") {
        None => out.push(violation(file, Rule::NameField, "<nameField> is missing")),
        Some(name_field) => {
            if text(name_field, "label").is_none() {
                out.push(violation(
                    file,
                    Rule::NameField,
                    "<nameField> needs a <label>",
                ));
            }
            match text(name_field, "type").as_deref() {
                Some("Text") => {}
                Some("AutoNumber") => {
                    let format = text(name_field, "displayFormat").unwrap_or_default();
                    if !format.contains("{0") {
                        out.push(violation(
                            file,
                            Rule::NameField,
                            "an AutoNumber name field needs a <displayFormat> with a number placeholder such as AP-{0000}",
                        ));
                    }
                }
                other => out.push(violation(
                    file,
                    Rule::NameField,
                    format!("the name field's <type> is {other:?}; use Text or AutoNumber"),
                )),
            }
        }
    }
    if let Some(layout) = package
        .objects
        .get(&lower(name))
        .and_then(|o| o.compact_layout.as_deref())
    {
        if layout != "SYSTEM"
            && !package
                .compact_layouts
                .contains(&lower(&format!("{name}.{layout}")))
        {
            out.push(violation(
                file,
                Rule::CompactLayoutAssignment,
                format!(
                    "<compactLayoutAssignment> {layout} is not in objects/{name}/compactLayouts/"
                ),
            ));
        }
    }
}

pub(super) fn check_field(
    file: &SourceFile,
    object: &str,
    root: roxmltree::Node,
    package: &Package,
    out: &mut Vec<Violation>,
) {
    if !package.object_exists(object) {
        out.push(violation(
            file,
            Rule::FieldObject,
            format!("object {object} is neither defined in the package nor a standard object"),
        ));
    }
    let ty = text(root, "type").unwrap_or_default();
    if !FIELD_TYPES.contains(&ty.as_str()) {
        out.push(violation(
            file,
            Rule::FieldType,
            format!("<type> {ty:?} is not a field type"),
        ));
        return;
    }
    let number = |name: &str| text(root, name).and_then(|t| t.parse::<u32>().ok());
    // A formula's <type> is its result's: it has no length or default of its own.
    let formula = child(root, "formula").is_some();
    match ty.as_str() {
        "Text" | "Checkbox" | "TextArea" if formula => {}
        "Text" | "EncryptedText" => match number("length") {
            Some(1..=255) => {}
            other => out.push(violation(
                file,
                Rule::TextLength,
                format!("a Text field needs a <length> from 1 to 255, found {other:?}"),
            )),
        },
        "LongTextArea" | "Html" => {
            if !matches!(number("length"), Some(256..=131_072)) {
                out.push(violation(
                    file,
                    Rule::TextLength,
                    "a long text area needs a <length> from 256 to 131072",
                ));
            }
            if number("visibleLines").is_none() {
                out.push(violation(file, Rule::TextLength, "a long text area needs <visibleLines>"));
            }
        }
        "Number" | "Currency" | "Percent" => {
            let precision = number("precision");
            let scale = number("scale");
            match (precision, scale) {
                (Some(p @ 1..=18), Some(s)) if s <= p => {}
                _ => out.push(violation(
                    file,
                    Rule::Precision,
                    format!(
                        "{ty} needs <precision> 1–18 and <scale> 0–precision, found precision {precision:?} scale {scale:?}"
                    ),
                )),
            }
        }
        "Checkbox" => {
            let default = text(root, "defaultValue");
            if !matches!(default.as_deref(), Some("true") | Some("false")) {
                out.push(violation(
                    file,
                    Rule::CheckboxDefault,
                    format!("a Checkbox needs <defaultValue> true or false, found {default:?}"),
                ));
            }
        }
        "Picklist" | "MultiselectPicklist" => check_picklist(file, root, out),
        "MasterDetail" => {
            if child(root, "required").is_some() {
                out.push(violation(
                    file,
                    Rule::MasterDetail,
                    "a master-detail field must not carry <required> (it always is): remove it",
                ));
            }
            if child(root, "deleteConstraint").is_some() {
                out.push(violation(
                    file,
                    Rule::MasterDetail,
                    "a master-detail field must not carry <deleteConstraint> (deleting the master deletes its details): remove it",
                ));
            }
        }
        // The org keeps lookups to users when the user goes (users are deactivated, never
        // deleted): they take no delete constraint.
        "Lookup" if text(root, "referenceTo").as_deref() == Some("User") => {}
        "Lookup" => match text(root, "deleteConstraint").as_deref() {
            Some("SetNull") if flag(root, "required") => out.push(violation(
                file,
                Rule::LookupDeleteConstraint,
                "a required lookup cannot clear itself: use <deleteConstraint>Restrict</deleteConstraint>",
            )),
            Some("SetNull" | "Restrict" | "Cascade") => {}
            other => out.push(violation(
                file,
                Rule::LookupDeleteConstraint,
                format!("a lookup needs <deleteConstraint> SetNull, Restrict or Cascade, found {other:?}"),
            )),
        },
        _ => {}
    }
    if matches!(ty.as_str(), "Lookup" | "MasterDetail") {
        let target = text(root, "referenceTo");
        let relationship = text(root, "relationshipName");
        match target.as_deref() {
            Some(t) if package.object_exists(t) => {}
            other => out.push(violation(
                file,
                Rule::Relationship,
                format!("<referenceTo> {other:?} names no object of the package or the org"),
            )),
        }
        match (target, relationship) {
            (Some(target), Some(relationship)) => {
                let clash = package.fields.values().find(|f| {
                    f.file != file.path
                        && f.reference_to
                            .as_deref()
                            .is_some_and(|t| t.eq_ignore_ascii_case(&target))
                        && f.relationship_name
                            .as_deref()
                            .is_some_and(|r| r.eq_ignore_ascii_case(&relationship))
                });
                if let Some(other) = clash {
                    out.push(violation(
                        file,
                        Rule::Relationship,
                        format!(
                            "relationship name {relationship} is also used by {}.{} for {target}'s child relationships: rename one",
                            other.object, other.name
                        ),
                    ));
                }
            }
            (_, None) => out.push(violation(
                file,
                Rule::Relationship,
                "a lookup or master-detail field needs <relationshipName>",
            )),
            _ => {}
        }
    }
}

fn check_picklist(file: &SourceFile, root: roxmltree::Node, out: &mut Vec<Violation>) {
    let Some(value_set) = child(root, "valueSet") else {
        out.push(violation(
            file,
            Rule::Picklist,
            "a picklist needs a <valueSet>",
        ));
        return;
    };
    if text(value_set, "valueSetName").is_some() {
        return;
    }
    let Some(definition) = child(value_set, "valueSetDefinition") else {
        out.push(violation(
            file,
            Rule::Picklist,
            "<valueSet> needs a <valueSetDefinition> (or a global <valueSetName>)",
        ));
        return;
    };
    let mut names = BTreeSet::new();
    let mut defaults = 0;
    let mut count = 0;
    for value in children(definition, "value") {
        count += 1;
        let Some(name) = text(value, "fullName") else {
            out.push(violation(
                file,
                Rule::Picklist,
                "a picklist <value> needs a <fullName>",
            ));
            continue;
        };
        if !names.insert(lower(&name)) {
            out.push(violation(
                file,
                Rule::Picklist,
                format!("picklist value {name} appears twice"),
            ));
        }
        if flag(value, "default") {
            defaults += 1;
        }
    }
    if count == 0 {
        out.push(violation(
            file,
            Rule::Picklist,
            "the picklist has no values",
        ));
    }
    if defaults > 1 {
        out.push(violation(
            file,
            Rule::Picklist,
            format!("{defaults} picklist values are marked default; at most one may be"),
        ));
    }
}
