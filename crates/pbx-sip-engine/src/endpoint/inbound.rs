//! Messages from the network: parsing, Via stamping, matching, and dispatch to transactions.

use std::time::Instant;

use bytes::Bytes;
use pbx_sip::{HeaderName, Message, Method, ParseError, Request, Response, StatusCode};

use super::{Endpoint, EntryKind, ServerEntry};
use crate::build;
use crate::config::Overload;
use crate::event::Event;
use crate::incoming::Incoming;
use crate::key::{AckKey, ClientKey, ServerKey};
use crate::routing::{response_target, stamp_top_via};
use crate::salvage;
use crate::transaction::client_invite::ClientInviteResponse;
use crate::transaction::client_non_invite::ClientNonInviteResponse;
use crate::transaction::server_invite::AckVerdict;
use crate::transaction::server_non_invite::ServerNonInvite;
use crate::transaction::{
    ClientInviteState, Invite, RetransmissionVerdict, ServerInviteState, ServerTransaction, Timers,
    TransactionId,
};
use crate::transport::{Target, TransportInfo};

impl Endpoint {
    /// A datagram (UDP) or one framed message (stream transports; frame with pbx-sip's
    /// framer first) arrived. Returns the new request to decide on, if it is one.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        info: TransportInfo,
        contents: Bytes,
    ) -> Option<Incoming> {
        let parsed = if info.is_reliable() {
            Message::parse(contents.clone())
        } else {
            Message::parse_datagram(contents.clone())
        };
        match parsed {
            Ok(message) => self.handle_message(now, info, message),
            Err(error) => {
                // Answer a broken request when its Via can still be found (400, 505, 413).
                if let Some(status) = error.status()
                    && let Some((mut response, via)) = salvage::error_response(&contents, status)
                {
                    response.set_to_tag(self.ids.tag());
                    let target = match via {
                        Some(via) => response_target(&via, &info),
                        None => source_target(&info),
                    };
                    self.transmits
                        .push_back(target.transmit(response.to_bytes(), None));
                }
                self.malformed(&info, error);
                None
            }
        }
    }

    /// A parsed message arrived. Returns the new request to decide on, if it is one.
    pub fn handle_message(
        &mut self,
        now: Instant,
        info: TransportInfo,
        message: Message,
    ) -> Option<Incoming> {
        match message {
            Message::Request(request) => self.handle_request(now, info, request),
            Message::Response(response) => {
                self.handle_response(now, info, response);
                None
            }
        }
    }

    fn malformed(&mut self, info: &TransportInfo, error: ParseError) {
        self.stats.malformed += 1;
        self.events.push_back(Event::Malformed {
            source: info.source,
            error,
        });
    }

    fn handle_response(&mut self, now: Instant, info: TransportInfo, response: Response) {
        if let Err(error) = response.validate() {
            return self.malformed(&info, error);
        }
        let key = match ClientKey::of_response(&response) {
            Ok(key) => key,
            Err(error) => return self.malformed(&info, error),
        };
        let Some(id) = key.and_then(|key| self.client_index.get(&key).copied()) else {
            self.stats.stray_responses += 1;
            self.events
                .push_back(Event::StrayResponse { response, info });
            return;
        };
        let status = response.status().0;
        let Some(entry) = self.transactions.get_mut(&id) else {
            return;
        };
        let mut timers = Timers {
            queue: &mut self.timers,
            id,
            now,
        };
        let mut cancel_now = None;
        match &mut entry.kind {
            EntryKind::ClientInvite(e) => {
                let before = e.machine.state();
                match e.machine.on_response(&self.config, status, &mut timers) {
                    ClientInviteResponse::PassUp => {
                        if (200..300).contains(&status) {
                            // Accepted (Timer M, 32 s): the INVITE is never re-sent again
                            // (the request stays until the TU releases it, for its dialogs).
                            e.bytes = Bytes::new();
                            let to_tag = response.to().ok().and_then(|to| to.tag);
                            if let Some((_, ack)) = e.acks_2xx.iter().find(|(t, _)| *t == to_tag) {
                                self.stats.retransmissions += 1;
                                self.transmits.push_back(ack.clone());
                            }
                        }
                        self.events.push_back(Event::Response {
                            transaction: id,
                            response,
                        });
                    }
                    ClientInviteResponse::AckAndPassUp => {
                        // Completed: the INVITE is never re-sent again (its request stays, for
                        // a challenge's retry).
                        e.bytes = Bytes::new();
                        let ack = entry
                            .request
                            .as_deref()
                            .map(|request| build::ack_for_non_2xx(request, &response));
                        match ack {
                            None => {}
                            Some(Ok(ack)) => {
                                let bytes = ack.to_bytes();
                                e.ack = Some(bytes.clone());
                                self.transmits
                                    .push_back(entry.target.transmit(bytes, Some(id)));
                            }
                            Some(Err(error)) => {
                                self.stats.malformed += 1;
                                self.events.push_back(Event::Malformed {
                                    source: info.source,
                                    error,
                                });
                            }
                        }
                        self.events.push_back(Event::Response {
                            transaction: id,
                            response,
                        });
                    }
                    ClientInviteResponse::ResendAck => {
                        self.stats.absorbed += 1;
                        if let Some(ack) = e.ack.clone() {
                            self.stats.retransmissions += 1;
                            self.transmits
                                .push_back(entry.target.transmit(ack, Some(id)));
                        }
                    }
                    ClientInviteResponse::Absorb => self.stats.absorbed += 1,
                }
                let after = e.machine.state();
                if before == ClientInviteState::Calling && after != before {
                    let pending = e.pending_cancel.take();
                    if after == ClientInviteState::Proceeding {
                        cancel_now = pending;
                    }
                }
            }
            EntryKind::ClientNonInvite { machine, .. } => {
                match machine.on_response(&self.config, status, &mut timers) {
                    ClientNonInviteResponse::PassUp => self.events.push_back(Event::Response {
                        transaction: id,
                        response,
                    }),
                    ClientNonInviteResponse::Absorb => self.stats.absorbed += 1,
                }
            }
            EntryKind::ServerInvite(_) | EntryKind::ServerNonInvite(_) => {}
        }
        if let Some(cancel) = cancel_now {
            // A failure here (capacity) leaves the INVITE uncancelled; the TU can retry.
            let _ = self.start_cancel(now, id, *cancel);
        }
        self.remove_if_terminated(id);
    }

    fn handle_request(
        &mut self,
        now: Instant,
        info: TransportInfo,
        mut request: Request,
    ) -> Option<Incoming> {
        let via = match stamp_top_via(&mut request, info.source) {
            Ok(via) => via,
            Err(error) => {
                // No usable Via to route by: answer to where the request came from (a
                // response without our knowing the client's port would be lost anyway).
                if *request.method() != Method::Ack
                    && request.headers().contains(&HeaderName::Via)
                    && let Some(status) = error.status()
                {
                    let mut response = Response::for_request(&request, status);
                    response.set_to_tag(self.ids.tag());
                    let target = source_target(&info);
                    self.transmits
                        .push_back(target.transmit(response.to_bytes(), None));
                }
                self.malformed(&info, error);
                return None;
            }
        };
        let target = response_target(&via, &info);
        if let Err(error) = request.validate() {
            if *request.method() != Method::Ack
                && let Some(status) = error.status()
            {
                let mut response = Response::for_request(&request, status);
                response.set_to_tag(self.ids.tag());
                self.transmits
                    .push_back(target.transmit(response.to_bytes(), None));
            }
            self.malformed(&info, error);
            return None;
        }
        let key = match ServerKey::of_request(&request, &via) {
            Ok(key) => key,
            Err(error) => {
                self.malformed(&info, error);
                return None;
            }
        };
        if *request.method() == Method::Ack {
            self.handle_ack(now, info, request, &key);
            return None;
        }
        if let Some(&id) = self.server_index.get(&key) {
            self.handle_retransmission(id);
            return None;
        }
        if *request.method() == Method::Cancel {
            self.handle_cancel(now, request, &key, target);
            return None;
        }
        if self.at_capacity() {
            self.stats.overloaded += 1;
            if self.config.overload == Overload::Reject503 {
                let mut response = Response::for_request(&request, StatusCode::SERVICE_UNAVAILABLE);
                response.set_to_tag(self.ids.tag());
                self.transmits
                    .push_back(target.transmit(response.to_bytes(), None));
            }
            return None;
        }
        Some(Incoming {
            request,
            info,
            key,
            target,
            received_at: now,
        })
    }

    fn handle_retransmission(&mut self, id: TransactionId) {
        let Some(entry) = self.transactions.get(&id) else {
            return;
        };
        let (verdict, last) = match &entry.kind {
            EntryKind::ServerInvite(e) => (e.machine.on_retransmission(), &e.last_response),
            EntryKind::ServerNonInvite(e) => (e.machine.on_retransmission(), &e.last_response),
            _ => return,
        };
        self.stats.absorbed += 1;
        if verdict == RetransmissionVerdict::ResendLast
            && let Some(bytes) = last.clone()
        {
            self.stats.retransmissions += 1;
            self.transmits
                .push_back(entry.target.transmit(bytes, Some(id)));
        }
    }

    fn handle_ack(&mut self, now: Instant, info: TransportInfo, request: Request, key: &ServerKey) {
        let to_tag = request.to().ok().and_then(|to| to.tag);
        let by_branch = self.server_index.get(key).copied().filter(|id| {
            // RFC 2543 keys do not include the To tag: the ACK must carry the tag of our
            // final response (§17.2.3).
            !key.is_rfc2543()
                || matches!(
                    self.transactions.get(id).map(|e| &e.kind),
                    Some(EntryKind::ServerInvite(e)) if e.final_to_tag == to_tag
                )
        });
        let by_dialog = || {
            AckKey::of_request(&request)
                .ok()
                .and_then(|k| self.ack_index.get(&k).copied())
        };
        let Some(id) = by_branch.or_else(by_dialog) else {
            self.stats.stray_acks += 1;
            self.events.push_back(Event::Ack {
                transaction: None,
                request,
                info,
            });
            return;
        };
        let Some(EntryKind::ServerInvite(e)) = self.transactions.get_mut(&id).map(|e| &mut e.kind)
        else {
            return;
        };
        let mut timers = Timers {
            queue: &mut self.timers,
            id,
            now,
        };
        let verdict = e.machine.on_ack(&self.config, &mut timers);
        // Acknowledged: the final response is never re-sent again (an INVITE retransmitted
        // after this is absorbed), so its bytes need not stay for the rest of Timer I or L.
        // (A stray ACK while proceeding changes nothing: the provisional stays.)
        if e.machine.state() != ServerInviteState::Proceeding {
            e.last_response = None;
        }
        match verdict {
            AckVerdict::Absorb => self.stats.absorbed += 1,
            AckVerdict::PassUp => self.events.push_back(Event::Ack {
                transaction: Some(ServerTransaction::new(id)),
                request,
                info,
            }),
        }
        self.remove_if_terminated(id);
    }

    fn handle_cancel(&mut self, now: Instant, cancel: Request, key: &ServerKey, target: Target) {
        let invite_key = key.with_method(Method::Invite);
        let invite = self.server_index.get(&invite_key).copied().and_then(|id| {
            match self.transactions.get(&id).map(|e| &e.kind) {
                Some(EntryKind::ServerInvite(e)) => Some((
                    id,
                    e.machine.state(),
                    e.final_to_tag
                        .clone()
                        .unwrap_or_else(|| e.local_tag.clone()),
                )),
                _ => None,
            }
        });
        let Some((invite_id, state, tag)) = invite else {
            // §9.2: no matching transaction → 481, statelessly.
            let mut response =
                Response::for_request(&cancel, StatusCode::CALL_OR_TRANSACTION_DOES_NOT_EXIST);
            response.set_to_tag(self.ids.tag());
            self.transmits
                .push_back(target.transmit(response.to_bytes(), None));
            return;
        };
        // The CANCEL gets its own non-INVITE server transaction (it is bounded by the INVITE
        // it matched, so no admission step), answered 200 at once.
        let id = self.allocate_id();
        let reliable = target.is_reliable();
        let mut machine = ServerNonInvite::new(reliable);
        let mut response = Response::for_request(&cancel, StatusCode::OK);
        response.set_to_tag(&tag);
        let bytes = response.to_bytes();
        let mut timers = Timers {
            queue: &mut self.timers,
            id,
            now,
        };
        machine.on_send(&self.config, 200, &mut timers);
        self.transmits
            .push_back(target.transmit(bytes.clone(), Some(id)));
        self.server_index.insert(key.clone(), id);
        self.transactions.insert(
            id,
            Box::new(super::Entry {
                request: Some(Box::new(cancel.clone())),
                target,
                kind: EntryKind::ServerNonInvite(ServerEntry {
                    machine,
                    key: key.clone(),
                    last_response: Some(bytes),
                    final_to_tag: Some(tag),
                    local_tag: Bytes::new(),
                    ack_keys: Vec::new(),
                }),
            }),
        );
        self.remove_if_terminated(id);
        if state == ServerInviteState::Proceeding {
            self.events.push_back(Event::Cancelled {
                invite: ServerTransaction::<Invite>::new(invite_id),
                cancel,
            });
        }
    }
}

/// Back to the source of the message (on its flow for connections): the answer of last
/// resort when the top Via cannot be read.
fn source_target(info: &TransportInfo) -> Target {
    Target {
        transport: info.transport.clone(),
        address: info.source,
        flow: info.flow,
    }
}
