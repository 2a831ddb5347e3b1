//! `[metrics]`: the metrics and health endpoint, its authentication and TLS files.

use std::net::SocketAddr;
use std::path::PathBuf;

use secrecy::SecretString;
use serde::{Deserialize, Serialize, Serializer};

use super::crm::read_secret_file;
use super::validate::Sources;
use super::ConfigError;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSection {
    /// Address of the metrics endpoint, like `127.0.0.1:39187`; off when unset. Any address
    /// other than a loopback one needs authentication below.
    pub listen: Option<SocketAddr>,
    /// `/healthz` answers 200 while a run succeeded within this many seconds. Unset: three
    /// incremental schedule periods.
    pub healthy_within_seconds: Option<u64>,
    /// A file holding the bearer token scrapers send (`Authorization: Bearer ...`).
    pub bearer_token_file: Option<PathBuf>,
    /// One basic-auth user: its name and the bcrypt hash of its password.
    pub basic_auth_username: Option<String>,
    pub basic_auth_password_bcrypt: Option<PasswordHash>,
    /// More basic-auth users, `{ username = "...", password_bcrypt = "$2y$..." }` each.
    pub basic_auth_users: Vec<BasicAuthUser>,
    /// Serve HTTPS with this certificate chain and private key (PEM files).
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
}

/// A basic-auth user of the metrics endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuthUser {
    pub username: String,
    pub password_bcrypt: PasswordHash,
}

/// A bcrypt password hash (`$2a$`, `$2b$` or `$2y$`, as `htpasswd -nBC 10 ""` prints). Not
/// the password, but worth guessing against offline: `Debug` and the serialized form hide it.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct PasswordHash(String);

impl PasswordHash {
    pub fn new(hash: impl Into<String>) -> PasswordHash {
        PasswordHash(hash.into())
    }

    /// The hash itself, for checking a password against it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the text has the form of a bcrypt hash: `$2?$CC$` and 53 characters of salt and
    /// hash in bcrypt's base64 alphabet.
    fn is_bcrypt(&self) -> bool {
        let text = self.0.as_str();
        let Some(rest) = ["$2a$", "$2b$", "$2y$"]
            .iter()
            .find_map(|prefix| text.strip_prefix(prefix))
        else {
            return false;
        };
        let Some((cost, body)) = rest.split_once('$') else {
            return false;
        };
        let cost_ok = cost.len() == 2 && cost.parse::<u32>().is_ok_and(|c| (4..=31).contains(&c));
        cost_ok
            && body.len() == 53
            && body
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'/')
    }
}

impl std::fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl Serialize for PasswordHash {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("[redacted]")
    }
}

impl MetricsSection {
    /// The basic-auth users: `basic_auth_username` with its hash, then `basic_auth_users`.
    pub fn basic_auth(&self) -> Vec<BasicAuthUser> {
        let single = match (&self.basic_auth_username, &self.basic_auth_password_bcrypt) {
            (Some(username), Some(hash)) => Some(BasicAuthUser {
                username: username.clone(),
                password_bcrypt: hash.clone(),
            }),
            _ => None,
        };
        single
            .into_iter()
            .chain(self.basic_auth_users.iter().cloned())
            .collect()
    }

    /// Whether scrapers must authenticate.
    pub fn has_auth(&self) -> bool {
        self.bearer_token_file.is_some() || !self.basic_auth().is_empty()
    }

    /// The bearer token, read now from `bearer_token_file`.
    pub fn bearer_token(&self) -> Result<Option<SecretString>, ConfigError> {
        let Some(path) = &self.bearer_token_file else {
            return Ok(None);
        };
        read_secret_file("metrics.bearer_token_file", path, str::trim).map(Some)
    }
}

pub(super) fn validate_metrics(
    metrics: &MetricsSection,
    sources: &Sources<'_>,
) -> Result<(), ConfigError> {
    match (
        &metrics.basic_auth_username,
        &metrics.basic_auth_password_bcrypt,
    ) {
        (Some(_), None) => {
            return Err(sources.invalid(
                "metrics.basic_auth_username",
                "is set without `metrics.basic_auth_password_bcrypt`: add the bcrypt hash of \
                 the password (`htpasswd -nBC 10 \"\" | tr -d ':\\n'` prints one)"
                    .into(),
            ))
        }
        (None, Some(_)) => {
            return Err(sources.invalid(
                "metrics.basic_auth_password_bcrypt",
                "is set without `metrics.basic_auth_username`: name the user it belongs to".into(),
            ))
        }
        _ => {}
    }
    let mut names = std::collections::BTreeSet::new();
    let single = metrics.basic_auth_username.is_some();
    for (i, user) in metrics.basic_auth().into_iter().enumerate() {
        let (name_key, key) = if single && i == 0 {
            (
                "metrics.basic_auth_username",
                "metrics.basic_auth_password_bcrypt",
            )
        } else {
            ("metrics.basic_auth_users", "metrics.basic_auth_users")
        };
        let name = &user.username;
        if name.is_empty() || name.contains(':') || name.chars().any(char::is_control) {
            return Err(sources.invalid(
                name_key,
                format!(
                    "has the user name {:?}: a basic-auth user name is not empty and has no \
                     colon or control character",
                    user.username
                ),
            ));
        }
        if !user.password_bcrypt.is_bcrypt() {
            return Err(sources.invalid(
                key,
                format!(
                    "for user {:?} is not a bcrypt hash: give one like \"$2y$10$...\" \
                     (`htpasswd -nBC 10 \"\" | tr -d ':\\n'` prints one), never the password",
                    user.username
                ),
            ));
        }
        if !names.insert(user.username.clone()) {
            return Err(sources.invalid(
                "metrics.basic_auth_users",
                format!(
                    "names the user {:?} twice: keep one entry per user",
                    user.username
                ),
            ));
        }
    }
    match (&metrics.tls_cert_file, &metrics.tls_key_file) {
        (Some(_), None) => {
            return Err(sources.invalid(
                "metrics.tls_cert_file",
                "is set without `metrics.tls_key_file`: HTTPS needs both (PEM files)".into(),
            ))
        }
        (None, Some(_)) => {
            return Err(sources.invalid(
                "metrics.tls_key_file",
                "is set without `metrics.tls_cert_file`: HTTPS needs both (PEM files)".into(),
            ))
        }
        _ => {}
    }
    if let Some(addr) = metrics.listen {
        if !addr.ip().is_loopback() && !metrics.has_auth() {
            return Err(sources.invalid(
                "metrics.listen",
                format!(
                    "= \"{addr}\" is not a loopback address, and the endpoint has no \
                     authentication: set `metrics.bearer_token_file`, or \
                     `metrics.basic_auth_username` with `metrics.basic_auth_password_bcrypt` \
                     (or `metrics.basic_auth_users`), ideally with `metrics.tls_cert_file` and \
                     `metrics.tls_key_file`; or listen on 127.0.0.1 or [::1]"
                ),
            ));
        }
    }
    if metrics.healthy_within_seconds == Some(0) {
        return Err(sources.invalid(
            "metrics.healthy_within_seconds",
            "= 0: give the window in seconds, at least 1".into(),
        ));
    }
    Ok(())
}
