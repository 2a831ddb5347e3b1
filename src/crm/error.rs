//! The CRM client's errors, grouped by what the caller does next, and per-record errors of
//! collections writes.

use std::time::Duration;

/// Why a CRM call failed. Variants follow the caller's next step:
/// - retry later in this cycle: [`CrmError::is_retryable`] (`Transport`, `Timeout`, 5xx, 420, 429);
/// - end the cycle and keep cursors: `QuotaExceeded`, `SessionExpired`;
/// - fix something first: [`CrmError::is_permanent`] (`Auth`, `InvalidConfig`, `InvalidRequest`,
///   most 4xx `Api` errors, undecodable bodies).
#[derive(Debug, thiserror::Error)]
pub enum CrmError {
    /// The token endpoint refused the credentials (`{error, error_description}`); permanent
    /// until the configuration or the connected app changes.
    #[error("the CRM refused the credentials (HTTP {status}, {error}: {description}); check the client id, user, key or secret and the connected app's approval")]
    Auth {
        status: u16,
        error: String,
        description: String,
    },
    /// The CRM answered 401 again right after a fresh token was fetched.
    #[error("the CRM session is expired or invalid even with a freshly issued token")]
    SessionExpired,
    /// 403 `REQUEST_LIMIT_EXCEEDED`: the org's rolling 24-hour API allowance is used up.
    /// Retrying within the cycle is pointless; end it cleanly.
    #[error("the CRM's API request limit is exceeded: {message}")]
    QuotaExceeded { message: String },
    /// A request-level error (`[{message, errorCode, fields}]`), or a status with an empty body
    /// (`error_code` is then `HTTP_<status>`).
    #[error("the CRM answered HTTP {status} {error_code}: {message}")]
    Api {
        status: u16,
        error_code: String,
        message: String,
        fields: Vec<String>,
    },
    /// The request did not reach the CRM or the connection broke.
    #[error("cannot reach the CRM ({url}): {message}")]
    Transport { url: String, message: String },
    /// No complete answer within the configured timeout.
    #[error("the CRM did not answer {what} within {timeout:?}")]
    Timeout { what: String, timeout: Duration },
    /// The body is not what the API documents (for instance an HTML page from a proxy).
    #[error("unexpected answer from the CRM to {what} (HTTP {status}): {reason}; body starts with: {excerpt:?}")]
    Decode {
        what: String,
        status: u16,
        reason: String,
        excerpt: String,
    },
    /// The configuration cannot work (bad URL, non-https remote host, unreadable key).
    #[error("invalid CRM configuration: {0}")]
    InvalidConfig(String),
    /// The caller passed something the API cannot accept (e.g. an update without an Id).
    #[error("invalid CRM request: {0}")]
    InvalidRequest(String),
}

/// HTTP statuses that are worth retrying: 5xx, 406, 420 (edge "setting things up") and 429.
pub(crate) fn is_retryable_status(status: u16) -> bool {
    status >= 500 || status == 406 || status == 420 || status == 429
}

/// Request-level error codes that are transient whatever the status.
const TRANSIENT_CODES: &[&str] = &[
    "SERVER_UNAVAILABLE",
    "UNABLE_TO_LOCK_ROW",
    "REQUEST_RUNNING_TOO_LONG",
];

impl CrmError {
    /// True when the same request may succeed if sent again after a short wait.
    pub fn is_retryable(&self) -> bool {
        match self {
            CrmError::Transport { .. } | CrmError::Timeout { .. } => true,
            // A 403 REQUEST_LIMIT_EXCEEDED that is still an Api error is the concurrent
            // request limit (the daily one becomes QuotaExceeded): back off and retry.
            CrmError::Api {
                status, error_code, ..
            } => {
                is_retryable_status(*status)
                    || TRANSIENT_CODES.contains(&error_code.as_str())
                    || (*status == 403 && error_code == "REQUEST_LIMIT_EXCEEDED")
            }
            CrmError::Decode { status, .. } => is_retryable_status(*status),
            CrmError::Auth { .. }
            | CrmError::SessionExpired
            | CrmError::QuotaExceeded { .. }
            | CrmError::InvalidConfig(_)
            | CrmError::InvalidRequest(_) => false,
        }
    }

    /// True when sending the same request later will fail the same way: fix the
    /// configuration or the data first. Quota and session errors are neither retryable now
    /// nor permanent.
    pub fn is_permanent(&self) -> bool {
        match self {
            CrmError::Auth { .. } | CrmError::InvalidConfig(_) | CrmError::InvalidRequest(_) => {
                true
            }
            CrmError::Api { .. } | CrmError::Decode { .. } => !self.is_retryable(),
            CrmError::SessionExpired
            | CrmError::QuotaExceeded { .. }
            | CrmError::Transport { .. }
            | CrmError::Timeout { .. } => false,
        }
    }

    /// The CRM's error code (`MALFORMED_QUERY`, `QUERY_TIMEOUT`, `invalid_grant`, ...), if any.
    pub fn error_code(&self) -> Option<&str> {
        match self {
            CrmError::Api { error_code, .. } => Some(error_code),
            CrmError::Auth { error, .. } => Some(error),
            CrmError::QuotaExceeded { .. } => Some("REQUEST_LIMIT_EXCEEDED"),
            _ => None,
        }
    }

    /// The HTTP status the CRM answered with, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            CrmError::Api { status, .. }
            | CrmError::Decode { status, .. }
            | CrmError::Auth { status, .. } => Some(*status),
            CrmError::QuotaExceeded { .. } => Some(403),
            CrmError::SessionExpired => Some(401),
            _ => None,
        }
    }
}

/// One error of one record in a collections write (`{statusCode, message, fields}`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct RecordError {
    #[serde(rename = "statusCode")]
    pub status_code: String,
    #[serde(default)]
    pub message: String,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub fields: Vec<String>,
}

/// Per-record status codes that succeed when the same row is sent again later.
const TRANSIENT_RECORD_CODES: &[&str] = &[
    "UNABLE_TO_LOCK_ROW",
    "SERVER_UNAVAILABLE",
    "REQUEST_RUNNING_TOO_LONG",
    "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    // plansync's own, for a record a Bulk ingest job did not process or report on.
    "NOT_PROCESSED",
    "NO_RESULT",
];

impl RecordError {
    /// True for row-lock contention and similar: retry just this row later.
    pub fn is_transient(&self) -> bool {
        TRANSIENT_RECORD_CODES.contains(&self.status_code.as_str())
    }
}

fn null_as_empty<'de, D>(d: D) -> Result<Vec<String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    use serde::Deserialize;
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}
