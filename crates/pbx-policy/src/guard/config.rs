//! Guard configuration with the defaults used in the field.

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

const MINUTE: u64 = 60_000;
const HOUR: u64 = 60 * MINUTE;

/// Tunables of the brute-force guard. All durations are milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct GuardConfig {
    /// IPv6 sources are aggregated to this prefix length (default 64).
    pub ipv6_prefix_len: u8,
    /// Failures (wrong password, unknown user, unanswered challenge) that ban a source.
    pub source_failures: u32,
    /// Window in which `source_failures` must occur (default 10 minutes).
    pub failure_window_ms: u64,
    /// First ban length (default 15 minutes).
    pub base_ban_ms: u64,
    /// Each repeat ban is this many times longer (default 4).
    pub escalation_factor: u32,
    /// Longest ban (default 24 hours).
    pub max_ban_ms: u64,
    /// A source without a new ban for this long after its last ban ended returns to level 0
    /// (default 7 days).
    pub ban_history_ms: u64,
    /// Failures for one user name (from any source) that throttle that user name.
    pub user_failures: u32,
    /// How long a user name stays throttled (default 15 minutes).
    pub user_throttle_ms: u64,
    /// Failures across one tenant within `failure_window_ms` that raise a
    /// tenant-under-attack event (default 50).
    pub tenant_failures: u32,
    /// Ban a source at its first scanner User-Agent (default true); when false a scanner
    /// request counts as one failure.
    pub scanner_immediate_ban: bool,
    /// Requests per second a source may sustain (default 50).
    pub flood_rate_per_second: u32,
    /// Burst of requests allowed above the rate (default 200).
    pub flood_burst: u32,
    /// Most sources with live counters (LRU beyond; default 100 000).
    pub max_sources: usize,
    /// Most bans and ban histories kept (LRU beyond; default 100 000).
    pub max_bans: usize,
    /// Most user names with live counters (LRU beyond; default 100 000).
    pub max_users: usize,
    /// Most tenants with live counters (LRU beyond; default 10 000).
    pub max_tenants: usize,
}

impl Default for GuardConfig {
    fn default() -> Self {
        Self {
            ipv6_prefix_len: 64,
            source_failures: 5,
            failure_window_ms: 10 * MINUTE,
            base_ban_ms: 15 * MINUTE,
            escalation_factor: 4,
            max_ban_ms: 24 * HOUR,
            ban_history_ms: 7 * 24 * HOUR,
            user_failures: 5,
            user_throttle_ms: 15 * MINUTE,
            tenant_failures: 50,
            scanner_immediate_ban: true,
            flood_rate_per_second: 50,
            flood_burst: 200,
            max_sources: 100_000,
            max_bans: 100_000,
            max_users: 100_000,
            max_tenants: 10_000,
        }
    }
}

impl GuardConfig {
    /// Checks the configuration; the guard also works with an invalid one (values are
    /// clamped), but an operator should be told.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=128).contains(&self.ipv6_prefix_len) {
            return Err(ConfigError::Ipv6PrefixLen(self.ipv6_prefix_len));
        }
        for (field, v) in [
            ("source_failures", self.source_failures),
            ("user_failures", self.user_failures),
            ("tenant_failures", self.tenant_failures),
            ("escalation_factor", self.escalation_factor),
            ("flood_rate_per_second", self.flood_rate_per_second),
            ("flood_burst", self.flood_burst),
        ] {
            if v == 0 {
                return Err(ConfigError::ZeroThreshold { field });
            }
        }
        for (field, v) in [
            ("failure_window_ms", self.failure_window_ms),
            ("base_ban_ms", self.base_ban_ms),
            ("max_ban_ms", self.max_ban_ms),
            ("user_throttle_ms", self.user_throttle_ms),
        ] {
            if v == 0 {
                return Err(ConfigError::ZeroDuration { field });
            }
        }
        if self.base_ban_ms > self.max_ban_ms {
            return Err(ConfigError::BanLengths);
        }
        Ok(())
    }

    /// The ban length at escalation `level` (0 = first ban): base × factor^level, capped.
    pub fn ban_length(&self, level: u32) -> u64 {
        let mut length = self.base_ban_ms;
        for _ in 0..level {
            length = length.saturating_mul(u64::from(self.escalation_factor.max(1)));
            if length >= self.max_ban_ms {
                break;
            }
        }
        length.min(self.max_ban_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_escalate() {
        let c = GuardConfig::default();
        assert_eq!(c.validate(), Ok(()));
        let minutes: Vec<u64> = (0..7).map(|l| c.ban_length(l) / 60_000).collect();
        assert_eq!(minutes, vec![15, 60, 240, 960, 1440, 1440, 1440]);
        assert_eq!(c.ban_length(u32::MAX), 24 * HOUR);
        let bad = GuardConfig {
            ipv6_prefix_len: 0,
            ..GuardConfig::default()
        };
        assert_eq!(bad.validate(), Err(ConfigError::Ipv6PrefixLen(0)));
        let bad = GuardConfig {
            source_failures: 0,
            ..GuardConfig::default()
        };
        assert_eq!(
            bad.validate(),
            Err(ConfigError::ZeroThreshold {
                field: "source_failures"
            })
        );
        let bad = GuardConfig {
            base_ban_ms: 25 * HOUR,
            ..GuardConfig::default()
        };
        assert_eq!(bad.validate(), Err(ConfigError::BanLengths));
    }
}
