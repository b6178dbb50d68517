//! TFTP packet codec and request admission (pbx-tftp), plus the provisioning path parser that
//! runs on every admitted request (pbx-provision). Byte 0 picks what the rest is fed to:
//! even = a datagram on the request port (`Packet::parse`, `Request::parse`), odd = a datagram
//! on a transfer port (`Transfer::handle_packet` of a running read).
//!
//! Properties: no panic; a parsed request's path is sanitised (relative, no `..`, no
//! backslash, no control bytes) and `RequestPath::parse` / `BrandFile::classify` accept or
//! refuse it without panicking; any packet fed to a transfer leaves it in a consistent state.
#![no_main]

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use pbx_provision::{BrandFile, RequestPath};
use pbx_tftp::proto::{Packet, Request, Transfer, TransferConfig};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    if selector % 2 == 0 {
        let _ = black_box(Packet::parse(rest));
        if let Ok(request) = Request::parse(rest) {
            let path = &request.path;
            assert!(!path.is_empty() && !path.starts_with('/'));
            assert!(
                !path
                    .split('/')
                    .any(|c| c == ".." || c == "." || c.is_empty())
            );
            assert!(!path.bytes().any(|b| b < 0x20 || b == 0x7f || b == b'\\'));
            if let Some(parsed) = RequestPath::parse(path) {
                let _ = black_box(BrandFile::classify(&parsed.file_name));
            }
        }
    } else {
        // A read of a 3000-byte file negotiated from a fixed request, then the fuzz input as
        // the client's packets (split on a 0xFF marker).
        let peer: SocketAddr = ([127, 0, 0, 1], 40000).into();
        let mut rrq = Vec::new();
        pbx_tftp::proto::packet::encode_request(
            &mut rrq,
            false,
            "acme/f.cfg",
            "octet",
            &[("blksize", "512"), ("tsize", "0"), ("windowsize", "4")],
        );
        let Ok(request) = Request::parse(&rrq) else {
            return;
        };
        let start = Instant::now();
        let content = bytes::Bytes::from(vec![0x41u8; 3000]);
        let mut transfer =
            Transfer::new(peer, &request, content, &TransferConfig::default(), start);
        let mut out = Vec::new();
        let mut now = start;
        for (index, packet) in rest.split(|&b| b == 0xff).enumerate() {
            while transfer.poll_transmit(&mut out) {}
            let from = if index % 5 == 4 {
                ([127, 0, 0, 2], 40000).into()
            } else {
                peer
            };
            let _ = black_box(transfer.handle_packet(now, from, packet));
            now += Duration::from_millis(10);
            if packet.len() % 7 == 0 {
                transfer.handle_timeout(now + Duration::from_secs(10));
            }
            if transfer.outcome().is_some() {
                break;
            }
        }
    }
});
