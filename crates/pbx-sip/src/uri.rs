//! URIs: `sip:`/`sips:` (RFC 3261 §19.1), `tel:` (RFC 3966) and any other absolute URI kept
//! opaque. Components are zero-copy slices of the received text, escapes kept as received.

use std::borrow::Cow;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::ValueError;
use crate::params::Params;
use crate::scan::{percent_decode, slice_of};

/// A URI as found in a Request-URI or a name-addr.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Uri {
    /// `sip:` or `sips:`.
    Sip(SipUri),
    /// `tel:`.
    Tel(TelUri),
    /// Any other scheme, kept as received (e.g. `isbn:...`, `http://...`).
    Absolute(Bytes),
}

/// `sip` or `sips`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `sip:`.
    Sip,
    /// `sips:`.
    Sips,
}

/// A SIP or SIPS URI.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SipUri {
    /// `sip` or `sips`.
    pub scheme: Scheme,
    /// User part, escapes kept as received (see [`SipUri::user_unescaped`]).
    pub user: Option<Bytes>,
    /// Password part (deprecated, but kept).
    pub password: Option<Bytes>,
    /// Host.
    pub host: Host,
    /// Port, if given.
    pub port: Option<u16>,
    /// URI parameters (`;transport=tcp;lr`), as received.
    pub params: Params,
    /// Headers part after `?`, as received (without the `?`).
    pub headers: Option<Bytes>,
}

/// A `tel:` URI.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TelUri {
    /// The number (global `+...` or local), as received.
    pub number: Bytes,
    /// Parameters (`;phone-context=...`).
    pub params: Params,
}

/// A host: domain name or IP address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// A domain name, as received.
    Domain(Bytes),
    /// An IPv4 address.
    Ipv4(Ipv4Addr),
    /// An IPv6 address (written `[...]` in URIs and Via).
    Ipv6(Ipv6Addr),
}

/// A URI borrowed from the text it was parsed from: the same grammar and checks as
/// [`Uri`], components as `&[u8]` (no reference counting, no copy). Convert with
/// [`UriRef::to_uri`] when it must outlive the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UriRef<'a> {
    /// `sip:` or `sips:`.
    Sip(SipUriRef<'a>),
    /// `tel:`.
    Tel(TelUriRef<'a>),
    /// Any other scheme, as received.
    Absolute(&'a [u8]),
}

/// A borrowed SIP or SIPS URI (see [`SipUri`] for the meaning of each part).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SipUriRef<'a> {
    /// `sip` or `sips`.
    pub scheme: Scheme,
    /// User part, escapes kept as received.
    pub user: Option<&'a [u8]>,
    /// Password part.
    pub password: Option<&'a [u8]>,
    /// Host.
    pub host: HostRef<'a>,
    /// Port, if given.
    pub port: Option<u16>,
    /// URI parameters as received, leading `;` included (empty when none); validated.
    pub params: &'a [u8],
    /// Headers part after `?`, as received (without the `?`).
    pub headers: Option<&'a [u8]>,
}

/// A borrowed `tel:` URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TelUriRef<'a> {
    /// The number, as received.
    pub number: &'a [u8],
    /// Parameters as received, leading `;` included.
    pub params: &'a [u8],
}

/// A borrowed host: domain name (as received) or IP address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HostRef<'a> {
    /// A domain name, as received.
    Domain(&'a [u8]),
    /// An IPv4 address.
    Ipv4(Ipv4Addr),
    /// An IPv6 address.
    Ipv6(Ipv6Addr),
}

impl<'a> UriRef<'a> {
    /// Parses a URI (no surrounding `<>`, no whitespace) with the rules of [`Uri::parse`].
    #[inline]
    pub fn parse(s: &'a [u8]) -> Result<UriRef<'a>, ValueError> {
        // `sip:` (any case) with something after it: the scheme loop below would accept it.
        if s.len() > 4 && s[..4].eq_ignore_ascii_case(b"sip:") {
            let rest = &s[4..];
            if has_bad_uri_octet(rest) {
                return Err(ValueError::InvalidUri);
            }
            return SipUriRef::parse_rest(Scheme::Sip, rest);
        }
        let mut colon = 0;
        while colon < s.len() && s[colon] != b':' {
            let b = s[colon];
            if !(b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.')) {
                return Err(ValueError::InvalidUri);
            }
            colon += 1;
        }
        if colon == 0 || colon + 1 >= s.len() || !s[0].is_ascii_alphabetic() {
            return Err(ValueError::InvalidUri);
        }
        let scheme = &s[..colon];
        let rest = &s[colon + 1..];
        if has_bad_uri_octet(rest) {
            return Err(ValueError::InvalidUri);
        }
        match scheme.len() {
            3 if scheme.eq_ignore_ascii_case(b"sip") => SipUriRef::parse_rest(Scheme::Sip, rest),
            4 if scheme.eq_ignore_ascii_case(b"sips") => SipUriRef::parse_rest(Scheme::Sips, rest),
            3 if scheme.eq_ignore_ascii_case(b"tel") => {
                let semi = crate::scan::find(b';', rest).unwrap_or(rest.len());
                if semi == 0 {
                    return Err(ValueError::InvalidUri);
                }
                Ok(UriRef::Tel(TelUriRef {
                    number: &rest[..semi],
                    params: &rest[semi..],
                }))
            }
            _ => Ok(UriRef::Absolute(s)),
        }
    }

    /// The SIP URI, if this is one.
    pub fn as_sip(&self) -> Option<&SipUriRef<'a>> {
        match self {
            UriRef::Sip(u) => Some(u),
            _ => None,
        }
    }

    /// Whether the scheme is `sip` or `sips`.
    pub fn is_sip(&self) -> bool {
        matches!(self, UriRef::Sip(_))
    }

    /// An owned [`Uri`] (copies the components).
    pub fn to_uri(self) -> Uri {
        self.to_uri_in(&Bytes::new())
    }

    /// An owned [`Uri`] whose components are slices of `owner` when they lie inside it
    /// (refcount only), copies otherwise.
    #[inline]
    pub(crate) fn to_uri_in(self, owner: &Bytes) -> Uri {
        match self {
            UriRef::Sip(u) => Uri::Sip(u.to_sip_uri_in(owner)),
            UriRef::Tel(t) => Uri::Tel(TelUri {
                number: slice_of(owner, t.number),
                params: Params::from_raw(slice_of(owner, t.params)),
            }),
            UriRef::Absolute(raw) => Uri::Absolute(slice_of(owner, raw)),
        }
    }
}

impl<'a> SipUriRef<'a> {
    /// Parses what follows `sip:`/`sips:` (already checked for forbidden octets). Returns the
    /// `UriRef` itself so it is built in the return slot (a `.map(UriRef::Sip)` copies it).
    #[inline]
    fn parse_rest(scheme: Scheme, rest: &'a [u8]) -> Result<UriRef<'a>, ValueError> {
        let (user, password, hostpart) = match crate::scan::find(b'@', rest) {
            Some(at) => {
                let userinfo = &rest[..at];
                let (user, password) = match crate::scan::find(b':', userinfo) {
                    Some(c) => (&userinfo[..c], Some(&userinfo[c + 1..])),
                    None => (userinfo, None),
                };
                if user.is_empty() {
                    return Err(ValueError::InvalidUri);
                }
                (Some(user), password, &rest[at + 1..])
            }
            None => (None, None, rest),
        };
        let (host, after) = split_host_ref(hostpart)?;
        let (port, after) = match after.first() {
            Some(b':') => {
                let end = after[1..]
                    .iter()
                    .position(|&b| matches!(b, b';' | b'?'))
                    .map_or(after.len(), |p| p + 1);
                (Some(parse_port(&after[1..end])?), &after[end..])
            }
            _ => (None, after),
        };
        let (params, headers) = match crate::scan::find(b'?', after) {
            Some(q) => (&after[..q], Some(&after[q + 1..])),
            None => (after, None),
        };
        if !params.is_empty() && params[0] != b';' {
            return Err(ValueError::InvalidUri);
        }
        if has_empty_param(params) {
            return Err(ValueError::EmptyElement);
        }
        Ok(UriRef::Sip(SipUriRef {
            scheme,
            user,
            password,
            host,
            port,
            params,
            headers,
        }))
    }

    /// The URI parameters in order as (name, value).
    pub fn params(&self) -> crate::params::ParamIter<'a> {
        crate::params::ParamIter::over(self.params)
    }

    /// The value of URI parameter `name`: `Some(Some(v))`, `Some(None)` for a flag.
    pub fn param(&self, name: &str) -> Option<Option<&'a [u8]>> {
        self.params()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v)
    }

    /// The user part with `%HH` escapes decoded once.
    pub fn user_unescaped(&self) -> Option<Cow<'a, [u8]>> {
        self.user.map(percent_decode)
    }

    /// The port, or the default for the scheme (5060 / 5061).
    pub fn port_or_default(&self) -> u16 {
        self.port.unwrap_or(match self.scheme {
            Scheme::Sip => 5060,
            Scheme::Sips => 5061,
        })
    }

    /// An owned [`SipUri`] (copies the components).
    pub fn to_sip_uri(self) -> SipUri {
        self.to_sip_uri_in(&Bytes::new())
    }

    #[inline]
    pub(crate) fn to_sip_uri_in(self, owner: &Bytes) -> SipUri {
        SipUri {
            scheme: self.scheme,
            user: self.user.map(|u| slice_of(owner, u)),
            password: self.password.map(|p| slice_of(owner, p)),
            host: self.host.to_host_in(owner),
            port: self.port,
            params: Params::from_raw(slice_of(owner, self.params)),
            headers: self.headers.map(|h| slice_of(owner, h)),
        }
    }
}

impl<'a> HostRef<'a> {
    /// Parses a host with the rules of [`Host::parse`].
    pub fn parse(s: &'a [u8]) -> Result<HostRef<'a>, ValueError> {
        match split_host_ref(s)? {
            (host, []) => Ok(host),
            _ => Err(ValueError::InvalidHost),
        }
    }

    /// A bare (unbracketed) IPv6 address, IPv4 address or domain (Via `received=`).
    #[inline]
    pub(crate) fn parse_param(s: &'a [u8]) -> Result<HostRef<'a>, ValueError> {
        if s.first() != Some(&b'[') && crate::scan::find(b':', s).is_some() {
            return parse_ipv6(s).map(HostRef::Ipv6);
        }
        Self::parse(s)
    }

    /// The address, when the host is an IP address.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            HostRef::Ipv4(a) => Some(IpAddr::V4(*a)),
            HostRef::Ipv6(a) => Some(IpAddr::V6(*a)),
            HostRef::Domain(_) => None,
        }
    }

    /// An owned [`Host`] (copies a domain name).
    pub fn to_host(self) -> Host {
        self.to_host_in(&Bytes::new())
    }

    #[inline]
    pub(crate) fn to_host_in(self, owner: &Bytes) -> Host {
        match self {
            HostRef::Domain(d) => Host::Domain(slice_of(owner, d)),
            HostRef::Ipv4(a) => Host::Ipv4(a),
            HostRef::Ipv6(a) => Host::Ipv6(a),
        }
    }
}

impl Uri {
    /// Parses a URI (no surrounding `<>`, no whitespace).
    pub fn parse(raw: impl Into<Bytes>) -> Result<Uri, ValueError> {
        let raw = raw.into();
        Self::parse_in(&raw, &raw)
    }

    /// Parses `s`, which lies in `owner`, slicing components from `owner`.
    #[inline]
    pub(crate) fn parse_in(owner: &Bytes, s: &[u8]) -> Result<Uri, ValueError> {
        Ok(UriRef::parse(s)?.to_uri_in(owner))
    }

    /// The SIP URI, if this is one.
    pub fn as_sip(&self) -> Option<&SipUri> {
        match self {
            Uri::Sip(u) => Some(u),
            _ => None,
        }
    }

    /// Whether the scheme is `sip` or `sips`.
    pub fn is_sip(&self) -> bool {
        matches!(self, Uri::Sip(_))
    }

    /// Prints the URI.
    pub fn write_to(&self, out: &mut BytesMut) {
        match self {
            Uri::Sip(u) => u.write_to(out),
            Uri::Tel(t) => {
                out.put_slice(b"tel:");
                out.put_slice(&t.number);
                out.put_slice(t.params.as_bytes());
            }
            Uri::Absolute(raw) => out.put_slice(raw),
        }
    }

    /// The printed URI.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(64);
        self.write_to(&mut out);
        out.freeze()
    }
}

impl SipUri {
    /// A `sip:` URI for `host` with nothing else set.
    pub fn new(host: Host) -> Self {
        Self {
            scheme: Scheme::Sip,
            user: None,
            password: None,
            host,
            port: None,
            params: Params::new(),
            headers: None,
        }
    }

    /// The user part with `%HH` escapes decoded once (a `%00` stays a NUL octet).
    pub fn user_unescaped(&self) -> Option<Cow<'_, [u8]>> {
        self.user.as_deref().map(percent_decode)
    }

    /// The port, or the default for the scheme (5060 / 5061).
    pub fn port_or_default(&self) -> u16 {
        self.port.unwrap_or(match self.scheme {
            Scheme::Sip => 5060,
            Scheme::Sips => 5061,
        })
    }

    /// Prints the URI.
    pub fn write_to(&self, out: &mut BytesMut) {
        out.put_slice(match self.scheme {
            Scheme::Sip => b"sip:",
            Scheme::Sips => b"sips:",
        });
        if let Some(user) = &self.user {
            out.put_slice(user);
            if let Some(password) = &self.password {
                out.put_u8(b':');
                out.put_slice(password);
            }
            out.put_u8(b'@');
        }
        self.host.write_to(out);
        if let Some(port) = self.port {
            out.put_u8(b':');
            crate::text::put_u64(out, u64::from(port));
        }
        out.put_slice(self.params.as_bytes());
        if let Some(headers) = &self.headers {
            out.put_u8(b'?');
            out.put_slice(headers);
        }
    }
}

/// Whether a URI parameter list ends with `;` or holds `;;` (jumps from `;` to `;`).
#[inline]
fn has_empty_param(params: &[u8]) -> bool {
    let mut rest = params;
    while let Some(i) = crate::scan::find(b';', rest) {
        match rest.get(i + 1) {
            None | Some(b';') => return true,
            Some(_) => rest = &rest[i + 1..],
        }
    }
    false
}

impl Host {
    /// Parses a host: `[v6]`, dotted IPv4, or a domain name. Tolerates the RFC 3261 ABNF
    /// three-colon IPv6 form (RFC 5118 §4.10).
    pub fn parse(s: &[u8]) -> Result<Host, ValueError> {
        Self::parse_in(&Bytes::copy_from_slice(s), s)
    }

    pub(crate) fn parse_in(owner: &Bytes, s: &[u8]) -> Result<Host, ValueError> {
        Ok(HostRef::parse(s)?.to_host_in(owner))
    }

    /// The address, when the host is an IP address.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Host::Ipv4(a) => Some(IpAddr::V4(*a)),
            Host::Ipv6(a) => Some(IpAddr::V6(*a)),
            Host::Domain(_) => None,
        }
    }

    /// Prints the host (`[...]` around IPv6).
    pub fn write_to(&self, out: &mut BytesMut) {
        match self {
            Host::Domain(d) => out.put_slice(d),
            Host::Ipv4(a) => crate::text::put_ipv4(out, *a),
            Host::Ipv6(a) => {
                out.put_u8(b'[');
                out.put_slice(a.to_string().as_bytes());
                out.put_u8(b']');
            }
        }
    }
}

impl From<IpAddr> for Host {
    fn from(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(a) => Host::Ipv4(a),
            IpAddr::V6(a) => Host::Ipv6(a),
        }
    }
}

/// Whether `s` holds an octet never allowed in a URI (controls, space, `<`, `>`, `"`, DEL).
/// Written without early exit so the compiler can vectorise it.
#[inline]
fn has_bad_uri_octet(s: &[u8]) -> bool {
    // SWAR, eight octets per step: "some byte < 0x21" and "some byte == c" tests are exact
    // for the question "is there any" (borrows only follow a real hit).
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    let has_less = |v: u64, n: u64| v.wrapping_sub(ONES * n) & !v & HIGH;
    let mut chunks = s.chunks_exact(8);
    for chunk in chunks.by_ref() {
        let x = u64::from_le_bytes(<[u8; 8]>::try_from(chunk).unwrap_or_default());
        let bad = has_less(x, 0x21)
            | has_zero(x ^ (ONES * 0x7f))
            | has_zero(x ^ (ONES * u64::from(b'<')))
            | has_zero(x ^ (ONES * u64::from(b'>')))
            | has_zero(x ^ (ONES * u64::from(b'"')));
        if bad != 0 {
            return true;
        }
    }
    // The last 1..=7 octets, padded with a harmless octet, take one more step.
    let rest = chunks.remainder();
    if rest.is_empty() {
        return false;
    }
    let mut last = [b'a'; 8];
    last[..rest.len()].copy_from_slice(rest);
    let x = u64::from_le_bytes(last);
    (has_less(x, 0x21)
        | has_zero(x ^ (ONES * 0x7f))
        | has_zero(x ^ (ONES * u64::from(b'<')))
        | has_zero(x ^ (ONES * u64::from(b'>')))
        | has_zero(x ^ (ONES * u64::from(b'"'))))
        != 0
}

/// Octets of a domain name or dotted IPv4 address.
static HOST_CHAR: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_';
        i += 1;
    }
    t
};

/// Splits a host off the front of `s`; returns the host and what follows it (which starts
/// with `:`, `;`, `?`, whitespace, or is empty).
#[cfg(test)]
fn split_host<'a>(owner: &Bytes, s: &'a [u8]) -> Result<(Host, &'a [u8]), ValueError> {
    let (host, rest) = split_host_ref(s)?;
    Ok((host.to_host_in(owner), rest))
}

/// [`split_host`] without an owner: the host borrows from `s`.
#[inline]
pub(crate) fn split_host_ref(s: &[u8]) -> Result<(HostRef<'_>, &[u8]), ValueError> {
    if s.first() == Some(&b'[') {
        let close = crate::scan::find(b']', s).ok_or(ValueError::InvalidHost)?;
        if close < 2 {
            return Err(ValueError::InvalidHost);
        }
        let ip = parse_ipv6(&s[1..close])?;
        return Ok((HostRef::Ipv6(ip), &s[close + 1..]));
    }
    // Dotted IPv4 first when the host starts with a digit: one pass instead of a host-octet
    // scan followed by an address parse.
    if s.first().is_some_and(u8::is_ascii_digit)
        && let Some((ip, i)) = parse_ipv4_prefix(s)
        && s.get(i)
            .is_none_or(|&b| matches!(b, b':' | b';' | b'?' | b' ' | b'\t'))
    {
        return Ok((HostRef::Ipv4(ip), &s[i..]));
    }
    let i = s
        .iter()
        .position(|&b| !HOST_CHAR[b as usize])
        .unwrap_or(s.len());
    if i == 0 || (i < s.len() && !matches!(s[i], b':' | b';' | b'?' | b' ' | b'\t')) {
        return Err(ValueError::InvalidHost);
    }
    let text = &s[..i];
    // Only a host starting with a digit can be an IPv4 address; parse_ipv4 checks the rest.
    let host = match text[0].is_ascii_digit().then(|| parse_ipv4(text)).flatten() {
        Some(ip) => HostRef::Ipv4(ip),
        None => HostRef::Domain(text),
    };
    Ok((host, &s[i..]))
}

/// A dotted-quad IPv4 address (the rules of [`parse_ipv4`]) at the front of `s`, and its
/// length; `None` when the digits and dots there do not form one.
#[inline]
fn parse_ipv4_prefix(s: &[u8]) -> Option<(Ipv4Addr, usize)> {
    let len = s
        .iter()
        .position(|&b| !(b.is_ascii_digit() || b == b'.'))
        .unwrap_or(s.len());
    parse_ipv4(&s[..len]).map(|ip| (ip, len))
}

/// Dotted-quad IPv4 (no leading zeros, as `Ipv4Addr::from_str`).
#[inline]
fn parse_ipv4(s: &[u8]) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut part = 0;
    let mut value: u16 = 0;
    let mut digits = 0;
    for &b in s {
        if b == b'.' {
            if digits == 0 || part == 3 {
                return None;
            }
            octets[part] = value as u8;
            part += 1;
            value = 0;
            digits = 0;
        } else {
            if !b.is_ascii_digit() || (digits > 0 && value == 0) {
                return None;
            }
            value = value * 10 + u16::from(b - b'0');
            digits += 1;
            if value > 255 {
                return None;
            }
        }
    }
    if part != 3 || digits == 0 {
        return None;
    }
    octets[3] = value as u8;
    Some(Ipv4Addr::from(octets))
}

#[inline]
pub(crate) fn parse_port(s: &[u8]) -> Result<u16, ValueError> {
    if s.is_empty() || s.len() > 5 {
        return Err(ValueError::InvalidPort);
    }
    let v = crate::scan::parse_u64(s).map_err(|_| ValueError::InvalidPort)?;
    u16::try_from(v).map_err(|_| ValueError::InvalidPort)
}

fn parse_ipv6(s: &[u8]) -> Result<Ipv6Addr, ValueError> {
    let text = std::str::from_utf8(s).map_err(|_| ValueError::InvalidHost)?;
    if let Ok(a) = text.parse::<Ipv6Addr>() {
        return Ok(a);
    }
    // RFC 5118 §4.10: tolerate `2001:db8:::192.0.2.1` (RFC 3261's ABNF bug).
    if text.contains(":::") {
        return text
            .replacen(":::", "::", 1)
            .parse()
            .map_err(|_| ValueError::InvalidHost);
    }
    Err(ValueError::InvalidHost)
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.to_bytes()))
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = BytesMut::new();
        self.write_to(&mut out);
        f.write_str(&String::from_utf8_lossy(&out))
    }
}

impl std::str::FromStr for Uri {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uri::parse(Bytes::copy_from_slice(s.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_params_detected() {
        assert!(!has_empty_param(b""));
        assert!(!has_empty_param(b";lr;transport=udp"));
        assert!(has_empty_param(b";"));
        assert!(has_empty_param(b";lr;"));
        assert!(has_empty_param(b";lr;;x"));
        assert!(has_empty_param(b";;"));
    }

    #[test]
    fn bad_octet_scan_matches_the_simple_definition() {
        let simple = |s: &[u8]| {
            s.iter()
                .any(|&b| b <= b' ' || b == 0x7f || b == b'<' || b == b'>' || b == b'"')
        };
        let mut cases: Vec<Vec<u8>> =
            vec![b"sip:alice@example.com;transport=tcp".to_vec(), Vec::new()];
        for bad in [0u8, b' ', b'\t', 0x1f, 0x20, 0x7f, b'<', b'>', b'"'] {
            for at in 0..20 {
                let mut v = b"user@host.example.com;x=1".to_vec();
                v[at] = bad;
                cases.push(v);
            }
        }
        for good in [0x21u8, 0x80, 0xff, b'=', b'~', b'%'] {
            cases.push(vec![good; 17]);
        }
        for c in &cases {
            assert_eq!(has_bad_uri_octet(c), simple(c), "{c:?}");
        }
    }

    #[test]
    fn ipv4_fast_path_agrees_with_the_host_scan() {
        for host in [
            &b"192.0.2.1"[..],
            b"192.0.2.1:5060",
            b"192.0.2.1;x",
            b"192.0.2.1?h",
            b"192.0.2.1 x",
            b"192.0.2.1.",
            b"192.0.2.1a",
            b"192.0.2.1-x.example",
            b"192.0.2.1_",
            b"192.0.2",
            b"01.2.3.4",
            b"1.2.3.4.5",
            b"256.1.1.1",
            b"1.2.3.4/",
            b"1..2.3",
        ] {
            // The reference: scan host octets, then try the whole text as IPv4.
            let i = host
                .iter()
                .position(|&b| !HOST_CHAR[b as usize])
                .unwrap_or(host.len());
            let want = if i == 0 || (i < host.len() && !b":;? \t".contains(&host[i])) {
                Err(ValueError::InvalidHost)
            } else {
                let text = &host[..i];
                Ok((
                    parse_ipv4(text).map_or(HostRef::Domain(text), HostRef::Ipv4),
                    &host[i..],
                ))
            };
            assert_eq!(
                split_host_ref(host),
                want,
                "{:?}",
                String::from_utf8_lossy(host)
            );
        }
    }

    #[test]
    fn hosts_and_ports() {
        let o = Bytes::from_static(b"x");
        assert_eq!(
            Host::parse(b"192.0.2.1"),
            Ok(Host::Ipv4([192, 0, 2, 1].into()))
        );
        assert_eq!(
            Host::parse(b"3com.example"),
            Ok(Host::Domain("3com.example".into()))
        );
        assert_eq!(Host::parse(b"1.2.3"), Ok(Host::Domain("1.2.3".into())));
        assert_eq!(
            Host::parse(b"1-2.3.4.5"),
            Ok(Host::Domain("1-2.3.4.5".into()))
        );
        assert_eq!(
            Host::parse(b"1_.a.b.c"),
            Ok(Host::Domain("1_.a.b.c".into()))
        );
        assert_eq!(
            Host::parse(b"256.1.1.1"),
            Ok(Host::Domain("256.1.1.1".into()))
        );
        assert!(Host::parse(b"[2001:db8:::192.0.2.1]").is_ok());
        assert!(Host::parse(b"[]").is_err());
        assert!(Host::parse(b"a b").is_err());
        assert!(split_host(&o, b"").is_err());
        assert_eq!(parse_port(b"5060"), Ok(5060));
        assert!(parse_port(b"65536").is_err());
        assert!(parse_port(b"").is_err());
    }

    #[test]
    fn uri_kinds_and_printing() {
        let u = Uri::parse(Bytes::from_static(
            b"sips:bob:pw@[2001:db8::1]:5061;transport=tcp?Subject=x",
        ))
        .unwrap();
        let Uri::Sip(s) = &u else { panic!() };
        assert_eq!(s.scheme, Scheme::Sips);
        assert_eq!(s.password.as_deref(), Some(&b"pw"[..]));
        assert_eq!(s.port_or_default(), 5061);
        assert_eq!(
            &u.to_bytes()[..],
            b"sips:bob:pw@[2001:db8::1]:5061;transport=tcp?Subject=x"
        );
        assert!(matches!(
            Uri::parse(Bytes::from_static(b"tel:+31201234567")),
            Ok(Uri::Tel(_))
        ));
        assert!(matches!(
            Uri::parse(Bytes::from_static(b"urn:uuid:f81d")),
            Ok(Uri::Absolute(_))
        ));
        for bad in [
            &b"sip:"[..],
            b":x",
            b"1sip:x",
            b"sip:a b",
            b"sip:@h",
            b"sip:h;;x",
            b"sip:h:x",
        ] {
            assert!(Uri::parse(Bytes::copy_from_slice(bad)).is_err(), "{bad:?}");
        }
    }
}
