//! OAuth 2.0 for the emulator: the token endpoint's grants (client credentials, JWT bearer,
//! refresh token), the success and error bodies of the real endpoint, and the sessions that
//! bearer tokens name.
//!
//! Sessions expire a fixed time after they are issued (`--session-ttl-s`), not after idle time,
//! so that a client's re-authentication path can be exercised deterministically.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rand::distributions::Alphanumeric;
use rand::Rng;
use serde_json::{json, Value};

/// Grant type of the JWT bearer flow.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// JWT audiences a real org accepts (an Experience Cloud site URL aside).
pub const JWT_AUDIENCES: [&str; 2] = [
    "https://login.salesforce.com",
    "https://test.salesforce.com",
];

/// The JWT bearer flow's configuration: the connected app's certificate and the pre-authorized
/// user.
#[derive(Clone)]
pub struct JwtConfig {
    key: DecodingKey,
    pub username: String,
}

impl std::fmt::Debug for JwtConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtConfig")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// The public key is not a PEM RSA public key.
#[derive(Debug, thiserror::Error)]
#[error("the JWT public key is not a PEM-encoded RSA public key")]
pub struct BadPublicKey(#[source] jsonwebtoken::errors::Error);

impl JwtConfig {
    /// `pem`: the RSA public key (`-----BEGIN PUBLIC KEY-----`) of the key that signs assertions.
    pub fn new(pem: &[u8], username: &str) -> Result<JwtConfig, BadPublicKey> {
        let key = DecodingKey::from_rsa_pem(pem).map_err(BadPublicKey)?;
        Ok(JwtConfig {
            key,
            username: username.to_string(),
        })
    }
}

/// Who may obtain tokens.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub client_id: String,
    pub client_secret: String,
    /// The refresh token the `refresh_token` grant accepts.
    pub refresh_token: String,
    pub jwt: Option<JwtConfig>,
}

/// A refused token request: 400 with `{"error", "error_description"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{error}: {description}")]
pub struct OAuthError {
    pub error: &'static str,
    pub description: &'static str,
}

impl OAuthError {
    const fn new(error: &'static str, description: &'static str) -> OAuthError {
        OAuthError { error, description }
    }

    pub fn body(&self) -> Value {
        json!({"error": self.error, "error_description": self.description})
    }
}

const MISSING_GRANT: OAuthError = OAuthError::new("invalid_request", "grant type is missing");
const UNSUPPORTED_GRANT: OAuthError =
    OAuthError::new("unsupported_grant_type", "grant type not supported");
const BAD_CLIENT_ID: OAuthError = OAuthError::new("invalid_client_id", "client identifier invalid");
const BAD_CLIENT_SECRET: OAuthError =
    OAuthError::new("invalid_client", "invalid client credentials");
const NOT_APPROVED: OAuthError =
    OAuthError::new("invalid_grant", "user hasn't approved this consumer");
const BAD_AUDIENCE: OAuthError = OAuthError::new("invalid_grant", "audience is invalid");
const EXPIRED_ASSERTION: OAuthError =
    OAuthError::new("invalid_grant", "expired authorization code");
const BAD_ASSERTION: OAuthError = OAuthError::new("invalid_grant", "invalid assertion");
const BAD_REFRESH_TOKEN: OAuthError =
    OAuthError::new("invalid_grant", "expired access/refresh token");

/// The client credentials flow sent to the shared login hosts instead of the org's My Domain.
pub const NOT_ON_THIS_DOMAIN: OAuthError =
    OAuthError::new("invalid_grant", "request not supported on this domain");

/// `login.salesforce.com` and `test.salesforce.com` (with or without a port): the hosts that
/// refuse the client credentials flow, which must go to the org's own My Domain.
pub fn is_shared_login_host(host: &str) -> bool {
    let name = host.split(':').next().unwrap_or_default();
    name.eq_ignore_ascii_case("login.salesforce.com")
        || name.eq_ignore_ascii_case("test.salesforce.com")
}

/// Checks a token request. `form` is the decoded form body; `basic` the client id and secret
/// of an `Authorization: Basic` header. Returns the granted scope.
pub fn check_grant(
    config: &AuthConfig,
    form: &HashMap<String, String>,
    basic: Option<(String, String)>,
    now: DateTime<Utc>,
) -> Result<&'static str, OAuthError> {
    let grant = form
        .get("grant_type")
        .map(|g| g.trim())
        .filter(|g| !g.is_empty())
        .ok_or(MISSING_GRANT)?;
    let (client_id, client_secret) = match basic {
        Some((id, secret)) => (Some(id), Some(secret)),
        None => (
            form.get("client_id").cloned(),
            form.get("client_secret").cloned(),
        ),
    };
    match grant {
        "client_credentials" => {
            if client_id.as_deref() != Some(config.client_id.as_str()) {
                return Err(BAD_CLIENT_ID);
            }
            if client_secret.as_deref() != Some(config.client_secret.as_str()) {
                return Err(BAD_CLIENT_SECRET);
            }
            Ok("api")
        }
        "refresh_token" => {
            if client_id.as_deref() != Some(config.client_id.as_str()) {
                return Err(BAD_CLIENT_ID);
            }
            if client_secret.is_some_and(|s| s != config.client_secret) {
                return Err(BAD_CLIENT_SECRET);
            }
            if form.get("refresh_token") != Some(&config.refresh_token) {
                return Err(BAD_REFRESH_TOKEN);
            }
            Ok("api refresh_token")
        }
        JWT_BEARER => {
            let assertion = form.get("assertion").ok_or(BAD_ASSERTION)?;
            check_assertion(config, assertion, now)?;
            Ok("api")
        }
        _ => Err(UNSUPPORTED_GRANT),
    }
}

/// Verifies a JWT bearer assertion the way a real org does.
fn check_assertion(
    config: &AuthConfig,
    assertion: &str,
    now: DateTime<Utc>,
) -> Result<(), OAuthError> {
    let header = jsonwebtoken::decode_header(assertion).map_err(|_| BAD_ASSERTION)?;
    if header.alg != Algorithm::RS256 {
        return Err(BAD_ASSERTION);
    }
    // Peek at the issuer before verifying, to answer an unknown consumer like a real org.
    let mut peek = Validation::new(Algorithm::RS256);
    peek.insecure_disable_signature_validation();
    relax(&mut peek);
    let unverified =
        jsonwebtoken::decode::<Value>(assertion, &DecodingKey::from_secret(b"unused"), &peek)
            .map_err(|_| BAD_ASSERTION)?
            .claims;
    if unverified.get("iss").and_then(Value::as_str) != Some(config.client_id.as_str()) {
        return Err(BAD_CLIENT_ID);
    }
    let jwt = config.jwt.as_ref().ok_or(NOT_APPROVED)?;
    let mut validation = Validation::new(Algorithm::RS256);
    relax(&mut validation);
    let claims = jsonwebtoken::decode::<Value>(assertion, &jwt.key, &validation)
        .map_err(|_| BAD_ASSERTION)?
        .claims;
    // `prn` is the legacy name of `sub`, and wins when both are present.
    let subject = claims
        .get("prn")
        .or_else(|| claims.get("sub"))
        .and_then(Value::as_str);
    if subject != Some(jwt.username.as_str()) {
        return Err(NOT_APPROVED);
    }
    let audience_ok = |a: &Value| {
        a.as_str()
            .is_some_and(|a| JWT_AUDIENCES.contains(&a.trim_end_matches('/')))
    };
    let aud_ok = match claims.get("aud") {
        Some(Value::Array(items)) => items.iter().any(audience_ok),
        Some(a) => audience_ok(a),
        None => false,
    };
    if !aud_ok {
        return Err(BAD_AUDIENCE);
    }
    let exp = claims
        .get("exp")
        .and_then(exp_seconds)
        .ok_or(BAD_ASSERTION)?;
    if exp < now.timestamp() as f64 {
        return Err(EXPIRED_ASSERTION);
    }
    Ok(())
}

fn relax(validation: &mut Validation) {
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims = HashSet::new();
}

/// `exp` as seconds since the epoch: a number or a numeric string.
fn exp_seconds(value: &Value) -> Option<f64> {
    let raw = match value {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    // A value too large to be seconds (sfdx-core sends milliseconds) is taken as it is: far in
    // the future, which real orgs accept.
    Some(raw)
}

/// Decodes `Authorization: Basic base64(id:secret)`.
pub fn parse_basic(header: &str) -> Option<(String, String)> {
    let encoded = header
        .strip_prefix("Basic ")
        .or_else(|| header.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((id.to_string(), secret.to_string()))
}

/// The success body of the token endpoint.
pub fn token_body(
    access_token: &str,
    scope: &str,
    instance_url: &str,
    org_id: &str,
    user_id: &str,
    client_secret: &str,
    issued_at: DateTime<Utc>,
) -> Value {
    let id = format!("{instance_url}/id/{org_id}/{user_id}");
    let issued_at = issued_at.timestamp_millis().to_string();
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, client_secret.as_bytes());
    let tag = ring::hmac::sign(&key, format!("{id}{issued_at}").as_bytes());
    let signature = base64::engine::general_purpose::STANDARD.encode(tag.as_ref());
    json!({
        "access_token": access_token,
        "signature": signature,
        "scope": scope,
        "instance_url": instance_url,
        "id": id,
        "token_type": "Bearer",
        "issued_at": issued_at,
    })
}

/// Random token material: letters and digits.
pub fn random_token(len: usize) -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// The open sessions, by access token.
#[derive(Debug)]
pub struct Sessions {
    ttl: Duration,
    issued: Mutex<HashMap<String, DateTime<Utc>>>,
}

impl Sessions {
    pub fn new(ttl: Duration) -> Sessions {
        Sessions {
            ttl,
            issued: Mutex::new(HashMap::new()),
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, DateTime<Utc>>> {
        self.issued.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Opens a session; its token is `<15-char org id>!<opaque>`.
    pub fn issue(&self, org_id: &str, now: DateTime<Utc>) -> String {
        let org15 = org_id.get(..15).unwrap_or(org_id);
        let token = format!("{org15}!{}", random_token(96));
        let mut map = self.map();
        let ttl = self.ttl;
        map.retain(|_, issued| !expired(*issued, ttl, now));
        map.insert(token.clone(), now);
        token
    }

    /// Whether `token` names a live session.
    pub fn is_valid(&self, token: &str, now: DateTime<Utc>) -> bool {
        self.map()
            .get(token)
            .is_some_and(|issued| !expired(*issued, self.ttl, now))
    }

    pub fn revoke(&self, token: &str) {
        self.map().remove(token);
    }

    pub fn revoke_all(&self) {
        self.map().clear();
    }
}

fn expired(issued: DateTime<Utc>, ttl: Duration, now: DateTime<Utc>) -> bool {
    let ttl = chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX);
    issued
        .checked_add_signed(ttl)
        .is_some_and(|deadline| deadline <= now)
}

/// The bearer token of a request (`Authorization: Bearer X`, or the older `OAuth X`).
pub(crate) fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("OAuth "))
        .map(str::trim)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> AuthConfig {
        AuthConfig {
            client_id: "cid".into(),
            client_secret: "secret".into(),
            refresh_token: "rt".into(),
            jwt: None,
        }
    }

    fn form(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn client_credentials_accepts_form_or_basic_and_refuses_bad_clients() {
        let now = Utc::now();
        let c = config();
        let ok = form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "cid"),
            ("client_secret", "secret"),
        ]);
        assert!(check_grant(&c, &ok, None, now).is_ok());
        let basic = parse_basic(&format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("cid:secret")
        ));
        let bare = form(&[("grant_type", "client_credentials")]);
        assert!(check_grant(&c, &bare, basic, now).is_ok());
        let bad_id = form(&[("grant_type", "client_credentials"), ("client_id", "x")]);
        assert_eq!(check_grant(&c, &bad_id, None, now), Err(BAD_CLIENT_ID));
        assert_eq!(check_grant(&c, &form(&[]), None, now), Err(MISSING_GRANT));
        assert_eq!(
            check_grant(&c, &form(&[("grant_type", "magic")]), None, now),
            Err(UNSUPPORTED_GRANT)
        );
    }

    #[test]
    fn exp_may_be_a_string_a_number_or_a_huge_number() {
        assert_eq!(exp_seconds(&json!("1333685628")), Some(1333685628.0));
        assert_eq!(exp_seconds(&json!(1333685628)), Some(1333685628.0));
        // Milliseconds read as seconds: far in the future, accepted as real orgs do.
        assert_eq!(exp_seconds(&json!(1706700000300u64)), Some(1706700000300.0));
        assert_eq!(exp_seconds(&json!(true)), None);
    }

    #[test]
    fn sessions_expire_after_their_ttl() {
        let sessions = Sessions::new(Duration::from_secs(60));
        let t0 = Utc::now();
        let token = sessions.issue("00D5e0000000001AAA", t0);
        assert!(token.starts_with("00D5e0000000001!"));
        assert!(sessions.is_valid(&token, t0 + chrono::Duration::seconds(59)));
        assert!(!sessions.is_valid(&token, t0 + chrono::Duration::seconds(60)));
        assert!(!sessions.is_valid("00D5e0000000001!nope", t0));
    }
}
