//! One sync cycle: pull what changed, link, recompute touched plans, diff, write back.
