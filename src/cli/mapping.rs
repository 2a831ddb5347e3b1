//! The configuration's `[mapping]` (and `[linking] discriminator_field`) checked against the
//! CRM's describe: which mapped objects and fields the org lacks, has with an incompatible
//! type, or does not let the integration user write. `plansync doctor` reports every check;
//! the commands that run cycles use the same check to turn a query the CRM refused for an
//! unknown field or object (`INVALID_FIELD`, `INVALID_TYPE`) into a message naming the
//! mapping key, the field and the configuration file.

use std::collections::HashMap;
use std::fmt;

use serde_json::Value;

use crate::config::{Config, CurrencyMode, Mapping};
use crate::crm::{CrmClient, CrmError};
use crate::domain::RollupField;
use crate::metadata::{standard, Catalog, FieldType};
use crate::sync::SyncError;

use super::CliError;

/// A mapped field to look for, with what the CRM must allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedField {
    /// `[mapping.<table>] <key>`, for messages.
    pub key: String,
    pub name: String,
    pub expected_type: Option<FieldType>,
    /// plansync updates it.
    pub updateable: bool,
    /// plansync creates records with it (snapshot upserts).
    pub createable: bool,
}

/// Every mapped object with the fields to check, in mapping order.
pub fn expected_fields(config: &Config, catalog: &Catalog) -> Vec<(String, Vec<ExpectedField>)> {
    let multi_currency = matches!(
        config.currency.mode,
        CurrencyMode::Static | CurrencyMode::Dated
    );
    let defaults = serde_json::to_value(Mapping::default()).unwrap_or_default();
    let configured = serde_json::to_value(&config.mapping).unwrap_or_default();
    let (Some(defaults), Some(configured)) = (defaults.as_object(), configured.as_object()) else {
        return Vec::new();
    };
    let snapshot_default = defaults
        .get("snapshot")
        .and_then(|t| t["object"].as_str())
        .unwrap_or("Account_Plan_Snapshot__c");
    let mut out: Vec<(String, Vec<ExpectedField>)> = Vec::new();
    let mut snapshot_metrics = Vec::new();
    for (table, default_table) in defaults {
        if !multi_currency && matches!(table.as_str(), "currency_type" | "dated_conversion_rate") {
            continue;
        }
        let (Some(default_table), Some(conf_table)) = (
            default_table.as_object(),
            configured.get(table).and_then(Value::as_object),
        ) else {
            continue;
        };
        let default_object = default_table["object"].as_str().unwrap_or_default();
        let object = conf_table["object"]
            .as_str()
            .unwrap_or(default_object)
            .to_string();
        let def = catalog.object(default_object);
        let mut fields = Vec::new();
        for (key, default_name) in default_table {
            if key == "object" || (!multi_currency && key == "currency_iso_code") {
                continue;
            }
            let default_name = default_name.as_str().unwrap_or_default();
            let name = conf_table[key].as_str().unwrap_or(default_name).to_string();
            if name.is_empty() && table == "plan" && key == "sync_problem" {
                continue; // turned off
            }
            let rollup = RollupField::from_api_name(default_name).is_some();
            let written = match table.as_str() {
                "opportunity" => key == "plan_link",
                "plan" => rollup || key == "rollups_changed_at" || key == "sync_problem",
                "snapshot" => true,
                _ => false,
            };
            fields.push(ExpectedField {
                key: format!("[mapping.{table}] {key}"),
                name: name.clone(),
                expected_type: def
                    .and_then(|d| d.field(default_name))
                    .map(|f| f.field_type),
                updateable: written,
                createable: table == "snapshot",
            });
            if table == "plan" && rollup {
                if let Some(f) = catalog
                    .object(snapshot_default)
                    .and_then(|s| s.field(default_name))
                {
                    snapshot_metrics.push(ExpectedField {
                        key: format!("snapshot metric (as [mapping.plan] {key})"),
                        name,
                        expected_type: Some(f.field_type),
                        updateable: true,
                        createable: true,
                    });
                }
            }
        }
        if let Some(disc) = &config.linking.discriminator_field {
            if matches!(table.as_str(), "opportunity" | "plan") {
                fields.push(ExpectedField {
                    key: "[linking] discriminator_field".into(),
                    name: disc.clone(),
                    expected_type: Some(FieldType::Picklist),
                    updateable: false,
                    createable: false,
                });
            }
        }
        out.push((object, fields));
    }
    if let Some((_, fields)) = out.iter_mut().find(|(o, _)| {
        configured
            .get("snapshot")
            .and_then(|t| t["object"].as_str())
            .is_some_and(|s| s == o)
    }) {
        fields.extend(snapshot_metrics);
    }
    out
}

/// Whether a field of type `actual` can carry what plansync reads or writes as `expected`.
pub fn compatible(expected: FieldType, actual: &str) -> bool {
    if expected.as_str() == actual {
        return true;
    }
    let numeric = ["int", "double", "currency", "percent"];
    let textual = [
        "id",
        "string",
        "textarea",
        "picklist",
        "reference",
        "email",
        "phone",
        "url",
    ];
    (expected.is_numeric() && numeric.contains(&actual))
        || (expected.is_textual() && textual.contains(&actual))
}

/// What is wrong with one mapped field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldProblem {
    Missing {
        key: String,
        name: String,
    },
    Type {
        key: String,
        name: String,
        actual: String,
        expected: FieldType,
    },
    NotUpdateable {
        key: String,
        name: String,
    },
    NotCreateable {
        key: String,
        name: String,
    },
}

impl fmt::Display for FieldProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldProblem::Missing { key, name } => write!(
                f,
                "{name} ({key}) does not exist or is not visible to the integration user"
            ),
            FieldProblem::Type {
                key,
                name,
                actual,
                expected,
            } => write!(
                f,
                "{name} ({key}) is of type {actual}, expected {}",
                expected.as_str()
            ),
            FieldProblem::NotUpdateable { key, name } => {
                write!(
                    f,
                    "{name} ({key}) is not updateable by the integration user"
                )
            }
            FieldProblem::NotCreateable { key, name } => {
                write!(
                    f,
                    "{name} ({key}) is not createable by the integration user"
                )
            }
        }
    }
}

/// The problems of the fields plansync maps to one object, given its describe.
pub fn field_problems(fields: &[ExpectedField], describe: &Value) -> Vec<FieldProblem> {
    let described: HashMap<String, &Value> = describe["fields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["name"].as_str().map(|n| (n.to_ascii_lowercase(), f)))
        .collect();
    let mut problems = Vec::new();
    for f in fields {
        let (key, name) = (f.key.clone(), f.name.clone());
        let Some(d) = described.get(&f.name.to_ascii_lowercase()) else {
            problems.push(FieldProblem::Missing { key, name });
            continue;
        };
        let actual = d["type"].as_str().unwrap_or("?");
        if let Some(expected) = f.expected_type {
            if !compatible(expected, actual) {
                problems.push(FieldProblem::Type {
                    key: key.clone(),
                    name: name.clone(),
                    actual: actual.to_string(),
                    expected,
                });
            }
        }
        if f.updateable && d["updateable"].as_bool() != Some(true) {
            problems.push(FieldProblem::NotUpdateable {
                key: key.clone(),
                name: name.clone(),
            });
        }
        if f.createable && d["createable"].as_bool() != Some(true) {
            problems.push(FieldProblem::NotCreateable { key, name });
        }
    }
    problems
}

/// Whether the CRM refused a query for a field or object it does not have.
pub fn is_schema_error(e: &CrmError) -> bool {
    match e {
        CrmError::Api {
            error_code,
            message,
            ..
        } => {
            matches!(error_code.as_str(), "INVALID_FIELD" | "INVALID_TYPE")
                || message.contains("No such column")
        }
        _ => false,
    }
}

/// The mapped objects and fields the CRM lacks, as lines naming the mapping key and the
/// field, read from the CRM's describe.
pub async fn missing_in_crm(config: &Config, crm: &CrmClient) -> Vec<String> {
    let multi_currency = matches!(
        config.currency.mode,
        CurrencyMode::Static | CurrencyMode::Dated
    );
    let Ok(catalog) = standard::catalog(multi_currency) else {
        return Vec::new();
    };
    let defaults = Mapping::default();
    let mut lines = Vec::new();
    for (object, fields) in expected_fields(config, &catalog) {
        match crm.describe(&object).await {
            Ok(describe) => {
                for p in field_problems(&fields, &describe) {
                    if let FieldProblem::Missing { key, name } = &p {
                        let default = is_default(&defaults, key, name);
                        lines.push(format!(
                            "{key} = {name:?}{}: {object} has no field {name}, or the integration user cannot see it",
                            if default { " (the default)" } else { "" }
                        ));
                    }
                }
            }
            Err(CrmError::Api {
                status: 400 | 404, ..
            }) => {
                lines.push(format!(
                    "the object {object:?} (mapped under [mapping]) does not exist in the CRM, or the integration user cannot see it"
                ));
            }
            Err(_) => {}
        }
    }
    lines
}

/// Whether the mapping key `key` (`[mapping.opportunity] plan_link`) holds its default.
fn is_default(defaults: &Mapping, key: &str, name: &str) -> bool {
    let Some((table, field)) = key
        .strip_prefix("[mapping.")
        .and_then(|k| k.split_once("] "))
    else {
        return false;
    };
    serde_json::to_value(defaults)
        .ok()
        .and_then(|d| d.get(table)?.get(field)?.as_str().map(|d| d == name))
        .unwrap_or(false)
}

/// A cycle's error, with a query the CRM refused for an unknown field or object turned into
/// a configuration error naming the mapping key, the field and the file (exit status 2).
/// When the describe finds nothing missing, the CRM's own error stands.
pub async fn explain_failure(err: SyncError, config: &Config, crm: &CrmClient) -> CliError {
    let SyncError::Crm(crm_err) = err else {
        return err.into();
    };
    if !is_schema_error(&crm_err) {
        return CliError::Crm(crm_err);
    }
    let lines = missing_in_crm(config, crm).await;
    if lines.is_empty() {
        return CliError::Crm(crm_err);
    }
    let file = config.origin();
    CliError::Mapping(format!(
        "{file}: the CRM refused a query because the configuration names what the org does not have:\n  {}\nfix: correct those names under [mapping] in {file} (the API names, as Setup > Object Manager shows them), or deploy schema/salesforce to the org (sf project deploy start) and grant the integration user field-level security on them; `plansync doctor --config {file}` checks every mapped field",
        lines.join("\n  ")
    ))
}
