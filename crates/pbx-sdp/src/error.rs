//! Error types: one enum per operation (parse, edit, negotiation).
//!
//! Every parse error carries the 1-based line number of the offending line so a 400/488 reason
//! or a log line can point at it.

use thiserror::Error;

/// Why a session description could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SdpError {
    /// The body is empty (or only blank lines).
    #[error("empty session description")]
    Empty,
    /// The body is larger than [`crate::MAX_SDP_LEN`].
    #[error("session description of {len} bytes exceeds the limit of {limit}")]
    TooLarge {
        /// Length of the input.
        len: usize,
        /// The limit in force.
        limit: usize,
    },
    /// A line is not of the form `<lowercase letter>=<value>`.
    #[error("line {line}: not of the form <type>=<value>")]
    MalformedLine {
        /// 1-based line number.
        line: usize,
    },
    /// A line contains a NUL or a bare CR.
    #[error("line {line}: forbidden control character")]
    InvalidCharacter {
        /// 1-based line number.
        line: usize,
    },
    /// The first line is not a `v=` line.
    #[error("line 1: the first line must be v=")]
    MissingVersion,
    /// The `v=` line holds something other than `0`.
    #[error("line {line}: unsupported protocol version (only v=0)")]
    UnsupportedVersion {
        /// 1-based line number.
        line: usize,
    },
    /// The second line is not an `o=` line.
    #[error("line {line}: expected o= after v=")]
    MissingOrigin {
        /// 1-based line number where o= was expected.
        line: usize,
    },
    /// The `o=` line does not have six valid fields.
    #[error("line {line}: malformed o= line")]
    InvalidOrigin {
        /// 1-based line number.
        line: usize,
    },
    /// The third line is not an `s=` line.
    #[error("line {line}: expected s= after o=")]
    MissingSessionName {
        /// 1-based line number where s= was expected.
        line: usize,
    },
    /// No `t=` line appears before the first `m=` line (or at all).
    #[error("no t= line in the session section")]
    MissingTiming,
    /// A `t=` line does not hold two decimal times.
    #[error("line {line}: malformed t= line")]
    InvalidTiming {
        /// 1-based line number.
        line: usize,
    },
    /// A `c=` line is malformed or names an unsupported network or address type.
    #[error("line {line}: malformed or unsupported c= line")]
    InvalidConnection {
        /// 1-based line number.
        line: usize,
    },
    /// A media section with a non-zero port has no connection data, and neither has the session.
    #[error("line {line}: media section has no c= line and the session has none")]
    MissingConnection {
        /// 1-based line number of the `m=` line.
        line: usize,
    },
    /// A `b=` line is not `<bwtype>:<bandwidth>`.
    #[error("line {line}: malformed b= line")]
    InvalidBandwidth {
        /// 1-based line number.
        line: usize,
    },
    /// An `m=` line does not match `<media> <port>[/<n>] <proto> <fmt> ...`.
    #[error("line {line}: malformed m= line")]
    InvalidMediaLine {
        /// 1-based line number.
        line: usize,
    },
    /// An `m=` line has a port (or port count) that is not a 16-bit number.
    #[error("line {line}: invalid port in m= line")]
    InvalidPort {
        /// 1-based line number.
        line: usize,
    },
    /// An `m=` line has no format.
    #[error("line {line}: m= line lists no format")]
    MissingFormats {
        /// 1-based line number.
        line: usize,
    },
    /// An RTP payload type is not a number from 0 to 127.
    #[error("line {line}: invalid RTP payload type")]
    InvalidPayloadType {
        /// 1-based line number.
        line: usize,
    },
    /// An `a=` line has no valid attribute name.
    #[error("line {line}: malformed a= line")]
    InvalidAttribute {
        /// 1-based line number.
        line: usize,
    },
    /// An `a=rtpmap` value is not `<pt> <encoding>/<clock>[/<channels>]`.
    #[error("line {line}: malformed a=rtpmap")]
    InvalidRtpmap {
        /// 1-based line number.
        line: usize,
    },
    /// An `a=fmtp` value is not `<format> <parameters>`.
    #[error("line {line}: malformed a=fmtp")]
    InvalidFmtp {
        /// 1-based line number.
        line: usize,
    },
    /// An `a=ptime` or `a=maxptime` value is not a number of milliseconds.
    #[error("line {line}: malformed a=ptime or a=maxptime")]
    InvalidPtime {
        /// 1-based line number.
        line: usize,
    },
    /// An `a=rtcp` value is not `<port> [IN IP4|IP6 <address>]` (RFC 3605).
    #[error("line {line}: malformed a=rtcp")]
    InvalidRtcp {
        /// 1-based line number.
        line: usize,
    },
    /// A flag attribute (`sendrecv`, `rtcp-mux`, ...) carries a value.
    #[error("line {line}: flag attribute with a value")]
    UnexpectedAttributeValue {
        /// 1-based line number.
        line: usize,
    },
    /// A line type letter that SDP does not define (RFC 8866 §5: reject).
    #[error("line {line}: unknown line type '{kind}'")]
    UnknownLineType {
        /// 1-based line number.
        line: usize,
        /// The type letter.
        kind: char,
    },
    /// A known line type where the grammar does not allow it (e.g. `t=` in a media section).
    #[error("line {line}: '{kind}=' line not allowed here")]
    LineOutOfPlace {
        /// 1-based line number.
        line: usize,
        /// The type letter.
        kind: char,
    },
    /// A line that may appear once per section appears again (e.g. a second session `c=`).
    #[error("line {line}: duplicate '{kind}=' line")]
    DuplicateLine {
        /// 1-based line number.
        line: usize,
        /// The type letter.
        kind: char,
    },
    /// A blank line in the middle of the description.
    #[error("line {line}: blank line inside the description")]
    BlankLine {
        /// 1-based line number.
        line: usize,
    },
    /// A structured field holds a byte that its grammar does not allow.
    #[error("line {line}: invalid token")]
    InvalidToken {
        /// 1-based line number.
        line: usize,
    },
}

/// Why an edit of a parsed description was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum EditError {
    /// The media index is past the last `m=` section.
    #[error("no media section at index {index} (there are {count})")]
    NoSuchMedia {
        /// The index asked for.
        index: usize,
        /// How many media sections there are.
        count: usize,
    },
    /// The value cannot be represented in SDP (e.g. an attribute name with a space).
    #[error("value cannot be written as SDP: {what}")]
    InvalidValue {
        /// Which value was refused.
        what: &'static str,
    },
}

/// Why an offer could not be answered (or a description restricted).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum NegotiationError {
    /// No media stream shares a codec with what we support.
    #[error("no common codec")]
    NoCommonCodec,
    /// The offer has no media stream of a type we accept (e.g. only video).
    #[error("no acceptable media stream in the offer")]
    NoAcceptableMedia,
    /// The caller gave fewer local ports than there are streams to accept.
    #[error("no local port given for media stream {index}")]
    MissingLocalPort {
        /// Index of the media section that lacked a port.
        index: usize,
    },
    /// A local value in the answer options cannot be written as SDP (e.g. a bad origin).
    #[error("local answer options cannot be written as SDP")]
    InvalidLocalValue,
}

impl NegotiationError {
    /// The SIP status code to answer the INVITE (or re-INVITE) with.
    ///
    /// Codec and media mismatches are `488 Not Acceptable Here` (RFC 3261 §13.3.1.1,
    /// RFC 3264 §6); a missing local port is our own fault: `500 Server Internal Error`.
    pub fn sip_status(&self) -> u16 {
        match self {
            NegotiationError::NoCommonCodec | NegotiationError::NoAcceptableMedia => 488,
            NegotiationError::MissingLocalPort { .. } | NegotiationError::InvalidLocalValue => 500,
        }
    }
}
