//! Who may read `/metrics` and `/healthz`, and over what: a bearer token, HTTP basic auth with
//! bcrypt password hashes (the format of the Prometheus exporters' web configuration), and
//! optionally TLS (rustls on ring). Credentials are compared in constant time; a request
//! without a valid one gets 401 with `WWW-Authenticate`. No secret is logged or shown by
//! `Debug`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

use crate::config::{ConfigError, MetricsSection};

/// The realm named in `WWW-Authenticate`.
const REALM: &str = "plansync";
/// How many verified basic-auth credentials are remembered, so that a scraper's every request
/// does not pay for a bcrypt check.
const VERIFIED_CACHE: usize = 64;

/// Why the endpoint's access settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot read the TLS {what} {path} named by `{key}`: {message}")]
    TlsFile {
        what: &'static str,
        key: &'static str,
        path: PathBuf,
        message: String,
    },
    #[error(
        "the TLS certificate `metrics.tls_cert_file` ({cert}) and key `metrics.tls_key_file` \
         ({key}) do not make a usable server identity: {message}"
    )]
    Tls {
        cert: PathBuf,
        key: PathBuf,
        message: String,
    },
}

/// One basic-auth user: its name and bcrypt hash.
#[derive(Clone)]
struct User {
    name: String,
    hash: String,
}

/// The credentials the endpoint accepts; none means open (loopback only, as the
/// configuration enforces).
#[derive(Clone, Default)]
pub struct Access {
    bearer: Option<SecretString>,
    users: Vec<User>,
    /// SHA-256 digests of `user\0password` pairs that passed the bcrypt check.
    verified: Arc<Mutex<HashSet<[u8; 32]>>>,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access")
            .field("bearer_token", &self.bearer.as_ref().map(|_| "[REDACTED]"))
            .field(
                "basic_auth_users",
                &self
                    .users
                    .iter()
                    .map(|u| u.name.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Access {
    /// Open access: no credential needed.
    pub fn open() -> Access {
        Access::default()
    }

    /// A bearer token and basic-auth users given directly (bcrypt hashes).
    pub fn new(bearer: Option<SecretString>, users: Vec<(String, String)>) -> Access {
        Access {
            bearer,
            users: users
                .into_iter()
                .map(|(name, hash)| User { name, hash })
                .collect(),
            verified: Arc::default(),
        }
    }

    /// From `[metrics]`, reading the bearer token file now.
    pub fn from_config(section: &MetricsSection) -> Result<Access, ConfigError> {
        let users = section
            .basic_auth()
            .into_iter()
            .map(|u| (u.username, u.password_bcrypt.expose().to_string()))
            .collect();
        Ok(Access::new(section.bearer_token()?, users))
    }

    /// Whether any credential is required.
    pub fn is_required(&self) -> bool {
        self.bearer.is_some() || !self.users.is_empty()
    }

    /// Whether the request's `Authorization` header carries an accepted credential.
    pub fn allows(&self, headers: &HeaderMap) -> bool {
        if !self.is_required() {
            return true;
        }
        let Some(value) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
        else {
            return false;
        };
        let (scheme, credential) = value.trim().split_once(' ').unwrap_or((value, ""));
        let credential = credential.trim();
        if scheme.eq_ignore_ascii_case("bearer") {
            return self.bearer_matches(credential);
        }
        if scheme.eq_ignore_ascii_case("basic") {
            return self.basic_matches(credential);
        }
        false
    }

    fn bearer_matches(&self, given: &str) -> bool {
        let Some(expected) = &self.bearer else {
            return false;
        };
        // Digests have one length, so the comparison's time says nothing about the token.
        let expected = sha256(expected.expose_secret().as_bytes());
        let given = sha256(given.as_bytes());
        bool::from(expected.ct_eq(&given))
    }

    fn basic_matches(&self, encoded: &str) -> bool {
        let Some(first) = self.users.first() else {
            return false;
        };
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded) else {
            return false;
        };
        let Ok(text) = String::from_utf8(decoded) else {
            return false;
        };
        let Some((name, password)) = text.split_once(':') else {
            return false;
        };
        // Every user name is compared, and an unknown user is checked against a real hash, so
        // the time taken does not tell which names exist.
        let mut found: Option<&User> = None;
        for user in &self.users {
            if bool::from(user.name.as_bytes().ct_eq(name.as_bytes())) {
                found = Some(user);
            }
        }
        let known = found.is_some();
        let user = found.unwrap_or(first);
        let mut key = Vec::with_capacity(name.len() + password.len() + 1);
        key.extend_from_slice(name.as_bytes());
        key.push(0);
        key.extend_from_slice(password.as_bytes());
        let digest = sha256(&key);
        if known && self.lock_verified().contains(&digest) {
            return true;
        }
        let ok = bcrypt::verify(password, &user.hash).unwrap_or(false) && known;
        if ok {
            let mut verified = self.lock_verified();
            if verified.len() >= VERIFIED_CACHE {
                verified.clear();
            }
            verified.insert(digest);
        }
        ok
    }

    fn lock_verified(&self) -> std::sync::MutexGuard<'_, HashSet<[u8; 32]>> {
        self.verified.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The 401 answer, naming the schemes accepted.
    fn challenge(&self) -> Response {
        let mut response = (
            StatusCode::UNAUTHORIZED,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "401 Unauthorized: send the credential configured in [metrics]\n",
        )
            .into_response();
        let headers = response.headers_mut();
        if self.bearer.is_some() {
            if let Ok(v) = HeaderValue::from_str(&format!("Bearer realm=\"{REALM}\"")) {
                headers.append(header::WWW_AUTHENTICATE, v);
            }
        }
        if !self.users.is_empty() {
            if let Ok(v) =
                HeaderValue::from_str(&format!("Basic realm=\"{REALM}\", charset=\"UTF-8\""))
            {
                headers.append(header::WWW_AUTHENTICATE, v);
            }
        }
        response
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// The middleware: passes requests with an accepted credential, answers 401 to the others.
pub async fn require(State(access): State<Access>, request: Request, next: Next) -> Response {
    if access.allows(request.headers()) {
        next.run(request).await
    } else {
        access.challenge()
    }
}

/// The rustls server settings from a PEM certificate chain and private key, on ring.
pub fn tls_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, AccessError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| AccessError::TlsFile {
            what: "certificate",
            key: "metrics.tls_cert_file",
            path: cert.to_path_buf(),
            message: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(AccessError::TlsFile {
            what: "certificate",
            key: "metrics.tls_cert_file",
            path: cert.to_path_buf(),
            message: "it holds no PEM CERTIFICATE block".into(),
        });
    }
    // The key's error never quotes the file's content.
    let private_key = PrivateKeyDer::from_pem_file(key).map_err(|e| AccessError::TlsFile {
        what: "private key",
        key: "metrics.tls_key_file",
        path: key.to_path_buf(),
        message: match e {
            rustls::pki_types::pem::Error::NoItemsFound => {
                "it holds no PEM PRIVATE KEY block".to_string()
            }
            rustls::pki_types::pem::Error::Io(io) => io.to_string(),
            _ => "it is not a PEM private key".to_string(),
        },
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(certs, private_key))
        .map_err(|e| AccessError::Tls {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            message: e.to_string(),
        })?;
    Ok(Arc::new(config))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A bcrypt hash of `password`, cheap to check.
    pub(in crate::daemon::metrics) fn hash(password: &str) -> String {
        bcrypt::hash_with_salt(password, 4, *b"0123456789abcdef")
            .unwrap()
            .to_string()
    }

    fn basic(user: &str, password: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {encoded}")).unwrap(),
        );
        headers
    }

    fn bearer(token: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
        );
        headers
    }

    #[test]
    fn open_access_allows_everything_and_auth_refuses_no_credential() {
        assert!(Access::open().allows(&HeaderMap::new()));
        let access = Access::new(Some(SecretString::from("t0ken")), vec![]);
        assert!(!access.allows(&HeaderMap::new()));
    }

    #[test]
    fn bearer_tokens_must_match_exactly() {
        let access = Access::new(Some(SecretString::from("t0ken")), vec![]);
        assert!(access.allows(&bearer("t0ken")));
        assert!(!access.allows(&bearer("t0ke")));
        assert!(!access.allows(&bearer("t0ken2")));
        assert!(!access.allows(&basic("t0ken", "t0ken")));
    }

    #[test]
    fn basic_auth_checks_the_user_and_the_bcrypt_hash() {
        let access = Access::new(
            None,
            vec![
                ("prometheus".into(), hash("right horse")),
                ("grafana".into(), hash("battery staple")),
            ],
        );
        assert!(access.allows(&basic("prometheus", "right horse")));
        // Again, from the cache of verified credentials.
        assert!(access.allows(&basic("prometheus", "right horse")));
        assert!(access.allows(&basic("grafana", "battery staple")));
        assert!(!access.allows(&basic("prometheus", "battery staple")));
        assert!(!access.allows(&basic("nobody", "right horse")));
        assert!(!access.allows(&basic("prometheus", "")));
        assert!(!access.allows(&bearer("right horse")));
        let mut garbage = HeaderMap::new();
        garbage.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic %%%"));
        assert!(!access.allows(&garbage));
    }

    #[test]
    fn the_challenge_names_the_schemes_and_debug_hides_secrets() {
        let access = Access::new(
            Some(SecretString::from("t0ken")),
            vec![("prometheus".into(), hash("pw"))],
        );
        let response = access.challenge();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let schemes: Vec<&str> = response
            .headers()
            .get_all(header::WWW_AUTHENTICATE)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(
            schemes,
            [
                "Bearer realm=\"plansync\"",
                "Basic realm=\"plansync\", charset=\"UTF-8\""
            ]
        );
        let shown = format!("{access:?}");
        assert!(
            shown.contains("prometheus") && shown.contains("[REDACTED]"),
            "{shown}"
        );
        assert!(!shown.contains("t0ken") && !shown.contains("$2"), "{shown}");
    }

    #[test]
    fn tls_files_that_are_missing_or_wrong_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        let err = tls_config(&cert, &key).unwrap_err().to_string();
        assert!(
            err.contains("metrics.tls_cert_file") && err.contains("cert.pem"),
            "{err}"
        );
        std::fs::write(&cert, "not a certificate\n").unwrap();
        let err = tls_config(&cert, &key).unwrap_err().to_string();
        assert!(err.contains("no PEM CERTIFICATE"), "{err}");
        let generated = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        std::fs::write(&cert, generated.cert.pem()).unwrap();
        std::fs::write(&key, "-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n").unwrap();
        let err = tls_config(&cert, &key).unwrap_err().to_string();
        assert!(err.contains("metrics.tls_key_file"), "{err}");
        assert!(!err.contains("c2VjcmV0"), "{err}");
        std::fs::write(&key, generated.signing_key.serialize_pem()).unwrap();
        tls_config(&cert, &key).unwrap();
    }
}
