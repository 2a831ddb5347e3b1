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

    /// The current instant.
    pub fn now(&self) -> DateTime<Utc> {
        match &self.0 {
            #[allow(
                clippy::disallowed_methods,
                reason = "the one place the sync layer reads the system clock"
            )]
            Source::System => Utc::now(),
            Source::Fixed(at) => *at.lock().unwrap_or_else(PoisonError::into_inner),
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
}
