//! What change events decide, as pure functions of the time passed in: the objects an event
//! marks dirty, when the woken cycle starts (a debounce from the first event of a burst, so a
//! burst coalesces into one cycle), what a cycle covers when it starts (the replayIds to keep
//! once it completes, the oldest commit for the freshness lag), and which incremental
//! schedule applies (the sparse backstop while the subscription is healthy, `[schedule]`
//! otherwise).
//!
//! Events are wake-ups, not data: the cycle reads the records through its usual queries, so
//! a lost, repeated or out-of-order event never changes what a cycle computes.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::config::ScheduleSection;
use crate::crm::streaming::{ChangeEvent, ChangeType};

/// The subscription as the daemon sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscriptionState {
    /// `[streaming] enabled = false`.
    Disabled,
    /// Handshaking and subscribing (at start, or after it dropped).
    Connecting,
    /// Every channel is subscribed and the long poll is going.
    Subscribed,
    /// It dropped; resubscribing after the backoff. The error says why.
    Down(String),
    /// The CRM does not serve change events (no CometD endpoint, not allowed): polling only,
    /// trying again after the longest backoff.
    Unsupported(String),
}

impl SubscriptionState {
    pub fn as_str(&self) -> &'static str {
        match self {
            SubscriptionState::Disabled => "disabled",
            SubscriptionState::Connecting => "connecting",
            SubscriptionState::Subscribed => "subscribed",
            SubscriptionState::Down(_) => "down",
            SubscriptionState::Unsupported(_) => "unsupported",
        }
    }

    pub fn error(&self) -> Option<&str> {
        match self {
            SubscriptionState::Down(e) | SubscriptionState::Unsupported(e) => Some(e),
            _ => None,
        }
    }

    /// Whether the incremental schedule is the sparse backstop: while subscribed, and while
    /// (re)connecting, which ends subscribed (then a catch-up cycle runs) or down (then the
    /// normal schedule applies at once). A re-handshake after `403::Unknown client` so costs
    /// no scheduled run.
    pub fn uses_backstop(&self) -> bool {
        matches!(
            self,
            SubscriptionState::Subscribed | SubscriptionState::Connecting
        )
    }
}

/// The incremental schedule that applies: the backstop while the subscription is healthy
/// (or being made), `[schedule] incremental` while it is down, unsupported or off. Full and snapshot runs keep their schedules.
pub fn effective_schedules(
    schedules: &ScheduleSection,
    backstop: Option<&cron::Schedule>,
    state: &SubscriptionState,
) -> ScheduleSection {
    match backstop {
        Some(backstop) if state.uses_backstop() => ScheduleSection {
            incremental: backstop.clone(),
            ..schedules.clone()
        },
        _ => schedules.clone(),
    }
}

/// What woke a cycle, taken when the cycle starts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Covered {
    /// The objects (API names) events named; empty for a catch-up alone.
    pub objects: BTreeSet<String>,
    /// Why, for the log: `event`, `gap`, `overflow`, `subscribed`.
    pub reasons: BTreeSet<&'static str>,
    /// Per channel, the last replayId received: kept once the cycle completes.
    pub replay: BTreeMap<String, i64>,
    /// The oldest commit among the events: the freshness lag runs from it.
    pub oldest_commit: Option<DateTime<Utc>>,
    /// Events counted.
    pub events: u64,
}

impl Covered {
    pub fn is_empty(&self) -> bool {
        self.reasons.is_empty() && self.replay.is_empty()
    }
}

/// Events received and not yet covered by a cycle.
#[derive(Debug, Clone, Default)]
pub struct Pending {
    /// When the first event of the current burst was noted; the cycle is due a debounce
    /// later. `None`: nothing wakes a cycle (events of objects plansync does not read only
    /// move the replay positions).
    first_at: Option<DateTime<Utc>>,
    covered: Covered,
}

impl Pending {
    /// Notes one event received at `now`. `objects` are the API names plansync reads: events
    /// of other entities (on `/data/ChangeEvents`) only move the channel's replay position.
    pub fn note_event(
        &mut self,
        event: &ChangeEvent,
        objects: &BTreeSet<String>,
        now: DateTime<Utc>,
    ) {
        self.note_position(event);
        if !objects.contains(&event.entity_name) {
            return;
        }
        self.covered.objects.insert(event.entity_name.clone());
        self.covered.events += 1;
        self.covered.reasons.insert(match &event.change_type {
            crate::crm::streaming::ChangeType::Overflow => "overflow",
            t if t.is_gap() => "gap",
            _ => "event",
        });
        if let Some(commit) = event.commit_timestamp {
            let oldest = self.covered.oldest_commit.get_or_insert(commit);
            *oldest = (*oldest).min(commit);
        }
        self.first_at.get_or_insert(now);
    }

    /// Notes an event that wakes nothing (an echo of plansync's own writes, see [`is_echo`]):
    /// only its channel's replay position moves, kept once the next cycle completes.
    pub fn note_position(&mut self, event: &ChangeEvent) {
        let position = self
            .covered
            .replay
            .entry(event.channel.clone())
            .or_insert(event.replay_id);
        *position = (*position).max(event.replay_id);
    }

    /// A cycle is due without an event: the subscription was (re)made, so changes in
    /// between are known only to a cycle.
    pub fn note_catch_up(&mut self, why: &'static str, now: DateTime<Utc>) {
        self.covered.reasons.insert(why);
        self.first_at.get_or_insert(now);
    }

    /// When the woken cycle starts: a debounce after the first event of the burst.
    pub fn due_at(&self, debounce: Duration) -> Option<DateTime<Utc>> {
        self.first_at
            .map(|first| first + chrono::Duration::from_std(debounce).unwrap_or_default())
    }

    /// What a cycle starting now covers; events after this go to the next cycle.
    pub fn take(&mut self) -> Covered {
        self.first_at = None;
        std::mem::take(&mut self.covered)
    }

    /// Puts back what a cycle that did not complete had taken (events since are kept).
    pub fn restore(&mut self, covered: Covered, now: DateTime<Utc>) {
        if covered.is_empty() {
            return;
        }
        for (channel, id) in covered.replay {
            let position = self.covered.replay.entry(channel).or_insert(id);
            *position = (*position).max(id);
        }
        self.covered.objects.extend(covered.objects);
        self.covered.reasons.extend(covered.reasons);
        self.covered.events += covered.events;
        if let Some(commit) = covered.oldest_commit {
            let oldest = self.covered.oldest_commit.get_or_insert(commit);
            *oldest = (*oldest).min(commit);
        }
        if !self.covered.reasons.is_empty() {
            self.first_at.get_or_insert(now);
        }
    }
}

/// The fields every update changes besides the ones written.
const AUDIT_FIELDS: [&str; 3] = ["LastModifiedDate", "LastModifiedById", "SystemModstamp"];

/// Whether an event only echoes plansync's own write-back, so waking a cycle for it would
/// read what the last cycle wrote and find nothing to do: an update made by plansync
/// ([`ChangeEvent::made_by_plansync`]) that changed only fields plansync writes on that
/// object (`written`, by object API name) and the audit fields. A change the same
/// transaction made to another field (an org's trigger or flow reacting to the write) still
/// wakes a cycle; so do creates, deletes, gap and overflow events.
pub fn is_echo(event: &ChangeEvent, written: &BTreeMap<String, BTreeSet<String>>) -> bool {
    let Some(fields) = written.get(&event.entity_name) else {
        return false;
    };
    event.change_type == ChangeType::Update
        && event.made_by_plansync()
        && !event.changed_fields.is_empty()
        && event
            .changed_fields
            .iter()
            .all(|f| fields.contains(f) || AUDIT_FIELDS.contains(&f.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn event(replay: i64, entity: &str, change: &str, commit: &str) -> ChangeEvent {
        ChangeEvent {
            channel: format!("/data/{entity}ChangeEvent"),
            replay_id: replay,
            entity_name: entity.into(),
            change_type: ChangeType::parse(change),
            record_ids: vec!["006A".into()],
            changed_fields: vec![],
            commit_timestamp: Some(at(commit)),
            transaction_key: None,
            change_origin: String::new(),
        }
    }

    #[test]
    fn only_updates_of_written_fields_by_plansync_are_echoes() {
        let written: BTreeMap<String, BTreeSet<String>> = [
            ("Opportunity", vec!["Account_Plan__c"]),
            ("Account_Plan__c", vec!["Won_Amount__c", "Sync_Problem__c"]),
        ]
        .into_iter()
        .map(|(o, f)| (o.to_string(), f.into_iter().map(String::from).collect()))
        .collect();
        let ours = "com/salesforce/api/rest/62.0;client=plansync";
        let t = "2026-12-03T10:00:00Z";
        // (entity, change, origin, changed fields, an echo?)
        let cases: [(&str, &str, &str, &[&str], bool); 11] = [
            (
                "Opportunity",
                "UPDATE",
                ours,
                &["Account_Plan__c", "LastModifiedDate"],
                true,
            ),
            (
                "Account_Plan__c",
                "UPDATE",
                ours,
                &["Won_Amount__c", "SystemModstamp"],
                true,
            ),
            (
                "Account_Plan__c",
                "UPDATE",
                "com/salesforce/api/soap/62.0;client=plansync",
                &["Sync_Problem__c"],
                true,
            ),
            // The same write by another client, or by a user in the UI.
            (
                "Opportunity",
                "UPDATE",
                "com/salesforce/api/rest/62.0;client=dataloader",
                &["Account_Plan__c"],
                false,
            ),
            (
                "Opportunity",
                "UPDATE",
                "com/salesforce/api/rest/62.0",
                &["Account_Plan__c"],
                false,
            ),
            ("Opportunity", "UPDATE", "", &["Account_Plan__c"], false),
            // A trigger changed another field in plansync's transaction.
            (
                "Opportunity",
                "UPDATE",
                ours,
                &["Account_Plan__c", "Amount"],
                false,
            ),
            ("Opportunity", "UPDATE", ours, &[], false),
            // Not an update, or an object plansync does not write.
            (
                "Opportunity",
                "GAP_UPDATE",
                ours,
                &["Account_Plan__c"],
                false,
            ),
            ("Opportunity", "CREATE", ours, &[], false),
            ("Account", "UPDATE", ours, &["LastModifiedDate"], false),
        ];
        for (entity, change, origin, fields, echo) in cases {
            let mut e = event(1, entity, change, t);
            e.change_origin = origin.into();
            e.changed_fields = fields.iter().map(|f| f.to_string()).collect();
            assert_eq!(
                is_echo(&e, &written),
                echo,
                "{entity} {change} {origin} {fields:?}"
            );
        }
    }

    #[test]
    fn an_echo_moves_the_replay_position_and_wakes_nothing() {
        let mut pending = Pending::default();
        let e = event(7, "Opportunity", "UPDATE", "2026-12-03T10:00:00Z");
        pending.note_position(&e);
        assert_eq!(pending.due_at(Duration::from_secs(2)), None);
        let covered = pending.take();
        assert_eq!(covered.replay.get("/data/OpportunityChangeEvent"), Some(&7));
        assert_eq!(covered.events, 0);
        assert!(covered.objects.is_empty());
    }

    fn objects() -> BTreeSet<String> {
        ["Account", "Opportunity", "Account_Plan__c"]
            .map(String::from)
            .into()
    }

    #[test]
    fn the_cycle_is_due_a_debounce_after_the_first_event_of_a_burst() {
        let debounce = Duration::from_secs(2);
        // (receipt times of the events, the time the cycle is due, why)
        let cases: [(&[&str], Option<&str>, &str); 3] = [
            (&[], None, "nothing received, nothing due"),
            (
                &["2026-12-01T10:00:00.100Z"],
                Some("2026-12-01T10:00:02.100Z"),
                "one event: due 2 s later",
            ),
            (
                &[
                    "2026-12-01T10:00:00.000Z",
                    "2026-12-01T10:00:00.500Z",
                    "2026-12-01T10:00:01.900Z",
                ],
                Some("2026-12-01T10:00:02.000Z"),
                "later events of the burst do not push the start back",
            ),
        ];
        for (times, due, why) in cases {
            let mut p = Pending::default();
            for (i, t) in times.iter().enumerate() {
                p.note_event(
                    &event(i as i64, "Opportunity", "UPDATE", "2026-12-01T09:59:59Z"),
                    &objects(),
                    at(t),
                );
            }
            assert_eq!(p.due_at(debounce), due.map(at), "{why}");
        }
    }

    #[test]
    fn a_burst_of_two_hundred_edits_in_a_second_wakes_at_most_three_cycles() {
        // 200 events over one second; each cycle takes 1.5 s and starts when due (or when
        // the previous one ends); events during a cycle wait for the next.
        let debounce = Duration::from_secs(2);
        let start = at("2026-12-01T10:00:00Z");
        let arrivals: Vec<DateTime<Utc>> = (0..200)
            .map(|i| start + chrono::Duration::milliseconds(i * 5))
            .collect();
        let run = chrono::Duration::milliseconds(1500);
        let mut p = Pending::default();
        let mut i = 0;
        // The end of the last cycle: events arriving during a cycle are noted after it.
        let mut clock = start;
        let mut cycles = Vec::new();
        loop {
            loop {
                let due = p.due_at(debounce);
                match arrivals.get(i) {
                    Some(a) if due.is_none_or(|d| *a <= d) => {
                        let e = event(i as i64, "Opportunity", "UPDATE", "2026-12-01T10:00:00Z");
                        p.note_event(&e, &objects(), (*a).max(clock));
                        i += 1;
                    }
                    _ => break,
                }
            }
            let Some(due) = p.due_at(debounce) else { break };
            let begin = due.max(clock);
            cycles.push((begin, p.take().events));
            clock = begin + run;
        }
        assert!(cycles.len() <= 3, "{cycles:?}");
        assert_eq!(cycles.iter().map(|c| c.1).sum::<u64>(), 200, "{cycles:?}");
    }

    #[test]
    fn a_cycle_covers_positions_objects_reasons_and_the_oldest_commit() {
        let now = at("2026-12-01T10:00:00Z");
        let mut p = Pending::default();
        p.note_event(
            &event(12, "Opportunity", "UPDATE", "2026-12-01T09:59:58Z"),
            &objects(),
            now,
        );
        // Out of order: an older replayId and commit after a newer one.
        p.note_event(
            &event(9, "Opportunity", "UPDATE", "2026-12-01T09:59:50Z"),
            &objects(),
            now,
        );
        p.note_event(
            &event(3, "Account", "GAP_UPDATE", "2026-12-01T09:59:59Z"),
            &objects(),
            now,
        );
        p.note_event(
            &event(4, "Account_Plan__c", "GAP_OVERFLOW", "2026-12-01T09:59:59Z"),
            &objects(),
            now,
        );
        // An entity plansync does not read: moves the position, wakes nothing.
        p.note_event(
            &event(70, "Lead", "CREATE", "2026-12-01T09:00:00Z"),
            &objects(),
            now,
        );
        let c = p.take();
        assert_eq!(
            c.objects,
            ["Account", "Account_Plan__c", "Opportunity"]
                .map(String::from)
                .into()
        );
        assert_eq!(c.reasons, ["event", "gap", "overflow"].into());
        assert_eq!(c.replay["/data/OpportunityChangeEvent"], 12);
        assert_eq!(c.replay["/data/LeadChangeEvent"], 70);
        assert_eq!(c.oldest_commit, Some(at("2026-12-01T09:59:50Z")));
        assert_eq!(c.events, 4);
        // Taken: nothing is due any more.
        assert_eq!(p.due_at(Duration::from_secs(2)), None);

        // Only an unread entity: positions move, no cycle is due.
        let mut p = Pending::default();
        p.note_event(
            &event(71, "Lead", "CREATE", "2026-12-01T09:00:00Z"),
            &objects(),
            now,
        );
        assert_eq!(p.due_at(Duration::from_secs(2)), None);
        assert!(!p.take().is_empty());
    }

    #[test]
    fn a_failed_cycle_puts_back_what_it_covered() {
        let now = at("2026-12-01T10:00:00Z");
        let mut p = Pending::default();
        p.note_event(
            &event(5, "Opportunity", "UPDATE", "2026-12-01T09:59:00Z"),
            &objects(),
            now,
        );
        let taken = p.take();
        // An event during the cycle, then the cycle fails.
        p.note_event(
            &event(6, "Opportunity", "UPDATE", "2026-12-01T09:59:30Z"),
            &objects(),
            now,
        );
        p.restore(taken, now);
        let c = p.take();
        assert_eq!(c.events, 2);
        assert_eq!(c.replay["/data/OpportunityChangeEvent"], 6);
        assert_eq!(c.oldest_commit, Some(at("2026-12-01T09:59:00Z")));
    }

    #[test]
    fn a_catch_up_is_due_like_an_event() {
        let now = at("2026-12-01T10:00:00Z");
        let mut p = Pending::default();
        p.note_catch_up("subscribed", now);
        assert_eq!(
            p.due_at(Duration::from_secs(2)),
            Some(at("2026-12-01T10:00:02Z"))
        );
        assert_eq!(p.take().reasons, ["subscribed"].into());
    }

    #[test]
    fn the_backstop_replaces_the_incremental_schedule_unless_the_subscription_is_down() {
        let schedules = ScheduleSection::default();
        let backstop: cron::Schedule = "0 0 * * * *".parse().unwrap();
        // (state, the incremental schedule that applies)
        let cases = [
            (SubscriptionState::Subscribed, "0 0 * * * *"),
            (SubscriptionState::Connecting, "0 0 * * * *"),
            (SubscriptionState::Down("x".into()), "0 */5 * * * *"),
            (SubscriptionState::Unsupported("x".into()), "0 */5 * * * *"),
            (SubscriptionState::Disabled, "0 */5 * * * *"),
        ];
        for (state, incremental) in cases {
            let s = effective_schedules(&schedules, Some(&backstop), &state);
            assert_eq!(s.incremental.to_string(), incremental, "{state:?}");
            assert_eq!(s.full.to_string(), schedules.full.to_string());
        }
        // Streaming off: no backstop at all.
        let s = effective_schedules(&schedules, None, &SubscriptionState::Subscribed);
        assert_eq!(s.incremental.to_string(), "0 */5 * * * *");
    }
}
