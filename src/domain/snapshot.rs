//! What a plan snapshot records besides the metrics (design.md §3.7): the plan's own state on
//! the snapshot date, so a snapshot reads on its own months later (the target it was measured
//! against, the close ratio the rollups used and where it came from, the status, and the
//! currency its amounts are in). Pure: built from the plan and the close ratio `compute` chose.

use rust_decimal::Decimal;

use super::model::Plan;
use super::rollups::{round_to, CloseRatioSource};

/// Characters Account_Plan_Snapshot__c.Plan_Status__c holds (Text 40).
pub const STATUS_LENGTH: usize = 40;

/// A plan's state as a snapshot records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanState {
    /// Revenue_Target__c, rounded to the field's scale (2); `None` when the plan has none.
    pub revenue_target: Option<Decimal>,
    /// The close ratio the rollups used, as a percent rounded to 2 places (25.00 for 0.25).
    pub close_ratio_used_percent: Decimal,
    /// Which rule gave it: the plan's Close_Ratio__c, the win rate, or the default.
    pub close_ratio_source: CloseRatioSource,
    /// Status__c, cut to [`STATUS_LENGTH`] characters (a picklist value may be longer than
    /// the snapshot's text field).
    pub status: Option<String>,
    /// CurrencyIsoCode: the currency of the plan's amounts; `None` means the corporate one.
    pub currency: Option<String>,
}

/// The state of `plan` whose rollups used `close_ratio` (a fraction, 0.25 for 25 %).
pub fn plan_state(plan: &Plan, close_ratio: Decimal, source: CloseRatioSource) -> PlanState {
    PlanState {
        revenue_target: plan.revenue_target.map(|t| round_to(t, 2)),
        close_ratio_used_percent: round_to(close_ratio * Decimal::ONE_HUNDRED, 2),
        close_ratio_source: source,
        status: plan
            .status
            .as_ref()
            .map(|s| s.chars().take(STATUS_LENGTH).collect()),
        currency: plan.currency.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::compute::compute;
    use crate::domain::model::{Account, OrgData, Rules};
    use crate::domain::testutil::{d, dec, opp, plan};

    /// Plans on three accounts, each getting its close ratio from a different rule: PLAN has
    /// Close_Ratio__c 40 (its account's win rate, 1 of 5, is not used); WIN has Close_Ratio__c
    /// 0 and 3 won of 5 closed in the last 365 days (60 %); DEFAULT's account has 4 closed,
    /// fewer than 5, so [rollups] default_close_ratio (30) applies.
    #[test]
    fn the_close_ratio_used_comes_from_the_plan_the_win_rate_or_the_default() {
        let mut by_plan = plan("PLAN", "A1", "2026-01-01", "2026-12-31");
        by_plan.close_ratio_percent = Some(dec("40"));
        // A plan whose Close_Ratio__c is 0 falls through to the win rate.
        let mut by_win_rate = plan("WIN", "A2", "2026-01-01", "2026-12-31");
        by_win_rate.close_ratio_percent = Some(dec("0"));
        let by_default = plan("DEFAULT", "A3", "2026-01-01", "2026-12-31");
        let mut opportunities = Vec::new();
        for (account, closed, won) in [("A1", 5, 1), ("A2", 5, 3), ("A3", 4, 2)] {
            for i in 0..closed {
                let mut o = opp(&format!("{account}-{i}"), account, "2026-03-01");
                o.is_closed = true;
                o.is_won = i < won;
                opportunities.push(o);
            }
        }
        let org = OrgData {
            accounts: ["A1", "A2", "A3"]
                .map(|id| Account {
                    id: id.into(),
                    parent_id: None,
                })
                .to_vec(),
            plans: vec![by_plan, by_win_rate, by_default],
            opportunities,
            ..OrgData::default()
        };
        let rules = Rules {
            default_close_ratio_percent: dec("30"),
            ..Rules::default()
        };
        let out = compute(&org, &rules, d("2026-08-15"), None);
        let used = |id: &str| {
            let s = &out.states[id];
            (s.close_ratio_used_percent, s.close_ratio_source)
        };
        assert_eq!(used("PLAN"), (dec("40.00"), CloseRatioSource::Plan));
        assert_eq!(used("WIN"), (dec("60.00"), CloseRatioSource::WinRate));
        assert_eq!(used("DEFAULT"), (dec("30.00"), CloseRatioSource::Default));
        // States exist for exactly the plans that got rollups.
        assert_eq!(
            out.states.keys().collect::<Vec<_>>(),
            out.rollups.keys().collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_win_rate_is_kept_to_two_places_of_a_percent() {
        // 1 won of 3 closed: 33.333…% rounds to 33.33; 2 of 3 to 66.67 (half away from zero).
        let p = plan("P", "A", "2026-01-01", "2026-12-31");
        let third = dec("1") / dec("3");
        let s = plan_state(&p, third, CloseRatioSource::WinRate);
        assert_eq!(s.close_ratio_used_percent, dec("33.33"));
        let s = plan_state(&p, third * dec("2"), CloseRatioSource::WinRate);
        assert_eq!(s.close_ratio_used_percent, dec("66.67"));
    }

    #[test]
    fn the_state_carries_the_target_status_and_currency() {
        let mut p = plan("P", "A", "2026-01-01", "2026-12-31");
        p.revenue_target = Some(dec("125000.005"));
        p.currency = Some("EUR".into());
        p.status = Some("Active".into());
        let s = plan_state(&p, dec("0.25"), CloseRatioSource::Default);
        assert_eq!(s.revenue_target, Some(dec("125000.01")));
        assert_eq!(s.close_ratio_used_percent, dec("25.00"));
        assert_eq!(s.status.as_deref(), Some("Active"));
        assert_eq!(s.currency.as_deref(), Some("EUR"));

        // No target stays no target; a status longer than the text field is cut to fit.
        p.revenue_target = None;
        p.status = Some("Ä".repeat(50));
        let s = plan_state(&p, dec("0.25"), CloseRatioSource::Default);
        assert_eq!(s.revenue_target, None);
        assert_eq!(s.status.map(|x| x.chars().count()), Some(STATUS_LENGTH));
    }
}
