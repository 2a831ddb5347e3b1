//! The emulator over HTTP: started in-process on 127.0.0.1:0 (and once as the real binary),
//! exercised with a plain HTTP client.

mod auth;
mod binary;
mod faults;
mod fixtures;
mod metadata;
mod query;
mod records;

use plansync::emulator::{Emulator, EmulatorBuilder, RunningEmulator};
use reqwest::{Client, Method, Response, StatusCode};
use serde_json::{json, Map, Value};

pub const V: &str = "v59.0";

/// An emulator with an empty org.
pub async fn start() -> RunningEmulator {
    start_with(Emulator::builder()).await
}

pub async fn start_with(builder: EmulatorBuilder) -> RunningEmulator {
    builder.start().await.expect("the emulator starts")
}

/// A client bound to one emulator with one session.
pub struct Api {
    pub http: Client,
    pub base: String,
    pub token: String,
}

impl Api {
    /// Logs in through the token endpoint with client credentials.
    pub async fn login(emu: &RunningEmulator) -> Api {
        let http = Client::new();
        let response = http
            .post(format!("{}/services/oauth2/token", emu.base_url()))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", emu.client_id()),
                ("client_secret", emu.client_secret()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        Api {
            http,
            base: emu.base_url().to_string(),
            token: body["access_token"].as_str().unwrap().to_string(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        if path.starts_with("/services") {
            format!("{}{path}", self.base)
        } else {
            format!("{}/services/data/{V}{path}", self.base)
        }
    }

    pub async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Response {
        let mut request = self
            .http
            .request(method, self.url(path))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.unwrap()
    }

    /// Status and JSON body (Null when empty).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let response = self.send(method, path, body).await;
        read(response).await
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None).await
    }

    pub async fn query(&self, soql: &str) -> (StatusCode, Value) {
        let url = format!("/query?q={}", encode(soql));
        self.get(&url).await
    }

    /// Creates a record and returns its Id.
    pub async fn create(&self, object: &str, body: Value) -> String {
        let (status, body) = self
            .call(Method::POST, &format!("/sobjects/{object}/"), Some(body))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().unwrap().to_string()
    }
}

pub async fn read(response: Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
    };
    (status, body)
}

pub fn encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// The keys of a JSON object, in order.
pub fn keys(value: &Value) -> Vec<String> {
    value
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

/// The first error of a request-level error array.
pub fn error_code(body: &Value) -> &str {
    body[0]["errorCode"].as_str().unwrap_or("")
}

pub fn object(value: Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap()
}

pub fn opportunity(name: &str) -> Value {
    json!({"Name": name, "CloseDate": "2026-03-31", "StageName": "Prospecting", "Amount": 1000})
}

/// Creates `n` accounts in-process and returns their Ids.
pub fn accounts(emu: &RunningEmulator, n: usize) -> Vec<String> {
    emu.with_org(|org| {
        (0..n)
            .map(|i| {
                org.create(
                    "Account",
                    &object(json!({"Name": format!("Account {i:05}")})),
                    chrono::Utc::now(),
                )
                .unwrap()
            })
            .collect()
    })
}
