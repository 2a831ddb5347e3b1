//! Bulk API 2.0 ingest jobs against a running emulator on 127.0.0.1: states, uploads, the
//! rows' effects on the org, per-row failures, results CSV, refusals, change events and call
//! counting; and the CSV reader on its own.

use serde_json::{json, Map, Value};

use super::{read_table, split_csv, DataError, IngestState, RowResult};
use crate::emulator::jobs::testing::{assert_created, Answer, Body, JobsClient, API};
use crate::emulator::{Emulator, RunningEmulator};
use crate::metadata::id;

/// The client name the tests send in `Sforce-Call-Options`.
const CLIENT: &str = "ingest-tests";

/// The shared jobs client, on `jobs/ingest`.
type Client = JobsClient;

/// The ingest-job requests of the shared jobs client.
trait IngestRequests {
    /// A client of the ingest jobs of `emulator`, naming itself [`CLIENT`].
    fn new(emulator: &RunningEmulator) -> Self;
    /// Creates a job from `body` (200 expected) and returns its id.
    async fn start_job(&self, body: Value) -> String;
    /// `PUT .../batches`: uploads `csv` to the job `id`.
    async fn upload(&self, id: &str, csv: &str) -> Answer;
    /// `PATCH` of the job `id` to `state`.
    async fn set_state(&self, id: &str, state: &str) -> Answer;
    /// Polls the job `id` (200 expected) and returns its info.
    async fn info(&self, id: &str) -> Value;
    /// `GET .../{set}` (`successfulResults/`, `failedResults`, ...).
    async fn results(&self, id: &str, set: &str) -> Answer;
    /// Uploads `csv`, closes the job and polls it twice; returns the last job info.
    async fn run_job(&self, id: &str, csv: &str) -> Value;
}

impl IngestRequests for JobsClient {
    fn new(emulator: &RunningEmulator) -> Self {
        JobsClient::on(emulator, "ingest").calling_as(CLIENT)
    }

    async fn start_job(&self, body: Value) -> String {
        let answer = self.create(body).await;
        assert_eq!(answer.status, 200, "{}", answer.text);
        answer.json()["id"].as_str().unwrap().to_string()
    }

    async fn upload(&self, id: &str, csv: &str) -> Answer {
        self.send(
            reqwest::Method::PUT,
            &format!("{API}/jobs/ingest/{id}/batches"),
            Body::Csv(csv.to_string()),
        )
        .await
    }

    async fn set_state(&self, id: &str, state: &str) -> Answer {
        let body = Body::Json(json!({"state": state}));
        self.job(reqwest::Method::PATCH, id, body).await
    }

    async fn info(&self, id: &str) -> Value {
        let answer = self.job(reqwest::Method::GET, id, Body::None).await;
        assert_eq!(answer.status, 200, "{}", answer.text);
        answer.json()
    }

    async fn results(&self, id: &str, set: &str) -> Answer {
        self.job_part(id, set).await
    }

    async fn run_job(&self, id: &str, csv: &str) -> Value {
        let uploaded = self.upload(id, csv).await;
        assert_eq!(uploaded.status, 201, "{}", uploaded.text);
        let closed = self.set_state(id, "UploadComplete").await;
        assert_eq!(closed.status, 200, "{}", closed.text);
        assert_eq!(self.info(id).await["state"], "InProgress");
        self.info(id).await
    }
}

/// Splits a results CSV (every value quoted, LF) into rows of values.
fn rows(text: &str) -> Vec<Vec<String>> {
    split_csv(text, ',', false)
        .unwrap()
        .into_iter()
        .map(|r| {
            assert!(r.problem.is_none(), "{text}");
            r.values
        })
        .collect()
}

async fn demo() -> RunningEmulator {
    Emulator::builder().seed("demo").start().await.unwrap()
}

/// The Ids of `n` live opportunities.
fn opportunities(emulator: &RunningEmulator, n: usize) -> Vec<String> {
    emulator.with_org(|org| {
        org.live_records("Opportunity")
            .take(n)
            .map(|r| r["Id"].as_str().unwrap().to_string())
            .collect()
    })
}

fn field(emulator: &RunningEmulator, object: &str, id: &str, name: &str) -> Value {
    emulator.with_org(|org| {
        org.get(object, id)
            .unwrap()
            .get(name)
            .cloned()
            .unwrap_or(Value::Null)
    })
}

fn set_fields(emulator: &RunningEmulator, object: &str, id: &str, fields: Value) {
    let fields: Map<String, Value> = fields.as_object().unwrap().clone();
    emulator
        .with_org(|org| org.update(object, id, &fields, chrono::Utc::now()))
        .unwrap();
}

#[tokio::test]
async fn an_update_job_runs_through_its_states_and_applies_its_rows_at_job_complete() {
    let emulator = demo().await;
    let client = Client::new(&emulator);
    let ids = opportunities(&emulator, 2);
    let (a, b) = (&ids[0], &ids[1]);
    for id in &ids {
        set_fields(
            &emulator,
            "Opportunity",
            id,
            json!({"NextStep": "Call back", "Description": "Kept as is", "Amount": 10}),
        );
    }
    let stamp_before = field(&emulator, "Opportunity", a, "SystemModstamp");
    let close_date_b = field(&emulator, "Opportunity", b, "CloseDate");
    let replay_before = emulator.streaming().last_replay_id();
    let calls_before = emulator.calls();

    let created = client
        .create(
            json!({"object": "Opportunity", "operation": "update", "contentType": "CSV",
                       "lineEnding": "LF", "columnDelimiter": "COMMA"}),
        )
        .await;
    let (job, id) = assert_created(&created, "Open", "update", "Opportunity");
    assert_eq!(
        job["contentUrl"],
        format!("services/data/v62.0/jobs/ingest/{id}/batches")
    );
    assert!(job.get("externalIdFieldName").is_none(), "upsert only");
    let user = emulator.with_org(|org| org.user_id().to_string());
    assert_eq!(job["createdById"], user.as_str());

    let early = client.results(&id, "successfulResults/").await;
    assert_eq!(early.status, 412, "{}", early.text);
    assert_eq!(early.error_code(), "JOB_NOT_COMPLETE");
    assert!(
        early.message().ends_with("Current status: OPEN"),
        "{}",
        early.text
    );

    // A: NextStep to null, Description left (empty), a number, a date. B: a quoted value with
    // the delimiter and quotes, the CloseDate left.
    let csv = format!(
        "Id,NextStep,Description,Amount,CloseDate\n\
         {a},#N/A,,1234.50,2026-03-31\n\
         {b},\"Call, then \"\"demo\"\"\",,99,\n"
    );
    let uploaded = client.upload(&id, &csv).await;
    assert_eq!(uploaded.status, 201, "{}", uploaded.text);
    assert_eq!(uploaded.text, "", "no body");
    let closed = client.set_state(&id, "UploadComplete").await;
    assert_eq!(closed.status, 200, "{}", closed.text);
    assert_eq!(closed.json()["state"], "UploadComplete");
    let early = client.results(&id, "failedResults/").await;
    assert_eq!(early.status, 412);
    assert!(
        early.message().ends_with("UPLOAD_COMPLETE"),
        "{}",
        early.text
    );

    let polled = client.info(&id).await;
    assert_eq!(polled["state"], "InProgress");
    assert_eq!(polled["jobType"], "V2Ingest");
    assert_eq!(
        field(&emulator, "Opportunity", a, "NextStep"),
        "Call back",
        "nothing applied before JobComplete"
    );
    let early = client.results(&id, "unprocessedrecords/").await;
    assert_eq!(early.status, 412);
    assert!(early.message().ends_with("IN_PROGRESS"), "{}", early.text);

    let done = client.info(&id).await;
    assert_eq!(done["state"], "JobComplete", "{done}");
    assert_eq!(done["numberRecordsProcessed"], 2);
    assert_eq!(done["numberRecordsFailed"], 0);
    assert_eq!(done["retries"], 0);
    assert_eq!(done["apexProcessingTime"], 0);
    assert!(done["totalProcessingTime"].is_u64());
    assert!(done["apiActiveProcessingTime"].is_u64());
    assert!(done.get("errorMessage").is_none());
    assert_eq!(client.info(&id).await["state"], "JobComplete", "stays");

    assert_eq!(
        field(&emulator, "Opportunity", a, "NextStep"),
        Value::Null,
        "#N/A sets null"
    );
    assert_eq!(
        field(&emulator, "Opportunity", a, "Description"),
        "Kept as is",
        "an empty value leaves the field"
    );
    assert_eq!(field(&emulator, "Opportunity", a, "Amount"), json!(1234.5));
    assert_eq!(
        field(&emulator, "Opportunity", a, "CloseDate"),
        "2026-03-31"
    );
    assert_ne!(
        field(&emulator, "Opportunity", a, "SystemModstamp"),
        stamp_before
    );
    assert_eq!(
        field(&emulator, "Opportunity", b, "NextStep"),
        "Call, then \"demo\""
    );
    assert_eq!(field(&emulator, "Opportunity", b, "Amount"), json!(99));
    assert_eq!(
        field(&emulator, "Opportunity", b, "CloseDate"),
        close_date_b,
        "an empty date is left"
    );

    for path in ["successfulResults/", "successfulResults"] {
        let answer = client.results(&id, path).await;
        assert_eq!(answer.status, 200, "{path}: {}", answer.text);
        assert_eq!(answer.headers["content-type"].to_str().unwrap(), "text/csv");
        assert!(
            answer
                .text
                .starts_with("\"sf__Id\",\"sf__Created\",\"Id\",\"NextStep\","),
            "{}",
            answer.text
        );
        let got = rows(&answer.text);
        assert_eq!(got.len(), 3, "{}", answer.text);
        assert_eq!(
            got[1],
            [a, "false", a, "#N/A", "", "1234.50", "2026-03-31"],
            "the original values as uploaded"
        );
        assert_eq!(got[2][0], *b);
        assert_eq!(got[2][3], "Call, then \"demo\"");
    }
    for path in ["failedResults/", "unprocessedrecords"] {
        let answer = client.results(&id, path).await;
        assert_eq!(answer.status, 200, "{path}");
        assert_eq!(rows(&answer.text).len(), 1, "{path}: only the header");
    }
    let failed_header = rows(&client.results(&id, "failedResults").await.text);
    assert_eq!(failed_header[0][..2], ["sf__Id", "sf__Error"]);

    // Change events: API writes of v62.0 by the client that created the job.
    let events: Vec<Value> = emulator
        .streaming()
        .retained()
        .into_iter()
        .filter(|e| e.replay_id > replay_before)
        .map(|e| e.data["payload"]["ChangeEventHeader"].clone())
        .collect();
    assert!(!events.is_empty());
    let updated: Vec<&str> = events
        .iter()
        .filter(|h| h["entityName"] == "Opportunity" && h["changeType"] == "UPDATE")
        .flat_map(|h| h["recordIds"].as_array().unwrap())
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(updated.contains(&a.as_str()) && updated.contains(&b.as_str()));
    for header in &events {
        assert_eq!(
            header["changeOrigin"],
            format!("com/salesforce/api/rest/62.0;client={CLIENT}")
        );
    }

    let summary = emulator.ingest().summary(&id).unwrap();
    assert_eq!(summary.state, IngestState::JobComplete);
    assert_eq!(
        summary.rows,
        [
            RowResult::Succeeded {
                id: a.clone(),
                created: false
            },
            RowResult::Succeeded {
                id: b.clone(),
                created: false
            }
        ]
    );

    client.assert_listed_then_deleted(&id).await;

    // Create, early results, upload, close, early results, poll, early results, two more
    // polls, two successful, failed, unprocessed, failed again, list, delete, get: one Bulk
    // call each, 17 in all.
    let spent = emulator.calls().since(&calls_before);
    assert_eq!(spent.bulk, 17, "{spent:?}");
    assert_eq!(spent.total(), spent.bulk, "{spent:?}");
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_row_that_fails_leaves_the_other_rows_written() {
    let emulator = demo().await;
    let client = Client::new(&emulator);
    let ids = opportunities(&emulator, 4);
    let (good, locked, gone, bad_number) = (&ids[0], &ids[1], &ids[2], &ids[3]);
    let locked_name = field(&emulator, "Opportunity", locked, "Name");
    emulator.with_org(|org| {
        org.set_validation_failure(Some(locked_name.as_str().unwrap().to_string()));
        org.delete(Some("Opportunity"), gone, chrono::Utc::now())
            .unwrap();
    });
    let missing = id::make("006", crate::emulator::org::POD, 987_654);
    let before_locked = field(&emulator, "Opportunity", locked, "NextStep");
    let before_bad = field(&emulator, "Opportunity", bad_number, "NextStep");

    let job = client
        .start_job(json!({"object": "Opportunity", "operation": "update"}))
        .await;
    let csv = format!(
        "Id,NextStep,Amount\n\
         {good},Written,5\n\
         {locked},Refused,6\n\
         {missing},Nobody,7\n\
         {gone},Deleted,8\n\
         {bad_number},Not written,12x\n\
         not-an-id,Nobody,9\n\
         ,No Id,10\n"
    );
    let done = client.run_job(&job, &csv).await;
    assert_eq!(done["state"], "JobComplete", "{done}");
    assert_eq!(done["numberRecordsProcessed"], 7);
    assert_eq!(done["numberRecordsFailed"], 6);

    assert_eq!(field(&emulator, "Opportunity", good, "NextStep"), "Written");
    assert_eq!(
        field(&emulator, "Opportunity", locked, "NextStep"),
        before_locked
    );
    assert_eq!(
        field(&emulator, "Opportunity", bad_number, "NextStep"),
        before_bad,
        "a value that does not convert fails its whole row"
    );

    let succeeded = rows(&client.results(&job, "successfulResults/").await.text);
    assert_eq!(succeeded.len(), 2);
    // A name that is no result file, on a job that has results, is an unknown resource.
    let unknown = client.results(&job, "allResults/").await;
    assert_eq!(unknown.status, 404, "{}", unknown.text);
    assert_eq!(unknown.error_code(), "NOT_FOUND");
    assert!(!unknown.text.contains(job.as_str()), "{}", unknown.text);
    assert_eq!(succeeded[1][..3], [good.as_str(), "false", good.as_str()]);

    let failed = rows(&client.results(&job, "failedResults/").await.text);
    assert_eq!(
        failed[0],
        ["sf__Id", "sf__Error", "Id", "NextStep", "Amount"]
    );
    let errors: Vec<(&str, &str)> = failed[1..]
        .iter()
        .map(|r| (r[0].as_str(), r[1].as_str()))
        .collect();
    assert_eq!(
        errors,
        [
            (
                locked.as_str(),
                "FIELD_CUSTOM_VALIDATION_EXCEPTION:Plan is locked by a validation rule:--"
            ),
            (
                missing.as_str(),
                "INVALID_CROSS_REFERENCE_KEY:invalid cross reference id:--"
            ),
            (gone.as_str(), "ENTITY_IS_DELETED:entity is deleted:--"),
            (
                bad_number.as_str(),
                "INVALID_FIELD:Failed to deserialize field at col 3. Due to, '12x' is not a \
                 valid value for the type xsd:double:Amount --"
            ),
            (
                "not-an-id",
                "MALFORMED_ID:Opportunity ID: id value of incorrect type: not-an-id:Id --"
            ),
            (
                "",
                "MISSING_ARGUMENT:Id not specified in an update call:Id --"
            ),
        ]
    );
    assert_eq!(failed[1][2..], [locked.as_str(), "Refused", "6"]);
    emulator.shutdown().await;
}

#[tokio::test]
async fn an_upsert_job_creates_and_updates_by_external_id() {
    let emulator = demo().await;
    let client = Client::new(&emulator);
    let existing = emulator
        .with_org(|org| {
            let fields = json!({"Snapshot_Key__c": "K-1", "Won_Amount__c": 1});
            org.create(
                "Account_Plan_Snapshot__c",
                fields.as_object().unwrap(),
                chrono::Utc::now(),
            )
        })
        .unwrap();

    let missing_key = client
        .create(json!({"object": "Account_Plan_Snapshot__c", "operation": "upsert"}))
        .await;
    assert_eq!(missing_key.status, 400);
    assert_eq!(missing_key.error_code(), "INVALIDJOB");
    let not_external = client
        .create(
            json!({"object": "Account_Plan_Snapshot__c", "operation": "upsert",
                       "externalIdFieldName": "Won_Amount__c"}),
        )
        .await;
    assert_eq!(not_external.status, 400);
    assert_eq!(not_external.error_code(), "INVALIDJOB");

    let created = client
        .create(
            json!({"object": "account_plan_snapshot__c", "operation": "upsert",
                       "externalIdFieldName": "snapshot_key__c", "lineEnding": "CRLF",
                       "columnDelimiter": "SEMICOLON"}),
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.text);
    let info = created.json();
    assert_eq!(info["object"], "Account_Plan_Snapshot__c");
    assert_eq!(info["externalIdFieldName"], "Snapshot_Key__c");
    let job = info["id"].as_str().unwrap().to_string();

    let csv = "snapshot_key__c;Won_Amount__c;Snapshot_Date__c\r\n\
               K-1;100.25;2026-01-31\r\n\
               K-2;200;2026-02-28\r\n\
               ;300;\r\n";
    let done = client.run_job(&job, csv).await;
    assert_eq!(done["state"], "JobComplete", "{done}");
    assert_eq!(done["numberRecordsFailed"], 1);

    assert_eq!(
        field(
            &emulator,
            "Account_Plan_Snapshot__c",
            &existing,
            "Won_Amount__c"
        ),
        json!(100.25)
    );
    let answer = client.results(&job, "successfulResults").await;
    assert!(
        answer
            .text
            .starts_with("\"sf__Id\";\"sf__Created\";\"snapshot_key__c\";"),
        "the job's delimiter, the columns as uploaded: {}",
        answer.text
    );
    let got: Vec<Vec<String>> = split_csv(&answer.text, ';', true)
        .unwrap()
        .into_iter()
        .map(|r| r.values)
        .collect();
    assert_eq!(got.len(), 3, "{}", answer.text);
    assert_eq!(got[1][..3], [existing.as_str(), "false", "K-1"]);
    assert_eq!(got[2][1..3], ["true", "K-2"]);
    let new_id = got[2][0].clone();
    assert_ne!(new_id, existing);
    assert_eq!(
        field(
            &emulator,
            "Account_Plan_Snapshot__c",
            &new_id,
            "Snapshot_Key__c"
        ),
        "K-2"
    );
    assert_eq!(
        field(
            &emulator,
            "Account_Plan_Snapshot__c",
            &new_id,
            "Snapshot_Date__c"
        ),
        "2026-02-28"
    );
    let failed = client.results(&job, "failedResults").await;
    let failed: Vec<Vec<String>> = split_csv(&failed.text, ';', true)
        .unwrap()
        .into_iter()
        .map(|r| r.values)
        .collect();
    assert_eq!(
        failed[1][1],
        "MISSING_ARGUMENT:Snapshot_Key__c not specified:Snapshot_Key__c --"
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn uploads_are_refused_after_the_first_when_closed_or_too_large() {
    let emulator = demo().await;
    let client = Client::new(&emulator);
    let a = &opportunities(&emulator, 1)[0];
    let job = client
        .start_job(json!({"object": "Opportunity", "operation": "update"}))
        .await;
    let csv = format!("Id,NextStep\n{a},First\n");
    assert_eq!(client.upload(&job, &csv).await.status, 201);
    let again = client
        .upload(&job, &format!("Id,NextStep\n{a},Second\n"))
        .await;
    assert_eq!(again.status, 400, "{}", again.text);
    assert_eq!(again.error_code(), "BULK_API_ERROR");
    assert_eq!(
        again.message(),
        format!(
            "Found multiple contents for job: <{job}>, please 'Close' / 'Abort' / 'Delete' the \
             current Job then create a new Job and make sure you only do 'PUT' once on a given \
             Job."
        )
    );
    client.set_state(&job, "UploadComplete").await;
    client.info(&job).await;
    assert_eq!(client.info(&job).await["state"], "JobComplete");
    assert_eq!(
        field(&emulator, "Opportunity", a, "NextStep"),
        "First",
        "the second upload was not kept"
    );

    // Closed without data: refused uploads, and the job fails.
    let job = client
        .start_job(json!({"object": "Opportunity", "operation": "update"}))
        .await;
    client.set_state(&job, "UploadComplete").await;
    let late = client.upload(&job, &csv).await;
    assert_eq!(late.status, 400);
    assert_eq!(late.error_code(), "INVALIDJOBSTATE");
    client.info(&job).await;
    let failed = client.info(&job).await;
    assert_eq!(failed["state"], "Failed");
    assert_eq!(
        failed["errorMessage"],
        "InvalidBatch : No data was uploaded for the job"
    );

    // Not CSV; over the limit; empty.
    let job = client
        .start_job(json!({"object": "Opportunity", "operation": "update"}))
        .await;
    let json_upload = client
        .send(
            reqwest::Method::PUT,
            &format!("{API}/jobs/ingest/{job}/batches"),
            Body::Json(json!({"Id": a})),
        )
        .await;
    assert_eq!(json_upload.status, 415, "{}", json_upload.text);
    assert_eq!(super::IngestJobs::default().upload_limit(), 150_000_000);
    emulator.ingest().set_upload_limit(Some(csv.len() - 1));
    let big = client.upload(&job, &csv).await;
    assert_eq!(big.status, 413, "{}", big.text);
    assert_eq!(big.error_code(), "BULK_API_ERROR");
    assert!(big.message().contains(&(csv.len() - 1).to_string()));
    emulator.ingest().set_upload_limit(Some(csv.len()));
    assert_eq!(client.upload(&job, "").await.status, 400);
    assert_eq!(client.upload(&job, &csv).await.status, 201, "at the limit");
    let unknown = client.upload(&format!("{job}x"), &csv).await;
    assert_eq!(unknown.status, 404);
    emulator.shutdown().await;
}

#[tokio::test]
async fn data_the_job_cannot_read_fails_it_with_no_row_applied() {
    let emulator = demo().await;
    let client = Client::new(&emulator);
    let a = &opportunities(&emulator, 1)[0];
    let before = field(&emulator, "Opportunity", a, "NextStep");
    let cases = [
        (
            "update",
            format!("Id,NextStep,Foo__c\n{a},Changed,1\n"),
            "InvalidBatch : Field name not found : Foo__c",
        ),
        (
            "update",
            "NextStep\nChanged\n".to_string(),
            "InvalidBatch : The Id column is required for an update job",
        ),
        (
            "update",
            format!("Id,NextStep,nextstep\n{a},Changed,Twice\n"),
            "InvalidBatch : Duplicate field name in the header row: nextstep",
        ),
        (
            "update",
            format!("Id,NextStep\r\n{a},Changed\r\n"),
            "ClientInputError : LineEnding is invalid on user data. Current LineEnding \
             setting is LF",
        ),
        (
            "update",
            format!("Id,Account.Name\n{a},Changed\n"),
            "InvalidBatch : Field name not found : Account.Name",
        ),
    ];
    for (operation, csv, message) in cases {
        let job = client
            .start_job(json!({"object": "Opportunity", "operation": operation}))
            .await;
        let done = client.run_job(&job, &csv).await;
        assert_eq!(done["state"], "Failed", "{csv}");
        assert_eq!(done["errorMessage"], message, "{csv}");
        assert_eq!(done["numberRecordsProcessed"], 0);
        let succeeded = client.results(&job, "successfulResults/").await;
        assert_eq!(succeeded.status, 200, "results of a Failed job");
        assert_eq!(rows(&succeeded.text).len(), 1);
        let unprocessed = client.results(&job, "unprocessedrecords/").await;
        if message.starts_with("InvalidBatch") {
            assert_eq!(
                rows(&unprocessed.text).len(),
                2,
                "the header and the row not processed: {}",
                unprocessed.text
            );
        }
    }
    assert_eq!(field(&emulator, "Opportunity", a, "NextStep"), before);

    // An upsert job without its external id column.
    let job = client
        .start_job(
            json!({"object": "Account_Plan_Snapshot__c", "operation": "upsert",
                          "externalIdFieldName": "Snapshot_Key__c"}),
        )
        .await;
    let done = client.run_job(&job, "Won_Amount__c\n5\n").await;
    assert_eq!(done["state"], "Failed");
    assert_eq!(
        done["errorMessage"],
        "InvalidBatch : The external id column Snapshot_Key__c is required for an upsert job"
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn aborted_jobs_leave_their_rows_unprocessed() {
    let emulator = demo().await;
    let client = Client::new(&emulator);
    let a = &opportunities(&emulator, 1)[0];
    let before = field(&emulator, "Opportunity", a, "NextStep");
    let job = client
        .start_job(json!({"object": "Opportunity", "operation": "update"}))
        .await;
    let csv = format!("Id,NextStep\n{a},Never\n");
    assert_eq!(client.upload(&job, &csv).await.status, 201);
    client.set_state(&job, "UploadComplete").await;
    let in_use = client.job(reqwest::Method::DELETE, &job, Body::None).await;
    assert_eq!(in_use.status, 204, "an UploadComplete job can be deleted");

    let job = client
        .start_job(json!({"object": "Opportunity", "operation": "update"}))
        .await;
    let open = client.job(reqwest::Method::DELETE, &job, Body::None).await;
    assert_eq!(open.status, 400, "an Open job cannot be deleted");
    assert_eq!(client.upload(&job, &csv).await.status, 201);
    client.set_state(&job, "UploadComplete").await;
    assert_eq!(client.info(&job).await["state"], "InProgress");
    let aborted = client.set_state(&job, "Aborted").await;
    assert_eq!(aborted.status, 200);
    assert_eq!(aborted.json()["state"], "Aborted");
    assert_eq!(client.info(&job).await["state"], "Aborted");
    assert_eq!(client.info(&job).await["state"], "Aborted", "stays");
    assert_eq!(field(&emulator, "Opportunity", a, "NextStep"), before);
    let unprocessed = client.results(&job, "unprocessedrecords").await;
    assert_eq!(unprocessed.status, 200);
    assert_eq!(
        rows(&unprocessed.text),
        [
            vec!["Id".to_string(), "NextStep".into()],
            vec![a.clone(), "Never".into()]
        ]
    );
    let again = client.set_state(&job, "Aborted").await;
    assert_eq!(again.status, 400);
    assert_eq!(again.error_code(), "INVALIDJOBSTATE");
    let bad = client.set_state(&job, "JobComplete").await;
    assert_eq!(bad.status, 400);
    assert_eq!(
        emulator.ingest().summary(&job).unwrap().rows,
        [RowResult::Unprocessed]
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn refusals_the_fail_switch_and_row_locks() {
    let emulator = demo().await;
    let client = Client::new(&emulator);
    let unknown = client
        .create(json!({"object": "Nope__c", "operation": "update"}))
        .await;
    assert_eq!(unknown.status, 400);
    assert_eq!(unknown.error_code(), "INVALIDJOB");
    assert_eq!(unknown.message(), "Unable to find object: Nope__c");
    for body in [
        json!({"object": "Opportunity", "operation": "query"}),
        json!({"object": "Opportunity"}),
        json!({"operation": "update"}),
        json!({"object": "Opportunity", "operation": "update", "contentType": "JSON"}),
        json!({"object": "Opportunity", "operation": "update", "lineEnding": "CR"}),
        json!({"object": "Opportunity", "operation": "update", "columnDelimiter": "COLON"}),
    ] {
        let answer = client.create(body.clone()).await;
        assert_eq!(answer.status, 400, "{body}");
        assert_eq!(answer.error_code(), "INVALIDJOB", "{body}");
    }
    let old = client
        .create_in(
            "40.0",
            json!({"object": "Opportunity", "operation": "update"}),
        )
        .await;
    assert_eq!(old.status, 404, "ingest jobs start at 41.0");

    // The switch that refuses Bulk query jobs refuses ingest jobs too.
    emulator.bulk().refuse_objects(&["Opportunity"]);
    let refused = client
        .create(json!({"object": "Opportunity", "operation": "update"}))
        .await;
    assert_eq!(refused.status, 400);
    assert_eq!(refused.error_code(), "INVALIDENTITY");
    assert_eq!(
        refused.message(),
        "Opportunity is not supported by the Bulk API"
    );
    emulator.bulk().refuse_objects(&[]);

    let a = &opportunities(&emulator, 1)[0];
    let before = field(&emulator, "Opportunity", a, "NextStep");
    let csv = format!("Id,NextStep\n{a},Changed\n");
    emulator.ingest().fail_jobs(true);
    let job = client
        .start_job(json!({"object": "Opportunity", "operation": "update"}))
        .await;
    emulator.ingest().fail_jobs(false);
    let done = client.run_job(&job, &csv).await;
    assert_eq!(done["state"], "Failed");
    assert!(done["errorMessage"].as_str().unwrap().contains("REST API"));
    assert_eq!(field(&emulator, "Opportunity", a, "NextStep"), before);
    let unprocessed = rows(&client.results(&job, "unprocessedrecords").await.text);
    assert_eq!(unprocessed.len(), 2);

    // Every row of the request that applies the rows meets a row lock.
    let job = client
        .start_job(json!({"object": "Opportunity", "operation": "update"}))
        .await;
    assert_eq!(client.upload(&job, &csv).await.status, 201);
    client.set_state(&job, "UploadComplete").await;
    client.info(&job).await;
    emulator.set_faults_str("lock=1").unwrap();
    let done = client.info(&job).await;
    emulator.set_faults_str("").unwrap();
    assert_eq!(done["state"], "JobComplete");
    assert_eq!(done["numberRecordsFailed"], 1);
    let failed = rows(&client.results(&job, "failedResults").await.text);
    assert_eq!(
        failed[1][..2],
        [
            a.as_str(),
            "UNABLE_TO_LOCK_ROW:unable to obtain exclusive access to this record:--"
        ]
    );
    assert_eq!(field(&emulator, "Opportunity", a, "NextStep"), before);

    // Query and ingest jobs share one Id sequence: an ingest Id is no query job.
    let query_job = client.get(&format!("{API}/jobs/query/{job}")).await;
    assert_eq!(query_job.status, 404);
    emulator.shutdown().await;
}

#[tokio::test]
async fn an_insert_job_creates_records() {
    let emulator = demo().await;
    let client = Client::new(&emulator);
    let account = emulator.with_org(|org| {
        org.live_records("Account").next().unwrap()["Id"]
            .as_str()
            .unwrap()
            .to_string()
    });
    let job = client
        .start_job(json!({"object": "Contact", "operation": "insert", "columnDelimiter": "PIPE"}))
        .await;
    let csv = format!("LastName|FirstName|AccountId\nPipe|Ann|{account}\n|No last name|\n");
    let done = client.run_job(&job, &csv).await;
    assert_eq!(done["state"], "JobComplete", "{done}");
    let summary = emulator.ingest().summary(&job).unwrap();
    let RowResult::Succeeded { id, created: true } = &summary.rows[0] else {
        panic!("{:?}", summary.rows);
    };
    assert_eq!(field(&emulator, "Contact", id, "LastName"), "Pipe");
    assert_eq!(
        field(&emulator, "Contact", id, "AccountId"),
        account.as_str()
    );
    let RowResult::Failed { error, .. } = &summary.rows[1] else {
        panic!("{:?}", summary.rows);
    };
    assert_eq!(error.status_code, "REQUIRED_FIELD_MISSING");
    emulator.shutdown().await;
}

#[test]
fn csv_values_follow_rfc_4180() {
    let records = split_csv(
        "a,b,c\n\"x, y\",\"say \"\"hi\"\"\",\"two\nlines\"\n\n,,\nplain \"quote\",é,\r\n",
        ',',
        false,
    );
    let err = records.unwrap_err();
    assert_eq!(err, DataError::LineEnding("LF"), "CRLF in an LF job");

    let records = split_csv(
        "a,b,c\n\"x, y\",\"say \"\"hi\"\"\",\"two\nlines\"\n\n,,\nplain \"q\",é,z",
        ',',
        false,
    )
    .unwrap();
    let values: Vec<Vec<&str>> = records
        .iter()
        .map(|r| r.values.iter().map(String::as_str).collect())
        .collect();
    assert_eq!(
        values,
        [
            vec!["a", "b", "c"],
            vec!["x, y", "say \"hi\"", "two\nlines"],
            vec!["", "", ""],
            vec!["plain \"q\"", "é", "z"],
        ],
        "blank lines skipped, no final line ending needed"
    );
    assert!(records.iter().all(|r| r.problem.is_none()));

    let crlf = split_csv("a\tb\r\n\"1\r\n2\"\t3\r\n", '\t', true).unwrap();
    assert_eq!(crlf[1].values, ["1\r\n2", "3"]);
    assert_eq!(
        split_csv("a\r\nb\nc", ',', true).unwrap_err(),
        DataError::LineEnding("CRLF")
    );
    assert_eq!(
        split_csv("a\n\"open\nstill open", ',', false).unwrap_err(),
        DataError::Unterminated { line: 2 }
    );
    let broken = split_csv("a,b\n\"x\" ,y\n", ',', false).unwrap();
    assert!(broken[1].problem.is_some(), "text after a closing quote");

    let table = read_table("\u{feff}Id,Name\n1,x\n".as_bytes(), ',', false).unwrap();
    assert_eq!(
        table.header,
        ["Id", "Name"],
        "the byte order mark is skipped"
    );
    assert_eq!(
        read_table(b"\xff\xfe", ',', false).unwrap_err(),
        DataError::NotUtf8
    );
    assert_eq!(
        read_table(b"\n\n", ',', false).unwrap_err(),
        DataError::NoHeader
    );
}

#[test]
fn values_convert_by_field_type() {
    use crate::metadata::{FieldDef, FieldType};
    let f = |t| FieldDef::new("F__c", t);
    let ok = |t, text| super::convert(&f(t), text, 1).unwrap();
    let refused = |t, text| super::convert(&f(t), text, 2).unwrap_err();
    assert_eq!(ok(FieldType::Currency, "1234.50"), json!(1234.5));
    assert_eq!(ok(FieldType::Double, "1e3"), json!(1000));
    assert_eq!(ok(FieldType::Int, "42"), json!(42));
    assert_eq!(ok(FieldType::Boolean, "TRUE"), json!(true));
    assert_eq!(ok(FieldType::Boolean, "false"), json!(false));
    assert_eq!(ok(FieldType::Date, "2026-02-28"), json!("2026-02-28"));
    assert_eq!(
        ok(FieldType::Datetime, "2026-02-28T10:11:12.345Z"),
        json!("2026-02-28T10:11:12.345+0000")
    );
    assert_eq!(
        ok(FieldType::Datetime, "2026-02-28T10:11:12.345+0000"),
        json!("2026-02-28T10:11:12.345+0000")
    );
    assert_eq!(ok(FieldType::String, " as is "), json!(" as is "));
    let e = refused(FieldType::Date, "2026-02-30");
    assert_eq!(e.status_code, "INVALID_FIELD");
    assert_eq!(
        e.message,
        "Failed to deserialize field at col 2. Due to, '2026-02-30' is not a valid value for \
         the type xsd:date"
    );
    assert_eq!(e.fields, ["F__c"]);
    assert_eq!(refused(FieldType::Int, "1.5").status_code, "INVALID_FIELD");
    assert_eq!(
        refused(FieldType::Boolean, "yes").status_code,
        "INVALID_FIELD"
    );
    assert_eq!(
        refused(FieldType::Datetime, "noon").status_code,
        "INVALID_FIELD"
    );
    assert_eq!(
        super::error_text(&crate::emulator::org::RecordError::new(
            "REQUIRED_FIELD_MISSING",
            "Required fields are missing: [Name]",
            vec!["Name".into()]
        )),
        "REQUIRED_FIELD_MISSING:Required fields are missing: [Name]:Name --"
    );
}
