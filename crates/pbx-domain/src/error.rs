//! Validation errors for domain values.

/// A value from a user, the API or the database did not satisfy the rules of its type.
///
/// Each variant names the type that rejected the input and, where useful, why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValidationError {
    /// The text is not a UUID of the named id type.
    #[error("invalid {kind}: not a UUID")]
    InvalidId {
        /// Which id type was being parsed.
        kind: &'static str,
    },
    /// A tenant slug broke one of the slug rules.
    #[error("invalid slug: {reason}")]
    InvalidSlug {
        /// The rule that was broken.
        reason: &'static str,
    },
    /// An extension number is not 2–8 digits or starts with 0.
    #[error("invalid extension: {reason}")]
    InvalidExtension {
        /// The rule that was broken.
        reason: &'static str,
    },
    /// A phone number is not in E.164 form (`+` and 2–15 digits, the first not 0).
    #[error("invalid E.164 number: {reason}")]
    InvalidE164 {
        /// The rule that was broken.
        reason: &'static str,
    },
    /// A MAC address is not 12 hex digits in one of the accepted notations.
    #[error("invalid MAC address")]
    InvalidMac,
    /// A SIP domain is not a valid DNS host name.
    #[error("invalid SIP domain: {reason}")]
    InvalidSipDomain {
        /// The rule that was broken.
        reason: &'static str,
    },
    /// A display name is empty, too long or contains control characters.
    #[error("invalid display name: {reason}")]
    InvalidDisplayName {
        /// The rule that was broken.
        reason: &'static str,
    },
    /// A digest realm is empty, too long or contains characters that cannot be quoted.
    #[error("invalid realm: {reason}")]
    InvalidRealm {
        /// The rule that was broken.
        reason: &'static str,
    },
    /// A generated secret (auth user name, HA1, token hash) has the wrong form.
    #[error("invalid {kind}")]
    InvalidSecretFormat {
        /// Which secret type was being parsed.
        kind: &'static str,
    },
    /// Text is not an IPv4 or IPv6 network in CIDR notation (or a bare address).
    #[error("invalid CIDR network")]
    InvalidCidr,
    /// Text does not name a variant of an enumeration (for example a stored status).
    #[error("unknown {kind} value {value:?}")]
    UnknownVariant {
        /// Which enumeration was being parsed.
        kind: &'static str,
        /// The text that matched no variant.
        value: String,
    },
    /// A combination of fields is inconsistent (for example a reseller token without a reseller).
    #[error("inconsistent {kind}: {reason}")]
    Inconsistent {
        /// Which value was being assembled.
        kind: &'static str,
        /// The rule that was broken.
        reason: &'static str,
    },
}
