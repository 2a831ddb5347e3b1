-- plansync store, schema version 5: the upkeep that moves settled writes to the archive after
-- 31 days finds them by status and last update, without reading every settled row (a first
-- sync of a large org settles hundreds of thousands of writes, and every cycle runs the upkeep).
-- Numbers are taken once; the runner applies the files in number order and records the last
-- one applied in user_version.

CREATE INDEX outbox_settled ON outbox (status, updated_at);
