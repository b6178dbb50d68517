//! New requests awaiting an admission decision.

use std::net::SocketAddr;
use std::time::Instant;

use pbx_sip::{Method, Request};

use crate::key::ServerKey;
use crate::transport::{Target, TransportInfo};

/// A request that matched no transaction: nothing has been allocated for it yet.
///
/// The caller decides with one of the endpoint's commands — `Endpoint::accept` (creates the
/// server transaction; for INVITE, sends 100 Trying when configured), `Endpoint::reject` /
/// `Endpoint::respond_stateless` (a stateless answer: 403, 503, a 401 challenge with a
/// stateless nonce, …) — or drops it (`Endpoint::ignore`, or just letting it go out of
/// scope): the client will retransmit and time out. Policy (bans, rate limits,
/// authentication) runs on this value, before any state exists, so a flood of requests
/// costs a parse and a decision each.
#[must_use = "accept, reject, respond to or explicitly ignore the request"]
#[derive(Debug)]
pub struct Incoming {
    pub(crate) request: Request,
    pub(crate) info: TransportInfo,
    pub(crate) key: ServerKey,
    pub(crate) target: Target,
    pub(crate) received_at: Instant,
}

impl Incoming {
    /// The request, its top Via stamped with `received`/`rport` (RFC 3261 §18.2.1).
    pub fn request(&self) -> &Request {
        &self.request
    }

    /// The method.
    pub fn method(&self) -> &Method {
        self.request.method()
    }

    /// How the request arrived.
    pub fn info(&self) -> &TransportInfo {
        &self.info
    }

    /// The source address (for bans, rate limits, IP whitelists).
    pub fn source(&self) -> SocketAddr {
        self.info.source
    }

    /// Where responses to this request will be sent (RFC 3261 §18.2.2).
    pub fn response_target(&self) -> &Target {
        &self.target
    }

    /// When the request was handed to the endpoint.
    pub fn received_at(&self) -> Instant {
        self.received_at
    }

    /// Whether the request was matched with the RFC 2543 fallback rules (no magic cookie).
    pub fn is_rfc2543(&self) -> bool {
        self.key.is_rfc2543()
    }
}
