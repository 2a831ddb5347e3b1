//! One sync cycle (design.md §4): pull what changed, settle the writes a run that died left in
//! flight (their records re-read from the CRM), link, recompute, diff, reconcile the writes
//! left from a previous run with this recompute (superseded by the newest wanted values, or set
//! aside when no longer wanted), and write back only what changed, until no write is due.

pub mod compute;
pub mod convert;
pub mod names;
pub mod pull;
pub mod push;
pub mod report;
pub mod runlock;
pub mod scope;

#[cfg(test)]
mod clock_tests;
#[cfg(test)]
mod worker_tests;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, info_span, warn, Instrument};

use crate::clock::Clock;
use crate::crm::{soql, CrmClient, CrmError};
use crate::domain::{CurrencyMode, FindingKind, Rates, Rules};
use crate::store::{NewWrite, Store, StoreError, WriteKind};

pub use names::{Names, ObjectKind};
pub use pull::PullMode;
pub use report::{Change, CycleReport, ObjectStats, WriteFailure};

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
    /// Records per sObject Collections request (at most 200).
    pub batch_size: usize,
    /// End the cycle cleanly when the org's daily API usage passes this share.
    pub max_api_usage_percent: u8,
    /// How amounts in other currencies convert to the plan's (design.md §3.5); `auto`
    /// decides every cycle from what the org has.
    pub currency: crate::config::CurrencyMode,
}

/// What `plansync resync` re-pulls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResyncTarget {
    /// Everything: a full run.
    All,
    /// One plan: its record, junction rows, accounts and their opportunities and activities.
    Plan(String),
    /// One account: its record, its plans and junction rows, opportunities and activities.
    Account(String),
    /// Every record of one object.
    Object(ObjectKind),
}

/// The meta key holding the org-time-zone date of the last run that recomputed every plan.
const RECOMPUTED_ALL_ON: &str = "recomputed_all_on";

/// The meta key holding the conversion rates the last full recompute used.
const RATES_FINGERPRINT: &str = "rates_fingerprint";

/// The meta key holding how far the CRM's delete log of `object` was last read.
fn delete_log_key(object: &str) -> String {
    format!("delete_log_covered:{object}")
}

/// Days of plan metric history kept (a year and a quarter, for year-over-year comparisons);
/// each plan's newest row is kept whatever its age.
const HISTORY_DAYS: i64 = 400;

/// The meta key holding the conversion rates the last cycle read.
const CURRENCY_RATES: &str = "currency_rates";

/// The meta key holding the currency mode the last cycle used (`single`, `static`, `dated`).
pub const CURRENCY_MODE: &str = "currency_mode";

/// The finding kind of an explicit `single` mode on a multi-currency org.
pub const CURRENCY_MODE_FINDING: &str = "currency_mode";

/// A currency mode's name, as the configuration spells it.
pub fn mode_name(mode: CurrencyMode) -> &'static str {
    match mode {
        CurrencyMode::Single => "single",
        CurrencyMode::Static => "static",
        CurrencyMode::Dated => "dated",
    }
}

/// What a cycle's read of the org's currencies found.
struct CurrencyRead {
    rates: Rates,
    /// Why the configured mode does not fit the org (an explicit `single` on a
    /// multi-currency org).
    mismatch: Option<String>,
}

/// Which pulls a run makes.
enum Pulls {
    Fixed(Vec<(ObjectKind, PullMode)>),
    /// A plan's records; which accounts it covers is known after its first pulls.
    Plan(String),
    Account(String),
}

/// One run: a cycle, a resync or a snapshot.
struct Run {
    kind: &'static str,
    pulls: Pulls,
    recompute_all: bool,
    dry_run: bool,
    as_of: Option<NaiveDate>,
    snapshot: Option<NaiveDate>,
}

/// Whether a record as re-read from the CRM (`crm`) holds the values of a write (`written`):
/// over the written fields the read carries (a field the cycle does not read, such as the
/// rollups' change time, cannot tell), numbers by value, with at least one field compared.
fn crm_holds(
    crm: &serde_json::Map<String, serde_json::Value>,
    written: &serde_json::Map<String, serde_json::Value>,
) -> bool {
    let mut compared = 0;
    for (name, value) in written {
        let Some(held) = crm.get(name) else {
            continue;
        };
        compared += 1;
        let same = match (held, value) {
            (serde_json::Value::Null, serde_json::Value::Null) => true,
            (serde_json::Value::Null, _) | (_, serde_json::Value::Null) => false,
            _ => {
                held == value
                    || convert::json_decimal(held)
                        .is_some_and(|d| convert::json_decimal(value) == Some(d))
            }
        };
        if !same {
            return false;
        }
    }
    compared > 0
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

/// How to run one cycle.
#[derive(Debug, Clone)]
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
        let mode = if options.full {
            PullMode::Full
        } else {
            PullMode::Incremental
        };
        let kind = match (options.full, options.dry_run) {
            (_, true) => "dry-run",
            (true, false) => "full",
            (false, false) => "incremental",
        };
        self.execute(Run {
            kind,
            pulls: Pulls::Fixed(ObjectKind::ALL.map(|k| (k, mode.clone())).to_vec()),
            recompute_all: options.full,
            dry_run: options.dry_run,
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
        let (pulls, recompute_all) = match target {
            ResyncTarget::All => (
                Pulls::Fixed(ObjectKind::ALL.map(|k| (k, PullMode::Full)).to_vec()),
                true,
            ),
            ResyncTarget::Object(kind) => (Pulls::Fixed(vec![(kind, PullMode::Full)]), true),
            ResyncTarget::Plan(id) => (Pulls::Plan(id), false),
            ResyncTarget::Account(id) => (Pulls::Account(id), false),
        };
        self.execute(Run {
            kind: if dry_run { "resync-dry-run" } else { "resync" },
            pulls,
            recompute_all,
            dry_run,
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
            kind: if dry_run {
                "snapshot-dry-run"
            } else {
                "snapshot"
            },
            pulls: Pulls::Fixed(ObjectKind::ALL.map(|k| (k, PullMode::Incremental)).to_vec()),
            recompute_all: true,
            dry_run,
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
        let run_id = off_worker(|| self.store.start_run(run.kind, now))?;
        let span = info_span!("cycle", run_id, kind = run.kind);
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
                self.store
                    .finish_run(run_id, outcome, &summary, self.clock.now())?;
                // The one line per run, with the same fields whatever the outcome.
                let rows_pulled = report.objects.values().map(|s| s.pulled).sum::<u64>();
                match &report.stopped_early {
                    None => info!(
                        kind = run.kind,
                        outcome,
                        rows_pulled,
                        fields_written = report.fields_written,
                        api_calls = report.api_calls,
                        duration_ms = elapsed,
                        "run finished"
                    ),
                    Some(why) => warn!(
                        kind = run.kind,
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
                    kind = run.kind,
                    outcome = "failed",
                    rows_pulled = 0u64,
                    fields_written = 0u64,
                    api_calls = self.crm.api_calls() - calls_before,
                    duration_ms = elapsed,
                    error = %crate::error::chain(&err),
                    "run finished"
                );
                let summary = serde_json::json!({ "error": crate::error::chain(&err) });
                if let Err(store_err) =
                    self.store
                        .finish_run(run_id, "failed", &summary, self.clock.now())
                {
                    warn!(error = %crate::error::Chain(&store_err), "could not record the failed run");
                }
                Err(err)
            }
        }
    }

    fn stop_reason(&self) -> Option<String> {
        let usage = self.crm.api_usage()?;
        if usage.max == 0 {
            return None;
        }
        let percent = usage.used.saturating_mul(100) / usage.max;
        (percent >= u64::from(self.settings.max_api_usage_percent)).then(|| {
            format!(
                "the org's daily API usage is {}/{} ({percent}%), at or above [limits] max_api_usage_percent = {}",
                usage.used, usage.max, self.settings.max_api_usage_percent
            )
        })
    }

    async fn cycle(
        &mut self,
        run: &Run,
        run_id: i64,
        now: DateTime<Utc>,
    ) -> Result<CycleReport, SyncError> {
        let today = run.as_of.unwrap_or_else(|| {
            now.with_timezone(&self.settings.rules.timezone)
                .date_naive()
        });
        let mut report = CycleReport {
            kind: run.kind.to_string(),
            full: run.recompute_all,
            dry_run: run.dry_run,
            today: today.to_string(),
            ..CycleReport::default()
        };

        // The API budget, read once at the start (design.md §5).
        match self.crm.limits().await {
            Ok(_) => {}
            Err(CrmError::QuotaExceeded { message }) => {
                report.stopped_early = Some(message);
                return Ok(report);
            }
            Err(e) => return Err(e.into()),
        }
        if let Some(why) = self.stop_reason() {
            warn!(%why, "not starting the cycle");
            report.stopped_early = Some(why);
            return Ok(report);
        }

        let cancel = self.cancel.clone();
        let crm_for_stop = self.crm.clone();
        let max_percent = self.settings.max_api_usage_percent;
        let stop = move || -> Option<String> {
            if cancel.is_cancelled() {
                return Some("shutdown requested".into());
            }
            let usage = crm_for_stop.api_usage()?;
            (usage.max > 0 && usage.used.saturating_mul(100) / usage.max >= u64::from(max_percent))
                .then(|| {
                    format!(
                        "the org's daily API usage reached {}/{}",
                        usage.used, usage.max
                    )
                })
        };
        let progress = self.progress.clone();
        let hooks = Hooks {
            stop: &stop,
            progress: &*progress,
            clock: &self.clock.clone(),
        };

        // Writes a previous run left in the outbox (a crash, a transient refusal) are sent
        // after this run's recompute, which first sets aside those no longer wanted: sending
        // them before could put back a value a user has changed since.

        // Every plan is recomputed on a full run, a snapshot, and the first run of the day in
        // the org's time zone (activity dates age without any CRM change).
        // So is the first run after one that did not complete, or after a dry run: either
        // may have refreshed the mirror without recomputing, and what it pulled no longer
        // looks changed.
        // A snapshot run pulls too but writes only snapshots: it counts like a dry run.
        let previous_completed = self.store.recent_runs(2)?.get(1).is_some_and(|r| {
            r.outcome.as_deref() == Some("succeeded")
                && !r.kind.contains("dry-run")
                && !r.kind.contains("snapshot")
        });
        let recompute_all = run.recompute_all
            || !previous_completed
            || self.store.meta(RECOMPUTED_ALL_ON)?.as_deref() != Some(today.to_string().as_str());
        let before = if recompute_all {
            None
        } else {
            let (accounts, plans) = compute::structure(&self.store, &self.settings.names)?;
            Some(scope::PlanMembership::new(&accounts, &plans))
        };

        // The org's currencies first: in `auto` they decide whether plans and opportunities
        // carry a currency code to pull (design.md §3.5).
        let previous_mode = self.store.meta(CURRENCY_MODE)?;
        let currency = match self.rates().await {
            Ok(read) => read,
            Err(e) => return stopped_or(e, report),
        };
        let rates = currency.rates;
        let multi_currency = rates.mode() != CurrencyMode::Single;
        self.settings.names.set_multi_currency(multi_currency);
        report.currency_mode = Some(mode_name(rates.mode()).to_string());
        // Records mirrored while the org looked single-currency lack their currency code:
        // pull everything again once.
        let refresh = multi_currency && previous_mode.as_deref().is_none_or(|m| m == "single");

        let mut changed = Vec::new();
        let mut extra_scope = BTreeSet::new();
        let pulls = match &run.pulls {
            Pulls::Fixed(pulls) if refresh => pulls
                .iter()
                .map(|(kind, mode)| match mode {
                    PullMode::Incremental => (*kind, PullMode::Full),
                    other => (*kind, other.clone()),
                })
                .collect(),
            Pulls::Fixed(pulls) => pulls.clone(),
            Pulls::Plan(id) => {
                // The plan and its junction rows first: they say which accounts it covers.
                let names = &self.settings.names;
                let first = vec![
                    (
                        ObjectKind::Plan,
                        PullMode::Where(vec![format!("Id = {}", soql::quote(id))]),
                    ),
                    (
                        ObjectKind::PlanAccount,
                        PullMode::Where(vec![format!(
                            "{} = {}",
                            names.plan_account.plan,
                            soql::quote(id)
                        )]),
                    ),
                ];
                if let Err(e) = self
                    .pull_all(&first, &hooks, &mut report, &mut changed, now)
                    .await
                {
                    return stopped_or(e, report);
                }
                extra_scope.insert(id.clone());
                self.plan_pulls(id)?
            }
            Pulls::Account(id) => {
                let (accounts, plans) = compute::structure(&self.store, &self.settings.names)?;
                let membership = scope::PlanMembership::new(&accounts, &plans);
                extra_scope.extend(membership.plans_of_account(id));
                self.account_pulls(id)
            }
        };
        if let Err(e) = self
            .pull_all(&pulls, &hooks, &mut report, &mut changed, now)
            .await
        {
            return stopped_or(e, report);
        }
        if !run.dry_run {
            if let Err(e) = self.settle_in_doubt(&hooks, &mut changed, now).await {
                return stopped_or(e, report);
            }
        }

        // New rates change every converted amount: recompute every plan.
        let fingerprint = format!("{rates:?}");
        let recompute_all = recompute_all
            || self.store.meta(RATES_FINGERPRINT)?.as_deref() != Some(fingerprint.as_str());
        let before = before.filter(|_| !recompute_all);
        let names = &self.settings.names;
        let rates_mode = rates.mode();
        let inputs = off_worker(|| compute::org_data(&self.store, names, rates))?;
        let scope = match before {
            None => None,
            Some(before) => {
                let after = scope::PlanMembership::new(&inputs.org.accounts, &inputs.org.plans);
                let links: HashMap<String, Option<String>> = inputs
                    .org
                    .opportunities
                    .iter()
                    .map(|o| (o.id.clone(), o.plan_id.clone()))
                    .collect();
                let contacts: HashMap<String, Option<String>> = inputs
                    .org
                    .contacts
                    .iter()
                    .map(|c| (c.id.clone(), c.account_id.clone()))
                    .collect();
                let lookups = scope::Lookups {
                    opportunity_links: &links,
                    contact_accounts: &contacts,
                };
                let mut touched = scope::touched_plans(names, &before, &after, &lookups, &changed);
                touched.extend(extra_scope);
                Some(touched)
            }
        };
        let mut planned = off_worker(|| {
            compute::plan_writes(
                &inputs,
                names,
                &self.settings.rules,
                today,
                now,
                scope.as_ref(),
            )
        });
        report.plans_recomputed = planned.plans_recomputed;
        report.links_changed = planned.links_changed;
        if let Some(why) = currency.mismatch {
            planned.findings.push((
                CURRENCY_MODE_FINDING.to_string(),
                self.settings.names.currency.currency_type.clone(),
                why,
            ));
        }
        report.findings = planned.findings.iter().map(|(_, _, m)| m.clone()).collect();
        if let Some(date) = run.snapshot {
            // A snapshot run writes the snapshot records only: the plans' own fields and the
            // links stay the cycles' job (a snapshot for a past date must not put that date's
            // values on the live plans).
            let snapshots =
                compute::snapshot_writes(names, &planned.rollups, &planned.states, date);
            report.snapshots = snapshots.len() as u64;
            report.links_changed = 0;
            planned.writes = snapshots;
        }

        if run.dry_run {
            report.fields_would_write = planned.writes.iter().map(|w| w.fields.len() as u64).sum();
            report.records_would_write = planned.writes.len() as u64;
            report.changes = planned.writes.into_iter().flat_map(|w| w.changes).collect();
            return Ok(report);
        }

        let findings = self.findings_to_keep(planned.findings, scope.as_ref())?;
        self.store.replace_findings(&findings)?;
        if run.snapshot.is_none() {
            self.set_aside_unwanted(&planned.writes, &planned.rollups, now)?;
        }
        let writes = self.without_refused(planned.writes)?;
        let new_writes: Vec<NewWrite> = writes
            .into_iter()
            .map(|w| NewWrite {
                object: w.object,
                record_id: w.record_id,
                kind: w.kind,
                fields: w.fields,
                reason: w.reason.to_string(),
            })
            .collect();
        // The plans' metric history moves with the writes that carry the new values; a
        // snapshot run writes no plan values, so it records none.
        let history = match run.snapshot {
            None => compute::history_metrics(&planned.rollups, &planned.states),
            Some(_) => Vec::new(),
        };
        off_worker(|| {
            self.store.transaction(|tx| {
                tx.enqueue(&new_writes, now)?;
                tx.record_history(run_id, now, &history)
            })
        })?;
        self.store.set_meta(CURRENCY_MODE, mode_name(rates_mode))?;
        if scope.is_none() && run.snapshot.is_none() {
            self.store.set_meta(RECOMPUTED_ALL_ON, &today.to_string())?;
            self.store.set_meta(RATES_FINGERPRINT, &fingerprint)?;
        }
        // A snapshot run reconciles no plan or link write (it computes as of its date), so it
        // sends only snapshots; the next cycle reconciles and sends the rest.
        let only_object = run
            .snapshot
            .map(|_| self.settings.names.snapshot.object.as_str());
        match push::drain(
            &self.crm,
            &mut self.store,
            self.settings.batch_size,
            only_object,
            &hooks,
        )
        .await
        {
            Ok(pushed) => report.add_pushed(pushed),
            Err(e) => return stopped_or(e, report),
        }
        off_worker(|| self.maintain(now, run.recompute_all))?;
        Ok(report)
    }

    /// Keeps the store from growing for months: settled writes move to the archive after 31
    /// days (design.md §5), the run log keeps 90 days, plan history [`HISTORY_DAYS`] (each
    /// plan's newest row always), and a full run drops tombstones of
    /// deletions older than the recycle bin's 15 days (twice that, to be safe).
    fn maintain(&mut self, now: DateTime<Utc>, full: bool) -> Result<(), SyncError> {
        let archived = self
            .store
            .archive_writes(now - chrono::Duration::days(31))?;
        let pruned = self.store.prune_runs(now - chrono::Duration::days(90))?
            + self
                .store
                .prune_history(now - chrono::Duration::days(HISTORY_DAYS))?;
        let purged = if full {
            self.store
                .purge_tombstones(now - chrono::Duration::days(30))?
        } else {
            0
        };
        if archived + pruned + purged > 0 {
            debug!(archived, pruned, purged, "store maintenance");
        }
        Ok(())
    }

    /// The findings to keep: all of this recompute's, and, when only some plans were
    /// recomputed, the earlier plan findings (an unusable rate) of the plans left alone.
    fn findings_to_keep(
        &self,
        fresh: Vec<(String, String, String)>,
        scope: Option<&BTreeSet<String>>,
    ) -> Result<Vec<(String, String, String)>, SyncError> {
        let Some(scope) = scope else {
            return Ok(fresh);
        };
        let mut kept = fresh;
        for old in self.store.findings()? {
            let plan = old.subject.split(',').next().unwrap_or_default();
            let frozen_plan = old.kind == compute::finding_kind(FindingKind::UnknownCurrency)
                || old.kind == compute::finding_kind(FindingKind::DatedRateGap);
            if frozen_plan && !scope.contains(plan) {
                kept.push((old.kind, old.subject, old.message));
            }
        }
        Ok(kept)
    }

    /// Settles the writes whose outcome is unknown (design.md §4.5): rows left SENT by a run
    /// that died with their request in flight (runs are serialized, so none is in flight now).
    /// Their records are re-read from the CRM into the mirror, so this run's diff starts from
    /// what the CRM really holds; a row whose values the CRM holds succeeded (and its change
    /// time is not stamped again), any other goes back to the queue, where this run's
    /// recompute supersedes it with the newest wanted values or sets it aside. An upsert
    /// (a snapshot, keyed by its external id) is simply queued again.
    async fn settle_in_doubt(
        &mut self,
        hooks: &Hooks<'_>,
        changed: &mut Vec<pull::ChangedRecord>,
        now: DateTime<Utc>,
    ) -> Result<(), SyncError> {
        let in_doubt = self.store.writes_in_doubt()?;
        if in_doubt.is_empty() {
            return Ok(());
        }
        warn!(
            writes = in_doubt.len(),
            "writes were in flight when plansync last stopped: re-reading their records"
        );
        let mut by_kind: BTreeMap<&'static str, (ObjectKind, Vec<String>)> = BTreeMap::new();
        for row in &in_doubt {
            if !matches!(row.kind, WriteKind::Update) {
                continue;
            }
            let kind = ObjectKind::ALL
                .into_iter()
                .find(|k| self.settings.names.object(*k) == row.object);
            if let Some(kind) = kind {
                let ids = &mut by_kind.entry(kind.label()).or_insert((kind, Vec::new())).1;
                if !ids.contains(&row.record_id) {
                    ids.push(row.record_id.clone());
                }
            }
        }
        let rereads: Vec<(ObjectKind, PullMode)> = by_kind
            .into_values()
            .map(|(kind, ids)| (kind, PullMode::Where(pull::in_filters("Id", &ids))))
            .collect();
        for (kind, mode) in &rereads {
            let pulled = pull::pull_object(
                &self.crm,
                &mut self.store,
                &self.settings.names,
                *kind,
                mode,
                self.settings.lookback,
                hooks,
            )
            .await?;
            changed.extend(pulled.changed);
        }
        let mut landed = Vec::new();
        let mut requeued = Vec::new();
        for row in &in_doubt {
            let holds = matches!(row.kind, WriteKind::Update)
                && self
                    .store
                    .record(&row.object, &row.record_id)?
                    .is_some_and(|r| !r.is_deleted && crm_holds(&r.fields, &row.fields));
            if holds {
                landed.push(row.id);
            } else {
                requeued.push(row.id);
            }
        }
        let settled = self.store.settle_in_doubt(&landed, &requeued, now)?;
        info!(
            landed = landed.len(),
            requeued = requeued.len(),
            settled,
            "settled the writes whose outcome was unknown"
        );
        Ok(())
    }

    /// Sets aside (IGNORED, `set_aside`) queued writes this recompute no longer wants: a link
    /// write for an opportunity whose desired link now equals the CRM's (or that a user has
    /// locked since), a rollup write for a recomputed plan that has nothing to change, or for a
    /// plan the CRM has deleted since. They would otherwise be sent after the fact and put back
    /// an outdated value (or fail on a deleted record).
    fn set_aside_unwanted(
        &mut self,
        planned: &[compute::PlannedWrite],
        recomputed: &BTreeMap<String, crate::domain::Rollups>,
        now: DateTime<Utc>,
    ) -> Result<(), SyncError> {
        let names = &self.settings.names;
        let wanted: HashSet<(&str, &str)> = planned
            .iter()
            .map(|w| (w.object.as_str(), w.record_id.as_str()))
            .collect();
        let mut set_aside = 0;
        for row in self.store.unsettled_writes()? {
            let is_link = row.object == names.opportunity.object;
            let is_plan = row.object == names.plan.object;
            let is_rollup = is_plan
                && (recomputed.contains_key(&row.record_id)
                    || self
                        .store
                        .record(&row.object, &row.record_id)?
                        .is_none_or(|r| r.is_deleted));
            if (is_link || is_rollup)
                && matches!(row.kind, WriteKind::Update)
                && !wanted.contains(&(row.object.as_str(), row.record_id.as_str()))
            {
                self.store.set_aside_write(row.id, now)?;
                set_aside += 1;
            }
        }
        if set_aside > 0 {
            info!(set_aside, "queued writes no longer wanted were set aside");
        }
        Ok(())
    }

    /// Pulls each object as asked, reconciling full pulls and, after incremental pulls,
    /// removing what the CRM's delete log shows (records purged from the recycle bin).
    async fn pull_all(
        &mut self,
        pulls: &[(ObjectKind, PullMode)],
        hooks: &Hooks<'_>,
        report: &mut CycleReport,
        changed: &mut Vec<pull::ChangedRecord>,
        now: DateTime<Utc>,
    ) -> Result<(), SyncError> {
        for (kind, mode) in pulls {
            if let Some(why) = (hooks.stop)() {
                return Err(SyncError::Stopped(why));
            }
            let object = self.settings.names.object(*kind).to_string();
            let cursor_before = self.store.cursor(&object)?;
            let mut pulled = pull::pull_object(
                &self.crm,
                &mut self.store,
                &self.settings.names,
                *kind,
                mode,
                self.settings.lookback,
                hooks,
            )
            .await?;
            match mode {
                PullMode::Full => {
                    let live: HashSet<&String> = pulled.live_ids.iter().collect();
                    let gone: Vec<String> = self
                        .store
                        .live_ids(&object)?
                        .into_iter()
                        .filter(|id| !live.contains(id))
                        .collect();
                    if !gone.is_empty() {
                        info!(object = %object, count = gone.len(), "removing records the CRM no longer has");
                        pulled.stats.deleted += self.store.remove_records(&object, &gone)? as u64;
                    }
                }
                PullMode::Incremental => {
                    if let Some(cursor) = cursor_before {
                        // From where the log last reached, or the cursor for a first look.
                        let covered = self
                            .store
                            .meta(&delete_log_key(&object))?
                            .as_deref()
                            .and_then(convert::parse_datetime);
                        let start =
                            covered.unwrap_or(cursor.system_modstamp) - self.settings.lookback;
                        let removed = self
                            .apply_delete_log(*kind, &object, (start, now), hooks)
                            .await?;
                        pulled.stats.deleted += removed.len() as u64;
                        pulled.changed.extend(removed);
                    }
                }
                PullMode::Where(_) => {}
            }
            changed.extend(pulled.changed);
            let entry = report.objects.entry(kind.label().to_string()).or_default();
            entry.pulled += pulled.stats.pulled;
            entry.deleted += pulled.stats.deleted;
            entry.pages += pulled.stats.pages;
        }
        Ok(())
    }

    /// Step 2 of design.md §4: `getDeleted` from `start` to `end` (the cycle's start) removes records purged from the
    /// recycle bin before a pull could see them as deleted; when the log no longer reaches
    /// back that far, every live Id is listed and local rows the CRM lacks are removed. A CRM
    /// that refuses the call only delays the removal to the nightly full run. The removed
    /// records are returned as changes, so the plans they counted in are recomputed.
    async fn apply_delete_log(
        &mut self,
        kind: ObjectKind,
        object: &str,
        (start, end): (DateTime<Utc>, DateTime<Utc>),
        hooks: &Hooks<'_>,
    ) -> Result<Vec<pull::ChangedRecord>, SyncError> {
        if end - start <= chrono::Duration::minutes(1) {
            return Ok(Vec::new());
        }
        let log = match self.crm.get_deleted(object, start, end).await {
            Ok(log) => log,
            Err(CrmError::QuotaExceeded { message }) => return Err(SyncError::Stopped(message)),
            Err(e) => {
                warn!(object, error = %e, "the delete log is not available; the nightly full run will reconcile");
                return Ok(Vec::new());
            }
        };
        let gone: Vec<String> = if log
            .earliest_date_available
            .is_some_and(|earliest| earliest > start)
        {
            info!(
                object,
                "the delete log does not reach back far enough: listing every Id"
            );
            // queryAll, so archived tasks and events (absent from query) still count as live.
            let mut live = HashSet::new();
            let mut page = self
                .crm
                .query(
                    &format!("SELECT Id FROM {object} WHERE IsDeleted = false"),
                    true,
                )
                .await?;
            loop {
                live.extend(page.records.iter().filter_map(|r| convert::text(r, "Id")));
                (hooks.progress)(&Progress::Pulled {
                    object: object.to_string(),
                    rows: live.len() as u64,
                    total: page.total_size,
                });
                match page.next_records_url.take().filter(|_| !page.done) {
                    Some(next) => {
                        if let Some(why) = (hooks.stop)() {
                            return Err(SyncError::Stopped(why));
                        }
                        page = self.crm.query_more(&next).await?;
                    }
                    None => break,
                }
            }
            self.store
                .live_ids(object)?
                .into_iter()
                .filter(|id| !live.contains(id))
                .collect()
        } else {
            let live: HashSet<String> = self.store.live_ids(object)?.into_iter().collect();
            log.deleted
                .into_iter()
                .map(|(id, _)| id)
                .filter(|id| live.contains(id))
                .collect()
        };
        let mut removed = Vec::with_capacity(gone.len());
        for id in &gone {
            if let Some(record) = self.store.record(object, id)? {
                removed.push(pull::ChangedRecord {
                    kind,
                    id: id.clone(),
                    before: Some(record.fields.clone()),
                    after: record.fields,
                    deleted: true,
                });
            }
        }
        self.store.remove_records(object, &gone)?;
        if let Some(covered) = log.latest_date_covered {
            self.store
                .set_meta(&delete_log_key(object), &convert::format_datetime(covered))?;
        }
        Ok(removed)
    }

    /// The org's conversion rates, read whole every cycle (a few rows), and the currency mode
    /// they give this cycle (design.md §3.5). CurrencyType is read in every mode: its absence
    /// (the CRM does not know the object) makes a single-currency org. `auto` is `dated`
    /// when DatedConversionRate has rows, else `static`, on a multi-currency org, and
    /// `single` otherwise. An explicit `single` on a multi-currency org converts nothing and
    /// says so.
    async fn rates(&mut self) -> Result<CurrencyRead, SyncError> {
        use crate::config::CurrencyMode as Configured;
        let configured = self.settings.currency;
        let n = self.settings.names.currency.clone();
        let tolerate_absence = matches!(configured, Configured::Auto | Configured::Single);
        let types = match self
            .query_everything(&format!(
                "SELECT {}, {}, {} FROM {}",
                n.iso_code, n.conversion_rate, n.is_corporate, n.currency_type
            ))
            .await
        {
            Ok(rows) => Some(rows),
            Err(e) if tolerate_absence && is_unknown_object(&e) => None,
            Err(e) => return Err(e),
        };
        let Some(types) = types else {
            self.store.set_meta(CURRENCY_RATES, "")?;
            return Ok(CurrencyRead {
                rates: Rates::single(),
                mismatch: None,
            });
        };
        let types = types
            .iter()
            .filter_map(|r| {
                Some(crate::domain::CurrencyType {
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
            return Ok(CurrencyRead {
                rates: Rates::single(),
                mismatch: Some(mismatch),
            });
        }
        let dated_query = format!(
            "SELECT {}, {}, {}, {} FROM {}",
            n.dated_iso_code,
            n.dated_conversion_rate,
            n.start_date,
            n.next_start_date,
            n.dated_rate
        );
        let dated_rows = match configured {
            Configured::Static => Vec::new(),
            Configured::Dated => self.query_everything(&dated_query).await?,
            _ => match self.query_everything(&dated_query).await {
                Ok(rows) => rows,
                // Advanced currency management is off: the org has no dated rates.
                Err(e) if is_unknown_object(&e) => Vec::new(),
                Err(e) => return Err(e),
            },
        };
        let dated: Vec<crate::domain::DatedConversionRate> = dated_rows
            .iter()
            .filter_map(|r| {
                Some(crate::domain::DatedConversionRate {
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
        self.store.set_meta(
            CURRENCY_RATES,
            &compute::rates_json(&types, &dated).to_string(),
        )?;
        Ok(CurrencyRead {
            rates: Rates::from_records(mode, &types, &dated),
            mismatch: None,
        })
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

    /// Every row of a small query, following the pages.
    async fn query_everything(
        &self,
        soql: &str,
    ) -> Result<Vec<serde_json::Map<String, serde_json::Value>>, SyncError> {
        let mut page = self.crm.query(soql, false).await?;
        let mut rows = std::mem::take(&mut page.records);
        while let Some(next) = page.next_records_url.take().filter(|_| !page.done) {
            page = self.crm.query_more(&next).await?;
            rows.append(&mut page.records);
        }
        Ok(rows)
    }

    /// After the plan and its junction rows are in the mirror: its accounts, and the
    /// opportunities, contacts, tasks and events of those accounts and linked to it.
    fn plan_pulls(&self, plan_id: &str) -> Result<Vec<(ObjectKind, PullMode)>, SyncError> {
        let names = &self.settings.names;
        let (accounts, plans) = compute::structure(&self.store, names)?;
        let hierarchy = crate::domain::membership::Hierarchy::new(&accounts);
        let members: Vec<String> = plans
            .iter()
            .find(|p| p.id == plan_id)
            .map(|p| {
                hierarchy
                    .members(p)
                    .into_iter()
                    .map(|(a, _)| a.to_string())
                    .collect()
            })
            .unwrap_or_default();
        let mut opportunity_filters = pull::in_filters(&names.opportunity.account_id, &members);
        opportunity_filters.push(format!(
            "{} = {}",
            names.opportunity.plan_link,
            soql::quote(plan_id)
        ));
        Ok(vec![
            (
                ObjectKind::Account,
                PullMode::Where(pull::in_filters("Id", &members)),
            ),
            (
                ObjectKind::Opportunity,
                PullMode::Where(opportunity_filters),
            ),
            (
                ObjectKind::Contact,
                PullMode::Where(pull::in_filters(&names.contact.account_id, &members)),
            ),
            (
                ObjectKind::Task,
                PullMode::Where(pull::in_filters(&names.task.account_id, &members)),
            ),
            (
                ObjectKind::Event,
                PullMode::Where(pull::in_filters(&names.event.account_id, &members)),
            ),
        ])
    }

    /// The account, the plans and junction rows naming it, and its opportunities, contacts,
    /// tasks and events.
    fn account_pulls(&self, account_id: &str) -> Vec<(ObjectKind, PullMode)> {
        let names = &self.settings.names;
        let id = soql::quote(account_id);
        let by = |field: &str| PullMode::Where(vec![format!("{field} = {id}")]);
        vec![
            (ObjectKind::Account, by("Id")),
            (ObjectKind::Plan, by(&names.plan.account)),
            (ObjectKind::PlanAccount, by(&names.plan_account.account)),
            (ObjectKind::Opportunity, by(&names.opportunity.account_id)),
            (ObjectKind::Contact, by(&names.contact.account_id)),
            (ObjectKind::Task, by(&names.task.account_id)),
            (ObjectKind::Event, by(&names.event.account_id)),
        ]
    }

    /// Drops writes the CRM refused for good, or an admin ignored, with exactly these values:
    /// they are tried again only when their values change, or when the record itself has
    /// changed in the CRM since (a validation rule's inputs, say) (design.md §3.6).
    fn without_refused(
        &self,
        writes: Vec<compute::PlannedWrite>,
    ) -> Result<Vec<compute::PlannedWrite>, SyncError> {
        let mut refused: BTreeMap<(String, String), crate::store::OutboxRow> = BTreeMap::new();
        for row in self.store.standing_refusals()? {
            refused.insert((row.object.clone(), row.record_id.clone()), row);
        }
        let changed_at = &self.settings.names.plan.rollups_changed_at;
        let mut kept = Vec::with_capacity(writes.len());
        for w in writes {
            let Some(row) = refused.get(&(w.object.clone(), w.record_id.clone())) else {
                kept.push(w);
                continue;
            };
            // The change timestamp moves every time; compare the values that matter.
            let same_values = w
                .fields
                .iter()
                .filter(|(k, _)| *k != changed_at)
                .all(|(k, v)| row.fields.get(k) == Some(v));
            let record_changed = self
                .store
                .record(&w.object, &w.record_id)?
                .is_some_and(|r| r.system_modstamp > row.updated_at);
            if !same_values || record_changed {
                kept.push(w);
            }
        }
        Ok(kept)
    }
}

/// The CRM does not know the object queried (`INVALID_TYPE`): a single-currency org has no
/// CurrencyType, an org without advanced currency management no DatedConversionRate.
fn is_unknown_object(e: &SyncError) -> bool {
    matches!(e, SyncError::Crm(CrmError::Api { error_code, .. }) if error_code == "INVALID_TYPE")
}
