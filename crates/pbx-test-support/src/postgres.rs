//! A fresh PostgreSQL database per test (feature `postgres`).
//!
//! The server comes from `CLOUDPBX_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`). [`FreshDatabase::create`] makes
//! `<prefix>_<random>` so tests run in parallel, and [`FreshDatabase::drop_database`] removes
//! it (forcing out open sessions). When the server is unreachable `create` prints a `SKIP`
//! notice and returns `None`, except under `CI=true`, where an unreachable PostgreSQL fails
//! the test: CI must run the PostgreSQL half for real.

// Test support: a failed set-up is the test's failure, reported by panicking.
#![allow(clippy::panic, clippy::expect_used)]

use std::time::Duration;

use sqlx::{Connection, Executor};

/// The server the tests use when `CLOUDPBX_TEST_POSTGRES_URL` is not set.
pub const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The admin URL (a database on the server the test databases are created on).
pub fn admin_url() -> String {
    std::env::var("CLOUDPBX_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_owned())
}

/// One test database on the PostgreSQL server.
#[derive(Debug, Clone)]
pub struct FreshDatabase {
    /// Connection URL of the new database.
    pub url: String,
    /// Its name.
    pub name: String,
    admin_url: String,
}

impl FreshDatabase {
    /// Creates `<prefix>_<16 hex digits>`; `None` (after a `SKIP` notice) when the server is
    /// unreachable outside CI.
    pub async fn create(prefix: &str) -> Option<FreshDatabase> {
        sqlx::any::install_default_drivers();
        let admin_url = admin_url();
        let connect = tokio::time::timeout(
            Duration::from_secs(5),
            sqlx::AnyConnection::connect(&admin_url),
        )
        .await;
        let mut admin = match connect {
            Ok(Ok(connection)) => connection,
            Ok(Err(error)) => return unavailable(&admin_url, &error.to_string()),
            Err(_) => return unavailable(&admin_url, "connect timed out"),
        };
        let name = format!("{prefix}_{}", hex_random());
        admin
            .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .expect("create test database");
        admin.close().await.ok();
        let base = admin_url.split('?').next().unwrap_or(&admin_url);
        let (server, _) = base.rsplit_once('/').expect("database URL has a path");
        Some(FreshDatabase {
            url: format!("{server}/{name}"),
            name,
            admin_url,
        })
    }

    /// Runs one statement on the admin connection (e.g. `ALTER DATABASE <name> ...` to
    /// simulate an outage).
    pub async fn admin(&self, sql: &str) {
        let mut admin = sqlx::AnyConnection::connect(&self.admin_url)
            .await
            .expect("admin connection");
        admin
            .execute(sqlx::AssertSqlSafe(sql.to_owned()))
            .await
            .expect("admin statement");
        admin.close().await.ok();
    }

    /// Drops the database, closing the sessions still open on it.
    pub async fn drop_database(&self) {
        self.admin(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ))
        .await;
    }
}

fn unavailable(url: &str, why: &str) -> Option<FreshDatabase> {
    if std::env::var("CI").is_ok_and(|value| value == "true") {
        panic!(
            "CI=true but PostgreSQL at {url} is unreachable ({why}): the PostgreSQL tests must run in CI"
        );
    }
    eprintln!(
        "SKIP (PostgreSQL half): {url} unreachable ({why}); set CLOUDPBX_TEST_POSTGRES_URL or start PostgreSQL"
    );
    None
}

fn hex_random() -> String {
    rand::random::<[u8; 8]>()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}
