//! The routing snapshot: trunks, routes, numbers and tenant settings, indexed for lookups.

use std::collections::HashMap;
use std::net::IpAddr;

use pbx_domain::{
    E164, PhoneNumber, Route, TenantCallSettings, TenantId, Transport, Trunk, TrunkAuth, TrunkId,
    TrunkMode, UserId, whitelist::canonical_ip,
};

use crate::caller_id::CallerId;
use crate::number::{Dialled, NormaliseError, NumberPlan, normalise};

/// The rows a snapshot is built from.
#[derive(Debug, Clone, Default)]
pub struct RoutingParts {
    /// Every trunk, with its decrypted credentials when it has a password.
    pub trunks: Vec<(Trunk, Option<TrunkAuth>)>,
    /// Every route (tenant and operator).
    pub routes: Vec<Route>,
    /// Tenants' calling settings (tenants without a row use the defaults).
    pub settings: Vec<TenantCallSettings>,
    /// Every assigned number.
    pub numbers: Vec<PhoneNumber>,
}

/// One place to send an outbound call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrunkTarget {
    /// The trunk.
    pub trunk_id: TrunkId,
    /// Its name (logs, CDR views).
    pub name: String,
    /// Carrier host.
    pub host: String,
    /// Carrier port.
    pub port: u16,
    /// Transport.
    pub transport: Transport,
    /// Credentials to answer the carrier's 401/407 with (digest trunks).
    pub auth: Option<TrunkAuth>,
    /// Realm the credentials are for, if pinned.
    pub auth_realm: Option<String>,
    /// How the caller's identity is sent to this carrier.
    pub caller_identity: pbx_domain::CallerIdentity,
    /// The Request-URI to send: `sip:+31201234567@carrier:port` (with `;transport=` for
    /// TCP/TLS).
    pub request_uri: String,
}

/// The ordered trunks of one outbound call; take the next after a failure for which
/// [`should_fail_over`] is true.
#[derive(Debug, Clone, Default)]
pub struct OutboundTargets {
    targets: std::vec::IntoIter<TrunkTarget>,
    remaining: usize,
}

impl OutboundTargets {
    /// Targets not yet handed out.
    pub const fn remaining(&self) -> usize {
        self.remaining
    }
}

impl Iterator for OutboundTargets {
    type Item = TrunkTarget;

    fn next(&mut self) -> Option<TrunkTarget> {
        let next = self.targets.next();
        self.remaining = self.remaining.saturating_sub(usize::from(next.is_some()));
        next
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

/// Why no trunk can take a call ([`NoRoute::status`] is the answer to the caller).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NoRoute {
    /// No route prefix matches the destination.
    #[error("no route for this destination")]
    NoMatchingRoute,
    /// A route matches but none of its trunks is enabled and usable by the tenant.
    #[error("no usable trunk on the route")]
    NoUsableTrunk,
}

impl NoRoute {
    /// The SIP status to answer the caller: 404 without a route, 503 when the route's
    /// trunks are all unusable.
    pub const fn status(&self) -> u16 {
        match self {
            Self::NoMatchingRoute => 404,
            Self::NoUsableTrunk => 503,
        }
    }
}

/// Whether an outbound attempt that ended with `status` (`None`: timeout or transport
/// error) should be retried on the next trunk: every 5xx, 408 and timeouts yes; other 4xx
/// and 6xx are the callee's answer and end the call. (401/407 are answered with the
/// trunk's credentials on the same trunk before this question arises.)
pub const fn should_fail_over(status: Option<u16>) -> bool {
    match status {
        None => true,
        Some(code) => code == 408 || (code >= 500 && code <= 599),
    }
}

/// Where an inbound call goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboundDecision {
    /// The source is none of our trunks: refuse (403), never forward.
    NotFromTrunk,
    /// The number is not ours, or not the trunk owner's: 404.
    UnknownNumber {
        /// The trunk it came from.
        trunk_id: TrunkId,
    },
    /// The number belongs to a tenant but rings nobody: 404 (groups come later).
    Unassigned {
        /// The trunk.
        trunk_id: TrunkId,
        /// The tenant.
        tenant_id: TenantId,
        /// The number.
        number: E164,
    },
    /// Ring this user.
    User {
        /// The trunk.
        trunk_id: TrunkId,
        /// The tenant.
        tenant_id: TenantId,
        /// The user.
        user_id: UserId,
        /// The number called.
        number: E164,
    },
}

impl InboundDecision {
    /// The SIP status to refuse with, or `None` when the call goes to a user.
    pub const fn refusal(&self) -> Option<u16> {
        match self {
            Self::NotFromTrunk => Some(403),
            Self::UnknownNumber { .. } | Self::Unassigned { .. } => Some(404),
            Self::User { .. } => None,
        }
    }
}

#[derive(Debug, Clone)]
struct TrunkEntry {
    trunk: Trunk,
    auth: Option<TrunkAuth>,
}

#[derive(Debug, Clone, Copy)]
struct Assignment {
    tenant_id: TenantId,
    user_id: Option<UserId>,
}

/// The immutable routing view; cheap to share behind an `Arc`.
#[derive(Debug, Clone, Default)]
pub struct RoutingSnapshot {
    trunks: HashMap<TrunkId, TrunkEntry>,
    /// Routes by owner (`None` = operator), each list sorted by prefix length, longest first.
    routes: HashMap<Option<TenantId>, Vec<Route>>,
    plans: HashMap<TenantId, NumberPlan>,
    main_numbers: HashMap<TenantId, E164>,
    user_numbers: HashMap<UserId, E164>,
    numbers: HashMap<String, Assignment>,
    default_plan: NumberPlan,
}

impl RoutingSnapshot {
    /// Indexes `parts`. Tenants whose country is unknown use the default (NL) plan.
    pub fn build(parts: RoutingParts) -> Self {
        let trunks = parts
            .trunks
            .into_iter()
            .map(|(trunk, auth)| (trunk.id, TrunkEntry { trunk, auth }))
            .collect();
        let mut routes: HashMap<Option<TenantId>, Vec<Route>> = HashMap::new();
        for route in parts.routes {
            routes.entry(route.tenant_id).or_default().push(route);
        }
        for list in routes.values_mut() {
            list.sort_by(|a, b| b.prefix.len().cmp(&a.prefix.len()).then(a.id.cmp(&b.id)));
        }
        let mut plans = HashMap::new();
        let mut main_numbers = HashMap::new();
        for settings in parts.settings {
            if let Some(plan) = NumberPlan::for_country(&settings.country) {
                plans.insert(settings.tenant_id, plan);
            }
            if let Some(main) = settings.main_number {
                main_numbers.insert(settings.tenant_id, main);
            }
        }
        let mut numbers = HashMap::new();
        let mut user_numbers: HashMap<UserId, E164> = HashMap::new();
        for number in parts.numbers {
            let Some(tenant_id) = number.tenant_id else {
                continue;
            };
            if let Some(user) = number.user_id {
                // A user with several DIDs presents the lowest one (stable across reloads).
                let slot = user_numbers
                    .entry(user)
                    .or_insert_with(|| number.e164.clone());
                if number.e164 < *slot {
                    *slot = number.e164.clone();
                }
            }
            numbers.insert(
                number.e164.as_str().to_owned(),
                Assignment {
                    tenant_id,
                    user_id: number.user_id,
                },
            );
        }
        Self {
            trunks,
            routes,
            plans,
            main_numbers,
            user_numbers,
            numbers,
            default_plan: NumberPlan::netherlands(),
        }
    }

    /// The numbering plan of `tenant`.
    pub fn plan(&self, tenant: TenantId) -> &NumberPlan {
        self.plans.get(&tenant).unwrap_or(&self.default_plan)
    }

    /// Reads what a user of `tenant` dialled (see [`normalise`]).
    pub fn normalise(&self, tenant: TenantId, dialled: &str) -> Result<Dialled, NormaliseError> {
        normalise(dialled, self.plan(tenant))
    }

    /// Every trunk of the snapshot (enabled or not), in no particular order.
    pub fn trunks(&self) -> impl Iterator<Item = &Trunk> {
        self.trunks.values().map(|entry| &entry.trunk)
    }

    /// A trunk by id.
    pub fn trunk(&self, id: TrunkId) -> Option<&Trunk> {
        self.trunks.get(&id).map(|entry| &entry.trunk)
    }

    /// The trunks that should keep a registration with their carrier, with credentials.
    pub fn registering_trunks(&self) -> impl Iterator<Item = (&Trunk, Option<&TrunkAuth>)> {
        self.trunks
            .values()
            .filter(|entry| entry.trunk.enabled && entry.trunk.register)
            .map(|entry| (&entry.trunk, entry.auth.as_ref()))
    }

    /// The ordered trunks for a call from `tenant` to `destination` (E.164 digits without
    /// `+`, or an emergency short code: [`Dialled::route_digits`]).
    ///
    /// The longest matching prefix wins; for equal lengths the tenant's own route wins over
    /// the operator's. Within the route, trunks are ordered by priority (the route entry's,
    /// else the trunk's), then by their position in the route. Disabled trunks and other
    /// tenants' trunks are skipped.
    pub fn outbound(
        &self,
        tenant: TenantId,
        destination: &str,
    ) -> Result<OutboundTargets, NoRoute> {
        let best = |owner: Option<TenantId>| {
            self.routes.get(&owner).and_then(|routes| {
                routes
                    .iter()
                    .find(|route| destination.starts_with(route.prefix.as_str()))
            })
        };
        let route = match (best(Some(tenant)), best(None)) {
            (Some(own), Some(operator)) if operator.prefix.len() > own.prefix.len() => operator,
            (Some(own), _) => own,
            (None, Some(operator)) => operator,
            (None, None) => return Err(NoRoute::NoMatchingRoute),
        };
        let mut ranked: Vec<(i32, usize, &TrunkEntry)> = route
            .trunks
            .iter()
            .enumerate()
            .filter_map(|(position, entry)| {
                let trunk = self.trunks.get(&entry.trunk_id)?;
                let usable = trunk.trunk.enabled
                    && trunk.trunk.tenant_id.is_none_or(|owner| owner == tenant);
                usable.then_some((
                    entry.priority.unwrap_or(trunk.trunk.priority),
                    position,
                    trunk,
                ))
            })
            .collect();
        if ranked.is_empty() {
            return Err(NoRoute::NoUsableTrunk);
        }
        ranked.sort_by_key(|(priority, position, _)| (*priority, *position));
        let user = if destination.len() <= 4 && !destination.is_empty() {
            destination.to_owned()
        } else {
            format!("+{destination}")
        };
        let targets: Vec<TrunkTarget> = ranked
            .into_iter()
            .map(|(_, _, entry)| target(entry, &user))
            .collect();
        Ok(OutboundTargets {
            remaining: targets.len(),
            targets: targets.into_iter(),
        })
    }

    /// The identity a user's outbound call presents: the user's DID, else the tenant's
    /// main number; `anonymous` from [`crate::wants_privacy`].
    pub fn caller_id(
        &self,
        tenant: TenantId,
        user: Option<UserId>,
        display_name: Option<&str>,
        anonymous: bool,
    ) -> CallerId {
        let own = user.and_then(|user| {
            let number = self.user_numbers.get(&user)?;
            // Only a number still assigned to the same tenant.
            let assignment = self.numbers.get(number.as_str())?;
            (assignment.tenant_id == tenant).then(|| number.clone())
        });
        CallerId {
            number: own.or_else(|| self.main_numbers.get(&tenant).cloned()),
            display_name: display_name.map(str::to_owned),
            anonymous,
        }
    }

    /// The trunk whose inbound networks contain `source` (a tenant's own trunk before an
    /// operator trunk when several match). `None`: not a carrier of ours.
    pub fn trunk_for_source(&self, source: IpAddr) -> Option<&Trunk> {
        let source = canonical_ip(source);
        self.trunks
            .values()
            .map(|entry| &entry.trunk)
            .filter(|trunk| {
                trunk.enabled
                    && trunk
                        .inbound_networks
                        .iter()
                        .any(|network| network.contains(&source))
            })
            .min_by_key(|trunk| (trunk.tenant_id.is_none(), trunk.priority, trunk.id))
    }

    /// Who `number` belongs to on this platform: its tenant and the user it rings (`None`
    /// when unassigned); `None` when it is not one of our numbers. A call to one of these
    /// never goes out through a carrier (hairpin).
    pub fn local_number(&self, number: &E164) -> Option<(TenantId, Option<UserId>)> {
        self.numbers
            .get(number.as_str())
            .map(|assignment| (assignment.tenant_id, assignment.user_id))
    }

    /// Where an inbound call from `source` to `called` (the Request-URI user: `+31...`,
    /// `31...`, `0...` national) goes.
    pub fn inbound(&self, source: IpAddr, called: &str) -> InboundDecision {
        let Some(trunk) = self.trunk_for_source(source) else {
            return InboundDecision::NotFromTrunk;
        };
        let trunk_id = trunk.id;
        let plan = trunk
            .tenant_id
            .map_or(&self.default_plan, |tenant| self.plan(tenant));
        let number = match normalise(called, plan) {
            Ok(Dialled::External(number)) => Some(number),
            // Carriers often send the number without `+` or `00`.
            _ => E164::parse(&format!(
                "+{}",
                called.split(';').next().unwrap_or_default()
            ))
            .ok(),
        };
        let Some(number) = number else {
            return InboundDecision::UnknownNumber { trunk_id };
        };
        let Some(assignment) = self.numbers.get(number.as_str()) else {
            return InboundDecision::UnknownNumber { trunk_id };
        };
        if trunk
            .tenant_id
            .is_some_and(|owner| owner != assignment.tenant_id)
        {
            // A tenant's own trunk only delivers that tenant's numbers.
            return InboundDecision::UnknownNumber { trunk_id };
        }
        match assignment.user_id {
            Some(user_id) => InboundDecision::User {
                trunk_id,
                tenant_id: assignment.tenant_id,
                user_id,
                number,
            },
            None => InboundDecision::Unassigned {
                trunk_id,
                tenant_id: assignment.tenant_id,
                number,
            },
        }
    }
}

fn target(entry: &TrunkEntry, user: &str) -> TrunkTarget {
    let trunk = &entry.trunk;
    let host = if trunk.host.contains(':') && !trunk.host.starts_with('[') {
        format!("[{}]", trunk.host)
    } else {
        trunk.host.clone()
    };
    let transport = match trunk.transport {
        Transport::Udp => "",
        Transport::Tcp => ";transport=tcp",
        Transport::Tls => ";transport=tls",
        Transport::Ws => ";transport=ws",
        Transport::Wss => ";transport=wss",
        _ => "",
    };
    let scheme = if trunk.transport == Transport::Tls {
        "sips"
    } else {
        "sip"
    };
    let transport = if scheme == "sips" { "" } else { transport };
    TrunkTarget {
        trunk_id: trunk.id,
        name: trunk.name.clone(),
        host: trunk.host.clone(),
        port: trunk.port,
        transport: trunk.transport,
        auth: match trunk.mode {
            TrunkMode::Digest => entry.auth.clone(),
            _ => None,
        },
        auth_realm: trunk.auth_realm.clone(),
        caller_identity: trunk.caller_identity,
        request_uri: match explicit_port(&trunk.host, trunk.port, trunk.transport) {
            Some(port) => format!("{scheme}:{user}@{host}:{port}{transport}"),
            None => format!("{scheme}:{user}@{host}{transport}"),
        },
    }
}

/// The port of a trunk's carrier as RFC 3263 sees it: `None` when the host is a name and the
/// port the default (5060, or 5061 for TLS), so NAPTR/SRV pick the targets and the URIs
/// towards the carrier carry no port; `Some` for an IP literal or any other port (A/AAAA
/// only). Trunks always store a port (the API fills in 5060 when none is given), so the
/// default stands for "none given".
pub fn explicit_port(host: &str, port: u16, transport: Transport) -> Option<u16> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let literal = bare.parse::<IpAddr>().is_ok();
    let default = port == 5060 || (transport == Transport::Tls && port == 5061);
    (literal || !default).then_some(port)
}
