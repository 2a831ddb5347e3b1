//! Change Data Capture over the CRM's CometD endpoint (Bayeux long polling at
//! `/cometd/NN.0`): handshake, subscribe with the replay extension, long-poll connect
//! following the server's advice, re-handshake on `403::Unknown client`, and a fresh token
//! through the shared [`CrmClient`] on `401`. The wire facts, with their sources, are in
//! `docs/streaming.md`.
//!
//! [`CometdClient::poll`] is one long poll: it (re)connects when it has no session, and
//! hands back the change events it received. The events are only what the CRM says changed;
//! the daemon treats them as wake-ups and reads the records through its usual queries.
//! The client remembers the replayId of the last event received on each channel and
//! resubscribes from it after a re-handshake, so a reconnection loses nothing the CRM still
//! retains.

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use reqwest::header::{AUTHORIZATION, COOKIE, SET_COOKIE};
use secrecy::ExposeSecret;
use serde_json::{json, Value};
use url::Url;

use super::client::http_client;
use super::{CrmClient, CrmError};

/// Replay from the stored position's next event: `-1` asks for new events only, `-2` for
/// every event the CRM retains (72 hours for change events).
pub const REPLAY_NEW: i64 = -1;
pub const REPLAY_ALL: i64 = -2;

/// The standard channel of every entity selected for Change Data Capture.
pub const CHANGE_EVENTS_CHANNEL: &str = "/data/ChangeEvents";

/// The long-poll timeout when the server gives no advice (Salesforce's is 110 s).
const DEFAULT_LONG_POLL: Duration = Duration::from_secs(110);
/// The timeout of the handshake and subscribe requests.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Added to the advised long-poll timeout for the HTTP request of a connect.
const LONG_POLL_GRACE: Duration = Duration::from_secs(30);

/// The single-entity channel of an object's change events: `Account` →
/// `/data/AccountChangeEvent`, `Account_Plan__c` → `/data/Account_Plan__ChangeEvent`.
pub fn object_channel(object: &str) -> String {
    match object.strip_suffix("__c") {
        Some(custom) => format!("/data/{custom}__ChangeEvent"),
        None => format!("/data/{object}ChangeEvent"),
    }
}

/// The operation a change event reports (`ChangeEventHeader.changeType`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeType {
    Create,
    Update,
    Delete,
    Undelete,
    /// `GAP_CREATE`, `GAP_UPDATE`, `GAP_DELETE`, `GAP_UNDELETE`: the CRM could not build the
    /// event; the header names the records, the body has no fields.
    Gap(String),
    /// `GAP_OVERFLOW`: a transaction changed more than the CRM sends events for; only the
    /// entity is named, not the records.
    Overflow,
    /// A value this client does not know (kept, and treated as a change of the entity).
    Other(String),
}

impl ChangeType {
    pub fn parse(text: &str) -> ChangeType {
        match text {
            "CREATE" => ChangeType::Create,
            "UPDATE" => ChangeType::Update,
            "DELETE" => ChangeType::Delete,
            "UNDELETE" => ChangeType::Undelete,
            "GAP_OVERFLOW" => ChangeType::Overflow,
            gap if gap.starts_with("GAP_") => ChangeType::Gap(gap.to_string()),
            other => ChangeType::Other(other.to_string()),
        }
    }

    /// Whether the event stands for changes it does not describe (a gap or an overflow).
    pub fn is_gap(&self) -> bool {
        matches!(self, ChangeType::Gap(_) | ChangeType::Overflow)
    }
}

impl fmt::Display for ChangeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ChangeType::Create => "CREATE",
            ChangeType::Update => "UPDATE",
            ChangeType::Delete => "DELETE",
            ChangeType::Undelete => "UNDELETE",
            ChangeType::Overflow => "GAP_OVERFLOW",
            ChangeType::Gap(s) | ChangeType::Other(s) => s,
        })
    }
}

/// One change event: where it came from and its header (the changed fields' values are not
/// kept: the cycle reads the records itself).
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeEvent {
    pub channel: String,
    pub replay_id: i64,
    /// The object's API name (`Opportunity`, `Account_Plan__c`).
    pub entity_name: String,
    pub change_type: ChangeType,
    pub record_ids: Vec<String>,
    pub changed_fields: Vec<String>,
    /// When the change was committed in the CRM.
    pub commit_timestamp: Option<DateTime<Utc>>,
    pub transaction_key: Option<String>,
    /// `changeOrigin`: the API and the client of the call options header that made the
    /// change (`com/salesforce/api/rest/62.0;client=plansync`); empty for changes not made
    /// through an API.
    pub change_origin: String,
}

impl ChangeEvent {
    /// Whether the change was made by plansync's own writes: its `changeOrigin` names the
    /// client plansync sends in `Sforce-Call-Options` ([`crate::crm::CALL_OPTIONS_CLIENT`]).
    pub fn made_by_plansync(&self) -> bool {
        self.change_origin
            .split(';')
            .skip(1)
            .filter_map(|part| part.trim().split_once('='))
            .any(|(k, v)| k.trim() == "client" && v.trim() == crate::crm::CALL_OPTIONS_CLIENT)
    }
}

/// Why the subscription could not be made or kept.
#[derive(Debug, thiserror::Error)]
pub enum StreamingError {
    /// No CometD endpoint (404), or the org or user may not use it.
    #[error(
        "the CRM does not serve change events at {url} (HTTP {status}): the org needs the \
         Streaming API and Change Data Capture, and the integration user the \"API Enabled\" and \
         \"View All Data\" (or per-object read) permissions; set [streaming] enabled = false to \
         poll only"
    )]
    Unsupported { url: String, status: u16 },
    #[error("the CometD handshake was refused: {error}")]
    Handshake { error: String },
    #[error(
        "subscribing to {channel} was refused: {error} (select the object for Change Data \
         Capture: deploy the package's platformEventChannelMembers, or Setup > Change Data \
         Capture)"
    )]
    Subscribe { channel: String, error: String },
    /// The server ended the session and advised not to reconnect (for instance the daily
    /// event-delivery allocation is spent).
    #[error("the CRM ended the change-event subscription: {error}")]
    Refused { error: String },
    #[error("cannot reach the CRM's CometD endpoint ({url}): {message}")]
    Transport { url: String, message: String },
    #[error("unexpected CometD answer to {what} (HTTP {status}): {reason}")]
    Decode {
        what: String,
        status: u16,
        reason: String,
    },
    #[error(transparent)]
    Crm(#[from] CrmError),
}

/// A handshaken session.
struct Session {
    client_id: String,
    /// `name=value` of the cookies the server set (the CRM requires them back).
    cookies: BTreeMap<String, String>,
    /// The advised long-poll timeout and the wait between polls.
    timeout: Duration,
    interval: Duration,
    /// The token generation the session was opened with.
    generation: u64,
}

/// What one connect brought back.
#[derive(Debug, Default)]
pub struct Delivery {
    pub events: Vec<ChangeEvent>,
    /// The session was (re)established and every channel (re)subscribed during this poll:
    /// events may have been missed since the last session, the caller should catch up.
    pub resubscribed: bool,
    /// A stored replayId was refused (outside the retention window): that channel was
    /// subscribed with -1 instead, so changes in between are known only to a cycle.
    pub replay_reset: Vec<String>,
    /// Channels the CRM refused (an object not selected for Change Data Capture), with the
    /// refusal: the others are subscribed; changes of these objects wait for the schedule.
    pub refused: Vec<(String, String)>,
}

/// What [`CometdClient::open`] subscribed.
#[derive(Debug, Default)]
pub struct Opened {
    /// Channels subscribed with -1 because their stored replayId was refused.
    pub replay_reset: Vec<String>,
    /// Channels the CRM refused, with its error.
    pub refused: Vec<(String, String)>,
}

/// A Bayeux client of the CRM's CometD endpoint.
pub struct CometdClient {
    crm: CrmClient,
    http: reqwest::Client,
    channels: Vec<String>,
    /// Where each channel resumes: the last event received, or what the caller stored.
    replay: BTreeMap<String, i64>,
    /// The replayId a channel without a position subscribes with.
    default_replay: i64,
    session: Option<Session>,
    next_id: u64,
}

impl fmt::Debug for CometdClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CometdClient")
            .field("channels", &self.channels)
            .field("replay", &self.replay)
            .field("subscribed", &self.session.is_some())
            .finish()
    }
}

/// The first message of a Bayeux answer on `channel`.
fn reply_on<'a>(messages: &'a [Value], channel: &str) -> Option<&'a Value> {
    messages
        .iter()
        .find(|m| m.get("channel").and_then(Value::as_str) == Some(channel))
}

fn successful(message: &Value) -> bool {
    message.get("successful").and_then(Value::as_bool) == Some(true)
}

fn error_text(message: &Value) -> String {
    let error = message
        .get("error")
        .and_then(Value::as_str)
        .unwrap_or("no error given")
        .to_string();
    match message
        .pointer("/ext/sfdc/failureReason")
        .and_then(Value::as_str)
    {
        Some(reason) => format!("{error} ({reason})"),
        None => error,
    }
}

fn advice_reconnect(message: &Value) -> Option<&str> {
    message.pointer("/advice/reconnect").and_then(Value::as_str)
}

/// An event message (`data.event.replayId`, `data.payload.ChangeEventHeader`) as a
/// [`ChangeEvent`]; `None` for a message that is not a change event.
pub fn parse_event(message: &Value) -> Option<ChangeEvent> {
    let channel = message.get("channel")?.as_str()?.to_string();
    let data = message.get("data")?;
    let replay_id = data.pointer("/event/replayId")?.as_i64()?;
    let header = data.pointer("/payload/ChangeEventHeader")?;
    let strings = |name: &str| -> Vec<String> {
        header
            .get(name)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    Some(ChangeEvent {
        channel,
        replay_id,
        entity_name: header.get("entityName")?.as_str()?.to_string(),
        change_type: ChangeType::parse(header.get("changeType")?.as_str()?),
        record_ids: strings("recordIds"),
        changed_fields: strings("changedFields"),
        commit_timestamp: header
            .get("commitTimestamp")
            .and_then(Value::as_i64)
            .and_then(|ms| Utc.timestamp_millis_opt(ms).single()),
        transaction_key: header
            .get("transactionKey")
            .and_then(Value::as_str)
            .map(str::to_string),
        change_origin: header
            .get("changeOrigin")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
    })
}

impl CometdClient {
    /// A client of `channels` that resumes each from `replay` (a channel absent there
    /// subscribes with [`REPLAY_NEW`]). Nothing is sent until [`CometdClient::poll`].
    pub fn new(
        crm: CrmClient,
        channels: Vec<String>,
        replay: BTreeMap<String, i64>,
    ) -> Result<CometdClient, StreamingError> {
        let http =
            http_client(reqwest::Client::builder().connect_timeout(Duration::from_secs(30)))?;
        Ok(CometdClient {
            crm,
            http,
            channels,
            replay,
            default_replay: REPLAY_NEW,
            session: None,
            next_id: 0,
        })
    }

    pub fn channels(&self) -> &[String] {
        &self.channels
    }

    /// Where each channel resumes after a re-handshake.
    pub fn replay_positions(&self) -> &BTreeMap<String, i64> {
        &self.replay
    }

    /// Whether a session is open with every channel subscribed.
    pub fn is_subscribed(&self) -> bool {
        self.session.is_some()
    }

    /// The long-poll timeout the server advised (or the default).
    pub fn long_poll_timeout(&self) -> Duration {
        self.session
            .as_ref()
            .map(|s| s.timeout)
            .unwrap_or(DEFAULT_LONG_POLL)
    }

    /// The wait the server advised between a connect's answer and the next connect.
    pub fn interval(&self) -> Duration {
        self.session
            .as_ref()
            .map(|s| s.interval)
            .unwrap_or_default()
    }

    fn id(&mut self) -> String {
        self.next_id += 1;
        self.next_id.to_string()
    }

    async fn endpoint(&self) -> Result<(Url, u64, String), StreamingError> {
        let token = self.crm.token().await?;
        let url = token
            .instance_url
            .join(&format!("/cometd/{}", self.crm.api_version()))
            .map_err(|e| CrmError::InvalidConfig(format!("bad CometD URL: {e}")))?;
        Ok((
            url,
            token.generation,
            token.access_token.expose_secret().to_string(),
        ))
    }

    /// Sends one Bayeux request; the answer's messages, or the HTTP status when it is not
    /// 2xx (`Err(status)` inside `Ok`).
    async fn send(
        &self,
        what: &str,
        body: &Value,
        timeout: Duration,
    ) -> Result<(Result<Vec<Value>, u16>, BTreeMap<String, String>, u64), StreamingError> {
        let (url, generation, token) = self.endpoint().await?;
        let mut request = self
            .http
            .post(url.clone())
            .timeout(timeout)
            .header(AUTHORIZATION, format!("Bearer {token}"))
            .json(body);
        if let Some(session) = &self.session {
            if !session.cookies.is_empty() {
                let cookies: Vec<String> = session
                    .cookies
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                request = request.header(COOKIE, cookies.join("; "));
            }
        }
        let shown = url.to_string();
        let response = request
            .send()
            .await
            .map_err(|e| StreamingError::Transport {
                url: shown.clone(),
                message: crate::error::chain(&e.without_url()),
            })?;
        let status = response.status().as_u16();
        let mut cookies = BTreeMap::new();
        for value in response.headers().get_all(SET_COOKIE) {
            if let Some((name, rest)) = value.to_str().ok().and_then(|v| v.split_once('=')) {
                let value = rest.split(';').next().unwrap_or_default();
                cookies.insert(name.trim().to_string(), value.trim().to_string());
            }
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|e| StreamingError::Transport {
                url: shown,
                message: crate::error::chain(&e.without_url()),
            })?;
        if !(200..300).contains(&status) {
            return Ok((Err(status), cookies, generation));
        }
        let messages: Vec<Value> =
            serde_json::from_slice(&bytes).map_err(|e| StreamingError::Decode {
                what: what.to_string(),
                status,
                reason: format!("not a JSON array of Bayeux messages: {e}"),
            })?;
        Ok((Ok(messages), cookies, generation))
    }

    /// Handshake and subscribe every channel; replaces any session. A `401` (HTTP, or the
    /// handshake's `401::Authentication invalid`) fetches a new token once and tries again.
    /// A channel the CRM refuses is left out (and named) while another one is subscribed;
    /// when every channel is refused, the first refusal is the error.
    pub async fn open(&mut self) -> Result<Opened, StreamingError> {
        self.session = None;
        let mut refreshed = false;
        loop {
            match self.handshake().await {
                Err(StreamingError::Handshake { error }) if !refreshed && error.contains("401") => {
                    tracing::debug!(%error, "CometD handshake refused the token; fetching a new one");
                    let generation = self.crm.token().await?.generation;
                    self.crm.refresh(Some(generation)).await?;
                    refreshed = true;
                }
                other => {
                    other?;
                    break;
                }
            }
        }
        let mut opened = Opened::default();
        let mut first_refusal = None;
        for channel in self.channels.clone() {
            match self.subscribe(&channel).await {
                Ok(true) => opened.replay_reset.push(channel),
                Ok(false) => {}
                Err(StreamingError::Subscribe { channel, error }) => {
                    opened.refused.push((channel.clone(), error.clone()));
                    first_refusal.get_or_insert(StreamingError::Subscribe { channel, error });
                }
                Err(other) => return Err(other),
            }
        }
        if opened.refused.len() == self.channels.len() {
            self.session = None;
            if let Some(refusal) = first_refusal {
                return Err(refusal);
            }
        }
        Ok(opened)
    }

    async fn handshake(&mut self) -> Result<(), StreamingError> {
        let id = self.id();
        let body = json!([{
            "channel": "/meta/handshake",
            "version": "1.0",
            "minimumVersion": "1.0",
            "supportedConnectionTypes": ["long-polling"],
            "advice": {"timeout": 60000, "interval": 0},
            "ext": {"replay": true},
            "id": id,
        }]);
        let (answer, cookies, generation) =
            self.send("the handshake", &body, REQUEST_TIMEOUT).await?;
        let (url, ..) = self.endpoint().await?;
        let messages = match answer {
            Ok(messages) => messages,
            Err(status @ (404 | 405)) => {
                return Err(StreamingError::Unsupported {
                    url: url.to_string(),
                    status,
                })
            }
            Err(401) => {
                return Err(StreamingError::Handshake {
                    error: "HTTP 401: the token was refused".into(),
                })
            }
            Err(status) => {
                return Err(StreamingError::Decode {
                    what: "the handshake".into(),
                    status,
                    reason: "the server refused the request".into(),
                })
            }
        };
        let reply =
            reply_on(&messages, "/meta/handshake").ok_or_else(|| StreamingError::Decode {
                what: "the handshake".into(),
                status: 200,
                reason: "no /meta/handshake message in the answer".into(),
            })?;
        if !successful(reply) {
            return Err(StreamingError::Handshake {
                error: error_text(reply),
            });
        }
        let client_id = reply
            .get("clientId")
            .and_then(Value::as_str)
            .ok_or_else(|| StreamingError::Decode {
                what: "the handshake".into(),
                status: 200,
                reason: "a successful handshake without a clientId".into(),
            })?
            .to_string();
        let ms = |name: &str, default: Duration| {
            reply
                .pointer(&format!("/advice/{name}"))
                .and_then(Value::as_u64)
                .map(Duration::from_millis)
                .unwrap_or(default)
        };
        self.session = Some(Session {
            client_id,
            cookies,
            timeout: ms("timeout", DEFAULT_LONG_POLL),
            interval: ms("interval", Duration::ZERO),
            generation,
        });
        Ok(())
    }

    /// Subscribes one channel from its stored position; `true` when the position was refused
    /// and the channel was subscribed with -1 instead.
    async fn subscribe(&mut self, channel: &str) -> Result<bool, StreamingError> {
        let from = self
            .replay
            .get(channel)
            .copied()
            .unwrap_or(self.default_replay);
        match self.subscribe_from(channel, from).await {
            Err(StreamingError::Subscribe { error, .. })
                if from >= 0 && error.to_ascii_lowercase().contains("replay") =>
            {
                tracing::warn!(channel, replay_id = from, %error,
                    "the stored replayId was refused (outside the retention window?); \
                     subscribing to new events, a cycle catches up");
                self.replay.remove(channel);
                self.subscribe_from(channel, REPLAY_NEW).await?;
                Ok(true)
            }
            other => other.map(|()| false),
        }
    }

    async fn subscribe_from(&mut self, channel: &str, from: i64) -> Result<(), StreamingError> {
        let id = self.id();
        let client_id = self.client_id()?;
        let body = json!([{
            "channel": "/meta/subscribe",
            "clientId": client_id,
            "subscription": channel,
            "ext": {"replay": {channel: from}},
            "id": id,
        }]);
        let what = format!("subscribing to {channel}");
        let (answer, ..) = self.send(&what, &body, REQUEST_TIMEOUT).await?;
        let messages = answer.map_err(|status| StreamingError::Decode {
            what: what.clone(),
            status,
            reason: "the server refused the request".into(),
        })?;
        let reply =
            reply_on(&messages, "/meta/subscribe").ok_or_else(|| StreamingError::Decode {
                what: what.clone(),
                status: 200,
                reason: "no /meta/subscribe message in the answer".into(),
            })?;
        if successful(reply) {
            tracing::debug!(channel, replay_from = from, "subscribed");
            Ok(())
        } else {
            Err(StreamingError::Subscribe {
                channel: channel.to_string(),
                error: error_text(reply),
            })
        }
    }

    fn client_id(&self) -> Result<String, StreamingError> {
        self.session
            .as_ref()
            .map(|s| s.client_id.clone())
            .ok_or_else(|| StreamingError::Handshake {
                error: "no session".into(),
            })
    }

    /// One long poll (one `/meta/connect`), or, when there is no session, the handshake and
    /// subscriptions (then `resubscribed` says so, and the next call polls).
    /// `403::Unknown client` (or advice `handshake`) drops the session, so the next poll
    /// handshakes and resubscribes from the last events received; `401` fetches a new token
    /// first. An error leaves no session: the caller waits (its backoff) and polls again.
    pub async fn poll(&mut self) -> Result<Delivery, StreamingError> {
        let mut delivery = Delivery::default();
        if self.session.is_none() {
            // Report the subscription at once; the long poll starts with the next call.
            let opened = self.open().await?;
            delivery.replay_reset = opened.replay_reset;
            delivery.refused = opened.refused;
            delivery.resubscribed = true;
            return Ok(delivery);
        }
        match self.connect(&mut delivery).await {
            Ok(()) => Ok(delivery),
            Err(e) => {
                self.session = None;
                Err(e)
            }
        }
    }

    async fn connect(&mut self, delivery: &mut Delivery) -> Result<(), StreamingError> {
        let id = self.id();
        let client_id = self.client_id()?;
        let timeout = self.long_poll_timeout() + LONG_POLL_GRACE;
        let body = json!([{
            "channel": "/meta/connect",
            "clientId": client_id,
            "connectionType": "long-polling",
            "id": id,
        }]);
        let (answer, cookies, generation) = self.send("a connect", &body, timeout).await?;
        if let Some(session) = self.session.as_mut() {
            session.cookies.extend(cookies);
        }
        let messages = match answer {
            Ok(messages) => messages,
            Err(401) => {
                self.reauthenticate(generation).await?;
                return Ok(());
            }
            Err(status) => {
                return Err(StreamingError::Decode {
                    what: "a connect".into(),
                    status,
                    reason: "the server refused the request".into(),
                })
            }
        };
        for message in &messages {
            let Some(channel) = message.get("channel").and_then(Value::as_str) else {
                continue;
            };
            if channel.starts_with("/meta/") {
                continue;
            }
            match parse_event(message) {
                Some(event) => {
                    let key = if self.channels.iter().any(|c| c == &event.channel) {
                        event.channel.clone()
                    } else if self.channels.len() == 1 {
                        self.channels[0].clone()
                    } else {
                        event.channel.clone()
                    };
                    self.replay.insert(key, event.replay_id);
                    delivery.events.push(event);
                }
                None => tracing::debug!(channel, "ignored a message that is not a change event"),
            }
        }
        let Some(reply) = reply_on(&messages, "/meta/connect") else {
            // Events without the connect's own reply: the next connect goes on.
            return Ok(());
        };
        if let Some(session) = self.session.as_mut() {
            if let Some(t) = reply.pointer("/advice/timeout").and_then(Value::as_u64) {
                session.timeout = Duration::from_millis(t);
            }
            if let Some(i) = reply.pointer("/advice/interval").and_then(Value::as_u64) {
                session.interval = Duration::from_millis(i);
            }
        }
        if successful(reply) {
            return Ok(());
        }
        let error = error_text(reply);
        if error.starts_with("401") {
            return self.reauthenticate(generation).await;
        }
        match advice_reconnect(reply) {
            Some("none") => Err(StreamingError::Refused { error }),
            Some("retry") if !error.starts_with("403::Unknown client") => {
                tracing::debug!(%error, "connect failed; retrying as advised");
                Ok(())
            }
            _ => {
                tracing::info!(%error, "the CometD session is gone; handshaking again");
                self.session = None;
                Ok(())
            }
        }
    }

    /// The token of `generation` was refused: fetch a new one (unless another request did)
    /// and drop the session, so the next poll handshakes with it.
    async fn reauthenticate(&mut self, generation: u64) -> Result<(), StreamingError> {
        let opened_with = self.session.as_ref().map(|s| s.generation);
        self.session = None;
        if opened_with.is_some_and(|g| g != generation) {
            return Ok(());
        }
        tracing::debug!("the CometD session's token was refused; fetching a new one");
        self.crm.refresh(Some(generation)).await?;
        Ok(())
    }

    /// Ends the session politely (`/meta/disconnect`); errors are ignored.
    pub async fn disconnect(&mut self) {
        let Ok(client_id) = self.client_id() else {
            return;
        };
        let id = self.id();
        let body = json!([{"channel": "/meta/disconnect", "clientId": client_id, "id": id}]);
        let _ = self.send("the disconnect", &body, REQUEST_TIMEOUT).await;
        self.session = None;
    }
}
