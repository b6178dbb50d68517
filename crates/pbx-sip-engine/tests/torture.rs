//! RFC 4475 torture messages through the endpoint: no panic, the verdict of `index.tsv` at
//! the transaction layer (admission for valid requests, a stateless 400/505 for requests
//! that must be rejected, nothing for broken responses, never a 2xx).

use bytes::Bytes;
use pbx_sip::Message;
use pbx_sip_engine::{Config, Endpoint, Event, TransportInfo};
use pbx_test_support::VirtualClock;
use pbx_test_support::conformance::{read_bytes, read_index, require_or_skip};

use crate::support::addr;

/// What the endpoint did with one message.
#[derive(Debug)]
struct Outcome {
    admitted: bool,
    answered: Vec<u16>,
    malformed: bool,
}

fn feed(bytes: Vec<u8>) -> Outcome {
    let now = VirtualClock::start().now();
    let mut endpoint = Endpoint::new(Config::default(), 44);
    let incoming = endpoint.handle_datagram(
        now,
        TransportInfo::udp(addr("192.0.2.9:5060")),
        Bytes::from(bytes),
    );
    let answered = std::iter::from_fn(|| endpoint.poll_transmit())
        .map(|t| {
            let response = Message::parse_datagram(t.contents).expect("our answers parse");
            response.as_response().expect("a response").status().0
        })
        .collect();
    let malformed =
        std::iter::from_fn(|| endpoint.poll_event()).any(|e| matches!(e, Event::Malformed { .. }));
    Outcome {
        admitted: incoming.is_some(),
        answered,
        malformed,
    }
}

#[test]
fn rfc4475_verdicts_at_the_transaction_layer() {
    let Some(corpus) = require_or_skip("rfc4475") else {
        return;
    };
    let index = read_index(&corpus).unwrap();
    let mut files: Vec<_> = index.keys().cloned().collect();
    files.sort();
    for file in files {
        let row = &index[&file];
        let verdict = row.get("verdict");
        let outcome = feed(read_bytes(&corpus, &file).unwrap());
        let context = format!("{file} ({verdict}): {outcome:?}");
        assert!(
            outcome.answered.iter().all(|s| *s >= 300),
            "never a 2xx/1xx: {context}"
        );
        assert!(
            !outcome.admitted || outcome.answered.is_empty(),
            "admitted and answered: {context}"
        );
        if row.get("kind") == "response" {
            assert!(
                !outcome.admitted && outcome.answered.is_empty(),
                "responses are never answered: {context}"
            );
            continue;
        }
        match verdict {
            v if v.starts_with("valid") || v == "parse-must-not-break" => {
                // Semantic checks (416, 420, 415, 406, 483) are the TU's, after admission.
                assert!(outcome.admitted, "must reach admission: {context}");
            }
            "invalid-must-reject-400" | "invalid-should-reject-400" => {
                assert_eq!(outcome.answered, [400], "{context}");
                assert!(outcome.malformed, "{context}");
            }
            "invalid-must-reject-505" => assert_eq!(outcome.answered, [505], "{context}"),
            "invalid-reject-501-or-400" => {
                assert!(matches!(outcome.answered[..], [400] | [501]), "{context}");
            }
            "invalid-may-reject-400-or-accept" => {
                assert!(outcome.admitted || outcome.answered == [400], "{context}");
            }
            _ => assert!(!outcome.admitted, "{context}"),
        }
    }
}
