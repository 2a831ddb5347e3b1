//! [`CrmClient`]: one HTTP pool, one shared token (single-flight refresh), retries with
//! jittered backoff, `Sforce-Limit-Info` tracking, and the REST resources plansync uses.

use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use oauth2::{AsyncHttpClient, HttpRequest, HttpResponse};
use rand::Rng;
use reqwest::header::{HeaderMap, AUTHORIZATION, RETRY_AFTER};
use reqwest::Method;
use secrecy::ExposeSecret;
use serde_json::{json, Map, Value};
use tokio::sync::{Mutex, RwLock};
use tracing::Instrument;
use url::{Host, Url};

use super::auth::{token_error, Grant, Token};
use super::wire::{self, decode_error};
use super::{
    ApiUsage, CrmConfig, CrmError, DeletedRecords, Limits, QueryPage, RecordResult, RecordWrite,
};

/// Records per sObject Collections request (the API's maximum).
pub const COLLECTION_CHUNK: usize = 200;
/// Runs of consecutive same-type records allowed in one collections request.
const MAX_TYPE_RUNS: usize = 10;

/// Backoff between retries: attempt `n` (0-based) waits a random duration between half and
/// all of `min(base * 2^n, max)`. A `Retry-After` header, when present, sets a floor (capped
/// at `max`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_millis(500),
            max: Duration::from_secs(30),
        }
    }
}

impl Backoff {
    /// The wait before retry number `retry` (0-based).
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        let factor = 1u32.checked_shl(retry.min(20)).unwrap_or(u32::MAX);
        let ceiling = self.base.saturating_mul(factor).min(self.max);
        let low = ceiling / 2;
        let jittered = if ceiling > low {
            rand::thread_rng().gen_range(low..=ceiling)
        } else {
            ceiling
        };
        match retry_after {
            Some(floor) => jittered.max(floor.min(self.max)),
            None => jittered,
        }
    }
}

/// The Salesforce REST client. Cheap to clone: clones share the connection pool, the token
/// and the counters.
#[derive(Clone)]
pub struct CrmClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    login_url: Url,
    configured_instance: Option<Url>,
    api_version: String,
    grant: Grant,
    timeout: Duration,
    max_retries: u32,
    backoff: Backoff,
    token: RwLock<Option<Arc<Token>>>,
    refresh_lock: Mutex<()>,
    generation: AtomicU64,
    calls: AtomicU64,
    usage: std::sync::Mutex<Option<ApiUsage>>,
    instance: std::sync::Mutex<Option<Url>>,
}

impl fmt::Debug for CrmClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CrmClient")
            .field("login_url", &self.inner.login_url.as_str())
            .field("instance_url", &self.instance_url().map(|u| u.to_string()))
            .field("api_version", &self.inner.api_version)
            .field("grant", &self.inner.grant.name())
            .field("api_calls", &self.api_calls())
            .finish()
    }
}

/// A request body.
pub(super) enum Body<'a> {
    None,
    Json(&'a Value),
    /// A body built elsewhere (a token request); its headers come with it.
    Raw(&'a [u8]),
}

/// The HTTP client the `oauth2` grants send through: [`CrmClient::send_token_request`].
struct TokenHttp<'a> {
    client: &'a CrmClient,
    attempt: u32,
}

impl<'c> AsyncHttpClient<'c> for TokenHttp<'_> {
    type Error = CrmError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, CrmError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(self.client.send_token_request(request, self.attempt))
    }
}

/// What one HTTP exchange produced.
pub(super) struct Raw {
    pub(super) status: u16,
    pub(super) body: Vec<u8>,
    pub(super) retry_after: Option<Duration>,
    /// The response headers (Bulk API results carry their paging in `Sforce-Locator`).
    pub(super) headers: HeaderMap,
}

/// A data-API target relative to the instance URL.
pub(super) struct Target {
    pub(super) path: String,
    pub(super) query: Vec<(String, String)>,
}

impl Target {
    pub(super) fn path(path: String) -> Self {
        Target {
            path,
            query: Vec::new(),
        }
    }
}

/// `http://` is allowed only for loopback hosts (the emulator, tests).
fn check_url(what: &str, url: &Url) -> Result<(), CrmError> {
    match url.scheme() {
        "https" => Ok(()),
        "http" => {
            let loopback = match url.host() {
                Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
                Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
                Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
                None => false,
            };
            if loopback {
                Ok(())
            } else {
                Err(CrmError::InvalidConfig(format!(
                    "{what} {url} uses http://, which is allowed only for localhost; use https://"
                )))
            }
        }
        other => Err(CrmError::InvalidConfig(format!(
            "{what} {url} has scheme {other:?}; use https://"
        ))),
    }
}

/// Object and field API names go into URL paths: letters, digits and `_` only.
pub(super) fn check_name(kind: &str, name: &str) -> Result<(), CrmError> {
    if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Ok(())
    } else {
        Err(CrmError::InvalidRequest(format!(
            "{kind} {name:?} is not an API name (letters, digits and _ only)"
        )))
    }
}

fn check_id(id: &str) -> Result<(), CrmError> {
    if !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric()) {
        Ok(())
    } else {
        Err(CrmError::InvalidRequest(format!(
            "{id:?} is not a record Id"
        )))
    }
}

/// The URL without its query string, for logs and errors.
fn display_url(url: &Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

/// A reqwest error with its causes, without the URL (which the caller adds).
fn error_chain(e: &reqwest::Error) -> String {
    crate::error::chain(e)
}

/// Splits records into collections requests of at most 200 records and 10 same-type runs.
pub(super) fn chunk_records(records: &[RecordWrite]) -> Vec<&[RecordWrite]> {
    let mut chunks = Vec::new();
    let mut start = 0;
    while start < records.len() {
        let mut end = start;
        let mut runs = 0;
        while end < records.len() && end - start < COLLECTION_CHUNK {
            if end == start || records[end].object != records[end - 1].object {
                if runs == MAX_TYPE_RUNS {
                    break;
                }
                runs += 1;
            }
            end += 1;
        }
        chunks.push(&records[start..end]);
        start = end;
    }
    chunks
}

/// One collections record: `attributes.type`, then `id` when given, then the fields.
pub(super) fn collection_record(
    object: &str,
    id: Option<&str>,
    fields: &Map<String, Value>,
) -> Value {
    let mut record = Map::new();
    record.insert("attributes".into(), json!({ "type": object }));
    if let Some(id) = id {
        record.insert("id".into(), Value::String(id.to_string()));
    }
    for (name, value) in fields {
        if name == "attributes" || name.eq_ignore_ascii_case("id") {
            continue;
        }
        record.insert(name.clone(), value.clone());
    }
    Value::Object(record)
}

impl CrmClient {
    /// Builds a client with the default [`Backoff`]. Checks the URLs, the API version and
    /// the JWT key; does not contact the CRM (see [`CrmClient::authenticate`]).
    pub fn new(config: CrmConfig) -> Result<Self, CrmError> {
        Self::with_backoff(config, Backoff::default())
    }

    /// Builds a client with an explicit retry backoff.
    pub fn with_backoff(config: CrmConfig, backoff: Backoff) -> Result<Self, CrmError> {
        check_url("the login URL", &config.login_url)?;
        if let Some(instance) = &config.instance_url {
            check_url("the instance URL", instance)?;
        }
        let version = config.api_version.trim().trim_start_matches(['v', 'V']);
        let valid_version = version.split_once('.').is_some_and(|(a, b)| {
            !a.is_empty() && !b.is_empty() && a.chars().chain(b.chars()).all(|c| c.is_ascii_digit())
        });
        if !valid_version {
            return Err(CrmError::InvalidConfig(format!(
                "the API version {:?} is not of the form 62.0",
                config.api_version
            )));
        }
        if config.timeout.is_zero() {
            return Err(CrmError::InvalidConfig(
                "the request timeout must be above zero".into(),
            ));
        }
        let grant = Grant::new(config.auth, &config.login_url)?;
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(30)))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("plansync/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                CrmError::InvalidConfig(format!(
                    "cannot build the HTTP client: {}",
                    error_chain(&e)
                ))
            })?;
        Ok(CrmClient {
            inner: Arc::new(Inner {
                http,
                login_url: config.login_url,
                instance: std::sync::Mutex::new(config.instance_url.clone()),
                configured_instance: config.instance_url,
                api_version: version.to_string(),
                grant,
                timeout: config.timeout,
                max_retries: config.max_retries,
                backoff,
                token: RwLock::new(None),
                refresh_lock: Mutex::new(()),
                generation: AtomicU64::new(0),
                calls: AtomicU64::new(0),
                usage: std::sync::Mutex::new(None),
            }),
        })
    }

    /// Fetches a token now, replacing any held one. Fails fast on bad credentials
    /// ([`CrmError::Auth`]).
    pub async fn authenticate(&self) -> Result<(), CrmError> {
        let _flight = self.inner.refresh_lock.lock().await;
        let token = self.fetch_token().await?;
        *self.inner.token.write().await = Some(token);
        Ok(())
    }

    /// The first page of a SOQL query; `include_deleted` uses `queryAll` (soft-deleted and
    /// archived rows too). Follow [`QueryPage::next_records_url`] with [`CrmClient::query_more`].
    pub async fn query(&self, soql: &str, include_deleted: bool) -> Result<QueryPage, CrmError> {
        let resource = if include_deleted { "queryAll" } else { "query" };
        let target = Target {
            path: self.data_path(resource),
            query: vec![("q".to_string(), soql.to_string())],
        };
        let what = format!("the {resource} request");
        let raw = self
            .execute(Method::GET, target, Body::None, true, &what)
            .await?;
        wire::parse_query_page(&raw.body)
            .map_err(|reason| decode_error(&what, raw.status, reason, &raw.body))
    }

    /// The next page of a query, from the previous page's `nextRecordsUrl` (a path under
    /// `/services/data/`, or an absolute URL on the instance host).
    pub async fn query_more(&self, next_records_url: &str) -> Result<QueryPage, CrmError> {
        let target = self.relative_target(next_records_url)?;
        let what = "the next query page";
        let raw = self
            .execute(Method::GET, target, Body::None, true, what)
            .await?;
        wire::parse_query_page(&raw.body)
            .map_err(|reason| decode_error(what, raw.status, reason, &raw.body))
    }

    /// Updates records by Id with `PATCH /composite/sobjects` (`allOrNone=false`), in requests
    /// of at most 200 records. Returns one result per input record, in input order. Retried
    /// on transient failures (an update is idempotent).
    pub async fn update(&self, records: &[RecordWrite]) -> Result<Vec<RecordResult>, CrmError> {
        let mut bodies = Vec::with_capacity(records.len());
        for r in records {
            check_name("object", &r.object)?;
            let id = r.id.as_deref().ok_or_else(|| {
                CrmError::InvalidRequest(format!("an update of a {} record needs its Id", r.object))
            })?;
            bodies.push(collection_record(&r.object, Some(id), &r.fields));
        }
        self.collections(
            Method::PATCH,
            self.data_path("composite/sobjects"),
            records,
            bodies,
            true,
        )
        .await
    }

    /// Upserts records of one object matched on `external_id_field` with
    /// `PATCH /composite/sobjects/{object}/{field}`; results carry `created`. Retried on
    /// transient failures (an upsert by external id is idempotent).
    pub async fn upsert(
        &self,
        object: &str,
        external_id_field: &str,
        records: &[RecordWrite],
    ) -> Result<Vec<RecordResult>, CrmError> {
        check_name("object", object)?;
        check_name("external id field", external_id_field)?;
        let mut bodies = Vec::with_capacity(records.len());
        for r in records {
            if r.object != object {
                return Err(CrmError::InvalidRequest(format!(
                    "an upsert of {object} records got a {} record",
                    r.object
                )));
            }
            if !r.fields.contains_key(external_id_field) {
                return Err(CrmError::InvalidRequest(format!(
                    "an upsert on {object}.{external_id_field} needs that field in every record"
                )));
            }
            bodies.push(collection_record(object, None, &r.fields));
        }
        let path = self.data_path(&format!("composite/sobjects/{object}/{external_id_field}"));
        self.collections(Method::PATCH, path, records, bodies, true)
            .await
    }

    /// Creates records with `POST /composite/sobjects` (`allOrNone=false`), in requests of at
    /// most 200 records. Never retried after the request may have reached the CRM (a create
    /// is not idempotent); a 401 is still refreshed and resent, since nothing was created.
    pub async fn create(&self, records: &[RecordWrite]) -> Result<Vec<RecordResult>, CrmError> {
        let mut bodies = Vec::with_capacity(records.len());
        for r in records {
            check_name("object", &r.object)?;
            bodies.push(collection_record(&r.object, None, &r.fields));
        }
        self.collections(
            Method::POST,
            self.data_path("composite/sobjects"),
            records,
            bodies,
            false,
        )
        .await
    }

    /// Creates one record with `POST /sobjects/{object}/`. Not retried.
    pub async fn create_one(
        &self,
        object: &str,
        fields: &Map<String, Value>,
    ) -> Result<RecordResult, CrmError> {
        check_name("object", object)?;
        let body = Value::Object(fields.clone());
        let what = format!("the create of a {object} record");
        let target = Target::path(self.data_path(&format!("sobjects/{object}")));
        let raw = self
            .execute(Method::POST, target, Body::Json(&body), false, &what)
            .await?;
        wire::parse_record_result(&raw.body)
            .map_err(|reason| decode_error(&what, raw.status, reason, &raw.body))
    }

    /// Updates one record with `PATCH /sobjects/{object}/{id}` (204 on success).
    pub async fn update_one(
        &self,
        object: &str,
        id: &str,
        fields: &Map<String, Value>,
    ) -> Result<(), CrmError> {
        check_name("object", object)?;
        check_id(id)?;
        let body = Value::Object(fields.clone());
        let what = format!("the update of {object} {id}");
        let target = Target::path(self.data_path(&format!("sobjects/{object}/{id}")));
        self.execute(Method::PATCH, target, Body::Json(&body), true, &what)
            .await?;
        Ok(())
    }

    /// Deletes one record with `DELETE /sobjects/{object}/{id}` (204 on success; a record
    /// already deleted gives `ENTITY_IS_DELETED`).
    pub async fn delete_one(&self, object: &str, id: &str) -> Result<(), CrmError> {
        check_name("object", object)?;
        check_id(id)?;
        let what = format!("the delete of {object} {id}");
        let target = Target::path(self.data_path(&format!("sobjects/{object}/{id}")));
        self.execute(Method::DELETE, target, Body::None, true, &what)
            .await?;
        Ok(())
    }

    /// Sends a Composite Graph request (`POST /composite/graph`) and returns its JSON answer.
    /// Not retried.
    pub async fn composite_graph(&self, request: &Value) -> Result<Value, CrmError> {
        let what = "the composite graph request";
        let target = Target::path(self.data_path("composite/graph"));
        let raw = self
            .execute(Method::POST, target, Body::Json(request), false, what)
            .await?;
        serde_json::from_slice(&raw.body)
            .map_err(|e| decode_error(what, raw.status, format!("not JSON ({e})"), &raw.body))
    }

    /// `GET /limits`: the org's daily API allowance (and every other reported limit).
    pub async fn limits(&self) -> Result<Limits, CrmError> {
        let what = "the limits request";
        let raw = self
            .execute(
                Method::GET,
                Target::path(self.data_path("limits")),
                Body::None,
                true,
                what,
            )
            .await?;
        wire::parse_limits(&raw.body)
            .map_err(|reason| decode_error(what, raw.status, reason, &raw.body))
    }

    /// `GET /sobjects/{object}/describe` as raw JSON.
    pub async fn describe(&self, object: &str) -> Result<Value, CrmError> {
        check_name("object", object)?;
        let what = format!("the describe of {object}");
        let target = Target::path(self.data_path(&format!("sobjects/{object}/describe")));
        let raw = self
            .execute(Method::GET, target, Body::None, true, &what)
            .await?;
        serde_json::from_slice(&raw.body)
            .map_err(|e| decode_error(&what, raw.status, format!("not JSON ({e})"), &raw.body))
    }

    /// `GET /sobjects`: every object the integration user can see, with its key prefix, as
    /// raw JSON (`{"sobjects": [{"name", "keyPrefix", ...}]}`).
    pub async fn describe_global(&self) -> Result<Value, CrmError> {
        let what = "the list of objects";
        let target = Target::path(self.data_path("sobjects"));
        let raw = self
            .execute(Method::GET, target, Body::None, true, what)
            .await?;
        serde_json::from_slice(&raw.body)
            .map_err(|e| decode_error(what, raw.status, format!("not JSON ({e})"), &raw.body))
    }

    /// `GET /services/data`: the API versions the instance serves (`"62.0"` ...), oldest
    /// first as the CRM lists them.
    pub async fn versions(&self) -> Result<Vec<String>, CrmError> {
        let what = "the versions request";
        let raw = self
            .execute(
                Method::GET,
                Target::path("/services/data".to_string()),
                Body::None,
                true,
                what,
            )
            .await?;
        let body: Value = serde_json::from_slice(&raw.body)
            .map_err(|e| decode_error(what, raw.status, format!("not JSON ({e})"), &raw.body))?;
        let list = body
            .as_array()
            .ok_or_else(|| decode_error(what, raw.status, "not a JSON array", &raw.body))?;
        Ok(list
            .iter()
            .filter_map(|v| v["version"].as_str().map(str::to_string))
            .collect())
    }

    /// `GET /sobjects/{object}/deleted/?start=..&end=..`: records deleted in `[start, end]`.
    pub async fn get_deleted(
        &self,
        object: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<DeletedRecords, CrmError> {
        check_name("object", object)?;
        if start >= end {
            return Err(CrmError::InvalidRequest(format!(
                "getDeleted needs start before end, got {start} and {end}"
            )));
        }
        let what = format!("the getDeleted request for {object}");
        let target = Target {
            path: self.data_path(&format!("sobjects/{object}/deleted/")),
            query: vec![
                (
                    "start".into(),
                    start.to_rfc3339_opts(SecondsFormat::Secs, false),
                ),
                (
                    "end".into(),
                    end.to_rfc3339_opts(SecondsFormat::Secs, false),
                ),
            ],
        };
        let raw = self
            .execute(Method::GET, target, Body::None, true, &what)
            .await?;
        wire::parse_deleted(&raw.body)
            .map_err(|reason| decode_error(&what, raw.status, reason, &raw.body))
    }

    /// The last `Sforce-Limit-Info` usage seen on any response.
    pub fn api_usage(&self) -> Option<ApiUsage> {
        *self.inner.usage.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// HTTP requests this client has sent, including retries and token requests.
    pub fn api_calls(&self) -> u64 {
        self.inner.calls.load(Ordering::Relaxed)
    }

    /// The REST host: configured, or from the last token response.
    pub fn instance_url(&self) -> Option<Url> {
        self.inner
            .instance
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The API version in use, without the `v` (`"62.0"`).
    pub fn api_version(&self) -> &str {
        &self.inner.api_version
    }

    /// The held token's `Debug` output (tests check it shows no secret).
    #[cfg(test)]
    pub(crate) async fn inner_token_debug(&self) -> String {
        format!("{:?}", self.inner.token.read().await)
    }

    pub(super) fn data_path(&self, resource: &str) -> String {
        format!("/services/data/v{}/{}", self.inner.api_version, resource)
    }

    /// A `nextRecordsUrl`-style reference as a target on the instance host. Absolute URLs
    /// must point at the instance host, so the token is never sent elsewhere.
    pub(super) fn relative_target(&self, reference: &str) -> Result<Target, CrmError> {
        let bad = || {
            CrmError::InvalidRequest(format!(
                "{reference:?} is not a /services/data/ URL of the CRM instance"
            ))
        };
        let url = if reference.starts_with('/') {
            let base = Url::parse("https://instance.invalid").map_err(|_| bad())?;
            base.join(reference).map_err(|_| bad())?
        } else {
            let url = Url::parse(reference).map_err(|_| bad())?;
            let instance = self.instance_url().ok_or_else(bad)?;
            if url.origin() != instance.origin() {
                return Err(bad());
            }
            url
        };
        if !url.path().starts_with("/services/data/") {
            return Err(bad());
        }
        Ok(Target {
            path: url.path().to_string(),
            query: url
                .query_pairs()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        })
    }

    async fn collections(
        &self,
        method: Method,
        path: String,
        records: &[RecordWrite],
        bodies: Vec<Value>,
        idempotent: bool,
    ) -> Result<Vec<RecordResult>, CrmError> {
        let mut results = Vec::with_capacity(records.len());
        let mut offset = 0;
        for chunk in chunk_records(records) {
            let slice = &bodies[offset..offset + chunk.len()];
            offset += chunk.len();
            let body = json!({ "allOrNone": false, "records": slice });
            let what = format!("the collections {method} of {} records", chunk.len());
            let raw = self
                .execute(
                    method.clone(),
                    Target::path(path.clone()),
                    Body::Json(&body),
                    idempotent,
                    &what,
                )
                .await?;
            let chunk_results = wire::parse_record_results(&raw.body, chunk.len())
                .map_err(|reason| decode_error(&what, raw.status, reason, &raw.body))?;
            results.extend(chunk_results);
        }
        Ok(results)
    }

    /// The held token, fetching one if there is none.
    async fn token(&self) -> Result<Arc<Token>, CrmError> {
        if let Some(token) = self.inner.token.read().await.clone() {
            return Ok(token);
        }
        self.refresh(None).await
    }

    /// Replaces the token unless another task already did. `stale` is the generation the
    /// caller found invalid; `None` means "any token will do". One refresh runs at a time;
    /// callers that waited for it use its token.
    async fn refresh(&self, stale: Option<u64>) -> Result<Arc<Token>, CrmError> {
        let _flight = self.inner.refresh_lock.lock().await;
        if let Some(current) = self.inner.token.read().await.clone() {
            match stale {
                None => return Ok(current),
                Some(generation) if current.generation != generation => return Ok(current),
                Some(_) => {}
            }
        }
        let token = self.fetch_token().await?;
        *self.inner.token.write().await = Some(token.clone());
        Ok(token)
    }

    /// One token exchange (with retries on transient failures). Callers hold `refresh_lock`.
    async fn fetch_token(&self) -> Result<Arc<Token>, CrmError> {
        let mut retries = 0;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let send = TokenHttp {
                client: self,
                attempt,
            };
            let result = self.inner.grant.exchange(&send, Utc::now()).await;
            match result {
                Ok(answer) => {
                    let instance = match &self.inner.configured_instance {
                        Some(url) => url.clone(),
                        None => {
                            let text = answer.instance_url.as_deref().unwrap_or_default();
                            let url = Url::parse(text).map_err(|_| CrmError::Decode {
                                what: "the token request".into(),
                                status: 200,
                                reason: format!(
                                    "the token response has no usable instance_url ({text:?})"
                                ),
                                excerpt: String::new(),
                            })?;
                            check_url("the instance URL from the token response", &url)?;
                            url
                        }
                    };
                    *self
                        .inner
                        .instance
                        .lock()
                        .unwrap_or_else(|e| e.into_inner()) = Some(instance.clone());
                    let generation = self.inner.generation.fetch_add(1, Ordering::SeqCst) + 1;
                    tracing::debug!(grant = self.inner.grant.name(), generation, instance = %instance, "fetched a CRM access token");
                    return Ok(Arc::new(Token {
                        access_token: answer.access_token,
                        instance_url: instance,
                        generation,
                        issued_at: answer.issued_at,
                    }));
                }
                Err(e) if e.is_retryable() && retries < self.inner.max_retries => {
                    let delay = self.inner.backoff.delay(retries, None);
                    tracing::debug!(error = %e, ?delay, "token request failed, retrying");
                    retries += 1;
                    tokio::time::sleep(delay).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Sends one token request built by the grant: counted and recorded like every request.
    /// Hands back a 2xx answer as a `200` (all `oauth2` accepts); maps any other status to
    /// its error here, where the status is still known.
    async fn send_token_request(
        &self,
        request: HttpRequest,
        attempt: u32,
    ) -> Result<HttpResponse, CrmError> {
        let (parts, body) = request.into_parts();
        let url = Url::parse(&parts.uri.to_string()).map_err(|e| {
            CrmError::InvalidConfig(format!("bad token endpoint URL {}: {e}", parts.uri))
        })?;
        let mut headers = parts.headers;
        if let Some(value) = headers.get_mut(AUTHORIZATION) {
            value.set_sensitive(true);
        }
        let raw = self
            .send_once(parts.method, &url, None, headers, Body::Raw(&body), attempt)
            .await?;
        if !(200..300).contains(&raw.status) {
            return Err(token_error(raw.status, &raw.body));
        }
        Ok(HttpResponse::new(raw.body))
    }

    /// Sends a data-API request with the shared token: refreshes once on 401, retries
    /// idempotent requests on transient failures, and maps error answers to [`CrmError`].
    pub(super) async fn execute(
        &self,
        method: Method,
        target: Target,
        body: Body<'_>,
        idempotent: bool,
        what: &str,
    ) -> Result<Raw, CrmError> {
        let mut retries = 0;
        let mut attempt = 0;
        let mut refreshed = false;
        loop {
            attempt += 1;
            let token = self.token().await?;
            let mut url = token.instance_url.join(&target.path).map_err(|e| {
                CrmError::InvalidRequest(format!("bad request path {}: {e}", target.path))
            })?;
            if !target.query.is_empty() {
                url.query_pairs_mut().extend_pairs(target.query.iter());
            }
            let body_now = match &body {
                Body::None => Body::None,
                Body::Json(v) => Body::Json(v),
                Body::Raw(b) => Body::Raw(b),
            };
            let (error, retry_after) = match self
                .send_once(
                    method.clone(),
                    &url,
                    Some(&token),
                    HeaderMap::new(),
                    body_now,
                    attempt,
                )
                .await
            {
                Ok(raw) if (200..300).contains(&raw.status) => return Ok(raw),
                Ok(raw) if raw.status == 401 && wire::is_session_error(&raw.body) => {
                    if refreshed {
                        return Err(CrmError::SessionExpired);
                    }
                    refreshed = true;
                    tracing::debug!(what, "session expired or invalid, refreshing the token");
                    self.refresh(Some(token.generation)).await?;
                    continue;
                }
                Ok(raw) => (
                    wire::api_error(what, raw.status, &raw.body),
                    raw.retry_after,
                ),
                Err(e) => (e, None),
            };
            if idempotent && error.is_retryable() && retries < self.inner.max_retries {
                let delay = self.inner.backoff.delay(retries, retry_after);
                tracing::debug!(what, error = %error, ?delay, retry = retries + 1, "retrying");
                retries += 1;
                tokio::time::sleep(delay).await;
                continue;
            }
            return Err(error);
        }
    }

    /// One HTTP exchange: counts it, records `Sforce-Limit-Info`, reads the whole body.
    async fn send_once(
        &self,
        method: Method,
        url: &Url,
        token: Option<&Token>,
        headers: HeaderMap,
        body: Body<'_>,
        attempt: u32,
    ) -> Result<Raw, CrmError> {
        self.inner.calls.fetch_add(1, Ordering::Relaxed);
        let span = tracing::debug_span!(
            "crm_request",
            method = %method,
            path = %url.path(),
            attempt,
            status = tracing::field::Empty,
        );
        let shown = display_url(url);
        let what = format!("{method} {}", url.path());
        async {
            let mut request = self.inner.http.request(method, url.clone());
            if let Some(token) = token {
                request = request.bearer_auth(token.access_token.expose_secret());
            }
            if !headers.is_empty() {
                request = request.headers(headers);
            }
            request = match body {
                Body::None => request,
                Body::Json(value) => request.json(value),
                Body::Raw(bytes) => request.body(bytes.to_vec()),
            };
            let map_err = |e: reqwest::Error| {
                if e.is_timeout() {
                    CrmError::Timeout {
                        what: what.clone(),
                        timeout: self.inner.timeout,
                    }
                } else {
                    CrmError::Transport {
                        url: shown.clone(),
                        message: error_chain(&e.without_url()),
                    }
                }
            };
            let response = request.send().await.map_err(map_err)?;
            let status = response.status().as_u16();
            tracing::Span::current().record("status", status);
            if let Some(usage) = response
                .headers()
                .get("sforce-limit-info")
                .and_then(|v| v.to_str().ok())
                .and_then(wire::parse_limit_info)
            {
                *self.inner.usage.lock().unwrap_or_else(|e| e.into_inner()) = Some(usage);
            }
            let retry_after = response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let headers = response.headers().clone();
            let body = response.bytes().await.map_err(map_err)?.to_vec();
            tracing::debug!(status, bytes = body.len(), "CRM response");
            Ok(Raw {
                status,
                body,
                retry_after,
                headers,
            })
        }
        .instrument(span)
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(object: &str) -> RecordWrite {
        RecordWrite {
            object: object.into(),
            id: None,
            fields: Map::new(),
        }
    }

    #[test]
    fn chunks_respect_size_and_type_runs() {
        let same: Vec<_> = (0..450).map(|_| rec("A")).collect();
        let sizes: Vec<_> = chunk_records(&same).iter().map(|c| c.len()).collect();
        assert_eq!(sizes, vec![200, 200, 50]);

        let alternating: Vec<_> = (0..25)
            .map(|i| rec(if i % 2 == 0 { "A" } else { "B" }))
            .collect();
        let sizes: Vec<_> = chunk_records(&alternating)
            .iter()
            .map(|c| c.len())
            .collect();
        assert_eq!(sizes, vec![10, 10, 5]);
        assert!(chunk_records(&[]).is_empty());
    }

    #[test]
    fn http_only_for_loopback() {
        for ok in [
            "https://x.my.salesforce.com",
            "http://127.0.0.1:8080",
            "http://localhost:1",
            "http://[::1]:9",
        ] {
            assert!(check_url("u", &Url::parse(ok).unwrap()).is_ok(), "{ok}");
        }
        for bad in [
            "http://x.my.salesforce.com",
            "http://10.0.0.1",
            "ftp://localhost",
        ] {
            assert!(
                matches!(
                    check_url("u", &Url::parse(bad).unwrap()),
                    Err(CrmError::InvalidConfig(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn backoff_grows_with_jitter_and_cap() {
        let b = Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        for _ in 0..50 {
            let d0 = b.delay(0, None);
            assert!(
                d0 >= Duration::from_millis(50) && d0 <= Duration::from_millis(100),
                "{d0:?}"
            );
            let d3 = b.delay(3, None);
            assert!(
                d3 >= Duration::from_millis(400) && d3 <= Duration::from_millis(800),
                "{d3:?}"
            );
            assert!(b.delay(30, None) <= Duration::from_secs(1));
        }
        assert!(b.delay(0, Some(Duration::from_millis(700))) >= Duration::from_millis(700));
        assert!(b.delay(0, Some(Duration::from_secs(60))) <= Duration::from_secs(1));
    }
}
