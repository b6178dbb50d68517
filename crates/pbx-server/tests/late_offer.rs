//! Late offer (RFC 3261 §13.2.1) with real peers: a SIPp caller sends its INVITE without SDP
//! (`uac_late_offer.xml`); the SIPp callee (`uas_late_offer.xml`) fails unless its INVITE has
//! no SDP, answers 200 with an offer (PCMA, G.729, telephone-event), and fails unless our ACK
//! carries the answer. The caller fails unless our 200 carries the offer rewritten by us and
//! restricted to the relayed codecs (no G.729); its ACK carries its answer, then it plays
//! G.711 A-law audio that must reach the callee's media port through the relay (so both relay
//! sides were pointed at the right peers). The CDR listed through the API says answered.
//! With 100rel (`uac_late_offer_prack.xml` / `uas_late_offer_prack.xml`, RFC 3262 §5): the
//! callee must get `Supported: 100rel` and puts its offer in a reliable 183; the caller
//! fails unless it gets our reliable 183 with the offer rewritten and restricted, and PRACKs
//! it with its answer; the callee fails unless our PRACK carries that answer rewritten by
//! us; the 200s and ACKs carry no SDP; the same audio must reach the callee.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::UdpSocket;

use crate::calls::{api_cdrs, call_setup};
use crate::support::{run_bounded, v4, wait_bounded};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_late_offer_call_gets_the_offer_in_the_200_and_the_answer_in_the_ack() {
    late_offer_call("uac_late_offer.xml", "uas_late_offer.xml").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_late_offer_call_gets_the_offer_in_a_reliable_183_and_the_answer_in_the_prack() {
    late_offer_call("uac_late_offer_prack.xml", "uas_late_offer_prack.xml").await;
}

/// A SIPp caller (`caller` scenario, without SDP) calls a SIPp callee (`callee` scenario);
/// both must pass, the caller's audio must reach the callee through the relay and the CDR
/// must say answered.
async fn late_offer_call(caller: &str, callee: &str) {
    let Some((harness, tenant, sipp, port)) = call_setup("").await else {
        return;
    };
    // The callee's media: counts PCMA packets relayed to it and echoes them back.
    let socket = UdpSocket::bind((v4(), 0)).await.expect("media sink bound");
    let rtp_port = socket.local_addr().expect("sink address").port();
    let pcma = Arc::new(AtomicU64::new(0));
    let counted = pcma.clone();
    let sink = tokio::spawn(async move {
        let mut buf = vec![0u8; 2048];
        while let Ok((len, from)) = socket.recv_from(&mut buf).await {
            if len >= 12 && buf[1] & 0x7f == 8 {
                counted.fetch_add(1, Ordering::Relaxed);
            }
            let _ = socket.send_to(&buf[..len], from).await;
        }
    });
    let callee = sipp.callee(callee, port, rtp_port);
    let command = sipp.caller_command(caller, &tenant.accounts[0], &tenant.accounts[1].extension);
    let (code, output) = run_bounded(command, Duration::from_secs(60)).await;
    assert_eq!(code, 0, "caller: {output}{}", sipp.logs());
    let (code, output) = wait_bounded(callee, Duration::from_secs(45)).await;
    assert_eq!(code, 0, "callee: {output}{}", sipp.logs());
    sink.abort();
    // 3 s of g711a.pcap (about 100 packets at 20 ms) went through the relay.
    let relayed = pcma.load(Ordering::Relaxed);
    assert!(relayed >= 80, "G.711 packets at the callee: {relayed}");
    let cdrs = api_cdrs(&harness, &tenant, 1).await;
    assert_eq!(cdrs.len(), 1, "{cdrs:?}");
    let cdr = &cdrs[0];
    assert_eq!(cdr["disposition"], "answered", "{cdr}");
    assert_eq!(cdr["direction"], "internal", "{cdr}");
    assert_eq!(cdr["state"], "closed", "{cdr}");
    assert_eq!(cdr["sip_status"], 200, "{cdr}");
    assert_eq!(cdr["hangup_side"], "caller", "{cdr}");
    assert_eq!(cdr["caller"], tenant.accounts[0].extension, "{cdr}");
    assert_eq!(cdr["callee"], tenant.accounts[1].extension, "{cdr}");
    for key in ["start_ms", "answer_ms", "end_ms"] {
        assert!(cdr[key].as_i64().is_some(), "{key}: {cdr}");
    }
    assert!(cdr["billable_secs"].as_i64() >= Some(3), "{cdr}");
    let from_caller = cdr["media"]
        .as_array()
        .and_then(|streams| streams.iter().find(|s| s["leg"] == "caller"))
        .and_then(|stream| stream["packets_in"].as_u64())
        .unwrap_or_else(|| panic!("no caller stream in {cdr}"));
    assert!(
        from_caller >= relayed,
        "caller packets {from_caller}: {cdr}"
    );
    harness.shutdown().await;
}
