//! Loads custom objects and fields from Salesforce metadata in SFDX source format
//! (`schema/salesforce/force-app/main/default/objects/<Object>/<Object>.object-meta.xml` and
//! `.../objects/<Object>/fields/<Field>.field-meta.xml`).
//!
//! The same files are deployed to real orgs by an admin, embedded in the binary for the emulator
//! (see [`embedded`]), and read from disk by `plansync doctor` (see [`load_dir`]).

use std::path::{Path, PathBuf};

use super::{FieldDef, FieldType, ObjectDef, PicklistValue};

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

fn object_name_of(path: &str) -> Option<String> {
    let file = path.rsplit('/').next()?;
    file.strip_suffix(".object-meta.xml").map(str::to_string)
}

fn invalid(file: &str, element: &str, problem: impl Into<String>) -> MetadataError {
    MetadataError::Invalid {
        file: file.to_string(),
        element: element.to_string(),
        problem: problem.into(),
    }
}

fn parse_doc<'a>(file: &str, text: &'a str) -> Result<roxmltree::Document<'a>, MetadataError> {
    roxmltree::Document::parse(text).map_err(|source| MetadataError::Xml {
        file: file.to_string(),
        source,
    })
}

fn child<'a, 'i>(node: roxmltree::Node<'a, 'i>, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
    node.children()
        .find(|c| c.is_element() && c.tag_name().name() == name)
}

fn child_text<'a>(node: roxmltree::Node<'a, '_>, name: &str) -> Option<&'a str> {
    child(node, name).and_then(|c| c.text()).map(str::trim)
}

fn child_bool(file: &str, node: roxmltree::Node, name: &str) -> Result<bool, MetadataError> {
    match child_text(node, name) {
        None => Ok(false),
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(other) => Err(invalid(
            file,
            name,
            format!("expected true or false, found {other:?}"),
        )),
    }
}

fn child_u32(file: &str, node: roxmltree::Node, name: &str) -> Result<Option<u32>, MetadataError> {
    child_text(node, name)
        .map(|t| {
            t.parse::<u32>()
                .map_err(|_| invalid(file, name, format!("expected a whole number, found {t:?}")))
        })
        .transpose()
}

/// The system fields every object has.
pub fn add_system_fields(object: &mut ObjectDef) {
    let mut id = FieldDef::new("Id", FieldType::Id);
    id.label = format!("{} ID", object.label);
    id.nillable = false;
    id.defaulted_on_create = true;
    read_only(&mut id);
    object.add_field(id);
    let mut deleted = FieldDef::new("IsDeleted", FieldType::Boolean);
    deleted.label = "Deleted".into();
    read_only(&mut deleted);
    object.add_field(deleted);
    for (name, label, ty) in [
        ("CreatedDate", "Created Date", FieldType::Datetime),
        ("CreatedById", "Created By ID", FieldType::Reference),
        (
            "LastModifiedDate",
            "Last Modified Date",
            FieldType::Datetime,
        ),
        (
            "LastModifiedById",
            "Last Modified By ID",
            FieldType::Reference,
        ),
        ("SystemModstamp", "System Modstamp", FieldType::Datetime),
    ] {
        let mut f = FieldDef::new(name, ty);
        f.label = label.into();
        f.nillable = false;
        f.defaulted_on_create = true;
        if ty == FieldType::Reference {
            f.reference_to = vec!["User".into()];
            f.relationship_name = Some(name.trim_end_matches("Id").to_string());
        }
        read_only(&mut f);
        object.add_field(f);
    }
}

/// Makes a field read-only (neither createable nor updateable).
pub fn read_only(field: &mut FieldDef) {
    field.createable = false;
    field.updateable = false;
}

fn parse_object(file: &SourceFile) -> Result<ObjectDef, MetadataError> {
    let path = file.path.as_str();
    let name = object_name_of(path)
        .ok_or_else(|| invalid(path, "CustomObject", "unexpected file name"))?;
    let doc = parse_doc(path, &file.text)?;
    let root = doc.root_element();
    if root.tag_name().name() != "CustomObject" {
        return Err(invalid(
            path,
            root.tag_name().name(),
            "expected a <CustomObject> root element",
        ));
    }
    let mut object = ObjectDef::new(&name, custom_key_prefix(&name));
    if let Some(label) = child_text(root, "label") {
        object.label = label.to_string();
    }
    if let Some(plural) = child_text(root, "pluralLabel") {
        object.label_plural = plural.to_string();
    }
    add_system_fields(&mut object);
    let name_field = child(root, "nameField")
        .ok_or_else(|| invalid(path, "nameField", "a custom object needs a <nameField>"))?;
    let name_type = child_text(name_field, "type").unwrap_or("Text");
    let mut name_def = FieldDef::new("Name", FieldType::String);
    name_def.length = 80;
    name_def.custom = false;
    name_def.nillable = false;
    // The CRM names a record after its Id when no Name is given through the API.
    name_def.defaulted_on_create = true;
    name_def.label = child_text(name_field, "label")
        .unwrap_or("Name")
        .to_string();
    match name_type {
        "Text" => {}
        "AutoNumber" => read_only(&mut name_def),
        other => {
            return Err(invalid(
                path,
                "nameField",
                format!("unsupported name field type {other:?} (Text or AutoNumber)"),
            ))
        }
    }
    object.add_field(name_def);
    Ok(object)
}

/// Gives a custom object its OwnerId, which every custom object has except master-detail
/// children (their master owns them).
fn add_owner(object: &mut ObjectDef) {
    if object.field("OwnerId").is_none() {
        let mut owner = FieldDef::new("OwnerId", FieldType::Reference);
        owner.label = "Owner ID".into();
        owner.nillable = false;
        owner.defaulted_on_create = true;
        owner.reference_to = vec!["User".into()];
        owner.relationship_name = Some("Owner".into());
        object.add_field(owner);
    }
}

/// Parses one `<CustomField>` file.
pub fn parse_field(path: &str, text: &str) -> Result<FieldDef, MetadataError> {
    let doc = parse_doc(path, text)?;
    let root = doc.root_element();
    if root.tag_name().name() != "CustomField" {
        return Err(invalid(
            path,
            root.tag_name().name(),
            "expected a <CustomField> root element",
        ));
    }
    let name = child_text(root, "fullName")
        .ok_or_else(|| invalid(path, "fullName", "missing"))?
        .to_string();
    if !name.ends_with("__c") {
        return Err(invalid(
            path,
            "fullName",
            format!("a custom field's name ends with __c, found {name:?}"),
        ));
    }
    let sfdx_type = child_text(root, "type").ok_or_else(|| invalid(path, "type", "missing"))?;
    let field_type = match sfdx_type {
        "Text" => FieldType::String,
        "TextArea" | "LongTextArea" => FieldType::Textarea,
        "Number" => FieldType::Double,
        "Currency" => FieldType::Currency,
        "Percent" => FieldType::Percent,
        "Date" => FieldType::Date,
        "DateTime" => FieldType::Datetime,
        "Checkbox" => FieldType::Boolean,
        "Picklist" => FieldType::Picklist,
        "Lookup" | "MasterDetail" => FieldType::Reference,
        "Email" => FieldType::Email,
        "Phone" => FieldType::Phone,
        "Url" => FieldType::Url,
        other => {
            return Err(invalid(
                path,
                "type",
                format!("unsupported field type {other:?}"),
            ))
        }
    };
    let mut field = FieldDef::new(&name, field_type);
    if let Some(label) = child_text(root, "label") {
        field.label = label.to_string();
    }
    let required = child_bool(path, root, "required")?;
    field.external_id = child_bool(path, root, "externalId")?;
    field.unique = child_bool(path, root, "unique")?;
    if let Some(length) = child_u32(path, root, "length")? {
        field.length = length;
    }
    if field_type.is_numeric() {
        let precision = child_u32(path, root, "precision")?
            .ok_or_else(|| invalid(path, "precision", "required for numeric fields"))?;
        let scale = child_u32(path, root, "scale")?.unwrap_or(0);
        if scale > precision || precision > 18 {
            return Err(invalid(
                path,
                "scale",
                format!("scale {scale} and precision {precision}: need scale ≤ precision ≤ 18"),
            ));
        }
        field.precision = precision;
        field.scale = scale;
        // The describe call reports whole numbers as int when they have no decimals.
        if field_type == FieldType::Double && scale == 0 && precision <= 9 {
            field.field_type = FieldType::Int;
        }
    }
    if field_type == FieldType::Boolean {
        field.nillable = false;
        field.defaulted_on_create = true;
        if let Some(default) = child_text(root, "defaultValue") {
            if default != "true" && default != "false" {
                return Err(invalid(
                    path,
                    "defaultValue",
                    format!("a checkbox default is true or false, found {default:?}"),
                ));
            }
        }
    }
    if field_type == FieldType::Reference {
        let to = child_text(root, "referenceTo")
            .ok_or_else(|| invalid(path, "referenceTo", "required for Lookup and MasterDetail"))?;
        field.reference_to = vec![to.to_string()];
        field.relationship_name = Some(format!("{}__r", name.trim_end_matches("__c")));
        if child_text(root, "relationshipName").is_none() {
            return Err(invalid(
                path,
                "relationshipName",
                "required for Lookup and MasterDetail",
            ));
        }
        if sfdx_type == "MasterDetail" {
            field.nillable = false;
            field.updateable = child_bool(path, root, "reparentableMasterDetail")?;
        }
    }
    if field_type == FieldType::Picklist {
        let value_set = child(root, "valueSet")
            .ok_or_else(|| invalid(path, "valueSet", "required for Picklist"))?;
        field.restricted_picklist = child_bool(path, value_set, "restricted")?;
        let definition = child(value_set, "valueSetDefinition")
            .ok_or_else(|| invalid(path, "valueSetDefinition", "required in <valueSet>"))?;
        for value in definition
            .children()
            .filter(|c| c.is_element() && c.tag_name().name() == "value")
        {
            let full = child_text(value, "fullName")
                .ok_or_else(|| invalid(path, "value", "a picklist value needs <fullName>"))?;
            let mut pv = PicklistValue::new(full);
            if let Some(label) = child_text(value, "label") {
                pv.label = label.to_string();
            }
            pv.default = child_bool(path, value, "default")?;
            if child_text(value, "isActive") == Some("false") {
                pv.active = false;
            }
            field.picklist_values.push(pv);
        }
        if field.picklist_values.is_empty() {
            return Err(invalid(path, "valueSetDefinition", "no picklist values"));
        }
        if field.picklist_values.iter().any(|v| v.default) {
            field.defaulted_on_create = true;
        }
    }
    if required {
        field.nillable = false;
    }
    Ok(field)
}

/// The default value of a field declared in its metadata, as a wire value (checkbox default,
/// default picklist value).
pub fn default_value(field: &FieldDef) -> Option<serde_json::Value> {
    match field.field_type {
        FieldType::Picklist => field
            .picklist_values
            .iter()
            .find(|v| v.default && v.active)
            .map(|v| serde_json::Value::String(v.value.clone())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, text: &str) -> SourceFile {
        SourceFile {
            path: path.into(),
            text: text.into(),
        }
    }

    #[test]
    fn embedded_schema_parses_with_all_objects() {
        let schema = embedded().unwrap();
        let names: Vec<&str> = schema.objects.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "Account_Plan__c",
                "Account_Plan_Account__c",
                "Account_Plan_Snapshot__c"
            ]
        );
        let opp: Vec<&str> = schema
            .extra_fields
            .iter()
            .filter(|(o, _)| o == "Opportunity")
            .map(|(_, f)| f.name.as_str())
            .collect();
        assert_eq!(opp, ["Account_Plan__c", "Plan_Link_Locked__c"]);
    }

    #[test]
    fn field_types_and_properties_are_read() {
        let schema = embedded().unwrap();
        let plan = &schema.objects[0];
        let status = plan.field("Status__c").unwrap();
        assert_eq!(status.field_type, FieldType::Picklist);
        assert!(status.restricted_picklist);
        let values: Vec<&str> = status
            .picklist_values
            .iter()
            .map(|v| v.value.as_str())
            .collect();
        assert_eq!(values, ["Draft", "Active", "Closed"]);
        let account = plan.field("Account__c").unwrap();
        assert_eq!(account.reference_to, ["Account"]);
        assert_eq!(account.relationship_name.as_deref(), Some("Account__r"));
        let ratio = plan.field("Close_Ratio__c").unwrap();
        assert_eq!(
            (ratio.field_type, ratio.precision, ratio.scale),
            (FieldType::Percent, 5, 2)
        );
        let snap = &schema.objects[2];
        let key = snap.field("Snapshot_Key__c").unwrap();
        assert!(key.external_id && key.unique);
        assert_eq!(key.length, 40);
        let junction = &schema.objects[1];
        let master = junction.field("Account_Plan__c").unwrap();
        assert!(!master.nillable && !master.updateable);
    }

    #[test]
    fn errors_name_the_file_and_element() {
        let bad = r#"<?xml version="1.0"?><CustomField xmlns="http://soap.sforce.com/2006/04/metadata">
            <fullName>Score__c</fullName><type>Number</type><label>Score</label></CustomField>"#;
        let err = parse_files(&[file("Thing__c/fields/Score__c.field-meta.xml", bad)])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("Thing__c/fields/Score__c.field-meta.xml"),
            "{err}"
        );
        assert!(err.contains("<precision>"), "{err}");

        let unknown =
            r#"<CustomField><fullName>X__c</fullName><type>Geolocation</type></CustomField>"#;
        let err = parse_field("A/fields/X__c.field-meta.xml", unknown)
            .unwrap_err()
            .to_string();
        assert!(err.contains("A/fields/X__c.field-meta.xml") && err.contains("Geolocation"));

        let broken = "<CustomField><fullName>";
        let err = parse_field("B/fields/Y__c.field-meta.xml", broken).unwrap_err();
        assert!(matches!(err, MetadataError::Xml { ref file, .. } if file.contains("Y__c")));
    }

    #[test]
    fn load_dir_reads_the_project_from_disk() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/salesforce");
        let from_disk = load_dir(&root).unwrap();
        let embedded = embedded().unwrap();
        let mut a: Vec<_> = from_disk.objects.iter().map(|o| o.fields.len()).collect();
        let mut b: Vec<_> = embedded.objects.iter().map(|o| o.fields.len()).collect();
        a.sort();
        b.sort();
        assert_eq!(a, b);
        assert_eq!(from_disk.extra_fields.len(), embedded.extra_fields.len());
    }

    #[test]
    fn every_file_of_the_package_on_disk_is_embedded() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/salesforce");
        let on_disk: Vec<String> = load_package_dir(&root)
            .unwrap()
            .into_iter()
            .map(|f| f.path)
            .collect();
        let mut embedded: Vec<String> = embedded_package().into_iter().map(|f| f.path).collect();
        embedded.sort();
        assert_eq!(
            on_disk, embedded,
            "add new package files to EMBEDDED (objects and fields) or EMBEDDED_PACKAGE (the rest)"
        );
        let schema = parse_package(&embedded_package()).unwrap();
        assert_eq!(schema.objects.len(), 3);
        assert_eq!(schema.extra_fields.len(), 2);
    }

    #[test]
    fn the_org_layout_fragments_name_fields_of_the_package() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/salesforce/org-layouts");
        let schema = embedded().unwrap();
        let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
        let elements = |text: &str, tag: &str| -> Vec<String> {
            let doc = roxmltree::Document::parse(text).unwrap();
            doc.descendants()
                .filter(|n| n.has_tag_name(tag))
                .filter_map(|n| n.text().map(|t| t.trim().to_string()))
                .collect()
        };
        let account = read("Account-Account Layout.fragment.xml");
        assert_eq!(
            elements(&account, "relatedList"),
            ["Account_Plan__c.Account__c"]
        );
        let plan = &schema.objects[0];
        assert_eq!(plan.field("Account__c").unwrap().reference_to, ["Account"]);
        for field in elements(&account, "fields") {
            assert!(
                field == "NAME" || plan.field(&field).is_some(),
                "Account fragment: no plan field {field}"
            );
        }
        let opportunity = read("Opportunity-Opportunity Layout.fragment.xml");
        let fields = elements(&opportunity, "field");
        assert_eq!(fields, ["Account_Plan__c", "Plan_Link_Locked__c"]);
        for field in fields {
            assert!(schema
                .extra_fields
                .iter()
                .any(|(o, f)| o == "Opportunity" && f.name == field));
        }
    }
}
