//! The source filter (bans) runs before parsing: UDP dropped silently, TCP closed on accept.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use pbx_sip_net::{ListenerConfig, Transport};
use tokio::net::UdpSocket;

use crate::support;

#[tokio::test]
async fn banned_source_is_dropped_before_parsing() {
    let banned_port = Arc::new(AtomicU16::new(0));
    let filter_port = Arc::clone(&banned_port);
    let filter: Arc<dyn Fn(SocketAddr, Transport) -> bool + Send + Sync> =
        Arc::new(move |addr: SocketAddr, _| addr.port() != filter_port.load(Ordering::Relaxed));
    let listeners = vec![
        ListenerConfig::new(Transport::Udp, SocketAddr::from((support::V4, 0))),
        ListenerConfig::new(Transport::Tcp, SocketAddr::from((support::V4, 0))),
    ];
    let server = support::start_filtered(listeners, support::limits(), Some(filter)).await;
    let udp_target = server.addr(Transport::Udp, false);

    let banned = UdpSocket::bind((support::V4, 0)).await.unwrap();
    banned_port.store(banned.local_addr().unwrap().port(), Ordering::Relaxed);
    let (text, _) = support::request(
        "OPTIONS",
        Transport::Udp,
        banned.local_addr().unwrap(),
        udp_target,
        true,
    );
    banned.send_to(text.as_bytes(), udp_target).await.unwrap();
    assert!(
        support::recv_udp(&banned, Duration::from_millis(500))
            .await
            .is_none()
    );
    assert_eq!(server.transports.stats().dropped_banned, 1);

    // Others are served.
    let allowed = UdpSocket::bind((support::V4, 0)).await.unwrap();
    assert_eq!(
        support::udp_transaction(&allowed, udp_target, "OPTIONS")
            .await
            .status()
            .0,
        200
    );

    // TCP: bind the client port first so the filter knows it, then connect.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind((support::V4, 0).into()).unwrap();
    banned_port.store(socket.local_addr().unwrap().port(), Ordering::Relaxed);
    let stream = socket
        .connect(server.addr(Transport::Tcp, false))
        .await
        .unwrap();
    let mut client = support::StreamClient::new(stream);
    assert!(
        client.closed_within(Duration::from_secs(3)).await,
        "banned connection closed"
    );
    server.endpoint.shutdown().await.unwrap();
}
