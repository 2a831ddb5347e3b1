//! `plansync doctor`: checks that everything a cycle needs is in place and says what to fix:
//! the configuration and its secrets, the CRM (reachable, credentials, API version), every
//! mapped object and field (present, of a compatible type, writable where plansync writes),
//! and the store.

use std::collections::HashMap;
use std::path::PathBuf;

use serde_json::Value;

use crate::config::{self, Config, ConfigError, CurrencyMode};
use crate::crm::{CrmClient, CrmError};
use crate::metadata::standard;
use crate::store::{Store, LATEST_VERSION};

use super::mapping::{expected_fields, field_problems, ExpectedField};
use super::sync::{crm_config, DEFAULT_CONFIG};
use super::CliError;
use crate::error::chain as error_chain;

/// Options of `plansync doctor`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = super::help::EXIT_DOCTOR)]
pub struct DoctorArgs {
    /// The configuration file (TOML), layered with PLANSYNC__SECTION__KEY variables.
    /// Example: plansync doctor --config /etc/plansync/plansync.toml
    #[arg(long, value_name = "PATH", default_value = DEFAULT_CONFIG)]
    pub config: PathBuf,

    /// Print one JSON object once every check ran, instead of a line per check:
    /// {"ok": true when every check passed, "passed": count, "problems": count, "checks":
    /// [{"name", "ok", "detail", "fix" (null when ok)}]}. The exit status is the same as
    /// without it. Example: plansync doctor --json
    #[arg(long)]
    pub json: bool,
}

/// One check's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    /// What was found (ok) or what is wrong (problem).
    pub detail: String,
    /// What to do about a problem.
    pub fix: Option<String>,
}

impl Check {
    fn ok(name: impl Into<String>, detail: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            ok: true,
            detail: detail.into(),
            fix: None,
        }
    }

    fn problem(
        name: impl Into<String>,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Check {
        Check {
            name: name.into(),
            ok: false,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    fn print(&self) {
        let mark = if self.ok { "ok     " } else { "PROBLEM" };
        println!("{mark}  {}: {}", self.name, self.detail);
        if let Some(fix) = &self.fix {
            for line in fix.lines() {
                println!("         fix: {line}");
            }
        }
    }
}

pub async fn run(args: DoctorArgs) -> Result<(), CliError> {
    let checks = checks(&args).await;
    let failed = checks.iter().filter(|c| !c.ok).count();
    if args.json {
        println!("{}", super::status::pretty(&checks_json(&checks)));
    }
    if failed == 0 && args.json {
        Ok(())
    } else if failed == 0 {
        println!("\nAll {} checks passed.", checks.len());
        Ok(())
    } else {
        Err(CliError::Admin(format!(
            "{failed} of {} checks found a problem ({})",
            checks.len(),
            if args.json {
                "see \"problems\""
            } else {
                "see above"
            }
        )))
    }
}

/// The checks as `--json` prints them.
pub fn checks_json(checks: &[Check]) -> Value {
    let passed = checks.iter().filter(|c| c.ok).count();
    serde_json::json!({
        "ok": passed == checks.len(),
        "passed": passed,
        "problems": checks.len() - passed,
        "checks": checks
            .iter()
            .map(|c| serde_json::json!({
                "name": c.name,
                "ok": c.ok,
                "detail": c.detail,
                "fix": c.fix,
            }))
            .collect::<Vec<_>>(),
    })
}

/// Runs the checks in order, printing each as it completes; later checks that need an
/// earlier one to pass are skipped.
async fn checks(args: &DoctorArgs) -> Vec<Check> {
    let mut out = Vec::new();
    let record = |c: Check, out: &mut Vec<Check>| {
        if !args.json {
            c.print();
        }
        out.push(c);
    };
    let config = match config::load(&args.config) {
        Ok(c) => {
            record(
                Check::ok("configuration", format!("{} loads", args.config.display())),
                &mut out,
            );
            c
        }
        Err(e) => {
            record(
                Check::problem(
                    "configuration",
                    error_chain(&e),
                    "fix the file or the PLANSYNC__ variable named above (config/plansync.example.toml documents every key)",
                ),
                &mut out,
            );
            return out;
        }
    };
    record(store_check(&config), &mut out);

    let crm_config = match crm_config(&config) {
        Ok(c) => {
            record(
                Check::ok(
                    "secrets",
                    format!("the {} credentials are readable", flow(&config)),
                ),
                &mut out,
            );
            c
        }
        Err(e) => {
            record(
                Check::problem("secrets", error_chain(&e), secrets_fix(&e, &config)),
                &mut out,
            );
            return out;
        }
    };
    let crm = match CrmClient::new(crm_config) {
        Ok(c) => c,
        Err(e) => {
            record(
                Check::problem(
                    "CRM client",
                    error_chain(&e),
                    "fix [crm] as the message says",
                ),
                &mut out,
            );
            return out;
        }
    };
    match crm.authenticate().await {
        Ok(()) => {
            record(
                Check::ok("CRM reachable", format!("{} answers", config.crm.login_url)),
                &mut out,
            );
            record(
                Check::ok(
                    "authentication",
                    format!(
                        "a token was issued; instance {}",
                        crm.instance_url()
                            .map(|u| u.to_string())
                            .unwrap_or_else(|| "(unknown)".into())
                    ),
                ),
                &mut out,
            );
        }
        Err(e @ (CrmError::Transport { .. } | CrmError::Timeout { .. })) => {
            record(
                Check::problem(
                    "CRM reachable",
                    error_chain(&e),
                    "check [crm] login_url, DNS, proxies and firewalls between this host and the CRM",
                ),
                &mut out,
            );
            return out;
        }
        Err(e) => {
            record(
                Check::ok("CRM reachable", format!("{} answers", config.crm.login_url)),
                &mut out,
            );
            record(
                Check::problem(
                    "authentication",
                    error_chain(&e),
                    "check [crm.auth] (client id, user, key or secret) and that the connected app is approved for this user",
                ),
                &mut out,
            );
            return out;
        }
    }
    let wanted = crm.api_version().to_string();
    match crm.versions().await {
        Ok(versions) if versions.contains(&wanted) => record(
            Check::ok(
                "API version",
                format!(
                    "v{wanted} is served (newest v{})",
                    versions.last().cloned().unwrap_or_default()
                ),
            ),
            &mut out,
        ),
        Ok(versions) => record(
            Check::problem(
                "API version",
                format!(
                    "v{wanted} is not served; the CRM serves v{} to v{}",
                    versions.first().cloned().unwrap_or_default(),
                    versions.last().cloned().unwrap_or_default()
                ),
                "set [crm] api_version to a served version",
            ),
            &mut out,
        ),
        Err(e) => record(
            Check::problem(
                "API version",
                error_chain(&e),
                "the CRM's /services/data resource must answer; check the instance URL",
            ),
            &mut out,
        ),
    }

    let check = currency_check(&config, &crm).await;
    let org_multi_currency = check.1;
    record(check.0, &mut out);
    // The fields to expect follow the org in `auto`.
    let mut config = config;
    if config.currency.mode == CurrencyMode::Auto {
        config.currency.mode = if org_multi_currency == Some(true) {
            CurrencyMode::Static
        } else {
            CurrencyMode::Single
        };
    }
    let multi_currency = multi_currency_mode(config.currency.mode);
    let catalog = match standard::catalog(multi_currency) {
        Ok(c) => c,
        Err(e) => {
            record(
                Check::problem(
                    "metadata",
                    error_chain(&e),
                    "the embedded schema is damaged; reinstall plansync",
                ),
                &mut out,
            );
            return out;
        }
    };
    let mut described: HashMap<String, Result<Value, String>> = HashMap::new();
    for (object, fields) in expected_fields(&config, &catalog) {
        if !described.contains_key(&object) {
            let d = crm.describe(&object).await.map_err(|e| error_chain(&e));
            described.insert(object.clone(), d);
        }
        let check = match &described[&object] {
            Ok(describe) => object_check(
                &object,
                &fields,
                describe,
                config.crm.auth.username.as_deref(),
            ),
            Err(e) => Check::problem(
                format!("object {object}"),
                e.clone(),
                permission_fix(config.crm.auth.username.as_deref()),
            ),
        };
        record(check, &mut out);
    }
    record(streaming_check(&config, &crm).await, &mut out);
    out
}

/// `[streaming]`: a CometD handshake and a subscription to every channel (from new events
/// only), then a disconnect. A CRM without the endpoint is no problem: the daemon polls.
async fn streaming_check(config: &Config, crm: &CrmClient) -> Check {
    use crate::crm::streaming::{CometdClient, StreamingError};
    const NAME: &str = "change events";
    let Some(channels) = streaming_channels(config) else {
        return Check::ok(
            NAME,
            "off ([streaming] enabled = false): the daemon polls on [schedule]",
        );
    };
    let mut client = match CometdClient::new(crm.clone(), channels.clone(), Default::default()) {
        Ok(c) => c,
        Err(e) => return Check::problem(NAME, error_chain(&e), "fix [crm] as the message says"),
    };
    let result = client.open().await;
    client.disconnect().await;
    match result {
        Ok(opened) if !opened.refused.is_empty() => Check::problem(
            NAME,
            format!(
                "the CRM refused {} of {} channel(s): {}",
                opened.refused.len(),
                channels.len(),
                opened
                    .refused
                    .iter()
                    .map(|(c, e)| format!("{c} ({e})"))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            "select those objects for Change Data Capture (deploy schema/salesforce, whose \
             platformEventChannelMembers select them, or Setup > Change Data Capture); until \
             then their changes wait for the backstop schedule",
        ),
        Ok(_) => Check::ok(
            NAME,
            format!(
                "the CometD handshake and {} subscription(s) succeed ({})",
                channels.len(),
                channels.join(", ")
            ),
        ),
        Err(e @ StreamingError::Unsupported { .. }) => Check::ok(
            NAME,
            format!(
                "not served, so the daemon polls on [schedule]: {}",
                error_chain(&e)
            ),
        ),
        Err(e @ StreamingError::Subscribe { .. }) => Check::problem(
            NAME,
            error_chain(&e),
            "select the objects for Change Data Capture (deploy schema/salesforce, whose \
             platformEventChannelMembers select them, or Setup > Change Data Capture), or set \
             [streaming] channels = \"change_events\", or [streaming] enabled = false to poll only",
        ),
        Err(e) => Check::problem(
            NAME,
            error_chain(&e),
            "the integration user needs the Streaming API (API Enabled) and read access to the \
             objects; or set [streaming] enabled = false to poll only",
        ),
    }
}

/// The channels `[streaming]` subscribes to; `None` when it is off.
pub fn streaming_channels(config: &Config) -> Option<Vec<String>> {
    use crate::crm::streaming::{object_channel, CHANGE_EVENTS_CHANNEL};
    if !config.streaming.enabled {
        return None;
    }
    Some(match config.streaming.channels {
        config::StreamingChannels::PerObject => {
            let names = super::status::names_of(config);
            crate::sync::ObjectKind::ALL
                .into_iter()
                .map(|kind| object_channel(names.object(kind)))
                .collect()
        }
        config::StreamingChannels::ChangeEvents => vec![CHANGE_EVENTS_CHANNEL.to_string()],
    })
}

/// Whether a (resolved) mode reads currency codes and rates.
fn multi_currency_mode(mode: CurrencyMode) -> bool {
    matches!(mode, CurrencyMode::Static | CurrencyMode::Dated)
}

/// `[currency] mode` against the org: whether the CRM knows CurrencyType (the org is
/// multi-currency) and whether the mode fits. Returns the check and what was found (`None`
/// when the CRM's answer says neither).
async fn currency_check(config: &Config, crm: &CrmClient) -> (Check, Option<bool>) {
    let object = &config.mapping.currency_type.object;
    let multi = match crm.describe(object).await {
        Ok(_) => true,
        Err(CrmError::Api {
            status, error_code, ..
        }) if status == 404 || error_code == "NOT_FOUND" || error_code == "INVALID_TYPE" => false,
        Err(e) => {
            return (
                Check::problem(
                    "currency",
                    format!("cannot tell whether the org is multi-currency: {}", error_chain(&e)),
                    format!("give the integration user read access to {object}, or fix [mapping.currency_type] object"),
                ),
                None,
            )
        }
    };
    let org = if multi {
        format!("the org is multi-currency ({object} exists)")
    } else {
        "the org is single-currency".to_string()
    };
    let check = match (config.currency.mode, multi) {
        (CurrencyMode::Single, true) => Check::problem(
            "currency",
            format!("[currency] mode = \"single\" but {org}: amounts in other currencies would be summed without conversion"),
            "set [currency] mode = \"auto\" (or \"static\" / \"dated\")",
        ),
        (CurrencyMode::Static | CurrencyMode::Dated, false) => Check::problem(
            "currency",
            format!(
                "[currency] mode = \"{}\" but {org}: every cycle would fail reading the rates",
                config.currency.mode.as_str()
            ),
            "set [currency] mode = \"auto\" (or \"single\")",
        ),
        (CurrencyMode::Auto, true) => Check::ok(
            "currency",
            format!("mode auto: {org}; each cycle uses dated rates when DatedConversionRate has rows, else static"),
        ),
        (mode, _) => Check::ok(
            "currency",
            format!("mode {}: {org}", mode.as_str()),
        ),
    };
    (check, Some(multi))
}

fn flow(config: &Config) -> &'static str {
    config.crm.auth.flow.as_str()
}

/// What to do about a credentials problem: set the missing key, or make the secret readable.
fn secrets_fix(err: &CliError, config: &Config) -> String {
    match err {
        CliError::Config(ConfigError::Invalid { key, .. }) => {
            let (table, name) = key.rsplit_once('.').unwrap_or(("crm.auth", key));
            format!(
                "set [{table}] {name} in {} (or the variable PLANSYNC__{}); config/plansync.example.toml shows each flow's keys",
                config.origin(),
                key.replace('.', "__").to_ascii_uppercase()
            )
        }
        _ => "make the secret file named above readable by the plansync user (and not empty), or give the secret in the variable [crm.auth] documents".into(),
    }
}

fn store_check(config: &Config) -> Check {
    let path = &config.store.path;
    if !path.exists() {
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."));
        return if dir.is_dir() {
            Check::ok(
                "store",
                format!(
                    "no store yet at {}; the first cycle creates it",
                    path.display()
                ),
            )
        } else {
            Check::problem(
                "store",
                format!("the directory {} does not exist", dir.display()),
                "under systemd, start the service once (its StateDirectory= creates it for the service's dynamic user); else create it, writable by the user that runs plansync, or change [store] path",
            )
        };
    }
    match Store::open(path).and_then(|s| Ok((s.schema_version()?, s.journal_mode()?))) {
        Ok((version, mode)) => Check::ok(
            "store",
            format!(
                "{} opens, schema version {version} of {LATEST_VERSION}, journal {mode}",
                path.display()
            ),
        ),
        Err(e) => Check::problem(
            "store",
            error_chain(&e),
            "fix [store] path or its permissions, or restore a backup",
        ),
    }
}

/// The permission set of `schema/salesforce` that gives the integration user what plansync
/// reads and writes.
pub const INTEGRATION_PERMISSION_SET: &str = "Plansync_Integration";

/// What to run when the integration user lacks access: deploy the package and assign its
/// permission set to `user` (the configured username, when known).
pub fn permission_fix(user: Option<&str>) -> String {
    format!(
        "deploy schema/salesforce (sf project deploy start), then give the integration user the \
         access plansync needs: sf org assign permset --name {INTEGRATION_PERMISSION_SET} \
         --on-behalf-of {}\nor fix the names under [mapping]",
        user.unwrap_or("<integration user>")
    )
}

/// Checks one object's describe against the fields plansync maps to it; `user` is the
/// integration user named in the fix.
pub fn object_check(
    object: &str,
    fields: &[ExpectedField],
    describe: &Value,
    user: Option<&str>,
) -> Check {
    let problems: Vec<String> = field_problems(fields, describe)
        .iter()
        .map(ToString::to_string)
        .collect();
    if problems.is_empty() {
        let written = fields.iter().filter(|f| f.updateable).count();
        Check::ok(
            format!("object {object}"),
            format!(
                "{} mapped fields present with compatible types{}",
                fields.len(),
                if written > 0 {
                    format!(", {written} writable")
                } else {
                    String::new()
                }
            ),
        )
    } else {
        Check::problem(
            format!("object {object}"),
            problems.join("; "),
            permission_fix(user),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::mapping::expected_fields;
    use crate::config::Config;
    use crate::metadata::FieldType;
    use serde_json::json;

    fn field(name: &str, t: FieldType, write: bool) -> ExpectedField {
        ExpectedField {
            key: format!("[mapping.x] {name}"),
            name: name.into(),
            expected_type: Some(t),
            updateable: write,
            createable: false,
        }
    }

    #[test]
    fn an_object_check_names_missing_mistyped_and_read_only_fields() {
        let describe = json!({"fields": [
            {"name": "Amount", "type": "currency", "updateable": true, "createable": true},
            {"name": "CloseDate", "type": "string", "updateable": true, "createable": true},
            {"name": "Account_Plan__c", "type": "reference", "updateable": false, "createable": true},
        ]});
        let ok = object_check(
            "Opportunity",
            &[field("amount", FieldType::Double, false)],
            &describe,
            None,
        );
        assert!(ok.ok, "{ok:?}");
        let bad = object_check(
            "Opportunity",
            &[
                field("Amount", FieldType::Currency, false),
                field("CloseDate", FieldType::Date, false),
                field("Account_Plan__c", FieldType::Reference, true),
                field("Missing__c", FieldType::String, false),
            ],
            &describe,
            Some("integration@acme.example"),
        );
        assert!(!bad.ok);
        assert!(bad.detail.contains("CloseDate"), "{}", bad.detail);
        assert!(bad.detail.contains("type string, expected date"));
        assert!(bad
            .detail
            .contains("Account_Plan__c ([mapping.x] Account_Plan__c) is not updateable"));
        assert!(bad.detail.contains("Missing__c"));
        assert!(!bad.detail.contains("Amount"));
    }

    #[test]
    fn the_fix_for_missing_access_names_the_permission_set_and_the_user() {
        let describe = json!({"fields": [
            {"name": "Account_Plan__c", "type": "reference", "updateable": false, "createable": false},
        ]});
        let fields = [field("Account_Plan__c", FieldType::Reference, true)];
        let check = object_check(
            "Opportunity",
            &fields,
            &describe,
            Some("integration@acme.example"),
        );
        assert!(!check.ok);
        let fix = check.fix.unwrap();
        assert!(
            fix.contains(
                "sf org assign permset --name Plansync_Integration --on-behalf-of integration@acme.example"
            ),
            "{fix}"
        );
        let unknown_user = object_check("Opportunity", &fields, &describe, None)
            .fix
            .unwrap();
        assert!(
            unknown_user.contains("--on-behalf-of <integration user>"),
            "{unknown_user}"
        );
        // The permission set named is one the package ships.
        assert!(crate::metadata::sfdx::embedded_package()
            .iter()
            .any(|f| f.path.ends_with(&format!(
                "permissionsets/{INTEGRATION_PERMISSION_SET}.permissionset-meta.xml"
            ))));
    }

    #[test]
    fn the_expected_fields_follow_the_mapping_and_mark_what_plansync_writes() {
        let mut config = Config::default();
        config.mapping.opportunity.plan_link = "Plan__c".into();
        let catalog = standard::catalog(false).unwrap();
        let all = expected_fields(&config, &catalog);
        let of = |o: &str| &all.iter().find(|(name, _)| name == o).unwrap().1;
        let opp = of("Opportunity");
        let link = opp.iter().find(|f| f.name == "Plan__c").unwrap();
        assert!(link.updateable);
        assert_eq!(link.expected_type, Some(FieldType::Reference));
        assert!(!opp.iter().find(|f| f.name == "Amount").unwrap().updateable);
        assert!(opp.iter().all(|f| f.name != "CurrencyIsoCode"));
        let plan = of("Account_Plan__c");
        assert!(
            plan.iter()
                .find(|f| f.name == "Won_Amount__c")
                .unwrap()
                .updateable
        );
        assert!(
            plan.iter()
                .find(|f| f.name == "Rollups_Changed_At__c")
                .unwrap()
                .updateable
        );
        let snap = of("Account_Plan_Snapshot__c");
        let won = snap.iter().find(|f| f.name == "Won_Amount__c").unwrap();
        assert!(won.createable && won.updateable);
        assert!(all.iter().all(|(o, _)| o != "CurrencyType"));
        let problem = plan.iter().find(|f| f.name == "Sync_Problem__c").unwrap();
        assert!(problem.updateable);
        assert_eq!(problem.expected_type, Some(FieldType::Textarea));

        // A multi-currency mode expects the currency fields and objects; an empty
        // sync_problem name turns that field off.
        config.currency.mode = CurrencyMode::Dated;
        config.mapping.plan.sync_problem = String::new();
        let all = expected_fields(&config, &standard::catalog(true).unwrap());
        let of = |o: &str| &all.iter().find(|(name, _)| name == o).unwrap().1;
        assert!(of("Opportunity")
            .iter()
            .any(|f| f.name == "CurrencyIsoCode"));
        assert!(of("Account_Plan__c")
            .iter()
            .all(|f| f.name != "Sync_Problem__c"));
        assert!(all.iter().any(|(o, _)| o == "DatedConversionRate"));
    }
}
