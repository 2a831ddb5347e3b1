//! The deploy rules a Salesforce org applies to an SFDX package, checked offline.
//!
//! A real org refuses a whole deployment when one component breaks one of these rules (a
//! detail object whose sharing model is not `ControlledByParent`, a permission set granting
//! access to a master-detail field, a layout naming a field that does not exist, ...). The
//! emulator checks its package with [`check`] at every start, so the package shipped in
//! `schema/salesforce/` cannot drift into a state an admin could not deploy.
//!
//! Pure: the files and the standard objects come in, the violations go out. The rules on each
//! kind of component are in `objects` (objects and fields), `permissions`, `layouts` (layouts,
//! list views, tabs) and `reports`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::sfdx::SourceFile;
use super::ObjectDef;

mod layouts;
mod objects;
mod permissions;
mod reports;

use layouts::{check_field_exists, check_layout, check_list_view, check_tab};
use objects::{check_field, check_object};
use permissions::check_permission_set;
use reports::{check_report, check_report_type};

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
    /// Change Data Capture channel members name a channel (`ChangeEvents` or `X__chn`) and
    /// the change event of an object the org or the package has, and are named
    /// `<channel>_<event>`.
    ChannelMember,
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
            Rule::ChannelMember => "channel-member",
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
            Kind::ChannelMember => "PlatformEventChannelMember",
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
            Kind::ChannelMember => check_channel_member(file, root, &package, &mut out),
            Kind::ReportFolder | Kind::Other => {}
        }
    }
    out
}

/// A Change Data Capture selection: `eventChannel` is the standard `ChangeEvents` or a custom
/// `X__chn`; `selectedEntity` is `<Object>ChangeEvent` of a standard object or
/// `<Base>__ChangeEvent` of a custom object `<Base>__c`; the file is `<channel>_<entity>`.
fn check_channel_member(
    file: &SourceFile,
    root: roxmltree::Node,
    package: &Package,
    out: &mut Vec<Violation>,
) {
    let bad = |detail: String, out: &mut Vec<Violation>| {
        out.push(violation(file, Rule::ChannelMember, detail));
    };
    let channel = text(root, "eventChannel").unwrap_or_default();
    let entity = text(root, "selectedEntity").unwrap_or_default();
    if channel != "ChangeEvents" && !channel.ends_with("__chn") {
        bad(
            format!(
                "eventChannel {channel:?} is neither the standard ChangeEvents channel nor a \
                 custom channel (Name__chn)"
            ),
            out,
        );
    }
    let object = match entity.strip_suffix("__ChangeEvent") {
        Some(base) if !base.is_empty() => Some(format!("{base}__c")),
        _ => entity
            .strip_suffix("ChangeEvent")
            .filter(|base| !base.is_empty() && !base.ends_with('_'))
            .map(str::to_string),
    };
    match object {
        None => bad(
            format!(
                "selectedEntity {entity:?} is not a change event name (AccountChangeEvent, \
                 Custom__ChangeEvent)"
            ),
            out,
        ),
        Some(object) if !package.object_exists(&object) => bad(
            format!("selectedEntity {entity}: the org and the package have no object {object}"),
            out,
        ),
        Some(_) => {}
    }
    let expected = format!("{channel}_{entity}");
    if stem(&file.path) != expected {
        bad(
            format!(
                "the file of this member is named {expected}.platformEventChannelMember-meta.xml \
                 (its full name is the channel and the entity)"
            ),
            out,
        );
    }
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
    ChannelMember,
    Other,
}

fn kind(path: &str) -> Kind<'_> {
    /// The kinds a file's suffix tells wherever the file sits.
    const BY_SUFFIX: &[(&str, Kind<'static>)] = &[
        (".permissionset-meta.xml", Kind::PermissionSet),
        (".layout-meta.xml", Kind::Layout),
        (".tab-meta.xml", Kind::Tab),
        (".app-meta.xml", Kind::App),
        (".reportType-meta.xml", Kind::ReportType),
        (".reportFolder-meta.xml", Kind::ReportFolder),
        (".platformEventChannelMember-meta.xml", Kind::ChannelMember),
    ];
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
    } else if let Some((_, kind)) = BY_SUFFIX.iter().find(|(suffix, _)| file.ends_with(suffix)) {
        *kind
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

#[cfg(test)]
mod tests;
