//! Rollups of a plan (design.md §3.3): sums and counts over its linked opportunities, the
//! close ratio with its fallbacks, and the target-based fields. Intermediate values are never
//! rounded; results are rounded to their field's scale half away from zero.

use chrono::{Duration, NaiveDate};
use rust_decimal::{Decimal, RoundingStrategy};

use super::activities::ActivitySummary;
use super::currency::{CurrencyError, Rates};
use super::diff::FieldValue;
use super::model::{Opportunity, Plan, Rules};

/// The table of rollup fields, in the order of design.md §2. Each row gives the field, its
/// name (in [`Rollups`], as its `[mapping.plan]` key and in JSON output), its type in
/// [`Rollups`], its default API name on Account_Plan__c (and Account_Plan_Snapshot__c) and
/// its decimal places (`None` for dates).
///
/// The rows are handed to the macro named first, after the tokens given with it, so other
/// modules build from the same rows: this module makes [`RollupField`] and [`Rollups`] from
/// them, the configuration the `[mapping.plan]` keys with their defaults, and the metadata
/// the list of embedded field files of both objects.
///
/// Adding a rollup is, in the code, a row here and its formula in [`finish`]. The org needs
/// the field too: its `.field-meta.xml` on both objects and its permissions in the two
/// permission sets of `schema/salesforce/` (the build fails while a field file is missing);
/// `config/plansync.example.toml` documents the new key, and the golden org's
/// `expected.json` gets its values.
macro_rules! rollup_table {
    ($callback:ident! { $($prefix:tt)* }) => {
        $callback! {
            $($prefix)*
            WonAmount won_amount: Decimal => "Won_Amount__c", Some(2);
            WonCount won_count: i64 => "Won_Count__c", Some(0);
            LostAmount lost_amount: Decimal => "Lost_Amount__c", Some(2);
            LostCount lost_count: i64 => "Lost_Count__c", Some(0);
            OpenPipeline open_pipeline: Decimal => "Open_Pipeline__c", Some(2);
            OpenCount open_count: i64 => "Open_Count__c", Some(0);
            WeightedPipeline weighted_pipeline: Decimal => "Weighted_Pipeline__c", Some(2);
            ExpectedRevenue expected_revenue: Decimal => "Expected_Revenue__c", Some(2);
            NewSalesNeeded new_sales_needed: Option<Decimal> => "New_Sales_Needed__c", Some(2);
            PipelineNeeded pipeline_needed: Option<Decimal> => "Pipeline_Needed__c", Some(2);
            PipelineGap pipeline_gap: Option<Decimal> => "Pipeline_Gap__c", Some(2);
            CoverageRatio coverage_ratio: Option<Decimal> => "Coverage_Ratio__c", Some(2);
            /// A percent: 45.25 means 45.25 %.
            Attainment attainment: Option<Decimal> => "Attainment__c", Some(2);
            /// target − expected revenue: positive means the plan is expected to fall short.
            ForecastTargetVariance forecast_target_variance: Option<Decimal>
                => "Forecast_Target_Variance__c", Some(2);
            LastActivityDate last_activity_date: Option<NaiveDate> => "Last_Activity_Date__c", None;
            NextActivityDate next_activity_date: Option<NaiveDate> => "Next_Activity_Date__c", None;
            OverdueTaskCount overdue_task_count: i64 => "Overdue_Task_Count__c", Some(0);
            ContactCount contact_count: i64 => "Contact_Count__c", Some(0);
            EngagedContactCount engaged_contact_count: i64 => "Engaged_Contact_Count__c", Some(0);
        }
    };
}
pub(crate) use rollup_table;

/// Makes [`RollupField`] and [`Rollups`] from the rows of [`rollup_table`].
macro_rules! rollup_items {
    ($($(#[$doc:meta])* $variant:ident $field:ident: $ty:ty => $api:literal, $scale:expr;)*) => {
        /// One output field of a plan's rollups.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum RollupField {
            $($variant,)*
        }

        impl RollupField {
            /// How many rollup fields there are.
            pub const COUNT: usize = [$(stringify!($variant)),*].len();

            /// Every field, in the order of design.md §2.
            pub fn all() -> [RollupField; RollupField::COUNT] {
                [$(RollupField::$variant),*]
            }

            /// The field's default API name on Account_Plan__c.
            pub fn api_name(&self) -> &'static str {
                match self {
                    $(RollupField::$variant => $api,)*
                }
            }

            /// The field's name: in [`Rollups`], as its `[mapping.plan]` key, in JSON output.
            pub fn key(&self) -> &'static str {
                match self {
                    $(RollupField::$variant => stringify!($field),)*
                }
            }

            /// Decimal places of the field (amounts, coverage ratio and attainment 2, counts
            /// 0); `None` for dates.
            pub fn scale(&self) -> Option<u32> {
                match self {
                    $(RollupField::$variant => $scale,)*
                }
            }
        }

        /// The output fields of one plan, already rounded to each field's scale.
        #[derive(Debug, Clone, PartialEq, Eq, Default)]
        pub struct Rollups {
            $($(#[$doc])* pub $field: $ty,)*
        }

        impl Rollups {
            /// One field's value.
            pub fn value(&self, field: RollupField) -> FieldValue {
                match field {
                    $(RollupField::$variant => self.$field.into(),)*
                }
            }
        }
    };
}

rollup_table!(rollup_items! {});

impl RollupField {
    /// The field with this default API name.
    pub fn from_api_name(name: &str) -> Option<RollupField> {
        RollupField::all()
            .into_iter()
            .find(|f| f.api_name() == name)
    }
}

impl Rollups {
    /// Every output field with its value, in [`RollupField::all`] order.
    pub fn values(&self) -> Vec<(RollupField, FieldValue)> {
        RollupField::all()
            .into_iter()
            .map(|f| (f, self.value(f)))
            .collect()
    }
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
    use std::collections::BTreeSet;

    use super::*;
    use crate::domain::testutil::{d, dec, opp, plan};

    #[test]
    fn the_table_gives_counts_no_decimals_amounts_two_and_dates_none() {
        use RollupField::*;
        for f in RollupField::all() {
            let expected = match f {
                WonCount | LostCount | OpenCount | OverdueTaskCount | ContactCount
                | EngagedContactCount => Some(0),
                LastActivityDate | NextActivityDate => None,
                _ => Some(2),
            };
            assert_eq!(f.scale(), expected, "{f:?}");
        }
        assert_eq!(RollupField::all()[0], WonAmount);
        assert_eq!(RollupField::all()[18], EngagedContactCount);
        assert_eq!(RollupField::COUNT, 19);
    }

    #[test]
    fn api_names_are_unique_and_round_trip() {
        let names: BTreeSet<_> = RollupField::all().iter().map(|f| f.api_name()).collect();
        assert_eq!(names.len(), 19);
        for f in RollupField::all() {
            assert_eq!(RollupField::from_api_name(f.api_name()), Some(f));
        }
        assert_eq!(RollupField::from_api_name("Rollups_Changed_At__c"), None);
    }

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
