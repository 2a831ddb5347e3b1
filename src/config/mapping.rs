//! `[mapping]`: the API name of every object and field plansync reads or writes, each with
//! its default (design.md §2). The rollup fields of `[mapping.plan]` come from the table of
//! rollup fields ([`crate::domain::rollups`]).

use serde::{Deserialize, Serialize};

use crate::domain::RollupField;

/// Declares one `[mapping.<object>]` table: every API name with its default.
macro_rules! mapping_table {
    ($(#[$doc:meta])* $name:ident { $($field:ident = $default:literal),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(default, deny_unknown_fields)]
        pub struct $name {
            $(#[doc = concat!("Default `", $default, "`.")] pub $field: String,)*
        }

        impl Default for $name {
            fn default() -> Self {
                $name { $($field: $default.to_string(),)* }
            }
        }
    };
}

mapping_table!(
    /// `[mapping.account]`
    AccountMapping {
        object = "Account",
        name = "Name",
        parent_id = "ParentId",
        owner_id = "OwnerId",
    }
);

mapping_table!(
    /// `[mapping.opportunity]`
    OpportunityMapping {
        object = "Opportunity",
        name = "Name",
        account_id = "AccountId",
        amount = "Amount",
        close_date = "CloseDate",
        stage_name = "StageName",
        is_closed = "IsClosed",
        is_won = "IsWon",
        probability = "Probability",
        forecast_category = "ForecastCategoryName",
        currency_iso_code = "CurrencyIsoCode",
        owner_id = "OwnerId",
        plan_link = "Account_Plan__c",
        plan_link_locked = "Plan_Link_Locked__c",
    }
);

mapping_table!(
    /// `[mapping.contact]`
    ContactMapping {
        object = "Contact",
        account_id = "AccountId",
        name = "Name",
        title = "Title",
    }
);

mapping_table!(
    /// `[mapping.task]`
    TaskMapping {
        object = "Task",
        account_id = "AccountId",
        what_id = "WhatId",
        who_id = "WhoId",
        activity_date = "ActivityDate",
        is_closed = "IsClosed",
        status = "Status",
    }
);

mapping_table!(
    /// `[mapping.event]`
    EventMapping {
        object = "Event",
        account_id = "AccountId",
        what_id = "WhatId",
        who_id = "WhoId",
        activity_date = "ActivityDate",
        start_date_time = "StartDateTime",
        end_date_time = "EndDateTime",
        is_all_day_event = "IsAllDayEvent",
    }
);

/// Declares `[mapping.plan]`: its own keys, then one key per row of the rollup table (the
/// field's name, defaulting to its default API name), then the keys that follow them.
macro_rules! plan_mapping {
    (
        $(#[$doc:meta])* $name:ident
        { $($lead:ident = $lead_default:literal,)* }
        { $($trail:ident = $trail_default:literal,)* }
        $($(#[$field_doc:meta])* $variant:ident $field:ident: $ty:ty => $api:literal, $scale:expr;)*
    ) => {
        mapping_table!(
            $(#[$doc])*
            $name {
                $($lead = $lead_default,)*
                $($field = $api,)*
                $($trail = $trail_default,)*
            }
        );

        impl $name {
            /// The configured API name of a rollup output field.
            pub fn rollup(&self, field: RollupField) -> &str {
                match field {
                    $(RollupField::$variant => &self.$field,)*
                }
            }
        }
    };
}

crate::domain::rollups::rollup_table!(plan_mapping! {
    /// `[mapping.plan]`: the plan's inputs and the rollup fields written to it.
    PlanMapping
    {
        object = "Account_Plan__c",
        name = "Name",
        account = "Account__c",
        period_start = "Period_Start__c",
        period_end = "Period_End__c",
        revenue_target = "Revenue_Target__c",
        close_ratio = "Close_Ratio__c",
        include_child_accounts = "Include_Child_Accounts__c",
        status = "Status__c",
        currency_iso_code = "CurrencyIsoCode",
        owner_id = "OwnerId",
    }
    {
        rollups_changed_at = "Rollups_Changed_At__c",
        sync_problem = "Sync_Problem__c",
    }
});

mapping_table!(
    /// `[mapping.plan_account]`: the extra accounts of a multi-account plan.
    PlanAccountMapping {
        object = "Account_Plan_Account__c",
        plan = "Account_Plan__c",
        account = "Account__c",
    }
);

mapping_table!(
    /// `[mapping.snapshot]`: the metric fields carry the same API names as on the plan; the
    /// plan's state on the date (target, close ratio used, status) and, in a multi-currency
    /// org, the currency of its amounts have their own fields.
    SnapshotMapping {
        object = "Account_Plan_Snapshot__c",
        plan = "Account_Plan__c",
        snapshot_date = "Snapshot_Date__c",
        snapshot_key = "Snapshot_Key__c",
        revenue_target = "Revenue_Target__c",
        close_ratio_used = "Close_Ratio_Used__c",
        plan_status = "Plan_Status__c",
        currency_iso_code = "CurrencyIsoCode",
    }
);

mapping_table!(
    /// `[mapping.currency_type]`
    CurrencyTypeMapping {
        object = "CurrencyType",
        iso_code = "IsoCode",
        conversion_rate = "ConversionRate",
        is_corporate = "IsCorporate",
    }
);

mapping_table!(
    /// `[mapping.dated_conversion_rate]`
    DatedConversionRateMapping {
        object = "DatedConversionRate",
        iso_code = "IsoCode",
        conversion_rate = "ConversionRate",
        start_date = "StartDate",
        next_start_date = "NextStartDate",
    }
);

/// `[mapping]`: the API name of every object and field plansync reads or writes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Mapping {
    pub account: AccountMapping,
    pub opportunity: OpportunityMapping,
    pub contact: ContactMapping,
    pub task: TaskMapping,
    pub event: EventMapping,
    pub plan: PlanMapping,
    pub plan_account: PlanAccountMapping,
    pub snapshot: SnapshotMapping,
    pub currency_type: CurrencyTypeMapping,
    pub dated_conversion_rate: DatedConversionRateMapping,
}
