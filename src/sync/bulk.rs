//! Full pulls through Bulk API 2.0 query jobs (wire doc §8): which pulls are large enough to
//! take that way, the jobs started for them, and their CSV result sets stored as the pages of
//! their objects. The REST pull in [`super::pull`] takes every other pull, and any object the
//! org refuses to a job.

use serde_json::{Map, Value};
use tracing::{debug, info};

use crate::crm::{
    BulkOptions, BulkQuery, BulkResults, ColumnType, ColumnTypes, CrmClient, CrmError,
};
use crate::store::{Cursor, Store};

use super::convert::{parse_datetime, text};
use super::names::{Names, SYSTEM_MODSTAMP};
use super::pull::{build_query, store_page, ObjectPull, Prefetched, PullMode};
use super::reads;
use super::{off_worker, Hooks, SyncError};

/// Whether a pull takes every record of its object: a full pull, or the first pull of an
/// object (no cursor yet).
fn takes_everything(job: &ObjectPull) -> bool {
    match job.mode {
        PullMode::Full => true,
        PullMode::Incremental => job.cursor_before.is_none(),
        PullMode::Where(_) => false,
    }
}

/// The pulls (by index) that take every record of an object expected to hold at least
/// `bulk_min_rows` rows: expected from the mirror's rows, or, when the mirror holds none of
/// an object never pulled before (a first sync), from the CRM's count (the `totalSize` of a first page already read, or a
/// `SELECT COUNT()`, five to a composite call).
#[allow(clippy::too_many_arguments)]
pub(super) async fn large_pulls(
    crm: &CrmClient,
    composite: &reads::Composite,
    store: &mut Store,
    names: &Names,
    jobs: &[ObjectPull],
    prefetched: &Prefetched,
    bulk_min_rows: u64,
    hooks: &Hooks<'_>,
) -> Result<Vec<usize>, SyncError> {
    let mut expected: Vec<Option<u64>> = vec![None; jobs.len()];
    let mut counts = Vec::new();
    for (j, job) in jobs.iter().enumerate() {
        if !takes_everything(job) {
            continue;
        }
        let object = names.object(job.kind);
        let held = off_worker(|| store.live_ids(object))?.len() as u64;
        // An object pulled whole before (its delete log counts as read since) that the mirror
        // holds no row of is expected empty: no count is asked for it.
        let pulled_before = off_worker(|| store.meta(&super::deletes::delete_log_key(object)))?;
        if held > 0 || pulled_before.is_some() {
            expected[j] = Some(held);
            continue;
        }
        match whole_object_total(prefetched, object) {
            Some(total) => expected[j] = Some(total),
            None => counts.push(j),
        }
    }
    if !counts.is_empty() {
        let sources = counts
            .iter()
            .map(|j| reads::Source::Query {
                soql: format!("SELECT COUNT() FROM {}", names.object(jobs[*j].kind)),
                include_deleted: false,
            })
            .collect();
        let outcomes = reads::read_pages(crm, composite, 1, sources, hooks.stop, |i, page| {
            expected[counts[i]] = Some(page.total_size);
            Ok(())
        })
        .await?;
        for (i, outcome) in outcomes.into_iter().enumerate() {
            if let Err(e) = outcome {
                let object = names.object(jobs[counts[i]].kind);
                debug!(object, error = %e, "no count: pulled through REST");
                expected[counts[i]] = None;
            }
        }
    }
    Ok(expected
        .iter()
        .enumerate()
        .filter(|(_, rows)| rows.is_some_and(|rows| rows >= bulk_min_rows))
        .map(|(j, _)| j)
        .collect())
}

/// The row count of `object` a prefetched first page of its whole-object query gave: its
/// `totalSize`, whatever fields it selected (the currency step may have prefetched it with
/// the currency fields of another mode).
fn whole_object_total(prefetched: &Prefetched, object: &str) -> Option<u64> {
    let tail = format!(" FROM {object} ORDER BY {SYSTEM_MODSTAMP}, Id");
    prefetched
        .iter()
        .find(|(soql, _)| soql.starts_with("SELECT ") && soql.ends_with(&tail))
        .map(|(_, page)| page.total_size)
}

/// The meta key holding the column types of an object's Bulk results, from its describe.
fn bulk_columns_key(object: &str) -> String {
    format!("bulk_columns:{object}")
}

/// The column types of the fields `fields` of `object`, for parsing its Bulk CSV results as
/// a REST page holds them: from the store (kept from the last describe), or from the CRM's
/// describe of the object (then kept).
async fn column_types(
    crm: &CrmClient,
    store: &mut Store,
    object: &str,
    fields: &[String],
) -> Result<ColumnTypes, SyncError> {
    let key = bulk_columns_key(object);
    let kept = off_worker(|| store.meta(&key))?
        .and_then(|text| serde_json::from_str::<Map<String, Value>>(&text).ok())
        .filter(|kept| fields.iter().all(|f| kept.contains_key(f)));
    let kept = match kept {
        Some(kept) => kept,
        None => {
            let describe = crm.describe(object).await?;
            let described: Map<String, Value> = describe
                .get("fields")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|f| {
                    let name = f.get("name")?.as_str()?;
                    let ty = f.get("type")?.as_str()?;
                    fields
                        .iter()
                        .any(|wanted| wanted == name)
                        .then(|| (name.to_string(), Value::String(ty.to_string())))
                })
                .collect();
            let text = Value::Object(described.clone()).to_string();
            off_worker(|| store.set_meta(&key, &text))?;
            described
        }
    };
    let mut types = ColumnTypes::default();
    for (name, ty) in &kept {
        types.set(name, ColumnType::from_describe(ty.as_str().unwrap_or("")));
    }
    Ok(types)
}

/// Starts the Bulk API 2.0 query jobs (queryAll of every record) of the pulls `batch` (indexes
/// into `jobs`) at the same time and waits for each to complete or be refused; in `batch`
/// order. Only the network waits run together: the store is written by the caller, one
/// job after the other.
pub(super) async fn start_bulk_jobs(
    crm: &CrmClient,
    store: &mut Store,
    names: &Names,
    jobs: &[ObjectPull],
    batch: &[usize],
) -> Result<Vec<(usize, BulkQuery)>, SyncError> {
    let mut set = tokio::task::JoinSet::new();
    for (n, j) in batch.iter().enumerate() {
        let kind = jobs[*j].kind;
        let object = names.object(kind).to_string();
        let types = column_types(crm, store, &object, &names.select_fields(kind)).await?;
        let query = build_query(names, kind, None);
        let crm = crm.clone();
        set.spawn(async move {
            let started = crm
                .bulk_query(&query, true, &types, &BulkOptions::default())
                .await;
            (n, started)
        });
    }
    let mut started: Vec<Option<Result<BulkQuery, CrmError>>> =
        batch.iter().map(|_| None).collect();
    while let Some(joined) = set.join_next().await {
        if let Ok((n, answer)) = joined {
            started[n] = Some(answer);
        }
    }
    let mut out = Vec::with_capacity(batch.len());
    for (j, answer) in batch.iter().zip(started) {
        let answer = answer.unwrap_or_else(|| {
            Err(CrmError::InvalidRequest(
                "a Bulk query job ended without an answer".into(),
            ))
        })?;
        out.push((*j, answer));
    }
    Ok(out)
}

/// Stores every result set of a completed Bulk query job as a page of its object; the
/// cursor moves once, after the last set, to the newest (SystemModstamp, Id) seen (a job's
/// sets are not a cursor order to resume from).
pub(super) async fn store_bulk(
    store: &mut Store,
    names: &Names,
    job: &mut ObjectPull,
    mut results: BulkResults,
    hooks: &Hooks<'_>,
) -> Result<(), SyncError> {
    let object = names.object(job.kind).to_string();
    info!(object = %object, job = results.job_id(), rows = results.total(), "pulling through a Bulk query job");
    job.pulled.expected += results.total();
    let track = !matches!(job.mode, PullMode::Full);
    let mut newest: Option<Cursor> = None;
    let mut first = true;
    loop {
        if !first {
            if let Some(why) = (hooks.stop)() {
                return Err(SyncError::Stopped(why));
            }
        }
        first = false;
        let Some(page) = results.next_page().await? else {
            break;
        };
        for record in &page.records {
            let at = text(record, SYSTEM_MODSTAMP)
                .as_deref()
                .and_then(parse_datetime);
            if let (Some(at), Some(id)) = (at, text(record, "Id")) {
                let later = newest
                    .as_ref()
                    .is_none_or(|n| (at, id.as_str()) > (n.system_modstamp, n.id.as_str()));
                if later {
                    newest = Some(Cursor {
                        system_modstamp: at,
                        id,
                    });
                }
            }
        }
        store_page(
            store,
            job.kind,
            &object,
            page.records,
            false,
            track,
            &mut job.pulled,
            hooks,
        )?;
    }
    if let Some(newest) = newest {
        off_worker(|| store.apply_page(&object, &[], Some(&newest)))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::names::ObjectKind;
    use crate::sync::pull::since_filter;

    #[test]
    fn a_prefetched_whole_object_page_gives_the_objects_count_whatever_its_fields() {
        let names = Names::default();
        let page = |total| crate::crm::QueryPage {
            total_size: total,
            done: true,
            next_records_url: None,
            records: Vec::new(),
        };
        let mut prefetched = Prefetched::new();
        let mut multi = names.clone();
        multi.set_multi_currency(true);
        prefetched.insert(build_query(&multi, ObjectKind::Opportunity, None), page(42));
        let since = since_filter(parse_datetime("2026-08-15T10:10:00.000+0000").unwrap());
        prefetched.insert(
            build_query(&names, ObjectKind::Account, Some(&since)),
            page(7),
        );
        assert_eq!(whole_object_total(&prefetched, "Opportunity"), Some(42));
        assert_eq!(
            whole_object_total(&prefetched, "Account"),
            None,
            "a filtered query counts only what changed"
        );
        assert_eq!(whole_object_total(&prefetched, "Contact"), None);
    }
}
