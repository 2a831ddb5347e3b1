//! One evaluation of the rules over an org: the desired link of every opportunity, the
//! rollups of the plans that get them, and the findings an admin should see.
//!
//! Everything is indexed (plans by account, opportunities, activities and contacts by
//! account and by WhatId), so the cost grows with the number of records and memberships, not
//! with plans × opportunities.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::NaiveDate;

use super::activities::{engaged_contacts, summarize};
use super::currency::{frozen_reason, CurrencyError};
use super::linking::{desired_link, is_linkable, PlanIndex};
use super::membership::{Hierarchy, Membership};
use super::model::{Event, OrgData, Plan, Rules, Task};
use super::rollups::{close_ratio, finish, sum_opportunities, Rollups};
use super::snapshot::{plan_state, PlanState};

/// What kind of thing a finding reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FindingKind {
    /// An opportunity had more than one candidate plan; the tie-breaks chose one.
    Ambiguity,
    /// A linkable plan has no start, no end, or an end before its start: it takes nothing.
    InvalidPlanPeriod,
    /// ParentId forms a cycle; the hierarchy is followed as if the cycle were cut.
    HierarchyCycle,
    /// A currency code has no rate: the plan's rollups were not computed.
    UnknownCurrency,
    /// Dated mode: no DatedConversionRate period covers an opportunity's CloseDate (a gap in
    /// the org's rates): the plan's rollups were not computed.
    DatedRateGap,
}

/// Something the rules noticed, with the Ids involved and a message for a human.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Finding {
    pub kind: FindingKind,
    /// The record Ids involved, the subject first (the opportunity, plan or accounts).
    pub ids: Vec<String>,
    pub message: String,
}

/// The result of [`compute`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Outcome {
    /// Every opportunity Id → the plan Id it must link to (`None`: empty link).
    pub links: BTreeMap<String, Option<String>>,
    /// Plan Id → rollups, for the plans whose status gets rollups (and that were asked for).
    pub rollups: BTreeMap<String, Rollups>,
    /// Plan Id → the plan's state as a snapshot records it, for the same plans as `rollups`.
    pub states: BTreeMap<String, PlanState>,
    /// Sorted by kind, then Ids.
    pub findings: Vec<Finding>,
    /// Plan Id → why its rollups were not computed (a rate it needs is unusable), as short
    /// text for the plan's Sync_Problem__c. Such a plan is in no `rollups`.
    pub frozen: BTreeMap<String, String>,
}

/// Computes the links of every opportunity and the rollups of every plan whose status is in
/// `rules.rollup_statuses` (only those in `only_plans` when given). `today` is the current
/// date in the org's time zone.
///
/// A plan's linked opportunities are those whose resulting link is that plan: the desired
/// link, or the kept link of a locked opportunity, even to a plan that would not be a
/// candidate. When a linked opportunity's or the plan's currency has no usable rate (an
/// unknown code, or in dated mode no period covering the CloseDate), the plan gets no rollups
/// (its fields are left as they are), an `UnknownCurrency` or `DatedRateGap` finding names
/// the record, and `frozen` holds the short reason for the plan's Sync_Problem__c.
pub fn compute(
    org: &OrgData,
    rules: &Rules,
    today: NaiveDate,
    only_plans: Option<&BTreeSet<String>>,
) -> Outcome {
    let mut findings = Vec::new();
    let hierarchy = Hierarchy::new(&org.accounts);
    for cycle in hierarchy.cycles() {
        findings.push(Finding {
            kind: FindingKind::HierarchyCycle,
            ids: cycle.clone(),
            message: format!(
                "accounts {} are each other's ParentId in a cycle; plan hierarchies stop where the cycle closes",
                cycle.join(" → ")
            ),
        });
    }

    let wanted =
        |p: &Plan| rules.is_rolled_up(p) && only_plans.is_none_or(|only| only.contains(&p.id));
    let mut index = PlanIndex::default();
    let mut members_of: HashMap<&str, Vec<(&str, Membership)>> = HashMap::new();
    for plan in &org.plans {
        let linkable = is_linkable(plan, rules);
        if rules.is_linkable(plan) && !linkable {
            findings.push(Finding {
                kind: FindingKind::InvalidPlanPeriod,
                ids: vec![plan.id.clone()],
                message: format!(
                    "plan {} ({}) has period {}..{}: it needs a start and an end not before it, and takes no opportunity until then",
                    plan.id,
                    plan.name,
                    show(plan.period_start),
                    show(plan.period_end)
                ),
            });
        }
        if !linkable && !wanted(plan) {
            continue;
        }
        let members = hierarchy.members(plan);
        if linkable {
            index.insert(plan, &members);
        }
        if wanted(plan) {
            members_of.insert(plan.id.as_str(), members);
        }
    }

    // Links.
    let mut links = BTreeMap::new();
    let mut linked: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, opp) in org.opportunities.iter().enumerate() {
        let candidates = if opp.link_locked {
            Vec::new()
        } else {
            index.candidates(opp, rules)
        };
        if candidates.len() > 1 {
            let mut ids = vec![opp.id.clone()];
            ids.extend(candidates.iter().map(|c| c.plan.id.clone()));
            findings.push(Finding {
                kind: FindingKind::Ambiguity,
                message: format!(
                    "opportunity {} fits {} plans ({}); linked to {} by the tie-breaks",
                    opp.id,
                    candidates.len(),
                    ids[1..].join(", "),
                    ids[1]
                ),
                ids,
            });
        }
        let link = desired_link(opp, &candidates);
        if let Some(plan_id) = link {
            linked.entry(plan_id).or_default().push(i);
        }
        links.insert(opp.id.clone(), link.map(str::to_string));
    }

    // Indexes for rollups.
    let mut opps_by_account: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, o) in org.opportunities.iter().enumerate() {
        if let Some(a) = o.account_id.as_deref() {
            opps_by_account.entry(a).or_default().push(i);
        }
    }
    let tasks = ActivityIndex::new(&org.tasks, |t: &Task| {
        (t.account_id.as_deref(), t.what_id.as_deref())
    });
    let events = ActivityIndex::new(&org.events, |e: &Event| {
        (e.account_id.as_deref(), e.what_id.as_deref())
    });
    let mut contacts_by_account: HashMap<&str, Vec<&str>> = HashMap::new();
    for c in &org.contacts {
        if let Some(a) = c.account_id.as_deref() {
            contacts_by_account
                .entry(a)
                .or_default()
                .push(c.id.as_str());
        }
    }
    let engaged = engaged_contacts(org, rules, today);

    // Rollups.
    let mut rollups = BTreeMap::new();
    let mut frozen = BTreeMap::new();
    let mut states = BTreeMap::new();
    for plan in org.plans.iter().filter(|p| wanted(p)) {
        let Some(members) = members_of.get(plan.id.as_str()) else {
            continue;
        };
        let linked_idx: &[usize] = linked.get(plan.id.as_str()).map_or(&[], Vec::as_slice);
        let linked_opps = linked_idx.iter().map(|&i| &org.opportunities[i]);
        if let Err(error) = org.rates.check(plan.currency.as_deref()) {
            findings.push(unusable_rate(plan, &plan.id, &error));
            frozen.insert(plan.id.clone(), frozen_reason(&error, &plan.id, true));
            continue;
        }
        let sums = match sum_opportunities(plan, linked_opps, &org.rates) {
            Ok(s) => s,
            Err(f) => {
                findings.push(unusable_rate(plan, &f.opportunity_id, &f.error));
                frozen.insert(
                    plan.id.clone(),
                    frozen_reason(&f.error, &f.opportunity_id, false),
                );
                continue;
            }
        };
        let accounts = members.iter().map(|(a, _)| *a);
        let history = accounts
            .clone()
            .filter_map(|a| opps_by_account.get(a))
            .flatten()
            .map(|&i| &org.opportunities[i]);
        let (ratio, source) = close_ratio(plan, history, today, rules);
        states.insert(plan.id.clone(), plan_state(plan, ratio, source));

        let what_ids = linked_idx.iter().map(|&i| org.opportunities[i].id.as_str());
        let plan_tasks = tasks.of(accounts.clone(), what_ids.clone());
        let plan_events = events.of(accounts.clone(), what_ids);
        let summary = summarize(
            plan_tasks.iter().map(|&i| &org.tasks[i]),
            plan_events.iter().map(|&i| &org.events[i]),
            today,
            rules.timezone,
        );
        let contacts: Vec<&str> = accounts
            .filter_map(|a| contacts_by_account.get(a))
            .flatten()
            .copied()
            .collect();
        let engaged_count = contacts.iter().filter(|c| engaged.contains(*c)).count();
        rollups.insert(
            plan.id.clone(),
            finish(
                plan,
                &sums,
                ratio,
                summary,
                count(contacts.len()),
                count(engaged_count),
            ),
        );
    }

    findings.sort();
    findings.dedup();
    Outcome {
        links,
        rollups,
        states,
        findings,
        frozen,
    }
}

fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn show(d: Option<NaiveDate>) -> String {
    d.map_or_else(|| "(none)".to_string(), |d| d.to_string())
}

fn unusable_rate(plan: &Plan, record: &str, error: &CurrencyError) -> Finding {
    let mut ids = vec![plan.id.clone()];
    if record != plan.id {
        ids.push(record.to_string());
    }
    let kind = match error {
        CurrencyError::NoDatedRate { .. } => FindingKind::DatedRateGap,
        _ => FindingKind::UnknownCurrency,
    };
    let what = if record == plan.id {
        format!("its own currency: {error}")
    } else {
        format!("opportunity {record}: {error}")
    };
    Finding {
        kind,
        ids,
        message: format!(
            "plan {} ({}) keeps its rollups as they are: {what}",
            plan.id, plan.name
        ),
    }
}

/// Tasks or events indexed by AccountId and by WhatId.
struct ActivityIndex<'a> {
    by_account: HashMap<&'a str, Vec<usize>>,
    by_what: HashMap<&'a str, Vec<usize>>,
}

impl<'a> ActivityIndex<'a> {
    fn new<T>(items: &'a [T], keys: impl Fn(&'a T) -> (Option<&'a str>, Option<&'a str>)) -> Self {
        let mut by_account: HashMap<&str, Vec<usize>> = HashMap::new();
        let mut by_what: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, item) in items.iter().enumerate() {
            let (account, what) = keys(item);
            if let Some(a) = account {
                by_account.entry(a).or_default().push(i);
            }
            if let Some(w) = what {
                by_what.entry(w).or_default().push(i);
            }
        }
        ActivityIndex {
            by_account,
            by_what,
        }
    }

    /// The activities whose AccountId is one of `accounts` or whose WhatId is one of
    /// `what_ids`, each once, in input order.
    fn of<'s>(
        &self,
        accounts: impl Iterator<Item = &'s str>,
        what_ids: impl Iterator<Item = &'s str>,
    ) -> Vec<usize> {
        let mut out: Vec<usize> = accounts
            .filter_map(|a| self.by_account.get(a))
            .chain(what_ids.filter_map(|w| self.by_what.get(w)))
            .flatten()
            .copied()
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }
}
