//! Typed views of the structured SDP lines: `o=`, `c=`, `b=`, `t=` and `m=`.
//!
//! Each type parses from the value bytes of its line (what follows `x=`) and writes its
//! canonical form. Parsing is strict about content (tokens, numbers, addresses) and tolerant of
//! extra spaces between fields; the parsed line keeps its original bytes, so the tolerance never
//! shows in a round trip.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// RFC 8866 `token-char`.
pub(crate) fn is_token_char(byte: u8) -> bool {
    matches!(byte, 0x21 | 0x23..=0x27 | 0x2A..=0x2B | 0x2D..=0x2E | 0x30..=0x39 | 0x41..=0x5A | 0x5E..=0x7E)
}

/// A non-empty RFC 8866 token, as text.
pub(crate) fn token(bytes: &[u8]) -> Option<&str> {
    if bytes.is_empty() || !bytes.iter().all(|b| is_token_char(*b)) {
        return None;
    }
    std::str::from_utf8(bytes).ok()
}

/// Printable non-space ASCII (`non-ws-string` restricted to ASCII), as text.
pub(crate) fn visible(bytes: &[u8]) -> Option<&str> {
    if bytes.is_empty() || !bytes.iter().all(|b| (0x21..=0x7E).contains(b)) {
        return None;
    }
    std::str::from_utf8(bytes).ok()
}

/// Space-separated fields of a line value; runs of spaces or tabs count as one separator.
pub(crate) fn fields(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|b| *b == b' ' || *b == b'\t')
        .filter(|f| !f.is_empty())
}

/// A decimal number with only digits (no sign, no spaces) that fits `T`.
pub(crate) fn number<T: TryFrom<u64>>(bytes: &[u8]) -> Option<T> {
    if bytes.is_empty() {
        return None;
    }
    let mut value: u64 = 0;
    for byte in bytes {
        let digit = byte.checked_sub(b'0').filter(|d| *d <= 9)?;
        value = value.checked_mul(10)?.checked_add(u64::from(digit))?;
    }
    T::try_from(value).ok()
}

/// `o=<username> <sess-id> <sess-version> <nettype> <addrtype> <unicast-address>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The user name (`-` when none).
    pub username: String,
    /// The session id: an opaque identifier, numeric by RFC 8866.
    pub session_id: String,
    /// The session version; must increase whenever the description changes.
    pub session_version: u64,
    /// Network type, `IN` in practice.
    pub net_type: String,
    /// Address type, `IP4` or `IP6` in practice.
    pub addr_type: String,
    /// The originator's address (an IP literal or a host name; not used for routing).
    pub address: String,
}

impl Origin {
    /// An origin `IN IP4|IP6 <ip>` for the given user, session id and version.
    pub fn new(username: &str, session_id: u64, session_version: u64, address: IpAddr) -> Self {
        Origin {
            username: username.to_owned(),
            session_id: session_id.to_string(),
            session_version,
            net_type: "IN".to_owned(),
            addr_type: AddrType::of(address).as_str().to_owned(),
            address: address.to_string(),
        }
    }

    pub(crate) fn parse(value: &[u8]) -> Option<Self> {
        let mut parts = fields(value);
        let origin = Origin {
            username: visible(parts.next()?)?.to_owned(),
            session_id: visible(parts.next()?)?.to_owned(),
            session_version: number(parts.next()?)?,
            net_type: token(parts.next()?)?.to_owned(),
            addr_type: token(parts.next()?)?.to_owned(),
            address: visible(parts.next()?)?.to_owned(),
        };
        parts.next().is_none().then_some(origin)
    }

    pub(crate) fn is_writable(&self) -> bool {
        [&self.username, &self.session_id, &self.address]
            .iter()
            .all(|s| visible(s.as_bytes()).is_some())
            && token(self.net_type.as_bytes()).is_some()
            && token(self.addr_type.as_bytes()).is_some()
    }

    pub(crate) fn write(&self, out: &mut String) {
        let _ = write!(
            out,
            "{} {} {} {} {} {}",
            self.username,
            self.session_id,
            self.session_version,
            self.net_type,
            self.addr_type,
            self.address
        );
    }
}

/// Address type of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddrType {
    /// `IP4`.
    Ip4,
    /// `IP6`.
    Ip6,
}

impl AddrType {
    /// The address type of an IP address.
    pub fn of(address: IpAddr) -> Self {
        match address {
            IpAddr::V4(_) => AddrType::Ip4,
            IpAddr::V6(_) => AddrType::Ip6,
        }
    }

    /// `IP4` or `IP6`.
    pub fn as_str(self) -> &'static str {
        match self {
            AddrType::Ip4 => "IP4",
            AddrType::Ip6 => "IP6",
        }
    }

    fn parse(bytes: &[u8]) -> Option<Self> {
        match bytes {
            b"IP4" => Some(AddrType::Ip4),
            b"IP6" => Some(AddrType::Ip6),
            _ => None,
        }
    }
}

/// The address in a `c=` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionAddress {
    /// An IP literal.
    Ip(IpAddr),
    /// A fully qualified domain name (allowed by RFC 8866, rare in practice).
    Host(String),
}

/// `c=IN <addrtype> <address>[/<ttl>][/<count>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// `IP4` or `IP6`.
    pub addr_type: AddrType,
    /// The address.
    pub address: ConnectionAddress,
    /// Legacy IPv4 multicast TTL (`/ttl`), tolerated and kept.
    pub ttl: Option<u8>,
    /// Multicast address count (`/n`).
    pub count: Option<u32>,
}

impl Connection {
    /// `IN IP4|IP6 <address>` for a unicast IP.
    pub fn new(address: IpAddr) -> Self {
        Connection {
            addr_type: AddrType::of(address),
            address: ConnectionAddress::Ip(address),
            ttl: None,
            count: None,
        }
    }

    /// The IP address, when the address is a literal.
    pub fn ip(&self) -> Option<IpAddr> {
        match &self.address {
            ConnectionAddress::Ip(ip) => Some(*ip),
            ConnectionAddress::Host(_) => None,
        }
    }

    /// `0.0.0.0` (or `::`): the RFC 2543 way of putting a call on hold.
    pub fn is_unspecified(&self) -> bool {
        self.ip().is_some_and(|ip| ip.is_unspecified())
    }

    /// Parses `<nettype> <addrtype> <address>` as used by `c=` and `a=rtcp`.
    pub(crate) fn parse_fields<'a>(mut parts: impl Iterator<Item = &'a [u8]>) -> Option<Self> {
        if parts.next()? != b"IN" {
            return None;
        }
        let addr_type = AddrType::parse(parts.next()?)?;
        let mut address_parts = parts.next()?.split(|b| *b == b'/');
        let host = address_parts.next()?;
        let first: Option<u32> = match address_parts.next() {
            None => None,
            Some(part) => Some(number(part)?),
        };
        let second: Option<u32> = match address_parts.next() {
            None => None,
            Some(part) => Some(number(part)?),
        };
        if address_parts.next().is_some() || parts.next().is_some() {
            return None;
        }
        let address = parse_address(addr_type, host)?;
        let (ttl, count) = match (addr_type, first, second) {
            (_, None, _) => (None, None),
            (AddrType::Ip4, Some(ttl), count) => (Some(u8::try_from(ttl).ok()?), count),
            (AddrType::Ip6, Some(count), None) => (None, Some(count)),
            (AddrType::Ip6, Some(_), Some(_)) => return None,
        };
        Some(Connection {
            addr_type,
            address,
            ttl,
            count,
        })
    }

    pub(crate) fn parse(value: &[u8]) -> Option<Self> {
        Self::parse_fields(fields(value))
    }

    pub(crate) fn is_writable(&self) -> bool {
        match &self.address {
            ConnectionAddress::Ip(ip) => AddrType::of(*ip) == self.addr_type,
            ConnectionAddress::Host(host) => is_host(host.as_bytes()),
        }
    }

    pub(crate) fn write(&self, out: &mut String) {
        let _ = write!(out, "IN {} ", self.addr_type.as_str());
        let _ = match &self.address {
            ConnectionAddress::Ip(ip) => write!(out, "{ip}"),
            ConnectionAddress::Host(host) => write!(out, "{host}"),
        };
        if let Some(ttl) = self.ttl {
            let _ = write!(out, "/{ttl}");
        }
        if let Some(count) = self.count {
            let _ = write!(out, "/{count}");
        }
    }
}

/// A DNS host name: labels of 1–63 letters, digits or `-` (not at either end), 253 bytes at most.
fn is_host(bytes: &[u8]) -> bool {
    bytes.len() <= 253
        && bytes.split(|b| *b == b'.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
                && !label.starts_with(b"-")
                && !label.ends_with(b"-")
        })
}

fn parse_address(addr_type: AddrType, host: &[u8]) -> Option<ConnectionAddress> {
    let text = std::str::from_utf8(host).ok()?;
    match addr_type {
        AddrType::Ip4 => {
            if let Ok(ip) = text.parse::<Ipv4Addr>() {
                return Some(ConnectionAddress::Ip(IpAddr::V4(ip)));
            }
        }
        AddrType::Ip6 => {
            if let Ok(ip) = text.parse::<Ipv6Addr>() {
                return Some(ConnectionAddress::Ip(IpAddr::V6(ip)));
            }
        }
    }
    // A host name must not look like an address of the other family or a malformed literal.
    let looks_numeric = host.iter().all(|b| b.is_ascii_digit() || *b == b'.');
    (is_host(host) && !looks_numeric && !host.contains(&b':'))
        .then(|| ConnectionAddress::Host(text.to_owned()))
}

/// `b=<bwtype>:<bandwidth>` (kbit/s for CT and AS, bit/s for TIAS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bandwidth {
    /// The modifier: `CT`, `AS`, `TIAS`, `RS`, `RR`, or an extension.
    pub bw_type: String,
    /// The value.
    pub bandwidth: u64,
}

impl Bandwidth {
    pub(crate) fn parse(value: &[u8]) -> Option<Self> {
        let colon = value.iter().position(|b| *b == b':')?;
        Some(Bandwidth {
            bw_type: token(&value[..colon])?.to_owned(),
            bandwidth: number(value[colon + 1..].trim_ascii_end())?,
        })
    }

    pub(crate) fn write(&self, out: &mut String) {
        let _ = write!(out, "{}:{}", self.bw_type, self.bandwidth);
    }
}

/// `t=<start> <stop>` (NTP seconds; `0 0` for an unbounded session).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Start time.
    pub start: u64,
    /// Stop time.
    pub stop: u64,
}

impl Timing {
    pub(crate) fn parse(value: &[u8]) -> Option<Self> {
        let mut parts = fields(value);
        let timing = Timing {
            start: number(parts.next()?)?,
            stop: number(parts.next()?)?,
        };
        parts.next().is_none().then_some(timing)
    }

    pub(crate) fn write(&self, out: &mut String) {
        let _ = write!(out, "{} {}", self.start, self.stop);
    }
}

/// `m=<media> <port>[/<count>] <proto> <fmt> ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaLine {
    /// `audio`, `video`, `image`, `application`, `text`, `message` or an extension.
    pub media: String,
    /// Transport port; 0 marks a rejected or disabled stream.
    pub port: u16,
    /// Number of consecutive ports (`/n`), rare.
    pub port_count: Option<u16>,
    /// `RTP/AVP`, `RTP/SAVP`, `UDP/TLS/RTP/SAVPF`, `udptl`, ...
    pub proto: String,
    /// The formats: RTP payload type numbers for RTP profiles, tokens otherwise.
    pub formats: Vec<String>,
}

/// Why an `m=` value was refused; the parser turns it into an [`crate::SdpError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MediaLineFault {
    Grammar,
    Port,
    NoFormats,
    PayloadType,
}

impl MediaLine {
    /// Whether the profile is RTP-based, so formats are payload type numbers.
    pub fn is_rtp(&self) -> bool {
        is_rtp_proto(&self.proto)
    }

    pub(crate) fn parse(value: &[u8]) -> Result<Self, MediaLineFault> {
        let mut parts = fields(value);
        let media = parts
            .next()
            .and_then(token)
            .ok_or(MediaLineFault::Grammar)?;
        let mut port_parts = parts
            .next()
            .ok_or(MediaLineFault::Grammar)?
            .splitn(2, |b| *b == b'/');
        let port = port_parts
            .next()
            .and_then(number)
            .ok_or(MediaLineFault::Port)?;
        let port_count = match port_parts.next() {
            None => None,
            Some(count) => Some(number(count).ok_or(MediaLineFault::Port)?),
        };
        let proto = parts.next().ok_or(MediaLineFault::Grammar)?;
        if !proto.split(|b| *b == b'/').all(|p| token(p).is_some()) {
            return Err(MediaLineFault::Grammar);
        }
        let proto = std::str::from_utf8(proto).map_err(|_| MediaLineFault::Grammar)?;
        let rtp = is_rtp_proto(proto);
        let mut formats = Vec::new();
        for format in parts {
            let text = token(format).ok_or(MediaLineFault::Grammar)?;
            if rtp && number::<u8>(format).is_none_or(|pt| pt > 127) {
                return Err(MediaLineFault::PayloadType);
            }
            formats.push(text.to_owned());
        }
        if formats.is_empty() {
            return Err(MediaLineFault::NoFormats);
        }
        Ok(MediaLine {
            media: media.to_owned(),
            port,
            port_count,
            proto: proto.to_owned(),
            formats,
        })
    }

    pub(crate) fn is_writable(&self) -> bool {
        token(self.media.as_bytes()).is_some()
            && !self.proto.is_empty()
            && self.proto.split('/').all(|p| token(p.as_bytes()).is_some())
            && !self.formats.is_empty()
            && self.formats.iter().all(|f| token(f.as_bytes()).is_some())
            && (!self.is_rtp()
                || self
                    .formats
                    .iter()
                    .all(|f| number::<u8>(f.as_bytes()).is_some_and(|pt| pt <= 127)))
    }

    pub(crate) fn write(&self, out: &mut String) {
        let _ = write!(out, "{} {}", self.media, self.port);
        if let Some(count) = self.port_count {
            let _ = write!(out, "/{count}");
        }
        let _ = write!(out, " {}", self.proto);
        for format in &self.formats {
            let _ = write!(out, " {format}");
        }
    }
}

/// RTP profiles: `RTP/AVP`, `RTP/SAVP`, `RTP/AVPF`, `UDP/TLS/RTP/SAVPF`, `TCP/RTP/AVP`, ...
pub(crate) fn is_rtp_proto(proto: &str) -> bool {
    proto.split('/').any(|p| p.eq_ignore_ascii_case("RTP"))
}
