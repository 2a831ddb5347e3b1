//! Each plan's headline metrics over time (`plan_history`, schema/0002_plan_history.sql): a
//! row per change, added in the transaction that queues a cycle's writes, read by `plansync
//! plan --history`. Amounts are kept as decimal text so they read back exactly.
//!
//! Cost: one indexed lookup of a plan's newest row per recomputed plan, and a row only when a
//! value changed, so a quiet org adds nothing. Rows older than the retention are pruned by
//! [`prune`], except each plan's newest (the baseline the next change is measured against).

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use rust_decimal::{Decimal, RoundingStrategy};

use super::ops::{parse_ts, ts};
use super::StoreError;

/// The metrics of one plan at one time, in the plan's currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanMetrics {
    pub plan_id: String,
    /// The plan's CurrencyIsoCode; `None` for the corporate currency of a single-currency org.
    pub currency: Option<String>,
    pub won: Decimal,
    pub open: Decimal,
    pub weighted: Decimal,
    /// Pipeline gap; `None` without a target.
    pub gap: Option<Decimal>,
    /// Coverage ratio; `None` without a target or when nothing more is needed.
    pub coverage: Option<Decimal>,
    /// Attainment, a percent; `None` without a target.
    pub attainment: Option<Decimal>,
}

impl PlanMetrics {
    /// Equal values, compared by value (10000 equals 10000.00).
    fn same_as(&self, other: &PlanMetrics) -> bool {
        self.currency == other.currency
            && self.won == other.won
            && self.open == other.open
            && self.weighted == other.weighted
            && self.gap == other.gap
            && self.coverage == other.coverage
            && self.attainment == other.attainment
    }
}

/// One recorded change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryPoint {
    pub run_id: i64,
    pub recorded_at: DateTime<Utc>,
    pub metrics: PlanMetrics,
}

/// Decimal text at the CRM fields' 2 places: "10000.00".
fn text(d: Decimal) -> String {
    let mut d = d.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
    d.rescale(2);
    d.to_string()
}

fn parse(value: Option<String>, what: &str) -> Result<Option<Decimal>, StoreError> {
    value
        .map(|s| {
            s.parse::<Decimal>().map_err(|e| StoreError::Corrupt {
                what: format!("{what}: decimal {s:?}: {e}"),
            })
        })
        .transpose()
}

type Row = (
    i64,
    String,
    Option<String>,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

const COLUMNS: &str =
    "run_id, recorded_at, currency, won, open, weighted, gap, coverage, attainment";

fn read_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    row.try_into()
}

fn to_point(plan_id: &str, r: Row) -> Result<HistoryPoint, StoreError> {
    let what = format!("history of plan {plan_id}");
    let (run_id, at, currency, won, open, weighted, gap, coverage, attainment) = r;
    let required = |v: String| -> Result<Decimal, StoreError> {
        parse(Some(v), &what).map(Option::unwrap_or_default)
    };
    let recorded_at = parse_ts(&at, &what)?;
    Ok(HistoryPoint {
        run_id,
        recorded_at,
        metrics: PlanMetrics {
            plan_id: plan_id.to_string(),
            currency,
            won: required(won)?,
            open: required(open)?,
            weighted: required(weighted)?,
            gap: parse(gap, &what)?,
            coverage: parse(coverage, &what)?,
            attainment: parse(attainment, &what)?,
        },
    })
}

fn latest(conn: &Connection, plan_id: &str) -> Result<Option<HistoryPoint>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM plan_history WHERE plan_id = ?1
         ORDER BY recorded_at DESC, id DESC LIMIT 1"
    ))?;
    let row = stmt.query_row([plan_id], read_row).optional()?;
    row.map(|r| to_point(plan_id, r)).transpose()
}

/// Adds a row for each plan whose metrics differ from its newest row (or that has none);
/// returns how many rows were added.
pub(crate) fn record(
    conn: &Connection,
    run_id: i64,
    at: DateTime<Utc>,
    metrics: &[PlanMetrics],
) -> Result<usize, StoreError> {
    let mut insert = conn.prepare_cached(
        "INSERT INTO plan_history
            (plan_id, run_id, recorded_at, currency, won, open, weighted, gap, coverage, attainment)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?;
    let mut added = 0;
    for m in metrics {
        if latest(conn, &m.plan_id)?.is_some_and(|p| p.metrics.same_as(m)) {
            continue;
        }
        insert.execute(params![
            m.plan_id,
            run_id,
            ts(at),
            m.currency,
            text(m.won),
            text(m.open),
            text(m.weighted),
            m.gap.map(text),
            m.coverage.map(text),
            m.attainment.map(text),
        ])?;
        added += 1;
    }
    Ok(added)
}

/// A plan's recorded changes, oldest first; only those recorded at or after `since` when given.
pub(crate) fn of_plan(
    conn: &Connection,
    plan_id: &str,
    since: Option<DateTime<Utc>>,
) -> Result<Vec<HistoryPoint>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM plan_history WHERE plan_id = ?1 AND recorded_at >= ?2
         ORDER BY recorded_at, id"
    ))?;
    let from = since.map(ts).unwrap_or_default();
    let rows = stmt.query_map(params![plan_id, from], read_row)?;
    rows.map(|r| to_point(plan_id, r?)).collect()
}

/// Deletes rows recorded before `older_than`, keeping each plan's newest row whatever its age;
/// returns how many were deleted.
pub(crate) fn prune(conn: &Connection, older_than: DateTime<Utc>) -> Result<usize, StoreError> {
    Ok(conn.execute(
        "DELETE FROM plan_history AS h
         WHERE h.recorded_at < ?1
           AND EXISTS (SELECT 1 FROM plan_history AS n
                       WHERE n.plan_id = h.plan_id
                         AND (n.recorded_at > h.recorded_at
                              OR (n.recorded_at = h.recorded_at AND n.id > h.id)))",
        [ts(older_than)],
    )?)
}
