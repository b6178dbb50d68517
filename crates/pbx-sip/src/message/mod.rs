//! Messages: [`Message`], [`Request`], [`Response`], parsing and printing.

mod parse;

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::ParseError;
use crate::header::{HeaderName, Headers};
use crate::limits::Limits;
use crate::method::Method;
use crate::status::StatusCode;
use crate::typed::typed_accessors;
use crate::uri::Uri;

/// How the body is delimited when parsing a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// The buffer holds exactly one message (stream frame): Content-Length, when present,
    /// must match the octets after the header section exactly.
    Exact,
    /// A UDP datagram (RFC 3261 §18.3): octets beyond Content-Length are discarded; without
    /// Content-Length the body is the rest of the datagram; a Content-Length larger than the
    /// datagram is an error.
    Datagram,
}

/// The SIP version. Only 2.0 is accepted; others fail with
/// [`ParseError::UnsupportedVersion`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Version {
    /// `SIP/2.0`.
    #[default]
    Sip2,
}

impl Version {
    /// `SIP/2.0`.
    pub fn as_bytes(self) -> &'static [u8] {
        b"SIP/2.0"
    }
}

/// A request or a response.
#[derive(Debug, Clone)]
pub enum Message {
    /// A request.
    Request(Request),
    /// A response.
    Response(Response),
}

/// A SIP request.
#[derive(Debug, Clone)]
pub struct Request {
    method: Method,
    uri: Uri,
    version: Version,
    headers: Headers,
    body: Bytes,
    /// The start line as received, printed back while method and URI are unchanged.
    start_line: Option<Bytes>,
}

/// A SIP response.
#[derive(Debug, Clone)]
pub struct Response {
    status: StatusCode,
    reason: Bytes,
    version: Version,
    headers: Headers,
    body: Bytes,
    start_line: Option<Bytes>,
}

impl Message {
    /// Parses one complete message (a stream frame) with default [`Limits`]. Content-Length,
    /// when present, must match the body exactly; when absent the body is the rest of the
    /// buffer (streams must enforce its presence: the framer does).
    pub fn parse(buf: Bytes) -> Result<Message, ParseError> {
        parse::parse(buf, &Limits::DEFAULT, BodyFraming::Exact)
    }

    /// Parses a UDP datagram with default [`Limits`] (see [`BodyFraming::Datagram`]).
    pub fn parse_datagram(buf: Bytes) -> Result<Message, ParseError> {
        parse::parse(buf, &Limits::DEFAULT, BodyFraming::Datagram)
    }

    /// Parses with explicit limits and body framing.
    pub fn parse_with(
        buf: Bytes,
        limits: &Limits,
        framing: BodyFraming,
    ) -> Result<Message, ParseError> {
        parse::parse(buf, limits, framing)
    }

    /// The header fields.
    pub fn headers(&self) -> &Headers {
        match self {
            Message::Request(r) => &r.headers,
            Message::Response(r) => &r.headers,
        }
    }

    /// The header fields, mutable.
    pub fn headers_mut(&mut self) -> &mut Headers {
        match self {
            Message::Request(r) => &mut r.headers,
            Message::Response(r) => &mut r.headers,
        }
    }

    /// The body.
    pub fn body(&self) -> &Bytes {
        match self {
            Message::Request(r) => &r.body,
            Message::Response(r) => &r.body,
        }
    }

    /// Whether this is a request.
    pub fn is_request(&self) -> bool {
        matches!(self, Message::Request(_))
    }

    /// The request, if this is one.
    pub fn as_request(&self) -> Option<&Request> {
        match self {
            Message::Request(r) => Some(r),
            Message::Response(_) => None,
        }
    }

    /// The response, if this is one.
    pub fn as_response(&self) -> Option<&Response> {
        match self {
            Message::Response(r) => Some(r),
            Message::Request(_) => None,
        }
    }

    /// The request, if this is one (owned).
    pub fn into_request(self) -> Option<Request> {
        match self {
            Message::Request(r) => Some(r),
            Message::Response(_) => None,
        }
    }

    /// The response, if this is one (owned).
    pub fn into_response(self) -> Option<Response> {
        match self {
            Message::Response(r) => Some(r),
            Message::Request(_) => None,
        }
    }

    /// Prints the message.
    pub fn write_to(&self, out: &mut BytesMut) {
        match self {
            Message::Request(r) => r.write_to(out),
            Message::Response(r) => r.write_to(out),
        }
    }

    /// The printed message.
    pub fn to_bytes(&self) -> Bytes {
        match self {
            Message::Request(r) => r.to_bytes(),
            Message::Response(r) => r.to_bytes(),
        }
    }

    fn hdrs(&self) -> &Headers {
        self.headers()
    }

    typed_accessors!();
}

impl From<Request> for Message {
    fn from(r: Request) -> Self {
        Message::Request(r)
    }
}

impl From<Response> for Message {
    fn from(r: Response) -> Self {
        Message::Response(r)
    }
}

impl Request {
    /// A request with no header fields and an empty body.
    pub fn new(method: Method, uri: Uri) -> Request {
        Request {
            method,
            uri,
            version: Version::Sip2,
            headers: Headers::new(),
            body: Bytes::new(),
            start_line: None,
        }
    }

    /// The method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The Request-URI.
    pub fn uri(&self) -> &Uri {
        &self.uri
    }

    /// The SIP version.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The header fields.
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// The header fields, mutable.
    pub fn headers_mut(&mut self) -> &mut Headers {
        &mut self.headers
    }

    /// The body.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// Replaces the method.
    pub fn set_method(&mut self, method: Method) {
        self.method = method;
        self.start_line = None;
    }

    /// Replaces the Request-URI.
    pub fn set_uri(&mut self, uri: Uri) {
        self.uri = uri;
        self.start_line = None;
    }

    /// Replaces the body and sets Content-Length to its length.
    pub fn set_body(&mut self, body: impl Into<Bytes>) {
        self.body = body.into();
        self.headers
            .set(HeaderName::ContentLength, self.body.len().to_string());
    }

    /// Prints the request.
    pub fn write_to(&self, out: &mut BytesMut) {
        match &self.start_line {
            Some(line) => out.put_slice(line),
            None => {
                out.put_slice(self.method.as_bytes());
                out.put_u8(b' ');
                self.uri.write_to(out);
                out.put_u8(b' ');
                out.put_slice(self.version.as_bytes());
            }
        }
        out.put_slice(b"\r\n");
        self.headers.write_to(out);
        out.put_slice(b"\r\n");
        out.put_slice(&self.body);
    }

    /// The printed request.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(128 + self.headers.printed_len() + self.body.len());
        self.write_to(&mut out);
        out.freeze()
    }

    pub(crate) fn from_parts(
        method: Method,
        uri: Uri,
        headers: Headers,
        body: Bytes,
        start_line: Option<Bytes>,
    ) -> Request {
        Request {
            method,
            uri,
            version: Version::Sip2,
            headers,
            body,
            start_line,
        }
    }

    fn hdrs(&self) -> &Headers {
        &self.headers
    }

    typed_accessors!();
}

impl Response {
    /// A response with the canonical reason phrase, no header fields and no body.
    pub fn new(status: StatusCode) -> Response {
        Response {
            status,
            reason: Bytes::from_static(status.canonical_reason().as_bytes()),
            version: Version::Sip2,
            headers: Headers::new(),
            body: Bytes::new(),
            start_line: None,
        }
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The reason phrase as received (any octets, possibly empty). (`reason()` is the
    /// RFC 3326 Reason header, as on requests.)
    pub fn reason_phrase(&self) -> &Bytes {
        &self.reason
    }

    /// The SIP version.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The header fields.
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// The header fields, mutable.
    pub fn headers_mut(&mut self) -> &mut Headers {
        &mut self.headers
    }

    /// The body.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// Replaces the status code and reason phrase.
    pub fn set_status(&mut self, status: StatusCode, reason: impl Into<Bytes>) {
        self.status = status;
        self.reason = reason.into();
        self.start_line = None;
    }

    /// Replaces the body and sets Content-Length to its length.
    pub fn set_body(&mut self, body: impl Into<Bytes>) {
        self.body = body.into();
        self.headers
            .set(HeaderName::ContentLength, self.body.len().to_string());
    }

    /// Prints the response.
    pub fn write_to(&self, out: &mut BytesMut) {
        match &self.start_line {
            Some(line) => out.put_slice(line),
            None => {
                out.put_slice(self.version.as_bytes());
                out.put_u8(b' ');
                crate::text::put_u64(out, u64::from(self.status.0));
                out.put_u8(b' ');
                out.put_slice(&self.reason);
            }
        }
        out.put_slice(b"\r\n");
        self.headers.write_to(out);
        out.put_slice(b"\r\n");
        out.put_slice(&self.body);
    }

    /// The printed response.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(64 + self.headers.printed_len() + self.body.len());
        self.write_to(&mut out);
        out.freeze()
    }

    pub(crate) fn from_parts(
        status: StatusCode,
        reason: Bytes,
        headers: Headers,
        body: Bytes,
        start_line: Option<Bytes>,
    ) -> Response {
        Response {
            status,
            reason,
            version: Version::Sip2,
            headers,
            body,
            start_line,
        }
    }

    fn hdrs(&self) -> &Headers {
        &self.headers
    }

    typed_accessors!();
}
