//! The CometD client against a small Bayeux server on 127.0.0.1 (axum): the handshake and
//! subscriptions with the replay extension, events, the cookie, `403::Unknown client`, a
//! refused token, a refused replayId, and a server without the endpoint.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use secrecy::SecretString;

use super::*;
use crate::crm::{AuthConfig, CrmConfig};

/// What the stub does with the next connect.
#[derive(Debug, Clone)]
enum Next {
    /// Deliver these event messages.
    Events(Vec<Value>),
    /// Answer `403::Unknown client` with advice handshake (the session is forgotten).
    UnknownClient,
    /// Answer `401::Authentication invalid` with advice none.
    AuthInvalid,
    /// Answer HTTP 401.
    Http401,
    /// Refuse with advice none (the delivery allocation is spent).
    LimitExceeded,
}

#[derive(Default)]
struct Bayeux {
    tokens: usize,
    clients: Vec<String>,
    script: VecDeque<Next>,
    /// (channel, replay from) of every subscribe.
    subscribes: Vec<(String, i64)>,
    /// The bearer token of every CometD request, and its cookie header.
    seen: Vec<(String, String, Option<String>)>,
    /// Refuse replayIds >= 0 on subscribe as outside the retention window.
    refuse_stored_replay: bool,
    /// The token the server accepts on a handshake (others are denied).
    valid_token: Option<String>,
}

type Shared = Arc<Mutex<Bayeux>>;

async fn token(State((base, state)): State<(String, Shared)>) -> Json<Value> {
    let mut s = state.lock().unwrap();
    s.tokens += 1;
    Json(json!({
        "access_token": format!("tok-{}", s.tokens),
        "instance_url": base,
        "id": "https://login.example/id/00D/005",
        "token_type": "Bearer",
        "issued_at": "1700000000000",
        "signature": "x",
    }))
}

fn event(channel: &str, replay: i64, entity: &str, change: &str, ids: &[&str]) -> Value {
    json!({
        "channel": channel,
        "data": {
            "schema": "abc",
            "payload": {
                "ChangeEventHeader": {
                    "entityName": entity, "recordIds": ids, "changeType": change,
                    "changedFields": ["Amount", "LastModifiedDate"],
                    "commitTimestamp": 1764720000123_i64, "transactionKey": "0001-tk",
                    "changeOrigin": "com/salesforce/api/rest/62.0", "sequenceNumber": 1,
                    "commitNumber": 42, "commitUser": "005xx",
                },
                "Amount": 5000,
            },
            "event": {"replayId": replay},
        },
    })
}

async fn cometd(
    State((_, state)): State<(String, Shared)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .trim_start_matches("Bearer ")
        .to_string();
    let cookie = headers
        .get("cookie")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let message = body[0].clone();
    let channel = message["channel"].as_str().unwrap_or_default().to_string();
    let mut s = state.lock().unwrap();
    s.seen
        .push((channel.clone(), bearer.clone(), cookie.clone()));
    let reply = match channel.as_str() {
        "/meta/handshake" => {
            if s.valid_token.as_ref().is_some_and(|t| *t != bearer) {
                json!([{"channel": "/meta/handshake", "successful": false,
                        "error": "403::Handshake denied",
                        "ext": {"sfdc": {"failureReason": "401::Authentication invalid"}},
                        "advice": {"reconnect": "none"}}])
            } else {
                let id = format!("client-{}", s.clients.len() + 1);
                s.clients.push(id.clone());
                let mut response = Json(json!([{"channel": "/meta/handshake", "successful": true,
                        "clientId": id, "version": "1.0", "ext": {"replay": true},
                        "supportedConnectionTypes": ["long-polling"],
                        "advice": {"timeout": 2000, "interval": 0, "reconnect": "retry"}}]))
                .into_response();
                response.headers_mut().insert(
                    "set-cookie",
                    "BAYEUX_BROWSER=b-1; Path=/; Secure".parse().unwrap(),
                );
                return response;
            }
        }
        "/meta/subscribe" => {
            let sub = message["subscription"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let from = message["ext"]["replay"][&sub].as_i64().unwrap_or(i64::MIN);
            s.subscribes.push((sub.clone(), from));
            if s.refuse_stored_replay && from >= 0 {
                json!([{"channel": "/meta/subscribe", "successful": false, "subscription": sub,
                        "error": format!("400::The replayId {{{from}}} you provided was invalid.  \
                            Please provide a valid ID, -2 to replay all events, or -1 to replay \
                            only new events.")}])
            } else if sub.contains("Nope") {
                json!([{"channel": "/meta/subscribe", "successful": false, "subscription": sub,
                        "error": format!("400::The channel you requested to subscribe to does \
                            not exist {{{sub}}}")}])
            } else {
                json!([{"channel": "/meta/subscribe", "successful": true, "subscription": sub}])
            }
        }
        "/meta/connect" => {
            let client = message["clientId"].as_str().unwrap_or_default().to_string();
            if !s.clients.contains(&client) {
                json!([{"channel": "/meta/connect", "successful": false, "clientId": client,
                        "error": "403::Unknown client", "advice": {"reconnect": "handshake",
                        "interval": 0}}])
            } else {
                match s.script.pop_front() {
                    Some(Next::Events(mut events)) => {
                        events.push(json!({"channel": "/meta/connect", "successful": true,
                            "clientId": client, "advice": {"timeout": 2000, "interval": 0,
                            "reconnect": "retry"}}));
                        Value::Array(events)
                    }
                    Some(Next::UnknownClient) => {
                        s.clients.retain(|c| *c != client);
                        json!([{"channel": "/meta/connect", "successful": false,
                                "clientId": client, "error": "403::Unknown client",
                                "advice": {"reconnect": "handshake", "interval": 0}}])
                    }
                    Some(Next::AuthInvalid) => {
                        json!([{"channel": "/meta/connect", "successful": false,
                                "clientId": client, "error": "401::Authentication invalid",
                                "advice": {"reconnect": "none", "interval": 0}}])
                    }
                    Some(Next::Http401) => return StatusCode::UNAUTHORIZED.into_response(),
                    Some(Next::LimitExceeded) => {
                        json!([{"channel": "/meta/connect", "successful": false,
                                "clientId": client,
                                "error": "403::Organization total events daily limit exceeded",
                                "advice": {"reconnect": "none"}}])
                    }
                    None => json!([{"channel": "/meta/connect", "successful": true,
                            "clientId": client, "advice": {"timeout": 2000, "interval": 0,
                            "reconnect": "retry"}}]),
                }
            }
        }
        "/meta/disconnect" => json!([{"channel": "/meta/disconnect", "successful": true}]),
        _ => json!([{"channel": channel, "successful": false, "error": "400::Unknown channel"}]),
    };
    Json(reply).into_response()
}

/// A Bayeux server with its token endpoint; `cometd` false leaves `/cometd/62.0` out.
async fn server(cometd_endpoint: bool) -> (Url, Shared) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let state: Shared = Arc::new(Mutex::new(Bayeux::default()));
    let mut app = Router::new().route("/services/oauth2/token", post(token));
    if cometd_endpoint {
        app = app.route("/cometd/62.0", post(cometd));
    }
    let app = app.with_state((base.clone(), state.clone()));
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (Url::parse(&base).unwrap(), state)
}

fn crm(url: &Url) -> CrmClient {
    CrmClient::new(CrmConfig {
        login_url: url.clone(),
        instance_url: None,
        api_version: "62.0".into(),
        auth: AuthConfig::ClientCredentials {
            client_id: "id".into(),
            client_secret: SecretString::from("secret"),
        },
        timeout: Duration::from_secs(5),
        max_retries: 0,
    })
    .unwrap()
}

const OPP: &str = "/data/OpportunityChangeEvent";
const PLAN: &str = "/data/Account_Plan__ChangeEvent";

fn client(url: &Url, stored: &[(&str, i64)]) -> CometdClient {
    CometdClient::new(
        crm(url),
        vec![OPP.to_string(), PLAN.to_string()],
        stored.iter().map(|(c, r)| (c.to_string(), *r)).collect(),
    )
    .unwrap()
}

#[test]
fn channels_are_named_as_the_crm_names_them() {
    assert_eq!(object_channel("Account"), "/data/AccountChangeEvent");
    assert_eq!(object_channel("Opportunity"), OPP);
    assert_eq!(object_channel("Account_Plan__c"), PLAN);
    assert_eq!(
        object_channel("Account_Plan_Account__c"),
        "/data/Account_Plan_Account__ChangeEvent"
    );
}

#[test]
fn change_types_tell_gaps_and_overflows() {
    for (text, gap) in [
        ("CREATE", false),
        ("UPDATE", false),
        ("DELETE", false),
        ("UNDELETE", false),
        ("GAP_CREATE", true),
        ("GAP_UPDATE", true),
        ("GAP_DELETE", true),
        ("GAP_UNDELETE", true),
        ("GAP_OVERFLOW", true),
    ] {
        let parsed = ChangeType::parse(text);
        assert_eq!(parsed.is_gap(), gap, "{text}");
        assert_eq!(parsed.to_string(), text);
    }
    assert_eq!(ChangeType::parse("GAP_OVERFLOW"), ChangeType::Overflow);
    assert_eq!(
        ChangeType::parse("SNAPSHOT"),
        ChangeType::Other("SNAPSHOT".into())
    );
}

#[test]
fn an_event_message_reads_as_its_header() {
    let e = parse_event(&event(OPP, 17, "Opportunity", "UPDATE", &["006A", "006B"])).unwrap();
    assert_eq!(e.channel, OPP);
    assert_eq!(e.replay_id, 17);
    assert_eq!(e.entity_name, "Opportunity");
    assert_eq!(e.change_type, ChangeType::Update);
    assert_eq!(e.record_ids, ["006A", "006B"]);
    assert_eq!(e.changed_fields, ["Amount", "LastModifiedDate"]);
    assert_eq!(
        e.commit_timestamp.unwrap().to_rfc3339(),
        "2025-12-03T00:00:00.123+00:00"
    );
    assert_eq!(e.transaction_key.as_deref(), Some("0001-tk"));
    // Not a change event: no header.
    assert_eq!(
        parse_event(&json!({"channel": OPP, "data": {"event": {"replayId": 1}}})),
        None
    );
}

#[tokio::test]
async fn handshake_subscribes_every_channel_from_its_position_and_delivers_events() {
    let (url, state) = server(true).await;
    state.lock().unwrap().script.push_back(Next::Events(vec![
        event(OPP, 20, "Opportunity", "UPDATE", &["006A"]),
        event(PLAN, 21, "Account_Plan__c", "GAP_OVERFLOW", &[]),
    ]));
    let mut c = client(&url, &[(OPP, 11)]);
    assert!(!c.is_subscribed());
    let opened = c.poll().await.unwrap();
    assert!(opened.resubscribed && opened.events.is_empty());
    assert!(c.is_subscribed());
    let first = c.poll().await.unwrap();
    assert!(!first.resubscribed);
    assert_eq!(
        first
            .events
            .iter()
            .map(|e| (e.replay_id, e.change_type.clone()))
            .collect::<Vec<_>>(),
        vec![(20, ChangeType::Update), (21, ChangeType::Overflow)]
    );
    // The stored position for one channel, -1 (new events only) for the other.
    assert_eq!(
        state.lock().unwrap().subscribes,
        vec![(OPP.to_string(), 11), (PLAN.to_string(), REPLAY_NEW)]
    );
    // The advice is followed, and the positions move with the events.
    assert_eq!(c.long_poll_timeout(), Duration::from_millis(2000));
    assert_eq!(
        c.replay_positions(),
        &BTreeMap::from([(OPP.to_string(), 20), (PLAN.to_string(), 21)])
    );
    // A quiet poll: nothing, no new handshake.
    let quiet = c.poll().await.unwrap();
    assert!(!quiet.resubscribed && quiet.events.is_empty());
    let s = state.lock().unwrap();
    assert_eq!(s.clients.len(), 1);
    // The session's cookie goes back with every request after the handshake.
    let after: Vec<_> = s.seen.iter().skip(1).collect();
    assert!(!after.is_empty());
    for (channel, bearer, cookie) in after {
        assert_eq!(cookie.as_deref(), Some("BAYEUX_BROWSER=b-1"), "{channel}");
        assert_eq!(bearer, "tok-1");
    }
}

#[tokio::test]
async fn unknown_client_rehandshakes_and_resubscribes_after_the_last_event() {
    let (url, state) = server(true).await;
    {
        let mut s = state.lock().unwrap();
        s.script.push_back(Next::Events(vec![event(
            OPP,
            30,
            "Opportunity",
            "CREATE",
            &["006A"],
        )]));
        s.script.push_back(Next::UnknownClient);
    }
    let mut c = client(&url, &[]);
    assert!(c.poll().await.unwrap().resubscribed);
    assert_eq!(c.poll().await.unwrap().events.len(), 1);
    // The server forgot the client: no error, the session is dropped...
    let dropped = c.poll().await.unwrap();
    assert!(dropped.events.is_empty());
    assert!(!c.is_subscribed());
    // ...and the next poll handshakes again and resubscribes from replayId 30.
    let back = c.poll().await.unwrap();
    assert!(back.resubscribed);
    let s = state.lock().unwrap();
    let handshakes = s.seen.iter().filter(|x| x.0 == "/meta/handshake").count();
    assert_eq!(handshakes, 2);
    assert_eq!(
        s.subscribes[2..],
        [(OPP.to_string(), 30), (PLAN.to_string(), REPLAY_NEW)]
    );
    assert_eq!(s.tokens, 1, "no new token for an unknown client");
}

#[tokio::test]
async fn a_refused_token_is_replaced_through_the_crm_client() {
    for refusal in [Next::AuthInvalid, Next::Http401] {
        let (url, state) = server(true).await;
        {
            let mut s = state.lock().unwrap();
            s.script.push_back(Next::Events(Vec::new()));
            s.script.push_back(refusal.clone());
        }
        let mut c = client(&url, &[]);
        c.poll().await.unwrap();
        c.poll().await.unwrap();
        // The refusal: a new token is fetched and the session dropped.
        c.poll().await.unwrap();
        assert!(!c.is_subscribed(), "{refusal:?}");
        let back = c.poll().await.unwrap();
        assert!(back.resubscribed, "{refusal:?}");
        let s = state.lock().unwrap();
        assert_eq!(s.tokens, 2, "{refusal:?}");
        let last = s.seen.last().unwrap();
        assert_eq!(last.1, "tok-2", "{refusal:?}");
    }
}

#[tokio::test]
async fn a_handshake_denied_for_the_token_fetches_a_new_one_once() {
    let (url, state) = server(true).await;
    // The server accepts only the second token.
    state.lock().unwrap().valid_token = Some("tok-2".into());
    let mut c = client(&url, &[]);
    let d = c.poll().await.unwrap();
    assert!(d.resubscribed);
    assert_eq!(state.lock().unwrap().tokens, 2);

    // A server that denies every token: one retry, then a clear error.
    let (url, state) = server(true).await;
    state.lock().unwrap().valid_token = Some("never".into());
    let mut c = client(&url, &[]);
    let err = c.poll().await.unwrap_err();
    assert!(
        matches!(&err, StreamingError::Handshake { error } if error.contains("401::Authentication invalid")),
        "{err}"
    );
    assert_eq!(state.lock().unwrap().tokens, 2);
}

#[tokio::test]
async fn a_replay_id_outside_retention_falls_back_to_new_events_and_says_so() {
    let (url, state) = server(true).await;
    state.lock().unwrap().refuse_stored_replay = true;
    let mut c = client(&url, &[(PLAN, 99)]);
    let d = c.poll().await.unwrap();
    assert_eq!(d.replay_reset, vec![PLAN.to_string()]);
    assert!(d.refused.is_empty());
    assert_eq!(
        state.lock().unwrap().subscribes,
        vec![
            (OPP.to_string(), REPLAY_NEW),
            (PLAN.to_string(), 99),
            (PLAN.to_string(), REPLAY_NEW)
        ]
    );
}

#[tokio::test]
async fn refusals_are_errors_that_name_what_to_do() {
    // No CometD endpoint: unsupported, with how to turn streaming off.
    let (url, _) = server(false).await;
    let err = client(&url, &[]).poll().await.unwrap_err();
    assert!(
        matches!(err, StreamingError::Unsupported { status: 404, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("enabled = false"), "{err}");

    // A channel the org does not have.
    let (url, _) = server(true).await;
    let mut c = CometdClient::new(
        crm(&url),
        vec!["/data/NopeChangeEvent".to_string()],
        BTreeMap::new(),
    )
    .unwrap();
    let err = c.poll().await.unwrap_err();
    assert!(
        matches!(&err, StreamingError::Subscribe { channel, .. } if channel == "/data/NopeChangeEvent"),
        "{err}"
    );
    assert!(err.to_string().contains("Change Data Capture"), "{err}");

    // One refused channel among others: the rest is subscribed, the refused one named.
    let mut c = CometdClient::new(
        crm(&url),
        vec![OPP.to_string(), "/data/NopeChangeEvent".to_string()],
        BTreeMap::new(),
    )
    .unwrap();
    let d = c.poll().await.unwrap();
    assert!(c.is_subscribed());
    assert_eq!(d.refused.len(), 1);
    assert_eq!(d.refused[0].0, "/data/NopeChangeEvent");
    assert!(d.refused[0].1.contains("does not exist"), "{:?}", d.refused);

    // The server ends the session with advice none.
    let (url, state) = server(true).await;
    {
        let mut s = state.lock().unwrap();
        s.script.push_back(Next::Events(Vec::new()));
        s.script.push_back(Next::LimitExceeded);
    }
    let mut c = client(&url, &[]);
    c.poll().await.unwrap();
    c.poll().await.unwrap();
    let err = c.poll().await.unwrap_err();
    assert!(err.to_string().contains("daily limit exceeded"), "{err}");
    assert!(!c.is_subscribed());
}
