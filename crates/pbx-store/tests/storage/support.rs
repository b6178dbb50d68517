//! Runs each storage test against SQLite (a temp file) and PostgreSQL (a fresh database).
//!
//! PostgreSQL comes from `CLOUDPBX_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`); each test creates its own database
//! `cloudpbx_test_<random>` and drops it at the end, so tests run in parallel. When the
//! server is unreachable the PostgreSQL half is skipped with a notice, except under
//! `CI=true`, where that is a failure.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::time::Duration;

use futures::FutureExt;
use pbx_domain::{
    Actor, ClassOfService, DisplayName, Extension, NewTenant, NewUser, SipDomain, Slug, Tenant,
    TenantStatus, User,
};
use pbx_store::{Engine, Store, TenantScope};
use sqlx::{Connection, Executor};

const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// One test database.
#[derive(Debug)]
pub struct TestDb {
    pub engine: Engine,
    pub url: String,
    /// Keeps the SQLite directory alive.
    _dir: Option<tempfile::TempDir>,
    pub sqlite_path: Option<PathBuf>,
    admin_url: Option<String>,
    name: Option<String>,
}

impl TestDb {
    /// Opens (and migrates) the database.
    pub async fn open(&self) -> Store {
        Store::open(&self.url).await.expect("open store")
    }

    async fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("test.sqlite3");
        Self {
            engine: Engine::Sqlite,
            url: pbx_store::sqlite_url(&path),
            _dir: Some(dir),
            sqlite_path: Some(path),
            admin_url: None,
            name: None,
        }
    }

    async fn postgres() -> Option<Self> {
        sqlx::any::install_default_drivers();
        let admin_url = std::env::var("CLOUDPBX_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
        let connect = tokio::time::timeout(
            Duration::from_secs(5),
            sqlx::AnyConnection::connect(&admin_url),
        )
        .await;
        let mut admin = match connect {
            Ok(Ok(connection)) => connection,
            Ok(Err(error)) => return postgres_unavailable(&admin_url, &error.to_string()),
            Err(_) => return postgres_unavailable(&admin_url, "connect timed out"),
        };
        let name = format!("cloudpbx_test_{}", hex_random());
        admin
            .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .expect("create test database");
        admin.close().await.ok();
        let base = admin_url.split('?').next().unwrap_or(&admin_url);
        let (server, _) = base.rsplit_once('/').expect("database URL has a path");
        Some(Self {
            engine: Engine::Postgres,
            url: format!("{server}/{name}"),
            _dir: None,
            sqlite_path: None,
            admin_url: Some(admin_url),
            name: Some(name),
        })
    }

    async fn cleanup(&self) {
        if let (Some(admin_url), Some(name)) = (&self.admin_url, &self.name) {
            let mut admin = sqlx::AnyConnection::connect(admin_url)
                .await
                .expect("admin connection");
            admin
                .execute(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .await
                .expect("drop test database");
            admin.close().await.ok();
        }
    }
}

fn postgres_unavailable(url: &str, why: &str) -> Option<TestDb> {
    if std::env::var("CI").is_ok_and(|value| value == "true") {
        panic!(
            "CI=true but PostgreSQL at {url} is unreachable ({why}): the PostgreSQL storage tests must run in CI"
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

/// Runs `test` on SQLite, then on PostgreSQL (when reachable). The PostgreSQL database is
/// dropped even when the test panics; the panic is then re-raised. Returns the engines the
/// test ran on.
pub async fn on_both<F, Fut>(test: F) -> Vec<Engine>
where
    F: Fn(TestDb) -> Fut,
    Fut: Future<Output = TestDb>,
{
    let sqlite = TestDb::sqlite().await;
    test(sqlite).await;
    let mut engines = vec![Engine::Sqlite];
    if let Some(postgres) = TestDb::postgres().await {
        engines.push(Engine::Postgres);
        let admin_url = postgres.admin_url.clone();
        let name = postgres.name.clone();
        match AssertUnwindSafe(test(postgres)).catch_unwind().await {
            Ok(db) => db.cleanup().await,
            Err(panic) => {
                let leftover = TestDb {
                    engine: Engine::Postgres,
                    url: String::new(),
                    _dir: None,
                    sqlite_path: None,
                    admin_url,
                    name,
                };
                leftover.cleanup().await;
                std::panic::resume_unwind(panic);
            }
        }
    }
    eprintln!("ran on {engines:?}");
    engines
}

/// Creates an active tenant `slug` owned by the operator, with an operator scope on it.
pub async fn tenant(store: &Store, slug: &str) -> (Tenant, TenantScope) {
    let new = NewTenant {
        reseller_id: None,
        name: DisplayName::parse(&format!("{slug} B.V.")).unwrap(),
        slug: Slug::parse(slug).unwrap(),
        sip_domain: SipDomain::parse(&format!("{slug}.pbx.example.com")).unwrap(),
        status: TenantStatus::Active,
    };
    let tenant = store
        .tenants()
        .create(&Actor::Operator, &new)
        .await
        .expect("create tenant");
    let scope = store
        .scope(&Actor::Operator, tenant.id)
        .await
        .expect("scope");
    (tenant, scope)
}

/// Creates a user with `extension`.
pub async fn user(store: &Store, scope: &TenantScope, extension: &str) -> User {
    let new = NewUser {
        extension: Extension::parse(extension).unwrap(),
        display_name: DisplayName::parse(&format!("User {extension}")).unwrap(),
        class_of_service: ClassOfService::National,
    };
    store
        .users()
        .create(scope, &new)
        .await
        .expect("create user")
}
