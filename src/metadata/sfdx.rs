//! Loads custom objects and fields from Salesforce metadata in SFDX source format
//! (`schema/salesforce/objects/<Object>/<Object>.object-meta.xml` and
//! `schema/salesforce/objects/<Object>/fields/<Field>.field-meta.xml`).
