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
