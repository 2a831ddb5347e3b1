//! The emulator as a server: its configuration and builder, the shared state behind the
//! routes, the gate every data request passes (version, session, daily limit, faults, the
//! `Sforce-Limit-Info` header), and the running server's in-process handle.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, NaiveDate, Utc};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::auth::{self, AuthConfig, JwtConfig, Sessions};
use super::calls::{CallCounter, CallCounts, CallKind};
use super::conn::{ConnectionKill, KillableListener};
use super::faults::{FaultKind, FaultSpec, FaultSpecError, RequestFaults};
use super::limits::{ApiUsage, DEFAULT_DAILY_API_LIMIT};
use super::org::Org;
use super::query::Locators;
use super::streaming::{self, Origin, Streaming, StreamingConfig};
use super::wire::{self, json_response, ApiError};
use super::{login, routes, seed};
use crate::metadata::Catalog;

/// Default OAuth client id (consumer key) of the emulator's connected app.
pub const DEFAULT_CLIENT_ID: &str = "plansync-emulator";
/// Default OAuth client secret (consumer secret).
pub const DEFAULT_CLIENT_SECRET: &str = "plansync-emulator-secret";
/// Default session lifetime: a real org's default session timeout, 2 hours.
pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(7200);

/// Why the emulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    #[error(
        "refusing to listen on {addr}, which is not a loopback address: the emulator has \
         well-known credentials; pass --allow-remote to listen there anyway"
    )]
    NotLoopback { addr: SocketAddr },
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot build the org: {0}")]
    Org(String),
    /// The metadata package would not deploy to a real org, or cannot be read.
    #[error("the metadata package {source_name} would be refused by a real org:\n{problems}\nfix the files named above (the rules are those of the Metadata API deploy)")]
    Metadata {
        /// The folder given, or "embedded in plansync".
        source_name: String,
        problems: String,
    },
    #[error("cannot read the metadata package {dir}: {source}")]
    MetadataRead {
        dir: PathBuf,
        #[source]
        source: crate::metadata::sfdx::MetadataError,
    },
}

/// Everything the emulator is started with.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    pub listen: SocketAddr,
    pub allow_remote: bool,
    /// Seed data set: `empty`, `demo` or `golden`.
    pub seed: String,
    pub scale: u32,
    pub client_id: String,
    pub client_secret: String,
    /// The refresh token the `refresh_token` grant accepts; random when `None`.
    pub refresh_token: Option<String>,
    pub jwt: Option<JwtConfig>,
    pub latency: Duration,
    pub faults: FaultSpec,
    pub daily_api_limit: u64,
    pub session_ttl: Duration,
    /// Corporate currency ISO code when the org has multi-currency turned on.
    pub multi_currency: Option<String>,
    /// The org's "today" for seeding (default: the current UTC date).
    pub today: Option<NaiveDate>,
    /// An SFDX project whose objects and fields the org gets instead of the package embedded
    /// in plansync (an admin's extended copy). Either package is checked against the deploy
    /// rules at start.
    pub metadata: Option<PathBuf>,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        EmulatorConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            allow_remote: false,
            seed: "empty".into(),
            scale: 1,
            client_id: DEFAULT_CLIENT_ID.into(),
            client_secret: DEFAULT_CLIENT_SECRET.into(),
            refresh_token: None,
            jwt: None,
            latency: Duration::ZERO,
            faults: FaultSpec::default(),
            daily_api_limit: DEFAULT_DAILY_API_LIMIT,
            session_ttl: DEFAULT_SESSION_TTL,
            multi_currency: None,
            today: None,
            metadata: None,
        }
    }
}

/// Entry point of the library API: `Emulator::builder().seed("demo").start().await`.
pub struct Emulator;

impl Emulator {
    /// A builder with an empty org on `127.0.0.1:0`.
    pub fn builder() -> EmulatorBuilder {
        EmulatorBuilder {
            config: EmulatorConfig::default(),
            streaming: StreamingConfig::default(),
        }
    }
}

/// Configures and starts an emulator.
#[derive(Debug, Clone)]
pub struct EmulatorBuilder {
    config: EmulatorConfig,
    streaming: StreamingConfig,
}

impl EmulatorBuilder {
    pub fn from_config(config: EmulatorConfig) -> Self {
        EmulatorBuilder {
            config,
            streaming: StreamingConfig::default(),
        }
    }
    /// The CometD endpoint's long-poll timeout, retention and overflow threshold.
    pub fn streaming(mut self, streaming: StreamingConfig) -> Self {
        self.streaming = streaming;
        self
    }
    /// How long a `/meta/connect` waits for change events (110 s by default).
    pub fn long_poll_timeout(mut self, timeout: Duration) -> Self {
        self.streaming.long_poll_timeout = timeout;
        self
    }
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.config.listen = addr;
        self
    }
    pub fn allow_remote(mut self, allow: bool) -> Self {
        self.config.allow_remote = allow;
        self
    }
    /// Seed data set: `empty` (default here), `demo` or `golden`.
    pub fn seed(mut self, name: &str) -> Self {
        self.config.seed = name.into();
        self
    }
    pub fn scale(mut self, scale: u32) -> Self {
        self.config.scale = scale;
        self
    }
    pub fn client(mut self, id: &str, secret: &str) -> Self {
        self.config.client_id = id.into();
        self.config.client_secret = secret.into();
        self
    }
    pub fn refresh_token(mut self, token: &str) -> Self {
        self.config.refresh_token = Some(token.into());
        self
    }
    pub fn jwt(mut self, jwt: JwtConfig) -> Self {
        self.config.jwt = Some(jwt);
        self
    }
    pub fn latency(mut self, latency: Duration) -> Self {
        self.config.latency = latency;
        self
    }
    pub fn faults(mut self, faults: FaultSpec) -> Self {
        self.config.faults = faults;
        self
    }
    pub fn daily_api_limit(mut self, limit: u64) -> Self {
        self.config.daily_api_limit = limit;
        self
    }
    pub fn session_ttl(mut self, ttl: Duration) -> Self {
        self.config.session_ttl = ttl;
        self
    }
    pub fn multi_currency(mut self, corporate_iso: &str) -> Self {
        self.config.multi_currency = Some(corporate_iso.into());
        self
    }
    pub fn today(mut self, today: NaiveDate) -> Self {
        self.config.today = Some(today);
        self
    }
    /// Serve the objects and fields of the SFDX project in `dir` (see [`EmulatorConfig`]).
    pub fn metadata(mut self, dir: impl Into<PathBuf>) -> Self {
        self.config.metadata = Some(dir.into());
        self
    }

    /// Builds the org, binds the address and starts serving on the current tokio runtime.
    pub async fn start(self) -> Result<RunningEmulator, EmulatorError> {
        let config = self.config;
        let streaming_config = self.streaming;
        if !config.allow_remote && !config.listen.ip().is_loopback() {
            return Err(EmulatorError::NotLoopback {
                addr: config.listen,
            });
        }
        let now = Utc::now();
        let today = config.today.unwrap_or_else(|| now.date_naive());
        let mut org = build_org(&config, today, now)?;
        // Seeding publishes nothing; every write from here on is journaled for the change
        // events.
        org.journal_changes(true);
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| EmulatorError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let addr = listener
            .local_addr()
            .map_err(|source| EmulatorError::Bind {
                addr: config.listen,
                source,
            })?;
        let base_url = format!("http://{addr}");
        let refresh_token = config
            .refresh_token
            .clone()
            .unwrap_or_else(|| format!("5Aep861{}", auth::random_token(80)));
        let shared = Arc::new(Shared {
            base_url: base_url.clone(),
            auth: AuthConfig {
                client_id: config.client_id.clone(),
                client_secret: config.client_secret.clone(),
                refresh_token,
                jwt: config.jwt.clone(),
            },
            sessions: Sessions::new(config.session_ttl),
            usage: ApiUsage::new(config.daily_api_limit),
            calls: CallCounter::default(),
            latency: config.latency,
            faults: Mutex::new(FaultState::new(config.faults.clone())),
            org: RwLock::new(org),
            locators: Mutex::new(Locators::default()),
            bulk: super::bulk::BulkJobs::default(),
            ingest: super::ingest::IngestJobs::default(),
            streaming: Streaming::new(streaming_config),
            composite_refused: std::sync::atomic::AtomicBool::new(false),
            in_flight: std::sync::atomic::AtomicU64::new(0),
            most_in_flight: std::sync::atomic::AtomicU64::new(0),
        });
        shared.apply_fail_records();
        shared
            .streaming
            .set_connect_schedule(config.faults.connect_schedule.clone());
        let app = router(shared.clone());
        let cancel = CancellationToken::new();
        let stop = cancel.clone();
        let task = tokio::spawn(async move {
            axum::serve(
                KillableListener(listener),
                app.into_make_service_with_connect_info::<ConnectionKill>(),
            )
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await
        });
        tracing::info!(%base_url, seed = %config.seed, scale = config.scale, "emulator listening");
        Ok(RunningEmulator {
            shared,
            addr,
            cancel,
            task: Some(task),
        })
    }
}

/// The org's objects: the standard ones and those of the package (the embedded one, or the
/// folder of `config.metadata`), refused when the package breaks a deploy rule.
fn package_catalog(config: &EmulatorConfig) -> Result<Catalog, EmulatorError> {
    use crate::metadata::{rules, sfdx, standard};
    let (source_name, files) = match &config.metadata {
        Some(dir) => {
            let files =
                sfdx::load_package_dir(dir).map_err(|source| EmulatorError::MetadataRead {
                    dir: dir.clone(),
                    source,
                })?;
            (dir.display().to_string(), files)
        }
        None => ("embedded in plansync".to_string(), sfdx::embedded_package()),
    };
    let refused = |problems: String| EmulatorError::Metadata {
        source_name: source_name.clone(),
        problems,
    };
    if !files.iter().any(|f| f.path == "sfdx-project.json") {
        return Err(refused(
            "  sfdx-project.json: missing: give the SFDX project folder (the one holding sfdx-project.json and force-app/)".into(),
        ));
    }
    let violations = rules::check(&files, &standard::standard_objects());
    if !violations.is_empty() {
        return Err(refused(rules::describe(&violations)));
    }
    let schema = sfdx::parse_package(&files).map_err(|e| refused(format!("  {e}")))?;
    standard::build(config.multi_currency.is_some(), schema).map_err(|e| refused(format!("  {e}")))
}

fn build_org(
    config: &EmulatorConfig,
    today: NaiveDate,
    now: DateTime<Utc>,
) -> Result<Org, EmulatorError> {
    let mut catalog = package_catalog(config)?;
    if let Some(iso) = &config.multi_currency {
        default_currency(&mut catalog, iso);
    }
    let mut org = Org::new(catalog, now);
    if let Some(iso) = &config.multi_currency {
        set_corporate_currency(&mut org, iso, now)?;
    }
    let summary = seed::seed(&mut org, &config.seed, config.scale, today, now)
        .map_err(|e| EmulatorError::Org(crate::error::chain(&e)))?;
    tracing::info!(seed = %summary.seed, records = summary.total(), "org seeded");
    Ok(org)
}

/// A record created without CurrencyIsoCode gets `iso`, as a real org gives it the creating
/// user's currency, which is the corporate one for the integration user of a new org.
fn default_currency(catalog: &mut crate::metadata::Catalog, iso: &str) {
    let objects: Vec<String> = catalog.objects().map(|o| o.name.clone()).collect();
    for name in objects {
        let Some(def) = catalog.object_mut(&name) else {
            continue;
        };
        if let Some(field) = def.fields.get_mut("currencyisocode") {
            if field.picklist_values.iter().any(|v| v.value == iso) {
                for v in &mut field.picklist_values {
                    v.default = v.value == iso;
                }
            }
        }
    }
}

/// Makes `iso` the corporate currency: its CurrencyType row gets rate 1 and `IsCorporate`,
/// and every other rate is restated against it.
fn set_corporate_currency(
    org: &mut Org,
    iso: &str,
    now: DateTime<Utc>,
) -> Result<(), EmulatorError> {
    use rust_decimal::Decimal;
    let rows: Vec<(String, String, Decimal)> = org
        .records("CurrencyType")
        .filter_map(|r| {
            let id = r.get("Id")?.as_str()?.to_string();
            let code = r.get("IsoCode")?.as_str()?.to_string();
            let rate: Decimal = r.get("ConversionRate")?.to_string().parse().ok()?;
            Some((id, code, rate))
        })
        .collect();
    let Some(base) = rows.iter().find(|(_, code, _)| code == iso).map(|r| r.2) else {
        let known: Vec<&str> = rows.iter().map(|r| r.1.as_str()).collect();
        return Err(EmulatorError::Org(format!(
            "--multi-currency {iso}: the org knows the currencies {}",
            known.join(", ")
        )));
    };
    if base.is_zero() {
        return Err(EmulatorError::Org(format!(
            "the conversion rate of {iso} is zero"
        )));
    }
    // The other currencies first: an org has one corporate currency at any time.
    let mut rows = rows;
    rows.sort_by_key(|(_, code, _)| code == iso);
    for (id, code, rate) in rows {
        let restated = (rate / base).round_dp(6).normalize();
        let mut fields = serde_json::Map::new();
        fields.insert(
            "ConversionRate".into(),
            serde_json::to_value(restated).unwrap_or(serde_json::Value::Null),
        );
        fields.insert("IsCorporate".into(), serde_json::Value::Bool(code == iso));
        org.update("CurrencyType", &id, &fields, now).map_err(|e| {
            EmulatorError::Org(format!("cannot make {iso} the corporate currency: {e}"))
        })?;
    }
    Ok(())
}

/// The fault spec in force and the number of data requests seen since it was set.
#[derive(Debug)]
pub(crate) struct FaultState {
    spec: FaultSpec,
    requests: u64,
}

impl FaultState {
    fn new(spec: FaultSpec) -> FaultState {
        FaultState { spec, requests: 0 }
    }

    fn next(&mut self) -> RequestFaults {
        if self.spec.is_empty() {
            return RequestFaults::none();
        }
        self.requests += 1;
        self.spec.decide(self.requests)
    }
}

/// State shared by every route.
pub(crate) struct Shared {
    pub base_url: String,
    pub auth: AuthConfig,
    pub sessions: Sessions,
    pub usage: ApiUsage,
    pub calls: CallCounter,
    pub latency: Duration,
    pub faults: Mutex<FaultState>,
    pub org: RwLock<Org>,
    pub locators: Mutex<Locators>,
    pub bulk: super::bulk::BulkJobs,
    /// The org's Bulk API 2.0 ingest jobs.
    pub ingest: super::ingest::IngestJobs,
    pub streaming: Streaming,
    /// The org does not serve the composite resource (`404 NOT_FOUND`), as an org at an API
    /// version before it.
    pub composite_refused: std::sync::atomic::AtomicBool,
    /// Requests being served now (their latency included), and the most served at once.
    pub in_flight: std::sync::atomic::AtomicU64,
    pub most_in_flight: std::sync::atomic::AtomicU64,
}

impl Shared {
    /// Publishes the change events of the writes committed since the last call, made through
    /// the REST API of `version` by the API client `client` (`Sforce-Call-Options`).
    pub fn publish_changes(&self, version: &str, client: Option<&str>) {
        // Most requests commit nothing: look under the read lock first.
        if !self.read_org().has_changes() {
            return;
        }
        // Published under the org's lock, so that replay ids follow the commit order of
        // concurrent requests.
        let mut org = self.write_org();
        let changes = org.take_changes();
        if !changes.is_empty() {
            let origin = Origin::rest(org.user_id(), version, client);
            self.streaming.publish_transaction(changes, &origin);
        }
    }

    pub fn read_org(&self) -> std::sync::RwLockReadGuard<'_, Org> {
        self.org.read().unwrap_or_else(|e| e.into_inner())
    }

    pub fn write_org(&self) -> std::sync::RwLockWriteGuard<'_, Org> {
        self.org.write().unwrap_or_else(|e| e.into_inner())
    }

    fn fault_state(&self) -> std::sync::MutexGuard<'_, FaultState> {
        self.faults.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn apply_fail_records(&self) {
        let name = self.fault_state().spec.fail_records.last().cloned();
        self.write_org().set_validation_failure(name);
    }

    pub(super) fn issue_token(&self, now: DateTime<Utc>) -> String {
        let org_id = self.read_org().org_id().to_string();
        self.sessions.issue(&org_id, now)
    }
}

/// A started emulator. Dropping it stops the server (without waiting); prefer
/// [`RunningEmulator::shutdown`].
pub struct RunningEmulator {
    shared: Arc<Shared>,
    addr: SocketAddr,
    cancel: CancellationToken,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl RunningEmulator {
    /// `http://127.0.0.1:PORT`: the instance URL.
    pub fn base_url(&self) -> &str {
        &self.shared.base_url
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn client_id(&self) -> &str {
        &self.shared.auth.client_id
    }

    pub fn client_secret(&self) -> &str {
        &self.shared.auth.client_secret
    }

    /// The refresh token the `refresh_token` grant accepts.
    pub fn refresh_token(&self) -> &str {
        &self.shared.auth.refresh_token
    }

    /// Opens a session without an HTTP round trip and returns its bearer token.
    pub fn access_token(&self) -> String {
        self.shared.issue_token(Utc::now())
    }

    /// Runs `f` on the org (create, update, delete records; read them).
    /// Its writes publish change events as one transaction made through the REST API.
    pub fn with_org<R>(&self, f: impl FnOnce(&mut Org) -> R) -> R {
        let result = f(&mut self.shared.write_org());
        self.shared
            .publish_changes(&format!("{}.0", wire::MAX_VERSION), None);
        result
    }

    /// The change events and the CometD clients: retained events, and the faults for tests
    /// (dropped connects, forgotten clients, gap and overflow events).
    pub fn streaming(&self) -> &Streaming {
        &self.shared.streaming
    }

    /// Replaces the fault spec; request numbering restarts at 1.
    pub fn set_faults(&self, spec: FaultSpec) {
        self.shared
            .streaming
            .set_connect_schedule(spec.connect_schedule.clone());
        *self.shared.fault_state() = FaultState::new(spec);
        self.shared.apply_fail_records();
    }

    /// Parses and sets a fault spec string.
    pub fn set_faults_str(&self, spec: &str) -> Result<(), FaultSpecError> {
        self.set_faults(FaultSpec::parse(spec)?);
        Ok(())
    }

    /// Ends every session, as an admin revoking tokens would.
    pub fn expire_sessions(&self) {
        self.shared.sessions.revoke_all();
        // Held CometD connects answer `401::Authentication invalid` at once.
        self.shared.streaming.wake();
    }

    /// Data API calls counted so far, and the daily maximum.
    pub fn api_usage(&self) -> (u64, u64) {
        (self.shared.usage.used(), self.shared.usage.max())
    }

    /// Requests received so far, by kind (the token requests included).
    pub fn calls(&self) -> CallCounts {
        self.shared.calls.snapshot()
    }

    /// The most requests the emulator served at the same time so far (its latency included).
    pub fn most_concurrent_calls(&self) -> u64 {
        self.shared
            .most_in_flight
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Makes the org refuse (or serve again) the composite resource with `404 NOT_FOUND`, as
    /// an org at an API version before it does.
    pub fn refuse_composite(&self, refuse: bool) {
        self.shared
            .composite_refused
            .store(refuse, std::sync::atomic::Ordering::SeqCst);
    }

    /// Sets the daily API call counter (e.g. to start near the limit).
    pub fn set_api_usage(&self, used: u64) {
        self.shared.usage.set_used(used);
    }

    /// The org's Bulk API 2.0 query jobs: refuse objects, make jobs fail.
    pub fn bulk(&self) -> &super::bulk::BulkJobs {
        &self.shared.bulk
    }

    /// The org's Bulk API 2.0 ingest jobs: their states and row results, the upload limit,
    /// jobs made to fail. Objects refused through [`RunningEmulator::bulk`] are refused to
    /// ingest jobs too.
    pub fn ingest(&self) -> &super::ingest::IngestJobs {
        &self.shared.ingest
    }

    /// Bulk API 2.0 query jobs created so far (`DailyBulkV2QueryJobs`).
    pub fn bulk_jobs_created(&self) -> u64 {
        self.shared.usage.bulk_jobs()
    }

    /// Sets the Bulk API 2.0 query job counter (e.g. to start near the daily allowance).
    pub fn set_bulk_jobs_created(&self, n: u64) {
        self.shared.usage.set_bulk_jobs(n);
    }

    /// Stops accepting connections, lets in-flight requests finish and waits for the server.
    pub async fn shutdown(mut self) {
        // Held CometD connects answer now instead of at their timeout.
        self.shared.streaming.close();
        self.cancel.cancel();
        if let Some(task) = self.task.take() {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(err)) => tracing::warn!(error = %err, "emulator server ended with an error"),
                Err(err) => tracing::warn!(error = %err, "emulator server task failed"),
            }
        }
    }
}

impl Drop for RunningEmulator {
    fn drop(&mut self) {
        self.shared.streaming.close();
        self.cancel.cancel();
    }
}

fn router(shared: Arc<Shared>) -> Router {
    let data = routes::data_routes()
        .route_layer(middleware::from_fn_with_state(shared.clone(), data_gate));
    Router::new()
        .route("/services/oauth2/token", post(login::token))
        .route("/services/oauth2/userinfo", get(login::userinfo))
        .route("/id/{org}/{user}", get(login::userinfo))
        .route("/services/data", get(versions))
        .route("/services/data/", get(versions))
        .route("/cometd/{version}", post(streaming::bayeux::cometd))
        .route("/cometd/{version}/{*rest}", post(streaming::bayeux::cometd))
        .merge(data)
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(|| async { ApiError::not_found() })
        .layer(middleware::from_fn_with_state(shared.clone(), latency))
        .with_state(shared)
}

/// A method the resource does not serve: the CRM's error array, not an empty 405.
async fn method_not_allowed(method: axum::http::Method) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        &format!("HTTP Method '{method}' not allowed"),
    )
}

/// Every request: counted by kind and while in flight, delayed by the configured latency.
async fn latency(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    use std::sync::atomic::Ordering;
    shared
        .calls
        .count(CallKind::of(request.method(), request.uri().path()));
    let now_in_flight = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    shared
        .most_in_flight
        .fetch_max(now_in_flight, Ordering::SeqCst);
    if !shared.latency.is_zero() {
        tokio::time::sleep(shared.latency).await;
    }
    let response = next.run(request).await;
    shared.in_flight.fetch_sub(1, Ordering::SeqCst);
    response
}

async fn versions() -> Response {
    json_response(StatusCode::OK, &wire::versions_body())
}

/// The API version of the request (`"59.0"`), set by the gate.
#[derive(Debug, Clone)]
pub(crate) struct ApiVersion(pub String);

/// The faults decided for the request, for routes that inject per-record faults.
#[derive(Debug, Clone)]
pub(crate) struct Faults(pub Arc<Mutex<RequestFaults>>);

/// Every `/services/data/vXX.X/...` request: version, session, daily limit, faults; then the
/// route; then `Sforce-Limit-Info` on the response.
async fn data_gate(
    State(shared): State<Arc<Shared>>,
    mut request: Request,
    next: Next,
) -> Response {
    let version = request
        .uri()
        .path()
        .split('/')
        .nth(3)
        .and_then(wire::parse_version)
        .map(str::to_string);
    let client = call_options_client(request.headers());
    let mut response = gate(&shared, &mut request, next).await;
    // The request was one transaction: publish the change events of what it committed.
    if let Some(version) = version {
        shared.publish_changes(&version, client.as_deref());
    }
    if let Ok(value) = HeaderValue::from_str(&shared.usage.header_value()) {
        response.headers_mut().insert("sforce-limit-info", value);
    }
    response
}

/// The `client=` of a `Sforce-Call-Options` header (`client=plansync, defaultNamespace=x`).
pub(crate) fn call_options_client(headers: &HeaderMap) -> Option<String> {
    let value = headers.get("sforce-call-options")?.to_str().ok()?;
    value
        .split(',')
        .filter_map(|part| part.trim().split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("client"))
        .map(|(_, v)| v.trim().to_string())
}

async fn gate(shared: &Arc<Shared>, request: &mut Request, next: Next) -> Response {
    let path = request.uri().path().to_string();
    let version = path
        .split('/')
        .nth(3)
        .and_then(wire::parse_version)
        .map(str::to_string);
    let Some(version) = version else {
        return ApiError::not_found().into_response();
    };
    let now = Utc::now();
    let token = auth::bearer(request.headers()).map(str::to_string);
    let Some(token) = token.filter(|t| shared.sessions.is_valid(t, now)) else {
        return ApiError::invalid_session().into_response();
    };
    if let Err(exceeded) = shared.usage.count() {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "REQUEST_LIMIT_EXCEEDED",
            &exceeded.to_string(),
        )
        .into_response();
    }
    let decided = shared.fault_state().next();
    match decided.fault {
        Some(FaultKind::Unavailable) => {
            return ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "SERVER_UNAVAILABLE",
                "Server too busy",
            )
            .into_response()
        }
        Some(FaultKind::Internal) => {
            return ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "UNKNOWN_EXCEPTION",
                "An unexpected error occurred. Please include this ErrorId if you contact \
                 support: 1045227812-60322 (-1581496373)",
            )
            .into_response()
        }
        Some(FaultKind::Expire) => {
            shared.sessions.revoke(&token);
            return ApiError::invalid_session().into_response();
        }
        Some(FaultKind::Drop) => {
            if let Some(ConnectInfo(kill)) =
                request.extensions().get::<ConnectInfo<ConnectionKill>>()
            {
                kill.kill();
            }
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
        Some(FaultKind::Slow) => tokio::time::sleep(Duration::from_millis(decided.slow_ms)).await,
        Some(FaultKind::Timeout) if is_query(&path) => {
            return ApiError::new(
                StatusCode::BAD_REQUEST,
                "QUERY_TIMEOUT",
                "Your query request was running for too long.",
            )
            .into_response()
        }
        _ => {}
    }
    request.extensions_mut().insert(ApiVersion(version));
    request
        .extensions_mut()
        .insert(Faults(Arc::new(Mutex::new(decided))));
    let request = std::mem::replace(request, Request::new(axum::body::Body::empty()));
    next.run(request).await
}

fn is_query(path: &str) -> bool {
    matches!(path.split('/').nth(4), Some("query" | "queryAll"))
}
