//! URIs (pbx-sip `Uri`, `Host`): parse → print → parse succeeds and prints the same; the
//! accessors never panic.
#![no_main]

use std::hint::black_box;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use pbx_sip::{Host, Uri};

/// Keeps a value alive for the optimiser; errors are expected results here.
fn touch<T>(value: T) {
    let _ = black_box(value);
}

fuzz_target!(|data: &[u8]| {
    touch(Host::parse(data).map(|h| h.ip()));
    let Ok(uri) = Uri::parse(Bytes::copy_from_slice(data)) else {
        return;
    };
    touch(uri.is_sip());
    if let Some(sip) = uri.as_sip() {
        touch(sip.user_unescaped());
        touch(sip.port_or_default());
    }
    touch(uri.to_string());
    let printed = uri.to_bytes();
    let again = match Uri::parse(printed.clone()) {
        Ok(again) => again,
        Err(e) => panic!("printed URI does not parse again: {e}\n{printed:?}"),
    };
    assert_eq!(again.to_bytes(), printed, "URI print is not stable");
});
