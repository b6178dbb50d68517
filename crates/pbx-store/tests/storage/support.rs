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

use futures::FutureExt;
use pbx_domain::{
    Actor, ClassOfService, DisplayName, Extension, NewTenant, NewUser, SipDomain, Slug, Tenant,
    TenantStatus, User,
};
use pbx_store::{Engine, Store, TenantScope};
use pbx_test_support::postgres::FreshDatabase;

/// One test database.
#[derive(Debug)]
pub struct TestDb {
    pub engine: Engine,
    pub url: String,
    /// Keeps the SQLite directory alive.
    _dir: Option<tempfile::TempDir>,
    pub sqlite_path: Option<PathBuf>,
}

impl TestDb {
    /// Opens (and migrates) the database.
    pub async fn open(&self) -> Store {
        Store::open(&self.url).await.expect("open store")
    }

    fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("test.sqlite3");
        Self {
            engine: Engine::Sqlite,
            url: pbx_store::sqlite_url(&path),
            _dir: Some(dir),
            sqlite_path: Some(path),
        }
    }
}

/// Runs `test` on SQLite, then on PostgreSQL (when reachable). The PostgreSQL database is
/// dropped even when the test panics; the panic is then re-raised. Returns the engines the
/// test ran on.
pub async fn on_both<F, Fut>(test: F) -> Vec<Engine>
where
    F: Fn(TestDb) -> Fut,
    Fut: Future<Output = TestDb>,
{
    test(TestDb::sqlite()).await;
    let mut engines = vec![Engine::Sqlite];
    if let Some(fresh) = FreshDatabase::create("cloudpbx_test").await {
        engines.push(Engine::Postgres);
        let postgres = TestDb {
            engine: Engine::Postgres,
            url: fresh.url.clone(),
            _dir: None,
            sqlite_path: None,
        };
        let outcome = AssertUnwindSafe(test(postgres)).catch_unwind().await;
        fresh.drop_database().await;
        if let Err(panic) = outcome {
            std::panic::resume_unwind(panic);
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
