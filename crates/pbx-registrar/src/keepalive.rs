//! Timers and NAT keep-alive: binding expiry, one probe per flow (OPTIONS over UDP, CRLF
//! over TCP/TLS), failure counting and removal of unreachable flows.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Instant;

use bytes::Bytes;
use pbx_domain::{Transport, UserId};
use pbx_sip::{HeaderName, Host, Method, NameAddr, Request, SipUri, Uri, Via};

use crate::event::RemovalReason;
use crate::registrar::Registrar;
use crate::table::{Entry, TimerSlot};
use crate::types::{Effect, FlowInfo, Now, Ping, PingId, PingKind};

/// What a timer does when it fires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Task {
    /// Expire the binding with this entry id.
    Expire { user: UserId, entry: u64 },
    /// Probe this flow.
    Keepalive { flow: FlowInfo },
}

/// The timer queue.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    queue: BTreeMap<TimerSlot, Task>,
    seq: u64,
}

impl Timers {
    pub(crate) fn insert(&mut self, at: Instant, task: Task) -> TimerSlot {
        self.seq += 1;
        let slot = (at, self.seq);
        self.queue.insert(slot, task);
        slot
    }

    pub(crate) fn remove(&mut self, slot: TimerSlot) {
        self.queue.remove(&slot);
    }

    pub(crate) fn next(&self) -> Option<Instant> {
        self.queue.keys().next().map(|(at, _)| *at)
    }

    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<Task> {
        let (&slot, _) = self.queue.iter().next()?;
        if slot.0 > now {
            return None;
        }
        self.queue.remove(&slot)
    }

    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }
}

/// Keep-alive state of one flow.
#[derive(Debug)]
pub(crate) struct FlowState {
    /// The bindings on the flow: (user, entry id). A set: one flow may carry thousands of
    /// bindings (an SBC or proxy in front, a large NAT), and every REGISTER joins or leaves
    /// its flow, so membership must not cost a scan.
    pub(crate) members: HashSet<(UserId, u64)>,
    pub(crate) timer: TimerSlot,
    pub(crate) outstanding: Option<PingId>,
    pub(crate) failures: u32,
}

/// The flows with bindings, and the pings awaiting a result.
#[derive(Debug, Default)]
pub(crate) struct Flows {
    pub(crate) states: HashMap<FlowInfo, FlowState>,
    pub(crate) pings: HashMap<PingId, FlowInfo>,
    pub(crate) next_ping: u64,
}

impl Registrar {
    /// The next deadline (binding expiry or keep-alive); call
    /// [`Registrar::handle_timeout`] when it passes.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// Runs every timer due at `now`: expired bindings are removed
    /// ([`Effect::DeleteBinding`] and an `expired` event) and due flows get a keep-alive
    /// ([`Effect::Ping`]). A probe still unanswered when the next one is due counts as a
    /// failure.
    pub fn handle_timeout(&mut self, now: Now) -> Vec<Effect> {
        let mut effects = Vec::new();
        while let Some(task) = self.timers.pop_due(now.instant) {
            match task {
                Task::Expire { user, entry } => {
                    let removed = self.take_entries(user, |e| e.id == entry);
                    for entry in removed {
                        self.removed_effects(entry, RemovalReason::Expired, &mut effects);
                    }
                }
                Task::Keepalive { flow } => self.keepalive_due(flow, now, &mut effects),
            }
        }
        effects
    }

    /// The result of a probe: `ok` for any SIP response to the OPTIONS or a CRLF pong,
    /// `false` for a transaction timeout, a send error or no pong. After
    /// `keepalive_failure_threshold` failures in a row every binding on the flow is removed
    /// (`unreachable` events). Results for unknown or superseded probes are ignored.
    pub fn handle_ping_result(&mut self, id: PingId, ok: bool, _now: Now) -> Vec<Effect> {
        let mut effects = Vec::new();
        let Some(flow) = self.flows.pings.remove(&id) else {
            return effects;
        };
        let threshold = self.config.keepalive_failure_threshold;
        let Some(state) = self.flows.states.get_mut(&flow) else {
            return effects;
        };
        if state.outstanding != Some(id) {
            return effects;
        }
        state.outstanding = None;
        if ok {
            state.failures = 0;
            return effects;
        }
        state.failures += 1;
        if state.failures >= threshold {
            self.drop_flow(flow, RemovalReason::Unreachable, &mut effects);
        }
        effects
    }

    /// The driver saw the flow's connection close (TCP/TLS): its RFC 5626 outbound bindings
    /// (`+sip.instance` with `reg-id`) are removed — the flow was the binding, and the device
    /// re-registers over a new one (§5.4). Plain RFC 3261 bindings on the flow stay: a
    /// request to them opens a new connection, and the keep-alive removes them if the
    /// device cannot be reached any more.
    pub fn handle_flow_closed(&mut self, flow: &FlowInfo, _now: Now) -> Vec<Effect> {
        let mut effects = Vec::new();
        let Some(state) = self.flows.states.get(flow) else {
            return effects;
        };
        let mut members: Vec<(UserId, u64)> = state.members.iter().copied().collect();
        members.sort_unstable();
        for (user, id) in members {
            let taken = self.take_entries(user, |e| {
                e.id == id && e.record.instance_id.is_some() && e.record.reg_id.is_some()
            });
            for entry in taken {
                self.removed_effects(entry, RemovalReason::FlowClosed, &mut effects);
            }
        }
        effects
    }

    /// Number of flows being kept alive.
    pub fn flow_count(&self) -> usize {
        self.flows.states.len()
    }

    fn interval(&self, flow: &FlowInfo) -> std::time::Duration {
        if flow.is_stream() {
            self.config.stream_keepalive
        } else {
            self.config.udp_keepalive
        }
    }

    /// Registers `entry` on its flow; traffic on the flow resets its failure count and
    /// postpones the next probe.
    pub(crate) fn flow_attach(&mut self, user: UserId, entry: u64, flow: FlowInfo, now: Instant) {
        let at = now + self.interval(&flow);
        match self.flows.states.get_mut(&flow) {
            Some(state) => {
                state.members.insert((user, entry));
                state.failures = 0;
                if let Some(ping) = state.outstanding.take() {
                    self.flows.pings.remove(&ping);
                }
                self.timers.remove(state.timer);
                state.timer = self.timers.insert(at, Task::Keepalive { flow });
            }
            None => {
                let timer = self.timers.insert(at, Task::Keepalive { flow });
                let state = FlowState {
                    members: HashSet::from([(user, entry)]),
                    timer,
                    outstanding: None,
                    failures: 0,
                };
                self.flows.states.insert(flow, state);
            }
        }
    }

    /// Spreads the next probe of every flow evenly over one interval from `now`, so a
    /// restart with thousands of restored flows does not send all probes at once.
    pub(crate) fn spread_keepalives(&mut self, now: Instant) {
        let count = u32::try_from(self.flows.states.len())
            .unwrap_or(u32::MAX)
            .max(1);
        let flows: Vec<FlowInfo> = self.flows.states.keys().copied().collect();
        for (index, flow) in flows.into_iter().enumerate() {
            let step = u32::try_from(index).unwrap_or(u32::MAX).saturating_add(1);
            let at = now + self.interval(&flow) * step / count;
            if let Some(state) = self.flows.states.get_mut(&flow) {
                self.timers.remove(state.timer);
                state.timer = self.timers.insert(at, Task::Keepalive { flow });
            }
        }
    }

    /// Removes `entry` from its flow; a flow without bindings is forgotten.
    pub(crate) fn flow_detach(&mut self, user: UserId, entry: u64, flow: &FlowInfo) {
        let Some(state) = self.flows.states.get_mut(flow) else {
            return;
        };
        state.members.remove(&(user, entry));
        if state.members.is_empty()
            && let Some(state) = self.flows.states.remove(flow)
        {
            self.timers.remove(state.timer);
            if let Some(ping) = state.outstanding {
                self.flows.pings.remove(&ping);
            }
        }
    }

    fn drop_flow(&mut self, flow: FlowInfo, reason: RemovalReason, effects: &mut Vec<Effect>) {
        let members = self
            .flows
            .states
            .get(&flow)
            .map(|state| {
                let mut members: Vec<_> = state.members.iter().copied().collect();
                members.sort_unstable();
                members
            })
            .unwrap_or_default();
        for (user, id) in members {
            for entry in self.take_entries(user, |e| e.id == id) {
                self.removed_effects(entry, reason, effects);
            }
        }
    }

    fn keepalive_due(&mut self, flow: FlowInfo, now: Now, effects: &mut Vec<Effect>) {
        let threshold = self.config.keepalive_failure_threshold;
        let at = now.instant + self.interval(&flow);
        let Some(state) = self.flows.states.get_mut(&flow) else {
            return;
        };
        if let Some(previous) = state.outstanding.take() {
            self.flows.pings.remove(&previous);
            state.failures += 1;
            if state.failures >= threshold {
                self.drop_flow(flow, RemovalReason::Unreachable, effects);
                return;
            }
        }
        self.flows.next_ping += 1;
        let id = PingId(self.flows.next_ping);
        state.outstanding = Some(id);
        state.timer = self.timers.insert(at, Task::Keepalive { flow });
        // The probe goes to one binding's Contact; the lowest key keeps the choice stable.
        let target = state.members.iter().min().copied();
        self.flows.pings.insert(id, flow);
        let kind = if flow.is_stream() {
            PingKind::Crlf
        } else {
            let entry = target.and_then(|(user, id)| self.entry(user, id)).cloned();
            match entry {
                Some(entry) => PingKind::Options(Box::new(self.options_for(&entry))),
                None => return,
            }
        };
        effects.push(Effect::Ping(Ping { id, flow, kind }));
    }

    fn entry(&self, user: UserId, id: u64) -> Option<&Entry> {
        self.aors.get(&user)?.iter().find(|entry| entry.id == id)
    }

    /// An OPTIONS to the binding's Contact, routed by its Path, sent over its flow.
    fn options_for(&mut self, entry: &Entry) -> Request {
        let branch = format!("{}{}", pbx_sip::BRANCH_MAGIC_COOKIE, self.ids.hex());
        let transport = match entry.flow.transport {
            Transport::Udp => pbx_sip::Transport::Udp,
            Transport::Tcp => pbx_sip::Transport::Tcp,
            Transport::Tls => pbx_sip::Transport::Tls,
            Transport::Ws => pbx_sip::Transport::Ws,
            Transport::Wss => pbx_sip::Transport::Wss,
            _ => pbx_sip::Transport::Udp,
        };
        let local = entry.flow.local;
        let via = Via::new(
            transport,
            Host::from(local.ip()),
            Some(local.port()),
            branch,
        )
        .with_rport();
        let mut from_uri = SipUri::new(Host::Domain(Bytes::from(self.realm.clone())));
        from_uri.user = Some(Bytes::from(self.config.keepalive_from_user.clone()));
        let mut from = NameAddr::new(Uri::Sip(from_uri));
        from.set_tag(self.ids.hex());
        let to = NameAddr::new(entry.contact.clone());
        let call_id = format!("{}@{}", self.ids.hex(), self.config.node_id);
        let mut builder = Request::builder(Method::Options, entry.contact.clone())
            .via(&via)
            .from(&from)
            .to(&to)
            .call_id(call_id)
            .cseq(1);
        for hop in &entry.record.path {
            builder = builder.header(HeaderName::Route, Bytes::from(hop.clone()));
        }
        builder.build()
    }
}
