//! Registrar settings.

use std::time::Duration;

/// Registrar settings; build with [`RegistrarConfig::new`] and adjust fields, then
/// [`crate::Registrar::new`] validates them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrarConfig {
    /// This node's id, stored in every flow (cluster routing).
    pub node_id: String,
    /// Shortest registration accepted; shorter non-zero requests get `423` (RFC 3261 §10.3
    /// step 7). Default 60 s.
    pub min_expires_secs: u32,
    /// Granted when the request names none. Default 3600 s.
    pub default_expires_secs: u32,
    /// Longer requests are shortened to this. Default 7200 s.
    pub max_expires_secs: u32,
    /// Bindings per user (desk phone, mobile, softphone...). Default 10.
    pub max_contacts_per_user: usize,
    /// OPTIONS keep-alive interval for UDP flows (NAT bindings often close after 30-60 s).
    /// Default 25 s.
    pub udp_keepalive: Duration,
    /// CRLF keep-alive interval for TCP/TLS flows. Default 60 s.
    pub stream_keepalive: Duration,
    /// Consecutive failed keep-alives after which the flow's bindings are removed.
    /// Default 3.
    pub keepalive_failure_threshold: u32,
    /// The From user of keep-alive OPTIONS (`sip:<user>@<realm>`). Default `keepalive`.
    pub keepalive_from_user: String,
    /// Persist a plain refresh ([`crate::Effect::RefreshBinding`]) only when the store's copy
    /// of the expiry would otherwise keep less than half of the newly granted lifetime (or
    /// outlive it). Default `true`; `false` persists every refresh.
    pub persist_refreshes_lazily: bool,
}

impl RegistrarConfig {
    /// Defaults for `node_id`.
    pub fn new(node_id: impl Into<String>) -> RegistrarConfig {
        RegistrarConfig {
            node_id: node_id.into(),
            min_expires_secs: 60,
            default_expires_secs: 3600,
            max_expires_secs: 7200,
            max_contacts_per_user: 10,
            udp_keepalive: Duration::from_secs(25),
            stream_keepalive: Duration::from_secs(60),
            keepalive_failure_threshold: 3,
            keepalive_from_user: "keepalive".to_owned(),
            persist_refreshes_lazily: true,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if self.node_id.is_empty() {
            return Err(ConfigError::EmptyNodeId);
        }
        if self.min_expires_secs == 0
            || self.min_expires_secs > self.default_expires_secs
            || self.default_expires_secs > self.max_expires_secs
        {
            return Err(ConfigError::ExpiryOrder);
        }
        if self.max_contacts_per_user == 0 {
            return Err(ConfigError::NoContacts);
        }
        if self.udp_keepalive.is_zero() || self.stream_keepalive.is_zero() {
            return Err(ConfigError::ZeroKeepalive);
        }
        if self.keepalive_failure_threshold == 0 {
            return Err(ConfigError::ZeroFailureThreshold);
        }
        let user_ok = !self.keepalive_from_user.is_empty()
            && self
                .keepalive_from_user
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !user_ok {
            return Err(ConfigError::InvalidKeepaliveUser);
        }
        Ok(())
    }
}

/// The settings cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `node_id` is empty.
    #[error("node_id is empty")]
    EmptyNodeId,
    /// Expiry limits are not `0 < min <= default <= max`.
    #[error("expiry limits must satisfy 0 < min <= default <= max")]
    ExpiryOrder,
    /// `max_contacts_per_user` is zero.
    #[error("max_contacts_per_user must be at least 1")]
    NoContacts,
    /// A keep-alive interval is zero.
    #[error("keep-alive intervals must be positive")]
    ZeroKeepalive,
    /// `keepalive_failure_threshold` is zero.
    #[error("keepalive_failure_threshold must be at least 1")]
    ZeroFailureThreshold,
    /// `keepalive_from_user` is empty or not a plain token.
    #[error("keepalive_from_user must be a non-empty token")]
    InvalidKeepaliveUser,
    /// The realm is empty or not a host name (it is used as the keep-alive From host).
    #[error("realm must be a non-empty host name")]
    InvalidRealm,
}

/// Whether `realm` can be the host of a SIP URI (letters, digits, `-`, `.`).
pub(crate) fn realm_is_host(realm: &str) -> bool {
    !realm.is_empty()
        && realm
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.'))
}
