//! `a=` lines: the attributes a B2BUA reads typed, and everything else kept as it came.

use std::fmt::Write as _;

use bytes::Bytes;

use crate::fields::{Connection, fields, number, token};

/// Media direction (RFC 3264 §5.1, RFC 8866 §6.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Direction {
    /// `a=sendrecv`, the default when no direction attribute is present.
    #[default]
    SendRecv,
    /// `a=sendonly`.
    SendOnly,
    /// `a=recvonly`.
    RecvOnly,
    /// `a=inactive`.
    Inactive,
}

impl Direction {
    /// The direction from whether the endpoint sends and whether it receives.
    pub fn from_flags(sends: bool, receives: bool) -> Self {
        match (sends, receives) {
            (true, true) => Direction::SendRecv,
            (true, false) => Direction::SendOnly,
            (false, true) => Direction::RecvOnly,
            (false, false) => Direction::Inactive,
        }
    }

    /// Whether the endpoint that wrote this direction sends media.
    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// Whether the endpoint that wrote this direction receives media.
    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }

    /// The same stream seen from the other end: `sendonly` ⇄ `recvonly`.
    pub fn reversed(self) -> Self {
        Direction::from_flags(self.receives(), self.sends())
    }

    /// Both constraints at once: sends only if both send, receives only if both receive.
    pub fn intersect(self, other: Direction) -> Self {
        Direction::from_flags(
            self.sends() && other.sends(),
            self.receives() && other.receives(),
        )
    }

    /// The attribute name.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        [
            Direction::SendRecv,
            Direction::SendOnly,
            Direction::RecvOnly,
            Direction::Inactive,
        ]
        .into_iter()
        .find(|d| d.as_str().eq_ignore_ascii_case(name))
    }
}

/// `a=rtpmap:<payload type> <encoding>/<clock rate>[/<channels>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rtpmap {
    /// RTP payload type, 0–127.
    pub payload_type: u8,
    /// Encoding name as written (`PCMU`, `opus`, `telephone-event`, ...).
    pub encoding: String,
    /// RTP clock rate in Hz.
    pub clock_rate: u32,
    /// Channel count for audio (absent means 1).
    pub channels: Option<u16>,
}

impl Rtpmap {
    fn parse(value: &[u8]) -> Option<Self> {
        let mut parts = fields(value);
        let payload_type: u8 = number(parts.next()?)?;
        let mut encoding = parts.next()?.split(|b| *b == b'/');
        if parts.next().is_some() || payload_type > 127 {
            return None;
        }
        let name = token(encoding.next()?)?;
        let clock_rate = number(encoding.next()?)?;
        let channels = match encoding.next() {
            None => None,
            Some(channels) => Some(number(channels)?),
        };
        encoding.next().is_none().then(|| Rtpmap {
            payload_type,
            encoding: name.to_owned(),
            clock_rate,
            channels,
        })
    }

    fn write(&self, out: &mut String) {
        let _ = write!(
            out,
            "{} {}/{}",
            self.payload_type, self.encoding, self.clock_rate
        );
        if let Some(channels) = self.channels {
            let _ = write!(out, "/{channels}");
        }
    }
}

/// `a=fmtp:<format> <format specific parameters>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fmtp {
    /// The format (payload type number for RTP).
    pub format: String,
    /// The parameters as written, e.g. `0-16` or `minptime=10;useinbandfec=1`.
    pub params: String,
}

impl Fmtp {
    /// The `name=value` pairs of a `;`-separated parameter list (a bare item has an empty value).
    pub fn parameters(&self) -> impl Iterator<Item = (&str, &str)> {
        self.params
            .split(';')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((name, value)) => (name.trim(), value.trim()),
                None => (p, ""),
            })
    }

    fn parse(value: &[u8]) -> Option<Self> {
        let space = value.iter().position(|b| *b == b' ' || *b == b'\t');
        let (format, params) = match space {
            Some(at) => (&value[..at], value[at + 1..].trim_ascii()),
            None => (value, &b""[..]),
        };
        Some(Fmtp {
            format: token(format)?.to_owned(),
            params: std::str::from_utf8(params).ok()?.to_owned(),
        })
    }
}

/// `a=rtcp:<port> [IN IP4|IP6 <address>]` (RFC 3605).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rtcp {
    /// The RTCP port.
    pub port: u16,
    /// The RTCP address when it differs from the media connection address.
    pub connection: Option<Connection>,
}

impl Rtcp {
    fn parse(value: &[u8]) -> Option<Self> {
        let mut parts = fields(value);
        let port = number(parts.next()?)?;
        let mut rest = parts.peekable();
        let connection = match rest.peek() {
            None => None,
            Some(_) => Some(Connection::parse_fields(rest)?),
        };
        Some(Rtcp { port, connection })
    }

    fn write(&self, out: &mut String) {
        let _ = write!(out, "{}", self.port);
        if let Some(connection) = &self.connection {
            out.push(' ');
            connection.write(out);
        }
    }
}

/// One `a=` line.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Attribute {
    /// `a=rtpmap`.
    Rtpmap(Rtpmap),
    /// `a=fmtp`.
    Fmtp(Fmtp),
    /// `a=ptime` in milliseconds.
    Ptime(u32),
    /// `a=maxptime` in milliseconds.
    MaxPtime(u32),
    /// `a=sendrecv`, `a=sendonly`, `a=recvonly` or `a=inactive`.
    Direction(Direction),
    /// `a=rtcp` (RFC 3605).
    Rtcp(Rtcp),
    /// `a=rtcp-mux` (RFC 5761).
    RtcpMux,
    /// Any other attribute (`crypto`, `T38FaxVersion`, `candidate`, vendor ones), kept as is.
    Other {
        /// The attribute name.
        name: String,
        /// The value after `:`, as raw bytes (may be any text).
        value: Option<Bytes>,
    },
}

/// Why an attribute value was refused; the parser turns it into an [`crate::SdpError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AttributeFault {
    Name,
    Rtpmap,
    Fmtp,
    Ptime,
    Rtcp,
    FlagValue,
}

impl Attribute {
    /// The attribute name as it is written after `a=`.
    pub fn name(&self) -> &str {
        match self {
            Attribute::Rtpmap(_) => "rtpmap",
            Attribute::Fmtp(_) => "fmtp",
            Attribute::Ptime(_) => "ptime",
            Attribute::MaxPtime(_) => "maxptime",
            Attribute::Direction(direction) => direction.as_str(),
            Attribute::Rtcp(_) => "rtcp",
            Attribute::RtcpMux => "rtcp-mux",
            Attribute::Other { name, .. } => name,
        }
    }

    /// An unknown attribute from its name and optional value.
    pub fn other(name: &str, value: Option<&str>) -> Self {
        Attribute::Other {
            name: name.to_owned(),
            value: value.map(|v| Bytes::copy_from_slice(v.as_bytes())),
        }
    }

    /// Parses the value of an `a=` line; `raw` is the whole value (shared, not copied).
    pub(crate) fn parse(raw: &Bytes) -> Result<Self, AttributeFault> {
        let (name_bytes, value) = match raw.iter().position(|b| *b == b':') {
            Some(colon) => (&raw[..colon], Some(raw.slice(colon + 1..))),
            None => (&raw[..], None),
        };
        let name = token(name_bytes).ok_or(AttributeFault::Name)?;
        let flag = |attribute: Attribute| match value {
            None => Ok(attribute),
            Some(_) => Err(AttributeFault::FlagValue),
        };
        if let Some(direction) = Direction::from_name(name) {
            return flag(Attribute::Direction(direction));
        }
        // The typed names are at most 8 bytes: lower-case them on the stack, no allocation.
        let mut buffer = [0u8; 8];
        let lower: &[u8] = match buffer.get_mut(..name.len()) {
            Some(slot) => {
                slot.copy_from_slice(name.as_bytes());
                slot.make_ascii_lowercase();
                slot
            }
            None => b"",
        };
        let value_bytes = value.as_deref();
        match lower {
            b"rtcp-mux" => flag(Attribute::RtcpMux),
            b"rtpmap" => value_bytes
                .and_then(Rtpmap::parse)
                .map(Attribute::Rtpmap)
                .ok_or(AttributeFault::Rtpmap),
            b"fmtp" => value_bytes
                .and_then(Fmtp::parse)
                .map(Attribute::Fmtp)
                .ok_or(AttributeFault::Fmtp),
            b"ptime" => value_bytes
                .and_then(|v| number(v.trim_ascii()))
                .map(Attribute::Ptime)
                .ok_or(AttributeFault::Ptime),
            b"maxptime" => value_bytes
                .and_then(|v| number(v.trim_ascii()))
                .map(Attribute::MaxPtime)
                .ok_or(AttributeFault::Ptime),
            b"rtcp" => value_bytes
                .and_then(Rtcp::parse)
                .map(Attribute::Rtcp)
                .ok_or(AttributeFault::Rtcp),
            _ => Ok(Attribute::Other {
                name: name.to_owned(),
                value,
            }),
        }
    }

    /// Whether the attribute can be written as one valid SDP line.
    pub(crate) fn is_writable(&self) -> bool {
        let clean = |s: &[u8]| !s.iter().any(|b| matches!(b, b'\r' | b'\n' | 0));
        match self {
            Attribute::Rtpmap(rtpmap) => {
                rtpmap.payload_type <= 127 && token(rtpmap.encoding.as_bytes()).is_some()
            }
            Attribute::Fmtp(fmtp) => {
                token(fmtp.format.as_bytes()).is_some() && clean(fmtp.params.as_bytes())
            }
            Attribute::Rtcp(rtcp) => rtcp.connection.as_ref().is_none_or(Connection::is_writable),
            Attribute::Other { name, value } => {
                token(name.as_bytes()).is_some() && value.as_deref().is_none_or(clean)
            }
            Attribute::Ptime(_)
            | Attribute::MaxPtime(_)
            | Attribute::Direction(_)
            | Attribute::RtcpMux => true,
        }
    }

    /// Writes the value of the `a=` line (without `a=`).
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        let mut text = String::new();
        text.push_str(self.name());
        match self {
            Attribute::Rtpmap(rtpmap) => {
                text.push(':');
                rtpmap.write(&mut text);
            }
            Attribute::Fmtp(fmtp) => {
                let _ = write!(text, ":{} {}", fmtp.format, fmtp.params);
            }
            Attribute::Ptime(ms) | Attribute::MaxPtime(ms) => {
                let _ = write!(text, ":{ms}");
            }
            Attribute::Rtcp(rtcp) => {
                text.push(':');
                rtcp.write(&mut text);
            }
            Attribute::Direction(_) | Attribute::RtcpMux => {}
            Attribute::Other { value, .. } => {
                out.extend_from_slice(text.as_bytes());
                if let Some(value) = value {
                    out.push(b':');
                    out.extend_from_slice(value);
                }
                return;
            }
        }
        out.extend_from_slice(text.as_bytes());
    }
}
