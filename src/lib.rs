//! plansync keeps account plans in a Salesforce-style CRM up to date.
//!
//! It pulls accounts, opportunities, activities and plans from the CRM's REST API into a local
//! SQLite mirror, links every opportunity to the plan whose accounts and period contain its close
//! date, recomputes each plan's rollups with pure functions, and writes back only what changed.
//! It also ships a Salesforce-compatible emulator used by the demo, the tests and benchmarks.
//!
//! The dependency direction (see `docs` in the README): `cli` → `sync` → (`crm`, `store`,
//! `domain`); `emulator` depends on nothing but `metadata`; `domain` is pure (no I/O, no clock).

pub mod cli;
pub mod config;
pub mod crm;
pub mod daemon;
pub mod domain;
pub mod emulator;
pub mod error;
pub mod metadata;
pub mod store;
pub mod sync;
