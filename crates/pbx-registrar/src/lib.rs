//! Sans-IO SIP registrar and location service: RFC 3261 §10 bindings, RFC 5626 flows
//! (`+sip.instance`/`reg-id`), RFC 3327 Path, RFC 8599 push parameters, NAT keep-alive and
//! SIP ALG detection.
//!
//! The crate never reads the clock, opens a socket or touches the database. The caller
//! passes time in ([`Now`]: a monotonic instant for timers and Unix milliseconds for the
//! persisted expiry, read together), and carries out what comes back as [`Effect`]s.
//!
//! # Driving it
//!
//! - **Start-up:** [`Registrar::new`] with a [`RegistrarConfig`], the digest realm and a
//!   random seed; then [`Registrar::restore`] with the unexpired bindings the store holds
//!   for this node (`pbx-store` `Bindings::load_active`). Apply the returned effects.
//! - **Input:** for each REGISTER the engine admits, call [`Registrar::handle_register`]
//!   with the flow it arrived on ([`FlowInfo`]), the current `DirectorySnapshot`, the
//!   realm's `Verifier` and the process's `NonceCountTracker`. Send the
//!   [`RegisterOutcome::response`] on the server transaction, then apply its effects.
//!   Report keep-alive results with [`Registrar::handle_ping_result`] and closed TCP/TLS
//!   connections with [`Registrar::handle_flow_closed`].
//! - **Timers:** sleep until [`Registrar::poll_timeout`], then call
//!   [`Registrar::handle_timeout`]; poll again after every call into the registrar.
//! - **Effects,** in order: [`Effect::PersistBinding`] (upsert by tenant, AOR and key),
//!   [`Effect::RefreshBinding`] (the same upsert for a binding whose expiry alone moved on;
//!   it may be written back lazily, and with [`RegistrarConfig::persist_refreshes_lazily`]
//!   it is only emitted when the stored expiry would keep less than half the new lifetime),
//!   [`Effect::DeleteBinding`], [`Effect::Event`] (publish; [`RegistrationEvent::to_domain_event`]
//!   makes the audit-log entry) and [`Effect::Ping`] (send an OPTIONS over a UDP flow, or a
//!   double CRLF on a TCP/TLS connection, and report the result).
//! - **Getters:** [`Registrar::lookup`] gives the [`Target`]s to fork a call to: each goes
//!   to the flow the device registered from (the NAT's public side), with the Contact as
//!   Request-URI — never to the private address inside the Contact.
//!
//! # Decisions
//!
//! - The AOR is the authenticated user (`sip:<extension>@<tenant domain>`); the To header
//!   is not used, so phones that send a wrong domain still register in the right tenant.
//! - Unknown users, disabled credentials and wrong passwords get the same 401 after the
//!   same work. A known account reached from a non-whitelisted address gets 403 whether
//!   or not the digest was right (the whitelist is checked after the digest).
//! - A REGISTER whose own Contacts exceed `max_contacts_per_user` gets 403; otherwise the
//!   least recently refreshed bindings of the user are evicted to make room (a phone
//!   replaced without unregistering must not lock its user out).
//! - Same Call-ID with a CSeq not above a binding's aborts the whole request with 500
//!   (RFC 3261 §10.3 step 7); no binding is changed by a refused request. The one exception
//!   is the request that made the binding, again (same source, top Via, Call-ID, CSeq,
//!   Contacts, Expires and credentials): REGISTER is answered statelessly (no transaction
//!   absorbs a UDP retransmission), so it gets 200 with the bindings as they are, and its
//!   credentials pass the nonce-count check as a retransmission.
//! - Keep-alive probes go once per flow, however many bindings share it. Any SIP response
//!   to the OPTIONS counts as alive.
//!
//! ```
//! use std::time::Instant;
//! use pbx_registrar::{Now, Registrar, RegistrarConfig};
//!
//! let registrar = Registrar::new(RegistrarConfig::new("node-1"), "cloudpbx", 7).unwrap();
//! let now = Now::new(Instant::now(), 1_700_000_000_000);
//! assert_eq!(registrar.poll_timeout(), None);
//! assert!(now.unix_secs() > 0);
//! ```

mod alg;
mod auth;
mod commit;
mod config;
mod event;
mod ids;
mod keepalive;
mod registrar;
mod request;
mod table;
mod types;
mod uri_eq;

pub use alg::{AlgReason, AlgSuspicion, contact_behind_nat, detect_alg, is_private};
pub use config::{ConfigError, RegistrarConfig};
pub use event::{AuthFailure, RegistrationEvent, RemovalReason};
pub use registrar::{RegisterOutcome, Registrar};
pub use types::{BindingKey, Effect, FlowInfo, Now, Ping, PingId, PingKind, Target};
pub use uri_eq::uri_equivalent;
