//! API tokens: opaque random secrets, stored as SHA-256 hashes, revocable.

use pbx_domain::credentials::API_TOKEN_RANDOM_BYTES;
use pbx_domain::{Actor, ApiScope, ApiToken, ApiTokenId, ApiTokenSecret, TokenHash};
use sqlx::any::AnyRow;

use crate::error::{StoreError, StoreResult};
use crate::rows::{affected, corrupt, int, int_opt, new_id, now_ms, parse, parse_opt, text};
use crate::store::Store;

macro_rules! token_columns {
    () => {
        "id, name, role, reseller_id, tenant_id, created_at, last_used_at, revoked_at, expires_at"
    };
}

/// API tokens.
#[derive(Debug, Clone, Copy)]
pub struct ApiTokens<'a> {
    store: &'a Store,
}

impl Store {
    /// The API tokens repository.
    pub const fn api_tokens(&self) -> ApiTokens<'_> {
        ApiTokens { store: self }
    }
}

fn token_from_row(row: &AnyRow) -> StoreResult<ApiToken> {
    let scope = ApiScope::from_columns(
        parse(row, "api_tokens", "role")?,
        parse_opt(row, "api_tokens", "reseller_id")?,
        parse_opt(row, "api_tokens", "tenant_id")?,
    )
    .map_err(|source| corrupt("api_tokens", "role", source))?;
    Ok(ApiToken {
        id: parse(row, "api_tokens", "id")?,
        name: text(row, "name")?,
        scope,
        created_at_ms: int(row, "created_at")?,
        last_used_at_ms: int_opt(row, "last_used_at")?,
        revoked_at_ms: int_opt(row, "revoked_at")?,
        expires_at_ms: int_opt(row, "expires_at")?,
    })
}

impl ApiTokens<'_> {
    /// Creates a token for `scope`, returning it with its secret (shown once). The operator
    /// may create any token; a reseller tokens for itself and for its tenants' admins; a
    /// customer admin tokens for its own tenant.
    pub async fn create(
        &self,
        actor: &Actor,
        name: &str,
        scope: ApiScope,
        expires_at_ms: Option<i64>,
    ) -> StoreResult<(ApiToken, ApiTokenSecret)> {
        let allowed = match (actor, scope) {
            (Actor::System | Actor::Operator, _) => true,
            (Actor::Reseller(own), ApiScope::Reseller { reseller_id }) => *own == reseller_id,
            (Actor::Reseller(_), ApiScope::CustomerAdmin { tenant_id }) => {
                self.store.scope(actor, tenant_id).await.is_ok()
            }
            (Actor::CustomerAdmin(own), ApiScope::CustomerAdmin { tenant_id }) => *own == tenant_id,
            _ => false,
        };
        if !allowed {
            return Err(StoreError::Forbidden {
                reason: "cannot create a token with this scope",
            });
        }
        let secret = ApiTokenSecret::generate(&rand::random::<[u8; API_TOKEN_RANDOM_BYTES]>());
        let token = ApiToken {
            id: new_id(ApiTokenId::from_parts),
            name: name.to_owned(),
            scope,
            created_at_ms: now_ms(),
            last_used_at_ms: None,
            revoked_at_ms: None,
            expires_at_ms,
        };
        sqlx::query(concat!(
            "INSERT INTO api_tokens (token_hash, ",
            token_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, NULL, $8)"
        ))
        .bind(secret.hash().as_hex().to_owned())
        .bind(token.id.to_string())
        .bind(token.name.clone())
        .bind(scope.role().as_str())
        .bind(scope.reseller_id().map(|id| id.to_string()))
        .bind(scope.tenant_id().map(|id| id.to_string()))
        .bind(token.created_at_ms)
        .bind(expires_at_ms)
        .execute(self.store.pool())
        .await?;
        Ok((token, secret))
    }

    /// Looks up a presented bearer secret. Returns the token if it exists, is not revoked
    /// and not expired at `now_ms`, and records the use. Unknown, revoked and expired
    /// tokens all give `None`.
    pub async fn authenticate(
        &self,
        presented: &str,
        now_ms: i64,
    ) -> StoreResult<Option<ApiToken>> {
        let hash = TokenHash::of(presented);
        let row = sqlx::query(concat!(
            "SELECT ",
            token_columns!(),
            " FROM api_tokens WHERE token_hash = $1"
        ))
        .bind(hash.as_hex().to_owned())
        .fetch_optional(self.store.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let mut token = token_from_row(&row)?;
        if !token.is_usable(now_ms) {
            return Ok(None);
        }
        sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
            .bind(now_ms)
            .bind(token.id.to_string())
            .execute(self.store.pool())
            .await?;
        token.last_used_at_ms = Some(now_ms);
        Ok(Some(token))
    }

    /// The tokens `actor` may see: all (operator), its own and its tenants' (reseller), its
    /// tenant's (customer admin).
    pub async fn list(&self, actor: &Actor) -> StoreResult<Vec<ApiToken>> {
        let pool = self.store.pool();
        let rows = match actor {
            Actor::System | Actor::Operator => sqlx::query(concat!("SELECT ", token_columns!(), " FROM api_tokens ORDER BY id")).fetch_all(pool).await?,
            Actor::Reseller(own) => {
                sqlx::query(concat!(
                    "SELECT ", token_columns!(), " FROM api_tokens WHERE reseller_id = $1 OR tenant_id IN (SELECT id FROM tenants WHERE reseller_id = $1) ORDER BY id"
                ))
                .bind(own.to_string())
                .fetch_all(pool)
                .await?
            }
            Actor::CustomerAdmin(own) => {
                sqlx::query(concat!("SELECT ", token_columns!(), " FROM api_tokens WHERE tenant_id = $1 ORDER BY id")).bind(own.to_string()).fetch_all(pool).await?
            }
            _ => return Err(StoreError::Forbidden { reason: "unknown actor" }),
        };
        rows.iter().map(token_from_row).collect()
    }

    /// Revokes a token that `actor` may see.
    pub async fn revoke(&self, actor: &Actor, id: ApiTokenId, now_ms: i64) -> StoreResult<()> {
        let visible = self
            .list(actor)
            .await?
            .into_iter()
            .any(|token| token.id == id);
        if !visible {
            return Err(StoreError::NotFound { what: "API token" });
        }
        let result = sqlx::query(
            "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
        )
        .bind(now_ms)
        .bind(id.to_string())
        .execute(self.store.pool())
        .await?;
        affected(result.rows_affected(), "API token")
    }
}
