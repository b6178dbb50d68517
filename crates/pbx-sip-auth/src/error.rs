//! What went wrong on the server side, and what to answer.

use crate::syntax::ParseError;

/// Which pair of headers an exchange uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthRole {
    /// A registrar or user agent: `401`, `WWW-Authenticate`, `Authorization`.
    Www,
    /// A proxy: `407`, `Proxy-Authenticate`, `Proxy-Authorization`.
    Proxy,
}

impl AuthRole {
    /// The status code of a challenge.
    pub const fn status(self) -> u16 {
        match self {
            AuthRole::Www => 401,
            AuthRole::Proxy => 407,
        }
    }

    /// The header that carries the challenge.
    pub const fn challenge_header(self) -> &'static str {
        match self {
            AuthRole::Www => "WWW-Authenticate",
            AuthRole::Proxy => "Proxy-Authenticate",
        }
    }

    /// The header that carries the credentials.
    pub const fn credentials_header(self) -> &'static str {
        match self {
            AuthRole::Www => "Authorization",
            AuthRole::Proxy => "Proxy-Authorization",
        }
    }
}

/// What to answer a request whose credentials were refused. The caller builds the headers
/// (with [`crate::Verifier::challenges`] for a challenge).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Send `status` (401/407) with fresh challenges; `stale` says whether to mark them
    /// `stale=true`.
    Challenge {
        /// 401 or 407.
        status: u16,
        /// Mark the challenges `stale=true`.
        stale: bool,
    },
    /// Send `400 Bad Request`: the credentials are malformed.
    BadRequest,
}

/// Why credentials were refused.
///
/// A wrong password and an unknown user give the same variant ([`AuthError::InvalidResponse`])
/// after the same work, so the answer never tells whether a user exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The header value does not parse.
    #[error("malformed credentials: {0}")]
    Malformed(ParseError),
    /// The credentials are in a scheme other than Digest (RFC 4475 §3.3.7).
    #[error("unsupported authentication scheme")]
    UnsupportedScheme,
    /// `realm` is not this server's realm.
    #[error("realm does not match")]
    RealmMismatch,
    /// The algorithm is unknown or not enabled here.
    #[error("unsupported or disabled digest algorithm")]
    UnsupportedAlgorithm,
    /// `qop` is something other than `auth` (`auth-int` is not supported).
    #[error("unsupported qop")]
    UnsupportedQop,
    /// No `qop`, and RFC 2069 compatibility is disabled.
    #[error("qop is required")]
    QopRequired,
    /// `qop=auth` (or a `-sess` algorithm) without `nc` (SIPVicious svcrack sends this).
    #[error("qop=auth without nc")]
    MissingNonceCount,
    /// `qop=auth` (or a `-sess` algorithm) without `cnonce`.
    #[error("qop=auth without cnonce")]
    MissingCnonce,
    /// `response` is not hex digits of the algorithm's length.
    #[error("response is not a hex digest of the right length")]
    MalformedResponse,
    /// The nonce was not issued by this server for this realm (and client).
    #[error("nonce was not issued by this server")]
    InvalidNonce,
    /// `opaque` does not echo the challenge's.
    #[error("opaque does not match")]
    OpaqueMismatch,
    /// Wrong password, or unknown user.
    #[error("response does not match")]
    InvalidResponse,
    /// The credentials were right but the nonce has expired: challenge with `stale=true`.
    #[error("nonce is stale")]
    StaleNonce,
    /// The nonce count was not greater than one already accepted: a replayed request.
    #[error("nonce count replayed")]
    Replay,
}

impl AuthError {
    /// What to answer. Malformed credentials get `400`; everything else a fresh challenge,
    /// marked stale when the client proved it knows the password but the nonce can no
    /// longer be used (expired, or its count already used).
    pub fn answer(&self, role: AuthRole) -> Answer {
        let status = role.status();
        match self {
            AuthError::Malformed(_)
            | AuthError::MissingNonceCount
            | AuthError::MissingCnonce
            | AuthError::MalformedResponse => Answer::BadRequest,
            AuthError::StaleNonce | AuthError::Replay => Answer::Challenge {
                status,
                stale: true,
            },
            AuthError::UnsupportedScheme
            | AuthError::RealmMismatch
            | AuthError::UnsupportedAlgorithm
            | AuthError::UnsupportedQop
            | AuthError::QopRequired
            | AuthError::InvalidNonce
            | AuthError::OpaqueMismatch
            | AuthError::InvalidResponse => Answer::Challenge {
                status,
                stale: false,
            },
        }
    }
}

impl From<ParseError> for AuthError {
    fn from(error: ParseError) -> AuthError {
        match error {
            ParseError::UnsupportedScheme => AuthError::UnsupportedScheme,
            other => AuthError::Malformed(other),
        }
    }
}
