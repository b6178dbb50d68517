//! The four RFC 3261 §17 transaction state machines (with the RFC 6026 Accepted states).
//!
//! Each machine is a plain struct that knows only its state, whether the transport is
//! reliable and its retransmission interval; it reacts to status codes, retransmissions and
//! timers and answers with a small verdict telling the endpoint what to send or report. The
//! endpoint owns the messages, the matching indexes and the timer queue. Keeping the
//! machines message-free makes every transition testable on its own (see the unit tests in
//! each module) and keeps the kind of transaction in the type: only
//! the INVITE client machine can produce an ACK for a non-2xx response, only
//! the INVITE server machine has an ACK wait.
//!
//! Handles given to the transaction user carry the kind as a type parameter
//! ([`ClientTransaction<Invite>`], [`ServerTransaction<NonInvite>`], …), so commands that only
//! make sense for INVITE (CANCEL, ACK for 2xx) do not accept a non-INVITE handle.

pub(crate) mod client_invite;
pub(crate) mod client_non_invite;
pub(crate) mod server_invite;
pub(crate) mod server_non_invite;

use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;
use std::time::{Duration, Instant};

use crate::timer::{Timer, TimerQueue};

pub use client_invite::ClientInviteState;
pub use client_non_invite::ClientNonInviteState;
pub use server_invite::ServerInviteState;
pub use server_non_invite::ServerNonInviteState;

/// Identifies one transaction of an endpoint (client or server, any kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TransactionId(u64);

impl TransactionId {
    pub(crate) fn from_raw(raw: u64) -> Self {
        Self(raw)
    }

    /// The number behind the id (unique per endpoint, never reused).
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Display for TransactionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "transaction#{}", self.0)
    }
}

/// Marker: an INVITE transaction. Uninhabited; used only as a type parameter.
#[derive(Debug)]
pub enum Invite {}

/// Marker: a non-INVITE transaction. Uninhabited; used only as a type parameter.
#[derive(Debug)]
pub enum NonInvite {}

mod sealed {
    pub trait Sealed {}
    pub trait SealedServer {}
    impl Sealed for super::Invite {}
    impl Sealed for super::NonInvite {}
}

/// The kind of a transaction: [`Invite`] or [`NonInvite`].
pub trait Kind: sealed::Sealed + 'static {
    /// Whether this is the INVITE kind.
    const IS_INVITE: bool;
}

impl Kind for Invite {
    const IS_INVITE: bool = true;
}

impl Kind for NonInvite {
    const IS_INVITE: bool = false;
}

macro_rules! handle {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        pub struct $name<K: Kind> {
            id: TransactionId,
            kind: PhantomData<fn() -> K>,
        }

        impl<K: Kind> $name<K> {
            pub(crate) fn new(id: TransactionId) -> Self {
                Self { id, kind: PhantomData }
            }

            /// The untyped id (as carried by events).
            pub fn id(self) -> TransactionId {
                self.id
            }
        }

        impl<K: Kind> Clone for $name<K> {
            fn clone(&self) -> Self {
                *self
            }
        }

        impl<K: Kind> Copy for $name<K> {}

        impl<K: Kind> PartialEq for $name<K> {
            fn eq(&self, other: &Self) -> bool {
                self.id == other.id
            }
        }

        impl<K: Kind> Eq for $name<K> {}

        impl<K: Kind> Hash for $name<K> {
            fn hash<H: Hasher>(&self, state: &mut H) {
                self.id.hash(state);
            }
        }

        impl<K: Kind> PartialEq<TransactionId> for $name<K> {
            fn eq(&self, other: &TransactionId) -> bool {
                self.id == *other
            }
        }

        impl<K: Kind> From<$name<K>> for TransactionId {
            fn from(handle: $name<K>) -> TransactionId {
                handle.id
            }
        }

        impl<K: Kind> fmt::Debug for $name<K> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let kind = if K::IS_INVITE { "Invite" } else { "NonInvite" };
                write!(f, "{}<{}>({})", stringify!($name), kind, self.id.0)
            }
        }
    };
}

handle!(
    /// Handle of a client transaction of kind `K`, returned by the send commands.
    ClientTransaction
);
handle!(
    /// Handle of a server transaction of kind `K`, returned when an `Incoming` is accepted.
    ServerTransaction
);

/// A server transaction created by `accept`, typed by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcceptedTransaction {
    /// An INVITE server transaction (2xx retransmission, CANCEL and ACK apply).
    Invite(ServerTransaction<Invite>),
    /// A non-INVITE server transaction.
    NonInvite(ServerTransaction<NonInvite>),
}

impl AcceptedTransaction {
    /// The untyped id.
    pub fn id(self) -> TransactionId {
        match self {
            AcceptedTransaction::Invite(t) => t.id(),
            AcceptedTransaction::NonInvite(t) => t.id(),
        }
    }

    /// The INVITE handle, if this is an INVITE transaction.
    pub fn invite(self) -> Option<ServerTransaction<Invite>> {
        match self {
            AcceptedTransaction::Invite(t) => Some(t),
            AcceptedTransaction::NonInvite(_) => None,
        }
    }

    /// The non-INVITE handle, if this is a non-INVITE transaction.
    pub fn non_invite(self) -> Option<ServerTransaction<NonInvite>> {
        match self {
            AcceptedTransaction::NonInvite(t) => Some(t),
            AcceptedTransaction::Invite(_) => None,
        }
    }
}

/// A handle naming a server transaction: [`ServerTransaction`] of either kind, or an
/// [`AcceptedTransaction`]. Response commands take this, so a client handle cannot be
/// answered by mistake.
pub trait ServerHandle: Copy + Into<TransactionId> + sealed::SealedServer {}

impl<K: Kind> sealed::SealedServer for ServerTransaction<K> {}
impl<K: Kind> ServerHandle for ServerTransaction<K> {}
impl sealed::SealedServer for AcceptedTransaction {}
impl ServerHandle for AcceptedTransaction {}

impl From<AcceptedTransaction> for TransactionId {
    fn from(accepted: AcceptedTransaction) -> TransactionId {
        accepted.id()
    }
}

/// The state of any transaction, as reported by `Endpoint::transaction_state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransactionState {
    /// INVITE client transaction (RFC 3261 figure 5, RFC 6026 figure 3).
    ClientInvite(ClientInviteState),
    /// Non-INVITE client transaction (RFC 3261 figure 6).
    ClientNonInvite(ClientNonInviteState),
    /// INVITE server transaction (RFC 3261 figure 7, RFC 6026 figure 5).
    ServerInvite(ServerInviteState),
    /// Non-INVITE server transaction (RFC 3261 figure 8).
    ServerNonInvite(ServerNonInviteState),
}

/// Timer access for one transaction during one transition.
#[derive(Debug)]
pub(crate) struct Timers<'a> {
    pub(crate) queue: &'a mut TimerQueue,
    pub(crate) id: TransactionId,
    pub(crate) now: Instant,
}

impl Timers<'_> {
    pub(crate) fn start(&mut self, timer: Timer, after: Duration) {
        self.queue.set(self.id, timer, self.now + after);
    }

    pub(crate) fn stop(&mut self, timer: Timer) {
        self.queue.cancel(self.id, timer);
    }

    pub(crate) fn stop_all(&mut self) {
        self.queue.cancel_all(self.id);
    }
}

/// Status class helpers over raw codes.
pub(crate) fn is_provisional(status: u16) -> bool {
    (100..200).contains(&status)
}

pub(crate) fn is_success(status: u16) -> bool {
    (200..300).contains(&status)
}

/// What a server transaction does with a response the TU hands it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SendVerdict {
    /// Send it (and remember it for retransmissions).
    Send,
    /// The transaction already sent a final response: refuse.
    AlreadyFinal,
}

/// What a server transaction does with a retransmitted request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RetransmissionVerdict {
    /// Re-send the last response sent (if any).
    ResendLast,
    /// Absorb it silently.
    Absorb,
}

/// What happens when a timer fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimerVerdict {
    /// Retransmit the request (client) or the last response (server).
    Retransmit,
    /// The transaction timed out (B, F) or never got its ACK (H, or L without a 2xx ACK):
    /// report to the TU; the transaction is terminated.
    Failed,
    /// The transaction is terminated quietly.
    Terminated,
    /// Timer C fired on an INVITE still ringing: report it and send a CANCEL.
    Cancel,
    /// Stale timer for the current state: nothing.
    Ignore,
}

#[cfg(test)]
pub(crate) mod test_util {
    use super::*;

    #[allow(clippy::disallowed_methods)] // a base instant for unit tests, never used as "now"
    pub(crate) fn base() -> Instant {
        Instant::now()
    }

    pub(crate) fn timers(queue: &mut TimerQueue, now: Instant) -> Timers<'_> {
        Timers {
            queue,
            id: TransactionId::from_raw(1),
            now,
        }
    }
}
