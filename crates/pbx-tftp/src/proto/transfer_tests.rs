//! Virtual-clock tests of the read state machine: a simulated client steps the transfer, the
//! clock jumps to each deadline, packets are dropped on purpose.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::packet::{Packet, encode_ack, encode_error, encode_request};
use super::{ErrorCode, Handled, Request, Transfer, TransferConfig, TransferError};

fn peer() -> SocketAddr {
    "127.0.0.1:40000".parse().unwrap()
}

fn request(mode: &str, options: &[(&str, &str)]) -> Request {
    let mut buf = Vec::new();
    encode_request(&mut buf, false, "f.bin", mode, options);
    Request::parse(&buf).unwrap()
}

fn content(len: usize) -> Bytes {
    Bytes::from((0..len).map(|i| (i * 7 % 251) as u8).collect::<Vec<u8>>())
}

/// Drains the transmit queue into owned packets.
fn drain(transfer: &mut Transfer) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = Vec::new();
    while transfer.poll_transmit(&mut buf) {
        out.push(buf.clone());
    }
    out
}

fn ack(transfer: &mut Transfer, now: Instant, block: u16) -> Handled {
    let mut buf = Vec::new();
    encode_ack(&mut buf, block);
    transfer.handle_packet(now, peer(), &buf)
}

fn data_block(packet: &[u8]) -> (u16, Vec<u8>) {
    match Packet::parse(packet).unwrap() {
        Packet::Data { block, data } => (block, data.to_vec()),
        other => panic!("expected DATA, got {other:?}"),
    }
}

/// A lossless client that ACKs every window's last block; returns the received bytes.
fn run_to_end(transfer: &mut Transfer, now: Instant) -> Vec<u8> {
    let mut received = Vec::new();
    let mut guard = 0;
    while transfer.outcome().is_none() {
        guard += 1;
        assert!(guard < 1_000_000, "transfer does not end");
        let packets = drain(transfer);
        let mut last = None;
        for packet in &packets {
            match Packet::parse(packet).unwrap() {
                Packet::Oack { .. } => last = Some(0),
                Packet::Data { block, data } => {
                    received.extend_from_slice(data);
                    last = Some(block);
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        let block = last.expect("nothing to ACK");
        assert_eq!(ack(transfer, now, block), Handled::Progress);
    }
    received
}

#[test]
fn plain_octet_transfer_without_options() {
    let now = Instant::now();
    let file = content(1300);
    let mut transfer = Transfer::new(
        peer(),
        &request("octet", &[]),
        file.clone(),
        &TransferConfig::default(),
        now,
    );
    assert!(!transfer.negotiated().oack);
    assert_eq!(transfer.negotiated().blksize, 512);
    assert_eq!(run_to_end(&mut transfer, now), file);
    assert_eq!(transfer.outcome(), Some(&Ok(())));
    assert_eq!(transfer.poll_timeout(), None);
}

#[test]
fn exact_multiple_of_blksize_ends_with_empty_block() {
    let now = Instant::now();
    let mut transfer = Transfer::new(
        peer(),
        &request("octet", &[]),
        content(1024),
        &TransferConfig::default(),
        now,
    );
    let first = drain(&mut transfer);
    assert_eq!(data_block(&first[0]).1.len(), 512);
    let _ = ack(&mut transfer, now, 1);
    let _ = drain(&mut transfer);
    let _ = ack(&mut transfer, now, 2);
    let last = drain(&mut transfer);
    assert_eq!(data_block(&last[0]), (3, Vec::new()));
    let _ = ack(&mut transfer, now, 3);
    assert_eq!(transfer.outcome(), Some(&Ok(())));
}

#[test]
fn lost_data_is_retransmitted_after_timeout_only() {
    let now = Instant::now();
    let mut transfer = Transfer::new(
        peer(),
        &request("octet", &[]),
        content(2000),
        &TransferConfig::default(),
        now,
    );
    let first = drain(&mut transfer);
    assert_eq!(first.len(), 1);
    // DATA 1 lost: nothing happens before the deadline.
    let deadline = transfer.poll_timeout().unwrap();
    assert_eq!(deadline, now + Duration::from_secs(1));
    transfer.handle_timeout(deadline - Duration::from_millis(1));
    assert!(drain(&mut transfer).is_empty());
    transfer.handle_timeout(deadline);
    let resent = drain(&mut transfer);
    assert_eq!(resent, first);
    assert_eq!(transfer.retransmissions(), 1);
    assert_eq!(
        transfer.poll_timeout(),
        Some(deadline + Duration::from_secs(1))
    );
}

#[test]
fn lost_ack_leads_to_resend_and_duplicate_ack_is_ignored() {
    let t0 = Instant::now();
    let mut transfer = Transfer::new(
        peer(),
        &request("octet", &[]),
        content(2000),
        &TransferConfig::default(),
        t0,
    );
    let _ = drain(&mut transfer);
    // ACK 1 lost: timeout resends DATA 1, the client ACKs it (once or twice).
    let t1 = transfer.poll_timeout().unwrap();
    transfer.handle_timeout(t1);
    assert_eq!(data_block(&drain(&mut transfer)[0]).0, 1);
    assert_eq!(ack(&mut transfer, t1, 1), Handled::Progress);
    assert_eq!(data_block(&drain(&mut transfer)[0]).0, 2);
    // The late duplicate ACK 1 must not trigger a second DATA 2 (Sorcerer's Apprentice).
    assert_eq!(ack(&mut transfer, t1, 1), Handled::Ignored);
    assert!(drain(&mut transfer).is_empty());
    // An ACK from the future (outside the window) is ignored as well.
    assert_eq!(ack(&mut transfer, t1, 9), Handled::Ignored);
}

#[test]
fn gives_up_after_retries_with_error_0() {
    let config = TransferConfig {
        max_retries: 3,
        ..TransferConfig::default()
    };
    let mut now = Instant::now();
    let mut transfer = Transfer::new(peer(), &request("octet", &[]), content(100), &config, now);
    let _ = drain(&mut transfer);
    for _ in 0..3 {
        now = transfer.poll_timeout().unwrap();
        transfer.handle_timeout(now);
        assert_eq!(drain(&mut transfer).len(), 1);
    }
    now = transfer.poll_timeout().unwrap();
    transfer.handle_timeout(now);
    assert_eq!(transfer.outcome(), Some(&Err(TransferError::TimedOut)));
    let error = drain(&mut transfer);
    assert_eq!(error.len(), 1);
    assert!(matches!(
        Packet::parse(&error[0]).unwrap(),
        Packet::Error {
            code: ErrorCode::Undefined,
            ..
        }
    ));
    assert_eq!(transfer.poll_timeout(), None);
}

#[test]
fn oack_is_retransmitted_until_ack_0() {
    let now = Instant::now();
    let req = request("octet", &[("blksize", "1428"), ("tsize", "0")]);
    let mut transfer = Transfer::new(peer(), &req, content(5000), &TransferConfig::default(), now);
    let oack = drain(&mut transfer);
    assert_eq!(
        Packet::parse(&oack[0]).unwrap(),
        Packet::Oack {
            options: vec![("blksize", "1428"), ("tsize", "5000")]
        }
    );
    assert_eq!(ack(&mut transfer, now, 1), Handled::Ignored);
    let deadline = transfer.poll_timeout().unwrap();
    transfer.handle_timeout(deadline);
    assert_eq!(drain(&mut transfer), oack);
    assert_eq!(ack(&mut transfer, deadline, 0), Handled::Progress);
    let (block, data) = data_block(&drain(&mut transfer)[0]);
    assert_eq!((block, data.len()), (1, 1428));
}

#[test]
fn client_refusing_oack_ends_transfer() {
    let now = Instant::now();
    let req = request("octet", &[("blksize", "1428")]);
    let mut transfer = Transfer::new(peer(), &req, content(5000), &TransferConfig::default(), now);
    let _ = drain(&mut transfer);
    let mut buf = Vec::new();
    encode_error(&mut buf, ErrorCode::OptionRefused, "no");
    assert_eq!(transfer.handle_packet(now, peer(), &buf), Handled::Progress);
    assert!(matches!(
        transfer.outcome(),
        Some(Err(TransferError::PeerError {
            code: ErrorCode::OptionRefused,
            ..
        }))
    ));
    assert!(drain(&mut transfer).is_empty());
}

#[test]
fn every_option_combination_negotiates_within_limits() {
    let config = TransferConfig {
        max_blksize: 1468,
        max_windowsize: 8,
        ..TransferConfig::default()
    };
    let file = content(70_000);
    let choices: [(&str, &str); 4] = [
        ("blksize", "65464"),
        ("timeout", "3"),
        ("tsize", "0"),
        ("windowsize", "100"),
    ];
    for mask in 0u8..16 {
        let options: Vec<(&str, &str)> = choices
            .iter()
            .enumerate()
            .filter(|(i, _)| mask & (1 << i) != 0)
            .map(|(_, o)| *o)
            .collect();
        for mode in ["octet", "netascii"] {
            let now = Instant::now();
            let mut transfer =
                Transfer::new(peer(), &request(mode, &options), file.clone(), &config, now);
            let negotiated = transfer.negotiated();
            assert_eq!(negotiated.oack, mask != 0);
            assert_eq!(negotiated.blksize, if mask & 1 != 0 { 1468 } else { 512 });
            assert_eq!(
                negotiated.timeout,
                Duration::from_secs(if mask & 2 != 0 { 3 } else { 1 })
            );
            assert_eq!(negotiated.windowsize, if mask & 8 != 0 { 8 } else { 1 });
            let expected = if mode == "octet" {
                file.to_vec()
            } else {
                super::netascii::encode(&file)
            };
            assert_eq!(
                negotiated.tsize,
                (mask & 4 != 0).then_some(expected.len() as u64)
            );
            assert_eq!(
                run_to_end(&mut transfer, now),
                expected,
                "mask {mask} {mode}"
            );
        }
    }
}

#[test]
fn window_resends_from_the_block_after_the_last_ack() {
    let now = Instant::now();
    let req = request("octet", &[("windowsize", "4")]);
    let mut transfer = Transfer::new(
        peer(),
        &req,
        content(512 * 10),
        &TransferConfig::default(),
        now,
    );
    let _ = drain(&mut transfer);
    assert_eq!(ack(&mut transfer, now, 0), Handled::Progress);
    let window: Vec<u16> = drain(&mut transfer)
        .iter()
        .map(|p| data_block(p).0)
        .collect();
    assert_eq!(window, [1, 2, 3, 4]);
    // Block 3 was lost: the client ACKs 2; the server sends 3..=6.
    assert_eq!(ack(&mut transfer, now, 2), Handled::Progress);
    let window: Vec<u16> = drain(&mut transfer)
        .iter()
        .map(|p| data_block(p).0)
        .collect();
    assert_eq!(window, [3, 4, 5, 6]);
    // Whole window lost: the timeout resends it from block 3.
    let deadline = transfer.poll_timeout().unwrap();
    transfer.handle_timeout(deadline);
    let window: Vec<u16> = drain(&mut transfer)
        .iter()
        .map(|p| data_block(p).0)
        .collect();
    assert_eq!(window, [3, 4, 5, 6]);
    // A repeated ACK 2 is a duplicate: no resend.
    assert_eq!(ack(&mut transfer, deadline, 2), Handled::Ignored);
    assert_eq!(ack(&mut transfer, deadline, 6), Handled::Progress);
    let window: Vec<u16> = drain(&mut transfer)
        .iter()
        .map(|p| data_block(p).0)
        .collect();
    assert_eq!(window, [7, 8, 9, 10]);
    // 10 blocks of 512 bytes end with an empty block 11.
    assert_eq!(ack(&mut transfer, deadline, 10), Handled::Progress);
    let last = drain(&mut transfer);
    assert_eq!(data_block(&last[0]), (11, Vec::new()));
    assert_eq!(ack(&mut transfer, deadline, 11), Handled::Progress);
    assert_eq!(transfer.outcome(), Some(&Ok(())));
}

#[test]
fn block_numbers_roll_over_past_65535() {
    let now = Instant::now();
    let req = request("octet", &[("blksize", "8"), ("windowsize", "64")]);
    // 70,000 blocks of 8 bytes + a final short block.
    let file = content(8 * 70_000 + 3);
    let mut transfer = Transfer::new(peer(), &req, file.clone(), &TransferConfig::default(), now);
    let received = run_to_end(&mut transfer, now);
    assert_eq!(received.len(), file.len());
    assert!(received == file);
}

#[test]
fn stranger_gets_error_5_and_transfer_continues() {
    let now = Instant::now();
    let mut transfer = Transfer::new(
        peer(),
        &request("octet", &[]),
        content(600),
        &TransferConfig::default(),
        now,
    );
    let _ = drain(&mut transfer);
    let mut buf = Vec::new();
    encode_ack(&mut buf, 1);
    let stranger: SocketAddr = "127.0.0.1:40001".parse().unwrap();
    let Handled::Stranger(reply) = transfer.handle_packet(now, stranger, &buf) else {
        panic!()
    };
    assert!(matches!(
        Packet::parse(&reply).unwrap(),
        Packet::Error {
            code: ErrorCode::UnknownTransferId,
            ..
        }
    ));
    assert!(drain(&mut transfer).is_empty());
    assert_eq!(ack(&mut transfer, now, 1), Handled::Progress);
    assert_eq!(data_block(&drain(&mut transfer)[0]).0, 2);
}

#[test]
fn malformed_and_illegal_packets() {
    let now = Instant::now();
    let mut transfer = Transfer::new(
        peer(),
        &request("octet", &[]),
        content(600),
        &TransferConfig::default(),
        now,
    );
    let _ = drain(&mut transfer);
    assert_eq!(
        transfer.handle_packet(now, peer(), b"\x00\x04\x00"),
        Handled::Ignored
    );
    assert_eq!(
        transfer.handle_packet(now, peer(), b"\x00\x03\x00\x01abc"),
        Handled::Progress
    );
    assert_eq!(transfer.outcome(), Some(&Err(TransferError::IllegalPacket)));
    let error = drain(&mut transfer);
    assert!(matches!(
        Packet::parse(&error[0]).unwrap(),
        Packet::Error {
            code: ErrorCode::IllegalOperation,
            ..
        }
    ));
}
