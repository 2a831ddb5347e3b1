-- plansync store, schema version 1.
-- Migrations are append-only: once released, never edit this file; add 0002_<what>.sql.
-- Timestamps are RFC 3339 UTC text with millisecond precision ("2024-05-01T12:00:00.000Z"),
-- so text order is time order. JSON columns hold serde_json text (numbers keep their text).

-- The mirror: every CRM record plansync reads, kept generically (field API names are
-- configurable). Rows whose IsDeleted is true stay as tombstones (is_deleted = 1) so the
-- sync engine can still see what a deleted record was linked to; the live view excludes them.
CREATE TABLE mirror_records (
    object          TEXT    NOT NULL CHECK (length(object) > 0),
    id              TEXT    NOT NULL CHECK (length(id) > 0),
    system_modstamp TEXT    NOT NULL,
    is_deleted      INTEGER NOT NULL CHECK (is_deleted IN (0, 1)),
    fields          TEXT    NOT NULL CHECK (json_valid(fields)),
    PRIMARY KEY (object, id)
) WITHOUT ROWID;

CREATE INDEX mirror_records_live ON mirror_records (object, is_deleted, id);

-- Per-object pull position: the pair (SystemModstamp, Id) of the last record stored.
CREATE TABLE cursors (
    object          TEXT NOT NULL PRIMARY KEY CHECK (length(object) > 0),
    system_modstamp TEXT NOT NULL,
    id              TEXT NOT NULL
) WITHOUT ROWID;

-- The outbox of writes to the CRM: NEW -> SENT -> SUCCEEDED | FAILED | IGNORED.
CREATE TABLE outbox (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    object             TEXT    NOT NULL CHECK (length(object) > 0),
    record_id          TEXT    NOT NULL CHECK (length(record_id) > 0),
    kind               TEXT    NOT NULL CHECK (kind IN ('update', 'upsert')),
    external_id_field  TEXT    CHECK ((kind = 'upsert') = (external_id_field IS NOT NULL)),
    fields             TEXT    NOT NULL CHECK (json_valid(fields)),
    reason             TEXT    NOT NULL,
    status             TEXT    NOT NULL
                       CHECK (status IN ('new', 'sent', 'succeeded', 'failed', 'ignored')),
    attempts           INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error_code    TEXT,
    last_error_message TEXT,
    permanent          INTEGER NOT NULL DEFAULT 0 CHECK (permanent IN (0, 1)),
    next_attempt_at    TEXT,
    superseded_by      INTEGER,
    created_at         TEXT    NOT NULL,
    updated_at         TEXT    NOT NULL
);

CREATE INDEX outbox_status ON outbox (status, id);
CREATE INDEX outbox_record ON outbox (object, record_id);

-- Outbox rows in a final state, moved here after the retention period.
CREATE TABLE outbox_archive (
    id                 INTEGER PRIMARY KEY,
    object             TEXT    NOT NULL,
    record_id          TEXT    NOT NULL,
    kind               TEXT    NOT NULL,
    external_id_field  TEXT,
    fields             TEXT    NOT NULL,
    reason             TEXT    NOT NULL,
    status             TEXT    NOT NULL,
    attempts           INTEGER NOT NULL,
    last_error_code    TEXT,
    last_error_message TEXT,
    permanent          INTEGER NOT NULL,
    superseded_by      INTEGER,
    created_at         TEXT    NOT NULL,
    updated_at         TEXT    NOT NULL
);

-- The run log: one row per sync, full or snapshot run.
CREATE TABLE runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        TEXT NOT NULL CHECK (length(kind) > 0),
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    outcome     TEXT CHECK (outcome IN ('succeeded', 'failed', 'partial')),
    summary     TEXT CHECK (summary IS NULL OR json_valid(summary))
);

-- Problems found by the last recompute (linking ambiguities, bad plan periods, cycles ...).
CREATE TABLE findings (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    kind    TEXT NOT NULL,
    subject TEXT NOT NULL,
    message TEXT NOT NULL
);

CREATE TABLE meta (
    key   TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
