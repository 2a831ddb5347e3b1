//! `[crm]` and `[crm.auth]`: where the org is, and how plansync signs in. Secrets come from
//! files named here or from environment variables, and are never printed.

use std::path::{Path, PathBuf};

use secrecy::SecretString;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::ConfigError;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CrmSection {
    /// The org's own URL; when unset, the one the token endpoint returns is used.
    pub instance_url: Option<String>,
    /// Where tokens are requested (`https://test.salesforce.com` for a sandbox).
    pub login_url: String,
    /// REST API version, like `62.0`.
    pub api_version: String,
    pub auth: CrmAuthSection,
}

impl Default for CrmSection {
    fn default() -> Self {
        CrmSection {
            instance_url: None,
            login_url: "https://login.salesforce.com".into(),
            api_version: "62.0".into(),
            auth: CrmAuthSection::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthFlow {
    /// OAuth 2.0 JWT bearer: server to server, the production default.
    #[default]
    JwtBearer,
    ClientCredentials,
    RefreshToken,
}

choice_deserialize!(AuthFlow {
    "jwt_bearer" => JwtBearer,
    "client_credentials" => ClientCredentials,
    "refresh_token" => RefreshToken,
});

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CrmAuthSection {
    pub flow: AuthFlow,
    /// The connected app's consumer key.
    pub client_id: Option<String>,
    /// The user the JWT bearer flow acts as.
    pub username: Option<String>,
    pub private_key_file: Option<PathBuf>,
    pub client_secret_file: Option<PathBuf>,
    pub refresh_token_file: Option<PathBuf>,
    /// The JWT `aud`; defaults to `https://login.salesforce.com`, or
    /// `https://test.salesforce.com` for a sandbox login URL (never the My Domain URL).
    pub audience: Option<String>,
    /// From `PLANSYNC__CRM__AUTH__CLIENT_SECRET` only.
    #[serde(deserialize_with = "de_secret", serialize_with = "ser_secret")]
    pub client_secret: Option<SecretString>,
    /// From `PLANSYNC__CRM__AUTH__REFRESH_TOKEN` only.
    #[serde(deserialize_with = "de_secret", serialize_with = "ser_secret")]
    pub refresh_token: Option<SecretString>,
    /// The PEM text, from `PLANSYNC__CRM__AUTH__PRIVATE_KEY` only.
    #[serde(deserialize_with = "de_secret", serialize_with = "ser_secret")]
    pub private_key: Option<SecretString>,
}

/// The secret keys: (key under `[crm.auth]`, the key naming its file).
pub(super) const SECRET_KEYS: &[(&str, &str)] = &[
    ("client_secret", "client_secret_file"),
    ("refresh_token", "refresh_token_file"),
    ("private_key", "private_key_file"),
];

impl CrmAuthSection {
    /// The client secret, from the environment or read now from `client_secret_file`.
    pub fn client_secret(&self) -> Result<Option<SecretString>, ConfigError> {
        secret(
            &self.client_secret,
            &self.client_secret_file,
            "client_secret_file",
        )
    }

    /// The refresh token, from the environment or read now from `refresh_token_file`.
    pub fn refresh_token(&self) -> Result<Option<SecretString>, ConfigError> {
        secret(
            &self.refresh_token,
            &self.refresh_token_file,
            "refresh_token_file",
        )
    }

    /// The JWT signing key (PEM), from the environment or read now from `private_key_file`.
    pub fn private_key_pem(&self) -> Result<Option<SecretString>, ConfigError> {
        secret(
            &self.private_key,
            &self.private_key_file,
            "private_key_file",
        )
    }

    /// Checks that the chosen flow has what it needs (without reading secret files), for
    /// commands that are about to talk to the CRM. `origin` names the configuration file.
    pub fn check_complete(&self, origin: &str) -> Result<(), ConfigError> {
        let missing = |key: &str, what: &str| ConfigError::Invalid {
            origin: origin.to_string(),
            key: format!("crm.auth.{key}"),
            message: format!("is required by the {} flow: {what}", self.flow.as_str()),
        };
        if self.client_id.is_none() {
            return Err(missing(
                "client_id",
                "set it under [crm.auth] to the connected app's consumer key, or set \
                 PLANSYNC__CRM__AUTH__CLIENT_ID",
            ));
        }
        match self.flow {
            AuthFlow::JwtBearer => {
                if self.username.is_none() {
                    return Err(missing("username", "the user the integration acts as"));
                }
                if self.private_key.is_none() && self.private_key_file.is_none() {
                    return Err(missing(
                        "private_key_file",
                        "or set PLANSYNC__CRM__AUTH__PRIVATE_KEY",
                    ));
                }
            }
            AuthFlow::ClientCredentials => {
                if self.client_secret.is_none() && self.client_secret_file.is_none() {
                    return Err(missing(
                        "client_secret_file",
                        "or set PLANSYNC__CRM__AUTH__CLIENT_SECRET",
                    ));
                }
            }
            AuthFlow::RefreshToken => {
                if self.refresh_token.is_none() && self.refresh_token_file.is_none() {
                    return Err(missing(
                        "refresh_token_file",
                        "or set PLANSYNC__CRM__AUTH__REFRESH_TOKEN",
                    ));
                }
            }
        }
        Ok(())
    }
}

fn secret(
    from_env: &Option<SecretString>,
    file: &Option<PathBuf>,
    file_key: &str,
) -> Result<Option<SecretString>, ConfigError> {
    if let Some(value) = from_env {
        return Ok(Some(value.clone()));
    }
    let Some(path) = file else {
        return Ok(None);
    };
    // A file keeps its value as written, but for the line ending an editor adds.
    read_secret_file(&format!("crm.auth.{file_key}"), path, |text| {
        text.trim_end_matches(['\r', '\n'])
    })
    .map(Some)
}

/// Reads a secret from the file at `path` named by `key`, keeping what `trim` keeps of its
/// text; a file that is missing, unreadable or blank is an error naming the key and the path.
pub(super) fn read_secret_file(
    key: &str,
    path: &Path,
    trim: fn(&str) -> &str,
) -> Result<SecretString, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::SecretFile {
        key: key.to_string(),
        path: path.to_path_buf(),
        source,
    })?;
    let value = trim(&text);
    if value.trim().is_empty() {
        return Err(ConfigError::EmptySecret {
            key: key.to_string(),
            path: path.to_path_buf(),
        });
    }
    Ok(SecretString::from(value.to_string()))
}

fn de_secret<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SecretString>, D::Error> {
    let value: Option<String> = Option::deserialize(d)?;
    Ok(value.filter(|v| !v.is_empty()).map(SecretString::from))
}

fn ser_secret<S: Serializer>(value: &Option<SecretString>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(_) => s.serialize_some("[redacted]"),
        None => s.serialize_none(),
    }
}
