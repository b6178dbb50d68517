//! No-panic properties for the parser and the state machine (stand-in for a cargo-fuzz target).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use proptest::prelude::*;

use super::packet::{encode_ack, encode_request};
use super::{Packet, Request, Transfer, TransferConfig};

#[derive(Debug, Clone)]
enum Event {
    Raw(Vec<u8>),
    Ack(u16),
    Stranger(u16),
    Advance(u16),
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(Event::Raw),
        (0u16..12).prop_map(Event::Ack),
        any::<u16>().prop_map(Event::Ack),
        any::<u16>().prop_map(Event::Stranger),
        (0u16..3000).prop_map(Event::Advance),
    ]
}

proptest! {
    #[test]
    fn parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = Packet::parse(&bytes);
        let _ = Request::parse(&bytes);
    }

    #[test]
    fn requests_with_random_fields_never_panic(
        name in "[ -~]{0,40}",
        mode in "(octet|netascii|OCTET|mail|x)",
        options in proptest::collection::vec(("[a-z]{1,10}", "[0-9a-z]{0,8}"), 0..6),
    ) {
        let mut buf = Vec::new();
        encode_request(&mut buf, false, &name, &mode, &options);
        if let Ok(request) = Request::parse(&buf) {
            prop_assert!(!request.path.starts_with('/'));
            prop_assert!(!request.path.split('/').any(|c| c == ".."));
        }
    }

    #[test]
    fn transfer_survives_random_packets_at_random_times(
        len in 0usize..5000,
        blksize in prop_oneof![Just(None), (8u16..2000).prop_map(Some)],
        windowsize in prop_oneof![Just(None), (1u16..10).prop_map(Some)],
        netascii in any::<bool>(),
        events in proptest::collection::vec(event(), 0..200),
    ) {
        let peer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let blk = blksize.map(|b| b.to_string());
        let win = windowsize.map(|w| w.to_string());
        let mut options: Vec<(&str, &str)> = vec![("tsize", "0")];
        if let Some(b) = &blk { options.push(("blksize", b)); }
        if let Some(w) = &win { options.push(("windowsize", w)); }
        let mut buf = Vec::new();
        encode_request(&mut buf, false, "f", if netascii { "netascii" } else { "octet" }, &options);
        let request = Request::parse(&buf).unwrap();
        let content = Bytes::from(vec![b'\n'; len]);
        let mut now = Instant::now();
        let mut transfer = Transfer::new(peer, &request, content, &TransferConfig::default(), now);
        let mut out = Vec::new();
        for event in events {
            while transfer.poll_transmit(&mut out) {
                prop_assert!(out.len() <= 4 + 1468);
            }
            match event {
                Event::Raw(bytes) => { let _ = transfer.handle_packet(now, peer, &bytes); }
                Event::Ack(block) => {
                    let mut ack = Vec::new();
                    encode_ack(&mut ack, block);
                    let _ = transfer.handle_packet(now, peer, &ack);
                }
                Event::Stranger(port) => {
                    let from = SocketAddr::from(([127, 0, 0, 2], port));
                    let _ = transfer.handle_packet(now, from, b"\x00\x04\x00\x01");
                }
                Event::Advance(millis) => {
                    now += Duration::from_millis(u64::from(millis));
                    transfer.handle_timeout(now);
                }
            }
            if let Some(deadline) = transfer.poll_timeout() {
                prop_assert!(deadline >= now || transfer.outcome().is_none());
            }
        }
    }
}
