//! Query execution and paging: a query runs once, its ordered matching Ids are kept under a
//! query locator (`01g...`), and every page, first or later, is a slice of that list. Paging a
//! result therefore costs time linear in its size, and fetching a page twice returns the same
//! page. A user keeps at most [`MAX_LOCATORS`] open locators; opening another releases the
//! oldest, as a real org does.

use std::collections::VecDeque;
use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::org::Org;
use super::soql::{self, Query, Record, SoqlError};
use crate::metadata::id;

/// Open query locators per user.
pub const MAX_LOCATORS: usize = 10;
/// Default and largest page size.
pub const MAX_BATCH: usize = 2000;
/// Smallest page size `Sforce-Query-Options: batchSize` may ask for.
pub const MIN_BATCH: usize = 200;

/// A query's result: the ordered Ids of the matching records.
#[derive(Debug)]
pub struct Cursor {
    query: Query,
    ids: Vec<String>,
    batch: usize,
    /// queryAll: deleted records stay in the pages.
    all_rows: bool,
}

/// The open query locators, oldest first.
#[derive(Debug, Default)]
pub struct Locators {
    sequence: u64,
    open: VecDeque<(String, Arc<Cursor>)>,
}

impl Locators {
    /// Keeps `cursor` under a new locator Id, releasing the oldest beyond [`MAX_LOCATORS`].
    fn open(&mut self, cursor: Arc<Cursor>) -> String {
        self.sequence += 1;
        let locator = id::make("01g", "5e0", self.sequence);
        self.open.push_back((locator.clone(), cursor));
        while self.open.len() > MAX_LOCATORS {
            self.open.pop_front();
        }
        locator
    }

    fn get(&self, locator: &str) -> Option<Arc<Cursor>> {
        self.open
            .iter()
            .find(|(l, _)| l == locator)
            .map(|(_, c)| c.clone())
    }
}

/// The page size asked for by `Sforce-Query-Options: batchSize=N`, clamped to 200..=2000.
pub fn batch_size(header: Option<&str>) -> usize {
    header
        .into_iter()
        .flat_map(|h| h.split(','))
        .filter_map(|part| part.trim().strip_prefix("batchSize="))
        .filter_map(|n| n.trim().parse::<usize>().ok())
        .map(|n| n.clamp(MIN_BATCH, MAX_BATCH))
        .next()
        .unwrap_or(MAX_BATCH)
}

/// Whether `record` is in the recycle bin.
pub(crate) fn is_deleted(record: &Record) -> bool {
    record.get("IsDeleted") == Some(&Value::Bool(true))
}

/// The record's `Id` (empty without one).
pub(crate) fn record_id(record: &Record) -> &str {
    record.get("Id").and_then(Value::as_str).unwrap_or("")
}

/// The records `query` matches (deleted ones too when `all_rows`, as queryAll does), in its
/// ORDER BY and then Id order; OFFSET and LIMIT are not applied.
pub(crate) fn matching<'a>(org: &'a Org, query: &Query, all_rows: bool) -> Vec<&'a Record> {
    // A "changed since" filter reads the SystemModstamp index, as a real org does.
    let candidates: Box<dyn Iterator<Item = &Record>> = match query.modstamp_floor() {
        Some(floor) => Box::new(org.records_stamped_from(&query.object, floor)),
        None => Box::new(org.records(&query.object)),
    };
    let mut rows: Vec<&Record> = candidates
        .filter(|r| all_rows || !is_deleted(r))
        .filter(|r| query.matches(r, org))
        .collect();
    if query.is_ordered() {
        rows.sort_by(|a, b| {
            query
                .compare(a, b, org)
                .then_with(|| record_id(a).cmp(record_id(b)))
        });
    } else {
        rows.sort_by(|a, b| record_id(a).cmp(record_id(b)));
    }
    rows
}

/// Runs `text`: `all_rows` includes deleted records (queryAll). Returns the cursor of the
/// whole result.
pub fn run(org: &Org, text: &str, all_rows: bool, batch: usize) -> Result<Cursor, SoqlError> {
    let query = soql::parse(text, org.catalog())?;
    let rows = matching(org, &query, all_rows);
    let offset = query.offset.unwrap_or(0).min(rows.len());
    let end = match query.limit {
        Some(limit) => offset.saturating_add(limit).min(rows.len()),
        None => rows.len(),
    };
    let ids = rows[offset..end]
        .iter()
        .map(|r| record_id(r).to_string())
        .collect();
    Ok(Cursor {
        query,
        ids,
        batch,
        all_rows,
    })
}

/// A query's first page: records `0..batch`; opens a locator when more remain.
pub fn first_page(
    org: &Org,
    locators: &std::sync::Mutex<Locators>,
    cursor: Cursor,
    version: &str,
) -> Value {
    if cursor.query.count_only {
        return json!({"totalSize": cursor.ids.len(), "done": true, "records": []});
    }
    if cursor.ids.len() <= cursor.batch {
        return page(org, &cursor, 0, version, None);
    }
    let cursor = Arc::new(cursor);
    let locator = locators
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .open(cursor.clone());
    page(org, &cursor, 0, version, Some(&locator))
}

/// Why a `nextRecordsUrl` could not be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid query locator")]
pub struct InvalidLocator;

/// A later page: `locator` is `<01g... Id>-<offset>`.
pub fn next_page(
    org: &Org,
    locators: &std::sync::Mutex<Locators>,
    locator: &str,
    version: &str,
) -> Result<Value, InvalidLocator> {
    let (locator_id, offset) = locator.rsplit_once('-').ok_or(InvalidLocator)?;
    let offset: usize = offset.parse().map_err(|_| InvalidLocator)?;
    let cursor = locators
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(locator_id)
        .ok_or(InvalidLocator)?;
    if offset > cursor.ids.len() {
        return Err(InvalidLocator);
    }
    Ok(page(org, &cursor, offset, version, Some(locator_id)))
}

fn page(org: &Org, cursor: &Cursor, offset: usize, version: &str, locator: Option<&str>) -> Value {
    let end = offset.saturating_add(cursor.batch).min(cursor.ids.len());
    let records: Vec<Value> = cursor.ids[offset..end]
        .iter()
        .filter_map(|id| org.get(&cursor.query.object, id))
        // A record deleted since the query ran leaves a plain query's later pages.
        .filter(|r| cursor.all_rows || !is_deleted(r))
        .map(|r| cursor.query.project(r, org, version))
        .collect();
    let done = end >= cursor.ids.len();
    let mut body = Map::new();
    body.insert("totalSize".into(), json!(cursor.ids.len()));
    body.insert("done".into(), json!(done));
    if let (false, Some(locator)) = (done, locator) {
        body.insert(
            "nextRecordsUrl".into(),
            json!(format!("/services/data/v{version}/query/{locator}-{end}")),
        );
    }
    body.insert("records".into(), Value::Array(records));
    Value::Object(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_size_is_clamped_and_defaults_to_2000() {
        assert_eq!(batch_size(None), 2000);
        assert_eq!(batch_size(Some("batchSize=500")), 500);
        assert_eq!(batch_size(Some("batchSize=50")), 200);
        assert_eq!(batch_size(Some("batchSize=9000")), 2000);
        assert_eq!(batch_size(Some("batchSize=abc")), 2000);
    }
}
