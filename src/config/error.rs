//! The configuration's errors: each names the key, where its value came from (the file or
//! the environment variable) and what is allowed.

use std::path::PathBuf;

/// What went wrong, with the key, the source and what is allowed.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the configuration file {path} (give its path with --config PATH)")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The TOML is malformed or a value has the wrong type.
    #[error("{origin}: {message}")]
    Parse { origin: String, message: String },
    #[error("{origin}: unknown key `{key}`; allowed keys there: {allowed}")]
    UnknownKey {
        origin: String,
        key: String,
        allowed: String,
    },
    #[error("{origin}: `{key}` {message}")]
    Invalid {
        origin: String,
        key: String,
        message: String,
    },
    #[error(
        "{origin}: `{key}` holds a secret, and secrets are never read from the configuration \
         file; put it in a file named by `{file_key}`, or in the environment variable {env}"
    )]
    SecretInFile {
        origin: String,
        key: String,
        file_key: String,
        env: String,
    },
    #[error("cannot read the secret file {path} named by `{key}`")]
    SecretFile {
        key: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the secret file {path} named by `{key}` is empty")]
    EmptySecret { key: String, path: PathBuf },
}
