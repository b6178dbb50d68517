//! Integration tests for pbx-sip-auth, compiled into one binary.

// Test helpers outside `#[test]` functions unwrap too: a panic is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod client;
mod conformance;
mod grammar;
mod props;
mod server;
mod support;
mod vectors;
