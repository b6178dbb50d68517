//! The endpoint: every transaction of one SIP element, their indexes, timers and queues.
//!
//! Split by direction: [`inbound`] takes messages from the network, [`client`] and
//! [`server`] hold the transaction user's commands; this file holds the state, the `poll_*`
//! outputs, timers and the getters.

mod client;
mod inbound;
mod server;

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use bytes::Bytes;
use pbx_sip::Request;

use crate::config::Config;
use crate::event::Event;
use crate::ids::IdGenerator;
use crate::key::{AckKey, ClientKey, ServerKey};
use crate::timer::TimerQueue;
use crate::transaction::client_invite::{ClientInvite, ClientInviteState};
use crate::transaction::client_non_invite::ClientNonInvite;
use crate::transaction::server_invite::ServerInvite;
use crate::transaction::server_non_invite::ServerNonInvite;
use crate::transaction::{
    ClientTransaction, Invite, ServerTransaction, TimerVerdict, Timers, TransactionId,
    TransactionState,
};
use crate::transport::{Target, Transmit};

pub use client::CancelOutcome;

/// Counters for telemetry. The driver exports them as
/// `cloudpbx_sip_<field>_total` (e.g. `cloudpbx_sip_timed_out_total`); they only grow.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Messages that did not parse or validate.
    pub malformed: u64,
    /// Responses that matched no client transaction.
    pub stray_responses: u64,
    /// ACKs that matched no transaction.
    pub stray_acks: u64,
    /// Retransmitted requests or responses absorbed by a transaction.
    pub absorbed: u64,
    /// Retransmissions sent (timers A, E, G, 2xx, and responses re-sent on request
    /// retransmissions).
    pub retransmissions: u64,
    /// Client transactions that timed out (B, F).
    pub timed_out: u64,
    /// New requests refused because `max_transactions` was reached.
    pub overloaded: u64,
    /// Transactions created.
    pub created: u64,
}

/// A SIP element's transaction layer (RFC 3261 §17): see the crate documentation for how to
/// drive it.
#[derive(Debug)]
pub struct Endpoint {
    config: Config,
    ids: IdGenerator,
    next_id: u64,
    /// Boxed: the table grows to hundreds of thousands of entries (Timer J keeps every UDP
    /// non-INVITE transaction 32 s), and a rehash then moves pointers, not whole entries.
    transactions: HashMap<TransactionId, Box<Entry>>,
    client_index: HashMap<ClientKey, TransactionId>,
    server_index: HashMap<ServerKey, TransactionId>,
    ack_index: HashMap<AckKey, TransactionId>,
    timers: TimerQueue,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    stats: Stats,
}

/// One live transaction.
#[derive(Debug)]
struct Entry {
    /// The request that created it (server side: with the stamped top Via). Dropped when a
    /// server INVITE transaction sends its final response, when a non-INVITE server
    /// transaction over UDP completes (for the 32 s of Timer L or J it only re-sends its last
    /// response, and the request is most of its memory), and when the TU releases an
    /// accepted INVITE client transaction's ([`Endpoint::release_request`]). Boxed:
    /// the entry outlives it, and an inline `Request` would keep ~0.4 KB per entry for that
    /// time.
    request: Option<Box<Request>>,
    /// Client: where requests go. Server: where responses go.
    target: Target,
    kind: EntryKind,
}

/// The four machines, with the data each needs (names follow the RFC's figures).
#[derive(Debug)]
#[allow(clippy::enum_variant_names)] // the RFC names: (Client|Server)(Non)Invite
enum EntryKind {
    ClientInvite(ClientInviteEntry),
    ClientNonInvite {
        machine: ClientNonInvite,
        key: ClientKey,
        bytes: Bytes,
    },
    ServerInvite(ServerEntry<ServerInvite>),
    ServerNonInvite(ServerEntry<ServerNonInvite>),
}

#[derive(Debug)]
struct ClientInviteEntry {
    machine: ClientInvite,
    key: ClientKey,
    bytes: Bytes,
    /// The ACK sent for a non-2xx final, re-sent on its retransmissions.
    ack: Option<Bytes>,
    /// ACKs for 2xx by To tag, re-sent when that 2xx is retransmitted (Accepted state).
    acks_2xx: Vec<(Option<Bytes>, Transmit)>,
    /// A CANCEL asked for before any provisional response (§9.1: wait for one). Boxed: rare,
    /// and inline it would double the size of every entry.
    pending_cancel: Option<Box<Request>>,
    /// The CANCEL transaction once sent.
    cancel: Option<TransactionId>,
}

#[derive(Debug)]
struct ServerEntry<M> {
    machine: M,
    key: ServerKey,
    /// The last response sent, re-sent on request retransmissions and Timers G / 2xx.
    last_response: Option<Bytes>,
    /// The To tag of the final response (RFC 2543 ACK matching, CANCEL responses).
    final_to_tag: Option<Bytes>,
    /// The tag used by responses the endpoint builds (`Endpoint::response`).
    local_tag: Bytes,
    /// Index entries for ACKs of 2xx responses.
    ack_keys: Vec<AckKey>,
}

impl Endpoint {
    /// A new endpoint. `seed` must be random (the driver reads the entropy source): branches,
    /// tags and Call-IDs derive from it. The config is [sanitized](Config::sanitized).
    pub fn new(config: Config, seed: u64) -> Self {
        Self {
            config: config.sanitized(),
            ids: IdGenerator::new(seed),
            next_id: 0,
            transactions: HashMap::new(),
            client_index: HashMap::new(),
            server_index: HashMap::new(),
            ack_index: HashMap::new(),
            timers: TimerQueue::default(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
        }
    }

    // ----- outputs -----

    /// The next message to send, if any. Call until `None` after every `handle_*` and command.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event for the transaction user, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The earliest deadline; call `handle_timeout` when it is reached.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next_deadline()
    }

    /// Fire every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some((id, timer)) = self.timers.pop_due(now) {
            let Some(entry) = self.transactions.get_mut(&id) else {
                continue;
            };
            let mut timers = Timers {
                queue: &mut self.timers,
                id,
                now,
            };
            let config = &self.config;
            let (verdict, resend) = match &mut entry.kind {
                EntryKind::ClientInvite(e) => (
                    e.machine.on_timer(timer, &mut timers),
                    Some(e.bytes.clone()),
                ),
                EntryKind::ClientNonInvite { machine, bytes, .. } => (
                    machine.on_timer(config, timer, &mut timers),
                    Some(bytes.clone()),
                ),
                EntryKind::ServerInvite(e) => (
                    e.machine.on_timer(config, timer, &mut timers),
                    e.last_response.clone(),
                ),
                EntryKind::ServerNonInvite(e) => (
                    e.machine.on_timer(timer, &mut timers),
                    e.last_response.clone(),
                ),
            };
            match verdict {
                TimerVerdict::Retransmit => {
                    if let Some(bytes) = resend {
                        self.stats.retransmissions += 1;
                        let transmit = entry.target.transmit(bytes, Some(id));
                        self.transmits.push_back(transmit);
                    }
                }
                TimerVerdict::Failed => {
                    let event = match &entry.kind {
                        EntryKind::ServerInvite(_) => Event::AckNotReceived {
                            transaction: ServerTransaction::<Invite>::new(id),
                            timer,
                        },
                        _ => {
                            self.stats.timed_out += 1;
                            Event::TimedOut {
                                transaction: id,
                                timer,
                            }
                        }
                    };
                    self.events.push_back(event);
                    self.remove(id);
                }
                TimerVerdict::Terminated => self.remove(id),
                TimerVerdict::Cancel => {
                    self.events.push_back(Event::TimedOut {
                        transaction: id,
                        timer,
                    });
                    let invite = ClientTransaction::<Invite>::new(id);
                    // Failure (capacity, unbuildable CANCEL) leaves the TU to act on the event.
                    let _ = self.cancel(now, invite);
                }
                TimerVerdict::Ignore => {}
            }
        }
    }

    /// The driver could not send a transmit of `transaction` (connection refused, ICMP
    /// unreachable, …): the transaction ends with [`Event::TransportError`].
    pub fn handle_transport_error(&mut self, _now: Instant, transaction: TransactionId) {
        if self.transactions.contains_key(&transaction) {
            self.events.push_back(Event::TransportError { transaction });
            self.remove(transaction);
        }
    }

    // ----- getters -----

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Number of live transactions.
    pub fn transaction_count(&self) -> usize {
        self.transactions.len()
    }

    /// The state of a transaction, `None` once it is terminated and gone.
    pub fn transaction_state(
        &self,
        transaction: impl Into<TransactionId>,
    ) -> Option<TransactionState> {
        let entry = self.transactions.get(&transaction.into())?;
        Some(match &entry.kind {
            EntryKind::ClientInvite(e) => TransactionState::ClientInvite(e.machine.state()),
            EntryKind::ClientNonInvite { machine, .. } => {
                TransactionState::ClientNonInvite(machine.state())
            }
            EntryKind::ServerInvite(e) => TransactionState::ServerInvite(e.machine.state()),
            EntryKind::ServerNonInvite(e) => TransactionState::ServerNonInvite(e.machine.state()),
        })
    }

    /// The request that created a transaction: for a client transaction its whole life
    /// (unless [released](Endpoint::release_request)); for a server transaction until its
    /// final response (an INVITE) or its completion over UDP (others).
    pub fn request(&self, transaction: impl Into<TransactionId>) -> Option<&Request> {
        self.transactions
            .get(&transaction.into())
            .and_then(|e| e.request.as_deref())
    }

    /// Drops the request of an INVITE client transaction that a 2xx accepted, once the TU
    /// has taken from it what its dialogs need (a TU that keeps its own copy, as a B2BUA
    /// does): for the 32 s of Timer M the transaction only passes 2xx retransmissions up and
    /// re-sends their ACKs, and the INVITE with its SDP is most of its memory. Does nothing
    /// to any other transaction or state (a proceeding INVITE still needs it for CANCEL).
    pub fn release_request(&mut self, transaction: ClientTransaction<Invite>) {
        if let Some(entry) = self.transactions.get_mut(&transaction.id())
            && let EntryKind::ClientInvite(e) = &entry.kind
            && e.machine.state() == ClientInviteState::Accepted
        {
            entry.request = None;
        }
    }

    /// The typed handle of an INVITE client transaction from its id (as carried by
    /// [`Event::Response`]), if it is one and still alive.
    pub fn client_invite(&self, transaction: TransactionId) -> Option<ClientTransaction<Invite>> {
        match self.transactions.get(&transaction)?.kind {
            EntryKind::ClientInvite(_) => Some(ClientTransaction::new(transaction)),
            _ => None,
        }
    }

    /// The typed handle of an INVITE server transaction from its id, if it is one and still
    /// alive.
    pub fn server_invite(&self, transaction: TransactionId) -> Option<ServerTransaction<Invite>> {
        match self.transactions.get(&transaction)?.kind {
            EntryKind::ServerInvite(_) => Some(ServerTransaction::new(transaction)),
            _ => None,
        }
    }

    /// The deadline of one timer of a transaction, if armed (for diagnostics and tests).
    pub fn timer_deadline(
        &self,
        transaction: impl Into<TransactionId>,
        timer: crate::timer::Timer,
    ) -> Option<Instant> {
        self.timers.deadline(transaction.into(), timer)
    }

    /// A fresh branch with the RFC 3261 magic cookie, for the top Via of a new request.
    pub fn new_branch(&mut self) -> String {
        self.ids.branch()
    }

    /// A fresh From/To tag.
    pub fn new_tag(&mut self) -> String {
        self.ids.tag()
    }

    /// A fresh Call-ID (`…@host` when a host is given).
    pub fn new_call_id(&mut self, host: Option<&str>) -> String {
        self.ids.call_id(host)
    }

    // ----- internals -----

    fn allocate_id(&mut self) -> TransactionId {
        self.next_id += 1;
        self.stats.created += 1;
        TransactionId::from_raw(self.next_id)
    }

    fn at_capacity(&self) -> bool {
        self.transactions.len() >= self.config.max_transactions
    }

    /// Drop a transaction and everything pointing at it.
    fn remove(&mut self, id: TransactionId) {
        self.timers.cancel_all(id);
        let Some(entry) = self.transactions.remove(&id) else {
            return;
        };
        match entry.kind {
            EntryKind::ClientInvite(e) => {
                self.client_index.remove(&e.key);
            }
            EntryKind::ClientNonInvite { key, .. } => {
                self.client_index.remove(&key);
            }
            EntryKind::ServerInvite(e) => {
                self.server_index.remove(&e.key);
                for key in e.ack_keys {
                    self.ack_index.remove(&key);
                }
            }
            EntryKind::ServerNonInvite(e) => {
                self.server_index.remove(&e.key);
            }
        }
        self.events.push_back(Event::Terminated { transaction: id });
    }

    /// Remove `id` if its machine reached Terminated during the last transition.
    fn remove_if_terminated(&mut self, id: TransactionId) {
        let terminated = match self.transaction_state(id) {
            Some(TransactionState::ClientInvite(s)) => s == ClientInviteState::Terminated,
            Some(TransactionState::ClientNonInvite(s)) => {
                s == crate::transaction::ClientNonInviteState::Terminated
            }
            Some(TransactionState::ServerInvite(s)) => {
                s == crate::transaction::ServerInviteState::Terminated
            }
            Some(TransactionState::ServerNonInvite(s)) => {
                s == crate::transaction::ServerNonInviteState::Terminated
            }
            None => false,
        };
        if terminated {
            self.remove(id);
        }
    }
}
