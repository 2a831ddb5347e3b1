//! Helpers the end-to-end tests share: a plain REST client for the CRM, a config file for the
//! emulator and a store in a temp dir, and running the real binary.

use std::path::{Path, PathBuf};

use plansync::emulator::RunningEmulator;
use serde_json::Value;

pub const API: &str = "/services/data/v62.0";

/// A plain REST client for checking and changing the CRM the way a user would.
pub struct Crm {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Crm {
    pub async fn connect(emulator: &RunningEmulator) -> Crm {
        let http = reqwest::Client::new();
        let base = emulator.base_url().to_string();
        let body: Value = http
            .post(format!("{base}/services/oauth2/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", emulator.client_id()),
                ("client_secret", emulator.client_secret()),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = body["access_token"].as_str().unwrap().to_string();
        Crm { http, base, token }
    }

    pub async fn create(&self, object: &str, fields: Value) -> String {
        let resp = self
            .http
            .post(format!("{}{API}/sobjects/{object}/", self.base))
            .bearer_auth(&self.token)
            .json(&fields)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let body: Value = resp.json().await.unwrap();
        assert_eq!(status, 201, "creating {object} {fields}: {body}");
        body["id"].as_str().unwrap().to_string()
    }

    pub async fn update(&self, object: &str, id: &str, fields: Value) {
        let resp = self
            .http
            .patch(format!("{}{API}/sobjects/{object}/{id}", self.base))
            .bearer_auth(&self.token)
            .json(&fields)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 204, "updating {object} {id}");
    }

    pub async fn delete(&self, object: &str, id: &str) {
        let resp = self
            .http
            .delete(format!("{}{API}/sobjects/{object}/{id}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 204, "deleting {object} {id}");
    }

    /// Every row of a query, following nextRecordsUrl.
    pub async fn query(&self, soql: &str) -> Vec<Value> {
        let mut url = format!("{}{API}/query?q={}", self.base, urlencode(soql));
        let mut rows = Vec::new();
        loop {
            let body: Value = self
                .http
                .get(&url)
                .bearer_auth(&self.token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            rows.extend(body["records"].as_array().unwrap().iter().cloned());
            match body["nextRecordsUrl"].as_str() {
                Some(next) => url = format!("{}{next}", self.base),
                None => return rows,
            }
        }
    }

    /// The bearer token this client uses.
    pub fn token(&self) -> &str {
        &self.token
    }

    pub async fn get(&self, object: &str, id: &str) -> Value {
        self.http
            .get(format!("{}{API}/sobjects/{object}/{id}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

pub fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A config file for the emulator and a store in `dir`.
pub fn write_config(dir: &Path, emulator: &RunningEmulator) -> PathBuf {
    write_config_with(dir, emulator, "")
}

/// A config file for the emulator and a store in `dir`, with `extra` TOML appended.
pub fn write_config_with(dir: &Path, emulator: &RunningEmulator, extra: &str) -> PathBuf {
    let secret = dir.join("client_secret");
    std::fs::write(&secret, emulator.client_secret()).unwrap();
    let config = dir.join("plansync.toml");
    std::fs::write(
        &config,
        format!(
            r#"[crm]
login_url = "{base}"
api_version = "62.0"

[crm.auth]
flow = "client_credentials"
client_id = "{id}"
client_secret_file = "{secret}"

[store]
path = "{store}"

[org]
timezone = "UTC"
{extra}
"#,
            base = emulator.base_url(),
            id = emulator.client_id(),
            secret = secret.display(),
            store = dir.join("plansync.db").display(),
        ),
    )
    .unwrap();
    config
}

/// Runs the real binary; returns (exit success, stdout, stderr).
pub async fn plansync(args: &[&str]) -> (bool, String, String) {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_plansync"))
            .args(&args)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}
