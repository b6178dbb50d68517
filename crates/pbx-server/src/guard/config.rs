//! `[security]`: the fraud and abuse guard's configuration (file schema and validated form).

use std::time::Duration;

use pbx_policy::{GuardConfig, Limits};
use serde::{Deserialize, Serialize};

use crate::config::ConfigError;

/// `[security]` as written in `cloudpbx.toml`. Defaults are the ones used in the field
/// (5 failures in 10 minutes → 15 minutes, each repeat ×4 up to 24 hours).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecuritySection {
    /// Switch the guard off entirely (not recommended; for benchmarks and debugging).
    pub enabled: bool,
    /// IPv6 sources are counted and banned per prefix of this length.
    pub ipv6_prefix_len: u8,
    /// Failures (wrong password, unknown user, unanswered challenge) that ban a source.
    pub failures_before_ban: u32,
    /// Window in which those failures must fall.
    pub failure_window_secs: u64,
    /// First ban length.
    pub ban_secs: u64,
    /// Each repeat ban is this many times longer.
    pub ban_escalation_factor: u32,
    /// Longest ban.
    pub max_ban_secs: u64,
    /// Failures of one user name (from any source) that throttle that user name.
    pub user_failures_before_throttle: u32,
    /// How long a throttled user name is refused.
    pub user_throttle_secs: u64,
    /// Failures across one tenant within the window that raise a tenant-under-attack event.
    pub tenant_failures_alert: u32,
    /// Ban a source at its first request with a known scanner User-Agent (otherwise it counts
    /// as one failure).
    pub scanner_immediate_ban: bool,
    /// Requests per second one source may sustain before it is banned as a flood (sources
    /// that authenticated recently are exempt).
    pub flood_requests_per_sec: u32,
    /// Burst above that rate.
    pub flood_burst: u32,
    /// A 401 challenge not answered within this time counts as one failure of its source.
    pub challenge_timeout_secs: u64,
    /// A source where some account authenticated within this time is not banned for other
    /// accounts' failures (an office behind one NAT): the failing user name is throttled.
    pub recent_auth_secs: u64,
    /// Country whose numbering plan classifies national dialling (ISO alpha-2).
    pub default_country: String,
    /// Extension length of the tenants (dialled strings of this length are internal).
    pub extension_len: u32,
    /// `http://host:port/path` that receives every security event as a JSON POST; empty: off.
    pub webhook_url: String,
    /// Events queued for the webhook at most (older ones are dropped and counted).
    pub webhook_queue: u32,
    /// Delivery attempts per event (1 s, 2 s, 4 s, ... apart).
    pub webhook_attempts: u32,
    /// Banned sources also dropped in the kernel, by a socket filter on every SIP UDP
    /// listener (Linux), at most this many (the longest-running bans first; the rest are
    /// dropped in userspace as before). `0` switches the kernel drop set off.
    pub kernel_drop_max_entries: u32,
    /// `[security.account_limits]`: outbound usage limits of every account (user).
    pub account_limits: LimitsSection,
    /// `[security.tenant_limits]`: outbound usage limits of every tenant.
    pub tenant_limits: LimitsSection,
}

/// `[security.account_limits]` / `[security.tenant_limits]`: outbound usage limits. A key
/// left out keeps the platform default (account: 4 concurrent calls, 10 per minute, 60 per
/// hour, 600 minutes and €50 per day; tenant: 30, 60, 600, 6,000 minutes and €500); `0`
/// means unlimited. Minutes or cost at 1.5 × the daily limit end the running calls.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsSection {
    /// Outbound calls in progress at once.
    pub max_concurrent_calls: Option<u32>,
    /// Outbound call attempts in any 60 s.
    pub calls_per_minute: Option<u32>,
    /// Outbound call attempts in any hour.
    pub calls_per_hour: Option<u32>,
    /// Outbound minutes per UTC day.
    pub minutes_per_day: Option<u64>,
    /// Outbound cost per UTC day, in milli-cents (1 cent = 1,000), at the default tariff.
    pub cost_per_day_millicents: Option<u64>,
}

impl LimitsSection {
    /// The limits: `defaults` where a key is left out, none where it is `0`.
    pub fn resolve(&self, defaults: Limits) -> Limits {
        fn pick<T: Copy + PartialEq + Default>(set: Option<T>, default: Option<T>) -> Option<T> {
            match set {
                None => default,
                Some(value) if value == T::default() => None,
                Some(value) => Some(value),
            }
        }
        Limits {
            max_concurrent: pick(self.max_concurrent_calls, defaults.max_concurrent),
            calls_per_minute: pick(self.calls_per_minute, defaults.calls_per_minute),
            calls_per_hour: pick(self.calls_per_hour, defaults.calls_per_hour),
            minutes_per_day: pick(self.minutes_per_day, defaults.minutes_per_day),
            cost_per_day: pick(self.cost_per_day_millicents, defaults.cost_per_day),
        }
    }
}

impl Default for SecuritySection {
    fn default() -> Self {
        let guard = GuardConfig::default();
        Self {
            enabled: true,
            ipv6_prefix_len: guard.ipv6_prefix_len,
            failures_before_ban: guard.source_failures,
            failure_window_secs: guard.failure_window_ms / 1000,
            ban_secs: guard.base_ban_ms / 1000,
            ban_escalation_factor: guard.escalation_factor,
            max_ban_secs: guard.max_ban_ms / 1000,
            user_failures_before_throttle: guard.user_failures,
            user_throttle_secs: guard.user_throttle_ms / 1000,
            tenant_failures_alert: guard.tenant_failures,
            scanner_immediate_ban: guard.scanner_immediate_ban,
            flood_requests_per_sec: guard.flood_rate_per_second,
            flood_burst: guard.flood_burst,
            challenge_timeout_secs: 32,
            recent_auth_secs: 3_600,
            default_country: "NL".into(),
            extension_len: 3,
            webhook_url: String::new(),
            webhook_queue: 10_000,
            webhook_attempts: 5,
            kernel_drop_max_entries: 1_000,
            account_limits: LimitsSection::default(),
            tenant_limits: LimitsSection::default(),
        }
    }
}

/// The validated `[security]` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecuritySettings {
    /// Whether the guard runs.
    pub enabled: bool,
    /// The policy core's configuration.
    pub guard: GuardConfig,
    /// Unanswered-challenge timeout.
    pub challenge_timeout: Duration,
    /// How long a successful authentication exempts its source.
    pub recent_auth: Duration,
    /// Country for national numbers.
    pub default_country: String,
    /// Extension length.
    pub extension_len: usize,
    /// Webhook target (`http://` only), if any.
    pub webhook: Option<WebhookSettings>,
    /// Bans installed in the kernel drop set at most (0: off).
    pub kernel_drop_max_entries: usize,
    /// Outbound usage limits of every account.
    pub account_limits: Limits,
    /// Outbound usage limits of every tenant.
    pub tenant_limits: Limits,
}

/// Where and how security events are posted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSettings {
    /// `host:port` to connect to.
    pub authority: String,
    /// Request path (with query).
    pub path: String,
    /// Queue bound.
    pub queue: usize,
    /// Attempts per event.
    pub attempts: u32,
}

impl Default for SecuritySettings {
    fn default() -> Self {
        // The defaults are valid by construction (checked in a unit test).
        SecuritySection::default()
            .validate()
            .unwrap_or_else(|_| SecuritySettings {
                enabled: true,
                guard: GuardConfig::default(),
                challenge_timeout: Duration::from_secs(32),
                recent_auth: Duration::from_secs(3_600),
                default_country: "NL".into(),
                extension_len: 3,
                webhook: None,
                kernel_drop_max_entries: 1_000,
                account_limits: Limits::account_default(),
                tenant_limits: Limits::tenant_default(),
            })
    }
}

impl SecuritySection {
    /// Validates the section.
    pub fn validate(&self) -> Result<SecuritySettings, ConfigError> {
        let guard = GuardConfig {
            ipv6_prefix_len: self.ipv6_prefix_len,
            source_failures: self.failures_before_ban,
            failure_window_ms: self.failure_window_secs.saturating_mul(1000),
            base_ban_ms: self.ban_secs.saturating_mul(1000),
            escalation_factor: self.ban_escalation_factor,
            max_ban_ms: self.max_ban_secs.saturating_mul(1000),
            user_failures: self.user_failures_before_throttle,
            user_throttle_ms: self.user_throttle_secs.saturating_mul(1000),
            tenant_failures: self.tenant_failures_alert,
            scanner_immediate_ban: self.scanner_immediate_ban,
            flood_rate_per_second: self.flood_requests_per_sec,
            flood_burst: self.flood_burst,
            ..GuardConfig::default()
        };
        guard.validate().map_err(|err| {
            let key = match err {
                pbx_policy::ConfigError::Ipv6PrefixLen(_) => "security.ipv6_prefix_len",
                pbx_policy::ConfigError::BanLengths => "security.ban_secs",
                _ => "security",
            };
            ConfigError::invalid(key, err.to_string())
        })?;
        if self.challenge_timeout_secs == 0 {
            return Err(ConfigError::invalid(
                "security.challenge_timeout_secs",
                "must be positive",
            ));
        }
        if self.default_country.len() != 2
            || pbx_policy::classify("+31201234567", &self.default_country, 0).class
                == pbx_policy::DestinationClass::Invalid
        {
            return Err(ConfigError::invalid(
                "security.default_country",
                "must be an ISO 3166 alpha-2 code such as NL",
            ));
        }
        let webhook = if self.webhook_url.is_empty() {
            None
        } else {
            let Some(rest) = self.webhook_url.strip_prefix("http://") else {
                return Err(ConfigError::invalid(
                    "security.webhook_url",
                    "must start with http:// (put a TLS-terminating relay in front for https)",
                ));
            };
            let (authority, path) = match rest.find('/') {
                Some(at) => (&rest[..at], &rest[at..]),
                None => (rest, "/"),
            };
            if authority.is_empty() || authority.contains(['@', ' ']) {
                return Err(ConfigError::invalid(
                    "security.webhook_url",
                    "needs a host[:port] and no user info",
                ));
            }
            let authority = if authority.rsplit_once(':').is_some_and(|(_, p)| {
                !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && !p.contains(']')
            }) {
                authority.to_owned()
            } else {
                format!("{authority}:80")
            };
            Some(WebhookSettings {
                authority,
                path: path.to_owned(),
                queue: self.webhook_queue.max(1) as usize,
                attempts: self.webhook_attempts.max(1),
            })
        };
        Ok(SecuritySettings {
            enabled: self.enabled,
            guard,
            challenge_timeout: Duration::from_secs(self.challenge_timeout_secs),
            recent_auth: Duration::from_secs(self.recent_auth_secs),
            default_country: self.default_country.to_ascii_uppercase(),
            extension_len: self.extension_len as usize,
            webhook,
            kernel_drop_max_entries: self.kernel_drop_max_entries as usize,
            account_limits: self.account_limits.resolve(Limits::account_default()),
            tenant_limits: self.tenant_limits.resolve(Limits::tenant_default()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_match_the_policy_defaults() {
        let settings = SecuritySection::default().validate().unwrap();
        assert_eq!(settings.guard, GuardConfig::default());
        assert!(settings.webhook.is_none());
        assert_eq!(SecuritySettings::default(), settings);
    }

    #[test]
    fn rejects_bad_values_naming_the_key() {
        let bad = SecuritySection {
            ipv6_prefix_len: 0,
            ..SecuritySection::default()
        };
        assert_eq!(
            bad.validate().unwrap_err().key(),
            Some("security.ipv6_prefix_len")
        );
        let bad = SecuritySection {
            webhook_url: "https://example.com/hook".into(),
            ..SecuritySection::default()
        };
        assert_eq!(
            bad.validate().unwrap_err().key(),
            Some("security.webhook_url")
        );
        let bad = SecuritySection {
            default_country: "Netherlands".into(),
            ..SecuritySection::default()
        };
        assert_eq!(
            bad.validate().unwrap_err().key(),
            Some("security.default_country")
        );
    }

    #[test]
    fn limits_keep_the_defaults_unless_set_and_zero_is_unlimited() {
        let settings = SecuritySection::default().validate().unwrap();
        assert_eq!(settings.account_limits, Limits::account_default());
        assert_eq!(settings.tenant_limits, Limits::tenant_default());
        let text = r#"
            [account_limits]
            max_concurrent_calls = 2
            cost_per_day_millicents = 0
            [tenant_limits]
            calls_per_minute = 100
        "#;
        let section: SecuritySection = toml::from_str(text).unwrap();
        let settings = section.validate().unwrap();
        assert_eq!(
            settings.account_limits,
            Limits {
                max_concurrent: Some(2),
                cost_per_day: None,
                ..Limits::account_default()
            }
        );
        assert_eq!(
            settings.tenant_limits,
            Limits {
                calls_per_minute: Some(100),
                ..Limits::tenant_default()
            }
        );
        let unknown = toml::from_str::<SecuritySection>("[account_limits]\nmax_calls = 3\n");
        assert!(unknown.is_err(), "unknown keys are rejected");
    }

    #[test]
    fn webhook_url_is_split() {
        let ok = SecuritySection {
            webhook_url: "http://127.0.0.1:9000/hooks/security?x=1".into(),
            ..SecuritySection::default()
        };
        let hook = ok.validate().unwrap().webhook.unwrap();
        assert_eq!(hook.authority, "127.0.0.1:9000");
        assert_eq!(hook.path, "/hooks/security?x=1");
        let ok = SecuritySection {
            webhook_url: "http://alerts.example.com".into(),
            ..SecuritySection::default()
        };
        let hook = ok.validate().unwrap().webhook.unwrap();
        assert_eq!(hook.authority, "alerts.example.com:80");
        assert_eq!(hook.path, "/");
    }
}
