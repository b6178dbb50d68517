//! pbx-server integration tests: the whole platform in-process on loopback, driven by an
//! in-process SIP client and by real peers (SIPp, baresip, sipsak). A missing peer is skipped
//! with a notice, except under `CI=true` where it is a failure.

// Test helpers outside #[test] functions: a failed expectation is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod attended;
mod baresip;
mod call_guard;
mod calls;
mod cdr;
mod client;
mod dns;
mod fraud;
mod inproc;
mod late_offer;
mod prack;
mod provisioning;
mod sipp;
mod sipsak;
mod support;
mod transfer;
mod trunks;
