//! What the endpoint reports to the transaction user through `poll_event`.

use std::net::SocketAddr;

use pbx_sip::{ParseError, Request, Response};

use crate::timer::Timer;
use crate::transaction::{Invite, ServerTransaction, TransactionId};
use crate::transport::TransportInfo;

/// An event for the transaction user.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// A response on a client transaction: provisional, final, or (INVITE in the Accepted
    /// state, RFC 6026) a further 2xx — a retransmission or a fork. Retransmissions of a
    /// non-2xx final are absorbed and never reported.
    Response {
        /// The client transaction.
        transaction: TransactionId,
        /// The response.
        response: Response,
    },
    /// Timer B or F fired (no final response: treat as a 408, RFC 3261 §8.1.3.1; the
    /// transaction is terminated), the CANCEL guard fired (a CANCELled INVITE never got its
    /// final response; terminated), or Timer C fired (the INVITE rang too long: the
    /// endpoint sent a CANCEL, the transaction lives on until its 487).
    TimedOut {
        /// The client transaction.
        transaction: TransactionId,
        /// Which timer fired.
        timer: Timer,
    },
    /// The driver reported a send failure for this transaction (§17.1.4, §17.2.4); it is
    /// terminated. For a client transaction treat as a 503.
    TransportError {
        /// The transaction (now terminated).
        transaction: TransactionId,
    },
    /// An ACK that is the TU's business: the ACK for a 2xx (matched to the INVITE server
    /// transaction that sent it, which stops retransmitting the 2xx) or a stray ACK that
    /// matched nothing (`transaction: None`).
    Ack {
        /// The INVITE server transaction whose 2xx it acknowledges, if still alive.
        transaction: Option<ServerTransaction<Invite>>,
        /// The ACK (its top Via stamped with received/rport).
        request: Request,
        /// How it arrived.
        info: TransportInfo,
    },
    /// A CANCEL matched an INVITE server transaction that has not sent a final response.
    /// The engine answered the CANCEL with 200; the TU should now answer the INVITE with 487
    /// (RFC 3261 §9.2).
    Cancelled {
        /// The INVITE transaction to end.
        invite: ServerTransaction<Invite>,
        /// The CANCEL request.
        cancel: Request,
    },
    /// The ACK never came: Timer H fired after a non-2xx final, or Timer L fired while the
    /// 2xx was still being retransmitted (RFC 3261 §13.3.1.4: the TU should end the session
    /// with BYE). The transaction is terminated.
    AckNotReceived {
        /// The INVITE server transaction.
        transaction: ServerTransaction<Invite>,
        /// H or L.
        timer: Timer,
    },
    /// A response that matched no client transaction (a proxy forwards it statelessly, a UA
    /// drops it).
    StrayResponse {
        /// The response.
        response: Response,
        /// How it arrived.
        info: TransportInfo,
    },
    /// A message that did not parse or lacked mandatory headers. Requests that could be
    /// answered got a stateless 4xx already.
    Malformed {
        /// Who sent it.
        source: SocketAddr,
        /// What was wrong.
        error: ParseError,
    },
    /// A transaction ended; its id will not appear again.
    Terminated {
        /// The transaction.
        transaction: TransactionId,
    },
}
