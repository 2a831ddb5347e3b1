//! A Salesforce-compatible CRM emulator: an HTTP server speaking the Salesforce REST wire format
//! (OAuth2 token endpoint, SOQL query/queryAll with paging, sObject CRUD and Collections,
//! describe, limits), Change Data Capture over CometD (`/cometd/NN.0`), with seeded orgs and
//! fault injection. A product feature: the demo, the
//! integration tests, the benchmarks and staging dry runs all use it.
//!
//! Start one in-process with [`Emulator::builder`], or from the command line with
//! `plansync emulator`.

pub mod auth;
pub mod bulk;
pub mod calls;
mod conn;
pub mod faults;
pub mod ingest;
mod jobs;
pub mod limits;
mod login;
pub mod org;
pub mod query;
mod routes;
pub mod seed;
mod server;
pub mod soql;
pub mod streaming;
pub mod wire;

pub use server::{
    Emulator, EmulatorBuilder, EmulatorConfig, EmulatorError, RunningEmulator, DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET, DEFAULT_SESSION_TTL,
};
