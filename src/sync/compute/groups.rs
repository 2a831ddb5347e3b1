//! The recompute in bounded groups: instead of reading the whole mirror into one [`OrgData`],
//! the plans are split into groups, and each group's records are loaded from the store (by
//! the indexed references of [`Store::for_each_live_by_reference`]), computed with the same
//! pure [`domain::compute`], diffed into writes and dropped before the next group. What stays
//! for the whole run is the structure (each account's Id and ParentId, the plans with their
//! junction accounts) and the Id indexes built from it.
//!
//! **Why a group holds everything its plans' rules read.** A group is a union of components
//! of the graph whose nodes are plans and accounts, with an edge between a plan and each
//! account in accounts(plan) (design.md §3.1: direct, junction and hierarchy members). Then:
//! - linking (§3.2): an opportunity's candidates are the plans whose accounts hold its
//!   AccountId, all in that account's component, so every plan its link can go to is in the
//!   group that loads it by AccountId;
//! - a plan's rollups (§3.3) read its linked opportunities: those whose AccountId is in the
//!   plan's accounts (loaded by AccountId) and locked ones linked to it from anywhere (loaded
//!   by the plan link); its close ratio reads the opportunities of its accounts;
//! - activities (§3.4) are loaded by AccountId and by WhatId of the group's opportunities;
//!   engaged contacts read the closed tasks and events whose WhoId is one of the group's
//!   contacts, wherever they are filed, so those are loaded by WhoId;
//! - the hierarchy below a plan's accounts is in its accounts, so the group's accounts give
//!   the same members and hops as the whole org's.
//!
//! An opportunity loaded only because it is linked (in the mirror) to one of the group's plans,
//! unlocked, whose AccountId is in another component cannot be linked to any plan of this
//! group: its link is evaluated by its own account's group. When that group is computed in
//! the run anyway it is left out here; otherwise (a partial recompute) its component joins the
//! group, so the link that has to move is evaluated. Opportunities whose AccountId is in no
//! plan (their link can only be empty) are evaluated with the group that loads them, or on
//! their own. Hierarchy cycles are found once over the structure. Groups are filled with whole
//! components up to [`GROUP_ACCOUNTS`] accounts, so a run holds the records of about that many
//! accounts at a time (one component larger than that is one group: its rules need it whole).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, NaiveDate, Utc};

use crate::domain::membership::Hierarchy;
use crate::domain::{self, Account, Event, FindingKind, OrgData, Plan, Rates, Rules, Task};
use crate::store::{MirrorRecord, NewWrite, Store, StoreError};

use super::super::convert::{self, text};
use super::super::names::{Names, ObjectKind};
use super::super::SyncError;
use super::{diff_outcome, finding_rows, Planned};

/// Accounts (members of the group's plans) a group is filled up to.
pub const GROUP_ACCOUNTS: usize = 400;

/// Where a grouped recompute leaves its planned writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WritesTo {
    /// [`Planned::writes`], each with its field-by-field changes (a dry run prints them).
    Memory,
    /// The store's staged writes ([`Store::stage_writes`]), group by group and without
    /// their changes, so a recompute of the whole org (a first sync plans a write for most
    /// opportunities) does not hold them: [`Planned::writes`] stays empty and the enqueue
    /// reads them back page by page.
    Staging,
}

/// What a recompute covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recompute {
    /// Every plan's rollups and every opportunity's link.
    All,
    /// The rollups of `plans` and of the plans whose links move, the links of the
    /// opportunities of their groups and of `opportunities`.
    Some {
        plans: BTreeSet<String>,
        opportunities: BTreeSet<String>,
    },
}

/// What a recompute evaluated, so the findings of what it left alone can be kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Covered {
    /// Every plan and opportunity (a whole recompute).
    pub all: bool,
    /// Plans whose own findings (an invalid period) were evaluated.
    pub plans: BTreeSet<String>,
    /// Opportunities whose links (and ambiguities) were evaluated.
    pub opportunities: BTreeSet<String>,
    /// Whether hierarchy cycles were looked for over every account.
    pub cycles: bool,
}

/// A junction row: an extra account of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Junction {
    pub id: String,
    pub plan: String,
    pub account: String,
}

/// The mirror's structure: what plan membership needs, without opportunities and activities.
#[derive(Debug, Clone, Default)]
pub struct Structure {
    /// Every live account (Id and ParentId), by Id.
    pub accounts: Vec<Account>,
    /// Every live plan with its junction accounts, by Id.
    pub plans: Vec<Plan>,
    /// Every live junction row with both references set, by Id.
    pub junctions: Vec<Junction>,
}

impl Structure {
    pub fn load(store: &Store, names: &Names) -> Result<Structure, SyncError> {
        let mut junctions = Vec::new();
        store.for_each_live_record(names.object(ObjectKind::PlanAccount), |r| {
            if let Some(j) = junction(names, &r) {
                junctions.push(j);
            }
        })?;
        let extra = extra_accounts(&junctions);
        let mut accounts = Vec::new();
        store.for_each_live_record(names.object(ObjectKind::Account), |r| {
            accounts.push(convert::account(names, &r));
        })?;
        let mut plans = Vec::new();
        store.for_each_live_record(names.object(ObjectKind::Plan), |r| {
            plans.push(convert::plan(
                names,
                &r,
                extra.get(&r.id).cloned().unwrap_or_default(),
            ));
        })?;
        Ok(Structure {
            accounts,
            plans,
            junctions,
        })
    }
}

/// A junction record as a [`Junction`], when both its references are set.
pub fn junction(names: &Names, r: &MirrorRecord) -> Option<Junction> {
    Some(Junction {
        id: r.id.clone(),
        plan: text(&r.fields, &names.plan_account.plan)?,
        account: text(&r.fields, &names.plan_account.account)?,
    })
}

/// Plan Id → the extra accounts its junction rows add, sorted.
pub fn extra_accounts(junctions: &[Junction]) -> BTreeMap<String, Vec<String>> {
    let mut extra: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for j in junctions {
        extra
            .entry(j.plan.clone())
            .or_default()
            .push(j.account.clone());
    }
    for accounts in extra.values_mut() {
        accounts.sort();
    }
    extra
}

/// The components of the plan–account graph, as indexes into the structure.
struct Components<'s> {
    of_plan: HashMap<&'s str, usize>,
    of_account: HashMap<&'s str, usize>,
    /// Component → indexes of its plans in `Structure::plans`.
    plans: Vec<Vec<usize>>,
    /// Component → its member accounts.
    accounts: Vec<Vec<&'s str>>,
}

fn find(parent: &mut [usize], mut x: usize) -> usize {
    while parent[x] != x {
        parent[x] = parent[parent[x]];
        x = parent[x];
    }
    x
}

impl<'s> Components<'s> {
    fn new(structure: &'s Structure) -> Components<'s> {
        let hierarchy = Hierarchy::new(&structure.accounts);
        let n_plans = structure.plans.len();
        let mut parent: Vec<usize> = (0..n_plans).collect();
        let mut account_node: HashMap<&'s str, usize> = HashMap::new();
        for (i, plan) in structure.plans.iter().enumerate() {
            for (account, _) in hierarchy.members(plan) {
                let node = *account_node.entry(account).or_insert_with(|| {
                    parent.push(parent.len());
                    parent.len() - 1
                });
                let (a, b) = (find(&mut parent, i), find(&mut parent, node));
                if a != b {
                    // The smaller root stays, so a component is named by its first plan.
                    let (keep, gone) = (a.min(b), a.max(b));
                    parent[gone] = keep;
                }
            }
        }
        let mut id_of_root: HashMap<usize, usize> = HashMap::new();
        let mut components = Components {
            of_plan: HashMap::new(),
            of_account: HashMap::new(),
            plans: Vec::new(),
            accounts: Vec::new(),
        };
        for (i, plan) in structure.plans.iter().enumerate() {
            let root = find(&mut parent, i);
            let next = id_of_root.len();
            let c = *id_of_root.entry(root).or_insert(next);
            if c == components.plans.len() {
                components.plans.push(Vec::new());
                components.accounts.push(Vec::new());
            }
            components.plans[c].push(i);
            components.of_plan.insert(plan.id.as_str(), c);
        }
        let mut accounts: Vec<(&'s str, usize)> = account_node.into_iter().collect();
        accounts.sort_unstable();
        for (account, node) in accounts {
            let root = find(&mut parent, node);
            if let Some(&c) = id_of_root.get(&root) {
                components.accounts[c].push(account);
                components.of_account.insert(account, c);
            }
        }
        components
    }

    fn len(&self) -> usize {
        self.plans.len()
    }
}

/// Everything one run of the grouped recompute reads.
struct Run<'a> {
    store: &'a Store,
    names: &'a Names,
    rules: &'a Rules,
    rates: &'a Rates,
    today: NaiveDate,
    now: DateTime<Utc>,
    structure: &'a Structure,
    components: Components<'a>,
    group_accounts: usize,
    writes_to: WritesTo,
    accounts_by_id: HashMap<&'a str, &'a Account>,
}

/// What the groups computed so far add up to.
#[derive(Default)]
struct Sum {
    planned: Planned,
    findings: Vec<domain::Finding>,
    covered: Covered,
    /// Plans an evaluated link leaves or joins.
    moved: BTreeSet<String>,
}

/// The grouped recompute: the same writes, rollups, states and findings as
/// [`super::plan_writes`] over the whole mirror, read and computed group by group. `structure`
/// is the mirror's (read by the caller, which needs it for the scope too). `writes_to` says
/// where the writes go: staged writes carry no field-by-field [`super::Change`] list (only a
/// dry run prints it).
#[allow(clippy::too_many_arguments)]
pub fn plan_writes_by_group(
    store: &Store,
    names: &Names,
    rules: &Rules,
    rates: &Rates,
    (today, now): (NaiveDate, DateTime<Utc>),
    structure: &Structure,
    recompute: &Recompute,
    writes_to: WritesTo,
) -> Result<(Planned, Covered), SyncError> {
    plan_writes_sized(
        store,
        names,
        rules,
        rates,
        (today, now),
        structure,
        recompute,
        (GROUP_ACCOUNTS, writes_to),
    )
}

/// [`plan_writes_by_group`] with groups filled up to `group_accounts` accounts.
#[allow(clippy::too_many_arguments)]
fn plan_writes_sized(
    store: &Store,
    names: &Names,
    rules: &Rules,
    rates: &Rates,
    (today, now): (NaiveDate, DateTime<Utc>),
    structure: &Structure,
    recompute: &Recompute,
    (group_accounts, writes_to): (usize, WritesTo),
) -> Result<(Planned, Covered), SyncError> {
    index_references(store, names)?;
    let run = Run {
        store,
        names,
        rules,
        rates,
        today,
        now,
        structure,
        components: Components::new(structure),
        group_accounts,
        writes_to,
        accounts_by_id: structure
            .accounts
            .iter()
            .map(|a| (a.id.as_str(), a))
            .collect(),
    };
    let mut sum = match recompute {
        Recompute::All => {
            let mut sum = run.start()?;
            run.all(&mut sum)?;
            sum
        }
        Recompute::Some {
            plans,
            opportunities,
        } => run.some(plans, opportunities)?,
    };
    // Hierarchy cycles, once over every account (the rules report them whatever the plans).
    let accounts_only = OrgData {
        accounts: structure.accounts.clone(),
        ..OrgData::default()
    };
    let cycles = domain::compute(&accounts_only, rules, today, Some(&BTreeSet::new())).findings;
    sum.findings
        .retain(|f| f.kind != FindingKind::HierarchyCycle);
    sum.findings.extend(cycles);
    sum.covered.cycles = true;
    sum.findings.sort();
    sum.findings.dedup();
    let mut planned = sum.planned;
    planned.findings = finding_rows(&sum.findings);
    planned
        .writes
        .sort_by(|a, b| (&a.object, &a.record_id).cmp(&(&b.object, &b.record_id)));
    planned
        .writes
        .dedup_by(|a, b| a.object == b.object && a.record_id == b.record_id);
    planned.links_changed = match writes_to {
        WritesTo::Memory => planned
            .writes
            .iter()
            .filter(|w| w.object == names.opportunity.object)
            .count() as u64,
        WritesTo::Staging => store.staged_write_count(&names.opportunity.object)?,
    };
    planned.plans_recomputed = planned.rollups.len() as u64;
    Ok((planned, sum.covered))
}

/// Whether a recompute has nothing to do (an unchanged incremental cycle): then it reads
/// nothing, not even the structure.
pub fn nothing_to_recompute(recompute: &Recompute) -> bool {
    matches!(recompute, Recompute::Some { plans, opportunities }
        if plans.is_empty() && opportunities.is_empty())
}

/// The indexes the groups are read by (created once; later runs find them).
fn index_references(store: &Store, names: &Names) -> Result<(), StoreError> {
    let o = &names.opportunity;
    let (c, t, e) = (&names.contact, &names.task, &names.event);
    for (object, field) in [
        (&o.object, &o.account_id),
        (&o.object, &o.plan_link),
        (&c.object, &c.account_id),
        (&t.object, &t.account_id),
        (&t.object, &t.what_id),
        (&t.object, &t.who_id),
        (&e.object, &e.account_id),
        (&e.object, &e.what_id),
        (&e.object, &e.who_id),
    ] {
        store.index_reference(object, field)?;
    }
    Ok(())
}

impl Run<'_> {
    /// An empty sum, with no write staged.
    fn start(&self) -> Result<Sum, SyncError> {
        if self.writes_to == WritesTo::Staging {
            self.store.clear_staged_writes()?;
        }
        Ok(Sum::default())
    }

    /// Computes the components `scheduled` in groups of about [`GROUP_ACCOUNTS`] accounts
    /// (whole components), then the opportunities `lone` on their own.
    fn in_groups(
        &self,
        scheduled: &BTreeSet<usize>,
        only_plans: Option<&BTreeSet<String>>,
        lone: &BTreeSet<String>,
        sum: &mut Sum,
    ) -> Result<(), SyncError> {
        let mut group = BTreeSet::new();
        let mut size = 0;
        for &c in scheduled {
            group.insert(c);
            size += self.components.accounts[c].len();
            if size >= self.group_accounts {
                self.group(&mut group, scheduled, only_plans, &BTreeSet::new(), sum)?;
                group.clear();
                size = 0;
            }
        }
        if !group.is_empty() {
            self.group(&mut group, scheduled, only_plans, &BTreeSet::new(), sum)?;
        }
        for chunk in lone.iter().cloned().collect::<Vec<_>>().chunks(1000) {
            let ids: BTreeSet<String> = chunk.iter().cloned().collect();
            self.group(&mut BTreeSet::new(), scheduled, only_plans, &ids, sum)?;
        }
        Ok(())
    }

    /// Every component, then the opportunities linked to a plan that is gone whose account is
    /// in no plan (no group loads them, and their link is to be emptied).
    fn all(&self, sum: &mut Sum) -> Result<(), SyncError> {
        sum.covered.all = true;
        let o = &self.names.opportunity;
        let mut strays = BTreeSet::new();
        self.store.for_each_live_with_dangling_reference(
            &o.object,
            &o.plan_link,
            &self.names.plan.object,
            |r| {
                let account = text(&r.fields, &o.account_id);
                if account.is_none_or(|a| !self.components.of_account.contains_key(a.as_str())) {
                    strays.insert(r.id);
                }
                Ok(())
            },
        )?;
        let every: BTreeSet<usize> = (0..self.components.len()).collect();
        self.in_groups(&every, None, &strays, sum)
    }

    /// The components of `plans` and of the accounts of `opportunities`, their rollups
    /// limited to `plans`; then again with the plans whose links moved, until none moves
    /// outside the plans already recomputed.
    fn some(
        &self,
        plans: &BTreeSet<String>,
        opportunities: &BTreeSet<String>,
    ) -> Result<Sum, SyncError> {
        if plans.is_empty() && opportunities.is_empty() {
            return self.start();
        }
        // The opportunities' accounts, from the mirror (an Id it does not hold is skipped).
        let o = &self.names.opportunity;
        let ids: Vec<String> = opportunities.iter().cloned().collect();
        let records = self.store.records_by_id(&o.object, &ids)?;
        let mut lone = BTreeSet::new();
        let mut components = BTreeSet::new();
        for r in records.values().filter(|r| !r.is_deleted) {
            let account = text(&r.fields, &o.account_id);
            match account.and_then(|a| self.components.of_account.get(a.as_str()).copied()) {
                Some(c) => {
                    components.insert(c);
                }
                None => {
                    lone.insert(r.id.clone());
                }
            }
        }
        let mut scope = plans.clone();
        loop {
            for plan in &scope {
                if let Some(&c) = self.components.of_plan.get(plan.as_str()) {
                    components.insert(c);
                }
            }
            let mut sum = self.start()?;
            sum.covered.plans.extend(plans.iter().cloned());
            sum.covered
                .opportunities
                .extend(opportunities.iter().cloned());
            // A component an evaluated link needs that is not scheduled joins its group.
            self.in_groups(&components, Some(&scope), &lone, &mut sum)?;
            let more: BTreeSet<String> = sum.moved.difference(&scope).cloned().collect();
            if more.is_empty() {
                return Ok(sum);
            }
            scope.extend(more);
        }
    }

    /// Loads, computes and diffs one group: the components `group` (extended with those its
    /// opportunities need unless `computed` holds them), the opportunities `lone` besides.
    fn group(
        &self,
        group: &mut BTreeSet<usize>,
        computed: &BTreeSet<usize>,
        only_plans: Option<&BTreeSet<String>>,
        lone: &BTreeSet<String>,
        sum: &mut Sum,
    ) -> Result<(), SyncError> {
        let names = self.names;
        let o = &names.opportunity;
        let (opportunities, opp_names, accounts, plan_ids) = loop {
            let accounts: BTreeSet<String> = group
                .iter()
                .flat_map(|&c| self.components.accounts[c].iter().map(|a| a.to_string()))
                .collect();
            let plan_ids: BTreeSet<String> = group
                .iter()
                .flat_map(|&c| self.components.plans[c].iter())
                .map(|&i| self.structure.plans[i].id.clone())
                .collect();
            let mut records: BTreeMap<String, MirrorRecord> = BTreeMap::new();
            let mut keep = |r: MirrorRecord| -> Result<(), StoreError> {
                records.insert(r.id.clone(), r);
                Ok(())
            };
            self.store.for_each_live_by_reference(
                &o.object,
                &o.account_id,
                &accounts,
                &mut keep,
            )?;
            self.store
                .for_each_live_by_reference(&o.object, &o.plan_link, &plan_ids, &mut keep)?;
            if !lone.is_empty() {
                let ids: Vec<String> = lone.iter().cloned().collect();
                for (_, r) in self.store.records_by_id(&o.object, &ids)? {
                    if !r.is_deleted {
                        keep(r)?;
                    }
                }
            }
            let mut joining = BTreeSet::new();
            let mut opportunities = Vec::with_capacity(records.len());
            let mut opp_names = HashMap::new();
            for (_, r) in records {
                let opp = convert::opportunity(names, &r);
                let other = opp
                    .account_id
                    .as_deref()
                    .and_then(|a| self.components.of_account.get(a))
                    .filter(|c| !group.contains(*c));
                if let (Some(&c), false) = (other, opp.link_locked) {
                    if computed.contains(&c) {
                        // Evaluated by its own account's group.
                        continue;
                    }
                    joining.insert(c);
                }
                opp_names.insert(r.id.clone(), text(&r.fields, &o.name));
                opportunities.push(opp);
            }
            if joining.is_empty() {
                break (opportunities, opp_names, accounts, plan_ids);
            }
            group.extend(joining);
        };

        let contacts = self.load(
            ObjectKind::Contact,
            &names.contact.account_id,
            &accounts,
            |r| convert::contact(names, r),
        )?;
        let opp_ids: BTreeSet<String> = opportunities.iter().map(|o| o.id.clone()).collect();
        let contact_ids: BTreeSet<String> = contacts.iter().map(|c| c.id.clone()).collect();
        let t = &names.task;
        let tasks: Vec<Task> = self.activities(
            ObjectKind::Task,
            [
                (&t.account_id, &accounts),
                (&t.what_id, &opp_ids),
                (&t.who_id, &contact_ids),
            ],
            |r| convert::task(names, r),
        )?;
        let e = &names.event;
        let events: Vec<Event> = self.activities(
            ObjectKind::Event,
            [
                (&e.account_id, &accounts),
                (&e.what_id, &opp_ids),
                (&e.who_id, &contact_ids),
            ],
            |r| convert::event(names, r),
        )?;
        let mut plans: Vec<Plan> = group
            .iter()
            .flat_map(|&c| self.components.plans[c].iter())
            .map(|&i| self.structure.plans[i].clone())
            .collect();
        plans.sort_by(|a, b| a.id.cmp(&b.id));
        let org = OrgData {
            accounts: accounts
                .iter()
                .filter_map(|a| self.accounts_by_id.get(a.as_str()).map(|a| (*a).clone()))
                .collect(),
            plans,
            opportunities,
            contacts,
            tasks,
            events,
            rates: self.rates.clone(),
        };
        let outcome = domain::compute(&org, self.rules, self.today, only_plans);

        let plan_list: Vec<String> = outcome
            .rollups
            .keys()
            .chain(outcome.frozen.keys())
            .cloned()
            .collect();
        let plan_records = self.store.records_by_id(&names.plan.object, &plan_list)?;
        let (writes, _) = diff_outcome(
            &outcome,
            &org.opportunities,
            &plan_records,
            &opp_names,
            names,
            self.now,
        );
        let current: BTreeMap<String, Option<String>> = org
            .opportunities
            .iter()
            .map(|o| (o.id.clone(), o.plan_id.clone()))
            .collect();
        sum.moved
            .extend(domain::plans_touched_by(&current, &outcome.links));
        if !sum.covered.all {
            sum.covered.plans.extend(plan_ids);
            sum.covered.opportunities.extend(current.into_keys());
        }
        match self.writes_to {
            WritesTo::Memory => sum.planned.writes.extend(writes),
            WritesTo::Staging => {
                let staged: Vec<NewWrite> = writes.into_iter().map(NewWrite::from).collect();
                self.store.stage_writes(&staged)?;
            }
        }
        sum.planned.rollups.extend(outcome.rollups);
        sum.planned.states.extend(outcome.states);
        sum.findings.extend(outcome.findings);
        Ok(())
    }

    /// The live records of `kind` whose `field` is one of `values`, converted, by Id.
    fn load<T>(
        &self,
        kind: ObjectKind,
        field: &str,
        values: &BTreeSet<String>,
        convert: impl Fn(&MirrorRecord) -> T,
    ) -> Result<Vec<T>, SyncError> {
        let mut out = BTreeMap::new();
        self.store
            .for_each_live_by_reference(self.names.object(kind), field, values, |r| {
                out.insert(r.id.clone(), convert(&r));
                Ok(())
            })?;
        Ok(out.into_values().collect())
    }

    /// The live tasks or events whose references match, each once, by Id.
    fn activities<T>(
        &self,
        kind: ObjectKind,
        by: [(&String, &BTreeSet<String>); 3],
        convert: impl Fn(&MirrorRecord) -> T,
    ) -> Result<Vec<T>, SyncError> {
        let mut out = BTreeMap::new();
        for (field, values) in by {
            self.store
                .for_each_live_by_reference(self.names.object(kind), field, values, |r| {
                    if !out.contains_key(&r.id) {
                        out.insert(r.id.clone(), convert(&r));
                    }
                    Ok(())
                })?;
        }
        Ok(out.into_values().collect())
    }
}

#[cfg(test)]
#[path = "groups_tests.rs"]
mod tests;
