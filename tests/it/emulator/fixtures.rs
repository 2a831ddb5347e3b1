//! The emulator's answers have the shapes (status, keys, JSON types, error envelopes) of the
//! recorded Salesforce responses in `tests/fixtures/salesforce-recorded/`.

use std::path::PathBuf;

use reqwest::{Method, StatusCode};
use serde_json::{json, Map, Value};

use super::{accounts, start, Api, V};

/// The recorded status and body of a fixture.
fn recorded(name: &str) -> (StatusCode, Value) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/salesforce-recorded")
        .join(name);
    let mapping: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let status =
        StatusCode::from_u16(mapping["response"]["status"].as_u64().unwrap() as u16).unwrap();
    let body = match mapping["response"]["body"].as_str() {
        Some(text) if !text.is_empty() => serde_json::from_str(text).unwrap(),
        _ => Value::Null,
    };
    (status, body)
}

/// The shape of a JSON value: objects keep their keys (sorted) with the shapes of their
/// values, arrays the shape of their first element, scalars their type name.
fn shape(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let mut out = Map::new();
            for k in keys {
                out.insert(k.clone(), shape(&map[k]));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.first().map(shape).into_iter().collect()),
        Value::String(_) => json!("string"),
        Value::Number(_) => json!("number"),
        Value::Bool(_) => json!("boolean"),
        Value::Null => json!("null"),
    }
}

/// A query page's shape with its records reduced to their `attributes`, since the recorded
/// queries select fields of objects this org does not have.
fn page_shape(value: &Value) -> Value {
    let mut page = value.clone();
    if let Some(records) = page.get_mut("records").and_then(Value::as_array_mut) {
        for r in records.iter_mut() {
            *r = json!({"attributes": r["attributes"].clone()});
        }
    }
    shape(&page)
}

fn assert_same_shape(fixture: &str, got: (StatusCode, Value)) {
    let (status, body) = recorded(fixture);
    assert_eq!(got.0, status, "{fixture}: status; got body {}", got.1);
    assert_eq!(
        shape(&got.1),
        shape(&body),
        "{fixture}: shape; got {}",
        got.1
    );
}

#[tokio::test]
async fn create_update_delete_answers_have_the_recorded_shapes() {
    let emu = start().await;
    let api = Api::login(&emu).await;
    assert_same_shape(
        "create.json",
        api.call(
            Method::POST,
            "/sobjects/Account",
            Some(json!({"Name": "Acme"})),
        )
        .await,
    );
    assert_same_shape(
        "create-invalid-field.json",
        api.call(
            Method::POST,
            "/sobjects/Account",
            Some(json!({"FavoritePet__c": "Dog"})),
        )
        .await,
    );
    assert_same_shape(
        "create-required-field-missing.json",
        api.call(
            Method::POST,
            "/sobjects/Opportunity",
            Some(json!({"Name": "Falcon 9", "StageName": "Prospecting"})),
        )
        .await,
    );
    let account = api.create("Account", json!({"Name": "Planned"})).await;
    assert_same_shape(
        "create-invalid-picklist-value.json",
        api.call(
            Method::POST,
            "/sobjects/Account_Plan__c",
            Some(
                json!({"Name": "FY26", "Account__c": account, "Status__c": "Terrible",
                        "Period_Start__c": "2026-01-01", "Period_End__c": "2026-12-31"}),
            ),
        )
        .await,
    );
    assert_same_shape(
        "create-unknown-object.json",
        api.call(
            Method::POST,
            "/sobjects/PlayingCard__c",
            Some(json!({"Name": "Ace of Spades"})),
        )
        .await,
    );
    let id = api.create("Account", json!({"Name": "Movie"})).await;
    assert_same_shape(
        "update.json",
        api.call(
            Method::PATCH,
            &format!("/sobjects/Account/{id}"),
            Some(json!({"Industry": "Retail"})),
        )
        .await,
    );
    assert_same_shape(
        "update-invalid-field.json",
        api.call(
            Method::PATCH,
            &format!("/sobjects/Account/{id}"),
            Some(json!({"Color__c": "Red"})),
        )
        .await,
    );
    // The same Id with a wrong checksum, as recorded.
    let mut bad = id.clone();
    let last = if bad.ends_with('Z') { "Y" } else { "Z" };
    bad.replace_range(17.., last);
    assert_same_shape(
        "update-malformed-id.json",
        api.call(
            Method::PATCH,
            &format!("/sobjects/Account/{bad}"),
            Some(json!({"Industry": "Energy"})),
        )
        .await,
    );
    assert_same_shape(
        "delete.json",
        api.call(Method::DELETE, &format!("/sobjects/Account/{id}"), None)
            .await,
    );
    assert_same_shape(
        "delete-already-deleted.json",
        api.call(Method::DELETE, &format!("/sobjects/Account/{id}"), None)
            .await,
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn query_answers_have_the_recorded_shapes() {
    let emu = start().await;
    accounts(&emu, 4001);
    let api = Api::login(&emu).await;
    let got = api.query("SELECT Name FROM Account LIMIT 5").await;
    assert_same_shape("query.json", got);
    assert_same_shape(
        "query-malformed-soql.json",
        api.query("SELEKT Name FROM Account").await,
    );
    assert_same_shape(
        "query-unknown-column.json",
        api.query("SELECT Bacon__c FROM Account LIMIT 2").await,
    );
    let (status, page) = api.query("SELECT Id FROM Account").await;
    let (rec_status, recorded_page) = recorded("query-with-next-records-url.json");
    assert_eq!(status, rec_status);
    assert_eq!(page_shape(&page), page_shape(&recorded_page));
    let next = page["nextRecordsUrl"].as_str().unwrap();
    let recorded_next = recorded_page["nextRecordsUrl"].as_str().unwrap();
    let pattern = |url: &str| {
        let (prefix, locator) = url.rsplit_once('/').unwrap();
        let (id, offset) = locator.split_once('-').unwrap();
        (
            prefix.replace("v53.0", V),
            id[..3].to_string(),
            id.len(),
            offset.to_string(),
        )
    };
    assert_eq!(pattern(next), pattern(recorded_next));
    let (status, last) = api.get(next).await;
    let (rec_status, recorded_last) = recorded("query-with-next-records-url-2.json");
    assert_eq!(status, rec_status);
    let mut keys_got: Vec<_> = last.as_object().unwrap().keys().collect();
    let mut keys_rec: Vec<_> = recorded_last.as_object().unwrap().keys().collect();
    keys_got.sort();
    keys_rec.sort();
    assert_eq!(keys_got, keys_rec);
    emu.shutdown().await;
}
