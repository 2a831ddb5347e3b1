//! The Salesforce REST client: OAuth2 token flows, paged SOQL queries, sObject Collections
//! writes, limits tracking and retries. The only code that speaks HTTP to the CRM.
