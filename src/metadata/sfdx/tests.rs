//! The embedded package and the package on disk parse to the same objects; errors name the
//! file and the element.

use super::*;
use crate::metadata::FieldType;

fn file(path: &str, text: &str) -> SourceFile {
    SourceFile {
        path: path.into(),
        text: text.into(),
    }
}

#[test]
fn embedded_schema_parses_with_all_objects() {
    let schema = embedded().unwrap();
    let names: Vec<&str> = schema.objects.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "Account_Plan__c",
            "Account_Plan_Account__c",
            "Account_Plan_Snapshot__c"
        ]
    );
    let opp: Vec<&str> = schema
        .extra_fields
        .iter()
        .filter(|(o, _)| o == "Opportunity")
        .map(|(_, f)| f.name.as_str())
        .collect();
    assert_eq!(opp, ["Account_Plan__c", "Plan_Link_Locked__c"]);
}

#[test]
fn field_types_and_properties_are_read() {
    let schema = embedded().unwrap();
    let plan = &schema.objects[0];
    let status = plan.field("Status__c").unwrap();
    assert_eq!(status.field_type, FieldType::Picklist);
    assert!(status.restricted_picklist);
    let values: Vec<&str> = status
        .picklist_values
        .iter()
        .map(|v| v.value.as_str())
        .collect();
    assert_eq!(values, ["Draft", "Active", "Closed"]);
    let account = plan.field("Account__c").unwrap();
    assert_eq!(account.reference_to, ["Account"]);
    assert_eq!(account.relationship_name.as_deref(), Some("Account__r"));
    let ratio = plan.field("Close_Ratio__c").unwrap();
    assert_eq!(
        (ratio.field_type, ratio.precision, ratio.scale),
        (FieldType::Percent, 5, 2)
    );
    let snap = &schema.objects[2];
    let key = snap.field("Snapshot_Key__c").unwrap();
    assert!(key.external_id && key.unique);
    assert_eq!(key.length, 40);
    let junction = &schema.objects[1];
    let master = junction.field("Account_Plan__c").unwrap();
    assert!(!master.nillable && !master.updateable);
}

#[test]
fn errors_name_the_file_and_element() {
    let bad = r#"<?xml version="1.0"?><CustomField xmlns="http://soap.sforce.com/2006/04/metadata">
        <fullName>Score__c</fullName><type>Number</type><label>Score</label></CustomField>"#;
    let err = parse_files(&[file("Thing__c/fields/Score__c.field-meta.xml", bad)])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("Thing__c/fields/Score__c.field-meta.xml"),
        "{err}"
    );
    assert!(err.contains("<precision>"), "{err}");

    let unknown = r#"<CustomField><fullName>X__c</fullName><type>Geolocation</type></CustomField>"#;
    let err = parse_field("A/fields/X__c.field-meta.xml", unknown)
        .unwrap_err()
        .to_string();
    assert!(err.contains("A/fields/X__c.field-meta.xml") && err.contains("Geolocation"));

    let broken = "<CustomField><fullName>";
    let err = parse_field("B/fields/Y__c.field-meta.xml", broken).unwrap_err();
    assert!(matches!(err, MetadataError::Xml { ref file, .. } if file.contains("Y__c")));
}

#[test]
fn load_dir_reads_the_project_from_disk() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/salesforce");
    let from_disk = load_dir(&root).unwrap();
    let embedded = embedded().unwrap();
    let mut a: Vec<_> = from_disk.objects.iter().map(|o| o.fields.len()).collect();
    let mut b: Vec<_> = embedded.objects.iter().map(|o| o.fields.len()).collect();
    a.sort();
    b.sort();
    assert_eq!(a, b);
    assert_eq!(from_disk.extra_fields.len(), embedded.extra_fields.len());
}

#[test]
fn every_file_of_the_package_on_disk_is_embedded() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/salesforce");
    let on_disk: Vec<String> = load_package_dir(&root)
        .unwrap()
        .into_iter()
        .map(|f| f.path)
        .collect();
    let mut embedded: Vec<String> = embedded_package().into_iter().map(|f| f.path).collect();
    embedded.sort();
    assert_eq!(
        on_disk, embedded,
        "add new package files to EMBEDDED (objects and fields) or EMBEDDED_PACKAGE (the rest)"
    );
    let schema = parse_package(&embedded_package()).unwrap();
    assert_eq!(schema.objects.len(), 3);
    assert_eq!(schema.extra_fields.len(), 2);
}

#[test]
fn the_org_layout_fragments_name_fields_of_the_package() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/salesforce/org-layouts");
    let schema = embedded().unwrap();
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
    let elements = |text: &str, tag: &str| -> Vec<String> {
        let doc = roxmltree::Document::parse(text).unwrap();
        doc.descendants()
            .filter(|n| n.has_tag_name(tag))
            .filter_map(|n| n.text().map(|t| t.trim().to_string()))
            .collect()
    };
    let account = read("Account-Account Layout.fragment.xml");
    assert_eq!(
        elements(&account, "relatedList"),
        ["Account_Plan__c.Account__c"]
    );
    let plan = &schema.objects[0];
    assert_eq!(plan.field("Account__c").unwrap().reference_to, ["Account"]);
    for field in elements(&account, "fields") {
        assert!(
            field == "NAME" || plan.field(&field).is_some(),
            "Account fragment: no plan field {field}"
        );
    }
    let opportunity = read("Opportunity-Opportunity Layout.fragment.xml");
    let fields = elements(&opportunity, "field");
    assert_eq!(fields, ["Account_Plan__c", "Plan_Link_Locked__c"]);
    for field in fields {
        assert!(schema
            .extra_fields
            .iter()
            .any(|(o, f)| o == "Opportunity" && f.name == field));
    }
}
