//! Integration tests for pbx-sdp, compiled as one binary (STYLE.md 15).

// Test code: a failed unwrap is a failed test, and reading fixture files is the point of the
// helpers (the sans-IO file ban is for the library). Clippy's in-test allowance does not reach
// helper functions outside `#[test]`, hence the crate-level allow.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods
)]

mod conformance;
mod edits;
mod negotiation;
mod props;
mod samples;

use pbx_sdp::SessionDescription;

/// The bytes of a fixture in `tests/fixtures/`.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

/// A parsed fixture.
pub fn parsed(name: &str) -> SessionDescription {
    SessionDescription::parse(&fixture(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

/// Every fixture file name.
pub const FIXTURES: [&str; 10] = [
    "baresip.sdp",
    "hold-rfc2543.sdp",
    "ipv6.sdp",
    "linphone.sdp",
    "polycom.sdp",
    "sipp-uac.sdp",
    "srtp-crypto.sdp",
    "t38-reinvite.sdp",
    "webrtc.sdp",
    "yealink.sdp",
];
