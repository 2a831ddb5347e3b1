//! What a run pulls: every object by its cursor (a cycle, a snapshot), everything again (a
//! full run, `resync` of everything or of one object), or the records around one plan or one
//! account (`resync --plan`, `--account`), whose queries are built here from the mirror's
//! plan memberships.

use crate::crm::soql;

use super::names::{Names, ObjectKind};
use super::pull::{in_filters, PullMode};

/// What `plansync resync` re-pulls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResyncTarget {
    /// Everything: a full run.
    All,
    /// One plan: its record, junction rows, accounts and their opportunities and activities.
    Plan(String),
    /// One account: its record, its plans and junction rows, opportunities and activities.
    Account(String),
    /// Every record of one object.
    Object(ObjectKind),
}

/// Which pulls a run makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pulls {
    Fixed(Vec<(ObjectKind, PullMode)>),
    /// A plan's records; which accounts it covers is known after its first pulls
    /// ([`plan_first_pulls`], then [`plan_pulls`]).
    Plan(String),
    /// An account's records ([`account_pulls`]).
    Account(String),
}

/// Every object, in `mode`.
pub fn every_object(mode: PullMode) -> Pulls {
    Pulls::Fixed(ObjectKind::ALL.map(|k| (k, mode.clone())).to_vec())
}

/// What a resync of `target` pulls, and whether it recomputes every plan (when it re-pulls
/// whole objects, any plan may have moved).
pub fn resync_pulls(target: ResyncTarget) -> (Pulls, bool) {
    match target {
        ResyncTarget::All => (every_object(PullMode::Full), true),
        ResyncTarget::Object(kind) => (Pulls::Fixed(vec![(kind, PullMode::Full)]), true),
        ResyncTarget::Plan(id) => (Pulls::Plan(id), false),
        ResyncTarget::Account(id) => (Pulls::Account(id), false),
    }
}

/// `pulls` when the mirror needs a refresh (records mirrored without their currency code):
/// incremental pulls become full ones, filtered ones stay as they are.
pub fn refreshed(pulls: &[(ObjectKind, PullMode)], refresh: bool) -> Vec<(ObjectKind, PullMode)> {
    pulls
        .iter()
        .map(|(kind, mode)| match mode {
            PullMode::Incremental if refresh => (*kind, PullMode::Full),
            other => (*kind, other.clone()),
        })
        .collect()
}

/// A plan's own record and its junction rows: they say which accounts it covers.
pub fn plan_first_pulls(names: &Names, plan_id: &str) -> Vec<(ObjectKind, PullMode)> {
    let id = soql::quote(plan_id);
    vec![
        (
            ObjectKind::Plan,
            PullMode::Where(vec![format!("Id = {id}")]),
        ),
        (
            ObjectKind::PlanAccount,
            PullMode::Where(vec![format!("{} = {id}", names.plan_account.plan)]),
        ),
    ]
}

/// After the plan and its junction rows are in the mirror: its accounts (`members`), and the
/// opportunities, contacts, tasks and events of those accounts and linked to it.
pub fn plan_pulls(names: &Names, plan_id: &str, members: &[String]) -> Vec<(ObjectKind, PullMode)> {
    let mut opportunity_filters = in_filters(&names.opportunity.account_id, members);
    opportunity_filters.push(format!(
        "{} = {}",
        names.opportunity.plan_link,
        soql::quote(plan_id)
    ));
    vec![
        (
            ObjectKind::Account,
            PullMode::Where(in_filters("Id", members)),
        ),
        (
            ObjectKind::Opportunity,
            PullMode::Where(opportunity_filters),
        ),
        (
            ObjectKind::Contact,
            PullMode::Where(in_filters(&names.contact.account_id, members)),
        ),
        (
            ObjectKind::Task,
            PullMode::Where(in_filters(&names.task.account_id, members)),
        ),
        (
            ObjectKind::Event,
            PullMode::Where(in_filters(&names.event.account_id, members)),
        ),
    ]
}

/// The account, the plans and junction rows naming it, and its opportunities, contacts,
/// tasks and events.
pub fn account_pulls(names: &Names, account_id: &str) -> Vec<(ObjectKind, PullMode)> {
    let id = soql::quote(account_id);
    let by = |field: &str| PullMode::Where(vec![format!("{field} = {id}")]);
    vec![
        (ObjectKind::Account, by("Id")),
        (ObjectKind::Plan, by(&names.plan.account)),
        (ObjectKind::PlanAccount, by(&names.plan_account.account)),
        (ObjectKind::Opportunity, by(&names.opportunity.account_id)),
        (ObjectKind::Contact, by(&names.contact.account_id)),
        (ObjectKind::Task, by(&names.task.account_id)),
        (ObjectKind::Event, by(&names.event.account_id)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filters(pulls: &[(ObjectKind, PullMode)], kind: ObjectKind) -> Vec<String> {
        match pulls.iter().find(|(k, _)| *k == kind).map(|(_, m)| m) {
            Some(PullMode::Where(f)) => f.clone(),
            other => panic!("{kind:?}: {other:?}"),
        }
    }

    #[test]
    fn resync_targets_pull_and_recompute_as_they_say() {
        let cases = [
            (ResyncTarget::All, every_object(PullMode::Full), true),
            (
                ResyncTarget::Object(ObjectKind::Task),
                Pulls::Fixed(vec![(ObjectKind::Task, PullMode::Full)]),
                true,
            ),
            (
                ResyncTarget::Plan("a01".into()),
                Pulls::Plan("a01".into()),
                false,
            ),
            (
                ResyncTarget::Account("001".into()),
                Pulls::Account("001".into()),
                false,
            ),
        ];
        for (target, pulls, everything) in cases {
            assert_eq!(
                resync_pulls(target.clone()),
                (pulls, everything),
                "{target:?}"
            );
        }
        let Pulls::Fixed(all) = every_object(PullMode::Incremental) else {
            panic!("fixed")
        };
        assert_eq!(all.len(), ObjectKind::ALL.len());
    }

    #[test]
    fn a_refresh_turns_incremental_pulls_into_full_ones_only() {
        let pulls = vec![
            (ObjectKind::Account, PullMode::Incremental),
            (ObjectKind::Plan, PullMode::Full),
            (ObjectKind::Task, PullMode::Where(vec!["Id = '1'".into()])),
        ];
        assert_eq!(refreshed(&pulls, false), pulls);
        assert_eq!(
            refreshed(&pulls, true),
            vec![
                (ObjectKind::Account, PullMode::Full),
                (ObjectKind::Plan, PullMode::Full),
                (ObjectKind::Task, PullMode::Where(vec!["Id = '1'".into()])),
            ]
        );
    }

    #[test]
    fn a_plan_is_pulled_with_its_junction_rows_then_its_accounts_records() {
        let names = Names::default();
        let first = plan_first_pulls(&names, "a01000000000001AAA");
        assert_eq!(
            filters(&first, ObjectKind::Plan),
            ["Id = 'a01000000000001AAA'"]
        );
        assert_eq!(
            filters(&first, ObjectKind::PlanAccount),
            [format!(
                "{} = 'a01000000000001AAA'",
                names.plan_account.plan
            )]
        );

        let members = vec!["001A".to_string(), "001B".to_string()];
        let then = plan_pulls(&names, "a01000000000001AAA", &members);
        assert_eq!(
            filters(&then, ObjectKind::Account),
            ["Id IN ('001A','001B')"]
        );
        let opportunities = filters(&then, ObjectKind::Opportunity);
        assert_eq!(
            opportunities,
            [
                format!("{} IN ('001A','001B')", names.opportunity.account_id),
                format!("{} = 'a01000000000001AAA'", names.opportunity.plan_link),
            ],
            "the plan's accounts' opportunities and those linked to it"
        );
        for kind in [ObjectKind::Contact, ObjectKind::Task, ObjectKind::Event] {
            assert_eq!(filters(&then, kind).len(), 1, "{kind:?}");
        }
        // A plan without accounts still pulls the opportunities linked to it.
        let alone = plan_pulls(&names, "a01000000000001AAA", &[]);
        assert_eq!(filters(&alone, ObjectKind::Opportunity).len(), 1);
        assert!(filters(&alone, ObjectKind::Account).is_empty());
    }

    #[test]
    fn an_account_is_pulled_with_everything_that_names_it() {
        let names = Names::default();
        let pulls = account_pulls(&names, "001000000000001AAA");
        let kinds: Vec<ObjectKind> = pulls.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            kinds,
            [
                ObjectKind::Account,
                ObjectKind::Plan,
                ObjectKind::PlanAccount,
                ObjectKind::Opportunity,
                ObjectKind::Contact,
                ObjectKind::Task,
                ObjectKind::Event
            ]
        );
        assert_eq!(
            filters(&pulls, ObjectKind::Plan),
            [format!("{} = '001000000000001AAA'", names.plan.account)]
        );
        assert_eq!(
            filters(&pulls, ObjectKind::Account),
            ["Id = '001000000000001AAA'"]
        );
    }
}
