//! The entities of the tenant model, as read back from the store.
//!
//! `New*` structs are what a caller supplies to create one; the store adds the id and the
//! timestamps (Unix epoch milliseconds, `*_at_ms`).

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::credentials::{AuthUserName, Ha1};
use crate::ids::{
    CredentialId, DeviceId, NumberId, ResellerId, TenantId, UserId, WhitelistEntryId,
};
use crate::kinds::{ClassOfService, DeviceKind, TenantStatus};
use crate::values::{DisplayName, E164, Extension, Realm, SipDomain, Slug};

/// A reseller: sells the service to tenants. Tenants without a reseller belong to the
/// operator directly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reseller {
    /// Id.
    pub id: ResellerId,
    /// Company name (unique).
    pub name: DisplayName,
    /// Creation time.
    pub created_at_ms: i64,
    /// Last change.
    pub updated_at_ms: i64,
}

/// What is needed to create a tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewTenant {
    /// The reseller that sells to this tenant; `None` for the operator's own customers.
    pub reseller_id: Option<ResellerId>,
    /// Company name.
    pub name: DisplayName,
    /// Short name, unique on the platform.
    pub slug: Slug,
    /// SIP domain, unique on the platform.
    pub sip_domain: SipDomain,
    /// Initial status.
    pub status: TenantStatus,
}

/// A tenant: one customer company, isolated from all others.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenant {
    /// Id.
    pub id: TenantId,
    /// Owning reseller, if any.
    pub reseller_id: Option<ResellerId>,
    /// Company name.
    pub name: DisplayName,
    /// Short name, unique on the platform.
    pub slug: Slug,
    /// SIP domain, unique on the platform.
    pub sip_domain: SipDomain,
    /// Status.
    pub status: TenantStatus,
    /// Creation time.
    pub created_at_ms: i64,
    /// Last change.
    pub updated_at_ms: i64,
}

/// What is needed to create a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewUser {
    /// Extension number, unique within the tenant.
    pub extension: Extension,
    /// Name shown to callees.
    pub display_name: DisplayName,
    /// Outbound restriction.
    pub class_of_service: ClassOfService,
}

/// A user (extension) of a tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Id.
    pub id: UserId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// Extension number, unique within the tenant.
    pub extension: Extension,
    /// Name shown to callees.
    pub display_name: DisplayName,
    /// Outbound restriction.
    pub class_of_service: ClassOfService,
    /// Creation time.
    pub created_at_ms: i64,
    /// Last change.
    pub updated_at_ms: i64,
}

/// What is needed to create a device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewDevice {
    /// The user whose device this is (same tenant).
    pub user_id: UserId,
    /// Kind (with vendor/model/MAC for desk phones).
    pub kind: DeviceKind,
    /// Free label ("reception phone", "Ann's iPhone").
    pub label: String,
}

/// A device of a user: desk phone, softphone or mobile app. Each device has its own SIP
/// credential, so a lost phone is disabled without touching the others.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    /// Id.
    pub id: DeviceId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// Owning user.
    pub user_id: UserId,
    /// Kind.
    pub kind: DeviceKind,
    /// Free label.
    pub label: String,
    /// Exempt from the tenant's and user's IP whitelist (a mobile device that roams), which
    /// then requires TLS: from a non-whitelisted source its REGISTER and INVITE are admitted
    /// over TLS only.
    #[serde(default)]
    pub whitelist_exempt: bool,
    /// Creation time.
    pub created_at_ms: i64,
    /// Last change.
    pub updated_at_ms: i64,
}

/// A device's SIP credential as stored: the user name and HA1 digests, never the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipCredential {
    /// Id.
    pub id: CredentialId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// User of the device.
    pub user_id: UserId,
    /// The device.
    pub device_id: DeviceId,
    /// Generated auth user name, globally unique.
    pub auth_username: AuthUserName,
    /// Realm the HA1s were computed for (the platform realm at creation).
    pub realm: Realm,
    /// `MD5(user:realm:password)`.
    pub ha1_md5: Ha1,
    /// `SHA-256(user:realm:password)`.
    pub ha1_sha256: Ha1,
    /// A disabled credential is refused like an unknown one.
    pub enabled: bool,
    /// Creation time.
    pub created_at_ms: i64,
    /// Last change (password rotation, enable/disable).
    pub updated_at_ms: i64,
}

/// A phone number (DID) of the inventory, possibly assigned to a tenant and a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhoneNumber {
    /// Id.
    pub id: NumberId,
    /// The number, unique on the platform.
    pub e164: E164,
    /// Tenant it is assigned to; `None` while in the operator's free inventory.
    pub tenant_id: Option<TenantId>,
    /// User it rings, within the tenant; `None` for tenant-level routing.
    pub user_id: Option<UserId>,
    /// Creation time.
    pub created_at_ms: i64,
    /// Last change.
    pub updated_at_ms: i64,
}

/// One network on a tenant's (or one user's) IP whitelist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WhitelistEntry {
    /// Id.
    pub id: WhitelistEntryId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// The user this entry narrows, or `None` for the tenant-wide list.
    pub user_id: Option<UserId>,
    /// The network (host bits cleared).
    pub network: IpNet,
    /// Free text ("main office").
    pub description: String,
    /// Creation time.
    pub created_at_ms: i64,
}
