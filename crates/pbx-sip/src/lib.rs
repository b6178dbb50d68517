//! Sans-IO SIP message model: zero-copy parse and print, URIs, typed headers, stream framing.
//!
//! # Driving the crate
//!
//! * **UDP**: hand each datagram to [`Message::parse_datagram`] (octets beyond
//!   Content-Length are discarded, RFC 3261 §18.3).
//! * **TCP/TLS**: append received octets to a `BytesMut` and pull [`framing::Frame`]s from a
//!   [`framing::StreamDecoder`]; parse each `Frame::Message` with [`Message::parse`]. Answer
//!   `KeepAlivePing` with a single CRLF (RFC 5626). A framing error closes the connection.
//! * Parsing is lenient where RFC 4475 says an element must not break: it checks framing,
//!   the start line and header-line syntax only. Header values are parsed lazily by the
//!   typed accessors (`via()`, `from()`, `cseq()`, `contacts()`, ...), which exist on
//!   [`Headers`], [`Request`], [`Response`] and [`Message`].
//! * The transaction user then calls [`Request::validate`] (or
//!   [`Request::validate_for_uas`] / [`Request::validate_for_proxy`], or
//!   [`Response::validate`]). Every [`ParseError`] says through [`ParseError::status`]
//!   which status to answer (400, 413, 415, 416, 420, 483, 505) or `None` to drop;
//!   responses are never answered.
//! * Build answers with [`Response::for_request`] and requests with [`Request::builder`].
//!   Print with `to_bytes()` / `write_to()`: header fields that were received and not
//!   changed are printed byte-identical, unknown ones included.
//!
//! ```
//! use bytes::Bytes;
//! use pbx_sip::{Message, Method, Response, StatusCode};
//!
//! let wire = Bytes::from_static(
//!     b"OPTIONS sip:pbx.example.com SIP/2.0\r\n\
//!       Via: SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bK74bf9;rport\r\n\
//!       From: <sip:201@pbx.example.com>;tag=9fxced76sl\r\n\
//!       To: <sip:pbx.example.com>\r\n\
//!       Call-ID: 3848276298220188511@192.0.2.7\r\n\
//!       CSeq: 1 OPTIONS\r\n\
//!       Max-Forwards: 70\r\n\
//!       Content-Length: 0\r\n\r\n",
//! );
//! let Message::Request(request) = Message::parse_datagram(wire.clone())? else { unreachable!() };
//! request.validate()?;
//! assert_eq!(request.method(), &Method::Options);
//! assert_eq!(request.top_via()?.rport, Some(None));
//! assert_eq!(request.to_bytes(), wire); // printed back byte-identical
//!
//! let answer = Response::for_request(&request, StatusCode::OK).with_to_tag("a6c85cf");
//! assert_eq!(answer.to()?.tag.as_deref(), Some(&b"a6c85cf"[..]));
//! # Ok::<(), pbx_sip::ParseError>(())
//! ```
//!
//! Values are `bytes::Bytes` slices of the received buffer (refcount only), never `String`:
//! non-UTF-8 octets are kept and forwarded as received. Nothing in this crate reads a
//! clock, touches a socket or spawns.

mod builder;
mod error;
pub mod framing;
mod header;
pub mod limits;
mod message;
mod method;
mod params;
pub mod scan;
mod status;
pub mod text;
mod typed;
mod uri;
mod validate;

pub use builder::RequestBuilder;
pub use error::{ParseError, ValueError};
pub use header::{HeaderName, Headers, Iter as HeaderIter};
pub use limits::Limits;
pub use message::{BodyFraming, Message, Request, Response, Version};
pub use method::Method;
pub use params::{ParamIter, Params};
pub use status::StatusCode;
pub use typed::{
    BRANCH_MAGIC_COOKIE, CSeq, Contact, ContactAddress, ContactAddressRef, ContactRef, Event,
    MAX_LIST_VALUES, MediaType, NameAddr, NameAddrRef, PushParams, PushParamsRef, QValue, Reason,
    Refresher, Replaces, RetryAfter, SessionExpires, SubscriptionState, Transport, Via, ViaRef,
};
pub use uri::{Host, HostRef, Scheme, SipUri, SipUriRef, TelUri, TelUriRef, Uri, UriRef};
pub use validate::Policy;
