//! plansync keeps account plans in a Salesforce-style CRM up to date.
//!
//! It pulls accounts, opportunities, activities and plans from the CRM's REST API into a local
//! SQLite mirror, links every opportunity to the plan whose accounts and period contain its close
//! date, recomputes each plan's rollups with pure functions, and writes back only what changed.
//! It also ships a Salesforce-compatible emulator used by the demo, the tests and benchmarks.
//!
//! The dependency direction (see `docs` in the README): `cli` → `sync` → (`crm`, `store`,
//! `domain`); `emulator` depends on nothing but `metadata`; `domain` is pure (no I/O, no clock).

#[allow(
    clippy::disallowed_methods,
    reason = "the command line reads the clock for what it shows and the dates it is asked about"
)]
pub mod cli;
pub mod clock;
pub mod config;
#[allow(
    clippy::disallowed_methods,
    reason = "the client times its requests and its token's expiry"
)]
pub mod crm;
#[allow(
    clippy::disallowed_methods,
    reason = "the daemon schedules cycles, pings the watchdog and reports uptime by the clock"
)]
pub mod daemon;
pub mod domain;
#[allow(
    clippy::disallowed_methods,
    reason = "the emulator is a server: it stamps records and tokens with the time it serves them"
)]
pub mod emulator;
pub mod error;
pub mod metadata;
pub mod store;
pub mod sync;
