//! The diff of design.md §3.6: a plan's desired rollups against the values last read from
//! (or written to) the CRM, field by field, keeping only the fields whose value changed.
//! Numbers compare by value (45.2 equals 45.20, 3 equals 3.0).

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use rust_decimal::Decimal;

use super::rollups::Rollups;

/// The table of rollup fields: each row gives the field, its default API name on
/// Account_Plan__c and its decimal places (`None` for dates), in the order of design.md §2.
/// The enum, [`RollupField::all`], [`RollupField::api_name`] and [`RollupField::scale`] are
/// made from it.
macro_rules! rollup_fields {
    ($($variant:ident => $api_name:literal, $scale:expr;)*) => {
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
                    $(RollupField::$variant => $api_name,)*
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
    };
}

rollup_fields! {
    WonAmount => "Won_Amount__c", Some(2);
    WonCount => "Won_Count__c", Some(0);
    LostAmount => "Lost_Amount__c", Some(2);
    LostCount => "Lost_Count__c", Some(0);
    OpenPipeline => "Open_Pipeline__c", Some(2);
    OpenCount => "Open_Count__c", Some(0);
    WeightedPipeline => "Weighted_Pipeline__c", Some(2);
    ExpectedRevenue => "Expected_Revenue__c", Some(2);
    NewSalesNeeded => "New_Sales_Needed__c", Some(2);
    PipelineNeeded => "Pipeline_Needed__c", Some(2);
    PipelineGap => "Pipeline_Gap__c", Some(2);
    CoverageRatio => "Coverage_Ratio__c", Some(2);
    Attainment => "Attainment__c", Some(2);
    ForecastTargetVariance => "Forecast_Target_Variance__c", Some(2);
    LastActivityDate => "Last_Activity_Date__c", None;
    NextActivityDate => "Next_Activity_Date__c", None;
    OverdueTaskCount => "Overdue_Task_Count__c", Some(0);
    ContactCount => "Contact_Count__c", Some(0);
    EngagedContactCount => "Engaged_Contact_Count__c", Some(0);
}

impl RollupField {
    /// The field with this default API name.
    pub fn from_api_name(name: &str) -> Option<RollupField> {
        RollupField::all()
            .into_iter()
            .find(|f| f.api_name() == name)
    }
}

/// A field's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldValue {
    Null,
    Decimal(Decimal),
    Int(i64),
    Date(NaiveDate),
}

impl FieldValue {
    fn number(&self) -> Option<Decimal> {
        match self {
            FieldValue::Decimal(d) => Some(*d),
            FieldValue::Int(i) => Some(Decimal::from(*i)),
            _ => None,
        }
    }

    /// Equality as the CRM sees it: numbers by value whatever their scale or variant.
    pub fn same_as(&self, other: &FieldValue) -> bool {
        match (self.number(), other.number()) {
            (Some(a), Some(b)) => a == b,
            _ => self == other,
        }
    }
}

impl From<Option<Decimal>> for FieldValue {
    fn from(v: Option<Decimal>) -> Self {
        v.map_or(FieldValue::Null, FieldValue::Decimal)
    }
}

impl From<Option<NaiveDate>> for FieldValue {
    fn from(v: Option<NaiveDate>) -> Self {
        v.map_or(FieldValue::Null, FieldValue::Date)
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

    /// One field's value.
    pub fn value(&self, field: RollupField) -> FieldValue {
        use FieldValue::{Decimal as D, Int};
        use RollupField::*;
        match field {
            WonAmount => D(self.won_amount),
            WonCount => Int(self.won_count),
            LostAmount => D(self.lost_amount),
            LostCount => Int(self.lost_count),
            OpenPipeline => D(self.open_pipeline),
            OpenCount => Int(self.open_count),
            WeightedPipeline => D(self.weighted_pipeline),
            ExpectedRevenue => D(self.expected_revenue),
            NewSalesNeeded => self.new_sales_needed.into(),
            PipelineNeeded => self.pipeline_needed.into(),
            PipelineGap => self.pipeline_gap.into(),
            CoverageRatio => self.coverage_ratio.into(),
            Attainment => self.attainment.into(),
            ForecastTargetVariance => self.forecast_target_variance.into(),
            LastActivityDate => self.last_activity_date.into(),
            NextActivityDate => self.next_activity_date.into(),
            OverdueTaskCount => Int(self.overdue_task_count),
            ContactCount => Int(self.contact_count),
            EngagedContactCount => Int(self.engaged_contact_count),
        }
    }
}

/// A field whose desired value differs from the current one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldChange {
    pub field: RollupField,
    pub old: FieldValue,
    pub new: FieldValue,
}

/// The fields of `desired` that differ from `current` (a field missing from `current` is
/// Null), in [`RollupField::all`] order.
pub fn diff_rollups(
    current: &BTreeMap<RollupField, FieldValue>,
    desired: &Rollups,
) -> Vec<FieldChange> {
    desired
        .values()
        .into_iter()
        .filter_map(|(field, new)| {
            let old = current.get(&field).copied().unwrap_or(FieldValue::Null);
            (!old.same_as(&new)).then_some(FieldChange { field, old, new })
        })
        .collect()
}

/// The plans whose linked opportunities change between two sets of links: for every
/// opportunity whose link moved (including one that appears or disappears), both its old and
/// its new plan.
pub fn plans_touched_by(
    old_links: &BTreeMap<String, Option<String>>,
    new_links: &BTreeMap<String, Option<String>>,
) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let none = None;
    for opp in old_links.keys().chain(new_links.keys()) {
        let old = old_links.get(opp).unwrap_or(&none);
        let new = new_links.get(opp).unwrap_or(&none);
        if old != new {
            out.extend(old.iter().cloned());
            out.extend(new.iter().cloned());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::testutil::{d, dec};

    fn rollups() -> Rollups {
        Rollups {
            won_amount: dec("45.20"),
            won_count: 3,
            attainment: Some(dec("12.5")),
            last_activity_date: Some(d("2026-08-01")),
            ..Rollups::default()
        }
    }

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

    #[test]
    fn equal_values_give_no_change_whatever_their_scale_or_variant() {
        let current: BTreeMap<_, _> = rollups()
            .values()
            .into_iter()
            .map(|(f, v)| {
                let as_read = match v {
                    FieldValue::Decimal(_) if f == RollupField::WonAmount => {
                        FieldValue::Decimal(dec("45.2"))
                    }
                    FieldValue::Int(i) => FieldValue::Decimal(Decimal::new(i * 10, 1)), // 3 read back as 3.0
                    other => other,
                };
                (f, as_read)
            })
            .collect();
        assert_eq!(diff_rollups(&current, &rollups()), vec![]);
    }

    #[test]
    fn only_changed_fields_are_returned_with_old_and_new_values() {
        let mut current: BTreeMap<_, _> = rollups().values().into_iter().collect();
        // (field, current value, expected change)
        current.insert(RollupField::WonCount, FieldValue::Int(2));
        current.insert(RollupField::Attainment, FieldValue::Null);
        current.insert(
            RollupField::LastActivityDate,
            FieldValue::Date(d("2026-07-31")),
        );
        current.remove(&RollupField::ContactCount); // missing = Null, desired 0
        let changes = diff_rollups(&current, &rollups());
        let got: Vec<_> = changes.iter().map(|c| (c.field, c.old, c.new)).collect();
        assert_eq!(
            got,
            vec![
                (
                    RollupField::WonCount,
                    FieldValue::Int(2),
                    FieldValue::Int(3)
                ),
                (
                    RollupField::Attainment,
                    FieldValue::Null,
                    FieldValue::Decimal(dec("12.5"))
                ),
                (
                    RollupField::LastActivityDate,
                    FieldValue::Date(d("2026-07-31")),
                    FieldValue::Date(d("2026-08-01"))
                ),
                (
                    RollupField::ContactCount,
                    FieldValue::Null,
                    FieldValue::Int(0)
                ),
            ]
        );
    }

    #[test]
    fn zero_and_null_differ() {
        assert!(!FieldValue::Null.same_as(&FieldValue::Int(0)));
        assert!(!FieldValue::Decimal(dec("0")).same_as(&FieldValue::Null));
        assert!(FieldValue::Decimal(dec("0.00")).same_as(&FieldValue::Int(0)));
    }

    #[test]
    fn a_moved_link_touches_its_old_and_new_plan() {
        let links = |pairs: &[(&str, Option<&str>)]| -> BTreeMap<String, Option<String>> {
            pairs
                .iter()
                .map(|(o, p)| (o.to_string(), p.map(str::to_string)))
                .collect()
        };
        let old = links(&[
            ("O1", Some("P1")),
            ("O2", Some("P2")),
            ("O3", None),
            ("O4", Some("P4")),
        ]);
        let new = links(&[
            ("O1", Some("P1")),
            ("O2", Some("P3")),
            ("O3", Some("P5")),
            ("O5", Some("P6")),
        ]);
        let got: Vec<_> = plans_touched_by(&old, &new).into_iter().collect();
        assert_eq!(got, vec!["P2", "P3", "P4", "P5", "P6"]);
    }
}
