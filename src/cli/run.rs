//! `plansync run`: the daemon, as systemd starts it.

use std::path::PathBuf;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::config;
use crate::daemon::lock::StoreLock;
use crate::daemon::metrics::{Endpoint, COMMIT, VERSION};
use crate::daemon::scheduler::period;
use crate::daemon::stream::StreamingSettings;
use crate::daemon::{signals, Daemon, DaemonError, DaemonSettings};

use super::sync::{engine_from_config, DEFAULT_CONFIG};
use super::CliError;

/// Options of `plansync run`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = super::help::EXIT_RUN)]
pub struct RunArgs {
    /// The configuration file (TOML), layered with PLANSYNC__SECTION__KEY variables.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_CONFIG)]
    pub config: PathBuf,

    /// Seconds to wait after a failed run; doubles with each further failure in a row
    /// (with ±20 % jitter), up to --max-backoff-seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub backoff_seconds: u64,

    /// The longest wait after failed runs, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 1800)]
    pub max_backoff_seconds: u64,

    /// After SIGTERM, how long the run in progress may take to reach its next page or batch
    /// before the daemon gives up on it and exits non-zero. Keep it below systemd's
    /// TimeoutStopSec.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub stop_timeout_seconds: u64,
}

/// The `/healthz` window when `[metrics] healthy_within_seconds` is unset: three
/// incremental periods, at least a minute.
fn default_healthy_within(config: &config::Config) -> Duration {
    period(
        &config.schedule.incremental,
        chrono::Utc::now(),
        config.org.timezone,
    )
    .map(|p| (p * 3).max(Duration::from_secs(60)))
    .unwrap_or(Duration::from_secs(1800))
}

/// The change-event subscription of `[streaming]` (`None` when it is off), with the
/// `/healthz` window while it is healthy: three backstop periods.
pub fn streaming_settings(config: &config::Config) -> Option<(StreamingSettings, Duration)> {
    let s = &config.streaming;
    let channels = super::doctor::streaming_channels(config)?;
    let healthy_within = period(&s.backstop, chrono::Utc::now(), config.org.timezone)
        .map(|p| p * 3)
        .unwrap_or(Duration::from_secs(3 * 3600));
    Some((
        StreamingSettings {
            channels,
            debounce: Duration::from_secs(s.debounce_seconds),
            backstop: s.backstop.clone(),
            backoff_base: Duration::from_secs(s.resubscribe_backoff_seconds),
            backoff_max: Duration::from_secs(s.max_resubscribe_backoff_seconds),
        },
        healthy_within,
    ))
}

pub async fn run(args: RunArgs) -> Result<(), CliError> {
    tracing::info!(
        version = VERSION,
        commit = COMMIT,
        config = %args.config.display(),
        "plansync starting"
    );
    let config = config::load(&args.config)?;
    // The lock comes before the store is opened (and migrated).
    let lock = StoreLock::acquire(&config.store.path).map_err(DaemonError::from)?;
    tracing::debug!(lock = %lock.path().display(), "holding the store lock");
    let engine = engine_from_config(&config)?;
    let settings = DaemonSettings {
        schedules: config.schedule.clone(),
        timezone: config.org.timezone,
        metrics: Endpoint::from_config(&config.metrics).map_err(DaemonError::from)?,
        healthy_within: config
            .metrics
            .healthy_within_seconds
            .map(Duration::from_secs)
            .unwrap_or_else(|| default_healthy_within(&config)),
        backoff_base: Duration::from_secs(args.backoff_seconds.max(1)),
        backoff_max: Duration::from_secs(args.max_backoff_seconds.max(args.backoff_seconds)),
        stop_timeout: Duration::from_secs(args.stop_timeout_seconds),
    };
    // SIGTERM or SIGINT cancels it (before the daemon reports ready, so no signal is lost):
    // the run in progress stops at its next page or batch; a second signal exits at once.
    let shutdown = CancellationToken::new();
    signals::install(shutdown.clone()).map_err(DaemonError::Signals)?;
    let streaming = streaming_settings(&config);
    let mut daemon = Daemon::new(engine, settings);
    if let Some((streaming, healthy_within)) = streaming {
        daemon.set_streaming(streaming, healthy_within);
    }
    daemon.run(shutdown).await?;
    drop(lock);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::LogFormat;

    #[test]
    fn auto_log_format_is_json_under_systemd_and_text_elsewhere() {
        let none = |_: &str| false;
        let journal = |name: &str| name == "JOURNAL_STREAM";
        let invocation = |name: &str| name == "INVOCATION_ID";
        assert_eq!(LogFormat::Auto.resolve(none), LogFormat::Text);
        assert_eq!(LogFormat::Auto.resolve(journal), LogFormat::Json);
        assert_eq!(LogFormat::Auto.resolve(invocation), LogFormat::Json);
        // An explicit choice wins.
        assert_eq!(LogFormat::Text.resolve(journal), LogFormat::Text);
        assert_eq!(LogFormat::Json.resolve(none), LogFormat::Json);
    }
}
