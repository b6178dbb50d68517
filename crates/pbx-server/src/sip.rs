//! The platform's SIP transaction user: admits new requests, runs the registrar, answers
//! OPTIONS, and hands registrar effects to the store writer.
//!
//! It runs on the endpoint driver task (`pbx_sip_net::Endpoint`), synchronously: everything
//! it needs on the hot path is in memory (the directory snapshot, the registrar's bindings,
//! the digest verifier). Store writes leave through a bounded queue to the store writer task.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use pbx_registrar::{Effect, FlowInfo, Now, PingId, PingKind, Registrar};
use pbx_sip::{HeaderName, Method, Policy, StatusCode};
use pbx_sip_auth::{NonceCountTracker, Verifier};
use pbx_sip_engine::{Event, Incoming, Target, TransactionId};
use pbx_sip_net::{Context, Flow, TransactionUser, Transport};
use pbx_store::Directory;
use tokio::sync::mpsc;

/// Methods this platform implements (the Allow header).
pub const ALLOW: &str =
    "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, UPDATE, INFO, PRACK, NOTIFY, REFER";

/// What the transaction user asks the store writer to do.
pub type StoreWork = Effect;

/// The platform TU.
pub struct PlatformTu {
    registrar: Registrar,
    directory: Arc<Directory>,
    verifier: Verifier,
    tracker: NonceCountTracker,
    policy: Policy,
    writer: mpsc::Sender<StoreWork>,
    /// Keep-alive OPTIONS in flight: client transaction → ping.
    pings: HashMap<TransactionId, PingId>,
    /// Effects dropped because the writer queue was full (the store catches up on the next
    /// refresh of the same binding).
    pub dropped_writes: u64,
    /// Client requests sent for async tasks (trunk registrations), by transaction.
    pub client_requests: crate::trunks::ClientRequests,
    /// The fraud and abuse guard (issue 5), fed from the SIP path.
    guard: Option<Arc<crate::guard::SecurityGuard>>,
    /// The call engine (issue 4); without it INVITE is answered 480.
    calls: Option<crate::calls::Calls>,
}

impl std::fmt::Debug for PlatformTu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlatformTu")
            .field("bindings", &self.registrar.binding_count())
            .field("pings", &self.pings.len())
            .finish_non_exhaustive()
    }
}

impl PlatformTu {
    /// A TU around a registrar that already holds the restored bindings.
    pub fn new(
        registrar: Registrar,
        directory: Arc<Directory>,
        verifier: Verifier,
        tracker: NonceCountTracker,
        writer: mpsc::Sender<StoreWork>,
    ) -> Self {
        let policy = Policy {
            supported_extensions: vec![
                "path".into(),
                "outbound".into(),
                "gruu".into(),
                // Reliable provisionals pass across calls (pbx-call, RFC 3262).
                "100rel".into(),
            ],
            accepted_content_types: vec!["application/sdp".into()],
            accept_tel_uri: true,
        };
        Self {
            registrar,
            directory,
            verifier,
            tracker,
            policy,
            writer,
            pings: HashMap::new(),
            dropped_writes: 0,
            client_requests: crate::trunks::ClientRequests::default(),
            guard: None,
            calls: None,
        }
    }

    /// Feeds `guard` from the SIP path: scanner User-Agents, authentication results,
    /// unanswered challenges; throttled user names are challenged again.
    #[must_use]
    pub fn with_guard(mut self, guard: Arc<crate::guard::SecurityGuard>) -> Self {
        self.guard = Some(guard);
        self
    }

    /// Connects calls with `calls` (INVITE, in-dialog requests, call timers and events).
    #[must_use]
    pub fn with_calls(mut self, calls: crate::calls::Calls) -> Self {
        self.calls = Some(calls);
        self
    }

    /// The call engine, when calls are enabled.
    pub fn calls(&self) -> Option<&crate::calls::Calls> {
        self.calls.as_ref()
    }

    /// The call engine, mutably (the guard's terminator ends calls through it).
    pub fn calls_mut(&mut self) -> Option<&mut crate::calls::Calls> {
        self.calls.as_mut()
    }

    /// A media relay event (RTP timeout ends the call).
    pub fn media_event(&mut self, ctx: &mut Context<'_>, event: &pbx_media::MediaEvent) {
        if let Some(calls) = self.calls.as_mut() {
            calls.on_media_event(ctx, event);
        }
    }

    /// INVITE and in-dialog requests go to the call engine, with the registrar's accounts,
    /// verifier and bindings.
    fn call_request(&mut self, ctx: &mut Context<'_>, incoming: Incoming) {
        let snapshot = self.directory.snapshot();
        let Some(calls) = self.calls.as_mut() else {
            return;
        };
        let services = crate::calls::Services {
            registrar: &self.registrar,
            directory: &snapshot,
            verifier: &self.verifier,
            tracker: &mut self.tracker,
        };
        calls.on_request(ctx, incoming, services);
    }

    /// Registrar timers: expire bindings and send keep-alives that are due. Called by the
    /// server's ticker through the endpoint's command queue.
    pub fn tick(&mut self, ctx: &mut Context<'_>) {
        let due = self
            .registrar
            .poll_timeout()
            .is_some_and(|deadline| deadline <= ctx.now());
        if due {
            let effects = self.registrar.handle_timeout(now_pair(ctx.now()));
            self.apply(ctx, effects);
        }
        if let Some(calls) = self.calls.as_mut() {
            calls.tick(ctx);
        }
    }

    /// Number of bindings held in memory.
    pub fn binding_count(&self) -> usize {
        self.registrar.binding_count()
    }

    /// The directory the TU authenticates against (tests wait on
    /// [`Directory::caught_up`] for read-your-writes after a store change).
    pub fn directory(&self) -> &Arc<Directory> {
        &self.directory
    }

    /// The registrar (bindings, lookups, and control-plane removals).
    pub fn registrar(&mut self) -> &mut Registrar {
        &mut self.registrar
    }

    fn apply(&mut self, ctx: &mut Context<'_>, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::Ping(ping) => self.send_ping(ctx, ping),
                // A refresh is persisted (the binding's new expiry, for restarts) but not
                // audited: phones refresh every few minutes behind NAT, and an event row per
                // refresh would grow the audit log by millions of rows a day and double the
                // store's write load. New bindings, removals and ALG suspicions are audited.
                Effect::Event(pbx_registrar::RegistrationEvent::Refreshed { .. }) => {}
                other => {
                    if self.writer.try_send(other).is_err() {
                        self.dropped_writes += 1;
                        tracing::warn!(dropped = self.dropped_writes, "store writer queue full");
                    }
                }
            }
        }
    }

    fn send_ping(&mut self, ctx: &mut Context<'_>, ping: pbx_registrar::Ping) {
        let now = ctx.now();
        let flow = ping.flow;
        match ping.kind {
            PingKind::Options(request) => {
                let target = Target::udp(flow.source);
                match ctx.engine().send_request(now, *request, target) {
                    Ok(transaction) => {
                        self.pings.insert(transaction.id(), ping.id);
                    }
                    Err(err) => {
                        tracing::debug!(error = %err, "keep-alive OPTIONS not sent");
                        let effects =
                            self.registrar
                                .handle_ping_result(ping.id, false, now_pair(now));
                        self.apply(ctx, effects);
                    }
                }
            }
            PingKind::Crlf => {
                let ok = flow.connection.is_some_and(|id| {
                    ctx.transports()
                        .send_on_connection(
                            pbx_sip_net::ConnectionId(id),
                            Bytes::from_static(b"\r\n\r\n"),
                        )
                        .is_ok()
                });
                let effects = self
                    .registrar
                    .handle_ping_result(ping.id, ok, now_pair(now));
                self.apply(ctx, effects);
            }
            _ => {}
        }
    }

    fn ping_answered(&mut self, ctx: &mut Context<'_>, transaction: TransactionId, ok: bool) {
        if let Some(id) = self.pings.remove(&transaction) {
            let effects = self
                .registrar
                .handle_ping_result(id, ok, now_pair(ctx.now()));
            self.apply(ctx, effects);
        }
    }

    fn register(&mut self, ctx: &mut Context<'_>, incoming: Incoming) {
        let Some(flow) = ctx.flow().map(flow_info) else {
            ctx.engine().ignore(incoming);
            return;
        };
        let now = ctx.now();
        let source = flow.source;
        let throttled = self
            .guard
            .as_ref()
            .is_some_and(|guard| guard.register_throttled(incoming.request()));
        // A throttled user name is challenged again as if its password were wrong: its
        // credentials are stripped, in a copy (the only case that needs one).
        let stripped = throttled.then(|| {
            let mut copy = incoming.request().clone();
            copy.headers_mut().remove(&HeaderName::Authorization);
            copy
        });
        let request = stripped.as_ref().unwrap_or(incoming.request());
        let snapshot = self.directory.snapshot();
        let outcome = self.registrar.handle_register(
            now_pair(now),
            request,
            flow,
            &snapshot,
            &self.verifier,
            &mut self.tracker,
        );
        if let Some(guard) = &self.guard {
            let status = outcome.response.status();
            guard.after_register(
                source,
                request,
                status,
                &outcome.effects,
                &snapshot,
                throttled,
            );
        }
        // REGISTER is answered statelessly, like Kamailio's `sl` replies: no transaction is
        // kept for Timer J (32 s on UDP) per request, which is most of a registration's
        // memory and a hash insert and removal each. A retransmitted request is processed
        // again and gets the same answer: a 401 a fresh challenge; an authenticated one is
        // recognised by the registrar (same Call-ID and CSeq as the binding it made) and by
        // the nonce-count tracker (same source, Via, Call-ID and CSeq), and gets 200 with
        // the bindings as they are.
        ctx.engine()
            .respond_stateless(now, incoming, &outcome.response);
        self.apply(ctx, outcome.effects);
    }

    fn options(ctx: &mut Context<'_>, incoming: Incoming) {
        let now = ctx.now();
        let Ok(accepted) = ctx.engine().accept(now, incoming) else {
            return;
        };
        let Ok(mut response) = ctx.engine().response(accepted, StatusCode::OK) else {
            return;
        };
        let headers = response.headers_mut();
        headers.push(HeaderName::Allow, Bytes::from_static(ALLOW.as_bytes()));
        headers.push(HeaderName::Accept, Bytes::from_static(b"application/sdp"));
        headers.push(
            HeaderName::Supported,
            Bytes::from_static(b"path, outbound, gruu, 100rel"),
        );
        let _ = ctx.engine().send_response(now, accepted, response);
    }

    fn answer(ctx: &mut Context<'_>, incoming: Incoming, status: StatusCode) {
        let now = ctx.now();
        let with_allow = status == StatusCode::METHOD_NOT_ALLOWED || status.0 == 501;
        let Ok(accepted) = ctx.engine().accept(now, incoming) else {
            return;
        };
        if with_allow {
            if let Ok(mut response) = ctx.engine().response(accepted, status) {
                response
                    .headers_mut()
                    .push(HeaderName::Allow, Bytes::from_static(ALLOW.as_bytes()));
                let _ = ctx.engine().send_response(now, accepted, response);
            }
        } else {
            let _ = ctx.engine().respond(now, accepted, status);
        }
    }
}

impl TransactionUser for PlatformTu {
    fn on_incoming(&mut self, ctx: &mut Context<'_>, incoming: Incoming) {
        if let (Some(guard), Some(flow)) = (&self.guard, ctx.flow())
            && !guard.inspect(flow.remote, incoming.request())
        {
            // A scanner, banned now: no answer at all (its TCP/TLS connection is closed at
            // its next frame by the transport filter).
            ctx.engine().ignore(incoming);
            return;
        }
        let method = incoming.method().clone();
        if method == Method::Ack {
            // ACKs for our non-2xx are absorbed by the engine; a stray ACK needs nothing.
            ctx.engine().ignore(incoming);
            return;
        }
        // The engine validated the request on arrival (`Request::validate`); the UAS checks
        // are what is left.
        if let Err(err) = incoming.request().validate_uas_only(&self.policy) {
            Self::reject(ctx, incoming, &err);
            return;
        }
        let in_dialog = incoming.request().to_ref().is_ok_and(|to| to.tag.is_some());
        if self.calls.is_some()
            && (method == Method::Invite || (in_dialog && method != Method::Register))
        {
            self.call_request(ctx, incoming);
            return;
        }
        match method {
            Method::Options => Self::options(ctx, incoming),
            Method::Register => self.register(ctx, incoming),
            // Calls arrive with the call engine (issue [3]); until then nobody is reachable.
            Method::Invite => Self::answer(ctx, incoming, StatusCode::TEMPORARILY_UNAVAILABLE),
            Method::Bye
            | Method::Update
            | Method::Info
            | Method::Prack
            | Method::Notify
            | Method::Refer => Self::answer(
                ctx,
                incoming,
                StatusCode::CALL_OR_TRANSACTION_DOES_NOT_EXIST,
            ),
            Method::Subscribe | Method::Publish | Method::Message => {
                Self::answer(ctx, incoming, StatusCode::METHOD_NOT_ALLOWED);
            }
            _ => Self::answer(ctx, incoming, StatusCode(501)),
        }
    }

    fn before_send(&mut self) {
        // The relay learns this step's sessions and addresses before the SDP naming them
        // leaves (one relay wake-up per step, `Calls::flush_media`).
        if let Some(calls) = &self.calls {
            calls.flush_media();
        }
    }

    fn on_flow_closed(&mut self, ctx: &mut Context<'_>, flow: Flow) {
        // RFC 5626 §5.4: bindings reachable only over this connection are gone with it.
        let effects = self
            .registrar
            .handle_flow_closed(&flow_info(flow), now_pair(ctx.now()));
        self.apply(ctx, effects);
    }

    fn on_event(&mut self, ctx: &mut Context<'_>, event: Event) {
        let Some(event) = self.client_requests.route(event) else {
            return;
        };
        if let Some(calls) = self.calls.as_mut()
            && calls.on_event(ctx, &event)
        {
            return;
        }
        match event {
            Event::Cancelled { invite, .. } => {
                let now = ctx.now();
                let _ = ctx
                    .engine()
                    .respond(now, invite, StatusCode::REQUEST_TERMINATED);
            }
            Event::Response {
                transaction,
                response,
            } if response.status().is_final() => {
                self.ping_answered(ctx, transaction, true);
            }
            Event::TimedOut { transaction, .. } | Event::TransportError { transaction } => {
                self.ping_answered(ctx, transaction, false);
            }
            Event::Terminated { transaction } => {
                // A ping transaction that ended without a final response failed.
                self.ping_answered(ctx, transaction, false);
            }
            _ => {}
        }
    }
}

impl PlatformTu {
    fn reject(ctx: &mut Context<'_>, incoming: Incoming, err: &pbx_sip::ParseError) {
        let now = ctx.now();
        let status = err.status().unwrap_or(StatusCode::BAD_REQUEST);
        let Ok(accepted) = ctx.engine().accept(now, incoming) else {
            return;
        };
        let Ok(mut response) = ctx.engine().response(accepted, status) else {
            return;
        };
        if let pbx_sip::ParseError::BadExtension { unsupported } = err {
            let list: Vec<&[u8]> = unsupported.iter().map(|tag| tag.as_ref()).collect();
            response
                .headers_mut()
                .push(HeaderName::Unsupported, Bytes::from(list.join(&b", "[..])));
        }
        if status == StatusCode::UNSUPPORTED_MEDIA_TYPE {
            response
                .headers_mut()
                .push(HeaderName::Accept, Bytes::from_static(b"application/sdp"));
        }
        let _ = ctx.engine().send_response(now, accepted, response);
    }
}

/// The registrar's view of a transport flow.
pub fn flow_info(flow: Flow) -> FlowInfo {
    FlowInfo {
        transport: match flow.transport {
            Transport::Tcp => pbx_domain::Transport::Tcp,
            Transport::Tls => pbx_domain::Transport::Tls,
            _ => pbx_domain::Transport::Udp,
        },
        source: flow.remote,
        local: flow.local,
        connection: flow.connection.map(|c| c.0),
    }
}

/// The instant of this step paired with the wall clock, read now (this is the driver).
pub fn now_pair(instant: Instant) -> Now {
    let unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    Now::new(instant, unix_ms)
}

impl PlatformTu {
    /// Control plane: forget the in-memory bindings of `tenant` (or of one of its users) after
    /// the API cleared them from the store. The removal events are audited like any other.
    /// Returns how many bindings were dropped.
    pub fn clear_registrations(
        &mut self,
        ctx: &mut Context<'_>,
        tenant: pbx_domain::TenantId,
        user: Option<pbx_domain::UserId>,
    ) -> usize {
        let effects = match user {
            Some(user) => self.registrar.remove_user(user),
            None => self.registrar.remove_tenant(tenant),
        };
        let dropped = effects
            .iter()
            .filter(|effect| matches!(effect, Effect::DeleteBinding(_)))
            .count();
        self.apply(ctx, effects);
        dropped
    }
}
