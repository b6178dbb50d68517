//! Users and API tokens.

use pbx_domain::{
    ApiRole, ApiScope, ApiToken, ApiTokenId, ApiTokenSecret, ClassOfService, NewUser, User,
};
use pbx_store::{TenantScope, UserUpdate};
use serde_json::json;

use super::{Ops, free_text};
use crate::error::{ApiError, ApiResult};
use crate::model::{CreateToken, CreateUser, UpdateUser};
use crate::state::now_ms;

impl Ops<'_> {
    /// Creates a user in the scoped tenant.
    pub async fn create_user(&self, scope: &TenantScope, request: &CreateUser) -> ApiResult<User> {
        let new = NewUser {
            extension: request.extension.clone(),
            display_name: request.display_name.clone(),
            class_of_service: request.class_of_service.unwrap_or(ClassOfService::National),
        };
        let user = self.store.users().create(scope, &new).await?;
        self.audit(
            Some(scope.tenant_id()),
            "user.created",
            json!({ "user_id": user.id, "extension": user.extension }),
        )
        .await?;
        Ok(user)
    }

    /// The users of the scoped tenant.
    pub async fn users(&self, scope: &TenantScope) -> ApiResult<Vec<User>> {
        Ok(self.store.users().list(scope).await?)
    }

    /// Changes the fields present in `request`.
    pub async fn update_user(
        &self,
        scope: &TenantScope,
        user: &User,
        request: &UpdateUser,
    ) -> ApiResult<User> {
        let update = UserUpdate {
            extension: request
                .extension
                .clone()
                .unwrap_or_else(|| user.extension.clone()),
            display_name: request
                .display_name
                .clone()
                .unwrap_or_else(|| user.display_name.clone()),
            class_of_service: request.class_of_service.unwrap_or(user.class_of_service),
        };
        let updated = self.store.users().update(scope, user.id, &update).await?;
        self.audit(
            Some(scope.tenant_id()),
            "user.updated",
            json!({ "user_id": updated.id, "extension": updated.extension, "class_of_service": updated.class_of_service }),
        )
        .await?;
        Ok(updated)
    }

    /// Deletes a user with its devices, credentials, whitelist entries and registrations.
    pub async fn delete_user(&self, scope: &TenantScope, user: &User) -> ApiResult<()> {
        self.store.users().delete(scope, user.id).await?;
        self.audit(
            Some(scope.tenant_id()),
            "user.deleted",
            json!({ "user_id": user.id, "extension": user.extension }),
        )
        .await
    }

    /// Creates an API token; the secret is returned once. Who may create what is the
    /// store's rule: the operator any token, a reseller its own and its tenants' admin
    /// tokens, a customer admin its own tenant's.
    pub async fn create_token(
        &self,
        request: &CreateToken,
    ) -> ApiResult<(ApiToken, ApiTokenSecret)> {
        let name = free_text("name", &request.name, 100)?;
        if name.is_empty() {
            return Err(ApiError::invalid("name", "must not be empty"));
        }
        let scope = match request.role {
            ApiRole::Operator => {
                if request.reseller_id.is_some() {
                    return Err(ApiError::invalid(
                        "reseller_id",
                        "operator tokens have no reseller",
                    ));
                }
                if request.tenant.is_some() {
                    return Err(ApiError::invalid(
                        "tenant",
                        "operator tokens have no tenant",
                    ));
                }
                ApiScope::Operator
            }
            ApiRole::Reseller => {
                if request.tenant.is_some() {
                    return Err(ApiError::invalid(
                        "tenant",
                        "reseller tokens have no tenant",
                    ));
                }
                let reseller_id = request.reseller_id.ok_or(ApiError::MissingField {
                    field: "reseller_id".to_owned(),
                })?;
                ApiScope::Reseller { reseller_id }
            }
            _ => {
                if request.reseller_id.is_some() {
                    return Err(ApiError::invalid(
                        "reseller_id",
                        "customer admin tokens have no reseller",
                    ));
                }
                let tenant = request.tenant.as_deref().ok_or(ApiError::MissingField {
                    field: "tenant".to_owned(),
                })?;
                let scope = self.scope(tenant).await.map_err(|error| match error {
                    ApiError::NotFound { .. } => ApiError::invalid("tenant", "no such tenant"),
                    other => other,
                })?;
                ApiScope::CustomerAdmin {
                    tenant_id: scope.tenant_id(),
                }
            }
        };
        if request
            .expires_at_ms
            .is_some_and(|expiry| expiry <= now_ms())
        {
            return Err(ApiError::invalid("expires_at_ms", "must be in the future"));
        }
        let (token, secret) = self
            .store
            .api_tokens()
            .create(&self.actor, &name, scope, request.expires_at_ms)
            .await
            .map_err(|error| match error {
                pbx_store::StoreError::InvalidReference { .. } => {
                    ApiError::invalid("reseller_id", "no such reseller")
                }
                other => other.into(),
            })?;
        self.audit(
            scope.tenant_id(),
            "api_token.created",
            json!({ "api_token_id": token.id, "name": token.name, "role": scope.role(), "reseller_id": scope.reseller_id() }),
        )
        .await?;
        Ok((token, secret))
    }

    /// The tokens the actor may see.
    pub async fn tokens(&self) -> ApiResult<Vec<ApiToken>> {
        Ok(self.store.api_tokens().list(&self.actor).await?)
    }

    /// One token the actor may see.
    pub async fn token(&self, id: ApiTokenId) -> ApiResult<ApiToken> {
        self.tokens()
            .await?
            .into_iter()
            .find(|token| token.id == id)
            .ok_or(ApiError::NotFound { what: "API token" })
    }

    /// Revokes a token the actor may see; it is refused from then on.
    pub async fn revoke_token(&self, id: ApiTokenId) -> ApiResult<ApiToken> {
        let token = self.token(id).await?;
        if token.revoked_at_ms.is_some() {
            return Err(ApiError::Conflict {
                field: "id",
                message: "the token is already revoked".to_owned(),
            });
        }
        self.store
            .api_tokens()
            .revoke(&self.actor, id, now_ms())
            .await?;
        self.audit(
            token.scope.tenant_id(),
            "api_token.revoked",
            json!({ "api_token_id": id, "name": token.name }),
        )
        .await?;
        self.token(id).await
    }
}
