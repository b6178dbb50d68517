//! The values that cross the registrar's boundary: time, flows, binding keys, lookup
//! targets, effects and keep-alive pings.

use std::net::SocketAddr;
use std::time::Instant;

use pbx_domain::{BindingRecord, Flow, PushParams, TenantId, Transport, UserId};
use pbx_sip::{Request, Uri};
use serde::Serialize;

use crate::event::RegistrationEvent;

/// The current time, read once by the caller: a monotonic instant for timers and the wall
/// clock (Unix milliseconds) for persisted expiry times. Pass the same pair everywhere in one
/// step so the two stay consistent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// Monotonic time, for deadlines.
    pub instant: Instant,
    /// Wall-clock time in Unix milliseconds, for `expires_at_ms` and events.
    pub unix_ms: i64,
}

impl Now {
    /// Pairs an instant with the wall-clock time read at the same moment.
    pub const fn new(instant: Instant, unix_ms: i64) -> Now {
        Now { instant, unix_ms }
    }

    /// Wall-clock seconds (for digest nonces).
    pub fn unix_secs(&self) -> u64 {
        u64::try_from(self.unix_ms.div_euclid(1000)).unwrap_or(0)
    }
}

/// The flow a message arrived on, as the transport driver saw it (RFC 5626 terms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct FlowInfo {
    /// Transport.
    pub transport: Transport,
    /// The peer's address as seen by us (the NAT's public side for a device behind NAT).
    pub source: SocketAddr,
    /// Our socket that received it (the listener for UDP, the connection's local end for
    /// TCP/TLS).
    pub local: SocketAddr,
    /// The connection (TCP/TLS/WS) id on this node; `None` for UDP and for flows restored
    /// after a restart (the connection died with the old process).
    pub connection: Option<u64>,
}

impl FlowInfo {
    /// Whether the transport is connection oriented (keep-alive by CRLF, not OPTIONS).
    pub fn is_stream(&self) -> bool {
        !matches!(self.transport, Transport::Udp)
    }

    /// The persisted form, owned by `node_id`.
    pub fn to_domain(&self, node_id: &str) -> Flow {
        Flow {
            transport: self.transport,
            source: self.source,
            local: self.local,
            connection_id: self.connection.map(|c| c.to_string()),
            node_id: node_id.to_owned(),
        }
    }

    /// The in-memory form of a persisted flow. The connection id is dropped: ids are only
    /// meaningful within the process that assigned them.
    pub fn from_restored(flow: &Flow) -> FlowInfo {
        FlowInfo {
            transport: flow.transport,
            source: flow.source,
            local: flow.local,
            connection: None,
        }
    }
}

/// Identifies one binding for the store: `(tenant, aor, key)` is unique
/// (see [`BindingRecord::key`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct BindingKey {
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// The AOR owner.
    pub user_id: UserId,
    /// The AOR (canonical URI text).
    pub aor: String,
    /// [`BindingRecord::key`].
    pub key: String,
}

impl BindingKey {
    /// The key of a record.
    pub fn of(record: &BindingRecord) -> BindingKey {
        BindingKey {
            tenant_id: record.tenant_id,
            user_id: record.user_id,
            aor: record.aor.clone(),
            key: record.key(),
        }
    }
}

/// Where to send a request for one binding (the location service's answer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The binding.
    pub key: BindingKey,
    /// The Contact URI as registered: the Request-URI of the forked request.
    pub request_uri: Uri,
    /// Send over this flow (to its source address, on its connection when it has one) —
    /// never to the host in the Contact, which is often a private address.
    pub flow: FlowInfo,
    /// Route set from the registration's Path (RFC 3327), top first, as `<uri>` values.
    pub route: Vec<String>,
    /// RFC 8599 push parameters, to wake a sleeping mobile app before forking.
    pub push: Option<PushParams>,
    /// `+sip.instance`, if the device sent one.
    pub instance_id: Option<String>,
    /// `reg-id`, if the device uses RFC 5626 outbound.
    pub reg_id: Option<u32>,
    /// `q` in thousandths.
    pub q_milli: Option<u16>,
    /// The Contact address is not the flow's source (the device is behind NAT).
    pub behind_nat: bool,
}

/// A keep-alive attempt's id; hand it back to [`crate::Registrar::handle_ping_result`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct PingId(pub u64);

/// How to probe a flow.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum PingKind {
    /// UDP: send this OPTIONS in a new non-INVITE client transaction over the flow. Any
    /// response (even 4xx/5xx) proves the NAT binding alive; a transaction timeout is a
    /// failure. The top Via's sent-by is the flow's local address; a driver bound to a
    /// wildcard address replaces it with its advertised address.
    Options(Box<Request>),
    /// TCP/TLS: send a double CRLF (RFC 5626 §4.4.1) on the connection; a single CRLF back
    /// (pong) within the driver's pong timeout is success.
    Crlf,
}

/// Keep-alive work for the driver.
#[derive(Debug, Clone)]
pub struct Ping {
    /// Id to report the result with.
    pub id: PingId,
    /// The flow to probe.
    pub flow: FlowInfo,
    /// What to send.
    pub kind: PingKind,
}

/// Something the caller must do: persist, delete, publish or ping. Effects are in order;
/// apply them in order (a delete of a key may precede a persist of the same key).
#[derive(Debug, Clone)]
#[non_exhaustive]
// Effects are built once and moved into the caller's queue; boxing the record would add an
// allocation per store write for no gain.
#[allow(clippy::large_enum_variant)]
pub enum Effect {
    /// Insert or change this binding in the store (upsert by `(tenant, aor, key)`).
    PersistBinding(BindingRecord),
    /// A stored binding was refreshed and nothing else changed
    /// ([`BindingRecord::is_refresh_of`]): the same upsert, but only the expiry (and the
    /// REGISTER's Call-ID and CSeq) moved on, so the store may write it back lazily. A later
    /// [`Effect::PersistBinding`] or [`Effect::DeleteBinding`] of the key supersedes it.
    RefreshBinding(BindingRecord),
    /// Delete this binding from the store.
    DeleteBinding(BindingKey),
    /// Publish this event on the bus.
    Event(RegistrationEvent),
    /// Send a keep-alive probe (only from [`crate::Registrar::handle_timeout`]).
    Ping(Ping),
}
