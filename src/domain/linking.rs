//! Linking an opportunity to a plan (design.md §3.2): which plans are candidates, which
//! candidate wins, and the link that results (kept as is when locked).

use std::cmp::Reverse;
use std::collections::HashMap;

use chrono::NaiveDate;

use super::membership::Membership;
use super::model::{Opportunity, Plan, Rules};

/// A plan that could take an opportunity, and how the opportunity's account belongs to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate<'a> {
    pub plan: &'a Plan,
    pub membership: Membership,
}

impl Candidate<'_> {
    /// The tie-break order: closest membership, shortest period, latest start, smallest Id
    /// in byte order. Only called on plans with a valid period.
    fn rank(&self) -> (Membership, i64, Reverse<NaiveDate>, &[u8]) {
        let (start, end) = self
            .plan
            .valid_period()
            .unwrap_or((NaiveDate::MIN, NaiveDate::MAX));
        (
            self.membership,
            (end - start).num_days(),
            Reverse(start),
            self.plan.id.as_bytes(),
        )
    }
}

/// Whether `plan` can ever take opportunities: its status is linkable and its period valid.
pub fn is_linkable(plan: &Plan, rules: &Rules) -> bool {
    rules.is_linkable(plan) && plan.valid_period().is_some()
}

/// Whether a linkable plan, whose accounts contain the opportunity's account, takes an
/// opportunity closing on `close_date`: the period contains it (both bounds inclusive) and,
/// when the discriminator is used, the discriminators are equal.
pub fn accepts(plan: &Plan, opp: &Opportunity, close_date: NaiveDate, rules: &Rules) -> bool {
    let in_period = plan
        .valid_period()
        .is_some_and(|(start, end)| start <= close_date && close_date <= end);
    in_period && (!rules.use_discriminator || plan.discriminator == opp.discriminator)
}

/// Sorts candidates best first.
pub fn rank_candidates(candidates: &mut [Candidate<'_>]) {
    candidates.sort_by(|a, b| a.rank().cmp(&b.rank()));
}

/// Linkable plans indexed by the accounts they contain.
#[derive(Debug, Default)]
pub struct PlanIndex<'a> {
    by_account: HashMap<&'a str, Vec<Candidate<'a>>>,
}

impl<'a> PlanIndex<'a> {
    /// Indexes `plan` under each of its members (call only for linkable plans).
    pub fn insert(&mut self, plan: &'a Plan, members: &[(&'a str, Membership)]) {
        for &(account, membership) in members {
            self.by_account
                .entry(account)
                .or_default()
                .push(Candidate { plan, membership });
        }
    }

    /// The candidates of an opportunity, best first. Empty without AccountId or CloseDate.
    pub fn candidates(&self, opp: &Opportunity, rules: &Rules) -> Vec<Candidate<'a>> {
        let (Some(account), Some(close)) = (opp.account_id.as_deref(), opp.close_date) else {
            return Vec::new();
        };
        let mut out: Vec<Candidate<'a>> = self
            .by_account
            .get(account)
            .map(|c| {
                c.iter()
                    .filter(|c| accepts(c.plan, opp, close, rules))
                    .copied()
                    .collect()
            })
            .unwrap_or_default();
        rank_candidates(&mut out);
        out
    }
}

/// The link an opportunity must have: its current link when locked, else its best candidate.
pub fn desired_link<'o>(opp: &'o Opportunity, candidates: &[Candidate<'o>]) -> Option<&'o str> {
    if opp.link_locked {
        opp.plan_id.as_deref()
    } else {
        candidates.first().map(|c| c.plan.id.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::testutil::{d, opp, plan};

    fn index<'a>(plans: &'a [(Plan, Membership)]) -> PlanIndex<'a> {
        let mut idx = PlanIndex::default();
        for (p, m) in plans {
            idx.insert(p, &[("A", *m)]);
        }
        idx
    }

    fn chosen(plans: &[(Plan, Membership)], o: &Opportunity) -> Option<String> {
        let rules = Rules::default();
        let idx = index(plans);
        let c = idx.candidates(o, &rules);
        desired_link(o, &c).map(str::to_string)
    }

    #[test]
    fn period_bounds_are_inclusive() {
        let plans = [(
            plan("P", "A", "2026-04-01", "2026-06-30"),
            Membership::Direct,
        )];
        // (close date, linked?)
        let cases = [
            ("2026-03-31", false),
            ("2026-04-01", true),
            ("2026-05-15", true),
            ("2026-06-30", true),
            ("2026-07-01", false),
        ];
        for (close, linked) in cases {
            let got = chosen(&plans, &opp("O", "A", close));
            assert_eq!(got.is_some(), linked, "close date {close}");
        }
    }

    #[test]
    fn only_linkable_statuses_and_valid_periods_make_candidates() {
        let rules = Rules::default();
        // (status, start, end, linkable?)
        let cases = [
            (Some("Active"), Some("2026-01-01"), Some("2026-12-31"), true),
            (Some("Closed"), Some("2026-01-01"), Some("2026-12-31"), true),
            (Some("Draft"), Some("2026-01-01"), Some("2026-12-31"), false),
            (None, Some("2026-01-01"), Some("2026-12-31"), false),
            (Some("Active"), None, Some("2026-12-31"), false),
            (Some("Active"), Some("2026-01-01"), None, false),
            (
                Some("Active"),
                Some("2026-12-31"),
                Some("2026-01-01"),
                false,
            ),
            (Some("Active"), Some("2026-05-05"), Some("2026-05-05"), true),
        ];
        for (status, start, end, want) in cases {
            let mut p = plan("P", "A", "2026-01-01", "2026-12-31");
            p.status = status.map(str::to_string);
            p.period_start = start.map(d);
            p.period_end = end.map(d);
            assert_eq!(
                is_linkable(&p, &rules),
                want,
                "{status:?} {start:?}..{end:?}"
            );
        }
    }

    /// A plan as (Id, (start, end), membership of the opportunity's account).
    type PlanSpec = (&'static str, (&'static str, &'static str), Membership);

    #[test]
    fn tie_breaks_apply_in_order() {
        use Membership::*;
        let year = ("2026-01-01", "2026-12-31");
        let half = ("2026-01-01", "2026-06-30");
        let late_half = ("2026-03-01", "2026-08-28"); // same length as `half`, later start
                                                      // (plans as (id, period, membership), expected winner, what decides)
        let cases: Vec<(Vec<PlanSpec>, &str, &str)> = vec![
            (
                vec![("P1", half, Junction), ("P2", year, Direct)],
                "P2",
                "direct before junction",
            ),
            (
                vec![("P1", half, Hierarchy { hops: 1 }), ("P2", year, Junction)],
                "P2",
                "junction before hierarchy",
            ),
            (
                vec![
                    ("P1", half, Hierarchy { hops: 2 }),
                    ("P2", year, Hierarchy { hops: 1 }),
                ],
                "P2",
                "fewer hops",
            ),
            (
                vec![("P1", year, Direct), ("P2", half, Direct)],
                "P2",
                "shorter period",
            ),
            (
                vec![("P1", half, Direct), ("P2", late_half, Direct)],
                "P2",
                "later start",
            ),
            (
                vec![("P2", year, Direct), ("P1", year, Direct)],
                "P1",
                "smaller Id",
            ),
            // Byte order: upper-case letters sort before lower-case ones.
            (
                vec![
                    ("a0P00000000000aAAA", year, Direct),
                    ("a0P00000000000ZAAQ", year, Direct),
                ],
                "a0P00000000000ZAAQ",
                "byte order",
            ),
        ];
        for (spec, want, why) in cases {
            let plans: Vec<(Plan, Membership)> = spec
                .iter()
                .map(|(id, (s, e), m)| (plan(id, "A", s, e), *m))
                .collect();
            assert_eq!(
                chosen(&plans, &opp("O", "A", "2026-05-01")).as_deref(),
                Some(want),
                "{why}"
            );
        }
    }

    #[test]
    fn no_close_date_no_account_or_no_candidate_gives_an_empty_link() {
        let plans = [(
            plan("P", "A", "2026-01-01", "2026-12-31"),
            Membership::Direct,
        )];
        let mut no_date = opp("O", "A", "2026-05-01");
        no_date.close_date = None;
        let mut no_account = opp("O", "A", "2026-05-01");
        no_account.account_id = None;
        let other_account = opp("O", "B", "2026-05-01");
        for (o, why) in [
            (no_date, "no date"),
            (no_account, "no account"),
            (other_account, "no candidate"),
        ] {
            let mut o = o;
            o.plan_id = Some("STALE".into());
            assert_eq!(chosen(&plans, &o), None, "{why}");
        }
    }

    #[test]
    fn a_locked_link_is_kept_whatever_the_candidates() {
        let plans = [(
            plan("P", "A", "2026-01-01", "2026-12-31"),
            Membership::Direct,
        )];
        // (current link, expected)
        for current in [Some("OTHER"), None] {
            let mut o = opp("O", "A", "2026-05-01");
            o.link_locked = true;
            o.plan_id = current.map(str::to_string);
            assert_eq!(chosen(&plans, &o).as_deref(), current);
        }
    }

    #[test]
    fn the_discriminator_must_match_when_used() {
        let mut p = plan("P", "A", "2026-01-01", "2026-12-31");
        p.discriminator = Some("EMEA".into());
        let o = |disc: Option<&str>| {
            let mut o = opp("O", "A", "2026-05-01");
            o.discriminator = disc.map(str::to_string);
            o
        };
        // (use discriminator, opportunity's value, accepted?)
        let cases = [
            (true, Some("EMEA"), true),
            (true, Some("APAC"), false),
            (true, None, false),
            (false, Some("APAC"), true),
            (false, None, true),
        ];
        for (used, value, want) in cases {
            let rules = Rules {
                use_discriminator: used,
                ..Rules::default()
            };
            assert_eq!(
                accepts(&p, &o(value), d("2026-05-01"), &rules),
                want,
                "{used} {value:?}"
            );
        }
    }
}
