//! A PBX node (endpoint + call engine) and scripted user agents on the in-memory network.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use pbx_call::{
    CallConfig, CallEngine, CallRecord, Direction, Disposition, ForkTarget, MediaAllocator,
    MediaSession, MediaUnavailable, NewCall, NewTransfer, Now, RefusedTransfer, Side, Stage,
    StreamStats, TransferRequest, TrunkAttempt, TrunkCredentials,
};
use pbx_sip::{HeaderName, Host, Method, NameAddr, Request, Response, StatusCode, Transport, Via};
use pbx_sip_auth::{Algorithm, Credentials, Ha1, ResponseInput, compute_response};
use pbx_sip_engine::{
    AcceptedTransaction, ClientTransaction, Config, Dialog, Endpoint, Event, Incoming, Invite,
    ServerTransaction, Target, TransportInfo,
};
use pbx_test_support::{Datagram, Network, Node, Outgoing, VirtualClock};

pub const PBX: &str = "10.0.0.1:5060";
pub const ALICE: &str = "192.168.1.10:5060";
pub const BOB: &str = "192.168.2.20:5060";
pub const BOB2: &str = "192.168.2.21:5060";
/// A transfer target (not forked to by new calls).
pub const CAROL: &str = "192.168.3.30:5060";
/// The relay's address in SDP.
pub const RELAY_IP: &str = "10.0.0.1";

pub fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

/// Relay calls recorded by the test allocator.
#[derive(Debug, Default)]
pub struct MediaLog {
    pub allocated: usize,
    pub remotes: Vec<(Side, SocketAddr)>,
    pub holds: Vec<bool>,
    /// Every `set_remote`, with the session's first port.
    pub session_remotes: Vec<(u16, Side, SocketAddr)>,
    /// First ports of the sessions released (dropped).
    pub released: Vec<u16>,
}

#[derive(Debug)]
struct TestSession {
    base: u16,
    log: Arc<Mutex<MediaLog>>,
}

impl MediaSession for TestSession {
    fn local(&self, side: Side) -> SocketAddr {
        let port = match side {
            Side::A => self.base,
            Side::B => self.base + 2,
        };
        SocketAddr::new(RELAY_IP.parse().unwrap(), port)
    }
    fn set_remote(&mut self, side: Side, rtp: SocketAddr, _rtcp: Option<SocketAddr>) {
        let mut log = self.log.lock().unwrap();
        log.remotes.push((side, rtp));
        log.session_remotes.push((self.base, side, rtp));
    }
    fn set_hold(&mut self, held: bool) {
        self.log.lock().unwrap().holds.push(held);
    }
    fn stats(&self) -> [StreamStats; 2] {
        [
            StreamStats {
                packets: 10,
                ..StreamStats::default()
            },
            StreamStats {
                packets: 20,
                ..StreamStats::default()
            },
        ]
    }
}

impl Drop for TestSession {
    fn drop(&mut self) {
        if let Ok(mut log) = self.log.lock() {
            log.released.push(self.base);
        }
    }
}

/// Hands out port pairs from 30000 and logs what the engine tells the relay.
#[derive(Debug, Default)]
pub struct TestMedia {
    pub log: Arc<Mutex<MediaLog>>,
    pub exhausted: bool,
}

impl MediaAllocator for TestMedia {
    fn allocate(&mut self, _label: &str) -> Result<Box<dyn MediaSession>, MediaUnavailable> {
        if self.exhausted {
            return Err(MediaUnavailable);
        }
        let mut log = self.log.lock().unwrap();
        log.allocated += 1;
        let base = 30000 + 4 * log.allocated as u16;
        Ok(Box::new(TestSession {
            base,
            log: self.log.clone(),
        }))
    }
}

fn now_pair(base: Instant, now: Instant) -> Now {
    Now::new(
        now,
        1_700_000_000_000 + now.saturating_duration_since(base).as_millis() as i64,
    )
}

/// The PBX: every new INVITE is forked to `callees`.
pub struct Pbx {
    pub endpoint: Endpoint,
    pub calls: CallEngine<()>,
    pub media: TestMedia,
    pub address: SocketAddr,
    pub callees: Vec<SocketAddr>,
    /// When set, calls go out through these trunks (in order) instead of forking to callees.
    pub trunks: Option<Vec<Option<TrunkCredentials>>>,
    pub records: Vec<CallRecord<()>>,
    /// Every stage reported, with its call.
    pub stages: Vec<(Stage, u64)>,
    /// Transfer targets this PBX knows: extension of `tenant.example` and its bindings.
    pub transfer_targets: Vec<(String, Vec<SocketAddr>)>,
    /// Every transfer the engine asked to resolve.
    pub transfer_requests: Vec<TransferRequest<()>>,
    /// New calls from these sources fork to these callees (callee extension 300) instead
    /// of `callees`; with `trunks`, they go out through the trunks to these carriers (and
    /// other sources' calls fork to `callees`).
    pub routes: Vec<(SocketAddr, Vec<SocketAddr>)>,
    /// The driver's party check of an attended transfer fails (the `Replaces` names
    /// someone else's leg): 403.
    pub attended_not_same_party: bool,
    /// Carriers a transfer to a number (`0...` or `+...` of `tenant.example`) goes out
    /// through, in order, with their accounts (`trunk-0`, `trunk-1`, ...).
    pub transfer_trunks: Vec<(SocketAddr, Option<TrunkCredentials>)>,
    base: Instant,
}

impl Pbx {
    pub fn new(config: CallConfig, callees: Vec<SocketAddr>, base: Instant) -> Pbx {
        Pbx {
            endpoint: Endpoint::new(Config::default(), 7),
            calls: CallEngine::new(config),
            media: TestMedia::default(),
            address: addr(PBX),
            callees,
            trunks: None,
            records: Vec::new(),
            stages: Vec::new(),
            transfer_targets: Vec::new(),
            transfer_requests: Vec::new(),
            transfer_trunks: Vec::new(),
            routes: Vec::new(),
            attended_not_same_party: false,
            base,
        }
    }

    fn now(&self, now: Instant) -> Now {
        now_pair(self.base, now)
    }

    fn on_incoming(&mut self, now: Instant, incoming: Incoming) {
        let pair = self.now(now);
        let has_tag = incoming
            .request()
            .to()
            .map(|to| to.tag.is_some())
            .unwrap_or(false);
        if has_tag {
            self.calls
                .handle_in_dialog(&mut self.endpoint, pair, incoming);
            return;
        }
        if *incoming.method() != Method::Invite {
            self.endpoint.reject(now, incoming, StatusCode(405));
            return;
        }
        let request = incoming.request().clone();
        let source = incoming.source();
        let Ok(AcceptedTransaction::Invite(invite)) = self.endpoint.accept(now, incoming) else {
            return;
        };
        let routed = self
            .routes
            .iter()
            .find(|(from, _)| *from == source)
            .map(|(_, callees)| callees.clone());
        // With routes, only a routed source's calls go through the trunks (to its route).
        let trunked = self
            .trunks
            .clone()
            .filter(|_| self.routes.is_empty() || routed.is_some());
        if let Some(trunks) = trunked {
            let carriers = routed.clone().unwrap_or_else(|| self.callees.clone());
            let attempts = trunks
                .into_iter()
                .zip(&carriers)
                .enumerate()
                .map(|(i, (credentials, carrier))| TrunkAttempt {
                    target: ForkTarget {
                        request_uri: format!("sip:+31201234567@{}", carrier.ip())
                            .parse()
                            .unwrap(),
                        target: Target::udp(*carrier),
                        local: self.address,
                        route: Vec::new(),
                        to: NameAddr::parse(b"<sip:+31201234567@carrier.example>").unwrap(),
                        label: format!("trunk-{i}"),
                    },
                    from: NameAddr::parse(b"<sip:+31851234567@carrier.example>").unwrap(),
                    headers: vec![(
                        HeaderName::PAssertedIdentity,
                        Bytes::from_static(b"<sip:+31851234567@carrier.example>"),
                    )],
                    credentials,
                    trunk: format!("trunk-{i}"),
                })
                .collect();
            let new = NewCall {
                direction: Direction::Outbound,
                context: (),
                caller: "100".into(),
                callee_dialled: "0201234567".into(),
                callee_normalised: "+31201234567".into(),
                from: NameAddr::parse(b"<sip:100@tenant.example>").unwrap(),
                a_target: Target::udp(source),
                a_local: self.address,
                targets: Vec::new(),
                trunk: None,
            };
            let _ = self.calls.start_trunk_call(
                &mut self.endpoint,
                pair,
                invite,
                request,
                new,
                attempts,
                &mut self.media,
            );
            return;
        }
        let extension = if routed.is_some() { "300" } else { "200" };
        let targets = routed
            .unwrap_or_else(|| self.callees.clone())
            .iter()
            .enumerate()
            .map(|(i, callee)| ForkTarget {
                // A private Contact: the engine must send to the flow, not here.
                request_uri: format!("sip:bob@172.16.0.{}:5060", i + 1).parse().unwrap(),
                target: Target::udp(*callee),
                local: self.address,
                route: Vec::new(),
                to: NameAddr::parse(format!("<sip:{extension}@tenant.example>").as_bytes())
                    .unwrap(),
                label: if routed_caller(extension) {
                    format!("carol-device-{i}")
                } else {
                    format!("bob-device-{i}")
                },
            })
            .collect();
        let new = NewCall {
            direction: Direction::Internal,
            context: (),
            caller: if routed_caller(extension) {
                "200"
            } else {
                "100"
            }
            .into(),
            callee_dialled: extension.into(),
            callee_normalised: extension.into(),
            from: NameAddr::parse(b"\"Alice\" <sip:100@tenant.example>").unwrap(),
            a_target: Target::udp(source),
            a_local: self.address,
            targets,
            trunk: None,
        };
        let _ = self.calls.start_call(
            &mut self.endpoint,
            pair,
            invite,
            request,
            new,
            &mut self.media,
        );
    }

    /// Resolves the transfers the engine asks for, as a driver does: an extension of
    /// `tenant.example` in `transfer_targets` forks to its bindings; another domain is
    /// refused 403, an unknown extension 404.
    fn resolve_transfers(&mut self, now: Instant) {
        let pair = self.now(now);
        while let Some(request) = self.calls.poll_transfer() {
            self.transfer_requests.push(request.clone());
            if request.replaces.is_some() {
                // Attended: the driver's party check, then the join.
                if self.attended_not_same_party {
                    self.calls
                        .refuse_transfer(&mut self.endpoint, pair, request.key, 403)
                        .unwrap();
                } else {
                    self.calls
                        .start_attended_transfer(&mut self.endpoint, pair, request.key, ())
                        .unwrap();
                }
                continue;
            }
            let sip = request.target.as_sip();
            let ours = sip.is_some_and(|sip| sip.host.to_string() == "tenant.example");
            let user = sip
                .and_then(|sip| sip.user_unescaped())
                .map(|u| String::from_utf8_lossy(&u).into_owned())
                .unwrap_or_default();
            let known = self
                .transfer_targets
                .iter()
                .find(|(extension, _)| *extension == user)
                .map(|(_, bindings)| bindings.clone());
            if ours && user.starts_with(['0', '+']) && !self.transfer_trunks.is_empty() {
                let e164 = match user.strip_prefix('0') {
                    Some(national) => format!("+31{national}"),
                    None => user.clone(),
                };
                let attempts = self
                    .transfer_trunks
                    .iter()
                    .enumerate()
                    .map(|(i, (carrier, credentials))| TrunkAttempt {
                        target: ForkTarget {
                            request_uri: format!("sip:{e164}@{}", carrier.ip()).parse().unwrap(),
                            target: Target::udp(*carrier),
                            local: self.address,
                            route: Vec::new(),
                            to: NameAddr::parse(format!("<sip:{e164}@carrier.example>").as_bytes())
                                .unwrap(),
                            label: format!("trunk-{i}"),
                        },
                        from: NameAddr::parse(b"<sip:+31851234567@carrier.example>").unwrap(),
                        headers: vec![(
                            HeaderName::PAssertedIdentity,
                            Bytes::from_static(b"<sip:+31851234567@carrier.example>"),
                        )],
                        credentials: credentials.clone(),
                        trunk: format!("trunk-{i}"),
                    })
                    .collect();
                let new = NewTransfer {
                    context: (),
                    callee_dialled: user,
                    callee_normalised: e164,
                    targets: Vec::new(),
                };
                self.calls
                    .start_trunk_transfer(&mut self.endpoint, pair, request.key, new, attempts)
                    .unwrap();
                continue;
            }
            let (true, Some(bindings)) = (ours, known) else {
                // The attempt is filed as a driver files a refused call.
                let (status, disposition, cause, dialled) = if ours {
                    (404, Disposition::Unavailable, "no such extension", user)
                } else {
                    (
                        403,
                        Disposition::Failed,
                        "not our domain",
                        request.target.to_string(),
                    )
                };
                let refused = RefusedTransfer {
                    context: (),
                    status,
                    disposition,
                    cause: cause.to_owned(),
                    callee_normalised: dialled.clone(),
                    callee_dialled: dialled,
                    direction: None,
                    trunk: None,
                };
                self.calls
                    .refuse_transfer_target(&mut self.endpoint, pair, request.key, refused)
                    .unwrap();
                continue;
            };
            let targets = bindings
                .iter()
                .enumerate()
                .map(|(i, binding)| ForkTarget {
                    request_uri: format!("sip:carol@172.16.1.{}:5060", i + 1)
                        .parse()
                        .unwrap(),
                    target: Target::udp(*binding),
                    local: self.address,
                    route: Vec::new(),
                    to: NameAddr::parse(format!("<sip:{user}@tenant.example>").as_bytes()).unwrap(),
                    label: format!("target-device-{i}"),
                })
                .collect();
            let new = NewTransfer {
                context: (),
                callee_dialled: user.clone(),
                callee_normalised: user,
                targets,
            };
            self.calls
                .start_transfer(&mut self.endpoint, pair, request.key, new)
                .unwrap();
        }
    }

    fn drain(&mut self, now: Instant) {
        let pair = self.now(now);
        while let Some(event) = self.endpoint.poll_event() {
            self.calls.handle_event(&mut self.endpoint, pair, &event);
        }
        self.resolve_transfers(now);
        while let Some((stage, record)) = self.calls.poll_record() {
            self.stages.push((stage, record.call_key));
            if stage == Stage::Ended {
                self.records.push(record);
            }
        }
    }
}

impl Node for Pbx {
    fn handle_datagram(&mut self, now: Instant, datagram: Datagram) {
        if let Some(incoming) =
            self.endpoint
                .handle_datagram(now, TransportInfo::udp(datagram.source), datagram.bytes)
        {
            self.on_incoming(now, incoming);
        }
        self.drain(now);
    }

    fn poll_transmit(&mut self, now: Instant) -> Option<Outgoing> {
        self.drain(now);
        self.endpoint.poll_transmit().map(|t| Outgoing {
            destination: t.destination,
            bytes: t.contents,
        })
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        [self.endpoint.poll_timeout(), self.calls.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.endpoint.handle_timeout(now);
        self.drain(now);
        let pair = self.now(now);
        self.calls.handle_timeout(&mut self.endpoint, pair);
        self.drain(now);
    }
}

/// The caller of a routed call (Bob's second line, calling Carol) is Bob (200).
fn routed_caller(callee: &str) -> bool {
    callee == "300"
}

/// What a callee does with an INVITE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// 180, then 200 after this long.
    After(Duration),
    /// 180, then this status after this long.
    Reject(u16, Duration),
    /// 180 and nothing else.
    Never,
}

#[derive(Debug, Clone)]
enum Action {
    Final(u16),
}

/// How a callee sends its provisional response reliably (RFC 3262).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reliably {
    /// 183 with the SDP answer (else a 180 without body).
    pub with_sdp: bool,
    /// Even when the INVITE did not offer 100rel (a broken UA).
    pub regardless: bool,
    /// Our first RSeq.
    pub rseq: u32,
    /// Answer (200) only after the PRACK came, this long after it (as SIPp scenarios do).
    pub answer_after_prack: Option<Duration>,
}

/// The option tag in a Supported/Require header list.
pub fn has_100rel(headers: &pbx_sip::Headers, name: &HeaderName) -> bool {
    headers
        .values(name)
        .any(|v| v.is_ok_and(|v| v.trim_ascii().eq_ignore_ascii_case(b"100rel")))
}

/// A scripted user agent.
pub struct Ua {
    pub endpoint: Endpoint,
    pub address: SocketAddr,
    pub pbx: SocketAddr,
    pub answer: Answer,
    /// Payload types we accept (`8` PCMA, `0` PCMU, `18` G.729, `101` events).
    pub payload_types: Vec<&'static str>,
    /// Whether our INVITE asks for session timers (refresher=uac, 90 s).
    pub session_timer: bool,
    /// As a carrier: challenge INVITEs with this status (401/407) and check the digest
    /// against user `acct` and this password.
    pub challenge: Option<(u16, &'static str)>,
    /// For every INVITE: `None` without credentials, else whether they were valid.
    pub auth_results: Vec<Option<bool>>,
    /// As a carrier: also challenge in-dialog BYE, re-INVITE, PRACK and UPDATE (with
    /// `challenge`), recording
    /// `(method, result)` in `in_dialog_auth`.
    pub challenge_in_dialog: bool,
    pub in_dialog_auth: Vec<(String, Option<bool>)>,
    /// As a caller: `Supported` or `Require` 100rel on our INVITE.
    pub rel100: Option<HeaderName>,
    /// As a caller: PRACK every new reliable provisional at once (else `send_prack`).
    pub auto_prack: bool,
    /// As a caller: our PRACK carries an offer with this direction.
    pub prack_offer: Option<&'static str>,
    /// As a caller without an offer: our PRACK of a reliable 18x with SDP (the callee's
    /// offer) carries no answer (a broken UA); else it carries ours (`sendrecv`).
    pub prack_without_answer: bool,
    /// As a callee: send the provisional reliably.
    pub reliably: Option<Reliably>,
    /// The last reliable provisional received, with its RSeq (caller side).
    pub last_reliable: Option<(u32, Response)>,
    /// PRACKs we sent.
    pub pracks_sent: usize,
    /// As a caller: our INVITE carries no SDP (late offer, RFC 3261 §13.2.1).
    pub offerless: bool,
    /// When our INVITE had no SDP and its 2xx brings an offer, our ACK carries no answer
    /// (a broken UA); else it carries ours (`sendrecv`).
    pub ack_without_answer: bool,
    /// ACKs we sent for 2xx responses.
    pub acks_sent: Vec<Request>,
    /// As a caller: the Call-ID and From tag of our INVITE.
    pub call_id: String,
    pub from_tag: String,
    /// A re-INVITE in our dialog is refused with this status (else 200).
    pub reinvite_status: Option<u16>,
    early: Option<Dialog>,
    answer_on_prack: Option<Duration>,
    pub received: Vec<Request>,
    pub responses: Vec<Response>,
    pub cancels: usize,
    pub dialog: Option<Dialog>,
    pub invite: Option<Request>,
    invite_tx: Option<ClientTransaction<Invite>>,
    incoming_invite: Option<(ServerTransaction<Invite>, Request)>,
    actions: Vec<(Instant, Action)>,
}

impl Ua {
    pub fn new(address: &str, answer: Answer, seed: u64) -> Ua {
        Ua {
            endpoint: Endpoint::new(Config::default(), seed),
            address: addr(address),
            pbx: addr(PBX),
            answer,
            payload_types: vec!["8", "101"],
            session_timer: false,
            challenge: None,
            auth_results: Vec::new(),
            challenge_in_dialog: false,
            in_dialog_auth: Vec::new(),
            rel100: None,
            auto_prack: true,
            prack_offer: None,
            prack_without_answer: false,
            reliably: None,
            last_reliable: None,
            pracks_sent: 0,
            offerless: false,
            ack_without_answer: false,
            acks_sent: Vec::new(),
            call_id: "alice-call-1@192.168.1.10".into(),
            from_tag: "alice1".into(),
            reinvite_status: None,
            early: None,
            answer_on_prack: None,
            received: Vec::new(),
            responses: Vec::new(),
            cancels: 0,
            dialog: None,
            invite: None,
            invite_tx: None,
            incoming_invite: None,
            actions: Vec::new(),
        }
    }

    pub fn sdp(&self, direction: &str) -> String {
        let ip = self.address.ip();
        let formats = self.payload_types.join(" ");
        let mut text = format!(
            "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio 4000 RTP/AVP {formats}\r\n"
        );
        for pt in &self.payload_types {
            let map = match *pt {
                "0" => "PCMU/8000",
                "8" => "PCMA/8000",
                "18" => "G729/8000",
                _ => "telephone-event/8000",
            };
            text.push_str(&format!("a=rtpmap:{pt} {map}\r\n"));
        }
        text.push_str(&format!("a={direction}\r\n"));
        text
    }

    fn via(&mut self) -> Via {
        Via::new(
            Transport::Udp,
            Host::from(self.address.ip()),
            Some(self.address.port()),
            self.endpoint.new_branch(),
        )
        .with_rport()
    }

    fn contact(&self) -> NameAddr {
        NameAddr::parse(format!("<sip:ua@{}>", self.address).as_bytes()).unwrap()
    }

    /// Calls extension 200 through the PBX.
    pub fn call(&mut self, now: Instant) {
        let via = self.via();
        let mut builder =
            Request::builder(Method::Invite, "sip:200@tenant.example".parse().unwrap())
                .via(&via)
                .from(
                    &NameAddr::parse(
                        format!("<sip:100@tenant.example>;tag={}", self.from_tag).as_bytes(),
                    )
                    .unwrap(),
                )
                .to(&NameAddr::parse(b"<sip:200@tenant.example>").unwrap())
                .call_id(self.call_id.clone())
                .cseq(1)
                .contact(&self.contact());
        if self.session_timer {
            builder = builder
                .header(HeaderName::Supported, Bytes::from_static(b"timer"))
                .header(
                    HeaderName::SessionExpires,
                    Bytes::from_static(b"90;refresher=uac"),
                );
        }
        if let Some(name) = self.rel100.clone() {
            builder = builder.header(name, Bytes::from_static(b"100rel"));
        }
        let request = if self.offerless {
            builder.build()
        } else {
            builder
                .body("application/sdp", self.sdp("sendrecv"))
                .build()
        };
        self.invite = Some(request.clone());
        let tx = self
            .endpoint
            .send_invite(now, request, Target::udp(self.pbx))
            .unwrap();
        self.invite_tx = Some(tx);
    }

    /// CANCEL our INVITE.
    pub fn cancel(&mut self, now: Instant) {
        let id = self.invite_tx.expect("our INVITE transaction");
        self.endpoint.cancel(now, id).unwrap();
    }

    /// Sends an in-dialog request (BYE, re-INVITE with `direction`, INFO, OPTIONS).
    pub fn send_in_dialog(&mut self, now: Instant, method: Method, direction: Option<&str>) {
        self.send_in_dialog_with(now, method, direction, &[]);
    }

    /// Sends a REFER in our dialog with these `Refer-To` values (none, one, or several).
    pub fn send_refer(&mut self, now: Instant, refer_to: &[&str]) {
        let headers: Vec<(HeaderName, String)> = refer_to
            .iter()
            .map(|value| (HeaderName::ReferTo, (*value).to_owned()))
            .chain([(HeaderName::ReferredBy, format!("<sip:ua@{}>", self.address))])
            .collect();
        self.send_in_dialog_with(now, Method::Refer, None, &headers);
    }

    /// [`Self::send_in_dialog`] with extra headers.
    pub fn send_in_dialog_with(
        &mut self,
        now: Instant,
        method: Method,
        direction: Option<&str>,
        extra: &[(HeaderName, String)],
    ) {
        let via = self.via();
        let contact = self.contact();
        let body = direction.map(|d| self.sdp(d));
        let dialog = self.dialog.as_mut().expect("a dialog");
        dialog.set_local_contact(contact);
        let mut request = dialog.request(method.clone(), &via).unwrap();
        for (name, value) in extra {
            request
                .headers_mut()
                .push(name.clone(), Bytes::from(value.clone()));
        }
        if let Some(body) = body {
            request.headers_mut().push(
                HeaderName::ContentType,
                Bytes::from_static(b"application/sdp"),
            );
            request.set_body(body);
        } else if method == Method::Info {
            request.headers_mut().push(
                HeaderName::ContentType,
                Bytes::from_static(b"application/dtmf-relay"),
            );
            request.set_body("Signal=5\r\nDuration=160\r\n");
        }
        if method == Method::Invite {
            self.endpoint
                .send_invite(now, request, Target::udp(self.pbx))
                .unwrap();
        } else {
            self.endpoint
                .send_request(now, request, Target::udp(self.pbx))
                .unwrap();
        }
    }

    /// Sends an UPDATE (with an offer of `direction`, or none) in our early dialog: as a
    /// callee the one our 18x opened, as a caller the one of the last provisional with a To
    /// tag (a reliable one, or any).
    pub fn send_early_update(&mut self, now: Instant, direction: Option<&str>) {
        if self.early.is_none() {
            let invite = self.invite.clone().expect("our INVITE");
            let provisional = self
                .responses
                .iter()
                .rfind(|r| {
                    (101..200).contains(&r.status().0) && r.to().is_ok_and(|to| to.tag.is_some())
                })
                .expect("a provisional with a To tag");
            self.early = Some(Dialog::uac(&invite, provisional).unwrap());
        }
        let via = self.via();
        let contact = self.contact();
        let body = direction.map(|d| self.sdp(d));
        let early = self.early.as_mut().expect("an early dialog");
        early.set_local_contact(contact);
        let mut update = early.request(Method::Update, &via).unwrap();
        if let Some(body) = body {
            update.headers_mut().push(
                HeaderName::ContentType,
                Bytes::from_static(b"application/sdp"),
            );
            update.set_body(body);
        }
        self.endpoint
            .send_request(now, update, Target::udp(self.pbx))
            .unwrap();
    }

    pub fn statuses(&self) -> Vec<u16> {
        self.responses.iter().map(|r| r.status().0).collect()
    }

    pub fn methods(&self) -> Vec<String> {
        self.received
            .iter()
            .map(|r| r.method().to_string())
            .collect()
    }

    pub fn received_of(&self, method: Method) -> Vec<&Request> {
        self.received
            .iter()
            .filter(|r| *r.method() == method)
            .collect()
    }

    fn on_incoming(&mut self, now: Instant, incoming: Incoming) {
        let request = incoming.request().clone();
        self.received.push(request.clone());
        let method = request.method().clone();
        if method == Method::Ack {
            return;
        }
        let in_dialog = request.to().map(|t| t.tag.is_some()).unwrap_or(false);
        let accepted = self.endpoint.accept(now, incoming).unwrap();
        if method == Method::Invite && !in_dialog {
            let AcceptedTransaction::Invite(invite) = accepted else {
                return;
            };
            if let Some((status, password)) = self.challenge {
                let (credentials_header, challenge_header) = if status == 401 {
                    (HeaderName::Authorization, HeaderName::WwwAuthenticate)
                } else {
                    (
                        HeaderName::ProxyAuthorization,
                        HeaderName::ProxyAuthenticate,
                    )
                };
                let result = request.headers().get(&credentials_header).map(|value| {
                    Credentials::parse(value)
                        .is_ok_and(|c| digest_valid(&c, password, &request.uri().to_string()))
                });
                self.auth_results.push(result);
                if result != Some(true) {
                    let mut response = self.endpoint.response(invite, StatusCode(status)).unwrap();
                    response.headers_mut().push(
                        challenge_header,
                        Bytes::from_static(
                            b"Digest realm=\"carrier.test\", nonce=\"n0nce\", qop=\"auth\", algorithm=MD5",
                        ),
                    );
                    self.endpoint.send_response(now, invite, response).unwrap();
                    return;
                }
            }
            let offer = String::from_utf8_lossy(request.body()).into_owned();
            let m_line = offer
                .lines()
                .find(|l| l.starts_with("m=audio"))
                .unwrap_or("");
            let common = self
                .payload_types
                .iter()
                .any(|pt| *pt != "101" && m_line.split(' ').skip(3).any(|f| f == *pt));
            // Without an offer (late offer) ours goes in the 2xx.
            if !common && !request.body().is_empty() {
                self.endpoint.respond(now, invite, StatusCode(488)).unwrap();
                return;
            }
            let offered = has_100rel(request.headers(), &HeaderName::Supported)
                || has_100rel(request.headers(), &HeaderName::Require);
            let reliably = self.reliably.filter(|r| offered || r.regardless);
            let code = if reliably.is_some_and(|r| r.with_sdp) {
                183
            } else {
                180
            };
            let mut ringing = self.endpoint.response(invite, StatusCode(code)).unwrap();
            ringing
                .headers_mut()
                .push(HeaderName::Contact, self.contact().to_bytes());
            if let Some(reliably) = reliably {
                let headers = ringing.headers_mut();
                headers.push(HeaderName::Require, Bytes::from_static(b"100rel"));
                headers.push(HeaderName::RSeq, Bytes::from(reliably.rseq.to_string()));
                if reliably.with_sdp {
                    headers.push(
                        HeaderName::ContentType,
                        Bytes::from_static(b"application/sdp"),
                    );
                    ringing.set_body(self.sdp("sendrecv"));
                }
            }
            // Our early dialog (UPDATEs before the answer go in it).
            if self.early.is_none() {
                self.early = Dialog::uas(&request, &ringing).ok();
            }
            self.endpoint.send_response(now, invite, ringing).unwrap();
            self.incoming_invite = Some((invite, request));
            if let Some(delay) = reliably.and_then(|r| r.answer_after_prack) {
                self.answer_on_prack = Some(delay);
                return;
            }
            match self.answer {
                Answer::After(delay) => self.actions.push((now + delay, Action::Final(200))),
                Answer::Reject(status, delay) => {
                    self.actions.push((now + delay, Action::Final(status)))
                }
                Answer::Never => {}
            }
            return;
        }
        if in_dialog
            && self.challenge_in_dialog
            && matches!(
                method,
                Method::Bye | Method::Invite | Method::Prack | Method::Update
            )
            && let Some((status, password)) = self.challenge
            && self.challenged_in_dialog(now, accepted, &request, status, password)
        {
            return;
        }
        if method == Method::Invite
            && let Some(status) = self.reinvite_status
        {
            if let Some(dialog) = self.dialog.as_mut() {
                let _ = dialog.on_request(&request);
            }
            self.endpoint
                .respond(now, accepted, StatusCode(status))
                .unwrap();
            return;
        }
        let status = StatusCode::OK;
        let mut response = self.endpoint.response(accepted, status).unwrap();
        if let Some(dialog) = self.dialog.as_mut() {
            let _ = dialog.on_request(&request);
        }
        if method == Method::Prack
            && let Some(delay) = self.answer_on_prack.take()
        {
            self.actions.push((now + delay, Action::Final(200)));
        }
        let offer_in =
            matches!(method, Method::Update | Method::Prack) && !request.body().is_empty();
        if method == Method::Invite || offer_in {
            let offer = String::from_utf8_lossy(request.body()).into_owned();
            let direction = if offer.contains("a=sendonly") {
                "recvonly"
            } else if offer.contains("a=inactive") {
                "inactive"
            } else {
                "sendrecv"
            };
            response
                .headers_mut()
                .push(HeaderName::Contact, self.contact().to_bytes());
            response.headers_mut().push(
                HeaderName::ContentType,
                Bytes::from_static(b"application/sdp"),
            );
            response.set_body(self.sdp(direction));
        }
        self.endpoint
            .send_response(now, accepted, response)
            .unwrap();
    }

    fn drain(&mut self, now: Instant) {
        while let Some(event) = self.endpoint.poll_event() {
            match event {
                Event::Response {
                    transaction,
                    response,
                } => {
                    let is_invite = self.endpoint.client_invite(transaction).is_some();
                    if is_invite && (101..200).contains(&response.status().0) {
                        self.on_provisional(now, transaction, &response);
                    }
                    if is_invite && response.status().is_success() {
                        let request = self.endpoint.request(transaction).unwrap().clone();
                        match self.dialog.as_mut() {
                            Some(dialog) => {
                                let _ = dialog.on_response(&Method::Invite, &response);
                            }
                            None => {
                                let tag = response.to().unwrap().tag;
                                let dialog = match self.early.take() {
                                    Some(mut early)
                                        if Some(&early.id().remote_tag) == tag.as_ref() =>
                                    {
                                        early.on_response(&Method::Invite, &response).unwrap();
                                        early
                                    }
                                    _ => Dialog::uac(&request, &response).unwrap(),
                                };
                                self.dialog = Some(dialog);
                            }
                        }
                        let via = self.via();
                        let mut ack = self.dialog.as_ref().unwrap().ack(&via).unwrap();
                        // Late offer: the 2xx carried the offer, the ACK carries our answer.
                        if request.body().is_empty()
                            && !response.body().is_empty()
                            && !self.ack_without_answer
                        {
                            ack.headers_mut().push(
                                HeaderName::ContentType,
                                Bytes::from_static(b"application/sdp"),
                            );
                            ack.set_body(self.sdp("sendrecv"));
                        }
                        self.acks_sent.push(ack.clone());
                        let handle = self.endpoint.client_invite(transaction).unwrap();
                        self.endpoint
                            .send_ack(now, handle, ack, Target::udp(self.pbx))
                            .unwrap();
                    }
                    self.responses.push(response);
                }
                Event::Cancelled { invite, cancel } => {
                    self.cancels += 1;
                    self.received.push(cancel);
                    let _ = self.endpoint.respond(now, invite, StatusCode(487));
                    self.incoming_invite = None;
                    self.actions.clear();
                }
                Event::Ack { request, .. } => self.received.push(request),
                _ => {}
            }
        }
    }

    /// A provisional to our INVITE: a new reliable one (RSeq one above the last) is kept and,
    /// with `auto_prack`, PRACKed.
    fn on_provisional(
        &mut self,
        now: Instant,
        transaction: pbx_sip_engine::TransactionId,
        response: &Response,
    ) {
        let reliable = has_100rel(response.headers(), &HeaderName::Require);
        let Some(rseq) = response
            .headers()
            .get(&HeaderName::RSeq)
            .and_then(|v| std::str::from_utf8(v).ok()?.trim().parse::<u32>().ok())
            .filter(|_| reliable)
        else {
            return;
        };
        if self
            .last_reliable
            .as_ref()
            .is_some_and(|(last, _)| rseq <= *last)
        {
            return; // a retransmission
        }
        if self.early.is_none() {
            let request = self.endpoint.request(transaction).unwrap().clone();
            self.early = Some(Dialog::uac(&request, response).unwrap());
        }
        self.last_reliable = Some((rseq, response.clone()));
        if self.auto_prack {
            self.send_prack(now);
        }
    }

    /// PRACKs the last reliable provisional received (in its early dialog).
    pub fn send_prack(&mut self, now: Instant) {
        let (rseq, response) = self.last_reliable.clone().expect("a reliable provisional");
        let via = self.via();
        // Late offer: a reliable 18x with SDP carried the offer, the PRACK carries the answer.
        let answer = self.offerless && !response.body().is_empty() && !self.prack_without_answer;
        let body = self
            .prack_offer
            .or(answer.then_some("sendrecv"))
            .map(|d| self.sdp(d));
        let early = self.early.as_mut().expect("an early dialog");
        let mut prack = early.request(Method::Prack, &via).unwrap();
        let cseq = response.cseq().unwrap().seq;
        prack.headers_mut().push(
            HeaderName::RAck,
            Bytes::from(format!("{rseq} {cseq} INVITE")),
        );
        if let Some(body) = body {
            prack.headers_mut().push(
                HeaderName::ContentType,
                Bytes::from_static(b"application/sdp"),
            );
            prack.set_body(body);
        }
        self.endpoint
            .send_request(now, prack, Target::udp(self.pbx))
            .unwrap();
        self.pracks_sent += 1;
    }

    /// Responses to our requests of `method`.
    pub fn responses_to(&self, method: Method) -> Vec<&Response> {
        self.responses
            .iter()
            .filter(|r| r.cseq().is_ok_and(|c| c.method == method))
            .collect()
    }

    /// Challenges an in-dialog request without valid credentials; `true` when it did.
    fn challenged_in_dialog(
        &mut self,
        now: Instant,
        accepted: AcceptedTransaction,
        request: &Request,
        status: u16,
        password: &str,
    ) -> bool {
        let (credentials_header, challenge_header) = if status == 401 {
            (HeaderName::Authorization, HeaderName::WwwAuthenticate)
        } else {
            (
                HeaderName::ProxyAuthorization,
                HeaderName::ProxyAuthenticate,
            )
        };
        let method = request.method().to_string();
        let result = request.headers().get(&credentials_header).map(|value| {
            Credentials::parse(value)
                .is_ok_and(|c| digest_valid_for(&method, &c, password, &request.uri().to_string()))
        });
        self.in_dialog_auth.push((method, result));
        if result == Some(true) {
            return false;
        }
        let mut response = self
            .endpoint
            .response(accepted, StatusCode(status))
            .unwrap();
        response.headers_mut().push(
            challenge_header,
            Bytes::from_static(
                b"Digest realm=\"carrier.test\", nonce=\"n0nce2\", qop=\"auth\", algorithm=MD5",
            ),
        );
        self.endpoint
            .send_response(now, accepted, response)
            .unwrap();
        true
    }

    fn run_actions(&mut self, now: Instant) {
        let due: Vec<Action> = {
            let (due, later): (Vec<_>, Vec<_>) =
                self.actions.drain(..).partition(|(at, _)| *at <= now);
            self.actions = later;
            due.into_iter().map(|(_, a)| a).collect()
        };
        for action in due {
            let Action::Final(status) = action;
            let Some((invite, request)) = self.incoming_invite.take() else {
                continue;
            };
            let mut response = self.endpoint.response(invite, StatusCode(status)).unwrap();
            if status == 200 {
                response
                    .headers_mut()
                    .push(HeaderName::Contact, self.contact().to_bytes());
                response.headers_mut().push(
                    HeaderName::ContentType,
                    Bytes::from_static(b"application/sdp"),
                );
                response.set_body(self.sdp("sendrecv"));
                self.dialog = Some(Dialog::uas(&request, &response).unwrap());
            }
            let _ = self.endpoint.send_response(now, invite, response);
        }
    }
}

impl Node for Ua {
    fn handle_datagram(&mut self, now: Instant, datagram: Datagram) {
        if let Some(incoming) =
            self.endpoint
                .handle_datagram(now, TransportInfo::udp(datagram.source), datagram.bytes)
        {
            self.on_incoming(now, incoming);
        }
        self.drain(now);
    }

    fn poll_transmit(&mut self, now: Instant) -> Option<Outgoing> {
        self.drain(now);
        self.endpoint.poll_transmit().map(|t| Outgoing {
            destination: t.destination,
            bytes: t.contents,
        })
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        let action = self.actions.iter().map(|(at, _)| *at).min();
        [self.endpoint.poll_timeout(), action]
            .into_iter()
            .flatten()
            .min()
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.endpoint.handle_timeout(now);
        self.run_actions(now);
        self.drain(now);
    }
}

/// Either node kind on one network.
pub enum Peer {
    Pbx(Box<Pbx>),
    Ua(Box<Ua>),
}

impl Node for Peer {
    fn handle_datagram(&mut self, now: Instant, datagram: Datagram) {
        match self {
            Peer::Pbx(p) => p.handle_datagram(now, datagram),
            Peer::Ua(u) => u.handle_datagram(now, datagram),
        }
    }
    fn poll_transmit(&mut self, now: Instant) -> Option<Outgoing> {
        match self {
            Peer::Pbx(p) => p.poll_transmit(now),
            Peer::Ua(u) => u.poll_transmit(now),
        }
    }
    fn poll_timeout(&mut self) -> Option<Instant> {
        match self {
            Peer::Pbx(p) => p.poll_timeout(),
            Peer::Ua(u) => u.poll_timeout(),
        }
    }
    fn handle_timeout(&mut self, now: Instant) {
        match self {
            Peer::Pbx(p) => p.handle_timeout(now),
            Peer::Ua(u) => u.handle_timeout(now),
        }
    }
}

/// Network of the PBX (index 0), Alice (1) and the callees (2, 3, ...).
pub struct World {
    pub net: Network<Peer>,
}

impl World {
    pub fn new(config: CallConfig, callees: Vec<Ua>) -> World {
        let clock = VirtualClock::start();
        let mut net = Network::new(clock);
        net.set_latency(Duration::from_millis(10));
        let addresses = callees.iter().map(|c| c.address).collect();
        let pbx = Pbx::new(config, addresses, clock.now());
        net.add_node(pbx.address, Peer::Pbx(Box::new(pbx)));
        let alice = Ua::new(ALICE, Answer::Never, 11);
        net.add_node(alice.address, Peer::Ua(Box::new(alice)));
        for callee in callees {
            net.add_node(callee.address, Peer::Ua(Box::new(callee)));
        }
        World { net }
    }

    pub fn pbx(&mut self) -> &mut Pbx {
        match self.net.node_mut(0) {
            Peer::Pbx(p) => p,
            Peer::Ua(_) => unreachable!(),
        }
    }

    pub fn ua(&mut self, index: usize) -> &mut Ua {
        match self.net.node_mut(index) {
            Peer::Ua(u) => u,
            Peer::Pbx(_) => unreachable!(),
        }
    }

    pub fn alice(&mut self) -> &mut Ua {
        self.ua(1)
    }

    pub fn bob(&mut self) -> &mut Ua {
        self.ua(2)
    }

    /// Adds a user agent the PBX does not fork new calls to (a transfer target); returns
    /// its index.
    pub fn add_ua(&mut self, ua: Ua) -> usize {
        self.net.add_node(ua.address, Peer::Ua(Box::new(ua)))
    }

    pub fn now(&self) -> Instant {
        self.net.now()
    }

    pub fn run(&mut self, duration: Duration) {
        self.net.run_for(duration).unwrap();
    }

    /// Alice calls and the network runs for `duration`.
    pub fn call(&mut self, duration: Duration) {
        let now = self.now();
        self.alice().call(now);
        self.run(duration);
    }
}

/// The statuses of the responses to our REFERs.
pub fn refer_statuses(ua: &Ua) -> Vec<u16> {
    ua.responses_to(Method::Refer)
        .iter()
        .map(|r| r.status().0)
        .collect()
}

/// A header's value as text (empty when absent).
pub fn header(request: &Request, name: &HeaderName) -> String {
    String::from_utf8_lossy(request.headers().get(name).unwrap_or_default()).into_owned()
}

/// The sipfrag status lines of the transfer NOTIFYs `ua` got, with their
/// Subscription-State.
pub fn notifies(ua: &Ua) -> Vec<(String, String)> {
    ua.received_of(Method::Notify)
        .iter()
        .map(|notify| {
            assert_eq!(header(notify, &HeaderName::Event), "refer");
            assert_eq!(
                header(notify, &HeaderName::ContentType),
                "message/sipfrag;version=2.0"
            );
            (
                body_text(notify).trim_end().to_owned(),
                header(notify, &HeaderName::SubscriptionState),
            )
        })
        .collect()
}

/// Whether digest credentials for an INVITE are right for user `acct` and `password`.
pub fn digest_valid(credentials: &Credentials<'_>, password: &str, request_uri: &str) -> bool {
    digest_valid_for("INVITE", credentials, password, request_uri)
}

/// Whether digest credentials for a `method` request are right for `acct` and `password`.
pub fn digest_valid_for(
    method: &str,
    credentials: &Credentials<'_>,
    password: &str,
    request_uri: &str,
) -> bool {
    let ha1 = Ha1::compute(
        Algorithm::Md5,
        &credentials.username,
        &credentials.realm,
        password,
    );
    let expected = compute_response(
        &ha1,
        &ResponseInput {
            algorithm: Algorithm::Md5,
            method,
            uri: &credentials.uri,
            nonce: &credentials.nonce,
            cnonce: credentials.cnonce.as_deref(),
            nc: credentials.nc.as_ref().map(|nc| nc.as_str()),
            qop: credentials.qop.as_deref(),
        },
    );
    credentials.username == "acct"
        && credentials.realm == "carrier.test"
        && credentials.uri == request_uri
        && expected.as_str() == credentials.response
}

pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

pub fn body_text(request: &Request) -> String {
    String::from_utf8_lossy(request.body()).into_owned()
}

pub fn response_body(response: &Response) -> String {
    String::from_utf8_lossy(response.body()).into_owned()
}

/// The caller of an answered call talks 10 s and hangs up: the callee gets the BYE, the call is
/// gone and its record is an answered call hung up by the caller, 10–12 billable seconds, with
/// the media the test phones sent (10 packets from the caller, 20 from the callee) and every
/// stage reported once. Returns the PBX for the test's own further checks.
pub fn caller_talks_ten_seconds_and_hangs_up(world: &mut World) -> &mut Pbx {
    world.run(secs(10));
    let now = world.now();
    world.alice().send_in_dialog(now, Method::Bye, None);
    world.run(secs(1));
    assert_eq!(world.bob().received_of(Method::Bye).len(), 1);
    let pbx = world.pbx();
    assert_eq!(pbx.calls.call_count(), 0);
    let record = &pbx.records[0];
    assert_eq!(record.disposition, pbx_call::Disposition::Answered);
    assert_eq!(record.hangup_side, pbx_call::HangupSide::Caller);
    assert!((10..=12).contains(&record.billable_secs), "{record:?}");
    assert_eq!(record.media_a.packets, 10);
    assert_eq!(record.media_b.packets, 20);
    assert_eq!(
        pbx.stages,
        [
            (Stage::Started, 1),
            (Stage::Ringing, 1),
            (Stage::Answered, 1),
            (Stage::Ended, 1)
        ]
    );
    pbx
}

/// The engine configuration of these tests: ring timeout `ring_timeout`, no session timers
/// (tests that need them set `session_expires`).
pub fn config_ringing_for(ring_timeout: Duration) -> CallConfig {
    let mut config = CallConfig::default();
    config.ring_timeout = ring_timeout;
    config.session_expires = None;
    config
}

/// A callee that sends a reliable 183 with SDP (RSeq `rseq`) and answers `answer_after` its
/// PRACK.
pub fn reliable_callee(address: &str, seed: u64, rseq: u32, answer_after: Option<Duration>) -> Ua {
    let mut ua = Ua::new(address, Answer::Never, seed);
    ua.reliably = Some(Reliably {
        with_sdp: true,
        regardless: false,
        rseq,
        answer_after_prack: answer_after,
    });
    ua
}
