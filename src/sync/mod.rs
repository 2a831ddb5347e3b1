//! One sync cycle (design.md §4): drain writes left from a previous run, pull what changed,
//! link, recompute, diff, and write back only what changed.

pub mod compute;
pub mod convert;
pub mod names;
pub mod pull;
pub mod push;
pub mod report;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use tokio_util::sync::CancellationToken;
use tracing::{info, info_span, warn, Instrument};

use crate::crm::{CrmClient, CrmError};
use crate::domain::{Rates, Rules};
use crate::store::{NewWrite, Store, StoreError, WriteKind};

pub use names::{Names, ObjectKind};
pub use report::{Change, CycleReport, ObjectStats, WriteFailure};

/// Why a cycle could not complete.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Crm(#[from] CrmError),
    #[error("the local store: {0}")]
    Store(#[from] StoreError),
    #[error("the CRM sent {object} {id} in a shape plansync cannot use: {why}")]
    BadRecord {
        object: String,
        id: String,
        why: String,
    },
    #[error("the cycle was stopped: {0}")]
    Stopped(String),
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

/// What the steps of a cycle consult between pages and batches.
pub struct Hooks<'a> {
    /// `Some(why)` when the cycle must stop at this safe point.
    pub stop: &'a dyn Fn() -> Option<String>,
    /// Told after every stored page and write batch.
    pub progress: &'a dyn Fn(&Progress),
}

/// The sync engine: a CRM client, the store and the settings.
pub struct SyncEngine {
    crm: CrmClient,
    store: Store,
    settings: SyncSettings,
    cancel: CancellationToken,
    progress: ProgressFn,
}

impl SyncEngine {
    pub fn new(crm: CrmClient, store: Store, settings: SyncSettings) -> Self {
        SyncEngine {
            crm,
            store,
            settings,
            cancel: CancellationToken::new(),
            progress: Arc::new(|_| {}),
        }
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
        let started = Instant::now();
        let now = Utc::now();
        let kind = match (options.full, options.dry_run) {
            (_, true) => "dry-run",
            (true, false) => "full",
            (false, false) => "incremental",
        };
        let run_id = self.store.start_run(kind, now)?;
        let span = info_span!("cycle", run_id, kind);
        let calls_before = self.crm.api_calls();
        let result = self.cycle(&options, now).instrument(span).await;
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
                let summary = serde_json::to_value(&report).unwrap_or_default();
                self.store
                    .finish_run(run_id, outcome, &summary, Utc::now())?;
                info!(outcome, duration_ms = elapsed, "cycle finished");
                Ok(report)
            }
            Err(err) => {
                let summary = serde_json::json!({ "error": err.to_string() });
                if let Err(store_err) =
                    self.store
                        .finish_run(run_id, "failed", &summary, Utc::now())
                {
                    warn!(error = %store_err, "could not record the failed run");
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
        options: &CycleOptions,
        now: DateTime<Utc>,
    ) -> Result<CycleReport, SyncError> {
        let today = options.as_of.unwrap_or_else(|| {
            now.with_timezone(&self.settings.rules.timezone)
                .date_naive()
        });
        let mut report = CycleReport {
            full: options.full,
            dry_run: options.dry_run,
            today: today.to_string(),
            ..CycleReport::default()
        };

        // The API budget, read once at the start (design.md §5).
        self.crm.limits().await?;
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
        };

        // Writes a previous run left in the outbox go first.
        if !options.dry_run {
            let pushed =
                push::drain(&self.crm, &mut self.store, self.settings.batch_size, &hooks).await?;
            report.records_written += pushed.records_written;
            report.fields_written += pushed.fields_written;
            report.write_failures.extend(pushed.failures);
        }

        for kind in ObjectKind::ALL {
            let object = self.settings.names.object(kind).to_string();
            let pulled = match pull::pull_object(
                &self.crm,
                &mut self.store,
                &self.settings.names,
                kind,
                options.full,
                self.settings.lookback,
                &hooks,
            )
            .await
            {
                Ok(p) => p,
                Err(SyncError::Stopped(why))
                | Err(SyncError::Crm(CrmError::QuotaExceeded { message: why })) => {
                    report.stopped_early = Some(why);
                    return Ok(report);
                }
                Err(e) => return Err(e),
            };
            let mut stats = pulled.stats;
            if options.full {
                let live: HashSet<&String> = pulled.live_ids.iter().collect();
                let gone: Vec<String> = self
                    .store
                    .live_ids(&object)?
                    .into_iter()
                    .filter(|id| !live.contains(id))
                    .collect();
                if !gone.is_empty() {
                    info!(object = %object, count = gone.len(), "removing records the CRM no longer has");
                    stats.deleted += self.store.remove_records(&object, &gone)? as u64;
                }
            }
            report.objects.insert(kind.label().to_string(), stats);
        }

        let planned = compute::plan_writes(
            &self.store,
            &self.settings.names,
            &self.settings.rules,
            Rates::single(),
            today,
            now,
        )?;
        report.plans_recomputed = planned.plans_recomputed;
        report.links_changed = planned.links_changed;
        report.findings = planned.findings.iter().map(|(_, _, m)| m.clone()).collect();
        if !options.dry_run {
            self.store.replace_findings(&planned.findings)?;
        }

        if options.dry_run {
            report.fields_written = planned.writes.iter().map(|w| w.fields.len() as u64).sum();
            report.records_written = planned.writes.len() as u64;
            report.changes = planned.writes.into_iter().flat_map(|w| w.changes).collect();
            return Ok(report);
        }

        let writes = self.without_refused(planned.writes)?;
        let new_writes: Vec<NewWrite> = writes
            .into_iter()
            .map(|w| NewWrite {
                object: w.object,
                record_id: w.record_id,
                kind: WriteKind::Update,
                fields: w.fields,
                reason: w.reason.to_string(),
            })
            .collect();
        self.store.enqueue(&new_writes, now)?;
        match push::drain(&self.crm, &mut self.store, self.settings.batch_size, &hooks).await {
            Ok(pushed) => {
                report.records_written += pushed.records_written;
                report.fields_written += pushed.fields_written;
                report.write_failures.extend(pushed.failures);
            }
            Err(SyncError::Stopped(why))
            | Err(SyncError::Crm(CrmError::QuotaExceeded { message: why })) => {
                report.stopped_early = Some(why);
            }
            Err(e) => return Err(e),
        }
        Ok(report)
    }

    /// Drops writes the CRM already refused permanently with exactly these values: they are
    /// retried only when their inputs change (design.md §3.6), or when an admin asks.
    fn without_refused(
        &self,
        writes: Vec<compute::PlannedWrite>,
    ) -> Result<Vec<compute::PlannedWrite>, SyncError> {
        let refused: BTreeMap<(String, String), serde_json::Map<String, serde_json::Value>> = self
            .store
            .failed_writes()?
            .into_iter()
            .filter(|r| r.permanent)
            .map(|r| ((r.object, r.record_id), r.fields))
            .collect();
        Ok(writes
            .into_iter()
            .filter(|w| {
                let Some(fields) = refused.get(&(w.object.clone(), w.record_id.clone())) else {
                    return true;
                };
                // The change timestamp moves every time; compare the values that matter.
                w.fields
                    .iter()
                    .filter(|(k, _)| **k != self.settings.names.plan.rollups_changed_at)
                    .any(|(k, v)| fields.get(k) != Some(v))
            })
            .collect())
    }
}
