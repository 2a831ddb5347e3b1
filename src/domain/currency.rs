//! Currency conversion (design.md §3.5): single-currency orgs, static CurrencyType rates and
//! dated DatedConversionRate rates. A rate r(c) gives units of c per unit of the corporate
//! currency; x in c converts to P as x × r(P) / r(c). An unknown code is an error, never 1.0.

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
    /// DatedConversionRate rates by the opportunity's CloseDate, CurrencyType otherwise.
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
        let dated = date.and_then(|d| {
            self.dated.get(code).and_then(|ranges| {
                ranges
                    .iter()
                    .find(|r| r.start_date <= d && r.next_start_date.is_none_or(|n| d < n))
                    .map(|r| r.conversion_rate)
            })
        });
        let rate = match dated {
            Some(r) => r,
            None => *self
                .fixed
                .get(code)
                .ok_or_else(|| CurrencyError::Unknown(code.to_string()))?,
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

    /// Converts `amount` in `from` to `to`, at `date` in dated mode (a date no dated range
    /// covers, or no date, uses the CurrencyType rate). Not rounded.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::testutil::{d, dec};

    fn types() -> Vec<CurrencyType> {
        vec![
            CurrencyType {
                iso_code: "USD".into(),
                conversion_rate: dec("1"),
                is_corporate: true,
            },
            CurrencyType {
                iso_code: "EUR".into(),
                conversion_rate: dec("0.9"),
                is_corporate: false,
            },
            CurrencyType {
                iso_code: "JPY".into(),
                conversion_rate: dec("150"),
                is_corporate: false,
            },
        ]
    }

    fn dated() -> Vec<DatedConversionRate> {
        vec![
            DatedConversionRate {
                iso_code: "EUR".into(),
                start_date: d("2026-01-01"),
                next_start_date: Some(d("2026-07-01")),
                conversion_rate: dec("0.8"),
            },
            DatedConversionRate {
                iso_code: "EUR".into(),
                start_date: d("2026-07-01"),
                next_start_date: None,
                conversion_rate: dec("0.95"),
            },
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
            ("2025-12-31", "90"), // no range: CurrencyType rate
        ];
        for (date, want) in cases {
            let got = r
                .convert(dec("100"), Some("USD"), Some("EUR"), Some(d(date)))
                .unwrap();
            assert_eq!(got, dec(want), "at {date}");
        }
        assert_eq!(
            r.convert(dec("100"), Some("USD"), Some("EUR"), None),
            Ok(dec("90"))
        );
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
