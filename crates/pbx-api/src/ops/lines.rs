//! IP whitelists, phone numbers, registrations and the audit log of a tenant.

use pbx_domain::{
    Binding, E164, Event, NumberId, PhoneNumber, UserId, WhitelistEntry, WhitelistEntryId,
    parse_network,
};
use pbx_store::TenantScope;
use serde_json::json;

use super::{Ops, free_text};
use crate::error::{ApiError, ApiResult};
use crate::state::now_ms;

impl Ops<'_> {
    /// Adds a network to the tenant's list, or to one user's list.
    pub async fn add_whitelist_entry(
        &self,
        scope: &TenantScope,
        user: Option<UserId>,
        network: &str,
        description: Option<&str>,
    ) -> ApiResult<WhitelistEntry> {
        let network =
            parse_network(network).map_err(|error| ApiError::invalid("network", error))?;
        let description = free_text("description", description.unwrap_or_default(), 200)?;
        let entry = self
            .store
            .whitelist()
            .add(scope, user, network, &description)
            .await?;
        self.audit(
            Some(scope.tenant_id()),
            "ip_whitelist.added",
            json!({ "entry_id": entry.id, "user_id": entry.user_id, "network": entry.network.to_string() }),
        )
        .await?;
        Ok(entry)
    }

    /// The tenant's entries (tenant-wide and per user), or one user's only.
    pub async fn whitelist(
        &self,
        scope: &TenantScope,
        user: Option<UserId>,
    ) -> ApiResult<Vec<WhitelistEntry>> {
        let entries = self.store.whitelist().list(scope).await?;
        Ok(match user {
            Some(user) => entries
                .into_iter()
                .filter(|entry| entry.user_id == Some(user))
                .collect(),
            None => entries,
        })
    }

    /// One entry of the scoped tenant.
    pub async fn whitelist_entry(
        &self,
        scope: &TenantScope,
        id: WhitelistEntryId,
    ) -> ApiResult<WhitelistEntry> {
        self.whitelist(scope, None)
            .await?
            .into_iter()
            .find(|entry| entry.id == id)
            .ok_or(ApiError::NotFound {
                what: "whitelist entry",
            })
    }

    /// Removes an entry.
    pub async fn remove_whitelist_entry(
        &self,
        scope: &TenantScope,
        id: WhitelistEntryId,
    ) -> ApiResult<()> {
        let entry = self.whitelist_entry(scope, id).await?;
        self.store.whitelist().remove(scope, id).await?;
        self.audit(
            Some(scope.tenant_id()),
            "ip_whitelist.removed",
            json!({ "entry_id": id, "user_id": entry.user_id, "network": entry.network.to_string() }),
        )
        .await
    }

    /// Adds a number to the free inventory (operator only).
    pub async fn add_number(&self, number: &E164) -> ApiResult<PhoneNumber> {
        self.require_operator()?;
        let added = self
            .store
            .numbers()
            .add_to_inventory(&self.actor, number)
            .await?;
        self.audit(
            None,
            "number.added",
            json!({ "number_id": added.id, "number": added.e164 }),
        )
        .await?;
        Ok(added)
    }

    /// The free inventory (operator only).
    pub async fn free_numbers(&self) -> ApiResult<Vec<PhoneNumber>> {
        self.require_operator()?;
        Ok(self.store.numbers().list_free(&self.actor).await?)
    }

    /// Assigns `number` to the scoped tenant (operator only), adding it to the inventory
    /// first when it is new, and routes it to `user` if given.
    pub async fn assign_number(
        &self,
        scope: &TenantScope,
        number: &E164,
        user: Option<UserId>,
    ) -> ApiResult<PhoneNumber> {
        self.require_operator()?;
        let free = self.store.numbers().list_free(&self.actor).await?;
        let id = match free.into_iter().find(|candidate| candidate.e164 == *number) {
            Some(existing) => existing.id,
            None => match self
                .store
                .numbers()
                .add_to_inventory(&self.actor, number)
                .await
            {
                Ok(added) => added.id,
                Err(pbx_store::StoreError::Conflict { .. }) => {
                    return Err(ApiError::Conflict {
                        field: "number",
                        message: "the number is already assigned to a tenant".to_owned(),
                    });
                }
                Err(other) => return Err(other.into()),
            },
        };
        let mut assigned = self
            .store
            .numbers()
            .assign_to_tenant(&self.actor, id, scope)
            .await?;
        if user.is_some() {
            assigned = self.store.numbers().assign_user(scope, id, user).await?;
        }
        self.audit(
            Some(scope.tenant_id()),
            "number.assigned",
            json!({ "number_id": id, "number": assigned.e164, "user_id": assigned.user_id }),
        )
        .await?;
        Ok(assigned)
    }

    /// The numbers of the scoped tenant.
    pub async fn numbers(&self, scope: &TenantScope) -> ApiResult<Vec<PhoneNumber>> {
        Ok(self.store.numbers().list(scope).await?)
    }

    /// A number of the scoped tenant, by id or E.164 text.
    pub async fn number(&self, scope: &TenantScope, number: &str) -> ApiResult<PhoneNumber> {
        if let Ok(id) = number.parse::<NumberId>() {
            return Ok(self.store.numbers().get(scope, id).await?);
        }
        let e164 = E164::parse(number).map_err(|_| ApiError::NotFound {
            what: "phone number",
        })?;
        self.numbers(scope)
            .await?
            .into_iter()
            .find(|candidate| candidate.e164 == e164)
            .ok_or(ApiError::NotFound {
                what: "phone number",
            })
    }

    /// Routes a number of the scoped tenant to a user, or to none.
    pub async fn route_number(
        &self,
        scope: &TenantScope,
        number: &PhoneNumber,
        user: Option<UserId>,
    ) -> ApiResult<PhoneNumber> {
        let routed = self
            .store
            .numbers()
            .assign_user(scope, number.id, user)
            .await?;
        self.audit(
            Some(scope.tenant_id()),
            "number.routed",
            json!({ "number_id": routed.id, "number": routed.e164, "user_id": routed.user_id }),
        )
        .await?;
        Ok(routed)
    }

    /// Takes a number back from the scoped tenant into the free inventory (operator only).
    pub async fn release_number(&self, scope: &TenantScope, number: &PhoneNumber) -> ApiResult<()> {
        self.require_operator()?;
        self.store
            .numbers()
            .release(&self.actor, scope, number.id)
            .await?;
        self.audit(
            Some(scope.tenant_id()),
            "number.unassigned",
            json!({ "number_id": number.id, "number": number.e164 }),
        )
        .await
    }

    /// The unexpired registrations of the scoped tenant, or of one user.
    pub async fn registrations(
        &self,
        scope: &TenantScope,
        user: Option<UserId>,
    ) -> ApiResult<Vec<Binding>> {
        let now = now_ms();
        Ok(self
            .store
            .bindings()
            .list(scope)
            .await?
            .into_iter()
            .filter(|binding| binding.record.expires_at_ms > now)
            .filter(|binding| user.is_none_or(|user| binding.record.user_id == user))
            .collect())
    }

    /// Deletes the stored registrations (expired ones too) of the scoped tenant or of one
    /// user; returns how many went. The caller also tells the live registrar.
    pub async fn clear_registrations(
        &self,
        scope: &TenantScope,
        user: Option<UserId>,
    ) -> ApiResult<u64> {
        let bindings = self.store.bindings().list(scope).await?;
        let mut cleared = 0;
        for binding in bindings
            .iter()
            .filter(|binding| user.is_none_or(|user| binding.record.user_id == user))
        {
            match self.store.bindings().remove(scope, binding.id).await {
                Ok(()) => cleared += 1,
                // Removed meanwhile (expired and purged, or a concurrent clear): fine.
                Err(pbx_store::StoreError::NotFound { .. }) => {}
                Err(other) => return Err(other.into()),
            }
        }
        self.audit(
            Some(scope.tenant_id()),
            "registrations.cleared",
            json!({ "user_id": user, "cleared": cleared }),
        )
        .await?;
        Ok(cleared)
    }

    /// The newest audit events of the scoped tenant.
    pub async fn events(&self, scope: &TenantScope, limit: u32) -> ApiResult<Vec<Event>> {
        Ok(self.store.events().list(scope, limit).await?)
    }

    /// The newest audit events of the platform (operator only).
    pub async fn all_events(&self, limit: u32) -> ApiResult<Vec<Event>> {
        self.require_operator()?;
        Ok(self.store.events().list_all(&self.actor, limit).await?)
    }
}
