//! Server-side commands: admission of new requests and responses on server transactions.

use std::time::Instant;

use bytes::Bytes;
use pbx_sip::{Method, Response, StatusCode};

use super::{Endpoint, Entry, EntryKind, ServerEntry};
use crate::error::{AcceptError, ResponseError};
use crate::incoming::Incoming;
use crate::key::AckKey;
use crate::transaction::server_invite::ServerInvite;
use crate::transaction::server_non_invite::ServerNonInvite;
use crate::transaction::{
    AcceptedTransaction, Invite, SendVerdict, ServerHandle, ServerTransaction, Timers,
    TransactionId,
};

impl Endpoint {
    /// Create the server transaction for `incoming`. For an INVITE, sends `100 Trying` at
    /// once when [`crate::Config::send_100_trying`] is set.
    pub fn accept(
        &mut self,
        now: Instant,
        incoming: Incoming,
    ) -> Result<AcceptedTransaction, AcceptError> {
        if self.server_index.contains_key(&incoming.key) {
            return Err(AcceptError::AlreadyExists);
        }
        if self.at_capacity() {
            self.stats.overloaded += 1;
            return Err(AcceptError::TooManyTransactions);
        }
        let Incoming {
            request,
            key,
            target,
            ..
        } = incoming;
        // The key outlives the request (Timer J keeps a completed UDP transaction for 32 s
        // after its request is dropped): it must not pin the received datagram.
        let key = key.detached();
        let id = self.allocate_id();
        let reliable = target.is_reliable();
        let local_tag = Bytes::from(self.ids.tag());
        let invite = *request.method() == Method::Invite;
        let kind = if invite {
            EntryKind::ServerInvite(ServerEntry {
                machine: ServerInvite::new(&self.config, reliable),
                key: key.clone(),
                last_response: None,
                final_to_tag: None,
                local_tag,
                ack_keys: Vec::new(),
            })
        } else {
            EntryKind::ServerNonInvite(ServerEntry {
                machine: ServerNonInvite::new(reliable),
                key: key.clone(),
                last_response: None,
                final_to_tag: None,
                local_tag,
                ack_keys: Vec::new(),
            })
        };
        self.server_index.insert(key, id);
        self.transactions.insert(
            id,
            Box::new(Entry {
                request: Some(Box::new(request)),
                target,
                kind,
            }),
        );
        if !invite {
            return Ok(AcceptedTransaction::NonInvite(ServerTransaction::new(id)));
        }
        if self.config.send_100_trying {
            // Cannot fail: the transaction was created in Proceeding just above.
            let _ = self.respond(
                now,
                ServerTransaction::<Invite>::new(id),
                StatusCode::TRYING,
            );
        }
        Ok(AcceptedTransaction::Invite(ServerTransaction::new(id)))
    }

    /// Answer `incoming` statelessly with `status` (a To tag is added); no transaction is
    /// created. Retransmissions of the request come out as new `Incoming`s.
    pub fn reject(&mut self, _now: Instant, incoming: Incoming, status: StatusCode) {
        let mut response = Response::for_request(&incoming.request, status);
        if status != StatusCode::TRYING {
            response.set_to_tag(self.ids.tag());
        }
        self.transmits
            .push_back(incoming.target.transmit(response.to_bytes(), None));
    }

    /// Answer `incoming` statelessly with a response the caller built (a 401 challenge with
    /// a stateless nonce, a redirect, …), sent where §18.2.2 says.
    pub fn respond_stateless(&mut self, _now: Instant, incoming: Incoming, response: &Response) {
        self.transmits
            .push_back(incoming.target.transmit(response.to_bytes(), None));
    }

    /// Drop `incoming` without an answer (same as letting it go out of scope, but says so).
    pub fn ignore(&mut self, incoming: Incoming) {
        drop(incoming);
    }

    /// A response to the request of `transaction` with `status`, carrying the transaction's
    /// To tag (except for 100). Add headers and body, then pass it to `send_response`.
    pub fn response(
        &self,
        transaction: impl ServerHandle,
        status: StatusCode,
    ) -> Result<Response, ResponseError> {
        self.build_response(transaction.into(), status)
    }

    /// Send `response` on a server transaction. Provisional responses and one final response
    /// are allowed (for INVITE, further 2xx after a 2xx). A 2xx to INVITE is retransmitted
    /// until its ACK arrives when [`crate::Config::retransmit_2xx`] is on.
    pub fn send_response(
        &mut self,
        now: Instant,
        transaction: impl ServerHandle,
        response: Response,
    ) -> Result<(), ResponseError> {
        self.send_on(now, transaction.into(), response)
    }

    /// Build and send a response with `status` (see [`Endpoint::response`]).
    pub fn respond(
        &mut self,
        now: Instant,
        transaction: impl ServerHandle,
        status: StatusCode,
    ) -> Result<(), ResponseError> {
        let id = transaction.into();
        let response = self.build_response(id, status)?;
        self.send_on(now, id, response)
    }

    fn build_response(
        &self,
        id: TransactionId,
        status: StatusCode,
    ) -> Result<Response, ResponseError> {
        let entry = self
            .transactions
            .get(&id)
            .ok_or(ResponseError::UnknownTransaction)?;
        let tag = match &entry.kind {
            EntryKind::ServerInvite(e) => &e.local_tag,
            EntryKind::ServerNonInvite(e) => &e.local_tag,
            _ => return Err(ResponseError::NotAServerTransaction),
        };
        let request = entry
            .request
            .as_deref()
            .ok_or(ResponseError::AlreadyFinal)?;
        let response = Response::for_request(request, status);
        Ok(if status == StatusCode::TRYING {
            response
        } else {
            response.with_to_tag(tag)
        })
    }

    fn send_on(
        &mut self,
        now: Instant,
        id: TransactionId,
        response: Response,
    ) -> Result<(), ResponseError> {
        let entry = self
            .transactions
            .get_mut(&id)
            .ok_or(ResponseError::UnknownTransaction)?;
        let status = response.status().0;
        let mut timers = Timers {
            queue: &mut self.timers,
            id,
            now,
        };
        let bytes = response.to_bytes();
        let is_final = status >= 200;
        let to_tag = || response.to().ok().and_then(|to| to.tag);
        match &mut entry.kind {
            EntryKind::ServerInvite(e) => {
                if e.machine.on_send(&self.config, status, &mut timers) == SendVerdict::AlreadyFinal
                {
                    return Err(ResponseError::AlreadyFinal);
                }
                if (200..300).contains(&status) {
                    // Detached: the response's Call-ID and From tag slice the received INVITE,
                    // which the index would otherwise keep alive for the 32 s of Timer L.
                    let key = AckKey::of_response(&response)
                        .map_err(ResponseError::Malformed)?
                        .detached();
                    self.ack_index.insert(key.clone(), id);
                    e.ack_keys.push(key);
                }
                if is_final {
                    e.final_to_tag = to_tag();
                    // Completed or Accepted (Timer H/I, or L for 32 s after a 2xx): the last
                    // response, the key and the ACK index are all that is needed now, and the
                    // INVITE (with its SDP) is most of the entry's memory.
                    entry.request = None;
                }
                e.last_response = Some(bytes.clone());
            }
            EntryKind::ServerNonInvite(e) => {
                if e.machine.on_send(&self.config, status, &mut timers) == SendVerdict::AlreadyFinal
                {
                    return Err(ResponseError::AlreadyFinal);
                }
                if is_final {
                    e.final_to_tag = to_tag();
                    if !entry.target.is_reliable() {
                        // Completed: only the last response is needed until Timer J.
                        entry.request = None;
                    }
                }
                e.last_response = Some(bytes.clone());
            }
            _ => return Err(ResponseError::NotAServerTransaction),
        }
        self.transmits
            .push_back(entry.target.transmit(bytes, Some(id)));
        self.remove_if_terminated(id);
        Ok(())
    }
}
