//! Activities and contacts of a plan (design.md §3.4): activity dates, last and next
//! activity, overdue tasks and engaged contacts.
//!
//! Which activities are past and which are open follows the CRM's own split:
//! ActivityHistory holds closed tasks and past events, OpenActivity open tasks and future
//! events. An event has no "closed" flag, so its date decides: an event dated before today is
//! past, one dated after today is future, and one dated today is both (it is today's activity
//! whether it has started or not, and the rules work in dates, not times). So:
//! - last activity = latest date ≤ today over closed tasks and all events;
//! - next activity = earliest date ≥ today over open tasks and all events.
//!
//! The golden org has no event dated on its `today`, so it neither confirms nor refutes
//! the "both" choice for today's events; its other values agree.
//!
//! Engaged contacts are the plan's contacts (AccountId in accounts(plan)) that are the WhoId
//! of any closed task or event dated in the window, whichever account or record the activity
//! is filed under: the rule names the contact's activity, not the plan's. The golden org's
//! expected counts confirm this reading (restricting to the plan's activities gives fewer).

use std::collections::HashSet;

use chrono::{Duration, NaiveDate};
use chrono_tz::Tz;

use super::model::{Event, OrgData, Rules, Task};

/// A task's date: its ActivityDate (a task without one counts for no date rule).
pub fn task_date(task: &Task) -> Option<NaiveDate> {
    task.activity_date
}

/// An event's date: ActivityDate for an all-day event, else its StartDateTime's date in the
/// org time zone (ActivityDate when it has no StartDateTime).
pub fn event_date(event: &Event, timezone: Tz) -> Option<NaiveDate> {
    if event.is_all_day {
        return event.activity_date;
    }
    match event.start {
        Some(start) => Some(start.with_timezone(&timezone).date_naive()),
        None => event.activity_date,
    }
}

/// Last and next activity dates and the overdue-task count of a set of activities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ActivitySummary {
    pub last_activity_date: Option<NaiveDate>,
    pub next_activity_date: Option<NaiveDate>,
    pub overdue_task_count: i64,
}

/// Summarizes the activities of one plan.
pub fn summarize<'a>(
    tasks: impl IntoIterator<Item = &'a Task>,
    events: impl IntoIterator<Item = &'a Event>,
    today: NaiveDate,
    timezone: Tz,
) -> ActivitySummary {
    let mut s = ActivitySummary::default();
    let mut see = |date: NaiveDate, past: bool, open: bool| {
        if past && date <= today {
            s.last_activity_date = s.last_activity_date.max(Some(date));
        }
        if open && date >= today {
            s.next_activity_date = Some(s.next_activity_date.map_or(date, |n| n.min(date)));
        }
    };
    let mut overdue = 0;
    for t in tasks {
        let Some(date) = task_date(t) else { continue };
        see(date, t.is_closed, !t.is_closed);
        if !t.is_closed && date < today {
            overdue += 1;
        }
    }
    for e in events {
        if let Some(date) = event_date(e, timezone) {
            see(date, true, true);
        }
    }
    s.overdue_task_count = overdue;
    s
}

/// The first day of the engaged-contact window [today − N days, today].
pub fn engaged_since(today: NaiveDate, days: i64) -> NaiveDate {
    today - Duration::days(days)
}

/// The WhoId of a task that engages its contact: a closed task dated in [since, today].
pub fn engaging_task(task: &Task, since: NaiveDate, today: NaiveDate) -> Option<&str> {
    let date = task_date(task)?;
    (task.is_closed && since <= date && date <= today)
        .then_some(task.who_id.as_deref())
        .flatten()
}

/// The WhoId of an event that engages its contact: an event dated in [since, today].
pub fn engaging_event(
    event: &Event,
    since: NaiveDate,
    today: NaiveDate,
    timezone: Tz,
) -> Option<&str> {
    let date = event_date(event, timezone)?;
    (since <= date && date <= today)
        .then_some(event.who_id.as_deref())
        .flatten()
}

/// The contacts the org's activities engage on `today`: the WhoIds of closed tasks and of
/// events dated in the last `[rollups] engaged_contact_days`.
pub fn engaged_contacts<'a>(org: &'a OrgData, rules: &Rules, today: NaiveDate) -> HashSet<&'a str> {
    let since = engaged_since(today, rules.engaged_contact_days);
    org.tasks
        .iter()
        .filter_map(|t| engaging_task(t, since, today))
        .chain(
            org.events
                .iter()
                .filter_map(|e| engaging_event(e, since, today, rules.timezone)),
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::testutil::d;
    use chrono::{DateTime, Utc};

    fn task(date: Option<&str>, closed: bool) -> Task {
        Task {
            id: "T".into(),
            account_id: Some("A".into()),
            what_id: None,
            who_id: Some("C".into()),
            activity_date: date.map(d),
            is_closed: closed,
        }
    }

    fn event(start: Option<&str>, all_day: bool, activity_date: Option<&str>) -> Event {
        Event {
            id: "E".into(),
            account_id: Some("A".into()),
            what_id: None,
            who_id: Some("C".into()),
            activity_date: activity_date.map(d),
            start: start.map(|s| s.parse::<DateTime<Utc>>().unwrap()),
            is_all_day: all_day,
        }
    }

    #[test]
    fn an_events_date_is_its_start_in_the_org_time_zone_or_its_activity_date_when_all_day() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let la: Tz = "America/Los_Angeles".parse().unwrap();
        // (start, all day, ActivityDate, zone, expected)
        let cases = [
            (
                "2026-09-03T23:30:00Z",
                false,
                "2026-09-03",
                chrono_tz::UTC,
                "2026-09-03",
            ),
            (
                "2026-09-03T23:30:00Z",
                false,
                "2026-09-03",
                berlin,
                "2026-09-04",
            ),
            (
                "2026-09-03T06:30:00Z",
                false,
                "2026-09-03",
                la,
                "2026-09-02",
            ),
            ("2026-09-03T00:00:00Z", true, "2026-09-03", la, "2026-09-03"),
            (
                "2026-09-03T00:00:00Z",
                true,
                "2026-09-03",
                berlin,
                "2026-09-03",
            ),
        ];
        for (start, all_day, ad, tz, want) in cases {
            assert_eq!(
                event_date(&event(Some(start), all_day, Some(ad)), tz),
                Some(d(want)),
                "{start} in {tz}"
            );
        }
        assert_eq!(
            event_date(&event(None, false, Some("2026-01-02")), berlin),
            Some(d("2026-01-02"))
        );
    }

    #[test]
    fn last_is_over_closed_tasks_and_events_up_to_today_next_over_open_tasks_and_events_from_today()
    {
        let today = d("2026-08-15");
        let tz = chrono_tz::UTC;
        // (tasks as (date, closed), events as start date, expected last, next, overdue)
        type Case = (
            Vec<(Option<&'static str>, bool)>,
            Vec<&'static str>,
            Option<&'static str>,
            Option<&'static str>,
            i64,
        );
        let cases: Vec<Case> = vec![
            (vec![], vec![], None, None, 0),
            // Closed tasks count for last only, open tasks for next (and overdue when past).
            (
                vec![(Some("2026-08-10"), true), (Some("2026-08-20"), false)],
                vec![],
                Some("2026-08-10"),
                Some("2026-08-20"),
                0,
            ),
            (vec![(Some("2026-08-10"), false)], vec![], None, None, 1),
            (vec![(Some("2026-08-20"), true)], vec![], None, None, 0),
            // Today is inclusive on both sides; an open task due today is not overdue.
            (
                vec![(Some("2026-08-15"), true), (Some("2026-08-15"), false)],
                vec![],
                Some("2026-08-15"),
                Some("2026-08-15"),
                0,
            ),
            // Events: past ones are history, future ones open, today's both.
            (
                vec![],
                vec!["2026-08-01T10:00:00Z", "2026-09-01T10:00:00Z"],
                Some("2026-08-01"),
                Some("2026-09-01"),
                0,
            ),
            (
                vec![],
                vec!["2026-08-15T10:00:00Z"],
                Some("2026-08-15"),
                Some("2026-08-15"),
                0,
            ),
            // Undated tasks count for nothing.
            (vec![(None, true), (None, false)], vec![], None, None, 0),
            // Latest and earliest win.
            (
                vec![
                    (Some("2026-07-01"), true),
                    (Some("2026-08-01"), true),
                    (Some("2026-09-09"), false),
                    (Some("2026-08-30"), false),
                ],
                vec![],
                Some("2026-08-01"),
                Some("2026-08-30"),
                0,
            ),
        ];
        for (tasks, events, last, next, overdue) in cases {
            let tasks: Vec<Task> = tasks.iter().map(|(dt, c)| task(*dt, *c)).collect();
            let events: Vec<Event> = events.iter().map(|s| event(Some(s), false, None)).collect();
            let s = summarize(&tasks, &events, today, tz);
            assert_eq!(
                s.last_activity_date,
                last.map(d),
                "last of {tasks:?} {events:?}"
            );
            assert_eq!(
                s.next_activity_date,
                next.map(d),
                "next of {tasks:?} {events:?}"
            );
            assert_eq!(s.overdue_task_count, overdue, "overdue of {tasks:?}");
        }
    }

    #[test]
    fn a_timed_event_late_in_the_utc_day_is_tomorrow_in_berlin() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let e = [event(
            Some("2026-08-15T23:30:00Z"),
            false,
            Some("2026-08-15"),
        )];
        let s = summarize(&[], &e, d("2026-08-15"), berlin);
        assert_eq!(
            (s.last_activity_date, s.next_activity_date),
            (None, Some(d("2026-08-16")))
        );
        let s = summarize(&[], &e, d("2026-08-15"), chrono_tz::UTC);
        assert_eq!(
            (s.last_activity_date, s.next_activity_date),
            (Some(d("2026-08-15")), Some(d("2026-08-15")))
        );
    }

    #[test]
    fn engagement_needs_a_closed_task_or_an_event_dated_in_the_window() {
        let today = d("2026-08-15");
        let since = engaged_since(today, 90);
        assert_eq!(since, d("2026-05-17"));
        // (task date, closed, engages?)
        let cases = [
            (Some("2026-05-16"), true, false),
            (Some("2026-05-17"), true, true),
            (Some("2026-08-15"), true, true),
            (Some("2026-08-16"), true, false),
            (Some("2026-06-01"), false, false),
            (None, true, false),
        ];
        for (date, closed, want) in cases {
            assert_eq!(
                engaging_task(&task(date, closed), since, today).is_some(),
                want,
                "{date:?} {closed}"
            );
        }
        // (event start, engages?)
        for (start, want) in [
            ("2026-05-16T12:00:00Z", false),
            ("2026-05-17T00:00:00Z", true),
            ("2026-08-15T23:59:00Z", true),
            ("2026-08-16T00:00:00Z", false),
        ] {
            assert_eq!(
                engaging_event(
                    &event(Some(start), false, None),
                    since,
                    today,
                    chrono_tz::UTC
                )
                .is_some(),
                want,
                "{start}"
            );
        }
    }
}
