//! The first operator token of a fresh installation.

use pbx_domain::{Actor, ApiRole, ApiTokenId, ApiTokenSecret, TokenHash};
use pbx_store::{Store, StoreError};
use serde_json::json;

use crate::state::now_ms;

/// What [`bootstrap_operator_token`] did.
#[derive(Debug)]
#[non_exhaustive]
pub enum Bootstrapped {
    /// A usable operator token exists already; nothing was created.
    Existing,
    /// A token was generated: print its secret once (it is not stored).
    Generated(ApiTokenSecret),
    /// The secret given by the administrator was stored (as its hash); do not print it.
    Provided,
}

/// Why the bootstrap token could not be created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BootstrapError {
    /// The given secret is too short or has characters other than printable ASCII.
    #[error("the bootstrap token must be 32 to 256 printable ASCII characters without spaces")]
    WeakSecret,
    /// The given secret belongs to a token that was revoked: it cannot be reused.
    #[error("the bootstrap token was used before and revoked; choose another")]
    RevokedSecret,
    /// The store failed.
    #[error("store error while creating the bootstrap token")]
    Store(#[from] StoreError),
}

/// Creates the first operator token when no usable one exists. With `provided` (from
/// `CLOUDPBX_BOOTSTRAP_TOKEN`), that secret becomes the token; otherwise a random one is
/// generated and returned for the server to print once. Either way only its SHA-256 hash is
/// stored, and the creation is audited.
pub async fn bootstrap_operator_token(
    store: &Store,
    provided: Option<&str>,
) -> Result<Bootstrapped, BootstrapError> {
    let now = now_ms();
    let tokens = store.api_tokens().list(&Actor::System).await?;
    let usable = tokens
        .iter()
        .any(|token| token.scope.role() == ApiRole::Operator && token.is_usable(now));
    if usable {
        return Ok(Bootstrapped::Existing);
    }
    let name = "bootstrap operator token";
    let result = match provided {
        None => {
            let (token, secret) = store
                .api_tokens()
                .create(&Actor::System, name, pbx_domain::ApiScope::Operator, None)
                .await?;
            audit(store, token.id).await?;
            Bootstrapped::Generated(secret)
        }
        Some(secret) => {
            let secret = secret.trim();
            let strong =
                (32..=256).contains(&secret.len()) && secret.bytes().all(|b| b.is_ascii_graphic());
            if !strong {
                return Err(BootstrapError::WeakSecret);
            }
            // The store only creates tokens with secrets it draws itself; an administrator's
            // chosen secret is inserted here with the same columns.
            let id = ApiTokenId::from_parts(
                u64::try_from(now).unwrap_or(0),
                &rand::random::<[u8; 10]>(),
            );
            let inserted = sqlx::query(
                "INSERT INTO api_tokens (token_hash, id, name, role, reseller_id, tenant_id, created_at, \
                 last_used_at, revoked_at, expires_at) VALUES ($1, $2, $3, $4, NULL, NULL, $5, NULL, NULL, NULL)",
            )
            .bind(TokenHash::of(secret).as_hex().to_owned())
            .bind(id.to_string())
            .bind(name)
            .bind(ApiRole::Operator.as_str())
            .bind(now)
            .execute(store.pool())
            .await;
            match inserted.map_err(StoreError::from) {
                Ok(_) => {}
                Err(StoreError::Conflict { .. }) => return Err(BootstrapError::RevokedSecret),
                Err(other) => return Err(other.into()),
            }
            audit(store, id).await?;
            Bootstrapped::Provided
        }
    };
    Ok(result)
}

async fn audit(store: &Store, token: ApiTokenId) -> Result<(), StoreError> {
    let payload =
        json!({ "actor": Actor::System, "token_id": null, "details": { "api_token_id": token } });
    store
        .events()
        .append(now_ms(), None, "api_token.bootstrapped", &payload)
        .await?;
    Ok(())
}
