//! Client-side commands: new client transactions, CANCEL, ACK for 2xx, stateless sends.

use std::time::Instant;

use pbx_sip::{Method, Request};

use super::{ClientInviteEntry, Endpoint, Entry, EntryKind};
use crate::build;
use crate::error::{AckError, CancelError, SendError};
use crate::key::ClientKey;
use crate::transaction::client_invite::ClientInvite;
use crate::transaction::client_non_invite::ClientNonInvite;
use crate::transaction::{
    ClientInviteState, ClientTransaction, Invite, NonInvite, Timers, TransactionId,
};
use crate::transport::Target;

/// What `Endpoint::cancel` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelOutcome {
    /// The CANCEL was sent in this client transaction.
    Sent(ClientTransaction<NonInvite>),
    /// No provisional response has arrived yet: the CANCEL goes out when one does (RFC 3261
    /// §9.1), and is dropped if a final response comes first.
    Deferred,
}

impl Endpoint {
    /// Send an INVITE in a new INVITE client transaction. The request must carry a top Via
    /// with an RFC 3261 branch (see [`Endpoint::new_branch`]) and a matching CSeq.
    pub fn send_invite(
        &mut self,
        now: Instant,
        request: Request,
        target: Target,
    ) -> Result<ClientTransaction<Invite>, SendError> {
        if *request.method() != Method::Invite {
            return Err(SendError::WrongMethod);
        }
        let id = self.start_client(now, request, target)?;
        Ok(ClientTransaction::new(id))
    }

    /// Send a non-INVITE request (not ACK) in a new non-INVITE client transaction.
    pub fn send_request(
        &mut self,
        now: Instant,
        request: Request,
        target: Target,
    ) -> Result<ClientTransaction<NonInvite>, SendError> {
        match request.method() {
            Method::Invite => return Err(SendError::WrongMethod),
            Method::Ack => return Err(SendError::AckIsNotATransaction),
            _ => {}
        }
        let id = self.start_client(now, request, target)?;
        Ok(ClientTransaction::new(id))
    }

    /// Cancel an INVITE client transaction (RFC 3261 §9.1): builds the CANCEL from the
    /// INVITE and sends it in its own non-INVITE client transaction, or defers it until the
    /// first provisional response. Calling it again returns the same outcome.
    pub fn cancel(
        &mut self,
        now: Instant,
        invite: ClientTransaction<Invite>,
    ) -> Result<CancelOutcome, CancelError> {
        let id = invite.id();
        let Some(entry) = self.transactions.get_mut(&id) else {
            return Err(CancelError::UnknownTransaction);
        };
        let EntryKind::ClientInvite(e) = &mut entry.kind else {
            return Err(CancelError::UnknownTransaction);
        };
        if let Some(cancel) = e.cancel {
            return Ok(CancelOutcome::Sent(ClientTransaction::new(cancel)));
        }
        let state = e.machine.state();
        if !matches!(
            state,
            ClientInviteState::Calling | ClientInviteState::Proceeding
        ) {
            return Err(CancelError::AlreadyFinal);
        }
        // An INVITE client transaction keeps its request until a 2xx accepts it.
        let request = entry.request.as_deref().ok_or(CancelError::AlreadyFinal)?;
        let cancel = build::cancel_for(request).map_err(CancelError::Malformed)?;
        if state == ClientInviteState::Calling {
            e.pending_cancel = Some(Box::new(cancel));
            return Ok(CancelOutcome::Deferred);
        }
        match self.start_cancel(now, id, cancel) {
            Some(cancel) => Ok(CancelOutcome::Sent(cancel)),
            None => Err(CancelError::TooManyTransactions),
        }
    }

    /// Send the ACK for a 2xx to the INVITE of `invite` (built by the dialog, see
    /// `Dialog::ack`). While the INVITE transaction is in the Accepted state, the endpoint
    /// re-sends this ACK whenever the 2xx with the same To tag is retransmitted.
    pub fn send_ack(
        &mut self,
        _now: Instant,
        invite: ClientTransaction<Invite>,
        ack: Request,
        target: Target,
    ) -> Result<(), AckError> {
        if *ack.method() != Method::Ack {
            return Err(AckError::NotAck);
        }
        let to_tag = ack.to().map_err(AckError::Malformed)?.tag;
        let transmit = target.transmit(ack.to_bytes(), None);
        if let Some(Entry {
            kind: EntryKind::ClientInvite(e),
            ..
        }) = self.transactions.get_mut(&invite.id()).map(|e| &mut **e)
        {
            e.acks_2xx.retain(|(tag, _)| *tag != to_tag);
            e.acks_2xx.push((to_tag, transmit.clone()));
        }
        self.transmits.push_back(transmit);
        Ok(())
    }

    /// Send a request outside any transaction (an ACK after its INVITE transaction ended, a
    /// keep-alive, a stateless proxy's forward).
    pub fn send_stateless(&mut self, _now: Instant, request: &Request, target: &Target) {
        self.transmits
            .push_back(target.transmit(request.to_bytes(), None));
    }

    fn start_client(
        &mut self,
        now: Instant,
        request: Request,
        target: Target,
    ) -> Result<TransactionId, SendError> {
        let via = request.top_via().map_err(SendError::InvalidVia)?;
        if !via.is_rfc3261_branch() {
            return Err(SendError::MissingBranch);
        }
        let Some(branch) = via.branch else {
            return Err(SendError::MissingBranch);
        };
        let cseq = request.cseq().map_err(SendError::InvalidCSeq)?;
        if cseq.method != *request.method() {
            return Err(SendError::CSeqMethodMismatch);
        }
        let key = ClientKey::new(branch, cseq.method);
        if self.client_index.contains_key(&key) {
            return Err(SendError::DuplicateBranch);
        }
        if self.at_capacity() {
            return Err(SendError::TooManyTransactions);
        }
        let id = self.allocate_id();
        let bytes = request.to_bytes();
        let reliable = target.is_reliable();
        let mut timers = Timers {
            queue: &mut self.timers,
            id,
            now,
        };
        let kind = if *request.method() == Method::Invite {
            EntryKind::ClientInvite(ClientInviteEntry {
                machine: ClientInvite::start(&self.config, reliable, &mut timers),
                key: key.clone(),
                bytes: bytes.clone(),
                ack: None,
                acks_2xx: Vec::new(),
                pending_cancel: None,
                cancel: None,
            })
        } else {
            EntryKind::ClientNonInvite {
                machine: ClientNonInvite::start(&self.config, reliable, &mut timers),
                key: key.clone(),
                bytes: bytes.clone(),
            }
        };
        self.transmits.push_back(target.transmit(bytes, Some(id)));
        self.client_index.insert(key, id);
        self.transactions.insert(
            id,
            Box::new(Entry {
                request: Some(Box::new(request)),
                target,
                kind,
            }),
        );
        Ok(id)
    }

    /// Start the CANCEL transaction for INVITE `invite` (same target as the INVITE).
    pub(super) fn start_cancel(
        &mut self,
        now: Instant,
        invite: TransactionId,
        cancel: Request,
    ) -> Option<ClientTransaction<NonInvite>> {
        let target = self.transactions.get(&invite)?.target.clone();
        let id = self.start_client(now, cancel, target).ok()?;
        if let Some(Entry {
            kind: EntryKind::ClientInvite(e),
            ..
        }) = self.transactions.get_mut(&invite).map(|e| &mut **e)
        {
            e.cancel = Some(id);
            let mut timers = Timers {
                queue: &mut self.timers,
                id: invite,
                now,
            };
            e.machine.cancel_sent(&self.config, &mut timers);
        }
        Some(ClientTransaction::new(id))
    }
}
