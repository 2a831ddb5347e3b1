-- plansync store, schema version 3: writes the sync engine set aside are told apart from
-- writes an admin ignored.
-- Numbers are taken once; the runner applies the files in number order and records the last
-- one applied in user_version.

-- 1 when a recompute no longer wanted the row's values and the sync engine set it aside
-- (status 'ignored'). Such a row is no refusal: the same values are sent again as soon as a
-- later recompute wants them. 0 for every other row, and for rows an admin ignored, whose
-- values are not sent again while they stay the same.
ALTER TABLE outbox
    ADD COLUMN set_aside INTEGER NOT NULL DEFAULT 0 CHECK (set_aside IN (0, 1));

ALTER TABLE outbox_archive
    ADD COLUMN set_aside INTEGER NOT NULL DEFAULT 0;
