//! Integration tests: one binary. Each module starts real parts (the emulator as an HTTP
//! server on 127.0.0.1 with an OS-assigned port, a real SQLite file, the real binary).
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(
    clippy::disallowed_methods,
    reason = "the tests run the real binary and emulator against the real clock"
)]

mod admin;
mod bench;
mod cli;
mod common;
mod crash;
mod daemon;
mod daemon_paused;
mod economy;
mod emulator;
mod history;
mod outbox;
mod output;
mod streaming;
mod sync;
