//! The ingest CSV and the parsing of a job's result files.

use std::collections::BTreeSet;

use serde_json::{json, Map, Value};

use super::*;

fn write(id: Option<&str>, fields: Value) -> RecordWrite {
    let fields: Map<String, Value> = fields.as_object().cloned().unwrap_or_default();
    RecordWrite {
        object: "Opportunity".into(),
        id: id.map(str::to_string),
        fields,
    }
}

fn columns(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| n.to_string()).collect()
}

#[test]
fn an_update_csv_quotes_values_sets_nulls_and_leaves_unwritten_fields_empty() {
    let mut csv = IngestCsv::new(
        "Opportunity",
        IngestOperation::Update,
        &columns(&["Account_Plan__c", "Amount", "Name", "IsWon"]),
    );
    csv.push(&write(
        Some("006A"),
        json!({"Account_Plan__c": null, "Amount": 12.5}),
    ))
    .unwrap();
    csv.push(&write(
        Some("006B"),
        json!({"Name": "Say \"hi\", then\nbye", "IsWon": true, "Account_Plan__c": ""}),
    ))
    .unwrap();
    assert_eq!(
        csv.text,
        "Id,Account_Plan__c,Amount,IsWon,Name\n\
         \"006A\",#N/A,\"12.5\",,\n\
         \"006B\",#N/A,,\"true\",\"Say \"\"hi\"\", then\nbye\"\n"
    );
    assert_eq!(
        (csv.len(), csv.keys.clone()),
        (2, vec!["006A".to_string(), "006B".to_string()])
    );
    // The CSV reads back as what was written.
    let mut cursor = CsvCursor::new(&csv.text, ',');
    cursor.next_row().unwrap();
    cursor.next_row().unwrap();
    let second = cursor.next_row().unwrap().unwrap();
    assert_eq!(second[4].as_deref(), Some("Say \"hi\", then\nbye"));
    assert_eq!(second[2], None, "Amount is not written: left as it is");
}

#[test]
fn a_record_outside_the_header_or_without_its_key_is_not_taken() {
    let mut csv = IngestCsv::new(
        "Opportunity",
        IngestOperation::Update,
        &columns(&["Amount"]),
    );
    assert!(csv.fits(&write(Some("006A"), json!({"Amount": 1, "Id": "006A"}))));
    assert!(!csv.fits(&write(Some("006A"), json!({"StageName": "x"}))));
    let err = csv.push(&write(None, json!({"Amount": 1}))).unwrap_err();
    assert!(err.to_string().contains("no Id"), "{err}");
    let err = csv
        .push(&write(Some("006A"), json!({"Amount": [1]})))
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("Amount of Opportunity 006A is a list"),
        "{err}"
    );
    assert!(csv.is_empty());

    let upsert = IngestOperation::Upsert {
        external_id_field: "Key__c".into(),
    };
    let mut csv = IngestCsv::new("Snapshot__c", upsert, &columns(&["Key__c", "Won__c"]));
    csv.push(&write(
        None,
        json!({"Key__c": "a01:2026-12-01", "Won__c": 5}),
    ))
    .unwrap();
    assert_eq!(csv.text, "Key__c,Won__c\n\"a01:2026-12-01\",\"5\"\n");
}

#[test]
fn result_files_give_each_records_outcome_by_its_key() {
    let ok = "\"sf__Id\",\"sf__Created\",Id,Amount\n\"006A\",\"false\",\"006A\",\"1\"\n";
    let rows = result_rows(ok, "successfulResults", "Id").unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].0, "006A");
    assert!(rows[0].1.success);
    assert_eq!(rows[0].1.created, Some(false));

    let failed = "\"sf__Id\",\"sf__Error\",Id,Amount\n\
        \"\",\"FIELD_CUSTOM_VALIDATION_EXCEPTION:Amount: must be positive:Amount StageName --\",\"006B\",\"-1\"\n\
        \"006C\",\"ENTITY_IS_DELETED:entity is deleted:--\",\"006C\",\"2\"\n";
    let rows = result_rows(failed, "failedResults", "Id").unwrap();
    let (key, result) = &rows[0];
    assert_eq!(key, "006B");
    assert!(!result.success);
    assert_eq!(
        result.errors[0].status_code,
        "FIELD_CUSTOM_VALIDATION_EXCEPTION"
    );
    assert_eq!(result.errors[0].message, "Amount: must be positive");
    assert_eq!(result.errors[0].fields, ["Amount", "StageName"]);
    assert_eq!(rows[1].1.errors[0].status_code, "ENTITY_IS_DELETED");
    assert!(rows[1].1.errors[0].fields.is_empty());
    assert_eq!(rows[1].1.id.as_deref(), Some("006C"));

    let unprocessed = "Id,Amount\n\"006D\",\"3\"\n";
    let rows = result_rows(unprocessed, "unprocessedrecords", "Id").unwrap();
    assert_eq!(rows[0].1.errors[0].status_code, "NOT_PROCESSED");

    let err = result_rows("\"sf__Id\",Amount\n", "successfulResults", "Id").unwrap_err();
    assert!(err.contains("no Id column"), "{err}");
}
