//! Agreement of the borrowed views with the owned accessors.

use bytes::Bytes;
use pbx_sip::{Headers, Message, NameAddr, Via};

/// Asserts that every borrowed accessor agrees with its owned counterpart on `m`.
pub fn views_agree(m: &Message) {
    let h: &Headers = m.headers();
    let owned_vias =
        |v: Vec<pbx_sip::ViaRef<'_>>| v.iter().map(|v| v.to_via()).collect::<Vec<Via>>();
    let owned_addrs = |v: Vec<pbx_sip::NameAddrRef<'_>>| {
        v.iter()
            .map(|n| n.to_name_addr())
            .collect::<Vec<NameAddr>>()
    };
    assert_eq!(h.top_via_ref().map(|v| v.to_via()), h.top_via(), "top Via");
    assert_eq!(h.via_ref().map(owned_vias), h.via(), "Via");
    assert_eq!(h.from_ref().map(|n| n.to_name_addr()), h.from(), "From");
    assert_eq!(h.to_ref().map(|n| n.to_name_addr()), h.to(), "To");
    assert_eq!(
        h.call_id_ref().map(Bytes::copy_from_slice),
        h.call_id(),
        "Call-ID"
    );
    assert_eq!(
        h.contacts_ref()
            .map(|c| c.iter().map(|c| c.to_contact()).collect::<Vec<_>>()),
        h.contacts(),
        "Contact"
    );
    assert_eq!(h.route_ref().map(owned_addrs), h.route(), "Route");
    assert_eq!(
        h.record_route_ref().map(owned_addrs),
        h.record_route(),
        "Record-Route"
    );
    assert_eq!(h.path_ref().map(owned_addrs), h.path(), "Path");
    // Every parsed view's URI and host convert to what the owned parser builds.
    if let Ok(from) = h.from_ref() {
        assert_eq!(Some(from.uri.to_uri()), h.from().ok().map(|f| f.uri));
        if let Some(sip) = from.uri.as_sip() {
            assert_eq!(
                Some(sip.host.to_host()),
                h.from()
                    .ok()
                    .and_then(|f| f.uri.as_sip().map(|s| s.host.clone()))
            );
        }
    }
}
