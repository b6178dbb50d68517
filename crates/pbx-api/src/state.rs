//! Shared request state, bearer-token authentication, tenant resolution and auditing.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use pbx_domain::{Actor, ApiToken, Realm, Slug, TenantId};

use pbx_store::{Directory, Store, TenantScope};

use crate::control::ControlPlane;
use crate::error::{ApiError, ApiResult};
use crate::metrics::ApiMetrics;
use crate::ops::Ops;
use crate::ops::security::{NoSecurity, SecurityControl};

/// Everything the handlers share. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ApiState {
    /// The store (source of truth).
    pub store: Store,
    /// The live directory, refreshed after every write so changes reach the SIP side
    /// without a restart.
    pub directory: Arc<Directory>,
    /// The live SIP side.
    pub control: Arc<dyn ControlPlane>,
    /// The platform digest realm new SIP credentials are made for.
    pub realm: Realm,
    /// The API's counters.
    pub metrics: Arc<ApiMetrics>,
    /// The live fraud guard (bans, throttles, blocks).
    pub security: Arc<dyn SecurityControl>,
    /// Trunk password key and live trunk registration states.
    pub calls: crate::model::CallsApi,
    /// More Prometheus text for `/metrics` (media relay, CDR writer, ...).
    pub metrics_sources: Vec<MetricsSource>,
}

/// Renders a block of Prometheus text for `/metrics`.
#[derive(Clone)]
pub struct MetricsSource(Arc<dyn Fn() -> String + Send + Sync>);

impl MetricsSource {
    /// A source rendering with `render`.
    pub fn new(render: impl Fn() -> String + Send + Sync + 'static) -> Self {
        Self(Arc::new(render))
    }

    /// The text now.
    pub fn render(&self) -> String {
        (self.0)()
    }
}

impl std::fmt::Debug for MetricsSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetricsSource")
    }
}

impl ApiState {
    /// Bundles the parts; metrics start at zero.
    pub fn new(
        store: Store,
        directory: Arc<Directory>,
        control: Arc<dyn ControlPlane>,
        realm: Realm,
    ) -> Self {
        Self {
            store,
            directory,
            control,
            realm,
            metrics: Arc::new(ApiMetrics::default()),
            security: Arc::new(NoSecurity),
            calls: crate::model::CallsApi::default(),
            metrics_sources: Vec::new(),
        }
    }

    /// Adds a block of text to `/metrics`.
    #[must_use]
    pub fn with_metrics_source(mut self, source: MetricsSource) -> Self {
        self.metrics_sources.push(source);
        self
    }

    /// Attaches the live fraud guard (without it, nothing is banned or listed).
    #[must_use]
    pub fn with_security(mut self, security: Arc<dyn SecurityControl>) -> Self {
        self.security = security;
        self
    }

    /// Attaches the trunk password key and the live trunk registration states.
    #[must_use]
    pub fn with_calls(mut self, calls: crate::model::CallsApi) -> Self {
        self.calls = calls;
        self
    }

    /// The operations of `caller`.
    pub fn ops<'a>(&'a self, caller: &Caller) -> Ops<'a> {
        Ops::for_token(&self.store, caller.actor, caller.token.id)
    }

    /// Resolves `{tenant}` (an id or a slug) to a scope for `caller`. A tenant that does
    /// not exist and one outside the caller's reach both give 404.
    pub async fn scope(&self, caller: &Caller, tenant: &str) -> ApiResult<TenantScope> {
        if tenant.parse::<TenantId>().is_err()
            && let Ok(slug) = Slug::parse(tenant)
            && let Some(found) = self.directory.snapshot().tenant_by_slug(slug.as_str())
        {
            return Ok(self.store.scope(&caller.actor, found.id).await?);
        }
        // Ids, and slugs the directory does not know yet (written by another process).
        self.ops(caller).scope(tenant).await
    }

    /// After a successful write: counts it and brings the directory up to date, so the
    /// change is live (a rotated password refused, a new whitelist enforced) when the
    /// response goes out. The refresh re-reads only what changed, and concurrent writers'
    /// refreshes coalesce into one ([`Directory::refresh`]).
    pub async fn written(&self) -> ApiResult<()> {
        self.metrics.record_write();
        self.directory.refresh(&self.store).await?;
        Ok(())
    }
}

/// The current Unix time in milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
        })
}

/// The authenticated caller of a request: the token and the actor it acts as.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The token presented.
    pub token: ApiToken,
    /// Who the request acts as.
    pub actor: Actor,
}

impl Caller {
    /// Refuses callers that are not the operator.
    pub fn require_operator(&self) -> ApiResult<()> {
        match self.actor {
            Actor::Operator | Actor::System => Ok(()),
            _ => Err(ApiError::Forbidden {
                reason: "operator only",
            }),
        }
    }
}

impl FromRequestParts<ApiState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> ApiResult<Self> {
        let presented = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| {
                let (scheme, token) = value.trim().split_once(' ')?;
                scheme
                    .eq_ignore_ascii_case("bearer")
                    .then(|| token.trim())
                    .filter(|token| !token.is_empty())
            });
        let Some(presented) = presented else {
            state.metrics.record_auth_failure();
            return Err(ApiError::Unauthenticated);
        };
        match state
            .store
            .api_tokens()
            .authenticate(presented, now_ms())
            .await?
        {
            Some(token) => Ok(Self {
                actor: token.scope.actor(),
                token,
            }),
            None => {
                state.metrics.record_auth_failure();
                Err(ApiError::Unauthenticated)
            }
        }
    }
}
