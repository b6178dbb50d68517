//! Storage of calls (trunks, routes, tenant call settings, CDRs) on SQLite and PostgreSQL.

// Reason: test code; a failed unwrap/expect/panic is how a test reports failure, also in the
// shared helpers (clippy's allow-*-in-tests covers only #[test] functions).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

// The storage suite's helpers (fresh SQLite file / PostgreSQL database per test).
#[path = "../storage/support.rs"]
#[allow(dead_code)]
mod support;

mod cdrs;
mod trunks;
