//! Transaction matching keys (RFC 3261 §17.1.3 and §17.2.3).

use bytes::Bytes;
use pbx_sip::{Method, ParseError, Request, Response, Via};

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
        sent_by: (Bytes, Option<u16>),
        method: Method,
    },
    /// RFC 2543 fallback: Request-URI, From tag, Call-ID, CSeq number, top Via, method (ACK
    /// counted as INVITE), and the To tag except for INVITE/ACK (an ACK carries the tag of
    /// our response, checked separately).
    Rfc2543 {
        request_uri: Bytes,
        from_tag: Option<Bytes>,
        call_id: Bytes,
        cseq: u32,
        top_via: Bytes,
        method: Method,
        to_tag: Option<Bytes>,
    },
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
                sent_by: (copy(&sent_by.0), sent_by.1),
                method: method.clone(),
            },
            Self::Rfc2543 {
                request_uri,
                from_tag,
                call_id,
                cseq,
                top_via,
                method,
                to_tag,
            } => Self::Rfc2543 {
                request_uri: copy(request_uri),
                from_tag: from_tag.as_ref().map(copy),
                call_id: copy(call_id),
                cseq: *cseq,
                top_via: copy(top_via),
                method: method.clone(),
                to_tag: to_tag.as_ref().map(copy),
            },
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
            let host = via.host.to_string().to_ascii_lowercase();
            return Ok(ServerKey::Rfc3261 {
                branch,
                sent_by: (Bytes::from(host), via.port),
                method,
            });
        }
        let cseq = request.cseq()?;
        let to_tag = match method {
            Method::Invite => None,
            _ => request.to()?.tag,
        };
        Ok(ServerKey::Rfc2543 {
            request_uri: request.uri().to_bytes(),
            from_tag: request.from()?.tag,
            call_id: request.call_id()?,
            cseq: cseq.seq,
            top_via: via.to_bytes(),
            method,
            to_tag,
        })
    }

    /// The same key for another method (CANCEL → the INVITE it cancels).
    pub(crate) fn with_method(&self, method: Method) -> Self {
        let mut key = self.clone();
        match &mut key {
            ServerKey::Rfc3261 { method: m, .. } | ServerKey::Rfc2543 { method: m, .. } => {
                *m = method;
            }
        }
        if let ServerKey::Rfc2543 { to_tag, method, .. } = &mut key
            && *method == Method::Invite
        {
            *to_tag = None;
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
            sent_by: (datagram.slice(17..), Some(5060)),
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
        assert!(!within(branch) && !within(&sent_by.0));
    }
}
