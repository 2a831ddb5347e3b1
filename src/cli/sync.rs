//! `plansync sync`: one cycle against the configured CRM, and the wiring from the
//! configuration to the sync engine that every command running cycles shares.

use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use crate::config::{self, AuthFlow, Config, ConfigError, CurrencyMode};
use crate::crm::{AuthConfig, CrmClient, CrmConfig};
use crate::domain::Rules;
use crate::store::Store;
use crate::sync::{CycleOptions, Names, SyncEngine, SyncSettings};

use super::flags::{AsOf, CycleFlags};
use super::CliError;

/// The configuration file used when `--config` is not given.
pub const DEFAULT_CONFIG: &str = "/etc/plansync/plansync.toml";

/// Options of `plansync sync`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = super::help::EXIT_CYCLE)]
pub struct SyncArgs {
    /// The configuration file (TOML), layered with PLANSYNC__SECTION__KEY variables.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_CONFIG)]
    pub config: PathBuf,

    /// Re-pull every record (ignoring cursors), remove local rows the CRM no longer has,
    /// and recompute every plan. Example: plansync sync --full
    #[arg(long)]
    pub full: bool,

    #[command(flatten)]
    pub flags: CycleFlags,

    #[command(flatten)]
    pub as_of: AsOf,
}

pub async fn run(args: SyncArgs) -> Result<(), CliError> {
    let config = config::load(&args.config)?;
    let mut engine = engine_from_config(&config)?;
    let result = engine
        .run_cycle(CycleOptions {
            full: args.full,
            dry_run: args.flags.dry_run,
            as_of: args.as_of.as_of,
        })
        .await;
    match result {
        Ok(report) => args.flags.print_report(&report),
        Err(e) => Err(super::mapping::explain_failure(e, &config, engine.crm()).await),
    }
}

/// The CRM client's settings from `[crm]` and `[http]`, reading secrets from their files or
/// the environment.
pub fn crm_config(config: &Config) -> Result<CrmConfig, CliError> {
    let crm = &config.crm;
    let auth = &crm.auth;
    auth.check_complete(config.origin())?;
    let url = |key: &str, value: &str| {
        Url::parse(value).map_err(|e| {
            CliError::Config(ConfigError::Invalid {
                origin: config.origin().to_string(),
                key: key.into(),
                message: format!("is not a URL ({value:?}): {e}"),
            })
        })
    };
    let client_id = auth.client_id.clone().unwrap_or_default();
    let missing = |what: &str| {
        CliError::Config(ConfigError::Invalid {
            origin: config.origin().to_string(),
            key: format!("crm.auth.{what}"),
            message: format!("is needed by the {} flow", auth.flow.as_str()),
        })
    };
    let auth_config = match auth.flow {
        AuthFlow::JwtBearer => AuthConfig::JwtBearer {
            client_id,
            username: auth.username.clone().ok_or_else(|| missing("username"))?,
            private_key_pem: auth
                .private_key_pem()?
                .ok_or_else(|| missing("private_key_file"))?,
            audience: auth.audience.clone().unwrap_or_default(),
        },
        AuthFlow::ClientCredentials => AuthConfig::ClientCredentials {
            client_id,
            client_secret: auth
                .client_secret()?
                .ok_or_else(|| missing("client_secret_file"))?,
        },
        AuthFlow::RefreshToken => AuthConfig::RefreshToken {
            client_id,
            client_secret: auth.client_secret()?,
            refresh_token: auth
                .refresh_token()?
                .ok_or_else(|| missing("refresh_token_file"))?,
        },
    };
    Ok(CrmConfig {
        login_url: url("crm.login_url", &crm.login_url)?,
        instance_url: crm
            .instance_url
            .as_deref()
            .map(|u| url("crm.instance_url", u))
            .transpose()?,
        api_version: crm.api_version.clone(),
        auth: auth_config,
        timeout: Duration::from_secs(config.http.timeout_seconds),
        max_retries: config.http.max_retries,
    })
}

/// The sync engine's settings from `[org]`, `[rollups]`, `[linking]`, `[mapping]`,
/// `[limits]` and `[sync]`.
pub fn sync_settings(config: &Config) -> SyncSettings {
    // In `auto` each cycle turns the currency code fields off on a single-currency org.
    let multi_currency = config.currency.mode != CurrencyMode::Single;
    let discriminator = config.linking.discriminator_field.as_deref();
    SyncSettings {
        names: Names::from_mapping(&config.mapping, multi_currency, discriminator),
        rules: Rules {
            linkable_statuses: config.linking.linkable_statuses.clone(),
            rollup_statuses: config.rollups.statuses.clone(),
            default_close_ratio_percent: config.rollups.default_close_ratio,
            engaged_contact_days: i64::from(config.rollups.engaged_contact_days),
            timezone: config.org.timezone,
            use_discriminator: discriminator.is_some(),
        },
        lookback: chrono::Duration::seconds(
            i64::try_from(config.sync.lookback_seconds).unwrap_or(i64::MAX / 1000),
        ),
        batch_size: config.sync.batch_size,
        bulk_min_rows: config.sync.bulk_min_rows,
        bulk_min_writes: config.sync.bulk_min_writes,
        pull_concurrency: config.sync.pull_concurrency,
        max_api_usage_percent: config.limits.max_api_usage_percent,
        currency: config.currency.mode,
    }
}

/// A sync engine over the configured CRM and store.
pub fn engine_from_config(config: &Config) -> Result<SyncEngine, CliError> {
    let crm = CrmClient::new(crm_config(config)?)?;
    let store = Store::open(&config.store.path)?;
    Ok(SyncEngine::new(crm, store, sync_settings(config)))
}
