//! The CRM API names the cycle reads and writes, per object (design.md §2), resolved once from
//! the `[mapping]` configuration so the rest of the cycle never spells an API name itself.

use crate::config::Mapping;
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

/// Field API names of the Account object.
#[derive(Debug, Clone)]
pub struct AccountNames {
    pub object: String,
    pub name: String,
    pub parent_id: String,
}

/// Field API names of the account plan object, including the rollup outputs.
#[derive(Debug, Clone)]
pub struct PlanNames {
    pub object: String,
    pub name: String,
    pub account: String,
    pub period_start: String,
    pub period_end: String,
    pub revenue_target: String,
    pub close_ratio: String,
    pub include_child_accounts: String,
    pub status: String,
    pub currency: Option<String>,
    pub discriminator: Option<String>,
    /// Output field per rollup.
    pub rollups: Vec<(RollupField, String)>,
    pub rollups_changed_at: String,
    /// Where the reason a plan's rollups are frozen is written; `None` when the mapping
    /// turns it off (an empty name).
    pub sync_problem: Option<String>,
}

/// Field API names of the plan-to-account junction object.
#[derive(Debug, Clone)]
pub struct PlanAccountNames {
    pub object: String,
    pub plan: String,
    pub account: String,
}

/// Field API names of the Opportunity object.
#[derive(Debug, Clone)]
pub struct OpportunityNames {
    pub object: String,
    pub name: String,
    pub account_id: String,
    pub amount: String,
    pub close_date: String,
    pub stage_name: String,
    pub is_closed: String,
    pub is_won: String,
    pub probability: String,
    pub forecast_category: String,
    pub currency: Option<String>,
    pub plan_link: String,
    pub link_locked: String,
    pub discriminator: Option<String>,
}

/// Field API names of the Contact object.
#[derive(Debug, Clone)]
pub struct ContactNames {
    pub object: String,
    pub account_id: String,
}

/// Field API names of the Task object.
#[derive(Debug, Clone)]
pub struct TaskNames {
    pub object: String,
    pub account_id: String,
    pub what_id: String,
    pub who_id: String,
    pub activity_date: String,
    pub is_closed: String,
}

/// Field API names of the Event object.
#[derive(Debug, Clone)]
pub struct EventNames {
    pub object: String,
    pub account_id: String,
    pub what_id: String,
    pub who_id: String,
    pub activity_date: String,
    pub start: String,
    pub is_all_day: String,
}

/// Field API names of the plan snapshot object; its metric fields carry the plan's rollup
/// field names.
#[derive(Debug, Clone)]
pub struct SnapshotNames {
    pub object: String,
    pub plan: String,
    pub snapshot_date: String,
    pub snapshot_key: String,
    pub revenue_target: String,
    pub close_ratio_used: String,
    pub plan_status: String,
    /// CurrencyIsoCode, in multi-currency orgs only.
    pub currency: Option<String>,
}

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
    /// The plan's and the opportunity's currency code fields, read only while the org is
    /// multi-currency (see [`Names::set_multi_currency`]).
    pub plan_iso_code: String,
    pub opportunity_iso_code: String,
}

/// Every API name the cycle uses.
#[derive(Debug, Clone)]
pub struct Names {
    pub currency: CurrencyNames,
    pub snapshot: SnapshotNames,
    pub account: AccountNames,
    pub plan: PlanNames,
    pub plan_account: PlanAccountNames,
    pub opportunity: OpportunityNames,
    pub contact: ContactNames,
    pub task: TaskNames,
    pub event: EventNames,
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
                    &o.link_locked,
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
                    &e.start,
                    &e.is_all_day,
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
}

impl Names {
    /// Reads the currency code fields of plans and opportunities (a multi-currency org) or
    /// not (a single-currency org, where they do not exist).
    pub fn set_multi_currency(&mut self, multi_currency: bool) {
        self.plan.currency = multi_currency.then(|| self.currency.plan_iso_code.clone());
        self.opportunity.currency =
            multi_currency.then(|| self.currency.opportunity_iso_code.clone());
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
                plan_iso_code: m.plan.currency_iso_code.clone(),
                opportunity_iso_code: m.opportunity.currency_iso_code.clone(),
            },
            snapshot: SnapshotNames {
                object: m.snapshot.object.clone(),
                plan: m.snapshot.plan.clone(),
                snapshot_date: m.snapshot.snapshot_date.clone(),
                snapshot_key: m.snapshot.snapshot_key.clone(),
                revenue_target: m.snapshot.revenue_target.clone(),
                close_ratio_used: m.snapshot.close_ratio_used.clone(),
                plan_status: m.snapshot.plan_status.clone(),
                currency: multi_currency.then(|| m.snapshot.currency_iso_code.clone()),
            },
            account: AccountNames {
                object: m.account.object.clone(),
                name: m.account.name.clone(),
                parent_id: m.account.parent_id.clone(),
            },
            plan: PlanNames {
                object: m.plan.object.clone(),
                name: m.plan.name.clone(),
                account: m.plan.account.clone(),
                period_start: m.plan.period_start.clone(),
                period_end: m.plan.period_end.clone(),
                revenue_target: m.plan.revenue_target.clone(),
                close_ratio: m.plan.close_ratio.clone(),
                include_child_accounts: m.plan.include_child_accounts.clone(),
                status: m.plan.status.clone(),
                currency: multi_currency.then(|| m.plan.currency_iso_code.clone()),
                discriminator: discriminator.map(str::to_string),
                rollups,
                rollups_changed_at: m.plan.rollups_changed_at.clone(),
                sync_problem: Some(m.plan.sync_problem.clone()).filter(|n| !n.is_empty()),
            },
            plan_account: PlanAccountNames {
                object: m.plan_account.object.clone(),
                plan: m.plan_account.plan.clone(),
                account: m.plan_account.account.clone(),
            },
            opportunity: OpportunityNames {
                object: m.opportunity.object.clone(),
                name: m.opportunity.name.clone(),
                account_id: m.opportunity.account_id.clone(),
                amount: m.opportunity.amount.clone(),
                close_date: m.opportunity.close_date.clone(),
                stage_name: m.opportunity.stage_name.clone(),
                is_closed: m.opportunity.is_closed.clone(),
                is_won: m.opportunity.is_won.clone(),
                probability: m.opportunity.probability.clone(),
                forecast_category: m.opportunity.forecast_category.clone(),
                currency: multi_currency.then(|| m.opportunity.currency_iso_code.clone()),
                plan_link: m.opportunity.plan_link.clone(),
                link_locked: m.opportunity.plan_link_locked.clone(),
                discriminator: discriminator.map(str::to_string),
            },
            contact: ContactNames {
                object: m.contact.object.clone(),
                account_id: m.contact.account_id.clone(),
            },
            task: TaskNames {
                object: m.task.object.clone(),
                account_id: m.task.account_id.clone(),
                what_id: m.task.what_id.clone(),
                who_id: m.task.who_id.clone(),
                activity_date: m.task.activity_date.clone(),
                is_closed: m.task.is_closed.clone(),
            },
            event: EventNames {
                object: m.event.object.clone(),
                account_id: m.event.account_id.clone(),
                what_id: m.event.what_id.clone(),
                who_id: m.event.who_id.clone(),
                activity_date: m.event.activity_date.clone(),
                start: m.event.start_date_time.clone(),
                is_all_day: m.event.is_all_day_event.clone(),
            },
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
}
