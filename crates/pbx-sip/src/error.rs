//! Errors of parsing and validating SIP messages, each mapped to the status a UAS answers.

use bytes::Bytes;

use crate::header::HeaderName;
use crate::status::StatusCode;

/// Why a message (or one of its header fields) was rejected.
///
/// [`ParseError::status`] tells a UAS what to answer to a *request* that failed this way;
/// a response that fails to parse or validate is always dropped silently.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The input holds no message at all (empty, or only line ends).
    #[error("empty message")]
    Empty,
    /// The message is larger than the configured limit.
    #[error("message of {size} octets exceeds the limit of {limit}")]
    MessageTooLarge {
        /// Size seen (or announced by Content-Length).
        size: usize,
        /// The limit in force.
        limit: usize,
    },
    /// The message has more header fields than the configured limit.
    #[error("more than {limit} header fields")]
    TooManyHeaders {
        /// The limit in force.
        limit: usize,
    },
    /// One header field (with its folded continuation lines) is longer than the limit.
    #[error("header field longer than {limit} octets")]
    HeaderTooLong {
        /// The limit in force.
        limit: usize,
    },
    /// The header section is not closed by an empty line.
    #[error("header section not terminated by an empty line")]
    UnterminatedHeaders,
    /// The start line is neither a Request-Line nor a Status-Line.
    #[error("malformed start line")]
    InvalidStartLine,
    /// The method of the Request-Line is not a token.
    #[error("method is not a token")]
    InvalidMethod,
    /// The Request-URI is malformed (embedded LWS, `<>`, bad host or port, ...).
    #[error("malformed Request-URI")]
    InvalidRequestUri,
    /// The SIP version is well formed but not `SIP/2.0`.
    #[error("unsupported SIP version")]
    UnsupportedVersion,
    /// The status code of a Status-Line is not three digits in 100..=699.
    #[error("invalid status code")]
    InvalidStatusCode,
    /// A header line has no colon, or its name is not a token.
    #[error("malformed header line")]
    InvalidHeaderLine,
    /// Content-Length is not a number that fits 32 bits (negative, non-numeric, overlarge).
    #[error("invalid Content-Length")]
    InvalidContentLength,
    /// Several Content-Length header fields, or one with several values.
    #[error("conflicting Content-Length header fields")]
    ConflictingContentLength,
    /// A stream message (TCP/TLS) without Content-Length.
    #[error("Content-Length missing on a stream transport")]
    MissingContentLength,
    /// Content-Length announces more octets than the datagram or buffer holds.
    #[error("Content-Length {declared} larger than the {available} octets available")]
    BodyTruncated {
        /// Content-Length value.
        declared: usize,
        /// Octets after the header section.
        available: usize,
    },
    /// Octets after the body in a buffer that should hold exactly one message.
    #[error("{extra} octets after the message body")]
    TrailingOctets {
        /// Number of extra octets.
        extra: usize,
    },
    /// A mandatory header field is absent.
    #[error("missing mandatory header {0}")]
    MissingHeader(HeaderName),
    /// A header field that must appear once appears several times (or with several values).
    #[error("header {0} appears more than once")]
    DuplicateSingletonHeader(HeaderName),
    /// A header value does not follow its grammar.
    #[error("malformed {name} header: {kind}")]
    InvalidHeaderValue {
        /// The header field.
        name: HeaderName,
        /// What is wrong with it.
        kind: ValueError,
    },
    /// The CSeq method differs from the Request-Line method.
    #[error("CSeq method does not match the request method")]
    CSeqMethodMismatch,
    /// The Request-URI scheme is not one this element serves (RFC 3261 §8.2.2.1).
    #[error("unsupported Request-URI scheme")]
    UnsupportedUriScheme,
    /// Require (or Proxy-Require) lists extensions this element does not support.
    #[error("unsupported extensions required")]
    BadExtension {
        /// The option tags to put in Unsupported.
        unsupported: Vec<Bytes>,
    },
    /// The body has a Content-Type this element does not accept.
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// Max-Forwards reached zero at a proxy.
    #[error("Max-Forwards exhausted")]
    TooManyHops,
}

impl ParseError {
    /// The status a UAS (or proxy) answers to a request that failed this way, or `None` when
    /// the input must be dropped without an answer.
    ///
    /// Errors from a *response* are never answered: drop the response whatever this says.
    pub fn status(&self) -> Option<StatusCode> {
        Some(match self {
            Self::Empty => return None,
            Self::MessageTooLarge { .. } => StatusCode::REQUEST_ENTITY_TOO_LARGE,
            Self::UnsupportedVersion => StatusCode::VERSION_NOT_SUPPORTED,
            Self::UnsupportedUriScheme => StatusCode::UNSUPPORTED_URI_SCHEME,
            Self::BadExtension { .. } => StatusCode::BAD_EXTENSION,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::TooManyHops => StatusCode::TOO_MANY_HOPS,
            _ => StatusCode::BAD_REQUEST,
        })
    }

    /// Whether a stream connection must be closed after this error (framing is lost).
    pub fn closes_stream(&self) -> bool {
        matches!(
            self,
            Self::MessageTooLarge { .. }
                | Self::TooManyHeaders { .. }
                | Self::HeaderTooLong { .. }
                | Self::InvalidContentLength
                | Self::ConflictingContentLength
                | Self::MissingContentLength
                | Self::UnterminatedHeaders
        )
    }

    pub(crate) fn value(name: HeaderName, kind: ValueError) -> Self {
        Self::InvalidHeaderValue { name, kind }
    }
}

/// What is wrong inside a header value (or URI).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValueError {
    /// The value is empty where something is required.
    #[error("empty value")]
    Empty,
    /// An empty element in a comma-separated list or an empty parameter (`;;`, `,,`).
    #[error("empty list element or parameter")]
    EmptyElement,
    /// A quoted string has no closing quote.
    #[error("unterminated quoted string")]
    UnterminatedQuote,
    /// `<` without a matching `>`.
    #[error("unterminated angle bracket")]
    UnterminatedAngle,
    /// A display name that is neither a quoted string nor tokens.
    #[error("invalid display name")]
    InvalidDisplayName,
    /// A URI that does not follow its grammar.
    #[error("invalid URI")]
    InvalidUri,
    /// An invalid host (domain, IPv4 or bracketed IPv6).
    #[error("invalid host")]
    InvalidHost,
    /// A port that is not a number in 0..=65535.
    #[error("invalid port")]
    InvalidPort,
    /// A character not allowed where it appears.
    #[error("unexpected character")]
    UnexpectedChar,
    /// A number that is not decimal digits.
    #[error("invalid number")]
    InvalidNumber,
    /// A number larger than its field allows (CSeq > 2^32-1, Max-Forwards > 255, ...).
    #[error("number out of range")]
    OutOfRange,
    /// A token was expected.
    #[error("token expected")]
    InvalidToken,
    /// Via sent-protocol other than `SIP/2.0/<transport>`.
    #[error("invalid sent-protocol")]
    InvalidProtocol,
    /// An invalid q-value (not 0..=1 with at most three decimals).
    #[error("invalid q-value")]
    InvalidQValue,
    /// A required parameter is missing.
    #[error("missing parameter")]
    MissingParam,
    /// More comma-separated values than [`crate::MAX_LIST_VALUES`].
    #[error("too many list values")]
    TooManyValues,
}
