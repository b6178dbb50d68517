//! SIP building blocks of the engine: where a B-leg goes, our Via and Contact, and the
//! headers carried from one leg to the other.

use std::net::SocketAddr;

use bytes::Bytes;
use pbx_sip::{HeaderName, Headers, Host, NameAddr, Transport, Uri, Via};
use pbx_sip_engine::{Endpoint, Target};

/// One B-leg to try: a registered binding of the callee (or, for routing, a trunk).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForkTarget {
    /// The Request-URI: the binding's registered Contact (or the trunk's request URI).
    pub request_uri: Uri,
    /// Where the INVITE goes: the binding's flow (its NAT-side source address and connection),
    /// never the host of a private Contact.
    pub target: Target,
    /// Our address facing this target (top Via sent-by and Contact).
    pub local: SocketAddr,
    /// Route set to put on the INVITE (a registration's Path), top first.
    pub route: Vec<NameAddr>,
    /// The To header of the B-leg (the callee's AOR, without tag).
    pub to: NameAddr,
    /// A label for logs and the CDR (`answered_by`): the binding key or trunk name.
    pub label: String,
}

/// Our digest account at a carrier, used to answer its 401/407 to our INVITE once.
/// `Debug` does not print the password.
#[derive(Clone, PartialEq, Eq)]
pub struct TrunkCredentials {
    /// Digest user name.
    pub username: String,
    /// Password (decrypted by the driver).
    pub password: String,
    /// The realm we expect; a challenge for another realm is not answered (`None`: any).
    pub realm: Option<String>,
}

impl std::fmt::Debug for TrunkCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrunkCredentials")
            .field("username", &self.username)
            .field("realm", &self.realm)
            .finish_non_exhaustive()
    }
}

/// One trunk of an outbound call, tried in order: the next one is tried when this one fails
/// with a 5xx, 408, a timeout, a transport error or an unanswerable challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrunkAttempt {
    /// The carrier: Request-URI (`sip:+31...@carrier`), where to send, our local address, To.
    pub target: ForkTarget,
    /// The caller ID towards this carrier (From, without tag).
    pub from: NameAddr,
    /// Extra headers for this carrier (`P-Asserted-Identity`, `Privacy`).
    pub headers: Vec<(HeaderName, Bytes)>,
    /// Digest credentials, when the carrier authenticates our INVITEs.
    pub credentials: Option<TrunkCredentials>,
    /// The trunk's id for the CDR.
    pub trunk: String,
}

/// A new top Via for a request we originate on a leg whose local address is `local`.
pub(crate) fn our_via(endpoint: &mut Endpoint, transport: &Transport, local: SocketAddr) -> Via {
    Via::new(
        transport.clone(),
        Host::from(local.ip()),
        Some(local.port()),
        endpoint.new_branch(),
    )
    .with_rport()
}

/// Our Contact on a leg: `<sip:user@local;transport=..>`.
pub(crate) fn our_contact(user: &str, transport: &Transport, local: SocketAddr) -> NameAddr {
    let host = match local {
        SocketAddr::V4(v4) => format!("{}:{}", v4.ip(), v4.port()),
        SocketAddr::V6(v6) => format!("[{}]:{}", v6.ip(), v6.port()),
    };
    let param = match transport {
        Transport::Tcp => ";transport=tcp",
        Transport::Tls => ";transport=tls",
        _ => "",
    };
    let text = format!("<sip:{user}@{host}{param}>");
    // Our own address and a token user always parse; fall back to the bare host otherwise.
    NameAddr::parse(text.as_bytes())
        .or_else(|_| NameAddr::parse(format!("<sip:{host}>").as_bytes()))
        .unwrap_or_else(|_| NameAddr::new(Uri::Absolute(Bytes::from(text))))
}

/// Headers that describe the content or the session and pass from one leg to the other on a
/// relayed request or response (never Via, Route, Contact, Call-ID, tags or CSeq).
const PASSED: [&str; 6] = [
    "content-type",
    "reason",
    "event",
    "info-package",
    "recv-info",
    "accept",
];

/// Copies the passed-through headers of `from` into `to` (before the body is set).
pub(crate) fn copy_passed_headers(from: &Headers, to: &mut Headers) {
    for (name, value) in from.iter_bytes() {
        let lower = name.as_bytes().to_ascii_lowercase();
        if PASSED.iter().any(|p| p.as_bytes() == lower.as_slice())
            && name != &HeaderName::ContentType
        {
            to.push(name.clone(), value);
        }
    }
}

/// A `Reason` header value.
pub(crate) fn reason(protocol: &str, cause: u16, text: &str) -> Bytes {
    Bytes::from(format!("{protocol};cause={cause};text=\"{text}\""))
}
