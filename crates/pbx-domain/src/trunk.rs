//! SIP trunks to carriers, outbound routes, and a tenant's calling settings.
//!
//! A [`Trunk`] belongs to one tenant or, with `tenant_id: None`, to the operator (usable by
//! every tenant). Its carrier password is never part of these types: the store keeps it
//! encrypted and hands it out only as a [`TrunkAuth`] to the parts that sign requests.

use std::fmt;
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::error::ValidationError;
use crate::ids::{RouteId, TenantId, TrunkId};
use crate::kinds::{Transport, text_enum};
use crate::values::E164;

text_enum!(
    /// How calls through a trunk are authorised by the carrier.
    TrunkMode, "trunk mode" {
        /// Digest authentication on INVITE (and REGISTER when `register` is on).
        Digest => "digest",
        /// IP peering: the carrier trusts our address, no credentials.
        IpPeering => "ip_peering",
    }
);

text_enum!(
    /// How the caller's identity is sent to a carrier on outbound calls (the `From` header
    /// always carries the number, or `Anonymous` when the caller hides it).
    CallerIdentity, "caller identity" {
        /// `P-Asserted-Identity` with the number (also when anonymous, RFC 3325), and
        /// `Privacy: id` when anonymous. The default.
        Pai => "pai",
        /// The `From` header only: no `P-Asserted-Identity`; `Privacy: id` when anonymous.
        From => "from",
        /// `Remote-Party-ID` (draft-ietf-sip-privacy-04, still common at carriers) with the
        /// number and `privacy=off`, or `privacy=full` when anonymous; no
        /// `P-Asserted-Identity` or `Privacy`.
        Rpid => "rpid",
    }
);

/// A SIP trunk as stored (without its password).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trunk {
    /// Id.
    pub id: TrunkId,
    /// Owning tenant; `None` for an operator-wide trunk any tenant's routes may use.
    pub tenant_id: Option<TenantId>,
    /// Name (unique per owner).
    pub name: String,
    /// The carrier's host (name or IP literal).
    pub host: String,
    /// The carrier's port.
    pub port: u16,
    /// Transport towards the carrier (`udp`, `tcp`, `tls`).
    pub transport: Transport,
    /// Digest or IP peering.
    pub mode: TrunkMode,
    /// Digest user name at the carrier (our account).
    pub auth_username: Option<String>,
    /// Whether a password is stored (it is never returned).
    pub has_password: bool,
    /// Realm expected from the carrier, if pinned (any realm when `None`).
    pub auth_realm: Option<String>,
    /// The number/user we register as (`From`/`To` user of the REGISTER); defaults to the
    /// auth user name.
    pub register_user: Option<String>,
    /// Register with the carrier.
    pub register: bool,
    /// Requested registration lifetime in seconds.
    pub register_expires_secs: u32,
    /// Networks the carrier sends calls from; inbound INVITEs from anywhere else are not
    /// taken as coming from this trunk.
    pub inbound_networks: Vec<IpNet>,
    /// Default priority in routes (lower is tried first).
    pub priority: i32,
    /// How the caller's identity is sent to the carrier.
    pub caller_identity: CallerIdentity,
    /// A disabled trunk is skipped by routing and does not register.
    pub enabled: bool,
    /// Creation time.
    pub created_at_ms: i64,
    /// Last change.
    pub updated_at_ms: i64,
}

/// Our credentials at a carrier (decrypted; `Debug` hides the password).
#[derive(Clone, PartialEq, Eq)]
pub struct TrunkAuth {
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
}

impl fmt::Debug for TrunkAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrunkAuth")
            .field("username", &self.username)
            .field("password", &"***")
            .finish()
    }
}

/// One trunk in a route's list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteTrunk {
    /// The trunk.
    pub trunk_id: TrunkId,
    /// Priority within this route (lower first); the trunk's own priority when `None`.
    #[serde(default)]
    pub priority: Option<i32>,
}

/// An outbound route: destinations starting with `prefix` go to `trunks` in priority
/// order (failover to the next on 5xx or timeout).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// Id.
    pub id: RouteId,
    /// Owning tenant; `None` for the operator's default routes (used when no route of the
    /// tenant matches as long).
    pub tenant_id: Option<TenantId>,
    /// E.164 digits the destination starts with (without `+`); empty matches everything.
    pub prefix: String,
    /// Trunks to try.
    pub trunks: Vec<RouteTrunk>,
    /// Free text.
    pub description: String,
    /// Creation time.
    pub created_at_ms: i64,
    /// Last change.
    pub updated_at_ms: i64,
}

/// Checks a route prefix: up to 15 digits (E.164 without `+`); a leading `+` is dropped.
pub fn parse_route_prefix(text: &str) -> Result<String, ValidationError> {
    let digits = text.trim().trim_start_matches('+');
    if digits.len() > 15 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ValidationError::Inconsistent {
            kind: "route prefix",
            reason: "must be up to 15 digits (E.164 without '+')",
        });
    }
    Ok(digits.to_owned())
}

/// A tenant's calling settings: the numbering plan to read dialled numbers with, and the
/// number presented when a user has none of their own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantCallSettings {
    /// The tenant.
    pub tenant_id: TenantId,
    /// ISO 3166 country code (`NL`) of the national numbering plan.
    pub country: String,
    /// The main number presented for users without a DID.
    pub main_number: Option<E164>,
}

impl TenantCallSettings {
    /// The defaults: the Netherlands, no main number.
    pub fn default_for(tenant_id: TenantId) -> Self {
        Self {
            tenant_id,
            country: DEFAULT_COUNTRY.to_owned(),
            main_number: None,
        }
    }
}

/// The country whose numbering plan applies when none is configured.
pub const DEFAULT_COUNTRY: &str = "NL";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_prefixes() {
        assert_eq!(parse_route_prefix("+3120").unwrap(), "3120");
        assert_eq!(parse_route_prefix("").unwrap(), "");
        assert!(parse_route_prefix("31a").is_err());
        assert!(parse_route_prefix("1234567890123456").is_err());
    }

    #[test]
    fn auth_debug_hides_password() {
        let auth = TrunkAuth {
            username: "acct".into(),
            password: "s3cret".into(),
        };
        assert!(!format!("{auth:?}").contains("s3cret"));
    }
}
