//! The composite resource against a running emulator on 127.0.0.1: the documented request and
//! response shapes, references, limits, allOrNone and call counting.

use serde_json::{json, Value};

use crate::emulator::{Emulator, RunningEmulator};

const API: &str = "/services/data/v62.0";

struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    fn new(emulator: &RunningEmulator) -> Client {
        Client {
            http: reqwest::Client::new(),
            base: emulator.base_url().to_string(),
            token: emulator.access_token(),
        }
    }

    /// Sends a request; returns the status, the `Sforce-Limit-Info` header and the JSON body.
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> (u16, String, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let limit = response
            .headers()
            .get("sforce-limit-info")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let bytes = response.bytes().await.unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        (status, limit, body)
    }

    async fn composite(&self, body: Value) -> (u16, String, Value) {
        self.send(
            reqwest::Method::POST,
            &format!("{API}/composite"),
            Some(&body),
            &[],
        )
        .await
    }

    async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Value {
        let (status, _, body) = self.send(reqwest::Method::GET, path, None, headers).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }
}

async fn demo(scale: u32) -> RunningEmulator {
    Emulator::builder()
        .seed("demo")
        .scale(scale)
        .start()
        .await
        .unwrap()
}

fn query_url(soql: &str) -> String {
    let encoded: String = url::form_urlencoded::byte_serialize(soql.as_bytes()).collect();
    format!("{API}/query/?q={encoded}")
}

const OPPS: &str = "SELECT Id, Name, Amount, CloseDate, Account.Name FROM Opportunity ORDER BY Id";

#[tokio::test]
async fn query_pages_chained_by_reference_match_the_plain_pages_and_count_once() {
    let emulator = demo(3).await;
    let client = Client::new(&emulator);
    let batch = [("Sforce-Query-Options", "batchSize=200")];

    // The plain REST pages.
    let mut plain = vec![client.get(&query_url(OPPS), &batch).await];
    while let Some(next) = plain.last().unwrap()["nextRecordsUrl"].as_str() {
        let next = next.to_string();
        plain.push(client.get(&next, &batch).await);
    }
    assert!(
        plain.len() >= 3,
        "the demo org at scale 3 has several pages of 200"
    );

    let before = emulator.api_usage().0;
    let headers = json!({"Sforce-Query-Options": "batchSize=200"});
    let (status, limit, body) = client
        .composite(json!({
            "allOrNone": false,
            "collateSubrequests": false,
            "compositeRequest": [
                {"method": "GET", "url": query_url(OPPS), "referenceId": "page1", "httpHeaders": headers},
                {"method": "GET", "url": "@{page1.nextRecordsUrl}", "referenceId": "page2", "httpHeaders": headers},
                {"method": "GET", "url": "@{page2.nextRecordsUrl}", "referenceId": "page3", "httpHeaders": headers},
            ]
        }))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        emulator.api_usage().0,
        before + 1,
        "one composite request is one API call"
    );
    assert_eq!(limit, format!("api-usage={}/100000", before + 1));
    let results = body["compositeResponse"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    for (i, result) in results.iter().enumerate() {
        assert_eq!(result["httpStatusCode"], 200, "{result}");
        assert_eq!(result["referenceId"], format!("page{}", i + 1));
        assert_eq!(result["httpHeaders"], json!({}));
        let keys: Vec<&String> = result.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            ["body", "httpHeaders", "httpStatusCode", "referenceId"]
        );
        // The same records as the plain pages (locators differ: each query opens its own).
        assert_eq!(
            result["body"]["records"],
            plain[i]["records"],
            "page {}",
            i + 1
        );
        assert_eq!(result["body"]["totalSize"], plain[i]["totalSize"]);
        assert_eq!(result["body"]["done"], plain[i]["done"]);
    }
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_reference_past_the_last_page_halts_only_that_subrequest() {
    let emulator = demo(1).await;
    let client = Client::new(&emulator);
    let (status, _, body) = client
        .composite(json!({
            "compositeRequest": [
                {"method": "GET", "url": query_url("SELECT Id FROM Account"), "referenceId": "accounts"},
                {"method": "GET", "url": "@{accounts.nextRecordsUrl}", "referenceId": "more"},
                {"method": "GET", "url": query_url("SELECT Id FROM Contact LIMIT 1"), "referenceId": "contacts"},
            ]
        }))
        .await;
    assert_eq!(status, 200);
    let results = &body["compositeResponse"];
    assert_eq!(results[0]["httpStatusCode"], 200);
    assert_eq!(results[0]["body"]["done"], true);
    assert_eq!(results[1]["httpStatusCode"], 400);
    assert_eq!(results[1]["body"][0]["errorCode"], "PROCESSING_HALTED");
    assert_eq!(
        results[2]["httpStatusCode"], 200,
        "independent subrequests still run"
    );
    assert_eq!(results[2]["body"]["totalSize"], 1);
    emulator.shutdown().await;
}

#[tokio::test]
async fn dependent_creates_resolve_references_and_answer_as_the_plain_routes() {
    let emulator = demo(1).await;
    let client = Client::new(&emulator);
    let (status, _, body) = client
        .composite(json!({
            "allOrNone": true,
            "compositeRequest": [
                {"method": "POST", "url": format!("{API}/sobjects/Account"), "referenceId": "refAccount",
                 "body": {"Name": "Sample Account"}},
                {"method": "POST", "url": format!("{API}/sobjects/Contact"), "referenceId": "refContact",
                 "body": {"LastName": "Sample Contact", "AccountId": "@{refAccount.id}"}},
                {"method": "GET", "url": format!("{API}/sobjects/Contact/@{{refContact.id}}?fields=AccountId,LastName"),
                 "referenceId": "readBack"},
            ]
        }))
        .await;
    assert_eq!(status, 200, "{body}");
    let results = &body["compositeResponse"];
    let account_id = results[0]["body"]["id"].as_str().unwrap().to_string();
    assert_eq!(results[0]["httpStatusCode"], 201);
    assert_eq!(results[0]["body"]["success"], true);
    assert_eq!(results[0]["body"]["errors"], json!([]));
    assert_eq!(
        results[0]["httpHeaders"]["Location"],
        format!("{API}/sobjects/Account/{account_id}")
    );
    assert_eq!(results[1]["httpStatusCode"], 201);
    assert_eq!(results[2]["httpStatusCode"], 200);
    assert_eq!(results[2]["body"]["AccountId"], account_id.as_str());
    assert_eq!(results[2]["body"]["LastName"], "Sample Contact");
    emulator.shutdown().await;
}

#[tokio::test]
async fn all_or_none_rolls_back_every_write_and_halts_the_others() {
    let emulator = demo(1).await;
    let client = Client::new(&emulator);
    let accounts = |e: &RunningEmulator| e.with_org(|org| org.live_records("Account").count());
    let before = accounts(&emulator);
    // The same bad create sent alone: the plain route's answer.
    let bad = json!({"Name": "Bad", "NoSuchField__c": 1});
    let (plain_status, _, plain_body) = client
        .send(
            reqwest::Method::POST,
            &format!("{API}/sobjects/Account"),
            Some(&bad),
            &[],
        )
        .await;
    let (status, _, body) = client
        .composite(json!({
            "allOrNone": true,
            "compositeRequest": [
                {"method": "POST", "url": format!("{API}/sobjects/Account"), "referenceId": "good", "body": {"Name": "Kept?"}},
                {"method": "POST", "url": format!("{API}/sobjects/Account"), "referenceId": "bad", "body": bad},
                {"method": "GET", "url": query_url("SELECT Id FROM Account"), "referenceId": "after"},
            ]
        }))
        .await;
    assert_eq!(status, 200);
    let results = &body["compositeResponse"];
    assert_eq!(results[1]["httpStatusCode"], plain_status);
    assert_eq!(
        results[1]["body"], plain_body,
        "the same error as the plain route"
    );
    for i in [0, 2] {
        assert_eq!(results[i]["httpStatusCode"], 400, "{}", results[i]);
        assert_eq!(results[i]["body"][0]["errorCode"], "PROCESSING_HALTED");
    }
    assert_eq!(
        accounts(&emulator),
        before,
        "the first create was rolled back"
    );

    // allOrNone false: the good create stays, a dependent subrequest is not run.
    let (_, _, body) = client
        .composite(json!({
            "allOrNone": false,
            "compositeRequest": [
                {"method": "POST", "url": format!("{API}/sobjects/Account"), "referenceId": "good", "body": {"Name": "Kept"}},
                {"method": "POST", "url": format!("{API}/sobjects/Account"), "referenceId": "bad", "body": bad},
                {"method": "POST", "url": format!("{API}/sobjects/Contact"), "referenceId": "child",
                 "body": {"LastName": "X", "AccountId": "@{bad.id}"}},
            ]
        }))
        .await;
    let results = &body["compositeResponse"];
    assert_eq!(results[0]["httpStatusCode"], 201);
    assert_eq!(results[1]["httpStatusCode"], 400);
    assert_eq!(results[2]["httpStatusCode"], 400);
    assert_eq!(results[2]["body"][0]["errorCode"], "PROCESSING_HALTED");
    assert_eq!(accounts(&emulator), before + 1);
    emulator.shutdown().await;
}

#[tokio::test]
async fn five_collections_of_200_update_1000_records_in_one_call() {
    let emulator = demo(5).await;
    let client = Client::new(&emulator);
    let ids: Vec<String> = emulator.with_org(|org| {
        org.live_records("Opportunity")
            .take(1000)
            .map(|r| r["Id"].as_str().unwrap().to_string())
            .collect()
    });
    assert_eq!(ids.len(), 1000);
    let mut subrequests = Vec::new();
    for (n, chunk) in ids.chunks(200).enumerate() {
        let records: Vec<Value> = chunk
            .iter()
            .enumerate()
            .map(|(i, id)| {
                // One bad row per chunk: a per-record error, the others are kept.
                let stage = if i == 7 {
                    "No such stage"
                } else {
                    "Prospecting"
                };
                json!({"attributes": {"type": "Opportunity"}, "id": id, "StageName": stage})
            })
            .collect();
        subrequests.push(json!({
            "method": "PATCH", "url": format!("{API}/composite/sobjects"), "referenceId": format!("w{n}"),
            "body": {"allOrNone": false, "records": records}
        }));
    }
    let before = emulator.api_usage().0;
    let (status, _, body) = client
        .composite(json!({"allOrNone": false, "compositeRequest": subrequests}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(emulator.api_usage().0, before + 1);
    for (n, result) in body["compositeResponse"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        assert_eq!(result["httpStatusCode"], 200);
        let rows = result["body"].as_array().unwrap();
        assert_eq!(rows.len(), 200);
        assert_eq!(rows[0]["success"], true);
        assert_eq!(rows[0]["id"], ids[n * 200].as_str());
        assert_eq!(rows[7]["success"], false, "{}", rows[7]);
        assert!(rows[7]["errors"][0]["statusCode"].is_string());
    }
    let prospecting = emulator.with_org(|org| {
        ids.iter()
            .filter(|id| org.get("Opportunity", id).unwrap()["StageName"] == "Prospecting")
            .count()
    });
    assert_eq!(prospecting, 995);
    emulator.shutdown().await;
}

#[tokio::test]
async fn the_documented_limits_refuse_the_whole_request() {
    let emulator = demo(1).await;
    let client = Client::new(&emulator);
    let query = |n: usize| json!({"method": "GET", "url": query_url("SELECT Id FROM Account"), "referenceId": format!("q{n}")});
    let read = |n: usize| json!({"method": "GET", "url": format!("{API}/sobjects/Account/describe"), "referenceId": format!("d{n}")});

    let six: Vec<Value> = (0..6).map(query).collect();
    let (status, _, body) = client.composite(json!({"compositeRequest": six})).await;
    assert_eq!(status, 400, "{body}");
    assert!(body[0]["message"].as_str().unwrap().contains("at most 5"));

    let mut five_and_twenty: Vec<Value> = (0..5).map(query).collect();
    five_and_twenty.extend((0..20).map(read));
    let (status, _, body) = client
        .composite(json!({"compositeRequest": five_and_twenty.clone()}))
        .await;
    assert_eq!(
        status, 200,
        "25 subrequests with 5 queries are allowed: {body}"
    );
    assert_eq!(body["compositeResponse"].as_array().unwrap().len(), 25);

    five_and_twenty.push(read(99));
    let (status, _, body) = client
        .composite(json!({"compositeRequest": five_and_twenty}))
        .await;
    assert_eq!(status, 400);
    assert!(body[0]["message"].as_str().unwrap().contains("at most 25"));

    let (status, _, _) = client
        .composite(json!({"compositeRequest": [query(1), query(1)]}))
        .await;
    assert_eq!(status, 400, "duplicate referenceIds are refused");

    let (status, _, _) = client
        .composite(json!({"compositeRequest": [{"method": "GET", "url": query_url("SELECT Id FROM Account"),
            "referenceId": "q", "httpHeaders": {"Authorization": "Bearer x"}}]}))
        .await;
    assert_eq!(status, 400, "subrequests inherit Authorization");
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_malformed_query_answers_the_plain_error_inside_its_result() {
    let emulator = demo(1).await;
    let client = Client::new(&emulator);
    let soql = "SELECT Id FRM Account";
    let (plain_status, _, plain_body) = client
        .send(reqwest::Method::GET, &query_url(soql), None, &[])
        .await;
    let (status, _, body) = client
        .composite(json!({"compositeRequest": [{"method": "GET", "url": query_url(soql), "referenceId": "q"}]}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["compositeResponse"][0]["httpStatusCode"], plain_status);
    assert_eq!(body["compositeResponse"][0]["body"], plain_body);
    emulator.shutdown().await;
}

#[tokio::test]
async fn get_lists_the_composite_resources_behind_the_session_gate() {
    let emulator = demo(1).await;
    let client = Client::new(&emulator);
    let body = client.get(&format!("{API}/composite"), &[]).await;
    assert_eq!(body["sobjects"], format!("{API}/composite/sobjects"));
    let anonymous = reqwest::Client::new()
        .get(format!("{}{API}/composite", emulator.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    emulator.shutdown().await;
}

/// The structure of a JSON value: object keys in order with their structures, the first
/// element of an array, the type of a scalar.
fn shape(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), shape(v))).collect())
        }
        Value::Array(items) => Value::Array(items.iter().take(1).map(shape).collect()),
        Value::String(_) => json!("string"),
        Value::Number(_) => json!("number"),
        Value::Bool(_) => json!("bool"),
        Value::Null => json!("null"),
    }
}

/// The first subresult of a recorded Composite Graph answer.
fn recorded(name: &str) -> Value {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/salesforce-recorded")
        .join(name);
    let mapping: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let body: Value = serde_json::from_str(mapping["response"]["body"].as_str().unwrap()).unwrap();
    body["graphs"][0]["graphResponse"]["compositeResponse"][0].clone()
}

#[tokio::test]
async fn subresults_have_the_recorded_shapes() {
    let emulator = demo(1).await;
    let client = Client::new(&emulator);
    let (status, _, body) = client
        .composite(json!({
            "compositeRequest": [
                {"method": "POST", "url": format!("{API}/sobjects/Account"), "referenceId": "created",
                 "body": {"Name": "Shape Check"}},
                {"method": "POST", "url": format!("{API}/sobjects/Opportunity"), "referenceId": "refused",
                 "body": {"Name": "Bad stage", "StageName": "Amazing", "CloseDate": "2026-01-31",
                          "AccountId": "@{created.id}"}},
                {"method": "DELETE", "url": format!("{API}/sobjects/Account/@{{created.id}}"),
                 "referenceId": "deleted"},
            ]
        }))
        .await;
    assert_eq!(status, 200);
    let results = &body["compositeResponse"];
    let cases = [
        ("composite-graph-create.json", 0, 201),
        ("composite-graph-single-create-error.json", 1, 400),
        ("composite-graph-single-delete.json", 2, 204),
    ];
    for (file, index, code) in cases {
        let ours = &results[index];
        assert_eq!(ours["httpStatusCode"], code, "{ours}");
        assert_eq!(shape(ours), shape(&recorded(file)), "{file}: {ours}");
    }
    assert_eq!(
        results[1]["body"][0]["errorCode"],
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    );
    assert_eq!(results[1]["body"][0]["fields"], json!(["StageName"]));
    emulator.shutdown().await;
}
