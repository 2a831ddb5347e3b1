//! Tests of loading, validation and the example file.

use std::path::Path;

use chrono_tz::Tz;
use rust_decimal::Decimal;
use secrecy::ExposeSecret;
use serde_json::Value;

use super::sections::{DEFAULT_FULL, DEFAULT_INCREMENTAL, DEFAULT_SNAPSHOT};
use super::*;

const EXAMPLE: &str = include_str!("../../config/plansync.example.toml");

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn load_err(toml: &str, vars: &[(&str, &str)]) -> String {
    load_from(toml, "/etc/plansync/test.toml", &env(vars))
        .unwrap_err()
        .to_string()
}

fn as_tree(config: &Config) -> Value {
    serde_json::to_value(config).unwrap()
}

#[test]
fn empty_file_gives_the_defaults() {
    let config = load_from("", "empty.toml", &[]).unwrap();
    assert_eq!(config.crm.api_version, "62.0");
    assert_eq!(config.crm.auth.flow, AuthFlow::JwtBearer);
    assert_eq!(
        config.store.path,
        Path::new("/var/lib/plansync/plansync.db")
    );
    assert_eq!(config.org.timezone, Tz::UTC);
    assert_eq!(config.rollups.default_close_ratio, Decimal::from(25));
    assert_eq!(config.linking.linkable_statuses, ["Active", "Closed"]);
    assert_eq!(config.mapping.opportunity.plan_link, "Account_Plan__c");
    assert_eq!(config.mapping.plan.won_amount, "Won_Amount__c");
    assert_eq!(config.currency.mode, CurrencyMode::Auto);
    assert_eq!(config.sync.batch_size, 1000);
    assert_eq!(config.sync.bulk_min_rows, 10_000);
    assert_eq!(config.sync.bulk_min_writes, 10_000);
    assert_eq!(config.sync.pull_concurrency, 3);
    assert_eq!(config.schedule.incremental.to_string(), DEFAULT_INCREMENTAL);
    assert_eq!(config.schedule.full.to_string(), DEFAULT_FULL);
    assert_eq!(config.schedule.snapshot.to_string(), DEFAULT_SNAPSHOT);
    assert_eq!(config.metrics.listen, None);
}

#[test]
fn the_example_file_parses_and_shows_the_defaults() {
    let example = load_from(EXAMPLE, "plansync.example.toml", &[]).unwrap();
    assert_eq!(as_tree(&example), as_tree(&Config::default()));
}

#[test]
fn the_example_file_documents_every_key() {
    // Every key of the defaults appears in the example, set or commented out.
    fn walk(tree: &Value, path: &str, out: &mut Vec<String>) {
        if let Value::Object(map) = tree {
            for (k, v) in map {
                let full = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                if v.is_object() {
                    walk(v, &full, out);
                } else {
                    out.push(full);
                }
            }
        }
    }
    let mut keys = Vec::new();
    walk(&as_tree(&Config::default()), "", &mut keys);
    let env_only = [
        "crm.auth.client_secret",
        "crm.auth.refresh_token",
        "crm.auth.private_key",
    ];
    for key in keys.iter().filter(|k| !env_only.contains(&k.as_str())) {
        let (table, leaf) = key.rsplit_once('.').unwrap();
        let header = format!("[{table}]");
        let start = EXAMPLE
            .find(&header)
            .unwrap_or_else(|| panic!("{header} missing"));
        let section = &EXAMPLE[start + header.len()..];
        let section = &section[..section.find("\n[").unwrap_or(section.len())];
        let documented = section.lines().any(|l| {
            let l = l.trim_start_matches('#').trim_start();
            l.starts_with(&format!("{leaf} ="))
        });
        assert!(documented, "{key} is not in the example");
    }
}

#[test]
fn file_values_are_read() {
    let config = load_from(
        r#"
        [crm]
        instance_url = "http://127.0.0.1:8080"
        [org]
        timezone = "Europe/Paris"
        [rollups]
        default_close_ratio = 33.5
        statuses = ["Active", "Closed"]
        [mapping.plan]
        object = "Plan__c"
        [currency]
        mode = "dated"
        [schedule]
        full = "0 0 3 * * Sun"
        [metrics]
        listen = "[::1]:39187"
        "#,
        "f.toml",
        &[],
    )
    .unwrap();
    assert_eq!(
        config.crm.instance_url.as_deref(),
        Some("http://127.0.0.1:8080")
    );
    assert_eq!(config.org.timezone, chrono_tz::Europe::Paris);
    assert_eq!(config.rollups.default_close_ratio.to_string(), "33.5");
    assert_eq!(config.rollups.statuses, ["Active", "Closed"]);
    assert_eq!(config.mapping.plan.object, "Plan__c");
    assert_eq!(config.mapping.plan.won_amount, "Won_Amount__c");
    assert_eq!(config.currency.mode, CurrencyMode::Dated);
    assert_eq!(config.schedule.full.to_string(), "0 0 3 * * Sun");
    assert_eq!(config.metrics.listen, Some("[::1]:39187".parse().unwrap()));
}

#[test]
fn unknown_keys_are_refused_naming_them() {
    let msg = load_err("[crm]\napi_verison = \"62.0\"\n", &[]);
    assert!(msg.contains("`crm.api_verison`"), "{msg}");
    assert!(msg.contains("/etc/plansync/test.toml"), "{msg}");
    assert!(msg.contains("api_version"), "allowed keys listed: {msg}");

    let msg = load_err("[mapping.opportunity]\nplan = \"X__c\"\n", &[]);
    assert!(msg.contains("`mapping.opportunity.plan`"), "{msg}");

    let msg = load_err("[bogus]\nx = 1\n", &[]);
    assert!(msg.contains("`bogus`"), "{msg}");

    let msg = load_err("", &[("PLANSYNC__CRM__API_VERISON", "62.0")]);
    assert!(msg.contains("PLANSYNC__CRM__API_VERISON"), "{msg}");
    assert!(
        msg.contains("PLANSYNC__CRM__API_VERSION"),
        "allowed names listed: {msg}"
    );

    let msg = load_err("", &[("PLANSYNC__CRM", "x")]);
    assert!(msg.contains("PLANSYNC__CRM__LOGIN_URL"), "{msg}");
}

#[test]
fn environment_overrides_the_file() {
    let toml = "[crm]\napi_version = \"60.0\"\nlogin_url = \"https://acme.my.salesforce.com\"\n[rollups]\nengaged_contact_days = 30\n";
    let config = load_from(
        toml,
        "f.toml",
        &env(&[
            ("PLANSYNC__CRM__API_VERSION", "61.0"),
            ("PLANSYNC__ROLLUPS__ENGAGED_CONTACT_DAYS", "45"),
            ("PLANSYNC__ROLLUPS__STATUSES", "Active, Closed"),
            ("PLANSYNC__MAPPING__OPPORTUNITY__PLAN_LINK", "Plan__c"),
            ("PLANSYNC__CRM__AUTH__FLOW", "client_credentials"),
            ("PLANSYNC__CRM__AUTH__CLIENT_ID", "0042"),
            ("PLANSYNC_LOG", "debug"),
            ("HOME", "/root"),
        ]),
    )
    .unwrap();
    assert_eq!(config.crm.api_version, "61.0");
    assert_eq!(config.rollups.engaged_contact_days, 45);
    assert_eq!(config.rollups.statuses, ["Active", "Closed"]);
    assert_eq!(config.mapping.opportunity.plan_link, "Plan__c");
    assert_eq!(config.crm.auth.flow, AuthFlow::ClientCredentials);
    assert_eq!(config.crm.auth.client_id.as_deref(), Some("0042"));
    // Without the variables the file's values stand.
    let config = load_from(toml, "f.toml", &[]).unwrap();
    assert_eq!(config.crm.api_version, "60.0");
    assert_eq!(config.rollups.engaged_contact_days, 30);
}

#[test]
fn bad_values_name_their_key() {
    let msg = load_err("[org]\ntimezone = \"Mars/Olympus\"\n", &[]);
    assert!(
        msg.contains("org.timezone") && msg.contains("Mars/Olympus"),
        "{msg}"
    );
    assert!(msg.contains("IANA"), "{msg}");

    let msg = load_err("[schedule]\nfull = \"every night\"\n", &[]);
    assert!(
        msg.contains("schedule.full") && msg.contains("cron"),
        "{msg}"
    );

    let msg = load_err("", &[("PLANSYNC__SCHEDULE__SNAPSHOT", "61 * * * * *")]);
    assert!(msg.contains("schedule.snapshot"), "{msg}");
    assert!(msg.contains("PLANSYNC__SCHEDULE__SNAPSHOT"), "{msg}");

    let msg = load_err("[crm.auth]\nflow = \"password\"\n", &[]);
    assert!(msg.contains("crm.auth.flow"), "{msg}");
    assert!(
        msg.contains("jwt_bearer") && msg.contains("refresh_token"),
        "{msg}"
    );

    let msg = load_err("[currency]\nmode = \"euro\"\n", &[]);
    assert!(
        msg.contains("currency.mode") && msg.contains("\"dated\""),
        "{msg}"
    );

    let msg = load_err("[crm]\nlogin_url = \"http://login.example.com\"\n", &[]);
    assert!(
        msg.contains("`crm.login_url`") && msg.contains("loopback"),
        "{msg}"
    );
    assert!(msg.contains("/etc/plansync/test.toml"), "{msg}");

    let msg = load_err("", &[("PLANSYNC__CRM__INSTANCE_URL", "http://10.0.0.5")]);
    assert!(msg.contains("`crm.instance_url`"), "{msg}");
    assert!(
        msg.contains("environment variable PLANSYNC__CRM__INSTANCE_URL"),
        "{msg}"
    );

    let msg = load_err(
        "[crm]\nlogin_url = \"https://login.salesforce.com\"\n[crm.auth]\nflow = \"client_credentials\"\n",
        &[],
    );
    assert!(
        msg.contains("`crm.login_url`") && msg.contains("My Domain"),
        "{msg}"
    );
    let ok = load_from("[crm]\nlogin_url = \"http://localhost:3000\"\n", "f", &[]);
    assert!(ok.is_ok(), "{ok:?}");

    let msg = load_err("[metrics]\nlisten = \"0.0.0.0:39187\"\n", &[]);
    assert!(
        msg.contains("metrics.listen")
            && msg.contains("loopback")
            && msg.contains("metrics.bearer_token_file")
            && msg.contains("metrics.basic_auth_username"),
        "{msg}"
    );

    let msg = load_err("[sync]\nbatch_size = 1001\n", &[]);
    assert!(
        msg.contains("sync.batch_size") && msg.contains("1000"),
        "{msg}"
    );
    let msg = load_err("[sync]\nbulk_min_rows = 0\n", &[]);
    assert!(msg.contains("sync.bulk_min_rows"), "{msg}");
    let msg = load_err("[sync]\nbulk_min_writes = 0\n", &[]);
    assert!(msg.contains("sync.bulk_min_writes"), "{msg}");
    for bad in ["0", "11"] {
        let msg = load_err(&format!("[sync]\npull_concurrency = {bad}\n"), &[]);
        assert!(
            msg.contains("sync.pull_concurrency") && msg.contains("1 to 10"),
            "{msg}"
        );
    }

    let msg = load_err("[rollups]\ndefault_close_ratio = 0\n", &[]);
    assert!(msg.contains("rollups.default_close_ratio"), "{msg}");

    let msg = load_err("[mapping.plan]\nwon_amount = \"Won Amount\"\n", &[]);
    assert!(msg.contains("mapping.plan.won_amount"), "{msg}");

    let msg = load_err("[http]\ntimeout_seconds = \"soon\"\n", &[]);
    assert!(msg.contains("http.timeout_seconds"), "{msg}");

    let msg = load_err("[crm]\napi_version = \"v62\"\n", &[]);
    assert!(msg.contains("crm.api_version"), "{msg}");
}

#[test]
fn secrets_in_the_file_are_refused() {
    for key in ["client_secret", "refresh_token", "private_key"] {
        let msg = load_err(&format!("[crm.auth]\n{key} = \"s3cr3t-value\"\n"), &[]);
        assert!(msg.contains(&format!("`crm.auth.{key}`")), "{msg}");
        assert!(msg.contains(&format!("crm.auth.{key}_file")), "{msg}");
        assert!(
            msg.contains(&format!("PLANSYNC__CRM__AUTH__{}", key.to_uppercase())),
            "{msg}"
        );
        assert!(!msg.contains("s3cr3t-value"), "{msg}");
    }
}

#[test]
fn secrets_come_from_env_or_files_and_never_print() {
    let dir = tempfile::tempdir().unwrap();
    let token_path = dir.path().join("refresh-token");
    std::fs::write(&token_path, "file-token-value\n").unwrap();
    let toml = format!(
        "[crm.auth]\nflow = \"refresh_token\"\nclient_id = \"abc\"\nrefresh_token_file = {:?}\n",
        token_path.display().to_string()
    );
    let config = load_from(
        &toml,
        "f.toml",
        &env(&[("PLANSYNC__CRM__AUTH__CLIENT_SECRET", "env-secret-value")]),
    )
    .unwrap();
    let auth = &config.crm.auth;
    assert_eq!(
        auth.client_secret().unwrap().unwrap().expose_secret(),
        "env-secret-value"
    );
    assert_eq!(
        auth.refresh_token().unwrap().unwrap().expose_secret(),
        "file-token-value"
    );
    assert!(auth.private_key_pem().unwrap().is_none());
    auth.check_complete("f").unwrap();

    let debug = format!("{config:?} {auth:#?}");
    let shown = serde_json::to_string(&config).unwrap();
    for text in [&debug, &shown] {
        assert!(!text.contains("env-secret-value"), "{text}");
        assert!(!text.contains("file-token-value"), "{text}");
    }
    assert!(shown.contains("[redacted]"));

    // A missing file is reported when the secret is needed, naming the key and the path.
    let mut broken = auth.clone();
    broken.refresh_token_file = Some(dir.path().join("nope"));
    let msg = broken.refresh_token().unwrap_err().to_string();
    assert!(
        msg.contains("crm.auth.refresh_token_file") && msg.contains("nope"),
        "{msg}"
    );
}

#[test]
fn incomplete_auth_names_the_missing_key() {
    let config = load_from("[crm.auth]\nclient_id = \"abc\"\n", "f", &[]).unwrap();
    let msg = config
        .crm
        .auth
        .check_complete(config.origin())
        .unwrap_err()
        .to_string();
    assert!(msg.contains("crm.auth.username"), "{msg}");
    assert!(msg.starts_with("f: "), "{msg}");
    assert!(msg.contains("the jwt_bearer flow"), "{msg}");
    let config = load_from(
        "[crm]\nlogin_url = \"https://acme.my.salesforce.com\"\n[crm.auth]\nflow = \"client_credentials\"\nclient_secret_file = \"s\"\n",
        "/etc/plansync/plansync.toml",
        &[],
    )
    .unwrap();
    let msg = config
        .crm
        .auth
        .check_complete(config.origin())
        .unwrap_err()
        .to_string();
    assert_eq!(
        msg,
        "/etc/plansync/plansync.toml: `crm.auth.client_id` is required by the \
         client_credentials flow: set it under [crm.auth] to the connected app's consumer \
         key, or set PLANSYNC__CRM__AUTH__CLIENT_ID"
    );
}

const HASH: &str = "$2y$04$S0bdVXcJHuWYJBHNX0FgNOhZ1UMcRavI2tYn3cGDv2AxqnL4hTs6q";

#[test]
fn metrics_on_any_address_need_authentication() {
    // With a bearer token file, or a basic-auth user, any address is accepted.
    let config = load_from(
        "[metrics]\nlisten = \"0.0.0.0:39187\"\nbearer_token_file = \"/run/token\"\n",
        "f.toml",
        &[],
    )
    .unwrap();
    assert!(config.metrics.has_auth());
    let toml = format!(
        "[metrics]\nlisten = \"0.0.0.0:39187\"\nbasic_auth_username = \"prometheus\"\n\
         basic_auth_password_bcrypt = \"{HASH}\"\n\
         basic_auth_users = [{{ username = \"grafana\", password_bcrypt = \"{HASH}\" }}]\n\
         tls_cert_file = \"/etc/plansync/tls/cert.pem\"\n\
         tls_key_file = \"/etc/plansync/tls/key.pem\"\n"
    );
    let config = load_from(&toml, "f.toml", &[]).unwrap();
    let users: Vec<String> = config
        .metrics
        .basic_auth()
        .into_iter()
        .map(|u| u.username)
        .collect();
    assert_eq!(users, ["prometheus", "grafana"]);
    // The hashes never show, in Debug or in the serialized form.
    let shown = format!("{:?} {}", config.metrics, as_tree(&config));
    assert!(!shown.contains(HASH) && !shown.contains("$2y$"), "{shown}");
    // The environment can point at a token file too (systemd's credentials).
    let config = load_from(
        "[metrics]\nlisten = \"192.0.2.7:39187\"\n",
        "f.toml",
        &env(&[(
            "PLANSYNC__METRICS__BEARER_TOKEN_FILE",
            "/run/credentials/token",
        )]),
    )
    .unwrap();
    assert!(config.metrics.has_auth());
}

#[test]
fn metrics_authentication_settings_are_checked() {
    let msg = load_err("[metrics]\nbasic_auth_username = \"prometheus\"\n", &[]);
    assert!(msg.contains("`metrics.basic_auth_username`"), "{msg}");
    assert!(msg.contains("basic_auth_password_bcrypt"), "{msg}");
    let msg = load_err(
        "[metrics]\nbasic_auth_username = \"p\"\nbasic_auth_password_bcrypt = \"hunter2\"\n",
        &[],
    );
    assert!(
        msg.contains("`metrics.basic_auth_password_bcrypt`"),
        "{msg}"
    );
    assert!(msg.contains("not a bcrypt hash"), "{msg}");
    assert!(!msg.contains("hunter2"), "{msg}");
    let msg = load_err(
        &format!(
            "[metrics]\nbasic_auth_username = \"a:b\"\nbasic_auth_password_bcrypt = \"{HASH}\"\n"
        ),
        &[],
    );
    assert!(
        msg.contains("`metrics.basic_auth_username`") && msg.contains("colon"),
        "{msg}"
    );
    let msg = load_err(
        &format!(
            "[metrics]\nbasic_auth_users = [{{ username = \"a\", password_bcrypt = \"{HASH}\" }}, \
             {{ username = \"a\", password_bcrypt = \"{HASH}\" }}]\n"
        ),
        &[],
    );
    assert!(
        msg.contains("`metrics.basic_auth_users`") && msg.contains("twice"),
        "{msg}"
    );
    let msg = load_err("[metrics]\ntls_cert_file = \"/c.pem\"\n", &[]);
    assert!(
        msg.contains("`metrics.tls_cert_file`") && msg.contains("tls_key_file"),
        "{msg}"
    );
}

#[test]
fn the_metrics_bearer_token_is_read_from_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token");
    std::fs::write(&path, "s3cret-token\n").unwrap();
    let metrics = MetricsSection {
        bearer_token_file: Some(path.clone()),
        ..MetricsSection::default()
    };
    let token = metrics.bearer_token().unwrap().unwrap();
    assert_eq!(secrecy::ExposeSecret::expose_secret(&token), "s3cret-token");
    std::fs::write(&path, "\n").unwrap();
    let err = metrics.bearer_token().unwrap_err().to_string();
    assert!(
        err.contains("metrics.bearer_token_file") && err.contains("empty"),
        "{err}"
    );
    let missing = MetricsSection {
        bearer_token_file: Some(dir.path().join("absent")),
        ..MetricsSection::default()
    };
    let err = missing.bearer_token().unwrap_err().to_string();
    assert!(
        err.contains("metrics.bearer_token_file") && err.contains("absent"),
        "{err}"
    );
}

#[test]
fn malformed_toml_names_the_file() {
    let msg = load_err("[crm\n", &[]);
    assert!(msg.contains("/etc/plansync/test.toml"), "{msg}");
}

#[test]
fn load_reads_the_file_and_reports_a_missing_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plansync.toml");
    let err = load(&path).unwrap_err().to_string();
    assert!(
        err.contains("plansync.toml") && err.contains("--config"),
        "{err}"
    );
    std::fs::write(&path, "[sync]\nlookback_seconds = 60\n").unwrap();
    // The process environment may hold PLANSYNC__ variables; only check the file then.
    if std::env::vars().all(|(k, _)| !k.starts_with(ENV_PREFIX)) {
        assert_eq!(load(&path).unwrap().sync.lookback_seconds, 60);
    }
}

#[test]
fn the_plan_mapping_has_a_key_per_rollup_field_in_table_order() {
    use crate::domain::RollupField;
    let tree = as_tree(&Config::default());
    let keys: Vec<&str> = tree["mapping"]["plan"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let first = keys.iter().position(|k| *k == "owner_id").unwrap() + 1;
    let rollup_keys: Vec<&str> = RollupField::all().iter().map(|f| f.key()).collect();
    assert_eq!(keys[first..first + RollupField::COUNT], rollup_keys[..]);
    assert_eq!(
        keys[first + RollupField::COUNT..],
        ["rollups_changed_at", "sync_problem"]
    );
    for f in RollupField::all() {
        assert_eq!(tree["mapping"]["plan"][f.key()], f.api_name(), "{f:?}");
        assert_eq!(Mapping::default().plan.rollup(f), f.api_name(), "{f:?}");
    }
    let config = load_from("[mapping.plan]\nwon_count = \"Wins__c\"\n", "f.toml", &[]).unwrap();
    assert_eq!(config.mapping.plan.rollup(RollupField::WonCount), "Wins__c");
    assert_eq!(
        config.mapping.plan.rollup(RollupField::LostCount),
        "Lost_Count__c"
    );
}

#[test]
fn streaming_defaults_and_checks() {
    let config = load_from("", "empty.toml", &[]).unwrap();
    let s = &config.streaming;
    assert!(s.enabled);
    assert_eq!(s.debounce_seconds, 2);
    assert_eq!(s.backstop.to_string(), "0 0 * * * *");
    assert_eq!(s.channels, StreamingChannels::PerObject);
    assert_eq!(
        (
            s.resubscribe_backoff_seconds,
            s.max_resubscribe_backoff_seconds
        ),
        (5, 300)
    );

    let config = load_from(
        "[streaming]\nenabled = false\nchannels = \"change_events\"\nbackstop = \"0 */30 * * * *\"\n",
        "f.toml",
        &env(&[("PLANSYNC__STREAMING__DEBOUNCE_SECONDS", "5")]),
    )
    .unwrap();
    assert!(!config.streaming.enabled);
    assert_eq!(config.streaming.channels, StreamingChannels::ChangeEvents);
    assert_eq!(config.streaming.debounce_seconds, 5);
    assert_eq!(config.streaming.backstop.to_string(), "0 */30 * * * *");

    // (toml, the key the message names, a word of what to do)
    let cases = [
        (
            "[streaming]\ndebounce_seconds = 301\n",
            "streaming.debounce_seconds",
            "0 to 300",
        ),
        (
            "[streaming]\nresubscribe_backoff_seconds = 0\n",
            "streaming.resubscribe_backoff_seconds",
            "at least 1 second",
        ),
        (
            "[streaming]\nresubscribe_backoff_seconds = 60\nmax_resubscribe_backoff_seconds = 10\n",
            "streaming.max_resubscribe_backoff_seconds",
            "cannot be shorter",
        ),
        ("[streaming]\nbackstop = \"hourly\"\n", "backstop", "cron"),
        (
            "[streaming]\nchannels = \"all\"\n",
            "channels",
            "\"per_object\", \"change_events\"",
        ),
        ("[streaming]\nenable = true\n", "enable", "debounce_seconds"),
    ];
    for (toml, key, hint) in cases {
        let msg = load_err(toml, &[]);
        assert!(msg.contains(key) && msg.contains(hint), "{toml}: {msg}");
        assert!(msg.contains("/etc/plansync/test.toml"), "{msg}");
    }
}
