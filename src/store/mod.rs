//! The local SQLite store: migrations from `schema/`, the mirror of CRM records, per-object
//! cursors, the outbox of pending writes, the run log and the write errors.
