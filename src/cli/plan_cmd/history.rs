//! `plansync plan PLAN_ID --history`: how the plan's headline metrics moved, from the history
//! the cycles record in the store, as a table with sparklines or as JSON.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde_json::{json, Value};

use crate::store::HistoryPoint;
use crate::sync::convert::text;

use super::super::inputs::AdminInputs;
use super::super::plans::money;
use super::super::status::pretty;
use super::super::table::Table;
use super::super::CliError;
use super::{decimal_text, PlanArgs};

/// `--since`: a calendar date, with an error that says the expected form.
pub(super) fn parse_since(text: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").map_err(|e| {
        format!("{e}: give a calendar date as YYYY-MM-DD, for example --since 2026-08-01")
    })
}

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

/// `plansync plan PLAN_ID --history`.
pub(super) fn run(args: &PlanArgs, input: &AdminInputs) -> Result<(), CliError> {
    let (config, store, names) = (&input.config, &input.store, &input.names);
    let plan_id = input.id.clone();
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
mod tests {
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
