//! Response routing: the server transport's Via processing (RFC 3261 §18.2.1, RFC 3581) and
//! the choice of where a response goes (§18.2.2).

use std::net::SocketAddr;

use pbx_sip::{Host, Params, ParseError, Request, Via};

use crate::transport::{Target, TransportInfo};

/// Default SIP port when a Via carries none (5061 for TLS is only relevant to connections,
/// which reuse the flow).
const DEFAULT_PORT: u16 = 5060;

/// Adds `received` (and fills `rport`) in the top Via of a request that arrived from
/// `source`: `received` when the sent-by host is a name or another address, or when rport
/// was asked for (RFC 3581 §4); `rport` gets the source port when present without a value.
/// Returns the (possibly updated) top Via.
pub(crate) fn stamp_top_via(request: &mut Request, source: SocketAddr) -> Result<Via, ParseError> {
    let mut via = request.top_via()?;
    let rport_requested = via.rport == Some(None);
    let host_differs = via.host.ip() != Some(source.ip());
    if !host_differs && !rport_requested {
        return Ok(via);
    }
    // One new parameter list, built once: the old parameters without `received` (and
    // without the bare `rport` being filled in), then ours. Every REGISTER and INVITE from
    // behind NAT (and every SIPp request: they all carry `;rport`) passes here.
    let old = via.params.as_bytes();
    let mut raw = Vec::with_capacity(old.len() + 48);
    for (name, value) in via.params.iter() {
        if name.eq_ignore_ascii_case(b"received")
            || (rport_requested && name.eq_ignore_ascii_case(b"rport"))
        {
            continue;
        }
        raw.push(b';');
        raw.extend_from_slice(name);
        if let Some(value) = value {
            raw.push(b'=');
            raw.extend_from_slice(value);
        }
    }
    raw.extend_from_slice(b";received=");
    write_ip(&mut raw, source.ip());
    if rport_requested {
        raw.extend_from_slice(b";rport=");
        pbx_sip::text::put_u64(&mut raw, u64::from(source.port()));
        via.rport = Some(Some(source.port()));
    }
    via.params = Params::from_raw(raw);
    via.received = Some(Host::from(source.ip()));
    request.pop_via();
    request.push_via(&via);
    Ok(via)
}

/// Appends `ip` as text (IPv4 without the formatter machinery: this runs per request).
fn write_ip(out: &mut Vec<u8>, ip: std::net::IpAddr) {
    match ip {
        std::net::IpAddr::V4(v4) => pbx_sip::text::put_ipv4(out, v4),
        std::net::IpAddr::V6(v6) => {
            use std::io::Write as _;
            // Writing to a Vec cannot fail.
            let _ = write!(out, "{v6}");
        }
    }
}

/// Where responses to a request go (RFC 3261 §18.2.2, RFC 3581 §4), given its top Via as
/// stamped by [`stamp_top_via`] and how it arrived.
///
/// - reliable transport: back on the same flow (the source address is the fallback the
///   driver connects to if the flow is gone);
/// - `maddr` holding an address: there, at the sent-by port (or 5060);
/// - `received`: that address, at `rport` when filled in, else the sent-by port (or 5060);
/// - otherwise the sent-by address (it equals the source, or `received` would be set).
pub(crate) fn response_target(via: &Via, info: &TransportInfo) -> Target {
    if info.is_reliable() {
        return Target {
            transport: info.transport.clone(),
            address: info.source,
            flow: info.flow,
        };
    }
    let sent_by_port = via.port.unwrap_or(DEFAULT_PORT);
    let address = if let Some(ip) = via.maddr.as_ref().and_then(Host::ip) {
        SocketAddr::new(ip, sent_by_port)
    } else if let Some(ip) = via.received.as_ref().and_then(Host::ip) {
        let port = match via.rport {
            Some(Some(port)) => port,
            _ => sent_by_port,
        };
        SocketAddr::new(ip, port)
    } else if let Some(ip) = via.host.ip() {
        SocketAddr::new(ip, sent_by_port)
    } else {
        info.source
    };
    Target {
        transport: info.transport.clone(),
        address,
        flow: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use pbx_sip::Message;

    fn request(via: &str) -> Request {
        let text = format!(
            "OPTIONS sip:pbx.example SIP/2.0\r\nVia: {via}\r\nVia: SIP/2.0/UDP other.example;branch=z9hG4bKo\r\n\
             From: <sip:a@example>;tag=1\r\nTo: <sip:pbx.example>\r\nCall-ID: c1\r\nCSeq: 1 OPTIONS\r\n\
             Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        );
        Message::parse(Bytes::from(text))
            .unwrap()
            .into_request()
            .unwrap()
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn received_added_for_domain_sent_by() {
        let mut r = request("SIP/2.0/UDP pc33.example.com;branch=z9hG4bK1");
        let via = stamp_top_via(&mut r, addr("192.0.2.4:5062")).unwrap();
        assert_eq!(via.received, Some(Host::from(addr("192.0.2.4:1").ip())));
        let printed = r.top_via().unwrap().to_bytes();
        assert_eq!(
            &printed[..],
            b"SIP/2.0/UDP pc33.example.com;branch=z9hG4bK1;received=192.0.2.4"
        );
        assert_eq!(r.via().unwrap().len(), 2, "the lower Via is kept");
        let target = response_target(&via, &TransportInfo::udp(addr("192.0.2.4:5062")));
        assert_eq!(
            target.address,
            addr("192.0.2.4:5060"),
            "sent-by port without rport"
        );
    }

    #[test]
    fn rport_filled_and_used() {
        let mut r = request("SIP/2.0/UDP 10.0.0.1:5060;rport;branch=z9hG4bK1");
        let via = stamp_top_via(&mut r, addr("203.0.113.9:40000")).unwrap();
        assert_eq!(via.rport, Some(Some(40000)));
        let printed = r.top_via().unwrap().to_bytes();
        assert_eq!(
            &printed[..],
            b"SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;received=203.0.113.9;rport=40000"
        );
        let target = response_target(&via, &TransportInfo::udp(addr("203.0.113.9:40000")));
        assert_eq!(target.address, addr("203.0.113.9:40000"));
    }

    #[test]
    fn same_address_left_alone() {
        let mut r = request("SIP/2.0/UDP 192.0.2.4:5070;branch=z9hG4bK1");
        let via = stamp_top_via(&mut r, addr("192.0.2.4:5070")).unwrap();
        assert_eq!(via.received, None);
        let target = response_target(&via, &TransportInfo::udp(addr("192.0.2.4:5070")));
        assert_eq!(target.address, addr("192.0.2.4:5070"));
    }

    #[test]
    fn maddr_wins_on_udp_and_flow_wins_on_tcp() {
        let via =
            Via::parse(b"SIP/2.0/UDP h.example:5080;maddr=239.1.1.1;branch=z9hG4bK1").unwrap();
        let target = response_target(&via, &TransportInfo::udp(addr("192.0.2.4:5062")));
        assert_eq!(target.address, addr("239.1.1.1:5080"));
        let info = TransportInfo::stream(
            pbx_sip::Transport::Tcp,
            addr("192.0.2.4:40001"),
            crate::FlowId(7),
        );
        let target = response_target(&via, &info);
        assert_eq!(
            (target.address, target.flow),
            (addr("192.0.2.4:40001"), Some(crate::FlowId(7)))
        );
    }
}
