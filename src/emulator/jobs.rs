//! What Bulk API 2.0 query jobs ([`super::bulk`]) and ingest jobs ([`super::ingest`]) have in
//! common, written once: the job states and their spellings, the CSV format a job is created
//! with (`contentType`, `columnDelimiter`, `lineEnding`), the API version gate of each job
//! kind, the request bodies of job creation and state changes, the fields that open every job
//! info, the job list, the CSV writing, and the error answers with their status codes, error
//! codes and messages.
//!
//! What differs by kind stays with the kind: the operations, what a job needs besides its
//! format (a query, an object), how a job moves through its states, what its detailed info
//! adds, and what its results hold.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use super::wire::{json_response, ApiError};

/// A job's state, as the API spells it: the one state vocabulary of Bulk API 2.0 jobs. An
/// ingest job starts Open; a query job starts UploadComplete and is never Open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    /// An ingest job just created; takes its one upload.
    Open,
    /// Closed by the client (ingest) or just created (query); waiting to run.
    UploadComplete,
    /// Running.
    InProgress,
    /// Done: every row of an ingest job processed (each written or refused), or a query
    /// job's results ready to download.
    JobComplete,
    /// The job could not run (see its `errorMessage`); an ingest job applied no row.
    Failed,
    /// Aborted by the client before it ended; an ingest job applied no row.
    Aborted,
}

impl JobState {
    /// The state as the job info spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Open => "Open",
            JobState::UploadComplete => "UploadComplete",
            JobState::InProgress => "InProgress",
            JobState::JobComplete => "JobComplete",
            JobState::Failed => "Failed",
            JobState::Aborted => "Aborted",
        }
    }

    /// Whether the job has ended (JobComplete, Failed or Aborted): it can no longer be
    /// aborted, and an ingest job's results can be read.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobState::JobComplete | JobState::Failed | JobState::Aborted
        )
    }

    /// The upper-case form used in the JOB_NOT_COMPLETE message.
    pub(crate) fn shouting(self) -> &'static str {
        match self {
            JobState::Open => "OPEN",
            JobState::UploadComplete => "UPLOAD_COMPLETE",
            JobState::InProgress => "IN_PROGRESS",
            JobState::JobComplete => "JOB_COMPLETE",
            JobState::Failed => "FAILED",
            JobState::Aborted => "ABORTED",
        }
    }
}

/// The CSV format a job is created with: the column delimiter and the line ending, with the
/// names the client gave them (`COMMA`, `LF`), which the job info repeats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CsvFormat {
    /// The character between values.
    pub(crate) delimiter: char,
    /// The `columnDelimiter` name (`COMMA`).
    pub(crate) delimiter_name: String,
    /// Whether lines end in `\r\n` (`CRLF`) rather than `\n` (`LF`).
    pub(crate) crlf: bool,
    /// The `lineEnding` name (`LF` or `CRLF`).
    pub(crate) line_ending_name: String,
}

impl CsvFormat {
    /// The format a job-creation body asks for, checked in the order a job is: `contentType`
    /// (only `CSV`), `columnDelimiter` (default `COMMA`), `lineEnding` (default `LF`); any
    /// other value is refused with 400 `INVALIDJOB`.
    pub(crate) fn from_body(body: &Map<String, Value>) -> Result<CsvFormat, ApiError> {
        let text = |name: &str| body.get(name).and_then(Value::as_str);
        if let Some(content) = text("contentType").filter(|c| *c != "CSV") {
            return Err(invalid_job(&format!(
                "Invalid contentType {content}: the only supported value is CSV"
            )));
        }
        let delimiter_name = text("columnDelimiter").unwrap_or("COMMA").to_string();
        let Some(delimiter) = delimiter(&delimiter_name) else {
            return Err(invalid_job(&format!(
                "Invalid columnDelimiter {delimiter_name}: use BACKQUOTE, CARET, COMMA, PIPE, \
                     SEMICOLON or TAB"
            )));
        };
        let line_ending_name = text("lineEnding").unwrap_or("LF").to_string();
        let crlf = match line_ending_name.as_str() {
            "LF" => false,
            "CRLF" => true,
            other => {
                return Err(invalid_job(&format!(
                    "Invalid lineEnding {other}: use LF or CRLF"
                )))
            }
        };
        Ok(CsvFormat {
            delimiter,
            delimiter_name,
            crlf,
            line_ending_name,
        })
    }

    /// The line ending itself: `\r\n` or `\n`.
    pub(crate) fn line_ending(&self) -> &'static str {
        if self.crlf {
            "\r\n"
        } else {
            "\n"
        }
    }
}

/// The character of a `columnDelimiter` name (`COMMA` is `,`).
pub(crate) fn delimiter(name: &str) -> Option<char> {
    Some(match name {
        "COMMA" => ',',
        "TAB" => '\t',
        "PIPE" => '|',
        "SEMICOLON" => ';',
        "CARET" => '^',
        "BACKQUOTE" => '`',
        _ => return None,
    })
}

/// 404 (as for a resource that does not exist) when `version` (`62.0`) is before `min`, the
/// first major API version with the job kind; `None` when the version has it.
pub(crate) fn refuse_before(version: &str, min: u32) -> Option<Response> {
    let major: u32 = version
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    (major < min).then(|| ApiError::not_found().into_response())
}

/// The body of a job-creation request as a JSON object, or 400 `JSON_PARSER_ERROR`.
pub(crate) fn json_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(ApiError::bad_json(
            "Expected a JSON object as the request body",
        )),
    }
}

/// The `state` a `PATCH` of a job asks for (`{"state": "Aborted"}`), if the body is JSON with
/// a text `state`.
pub(crate) fn requested_state(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|b| b.get("state").and_then(Value::as_str).map(str::to_string))
}

/// Refuses to abort a job that has already ended (400 `INVALIDJOBSTATE`); `None` when a job
/// in `state` can be aborted.
pub(crate) fn refuse_abort(state: JobState) -> Option<Response> {
    state.is_final().then(|| {
        invalid_state(&format!(
            "The job is already {}: it cannot be aborted",
            state.as_str()
        ))
    })
}

/// The fields that open every job info, query or ingest, in the order the API writes them.
pub(crate) struct InfoHead<'a> {
    /// The job Id (`750...`).
    pub(crate) id: &'a str,
    /// The `operation` value (`query`, `upsert`, ...).
    pub(crate) operation: &'a str,
    /// The object's API name.
    pub(crate) object: &'a str,
    /// The user who created the job (`createdById`).
    pub(crate) created_by: &'a str,
    /// When the job was created (`createdDate`).
    pub(crate) created: &'a str,
    /// When the job last changed (`systemModstamp`).
    pub(crate) modstamp: &'a str,
    /// Where the job stands.
    pub(crate) state: JobState,
    /// Upsert ingest jobs: the external id field (`externalIdFieldName`).
    pub(crate) external_id: Option<&'a str>,
    /// The API version the job was created with (`62.0`), written as a JSON number.
    pub(crate) api_version: &'a str,
    /// `V2Query` or `V2Ingest`: written in the detailed info only.
    pub(crate) job_type: &'static str,
    /// Ingest jobs: where the data is uploaded (`contentUrl`).
    pub(crate) content_url: Option<String>,
    /// The job's delimiter and line ending.
    pub(crate) format: &'a CsvFormat,
}

impl InfoHead<'_> {
    /// The opening fields of the job info; `detailed` (the info of `GET jobs/.../{id}`) adds
    /// `jobType`. The caller appends what its kind reports after them.
    pub(crate) fn write(&self, detailed: bool) -> Map<String, Value> {
        let mut info = Map::new();
        info.insert("id".into(), json!(self.id));
        info.insert("operation".into(), json!(self.operation));
        info.insert("object".into(), json!(self.object));
        info.insert("createdById".into(), json!(self.created_by));
        info.insert("createdDate".into(), json!(self.created));
        info.insert("systemModstamp".into(), json!(self.modstamp));
        info.insert("state".into(), json!(self.state.as_str()));
        if let Some(field) = self.external_id {
            info.insert("externalIdFieldName".into(), json!(field));
        }
        info.insert("concurrencyMode".into(), json!("Parallel"));
        info.insert("contentType".into(), json!("CSV"));
        info.insert(
            "apiVersion".into(),
            serde_json::from_str::<Value>(self.api_version).unwrap_or(Value::Null),
        );
        if detailed {
            info.insert("jobType".into(), json!(self.job_type));
        }
        if let Some(url) = &self.content_url {
            info.insert("contentUrl".into(), json!(url));
        }
        info.insert("lineEnding".into(), json!(self.format.line_ending_name));
        info.insert("columnDelimiter".into(), json!(self.format.delimiter_name));
        info
    }
}

/// `GET jobs/query` or `GET jobs/ingest`: the infos of the org's jobs, as one page.
pub(crate) fn list_response(records: Vec<Value>) -> Response {
    json_response(
        StatusCode::OK,
        &json!({"done": true, "records": records, "nextRecordsUrl": null}),
    )
}

/// Appends `text` as a CSV value in double quotes, inner quotes doubled.
pub(crate) fn push_quoted(out: &mut String, text: &str) {
    out.push('"');
    out.push_str(&text.replace('"', "\"\""));
    out.push('"');
}

/// Appends one CSV line, every value in double quotes (inner quotes doubled).
pub(crate) fn csv_line<'a>(
    out: &mut String,
    values: impl IntoIterator<Item = &'a str>,
    delimiter: char,
    line_ending: &str,
) {
    for (i, value) in values.into_iter().enumerate() {
        if i > 0 {
            out.push(delimiter);
        }
        push_quoted(out, value);
    }
    out.push_str(line_ending);
}

/// A 200 answer of CSV results (`Content-Type: text/csv`).
pub(crate) fn csv_response(csv: String) -> Response {
    let mut response = (StatusCode::OK, csv).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv"));
    response
}

/// 400 with `code` and `message`.
pub(crate) fn bad_request(code: &str, message: &str) -> Response {
    ApiError::new(StatusCode::BAD_REQUEST, code, message).into_response()
}

/// 400 `INVALIDJOB`: the job-creation request asks for what a job cannot be.
fn invalid_job(message: &str) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "INVALIDJOB", message)
}

/// 400 `INVALIDJOBSTATE`: the job cannot take the state asked for, or the request in its state.
pub(crate) fn invalid_state(message: &str) -> Response {
    bad_request("INVALIDJOBSTATE", message)
}

/// 404 `NOT_FOUND`: no job has the Id (message first, as a real org writes it for jobs).
pub(crate) fn job_not_found() -> Response {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        "The requested resource does not exist",
    )
    .into_response()
}

/// 412 `JOB_NOT_COMPLETE`: the job's results cannot be downloaded yet.
pub(crate) fn job_not_complete(message: &str) -> Response {
    ApiError::new(StatusCode::PRECONDITION_FAILED, "JOB_NOT_COMPLETE", message).into_response()
}

/// 500 `UNKNOWN_EXCEPTION`: the work behind a request broke off (`message` says which).
pub(crate) fn unknown_exception(message: &str) -> Response {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "UNKNOWN_EXCEPTION",
        message,
    )
    .into_response()
}

/// Test helpers both job kinds' tests use: an HTTP client for a running emulator that sends
/// JSON or CSV bodies to the job resources, its answers, and the checks every job kind passes
/// (the info of a new job, the list, deletion).
#[cfg(test)]
pub(crate) mod testing {
    use serde_json::Value;

    use crate::emulator::RunningEmulator;

    /// The API version the tests use.
    pub(crate) const VERSION: &str = "62.0";
    /// The path of [`VERSION`].
    pub(crate) const API: &str = "/services/data/v62.0";

    /// A request body.
    pub(crate) enum Body {
        /// No body.
        None,
        /// A JSON body.
        Json(Value),
        /// A `text/csv` body (an ingest job's data).
        Csv(String),
    }

    /// An answer: its status, headers and body text.
    pub(crate) struct Answer {
        /// The HTTP status code.
        pub(crate) status: u16,
        /// The response headers.
        pub(crate) headers: reqwest::header::HeaderMap,
        /// The body as text.
        pub(crate) text: String,
    }

    impl Answer {
        /// The body as JSON (`null` when it is not JSON).
        pub(crate) fn json(&self) -> Value {
            serde_json::from_str(&self.text).unwrap_or(Value::Null)
        }

        /// The header `name` as text, if the answer has it.
        pub(crate) fn header(&self, name: &str) -> Option<String> {
            self.headers
                .get(name)
                .map(|v| v.to_str().unwrap().to_string())
        }

        /// The `errorCode` of the first error of the body.
        pub(crate) fn error_code(&self) -> Value {
            self.json()[0]["errorCode"].clone()
        }

        /// The `message` of the first error of the body (empty when there is none).
        pub(crate) fn message(&self) -> String {
            self.json()[0]["message"].as_str().unwrap_or("").to_string()
        }
    }

    /// Checks the answer to a job creation with the default format (`CSV`, `COMMA`, `LF`): 200,
    /// a job Id (`750...`, 18 characters) and the opening fields of the job info every kind
    /// reports. Returns the job info and the job Id.
    pub(crate) fn assert_created(
        created: &Answer,
        state: &str,
        operation: &str,
        object: &str,
    ) -> (Value, String) {
        assert_eq!(created.status, 200, "{}", created.text);
        let job = created.json();
        let id = job["id"].as_str().unwrap().to_string();
        assert!(id.starts_with("750") && id.len() == 18, "{id}");
        assert_eq!(job["state"], state);
        assert_eq!(job["operation"], operation);
        assert_eq!(job["object"], object);
        assert_eq!(job["contentType"], "CSV");
        assert_eq!(job["concurrencyMode"], "Parallel");
        assert_eq!(job["apiVersion"].to_string(), "62.0", "a JSON number");
        assert_eq!(job["lineEnding"], "LF");
        assert_eq!(job["columnDelimiter"], "COMMA");
        (job, id)
    }

    /// A signed-in client of one job kind's resources (`jobs/query` or `jobs/ingest`).
    pub(crate) struct JobsClient {
        http: reqwest::Client,
        /// The emulator's base URL.
        base: String,
        /// The bearer token every request carries.
        token: String,
        /// `query` or `ingest`.
        kind: &'static str,
        /// The client name sent in `Sforce-Call-Options`, if any.
        client_name: Option<&'static str>,
    }

    impl JobsClient {
        /// A client of `emulator`'s `jobs/{kind}` resources, signed in with its access token.
        pub(crate) fn on(emulator: &RunningEmulator, kind: &'static str) -> JobsClient {
            JobsClient {
                http: reqwest::Client::new(),
                base: emulator.base_url().to_string(),
                token: emulator.access_token(),
                kind,
                client_name: None,
            }
        }

        /// The same client, naming itself `name` in `Sforce-Call-Options` on every request.
        pub(crate) fn calling_as(self, name: &'static str) -> JobsClient {
            JobsClient {
                client_name: Some(name),
                ..self
            }
        }

        /// Sends `method` to `path` (from `/services/...`) with `body`.
        pub(crate) async fn send(&self, method: reqwest::Method, path: &str, body: Body) -> Answer {
            let mut request = self
                .http
                .request(method, format!("{}{path}", self.base))
                .bearer_auth(&self.token);
            if let Some(name) = self.client_name {
                request = request.header("Sforce-Call-Options", format!("client={name}"));
            }
            request = match body {
                Body::None => request,
                Body::Json(value) => request.json(&value),
                Body::Csv(text) => request.header("Content-Type", "text/csv").body(text),
            };
            let response = request.send().await.unwrap();
            Answer {
                status: response.status().as_u16(),
                headers: response.headers().clone(),
                text: response.text().await.unwrap(),
            }
        }

        /// `GET path` (from `/services/...`).
        pub(crate) async fn get(&self, path: &str) -> Answer {
            self.send(reqwest::Method::GET, path, Body::None).await
        }

        /// `POST jobs/{kind}` with `body`.
        pub(crate) async fn create(&self, body: Value) -> Answer {
            self.create_in(VERSION, body).await
        }

        /// `POST jobs/{kind}` with `body` in the API version `version` (`46.0`).
        pub(crate) async fn create_in(&self, version: &str, body: Value) -> Answer {
            self.send(
                reqwest::Method::POST,
                &format!("/services/data/v{version}/jobs/{}", self.kind),
                Body::Json(body),
            )
            .await
        }

        /// Sends `method` (with `body`) to the job `id`.
        pub(crate) async fn job(&self, method: reqwest::Method, id: &str, body: Body) -> Answer {
            self.send(method, &format!("{API}/jobs/{}/{id}", self.kind), body)
                .await
        }

        /// `GET` of `tail` under the job `id` (`results?maxRecords=5`, `failedResults/`).
        pub(crate) async fn job_part(&self, id: &str, tail: &str) -> Answer {
            self.get(&format!("{API}/jobs/{}/{id}/{tail}", self.kind))
                .await
        }

        /// Checks that `GET jobs/{kind}` lists the job `id` first, JobComplete, in one page;
        /// that `DELETE` removes it (204); and that it is then gone (404).
        pub(crate) async fn assert_listed_then_deleted(&self, id: &str) {
            let listed = self.get(&format!("{API}/jobs/{}", self.kind)).await.json();
            assert_eq!(listed["done"], true);
            assert_eq!(listed["records"][0]["id"], id);
            assert_eq!(listed["records"][0]["state"], "JobComplete");
            let deleted = self.job(reqwest::Method::DELETE, id, Body::None).await;
            assert_eq!(deleted.status, 204);
            let gone = self.job(reqwest::Method::GET, id, Body::None).await;
            assert_eq!(gone.status, 404);
        }
    }
}
