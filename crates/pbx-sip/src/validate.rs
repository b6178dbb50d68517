//! Semantic checks the transaction user runs after a lenient parse: mandatory and singleton
//! headers, CSeq/method agreement, scalar ranges, URI scheme, Require and Content-Type.

use bytes::Bytes;

use crate::error::ParseError;
use crate::header::HeaderName;
use crate::message::{Request, Response};
use crate::method::Method;
use crate::uri::Uri;

/// What this element supports, for [`Request::validate_for_uas`] and
/// [`Request::validate_for_proxy`].
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Option tags this element supports (compared case-insensitively).
    pub supported_extensions: Vec<String>,
    /// Content types accepted in request bodies, as `type/subtype`; empty accepts any.
    pub accepted_content_types: Vec<String>,
    /// Whether `tel:` Request-URIs are served (sip: and sips: always are).
    pub accept_tel_uri: bool,
}

const SINGLETONS: [HeaderName; 9] = [
    HeaderName::From,
    HeaderName::To,
    HeaderName::CallId,
    HeaderName::CSeq,
    HeaderName::MaxForwards,
    HeaderName::ContentLength,
    HeaderName::ContentType,
    HeaderName::Expires,
    HeaderName::MinExpires,
];

impl Request {
    /// RFC 3261 §8.2 checks every element makes: Via, From, To, Call-ID and CSeq present and
    /// well formed; no duplicated singleton; CSeq method equal to the request method; no
    /// `?headers` in a SIP Request-URI;
    /// Max-Forwards, Expires and Contact values in range. Max-Forwards may be absent (RFC
    /// 2543 peers). Errors map to 400 through [`ParseError::status`].
    pub fn validate(&self) -> Result<(), ParseError> {
        // RFC 3261 §19.1.1: headers are not allowed in a Request-URI; a proxy must never
        // forward them (RFC 4475 §3.1.2.11), so reject rather than guess.
        if let Uri::Sip(uri) = self.uri()
            && uri.headers.is_some()
        {
            return Err(ParseError::InvalidRequestUri);
        }
        check_common(self.headers())?;
        let cseq = self.cseq()?;
        if cseq.method != *self.method() {
            return Err(ParseError::CSeqMethodMismatch);
        }
        self.max_forwards()?;
        self.expires()?;
        // The borrowed views make the same checks as the owned accessors (tests/views.rs
        // holds them to it over the RFC corpora and PROTOS) without copying anything.
        self.contacts_ref()?;
        self.route_ref()?;
        Ok(())
    }

    /// [`Request::validate`] plus the checks of a UAS (RFC 3261 §8.2.2–8.2.3): Request-URI
    /// scheme (416), Require (420, except for ACK and CANCEL), Content-Type (415).
    pub fn validate_for_uas(&self, policy: &Policy) -> Result<(), ParseError> {
        self.validate()?;
        self.validate_uas_only(policy)
    }

    /// The checks [`Request::validate_for_uas`] adds to [`Request::validate`], for a caller
    /// that knows the request already passed `validate` (a request the transaction layer
    /// handed up: it validates every request it receives).
    pub fn validate_uas_only(&self, policy: &Policy) -> Result<(), ParseError> {
        match self.uri() {
            Uri::Sip(_) => {}
            Uri::Tel(_) if policy.accept_tel_uri => {}
            _ => return Err(ParseError::UnsupportedUriScheme),
        }
        if !matches!(self.method(), Method::Ack | Method::Cancel) {
            let unsupported = unsupported(self.require()?, policy);
            if !unsupported.is_empty() {
                return Err(ParseError::BadExtension { unsupported });
            }
        }
        if !self.body().is_empty() && !policy.accepted_content_types.is_empty() {
            let accepted = match self.content_type()? {
                Some(ct) => policy.accepted_content_types.iter().any(|t| {
                    let (kind, sub) = t.split_once('/').unwrap_or((t.as_str(), ""));
                    ct.is(kind, sub)
                }),
                None => false,
            };
            if !accepted {
                return Err(ParseError::UnsupportedMediaType);
            }
        }
        Ok(())
    }

    /// [`Request::validate`] plus the checks of a proxy (RFC 3261 §16.3): Max-Forwards of 0
    /// (483; OPTIONS may instead be answered locally) and Proxy-Require (420).
    pub fn validate_for_proxy(&self, policy: &Policy) -> Result<(), ParseError> {
        self.validate()?;
        if self.max_forwards()? == Some(0) {
            return Err(ParseError::TooManyHops);
        }
        let unsupported = unsupported(self.proxy_require()?, policy);
        if !unsupported.is_empty() {
            return Err(ParseError::BadExtension { unsupported });
        }
        Ok(())
    }

    /// Require option tags not in `policy.supported_extensions` (the Unsupported list of a
    /// 420).
    pub fn unsupported_requirements(&self, policy: &Policy) -> Result<Vec<Bytes>, ParseError> {
        Ok(unsupported(self.require()?, policy))
    }
}

impl Response {
    /// Checks a response before matching it to a transaction: Via, From, To, Call-ID, CSeq
    /// present and well formed, no duplicated singleton, scalars in range. A response that
    /// fails is dropped (never answered).
    pub fn validate(&self) -> Result<(), ParseError> {
        check_common(self.headers())?;
        self.cseq()?;
        self.retry_after()?;
        self.expires()?;
        Ok(())
    }
}

fn check_common(h: &crate::header::Headers) -> Result<(), ParseError> {
    for name in &SINGLETONS {
        if h.count(name) > 1 {
            return Err(ParseError::DuplicateSingletonHeader(name.clone()));
        }
    }
    if h.via_ref()?.is_empty() {
        return Err(ParseError::MissingHeader(HeaderName::Via));
    }
    h.from_ref()?;
    h.to_ref()?;
    h.call_id_ref()?;
    h.content_type()?;
    Ok(())
}

fn unsupported(required: Vec<Bytes>, policy: &Policy) -> Vec<Bytes> {
    required
        .into_iter()
        .filter(|tag| {
            !policy
                .supported_extensions
                .iter()
                .any(|s| s.as_bytes().eq_ignore_ascii_case(tag))
        })
        .collect()
}
