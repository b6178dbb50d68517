//! Configuration errors.

use thiserror::Error;

/// A policy configuration that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A count threshold is zero (everything would trip at once).
    #[error("{field} must be at least 1")]
    ZeroThreshold {
        /// The field.
        field: &'static str,
    },
    /// A duration is zero.
    #[error("{field} must be longer than 0 ms")]
    ZeroDuration {
        /// The field.
        field: &'static str,
    },
    /// The IPv6 aggregation prefix is outside 1..=128.
    #[error("ipv6_prefix_len must be within 1..=128, got {0}")]
    Ipv6PrefixLen(u8),
    /// The first ban is longer than the longest.
    #[error("base_ban_ms exceeds max_ban_ms")]
    BanLengths,
}
