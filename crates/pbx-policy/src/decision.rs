//! Outcomes: the [`Decision`] the SIP layer acts on, and the policy [`Verdict`].

use serde::{Deserialize, Serialize};

use crate::event::LimitKind;

/// What the SIP layer does with a request, decided before any transaction exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    /// Go on.
    Allow,
    /// Ask for credentials (401/407).
    Challenge,
    /// Answer with this status and a `Reason` header value.
    Reject {
        /// SIP status code.
        status: u16,
        /// Value for the `Reason` header, e.g. `Q.850;cause=21;text="Premium rate"`.
        reason: String,
    },
    /// Drop silently (UDP) or close the connection (TCP/TLS).
    Drop,
}

impl Decision {
    /// The SIP status for a rejection.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Reject { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Why an outbound call is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum BlockReason {
    /// The number is not a valid number.
    InvalidNumber,
    /// The account's class of service does not reach this destination class.
    ClassOfService,
    /// Premium rate (national or international) is blocked by default.
    PremiumRate,
    /// Satellite and international network numbers are blocked by default.
    Satellite,
    /// The destination is on the platform's high-fraud list.
    HighFraud {
        /// The list entry (prefix and label).
        range: String,
    },
    /// The tenant blocks this prefix explicitly.
    TenantBlocked {
        /// The tenant's prefix.
        prefix: String,
    },
    /// A usage limit is reached.
    Limit {
        /// Which one.
        limit: LimitKind,
    },
    /// The account is blocked for outbound calls until an admin lifts the block.
    AccountBlocked,
}

impl BlockReason {
    /// The Q.850 cause and text for the `Reason` header.
    pub fn q850(&self) -> (u16, &'static str) {
        match self {
            Self::InvalidNumber => (28, "Invalid number format"),
            Self::ClassOfService => (57, "Destination not allowed by class of service"),
            Self::PremiumRate => (21, "Premium-rate destination blocked"),
            Self::Satellite => (21, "Satellite destination blocked"),
            Self::HighFraud { .. } => (21, "High-fraud destination blocked"),
            Self::TenantBlocked { .. } => (21, "Destination blocked by tenant policy"),
            Self::Limit { .. } => (21, "Usage limit reached"),
            Self::AccountBlocked => (21, "Outbound calls blocked for this account"),
        }
    }

    /// The `Reason` header value: `Q.850;cause=N;text="..."`.
    pub fn reason_header(&self) -> String {
        let (cause, text) = self.q850();
        format!("Q.850;cause={cause};text=\"{text}\"")
    }
}

/// A policy verdict on an outbound call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// The call may go on.
    Allow,
    /// The call is refused.
    Block {
        /// Why.
        reason: BlockReason,
    },
}

impl Verdict {
    /// Whether the call may go on.
    pub fn is_allowed(&self) -> bool {
        matches!(self, Self::Allow)
    }

    /// The SIP answer: `Allow`, or 403 with a Q.850 `Reason`.
    pub fn decision(&self) -> Decision {
        match self {
            Self::Allow => Decision::Allow,
            Self::Block { reason } => Decision::Reject {
                status: 403,
                reason: reason.reason_header(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_is_403_with_q850_reason() {
        let v = Verdict::Block {
            reason: BlockReason::PremiumRate,
        };
        assert_eq!(
            v.decision(),
            Decision::Reject {
                status: 403,
                reason: "Q.850;cause=21;text=\"Premium-rate destination blocked\"".into()
            }
        );
        assert_eq!(Verdict::Allow.decision(), Decision::Allow);
    }
}
