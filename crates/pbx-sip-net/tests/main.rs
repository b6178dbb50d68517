//! Integration tests of pbx-sip-net: real sockets on loopback, the test TU, SIPp, PROTOS.

// Test helpers outside #[test] functions: a failed expectation is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod admission;
mod before_send;
mod deferred;
mod loopback;
mod malformed;
mod nat;
mod protos;
mod shedding;
mod sipp;
mod streams;
mod support;
