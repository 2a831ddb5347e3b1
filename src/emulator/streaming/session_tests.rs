//! A CometD client's session with the emulator: handshake again after `403::Unknown client`,
//! long polls held and answered, expired sessions, dropped and refused connections, clients
//! forgotten, the scheduled connect faults, shutdown and disconnect.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::tests::{create_account, rename, start, Bayeux, ACCOUNTS, API};
use super::*;
use crate::emulator::Emulator;

#[tokio::test]
async fn an_unknown_client_is_told_to_handshake_and_a_new_handshake_works() {
    let emulator = start(Duration::from_millis(300)).await;
    let id = create_account(&emulator, "U").await;
    let (mut bayeux, _) = Bayeux::subscribed(&emulator, ACCOUNTS, json!(-1)).await;
    let old = bayeux.client_id.clone();
    emulator.streaming().forget_clients();
    let (events, reply) = bayeux.connect().await;
    assert!(events.is_empty());
    assert_eq!(reply["successful"], false);
    assert_eq!(reply["error"], "403::Unknown client");
    assert_eq!(reply["advice"]["reconnect"], "handshake");

    bayeux.handshake().await;
    assert_ne!(bayeux.client_id, old);
    let sub = bayeux.subscribe(ACCOUNTS, json!(-1)).await;
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
    let (mut bayeux, _) = Bayeux::subscribed(&emulator, ACCOUNTS, json!(-1)).await;
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
    let (mut bayeux, _) = Bayeux::subscribed(&emulator, ACCOUNTS, json!(-1)).await;
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
async fn an_expired_session_gets_401_and_a_denied_handshake() {
    let emulator = start(Duration::from_secs(20)).await;
    let (mut bayeux, _) = Bayeux::subscribed(&emulator, ACCOUNTS, json!(-1)).await;
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
    let (mut bayeux, _) = Bayeux::subscribed(&emulator, ACCOUNTS, json!(-1)).await;
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
async fn messages_without_the_browser_cookie_are_refused() {
    let emulator = start(Duration::from_millis(300)).await;
    let mut bayeux = Bayeux::new(&emulator);
    bayeux.handshake().await;
    bayeux.cookie = None;
    let sub = bayeux.subscribe(ACCOUNTS, json!(-1)).await;
    assert_eq!(sub["successful"], false);
    let client = bayeux.client_id.clone().unwrap();
    assert_eq!(
        sub["error"],
        format!(
            "400::Client {client} has established a session, but no BAYEUX_BROWSER cookie present"
        )
    );
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
    let (mut bayeux, _) = Bayeux::subscribed(&emulator, ACCOUNTS, json!(-1)).await;
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

#[tokio::test]
async fn the_fault_spec_schedules_connect_faults() {
    let emulator = start(Duration::from_millis(100)).await;
    emulator
        .set_faults_str("connect-forget@2,connect-expire@4")
        .unwrap();
    let (mut bayeux, _) = Bayeux::subscribed(&emulator, ACCOUNTS, json!(-1)).await;
    let (_, first) = bayeux.connect().await;
    assert_eq!(first["successful"], true);
    let (_, second) = bayeux.connect().await;
    assert_eq!(second["error"], "403::Unknown client");
    assert_eq!(second["advice"]["reconnect"], "handshake");
    bayeux.join(ACCOUNTS, json!(-1)).await;
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
    let (mut bayeux, _) = Bayeux::subscribed(&emulator, ACCOUNTS, json!(-1)).await;
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
