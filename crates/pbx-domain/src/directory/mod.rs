//! The hot-path directory: an immutable snapshot of everything the registrar, the call
//! engine and the policy look up per request, so no request waits on the database.
//!
//! The store builds a [`DirectorySnapshot`] from its tables once ([`DirectorySnapshot::build`])
//! and, after a configuration change, patches a clone of the current one with the rows of
//! what changed ([`DirectorySnapshot::replace_tenant`], [`DirectorySnapshot::replace_user`],
//! [`DirectorySnapshot::replace_number`]) and swaps it in. Readers keep using the snapshot
//! they hold (an `Arc`), so a lookup never blocks on a reload. The maps inside are
//! copy-on-write and sharded (`cow_map`), so a clone is a handful of pointer copies and a
//! patch copies a few small shards: one change costs about the same on a platform with ten
//! users as on one with a million, where a full rebuild per change made bulk provisioning
//! quadratic.

mod cow_map;

use std::collections::HashMap;
use std::net::IpAddr;

use cow_map::CowMap;

use crate::entities::{Device, PhoneNumber, SipCredential, Tenant, User, WhitelistEntry};
use crate::ids::{DeviceId, NumberId, TenantId, UserId};
use crate::kinds::TenantStatus;
use crate::whitelist::IpWhitelist;

/// The rows a snapshot is built from (all tenants).
#[derive(Debug, Clone, Default)]
pub struct DirectoryParts {
    /// All tenants.
    pub tenants: Vec<Tenant>,
    /// All users.
    pub users: Vec<User>,
    /// All devices.
    pub devices: Vec<Device>,
    /// All SIP credentials.
    pub credentials: Vec<SipCredential>,
    /// All whitelist entries.
    pub whitelist: Vec<WhitelistEntry>,
    /// All phone numbers.
    pub numbers: Vec<PhoneNumber>,
}

/// Everything the directory holds about one user: the user, its devices, their credentials
/// and the user's own whitelist entries (what [`DirectorySnapshot::replace_user`] takes).
#[derive(Debug, Clone)]
pub struct UserRows {
    /// The user.
    pub user: User,
    /// The user's devices.
    pub devices: Vec<Device>,
    /// The credentials of those devices.
    pub credentials: Vec<SipCredential>,
    /// Whitelist entries that narrow this user (`user_id` is the user).
    pub whitelist: Vec<WhitelistEntry>,
}

/// Where a DID goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NumberAssignment {
    /// The number's id.
    pub number_id: NumberId,
    /// The tenant it is assigned to.
    pub tenant_id: TenantId,
    /// The user it rings, if assigned to one.
    pub user_id: Option<UserId>,
}

/// An immutable, indexed view of the configuration.
#[derive(Debug, Clone, Default)]
pub struct DirectorySnapshot {
    generation: u64,
    tenants: CowMap<TenantId, Tenant>,
    tenant_by_slug: CowMap<String, TenantId>,
    tenant_by_domain: CowMap<String, TenantId>,
    users: CowMap<UserId, User>,
    user_by_extension: CowMap<TenantId, CowMap<String, UserId>>,
    devices: CowMap<DeviceId, Device>,
    device_by_mac: CowMap<String, DeviceId>,
    credentials: CowMap<String, SipCredential>,
    tenant_whitelist: CowMap<TenantId, IpWhitelist>,
    user_whitelist: CowMap<UserId, IpWhitelist>,
    numbers: CowMap<String, NumberAssignment>,
    /// What each user owns in the maps above, so [`Self::replace_user`] removes exactly
    /// the user's old rows without scanning.
    owned: CowMap<UserId, Owned>,
}

/// The devices and credential names a user owns in a snapshot.
#[derive(Debug, Clone, Default)]
struct Owned {
    devices: Vec<DeviceId>,
    credentials: Vec<String>,
}

impl DirectorySnapshot {
    /// Indexes `parts`; `generation` is the store's change counter the rows were read at.
    /// Devices, credentials and user whitelist entries of a user missing from `parts` are
    /// left out (the store's foreign keys rule them out).
    pub fn build(generation: u64, parts: DirectoryParts) -> Self {
        let mut snapshot = Self {
            generation,
            ..Self::default()
        };
        let mut tenant_whitelist: HashMap<TenantId, Vec<WhitelistEntry>> = HashMap::new();
        let mut users: HashMap<UserId, UserRows> = parts
            .users
            .into_iter()
            .map(|user| {
                let rows = UserRows {
                    user,
                    devices: Vec::new(),
                    credentials: Vec::new(),
                    whitelist: Vec::new(),
                };
                (rows.user.id, rows)
            })
            .collect();
        for device in parts.devices {
            if let Some(rows) = users.get_mut(&device.user_id) {
                rows.devices.push(device);
            }
        }
        for credential in parts.credentials {
            if let Some(rows) = users.get_mut(&credential.user_id) {
                rows.credentials.push(credential);
            }
        }
        for entry in parts.whitelist {
            match entry.user_id {
                Some(user) => {
                    if let Some(rows) = users.get_mut(&user) {
                        rows.whitelist.push(entry);
                    }
                }
                None => tenant_whitelist
                    .entry(entry.tenant_id)
                    .or_default()
                    .push(entry),
            }
        }
        for tenant in parts.tenants {
            let whitelist = tenant_whitelist.remove(&tenant.id).unwrap_or_default();
            snapshot.insert_tenant(tenant, &whitelist);
        }
        for rows in users.into_values() {
            snapshot.insert_user(rows);
        }
        for number in parts.numbers {
            snapshot.insert_number(&number);
        }
        snapshot
    }

    /// Marks the snapshot as reflecting store change counter `generation` (after patching
    /// it with every change up to there).
    pub const fn set_generation(&mut self, generation: u64) {
        self.generation = generation;
    }

    /// Replaces what the snapshot holds of tenant `id` itself: the tenant row and its
    /// tenant-wide whitelist (`tenant` as read now, with its entries whose `user_id` is
    /// `None`). `None` means the tenant is gone: it is removed with all its users (and
    /// their devices and credentials) and its numbers.
    pub fn replace_tenant(&mut self, id: TenantId, tenant: Option<(Tenant, Vec<WhitelistEntry>)>) {
        if let Some(old) = self.tenants.remove(&id) {
            self.tenant_by_slug
                .remove_if(old.slug.as_str(), |owner| *owner == id);
            self.tenant_by_domain
                .remove_if(old.sip_domain.as_str(), |owner| *owner == id);
        }
        self.tenant_whitelist.remove(&id);
        match tenant {
            Some((tenant, whitelist)) => self.insert_tenant(tenant, &whitelist),
            None => {
                // Rare (a tenant deleted): a scan is fine and does not trust the indexes.
                let users: Vec<UserId> = self
                    .users
                    .iter()
                    .filter(|(_, user)| user.tenant_id == id)
                    .map(|(user, _)| *user)
                    .collect();
                for user in users {
                    self.remove_user(user);
                }
                self.user_by_extension.remove(&id);
                let numbers: Vec<String> = self
                    .numbers
                    .iter()
                    .filter(|(_, assignment)| assignment.tenant_id == id)
                    .map(|(e164, _)| e164.clone())
                    .collect();
                for e164 in numbers {
                    self.numbers.remove(e164.as_str());
                }
            }
        }
    }

    /// Replaces everything the snapshot holds of user `id` (the user, its devices, their
    /// credentials, its whitelist) with `rows` as read now; `None` means the user is gone.
    pub fn replace_user(&mut self, id: UserId, rows: Option<UserRows>) {
        self.remove_user(id);
        if let Some(rows) = rows {
            self.insert_user(rows);
        }
    }

    /// Replaces number `id` with `number` as read now (`None`: deleted). A number that is
    /// not assigned to a tenant is not in the snapshot.
    pub fn replace_number(&mut self, id: NumberId, number: Option<&PhoneNumber>) {
        match number {
            Some(number) => {
                self.numbers
                    .remove_if(number.e164.as_str(), |held| held.number_id == id);
                self.insert_number(number);
            }
            None => {
                let held: Vec<String> = self
                    .numbers
                    .iter()
                    .filter(|(_, assignment)| assignment.number_id == id)
                    .map(|(e164, _)| e164.clone())
                    .collect();
                for e164 in held {
                    self.numbers.remove(e164.as_str());
                }
            }
        }
    }

    fn insert_tenant(&mut self, tenant: Tenant, whitelist: &[WhitelistEntry]) {
        let id = tenant.id;
        self.tenant_by_slug.insert(tenant.slug.to_string(), id);
        self.tenant_by_domain
            .insert(tenant.sip_domain.to_string(), id);
        self.tenants.insert(id, tenant);
        if !whitelist.is_empty() {
            self.tenant_whitelist.insert(
                id,
                IpWhitelist::new(whitelist.iter().map(|entry| entry.network)),
            );
        }
    }

    fn insert_user(&mut self, rows: UserRows) {
        let UserRows {
            user,
            devices,
            credentials,
            whitelist,
        } = rows;
        let id = user.id;
        let mut owned = Owned::default();
        for device in devices {
            if let Some(mac) = device.kind.mac() {
                self.device_by_mac.insert(mac.bare(), device.id);
            }
            owned.devices.push(device.id);
            self.devices.insert(device.id, device);
        }
        for credential in credentials {
            let name = credential.auth_username.to_string();
            owned.credentials.push(name.clone());
            self.credentials.insert(name, credential);
        }
        if !whitelist.is_empty() {
            self.user_whitelist.insert(
                id,
                IpWhitelist::new(whitelist.iter().map(|entry| entry.network)),
            );
        }
        self.user_by_extension
            .get_or_default(user.tenant_id)
            .insert(user.extension.to_string(), id);
        self.owned.insert(id, owned);
        self.users.insert(id, user);
    }

    fn remove_user(&mut self, id: UserId) {
        if let Some(old) = self.users.remove(&id)
            && let Some(extensions) = self.user_by_extension.get_mut(&old.tenant_id)
        {
            extensions.remove_if(old.extension.as_str(), |owner| *owner == id);
        }
        self.user_whitelist.remove(&id);
        let Some(owned) = self.owned.remove(&id) else {
            return;
        };
        for device in owned.devices {
            if let Some(old) = self.devices.remove(&device)
                && let Some(mac) = old.kind.mac()
            {
                self.device_by_mac
                    .remove_if(mac.bare().as_str(), |owner| *owner == device);
            }
        }
        for name in owned.credentials {
            self.credentials
                .remove_if(name.as_str(), |credential| credential.user_id == id);
        }
    }

    fn insert_number(&mut self, number: &PhoneNumber) {
        if let Some(tenant_id) = number.tenant_id {
            let assignment = NumberAssignment {
                number_id: number.id,
                tenant_id,
                user_id: number.user_id,
            };
            self.numbers.insert(number.e164.to_string(), assignment);
        }
    }

    /// The store change counter this snapshot reflects.
    pub const fn generation(&self) -> u64 {
        self.generation
    }

    /// The credential with this auth user name, if it may be used now: the credential is
    /// enabled and its tenant active. Disabled and unknown names give the same `None`, so a
    /// caller cannot reveal which names exist.
    pub fn usable_credential(&self, auth_username: &str) -> Option<&SipCredential> {
        let credential = self.credentials.get(auth_username)?;
        let tenant = self.tenants.get(&credential.tenant_id)?;
        (credential.enabled && tenant.status == TenantStatus::Active).then_some(credential)
    }

    /// The credential with this auth user name, whatever its state.
    pub fn credential(&self, auth_username: &str) -> Option<&SipCredential> {
        self.credentials.get(auth_username)
    }

    /// A tenant by id.
    pub fn tenant(&self, id: TenantId) -> Option<&Tenant> {
        self.tenants.get(&id)
    }

    /// A tenant by slug (lower case).
    pub fn tenant_by_slug(&self, slug: &str) -> Option<&Tenant> {
        self.tenant_by_slug
            .get(slug)
            .and_then(|id| self.tenants.get(id))
    }

    /// A tenant by SIP domain (lower case, no trailing dot).
    pub fn tenant_by_domain(&self, domain: &str) -> Option<&Tenant> {
        self.tenant_by_domain
            .get(domain)
            .and_then(|id| self.tenants.get(id))
    }

    /// A user by id.
    pub fn user(&self, id: UserId) -> Option<&User> {
        self.users.get(&id)
    }

    /// The user with `extension` in `tenant`.
    pub fn user_by_extension(&self, tenant: TenantId, extension: &str) -> Option<&User> {
        self.user_by_extension
            .get(&tenant)?
            .get(extension)
            .and_then(|id| self.users.get(id))
    }

    /// A device by id.
    pub fn device(&self, id: DeviceId) -> Option<&Device> {
        self.devices.get(&id)
    }

    /// A desk phone by its bare MAC (`001565aabbcc`).
    pub fn device_by_mac(&self, bare_mac: &str) -> Option<&Device> {
        self.device_by_mac
            .get(bare_mac)
            .and_then(|id| self.devices.get(id))
    }

    /// The tenant-wide whitelist (empty when none is set).
    pub fn tenant_whitelist(&self, tenant: TenantId) -> Option<&IpWhitelist> {
        self.tenant_whitelist.get(&tenant)
    }

    /// Whether `address` may register or call for `tenant` (and `user`), following
    /// [`IpWhitelist::permits`]: no lists means no restriction.
    pub fn whitelist_permits(
        &self,
        tenant: TenantId,
        user: Option<UserId>,
        address: IpAddr,
    ) -> bool {
        let empty = IpWhitelist::default();
        let tenant_list = self.tenant_whitelist.get(&tenant).unwrap_or(&empty);
        let user_list = user.and_then(|user| self.user_whitelist.get(&user));
        IpWhitelist::permits(tenant_list, user_list, address)
    }

    /// Whether `credential` may be used from `address` (REGISTER and INVITE): the tenant's
    /// and user's whitelists permit it, or the credential's device is whitelist-exempt (a
    /// mobile device) and the request came over TLS (`tls`). An exempt device reached over
    /// UDP or TCP from outside the whitelist is refused like any other.
    pub fn source_permitted(&self, credential: &SipCredential, address: IpAddr, tls: bool) -> bool {
        self.whitelist_permits(credential.tenant_id, Some(credential.user_id), address)
            || (tls
                && self
                    .devices
                    .get(&credential.device_id)
                    .is_some_and(|device| device.whitelist_exempt))
    }

    /// Where a DID (canonical E.164) goes, if it is assigned to a tenant.
    pub fn number(&self, e164: &str) -> Option<&NumberAssignment> {
        self.numbers.get(e164)
    }

    /// Whether two snapshots answer every lookup the same way, whatever their generations
    /// (for consistency checks: a patched snapshot against a full reload).
    pub fn same_entries(&self, other: &Self) -> bool {
        let extensions = |snapshot: &Self| {
            snapshot
                .user_by_extension
                .iter()
                .map(|(_, extensions)| extensions.len())
                .sum::<usize>()
        };
        self.tenants.same_entries(&other.tenants)
            && self.tenant_by_slug.same_entries(&other.tenant_by_slug)
            && self.tenant_by_domain.same_entries(&other.tenant_by_domain)
            && self.users.same_entries(&other.users)
            && extensions(self) == extensions(other)
            && self.user_by_extension.iter().all(|(tenant, extensions)| {
                extensions.iter().all(|(extension, user)| {
                    other
                        .user_by_extension
                        .get(tenant)
                        .and_then(|theirs| theirs.get(extension))
                        == Some(user)
                })
            })
            && self.devices.same_entries(&other.devices)
            && self.device_by_mac.same_entries(&other.device_by_mac)
            && self.credentials.same_entries(&other.credentials)
            && self.tenant_whitelist.same_entries(&other.tenant_whitelist)
            && self.user_whitelist.same_entries(&other.user_whitelist)
            && self.numbers.same_entries(&other.numbers)
    }

    /// Counts for logs and metrics: (tenants, users, credentials).
    pub fn counts(&self) -> (usize, usize, usize) {
        (self.tenants.len(), self.users.len(), self.credentials.len())
    }
}

#[cfg(test)]
mod incremental_tests;
#[cfg(test)]
mod tests;
