//! The org's currencies (design.md §3.5), read whole at the start of every cycle: which
//! currency mode this cycle uses, the conversion rates, and their fingerprint, whose change
//! makes the cycle recompute every plan (every converted amount moves).
//!
//! The fingerprint is a text of its own stable format ([`fingerprint`]), not the `Debug`
//! output of the rates, so a change of field order or of a dependency's `Debug` text cannot
//! trigger a recompute of everything, nor hide a change.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use tracing::warn;

use crate::crm::{CrmError, PageRead, QueryPage, COMPOSITE_MAX_QUERY_OR_COLLECTIONS};
use crate::domain::{CurrencyMode, CurrencyType, DatedConversionRate, Rates};
use crate::store::Store;

use super::pull::Prefetched;
use super::reads::{read_pages, Source};
use super::report::CycleReport;
use super::{compute, convert, off_worker, Hooks, SyncEngine, SyncError};

/// The meta key holding the conversion rates the last full recompute used (their
/// [`fingerprint`]).
pub(super) const RATES_FINGERPRINT: &str = "rates_fingerprint";

/// The meta key holding the conversion rates the last cycle read.
const CURRENCY_RATES: &str = "currency_rates";

/// The meta key holding the currency mode the last cycle used (`single`, `static`, `dated`).
pub const CURRENCY_MODE: &str = "currency_mode";

/// The finding kind of an explicit `single` mode on a multi-currency org.
pub const CURRENCY_MODE_FINDING: &str = "currency_mode";

/// A row of a query.
type Row = serde_json::Map<String, serde_json::Value>;

/// A currency mode's name, as the configuration spells it.
pub fn mode_name(mode: CurrencyMode) -> &'static str {
    match mode {
        CurrencyMode::Single => "single",
        CurrencyMode::Static => "static",
        CurrencyMode::Dated => "dated",
    }
}

/// What a cycle's read of the org's currencies found.
pub(super) struct CurrencyRead {
    pub rates: Rates,
    /// The rates' [`fingerprint`].
    pub fingerprint: String,
    /// Why the configured mode does not fit the org (an explicit `single` on a
    /// multi-currency org).
    pub mismatch: Option<String>,
    /// Records were mirrored while the org looked single-currency, without their currency
    /// code: this cycle pulls everything again.
    pub refresh: bool,
}

impl CurrencyRead {
    fn new(
        mode: CurrencyMode,
        types: &[CurrencyType],
        dated: &[DatedConversionRate],
        mismatch: Option<String>,
    ) -> Self {
        CurrencyRead {
            rates: Rates::from_records(mode, types, dated),
            fingerprint: fingerprint(mode, types, dated),
            mismatch,
            refresh: false,
        }
    }
}

/// The conversion rates `Rates::from_records(mode, types, dated)` holds, as a text that
/// changes exactly when they do: a first line `rates v1`, then `mode <name>`, then (except in
/// `single`, which converts nothing) `corporate <code>` when there is one, `rate <code>
/// <rate>` per currency by code, and in `dated` mode `dated <code> <start> <next start or ->
/// <rate>` per period by code and start date; one item a line, rates normalized (`0.90` is
/// `0.9`). A currency listed twice counts with its last rate, as in the conversion.
pub fn fingerprint(
    mode: CurrencyMode,
    types: &[CurrencyType],
    dated: &[DatedConversionRate],
) -> String {
    let mut lines = vec!["rates v1".to_string(), format!("mode {}", mode_name(mode))];
    if mode == CurrencyMode::Single {
        return lines.join("\n");
    }
    if let Some(corporate) = types.iter().find(|t| t.is_corporate) {
        lines.push(format!("corporate {}", corporate.iso_code));
    }
    let fixed: BTreeMap<&str, Decimal> = types
        .iter()
        .map(|t| (t.iso_code.as_str(), t.conversion_rate))
        .collect();
    lines.extend(
        fixed
            .iter()
            .map(|(code, rate)| format!("rate {code} {}", rate.normalize())),
    );
    if mode == CurrencyMode::Dated {
        let mut periods: Vec<String> = dated
            .iter()
            .map(|d| {
                let next = d
                    .next_start_date
                    .map_or_else(|| "-".to_string(), |n| n.to_string());
                format!(
                    "dated {} {} {next} {}",
                    d.iso_code,
                    d.start_date,
                    d.conversion_rate.normalize()
                )
            })
            .collect();
        periods.sort();
        lines.extend(periods);
    }
    lines.join("\n")
}

/// Whether the rates differ from the ones the last full recompute used (`stored`; `None`
/// before any, and a fingerprint of another format never matches): then every plan is
/// recomputed once.
pub fn rates_changed(stored: Option<&str>, fingerprint: &str) -> bool {
    stored != Some(fingerprint)
}

/// Whether records mirrored so far lack their currency code and must be pulled again: the
/// org is multi-currency now, and the last cycle saw it single-currency (or there was none).
pub fn needs_refresh(mode: CurrencyMode, previous_mode: Option<&str>) -> bool {
    mode != CurrencyMode::Single && previous_mode.is_none_or(|m| m == "single")
}

impl SyncEngine {
    /// The currency step: reads the org's currencies and the mode they give this cycle, sets
    /// the names up for it (plans and opportunities carry a currency code to pull on a
    /// multi-currency org) and says whether the mirror needs a refresh. `prefetch` are object
    /// queries the same composite call may carry (the first of the pull); their first pages
    /// come back by SOQL, for the pull to use when its queries turn out the same.
    pub(super) async fn currency(
        &mut self,
        prefetch: Vec<String>,
        hooks: &Hooks<'_>,
        report: &mut CycleReport,
    ) -> Result<(CurrencyRead, Prefetched), SyncError> {
        let previous_mode = off_worker(|| self.store.meta(CURRENCY_MODE))?;
        let (mut read, prefetched) = self.read_rates(prefetch, hooks).await?;
        let mode = read.rates.mode();
        self.settings
            .names
            .set_multi_currency(mode != CurrencyMode::Single);
        report.currency_mode = Some(mode_name(mode).to_string());
        read.refresh = needs_refresh(mode, previous_mode.as_deref());
        Ok((read, prefetched))
    }

    /// Whether the plans and opportunities are pulled with their currency code, as the last
    /// cycle decided (before this cycle's currency read says).
    pub(super) fn expected_multi_currency(&self) -> Result<bool, SyncError> {
        let previous = off_worker(|| self.store.meta(CURRENCY_MODE))?;
        Ok(match previous.as_deref() {
            Some("single") => false,
            Some(_) => true,
            None => self.settings.names.plan.currency.is_some(),
        })
    }

    /// The currency queries (CurrencyType, then DatedConversionRate when the configured mode
    /// may use it) and `prefetch` in one composite call when the org serves it: the rows of
    /// each currency query (or its error), and the first page of each prefetched query.
    #[allow(clippy::type_complexity)]
    async fn currency_rows(
        &self,
        queries: Vec<String>,
        prefetch: Vec<String>,
        hooks: &Hooks<'_>,
    ) -> Result<(Vec<Result<Vec<Row>, SyncError>>, Prefetched), SyncError> {
        let mut prefetched = Prefetched::new();
        let mut sources: Vec<Source> = queries
            .iter()
            .map(|q| Source::Query {
                soql: q.clone(),
                include_deleted: false,
            })
            .collect();
        let mut failed: Vec<Option<CrmError>> = queries.iter().map(|_| None).collect();
        if self.composite.usable() {
            let room = COMPOSITE_MAX_QUERY_OR_COLLECTIONS.saturating_sub(queries.len());
            let prefetch: Vec<String> = prefetch.into_iter().take(room).collect();
            let reads: Vec<PageRead> = queries
                .iter()
                .map(|q| PageRead::query(q, false, 0))
                .chain(prefetch.iter().map(|q| PageRead::query(q, true, 0)))
                .collect();
            match self.crm.query_pages_composite(&reads).await {
                Ok(results) => {
                    let mut results = results.into_iter();
                    for i in 0..queries.len() {
                        match results.next() {
                            Some(Ok(pages)) => {
                                // The rest of its pages, if any, are read from there.
                                sources[i] =
                                    Source::Page(pages.into_iter().next().unwrap_or(QueryPage {
                                        total_size: 0,
                                        done: true,
                                        next_records_url: None,
                                        records: Vec::new(),
                                    }));
                            }
                            Some(Err(e)) => failed[i] = Some(e),
                            None => {}
                        }
                    }
                    for (soql, result) in prefetch.into_iter().zip(results) {
                        if let Some(page) = result.ok().and_then(|p| p.into_iter().next()) {
                            prefetched.insert(soql, page);
                        }
                    }
                }
                Err(e) if self.composite.refused_by(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
        // A query the composite call answered with an error is not asked again.
        let done = || QueryPage {
            total_size: 0,
            done: true,
            next_records_url: None,
            records: Vec::new(),
        };
        for (source, failure) in sources.iter_mut().zip(&failed) {
            if failure.is_some() {
                *source = Source::Page(done());
            }
        }
        let mut rows: Vec<Vec<Row>> = vec![Vec::new(); queries.len()];
        let outcomes = read_pages(
            &self.crm,
            &self.composite,
            1,
            sources,
            hooks.stop,
            |i, mut page| {
                rows[i].append(&mut page.records);
                Ok(())
            },
        )
        .await?;
        let out = outcomes
            .into_iter()
            .zip(rows)
            .zip(failed)
            .map(|((outcome, rows), failure)| match failure {
                Some(e) => Err(SyncError::from(e)),
                None => outcome.map(|()| rows).map_err(SyncError::from),
            })
            .collect();
        Ok((out, prefetched))
    }

    /// The org's conversion rates, read whole every cycle (a few rows), and the currency mode
    /// they give this cycle. CurrencyType is read in every mode: its absence (the CRM does not
    /// know the object) makes a single-currency org. `auto` is `dated` when
    /// DatedConversionRate has rows, else `static`, on a multi-currency org, and `single`
    /// otherwise. An explicit `single` on a multi-currency org converts nothing and says so.
    async fn read_rates(
        &mut self,
        prefetch: Vec<String>,
        hooks: &Hooks<'_>,
    ) -> Result<(CurrencyRead, Prefetched), SyncError> {
        use crate::config::CurrencyMode as Configured;
        let configured = self.settings.currency;
        let n = self.settings.names.currency.clone();
        let tolerate_absence = matches!(configured, Configured::Auto | Configured::Single);
        let types_query = format!(
            "SELECT {}, {}, {} FROM {}",
            n.iso_code, n.conversion_rate, n.is_corporate, n.currency_type
        );
        let dated_query = format!(
            "SELECT {}, {}, {}, {} FROM {}",
            n.dated_iso_code,
            n.dated_conversion_rate,
            n.start_date,
            n.next_start_date,
            n.dated_rate
        );
        let mut queries = vec![types_query];
        if matches!(configured, Configured::Auto | Configured::Dated) {
            queries.push(dated_query);
        }
        let (results, prefetched) = self.currency_rows(queries, prefetch, hooks).await?;
        let mut results = results.into_iter();
        let types = results.next().unwrap_or_else(|| Ok(Vec::new()));
        let dated = results.next();
        let types = match types {
            Ok(rows) => rows,
            Err(e) if tolerate_absence && is_unknown_object(&e) => {
                off_worker(|| self.store.set_meta(CURRENCY_RATES, ""))?;
                let read = CurrencyRead::new(CurrencyMode::Single, &[], &[], None);
                return Ok((read, prefetched));
            }
            Err(e) => return Err(e),
        };
        let types = types
            .iter()
            .filter_map(|r| {
                Some(CurrencyType {
                    iso_code: convert::text(r, &n.iso_code)?,
                    conversion_rate: convert::decimal(r, &n.conversion_rate)?,
                    is_corporate: convert::boolean(r, &n.is_corporate),
                })
            })
            .collect::<Vec<_>>();
        if configured == Configured::Single {
            let mismatch = format!(
                "[currency] mode = \"single\" but the org is multi-currency ({} has {} currencies): amounts are summed as they are, without conversion; set [currency] mode = \"auto\"",
                n.currency_type,
                types.len()
            );
            warn!(%mismatch, "currency mode");
            let read = CurrencyRead::new(CurrencyMode::Single, &[], &[], Some(mismatch));
            return Ok((read, prefetched));
        }
        let dated_rows = match (configured, dated) {
            (Configured::Static, _) | (_, None) => Vec::new(),
            (Configured::Dated, Some(rows)) => rows?,
            (_, Some(rows)) => match rows {
                Ok(rows) => rows,
                // Advanced currency management is off: the org has no dated rates.
                Err(e) if is_unknown_object(&e) => Vec::new(),
                Err(e) => return Err(e),
            },
        };
        let dated: Vec<DatedConversionRate> = dated_rows
            .iter()
            .filter_map(|r| {
                Some(DatedConversionRate {
                    iso_code: convert::text(r, &n.dated_iso_code)?,
                    conversion_rate: convert::decimal(r, &n.dated_conversion_rate)?,
                    start_date: convert::date(r, &n.start_date)?,
                    next_start_date: convert::date(r, &n.next_start_date),
                })
            })
            .collect();
        let mode = match configured {
            Configured::Static => CurrencyMode::Static,
            Configured::Dated => CurrencyMode::Dated,
            _ if dated.is_empty() => CurrencyMode::Static,
            _ => CurrencyMode::Dated,
        };
        if !types.iter().any(|t| t.is_corporate) {
            return Err(SyncError::BadRecord {
                object: n.currency_type.clone(),
                id: "-".into(),
                why: "no currency is marked corporate: is [currency] mode right for this org?"
                    .into(),
            });
        }
        let text = compute::rates_json(&types, &dated).to_string();
        off_worker(|| self.store.set_meta(CURRENCY_RATES, &text))?;
        Ok((CurrencyRead::new(mode, &types, &dated, None), prefetched))
    }

    /// The rates the last cycle read, for commands that compute from the mirror without the
    /// CRM (`explain`, `plan`); in `auto`, in the mode that cycle used. Single-currency when
    /// the org has none.
    pub fn stored_rates(
        store: &Store,
        configured: crate::config::CurrencyMode,
    ) -> Result<Rates, SyncError> {
        use crate::config::CurrencyMode as Configured;
        let mode = match configured {
            Configured::Single => return Ok(Rates::single()),
            Configured::Static => CurrencyMode::Static,
            Configured::Dated => CurrencyMode::Dated,
            Configured::Auto => match store.meta(CURRENCY_MODE)?.as_deref() {
                Some("static") => CurrencyMode::Static,
                Some("dated") => CurrencyMode::Dated,
                _ => return Ok(Rates::single()),
            },
        };
        let Some(text) = store.meta(CURRENCY_RATES)?.filter(|t| !t.is_empty()) else {
            return Ok(Rates::single());
        };
        let (types, dated) =
            compute::rates_from_json(&text).ok_or_else(|| SyncError::BadRecord {
                object: "store".into(),
                id: CURRENCY_RATES.into(),
                why: "the stored conversion rates are unreadable; run plansync sync".into(),
            })?;
        Ok(Rates::from_records(mode, &types, &dated))
    }
}

/// The CRM does not know the object queried (`INVALID_TYPE`): a single-currency org has no
/// CurrencyType, an org without advanced currency management no DatedConversionRate.
fn is_unknown_object(e: &SyncError) -> bool {
    matches!(e, SyncError::Crm(CrmError::Api { error_code, .. }) if error_code == "INVALID_TYPE")
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;

    fn currency(code: &str, rate: &str, corporate: bool) -> CurrencyType {
        CurrencyType {
            iso_code: code.into(),
            conversion_rate: rate.parse().unwrap(),
            is_corporate: corporate,
        }
    }

    fn period(code: &str, start: &str, next: Option<&str>, rate: &str) -> DatedConversionRate {
        DatedConversionRate {
            iso_code: code.into(),
            start_date: start.parse::<NaiveDate>().unwrap(),
            next_start_date: next.map(|n| n.parse().unwrap()),
            conversion_rate: rate.parse().unwrap(),
        }
    }

    fn org() -> (Vec<CurrencyType>, Vec<DatedConversionRate>) {
        (
            vec![
                currency("USD", "1.000000", true),
                currency("EUR", "0.900000", false),
                currency("GBP", "0.8", false),
            ],
            vec![
                period("EUR", "2026-04-01", None, "0.92"),
                period("EUR", "1900-01-01", Some("2026-04-01"), "0.91"),
            ],
        )
    }

    /// The stored format, pinned: the previous fingerprint is compared to this text, so any
    /// change to it makes every store recompute everything once.
    #[test]
    fn the_fingerprint_format_is_pinned() {
        let (types, dated) = org();
        assert_eq!(
            fingerprint(CurrencyMode::Dated, &types, &dated),
            "rates v1\nmode dated\ncorporate USD\nrate EUR 0.9\nrate GBP 0.8\nrate USD 1\n\
             dated EUR 1900-01-01 2026-04-01 0.91\ndated EUR 2026-04-01 - 0.92"
        );
        assert_eq!(
            fingerprint(CurrencyMode::Static, &types, &dated),
            "rates v1\nmode static\ncorporate USD\nrate EUR 0.9\nrate GBP 0.8\nrate USD 1"
        );
        assert_eq!(
            fingerprint(CurrencyMode::Single, &types, &dated),
            "rates v1\nmode single"
        );
        assert_eq!(
            fingerprint(CurrencyMode::Single, &[], &[]),
            "rates v1\nmode single"
        );
    }

    #[test]
    fn the_fingerprint_moves_with_what_converts_and_nothing_else() {
        let (types, dated) = org();
        let base = fingerprint(CurrencyMode::Dated, &types, &dated);
        // The order the CRM lists rows in, and a rate's scale, change nothing.
        let mut shuffled_types = types.clone();
        shuffled_types.reverse();
        let mut shuffled_dated = dated.clone();
        shuffled_dated.reverse();
        shuffled_types[0].conversion_rate = "0.80000".parse().unwrap();
        assert_eq!(
            fingerprint(CurrencyMode::Dated, &shuffled_types, &shuffled_dated),
            base
        );

        let changed = |types: &[CurrencyType], dated: &[DatedConversionRate]| {
            fingerprint(CurrencyMode::Dated, types, dated) != base
        };
        let mut rate = types.clone();
        rate[1].conversion_rate = "0.95".parse().unwrap();
        assert!(changed(&rate, &dated), "a rate");
        let mut corporate = types.clone();
        corporate[0].is_corporate = false;
        corporate[1].is_corporate = true;
        assert!(changed(&corporate, &dated), "the corporate currency");
        let mut added = types.clone();
        added.push(currency("JPY", "150", false));
        assert!(changed(&added, &dated), "a new currency");
        let mut period_moved = dated.clone();
        period_moved[0].start_date = "2026-05-01".parse().unwrap();
        assert!(changed(&types, &period_moved), "a period's start");
        let mut open = dated.clone();
        open[1].next_start_date = None;
        assert!(changed(&types, &open), "a period's end");
        assert!(changed(&types, &dated[..1]), "a period removed");
        assert_ne!(
            fingerprint(CurrencyMode::Static, &types, &dated),
            base,
            "the mode"
        );
    }

    #[test]
    fn a_rates_change_is_any_difference_from_the_stored_fingerprint() {
        let (types, dated) = org();
        let now = fingerprint(CurrencyMode::Static, &types, &dated);
        // The previous release stored `Debug` text: it never matches, so the first cycle
        // after the upgrade recomputes everything once, as after a rates change.
        let debug_text = format!(
            "{:?}",
            Rates::from_records(CurrencyMode::Static, &types, &dated)
        );
        let cases = [
            (None, true),
            (Some(now.as_str()), false),
            (Some(debug_text.as_str()), true),
            (Some("rates v1\nmode single"), true),
            (Some(""), true),
        ];
        for (stored, changed) in cases {
            assert_eq!(rates_changed(stored, &now), changed, "{stored:?}");
        }
    }

    #[test]
    fn the_mirror_is_refreshed_when_the_org_turns_multi_currency() {
        use CurrencyMode::*;
        let cases = [
            (Single, None, false),
            (Single, Some("static"), false),
            (Static, None, true),
            (Static, Some("single"), true),
            (Static, Some("static"), false),
            (Dated, Some("static"), false),
            (Dated, Some("single"), true),
            (Dated, None, true),
        ];
        for (mode, previous, refresh) in cases {
            assert_eq!(
                needs_refresh(mode, previous),
                refresh,
                "{mode:?} after {previous:?}"
            );
        }
    }
}
