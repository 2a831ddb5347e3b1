//! The domain rules of design.md §3 as pure functions: plan membership, linking, rollups,
//! activities, currency conversion and the diff. No I/O, no async, no clock reads: `today`
//! and `now` are parameters.

pub mod activities;
pub mod compute;
pub mod currency;
pub mod diff;
pub mod explain;
pub mod linking;
pub mod membership;
pub mod model;
pub mod rollups;
pub mod snapshot;

#[cfg(test)]
mod compute_tests;
#[cfg(test)]
mod golden_tests;
#[cfg(test)]
mod properties;
#[cfg(test)]
pub(crate) mod testutil;

pub use compute::{compute, Finding, FindingKind, Outcome};
pub use currency::{CurrencyError, CurrencyMode, CurrencyType, DatedConversionRate, Rates};
pub use diff::{diff_rollups, plans_touched_by, FieldChange, FieldValue};
pub use membership::Membership;
pub use model::{today_in, Account, Contact, Event, Opportunity, OrgData, Plan, Rules, Task};
pub use rollups::{RollupField, Rollups};
pub use snapshot::PlanState;
