//! Resellers and tenants.

use pbx_domain::{Actor, NewTenant, Reseller, Tenant, TenantStatus};
use pbx_store::TenantScope;
use serde_json::json;

use super::Ops;
use crate::error::{ApiError, ApiResult};
use crate::model::{CreateReseller, CreateTenant, UpdateTenant};

impl Ops<'_> {
    /// Creates a reseller (operator only).
    pub async fn create_reseller(&self, request: &CreateReseller) -> ApiResult<Reseller> {
        self.require_operator()?;
        let reseller = self
            .store
            .resellers()
            .create(&self.actor, &request.name)
            .await?;
        self.audit(
            None,
            "reseller.created",
            json!({ "reseller_id": reseller.id, "name": reseller.name }),
        )
        .await?;
        Ok(reseller)
    }

    /// The resellers the actor may see.
    pub async fn resellers(&self) -> ApiResult<Vec<Reseller>> {
        Ok(self.store.resellers().list(&self.actor).await?)
    }

    /// Creates a tenant. A reseller's tenant always belongs to that reseller; customer
    /// admins may not create tenants.
    pub async fn create_tenant(&self, request: &CreateTenant) -> ApiResult<Tenant> {
        let reseller_id = match self.actor {
            Actor::Operator | Actor::System => request.reseller_id,
            Actor::Reseller(own) => {
                if request.reseller_id.is_some_and(|asked| asked != own) {
                    return Err(ApiError::invalid(
                        "reseller_id",
                        "a reseller creates tenants for itself only",
                    ));
                }
                Some(own)
            }
            _ => {
                return Err(ApiError::Forbidden {
                    reason: "customer admins cannot create tenants",
                });
            }
        };
        let new = NewTenant {
            reseller_id,
            name: request.name.clone(),
            slug: request.slug.clone(),
            sip_domain: request.sip_domain.clone(),
            status: request.status.unwrap_or(TenantStatus::Active),
        };
        let tenant = self.store.tenants().create(&self.actor, &new).await?;
        self.audit(
            Some(tenant.id),
            "tenant.created",
            json!({ "slug": tenant.slug, "sip_domain": tenant.sip_domain, "reseller_id": tenant.reseller_id }),
        )
        .await?;
        Ok(tenant)
    }

    /// The tenants the actor may see.
    pub async fn tenants(&self) -> ApiResult<Vec<Tenant>> {
        Ok(self.store.tenants().list(&self.actor).await?)
    }

    /// The scoped tenant.
    pub async fn tenant(&self, scope: &TenantScope) -> ApiResult<Tenant> {
        Ok(self.store.tenants().get(scope).await?)
    }

    /// Changes the fields present in `request`. Customer admins may rename their tenant but
    /// not change its status.
    pub async fn update_tenant(
        &self,
        scope: &TenantScope,
        request: &UpdateTenant,
    ) -> ApiResult<Tenant> {
        let current = self.store.tenants().get(scope).await?;
        if request.status.is_some() && matches!(self.actor, Actor::CustomerAdmin(_)) {
            return Err(ApiError::Forbidden {
                reason: "customer admins cannot change the tenant status",
            });
        }
        if request.name.is_some() || request.sip_domain.is_some() {
            let name = request.name.as_ref().unwrap_or(&current.name);
            let domain = request.sip_domain.as_ref().unwrap_or(&current.sip_domain);
            self.store.tenants().update(scope, name, domain).await?;
        }
        if let Some(status) = request.status {
            self.store.tenants().set_status(scope, status).await?;
        }
        let tenant = self.store.tenants().get(scope).await?;
        self.audit(
            Some(tenant.id),
            "tenant.updated",
            json!({ "name": tenant.name, "sip_domain": tenant.sip_domain, "status": tenant.status }),
        )
        .await?;
        Ok(tenant)
    }

    /// Deletes the scoped tenant with everything in it (not for customer admins).
    pub async fn delete_tenant(&self, scope: &TenantScope) -> ApiResult<()> {
        let tenant = self.store.tenants().get(scope).await?;
        self.store.tenants().delete(&self.actor, scope).await?;
        // The event log has no foreign key: the trail outlives the tenant.
        self.audit(
            Some(tenant.id),
            "tenant.deleted",
            json!({ "tenant_id": tenant.id, "slug": tenant.slug }),
        )
        .await?;
        Ok(())
    }
}
