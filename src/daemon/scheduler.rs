//! When the daemon runs what: the next fire of the cron schedules in the org's time zone,
//! which kinds of run a fire starts, the fires a busy or backing-off daemon skips, and the
//! backoff after a failed run. Pure functions: the time is always passed in.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::config::ScheduleSection;

/// A kind of scheduled run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RunKind {
    /// Re-pull everything, reconcile deletions, recompute every plan.
    Full,
    /// Pull what changed since the cursors.
    Incremental,
    /// Write the monthly plan snapshots.
    Snapshot,
}

impl RunKind {
    pub const ALL: [RunKind; 3] = [RunKind::Full, RunKind::Incremental, RunKind::Snapshot];

    /// The engine's kind of run a fire of this schedule starts.
    pub fn engine_kind(self) -> crate::sync::RunKind {
        match self {
            RunKind::Full => crate::sync::RunKind::Full,
            RunKind::Incremental => crate::sync::RunKind::Incremental,
            RunKind::Snapshot => crate::sync::RunKind::Snapshot,
        }
    }

    /// The name of the run (the engine's, as the run log keeps it).
    pub fn as_str(self) -> &'static str {
        self.engine_kind().as_str()
    }

    fn schedule(self, schedules: &ScheduleSection) -> &cron::Schedule {
        match self {
            RunKind::Full => &schedules.full,
            RunKind::Incremental => &schedules.incremental,
            RunKind::Snapshot => &schedules.snapshot,
        }
    }
}

impl fmt::Display for RunKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One moment at which schedules fire, and the runs it starts, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fire {
    pub at: DateTime<Utc>,
    /// The runs to start, in order: a full or an incremental sync (a full one replaces an
    /// incremental one due at the same moment), then a snapshot, which reads fresh rollups.
    pub kinds: Vec<RunKind>,
}

/// The first moment strictly after `after` at which any schedule fires, read in `tz`, with the
/// runs due then. `None` when no schedule fires again (a cron expression with a past year).
pub fn next_fire(schedules: &ScheduleSection, after: DateTime<Utc>, tz: Tz) -> Option<Fire> {
    let local = after.with_timezone(&tz);
    let due: Vec<(RunKind, DateTime<Utc>)> = RunKind::ALL
        .into_iter()
        .filter_map(|kind| {
            let next = kind.schedule(schedules).after(&local).next()?;
            Some((kind, next.with_timezone(&Utc)))
        })
        .collect();
    let at = due.iter().map(|(_, at)| *at).min()?;
    let mut kinds: Vec<RunKind> = due
        .into_iter()
        .filter(|(_, t)| *t == at)
        .map(|(k, _)| k)
        .collect();
    if kinds.contains(&RunKind::Full) {
        kinds.retain(|k| *k != RunKind::Incremental);
    }
    kinds.sort();
    Some(Fire { at, kinds })
}

/// At most this many fires are counted per kind when reporting skipped ones.
const MAX_COUNTED: usize = 100_000;

/// How many times each schedule fires in `(from, to]`: the fires a daemon that was busy (or
/// backing off) over that interval skips. Kinds that do not fire are left out.
pub fn fires_between(
    schedules: &ScheduleSection,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    tz: Tz,
) -> Vec<(RunKind, usize)> {
    if to <= from {
        return Vec::new();
    }
    let local = from.with_timezone(&tz);
    RunKind::ALL
        .into_iter()
        .filter_map(|kind| {
            let count = kind
                .schedule(schedules)
                .after(&local)
                .take_while(|t| t.with_timezone(&Utc) <= to)
                .take(MAX_COUNTED)
                .count();
            (count > 0).then_some((kind, count))
        })
        .collect()
}

/// The period of a schedule: the gap between its next two fires after `after`.
pub fn period(schedule: &cron::Schedule, after: DateTime<Utc>, tz: Tz) -> Option<Duration> {
    let mut fires = schedule.after(&after.with_timezone(&tz));
    let first = fires.next()?;
    let second = fires.next()?;
    (second - first).to_std().ok()
}

/// How long to wait after the `failures`-th consecutive failed run: `base × 2^(failures-1)`,
/// capped at `max`, then moved by `jitter` (from -1.0 to 1.0) times 20 %, never above `max`.
pub fn backoff(failures: u32, base: Duration, max: Duration, jitter: f64) -> Duration {
    if failures == 0 {
        return Duration::ZERO;
    }
    let doublings = (failures - 1).min(32);
    let raw = base.saturating_mul(1u32 << doublings.min(31)).min(max);
    let factor = 1.0 + 0.2 * jitter.clamp(-1.0, 1.0);
    raw.mul_f64(factor).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn schedules(incremental: &str, full: &str, snapshot: &str) -> ScheduleSection {
        ScheduleSection {
            incremental: incremental.parse().unwrap(),
            full: full.parse().unwrap(),
            snapshot: snapshot.parse().unwrap(),
        }
    }

    fn defaults() -> ScheduleSection {
        ScheduleSection::default()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn scheduled_runs_are_named_as_the_engine_logs_them() {
        assert_eq!(
            RunKind::ALL.map(RunKind::as_str),
            ["full", "incremental", "snapshot"]
        );
        assert_eq!(RunKind::Full.to_string(), "full");
    }

    #[test]
    fn the_next_fire_is_the_first_mark_after_now_with_the_runs_due_then() {
        use RunKind::{Full, Incremental, Snapshot};
        // (after, the fire, the runs it starts, why)
        let cases = [
            (
                "2026-03-10T10:07:12Z",
                "2026-03-10T10:10:00Z",
                vec![Incremental],
                "an incremental run on the next five-minute mark",
            ),
            (
                "2026-03-10T10:10:00Z",
                "2026-03-10T10:15:00Z",
                vec![Incremental],
                "a fire at exactly now is not repeated",
            ),
            (
                "2026-03-10T02:27:00Z",
                "2026-03-10T02:30:00Z",
                vec![Full],
                "02:30 is both a five-minute mark and the nightly full sync: the full one \
                 replaces the incremental one",
            ),
            (
                "2026-04-01T05:58:00Z",
                "2026-04-01T06:00:00Z",
                vec![Incremental, Snapshot],
                "the snapshot runs after the sync due with it",
            ),
        ];
        for (after, at, kinds, why) in cases {
            let fire = next_fire(&defaults(), utc(after), Tz::UTC).unwrap();
            assert_eq!((fire.at, fire.kinds), (utc(at), kinds), "{why}");
        }
    }

    #[test]
    fn schedules_are_read_in_the_org_time_zone() {
        let paris: Tz = "Europe/Paris".parse().unwrap();
        // 02:30 in Paris in winter is 01:30 UTC.
        let only_full = schedules("0 0 0 1 1 * 2099", "0 30 2 * * *", "0 0 0 1 1 * 2099");
        let fire = next_fire(&only_full, utc("2026-01-15T12:00:00Z"), paris).unwrap();
        assert_eq!(fire.at, utc("2026-01-16T01:30:00Z"));
        // And in summer, 00:30 UTC.
        let fire = next_fire(&only_full, utc("2026-07-15T12:00:00Z"), paris).unwrap();
        assert_eq!(fire.at, utc("2026-07-16T00:30:00Z"));
        let local = fire.at.with_timezone(&paris);
        assert_eq!(
            local,
            paris.with_ymd_and_hms(2026, 7, 16, 2, 30, 0).unwrap()
        );
    }

    #[test]
    fn schedules_that_never_fire_again_give_none() {
        let past = schedules("0 0 0 1 1 * 2020", "0 0 0 1 1 * 2020", "0 0 0 1 1 * 2020");
        assert_eq!(next_fire(&past, utc("2026-01-01T00:00:00Z"), Tz::UTC), None);
    }

    #[test]
    fn fires_during_a_long_run_are_counted_per_kind() {
        let skipped = fires_between(
            &defaults(),
            utc("2026-03-10T02:20:00Z"),
            utc("2026-03-10T02:41:00Z"),
            Tz::UTC,
        );
        // 02:25, 02:30, 02:35, 02:40 incremental and 02:30 full.
        assert_eq!(skipped, vec![(RunKind::Full, 1), (RunKind::Incremental, 4)]);
        assert!(fires_between(
            &defaults(),
            utc("2026-03-10T02:21:00Z"),
            utc("2026-03-10T02:24:59Z"),
            Tz::UTC
        )
        .is_empty());
    }

    #[test]
    fn period_is_the_gap_between_fires() {
        let s = defaults();
        let now = utc("2026-03-10T02:21:00Z");
        assert_eq!(
            period(&s.incremental, now, Tz::UTC),
            Some(Duration::from_secs(300))
        );
        assert_eq!(
            period(&s.full, now, Tz::UTC),
            Some(Duration::from_secs(86_400))
        );
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_bounded_jitter() {
        let base = Duration::from_secs(30);
        let max = Duration::from_secs(1800);
        assert_eq!(backoff(0, base, max, 0.0), Duration::ZERO);
        assert_eq!(backoff(1, base, max, 0.0), Duration::from_secs(30));
        assert_eq!(backoff(2, base, max, 0.0), Duration::from_secs(60));
        assert_eq!(backoff(4, base, max, 0.0), Duration::from_secs(240));
        assert_eq!(backoff(7, base, max, 0.0), Duration::from_secs(1800));
        assert_eq!(backoff(1000, base, max, 0.0), Duration::from_secs(1800));
        assert_eq!(backoff(1, base, max, 1.0), Duration::from_secs(36));
        assert_eq!(backoff(1, base, max, -1.0), Duration::from_secs(24));
        assert_eq!(backoff(3, base, max, 5.0), Duration::from_secs(144));
        // Jitter never goes past the cap.
        assert_eq!(backoff(9, base, max, 1.0), max);
        assert_eq!(backoff(9, base, max, -1.0), Duration::from_secs(1440));
    }
}
