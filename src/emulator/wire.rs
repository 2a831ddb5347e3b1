//! Wire helpers shared by the emulator's routes: JSON responses with Salesforce's content type,
//! the request-level error envelope `[{message, errorCode[, fields]}]`, and API versions.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// Lowest API version served.
pub const MIN_VERSION: u32 = 31;
/// Highest API version served.
pub const MAX_VERSION: u32 = 68;

/// A JSON response with `Content-Type: application/json;charset=UTF-8`.
pub fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json;charset=UTF-8"),
    );
    response
}

/// A request-level error: an HTTP status and a JSON array of `{message, errorCode[, fields]}`.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: Value,
}

impl ApiError {
    /// `[{"message", "errorCode"}]`.
    pub fn new(status: StatusCode, error_code: &str, message: &str) -> ApiError {
        ApiError {
            status,
            body: json!([{"message": message, "errorCode": error_code}]),
        }
    }

    /// `[{"message", "errorCode", "fields"}]`.
    pub fn with_fields(
        status: StatusCode,
        error_code: &str,
        message: &str,
        fields: &[String],
    ) -> ApiError {
        ApiError {
            status,
            body: json!([{"message": message, "errorCode": error_code, "fields": fields}]),
        }
    }

    /// 404 `NOT_FOUND` "The requested resource does not exist" (key order as recorded).
    pub fn not_found() -> ApiError {
        ApiError {
            status: StatusCode::NOT_FOUND,
            body: json!([{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}]),
        }
    }

    /// 401 `INVALID_SESSION_ID`.
    pub fn invalid_session() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "INVALID_SESSION_ID",
            "Session expired or invalid",
        )
    }

    /// 400 `JSON_PARSER_ERROR` for a body that is not the expected JSON.
    pub fn bad_json(why: &str) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "JSON_PARSER_ERROR", why)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        json_response(self.status, &self.body)
    }
}

/// The release label of an API version (`31.0` is Summer '14, three releases a year).
fn release_label(major: u32) -> String {
    let index = major - MIN_VERSION;
    let season = ["Summer", "Winter", "Spring"][(index % 3) as usize];
    let year = 14 + index.div_ceil(3);
    format!("{season} '{year:02}")
}

/// The Versions resource body: every served version, oldest first.
pub fn versions_body() -> Value {
    Value::Array(
        (MIN_VERSION..=MAX_VERSION)
            .map(|v| {
                json!({
                    "label": release_label(v),
                    "url": format!("/services/data/v{v}.0"),
                    "version": format!("{v}.0"),
                })
            })
            .collect(),
    )
}

/// The version (`"59.0"`) of a `vNN.N` path segment, if it is served.
pub fn parse_version(segment: &str) -> Option<&str> {
    let version = segment.strip_prefix('v')?;
    let (major, minor) = version.split_once('.')?;
    let major: u32 = major.parse().ok()?;
    (minor == "0" && (MIN_VERSION..=MAX_VERSION).contains(&major)).then_some(version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_run_from_31_to_68_with_release_labels() {
        let body = versions_body();
        let list = body.as_array().unwrap();
        assert_eq!(list.len(), 38);
        assert_eq!(list[0]["version"], "31.0");
        assert_eq!(list[0]["label"], "Summer '14");
        assert_eq!(list[28]["version"], "59.0");
        assert_eq!(list[28]["label"], "Winter '24");
        assert_eq!(list[37]["url"], "/services/data/v68.0");
    }

    #[test]
    fn only_served_versions_parse() {
        assert_eq!(parse_version("v59.0"), Some("59.0"));
        assert_eq!(parse_version("v30.0"), None);
        assert_eq!(parse_version("v69.0"), None);
        assert_eq!(parse_version("v59.1"), None);
        assert_eq!(parse_version("59.0"), None);
    }
}
