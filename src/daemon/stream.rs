//! The subscription task: long-polls the CRM's CometD endpoint and hands the daemon what it
//! hears (the state of the subscription, the change events, a catch-up after each
//! (re)subscription). When the subscription drops it waits a backoff (doubling with each
//! failure in a row, ±20 % jitter) and subscribes again; the daemon meanwhile polls on the
//! normal schedule.

use std::time::Duration;

use rand::Rng;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::crm::streaming::{ChangeEvent, CometdClient, StreamingError};

use super::scheduler::backoff;
use super::wake::SubscriptionState;

/// How the daemon subscribes.
#[derive(Debug, Clone)]
pub struct StreamingSettings {
    /// The channels: one per object read, or `/data/ChangeEvents`.
    pub channels: Vec<String>,
    /// The woken cycle starts this long after the first event of a burst.
    pub debounce: Duration,
    /// The incremental schedule while the subscription is healthy.
    pub backstop: cron::Schedule,
    /// The wait before resubscribing after a drop, doubled per failure in a row.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
}

/// What the subscription task tells the daemon.
#[derive(Debug)]
pub enum StreamMessage {
    State(SubscriptionState),
    Events(Vec<ChangeEvent>),
    /// The subscription was (re)made: changes in between are known only to a cycle.
    /// The channels whose stored replayId was refused, and those the CRM refused, are named.
    Subscribed {
        replay_reset: Vec<String>,
        refused: Vec<(String, String)>,
    },
}

/// Runs until `stop`; ends the CometD session politely then.
pub async fn subscribe(
    mut client: CometdClient,
    settings: StreamingSettings,
    tx: mpsc::UnboundedSender<StreamMessage>,
    stop: CancellationToken,
) {
    let send = |m: StreamMessage| tx.send(m).is_ok();
    if !send(StreamMessage::State(SubscriptionState::Connecting)) {
        return;
    }
    let mut failures: u32 = 0;
    loop {
        let polled = tokio::select! {
            polled = client.poll() => polled,
            () = stop.cancelled() => break,
        };
        let wait = match polled {
            Ok(delivery) => {
                if delivery.resubscribed {
                    failures = 0;
                    info!(channels = ?client.channels(), "subscribed to change events");
                    if !send(StreamMessage::State(SubscriptionState::Subscribed))
                        || !send(StreamMessage::Subscribed {
                            replay_reset: delivery.replay_reset,
                            refused: delivery.refused,
                        })
                    {
                        return;
                    }
                }
                if !delivery.events.is_empty() && !send(StreamMessage::Events(delivery.events)) {
                    return;
                }
                if !client.is_subscribed() {
                    // The server forgot the session (or the token was replaced): handshake
                    // again at once; events after the last one received are replayed.
                    if !send(StreamMessage::State(SubscriptionState::Connecting)) {
                        return;
                    }
                }
                client.interval()
            }
            Err(err) => {
                failures = failures.saturating_add(1);
                let text = crate::error::chain(&err);
                let unsupported = matches!(err, StreamingError::Unsupported { .. });
                let wait = if unsupported {
                    settings.backoff_max
                } else {
                    let jitter = rand::thread_rng().gen_range(-1.0..=1.0);
                    backoff(
                        failures,
                        settings.backoff_base,
                        settings.backoff_max,
                        jitter,
                    )
                };
                warn!(error = %text, failures, retry_in_seconds = wait.as_secs(),
                    "the change-event subscription is down; polling on [schedule] until it is back");
                let state = if unsupported {
                    SubscriptionState::Unsupported(text)
                } else {
                    SubscriptionState::Down(text)
                };
                if !send(StreamMessage::State(state)) {
                    return;
                }
                wait
            }
        };
        if !wait.is_zero() {
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = stop.cancelled() => break,
            }
        }
    }
    client.disconnect().await;
}
