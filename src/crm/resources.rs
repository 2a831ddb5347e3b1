//! The REST resources plansync uses, as [`CrmClient`] methods: SOQL queries and their pages,
//! sObject Collections writes (chunked by 200 records and 10 same-type runs), single-record
//! create, update and delete, Composite Graph, limits, describe, versions and `getDeleted`.
//! Each builds its request, sends it through [`CrmClient::execute`] (token, refresh on 401,
//! retries) and decodes the answer.

use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::Method;
use serde_json::{json, Map, Value};

use super::client::{check_id, check_name, Body, CrmClient, Target};
use super::wire::{self, decode_error};
use super::{CrmError, DeletedRecords, Limits, QueryPage, RecordResult, RecordWrite};

/// Records per sObject Collections request (the API's maximum).
pub const COLLECTION_CHUNK: usize = 200;
/// Runs of consecutive same-type records allowed in one collections request.
const MAX_TYPE_RUNS: usize = 10;

/// Splits records into collections requests of at most 200 records and 10 same-type runs.
pub(super) fn chunk_records(records: &[RecordWrite]) -> Vec<&[RecordWrite]> {
    let mut chunks = Vec::new();
    let mut start = 0;
    while start < records.len() {
        let mut end = start;
        let mut runs = 0;
        while end < records.len() && end - start < COLLECTION_CHUNK {
            if end == start || records[end].object != records[end - 1].object {
                if runs == MAX_TYPE_RUNS {
                    break;
                }
                runs += 1;
            }
            end += 1;
        }
        chunks.push(&records[start..end]);
        start = end;
    }
    chunks
}

/// One collections record: `attributes.type`, then `id` when given, then the fields.
pub(super) fn collection_record(
    object: &str,
    id: Option<&str>,
    fields: &Map<String, Value>,
) -> Value {
    let mut record = Map::new();
    record.insert("attributes".into(), json!({ "type": object }));
    if let Some(id) = id {
        record.insert("id".into(), Value::String(id.to_string()));
    }
    for (name, value) in fields {
        if name == "attributes" || name.eq_ignore_ascii_case("id") {
            continue;
        }
        record.insert(name.clone(), value.clone());
    }
    Value::Object(record)
}

/// The Collections bodies of an update: every record names its object and carries its Id.
pub(super) fn update_bodies(records: &[RecordWrite]) -> Result<Vec<Value>, CrmError> {
    records
        .iter()
        .map(|r| {
            check_name("object", &r.object)?;
            let id = r.id.as_deref().ok_or_else(|| {
                CrmError::InvalidRequest(format!("an update of a {} record needs its Id", r.object))
            })?;
            Ok(collection_record(&r.object, Some(id), &r.fields))
        })
        .collect()
}

/// The Collections bodies of an upsert on `object.external_id_field`: every record is of
/// that object and carries that field.
pub(super) fn upsert_bodies(
    object: &str,
    external_id_field: &str,
    records: &[RecordWrite],
) -> Result<Vec<Value>, CrmError> {
    check_name("object", object)?;
    check_name("external id field", external_id_field)?;
    records
        .iter()
        .map(|r| {
            if r.object != object {
                return Err(CrmError::InvalidRequest(format!(
                    "an upsert of {object} records got a {} record",
                    r.object
                )));
            }
            if !r.fields.contains_key(external_id_field) {
                return Err(CrmError::InvalidRequest(format!(
                    "an upsert on {object}.{external_id_field} needs that field in every record"
                )));
            }
            Ok(collection_record(object, None, &r.fields))
        })
        .collect()
}

/// The Collections bodies of a create.
pub(super) fn create_bodies(records: &[RecordWrite]) -> Result<Vec<Value>, CrmError> {
    records
        .iter()
        .map(|r| {
            check_name("object", &r.object)?;
            Ok(collection_record(&r.object, None, &r.fields))
        })
        .collect()
}

impl CrmClient {
    /// The first page of a SOQL query; `include_deleted` uses `queryAll` (soft-deleted and
    /// archived rows too). Follow [`QueryPage::next_records_url`] with [`CrmClient::query_more`].
    pub async fn query(&self, soql: &str, include_deleted: bool) -> Result<QueryPage, CrmError> {
        let resource = if include_deleted { "queryAll" } else { "query" };
        let target = Target {
            path: self.data_path(resource),
            query: vec![("q".to_string(), soql.to_string())],
        };
        let what = format!("the {resource} request");
        let raw = self
            .execute(Method::GET, target, Body::None, true, &what)
            .await?;
        wire::parse_query_page(&raw.body)
            .map_err(|reason| decode_error(&what, raw.status, reason, &raw.body))
    }

    /// The next page of a query, from the previous page's `nextRecordsUrl` (a path under
    /// `/services/data/`, or an absolute URL on the instance host).
    pub async fn query_more(&self, next_records_url: &str) -> Result<QueryPage, CrmError> {
        let target = self.relative_target(next_records_url)?;
        let what = "the next query page";
        let raw = self
            .execute(Method::GET, target, Body::None, true, what)
            .await?;
        wire::parse_query_page(&raw.body)
            .map_err(|reason| decode_error(what, raw.status, reason, &raw.body))
    }

    /// Updates records by Id with `PATCH /composite/sobjects` (`allOrNone=false`), in requests
    /// of at most 200 records. Returns one result per input record, in input order. Retried
    /// on transient failures (an update is idempotent).
    pub async fn update(&self, records: &[RecordWrite]) -> Result<Vec<RecordResult>, CrmError> {
        let bodies = update_bodies(records)?;
        self.collections(
            Method::PATCH,
            self.data_path("composite/sobjects"),
            records,
            bodies,
            true,
        )
        .await
    }

    /// Upserts records of one object matched on `external_id_field` with
    /// `PATCH /composite/sobjects/{object}/{field}`; results carry `created`. Retried on
    /// transient failures (an upsert by external id is idempotent).
    pub async fn upsert(
        &self,
        object: &str,
        external_id_field: &str,
        records: &[RecordWrite],
    ) -> Result<Vec<RecordResult>, CrmError> {
        let bodies = upsert_bodies(object, external_id_field, records)?;
        let path = self.data_path(&format!("composite/sobjects/{object}/{external_id_field}"));
        self.collections(Method::PATCH, path, records, bodies, true)
            .await
    }

    /// Creates records with `POST /composite/sobjects` (`allOrNone=false`), in requests of at
    /// most 200 records. Never retried after the request may have reached the CRM (a create
    /// is not idempotent); a 401 is still refreshed and resent, since nothing was created.
    pub async fn create(&self, records: &[RecordWrite]) -> Result<Vec<RecordResult>, CrmError> {
        let bodies = create_bodies(records)?;
        self.collections(
            Method::POST,
            self.data_path("composite/sobjects"),
            records,
            bodies,
            false,
        )
        .await
    }

    /// Creates one record with `POST /sobjects/{object}/`. Not retried.
    pub async fn create_one(
        &self,
        object: &str,
        fields: &Map<String, Value>,
    ) -> Result<RecordResult, CrmError> {
        check_name("object", object)?;
        let body = Value::Object(fields.clone());
        let what = format!("the create of a {object} record");
        let target = Target::path(self.data_path(&format!("sobjects/{object}")));
        let raw = self
            .execute(Method::POST, target, Body::Json(&body), false, &what)
            .await?;
        wire::parse_record_result(&raw.body)
            .map_err(|reason| decode_error(&what, raw.status, reason, &raw.body))
    }

    /// Updates one record with `PATCH /sobjects/{object}/{id}` (204 on success).
    pub async fn update_one(
        &self,
        object: &str,
        id: &str,
        fields: &Map<String, Value>,
    ) -> Result<(), CrmError> {
        check_name("object", object)?;
        check_id(id)?;
        let body = Value::Object(fields.clone());
        let what = format!("the update of {object} {id}");
        let target = Target::path(self.data_path(&format!("sobjects/{object}/{id}")));
        self.execute(Method::PATCH, target, Body::Json(&body), true, &what)
            .await?;
        Ok(())
    }

    /// Deletes one record with `DELETE /sobjects/{object}/{id}` (204 on success; a record
    /// already deleted gives `ENTITY_IS_DELETED`).
    pub async fn delete_one(&self, object: &str, id: &str) -> Result<(), CrmError> {
        check_name("object", object)?;
        check_id(id)?;
        let what = format!("the delete of {object} {id}");
        let target = Target::path(self.data_path(&format!("sobjects/{object}/{id}")));
        self.execute(Method::DELETE, target, Body::None, true, &what)
            .await?;
        Ok(())
    }

    /// Sends a Composite Graph request (`POST /composite/graph`) and returns its JSON answer.
    /// Not retried.
    pub async fn composite_graph(&self, request: &Value) -> Result<Value, CrmError> {
        let what = "the composite graph request";
        let target = Target::path(self.data_path("composite/graph"));
        let raw = self
            .execute(Method::POST, target, Body::Json(request), false, what)
            .await?;
        serde_json::from_slice(&raw.body)
            .map_err(|e| decode_error(what, raw.status, format!("not JSON ({e})"), &raw.body))
    }

    /// `GET /limits`: the org's daily API allowance (and every other reported limit).
    pub async fn limits(&self) -> Result<Limits, CrmError> {
        let what = "the limits request";
        let raw = self
            .execute(
                Method::GET,
                Target::path(self.data_path("limits")),
                Body::None,
                true,
                what,
            )
            .await?;
        wire::parse_limits(&raw.body)
            .map_err(|reason| decode_error(what, raw.status, reason, &raw.body))
    }

    /// `GET /sobjects/{object}/describe` as raw JSON.
    pub async fn describe(&self, object: &str) -> Result<Value, CrmError> {
        check_name("object", object)?;
        let what = format!("the describe of {object}");
        self.get_json(
            self.data_path(&format!("sobjects/{object}/describe")),
            &what,
        )
        .await
    }

    /// `GET /sobjects`: every object the integration user can see, with its key prefix, as
    /// raw JSON (`{"sobjects": [{"name", "keyPrefix", ...}]}`).
    pub async fn describe_global(&self) -> Result<Value, CrmError> {
        self.get_json(self.data_path("sobjects"), "the list of objects")
            .await
    }

    /// `GET path` (retried on transient failures) and its JSON answer.
    pub(super) async fn get_json(&self, path: String, what: &str) -> Result<Value, CrmError> {
        let raw = self
            .execute(Method::GET, Target::path(path), Body::None, true, what)
            .await?;
        serde_json::from_slice(&raw.body)
            .map_err(|e| decode_error(what, raw.status, format!("not JSON ({e})"), &raw.body))
    }

    /// `GET /services/data`: the API versions the instance serves (`"62.0"` ...), oldest
    /// first as the CRM lists them.
    pub async fn versions(&self) -> Result<Vec<String>, CrmError> {
        let what = "the versions request";
        let raw = self
            .execute(
                Method::GET,
                Target::path("/services/data".to_string()),
                Body::None,
                true,
                what,
            )
            .await?;
        let body: Value = serde_json::from_slice(&raw.body)
            .map_err(|e| decode_error(what, raw.status, format!("not JSON ({e})"), &raw.body))?;
        let list = body
            .as_array()
            .ok_or_else(|| decode_error(what, raw.status, "not a JSON array", &raw.body))?;
        Ok(list
            .iter()
            .filter_map(|v| v["version"].as_str().map(str::to_string))
            .collect())
    }

    /// `GET /sobjects/{object}/deleted/?start=..&end=..`: records deleted in `[start, end]`.
    pub async fn get_deleted(
        &self,
        object: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<DeletedRecords, CrmError> {
        check_name("object", object)?;
        if start >= end {
            return Err(CrmError::InvalidRequest(format!(
                "getDeleted needs start before end, got {start} and {end}"
            )));
        }
        let what = format!("the getDeleted request for {object}");
        let target = Target {
            path: self.data_path(&format!("sobjects/{object}/deleted/")),
            query: vec![
                (
                    "start".into(),
                    start.to_rfc3339_opts(SecondsFormat::Secs, false),
                ),
                (
                    "end".into(),
                    end.to_rfc3339_opts(SecondsFormat::Secs, false),
                ),
            ],
        };
        let raw = self
            .execute(Method::GET, target, Body::None, true, &what)
            .await?;
        wire::parse_deleted(&raw.body)
            .map_err(|reason| decode_error(&what, raw.status, reason, &raw.body))
    }

    async fn collections(
        &self,
        method: Method,
        path: String,
        records: &[RecordWrite],
        bodies: Vec<Value>,
        idempotent: bool,
    ) -> Result<Vec<RecordResult>, CrmError> {
        let mut results = Vec::with_capacity(records.len());
        let mut offset = 0;
        for chunk in chunk_records(records) {
            let slice = &bodies[offset..offset + chunk.len()];
            offset += chunk.len();
            let body = json!({ "allOrNone": false, "records": slice });
            let what = format!("the collections {method} of {} records", chunk.len());
            let raw = self
                .execute(
                    method.clone(),
                    Target::path(path.clone()),
                    Body::Json(&body),
                    idempotent,
                    &what,
                )
                .await?;
            let chunk_results = wire::parse_record_results(&raw.body, chunk.len())
                .map_err(|reason| decode_error(&what, raw.status, reason, &raw.body))?;
            results.extend(chunk_results);
        }
        Ok(results)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(object: &str) -> RecordWrite {
        RecordWrite {
            object: object.into(),
            id: None,
            fields: Map::new(),
        }
    }

    #[test]
    fn chunks_respect_size_and_type_runs() {
        let same: Vec<_> = (0..450).map(|_| rec("A")).collect();
        let sizes: Vec<_> = chunk_records(&same).iter().map(|c| c.len()).collect();
        assert_eq!(sizes, vec![200, 200, 50]);

        let alternating: Vec<_> = (0..25)
            .map(|i| rec(if i % 2 == 0 { "A" } else { "B" }))
            .collect();
        let sizes: Vec<_> = chunk_records(&alternating)
            .iter()
            .map(|c| c.len())
            .collect();
        assert_eq!(sizes, vec![10, 10, 5]);
        assert!(chunk_records(&[]).is_empty());
    }
}
