//! The call engine: every call of one SIP element, indexed by the transactions and dialogs
//! that lead to it.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use pbx_sdp::LegOrigin;
use pbx_sip::{HeaderName, Method, NameAddr, Refresher, Request, Response, StatusCode};
use pbx_sip_auth::{AuthRole, DigestClient};
use pbx_sip_engine::{
    AcceptedTransaction, ClientTransaction, Dialog, DialogId, Endpoint, Event, Incoming, Invite,
    ServerTransaction, Target, Timer, TransactionId,
};

use crate::call::{Call, Fork, ForkState, Leg, Phase, Relay, SessionTimer};
use crate::config::CallConfig;
use crate::media::{MediaAllocator, Side};
use crate::record::{CallRecord, Direction, Disposition, HangupSide, Now, disposition_for};
use crate::reliable::{Due, Reliable, Support};
use crate::sdp::body_sdp;
use crate::sip::{
    ForkTarget, TrunkAttempt, TrunkCredentials, copy_passed_headers, our_contact, our_via, reason,
};

mod attended;
mod early;
mod late_offer;
mod prack;
mod transfer;

pub use transfer::{NewTransfer, RefusedTransfer, ReplacedDialog, TransferError, TransferRequest};

/// Methods we allow on every leg.
const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO, PRACK";

/// Methods we allow on a device's leg, which may transfer the call (REFER).
const ALLOW_REFER: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO, PRACK, REFER, NOTIFY";

/// The cause recorded when the caller never PRACKed a reliable provisional.
const NO_PRACK: &str = "no PRACK from caller";

/// The cause recorded (and sent in `Reason`) for calls ended by a clean shutdown.
const SHUTTING_DOWN: &str = "server shutting down";

/// Which change of a call's record [`CallEngine::poll_record`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Admitted and forked: write the record open (a crash leaves it to be closed).
    Started,
    /// First 180/183 from any fork.
    Ringing,
    /// The first 2xx.
    Answered,
    /// Finished: the final record.
    Ended,
}

/// Identifies a call of an engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallKey(pub u64);

impl CallKey {
    /// The label the call's media session is allocated with (`call-<n>`).
    pub fn label(self) -> String {
        format!("call-{}", self.0)
    }

    /// The call a media session label names.
    pub fn from_label(label: &str) -> Option<CallKey> {
        label.strip_prefix("call-")?.parse().ok().map(CallKey)
    }
}

/// Why a call could not start (the caller has been answered already, and a record emitted).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The INVITE's SDP offer did not parse (answered 400). An INVITE without SDP is a late
    /// offer, not an error.
    #[error("no usable SDP offer (answered {0})")]
    BadOffer(u16),
    /// No codec of the offer is relayed by the platform (answered 488).
    #[error("no common codec (answered 488)")]
    NoCommonCodec,
    /// No target to fork to (answered 480), or no trunk to try (answered 503).
    #[error("callee not reachable")]
    NoTarget,
    /// The relay had no free ports, or no B-leg INVITE could be sent (answered 503).
    #[error("resources unavailable (answered 503)")]
    Unavailable,
}

/// What the driver knows about a new call after authenticating and routing it.
#[derive(Debug, Clone)]
pub struct NewCall<C> {
    /// The driver's context (tenant, user, device), returned in the record.
    pub context: C,
    /// Internal, outbound or inbound.
    pub direction: Direction,
    /// The caller's number or extension as presented.
    pub caller: String,
    /// The callee as dialled.
    pub callee_dialled: String,
    /// The callee normalised.
    pub callee_normalised: String,
    /// The identity presented to the callee (From of the B-legs, without tag).
    pub from: NameAddr,
    /// Where in-dialog requests to the caller go (its flow).
    pub a_target: Target,
    /// Our address facing the caller.
    pub a_local: SocketAddr,
    /// Where to fork.
    pub targets: Vec<ForkTarget>,
    /// The trunk, for the CDR.
    pub trunk: Option<String>,
}

/// What a client transaction of ours is for.
#[derive(Debug, Clone, Copy)]
enum Role {
    Fork(usize),
    Relay(Relay),
    Refresh(Side),
    /// The caller's PRACK carrying an offer, relayed to the fork: its answer goes back to
    /// the caller's PRACK transaction.
    Prack(AcceptedTransaction),
    /// An UPDATE relayed between the caller's early dialog and fork `1`'s (RFC 3311).
    Early(Relay, usize),
    /// An INVITE of a transfer to one of the target's bindings (index in the transfer's
    /// forks).
    Transfer(usize),
    /// Our re-INVITE of an attended transfer's target (filed under the target's call) that
    /// moves it to call `0`'s relay.
    Join(CallKey),
    /// BYE, CANCEL, NOTIFY, our own PRACK or the BYE to a late 2xx: nothing to do with the
    /// answer.
    Fire,
}

/// A fork left over when its call ended before it answered: a late 2xx is ACKed and BYEd.
#[derive(Debug, Clone)]
struct Orphan {
    request: Request,
    target: Target,
    local: SocketAddr,
}

impl Orphan {
    /// What a fork's late 2xx needs for its ACK and BYE, with the fork's transaction.
    fn of(fork: &Fork) -> (TransactionId, Orphan) {
        let orphan = Orphan {
            request: fork.request.clone(),
            target: fork.target.target.clone(),
            local: fork.target.local,
        };
        (fork.transaction.id(), orphan)
    }
}

/// The B2BUA call engine (see the crate documentation).
#[derive(Debug)]
pub struct CallEngine<C> {
    config: CallConfig,
    next_key: u64,
    calls: HashMap<CallKey, Call<C>>,
    /// A-leg INVITE server transactions.
    invites: HashMap<TransactionId, CallKey>,
    /// Our client transactions.
    clients: HashMap<TransactionId, (CallKey, Role)>,
    /// (Call-ID, our tag) of every leg and fork.
    dialogs: HashMap<(Bytes, Bytes), (CallKey, Side)>,
    orphans: HashMap<TransactionId, Orphan>,
    /// In-dialog requests on a trunk leg (BYE, re-INVITE, UPDATE, INFO) whose carrier
    /// challenge (401/407) is still to be answered with the trunk's credentials; an entry is
    /// removed when used, so a request is answered once.
    trunk_auth: HashMap<TransactionId, TrunkRetry>,
    deadlines: BTreeSet<(Instant, CallKey)>,
    records: VecDeque<(Stage, CallRecord<C>)>,
    /// INVITE server transactions whose ACK must bring the answer to an offer we relayed in
    /// their 2xx (late offer), by call.
    late_acks: HashMap<TransactionId, CallKey>,
    /// Transfers asked for by REFERs, for the driver to resolve.
    transfers: VecDeque<TransferRequest<C>>,
    /// Dialogs of transferors that left their call, until when a BYE in them is answered
    /// 200.
    departed: HashMap<(Bytes, Bytes), Instant>,
}

/// Lets the endpoint drop the request of an INVITE client transaction a 2xx accepted: the
/// engine keeps its own copy of every INVITE it sends (forks, relayed and refreshing
/// re-INVITEs) and builds dialogs and ACKs from that, so the endpoint's copy would only sit
/// there for Timer M's 32 s (about half a kilobyte to a kilobyte per call). A no-op for any
/// other transaction.
fn release_accepted(endpoint: &mut Endpoint, transaction: TransactionId) {
    if let Some(invite) = endpoint.client_invite(transaction) {
        endpoint.release_request(invite);
    }
}

/// What answering a carrier's challenge to an in-dialog request needs once the call may be
/// gone (a BYE): our account, where the request went, and our address there.
#[derive(Debug)]
struct TrunkRetry {
    credentials: TrunkCredentials,
    target: Target,
    local: std::net::SocketAddr,
}

impl<C: Clone> CallEngine<C> {
    /// An engine with `config`.
    pub fn new(config: CallConfig) -> CallEngine<C> {
        CallEngine {
            config,
            next_key: 0,
            calls: HashMap::new(),
            invites: HashMap::new(),
            clients: HashMap::new(),
            dialogs: HashMap::new(),
            orphans: HashMap::new(),
            trunk_auth: HashMap::new(),
            deadlines: BTreeSet::new(),
            records: VecDeque::new(),
            late_acks: HashMap::new(),
            transfers: VecDeque::new(),
            departed: HashMap::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &CallConfig {
        &self.config
    }

    /// Calls in progress (ringing or answered).
    pub fn call_count(&self) -> usize {
        self.calls.len()
    }

    /// Whether `key` is a call in progress.
    pub fn contains(&self, key: CallKey) -> bool {
        self.calls.contains_key(&key)
    }

    /// The next change of a call's record, oldest first: every call gives `Started` (when it
    /// was admitted and forked), at most one `Ringing` and one `Answered`, and one `Ended`
    /// (the final record). A call refused before forking gives only `Ended`.
    pub fn poll_record(&mut self) -> Option<(Stage, CallRecord<C>)> {
        self.records.pop_front()
    }

    /// The earliest deadline of any call (ring timeout, maximum duration, session timers).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadlines.first().map(|(at, _)| *at)
    }

    /// Starts a call for an accepted INVITE: rewrites its offer for our relay and forks it to
    /// every target. On failure the caller has been answered and a record emitted.
    pub fn start_call(
        &mut self,
        endpoint: &mut Endpoint,
        now: Now,
        invite: ServerTransaction<Invite>,
        request: Request,
        new: NewCall<C>,
        media: &mut dyn MediaAllocator,
    ) -> Result<CallKey, StartError> {
        self.start(endpoint, now, invite, request, new, None, media)
    }

    /// Starts an outbound call through `trunks`, tried one at a time in order: a 401/407 is
    /// answered once with the trunk's credentials (same Call-ID and tag, CSeq + 1); a 5xx,
    /// 408, timeout, transport error or a challenge that cannot be answered moves on to the
    /// next trunk; any other 4xx/6xx ends the call with that status (3xx as 480). When every
    /// trunk failed the caller gets 503 (408 when the last one timed out). `new.targets`
    /// and `new.from` are not used: each attempt carries its own target and caller ID, and
    /// the record's `trunk` names the trunk tried last.
    #[allow(clippy::too_many_arguments)] // `start_call`'s inputs plus the trunk list
    pub fn start_trunk_call(
        &mut self,
        endpoint: &mut Endpoint,
        now: Now,
        invite: ServerTransaction<Invite>,
        request: Request,
        new: NewCall<C>,
        trunks: Vec<TrunkAttempt>,
        media: &mut dyn MediaAllocator,
    ) -> Result<CallKey, StartError> {
        self.start(endpoint, now, invite, request, new, Some(trunks), media)
    }

    #[allow(clippy::too_many_arguments)]
    fn start(
        &mut self,
        endpoint: &mut Endpoint,
        now: Now,
        invite: ServerTransaction<Invite>,
        request: Request,
        new: NewCall<C>,
        trunks: Option<Vec<TrunkAttempt>>,
        media: &mut dyn MediaAllocator,
    ) -> Result<CallKey, StartError> {
        self.next_key += 1;
        let key = CallKey(self.next_key);
        let a_call_id = request.call_id().unwrap_or_default();
        let mut record = CallRecord::open(
            new.context.clone(),
            key.0,
            String::from_utf8_lossy(&a_call_id).into_owned(),
            new.direction,
            new.caller.clone(),
            new.callee_dialled.clone(),
            new.callee_normalised.clone(),
            now,
        );
        record.trunk = new.trunk.clone();
        let fail = |engine: &mut CallEngine<C>,
                    endpoint: &mut Endpoint,
                    mut record: CallRecord<C>,
                    status: u16,
                    cause: &str,
                    error: StartError| {
            let _ = endpoint.respond(now.instant, invite, StatusCode(status));
            record.close(
                now,
                disposition_for(status),
                status,
                cause,
                HangupSide::System,
            );
            engine.records.push_back((Stage::Ended, record));
            Err(error)
        };
        // No SDP at all is a late offer (RFC 3261 §13.2.1): the forks get no offer either.
        let offer = match body_sdp(request.headers(), request.body()) {
            Some(Ok(offer)) => Some(offer),
            Some(Err(_)) => {
                return fail(
                    self,
                    endpoint,
                    record,
                    400,
                    "malformed SDP",
                    StartError::BadOffer(400),
                );
            }
            None => None,
        };
        let mut b_offer = offer.clone();
        if let Some(b_offer) = b_offer.as_mut()
            && b_offer.restrict_to(&self.config.codecs).is_err()
        {
            return fail(
                self,
                endpoint,
                record,
                488,
                "no common codec",
                StartError::NoCommonCodec,
            );
        }
        match &trunks {
            Some(list) if list.is_empty() => {
                return fail(
                    self,
                    endpoint,
                    record,
                    503,
                    "no trunk",
                    StartError::NoTarget,
                );
            }
            None if new.targets.is_empty() => {
                return fail(
                    self,
                    endpoint,
                    record,
                    480,
                    "not registered",
                    StartError::NoTarget,
                );
            }
            _ => {}
        }
        let Ok(session) = media.allocate(&key.label()) else {
            return fail(
                self,
                endpoint,
                record,
                503,
                "no media ports",
                StartError::Unavailable,
            );
        };
        let a_tag = endpoint
            .response(invite, StatusCode(180))
            .ok()
            .and_then(|r| r.to().ok())
            .and_then(|to| to.tag)
            .unwrap_or_default();
        let a_local_media = session.local(Side::A);
        let b_local_media = session.local(Side::B);
        let session_seed = key.0.wrapping_mul(0x9E37_79B9) ^ now.unix_ms.unsigned_abs();
        let (a_timer_request, a_supports_timer) = timer_request(&request);
        let mut call = Call {
            record,
            phase: Phase::Ringing,
            a_invite: invite,
            a_request: request.clone(),
            a_call_id: a_call_id.clone(),
            a_tag: a_tag.clone(),
            a: Leg {
                dialog: None,
                target: new.a_target.clone(),
                local: new.a_local,
                origin: LegOrigin::new(&self.config.sdp_user, session_seed, 1, a_local_media.ip()),
                last_sdp: None,
                timer: None,
                allows_update: allows_update(request.headers()),
            },
            b: None,
            b_origin: Some(LegOrigin::new(
                &self.config.sdp_user,
                session_seed ^ 0x5555,
                1,
                b_local_media.ip(),
            )),
            forks: Vec::new(),
            media: session,
            ring_deadline: Some(now.instant + self.config.ring_timeout),
            max_deadline: None,
            ringing_sent: false,
            a_early_answer: None,
            offer_pending: false,
            scheduled: None,
            a_timer_request,
            a_supports_timer,
            a_offer: None,
            fork_failures: Vec::new(),
            trunk_call: trunks.is_some(),
            trunks: trunks.unwrap_or_default().into(),
            b_body: Bytes::new(),
            max_forwards: 70,
            attempt_deadline: None,
            reliable: Reliable::new(Support::of(&request), session_seed),
            held_answer: None,
            early_peer: None,
            b_early_sdp: None,
            late_ack: None,
            early_offer: None,
            transfer: None,
            joined_dialogs: Vec::new(),
            media_base: Default::default(),
            caller_side: Side::A,
            trunk_leg: None,
            joining: None,
        };
        if let Some(offer) = offer {
            call.learn_remote(Side::A, &offer);
            call.a_offer = Some(offer);
        }
        let b_body = match b_offer.map(|b_offer| call.sdp_toward_owned(Side::B, b_offer)) {
            Some(Ok(body)) => body,
            None => Bytes::new(),
            Some(Err(_)) => {
                return fail(
                    self,
                    endpoint,
                    call.record,
                    500,
                    "SDP rewrite",
                    StartError::Unavailable,
                );
            }
        };
        call.max_forwards = request
            .max_forwards()
            .ok()
            .flatten()
            .unwrap_or(70)
            .saturating_sub(1);
        call.b_body = b_body;
        let mut sender = Sender {
            config: &self.config,
            clients: &mut self.clients,
            dialogs: &mut self.dialogs,
            key,
        };
        if call.trunk_call {
            next_trunk(&mut sender, endpoint, now, &mut call);
        } else {
            for target in new.targets {
                let from = new.from.clone();
                sender.send_fork(endpoint, now, &mut call, target, from, &[], None);
            }
        }
        if call.forks.is_empty() {
            return fail(
                self,
                endpoint,
                call.record,
                503,
                "B-leg not sent",
                StartError::Unavailable,
            );
        }
        self.invites.insert(invite.id(), key);
        // The caller's early dialog: its PRACKs (and other early requests) find the call.
        self.dialogs
            .insert((call.a_call_id.clone(), call.a_tag.clone()), (key, Side::A));
        self.records
            .push_back((Stage::Started, call.record.clone()));
        self.calls.insert(key, call);
        self.reschedule(key);
        Ok(key)
    }

    /// An engine event. Returns whether it belonged to a call (the driver handles the rest).
    pub fn handle_event(&mut self, endpoint: &mut Endpoint, now: Now, event: &Event) -> bool {
        match event {
            Event::Response {
                transaction,
                response,
            } => {
                if let Some(orphan) = self.orphans.get(transaction) {
                    if response.status().is_success() {
                        let orphan = orphan.clone();
                        self.ack_and_bye(endpoint, now, *transaction, &orphan, response);
                        release_accepted(endpoint, *transaction);
                    }
                    return true;
                }
                let Some(&(key, role)) = self.clients.get(transaction) else {
                    return false;
                };
                let status = response.status().0;
                if status >= 200 {
                    let retry = self.trunk_auth.remove(transaction);
                    if let Some(retry) = retry.filter(|_| matches!(status, 401 | 407))
                        && let Some(sent) = self.answer_in_dialog_challenge(
                            endpoint,
                            now,
                            key,
                            *transaction,
                            &retry,
                            response,
                        )
                    {
                        self.clients.remove(transaction);
                        self.clients.insert(sent, (key, role));
                        return true;
                    }
                }
                match role {
                    Role::Fork(index) => self.on_fork_response(endpoint, now, key, index, response),
                    Role::Relay(relay) => {
                        self.on_relay_response(endpoint, now, key, *transaction, relay, response);
                    }
                    Role::Refresh(side) => {
                        self.on_refresh_response(endpoint, now, key, *transaction, side, response);
                    }
                    Role::Prack(server) => {
                        self.on_prack_response(endpoint, now, key, server, response);
                    }
                    Role::Early(relay, fork) => {
                        self.on_early_response(endpoint, now, key, relay, fork, response);
                    }
                    Role::Transfer(index) => {
                        self.on_transfer_response(endpoint, now, key, index, response);
                    }
                    Role::Join(into) => {
                        self.on_join_response(endpoint, now, key, into, *transaction, response);
                    }
                    Role::Fire => {}
                }
                if status >= 200 && !matches!(role, Role::Fork(_) | Role::Transfer(_)) {
                    self.clients.remove(transaction);
                }
                if response.status().is_success() {
                    release_accepted(endpoint, *transaction);
                }
                true
            }
            Event::TimedOut { transaction, timer } => {
                if self.orphans.contains_key(transaction) {
                    return true;
                }
                let Some(&(key, role)) = self.clients.get(transaction) else {
                    return false;
                };
                if *timer == Timer::C {
                    // The endpoint CANCELs the fork itself; its 487 comes later.
                    return true;
                }
                self.client_failed(endpoint, now, key, *transaction, role, 408);
                true
            }
            Event::TransportError { transaction } => {
                let Some(&(key, role)) = self.clients.get(transaction) else {
                    return self.orphans.remove(transaction).is_some();
                };
                self.client_failed(endpoint, now, key, *transaction, role, 503);
                true
            }
            Event::Terminated { transaction } => {
                self.trunk_auth.remove(transaction);
                self.clients.remove(transaction).is_some()
                    | self.orphans.remove(transaction).is_some()
                    | self.invites.remove(transaction).is_some()
            }
            Event::Cancelled { invite, .. } => {
                let Some(&key) = self.invites.get(&invite.id()) else {
                    return false;
                };
                self.on_caller_cancel(endpoint, now, key);
                true
            }
            Event::Ack {
                transaction,
                request,
                ..
            } => {
                if let Some(key) = self.late_ack_call(transaction.as_ref(), request) {
                    self.on_late_ack(endpoint, now, key, request);
                    return true;
                }
                if transaction.is_some_and(|t| self.invites.contains_key(&t.id())) {
                    return true;
                }
                // The ACK of a relayed re-INVITE's 2xx: we ACKed the other side ourselves.
                matches!(DialogId::of_incoming_request(request), Ok(Some(id))
                    if self.dialogs.contains_key(&(id.call_id.clone(), id.local_tag.clone())))
            }
            Event::AckNotReceived { transaction, .. } => {
                if let Some(&key) = self.late_acks.get(&transaction.id()) {
                    self.late_ack_missing(endpoint, now, key);
                    return true;
                }
                let Some(&key) = self.invites.get(&transaction.id()) else {
                    return false;
                };
                if self
                    .calls
                    .get(&key)
                    .is_some_and(|c| c.phase == Phase::Answered)
                {
                    let header = reason("SIP", 408, "no ACK");
                    self.teardown(
                        endpoint,
                        now,
                        key,
                        "no ACK from caller",
                        408,
                        &header,
                        HangupSide::System,
                    );
                }
                true
            }
            _ => false,
        }
    }

    /// A request with a To tag (in-dialog). Answers 481 when no call knows the dialog.
    pub fn handle_in_dialog(&mut self, endpoint: &mut Endpoint, now: Now, incoming: Incoming) {
        let method = incoming.method().clone();
        let request = incoming.request().clone();
        let found = DialogId::of_incoming_request(&request)
            .ok()
            .flatten()
            .and_then(|id| self.dialogs.get(&(id.call_id, id.local_tag)).copied());
        if method == Method::Ack {
            endpoint.ignore(incoming);
            return;
        }
        let Some((key, from)) = found else {
            // A transferor that left its call may still say goodbye.
            let gone = method == Method::Bye
                && DialogId::of_incoming_request(&request)
                    .ok()
                    .flatten()
                    .is_some_and(|id| self.departed(now, &(id.call_id, id.local_tag)));
            if gone {
                if let Ok(accepted) = endpoint.accept(now.instant, incoming) {
                    let _ = endpoint.respond(now.instant, accepted, StatusCode::OK);
                }
            } else {
                endpoint.reject(now.instant, incoming, StatusCode(481));
            }
            return;
        };
        let Ok(accepted) = endpoint.accept(now.instant, incoming) else {
            return;
        };
        let Some(call) = self.calls.get_mut(&key) else {
            let _ = endpoint.respond(now.instant, accepted, StatusCode(481));
            return;
        };
        if method == Method::Prack {
            self.on_prack(endpoint, now, key, from, accepted, &request);
            return;
        }
        if method == Method::Bye && from == Side::B && call.held_answer.is_some() {
            // The fork hung up before the caller got its (held) 2xx.
            let _ = endpoint.respond(now.instant, accepted, StatusCode::OK);
            if let Some(leg) = call.b.as_mut()
                && let Some(dialog) = leg.dialog.as_mut()
            {
                dialog.terminate();
            }
            self.fail_ringing(
                endpoint,
                now,
                key,
                480,
                "BYE before answer",
                Disposition::Unavailable,
            );
            return;
        }
        let confirmed = call.phase == Phase::Answered
            && call
                .leg(from)
                .and_then(|leg| leg.dialog.as_ref())
                .is_some_and(|d| request.call_id().ok().as_ref() == Some(&d.id().call_id));
        if !confirmed && method == Method::Update && call.phase == Phase::Ringing {
            self.on_early_update(endpoint, now, key, from, accepted, &request);
            return;
        }
        if !confirmed {
            // Early dialogs: OPTIONS is answered, UPDATE passes across (above); the rest
            // waits for the answer.
            let status = if method == Method::Options { 200 } else { 481 };
            let _ = endpoint.respond(now.instant, accepted, StatusCode(status));
            return;
        }
        if let Some(dialog) = call.leg_mut(from).and_then(|l| l.dialog.as_mut())
            && dialog.on_request(&request).is_err()
        {
            let _ = endpoint.respond(now.instant, accepted, StatusCode(500));
            return;
        }
        let party = call_party(call, from);
        let allow = allow_for(call, from);
        match method {
            Method::Options => {
                if let Ok(mut response) = endpoint.response(accepted, StatusCode::OK) {
                    response
                        .headers_mut()
                        .push(HeaderName::Allow, Bytes::from_static(allow.as_bytes()));
                    let _ = endpoint.send_response(now.instant, accepted, response);
                }
            }
            Method::Refer => self.on_refer(endpoint, now, key, from, accepted, &request),
            Method::Bye if self.on_transferor_bye(endpoint, now, key, from, accepted) => {}
            Method::Bye => {
                let _ = endpoint.respond(now.instant, accepted, StatusCode::OK);
                let header = request
                    .headers()
                    .get_bytes(&HeaderName::Reason)
                    .unwrap_or_else(|| reason("SIP", 200, "BYE"));
                let side = party;
                self.end_answered(
                    endpoint,
                    now,
                    key,
                    Some(from.other()),
                    "BYE",
                    200,
                    &header,
                    side,
                );
            }
            Method::Invite | Method::Update | Method::Info => {
                self.relay_request(endpoint, now, key, from, accepted, &request);
            }
            _ => {
                let _ = endpoint.respond(now.instant, accepted, StatusCode(501));
            }
        }
    }

    /// The relay reports that RTP stopped on `key` (RTP timeout): both legs get BYE with a
    /// Reason header.
    pub fn media_timeout(&mut self, endpoint: &mut Endpoint, now: Now, key: CallKey) {
        let header = reason("Q.850", 41, "RTP timeout");
        self.teardown(
            endpoint,
            now,
            key,
            "RTP timeout",
            408,
            &header,
            HangupSide::System,
        );
    }

    /// Ends a call for policy reasons (fraud guard, administrator): BYE or CANCEL/480.
    pub fn hang_up(&mut self, endpoint: &mut Endpoint, now: Now, key: CallKey, cause: &str) {
        let header = reason("SIP", 403, cause);
        self.teardown(endpoint, now, key, cause, 403, &header, HangupSide::System);
    }

    /// Ends every call because this element is shutting down: answered calls get BYE on
    /// both legs, ringing ones 503 to the caller and CANCEL to the forks, each with a
    /// `Reason: SIP;cause=503;text="server shutting down"`; every record closes (hangup side
    /// `system`). The driver then lets these transactions finish, within its grace period,
    /// before it stops.
    pub fn shut_down(&mut self, endpoint: &mut Endpoint, now: Now) {
        let header = reason("SIP", 503, SHUTTING_DOWN);
        let mut keys: Vec<CallKey> = self.calls.keys().copied().collect();
        keys.sort_unstable();
        for key in keys {
            let answered = self
                .calls
                .get(&key)
                .is_some_and(|call| call.phase == Phase::Answered);
            if answered {
                // An answered call ended normally, by us: status 200 as for the maximum
                // duration; the cause says why.
                let side = HangupSide::System;
                self.end_answered(endpoint, now, key, None, SHUTTING_DOWN, 200, &header, side);
            } else {
                let disposition = disposition_for(503);
                let side = Some(HangupSide::System);
                self.fail_ringing_by(endpoint, now, key, 503, SHUTTING_DOWN, disposition, side);
            }
        }
    }

    /// Fires the deadlines due at `now`.
    pub fn handle_timeout(&mut self, endpoint: &mut Endpoint, now: Now) {
        while let Some(&(at, key)) = self.deadlines.first() {
            if at > now.instant {
                break;
            }
            self.deadlines.remove(&(at, key));
            if let Some(call) = self.calls.get_mut(&key) {
                call.scheduled = None;
            }
            self.fire(endpoint, now, key);
            self.reschedule(key);
        }
    }

    // ----- internals -----

    fn fire(&mut self, endpoint: &mut Endpoint, now: Now, key: CallKey) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let t = now.instant;
        if call.ring_deadline.is_some_and(|d| d <= t) {
            call.ring_deadline = None;
            self.fail_ringing(
                endpoint,
                now,
                key,
                480,
                "ring timeout",
                Disposition::NoAnswer,
            );
            return;
        }
        if call.attempt_deadline.is_some_and(|d| d <= t) {
            call.attempt_deadline = None;
            self.trunk_silent(endpoint, now, key);
            return;
        }
        if let Some(transfer) = call.transfer.as_mut()
            && transfer.attempt_deadline.is_some_and(|d| d <= t)
        {
            transfer.attempt_deadline = None;
            self.transfer_trunk_silent(endpoint, now, key);
            return;
        }
        if call.reliable.deadline().is_some_and(|d| d <= t) {
            match call.reliable.due(t) {
                Due::Retransmit(response) => {
                    let _ = endpoint.send_response(t, call.a_invite, response);
                }
                Due::GiveUp => {
                    // RFC 3262 §3: a 5xx to the INVITE; forks get CANCEL (or BYE).
                    self.fail_ringing(endpoint, now, key, 504, NO_PRACK, Disposition::Failed);
                    return;
                }
                Due::Nothing => {}
            }
        }
        if call
            .late_ack
            .as_ref()
            .is_some_and(|late| late.deadline <= t)
        {
            self.late_ack_missing(endpoint, now, key);
            return;
        }
        if call
            .transfer
            .as_ref()
            .and_then(|transfer| transfer.deadline)
            .is_some_and(|d| d <= t)
        {
            self.transfer_timed_out(endpoint, now, key);
            return;
        }
        if call.max_deadline.is_some_and(|d| d <= t) {
            let header = reason("Q.850", 16, "maximum call duration");
            self.teardown(
                endpoint,
                now,
                key,
                "maximum call duration",
                200,
                &header,
                HangupSide::System,
            );
            return;
        }
        for side in [Side::A, Side::B] {
            let Some(call) = self.calls.get_mut(&key) else {
                return;
            };
            let Some(timer) = call.leg(side).and_then(|l| l.timer) else {
                continue;
            };
            if timer.deadline > t {
                continue;
            }
            if timer.we_refresh {
                self.send_refresh(endpoint, now, key, side);
            } else {
                let header = reason("SIP", 408, "session timer expired");
                self.teardown(
                    endpoint,
                    now,
                    key,
                    "session timer expired",
                    408,
                    &header,
                    HangupSide::System,
                );
                return;
            }
        }
    }

    fn reschedule(&mut self, key: CallKey) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let next = call.next_deadline();
        if call.scheduled == next {
            return;
        }
        if let Some(old) = call.scheduled.take() {
            self.deadlines.remove(&(old, key));
        }
        if let Some(next) = next {
            self.deadlines.insert((next, key));
            call.scheduled = Some(next);
        }
    }

    fn on_fork_response(
        &mut self,
        endpoint: &mut Endpoint,
        now: Now,
        key: CallKey,
        index: usize,
        response: &Response,
    ) {
        let status = response.status().0;
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let Some(fork) = call.forks.get(index) else {
            return;
        };
        if fork.state == ForkState::Pending {
            // The carrier is alive: from now on its final answer (or Timer C) decides.
            call.attempt_deadline = None;
        }
        match status {
            100 => {}
            101..=199 => self.on_fork_provisional(endpoint, now, key, index, response),
            200..=299 => {
                if call.phase != Phase::Ringing || fork.state != ForkState::Pending {
                    if fork.state != ForkState::Winner {
                        let (transaction, orphan) = Orphan::of(fork);
                        self.ack_and_bye(endpoint, now, transaction, &orphan, response);
                    }
                    return;
                }
                self.answer(endpoint, now, key, index, response);
            }
            _ => {
                if matches!(status, 401 | 407)
                    && self.answer_challenge(endpoint, now, key, index, response)
                {
                    if let Some(call) = self.calls.get_mut(&key) {
                        call.attempt_deadline =
                            Some(now.instant + self.config.trunk_response_timeout);
                    }
                    self.reschedule(key);
                    return;
                }
                let Some(call) = self.calls.get_mut(&key) else {
                    return;
                };
                if let Some(fork) = call.forks.get_mut(index) {
                    if fork.state != ForkState::Pending {
                        return;
                    }
                    fork.state = ForkState::Done;
                }
                if call.phase != Phase::Ringing {
                    return;
                }
                call.fork_failures.push(status);
                if call.trunk_call {
                    if trunk_fails_over(status) {
                        let mut sender = Sender {
                            config: &self.config,
                            clients: &mut self.clients,
                            dialogs: &mut self.dialogs,
                            key,
                        };
                        if next_trunk(&mut sender, endpoint, now, call) {
                            self.reschedule(key);
                            return;
                        }
                    }
                    let answer = trunk_failure(status);
                    let cause = if trunk_fails_over(status) {
                        "every trunk failed"
                    } else {
                        "carrier refused"
                    };
                    self.fail_ringing(endpoint, now, key, answer, cause, disposition_for(answer));
                    return;
                }
                let all_done = call.forks.iter().all(|f| f.state == ForkState::Done);
                if (600..700).contains(&status) || all_done {
                    let answer = best_failure(&call.fork_failures);
                    self.fail_ringing(
                        endpoint,
                        now,
                        key,
                        answer,
                        "callee refused",
                        disposition_for(answer),
                    );
                }
            }
        }
    }

    /// The current trunk did not respond at all in time: treated as a timeout (408), so the
    /// next trunk is tried. Its transaction runs on; a late 2xx is ACKed and sent BYE.
    fn trunk_silent(&mut self, endpoint: &mut Endpoint, now: Now, key: CallKey) {
        let Some(call) = self.calls.get(&key) else {
            return;
        };
        let pending = call
            .forks
            .iter()
            .position(|fork| fork.state == ForkState::Pending);
        let Some(index) = pending else {
            return;
        };
        let Some(fork) = call.forks.get(index) else {
            return;
        };
        let response = Response::for_request(&fork.request, StatusCode(408));
        self.on_fork_response(endpoint, now, key, index, &response);
    }

    /// A carrier challenged an in-dialog request on the trunk leg (BYE, re-INVITE, UPDATE,
    /// INFO): send it again once with the trunk's credentials, with a new branch and the
    /// next CSeq of the dialog (the BYE's dialog is over: its CSeq + 1). Returns the new
    /// transaction; `None` when the challenge cannot be answered (the 401/407 then goes on
    /// like any failure).
    fn answer_in_dialog_challenge(
        &mut self,
        endpoint: &mut Endpoint,
        now: Now,
        key: CallKey,
        transaction: TransactionId,
        retry: &TrunkRetry,
        response: &Response,
    ) -> Option<TransactionId> {
        let mut request = endpoint.request(transaction)?.clone();
        let method = request.method().clone();
        let uri = request.uri().to_string();
        let (credentials_header, credentials) = carrier_authorization(
            endpoint,
            &retry.credentials,
            response,
            &method.to_string(),
            &uri,
        )?;
        let via = our_via(endpoint, &retry.target.transport, retry.local);
        // A live dialog hands out the CSeq (so later requests stay above it); the BYE's
        // dialog is terminated, and nothing follows it.
        // A PRACK or an early UPDATE goes in a fork's early dialog, which may still be early.
        let dialog = self
            .calls
            .get_mut(&key)
            .and_then(|call| call.sent_in_dialog_mut(&request))
            .filter(|_| method != Method::Bye);
        let seq = match dialog.map(|dialog| dialog.request(method.clone(), &via)) {
            Some(Ok(fresh)) => fresh.cseq().ok()?.seq,
            Some(Err(_)) => return None,
            None => request.cseq().ok()?.seq.checked_add(1)?,
        };
        let headers = request.headers_mut();
        headers.set(HeaderName::Via, via.to_bytes());
        headers.set(HeaderName::CSeq, Bytes::from(format!("{seq} {method}")));
        headers.set(credentials_header, credentials);
        let target = retry.target.clone();
        let sent = if method == Method::Invite {
            endpoint
                .send_invite(now.instant, request, target)
                .map(|t| t.id())
        } else {
            endpoint
                .send_request(now.instant, request, target)
                .map(|t| t.id())
        };
        sent.ok()
    }

    /// A trunk fork was challenged (401/407): answer once with its credentials in a new
    /// INVITE of the same dialog attempt (same Call-ID and From tag, CSeq + 1, new branch).
    /// `false` when there is nothing to answer with (no credentials, already answered, a
    /// realm other than the configured one, an unsupported challenge): the fork has failed.
    fn answer_challenge(
        &mut self,
        endpoint: &mut Endpoint,
        now: Now,
        key: CallKey,
        index: usize,
        response: &Response,
    ) -> bool {
        let Some(call) = self.calls.get_mut(&key) else {
            return false;
        };
        if call.phase != Phase::Ringing {
            return false;
        }
        let Some(fork) = call.forks.get_mut(index) else {
            return false;
        };
        if fork.state != ForkState::Pending {
            return false;
        }
        let Some(id) = reinvite_with_credentials(endpoint, now, fork, response) else {
            return false;
        };
        self.clients.insert(id, (key, Role::Fork(index)));
        true
    }

    /// The first 2xx: ACK it, CANCEL the other forks, answer the caller.
    fn answer(
        &mut self,
        endpoint: &mut Endpoint,
        now: Now,
        key: CallKey,
        index: usize,
        response: &Response,
    ) {
        let config = self.config.clone();
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let Some(fork) = call.forks.get_mut(index) else {
            return;
        };
        fork.state = ForkState::Winner;
        let transaction = fork.transaction;
        let fork_target = fork.target.clone();
        // The early dialog of its reliable provisionals (our PRACK used its CSeq) goes on.
        let to_tag = response.to().ok().and_then(|to| to.tag);
        let early = fork
            .early
            .iter()
            .position(|e| Some(&e.dialog.id().remote_tag) == to_tag.as_ref())
            .map(|at| fork.early.swap_remove(at).dialog);
        let dialog = match early {
            Some(mut dialog) => dialog
                .on_response(&Method::Invite, response)
                .map(|()| dialog)
                .map_err(|_| ()),
            None => Dialog::uac(&fork.request, response).map_err(|_| ()),
        };
        let Ok(mut dialog) = dialog else {
            return;
        };
        let b_contact = our_contact(
            &config.contact_user,
            &fork_target.target.transport,
            fork_target.local,
        );
        dialog.set_local_contact(b_contact);
        // A late offer whose offer and answer went in a reliable 18x and the PRACK (with
        // this fork, or another one: its 2xx then brings an offer the answer is reused for).
        let early_answered = call
            .early_offer
            .as_ref()
            .filter(|early| early.answer.is_some());
        let early_done = early_answered.is_some_and(|early| early.origin.fork == index);
        let answer_again = early_answered.is_some() && !early_done;
        let late = call.late_offer() && !early_done;
        // A late offer's 2xx is ACKed when the caller's ACK brings the answer.
        let via = our_via(endpoint, &fork_target.target.transport, fork_target.local);
        if !late && let Ok(ack) = dialog.ack(&via) {
            let _ = endpoint.send_ack(now.instant, transaction, ack, fork_target.target.clone());
        }
        // Every other fork: CANCEL.
        let others: Vec<ClientTransaction<Invite>> = call
            .forks
            .iter_mut()
            .filter(|f| f.state == ForkState::Pending)
            .map(|f| {
                f.state = ForkState::Done;
                f.transaction
            })
            .collect();
        for other in others {
            let _ = endpoint.cancel(now.instant, other);
        }
        // B's answer, towards A.
        let b_sdp = match body_sdp(response.headers(), response.body()) {
            Some(Ok(sdp)) => Some(sdp),
            _ => None,
        };
        let (a_body, failure) = match (&call.a_offer, &b_sdp) {
            // The exchange is complete (RFC 3262 §5): a session in the 2xx is no new offer
            // and the caller's 2xx carries none.
            (None, _) if early_done => (Some(Bytes::new()), ""),
            (None, Some(_)) if answer_again => {
                let deadline = now.instant + endpoint.config().timeout_64_t1();
                // Its offer does not go to the caller (nor into A's leg origin or last
                // description): the caller's answer serves it.
                let offer = b_sdp.as_ref();
                let codecs = &config.codecs;
                let _ = self::late_offer::note_owed_ack(call, transaction, offer, codecs, deadline);
                (Some(Bytes::new()), "")
            }
            // A 2xx before our PRACK brought the answer to the offer in its 18x (RFC 3262
            // §3 forbids it): its ACK carries the answer when the caller's PRACK brings it.
            (None, _) if call.early_offer.is_some() => {
                let deadline = now.instant + endpoint.config().timeout_64_t1();
                self::late_offer::owe_early_ack(call, transaction, deadline);
                (Some(Bytes::new()), "")
            }
            (None, _) => {
                // Late offer: B's 2xx carries the offer, restricted to our codecs it goes to
                // the caller; B's ACK waits for the caller's answer.
                let deadline = now.instant + endpoint.config().timeout_64_t1();
                let body = self::late_offer::owe_ack(
                    call,
                    transaction,
                    b_sdp.as_ref(),
                    &config.codecs,
                    deadline,
                );
                self.late_acks.insert(call.a_invite.id(), key);
                let failure = if b_sdp.is_some() {
                    "offer without common codec"
                } else {
                    "2xx without SDP offer"
                };
                (body, failure)
            }
            (Some(a_offer), Some(sdp)) => {
                let body = if a_offer.common_audio_codecs(sdp).is_empty() {
                    None
                } else {
                    call.learn_remote(Side::B, sdp);
                    call.sdp_toward(Side::A, sdp).ok()
                };
                (body, "answer without common codec")
            }
            (Some(_), None) => (call.a_early_answer.clone(), "answer without common codec"),
        };
        let b_origin = call
            .b_origin
            .take()
            .unwrap_or_else(|| LegOrigin::new(&config.sdp_user, 1, 1, fork_target.local.ip()));
        let b_timer =
            config
                .session_expires
                .map(|ours| match response.session_expires().ok().flatten() {
                    Some(se) => SessionTimer::new(
                        std::time::Duration::from_secs(u64::from(se.delta.max(1))),
                        se.refresher != Some(Refresher::Uas),
                        now.instant,
                    ),
                    None => SessionTimer::new(ours, true, now.instant),
                });
        call.b = Some(Leg {
            dialog: Some(dialog),
            target: fork_target.target.clone(),
            local: fork_target.local,
            origin: b_origin,
            last_sdp: match call.b_early_sdp.take() {
                Some((fork, sdp)) if fork == index => Some(sdp),
                _ => call
                    .forks
                    .get(index)
                    .map(|f| f.request.body().clone())
                    .filter(|body| !body.is_empty()),
            },
            timer: b_timer,
            allows_update: allows_update(response.headers()),
        });
        call.record.answered_by = Some(fork_target.label.clone());
        if answer_again {
            // The caller's answer serves this fork's offer too (see `late_offer`).
            let Some(body) = self::late_offer::answer_again(call) else {
                let failure = "answer without common codec";
                self.fail_ringing(endpoint, now, key, 488, failure, Disposition::Incompatible);
                return;
            };
            self.settle_late_ack(endpoint, now, key, Some(Side::B), Some(body));
        }
        let Some(a_body) = a_body else {
            // B answered with nothing A can use: end both sides (B gets BYE).
            self.fail_ringing(endpoint, now, key, 488, failure, Disposition::Incompatible);
            return;
        };
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let Ok(mut reply) = endpoint.response(call.a_invite, StatusCode::OK) else {
            return;
        };
        let a_contact = our_contact(&config.contact_user, call.a.transport(), call.a.local);
        let headers = reply.headers_mut();
        headers.push(HeaderName::Contact, a_contact.to_bytes());
        let allow = allow_for(call, Side::A);
        headers.push(HeaderName::Allow, Bytes::from_static(allow.as_bytes()));
        if let Some(ours) = config.session_expires {
            let (interval, a_refreshes) = match call.a_timer_request {
                Some((delta, refresher)) => (
                    u64::from(delta).max(config.min_se.as_secs()),
                    call.a_supports_timer && refresher != Some(Refresher::Uas),
                ),
                None => (ours.as_secs(), call.a_supports_timer),
            };
            let who = if a_refreshes { "uac" } else { "uas" };
            headers.push(
                HeaderName::SessionExpires,
                Bytes::from(format!("{interval};refresher={who}")),
            );
            if call.a_supports_timer {
                headers.push(HeaderName::Require, Bytes::from_static(b"timer"));
            }
            call.a.timer = Some(SessionTimer::new(
                std::time::Duration::from_secs(interval),
                !a_refreshes,
                now.instant,
            ));
        }
        if !a_body.is_empty() {
            headers.push(
                HeaderName::ContentType,
                Bytes::from_static(b"application/sdp"),
            );
            reply.set_body(a_body);
        }
        if call.reliable.holds_final() {
            // RFC 3262 §3: no 2xx while a reliable provisional with SDP awaits its PRACK.
            call.held_answer = Some(reply);
            call.reliable.drop_queue();
            call.ring_deadline = None;
            self.reschedule(key);
            return;
        }
        self.deliver_answer(endpoint, now, key, reply);
    }

    /// Sends the caller its 2xx (`reply`) and marks the call answered.
    fn deliver_answer(&mut self, endpoint: &mut Endpoint, now: Now, key: CallKey, reply: Response) {
        let config = &self.config;
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        call.reliable.finish();
        // The caller's early dialog (opened by our first 18x) carries on, with its CSeqs.
        if call.a.dialog.is_none()
            && let Ok(mut dialog) = Dialog::uas(&call.a_request, &reply)
        {
            let a_contact = our_contact(&config.contact_user, call.a.transport(), call.a.local);
            dialog.set_local_contact(a_contact);
            call.a.dialog = Some(dialog);
        }
        let _ = endpoint.send_response(now.instant, call.a_invite, reply);
        if let Some(timer) = call.a.timer.as_mut() {
            timer.refreshed(now.instant);
        }
        call.phase = Phase::Answered;
        call.ring_deadline = None;
        call.record.answered_at_ms = Some(now.unix_ms);
        self.records
            .push_back((Stage::Answered, call.record.clone()));
        call.max_deadline = config.max_duration.map(|d| now.instant + d);
        self.reschedule(key);
    }

    fn ack_and_bye(
        &mut self,
        endpoint: &mut Endpoint,
        now: Now,
        transaction: TransactionId,
        fork: &Orphan,
        response: &Response,
    ) {
        let Ok(mut dialog) = Dialog::uac(&fork.request, response) else {
            return;
        };
        let transport = fork.target.transport.clone();
        let via = our_via(endpoint, &transport, fork.local);
        if let (Ok(ack), Some(invite)) = (dialog.ack(&via), endpoint.client_invite(transaction)) {
            let _ = endpoint.send_ack(now.instant, invite, ack, fork.target.clone());
        }
        let via = our_via(endpoint, &transport, fork.local);
        if let Ok(mut bye) = dialog.request(Method::Bye, &via) {
            bye.headers_mut()
                .push(HeaderName::Reason, reason("SIP", 200, "answered elsewhere"));
            let _ = endpoint.send_request(now.instant, bye, fork.target.clone());
        }
    }

    /// The caller CANCELled: 487 to the INVITE, CANCEL to every fork.
    fn on_caller_cancel(&mut self, endpoint: &mut Endpoint, now: Now, key: CallKey) {
        let Some(call) = self.calls.get(&key) else {
            return;
        };
        if call.phase != Phase::Ringing {
            return;
        }
        self.fail_ringing(endpoint, now, key, 487, "CANCEL", Disposition::Cancelled);
    }

    /// Ends a call that was not answered: `status` to the caller, CANCEL to pending forks.
    /// The record's hangup side follows from the status and cause.
    fn fail_ringing(
        &mut self,
        endpoint: &mut Endpoint,
        now: Now,
        key: CallKey,
        status: u16,
        cause: &str,
        disposition: Disposition,
    ) {
        self.fail_ringing_by(endpoint, now, key, status, cause, disposition, None);
    }

    /// [`Self::fail_ringing`], with the hangup side given when the platform decided (`side`).
    #[allow(clippy::too_many_arguments)]
    fn fail_ringing_by(
        &mut self,
        endpoint: &mut Endpoint,
        now: Now,
        key: CallKey,
        status: u16,
        cause: &str,
        disposition: Disposition,
        side: Option<HangupSide>,
    ) {
        // A fork that answered while the caller's 2xx was held (or with no usable answer).
        let header = reason("SIP", status, cause);
        self.send_bye(endpoint, now, key, Side::B, &header);
        let Some(mut call) = self.remove_call(key) else {
            return;
        };
        for fork in &mut call.forks {
            if fork.state == ForkState::Pending {
                let _ = endpoint.cancel(now.instant, fork.transaction);
            }
            if fork.state != ForkState::Winner {
                let (transaction, orphan) = Orphan::of(fork);
                self.orphans.insert(transaction, orphan);
            }
        }
        let _ = endpoint.respond(now.instant, call.a_invite, StatusCode(status));
        let side = if let Some(side) = side {
            side
        } else if disposition == Disposition::Cancelled {
            HangupSide::Caller
        } else if (matches!(status, 480 | 503) && cause == "ring timeout") || cause == NO_PRACK {
            HangupSide::System
        } else {
            HangupSide::Callee
        };
        self.close(now, call, disposition, status, cause, side);
    }

    /// Ends an answered call: BYE with `reason_header` to `bye_to` (or both legs when
    /// `None`).
    #[allow(clippy::too_many_arguments)]
    fn end_answered(
        &mut self,
        endpoint: &mut Endpoint,
        now: Now,
        key: CallKey,
        bye_to: Option<Side>,
        cause: &str,
        status: u16,
        reason_header: &Bytes,
        side: HangupSide,
    ) {
        self.abandon_transfer(endpoint, now, key);
        match bye_to {
            Some(to) => self.send_bye(endpoint, now, key, to, reason_header),
            None => {
                self.send_bye(endpoint, now, key, Side::A, reason_header);
                self.send_bye(endpoint, now, key, Side::B, reason_header);
            }
        }
        let Some(call) = self.remove_call(key) else {
            return;
        };
        if let Some(joining) = &call.joining {
            // The target's call ended before the attended transfer joined it.
            let cause = "transfer target's call ended";
            self.join_failed(endpoint, now, joining.into, 487, cause);
        }
        if call.record.answered_at_ms.is_none() {
            // The record of a transfer whose target had not answered when the call ended.
            let cause = format!("{cause} during transfer");
            self.close(now, call, Disposition::Cancelled, 487, &cause, side);
            return;
        }
        self.close(now, call, Disposition::Answered, status, cause, side);
    }

    /// Ends any call: BYE both legs when answered, else the caller gets `status` (480 for a
    /// 200) and the forks CANCEL; the record's hangup side is `side` either way.
    #[allow(clippy::too_many_arguments)]
    fn teardown(
        &mut self,
        endpoint: &mut Endpoint,
        now: Now,
        key: CallKey,
        cause: &str,
        status: u16,
        reason_header: &Bytes,
        side: HangupSide,
    ) {
        let Some(call) = self.calls.get(&key) else {
            return;
        };
        if call.phase == Phase::Answered {
            self.end_answered(endpoint, now, key, None, cause, status, reason_header, side);
        } else {
            let status = if status < 300 { 480 } else { status };
            let disposition = disposition_for(status);
            self.fail_ringing_by(endpoint, now, key, status, cause, disposition, Some(side));
        }
    }

    fn send_bye(
        &mut self,
        endpoint: &mut Endpoint,
        now: Now,
        key: CallKey,
        to: Side,
        reason_header: &Bytes,
    ) {
        // RFC 3261 §13.2.1: a 2xx with an offer is ACKed (with an answer) before the BYE.
        self.settle_late_ack(endpoint, now, key, Some(to), None);
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let Some(leg) = call.leg_mut(to) else {
            return;
        };
        let transport = leg.transport().clone();
        let local = leg.local;
        let target = leg.target.clone();
        let Some(dialog) = leg.dialog.as_mut() else {
            return;
        };
        let via = our_via(endpoint, &transport, local);
        if let Ok(mut bye) = dialog.request(Method::Bye, &via) {
            bye.headers_mut()
                .push(HeaderName::Reason, reason_header.clone());
            dialog.terminate();
            let retry = trunk_retry(call, to);
            if let Ok(transaction) = endpoint.send_request(now.instant, bye, target) {
                self.clients.insert(transaction.id(), (key, Role::Fire));
                if let Some(retry) = retry {
                    self.trunk_auth.insert(transaction.id(), retry);
                }
            }
        }
    }

    /// Relays an in-dialog INVITE/UPDATE/INFO from `from` to the other side.
    fn relay_request(
        &mut self,
        endpoint: &mut Endpoint,
        now: Now,
        key: CallKey,
        from: Side,
        accepted: AcceptedTransaction,
        request: &Request,
    ) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let method = request.method().clone();
        let to = from.other();
        let sdp = match body_sdp(request.headers(), request.body()) {
            Some(Ok(sdp)) => Some(sdp),
            Some(Err(_)) if method != Method::Info => {
                let _ = endpoint.respond(now.instant, accepted, StatusCode(400));
                return;
            }
            _ => None,
        };
        let offer = method == Method::Invite || (method == Method::Update && sdp.is_some());
        if offer && call.offer_pending {
            glare(endpoint, now, accepted);
            return;
        }
        // A re-INVITE or UPDATE from a side refreshes that side's session.
        if method != Method::Info
            && let Some(timer) = call.leg_mut(from).and_then(|l| l.timer.as_mut())
        {
            timer.refreshed(now.instant);
        }
        let body = match (&sdp, method == Method::Info) {
            (Some(sdp), false) => {
                call.learn_remote(from, sdp);
                call.media.set_hold(sdp.is_hold());
                match call.sdp_toward(to, sdp) {
                    Ok(body) => Some(body),
                    Err(_) => {
                        let _ = endpoint.respond(now.instant, accepted, StatusCode(500));
                        return;
                    }
                }
            }
            _ => (!request.body().is_empty()).then(|| request.body().clone()),
        };
        let transferring = call.transfer.is_some();
        let Some(leg) = call.leg_mut(to) else {
            // The transferor left and the target has not answered yet: try again later.
            if transferring {
                glare(endpoint, now, accepted);
            } else {
                let _ = endpoint.respond(now.instant, accepted, StatusCode(481));
            }
            return;
        };
        let transport = leg.transport().clone();
        let local = leg.local;
        let target = leg.target.clone();
        let timer = leg.timer;
        let Some(dialog) = leg.dialog.as_mut() else {
            if transferring {
                glare(endpoint, now, accepted);
            } else {
                let _ = endpoint.respond(now.instant, accepted, StatusCode(481));
            }
            return;
        };
        let via = our_via(endpoint, &transport, local);
        let Ok(mut relayed) = dialog.request(method.clone(), &via) else {
            let _ = endpoint.respond(now.instant, accepted, StatusCode(481));
            return;
        };
        copy_passed_headers(request.headers(), relayed.headers_mut());
        if method != Method::Info
            && let Some(timer) = timer
        {
            let who = if timer.we_refresh { "uac" } else { "uas" };
            let headers = relayed.headers_mut();
            headers.push(HeaderName::Supported, Bytes::from_static(b"timer"));
            headers.push(
                HeaderName::SessionExpires,
                Bytes::from(format!("{};refresher={who}", timer.interval.as_secs())),
            );
        }
        if let Some(body) = body {
            let content_type = request
                .headers()
                .get_bytes(&HeaderName::ContentType)
                .unwrap_or_else(|| Bytes::from_static(b"application/sdp"));
            relayed
                .headers_mut()
                .push(HeaderName::ContentType, content_type);
            relayed.set_body(body);
        }
        let sent = if method == Method::Invite {
            endpoint
                .send_invite(now.instant, relayed, target)
                .map(|t| t.id())
        } else {
            endpoint
                .send_request(now.instant, relayed, target)
                .map(|t| t.id())
        };
        match sent {
            Ok(transaction) => {
                if offer {
                    call.offer_pending = true;
                }
                if let Some(retry) = trunk_retry(call, to) {
                    self.trunk_auth.insert(transaction, retry);
                }
                let relay = Relay {
                    server: accepted,
                    from,
                    invite: method == Method::Invite,
                    offer,
                    late: method == Method::Invite && sdp.is_none(),
                };
                self.clients.insert(transaction, (key, Role::Relay(relay)));
            }
            Err(_) => {
                let _ = endpoint.respond(now.instant, accepted, StatusCode(500));
            }
        }
        self.reschedule(key);
    }

    fn on_relay_response(
        &mut self,
        endpoint: &mut Endpoint,
        now: Now,
        key: CallKey,
        transaction: TransactionId,
        relay: Relay,
        response: &Response,
    ) {
        let status = response.status().0;
        if status < 200 {
            return;
        }
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let to = relay.from.other();
        // A re-INVITE without SDP whose 2xx brings an offer: the ACK to it waits for the
        // originator's answer (late offer), and the exchange stays open until then.
        let late_offer = match relay.server {
            AcceptedTransaction::Invite(server) if relay.late && response.status().is_success() => {
                body_sdp(response.headers(), response.body())
                    .and_then(Result::ok)
                    .zip(endpoint.client_invite(transaction))
                    .map(|(offer, invite)| (server, offer, invite))
            }
            _ => None,
        };
        let ack = late_offer.is_none();
        let mut sdp_body = None;
        if let Some(sdp) = leg_answered(endpoint, now, call, to, transaction, response, ack)
            && ack
        {
            sdp_body = call.sdp_toward(relay.from, &sdp).ok();
        }
        if let Some((server, offer, invite)) = late_offer {
            let deadline = now.instant + endpoint.config().timeout_64_t1();
            sdp_body = self::late_offer::owe_reinvite_ack(
                call,
                (to, invite),
                server,
                offer,
                &self.config.codecs,
                deadline,
            );
            self.late_acks.insert(server.id(), key);
            if sdp_body.is_none() {
                self.settle_late_ack(endpoint, now, key, None, None);
            }
        }
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if relay.offer && call.late_ack.is_none() {
            call.offer_pending = false;
        }
        let Ok(mut reply) = endpoint.response(relay.server, response.status()) else {
            return;
        };
        copy_passed_headers(response.headers(), reply.headers_mut());
        if let Some(leg) = call.leg(relay.from)
            && response.status().is_success()
        {
            let contact = our_contact(&self.config.contact_user, leg.transport(), leg.local);
            reply
                .headers_mut()
                .push(HeaderName::Contact, contact.to_bytes());
            if let Some(timer) = leg.timer {
                let who = if timer.we_refresh { "uas" } else { "uac" };
                reply.headers_mut().push(
                    HeaderName::SessionExpires,
                    Bytes::from(format!("{};refresher={who}", timer.interval.as_secs())),
                );
            }
        }
        if response.status().is_success()
            && let Some(timer) = call.leg_mut(relay.from).and_then(|l| l.timer.as_mut())
        {
            timer.refreshed(now.instant);
        }
        match sdp_body {
            Some(body) => {
                reply.headers_mut().push(
                    HeaderName::ContentType,
                    Bytes::from_static(b"application/sdp"),
                );
                reply.set_body(body);
            }
            None if !response.body().is_empty() && !relay.invite => {
                reply.set_body(response.body().clone());
            }
            None => {}
        }
        let _ = endpoint.send_response(now.instant, relay.server, reply);
        if matches!(status, 408 | 481) {
            let header = reason("SIP", status, "dialog gone");
            self.teardown(
                endpoint,
                now,
                key,
                "dialog gone",
                status,
                &header,
                HangupSide::System,
            );
            return;
        }
        self.reschedule(key);
    }

    /// Our own session refresh on `side` (UPDATE when the peer allows it, else a re-INVITE
    /// repeating the last description sent).
    fn send_refresh(&mut self, endpoint: &mut Endpoint, now: Now, key: CallKey, side: Side) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        // A carrier's 401/407 to our own refresh is answered once, like a relayed request's.
        let retry = trunk_retry(call, side);
        let pending = call.offer_pending;
        let Some(leg) = call.leg_mut(side) else {
            return;
        };
        let Some(mut timer) = leg.timer else {
            return;
        };
        let use_update = leg.allows_update;
        if pending && !use_update {
            // An exchange is in progress (and refreshes the session); look again shortly.
            timer.deadline = now.instant + std::time::Duration::from_secs(2);
            leg.timer = Some(timer);
            return;
        }
        let transport = leg.transport().clone();
        let local = leg.local;
        let target = leg.target.clone();
        let body = leg.last_sdp.clone();
        // Until the answer comes, the leg is not refreshed again.
        timer.deadline = now.instant + timer.interval;
        leg.timer = Some(timer);
        let Some(dialog) = leg.dialog.as_mut() else {
            return;
        };
        let via = our_via(endpoint, &transport, local);
        let method = if use_update {
            Method::Update
        } else {
            Method::Invite
        };
        let Ok(mut request) = dialog.request(method.clone(), &via) else {
            return;
        };
        let headers = request.headers_mut();
        headers.push(HeaderName::Supported, Bytes::from_static(b"timer"));
        headers.push(
            HeaderName::SessionExpires,
            Bytes::from(format!("{};refresher=uac", timer.interval.as_secs())),
        );
        let sent = if use_update {
            endpoint
                .send_request(now.instant, request, target)
                .map(|t| t.id())
        } else {
            if let Some(body) = body {
                request.headers_mut().push(
                    HeaderName::ContentType,
                    Bytes::from_static(b"application/sdp"),
                );
                request.set_body(body);
            }
            call.offer_pending = true;
            endpoint
                .send_invite(now.instant, request, target)
                .map(|t| t.id())
        };
        if let Ok(transaction) = sent {
            self.clients.insert(transaction, (key, Role::Refresh(side)));
            if let Some(retry) = retry {
                self.trunk_auth.insert(transaction, retry);
            }
        }
    }

    fn on_refresh_response(
        &mut self,
        endpoint: &mut Endpoint,
        now: Now,
        key: CallKey,
        transaction: TransactionId,
        side: Side,
        response: &Response,
    ) {
        let status = response.status().0;
        if status < 200 {
            return;
        }
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let invite = endpoint.client_invite(transaction);
        if invite.is_some() {
            call.offer_pending = false;
        }
        let _ = leg_answered(endpoint, now, call, side, transaction, response, true);
        if matches!(status, 408 | 481) {
            let header = reason("SIP", status, "session refresh failed");
            self.teardown(
                endpoint,
                now,
                key,
                "session refresh failed",
                status,
                &header,
                HangupSide::System,
            );
            return;
        }
        self.reschedule(key);
    }

    fn client_failed(
        &mut self,
        endpoint: &mut Endpoint,
        now: Now,
        key: CallKey,
        transaction: TransactionId,
        role: Role,
        status: u16,
    ) {
        self.clients.remove(&transaction);
        match role {
            Role::Fork(index) => {
                let mut response = Response::new(StatusCode(status));
                if let Some(call) = self.calls.get(&key)
                    && let Some(fork) = call.forks.get(index)
                {
                    response = Response::for_request(&fork.request, StatusCode(status));
                }
                self.on_fork_response(endpoint, now, key, index, &response);
            }
            Role::Relay(relay) => {
                if let Some(call) = self.calls.get_mut(&key) {
                    call.offer_pending = false;
                }
                let _ = endpoint.respond(now.instant, relay.server, StatusCode(status));
                let header = reason("SIP", status, "leg unreachable");
                self.teardown(
                    endpoint,
                    now,
                    key,
                    "leg unreachable",
                    status,
                    &header,
                    HangupSide::System,
                );
            }
            Role::Prack(server) => {
                let _ = endpoint.respond(now.instant, server, StatusCode(status));
            }
            Role::Early(relay, _) => {
                // The early dialog's peer is gone; its INVITE transaction decides the call.
                if let Some(call) = self.calls.get_mut(&key)
                    && relay.offer
                {
                    call.offer_pending = false;
                }
                let _ = endpoint.respond(now.instant, relay.server, StatusCode(status));
            }
            Role::Refresh(_) => {
                let header = reason("SIP", status, "session refresh failed");
                self.teardown(
                    endpoint,
                    now,
                    key,
                    "session refresh failed",
                    status,
                    &header,
                    HangupSide::System,
                );
            }
            Role::Transfer(index) => {
                let request = self
                    .calls
                    .get(&key)
                    .and_then(|call| call.transfer.as_ref())
                    .and_then(|transfer| transfer.forks.get(index))
                    .map(|fork| fork.request.clone());
                let response = match request {
                    Some(request) => Response::for_request(&request, StatusCode(status)),
                    None => Response::new(StatusCode(status)),
                };
                self.on_transfer_response(endpoint, now, key, index, &response);
            }
            Role::Join(into) => self.join_unanswered(endpoint, now, key, into, status),
            Role::Fire => {}
        }
    }

    fn remove_call(&mut self, key: CallKey) -> Option<Call<C>> {
        let call = self.calls.remove(&key)?;
        if let Some(at) = call.scheduled {
            self.deadlines.remove(&(at, key));
        }
        if let Some(late) = &call.late_ack {
            self.late_acks.remove(&late.from.id());
        }
        self.dialogs
            .remove(&(call.a_call_id.clone(), call.a_tag.clone()));
        for fork in &call.forks {
            self.dialogs
                .remove(&(fork.call_id.clone(), fork.tag.clone()));
            if self
                .clients
                .get(&fork.transaction.id())
                .is_some_and(|(k, _)| *k == key)
            {
                self.clients.remove(&fork.transaction.id());
            }
        }
        for id in &call.joined_dialogs {
            self.dialogs.remove(id);
        }
        if let Some(transfer) = &call.transfer {
            for fork in &transfer.forks {
                self.dialogs
                    .remove(&(fork.call_id.clone(), fork.tag.clone()));
            }
        }
        self.invites.remove(&call.a_invite.id());
        Some(call)
    }

    fn close(
        &mut self,
        now: Now,
        mut call: Call<C>,
        disposition: Disposition,
        status: u16,
        cause: &str,
        side: HangupSide,
    ) {
        let [a, b] = call.media.stats();
        let (a, b) = (since(a, call.media_base[0]), since(b, call.media_base[1]));
        // After a transfer by the caller the record's caller (the transferee) is on side B.
        let (caller, callee) = match call.caller_side {
            Side::A => (a, b),
            Side::B => (b, a),
        };
        call.record.media_a = caller;
        call.record.media_b = callee;
        call.record.close(now, disposition, status, cause, side);
        self.records.push_back((Stage::Ended, call.record));
    }
}

/// Sends B-leg INVITEs for one call (borrows the engine's indexes, not its call table).
struct Sender<'a> {
    config: &'a CallConfig,
    clients: &'a mut HashMap<TransactionId, (CallKey, Role)>,
    dialogs: &'a mut HashMap<(Bytes, Bytes), (CallKey, Side)>,
    key: CallKey,
}

impl Sender<'_> {
    /// Builds and sends the INVITE of a new fork to `target` with the call's B offer; the
    /// fork is added to the call when it was sent.
    #[allow(clippy::too_many_arguments)]
    fn send_fork<C>(
        &mut self,
        endpoint: &mut Endpoint,
        now: Now,
        call: &mut Call<C>,
        target: ForkTarget,
        mut from: NameAddr,
        headers: &[(HeaderName, Bytes)],
        credentials: Option<TrunkCredentials>,
    ) -> bool {
        let call_id = Bytes::from(endpoint.new_call_id(None));
        let tag = Bytes::from(endpoint.new_tag());
        from.set_tag(tag.clone());
        let via = our_via(endpoint, &target.target.transport, target.local);
        let contact = our_contact(
            &self.config.contact_user,
            &target.target.transport,
            target.local,
        );
        let mut builder = Request::builder(Method::Invite, target.request_uri.clone())
            .via(&via)
            .from(&from)
            .to(&target.to)
            .call_id(call_id.clone())
            .cseq(1)
            .max_forwards(Some(call.max_forwards))
            .contact(&contact);
        for route in &target.route {
            builder = builder.route(route);
        }
        for (name, value) in headers {
            builder = builder.header(name.clone(), value.clone());
        }
        let allow = if call.trunk_call { ALLOW } else { ALLOW_REFER };
        builder = builder.header(HeaderName::Allow, Bytes::from_static(allow.as_bytes()));
        // 100rel only when the caller can take reliable provisionals across (without an
        // offer too: a reliable 18x then carries the callee's offer, see `late_offer`).
        let supported = match (
            self.config.session_expires.is_some(),
            call.reliable.enabled(),
        ) {
            (true, true) => Some("timer, 100rel"),
            (true, false) => Some("timer"),
            (false, true) => Some("100rel"),
            (false, false) => None,
        };
        if let Some(supported) = supported {
            builder = builder.header(
                HeaderName::Supported,
                Bytes::from_static(supported.as_bytes()),
            );
        }
        if let Some(interval) = self.config.session_expires {
            builder = builder
                .header(
                    HeaderName::SessionExpires,
                    Bytes::from(interval.as_secs().to_string()),
                )
                .header(
                    HeaderName::MinSe,
                    Bytes::from(self.config.min_se.as_secs().to_string()),
                );
        }
        // A late-offer call's forks carry no offer either.
        let request = if call.b_body.is_empty() {
            builder.build()
        } else {
            builder.body("application/sdp", call.b_body.clone()).build()
        };
        let Ok(transaction) =
            endpoint.send_invite(now.instant, request.clone(), target.target.clone())
        else {
            return false;
        };
        let index = call.forks.len();
        self.clients
            .insert(transaction.id(), (self.key, Role::Fork(index)));
        self.dialogs
            .insert((call_id.clone(), tag.clone()), (self.key, Side::B));
        call.forks.push(Fork::pending(
            transaction,
            request,
            target,
            (call_id, tag),
            credentials,
        ));
        true
    }
}

/// Answers a carrier's 401/407 to `fork`'s INVITE, once: the same INVITE with the trunk's
/// credentials (same Call-ID and From tag, CSeq + 1, new branch) on a new transaction, whose
/// id is returned. `None` when there is nothing to answer with (no credentials, already
/// answered, a realm other than the configured one, an unsupported challenge) or it could
/// not be sent: the fork has then failed.
fn reinvite_with_credentials(
    endpoint: &mut Endpoint,
    now: Now,
    fork: &mut Fork,
    response: &Response,
) -> Option<TransactionId> {
    if fork.challenged {
        return None;
    }
    let account = fork.credentials.as_ref()?;
    let uri = fork.request.uri().to_string();
    let (credentials_header, credentials) =
        carrier_authorization(endpoint, account, response, "INVITE", &uri)?;
    let mut request = fork.request.clone();
    let seq = request.cseq().map_or(1, |cseq| cseq.seq).saturating_add(1);
    let via = our_via(endpoint, &fork.target.target.transport, fork.target.local);
    let headers = request.headers_mut();
    headers.set(HeaderName::Via, via.to_bytes());
    headers.set(HeaderName::CSeq, Bytes::from(format!("{seq} INVITE")));
    headers.set(credentials_header, credentials);
    let transaction = endpoint
        .send_invite(now.instant, request.clone(), fork.target.target.clone())
        .ok()?;
    fork.transaction = transaction;
    fork.request = request;
    fork.challenged = true;
    Some(transaction.id())
}

/// The credentials header answering a carrier's 401/407 `response` to a `method` request
/// for `uri` with `account`; `None` when it cannot be answered (no usable challenge, or a
/// realm other than the configured one).
fn carrier_authorization(
    endpoint: &mut Endpoint,
    account: &TrunkCredentials,
    response: &Response,
    method: &str,
    uri: &str,
) -> Option<(HeaderName, Bytes)> {
    let (role, challenge_header, credentials_header) = if response.status().0 == 401 {
        (
            AuthRole::Www,
            HeaderName::WwwAuthenticate,
            HeaderName::Authorization,
        )
    } else {
        (
            AuthRole::Proxy,
            HeaderName::ProxyAuthenticate,
            HeaderName::ProxyAuthorization,
        )
    };
    let values: Vec<&[u8]> = response.headers().get_all(&challenge_header).collect();
    let mut client = DigestClient::new(&account.username, &account.password).ok()?;
    client.handle_challenge(role, &values).ok()?;
    let credentials = client.authorization(method, uri, cnonce(endpoint)).ok()?;
    if account
        .realm
        .as_deref()
        .is_some_and(|realm| realm != credentials.realm)
    {
        return None;
    }
    Some((credentials_header, Bytes::from(credentials.to_string())))
}

/// The trunk account for in-dialog requests sent to `to`: only the B-leg of an outbound
/// trunk call, with the answering trunk's credentials.
fn trunk_retry<C>(call: &Call<C>, to: Side) -> Option<TrunkRetry> {
    if let Some((side, credentials)) = &call.trunk_leg
        && *side == to
    {
        let leg = call.leg(to)?;
        return Some(TrunkRetry {
            credentials: credentials.clone()?,
            target: leg.target.clone(),
            local: leg.local,
        });
    }
    if !call.trunk_call || to != Side::B {
        return None;
    }
    let credentials = call
        .forks
        .iter()
        .find(|fork| fork.state == ForkState::Winner)?
        .credentials
        .clone()?;
    let leg = call.leg(Side::B)?;
    Some(TrunkRetry {
        credentials,
        target: leg.target.clone(),
        local: leg.local,
    })
}

/// Sends the INVITE to the next trunk that takes it; `false` when none is left.
fn next_trunk<C>(
    sender: &mut Sender<'_>,
    endpoint: &mut Endpoint,
    now: Now,
    call: &mut Call<C>,
) -> bool {
    while let Some(attempt) = call.trunks.pop_front() {
        call.record.trunk = Some(attempt.trunk.clone());
        let TrunkAttempt {
            target,
            from,
            headers,
            credentials,
            ..
        } = attempt;
        if sender.send_fork(endpoint, now, call, target, from, &headers, credentials) {
            call.attempt_deadline = Some(now.instant + sender.config.trunk_response_timeout);
            return true;
        }
    }
    false
}

/// Whether a trunk's final failure lets the next trunk try (RFC 3261 §16.7 spirit, as
/// carriers' failover rules go): server errors, timeouts, transport errors (503 here) and a
/// challenge we could not answer.
fn trunk_fails_over(status: u16) -> bool {
    matches!(status, 401 | 407 | 408 | 500..=599)
}

/// The status the caller gets for a trunk's final failure.
fn trunk_failure(status: u16) -> u16 {
    match status {
        401 | 407 | 500..=599 => 503,
        300..=399 => 480,
        other => other,
    }
}

/// 16 unpredictable bytes from the endpoint's id generator, for a digest cnonce.
fn cnonce(endpoint: &mut Endpoint) -> [u8; 16] {
    let mut seed = String::new();
    let _ = write!(seed, "{}{}", endpoint.new_tag(), endpoint.new_branch());
    let mut out = [0u8; 16];
    for (index, byte) in seed.bytes().enumerate() {
        if let Some(slot) = out.get_mut(index % 16) {
            *slot = slot.rotate_left(3) ^ byte;
        }
    }
    out
}

/// The final response to a request we sent on `side` (relayed or our own refresh): updates
/// the dialog, ACKs a 2xx to INVITE (unless `ack` is false: a late offer's ACK waits for
/// the answer), counts a 2xx as a session refresh, and tells the relay
/// about the peer's new description, which it returns.
fn leg_answered<C>(
    endpoint: &mut Endpoint,
    now: Now,
    call: &mut Call<C>,
    side: Side,
    transaction: TransactionId,
    response: &Response,
    ack: bool,
) -> Option<pbx_sdp::SessionDescription> {
    let success = response.status().is_success();
    let invite = endpoint.client_invite(transaction);
    let leg = call.leg_mut(side)?;
    let transport = leg.transport().clone();
    let local = leg.local;
    let target = leg.target.clone();
    let method = if invite.is_some() {
        Method::Invite
    } else {
        Method::Update
    };
    if let Some(dialog) = leg.dialog.as_mut() {
        let _ = dialog.on_response(&method, response);
        if let (Some(invite), true, true) = (invite, success, ack) {
            let via = our_via(endpoint, &transport, local);
            if let Ok(ack) = dialog.ack(&via) {
                let _ = endpoint.send_ack(now.instant, invite, ack, target);
            }
        }
    }
    if !success {
        return None;
    }
    if let Some(timer) = leg.timer.as_mut() {
        timer.refreshed(now.instant);
    }
    let sdp = body_sdp(response.headers(), response.body()).and_then(Result::ok)?;
    call.learn_remote(side, &sdp);
    Some(sdp)
}

/// The session timer the caller asked for: (Session-Expires delta, refresher) and whether it
/// supports timers at all.
fn timer_request(request: &Request) -> (Option<(u32, Option<Refresher>)>, bool) {
    let requested = request
        .session_expires()
        .ok()
        .flatten()
        .map(|se| (se.delta, se.refresher));
    let supports = request
        .supported()
        .map(|list| list.iter().any(|t| t.eq_ignore_ascii_case(b"timer")))
        .unwrap_or(false);
    (requested, supports)
}

/// What a side may send us: REFER (see `transfer`) from a device's leg, not a trunk's.
fn allow_for<C>(call: &Call<C>, side: Side) -> &'static str {
    if is_trunk_leg(call, side) {
        ALLOW
    } else {
        ALLOW_REFER
    }
}

/// Whether `side` is a carrier's: the caller of an inbound call, the callee of a trunk call,
/// or a side a transfer to a number connected to a trunk.
fn is_trunk_leg<C>(call: &Call<C>, side: Side) -> bool {
    if call.trunk_leg.as_ref().is_some_and(|(s, _)| *s == side) {
        return true;
    }
    match side {
        Side::A => call.record.direction == Direction::Inbound,
        Side::B => call.trunk_call,
    }
}

/// Who side `side` is in the call's current record: its caller or its callee (a transfer
/// by the caller makes the transferee, on side B, the caller of the new record).
fn call_party<C>(call: &Call<C>, side: Side) -> HangupSide {
    if side == call.caller_side {
        HangupSide::Caller
    } else {
        HangupSide::Callee
    }
}

/// Counters accumulated since `base` (a record's share of a relay session's counters).
fn since(
    now: crate::media::StreamStats,
    base: crate::media::StreamStats,
) -> crate::media::StreamStats {
    crate::media::StreamStats {
        packets: now.packets.saturating_sub(base.packets),
        bytes: now.bytes.saturating_sub(base.bytes),
        lost: now.lost.saturating_sub(base.lost),
        jitter_us: now.jitter_us,
    }
}

fn allows_update(headers: &pbx_sip::Headers) -> bool {
    headers
        .values(&HeaderName::Allow)
        .any(|m| m.is_ok_and(|m| m.trim_ascii().eq_ignore_ascii_case(b"UPDATE")))
}

/// Answers an offer that arrived while another exchange is in progress: 491 with a
/// Retry-After (RFC 3261 §14.2, RFC 3311 §5.2).
fn glare(endpoint: &mut Endpoint, now: Now, accepted: AcceptedTransaction) {
    if let Ok(mut response) = endpoint.response(accepted, StatusCode(491)) {
        response
            .headers_mut()
            .push(HeaderName::RetryAfter, Bytes::from_static(b"1"));
        let _ = endpoint.send_response(now.instant, accepted, response);
    }
}

/// The status the caller gets when every fork failed (RFC 3261 §16.7 step 6, simplified):
/// a 6xx wins, then 486, then 488; otherwise the lowest status after mapping device
/// authentication challenges and server errors to 480.
pub(crate) fn best_failure(statuses: &[u16]) -> u16 {
    if let Some(global) = statuses.iter().find(|s| (600..700).contains(*s)) {
        return *global;
    }
    for preferred in [486, 488] {
        if statuses.contains(&preferred) {
            return preferred;
        }
    }
    statuses
        .iter()
        .map(|&s| match s {
            401 | 407 | 500..=599 => 480,
            other => other,
        })
        .min()
        .unwrap_or(480)
}
