//! The inputs of the domain rules: CRM records already converted by the caller into plain
//! structs, the settings the rules read, and the org data they run over.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;

use super::currency::Rates;

/// An Account: only what plan membership needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: String,
    pub parent_id: Option<String>,
}

/// An Account_Plan__c with its Account_Plan_Account__c rows folded into `extra_account_ids`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub id: String,
    pub name: String,
    /// Account__c: the plan's direct account.
    pub account_id: Option<String>,
    /// Account__c of the plan's Account_Plan_Account__c rows (junction accounts).
    pub extra_account_ids: Vec<String>,
    pub period_start: Option<NaiveDate>,
    pub period_end: Option<NaiveDate>,
    pub revenue_target: Option<Decimal>,
    /// Close_Ratio__c, a percent (20 means 20 %).
    pub close_ratio_percent: Option<Decimal>,
    pub include_child_accounts: bool,
    pub status: Option<String>,
    /// CurrencyIsoCode; `None` means the corporate currency.
    pub currency: Option<String>,
    /// The value of the optional discriminator picklist (`[linking] discriminator_field`).
    pub discriminator: Option<String>,
}

impl Plan {
    /// The plan's period when it is valid: both bounds set and the end not before the start.
    pub fn valid_period(&self) -> Option<(NaiveDate, NaiveDate)> {
        match (self.period_start, self.period_end) {
            (Some(start), Some(end)) if end >= start => Some((start, end)),
            _ => None,
        }
    }
}

/// An Opportunity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opportunity {
    pub id: String,
    pub account_id: Option<String>,
    pub amount: Option<Decimal>,
    pub close_date: Option<NaiveDate>,
    pub is_closed: bool,
    pub is_won: bool,
    /// Probability, a percent.
    pub probability: Option<Decimal>,
    pub forecast_category: Option<String>,
    /// CurrencyIsoCode; `None` means the corporate currency.
    pub currency: Option<String>,
    /// Account_Plan__c as last read from the CRM: the current link.
    pub plan_id: Option<String>,
    /// Plan_Link_Locked__c: when true the current link is kept as is.
    pub link_locked: bool,
    pub discriminator: Option<String>,
}

/// A Contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    pub id: String,
    pub account_id: Option<String>,
}

/// A Task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    pub id: String,
    pub account_id: Option<String>,
    pub what_id: Option<String>,
    pub who_id: Option<String>,
    pub activity_date: Option<NaiveDate>,
    pub is_closed: bool,
}

/// An Event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub id: String,
    pub account_id: Option<String>,
    pub what_id: Option<String>,
    pub who_id: Option<String>,
    pub activity_date: Option<NaiveDate>,
    /// StartDateTime.
    pub start: Option<DateTime<Utc>>,
    /// IsAllDayEvent.
    pub is_all_day: bool,
}

/// The settings the rules read (`[linking]`, `[rollups]`, `[org]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    /// Statuses whose plans can be linked to (default `Active`, `Closed`).
    pub linkable_statuses: Vec<String>,
    /// Statuses whose plans get rollups (default `Active`).
    pub rollup_statuses: Vec<String>,
    /// The close ratio used when neither the plan's nor the win rate applies, a percent.
    pub default_close_ratio_percent: Decimal,
    /// N of the engaged-contact window [today − N days, today].
    pub engaged_contact_days: i64,
    /// The org's time zone: the zone of `today` and of timed events' dates.
    pub timezone: chrono_tz::Tz,
    /// Whether the discriminator of an opportunity must equal its plan's.
    pub use_discriminator: bool,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            linkable_statuses: vec!["Active".to_string(), "Closed".to_string()],
            rollup_statuses: vec!["Active".to_string()],
            default_close_ratio_percent: Decimal::from(25),
            engaged_contact_days: 90,
            timezone: chrono_tz::UTC,
            use_discriminator: false,
        }
    }
}

impl Rules {
    pub(crate) fn is_linkable(&self, plan: &Plan) -> bool {
        has_status(&self.linkable_statuses, plan)
    }

    pub(crate) fn is_rolled_up(&self, plan: &Plan) -> bool {
        has_status(&self.rollup_statuses, plan)
    }
}

fn has_status(statuses: &[String], plan: &Plan) -> bool {
    plan.status
        .as_deref()
        .is_some_and(|s| statuses.iter().any(|x| x == s))
}

/// Everything the rules run over, for one org.
#[derive(Debug, Clone, Default)]
pub struct OrgData {
    pub accounts: Vec<Account>,
    pub plans: Vec<Plan>,
    pub opportunities: Vec<Opportunity>,
    pub contacts: Vec<Contact>,
    pub tasks: Vec<Task>,
    pub events: Vec<Event>,
    pub rates: Rates,
}

/// The current date in the org's time zone: the `today` the rules take.
pub fn today_in(timezone: chrono_tz::Tz, now: DateTime<Utc>) -> NaiveDate {
    now.with_timezone(&timezone).date_naive()
}
