//! Audit/event log entries.

use serde::{Deserialize, Serialize};

use crate::ids::{EventId, TenantId};

/// One entry of the audit/event log: configuration changes, security events, registrations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Id (UUID v7: sorts by time).
    pub id: EventId,
    /// When it happened (Unix ms).
    pub at_ms: i64,
    /// The tenant concerned; `None` for platform-wide events.
    pub tenant_id: Option<TenantId>,
    /// Dotted kind, for example `user.created` or `security.ip_blocked`.
    pub kind: String,
    /// Details.
    pub payload: serde_json::Value,
}
