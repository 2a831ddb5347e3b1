//! A Salesforce-compatible CRM emulator: an HTTP server speaking the Salesforce REST wire format
//! (OAuth2 token endpoint, SOQL query/queryAll with paging, sObject CRUD and Collections,
//! describe, limits), with seeded orgs and fault injection. A product feature: the demo, the
//! integration tests, the benchmarks and staging dry runs all use it.

pub mod org;
pub mod seed;
pub mod soql;
