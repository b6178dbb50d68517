//! Transaction matching keys (RFC 3261 §17.1.3 and §17.2.3).

use std::net::IpAddr;

use bytes::Bytes;
use pbx_sip::{Host, Method, ParseError, Request, Response, Via};

/// Client transactions: the branch of the top Via plus the CSeq method (so a CANCEL, which
/// shares the INVITE's branch, is its own transaction).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ClientKey {
    branch: Bytes,
    method: Method,
}

impl ClientKey {
    pub(crate) fn new(branch: Bytes, method: Method) -> Self {
        Self { branch, method }
    }

    /// The key a response matches: its top Via branch and CSeq method.
    pub(crate) fn of_response(response: &Response) -> Result<Option<Self>, ParseError> {
        let via = response.top_via()?;
        let cseq = response.cseq()?;
        Ok(via.branch.map(|branch| Self::new(branch, cseq.method)))
    }
}

/// Server transactions.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum ServerKey {
    /// RFC 3261: branch (with the magic cookie), sent-by, and the method (ACK counted as
    /// INVITE).
    Rfc3261 {
        branch: Bytes,
        sent_by: (SentByHost, Option<u16>),
        method: Method,
    },
    /// RFC 2543 fallback (boxed: rare, and three times the size of the usual key, which
    /// every server transaction stores twice).
    Rfc2543(Box<Rfc2543Key>),
}

/// The RFC 2543 key: Request-URI, From tag, Call-ID, CSeq number, top Via, method (ACK
/// counted as INVITE), and the To tag except for INVITE/ACK (an ACK carries the tag of our
/// response, checked separately).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Rfc2543Key {
    request_uri: Bytes,
    from_tag: Option<Bytes>,
    call_id: Bytes,
    cseq: u32,
    top_via: Bytes,
    method: Method,
    to_tag: Option<Bytes>,
}

/// The sent-by host of a server key: an address as such (no text per request), a name
/// compared case-insensitively (lowercased only when it has capitals).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum SentByHost {
    Ip(IpAddr),
    Name(Bytes),
}

impl SentByHost {
    fn of(host: &Host) -> Self {
        match host {
            Host::Ipv4(ip) => Self::Ip(IpAddr::V4(*ip)),
            Host::Ipv6(ip) => Self::Ip(IpAddr::V6(*ip)),
            Host::Domain(name) if name.iter().any(u8::is_ascii_uppercase) => {
                Self::Name(Bytes::from(name.to_ascii_lowercase()))
            }
            Host::Domain(name) => Self::Name(name.clone()),
        }
    }
}

impl ServerKey {
    /// The same key owning copies of its bytes. A key made by [`ServerKey::of_request`]
    /// slices the received datagram, so a stored key would keep the whole message alive
    /// (~0.5–1 KB) for the transaction's life; the copies are a few dozen bytes.
    pub(crate) fn detached(&self) -> Self {
        let copy = |bytes: &Bytes| Bytes::copy_from_slice(bytes);
        match self {
            Self::Rfc3261 {
                branch,
                sent_by,
                method,
            } => Self::Rfc3261 {
                branch: copy(branch),
                sent_by: (
                    match &sent_by.0 {
                        SentByHost::Name(name) => SentByHost::Name(copy(name)),
                        ip @ SentByHost::Ip(_) => ip.clone(),
                    },
                    sent_by.1,
                ),
                method: method.clone(),
            },
            Self::Rfc2543(key) => Self::Rfc2543(Box::new(Rfc2543Key {
                request_uri: copy(&key.request_uri),
                from_tag: key.from_tag.as_ref().map(copy),
                call_id: copy(&key.call_id),
                cseq: key.cseq,
                top_via: copy(&key.top_via),
                method: key.method.clone(),
                to_tag: key.to_tag.as_ref().map(copy),
            })),
        }
    }

    /// The key of a request whose top Via is `via` (already stamped by the transport).
    pub(crate) fn of_request(request: &Request, via: &Via) -> Result<Self, ParseError> {
        let method = match request.method() {
            Method::Ack => Method::Invite,
            other => other.clone(),
        };
        if via.is_rfc3261_branch()
            && let Some(branch) = via.branch.clone()
        {
            return Ok(ServerKey::Rfc3261 {
                branch,
                sent_by: (SentByHost::of(&via.host), via.port),
                method,
            });
        }
        let cseq = request.cseq()?;
        let to_tag = match method {
            Method::Invite => None,
            _ => request.to()?.tag,
        };
        Ok(ServerKey::Rfc2543(Box::new(Rfc2543Key {
            request_uri: request.uri().to_bytes(),
            from_tag: request.from()?.tag,
            call_id: request.call_id()?,
            cseq: cseq.seq,
            top_via: via.to_bytes(),
            method,
            to_tag,
        })))
    }

    /// The same key for another method (CANCEL → the INVITE it cancels).
    pub(crate) fn with_method(&self, method: Method) -> Self {
        let mut key = self.clone();
        match &mut key {
            ServerKey::Rfc3261 { method: m, .. } => *m = method,
            ServerKey::Rfc2543(key) => {
                if method == Method::Invite {
                    key.to_tag = None;
                }
                key.method = method;
            }
        }
        key
    }

    pub(crate) fn is_rfc2543(&self) -> bool {
        matches!(self, ServerKey::Rfc2543 { .. })
    }
}

/// Identifies the ACK for a 2xx (its own branch, so no transaction key): Call-ID, From tag,
/// To tag and CSeq number of the INVITE's dialog.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct AckKey {
    call_id: Bytes,
    from_tag: Option<Bytes>,
    to_tag: Option<Bytes>,
    cseq: u32,
}

impl AckKey {
    /// The same key owning copies of its bytes (see [`ServerKey::detached`]).
    pub(crate) fn detached(&self) -> Self {
        let copy = |bytes: &Bytes| Bytes::copy_from_slice(bytes);
        Self {
            call_id: copy(&self.call_id),
            from_tag: self.from_tag.as_ref().map(copy),
            to_tag: self.to_tag.as_ref().map(copy),
            cseq: self.cseq,
        }
    }

    pub(crate) fn of_request(request: &Request) -> Result<Self, ParseError> {
        Ok(Self {
            call_id: request.call_id()?,
            from_tag: request.from()?.tag,
            to_tag: request.to()?.tag,
            cseq: request.cseq()?.seq,
        })
    }

    pub(crate) fn of_response(response: &Response) -> Result<Self, ParseError> {
        Ok(Self {
            call_id: response.call_id()?,
            from_tag: response.from()?.tag,
            to_tag: response.to()?.tag,
            cseq: response.cseq()?.seq,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stored key must not keep the received datagram alive (a completed UDP transaction
    /// lives 32 s after its request is dropped).
    #[test]
    fn a_detached_key_shares_no_bytes_with_the_datagram() {
        let datagram = Bytes::from_static(b"z9hG4bK-branch-1 host.example.com");
        let key = ServerKey::Rfc3261 {
            branch: datagram.slice(0..16),
            sent_by: (SentByHost::Name(datagram.slice(17..)), Some(5060)),
            method: Method::Register,
        };
        let detached = key.detached();
        assert_eq!(detached, key);
        let within = |bytes: &Bytes| datagram.as_ptr_range().contains(&bytes.as_ptr());
        let ServerKey::Rfc3261 {
            branch, sent_by, ..
        } = &detached
        else {
            panic!("same variant");
        };
        let SentByHost::Name(host) = &sent_by.0 else {
            panic!("a name");
        };
        assert!(!within(branch) && !within(host));
    }

    #[test]
    fn sent_by_names_compare_without_case_and_addresses_as_addresses() {
        let key = |via: &str| {
            let text = format!(
                "OPTIONS sip:a@b SIP/2.0\r\nVia: {via}\r\nFrom: <sip:x@y>;tag=1\r\n\
                 To: <sip:a@b>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n\
                 Content-Length: 0\r\n\r\n"
            );
            let request = pbx_sip::Message::parse(Bytes::from(text))
                .unwrap()
                .into_request()
                .unwrap();
            let via = request.top_via().unwrap();
            ServerKey::of_request(&request, &via).unwrap()
        };
        assert_eq!(
            key("SIP/2.0/UDP Host.Example.COM:5060;branch=z9hG4bK1"),
            key("SIP/2.0/UDP host.example.com:5060;branch=z9hG4bK1")
        );
        assert_ne!(
            key("SIP/2.0/UDP host.example.com:5060;branch=z9hG4bK1"),
            key("SIP/2.0/UDP host.example.com:5062;branch=z9hG4bK1")
        );
        assert_eq!(
            key("SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bK1"),
            key("SIP/2.0/UDP [2001:DB8:0::1]:5060;branch=z9hG4bK1")
        );
    }
}
