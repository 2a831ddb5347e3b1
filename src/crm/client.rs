//! [`CrmClient`]: one HTTP pool, one shared token (single-flight refresh), request sending
//! with retries ([`super::retry`]) and `Sforce-Limit-Info` tracking. The REST resources built
//! on [`CrmClient::execute`] are in [`super::resources`].

use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use oauth2::{AsyncHttpClient, HttpRequest, HttpResponse};
use reqwest::header::{HeaderMap, AUTHORIZATION, RETRY_AFTER};
use reqwest::Method;
use secrecy::ExposeSecret;
use serde_json::Value;
use tokio::sync::{Mutex, RwLock};
use tracing::Instrument;
use url::{Host, Url};

use super::auth::{token_error, Grant, Token};
use super::retry::{with_retries, Attempt, Backoff};
use super::wire;
use super::{ApiUsage, CrmConfig, CrmError};

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
#[derive(Clone, Copy)]
pub(super) enum Body<'a> {
    None,
    Json(&'a Value),
    /// A body built elsewhere (a token request); its headers come with it.
    Raw(&'a [u8]),
    /// CSV data (a Bulk API ingest job's upload), sent as `text/csv`.
    Csv(&'a [u8]),
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

pub(super) fn check_id(id: &str) -> Result<(), CrmError> {
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

/// The HTTP client of `builder` (its timeouts), following no redirect and naming plansync
/// and its version as the user agent.
pub(crate) fn http_client(builder: reqwest::ClientBuilder) -> Result<reqwest::Client, CrmError> {
    builder
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("plansync/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| {
            CrmError::InvalidConfig(format!("cannot build the HTTP client: {}", error_chain(&e)))
        })
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
        let http = http_client(
            reqwest::Client::builder()
                .timeout(config.timeout)
                .connect_timeout(config.timeout.min(Duration::from_secs(30)))
                .default_headers(call_options()),
        )?;
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

    /// The held token, fetching one if there is none.
    pub(super) async fn token(&self) -> Result<Arc<Token>, CrmError> {
        if let Some(token) = self.inner.token.read().await.clone() {
            return Ok(token);
        }
        self.refresh(None).await
    }

    /// Replaces the token unless another task already did. `stale` is the generation the
    /// caller found invalid; `None` means "any token will do". One refresh runs at a time;
    /// callers that waited for it use its token.
    pub(super) async fn refresh(&self, stale: Option<u64>) -> Result<Arc<Token>, CrmError> {
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
        let inner = &self.inner;
        let answer = with_retries(
            &inner.backoff,
            inner.max_retries,
            "the token request",
            true,
            |attempt| async move {
                let send = TokenHttp {
                    client: self,
                    attempt,
                };
                Ok(match inner.grant.exchange(&send, Utc::now()).await {
                    Ok(answer) => Attempt::Done(answer),
                    Err(e) => Attempt::Failed(e, None),
                })
            },
        )
        .await?;
        let instance = match &inner.configured_instance {
            Some(url) => url.clone(),
            None => {
                let text = answer.instance_url.as_deref().unwrap_or_default();
                let url = Url::parse(text).map_err(|_| CrmError::Decode {
                    what: "the token request".into(),
                    status: 200,
                    reason: format!("the token response has no usable instance_url ({text:?})"),
                    excerpt: String::new(),
                })?;
                check_url("the instance URL from the token response", &url)?;
                url
            }
        };
        *inner.instance.lock().unwrap_or_else(|e| e.into_inner()) = Some(instance.clone());
        let generation = inner.generation.fetch_add(1, Ordering::SeqCst) + 1;
        tracing::debug!(grant = inner.grant.name(), generation, instance = %instance, "fetched a CRM access token");
        Ok(Arc::new(Token {
            access_token: answer.access_token,
            instance_url: instance,
            generation,
            issued_at: answer.issued_at,
        }))
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
        let refreshed = &AtomicBool::new(false);
        let target = &target;
        let inner = &self.inner;
        with_retries(
            &inner.backoff,
            inner.max_retries,
            what,
            idempotent,
            |attempt| {
                let method = method.clone();
                async move {
                    let token = self.token().await?;
                    let mut url = token.instance_url.join(&target.path).map_err(|e| {
                        CrmError::InvalidRequest(format!("bad request path {}: {e}", target.path))
                    })?;
                    if !target.query.is_empty() {
                        url.query_pairs_mut().extend_pairs(target.query.iter());
                    }
                    let sent = self
                        .send_once(method, &url, Some(&token), HeaderMap::new(), body, attempt)
                        .await;
                    Ok(match sent {
                        Ok(raw) if (200..300).contains(&raw.status) => Attempt::Done(raw),
                        Ok(raw) if raw.status == 401 && wire::is_session_error(&raw.body) => {
                            if refreshed.swap(true, Ordering::SeqCst) {
                                return Err(CrmError::SessionExpired);
                            }
                            tracing::debug!(
                                what,
                                "session expired or invalid, refreshing the token"
                            );
                            self.refresh(Some(token.generation)).await?;
                            Attempt::Resend
                        }
                        Ok(raw) => Attempt::Failed(
                            wire::api_error(what, raw.status, &raw.body),
                            raw.retry_after,
                        ),
                        Err(e) => Attempt::Failed(e, None),
                    })
                }
            },
        )
        .await
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
                Body::Csv(bytes) => request
                    .header(reqwest::header::CONTENT_TYPE, "text/csv")
                    .body(bytes.to_vec()),
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

/// `Sforce-Call-Options: client=plansync` on every request (wire doc: the CRM names the client
/// in the `changeOrigin` of the change events a request's writes publish).
fn call_options() -> reqwest::header::HeaderMap {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        "sforce-call-options",
        reqwest::header::HeaderValue::from_static(super::CALL_OPTIONS),
    );
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
