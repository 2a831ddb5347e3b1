//! Loading: the TOML file, then the `PLANSYNC__SECTION__KEY` environment variables over it;
//! unknown keys and secrets written in the file are refused, naming where they came from.

use std::path::Path;

use serde_json::Value;

use super::crm::SECRET_KEYS;
use super::validate::{validate, Sources};
use super::{Config, ConfigError, ENV_PREFIX};

/// Reads the file at `path` and the process environment.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let env: Vec<(String, String)> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect();
    load_from(&text, &path.display().to_string(), &env)
}

/// Builds the configuration from `toml_text` (named `origin` in errors) and the
/// `PLANSYNC__*` variables among `env`; the process environment is not read.
pub fn load_from(
    toml_text: &str,
    origin: &str,
    env: &[(String, String)],
) -> Result<Config, ConfigError> {
    let parse_err = |origin: &str| {
        let origin = origin.to_string();
        move |e: config::ConfigError| ConfigError::Parse {
            origin: origin.clone(),
            message: e.to_string(),
        }
    };
    let file = config::File::from_str(toml_text, config::FileFormat::Toml);
    let file_only = config::Config::builder()
        .add_source(file.clone())
        .build()
        .map_err(parse_err(origin))?;
    let file_tree: Value = file_only
        .clone()
        .try_deserialize()
        .map_err(parse_err(origin))?;
    let allowed = serde_json::to_value(Config::default()).unwrap_or_default();

    check_no_secrets(&file_tree, origin)?;
    check_keys(&file_tree, &allowed, "", origin)?;
    // The file alone first, so its errors name the file.
    file_only
        .try_deserialize::<Config>()
        .map_err(parse_err(origin))?;

    let overrides = env_overrides(env, &allowed)?;
    let mut builder = config::Config::builder().add_source(file);
    for o in &overrides {
        builder = match &o.value {
            EnvValue::Text(text) => builder.set_override(o.key.as_str(), text.as_str()),
            EnvValue::List(items) => builder.set_override(o.key.as_str(), items.clone()),
        }
        .map_err(parse_err(&format!("environment variable {}", o.name)))?;
    }
    let env_origin = if overrides.is_empty() {
        origin.to_string()
    } else {
        let names: Vec<&str> = overrides.iter().map(|o| o.name.as_str()).collect();
        format!(
            "{origin} with the environment variables {}",
            names.join(", ")
        )
    };
    let config: Config = builder
        .build()
        .and_then(|c| c.try_deserialize())
        .map_err(parse_err(&env_origin))?;

    let sources = Sources {
        file_origin: origin,
        file_tree: &file_tree,
        env: overrides
            .iter()
            .map(|o| (o.key.clone(), o.name.clone()))
            .collect(),
    };
    validate(&config, &sources)?;
    let mut config = config;
    config.origin = origin.to_string();
    Ok(config)
}

enum EnvValue {
    Text(String),
    List(Vec<String>),
}

struct EnvOverride {
    /// The variable's name, as given.
    name: String,
    /// The dotted key, like `crm.api_version`.
    key: String,
    value: EnvValue,
}

/// The `PLANSYNC__*` variables as dotted keys; unknown keys are refused. Empty values count
/// as unset. Lists are comma-separated.
fn env_overrides(
    env: &[(String, String)],
    allowed: &Value,
) -> Result<Vec<EnvOverride>, ConfigError> {
    let mut out = Vec::new();
    for (name, value) in env {
        let upper = name.to_ascii_uppercase();
        let Some(rest) = upper.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        if value.is_empty() {
            continue;
        }
        let segments: Vec<String> = rest.split("__").map(|s| s.to_ascii_lowercase()).collect();
        let key = segments.join(".");
        let origin = format!("environment variable {name}");
        let mut node = allowed;
        for (i, segment) in segments.iter().enumerate() {
            let parent = segments[..i].join(".");
            let Some(next) = node.as_object().and_then(|map| map.get(segment)) else {
                return Err(ConfigError::UnknownKey {
                    origin,
                    key,
                    allowed: allowed_env_names(&parent, node),
                });
            };
            node = next;
        }
        let value = match node {
            Value::Object(_) => {
                return Err(ConfigError::UnknownKey {
                    allowed: allowed_env_names(&key, node),
                    origin,
                    key,
                })
            }
            Value::Array(_) => EnvValue::List(
                value
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect(),
            ),
            _ => EnvValue::Text(value.clone()),
        };
        out.push(EnvOverride {
            name: name.clone(),
            key,
            value,
        });
    }
    Ok(out)
}

fn env_name(key: &str) -> String {
    format!(
        "{ENV_PREFIX}{}",
        key.replace('.', "__").to_ascii_uppercase()
    )
}

/// The variable names of the single values under `parent` (a table of the defaults).
fn allowed_env_names(parent: &str, node: &Value) -> String {
    let Some(map) = node.as_object() else {
        return format!("none: {} is a single value", env_name(parent));
    };
    map.iter()
        .filter(|(_, v)| !v.is_object())
        .map(|(k, _)| {
            if parent.is_empty() {
                env_name(k)
            } else {
                env_name(&format!("{parent}.{k}"))
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn check_no_secrets(file_tree: &Value, origin: &str) -> Result<(), ConfigError> {
    let auth = file_tree.pointer("/crm/auth");
    for (key, file_key) in SECRET_KEYS {
        if auth.and_then(|a| a.get(*key)).is_some() {
            let full = format!("crm.auth.{key}");
            return Err(ConfigError::SecretInFile {
                origin: origin.to_string(),
                env: env_name(&full),
                key: full,
                file_key: format!("crm.auth.{file_key}"),
            });
        }
    }
    Ok(())
}

/// Refuses any key of `given` that `allowed` (the defaults as a tree) does not have.
fn check_keys(given: &Value, allowed: &Value, path: &str, origin: &str) -> Result<(), ConfigError> {
    let (Value::Object(given), Value::Object(allowed)) = (given, allowed) else {
        return Ok(());
    };
    for (key, value) in given {
        let full = if path.is_empty() {
            key.clone()
        } else {
            format!("{path}.{key}")
        };
        let Some(expected) = allowed.get(key) else {
            let table = if path.is_empty() {
                "the top level".to_string()
            } else {
                format!("[{path}]")
            };
            let names: Vec<&str> = allowed.keys().map(String::as_str).collect();
            return Err(ConfigError::UnknownKey {
                origin: origin.to_string(),
                key: full,
                allowed: format!("{} (in {table})", names.join(", ")),
            });
        };
        check_keys(value, expected, &full, origin)?;
    }
    Ok(())
}
