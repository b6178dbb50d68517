//! Integration tests of the transaction and dialog engine, driven through an in-memory
//! network under a virtual clock: every timer path runs in milliseconds of real time.

// Test code, helpers included: a panic is a test failure with a clear location.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

mod cancel;
mod chaos;
mod client_invite;
mod client_non_invite;
mod dialog;
mod matching;
mod server_invite;
mod server_non_invite;
mod torture;
