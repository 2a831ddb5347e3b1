//! `[streaming]`: change events (Change Data Capture over the CRM's CometD endpoint) that wake
//! the daemon, the debounce that coalesces them, the sparse backstop schedule while the
//! subscription is healthy, and the resubscribe backoff when it drops.

use serde::{Deserialize, Deserializer, Serialize};

use super::sections::{parse_cron, ser_display};

/// Which change-event channels the daemon subscribes to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamingChannels {
    /// One channel per object plansync reads: `/data/AccountChangeEvent`,
    /// `/data/Account_Plan__ChangeEvent`, ... (only those objects' events are delivered).
    #[default]
    PerObject,
    /// The standard channel of every entity selected for Change Data Capture in the org,
    /// `/data/ChangeEvents`; events of other entities are delivered too, and ignored.
    ChangeEvents,
}

choice_deserialize!(StreamingChannels {
    "per_object" => PerObject,
    "change_events" => ChangeEvents,
});

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StreamingSection {
    /// Subscribe to change events (when the org serves them; otherwise the daemon polls on
    /// `[schedule]` as if this were off).
    pub enabled: bool,
    /// How long after the first change event of a burst the woken cycle starts; events in
    /// the meantime join it.
    pub debounce_seconds: u64,
    /// The incremental schedule while the subscription is healthy (a backstop for anything
    /// events do not tell); `[schedule] incremental` applies while it is not.
    #[serde(deserialize_with = "de_cron", serialize_with = "ser_display")]
    pub backstop: cron::Schedule,
    pub channels: StreamingChannels,
    /// The wait before resubscribing after the subscription dropped; it doubles with each
    /// failed attempt in a row, up to `max_resubscribe_backoff_seconds`.
    pub resubscribe_backoff_seconds: u64,
    pub max_resubscribe_backoff_seconds: u64,
}

pub(super) const DEFAULT_BACKSTOP: &str = "0 0 * * * *";

fn de_cron<'de, D: Deserializer<'de>>(d: D) -> Result<cron::Schedule, D::Error> {
    let text = String::deserialize(d)?;
    parse_cron(&text).map_err(serde::de::Error::custom)
}

impl Default for StreamingSection {
    fn default() -> Self {
        StreamingSection {
            enabled: true,
            debounce_seconds: 2,
            // Built-in constant, parsed by a test; never user input.
            #[allow(clippy::expect_used)]
            backstop: DEFAULT_BACKSTOP
                .parse()
                .expect("built-in cron schedule parses"),
            channels: StreamingChannels::PerObject,
            resubscribe_backoff_seconds: 5,
            max_resubscribe_backoff_seconds: 300,
        }
    }
}
