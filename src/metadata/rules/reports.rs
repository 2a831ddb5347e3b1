//! Rules on report types and reports: their joins, columns and folders.

use std::collections::BTreeMap;

use super::layouts::check_field_exists;
use super::{child, children, flag, lower, text, violation, Package, Rule, Violation};
use crate::metadata::sfdx::SourceFile;

/// The tables a report type makes available, as `table -> object`: the base object and one
/// entry per join level (`Account_Plan__c.Account_Plan_Snapshots__r`).
fn report_type_tables(
    file: &SourceFile,
    root: roxmltree::Node,
    package: &Package,
    out: &mut Vec<Violation>,
) -> BTreeMap<String, String> {
    let mut tables = BTreeMap::new();
    let Some(base) = text(root, "baseObject") else {
        out.push(violation(file, Rule::ReportType, "<baseObject> is missing"));
        return tables;
    };
    if !package.object_exists(&base) {
        out.push(violation(
            file,
            Rule::ReportType,
            format!("<baseObject> {base} is not an object of the package or the org"),
        ));
        return tables;
    }
    tables.insert(base.clone(), base.clone());
    let mut parent_table = base.clone();
    let mut parent_object = base;
    let mut join = child(root, "join");
    while let Some(j) = join {
        let relationship = text(j, "relationship").unwrap_or_default();
        let child_field = package.fields.values().find(|f| {
            f.reference_to
                .as_deref()
                .is_some_and(|t| t.eq_ignore_ascii_case(&parent_object))
                && f.relationship_name
                    .as_deref()
                    .is_some_and(|r| format!("{r}__r").eq_ignore_ascii_case(&relationship))
        });
        let Some(f) = child_field else {
            out.push(violation(
                file,
                Rule::ReportType,
                format!("join <relationship> {relationship:?} is not a child relationship of {parent_object} (custom ones end in __r)"),
            ));
            break;
        };
        let table = format!("{parent_table}.{relationship}");
        tables.insert(table.clone(), f.object.clone());
        parent_table = table;
        parent_object = f.object.clone();
        join = child(j, "join");
    }
    tables
}

pub(super) fn check_report_type(
    file: &SourceFile,
    root: roxmltree::Node,
    package: &Package,
    out: &mut Vec<Violation>,
) {
    if !flag(root, "deployed") {
        out.push(violation(
            file,
            Rule::ReportType,
            "<deployed>true</deployed> makes the report type usable; without it nobody sees it",
        ));
    }
    let tables = report_type_tables(file, root, package, out);
    for section in children(root, "sections") {
        for column in children(section, "columns") {
            let table = text(column, "table").unwrap_or_default();
            let field = text(column, "field").unwrap_or_default();
            match tables.get(&table) {
                None => out.push(violation(
                    file,
                    Rule::ReportType,
                    format!("column table {table:?} is not the base object or a joined relationship path"),
                )),
                Some(object) => {
                    check_field_exists(file, object, &field, package, Rule::ReportType, out)
                }
            }
        }
    }
}

pub(super) fn check_report(
    file: &SourceFile,
    folder: &str,
    root: roxmltree::Node,
    package: &Package,
    out: &mut Vec<Violation>,
) {
    if !package.report_folders.contains(&lower(folder)) {
        out.push(violation(
            file,
            Rule::Report,
            format!("the report folder {folder} has no reports/{folder}.reportFolder-meta.xml"),
        ));
    }
    let report_type = text(root, "reportType").unwrap_or_default();
    let Some(type_name) = report_type.strip_suffix("__c") else {
        // A standard report type: its columns are the org's.
        return;
    };
    if !package.report_types.contains(&lower(type_name)) {
        out.push(violation(
            file,
            Rule::Report,
            format!("<reportType> {report_type} is not a report type of the package"),
        ));
        return;
    }
    // The report type's file gives the tables.
    let columns: Vec<String> = root
        .descendants()
        .filter(|n| {
            n.is_element()
                && matches!(
                    n.tag_name().name(),
                    "field" | "column" | "groupingColumn" | "dateColumn"
                )
        })
        .filter_map(|n| n.text().map(|t| t.trim().to_string()))
        .filter(|t| t.contains('$'))
        .collect();
    for column in columns {
        let Some((table, field)) = column.split_once('$') else {
            continue;
        };
        let object = table
            .rsplit('.')
            .next()
            .map(|last| {
                if last.ends_with("__r") {
                    package
                        .fields
                        .values()
                        .find(|f| {
                            f.relationship_name
                                .as_deref()
                                .is_some_and(|r| format!("{r}__r").eq_ignore_ascii_case(last))
                        })
                        .map(|f| f.object.clone())
                        .unwrap_or_default()
                } else {
                    last.to_string()
                }
            })
            .unwrap_or_default();
        if !package.field_exists(&object, field) {
            out.push(violation(
                file,
                Rule::Report,
                format!("column {column}: {table} has no field {field}"),
            ));
        }
    }
}
