//! One run as its steps (design.md §4): the baseline (whether every plan is recomputed), the
//! org's currencies (with the first objects' queries in the same call), the API budget from
//! that first response, the pulls with their deletions, the writes a dead run
//! left in doubt, the recompute of the plans in scope, the outbox (set aside what is no longer
//! wanted, hold back standing refusals, queue the rest with the plans' history) and the
//! write-back of every due write, the old ones included, then the store's upkeep.

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDate, Utc};
use tracing::{debug, warn};

use crate::domain::CurrencyMode;
use crate::store::NewWrite;

use super::compute::{self, Covered, Planned, Recompute, Structure, WritesTo};
use super::kind::RunName;
use super::names::ObjectKind;
use super::outbox;
use super::pull::{self, ChangedRecord, ObjectPull, Prefetched, PullMode};
use super::push::{self, Pushed};
use super::rates::{
    mode_name, rates_changed, CurrencyRead, CURRENCY_MODE, CURRENCY_MODE_FINDING, RATES_FINGERPRINT,
};
use super::report::CycleReport;
use super::scope::{self, PlanMembership};
use super::targets::{self, Pulls};
use super::{budget, off_worker, stopped_or, Hooks, SyncEngine, SyncError};

/// The meta key holding the org-time-zone date of the last run that recomputed every plan.
const RECOMPUTED_ALL_ON: &str = "recomputed_all_on";

/// Staged writes the enqueue step reads and queues at a time.
const ENQUEUE_PAGE: usize = 2_000;

/// Days of plan metric history kept (a year and a quarter, for year-over-year comparisons);
/// each plan's newest row is kept whatever its age.
const HISTORY_DAYS: i64 = 400;

/// One run: a cycle, a resync or a snapshot.
pub(super) struct Run {
    pub name: RunName,
    pub pulls: Pulls,
    /// Its kind recomputes every plan.
    pub recompute_all: bool,
    pub as_of: Option<NaiveDate>,
    /// A snapshot run: the date of its snapshots.
    pub snapshot: Option<NaiveDate>,
}

/// What the pull step leaves for the recompute.
struct Pulled {
    changed: Vec<ChangedRecord>,
    /// Plans a resync names, recomputed whatever changed.
    named_plans: BTreeSet<String>,
}

/// What the scope step leaves for the recompute.
struct Scoped {
    /// The mirror's structure; `None` when nothing is to be recomputed.
    structure: Option<Structure>,
    recompute: Recompute,
    /// The plans recomputed; `None` for every plan.
    scope: Option<BTreeSet<String>>,
}

/// What the recompute leaves for the outbox.
struct Computed {
    planned: Planned,
    /// The plans recomputed; `None` for every plan.
    scope: Option<BTreeSet<String>>,
    /// What the recompute evaluated, for the findings it replaces.
    covered: Covered,
    mode: CurrencyMode,
    fingerprint: String,
}

impl SyncEngine {
    /// Runs the steps of one run. A stop (shutdown, API budget) ends it cleanly with the
    /// report of what it did so far.
    pub(super) async fn cycle(
        &mut self,
        run: &Run,
        run_id: i64,
        now: DateTime<Utc>,
    ) -> Result<CycleReport, SyncError> {
        let zone = self.settings.rules.timezone;
        let today = run
            .as_of
            .unwrap_or_else(|| now.with_timezone(&zone).date_naive());
        let mut report = CycleReport::start(run.name, run.recompute_all, today);
        let stop = self.stop_hook();
        let (progress, clock) = (self.progress.clone(), self.clock.clone());
        let hooks = Hooks {
            stop: &stop,
            progress: &*progress,
            clock: &clock,
        };
        let steps = async {
            let all = off_worker(|| self.baseline(run, today))?;
            let prefetch = off_worker(|| self.prefetch(run))?;
            let (currency, mut prefetched) = self.currency(prefetch, &hooks, &mut report).await?;
            self.check_budget()?;
            let mut pulled = self
                .pull(
                    run,
                    currency.refresh,
                    &mut prefetched,
                    &hooks,
                    &mut report,
                    now,
                )
                .await?;
            if !run.name.dry_run {
                self.settle_in_doubt(&hooks, &mut pulled.changed, now)
                    .await?;
            }
            let scoped = off_worker(|| self.scope(all, &currency, pulled))?;
            let computed =
                off_worker(|| self.compute(run, scoped, currency, (today, now), &mut report))?;
            if run.name.dry_run {
                report.add_planned(computed.planned.writes);
                return Ok(());
            }
            off_worker(|| self.enqueue(run, run_id, computed, today, now))?;
            report.add_pushed(self.push(run, &hooks).await?);
            off_worker(|| self.maintain(now, run.recompute_all))
        };
        match steps.await {
            Ok(()) => Ok(report),
            Err(err) => stopped_or(err, report),
        }
    }

    /// Why the run must stop at a safe point (between pages and write batches): a shutdown,
    /// or the API budget as the responses of this run report it (a usage seen before the
    /// run, in an earlier run of the daemon, may be hours old and is not held against it).
    fn stop_hook(&self) -> impl Fn() -> Option<String> {
        let cancel = self.cancel.clone();
        let crm = self.crm.clone();
        let max_percent = self.settings.max_api_usage_percent;
        let calls_at_start = crm.api_calls();
        move || {
            let usage = crm.api_usage().filter(|_| crm.api_calls() > calls_at_start);
            budget::stop_reason(&cancel, usage, max_percent)
        }
    }

    /// The API budget (design.md §5), from the `Sforce-Limit-Info` header of the run's first
    /// response (the currency step's composite call), checked before anything that response
    /// brought is stored: a spent budget stops the run with its cursors as they were.
    fn check_budget(&self) -> Result<(), SyncError> {
        match budget::over_budget(self.crm.api_usage(), self.settings.max_api_usage_percent) {
            Some(why) => {
                warn!(%why, "not starting the cycle");
                Err(SyncError::Stopped(why))
            }
            None => Ok(()),
        }
    }

    /// Whether the run recomputes every plan rather than only those its changes touch
    /// ([`scope::recompute_all`]). The memberships before the pull are not read here: the
    /// scope step rebuilds them from the changes, when there are any.
    fn baseline(&self, run: &Run, today: NaiveDate) -> Result<bool, SyncError> {
        let runs = self.store.recent_runs(2)?;
        let on = self.store.meta(RECOMPUTED_ALL_ON)?;
        Ok(scope::recompute_all(
            run.recompute_all,
            runs.get(1),
            on.as_deref(),
            today,
        ))
    }

    /// Every plan's accounts, as the mirror holds them now.
    fn membership(&self) -> Result<PlanMembership, SyncError> {
        let (accounts, plans) = compute::structure(&self.store, &self.settings.names)?;
        Ok(PlanMembership::new(&accounts, &plans))
    }

    /// The accounts of one plan, as the mirror holds them now.
    fn plan_members(&self, plan_id: &str) -> Result<Vec<String>, SyncError> {
        let (accounts, plans) = compute::structure(&self.store, &self.settings.names)?;
        let hierarchy = crate::domain::membership::Hierarchy::new(&accounts);
        Ok(plans
            .iter()
            .find(|p| p.id == plan_id)
            .map(|p| {
                hierarchy
                    .members(p)
                    .into_iter()
                    .map(|(a, _)| a.to_string())
                    .collect()
            })
            .unwrap_or_default())
    }

    /// The object queries the currency step's composite call carries ahead of the pull: those
    /// of a run that pulls every object by its cursor or whole, with the currency fields the
    /// last cycle pulled. The pull uses their first pages when its queries turn out the same
    /// (the org's currency mode did not change), and asks again otherwise.
    fn prefetch(&self, run: &Run) -> Result<Vec<String>, SyncError> {
        let Pulls::Fixed(pulls) = &run.pulls else {
            return Ok(Vec::new());
        };
        let mut names = self.settings.names.clone();
        names.set_multi_currency(self.expected_multi_currency()?);
        let mut queries = Vec::new();
        for (kind, mode) in pulls {
            if matches!(mode, PullMode::Where(_)) {
                continue;
            }
            let cursor = self.store.cursor(names.object(*kind))?;
            queries.extend(pull::object_queries(
                &names,
                *kind,
                mode,
                cursor.as_ref(),
                self.settings.lookback,
            ));
        }
        Ok(queries)
    }

    /// The pull step: what the run pulls ([`targets`]), object by object with its deletions.
    async fn pull(
        &mut self,
        run: &Run,
        refresh: bool,
        prefetched: &mut Prefetched,
        hooks: &Hooks<'_>,
        report: &mut CycleReport,
        now: DateTime<Utc>,
    ) -> Result<Pulled, SyncError> {
        let mut changed = Vec::new();
        let mut named_plans = BTreeSet::new();
        let pulls = match &run.pulls {
            Pulls::Fixed(pulls) => targets::refreshed(pulls, refresh),
            Pulls::Plan(id) => {
                let first = targets::plan_first_pulls(&self.settings.names, id);
                self.pull_all(&first, prefetched, hooks, report, &mut changed, now)
                    .await?;
                named_plans.insert(id.clone());
                let members = off_worker(|| self.plan_members(id))?;
                targets::plan_pulls(&self.settings.names, id, &members)
            }
            Pulls::Account(id) => {
                let membership = off_worker(|| self.membership())?;
                named_plans.extend(membership.plans_of_account(id));
                targets::account_pulls(&self.settings.names, id)
            }
        };
        self.pull_all(&pulls, prefetched, hooks, report, &mut changed, now)
            .await?;
        Ok(Pulled {
            changed,
            named_plans,
        })
    }

    /// Pulls the objects as asked ([`pull::pull_objects`]: their queries share composite
    /// calls), then reconciles full pulls and reads the delete log where it is due
    /// ([`deletes`]).
    async fn pull_all(
        &mut self,
        pulls: &[(ObjectKind, PullMode)],
        prefetched: &mut Prefetched,
        hooks: &Hooks<'_>,
        report: &mut CycleReport,
        changed: &mut Vec<ChangedRecord>,
        now: DateTime<Utc>,
    ) -> Result<(), SyncError> {
        if let Some(why) = (hooks.stop)() {
            return Err(SyncError::Stopped(why));
        }
        let jobs = pull::pull_objects(
            &self.crm,
            &self.composite,
            &mut self.store,
            &self.settings.names,
            pulls,
            prefetched,
            (
                self.settings.lookback,
                self.settings.bulk_min_rows,
                self.settings.pull_concurrency,
            ),
            hooks,
        )
        .await?;
        for job in jobs {
            let ObjectPull {
                kind,
                mode,
                cursor_before,
                mut pulled,
            } = job;
            let object = self.settings.names.object(kind).to_string();
            if matches!(mode, PullMode::Full) {
                pulled.stats.deleted += self.remove_missing(&object)?;
            }
            if !matches!(mode, PullMode::Where(_)) {
                let full = matches!(mode, PullMode::Full);
                let removed = self
                    .deletes_if_due(kind, &object, full, cursor_before, now, hooks)
                    .await?;
                pulled.stats.deleted += removed.len() as u64;
                pulled.changed.extend(removed);
            }
            changed.extend(pulled.changed);
            let entry = report.objects.entry(kind.label().to_string()).or_default();
            entry.pulled += pulled.stats.pulled;
            entry.deleted += pulled.stats.deleted;
            entry.pages += pulled.stats.pages;
        }
        Ok(())
    }

    /// The scope step: what the recompute covers. Every plan when `all` or the rates
    /// changed; else the plans the changes touch (memberships before the pull rebuilt from
    /// the changed records' earlier values), those a resync names, and the opportunities that
    /// changed or have a link write still queued (so it is evaluated, not set aside). A cycle
    /// that pulled no change and has no link write queued reads nothing more.
    fn scope(
        &self,
        all: bool,
        currency: &CurrencyRead,
        pulled: Pulled,
    ) -> Result<Scoped, SyncError> {
        let names = &self.settings.names;
        let stored = self.store.meta(RATES_FINGERPRINT)?;
        if all || rates_changed(stored.as_deref(), &currency.fingerprint) {
            return Ok(Scoped {
                structure: Some(Structure::load(&self.store, names)?),
                recompute: Recompute::All,
                scope: None,
            });
        }
        let mut opportunities: BTreeSet<String> = self
            .store
            .unsettled_writes()?
            .into_iter()
            .filter(|w| w.object == names.opportunity.object)
            .map(|w| w.record_id)
            .collect();
        opportunities.extend(
            pulled
                .changed
                .iter()
                .filter(|c| c.kind == ObjectKind::Opportunity)
                .map(|c| c.id.clone()),
        );
        if pulled.changed.is_empty() && pulled.named_plans.is_empty() && opportunities.is_empty() {
            return Ok(Scoped {
                structure: None,
                recompute: Recompute::Some {
                    plans: BTreeSet::new(),
                    opportunities,
                },
                scope: Some(BTreeSet::new()),
            });
        }
        let structure = Structure::load(&self.store, names)?;
        let (accounts, plans) = scope::structure_before(names, &structure, &pulled.changed);
        let before = PlanMembership::new(&accounts, &plans);
        let after = PlanMembership::new(&structure.accounts, &structure.plans);
        let (links, contacts) = scope::lookups_for(&self.store, names, &pulled.changed)?;
        let lookups = scope::Lookups {
            opportunity_links: &links,
            contact_accounts: &contacts,
        };
        let mut touched = scope::touched_plans(names, &before, &after, &lookups, &pulled.changed);
        touched.extend(pulled.named_plans);
        Ok(Scoped {
            structure: Some(structure),
            recompute: Recompute::Some {
                plans: touched.clone(),
                opportunities,
            },
            scope: Some(touched),
        })
    }

    /// The compute step: links, rollups of the plans in `scope` and their diff. A snapshot
    /// run plans the snapshot records only: the plans' own fields and the links stay the
    /// cycles' job (a snapshot for a past date must not put that date's values on the live
    /// plans).
    fn compute(
        &self,
        run: &Run,
        scoped: Scoped,
        currency: CurrencyRead,
        (today, now): (NaiveDate, DateTime<Utc>),
        report: &mut CycleReport,
    ) -> Result<Computed, SyncError> {
        let names = &self.settings.names;
        let rules = &self.settings.rules;
        let Scoped {
            structure,
            recompute,
            scope,
        } = scoped;
        let dry_run = run.name.dry_run;
        let writes_to = if dry_run {
            WritesTo::Memory
        } else {
            // What the enqueue step queues is what this compute stages, nothing older.
            self.store.clear_staged_writes()?;
            WritesTo::Staging
        };
        let (mut planned, covered) = match &structure {
            Some(structure) if !compute::nothing_to_recompute(&recompute) => {
                compute::plan_writes_by_group(
                    &self.store,
                    names,
                    rules,
                    &currency.rates,
                    (today, now),
                    structure,
                    &recompute,
                    writes_to,
                )?
            }
            _ => (Planned::default(), Covered::default()),
        };
        drop(structure);
        report.plans_recomputed = planned.plans_recomputed;
        report.links_changed = planned.links_changed;
        if let Some(why) = currency.mismatch {
            let subject = names.currency.currency_type.clone();
            planned
                .findings
                .push((CURRENCY_MODE_FINDING.to_string(), subject, why));
        }
        report.findings = planned.findings.iter().map(|(_, _, m)| m.clone()).collect();
        if let Some(date) = run.snapshot {
            let writes = compute::snapshot_writes(names, &planned.rollups, &planned.states, date);
            report.snapshots = writes.len() as u64;
            report.links_changed = 0;
            match writes_to {
                WritesTo::Memory => planned.writes = writes,
                WritesTo::Staging => {
                    let staged: Vec<NewWrite> = writes.into_iter().map(NewWrite::from).collect();
                    self.store.clear_staged_writes()?;
                    self.store.stage_writes(&staged)?;
                }
            }
        }
        Ok(Computed {
            planned,
            scope,
            covered,
            mode: currency.rates.mode(),
            fingerprint: currency.fingerprint,
        })
    }

    /// The enqueue step: the findings, then the outbox (queued writes no longer wanted set
    /// aside, standing refusals held back) and the plans' metric history in one transaction;
    /// then what the next run's baseline reads. The writes are the compute step's staged ones,
    /// read back [`ENQUEUE_PAGE`] at a time.
    fn enqueue(
        &mut self,
        run: &Run,
        run_id: i64,
        computed: Computed,
        today: NaiveDate,
        now: DateTime<Utc>,
    ) -> Result<(), SyncError> {
        let Computed {
            planned,
            scope,
            covered,
            mode,
            fingerprint,
        } = computed;
        if scope::nothing_evaluated(scope.as_ref(), &covered) {
            // An unchanged cycle: the earlier findings stand, the currency mode's is stated
            // afresh; the others are not read and written again.
            self.store
                .replace_findings_of_kind(CURRENCY_MODE_FINDING, &planned.findings)?;
        } else {
            let earlier = match scope {
                Some(_) => self.store.findings()?,
                None => Vec::new(),
            };
            let findings = scope::findings_to_keep_covered(
                planned.findings,
                scope.as_ref(),
                &covered,
                earlier,
            );
            self.store.replace_findings(&findings)?;
        }
        if run.snapshot.is_none() {
            self.set_aside_unwanted(&planned.rollups, now)?;
        }
        let refusals = self.standing_refusals()?;
        let changed_at = &self.settings.names.plan.rollups_changed_at;
        // The plans' metric history moves with the writes that carry the new values; a
        // snapshot run writes no plan values, so it records none.
        let history = match run.snapshot {
            None => compute::history_metrics(&planned.rollups, &planned.states),
            Some(_) => Vec::new(),
        };
        self.store.transaction(|tx| {
            let mut after: Option<(String, String)> = None;
            loop {
                let from = after.as_ref().map(|(o, r)| (o.as_str(), r.as_str()));
                let page = tx.staged_writes(from, ENQUEUE_PAGE)?;
                let Some(last) = page.last() else { break };
                after = Some((last.object.clone(), last.record_id.clone()));
                let kept = outbox::without_refused(tx, &refusals, changed_at, page)?;
                tx.enqueue(&kept, now)?;
            }
            tx.record_history(run_id, now, &history)
        })?;
        self.store.set_meta(CURRENCY_MODE, mode_name(mode))?;
        if scope.is_none() && run.snapshot.is_none() {
            self.store.set_meta(RECOMPUTED_ALL_ON, &today.to_string())?;
            self.store.set_meta(RATES_FINGERPRINT, &fingerprint)?;
        }
        Ok(())
    }

    /// The push step: every due write, this run's and those a previous run left. A snapshot
    /// run reconciles no plan or link write (it computes as of its date), so it sends only
    /// snapshots; the next cycle reconciles and sends the rest.
    async fn push(&mut self, run: &Run, hooks: &Hooks<'_>) -> Result<Pushed, SyncError> {
        let only_object = run
            .snapshot
            .map(|_| self.settings.names.snapshot.object.as_str());
        push::drain(
            &self.crm,
            &self.composite,
            &mut self.store,
            &push::WriteSettings::new(
                self.settings.batch_size,
                self.settings.bulk_min_writes,
                self.settings.names.written_fields(),
            ),
            only_object,
            hooks,
        )
        .await
    }

    /// Keeps the store from growing for months: settled writes move to the archive after 31
    /// days (design.md §5), the run log keeps 90 days, plan history [`HISTORY_DAYS`] (each
    /// plan's newest row always), and a full run drops tombstones of
    /// deletions older than the recycle bin's 15 days (twice that, to be safe).
    pub(super) fn maintain(&mut self, now: DateTime<Utc>, full: bool) -> Result<(), SyncError> {
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
}
