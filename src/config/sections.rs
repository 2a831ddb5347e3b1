//! The small sections: `[store]`, `[org]`, `[rollups]`, `[linking]`, `[currency]`,
//! `[limits]`, `[http]`, `[sync]` and the cron schedules of `[schedule]`.

use std::path::PathBuf;

use chrono_tz::Tz;
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

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

pub(super) fn ser_display<T: std::fmt::Display, S: Serializer>(
    value: &T,
    s: S,
) -> Result<S::Ok, S::Error> {
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
    /// Records per write call (a composite request of up to five Collections of 200).
    pub batch_size: usize,
    /// Objects expected to have at least this many rows are pulled whole through Bulk API
    /// 2.0 query jobs; smaller ones through REST queries.
    pub bulk_min_rows: u64,
    /// Write-backs of at least this many records of one object go through Bulk API 2.0
    /// ingest jobs; smaller ones through composite calls of `batch_size`.
    pub bulk_min_writes: u64,
    /// Objects pulled at the same time.
    pub pull_concurrency: usize,
}

impl Default for SyncSection {
    fn default() -> Self {
        SyncSection {
            lookback_seconds: 600,
            batch_size: 1000,
            bulk_min_rows: 10_000,
            bulk_min_writes: 10_000,
            pull_concurrency: 3,
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

pub(super) const DEFAULT_INCREMENTAL: &str = "0 */5 * * * *";
pub(super) const DEFAULT_FULL: &str = "0 30 2 * * *";
pub(super) const DEFAULT_SNAPSHOT: &str = "0 0 6 1 * *";

pub(super) fn parse_cron(text: &str) -> Result<cron::Schedule, String> {
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
