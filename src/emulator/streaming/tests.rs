//! The CometD endpoint as a client sees it: the emulator on 127.0.0.1:0, raw Bayeux JSON
//! over reqwest, record changes made through the REST API: the events a subscriber gets, and
//! the client and helpers the session tests share.

use std::time::Duration;

use serde_json::{json, Value};

use super::*;
use crate::emulator::{Emulator, RunningEmulator};

pub(super) const API: &str = "/services/data/v62.0";
pub(super) const ACCOUNTS: &str = "/data/AccountChangeEvent";

/// A Bayeux client speaking raw JSON, keeping the `BAYEUX_BROWSER` cookie.
pub(super) struct Bayeux {
    pub(super) http: reqwest::Client,
    pub(super) base: String,
    pub(super) token: String,
    pub(super) cookie: Option<String>,
    pub(super) client_id: Option<String>,
    pub(super) next_id: u64,
}

impl Bayeux {
    /// A client that has shaken hands and subscribed to `channel` from `replay`, with the
    /// subscribe reply.
    pub(super) async fn subscribed(
        emulator: &RunningEmulator,
        channel: &str,
        replay: Value,
    ) -> (Bayeux, Value) {
        let mut bayeux = Bayeux::new(emulator);
        let sub = bayeux.join(channel, replay).await;
        (bayeux, sub)
    }

    /// Handshake, then subscribe to `channel` from `replay`: the subscribe reply.
    pub(super) async fn join(&mut self, channel: &str, replay: Value) -> Value {
        self.handshake().await;
        self.subscribe(channel, replay).await
    }

    pub(super) fn new(emulator: &RunningEmulator) -> Bayeux {
        Bayeux {
            http: reqwest::Client::new(),
            base: emulator.base_url().to_string(),
            token: emulator.access_token(),
            cookie: None,
            client_id: None,
            next_id: 0,
        }
    }

    pub(super) fn id(&mut self) -> String {
        self.next_id += 1;
        self.next_id.to_string()
    }

    pub(super) async fn post(&mut self, messages: Value) -> (u16, Vec<Value>) {
        let mut request = self
            .http
            .post(format!("{}/cometd/62.0", self.base))
            .bearer_auth(&self.token)
            .json(&messages);
        if let Some(c) = &self.cookie {
            request = request.header("Cookie", format!("BAYEUX_BROWSER={c}"));
        }
        let response = request.send().await.expect("the endpoint answers");
        let status = response.status().as_u16();
        if let Some(set) = response.headers().get("set-cookie") {
            let text = set.to_str().unwrap();
            let value = text
                .split(';')
                .next()
                .unwrap()
                .strip_prefix("BAYEUX_BROWSER=")
                .unwrap();
            self.cookie = Some(value.to_string());
        }
        let body: Value = response.json().await.expect("a JSON body");
        (status, body.as_array().expect("a JSON array").clone())
    }

    pub(super) async fn handshake(&mut self) -> Value {
        let id = self.id();
        let (status, replies) = self
            .post(json!([{
                "channel": "/meta/handshake",
                "version": "1.0",
                "minimumVersion": "1.0",
                "supportedConnectionTypes": ["long-polling"],
                "ext": {"replay": true},
                "id": id,
            }]))
            .await;
        assert_eq!(status, 200, "{replies:?}");
        let reply = replies[0].clone();
        assert_eq!(reply["successful"], true, "{reply}");
        self.client_id = Some(reply["clientId"].as_str().unwrap().to_string());
        reply
    }

    pub(super) async fn subscribe(&mut self, channel: &str, replay: Value) -> Value {
        let id = self.id();
        let (status, replies) = self
            .post(json!([{
                "channel": "/meta/subscribe",
                "subscription": channel,
                "clientId": self.client_id,
                "ext": {"replay": {channel: replay}},
                "id": id,
            }]))
            .await;
        assert_eq!(status, 200);
        replies[0].clone()
    }

    /// The events of one `/meta/connect` and its reply.
    pub(super) async fn connect(&mut self) -> (Vec<Value>, Value) {
        let id = self.id();
        let (status, mut replies) = self
            .post(json!([{
                "channel": "/meta/connect",
                "connectionType": "long-polling",
                "clientId": self.client_id,
                "id": id,
            }]))
            .await;
        assert_eq!(status, 200);
        let reply = replies.pop().expect("the connect reply");
        assert_eq!(reply["channel"], "/meta/connect", "{reply}");
        (replies, reply)
    }
}

pub(super) async fn start(timeout: Duration) -> RunningEmulator {
    Emulator::builder()
        .long_poll_timeout(timeout)
        .start()
        .await
        .unwrap()
}

pub(super) async fn rest(
    emulator: &RunningEmulator,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .request(method, format!("{}{API}{path}", emulator.base_url()))
        .bearer_auth(emulator.access_token());
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// `PATCH /composite/sobjects` with `body` (`allOrNone` and `records`).
async fn update_collection(emulator: &RunningEmulator, body: Value) -> (u16, Value) {
    rest(
        emulator,
        reqwest::Method::PATCH,
        "/composite/sobjects",
        Some(body),
    )
    .await
}

pub(super) async fn create_account(emulator: &RunningEmulator, name: &str) -> String {
    let (status, body) = rest(
        emulator,
        reqwest::Method::POST,
        "/sobjects/Account",
        Some(json!({"Name": name})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().unwrap().to_string()
}

pub(super) async fn rename(emulator: &RunningEmulator, id: &str, name: &str) {
    let (status, body) = rest(
        emulator,
        reqwest::Method::PATCH,
        &format!("/sobjects/Account/{id}"),
        Some(json!({"Name": name})),
    )
    .await;
    assert_eq!(status, 204, "{body}");
}

/// Deletes the account `id` through the REST API: the status.
async fn delete_account(emulator: &RunningEmulator, id: &str) -> u16 {
    let (status, _) = rest(
        emulator,
        reqwest::Method::DELETE,
        &format!("/sobjects/Account/{id}"),
        None,
    )
    .await;
    status
}

pub(super) fn header(event: &Value) -> &Value {
    &event["data"]["payload"]["ChangeEventHeader"]
}

pub(super) fn replay_id(event: &Value) -> u64 {
    event["data"]["event"]["replayId"].as_u64().unwrap()
}

#[tokio::test]
async fn a_rest_update_reaches_a_subscriber_with_its_header_and_values() {
    let emulator = start(Duration::from_secs(5)).await;
    let id = create_account(&emulator, "Acme").await;
    let mut bayeux = Bayeux::new(&emulator);
    let hello = bayeux.handshake().await;
    assert_eq!(hello["supportedConnectionTypes"], json!(["long-polling"]));
    assert_eq!(hello["ext"]["replay"], true);
    assert!(bayeux.cookie.is_some(), "the handshake sets BAYEUX_BROWSER");
    let sub = bayeux.subscribe(ACCOUNTS, json!(-1)).await;
    assert_eq!(sub["successful"], true, "{sub}");
    assert_eq!(sub["subscription"], "/data/AccountChangeEvent");

    let before = Utc::now().timestamp_millis();
    rename(&emulator, &id, "Acme Corp").await;
    let (events, reply) = bayeux.connect().await;
    assert_eq!(reply["successful"], true);
    assert_eq!(
        reply["advice"],
        json!({"reconnect": "retry", "timeout": 5000, "interval": 0}),
        "the first connect carries the advice"
    );
    // -1: the create before the subscription is not delivered, the update is.
    assert_eq!(events.len(), 1, "{events:?}");
    let event = &events[0];
    assert_eq!(event["channel"], "/data/AccountChangeEvent");
    let h = header(event);
    assert_eq!(h["entityName"], "Account");
    assert_eq!(h["recordIds"], json!([id]));
    assert_eq!(h["changeType"], "UPDATE");
    let changed: Vec<&str> = h["changedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(changed.contains(&"Name"), "{changed:?}");
    assert!(changed.contains(&"LastModifiedDate"), "{changed:?}");
    assert!(!changed.contains(&"SystemModstamp"), "{changed:?}");
    let committed = h["commitTimestamp"].as_i64().unwrap();
    assert!(
        committed >= before - 1000 && committed <= Utc::now().timestamp_millis() + 1000,
        "{committed} is epoch milliseconds of the commit"
    );
    let user = emulator.with_org(|o| o.user_id().to_string());
    assert_eq!(h["commitUser"], user);
    assert_eq!(h["sequenceNumber"], 1);
    assert!(h["commitNumber"].as_u64().is_some());
    assert_eq!(h["changeOrigin"], "com/salesforce/api/rest/62.0");
    let key = h["transactionKey"].as_str().unwrap();
    let parts: Vec<usize> = key.split('-').map(str::len).collect();
    assert_eq!(parts, vec![8, 4, 4, 4, 12], "{key}");
    assert_eq!(event["data"]["payload"]["Name"], "Acme Corp");
    assert!(event["data"]["payload"].get("SystemModstamp").is_none());
    assert!(event["data"]["schema"]
        .as_str()
        .is_some_and(|s| s.len() == 22));
    assert_eq!(replay_id(event), emulator.streaming().last_replay_id());

    // The next connect carries no advice and waits for the next change.
    rename(&emulator, &id, "Acme Inc").await;
    let (events, reply) = bayeux.connect().await;
    assert!(reply.get("advice").is_none(), "{reply}");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["data"]["payload"]["Name"], "Acme Inc");
}

#[tokio::test]
async fn creates_deletes_and_the_all_events_channel() {
    let emulator = start(Duration::from_secs(5)).await;
    let (mut bayeux, sub) = Bayeux::subscribed(&emulator, ALL_CHANGE_EVENTS, json!(-1)).await;
    assert_eq!(sub["successful"], true, "{sub}");
    let id = create_account(&emulator, "Globex").await;
    let status = delete_account(&emulator, &id).await;
    assert_eq!(status, 204);
    let (events, _) = bayeux.connect().await;
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0]["channel"], ALL_CHANGE_EVENTS);
    assert_eq!(header(&events[0])["changeType"], "CREATE");
    assert_eq!(header(&events[0])["changedFields"], json!([]));
    assert_eq!(events[0]["data"]["payload"]["Name"], "Globex");
    assert!(events[0]["data"]["payload"]["CreatedDate"].is_string());
    assert_eq!(header(&events[1])["changeType"], "DELETE");
    assert_eq!(header(&events[1])["recordIds"], json!([id]));
    let payload = events[1]["data"]["payload"].as_object().unwrap();
    assert_eq!(
        payload.keys().collect::<Vec<_>>(),
        vec!["ChangeEventHeader"],
        "a delete carries no fields"
    );
    assert!(replay_id(&events[0]) < replay_id(&events[1]));
}

#[tokio::test]
async fn one_collections_request_is_one_transaction_merging_the_same_change() {
    let emulator = start(Duration::from_secs(5)).await;
    let a = create_account(&emulator, "A").await;
    let b = create_account(&emulator, "B").await;
    let c = create_account(&emulator, "C").await;
    let (mut bayeux, _) = Bayeux::subscribed(&emulator, ACCOUNTS, json!(-1)).await;
    let records = json!({"allOrNone": false, "records": [
        {"attributes": {"type": "Account"}, "id": a, "Industry": "Energy"},
        {"attributes": {"type": "Account"}, "id": b, "Industry": "Energy"},
        {"attributes": {"type": "Account"}, "id": c, "Industry": "Banking"},
    ]});
    let (status, body) = update_collection(&emulator, records).await;
    assert_eq!(status, 200, "{body}");
    let (events, _) = bayeux.connect().await;
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(header(&events[0])["recordIds"], json!([a, b]));
    assert_eq!(events[0]["data"]["payload"]["Industry"], "Energy");
    assert_eq!(header(&events[1])["recordIds"], json!([c]));
    assert_eq!(
        header(&events[0])["transactionKey"],
        header(&events[1])["transactionKey"]
    );
    assert_eq!(header(&events[0])["sequenceNumber"], 1);
    assert_eq!(header(&events[1])["sequenceNumber"], 2);

    // A rolled back all-or-none request publishes nothing.
    let last = emulator.streaming().last_replay_id();
    let records = json!({"allOrNone": true, "records": [
        {"attributes": {"type": "Account"}, "id": a, "Industry": "Retail"},
        {"attributes": {"type": "Account"}, "id": b, "Name": ""},
    ]});
    let (status, body) = update_collection(&emulator, records).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body[0]["success"], false, "{body}");
    assert_eq!(emulator.streaming().last_replay_id(), last);
}

#[tokio::test]
async fn replay_all_a_stored_id_and_an_invalid_one() {
    let emulator = start(Duration::from_millis(300)).await;
    let id = create_account(&emulator, "R0").await;
    for n in 1..=3 {
        rename(&emulator, &id, &format!("R{n}")).await;
    }
    let retained = emulator.streaming().retained();
    assert_eq!(retained.len(), 4);
    let stored = retained[1].replay_id;

    // -2: every retained event.
    let (mut all, sub) = Bayeux::subscribed(&emulator, ACCOUNTS, json!(-2)).await;
    assert_eq!(sub["successful"], true, "{sub}");
    let (events, _) = all.connect().await;
    let ids: Vec<u64> = events.iter().map(replay_id).collect();
    let expected: Vec<u64> = retained.iter().map(|e| e.replay_id).collect();
    assert_eq!(ids, expected);
    assert_eq!(header(&events[0])["changeType"], "CREATE");

    // A stored id: only the later events.
    let (mut resumed, sub) = Bayeux::subscribed(&emulator, ACCOUNTS, json!(stored)).await;
    assert_eq!(sub["successful"], true, "{sub}");
    let (events, _) = resumed.connect().await;
    let names: Vec<&str> = events
        .iter()
        .map(|e| e["data"]["payload"]["Name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["R2", "R3"]);
    assert!(events.iter().all(|e| replay_id(e) > stored));

    // An id the bus never gave: the documented error.
    let (_wrong, sub) = Bayeux::subscribed(&emulator, ACCOUNTS, json!(999_999)).await;
    assert_eq!(sub["successful"], false);
    assert_eq!(
        sub["error"],
        "400::The replayId {999999} you provided was invalid.  Please provide a valid ID, -2 to \
         replay all events, or -1 to replay only new events."
    );
    assert_eq!(sub["subscription"], "/data/AccountChangeEvent");
}

#[tokio::test]
async fn a_replay_id_past_retention_is_invalid() {
    let emulator = Emulator::builder()
        .streaming(StreamingConfig {
            retention_count: 2,
            long_poll_timeout: Duration::from_millis(200),
            ..StreamingConfig::default()
        })
        .start()
        .await
        .unwrap();
    let id = create_account(&emulator, "P0").await;
    let first = emulator.streaming().last_replay_id();
    for n in 1..=3 {
        rename(&emulator, &id, &format!("P{n}")).await;
    }
    assert_eq!(emulator.streaming().retained().len(), 2);
    let (mut bayeux, sub) = Bayeux::subscribed(&emulator, ACCOUNTS, json!(first)).await;
    assert_eq!(sub["successful"], false, "{sub}");
    assert!(sub["error"].as_str().unwrap().starts_with(&format!(
        "400::The replayId {{{first}}} you provided was invalid."
    )));
    // -2 gives the two retained ones.
    let sub = bayeux.subscribe(ACCOUNTS, json!(-2)).await;
    assert_eq!(sub["successful"], true);
    let (events, _) = bayeux.connect().await;
    let names: Vec<&str> = events
        .iter()
        .map(|e| e["data"]["payload"]["Name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["P2", "P3"]);
}

#[tokio::test]
async fn a_burst_of_edits_arrives_in_commit_order() {
    let emulator = start(Duration::from_millis(300)).await;
    let id = create_account(&emulator, "B0").await;
    let (mut bayeux, _) = Bayeux::subscribed(&emulator, ACCOUNTS, json!(-1)).await;
    for n in 1..=50 {
        rename(&emulator, &id, &format!("B{n}")).await;
    }
    let mut names = Vec::new();
    let mut last = 0;
    while names.len() < 50 {
        let (events, reply) = bayeux.connect().await;
        assert_eq!(reply["successful"], true);
        assert!(!events.is_empty(), "events stopped after {}", names.len());
        for e in &events {
            assert!(replay_id(e) > last, "replay ids increase");
            last = replay_id(e);
            names.push(e["data"]["payload"]["Name"].as_str().unwrap().to_string());
        }
    }
    let expected: Vec<String> = (1..=50).map(|n| format!("B{n}")).collect();
    assert_eq!(names, expected);
}

#[tokio::test]
async fn overflow_and_gap_events_on_demand_and_custom_object_channels() {
    let emulator = start(Duration::from_millis(300)).await;
    let (mut bayeux, sub) =
        Bayeux::subscribed(&emulator, "/data/Account_Plan__ChangeEvent", json!(-1)).await;
    assert_eq!(sub["successful"], true, "{sub}");
    let sub = bayeux.subscribe("/data/NoSuchChangeEvent", json!(-1)).await;
    assert_eq!(sub["successful"], false);
    assert_eq!(
        sub["error"],
        "400::The channel you requested to subscribe to doesn't exist {/data/NoSuchChangeEvent}"
    );
    emulator.streaming().publish_overflow("Account_Plan__c");
    emulator
        .streaming()
        .publish_gap("Account", "GAP_UPDATE", &["001000000000001AAA".into()]);
    let (events, _) = bayeux.connect().await;
    assert_eq!(events.len(), 1, "only the plan channel: {events:?}");
    assert_eq!(events[0]["channel"], "/data/Account_Plan__ChangeEvent");
    assert_eq!(header(&events[0])["changeType"], "GAP_OVERFLOW");
    assert_eq!(header(&events[0])["entityName"], "Account_Plan__c");
}

#[tokio::test]
async fn an_undelete_publishes_the_restored_record() {
    let emulator = start(Duration::from_millis(300)).await;
    let id = create_account(&emulator, "Lazarus").await;
    let status = delete_account(&emulator, &id).await;
    assert_eq!(status, 204);
    let (mut bayeux, _) = Bayeux::subscribed(&emulator, ACCOUNTS, json!(-1)).await;
    emulator
        .with_org(|org| org.undelete(&id, Utc::now()))
        .unwrap();
    let (events, _) = bayeux.connect().await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(header(&events[0])["changeType"], "UNDELETE");
    assert_eq!(events[0]["data"]["payload"]["Name"], "Lazarus");
    let again = emulator.with_org(|org| org.undelete(&id, Utc::now()));
    assert_eq!(again.unwrap_err().status_code, "UNDELETE_FAILED");
}

#[tokio::test]
async fn a_composite_request_is_one_transaction_and_names_the_calling_client() {
    let emulator = start(Duration::from_millis(300)).await;
    let id = create_account(&emulator, "Comp").await;
    let (mut bayeux, _) = Bayeux::subscribed(&emulator, ALL_CHANGE_EVENTS, json!(-1)).await;
    let composite = |all_or_none: bool, name: &str| {
        json!({"allOrNone": all_or_none, "compositeRequest": [
            {"method": "PATCH", "url": format!("{API}/sobjects/Account/{id}"),
             "referenceId": "acct", "body": {"Name": name}},
            {"method": "POST", "url": format!("{API}/sobjects/Contact"),
             "referenceId": "contact", "body": {"LastName": "Doe", "AccountId": id}},
        ]})
    };
    let response = reqwest::Client::new()
        .post(format!("{}{API}/composite", emulator.base_url()))
        .bearer_auth(emulator.access_token())
        .header("Sforce-Call-Options", "client=plansync")
        .json(&composite(false, "Comp 2"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["compositeResponse"][1]["httpStatusCode"], 201,
        "{body}"
    );
    let (events, _) = bayeux.connect().await;
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(header(&events[0])["entityName"], "Account");
    assert_eq!(header(&events[1])["entityName"], "Contact");
    assert_eq!(header(&events[1])["changeType"], "CREATE");
    assert_eq!(
        header(&events[0])["transactionKey"],
        header(&events[1])["transactionKey"]
    );
    assert_eq!(
        header(&events[0])["changeOrigin"],
        "com/salesforce/api/rest/62.0;client=plansync"
    );

    // All or none with a failing subrequest: rolled back, nothing published.
    let last = emulator.streaming().last_replay_id();
    let mut failing = composite(true, "Comp 3");
    failing["compositeRequest"][1]["body"] = json!({"FirstName": "No last name"});
    let (status, body) = rest(
        &emulator,
        reqwest::Method::POST,
        "/composite",
        Some(failing),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["compositeResponse"][1]["httpStatusCode"], 400,
        "{body}"
    );
    assert_eq!(emulator.streaming().last_replay_id(), last);
}

#[tokio::test]
async fn only_objects_with_change_events_have_channels_and_publish() {
    let emulator = Emulator::builder()
        .multi_currency("USD")
        .long_poll_timeout(Duration::from_millis(100))
        .start()
        .await
        .unwrap();
    let mut bayeux = Bayeux::new(&emulator);
    bayeux.handshake().await;
    for channel in [
        "/data/TaskChangeEvent",
        "/data/EventChangeEvent",
        "/data/UserChangeEvent",
        "/data/OpportunityChangeEvent",
        "/data/Account_Plan_Snapshot__ChangeEvent",
    ] {
        let sub = bayeux.subscribe(channel, json!(-1)).await;
        assert_eq!(sub["successful"], true, "{channel}: {sub}");
    }
    for channel in [
        "/data/CurrencyTypeChangeEvent",
        "/data/OpportunityStageChangeEvent",
        "/data/Account_Plan__cChangeEvent",
    ] {
        let sub = bayeux.subscribe(channel, json!(-1)).await;
        assert_eq!(sub["successful"], false, "{channel}: {sub}");
    }
    let eur = emulator.with_org(|org| {
        org.records("CurrencyType")
            .find(|r| r["IsoCode"] == "EUR")
            .map(|r| r["Id"].as_str().unwrap().to_string())
            .unwrap()
    });
    let before = emulator.streaming().last_replay_id();
    let (status, body) = rest(
        &emulator,
        reqwest::Method::PATCH,
        &format!("/sobjects/CurrencyType/{eur}"),
        Some(json!({"ConversionRate": 0.95})),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(
        emulator
            .with_org(|org| org.get("CurrencyType", &eur).unwrap()["ConversionRate"].to_string()),
        "0.95"
    );
    assert_eq!(
        emulator.streaming().last_replay_id(),
        before,
        "CurrencyType has no change events"
    );
}
