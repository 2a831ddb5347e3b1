//! Where the sync layer gets the time.
//!
//! Only the edges read the system clock (`cli`, `daemon`, the emulator's server and the CRM
//! client's request timing; `clippy.toml` bans it elsewhere). A cycle takes its time from a
//! [`Clock`] handed to the engine, so the rules that depend on it (the outbox archive, the
//! retry backoff, the delete-log window) can be run at any instant without waiting.

use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Duration, Utc};

/// The source of "now": the system clock, or an instant set by hand.
#[derive(Clone, Debug, Default)]
pub struct Clock(Source);

#[derive(Clone, Debug, Default)]
enum Source {
    #[default]
    System,
    Fixed(Arc<Mutex<DateTime<Utc>>>),
    /// `start` plus the time tokio's clock has moved since `origin`.
    Tokio {
        start: DateTime<Utc>,
        origin: tokio::time::Instant,
    },
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Clock(Source::System)
    }

    /// A clock that stands at `at` until [`Clock::set`] or [`Clock::advance`] moves it
    /// (clones share the instant).
    pub fn fixed(at: DateTime<Utc>) -> Self {
        Clock(Source::Fixed(Arc::new(Mutex::new(at))))
    }

    /// A clock that stands at `start` now and moves with tokio's clock from then on: in a
    /// runtime whose time is paused (`tokio::time::pause`) it follows the runtime's sleeps, so
    /// hours of a daemon's schedules pass in a test without waiting.
    pub fn following_tokio(start: DateTime<Utc>) -> Self {
        Clock(Source::Tokio {
            start,
            origin: tokio_now(),
        })
    }

    /// The current instant.
    pub fn now(&self) -> DateTime<Utc> {
        match &self.0 {
            #[allow(
                clippy::disallowed_methods,
                reason = "the one place the sync layer reads the system clock"
            )]
            Source::System => Utc::now(),
            Source::Fixed(at) => *at.lock().unwrap_or_else(PoisonError::into_inner),
            Source::Tokio { start, origin } => {
                let moved = tokio_now().saturating_duration_since(*origin);
                Duration::from_std(moved)
                    .ok()
                    .and_then(|d| start.checked_add_signed(d))
                    .unwrap_or(DateTime::<Utc>::MAX_UTC)
            }
        }
    }

    /// Moves a fixed clock to `at`; the system clock cannot be moved and ignores it.
    pub fn set(&self, at: DateTime<Utc>) {
        if let Source::Fixed(current) = &self.0 {
            *current.lock().unwrap_or_else(PoisonError::into_inner) = at;
        }
    }

    /// Moves a fixed clock forward by `by`; the system clock ignores it.
    pub fn advance(&self, by: Duration) {
        if let Source::Fixed(current) = &self.0 {
            let mut at = current.lock().unwrap_or_else(PoisonError::into_inner);
            *at += by;
        }
    }
}

#[allow(
    clippy::disallowed_methods,
    reason = "a clock that follows tokio's time reads it here"
)]
fn tokio_now() -> tokio::time::Instant {
    tokio::time::Instant::now()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fixed_clock_stands_still_until_moved_and_clones_share_it() {
        let start = DateTime::parse_from_rfc3339("2026-03-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let clock = Clock::fixed(start);
        let other = clock.clone();
        assert_eq!(clock.now(), start);
        other.advance(Duration::days(31));
        assert_eq!(clock.now(), start + Duration::days(31));
        clock.set(start);
        assert_eq!(other.now(), start);
    }

    #[tokio::test(start_paused = true)]
    async fn a_clock_following_tokio_moves_with_paused_time() {
        let start = DateTime::parse_from_rfc3339("2026-03-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let clock = Clock::following_tokio(start);
        assert_eq!(clock.now(), start);
        tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
        assert_eq!(clock.now(), start + Duration::hours(1));
    }
}
