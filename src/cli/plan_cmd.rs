//! `plansync plan PLAN_ID`: a plan's inputs and every rollup with the records behind it, from
//! the store's mirror of the CRM, computed by the same rules a cycle uses; with `--history`,
//! how the plan's headline metrics moved, from the history the cycles record in the store.

use std::collections::HashMap;
use std::path::PathBuf;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde_json::{json, Value};

use crate::config::Config;
use crate::domain::explain::{
    plan_breakdown, ActivityKind, ActivityRef, OpportunityLine, PlanBreakdown,
};
use crate::domain::rollups::CloseRatioSource;
use crate::domain::{today_in, FieldValue, Membership, Rules};
use crate::store::{HistoryPoint, Store};
use crate::sync::compute::org_data;
use crate::sync::convert::text;
use crate::sync::{Names, ObjectKind, SyncEngine};

use super::ids;
use super::plans::money;
use super::status::{config_and_store, names_of, pretty};
use super::sync::{sync_settings, DEFAULT_CONFIG};
use super::table::Table;
use super::CliError;

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
    #[arg(long, value_name = "YYYY-MM-DD", requires = "history", value_parser = parse_since)]
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

/// `--since`: a calendar date, with an error that says the expected form.
fn parse_since(text: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").map_err(|e| {
        format!("{e}: give a calendar date as YYYY-MM-DD, for example --since 2026-08-01")
    })
}

pub async fn run(args: PlanArgs) -> Result<(), CliError> {
    let (config, store) = config_and_store(&args.config)?;
    let names = names_of(&config);
    let plan_id = ids::check_arg(
        &args.plan_id,
        ObjectKind::Plan,
        "plan",
        &names,
        Some(&store),
    )?;
    if args.history {
        return run_history(&args, &config, &store, &names, plan_id);
    }
    let rules = sync_settings(&config).rules;
    let inputs = org_data(
        &store,
        &names,
        SyncEngine::stored_rates(&store, sync_settings(&config).currency)?,
    )?;
    let today = args
        .as_of
        .unwrap_or_else(|| today_in(rules.timezone, Utc::now()));
    let b = plan_breakdown(&inputs.org, &rules, today, &plan_id).ok_or_else(|| {
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

// ---- --history ----

/// The bars of a sparkline, lowest first.
pub const SPARK_BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// At most this many of the latest changes are drawn in a sparkline (one character each).
const SPARK_WIDTH: usize = 60;

/// The instant `date` starts in `tz`: its midnight, or, where a daylight-saving change skips
/// midnight, the first local time of the day that exists.
pub fn start_of_day(date: NaiveDate, tz: chrono_tz::Tz) -> DateTime<Utc> {
    let midnight = date.and_time(chrono::NaiveTime::MIN);
    (0..=16)
        .map(|quarter| midnight + chrono::Duration::minutes(15 * quarter))
        .find_map(|local| tz.from_local_datetime(&local).earliest())
        .map_or_else(|| midnight.and_utc(), |t| t.with_timezone(&Utc))
}

/// One character per value, from the lowest bar for the smallest to the highest for the
/// largest; a blank for a null; a middle bar for every value when they are all equal.
pub fn sparkline(values: &[Option<Decimal>]) -> String {
    let present: Vec<Decimal> = values.iter().flatten().copied().collect();
    let (Some(min), Some(max)) = (present.iter().min(), present.iter().max()) else {
        return " ".repeat(values.len());
    };
    let top = Decimal::from(SPARK_BARS.len() - 1);
    values
        .iter()
        .map(|v| match v {
            None => ' ',
            Some(_) if max == min => SPARK_BARS[3],
            Some(v) => {
                let level = ((*v - *min) * top / (*max - *min)).round();
                SPARK_BARS[level.to_usize().unwrap_or(0).min(SPARK_BARS.len() - 1)]
            }
        })
        .collect()
}

/// The metrics `--history` shows: label and value of a point.
type Metric = (&'static str, fn(&HistoryPoint) -> Option<Decimal>);

const METRICS: [Metric; 6] = [
    ("won", |p| Some(p.metrics.won)),
    ("open", |p| Some(p.metrics.open)),
    ("weighted", |p| Some(p.metrics.weighted)),
    ("gap", |p| p.metrics.gap),
    ("coverage", |p| p.metrics.coverage),
    ("attainment", |p| p.metrics.attainment),
];

/// What `--history` knows about the plan besides its points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryHeader {
    pub plan_id: String,
    /// The plan's Name, when the mirror still has the plan.
    pub name: Option<String>,
    /// The plan's CurrencyIsoCode (multi-currency orgs).
    pub currency: Option<String>,
    pub since: Option<NaiveDate>,
    /// The org's time zone, whose day `since` starts.
    pub zone: String,
}

fn show_metric(label: &str, value: Option<Decimal>) -> String {
    match (label, value) {
        (_, None) => "-".into(),
        ("coverage", Some(v)) => v.to_string(),
        ("attainment", Some(v)) => format!("{v}%"),
        (_, Some(v)) => money(v),
    }
}

/// The history as text: a table of the changes, then (with `sparklines`) a trend line per
/// metric.
pub fn render_history(h: &HistoryHeader, points: &[HistoryPoint], sparklines: bool) -> String {
    let mut out = format!(
        "History of plan {} ({}), amounts in {}\n",
        h.name.as_deref().unwrap_or("(no longer in the CRM)"),
        h.plan_id,
        h.currency.as_deref().unwrap_or("the corporate currency")
    );
    if let Some(since) = h.since {
        out.push_str(&format!(
            "  changes recorded since {since} 00:00 {}\n",
            h.zone
        ));
    }
    out.push('\n');
    if points.is_empty() {
        out.push_str("No change recorded in that time.\n");
        return out;
    }
    let mut header = vec!["time (UTC)", "run"];
    header.extend(METRICS.iter().map(|(label, _)| *label));
    let mut table = Table::new(&header, &header[1..]);
    for p in points {
        let mut row = vec![
            p.recorded_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            p.run_id.to_string(),
        ];
        row.extend(
            METRICS
                .iter()
                .map(|(label, get)| show_metric(label, get(p))),
        );
        table.push(row);
    }
    out.push_str(&table.render());
    out.push('\n');
    if sparklines && !points.is_empty() {
        let shown = &points[points.len().saturating_sub(SPARK_WIDTH)..];
        out.push_str(&format!(
            "\nTrend, oldest to newest{}\n",
            if shown.len() < points.len() {
                format!(" (the last {} of {} changes)", shown.len(), points.len())
            } else {
                String::new()
            }
        ));
        for (label, get) in METRICS {
            let values: Vec<Option<Decimal>> = shown.iter().map(get).collect();
            let first = show_metric(label, values.first().copied().flatten());
            let last = show_metric(label, values.last().copied().flatten());
            out.push_str(&format!(
                "  {label:<10}  {}  {first} -> {last}\n",
                sparkline(&values)
            ));
        }
    }
    out
}

fn decimal_text(d: Option<Decimal>) -> Value {
    d.map_or(Value::Null, |d| Value::String(d.to_string()))
}

/// The history as the documented JSON object.
pub fn history_json(h: &HistoryHeader, points: &[HistoryPoint]) -> Value {
    let points: Vec<Value> = points
        .iter()
        .map(|p| {
            let mut point = json!({
                "time": p.recorded_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                "run": p.run_id,
                "currency": p.metrics.currency,
            });
            for (label, get) in METRICS {
                point[label] = decimal_text(get(p));
            }
            point
        })
        .collect();
    json!({
        "plan_id": h.plan_id,
        "name": h.name,
        "currency": h.currency,
        "since": h.since.map(|d| d.to_string()),
        "points": points,
    })
}

fn run_history(
    args: &PlanArgs,
    config: &Config,
    store: &Store,
    names: &Names,
    plan_id: String,
) -> Result<(), CliError> {
    let record = store.record(&names.plan.object, &plan_id)?;
    let all = store.plan_history(&plan_id, None)?;
    if record.is_none() && all.is_empty() {
        return Err(CliError::Admin(format!(
            "no account plan {plan_id} in the store's mirror of the CRM (deleted, mistyped, or not pulled yet: run `plansync sync`)"
        )));
    }
    let field = |name: &str| record.as_ref().and_then(|r| text(&r.fields, name));
    let header = HistoryHeader {
        plan_id: plan_id.clone(),
        name: field(&names.plan.name),
        currency: names.plan.currency.as_deref().and_then(field),
        since: args.since,
        zone: config.org.timezone.name().to_string(),
    };
    if all.is_empty() {
        let status = field(&names.plan.status).unwrap_or_else(|| "(none)".into());
        return Err(CliError::Admin(format!(
            "plan {} ({plan_id}) has no history yet: each cycle that recomputes a plan's rollups records its metrics when they change, and this plan's status is {status} ([rollups] statuses: {}); run `plansync sync` after the plan gets rollups",
            header.name.as_deref().unwrap_or("?"),
            config.rollups.statuses.join(", ")
        )));
    }
    let last = all.last().cloned();
    let points = match args.since {
        None => all,
        Some(date) => {
            let from = start_of_day(date, config.org.timezone);
            all.into_iter().filter(|p| p.recorded_at >= from).collect()
        }
    };
    if args.json {
        println!("{}", pretty(&history_json(&header, &points)));
        return Ok(());
    }
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stdout());
    print!("{}", render_history(&header, &points, terminal));
    if let Some(last) = last.filter(|_| points.is_empty()) {
        println!(
            "The last change was recorded at {} (run {}).",
            last.recorded_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            last.run_id
        );
    }
    Ok(())
}

#[cfg(test)]
mod history_tests {
    use super::*;
    use crate::store::PlanMetrics;

    fn dec(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn point(run: i64, won: &str, gap: Option<&str>) -> HistoryPoint {
        HistoryPoint {
            run_id: run,
            recorded_at: Utc.with_ymd_and_hms(2026, 8, 1, 6, 0, 0).unwrap()
                + chrono::Duration::hours(run),
            metrics: PlanMetrics {
                plan_id: "a0P000000000001AAA".into(),
                currency: Some("EUR".into()),
                won: dec(won),
                open: dec("100.00"),
                weighted: dec("25.00"),
                gap: gap.map(dec),
                coverage: None,
                attainment: Some(dec("12.50")),
            },
        }
    }

    #[test]
    fn sparklines_span_the_lowest_to_the_highest_bar() {
        let v = |xs: &[Option<&str>]| xs.iter().map(|x| x.map(dec)).collect::<Vec<_>>();
        assert_eq!(sparkline(&v(&[Some("0"), Some("70"), Some("35")])), "▁█▅");
        assert_eq!(sparkline(&v(&[Some("-5"), None, Some("9")])), "▁ █");
        assert_eq!(sparkline(&v(&[Some("3"), Some("3.00")])), "▄▄");
        assert_eq!(sparkline(&v(&[None, None])), "  ");
    }

    #[test]
    fn the_day_starts_at_midnight_in_the_org_time_zone() {
        let d = NaiveDate::from_ymd_opt(2026, 8, 1).unwrap();
        assert_eq!(
            start_of_day(d, chrono_tz::Europe::Berlin),
            Utc.with_ymd_and_hms(2026, 7, 31, 22, 0, 0).unwrap()
        );
        assert_eq!(
            start_of_day(d, chrono_tz::UTC),
            Utc.with_ymd_and_hms(2026, 8, 1, 0, 0, 0).unwrap()
        );
        // Santiago skipped midnight on 2026-09-06 (clocks went from 00:00 to 01:00).
        let gap = NaiveDate::from_ymd_opt(2026, 9, 6).unwrap();
        assert_eq!(
            start_of_day(gap, chrono_tz::America::Santiago),
            Utc.with_ymd_and_hms(2026, 9, 6, 4, 0, 0).unwrap()
        );
    }

    #[test]
    fn text_has_a_row_per_change_and_sparklines_only_when_asked() {
        let h = HistoryHeader {
            plan_id: "a0P000000000001AAA".into(),
            name: Some("Acme 2026".into()),
            currency: Some("EUR".into()),
            since: None,
            zone: "UTC".into(),
        };
        let points = [
            point(1, "1000.00", None),
            point(2, "1500.00", Some("10.00")),
        ];
        let plain = render_history(&h, &points, false);
        assert!(plain.contains("amounts in EUR"), "{plain}");
        assert!(plain.lines().any(|l| l.starts_with("2026-08-01T08:00:00Z")
            && l.contains("1,500.00")
            && l.contains("10.00")
            && l.contains("12.50%")));
        assert!(!plain.contains(SPARK_BARS), "{plain}");
        let terminal = render_history(&h, &points, true);
        assert!(
            terminal.contains("won         ▁█  1,000.00 -> 1,500.00"),
            "{terminal}"
        );
    }

    #[test]
    fn json_has_the_plan_and_every_metric_as_a_decimal_string_or_null() {
        let h = HistoryHeader {
            plan_id: "P".into(),
            name: None,
            currency: None,
            since: NaiveDate::from_ymd_opt(2026, 8, 1),
            zone: "Europe/Berlin".into(),
        };
        let v = history_json(&h, &[point(7, "1000.00", None)]);
        assert_eq!(v["since"], "2026-08-01");
        assert_eq!(v["name"], Value::Null);
        let p = &v["points"][0];
        assert_eq!(p["run"], 7);
        assert_eq!(p["time"], "2026-08-01T13:00:00.000Z");
        assert_eq!(p["won"], "1000.00");
        assert_eq!(p["gap"], Value::Null);
        assert_eq!(p["attainment"], "12.50");
        assert_eq!(p["currency"], "EUR");
    }

    #[test]
    fn a_bad_since_date_says_the_expected_form() {
        assert!(parse_since("2026-08-01").is_ok());
        let err = parse_since("2026-13-01").unwrap_err();
        assert!(err.contains("YYYY-MM-DD"), "{err}");
        assert!(parse_since("yesterday").is_err());
    }
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
