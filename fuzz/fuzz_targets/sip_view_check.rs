//! Not a fuzz target: a module shared by `sip_message` and `sip_headers` (included with
//! `#[path]`). The borrowed views must agree with the owned accessors on every input.

use pbx_sip::{Headers, NameAddrRef, ViaRef};

/// Panics when a borrowed accessor (`top_via_ref()`, `from_ref()`, ...) disagrees with its
/// owned counterpart: different value, different error, or one accepting what the other
/// rejects.
pub fn views_agree(h: &Headers) {
    let vias = |v: Vec<ViaRef<'_>>| v.into_iter().map(ViaRef::to_via).collect::<Vec<_>>();
    let addrs = |v: Vec<NameAddrRef<'_>>| {
        v.into_iter()
            .map(NameAddrRef::to_name_addr)
            .collect::<Vec<_>>()
    };
    assert_eq!(h.top_via_ref().map(ViaRef::to_via), h.top_via(), "top Via");
    assert_eq!(h.via_ref().map(vias), h.via(), "Via");
    assert_eq!(
        h.from_ref().map(NameAddrRef::to_name_addr),
        h.from(),
        "From"
    );
    assert_eq!(h.to_ref().map(NameAddrRef::to_name_addr), h.to(), "To");
    assert_eq!(
        h.call_id_ref().map(bytes::Bytes::copy_from_slice),
        h.call_id(),
        "Call-ID"
    );
    assert_eq!(
        h.contacts_ref()
            .map(|c| c.iter().map(|c| c.to_contact()).collect::<Vec<_>>()),
        h.contacts(),
        "Contact"
    );
    assert_eq!(h.route_ref().map(addrs), h.route(), "Route");
    assert_eq!(
        h.record_route_ref().map(addrs),
        h.record_route(),
        "Record-Route"
    );
    assert_eq!(h.path_ref().map(addrs), h.path(), "Path");
}
