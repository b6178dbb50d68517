//! Request methods (case-sensitive tokens, RFC 3261 §7.1).

use std::fmt;

use bytes::Bytes;

use crate::scan::is_token;

/// A request method. Matching is case-sensitive: `invite` is an extension method.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    /// INVITE (RFC 3261).
    Invite,
    /// ACK (RFC 3261).
    Ack,
    /// BYE (RFC 3261).
    Bye,
    /// CANCEL (RFC 3261).
    Cancel,
    /// OPTIONS (RFC 3261).
    Options,
    /// REGISTER (RFC 3261).
    Register,
    /// PRACK (RFC 3262).
    Prack,
    /// UPDATE (RFC 3311).
    Update,
    /// INFO (RFC 6086).
    Info,
    /// SUBSCRIBE (RFC 6665).
    Subscribe,
    /// NOTIFY (RFC 6665).
    Notify,
    /// REFER (RFC 3515).
    Refer,
    /// MESSAGE (RFC 3428).
    Message,
    /// PUBLISH (RFC 3903).
    Publish,
    /// Any other token, kept as received.
    Extension(Bytes),
}

impl Method {
    /// Classifies a method token. Returns `None` when `raw` is not a non-empty token.
    pub fn from_token(raw: &[u8]) -> Option<Method> {
        if raw.is_empty() || !raw.iter().all(|&b| is_token(b)) {
            return None;
        }
        Some(Self::known(raw).unwrap_or_else(|| Method::Extension(Bytes::copy_from_slice(raw))))
    }

    /// Like [`Method::from_token`], slicing an extension from `owner` without copying.
    #[inline]
    pub(crate) fn from_token_in(owner: &Bytes, raw: &[u8]) -> Option<Method> {
        if raw.is_empty() || !raw.iter().all(|&b| is_token(b)) {
            return None;
        }
        Some(
            Self::known(raw)
                .unwrap_or_else(|| Method::Extension(crate::scan::slice_of(owner, raw))),
        )
    }

    #[inline]
    fn known(raw: &[u8]) -> Option<Method> {
        Some(match raw {
            b"INVITE" => Method::Invite,
            b"ACK" => Method::Ack,
            b"BYE" => Method::Bye,
            b"CANCEL" => Method::Cancel,
            b"OPTIONS" => Method::Options,
            b"REGISTER" => Method::Register,
            b"PRACK" => Method::Prack,
            b"UPDATE" => Method::Update,
            b"INFO" => Method::Info,
            b"SUBSCRIBE" => Method::Subscribe,
            b"NOTIFY" => Method::Notify,
            b"REFER" => Method::Refer,
            b"MESSAGE" => Method::Message,
            b"PUBLISH" => Method::Publish,
            _ => return None,
        })
    }

    /// The method as it appears on the wire.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Method::Invite => b"INVITE",
            Method::Ack => b"ACK",
            Method::Bye => b"BYE",
            Method::Cancel => b"CANCEL",
            Method::Options => b"OPTIONS",
            Method::Register => b"REGISTER",
            Method::Prack => b"PRACK",
            Method::Update => b"UPDATE",
            Method::Info => b"INFO",
            Method::Subscribe => b"SUBSCRIBE",
            Method::Notify => b"NOTIFY",
            Method::Refer => b"REFER",
            Method::Message => b"MESSAGE",
            Method::Publish => b"PUBLISH",
            Method::Extension(raw) => raw,
        }
    }

    /// Whether this is an extension (unknown) method.
    pub fn is_extension(&self) -> bool {
        matches!(self, Method::Extension(_))
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(self.as_bytes()))
    }
}

impl std::str::FromStr for Method {
    type Err = crate::ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Method::from_token(s.as_bytes()).ok_or_else(|| crate::ParseError::InvalidMethod)
    }
}
