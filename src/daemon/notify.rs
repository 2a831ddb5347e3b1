//! The systemd side of the daemon (`Type=notify`): READY, STATUS and STOPPING messages, and
//! watchdog pings tied to progress. Every call is a no-op when `NOTIFY_SOCKET` is unset.
//!
//! The socket is written from a thread of its own: a service manager that reads slowly can
//! block a datagram send, and must never block a run or the async workers. Messages that do
//! not fit in its small queue are dropped.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use sd_notify::NotifyState;
use tokio_util::sync::CancellationToken;

enum Message {
    Ready(String),
    Status(String),
    Stopping(String),
    Watchdog,
}

fn sender() -> Option<&'static SyncSender<Message>> {
    static SENDER: OnceLock<Option<SyncSender<Message>>> = OnceLock::new();
    SENDER
        .get_or_init(|| {
            std::env::var_os("NOTIFY_SOCKET")?;
            let (tx, rx) = sync_channel::<Message>(64);
            std::thread::Builder::new()
                .name("sd-notify".into())
                .spawn(move || {
                    for message in rx {
                        let result = match &message {
                            Message::Ready(s) => {
                                sd_notify::notify(&[NotifyState::Ready, NotifyState::Status(s)])
                            }
                            Message::Status(s) => sd_notify::notify(&[NotifyState::Status(s)]),
                            Message::Stopping(s) => {
                                sd_notify::notify(&[NotifyState::Stopping, NotifyState::Status(s)])
                            }
                            Message::Watchdog => sd_notify::notify(&[NotifyState::Watchdog]),
                        };
                        if let Err(err) = result {
                            tracing::debug!(error = %err, "could not notify the service manager");
                        }
                    }
                })
                .ok()?;
            Some(tx)
        })
        .as_ref()
}

fn send(message: Message) {
    if let Some(tx) = sender() {
        if tx.try_send(message).is_err() {
            tracing::debug!("the service manager is not reading notifications; dropped one");
        }
    }
}

/// Startup is done: the configuration is loaded and the store migrated.
pub fn ready(status: &str) {
    send(Message::Ready(status.to_string()));
}

/// A one-line status for `systemctl status`.
pub fn status(status: &str) {
    send(Message::Status(status.to_string()));
}

/// Shutdown has begun. Waits a moment for the message to leave, since the process exits next.
pub fn stopping(status: &str) {
    send(Message::Stopping(status.to_string()));
    if sender().is_some() {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What the watchdog looks at: whether a run is going, and a counter the engine's progress
/// reports move.
#[derive(Debug, Default)]
pub struct Activity {
    running: AtomicBool,
    progress: AtomicU64,
}

impl Activity {
    pub fn set_running(&self, running: bool) {
        self.running.store(running, Ordering::SeqCst);
    }

    /// Called from the engine's progress listener.
    pub fn progressed(&self) {
        self.progress.fetch_add(1, Ordering::SeqCst);
    }
}

/// Whether to ping now: always while idle; during a run only when it progressed since the
/// last ping (`last_seen`, updated here), so a hung run stops the pings.
pub fn should_ping(activity: &Activity, last_seen: &mut u64) -> bool {
    let progress = activity.progress.load(Ordering::SeqCst);
    let moved = progress != *last_seen;
    *last_seen = progress;
    moved || !activity.running.load(Ordering::SeqCst)
}

/// Pings the watchdog at half its interval while `should_ping` says so, until `shutdown`.
/// Does nothing when systemd enabled no watchdog for this process.
pub fn spawn_watchdog(activity: Arc<Activity>, shutdown: CancellationToken) {
    let Some(interval) = sd_notify::watchdog_enabled() else {
        return;
    };
    let tick = (interval / 2).max(Duration::from_millis(100));
    tokio::spawn(async move {
        let mut last_seen = 0;
        let mut pinged = true;
        loop {
            if should_ping(&activity, &mut last_seen) {
                send(Message::Watchdog);
                pinged = true;
            } else if pinged {
                tracing::warn!(
                    "the run in progress reported no progress for {} ms; not pinging the watchdog \
                     until it does",
                    tick.as_millis()
                );
                pinged = false;
            }
            tokio::select! {
                () = tokio::time::sleep(tick) => {}
                () = shutdown.cancelled() => return,
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pings_while_idle_and_during_a_run_only_after_progress() {
        let activity = Activity::default();
        let mut seen = 0;
        assert!(should_ping(&activity, &mut seen));
        assert!(should_ping(&activity, &mut seen));
        activity.set_running(true);
        assert!(!should_ping(&activity, &mut seen), "no progress yet");
        activity.progressed();
        assert!(should_ping(&activity, &mut seen));
        assert!(
            !should_ping(&activity, &mut seen),
            "a hung run stops the pings"
        );
        activity.progressed();
        activity.progressed();
        assert!(should_ping(&activity, &mut seen));
        activity.set_running(false);
        assert!(should_ping(&activity, &mut seen));
    }
}
