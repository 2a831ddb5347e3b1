//! Rollups of a plan (design.md §3.3): sums and counts over its linked opportunities, the
//! close ratio with its fallbacks, and the target-based fields. Intermediate values are never
//! rounded; results are rounded to their field's scale half away from zero.

use chrono::{Duration, NaiveDate};
use rust_decimal::{Decimal, RoundingStrategy};

use super::activities::ActivitySummary;
use super::currency::{CurrencyError, Rates};
use super::model::{Opportunity, Plan, Rules};

/// The output fields of one plan, already rounded to each field's scale.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rollups {
    pub won_amount: Decimal,
    pub won_count: i64,
    pub lost_amount: Decimal,
    pub lost_count: i64,
    pub open_pipeline: Decimal,
    pub open_count: i64,
    pub weighted_pipeline: Decimal,
    pub expected_revenue: Decimal,
    pub new_sales_needed: Option<Decimal>,
    pub pipeline_needed: Option<Decimal>,
    pub pipeline_gap: Option<Decimal>,
    pub coverage_ratio: Option<Decimal>,
    /// A percent: 45.25 means 45.25 %.
    pub attainment: Option<Decimal>,
    /// target − expected revenue: positive means the plan is expected to fall short.
    pub forecast_target_variance: Option<Decimal>,
    pub last_activity_date: Option<NaiveDate>,
    pub next_activity_date: Option<NaiveDate>,
    pub overdue_task_count: i64,
    pub contact_count: i64,
    pub engaged_contact_count: i64,
}

/// Rounds to `scale` places, half away from zero.
pub fn round_to(value: Decimal, scale: u32) -> Decimal {
    value.round_dp_with_strategy(scale, RoundingStrategy::MidpointAwayFromZero)
}

/// The unrounded sums and counts over a plan's linked opportunities, in the plan's currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sums {
    pub won: Decimal,
    pub won_count: i64,
    pub lost: Decimal,
    pub lost_count: i64,
    /// Open, ForecastCategoryName not `Omitted`.
    pub open: Decimal,
    pub open_count: i64,
    /// Open with ForecastCategoryName `Omitted`: in no sum above.
    pub omitted: Decimal,
    pub omitted_count: i64,
    pub weighted: Decimal,
}

/// An opportunity whose amount could not be converted to its plan's currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversionFailure {
    pub opportunity_id: String,
    pub error: CurrencyError,
}

/// Sums a plan's linked opportunities. A null Amount counts as 0 in sums and still counts.
pub fn sum_opportunities<'a>(
    plan: &Plan,
    linked: impl IntoIterator<Item = &'a Opportunity>,
    rates: &Rates,
) -> Result<Sums, ConversionFailure> {
    let mut s = Sums::default();
    for o in linked {
        let amount = rates
            .convert(
                o.amount.unwrap_or(Decimal::ZERO),
                o.currency.as_deref(),
                plan.currency.as_deref(),
                o.close_date,
            )
            .map_err(|error| ConversionFailure {
                opportunity_id: o.id.clone(),
                error,
            })?;
        if o.is_won {
            s.won += amount;
            s.won_count += 1;
        } else if o.is_closed {
            s.lost += amount;
            s.lost_count += 1;
        } else if o.forecast_category.as_deref() == Some("Omitted") {
            s.omitted += amount;
            s.omitted_count += 1;
        } else {
            s.open += amount;
            s.open_count += 1;
            s.weighted += amount * o.probability.unwrap_or(Decimal::ZERO) / Decimal::ONE_HUNDRED;
        }
    }
    Ok(s)
}

/// Where a plan's close ratio came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseRatioSource {
    /// Close_Ratio__c, set and > 0.
    Plan,
    /// The win rate by count over the last 365 days.
    WinRate,
    /// `[rollups] default_close_ratio`.
    Default,
}

/// The close ratio as a fraction (0.25 for 25 %): Close_Ratio__c / 100 when set and > 0; else
/// won / closed by count over `history` (the opportunities of accounts(plan), linked or not)
/// with CloseDate in [today − 365 days, today], when at least 5 are closed and one won; else
/// the default.
pub fn close_ratio<'a>(
    plan: &Plan,
    history: impl IntoIterator<Item = &'a Opportunity>,
    today: NaiveDate,
    rules: &Rules,
) -> (Decimal, CloseRatioSource) {
    if let Some(pct) = plan.close_ratio_percent.filter(|p| *p > Decimal::ZERO) {
        return (pct / Decimal::ONE_HUNDRED, CloseRatioSource::Plan);
    }
    let since = today - Duration::days(365);
    let (mut closed, mut won) = (0i64, 0i64);
    for o in history {
        let in_window = o.close_date.is_some_and(|d| since <= d && d <= today);
        if in_window && o.is_closed {
            closed += 1;
            if o.is_won {
                won += 1;
            }
        }
    }
    if closed >= 5 && won >= 1 {
        (
            Decimal::from(won) / Decimal::from(closed),
            CloseRatioSource::WinRate,
        )
    } else {
        (
            rules.default_close_ratio_percent / Decimal::ONE_HUNDRED,
            CloseRatioSource::Default,
        )
    }
}

/// The rollups from the sums, the close ratio (a fraction), the activity summary and the
/// contact counts. A target of zero makes attainment null (no division by zero), as does a
/// zero close ratio for pipeline_needed and pipeline_gap.
pub fn finish(
    plan: &Plan,
    sums: &Sums,
    close_ratio: Decimal,
    activities: ActivitySummary,
    contact_count: i64,
    engaged_contact_count: i64,
) -> Rollups {
    let money = |v: Decimal| round_to(v, 2);
    let expected = sums.won + sums.weighted;
    let mut r = Rollups {
        won_amount: money(sums.won),
        won_count: sums.won_count,
        lost_amount: money(sums.lost),
        lost_count: sums.lost_count,
        open_pipeline: money(sums.open),
        open_count: sums.open_count,
        weighted_pipeline: money(sums.weighted),
        expected_revenue: money(expected),
        last_activity_date: activities.last_activity_date,
        next_activity_date: activities.next_activity_date,
        overdue_task_count: activities.overdue_task_count,
        contact_count,
        engaged_contact_count,
        ..Rollups::default()
    };
    if let Some(target) = plan.revenue_target {
        let needed = (target - sums.won).max(Decimal::ZERO);
        let pipeline_needed = (!close_ratio.is_zero()).then(|| needed / close_ratio);
        r.new_sales_needed = Some(money(needed));
        r.pipeline_needed = pipeline_needed.map(money);
        r.pipeline_gap = pipeline_needed.map(|p| money((p - sums.open).max(Decimal::ZERO)));
        r.coverage_ratio = (!needed.is_zero()).then(|| money(sums.open / needed));
        r.attainment = (!target.is_zero()).then(|| money(sums.won / target * Decimal::ONE_HUNDRED));
        r.forecast_target_variance = Some(money(target - expected));
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::testutil::{d, dec, opp, plan};

    fn o(amount: Option<&str>, closed: bool, won: bool, prob: &str, category: &str) -> Opportunity {
        let mut o = opp("O", "A", "2026-05-01");
        o.amount = amount.map(dec);
        o.is_closed = closed;
        o.is_won = won;
        o.probability = Some(dec(prob));
        o.forecast_category = Some(category.to_string());
        o
    }

    #[test]
    fn sums_split_won_lost_open_and_omitted_with_null_amounts_counted_as_zero() {
        let p = plan("P", "A", "2026-01-01", "2026-12-31");
        let opps = [
            o(Some("100.10"), true, true, "100", "Closed"),
            o(None, true, true, "100", "Closed"),
            o(Some("40"), true, false, "0", "Omitted"),
            o(Some("200"), false, false, "30", "Pipeline"),
            o(None, false, false, "50", "Best Case"),
            o(Some("1000"), false, false, "10", "Omitted"),
        ];
        let s = sum_opportunities(&p, &opps, &Rates::single()).unwrap();
        assert_eq!((s.won, s.won_count), (dec("100.10"), 2));
        // A closed-lost opportunity in Omitted is still lost: Omitted only leaves open.
        assert_eq!((s.lost, s.lost_count), (dec("40"), 1));
        assert_eq!((s.open, s.open_count), (dec("200"), 2));
        assert_eq!((s.omitted, s.omitted_count), (dec("1000"), 1));
        assert_eq!(s.weighted, dec("60"));
    }

    #[test]
    fn rounding_is_half_away_from_zero_at_the_fields_scale() {
        // (value, expected at scale 2)
        let cases = [
            ("0.005", "0.01"),
            ("0.004999", "0.00"),
            ("-0.005", "-0.01"),
            ("2.675", "2.68"),
            ("2.665", "2.67"),
            ("-2.665", "-2.67"),
            ("10", "10"),
        ];
        for (v, want) in cases {
            assert_eq!(round_to(dec(v), 2), dec(want), "{v}");
        }
    }

    #[test]
    fn intermediate_values_are_not_rounded() {
        // Three weighted amounts of 0.333… each: rounded one by one they would give 0.99.
        let p = plan("P", "A", "2026-01-01", "2026-12-31");
        let opps: Vec<_> = (0..3)
            .map(|_| o(Some("1"), false, false, "33.3333", "Pipeline"))
            .collect();
        let s = sum_opportunities(&p, &opps, &Rates::single()).unwrap();
        let r = finish(&p, &s, dec("0.25"), ActivitySummary::default(), 0, 0);
        assert_eq!(r.weighted_pipeline, dec("1.00"));
    }

    fn history(closed: usize, won: usize, date: &str) -> Vec<Opportunity> {
        (0..closed)
            .map(|i| {
                let mut x = opp(&format!("H{i}"), "A", date);
                x.is_closed = true;
                x.is_won = i < won;
                x
            })
            .collect()
    }

    #[test]
    fn close_ratio_falls_back_from_the_plan_to_the_win_rate_to_the_default() {
        let today = d("2026-08-15");
        let rules = Rules::default();
        // (Close_Ratio__c, closed, won, close date, expected ratio, source)
        let cases = [
            (
                Some("40"),
                10,
                5,
                "2026-06-01",
                "0.4",
                CloseRatioSource::Plan,
            ),
            (
                Some("0"),
                10,
                5,
                "2026-06-01",
                "0.5",
                CloseRatioSource::WinRate,
            ),
            (
                Some("-5"),
                10,
                5,
                "2026-06-01",
                "0.5",
                CloseRatioSource::WinRate,
            ),
            (None, 5, 2, "2026-06-01", "0.4", CloseRatioSource::WinRate),
            (None, 4, 2, "2026-06-01", "0.25", CloseRatioSource::Default),
            (None, 6, 0, "2026-06-01", "0.25", CloseRatioSource::Default),
            // The 365-day window is inclusive at both ends.
            (None, 5, 1, "2025-08-15", "0.2", CloseRatioSource::WinRate),
            (None, 5, 1, "2025-08-14", "0.25", CloseRatioSource::Default),
            (None, 5, 1, "2026-08-15", "0.2", CloseRatioSource::WinRate),
            (None, 5, 1, "2026-08-16", "0.25", CloseRatioSource::Default),
        ];
        for (pct, closed, won, date, want, source) in cases {
            let mut p = plan("P", "A", "2026-01-01", "2026-12-31");
            p.close_ratio_percent = pct.map(dec);
            let h = history(closed, won, date);
            assert_eq!(
                close_ratio(&p, &h, today, &rules),
                (dec(want), source),
                "{pct:?} {closed}/{won} at {date}"
            );
        }
        // Open opportunities in the window do not count as closed.
        let mut h = history(4, 1, "2026-06-01");
        h.push(opp("OPEN", "A", "2026-06-01"));
        let p = plan("P", "A", "2026-01-01", "2026-12-31");
        assert_eq!(
            close_ratio(&p, &h, today, &rules).1,
            CloseRatioSource::Default
        );
    }

    #[test]
    fn target_based_fields_follow_the_formulas_and_are_null_without_target() {
        let mut p = plan("P", "A", "2026-01-01", "2026-12-31");
        let s = Sums {
            won: dec("250"),
            won_count: 1,
            open: dec("300"),
            open_count: 2,
            weighted: dec("90"),
            ..Sums::default()
        };
        p.revenue_target = Some(dec("1000"));
        let r = finish(&p, &s, dec("0.3"), ActivitySummary::default(), 0, 0);
        assert_eq!(r.expected_revenue, dec("340"));
        assert_eq!(r.new_sales_needed, Some(dec("750")));
        assert_eq!(r.pipeline_needed, Some(dec("2500")));
        assert_eq!(r.pipeline_gap, Some(dec("2200")));
        assert_eq!(r.coverage_ratio, Some(dec("0.40")));
        assert_eq!(r.attainment, Some(dec("25")));
        assert_eq!(r.forecast_target_variance, Some(dec("660")));

        // Won beyond target: nothing needed, no coverage ratio, negative variance.
        p.revenue_target = Some(dec("200"));
        let r = finish(&p, &s, dec("0.3"), ActivitySummary::default(), 0, 0);
        assert_eq!(r.new_sales_needed, Some(dec("0")));
        assert_eq!(r.pipeline_needed, Some(dec("0")));
        assert_eq!(r.pipeline_gap, Some(dec("0")));
        assert_eq!(r.coverage_ratio, None);
        assert_eq!(r.attainment, Some(dec("125")));
        assert_eq!(r.forecast_target_variance, Some(dec("-140")));

        p.revenue_target = None;
        let r = finish(&p, &s, dec("0.3"), ActivitySummary::default(), 0, 0);
        let target_based = [
            r.new_sales_needed,
            r.pipeline_needed,
            r.pipeline_gap,
            r.coverage_ratio,
            r.attainment,
            r.forecast_target_variance,
        ];
        assert_eq!(target_based, [None; 6]);
        assert_eq!(r.won_amount, dec("250"));
    }

    #[test]
    fn a_plan_without_opportunities_has_zero_sums_not_nulls() {
        let mut p = plan("P", "A", "2026-01-01", "2026-12-31");
        p.revenue_target = Some(dec("500"));
        let s = sum_opportunities(&p, &[], &Rates::single()).unwrap();
        let r = finish(&p, &s, dec("0.25"), ActivitySummary::default(), 0, 0);
        assert_eq!(
            (
                r.won_amount,
                r.open_pipeline,
                r.expected_revenue,
                r.won_count
            ),
            (dec("0"), dec("0"), dec("0"), 0)
        );
        assert_eq!(r.pipeline_needed, Some(dec("2000")));
        assert_eq!(r.attainment, Some(dec("0")));
    }
}
