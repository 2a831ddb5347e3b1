//! Single-record CRUD, upsert, sObject Collections, getUpdated/getDeleted and describe.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use plansync::emulator::Emulator;

use super::{error_code, keys, opportunity, start, start_with, Api, V};

#[tokio::test]
async fn create_read_update_delete() {
    let emu = start().await;
    let api = Api::login(&emu).await;
    let response = api
        .send(
            Method::POST,
            "/sobjects/Opportunity",
            Some(opportunity("Big deal")),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let (_, created) = super::read(response).await;
    assert_eq!(keys(&created), ["id", "success", "errors"]);
    let id = created["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("006") && id.len() == 18);

    let (status, full) = api.get(&format!("/sobjects/Opportunity/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(keys(&full)[0], "attributes");
    assert_eq!(
        full["attributes"]["url"],
        format!("/services/data/{V}/sobjects/Opportunity/{id}").as_str()
    );
    assert_eq!(full["Name"], "Big deal");
    assert_eq!(full["IsClosed"], false);
    assert!(full.as_object().unwrap().contains_key("SystemModstamp"));
    let (_, some) = api
        .get(&format!("/sobjects/Opportunity/{id}?fields=Name,StageName"))
        .await;
    assert_eq!(keys(&some), ["attributes", "Name", "StageName"]);
    let (status, body) = api
        .get(&format!("/sobjects/Opportunity/{id}?fields=Nope__c"))
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "INVALID_FIELD")
    );

    let (status, body) = api
        .call(
            Method::PATCH,
            &format!("/sobjects/Opportunity/{id}"),
            Some(json!({"StageName": "Closed Won"})),
        )
        .await;
    assert_eq!((status, body), (StatusCode::NO_CONTENT, Value::Null));
    let (_, after) = api
        .get(&format!("/sobjects/Opportunity/{id}?fields=IsWon"))
        .await;
    assert_eq!(after["IsWon"], true);

    let (status, _) = api
        .call(Method::DELETE, &format!("/sobjects/Opportunity/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = api
        .call(Method::DELETE, &format!("/sobjects/Opportunity/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        json!([{"message": "entity is deleted", "errorCode": "ENTITY_IS_DELETED", "fields": []}])
    );
    let (status, _) = api.get(&format!("/sobjects/Opportunity/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    emu.shutdown().await;
}

#[tokio::test]
async fn request_level_errors_match_the_crm() {
    let emu = start().await;
    let api = Api::login(&emu).await;
    let (status, body) = api
        .call(
            Method::POST,
            "/sobjects/PlayingCard__c",
            Some(json!({"Name": "Ace"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        json!([{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}])
    );
    let (status, body) = api
        .call(
            Method::POST,
            "/sobjects/Account",
            Some(json!({"FavoritePet__c": "Dog"})),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "INVALID_FIELD")
    );
    let (status, body) = api
        .call(
            Method::POST,
            "/sobjects/Opportunity",
            Some(json!({"Name": "No stage"})),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "REQUIRED_FIELD_MISSING")
    );
    assert!(body[0]["fields"].is_array());
    let (status, body) = api
        .call(
            Method::PATCH,
            "/sobjects/Account/001B000001Lp1G2IAA",
            Some(json!({"Name": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), "MALFORMED_ID");
    assert_eq!(body[0]["fields"], json!(["Id"]));
    let (status, body) = api
        .call(Method::POST, "/sobjects/Account", Some(json!([1, 2])))
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "JSON_PARSER_ERROR")
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn upsert_by_external_id_creates_then_updates() {
    let emu = start().await;
    let api = Api::login(&emu).await;
    let path = "/sobjects/Account_Plan_Snapshot__c/Snapshot_Key__c/plan1:2026-01-31";
    let (status, body) = api
        .call(Method::PATCH, path, Some(json!({"Name": "snap"})))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(keys(&body), ["id", "success", "errors", "created"]);
    assert_eq!(body["created"], true);
    let (status, again) = api
        .call(Method::PATCH, path, Some(json!({"Name": "snap 2"})))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["created"], false);
    assert_eq!(again["id"], body["id"]);
    let (status, body) = api
        .call(
            Method::PATCH,
            "/sobjects/Account_Plan_Snapshot__c/Nope__c/1",
            Some(json!({"Name": "x"})),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::NOT_FOUND, "NOT_FOUND")
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn collections_report_per_record_results_in_order() {
    let emu = start().await;
    let api = Api::login(&emu).await;
    let records = json!([
        {"attributes": {"type": "Account"}, "Name": "A"},
        {"attributes": {"type": "Opportunity"}, "Name": "missing stage"},
        {"attributes": {"type": "Account"}, "Name": "B"},
    ]);
    let (status, body) = api
        .call(
            Method::POST,
            "/composite/sobjects",
            Some(json!({"allOrNone": false, "records": records})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body[0]["success"], true);
    assert_eq!(keys(&body[0]), ["id", "success", "errors"]);
    assert_eq!(body[1]["success"], false);
    assert!(body[1].get("id").is_none());
    assert_eq!(
        keys(&body[1]["errors"][0]),
        ["statusCode", "message", "fields"]
    );
    assert_eq!(body[1]["errors"][0]["statusCode"], "REQUIRED_FIELD_MISSING");
    let a = body[0]["id"].as_str().unwrap().to_string();
    let b = body[2]["id"].as_str().unwrap().to_string();

    // allOrNone: nothing persists; the others say ALL_OR_NONE_OPERATION_ROLLED_BACK.
    let before = api.query("SELECT COUNT() FROM Account").await.1["totalSize"].clone();
    let (_, body) = api
        .call(
            Method::POST,
            "/composite/sobjects",
            Some(json!({"allOrNone": true, "records": records})),
        )
        .await;
    assert_eq!(body[0]["success"], false);
    assert_eq!(
        body[0]["errors"][0]["statusCode"],
        "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    );
    assert_eq!(body[1]["errors"][0]["statusCode"], "REQUIRED_FIELD_MISSING");
    assert_eq!(
        api.query("SELECT COUNT() FROM Account").await.1["totalSize"],
        before
    );

    let update = json!({"allOrNone": false, "records": [
        {"attributes": {"type": "Account"}, "id": a, "Name": "A2"},
        {"attributes": {"type": "Account"}, "id": b, "Nope__c": 1},
    ]});
    let (status, body) = api
        .call(Method::PATCH, "/composite/sobjects", Some(update))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body[0], json!({"id": a, "success": true, "errors": []}));
    assert_eq!(body[1]["success"], false);
    assert_eq!(body[1]["id"], b.as_str());

    let upsert = json!({"allOrNone": false, "records": [
        {"attributes": {"type": "Account_Plan_Snapshot__c"}, "Snapshot_Key__c": "k1", "Name": "one"},
    ]});
    let path = "/composite/sobjects/Account_Plan_Snapshot__c/Snapshot_Key__c";
    let (_, body) = api.call(Method::PATCH, path, Some(upsert.clone())).await;
    assert_eq!(body[0]["created"], true, "{body}");
    let (_, body) = api.call(Method::PATCH, path, Some(upsert)).await;
    assert_eq!(body[0]["created"], false, "{body}");

    let (status, body) = api
        .call(
            Method::DELETE,
            &format!("/composite/sobjects?ids={a},{b}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body[0]["success"], true);
    assert_eq!(body[1]["success"], true);
    let (_, body) = api
        .call(
            Method::DELETE,
            &format!("/composite/sobjects?ids={a}&allOrNone=true"),
            None,
        )
        .await;
    assert_eq!(body[0]["errors"][0]["statusCode"], "ENTITY_IS_DELETED");

    let many: Vec<Value> = (0..201)
        .map(|i| json!({"attributes": {"type": "Account"}, "Name": format!("n{i}")}))
        .collect();
    let (status, body) = api
        .call(
            Method::POST,
            "/composite/sobjects",
            Some(json!({"records": many})),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "EXCEEDED_ID_LIMIT")
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn updated_and_deleted_windows() {
    let emu = start().await;
    let api = Api::login(&emu).await;
    let start_at = chrono::Utc::now() - chrono::Duration::minutes(2);
    let kept = api.create("Account", json!({"Name": "kept"})).await;
    let gone = api.create("Account", json!({"Name": "gone"})).await;
    api.call(Method::DELETE, &format!("/sobjects/Account/{gone}"), None)
        .await;
    let end_at = chrono::Utc::now() + chrono::Duration::minutes(2);
    let fmt = |t: chrono::DateTime<chrono::Utc>| {
        super::encode(&t.format("%Y-%m-%dT%H:%M:%S+00:00").to_string())
    };
    let window = format!("?start={}&end={}", fmt(start_at), fmt(end_at));
    let (status, body) = api
        .get(&format!("/sobjects/Account/updated/{window}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["ids"], json!([kept]));
    assert!(body["latestDateCovered"]
        .as_str()
        .unwrap()
        .ends_with(":00.000+0000"));
    let (_, body) = api
        .get(&format!("/sobjects/Account/deleted/{window}"))
        .await;
    assert_eq!(
        keys(&body),
        [
            "deletedRecords",
            "earliestDateAvailable",
            "latestDateCovered"
        ]
    );
    assert_eq!(body["deletedRecords"][0]["id"], gone.as_str());
    let backwards = format!("?start={}&end={}", fmt(end_at), fmt(start_at));
    let (status, body) = api
        .get(&format!("/sobjects/Account/updated/{backwards}"))
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "INVALID_REPLICATION_DATE")
    );
    let old = format!(
        "?start={}&end={}",
        fmt(start_at - chrono::Duration::days(40)),
        fmt(end_at)
    );
    // getUpdated refuses a start past its 30 days ...
    let (status, body) = api.get(&format!("/sobjects/Account/updated{old}")).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "INVALID_REPLICATION_DATE")
    );
    // ... getDeleted answers, with an earliestDateAvailable after the start: the client must
    // then resynchronise in full (wire doc §4.2).
    let (status, body) = api.get(&format!("/sobjects/Account/deleted{old}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let earliest = body["earliestDateAvailable"].as_str().unwrap();
    let earliest = chrono::DateTime::parse_from_str(earliest, "%Y-%m-%dT%H:%M:%S%.3f%z").unwrap();
    assert!(earliest > start_at - chrono::Duration::days(40));
    emu.shutdown().await;
}

#[tokio::test]
async fn object_list_and_describe() {
    let emu = start().await;
    let api = Api::login(&emu).await;
    let (status, body) = api.get("/sobjects").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["encoding"], "UTF-8");
    assert_eq!(body["maxBatchSize"], 200);
    let opp = body["sobjects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "Opportunity")
        .unwrap();
    assert_eq!(opp["keyPrefix"], "006");
    for key in [
        "label",
        "custom",
        "createable",
        "updateable",
        "deletable",
        "queryable",
        "urls",
    ] {
        assert!(opp.get(key).is_some(), "{key}");
    }
    let (status, body) = api.get("/sobjects/Opportunity/describe").await;
    assert_eq!(status, StatusCode::OK);
    let stage = body["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "StageName")
        .unwrap();
    assert_eq!(stage["type"], "picklist");
    assert!(!stage["picklistValues"].as_array().unwrap().is_empty());
    assert_eq!(
        keys(&stage["picklistValues"][0])[..4],
        ["value", "label", "active", "defaultValue"]
    );
    for key in [
        "name",
        "label",
        "type",
        "length",
        "precision",
        "scale",
        "nillable",
        "createable",
        "updateable",
        "defaultedOnCreate",
        "externalId",
        "unique",
        "calculated",
        "custom",
        "referenceTo",
        "relationshipName",
        "picklistValues",
        "restrictedPicklist",
    ] {
        assert!(stage.get(key).is_some(), "{key}");
    }
    let (status, _) = api.get("/sobjects/Nope__c/describe/").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    emu.shutdown().await;
}

/// The standard fields every org has and admin scripts use: described as a new org describes
/// them, writable, queryable, and checked for length like any other field.
#[tokio::test]
async fn standard_fields_of_a_new_org_are_described_written_and_queried() {
    let emu = start().await;
    let api = Api::login(&emu).await;
    let field = |describe: &Value, name: &str| -> Value {
        describe["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .unwrap_or_else(|| panic!("describe has no {name}"))
            .clone()
    };
    // (object, field, type, length, digits)
    let expected = [
        ("Account", "Description", "textarea", 32000, 0),
        ("Account", "Website", "url", 255, 0),
        ("Account", "Phone", "phone", 40, 0),
        ("Account", "BillingStreet", "textarea", 255, 0),
        ("Account", "BillingCity", "string", 40, 0),
        ("Account", "BillingState", "string", 80, 0),
        ("Account", "BillingPostalCode", "string", 20, 0),
        ("Account", "BillingCountry", "string", 80, 0),
        ("Account", "NumberOfEmployees", "int", 0, 8),
        ("Contact", "Phone", "phone", 40, 0),
        ("Contact", "MailingCountry", "string", 80, 0),
        ("Opportunity", "Description", "textarea", 32000, 0),
        ("Opportunity", "Type", "picklist", 255, 0),
        ("Opportunity", "LeadSource", "picklist", 255, 0),
        ("Opportunity", "NextStep", "string", 255, 0),
    ];
    for (object, name, ty, length, digits) in expected {
        let (status, describe) = api.get(&format!("/sobjects/{object}/describe")).await;
        assert_eq!(status, StatusCode::OK);
        let f = field(&describe, name);
        assert_eq!(f["type"], ty, "{object}.{name}");
        assert_eq!(f["length"], length, "{object}.{name}");
        assert_eq!(f["digits"], digits, "{object}.{name}");
        assert_eq!(f["custom"], false, "{object}.{name}");
        assert_eq!(f["createable"], true, "{object}.{name}");
        assert_eq!(f["updateable"], true, "{object}.{name}");
    }
    let (_, describe) = api.get("/sobjects/Opportunity/describe").await;
    let type_field = field(&describe, "Type");
    let types: Vec<&str> = type_field["picklistValues"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["value"].as_str())
        .collect();
    assert!(types.contains(&"New Customer"), "{types:?}");

    let account = api
        .create(
            "Account",
            json!({"Name": "Globex", "Description": "Long-standing customer.\nRenewal in Q3.",
                   "Website": "https://globex.example", "Phone": "+1 555 0100",
                   "BillingStreet": "1 Main St\nSuite 5", "BillingCity": "Springfield",
                   "BillingState": "OR", "BillingPostalCode": "97477",
                   "BillingCountry": "United States", "NumberOfEmployees": 1200}),
        )
        .await;
    api.create(
        "Contact",
        json!({"LastName": "Lee", "AccountId": account, "Phone": "+1 555 0101",
               "MailingCountry": "Canada"}),
    )
    .await;
    api.create(
        "Opportunity",
        json!({"Name": "Globex renewal", "AccountId": account, "CloseDate": "2026-09-30",
               "StageName": "Prospecting", "Description": "Three-year term",
               "Type": "Existing Customer - Upgrade", "LeadSource": "Partner Referral",
               "NextStep": "Send the quote"}),
    )
    .await;
    let (status, body) = api
        .query("SELECT Website, Phone, BillingCity, BillingPostalCode, NumberOfEmployees, Description FROM Account WHERE BillingCountry = 'United States'")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let row = &body["records"][0];
    assert_eq!(row["Website"], "https://globex.example");
    assert_eq!(row["Phone"], "+1 555 0100");
    assert_eq!(row["BillingCity"], "Springfield");
    assert_eq!(row["BillingPostalCode"], "97477");
    assert_eq!(row["NumberOfEmployees"], 1200);
    assert_eq!(
        row["Description"],
        "Long-standing customer.\nRenewal in Q3."
    );
    let (_, body) = api
        .query("SELECT Phone, MailingCountry, Account.BillingState FROM Contact")
        .await;
    assert_eq!(body["records"][0]["MailingCountry"], "Canada", "{body}");
    assert_eq!(
        body["records"][0]["Account"]["BillingState"], "OR",
        "{body}"
    );
    let (_, body) = api
        .query("SELECT Type, LeadSource, NextStep, Description FROM Opportunity WHERE LeadSource = 'Partner Referral'")
        .await;
    let row = &body["records"][0];
    assert_eq!(row["Type"], "Existing Customer - Upgrade", "{body}");
    assert_eq!(row["NextStep"], "Send the quote");
    assert_eq!(row["Description"], "Three-year term");

    // Their sizes hold: a 41-character city and a 9-digit head count are refused.
    let (status, body) = api
        .call(
            Method::POST,
            "/sobjects/Account",
            Some(json!({"Name": "Initech", "BillingCity": "x".repeat(41)})),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "STRING_TOO_LONG")
    );
    let (status, body) = api
        .call(
            Method::POST,
            "/sobjects/Account",
            Some(json!({"Name": "Initech", "NumberOfEmployees": 123_456_789})),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "NUMBER_OUTSIDE_VALID_RANGE")
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn currency_records_keep_the_crms_rules() {
    let emu = start_with(Emulator::builder().multi_currency("USD")).await;
    let api = Api::login(&emu).await;

    // Dated rates chain as in a real org: the first period from the beginning of the
    // calendar, NextStartDate derived, the last one running to the end of time.
    let first = api
        .create(
            "DatedConversionRate",
            json!({"IsoCode": "CHF", "ConversionRate": 0.91, "StartDate": "0001-01-01"}),
        )
        .await;
    let second = api
        .create(
            "DatedConversionRate",
            json!({"IsoCode": "CHF", "ConversionRate": 0.88, "StartDate": "2026-01-01"}),
        )
        .await;
    let (_, rows) = api
        .query("SELECT Id, StartDate, NextStartDate FROM DatedConversionRate WHERE IsoCode = 'CHF' ORDER BY StartDate")
        .await;
    let periods: Vec<(&str, &str, &str)> = rows["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["Id"].as_str().unwrap(),
                r["StartDate"].as_str().unwrap(),
                r["NextStartDate"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        periods,
        [
            (first.as_str(), "0001-01-01", "2026-01-01"),
            (second.as_str(), "2026-01-01", "9999-12-31"),
        ]
    );

    // A second period of CHF starting on the same day: DUPLICATE_VALUE.
    let (status, body) = api
        .call(
            Method::POST,
            "/sobjects/DatedConversionRate",
            Some(json!({"IsoCode": "CHF", "ConversionRate": 0.5, "StartDate": "2026-01-01"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(error_code(&body), "DUPLICATE_VALUE", "{body}");
    assert!(
        body[0]["message"].as_str().unwrap().contains(&second),
        "names the record it duplicates: {body}"
    );
    // Moving a period onto another's start is the same duplicate; another currency's day is not.
    let (status, body) = api
        .call(
            Method::PATCH,
            &format!("/sobjects/DatedConversionRate/{first}"),
            Some(json!({"StartDate": "2026-01-01"})),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "DUPLICATE_VALUE")
    );
    api.create(
        "DatedConversionRate",
        json!({"IsoCode": "EUR", "ConversionRate": 0.93, "StartDate": "2026-01-01"}),
    )
    .await;

    // A rate of zero or less: FIELD_INTEGRITY_EXCEPTION on ConversionRate, on either object,
    // and per record in sObject Collections.
    for (method, path, body) in [
        (
            Method::POST,
            "/sobjects/DatedConversionRate".to_string(),
            json!({"IsoCode": "CHF", "ConversionRate": 0, "StartDate": "2026-04-01"}),
        ),
        (
            Method::PATCH,
            format!("/sobjects/DatedConversionRate/{second}"),
            json!({"ConversionRate": -1.5}),
        ),
    ] {
        let (status, body) = api.call(method, &path, Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(error_code(&body), "FIELD_INTEGRITY_EXCEPTION", "{body}");
        assert_eq!(body[0]["fields"], json!(["ConversionRate"]), "{body}");
    }
    let (_, types) = api
        .query("SELECT Id, IsoCode, IsCorporate FROM CurrencyType")
        .await;
    let types = types["records"].as_array().unwrap().clone();
    let id_of = |code: &str| {
        types.iter().find(|t| t["IsoCode"] == code).unwrap()["Id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (status, results) = api
        .call(
            Method::PATCH,
            "/composite/sobjects",
            Some(json!({"allOrNone": false, "records": [
                {"attributes": {"type": "CurrencyType"}, "id": id_of("EUR"), "ConversionRate": 0},
                {"attributes": {"type": "CurrencyType"}, "id": id_of("GBP"), "ConversionRate": 0.8},
            ]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{results}");
    assert_eq!(results[0]["success"], false, "{results}");
    assert_eq!(
        results[0]["errors"][0]["statusCode"],
        "FIELD_INTEGRITY_EXCEPTION"
    );
    assert_eq!(results[1]["success"], true, "{results}");

    // A second corporate currency: FIELD_INTEGRITY_EXCEPTION on IsCorporate; USD stays the one.
    let (status, body) = api
        .call(
            Method::PATCH,
            &format!("/sobjects/CurrencyType/{}", id_of("EUR")),
            Some(json!({"IsCorporate": true})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(error_code(&body), "FIELD_INTEGRITY_EXCEPTION", "{body}");
    assert_eq!(body[0]["fields"], json!(["IsCorporate"]));
    assert!(
        body[0]["message"].as_str().unwrap().contains("USD"),
        "{body}"
    );
    let (_, corporate) = api
        .query("SELECT IsoCode FROM CurrencyType WHERE IsCorporate = true")
        .await;
    assert_eq!(corporate["totalSize"], 1);
    assert_eq!(corporate["records"][0]["IsoCode"], "USD");
    emu.shutdown().await;
}

#[tokio::test]
async fn a_record_created_without_a_currency_gets_the_corporate_one() {
    // A EUR org: records created without CurrencyIsoCode are EUR records (the user's
    // currency), and a currency sent is stored as sent.
    let emu = plansync::emulator::Emulator::builder()
        .seed("empty")
        .multi_currency("EUR")
        .start()
        .await
        .unwrap();
    let api = Api::login(&emu).await;
    for (object, body) in [
        ("Account", json!({"Name": "Acme"})),
        (
            "Account_Plan_Snapshot__c",
            json!({"Snapshot_Key__c": "k1", "Snapshot_Date__c": "2026-08-31"}),
        ),
        (
            "Account_Plan_Snapshot__c",
            json!({"Snapshot_Key__c": "k2", "CurrencyIsoCode": "JPY"}),
        ),
    ] {
        let response = api
            .send(
                Method::POST,
                &format!("/sobjects/{object}"),
                Some(body.clone()),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED, "{object} {body}");
        let (_, created) = super::read(response).await;
        let id = created["id"].as_str().unwrap();
        let (_, record) = api.get(&format!("/sobjects/{object}/{id}")).await;
        let want = body.get("CurrencyIsoCode").cloned().unwrap_or(json!("EUR"));
        assert_eq!(record["CurrencyIsoCode"], want, "{object} {body}: {record}");
    }
    emu.shutdown().await;
}
