//! The outbox policy of a cycle (design.md §3.6, §4.5): which writes a run that died left in
//! doubt landed, which queued writes this recompute no longer wants (set aside, so a stale
//! value is never sent), and which planned writes repeat a standing refusal (held back until
//! their values or the record change). The decisions are pure functions; the engine methods
//! load their inputs from the store and apply them.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use tracing::{info, warn};

use crate::domain::Rollups;
use crate::store::{MirrorRecord, NewWrite, OutboxRow, StoreError, StoreTx, WriteKind};

use super::names::{Names, ObjectKind};
use super::pull::{self, ChangedRecord, PullMode};
use super::{convert, off_worker, Hooks, SyncEngine, SyncError};

/// Whether a record as re-read from the CRM (`crm`) holds the values of a write (`written`):
/// over the written fields the read carries (a field the cycle does not read, such as the
/// rollups' change time, cannot tell), numbers by value, with at least one field compared.
pub fn crm_holds(crm: &Map<String, Value>, written: &Map<String, Value>) -> bool {
    let mut compared = 0;
    for (name, value) in written {
        let Some(held) = crm.get(name) else {
            continue;
        };
        compared += 1;
        let same = match (held, value) {
            (Value::Null, Value::Null) => true,
            (Value::Null, _) | (_, Value::Null) => false,
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

/// The re-reads that settle writes in doubt: the records of their updates, by object, as Id
/// filters (an upsert is simply queued again, nothing to re-read). Rows on objects the
/// cycle does not pull are left out.
pub fn rereads(in_doubt: &[OutboxRow], names: &Names) -> Vec<(ObjectKind, PullMode)> {
    let mut by_kind: BTreeMap<&'static str, (ObjectKind, Vec<String>)> = BTreeMap::new();
    for row in in_doubt {
        if !matches!(row.kind, WriteKind::Update) {
            continue;
        }
        let kind = ObjectKind::ALL
            .into_iter()
            .find(|k| names.object(*k) == row.object);
        if let Some(kind) = kind {
            let ids = &mut by_kind.entry(kind.label()).or_insert((kind, Vec::new())).1;
            if !ids.contains(&row.record_id) {
                ids.push(row.record_id.clone());
            }
        }
    }
    by_kind
        .into_values()
        .map(|(kind, ids)| (kind, PullMode::Where(pull::in_filters("Id", &ids))))
        .collect()
}

/// Whether a write in doubt landed: an update whose record, as just re-read, is live and
/// holds its values. Any other goes back to the queue.
pub fn landed(row: &OutboxRow, record: Option<&MirrorRecord>) -> bool {
    matches!(row.kind, WriteKind::Update)
        && record.is_some_and(|r| !r.is_deleted && crm_holds(&r.fields, &row.fields))
}

/// What this recompute recomputed, for deciding which queued writes it no longer wants.
pub struct Wanted<'a> {
    /// The opportunity object (link writes) and the plan object (rollup writes).
    pub link_object: &'a str,
    pub plan_object: &'a str,
    /// The plans this recompute recomputed.
    pub recomputed: &'a BTreeMap<String, Rollups>,
}

impl<'a> Wanted<'a> {
    pub fn new(names: &'a Names, recomputed: &'a BTreeMap<String, Rollups>) -> Self {
        Wanted {
            link_object: &names.opportunity.object,
            plan_object: &names.plan.object,
            recomputed,
        }
    }

    /// Whether deciding about `row` needs its plan record: a plan write for a plan this
    /// recompute did not recompute (it is unwanted only if the CRM deleted the plan).
    pub fn needs_plan_record(&self, row: &OutboxRow) -> bool {
        row.object == self.plan_object && !self.recomputed.contains_key(&row.record_id)
    }

    /// Whether a queued write is to be set aside: an update of an opportunity's link or of a
    /// plan's rollups for a record this recompute plans no write for (`planned` false), when
    /// it recomputed that plan (it has nothing to change) or the plan is gone from the mirror
    /// (`plan_gone`; a deleted plan). Other writes (snapshots, writes on plans left alone)
    /// stay queued.
    pub fn unwanted(&self, row: &OutboxRow, planned: bool, plan_gone: bool) -> bool {
        let is_link = row.object == self.link_object;
        let is_rollup = row.object == self.plan_object
            && (self.recomputed.contains_key(&row.record_id) || plan_gone);
        (is_link || is_rollup) && matches!(row.kind, WriteKind::Update) && !planned
    }
}

/// Whether a planned write (its `fields`) repeats a standing refusal (the CRM refused it for
/// good, or an admin ignored it) and is held back: the same values (the change time aside, it
/// moves every time) on a record unchanged in the CRM since the refusal (`record_modstamp`; a
/// validation rule's inputs may have changed since).
pub fn repeats_refusal(
    fields: &Map<String, Value>,
    refusal: &OutboxRow,
    record_modstamp: Option<DateTime<Utc>>,
    changed_at: &str,
) -> bool {
    let same_values = fields
        .iter()
        .filter(|(k, _)| *k != changed_at)
        .all(|(k, v)| refusal.fields.get(k) == Some(v));
    let record_changed = record_modstamp.is_some_and(|m| m > refusal.updated_at);
    same_values && !record_changed
}

impl SyncEngine {
    /// Settles the writes whose outcome is unknown (design.md §4.5): rows left SENT by a run
    /// that died with their request in flight (runs are serialized, so none is in flight
    /// now). Their records are re-read from the CRM into the mirror, so this run's diff
    /// starts from what the CRM really holds; a row whose values the CRM holds succeeded (and
    /// its change time is not stamped again), any other goes back to the queue, where this
    /// run's recompute supersedes it with the newest wanted values or sets it aside.
    pub(super) async fn settle_in_doubt(
        &mut self,
        hooks: &Hooks<'_>,
        changed: &mut Vec<ChangedRecord>,
        now: DateTime<Utc>,
    ) -> Result<(), SyncError> {
        let in_doubt = off_worker(|| self.store.writes_in_doubt())?;
        if in_doubt.is_empty() {
            return Ok(());
        }
        warn!(
            writes = in_doubt.len(),
            "writes were in flight when plansync last stopped: re-reading their records"
        );
        for (kind, mode) in &rereads(&in_doubt, &self.settings.names) {
            // Re-reads are by Id filters, never by cursor.
            let PullMode::Where(filters) = mode else {
                continue;
            };
            let pulled = pull::pull_where(
                &self.crm,
                &mut self.store,
                &self.settings.names,
                *kind,
                filters,
                hooks,
            )
            .await?;
            changed.extend(pulled.changed);
        }
        let (landed, requeued, settled) = off_worker(|| {
            let mut records = HashMap::new();
            for row in in_doubt
                .iter()
                .filter(|r| matches!(r.kind, WriteKind::Update))
            {
                records.insert(row.id, self.store.record(&row.object, &row.record_id)?);
            }
            let (landed, requeued): (Vec<&OutboxRow>, Vec<&OutboxRow>) = in_doubt
                .iter()
                .partition(|row| landed(row, records.get(&row.id).and_then(Option::as_ref)));
            let landed: Vec<i64> = landed.iter().map(|r| r.id).collect();
            let requeued: Vec<i64> = requeued.iter().map(|r| r.id).collect();
            let settled = self.store.settle_in_doubt(&landed, &requeued, now)?;
            Ok::<_, SyncError>((landed.len(), requeued.len(), settled))
        })?;
        info!(
            landed,
            requeued, settled, "settled the writes whose outcome was unknown"
        );
        Ok(())
    }

    /// Sets aside (IGNORED, `set_aside`) the queued writes this recompute no longer wants
    /// ([`Wanted::unwanted`]): they would otherwise be sent after the fact and put back an
    /// outdated value (or fail on a deleted record).
    pub(super) fn set_aside_unwanted(
        &mut self,
        recomputed: &BTreeMap<String, Rollups>,
        now: DateTime<Utc>,
    ) -> Result<(), SyncError> {
        let wanted = Wanted::new(&self.settings.names, recomputed);
        let mut set_aside = 0;
        for row in self.store.unsettled_writes()? {
            let planned = self.store.is_staged(&row.object, &row.record_id)?;
            let plan_gone = wanted.needs_plan_record(&row)
                && self
                    .store
                    .record(&row.object, &row.record_id)?
                    .is_none_or(|r| r.is_deleted);
            if wanted.unwanted(&row, planned, plan_gone) {
                self.store.set_aside_write(row.id, now)?;
                set_aside += 1;
            }
        }
        if set_aside > 0 {
            info!(set_aside, "queued writes no longer wanted were set aside");
        }
        Ok(())
    }

    /// The standing refusals ([`Store::standing_refusals`]) by (object, record Id), for
    /// [`without_refused`].
    pub(super) fn standing_refusals(&self) -> Result<Refusals, SyncError> {
        Ok(self
            .store
            .standing_refusals()?
            .into_iter()
            .map(|row| ((row.object.clone(), row.record_id.clone()), row))
            .collect())
    }
}

/// Standing refusals by (object, record Id).
pub(super) type Refusals = BTreeMap<(String, String), OutboxRow>;

/// Drops the planned writes that repeat a standing refusal ([`repeats_refusal`]): they are
/// tried again only when their values change, or when the record itself has changed in the
/// CRM since (design.md §3.6). `changed_at` is the plan's rollups change time field.
pub(super) fn without_refused(
    tx: &StoreTx<'_>,
    refused: &Refusals,
    changed_at: &str,
    writes: Vec<NewWrite>,
) -> Result<Vec<NewWrite>, StoreError> {
    let mut kept = Vec::with_capacity(writes.len());
    for w in writes {
        let Some(refusal) = refused.get(&(w.object.clone(), w.record_id.clone())) else {
            kept.push(w);
            continue;
        };
        let modstamp = tx
            .record(&w.object, &w.record_id)?
            .map(|r| r.system_modstamp);
        if !repeats_refusal(&w.fields, refusal, modstamp, changed_at) {
            kept.push(w);
        }
    }
    Ok(kept)
}

#[cfg(test)]
#[path = "outbox_tests.rs"]
mod tests;
