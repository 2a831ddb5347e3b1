//! OAuth 2.0 token exchange with `/services/oauth2/token`: the client credentials and refresh
//! token grants (through the `oauth2` crate), the JWT bearer grant (RFC 7523, signed here), the
//! token response they share, and the token holder (never printed).
//!
//! Every grant sends its request through the caller's [`AsyncHttpClient`], so the CRM client
//! counts, retries and reads `Sforce-Limit-Info` on token requests like on any other. That
//! client hands back only `200` answers; it maps every other status to a [`CrmError`] itself
//! (see [`token_error`]), so the HTTP status stays known and 5xx, 420 and 429 stay retryable.

use std::fmt;

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
    BasicTokenType,
};
use oauth2::http::header::{ACCEPT, CONTENT_TYPE};
use oauth2::{
    AsyncHttpClient, AuthType, Client, ClientId, ClientSecret, EndpointNotSet, EndpointSet,
    ExtraTokenFields, RefreshToken, RequestTokenError, StandardRevocableToken,
    StandardTokenResponse, TokenResponse, TokenUrl,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use url::Url;

use super::wire::{decode_error, excerpt};
use super::{AuthConfig, CrmError};

/// Seconds a JWT assertion stays valid (Salesforce accepts up to 3 minutes).
const JWT_LIFETIME_SECS: i64 = 180;

const WHAT: &str = "the token request";

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

/// What Salesforce adds to the RFC 6749 token response. It sends no `expires_in`: a token
/// lives until the CRM answers 401, and then it is replaced.
#[derive(Debug, Deserialize, Serialize)]
pub(crate) struct SalesforceFields {
    /// The REST host of the org (`https://acme.my.salesforce.com`).
    #[serde(default)]
    pub instance_url: Option<String>,
    /// The identity URL `https://login.salesforce.com/id/<org id>/<user id>`.
    #[serde(default)]
    pub id: Option<String>,
    /// Epoch milliseconds, as a string.
    #[serde(default)]
    pub issued_at: Option<String>,
    /// Base64 HMAC-SHA256 of `id` + `issued_at`, keyed by the consumer secret.
    #[serde(default)]
    pub signature: Option<String>,
}

impl ExtraTokenFields for SalesforceFields {}

/// The token endpoint's success body, for every grant. `token_type` is `"Bearer"`.
pub(crate) type SalesforceToken = StandardTokenResponse<SalesforceFields, BasicTokenType>;

/// An `oauth2` client with only the token endpoint set.
type OAuthClient = Client<
    BasicErrorResponse,
    SalesforceToken,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// How a token is obtained.
enum Flow {
    /// RFC 7523 (not one of `oauth2`'s grants): a signed assertion, no client secret.
    JwtBearer {
        client_id: String,
        username: String,
        key: EncodingKey,
        audience: String,
    },
    /// Client secret in an `Authorization: Basic` header (RFC 6749 section 2.3.1).
    ClientCredentials(OAuthClient),
    /// `client_id` (and `client_secret` when configured) in the form body.
    RefreshToken(OAuthClient, RefreshToken),
}

/// The configured grant with its key parsed once. `Debug` never shows a secret.
pub(crate) struct Grant {
    token_url: Url,
    flow: Flow,
}

impl fmt::Debug for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Grant");
        d.field("grant", &self.name())
            .field("token_url", &self.token_url.as_str());
        if let Flow::JwtBearer {
            client_id,
            username,
            audience,
            ..
        } = &self.flow
        {
            d.field("client_id", client_id)
                .field("username", username)
                .field("audience", audience);
        }
        d.finish()
    }
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
        let token_url = login_url
            .join("/services/oauth2/token")
            .map_err(|e| CrmError::InvalidConfig(format!("bad login URL: {e}")))?;
        let oauth = |client_id: &str| -> Result<OAuthClient, CrmError> {
            if client_id.is_empty() {
                return Err(CrmError::InvalidConfig(
                    "the OAuth client id is empty".into(),
                ));
            }
            Ok(Client::new(ClientId::new(client_id.to_string()))
                .set_token_uri(TokenUrl::from_url(token_url.clone())))
        };
        let flow = match auth {
            AuthConfig::JwtBearer {
                client_id,
                username,
                private_key_pem,
                audience,
            } => {
                if client_id.is_empty() || username.is_empty() {
                    return Err(CrmError::InvalidConfig(
                        "the JWT bearer flow needs a client id and a username".into(),
                    ));
                }
                let audience = if audience.trim().is_empty() {
                    default_audience(login_url)
                } else {
                    audience.trim().trim_end_matches('/').to_string()
                };
                let key = EncodingKey::from_rsa_pem(private_key_pem.expose_secret().as_bytes())
                    .map_err(|e| {
                        CrmError::InvalidConfig(format!(
                            "the JWT private key is not an RSA PEM key: {e}"
                        ))
                    })?;
                Flow::JwtBearer {
                    client_id,
                    username,
                    key,
                    audience,
                }
            }
            AuthConfig::ClientCredentials {
                client_id,
                client_secret,
            } => Flow::ClientCredentials(
                oauth(&client_id)?
                    .set_client_secret(ClientSecret::new(client_secret.expose_secret().to_string()))
                    .set_auth_type(AuthType::BasicAuth),
            ),
            AuthConfig::RefreshToken {
                client_id,
                client_secret,
                refresh_token,
            } => {
                let mut client = oauth(&client_id)?.set_auth_type(AuthType::RequestBody);
                if let Some(secret) = client_secret {
                    client =
                        client.set_client_secret(ClientSecret::new(secret.expose_secret().into()));
                }
                Flow::RefreshToken(
                    client,
                    RefreshToken::new(refresh_token.expose_secret().to_string()),
                )
            }
        };
        Ok(Grant { token_url, flow })
    }

    /// The grant's name for logs.
    pub fn name(&self) -> &'static str {
        match self.flow {
            Flow::JwtBearer { .. } => "jwt_bearer",
            Flow::ClientCredentials(_) => "client_credentials",
            Flow::RefreshToken(..) => "refresh_token",
        }
    }

    /// One token request made at `now`, sent through `http`, which answers only `200`s and
    /// maps every other status to a [`CrmError`] (with [`token_error`]).
    pub async fn exchange<'c, C>(
        &'c self,
        http: &'c C,
        now: DateTime<Utc>,
    ) -> Result<TokenAnswer, CrmError>
    where
        C: AsyncHttpClient<'c, Error = CrmError>,
    {
        let token = match &self.flow {
            Flow::JwtBearer {
                client_id,
                username,
                key,
                audience,
            } => {
                let claims = JwtClaims {
                    iss: client_id,
                    sub: username,
                    aud: audience,
                    exp: now.timestamp() + JWT_LIFETIME_SECS,
                };
                let assertion = jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, key)
                    .map_err(|e| {
                        CrmError::InvalidConfig(format!("cannot sign the JWT assertion: {e}"))
                    })?;
                let body = url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer")
                    .append_pair("assertion", &assertion)
                    .finish();
                let request = oauth2::http::Request::builder()
                    .method(oauth2::http::Method::POST)
                    .uri(self.token_url.as_str())
                    .header(ACCEPT, "application/json")
                    .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(body.into_bytes())
                    .map_err(|e| {
                        CrmError::InvalidConfig(format!("cannot build the token request: {e}"))
                    })?;
                let response = http.call(request).await?;
                serde_json::from_slice::<SalesforceToken>(response.body())
                    .map_err(|e| not_a_token(e.to_string(), response.body()))?
            }
            Flow::ClientCredentials(client) => client
                .exchange_client_credentials()
                .request_async(http)
                .await
                .map_err(from_oauth)?,
            Flow::RefreshToken(client, refresh_token) => client
                .exchange_refresh_token(refresh_token)
                .request_async(http)
                .await
                .map_err(from_oauth)?,
        };
        TokenAnswer::from_response(token)
    }
}

/// Parsed token answer: the token, the instance URL it names, and when it was issued.
pub(crate) struct TokenAnswer {
    pub access_token: SecretString,
    pub instance_url: Option<String>,
    pub issued_at: Option<DateTime<Utc>>,
}

impl TokenAnswer {
    fn from_response(token: SalesforceToken) -> Result<Self, CrmError> {
        let secret = token.access_token().secret();
        if secret.is_empty() {
            return Err(decode_error(WHAT, 200, "an empty access_token", b""));
        }
        let extra = token.extra_fields();
        let issued_at = extra
            .issued_at
            .as_deref()
            .and_then(|ms| ms.parse::<i64>().ok())
            .and_then(DateTime::<Utc>::from_timestamp_millis);
        Ok(TokenAnswer {
            access_token: SecretString::from(secret.as_str()),
            instance_url: extra.instance_url.clone(),
            issued_at,
        })
    }
}

/// A `200` body that is not a token response.
fn not_a_token(reason: String, body: &[u8]) -> CrmError {
    CrmError::Decode {
        what: WHAT.into(),
        status: 200,
        reason: format!("not a token response ({reason})"),
        excerpt: shown(body),
    }
}

/// An excerpt of a token endpoint body; never echoes one that may hold a token, reports only
/// its shape then.
fn shown(body: &[u8]) -> String {
    if body.windows(12).any(|w| w == b"access_token") {
        "[a JSON body with an access_token]".to_string()
    } else {
        excerpt(body)
    }
}

/// Maps what `oauth2` reports back to the [`CrmError`] the HTTP client or the body gave.
fn from_oauth(e: RequestTokenError<CrmError, BasicErrorResponse>) -> CrmError {
    match e {
        RequestTokenError::Request(e) => e,
        RequestTokenError::Parse(e, body) => not_a_token(e.to_string(), &body),
        RequestTokenError::Other(reason) => decode_error(WHAT, 200, reason, b""),
        // Only reached for non-200 answers, which the HTTP client maps itself; kept exact
        // should that ever change.
        RequestTokenError::ServerResponse(e) => CrmError::Auth {
            status: 400,
            error: e.error().as_ref().to_string(),
            description: e.error_description().cloned().unwrap_or_default(),
        },
    }
}

#[derive(Deserialize)]
struct WireTokenError {
    error: String,
    #[serde(default)]
    error_description: String,
}

/// Maps a non-`200` token endpoint answer to an error: `{error, error_description}` is a
/// permanent [`CrmError::Auth`] carrying the CRM's words; 5xx, 420 and 429 stay retryable.
pub(crate) fn token_error(status: u16, body: &[u8]) -> CrmError {
    match serde_json::from_slice::<WireTokenError>(body) {
        Ok(err) if !super::error::is_retryable_status(status) => CrmError::Auth {
            status,
            error: err.error,
            description: err.error_description,
        },
        Ok(err) => CrmError::Api {
            status,
            error_code: err.error,
            message: err.error_description,
            fields: Vec::new(),
        },
        Err(_) if body.iter().all(u8::is_ascii_whitespace) => CrmError::Api {
            status,
            error_code: format!("HTTP_{status}"),
            message: "empty response body from the token endpoint".into(),
            fields: Vec::new(),
        },
        Err(e) => CrmError::Decode {
            what: WHAT.into(),
            status,
            reason: format!("not an OAuth error ({e})"),
            excerpt: shown(body),
        },
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

#[cfg(test)]
mod response_tests {
    use super::*;

    #[test]
    fn the_salesforce_token_response_keeps_its_extra_fields() {
        let body = br#"{
            "access_token": "00D5e000000AbCd!AQ0AQH",
            "signature": "0CmxinZir53Yex7nE0TD+zMpvIWYGb/bdJh6XfOH6EQ=",
            "scope": "api refresh_token",
            "instance_url": "https://acme.my.salesforce.com",
            "id": "https://login.salesforce.com/id/00D5e000000AbCdEAK/0055e000001XyZaAAK",
            "token_type": "Bearer",
            "issued_at": "1706700000000"
        }"#;
        let token: SalesforceToken = serde_json::from_slice(body).unwrap();
        assert_eq!(token.token_type(), &BasicTokenType::Bearer);
        assert_eq!(token.expires_in(), None);
        let extra = token.extra_fields();
        assert_eq!(
            extra.id.as_deref(),
            Some("https://login.salesforce.com/id/00D5e000000AbCdEAK/0055e000001XyZaAAK")
        );
        assert_eq!(
            extra.signature.as_deref(),
            Some("0CmxinZir53Yex7nE0TD+zMpvIWYGb/bdJh6XfOH6EQ=")
        );
        let answer = TokenAnswer::from_response(token).unwrap();
        assert_eq!(
            answer.access_token.expose_secret(),
            "00D5e000000AbCd!AQ0AQH"
        );
        assert_eq!(
            answer.instance_url.as_deref(),
            Some("https://acme.my.salesforce.com")
        );
        assert_eq!(
            answer.issued_at,
            DateTime::<Utc>::from_timestamp_millis(1_706_700_000_000)
        );
        let empty: SalesforceToken =
            serde_json::from_slice(br#"{"access_token":"","token_type":"Bearer"}"#).unwrap();
        assert!(matches!(
            TokenAnswer::from_response(empty),
            Err(CrmError::Decode { .. })
        ));
    }

    #[test]
    fn refused_credentials_keep_the_crm_words_and_outages_stay_retryable() {
        let refused = token_error(
            400,
            br#"{"error":"invalid_client","error_description":"invalid client credentials"}"#,
        );
        assert!(refused.is_permanent());
        assert!(refused.to_string().contains("invalid_client"));
        assert!(refused.to_string().contains("invalid client credentials"));
        let busy = token_error(
            503,
            br#"{"error":"unavailable","error_description":"busy"}"#,
        );
        assert!(busy.is_retryable());
        let leaked = token_error(302, br#"{"access_token":"00D!secret"}"#);
        assert!(!format!("{leaked:?}").contains("00D!secret"), "{leaked:?}");
    }
}
