//! Load shedding (`Limits::shed_after`): a new request that waited in the inbound queue
//! longer than the limit, with a backlog of at least 32 messages behind it, is answered
//! `503 Service Unavailable` with `Retry-After` instead of being processed — oldest first —
//! while a stall with a short queue sheds nothing.
//!
//! The overload is made real: the endpoint driver is stalled (a command that blocks it, as a
//! CPU-bound burst would) while a client sends N OPTIONS over UDP; the UDP reader keeps
//! queueing them with their arrival time, and the driver finds them old when it resumes.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use pbx_sip::HeaderName;
use pbx_sip_net::{Limits, ListenerConfig, Transport};
use tokio::net::UdpSocket;
use tokio::sync::oneshot;

use crate::support;

/// How long the driver is stalled: well past the 200 ms limit, so every queued request has
/// waited long enough when the driver resumes.
const STALL: Duration = Duration::from_millis(600);

/// The backlog the driver requires behind a request before shedding it (`SHED_MIN_BACKLOG`).
const MIN_BACKLOG: usize = 32;

/// What one request got: its status and its `Retry-After`, by send order.
async fn stalled_burst(limits: Limits, requests: usize) -> (Vec<(u16, Option<String>)>, u64) {
    let (answers, stats) = stalled_burst_stats(limits, requests).await;
    (answers, stats.shed)
}

/// [`stalled_burst`] with every transport counter.
async fn stalled_burst_stats(
    limits: Limits,
    requests: usize,
) -> (Vec<(u16, Option<String>)>, pbx_sip_net::TransportStats) {
    let listeners = vec![ListenerConfig::new(
        Transport::Udp,
        SocketAddr::from((support::V4, 0)),
    )];
    let server = support::start(listeners, limits).await;
    let target = server.addr(Transport::Udp, false);
    let client = UdpSocket::bind((support::V4, 0)).await.unwrap();
    let local = client.local_addr().unwrap();

    let (stalled, driver_blocked) = oneshot::channel();
    server
        .endpoint
        .handle()
        .execute(move |_, _| {
            let _ = stalled.send(());
            // Blocks the driver; the runtime's other worker keeps the UDP reader going.
            tokio::task::block_in_place(|| std::thread::sleep(STALL));
        })
        .await
        .unwrap();
    driver_blocked.await.unwrap();
    let mut call_ids = Vec::with_capacity(requests);
    for _ in 0..requests {
        let (text, call_id) = support::request("OPTIONS", Transport::Udp, local, target, true);
        client.send_to(text.as_bytes(), target).await.unwrap();
        call_ids.push(call_id);
    }

    let mut answers: HashMap<String, (u16, Option<String>)> = HashMap::new();
    while answers.len() < requests {
        let bytes = support::recv_udp(&client, Duration::from_secs(5))
            .await
            .unwrap_or_else(|| panic!("only {} of {requests} answered", answers.len()));
        let message = pbx_sip::Message::parse_datagram(bytes).unwrap();
        let response = message.into_response().unwrap();
        let call_id = String::from_utf8(response.call_id().unwrap().to_vec()).unwrap();
        let retry_after = response
            .headers()
            .get(&HeaderName::RetryAfter)
            .map(|value| String::from_utf8_lossy(value).into_owned());
        let previous = answers.insert(call_id, (response.status().0, retry_after));
        assert!(previous.is_none(), "one answer per request");
    }
    let stats = server.transports.stats();
    server.endpoint.shutdown().await.unwrap();
    let by_order = call_ids
        .iter()
        .map(|call_id| answers.remove(call_id).expect("answered"))
        .collect();
    (by_order, stats)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_that_waited_too_long_is_shed_oldest_first_with_retry_after() {
    let requests = 64;
    let limits = Limits {
        shed_after: Some(Duration::from_millis(200)),
        shed_retry_after: 5,
        ..support::limits()
    };
    let (answers, shed_count) = stalled_burst(limits, requests).await;
    let shed: Vec<usize> = (answers.iter().enumerate())
        .filter(|(_, (status, _))| *status == 503)
        .map(|(index, _)| index)
        .collect();
    // Each request found the rest of the burst queued behind it, so the first
    // `requests - MIN_BACKLOG` are shed and the last `MIN_BACKLOG` processed.
    assert_eq!(
        shed,
        (0..requests - MIN_BACKLOG).collect::<Vec<_>>(),
        "the oldest requests are shed, the newest processed: {answers:?}"
    );
    assert_eq!(shed_count, u64::try_from(shed.len()).unwrap());
    for (index, (status, retry_after)) in answers.iter().enumerate() {
        if *status == 503 {
            assert_eq!(retry_after.as_deref(), Some("5"), "request {index}");
        } else {
            assert_eq!(*status, 200, "request {index} processed normally");
            assert_eq!(retry_after, &None);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stall_with_a_short_queue_or_shedding_off_sheds_nothing() {
    let on = Limits {
        shed_after: Some(Duration::from_millis(200)),
        ..support::limits()
    };
    // Every request waited past the limit, but fewer than 32 were queued: a scheduling
    // hiccup, not overload.
    let (answers, shed) = stalled_burst(on, MIN_BACKLOG - 2).await;
    assert_eq!(shed, 0);
    assert!(
        answers.iter().all(|(status, _)| *status == 200),
        "{answers:?}"
    );

    let off = Limits {
        shed_after: None,
        ..support::limits()
    };
    let (answers, shed) = stalled_burst(off, 64).await;
    assert_eq!(shed, 0);
    assert!(
        answers.iter().all(|(status, _)| *status == 200),
        "{answers:?}"
    );
}

/// A backlog is taken in batches: the driver handles up to 16 queued messages before it
/// sends, and their answers leave in one `sendmmsg` — each still reaching its own client
/// transaction, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_is_answered_in_batches_each_answer_once() {
    let off = Limits {
        shed_after: None,
        ..support::limits()
    };
    let requests = 64;
    let (answers, stats) = stalled_burst_stats(off, requests).await;
    assert!(
        answers.iter().all(|(status, _)| *status == 200),
        "{answers:?}"
    );
    // 64 queued messages, taken 16 at a time: four batches of 16 answers at best; a reader
    // that lags the driver makes smaller ones, but most answers go out batched.
    assert!(
        stats.batches_sent >= 1 && stats.datagrams_batched >= 32,
        "{stats:?}"
    );
    assert!(stats.datagrams_batched <= u64::try_from(requests).unwrap());
}
