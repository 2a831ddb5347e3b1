//! The diff of design.md §3.6: a plan's desired rollups against the values last read from
//! (or written to) the CRM, field by field, keeping only the fields whose value changed.
//! Numbers compare by value (45.2 equals 45.20, 3 equals 3.0).

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use rust_decimal::Decimal;

use super::rollups::{RollupField, Rollups};

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

impl From<Decimal> for FieldValue {
    fn from(v: Decimal) -> Self {
        FieldValue::Decimal(v)
    }
}

impl From<i64> for FieldValue {
    fn from(v: i64) -> Self {
        FieldValue::Int(v)
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
