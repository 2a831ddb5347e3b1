//! The standard objects plansync reads, described as a new org describes them, and the
//! [`catalog`] of an org: these objects plus the project's SFDX metadata.

use super::sfdx::{self, add_system_fields, read_only, MetadataError};
use super::{Catalog, FieldDef, FieldType, ObjectDef, PicklistValue};

/// The opportunity stages a new org starts with: (ApiName, DefaultProbability,
/// ForecastCategoryName, IsClosed, IsWon), in SortOrder.
pub const OPPORTUNITY_STAGES: &[(&str, u32, &str, bool, bool)] = &[
    ("Prospecting", 10, "Pipeline", false, false),
    ("Qualification", 10, "Pipeline", false, false),
    ("Needs Analysis", 20, "Pipeline", false, false),
    ("Value Proposition", 50, "Pipeline", false, false),
    ("Id. Decision Makers", 60, "Pipeline", false, false),
    ("Perception Analysis", 70, "Pipeline", false, false),
    ("Proposal/Price Quote", 75, "Pipeline", false, false),
    ("Negotiation/Review", 90, "Pipeline", false, false),
    ("Closed Won", 100, "Closed", true, true),
    ("Closed Lost", 0, "Omitted", true, false),
];

/// The task statuses a new org starts with: (ApiName, IsClosed, IsDefault), in SortOrder.
pub const TASK_STATUSES: &[(&str, bool, bool)] = &[
    ("Not Started", false, true),
    ("In Progress", false, false),
    ("Completed", true, false),
    ("Waiting on someone else", false, false),
    ("Deferred", false, false),
];

/// The opportunity types a new org starts with.
pub const OPPORTUNITY_TYPES: &[&str] = &[
    "Existing Customer - Upgrade",
    "Existing Customer - Replacement",
    "Existing Customer - Downgrade",
    "New Customer",
];

/// The lead sources a new org starts with (Lead, Opportunity and Contact share them).
pub const LEAD_SOURCES: &[&str] = &[
    "Web",
    "Phone Inquiry",
    "Partner Referral",
    "Purchased List",
    "Other",
];

/// Forecast category names and the ForecastCategory value each implies.
pub const FORECAST_CATEGORIES: &[(&str, &str)] = &[
    ("Pipeline", "Pipeline"),
    ("Best Case", "BestCase"),
    ("Commit", "Forecast"),
    ("Most Likely", "MostLikely"),
    ("Omitted", "Omitted"),
    ("Closed", "Closed"),
];

/// The currencies a multi-currency emulated org has; the first is the corporate currency.
pub const CURRENCIES: &[&str] = &["USD", "EUR", "GBP", "JPY", "CAD", "AUD", "CHF"];

/// Objects that get `CurrencyIsoCode` in a multi-currency org.
const CURRENCY_BEARING: &[&str] = &[
    "Account",
    "Contact",
    "Opportunity",
    "Task",
    "Event",
    "Account_Plan__c",
    "Account_Plan_Account__c",
    "Account_Plan_Snapshot__c",
];

fn field(name: &str, label: &str, ty: FieldType) -> FieldDef {
    let mut f = FieldDef::new(name, ty);
    f.label = label.to_string();
    f.custom = false;
    f
}

fn required(mut f: FieldDef) -> FieldDef {
    f.nillable = false;
    f
}

fn calculated(mut f: FieldDef) -> FieldDef {
    read_only(&mut f);
    f.calculated = true;
    f.defaulted_on_create = true;
    f
}

fn sized(mut f: FieldDef, length: u32) -> FieldDef {
    f.length = length;
    f
}

fn numeric(mut f: FieldDef, precision: u32, scale: u32) -> FieldDef {
    f.precision = precision;
    f.scale = scale;
    f
}

fn reference(name: &str, label: &str, to: &[&str], relationship: &str) -> FieldDef {
    let mut f = field(name, label, FieldType::Reference);
    f.reference_to = to.iter().map(|s| s.to_string()).collect();
    f.relationship_name = Some(relationship.to_string());
    f
}

fn picklist(name: &str, label: &str, values: &[&str], restricted: bool) -> FieldDef {
    let mut f = field(name, label, FieldType::Picklist);
    f.picklist_values = values.iter().map(|v| PicklistValue::new(v)).collect();
    f.restricted_picklist = restricted;
    f
}

fn with_default(mut f: FieldDef, default: &str) -> FieldDef {
    for v in &mut f.picklist_values {
        v.default = v.value == default;
    }
    f.defaulted_on_create = true;
    f
}

fn owner() -> FieldDef {
    let mut f = reference("OwnerId", "Owner ID", &["User"], "Owner");
    f.nillable = false;
    f.defaulted_on_create = true;
    f
}

fn object(name: &str, prefix: &str, label: &str, plural: &str, fields: Vec<FieldDef>) -> ObjectDef {
    let mut o = ObjectDef::new(name, prefix);
    o.label = label.to_string();
    o.label_plural = plural.to_string();
    add_system_fields(&mut o);
    for f in fields {
        o.add_field(f);
    }
    o
}

fn read_only_object(mut o: ObjectDef) -> ObjectDef {
    o.createable = false;
    o.updateable = false;
    o.deletable = false;
    for f in o.fields.values_mut() {
        read_only(f);
    }
    o
}

fn activity_links() -> Vec<FieldDef> {
    vec![
        reference(
            "WhatId",
            "Related To ID",
            &["Account", "Opportunity"],
            "What",
        ),
        reference("WhoId", "Name ID", &["Contact"], "Who"),
        calculated(reference(
            "AccountId",
            "Account ID",
            &["Account"],
            "Account",
        )),
    ]
}

/// A task or event: its own fields, then what every activity has (the records it is about,
/// its owner, the archive flag).
fn activity(name: &str, prefix: &str, plural: &str, mut fields: Vec<FieldDef>) -> ObjectDef {
    fields.extend(activity_links());
    fields.push(owner());
    fields.push(calculated(field(
        "IsArchived",
        "Archived",
        FieldType::Boolean,
    )));
    object(name, prefix, name, plural, fields)
}

/// A read-only object holding the values of a standard picklist (opportunity stages, task
/// statuses): MasterLabel and ApiName, the value's own fields, SortOrder.
fn picklist_value_object(
    name: &str,
    prefix: &str,
    label: &str,
    plural: &str,
    own: Vec<FieldDef>,
) -> ObjectDef {
    let mut fields = vec![
        field("MasterLabel", "Master Label", FieldType::String),
        field("ApiName", "Api Name", FieldType::String),
    ];
    fields.extend(own);
    fields.push(field("SortOrder", "Sort Order", FieldType::Int));
    read_only_object(object(name, prefix, label, plural, fields))
}

fn first_name() -> FieldDef {
    sized(field("FirstName", "First Name", FieldType::String), 40)
}

fn last_name() -> FieldDef {
    sized(
        required(field("LastName", "Last Name", FieldType::String)),
        80,
    )
}

/// The person's full name, which the org derives from the first and last names.
fn full_name() -> FieldDef {
    sized(
        calculated(field("Name", "Full Name", FieldType::String)),
        121,
    )
}

fn iso_code() -> FieldDef {
    required(picklist("IsoCode", "Currency ISO Code", CURRENCIES, true))
}

fn conversion_rate() -> FieldDef {
    required(numeric(
        field("ConversionRate", "Conversion Rate", FieldType::Double),
        18,
        6,
    ))
}

/// The standard objects of a new org (without the multi-currency objects' availability
/// decided: [`catalog`] keeps CurrencyType and DatedConversionRate only in multi-currency orgs).
pub fn standard_objects() -> Vec<ObjectDef> {
    let stage_names: Vec<&str> = OPPORTUNITY_STAGES.iter().map(|s| s.0).collect();
    let status_names: Vec<&str> = TASK_STATUSES.iter().map(|s| s.0).collect();
    let forecast_names: Vec<&str> = FORECAST_CATEGORIES.iter().map(|s| s.0).collect();
    let forecast_values: Vec<&str> = FORECAST_CATEGORIES.iter().map(|s| s.1).collect();

    let account = object(
        "Account",
        "001",
        "Account",
        "Accounts",
        vec![
            sized(
                required(field("Name", "Account Name", FieldType::String)),
                255,
            ),
            reference("ParentId", "Parent Account ID", &["Account"], "Parent"),
            owner(),
            picklist(
                "Type",
                "Account Type",
                &[
                    "Prospect",
                    "Customer - Direct",
                    "Customer - Channel",
                    "Channel Partner / Reseller",
                    "Installation Partner",
                    "Technology Partner",
                    "Other",
                ],
                false,
            ),
            picklist(
                "Industry",
                "Industry",
                &[
                    "Agriculture",
                    "Banking",
                    "Technology",
                    "Manufacturing",
                    "Retail",
                    "Healthcare",
                    "Energy",
                    "Education",
                    "Other",
                ],
                false,
            ),
            numeric(
                field("AnnualRevenue", "Annual Revenue", FieldType::Currency),
                18,
                0,
            ),
            field("Description", "Account Description", FieldType::Textarea),
            field("Website", "Website", FieldType::Url),
            sized(field("Phone", "Account Phone", FieldType::Phone), 40),
            sized(
                field("BillingStreet", "Billing Street", FieldType::Textarea),
                255,
            ),
            sized(field("BillingCity", "Billing City", FieldType::String), 40),
            sized(
                field("BillingState", "Billing State/Province", FieldType::String),
                80,
            ),
            sized(
                field(
                    "BillingPostalCode",
                    "Billing Zip/Postal Code",
                    FieldType::String,
                ),
                20,
            ),
            sized(
                field("BillingCountry", "Billing Country", FieldType::String),
                80,
            ),
            numeric(
                field("NumberOfEmployees", "Employees", FieldType::Int),
                8,
                0,
            ),
        ],
    );

    let contact = object(
        "Contact",
        "003",
        "Contact",
        "Contacts",
        vec![
            reference("AccountId", "Account ID", &["Account"], "Account"),
            first_name(),
            last_name(),
            full_name(),
            sized(field("Title", "Title", FieldType::String), 128),
            field("Email", "Email", FieldType::Email),
            sized(field("Phone", "Business Phone", FieldType::Phone), 40),
            sized(
                field("MailingCountry", "Mailing Country", FieldType::String),
                80,
            ),
            owner(),
        ],
    );

    let mut probability = numeric(
        field("Probability", "Probability (%)", FieldType::Percent),
        3,
        0,
    );
    probability.defaulted_on_create = true;
    let mut forecast_name = picklist(
        "ForecastCategoryName",
        "Forecast Category",
        &forecast_names,
        true,
    );
    forecast_name.defaulted_on_create = true;
    let opportunity = object(
        "Opportunity",
        "006",
        "Opportunity",
        "Opportunities",
        vec![
            reference("AccountId", "Account ID", &["Account"], "Account"),
            sized(required(field("Name", "Name", FieldType::String)), 120),
            numeric(field("Amount", "Amount", FieldType::Currency), 16, 2),
            required(field("CloseDate", "Close Date", FieldType::Date)),
            sized(
                required(picklist("StageName", "Stage", &stage_names, true)),
                255,
            ),
            calculated(field("IsClosed", "Closed", FieldType::Boolean)),
            calculated(field("IsWon", "Won", FieldType::Boolean)),
            calculated(picklist(
                "ForecastCategory",
                "Forecast Category",
                &forecast_values,
                true,
            )),
            calculated(numeric(
                field("ExpectedRevenue", "Expected Amount", FieldType::Currency),
                16,
                2,
            )),
            probability,
            forecast_name,
            field("Description", "Description", FieldType::Textarea),
            picklist("Type", "Opportunity Type", OPPORTUNITY_TYPES, false),
            picklist("LeadSource", "Lead Source", LEAD_SOURCES, false),
            field("NextStep", "Next Step", FieldType::String),
            owner(),
        ],
    );

    let stage = picklist_value_object(
        "OpportunityStage",
        "01J",
        "Opportunity Stage",
        "Opportunity Stages",
        vec![
            field("IsActive", "Active", FieldType::Boolean),
            field("IsClosed", "Closed", FieldType::Boolean),
            field("IsWon", "Won", FieldType::Boolean),
            picklist(
                "ForecastCategoryName",
                "Forecast Category",
                &forecast_names,
                true,
            ),
            numeric(
                field("DefaultProbability", "Probability (%)", FieldType::Percent),
                3,
                0,
            ),
        ],
    );

    let task_fields = vec![
        field("Subject", "Subject", FieldType::String),
        with_default(
            required(picklist("Status", "Status", &status_names, true)),
            "Not Started",
        ),
        with_default(
            required(picklist(
                "Priority",
                "Priority",
                &["High", "Normal", "Low"],
                true,
            )),
            "Normal",
        ),
        field("ActivityDate", "Due Date Only", FieldType::Date),
        calculated(field("IsClosed", "Closed", FieldType::Boolean)),
    ];
    let task = activity("Task", "00T", "Tasks", task_fields);

    let task_status = picklist_value_object(
        "TaskStatus",
        "01K",
        "Task Status",
        "Task Statuses",
        vec![
            field("IsClosed", "Closed", FieldType::Boolean),
            field("IsDefault", "Is Default", FieldType::Boolean),
        ],
    );

    let mut all_day = field("IsAllDayEvent", "All-Day Event", FieldType::Boolean);
    all_day.defaulted_on_create = true;
    let event_fields = vec![
        field("Subject", "Subject", FieldType::String),
        field("StartDateTime", "Start Date Time", FieldType::Datetime),
        field("EndDateTime", "End Date Time", FieldType::Datetime),
        field("ActivityDate", "Due Date Only", FieldType::Date),
        field("ActivityDateTime", "Due Date Time", FieldType::Datetime),
        all_day,
        numeric(field("DurationInMinutes", "Duration", FieldType::Int), 8, 0),
    ];
    let event = activity("Event", "00U", "Events", event_fields);

    let user = object(
        "User",
        "005",
        "User",
        "Users",
        vec![
            sized(
                required(field("Username", "Username", FieldType::String)),
                80,
            ),
            full_name(),
            first_name(),
            last_name(),
            required(field("Email", "Email", FieldType::Email)),
            field("IsActive", "Active", FieldType::Boolean),
            picklist(
                "TimeZoneSidKey",
                "Time Zone",
                &[
                    "America/Los_Angeles",
                    "America/New_York",
                    "Europe/London",
                    "Europe/Paris",
                    "UTC",
                ],
                true,
            ),
        ],
    );

    let mut currency_type = object(
        "CurrencyType",
        "01L",
        "Currency Type",
        "Currency Types",
        vec![
            iso_code(),
            conversion_rate(),
            numeric(
                field("DecimalPlaces", "Decimal Places", FieldType::Int),
                9,
                0,
            ),
            field("IsActive", "Active", FieldType::Boolean),
            field("IsCorporate", "Corporate", FieldType::Boolean),
        ],
    );
    currency_type.deletable = false;

    let dated_rate = object(
        "DatedConversionRate",
        "04w",
        "Dated Conversion Rate",
        "Dated Conversion Rates",
        vec![
            iso_code(),
            conversion_rate(),
            required(field("StartDate", "Start Date", FieldType::Date)),
            calculated(field("NextStartDate", "Next Start Date", FieldType::Date)),
        ],
    );

    vec![
        account,
        contact,
        opportunity,
        stage,
        task,
        task_status,
        event,
        user,
        currency_type,
        dated_rate,
    ]
}

/// The objects an org has: the standard objects and the project's SFDX metadata, with
/// `CurrencyIsoCode` on currency-bearing objects (and CurrencyType, DatedConversionRate)
/// only when `multi_currency`.
pub fn catalog(multi_currency: bool) -> Result<Catalog, MetadataError> {
    build(multi_currency, sfdx::embedded()?)
}

/// Like [`catalog`], with the custom metadata given (for example from [`sfdx::load_dir`]).
pub fn build(multi_currency: bool, schema: sfdx::SfdxSchema) -> Result<Catalog, MetadataError> {
    let mut catalog = Catalog::new();
    for o in standard_objects() {
        if !multi_currency && matches!(o.name.as_str(), "CurrencyType" | "DatedConversionRate") {
            continue;
        }
        catalog.insert(o);
    }
    for o in schema.objects {
        catalog.insert(o);
    }
    for (object, f) in schema.extra_fields {
        let def = catalog
            .object_mut(&object)
            .ok_or_else(|| MetadataError::UnknownObject {
                file: format!("{object}/fields/{}.field-meta.xml", f.name),
                object: object.clone(),
            })?;
        def.add_field(f);
    }
    if multi_currency {
        for name in CURRENCY_BEARING {
            if let Some(def) = catalog.object_mut(name) {
                let mut f = with_default(
                    picklist("CurrencyIsoCode", "Currency ISO Code", CURRENCIES, true),
                    CURRENCIES[0],
                );
                f.length = 3;
                f.nillable = false;
                def.add_field(f);
            }
        }
    }
    Ok(catalog)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ty(catalog: &Catalog, object: &str, field: &str) -> (FieldType, u32, u32) {
        let f = catalog
            .object(object)
            .and_then(|o| o.field(field))
            .unwrap_or_else(|| panic!("{object}.{field} missing"));
        (f.field_type, f.precision, f.scale)
    }

    #[test]
    fn every_design_field_exists_with_its_type() {
        let c = catalog(true).unwrap();
        let read = [
            ("Account", "Id Name ParentId OwnerId SystemModstamp IsDeleted"),
            ("Opportunity", "Id Name AccountId Amount CloseDate StageName IsClosed IsWon Probability ForecastCategoryName CurrencyIsoCode OwnerId Account_Plan__c Plan_Link_Locked__c SystemModstamp IsDeleted"),
            ("Contact", "Id AccountId Name Title SystemModstamp IsDeleted"),
            ("Task", "Id AccountId WhatId WhoId ActivityDate IsClosed Status SystemModstamp IsDeleted"),
            ("Event", "Id AccountId WhatId WhoId ActivityDate StartDateTime EndDateTime IsAllDayEvent SystemModstamp IsDeleted"),
            ("Account_Plan__c", "Id Name Account__c Period_Start__c Period_End__c Revenue_Target__c Close_Ratio__c Include_Child_Accounts__c Status__c CurrencyIsoCode OwnerId SystemModstamp IsDeleted"),
            ("Account_Plan_Account__c", "Id Account_Plan__c Account__c"),
            ("CurrencyType", "IsoCode ConversionRate IsCorporate"),
            ("DatedConversionRate", "IsoCode ConversionRate StartDate NextStartDate"),
            ("Account_Plan_Snapshot__c", "Account_Plan__c Snapshot_Date__c Snapshot_Key__c"),
        ];
        for (object, fields) in read {
            for f in fields.split_whitespace() {
                ty(&c, object, f);
            }
        }
        let amounts = "Won_Amount__c Lost_Amount__c Open_Pipeline__c Weighted_Pipeline__c Expected_Revenue__c New_Sales_Needed__c Pipeline_Needed__c Pipeline_Gap__c Forecast_Target_Variance__c";
        let counts = "Won_Count__c Lost_Count__c Open_Count__c Overdue_Task_Count__c Contact_Count__c Engaged_Contact_Count__c";
        for object in ["Account_Plan__c", "Account_Plan_Snapshot__c"] {
            for f in amounts.split_whitespace() {
                assert_eq!(
                    ty(&c, object, f),
                    (FieldType::Currency, 16, 2),
                    "{object}.{f}"
                );
            }
            for f in counts.split_whitespace() {
                assert_eq!(ty(&c, object, f), (FieldType::Int, 9, 0), "{object}.{f}");
            }
            assert_eq!(
                ty(&c, object, "Coverage_Ratio__c"),
                (FieldType::Double, 10, 2)
            );
            assert_eq!(ty(&c, object, "Attainment__c"), (FieldType::Percent, 8, 2));
            assert_eq!(ty(&c, object, "Last_Activity_Date__c").0, FieldType::Date);
            assert_eq!(ty(&c, object, "Next_Activity_Date__c").0, FieldType::Date);
        }
        assert_eq!(
            ty(&c, "Account_Plan__c", "Rollups_Changed_At__c").0,
            FieldType::Datetime
        );
        assert_eq!(
            ty(&c, "Account_Plan__c", "Revenue_Target__c"),
            (FieldType::Currency, 16, 2)
        );
        assert_eq!(
            ty(&c, "Opportunity", "Amount"),
            (FieldType::Currency, 16, 2)
        );
        assert_eq!(
            ty(&c, "Opportunity", "Probability"),
            (FieldType::Percent, 3, 0)
        );
        assert_eq!(
            ty(&c, "CurrencyType", "ConversionRate"),
            (FieldType::Double, 18, 6)
        );
    }

    #[test]
    fn standard_fields_admin_scripts_use_are_described_as_a_new_org_does() {
        let c = catalog(false).unwrap();
        // (object, field, type, length, precision)
        let expected = [
            ("Account", "Description", FieldType::Textarea, 32000, 0),
            ("Account", "Website", FieldType::Url, 255, 0),
            ("Account", "Phone", FieldType::Phone, 40, 0),
            ("Account", "BillingStreet", FieldType::Textarea, 255, 0),
            ("Account", "BillingCity", FieldType::String, 40, 0),
            ("Account", "BillingState", FieldType::String, 80, 0),
            ("Account", "BillingPostalCode", FieldType::String, 20, 0),
            ("Account", "BillingCountry", FieldType::String, 80, 0),
            ("Account", "NumberOfEmployees", FieldType::Int, 0, 8),
            ("Contact", "Phone", FieldType::Phone, 40, 0),
            ("Contact", "MailingCountry", FieldType::String, 80, 0),
            ("Opportunity", "Description", FieldType::Textarea, 32000, 0),
            ("Opportunity", "Type", FieldType::Picklist, 255, 0),
            ("Opportunity", "LeadSource", FieldType::Picklist, 255, 0),
            ("Opportunity", "NextStep", FieldType::String, 255, 0),
        ];
        for (object, name, ty, length, precision) in expected {
            let f = c.object(object).and_then(|o| o.field(name)).unwrap();
            assert_eq!(
                (f.field_type, f.length, f.precision, f.scale),
                (ty, length, precision, 0),
                "{object}.{name}"
            );
            assert!(
                f.createable && f.updateable && f.nillable,
                "{object}.{name}"
            );
            assert!(!f.custom, "{object}.{name}");
        }
        let opp = c.object("Opportunity").unwrap();
        let values = |n: &str| -> Vec<String> {
            opp.field(n)
                .unwrap()
                .picklist_values
                .iter()
                .map(|v| v.value.clone())
                .collect()
        };
        assert_eq!(values("Type")[3], "New Customer");
        assert!(values("LeadSource").contains(&"Partner Referral".to_string()));
        assert!(!opp.field("LeadSource").unwrap().restricted_picklist);
    }

    #[test]
    fn relationships_and_prefixes() {
        let c = catalog(false).unwrap();
        let opp = c.object("opportunity").unwrap();
        assert_eq!(
            opp.relationship("Account_Plan__r").unwrap().name,
            "Account_Plan__c"
        );
        assert_eq!(opp.relationship("account").unwrap().name, "AccountId");
        let task = c.object("Task").unwrap();
        assert_eq!(
            task.relationship("What").unwrap().reference_to,
            ["Account", "Opportunity"]
        );
        assert!(!task.field("AccountId").unwrap().createable);
        assert!(task.field("Status").unwrap().defaulted_on_create);
        assert_eq!(c.object_by_prefix("a0P").unwrap().name, "Account_Plan__c");
        assert_eq!(
            c.object_by_prefix("a0Q").unwrap().name,
            "Account_Plan_Account__c"
        );
        assert_eq!(c.object_by_prefix("006").unwrap().name, "Opportunity");
        let mut prefixes: Vec<&str> = c.objects().map(|o| o.key_prefix.as_str()).collect();
        prefixes.sort();
        let n = prefixes.len();
        prefixes.dedup();
        assert_eq!(prefixes.len(), n, "key prefixes are distinct");
        assert!(!c.object("OpportunityStage").unwrap().createable);
    }

    #[test]
    fn currency_fields_only_in_multi_currency_orgs() {
        let single = catalog(false).unwrap();
        assert!(single
            .object("Opportunity")
            .unwrap()
            .field("CurrencyIsoCode")
            .is_none());
        assert!(single.object("CurrencyType").is_none());
        let multi = catalog(true).unwrap();
        assert!(multi
            .object("Account_Plan__c")
            .unwrap()
            .field("CurrencyIsoCode")
            .is_some());
        assert!(multi.object("DatedConversionRate").is_some());
    }

    #[test]
    fn system_fields_are_read_only_everywhere() {
        let c = catalog(true).unwrap();
        for o in c.objects() {
            for f in [
                "Id",
                "IsDeleted",
                "CreatedDate",
                "CreatedById",
                "LastModifiedDate",
                "LastModifiedById",
                "SystemModstamp",
            ] {
                let def = o.field(f).unwrap_or_else(|| panic!("{}.{f}", o.name));
                assert!(!def.createable && !def.updateable, "{}.{f}", o.name);
            }
        }
    }
}
