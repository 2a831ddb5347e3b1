//! Rules on what users see: page layouts, compact layouts, list views and tabs.

use std::collections::BTreeMap;

use super::{children, flag, lower, stem, text, texts, violation, Package, Rule, Violation};
use crate::metadata::sfdx::SourceFile;

pub(super) fn check_field_exists(
    file: &SourceFile,
    object: &str,
    field: &str,
    package: &Package,
    rule: Rule,
    out: &mut Vec<Violation>,
) {
    if !package.field_exists(object, field) {
        out.push(violation(
            file,
            rule,
            format!("field {object}.{field} does not exist"),
        ));
    }
}

/// Column names such as `NAME`, `CORE.USERS.ALIAS` or `OPPORTUNITY.AMOUNT`: the CRM's own
/// column tokens, in capitals.
fn is_column_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c == '_' || c == '.')
        && !name.ends_with("__C")
}

/// A column of a list view or related list: the CRM's own column tokens pass, any other name
/// must be a field of `object`.
fn check_column(
    file: &SourceFile,
    object: &str,
    column: &str,
    package: &Package,
    out: &mut Vec<Violation>,
) {
    if !is_column_token(column) {
        check_field_exists(file, object, column, package, Rule::LayoutField, out);
    }
}

pub(super) fn check_list_view(
    file: &SourceFile,
    object: &str,
    root: roxmltree::Node,
    package: &Package,
    out: &mut Vec<Violation>,
) {
    const SCOPES: &[&str] = &[
        "Everything",
        "Mine",
        "MineAndMyGroups",
        "Queue",
        "Delegated",
        "MyTerritory",
        "MyTeamTerritory",
        "Team",
    ];
    match text(root, "filterScope").as_deref() {
        Some(s) if SCOPES.contains(&s) => {}
        other => out.push(violation(
            file,
            Rule::ListView,
            format!(
                "<filterScope> {other:?} is not one of {}",
                SCOPES.join(", ")
            ),
        )),
    }
    for column in texts(root, "columns") {
        check_column(file, object, &column, package, out);
    }
    for filter in children(root, "filters") {
        let field = text(filter, "field").unwrap_or_default();
        check_column(file, object, &field, package, out);
    }
}

pub(super) fn check_layout(
    file: &SourceFile,
    root: roxmltree::Node,
    package: &Package,
    out: &mut Vec<Violation>,
) {
    let name = stem(&file.path);
    let Some((object, _)) = name.split_once('-') else {
        out.push(violation(
            file,
            Rule::LayoutField,
            "a layout file is named <Object>-<Layout Name>.layout-meta.xml",
        ));
        return;
    };
    if !package.objects.contains_key(&lower(object)) {
        out.push(violation(
            file,
            Rule::OrgLayout,
            format!(
                "{object} is not an object of the package: its layouts belong to the org, and deploying this one would replace the admin's; ship the change as a documented step instead"
            ),
        ));
        return;
    }
    let mut shown: BTreeMap<String, String> = BTreeMap::new();
    for item in root.descendants().filter(|n| n.has_tag_name("layoutItems")) {
        let Some(field) = text(item, "field") else {
            continue;
        };
        check_field_exists(file, object, &field, package, Rule::LayoutField, out);
        shown.insert(lower(&field), text(item, "behavior").unwrap_or_default());
    }
    for f in package
        .fields
        .values()
        .filter(|f| f.object.eq_ignore_ascii_case(object) && (f.ty == "MasterDetail" || f.required))
    {
        match shown.get(&lower(&f.name)).map(String::as_str) {
            Some("Required") => {}
            other => out.push(violation(
                file,
                Rule::LayoutRequiredField,
                format!(
                    "{} is required on every record: the layout must show it with <behavior>Required</behavior> (found {other:?})",
                    f.name
                ),
            )),
        }
    }
    for related in children(root, "relatedLists") {
        let name = text(related, "relatedList").unwrap_or_default();
        let Some((child_object, field)) = name.split_once('.') else {
            continue;
        };
        let points_here = package.custom_field(child_object, field).is_some_and(|f| {
            matches!(f.ty.as_str(), "Lookup" | "MasterDetail")
                && f.reference_to
                    .as_deref()
                    .is_some_and(|t| t.eq_ignore_ascii_case(object))
        });
        if !points_here {
            out.push(violation(
                file,
                Rule::RelatedList,
                format!("related list {name}: {child_object}.{field} is not a lookup to {object}"),
            ));
            continue;
        }
        for column in texts(related, "fields") {
            check_column(file, child_object, &column, package, out);
        }
    }
}

pub(super) fn check_tab(
    file: &SourceFile,
    root: roxmltree::Node,
    package: &Package,
    out: &mut Vec<Violation>,
) {
    let name = stem(&file.path);
    if flag(root, "customObject") && !package.objects.contains_key(&lower(name)) {
        out.push(violation(
            file,
            Rule::Tab,
            format!("a custom object tab is named after its object, and {name} is not an object of the package"),
        ));
    }
    if text(root, "motif").is_none() {
        out.push(violation(
            file,
            Rule::Tab,
            "a tab needs a <motif> (its icon), such as Custom18: Form",
        ));
    }
}
