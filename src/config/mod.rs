//! The configuration file (TOML) layered with `PLANSYNC__SECTION__KEY` environment variables.
//!
//! [`load()`] reads the file named by `--config` (default [`DEFAULT_PATH`]) and the process
//! environment; [`load_from`] takes both explicitly, for tests. Every section refuses unknown
//! keys, and every error names the key, where it came from (the file or the environment
//! variable) and what is allowed. Values are validated here, before anything starts: URLs,
//! the time zone, cron schedules, ranges and API names.
//!
//! Secrets (the client secret, the refresh token, the JWT private key) come from files named
//! in the TOML (`*_file`) or from environment variables, never from the TOML itself. They are
//! held as [`SecretString`](secrecy::SecretString), read from their files only when asked
//! for, and never printed: `Debug` shows `[REDACTED]` and the serialized form
//! (`check-config`) shows `"[redacted]"`.
//!
//! The files: this one holds [`Config`]; `crm` its `[crm]` sections and secrets, `mapping`
//! the `[mapping]` tables, `metrics` the `[metrics]` endpoint, `sections` the small
//! sections and schedules, `load` the file and environment layering, `validate` the checks
//! run after loading, and `error` [`ConfigError`].

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

mod crm;
mod error;
mod load;
mod mapping;
mod metrics;
mod sections;
mod streaming;
#[cfg(test)]
mod tests;
mod validate;

use serde::{Deserialize, Serialize};

pub use crm::{AuthFlow, CrmAuthSection, CrmSection};
pub use error::ConfigError;
pub use load::{load, load_from};
pub use mapping::{
    AccountMapping, ContactMapping, CurrencyTypeMapping, DatedConversionRateMapping, EventMapping,
    Mapping, OpportunityMapping, PlanAccountMapping, PlanMapping, SnapshotMapping, TaskMapping,
};
pub use metrics::{BasicAuthUser, MetricsSection, PasswordHash};
pub use sections::{
    CurrencyMode, CurrencySection, HttpSection, LimitsSection, LinkingSection, OrgSection,
    RollupsSection, ScheduleSection, StoreSection, SyncSection,
};
pub use streaming::{StreamingChannels, StreamingSection};

/// Where the configuration file is looked for when `--config` is not given.
pub const DEFAULT_PATH: &str = "/etc/plansync/plansync.toml";
/// The prefix of the environment variables that override file keys.
pub const ENV_PREFIX: &str = "PLANSYNC__";

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
    pub streaming: StreamingSection,
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
