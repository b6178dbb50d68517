//! The hot-path directory: an immutable snapshot of everything the registrar, the call
//! engine and the policy look up per request, so no request waits on the database.
//!
//! The store builds a [`DirectorySnapshot`] from its tables and swaps in a new one after
//! every configuration change; readers keep using the snapshot they hold (an `Arc`), so a
//! lookup never blocks on a reload.

use std::collections::HashMap;
use std::net::IpAddr;

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
    tenants: HashMap<TenantId, Tenant>,
    tenant_by_slug: HashMap<String, TenantId>,
    tenant_by_domain: HashMap<String, TenantId>,
    users: HashMap<UserId, User>,
    user_by_extension: HashMap<TenantId, HashMap<String, UserId>>,
    devices: HashMap<DeviceId, Device>,
    device_by_mac: HashMap<String, DeviceId>,
    credentials: HashMap<String, SipCredential>,
    tenant_whitelist: HashMap<TenantId, IpWhitelist>,
    user_whitelist: HashMap<UserId, IpWhitelist>,
    numbers: HashMap<String, NumberAssignment>,
}

impl DirectorySnapshot {
    /// Indexes `parts`; `generation` is the store's change counter the rows were read at.
    pub fn build(generation: u64, parts: DirectoryParts) -> Self {
        let mut snapshot = Self {
            generation,
            ..Self::default()
        };
        for tenant in parts.tenants {
            snapshot
                .tenant_by_slug
                .insert(tenant.slug.to_string(), tenant.id);
            snapshot
                .tenant_by_domain
                .insert(tenant.sip_domain.to_string(), tenant.id);
            snapshot.tenants.insert(tenant.id, tenant);
        }
        for user in parts.users {
            snapshot
                .user_by_extension
                .entry(user.tenant_id)
                .or_default()
                .insert(user.extension.to_string(), user.id);
            snapshot.users.insert(user.id, user);
        }
        for device in parts.devices {
            if let Some(mac) = device.kind.mac() {
                snapshot.device_by_mac.insert(mac.bare(), device.id);
            }
            snapshot.devices.insert(device.id, device);
        }
        for credential in parts.credentials {
            snapshot
                .credentials
                .insert(credential.auth_username.to_string(), credential);
        }
        for entry in parts.whitelist {
            let list = match entry.user_id {
                Some(user) => snapshot.user_whitelist.entry(user).or_default(),
                None => snapshot
                    .tenant_whitelist
                    .entry(entry.tenant_id)
                    .or_default(),
            };
            list.push(entry.network);
        }
        for number in parts.numbers {
            if let Some(tenant_id) = number.tenant_id {
                let assignment = NumberAssignment {
                    number_id: number.id,
                    tenant_id,
                    user_id: number.user_id,
                };
                snapshot.numbers.insert(number.e164.to_string(), assignment);
            }
        }
        snapshot
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

    /// Counts for logs and metrics: (tenants, users, credentials).
    pub fn counts(&self) -> (usize, usize, usize) {
        (self.tenants.len(), self.users.len(), self.credentials.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::{AuthUserName, DigestAlgorithm, Ha1, SipPassword};
    use crate::entities::WhitelistEntry;
    use crate::ids::{CredentialId, WhitelistEntryId};
    use crate::kinds::{ClassOfService, DeviceKind, PhoneVendor};
    use crate::mac::MacAddress;
    use crate::values::{DisplayName, E164, Extension, Realm, SipDomain, Slug};
    use crate::whitelist::parse_network;

    fn tenant(seed: u8, slug: &str, status: TenantStatus) -> Tenant {
        Tenant {
            id: TenantId::from_parts(1, &[seed; 10]),
            reseller_id: None,
            name: DisplayName::parse(slug).unwrap(),
            slug: Slug::parse(slug).unwrap(),
            sip_domain: SipDomain::parse(&format!("{slug}.example.com")).unwrap(),
            status,
            created_at_ms: 0,
            updated_at_ms: 0,
        }
    }

    fn user(seed: u8, tenant: TenantId, extension: &str) -> User {
        User {
            id: UserId::from_parts(1, &[seed; 10]),
            tenant_id: tenant,
            extension: Extension::parse(extension).unwrap(),
            display_name: DisplayName::parse("Ann").unwrap(),
            class_of_service: ClassOfService::National,
            created_at_ms: 0,
            updated_at_ms: 0,
        }
    }

    fn credential(seed: u8, user: &User, device: DeviceId) -> SipCredential {
        let name = AuthUserName::generate(&[seed; 10]);
        let realm = Realm::parse("cloudpbx").unwrap();
        let password = SipPassword::generate(&[seed; 16]);
        SipCredential {
            id: CredentialId::from_parts(1, &[seed; 10]),
            tenant_id: user.tenant_id,
            user_id: user.id,
            device_id: device,
            ha1_md5: Ha1::compute(DigestAlgorithm::Md5, &name, &realm, &password),
            ha1_sha256: Ha1::compute(DigestAlgorithm::Sha256, &name, &realm, &password),
            auth_username: name,
            realm,
            enabled: true,
            created_at_ms: 0,
            updated_at_ms: 0,
        }
    }

    #[test]
    fn indexes_answer_the_hot_path_questions() {
        let acme = tenant(1, "acme", TenantStatus::Active);
        let beta = tenant(2, "beta", TenantStatus::Suspended);
        let ann = user(3, acme.id, "201");
        let bob = user(4, beta.id, "201");
        let device = Device {
            id: DeviceId::from_parts(1, &[5; 10]),
            tenant_id: acme.id,
            user_id: ann.id,
            kind: DeviceKind::DeskPhone {
                vendor: PhoneVendor::Yealink,
                model: "T54W".into(),
                mac: MacAddress::parse("00:15:65:aa:bb:cc").unwrap(),
            },
            label: String::new(),
            whitelist_exempt: false,
            created_at_ms: 0,
            updated_at_ms: 0,
        };
        let ann_credential = credential(6, &ann, device.id);
        let bob_credential = credential(7, &bob, DeviceId::from_parts(1, &[8; 10]));
        let whitelist = WhitelistEntry {
            id: WhitelistEntryId::from_parts(1, &[9; 10]),
            tenant_id: acme.id,
            user_id: None,
            network: parse_network("192.0.2.0/24").unwrap(),
            description: String::new(),
            created_at_ms: 0,
        };
        let number = PhoneNumber {
            id: NumberId::from_parts(1, &[10; 10]),
            e164: E164::parse("+31201234567").unwrap(),
            tenant_id: Some(acme.id),
            user_id: Some(ann.id),
            created_at_ms: 0,
            updated_at_ms: 0,
        };
        let parts = DirectoryParts {
            tenants: vec![acme.clone(), beta.clone()],
            users: vec![ann.clone(), bob.clone()],
            devices: vec![device],
            credentials: vec![ann_credential.clone(), bob_credential.clone()],
            whitelist: vec![whitelist],
            numbers: vec![number],
        };
        let snapshot = DirectorySnapshot::build(7, parts);
        assert_eq!(snapshot.generation(), 7);
        assert_eq!(
            snapshot
                .usable_credential(ann_credential.auth_username.as_str())
                .unwrap()
                .user_id,
            ann.id
        );
        assert!(
            snapshot
                .usable_credential(bob_credential.auth_username.as_str())
                .is_none(),
            "suspended tenant"
        );
        assert!(
            snapshot
                .credential(bob_credential.auth_username.as_str())
                .is_some()
        );
        assert_eq!(
            snapshot.user_by_extension(acme.id, "201").unwrap().id,
            ann.id
        );
        assert_eq!(
            snapshot.user_by_extension(beta.id, "201").unwrap().id,
            bob.id
        );
        assert_eq!(snapshot.tenant_by_slug("acme").unwrap().id, acme.id);
        assert_eq!(
            snapshot.tenant_by_domain("beta.example.com").unwrap().id,
            beta.id
        );
        assert_eq!(
            snapshot.device_by_mac("001565aabbcc").unwrap().user_id,
            ann.id
        );
        assert!(snapshot.whitelist_permits(acme.id, Some(ann.id), "192.0.2.9".parse().unwrap()));
        assert!(!snapshot.whitelist_permits(acme.id, None, "2001:db8::1".parse().unwrap()));
        assert!(snapshot.whitelist_permits(beta.id, None, "2001:db8::1".parse().unwrap()));
        assert_eq!(
            snapshot.number("+31201234567").unwrap().user_id,
            Some(ann.id)
        );
        assert_eq!(snapshot.counts(), (2, 2, 2));
    }
}
