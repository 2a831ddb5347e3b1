//! The emulator over HTTP.
