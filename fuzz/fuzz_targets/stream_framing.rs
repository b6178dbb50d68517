//! TCP/TLS stream framing: arbitrary bytes in arbitrary chunks, fed to pbx-sip's
//! `framing::StreamDecoder` (both sides), the decoder pbx-sip-net's stream transport uses.
//!
//! Input layout: bytes 0 and 1 pick the header-section and message limits (small, so the
//! limits are reached), byte 2 seeds the chunk sizes and picks the side; the rest is the
//! stream.
//!
//! Properties: no panic; while a decoder waits for more octets it never holds more than its
//! larger limit; every message frame is within the message limit; nothing is lost, invented or
//! reordered: frames plus what is left in the buffer are exactly the octets fed.
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use pbx_sip::Limits;
use pbx_sip::framing::{Frame, Side, StreamDecoder};

/// What one decode step produced, decoder-neutral.
enum Step {
    Frame(Bytes),
    Ping,
    Pong,
    NeedMore,
    Closed,
}

/// Feeds `stream` in xorshift-sized chunks (1..=64 octets) through `decode`; checks the
/// invariants. `bound` is the most a decoder may hold while waiting, `max_frame` the largest
/// message frame it may return.
fn drive(
    stream: &[u8],
    seed: u8,
    bound: usize,
    max_frame: usize,
    mut decode: impl FnMut(&mut BytesMut) -> Step,
) {
    let mut buffer = BytesMut::new();
    let mut out: Vec<u8> = Vec::with_capacity(stream.len());
    let mut fed = 0usize;
    let mut state = u32::from(seed) | 1;
    let mut rest = stream;
    'feed: while !rest.is_empty() {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let take = (state as usize % 64 + 1).min(rest.len());
        let (chunk, tail) = rest.split_at(take);
        rest = tail;
        buffer.extend_from_slice(chunk);
        fed += take;
        loop {
            match decode(&mut buffer) {
                Step::Frame(message) => {
                    assert!(
                        message.len() <= max_frame,
                        "frame of {} octets over the limit {max_frame}",
                        message.len()
                    );
                    out.extend_from_slice(&message);
                }
                Step::Ping => out.extend_from_slice(b"\r\n\r\n"),
                Step::Pong => out.extend_from_slice(b"\r\n"),
                Step::NeedMore => {
                    assert!(
                        buffer.len() <= bound,
                        "decoder waits with {} octets buffered (bound {bound})",
                        buffer.len()
                    );
                    break;
                }
                Step::Closed => break 'feed,
            }
        }
    }
    out.extend_from_slice(&buffer);
    assert_eq!(out.len(), fed, "framing lost or invented octets");
    assert_eq!(out.as_slice(), &stream[..fed], "framing reordered octets");
}

fuzz_target!(|data: &[u8]| {
    let [a, b, c, stream @ ..] = data else {
        return;
    };
    let max_header = 32 + usize::from(*a) * 8;
    let max_message = max_header + usize::from(*b) * 16;

    let limits = Limits {
        max_message_size: max_message,
        max_header_block: max_header,
        max_headers: 4 + usize::from(*c % 64),
        max_header_line: Limits::DEFAULT.max_header_line,
        max_body_size: max_message,
    };
    let side = if c & 0x80 == 0 {
        Side::Inbound
    } else {
        Side::Outbound
    };
    let mut decoder = StreamDecoder::for_side(side, limits);
    drive(
        stream,
        *c,
        max_header.max(max_message),
        max_message,
        |buf| match decoder.decode(buf) {
            Ok(Some(Frame::Message(m))) => Step::Frame(m),
            Ok(Some(Frame::KeepAlivePing)) => Step::Ping,
            Ok(Some(Frame::KeepAlivePong)) => Step::Pong,
            Ok(None) => Step::NeedMore,
            Err(e) => {
                assert!(e.must_close());
                let _ = e.status();
                Step::Closed
            }
        },
    );
});
