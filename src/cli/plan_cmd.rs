//! `plansync plan PLAN_ID`: a plan's inputs and every rollup with the records behind it, from
//! the store's mirror of the CRM, computed by the same rules a cycle uses; with `--history`,
//! how the plan's headline metrics moved, from the history the cycles record in the store.

use std::collections::HashMap;
use std::path::PathBuf;

use chrono::{NaiveDate, Utc};
use rust_decimal::Decimal;
use serde_json::{json, Value};

use crate::domain::explain::{
    plan_breakdown, ActivityKind, ActivityRef, OpportunityLine, PlanBreakdown,
};
use crate::domain::rollups::CloseRatioSource;
use crate::domain::{today_in, FieldValue, Membership, Rules};
use crate::sync::ObjectKind;

use super::inputs::AdminInputs;
use super::plans::money;
use super::status::pretty;
use super::sync::DEFAULT_CONFIG;
use super::CliError;

mod history;

pub use history::{
    history_json, render_history, sparkline, start_of_day, HistoryHeader, SPARK_BARS,
};

/// Options of `plansync plan`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = super::help::EXIT_ADMIN)]
pub struct PlanArgs {
    /// The account plan's Id (15 or 18 characters). Example: plansync plan a0P000000000001AAA
    #[arg(value_name = "PLAN_ID")]
    pub plan_id: String,

    /// The configuration file (TOML), layered with PLANSYNC__SECTION__KEY variables.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_CONFIG)]
    pub config: PathBuf,

    /// Evaluate date-relative rules (activities, win-rate window) as of this date instead of
    /// today in the org's time zone. Example: --as-of 2026-08-15
    #[arg(long, value_name = "YYYY-MM-DD", conflicts_with = "history")]
    pub as_of: Option<NaiveDate>,

    /// Show how won, open, weighted, gap, coverage and attainment moved instead: one row per
    /// change the cycles recorded (time in UTC, run id, values in the plan's currency), and a
    /// sparkline per metric when stdout is a terminal. Example: plansync plan a0P… --history
    #[arg(long)]
    pub history: bool,

    /// With --history: only the changes recorded from the start of this day in the org's time
    /// zone ([org] timezone). Example: --since 2026-08-01
    #[arg(long, value_name = "YYYY-MM-DD", requires = "history", value_parser = history::parse_since)]
    pub since: Option<NaiveDate>,

    /// Print one JSON object instead of the text, amounts as decimal strings or null, dates as
    /// YYYY-MM-DD: {"plan_id", "name", "status", "gets_rollups", "as_of", "period_start",
    /// "period_end", "revenue_target", "currency", "include_child_accounts", "accounts":
    /// [{"account_id", "membership", "hops"}], "close_ratio": {"ratio", "source" (plan,
    /// win_rate, default), "closed_in_window", "won_in_window"}, "won", "lost", "open",
    /// "omitted": [{"id", "name", "account_id", "close_date", "amount", "probability",
    /// "weighted", "locked"}], "sums": {"won", "won_count", "lost", "lost_count", "open",
    /// "open_count", "omitted", "omitted_count", "weighted"}, "rollups": {field: value} or
    /// null, "conversion_error", "last_activity", "next_activity": {"kind", "id", "date"} or
    /// null, "overdue_tasks": [activity], "contacts", "engaged_contacts": [Id]}.
    /// With --history: {"plan_id", "name", "currency", "since", "points": [{"time", "run",
    /// "currency", "won", "open", "weighted", "gap", "coverage", "attainment"}]}.
    /// Example: plansync plan a0P… --json
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: PlanArgs) -> Result<(), CliError> {
    let input = AdminInputs::load(&args.config, &args.plan_id, ObjectKind::Plan, "plan")?;
    if args.history {
        return history::run(&args, &input);
    }
    let (rules, inputs) = input.org()?;
    let plan_id = &input.id;
    let today = args
        .as_of
        .unwrap_or_else(|| today_in(rules.timezone, Utc::now()));
    let b = plan_breakdown(&inputs.org, &rules, today, plan_id).ok_or_else(|| {
        CliError::Admin(format!(
            "no account plan {plan_id} in the store's mirror of the CRM (deleted, mistyped, or not pulled yet: run `plansync sync`)"
        ))
    })?;
    if args.json {
        println!(
            "{}",
            pretty(&breakdown_json(&b, today, &inputs.opportunity_names))
        );
        return Ok(());
    }
    print!("{}", render(&b, &rules, today, &inputs.opportunity_names));
    Ok(())
}

/// The breakdown as `--json` prints it (fields documented on [`PlanArgs::json`]).
pub fn breakdown_json(
    b: &PlanBreakdown,
    today: NaiveDate,
    opp_names: &HashMap<String, Option<String>>,
) -> Value {
    let p = &b.plan;
    let dec = |d: Decimal| Value::String(d.to_string());
    let lines = |lines: &[OpportunityLine]| -> Value {
        lines
            .iter()
            .map(|l| {
                json!({
                    "id": l.id,
                    "name": opp_names.get(&l.id).cloned().flatten(),
                    "account_id": l.account_id,
                    "close_date": l.close_date,
                    "amount": dec(l.amount),
                    "probability": decimal_text(l.probability),
                    "weighted": decimal_text(l.weighted),
                    "locked": l.locked,
                })
            })
            .collect()
    };
    let activity = |a: &ActivityRef| json!({"kind": kind(a.kind), "id": a.id, "date": a.date});
    let accounts: Vec<Value> = b
        .members
        .iter()
        .map(|(account, m)| {
            let (how, hops) = match m {
                Membership::Direct => ("direct", Value::Null),
                Membership::Junction => ("junction", Value::Null),
                Membership::Hierarchy { hops } => ("hierarchy", json!(hops)),
            };
            json!({"account_id": account, "membership": how, "hops": hops})
        })
        .collect();
    let cr = &b.close_ratio;
    let s = &b.sums;
    // Every rollup field under its name, in table order: amounts as decimal text.
    let rollups = b.rollups.as_ref().map(|r| {
        r.values()
            .into_iter()
            .map(|(field, value)| {
                let value = match value {
                    FieldValue::Null => Value::Null,
                    FieldValue::Decimal(d) => dec(d),
                    FieldValue::Int(i) => json!(i),
                    FieldValue::Date(d) => json!(d),
                };
                (field.key().to_string(), value)
            })
            .collect::<serde_json::Map<_, _>>()
    });
    json!({
        "plan_id": p.id,
        "name": p.name,
        "status": p.status,
        "gets_rollups": b.gets_rollups,
        "as_of": today,
        "period_start": p.period_start,
        "period_end": p.period_end,
        "revenue_target": decimal_text(p.revenue_target),
        "currency": p.currency,
        "include_child_accounts": p.include_child_accounts,
        "accounts": accounts,
        "close_ratio": {
            "ratio": dec(cr.ratio),
            "source": match cr.source {
                CloseRatioSource::Plan => "plan",
                CloseRatioSource::WinRate => "win_rate",
                CloseRatioSource::Default => "default",
            },
            "closed_in_window": cr.closed_in_window,
            "won_in_window": cr.won_in_window,
        },
        "won": lines(&b.won),
        "lost": lines(&b.lost),
        "open": lines(&b.open),
        "omitted": lines(&b.omitted),
        "sums": {
            "won": dec(s.won),
            "won_count": s.won_count,
            "lost": dec(s.lost),
            "lost_count": s.lost_count,
            "open": dec(s.open),
            "open_count": s.open_count,
            "omitted": dec(s.omitted),
            "omitted_count": s.omitted_count,
            "weighted": dec(s.weighted),
        },
        "rollups": rollups,
        "conversion_error": b.conversion_error,
        "last_activity": b.last_activity.as_ref().map(activity),
        "next_activity": b.next_activity.as_ref().map(activity),
        "overdue_tasks": b.overdue_tasks.iter().map(activity).collect::<Vec<_>>(),
        "contacts": b.contacts,
        "engaged_contacts": b.engaged_contacts,
    })
}

fn amount(d: Decimal) -> String {
    money(d)
}

fn opt_amount(d: Option<Decimal>) -> String {
    d.map_or_else(|| "-".to_string(), money)
}

fn activity(a: &Option<ActivityRef>) -> String {
    match a {
        None => "none".into(),
        Some(a) => format!("{} ({} {})", a.date, kind(a.kind), a.id),
    }
}

fn kind(k: ActivityKind) -> &'static str {
    match k {
        ActivityKind::Task => "task",
        ActivityKind::Event => "event",
    }
}

/// The breakdown as text.
pub fn render(
    b: &PlanBreakdown,
    rules: &Rules,
    today: NaiveDate,
    opp_names: &HashMap<String, Option<String>>,
) -> String {
    let p = &b.plan;
    let mut out = String::new();
    out.push_str(&format!("Plan {} ({})\n", p.name, p.id));
    out.push_str(&format!(
        "  status {}{}\n",
        p.status.as_deref().unwrap_or("(none)"),
        if b.gets_rollups {
            ", rollups are written"
        } else {
            ", rollups are NOT written for this status (the numbers below are what they would be)"
        }
    ));
    let d = |x: Option<NaiveDate>| x.map_or("(none)".to_string(), |d| d.to_string());
    out.push_str(&format!(
        "  period {}..{}, target {}, currency {}, as of {today}\n",
        d(p.period_start),
        d(p.period_end),
        opt_amount(p.revenue_target),
        p.currency.as_deref().unwrap_or("corporate")
    ));
    out.push_str(&format!(
        "  accounts ({}{}):\n",
        b.members.len(),
        if p.include_child_accounts {
            ", child accounts included"
        } else {
            ""
        }
    ));
    for (account, m) in &b.members {
        let how = match m {
            Membership::Direct => "direct".to_string(),
            Membership::Junction => "junction".to_string(),
            Membership::Hierarchy { hops } => format!("hierarchy, {hops} level(s) below"),
        };
        out.push_str(&format!("    {account}  {how}\n"));
    }
    let cr = &b.close_ratio;
    let pct = cr.ratio * Decimal::ONE_HUNDRED;
    let source = match cr.source {
        CloseRatioSource::Plan => "the plan's Close_Ratio__c".to_string(),
        CloseRatioSource::WinRate => format!(
            "the win rate by count: {} won of {} closed in the last 365 days",
            cr.won_in_window, cr.closed_in_window
        ),
        CloseRatioSource::Default => format!(
            "[rollups] default_close_ratio ({}; the win rate needs at least 5 closed and 1 won in the last 365 days, found {} closed, {} won)",
            if p.close_ratio_percent.is_some_and(|x| x > Decimal::ZERO) {
                "unused"
            } else {
                "no Close_Ratio__c"
            },
            cr.closed_in_window,
            cr.won_in_window
        ),
    };
    out.push_str(&format!(
        "  close ratio {}% from {source}\n",
        pct.normalize()
    ));

    let name = |id: &str| {
        opp_names
            .get(id)
            .cloned()
            .flatten()
            .map(|n| format!(" {n}"))
            .unwrap_or_default()
    };
    let section = |out: &mut String, title: &str, lines: &[OpportunityLine], weighted: bool| {
        let total: Decimal = lines.iter().map(|l| l.amount).sum();
        out.push_str(&format!(
            "\n{title}: {} opportunit{}, {}\n",
            lines.len(),
            if lines.len() == 1 { "y" } else { "ies" },
            amount(total)
        ));
        for l in lines {
            let w = if weighted {
                format!(
                    " x {}% = {}",
                    l.probability
                        .map_or_else(|| "0".to_string(), |p| p.normalize().to_string()),
                    amount(l.weighted.unwrap_or_default())
                )
            } else {
                String::new()
            };
            out.push_str(&format!(
                "  {}{}  close {}  {}{w}{}\n",
                l.id,
                name(&l.id),
                d(l.close_date),
                amount(l.amount),
                if l.locked { "  (locked link)" } else { "" }
            ));
        }
    };
    section(&mut out, "Won", &b.won, false);
    section(&mut out, "Lost", &b.lost, false);
    section(&mut out, "Open pipeline", &b.open, true);
    if !b.omitted.is_empty() {
        section(
            &mut out,
            "Open but Omitted from the forecast (in no sum)",
            &b.omitted,
            false,
        );
    }

    out.push_str("\nRollups\n");
    match &b.rollups {
        None => out.push_str(&format!(
            "  not computed: {}\n",
            b.conversion_error.as_deref().unwrap_or("unknown currency")
        )),
        Some(r) => {
            let rows: Vec<(&str, String, String)> = vec![
                (
                    "Won_Amount__c",
                    amount(r.won_amount),
                    format!("{} won", r.won_count),
                ),
                (
                    "Lost_Amount__c",
                    amount(r.lost_amount),
                    format!("{} lost", r.lost_count),
                ),
                (
                    "Open_Pipeline__c",
                    amount(r.open_pipeline),
                    format!("{} open", r.open_count),
                ),
                (
                    "Weighted_Pipeline__c",
                    amount(r.weighted_pipeline),
                    "sum of amount x probability over open".into(),
                ),
                (
                    "Expected_Revenue__c",
                    amount(r.expected_revenue),
                    "won + weighted".into(),
                ),
                (
                    "New_Sales_Needed__c",
                    opt_amount(r.new_sales_needed),
                    "max(target - won, 0)".into(),
                ),
                (
                    "Pipeline_Needed__c",
                    opt_amount(r.pipeline_needed),
                    format!("new sales needed / {}%", pct.normalize()),
                ),
                (
                    "Pipeline_Gap__c",
                    opt_amount(r.pipeline_gap),
                    "max(pipeline needed - open, 0)".into(),
                ),
                (
                    "Coverage_Ratio__c",
                    r.coverage_ratio.map_or("-".into(), |c| c.to_string()),
                    "open / new sales needed".into(),
                ),
                (
                    "Attainment__c",
                    r.attainment.map_or("-".into(), |a| format!("{a}%")),
                    "won / target".into(),
                ),
                (
                    "Forecast_Target_Variance__c",
                    opt_amount(r.forecast_target_variance),
                    "target - expected revenue".into(),
                ),
                (
                    "Last_Activity_Date__c",
                    d(r.last_activity_date),
                    activity(&b.last_activity),
                ),
                (
                    "Next_Activity_Date__c",
                    d(r.next_activity_date),
                    activity(&b.next_activity),
                ),
                (
                    "Overdue_Task_Count__c",
                    r.overdue_task_count.to_string(),
                    b.overdue_tasks
                        .iter()
                        .map(|a| format!("{} ({})", a.id, a.date))
                        .collect::<Vec<_>>()
                        .join(", "),
                ),
                (
                    "Contact_Count__c",
                    r.contact_count.to_string(),
                    b.contacts.join(", "),
                ),
                (
                    "Engaged_Contact_Count__c",
                    r.engaged_contact_count.to_string(),
                    format!(
                        "{} (closed task or event in the last {} days)",
                        b.engaged_contacts.join(", "),
                        rules.engaged_contact_days
                    ),
                ),
            ];
            let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
            let vwidth = rows.iter().map(|r| r.1.len()).max().unwrap_or(0);
            for (field, value, why) in rows {
                out.push_str(&format!("  {field:<width$}  {value:>vwidth$}  {why}\n"));
            }
        }
    }
    out
}

/// An optional decimal as a JSON string, or null.
pub(crate) fn decimal_text(d: Option<Decimal>) -> Value {
    d.map_or(Value::Null, |d| Value::String(d.to_string()))
}

#[cfg(test)]
mod breakdown_json_tests {
    use super::*;
    use crate::domain::testutil::{d, dec, opp, plan};
    use crate::domain::{Account, OrgData, RollupField};

    #[test]
    fn the_rollups_are_every_field_by_name_in_table_order() {
        let mut p = plan("P", "A", "2026-01-01", "2026-12-31");
        p.revenue_target = Some(dec("1000"));
        let mut won = opp("O", "A", "2026-05-01");
        (won.amount, won.is_closed, won.is_won) = (Some(dec("250.5")), true, true);
        let org = OrgData {
            accounts: vec![Account {
                id: "A".into(),
                parent_id: None,
            }],
            plans: vec![p],
            opportunities: vec![won],
            ..OrgData::default()
        };
        let today = d("2026-08-15");
        let b = plan_breakdown(&org, &Rules::default(), today, "P").unwrap();
        let out = breakdown_json(&b, today, &HashMap::new());
        let rollups = out["rollups"].as_object().unwrap();
        let keys: Vec<&str> = rollups.keys().map(String::as_str).collect();
        let expected: Vec<&str> = RollupField::all().iter().map(|f| f.key()).collect();
        assert_eq!(keys, expected);
        // Amounts as decimal text at their scale, counts as numbers, a missing date as null.
        assert_eq!(rollups["won_amount"], json!("250.5"));
        assert_eq!(rollups["won_count"], json!(1));
        assert_eq!(rollups["new_sales_needed"], json!("749.5"));
        assert_eq!(rollups["attainment"], json!("25.05"));
        assert_eq!(rollups["last_activity_date"], Value::Null);
    }
}
