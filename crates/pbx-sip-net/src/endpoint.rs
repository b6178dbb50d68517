//! The endpoint driver: one tokio task owning the pbx-sip-engine endpoint and the TU, fed by
//! the transports' inbound queue, a timer and a bounded command queue.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use crate::handle::{EndpointHandle, RunningEndpoint};
use pbx_sip::StatusCode;
use pbx_sip_engine::{Endpoint as Engine, Event, FlowId, TransactionId, Transmit, TransportInfo};
use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::Inbound;
use crate::error::SendError;
use crate::flow::{ConnectionId, Destination, Flow, Transport};
use crate::transports::{BoundTransports, TransportHandle};
use crate::tu::{Context, TransactionUser};

/// Sends that must wait (a connection to open, a full UDP socket buffer) run on their own
/// tasks; at most this many at once, beyond that the transaction gets a transport error.
const MAX_PENDING_SENDS: usize = 256;
/// Messages taken from the inbound queue in one go when more are waiting.
const INBOUND_BATCH: usize = 16;
/// Datagrams per `sendmmsg`.
const SEND_BATCH: usize = 32;

/// Load shedding needs at least this many messages still queued behind a late one.
const SHED_MIN_BACKLOG: usize = 32;

/// A deferred piece of TU work, run on the driver task with the TU and a [`Context`].
pub type Command<T> = Box<dyn FnOnce(&mut T, &mut Context<'_>) + Send>;

/// The command queue was closed: the endpoint has stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EndpointError {
    /// The driver task has ended.
    #[error("the endpoint has stopped")]
    Stopped,
    /// The command queue is full (only from `try_execute`).
    #[error("the endpoint command queue is full")]
    Busy,
}

/// The driver, before it is spawned.
pub struct Endpoint<T: TransactionUser> {
    engine: Engine,
    tu: T,
    transports: TransportHandle,
    inbound: mpsc::Receiver<Inbound>,
    closed: mpsc::Receiver<Flow>,
    commands: mpsc::Receiver<Command<T>>,
    handle: EndpointHandle<T>,
    grace: Duration,
    shed_after: Option<Duration>,
    shed_retry_after: u32,
}

impl<T: TransactionUser> std::fmt::Debug for Endpoint<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("transports", &self.transports)
            .finish_non_exhaustive()
    }
}

impl<T: TransactionUser> Endpoint<T> {
    /// A driver for `engine` on `transports`, handing requests and events to `tu`.
    #[must_use]
    pub fn new(transports: BoundTransports, engine: Engine, tu: T) -> Self {
        let (transports, inbound, closed) = transports.into_driver_parts();
        let limits = transports.limits();
        let (command_tx, commands) = mpsc::channel(limits.command_queue.max(1));
        let handle = EndpointHandle {
            panics: Arc::new(AtomicU64::new(0)),
            commands: command_tx,
            shutdown: CancellationToken::new(),
            transports: transports.clone(),
        };
        Self {
            engine,
            tu,
            transports,
            inbound,
            closed,
            commands,
            handle,
            grace: limits.shutdown_grace,
            shed_after: limits.shed_after,
            shed_retry_after: limits.shed_retry_after,
        }
    }

    /// A handle to send commands and to shut the endpoint down.
    #[must_use]
    pub fn handle(&self) -> EndpointHandle<T> {
        self.handle.clone()
    }

    /// Spawn the driver on the current tokio runtime.
    #[must_use]
    pub fn spawn(self) -> RunningEndpoint<T> {
        let handle = self.handle();
        let task = tokio::spawn(self.run());
        RunningEndpoint { handle, task }
    }

    /// Run the driver until shutdown; returns the TU.
    pub async fn run(mut self) -> T {
        let shutdown = self.handle.shutdown.clone();
        let send_slots = Arc::new(Semaphore::new(MAX_PENDING_SENDS));
        let mut drain_deadline: Option<Instant> = None;
        tracing::info!(listeners = ?self.transports.local_addrs(), "SIP endpoint running");
        loop {
            let timer = self.engine.poll_timeout().map(Instant::from_std);
            tokio::select! {
                () = shutdown.cancelled(), if drain_deadline.is_none() => {
                    self.transports.stop_accepting();
                    drain_deadline = Some(Instant::now() + self.grace);
                    tracing::info!(
                        transactions = self.engine.transaction_count(),
                        grace_ms = self.grace.as_millis(),
                        "SIP endpoint draining"
                    );
                }
                Some(inbound) = self.inbound.recv() => {
                    let draining = drain_deadline.is_some();
                    self.handle_inbound(inbound, draining);
                    // Under load more messages are waiting: take a bounded batch, so that one
                    // wake-up, one `select!` and one round of sends (one `sendmmsg`) serve
                    // several. The TU sees each message's events before the next message;
                    // only the sends wait for the end of the batch.
                    for _ in 1..INBOUND_BATCH {
                        let Ok(inbound) = self.inbound.try_recv() else {
                            break;
                        };
                        self.deliver_events(draining);
                        self.handle_inbound(inbound, draining);
                    }
                }
                Some(flow) = self.closed.recv() => {
                    let (tu, mut ctx) = self.parts(Some(flow), drain_deadline.is_some());
                    tu.on_flow_closed(&mut ctx, flow);
                }
                Some(command) = self.commands.recv() => {
                    let (tu, mut ctx) = self.parts(None, drain_deadline.is_some());
                    command(tu, &mut ctx);
                }
                () = sleep_until(timer) => {
                    self.engine.handle_timeout(now());
                }
                () = sleep_until(drain_deadline) => {
                    tracing::warn!(
                        transactions = self.engine.transaction_count(),
                        "SIP endpoint grace period over, stopping with transactions left"
                    );
                    break;
                }
            }
            self.pump(drain_deadline.is_some(), &send_slots);
            if drain_deadline.is_some() && self.engine.transaction_count() == 0 {
                break;
            }
        }
        self.transports.shutdown();
        if tokio::time::timeout(Duration::from_secs(2), self.transports.wait_closed())
            .await
            .is_err()
        {
            tracing::warn!("transport tasks did not stop within 2 s");
        }
        tracing::info!("SIP endpoint stopped");
        self.tu
    }

    /// The TU and a context for one callback (split borrows of `self`).
    fn parts(&mut self, flow: Option<Flow>, draining: bool) -> (&mut T, Context<'_>) {
        let ctx = Context {
            engine: &mut self.engine,
            now: now(),
            flow,
            transports: &self.transports,
            draining,
        };
        (&mut self.tu, ctx)
    }

    fn handle_inbound(&mut self, inbound: Inbound, draining: bool) {
        let Inbound {
            flow,
            data,
            received,
        } = inbound;
        let info = TransportInfo {
            transport: to_sip(flow.transport),
            source: flow.remote,
            flow: flow.connection.map(|id| FlowId(id.0)),
        };
        let now = now();
        // A panic while parsing or matching is a bug in the sans-IO crates; it must cost the
        // one message, not every call on the node. Parsing happens before the engine mutates
        // anything, which is where such bugs live.
        let engine = &mut self.engine;
        let kept = data.clone();
        let step = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            engine.handle_datagram(now, info, data)
        }));
        let incoming = match step {
            Ok(incoming) => incoming,
            Err(_) => {
                self.handle
                    .panics
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                crate::telemetry::engine_panic();
                let head = kept.get(..kept.len().min(200)).unwrap_or_default();
                tracing::error!(
                    flow = %flow,
                    head = %head.escape_ascii(),
                    "engine panicked on a received message; dropped"
                );
                return;
            }
        };
        let Some(incoming) = incoming else { return };
        if draining {
            self.engine
                .reject(now, incoming, StatusCode::SERVICE_UNAVAILABLE);
            return;
        }
        // Overload, not a hiccup: the request waited too long AND more work is queued
        // behind it (a scheduling stall with a near-empty queue sheds nothing).
        if let Some(limit) = self.shed_after
            && now.saturating_duration_since(received) > limit
            && self.inbound.len() >= SHED_MIN_BACKLOG
            && incoming.method() != &pbx_sip::Method::Ack
        {
            self.shed(now, incoming);
            return;
        }
        let (tu, mut ctx) = self.parts(Some(flow), draining);
        tu.on_incoming(&mut ctx, incoming);
    }

    /// Answer a request that waited too long in the queue: 503 with Retry-After, sent
    /// statelessly (a retransmission of it is shed the same way while the overload lasts).
    fn shed(&mut self, now: std::time::Instant, incoming: pbx_sip_engine::Incoming) {
        let shed = self
            .transports
            .shared
            .stats
            .shed
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        if shed.is_power_of_two() {
            tracing::warn!(shed, "overloaded: shedding queued requests with 503");
        }
        let mut response =
            pbx_sip::Response::for_request(incoming.request(), StatusCode::SERVICE_UNAVAILABLE)
                .with_to_tag(format!("shed{shed:x}"));
        response.headers_mut().push(
            pbx_sip::HeaderName::RetryAfter,
            bytes::Bytes::from(self.shed_retry_after.to_string()),
        );
        self.engine.respond_stateless(now, incoming, &response);
    }

    /// Hand every event to the TU and send every transmit, until the engine is quiet (TU
    /// callbacks may produce more of both).
    fn pump(&mut self, draining: bool, send_slots: &Arc<Semaphore>) {
        let mut transmits = Vec::new();
        loop {
            let mut progressed = self.deliver_events(draining);
            self.tu.before_send();
            while let Some(transmit) = self.engine.poll_transmit() {
                transmits.push(transmit);
            }
            if !transmits.is_empty() {
                progressed = true;
                self.send_all(&mut transmits, send_slots);
            }
            if !progressed {
                break;
            }
        }
    }

    /// Hand every pending event to the TU. Returns whether there was any.
    fn deliver_events(&mut self, draining: bool) -> bool {
        let mut delivered = false;
        while let Some(event) = self.engine.poll_event() {
            delivered = true;
            log_event(&event);
            let (tu, mut ctx) = self.parts(None, draining);
            tu.on_event(&mut ctx, event);
        }
        delivered
    }

    /// Send `transmits` in order (draining the vector): runs of plain UDP datagrams go out
    /// with one `sendmmsg` each, the rest (and any datagram the batch could not take) one by
    /// one through [`Self::dispatch`].
    fn send_all(&mut self, transmits: &mut Vec<Transmit>, send_slots: &Arc<Semaphore>) {
        let mut start = 0;
        // A batch that sent nothing (a full socket buffer, an error of its first datagram) is
        // not tried again this round: the rest go one by one, which waits or reports.
        let mut batching = true;
        while start < transmits.len() {
            let rest = transmits.get(start..).unwrap_or_default();
            let datagrams = rest
                .iter()
                .take(if batching { SEND_BATCH } else { 0 })
                .take_while(|t| t.flow.is_none() && t.transport == pbx_sip::Transport::Udp)
                .count();
            if datagrams > 1 {
                let run: Vec<(std::net::SocketAddr, &[u8])> = rest
                    .iter()
                    .take(datagrams)
                    .map(|t| (t.destination, t.contents.as_ref()))
                    .collect();
                let sent = self.transports.try_send_datagram_batch(&run);
                if sent > 0 {
                    start += sent;
                    continue;
                }
                batching = false;
            }
            // Not batched (a single datagram, a stream message, or a datagram the batch could
            // not send): alone, with the usual waiting and error handling.
            let Some(transmit) = transmits.get(start).cloned() else {
                break;
            };
            start += 1;
            if let Err(transaction) = self.dispatch(transmit, send_slots) {
                self.engine.handle_transport_error(now(), transaction);
            }
        }
        transmits.clear();
    }

    /// Send one transmit without waiting; hand it to a task when it must wait. `Err` names
    /// a transaction whose send failed at once.
    fn dispatch(
        &self,
        transmit: Transmit,
        send_slots: &Arc<Semaphore>,
    ) -> Result<(), TransactionId> {
        let Transmit {
            transport,
            destination,
            flow,
            contents,
            transaction,
            ..
        } = transmit;
        let fail = || transaction.map_or(Ok(()), Err);
        let Some(transport) = from_sip(&transport) else {
            tracing::debug!(?transport, %destination, "no such transport, message dropped");
            return fail();
        };
        let first_try = match flow {
            Some(id) => self
                .transports
                .send_on_connection(ConnectionId(id.0), contents.clone()),
            None => self.transports.try_send(
                Destination::Address {
                    transport,
                    addr: destination,
                },
                contents.clone(),
            ),
        };
        let error = match first_try {
            Ok(_) => return Ok(()),
            Err(error) => error,
        };
        let must_wait = match &error {
            // RFC 3261 §18.2.2: the connection is gone, open a new one to the source.
            SendError::ConnectionClosed(_) | SendError::NoConnection { .. } => true,
            SendError::Datagram { source, .. } => source.kind() == std::io::ErrorKind::WouldBlock,
            _ => false,
        };
        if !must_wait {
            tracing::debug!(%destination, %error, "send failed");
            return fail();
        }
        let Ok(permit) = Arc::clone(send_slots).try_acquire_owned() else {
            tracing::warn!(%destination, "too many pending sends, message dropped");
            return fail();
        };
        let destination = match error {
            SendError::ConnectionClosed(_) => reconnect_target(&contents, transport, destination),
            _ => destination,
        };
        let transports = self.transports.clone();
        let handle = self.handle.clone();
        tokio::spawn(async move {
            let destination = Destination::Address {
                transport,
                addr: destination,
            };
            let sent = transports.send(destination, contents).await;
            drop(permit);
            if let Err(error) = sent {
                tracing::debug!(?destination, %error, "deferred send failed");
                if let Some(transaction) = transaction {
                    let report: Command<T> = Box::new(move |_, ctx| {
                        let now = ctx.now();
                        ctx.engine().handle_transport_error(now, transaction);
                    });
                    let _ = handle.commands.try_send(report);
                }
            }
        });
        Ok(())
    }
}

/// The driver's clock (tokio's, so paused-time tests work), as the engine's `Instant`.
fn now() -> std::time::Instant {
    Instant::now().into_std()
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

fn log_event(event: &Event) {
    match event {
        Event::Malformed { source, error } => {
            tracing::debug!(%source, %error, "malformed SIP message");
        }
        Event::TimedOut { transaction, timer } => {
            tracing::debug!(
                transaction = transaction.as_u64(),
                ?timer,
                "client transaction timed out"
            );
        }
        Event::TransportError { transaction } => {
            tracing::debug!(
                transaction = transaction.as_u64(),
                "transaction transport error"
            );
        }
        _ => {}
    }
}

/// Where to reconnect when the connection a response should go back on is gone (RFC 3261
/// §18.2.2): the `received` address (else the sent-by address) of the top Via, at the
/// sent-by port (default 5060, 5061 for TLS). The source port of the lost connection was
/// the peer's ephemeral port and is only the last resort.
fn reconnect_target(
    contents: &bytes::Bytes,
    transport: Transport,
    source: std::net::SocketAddr,
) -> std::net::SocketAddr {
    let Ok(pbx_sip::Message::Response(response)) = pbx_sip::Message::parse(contents.clone()) else {
        return source;
    };
    let Ok(via) = response.top_via() else {
        return source;
    };
    let ip = via
        .received
        .as_ref()
        .and_then(pbx_sip::Host::ip)
        .or_else(|| via.host.ip());
    let default_port = if transport == Transport::Tls {
        5061
    } else {
        5060
    };
    ip.map_or(source, |ip| {
        std::net::SocketAddr::new(ip, via.port.unwrap_or(default_port))
    })
}

/// Our transport as pbx-sip's Via transport.
pub(crate) fn to_sip(transport: Transport) -> pbx_sip::Transport {
    match transport {
        Transport::Udp => pbx_sip::Transport::Udp,
        Transport::Tcp => pbx_sip::Transport::Tcp,
        Transport::Tls => pbx_sip::Transport::Tls,
    }
}

/// pbx-sip's transport as ours, if we serve it.
pub(crate) fn from_sip(transport: &pbx_sip::Transport) -> Option<Transport> {
    match transport {
        pbx_sip::Transport::Udp => Some(Transport::Udp),
        pbx_sip::Transport::Tcp => Some(Transport::Tcp),
        pbx_sip::Transport::Tls => Some(Transport::Tls),
        _ => None,
    }
}
