-- plansync store, schema version 2: each plan's headline metrics over time.
-- Migrations are append-only: once released, never edit this file; add 0003_<what>.sql.

-- One row per change: a cycle that recomputes a plan's rollups adds a row only when one of
-- these values (or the plan's currency) differs from that plan's previous row, in the same
-- transaction that queues the cycle's writes. Amounts are decimal text in the plan's currency
-- (`currency`, NULL for the corporate currency of a single-currency org), rounded to the CRM
-- fields' 2 places; NULL where the rollup is null (no target). `run_id` names the run in the
-- run log (which keeps 90 days, so no foreign key). `recorded_at` is RFC 3339 UTC text with
-- milliseconds, as everywhere in the store.
CREATE TABLE plan_history (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    plan_id     TEXT    NOT NULL CHECK (length(plan_id) > 0),
    run_id      INTEGER NOT NULL,
    recorded_at TEXT    NOT NULL,
    currency    TEXT,
    won         TEXT    NOT NULL,
    open        TEXT    NOT NULL,
    weighted    TEXT    NOT NULL,
    gap         TEXT,
    coverage    TEXT,
    attainment  TEXT
);

CREATE INDEX plan_history_plan ON plan_history (plan_id, recorded_at, id);
