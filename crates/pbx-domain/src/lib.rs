//! CloudPBX domain types: ids, tenants, users, devices, numbers, credentials, bindings.
//!
//! This crate is pure and sans-IO: it never reads the clock, a random source, a file or the
//! network. Callers pass time (Unix milliseconds) and random bytes in. It holds
//!
//! - [`ids`]: UUID v7 id newtypes (`TenantId`, `UserId`, ...), one type per entity;
//! - validated values ([`values`], [`mac`], [`kinds`]): `Slug`, `Extension`, `E164`,
//!   `SipDomain`, `DisplayName`, `Realm`, `MacAddress`, `ClassOfService`, `DeviceKind`, ...
//!   Each is only constructible through its parser, so holding one means it is valid;
//! - [`entities`]: the tenant model as stored (`Tenant`, `User`, `Device`, `SipCredential`,
//!   `PhoneNumber`, `WhitelistEntry`), with `New*` inputs for creation;
//! - [`credentials`]: generation of SIP auth user names (80 random bits, no tenant or
//!   extension in them), passwords (128 bits, shown once) and API token secrets, and the
//!   HA1 digests (`MD5` and `SHA-256` of `user:realm:password`) that are all a password
//!   leaves behind. One platform realm is used for all tenants; see [`values::Realm`];
//! - [`whitelist`]: IPv4/IPv6 CIDR whitelists with `allows(IpAddr)`;
//! - [`access`]: the acting party (`Actor`) and API token scopes;
//! - [`registration`]: registrar bindings with their flow, push and ALG data;
//! - [`directory`]: the immutable, indexed in-memory snapshot the hot path reads.
//!
//! The store (`pbx-store`) persists these types and keeps a live `Directory` in sync.

pub mod access;
pub mod cdr;
pub mod credentials;
pub mod directory;
pub mod entities;
pub mod error;
pub mod event;
pub mod ids;
pub mod kinds;
pub mod mac;
pub mod registration;
pub mod trunk;
pub mod values;
pub mod whitelist;

pub use access::{Actor, ApiScope, ApiToken};
pub use cdr::{
    CallDirection, CallEnd, CallRecord, CallStart, CdrState, Disposition, HangupSide,
    MediaStreamStats,
};
pub use credentials::{ApiTokenSecret, AuthUserName, DigestAlgorithm, Ha1, SipPassword, TokenHash};
pub use directory::{DirectoryParts, DirectorySnapshot, NumberAssignment, UserRows};
pub use entities::{
    Device, NewDevice, NewTenant, NewUser, PhoneNumber, Reseller, SipCredential, Tenant, User,
    WhitelistEntry,
};
pub use error::ValidationError;
pub use event::Event;
pub use ids::{
    ApiTokenId, BindingId, CdrId, CredentialId, DeviceId, EventId, NumberId, ResellerId, RouteId,
    TenantId, TrunkId, UserId, WhitelistEntryId,
};
pub use kinds::{ApiRole, ClassOfService, DeviceKind, PhoneVendor, TenantStatus, Transport};
pub use mac::MacAddress;
pub use registration::{Binding, BindingRecord, Flow, PushParams};
pub use trunk::{
    CallerIdentity, DEFAULT_COUNTRY, Route, RouteTrunk, TenantCallSettings, Trunk, TrunkAuth,
    TrunkMode, parse_route_prefix,
};
pub use values::{DisplayName, E164, Extension, Realm, SipDomain, Slug};
pub use whitelist::{IpWhitelist, parse_network};
