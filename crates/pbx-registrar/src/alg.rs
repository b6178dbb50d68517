//! NAT and SIP ALG detection.
//!
//! A device behind a plain NAT writes its private address in Via and Contact; the packet
//! arrives from the NAT's public address. That is normal ([`contact_behind_nat`]) and handled
//! by sending to the flow. A SIP ALG in the customer's router rewrites the SIP text as well,
//! usually badly: it replaces the private IP by the public one but keeps the device's own
//! port (the NAT mapped another), rewrites only some headers, or adds Via parameters of its
//! own. Such a router breaks calls in odd ways (one-way audio, lost re-INVITEs), so the
//! registrar flags the binding and support can tell the customer to switch the ALG off.
//!
//! [`detect_alg`] looks for these patterns in the REGISTER as the engine delivered it: the
//! engine's own `received`/`rport` stamp (RFC 3261 §18.2.1, RFC 3581) always names the
//! packet's source, so it is never mistaken for a middlebox's. A `Content-Length` that
//! disagrees with the body (an ALG that grew the SDP) cannot be seen here: the message
//! parser refuses or truncates such a datagram first, and the transport counts it.

use std::net::{IpAddr, SocketAddr};

use pbx_domain::Transport;
use pbx_domain::whitelist::canonical_ip;
use pbx_sip::{Contact, Host, Request, Via};
use serde::Serialize;

use crate::types::FlowInfo;

/// Which ALG pattern was seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AlgReason {
    /// The top Via carries a `received` the device cannot have written and we did not add
    /// (another address than the packet's source, or a stamp the engine would not make).
    ForeignReceived,
    /// One of Via/Contact was rewritten to the public source address while the other
    /// still holds a private address.
    PartialRewrite,
    /// The top Via's sent-by is the public source address but with another port, and the
    /// device did not ask for `rport`: the address was rewritten, the NAT's port mapping
    /// was not (UDP).
    ViaPortRewritten,
    /// A Contact holds the public source address but another port than the packet came
    /// from (UDP): rewritten address, unmapped port.
    ContactPortRewritten,
}

impl AlgReason {
    /// Stable text for the binding's `sip_alg_reason` and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            AlgReason::ForeignReceived => "via_received_not_from_us",
            AlgReason::PartialRewrite => "partial_rewrite_via_contact_disagree",
            AlgReason::ViaPortRewritten => "via_public_ip_with_unmapped_port",
            AlgReason::ContactPortRewritten => "contact_public_ip_with_unmapped_port",
        }
    }
}

/// An ALG suspicion for one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AlgSuspicion {
    /// The pattern.
    pub reason: AlgReason,
}

/// Looks for SIP ALG rewriting in `request`, which arrived on `flow`. `None` for clean
/// messages, including the normal NAT case (private Via/Contact behind a public source).
pub fn detect_alg(request: &Request, flow: &FlowInfo) -> Option<AlgSuspicion> {
    let source = SocketAddr::new(canonical_ip(flow.source.ip()), flow.source.port());
    let via = request.top_via().ok()?;
    let contacts: Vec<(IpAddr, u16)> = request
        .contacts()
        .unwrap_or_default()
        .iter()
        .filter_map(|contact| match contact {
            // A Contact being removed describes the past, not this packet's path.
            Contact::Address(address) if address.expires == Some(0) => None,
            Contact::Address(address) => address.name_addr.uri.as_sip().and_then(|uri| {
                uri.host
                    .ip()
                    .map(|ip| (canonical_ip(ip), uri.port_or_default()))
            }),
            Contact::Wildcard => None,
        })
        .collect();
    let via_ip = via.host.ip().map(canonical_ip);
    let reason = if foreign_received(&via, via_ip, source) {
        AlgReason::ForeignReceived
    } else if partial_rewrite(via_ip, &contacts, source.ip()) {
        AlgReason::PartialRewrite
    } else if flow.transport == Transport::Udp
        && via_ip == Some(source.ip())
        && via.port.unwrap_or(5060) != source.port()
        && via.rport.is_none()
    {
        AlgReason::ViaPortRewritten
    } else if flow.transport == Transport::Udp
        && contacts
            .iter()
            .any(|&(ip, port)| ip == source.ip() && port != source.port())
    {
        AlgReason::ContactPortRewritten
    } else {
        return None;
    };
    Some(AlgSuspicion { reason })
}

/// Whether a Contact URI's host is an IP address other than the flow's source: the device
/// is behind NAT (normal; requests go to the flow). A host name gives `false`.
pub fn contact_behind_nat(contact_host: &Host, flow: &FlowInfo) -> bool {
    contact_host
        .ip()
        .is_some_and(|ip| canonical_ip(ip) != canonical_ip(flow.source.ip()))
}

/// Whether `ip` is in a private, shared (CGNAT), loopback or link-local range.
pub fn is_private(ip: IpAddr) -> bool {
    match canonical_ip(ip) {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || (a == 100 && (64..128).contains(&b))
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            v6.is_loopback() || (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80
        }
    }
}

fn foreign_received(via: &Via, via_ip: Option<IpAddr>, source: SocketAddr) -> bool {
    let Some(received) = via.received.as_ref() else {
        return false;
    };
    match received.ip().map(canonical_ip) {
        Some(ip) if ip == source.ip() => {
            // The engine stamps `received` only when the sent-by differs from the source or
            // rport was asked for; otherwise the parameter came with the packet.
            via_ip == Some(source.ip()) && via.rport.is_none()
        }
        _ => true,
    }
}

fn partial_rewrite(via_ip: Option<IpAddr>, contacts: &[(IpAddr, u16)], source: IpAddr) -> bool {
    if is_private(source) {
        return false;
    }
    let Some(via_ip) = via_ip else {
        return false;
    };
    let contact_public = contacts.iter().any(|&(ip, _)| ip == source);
    let contact_private = contacts.iter().any(|&(ip, _)| is_private(ip));
    (contact_public && is_private(via_ip)) || (via_ip == source && contact_private)
}
