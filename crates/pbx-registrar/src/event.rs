//! Typed registration and security events, published on the internal bus by the caller.

use std::net::SocketAddr;

use pbx_domain::{EventId, TenantId, UserId};
use serde::Serialize;

use crate::alg::AlgReason;
use crate::types::{BindingKey, FlowInfo};

/// Why a binding went away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RemovalReason {
    /// The device asked (`expires=0` / `Expires: 0`).
    Unregistered,
    /// `Contact: *` with `Expires: 0`.
    Wildcard,
    /// It was not refreshed in time.
    Expired,
    /// The user reached the contact limit; the least recently refreshed binding made room.
    Evicted,
    /// Keep-alive probes failed the configured number of times in a row.
    Unreachable,
    /// The driver reported the flow's connection closed.
    FlowClosed,
    /// The control plane removed it (administrator, user deleted, tenant suspended).
    Administrative,
}

/// Why a REGISTER was refused (security events; never sent to the device).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AuthFailure {
    /// Wrong password or unknown/disabled user (indistinguishable by design).
    InvalidCredentials,
    /// The credentials were malformed (answered 400).
    MalformedCredentials,
    /// The nonce was not ours, or the realm/algorithm/qop/opaque did not match.
    InvalidNonce,
    /// A nonce count was reused.
    Replay,
    /// The source address is not on the account's whitelist (answered 403).
    NotWhitelisted,
}

/// A registration or security event.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum RegistrationEvent {
    /// A new binding.
    Registered {
        /// The binding.
        key: BindingKey,
        /// Contact URI.
        contact: String,
        /// The flow it arrived on.
        flow: FlowInfo,
        /// The Contact address differs from the flow's source.
        behind_nat: bool,
        /// Seconds granted.
        expires_secs: u32,
    },
    /// An existing binding was refreshed (possibly moved to a new flow).
    Refreshed {
        /// The binding.
        key: BindingKey,
        /// The flow of the refresh.
        flow: FlowInfo,
        /// Seconds granted.
        expires_secs: u32,
    },
    /// A binding was removed.
    Removed {
        /// The binding.
        key: BindingKey,
        /// Why.
        reason: RemovalReason,
    },
    /// A SIP ALG seems to rewrite this device's messages.
    AlgSuspected {
        /// Tenant.
        tenant_id: TenantId,
        /// User.
        user_id: UserId,
        /// Where the REGISTER came from.
        source: SocketAddr,
        /// What gave it away.
        reason: AlgReason,
    },
    /// A REGISTER was refused. `tenant_id`/`user_id` are set only when the credentials
    /// were verified or the source was refused by a known account's whitelist.
    AuthFailed {
        /// Why.
        reason: AuthFailure,
        /// Where it came from.
        source: SocketAddr,
        /// Tenant, when known.
        tenant_id: Option<TenantId>,
        /// User, when known.
        user_id: Option<UserId>,
    },
}

impl RegistrationEvent {
    /// The dotted kind used in the event log (`registration.registered`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            RegistrationEvent::Registered { .. } => "registration.registered",
            RegistrationEvent::Refreshed { .. } => "registration.refreshed",
            RegistrationEvent::Removed { reason, .. } => match reason {
                RemovalReason::Unregistered | RemovalReason::Wildcard => {
                    "registration.unregistered"
                }
                RemovalReason::Administrative => "registration.removed",
                RemovalReason::Expired => "registration.expired",
                RemovalReason::Evicted => "registration.evicted",
                RemovalReason::Unreachable | RemovalReason::FlowClosed => {
                    "registration.unreachable"
                }
            },
            RegistrationEvent::AlgSuspected { .. } => "registration.alg_suspected",
            RegistrationEvent::AuthFailed { .. } => "security.register_auth_failed",
        }
    }

    /// The tenant concerned, if known.
    pub fn tenant_id(&self) -> Option<TenantId> {
        match self {
            RegistrationEvent::Registered { key, .. }
            | RegistrationEvent::Refreshed { key, .. }
            | RegistrationEvent::Removed { key, .. } => Some(key.tenant_id),
            RegistrationEvent::AlgSuspected { tenant_id, .. } => Some(*tenant_id),
            RegistrationEvent::AuthFailed { tenant_id, .. } => *tenant_id,
        }
    }

    /// The audit-log entry for this event; `id` and `at_ms` come from the caller (this crate
    /// has no clock or random source).
    pub fn to_domain_event(&self, id: EventId, at_ms: i64) -> pbx_domain::Event {
        pbx_domain::Event {
            id,
            at_ms,
            tenant_id: self.tenant_id(),
            kind: self.kind().to_owned(),
            payload: serde_json::to_value(self).unwrap_or(serde_json::Value::Null),
        }
    }
}
