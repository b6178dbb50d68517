//! Test harness: a real store on SQLite (temp file) and on PostgreSQL (a fresh database per
//! test, dropped afterwards), the router driven through `tower::ServiceExt::oneshot`.
//!
//! PostgreSQL comes from `CLOUDPBX_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`). When it is unreachable the PostgreSQL
//! half is skipped with a notice, except under `CI=true`, where that fails the test.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use futures::FutureExt;
use pbx_api::{ApiState, Bootstrapped, ControlPlane};
use pbx_domain::{Realm, TenantId, UserId};
use pbx_store::{Directory, Store};
use pbx_test_support::postgres::FreshDatabase;
use serde_json::{Value, json};
use tower::ServiceExt;

/// The engine a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// One test database.
#[derive(Debug)]
#[allow(dead_code)] // `engine` is for failure output
pub struct TestDb {
    /// Which engine (shown in `Debug` output of failures).
    pub engine: Engine,
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = pbx_store::sqlite_url(&dir.path().join("api.sqlite3"));
        Self {
            engine: Engine::Sqlite,
            url,
            _dir: Some(dir),
        }
    }
}

/// Runs `test` on SQLite, then on PostgreSQL when reachable; the PostgreSQL database is
/// dropped even when the test panics.
pub async fn on_both<F, Fut>(test: F)
where
    F: Fn(App) -> Fut,
    Fut: Future<Output = ()>,
{
    let sqlite = TestDb::sqlite();
    let app = App::new(&sqlite).await;
    test(app).await;
    drop(sqlite);
    if let Some(fresh) = FreshDatabase::create("cloudpbx_api_test").await {
        let postgres = TestDb {
            engine: Engine::Postgres,
            url: fresh.url.clone(),
            _dir: None,
        };
        let app = App::new(&postgres).await;
        let outcome = AssertUnwindSafe(test(app)).catch_unwind().await;
        fresh.drop_database().await;
        if let Err(panic) = outcome {
            std::panic::resume_unwind(panic);
        }
    }
}

/// A control plane that records what it was asked to forget.
#[derive(Debug, Default)]
pub struct RecordingControl {
    pub cleared: Mutex<Vec<(TenantId, Option<UserId>)>>,
}

impl ControlPlane for RecordingControl {
    fn clear_registrations(&self, tenant: TenantId, user: Option<UserId>) -> pbx_api::Cleared {
        self.cleared.lock().expect("lock").push((tenant, user));
        Box::pin(std::future::ready(1))
    }
}

/// The router on a fresh store, with an operator token.
pub struct App {
    pub router: Router,
    pub state: ApiState,
    pub control: Arc<RecordingControl>,
    pub operator: String,
    /// The database, to open it again as after a restart ([`App::reopen`]).
    pub url: String,
}

/// A response: status and JSON body (`Value::Null` when empty).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
    pub content_type: String,
    pub text: String,
}

impl Reply {
    /// Asserts an error reply with `status` and `code`, naming `field` when given.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str, field: Option<&str>) {
        assert_eq!(self.status.as_u16(), status, "status of {}", self.text);
        assert_eq!(self.body["error"]["code"], code, "code of {}", self.text);
        if let Some(field) = field {
            assert_eq!(self.body["error"]["field"], field, "field of {}", self.text);
        }
        assert!(
            self.body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "message of {}",
            self.text
        );
    }

    /// Asserts `status` and returns the body.
    #[track_caller]
    pub fn expect(self, status: u16) -> Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected reply {}",
            self.text
        );
        self.body
    }
}

impl App {
    pub async fn new(db: &TestDb) -> Self {
        let store = Store::open(&db.url).await.expect("open store");
        let operator = match pbx_api::bootstrap_operator_token(&store, None)
            .await
            .expect("bootstrap")
        {
            Bootstrapped::Generated(secret) => secret.expose().to_owned(),
            other => panic!("fresh store must generate a token, got {other:?}"),
        };
        Self::on(store, &db.url, operator).await
    }

    async fn on(store: Store, url: &str, operator: String) -> Self {
        let directory = Directory::load(&store).await.expect("load directory");
        let control = Arc::new(RecordingControl::default());
        let realm = Realm::parse("cloudpbx.test").expect("realm");
        let state = ApiState::new(store, directory, control.clone(), realm);
        Self {
            router: pbx_api::router(state.clone()),
            state,
            control,
            operator,
            url: url.to_owned(),
        }
    }

    /// A new app on the same database (new pool, directory and router), as after a
    /// restart; the operator token stays valid.
    pub async fn reopen(&self) -> Self {
        let store = Store::open(&self.url).await.expect("open store again");
        Self::on(store, &self.url, self.operator.clone()).await
    }

    /// This app with `security` as its live fraud guard.
    pub fn with_security(
        mut self,
        security: Arc<dyn pbx_api::ops::security::SecurityControl>,
    ) -> Self {
        self.state = self.state.with_security(security);
        self.router = pbx_api::router(self.state.clone());
        self
    }

    /// Sends a request (JSON body if given) with an optional bearer token.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = match body {
            Some(body) => request
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_string())),
            None => request.body(Body::empty()),
        }
        .expect("request");
        self.send(request).await
    }

    /// Sends a prepared request.
    pub async fn send(&self, request: Request<Body>) -> Reply {
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("infallible");
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let bytes = axum::body::to_bytes(response.into_body(), 4 << 20)
            .await
            .expect("body");
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        Reply {
            status,
            body,
            content_type,
            text,
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    pub async fn put(&self, path: &str, token: &str, body: Value) -> Reply {
        self.call(Method::PUT, path, Some(token), Some(body)).await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Reply {
        self.call(Method::PATCH, path, Some(token), Some(body))
            .await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Reply {
        self.call(Method::DELETE, path, Some(token), None).await
    }

    /// Creates tenant `slug` as the operator (owned by `reseller` if given).
    pub async fn tenant(&self, slug: &str, reseller: Option<&str>) -> Value {
        let mut body = json!({ "name": format!("{slug} B.V."), "slug": slug, "sip_domain": format!("{slug}.pbx.example.com") });
        if let Some(reseller) = reseller {
            body["reseller_id"] = json!(reseller);
        }
        self.post("/api/v1/tenants", &self.operator, body)
            .await
            .expect(201)
    }

    /// A customer admin token for `tenant` (id or slug), created by the operator.
    pub async fn admin_token(&self, tenant: &str) -> String {
        self.admin_token_with_id(tenant).await.1
    }

    /// A customer-admin token for `tenant`: (token id, secret).
    pub async fn admin_token_with_id(&self, tenant: &str) -> (String, String) {
        let body = json!({ "name": format!("{tenant} admin"), "role": "customer_admin", "tenant": tenant });
        let created = self
            .post("/api/v1/tokens", &self.operator, body)
            .await
            .expect(201);
        let id = created["token"]["id"]
            .as_str()
            .expect("token id")
            .to_owned();
        (id, created["secret"].as_str().expect("secret").to_owned())
    }

    /// A reseller and a token for it: (reseller id, secret).
    pub async fn reseller(&self, name: &str) -> (String, String) {
        let reseller = self
            .post("/api/v1/resellers", &self.operator, json!({ "name": name }))
            .await
            .expect(201);
        let id = reseller["id"].as_str().expect("id").to_owned();
        let body =
            json!({ "name": format!("{name} token"), "role": "reseller", "reseller_id": id });
        let created = self
            .post("/api/v1/tokens", &self.operator, body)
            .await
            .expect(201);
        (id, created["secret"].as_str().expect("secret").to_owned())
    }

    /// Creates user `extension` in `tenant`.
    pub async fn user(&self, tenant: &str, extension: &str) -> Value {
        let body = json!({ "extension": extension, "display_name": format!("User {extension}") });
        self.post(
            &format!("/api/v1/tenants/{tenant}/users"),
            &self.operator,
            body,
        )
        .await
        .expect(201)
    }

    /// Creates a softphone for `user` in `tenant`; returns the create reply body.
    pub async fn softphone(&self, tenant: &str, user: &str) -> Value {
        let body = json!({ "user": user, "kind": "softphone", "label": "laptop" });
        self.post(
            &format!("/api/v1/tenants/{tenant}/devices"),
            &self.operator,
            body,
        )
        .await
        .expect(201)
    }

    /// The kinds of the tenant's audit events, newest first.
    pub async fn event_kinds(&self, tenant: &str) -> Vec<String> {
        let events = self
            .get(&format!("/api/v1/tenants/{tenant}/events"), &self.operator)
            .await
            .expect(200);
        events
            .as_array()
            .expect("array")
            .iter()
            .map(|event| event["kind"].as_str().expect("kind").to_owned())
            .collect()
    }
}
