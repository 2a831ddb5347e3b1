//! Bulk API 2.0 query jobs against a running emulator on 127.0.0.1: states, CSV, locators,
//! refusals, limits and call counting.

use serde_json::{json, Value};

use crate::emulator::jobs::testing::{assert_created, Answer, Body, JobsClient, API};
use crate::emulator::{Emulator, RunningEmulator};

/// The shared jobs client, on `jobs/query`.
type Client = JobsClient;

/// The query-job requests of the shared jobs client.
trait QueryRequests {
    /// A client of the query jobs of `emulator`.
    fn new(emulator: &RunningEmulator) -> Self;
    /// Creates a query job of `soql` with the default format and returns its id.
    async fn start_job(&self, soql: &str) -> String;
    /// Polls the job `id` (200 expected) and returns its state.
    async fn state(&self, id: &str) -> String;
    /// `GET .../results{query}` (`query` empty or `?maxRecords=...`).
    async fn results(&self, id: &str, query: &str) -> Answer;
}

impl QueryRequests for JobsClient {
    fn new(emulator: &RunningEmulator) -> Self {
        JobsClient::on(emulator, "query")
    }

    async fn start_job(&self, soql: &str) -> String {
        let job = self
            .create(json!({"operation": "query", "query": soql}))
            .await
            .json();
        job["id"].as_str().unwrap().to_string()
    }

    async fn state(&self, id: &str) -> String {
        let answer = self.job(reqwest::Method::GET, id, Body::None).await;
        assert_eq!(answer.status, 200, "{}", answer.text);
        answer.json()["state"].as_str().unwrap().to_string()
    }

    async fn results(&self, id: &str, query: &str) -> Answer {
        self.job_part(id, &format!("results{query}")).await
    }
}

/// Splits a CSV text (every value quoted, null empty) into rows of `Option<String>`.
fn parse_csv(text: &str, delimiter: char, line_ending: &str) -> Vec<Vec<Option<String>>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut chars = text.chars().peekable();
    let mut field: Option<String> = None;
    let ending: Vec<char> = line_ending.chars().collect();
    while let Some(c) = chars.next() {
        if c == '"' {
            let mut value = String::new();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        value.push('"');
                    }
                    Some('"') | None => break,
                    Some(other) => value.push(other),
                }
            }
            field = Some(value);
        } else if c == delimiter {
            row.push(field.take());
        } else if c == ending[0] {
            if ending.len() == 2 {
                assert_eq!(chars.next(), Some(ending[1]), "line ending");
            }
            row.push(field.take());
            rows.push(std::mem::take(&mut row));
        } else {
            panic!("unquoted character {c:?} in {text:?}");
        }
    }
    assert!(row.is_empty(), "the last line ends with the line ending");
    rows
}

async fn demo() -> RunningEmulator {
    Emulator::builder()
        .seed("demo")
        .scale(2)
        .start()
        .await
        .unwrap()
}

const SOQL: &str = "SELECT Id, Name, Amount, CloseDate, IsClosed, CreatedDate, NextStep, Account.Name FROM Opportunity";

#[tokio::test]
async fn a_job_runs_through_its_states_and_pages_its_csv_by_locator() {
    let emulator = demo().await;
    let client = Client::new(&emulator);
    let calls = emulator.api_usage().0;
    let created = client
        .create(
            json!({"operation": "query", "query": SOQL, "contentType": "CSV",
                       "columnDelimiter": "COMMA", "lineEnding": "LF"}),
        )
        .await;
    let (_, id) = assert_created(&created, "UploadComplete", "query", "Opportunity");

    let early = client.results(&id, "").await;
    assert_eq!(early.status, 412);
    assert_eq!(early.json()[0]["errorCode"], "JOB_NOT_COMPLETE");
    assert!(early.json()[0]["message"]
        .as_str()
        .unwrap()
        .ends_with("Current status: UPLOAD_COMPLETE"));

    assert_eq!(client.state(&id).await, "InProgress");
    assert_eq!(client.state(&id).await, "JobComplete");
    let info = client
        .job(reqwest::Method::GET, &id, Body::None)
        .await
        .json();
    assert_eq!(info["jobType"], "V2Query");
    assert_eq!(info["numberRecordsProcessed"], 400);

    // Every set of 150 rows, following the locators, until the locator is "null".
    let mut rows = Vec::new();
    let mut locator: Option<String> = None;
    let mut sets = 0;
    loop {
        let query = match &locator {
            None => "?maxRecords=150".to_string(),
            Some(l) => format!("?maxRecords=150&locator={l}"),
        };
        let answer = client.results(&id, &query).await;
        assert_eq!(answer.status, 200, "{}", answer.text);
        assert_eq!(answer.header("content-type").as_deref(), Some("text/csv"));
        let parsed = parse_csv(&answer.text, ',', "\n");
        let header: Vec<String> = parsed[0].iter().map(|h| h.clone().unwrap()).collect();
        assert_eq!(
            header,
            [
                "Id",
                "Name",
                "Amount",
                "CloseDate",
                "IsClosed",
                "CreatedDate",
                "NextStep",
                "Account.Name"
            ]
        );
        let count: usize = answer
            .header("sforce-numberofrecords")
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(count, parsed.len() - 1);
        rows.extend(parsed.into_iter().skip(1));
        sets += 1;
        match answer.header("sforce-locator").unwrap().as_str() {
            "null" => break,
            next => locator = Some(next.to_string()),
        }
    }
    assert_eq!(sets, 3, "400 rows in sets of 150");
    assert_eq!(rows.len(), 400);

    // The same rows and values as the REST query, in CSV form.
    let rest: Vec<Value> = emulator.with_org(|org| {
        let cursor = crate::emulator::query::run(org, SOQL, false, 2000).unwrap();
        let locators = std::sync::Mutex::new(crate::emulator::query::Locators::default());
        crate::emulator::query::first_page(org, &locators, cursor, "62.0")["records"]
            .as_array()
            .unwrap()
            .clone()
    });
    for (row, record) in rows.iter().zip(&rest) {
        assert_eq!(row[0].as_deref(), record["Id"].as_str());
        assert_eq!(row[1].as_deref(), record["Name"].as_str());
        let amount = Some(&record["Amount"])
            .filter(|a| !a.is_null())
            .map(Value::to_string);
        assert_eq!(
            row[2], amount,
            "numbers as the JSON writes them, null empty"
        );
        assert_eq!(row[3].as_deref(), record["CloseDate"].as_str());
        let closed = record["IsClosed"].as_bool().unwrap();
        assert_eq!(
            row[4].as_deref(),
            Some(if closed { "true" } else { "false" })
        );
        let created = record["CreatedDate"].as_str().unwrap();
        assert_eq!(
            row[5],
            Some(created.replace("+0000", "Z")),
            "datetimes end in Z"
        );
        assert_eq!(
            row[6],
            record["NextStep"].as_str().map(str::to_string),
            "null is an empty field"
        );
        assert_eq!(row[7].as_deref(), record["Account"]["Name"].as_str());
    }
    assert!(
        rows.iter().any(|r| r[6].is_none()),
        "some NextStep values are null"
    );
    assert!(rows.iter().any(|r| r[2].is_none()) && rows.iter().any(|r| r[2].is_some()));
    assert_eq!(
        emulator.api_usage().0,
        calls + 1 + 1 + 2 + 1 + 3,
        "create, early results, two polls, info, three sets: one API call each"
    );
    let limits = client.get(&format!("{API}/limits")).await.json();
    assert_eq!(limits["DailyBulkV2QueryJobs"]["Remaining"], 9_999);
    assert_eq!(emulator.bulk_jobs_created(), 1);

    client.assert_listed_then_deleted(&id).await;
    emulator.shutdown().await;
}

#[tokio::test]
async fn delimiters_line_endings_and_query_all() {
    let emulator = demo().await;
    let client = Client::new(&emulator);
    let victim: String = emulator.with_org(|org| {
        org.live_records("Account").next().unwrap()["Id"]
            .as_str()
            .unwrap()
            .to_string()
    });
    let deleted = client
        .send(
            reqwest::Method::DELETE,
            &format!("{API}/sobjects/Account/{victim}"),
            Body::None,
        )
        .await;
    assert_eq!(deleted.status, 204);
    let mut counts = Vec::new();
    for operation in ["query", "queryAll"] {
        let job = client
            .create(
                json!({"operation": operation, "query": "SELECT Id, Name, IsDeleted FROM Account",
                           "columnDelimiter": "CARET", "lineEnding": "CRLF"}),
            )
            .await
            .json();
        let id = job["id"].as_str().unwrap().to_string();
        client.state(&id).await;
        assert_eq!(client.state(&id).await, "JobComplete");
        let answer = client.results(&id, "").await;
        assert_eq!(answer.header("sforce-locator").as_deref(), Some("null"));
        let rows = parse_csv(&answer.text, '^', "\r\n");
        assert_eq!(
            rows[0],
            [
                Some("Id".into()),
                Some("Name".into()),
                Some("IsDeleted".into())
            ]
        );
        let victim_row = rows
            .iter()
            .find(|r| r[0].as_deref() == Some(victim.as_str()));
        match operation {
            "query" => assert!(victim_row.is_none()),
            _ => assert_eq!(victim_row.unwrap()[2].as_deref(), Some("true")),
        }
        counts.push(rows.len() - 1);
    }
    assert_eq!(counts[1], counts[0] + 1);
    emulator.shutdown().await;
}

#[tokio::test]
async fn refusals_failures_and_aborts() {
    let emulator = demo().await;
    let client = Client::new(&emulator);
    for soql in [
        "SELECT StageName, COUNT(Id) FROM Opportunity GROUP BY StageName",
        "SELECT COUNT() FROM Opportunity",
        "SELECT Id, (SELECT Id FROM Contacts) FROM Account",
        "SELECT Id FROM Account LIMIT 10 OFFSET 5",
        "SELECT FIELDS(STANDARD) FROM Account",
    ] {
        let answer = client
            .create(json!({"operation": "query", "query": soql}))
            .await;
        assert_eq!(answer.status, 400, "{soql}");
        assert_eq!(
            answer.json()[0]["errorCode"],
            "API_ERROR",
            "{soql}: {}",
            answer.text
        );
    }
    let bad = client
        .create(json!({"operation": "query", "query": "SELECT Nope__c FROM Account"}))
        .await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()[0]["errorCode"], "INVALID_FIELD");
    let bad = client
        .create(json!({"operation": "insert", "query": "SELECT Id FROM Account"}))
        .await;
    assert_eq!(bad.status, 400);

    emulator.bulk().refuse_objects(&["Task"]);
    let refused = client
        .create(json!({"operation": "query", "query": "SELECT Id FROM Task"}))
        .await;
    assert_eq!(refused.status, 400);
    assert_eq!(refused.json()[0]["errorCode"], "INVALIDENTITY");
    assert_eq!(
        refused.json()[0]["message"],
        "Task is not supported by the Bulk API"
    );
    assert_eq!(
        emulator.bulk_jobs_created(),
        0,
        "refused jobs are not counted"
    );

    emulator.bulk().fail_jobs(true);
    let id = client.start_job("SELECT Id FROM Account").await;
    assert_eq!(client.state(&id).await, "InProgress");
    assert_eq!(client.state(&id).await, "Failed");
    let info = client
        .job(reqwest::Method::GET, &id, Body::None)
        .await
        .json();
    assert!(info["errorMessage"].is_string());
    emulator.bulk().fail_jobs(false);

    let id = client.start_job("SELECT Id FROM Account").await;
    let aborted = client
        .job(
            reqwest::Method::PATCH,
            &id,
            Body::Json(json!({"state": "Aborted"})),
        )
        .await;
    assert_eq!(aborted.status, 200);
    assert_eq!(aborted.json()["state"], "Aborted");
    assert_eq!(client.state(&id).await, "Aborted");
    let results = client.results(&id, "").await;
    assert_eq!(results.status, 412);
    assert!(results.json()[0]["message"]
        .as_str()
        .unwrap()
        .ends_with("ABORTED"));
    let again = client
        .job(
            reqwest::Method::PATCH,
            &id,
            Body::Json(json!({"state": "Aborted"})),
        )
        .await;
    assert_eq!(again.status, 400);

    // Results with another API version: 409. Versions before 47.0 have no query jobs.
    let id = client.start_job("SELECT Id FROM Account").await;
    client.state(&id).await;
    client.state(&id).await;
    let other = client
        .get(&format!("/services/data/v61.0/jobs/query/{id}/results"))
        .await;
    assert_eq!(other.status, 409);
    let old = client
        .create_in(
            "46.0",
            json!({"operation": "query", "query": "SELECT Id FROM Account"}),
        )
        .await;
    assert_eq!(old.status, 404);

    let jobs_now = emulator.bulk_jobs_created();
    assert_eq!(jobs_now, 3);
    emulator.shutdown().await;
}

#[tokio::test]
async fn the_daily_job_allowance_is_enforced() {
    let emulator = demo().await;
    let client = Client::new(&emulator);
    emulator.set_bulk_jobs_created(crate::emulator::limits::DAILY_BULK_QUERY_JOBS);
    let answer = client
        .create(json!({"operation": "query", "query": "SELECT Id FROM Account"}))
        .await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.json()[0]["errorCode"], "LIMIT_EXCEEDED");
    assert_eq!(
        answer.json()[0]["message"],
        "Max bulk v2 query jobs (10000) per 24 hrs has been reached (10000)"
    );
    emulator.shutdown().await;
}
