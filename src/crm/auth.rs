//! OAuth 2.0 token exchange with `/services/oauth2/token`: the JWT bearer, client credentials
//! and refresh token grants, the token response, and the token holder (never printed).

use std::fmt;

use base64::Engine;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use url::Url;

use super::wire::{decode_error, excerpt};
use super::{AuthConfig, CrmError};

/// Seconds a JWT assertion stays valid (Salesforce accepts up to 3 minutes).
const JWT_LIFETIME_SECS: i64 = 180;

/// An access token and where to use it. `Debug` never shows the token.
pub(crate) struct Token {
    pub access_token: SecretString,
    pub instance_url: Url,
    /// Increases with every fetched token; lets a caller tell whether its token was replaced.
    pub generation: u64,
    pub issued_at: Option<DateTime<Utc>>,
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("access_token", &"[redacted]")
            .field("instance_url", &self.instance_url.as_str())
            .field("generation", &self.generation)
            .field("issued_at", &self.issued_at)
            .finish()
    }
}

/// The configured grant with its key parsed once. `Debug` never shows a secret.
pub(crate) struct Grant {
    auth: AuthConfig,
    jwt_key: Option<EncodingKey>,
    audience: String,
}

impl fmt::Debug for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // AuthConfig's Debug already redacts SecretString values.
        f.debug_struct("Grant")
            .field("auth", &self.auth)
            .field("audience", &self.audience)
            .finish()
    }
}

/// The form fields and optional Basic credentials of one token request. Not `Debug`: it
/// holds secrets in the clear.
pub(crate) struct TokenRequest {
    pub form: Vec<(&'static str, String)>,
    pub authorization: Option<String>,
}

#[derive(Serialize)]
struct JwtClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: i64,
}

impl Grant {
    pub fn new(auth: AuthConfig, login_url: &Url) -> Result<Self, CrmError> {
        let mut audience = String::new();
        let jwt_key = match &auth {
            AuthConfig::JwtBearer {
                client_id,
                username,
                private_key_pem,
                audience: aud,
            } => {
                if client_id.is_empty() || username.is_empty() {
                    return Err(CrmError::InvalidConfig(
                        "the JWT bearer flow needs a client id and a username".into(),
                    ));
                }
                audience = if aud.trim().is_empty() {
                    default_audience(login_url)
                } else {
                    aud.trim().trim_end_matches('/').to_string()
                };
                let key = EncodingKey::from_rsa_pem(private_key_pem.expose_secret().as_bytes())
                    .map_err(|e| {
                        CrmError::InvalidConfig(format!(
                            "the JWT private key is not an RSA PEM key: {e}"
                        ))
                    })?;
                Some(key)
            }
            AuthConfig::ClientCredentials { client_id, .. }
            | AuthConfig::RefreshToken { client_id, .. } => {
                if client_id.is_empty() {
                    return Err(CrmError::InvalidConfig(
                        "the OAuth client id is empty".into(),
                    ));
                }
                None
            }
        };
        Ok(Grant {
            auth,
            jwt_key,
            audience,
        })
    }

    /// The grant's name for logs.
    pub fn name(&self) -> &'static str {
        match self.auth {
            AuthConfig::JwtBearer { .. } => "jwt_bearer",
            AuthConfig::ClientCredentials { .. } => "client_credentials",
            AuthConfig::RefreshToken { .. } => "refresh_token",
        }
    }

    /// The body (and Basic header) of a token request made at `now`.
    pub fn request(&self, now: DateTime<Utc>) -> Result<TokenRequest, CrmError> {
        match &self.auth {
            AuthConfig::JwtBearer {
                client_id,
                username,
                ..
            } => {
                let key = self.jwt_key.as_ref().ok_or_else(|| {
                    CrmError::InvalidConfig("the JWT private key was not loaded".into())
                })?;
                let claims = JwtClaims {
                    iss: client_id,
                    sub: username,
                    aud: &self.audience,
                    exp: now.timestamp() + JWT_LIFETIME_SECS,
                };
                let assertion = jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, key)
                    .map_err(|e| {
                        CrmError::InvalidConfig(format!("cannot sign the JWT assertion: {e}"))
                    })?;
                Ok(TokenRequest {
                    form: vec![
                        (
                            "grant_type",
                            "urn:ietf:params:oauth:grant-type:jwt-bearer".to_string(),
                        ),
                        ("assertion", assertion),
                    ],
                    authorization: None,
                })
            }
            AuthConfig::ClientCredentials {
                client_id,
                client_secret,
            } => {
                let pair = format!("{client_id}:{}", client_secret.expose_secret());
                let basic = base64::engine::general_purpose::STANDARD.encode(pair.as_bytes());
                Ok(TokenRequest {
                    form: vec![("grant_type", "client_credentials".to_string())],
                    authorization: Some(format!("Basic {basic}")),
                })
            }
            AuthConfig::RefreshToken {
                client_id,
                client_secret,
                refresh_token,
            } => {
                let mut form = vec![
                    ("grant_type", "refresh_token".to_string()),
                    ("client_id", client_id.clone()),
                ];
                if let Some(secret) = client_secret {
                    form.push(("client_secret", secret.expose_secret().to_string()));
                }
                form.push(("refresh_token", refresh_token.expose_secret().to_string()));
                Ok(TokenRequest {
                    form,
                    authorization: None,
                })
            }
        }
    }
}

/// The token endpoint's success body. `expires_in` is never sent by Salesforce.
#[derive(Deserialize)]
struct WireToken {
    access_token: String,
    #[serde(default)]
    instance_url: Option<String>,
    #[serde(default)]
    issued_at: Option<String>,
}

#[derive(Deserialize)]
struct WireTokenError {
    error: String,
    #[serde(default)]
    error_description: String,
}

/// Parsed token answer: the token, the instance URL it names, and when it was issued.
pub(crate) struct TokenAnswer {
    pub access_token: SecretString,
    pub instance_url: Option<String>,
    pub issued_at: Option<DateTime<Utc>>,
}

/// Maps a token endpoint answer to a token or an error: `{error, error_description}` is a
/// permanent [`CrmError::Auth`]; 5xx, 420 and 429 stay retryable.
pub(crate) fn parse_token_answer(status: u16, body: &[u8]) -> Result<TokenAnswer, CrmError> {
    const WHAT: &str = "the token request";
    if (200..300).contains(&status) {
        let wire: WireToken = serde_json::from_slice(body).map_err(|e| {
            // Never echo a body that may hold a token: report only its shape.
            let shown = if body.windows(12).any(|w| w == b"access_token") {
                "[a JSON body with an access_token]".to_string()
            } else {
                excerpt(body)
            };
            CrmError::Decode {
                what: WHAT.into(),
                status,
                reason: format!("not a token response ({e})"),
                excerpt: shown,
            }
        })?;
        if wire.access_token.is_empty() {
            return Err(decode_error(WHAT, status, "an empty access_token", b""));
        }
        let issued_at = wire
            .issued_at
            .as_deref()
            .and_then(|ms| ms.parse::<i64>().ok())
            .and_then(DateTime::<Utc>::from_timestamp_millis);
        return Ok(TokenAnswer {
            access_token: SecretString::from(wire.access_token),
            instance_url: wire.instance_url,
            issued_at,
        });
    }
    match serde_json::from_slice::<WireTokenError>(body) {
        Ok(err) if !super::error::is_retryable_status(status) => Err(CrmError::Auth {
            status,
            error: err.error,
            description: err.error_description,
        }),
        Ok(err) => Err(CrmError::Api {
            status,
            error_code: err.error,
            message: err.error_description,
            fields: Vec::new(),
        }),
        Err(_) if body.iter().all(u8::is_ascii_whitespace) => Err(CrmError::Api {
            status,
            error_code: format!("HTTP_{status}"),
            message: "empty response body from the token endpoint".into(),
            fields: Vec::new(),
        }),
        Err(e) => Err(decode_error(
            WHAT,
            status,
            format!("not an OAuth error ({e})"),
            body,
        )),
    }
}

/// The JWT `aud` a real org expects when none is configured: the sandbox login host for
/// sandboxes, the production one otherwise. Never the My Domain URL, which orgs answer with
/// `audience is invalid`.
pub fn default_audience(login_url: &url::Url) -> String {
    let host = login_url.host_str().unwrap_or_default();
    if host == "test.salesforce.com" || host.ends_with(".sandbox.my.salesforce.com") {
        "https://test.salesforce.com".into()
    } else {
        "https://login.salesforce.com".into()
    }
}

#[cfg(test)]
mod audience_tests {
    use super::default_audience;

    #[test]
    fn the_default_audience_is_a_login_host_never_my_domain() {
        let aud = |u: &str| default_audience(&url::Url::parse(u).unwrap());
        assert_eq!(
            aud("https://login.salesforce.com"),
            "https://login.salesforce.com"
        );
        assert_eq!(
            aud("https://acme.my.salesforce.com"),
            "https://login.salesforce.com"
        );
        assert_eq!(
            aud("https://test.salesforce.com"),
            "https://test.salesforce.com"
        );
        assert_eq!(
            aud("https://acme--uat.sandbox.my.salesforce.com"),
            "https://test.salesforce.com"
        );
    }
}
