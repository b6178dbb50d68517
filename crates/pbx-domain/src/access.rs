//! Who is acting (an [`Actor`]) and what an API token may touch ([`ApiScope`]).

use serde::{Deserialize, Serialize};

use crate::error::ValidationError;
use crate::ids::{ApiTokenId, ResellerId, TenantId};
use crate::kinds::ApiRole;

/// The party on whose behalf a store operation runs. Tenant data is only reachable through
/// a scope that the store grants after checking the actor against the tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Actor {
    /// The platform itself (registrar, call engine, jobs): any tenant.
    System,
    /// The platform operator: any tenant.
    Operator,
    /// A reseller: only tenants whose `reseller_id` is this reseller.
    Reseller(ResellerId),
    /// A customer company's admin: only this tenant.
    CustomerAdmin(TenantId),
}

impl Actor {
    /// Whether this actor may act on `tenant`, whose owning reseller is `tenant_reseller`.
    pub fn may_access(&self, tenant: TenantId, tenant_reseller: Option<ResellerId>) -> bool {
        match self {
            Self::System | Self::Operator => true,
            Self::Reseller(reseller) => tenant_reseller == Some(*reseller),
            Self::CustomerAdmin(own) => *own == tenant,
        }
    }
}

/// What an API token may act for; the role follows from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ApiScope {
    /// Operator token.
    Operator,
    /// Reseller token for one reseller.
    Reseller {
        /// The reseller.
        reseller_id: ResellerId,
    },
    /// Customer admin token for one tenant.
    CustomerAdmin {
        /// The tenant.
        tenant_id: TenantId,
    },
}

impl ApiScope {
    /// The role.
    pub const fn role(&self) -> ApiRole {
        match self {
            Self::Operator => ApiRole::Operator,
            Self::Reseller { .. } => ApiRole::Reseller,
            Self::CustomerAdmin { .. } => ApiRole::CustomerAdmin,
        }
    }

    /// The actor a request with this token acts as.
    pub const fn actor(&self) -> Actor {
        match *self {
            Self::Operator => Actor::Operator,
            Self::Reseller { reseller_id } => Actor::Reseller(reseller_id),
            Self::CustomerAdmin { tenant_id } => Actor::CustomerAdmin(tenant_id),
        }
    }

    /// Rebuilds a scope from stored columns, refusing inconsistent combinations.
    pub fn from_columns(
        role: ApiRole,
        reseller_id: Option<ResellerId>,
        tenant_id: Option<TenantId>,
    ) -> Result<Self, ValidationError> {
        let inconsistent = |reason| {
            Err(ValidationError::Inconsistent {
                kind: "API token scope",
                reason,
            })
        };
        match (role, reseller_id, tenant_id) {
            (ApiRole::Operator, None, None) => Ok(Self::Operator),
            (ApiRole::Reseller, Some(reseller_id), None) => Ok(Self::Reseller { reseller_id }),
            (ApiRole::CustomerAdmin, None, Some(tenant_id)) => {
                Ok(Self::CustomerAdmin { tenant_id })
            }
            (ApiRole::Operator, ..) => inconsistent("operator tokens have no reseller or tenant"),
            (ApiRole::Reseller, ..) => inconsistent("reseller tokens have exactly a reseller"),
            (ApiRole::CustomerAdmin, ..) => {
                inconsistent("customer admin tokens have exactly a tenant")
            }
        }
    }

    /// The reseller column value.
    pub const fn reseller_id(&self) -> Option<ResellerId> {
        match *self {
            Self::Reseller { reseller_id } => Some(reseller_id),
            _ => None,
        }
    }

    /// The tenant column value.
    pub const fn tenant_id(&self) -> Option<TenantId> {
        match *self {
            Self::CustomerAdmin { tenant_id } => Some(tenant_id),
            _ => None,
        }
    }
}

/// A stored API token (its secret is only known as a hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiToken {
    /// Id.
    pub id: ApiTokenId,
    /// What the token is for ("billing export").
    pub name: String,
    /// What it may act for.
    pub scope: ApiScope,
    /// Creation time.
    pub created_at_ms: i64,
    /// Last successful use.
    pub last_used_at_ms: Option<i64>,
    /// Revocation time; a revoked token is refused.
    pub revoked_at_ms: Option<i64>,
    /// Optional expiry.
    pub expires_at_ms: Option<i64>,
}

impl ApiToken {
    /// Whether the token may be used at `now_ms`.
    pub fn is_usable(&self, now_ms: i64) -> bool {
        self.revoked_at_ms.is_none() && self.expires_at_ms.is_none_or(|expiry| now_ms < expiry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actors_reach_only_their_tenants() {
        let tenant = TenantId::from_parts(1, &[1; 10]);
        let other = TenantId::from_parts(1, &[2; 10]);
        let reseller = ResellerId::from_parts(1, &[3; 10]);
        assert!(Actor::Operator.may_access(tenant, None));
        assert!(Actor::Reseller(reseller).may_access(tenant, Some(reseller)));
        assert!(!Actor::Reseller(reseller).may_access(tenant, None));
        assert!(Actor::CustomerAdmin(tenant).may_access(tenant, Some(reseller)));
        assert!(!Actor::CustomerAdmin(tenant).may_access(other, Some(reseller)));
    }

    #[test]
    fn scope_columns_must_be_consistent() {
        let tenant = TenantId::from_parts(1, &[1; 10]);
        let scope = ApiScope::from_columns(ApiRole::CustomerAdmin, None, Some(tenant)).unwrap();
        assert_eq!(scope.actor(), Actor::CustomerAdmin(tenant));
        assert_eq!(scope.role(), ApiRole::CustomerAdmin);
        assert!(ApiScope::from_columns(ApiRole::Operator, None, Some(tenant)).is_err());
        assert!(ApiScope::from_columns(ApiRole::Reseller, None, None).is_err());
    }

    #[test]
    fn revoked_or_expired_tokens_are_unusable() {
        let mut token = ApiToken {
            id: ApiTokenId::from_parts(1, &[1; 10]),
            name: "t".into(),
            scope: ApiScope::Operator,
            created_at_ms: 0,
            last_used_at_ms: None,
            revoked_at_ms: None,
            expires_at_ms: Some(100),
        };
        assert!(token.is_usable(99));
        assert!(!token.is_usable(100));
        token.expires_at_ms = None;
        token.revoked_at_ms = Some(5);
        assert!(!token.is_usable(6));
    }
}
