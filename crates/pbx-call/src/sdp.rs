//! SDP on the way through the B2BUA: where a side receives, and the description sent to the
//! other side pointing at our relay.

use std::net::SocketAddr;

use bytes::Bytes;
use pbx_sdp::{Direction, LegOrigin, SessionDescription};
use pbx_sip::{HeaderName, Headers};

/// Attributes that would leak the peer's addresses past the relay.
const TOPOLOGY_ATTRIBUTES: [&str; 6] = [
    "candidate",
    "remote-candidates",
    "ice-ufrag",
    "ice-pwd",
    "ice-options",
    "rtcp",
];

/// The SDP body of a message, if it has one (`Err` when it does not parse).
pub(crate) fn body_sdp(
    headers: &Headers,
    body: &Bytes,
) -> Option<Result<SessionDescription, pbx_sdp::SdpError>> {
    if body.is_empty() {
        return None;
    }
    let is_sdp = headers
        .get(&HeaderName::ContentType)
        .is_none_or(|value| value.to_ascii_lowercase().starts_with(b"application/sdp"));
    is_sdp.then(|| SessionDescription::parse_bytes(body.clone()))
}

/// Where the peer that sent `sdp` receives RTP (and RTCP) for the first active audio stream.
pub(crate) fn remote_rtp(sdp: &SessionDescription) -> Option<(SocketAddr, Option<SocketAddr>)> {
    let index = sdp
        .media()
        .iter()
        .position(|m| !m.is_rejected() && m.media_type().eq_ignore_ascii_case("audio"))?;
    let media = sdp.media().get(index)?;
    let ip = sdp.effective_connection(index)?.ip()?;
    if ip.is_unspecified() {
        return None;
    }
    let rtp = SocketAddr::new(ip, media.port());
    let rtcp = if media.rtcp_mux() {
        None
    } else {
        let port = media
            .rtcp()
            .map(|r| r.port)
            .unwrap_or_else(|| media.port().saturating_add(1));
        Some(SocketAddr::new(ip, port))
    };
    Some((rtp, rtcp))
}

/// `sdp` as sent to the other side: our relay address and port (`local`), no ICE or RTCP
/// addresses of the peer, the leg's `o=`; legacy `c=0.0.0.0` hold becomes `sendonly`. Only
/// the first active audio stream is relayed, other streams are disabled (port 0).
pub(crate) fn toward(
    mut out: SessionDescription,
    local: SocketAddr,
    origin: &mut LegOrigin,
) -> Result<Bytes, pbx_sdp::EditError> {
    let legacy_hold: Vec<bool> = (0..out.media().len())
        .map(|i| out.is_legacy_hold(i))
        .collect();
    let relayed = out
        .media()
        .iter()
        .position(|m| !m.is_rejected() && m.media_type().eq_ignore_ascii_case("audio"));
    out.rewrite_connection(local.ip());
    for (index, media) in out.media_iter_mut().enumerate() {
        for name in TOPOLOGY_ATTRIBUTES {
            media.remove_attributes(name);
        }
        if legacy_hold.get(index).copied().unwrap_or(false) {
            media.set_direction(Direction::SendOnly);
        }
        if Some(index) == relayed {
            media.set_port(local.port());
        } else {
            media.set_port(0);
        }
    }
    for name in TOPOLOGY_ATTRIBUTES {
        out.remove_attributes(name);
    }
    origin.stamp(&mut out)?;
    Ok(out.to_bytes())
}

/// An answer to `offer` that rejects every stream (port 0, RFC 3264 §6), from our relay
/// address `local`: what the ACK to a 2xx carrying an offer holds when the call ends before
/// the real answer came (RFC 3261 §13.2.1: a valid answer in the ACK, then BYE).
pub(crate) fn rejecting(
    offer: &SessionDescription,
    local: SocketAddr,
    origin: &mut LegOrigin,
) -> Result<Bytes, pbx_sdp::EditError> {
    let mut out = offer.clone();
    out.rewrite_connection(local.ip());
    for media in out.media_iter_mut() {
        for name in TOPOLOGY_ATTRIBUTES {
            media.remove_attributes(name);
        }
        media.set_port(0);
    }
    for name in TOPOLOGY_ATTRIBUTES {
        out.remove_attributes(name);
    }
    origin.stamp(&mut out)?;
    Ok(out.to_bytes())
}
