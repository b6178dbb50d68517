//! Who may fetch what: tenant from the path, source address on that tenant's whitelist, MAC
//! owned by a desk phone of that tenant. Pure functions over a [`DirectorySnapshot`].
//!
//! Order matters for what a prober learns: the whitelist is checked before anything about
//! files or devices is looked at, and every refusal a client sees is one of two TFTP errors,
//! decided only by how far the request got ([`Refusal::is_access_violation`]):
//!
//! * refused **before** the source was found on the tenant's whitelist (bad path, unknown or
//!   inactive tenant, source outside the whitelist, a bare `<mac>` file whose MAC is on no
//!   device): "access violation", whatever exists — a source outside the whitelist cannot
//!   tell a real MAC or company from an invented one;
//! * refused **after** it (unknown MAC, another tenant's MAC, wrong brand, not a config
//!   file): "file not found" — a whitelisted office learns no more than that, in particular
//!   not whether a MAC belongs to another tenant.
//!
//! Provisioning is stricter than SIP: a tenant **without** whitelist entries provisions
//! nothing (for SIP an empty list means "no restriction"), because a config file carries the
//! credentials. A user's narrower list applies on top, as for SIP.

use std::net::IpAddr;

use pbx_domain::{
    Device, DeviceKind, DirectorySnapshot, PhoneVendor, Tenant, TenantId, TenantStatus,
    whitelist::canonical_ip,
};

use crate::path::{BrandFile, RequestPath};

/// A request the source may have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The tenant.
    pub tenant: Tenant,
    /// The desk phone, for per-phone files.
    pub device: Option<Device>,
    /// The file.
    pub file: BrandFile,
    /// The brand whose template renders the file.
    pub vendor: PhoneVendor,
    /// The device's model, or the family named by a common file.
    pub model: String,
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// The path has a shape no phone makes.
    BadPath,
    /// No tenant has this slug.
    UnknownTenant,
    /// The tenant is suspended or terminated.
    TenantInactive(TenantId),
    /// The source is not on the tenant's (or the device user's) whitelist, or the tenant has
    /// none.
    NotWhitelisted(TenantId),
    /// Not a file this server renders (firmware, logs, licences...), or a common file asked
    /// for without a tenant in the path.
    NotAConfigFile(Option<TenantId>),
    /// No desk phone has this MAC.
    UnknownDevice(TenantId),
    /// A per-phone file asked for without a tenant in the path, whose MAC is on no device:
    /// there is no whitelist to check the source against, so it is refused like a source
    /// outside one (and counted the same way), never told apart from a MAC that exists.
    UnknownMac,
    /// The MAC belongs to a device of another tenant.
    ForeignDevice {
        /// The tenant named in the request.
        tenant: TenantId,
        /// The device's tenant.
        owner: TenantId,
    },
    /// The MAC's device is of another brand than the file.
    WrongBrand(TenantId),
}

impl Refusal {
    /// Whether this is a security event (a probe, or a phone outside the whitelist): it is
    /// logged as such and counts towards the source's ban score.
    pub fn is_security(&self) -> bool {
        matches!(
            self,
            Self::UnknownTenant
                | Self::NotWhitelisted(_)
                | Self::ForeignDevice { .. }
                | Self::UnknownMac
        )
    }

    /// Short name for logs and the fetch log.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::BadPath => "bad_path",
            Self::UnknownTenant => "unknown_tenant",
            Self::TenantInactive(_) => "tenant_inactive",
            Self::NotWhitelisted(_) => "not_whitelisted",
            Self::NotAConfigFile(_) => "not_found",
            Self::UnknownDevice(_) => "unknown_device",
            Self::UnknownMac => "unknown_mac",
            Self::ForeignDevice { .. } => "foreign_device",
            Self::WrongBrand(_) => "wrong_brand",
        }
    }

    /// The tenant the request was attributed to, if any.
    pub fn tenant(&self) -> Option<TenantId> {
        match self {
            Self::BadPath | Self::UnknownTenant | Self::UnknownMac => None,
            Self::TenantInactive(t)
            | Self::NotWhitelisted(t)
            | Self::UnknownDevice(t)
            | Self::WrongBrand(t) => Some(*t),
            Self::NotAConfigFile(t) => *t,
            Self::ForeignDevice { tenant, .. } => Some(*tenant),
        }
    }

    /// Whether the client should see "access violation" (else "file not found"): exactly the
    /// refusals decided before the source was found on the tenant's whitelist (see the module
    /// docs), so the answer never depends on whether a MAC or tenant exists.
    pub fn is_access_violation(&self) -> bool {
        matches!(
            self,
            Self::BadPath
                | Self::UnknownTenant
                | Self::TenantInactive(_)
                | Self::NotWhitelisted(_)
                | Self::UnknownMac
        )
    }
}

/// Whether `source` may provision for `tenant` (and the device's user): the tenant must have
/// a non-empty whitelist that allows it.
pub fn source_allowed(
    snapshot: &DirectorySnapshot,
    tenant: TenantId,
    device: Option<&Device>,
    source: IpAddr,
) -> bool {
    let source = canonical_ip(source);
    snapshot
        .tenant_whitelist(tenant)
        .is_some_and(|list| !list.is_empty())
        && snapshot.whitelist_permits(tenant, device.map(|d| d.user_id), source)
}

/// Decides a request for `path` from `source`.
///
/// # Errors
/// The [`Refusal`].
pub fn resolve(
    snapshot: &DirectorySnapshot,
    source: IpAddr,
    path: &str,
) -> Result<Resolved, Refusal> {
    let request = RequestPath::parse(path).ok_or(Refusal::BadPath)?;
    let file = BrandFile::classify(&request.file_name);
    let tenant = match &request.tenant {
        Some(slug) => snapshot
            .tenant_by_slug(slug)
            .ok_or(Refusal::UnknownTenant)?,
        None => {
            // No tenant in the path: only a MAC can name it.
            let Some(mac) = file.as_ref().and_then(BrandFile::mac) else {
                return Err(Refusal::NotAConfigFile(None));
            };
            snapshot
                .device_by_mac(&mac.bare())
                .and_then(|device| snapshot.tenant(device.tenant_id))
                .ok_or(Refusal::UnknownMac)?
        }
    };
    // The whitelist first: a source outside it learns nothing, not even the tenant's status.
    if !source_allowed(snapshot, tenant.id, None, source) {
        return Err(Refusal::NotWhitelisted(tenant.id));
    }
    if tenant.status != TenantStatus::Active {
        return Err(Refusal::TenantInactive(tenant.id));
    }
    let file = file.ok_or(Refusal::NotAConfigFile(Some(tenant.id)))?;
    let Some(mac) = file.mac() else {
        let vendor = file
            .vendor()
            .ok_or(Refusal::NotAConfigFile(Some(tenant.id)))?;
        let model = match &file {
            BrandFile::YealinkCommon(family) | BrandFile::SnomCommon(family) => family.clone(),
            _ => String::new(),
        };
        return Ok(Resolved {
            tenant: tenant.clone(),
            device: None,
            file,
            vendor,
            model,
        });
    };
    let device = snapshot
        .device_by_mac(&mac.bare())
        .ok_or(Refusal::UnknownDevice(tenant.id))?;
    if device.tenant_id != tenant.id {
        return Err(Refusal::ForeignDevice {
            tenant: tenant.id,
            owner: device.tenant_id,
        });
    }
    if !source_allowed(snapshot, tenant.id, Some(device), source) {
        return Err(Refusal::NotWhitelisted(tenant.id));
    }
    let DeviceKind::DeskPhone { vendor, model, .. } = &device.kind else {
        return Err(Refusal::UnknownDevice(tenant.id));
    };
    let fits = match file.vendor() {
        Some(file_vendor) => file_vendor == *vendor,
        None => matches!(vendor, PhoneVendor::Yealink | PhoneVendor::Polycom),
    };
    if !fits {
        return Err(Refusal::WrongBrand(tenant.id));
    }
    Ok(Resolved {
        tenant: tenant.clone(),
        device: Some(device.clone()),
        file,
        vendor: *vendor,
        model: model.clone(),
    })
}
