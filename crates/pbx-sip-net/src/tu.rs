//! The transaction user interface: synchronous callbacks on the driver task, plus a bounded
//! command queue for work that finishes later.

use std::time::Instant;

use pbx_sip_engine::{Endpoint as Engine, Event, Incoming};

use crate::flow::Flow;
use crate::transports::TransportHandle;

/// The layer above the transactions (registrar, call engine, a test UA).
///
/// Callbacks run on the endpoint driver task, synchronously, between two engine inputs: they
/// must not block. Decide at once when the answer is known (OPTIONS, a ban, a stateless
/// challenge); otherwise accept the transaction, start the slow work on your own task, and
/// come back with [`crate::EndpointHandle::execute`] to respond.
pub trait TransactionUser: Send + 'static {
    /// A new request that matched no transaction. Accept it (`ctx.engine().accept`), reject
    /// it, respond statelessly, or drop it. `ctx.flow()` is the flow it arrived on.
    fn on_incoming(&mut self, ctx: &mut Context<'_>, incoming: Incoming);

    /// An engine event (responses, timeouts, ACKs, CANCELs, malformed input).
    fn on_event(&mut self, ctx: &mut Context<'_>, event: Event);

    /// A TCP/TLS connection closed (peer closed, idle, error, ban; not at shutdown).
    /// `ctx.flow()` and `flow` are the flow it carried. A registrar drops the bindings that
    /// were reachable only over it (RFC 5626 §5.4). The default does nothing.
    fn on_flow_closed(&mut self, ctx: &mut Context<'_>, flow: Flow) {
        let _ = (ctx, flow);
    }

    /// Called by the driver after the callbacks of one step (a message, an event burst, a
    /// command, a timer) and before the messages they produced are sent: the place to hand
    /// other threads what those messages announce (a media relay's new sessions, before the
    /// SDP naming their ports leaves). The default does nothing.
    fn before_send(&mut self) {}
}

/// What a callback or command may use: the engine, the clock reading of this step, the flow
/// of the message being handled, and the transports.
#[derive(Debug)]
pub struct Context<'a> {
    pub(crate) engine: &'a mut Engine,
    pub(crate) now: Instant,
    pub(crate) flow: Option<Flow>,
    pub(crate) transports: &'a TransportHandle,
    pub(crate) draining: bool,
}

impl Context<'_> {
    /// The transaction engine (accept, respond, send requests, …).
    pub fn engine(&mut self) -> &mut Engine {
        self.engine
    }

    /// The time of this step, to pass as `now` to engine commands.
    #[must_use]
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The flow of the message being handled (`None` in timer events and commands). A
    /// registrar stores it to reach the device through its NAT binding or connection.
    #[must_use]
    pub fn flow(&self) -> Option<Flow> {
        self.flow
    }

    /// The transports (raw sends, connection counts).
    #[must_use]
    pub fn transports(&self) -> &TransportHandle {
        self.transports
    }

    /// Whether the endpoint is shutting down (new requests are answered 503 by the driver).
    #[must_use]
    pub fn is_draining(&self) -> bool {
        self.draining
    }
}
