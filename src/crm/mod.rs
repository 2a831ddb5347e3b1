//! The Salesforce REST client: OAuth2 token flows, paged SOQL queries, sObject Collections
//! writes, limits tracking and retries. The only code that speaks HTTP to the CRM.
//!
//! One [`CrmClient`] holds one HTTP connection pool and one shared access token. The token is
//! fetched with the configured OAuth 2.0 flow ([`AuthConfig`]); the token exchange is written
//! by hand over `reqwest` because Salesforce's token response has no `expires_in`, carries the
//! `instance_url` every later call needs, and the JWT bearer grant is signed locally with
//! `jsonwebtoken`. A 401 refreshes the token once (one refresh in flight at a time) and
//! retries the request once. Idempotent requests are retried with jittered exponential
//! backoff on transport errors, timeouts, 5xx, 420 and 429; `403 REQUEST_LIMIT_EXCEEDED` is
//! never retried. Every response's `Sforce-Limit-Info` header updates [`CrmClient::api_usage`].

mod auth;
mod bulk;
mod client;
mod composite;
mod error;
mod ingest;
pub mod pages;
mod resources;
mod retry;
pub mod soql;
pub mod streaming;
mod wire;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde_json::{Map, Value};
use url::Url;

pub use bulk::{
    BulkOptions, BulkQuery, BulkRefusal, BulkResults, ColumnType, ColumnTypes,
    DEFAULT_BULK_MAX_RECORDS,
};
pub use client::CrmClient;

/// The client name, spelled once for the two constants below.
macro_rules! call_options_client {
    () => {
        "plansync"
    };
}

/// The client name plansync sends in every request's `Sforce-Call-Options` header: the CRM
/// writes it into the `changeOrigin` of the change events of plansync's own writes, so the
/// daemon can tell them from the changes that need a cycle.
pub const CALL_OPTIONS_CLIENT: &str = call_options_client!();
/// The `Sforce-Call-Options` header's value.
const CALL_OPTIONS: &str = concat!("client=", call_options_client!());
pub use composite::{
    PageRead, PageStart, RawQueryPage, COMPOSITE_MAX_QUERY_OR_COLLECTIONS, COMPOSITE_MAX_RECORDS,
};
pub use error::{CrmError, RecordError};
pub use ingest::{IngestCsv, IngestOperation, Ingested};
pub use retry::Backoff;

/// Where the CRM is and how to authenticate to it.
#[derive(Debug, Clone)]
pub struct CrmConfig {
    /// The OAuth host: `https://login.salesforce.com`, `https://test.salesforce.com` or the
    /// org's My Domain URL (required for the client credentials flow).
    pub login_url: Url,
    /// The REST host; when `None` it is taken from the token response's `instance_url`.
    pub instance_url: Option<Url>,
    /// The REST API version without the `v`, e.g. `"62.0"`.
    pub api_version: String,
    pub auth: AuthConfig,
    /// The timeout of every HTTP request (connect, send and read the whole body).
    pub timeout: Duration,
    /// How many times an idempotent request is retried after a transient failure.
    pub max_retries: u32,
}

/// The OAuth 2.0 flow that gets an access token. Secrets are never logged: their `Debug`
/// output is redacted.
#[derive(Debug, Clone)]
pub enum AuthConfig {
    /// Server-to-server JWT bearer grant, signed with RS256 (the production default).
    JwtBearer {
        /// The connected app's consumer key (`iss`).
        client_id: String,
        /// The Salesforce username the integration runs as (`sub`).
        username: String,
        /// The PEM private key (PKCS#1 or PKCS#8) whose certificate is on the connected app.
        private_key_pem: SecretString,
        /// The `aud` claim: `https://login.salesforce.com` or `https://test.salesforce.com`;
        /// an empty string means the login URL's origin.
        audience: String,
    },
    /// Client credentials grant; the login URL must be the org's My Domain.
    ClientCredentials {
        client_id: String,
        client_secret: SecretString,
    },
    /// Refresh token grant.
    RefreshToken {
        client_id: String,
        client_secret: Option<SecretString>,
        refresh_token: SecretString,
    },
}

/// One page of a SOQL query result.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryPage {
    /// Rows of the whole query (not of this page).
    pub total_size: u64,
    /// True on the last page.
    pub done: bool,
    /// The relative URL of the next page, present while `done` is false.
    pub next_records_url: Option<String>,
    /// The rows, with `attributes` removed from each row and from its nested parent records.
    pub records: Vec<Map<String, Value>>,
}

/// One record to write through the sObject Collections API.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordWrite {
    /// The sObject API name, e.g. `Account_Plan__c`.
    pub object: String,
    /// The record Id: required by [`CrmClient::update`], ignored by [`CrmClient::upsert`]
    /// (which matches on the external id field in `fields`).
    pub id: Option<String>,
    /// Field API names and their new values (`null` clears a field).
    pub fields: Map<String, Value>,
}

/// The outcome of one record in a collections request, in input order.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordResult {
    /// The record Id; absent on some failed rows.
    pub id: Option<String>,
    pub success: bool,
    /// For upserts: whether the record was inserted (true) or updated (false).
    pub created: Option<bool>,
    pub errors: Vec<RecordError>,
}

/// `GET /limits`: the org's daily API allowance and every other limit it reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// `DailyApiRequests`, when the org reports it.
    pub daily_api_requests: Option<Limit>,
    /// Every entry with a `Max` and a `Remaining`, by name.
    pub all: BTreeMap<String, Limit>,
}

/// One limit from `GET /limits`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub max: u64,
    pub remaining: u64,
}

impl Limit {
    /// Units used so far (`max - remaining`, never negative).
    pub fn used(&self) -> u64 {
        self.max.saturating_sub(self.remaining)
    }
}

/// API usage from the last `Sforce-Limit-Info: api-usage=used/max` header seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiUsage {
    /// Calls made in the rolling 24 hours.
    pub used: u64,
    /// The org's 24-hour allowance.
    pub max: u64,
}

impl ApiUsage {
    /// Usage as a percentage of the allowance (100 when the allowance is 0).
    pub fn percent(&self) -> f64 {
        if self.max == 0 {
            100.0
        } else {
            // A ratio for a threshold check, not money.
            self.used as f64 * 100.0 / self.max as f64
        }
    }
}

/// `GET /sobjects/{object}/deleted/`: records deleted in a window.
#[derive(Debug, Clone, PartialEq)]
pub struct DeletedRecords {
    /// (Id, deletedDate) pairs.
    pub deleted: Vec<(String, DateTime<Utc>)>,
    /// The oldest deletion the CRM still remembers; when later than the window's start the
    /// caller must fall back to a full reconcile.
    pub earliest_date_available: Option<DateTime<Utc>>,
    /// The end of the window actually covered; the next window starts here.
    pub latest_date_covered: Option<DateTime<Utc>>,
}
