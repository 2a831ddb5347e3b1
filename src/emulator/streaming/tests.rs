//! The CometD endpoint as a client sees it: the emulator on 127.0.0.1:0, raw Bayeux JSON
//! over reqwest, record changes made through the REST API.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::*;
use crate::emulator::{Emulator, RunningEmulator};

const API: &str = "/services/data/v62.0";

/// A Bayeux client speaking raw JSON, keeping the `BAYEUX_BROWSER` cookie.
struct Bayeux {
    http: reqwest::Client,
    base: String,
    token: String,
    cookie: Option<String>,
    client_id: Option<String>,
    next_id: u64,
}

impl Bayeux {
    fn new(emulator: &RunningEmulator) -> Bayeux {
        Bayeux {
            http: reqwest::Client::new(),
            base: emulator.base_url().to_string(),
            token: emulator.access_token(),
            cookie: None,
            client_id: None,
            next_id: 0,
        }
    }

    fn id(&mut self) -> String {
        self.next_id += 1;
        self.next_id.to_string()
    }

    async fn post(&mut self, messages: Value) -> (u16, Vec<Value>) {
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

    async fn handshake(&mut self) -> Value {
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

    async fn subscribe(&mut self, channel: &str, replay: Value) -> Value {
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
    async fn connect(&mut self) -> (Vec<Value>, Value) {
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

async fn start(timeout: Duration) -> RunningEmulator {
    Emulator::builder()
        .long_poll_timeout(timeout)
        .start()
        .await
        .unwrap()
}

async fn rest(
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

async fn create_account(emulator: &RunningEmulator, name: &str) -> String {
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

async fn rename(emulator: &RunningEmulator, id: &str, name: &str) {
    let (status, body) = rest(
        emulator,
        reqwest::Method::PATCH,
        &format!("/sobjects/Account/{id}"),
        Some(json!({"Name": name})),
    )
    .await;
    assert_eq!(status, 204, "{body}");
}

fn header(event: &Value) -> &Value {
    &event["data"]["payload"]["ChangeEventHeader"]
}

fn replay_id(event: &Value) -> u64 {
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
    let sub = bayeux
        .subscribe("/data/AccountChangeEvent", json!(-1))
        .await;
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
    let mut bayeux = Bayeux::new(&emulator);
    bayeux.handshake().await;
    let sub = bayeux.subscribe(ALL_CHANGE_EVENTS, json!(-1)).await;
    assert_eq!(sub["successful"], true, "{sub}");
    let id = create_account(&emulator, "Globex").await;
    let (status, _) = rest(
        &emulator,
        reqwest::Method::DELETE,
        &format!("/sobjects/Account/{id}"),
        None,
    )
    .await;
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
    let mut bayeux = Bayeux::new(&emulator);
    bayeux.handshake().await;
    bayeux
        .subscribe("/data/AccountChangeEvent", json!(-1))
        .await;
    let records = json!({"allOrNone": false, "records": [
        {"attributes": {"type": "Account"}, "id": a, "Industry": "Energy"},
        {"attributes": {"type": "Account"}, "id": b, "Industry": "Energy"},
        {"attributes": {"type": "Account"}, "id": c, "Industry": "Banking"},
    ]});
    let (status, body) = rest(
        &emulator,
        reqwest::Method::PATCH,
        "/composite/sobjects",
        Some(records),
    )
    .await;
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
    let (status, body) = rest(
        &emulator,
        reqwest::Method::PATCH,
        "/composite/sobjects",
        Some(records),
    )
    .await;
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
    let mut all = Bayeux::new(&emulator);
    all.handshake().await;
    let sub = all.subscribe("/data/AccountChangeEvent", json!(-2)).await;
    assert_eq!(sub["successful"], true, "{sub}");
    let (events, _) = all.connect().await;
    let ids: Vec<u64> = events.iter().map(replay_id).collect();
    let expected: Vec<u64> = retained.iter().map(|e| e.replay_id).collect();
    assert_eq!(ids, expected);
    assert_eq!(header(&events[0])["changeType"], "CREATE");

    // A stored id: only the later events.
    let mut resumed = Bayeux::new(&emulator);
    resumed.handshake().await;
    let sub = resumed
        .subscribe("/data/AccountChangeEvent", json!(stored))
        .await;
    assert_eq!(sub["successful"], true, "{sub}");
    let (events, _) = resumed.connect().await;
    let names: Vec<&str> = events
        .iter()
        .map(|e| e["data"]["payload"]["Name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["R2", "R3"]);
    assert!(events.iter().all(|e| replay_id(e) > stored));

    // An id the bus never gave: the documented error.
    let mut wrong = Bayeux::new(&emulator);
    wrong.handshake().await;
    let sub = wrong
        .subscribe("/data/AccountChangeEvent", json!(999_999))
        .await;
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
    let mut bayeux = Bayeux::new(&emulator);
    bayeux.handshake().await;
    let sub = bayeux
        .subscribe("/data/AccountChangeEvent", json!(first))
        .await;
    assert_eq!(sub["successful"], false, "{sub}");
    assert!(sub["error"].as_str().unwrap().starts_with(&format!(
        "400::The replayId {{{first}}} you provided was invalid."
    )));
    // -2 gives the two retained ones.
    let sub = bayeux
        .subscribe("/data/AccountChangeEvent", json!(-2))
        .await;
    assert_eq!(sub["successful"], true);
    let (events, _) = bayeux.connect().await;
    let names: Vec<&str> = events
        .iter()
        .map(|e| e["data"]["payload"]["Name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["P2", "P3"]);
}

#[tokio::test]
async fn an_unknown_client_is_told_to_handshake_and_a_new_handshake_works() {
    let emulator = start(Duration::from_millis(300)).await;
    let id = create_account(&emulator, "U").await;
    let mut bayeux = Bayeux::new(&emulator);
    bayeux.handshake().await;
    bayeux
        .subscribe("/data/AccountChangeEvent", json!(-1))
        .await;
    let old = bayeux.client_id.clone();
    emulator.streaming().forget_clients();
    let (events, reply) = bayeux.connect().await;
    assert!(events.is_empty());
    assert_eq!(reply["successful"], false);
    assert_eq!(reply["error"], "403::Unknown client");
    assert_eq!(reply["advice"]["reconnect"], "handshake");

    bayeux.handshake().await;
    assert_ne!(bayeux.client_id, old);
    let sub = bayeux
        .subscribe("/data/AccountChangeEvent", json!(-1))
        .await;
    assert_eq!(sub["successful"], true);
    rename(&emulator, &id, "U2").await;
    let (events, reply) = bayeux.connect().await;
    assert_eq!(reply["successful"], true);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["data"]["payload"]["Name"], "U2");
}

#[tokio::test]
async fn an_idle_long_poll_returns_after_the_timeout_with_the_reply_only() {
    let emulator = start(Duration::from_millis(400)).await;
    let mut bayeux = Bayeux::new(&emulator);
    bayeux.handshake().await;
    bayeux
        .subscribe("/data/AccountChangeEvent", json!(-1))
        .await;
    let started = Instant::now();
    let (events, reply) = bayeux.connect().await;
    let waited = started.elapsed();
    assert!(events.is_empty(), "{events:?}");
    assert_eq!(reply["successful"], true);
    assert!(
        waited >= Duration::from_millis(380) && waited < Duration::from_secs(3),
        "held for {waited:?}"
    );
}

#[tokio::test]
async fn a_held_connect_answers_as_soon_as_a_change_is_committed() {
    let emulator = start(Duration::from_secs(20)).await;
    let id = create_account(&emulator, "H").await;
    let mut bayeux = Bayeux::new(&emulator);
    bayeux.handshake().await;
    bayeux
        .subscribe("/data/AccountChangeEvent", json!(-1))
        .await;
    let started = Instant::now();
    let held = tokio::spawn(async move { bayeux.connect().await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    rename(&emulator, &id, "H2").await;
    let (events, _) = held.await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["data"]["payload"]["Name"], "H2");
}

#[tokio::test]
async fn a_burst_of_edits_arrives_in_commit_order() {
    let emulator = start(Duration::from_millis(300)).await;
    let id = create_account(&emulator, "B0").await;
    let mut bayeux = Bayeux::new(&emulator);
    bayeux.handshake().await;
    bayeux
        .subscribe("/data/AccountChangeEvent", json!(-1))
        .await;
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
async fn an_expired_session_gets_401_and_a_denied_handshake() {
    let emulator = start(Duration::from_secs(20)).await;
    let mut bayeux = Bayeux::new(&emulator);
    bayeux.handshake().await;
    bayeux
        .subscribe("/data/AccountChangeEvent", json!(-1))
        .await;
    // A held connect learns of it at once.
    let started = Instant::now();
    let held = tokio::spawn(async move {
        let answer = bayeux.connect().await;
        (bayeux, answer)
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    emulator.expire_sessions();
    let (mut bayeux, (events, reply)) = held.await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(events.is_empty());
    assert_eq!(reply["successful"], false);
    assert_eq!(reply["error"], "401::Authentication invalid");
    assert_eq!(reply["advice"]["reconnect"], "none");

    let (status, replies) = bayeux
        .post(json!([{"channel": "/meta/handshake", "version": "1.0",
            "supportedConnectionTypes": ["long-polling"], "id": "9"}]))
        .await;
    assert_eq!(status, 401);
    assert_eq!(replies[0]["error"], "403::Handshake denied");
    assert_eq!(
        replies[0]["ext"]["sfdc"]["failureReason"],
        "401::Authentication invalid"
    );
    // A new token works again.
    bayeux.token = emulator.access_token();
    bayeux.handshake().await;
}

#[tokio::test]
async fn a_dropped_connect_closes_the_connection_and_the_next_one_works() {
    let emulator = start(Duration::from_millis(300)).await;
    let id = create_account(&emulator, "D").await;
    let mut bayeux = Bayeux::new(&emulator);
    bayeux.handshake().await;
    bayeux
        .subscribe("/data/AccountChangeEvent", json!(-1))
        .await;
    rename(&emulator, &id, "D2").await;
    emulator.streaming().drop_next_connect();
    let sent = reqwest::Client::new()
        .post(format!("{}/cometd/62.0", emulator.base_url()))
        .bearer_auth(&bayeux.token)
        .header(
            "Cookie",
            format!("BAYEUX_BROWSER={}", bayeux.cookie.clone().unwrap()),
        )
        .json(
            &json!([{"channel": "/meta/connect", "clientId": bayeux.client_id,
            "connectionType": "long-polling", "id": "x"}]),
        )
        .send()
        .await;
    assert!(
        sent.is_err(),
        "the connection is closed unanswered: {sent:?}"
    );
    // Nothing was delivered on the dropped connect: the event comes with the next one.
    let (events, reply) = bayeux.connect().await;
    assert_eq!(reply["successful"], true);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["data"]["payload"]["Name"], "D2");
}

#[tokio::test]
async fn overflow_and_gap_events_on_demand_and_custom_object_channels() {
    let emulator = start(Duration::from_millis(300)).await;
    let mut bayeux = Bayeux::new(&emulator);
    bayeux.handshake().await;
    let sub = bayeux
        .subscribe("/data/Account_Plan__ChangeEvent", json!(-1))
        .await;
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
async fn messages_without_the_browser_cookie_are_refused() {
    let emulator = start(Duration::from_millis(300)).await;
    let mut bayeux = Bayeux::new(&emulator);
    bayeux.handshake().await;
    bayeux.cookie = None;
    let sub = bayeux
        .subscribe("/data/AccountChangeEvent", json!(-1))
        .await;
    assert_eq!(sub["successful"], false);
    let client = bayeux.client_id.clone().unwrap();
    assert_eq!(
        sub["error"],
        format!(
            "400::Client {client} has established a session, but no BAYEUX_BROWSER cookie present"
        )
    );
}

#[test]
fn overflow_threshold_turns_the_rest_of_a_transaction_into_overflow_events() {
    let streaming = Streaming::new(StreamingConfig {
        overflow_threshold: 2,
        ..StreamingConfig::default()
    });
    let change = |object: &str, id: &str| RecordChange {
        object: object.into(),
        id: id.into(),
        kind: ChangeKind::Create,
        fields: Map::from_iter([("Name".to_string(), json!(id))]),
        changed_fields: vec![],
        committed_at: Utc::now(),
    };
    let origin = Origin::rest("005000000000001AAA", "62.0", Some("plansync"));
    let ids = streaming.publish_transaction(
        vec![
            change("Account", "a1"),
            change("Account", "a2"),
            change("Account", "a3"),
            change("Opportunity", "o1"),
            change("Account", "a4"),
        ],
        &origin,
    );
    assert_eq!(ids, vec![1, 2, 3, 4]);
    let events = streaming.retained();
    let types: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            let h = &e.data["payload"]["ChangeEventHeader"];
            (
                h["entityName"].as_str().unwrap().to_string(),
                h["changeType"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        types,
        vec![
            ("Account".into(), "CREATE".into()),
            ("Account".into(), "CREATE".into()),
            ("Account".into(), "GAP_OVERFLOW".into()),
            ("Opportunity".into(), "GAP_OVERFLOW".into()),
        ]
    );
    assert_eq!(
        events[0].data["payload"]["ChangeEventHeader"]["changeOrigin"],
        "com/salesforce/api/rest/62.0;client=plansync"
    );
}

#[test]
fn replay_options_start_where_the_docs_say() {
    let streaming = Streaming::new(StreamingConfig {
        retention_count: 3,
        ..StreamingConfig::default()
    });
    assert_eq!(streaming.start_after(-1), Some(0));
    assert_eq!(streaming.start_after(-2), Some(0));
    assert_eq!(streaming.start_after(0), Some(0));
    assert_eq!(streaming.start_after(1), None, "not given yet");
    for _ in 0..5 {
        streaming.publish_overflow("Account");
    }
    // Events 1 and 2 were dropped: replaying after 2 loses nothing, after 1 would.
    assert_eq!(streaming.start_after(-1), Some(5));
    assert_eq!(streaming.start_after(-2), Some(2));
    assert_eq!(streaming.start_after(1), None);
    assert_eq!(streaming.start_after(2), Some(2));
    assert_eq!(streaming.start_after(5), Some(5));
    assert_eq!(streaming.start_after(6), None);
    assert_eq!(streaming.start_after(-3), None);
}

#[test]
fn channel_names_follow_the_change_event_names() {
    assert_eq!(channel_of("Account"), "/data/AccountChangeEvent");
    assert_eq!(
        channel_of("Account_Plan__c"),
        "/data/Account_Plan__ChangeEvent"
    );
    assert_eq!(schema_id("Account"), schema_id("Account"));
    assert_ne!(schema_id("Account"), schema_id("Opportunity"));
}

#[tokio::test]
async fn an_undelete_publishes_the_restored_record() {
    let emulator = start(Duration::from_millis(300)).await;
    let id = create_account(&emulator, "Lazarus").await;
    let (status, _) = rest(
        &emulator,
        reqwest::Method::DELETE,
        &format!("/sobjects/Account/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let mut bayeux = Bayeux::new(&emulator);
    bayeux.handshake().await;
    bayeux
        .subscribe("/data/AccountChangeEvent", json!(-1))
        .await;
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
async fn a_client_that_stays_away_is_forgotten() {
    let emulator = Emulator::builder()
        .streaming(StreamingConfig {
            long_poll_timeout: Duration::from_millis(100),
            client_idle_limit: Duration::from_millis(300),
            ..StreamingConfig::default()
        })
        .start()
        .await
        .unwrap();
    let mut bayeux = Bayeux::new(&emulator);
    bayeux.handshake().await;
    bayeux
        .subscribe("/data/AccountChangeEvent", json!(-1))
        .await;
    // Reconnecting within the limit keeps it.
    for _ in 0..3 {
        let (_, reply) = bayeux.connect().await;
        assert_eq!(reply["successful"], true);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, reply) = bayeux.connect().await;
    assert_eq!(reply["error"], "403::Unknown client");
    assert_eq!(emulator.streaming().client_count(), 0);
}

#[test]
fn the_journal_records_committed_writes_only() {
    use crate::emulator::org::Org;
    use crate::metadata::standard::catalog;
    let now = Utc::now();
    let mut org = Org::new(catalog(false).unwrap(), now);
    let fields = |v: Value| v.as_object().unwrap().clone();
    let quiet = org.create("Account", &fields(json!({"Name": "Q"})), now);
    assert!(quiet.is_ok());
    assert!(
        org.take_changes().is_empty(),
        "journaling starts switched off"
    );

    org.journal_changes(true);
    let id = org
        .create(
            "Account",
            &fields(json!({"Name": "J", "Industry": "Energy"})),
            now,
        )
        .unwrap();
    org.update(
        "Account",
        &id,
        &fields(json!({"Industry": null, "Phone": "555"})),
        now,
    )
    .unwrap();
    let sp = org.savepoint();
    org.update("Account", &id, &fields(json!({"Name": "Gone"})), now)
        .unwrap();
    assert!(
        org.take_changes().is_empty(),
        "nothing is committed inside a savepoint"
    );
    org.rollback_to(sp);
    org.delete(Some("Account"), &id, now).unwrap();
    let changes = org.take_changes();
    let kinds: Vec<ChangeKind> = changes.iter().map(|c| c.kind).collect();
    assert_eq!(
        kinds,
        vec![ChangeKind::Create, ChangeKind::Update, ChangeKind::Delete],
        "the rolled back update left the journal"
    );
    assert_eq!(changes[0].fields["Name"], "J");
    assert!(!changes[0].fields.contains_key("IsDeleted"));
    let update = &changes[1];
    assert_eq!(
        update.fields["Industry"],
        Value::Null,
        "a cleared field is sent as null"
    );
    assert_eq!(update.fields["Phone"], "555");
    for name in ["Industry", "Phone", "LastModifiedDate"] {
        assert!(update.changed_fields.iter().any(|f| f == name), "{name}");
    }
    assert!(!update.changed_fields.iter().any(|f| f == "SystemModstamp"));
    assert!(!update.changed_fields.iter().any(|f| f == "Name"));
    assert!(changes[2].fields.is_empty());
    assert!(org.take_changes().is_empty());
}

#[test]
fn events_older_than_the_retention_age_are_dropped() {
    let streaming = Streaming::new(StreamingConfig {
        retention_age: Duration::from_millis(50),
        ..StreamingConfig::default()
    });
    streaming.publish_overflow("Account");
    assert_eq!(streaming.retained().len(), 1);
    std::thread::sleep(Duration::from_millis(120));
    assert!(streaming.retained().is_empty());
    assert_eq!(
        streaming.start_after(1),
        Some(1),
        "nothing after 1 was lost"
    );
    assert_eq!(streaming.start_after(0), None, "event 1 is gone");
    assert_eq!(streaming.start_after(-2), Some(1));
}

#[tokio::test]
async fn a_composite_request_is_one_transaction_and_names_the_calling_client() {
    let emulator = start(Duration::from_millis(300)).await;
    let id = create_account(&emulator, "Comp").await;
    let mut bayeux = Bayeux::new(&emulator);
    bayeux.handshake().await;
    bayeux.subscribe(ALL_CHANGE_EVENTS, json!(-1)).await;
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
async fn the_fault_spec_schedules_connect_faults() {
    let emulator = start(Duration::from_millis(100)).await;
    emulator
        .set_faults_str("connect-forget@2,connect-expire@4")
        .unwrap();
    let mut bayeux = Bayeux::new(&emulator);
    bayeux.handshake().await;
    bayeux
        .subscribe("/data/AccountChangeEvent", json!(-1))
        .await;
    let (_, first) = bayeux.connect().await;
    assert_eq!(first["successful"], true);
    let (_, second) = bayeux.connect().await;
    assert_eq!(second["error"], "403::Unknown client");
    assert_eq!(second["advice"]["reconnect"], "handshake");
    bayeux.handshake().await;
    bayeux
        .subscribe("/data/AccountChangeEvent", json!(-1))
        .await;
    let (_, third) = bayeux.connect().await;
    assert_eq!(third["successful"], true);
    let (_, fourth) = bayeux.connect().await;
    assert_eq!(fourth["error"], "401::Authentication invalid");
    assert_eq!(fourth["advice"]["reconnect"], "none");
    // The session really ended: the REST API refuses the token too.
    let status = reqwest::Client::new()
        .get(format!("{}{API}/limits", emulator.base_url()))
        .bearer_auth(&bayeux.token)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status.as_u16(), 401);
}

#[tokio::test]
async fn shutdown_does_not_wait_for_held_connects() {
    let emulator = start(Duration::from_secs(60)).await;
    let mut bayeux = Bayeux::new(&emulator);
    bayeux.handshake().await;
    bayeux
        .subscribe("/data/AccountChangeEvent", json!(-1))
        .await;
    let held = tokio::spawn(async move { bayeux.connect().await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(10), emulator.shutdown())
        .await
        .expect("shutdown ends without waiting for the long poll");
    assert!(started.elapsed() < Duration::from_secs(5));
    let (events, reply) = held.await.unwrap();
    assert!(events.is_empty());
    assert_eq!(reply["successful"], true);
}

#[tokio::test]
async fn disconnect_versions_and_the_appended_message_type() {
    let emulator = start(Duration::from_millis(100)).await;
    let http = reqwest::Client::new();
    let token = emulator.access_token();
    let handshake = json!([{"channel": "/meta/handshake", "version": "1.0",
        "supportedConnectionTypes": ["long-polling"], "id": "1"}]);
    // CometD clients may append the message type to the URL.
    let response = http
        .post(format!("{}/cometd/62.0/handshake", emulator.base_url()))
        .bearer_auth(&token)
        .json(&handshake)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body[0]["successful"], true, "{body}");
    // Versions before 37.0 and a missing version are refused.
    for (path, text) in [
        ("/cometd/36.0", "400::Unsupported API version."),
        (
            "/cometd/latest",
            "400::API version in the URI is mandatory.",
        ),
    ] {
        let response = http
            .post(format!("{}{path}", emulator.base_url()))
            .bearer_auth(&token)
            .json(&handshake)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 400, "{path}");
        let body: Value = response.json().await.unwrap();
        assert!(
            body[0]["error"].as_str().unwrap().starts_with(text),
            "{path}: {body}"
        );
    }

    let mut bayeux = Bayeux::new(&emulator);
    let (_, replies) = bayeux
        .post(json!([{"channel": "/meta/handshake", "version": "1.0",
            "supportedConnectionTypes": ["websocket"], "id": "w"}]))
        .await;
    assert_eq!(replies[0]["successful"], false);
    assert_eq!(
        replies[0]["error"],
        "400::Invalid connection type websocket"
    );
    bayeux.handshake().await;
    let client = bayeux.client_id.clone();
    let (_, replies) = bayeux
        .post(json!([{"channel": "/meta/connect", "clientId": client,
            "connectionType": "callback-polling", "id": "c"}]))
        .await;
    assert_eq!(
        replies[0]["error"],
        "400::Invalid connection type callback-polling"
    );
    let (status, replies) = bayeux
        .post(json!([{"channel": "/meta/disconnect", "clientId": client, "id": "d"}]))
        .await;
    assert_eq!(status, 200);
    assert_eq!(replies[0]["successful"], true, "{replies:?}");
    assert_eq!(replies[0]["channel"], "/meta/disconnect");
    let (_, reply) = bayeux.connect().await;
    assert_eq!(reply["error"], "403::Unknown client");
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
