//! Refusals and policies, with the test client (it can bind 127.0.0.2).

use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use pbx_tftp::proto::ErrorCode;
use pbx_tftp::proto::packet::{encode_ack, encode_request};
use pbx_tftp::server::{BusyPolicy, ServerConfig, TransferResult};
use tokio::net::UdpSocket;

use crate::support::{FetchError, WhitelistSource, brand_files, fetch, start, start_default};

const REXMT: Duration = Duration::from_millis(300);

#[tokio::test]
async fn non_whitelisted_source_gets_an_error_not_the_file() {
    let fixture = start_default().await;
    let outsider = fetch(
        fixture.addr,
        "127.0.0.2".parse().unwrap(),
        "acme/000000000000.cfg",
        &[],
        REXMT,
    )
    .await;
    assert_eq!(
        outsider,
        Err(FetchError::Server(
            ErrorCode::AccessViolation,
            "Access violation".into()
        ))
    );
    let insider = fetch(
        fixture.addr,
        "127.0.0.1".parse().unwrap(),
        "acme/000000000000.cfg",
        &[],
        REXMT,
    )
    .await;
    assert_eq!(insider.unwrap(), brand_files()[0].1);
    let events = fixture.events.lock().unwrap();
    assert!(
        matches!(&events[0].result, TransferResult::Refused(refusal) if refusal.code == ErrorCode::AccessViolation)
    );
    assert_eq!(events[0].peer.ip().to_string(), "127.0.0.2");
}

#[tokio::test]
async fn traversal_malformed_and_write_requests_are_refused() {
    let fixture = start_default().await;
    let local = "127.0.0.1".parse().unwrap();
    for path in ["../../etc/passwd", "acme/../../x", "a\\..\\b"] {
        let result = fetch(fixture.addr, local, path, &[], REXMT).await;
        assert!(
            matches!(
                result,
                Err(FetchError::Server(ErrorCode::AccessViolation, _))
            ),
            "{path}"
        );
    }
    // An unusable option value is ignored (no OACK), not refused: the file comes in 512s.
    let fallback = fetch(
        fixture.addr,
        local,
        "acme/000000000000.cfg",
        &[("blksize", "4")],
        REXMT,
    )
    .await;
    assert_eq!(fallback.unwrap(), brand_files()[0].1);

    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut buf = Vec::new();
    encode_request(
        &mut buf,
        true,
        "acme/0004f2aabbcc-app.log",
        "octet",
        &[] as &[(&str, &str)],
    );
    socket.send_to(&buf, fixture.addr).await.unwrap();
    let mut reply = [0u8; 512];
    let (len, _) = tokio::time::timeout(Duration::from_secs(5), socket.recv_from(&mut reply))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&reply[..4], b"\x00\x05\x00\x02");
    socket.send_to(b"\x00\x09junk", fixture.addr).await.unwrap();
    let (len2, _) = tokio::time::timeout(Duration::from_secs(5), socket.recv_from(&mut reply))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&reply[..4], b"\x00\x05\x00\x04");
    assert!(len > 4 && len2 > 4);
    assert_eq!(fixture.stats.malformed.load(Ordering::Relaxed), 4);
}

#[tokio::test]
async fn admission_hook_drops_banned_sources_silently() {
    let source = WhitelistSource {
        files: brand_files(),
        whitelist: vec!["127.0.0.2".parse().unwrap()],
        open_delay: Duration::ZERO,
    };
    let server = pbx_tftp::server::TftpServer::bind(
        "127.0.0.1:0".parse().unwrap(),
        ServerConfig::default(),
        source,
    )
    .await
    .unwrap()
    .with_admission(|peer| peer.ip().to_string() != "127.0.0.2");
    let addr = server.local_addr();
    let stats = server.stats();
    let task = tokio::spawn(server.run());
    let result = fetch(
        addr,
        "127.0.0.2".parse().unwrap(),
        "acme/empty.cfg",
        &[],
        Duration::from_millis(20),
    )
    .await;
    assert_eq!(result, Err(FetchError::Timeout));
    assert_eq!(stats.source_rejected.load(Ordering::Relaxed), 21);
    task.abort();
}

#[tokio::test]
async fn busy_policies_error_or_drop_then_serve() {
    for policy in [BusyPolicy::Error, BusyPolicy::Drop] {
        let source = WhitelistSource {
            files: vec![("f", Bytes::from_static(b"hello"))],
            whitelist: vec!["127.0.0.1".parse().unwrap()],
            open_delay: Duration::from_millis(400),
        };
        let config = ServerConfig {
            max_transfers: 1,
            busy_policy: policy,
            ..ServerConfig::default()
        };
        let fixture = start(source, config).await;
        let local = "127.0.0.1".parse().unwrap();
        let first = tokio::spawn(fetch(fixture.addr, local, "f", &[], Duration::from_secs(2)));
        tokio::time::sleep(Duration::from_millis(100)).await;
        let second = fetch(fixture.addr, local, "f", &[], Duration::from_millis(250)).await;
        match policy {
            BusyPolicy::Error => {
                assert_eq!(
                    second,
                    Err(FetchError::Server(
                        ErrorCode::Undefined,
                        "Server busy".into()
                    ))
                );
            }
            BusyPolicy::Drop => assert_eq!(second.unwrap(), b"hello"),
        }
        assert_eq!(first.await.unwrap().unwrap(), b"hello");
        assert!(fixture.stats.busy.load(Ordering::Relaxed) >= 1);
    }
}

#[tokio::test]
async fn slow_open_times_out_with_error_0_without_blocking_the_listener() {
    let source = WhitelistSource {
        files: vec![("f", Bytes::from_static(b"x"))],
        whitelist: vec!["127.0.0.1".parse().unwrap()],
        open_delay: Duration::from_secs(30),
    };
    let config = ServerConfig {
        open_timeout: Duration::from_millis(200),
        ..ServerConfig::default()
    };
    let fixture = start(source, config).await;
    let local = "127.0.0.1".parse().unwrap();
    let started = std::time::Instant::now();
    let (first, second) = tokio::join!(
        fetch(fixture.addr, local, "f", &[], Duration::from_secs(2)),
        fetch(fixture.addr, local, "f", &[], Duration::from_secs(2)),
    );
    for result in [first, second] {
        assert!(matches!(
            result,
            Err(FetchError::Server(ErrorCode::Undefined, _))
        ));
    }
    // Both opens ran concurrently: well under two open timeouts plus slack.
    assert!(
        started.elapsed() < Duration::from_millis(390),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn stranger_on_the_transfer_port_gets_error_5_and_transfer_completes() {
    let fixture = start_default().await;
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut buf = Vec::new();
    encode_request(
        &mut buf,
        false,
        "acme/000000000000.cfg",
        "octet",
        &[("tsize", "0")],
    );
    client.send_to(&buf, fixture.addr).await.unwrap();
    let mut reply = vec![0u8; 2048];
    let (_, tid) = tokio::time::timeout(Duration::from_secs(5), client.recv_from(&mut reply))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&reply[..2], b"\x00\x06");
    let stranger = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    stranger.send_to(b"\x00\x04\x00\x00", tid).await.unwrap();
    let (_, from) = tokio::time::timeout(Duration::from_secs(5), stranger.recv_from(&mut reply))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((from, &reply[..4]), (tid, &b"\x00\x05\x00\x05"[..]));
    // The real client carries on.
    let mut block = 0u16;
    loop {
        buf.clear();
        encode_ack(&mut buf, block);
        client.send_to(&buf, tid).await.unwrap();
        let (len, _) = tokio::time::timeout(Duration::from_secs(5), client.recv_from(&mut reply))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&reply[..2], b"\x00\x03");
        block = u16::from_be_bytes([reply[2], reply[3]]);
        if len - 4 < 512 {
            buf.clear();
            encode_ack(&mut buf, block);
            client.send_to(&buf, tid).await.unwrap();
            break;
        }
    }
    tokio::time::timeout(Duration::from_secs(5), async {
        while fixture.stats.completed.load(Ordering::Relaxed) == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn retransmitted_rrq_does_not_start_a_second_transfer() {
    let fixture = start_default().await;
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut buf = Vec::new();
    encode_request(
        &mut buf,
        false,
        "acme/000000000000.cfg",
        "octet",
        &[("tsize", "0")],
    );
    client.send_to(&buf, fixture.addr).await.unwrap();
    let mut reply = vec![0u8; 2048];
    let (_, tid) = tokio::time::timeout(Duration::from_secs(5), client.recv_from(&mut reply))
        .await
        .unwrap()
        .unwrap();
    // The phone's RRQ retransmission arrives while its transfer runs: ignored, no new TID.
    client.send_to(&buf, fixture.addr).await.unwrap();
    let (_, from) = tokio::time::timeout(Duration::from_secs(5), client.recv_from(&mut reply))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(from, tid, "a second transfer answered from another port");
    assert_eq!(
        &reply[..2],
        b"\x00\x06",
        "the OACK retransmission after the server's timeout"
    );
    assert_eq!(fixture.stats.duplicate_requests.load(Ordering::Relaxed), 1);
}
