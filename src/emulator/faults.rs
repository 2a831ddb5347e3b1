//! Fault injection: the `--faults` spec string, its parser, and the per-request decisions the
//! server takes from it (503, 500, session expiry, dropped connection, slow response, query
//! timeout, per-record row locks, and records that always fail a validation rule).
//!
//! # The spec
//! A comma-separated list of items; an empty string means no faults.
//!
//! | item | meaning |
//! |---|---|
//! | `seed=N` | seed of the random draws (default 0): the same seed gives the same faults at the same request numbers |
//! | `503=P` | probability P (0..=1) that a request answers 503 `SERVER_UNAVAILABLE` |
//! | `500=P` | 500 `UNKNOWN_EXCEPTION` |
//! | `expire=P` | the request's session is invalidated and it answers 401 `INVALID_SESSION_ID` |
//! | `drop=P` | the connection is closed without a response |
//! | `slow=P:MS` | the response is delayed by MS milliseconds (`slow=P` uses `slow-ms`, default 3000) |
//! | `slow-ms=MS` | the delay of slow responses |
//! | `timeout=P` | a query answers 400 `QUERY_TIMEOUT` (other requests are not affected) |
//! | `lock=P` | each record of an sObject Collections request fails with `UNABLE_TO_LOCK_ROW` with probability P |
//! | `KIND@N,M,...` | schedule: KIND (one of the kinds above, without a rate) hits data requests number N, M, ... exactly; `lock@N` locks every record of request N |
//! | `fail-record=NAME` | updates of the record named NAME fail a validation rule (the last one given applies) |
//! | `connect-drop@N,M,...` | CometD `/meta/connect` number N, M, ... has its connection closed without an answer |
//! | `connect-forget@N,...` | `/meta/connect` number N answers `403::Unknown client` (the client is forgotten) |
//! | `connect-expire@N,...` | `/meta/connect` number N ends the session it carries and answers `401::Authentication invalid` |
//!
//! Requests are numbered from 1 among the authenticated data requests (`/services/data/vXX.X/...`)
//! since the faults were set; `connect-*` items number the CometD `/meta/connect` messages
//! since the faults were set, separately. The request-level rates are exclusive: one draw per request picks at
//! most one kind, so their sum must not exceed 1.

use std::collections::BTreeMap;
use std::fmt;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A kind of injected fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FaultKind {
    /// 503 `SERVER_UNAVAILABLE`.
    Unavailable,
    /// 500 `UNKNOWN_EXCEPTION`.
    Internal,
    /// The session is invalidated: 401 `INVALID_SESSION_ID`.
    Expire,
    /// The connection is closed without a response.
    Drop,
    /// The response is delayed.
    Slow,
    /// A query answers 400 `QUERY_TIMEOUT`.
    Timeout,
    /// Records of a collections request fail with `UNABLE_TO_LOCK_ROW`.
    Lock,
}

impl FaultKind {
    const ALL: [FaultKind; 7] = [
        FaultKind::Unavailable,
        FaultKind::Internal,
        FaultKind::Expire,
        FaultKind::Drop,
        FaultKind::Slow,
        FaultKind::Timeout,
        FaultKind::Lock,
    ];

    /// The name used in the spec string.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Unavailable => "503",
            FaultKind::Internal => "500",
            FaultKind::Expire => "expire",
            FaultKind::Drop => "drop",
            FaultKind::Slow => "slow",
            FaultKind::Timeout => "timeout",
            FaultKind::Lock => "lock",
        }
    }

    fn from_name(name: &str) -> Option<FaultKind> {
        FaultKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

const ALLOWED: &str =
    "seed=N, 503=P, 500=P, expire=P, drop=P, slow=P[:MS], slow-ms=MS, timeout=P, \
lock=P, KIND@N[,N...] (KIND one of 503, 500, expire, drop, slow, timeout, lock, connect-drop, \
connect-forget, connect-expire), fail-record=NAME";

/// A fault of a CometD `/meta/connect` message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConnectFault {
    /// The connection is closed without an answer.
    Drop,
    /// The client is forgotten: `403::Unknown client`.
    Forget,
    /// The session is ended: `401::Authentication invalid`.
    Expire,
}

impl ConnectFault {
    const ALL: [ConnectFault; 3] = [
        ConnectFault::Drop,
        ConnectFault::Forget,
        ConnectFault::Expire,
    ];

    /// The name used in the spec string.
    pub fn name(self) -> &'static str {
        match self {
            ConnectFault::Drop => "connect-drop",
            ConnectFault::Forget => "connect-forget",
            ConnectFault::Expire => "connect-expire",
        }
    }

    fn from_name(name: &str) -> Option<ConnectFault> {
        ConnectFault::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// What a schedule item being read applies to.
#[derive(Debug, Clone, Copy)]
enum Scheduled {
    Request(FaultKind),
    Connect(ConnectFault),
}

/// Why a fault spec string was refused; each names the bad part.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FaultSpecError {
    #[error("fault spec item {item:?} is not understood; allowed items: {ALLOWED}")]
    UnknownItem { item: String },
    #[error("fault spec item {item:?}: {value:?} is not a probability between 0 and 1")]
    BadRate { item: String, value: String },
    #[error("fault spec item {item:?}: {value:?} is not a whole number")]
    BadNumber { item: String, value: String },
    #[error("fault spec item {item:?}: request numbers start at 1")]
    ZeroRequest { item: String },
    #[error("fault spec: request {request} is scheduled for both {first} and {second}")]
    DoubleSchedule {
        request: u64,
        first: &'static str,
        second: &'static str,
    },
    #[error("fault spec: the request-level rates add up to {sum}, more than 1")]
    RatesAboveOne { sum: f64 },
    #[error("fault spec item {item:?}: a record name is needed after fail-record=")]
    EmptyRecordName { item: String },
}

/// A parsed fault spec. `FaultSpec::default()` injects nothing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultSpec {
    pub seed: u64,
    /// Request-level probabilities, in the order of [`FaultKind`] (excluding `Lock`).
    pub rates: BTreeMap<FaultKind, f64>,
    /// Per-record probability of `UNABLE_TO_LOCK_ROW` in collections requests.
    pub lock_rate: f64,
    /// Delay of a slow response, in milliseconds.
    pub slow_ms: u64,
    /// Request number → the fault it gets.
    pub schedule: BTreeMap<u64, FaultKind>,
    /// Names of records that always fail a validation rule.
    pub fail_records: Vec<String>,
    /// CometD `/meta/connect` number → the fault it gets.
    pub connect_schedule: BTreeMap<u64, ConnectFault>,
}

const DEFAULT_SLOW_MS: u64 = 3000;

impl FaultSpec {
    /// Parses a spec string (see the module documentation).
    pub fn parse(text: &str) -> Result<FaultSpec, FaultSpecError> {
        let mut spec = FaultSpec {
            slow_ms: DEFAULT_SLOW_MS,
            ..FaultSpec::default()
        };
        // The kind of the schedule item being read, so that `503@5,9` continues with `9`.
        let mut scheduling: Option<(Scheduled, String)> = None;
        for raw in text.split(',') {
            let item = raw.trim();
            if item.is_empty() {
                continue;
            }
            if let Some((kind, head)) = &scheduling {
                if item.bytes().all(|b| b.is_ascii_digit()) {
                    let n = parse_request(head, item)?;
                    spec.add_scheduled(n, *kind)?;
                    continue;
                }
            }
            scheduling = None;
            if let Some((kind, first)) = item.split_once('@') {
                let kind = kind.trim();
                let kind = match (FaultKind::from_name(kind), ConnectFault::from_name(kind)) {
                    (Some(k), _) => Scheduled::Request(k),
                    (None, Some(k)) => Scheduled::Connect(k),
                    (None, None) => return Err(unknown(item)),
                };
                let n = parse_request(item, first.trim())?;
                spec.add_scheduled(n, kind)?;
                scheduling = Some((kind, item.to_string()));
                continue;
            }
            let (key, value) = item.split_once('=').ok_or_else(|| unknown(item))?;
            let (key, value) = (key.trim(), value.trim());
            match key {
                "seed" => spec.seed = parse_number(item, value)?,
                "slow-ms" => spec.slow_ms = parse_number(item, value)?,
                "fail-record" => {
                    if value.is_empty() {
                        return Err(FaultSpecError::EmptyRecordName { item: item.into() });
                    }
                    spec.fail_records.push(value.to_string());
                }
                "lock" => spec.lock_rate = parse_rate(item, value)?,
                "slow" => {
                    let (rate, ms) = match value.split_once(':') {
                        Some((rate, ms)) => (rate, Some(ms)),
                        None => (value, None),
                    };
                    spec.rates.insert(FaultKind::Slow, parse_rate(item, rate)?);
                    if let Some(ms) = ms {
                        spec.slow_ms = parse_number(item, ms)?;
                    }
                }
                other => match FaultKind::from_name(other) {
                    Some(kind) if kind != FaultKind::Lock => {
                        spec.rates.insert(kind, parse_rate(item, value)?);
                    }
                    _ => return Err(unknown(item)),
                },
            }
        }
        let sum: f64 = spec.rates.values().sum();
        if sum > 1.0 + 1e-9 {
            return Err(FaultSpecError::RatesAboveOne { sum });
        }
        Ok(spec)
    }

    fn add_scheduled(&mut self, n: u64, kind: Scheduled) -> Result<(), FaultSpecError> {
        match kind {
            Scheduled::Request(kind) => self.add_schedule(n, kind),
            Scheduled::Connect(kind) => match self.connect_schedule.insert(n, kind) {
                Some(previous) if previous != kind => Err(FaultSpecError::DoubleSchedule {
                    request: n,
                    first: previous.name(),
                    second: kind.name(),
                }),
                _ => Ok(()),
            },
        }
    }

    fn add_schedule(&mut self, request: u64, kind: FaultKind) -> Result<(), FaultSpecError> {
        match self.schedule.insert(request, kind) {
            Some(previous) if previous != kind => Err(FaultSpecError::DoubleSchedule {
                request,
                first: previous.name(),
                second: kind.name(),
            }),
            _ => Ok(()),
        }
    }

    /// Whether the spec injects no fault at all.
    pub fn is_empty(&self) -> bool {
        self.rates.values().all(|r| *r == 0.0)
            && self.lock_rate == 0.0
            && self.schedule.is_empty()
            && self.fail_records.is_empty()
            && self.connect_schedule.is_empty()
    }

    /// The faults of data request number `request` (from 1).
    pub fn decide(&self, request: u64) -> RequestFaults {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        rng.set_stream(request);
        let scheduled = self.schedule.get(&request).copied();
        let draw: f64 = rng.gen();
        let mut fault = None;
        let mut lock_all = false;
        match scheduled {
            Some(FaultKind::Lock) => lock_all = true,
            Some(kind) => fault = Some(kind),
            None => {
                let mut cumulative = 0.0;
                for (kind, rate) in &self.rates {
                    cumulative += rate;
                    if draw < cumulative {
                        fault = Some(*kind);
                        break;
                    }
                }
            }
        }
        RequestFaults {
            fault,
            slow_ms: self.slow_ms,
            lock_all,
            lock_rate: self.lock_rate,
            rng,
        }
    }
}

impl fmt::Display for FaultSpec {
    /// The canonical spec string, which parses back to the same spec.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = vec![format!("seed={}", self.seed)];
        for (kind, rate) in &self.rates {
            parts.push(format!("{}={rate}", kind.name()));
        }
        parts.push(format!("slow-ms={}", self.slow_ms));
        if self.lock_rate > 0.0 {
            parts.push(format!("lock={}", self.lock_rate));
        }
        for (n, kind) in &self.schedule {
            parts.push(format!("{}@{n}", kind.name()));
        }
        for name in &self.fail_records {
            parts.push(format!("fail-record={name}"));
        }
        for (n, kind) in &self.connect_schedule {
            parts.push(format!("{}@{n}", kind.name()));
        }
        f.write_str(&parts.join(","))
    }
}

fn unknown(item: &str) -> FaultSpecError {
    FaultSpecError::UnknownItem { item: item.into() }
}

fn parse_rate(item: &str, value: &str) -> Result<f64, FaultSpecError> {
    match value.parse::<f64>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        _ => Err(FaultSpecError::BadRate {
            item: item.into(),
            value: value.into(),
        }),
    }
}

fn parse_number(item: &str, value: &str) -> Result<u64, FaultSpecError> {
    value.parse::<u64>().map_err(|_| FaultSpecError::BadNumber {
        item: item.into(),
        value: value.into(),
    })
}

fn parse_request(item: &str, value: &str) -> Result<u64, FaultSpecError> {
    match parse_number(item, value)? {
        0 => Err(FaultSpecError::ZeroRequest { item: item.into() }),
        n => Ok(n),
    }
}

/// The faults decided for one request.
#[derive(Debug)]
pub struct RequestFaults {
    /// The request-level fault, if any.
    pub fault: Option<FaultKind>,
    pub slow_ms: u64,
    lock_all: bool,
    lock_rate: f64,
    rng: ChaCha8Rng,
}

impl RequestFaults {
    /// No fault.
    pub fn none() -> RequestFaults {
        FaultSpec::default().decide(1)
    }

    /// Whether the next record of a collections request fails with `UNABLE_TO_LOCK_ROW`.
    /// Call once per record, in input order.
    pub fn row_locked(&mut self) -> bool {
        if self.lock_all {
            return true;
        }
        if self.lock_rate <= 0.0 {
            return false;
        }
        self.rng.gen::<f64>() < self.lock_rate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rates_schedule_and_records() {
        let spec = FaultSpec::parse(
            "seed=7,503=0.05,500=0.01,slow=0.02:1500,lock=0.1,expire@5,9,fail-record=Plan 03",
        )
        .unwrap();
        assert_eq!(spec.seed, 7);
        assert_eq!(spec.rates[&FaultKind::Unavailable], 0.05);
        assert_eq!(spec.rates[&FaultKind::Slow], 0.02);
        assert_eq!(spec.slow_ms, 1500);
        assert_eq!(spec.lock_rate, 0.1);
        assert_eq!(spec.schedule[&5], FaultKind::Expire);
        assert_eq!(spec.schedule[&9], FaultKind::Expire);
        assert_eq!(spec.fail_records, vec!["Plan 03".to_string()]);
        let again = FaultSpec::parse(&spec.to_string()).unwrap();
        assert_eq!(again, spec);
    }

    #[test]
    fn errors_name_the_bad_part() {
        let err = FaultSpec::parse("503=0.1,bogus=3").unwrap_err();
        assert!(err.to_string().contains("\"bogus=3\""), "{err}");
        assert!(err.to_string().contains("allowed items"), "{err}");
        let err = FaultSpec::parse("503=1.5").unwrap_err();
        assert!(matches!(err, FaultSpecError::BadRate { .. }), "{err}");
        let err = FaultSpec::parse("503@0").unwrap_err();
        assert!(matches!(err, FaultSpecError::ZeroRequest { .. }), "{err}");
        let err = FaultSpec::parse("503@3,drop@3").unwrap_err();
        assert!(
            matches!(err, FaultSpecError::DoubleSchedule { request: 3, .. }),
            "{err}"
        );
        let err = FaultSpec::parse("503=0.6,500=0.6").unwrap_err();
        assert!(matches!(err, FaultSpecError::RatesAboveOne { .. }), "{err}");
        let err = FaultSpec::parse("lock@x").unwrap_err();
        assert!(matches!(err, FaultSpecError::BadNumber { .. }), "{err}");
    }

    #[test]
    fn the_same_seed_gives_the_same_faults_at_the_same_requests() {
        let spec = FaultSpec::parse("seed=42,503=0.2,drop=0.1,lock=0.3").unwrap();
        let run = |spec: &FaultSpec| {
            (1..=200)
                .map(|n| {
                    let mut d = spec.decide(n);
                    (d.fault, (0..5).map(|_| d.row_locked()).collect::<Vec<_>>())
                })
                .collect::<Vec<_>>()
        };
        let first = run(&spec);
        assert_eq!(first, run(&spec));
        let hits = first.iter().filter(|(f, _)| f.is_some()).count();
        assert!(
            (20..=100).contains(&hits),
            "{hits} faults in 200 requests at 30%"
        );
        let other = FaultSpec::parse("seed=43,503=0.2,drop=0.1,lock=0.3").unwrap();
        assert_ne!(first, run(&other));
    }

    #[test]
    fn schedule_hits_exactly_the_named_requests() {
        let spec = FaultSpec::parse("503@2,4,lock@3").unwrap();
        let faults: Vec<_> = (1..=5).map(|n| spec.decide(n).fault).collect();
        assert_eq!(
            faults,
            vec![
                None,
                Some(FaultKind::Unavailable),
                None,
                Some(FaultKind::Unavailable),
                None
            ]
        );
        assert!(spec.decide(3).row_locked());
        assert!(!spec.decide(1).row_locked());
        assert!(FaultSpec::parse("").unwrap().is_empty());
    }

    #[test]
    fn connect_faults_are_numbered_apart_from_data_requests() {
        let spec =
            FaultSpec::parse("503@2,connect-drop@2,3,connect-forget@5,connect-expire@7").unwrap();
        assert_eq!(spec.schedule[&2], FaultKind::Unavailable);
        assert_eq!(spec.connect_schedule[&2], ConnectFault::Drop);
        assert_eq!(spec.connect_schedule[&3], ConnectFault::Drop);
        assert_eq!(spec.connect_schedule[&5], ConnectFault::Forget);
        assert_eq!(spec.connect_schedule[&7], ConnectFault::Expire);
        assert!(!spec.is_empty());
        assert_eq!(FaultSpec::parse(&spec.to_string()).unwrap(), spec);
        assert_eq!(spec.decide(3).fault, None, "data request 3 is not hit");
        let err = FaultSpec::parse("connect-drop@4,connect-forget@4").unwrap_err();
        assert!(
            matches!(err, FaultSpecError::DoubleSchedule { request: 4, .. }),
            "{err}"
        );
        let err = FaultSpec::parse("connect-bogus@1").unwrap_err();
        assert!(err.to_string().contains("connect-forget"), "{err}");
    }
}
