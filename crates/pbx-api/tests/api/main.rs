//! Management API integration tests: the router through `tower::ServiceExt::oneshot` on a
//! real store, every test on SQLite and on PostgreSQL.

// Test harness code outside `#[test]` functions: a failed setup must fail the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

mod calls;
mod devices;
mod isolation;
mod lines;
mod meta;
mod registrations;
mod security;
mod security_limits;
mod tenants;
mod tokens;
mod users;
