//! Integration tests for pbx-registrar (one binary; virtual time, no sockets, no sleeps).

// Test fixtures outside `#[test]` functions unwrap known-good values; a failure is a test bug.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

mod conformance;
mod model;
mod nat;
mod outbound;
mod register;
mod security;
mod timers;
