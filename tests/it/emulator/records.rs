//! Single-record CRUD, upsert, sObject Collections, getUpdated/getDeleted and describe.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::{error_code, keys, opportunity, start, Api, V};

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
