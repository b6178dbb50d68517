//! The Via header (RFC 3261 §20.42, RFC 3581 rport, RFC 5118 §4.5).

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::ValueError;
use crate::params::Params;
use crate::scan::{is_ws, slice_of, take_token, trim, trim_start};
use crate::uri::{Host, HostRef, parse_port, split_host_ref};

/// The RFC 3261 branch magic cookie.
pub const BRANCH_MAGIC_COOKIE: &str = "z9hG4bK";

/// Transport of a Via sent-protocol.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Transport {
    /// UDP.
    Udp,
    /// TCP.
    Tcp,
    /// TLS over TCP.
    Tls,
    /// SCTP.
    Sctp,
    /// TLS over SCTP.
    TlsSctp,
    /// WebSocket (RFC 7118).
    Ws,
    /// Secure WebSocket (RFC 7118).
    Wss,
    /// Any other transport token, as received.
    Other(Bytes),
}

impl Transport {
    #[inline]
    fn from_token(owner: &Bytes, s: &[u8]) -> Transport {
        let upper = |i: usize| s[i].to_ascii_uppercase();
        match s.len() {
            2 if upper(0) == b'W' && upper(1) == b'S' => Transport::Ws,
            3 => match [upper(0), upper(1), upper(2)] {
                [b'U', b'D', b'P'] => Transport::Udp,
                [b'T', b'C', b'P'] => Transport::Tcp,
                [b'T', b'L', b'S'] => Transport::Tls,
                [b'W', b'S', b'S'] => Transport::Wss,
                _ => Transport::Other(slice_of(owner, s)),
            },
            4 if s.eq_ignore_ascii_case(b"SCTP") => Transport::Sctp,
            8 if s.eq_ignore_ascii_case(b"TLS-SCTP") => Transport::TlsSctp,
            _ => Transport::Other(slice_of(owner, s)),
        }
    }

    /// The token as printed in a Via (upper case for known transports).
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Transport::Udp => b"UDP",
            Transport::Tcp => b"TCP",
            Transport::Tls => b"TLS",
            Transport::Sctp => b"SCTP",
            Transport::TlsSctp => b"TLS-SCTP",
            Transport::Ws => b"WS",
            Transport::Wss => b"WSS",
            Transport::Other(raw) => raw,
        }
    }

    /// Whether the transport is reliable (everything except UDP and unknown ones).
    pub fn is_reliable(&self) -> bool {
        !matches!(self, Transport::Udp | Transport::Other(_))
    }
}

/// One Via value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// Transport of the sent-protocol.
    pub transport: Transport,
    /// sent-by host.
    pub host: Host,
    /// sent-by port.
    pub port: Option<u16>,
    /// `branch` parameter.
    pub branch: Option<Bytes>,
    /// `received` parameter (bracketed or bare IPv6 accepted).
    pub received: Option<Host>,
    /// `rport`: `None` absent, `Some(None)` flag, `Some(Some(port))` filled in.
    pub rport: Option<Option<u16>>,
    /// `maddr` parameter.
    pub maddr: Option<Host>,
    /// `ttl` parameter.
    pub ttl: Option<u8>,
    /// All parameters as received (including the ones above).
    pub params: Params,
}

impl Via {
    /// A new Via `SIP/2.0/<transport> host[:port];branch=<branch>` (add `;rport` with
    /// [`Via::with_rport`]).
    pub fn new(
        transport: Transport,
        host: Host,
        port: Option<u16>,
        branch: impl Into<Bytes>,
    ) -> Via {
        let branch = branch.into();
        let mut params = Params::new();
        params.push("branch", Some(&branch));
        Via {
            transport,
            host,
            port,
            branch: Some(branch),
            received: None,
            rport: None,
            maddr: None,
            ttl: None,
            params,
        }
    }

    /// Adds an empty `rport` parameter (RFC 3581).
    pub fn with_rport(mut self) -> Via {
        self.params.push("rport", None);
        self.rport = Some(None);
        self
    }

    /// Parses one Via value (after comma splitting).
    pub fn parse(value: &[u8]) -> Result<Via, ValueError> {
        Self::parse_in(&Bytes::copy_from_slice(value), value)
    }

    pub(crate) fn parse_in(owner: &Bytes, s: &[u8]) -> Result<Via, ValueError> {
        Self::parse_as(owner, s, |kind| kind)
    }

    /// Parses one value with errors converted by `err`.
    #[inline]
    pub(crate) fn parse_as<E>(
        owner: &Bytes,
        s: &[u8],
        err: impl Fn(ValueError) -> E,
    ) -> Result<Via, E> {
        match ViaRef::parse(s) {
            Ok(v) => Ok(v.to_via_in(owner)),
            Err(kind) => Err(err(kind)),
        }
    }

    /// The sent-by host and port.
    pub fn sent_by(&self) -> (&Host, Option<u16>) {
        (&self.host, self.port)
    }

    /// Whether the branch starts with the RFC 3261 magic cookie and has something after it
    /// (RFC 4475 §3.2.1: a bare cookie is not a usable transaction id).
    pub fn is_rfc3261_branch(&self) -> bool {
        self.branch.as_ref().is_some_and(|b| {
            b.len() > BRANCH_MAGIC_COOKIE.len() && b.starts_with(BRANCH_MAGIC_COOKIE.as_bytes())
        })
    }

    /// Prints the Via value.
    pub fn write_to(&self, out: &mut BytesMut) {
        out.put_slice(b"SIP/2.0/");
        out.put_slice(self.transport.as_bytes());
        out.put_u8(b' ');
        self.host.write_to(out);
        if let Some(port) = self.port {
            out.put_u8(b':');
            crate::text::put_u64(out, u64::from(port));
        }
        out.put_slice(self.params.as_bytes());
    }

    /// The printed Via value.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(80);
        self.write_to(&mut out);
        out.freeze()
    }
}

/// One Via value borrowed from the message: the same grammar and checks as [`Via`], no
/// reference counting and no copy. [`ViaRef::to_via`] makes an owned [`Via`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ViaRef<'a> {
    /// Transport token of the sent-protocol, as received (see [`ViaRef::transport`]).
    pub transport_token: &'a [u8],
    /// sent-by host.
    pub host: HostRef<'a>,
    /// sent-by port.
    pub port: Option<u16>,
    /// `branch` parameter.
    pub branch: Option<&'a [u8]>,
    /// `received` parameter (bracketed or bare IPv6 accepted).
    pub received: Option<HostRef<'a>>,
    /// `rport`: `None` absent, `Some(None)` flag, `Some(Some(port))` filled in.
    pub rport: Option<Option<u16>>,
    /// `maddr` parameter.
    pub maddr: Option<HostRef<'a>>,
    /// `ttl` parameter.
    pub ttl: Option<u8>,
    /// All parameters as received (leading `;` included; the ones above too); validated.
    pub params: &'a [u8],
}

impl<'a> ViaRef<'a> {
    /// Parses one Via value (after comma splitting) with the rules of [`Via::parse`].
    #[inline]
    pub fn parse(s: &'a [u8]) -> Result<ViaRef<'a>, ValueError> {
        let s = trim(s);
        if s.is_empty() {
            return Err(ValueError::EmptyElement);
        }
        let rest = sip_2_0_slash(s)?;
        let (transport, rest) = take_token(trim_start(rest));
        if transport.is_empty() {
            return Err(ValueError::InvalidProtocol);
        }
        if !rest.first().is_some_and(|&b| is_ws(b)) {
            return Err(ValueError::UnexpectedChar);
        }
        let (host, rest) = split_host_ref(trim_start(rest))?;
        let rest = trim_start(rest);
        let (port, rest) = match rest.first() {
            Some(b':') => {
                let r = trim_start(&rest[1..]);
                let n = r
                    .iter()
                    .position(|b| !b.is_ascii_digit())
                    .unwrap_or(r.len());
                (Some(parse_port(&r[..n])?), trim_start(&r[n..]))
            }
            _ => (None, rest),
        };
        let (mut branch, mut received, mut rport, mut maddr, mut ttl) =
            (None, None, None, None, None);
        crate::params::scan(rest, |name, value| {
            // Dispatch on length first: most parameters are compared once at most.
            let is = |known: &[u8]| name.len() == known.len() && name.eq_ignore_ascii_case(known);
            match name.len() {
                6 if is(b"branch") => branch = Some(value.ok_or(ValueError::Empty)?),
                5 if is(b"rport") => rport = Some(value.map(parse_port).transpose()?),
                8 if is(b"received") => {
                    received = Some(HostRef::parse_param(value.ok_or(ValueError::Empty)?)?);
                }
                5 if is(b"maddr") => {
                    maddr = Some(HostRef::parse_param(value.ok_or(ValueError::Empty)?)?);
                }
                3 if is(b"ttl") => {
                    let n = crate::scan::parse_u64(value.ok_or(ValueError::Empty)?)?;
                    ttl = Some(u8::try_from(n).map_err(|_| ValueError::OutOfRange)?);
                }
                _ => {}
            }
            Ok(())
        })?;
        Ok(ViaRef {
            transport_token: transport,
            host,
            port,
            branch,
            received,
            rport,
            maddr,
            ttl,
            params: rest,
        })
    }

    /// The transport (known tokens matched case-insensitively; others copied).
    pub fn transport(&self) -> Transport {
        Transport::from_token(&Bytes::new(), self.transport_token)
    }

    /// The sent-by host and port.
    pub fn sent_by(&self) -> (HostRef<'a>, Option<u16>) {
        (self.host, self.port)
    }

    /// Whether the branch starts with the RFC 3261 magic cookie and has something after it.
    pub fn is_rfc3261_branch(&self) -> bool {
        self.branch.is_some_and(|b| {
            b.len() > BRANCH_MAGIC_COOKIE.len() && b.starts_with(BRANCH_MAGIC_COOKIE.as_bytes())
        })
    }

    /// The parameters in order as (name, value).
    pub fn param_iter(&self) -> crate::params::ParamIter<'a> {
        crate::params::ParamIter::over(self.params)
    }

    /// An owned [`Via`] (copies the components).
    pub fn to_via(self) -> Via {
        self.to_via_in(&Bytes::new())
    }

    #[inline]
    pub(crate) fn to_via_in(self, owner: &Bytes) -> Via {
        Via {
            transport: Transport::from_token(owner, self.transport_token),
            host: self.host.to_host_in(owner),
            port: self.port,
            branch: self.branch.map(|b| slice_of(owner, b)),
            received: self.received.map(|h| h.to_host_in(owner)),
            rport: self.rport,
            maddr: self.maddr.map(|h| h.to_host_in(owner)),
            ttl: self.ttl,
            params: Params::from_raw(slice_of(owner, self.params)),
        }
    }
}

/// `SIP / 2.0 /` with optional LWS around the slashes (the protocol name in any case);
/// returns what follows the second slash.
#[inline]
fn sip_2_0_slash(s: &[u8]) -> Result<&[u8], ValueError> {
    // Fast path: the exact common spelling.
    if s.len() > 8 && s[..8].eq_ignore_ascii_case(b"SIP/2.0/") {
        return Ok(&s[8..]);
    }
    let (name, rest) = take_token(s);
    let rest = expect_slash(rest)?;
    let (version, rest) = take_token(rest);
    let rest = expect_slash(rest)?;
    if !name.eq_ignore_ascii_case(b"SIP") || version != b"2.0" {
        return Err(ValueError::InvalidProtocol);
    }
    Ok(rest)
}

#[inline]
fn expect_slash(s: &[u8]) -> Result<&[u8], ValueError> {
    let s = trim_start(s);
    match s.first() {
        Some(b'/') => Ok(trim_start(&s[1..])),
        _ => Err(ValueError::InvalidProtocol),
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.to_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn basic_via() {
        let v = Via::parse(b"SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776;rport;received=10.0.0.1")
            .unwrap();
        assert_eq!(v.transport, Transport::Udp);
        assert_eq!(v.host, Host::Ipv4(Ipv4Addr::new(192, 0, 2, 1)));
        assert_eq!(v.port, Some(5060));
        assert_eq!(v.branch.as_deref(), Some(&b"z9hG4bK776"[..]));
        assert_eq!(v.rport, Some(None));
        assert_eq!(v.received, Some(Host::Ipv4(Ipv4Addr::new(10, 0, 0, 1))));
        assert!(v.is_rfc3261_branch());
    }

    #[test]
    fn lws_everywhere() {
        let v = Via::parse(b"SIP  /   2.0 /UDP     192.0.2.2;branch=390skdjuw").unwrap();
        assert_eq!(v.host, Host::Ipv4(Ipv4Addr::new(192, 0, 2, 2)));
        let v =
            Via::parse(b"SIP  / 2.0  / TCP     spindle.example.com   ;   branch  =   z9hG4bK9ikj8")
                .unwrap();
        assert_eq!(v.transport, Transport::Tcp);
        assert_eq!(v.branch.as_deref(), Some(&b"z9hG4bK9ikj8"[..]));
        let v = Via::parse(b"SIP/2.0/UDP host : 5070 ;maddr=224.2.0.1;ttl=16").unwrap();
        assert_eq!(v.port, Some(5070));
        assert_eq!(v.maddr, Some(Host::Ipv4(Ipv4Addr::new(224, 2, 0, 1))));
        assert_eq!(v.ttl, Some(16));
    }

    #[test]
    fn ipv6_and_received_forms() {
        let v =
            Via::parse(b"SIP/2.0/UDP [2001:db8::9:1];received=2001:db8::9:255;rport=5071").unwrap();
        assert_eq!(
            v.host,
            Host::Ipv6("2001:db8::9:1".parse::<Ipv6Addr>().unwrap())
        );
        assert_eq!(
            v.received,
            Some(Host::Ipv6("2001:db8::9:255".parse().unwrap()))
        );
        assert_eq!(v.rport, Some(Some(5071)));
        let v = Via::parse(b"SIP/2.0/UDP [2001:db8::9:1]:6050;received=[2001:db8::9:255]").unwrap();
        assert_eq!(v.port, Some(6050));
        assert_eq!(
            v.received,
            Some(Host::Ipv6("2001:db8::9:255".parse().unwrap()))
        );
    }

    #[test]
    fn rejects() {
        assert!(Via::parse(b"SIP/2.0/UDP 192.0.2.15;;").is_err());
        assert!(Via::parse(b"SIP/7.0/UDP host").is_err());
        assert!(Via::parse(b"SIP/2.0/UDP").is_err());
        assert!(Via::parse(b"SIP/2.0/UDP host;ttl=300").is_err());
        assert!(Via::parse(b"SIP/2.0/UDP host:99999").is_err());
        assert!(Via::parse(b"").is_err());
    }

    #[test]
    fn build_and_print() {
        let v = Via::new(
            Transport::Tcp,
            Host::Domain("pbx.example.com".into()),
            Some(5060),
            "z9hG4bKabc",
        )
        .with_rport();
        assert_eq!(
            &v.to_bytes()[..],
            b"SIP/2.0/TCP pbx.example.com:5060;branch=z9hG4bKabc;rport"
        );
        assert_eq!(Via::parse(&v.to_bytes()).unwrap(), v);
        assert!(Transport::Tls.is_reliable());
    }
}
