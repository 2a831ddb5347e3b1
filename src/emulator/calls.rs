//! Requests the emulator received, counted by kind (token, query, next page, getDeleted ...),
//! so a benchmark or a test can tell what a client spent its API calls on.

use std::sync::Mutex;

use axum::http::Method;
use serde::Serialize;

/// What a request was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    /// `POST /services/oauth2/token`.
    Token,
    /// A new SOQL query: `GET .../query?q=` or `.../queryAll?q=`.
    Query,
    /// The next page of a query: `GET .../query/{locator}` (or under `/queryAll/`).
    NextPage,
    /// `GET .../sobjects/{object}/deleted`.
    GetDeleted,
    /// `GET .../sobjects/{object}/updated`.
    GetUpdated,
    /// `GET .../limits`.
    Limits,
    /// A create, update, upsert or delete: sObject Collections or a single record.
    Write,
    /// `POST .../composite`: up to 25 subrequests, one API call.
    Composite,
    /// Bulk API 2.0 jobs, query and ingest: create, upload, close, poll, results, abort,
    /// delete.
    Bulk,
    /// Describes, the sObject list, the versions and resources lists.
    Describe,
    /// Anything else (a record read, userinfo, an unknown path).
    Other,
}

impl CallKind {
    /// The kind of a request from its method and path.
    pub fn of(method: &Method, path: &str) -> CallKind {
        if path == "/services/oauth2/token" {
            return CallKind::Token;
        }
        let Some(rest) = path.strip_prefix("/services/data") else {
            return CallKind::Other;
        };
        let parts: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).collect();
        // parts[0] is the version (`v62.0`); none means the versions list.
        match parts.as_slice() {
            [] | [_] => CallKind::Describe,
            [_, "limits"] => CallKind::Limits,
            [_, "query" | "queryAll"] => CallKind::Query,
            [_, "query" | "queryAll", _] => CallKind::NextPage,
            [_, "sobjects"] => CallKind::Describe,
            [_, "sobjects", _, "describe"] => CallKind::Describe,
            [_, "sobjects", _, "deleted"] => CallKind::GetDeleted,
            [_, "sobjects", _, "updated"] => CallKind::GetUpdated,
            [_, "composite", "sobjects", ..] => CallKind::Write,
            [_, "composite"] => CallKind::Composite,
            [_, "jobs", "query" | "ingest", ..] => CallKind::Bulk,
            [_, "sobjects", ..] if *method != Method::GET => CallKind::Write,
            _ => CallKind::Other,
        }
    }
}

/// Requests received, by kind. Refused requests (a bad session, the daily limit) count too:
/// each was a call the client made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CallCounts {
    pub token: u64,
    pub query: u64,
    pub next_page: u64,
    pub get_deleted: u64,
    pub get_updated: u64,
    pub limits: u64,
    pub write: u64,
    pub composite: u64,
    pub bulk: u64,
    pub describe: u64,
    pub other: u64,
}

impl CallCounts {
    fn slot(&mut self, kind: CallKind) -> &mut u64 {
        match kind {
            CallKind::Token => &mut self.token,
            CallKind::Query => &mut self.query,
            CallKind::NextPage => &mut self.next_page,
            CallKind::GetDeleted => &mut self.get_deleted,
            CallKind::GetUpdated => &mut self.get_updated,
            CallKind::Limits => &mut self.limits,
            CallKind::Write => &mut self.write,
            CallKind::Composite => &mut self.composite,
            CallKind::Bulk => &mut self.bulk,
            CallKind::Describe => &mut self.describe,
            CallKind::Other => &mut self.other,
        }
    }

    /// Every request, the token requests included.
    pub fn total(&self) -> u64 {
        self.token
            + self.query
            + self.next_page
            + self.get_deleted
            + self.get_updated
            + self.limits
            + self.write
            + self.composite
            + self.bulk
            + self.describe
            + self.other
    }

    /// What was received between `earlier` (a previous snapshot) and `self`.
    pub fn since(&self, earlier: &CallCounts) -> CallCounts {
        let d = |now: u64, before: u64| now.saturating_sub(before);
        CallCounts {
            token: d(self.token, earlier.token),
            query: d(self.query, earlier.query),
            next_page: d(self.next_page, earlier.next_page),
            get_deleted: d(self.get_deleted, earlier.get_deleted),
            get_updated: d(self.get_updated, earlier.get_updated),
            limits: d(self.limits, earlier.limits),
            write: d(self.write, earlier.write),
            composite: d(self.composite, earlier.composite),
            bulk: d(self.bulk, earlier.bulk),
            describe: d(self.describe, earlier.describe),
            other: d(self.other, earlier.other),
        }
    }
}

/// The emulator's running counts.
#[derive(Debug, Default)]
pub struct CallCounter(Mutex<CallCounts>);

impl CallCounter {
    pub fn count(&self, kind: CallKind) {
        let mut counts = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *counts.slot(kind) += 1;
    }

    pub fn snapshot(&self) -> CallCounts {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_told_apart_by_method_and_path() {
        let get = Method::GET;
        let v = "/services/data/v62.0";
        let cases = [
            (
                Method::POST,
                "/services/oauth2/token".to_string(),
                CallKind::Token,
            ),
            (get.clone(), format!("{v}/query"), CallKind::Query),
            (get.clone(), format!("{v}/queryAll/"), CallKind::Query),
            (
                get.clone(),
                format!("{v}/query/01gX-2000"),
                CallKind::NextPage,
            ),
            (
                get.clone(),
                format!("{v}/queryAll/01gX-4000"),
                CallKind::NextPage,
            ),
            (
                get.clone(),
                format!("{v}/sobjects/Task/deleted/"),
                CallKind::GetDeleted,
            ),
            (
                get.clone(),
                format!("{v}/sobjects/Task/updated"),
                CallKind::GetUpdated,
            ),
            (get.clone(), format!("{v}/limits"), CallKind::Limits),
            (Method::POST, format!("{v}/composite"), CallKind::Composite),
            (Method::POST, format!("{v}/composite/"), CallKind::Composite),
            (
                get.clone(),
                format!("{v}/jobs/query/750x/results"),
                CallKind::Bulk,
            ),
            (Method::POST, format!("{v}/jobs/query"), CallKind::Bulk),
            (Method::POST, format!("{v}/jobs/ingest"), CallKind::Bulk),
            (
                Method::PUT,
                format!("{v}/jobs/ingest/750x/batches"),
                CallKind::Bulk,
            ),
            (
                Method::PATCH,
                format!("{v}/jobs/ingest/750x"),
                CallKind::Bulk,
            ),
            (
                get.clone(),
                format!("{v}/jobs/ingest/750x/failedResults/"),
                CallKind::Bulk,
            ),
            (
                Method::PATCH,
                format!("{v}/composite/sobjects"),
                CallKind::Write,
            ),
            (
                Method::PATCH,
                format!("{v}/composite/sobjects/Account/Ext__c"),
                CallKind::Write,
            ),
            (
                Method::POST,
                format!("{v}/sobjects/Account/"),
                CallKind::Write,
            ),
            (
                Method::DELETE,
                format!("{v}/sobjects/Account/001X"),
                CallKind::Write,
            ),
            (
                get.clone(),
                format!("{v}/sobjects/Account/001X"),
                CallKind::Other,
            ),
            (
                get.clone(),
                format!("{v}/sobjects/Account/describe"),
                CallKind::Describe,
            ),
            (get.clone(), format!("{v}/sobjects"), CallKind::Describe),
            (
                get.clone(),
                "/services/data/".to_string(),
                CallKind::Describe,
            ),
            (
                get.clone(),
                "/services/oauth2/userinfo".to_string(),
                CallKind::Other,
            ),
        ];
        for (method, path, kind) in cases {
            assert_eq!(CallKind::of(&method, &path), kind, "{method} {path}");
        }
    }

    #[test]
    fn counts_add_up_and_differences_are_per_kind() {
        let counter = CallCounter::default();
        counter.count(CallKind::Token);
        counter.count(CallKind::Query);
        let before = counter.snapshot();
        counter.count(CallKind::Query);
        counter.count(CallKind::NextPage);
        counter.count(CallKind::NextPage);
        let after = counter.snapshot();
        assert_eq!(after.total(), 5);
        let diff = after.since(&before);
        assert_eq!(
            diff,
            CallCounts {
                query: 1,
                next_page: 2,
                ..CallCounts::default()
            }
        );
        assert_eq!(diff.total(), 3);
    }
}
