//! Tests of the CRM client against in-process stub servers.
