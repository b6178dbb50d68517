//! Building requests (UAC) and responses (UAS, RFC 3261 §8.2.6).

use bytes::{BufMut, Bytes, BytesMut};

use crate::header::HeaderName;
use crate::message::{Request, Response};
use crate::method::Method;
use crate::status::StatusCode;
use crate::typed::{NameAddr, Via};
use crate::uri::Uri;

impl Response {
    /// A response to `request` per RFC 3261 §8.2.6: copies every Via (in order), From, To,
    /// Call-ID and CSeq (and Timestamp on 100), adds `Content-Length: 0`, canonical reason.
    /// Add the To tag with [`Response::with_to_tag`] (a UAS must for anything but 100).
    pub fn for_request(request: &Request, status: StatusCode) -> Response {
        let mut response = Response::new(status);
        let h = response.headers_mut();
        for (name, owner, value) in request.headers().iter_sourced() {
            let copy = match name {
                HeaderName::Via
                | HeaderName::From
                | HeaderName::To
                | HeaderName::CallId
                | HeaderName::CSeq => true,
                HeaderName::Timestamp => status == StatusCode::TRYING,
                _ => false,
            };
            if copy {
                h.push(name.clone(), crate::scan::slice_of(owner, value));
            }
        }
        h.push(HeaderName::ContentLength, Bytes::from_static(b"0"));
        response
    }

    /// Adds `;tag=<tag>` to To unless it already carries a tag.
    pub fn with_to_tag(mut self, tag: impl AsRef<[u8]>) -> Response {
        self.set_to_tag(tag);
        self
    }

    /// Adds `;tag=<tag>` to To unless it already carries a tag. The rest of the To value is
    /// kept as it was.
    pub fn set_to_tag(&mut self, tag: impl AsRef<[u8]>) {
        // The borrowed view makes the same checks as `to()` without copying the value.
        let tagged = match self.to_ref() {
            Ok(to) => to.tag.is_some(),
            Err(_) => return,
        };
        if tagged {
            return;
        }
        let Some(value) = self.headers().get(&HeaderName::To) else {
            return;
        };
        let mut v = BytesMut::with_capacity(value.len() + 5 + tag.as_ref().len());
        v.put_slice(value);
        v.put_slice(b";tag=");
        v.put_slice(tag.as_ref());
        self.headers_mut().set(HeaderName::To, v.freeze());
    }
}

impl Request {
    /// Starts a UAC request.
    pub fn builder(method: Method, uri: Uri) -> RequestBuilder {
        RequestBuilder {
            request: Request::new(method, uri),
            cseq: None,
            max_forwards: Some(70),
            body: None,
        }
    }

    /// Adds a Via on top (proxies and UACs).
    pub fn push_via(&mut self, via: &Via) {
        self.headers_mut()
            .insert_first(HeaderName::Via, via.to_bytes());
    }

    /// Removes the topmost Via value and returns it.
    pub fn pop_via(&mut self) -> Option<Bytes> {
        self.headers_mut().remove_first_value(&HeaderName::Via)
    }

    /// Replaces every field named `name` by one with `value`.
    pub fn set_header(&mut self, name: HeaderName, value: impl Into<Bytes>) {
        self.headers_mut().set(name, value);
    }
}

impl Response {
    /// Removes the topmost Via value (a proxy forwarding a response upstream).
    pub fn pop_via(&mut self) -> Option<Bytes> {
        self.headers_mut().remove_first_value(&HeaderName::Via)
    }

    /// Replaces every field named `name` by one with `value`.
    pub fn set_header(&mut self, name: HeaderName, value: impl Into<Bytes>) {
        self.headers_mut().set(name, value);
    }
}

/// Builds a request in RFC 3261 §8.1.1 order: Via, Max-Forwards, From, To, Call-ID, CSeq,
/// Contact, then other fields, Content-Type and Content-Length.
#[derive(Debug, Clone)]
#[must_use]
pub struct RequestBuilder {
    request: Request,
    cseq: Option<u32>,
    max_forwards: Option<u8>,
    body: Option<(Bytes, Bytes)>,
}

impl RequestBuilder {
    /// Adds a Via (call once per hop, top first).
    pub fn via(mut self, via: &Via) -> Self {
        self.request
            .headers_mut()
            .push(HeaderName::Via, via.to_bytes());
        self
    }

    /// Sets From.
    pub fn from(mut self, from: &NameAddr) -> Self {
        self.request
            .headers_mut()
            .set(HeaderName::From, from.to_bytes());
        self
    }

    /// Sets To.
    pub fn to(mut self, to: &NameAddr) -> Self {
        self.request
            .headers_mut()
            .set(HeaderName::To, to.to_bytes());
        self
    }

    /// Sets Call-ID.
    pub fn call_id(mut self, call_id: impl Into<Bytes>) -> Self {
        self.request.headers_mut().set(HeaderName::CallId, call_id);
        self
    }

    /// Sets the CSeq number (the method is the request's).
    pub fn cseq(mut self, seq: u32) -> Self {
        self.cseq = Some(seq);
        self
    }

    /// Sets Max-Forwards (default 70; `None` leaves it out).
    pub fn max_forwards(mut self, hops: Option<u8>) -> Self {
        self.max_forwards = hops;
        self
    }

    /// Adds a Contact.
    pub fn contact(mut self, contact: &NameAddr) -> Self {
        self.request
            .headers_mut()
            .push(HeaderName::Contact, contact.to_bytes());
        self
    }

    /// Adds a Route.
    pub fn route(mut self, route: &NameAddr) -> Self {
        self.request
            .headers_mut()
            .push(HeaderName::Route, route.to_bytes());
        self
    }

    /// Adds any header field.
    pub fn header(mut self, name: HeaderName, value: impl Into<Bytes>) -> Self {
        self.request.headers_mut().push(name, value);
        self
    }

    /// Sets the body and its Content-Type.
    pub fn body(mut self, content_type: impl Into<Bytes>, body: impl Into<Bytes>) -> Self {
        self.body = Some((content_type.into(), body.into()));
        self
    }

    /// The request, with Content-Length set.
    pub fn build(self) -> Request {
        let RequestBuilder {
            request: mut r,
            cseq,
            max_forwards,
            body,
        } = self;
        let method = r.method().clone();
        let h = r.headers_mut();
        if let Some(hops) = max_forwards {
            let at_top = HeaderName::MaxForwards;
            h.set(at_top, hops.to_string());
        }
        if let Some(seq) = cseq {
            let mut v = BytesMut::with_capacity(24);
            crate::text::put_u64(&mut v, u64::from(seq));
            v.put_u8(b' ');
            v.put_slice(method.as_bytes());
            h.set(HeaderName::CSeq, v.freeze());
        }
        match body {
            Some((content_type, body)) => {
                h.set(HeaderName::ContentType, content_type);
                r.set_body(body);
            }
            None => h.set(HeaderName::ContentLength, Bytes::from_static(b"0")),
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Message;
    use crate::typed::Transport;
    use crate::uri::Host;

    fn invite() -> Request {
        let uri: Uri = "sip:bob@example.com".parse().unwrap();
        let from = NameAddr::parse(b"\"Alice\" <sip:alice@example.com>;tag=a1").unwrap();
        let to = NameAddr::parse(b"<sip:bob@example.com>").unwrap();
        let via = Via::new(
            Transport::Udp,
            Host::Domain("pc33.example.com".into()),
            None,
            "z9hG4bK776asdhds",
        );
        Request::builder(Method::Invite, uri)
            .via(&via)
            .from(&from)
            .to(&to)
            .call_id("a84b4c76e66710@pc33.example.com")
            .cseq(314159)
            .contact(&NameAddr::parse(b"<sip:alice@pc33.example.com>").unwrap())
            .body("application/sdp", "v=0\r\n")
            .build()
    }

    #[test]
    fn builder_output_parses_back() {
        let r = invite();
        let bytes = r.to_bytes();
        let parsed = Message::parse(bytes.clone())
            .unwrap()
            .into_request()
            .unwrap();
        assert_eq!(parsed.cseq().unwrap().seq, 314159);
        assert_eq!(parsed.cseq().unwrap().method, Method::Invite);
        assert_eq!(parsed.max_forwards().unwrap(), Some(70));
        assert_eq!(parsed.content_length().unwrap(), Some(5));
        assert_eq!(&parsed.body()[..], b"v=0\r\n");
        assert_eq!(parsed.to_bytes(), bytes);
    }

    #[test]
    fn response_copies_dialog_headers() {
        let mut r = invite();
        r.push_via(&Via::new(
            Transport::Tcp,
            Host::Domain("proxy".into()),
            Some(5060),
            "z9hG4bKp",
        ));
        let resp = Response::for_request(&r, StatusCode::RINGING).with_to_tag("b2");
        assert_eq!(resp.via().unwrap().len(), 2);
        assert_eq!(
            resp.top_via().unwrap().branch.as_deref(),
            Some(&b"z9hG4bKp"[..])
        );
        assert_eq!(resp.to().unwrap().tag.as_deref(), Some(&b"b2"[..]));
        assert_eq!(resp.from().unwrap().tag.as_deref(), Some(&b"a1"[..]));
        assert_eq!(resp.call_id().unwrap(), r.call_id().unwrap());
        assert_eq!(resp.cseq().unwrap(), r.cseq().unwrap());
        assert_eq!(resp.content_length().unwrap(), Some(0));
        assert!(resp.contacts().unwrap().is_empty());
        let again = resp.clone().with_to_tag("other");
        assert_eq!(again.to().unwrap().tag.as_deref(), Some(&b"b2"[..]));
        let printed = resp.to_bytes();
        assert!(printed.starts_with(
            b"SIP/2.0 180 Ringing\r\nVia: SIP/2.0/TCP proxy:5060;branch=z9hG4bKp\r\n"
        ));
        let mut r2 = r.clone();
        assert_eq!(
            r2.pop_via().unwrap(),
            "SIP/2.0/TCP proxy:5060;branch=z9hG4bKp"
        );
        assert_eq!(r2.via().unwrap().len(), 1);
    }
}
