//! The domain rules of design.md §3 as pure functions: plan membership, linking, rollups,
//! activities, currency conversion and the diff. No I/O, no async, no clock reads: `today`
//! and `now` are parameters.
