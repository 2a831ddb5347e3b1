//! query and queryAll: paging by locator, batch sizes, totalSize, deleted rows, COUNT(),
//! errors, and the locator limit.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::{accounts, encode, error_code, keys, start, Api, V};

fn ids(page: &Value) -> Vec<String> {
    page["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["Id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn pages_follow_next_records_url_and_repeat_identically() {
    let emu = start().await;
    let mut created = accounts(&emu, 450);
    created.sort();
    let api = Api::login(&emu).await;
    let url = format!("/query/?q={}", encode("SELECT Id, Name FROM Account"));
    let response = api
        .http
        .get(api.url(&url))
        .bearer_auth(&api.token)
        .header("Sforce-Query-Options", "batchSize=200")
        .send()
        .await
        .unwrap();
    let (status, first) = super::read(response).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        keys(&first),
        ["totalSize", "done", "nextRecordsUrl", "records"]
    );
    assert_eq!(first["totalSize"], 450);
    assert_eq!(first["done"], false);
    let record = &first["records"][0];
    assert_eq!(keys(record), ["attributes", "Id", "Name"]);
    assert_eq!(record["attributes"]["type"], "Account");
    assert_eq!(
        record["attributes"]["url"],
        format!("/services/data/{V}/sobjects/Account/{}", created[0]).as_str()
    );
    let next = first["nextRecordsUrl"].as_str().unwrap().to_string();
    let locator = next
        .strip_prefix(&format!("/services/data/{V}/query/"))
        .unwrap();
    let (id, offset) = locator.split_once('-').unwrap();
    assert!(id.starts_with("01g") && id.len() == 18, "{id}");
    assert_eq!(offset, "200");

    let mut all = ids(&first);
    let (_, second) = api.get(&next).await;
    let (_, again) = api.get(&next).await;
    assert_eq!(
        second, again,
        "a locator page is the same when fetched twice"
    );
    assert_eq!(second["totalSize"], 450);
    all.extend(ids(&second));
    let (_, third) = api.get(second["nextRecordsUrl"].as_str().unwrap()).await;
    assert_eq!(third["done"], true);
    assert!(third.get("nextRecordsUrl").is_none());
    all.extend(ids(&third));
    // Unordered queries come back in Id order, every row exactly once.
    assert_eq!(all, created);

    // /queryAll/<locator> serves the same pages.
    let (status, via_all) = api
        .get(&format!("/services/data/{V}/queryAll/{locator}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(via_all, second);

    // A record deleted after the query ran no longer shows on a plain query's pages.
    let gone = created[250].clone();
    api.call(Method::DELETE, &format!("/sobjects/Account/{gone}"), None)
        .await;
    let (_, after) = api.get(&next).await;
    let left = ids(&after);
    assert_eq!(left.len(), 199, "{after}");
    assert!(!left.contains(&gone));
    emu.shutdown().await;
}

#[tokio::test]
async fn default_batch_is_2000_and_limits_offsets_and_order_apply() {
    let emu = start().await;
    accounts(&emu, 2100);
    let api = Api::login(&emu).await;
    let (_, page) = api.query("SELECT Id FROM Account").await;
    assert_eq!(page["records"].as_array().unwrap().len(), 2000);
    assert_eq!(page["totalSize"], 2100);
    let (_, page) = api
        .query("SELECT Name FROM Account ORDER BY Name DESC LIMIT 3")
        .await;
    let names: Vec<&str> = page["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["Name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Account 02099", "Account 02098", "Account 02097"]);
    assert_eq!(page["done"], true);
    let (_, count) = api.query("SELECT COUNT() FROM Account").await;
    assert_eq!(
        count,
        json!({"totalSize": 2100, "done": true, "records": []})
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn query_all_includes_deleted_rows_and_query_does_not() {
    let emu = start().await;
    let created = accounts(&emu, 3);
    let api = Api::login(&emu).await;
    let (status, _) = api
        .call(
            Method::DELETE,
            &format!("/sobjects/Account/{}", created[1]),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let soql = encode("SELECT Id, IsDeleted FROM Account");
    let (_, live) = api.get(&format!("/query?q={soql}")).await;
    assert_eq!(ids(&live), [created[0].clone(), created[2].clone()]);
    for path in ["/queryAll", "/queryAll/"] {
        let (status, all) = api.get(&format!("{path}?q={soql}")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(all["totalSize"], 3);
        assert_eq!(all["records"][1]["IsDeleted"], true);
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn soql_errors_and_stale_locators_are_error_arrays() {
    let emu = start().await;
    accounts(&emu, 250);
    let api = Api::login(&emu).await;
    let (status, body) = api.query("SELEKT Id FROM Account").await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "MALFORMED_QUERY")
    );
    assert_eq!(keys(&body[0]), ["message", "errorCode"]);
    let (status, body) = api.query("SELECT Bacon__c FROM Account").await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "INVALID_FIELD")
    );
    let (status, body) = api.query("SELECT Id FROM Nothing__c").await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "INVALID_TYPE")
    );
    let (status, body) = api.get("/query").await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "MALFORMED_QUERY")
    );

    // Eleven open locators release the oldest.
    let mut nexts = Vec::new();
    for _ in 0..11 {
        let response = api
            .http
            .get(api.url(&format!("/query?q={}", encode("SELECT Id FROM Account"))))
            .bearer_auth(&api.token)
            .header("Sforce-Query-Options", "batchSize=200")
            .send()
            .await
            .unwrap();
        let (_, page) = super::read(response).await;
        nexts.push(page["nextRecordsUrl"].as_str().unwrap().to_string());
    }
    let (status, body) = api.get(&nexts[0]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!([{"message": "invalid query locator", "errorCode": "INVALID_QUERY_LOCATOR"}])
    );
    assert_eq!(api.get(&nexts[1]).await.0, StatusCode::OK);
    assert_eq!(api.get(&nexts[10]).await.0, StatusCode::OK);
    emu.shutdown().await;
}
