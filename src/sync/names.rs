//! The CRM API names the cycle reads and writes, per object (design.md §2), resolved once from
//! the `[mapping]` configuration so the rest of the cycle never spells an API name itself.

use std::collections::{BTreeMap, BTreeSet};

use crate::config::{
    AccountMapping, ContactMapping, EventMapping, Mapping, OpportunityMapping, PlanAccountMapping,
    PlanMapping, SnapshotMapping, TaskMapping,
};
use crate::domain::RollupField;

/// The objects the cycle pulls, in pull order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ObjectKind {
    Account,
    Plan,
    PlanAccount,
    Opportunity,
    Contact,
    Task,
    Event,
}

impl ObjectKind {
    pub const ALL: [ObjectKind; 7] = [
        ObjectKind::Account,
        ObjectKind::Plan,
        ObjectKind::PlanAccount,
        ObjectKind::Opportunity,
        ObjectKind::Contact,
        ObjectKind::Task,
        ObjectKind::Event,
    ];

    /// The kind named by its label (`opportunity`) or by the default API name of its object
    /// (`Opportunity`, `Account_Plan__c`), case-insensitively.
    pub fn parse(name: &str) -> Option<ObjectKind> {
        let defaults = Names::default();
        ObjectKind::ALL.into_iter().find(|k| {
            k.label().eq_ignore_ascii_case(name) || defaults.object(*k).eq_ignore_ascii_case(name)
        })
    }

    /// A stable short name for reports and logs.
    pub fn label(self) -> &'static str {
        match self {
            ObjectKind::Account => "account",
            ObjectKind::Plan => "plan",
            ObjectKind::PlanAccount => "plan_account",
            ObjectKind::Opportunity => "opportunity",
            ObjectKind::Contact => "contact",
            ObjectKind::Task => "task",
            ObjectKind::Event => "event",
        }
    }
}

/// Field API names of the account plan object: its `[mapping.plan]` table (through `Deref`)
/// and what the cycle resolves from the configuration.
#[derive(Debug, Clone)]
pub struct PlanNames {
    mapping: PlanMapping,
    /// CurrencyIsoCode, read in multi-currency orgs only.
    pub currency: Option<String>,
    /// `[linking] discriminator_field`, when set.
    pub discriminator: Option<String>,
    /// Output field per rollup, in [`RollupField::all`] order.
    pub rollups: Vec<(RollupField, String)>,
    /// Where the reason a plan's rollups are frozen is written; `None` when the mapping
    /// turns it off (an empty name). It stands for the mapping's `sync_problem`.
    pub sync_problem: Option<String>,
}

/// Field API names of the Opportunity object: its `[mapping.opportunity]` table (through
/// `Deref`) and what the cycle resolves from the configuration.
#[derive(Debug, Clone)]
pub struct OpportunityNames {
    mapping: OpportunityMapping,
    /// CurrencyIsoCode, read in multi-currency orgs only.
    pub currency: Option<String>,
    /// `[linking] discriminator_field`, when set.
    pub discriminator: Option<String>,
}

/// Field API names of the plan snapshot object: its `[mapping.snapshot]` table (through
/// `Deref`); its metric fields carry the plan's rollup field names.
#[derive(Debug, Clone)]
pub struct SnapshotNames {
    mapping: SnapshotMapping,
    /// CurrencyIsoCode, written in multi-currency orgs only.
    pub currency: Option<String>,
}

/// Reads the names of an object's `[mapping]` table through the names the cycle uses.
macro_rules! names_deref {
    ($($names:ident => $mapping:ident),* $(,)?) => {
        $(impl std::ops::Deref for $names {
            type Target = $mapping;

            fn deref(&self) -> &$mapping {
                &self.mapping
            }
        })*
    };
}

names_deref!(
    PlanNames => PlanMapping,
    OpportunityNames => OpportunityMapping,
    SnapshotNames => SnapshotMapping,
);

/// Field API names of the currency rate objects of a multi-currency org.
#[derive(Debug, Clone)]
pub struct CurrencyNames {
    pub currency_type: String,
    pub dated_rate: String,
    pub iso_code: String,
    pub conversion_rate: String,
    pub is_corporate: String,
    pub start_date: String,
    pub next_start_date: String,
    pub dated_iso_code: String,
    pub dated_conversion_rate: String,
}

/// Every API name the cycle uses.
#[derive(Debug, Clone)]
pub struct Names {
    pub currency: CurrencyNames,
    pub snapshot: SnapshotNames,
    pub account: AccountMapping,
    pub plan: PlanNames,
    pub plan_account: PlanAccountMapping,
    pub opportunity: OpportunityNames,
    pub contact: ContactMapping,
    pub task: TaskMapping,
    pub event: EventMapping,
}

/// The system fields every pulled object carries.
pub const ID: &str = "Id";
pub const SYSTEM_MODSTAMP: &str = "SystemModstamp";
pub const IS_DELETED: &str = "IsDeleted";

impl Names {
    /// The API name of an object.
    pub fn object(&self, kind: ObjectKind) -> &str {
        match kind {
            ObjectKind::Account => &self.account.object,
            ObjectKind::Plan => &self.plan.object,
            ObjectKind::PlanAccount => &self.plan_account.object,
            ObjectKind::Opportunity => &self.opportunity.object,
            ObjectKind::Contact => &self.contact.object,
            ObjectKind::Task => &self.task.object,
            ObjectKind::Event => &self.event.object,
        }
    }

    /// The fields the cycle selects for an object: the system fields first, then the mapped
    /// ones, without duplicates.
    pub fn select_fields(&self, kind: ObjectKind) -> Vec<String> {
        let mut fields: Vec<String> = vec![ID.into(), SYSTEM_MODSTAMP.into(), IS_DELETED.into()];
        let mapped: Vec<&String> = match kind {
            ObjectKind::Account => vec![&self.account.name, &self.account.parent_id],
            ObjectKind::Plan => {
                let p = &self.plan;
                let mut v = vec![
                    &p.name,
                    &p.account,
                    &p.period_start,
                    &p.period_end,
                    &p.revenue_target,
                    &p.close_ratio,
                    &p.include_child_accounts,
                    &p.status,
                ];
                v.extend(p.currency.iter());
                v.extend(p.discriminator.iter());
                v.extend(p.rollups.iter().map(|(_, name)| name));
                v.extend(p.sync_problem.iter());
                v
            }
            ObjectKind::PlanAccount => vec![&self.plan_account.plan, &self.plan_account.account],
            ObjectKind::Opportunity => {
                let o = &self.opportunity;
                let mut v = vec![
                    &o.name,
                    &o.account_id,
                    &o.amount,
                    &o.close_date,
                    &o.stage_name,
                    &o.is_closed,
                    &o.is_won,
                    &o.probability,
                    &o.forecast_category,
                    &o.plan_link,
                    &o.plan_link_locked,
                ];
                v.extend(o.currency.iter());
                v.extend(o.discriminator.iter());
                v
            }
            ObjectKind::Contact => vec![&self.contact.account_id],
            ObjectKind::Task => {
                let t = &self.task;
                vec![
                    &t.account_id,
                    &t.what_id,
                    &t.who_id,
                    &t.activity_date,
                    &t.is_closed,
                ]
            }
            ObjectKind::Event => {
                let e = &self.event;
                vec![
                    &e.account_id,
                    &e.what_id,
                    &e.who_id,
                    &e.activity_date,
                    &e.start_date_time,
                    &e.is_all_day_event,
                ]
            }
        };
        for name in mapped {
            if !fields.iter().any(|f| f.eq_ignore_ascii_case(name)) {
                fields.push(name.clone());
            }
        }
        fields
    }

    /// The fields the write-back sets, by object API name: an opportunity's plan link; a
    /// plan's rollups, their change time and the sync problem. (Snapshots are created, not
    /// updated.)
    pub fn written_fields(&self) -> BTreeMap<String, BTreeSet<String>> {
        let plan = self
            .plan
            .rollups
            .iter()
            .map(|(_, name)| name.clone())
            .chain([self.plan.rollups_changed_at.clone()])
            .chain(self.plan.sync_problem.iter().cloned())
            .collect();
        BTreeMap::from([
            (
                self.opportunity.object.clone(),
                BTreeSet::from([self.opportunity.plan_link.clone()]),
            ),
            (self.plan.object.clone(), plan),
        ])
    }
}

impl Names {
    /// Reads the currency code fields of plans and opportunities (a multi-currency org) or
    /// not (a single-currency org, where they do not exist).
    pub fn set_multi_currency(&mut self, multi_currency: bool) {
        self.plan.currency = multi_currency.then(|| self.plan.currency_iso_code.clone());
        self.opportunity.currency =
            multi_currency.then(|| self.opportunity.currency_iso_code.clone());
    }

    /// Resolves the names from `[mapping]`. Currency fields are read only in multi-currency
    /// modes; the discriminator only when `[linking] discriminator_field` is set (the same
    /// API name on the opportunity and the plan).
    pub fn from_mapping(m: &Mapping, multi_currency: bool, discriminator: Option<&str>) -> Names {
        let rollups = RollupField::all()
            .iter()
            .map(|f| (*f, m.plan.rollup(*f).to_string()))
            .collect();
        Names {
            currency: CurrencyNames {
                currency_type: m.currency_type.object.clone(),
                dated_rate: m.dated_conversion_rate.object.clone(),
                iso_code: m.currency_type.iso_code.clone(),
                conversion_rate: m.currency_type.conversion_rate.clone(),
                is_corporate: m.currency_type.is_corporate.clone(),
                start_date: m.dated_conversion_rate.start_date.clone(),
                next_start_date: m.dated_conversion_rate.next_start_date.clone(),
                dated_iso_code: m.dated_conversion_rate.iso_code.clone(),
                dated_conversion_rate: m.dated_conversion_rate.conversion_rate.clone(),
            },
            snapshot: SnapshotNames {
                mapping: m.snapshot.clone(),
                currency: multi_currency.then(|| m.snapshot.currency_iso_code.clone()),
            },
            account: m.account.clone(),
            plan: PlanNames {
                mapping: m.plan.clone(),
                currency: multi_currency.then(|| m.plan.currency_iso_code.clone()),
                discriminator: discriminator.map(str::to_string),
                rollups,
                sync_problem: Some(m.plan.sync_problem.clone()).filter(|n| !n.is_empty()),
            },
            plan_account: m.plan_account.clone(),
            opportunity: OpportunityNames {
                mapping: m.opportunity.clone(),
                currency: multi_currency.then(|| m.opportunity.currency_iso_code.clone()),
                discriminator: discriminator.map(str::to_string),
            },
            contact: m.contact.clone(),
            task: m.task.clone(),
            event: m.event.clone(),
        }
    }
}

impl Default for Names {
    /// The API names of design.md §2.
    fn default() -> Self {
        Names::from_mapping(&Mapping::default(), false, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_kinds_parse_from_labels_and_api_names() {
        assert_eq!(
            ObjectKind::parse("opportunity"),
            Some(ObjectKind::Opportunity)
        );
        assert_eq!(ObjectKind::parse("Account_Plan__c"), Some(ObjectKind::Plan));
        assert_eq!(
            ObjectKind::parse("plan_account"),
            Some(ObjectKind::PlanAccount)
        );
        assert_eq!(ObjectKind::parse("Lead"), None);
    }

    #[test]
    fn names_follow_the_mapping_and_the_currency_mode() {
        let mut m = Mapping::default();
        m.plan.won_count = "Wins__c".into();
        m.plan.sync_problem = String::new();
        m.opportunity.plan_link_locked = "Locked__c".into();
        m.event.is_all_day_event = "All_Day__c".into();
        let mut names = Names::from_mapping(&m, true, Some("Region__c"));
        assert_eq!(names.plan.rollups.len(), RollupField::COUNT);
        assert_eq!(
            names.plan.rollups[1],
            (RollupField::WonCount, "Wins__c".to_string())
        );
        assert_eq!(names.plan.sync_problem, None);
        let has =
            |names: &Names, kind, field: &str| names.select_fields(kind).iter().any(|f| f == field);
        assert!(has(&names, ObjectKind::Plan, "Wins__c"));
        assert!(!has(&names, ObjectKind::Plan, "Won_Count__c"));
        assert!(!has(&names, ObjectKind::Plan, "Sync_Problem__c"));
        assert!(has(&names, ObjectKind::Plan, "Region__c"));
        assert!(has(&names, ObjectKind::Plan, "CurrencyIsoCode"));
        assert!(has(&names, ObjectKind::Opportunity, "Locked__c"));
        assert!(has(&names, ObjectKind::Event, "All_Day__c"));
        assert_eq!(names.snapshot.currency.as_deref(), Some("CurrencyIsoCode"));

        names.set_multi_currency(false);
        assert_eq!(names.plan.currency, None);
        assert!(!has(&names, ObjectKind::Plan, "CurrencyIsoCode"));
        assert!(!has(&names, ObjectKind::Opportunity, "CurrencyIsoCode"));
        names.set_multi_currency(true);
        assert!(has(&names, ObjectKind::Opportunity, "CurrencyIsoCode"));
    }
}
