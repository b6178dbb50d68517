//! The outbound destination policy: class of service, default blocks, tenant exceptions.

use pbx_domain::ClassOfService;
use serde::{Deserialize, Serialize};

use super::{Destination, DestinationClass};
use crate::decision::{BlockReason, Verdict};

/// Platform defaults for destination blocking.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PolicyDefaults {
    /// Block premium rate (NL 0900/0906/0909, foreign premium, IPRS +979). Default true.
    pub block_premium_rate: bool,
    /// Block satellite networks. Default true.
    pub block_satellite: bool,
    /// Block ranges on the platform's high-fraud list (and +882/+883). Default true.
    pub block_high_risk: bool,
}

impl Default for PolicyDefaults {
    fn default() -> Self {
        Self {
            block_premium_rate: true,
            block_satellite: true,
            block_high_risk: true,
        }
    }
}

/// A tenant's explicit exceptions, as E.164 prefixes (`+53`, `+31909`; the `+` is optional).
/// The longest matching prefix wins; on a tie, block wins.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantExceptions {
    /// Prefixes the tenant may call although blocked by default.
    pub allow: Vec<String>,
    /// Extra prefixes the tenant blocks.
    pub block: Vec<String>,
}

enum Exception {
    Allow,
    Block(String),
}

impl TenantExceptions {
    fn lookup(&self, e164: &str) -> Option<Exception> {
        let digits = e164.trim_start_matches('+');
        let best = |list: &[String]| {
            list.iter()
                .map(|p| p.trim_start_matches('+'))
                .filter(|p| !p.is_empty() && digits.starts_with(p))
                .map(str::len)
                .max()
        };
        let allow = best(&self.allow);
        let block = self
            .block
            .iter()
            .filter(|p| {
                let p = p.trim_start_matches('+');
                !p.is_empty() && digits.starts_with(p)
            })
            .max_by_key(|p| p.trim_start_matches('+').len());
        match (allow, block) {
            (Some(a), Some(b)) if a > b.trim_start_matches('+').len() => Some(Exception::Allow),
            (_, Some(b)) => Some(Exception::Block(b.clone())),
            (Some(_), None) => Some(Exception::Allow),
            (None, None) => None,
        }
    }
}

/// The destination policy (stateless).
#[derive(Debug, Clone, Copy)]
pub struct OutboundPolicy;

impl OutboundPolicy {
    /// Decides whether an account with `class_of_service` may call `destination`.
    ///
    /// Order: emergency always allowed; invalid numbers refused; internal allowed; tenant
    /// block exceptions; default blocks (premium, satellite, high-risk) unless a tenant allow
    /// exception covers the number; then the class of service (InternalOnly: internal and
    /// emergency; National: plus every national class; International: everything).
    pub fn check(
        class_of_service: ClassOfService,
        destination: &Destination,
        exceptions: &TenantExceptions,
        defaults: &PolicyDefaults,
    ) -> Verdict {
        let block = |reason| Verdict::Block { reason };
        match destination.class {
            DestinationClass::Emergency => return Verdict::Allow,
            DestinationClass::Invalid => return block(BlockReason::InvalidNumber),
            DestinationClass::Internal => return Verdict::Allow,
            _ => {}
        }
        let exception = destination
            .e164
            .as_deref()
            .and_then(|n| exceptions.lookup(n));
        if let Some(Exception::Block(prefix)) = exception {
            return block(BlockReason::TenantBlocked { prefix });
        }
        let allowed_by_tenant = matches!(exception, Some(Exception::Allow));
        if !allowed_by_tenant {
            if defaults.block_premium_rate && destination.class == DestinationClass::PremiumRate {
                return block(BlockReason::PremiumRate);
            }
            if defaults.block_satellite && destination.class == DestinationClass::Satellite {
                return block(BlockReason::Satellite);
            }
            if defaults.block_high_risk
                && let Some(range) = &destination.high_risk
            {
                return block(BlockReason::HighFraud {
                    range: range.clone(),
                });
            }
        }
        let reachable = match class_of_service {
            ClassOfService::InternalOnly => false,
            ClassOfService::National => matches!(
                destination.class,
                DestinationClass::NationalFixed
                    | DestinationClass::Mobile
                    | DestinationClass::TollFree
                    | DestinationClass::SharedCost
                    | DestinationClass::PremiumRate
                    | DestinationClass::Special
            ),
            ClassOfService::International => true,
            // A class added later reaches nothing until this policy learns it (fail closed).
            _ => false,
        };
        if reachable {
            Verdict::Allow
        } else {
            block(BlockReason::ClassOfService)
        }
    }
}
