//! [`compute`] end to end on small orgs: which opportunities a plan's rollups see, what is
//! reported, and which plans get rollups.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use super::compute::{compute, FindingKind, Outcome};
use super::currency::{CurrencyMode, Rates};
use super::model::{today_in, Account, Contact, Event, OrgData, Rules, Task};
use super::testutil::{currency_type, d, dated_rate, dec, event, opp, plan};

fn accounts(ids: &[(&str, Option<&str>)]) -> Vec<Account> {
    ids.iter()
        .map(|(id, p)| Account {
            id: id.to_string(),
            parent_id: p.map(str::to_string),
        })
        .collect()
}

/// The findings of an outcome as (kind, ids).
fn kinds_and_ids(out: &Outcome) -> Vec<(FindingKind, Vec<String>)> {
    out.findings
        .iter()
        .map(|f| (f.kind, f.ids.clone()))
        .collect()
}

#[test]
fn a_locked_link_counts_in_its_plan_even_when_that_plan_is_no_candidate() {
    let mut locked = opp("O1", "B", "2020-01-01");
    locked.link_locked = true;
    locked.plan_id = Some("P".into());
    locked.amount = Some(dec("10"));
    let mut stale = opp("O2", "B", "2026-05-01");
    stale.plan_id = Some("P".into());
    stale.amount = Some(dec("99"));
    let org = OrgData {
        accounts: accounts(&[("A", None), ("B", None)]),
        plans: vec![plan("P", "A", "2026-01-01", "2026-12-31")],
        opportunities: vec![locked, stale],
        ..OrgData::default()
    };
    let out = compute(&org, &Rules::default(), d("2026-08-15"), None);
    assert_eq!(out.links["O1"].as_deref(), Some("P"));
    assert_eq!(out.links["O2"], None, "an unlocked stale link is cleared");
    let r = &out.rollups["P"];
    assert_eq!((r.open_count, r.open_pipeline), (1, dec("10")));
}

#[test]
fn ambiguities_invalid_plans_and_cycles_are_reported_with_their_ids() {
    let mut bad = plan("PBAD", "A", "2026-06-01", "2026-05-01");
    bad.status = Some("Closed".into());
    let mut draft_bad = plan("PDRAFT", "A", "2026-06-01", "2026-05-01");
    draft_bad.status = Some("Draft".into());
    let org = OrgData {
        accounts: accounts(&[("A", None), ("X", Some("Y")), ("Y", Some("X"))]),
        plans: vec![
            plan("P1", "A", "2026-01-01", "2026-12-31"),
            plan("P2", "A", "2026-04-01", "2026-06-30"),
            bad,
            draft_bad,
        ],
        opportunities: vec![opp("O1", "A", "2026-05-01"), opp("O2", "A", "2026-09-01")],
        ..OrgData::default()
    };
    let out = compute(&org, &Rules::default(), d("2026-08-15"), None);
    assert_eq!(out.links["O1"].as_deref(), Some("P2"));
    assert_eq!(out.links["O2"].as_deref(), Some("P1"));
    let found = kinds_and_ids(&out);
    assert_eq!(
        found,
        vec![
            (
                FindingKind::Ambiguity,
                vec!["O1".to_string(), "P2".into(), "P1".into()]
            ),
            (FindingKind::InvalidPlanPeriod, vec!["PBAD".to_string()]),
            (
                FindingKind::HierarchyCycle,
                vec!["X".to_string(), "Y".into()]
            ),
        ]
    );
    assert!(out.findings.iter().all(|f| !f.message.is_empty()));
}

#[test]
fn only_rollup_statuses_and_asked_plans_get_rollups_but_every_opportunity_gets_a_link() {
    let mut closed = plan("PC", "B", "2026-01-01", "2026-12-31");
    closed.status = Some("Closed".into());
    let mut draft = plan("PD", "C", "2026-01-01", "2026-12-31");
    draft.status = Some("Draft".into());
    let org = OrgData {
        accounts: accounts(&[("A", None), ("B", None), ("C", None)]),
        plans: vec![
            plan("PA", "A", "2026-01-01", "2026-12-31"),
            plan("PA2", "A", "2027-01-01", "2027-12-31"),
            closed,
            draft,
        ],
        opportunities: vec![
            opp("O1", "A", "2026-05-01"),
            opp("O2", "B", "2026-05-01"),
            opp("O3", "C", "2026-05-01"),
        ],
        ..OrgData::default()
    };
    let rules = Rules::default();
    let out = compute(&org, &rules, d("2026-08-15"), None);
    assert_eq!(out.rollups.keys().collect::<Vec<_>>(), vec!["PA", "PA2"]);
    assert_eq!(
        out.links["O2"].as_deref(),
        Some("PC"),
        "Closed plans are still linked to"
    );
    assert_eq!(out.links["O3"], None, "Draft plans are not");
    let only: BTreeSet<String> = ["PA2".to_string(), "PC".to_string()].into();
    let out = compute(&org, &rules, d("2026-08-15"), Some(&only));
    assert_eq!(out.rollups.keys().collect::<Vec<_>>(), vec!["PA2"]);
    assert_eq!(out.links.len(), 3);
}

#[test]
fn activities_come_from_plan_accounts_and_from_linked_opportunities() {
    let task = |id: &str, account: Option<&str>, what: Option<&str>, date: &str| Task {
        id: id.into(),
        account_id: account.map(str::to_string),
        what_id: what.map(str::to_string),
        who_id: None,
        activity_date: Some(d(date)),
        is_closed: false,
    };
    let org = OrgData {
        accounts: accounts(&[("A", None), ("B", None)]),
        plans: vec![plan("P", "A", "2026-01-01", "2026-12-31")],
        opportunities: vec![opp("O1", "A", "2026-05-01"), opp("O2", "B", "2026-05-01")],
        tasks: vec![
            task("T1", Some("A"), None, "2026-08-01"),
            // On another account but about a linked opportunity: counts, once.
            task("T2", Some("B"), Some("O1"), "2026-08-02"),
            task("T3", Some("A"), Some("O1"), "2026-08-03"),
            // About an opportunity of no plan: does not count.
            task("T4", Some("B"), Some("O2"), "2026-08-04"),
            task("T5", Some("B"), None, "2026-09-01"),
        ],
        ..OrgData::default()
    };
    let out = compute(&org, &Rules::default(), d("2026-08-15"), None);
    assert_eq!(out.rollups["P"].overdue_task_count, 3);
    assert_eq!(out.rollups["P"].next_activity_date, None);
}

#[test]
fn contacts_of_plan_accounts_are_counted_and_engaged_by_recent_activity() {
    let contact = |id: &str, account: &str| Contact {
        id: id.into(),
        account_id: Some(account.into()),
    };
    let mut p = plan("P", "A", "2026-01-01", "2026-12-31");
    p.include_child_accounts = true;
    let org = OrgData {
        accounts: accounts(&[("A", None), ("A1", Some("A")), ("B", None)]),
        plans: vec![p],
        contacts: vec![
            contact("C1", "A"),
            contact("C2", "A1"),
            contact("C3", "A"),
            contact("C4", "B"),
        ],
        tasks: vec![Task {
            id: "T".into(),
            account_id: Some("B".into()),
            what_id: None,
            who_id: Some("C1".into()),
            activity_date: Some(d("2026-08-01")),
            is_closed: true,
        }],
        events: vec![
            Event {
                start: Some("2026-06-01T10:00:00Z".parse().unwrap()),
                is_all_day: false,
                ..event("E1", "C2", None)
            },
            // Outside the 90-day window.
            event("E2", "C3", Some("2026-05-01")),
            // Engaged, but not a contact of the plan's accounts.
            event("E3", "C4", Some("2026-08-01")),
        ],
        ..OrgData::default()
    };
    let r = &compute(&org, &Rules::default(), d("2026-08-15"), None).rollups["P"];
    assert_eq!((r.contact_count, r.engaged_contact_count), (3, 2));
}

#[test]
fn today_is_the_date_in_the_org_time_zone() {
    let now: DateTime<Utc> = "2026-08-15T22:30:00Z".parse().unwrap();
    // (zone, today)
    let cases = [
        ("UTC", "2026-08-15"),
        ("Europe/Berlin", "2026-08-16"),
        ("America/New_York", "2026-08-15"),
        ("Pacific/Kiritimati", "2026-08-16"),
    ];
    for (tz, want) in cases {
        assert_eq!(today_in(tz.parse().unwrap(), now), d(want), "{tz}");
    }
}

#[test]
fn amounts_are_converted_to_the_plan_currency_and_unknown_currencies_are_reported() {
    let types = [
        currency_type("USD", "1", true),
        currency_type("EUR", "0.8", false),
    ];
    let dated = [dated_rate("EUR", "2026-01-01", None, "0.5")];
    let mut eur_plan = plan("P", "A", "2026-01-01", "2026-12-31");
    eur_plan.currency = Some("EUR".into());
    let mut usd = opp("O1", "A", "2026-05-01");
    usd.amount = Some(dec("100"));
    usd.currency = Some("USD".into());
    let mut eur = opp("O2", "A", "2026-05-01");
    eur.amount = Some(dec("10"));
    eur.currency = Some("EUR".into());
    let mut org = OrgData {
        accounts: accounts(&[("A", None), ("B", None)]),
        plans: vec![eur_plan.clone()],
        opportunities: vec![usd, eur],
        ..OrgData::default()
    };
    // (mode, expected open pipeline in EUR)
    for (mode, want) in [(CurrencyMode::Static, "90"), (CurrencyMode::Dated, "60")] {
        org.rates = Rates::from_records(mode, &types, &dated);
        let out = compute(&org, &Rules::default(), d("2026-08-15"), None);
        assert_eq!(out.rollups["P"].open_pipeline, dec(want), "{mode:?}");
        assert!(out.findings.is_empty());
    }
    org.opportunities[0].currency = Some("GBP".into());
    let mut other = plan("Q", "B", "2026-01-01", "2026-12-31");
    other.currency = Some("CHF".into());
    org.plans.push(other);
    let out = compute(&org, &Rules::default(), d("2026-08-15"), None);
    assert!(out.rollups.is_empty(), "no rollups from a guessed rate");
    let found = kinds_and_ids(&out);
    assert_eq!(
        found,
        vec![
            (
                FindingKind::UnknownCurrency,
                vec!["P".to_string(), "O1".into()]
            ),
            (FindingKind::UnknownCurrency, vec!["Q".to_string()]),
        ]
    );
    assert!(out.findings[0].message.contains("GBP"));
    assert_eq!(
        out.frozen["P"],
        "Rollups frozen: no rate for currency GBP (Opportunity O1)"
    );
    assert!(out.frozen["Q"].contains("CHF"), "{:?}", out.frozen);
}

#[test]
fn a_close_date_outside_every_dated_period_freezes_the_plan_and_names_the_opportunity() {
    let types = [
        currency_type("USD", "1", true),
        currency_type("JPY", "150", false),
    ];
    // The org's JPY periods start in 2026: a 2025 close date is in no period.
    let dated = [dated_rate("JPY", "2026-01-01", None, "100")];
    let mut old = opp("O1", "A", "2025-12-31");
    old.amount = Some(dec("1000"));
    old.currency = Some("JPY".into());
    let mut ok = opp("O2", "A", "2026-03-31");
    ok.amount = Some(dec("1000"));
    ok.currency = Some("JPY".into());
    let mut p = plan("P", "A", "2025-01-01", "2026-12-31");
    p.currency = Some("USD".into());
    let mut org = OrgData {
        accounts: accounts(&[("A", None)]),
        plans: vec![p],
        opportunities: vec![old, ok],
        rates: Rates::from_records(CurrencyMode::Dated, &types, &dated),
        ..OrgData::default()
    };
    let out = compute(&org, &Rules::default(), d("2026-08-15"), None);
    assert!(
        out.rollups.is_empty(),
        "no rollups from the CurrencyType rate"
    );
    assert_eq!(out.findings.len(), 1, "{:?}", out.findings);
    let f = &out.findings[0];
    assert_eq!(f.kind, FindingKind::DatedRateGap);
    assert_eq!(f.ids, vec!["P".to_string(), "O1".into()]);
    assert!(
        f.message.contains("JPY") && f.message.contains("2025-12-31"),
        "{}",
        f.message
    );
    assert_eq!(
        out.frozen["P"],
        "Rollups frozen: no JPY rate for 2025-12-31 (Opportunity O1)"
    );

    // Moved into the covered period, the plan computes again: 1000 / 100 each.
    org.opportunities[0].close_date = Some(d("2026-01-01"));
    let out = compute(&org, &Rules::default(), d("2026-08-15"), None);
    assert!(out.frozen.is_empty() && out.findings.is_empty());
    assert_eq!(out.rollups["P"].open_pipeline, dec("20"));
}

#[test]
fn the_win_rate_looks_at_all_opportunities_of_the_plan_accounts_linked_or_not() {
    let mut p = plan("P", "A", "2026-07-01", "2026-12-31");
    p.revenue_target = Some(dec("1000"));
    let mut opps = Vec::new();
    // Five closed in the last year, before the plan's period: not linked, but they count.
    for i in 0..5 {
        let mut o = opp(&format!("H{i}"), "A", "2026-03-01");
        o.is_closed = true;
        o.is_won = i < 2;
        opps.push(o);
    }
    let org = OrgData {
        accounts: accounts(&[("A", None)]),
        plans: vec![p],
        opportunities: opps,
        ..OrgData::default()
    };
    let out = compute(&org, &Rules::default(), d("2026-08-15"), None);
    assert!(out.links.values().all(Option::is_none));
    // 2 won of 5 closed: 0.4, so 1000 / 0.4.
    assert_eq!(out.rollups["P"].pipeline_needed, Some(dec("2500")));
}
