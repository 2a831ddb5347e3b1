-- plansync store, schema version 5: the change-event subscription (Change Data Capture over
-- CometD) that wakes the daemon.
-- Numbers are taken once; the runner applies the files in number order and records the last
-- one applied in user_version.

-- Per subscribed channel, the replayId of the last event whose wake-up a completed cycle
-- covered. On restart the daemon subscribes from it, so the events the CRM still retains
-- after it are delivered again; a channel without a row subscribes with -1 (new events only).
CREATE TABLE streaming_replay (
    channel     TEXT PRIMARY KEY NOT NULL,
    replay_id   INTEGER NOT NULL,
    -- When the row was written (RFC 3339, UTC).
    updated_at  TEXT NOT NULL
);

-- The daemon's view of its subscription, one row, for `plansync status` (another process).
CREATE TABLE streaming_state (
    id               INTEGER PRIMARY KEY CHECK (id = 1),
    -- disabled, connecting, subscribed, down or unsupported.
    state            TEXT NOT NULL,
    -- When the subscription entered that state (RFC 3339, UTC).
    since            TEXT NOT NULL,
    -- Why it is down or unsupported; NULL otherwise.
    error            TEXT,
    channels         TEXT NOT NULL DEFAULT '',
    -- When the daemon last received a change event, and that event's commit timestamp.
    last_event_at    TEXT,
    last_commit_at   TEXT,
    -- Commit of the oldest change a woken cycle covered -> the end of that cycle, in ms.
    freshness_lag_ms INTEGER,
    -- Cycles change events woke since the daemon started.
    woken_cycles     INTEGER NOT NULL DEFAULT 0,
    updated_at       TEXT NOT NULL
);
