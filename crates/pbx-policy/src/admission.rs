//! IP whitelist admission: the per-tenant (and per-user) network filter of R5, and whether a
//! source counts as whitelisted for the guard's exemption.

use std::net::IpAddr;

use pbx_domain::{IpWhitelist, TenantId};

use crate::decision::Decision;
use crate::event::SecurityEvent;
use crate::source::SourceKey;

/// The outcome of [`whitelist_check`].
#[derive(Debug, Clone, PartialEq)]
pub enum WhitelistOutcome {
    /// The tenant has a whitelist and the source is on it (a guard-exempt source).
    Whitelisted,
    /// Neither the tenant nor the user restricts sources.
    Unrestricted,
    /// The source is outside a non-empty list: refuse with 403 and record the event.
    Rejected(SecurityEvent),
}

impl WhitelistOutcome {
    /// Whether the guard must treat the source as exempt (`Observation::exempt_source`).
    pub fn exempt_source(&self) -> bool {
        matches!(self, Self::Whitelisted)
    }

    /// The SIP answer: allow, or 403 with a Q.850 `Reason` (cause 21, call rejected).
    pub fn decision(&self) -> Decision {
        match self {
            Self::Whitelisted | Self::Unrestricted => Decision::Allow,
            Self::Rejected(_) => Decision::Reject {
                status: 403,
                reason: "Q.850;cause=21;text=\"Source address not allowed\"".into(),
            },
        }
    }
}

/// Checks `ip` against the tenant's whitelist and the user's optional one (a user list
/// narrows, never widens; both empty = unrestricted). `v6_prefix_len` is the guard's IPv6
/// aggregation, used for the event's source key.
pub fn whitelist_check(
    tenant: TenantId,
    tenant_list: &IpWhitelist,
    user_list: Option<&IpWhitelist>,
    ip: IpAddr,
    v6_prefix_len: u8,
) -> WhitelistOutcome {
    if !IpWhitelist::permits(tenant_list, user_list, ip) {
        let source = SourceKey::from_ip(ip, v6_prefix_len);
        return WhitelistOutcome::Rejected(SecurityEvent::WhitelistRejected { tenant, source });
    }
    if !tenant_list.is_empty() || user_list.is_some_and(|l| !l.is_empty()) {
        WhitelistOutcome::Whitelisted
    } else {
        WhitelistOutcome::Unrestricted
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pbx_domain::parse_network;

    #[test]
    fn whitelist_outcomes() {
        let tenant = TenantId::from_parts(1, &[0; 10]);
        let list = IpWhitelist::new([parse_network("192.0.2.0/24").unwrap()]);
        let inside: IpAddr = "192.0.2.9".parse().unwrap();
        let outside: IpAddr = "2001:db8::1".parse().unwrap();
        let ok = whitelist_check(tenant, &list, None, inside, 64);
        assert!(ok.exempt_source());
        assert_eq!(ok.decision(), Decision::Allow);
        let no = whitelist_check(tenant, &list, None, outside, 64);
        assert!(!no.exempt_source());
        assert_eq!(no.decision().status(), Some(403));
        assert!(matches!(
            no,
            WhitelistOutcome::Rejected(SecurityEvent::WhitelistRejected { .. })
        ));
        let open = whitelist_check(tenant, &IpWhitelist::default(), None, outside, 64);
        assert_eq!(open, WhitelistOutcome::Unrestricted);
        assert!(!open.exempt_source());
    }
}
