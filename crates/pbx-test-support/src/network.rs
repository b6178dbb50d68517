//! An in-memory datagram network that steps sans-IO endpoints under a [`VirtualClock`].
//!
//! Each endpoint implements [`Node`] (the four calls every sans-IO engine offers: take a
//! datagram, give transmits, report and handle the next deadline). A [`Network`] owns the
//! nodes and the clock; [`Network::step`] moves datagrams between nodes and fires due timers,
//! and [`Network::run_for`] / [`Network::run_until_idle`] jump the clock from one event to the
//! next, so a test of a 32-second timer takes microseconds. Rules can drop, duplicate or
//! delay datagrams that match a predicate, and every datagram sent is logged with its fate so
//! tests can assert on retransmission times.
//!
//! [`Pair`] is a network of exactly two nodes (`a` and `b`), after quinn-proto's test `Pair`.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::net::SocketAddr;
use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::clock::VirtualClock;

/// A datagram in flight between two nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    /// Address of the sending node.
    pub source: SocketAddr,
    /// Address the sender addressed it to.
    pub destination: SocketAddr,
    /// The payload.
    pub bytes: Bytes,
}

/// What a node wants to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// Where to.
    pub destination: SocketAddr,
    /// The payload.
    pub bytes: Bytes,
}

/// A sans-IO endpoint the network can drive.
pub trait Node {
    /// A datagram arrived for this node.
    fn handle_datagram(&mut self, now: Instant, datagram: Datagram);
    /// The next datagram this node wants to send, if any.
    fn poll_transmit(&mut self, now: Instant) -> Option<Outgoing>;
    /// The node's next deadline, if any.
    fn poll_timeout(&mut self) -> Option<Instant>;
    /// The clock reached (or passed) the node's deadline.
    fn handle_timeout(&mut self, now: Instant);
}

/// What the network did with a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Scheduled for delivery `copies` times after `delay`.
    Delivered {
        /// Number of copies delivered (2 when duplicated).
        copies: usize,
        /// One-way delay applied.
        delay: Duration,
    },
    /// Dropped by a rule.
    Dropped,
    /// No node has the destination address.
    NoRoute,
}

/// One line of the network log: a datagram as it was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// When the sender handed it to the network.
    pub sent_at: Instant,
    /// The datagram.
    pub datagram: Datagram,
    /// What happened to it.
    pub fate: Fate,
}

impl Record {
    /// The payload as text (lossy), handy for SIP assertions.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.datagram.bytes).into_owned()
    }
}

/// What a rule does to the datagrams it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Lose the datagram.
    Drop,
    /// Deliver it twice.
    Duplicate,
    /// Deliver it after this extra delay.
    Delay(Duration),
}

/// A fault-injection rule: applies `action` to datagrams matching the filter, at most
/// `remaining` times (for ever when `None`).
pub struct Rule {
    filter: Box<dyn FnMut(&Datagram) -> bool>,
    action: Action,
    remaining: Option<usize>,
}

impl fmt::Debug for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rule")
            .field("action", &self.action)
            .field("remaining", &self.remaining)
            .finish_non_exhaustive()
    }
}

/// The network ran more steps than its limit: a node keeps reporting a deadline it does not
/// handle, or two nodes ping-pong for ever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepLimitReached {
    /// The limit that was hit.
    pub steps: usize,
}

impl fmt::Display for StepLimitReached {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "network did not settle within {} steps", self.steps)
    }
}

impl std::error::Error for StepLimitReached {}

#[derive(Debug)]
struct InFlight {
    at: Instant,
    sequence: u64,
    datagram: Datagram,
}

impl PartialEq for InFlight {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.sequence) == (other.at, other.sequence)
    }
}

impl Eq for InFlight {}

impl PartialOrd for InFlight {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for InFlight {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.sequence).cmp(&(other.at, other.sequence))
    }
}

/// Several nodes joined by a lossless (unless told otherwise) datagram network.
#[derive(Debug)]
pub struct Network<N> {
    clock: VirtualClock,
    nodes: Vec<(SocketAddr, N)>,
    in_flight: BinaryHeap<Reverse<InFlight>>,
    sequence: u64,
    latency: Duration,
    rules: Vec<Rule>,
    log: Vec<Record>,
    step_limit: usize,
}

impl<N: Node> Network<N> {
    /// An empty network on `clock`, with zero latency.
    pub fn new(clock: VirtualClock) -> Self {
        Self {
            clock,
            nodes: Vec::new(),
            in_flight: BinaryHeap::new(),
            sequence: 0,
            latency: Duration::ZERO,
            rules: Vec::new(),
            log: Vec::new(),
            step_limit: 100_000,
        }
    }

    /// Add a node reachable at `address`; returns its index.
    pub fn add_node(&mut self, address: SocketAddr, node: N) -> usize {
        self.nodes.push((address, node));
        self.nodes.len() - 1
    }

    /// Set the one-way delay applied to every datagram.
    pub fn set_latency(&mut self, latency: Duration) {
        self.latency = latency;
    }

    /// Set the number of steps after which the run methods give up.
    pub fn set_step_limit(&mut self, steps: usize) {
        self.step_limit = steps;
    }

    /// The current virtual time.
    pub fn now(&self) -> Instant {
        self.clock.now()
    }

    /// The clock.
    pub fn clock(&self) -> &VirtualClock {
        &self.clock
    }

    /// Move the clock forward without running anything (the next step catches up).
    pub fn advance(&mut self, by: Duration) -> Instant {
        self.clock.advance(by)
    }

    /// Node `index`. Panics on a bad index (test code).
    pub fn node(&self, index: usize) -> &N {
        &self.nodes[index].1
    }

    /// Node `index`, mutably. Panics on a bad index (test code).
    pub fn node_mut(&mut self, index: usize) -> &mut N {
        &mut self.nodes[index].1
    }

    /// The address of node `index`. Panics on a bad index (test code).
    pub fn address(&self, index: usize) -> SocketAddr {
        self.nodes[index].0
    }

    /// Every datagram sent so far, in order.
    pub fn log(&self) -> &[Record] {
        &self.log
    }

    /// Forget the log (keeps rules and datagrams in flight).
    pub fn clear_log(&mut self) {
        self.log.clear();
    }

    /// Datagrams sent from node `index`, in order.
    pub fn sent_by(&self, index: usize) -> impl Iterator<Item = &Record> {
        let address = self.address(index);
        self.log
            .iter()
            .filter(move |record| record.datagram.source == address)
    }

    /// Add a rule applying `action` to the next `count` matching datagrams (all when `None`).
    pub fn add_rule(
        &mut self,
        action: Action,
        count: Option<usize>,
        filter: impl FnMut(&Datagram) -> bool + 'static,
    ) {
        self.rules.push(Rule {
            filter: Box::new(filter),
            action,
            remaining: count,
        });
    }

    /// Drop the next `count` datagrams (all when `None`) matching `filter`.
    pub fn drop_matching(
        &mut self,
        count: Option<usize>,
        filter: impl FnMut(&Datagram) -> bool + 'static,
    ) {
        self.add_rule(Action::Drop, count, filter);
    }

    /// Drop every datagram whose payload contains `needle` (e.g. a SIP start line prefix).
    pub fn drop_containing(&mut self, count: Option<usize>, needle: &str) {
        let needle = needle.as_bytes().to_vec();
        self.drop_matching(count, move |datagram| contains(&datagram.bytes, &needle));
    }

    /// Remove every rule.
    pub fn clear_rules(&mut self) {
        self.rules.clear();
    }

    /// Drop every datagram in flight.
    pub fn drop_in_flight(&mut self) {
        self.in_flight.clear();
    }

    /// The earliest of the next delivery and every node's deadline.
    pub fn next_event(&mut self) -> Option<Instant> {
        let delivery = self.in_flight.peek().map(|Reverse(item)| item.at);
        let timeouts = self.nodes.iter_mut().filter_map(|(_, n)| n.poll_timeout());
        delivery.into_iter().chain(timeouts).min()
    }

    /// Do everything due at the current time once: collect transmits, deliver due datagrams,
    /// fire due timers. Returns whether anything happened.
    pub fn step(&mut self) -> bool {
        let now = self.clock.now();
        let mut progressed = self.collect(now);
        while let Some(Reverse(item)) = self.in_flight.peek() {
            if item.at > now {
                break;
            }
            let Some(Reverse(item)) = self.in_flight.pop() else {
                break;
            };
            let destination = item.datagram.destination;
            if let Some((_, node)) = self.nodes.iter_mut().find(|(a, _)| *a == destination) {
                node.handle_datagram(now, item.datagram);
            }
            progressed = true;
        }
        for (_, node) in &mut self.nodes {
            if node.poll_timeout().is_some_and(|deadline| deadline <= now) {
                node.handle_timeout(now);
                progressed = true;
            }
        }
        progressed |= self.collect(now);
        progressed
    }

    /// Run, jumping the clock from event to event, until nothing is left to do before
    /// `deadline`; then leave the clock at `deadline`.
    pub fn run_until(&mut self, deadline: Instant) -> Result<usize, StepLimitReached> {
        let mut steps = 0;
        loop {
            while self.step() {
                steps += 1;
                if steps >= self.step_limit {
                    return Err(StepLimitReached { steps });
                }
            }
            match self.next_event() {
                Some(next) if next <= deadline => {
                    self.clock.jump_to(next);
                }
                _ => break,
            }
            steps += 1;
            if steps >= self.step_limit {
                return Err(StepLimitReached { steps });
            }
        }
        self.clock.jump_to(deadline);
        Ok(steps)
    }

    /// Run for `duration` of virtual time (see [`Network::run_until`]).
    pub fn run_for(&mut self, duration: Duration) -> Result<usize, StepLimitReached> {
        let deadline = self.clock.now() + duration;
        self.run_until(deadline)
    }

    /// Run until no datagram is in flight and no node has a deadline.
    pub fn run_until_idle(&mut self) -> Result<usize, StepLimitReached> {
        let mut steps = 0;
        loop {
            while self.step() {
                steps += 1;
                if steps >= self.step_limit {
                    return Err(StepLimitReached { steps });
                }
            }
            let Some(next) = self.next_event() else {
                return Ok(steps);
            };
            self.clock.jump_to(next);
            steps += 1;
            if steps >= self.step_limit {
                return Err(StepLimitReached { steps });
            }
        }
    }

    fn collect(&mut self, now: Instant) -> bool {
        let mut any = false;
        for index in 0..self.nodes.len() {
            let source = self.nodes[index].0;
            while let Some(outgoing) = self.nodes[index].1.poll_transmit(now) {
                any = true;
                let datagram = Datagram {
                    source,
                    destination: outgoing.destination,
                    bytes: outgoing.bytes,
                };
                self.send(now, datagram);
            }
        }
        any
    }

    fn send(&mut self, now: Instant, datagram: Datagram) {
        let mut copies = 1;
        let mut delay = self.latency;
        let mut dropped = false;
        for rule in &mut self.rules {
            if rule.remaining == Some(0) || !(rule.filter)(&datagram) {
                continue;
            }
            if let Some(remaining) = rule.remaining.as_mut() {
                *remaining -= 1;
            }
            match rule.action {
                Action::Drop => dropped = true,
                Action::Duplicate => copies = 2,
                Action::Delay(extra) => delay += extra,
            }
        }
        self.rules.retain(|rule| rule.remaining != Some(0));
        let routable = self.nodes.iter().any(|(a, _)| *a == datagram.destination);
        let fate = if dropped {
            Fate::Dropped
        } else if !routable {
            Fate::NoRoute
        } else {
            for _ in 0..copies {
                self.sequence += 1;
                self.in_flight.push(Reverse(InFlight {
                    at: now + delay,
                    sequence: self.sequence,
                    datagram: datagram.clone(),
                }));
            }
            Fate::Delivered { copies, delay }
        };
        self.log.push(Record {
            sent_at: now,
            datagram,
            fate,
        });
    }
}

/// Two nodes, `a` (index 0) and `b` (index 1), on one [`Network`].
#[derive(Debug)]
pub struct Pair<N> {
    network: Network<N>,
}

impl<N: Node> Pair<N> {
    /// Join `a` at `a_address` and `b` at `b_address`.
    pub fn new(
        clock: VirtualClock,
        a_address: SocketAddr,
        a: N,
        b_address: SocketAddr,
        b: N,
    ) -> Self {
        let mut network = Network::new(clock);
        network.add_node(a_address, a);
        network.add_node(b_address, b);
        Self { network }
    }

    /// Node `a`.
    pub fn a(&mut self) -> &mut N {
        self.network.node_mut(0)
    }

    /// Node `b`.
    pub fn b(&mut self) -> &mut N {
        self.network.node_mut(1)
    }

    /// Address of node `a`.
    pub fn a_address(&self) -> SocketAddr {
        self.network.address(0)
    }

    /// Address of node `b`.
    pub fn b_address(&self) -> SocketAddr {
        self.network.address(1)
    }
}

impl<N> Deref for Pair<N> {
    type Target = Network<N>;

    fn deref(&self) -> &Network<N> {
        &self.network
    }
}

impl<N> DerefMut for Pair<N> {
    fn deref_mut(&mut self) -> &mut Network<N> {
        &mut self.network
    }
}

/// Whether `haystack` contains `needle` (empty needle: yes).
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty()
        || haystack
            .windows(needle.len())
            .any(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sends "ping" at start; answers every datagram with "pong" after `reply_after`.
    #[derive(Debug, Default)]
    struct Echo {
        peer: Option<SocketAddr>,
        outbox: Vec<Outgoing>,
        pending_replies: Vec<(Instant, SocketAddr)>,
        received: Vec<(Instant, Bytes)>,
        reply_after: Duration,
    }

    impl Node for Echo {
        fn handle_datagram(&mut self, now: Instant, datagram: Datagram) {
            self.received.push((now, datagram.bytes.clone()));
            if &datagram.bytes[..] == b"ping" {
                self.pending_replies
                    .push((now + self.reply_after, datagram.source));
            }
        }
        fn poll_transmit(&mut self, _now: Instant) -> Option<Outgoing> {
            if let Some(peer) = self.peer.take() {
                return Some(Outgoing {
                    destination: peer,
                    bytes: Bytes::from_static(b"ping"),
                });
            }
            self.outbox.pop()
        }
        fn poll_timeout(&mut self) -> Option<Instant> {
            self.pending_replies.iter().map(|(at, _)| *at).min()
        }
        fn handle_timeout(&mut self, now: Instant) {
            let (due, later) = self
                .pending_replies
                .iter()
                .partition::<Vec<_>, _>(|(at, _)| *at <= now);
            self.pending_replies = later;
            for (_, to) in due {
                self.outbox.push(Outgoing {
                    destination: to,
                    bytes: Bytes::from_static(b"pong"),
                });
            }
        }
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn pair(reply_after: Duration) -> Pair<Echo> {
        let a = Echo {
            peer: Some(addr(2)),
            ..Echo::default()
        };
        let b = Echo {
            reply_after,
            ..Echo::default()
        };
        Pair::new(VirtualClock::start(), addr(1), a, addr(2), b)
    }

    #[test]
    fn timers_run_in_virtual_time() {
        let mut pair = pair(Duration::from_secs(32));
        let start = pair.now();
        pair.run_until_idle().unwrap();
        let (at, bytes) = pair.a().received[0].clone();
        assert_eq!(&bytes[..], b"pong");
        assert_eq!(at - start, Duration::from_secs(32));
        assert_eq!(pair.log().len(), 2);
    }

    #[test]
    fn latency_and_duplication() {
        let mut pair = pair(Duration::ZERO);
        pair.set_latency(Duration::from_millis(10));
        pair.add_rule(Action::Duplicate, Some(1), |d| &d.bytes[..] == b"ping");
        let start = pair.now();
        pair.run_until_idle().unwrap();
        assert_eq!(pair.b().received.len(), 2);
        assert_eq!(pair.b().received[0].0 - start, Duration::from_millis(10));
        // Two pings, so two pongs; each arrives 10 ms after it was sent.
        assert_eq!(pair.a().received.len(), 2);
        assert_eq!(pair.a().received[0].0 - start, Duration::from_millis(20));
    }

    #[test]
    fn drop_rule_counts_down() {
        let mut pair = pair(Duration::ZERO);
        pair.drop_containing(Some(1), "ping");
        pair.run_until_idle().unwrap();
        assert!(pair.b().received.is_empty());
        assert_eq!(pair.log()[0].fate, Fate::Dropped);
    }

    #[test]
    fn run_for_stops_at_deadline() {
        let mut pair = pair(Duration::from_secs(10));
        let start = pair.now();
        pair.run_for(Duration::from_secs(5)).unwrap();
        assert!(pair.a().received.is_empty());
        assert_eq!(pair.now() - start, Duration::from_secs(5));
        pair.run_for(Duration::from_secs(5)).unwrap();
        assert_eq!(pair.a().received.len(), 1);
    }
}
