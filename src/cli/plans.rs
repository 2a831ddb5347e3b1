//! The plans table: each plan's target and rollups as the CRM now holds them (the store's
//! mirror is updated with every accepted write).

use rust_decimal::Decimal;

use crate::domain::RollupField;
use crate::store::Store;
use crate::sync::convert::{date, decimal, field, text};
use crate::sync::Names;

use super::table::Table;
use super::CliError;

/// `1234567.8` → `1,234,567.80`.
pub fn money(d: Decimal) -> String {
    let rounded = d.round_dp(2);
    let text = format!("{:.2}", rounded.abs());
    let (int, frac) = text.split_once('.').unwrap_or((&text, "00"));
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let sign = if rounded.is_sign_negative() && !rounded.is_zero() {
        "-"
    } else {
        ""
    };
    format!("{sign}{grouped}.{frac}")
}

/// Renders the plans of the mirror, sorted by name.
pub fn plan_table(store: &Store, names: &Names) -> Result<String, CliError> {
    let n = &names.plan;
    let rollup = |f: RollupField| -> &str {
        n.rollups
            .iter()
            .find(|(k, _)| *k == f)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| f.api_name())
    };
    let mut plans = store.live_records(&n.object)?;
    plans.sort_by_key(|r| text(&r.fields, &n.name).unwrap_or_default());
    let columns = [
        "plan",
        "status",
        "target",
        "won",
        "open",
        "weighted",
        "pipeline needed",
        "gap",
        "coverage",
        "last activity",
        "next activity",
    ];
    // The amounts and the coverage, right-aligned.
    let mut table = Table::new(&columns, &columns[2..9]);
    let dash = || "-".to_string();
    for r in &plans {
        let f = &r.fields;
        let amount = |name: &str| decimal(f, name).map(money).unwrap_or_else(dash);
        let coverage = decimal(f, rollup(RollupField::CoverageRatio))
            .map(|d| format!("{:.2}x", d.round_dp(2)))
            .unwrap_or_else(dash);
        let day = |name: &str| date(f, name).map(|d| d.to_string()).unwrap_or_else(dash);
        table.push(vec![
            text(f, &n.name).unwrap_or_else(|| r.id.clone()),
            field(f, &n.status)
                .and_then(|v| v.as_str())
                .unwrap_or("-")
                .to_string(),
            amount(&n.revenue_target),
            amount(rollup(RollupField::WonAmount)),
            amount(rollup(RollupField::OpenPipeline)),
            amount(rollup(RollupField::WeightedPipeline)),
            amount(rollup(RollupField::PipelineNeeded)),
            amount(rollup(RollupField::PipelineGap)),
            coverage,
            day(rollup(RollupField::LastActivityDate)),
            day(rollup(RollupField::NextActivityDate)),
        ]);
    }
    if table.is_empty() {
        return Ok("No account plans in the CRM.".into());
    }
    Ok(table.render())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_groups_thousands_and_keeps_two_places() {
        assert_eq!(money(Decimal::new(12345678, 1)), "1,234,567.80");
        assert_eq!(money(Decimal::new(-5, 1)), "-0.50");
        assert_eq!(money(Decimal::ZERO), "0.00");
        assert_eq!(money(Decimal::new(100, 0)), "100.00");
    }
}
