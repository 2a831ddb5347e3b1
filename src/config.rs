//! The configuration file (TOML) layered with `PLANSYNC__SECTION__KEY` environment variables.
//!
//! [`load`] reads the file named by `--config` (default [`DEFAULT_PATH`]) and the process
//! environment; [`load_from`] takes both explicitly, for tests. Every section refuses unknown
//! keys, and every error names the key, where it came from (the file or the environment
//! variable) and what is allowed. Values are validated here, before anything starts: URLs,
//! the time zone, cron schedules, ranges and API names.
//!
//! Secrets (the client secret, the refresh token, the JWT private key) come from files named
//! in the TOML (`*_file`) or from environment variables, never from the TOML itself. They are
//! held as [`SecretString`], read from their files only when asked for, and never printed:
//! `Debug` shows `[REDACTED]` and the serialized form (`check-config`) shows `"[redacted]"`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use chrono_tz::Tz;
use rust_decimal::Decimal;
use secrecy::SecretString;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// Where the configuration file is looked for when `--config` is not given.
pub const DEFAULT_PATH: &str = "/etc/plansync/plansync.toml";
/// The prefix of the environment variables that override file keys.
pub const ENV_PREFIX: &str = "PLANSYNC__";

/// What went wrong, with the key, the source and what is allowed.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the configuration file {path} (give its path with --config PATH)")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The TOML is malformed or a value has the wrong type.
    #[error("{origin}: {message}")]
    Parse { origin: String, message: String },
    #[error("{origin}: unknown key `{key}`; allowed keys there: {allowed}")]
    UnknownKey {
        origin: String,
        key: String,
        allowed: String,
    },
    #[error("{origin}: `{key}` {message}")]
    Invalid {
        origin: String,
        key: String,
        message: String,
    },
    #[error(
        "{origin}: `{key}` holds a secret, and secrets are never read from the configuration \
         file; put it in a file named by `{file_key}`, or in the environment variable {env}"
    )]
    SecretInFile {
        origin: String,
        key: String,
        file_key: String,
        env: String,
    },
    #[error("cannot read the secret file {path} named by `{key}`")]
    SecretFile {
        key: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the secret file {path} named by `{key}` is empty")]
    EmptySecret { key: String, path: PathBuf },
}

/// The whole configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub crm: CrmSection,
    pub store: StoreSection,
    pub org: OrgSection,
    pub rollups: RollupsSection,
    pub linking: LinkingSection,
    pub mapping: Mapping,
    pub currency: CurrencySection,
    pub limits: LimitsSection,
    pub http: HttpSection,
    pub sync: SyncSection,
    pub schedule: ScheduleSection,
    pub metrics: MetricsSection,
    /// Where the configuration was read from (the file's path), for messages.
    #[serde(skip)]
    pub origin: String,
}

impl Config {
    /// Where the configuration was read from, for messages: the file's path.
    pub fn origin(&self) -> &str {
        if self.origin.is_empty() {
            "the configuration"
        } else {
            &self.origin
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CrmSection {
    /// The org's own URL; when unset, the one the token endpoint returns is used.
    pub instance_url: Option<String>,
    /// Where tokens are requested (`https://test.salesforce.com` for a sandbox).
    pub login_url: String,
    /// REST API version, like `62.0`.
    pub api_version: String,
    pub auth: CrmAuthSection,
}

impl Default for CrmSection {
    fn default() -> Self {
        CrmSection {
            instance_url: None,
            login_url: "https://login.salesforce.com".into(),
            api_version: "62.0".into(),
            auth: CrmAuthSection::default(),
        }
    }
}

/// Deserializes a unit enum from its snake_case name; the error lists every allowed name.
macro_rules! choice_deserialize {
    ($ty:ident { $($text:literal => $variant:ident),* $(,)? }) => {
        impl $ty {
            /// The name the configuration uses for this choice.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $text,)*
                }
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                match text.as_str() {
                    $($text => Ok($ty::$variant),)*
                    _ => Err(serde::de::Error::custom(format!(
                        "{text:?} is not allowed: use one of {}",
                        [$(concat!("\"", $text, "\"")),*].join(", ")
                    ))),
                }
            }
        }
    };
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthFlow {
    /// OAuth 2.0 JWT bearer: server to server, the production default.
    #[default]
    JwtBearer,
    ClientCredentials,
    RefreshToken,
}

choice_deserialize!(AuthFlow {
    "jwt_bearer" => JwtBearer,
    "client_credentials" => ClientCredentials,
    "refresh_token" => RefreshToken,
});

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CrmAuthSection {
    pub flow: AuthFlow,
    /// The connected app's consumer key.
    pub client_id: Option<String>,
    /// The user the JWT bearer flow acts as.
    pub username: Option<String>,
    pub private_key_file: Option<PathBuf>,
    pub client_secret_file: Option<PathBuf>,
    pub refresh_token_file: Option<PathBuf>,
    /// The JWT `aud`; defaults to `https://login.salesforce.com`, or
    /// `https://test.salesforce.com` for a sandbox login URL (never the My Domain URL).
    pub audience: Option<String>,
    /// From `PLANSYNC__CRM__AUTH__CLIENT_SECRET` only.
    #[serde(deserialize_with = "de_secret", serialize_with = "ser_secret")]
    pub client_secret: Option<SecretString>,
    /// From `PLANSYNC__CRM__AUTH__REFRESH_TOKEN` only.
    #[serde(deserialize_with = "de_secret", serialize_with = "ser_secret")]
    pub refresh_token: Option<SecretString>,
    /// The PEM text, from `PLANSYNC__CRM__AUTH__PRIVATE_KEY` only.
    #[serde(deserialize_with = "de_secret", serialize_with = "ser_secret")]
    pub private_key: Option<SecretString>,
}

/// The secret keys: (key under `[crm.auth]`, the key naming its file).
const SECRET_KEYS: &[(&str, &str)] = &[
    ("client_secret", "client_secret_file"),
    ("refresh_token", "refresh_token_file"),
    ("private_key", "private_key_file"),
];

impl CrmAuthSection {
    /// The client secret, from the environment or read now from `client_secret_file`.
    pub fn client_secret(&self) -> Result<Option<SecretString>, ConfigError> {
        secret(
            &self.client_secret,
            &self.client_secret_file,
            "client_secret_file",
        )
    }

    /// The refresh token, from the environment or read now from `refresh_token_file`.
    pub fn refresh_token(&self) -> Result<Option<SecretString>, ConfigError> {
        secret(
            &self.refresh_token,
            &self.refresh_token_file,
            "refresh_token_file",
        )
    }

    /// The JWT signing key (PEM), from the environment or read now from `private_key_file`.
    pub fn private_key_pem(&self) -> Result<Option<SecretString>, ConfigError> {
        secret(
            &self.private_key,
            &self.private_key_file,
            "private_key_file",
        )
    }

    /// Checks that the chosen flow has what it needs (without reading secret files), for
    /// commands that are about to talk to the CRM. `origin` names the configuration file.
    pub fn check_complete(&self, origin: &str) -> Result<(), ConfigError> {
        let missing = |key: &str, what: &str| ConfigError::Invalid {
            origin: origin.to_string(),
            key: format!("crm.auth.{key}"),
            message: format!("is required by the {} flow: {what}", self.flow.as_str()),
        };
        if self.client_id.is_none() {
            return Err(missing(
                "client_id",
                "set it under [crm.auth] to the connected app's consumer key, or set \
                 PLANSYNC__CRM__AUTH__CLIENT_ID",
            ));
        }
        match self.flow {
            AuthFlow::JwtBearer => {
                if self.username.is_none() {
                    return Err(missing("username", "the user the integration acts as"));
                }
                if self.private_key.is_none() && self.private_key_file.is_none() {
                    return Err(missing(
                        "private_key_file",
                        "or set PLANSYNC__CRM__AUTH__PRIVATE_KEY",
                    ));
                }
            }
            AuthFlow::ClientCredentials => {
                if self.client_secret.is_none() && self.client_secret_file.is_none() {
                    return Err(missing(
                        "client_secret_file",
                        "or set PLANSYNC__CRM__AUTH__CLIENT_SECRET",
                    ));
                }
            }
            AuthFlow::RefreshToken => {
                if self.refresh_token.is_none() && self.refresh_token_file.is_none() {
                    return Err(missing(
                        "refresh_token_file",
                        "or set PLANSYNC__CRM__AUTH__REFRESH_TOKEN",
                    ));
                }
            }
        }
        Ok(())
    }
}

fn secret(
    from_env: &Option<SecretString>,
    file: &Option<PathBuf>,
    file_key: &str,
) -> Result<Option<SecretString>, ConfigError> {
    if let Some(value) = from_env {
        return Ok(Some(value.clone()));
    }
    let Some(path) = file else {
        return Ok(None);
    };
    let key = format!("crm.auth.{file_key}");
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::SecretFile {
        key: key.clone(),
        path: path.clone(),
        source,
    })?;
    let trimmed = text.trim_end_matches(['\r', '\n']);
    if trimmed.trim().is_empty() {
        return Err(ConfigError::EmptySecret {
            key,
            path: path.clone(),
        });
    }
    Ok(Some(SecretString::from(trimmed.to_string())))
}

fn de_secret<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SecretString>, D::Error> {
    let value: Option<String> = Option::deserialize(d)?;
    Ok(value.filter(|v| !v.is_empty()).map(SecretString::from))
}

fn ser_secret<S: Serializer>(value: &Option<SecretString>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(_) => s.serialize_some("[redacted]"),
        None => s.serialize_none(),
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreSection {
    pub path: PathBuf,
}

impl Default for StoreSection {
    fn default() -> Self {
        StoreSection {
            path: PathBuf::from("/var/lib/plansync/plansync.db"),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OrgSection {
    /// The org's time zone: what "today" means for activity dates.
    #[serde(deserialize_with = "de_tz", serialize_with = "ser_display")]
    pub timezone: Tz,
}

impl Default for OrgSection {
    fn default() -> Self {
        OrgSection { timezone: Tz::UTC }
    }
}

fn de_tz<'de, D: Deserializer<'de>>(d: D) -> Result<Tz, D::Error> {
    let name = String::deserialize(d)?;
    name.parse::<Tz>().map_err(|_| {
        serde::de::Error::custom(format!(
            "unknown time zone {name:?}: use an IANA name such as \"Europe/Paris\", \
             \"America/New_York\" or \"UTC\""
        ))
    })
}

fn ser_display<T: std::fmt::Display, S: Serializer>(value: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(value)
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RollupsSection {
    /// Percent used when a plan has no close ratio and too little history.
    pub default_close_ratio: Decimal,
    pub engaged_contact_days: u32,
    /// Plan statuses whose rollups are written.
    pub statuses: Vec<String>,
}

impl Default for RollupsSection {
    fn default() -> Self {
        RollupsSection {
            default_close_ratio: Decimal::from(25),
            engaged_contact_days: 90,
            statuses: vec!["Active".into()],
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LinkingSection {
    /// Plan statuses an opportunity may be linked to.
    pub linkable_statuses: Vec<String>,
    /// A picklist on both the opportunity and the plan that must match, when set.
    pub discriminator_field: Option<String>,
}

impl Default for LinkingSection {
    fn default() -> Self {
        LinkingSection {
            linkable_statuses: vec!["Active".into(), "Closed".into()],
            discriminator_field: None,
        }
    }
}

/// Declares one `[mapping.<object>]` table: every API name with its default.
macro_rules! mapping_table {
    ($(#[$doc:meta])* $name:ident { $($field:ident = $default:literal),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(default, deny_unknown_fields)]
        pub struct $name {
            $(#[doc = concat!("Default `", $default, "`.")] pub $field: String,)*
        }

        impl Default for $name {
            fn default() -> Self {
                $name { $($field: $default.to_string(),)* }
            }
        }
    };
}

mapping_table!(
    /// `[mapping.account]`
    AccountMapping {
        object = "Account",
        name = "Name",
        parent_id = "ParentId",
        owner_id = "OwnerId",
    }
);

mapping_table!(
    /// `[mapping.opportunity]`
    OpportunityMapping {
        object = "Opportunity",
        name = "Name",
        account_id = "AccountId",
        amount = "Amount",
        close_date = "CloseDate",
        stage_name = "StageName",
        is_closed = "IsClosed",
        is_won = "IsWon",
        probability = "Probability",
        forecast_category = "ForecastCategoryName",
        currency_iso_code = "CurrencyIsoCode",
        owner_id = "OwnerId",
        plan_link = "Account_Plan__c",
        plan_link_locked = "Plan_Link_Locked__c",
    }
);

mapping_table!(
    /// `[mapping.contact]`
    ContactMapping {
        object = "Contact",
        account_id = "AccountId",
        name = "Name",
        title = "Title",
    }
);

mapping_table!(
    /// `[mapping.task]`
    TaskMapping {
        object = "Task",
        account_id = "AccountId",
        what_id = "WhatId",
        who_id = "WhoId",
        activity_date = "ActivityDate",
        is_closed = "IsClosed",
        status = "Status",
    }
);

mapping_table!(
    /// `[mapping.event]`
    EventMapping {
        object = "Event",
        account_id = "AccountId",
        what_id = "WhatId",
        who_id = "WhoId",
        activity_date = "ActivityDate",
        start_date_time = "StartDateTime",
        end_date_time = "EndDateTime",
        is_all_day_event = "IsAllDayEvent",
    }
);

mapping_table!(
    /// `[mapping.plan]`: the plan's inputs and the rollup fields written to it.
    PlanMapping {
        object = "Account_Plan__c",
        name = "Name",
        account = "Account__c",
        period_start = "Period_Start__c",
        period_end = "Period_End__c",
        revenue_target = "Revenue_Target__c",
        close_ratio = "Close_Ratio__c",
        include_child_accounts = "Include_Child_Accounts__c",
        status = "Status__c",
        currency_iso_code = "CurrencyIsoCode",
        owner_id = "OwnerId",
        won_amount = "Won_Amount__c",
        won_count = "Won_Count__c",
        lost_amount = "Lost_Amount__c",
        lost_count = "Lost_Count__c",
        open_pipeline = "Open_Pipeline__c",
        open_count = "Open_Count__c",
        weighted_pipeline = "Weighted_Pipeline__c",
        expected_revenue = "Expected_Revenue__c",
        new_sales_needed = "New_Sales_Needed__c",
        pipeline_needed = "Pipeline_Needed__c",
        pipeline_gap = "Pipeline_Gap__c",
        coverage_ratio = "Coverage_Ratio__c",
        attainment = "Attainment__c",
        forecast_target_variance = "Forecast_Target_Variance__c",
        last_activity_date = "Last_Activity_Date__c",
        next_activity_date = "Next_Activity_Date__c",
        overdue_task_count = "Overdue_Task_Count__c",
        contact_count = "Contact_Count__c",
        engaged_contact_count = "Engaged_Contact_Count__c",
        rollups_changed_at = "Rollups_Changed_At__c",
        sync_problem = "Sync_Problem__c",
    }
);

mapping_table!(
    /// `[mapping.plan_account]`: the extra accounts of a multi-account plan.
    PlanAccountMapping {
        object = "Account_Plan_Account__c",
        plan = "Account_Plan__c",
        account = "Account__c",
    }
);

mapping_table!(
    /// `[mapping.snapshot]`: the metric fields carry the same API names as on the plan; the
    /// plan's state on the date (target, close ratio used, status) and, in a multi-currency
    /// org, the currency of its amounts have their own fields.
    SnapshotMapping {
        object = "Account_Plan_Snapshot__c",
        plan = "Account_Plan__c",
        snapshot_date = "Snapshot_Date__c",
        snapshot_key = "Snapshot_Key__c",
        revenue_target = "Revenue_Target__c",
        close_ratio_used = "Close_Ratio_Used__c",
        plan_status = "Plan_Status__c",
        currency_iso_code = "CurrencyIsoCode",
    }
);

mapping_table!(
    /// `[mapping.currency_type]`
    CurrencyTypeMapping {
        object = "CurrencyType",
        iso_code = "IsoCode",
        conversion_rate = "ConversionRate",
        is_corporate = "IsCorporate",
    }
);

mapping_table!(
    /// `[mapping.dated_conversion_rate]`
    DatedConversionRateMapping {
        object = "DatedConversionRate",
        iso_code = "IsoCode",
        conversion_rate = "ConversionRate",
        start_date = "StartDate",
        next_start_date = "NextStartDate",
    }
);

/// `[mapping]`: the API name of every object and field plansync reads or writes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Mapping {
    pub account: AccountMapping,
    pub opportunity: OpportunityMapping,
    pub contact: ContactMapping,
    pub task: TaskMapping,
    pub event: EventMapping,
    pub plan: PlanMapping,
    pub plan_account: PlanAccountMapping,
    pub snapshot: SnapshotMapping,
    pub currency_type: CurrencyTypeMapping,
    pub dated_conversion_rate: DatedConversionRateMapping,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CurrencyMode {
    /// Decided every cycle from what the org has: `dated` when DatedConversionRate has rows,
    /// `static` when only CurrencyType exists, `single` otherwise.
    #[default]
    Auto,
    /// One currency: no conversion.
    Single,
    /// CurrencyType rates.
    Static,
    /// DatedConversionRate rates by CloseDate.
    Dated,
}

choice_deserialize!(CurrencyMode {
    "auto" => Auto,
    "single" => Single,
    "static" => Static,
    "dated" => Dated,
});

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CurrencySection {
    pub mode: CurrencyMode,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsSection {
    pub max_api_usage_percent: u8,
}

impl Default for LimitsSection {
    fn default() -> Self {
        LimitsSection {
            max_api_usage_percent: 80,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSection {
    pub timeout_seconds: u64,
    pub max_retries: u32,
}

impl Default for HttpSection {
    fn default() -> Self {
        HttpSection {
            timeout_seconds: 30,
            max_retries: 4,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyncSection {
    pub lookback_seconds: u64,
    pub batch_size: usize,
}

impl Default for SyncSection {
    fn default() -> Self {
        SyncSection {
            lookback_seconds: 600,
            batch_size: 200,
        }
    }
}

/// Cron schedules of the daemon, parsed at load.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScheduleSection {
    #[serde(deserialize_with = "de_cron", serialize_with = "ser_display")]
    pub incremental: cron::Schedule,
    #[serde(deserialize_with = "de_cron", serialize_with = "ser_display")]
    pub full: cron::Schedule,
    #[serde(deserialize_with = "de_cron", serialize_with = "ser_display")]
    pub snapshot: cron::Schedule,
}

const DEFAULT_INCREMENTAL: &str = "0 */5 * * * *";
const DEFAULT_FULL: &str = "0 30 2 * * *";
const DEFAULT_SNAPSHOT: &str = "0 0 6 1 * *";

fn parse_cron(text: &str) -> Result<cron::Schedule, String> {
    text.parse::<cron::Schedule>().map_err(|e| {
        let reason = e
            .to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        format!(
            "invalid cron expression {text:?} ({reason}): write six or seven fields, \
             \"sec min hour day-of-month month day-of-week [year]\", like \"0 */5 * * * *\""
        )
    })
}

fn default_schedule(text: &str) -> cron::Schedule {
    // Built-in constants, parsed by a test; never user input.
    #[allow(clippy::expect_used)]
    text.parse().expect("built-in cron schedule parses")
}

fn de_cron<'de, D: Deserializer<'de>>(d: D) -> Result<cron::Schedule, D::Error> {
    let text = String::deserialize(d)?;
    parse_cron(&text).map_err(serde::de::Error::custom)
}

impl Default for ScheduleSection {
    fn default() -> Self {
        ScheduleSection {
            incremental: default_schedule(DEFAULT_INCREMENTAL),
            full: default_schedule(DEFAULT_FULL),
            snapshot: default_schedule(DEFAULT_SNAPSHOT),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSection {
    /// Address of the metrics endpoint, like `127.0.0.1:39187`; off when unset. Any address
    /// other than a loopback one needs authentication below.
    pub listen: Option<SocketAddr>,
    /// `/healthz` answers 200 while a run succeeded within this many seconds. Unset: three
    /// incremental schedule periods.
    pub healthy_within_seconds: Option<u64>,
    /// A file holding the bearer token scrapers send (`Authorization: Bearer ...`).
    pub bearer_token_file: Option<PathBuf>,
    /// One basic-auth user: its name and the bcrypt hash of its password.
    pub basic_auth_username: Option<String>,
    pub basic_auth_password_bcrypt: Option<PasswordHash>,
    /// More basic-auth users, `{ username = "...", password_bcrypt = "$2y$..." }` each.
    pub basic_auth_users: Vec<BasicAuthUser>,
    /// Serve HTTPS with this certificate chain and private key (PEM files).
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
}

/// A basic-auth user of the metrics endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuthUser {
    pub username: String,
    pub password_bcrypt: PasswordHash,
}

/// A bcrypt password hash (`$2a$`, `$2b$` or `$2y$`, as `htpasswd -nBC 10 ""` prints). Not
/// the password, but worth guessing against offline: `Debug` and the serialized form hide it.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct PasswordHash(String);

impl PasswordHash {
    pub fn new(hash: impl Into<String>) -> PasswordHash {
        PasswordHash(hash.into())
    }

    /// The hash itself, for checking a password against it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the text has the form of a bcrypt hash: `$2?$CC$` and 53 characters of salt and
    /// hash in bcrypt's base64 alphabet.
    fn is_bcrypt(&self) -> bool {
        let text = self.0.as_str();
        let Some(rest) = ["$2a$", "$2b$", "$2y$"]
            .iter()
            .find_map(|prefix| text.strip_prefix(prefix))
        else {
            return false;
        };
        let Some((cost, body)) = rest.split_once('$') else {
            return false;
        };
        let cost_ok = cost.len() == 2 && cost.parse::<u32>().is_ok_and(|c| (4..=31).contains(&c));
        cost_ok
            && body.len() == 53
            && body
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'/')
    }
}

impl std::fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl Serialize for PasswordHash {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("[redacted]")
    }
}

impl MetricsSection {
    /// The basic-auth users: `basic_auth_username` with its hash, then `basic_auth_users`.
    pub fn basic_auth(&self) -> Vec<BasicAuthUser> {
        let single = match (&self.basic_auth_username, &self.basic_auth_password_bcrypt) {
            (Some(username), Some(hash)) => Some(BasicAuthUser {
                username: username.clone(),
                password_bcrypt: hash.clone(),
            }),
            _ => None,
        };
        single
            .into_iter()
            .chain(self.basic_auth_users.iter().cloned())
            .collect()
    }

    /// Whether scrapers must authenticate.
    pub fn has_auth(&self) -> bool {
        self.bearer_token_file.is_some() || !self.basic_auth().is_empty()
    }

    /// The bearer token, read now from `bearer_token_file`.
    pub fn bearer_token(&self) -> Result<Option<SecretString>, ConfigError> {
        let Some(path) = &self.bearer_token_file else {
            return Ok(None);
        };
        let key = "metrics.bearer_token_file".to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::SecretFile {
            key: key.clone(),
            path: path.clone(),
            source,
        })?;
        let token = text.trim();
        if token.is_empty() {
            return Err(ConfigError::EmptySecret {
                key,
                path: path.clone(),
            });
        }
        Ok(Some(SecretString::from(token.to_string())))
    }
}

fn validate_metrics(metrics: &MetricsSection, sources: &Sources<'_>) -> Result<(), ConfigError> {
    match (
        &metrics.basic_auth_username,
        &metrics.basic_auth_password_bcrypt,
    ) {
        (Some(_), None) => {
            return Err(sources.invalid(
                "metrics.basic_auth_username",
                "is set without `metrics.basic_auth_password_bcrypt`: add the bcrypt hash of \
                 the password (`htpasswd -nBC 10 \"\" | tr -d ':\\n'` prints one)"
                    .into(),
            ))
        }
        (None, Some(_)) => {
            return Err(sources.invalid(
                "metrics.basic_auth_password_bcrypt",
                "is set without `metrics.basic_auth_username`: name the user it belongs to".into(),
            ))
        }
        _ => {}
    }
    let mut names = std::collections::BTreeSet::new();
    let single = metrics.basic_auth_username.is_some();
    for (i, user) in metrics.basic_auth().into_iter().enumerate() {
        let (name_key, key) = if single && i == 0 {
            (
                "metrics.basic_auth_username",
                "metrics.basic_auth_password_bcrypt",
            )
        } else {
            ("metrics.basic_auth_users", "metrics.basic_auth_users")
        };
        let name = &user.username;
        if name.is_empty() || name.contains(':') || name.chars().any(char::is_control) {
            return Err(sources.invalid(
                name_key,
                format!(
                    "has the user name {:?}: a basic-auth user name is not empty and has no \
                     colon or control character",
                    user.username
                ),
            ));
        }
        if !user.password_bcrypt.is_bcrypt() {
            return Err(sources.invalid(
                key,
                format!(
                    "for user {:?} is not a bcrypt hash: give one like \"$2y$10$...\" \
                     (`htpasswd -nBC 10 \"\" | tr -d ':\\n'` prints one), never the password",
                    user.username
                ),
            ));
        }
        if !names.insert(user.username.clone()) {
            return Err(sources.invalid(
                "metrics.basic_auth_users",
                format!(
                    "names the user {:?} twice: keep one entry per user",
                    user.username
                ),
            ));
        }
    }
    match (&metrics.tls_cert_file, &metrics.tls_key_file) {
        (Some(_), None) => {
            return Err(sources.invalid(
                "metrics.tls_cert_file",
                "is set without `metrics.tls_key_file`: HTTPS needs both (PEM files)".into(),
            ))
        }
        (None, Some(_)) => {
            return Err(sources.invalid(
                "metrics.tls_key_file",
                "is set without `metrics.tls_cert_file`: HTTPS needs both (PEM files)".into(),
            ))
        }
        _ => {}
    }
    if let Some(addr) = metrics.listen {
        if !addr.ip().is_loopback() && !metrics.has_auth() {
            return Err(sources.invalid(
                "metrics.listen",
                format!(
                    "= \"{addr}\" is not a loopback address, and the endpoint has no \
                     authentication: set `metrics.bearer_token_file`, or \
                     `metrics.basic_auth_username` with `metrics.basic_auth_password_bcrypt` \
                     (or `metrics.basic_auth_users`), ideally with `metrics.tls_cert_file` and \
                     `metrics.tls_key_file`; or listen on 127.0.0.1 or [::1]"
                ),
            ));
        }
    }
    if metrics.healthy_within_seconds == Some(0) {
        return Err(sources.invalid(
            "metrics.healthy_within_seconds",
            "= 0: give the window in seconds, at least 1".into(),
        ));
    }
    Ok(())
}

/// Reads the file at `path` and the process environment.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let env: Vec<(String, String)> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect();
    load_from(&text, &path.display().to_string(), &env)
}

/// Builds the configuration from `toml_text` (named `origin` in errors) and the
/// `PLANSYNC__*` variables among `env`; the process environment is not read.
pub fn load_from(
    toml_text: &str,
    origin: &str,
    env: &[(String, String)],
) -> Result<Config, ConfigError> {
    let parse_err = |origin: &str| {
        let origin = origin.to_string();
        move |e: config::ConfigError| ConfigError::Parse {
            origin: origin.clone(),
            message: e.to_string(),
        }
    };
    let file = config::File::from_str(toml_text, config::FileFormat::Toml);
    let file_only = config::Config::builder()
        .add_source(file.clone())
        .build()
        .map_err(parse_err(origin))?;
    let file_tree: Value = file_only
        .clone()
        .try_deserialize()
        .map_err(parse_err(origin))?;
    let allowed = serde_json::to_value(Config::default()).unwrap_or_default();

    check_no_secrets(&file_tree, origin)?;
    check_keys(&file_tree, &allowed, "", origin)?;
    // The file alone first, so its errors name the file.
    file_only
        .try_deserialize::<Config>()
        .map_err(parse_err(origin))?;

    let overrides = env_overrides(env, &allowed)?;
    let mut builder = config::Config::builder().add_source(file);
    for o in &overrides {
        builder = match &o.value {
            EnvValue::Text(text) => builder.set_override(o.key.as_str(), text.as_str()),
            EnvValue::List(items) => builder.set_override(o.key.as_str(), items.clone()),
        }
        .map_err(parse_err(&format!("environment variable {}", o.name)))?;
    }
    let env_origin = if overrides.is_empty() {
        origin.to_string()
    } else {
        let names: Vec<&str> = overrides.iter().map(|o| o.name.as_str()).collect();
        format!(
            "{origin} with the environment variables {}",
            names.join(", ")
        )
    };
    let config: Config = builder
        .build()
        .and_then(|c| c.try_deserialize())
        .map_err(parse_err(&env_origin))?;

    let sources = Sources {
        file_origin: origin,
        file_tree: &file_tree,
        env: overrides
            .iter()
            .map(|o| (o.key.clone(), o.name.clone()))
            .collect(),
    };
    validate(&config, &sources)?;
    let mut config = config;
    config.origin = origin.to_string();
    Ok(config)
}

enum EnvValue {
    Text(String),
    List(Vec<String>),
}

struct EnvOverride {
    /// The variable's name, as given.
    name: String,
    /// The dotted key, like `crm.api_version`.
    key: String,
    value: EnvValue,
}

/// The `PLANSYNC__*` variables as dotted keys; unknown keys are refused. Empty values count
/// as unset. Lists are comma-separated.
fn env_overrides(
    env: &[(String, String)],
    allowed: &Value,
) -> Result<Vec<EnvOverride>, ConfigError> {
    let mut out = Vec::new();
    for (name, value) in env {
        let upper = name.to_ascii_uppercase();
        let Some(rest) = upper.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        if value.is_empty() {
            continue;
        }
        let segments: Vec<String> = rest.split("__").map(|s| s.to_ascii_lowercase()).collect();
        let key = segments.join(".");
        let origin = format!("environment variable {name}");
        let mut node = allowed;
        for (i, segment) in segments.iter().enumerate() {
            let parent = segments[..i].join(".");
            let Some(next) = node.as_object().and_then(|map| map.get(segment)) else {
                return Err(ConfigError::UnknownKey {
                    origin,
                    key,
                    allowed: allowed_env_names(&parent, node),
                });
            };
            node = next;
        }
        let value = match node {
            Value::Object(_) => {
                return Err(ConfigError::UnknownKey {
                    allowed: allowed_env_names(&key, node),
                    origin,
                    key,
                })
            }
            Value::Array(_) => EnvValue::List(
                value
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect(),
            ),
            _ => EnvValue::Text(value.clone()),
        };
        out.push(EnvOverride {
            name: name.clone(),
            key,
            value,
        });
    }
    Ok(out)
}

fn env_name(key: &str) -> String {
    format!(
        "{ENV_PREFIX}{}",
        key.replace('.', "__").to_ascii_uppercase()
    )
}

/// The variable names of the single values under `parent` (a table of the defaults).
fn allowed_env_names(parent: &str, node: &Value) -> String {
    let Some(map) = node.as_object() else {
        return format!("none: {} is a single value", env_name(parent));
    };
    map.iter()
        .filter(|(_, v)| !v.is_object())
        .map(|(k, _)| {
            if parent.is_empty() {
                env_name(k)
            } else {
                env_name(&format!("{parent}.{k}"))
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn check_no_secrets(file_tree: &Value, origin: &str) -> Result<(), ConfigError> {
    let auth = file_tree.pointer("/crm/auth");
    for (key, file_key) in SECRET_KEYS {
        if auth.and_then(|a| a.get(*key)).is_some() {
            let full = format!("crm.auth.{key}");
            return Err(ConfigError::SecretInFile {
                origin: origin.to_string(),
                env: env_name(&full),
                key: full,
                file_key: format!("crm.auth.{file_key}"),
            });
        }
    }
    Ok(())
}

/// Refuses any key of `given` that `allowed` (the defaults as a tree) does not have.
fn check_keys(given: &Value, allowed: &Value, path: &str, origin: &str) -> Result<(), ConfigError> {
    let (Value::Object(given), Value::Object(allowed)) = (given, allowed) else {
        return Ok(());
    };
    for (key, value) in given {
        let full = if path.is_empty() {
            key.clone()
        } else {
            format!("{path}.{key}")
        };
        let Some(expected) = allowed.get(key) else {
            let table = if path.is_empty() {
                "the top level".to_string()
            } else {
                format!("[{path}]")
            };
            let names: Vec<&str> = allowed.keys().map(String::as_str).collect();
            return Err(ConfigError::UnknownKey {
                origin: origin.to_string(),
                key: full,
                allowed: format!("{} (in {table})", names.join(", ")),
            });
        };
        check_keys(value, expected, &full, origin)?;
    }
    Ok(())
}

struct Sources<'a> {
    file_origin: &'a str,
    file_tree: &'a Value,
    env: BTreeMap<String, String>,
}

impl Sources<'_> {
    /// Where the value of `key` came from.
    fn origin(&self, key: &str) -> String {
        if let Some(name) = self.env.get(key) {
            return format!("environment variable {name}");
        }
        let pointer = format!("/{}", key.replace('.', "/"));
        if self.file_tree.pointer(&pointer).is_some() {
            self.file_origin.to_string()
        } else {
            "the built-in default".to_string()
        }
    }

    fn invalid(&self, key: &str, message: String) -> ConfigError {
        ConfigError::Invalid {
            origin: self.origin(key),
            key: key.to_string(),
            message,
        }
    }
}

fn validate(config: &Config, sources: &Sources<'_>) -> Result<(), ConfigError> {
    check_url(&config.crm.login_url, "crm.login_url", sources)?;
    let login_host = url::Url::parse(&config.crm.login_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_ascii_lowercase));
    if config.crm.auth.flow == AuthFlow::ClientCredentials
        && matches!(
            login_host.as_deref(),
            Some("login.salesforce.com" | "test.salesforce.com")
        )
    {
        return Err(sources.invalid(
            "crm.login_url",
            format!(
                "= {:?} is a shared login host, which answers the client_credentials flow with \
                 \"request not supported on this domain\": use your org's My Domain URL, like \
                 \"https://acme.my.salesforce.com\"",
                config.crm.login_url
            ),
        ));
    }
    if let Some(url) = &config.crm.instance_url {
        check_url(url, "crm.instance_url", sources)?;
    }
    let version = &config.crm.api_version;
    let numeric = version.split_once('.').is_some_and(|(major, minor)| {
        !major.is_empty() && major.bytes().all(|b| b.is_ascii_digit()) && minor == "0"
    });
    if !numeric {
        return Err(sources.invalid(
            "crm.api_version",
            format!("= {version:?} is not an API version: write the number only, like \"62.0\""),
        ));
    }
    let ratio = config.rollups.default_close_ratio;
    if ratio <= Decimal::ZERO || ratio > Decimal::from(100) {
        return Err(sources.invalid(
            "rollups.default_close_ratio",
            format!("= {ratio} is out of range: a percent greater than 0 and at most 100"),
        ));
    }
    let usage = config.limits.max_api_usage_percent;
    if !(1..=100).contains(&usage) {
        return Err(sources.invalid(
            "limits.max_api_usage_percent",
            format!("= {usage} is out of range: a percent from 1 to 100"),
        ));
    }
    if config.http.timeout_seconds == 0 {
        return Err(sources.invalid(
            "http.timeout_seconds",
            "= 0: every request needs a timeout of at least 1 second".into(),
        ));
    }
    let batch = config.sync.batch_size;
    if !(1..=200).contains(&batch) {
        return Err(sources.invalid(
            "sync.batch_size",
            format!("= {batch} is out of range: 1 to 200 (the sObject Collections limit)"),
        ));
    }
    validate_metrics(&config.metrics, sources)?;
    if let Some(field) = &config.linking.discriminator_field {
        check_api_name(field, "linking.discriminator_field", sources)?;
    }
    let mapping = serde_json::to_value(&config.mapping).unwrap_or_default();
    if let Value::Object(objects) = mapping {
        for (object, fields) in objects {
            if let Value::Object(fields) = fields {
                for (field, name) in fields {
                    let key = format!("mapping.{object}.{field}");
                    check_api_name(name.as_str().unwrap_or_default(), &key, sources)?;
                }
            }
        }
    }
    Ok(())
}

fn check_url(text: &str, key: &str, sources: &Sources<'_>) -> Result<(), ConfigError> {
    let url = url::Url::parse(text).map_err(|e| {
        sources.invalid(
            key,
            format!(
                "= {text:?} is not a URL ({e}): write it like \"https://login.salesforce.com\""
            ),
        )
    })?;
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        "http" => Err(sources.invalid(
            key,
            format!(
                "= {text:?} uses http://, which is allowed only for a loopback host (localhost, \
                 127.0.0.1, [::1], as for the emulator); use https://"
            ),
        )),
        other => Err(sources.invalid(
            key,
            format!("= {text:?} has scheme {other:?}: use https:// (or http:// on loopback)"),
        )),
    }
}

/// Salesforce API names: a letter, then letters, digits and underscores.
fn check_api_name(name: &str, key: &str, sources: &Sources<'_>) -> Result<(), ConfigError> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(sources.invalid(
            key,
            format!(
                "= {name:?} is not an API name: a letter followed by letters, digits and \
                 underscores, like \"Account_Plan__c\""
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    const EXAMPLE: &str = include_str!("../config/plansync.example.toml");

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn load_err(toml: &str, vars: &[(&str, &str)]) -> String {
        load_from(toml, "/etc/plansync/test.toml", &env(vars))
            .unwrap_err()
            .to_string()
    }

    fn as_tree(config: &Config) -> Value {
        serde_json::to_value(config).unwrap()
    }

    #[test]
    fn empty_file_gives_the_defaults() {
        let config = load_from("", "empty.toml", &[]).unwrap();
        assert_eq!(config.crm.api_version, "62.0");
        assert_eq!(config.crm.auth.flow, AuthFlow::JwtBearer);
        assert_eq!(
            config.store.path,
            Path::new("/var/lib/plansync/plansync.db")
        );
        assert_eq!(config.org.timezone, Tz::UTC);
        assert_eq!(config.rollups.default_close_ratio, Decimal::from(25));
        assert_eq!(config.linking.linkable_statuses, ["Active", "Closed"]);
        assert_eq!(config.mapping.opportunity.plan_link, "Account_Plan__c");
        assert_eq!(config.mapping.plan.won_amount, "Won_Amount__c");
        assert_eq!(config.currency.mode, CurrencyMode::Auto);
        assert_eq!(config.sync.batch_size, 200);
        assert_eq!(config.schedule.incremental.to_string(), DEFAULT_INCREMENTAL);
        assert_eq!(config.schedule.full.to_string(), DEFAULT_FULL);
        assert_eq!(config.schedule.snapshot.to_string(), DEFAULT_SNAPSHOT);
        assert_eq!(config.metrics.listen, None);
    }

    #[test]
    fn the_example_file_parses_and_shows_the_defaults() {
        let example = load_from(EXAMPLE, "plansync.example.toml", &[]).unwrap();
        assert_eq!(as_tree(&example), as_tree(&Config::default()));
    }

    #[test]
    fn the_example_file_documents_every_key() {
        // Every key of the defaults appears in the example, set or commented out.
        fn walk(tree: &Value, path: &str, out: &mut Vec<String>) {
            if let Value::Object(map) = tree {
                for (k, v) in map {
                    let full = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    if v.is_object() {
                        walk(v, &full, out);
                    } else {
                        out.push(full);
                    }
                }
            }
        }
        let mut keys = Vec::new();
        walk(&as_tree(&Config::default()), "", &mut keys);
        let env_only = [
            "crm.auth.client_secret",
            "crm.auth.refresh_token",
            "crm.auth.private_key",
        ];
        for key in keys.iter().filter(|k| !env_only.contains(&k.as_str())) {
            let (table, leaf) = key.rsplit_once('.').unwrap();
            let header = format!("[{table}]");
            let start = EXAMPLE
                .find(&header)
                .unwrap_or_else(|| panic!("{header} missing"));
            let section = &EXAMPLE[start + header.len()..];
            let section = &section[..section.find("\n[").unwrap_or(section.len())];
            let documented = section.lines().any(|l| {
                let l = l.trim_start_matches('#').trim_start();
                l.starts_with(&format!("{leaf} ="))
            });
            assert!(documented, "{key} is not in the example");
        }
    }

    #[test]
    fn file_values_are_read() {
        let config = load_from(
            r#"
            [crm]
            instance_url = "http://127.0.0.1:8080"
            [org]
            timezone = "Europe/Paris"
            [rollups]
            default_close_ratio = 33.5
            statuses = ["Active", "Closed"]
            [mapping.plan]
            object = "Plan__c"
            [currency]
            mode = "dated"
            [schedule]
            full = "0 0 3 * * Sun"
            [metrics]
            listen = "[::1]:39187"
            "#,
            "f.toml",
            &[],
        )
        .unwrap();
        assert_eq!(
            config.crm.instance_url.as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(config.org.timezone, chrono_tz::Europe::Paris);
        assert_eq!(config.rollups.default_close_ratio.to_string(), "33.5");
        assert_eq!(config.rollups.statuses, ["Active", "Closed"]);
        assert_eq!(config.mapping.plan.object, "Plan__c");
        assert_eq!(config.mapping.plan.won_amount, "Won_Amount__c");
        assert_eq!(config.currency.mode, CurrencyMode::Dated);
        assert_eq!(config.schedule.full.to_string(), "0 0 3 * * Sun");
        assert_eq!(config.metrics.listen, Some("[::1]:39187".parse().unwrap()));
    }

    #[test]
    fn unknown_keys_are_refused_naming_them() {
        let msg = load_err("[crm]\napi_verison = \"62.0\"\n", &[]);
        assert!(msg.contains("`crm.api_verison`"), "{msg}");
        assert!(msg.contains("/etc/plansync/test.toml"), "{msg}");
        assert!(msg.contains("api_version"), "allowed keys listed: {msg}");

        let msg = load_err("[mapping.opportunity]\nplan = \"X__c\"\n", &[]);
        assert!(msg.contains("`mapping.opportunity.plan`"), "{msg}");

        let msg = load_err("[bogus]\nx = 1\n", &[]);
        assert!(msg.contains("`bogus`"), "{msg}");

        let msg = load_err("", &[("PLANSYNC__CRM__API_VERISON", "62.0")]);
        assert!(msg.contains("PLANSYNC__CRM__API_VERISON"), "{msg}");
        assert!(
            msg.contains("PLANSYNC__CRM__API_VERSION"),
            "allowed names listed: {msg}"
        );

        let msg = load_err("", &[("PLANSYNC__CRM", "x")]);
        assert!(msg.contains("PLANSYNC__CRM__LOGIN_URL"), "{msg}");
    }

    #[test]
    fn environment_overrides_the_file() {
        let toml = "[crm]\napi_version = \"60.0\"\nlogin_url = \"https://acme.my.salesforce.com\"\n[rollups]\nengaged_contact_days = 30\n";
        let config = load_from(
            toml,
            "f.toml",
            &env(&[
                ("PLANSYNC__CRM__API_VERSION", "61.0"),
                ("PLANSYNC__ROLLUPS__ENGAGED_CONTACT_DAYS", "45"),
                ("PLANSYNC__ROLLUPS__STATUSES", "Active, Closed"),
                ("PLANSYNC__MAPPING__OPPORTUNITY__PLAN_LINK", "Plan__c"),
                ("PLANSYNC__CRM__AUTH__FLOW", "client_credentials"),
                ("PLANSYNC__CRM__AUTH__CLIENT_ID", "0042"),
                ("PLANSYNC_LOG", "debug"),
                ("HOME", "/root"),
            ]),
        )
        .unwrap();
        assert_eq!(config.crm.api_version, "61.0");
        assert_eq!(config.rollups.engaged_contact_days, 45);
        assert_eq!(config.rollups.statuses, ["Active", "Closed"]);
        assert_eq!(config.mapping.opportunity.plan_link, "Plan__c");
        assert_eq!(config.crm.auth.flow, AuthFlow::ClientCredentials);
        assert_eq!(config.crm.auth.client_id.as_deref(), Some("0042"));
        // Without the variables the file's values stand.
        let config = load_from(toml, "f.toml", &[]).unwrap();
        assert_eq!(config.crm.api_version, "60.0");
        assert_eq!(config.rollups.engaged_contact_days, 30);
    }

    #[test]
    fn bad_values_name_their_key() {
        let msg = load_err("[org]\ntimezone = \"Mars/Olympus\"\n", &[]);
        assert!(
            msg.contains("org.timezone") && msg.contains("Mars/Olympus"),
            "{msg}"
        );
        assert!(msg.contains("IANA"), "{msg}");

        let msg = load_err("[schedule]\nfull = \"every night\"\n", &[]);
        assert!(
            msg.contains("schedule.full") && msg.contains("cron"),
            "{msg}"
        );

        let msg = load_err("", &[("PLANSYNC__SCHEDULE__SNAPSHOT", "61 * * * * *")]);
        assert!(msg.contains("schedule.snapshot"), "{msg}");
        assert!(msg.contains("PLANSYNC__SCHEDULE__SNAPSHOT"), "{msg}");

        let msg = load_err("[crm.auth]\nflow = \"password\"\n", &[]);
        assert!(msg.contains("crm.auth.flow"), "{msg}");
        assert!(
            msg.contains("jwt_bearer") && msg.contains("refresh_token"),
            "{msg}"
        );

        let msg = load_err("[currency]\nmode = \"euro\"\n", &[]);
        assert!(
            msg.contains("currency.mode") && msg.contains("\"dated\""),
            "{msg}"
        );

        let msg = load_err("[crm]\nlogin_url = \"http://login.example.com\"\n", &[]);
        assert!(
            msg.contains("`crm.login_url`") && msg.contains("loopback"),
            "{msg}"
        );
        assert!(msg.contains("/etc/plansync/test.toml"), "{msg}");

        let msg = load_err("", &[("PLANSYNC__CRM__INSTANCE_URL", "http://10.0.0.5")]);
        assert!(msg.contains("`crm.instance_url`"), "{msg}");
        assert!(
            msg.contains("environment variable PLANSYNC__CRM__INSTANCE_URL"),
            "{msg}"
        );

        let msg = load_err(
            "[crm]\nlogin_url = \"https://login.salesforce.com\"\n[crm.auth]\nflow = \"client_credentials\"\n",
            &[],
        );
        assert!(
            msg.contains("`crm.login_url`") && msg.contains("My Domain"),
            "{msg}"
        );
        let ok = load_from("[crm]\nlogin_url = \"http://localhost:3000\"\n", "f", &[]);
        assert!(ok.is_ok(), "{ok:?}");

        let msg = load_err("[metrics]\nlisten = \"0.0.0.0:39187\"\n", &[]);
        assert!(
            msg.contains("metrics.listen")
                && msg.contains("loopback")
                && msg.contains("metrics.bearer_token_file")
                && msg.contains("metrics.basic_auth_username"),
            "{msg}"
        );

        let msg = load_err("[sync]\nbatch_size = 500\n", &[]);
        assert!(
            msg.contains("sync.batch_size") && msg.contains("200"),
            "{msg}"
        );

        let msg = load_err("[rollups]\ndefault_close_ratio = 0\n", &[]);
        assert!(msg.contains("rollups.default_close_ratio"), "{msg}");

        let msg = load_err("[mapping.plan]\nwon_amount = \"Won Amount\"\n", &[]);
        assert!(msg.contains("mapping.plan.won_amount"), "{msg}");

        let msg = load_err("[http]\ntimeout_seconds = \"soon\"\n", &[]);
        assert!(msg.contains("http.timeout_seconds"), "{msg}");

        let msg = load_err("[crm]\napi_version = \"v62\"\n", &[]);
        assert!(msg.contains("crm.api_version"), "{msg}");
    }

    #[test]
    fn secrets_in_the_file_are_refused() {
        for key in ["client_secret", "refresh_token", "private_key"] {
            let msg = load_err(&format!("[crm.auth]\n{key} = \"s3cr3t-value\"\n"), &[]);
            assert!(msg.contains(&format!("`crm.auth.{key}`")), "{msg}");
            assert!(msg.contains(&format!("crm.auth.{key}_file")), "{msg}");
            assert!(
                msg.contains(&format!("PLANSYNC__CRM__AUTH__{}", key.to_uppercase())),
                "{msg}"
            );
            assert!(!msg.contains("s3cr3t-value"), "{msg}");
        }
    }

    #[test]
    fn secrets_come_from_env_or_files_and_never_print() {
        let dir = tempfile::tempdir().unwrap();
        let token_path = dir.path().join("refresh-token");
        std::fs::write(&token_path, "file-token-value\n").unwrap();
        let toml = format!(
            "[crm.auth]\nflow = \"refresh_token\"\nclient_id = \"abc\"\nrefresh_token_file = {:?}\n",
            token_path.display().to_string()
        );
        let config = load_from(
            &toml,
            "f.toml",
            &env(&[("PLANSYNC__CRM__AUTH__CLIENT_SECRET", "env-secret-value")]),
        )
        .unwrap();
        let auth = &config.crm.auth;
        assert_eq!(
            auth.client_secret().unwrap().unwrap().expose_secret(),
            "env-secret-value"
        );
        assert_eq!(
            auth.refresh_token().unwrap().unwrap().expose_secret(),
            "file-token-value"
        );
        assert!(auth.private_key_pem().unwrap().is_none());
        auth.check_complete("f").unwrap();

        let debug = format!("{config:?} {auth:#?}");
        let shown = serde_json::to_string(&config).unwrap();
        for text in [&debug, &shown] {
            assert!(!text.contains("env-secret-value"), "{text}");
            assert!(!text.contains("file-token-value"), "{text}");
        }
        assert!(shown.contains("[redacted]"));

        // A missing file is reported when the secret is needed, naming the key and the path.
        let mut broken = auth.clone();
        broken.refresh_token_file = Some(dir.path().join("nope"));
        let msg = broken.refresh_token().unwrap_err().to_string();
        assert!(
            msg.contains("crm.auth.refresh_token_file") && msg.contains("nope"),
            "{msg}"
        );
    }

    #[test]
    fn incomplete_auth_names_the_missing_key() {
        let config = load_from("[crm.auth]\nclient_id = \"abc\"\n", "f", &[]).unwrap();
        let msg = config
            .crm
            .auth
            .check_complete(config.origin())
            .unwrap_err()
            .to_string();
        assert!(msg.contains("crm.auth.username"), "{msg}");
        assert!(msg.starts_with("f: "), "{msg}");
        assert!(msg.contains("the jwt_bearer flow"), "{msg}");
        let config = load_from(
            "[crm]\nlogin_url = \"https://acme.my.salesforce.com\"\n[crm.auth]\nflow = \"client_credentials\"\nclient_secret_file = \"s\"\n",
            "/etc/plansync/plansync.toml",
            &[],
        )
        .unwrap();
        let msg = config
            .crm
            .auth
            .check_complete(config.origin())
            .unwrap_err()
            .to_string();
        assert_eq!(
            msg,
            "/etc/plansync/plansync.toml: `crm.auth.client_id` is required by the \
             client_credentials flow: set it under [crm.auth] to the connected app's consumer \
             key, or set PLANSYNC__CRM__AUTH__CLIENT_ID"
        );
    }

    const HASH: &str = "$2y$04$S0bdVXcJHuWYJBHNX0FgNOhZ1UMcRavI2tYn3cGDv2AxqnL4hTs6q";

    #[test]
    fn metrics_on_any_address_need_authentication() {
        // With a bearer token file, or a basic-auth user, any address is accepted.
        let config = load_from(
            "[metrics]\nlisten = \"0.0.0.0:39187\"\nbearer_token_file = \"/run/token\"\n",
            "f.toml",
            &[],
        )
        .unwrap();
        assert!(config.metrics.has_auth());
        let toml = format!(
            "[metrics]\nlisten = \"0.0.0.0:39187\"\nbasic_auth_username = \"prometheus\"\n\
             basic_auth_password_bcrypt = \"{HASH}\"\n\
             basic_auth_users = [{{ username = \"grafana\", password_bcrypt = \"{HASH}\" }}]\n\
             tls_cert_file = \"/etc/plansync/tls/cert.pem\"\n\
             tls_key_file = \"/etc/plansync/tls/key.pem\"\n"
        );
        let config = load_from(&toml, "f.toml", &[]).unwrap();
        let users: Vec<String> = config
            .metrics
            .basic_auth()
            .into_iter()
            .map(|u| u.username)
            .collect();
        assert_eq!(users, ["prometheus", "grafana"]);
        // The hashes never show, in Debug or in the serialized form.
        let shown = format!("{:?} {}", config.metrics, as_tree(&config));
        assert!(!shown.contains(HASH) && !shown.contains("$2y$"), "{shown}");
        // The environment can point at a token file too (systemd's credentials).
        let config = load_from(
            "[metrics]\nlisten = \"192.0.2.7:39187\"\n",
            "f.toml",
            &env(&[(
                "PLANSYNC__METRICS__BEARER_TOKEN_FILE",
                "/run/credentials/token",
            )]),
        )
        .unwrap();
        assert!(config.metrics.has_auth());
    }

    #[test]
    fn metrics_authentication_settings_are_checked() {
        let msg = load_err("[metrics]\nbasic_auth_username = \"prometheus\"\n", &[]);
        assert!(msg.contains("`metrics.basic_auth_username`"), "{msg}");
        assert!(msg.contains("basic_auth_password_bcrypt"), "{msg}");
        let msg = load_err(
            "[metrics]\nbasic_auth_username = \"p\"\nbasic_auth_password_bcrypt = \"hunter2\"\n",
            &[],
        );
        assert!(
            msg.contains("`metrics.basic_auth_password_bcrypt`"),
            "{msg}"
        );
        assert!(msg.contains("not a bcrypt hash"), "{msg}");
        assert!(!msg.contains("hunter2"), "{msg}");
        let msg = load_err(
            &format!("[metrics]\nbasic_auth_username = \"a:b\"\nbasic_auth_password_bcrypt = \"{HASH}\"\n"),
            &[],
        );
        assert!(
            msg.contains("`metrics.basic_auth_username`") && msg.contains("colon"),
            "{msg}"
        );
        let msg = load_err(
            &format!(
                "[metrics]\nbasic_auth_users = [{{ username = \"a\", password_bcrypt = \"{HASH}\" }}, \
                 {{ username = \"a\", password_bcrypt = \"{HASH}\" }}]\n"
            ),
            &[],
        );
        assert!(
            msg.contains("`metrics.basic_auth_users`") && msg.contains("twice"),
            "{msg}"
        );
        let msg = load_err("[metrics]\ntls_cert_file = \"/c.pem\"\n", &[]);
        assert!(
            msg.contains("`metrics.tls_cert_file`") && msg.contains("tls_key_file"),
            "{msg}"
        );
    }

    #[test]
    fn the_metrics_bearer_token_is_read_from_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "s3cret-token\n").unwrap();
        let metrics = MetricsSection {
            bearer_token_file: Some(path.clone()),
            ..MetricsSection::default()
        };
        let token = metrics.bearer_token().unwrap().unwrap();
        assert_eq!(secrecy::ExposeSecret::expose_secret(&token), "s3cret-token");
        std::fs::write(&path, "\n").unwrap();
        let err = metrics.bearer_token().unwrap_err().to_string();
        assert!(
            err.contains("metrics.bearer_token_file") && err.contains("empty"),
            "{err}"
        );
        let missing = MetricsSection {
            bearer_token_file: Some(dir.path().join("absent")),
            ..MetricsSection::default()
        };
        let err = missing.bearer_token().unwrap_err().to_string();
        assert!(
            err.contains("metrics.bearer_token_file") && err.contains("absent"),
            "{err}"
        );
    }

    #[test]
    fn malformed_toml_names_the_file() {
        let msg = load_err("[crm\n", &[]);
        assert!(msg.contains("/etc/plansync/test.toml"), "{msg}");
    }

    #[test]
    fn load_reads_the_file_and_reports_a_missing_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plansync.toml");
        let err = load(&path).unwrap_err().to_string();
        assert!(
            err.contains("plansync.toml") && err.contains("--config"),
            "{err}"
        );
        std::fs::write(&path, "[sync]\nlookback_seconds = 60\n").unwrap();
        // The process environment may hold PLANSYNC__ variables; only check the file then.
        if std::env::vars().all(|(k, _)| !k.starts_with(ENV_PREFIX)) {
            assert_eq!(load(&path).unwrap().sync.lookback_seconds, 60);
        }
    }
}
