//! Sans-IO SIP transaction (RFC 3261 §17, RFC 6026) and dialog engine.
//!
//! An [`Endpoint`] holds every transaction of one SIP element. It never touches a socket,
//! a clock or a task: the driver (pbx-sip-net, or a test) feeds it messages and the current
//! time, and carries out what it asks for. The design follows quinn-proto's `Endpoint` /
//! `Connection`: the same inputs in the same order always give the same outputs, so every
//! timer path is tested under a virtual clock in microseconds.
//!
//! # The four kinds of method
//!
//! 1. **Inputs, `handle_*`**: what happened outside.
//!    [`Endpoint::handle_datagram`] / [`Endpoint::handle_message`] take a received message
//!    with its [`TransportInfo`] (transport, source address, connection); a request that
//!    matches no transaction comes back as an [`Incoming`] (see below).
//!    [`Endpoint::handle_timeout`] fires the timers due at `now`;
//!    [`Endpoint::handle_transport_error`] reports that a [`Transmit`] could not be sent.
//! 2. **Commands**: what the transaction user (TU) wants.
//!    Client side: [`Endpoint::send_invite`], [`Endpoint::send_request`],
//!    [`Endpoint::cancel`] (builds the CANCEL from the INVITE, §9.1),
//!    [`Endpoint::send_ack`] (ACK for a 2xx, built by a [`Dialog`]),
//!    [`Endpoint::send_stateless`]. Server side: [`Endpoint::accept`],
//!    [`Endpoint::reject`], [`Endpoint::respond_stateless`], [`Endpoint::ignore`] for an
//!    `Incoming`; [`Endpoint::response`], [`Endpoint::send_response`],
//!    [`Endpoint::respond`] on a server transaction.
//! 3. **Outputs, `poll_*`**: what the endpoint wants done.
//!    [`Endpoint::poll_transmit`] gives the next [`Transmit`] (bytes, transport, destination,
//!    flow); [`Endpoint::poll_event`] the next [`Event`] for the TU (responses, timeouts,
//!    ACKs for 2xx, CANCELs, stray messages, transport errors); [`Endpoint::poll_timeout`]
//!    the next deadline.
//! 4. **Getters**: [`Endpoint::transaction_state`], [`Endpoint::request`],
//!    [`Endpoint::stats`], [`Endpoint::transaction_count`], and identifier generators
//!    ([`Endpoint::new_branch`], [`Endpoint::new_tag`], [`Endpoint::new_call_id`]) seeded by
//!    the driver.
//!
//! # Driving it
//!
//! `now` is always passed in (`std::time::Instant`; the crate's `clippy.toml` bans
//! `Instant::now`). After **every** input or command, drain the outputs in this order:
//!
//! 1. `poll_transmit()` until `None`: send each (on `flow` when given, else to
//!    `destination` over `transport`); report failures with `handle_transport_error`;
//! 2. `poll_event()` until `None`: hand each to the TU, which may issue commands (then go
//!    back to 1);
//! 3. `poll_timeout()`: (re)arm one timer for the earliest deadline; when it expires call
//!    `handle_timeout(now)` and drain again.
//!
//! # Admission
//!
//! A request that matches no transaction (RFC 3261 §17.2.3, with the RFC 2543 fallback for
//! branches without the magic cookie) is returned as a `#[must_use]` [`Incoming`] before any
//! state exists. Policy decides: `accept` creates the server transaction (and sends 100
//! Trying for INVITE), `reject`/`respond_stateless` answer without state (403, 503, a 401
//! with a stateless nonce), dropping it costs nothing. When [`Config::max_transactions`] is
//! reached new requests are answered 503 or dropped ([`Overload`]) before they become an
//! `Incoming`. ACKs never create transactions: the ACK for a 2xx and stray ACKs come out as
//! [`Event::Ack`]. A CANCEL that matches an INVITE is answered 200 by the endpoint and
//! reported as [`Event::Cancelled`] (the TU then answers the INVITE with 487); one that
//! matches nothing gets a stateless 481.
//!
//! # What the endpoint does on its own
//!
//! - Retransmissions (Timers A, E, G) with T1/T2/T4 from [`Config`], timeouts (B, F → an
//!   [`Event::TimedOut`] to treat as 408; H → [`Event::AckNotReceived`]), and the wait
//!   states (D, I, J, K) that absorb retransmissions: a retransmitted request gets the last
//!   response again, a retransmitted final response is absorbed (and re-ACKed for non-2xx).
//! - The ACK for a non-2xx final response (§17.1.1.3), built by the INVITE client
//!   transaction.
//! - No INVITE rings for ever: Timer C ([`Config::timer_c`], restarted by each provisional)
//!   CANCELs it, and 64·T1 after any CANCEL without a final response the INVITE transaction
//!   is destroyed (§9.1), so a silent peer cannot pin state.
//! - RFC 6026 Accepted states: the INVITE client transaction passes every 2xx up for 64·T1
//!   (Timer M) and re-sends the ACK given with `send_ack` for retransmitted 2xx; the INVITE
//!   server transaction absorbs INVITE retransmissions for 64·T1 (Timer L) and, as a service
//!   to the UAS core (§13.3.1.4, [`Config::retransmit_2xx`]), retransmits the 2xx until its
//!   ACK arrives, reporting [`Event::AckNotReceived`] if none does.
//! - Transport-layer Via processing (§18.2.1, RFC 3581): `received` and `rport` are added to
//!   the top Via of every request, and responses are addressed per §18.2.2 (the same flow on
//!   reliable transports; maddr, received + rport, or sent-by on UDP).
//!
//! Transactions are four message-free state machines in [`transaction`]; handles carry the
//! kind as a type ([`ClientTransaction<Invite>`], [`ServerTransaction<NonInvite>`]) so
//! INVITE-only commands (CANCEL, ACK for 2xx) take only INVITE handles. Dialog state
//! (route set, remote target, CSeq spaces, in-dialog requests) lives in [`Dialog`], owned by
//! the TU.
//!
//! # Example
//!
//! Two endpoints exchanging an OPTIONS, the driver's part written out by hand:
//!
//! ```
//! use std::net::SocketAddr;
//! use std::time::Instant;
//!
//! use pbx_sip::{Host, Method, NameAddr, Request, StatusCode, Transport, Via};
//! use pbx_sip_engine::{Config, Endpoint, Event, Target, TransportInfo};
//!
//! // The driver's clock; the engine itself never reads one.
//! let now = Instant::now();
//! let alice_address: SocketAddr = "192.0.2.1:5060".parse()?;
//! let bob_address: SocketAddr = "192.0.2.2:5060".parse()?;
//! // Seeds come from the driver's entropy source.
//! let mut alice = Endpoint::new(Config::default(), 0x5eed_a11ce);
//! let mut bob = Endpoint::new(Config::default(), 0x5eed_0b0b);
//!
//! let via = Via::new(Transport::Udp, Host::from(alice_address.ip()), Some(5060), alice.new_branch())
//!     .with_rport();
//! let options = Request::builder(Method::Options, "sip:bob@192.0.2.2".parse()?)
//!     .via(&via)
//!     .from(&NameAddr::parse(b"<sip:alice@example.com>;tag=a1")?)
//!     .to(&NameAddr::parse(b"<sip:bob@example.com>")?)
//!     .call_id(alice.new_call_id(Some("example.com")))
//!     .cseq(1)
//!     .build();
//! let transaction = alice.send_request(now, options, Target::udp(bob_address))?;
//!
//! // Carry Alice's transmit to Bob: a new request comes out as an `Incoming`.
//! let transmit = alice.poll_transmit().expect("the OPTIONS");
//! let incoming = bob
//!     .handle_datagram(now, TransportInfo::udp(alice_address), transmit.contents)
//!     .expect("a new request");
//! // Policy runs here, before any state exists; this one accepts and answers 200.
//! let server = bob.accept(now, incoming)?;
//! bob.respond(now, server, StatusCode::OK)?;
//!
//! let transmit = bob.poll_transmit().expect("the 200");
//! assert_eq!(transmit.destination, alice_address);
//! assert!(alice.handle_datagram(now, TransportInfo::udp(bob_address), transmit.contents).is_none());
//! match alice.poll_event() {
//!     Some(Event::Response { transaction: id, response }) => {
//!         assert_eq!(id, transaction.id());
//!         assert_eq!(response.status(), StatusCode::OK);
//!     }
//!     other => panic!("expected the 200, got {other:?}"),
//! }
//! // Timer K (T4 on UDP) keeps Alice's transaction to absorb retransmissions: the driver
//! // sleeps until this deadline, then calls `handle_timeout`.
//! let deadline = alice.poll_timeout().expect("Timer K");
//! alice.handle_timeout(deadline);
//! assert_eq!(alice.transaction_count(), 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Handles are typed by kind, so only an INVITE transaction can be cancelled:
//!
//! ```compile_fail
//! # use pbx_sip_engine::{ClientTransaction, Endpoint, NonInvite};
//! fn cancel(endpoint: &mut Endpoint, now: std::time::Instant, options: ClientTransaction<NonInvite>) {
//!     let _ = endpoint.cancel(now, options);
//! }
//! ```

mod build;
pub mod config;
pub mod dialog;
mod endpoint;
pub mod error;
pub mod event;
mod ids;
mod incoming;
mod key;
mod routing;
mod salvage;
pub mod timer;
pub mod transaction;
pub mod transport;

pub use config::{Config, Overload};
pub use dialog::{Dialog, DialogError, DialogId, DialogState, Role};
pub use endpoint::{CancelOutcome, Endpoint, Stats};
pub use error::{AcceptError, AckError, CancelError, ResponseError, SendError};
pub use event::Event;
pub use incoming::Incoming;
pub use timer::Timer;
pub use transaction::{
    AcceptedTransaction, ClientTransaction, Invite, Kind, NonInvite, ServerHandle,
    ServerTransaction, TransactionId, TransactionState,
};
pub use transport::{FlowId, Target, Transmit, TransportInfo};
