//! Validation of the loaded values, before anything starts: URLs, API version, ranges, the
//! metrics endpoint and API names. Every error names where the value came from.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde_json::Value;

use super::metrics::validate_metrics;
use super::{AuthFlow, Config, ConfigError};

/// Most objects pulled at the same time: well within the CRM's 25 concurrent long-running
/// requests per org.
pub const MAX_PULL_CONCURRENCY: usize = 10;

pub(super) struct Sources<'a> {
    pub(super) file_origin: &'a str,
    pub(super) file_tree: &'a Value,
    pub(super) env: BTreeMap<String, String>,
}

impl Sources<'_> {
    /// Where the value of `key` came from.
    pub(super) fn origin(&self, key: &str) -> String {
        if let Some(name) = self.env.get(key) {
            return format!("environment variable {name}");
        }
        let pointer = format!("/{}", key.replace('.', "/"));
        if self.file_tree.pointer(&pointer).is_some() {
            self.file_origin.to_string()
        } else {
            "the built-in default".to_string()
        }
    }

    pub(super) fn invalid(&self, key: &str, message: String) -> ConfigError {
        ConfigError::Invalid {
            origin: self.origin(key),
            key: key.to_string(),
            message,
        }
    }
}

pub(super) fn validate(config: &Config, sources: &Sources<'_>) -> Result<(), ConfigError> {
    check_url(&config.crm.login_url, "crm.login_url", sources)?;
    let login_host = url::Url::parse(&config.crm.login_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_ascii_lowercase));
    if config.crm.auth.flow == AuthFlow::ClientCredentials
        && matches!(
            login_host.as_deref(),
            Some("login.salesforce.com" | "test.salesforce.com")
        )
    {
        return Err(sources.invalid(
            "crm.login_url",
            format!(
                "= {:?} is a shared login host, which answers the client_credentials flow with \
                 \"request not supported on this domain\": use your org's My Domain URL, like \
                 \"https://acme.my.salesforce.com\"",
                config.crm.login_url
            ),
        ));
    }
    if let Some(url) = &config.crm.instance_url {
        check_url(url, "crm.instance_url", sources)?;
    }
    let version = &config.crm.api_version;
    let numeric = version.split_once('.').is_some_and(|(major, minor)| {
        !major.is_empty() && major.bytes().all(|b| b.is_ascii_digit()) && minor == "0"
    });
    if !numeric {
        return Err(sources.invalid(
            "crm.api_version",
            format!("= {version:?} is not an API version: write the number only, like \"62.0\""),
        ));
    }
    let ratio = config.rollups.default_close_ratio;
    if ratio <= Decimal::ZERO || ratio > Decimal::from(100) {
        return Err(sources.invalid(
            "rollups.default_close_ratio",
            format!("= {ratio} is out of range: a percent greater than 0 and at most 100"),
        ));
    }
    let usage = config.limits.max_api_usage_percent;
    if !(1..=100).contains(&usage) {
        return Err(sources.invalid(
            "limits.max_api_usage_percent",
            format!("= {usage} is out of range: a percent from 1 to 100"),
        ));
    }
    if config.http.timeout_seconds == 0 {
        return Err(sources.invalid(
            "http.timeout_seconds",
            "= 0: every request needs a timeout of at least 1 second".into(),
        ));
    }
    let batch = config.sync.batch_size;
    if !(1..=1000).contains(&batch) {
        return Err(sources.invalid(
            "sync.batch_size",
            format!(
                "= {batch} is out of range: 1 to 1000 (one composite call carries five sObject \
                 Collections of 200)"
            ),
        ));
    }
    if config.sync.bulk_min_rows == 0 {
        return Err(sources.invalid(
            "sync.bulk_min_rows",
            "= 0: give the row count from which an object is pulled through Bulk API 2.0 (at \
             least 1; a number above any object's rows keeps every pull on REST)"
                .into(),
        ));
    }
    if config.sync.bulk_min_writes == 0 {
        return Err(sources.invalid(
            "sync.bulk_min_writes",
            "= 0: give the record count from which a write-back goes through Bulk API 2.0 \
             ingest jobs (at least 1; a number above any write-back keeps every write on \
             composite calls)"
                .into(),
        ));
    }
    let concurrency = config.sync.pull_concurrency;
    if !(1..=MAX_PULL_CONCURRENCY).contains(&concurrency) {
        return Err(sources.invalid(
            "sync.pull_concurrency",
            format!(
                "= {concurrency} is out of range: 1 to {MAX_PULL_CONCURRENCY} (the CRM allows \
                 25 long-running requests at a time per org, shared with every other \
                 integration)"
            ),
        ));
    }
    validate_metrics(&config.metrics, sources)?;
    let streaming = &config.streaming;
    if streaming.debounce_seconds > 300 {
        return Err(sources.invalid(
            "streaming.debounce_seconds",
            format!(
                "= {} is out of range: 0 to 300 seconds (a longer wait defeats the change \
                 events; to poll only, set `enabled = false`)",
                streaming.debounce_seconds
            ),
        ));
    }
    if streaming.resubscribe_backoff_seconds == 0 {
        return Err(sources.invalid(
            "streaming.resubscribe_backoff_seconds",
            "= 0: wait at least 1 second before resubscribing, so a refusing CRM is not \
             hammered"
                .into(),
        ));
    }
    if streaming.max_resubscribe_backoff_seconds < streaming.resubscribe_backoff_seconds {
        return Err(sources.invalid(
            "streaming.max_resubscribe_backoff_seconds",
            format!(
                "= {} is below `resubscribe_backoff_seconds` ({}): the longest wait cannot be \
                 shorter than the first",
                streaming.max_resubscribe_backoff_seconds, streaming.resubscribe_backoff_seconds
            ),
        ));
    }
    if let Some(field) = &config.linking.discriminator_field {
        check_api_name(field, "linking.discriminator_field", sources)?;
    }
    let mapping = serde_json::to_value(&config.mapping).unwrap_or_default();
    if let Value::Object(objects) = mapping {
        for (object, fields) in objects {
            if let Value::Object(fields) = fields {
                for (field, name) in fields {
                    let key = format!("mapping.{object}.{field}");
                    check_api_name(name.as_str().unwrap_or_default(), &key, sources)?;
                }
            }
        }
    }
    Ok(())
}

fn check_url(text: &str, key: &str, sources: &Sources<'_>) -> Result<(), ConfigError> {
    let url = url::Url::parse(text).map_err(|e| {
        sources.invalid(
            key,
            format!(
                "= {text:?} is not a URL ({e}): write it like \"https://login.salesforce.com\""
            ),
        )
    })?;
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        "http" => Err(sources.invalid(
            key,
            format!(
                "= {text:?} uses http://, which is allowed only for a loopback host (localhost, \
                 127.0.0.1, [::1], as for the emulator); use https://"
            ),
        )),
        other => Err(sources.invalid(
            key,
            format!("= {text:?} has scheme {other:?}: use https:// (or http:// on loopback)"),
        )),
    }
}

/// Salesforce API names: a letter, then letters, digits and underscores.
fn check_api_name(name: &str, key: &str, sources: &Sources<'_>) -> Result<(), ConfigError> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(sources.invalid(
            key,
            format!(
                "= {name:?} is not an API name: a letter followed by letters, digits and \
                 underscores, like \"Account_Plan__c\""
            ),
        ))
    }
}
