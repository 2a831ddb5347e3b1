//! Tests of the CRM client against in-process stub servers on 127.0.0.1: the recorded
//! Salesforce responses, the token flows, refresh on 401, retries, quota, paging and
//! collections chunking. This file holds the stub server and the helpers the test files
//! below `tests/` share.

mod recorded;
mod resources;
mod sessions;
mod tokens;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use axum::Router;
use secrecy::SecretString;
use serde_json::{json, Value};
use url::Url;

use super::*;

// ---------------------------------------------------------------------------------------
// The stub server

/// One request the stub received.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    query: Vec<(String, String)>,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Seen {
    fn form(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(&self.body)
            .into_owned()
            .collect()
    }
    fn form_value(&self, name: &str) -> Option<String> {
        self.form()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
    fn bearer(&self) -> Option<String> {
        self.headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_string)
    }
    fn is_token(&self) -> bool {
        self.path == "/services/oauth2/token"
    }
}

/// What the stub answers to one request.
#[derive(Clone)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
    delay: Option<Duration>,
    /// Answer with the stub's next token instead (see [`Reply::next_token`]).
    next_token: bool,
}

impl Reply {
    /// A JSON answer with the `Sforce-Limit-Info` every data answer carries.
    fn json(status: u16, body: Value) -> Self {
        Reply {
            status,
            headers: vec![
                (
                    "Content-Type".into(),
                    "application/json;charset=UTF-8".into(),
                ),
                ("Sforce-Limit-Info".into(), "api-usage=7/15000".into()),
            ],
            body: body.to_string(),
            delay: None,
            next_token: false,
        }
    }
    /// A status with no body and no headers.
    fn empty(status: u16) -> Self {
        Reply {
            status,
            headers: Vec::new(),
            body: String::new(),
            delay: None,
            next_token: false,
        }
    }
    /// A request-level error: `[{message, errorCode}]`.
    fn error(status: u16, error_code: &str, message: &str) -> Self {
        Reply::json(
            status,
            json!([{"message": message, "errorCode": error_code}]),
        )
    }
    /// The default token answer: the stub's n-th token is `tok-n`, on the stub's own URL.
    fn next_token() -> Self {
        Reply {
            next_token: true,
            ..Reply::empty(200)
        }
    }
    fn after(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }
    fn without(mut self, name: &str) -> Self {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self
    }
    fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.into(), value.into()));
        self
    }
}

type Handler = dyn Fn(&Seen) -> Reply + Send + Sync;

#[derive(Clone)]
struct StubState {
    base: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    tokens: Arc<AtomicUsize>,
    handler: Arc<Handler>,
}

/// A running stub: its URL, and every request it received, in order.
struct Stub {
    url: Url,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Stub {
    /// Starts a stub that answers every request (token requests too) with `handler`.
    async fn start<F>(handler: F) -> Stub
    where
        F: Fn(&Seen) -> Reply + Send + Sync + 'static,
    {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let state = StubState {
            base: base.clone(),
            seen: seen.clone(),
            tokens: Arc::new(AtomicUsize::new(0)),
            handler: Arc::new(handler),
        };
        let app = Router::new().fallback(answer).with_state(state);
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Stub {
            url: Url::parse(&base).unwrap(),
            seen,
        }
    }

    /// A client of this stub: client credentials, API 62.0, 3 retries with a fast backoff.
    fn client(&self) -> CrmClient {
        self.client_with(|_| {})
    }

    /// A client of this stub with `change` made to the default configuration.
    fn client_with(&self, change: impl FnOnce(&mut CrmConfig)) -> CrmClient {
        let mut cfg = config(&self.url, client_credentials());
        change(&mut cfg);
        CrmClient::with_backoff(cfg, fast()).unwrap()
    }

    /// A client of this stub that authenticates with `auth`.
    fn client_for(&self, auth: AuthConfig) -> CrmClient {
        self.client_with(|cfg| cfg.auth = auth)
    }

    fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
    fn token_requests(&self) -> Vec<Seen> {
        self.requests().into_iter().filter(Seen::is_token).collect()
    }
    fn data_requests(&self) -> Vec<Seen> {
        self.requests()
            .into_iter()
            .filter(|s| !s.is_token())
            .collect()
    }
}

/// Starts the usual stub: token requests get the next token, data requests `data`'s answer.
async fn crm<F>(data: F) -> Stub
where
    F: Fn(&Seen) -> Reply + Send + Sync + 'static,
{
    Stub::start(move |seen| {
        if seen.is_token() {
            Reply::next_token()
        } else {
            data(seen)
        }
    })
    .await
}

/// A handler that answers the first `n` requests it sees with `first`, later ones with `then`.
fn first_then(
    n: usize,
    first: impl Fn(&Seen) -> Reply + Send + Sync + 'static,
    then: impl Fn(&Seen) -> Reply + Send + Sync + 'static,
) -> impl Fn(&Seen) -> Reply + Send + Sync + 'static {
    let count = AtomicUsize::new(0);
    move |seen| {
        if count.fetch_add(1, Ordering::SeqCst) < n {
            first(seen)
        } else {
            then(seen)
        }
    }
}

/// The stub's one route: records the request, then answers it.
async fn answer(
    State(state): State<StubState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let query = uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let seen = Seen {
        method: method.to_string(),
        path: uri.path().to_string(),
        query,
        headers,
        body: body.to_vec(),
    };
    state.seen.lock().unwrap().push(seen.clone());
    let mut reply = (state.handler)(&seen);
    if reply.next_token {
        let n = state.tokens.fetch_add(1, Ordering::SeqCst) + 1;
        reply = Reply {
            delay: reply.delay,
            ..token_reply(&state.base, n)
        };
    }
    if let Some(d) = reply.delay {
        tokio::time::sleep(d).await;
    }
    let mut response = Response::builder().status(reply.status);
    for (name, value) in &reply.headers {
        response = response.header(name, value);
    }
    response.body(Body::from(reply.body)).unwrap()
}

/// A successful token answer naming `instance` and the token `tok-<n>`.
fn token_reply(instance: &str, n: usize) -> Reply {
    Reply::json(
        200,
        json!({
            "access_token": format!("00D000000000001!tok-{n}"),
            "signature": "c2lnbmF0dXJl",
            "scope": "api",
            "instance_url": instance,
            "id": "https://login.salesforce.com/id/00D000000000001AAA/005000000000001AAA",
            "token_type": "Bearer",
            "issued_at": "1706700000000"
        }),
    )
    .without("Sforce-Limit-Info")
}

fn ok_query(records: Value) -> Reply {
    let n = records.as_array().map_or(0, Vec::len);
    Reply::json(
        200,
        json!({"totalSize": n, "done": true, "records": records}),
    )
}

fn session_expired() -> Reply {
    Reply::error(401, "INVALID_SESSION_ID", "Session expired or invalid")
}

fn server_busy() -> Reply {
    Reply::error(503, "SERVER_UNAVAILABLE", "Server too busy")
}

// ---------------------------------------------------------------------------------------
// Configurations

const CLIENT_SECRET: &str = "very-secret-client-secret";

fn client_credentials() -> AuthConfig {
    AuthConfig::ClientCredentials {
        client_id: "3MVG9-client".into(),
        client_secret: SecretString::from(CLIENT_SECRET),
    }
}

fn config(login: &Url, auth: AuthConfig) -> CrmConfig {
    CrmConfig {
        login_url: login.clone(),
        instance_url: None,
        api_version: "62.0".into(),
        auth,
        timeout: Duration::from_secs(5),
        max_retries: 3,
    }
}

fn fast() -> Backoff {
    Backoff {
        base: Duration::from_millis(1),
        max: Duration::from_millis(5),
    }
}

fn key_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/keys")
        .join(name)
}
