//! Helpers the end-to-end tests share: a plain REST client for the CRM, a config file for the
//! emulator and a store in a temp dir, and running the real binary.

use std::path::{Path, PathBuf};

use plansync::emulator::RunningEmulator;
use serde_json::{json, Value};

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

/// Runs the real binary; returns (exit status, stdout, stderr).
pub async fn plansync_code(args: &[&str]) -> (i32, String, String) {
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
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Runs the real binary; returns (exit success, stdout, stderr).
pub async fn plansync(args: &[&str]) -> (bool, String, String) {
    let (code, stdout, stderr) = plansync_code(args).await;
    (code == 0, stdout, stderr)
}

/// The hand-built org both the sync and the admin tests start from: account A (Acme) with
/// child B (Acme Europe); plan PA on A with child accounts for 2026 (target 100,000, close
/// ratio 50 %), plan PB on B for Q3 2026 (target 50,000); a won opportunity on A in March
/// (10,000), open ones on B in August (Prospecting, 20,000) and November
/// (Negotiation/Review, 30,000).
pub struct Acme {
    pub account_b: String,
    pub plan_a: String,
    pub plan_b: String,
    pub won_a: String,
    pub open_b_q3: String,
    pub open_b_nov: String,
}

impl Acme {
    pub async fn create(crm: &Crm) -> Acme {
        let account_a = crm.create("Account", json!({"Name": "Acme"})).await;
        let account_b = crm
            .create(
                "Account",
                json!({"Name": "Acme Europe", "ParentId": account_a}),
            )
            .await;
        let plan_a = crm
            .create(
                "Account_Plan__c",
                json!({"Name": "Acme 2026", "Account__c": account_a, "Status__c": "Active",
                       "Period_Start__c": "2026-01-01", "Period_End__c": "2026-12-31",
                       "Revenue_Target__c": 100000, "Close_Ratio__c": 50,
                       "Include_Child_Accounts__c": true}),
            )
            .await;
        let plan_b = crm
            .create(
                "Account_Plan__c",
                json!({"Name": "Acme Europe Q3", "Account__c": account_b, "Status__c": "Active",
                       "Period_Start__c": "2026-07-01", "Period_End__c": "2026-09-30",
                       "Revenue_Target__c": 50000}),
            )
            .await;
        let won_a = crm
            .create(
                "Opportunity",
                json!({"Name": "Won in March", "AccountId": account_a, "CloseDate": "2026-03-01",
                       "StageName": "Closed Won", "Amount": 10000}),
            )
            .await;
        let open_b_q3 = crm
            .create(
                "Opportunity",
                json!({"Name": "Europe in August", "AccountId": account_b,
                       "CloseDate": "2026-08-01", "StageName": "Prospecting", "Amount": 20000}),
            )
            .await;
        let open_b_nov = crm
            .create(
                "Opportunity",
                json!({"Name": "Europe in November", "AccountId": account_b,
                       "CloseDate": "2026-11-01", "StageName": "Negotiation/Review",
                       "Amount": 30000}),
            )
            .await;
        Acme {
            account_b,
            plan_a,
            plan_b,
            won_a,
            open_b_q3,
            open_b_nov,
        }
    }
}
