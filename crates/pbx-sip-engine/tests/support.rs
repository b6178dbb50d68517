//! A user agent node for the in-memory network and message builders.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use pbx_sip::{Host, Message, Method, NameAddr, Request, StatusCode, Transport, Uri, Via};
use pbx_sip_engine::{
    AcceptedTransaction, Config, Endpoint, Event, FlowId, Incoming, Target, TransportInfo,
};
use pbx_test_support::VirtualClock;
use pbx_test_support::network::{Datagram, Node, Outgoing, Pair, Record};

pub const ALICE: &str = "192.0.2.1:5060";
pub const BOB: &str = "192.0.2.2:5060";

pub fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// What a node does with a new request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Keep it for the test to decide.
    Queue,
    /// Accept it.
    Accept,
}

/// An endpoint plus what it reported.
#[derive(Debug)]
pub struct Ua {
    pub endpoint: Endpoint,
    pub address: SocketAddr,
    pub transport: Transport,
    pub policy: Policy,
    pub incoming: VecDeque<Incoming>,
    pub accepted: Vec<(AcceptedTransaction, Request)>,
    pub events: Vec<(Instant, Event)>,
    /// A TU that answers every accepted request at once with this status (2xx to INVITE
    /// with a Contact).
    pub answer: Option<fn(&Request) -> StatusCode>,
    /// A TU that ACKs every 2xx to its INVITEs through a dialog.
    pub auto_ack: bool,
}

impl Ua {
    pub fn new(address: SocketAddr, config: Config, seed: u64) -> Self {
        Self {
            endpoint: Endpoint::new(config, seed),
            address,
            transport: Transport::Udp,
            policy: Policy::Accept,
            incoming: VecDeque::new(),
            accepted: Vec::new(),
            events: Vec::new(),
            answer: None,
            auto_ack: false,
        }
    }

    fn drain_events(&mut self, now: Instant) {
        while let Some(event) = self.endpoint.poll_event() {
            if self.auto_ack
                && let Event::Response {
                    transaction,
                    response,
                } = &event
                && response.status().is_success()
                && response.cseq().unwrap().method == Method::Invite
            {
                self.ack(now, *transaction, response);
            }
            self.events.push((now, event));
        }
    }

    /// The TU's ACK for a 2xx: through a dialog, to the dialog's next hop.
    fn ack(
        &mut self,
        now: Instant,
        transaction: pbx_sip_engine::TransactionId,
        response: &pbx_sip::Response,
    ) {
        let Some(invite) = self.endpoint.client_invite(transaction) else {
            return; // Timer M already ended it: a real TU would ACK from its dialog.
        };
        let dialog =
            pbx_sip_engine::Dialog::uac(self.endpoint.request(invite).unwrap(), response).unwrap();
        let via = self.via();
        let ack = dialog.ack(&via).unwrap();
        let sip = dialog.next_hop().as_sip().unwrap();
        let next_hop = SocketAddr::new(sip.host.ip().unwrap(), sip.port_or_default());
        let target = self.target(next_hop);
        self.endpoint.send_ack(now, invite, ack, target).unwrap();
    }

    /// Events other than `Terminated`, without times.
    pub fn reported(&self) -> Vec<&Event> {
        self.events
            .iter()
            .map(|(_, e)| e)
            .filter(|e| !matches!(e, Event::Terminated { .. }))
            .collect()
    }

    /// Status codes of the responses reported to the TU, in order.
    pub fn statuses(&self) -> Vec<u16> {
        self.events
            .iter()
            .filter_map(|(_, e)| match e {
                Event::Response { response, .. } => Some(response.status().0),
                _ => None,
            })
            .collect()
    }

    /// The last accepted transaction.
    pub fn last_accepted(&self) -> AcceptedTransaction {
        self.accepted.last().expect("a transaction was accepted").0
    }

    /// A request from this UA to `to` with a fresh branch, tag and Call-ID.
    pub fn request(&mut self, method: Method, to: SocketAddr) -> Request {
        let branch = self.endpoint.new_branch();
        let tag = self.endpoint.new_tag();
        let call_id = self.endpoint.new_call_id(Some("test.example"));
        let via = Via::new(
            self.transport.clone(),
            Host::from(self.address.ip()),
            Some(self.address.port()),
            branch,
        )
        .with_rport();
        let from =
            NameAddr::parse(format!("<sip:alice@{}>;tag={tag}", self.address).as_bytes()).unwrap();
        let to_addr = NameAddr::parse(format!("<sip:bob@{to}>").as_bytes()).unwrap();
        let uri: Uri = format!("sip:bob@{to}").parse().unwrap();
        let contact = NameAddr::parse(format!("<sip:alice@{}>", self.address).as_bytes()).unwrap();
        Request::builder(method, uri)
            .via(&via)
            .from(&from)
            .to(&to_addr)
            .call_id(call_id)
            .cseq(1)
            .contact(&contact)
            .build()
    }

    /// A Via for a new request from this UA (fresh branch).
    pub fn via(&mut self) -> Via {
        let branch = self.endpoint.new_branch();
        Via::new(
            self.transport.clone(),
            Host::from(self.address.ip()),
            Some(self.address.port()),
            branch,
        )
        .with_rport()
    }

    pub fn target(&self, to: SocketAddr) -> Target {
        if self.transport.is_reliable() {
            Target::stream(self.transport.clone(), to, None)
        } else {
            Target::udp(to)
        }
    }
}

impl Node for Ua {
    fn handle_datagram(&mut self, now: Instant, datagram: Datagram) {
        let info = TransportInfo {
            transport: self.transport.clone(),
            source: datagram.source,
            flow: self
                .transport
                .is_reliable()
                .then_some(FlowId(u64::from(datagram.source.port()))),
        };
        if let Some(incoming) = self.endpoint.handle_datagram(now, info, datagram.bytes) {
            match self.policy {
                Policy::Queue => self.incoming.push_back(incoming),
                Policy::Accept => {
                    let request = incoming.request().clone();
                    let accepted = self.endpoint.accept(now, incoming).unwrap();
                    if let Some(answer) = self.answer {
                        let status = answer(&request);
                        let mut response = self.endpoint.response(accepted, status).unwrap();
                        response.set_header(
                            pbx_sip::HeaderName::Contact,
                            format!("<sip:bob@{}>", self.address),
                        );
                        self.endpoint
                            .send_response(now, accepted, response)
                            .unwrap();
                    }
                    self.accepted.push((accepted, request));
                }
            }
        }
        self.drain_events(now);
    }

    fn poll_transmit(&mut self, now: Instant) -> Option<Outgoing> {
        self.drain_events(now);
        let transmit = self.endpoint.poll_transmit()?;
        Some(Outgoing {
            destination: transmit.destination,
            bytes: transmit.contents,
        })
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        self.endpoint.poll_timeout()
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.endpoint.handle_timeout(now);
        self.drain_events(now);
    }
}

/// Alice (a) and Bob (b) on UDP with default timers.
pub fn pair() -> Pair<Ua> {
    pair_with(Config::default(), Transport::Udp)
}

pub fn pair_with(config: Config, transport: Transport) -> Pair<Ua> {
    let mut alice = Ua::new(addr(ALICE), config.clone(), 1);
    let mut bob = Ua::new(addr(BOB), config, 2);
    alice.transport = transport.clone();
    bob.transport = transport;
    Pair::new(VirtualClock::start(), addr(ALICE), alice, addr(BOB), bob)
}

/// Parse a logged datagram.
pub fn message(record: &Record) -> Message {
    Message::parse_datagram(record.datagram.bytes.clone()).unwrap()
}

/// Milliseconds since the start of the clock at which `source` sent messages whose start
/// line begins with `prefix` (e.g. "INVITE ", "SIP/2.0 486").
pub fn send_times(pair: &Pair<Ua>, source: &str, prefix: &str) -> Vec<u128> {
    let source = addr(source);
    let clock = *pair.clock();
    pair.log()
        .iter()
        .filter(|r| r.datagram.source == source && r.datagram.bytes.starts_with(prefix.as_bytes()))
        .map(|r| clock.since_start(r.sent_at).as_millis())
        .collect()
}

/// Milliseconds since start of an event time.
pub fn ms(pair: &Pair<Ua>, at: Instant) -> u128 {
    pair.clock().since_start(at).as_millis()
}

pub const SECOND: Duration = Duration::from_secs(1);

/// Send a 200 with a Contact (as a UAS must for INVITE) on `server`.
pub fn respond_ok(
    ua: &mut Ua,
    now: Instant,
    server: pbx_sip_engine::ServerTransaction<pbx_sip_engine::Invite>,
) {
    let mut ok = ua.endpoint.response(server, StatusCode::OK).unwrap();
    ok.set_header(
        pbx_sip::HeaderName::Contact,
        format!("<sip:bob@{}>", ua.address),
    );
    ua.endpoint.send_response(now, server, ok).unwrap();
}

/// Alice, read-only (so `pair` can be borrowed again in the same expression).
pub fn alice(pair: &Pair<Ua>) -> &Ua {
    pair.node(0)
}

/// Bob, read-only.
pub fn bob(pair: &Pair<Ua>) -> &Ua {
    pair.node(1)
}
