//! The systemd side of the daemon (`Type=notify`): READY, STATUS and STOPPING messages, and
//! watchdog pings tied to progress. Every call is a no-op when `NOTIFY_SOCKET` is unset.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sd_notify::NotifyState;
use tokio_util::sync::CancellationToken;

fn send(states: &[NotifyState]) {
    if let Err(err) = sd_notify::notify(states) {
        tracing::debug!(error = %err, "could not notify the service manager");
    }
}

/// Startup is done: the configuration is loaded and the store migrated.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// A one-line status for `systemctl status`.
pub fn status(status: &str) {
    send(&[NotifyState::Status(status)]);
}

/// Shutdown has begun.
pub fn stopping(status: &str) {
    send(&[NotifyState::Stopping, NotifyState::Status(status)]);
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
        loop {
            if should_ping(&activity, &mut last_seen) {
                send(&[NotifyState::Watchdog]);
            } else {
                tracing::warn!(
                    "the run in progress reported no progress for {} s; not pinging the watchdog",
                    tick.as_secs()
                );
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
