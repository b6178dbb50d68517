//! Resellers and tenants.

use pbx_domain::{
    Actor, DisplayName, NewTenant, Reseller, ResellerId, SipDomain, Slug, Tenant, TenantId,
    TenantStatus,
};
use sqlx::any::AnyRow;

use crate::changes::ConfigChange;
use crate::error::{StoreError, StoreResult};
use crate::rows::{affected, int, new_id, now_ms, parse, parse_opt};
use crate::store::{Store, TenantScope};

macro_rules! tenant_columns {
    () => {
        "id, reseller_id, name, slug, sip_domain, status, created_at, updated_at"
    };
}

/// Resellers (operator-level).
#[derive(Debug, Clone, Copy)]
pub struct Resellers<'a> {
    store: &'a Store,
}

/// Tenants: created by the operator or a reseller, read through scopes.
#[derive(Debug, Clone, Copy)]
pub struct Tenants<'a> {
    store: &'a Store,
}

impl Store {
    /// The resellers repository.
    pub const fn resellers(&self) -> Resellers<'_> {
        Resellers { store: self }
    }

    /// The tenants repository.
    pub const fn tenants(&self) -> Tenants<'_> {
        Tenants { store: self }
    }
}

fn require_operator(actor: &Actor) -> StoreResult<()> {
    match actor {
        Actor::System | Actor::Operator => Ok(()),
        _ => Err(StoreError::Forbidden {
            reason: "operator only",
        }),
    }
}

impl Resellers<'_> {
    /// Creates a reseller (operator only).
    pub async fn create(&self, actor: &Actor, name: &DisplayName) -> StoreResult<Reseller> {
        require_operator(actor)?;
        let now = now_ms();
        let reseller = Reseller {
            id: new_id(ResellerId::from_parts),
            name: name.clone(),
            created_at_ms: now,
            updated_at_ms: now,
        };
        sqlx::query(
            "INSERT INTO resellers (id, name, created_at, updated_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(reseller.id.to_string())
        .bind(reseller.name.to_string())
        .bind(now)
        .bind(now)
        .execute(self.store.pool())
        .await?;
        Ok(reseller)
    }

    /// The resellers `actor` may see: all for the operator, its own for a reseller.
    pub async fn list(&self, actor: &Actor) -> StoreResult<Vec<Reseller>> {
        let rows = match actor {
            Actor::System | Actor::Operator => {
                sqlx::query("SELECT id, name, created_at, updated_at FROM resellers ORDER BY name")
                    .fetch_all(self.store.pool())
                    .await?
            }
            Actor::Reseller(own) => {
                sqlx::query("SELECT id, name, created_at, updated_at FROM resellers WHERE id = $1")
                    .bind(own.to_string())
                    .fetch_all(self.store.pool())
                    .await?
            }
            _ => {
                return Err(StoreError::Forbidden {
                    reason: "resellers are not visible to customers",
                });
            }
        };
        rows.iter()
            .map(|row| {
                Ok(Reseller {
                    id: parse(row, "resellers", "id")?,
                    name: parse(row, "resellers", "name")?,
                    created_at_ms: int(row, "created_at")?,
                    updated_at_ms: int(row, "updated_at")?,
                })
            })
            .collect()
    }
}

pub(crate) fn tenant_from_row(row: &AnyRow) -> StoreResult<Tenant> {
    Ok(Tenant {
        id: parse(row, "tenants", "id")?,
        reseller_id: parse_opt(row, "tenants", "reseller_id")?,
        name: parse(row, "tenants", "name")?,
        slug: parse(row, "tenants", "slug")?,
        sip_domain: parse(row, "tenants", "sip_domain")?,
        status: parse(row, "tenants", "status")?,
        created_at_ms: int(row, "created_at")?,
        updated_at_ms: int(row, "updated_at")?,
    })
}

impl Tenants<'_> {
    /// Creates a tenant. The operator may create any; a reseller only its own (the new
    /// tenant's `reseller_id` must be the reseller); customer admins may not.
    pub async fn create(&self, actor: &Actor, new: &NewTenant) -> StoreResult<Tenant> {
        match actor {
            Actor::System | Actor::Operator => {}
            Actor::Reseller(own) if new.reseller_id == Some(*own) => {}
            _ => {
                return Err(StoreError::Forbidden {
                    reason: "cannot create this tenant",
                });
            }
        }
        let now = now_ms();
        let tenant = Tenant {
            id: new_id(TenantId::from_parts),
            reseller_id: new.reseller_id,
            name: new.name.clone(),
            slug: new.slug.clone(),
            sip_domain: new.sip_domain.clone(),
            status: new.status,
            created_at_ms: now,
            updated_at_ms: now,
        };
        sqlx::query(concat!(
            "INSERT INTO tenants (",
            tenant_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ))
        .bind(tenant.id.to_string())
        .bind(tenant.reseller_id.map(|id| id.to_string()))
        .bind(tenant.name.to_string())
        .bind(tenant.slug.to_string())
        .bind(tenant.sip_domain.to_string())
        .bind(tenant.status.as_str())
        .bind(now)
        .bind(now)
        .execute(self.store.pool())
        .await
        .map_err(|error| match StoreError::from(error) {
            StoreError::InvalidReference { .. } => {
                StoreError::InvalidReference { what: "reseller" }
            }
            other => other,
        })?;
        self.store.changed(&[ConfigChange::Tenant(tenant.id)]).await;
        Ok(tenant)
    }

    /// The scoped tenant.
    pub async fn get(&self, scope: &TenantScope) -> StoreResult<Tenant> {
        let row = sqlx::query(concat!(
            "SELECT ",
            tenant_columns!(),
            " FROM tenants WHERE id = $1"
        ))
        .bind(scope.tenant_id().to_string())
        .fetch_optional(self.store.pool())
        .await?
        .ok_or(StoreError::NotFound { what: "tenant" })?;
        tenant_from_row(&row)
    }

    /// The tenant with `slug` and a scope on it, if `actor` may see it (a tenant the actor
    /// may not see is `NotFound`, like one that does not exist).
    pub async fn by_slug(&self, actor: &Actor, slug: &Slug) -> StoreResult<(Tenant, TenantScope)> {
        let row = sqlx::query(concat!(
            "SELECT ",
            tenant_columns!(),
            " FROM tenants WHERE slug = $1"
        ))
        .bind(slug.to_string())
        .fetch_optional(self.store.pool())
        .await?
        .ok_or(StoreError::NotFound { what: "tenant" })?;
        let tenant = tenant_from_row(&row)?;
        let scope = self.store.scope(actor, tenant.id).await?;
        Ok((tenant, scope))
    }

    /// The tenants `actor` may see, by slug.
    pub async fn list(&self, actor: &Actor) -> StoreResult<Vec<Tenant>> {
        let pool = self.store.pool();
        let rows = match actor {
            Actor::System | Actor::Operator => {
                sqlx::query(concat!(
                    "SELECT ",
                    tenant_columns!(),
                    " FROM tenants ORDER BY slug"
                ))
                .fetch_all(pool)
                .await?
            }
            Actor::Reseller(own) => {
                sqlx::query(concat!(
                    "SELECT ",
                    tenant_columns!(),
                    " FROM tenants WHERE reseller_id = $1 ORDER BY slug"
                ))
                .bind(own.to_string())
                .fetch_all(pool)
                .await?
            }
            Actor::CustomerAdmin(own) => {
                sqlx::query(concat!(
                    "SELECT ",
                    tenant_columns!(),
                    " FROM tenants WHERE id = $1"
                ))
                .bind(own.to_string())
                .fetch_all(pool)
                .await?
            }
            _ => {
                return Err(StoreError::Forbidden {
                    reason: "unknown actor",
                });
            }
        };
        rows.iter().map(tenant_from_row).collect()
    }

    /// Renames the scoped tenant and/or moves it to another SIP domain.
    pub async fn update(
        &self,
        scope: &TenantScope,
        name: &DisplayName,
        sip_domain: &SipDomain,
    ) -> StoreResult<Tenant> {
        let result = sqlx::query(
            "UPDATE tenants SET name = $1, sip_domain = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(name.to_string())
        .bind(sip_domain.to_string())
        .bind(now_ms())
        .bind(scope.tenant_id().to_string())
        .execute(self.store.pool())
        .await?;
        affected(result.rows_affected(), "tenant")?;
        self.store
            .changed(&[ConfigChange::Tenant(scope.tenant_id())])
            .await;
        self.get(scope).await
    }

    /// Sets the scoped tenant's status (a suspended tenant's credentials stop working at once).
    pub async fn set_status(&self, scope: &TenantScope, status: TenantStatus) -> StoreResult<()> {
        let result = sqlx::query("UPDATE tenants SET status = $1, updated_at = $2 WHERE id = $3")
            .bind(status.as_str())
            .bind(now_ms())
            .bind(scope.tenant_id().to_string())
            .execute(self.store.pool())
            .await?;
        affected(result.rows_affected(), "tenant")?;
        self.store
            .changed(&[ConfigChange::Tenant(scope.tenant_id())])
            .await;
        Ok(())
    }

    /// Deletes the scoped tenant with its users, devices, credentials, whitelist and
    /// bindings; its numbers go back to the free inventory. Customer admins may not.
    pub async fn delete(&self, actor: &Actor, scope: &TenantScope) -> StoreResult<()> {
        if matches!(actor, Actor::CustomerAdmin(_)) {
            return Err(StoreError::Forbidden {
                reason: "customers cannot delete their tenant",
            });
        }
        let tenant = scope.tenant_id().to_string();
        let mut transaction = self.store.pool().begin().await?;
        sqlx::query("UPDATE phone_numbers SET tenant_id = NULL, user_id = NULL, updated_at = $1 WHERE tenant_id = $2")
            .bind(now_ms())
            .bind(&tenant)
            .execute(&mut *transaction)
            .await?;
        sqlx::query("DELETE FROM api_tokens WHERE tenant_id = $1")
            .bind(&tenant)
            .execute(&mut *transaction)
            .await?;
        let result = sqlx::query("DELETE FROM tenants WHERE id = $1")
            .bind(&tenant)
            .execute(&mut *transaction)
            .await?;
        affected(result.rows_affected(), "tenant")?;
        transaction.commit().await?;
        self.store
            .changed(&[ConfigChange::Tenant(scope.tenant_id())])
            .await;
        Ok(())
    }

    /// Every tenant (for the directory).
    pub(crate) async fn load_all(&self) -> StoreResult<Vec<Tenant>> {
        let rows = sqlx::query(concat!("SELECT ", tenant_columns!(), " FROM tenants"))
            .fetch_all(self.store.pool())
            .await?;
        rows.iter().map(tenant_from_row).collect()
    }
}
