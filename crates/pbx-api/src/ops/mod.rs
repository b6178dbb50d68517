//! The operations behind the API, shared with the admin CLI: each checks the actor, runs
//! on the store and leaves an audit event for every write.
//!
//! [`Ops`] is the entry point: `Ops::new(&store, actor)` (the CLI acts as the operator),
//! or `Ops::for_token` for a request authenticated with an API token. Callers that keep a
//! live directory reload it after a write (the router does).

mod accounts;
mod devices;
mod lines;
pub mod security;
mod tenants;

use pbx_domain::{Actor, ApiTokenId, Extension, Slug, TenantId, User, UserId};
use pbx_store::{Store, TenantScope};

pub use devices::CreatedDevice;

use crate::error::{ApiError, ApiResult};
use crate::state::now_ms;

/// Operations on behalf of one actor.
#[derive(Debug, Clone, Copy)]
pub struct Ops<'a> {
    store: &'a Store,
    actor: Actor,
    token: Option<ApiTokenId>,
}

impl<'a> Ops<'a> {
    /// Operations by `actor` without a token (the CLI: `Actor::Operator`).
    pub const fn new(store: &'a Store, actor: Actor) -> Self {
        Self {
            store,
            actor,
            token: None,
        }
    }

    /// Operations by the holder of API token `token`, acting as `actor`.
    pub const fn for_token(store: &'a Store, actor: Actor, token: ApiTokenId) -> Self {
        Self {
            store,
            actor,
            token: Some(token),
        }
    }

    /// The acting party.
    pub const fn actor(&self) -> &Actor {
        &self.actor
    }

    /// The store.
    pub const fn store(&self) -> &'a Store {
        self.store
    }

    /// Resolves a tenant id or slug to a scope; tenants the actor may not see are 404.
    pub async fn scope(&self, tenant: &str) -> ApiResult<TenantScope> {
        let id = match tenant.parse::<TenantId>() {
            Ok(id) => id,
            Err(_) => {
                let slug =
                    Slug::parse(tenant).map_err(|_| ApiError::NotFound { what: "tenant" })?;
                self.store
                    .tenants()
                    .list(&self.actor)
                    .await?
                    .into_iter()
                    .find(|candidate| candidate.slug == slug)
                    .map(|found| found.id)
                    .ok_or(ApiError::NotFound { what: "tenant" })?
            }
        };
        Ok(self.store.scope(&self.actor, id).await?)
    }

    /// Resolves a user id or extension within the scoped tenant (404 when there is none).
    pub async fn user(&self, scope: &TenantScope, user: &str) -> ApiResult<User> {
        let found = match user.parse::<UserId>() {
            Ok(id) => self.store.users().get(scope, id).await,
            Err(_) => {
                let extension =
                    Extension::parse(user).map_err(|_| ApiError::NotFound { what: "user" })?;
                self.store.users().by_extension(scope, &extension).await
            }
        };
        Ok(found?)
    }

    /// Like [`Ops::user`], for a user named in a request body field: an unknown user is a
    /// bad value of that field (422), not a missing resource.
    pub async fn user_field(
        &self,
        scope: &TenantScope,
        field: &str,
        user: &str,
    ) -> ApiResult<User> {
        self.user(scope, user).await.map_err(|error| match error {
            ApiError::NotFound { .. } => ApiError::invalid(
                field,
                "no such user in this tenant (give its id or extension)",
            ),
            other => other,
        })
    }

    /// Appends the audit event of a write.
    pub async fn audit(
        &self,
        tenant: Option<TenantId>,
        kind: &str,
        details: serde_json::Value,
    ) -> ApiResult<()> {
        let payload = serde_json::json!({
            "actor": self.actor,
            "token_id": self.token,
            "details": details,
        });
        self.store
            .events()
            .append(now_ms(), tenant, kind, &payload)
            .await?;
        Ok(())
    }

    pub(crate) fn require_operator(&self) -> ApiResult<()> {
        match self.actor {
            Actor::Operator | Actor::System => Ok(()),
            _ => Err(ApiError::Forbidden {
                reason: "operator only",
            }),
        }
    }
}

/// Checks a free-text field: at most `max` characters, no control characters.
pub(crate) fn free_text(field: &str, text: &str, max: usize) -> ApiResult<String> {
    let text = text.trim();
    if text.chars().count() > max {
        return Err(ApiError::invalid(
            field,
            format!("at most {max} characters"),
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            field,
            "control characters are not allowed",
        ));
    }
    Ok(text.to_owned())
}
