//! The Composite resource (`POST /composite`): several query pages or several sObject
//! Collections writes in one API call.
//!
//! The CRM counts a whole composite request as one call toward the daily limit; it holds up
//! to 25 subrequests, of which at most 5 may be query operations (query, queryAll and their
//! next pages) or sObject Collections requests. So one call carries up to 5 query pages
//! (a query's next page chained by reference: `@{refId.nextRecordsUrl}`) or up to 5
//! Collections of 200 records: 1,000 record writes.

use reqwest::Method;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use super::client::{Body, Target};
use super::resources::{chunk_records, create_bodies, update_bodies, upsert_bodies};
use super::wire::{self, decode_error};
use super::{CrmClient, CrmError, QueryPage, RecordError, RecordResult, RecordWrite};

/// Query operations and Collections subrequests one composite request may hold.
pub const COMPOSITE_MAX_QUERY_OR_COLLECTIONS: usize = 5;
/// Records one composite write carries: 5 Collections of 200.
pub const COMPOSITE_MAX_RECORDS: usize =
    COMPOSITE_MAX_QUERY_OR_COLLECTIONS * super::resources::COLLECTION_CHUNK;

/// Where a composite read starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageStart {
    /// The first page of a SOQL query; `include_deleted` uses `queryAll`.
    Query { soql: String, include_deleted: bool },
    /// A later page, from a previous page's `nextRecordsUrl`.
    Next(String),
}

/// One read in a composite request: a first (or next) page, then up to `chained` more
/// pages of the same query, each taken by reference to the page before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRead {
    pub start: PageStart,
    /// Extra pages chained by reference; each one is a query operation of its own.
    pub chained: usize,
}

impl PageRead {
    /// The first page of `soql`, and `chained` more pages.
    pub fn query(soql: &str, include_deleted: bool, chained: usize) -> PageRead {
        PageRead {
            start: PageStart::Query {
                soql: soql.to_string(),
                include_deleted,
            },
            chained,
        }
    }

    /// The page at `next_records_url`, and `chained` more pages.
    pub fn next(next_records_url: &str, chained: usize) -> PageRead {
        PageRead {
            start: PageStart::Next(next_records_url.to_string()),
            chained,
        }
    }

    /// Query operations this read takes in a composite request.
    pub fn operations(&self) -> usize {
        1 + self.chained
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireComposite {
    composite_response: Vec<WireSubresult>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireSubresult {
    /// Kept as its JSON text, parsed when its turn comes: a read's five pages are not held
    /// twice, as text and as a tree.
    #[serde(default)]
    body: Option<Box<RawValue>>,
    http_status_code: u16,
    #[serde(default)]
    reference_id: String,
}

impl WireSubresult {
    /// The subresult's body as JSON text.
    fn text(&self) -> &str {
        self.body.as_deref().map_or("null", RawValue::get)
    }
}

/// A composite answer: one result per subrequest, in order.
fn parse_composite(
    what: &str,
    status: u16,
    body: &[u8],
    expected: usize,
) -> Result<Vec<WireSubresult>, CrmError> {
    let wire: WireComposite = serde_json::from_slice(body).map_err(|e| {
        decode_error(
            what,
            status,
            format!("not a composite response ({e})"),
            body,
        )
    })?;
    if wire.composite_response.len() != expected {
        return Err(decode_error(
            what,
            status,
            format!(
                "{} subrequest results for {expected} subrequests",
                wire.composite_response.len()
            ),
            body,
        ));
    }
    Ok(wire.composite_response)
}

/// What a query page says of itself before its records are read.
#[derive(Deserialize)]
struct Envelope {
    done: bool,
}

/// A query page of a composite answer, its records kept as the CRM's JSON text until
/// [`RawQueryPage::parse`].
#[derive(Debug)]
pub struct RawQueryPage {
    /// True on the last page of its query.
    pub done: bool,
    body: Box<RawValue>,
    /// The request it came in, and the subresult's status, for a decode error.
    what: String,
    status: u16,
}

impl RawQueryPage {
    /// The page with its records, as [`CrmClient::query`] gives it.
    pub fn parse(self) -> Result<QueryPage, CrmError> {
        let text = self.body.get().as_bytes();
        wire::parse_query_page(text)
            .map_err(|reason| decode_error(&self.what, self.status, reason, text))
    }
}

/// `true` when a subresult is the CRM declining to run a subrequest because a reference had
/// no value (a chained page after the last one) or an earlier subrequest failed.
fn is_halted(result: &WireSubresult) -> bool {
    result.http_status_code == 400
        && serde_json::from_str::<Value>(result.text()).is_ok_and(|body| {
            body.get(0)
                .and_then(|e| e.get("errorCode"))
                .and_then(Value::as_str)
                == Some("PROCESSING_HALTED")
        })
}

impl CrmClient {
    /// Reads up to [`COMPOSITE_MAX_QUERY_OR_COLLECTIONS`] query pages in one API call
    /// (`POST /composite`, `allOrNone` false): each [`PageRead`] is a first or next page and
    /// the pages chained after it by reference to the previous page's `nextRecordsUrl`.
    ///
    /// Returns, per read and in order, its pages (the same [`QueryPage`]s
    /// [`CrmClient::query`] gives) or that read's own error (e.g. `MALFORMED_QUERY`); a
    /// chained page after the last one is simply not there. The outer error is the request's
    /// (transport, session, quota). Retried like a query (reads are idempotent). A read whose
    /// last page returned is not done continues with its `next_records_url`.
    pub async fn query_pages_composite(
        &self,
        reads: &[PageRead],
    ) -> Result<Vec<Result<Vec<QueryPage>, CrmError>>, CrmError> {
        let raw = self.query_pages_composite_raw(reads).await?;
        Ok(raw
            .into_iter()
            .map(|read| {
                let mut pages = Vec::new();
                for page in read? {
                    match page.parse() {
                        Ok(page) => pages.push(page),
                        // Pages read before a later page failed are kept; the caller
                        // continues from the last one's nextRecordsUrl.
                        Err(e) if pages.is_empty() => return Err(e),
                        Err(_) => break,
                    }
                }
                Ok(pages)
            })
            .collect())
    }

    /// [`CrmClient::query_pages_composite`] with each page's records left as the CRM's JSON
    /// text until [`RawQueryPage::parse`]: several composite answers in flight hold their
    /// pages as text (about a third of the memory of the parsed records).
    pub async fn query_pages_composite_raw(
        &self,
        reads: &[PageRead],
    ) -> Result<Vec<Result<Vec<RawQueryPage>, CrmError>>, CrmError> {
        let operations: usize = reads.iter().map(PageRead::operations).sum();
        if reads.is_empty() {
            return Ok(Vec::new());
        }
        if operations > COMPOSITE_MAX_QUERY_OR_COLLECTIONS {
            return Err(CrmError::InvalidRequest(format!(
                "a composite request holds at most {COMPOSITE_MAX_QUERY_OR_COLLECTIONS} query \
                 operations; these reads take {operations}"
            )));
        }
        let mut subrequests = Vec::with_capacity(operations);
        for (r, read) in reads.iter().enumerate() {
            let url = match &read.start {
                PageStart::Query {
                    soql,
                    include_deleted,
                } => {
                    let resource = if *include_deleted {
                        "queryAll"
                    } else {
                        "query"
                    };
                    let q: String = url::form_urlencoded::byte_serialize(soql.as_bytes()).collect();
                    format!("{}/?q={q}", self.data_path(resource))
                }
                PageStart::Next(next) => {
                    let target = self.relative_target(next)?;
                    target.path
                }
            };
            subrequests
                .push(json!({"method": "GET", "url": url, "referenceId": format!("r{r}p0")}));
            for p in 1..=read.chained {
                subrequests.push(json!({
                    "method": "GET",
                    "url": format!("@{{r{r}p{}.nextRecordsUrl}}", p - 1),
                    "referenceId": format!("r{r}p{p}"),
                }));
            }
        }
        let body = json!({"allOrNone": false, "compositeRequest": subrequests});
        let what = format!("the composite read of {operations} query pages");
        let target = Target::path(self.data_path("composite"));
        let raw = self
            .execute(Method::POST, target, Body::Json(&body), true, &what)
            .await?;
        let results = parse_composite(&what, raw.status, &raw.body, operations)?;
        drop(raw);
        let mut results = results.into_iter();
        let mut out = Vec::with_capacity(reads.len());
        for read in reads {
            let mut pages: Vec<RawQueryPage> = Vec::with_capacity(read.operations());
            let mut error: Option<CrmError> = None;
            for p in 0..read.operations() {
                let Some(result) = results.next() else {
                    break;
                };
                if error.is_some() {
                    continue;
                }
                let previous_done = pages.last().is_some_and(|page| page.done);
                if p > 0 && (previous_done || pages.is_empty()) {
                    // Nothing to chain to: the CRM halts such a subrequest, as expected.
                    continue;
                }
                if !(200..300).contains(&result.http_status_code) {
                    if p > 0 && is_halted(&result) {
                        // The page before had no usable nextRecordsUrl (its locator was
                        // released): keep the pages read, the caller goes on from there.
                        tracing::debug!(reference = %result.reference_id, "chained page halted");
                        continue;
                    }
                    let bytes = result.text();
                    error = Some(wire::api_error(
                        &format!("{what} ({})", result.reference_id),
                        result.http_status_code,
                        bytes.as_bytes(),
                    ));
                    continue;
                }
                let status = result.http_status_code;
                let Some(body) = result.body else {
                    error = Some(decode_error(&what, status, "no body", b"null"));
                    continue;
                };
                match serde_json::from_str::<Envelope>(body.get()) {
                    Ok(envelope) => pages.push(RawQueryPage {
                        done: envelope.done,
                        body,
                        what: what.clone(),
                        status,
                    }),
                    Err(e) => {
                        error = Some(decode_error(
                            &what,
                            status,
                            format!("not a query result ({e})"),
                            body.get().as_bytes(),
                        ))
                    }
                }
            }
            out.push(match error {
                Some(e) if pages.is_empty() => Err(e),
                // Pages read before a later page failed are kept; the caller continues
                // from the last one's nextRecordsUrl.
                _ => Ok(pages),
            });
        }
        Ok(out)
    }

    /// Updates records by Id through composite requests of up to 5 Collections of 200
    /// (1,000 records per API call), `allOrNone` false on the composite request and on each
    /// Collection. One result per input record, in input order, in the shape
    /// [`CrmClient::update`] gives; a Collection the CRM refused as a whole gives its error to
    /// each of its records (nothing is lost). Retried on transient failures (an update is
    /// idempotent).
    pub async fn update_composite(
        &self,
        records: &[RecordWrite],
    ) -> Result<Vec<RecordResult>, CrmError> {
        let bodies = update_bodies(records)?;
        let url = self.data_path("composite/sobjects");
        self.collections_composite("PATCH", &url, records, bodies, true)
            .await
    }

    /// Upserts records of one object matched on `external_id_field`, 1,000 per API call, as
    /// [`CrmClient::upsert`] does 200 per call; results carry `created`.
    pub async fn upsert_composite(
        &self,
        object: &str,
        external_id_field: &str,
        records: &[RecordWrite],
    ) -> Result<Vec<RecordResult>, CrmError> {
        let bodies = upsert_bodies(object, external_id_field, records)?;
        let url = self.data_path(&format!("composite/sobjects/{object}/{external_id_field}"));
        self.collections_composite("PATCH", &url, records, bodies, true)
            .await
    }

    /// Creates records, 1,000 per API call, as [`CrmClient::create`] does 200 per call. Never
    /// retried after the request may have reached the CRM (a create is not idempotent).
    pub async fn create_composite(
        &self,
        records: &[RecordWrite],
    ) -> Result<Vec<RecordResult>, CrmError> {
        let bodies = create_bodies(records)?;
        let url = self.data_path("composite/sobjects");
        self.collections_composite("POST", &url, records, bodies, false)
            .await
    }

    async fn collections_composite(
        &self,
        method: &str,
        url: &str,
        records: &[RecordWrite],
        bodies: Vec<Value>,
        idempotent: bool,
    ) -> Result<Vec<RecordResult>, CrmError> {
        let chunks = chunk_records(records);
        let mut results = Vec::with_capacity(records.len());
        let mut offset = 0;
        for group in chunks.chunks(COMPOSITE_MAX_QUERY_OR_COLLECTIONS) {
            let mut subrequests = Vec::with_capacity(group.len());
            let mut spans = Vec::with_capacity(group.len());
            for (n, chunk) in group.iter().enumerate() {
                let slice = &bodies[offset..offset + chunk.len()];
                spans.push((offset, chunk.len()));
                offset += chunk.len();
                subrequests.push(json!({
                    "method": method,
                    "url": url,
                    "referenceId": format!("c{n}"),
                    "body": {"allOrNone": false, "records": slice},
                }));
            }
            let count: usize = spans.iter().map(|s| s.1).sum();
            let body = json!({"allOrNone": false, "compositeRequest": subrequests});
            let what = format!("the composite collections {method} of {count} records");
            let target = Target::path(self.data_path("composite"));
            let raw = self
                .execute(Method::POST, target, Body::Json(&body), idempotent, &what)
                .await?;
            let subresults = parse_composite(&what, raw.status, &raw.body, group.len())?;
            for (sub, (start, len)) in subresults.into_iter().zip(spans) {
                let bytes = sub.text();
                if (200..300).contains(&sub.http_status_code) {
                    let chunk_results =
                        wire::parse_record_results(bytes.as_bytes(), len).map_err(|reason| {
                            decode_error(&what, sub.http_status_code, reason, bytes.as_bytes())
                        })?;
                    results.extend(chunk_results);
                    continue;
                }
                // The Collection was refused as a whole: its error stands for each record.
                let error = match wire::api_error(&what, sub.http_status_code, bytes.as_bytes()) {
                    CrmError::Api {
                        error_code,
                        message,
                        fields,
                        ..
                    } => RecordError {
                        status_code: error_code,
                        message,
                        fields,
                    },
                    CrmError::QuotaExceeded { message } => {
                        return Err(CrmError::QuotaExceeded { message })
                    }
                    other => RecordError {
                        status_code: format!("HTTP_{}", sub.http_status_code),
                        message: other.to_string(),
                        fields: Vec::new(),
                    },
                };
                for record in &records[start..start + len] {
                    results.push(RecordResult {
                        id: record.id.clone(),
                        success: false,
                        created: None,
                        errors: vec![error.clone()],
                    });
                }
            }
        }
        Ok(results)
    }
}

#[cfg(test)]
pub(super) mod tests;
