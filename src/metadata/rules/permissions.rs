//! Rules on permission sets: what they may name and grant, and what each grant needs.

use super::{children, flag, lower, text, violation, Package, Rule, Violation, IMPLICIT_FIELDS};
use crate::metadata::sfdx::SourceFile;

pub(super) fn check_permission_set(
    file: &SourceFile,
    root: roxmltree::Node,
    package: &Package,
    out: &mut Vec<Violation>,
) {
    for perm in children(root, "fieldPermissions") {
        let full = text(perm, "field").unwrap_or_default();
        let readable = flag(perm, "readable");
        let editable = flag(perm, "editable");
        if editable && !readable {
            out.push(violation(
                file,
                Rule::PermissionDependency,
                format!("{full}: editable needs readable"),
            ));
        }
        let Some((object, field)) = full.split_once('.') else {
            out.push(violation(
                file,
                Rule::PermissionTarget,
                format!("field permission {full:?} is not Object.Field"),
            ));
            continue;
        };
        if let Some(custom) = package.custom_field(object, field) {
            if custom.ty == "MasterDetail" || custom.required {
                out.push(violation(
                    file,
                    Rule::PermissionOnRequiredField,
                    format!(
                        "{full} is {}: the org always grants it, and a permission set naming it does not deploy; remove the entry",
                        if custom.ty == "MasterDetail" { "a master-detail field" } else { "required" }
                    ),
                ));
            } else if custom.computed && editable {
                out.push(violation(
                    file,
                    Rule::PermissionDependency,
                    format!("{full} is computed by the org (formula, auto-number or roll-up summary): it can be readable, never editable"),
                ));
            }
            continue;
        }
        if package.objects.contains_key(&lower(object)) {
            let detail = if IMPLICIT_FIELDS
                .iter()
                .any(|f| f.eq_ignore_ascii_case(field))
            {
                (
                    Rule::PermissionOnRequiredField,
                    format!("{full} is a system field whose access cannot be granted"),
                )
            } else {
                (
                    Rule::PermissionTarget,
                    format!("{full}: no such field in the package"),
                )
            };
            out.push(violation(file, detail.0, detail.1));
            continue;
        }
        match package.standard_object(object) {
            None => out.push(violation(
                file,
                Rule::PermissionTarget,
                format!("{full}: object {object} is neither in the package nor a standard object"),
            )),
            Some(o) => match o.field(field) {
                None => out.push(violation(
                    file,
                    Rule::PermissionTarget,
                    format!("{full}: {object} has no field {field}"),
                )),
                Some(f) if !f.nillable || f.name == "Id" => out.push(violation(
                    file,
                    Rule::PermissionOnRequiredField,
                    format!("{full} is required or a system field: its access cannot be granted; remove the entry"),
                )),
                Some(_) => {}
            },
        }
    }
    for perm in children(root, "objectPermissions") {
        let object = text(perm, "object").unwrap_or_default();
        if matches!(object.as_str(), "Task" | "Event") {
            out.push(violation(
                file,
                Rule::PermissionTarget,
                format!("{object}: permission sets hold no object permissions for activities; access to tasks and events follows the records they belong to"),
            ));
        } else if !package.object_exists(&object) {
            out.push(violation(
                file,
                Rule::PermissionTarget,
                format!("object permissions for {object:?}, which is neither in the package nor a standard object"),
            ));
        }
        let read = flag(perm, "allowRead");
        let create = flag(perm, "allowCreate");
        let edit = flag(perm, "allowEdit");
        let delete = flag(perm, "allowDelete");
        let view_all = flag(perm, "viewAllRecords");
        let modify_all = flag(perm, "modifyAllRecords");
        let mut needs = |what: &str, ok: bool, need: &str| {
            if !ok {
                out.push(violation(
                    file,
                    Rule::PermissionDependency,
                    format!("{object}: {what} needs {need}"),
                ));
            }
        };
        if create || edit || view_all {
            needs("create, edit and view all", read, "allowRead");
        }
        if delete {
            needs("allowDelete", read && edit, "allowRead and allowEdit");
        }
        if modify_all {
            needs(
                "modifyAllRecords",
                read && edit && delete && view_all,
                "allowRead, allowEdit, allowDelete and viewAllRecords",
            );
        }
    }
    for tab in children(root, "tabSettings") {
        let name = text(tab, "tab").unwrap_or_default();
        if !name.starts_with("standard-") && !package.tabs.contains(&lower(&name)) {
            out.push(violation(
                file,
                Rule::PermissionTarget,
                format!("tab setting for {name:?}, which is not a tab of the package"),
            ));
        }
        let visibility = text(tab, "visibility").unwrap_or_default();
        if !matches!(visibility.as_str(), "Visible" | "Available" | "None") {
            out.push(violation(
                file,
                Rule::PermissionTarget,
                format!(
                    "tab {name}: <visibility> {visibility:?} is not Visible, Available or None"
                ),
            ));
        }
    }
    for app in children(root, "applicationVisibilities") {
        let name = text(app, "application").unwrap_or_default();
        if !name.starts_with("standard__") && !package.apps.contains(&lower(&name)) {
            out.push(violation(
                file,
                Rule::PermissionTarget,
                format!("application {name:?} is not an application of the package"),
            ));
        }
    }
}
