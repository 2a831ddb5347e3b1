//! Small constructors shared by the domain's tests.

use chrono::NaiveDate;
use rust_decimal::Decimal;

use super::currency::{CurrencyType, DatedConversionRate};
use super::model::{Event, Opportunity, Plan};

/// A decimal from its literal text.
pub fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

/// A date from `YYYY-MM-DD`.
pub fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

/// An Active plan of `account` over `[start, end]`, no target.
pub fn plan(id: &str, account: &str, start: &str, end: &str) -> Plan {
    Plan {
        id: id.to_string(),
        name: id.to_string(),
        account_id: Some(account.to_string()),
        extra_account_ids: vec![],
        period_start: Some(d(start)),
        period_end: Some(d(end)),
        revenue_target: None,
        close_ratio_percent: None,
        include_child_accounts: false,
        status: Some("Active".to_string()),
        currency: None,
        discriminator: None,
    }
}

/// An open, unlinked, unlocked opportunity of `account` closing on `close`.
pub fn opp(id: &str, account: &str, close: &str) -> Opportunity {
    Opportunity {
        id: id.to_string(),
        account_id: Some(account.to_string()),
        amount: None,
        close_date: Some(d(close)),
        is_closed: false,
        is_won: false,
        probability: None,
        forecast_category: Some("Pipeline".to_string()),
        currency: None,
        plan_id: None,
        link_locked: false,
        discriminator: None,
    }
}

/// A currency of the org: its code, its rate against the corporate currency, and whether it
/// is the corporate one.
pub fn currency_type(iso_code: &str, rate: &str, is_corporate: bool) -> CurrencyType {
    CurrencyType {
        iso_code: iso_code.to_string(),
        conversion_rate: dec(rate),
        is_corporate,
    }
}

/// A dated rate of `iso_code` from `start` until `next` (open-ended when `None`).
pub fn dated_rate(
    iso_code: &str,
    start: &str,
    next: Option<&str>,
    rate: &str,
) -> DatedConversionRate {
    DatedConversionRate {
        iso_code: iso_code.to_string(),
        start_date: d(start),
        next_start_date: next.map(d),
        conversion_rate: dec(rate),
    }
}

/// An all-day event with contact `who` on `day` (undated when `None`), of no account or record.
pub fn event(id: &str, who: &str, day: Option<&str>) -> Event {
    Event {
        id: id.to_string(),
        account_id: None,
        what_id: None,
        who_id: Some(who.to_string()),
        activity_date: day.map(d),
        start: None,
        is_all_day: true,
    }
}
