//! One sync cycle (design.md §4), as the named steps of `SyncEngine::cycle` (in `cycle.rs`):
//!
//! 1. **baseline**: whether every plan is recomputed (a full run, a snapshot, the first run of
//!    the day, after a run that did not complete or wrote no plan values) or only the plans
//!    the changes touch ([`scope::recompute_all`]);
//! 2. **currencies**: the org's conversion rates and the mode they give this cycle; a change
//!    of their fingerprint recomputes every plan ([`rates`]). The same composite call carries
//!    the first objects' queries ([`reads`]);
//! 3. **budget**: the org's API usage from the `Sforce-Limit-Info` header of that first
//!    response, checked before anything it brought is stored; a spent budget ends the run
//!    with its cursors as they were ([`budget`]), and the same rule stops it between pages
//!    and write batches. No `/limits` call: before the first response of a run nothing is
//!    held against the budget, because a usage seen earlier (the daemon's previous run, or
//!    one remembered from another process) may be hours old in a rolling 24-hour window,
//!    and holding it against the run would stop every run without a call to refresh it;
//!    at most that one call goes out over the budget;
//! 4. **pull** what changed since each cursor (or what a resync names, [`targets`]): the
//!    queries share composite calls of five query operations, up to `pull_concurrency` calls
//!    at a time, and a pull of every record of an object expected to hold `bulk_min_rows` or
//!    more goes through a Bulk API 2.0 query job ([`pull`]); each object is then followed by
//!    its **deletions** ([`deletes`]: a full pull's reconcile, and the delete log in full
//!    pulls or when it nears the recycle bin's 15 days);
//! 5. **settle** the writes a run that died left in flight: their records are re-read from the
//!    CRM, so the diff starts from what the CRM really holds ([`outbox`]);
//! 6. **scope and compute**: link, recompute the plans in scope, diff ([`compute`]);
//! 7. **enqueue**: keep the findings, reconcile the outbox with this recompute (writes left
//!    from a previous run that are no longer wanted are set aside, standing refusals held
//!    back) and queue what changed with the plans' history, in one transaction;
//! 8. **push**: drain the outbox, the writes a previous run left included, so old writes go
//!    out after the recompute and a stale value is never sent ([`push`]: up to 1,000 records
//!    a call), until no write is due; then the store's upkeep.
//!
//! An org that does not serve the composite resource is read and written through plain REST
//! requests ([`reads::Composite`]).

pub mod budget;
mod bulk;
pub mod compute;
pub mod convert;
mod cycle;
pub mod deletes;
pub mod kind;
pub mod names;
pub mod outbox;
pub mod pull;
pub mod push;
pub mod rates;
pub mod reads;
pub mod report;
pub mod runlock;
pub mod scope;
pub mod targets;

#[cfg(test)]
mod clock_tests;
#[cfg(test)]
mod reconcile_tests;
#[cfg(test)]
mod upgrade_tests;
#[cfg(test)]
mod worker_tests;

use std::sync::Arc;
use std::time::Instant;

use chrono::{Duration, NaiveDate};
use tokio_util::sync::CancellationToken;
use tracing::{info, info_span, warn, Instrument};

use crate::clock::Clock;
use crate::crm::{CrmClient, CrmError};
use crate::domain::Rules;
use crate::store::{Store, StoreError};

use cycle::Run;

pub use kind::{RunKind, RunName};
pub use names::{Names, ObjectKind};
pub use pull::PullMode;
pub use rates::{mode_name, CURRENCY_MODE, CURRENCY_MODE_FINDING};
pub use report::{Change, CycleReport, ObjectStats, WriteFailure};
pub use targets::ResyncTarget;

/// Why a cycle could not complete.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Crm(#[from] CrmError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the CRM sent {object} {id} in a shape plansync cannot use: {why}")]
    BadRecord {
        object: String,
        id: String,
        why: String,
    },
    #[error("the cycle was stopped: {0}")]
    Stopped(String),
    #[error("cannot take the run lock {}", path.display())]
    RunLock {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What the cycle needs besides the CRM and the store.
#[derive(Debug, Clone)]
pub struct SyncSettings {
    pub names: Names,
    pub rules: Rules,
    /// Re-read this much before the cursor, for transactions that commit late.
    pub lookback: Duration,
    /// Records per write call (at most 1,000: five sObject Collections of 200 in one
    /// composite request).
    pub batch_size: usize,
    /// Full pulls of objects expected to hold at least this many rows use Bulk API 2.0.
    pub bulk_min_rows: u64,
    /// Write-backs of at least this many records of one object (and kind) use Bulk API 2.0
    /// ingest jobs.
    pub bulk_min_writes: u64,
    /// Objects pulled at the same time.
    pub pull_concurrency: usize,
    /// End the cycle cleanly when the org's daily API usage passes this share.
    pub max_api_usage_percent: u8,
    /// How amounts in other currencies convert to the plan's (design.md §3.5); `auto`
    /// decides every cycle from what the org has.
    pub currency: crate::config::CurrencyMode,
}

impl Default for SyncSettings {
    /// The default names and rules with the `[sync]` and `[limits]` defaults of an empty
    /// configuration, on a single-currency org.
    fn default() -> Self {
        SyncSettings {
            names: Names::default(),
            rules: Rules::default(),
            lookback: Duration::seconds(600),
            batch_size: 1000,
            bulk_min_rows: 10_000,
            bulk_min_writes: 10_000,
            pull_concurrency: 3,
            max_api_usage_percent: 80,
            currency: crate::config::CurrencyMode::Single,
        }
    }
}

/// A stop (shutdown, API budget) ends the run cleanly with what it did so far; anything else
/// is an error.
fn stopped_or(err: SyncError, mut report: CycleReport) -> Result<CycleReport, SyncError> {
    match err {
        SyncError::Stopped(why) | SyncError::Crm(CrmError::QuotaExceeded { message: why }) => {
            report.stopped_early = Some(why);
            Ok(report)
        }
        other => Err(other),
    }
}

/// How to run one cycle; the default is an incremental cycle that writes, as of today.
#[derive(Debug, Clone, Default)]
pub struct CycleOptions {
    /// Re-pull everything and remove local rows the CRM no longer has.
    pub full: bool,
    /// Pull and compute, but write nothing to the CRM.
    pub dry_run: bool,
    /// Evaluate the date-relative rules as of this date instead of today in the org's zone.
    pub as_of: Option<NaiveDate>,
}

/// How far a cycle got, reported after every stored page and every write batch: for
/// progress bars, the watchdog and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// A page of `object` was stored: `rows` received so far of the query's `total`.
    Pulled {
        object: String,
        rows: u64,
        total: u64,
    },
    /// A write batch got its results: `done` records so far of `total`.
    Wrote { done: u64, total: u64 },
}

/// A progress listener.
pub type ProgressFn = Arc<dyn Fn(&Progress) + Send + Sync>;

/// Runs blocking work (SQLite, which may wait up to its busy timeout for another writer, and
/// the whole-org compute) without holding an async worker: on a multi-thread runtime the
/// worker first hands its other tasks (the watchdog pinger, `/healthz`, the metrics) to a
/// fresh worker (`tokio::task::block_in_place`); on a current-thread runtime, or outside
/// one, it just runs.
pub(crate) fn off_worker<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}

/// What the steps of a cycle consult between pages and batches.
pub struct Hooks<'a> {
    /// `Some(why)` when the cycle must stop at this safe point.
    pub stop: &'a dyn Fn() -> Option<String>,
    /// Told after every stored page and write batch.
    pub progress: &'a dyn Fn(&Progress),
    /// Where the steps take the time from.
    pub clock: &'a Clock,
}

/// The sync engine: a CRM client, the store and the settings.
pub struct SyncEngine {
    crm: CrmClient,
    store: Store,
    settings: SyncSettings,
    cancel: CancellationToken,
    progress: ProgressFn,
    clock: Clock,
    /// Whether the org serves composite requests (learnt once per process).
    composite: Arc<reads::Composite>,
}

impl SyncEngine {
    pub fn new(crm: CrmClient, store: Store, settings: SyncSettings) -> Self {
        SyncEngine {
            crm,
            store,
            settings,
            cancel: CancellationToken::new(),
            progress: Arc::new(|_| {}),
            clock: Clock::system(),
            composite: Arc::new(reads::Composite::default()),
        }
    }

    /// Takes the time from `clock` instead of the system clock (a cycle reads it at its
    /// start, and the write-back reads it for each batch).
    pub fn set_clock(&mut self, clock: Clock) {
        self.clock = clock;
    }

    /// Calls `listener` after every stored page and every write batch.
    pub fn on_progress(&mut self, listener: impl Fn(&Progress) + Send + Sync + 'static) {
        self.progress = Arc::new(listener);
    }

    pub fn settings(&self) -> &SyncSettings {
        &self.settings
    }

    /// A token that, when cancelled, stops the cycle at the next safe point (after the page
    /// or batch in flight).
    pub fn cancellation(&self) -> CancellationToken {
        self.cancel.clone()
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn crm(&self) -> &CrmClient {
        &self.crm
    }

    /// Runs one cycle and records it in the run log.
    pub async fn run_cycle(&mut self, options: CycleOptions) -> Result<CycleReport, SyncError> {
        let (kind, mode) = match options.full {
            true => (RunKind::Full, PullMode::Full),
            false => (RunKind::Incremental, PullMode::Incremental),
        };
        self.execute(Run {
            name: RunName::new(kind, options.dry_run),
            pulls: targets::every_object(mode),
            recompute_all: options.full,
            as_of: options.as_of,
            snapshot: None,
        })
        .await
    }

    /// Re-pulls what `target` names from the CRM, ignoring (and keeping) the cursors,
    /// recomputes the plans it concerns and writes back what changed.
    pub async fn resync(
        &mut self,
        target: ResyncTarget,
        dry_run: bool,
        as_of: Option<NaiveDate>,
    ) -> Result<CycleReport, SyncError> {
        let (pulls, recompute_all) = targets::resync_pulls(target);
        self.execute(Run {
            name: RunName::new(RunKind::Resync, dry_run),
            pulls,
            recompute_all,
            as_of,
            snapshot: None,
        })
        .await
    }

    /// Takes the plan snapshots for `date` (design.md §3.7): an incremental cycle evaluated as
    /// of `date`, then every rolled-up plan's metrics upserted as a snapshot record keyed
    /// `{planId}:{date}`, so a repeated or crashed run never makes duplicates.
    pub async fn snapshot(
        &mut self,
        date: NaiveDate,
        dry_run: bool,
    ) -> Result<CycleReport, SyncError> {
        self.execute(Run {
            name: RunName::new(RunKind::Snapshot, dry_run),
            pulls: targets::every_object(PullMode::Incremental),
            recompute_all: true,
            as_of: Some(date),
            snapshot: Some(date),
        })
        .await
    }

    /// Runs one run and records it in the run log.
    async fn execute(&mut self, run: Run) -> Result<CycleReport, SyncError> {
        let _run_lock = runlock::acquire(self.store.path(), &self.cancel).await?;
        #[allow(
            clippy::disallowed_methods,
            reason = "measures the run's duration for the report; no rule depends on it"
        )]
        let started = Instant::now();
        let now = self.clock.now();
        let run_id = off_worker(|| self.store.start_run(run.name.as_str(), now))?;
        let span = info_span!("cycle", run_id, kind = run.name.as_str());
        let calls_before = self.crm.api_calls();
        let result = self.cycle(&run, run_id, now).instrument(span).await;
        let elapsed = started.elapsed().as_millis() as u64;
        match result {
            Ok(mut report) => {
                report.duration_ms = elapsed;
                report.api_calls = self.crm.api_calls() - calls_before;
                report.api_usage = self
                    .crm
                    .api_usage()
                    .map(|u| format!("{}/{}", u.used, u.max));
                let outcome = if report.stopped_early.is_some() {
                    "partial"
                } else {
                    "succeeded"
                };
                let mut summary = serde_json::to_value(&report).unwrap_or_default();
                // The run log keeps how many findings there were; the findings themselves are
                // in the store's findings table (thousands of ambiguities per run otherwise).
                if let Some(findings) = summary.get_mut("findings") {
                    *findings = serde_json::json!(report.findings.len());
                }
                let finished = self.clock.now();
                off_worker(|| self.store.finish_run(run_id, outcome, &summary, finished))?;
                // The one line per run, with the same fields whatever the outcome.
                let rows_pulled = report.objects.values().map(|s| s.pulled).sum::<u64>();
                match &report.stopped_early {
                    None => info!(
                        kind = run.name.as_str(),
                        outcome,
                        rows_pulled,
                        fields_written = report.fields_written,
                        api_calls = report.api_calls,
                        duration_ms = elapsed,
                        "run finished"
                    ),
                    Some(why) => warn!(
                        kind = run.name.as_str(),
                        outcome,
                        rows_pulled,
                        fields_written = report.fields_written,
                        api_calls = report.api_calls,
                        duration_ms = elapsed,
                        error = %why,
                        "run finished"
                    ),
                }
                Ok(report)
            }
            Err(err) => {
                // What a failed run committed is in the store; its counts died with it.
                tracing::error!(
                    kind = run.name.as_str(),
                    outcome = "failed",
                    rows_pulled = 0u64,
                    fields_written = 0u64,
                    api_calls = self.crm.api_calls() - calls_before,
                    duration_ms = elapsed,
                    error = %crate::error::chain(&err),
                    "run finished"
                );
                let summary = serde_json::json!({ "error": crate::error::chain(&err) });
                let finished = self.clock.now();
                if let Err(store_err) =
                    off_worker(|| self.store.finish_run(run_id, "failed", &summary, finished))
                {
                    warn!(error = %crate::error::Chain(&store_err), "could not record the failed run");
                }
                Err(err)
            }
        }
    }
}
