//! Integration tests over loopback: our own client, the Debian `tftp` (tftp-hpa) and `atftp`
//! clients, refusals, busy policy and a 1,000-phone boot storm.

// Test helpers outside #[test] fns: a failed unwrap there is a failed test, as in the tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod real_clients;
mod refusals;
mod storm;
mod support;
