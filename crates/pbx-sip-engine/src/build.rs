//! Requests the transaction layer builds itself: the ACK for a non-2xx final response
//! (RFC 3261 §17.1.1.3) and CANCEL (§9.1).

use bytes::{BufMut, Bytes, BytesMut};
use pbx_sip::{HeaderName, Method, ParseError, Request, Response};

/// The ACK for a 300–699 response to `invite`: same Request-URI, Call-ID, From, CSeq number
/// and Route set as the INVITE, the To of the response (with its tag), and one Via: the
/// INVITE's top Via (so the ACK matches the server transaction).
pub(crate) fn ack_for_non_2xx(
    invite: &Request,
    response: &Response,
) -> Result<Request, ParseError> {
    let to = raw(response.headers(), HeaderName::To)?;
    derived(invite, Method::Ack, to)
}

/// The CANCEL for `invite` (§9.1): Request-URI, Call-ID, To, From, CSeq number, Route set and
/// the top Via (branch included) of the INVITE; method CANCEL.
pub(crate) fn cancel_for(invite: &Request) -> Result<Request, ParseError> {
    let to = raw(invite.headers(), HeaderName::To)?;
    derived(invite, Method::Cancel, to)
}

fn derived(invite: &Request, method: Method, to: Bytes) -> Result<Request, ParseError> {
    let via = invite.top_via()?;
    let cseq = invite.cseq()?;
    let mut request = Request::new(method.clone(), invite.uri().clone());
    let source = invite.headers();
    let from = raw(source, HeaderName::From)?;
    let call_id = raw(source, HeaderName::CallId)?;
    let headers = request.headers_mut();
    headers.push(HeaderName::Via, via.to_bytes());
    headers.push(HeaderName::MaxForwards, Bytes::from_static(b"70"));
    headers.push(HeaderName::From, from);
    headers.push(HeaderName::To, to);
    headers.push(HeaderName::CallId, call_id);
    let mut value = BytesMut::with_capacity(24);
    value.put_slice(cseq.seq.to_string().as_bytes());
    value.put_u8(b' ');
    value.put_slice(method.as_bytes());
    headers.push(HeaderName::CSeq, value.freeze());
    for route in source.get_all(&HeaderName::Route) {
        headers.push(HeaderName::Route, Bytes::copy_from_slice(route));
    }
    headers.push(HeaderName::ContentLength, Bytes::from_static(b"0"));
    Ok(request)
}

fn raw(headers: &pbx_sip::Headers, name: HeaderName) -> Result<Bytes, ParseError> {
    headers
        .get(&name)
        .map(Bytes::copy_from_slice)
        .ok_or(ParseError::MissingHeader(name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pbx_sip::{Message, StatusCode};

    fn invite() -> Request {
        let text = "INVITE sip:bob@biloxi.example SIP/2.0\r\n\
            Via: SIP/2.0/UDP pc33.atlanta.example;branch=z9hG4bKnashds8\r\n\
            Max-Forwards: 70\r\n\
            Route: <sip:p1.example;lr>\r\nRoute: <sip:p2.example;lr>\r\n\
            To: Bob <sip:bob@biloxi.example>\r\n\
            From: Alice <sip:alice@atlanta.example>;tag=1928301774\r\n\
            Call-ID: a84b4c76e66710\r\nCSeq: 314159 INVITE\r\n\
            Contact: <sip:alice@pc33.atlanta.example>\r\nContent-Length: 0\r\n\r\n";
        Message::parse(Bytes::from(text))
            .unwrap()
            .into_request()
            .unwrap()
    }

    #[test]
    fn ack_takes_to_from_response_and_keeps_routes() {
        let invite = invite();
        let response = Response::for_request(&invite, StatusCode::BUSY_HERE).with_to_tag("b7");
        let ack = ack_for_non_2xx(&invite, &response).unwrap();
        assert_eq!(*ack.method(), Method::Ack);
        assert_eq!(ack.uri(), invite.uri());
        assert_eq!(ack.to().unwrap().tag.as_deref(), Some(&b"b7"[..]));
        assert_eq!(ack.cseq().unwrap().seq, 314159);
        assert_eq!(ack.cseq().unwrap().method, Method::Ack);
        assert_eq!(ack.via().unwrap().len(), 1);
        assert_eq!(
            ack.top_via().unwrap().branch,
            invite.top_via().unwrap().branch
        );
        assert_eq!(ack.route().unwrap().len(), 2);
        ack.validate().unwrap();
    }

    #[test]
    fn cancel_mirrors_the_invite() {
        let invite = invite();
        let cancel = cancel_for(&invite).unwrap();
        assert_eq!(*cancel.method(), Method::Cancel);
        assert_eq!(cancel.cseq().unwrap().seq, 314159);
        assert_eq!(cancel.to().unwrap().tag, None);
        assert_eq!(cancel.from().unwrap(), invite.from().unwrap());
        assert_eq!(cancel.call_id().unwrap(), invite.call_id().unwrap());
        assert_eq!(cancel.top_via().unwrap(), invite.top_via().unwrap());
        cancel.validate().unwrap();
    }
}
