//! Step 1 of the cycle (design.md §4): pull each object changed since its cursor through
//! `queryAll`, ordered by (SystemModstamp, Id), storing each page in one transaction with the
//! cursor advance so a crash loses no page. A resync pulls by a filter instead, ignoring and
//! keeping the cursor.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value};
use tracing::{debug, info, info_span, warn, Instrument};

use crate::crm::{pages, soql, BulkQuery, CrmClient, CrmError};
use crate::store::{Cursor, MirrorRecord, Store};

use super::bulk::{large_pulls, start_bulk_jobs, store_bulk};
use super::convert::{parse_datetime, text};
use super::names::{Names, ObjectKind, IS_DELETED, SYSTEM_MODSTAMP};
use super::reads;
use super::report::ObjectStats;
use super::{off_worker, Hooks, Progress, SyncError};

/// What to pull of one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullMode {
    /// What changed since the cursor, minus the lookback; advances the cursor.
    Incremental,
    /// Every record; advances the cursor; local rows the CRM no longer has are removed.
    Full,
    /// The records matching each WHERE clause; the cursor is left as it is.
    Where(Vec<String>),
}

/// Builds the query of one object: `filter` is the WHERE clause, if any.
pub fn build_query(names: &Names, kind: ObjectKind, filter: Option<&str>) -> String {
    let fields = names.select_fields(kind).join(", ");
    let object = names.object(kind);
    match filter {
        Some(filter) => {
            format!("SELECT {fields} FROM {object} WHERE {filter} ORDER BY {SYSTEM_MODSTAMP}, Id")
        }
        None => format!("SELECT {fields} FROM {object} ORDER BY {SYSTEM_MODSTAMP}, Id"),
    }
}

/// The incremental filter: what changed at or after `at` (the cursor minus the lookback).
pub fn since_filter(at: DateTime<Utc>) -> String {
    format!("{SYSTEM_MODSTAMP} >= {}", soql::datetime(at))
}

/// A record that arrived with different values than the mirror held.
#[derive(Debug, Clone)]
pub struct ChangedRecord {
    pub kind: ObjectKind,
    pub id: String,
    /// The mirror's fields before the pull (None for a new record).
    pub before: Option<Map<String, Value>>,
    /// The fields as the CRM sent them (of a deleted record too).
    pub after: Map<String, Value>,
    pub deleted: bool,
}

/// What a pull of one object saw.
#[derive(Debug, Default)]
pub struct Pulled {
    pub stats: ObjectStats,
    /// A full pull: the Ids the CRM returns as live are noted in the store
    /// ([`Store::note_live`]) for the reconcile that follows it.
    pub note_live: bool,
    /// Records whose values differ from the mirror's (for incremental pulls only; a full
    /// pull recomputes everything anyway).
    pub changed: Vec<ChangedRecord>,
    /// Rows the object's queries announced so far (their totalSize summed), for progress.
    pub expected: u64,
}

/// Pulls the records of one object that match any of `filters` (WHERE clauses) into the
/// store, plain REST, query by query; the object's cursor stays as it is.
pub async fn pull_where(
    crm: &CrmClient,
    store: &mut Store,
    names: &Names,
    kind: ObjectKind,
    filters: &[String],
    hooks: &Hooks<'_>,
) -> Result<Pulled, SyncError> {
    let object = names.object(kind).to_string();
    let span = info_span!("pull", object = %object);
    async {
        let mut pulled = Pulled::default();
        for filter in filters {
            let query = build_query(names, kind, Some(filter));
            run_query(
                crm,
                store,
                kind,
                &object,
                &query,
                false,
                true,
                &mut pulled,
                hooks,
            )
            .await?;
        }
        Ok(pulled)
    }
    .instrument(span)
    .await
}

/// Whether the CRM gave up on a query for running too long (wire doc §3: shrink the window).
fn is_query_timeout(error: &SyncError) -> bool {
    matches!(error, SyncError::Crm(e) if crm_timeout(e))
}

/// Whether the CRM gave up on a query for running too long.
pub fn crm_timeout(error: &CrmError) -> bool {
    error.error_code() == Some("QUERY_TIMEOUT")
}

/// The queries of one object's pull: what changed since `cursor` (minus the lookback), every
/// record, or one query per WHERE clause.
pub fn object_queries(
    names: &Names,
    kind: ObjectKind,
    mode: &PullMode,
    cursor: Option<&Cursor>,
    lookback: Duration,
) -> Vec<String> {
    match mode {
        PullMode::Incremental => {
            let filter = cursor.map(|c| since_filter(c.system_modstamp - lookback));
            vec![build_query(names, kind, filter.as_deref())]
        }
        PullMode::Full => vec![build_query(names, kind, None)],
        PullMode::Where(filters) => filters
            .iter()
            .map(|f| build_query(names, kind, Some(f)))
            .collect(),
    }
}

/// One object's pull in a [`pull_objects`] run.
#[derive(Debug)]
pub struct ObjectPull {
    pub kind: ObjectKind,
    pub mode: PullMode,
    /// The object's cursor before the pull.
    pub cursor_before: Option<Cursor>,
    pub pulled: Pulled,
}

/// First pages already read (by the currency step's composite call), by their SOQL.
pub type Prefetched = std::collections::HashMap<String, crate::crm::QueryPage>;

/// Pulls several objects at once: every query of every object goes through
/// [`reads::read_pages`] (composite calls of up to five query operations), each page stored
/// as it arrives with its object's cursor advance. A prefetched first page whose query is
/// the one asked is used instead of asking again. An object whose query times out is pulled
/// again by SystemModstamp windows.
#[allow(clippy::too_many_arguments)]
pub async fn pull_objects(
    crm: &CrmClient,
    composite: &reads::Composite,
    store: &mut Store,
    names: &Names,
    pulls: &[(ObjectKind, PullMode)],
    prefetched: &mut Prefetched,
    (lookback, bulk_min_rows, concurrency): (Duration, u64, usize),
    hooks: &Hooks<'_>,
) -> Result<Vec<ObjectPull>, SyncError> {
    let mut jobs = Vec::with_capacity(pulls.len());
    for (kind, mode) in pulls {
        let object = names.object(*kind).to_string();
        let cursor_before = off_worker(|| store.cursor(&object))?;
        let full = matches!(mode, PullMode::Full);
        if full {
            off_worker(|| store.clear_noted_live(&object))?;
        }
        jobs.push(ObjectPull {
            kind: *kind,
            mode: mode.clone(),
            cursor_before,
            pulled: Pulled {
                note_live: full,
                ..Pulled::default()
            },
        });
    }
    let large = large_pulls(
        crm,
        composite,
        store,
        names,
        &jobs,
        prefetched,
        bulk_min_rows,
        hooks,
    )
    .await?;
    let mut by_rest = vec![true; jobs.len()];
    for batch in large.chunks(concurrency.max(1)) {
        if let Some(why) = (hooks.stop)() {
            return Err(SyncError::Stopped(why));
        }
        for (j, started) in start_bulk_jobs(crm, store, names, &jobs, batch).await? {
            match started {
                BulkQuery::Ready(results) => {
                    store_bulk(store, names, &mut jobs[j], results, hooks).await?;
                    by_rest[j] = false;
                }
                BulkQuery::Refused(refusal) => {
                    info!(object = names.object(jobs[j].kind), code = %refusal.code,
                        message = %refusal.message,
                        "the CRM will not run this pull as a Bulk query job: pulling through REST");
                }
            }
        }
    }
    let mut sources = Vec::new();
    // Per source: its job, and whether its first page was seen.
    let mut owners: Vec<(usize, bool)> = Vec::new();
    for (j, job) in jobs.iter().enumerate() {
        if !by_rest[j] {
            continue;
        }
        let (kind, mode) = (&job.kind, &job.mode);
        for soql in object_queries(names, *kind, mode, job.cursor_before.as_ref(), lookback) {
            sources.push(match prefetched.remove(&soql) {
                Some(page) => reads::Source::Page(page),
                None => reads::Source::Query {
                    soql,
                    include_deleted: true,
                },
            });
            owners.push((j, false));
        }
    }
    let results = reads::read_pages(
        crm,
        composite,
        concurrency,
        sources,
        hooks.stop,
        |source, page| {
            let (j, seen) = &mut owners[source];
            let job = &mut jobs[*j];
            if !*seen {
                job.pulled.expected += page.total_size;
                *seen = true;
            }
            let object = names.object(job.kind);
            let advance = !matches!(job.mode, PullMode::Where(_));
            let track = !matches!(job.mode, PullMode::Full);
            store_page(
                store,
                job.kind,
                object,
                page.records,
                advance,
                track,
                &mut job.pulled,
                hooks,
            )?;
            Ok(())
        },
    )
    .await?;
    let mut windowed = std::collections::BTreeSet::new();
    for (source, result) in results.into_iter().enumerate() {
        let Err(error) = result else { continue };
        let j = owners[source].0;
        let job = &mut jobs[j];
        let object = names.object(job.kind).to_string();
        match &job.mode {
            PullMode::Incremental | PullMode::Full if crm_timeout(&error) => {
                if !windowed.insert(j) {
                    continue;
                }
                warn!(object = %object, "the query timed out: pulling by SystemModstamp windows");
                let from = match job.mode {
                    PullMode::Incremental => job
                        .cursor_before
                        .as_ref()
                        .map(|c| c.system_modstamp - lookback),
                    _ => None,
                }
                .unwrap_or_else(earliest_modstamp);
                let until = hooks.clock.now() + Duration::minutes(1);
                let track = matches!(job.mode, PullMode::Incremental);
                pull_windows(
                    crm,
                    store,
                    names,
                    job.kind,
                    (from, until),
                    track,
                    &mut job.pulled,
                    hooks,
                )
                .await?;
            }
            _ => return Err(error.into()),
        }
    }
    Ok(jobs)
}

/// Before any record's SystemModstamp (the CRM began in 1999).
fn earliest_modstamp() -> DateTime<Utc> {
    DateTime::from_timestamp(915_148_800, 0).unwrap_or_default()
}

/// Pulls `[from, until)` as ascending SystemModstamp windows, halving a window whose query
/// times out, down to a minute (as tap-salesforce and Airbyte do). Ascending order keeps
/// every cursor advance valid.
#[allow(clippy::too_many_arguments)]
async fn pull_windows(
    crm: &CrmClient,
    store: &mut Store,
    names: &Names,
    kind: ObjectKind,
    (from, until): (DateTime<Utc>, DateTime<Utc>),
    track_changes: bool,
    pulled: &mut Pulled,
    hooks: &Hooks<'_>,
) -> Result<(), SyncError> {
    let object = names.object(kind).to_string();
    // Halves of a window: the earlier is pulled first, so it goes on the stack last.
    let mut windows = vec![halve(from, until)[1], halve(from, until)[0]];
    while let Some((lo, hi)) = windows.pop() {
        let filter = format!(
            "{SYSTEM_MODSTAMP} >= {} AND {SYSTEM_MODSTAMP} < {}",
            soql::datetime(lo),
            soql::datetime(hi)
        );
        let query = build_query(names, kind, Some(&filter));
        match run_query(
            crm,
            store,
            kind,
            &object,
            &query,
            true,
            track_changes,
            pulled,
            hooks,
        )
        .await
        {
            Err(e) if is_query_timeout(&e) && hi - lo > Duration::minutes(1) => {
                let [first, second] = halve(lo, hi);
                windows.push(second);
                windows.push(first);
            }
            other => other?,
        }
    }
    Ok(())
}

fn halve(lo: DateTime<Utc>, hi: DateTime<Utc>) -> [(DateTime<Utc>, DateTime<Utc>); 2] {
    let mid = lo + (hi - lo) / 2;
    [(lo, mid), (mid, hi)]
}

/// Runs one query through all its pages into the store.
#[allow(clippy::too_many_arguments)]
async fn run_query(
    crm: &CrmClient,
    store: &mut Store,
    kind: ObjectKind,
    object: &str,
    query: &str,
    advance_cursor: bool,
    track_changes: bool,
    pulled: &mut Pulled,
    hooks: &Hooks<'_>,
) -> Result<(), SyncError> {
    debug!(%query, "querying");
    let first = crm.query(query, true).await?;
    pulled.expected += first.total_size;
    pages::follow(
        crm,
        first,
        || (hooks.stop)().map(SyncError::Stopped),
        |page| {
            store_page(
                store,
                kind,
                object,
                page.records,
                advance_cursor,
                track_changes,
                pulled,
                hooks,
            )?;
            Ok(())
        },
    )
    .await
}

/// Stores one page of a query in one transaction with the cursor advance (when
/// `advance_cursor`), noting the records whose values changed (when `track_changes`), then
/// reports the object's rows so far to `hooks.progress`.
#[allow(clippy::too_many_arguments)]
pub(super) fn store_page(
    store: &mut Store,
    kind: ObjectKind,
    object: &str,
    rows: Vec<Map<String, Value>>,
    advance_cursor: bool,
    track_changes: bool,
    pulled: &mut Pulled,
    hooks: &Hooks<'_>,
) -> Result<(), SyncError> {
    let records = rows
        .into_iter()
        .map(|fields| mirror_record(object, fields))
        .collect::<Result<Vec<_>, _>>()?;
    // The mirror's versions of the whole page, in one query.
    let mut previous = if track_changes {
        let ids: Vec<String> = records.iter().map(|r| r.id.clone()).collect();
        off_worker(|| store.records_by_id(object, &ids))?
    } else {
        Default::default()
    };
    let mut live = Vec::new();
    for record in &records {
        if record.is_deleted {
            pulled.stats.deleted += 1;
        } else {
            pulled.stats.pulled += 1;
            if pulled.note_live {
                live.push(record.id.clone());
            }
        }
        if track_changes {
            let before = previous.remove(&record.id);
            let unchanged = before.as_ref().is_some_and(|b| {
                b.is_deleted == record.is_deleted && same_values(&b.fields, &record.fields)
            });
            if !unchanged {
                pulled.changed.push(ChangedRecord {
                    kind,
                    id: record.id.clone(),
                    before: before.filter(|b| !b.is_deleted).map(|b| b.fields),
                    after: record.fields.clone(),
                    deleted: record.is_deleted,
                });
            }
        }
    }
    let next_cursor = records.last().filter(|_| advance_cursor).map(|r| Cursor {
        system_modstamp: r.system_modstamp,
        id: r.id.clone(),
    });
    off_worker(|| store.apply_page(object, &records, next_cursor.as_ref()))?;
    if !live.is_empty() {
        off_worker(|| store.note_live(object, &live))?;
    }
    pulled.stats.pages += 1;
    (hooks.progress)(&Progress::Pulled {
        object: object.to_string(),
        rows: pulled.stats.pulled + pulled.stats.deleted,
        total: pulled.expected,
    });
    Ok(())
}

/// Whether the mirror's version of a record (`before`) holds the values the CRM just sent
/// (`pulled`): over the pulled fields, SystemModstamp aside (it moves with every write, ours
/// included), numbers compared by value (`10000` = `10000.00`). Fields the mirror has beyond
/// the pulled ones (written but not selected) do not count.
pub fn same_values(before: &Map<String, Value>, pulled: &Map<String, Value>) -> bool {
    pulled
        .iter()
        .filter(|(k, _)| *k != SYSTEM_MODSTAMP)
        .all(|(k, new)| match (before.get(k), new) {
            (Some(old @ Value::Number(_)), Value::Number(_)) => {
                super::convert::json_decimal(old) == super::convert::json_decimal(new)
            }
            (Some(old), new) => old == new,
            (None, new) => new.is_null(),
        })
}

/// A pulled row as the mirror keeps it.
fn mirror_record(object: &str, fields: Map<String, Value>) -> Result<MirrorRecord, SyncError> {
    let id = text(&fields, "Id").ok_or_else(|| SyncError::BadRecord {
        object: object.to_string(),
        id: "?".into(),
        why: "the record has no Id".into(),
    })?;
    let system_modstamp = text(&fields, SYSTEM_MODSTAMP)
        .as_deref()
        .and_then(parse_datetime)
        .ok_or_else(|| SyncError::BadRecord {
            object: object.to_string(),
            id: id.clone(),
            why: format!("{SYSTEM_MODSTAMP} is missing or not a datetime"),
        })?;
    let is_deleted = super::convert::boolean(&fields, IS_DELETED);
    Ok(MirrorRecord {
        id,
        system_modstamp,
        is_deleted,
        fields,
    })
}

/// `Field IN ('a','b',...)` clauses of at most 100 Ids each, so no query URL gets too long.
pub fn in_filters(field: &str, ids: &[String]) -> Vec<String> {
    ids.chunks(100)
        .map(|chunk| format!("{field} IN {}", soql::id_list(chunk)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_select_the_mapped_fields_in_modstamp_order() {
        let names = Names::default();
        let q = build_query(&names, ObjectKind::Contact, None);
        assert_eq!(
            q,
            "SELECT Id, SystemModstamp, IsDeleted, AccountId FROM Contact ORDER BY SystemModstamp, Id"
        );
        let cursor = parse_datetime("2026-08-15T10:10:00.000+0000").unwrap();
        let filter = since_filter(cursor - Duration::seconds(600));
        assert_eq!(filter, "SystemModstamp >= 2026-08-15T10:00:00.000Z");
    }

    #[test]
    fn values_compare_without_the_modstamp_and_numbers_by_value() {
        let a: Map<String, Value> = serde_json::from_str(
            r#"{"Id":"x","SystemModstamp":"2026-01-01T00:00:00.000+0000","Amount":10000}"#,
        )
        .unwrap();
        let b: Map<String, Value> = serde_json::from_str(
            r#"{"Id":"x","SystemModstamp":"2026-01-02T00:00:00.000+0000","Amount":10000.00}"#,
        )
        .unwrap();
        assert!(same_values(&a, &b));
        let c: Map<String, Value> =
            serde_json::from_str(r#"{"Id":"x","SystemModstamp":"s","Amount":10000.01}"#).unwrap();
        assert!(!same_values(&a, &c));
        let d: Map<String, Value> =
            serde_json::from_str(r#"{"Id":"x","SystemModstamp":"s","Name":"n"}"#).unwrap();
        assert!(!same_values(&a, &d));
        // Fields the mirror has beyond the pulled ones (written, not selected) do not count.
        let e: Map<String, Value> =
            serde_json::from_str(r#"{"Id":"x","SystemModstamp":"s"}"#).unwrap();
        assert!(same_values(&a, &e));
    }

    #[test]
    fn long_id_lists_are_split_into_several_filters() {
        let ids: Vec<String> = (0..250).map(|i| format!("001{i:015}")).collect();
        let filters = in_filters("AccountId", &ids);
        assert_eq!(filters.len(), 3);
        assert!(filters[0].starts_with("AccountId IN ('001000000000000000',"));
        assert_eq!(filters[2].matches(',').count(), 49);
    }
}
