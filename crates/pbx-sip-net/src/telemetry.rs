//! Counters of the transport layer. Per-message and per-drop counts are relaxed atomics in
//! [`crate::TransportStats`] (the drops are counted where they happen); the rare events below
//! go to the `metrics` facade (a no-op until a recorder is installed). Names follow
//! `cloudpbx_sip_<name>_total`; labels are small closed sets.

use std::sync::atomic::Ordering;

use crate::flow::Transport;
use crate::transports::Stats;

/// A message (datagram or stream frame) was handed to the endpoint driver: a relaxed atomic
/// add ([`crate::TransportStats::messages_received`]), since this runs for every message and a
/// labelled `metrics` key is built (and allocated) on every call.
pub(crate) fn message_received(stats: &Stats, transport: Transport) {
    let index = match transport {
        Transport::Udp => 0,
        Transport::Tcp => 1,
        Transport::Tls => 2,
    };
    stats.received[index].fetch_add(1, Ordering::Relaxed);
}

/// A connection was refused by a limit; `limit` is `per_source` or `total`.
pub(crate) fn connection_refused(transport: Transport, limit: &'static str) {
    metrics::counter!(
        "cloudpbx_sip_connections_refused_total",
        "transport" => transport.via_token(),
        "limit" => limit
    )
    .increment(1);
}

/// A connection closed; `reason` names why (`idle`, `peer_closed`, `framing`, …).
pub(crate) fn connection_closed(transport: Transport, reason: &'static str) {
    metrics::counter!(
        "cloudpbx_sip_connections_closed_total",
        "transport" => transport.via_token(),
        "reason" => reason
    )
    .increment(1);
}

/// The engine panicked on a received message (a bug; the driver survived it).
pub(crate) fn engine_panic() {
    metrics::counter!("cloudpbx_sip_engine_panics_total").increment(1);
}
