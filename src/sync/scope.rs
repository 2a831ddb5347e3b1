//! Step 3 of the cycle (design.md §4): which plans the changes of an incremental pull touch,
//! so only those are recomputed. Pure: it reads the records' values before and after the pull
//! and the plan memberships before and after.
//!
//! A plan is touched when its own record changes; when a junction row adding an account to it
//! changes; when an account in it changes (its parent moves it in or out of hierarchies); and
//! when an opportunity, contact, task or event of one of its accounts changes (before or after
//! the change), or an opportunity linked to it, or a task or event about such an opportunity,
//! or a task or event whose contact belongs to one of its accounts (engaged contacts).
//! Links that move because of a change are added by the caller after computing them.
//!
//! Also here: whether a run recomputes every plan instead ([`recompute_all`]), and which
//! findings outlive a recompute of only some plans ([`findings_to_keep`]).

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Map, Value};

use crate::domain::membership::Hierarchy;
use crate::domain::{Account, FindingKind, Plan};
use crate::store::{Finding, MirrorRecord, RunRow, Store};

use super::compute::{extra_accounts, finding_kind, junction, Covered, Structure};
use super::kind::RunName;

use super::convert::{self, text};
use super::names::{Names, ObjectKind};
use super::pull::ChangedRecord;
use super::SyncError;

/// For each account, the plans it belongs to (directly, through a junction row, or through the
/// hierarchy).
#[derive(Debug, Default)]
pub struct PlanMembership {
    by_account: HashMap<String, BTreeSet<String>>,
}

impl PlanMembership {
    pub fn new(accounts: &[Account], plans: &[Plan]) -> Self {
        let hierarchy = Hierarchy::new(accounts);
        let mut by_account: HashMap<String, BTreeSet<String>> = HashMap::new();
        for plan in plans {
            for (account, _) in hierarchy.members(plan) {
                by_account
                    .entry(account.to_string())
                    .or_default()
                    .insert(plan.id.clone());
            }
        }
        PlanMembership { by_account }
    }

    /// The plans an account belongs to.
    pub fn plans_of_account(&self, account: &str) -> Vec<String> {
        self.plans_of(Some(account)).cloned().collect()
    }

    fn plans_of(&self, account: Option<&str>) -> impl Iterator<Item = &String> {
        account
            .and_then(|a| self.by_account.get(a))
            .into_iter()
            .flatten()
    }
}

/// What the scoping reads of the mirror after the pull.
pub struct Lookups<'a> {
    /// Opportunity Id → its plan link as the mirror holds it.
    pub opportunity_links: &'a HashMap<String, Option<String>>,
    /// Contact Id → its AccountId.
    pub contact_accounts: &'a HashMap<String, Option<String>>,
}

/// The plans the changed records touch.
pub fn touched_plans(
    names: &Names,
    before: &PlanMembership,
    after: &PlanMembership,
    lookups: &Lookups<'_>,
    changed: &[ChangedRecord],
) -> BTreeSet<String> {
    let mut touched = BTreeSet::new();
    for record in changed {
        let values = |field: &str| -> [Option<String>; 2] {
            let get = |m: Option<&Map<String, Value>>| m.and_then(|m| text(m, field));
            [get(record.before.as_ref()), get(Some(&record.after))]
        };
        let of_accounts = |accounts: [Option<String>; 2], touched: &mut BTreeSet<String>| {
            for account in accounts.iter().flatten() {
                touched.extend(before.plans_of(Some(account)).cloned());
                touched.extend(after.plans_of(Some(account)).cloned());
            }
        };
        match record.kind {
            ObjectKind::Plan => {
                touched.insert(record.id.clone());
            }
            ObjectKind::PlanAccount => {
                touched.extend(values(&names.plan_account.plan).into_iter().flatten());
            }
            ObjectKind::Account => {
                of_accounts([Some(record.id.clone()), None], &mut touched);
            }
            ObjectKind::Opportunity => {
                touched.extend(values(&names.opportunity.plan_link).into_iter().flatten());
                of_accounts(values(&names.opportunity.account_id), &mut touched);
            }
            ObjectKind::Contact => {
                of_accounts(values(&names.contact.account_id), &mut touched);
            }
            ObjectKind::Task | ObjectKind::Event => {
                let (account, what, who) = match record.kind {
                    ObjectKind::Task => (
                        &names.task.account_id,
                        &names.task.what_id,
                        &names.task.who_id,
                    ),
                    _ => (
                        &names.event.account_id,
                        &names.event.what_id,
                        &names.event.who_id,
                    ),
                };
                of_accounts(values(account), &mut touched);
                for what_id in values(what).into_iter().flatten() {
                    if let Some(Some(plan)) = lookups.opportunity_links.get(&what_id) {
                        touched.insert(plan.clone());
                    }
                }
                for who_id in values(who).into_iter().flatten() {
                    if let Some(account) = lookups.contact_accounts.get(&who_id) {
                        of_accounts([account.clone(), None], &mut touched);
                    }
                }
            }
        }
    }
    touched
}

/// The accounts and plans as the mirror held them before the pull: the structure read after
/// it (`after`), with each changed account, plan and junction row put back as it was before
/// (one the pull created taken out). This spares reading the structure before every pull:
/// only a cycle that changed something needs it.
pub fn structure_before(
    names: &Names,
    after: &Structure,
    changed: &[ChangedRecord],
) -> (Vec<Account>, Vec<Plan>) {
    // The first change of a record holds the mirror's version from before the run.
    let mut first: HashMap<(ObjectKind, &str), &ChangedRecord> = HashMap::new();
    for c in changed {
        first.entry((c.kind, c.id.as_str())).or_insert(c);
    }
    let before_of = |kind: ObjectKind| {
        first
            .values()
            .filter(move |c| c.kind == kind)
            .filter_map(|c| {
                c.before.as_ref().map(|fields| MirrorRecord {
                    id: c.id.clone(),
                    system_modstamp: DateTime::<Utc>::UNIX_EPOCH,
                    is_deleted: false,
                    fields: fields.clone(),
                })
            })
    };
    let is_changed = |kind: ObjectKind, id: &str| first.contains_key(&(kind, id));

    let mut accounts: Vec<Account> = after
        .accounts
        .iter()
        .filter(|a| !is_changed(ObjectKind::Account, &a.id))
        .cloned()
        .collect();
    accounts.extend(before_of(ObjectKind::Account).map(|r| convert::account(names, &r)));
    accounts.sort_by(|a, b| a.id.cmp(&b.id));

    let mut junctions: Vec<_> = after
        .junctions
        .iter()
        .filter(|j| !is_changed(ObjectKind::PlanAccount, &j.id))
        .cloned()
        .collect();
    junctions.extend(before_of(ObjectKind::PlanAccount).filter_map(|r| junction(names, &r)));
    junctions.sort_by(|a, b| a.id.cmp(&b.id));
    let extra = extra_accounts(&junctions);
    let extra_of = |id: &str| extra.get(id).cloned().unwrap_or_default();

    let mut plans: Vec<Plan> = after
        .plans
        .iter()
        .filter(|p| !is_changed(ObjectKind::Plan, &p.id))
        .map(|p| Plan {
            extra_account_ids: extra_of(&p.id),
            ..p.clone()
        })
        .collect();
    plans.extend(before_of(ObjectKind::Plan).map(|r| convert::plan(names, &r, extra_of(&r.id))));
    plans.sort_by(|a, b| a.id.cmp(&b.id));
    (accounts, plans)
}

/// Record Id → one reference of the record (a plan link, an AccountId).
pub type IdMap = HashMap<String, Option<String>>;

/// The mirror's values [`touched_plans`] looks up for the changed tasks and events, read by
/// Id after the pull: the plan links of the opportunities they are about (WhatId) and the
/// accounts of their contacts (WhoId).
pub fn lookups_for(
    store: &Store,
    names: &Names,
    changed: &[ChangedRecord],
) -> Result<(IdMap, IdMap), SyncError> {
    let mut whats = BTreeSet::new();
    let mut whos = BTreeSet::new();
    for c in changed {
        let (what, who) = match c.kind {
            ObjectKind::Task => (&names.task.what_id, &names.task.who_id),
            ObjectKind::Event => (&names.event.what_id, &names.event.who_id),
            _ => continue,
        };
        for fields in c.before.iter().chain(std::iter::once(&c.after)) {
            whats.extend(text(fields, what));
            whos.extend(text(fields, who));
        }
    }
    let read = |object: &str, ids: BTreeSet<String>, field: &str| {
        let ids: Vec<String> = ids.into_iter().collect();
        Ok::<_, SyncError>(
            store
                .records_by_id(object, &ids)?
                .into_values()
                .filter(|r| !r.is_deleted)
                .map(|r| (r.id, text(&r.fields, field)))
                .collect::<HashMap<_, _>>(),
        )
    };
    let links = read(
        &names.opportunity.object,
        whats,
        &names.opportunity.plan_link,
    )?;
    let contacts = read(&names.contact.object, whos, &names.contact.account_id)?;
    Ok((links, contacts))
}

/// Whether a run recomputes every plan rather than those its changes touch: when its kind
/// says so (`run_recomputes_all`: a full run, a snapshot, a resync of whole objects); on the
/// first run of the day in the org's time zone (`recomputed_all_on` is not `today`: activity
/// dates age without any CRM change); and after a run (`previous`) that did not complete or
/// did not write plan values (a dry run, a snapshot, or a run that died): it may have
/// refreshed the mirror without recomputing, and what it pulled no longer looks changed.
pub fn recompute_all(
    run_recomputes_all: bool,
    previous: Option<&RunRow>,
    recomputed_all_on: Option<&str>,
    today: NaiveDate,
) -> bool {
    let previous_completed = previous.is_some_and(|r| {
        r.outcome.as_deref() == Some("succeeded")
            && RunName::parse(&r.kind).is_some_and(RunName::writes_plans)
    });
    run_recomputes_all
        || !previous_completed
        || recomputed_all_on != Some(today.to_string().as_str())
}

/// The findings to keep after a recompute: all of its own (`fresh`), and, when only some
/// plans were recomputed (`scope`), the earlier plan findings (an unusable rate) of the
/// plans left alone (`earlier`).
pub fn findings_to_keep(
    fresh: Vec<(String, String, String)>,
    scope: Option<&BTreeSet<String>>,
    earlier: Vec<Finding>,
) -> Vec<(String, String, String)> {
    keep_findings(fresh, scope, earlier, |_, _| true)
}

/// [`findings_to_keep`] after a recompute that evaluated only part of the org (`covered`):
/// an earlier ambiguity of an opportunity whose link was not evaluated, an invalid period of
/// a plan not evaluated, and the hierarchy cycles when they were not looked for, are kept
/// too (nothing they depend on changed).
pub fn findings_to_keep_covered(
    fresh: Vec<(String, String, String)>,
    scope: Option<&BTreeSet<String>>,
    covered: &Covered,
    earlier: Vec<Finding>,
) -> Vec<(String, String, String)> {
    if covered.all {
        return keep_findings(fresh, scope, earlier, |_, _| true);
    }
    let ambiguity = finding_kind(FindingKind::Ambiguity);
    let invalid = finding_kind(FindingKind::InvalidPlanPeriod);
    let cycle = finding_kind(FindingKind::HierarchyCycle);
    keep_findings(fresh, scope, earlier, |kind, subject| {
        if kind == ambiguity {
            covered.opportunities.contains(subject)
        } else if kind == invalid {
            covered.plans.contains(subject)
        } else if kind == cycle {
            covered.cycles
        } else {
            true
        }
    })
}

/// Whether a run evaluated nothing (no plan in `scope`, nothing `covered`: an unchanged
/// cycle). Then every earlier finding stands but those of kinds each run states afresh (the
/// currency mode's), and the store's findings need not be read and written again:
/// [`findings_to_keep_covered`] would give back the earlier ones.
pub fn nothing_evaluated(scope: Option<&BTreeSet<String>>, covered: &Covered) -> bool {
    scope.is_some_and(BTreeSet::is_empty) && *covered == Covered::default()
}

/// Keeps `fresh`, and of `earlier` (when only the plans of `scope` were recomputed) the rate
/// findings of plans outside it and the findings `evaluated` (kind, first subject Id) says
/// were not evaluated again.
fn keep_findings(
    fresh: Vec<(String, String, String)>,
    scope: Option<&BTreeSet<String>>,
    earlier: Vec<Finding>,
    evaluated: impl Fn(&str, &str) -> bool,
) -> Vec<(String, String, String)> {
    let Some(scope) = scope else {
        return fresh;
    };
    let frozen = [
        finding_kind(FindingKind::UnknownCurrency),
        finding_kind(FindingKind::DatedRateGap),
    ];
    let mut kept = fresh;
    let fresh_set: HashSet<(String, String)> = kept
        .iter()
        .map(|(kind, subject, _)| (kind.clone(), subject.clone()))
        .collect();
    for old in earlier {
        let first = old.subject.split(',').next().unwrap_or_default();
        let keep = if frozen.contains(&old.kind.as_str()) {
            !scope.contains(first)
        } else {
            !evaluated(&old.kind, first)
        };
        if keep && !fresh_set.contains(&(old.kind.clone(), old.subject.clone())) {
            kept.push((old.kind, old.subject, old.message));
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn account(id: &str, parent: Option<&str>) -> Account {
        Account {
            id: id.into(),
            parent_id: parent.map(str::to_string),
        }
    }

    fn plan(id: &str, account: &str, children: bool) -> Plan {
        Plan {
            id: id.into(),
            name: id.into(),
            account_id: Some(account.into()),
            extra_account_ids: Vec::new(),
            period_start: None,
            period_end: None,
            revenue_target: None,
            close_ratio_percent: None,
            include_child_accounts: children,
            status: Some("Active".into()),
            currency: None,
            discriminator: None,
        }
    }

    fn changed(kind: ObjectKind, id: &str, before: Option<Value>, after: Value) -> ChangedRecord {
        let map = |v: Value| v.as_object().cloned().unwrap_or_default();
        ChangedRecord {
            kind,
            id: id.into(),
            before: before.map(map),
            after: map(after),
            deleted: false,
        }
    }

    struct Org {
        before: PlanMembership,
        after: PlanMembership,
        links: HashMap<String, Option<String>>,
        contacts: HashMap<String, Option<String>>,
    }

    impl Org {
        /// A (parent of B), C alone; plan PA on A with children, PB on B, PC on C.
        fn new() -> Org {
            let accounts = vec![
                account("A", None),
                account("B", Some("A")),
                account("C", None),
            ];
            let plans = vec![
                plan("PA", "A", true),
                plan("PB", "B", false),
                plan("PC", "C", false),
            ];
            let membership = PlanMembership::new(&accounts, &plans);
            Org {
                after: PlanMembership::new(&accounts, &plans),
                before: membership,
                links: HashMap::from([("O1".to_string(), Some("PC".to_string()))]),
                contacts: HashMap::from([("K1".to_string(), Some("B".to_string()))]),
            }
        }

        fn touched(&self, changes: &[ChangedRecord]) -> Vec<String> {
            let lookups = Lookups {
                opportunity_links: &self.links,
                contact_accounts: &self.contacts,
            };
            touched_plans(
                &Names::default(),
                &self.before,
                &self.after,
                &lookups,
                changes,
            )
            .into_iter()
            .collect()
        }
    }

    #[test]
    fn a_plan_change_touches_only_that_plan() {
        let org = Org::new();
        let c = changed(ObjectKind::Plan, "PB", None, json!({"Name": "x"}));
        assert_eq!(org.touched(&[c]), ["PB"]);
    }

    #[test]
    fn an_opportunity_touches_its_old_and_new_link_and_the_plans_of_both_accounts() {
        let org = Org::new();
        let c = changed(
            ObjectKind::Opportunity,
            "O9",
            Some(json!({"AccountId": "C", "Account_Plan__c": "PC"})),
            json!({"AccountId": "B", "Account_Plan__c": "PC"}),
        );
        // B is in PB directly and in PA through the hierarchy.
        assert_eq!(org.touched(&[c]), ["PA", "PB", "PC"]);
    }

    #[test]
    fn a_task_touches_the_plans_of_its_account_its_opportunity_and_its_contact() {
        let org = Org::new();
        let c = changed(
            ObjectKind::Task,
            "T1",
            None,
            json!({"AccountId": null, "WhatId": "O1", "WhoId": "K1"}),
        );
        assert_eq!(org.touched(&[c]), ["PA", "PB", "PC"]);
        let unrelated = changed(ObjectKind::Task, "T2", None, json!({"AccountId": "Z"}));
        assert!(org.touched(&[unrelated]).is_empty());
    }

    #[test]
    fn an_account_leaving_a_hierarchy_touches_the_plans_it_was_in() {
        let mut org = Org::new();
        // After the pull, B has no parent: only the old membership still has PA.
        org.after = PlanMembership::new(
            &[account("A", None), account("B", None), account("C", None)],
            &[
                plan("PA", "A", true),
                plan("PB", "B", false),
                plan("PC", "C", false),
            ],
        );
        let c = changed(
            ObjectKind::Account,
            "B",
            Some(json!({"ParentId": "A"})),
            json!({"ParentId": null}),
        );
        assert_eq!(org.touched(&[c]), ["PA", "PB"]);
    }

    #[test]
    fn a_junction_row_touches_its_plans_before_and_after() {
        let org = Org::new();
        let c = changed(
            ObjectKind::PlanAccount,
            "J1",
            Some(json!({"Account_Plan__c": "PA"})),
            json!({"Account_Plan__c": "PC"}),
        );
        assert_eq!(org.touched(&[c]), ["PA", "PC"]);
    }

    fn run(kind: &str, outcome: Option<&str>) -> RunRow {
        RunRow {
            id: 1,
            kind: kind.into(),
            started_at: chrono::DateTime::UNIX_EPOCH,
            finished_at: None,
            outcome: outcome.map(str::to_string),
            summary: None,
        }
    }

    #[test]
    fn every_plan_is_recomputed_after_an_incomplete_or_non_writing_run_or_on_a_new_day() {
        let today: NaiveDate = "2026-03-10".parse().unwrap();
        let ok = Some("succeeded");
        let cases = [
            // (recompute-all kind, previous run, recomputed all on, every plan)
            (
                false,
                Some(run("incremental", ok)),
                Some("2026-03-10"),
                false,
            ),
            (false, Some(run("full", ok)), Some("2026-03-10"), false),
            (false, Some(run("resync", ok)), Some("2026-03-10"), false),
            (true, Some(run("incremental", ok)), Some("2026-03-10"), true),
            (
                false,
                Some(run("incremental", ok)),
                Some("2026-03-09"),
                true,
            ),
            (false, Some(run("incremental", ok)), None, true),
            (false, None, Some("2026-03-10"), true),
            (
                false,
                Some(run("incremental", Some("partial"))),
                Some("2026-03-10"),
                true,
            ),
            (
                false,
                Some(run("incremental", Some("failed"))),
                Some("2026-03-10"),
                true,
            ),
            (
                false,
                Some(run("incremental", None)),
                Some("2026-03-10"),
                true,
            ),
            (false, Some(run("dry-run", ok)), Some("2026-03-10"), true),
            (
                false,
                Some(run("resync-dry-run", ok)),
                Some("2026-03-10"),
                true,
            ),
            (false, Some(run("snapshot", ok)), Some("2026-03-10"), true),
            (
                false,
                Some(run("snapshot-dry-run", ok)),
                Some("2026-03-10"),
                true,
            ),
        ];
        for (kind_says, previous, on, all) in cases {
            assert_eq!(
                recompute_all(kind_says, previous.as_ref(), on, today),
                all,
                "{kind_says} after {previous:?}, last all on {on:?}"
            );
        }
    }

    fn finding(kind: &str, subject: &str) -> Finding {
        Finding {
            kind: kind.into(),
            subject: subject.into(),
            message: format!("{kind} {subject}"),
        }
    }

    #[test]
    fn a_partial_recompute_keeps_the_rate_findings_of_the_plans_it_left_alone() {
        let fresh = vec![(
            "ambiguity".to_string(),
            "006A".to_string(),
            "new".to_string(),
        )];
        let earlier = vec![
            finding("unknown_currency", "PA,006X"),
            finding("dated_rate_gap", "PB,006Y"),
            finding("unknown_currency", "PC"),
            finding("ambiguity", "006B"),
            finding("invalid_plan_period", "PB"),
            finding("currency_mode", "CurrencyType"),
        ];
        let kept = |scope: Option<&BTreeSet<String>>| -> Vec<String> {
            findings_to_keep(fresh.clone(), scope, earlier.clone())
                .into_iter()
                .map(|(kind, subject, _)| format!("{kind} {subject}"))
                .collect()
        };
        assert_eq!(
            kept(None),
            ["ambiguity 006A"],
            "a full recompute keeps its own"
        );
        let scope: BTreeSet<String> = ["PA".to_string()].into();
        assert_eq!(
            kept(Some(&scope)),
            [
                "ambiguity 006A",
                "dated_rate_gap PB,006Y",
                "unknown_currency PC"
            ]
        );
        let everything: BTreeSet<String> = ["PA", "PB", "PC"].map(String::from).into();
        assert_eq!(kept(Some(&everything)), ["ambiguity 006A"]);
    }

    #[test]
    fn a_run_that_evaluated_nothing_keeps_every_earlier_finding_but_the_currency_modes() {
        let nothing = BTreeSet::new();
        let covered = Covered::default();
        assert!(nothing_evaluated(Some(&nothing), &covered));
        assert!(!nothing_evaluated(None, &covered), "a whole recompute");
        let one: BTreeSet<String> = ["PA".to_string()].into();
        assert!(!nothing_evaluated(Some(&one), &covered));
        let mut some_opportunity = Covered::default();
        some_opportunity.opportunities.insert("006A".into());
        assert!(!nothing_evaluated(Some(&nothing), &some_opportunity));
        let cycles = Covered {
            cycles: true,
            ..Covered::default()
        };
        assert!(!nothing_evaluated(Some(&nothing), &cycles));

        // What the full rule gives in that case: the earlier findings, the currency mode's
        // stated afresh (so an unchanged cycle replaces only those).
        let earlier = vec![
            finding("unknown_currency", "PA,006X"),
            finding("dated_rate_gap", "PB,006Y"),
            finding("ambiguity", "006B"),
            finding("invalid_plan_period", "PB"),
            finding("hierarchy_cycle", "001A,001B"),
            finding("currency_mode", "CurrencyType"),
        ];
        let fresh = vec![(
            "currency_mode".to_string(),
            "CurrencyType".to_string(),
            "still".to_string(),
        )];
        let mut kept: Vec<String> =
            findings_to_keep_covered(fresh.clone(), Some(&nothing), &covered, earlier.clone())
                .into_iter()
                .map(|(kind, subject, message)| format!("{kind} {subject} {message}"))
                .collect();
        let mut want: Vec<String> = earlier
            .iter()
            .filter(|f| f.kind != "currency_mode")
            .map(|f| format!("{} {} {}", f.kind, f.subject, f.message))
            .chain(["currency_mode CurrencyType still".to_string()])
            .collect();
        kept.sort();
        want.sort();
        assert_eq!(kept, want);
        let gone = findings_to_keep_covered(Vec::new(), Some(&nothing), &covered, earlier);
        assert!(gone.iter().all(|(kind, _, _)| kind != "currency_mode"));
        assert_eq!(gone.len(), 5);
    }
}
