//! The CometD endpoint `POST /cometd/NN.0`: Bayeux messages in a JSON array (or one object),
//! answered in a JSON array. Meta channels: `/meta/handshake`, `/meta/subscribe` (with the
//! replay extension), `/meta/unsubscribe`, `/meta/connect` (long polling) and
//! `/meta/disconnect`. The rules and their sources are in `docs/streaming.md`.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::{json, Map, Value};

use super::{change_event_name, has_change_events, ALL_CHANGE_EVENTS, MAX_EVENTS_PER_CONNECT};
use crate::emulator::conn::ConnectionKill;
use crate::emulator::faults::ConnectFault;
use crate::emulator::server::Shared;
use crate::emulator::wire::MAX_VERSION;

/// The cookie the handshake sets and later messages must carry.
pub const BROWSER_COOKIE: &str = "BAYEUX_BROWSER";

/// The oldest API version the CRM's Streaming API serves.
const MIN_VERSION: u32 = 37;

/// A handshaken client.
#[derive(Debug)]
pub(crate) struct Client {
    /// The access token it handshook with.
    token: String,
    /// The `BAYEUX_BROWSER` cookie value it was given.
    browser: String,
    subscriptions: Vec<Subscription>,
    last_seen: Instant,
    /// Connects being held for it now.
    connecting: u32,
    /// Connects answered so far (the first carries the advice).
    connects: u64,
}

#[derive(Debug)]
struct Subscription {
    channel: String,
    /// The last replay id delivered (or the replay option's starting point).
    after: u64,
}

/// One incoming message's channel, id and client id, echoed in its reply.
struct Incoming<'a> {
    msg: &'a Map<String, Value>,
    channel: String,
    id: Option<Value>,
    client_id: Option<String>,
}

impl Incoming<'_> {
    fn reply(&self, successful: bool) -> Map<String, Value> {
        let mut r = Map::new();
        if let Some(client) = &self.client_id {
            r.insert("clientId".into(), json!(client));
        }
        r.insert("channel".into(), json!(self.channel));
        if let Some(id) = &self.id {
            r.insert("id".into(), id.clone());
        }
        r.insert("successful".into(), json!(successful));
        r
    }

    fn error(&self, error: &str) -> Value {
        let mut r = self.reply(false);
        r.insert("error".into(), json!(error));
        Value::Object(r)
    }

    fn unknown_client(&self) -> Value {
        let mut r = Map::new();
        r.insert(
            "advice".into(),
            json!({"interval": 0, "reconnect": "handshake"}),
        );
        r.insert("channel".into(), json!(self.channel));
        if let Some(id) = &self.id {
            r.insert("id".into(), id.clone());
        }
        r.insert("error".into(), json!("403::Unknown client"));
        r.insert("successful".into(), json!(false));
        Value::Object(r)
    }

    fn auth_invalid(&self) -> Value {
        let mut r = self.reply(false);
        r.insert("advice".into(), json!({"interval": 0, "reconnect": "none"}));
        r.insert("error".into(), json!("401::Authentication invalid"));
        Value::Object(r)
    }
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// `59.0` from `/cometd/59.0[/...]`, as a whole number of the major version.
fn version_of(uri: &Uri) -> Option<u32> {
    let segment = uri.path().split('/').nth(2)?;
    let (major, minor) = segment.split_once('.')?;
    if minor != "0" || major.is_empty() || !major.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    major.parse().ok()
}

fn answer(status: StatusCode, messages: Vec<Value>, cookie: Option<&str>) -> Response {
    let body = Value::Array(messages).to_string();
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json;charset=UTF-8"),
    );
    if let Some(value) = cookie {
        let text = format!("{BROWSER_COOKIE}={value}; Path=/; HttpOnly");
        if let Ok(v) = HeaderValue::from_str(&text) {
            response.headers_mut().insert(header::SET_COOKIE, v);
        }
    }
    response
}

fn bad_request(error: &str) -> Response {
    answer(
        StatusCode::BAD_REQUEST,
        vec![json!({"successful": false, "error": error})],
        None,
    )
}

/// A client id in the CRM's form: lowercase letters and digits.
fn new_client_id() -> String {
    crate::emulator::auth::random_token(27).to_ascii_lowercase()
}

/// `POST /cometd/{version}` (and `/cometd/{version}/{anything}`, where CometD clients append
/// the message type).
pub(crate) async fn cometd(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(kill): ConnectInfo<ConnectionKill>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(version) = version_of(&uri) else {
        return bad_request(&format!(
            "400::API version in the URI is mandatory. URI format: '/cometd/{MAX_VERSION}.0'"
        ));
    };
    if !(MIN_VERSION..=MAX_VERSION).contains(&version) {
        return bad_request(&format!(
            "400::Unsupported API version. Only API versions '{MIN_VERSION}.0' and later are supported. URI format: '/cometd/{MAX_VERSION}.0'"
        ));
    }
    let messages: Vec<Map<String, Value>> = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Array(items)) => items
            .into_iter()
            .filter_map(|v| match v {
                Value::Object(m) => Some(m),
                _ => None,
            })
            .collect(),
        Ok(Value::Object(m)) => vec![m],
        _ => return bad_request("400::The request body is not a JSON array of Bayeux messages"),
    };
    let token = crate::emulator::auth::bearer(&headers)
        .map(str::to_string)
        .unwrap_or_default();
    let browser = cookie(&headers, BROWSER_COOKIE);
    let streaming = &shared.streaming;
    sweep(&shared);
    let mut replies = Vec::new();
    let mut set_cookie: Option<String> = None;
    for msg in &messages {
        let incoming = Incoming {
            msg,
            channel: msg
                .get("channel")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            id: msg.get("id").cloned(),
            client_id: msg
                .get("clientId")
                .and_then(Value::as_str)
                .map(str::to_string),
        };
        let session_valid = shared.sessions.is_valid(&token, Utc::now());
        if incoming.channel == "/meta/handshake" {
            if !session_valid {
                let mut r = incoming.reply(false);
                r.insert(
                    "ext".into(),
                    json!({"sfdc": {"failureReason": "401::Authentication invalid"}}),
                );
                r.insert("advice".into(), json!({"reconnect": "none"}));
                r.insert("error".into(), json!("403::Handshake denied"));
                return answer(StatusCode::UNAUTHORIZED, vec![Value::Object(r)], None);
            }
            if let Some(types) = msg
                .get("supportedConnectionTypes")
                .and_then(Value::as_array)
            {
                if !types.iter().any(|t| t == "long-polling") {
                    let names: Vec<&str> = types.iter().filter_map(Value::as_str).collect();
                    replies.push(
                        incoming
                            .error(&format!("400::Invalid connection type {}", names.join(","))),
                    );
                    continue;
                }
            }
            let value = browser
                .clone()
                .or_else(|| set_cookie.clone())
                .unwrap_or_else(|| crate::emulator::auth::random_token(24));
            if browser.is_none() {
                set_cookie = Some(value.clone());
            }
            replies.push(handshake(&shared, &incoming, &token, value));
            continue;
        }
        let Some(client_id) = incoming.client_id.clone() else {
            replies.push(incoming.unknown_client());
            continue;
        };
        if !session_valid {
            streaming.clients().remove(&client_id);
            replies.push(incoming.auth_invalid());
            continue;
        }
        let cookie_ok = {
            let clients = streaming.clients();
            match clients.get(&client_id) {
                None => {
                    replies.push(incoming.unknown_client());
                    continue;
                }
                Some(c) => {
                    !streaming.config().require_cookie
                        || browser.as_deref() == Some(c.browser.as_str())
                        || set_cookie.as_deref() == Some(c.browser.as_str())
                }
            }
        };
        if !cookie_ok {
            replies.push(incoming.error(&format!(
                "400::Client {client_id} has established a session, but no {BROWSER_COOKIE} cookie present"
            )));
            continue;
        }
        touch(&shared, &client_id);
        match incoming.channel.as_str() {
            "/meta/connect"
                if incoming
                    .msg
                    .get("connectionType")
                    .and_then(Value::as_str)
                    .is_some_and(|t| t != "long-polling") =>
            {
                let kind = incoming.msg["connectionType"].as_str().unwrap_or_default();
                replies.push(incoming.error(&format!("400::Invalid connection type {kind}")));
            }
            "/meta/connect" => match streaming.next_connect_fault() {
                Some(ConnectFault::Drop) => {
                    kill.kill();
                    return StatusCode::INTERNAL_SERVER_ERROR.into_response();
                }
                Some(ConnectFault::Forget) => {
                    streaming.clients().remove(&client_id);
                    replies.push(incoming.unknown_client());
                }
                Some(ConnectFault::Expire) => {
                    shared.sessions.revoke(&token);
                    streaming.clients().remove(&client_id);
                    replies.push(incoming.auth_invalid());
                }
                None => replies.extend(connect(&shared, &incoming, &client_id, &token).await),
            },
            "/meta/subscribe" => replies.push(subscribe(&shared, &incoming, &client_id)),
            "/meta/unsubscribe" => replies.push(unsubscribe(&shared, &incoming, &client_id)),
            "/meta/disconnect" => {
                streaming.clients().remove(&client_id);
                streaming.wake();
                replies.push(Value::Object(incoming.reply(true)));
            }
            other => replies.push(incoming.error(&format!(
                "403::Publishing to {other} is not allowed: the emulator serves change events only"
            ))),
        }
    }
    answer(StatusCode::OK, replies, set_cookie.as_deref())
}

/// Forgets the clients that have been away longer than the idle limit.
fn sweep(shared: &Shared) {
    let limit = shared.streaming.config().client_idle_limit;
    shared
        .streaming
        .clients()
        .retain(|_, c| c.connecting > 0 || c.last_seen.elapsed() <= limit);
}

fn touch(shared: &Shared, client_id: &str) {
    if let Some(c) = shared.streaming.clients().get_mut(client_id) {
        c.last_seen = Instant::now();
    }
}

fn handshake(shared: &Shared, incoming: &Incoming<'_>, token: &str, browser: String) -> Value {
    let client_id = new_client_id();
    shared.streaming.clients().insert(
        client_id.clone(),
        Client {
            token: token.to_string(),
            browser,
            subscriptions: Vec::new(),
            last_seen: Instant::now(),
            connecting: 0,
            connects: 0,
        },
    );
    let mut r = Map::new();
    r.insert(
        "ext".into(),
        json!({"replay": true, "payload.format": true}),
    );
    r.insert("minimumVersion".into(), json!("1.0"));
    r.insert("clientId".into(), json!(client_id));
    r.insert("supportedConnectionTypes".into(), json!(["long-polling"]));
    r.insert("channel".into(), json!("/meta/handshake"));
    if let Some(id) = &incoming.id {
        r.insert("id".into(), id.clone());
    }
    r.insert("version".into(), json!("1.0"));
    r.insert("successful".into(), json!(true));
    Value::Object(r)
}

/// Whether `channel` names change events the org publishes.
fn channel_exists(shared: &Shared, channel: &str) -> bool {
    if channel == ALL_CHANGE_EVENTS {
        return true;
    }
    let Some(name) = channel.strip_prefix("/data/") else {
        return false;
    };
    let org = shared.read_org();
    let exists = org
        .catalog()
        .objects()
        .any(|o| has_change_events(&o.name) && change_event_name(&o.name) == name);
    exists
}

/// The replay option for `channel` in the subscribe message's `ext.replay` map: -1 when
/// absent.
fn replay_option(msg: &Map<String, Value>, channel: &str) -> Result<i64, String> {
    let Some(value) = msg
        .get("ext")
        .and_then(|e| e.get("replay"))
        .and_then(|r| r.get(channel))
    else {
        return Ok(-1);
    };
    match value {
        Value::Number(n) => n.as_i64().ok_or_else(|| n.to_string()),
        Value::String(s) => s.trim().parse::<i64>().map_err(|_| s.clone()),
        other => Err(other.to_string()),
    }
}

fn invalid_replay(value: &str) -> String {
    format!(
        "400::The replayId {{{value}}} you provided was invalid.  Please provide a valid ID, -2 to replay all events, or -1 to replay only new events."
    )
}

fn subscribe(shared: &Shared, incoming: &Incoming<'_>, client_id: &str) -> Value {
    let subscription = incoming.msg.get("subscription");
    let channel = match subscription.and_then(Value::as_str) {
        Some(c) if !c.is_empty() => c.to_string(),
        _ => return incoming.error("400::Channel name not specified"),
    };
    let with_subscription = |mut v: Value| {
        if let Value::Object(m) = &mut v {
            m.insert("subscription".into(), json!(channel));
        }
        v
    };
    if !channel.starts_with('/') {
        return with_subscription(
            incoming.error("400::Channel subscriptions must start with a leading '/'"),
        );
    }
    if !channel_exists(shared, &channel) {
        return with_subscription(incoming.error(&format!(
            "400::The channel you requested to subscribe to doesn't exist {{{channel}}}"
        )));
    }
    let start = match replay_option(incoming.msg, &channel) {
        Ok(n) => shared.streaming.start_after(n).ok_or_else(|| n.to_string()),
        Err(raw) => Err(raw),
    };
    let after = match start {
        Ok(after) => after,
        Err(raw) => return with_subscription(incoming.error(&invalid_replay(&raw))),
    };
    let mut clients = shared.streaming.clients();
    let Some(client) = clients.get_mut(client_id) else {
        return incoming.unknown_client();
    };
    client.subscriptions.retain(|s| s.channel != channel);
    client.subscriptions.push(Subscription {
        channel: channel.clone(),
        after,
    });
    drop(clients);
    // A held connect of this client may now have events to deliver.
    shared.streaming.wake();
    with_subscription(Value::Object(incoming.reply(true)))
}

fn unsubscribe(shared: &Shared, incoming: &Incoming<'_>, client_id: &str) -> Value {
    let channel = incoming
        .msg
        .get("subscription")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let mut clients = shared.streaming.clients();
    let Some(client) = clients.get_mut(client_id) else {
        return incoming.unknown_client();
    };
    let before = client.subscriptions.len();
    client.subscriptions.retain(|s| s.channel != channel);
    let removed = client.subscriptions.len() < before;
    drop(clients);
    let mut reply = if removed {
        Value::Object(incoming.reply(true))
    } else {
        incoming.error(&format!(
            "400::The client is not subscribed to {{{channel}}}"
        ))
    };
    if let Value::Object(m) = &mut reply {
        m.insert("subscription".into(), json!(channel));
    }
    reply
}

/// Keeps the client's `connecting` count right when a held connect ends or is dropped.
struct Holding<'a> {
    shared: &'a Shared,
    client_id: String,
}

impl Drop for Holding<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.shared.streaming.clients().get_mut(&self.client_id) {
            c.connecting = c.connecting.saturating_sub(1);
            c.last_seen = Instant::now();
        }
    }
}

/// The events due to the client (each of its subscriptions, in replay order), advancing its
/// subscriptions past them; `None` when the client is unknown.
fn due_events(shared: &Shared, client_id: &str) -> Option<Vec<Value>> {
    let streaming = &shared.streaming;
    let mut clients = streaming.clients();
    let client = clients.get_mut(client_id)?;
    let mut due: Vec<(u64, usize, Value)> = Vec::new();
    for (index, sub) in client.subscriptions.iter().enumerate() {
        for event in streaming.events_after(&sub.channel, sub.after, MAX_EVENTS_PER_CONNECT) {
            due.push((
                event.replay_id,
                index,
                json!({"data": event.data, "channel": sub.channel}),
            ));
        }
    }
    due.sort_by_key(|(replay, index, _)| (*replay, *index));
    due.truncate(MAX_EVENTS_PER_CONNECT);
    for (replay, index, _) in &due {
        if let Some(sub) = client.subscriptions.get_mut(*index) {
            sub.after = sub.after.max(*replay);
        }
    }
    Some(due.into_iter().map(|(_, _, v)| v).collect())
}

/// `/meta/connect`: the due events and the reply, at once when events are due, otherwise
/// after the long-poll timeout or as soon as events arrive.
async fn connect(
    shared: &Shared,
    incoming: &Incoming<'_>,
    client_id: &str,
    token: &str,
) -> Vec<Value> {
    let streaming = &shared.streaming;
    let timeout = streaming.config().long_poll_timeout;
    let first = {
        let mut clients = streaming.clients();
        let Some(client) = clients.get_mut(client_id) else {
            return vec![incoming.unknown_client()];
        };
        client.connecting += 1;
        client.connects += 1;
        client.connects == 1
    };
    let _holding = Holding {
        shared,
        client_id: client_id.to_string(),
    };
    let mut wake = streaming.wake_receiver();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        wake.borrow_and_update();
        if !shared.sessions.is_valid(token, Utc::now()) {
            streaming.clients().remove(client_id);
            return vec![incoming.auth_invalid()];
        }
        let same_token = streaming.clients().get(client_id).map(|c| c.token == token);
        if same_token.is_none() {
            return vec![incoming.unknown_client()];
        }
        let Some(mut events) = due_events(shared, client_id) else {
            return vec![incoming.unknown_client()];
        };
        if !events.is_empty() || streaming.is_closed() || tokio::time::Instant::now() >= deadline {
            let mut reply = incoming.reply(true);
            if first {
                reply.insert(
                    "advice".into(),
                    json!({
                        "reconnect": "retry",
                        "timeout": timeout.as_millis() as u64,
                        "interval": 0,
                    }),
                );
            }
            events.push(Value::Object(reply));
            return events;
        }
        tokio::select! {
            _ = wake.changed() => {}
            _ = tokio::time::sleep_until(deadline) => {}
        }
    }
}
