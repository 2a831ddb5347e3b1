//! Properties of [`compute`] over generated orgs: each opportunity counts in one plan at
//! most, sums add up, recomputing unchanged input changes nothing, and input order does not
//! matter.

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDate};
use proptest::prelude::*;
use rust_decimal::Decimal;

use super::compute::{compute, Outcome};
use super::diff::diff_rollups;
use super::model::{Account, Contact, Event, Opportunity, OrgData, Plan, Rules, Task};

fn day(n: i64) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 1, 1).unwrap() + Duration::days(n)
}

const TODAY: i64 = 200;

fn account_id(i: usize) -> String {
    format!("001A{i:02}")
}

fn accounts() -> impl Strategy<Value = Vec<Account>> {
    proptest::collection::vec(proptest::option::weighted(0.6, 0..8usize), 8).prop_map(|parents| {
        parents
            .into_iter()
            .enumerate()
            .map(|(i, p)| Account {
                id: account_id(i),
                parent_id: p.map(account_id),
            })
            .collect()
    })
}

fn plans() -> impl Strategy<Value = Vec<Plan>> {
    let one = (
        0..8usize,
        proptest::collection::vec(0..8usize, 0..2),
        proptest::option::weighted(0.95, 0..360i64),
        proptest::option::weighted(0.95, -20..200i64),
        proptest::option::of(0..5000i64),
        proptest::option::of(0..60i64),
        any::<bool>(),
        prop::sample::select(vec!["Active", "Closed", "Draft"]),
    );
    proptest::collection::vec(one, 0..7).prop_map(|specs| {
        specs
            .into_iter()
            .enumerate()
            .map(
                |(i, (a, extra, start, len, target, ratio, child, status))| Plan {
                    id: format!("a0P{i:02}"),
                    name: format!("Plan {i}"),
                    account_id: Some(account_id(a)),
                    extra_account_ids: extra.into_iter().map(account_id).collect(),
                    period_start: start.map(day),
                    period_end: start.zip(len).map(|(s, l)| day(s + l)),
                    revenue_target: target.map(Decimal::from),
                    close_ratio_percent: ratio.map(Decimal::from),
                    include_child_accounts: child,
                    status: Some(status.to_string()),
                    currency: None,
                    discriminator: None,
                },
            )
            .collect()
    })
}

fn opportunities() -> impl Strategy<Value = Vec<Opportunity>> {
    let one = (
        proptest::option::weighted(0.9, 0..8usize),
        proptest::option::weighted(0.8, 0..1_000_000i64),
        proptest::option::weighted(0.9, 0..400i64),
        0..3u8,
        proptest::option::of(0..=100i64),
        any::<bool>(),
        proptest::option::of(0..8usize),
        proptest::bool::weighted(0.1),
    );
    proptest::collection::vec(one, 0..40).prop_map(|specs| {
        specs
            .into_iter()
            .enumerate()
            .map(
                |(i, (a, cents, close, state, prob, omitted, plan, locked))| Opportunity {
                    id: format!("006O{i:03}"),
                    account_id: a.map(account_id),
                    amount: cents.map(|c| Decimal::new(c, 2)),
                    close_date: close.map(day),
                    is_closed: state > 0,
                    is_won: state == 2,
                    probability: prob.map(Decimal::from),
                    forecast_category: Some(
                        if omitted { "Omitted" } else { "Pipeline" }.to_string(),
                    ),
                    currency: None,
                    plan_id: plan.map(|p| format!("a0P{p:02}")),
                    link_locked: locked,
                    discriminator: None,
                },
            )
            .collect()
    })
}

fn activities() -> impl Strategy<Value = (Vec<Contact>, Vec<Task>, Vec<Event>)> {
    let task = (
        0..8usize,
        0..12usize,
        proptest::option::of(0..400i64),
        any::<bool>(),
        proptest::option::of(0..40usize),
    );
    let event = (0..8usize, 0..12usize, 0..400i64, any::<bool>());
    (
        proptest::collection::vec(0..8usize, 0..12),
        proptest::collection::vec(task, 0..20),
        proptest::collection::vec(event, 0..10),
    )
        .prop_map(|(contacts, tasks, events)| {
            let contacts = contacts
                .into_iter()
                .enumerate()
                .map(|(i, a)| Contact {
                    id: format!("003C{i:02}"),
                    account_id: Some(account_id(a)),
                })
                .collect();
            let tasks = tasks
                .into_iter()
                .enumerate()
                .map(|(i, (a, who, date, closed, what))| Task {
                    id: format!("00T{i:02}"),
                    account_id: Some(account_id(a)),
                    what_id: what.map(|o| format!("006O{o:03}")),
                    who_id: Some(format!("003C{who:02}")),
                    activity_date: date.map(day),
                    is_closed: closed,
                })
                .collect();
            let events = events
                .into_iter()
                .enumerate()
                .map(|(i, (a, who, date, all_day))| Event {
                    id: format!("00U{i:02}"),
                    account_id: Some(account_id(a)),
                    what_id: None,
                    who_id: Some(format!("003C{who:02}")),
                    activity_date: Some(day(date)),
                    start: day(date).and_hms_opt(23, 30, 0).map(|t| t.and_utc()),
                    is_all_day: all_day,
                })
                .collect();
            (contacts, tasks, events)
        })
}

fn orgs() -> impl Strategy<Value = OrgData> {
    (accounts(), plans(), opportunities(), activities()).prop_map(
        |(accounts, plans, opportunities, (contacts, tasks, events))| OrgData {
            accounts,
            plans,
            opportunities,
            contacts,
            tasks,
            events,
            ..OrgData::default()
        },
    )
}

fn rules() -> Rules {
    Rules {
        timezone: "Europe/Berlin".parse().unwrap(),
        ..Rules::default()
    }
}

fn run(org: &OrgData) -> Outcome {
    compute(org, &rules(), day(TODAY), None)
}

proptest! {
    #[test]
    fn every_opportunity_counts_in_at_most_one_plan_and_the_sums_add_up(org in orgs()) {
        let out = run(&org);
        prop_assert_eq!(out.links.len(), org.opportunities.len());
        for (plan_id, r) in &out.rollups {
            let linked: Vec<&Opportunity> = org
                .opportunities
                .iter()
                .filter(|o| out.links[&o.id].as_deref() == Some(plan_id.as_str()))
                .collect();
            let omitted: Vec<&&Opportunity> = linked
                .iter()
                .filter(|o| !o.is_closed && o.forecast_category.as_deref() == Some("Omitted"))
                .collect();
            let omitted_sum: Decimal = omitted.iter().filter_map(|o| o.amount).sum();
            let total: Decimal = linked.iter().filter_map(|o| o.amount).sum();
            prop_assert_eq!(r.won_count + r.lost_count + r.open_count + omitted.len() as i64, linked.len() as i64);
            prop_assert_eq!(r.won_amount + r.lost_amount + r.open_pipeline + omitted_sum, total);
        }
        // Summed over all plans, each linked opportunity is counted once.
        let counted: i64 = out.rollups.values().map(|r| r.won_count + r.lost_count + r.open_count).sum();
        let linked_to_rolled = org.opportunities.iter().filter(|o| {
            out.links[&o.id].as_ref().is_some_and(|p| out.rollups.contains_key(p))
                && (o.is_closed || o.forecast_category.as_deref() != Some("Omitted"))
        }).count() as i64;
        prop_assert_eq!(counted, linked_to_rolled);
    }

    #[test]
    fn recomputing_unchanged_input_gives_no_change(org in orgs()) {
        let first = run(&org);
        let mut again = org.clone();
        for o in &mut again.opportunities {
            o.plan_id = first.links[&o.id].clone();
        }
        let second = run(&again);
        prop_assert_eq!(&first.links, &second.links);
        for (plan_id, r) in &first.rollups {
            let current: BTreeMap<_, _> = r.values().into_iter().collect();
            prop_assert!(diff_rollups(&current, &second.rollups[plan_id]).is_empty(), "plan {}", plan_id);
        }
    }

    #[test]
    fn every_rolled_up_plan_has_its_state_with_the_close_ratio_it_used(org in orgs()) {
        let out = run(&org);
        prop_assert_eq!(out.states.keys().collect::<Vec<_>>(), out.rollups.keys().collect::<Vec<_>>());
        for (plan_id, s) in &out.states {
            let plan = org.plans.iter().find(|p| &p.id == plan_id).unwrap();
            // Each source gives a positive ratio: a plan's own > 0, a win rate with a win, the
            // default (validated > 0).
            prop_assert!(s.close_ratio_used_percent > Decimal::ZERO, "plan {}", plan_id);
            prop_assert_eq!(&s.status, &plan.status);
            prop_assert_eq!(&s.currency, &plan.currency);
        }
    }

    #[test]
    fn input_order_does_not_matter(
        (org, shuffled) in orgs().prop_flat_map(|org| {
            let shuffled = (
                Just(org.accounts.clone()).prop_shuffle(),
                Just(org.plans.clone()).prop_shuffle(),
                Just(org.opportunities.clone()).prop_shuffle(),
                Just(org.contacts.clone()).prop_shuffle(),
                Just(org.tasks.clone()).prop_shuffle(),
                Just(org.events.clone()).prop_shuffle(),
            );
            (Just(org), shuffled)
        })
    ) {
        let (accounts, plans, opportunities, contacts, tasks, events) = shuffled;
        let other = OrgData { accounts, plans, opportunities, contacts, tasks, events, ..OrgData::default() };
        prop_assert_eq!(run(&org), run(&other));
    }
}
