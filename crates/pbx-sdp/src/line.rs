//! One SDP line: its type letter, its original bytes and a typed view of them.
//!
//! A parsed line keeps the exact bytes it came with, so printing an untouched description gives
//! back the input byte for byte. Lines built or edited through the API get canonical bytes
//! written from the typed value at construction; the two can never disagree because both are
//! private and set together.

use bytes::Bytes;

use crate::attribute::{Attribute, AttributeFault};
use crate::error::{EditError, SdpError};
use crate::fields::{Bandwidth, Connection, Timing};

/// The typed meaning of a line below the `v=`/`o=`/`s=` header and the `m=` line.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LineValue {
    /// `i=` session or media title (free text).
    Information,
    /// `u=` URI (free text).
    Uri,
    /// `e=` email address (free text).
    Email,
    /// `p=` phone number (free text).
    Phone,
    /// `c=` connection data.
    Connection(Connection),
    /// `b=` bandwidth.
    Bandwidth(Bandwidth),
    /// `t=` timing.
    Timing(Timing),
    /// `r=` repeat times (kept as text).
    Repeat,
    /// `z=` time zone adjustments (kept as text).
    TimeZone,
    /// `k=` encryption key (obsolete, kept as text).
    Key,
    /// `a=` attribute.
    Attribute(Attribute),
}

/// A line with its type letter, original bytes and typed value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    kind: u8,
    raw: Bytes,
    value: LineValue,
}

impl Line {
    /// The type letter (`a`, `c`, `b`, ...).
    pub fn kind(&self) -> char {
        char::from(self.kind)
    }

    pub(crate) fn kind_byte(&self) -> u8 {
        self.kind
    }

    /// The bytes after `x=`, exactly as they will be printed.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// The typed value.
    pub fn value(&self) -> &LineValue {
        &self.value
    }

    /// The attribute, for an `a=` line.
    pub fn attribute(&self) -> Option<&Attribute> {
        match &self.value {
            LineValue::Attribute(attribute) => Some(attribute),
            _ => None,
        }
    }

    /// The connection data, for a `c=` line.
    pub fn connection(&self) -> Option<&Connection> {
        match &self.value {
            LineValue::Connection(connection) => Some(connection),
            _ => None,
        }
    }

    /// The bandwidth, for a `b=` line.
    pub fn bandwidth(&self) -> Option<&Bandwidth> {
        match &self.value {
            LineValue::Bandwidth(bandwidth) => Some(bandwidth),
            _ => None,
        }
    }

    /// The timing, for a `t=` line.
    pub fn timing(&self) -> Option<&Timing> {
        match &self.value {
            LineValue::Timing(timing) => Some(timing),
            _ => None,
        }
    }

    /// An `a=` line.
    pub fn from_attribute(attribute: Attribute) -> Result<Line, EditError> {
        if !attribute.is_writable() {
            return Err(EditError::InvalidValue { what: "attribute" });
        }
        let mut raw = Vec::with_capacity(32);
        attribute.write(&mut raw);
        Ok(Line {
            kind: b'a',
            raw: Bytes::from(raw),
            value: LineValue::Attribute(attribute),
        })
    }

    /// A `c=` line.
    pub fn from_connection(connection: Connection) -> Result<Line, EditError> {
        if !connection.is_writable() {
            return Err(EditError::InvalidValue { what: "connection" });
        }
        let mut raw = String::with_capacity(24);
        connection.write(&mut raw);
        Ok(Line {
            kind: b'c',
            raw: Bytes::from(raw),
            value: LineValue::Connection(connection),
        })
    }

    /// A `b=` line.
    pub fn from_bandwidth(bandwidth: Bandwidth) -> Result<Line, EditError> {
        if crate::fields::token(bandwidth.bw_type.as_bytes()).is_none() {
            return Err(EditError::InvalidValue {
                what: "bandwidth type",
            });
        }
        let mut raw = String::with_capacity(12);
        bandwidth.write(&mut raw);
        Ok(Line {
            kind: b'b',
            raw: Bytes::from(raw),
            value: LineValue::Bandwidth(bandwidth),
        })
    }

    /// A `t=` line.
    pub fn from_timing(timing: Timing) -> Line {
        let mut raw = String::with_capacity(8);
        timing.write(&mut raw);
        Line {
            kind: b't',
            raw: Bytes::from(raw),
            value: LineValue::Timing(timing),
        }
    }

    /// Parses the value of a line whose type letter is already known to be allowed here.
    pub(crate) fn parse(kind: u8, raw: Bytes, line: usize) -> Result<Line, SdpError> {
        let value = match kind {
            b'i' => LineValue::Information,
            b'u' => LineValue::Uri,
            b'e' => LineValue::Email,
            b'p' => LineValue::Phone,
            b'r' => LineValue::Repeat,
            b'z' => LineValue::TimeZone,
            b'k' => LineValue::Key,
            b'c' => LineValue::Connection(
                Connection::parse(&raw).ok_or(SdpError::InvalidConnection { line })?,
            ),
            b'b' => LineValue::Bandwidth(
                Bandwidth::parse(&raw).ok_or(SdpError::InvalidBandwidth { line })?,
            ),
            b't' => LineValue::Timing(Timing::parse(&raw).ok_or(SdpError::InvalidTiming { line })?),
            b'a' => LineValue::Attribute(Attribute::parse(&raw).map_err(|fault| match fault {
                AttributeFault::Name => SdpError::InvalidAttribute { line },
                AttributeFault::Rtpmap => SdpError::InvalidRtpmap { line },
                AttributeFault::Fmtp => SdpError::InvalidFmtp { line },
                AttributeFault::Ptime => SdpError::InvalidPtime { line },
                AttributeFault::Rtcp => SdpError::InvalidRtcp { line },
                AttributeFault::FlagValue => SdpError::UnexpectedAttributeValue { line },
            })?),
            other => {
                return Err(SdpError::LineOutOfPlace {
                    line,
                    kind: char::from(other),
                });
            }
        };
        Ok(Line { kind, raw, value })
    }

    /// An `a=` line whose typed value did not parse, kept as an unknown attribute (byte-exact).
    pub(crate) fn demoted_attribute(raw: Bytes) -> Option<Line> {
        let colon = raw.iter().position(|b| *b == b':')?;
        let name = crate::fields::token(&raw[..colon])?.to_owned();
        let value = Some(raw.slice(colon + 1..));
        Some(Line {
            kind: b'a',
            raw,
            value: LineValue::Attribute(Attribute::Other { name, value }),
        })
    }

    /// Position in the RFC 8866 line order, used to insert new lines where they belong.
    pub(crate) fn rank(kind: u8) -> usize {
        b"iuepcbtrzka"
            .iter()
            .position(|k| *k == kind)
            .unwrap_or(usize::MAX)
    }
}

/// Inserts `line` after every line that the RFC 8866 order puts before it.
pub(crate) fn insert_ordered(lines: &mut Vec<Line>, line: Line) {
    let rank = Line::rank(line.kind);
    let at = lines
        .iter()
        .position(|l| Line::rank(l.kind) > rank)
        .unwrap_or(lines.len());
    lines.insert(at, line);
}

/// Byte ranges of the space-separated fields of a line value (runs of spaces or tabs separate
/// fields, as in [`crate::fields::fields`]).
pub(crate) fn field_ranges(raw: &[u8]) -> impl Iterator<Item = std::ops::Range<usize>> + '_ {
    let mut at = 0;
    std::iter::from_fn(move || {
        while raw.get(at).is_some_and(|b| matches!(b, b' ' | b'\t')) {
            at += 1;
        }
        let start = at;
        while raw.get(at).is_some_and(|b| !matches!(b, b' ' | b'\t')) {
            at += 1;
        }
        (at > start).then_some(start..at)
    })
}

/// Byte range of the `index`-th field (see [`field_ranges`]).
pub(crate) fn field_range(raw: &[u8], index: usize) -> Option<std::ops::Range<usize>> {
    field_ranges(raw).nth(index)
}

/// `raw` with `range` replaced by `with`; everything else (spacing included) kept.
pub(crate) fn splice(raw: &[u8], range: std::ops::Range<usize>, with: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(raw.len() + with.len());
    out.extend_from_slice(&raw[..range.start]);
    out.extend_from_slice(with);
    out.extend_from_slice(&raw[range.end..]);
    Bytes::from(out)
}

/// A typed header value (`o=`, `m=`) together with its original bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Raw<T> {
    pub(crate) value: T,
    pub(crate) raw: Bytes,
}
