//! IP whitelist entries of a tenant and of its users.

use ipnet::IpNet;
use pbx_domain::{IpWhitelist, UserId, WhitelistEntry, WhitelistEntryId, parse_network};
use sqlx::any::AnyRow;

use crate::changes::ConfigChange;
use crate::error::{StoreError, StoreResult};
use crate::rows::{corrupt, int, new_id, now_ms, parse, parse_opt, text};
use crate::store::{Store, TenantScope};

macro_rules! entry_columns {
    () => {
        "id, tenant_id, user_id, network, description, created_at"
    };
}

/// IP whitelist entries, always within one tenant scope.
#[derive(Debug, Clone, Copy)]
pub struct Whitelist<'a> {
    store: &'a Store,
}

impl Store {
    /// The IP whitelist repository.
    pub const fn whitelist(&self) -> Whitelist<'_> {
        Whitelist { store: self }
    }
}

fn entry_from_row(row: &AnyRow) -> StoreResult<WhitelistEntry> {
    let network = parse_network(&text(row, "network")?)
        .map_err(|source| corrupt("ip_whitelist", "network", source))?;
    Ok(WhitelistEntry {
        id: parse(row, "ip_whitelist", "id")?,
        tenant_id: parse(row, "ip_whitelist", "tenant_id")?,
        user_id: parse_opt(row, "ip_whitelist", "user_id")?,
        network,
        description: text(row, "description")?,
        created_at_ms: int(row, "created_at")?,
    })
}

/// What adding or removing `entry` changes: its user, or the tenant for a tenant-wide entry.
const fn change_of(entry: &WhitelistEntry) -> ConfigChange {
    match entry.user_id {
        Some(user) => ConfigChange::User(entry.tenant_id, user),
        None => ConfigChange::Tenant(entry.tenant_id),
    }
}

impl Whitelist<'_> {
    /// Adds a network to the scoped tenant's list, or to one user's list when `user` is set.
    pub async fn add(
        &self,
        scope: &TenantScope,
        user: Option<UserId>,
        network: IpNet,
        description: &str,
    ) -> StoreResult<WhitelistEntry> {
        let entry = WhitelistEntry {
            id: new_id(WhitelistEntryId::from_parts),
            tenant_id: scope.tenant_id(),
            user_id: user,
            network: network.trunc(),
            description: description.to_owned(),
            created_at_ms: now_ms(),
        };
        sqlx::query(concat!(
            "INSERT INTO ip_whitelist (",
            entry_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6)"
        ))
        .bind(entry.id.to_string())
        .bind(entry.tenant_id.to_string())
        .bind(entry.user_id.map(|id| id.to_string()))
        .bind(entry.network.to_string())
        .bind(entry.description.clone())
        .bind(entry.created_at_ms)
        .execute(self.store.pool())
        .await
        .map_err(|error| match StoreError::from(error) {
            StoreError::InvalidReference { .. } => StoreError::InvalidReference { what: "user" },
            other => other,
        })?;
        self.store.changed(&[change_of(&entry)]).await;
        Ok(entry)
    }

    /// All entries of the scoped tenant (tenant-wide and per user).
    pub async fn list(&self, scope: &TenantScope) -> StoreResult<Vec<WhitelistEntry>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            entry_columns!(),
            " FROM ip_whitelist WHERE tenant_id = $1 ORDER BY id"
        ))
        .bind(scope.tenant_id().to_string())
        .fetch_all(self.store.pool())
        .await?;
        rows.iter().map(entry_from_row).collect()
    }

    /// The scoped tenant's tenant-wide list, ready for matching.
    pub async fn tenant_list(&self, scope: &TenantScope) -> StoreResult<IpWhitelist> {
        let entries = self.list(scope).await?;
        Ok(IpWhitelist::new(
            entries
                .into_iter()
                .filter(|entry| entry.user_id.is_none())
                .map(|entry| entry.network),
        ))
    }

    /// One user's list, ready for matching.
    pub async fn user_list(&self, scope: &TenantScope, user: UserId) -> StoreResult<IpWhitelist> {
        let entries = self.list(scope).await?;
        Ok(IpWhitelist::new(
            entries
                .into_iter()
                .filter(|entry| entry.user_id == Some(user))
                .map(|entry| entry.network),
        ))
    }

    /// Removes an entry of the scoped tenant.
    pub async fn remove(&self, scope: &TenantScope, id: WhitelistEntryId) -> StoreResult<()> {
        let row = sqlx::query(concat!(
            "DELETE FROM ip_whitelist WHERE tenant_id = $1 AND id = $2 RETURNING ",
            entry_columns!()
        ))
        .bind(scope.tenant_id().to_string())
        .bind(id.to_string())
        .fetch_optional(self.store.pool())
        .await?
        .ok_or(StoreError::NotFound {
            what: "whitelist entry",
        })?;
        let entry = entry_from_row(&row)?;
        self.store.changed(&[change_of(&entry)]).await;
        Ok(())
    }

    /// The entries that narrow one user (`Some(user)`) or the tenant-wide entries (`None`),
    /// for the directory.
    pub(crate) async fn entries_of(
        &self,
        scope: &TenantScope,
        user: Option<UserId>,
    ) -> StoreResult<Vec<WhitelistEntry>> {
        let query = match user {
            Some(user) => sqlx::query(concat!(
                "SELECT ",
                entry_columns!(),
                " FROM ip_whitelist WHERE tenant_id = $1 AND user_id = $2"
            ))
            .bind(scope.tenant_id().to_string())
            .bind(user.to_string()),
            None => sqlx::query(concat!(
                "SELECT ",
                entry_columns!(),
                " FROM ip_whitelist WHERE tenant_id = $1 AND user_id IS NULL"
            ))
            .bind(scope.tenant_id().to_string()),
        };
        let rows = query.fetch_all(self.store.pool()).await?;
        rows.iter().map(entry_from_row).collect()
    }

    /// Every entry (for the directory).
    pub(crate) async fn load_all(&self) -> StoreResult<Vec<WhitelistEntry>> {
        let rows = sqlx::query(concat!("SELECT ", entry_columns!(), " FROM ip_whitelist"))
            .fetch_all(self.store.pool())
            .await?;
        rows.iter().map(entry_from_row).collect()
    }
}
