//! Loads custom objects and fields from Salesforce metadata in SFDX source format
//! (`schema/salesforce/force-app/main/default/objects/<Object>/<Object>.object-meta.xml` and
//! `.../objects/<Object>/fields/<Field>.field-meta.xml`).
//!
//! The same files are deployed to real orgs by an admin, embedded in the binary for the emulator
//! (see [`embedded`]), and read from disk by `plansync doctor` (see [`load_dir`]).

use std::path::{Path, PathBuf};

use super::{FieldDef, ObjectDef};

mod parse;

use parse::{add_owner, parse_object};
pub use parse::{add_system_fields, default_value, parse_field, read_only};

/// Why a metadata file could not be used. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("{file}: cannot read")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: not well-formed XML")]
    Xml {
        file: String,
        #[source]
        source: roxmltree::Error,
    },
    #[error("{file}: element <{element}>: {problem}")]
    Invalid {
        file: String,
        element: String,
        problem: String,
    },
    #[error("{file}: the field belongs to object {object}, which is neither a standard object nor defined in the metadata")]
    UnknownObject { file: String, object: String },
}

/// One metadata file: its path (relative to the objects folder, as a display name) and text.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub path: String,
    pub text: String,
}

/// What the SFDX files declare: custom objects, and custom fields per object (including
/// custom fields on standard objects such as Opportunity).
#[derive(Debug, Clone, Default)]
pub struct SfdxSchema {
    /// Custom objects with their standard fields (Id, Name, OwnerId, system fields) and their
    /// custom fields.
    pub objects: Vec<ObjectDef>,
    /// Custom fields of objects not declared here (standard objects), by object API name.
    pub extra_fields: Vec<(String, FieldDef)>,
}

/// Key prefixes this project's custom objects get in every emulated org.
pub fn custom_key_prefix(object: &str) -> &'static str {
    match object {
        "Account_Plan__c" => "a0P",
        "Account_Plan_Account__c" => "a0Q",
        "Account_Plan_Snapshot__c" => "a0R",
        _ => "a0Z",
    }
}

macro_rules! embed {
    ($($path:expr),* $(,)?) => {
        &[$(($path, include_str!(concat!(
            "../../schema/salesforce/force-app/main/default/objects/", $path)))),*]
    };
}

/// Makes [`EMBEDDED`] from the files given and the rows of the rollup table: every rollup
/// field has a file on the plan and on the snapshot object.
macro_rules! embed_objects {
    (
        { $($lead:literal,)* }
        { $($middle:literal,)* }
        { $($tail:literal,)* }
        $($(#[$doc:meta])* $variant:ident $field:ident: $ty:ty => $api:literal, $scale:expr;)*
    ) => {
        /// The project's metadata files, embedded so the binary needs no files at run time:
        /// the plan object's inputs, its rollup fields, the rest of the plan and the junction
        /// object, the snapshot's own fields, its rollup fields, and what follows.
        const EMBEDDED: &[(&str, &str)] = embed!(
            $($lead,)*
            $(concat!("Account_Plan__c/fields/", $api, ".field-meta.xml"),)*
            $($middle,)*
            $(concat!("Account_Plan_Snapshot__c/fields/", $api, ".field-meta.xml"),)*
            $($tail,)*
        );
    };
}

crate::domain::rollups::rollup_table!(embed_objects! {
    {
        "Account_Plan__c/Account_Plan__c.object-meta.xml",
        "Account_Plan__c/fields/Account__c.field-meta.xml",
        "Account_Plan__c/fields/Period_Start__c.field-meta.xml",
        "Account_Plan__c/fields/Period_End__c.field-meta.xml",
        "Account_Plan__c/fields/Revenue_Target__c.field-meta.xml",
        "Account_Plan__c/fields/Close_Ratio__c.field-meta.xml",
        "Account_Plan__c/fields/Include_Child_Accounts__c.field-meta.xml",
        "Account_Plan__c/fields/Status__c.field-meta.xml",
    }
    {
        "Account_Plan__c/fields/Sync_Problem__c.field-meta.xml",
        "Account_Plan__c/fields/Rollups_Changed_At__c.field-meta.xml",
        "Account_Plan_Account__c/Account_Plan_Account__c.object-meta.xml",
        "Account_Plan_Account__c/fields/Account_Plan__c.field-meta.xml",
        "Account_Plan_Account__c/fields/Account__c.field-meta.xml",
        "Account_Plan_Snapshot__c/Account_Plan_Snapshot__c.object-meta.xml",
        "Account_Plan_Snapshot__c/fields/Account_Plan__c.field-meta.xml",
        "Account_Plan_Snapshot__c/fields/Snapshot_Date__c.field-meta.xml",
        "Account_Plan_Snapshot__c/fields/Snapshot_Key__c.field-meta.xml",
    }
    {
        "Account_Plan_Snapshot__c/fields/Revenue_Target__c.field-meta.xml",
        "Account_Plan_Snapshot__c/fields/Close_Ratio_Used__c.field-meta.xml",
        "Account_Plan_Snapshot__c/fields/Plan_Status__c.field-meta.xml",
        "Opportunity/fields/Account_Plan__c.field-meta.xml",
        "Opportunity/fields/Plan_Link_Locked__c.field-meta.xml",
    }
});

macro_rules! embed_package {
    ($($path:literal),* $(,)?) => {
        &[$(($path, include_str!(concat!("../../schema/salesforce/", $path)))),*]
    };
}

/// Where the default package directory's files are, relative to the SFDX project root.
pub const SOURCE_ROOT: &str = "force-app/main/default/";

/// The rest of the project's package (relative to the SFDX project root): what reps and the
/// integration user need besides the objects and fields. The emulator does not serve these,
/// but checks them with [`super::rules`] at every start, as a real org would at deploy.
const EMBEDDED_PACKAGE: &[(&str, &str)] = embed_package!(
    "sfdx-project.json",
    "force-app/main/default/objects/Account_Plan__c/compactLayouts/Account_Plan_Compact.compactLayout-meta.xml",
    "force-app/main/default/objects/Account_Plan__c/listViews/All.listView-meta.xml",
    "force-app/main/default/objects/Account_Plan__c/listViews/My_Active_Plans.listView-meta.xml",
    "force-app/main/default/objects/Account_Plan__c/listViews/Plans_With_A_Gap.listView-meta.xml",
    "force-app/main/default/objects/Account_Plan__c/listViews/Plans_Without_Next_Activity.listView-meta.xml",
    "force-app/main/default/permissionsets/Plansync_Integration.permissionset-meta.xml",
    "force-app/main/default/permissionsets/Account_Plan_User.permissionset-meta.xml",
    "force-app/main/default/layouts/Account_Plan__c-Account Plan Layout.layout-meta.xml",
    "force-app/main/default/layouts/Account_Plan_Account__c-Account Plan Account Layout.layout-meta.xml",
    "force-app/main/default/layouts/Account_Plan_Snapshot__c-Account Plan Snapshot Layout.layout-meta.xml",
    "force-app/main/default/tabs/Account_Plan__c.tab-meta.xml",
    "force-app/main/default/applications/Account_Plans.app-meta.xml",
    "force-app/main/default/reportTypes/Account_Plans_with_Snapshots.reportType-meta.xml",
    "force-app/main/default/reports/Account_Plan_Reports.reportFolder-meta.xml",
    "force-app/main/default/reports/Account_Plan_Reports/Plan_History_by_Snapshot_Date.report-meta.xml",
    "force-app/main/default/platformEventChannelMembers/ChangeEvents_AccountChangeEvent.platformEventChannelMember-meta.xml",
    "force-app/main/default/platformEventChannelMembers/ChangeEvents_Account_Plan__ChangeEvent.platformEventChannelMember-meta.xml",
    "force-app/main/default/platformEventChannelMembers/ChangeEvents_Account_Plan_Account__ChangeEvent.platformEventChannelMember-meta.xml",
    "force-app/main/default/platformEventChannelMembers/ChangeEvents_OpportunityChangeEvent.platformEventChannelMember-meta.xml",
    "force-app/main/default/platformEventChannelMembers/ChangeEvents_ContactChangeEvent.platformEventChannelMember-meta.xml",
    "force-app/main/default/platformEventChannelMembers/ChangeEvents_TaskChangeEvent.platformEventChannelMember-meta.xml",
    "force-app/main/default/platformEventChannelMembers/ChangeEvents_EventChangeEvent.platformEventChannelMember-meta.xml",
);

/// Every file of the embedded package, with paths relative to the SFDX project root
/// (`sfdx-project.json`, `force-app/main/default/objects/...`), as [`load_package_dir`] reads
/// them from disk.
pub fn embedded_package() -> Vec<SourceFile> {
    let objects = EMBEDDED.iter().map(|(path, text)| SourceFile {
        path: format!("{SOURCE_ROOT}objects/{path}"),
        text: (*text).to_string(),
    });
    let rest = EMBEDDED_PACKAGE.iter().map(|(path, text)| SourceFile {
        path: (*path).to_string(),
        text: (*text).to_string(),
    });
    objects.chain(rest).collect()
}

/// Reads a whole SFDX project: `sfdx-project.json` and every `*-meta.xml` file under `dir`
/// (any depth), with paths relative to `dir`, sorted. Files of other kinds are left out.
pub fn load_package_dir(dir: &Path) -> Result<Vec<SourceFile>, MetadataError> {
    if !dir.is_dir() {
        return Err(MetadataError::Io {
            file: dir.display().to_string(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "not a directory (expected an SFDX project holding sfdx-project.json)",
            ),
        });
    }
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for entry in sorted_entries(&folder)? {
            let name = entry
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if entry.is_dir() {
                if !name.starts_with('.') && name != "node_modules" {
                    pending.push(entry);
                }
            } else if entry.is_file()
                && (name.ends_with("-meta.xml") || (name == "sfdx-project.json" && folder == dir))
            {
                files.push(read_source(dir, &entry)?);
            }
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

/// The objects and fields of a package read by [`load_package_dir`] or [`embedded_package`].
pub fn parse_package(files: &[SourceFile]) -> Result<SfdxSchema, MetadataError> {
    let objects: Vec<SourceFile> = files
        .iter()
        .filter(|f| {
            let p = f.path.as_str();
            let in_objects = p.starts_with("objects/") || p.contains("/objects/");
            in_objects
                && (p.ends_with(".object-meta.xml")
                    || (p.ends_with(".field-meta.xml") && object_of_field_file(p).is_some()))
        })
        .cloned()
        .collect();
    parse_files(&objects)
}

/// The embedded project metadata, parsed.
pub fn embedded() -> Result<SfdxSchema, MetadataError> {
    let files: Vec<SourceFile> = EMBEDDED
        .iter()
        .map(|(path, text)| SourceFile {
            path: (*path).to_string(),
            text: (*text).to_string(),
        })
        .collect();
    parse_files(&files)
}

/// Reads every `*.object-meta.xml` and `fields/*.field-meta.xml` under `dir`, which is either
/// an SFDX project root (holding `force-app/main/default/objects`) or an `objects` folder.
pub fn load_dir(dir: &Path) -> Result<SfdxSchema, MetadataError> {
    let nested = dir.join("force-app/main/default/objects");
    let objects_dir = if nested.is_dir() {
        nested
    } else {
        dir.to_path_buf()
    };
    let mut files = Vec::new();
    for object_dir in sorted_entries(&objects_dir)? {
        if !object_dir.is_dir() {
            continue;
        }
        for entry in sorted_entries(&object_dir)? {
            if entry.is_file() && is_meta(&entry, ".object-meta.xml") {
                files.push(read_source(&objects_dir, &entry)?);
            }
        }
        let fields_dir = object_dir.join("fields");
        if fields_dir.is_dir() {
            for entry in sorted_entries(&fields_dir)? {
                if entry.is_file() && is_meta(&entry, ".field-meta.xml") {
                    files.push(read_source(&objects_dir, &entry)?);
                }
            }
        }
    }
    parse_files(&files)
}

fn is_meta(path: &Path, suffix: &str) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.ends_with(suffix))
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, MetadataError> {
    let io = |source| MetadataError::Io {
        file: dir.display().to_string(),
        source,
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        out.push(entry.map_err(io)?.path());
    }
    out.sort();
    Ok(out)
}

fn read_source(root: &Path, path: &Path) -> Result<SourceFile, MetadataError> {
    let text = std::fs::read_to_string(path).map_err(|source| MetadataError::Io {
        file: path.display().to_string(),
        source,
    })?;
    let rel = path.strip_prefix(root).unwrap_or(path);
    Ok(SourceFile {
        path: rel.to_string_lossy().replace('\\', "/"),
        text,
    })
}

/// Parses a set of files; each `path` is `<Object>/<Object>.object-meta.xml` or
/// `<Object>/fields/<Field>.field-meta.xml` (any leading folders are ignored).
pub fn parse_files(files: &[SourceFile]) -> Result<SfdxSchema, MetadataError> {
    let mut schema = SfdxSchema::default();
    let mut details = Vec::new();
    for file in files
        .iter()
        .filter(|f| f.path.ends_with(".object-meta.xml"))
    {
        schema.objects.push(parse_object(file)?);
    }
    for file in files.iter().filter(|f| f.path.ends_with(".field-meta.xml")) {
        let object = object_of_field_file(&file.path).ok_or_else(|| MetadataError::Invalid {
            file: file.path.clone(),
            element: "CustomField".into(),
            problem: "a field file must be at <Object>/fields/<Field>.field-meta.xml".into(),
        })?;
        let field = parse_field(&file.path, &file.text)?;
        if file.text.contains("<type>MasterDetail</type>") {
            details.push(object.to_ascii_lowercase());
        }
        match schema
            .objects
            .iter_mut()
            .find(|o| o.name.eq_ignore_ascii_case(&object))
        {
            Some(def) => def.add_field(field),
            None => schema.extra_fields.push((object, field)),
        }
    }
    for object in &mut schema.objects {
        if !details.contains(&object.name.to_ascii_lowercase()) {
            add_owner(object);
        }
    }
    Ok(schema)
}

fn object_of_field_file(path: &str) -> Option<String> {
    let parts: Vec<&str> = path.split('/').collect();
    let n = parts.len();
    if n >= 3 && parts[n - 2] == "fields" {
        Some(parts[n - 3].to_string())
    } else {
        None
    }
}

#[cfg(test)]
mod tests;
