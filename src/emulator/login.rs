//! The OAuth endpoints of the emulator's login: the token endpoint (every grant plansync
//! uses, wire doc §1) and the user's identity (`userinfo` and the identity URL).

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::json;

use super::auth;
use super::server::Shared;
use super::wire::{json_response, ApiError};

/// `POST /services/oauth2/token`.
pub(super) async fn token(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(auth::parse_basic);
    let now = Utc::now();
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    if form.get("grant_type").map(String::as_str) == Some("client_credentials")
        && host.is_some_and(auth::is_shared_login_host)
    {
        return json_response(StatusCode::BAD_REQUEST, &auth::NOT_ON_THIS_DOMAIN.body());
    }
    match auth::check_grant(&shared.auth, &form, basic, now) {
        Ok(scope) => {
            let access_token = shared.issue_token(now);
            let (org_id, user_id) = {
                let org = shared.read_org();
                (org.org_id().to_string(), org.user_id().to_string())
            };
            let body = auth::token_body(
                &access_token,
                scope,
                &shared.base_url,
                &org_id,
                &user_id,
                &shared.auth.client_secret,
                now,
            );
            let mut response = json_response(StatusCode::OK, &body);
            response.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("no-cache,must-revalidate,max-age=0,no-store,private"),
            );
            response
        }
        Err(err) => json_response(StatusCode::BAD_REQUEST, &err.body()),
    }
}

/// `GET /services/oauth2/userinfo` and the identity URL `GET /id/{org}/{user}`.
pub(super) async fn userinfo(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let now = Utc::now();
    if !auth::bearer(&headers).is_some_and(|t| shared.sessions.is_valid(t, now)) {
        return ApiError::invalid_session().into_response();
    }
    let org = shared.read_org();
    let (org_id, user_id) = (org.org_id().to_string(), org.user_id().to_string());
    let username = shared
        .auth
        .jwt
        .as_ref()
        .map(|j| j.username.clone())
        .unwrap_or_else(|| super::org::INTEGRATION_USERNAME.to_string());
    let body = json!({
        "sub": format!("{}/id/{org_id}/{user_id}", shared.base_url),
        "user_id": user_id,
        "organization_id": org_id,
        "preferred_username": username,
        "nickname": "integration",
        "name": "Integration User",
        "email": "integration@plansync.invalid",
        "email_verified": true,
        "zoneinfo": "GMT",
        "locale": "en_US",
        "language": "en_US",
        "user_type": "STANDARD",
        "active": true,
        "urls": {
            "rest": format!("{}/services/data/v{{version}}/", shared.base_url),
            "sobjects": format!("{}/services/data/v{{version}}/sobjects/", shared.base_url),
            "query": format!("{}/services/data/v{{version}}/query/", shared.base_url),
        },
    });
    json_response(StatusCode::OK, &body)
}
