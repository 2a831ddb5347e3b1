//! The deploy rules a Salesforce org applies to an SFDX package, checked offline.
//!
//! A real org refuses a whole deployment when one component breaks one of these rules (a
//! detail object whose sharing model is not `ControlledByParent`, a permission set granting
//! access to a master-detail field, a layout naming a field that does not exist, ...). The
//! emulator checks its package with [`check`] at every start, so the package shipped in
//! `schema/salesforce/` cannot drift into a state an admin could not deploy.
//!
//! Pure: the files and the standard objects come in, the violations go out.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::sfdx::SourceFile;
use super::ObjectDef;

/// The lowest and highest API versions the package may declare as `sourceApiVersion`: the
/// range the CRM serves.
pub const API_VERSIONS: (u32, u32) = (31, 68);

/// A deploy rule. Each one names what the Metadata API checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rule {
    /// `sfdx-project.json` declares a `sourceApiVersion` the CRM serves.
    ApiVersion,
    /// A file is well-formed XML with the root element its folder implies.
    WellFormed,
    /// A custom object has a label, a plural label, a deployment status and a valid sharing
    /// model.
    ObjectDefinition,
    /// A custom object with a master-detail field is `ControlledByParent`.
    DetailSharing,
    /// The name field is Text or AutoNumber (with a display format) and has a label.
    NameField,
    /// A field's type is one the Metadata API knows, with the elements it needs.
    FieldType,
    /// Text length 1–255; long text 256–131072 with visible lines.
    TextLength,
    /// Number, currency and percent: precision 1–18, scale 0–precision.
    Precision,
    /// Checkboxes have a default value of true or false.
    CheckboxDefault,
    /// Picklists have a value set with values, unique names and at most one default.
    Picklist,
    /// Master-detail fields carry no `required` element (they always are) and no
    /// `deleteConstraint`.
    MasterDetail,
    /// Lookups carry a `deleteConstraint` (SetNull, Restrict or Cascade); a required lookup
    /// cannot be SetNull.
    LookupDeleteConstraint,
    /// Lookups and master-details name an existing object and a relationship name unique
    /// among the parent's child relationships.
    Relationship,
    /// Field files sit under an object the package or the org defines.
    FieldObject,
    /// Permission sets name existing objects, fields, tabs and applications (and no Task or
    /// Event object permissions, which permission sets cannot hold).
    PermissionTarget,
    /// Permission sets grant nothing on required or master-detail fields, nor on system fields.
    PermissionOnRequiredField,
    /// Edit implies read; create, delete, view all and modify all imply what they need.
    PermissionDependency,
    /// Layouts, compact layouts and list views name existing fields of their object.
    LayoutField,
    /// A layout shows every required and master-detail field of its object as Required.
    LayoutRequiredField,
    /// The package ships layouts of its own objects only: a standard object's layout belongs to
    /// the org and deploying one would overwrite the admin's.
    OrgLayout,
    /// Related lists name a lookup or master-detail field pointing to the layout's object.
    RelatedList,
    /// The object's compact layout assignment names a compact layout of the object.
    CompactLayoutAssignment,
    /// List views have a valid filter scope.
    ListView,
    /// Tabs of custom objects name a custom object of the package and have a motif.
    Tab,
    /// Applications list tabs that exist.
    AppTabs,
    /// Report types join through existing child relationships and list existing fields.
    ReportType,
    /// Reports use a report type of the package, its columns, and sit in a shipped folder.
    Report,
}

impl Rule {
    /// A short name, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Rule::ApiVersion => "api-version",
            Rule::WellFormed => "well-formed",
            Rule::ObjectDefinition => "object-definition",
            Rule::DetailSharing => "detail-sharing",
            Rule::NameField => "name-field",
            Rule::FieldType => "field-type",
            Rule::TextLength => "text-length",
            Rule::Precision => "precision",
            Rule::CheckboxDefault => "checkbox-default",
            Rule::Picklist => "picklist",
            Rule::MasterDetail => "master-detail",
            Rule::LookupDeleteConstraint => "lookup-delete-constraint",
            Rule::Relationship => "relationship",
            Rule::FieldObject => "field-object",
            Rule::PermissionTarget => "permission-target",
            Rule::PermissionOnRequiredField => "permission-on-required-field",
            Rule::PermissionDependency => "permission-dependency",
            Rule::LayoutField => "layout-field",
            Rule::LayoutRequiredField => "layout-required-field",
            Rule::OrgLayout => "org-layout",
            Rule::RelatedList => "related-list",
            Rule::CompactLayoutAssignment => "compact-layout-assignment",
            Rule::ListView => "list-view",
            Rule::Tab => "tab",
            Rule::AppTabs => "app-tabs",
            Rule::ReportType => "report-type",
            Rule::Report => "report",
        }
    }
}

/// One broken rule in one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The file, relative to the SFDX project root.
    pub file: String,
    pub rule: Rule,
    /// What is wrong and what to do.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: [{}] {}", self.file, self.rule.name(), self.detail)
    }
}

/// The violations, one a line, for an error message.
pub fn describe(violations: &[Violation]) -> String {
    violations
        .iter()
        .map(|v| format!("  {v}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// One custom field as the rules see it.
#[derive(Debug, Clone)]
struct Field {
    file: String,
    object: String,
    name: String,
    ty: String,
    required: bool,
    /// A formula, auto-number or roll-up summary: the org computes it.
    computed: bool,
    reference_to: Option<String>,
    relationship_name: Option<String>,
}

/// One custom object as the rules see it.
#[derive(Debug, Clone)]
struct Object {
    compact_layout: Option<String>,
}

/// The package's parsed documents, by kind.
struct Package<'a> {
    standard: &'a [ObjectDef],
    objects: BTreeMap<String, Object>,
    /// Custom fields by lower-cased `Object.Field`.
    fields: BTreeMap<String, Field>,
    compact_layouts: BTreeSet<String>,
    tabs: BTreeSet<String>,
    apps: BTreeSet<String>,
    report_types: BTreeSet<String>,
    report_folders: BTreeSet<String>,
}

const VALID_SHARING: &[&str] = &[
    "Private",
    "Read",
    "ReadWrite",
    "ReadWriteTransfer",
    "FullAccess",
    "ControlledByParent",
    "ControlledByCampaign",
    "ControlledByLeadOrContact",
];

const FIELD_TYPES: &[&str] = &[
    "AutoNumber",
    "Checkbox",
    "Currency",
    "Date",
    "DateTime",
    "Email",
    "EncryptedText",
    "ExternalLookup",
    "Html",
    "IndirectLookup",
    "Location",
    "Lookup",
    "LongTextArea",
    "MasterDetail",
    "MultiselectPicklist",
    "Number",
    "Percent",
    "Phone",
    "Picklist",
    "Summary",
    "Text",
    "TextArea",
    "Time",
    "Url",
];

/// The fields every custom object has besides its custom fields.
const IMPLICIT_FIELDS: &[&str] = &[
    "Id",
    "Name",
    "OwnerId",
    "Owner",
    "CreatedById",
    "CreatedBy",
    "CreatedDate",
    "LastModifiedById",
    "LastModifiedBy",
    "LastModifiedDate",
    "SystemModstamp",
    "IsDeleted",
    "RecordTypeId",
    "CurrencyIsoCode",
];

/// Checks every rule over a package: `files` with paths relative to the SFDX project root,
/// `standard` the org's standard objects. Returns the violations in file order.
pub fn check(files: &[SourceFile], standard: &[ObjectDef]) -> Vec<Violation> {
    let mut out = Vec::new();
    let mut docs: Vec<(&SourceFile, roxmltree::Document)> = Vec::new();
    for file in files {
        if file.path.ends_with("sfdx-project.json") {
            check_project(file, &mut out);
            continue;
        }
        if !file.path.ends_with("-meta.xml") {
            continue;
        }
        match roxmltree::Document::parse(&file.text) {
            Ok(doc) => docs.push((file, doc)),
            Err(e) => out.push(violation(file, Rule::WellFormed, e.to_string())),
        }
    }
    let mut package = Package {
        standard,
        objects: BTreeMap::new(),
        fields: BTreeMap::new(),
        compact_layouts: BTreeSet::new(),
        tabs: BTreeSet::new(),
        apps: BTreeSet::new(),
        report_types: BTreeSet::new(),
        report_folders: BTreeSet::new(),
    };
    // First pass: what the package defines.
    for (file, doc) in &docs {
        let root = doc.root_element();
        let stem = stem(&file.path);
        match kind(&file.path) {
            Kind::Object => {
                package.objects.insert(
                    stem.to_ascii_lowercase(),
                    Object {
                        compact_layout: text(root, "compactLayoutAssignment"),
                    },
                );
            }
            Kind::Field { object } => {
                let name = text(root, "fullName").unwrap_or_else(|| stem.to_string());
                package.fields.insert(
                    format!("{object}.{name}").to_ascii_lowercase(),
                    Field {
                        file: file.path.clone(),
                        object: object.to_string(),
                        name,
                        ty: text(root, "type").unwrap_or_default(),
                        computed: child(root, "formula").is_some()
                            || matches!(
                                text(root, "type").as_deref(),
                                Some("AutoNumber" | "Summary")
                            ),
                        required: text(root, "required").as_deref() == Some("true"),
                        reference_to: text(root, "referenceTo"),
                        relationship_name: text(root, "relationshipName"),
                    },
                );
            }
            Kind::CompactLayout { object } => {
                package
                    .compact_layouts
                    .insert(format!("{object}.{stem}").to_ascii_lowercase());
            }
            Kind::Tab => {
                package.tabs.insert(stem.to_ascii_lowercase());
            }
            Kind::App => {
                package.apps.insert(stem.to_ascii_lowercase());
            }
            Kind::ReportType => {
                package.report_types.insert(stem.to_ascii_lowercase());
            }
            Kind::ReportFolder => {
                package.report_folders.insert(stem.to_ascii_lowercase());
            }
            _ => {}
        }
    }
    // Second pass: the rules.
    for (file, doc) in &docs {
        let root = doc.root_element();
        let expected_root = match kind(&file.path) {
            Kind::Object => "CustomObject",
            Kind::Field { .. } => "CustomField",
            Kind::CompactLayout { .. } => "CompactLayout",
            Kind::ListView { .. } => "ListView",
            Kind::PermissionSet => "PermissionSet",
            Kind::Layout => "Layout",
            Kind::Tab => "CustomTab",
            Kind::App => "CustomApplication",
            Kind::ReportType => "ReportType",
            Kind::ReportFolder => "ReportFolder",
            Kind::Report { .. } => "Report",
            Kind::Other => continue,
        };
        if root.tag_name().name() != expected_root {
            out.push(violation(
                file,
                Rule::WellFormed,
                format!(
                    "the root element is <{}>, expected <{expected_root}>",
                    root.tag_name().name()
                ),
            ));
            continue;
        }
        match kind(&file.path) {
            Kind::Object => check_object(file, root, &package, &mut out),
            Kind::Field { object } => check_field(file, object, root, &package, &mut out),
            Kind::CompactLayout { object } => {
                for field in texts(root, "fields") {
                    check_field_exists(file, object, &field, &package, Rule::LayoutField, &mut out);
                }
            }
            Kind::ListView { object } => check_list_view(file, object, root, &package, &mut out),
            Kind::PermissionSet => check_permission_set(file, root, &package, &mut out),
            Kind::Layout => check_layout(file, root, &package, &mut out),
            Kind::Tab => check_tab(file, root, &package, &mut out),
            Kind::App => {
                for tab in texts(root, "tabs") {
                    if !tab.starts_with("standard-") && !package.tabs.contains(&lower(&tab)) {
                        out.push(violation(
                            file,
                            Rule::AppTabs,
                            format!("tab {tab} is neither a standard tab nor a tab of the package"),
                        ));
                    }
                }
            }
            Kind::ReportType => check_report_type(file, root, &package, &mut out),
            Kind::Report { folder } => check_report(file, folder, root, &package, &mut out),
            Kind::ReportFolder | Kind::Other => {}
        }
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind<'a> {
    Object,
    Field { object: &'a str },
    CompactLayout { object: &'a str },
    ListView { object: &'a str },
    PermissionSet,
    Layout,
    Tab,
    App,
    ReportType,
    ReportFolder,
    Report { folder: &'a str },
    Other,
}

fn kind(path: &str) -> Kind<'_> {
    let parts: Vec<&str> = path.split('/').collect();
    let n = parts.len();
    let file = parts[n - 1];
    let up = |k: usize| if n > k { parts[n - 1 - k] } else { "" };
    if file.ends_with(".object-meta.xml") && up(2) == "objects" {
        Kind::Object
    } else if file.ends_with(".field-meta.xml") && up(1) == "fields" && up(3) == "objects" {
        Kind::Field { object: up(2) }
    } else if file.ends_with(".compactLayout-meta.xml") && up(3) == "objects" {
        Kind::CompactLayout { object: up(2) }
    } else if file.ends_with(".listView-meta.xml") && up(3) == "objects" {
        Kind::ListView { object: up(2) }
    } else if file.ends_with(".permissionset-meta.xml") {
        Kind::PermissionSet
    } else if file.ends_with(".layout-meta.xml") {
        Kind::Layout
    } else if file.ends_with(".tab-meta.xml") {
        Kind::Tab
    } else if file.ends_with(".app-meta.xml") {
        Kind::App
    } else if file.ends_with(".reportType-meta.xml") {
        Kind::ReportType
    } else if file.ends_with(".reportFolder-meta.xml") {
        Kind::ReportFolder
    } else if file.ends_with(".report-meta.xml") && up(2) == "reports" {
        Kind::Report { folder: up(1) }
    } else {
        Kind::Other
    }
}

/// The file name without its metadata suffix (`Account_Plan__c` of
/// `Account_Plan__c.object-meta.xml`, `Account_Plan__c-Account Plan Layout` of a layout).
fn stem(path: &str) -> &str {
    let file = path.rsplit('/').next().unwrap_or(path);
    let without = file.strip_suffix("-meta.xml").unwrap_or(file);
    match without.rfind('.') {
        Some(dot) => &without[..dot],
        None => without,
    }
}

fn lower(s: &str) -> String {
    s.to_ascii_lowercase()
}

fn violation(file: &SourceFile, rule: Rule, detail: impl Into<String>) -> Violation {
    Violation {
        file: file.path.clone(),
        rule,
        detail: detail.into(),
    }
}

fn child<'a, 'i>(node: roxmltree::Node<'a, 'i>, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
    node.children()
        .find(|c| c.is_element() && c.tag_name().name() == name)
}

fn children<'a, 'i>(
    node: roxmltree::Node<'a, 'i>,
    name: &'a str,
) -> impl Iterator<Item = roxmltree::Node<'a, 'i>> + 'a {
    node.children()
        .filter(move |c| c.is_element() && c.tag_name().name() == name)
}

fn text(node: roxmltree::Node, name: &str) -> Option<String> {
    child(node, name)
        .map(|c| c.text().unwrap_or_default().trim().to_string())
        .filter(|t| !t.is_empty())
}

fn texts(node: roxmltree::Node, name: &str) -> Vec<String> {
    node.children()
        .filter(|c| c.is_element() && c.tag_name().name() == name)
        .map(|c| c.text().unwrap_or_default().trim().to_string())
        .collect()
}

fn flag(node: roxmltree::Node, name: &str) -> bool {
    text(node, name).as_deref() == Some("true")
}

fn check_project(file: &SourceFile, out: &mut Vec<Violation>) {
    let json: serde_json::Value = match serde_json::from_str(&file.text) {
        Ok(v) => v,
        Err(e) => {
            out.push(violation(file, Rule::WellFormed, format!("not JSON: {e}")));
            return;
        }
    };
    let (min, max) = API_VERSIONS;
    let version = json["sourceApiVersion"].as_str().unwrap_or_default();
    let major = version
        .strip_suffix(".0")
        .and_then(|m| m.parse::<u32>().ok());
    match major {
        Some(m) if (min..=max).contains(&m) => {}
        _ => out.push(violation(
            file,
            Rule::ApiVersion,
            format!("sourceApiVersion {version:?}: use a version such as \"66.0\", between {min}.0 and {max}.0"),
        )),
    }
}

impl Package<'_> {
    fn standard_object(&self, name: &str) -> Option<&ObjectDef> {
        self.standard
            .iter()
            .find(|o| o.name.eq_ignore_ascii_case(name))
    }

    fn object_exists(&self, name: &str) -> bool {
        self.objects.contains_key(&lower(name)) || self.standard_object(name).is_some()
    }

    fn custom_field(&self, object: &str, field: &str) -> Option<&Field> {
        self.fields.get(&lower(&format!("{object}.{field}")))
    }

    fn is_detail(&self, object: &str) -> bool {
        self.fields
            .values()
            .any(|f| f.object.eq_ignore_ascii_case(object) && f.ty == "MasterDetail")
    }

    /// Whether `object` has a field (or a relationship name usable in reports) `field`.
    fn field_exists(&self, object: &str, field: &str) -> bool {
        if self.custom_field(object, field).is_some() {
            return true;
        }
        if self.objects.contains_key(&lower(object)) {
            return IMPLICIT_FIELDS
                .iter()
                .any(|f| f.eq_ignore_ascii_case(field))
                && !(self.is_detail(object)
                    && (field.eq_ignore_ascii_case("OwnerId")
                        || field.eq_ignore_ascii_case("Owner")));
        }
        self.standard_object(object).is_some_and(|o| {
            o.field(field).is_some()
                || o.fields.values().any(|f| {
                    f.relationship_name
                        .as_deref()
                        .is_some_and(|r| r.eq_ignore_ascii_case(field))
                })
        })
    }
}

fn check_object(
    file: &SourceFile,
    root: roxmltree::Node,
    package: &Package,
    out: &mut Vec<Violation>,
) {
    let name = stem(&file.path);
    for element in ["label", "pluralLabel", "deploymentStatus"] {
        if text(root, element).is_none() {
            out.push(violation(
                file,
                Rule::ObjectDefinition,
                format!("<{element}> is missing"),
            ));
        }
    }
    let sharing = text(root, "sharingModel");
    match sharing.as_deref() {
        Some(s) if VALID_SHARING.contains(&s) => {}
        other => out.push(violation(
            file,
            Rule::ObjectDefinition,
            format!(
                "<sharingModel> {other:?} is not one of {}",
                VALID_SHARING.join(", ")
            ),
        )),
    }
    if package.is_detail(name) && sharing.as_deref() != Some("ControlledByParent") {
        out.push(violation(
            file,
            Rule::DetailSharing,
            format!(
                "{name} has a master-detail field, so its <sharingModel> must be ControlledByParent, not {}",
                sharing.as_deref().unwrap_or("missing")
            ),
        ));
    }
    match child(root, "nameField") {
        None => out.push(violation(file, Rule::NameField, "<nameField> is missing")),
        Some(name_field) => {
            if text(name_field, "label").is_none() {
                out.push(violation(
                    file,
                    Rule::NameField,
                    "<nameField> needs a <label>",
                ));
            }
            match text(name_field, "type").as_deref() {
                Some("Text") => {}
                Some("AutoNumber") => {
                    let format = text(name_field, "displayFormat").unwrap_or_default();
                    if !format.contains("{0") {
                        out.push(violation(
                            file,
                            Rule::NameField,
                            "an AutoNumber name field needs a <displayFormat> with a number placeholder such as AP-{0000}",
                        ));
                    }
                }
                other => out.push(violation(
                    file,
                    Rule::NameField,
                    format!("the name field's <type> is {other:?}; use Text or AutoNumber"),
                )),
            }
        }
    }
    if let Some(layout) = package
        .objects
        .get(&lower(name))
        .and_then(|o| o.compact_layout.as_deref())
    {
        if layout != "SYSTEM"
            && !package
                .compact_layouts
                .contains(&lower(&format!("{name}.{layout}")))
        {
            out.push(violation(
                file,
                Rule::CompactLayoutAssignment,
                format!(
                    "<compactLayoutAssignment> {layout} is not in objects/{name}/compactLayouts/"
                ),
            ));
        }
    }
}

fn check_field(
    file: &SourceFile,
    object: &str,
    root: roxmltree::Node,
    package: &Package,
    out: &mut Vec<Violation>,
) {
    if !package.object_exists(object) {
        out.push(violation(
            file,
            Rule::FieldObject,
            format!("object {object} is neither defined in the package nor a standard object"),
        ));
    }
    let ty = text(root, "type").unwrap_or_default();
    if !FIELD_TYPES.contains(&ty.as_str()) {
        out.push(violation(
            file,
            Rule::FieldType,
            format!("<type> {ty:?} is not a field type"),
        ));
        return;
    }
    let number = |name: &str| text(root, name).and_then(|t| t.parse::<u32>().ok());
    // A formula's <type> is its result's: it has no length or default of its own.
    let formula = child(root, "formula").is_some();
    match ty.as_str() {
        "Text" | "Checkbox" | "TextArea" if formula => {}
        "Text" | "EncryptedText" => match number("length") {
            Some(1..=255) => {}
            other => out.push(violation(
                file,
                Rule::TextLength,
                format!("a Text field needs a <length> from 1 to 255, found {other:?}"),
            )),
        },
        "LongTextArea" | "Html" => {
            if !matches!(number("length"), Some(256..=131_072)) {
                out.push(violation(
                    file,
                    Rule::TextLength,
                    "a long text area needs a <length> from 256 to 131072",
                ));
            }
            if number("visibleLines").is_none() {
                out.push(violation(file, Rule::TextLength, "a long text area needs <visibleLines>"));
            }
        }
        "Number" | "Currency" | "Percent" => {
            let precision = number("precision");
            let scale = number("scale");
            match (precision, scale) {
                (Some(p @ 1..=18), Some(s)) if s <= p => {}
                _ => out.push(violation(
                    file,
                    Rule::Precision,
                    format!(
                        "{ty} needs <precision> 1–18 and <scale> 0–precision, found precision {precision:?} scale {scale:?}"
                    ),
                )),
            }
        }
        "Checkbox" => {
            let default = text(root, "defaultValue");
            if !matches!(default.as_deref(), Some("true") | Some("false")) {
                out.push(violation(
                    file,
                    Rule::CheckboxDefault,
                    format!("a Checkbox needs <defaultValue> true or false, found {default:?}"),
                ));
            }
        }
        "Picklist" | "MultiselectPicklist" => check_picklist(file, root, out),
        "MasterDetail" => {
            if child(root, "required").is_some() {
                out.push(violation(
                    file,
                    Rule::MasterDetail,
                    "a master-detail field must not carry <required> (it always is): remove it",
                ));
            }
            if child(root, "deleteConstraint").is_some() {
                out.push(violation(
                    file,
                    Rule::MasterDetail,
                    "a master-detail field must not carry <deleteConstraint> (deleting the master deletes its details): remove it",
                ));
            }
        }
        // The org keeps lookups to users when the user goes (users are deactivated, never
        // deleted): they take no delete constraint.
        "Lookup" if text(root, "referenceTo").as_deref() == Some("User") => {}
        "Lookup" => match text(root, "deleteConstraint").as_deref() {
            Some("SetNull") if flag(root, "required") => out.push(violation(
                file,
                Rule::LookupDeleteConstraint,
                "a required lookup cannot clear itself: use <deleteConstraint>Restrict</deleteConstraint>",
            )),
            Some("SetNull" | "Restrict" | "Cascade") => {}
            other => out.push(violation(
                file,
                Rule::LookupDeleteConstraint,
                format!("a lookup needs <deleteConstraint> SetNull, Restrict or Cascade, found {other:?}"),
            )),
        },
        _ => {}
    }
    if matches!(ty.as_str(), "Lookup" | "MasterDetail") {
        let target = text(root, "referenceTo");
        let relationship = text(root, "relationshipName");
        match target.as_deref() {
            Some(t) if package.object_exists(t) => {}
            other => out.push(violation(
                file,
                Rule::Relationship,
                format!("<referenceTo> {other:?} names no object of the package or the org"),
            )),
        }
        match (target, relationship) {
            (Some(target), Some(relationship)) => {
                let clash = package.fields.values().find(|f| {
                    f.file != file.path
                        && f.reference_to
                            .as_deref()
                            .is_some_and(|t| t.eq_ignore_ascii_case(&target))
                        && f.relationship_name
                            .as_deref()
                            .is_some_and(|r| r.eq_ignore_ascii_case(&relationship))
                });
                if let Some(other) = clash {
                    out.push(violation(
                        file,
                        Rule::Relationship,
                        format!(
                            "relationship name {relationship} is also used by {}.{} for {target}'s child relationships: rename one",
                            other.object, other.name
                        ),
                    ));
                }
            }
            (_, None) => out.push(violation(
                file,
                Rule::Relationship,
                "a lookup or master-detail field needs <relationshipName>",
            )),
            _ => {}
        }
    }
}

fn check_picklist(file: &SourceFile, root: roxmltree::Node, out: &mut Vec<Violation>) {
    let Some(value_set) = child(root, "valueSet") else {
        out.push(violation(
            file,
            Rule::Picklist,
            "a picklist needs a <valueSet>",
        ));
        return;
    };
    if text(value_set, "valueSetName").is_some() {
        return;
    }
    let Some(definition) = child(value_set, "valueSetDefinition") else {
        out.push(violation(
            file,
            Rule::Picklist,
            "<valueSet> needs a <valueSetDefinition> (or a global <valueSetName>)",
        ));
        return;
    };
    let mut names = BTreeSet::new();
    let mut defaults = 0;
    let mut count = 0;
    for value in children(definition, "value") {
        count += 1;
        let Some(name) = text(value, "fullName") else {
            out.push(violation(
                file,
                Rule::Picklist,
                "a picklist <value> needs a <fullName>",
            ));
            continue;
        };
        if !names.insert(lower(&name)) {
            out.push(violation(
                file,
                Rule::Picklist,
                format!("picklist value {name} appears twice"),
            ));
        }
        if flag(value, "default") {
            defaults += 1;
        }
    }
    if count == 0 {
        out.push(violation(
            file,
            Rule::Picklist,
            "the picklist has no values",
        ));
    }
    if defaults > 1 {
        out.push(violation(
            file,
            Rule::Picklist,
            format!("{defaults} picklist values are marked default; at most one may be"),
        ));
    }
}

fn check_field_exists(
    file: &SourceFile,
    object: &str,
    field: &str,
    package: &Package,
    rule: Rule,
    out: &mut Vec<Violation>,
) {
    if !package.field_exists(object, field) {
        out.push(violation(
            file,
            rule,
            format!("field {object}.{field} does not exist"),
        ));
    }
}

/// Column names such as `NAME`, `CORE.USERS.ALIAS` or `OPPORTUNITY.AMOUNT`: the CRM's own
/// column tokens, in capitals.
fn is_column_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c == '_' || c == '.')
        && !name.ends_with("__C")
}

fn check_list_view(
    file: &SourceFile,
    object: &str,
    root: roxmltree::Node,
    package: &Package,
    out: &mut Vec<Violation>,
) {
    const SCOPES: &[&str] = &[
        "Everything",
        "Mine",
        "MineAndMyGroups",
        "Queue",
        "Delegated",
        "MyTerritory",
        "MyTeamTerritory",
        "Team",
    ];
    match text(root, "filterScope").as_deref() {
        Some(s) if SCOPES.contains(&s) => {}
        other => out.push(violation(
            file,
            Rule::ListView,
            format!(
                "<filterScope> {other:?} is not one of {}",
                SCOPES.join(", ")
            ),
        )),
    }
    for column in texts(root, "columns") {
        if !is_column_token(&column) {
            check_field_exists(file, object, &column, package, Rule::LayoutField, out);
        }
    }
    for filter in children(root, "filters") {
        let field = text(filter, "field").unwrap_or_default();
        if !is_column_token(&field) {
            check_field_exists(file, object, &field, package, Rule::LayoutField, out);
        }
    }
}

fn check_permission_set(
    file: &SourceFile,
    root: roxmltree::Node,
    package: &Package,
    out: &mut Vec<Violation>,
) {
    for perm in children(root, "fieldPermissions") {
        let full = text(perm, "field").unwrap_or_default();
        let readable = flag(perm, "readable");
        let editable = flag(perm, "editable");
        if editable && !readable {
            out.push(violation(
                file,
                Rule::PermissionDependency,
                format!("{full}: editable needs readable"),
            ));
        }
        let Some((object, field)) = full.split_once('.') else {
            out.push(violation(
                file,
                Rule::PermissionTarget,
                format!("field permission {full:?} is not Object.Field"),
            ));
            continue;
        };
        if let Some(custom) = package.custom_field(object, field) {
            if custom.ty == "MasterDetail" || custom.required {
                out.push(violation(
                    file,
                    Rule::PermissionOnRequiredField,
                    format!(
                        "{full} is {}: the org always grants it, and a permission set naming it does not deploy; remove the entry",
                        if custom.ty == "MasterDetail" { "a master-detail field" } else { "required" }
                    ),
                ));
            } else if custom.computed && editable {
                out.push(violation(
                    file,
                    Rule::PermissionDependency,
                    format!("{full} is computed by the org (formula, auto-number or roll-up summary): it can be readable, never editable"),
                ));
            }
            continue;
        }
        if package.objects.contains_key(&lower(object)) {
            let detail = if IMPLICIT_FIELDS
                .iter()
                .any(|f| f.eq_ignore_ascii_case(field))
            {
                (
                    Rule::PermissionOnRequiredField,
                    format!("{full} is a system field whose access cannot be granted"),
                )
            } else {
                (
                    Rule::PermissionTarget,
                    format!("{full}: no such field in the package"),
                )
            };
            out.push(violation(file, detail.0, detail.1));
            continue;
        }
        match package.standard_object(object) {
            None => out.push(violation(
                file,
                Rule::PermissionTarget,
                format!("{full}: object {object} is neither in the package nor a standard object"),
            )),
            Some(o) => match o.field(field) {
                None => out.push(violation(
                    file,
                    Rule::PermissionTarget,
                    format!("{full}: {object} has no field {field}"),
                )),
                Some(f) if !f.nillable || f.name == "Id" => out.push(violation(
                    file,
                    Rule::PermissionOnRequiredField,
                    format!("{full} is required or a system field: its access cannot be granted; remove the entry"),
                )),
                Some(_) => {}
            },
        }
    }
    for perm in children(root, "objectPermissions") {
        let object = text(perm, "object").unwrap_or_default();
        if matches!(object.as_str(), "Task" | "Event") {
            out.push(violation(
                file,
                Rule::PermissionTarget,
                format!("{object}: permission sets hold no object permissions for activities; access to tasks and events follows the records they belong to"),
            ));
        } else if !package.object_exists(&object) {
            out.push(violation(
                file,
                Rule::PermissionTarget,
                format!("object permissions for {object:?}, which is neither in the package nor a standard object"),
            ));
        }
        let read = flag(perm, "allowRead");
        let create = flag(perm, "allowCreate");
        let edit = flag(perm, "allowEdit");
        let delete = flag(perm, "allowDelete");
        let view_all = flag(perm, "viewAllRecords");
        let modify_all = flag(perm, "modifyAllRecords");
        let mut needs = |what: &str, ok: bool, need: &str| {
            if !ok {
                out.push(violation(
                    file,
                    Rule::PermissionDependency,
                    format!("{object}: {what} needs {need}"),
                ));
            }
        };
        if create || edit || view_all {
            needs("create, edit and view all", read, "allowRead");
        }
        if delete {
            needs("allowDelete", read && edit, "allowRead and allowEdit");
        }
        if modify_all {
            needs(
                "modifyAllRecords",
                read && edit && delete && view_all,
                "allowRead, allowEdit, allowDelete and viewAllRecords",
            );
        }
    }
    for tab in children(root, "tabSettings") {
        let name = text(tab, "tab").unwrap_or_default();
        if !name.starts_with("standard-") && !package.tabs.contains(&lower(&name)) {
            out.push(violation(
                file,
                Rule::PermissionTarget,
                format!("tab setting for {name:?}, which is not a tab of the package"),
            ));
        }
        let visibility = text(tab, "visibility").unwrap_or_default();
        if !matches!(visibility.as_str(), "Visible" | "Available" | "None") {
            out.push(violation(
                file,
                Rule::PermissionTarget,
                format!(
                    "tab {name}: <visibility> {visibility:?} is not Visible, Available or None"
                ),
            ));
        }
    }
    for app in children(root, "applicationVisibilities") {
        let name = text(app, "application").unwrap_or_default();
        if !name.starts_with("standard__") && !package.apps.contains(&lower(&name)) {
            out.push(violation(
                file,
                Rule::PermissionTarget,
                format!("application {name:?} is not an application of the package"),
            ));
        }
    }
}

fn check_layout(
    file: &SourceFile,
    root: roxmltree::Node,
    package: &Package,
    out: &mut Vec<Violation>,
) {
    let name = stem(&file.path);
    let Some((object, _)) = name.split_once('-') else {
        out.push(violation(
            file,
            Rule::LayoutField,
            "a layout file is named <Object>-<Layout Name>.layout-meta.xml",
        ));
        return;
    };
    if !package.objects.contains_key(&lower(object)) {
        out.push(violation(
            file,
            Rule::OrgLayout,
            format!(
                "{object} is not an object of the package: its layouts belong to the org, and deploying this one would replace the admin's; ship the change as a documented step instead"
            ),
        ));
        return;
    }
    let mut shown: BTreeMap<String, String> = BTreeMap::new();
    for item in root.descendants().filter(|n| n.has_tag_name("layoutItems")) {
        let Some(field) = text(item, "field") else {
            continue;
        };
        check_field_exists(file, object, &field, package, Rule::LayoutField, out);
        shown.insert(lower(&field), text(item, "behavior").unwrap_or_default());
    }
    for f in package
        .fields
        .values()
        .filter(|f| f.object.eq_ignore_ascii_case(object) && (f.ty == "MasterDetail" || f.required))
    {
        match shown.get(&lower(&f.name)).map(String::as_str) {
            Some("Required") => {}
            other => out.push(violation(
                file,
                Rule::LayoutRequiredField,
                format!(
                    "{} is required on every record: the layout must show it with <behavior>Required</behavior> (found {other:?})",
                    f.name
                ),
            )),
        }
    }
    for related in children(root, "relatedLists") {
        let name = text(related, "relatedList").unwrap_or_default();
        let Some((child_object, field)) = name.split_once('.') else {
            continue;
        };
        let points_here = package.custom_field(child_object, field).is_some_and(|f| {
            matches!(f.ty.as_str(), "Lookup" | "MasterDetail")
                && f.reference_to
                    .as_deref()
                    .is_some_and(|t| t.eq_ignore_ascii_case(object))
        });
        if !points_here {
            out.push(violation(
                file,
                Rule::RelatedList,
                format!("related list {name}: {child_object}.{field} is not a lookup to {object}"),
            ));
            continue;
        }
        for column in texts(related, "fields") {
            if !is_column_token(&column) {
                check_field_exists(file, child_object, &column, package, Rule::LayoutField, out);
            }
        }
    }
}

fn check_tab(
    file: &SourceFile,
    root: roxmltree::Node,
    package: &Package,
    out: &mut Vec<Violation>,
) {
    let name = stem(&file.path);
    if flag(root, "customObject") && !package.objects.contains_key(&lower(name)) {
        out.push(violation(
            file,
            Rule::Tab,
            format!("a custom object tab is named after its object, and {name} is not an object of the package"),
        ));
    }
    if text(root, "motif").is_none() {
        out.push(violation(
            file,
            Rule::Tab,
            "a tab needs a <motif> (its icon), such as Custom18: Form",
        ));
    }
}

/// The tables a report type makes available, as `table -> object`: the base object and one
/// entry per join level (`Account_Plan__c.Account_Plan_Snapshots__r`).
fn report_type_tables(
    file: &SourceFile,
    root: roxmltree::Node,
    package: &Package,
    out: &mut Vec<Violation>,
) -> BTreeMap<String, String> {
    let mut tables = BTreeMap::new();
    let Some(base) = text(root, "baseObject") else {
        out.push(violation(file, Rule::ReportType, "<baseObject> is missing"));
        return tables;
    };
    if !package.object_exists(&base) {
        out.push(violation(
            file,
            Rule::ReportType,
            format!("<baseObject> {base} is not an object of the package or the org"),
        ));
        return tables;
    }
    tables.insert(base.clone(), base.clone());
    let mut parent_table = base.clone();
    let mut parent_object = base;
    let mut join = child(root, "join");
    while let Some(j) = join {
        let relationship = text(j, "relationship").unwrap_or_default();
        let child_field = package.fields.values().find(|f| {
            f.reference_to
                .as_deref()
                .is_some_and(|t| t.eq_ignore_ascii_case(&parent_object))
                && f.relationship_name
                    .as_deref()
                    .is_some_and(|r| format!("{r}__r").eq_ignore_ascii_case(&relationship))
        });
        let Some(f) = child_field else {
            out.push(violation(
                file,
                Rule::ReportType,
                format!("join <relationship> {relationship:?} is not a child relationship of {parent_object} (custom ones end in __r)"),
            ));
            break;
        };
        let table = format!("{parent_table}.{relationship}");
        tables.insert(table.clone(), f.object.clone());
        parent_table = table;
        parent_object = f.object.clone();
        join = child(j, "join");
    }
    tables
}

fn check_report_type(
    file: &SourceFile,
    root: roxmltree::Node,
    package: &Package,
    out: &mut Vec<Violation>,
) {
    if !flag(root, "deployed") {
        out.push(violation(
            file,
            Rule::ReportType,
            "<deployed>true</deployed> makes the report type usable; without it nobody sees it",
        ));
    }
    let tables = report_type_tables(file, root, package, out);
    for section in children(root, "sections") {
        for column in children(section, "columns") {
            let table = text(column, "table").unwrap_or_default();
            let field = text(column, "field").unwrap_or_default();
            match tables.get(&table) {
                None => out.push(violation(
                    file,
                    Rule::ReportType,
                    format!("column table {table:?} is not the base object or a joined relationship path"),
                )),
                Some(object) => {
                    check_field_exists(file, object, &field, package, Rule::ReportType, out)
                }
            }
        }
    }
}

fn check_report(
    file: &SourceFile,
    folder: &str,
    root: roxmltree::Node,
    package: &Package,
    out: &mut Vec<Violation>,
) {
    if !package.report_folders.contains(&lower(folder)) {
        out.push(violation(
            file,
            Rule::Report,
            format!("the report folder {folder} has no reports/{folder}.reportFolder-meta.xml"),
        ));
    }
    let report_type = text(root, "reportType").unwrap_or_default();
    let Some(type_name) = report_type.strip_suffix("__c") else {
        // A standard report type: its columns are the org's.
        return;
    };
    if !package.report_types.contains(&lower(type_name)) {
        out.push(violation(
            file,
            Rule::Report,
            format!("<reportType> {report_type} is not a report type of the package"),
        ));
        return;
    }
    // The report type's file gives the tables.
    let columns: Vec<String> = root
        .descendants()
        .filter(|n| {
            n.is_element()
                && matches!(
                    n.tag_name().name(),
                    "field" | "column" | "groupingColumn" | "dateColumn"
                )
        })
        .filter_map(|n| n.text().map(|t| t.trim().to_string()))
        .filter(|t| t.contains('$'))
        .collect();
    for column in columns {
        let Some((table, field)) = column.split_once('$') else {
            continue;
        };
        let object = table
            .rsplit('.')
            .next()
            .map(|last| {
                if last.ends_with("__r") {
                    package
                        .fields
                        .values()
                        .find(|f| {
                            f.relationship_name
                                .as_deref()
                                .is_some_and(|r| format!("{r}__r").eq_ignore_ascii_case(last))
                        })
                        .map(|f| f.object.clone())
                        .unwrap_or_default()
                } else {
                    last.to_string()
                }
            })
            .unwrap_or_default();
        if !package.field_exists(&object, field) {
            out.push(violation(
                file,
                Rule::Report,
                format!("column {column}: {table} has no field {field}"),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::sfdx::{embedded_package, SOURCE_ROOT};
    use crate::metadata::standard::standard_objects;

    fn run(files: &[SourceFile]) -> Vec<Violation> {
        check(files, &standard_objects())
    }

    /// The shipped package with one file's text changed by `edit` (the file must exist and the
    /// edit must change it).
    fn package_with(path: &str, edit: impl Fn(&str) -> String) -> Vec<SourceFile> {
        let mut files = embedded_package();
        let file = files
            .iter_mut()
            .find(|f| f.path.ends_with(path))
            .unwrap_or_else(|| panic!("no file {path}"));
        let edited = edit(&file.text);
        assert_ne!(edited, file.text, "the edit of {path} changed nothing");
        file.text = edited;
        files
    }

    fn package_plus(path: &str, text: &str) -> Vec<SourceFile> {
        let mut files = embedded_package();
        files.push(SourceFile {
            path: format!("{SOURCE_ROOT}{path}"),
            text: text.to_string(),
        });
        files
    }

    fn replace(from: &'static str, to: &'static str) -> impl Fn(&str) -> String {
        move |text: &str| text.replacen(from, to, 1)
    }

    #[test]
    fn the_shipped_package_breaks_no_rule() {
        let violations = run(&embedded_package());
        assert!(violations.is_empty(), "{}", describe(&violations));
    }

    /// One row per rule: the shipped package with one change a real org refuses, the rule
    /// that must fire and the file it must name.
    #[test]
    fn each_rule_refuses_what_a_real_org_refuses() {
        const JUNCTION: &str =
            "objects/Account_Plan_Account__c/Account_Plan_Account__c.object-meta.xml";
        const PLAN: &str = "objects/Account_Plan__c/Account_Plan__c.object-meta.xml";
        const MASTER: &str =
            "objects/Account_Plan_Account__c/fields/Account_Plan__c.field-meta.xml";
        const LOOKUP: &str = "objects/Account_Plan__c/fields/Account__c.field-meta.xml";
        const INTEGRATION: &str = "permissionsets/Plansync_Integration.permissionset-meta.xml";
        const USER: &str = "permissionsets/Account_Plan_User.permissionset-meta.xml";
        const LAYOUT: &str = "layouts/Account_Plan__c-Account Plan Layout.layout-meta.xml";
        const JUNCTION_LAYOUT: &str =
            "layouts/Account_Plan_Account__c-Account Plan Account Layout.layout-meta.xml";
        const REPORT_TYPE: &str = "reportTypes/Account_Plans_with_Snapshots.reportType-meta.xml";
        const REPORT: &str =
            "reports/Account_Plan_Reports/Plan_History_by_Snapshot_Date.report-meta.xml";
        let field = |name: &str, body: &str| {
            package_plus(
                &format!("objects/Account_Plan__c/fields/{name}.field-meta.xml"),
                &format!(
                    r#"<?xml version="1.0" encoding="UTF-8"?>
<CustomField xmlns="http://soap.sforce.com/2006/04/metadata"><fullName>{name}</fullName><label>X</label>{body}</CustomField>"#
                ),
            )
        };
        let cases: Vec<(&str, Vec<SourceFile>, Rule, &str)> = vec![
            (
                "source API version out of range",
                package_with("sfdx-project.json", replace("\"66.0\"", "\"99.0\"")),
                Rule::ApiVersion,
                "sfdx-project.json",
            ),
            (
                "broken XML",
                package_with(PLAN, replace("</CustomObject>", "")),
                Rule::WellFormed,
                PLAN,
            ),
            (
                "object without a plural label",
                package_with(PLAN, replace("<pluralLabel>Account Plans</pluralLabel>", "")),
                Rule::ObjectDefinition,
                PLAN,
            ),
            (
                "detail object shared ReadWrite",
                package_with(
                    JUNCTION,
                    replace("<sharingModel>ControlledByParent<", "<sharingModel>ReadWrite<"),
                ),
                Rule::DetailSharing,
                JUNCTION,
            ),
            (
                "AutoNumber name without a display format",
                package_with(
                    PLAN,
                    replace("<type>Text</type>\n    </nameField>", "<type>AutoNumber</type>\n    </nameField>"),
                ),
                Rule::NameField,
                PLAN,
            ),
            (
                "unknown field type",
                field("Odd__c", "<type>Geolocation2</type>"),
                Rule::FieldType,
                "Odd__c.field-meta.xml",
            ),
            (
                "text longer than 255",
                field("Long__c", "<type>Text</type><length>300</length>"),
                Rule::TextLength,
                "Long__c.field-meta.xml",
            ),
            (
                "precision above 18",
                field("Big__c", "<type>Currency</type><precision>20</precision><scale>2</scale>"),
                Rule::Precision,
                "Big__c.field-meta.xml",
            ),
            (
                "scale above precision",
                field("Tiny__c", "<type>Number</type><precision>3</precision><scale>4</scale>"),
                Rule::Precision,
                "Tiny__c.field-meta.xml",
            ),
            (
                "checkbox without default",
                field("Flag__c", "<type>Checkbox</type>"),
                Rule::CheckboxDefault,
                "Flag__c.field-meta.xml",
            ),
            (
                "picklist with two defaults",
                package_with(
                    "objects/Account_Plan__c/fields/Status__c.field-meta.xml",
                    replace("<default>false</default>", "<default>true</default>"),
                ),
                Rule::Picklist,
                "Status__c.field-meta.xml",
            ),
            (
                "master-detail with required",
                package_with(
                    MASTER,
                    replace("<type>MasterDetail</type>", "<required>true</required><type>MasterDetail</type>"),
                ),
                Rule::MasterDetail,
                MASTER,
            ),
            (
                "master-detail with a delete constraint",
                package_with(
                    MASTER,
                    replace("<type>MasterDetail</type>", "<type>MasterDetail</type><deleteConstraint>SetNull</deleteConstraint>"),
                ),
                Rule::MasterDetail,
                MASTER,
            ),
            (
                "lookup without a delete constraint",
                package_with(LOOKUP, replace("<deleteConstraint>SetNull</deleteConstraint>", "")),
                Rule::LookupDeleteConstraint,
                LOOKUP,
            ),
            (
                "required lookup set to null on delete",
                package_with(LOOKUP, replace("<required>false</required>", "<required>true</required>")),
                Rule::LookupDeleteConstraint,
                LOOKUP,
            ),
            (
                "child relationship name used twice",
                package_with(
                    "objects/Account_Plan_Account__c/fields/Account__c.field-meta.xml",
                    replace("<relationshipName>Account_Plan_Accounts<", "<relationshipName>Account_Plans<"),
                ),
                Rule::Relationship,
                "Account_Plan_Account__c/fields/Account__c.field-meta.xml",
            ),
            (
                "field of an unknown object",
                package_plus(
                    "objects/Nowhere__c/fields/X__c.field-meta.xml",
                    r#"<CustomField xmlns="http://soap.sforce.com/2006/04/metadata"><fullName>X__c</fullName><type>Date</type></CustomField>"#,
                ),
                Rule::FieldObject,
                "Nowhere__c/fields/X__c.field-meta.xml",
            ),
            (
                "permission set naming a missing field",
                package_with(INTEGRATION, replace("Account_Plan__c.Won_Amount__c", "Account_Plan__c.Won_Amount_Typo__c")),
                Rule::PermissionTarget,
                INTEGRATION,
            ),
            (
                "permission set with Task object permissions",
                package_with(INTEGRATION, replace("<object>Contact</object>", "<object>Task</object>")),
                Rule::PermissionTarget,
                INTEGRATION,
            ),
            (
                "permission set granting the master-detail field",
                package_with(
                    USER,
                    replace("<field>Account_Plan_Account__c.Account__c</field>", "<field>Account_Plan_Account__c.Account_Plan__c</field>"),
                ),
                Rule::PermissionOnRequiredField,
                USER,
            ),
            (
                "permission set granting a required standard field",
                package_with(INTEGRATION, replace("<field>Opportunity.Amount</field>", "<field>Opportunity.StageName</field>")),
                Rule::PermissionOnRequiredField,
                INTEGRATION,
            ),
            (
                "edit on a formula field",
                {
                    let mut files = field(
                        "Gap_Share__c",
                        "<type>Percent</type><precision>5</precision><scale>2</scale><formula>Pipeline_Gap__c / Revenue_Target__c</formula>",
                    );
                    let set = files
                        .iter_mut()
                        .find(|f| f.path.ends_with(USER))
                        .unwrap();
                    set.text = set.text.replacen(
                        "<fieldPermissions>",
                        "<fieldPermissions><editable>true</editable><field>Account_Plan__c.Gap_Share__c</field><readable>true</readable></fieldPermissions>\n    <fieldPermissions>",
                        1,
                    );
                    files
                },
                Rule::PermissionDependency,
                USER,
            ),
            (
                "edit without read on an object",
                package_with(
                    INTEGRATION,
                    replace(
                        "<allowRead>true</allowRead>\n        <modifyAllRecords>false</modifyAllRecords>\n        <object>Opportunity</object>",
                        "<allowRead>false</allowRead>\n        <modifyAllRecords>false</modifyAllRecords>\n        <object>Opportunity</object>",
                    ),
                ),
                Rule::PermissionDependency,
                INTEGRATION,
            ),
            (
                "layout naming a missing field",
                package_with(LAYOUT, replace("<field>Won_Amount__c</field>", "<field>Won_Amout__c</field>")),
                Rule::LayoutField,
                LAYOUT,
            ),
            (
                "master-detail field not Required on the layout",
                package_with(
                    JUNCTION_LAYOUT,
                    replace("<behavior>Required</behavior>\n                <field>Account_Plan__c", "<behavior>Edit</behavior>\n                <field>Account_Plan__c"),
                ),
                Rule::LayoutRequiredField,
                JUNCTION_LAYOUT,
            ),
            (
                "a standard object's layout in the package",
                package_plus(
                    "layouts/Account-Account Layout.layout-meta.xml",
                    r#"<Layout xmlns="http://soap.sforce.com/2006/04/metadata"></Layout>"#,
                ),
                Rule::OrgLayout,
                "Account-Account Layout.layout-meta.xml",
            ),
            (
                "related list through a field that does not point here",
                package_with(
                    LAYOUT,
                    replace("<relatedList>Opportunity.Account_Plan__c<", "<relatedList>Opportunity.Plan_Link_Locked__c<"),
                ),
                Rule::RelatedList,
                LAYOUT,
            ),
            (
                "compact layout assignment to a missing compact layout",
                package_with(PLAN, replace("<compactLayoutAssignment>Account_Plan_Compact<", "<compactLayoutAssignment>Plan_Compact<")),
                Rule::CompactLayoutAssignment,
                PLAN,
            ),
            (
                "list view with an unknown scope",
                package_with(
                    "listViews/My_Active_Plans.listView-meta.xml",
                    replace("<filterScope>Mine<", "<filterScope>Mine2<"),
                ),
                Rule::ListView,
                "My_Active_Plans.listView-meta.xml",
            ),
            (
                "tab without a motif",
                package_with("tabs/Account_Plan__c.tab-meta.xml", replace("<motif>Custom18: Form</motif>", "")),
                Rule::Tab,
                "tabs/Account_Plan__c.tab-meta.xml",
            ),
            (
                "application listing a missing tab",
                package_with("applications/Account_Plans.app-meta.xml", replace("<tabs>Account_Plan__c</tabs>", "<tabs>Plan__c</tabs>")),
                Rule::AppTabs,
                "Account_Plans.app-meta.xml",
            ),
            (
                "report type joining through a field name instead of the relationship",
                package_with(REPORT_TYPE, replace("<relationship>Account_Plan_Snapshots__r<", "<relationship>Account_Plan_Snapshot__c<")),
                Rule::ReportType,
                REPORT_TYPE,
            ),
            (
                "report column that is not in the report type's objects",
                package_with(REPORT, replace("Account_Plan_Snapshots__r$Won_Amount__c</field>", "Account_Plan_Snapshots__r$Won__c</field>")),
                Rule::Report,
                REPORT,
            ),
        ];
        for (name, files, rule, file) in cases {
            let violations = run(&files);
            assert!(
                violations
                    .iter()
                    .any(|v| v.rule == rule && v.file.ends_with(file)),
                "{name}: expected [{}] in {file}, got:\n{}",
                rule.name(),
                describe(&violations)
            );
        }
    }

    #[test]
    fn formulas_and_user_lookups_are_not_refused_for_what_they_cannot_have() {
        let mut files = embedded_package();
        for (name, body) in [
            (
                "Health__c",
                "<type>Text</type><formula>IF(Pipeline_Gap__c > 0, 'Gap', 'Covered')</formula>",
            ),
            (
                "Has_Gap__c",
                "<type>Checkbox</type><formula>Pipeline_Gap__c > 0</formula>",
            ),
            (
                "Reviewer__c",
                "<type>Lookup</type><referenceTo>User</referenceTo><relationshipName>Reviewed_Plans</relationshipName>",
            ),
        ] {
            files.push(SourceFile {
                path: format!("{SOURCE_ROOT}objects/Account_Plan__c/fields/{name}.field-meta.xml"),
                text: format!(
                    r#"<CustomField xmlns="http://soap.sforce.com/2006/04/metadata"><fullName>{name}</fullName><label>X</label>{body}</CustomField>"#
                ),
            });
        }
        let violations = run(&files);
        assert!(violations.is_empty(), "{}", describe(&violations));
    }

    #[test]
    fn a_violation_names_the_file_the_rule_and_the_fix() {
        let files = package_with(
            "objects/Account_Plan_Account__c/Account_Plan_Account__c.object-meta.xml",
            replace(
                "<sharingModel>ControlledByParent<",
                "<sharingModel>ReadWrite<",
            ),
        );
        let violations = run(&files);
        assert_eq!(violations.len(), 1, "{}", describe(&violations));
        let line = violations[0].to_string();
        assert_eq!(
            line,
            "force-app/main/default/objects/Account_Plan_Account__c/Account_Plan_Account__c.object-meta.xml: \
             [detail-sharing] Account_Plan_Account__c has a master-detail field, so its <sharingModel> must be ControlledByParent, not ReadWrite"
        );
    }
}
