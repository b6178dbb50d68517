//! Storage integration tests: every test runs on SQLite and on PostgreSQL.

// Reason: this is test code; a failed unwrap/expect/panic is how a test reports failure, also
// in the shared helpers (clippy's allow-*-in-tests covers only #[test] functions).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

mod bindings;
mod credentials;
mod directory;
mod schema;
mod security;
mod tenancy;
