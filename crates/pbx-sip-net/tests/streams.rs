//! TCP specifics: framing across split writes, pipelining, CRLF keep-alive, idle timeout,
//! per-source connection limit.

use std::net::SocketAddr;
use std::time::Duration;

use pbx_sip::framing::Frame;
use pbx_sip_net::{Limits, ListenerConfig, Transport};

use crate::support;

fn tcp_only() -> Vec<ListenerConfig> {
    vec![ListenerConfig::new(
        Transport::Tcp,
        SocketAddr::from((support::V4, 0)),
    )]
}

#[tokio::test]
async fn framing_across_split_writes_and_pipelined_messages() {
    let server = support::start(tcp_only(), support::limits()).await;
    let target = server.addr(Transport::Tcp, false);
    let mut client = support::tcp_client(target).await;
    let local = client.stream.local_addr().unwrap();

    // One message in three writes, cut inside the start line and inside Content-Length.
    let (text, call_id) = support::request("OPTIONS", Transport::Tcp, local, target, false);
    let cut = text.find("Content-Le").unwrap() + 5;
    for part in [&text[..9], &text[9..cut], &text[cut..]] {
        client.send(part.as_bytes()).await;
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let bytes = client
        .next_message(Duration::from_secs(5))
        .await
        .expect("answer");
    assert_eq!(
        support::check_response(bytes, &call_id, "OPTIONS")
            .status()
            .0,
        200
    );

    // Three messages in one write, with a body on the middle one.
    let (first, id1) = support::request("OPTIONS", Transport::Tcp, local, target, false);
    let (second, id2) = support::request("OPTIONS", Transport::Tcp, local, target, false);
    let second = second.replace(
        "Content-Length: 0\r\n\r\n",
        "Content-Length: 5\r\n\r\nhello",
    );
    let (third, id3) = support::request("REGISTER", Transport::Tcp, local, target, false);
    client
        .send(format!("{first}{second}{third}").as_bytes())
        .await;
    let mut answered = Vec::new();
    for _ in 0..3 {
        let bytes = client
            .next_message(Duration::from_secs(5))
            .await
            .expect("pipelined answer");
        let response = pbx_sip::Message::parse(bytes)
            .unwrap()
            .into_response()
            .unwrap();
        assert_eq!(response.status().0, 200);
        answered.push(String::from_utf8(response.call_id().unwrap().to_vec()).unwrap());
    }
    answered.sort();
    let mut expected = vec![id1, id2, id3];
    expected.sort();
    assert_eq!(answered, expected);
    server.endpoint.shutdown().await.unwrap();
}

#[tokio::test]
async fn crlf_ping_gets_crlf_pong() {
    let server = support::start(tcp_only(), support::limits()).await;
    let mut client = support::tcp_client(server.addr(Transport::Tcp, false)).await;
    client.send(b"\r\n\r\n").await;
    assert_eq!(
        client.next_frame(Duration::from_secs(5)).await,
        Some(Frame::KeepAlivePong)
    );
    // A ping split across two writes is still one ping.
    client.send(b"\r\n").await;
    tokio::time::sleep(Duration::from_millis(30)).await;
    client.send(b"\r\n").await;
    assert_eq!(
        client.next_frame(Duration::from_secs(5)).await,
        Some(Frame::KeepAlivePong)
    );
    server.endpoint.shutdown().await.unwrap();
}

#[tokio::test]
async fn idle_connection_is_closed() {
    let limits = Limits {
        idle_timeout: Duration::from_millis(300),
        ..support::limits()
    };
    let server = support::start(tcp_only(), limits).await;
    let target = server.addr(Transport::Tcp, false);
    let mut client = support::tcp_client(target).await;
    // Keep-alives keep it open past the timeout...
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        client.send(b"\r\n\r\n").await;
        assert_eq!(
            client.next_frame(Duration::from_secs(2)).await,
            Some(Frame::KeepAlivePong)
        );
    }
    // ...silence closes it.
    assert!(
        client.closed_within(Duration::from_secs(3)).await,
        "idle connection closed"
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(server.transports.stats().open_connections, 0);
    server.endpoint.shutdown().await.unwrap();
}

#[tokio::test]
async fn per_source_connection_limit() {
    let limits = Limits {
        max_connections_per_source: 2,
        ..support::limits()
    };
    let server = support::start(tcp_only(), limits).await;
    let target = server.addr(Transport::Tcp, false);
    let mut first = support::tcp_client(target).await;
    let mut second = support::tcp_client(target).await;
    for client in [&mut first, &mut second] {
        let local = client.stream.local_addr().unwrap();
        assert_eq!(
            client
                .transaction(Transport::Tcp, target, local, "OPTIONS")
                .await
                .status()
                .0,
            200
        );
    }
    assert_eq!(server.transports.connections_from(support::V4.into()), 2);
    let mut third = support::tcp_client(target).await;
    assert!(
        third.closed_within(Duration::from_secs(3)).await,
        "third connection refused"
    );
    assert_eq!(server.transports.stats().connections_refused, 1);
    // Closing one frees a slot.
    drop(first);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut fourth = support::tcp_client(target).await;
    let local = fourth.stream.local_addr().unwrap();
    assert_eq!(
        fourth
            .transaction(Transport::Tcp, target, local, "OPTIONS")
            .await
            .status()
            .0,
        200
    );
    server.endpoint.shutdown().await.unwrap();
}

#[tokio::test]
async fn stream_without_content_length_is_closed() {
    let server = support::start(tcp_only(), support::limits()).await;
    let target = server.addr(Transport::Tcp, false);
    let mut client = support::tcp_client(target).await;
    client
        .send(b"OPTIONS sip:a@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:1\r\n\r\n")
        .await;
    assert!(client.closed_within(Duration::from_secs(3)).await);
    server.endpoint.shutdown().await.unwrap();
}
