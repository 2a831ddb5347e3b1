//! Tests of the link explanation and the plan breakdown, on small hand-built orgs and on the
//! golden org.

use std::collections::BTreeMap;

use super::*;
use crate::domain::model::{Account, Contact, Event, Task};
use crate::domain::testutil::{d, dec, event, opp, plan};

fn acct(id: &str, parent: Option<&str>) -> Account {
    Account {
        id: id.into(),
        parent_id: parent.map(str::to_string),
    }
}

/// Accounts P (parent) → A → C (child).
fn org(plans: Vec<Plan>, opps: Vec<Opportunity>) -> OrgData {
    OrgData {
        accounts: vec![
            acct("P", None),
            acct("A", Some("P")),
            acct("C", Some("A")),
            acct("Z", None),
        ],
        plans,
        opportunities: opps,
        ..OrgData::default()
    }
}

fn junction(id: &str, account: &str, start: &str, end: &str) -> Plan {
    let mut p = plan(id, "Z", start, end);
    p.extra_account_ids = vec![account.into()];
    p
}

fn children(mut p: Plan) -> Plan {
    p.include_child_accounts = true;
    p
}

#[test]
fn each_tie_break_level_is_named_as_the_decider() {
    let year = ("2026-01-01", "2026-12-31");
    let half = ("2026-01-01", "2026-06-30");
    let late_half = ("2026-03-01", "2026-08-28");
    // (plans, expected link, decider)
    let cases: Vec<(Vec<Plan>, &str, Decider)> = vec![
        (
            vec![plan("P1", "A", year.0, year.1)],
            "P1",
            Decider::OnlyCandidate,
        ),
        (
            vec![
                junction("P1", "A", half.0, half.1),
                plan("P2", "A", year.0, year.1),
            ],
            "P2",
            Decider::ClosestMembership,
        ),
        (
            vec![
                children(plan("P1", "P", half.0, half.1)),
                junction("P2", "A", year.0, year.1),
            ],
            "P2",
            Decider::ClosestMembership,
        ),
        (
            vec![
                plan("P1", "A", year.0, year.1),
                plan("P2", "A", half.0, half.1),
            ],
            "P2",
            Decider::ShortestPeriod,
        ),
        (
            vec![
                plan("P1", "A", half.0, half.1),
                plan("P2", "A", late_half.0, late_half.1),
            ],
            "P2",
            Decider::LatestStart,
        ),
        (
            vec![
                plan("P2", "A", year.0, year.1),
                plan("P1", "A", year.0, year.1),
            ],
            "P1",
            Decider::SmallestId,
        ),
    ];
    for (plans, want, decider) in cases {
        let n = plans.len();
        let o = org(plans, vec![opp("O", "A", "2026-05-01")]);
        let e = explain_link(&o, &Rules::default(), "O").unwrap();
        assert_eq!(e.link.as_deref(), Some(want), "{decider:?}");
        assert_eq!(e.decider, Some(decider));
        assert_eq!(e.candidates.len(), n, "{decider:?}");
        assert_eq!(e.candidates[0].plan.id, want);
        assert_eq!(e.empty_because, None);
        // Unlocked: locking would keep the current (empty) link.
        assert!(
            e.levers.contains(&Lever::Lock { keeps: None }),
            "{decider:?}"
        );
    }
}

#[test]
fn hierarchy_memberships_carry_their_hops() {
    let o = org(
        vec![children(plan("PP", "P", "2026-01-01", "2026-12-31"))],
        vec![opp("O", "C", "2026-05-01")],
    );
    let e = explain_link(&o, &Rules::default(), "O").unwrap();
    assert_eq!(
        e.candidates[0].membership,
        Membership::Hierarchy { hops: 2 }
    );
}

#[test]
fn a_locked_link_is_kept_and_unlocking_shows_what_the_rules_would_give() {
    let mut o = opp("O", "A", "2026-05-01");
    o.link_locked = true;
    o.plan_id = Some("OTHER".into());
    let data = org(
        vec![
            plan("P1", "A", "2026-01-01", "2026-12-31"),
            plan("OTHER", "Z", "2025-01-01", "2025-12-31"),
        ],
        vec![o],
    );
    let e = explain_link(&data, &Rules::default(), "O").unwrap();
    assert!(e.locked);
    assert_eq!(e.link.as_deref(), Some("OTHER"));
    assert_eq!(e.rules_link.as_deref(), Some("P1"));
    assert_eq!(e.empty_because, None);
    assert!(e.levers.contains(&Lever::Unlock {
        then: Some("P1".into())
    }));
    // The locked plan is shown as not a candidate, with why.
    let other = e
        .not_candidates
        .iter()
        .find(|r| r.plan.id == "OTHER")
        .unwrap();
    assert!(other.reasons.contains(&NotCandidate::NotAMember {
        ancestor_hops: None
    }));
    assert!(other.reasons.contains(&NotCandidate::OutsidePeriod));
}

#[test]
fn no_candidate_lists_every_reason_and_how_to_get_one() {
    let mut draft = plan("DRAFT", "A", "2026-01-01", "2026-12-31");
    draft.status = Some("Draft".into());
    let mut invalid = plan("BAD", "A", "2026-12-31", "2026-01-01");
    invalid.period_end = Some(d("2026-01-01"));
    let data = org(
        vec![
            plan("Q1", "A", "2026-01-01", "2026-03-31"),
            draft,
            invalid,
            plan("PARENT", "P", "2026-01-01", "2026-12-31"),
            plan("UNRELATED", "Z", "2026-01-01", "2026-12-31"),
        ],
        vec![opp("O", "A", "2026-05-01")],
    );
    let e = explain_link(&data, &Rules::default(), "O").unwrap();
    assert_eq!(e.link, None);
    assert_eq!(e.empty_because, Some(EmptyBecause::NoCandidate));
    assert!(e.candidates.is_empty());
    let reasons: BTreeMap<&str, &Vec<NotCandidate>> = e
        .not_candidates
        .iter()
        .map(|r| (r.plan.id.as_str(), &r.reasons))
        .collect();
    assert_eq!(reasons["Q1"], &vec![NotCandidate::OutsidePeriod]);
    assert_eq!(reasons["DRAFT"], &vec![NotCandidate::StatusNotLinkable]);
    assert_eq!(reasons["BAD"], &vec![NotCandidate::InvalidPeriod]);
    assert_eq!(
        reasons["PARENT"],
        &vec![NotCandidate::NotAMember {
            ancestor_hops: Some(1)
        }]
    );
    assert!(!reasons.contains_key("UNRELATED"));
    assert!(e.levers.contains(&Lever::CloseDateTo {
        date: d("2026-03-31"),
        plan: "Q1".into(),
        then: Some("Q1".into())
    }));
    assert!(e.levers.contains(&Lever::MakeLinkable {
        plan: "DRAFT".into()
    }));
    assert!(e.levers.contains(&Lever::IncludeChildren {
        plan: "PARENT".into()
    }));
}

#[test]
fn moving_the_close_date_out_of_the_period_names_the_next_link() {
    // A's Q3 plan wins over the parent's yearly plan; after Q3 the yearly plan takes it,
    // before the year nothing does.
    let data = org(
        vec![
            plan("Q3", "A", "2026-07-01", "2026-09-30"),
            children(plan("YEAR", "P", "2026-01-01", "2026-12-31")),
        ],
        vec![opp("O", "A", "2026-08-01")],
    );
    let e = explain_link(&data, &Rules::default(), "O").unwrap();
    assert_eq!(e.link.as_deref(), Some("Q3"));
    assert_eq!(e.decider, Some(Decider::ClosestMembership));
    assert!(e.levers.contains(&Lever::CloseDateAfter {
        date: d("2026-09-30"),
        plan: "Q3".into(),
        then: Some("YEAR".into())
    }));
    assert!(e.levers.contains(&Lever::CloseDateBefore {
        date: d("2026-07-01"),
        plan: "Q3".into(),
        then: Some("YEAR".into())
    }));
    let text = e.levers[0].describe(&Rules::default());
    assert!(text.contains("after 2026-09-30 leaves plan Q3"), "{text}");
}

#[test]
fn no_account_or_no_close_date_explains_the_empty_link() {
    let mut no_account = opp("O1", "A", "2026-05-01");
    no_account.account_id = None;
    let mut no_date = opp("O2", "A", "2026-05-01");
    no_date.close_date = None;
    let data = org(
        vec![plan("P1", "A", "2026-01-01", "2026-12-31")],
        vec![no_account, no_date],
    );
    let rules = Rules::default();
    let e1 = explain_link(&data, &rules, "O1").unwrap();
    assert_eq!(e1.empty_because, Some(EmptyBecause::NoAccount));
    let e2 = explain_link(&data, &rules, "O2").unwrap();
    assert_eq!(e2.empty_because, Some(EmptyBecause::NoCloseDate));
    assert!(explain_link(&data, &rules, "MISSING").is_none());
}

#[test]
fn the_breakdown_lists_each_opportunity_activity_and_contact_behind_the_numbers() {
    let mut p = plan("PL", "A", "2026-01-01", "2026-12-31");
    p.revenue_target = Some(dec("1000"));
    let mk = |id: &str, amount: &str, closed: bool, won: bool, prob: &str, cat: &str| {
        let mut o = opp(id, "A", "2026-05-01");
        o.amount = Some(dec(amount));
        o.is_closed = closed;
        o.is_won = won;
        o.probability = Some(dec(prob));
        o.forecast_category = Some(cat.into());
        o
    };
    let mut data = org(
        vec![p],
        vec![
            mk("W", "300", true, true, "100", "Closed"),
            mk("L", "50", true, false, "0", "Omitted"),
            mk("O1", "200", false, false, "40", "Pipeline"),
            mk("O2", "999", false, false, "10", "Omitted"),
        ],
    );
    let task = |id: &str, date: &str, closed: bool, who: Option<&str>| Task {
        id: id.into(),
        account_id: Some("A".into()),
        what_id: None,
        who_id: who.map(str::to_string),
        activity_date: Some(d(date)),
        is_closed: closed,
    };
    data.tasks = vec![
        task("T_DONE", "2026-08-01", true, Some("K1")),
        task("T_LATE", "2026-08-10", false, None),
        task("T_NEXT", "2026-08-20", false, None),
    ];
    data.events = vec![Event {
        account_id: Some("A".into()),
        ..event("E_OLD", "K2", Some("2026-07-01"))
    }];
    data.contacts = ["K1", "K2", "K3"]
        .iter()
        .map(|c| Contact {
            id: c.to_string(),
            account_id: Some("A".into()),
        })
        .collect();
    let rules = Rules {
        engaged_contact_days: 30,
        ..Rules::default()
    };
    let today = d("2026-08-15");
    let b = plan_breakdown(&data, &rules, today, "PL").unwrap();
    let ids = |lines: &[OpportunityLine]| lines.iter().map(|l| l.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&b.won), ["W"]);
    assert_eq!(ids(&b.lost), ["L"]);
    assert_eq!(ids(&b.open), ["O1"]);
    assert_eq!(ids(&b.omitted), ["O2"]);
    assert_eq!(b.open[0].weighted, Some(dec("80")));
    assert_eq!(b.last_activity.as_ref().unwrap().id, "T_DONE");
    assert_eq!(b.next_activity.as_ref().unwrap().id, "T_NEXT");
    assert_eq!(
        b.overdue_tasks
            .iter()
            .map(|a| a.id.as_str())
            .collect::<Vec<_>>(),
        ["T_LATE"]
    );
    assert_eq!(b.contacts, ["K1", "K2", "K3"]);
    // K2's event is 45 days back, outside the 30-day window.
    assert_eq!(b.engaged_contacts, ["K1"]);
    // Only 2 closed in the window: the default close ratio.
    assert_eq!(b.close_ratio.source, CloseRatioSource::Default);
    assert_eq!(
        (b.close_ratio.closed_in_window, b.close_ratio.won_in_window),
        (2, 1)
    );
    let r = b.rollups.unwrap();
    assert_eq!(r.won_amount, dec("300"));
    assert_eq!(r.weighted_pipeline, dec("80"));
    assert_eq!(r.new_sales_needed, Some(dec("700")));
    let computed = compute(&data, &rules, today, None);
    assert_eq!(computed.rollups["PL"], r);
}

// ---- the golden org ----

use crate::domain::golden_tests::golden;

#[test]
fn golden_breakdowns_add_up_to_the_computed_rollups() {
    let (data, rules, today) = golden();
    let computed = compute(&data, &rules, today, None);
    assert!(!computed.rollups.is_empty());
    for (plan_id, want) in &computed.rollups {
        let b = plan_breakdown(&data, &rules, today, plan_id).unwrap();
        assert_eq!(b.rollups.as_ref(), Some(want), "plan {plan_id}");
        // The lines themselves add up to the rollups.
        let total = |lines: &[OpportunityLine]| lines.iter().map(|l| l.amount).sum::<Decimal>();
        let round = |x: Decimal| crate::domain::rollups::round_to(x, 2);
        assert_eq!(round(total(&b.won)), want.won_amount, "{plan_id} won");
        assert_eq!(round(total(&b.lost)), want.lost_amount, "{plan_id} lost");
        assert_eq!(round(total(&b.open)), want.open_pipeline, "{plan_id} open");
        assert_eq!(b.won.len() as i64, want.won_count);
        assert_eq!(b.lost.len() as i64, want.lost_count);
        assert_eq!(b.open.len() as i64, want.open_count);
        let weighted: Decimal = b.open.iter().filter_map(|l| l.weighted).sum();
        assert_eq!(
            round(weighted),
            want.weighted_pipeline,
            "{plan_id} weighted"
        );
        assert_eq!(
            b.last_activity.map(|a| a.date),
            want.last_activity_date,
            "{plan_id} last"
        );
        assert_eq!(
            b.next_activity.map(|a| a.date),
            want.next_activity_date,
            "{plan_id} next"
        );
        assert_eq!(b.overdue_tasks.len() as i64, want.overdue_task_count);
        assert_eq!(b.contacts.len() as i64, want.contact_count);
        assert_eq!(b.engaged_contacts.len() as i64, want.engaged_contact_count);
    }
    // Every linked opportunity of the golden org is explained with the link compute gives.
    for (opp, link) in &computed.links {
        let e = explain_link(&data, &rules, opp).unwrap();
        assert_eq!(&e.link, link, "opportunity {opp}");
    }
}
