//! Currency conversion (design.md §3.5): single-currency orgs, static CurrencyType rates and
//! dated DatedConversionRate rates. A rate r(c) gives units of c per unit of the corporate
//! currency; x in c converts to P as x × r(P) / r(c). An unknown code is an error, never 1.0.
//!
//! Dated rates: a real org's first period of each currency starts at the beginning of the
//! calendar and its last one runs to the end of time (NextStartDate 9999-12-31, or null), so
//! every date has a period. A date outside every period of a currency (a gap in the org's
//! data) is an error for the record, like an unknown code: never the CurrencyType rate
//! instead. The corporate currency is the unit: without dated periods of its own its rate is
//! its CurrencyType rate (1). An amount with no date (an opportunity without CloseDate, which
//! the CRM requires and which links to no plan) converts at the CurrencyType rate.
//!
//! Cost: a lookup is a binary search over one currency's periods.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use rust_decimal::Decimal;

/// `[currency] mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CurrencyMode {
    /// One currency: amounts are used as they are.
    #[default]
    Single,
    /// CurrencyType rates.
    Static,
    /// DatedConversionRate rates by the opportunity's CloseDate.
    Dated,
}

/// A CurrencyType record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrencyType {
    pub iso_code: String,
    pub conversion_rate: Decimal,
    pub is_corporate: bool,
}

/// A DatedConversionRate record: `conversion_rate` applies on [start_date, next_start_date).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatedConversionRate {
    pub iso_code: String,
    pub start_date: NaiveDate,
    /// `None` means open-ended.
    pub next_start_date: Option<NaiveDate>,
    pub conversion_rate: Decimal,
}

/// Why an amount could not be converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CurrencyError {
    #[error("currency {0:?} has no conversion rate (add it to CurrencyType, or fix the record)")]
    Unknown(String),
    #[error("currency {0:?} has a conversion rate of zero or less")]
    BadRate(String),
    #[error("the org is multi-currency but has no corporate currency in CurrencyType")]
    NoCorporate,
    /// Dated mode: no DatedConversionRate period of `code` contains `date`.
    #[error("no dated conversion rate of {code} covers {date} (DatedConversionRate leaves a gap there; add a period that covers it)")]
    NoDatedRate { code: String, date: NaiveDate },
}

impl CurrencyError {
    /// The currency code the error is about, when there is one.
    pub fn code(&self) -> Option<&str> {
        match self {
            CurrencyError::Unknown(c) | CurrencyError::BadRate(c) => Some(c),
            CurrencyError::NoDatedRate { code, .. } => Some(code),
            CurrencyError::NoCorporate => None,
        }
    }
}

/// Longest text the plan's Sync_Problem__c (a 255-character TextArea) takes.
pub const SYNC_PROBLEM_MAX_CHARS: usize = 255;

/// The short reason written to a frozen plan's Sync_Problem__c: what could not be converted
/// and which record holds it (`record` is the opportunity, or the plan itself when its own
/// currency has no rate). At most [`SYNC_PROBLEM_MAX_CHARS`] characters, cut at a character
/// boundary.
pub fn frozen_reason(error: &CurrencyError, record: &str, is_plan: bool) -> String {
    let what = match error {
        CurrencyError::Unknown(code) => format!("no rate for currency {code}"),
        CurrencyError::BadRate(code) => format!("the {code} rate is zero or less"),
        CurrencyError::NoCorporate => "the org has no corporate currency".to_string(),
        CurrencyError::NoDatedRate { code, date } => format!("no {code} rate for {date}"),
    };
    let whose = if is_plan {
        format!("this plan's currency, {record}")
    } else {
        format!("Opportunity {record}")
    };
    truncate_chars(
        &format!("Rollups frozen: {what} ({whose})"),
        SYNC_PROBLEM_MAX_CHARS,
    )
}

/// `text` cut to at most `max` characters (never inside a character).
pub fn truncate_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => text[..at].to_string(),
        None => text.to_string(),
    }
}

/// The org's conversion rates.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rates {
    mode: CurrencyMode,
    corporate: Option<String>,
    fixed: BTreeMap<String, Decimal>,
    /// Per code, ranges sorted by start date.
    dated: BTreeMap<String, Vec<DatedConversionRate>>,
}

impl Rates {
    /// A single-currency org: no conversion.
    pub fn single() -> Self {
        Rates::default()
    }

    /// Rates of a multi-currency org from its CurrencyType and (for `Dated`) DatedConversionRate
    /// records. `Single` ignores the records.
    pub fn from_records(
        mode: CurrencyMode,
        currency_types: &[CurrencyType],
        dated: &[DatedConversionRate],
    ) -> Self {
        if mode == CurrencyMode::Single {
            return Rates::single();
        }
        let corporate = currency_types
            .iter()
            .find(|c| c.is_corporate)
            .map(|c| c.iso_code.clone());
        let fixed = currency_types
            .iter()
            .map(|c| (c.iso_code.clone(), c.conversion_rate))
            .collect();
        let mut by_code: BTreeMap<String, Vec<DatedConversionRate>> = BTreeMap::new();
        if mode == CurrencyMode::Dated {
            for d in dated {
                by_code
                    .entry(d.iso_code.clone())
                    .or_default()
                    .push(d.clone());
            }
            for ranges in by_code.values_mut() {
                ranges.sort_by_key(|r| r.start_date);
            }
        }
        Rates {
            mode,
            corporate,
            fixed,
            dated: by_code,
        }
    }

    pub fn mode(&self) -> CurrencyMode {
        self.mode
    }

    /// r(code, date); `None` code means the corporate currency.
    fn rate(&self, code: Option<&str>, date: Option<NaiveDate>) -> Result<Decimal, CurrencyError> {
        let code = match code {
            Some(c) => c,
            None => self
                .corporate
                .as_deref()
                .ok_or(CurrencyError::NoCorporate)?,
        };
        let fixed = *self
            .fixed
            .get(code)
            .ok_or_else(|| CurrencyError::Unknown(code.to_string()))?;
        let rate = match (self.mode, date) {
            (CurrencyMode::Dated, Some(d)) => match self.dated.get(code) {
                Some(periods) => {
                    dated_rate(periods, d).ok_or_else(|| CurrencyError::NoDatedRate {
                        code: code.to_string(),
                        date: d,
                    })?
                }
                None if self.corporate.as_deref() == Some(code) => fixed,
                None => {
                    return Err(CurrencyError::NoDatedRate {
                        code: code.to_string(),
                        date: d,
                    })
                }
            },
            _ => fixed,
        };
        if rate <= Decimal::ZERO {
            return Err(CurrencyError::BadRate(code.to_string()));
        }
        Ok(rate)
    }

    /// Checks that a currency code has a rate (always true in a single-currency org).
    pub fn check(&self, code: Option<&str>) -> Result<(), CurrencyError> {
        match self.mode {
            CurrencyMode::Single => Ok(()),
            _ => self.rate(code, None).map(|_| ()),
        }
    }

    /// Converts `amount` in `from` to `to`, at `date` in dated mode (a date no dated period
    /// of either currency covers is [`CurrencyError::NoDatedRate`]; no date uses the
    /// CurrencyType rates). Not rounded.
    pub fn convert(
        &self,
        amount: Decimal,
        from: Option<&str>,
        to: Option<&str>,
        date: Option<NaiveDate>,
    ) -> Result<Decimal, CurrencyError> {
        if self.mode == CurrencyMode::Single {
            return Ok(amount);
        }
        let date = if self.mode == CurrencyMode::Dated {
            date
        } else {
            None
        };
        let r_from = self.rate(from, date)?;
        let r_to = self.rate(to, date)?;
        if r_from == r_to {
            return Ok(amount);
        }
        Ok(amount * r_to / r_from)
    }
}

/// The rate of the period containing `d`: [StartDate, NextStartDate), a missing
/// NextStartDate meaning open-ended. `periods` are sorted by start date.
fn dated_rate(periods: &[DatedConversionRate], d: NaiveDate) -> Option<Decimal> {
    let after = periods.partition_point(|p| p.start_date <= d);
    let p = periods.get(after.checked_sub(1)?)?;
    p.next_start_date
        .is_none_or(|n| d < n)
        .then_some(p.conversion_rate)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::testutil::{currency_type, d, dated_rate, dec};

    fn types() -> Vec<CurrencyType> {
        vec![
            currency_type("USD", "1", true),
            currency_type("EUR", "0.9", false),
            currency_type("JPY", "150", false),
        ]
    }

    fn dated() -> Vec<DatedConversionRate> {
        vec![
            dated_rate("EUR", "2026-01-01", Some("2026-07-01"), "0.8"),
            dated_rate("EUR", "2026-07-01", None, "0.95"),
        ]
    }

    #[test]
    fn single_mode_never_converts_and_knows_every_code() {
        let r = Rates::single();
        assert_eq!(
            r.convert(dec("12.5"), Some("XXX"), Some("EUR"), None),
            Ok(dec("12.5"))
        );
        assert_eq!(r.check(Some("XXX")), Ok(()));
    }

    #[test]
    fn static_mode_converts_through_the_corporate_currency() {
        let r = Rates::from_records(CurrencyMode::Static, &types(), &dated());
        // (from, to, amount, expected): x × r(to) / r(from)
        let cases = [
            ("USD", "EUR", "100", "90"),
            ("EUR", "USD", "90", "100"),
            ("EUR", "JPY", "9", "1500"),
            ("JPY", "JPY", "7", "7"),
        ];
        for (from, to, x, want) in cases {
            let got = r
                .convert(dec(x), Some(from), Some(to), Some(d("2026-03-01")))
                .unwrap();
            assert_eq!(got, dec(want), "{x} {from} -> {to}");
        }
        // No code means the corporate currency.
        assert_eq!(
            r.convert(dec("100"), None, Some("EUR"), None),
            Ok(dec("90"))
        );
    }

    #[test]
    fn dated_mode_uses_the_range_containing_the_date_start_inclusive_next_start_exclusive() {
        let r = Rates::from_records(CurrencyMode::Dated, &types(), &dated());
        let cases = [
            ("2026-01-01", "80"), // first day of the first range
            ("2026-06-30", "80"), // last day before NextStartDate
            ("2026-07-01", "95"), // NextStartDate starts the next range
            ("2030-01-01", "95"), // open-ended range
        ];
        for (date, want) in cases {
            let got = r
                .convert(dec("100"), Some("USD"), Some("EUR"), Some(d(date)))
                .unwrap();
            assert_eq!(got, dec(want), "at {date}");
        }
        // No date (an opportunity without CloseDate): the CurrencyType rate.
        assert_eq!(
            r.convert(dec("100"), Some("USD"), Some("EUR"), None),
            Ok(dec("90"))
        );
    }

    #[test]
    fn a_date_before_every_dated_period_is_an_error_not_the_currency_type_rate() {
        let r = Rates::from_records(CurrencyMode::Dated, &types(), &dated());
        let gap = Err(CurrencyError::NoDatedRate {
            code: "EUR".into(),
            date: d("2025-12-31"),
        });
        // Either side of the conversion: the opportunity's currency or the plan's.
        assert_eq!(
            r.convert(dec("100"), Some("USD"), Some("EUR"), Some(d("2025-12-31"))),
            gap
        );
        assert_eq!(
            r.convert(dec("100"), Some("EUR"), Some("USD"), Some(d("2025-12-31"))),
            gap
        );
        // Static mode ignores the periods.
        let s = Rates::from_records(CurrencyMode::Static, &types(), &dated());
        assert_eq!(
            s.convert(dec("100"), Some("USD"), Some("EUR"), Some(d("2025-12-31"))),
            Ok(dec("90"))
        );
    }

    #[test]
    fn a_gap_between_two_periods_is_an_error_and_the_periods_either_side_still_convert() {
        let mut periods = dated();
        // The first period now ends a month early: June 2026 has no rate.
        periods[0].next_start_date = Some(d("2026-06-01"));
        let r = Rates::from_records(CurrencyMode::Dated, &types(), &periods);
        let at = |date: &str| r.convert(dec("100"), Some("USD"), Some("EUR"), Some(d(date)));
        assert_eq!(at("2026-05-31"), Ok(dec("80")));
        assert_eq!(
            at("2026-06-15"),
            Err(CurrencyError::NoDatedRate {
                code: "EUR".into(),
                date: d("2026-06-15")
            })
        );
        assert_eq!(at("2026-07-01"), Ok(dec("95")));
    }

    #[test]
    fn periods_shaped_as_a_real_org_keeps_them_cover_every_date() {
        // The first period starts at the beginning of the calendar, the last one's
        // NextStartDate is 9999-12-31.
        let periods = vec![
            dated_rate("JPY", "0001-01-01", Some("2026-01-01"), "140"),
            dated_rate("JPY", "2026-01-01", Some("9999-12-31"), "160"),
        ];
        let r = Rates::from_records(CurrencyMode::Dated, &types(), &periods);
        let at = |date: &str| r.convert(dec("1"), Some("USD"), Some("JPY"), Some(d(date)));
        assert_eq!(at("1999-06-30"), Ok(dec("140")));
        assert_eq!(at("2025-12-31"), Ok(dec("140")));
        assert_eq!(at("2026-01-01"), Ok(dec("160")));
        assert_eq!(at("9999-12-30"), Ok(dec("160")));
        // The corporate currency needs no periods of its own (it is the unit); another
        // currency without any is not covered.
        assert_eq!(
            r.convert(dec("7"), Some("USD"), Some("USD"), Some(d("2026-03-01"))),
            Ok(dec("7"))
        );
        assert_eq!(
            r.convert(dec("1"), Some("EUR"), Some("JPY"), Some(d("2026-03-01"))),
            Err(CurrencyError::NoDatedRate {
                code: "EUR".into(),
                date: d("2026-03-01")
            })
        );
    }

    #[test]
    fn the_sync_problem_text_names_currency_date_and_record_within_255_characters() {
        let gap = CurrencyError::NoDatedRate {
            code: "JPY".into(),
            date: d("2026-03-31"),
        };
        assert_eq!(
            frozen_reason(&gap, "006000000000001AAA", false),
            "Rollups frozen: no JPY rate for 2026-03-31 (Opportunity 006000000000001AAA)"
        );
        assert_eq!(
            frozen_reason(
                &CurrencyError::Unknown("XTS".into()),
                "a0P000000000001AAA",
                true
            ),
            "Rollups frozen: no rate for currency XTS (this plan's currency, a0P000000000001AAA)"
        );
        // A long code of multi-byte characters is cut at a character boundary.
        let long = CurrencyError::Unknown("€".repeat(300));
        let text = frozen_reason(&long, "006000000000001AAA", false);
        assert_eq!(text.chars().count(), SYNC_PROBLEM_MAX_CHARS);
        assert!(text.ends_with('€'));
        assert_eq!(truncate_chars("abc", 2), "ab");
        assert_eq!(truncate_chars("abc", 5), "abc");
    }

    #[test]
    fn unknown_currency_is_an_error_not_a_rate_of_one() {
        for mode in [CurrencyMode::Static, CurrencyMode::Dated] {
            let r = Rates::from_records(mode, &types(), &dated());
            assert_eq!(
                r.convert(dec("1"), Some("GBP"), Some("USD"), Some(d("2026-03-01"))),
                Err(CurrencyError::Unknown("GBP".into()))
            );
            assert_eq!(
                r.convert(dec("1"), Some("USD"), Some("GBP"), None),
                Err(CurrencyError::Unknown("GBP".into()))
            );
            assert!(r.check(Some("GBP")).is_err());
            assert!(r.check(Some("EUR")).is_ok());
        }
    }
}
