//! Reads the package's permission sets (`permissionsets/*.permissionset-meta.xml`): which
//! objects and fields each one lets its users read and edit.

use std::collections::BTreeMap;

use super::sfdx::{MetadataError, SourceFile};

/// Read and edit access to one field, or the object-level access to one object.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Access {
    pub read: bool,
    pub edit: bool,
    pub create: bool,
    pub delete: bool,
}

/// What one permission set grants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PermissionSet {
    /// The API name (the file name without its suffix).
    pub name: String,
    /// Object permissions by lower-cased object API name.
    pub objects: BTreeMap<String, Access>,
    /// Field permissions by lower-cased `Object.Field` (create and delete stay false).
    pub fields: BTreeMap<String, Access>,
    /// Enabled user permissions (`ApiEnabled`, ...).
    pub user_permissions: Vec<String>,
    /// Tabs made visible or available.
    pub tabs: Vec<String>,
}

impl PermissionSet {
    /// The access to `object`.
    pub fn object(&self, object: &str) -> Access {
        self.objects
            .get(&object.to_ascii_lowercase())
            .copied()
            .unwrap_or_default()
    }

    /// The access to `object`.`field`.
    pub fn field(&self, object: &str, field: &str) -> Access {
        self.fields
            .get(&format!("{object}.{field}").to_ascii_lowercase())
            .copied()
            .unwrap_or_default()
    }
}

/// Parses one `<PermissionSet>` file.
pub fn parse(file: &SourceFile) -> Result<PermissionSet, MetadataError> {
    let doc = roxmltree::Document::parse(&file.text).map_err(|source| MetadataError::Xml {
        file: file.path.clone(),
        source,
    })?;
    let root = doc.root_element();
    if root.tag_name().name() != "PermissionSet" {
        return Err(MetadataError::Invalid {
            file: file.path.clone(),
            element: root.tag_name().name().to_string(),
            problem: "expected a <PermissionSet> root element".into(),
        });
    }
    let name = file
        .path
        .rsplit('/')
        .next()
        .and_then(|n| n.strip_suffix(".permissionset-meta.xml"))
        .unwrap_or(&file.path)
        .to_string();
    let mut set = PermissionSet {
        name,
        ..PermissionSet::default()
    };
    let text = |node: roxmltree::Node, name: &str| {
        node.children()
            .find(|c| c.is_element() && c.tag_name().name() == name)
            .and_then(|c| c.text())
            .map(|t| t.trim().to_string())
            .unwrap_or_default()
    };
    let flag = |node: roxmltree::Node, name: &str| text(node, name) == "true";
    for node in root.children().filter(|c| c.is_element()) {
        match node.tag_name().name() {
            "fieldPermissions" => {
                set.fields.insert(
                    text(node, "field").to_ascii_lowercase(),
                    Access {
                        read: flag(node, "readable"),
                        edit: flag(node, "editable"),
                        ..Access::default()
                    },
                );
            }
            "objectPermissions" => {
                set.objects.insert(
                    text(node, "object").to_ascii_lowercase(),
                    Access {
                        read: flag(node, "allowRead"),
                        edit: flag(node, "allowEdit"),
                        create: flag(node, "allowCreate"),
                        delete: flag(node, "allowDelete"),
                    },
                );
            }
            "userPermissions" if flag(node, "enabled") => {
                set.user_permissions.push(text(node, "name"));
            }
            "tabSettings" if text(node, "visibility") != "None" => {
                set.tabs.push(text(node, "tab"));
            }
            _ => {}
        }
    }
    Ok(set)
}

/// Every permission set of a package.
pub fn parse_all(files: &[SourceFile]) -> Result<Vec<PermissionSet>, MetadataError> {
    files
        .iter()
        .filter(|f| f.path.ends_with(".permissionset-meta.xml"))
        .map(parse)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::doctor::INTEGRATION_PERMISSION_SET;
    use crate::cli::mapping::expected_fields;
    use crate::config::Config;
    use crate::metadata::sfdx::embedded_package;
    use crate::metadata::standard;

    fn set(name: &str) -> PermissionSet {
        parse_all(&embedded_package())
            .unwrap()
            .into_iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no permission set {name}"))
    }

    /// Whether the org grants a field to everyone who can read its object, so that no
    /// permission set may name it: required fields, master-detail fields and system fields.
    fn always_granted(object: &str, field: &str) -> bool {
        let catalog = standard::catalog(false).unwrap();
        let Some(f) = catalog.object(object).and_then(|o| o.field(field)) else {
            return false;
        };
        !f.nillable || !f.custom && !f.updateable && !f.createable
    }

    fn custom_fields_of(object: &str) -> Vec<String> {
        let catalog = standard::catalog(false).unwrap();
        catalog
            .object(object)
            .unwrap()
            .fields
            .values()
            .filter(|f| f.custom)
            .map(|f| f.name.clone())
            .collect()
    }

    #[test]
    fn the_integration_set_reads_what_plansync_reads_and_edits_what_it_writes() {
        let integration = set(INTEGRATION_PERMISSION_SET);
        let config = Config::default();
        let catalog = standard::catalog(false).unwrap();
        let mut checked = 0;
        for (object, fields) in expected_fields(&config, &catalog) {
            if matches!(object.as_str(), "Task" | "Event") {
                // Activities follow the records they belong to: permission sets hold no object
                // permissions for them.
                assert!(!integration
                    .objects
                    .contains_key(&object.to_ascii_lowercase()));
                continue;
            }
            assert!(
                integration.object(&object).read,
                "{INTEGRATION_PERMISSION_SET} cannot read {object}"
            );
            for f in fields {
                let access = integration.field(&object, &f.name);
                if f.updateable || f.createable {
                    assert!(
                        access.read && access.edit,
                        "plansync writes {object}.{} ({}), which {INTEGRATION_PERMISSION_SET} does not let it edit",
                        f.name,
                        f.key
                    );
                    assert!(integration.object(&object).edit, "{object} is not editable");
                    checked += 1;
                } else if !always_granted(&object, &f.name) {
                    assert!(
                        access.read,
                        "plansync reads {object}.{} ({}), which {INTEGRATION_PERMISSION_SET} does not let it read",
                        f.name,
                        f.key
                    );
                }
            }
        }
        // Written by plansync beyond the mapped rollups: the plan's sync problem and every
        // custom field of a snapshot (snapshots are created whole).
        let sync_problem = integration.field("Account_Plan__c", "Sync_Problem__c");
        assert!(sync_problem.read && sync_problem.edit);
        for field in custom_fields_of("Account_Plan_Snapshot__c") {
            let access = integration.field("Account_Plan_Snapshot__c", &field);
            assert!(access.edit, "snapshot field {field} is not editable");
            checked += 1;
        }
        let snapshots = integration.object("Account_Plan_Snapshot__c");
        assert!(snapshots.create && snapshots.edit);
        assert!(integration
            .user_permissions
            .iter()
            .any(|p| p == "ApiEnabled"));
        assert!(checked > 40, "only {checked} written fields checked");
    }

    #[test]
    fn reps_edit_the_plan_inputs_and_only_read_the_rollups() {
        let user = set("Account_Plan_User");
        let plan = &Config::default().mapping.plan;
        for input in [
            &plan.account,
            &plan.period_start,
            &plan.period_end,
            &plan.revenue_target,
            &plan.close_ratio,
            &plan.include_child_accounts,
            &plan.status,
        ] {
            let access = user.field("Account_Plan__c", input);
            assert!(access.read && access.edit, "reps cannot edit {input}");
        }
        let catalog = standard::catalog(false).unwrap();
        let config = Config::default();
        let plan_fields = expected_fields(&config, &catalog)
            .into_iter()
            .find(|(o, _)| o == "Account_Plan__c")
            .unwrap()
            .1;
        let written: Vec<_> = plan_fields.iter().filter(|f| f.updateable).collect();
        assert!(written.len() > 15);
        for f in written
            .iter()
            .map(|f| f.name.as_str())
            .chain(["Sync_Problem__c"])
        {
            let access = user.field("Account_Plan__c", f);
            assert!(access.read, "reps cannot see {f}");
            assert!(!access.edit, "reps can edit {f}, which plansync computes");
        }
        for field in custom_fields_of("Account_Plan_Snapshot__c") {
            let access = user.field("Account_Plan_Snapshot__c", &field);
            assert!(access.read && !access.edit, "snapshot field {field}");
        }
        let link = user.field("Opportunity", "Account_Plan__c");
        let lock = user.field("Opportunity", "Plan_Link_Locked__c");
        assert!(link.edit && lock.edit);
        let extra_accounts = user.object("Account_Plan_Account__c");
        assert!(
            extra_accounts.read
                && extra_accounts.create
                && extra_accounts.edit
                && extra_accounts.delete
        );
        assert!(user.field("Account_Plan_Account__c", "Account__c").edit);
        let snapshots = user.object("Account_Plan_Snapshot__c");
        assert!(snapshots.read && !snapshots.create && !snapshots.edit);
        assert!(user.tabs.iter().any(|t| t == "Account_Plan__c"));
    }

    #[test]
    fn a_permission_set_is_parsed_per_field_and_object() {
        let file = SourceFile {
            path: "force-app/main/default/permissionsets/X.permissionset-meta.xml".into(),
            text: r#"<PermissionSet xmlns="http://soap.sforce.com/2006/04/metadata">
                <fieldPermissions><editable>false</editable><field>A__c.B__c</field><readable>true</readable></fieldPermissions>
                <objectPermissions><allowCreate>true</allowCreate><allowDelete>false</allowDelete><allowEdit>true</allowEdit><allowRead>true</allowRead><object>A__c</object></objectPermissions>
                <userPermissions><enabled>false</enabled><name>ApiEnabled</name></userPermissions>
            </PermissionSet>"#
                .into(),
        };
        let set = parse(&file).unwrap();
        assert_eq!(set.name, "X");
        assert_eq!(
            set.field("a__c", "b__c"),
            Access {
                read: true,
                ..Access::default()
            }
        );
        let a = set.object("A__c");
        assert!(a.read && a.edit && a.create && !a.delete);
        assert!(set.user_permissions.is_empty());
        let broken = SourceFile {
            path: "permissionsets/Y.permissionset-meta.xml".into(),
            text: "<PermissionSet>".into(),
        };
        assert!(parse(&broken)
            .unwrap_err()
            .to_string()
            .contains("Y.permissionset-meta.xml"));
    }
}
