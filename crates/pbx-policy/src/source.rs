//! Source keys: the unit a ban applies to.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

/// What a ban or a counter is kept for: one IPv4 address, or one IPv6 prefix.
///
/// IPv6 sources are aggregated by prefix (`/64` by default) so that an attacker rotating
/// addresses inside the prefix delegated to him stays one source. IPv4-mapped IPv6 addresses
/// (`::ffff:a.b.c.d`) are the IPv4 address they map.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "family", rename_all = "lowercase")]
pub enum SourceKey {
    /// One IPv4 address.
    V4 {
        /// The address.
        addr: Ipv4Addr,
    },
    /// An IPv6 prefix: the address with the host bits cleared, and the prefix length.
    V6 {
        /// The network address.
        prefix: Ipv6Addr,
        /// Prefix length, 1..=128.
        len: u8,
    },
}

impl SourceKey {
    /// The key for `ip` when IPv6 sources are aggregated to `/v6_prefix_len` (clamped to
    /// 1..=128).
    pub fn from_ip(ip: IpAddr, v6_prefix_len: u8) -> Self {
        match ip {
            IpAddr::V4(addr) => Self::V4 { addr },
            IpAddr::V6(v6) => {
                if let Some(addr) = v6.to_ipv4_mapped() {
                    return Self::V4 { addr };
                }
                let len = v6_prefix_len.clamp(1, 128);
                let mask = u128::MAX << (128 - u32::from(len));
                Self::V6 {
                    prefix: Ipv6Addr::from(u128::from(v6) & mask),
                    len,
                }
            }
        }
    }
}

impl fmt::Display for SourceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::V4 { addr } => addr.fmt(f),
            Self::V6 { prefix, len } => write!(f, "{prefix}/{len}"),
        }
    }
}

impl fmt::Debug for SourceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SourceKey({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v6_aggregates_by_prefix() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff:1:2:3".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(SourceKey::from_ip(a, 64), SourceKey::from_ip(b, 64));
        assert_ne!(SourceKey::from_ip(a, 64), SourceKey::from_ip(c, 64));
        assert_eq!(SourceKey::from_ip(a, 48), SourceKey::from_ip(c, 48));
        assert_eq!(SourceKey::from_ip(a, 64).to_string(), "2001:db8:1:2::/64");
        assert_ne!(SourceKey::from_ip(a, 128), SourceKey::from_ip(b, 128));
        // Out-of-range lengths are clamped, never a shift overflow.
        let _ = SourceKey::from_ip(a, 0);
        let _ = SourceKey::from_ip(a, 200);
    }

    #[test]
    fn mapped_v4_is_v4() {
        let m: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(SourceKey::from_ip(m, 64), SourceKey::from_ip(v4, 64));
    }
}
