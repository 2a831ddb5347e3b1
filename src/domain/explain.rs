//! Explanations for admins, as pure functions over the same inputs as [`compute`]: why an
//! opportunity links to the plan it does ([`explain_link`]) and what each rollup of a plan is
//! made of ([`plan_breakdown`]). They reuse the rules' own pieces (membership, candidates,
//! ranking, sums, close ratio, activity dates), so an explanation cannot drift from what a
//! cycle writes.

use std::collections::{BTreeSet, HashSet};

use chrono::{Duration, NaiveDate};
use rust_decimal::Decimal;

use super::activities::{engaged_contacts, event_date, summarize, task_date};
use super::compute::compute;
use super::linking::{is_linkable, Candidate, PlanIndex};
use super::membership::{Hierarchy, Membership};
use super::model::{Opportunity, OrgData, Plan, Rules};
use super::rollups::{close_ratio, finish, CloseRatioSource, Rollups, Sums};

/// The facts about a plan an explanation shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanFacts {
    pub id: String,
    pub name: String,
    pub status: Option<String>,
    pub period_start: Option<NaiveDate>,
    pub period_end: Option<NaiveDate>,
}

impl PlanFacts {
    fn of(plan: &Plan) -> Self {
        PlanFacts {
            id: plan.id.clone(),
            name: plan.name.clone(),
            status: plan.status.clone(),
            period_start: plan.period_start,
            period_end: plan.period_end,
        }
    }

    /// `Name (Id)`.
    pub fn label(&self) -> String {
        format!("{} ({})", self.name, self.id)
    }
}

/// A candidate plan of the opportunity, with how its account belongs to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CandidateFacts {
    pub plan: PlanFacts,
    pub membership: Membership,
    /// Days in the period (end − start).
    pub period_days: i64,
}

/// Which rule put the first candidate ahead of the second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decider {
    /// There was one candidate.
    OnlyCandidate,
    /// Closest membership (direct, junction, then fewer hierarchy hops).
    ClosestMembership,
    ShortestPeriod,
    LatestStart,
    /// Smallest 18-character Id in byte order.
    SmallestId,
}

impl Decider {
    pub fn describe(self) -> &'static str {
        match self {
            Decider::OnlyCandidate => "the only candidate",
            Decider::ClosestMembership => {
                "closest membership (direct before junction before hierarchy, then fewer hops)"
            }
            Decider::ShortestPeriod => "shortest period (memberships were equally close)",
            Decider::LatestStart => {
                "latest start (memberships equally close, periods equally long)"
            }
            Decider::SmallestId => {
                "smallest Id in byte order (membership, period length and start all tied)"
            }
        }
    }
}

/// Why a plan is not a candidate of the opportunity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotCandidate {
    /// The plan's status is not in `[linking] linkable_statuses`.
    StatusNotLinkable,
    /// No start, no end, or an end before the start.
    InvalidPeriod,
    /// The period does not contain the close date.
    OutsidePeriod,
    /// The discriminator differs from the opportunity's.
    DiscriminatorDiffers {
        plan: Option<String>,
        opportunity: Option<String>,
    },
    /// The account is not in accounts(plan); `ancestor_hops` is set when the plan's account
    /// is an ancestor of it (the plan does not include child accounts).
    NotAMember { ancestor_hops: Option<u32> },
}

impl NotCandidate {
    pub fn describe(&self, rules: &Rules) -> String {
        match self {
            NotCandidate::StatusNotLinkable => format!(
                "status is not linkable (linkable: {})",
                rules.linkable_statuses.join(", ")
            ),
            NotCandidate::InvalidPeriod => {
                "invalid period: it needs a start and an end not before it".into()
            }
            NotCandidate::OutsidePeriod => "the period does not contain the close date".into(),
            NotCandidate::DiscriminatorDiffers { plan, opportunity } => format!(
                "the discriminator differs (plan {}, opportunity {})",
                plan.as_deref().unwrap_or("(none)"),
                opportunity.as_deref().unwrap_or("(none)")
            ),
            NotCandidate::NotAMember { ancestor_hops: Some(h) } => format!(
                "the account is not a member: it is {h} level(s) below the plan's account, but the plan does not include child accounts"
            ),
            NotCandidate::NotAMember { ancestor_hops: None } => {
                "the account is not a member of the plan".into()
            }
        }
    }
}

/// A plan considered but not a candidate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub plan: PlanFacts,
    /// How the account belongs to the plan, when it does.
    pub membership: Option<Membership>,
    /// Every reason that applies, most fundamental first.
    pub reasons: Vec<NotCandidate>,
}

/// A change in the CRM that would change the link, and the link it would give.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lever {
    /// Moving CloseDate after `date` leaves `plan`; the link would then be `then`.
    CloseDateAfter {
        date: NaiveDate,
        plan: String,
        then: Option<String>,
    },
    /// Moving CloseDate before `date` leaves `plan`.
    CloseDateBefore {
        date: NaiveDate,
        plan: String,
        then: Option<String>,
    },
    /// Moving CloseDate to `date` (into a member plan's period) gives the link `then`.
    CloseDateTo {
        date: NaiveDate,
        plan: String,
        then: Option<String>,
    },
    /// Setting Plan_Link_Locked__c keeps `keeps` whatever changes.
    Lock { keeps: Option<String> },
    /// Clearing Plan_Link_Locked__c gives the link `then`.
    Unlock { then: Option<String> },
    /// A plan the account belongs to whose status keeps it out.
    MakeLinkable { plan: String },
    /// A plan on an ancestor account that would include the account with child accounts on.
    IncludeChildren { plan: String },
}

fn link_text(link: &Option<String>) -> String {
    link.as_deref()
        .map_or_else(|| "an empty link".to_string(), |p| format!("plan {p}"))
}

impl Lever {
    pub fn describe(&self, rules: &Rules) -> String {
        match self {
            Lever::CloseDateAfter { date, plan, then } => format!(
                "moving CloseDate after {date} leaves plan {plan} (the link would be {})",
                link_text(then)
            ),
            Lever::CloseDateBefore { date, plan, then } => format!(
                "moving CloseDate before {date} leaves plan {plan} (the link would be {})",
                link_text(then)
            ),
            Lever::CloseDateTo { date, plan, then } => format!(
                "moving CloseDate to {date}, into the period of plan {plan}, gives {}",
                link_text(then)
            ),
            Lever::Lock { keeps } => format!(
                "setting Plan_Link_Locked__c keeps the current link ({}) whatever else changes",
                link_text(keeps)
            ),
            Lever::Unlock { then } => format!(
                "clearing Plan_Link_Locked__c lets the rules decide: {}",
                link_text(then)
            ),
            Lever::MakeLinkable { plan } => format!(
                "setting plan {plan}'s status to one of {} makes it a candidate",
                rules.linkable_statuses.join(", ")
            ),
            Lever::IncludeChildren { plan } => format!(
                "setting Include_Child_Accounts__c on plan {plan} makes the account a member"
            ),
        }
    }
}

/// Why the opportunity's link is empty, when it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmptyBecause {
    NoAccount,
    NoCloseDate,
    NoCandidate,
}

/// Why an opportunity links to the plan it does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkExplanation {
    pub opportunity_id: String,
    pub account_id: Option<String>,
    pub close_date: Option<NaiveDate>,
    /// Account_Plan__c as last read from the CRM.
    pub current_link: Option<String>,
    pub locked: bool,
    /// The link the rules give (the current one when locked).
    pub link: Option<String>,
    /// The link the rules would give without the lock.
    pub rules_link: Option<String>,
    /// Candidates, best first (computed even when locked).
    pub candidates: Vec<CandidateFacts>,
    /// What put the first candidate ahead; `None` without candidates.
    pub decider: Option<Decider>,
    /// Set when the rules give an empty link.
    pub empty_because: Option<EmptyBecause>,
    pub not_candidates: Vec<Rejected>,
    pub levers: Vec<Lever>,
}

/// Explains the link of opportunity `opportunity_id`; `None` when the org has no such
/// opportunity.
pub fn explain_link(org: &OrgData, rules: &Rules, opportunity_id: &str) -> Option<LinkExplanation> {
    let opp = org.opportunities.iter().find(|o| o.id == opportunity_id)?;
    let hierarchy = Hierarchy::new(&org.accounts);
    let members: Vec<Vec<(&str, Membership)>> =
        org.plans.iter().map(|p| hierarchy.members(p)).collect();
    let mut index = PlanIndex::default();
    for (plan, m) in org.plans.iter().zip(&members) {
        if is_linkable(plan, rules) {
            index.insert(plan, m);
        }
    }
    let ranked = index.candidates(opp, rules);
    let rules_link = ranked.first().map(|c| c.plan.id.clone());
    let link = if opp.link_locked {
        opp.plan_id.clone()
    } else {
        rules_link.clone()
    };
    let decider = match ranked.as_slice() {
        [] => None,
        [_] => Some(Decider::OnlyCandidate),
        [a, b, ..] => Some(decider(a, b)),
    };
    let empty_because = if link.is_some() || opp.link_locked {
        None
    } else if opp.account_id.is_none() {
        Some(EmptyBecause::NoAccount)
    } else if opp.close_date.is_none() {
        Some(EmptyBecause::NoCloseDate)
    } else {
        Some(EmptyBecause::NoCandidate)
    };

    // Plans considered but not candidates: those the account belongs to, those on its
    // ancestors, and the current link.
    let candidate_ids: HashSet<&str> = ranked.iter().map(|c| c.plan.id.as_str()).collect();
    let ancestors = ancestors(org, opp.account_id.as_deref());
    let mut not_candidates = Vec::new();
    for (plan, m) in org.plans.iter().zip(&members) {
        if candidate_ids.contains(plan.id.as_str()) {
            continue;
        }
        let membership = opp
            .account_id
            .as_deref()
            .and_then(|a| m.iter().find(|(acct, _)| *acct == a).map(|(_, m)| *m));
        let ancestor_hops = plan
            .account_id
            .iter()
            .chain(&plan.extra_account_ids)
            .filter_map(|a| {
                ancestors
                    .iter()
                    .find(|(id, _)| id == a)
                    .map(|(_, hops)| *hops)
            })
            .min();
        let is_current = opp.plan_id.as_deref() == Some(plan.id.as_str());
        if membership.is_none() && ancestor_hops.is_none() && !is_current {
            continue;
        }
        let mut reasons = Vec::new();
        if !rules.is_linkable(plan) {
            reasons.push(NotCandidate::StatusNotLinkable);
        }
        if plan.valid_period().is_none() {
            reasons.push(NotCandidate::InvalidPeriod);
        } else if let Some(d) = opp.close_date {
            if !plan.valid_period().is_some_and(|(s, e)| s <= d && d <= e) {
                reasons.push(NotCandidate::OutsidePeriod);
            }
        }
        if rules.use_discriminator && plan.discriminator != opp.discriminator {
            reasons.push(NotCandidate::DiscriminatorDiffers {
                plan: plan.discriminator.clone(),
                opportunity: opp.discriminator.clone(),
            });
        }
        if membership.is_none() {
            reasons.push(NotCandidate::NotAMember { ancestor_hops });
        }
        not_candidates.push(Rejected {
            plan: PlanFacts::of(plan),
            membership,
            reasons,
        });
    }
    not_candidates.sort_by(|a, b| {
        (a.membership.is_none(), a.membership, &a.plan.id).cmp(&(
            b.membership.is_none(),
            b.membership,
            &b.plan.id,
        ))
    });

    // What would change the link.
    let link_at = |date: NaiveDate| -> Option<String> {
        let mut moved = opp.clone();
        moved.close_date = Some(date);
        index
            .candidates(&moved, rules)
            .first()
            .map(|c| c.plan.id.clone())
    };
    let mut levers = Vec::new();
    if opp.link_locked {
        levers.push(Lever::Unlock {
            then: rules_link.clone(),
        });
    } else {
        if let Some(first) = ranked.first() {
            if let Some((start, end)) = first.plan.valid_period() {
                if let Some(after) = end.succ_opt() {
                    levers.push(Lever::CloseDateAfter {
                        date: end,
                        plan: first.plan.id.clone(),
                        then: link_at(after),
                    });
                }
                if let Some(before) = start.pred_opt() {
                    levers.push(Lever::CloseDateBefore {
                        date: start,
                        plan: first.plan.id.clone(),
                        then: link_at(before),
                    });
                }
            }
        }
        if let Some(close) = opp.close_date {
            for r in &not_candidates {
                let only_outside = r.membership.is_some()
                    && r.reasons.iter().all(|x| *x == NotCandidate::OutsidePeriod);
                let Some((start, end)) = org
                    .plans
                    .iter()
                    .find(|p| p.id == r.plan.id)
                    .and_then(Plan::valid_period)
                else {
                    continue;
                };
                if only_outside {
                    let date = if close < start { start } else { end };
                    levers.push(Lever::CloseDateTo {
                        date,
                        plan: r.plan.id.clone(),
                        then: link_at(date),
                    });
                }
            }
        }
        levers.push(Lever::Lock {
            keeps: opp.plan_id.clone(),
        });
    }
    for r in &not_candidates {
        if r.reasons == [NotCandidate::StatusNotLinkable] {
            levers.push(Lever::MakeLinkable {
                plan: r.plan.id.clone(),
            });
        }
        if let [.., NotCandidate::NotAMember {
            ancestor_hops: Some(_),
        }] = r.reasons.as_slice()
        {
            if r.reasons.len() == 1 {
                levers.push(Lever::IncludeChildren {
                    plan: r.plan.id.clone(),
                });
            }
        }
    }

    Some(LinkExplanation {
        opportunity_id: opp.id.clone(),
        account_id: opp.account_id.clone(),
        close_date: opp.close_date,
        current_link: opp.plan_id.clone(),
        locked: opp.link_locked,
        link,
        rules_link,
        candidates: ranked
            .iter()
            .map(|c| CandidateFacts {
                plan: PlanFacts::of(c.plan),
                membership: c.membership,
                period_days: c.plan.valid_period().map_or(0, |(s, e)| (e - s).num_days()),
            })
            .collect(),
        decider,
        empty_because,
        not_candidates,
        levers,
    })
}

fn decider(a: &Candidate<'_>, b: &Candidate<'_>) -> Decider {
    let period = |c: &Candidate<'_>| {
        c.plan
            .valid_period()
            .unwrap_or((NaiveDate::MIN, NaiveDate::MAX))
    };
    let ((sa, ea), (sb, eb)) = (period(a), period(b));
    if a.membership != b.membership {
        Decider::ClosestMembership
    } else if (ea - sa) != (eb - sb) {
        Decider::ShortestPeriod
    } else if sa != sb {
        Decider::LatestStart
    } else {
        Decider::SmallestId
    }
}

/// The ancestors of `account` through ParentId with their distance, stopping at a cycle.
fn ancestors(org: &OrgData, account: Option<&str>) -> Vec<(String, u32)> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut at = account.map(str::to_string);
    let mut hops = 0;
    while let Some(id) = at {
        if !seen.insert(id.clone()) {
            break;
        }
        if hops > 0 {
            out.push((id.clone(), hops));
        }
        hops += 1;
        at = org
            .accounts
            .iter()
            .find(|a| a.id == id)
            .and_then(|a| a.parent_id.clone());
    }
    out
}

/// A linked opportunity's contribution to a plan's rollups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpportunityLine {
    pub id: String,
    pub account_id: Option<String>,
    pub close_date: Option<NaiveDate>,
    /// In the plan's currency, unrounded; a null Amount counts as 0.
    pub amount: Decimal,
    pub probability: Option<Decimal>,
    /// amount × Probability / 100, for open opportunities in the pipeline.
    pub weighted: Option<Decimal>,
    /// Linked through a locked link rather than by the rules.
    pub locked: bool,
}

/// Which kind of activity a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActivityKind {
    Task,
    Event,
}

/// An activity record behind a date rollup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityRef {
    pub kind: ActivityKind,
    pub id: String,
    pub date: NaiveDate,
}

/// Where the plan's close ratio came from, with the win-rate counts it looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseRatioFacts {
    /// A fraction: 0.25 for 25 %.
    pub ratio: Decimal,
    pub source: CloseRatioSource,
    /// Closed and won opportunities of accounts(plan) with CloseDate in the last 365 days.
    pub closed_in_window: i64,
    pub won_in_window: i64,
}

/// Every rollup of a plan with the records behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanBreakdown {
    pub plan: Plan,
    /// accounts(plan), sorted by Id.
    pub members: Vec<(String, Membership)>,
    /// Whether the plan's status gets rollups written.
    pub gets_rollups: bool,
    pub close_ratio: CloseRatioFacts,
    pub won: Vec<OpportunityLine>,
    pub lost: Vec<OpportunityLine>,
    pub open: Vec<OpportunityLine>,
    /// Open in ForecastCategoryName `Omitted`: in no sum.
    pub omitted: Vec<OpportunityLine>,
    pub sums: Sums,
    /// The rollups these give (what a cycle writes for a plan that gets rollups); `None`
    /// when an amount cannot be converted (see `conversion_error`).
    pub rollups: Option<Rollups>,
    pub conversion_error: Option<String>,
    /// The closed task or event behind last_activity, and the open one behind next_activity.
    pub last_activity: Option<ActivityRef>,
    pub next_activity: Option<ActivityRef>,
    pub overdue_tasks: Vec<ActivityRef>,
    /// Contacts of accounts(plan), and those of them engaged in the window.
    pub contacts: Vec<String>,
    pub engaged_contacts: Vec<String>,
}

/// Breaks down the rollups of plan `plan_id` as of `today`; `None` when there is no such plan.
/// Totals equal those of [`compute`] for the same inputs.
pub fn plan_breakdown(
    org: &OrgData,
    rules: &Rules,
    today: NaiveDate,
    plan_id: &str,
) -> Option<PlanBreakdown> {
    let plan = org.plans.iter().find(|p| p.id == plan_id)?;
    let hierarchy = Hierarchy::new(&org.accounts);
    let members = hierarchy.members(plan);
    let member_ids: BTreeSet<&str> = members.iter().map(|(a, _)| *a).collect();

    // The links, exactly as a cycle computes them.
    let only: BTreeSet<String> = [plan_id.to_string()].into();
    let outcome = compute(org, rules, today, Some(&only));
    let linked: Vec<&Opportunity> = org
        .opportunities
        .iter()
        .filter(|o| outcome.links.get(&o.id).and_then(|l| l.as_deref()) == Some(plan_id))
        .collect();

    let mut b = PlanBreakdown {
        plan: plan.clone(),
        members: members.iter().map(|(a, m)| (a.to_string(), *m)).collect(),
        gets_rollups: rules.is_rolled_up(plan),
        close_ratio: CloseRatioFacts {
            ratio: Decimal::ZERO,
            source: CloseRatioSource::Default,
            closed_in_window: 0,
            won_in_window: 0,
        },
        won: vec![],
        lost: vec![],
        open: vec![],
        omitted: vec![],
        sums: Sums::default(),
        rollups: None,
        conversion_error: None,
        last_activity: None,
        next_activity: None,
        overdue_tasks: vec![],
        contacts: vec![],
        engaged_contacts: vec![],
    };

    if let Err(e) = org.rates.check(plan.currency.as_deref()) {
        b.conversion_error = Some(format!("plan {}: {e}", plan.id));
    }
    for o in &linked {
        let amount = match org.rates.convert(
            o.amount.unwrap_or(Decimal::ZERO),
            o.currency.as_deref(),
            plan.currency.as_deref(),
            o.close_date,
        ) {
            Ok(a) => a,
            Err(e) => {
                b.conversion_error
                    .get_or_insert_with(|| format!("opportunity {}: {e}", o.id));
                continue;
            }
        };
        let mut line = OpportunityLine {
            id: o.id.clone(),
            account_id: o.account_id.clone(),
            close_date: o.close_date,
            amount,
            probability: o.probability,
            weighted: None,
            locked: o.link_locked,
        };
        let s = &mut b.sums;
        if o.is_won {
            s.won += amount;
            s.won_count += 1;
            b.won.push(line);
        } else if o.is_closed {
            s.lost += amount;
            s.lost_count += 1;
            b.lost.push(line);
        } else if o.forecast_category.as_deref() == Some("Omitted") {
            s.omitted += amount;
            s.omitted_count += 1;
            b.omitted.push(line);
        } else {
            let w = amount * o.probability.unwrap_or(Decimal::ZERO) / Decimal::ONE_HUNDRED;
            line.weighted = Some(w);
            s.open += amount;
            s.open_count += 1;
            s.weighted += w;
            b.open.push(line);
        }
    }

    let history: Vec<&Opportunity> = org
        .opportunities
        .iter()
        .filter(|o| {
            o.account_id
                .as_deref()
                .is_some_and(|a| member_ids.contains(a))
        })
        .collect();
    let (ratio, source) = close_ratio(plan, history.iter().copied(), today, rules);
    let since = today - Duration::days(365);
    let in_window: Vec<&&Opportunity> = history
        .iter()
        .filter(|o| o.is_closed && o.close_date.is_some_and(|d| since <= d && d <= today))
        .collect();
    b.close_ratio = CloseRatioFacts {
        ratio,
        source,
        closed_in_window: in_window.len() as i64,
        won_in_window: in_window.iter().filter(|o| o.is_won).count() as i64,
    };

    // Activities: AccountId in accounts(plan) or WhatId a linked opportunity.
    let linked_ids: HashSet<&str> = linked.iter().map(|o| o.id.as_str()).collect();
    let belongs = |account: Option<&str>, what: Option<&str>| {
        account.is_some_and(|a| member_ids.contains(a))
            || what.is_some_and(|w| linked_ids.contains(w))
    };
    let tasks: Vec<_> = org
        .tasks
        .iter()
        .filter(|t| belongs(t.account_id.as_deref(), t.what_id.as_deref()))
        .collect();
    let events: Vec<_> = org
        .events
        .iter()
        .filter(|e| belongs(e.account_id.as_deref(), e.what_id.as_deref()))
        .collect();
    let summary = summarize(
        tasks.iter().copied(),
        events.iter().copied(),
        today,
        rules.timezone,
    );
    let mut past: Vec<ActivityRef> = Vec::new();
    let mut upcoming: Vec<ActivityRef> = Vec::new();
    for t in &tasks {
        let Some(date) = task_date(t) else { continue };
        let r = ActivityRef {
            kind: ActivityKind::Task,
            id: t.id.clone(),
            date,
        };
        if t.is_closed && date <= today {
            past.push(r);
        } else if !t.is_closed {
            if date < today {
                b.overdue_tasks.push(r.clone());
            }
            if date >= today {
                upcoming.push(r);
            }
        }
    }
    for e in &events {
        let Some(date) = event_date(e, rules.timezone) else {
            continue;
        };
        let r = ActivityRef {
            kind: ActivityKind::Event,
            id: e.id.clone(),
            date,
        };
        if date <= today {
            past.push(r.clone());
        }
        if date >= today {
            upcoming.push(r);
        }
    }
    // Latest past (ties: smallest Id) and earliest upcoming.
    b.last_activity = past
        .into_iter()
        .min_by(|x, y| y.date.cmp(&x.date).then_with(|| x.id.cmp(&y.id)));
    b.next_activity = upcoming
        .into_iter()
        .min_by(|x, y| x.date.cmp(&y.date).then_with(|| x.id.cmp(&y.id)));
    b.overdue_tasks
        .sort_by(|x, y| (x.date, &x.id).cmp(&(y.date, &y.id)));

    let engaged = engaged_contacts(org, rules, today);
    b.contacts = org
        .contacts
        .iter()
        .filter(|c| {
            c.account_id
                .as_deref()
                .is_some_and(|a| member_ids.contains(a))
        })
        .map(|c| c.id.clone())
        .collect();
    b.contacts.sort();
    b.engaged_contacts = b
        .contacts
        .iter()
        .filter(|c| engaged.contains(c.as_str()))
        .cloned()
        .collect();

    if b.conversion_error.is_none() {
        b.rollups = Some(finish(
            plan,
            &b.sums,
            ratio,
            summary,
            b.contacts.len() as i64,
            b.engaged_contacts.len() as i64,
        ));
    }
    Some(b)
}

#[cfg(test)]
#[path = "explain_tests.rs"]
mod tests;
