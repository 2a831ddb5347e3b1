//! The emulator's SOQL subset: parsing a query against the org's [`Catalog`], and evaluating
//! it (filter, order, project) over the emulator's records.
//!
//! Records are JSON objects keyed by canonical field API names with wire-format values: dates
//! `YYYY-MM-DD`, datetimes `YYYY-MM-DDThh:mm:ss.SSS+0000` (always UTC), numbers, booleans,
//! strings, `null`.

mod error;
mod lexer;
mod parser;
mod plan;

use std::cmp::Ordering;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::metadata::Catalog;

pub use parser::MAX_OFFSET;

/// One stored record: canonical field API names to wire-format values. Always has `Id`.
pub type Record = Map<String, Value>;

/// Finds a record by object and Id, for parent fields such as `Account.Name`.
pub trait Lookup {
    fn get(&self, object: &str, id: &str) -> Option<&Record>;
}

/// A refused query, with the CRM's error code (`MALFORMED_QUERY`, `INVALID_FIELD`,
/// `INVALID_TYPE`) and message (`\n<query excerpt>\n<caret>\nERROR at Row:1:Column:N\n<why>`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error_code}: {message}")]
pub struct SoqlError {
    pub error_code: &'static str,
    pub message: String,
}

/// A parsed query: the object, COUNT(), LIMIT and OFFSET are public; the compiled filter,
/// ordering and projection stay inside. Cloning is cheap.
///
/// `Query` does not apply LIMIT and OFFSET itself: the caller filters with [`Query::matches`],
/// sorts with [`Query::compare`] when [`Query::is_ordered`], then skips `offset` and takes
/// `limit` records.
#[derive(Debug, Clone)]
pub struct Query {
    /// Canonical API name of the FROM object.
    pub object: String,
    /// `SELECT COUNT() ...`: only `totalSize` is returned.
    pub count_only: bool,
    pub limit: Option<usize>,
    pub offset: Option<usize>,
    plan: Arc<parser::Plan>,
}

/// Parses `text` against `catalog`.
pub fn parse(text: &str, catalog: &Catalog) -> Result<Query, SoqlError> {
    let plan = parser::parse(text, catalog)?;
    Ok(Query {
        object: plan.object.clone(),
        count_only: plan.count_only,
        limit: plan.limit,
        offset: plan.offset,
        plan: Arc::new(plan),
    })
}

impl Query {
    /// Whether `record` (of `self.object`) passes the WHERE clause.
    pub fn matches(&self, record: &Record, lookup: &dyn Lookup) -> bool {
        self.plan
            .filter
            .as_ref()
            .is_none_or(|f| f.eval(record, lookup))
    }

    /// The ORDER BY comparison of two records (Equal when there is no ORDER BY).
    pub fn compare(&self, a: &Record, b: &Record, lookup: &dyn Lookup) -> Ordering {
        for item in &self.plan.order {
            let o = item.compare(a, b, lookup);
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    }

    /// The selected fields as dotted paths in SELECT order (`Name`, `Account.Name`), the
    /// column names of a Bulk API query result.
    pub fn columns(&self) -> Vec<String> {
        fn walk(entries: &[plan::ProjEntry], prefix: &str, out: &mut Vec<String>) {
            for entry in entries {
                match entry {
                    plan::ProjEntry::Field(name) => {
                        let path = format!("{prefix}{name}");
                        if !out.contains(&path) {
                            out.push(path);
                        }
                    }
                    plan::ProjEntry::Parent {
                        relationship,
                        targets,
                        ..
                    } => {
                        let nested = format!("{prefix}{relationship}.");
                        for target in targets {
                            walk(&target.entries, &nested, out);
                        }
                    }
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.plan.projection, "", &mut out);
        out
    }

    /// The lowest SystemModstamp (as text) a record can have and pass the WHERE clause: the
    /// bound of a `SystemModstamp >= t` or `> t` the filter holds at its top, alone or as a
    /// term of its AND. `None` when it has no such bound.
    pub fn modstamp_floor(&self) -> Option<&str> {
        self.plan
            .filter
            .as_ref()
            .and_then(plan::Expr::modstamp_floor)
    }

    /// Whether the query has an ORDER BY clause.
    pub fn is_ordered(&self) -> bool {
        !self.plan.order.is_empty()
    }

    /// The record as the query returns it: `attributes {type, url}` (url with `api_version`
    /// such as `"59.0"`), then the selected fields in SELECT order, with parent fields nested
    /// as objects carrying their own `attributes`, or `null` for an empty lookup.
    pub fn project(&self, record: &Record, lookup: &dyn Lookup, api_version: &str) -> Value {
        plan::project(
            &self.plan.projection,
            &self.plan.object,
            record,
            lookup,
            api_version,
        )
    }
}

#[cfg(test)]
mod tests;
