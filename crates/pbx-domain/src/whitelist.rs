//! IP whitelists: the networks from which a tenant (or one user) may register and call.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::error::ValidationError;

/// Parses a network in CIDR notation (`192.0.2.0/24`, `2001:db8::/32`) or a bare address
/// (taken as `/32` or `/128`). Host bits are cleared: `192.0.2.7/24` becomes `192.0.2.0/24`.
/// An IPv4-mapped IPv6 network (`::ffff:192.0.2.0/120`) is stored as the IPv4 network.
pub fn parse_network(text: &str) -> Result<IpNet, ValidationError> {
    let text = text.trim();
    let network = match text.parse::<IpNet>() {
        Ok(network) => network,
        Err(_) => IpNet::from(
            text.parse::<IpAddr>()
                .map_err(|_| ValidationError::InvalidCidr)?,
        ),
    };
    Ok(unmap_network(network).trunc())
}

/// Turns an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, as dual-stack sockets report IPv4
/// peers) into the IPv4 address; other addresses are returned as they are.
pub fn canonical_ip(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        IpAddr::V4(_) => address,
    }
}

fn unmap_network(network: IpNet) -> IpNet {
    if let IpNet::V6(v6) = network
        && let Some(v4) = v6.addr().to_ipv4_mapped()
        && v6.prefix_len() >= 96
        && let Ok(mapped) = ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96)
    {
        return IpNet::V4(mapped);
    }
    network
}

/// A set of allowed networks, IPv4 and IPv6 together.
///
/// An address is matched after [`canonical_ip`], so an IPv4 peer seen through an IPv6
/// socket matches the IPv4 entries, and an IPv6 address is only allowed by an IPv6 entry:
/// securing IPv4 does not leave IPv6 open, because a non-empty list denies every address
/// it does not name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpWhitelist {
    networks: Vec<IpNet>,
}

impl IpWhitelist {
    /// A whitelist of the given networks (already parsed).
    pub fn new(networks: impl IntoIterator<Item = IpNet>) -> Self {
        let mut networks: Vec<IpNet> = networks
            .into_iter()
            .map(|n| unmap_network(n).trunc())
            .collect();
        networks.sort();
        networks.dedup();
        Self { networks }
    }

    /// Adds a network.
    pub fn push(&mut self, network: IpNet) {
        let network = unmap_network(network).trunc();
        if let Err(position) = self.networks.binary_search(&network) {
            self.networks.insert(position, network);
        }
    }

    /// The networks, sorted.
    pub fn networks(&self) -> &[IpNet] {
        &self.networks
    }

    /// True when the list has no entries (which means "no restriction" in [`IpWhitelist::permits`]).
    pub fn is_empty(&self) -> bool {
        self.networks.is_empty()
    }

    /// True when `address` is inside one of the networks. An empty list allows nothing.
    pub fn allows(&self, address: IpAddr) -> bool {
        let address = canonical_ip(address);
        self.networks
            .iter()
            .any(|network| network.contains(&address))
    }

    /// The combined rule for a tenant list and an optional user list: every non-empty list
    /// must allow the address (a user list narrows the tenant list, it never widens it). With
    /// both lists empty there is no IP restriction.
    pub fn permits(tenant: &IpWhitelist, user: Option<&IpWhitelist>, address: IpAddr) -> bool {
        let tenant_ok = tenant.is_empty() || tenant.allows(address);
        let user_ok = user.is_none_or(|list| list.is_empty() || list.allows(address));
        tenant_ok && user_ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn parses_cidrs_and_bare_addresses() {
        assert_eq!(
            parse_network("192.0.2.7/24").unwrap().to_string(),
            "192.0.2.0/24"
        );
        assert_eq!(
            parse_network("198.51.100.9").unwrap().to_string(),
            "198.51.100.9/32"
        );
        assert_eq!(
            parse_network("2001:db8:1::5/48").unwrap().to_string(),
            "2001:db8:1::/48"
        );
        assert_eq!(
            parse_network("2001:db8::1").unwrap().to_string(),
            "2001:db8::1/128"
        );
        assert_eq!(
            parse_network("::ffff:192.0.2.0/120").unwrap().to_string(),
            "192.0.2.0/24"
        );
        for bad in [
            "",
            "192.0.2.0/33",
            "2001:db8::/129",
            "example.com",
            "192.0.2",
        ] {
            assert!(parse_network(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn matches_v4_v6_and_mapped() {
        let list = IpWhitelist::new([
            parse_network("192.0.2.0/24").unwrap(),
            parse_network("2001:db8::/32").unwrap(),
        ]);
        assert!(list.allows(ip("192.0.2.200")));
        assert!(
            list.allows(ip("::ffff:192.0.2.1")),
            "IPv4 peer on a dual-stack socket"
        );
        assert!(list.allows(ip("2001:db8:ffff::1")));
        assert!(!list.allows(ip("192.0.3.1")));
        assert!(
            !list.allows(ip("2001:db9::1")),
            "IPv6 outside the list is refused"
        );
        assert!(!list.allows(ip("::1")));
    }

    #[test]
    fn ipv4_only_list_does_not_open_ipv6() {
        let list = IpWhitelist::new([parse_network("0.0.0.0/0").unwrap()]);
        assert!(list.allows(ip("203.0.113.1")));
        assert!(!list.allows(ip("2001:db8::1")));
    }

    #[test]
    fn tenant_and_user_lists_combine_by_intersection() {
        let tenant = IpWhitelist::new([parse_network("10.0.0.0/8").unwrap()]);
        let user = IpWhitelist::new([parse_network("10.1.0.0/16").unwrap()]);
        let empty = IpWhitelist::default();
        assert!(IpWhitelist::permits(&tenant, Some(&user), ip("10.1.2.3")));
        assert!(!IpWhitelist::permits(&tenant, Some(&user), ip("10.2.0.1")));
        assert!(IpWhitelist::permits(&tenant, None, ip("10.2.0.1")));
        assert!(
            IpWhitelist::permits(&empty, None, ip("2001:db8::1")),
            "no lists: no restriction"
        );
        assert!(!IpWhitelist::permits(&empty, Some(&user), ip("192.0.2.1")));
    }

    #[test]
    fn push_keeps_sorted_and_unique() {
        let mut list = IpWhitelist::default();
        list.push(parse_network("2001:db8::/32").unwrap());
        list.push(parse_network("10.0.0.0/8").unwrap());
        list.push(parse_network("10.0.0.0/8").unwrap());
        assert_eq!(list.networks().len(), 2);
        assert!(!list.is_empty());
    }
}
