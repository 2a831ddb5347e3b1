//! The shipped package passes every rule; each rule refuses what a real org refuses.

use super::*;
use crate::metadata::sfdx::{embedded_package, SOURCE_ROOT};
use crate::metadata::standard::standard_objects;

fn run(files: &[SourceFile]) -> Vec<Violation> {
    check(files, &standard_objects())
}

/// The shipped package with one file's text changed by `edit` (the file must exist and the
/// edit must change it).
fn package_with(path: &str, edit: impl Fn(&str) -> String) -> Vec<SourceFile> {
    let mut files = embedded_package();
    let file = files
        .iter_mut()
        .find(|f| f.path.ends_with(path))
        .unwrap_or_else(|| panic!("no file {path}"));
    let edited = edit(&file.text);
    assert_ne!(edited, file.text, "the edit of {path} changed nothing");
    file.text = edited;
    files
}

fn package_plus(path: &str, text: &str) -> Vec<SourceFile> {
    let mut files = embedded_package();
    files.push(SourceFile {
        path: format!("{SOURCE_ROOT}{path}"),
        text: text.to_string(),
    });
    files
}

fn replace(from: &'static str, to: &'static str) -> impl Fn(&str) -> String {
    move |text: &str| text.replacen(from, to, 1)
}

#[test]
fn the_shipped_package_breaks_no_rule() {
    let violations = run(&embedded_package());
    assert!(violations.is_empty(), "{}", describe(&violations));
}

/// One row per rule: the shipped package with one change a real org refuses, the rule
/// that must fire and the file it must name.
#[test]
fn each_rule_refuses_what_a_real_org_refuses() {
    const JUNCTION: &str =
        "objects/Account_Plan_Account__c/Account_Plan_Account__c.object-meta.xml";
    const PLAN: &str = "objects/Account_Plan__c/Account_Plan__c.object-meta.xml";
    const MASTER: &str = "objects/Account_Plan_Account__c/fields/Account_Plan__c.field-meta.xml";
    const LOOKUP: &str = "objects/Account_Plan__c/fields/Account__c.field-meta.xml";
    const INTEGRATION: &str = "permissionsets/Plansync_Integration.permissionset-meta.xml";
    const USER: &str = "permissionsets/Account_Plan_User.permissionset-meta.xml";
    const LAYOUT: &str = "layouts/Account_Plan__c-Account Plan Layout.layout-meta.xml";
    const JUNCTION_LAYOUT: &str =
        "layouts/Account_Plan_Account__c-Account Plan Account Layout.layout-meta.xml";
    const REPORT_TYPE: &str = "reportTypes/Account_Plans_with_Snapshots.reportType-meta.xml";
    const REPORT: &str =
        "reports/Account_Plan_Reports/Plan_History_by_Snapshot_Date.report-meta.xml";
    const MEMBER: &str =
        "platformEventChannelMembers/ChangeEvents_Account_Plan__ChangeEvent.platformEventChannelMember-meta.xml";
    /// (what, the shipped file edited, the text replaced, its replacement, the rule, the file
    /// the violation names)
    const EDITS: &[(&str, &str, &str, &str, Rule, &str)] = &[
        ("source API version out of range", "sfdx-project.json", "\"66.0\"", "\"99.0\"", Rule::ApiVersion, "sfdx-project.json"),
        ("broken XML", PLAN, "</CustomObject>", "", Rule::WellFormed, PLAN),
        ("object without a plural label", PLAN, "<pluralLabel>Account Plans</pluralLabel>", "", Rule::ObjectDefinition, PLAN),
        ("detail object shared ReadWrite", JUNCTION, "<sharingModel>ControlledByParent<", "<sharingModel>ReadWrite<", Rule::DetailSharing, JUNCTION),
        ("AutoNumber name without a display format", PLAN, "<type>Text</type>\n    </nameField>", "<type>AutoNumber</type>\n    </nameField>", Rule::NameField, PLAN),
        ("picklist with two defaults", "objects/Account_Plan__c/fields/Status__c.field-meta.xml", "<default>false</default>", "<default>true</default>", Rule::Picklist, "Status__c.field-meta.xml"),
        ("master-detail with required", MASTER, "<type>MasterDetail</type>", "<required>true</required><type>MasterDetail</type>", Rule::MasterDetail, MASTER),
        ("master-detail with a delete constraint", MASTER, "<type>MasterDetail</type>", "<type>MasterDetail</type><deleteConstraint>SetNull</deleteConstraint>", Rule::MasterDetail, MASTER),
        ("lookup without a delete constraint", LOOKUP, "<deleteConstraint>SetNull</deleteConstraint>", "", Rule::LookupDeleteConstraint, LOOKUP),
        ("required lookup set to null on delete", LOOKUP, "<required>false</required>", "<required>true</required>", Rule::LookupDeleteConstraint, LOOKUP),
        ("child relationship name used twice", "objects/Account_Plan_Account__c/fields/Account__c.field-meta.xml", "<relationshipName>Account_Plan_Accounts<", "<relationshipName>Account_Plans<", Rule::Relationship, "Account_Plan_Account__c/fields/Account__c.field-meta.xml"),
        ("permission set naming a missing field", INTEGRATION, "Account_Plan__c.Won_Amount__c", "Account_Plan__c.Won_Amount_Typo__c", Rule::PermissionTarget, INTEGRATION),
        ("permission set with Task object permissions", INTEGRATION, "<object>Contact</object>", "<object>Task</object>", Rule::PermissionTarget, INTEGRATION),
        ("permission set granting the master-detail field", USER, "<field>Account_Plan_Account__c.Account__c</field>", "<field>Account_Plan_Account__c.Account_Plan__c</field>", Rule::PermissionOnRequiredField, USER),
        ("permission set granting a required standard field", INTEGRATION, "<field>Opportunity.Amount</field>", "<field>Opportunity.StageName</field>", Rule::PermissionOnRequiredField, INTEGRATION),
        (
            "edit without read on an object",
            INTEGRATION,
            "<allowRead>true</allowRead>\n        <modifyAllRecords>false</modifyAllRecords>\n        <object>Opportunity</object>",
            "<allowRead>false</allowRead>\n        <modifyAllRecords>false</modifyAllRecords>\n        <object>Opportunity</object>",
            Rule::PermissionDependency,
            INTEGRATION,
        ),
        ("layout naming a missing field", LAYOUT, "<field>Won_Amount__c</field>", "<field>Won_Amout__c</field>", Rule::LayoutField, LAYOUT),
        (
            "master-detail field not Required on the layout",
            JUNCTION_LAYOUT,
            "<behavior>Required</behavior>\n                <field>Account_Plan__c",
            "<behavior>Edit</behavior>\n                <field>Account_Plan__c",
            Rule::LayoutRequiredField,
            JUNCTION_LAYOUT,
        ),
        ("related list through a field that does not point here", LAYOUT, "<relatedList>Opportunity.Account_Plan__c<", "<relatedList>Opportunity.Plan_Link_Locked__c<", Rule::RelatedList, LAYOUT),
        ("compact layout assignment to a missing compact layout", PLAN, "<compactLayoutAssignment>Account_Plan_Compact<", "<compactLayoutAssignment>Plan_Compact<", Rule::CompactLayoutAssignment, PLAN),
        ("list view with an unknown scope", "listViews/My_Active_Plans.listView-meta.xml", "<filterScope>Mine<", "<filterScope>Mine2<", Rule::ListView, "My_Active_Plans.listView-meta.xml"),
        ("tab without a motif", "tabs/Account_Plan__c.tab-meta.xml", "<motif>Custom18: Form</motif>", "", Rule::Tab, "tabs/Account_Plan__c.tab-meta.xml"),
        ("application listing a missing tab", "applications/Account_Plans.app-meta.xml", "<tabs>Account_Plan__c</tabs>", "<tabs>Plan__c</tabs>", Rule::AppTabs, "Account_Plans.app-meta.xml"),
        ("report type joining through a field name instead of the relationship", REPORT_TYPE, "<relationship>Account_Plan_Snapshots__r<", "<relationship>Account_Plan_Snapshot__c<", Rule::ReportType, REPORT_TYPE),
        ("report column that is not in the report type's objects", REPORT, "Account_Plan_Snapshots__r$Won_Amount__c</field>", "Account_Plan_Snapshots__r$Won__c</field>", Rule::Report, REPORT),
        ("channel member on a channel that is not one", MEMBER, "<eventChannel>ChangeEvents<", "<eventChannel>Changes<", Rule::ChannelMember, MEMBER),
        ("channel member selecting an object that does not exist", MEMBER, "<selectedEntity>Account_Plan__ChangeEvent<", "<selectedEntity>Account_Plans__ChangeEvent<", Rule::ChannelMember, MEMBER),
        ("channel member selecting a custom object by its object name", MEMBER, "<selectedEntity>Account_Plan__ChangeEvent<", "<selectedEntity>Account_Plan__c<", Rule::ChannelMember, MEMBER),
    ];
    /// (what, a new field of Account_Plan__c, its elements, the rule); the violation names
    /// the field's file.
    const NEW_FIELDS: &[(&str, &str, &str, Rule)] = &[
        (
            "unknown field type",
            "Odd__c",
            "<type>Geolocation2</type>",
            Rule::FieldType,
        ),
        (
            "text longer than 255",
            "Long__c",
            "<type>Text</type><length>300</length>",
            Rule::TextLength,
        ),
        (
            "precision above 18",
            "Big__c",
            "<type>Currency</type><precision>20</precision><scale>2</scale>",
            Rule::Precision,
        ),
        (
            "scale above precision",
            "Tiny__c",
            "<type>Number</type><precision>3</precision><scale>4</scale>",
            Rule::Precision,
        ),
        (
            "checkbox without default",
            "Flag__c",
            "<type>Checkbox</type>",
            Rule::CheckboxDefault,
        ),
    ];
    let field = |name: &str, body: &str| {
        package_plus(
            &format!("objects/Account_Plan__c/fields/{name}.field-meta.xml"),
            &format!(
                r#"<?xml version="1.0" encoding="UTF-8"?>
<CustomField xmlns="http://soap.sforce.com/2006/04/metadata"><fullName>{name}</fullName><label>X</label>{body}</CustomField>"#
            ),
        )
    };
    let mut cases: Vec<(&str, Vec<SourceFile>, Rule, String)> = Vec::new();
    for &(name, path, from, to, rule, file) in EDITS {
        cases.push((
            name,
            package_with(path, replace(from, to)),
            rule,
            file.to_string(),
        ));
    }
    for &(name, new_field, body, rule) in NEW_FIELDS {
        let file = format!("{new_field}.field-meta.xml");
        cases.push((name, field(new_field, body), rule, file));
    }
    cases.push((
        "field of an unknown object",
        package_plus(
            "objects/Nowhere__c/fields/X__c.field-meta.xml",
            r#"<CustomField xmlns="http://soap.sforce.com/2006/04/metadata"><fullName>X__c</fullName><type>Date</type></CustomField>"#,
        ),
        Rule::FieldObject,
        "Nowhere__c/fields/X__c.field-meta.xml".to_string(),
    ));
    cases.push((
        "edit on a formula field",
        {
            let mut files = field(
                "Gap_Share__c",
                "<type>Percent</type><precision>5</precision><scale>2</scale><formula>Pipeline_Gap__c / Revenue_Target__c</formula>",
            );
            let set = files
                .iter_mut()
                .find(|f| f.path.ends_with(USER))
                .unwrap();
            set.text = set.text.replacen(
                "<fieldPermissions>",
                "<fieldPermissions><editable>true</editable><field>Account_Plan__c.Gap_Share__c</field><readable>true</readable></fieldPermissions>\n    <fieldPermissions>",
                1,
            );
            files
        },
        Rule::PermissionDependency,
        USER.to_string(),
    ));
    cases.push((
        "a standard object's layout in the package",
        package_plus(
            "layouts/Account-Account Layout.layout-meta.xml",
            r#"<Layout xmlns="http://soap.sforce.com/2006/04/metadata"></Layout>"#,
        ),
        Rule::OrgLayout,
        "Account-Account Layout.layout-meta.xml".to_string(),
    ));
    for (name, files, rule, file) in cases {
        let violations = run(&files);
        assert!(
            violations
                .iter()
                .any(|v| v.rule == rule && v.file.ends_with(&file)),
            "{name}: expected [{}] in {file}, got:\n{}",
            rule.name(),
            describe(&violations)
        );
    }
}

#[test]
fn formulas_and_user_lookups_are_not_refused_for_what_they_cannot_have() {
    let mut files = embedded_package();
    for (name, body) in [
        (
            "Health__c",
            "<type>Text</type><formula>IF(Pipeline_Gap__c > 0, 'Gap', 'Covered')</formula>",
        ),
        (
            "Has_Gap__c",
            "<type>Checkbox</type><formula>Pipeline_Gap__c > 0</formula>",
        ),
        (
            "Reviewer__c",
            "<type>Lookup</type><referenceTo>User</referenceTo><relationshipName>Reviewed_Plans</relationshipName>",
        ),
    ] {
        files.push(SourceFile {
            path: format!("{SOURCE_ROOT}objects/Account_Plan__c/fields/{name}.field-meta.xml"),
            text: format!(
                r#"<CustomField xmlns="http://soap.sforce.com/2006/04/metadata"><fullName>{name}</fullName><label>X</label>{body}</CustomField>"#
            ),
        });
    }
    let violations = run(&files);
    assert!(violations.is_empty(), "{}", describe(&violations));
}

#[test]
fn a_violation_names_the_file_the_rule_and_the_fix() {
    let files = package_with(
        "objects/Account_Plan_Account__c/Account_Plan_Account__c.object-meta.xml",
        replace(
            "<sharingModel>ControlledByParent<",
            "<sharingModel>ReadWrite<",
        ),
    );
    let violations = run(&files);
    assert_eq!(violations.len(), 1, "{}", describe(&violations));
    let line = violations[0].to_string();
    assert_eq!(
        line,
        "force-app/main/default/objects/Account_Plan_Account__c/Account_Plan_Account__c.object-meta.xml: \
         [detail-sharing] Account_Plan_Account__c has a master-detail field, so its <sharingModel> must be ControlledByParent, not ReadWrite"
    );
}
