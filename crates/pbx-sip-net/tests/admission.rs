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

/// Send one OPTIONS from `client` and wait up to 500 ms for any answer.
async fn answered(client: &UdpSocket, target: SocketAddr) -> bool {
    let (text, _) = support::request(
        "OPTIONS",
        Transport::Udp,
        client.local_addr().unwrap(),
        target,
        true,
    );
    client.send_to(text.as_bytes(), target).await.unwrap();
    support::recv_udp(client, Duration::from_millis(500))
        .await
        .is_some()
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn kernel_drop_set_drops_banned_ipv4_sources_before_the_socket() {
    use pbx_sip_net::kernel_drop::{DropEntry, MAX_INSTRUCTIONS};
    use std::net::Ipv4Addr;

    let listeners = vec![ListenerConfig::new(
        Transport::Udp,
        SocketAddr::from((support::V4, 0)),
    )];
    let server = support::start_filtered(listeners, support::limits(), None).await;
    let target = server.addr(Transport::Udp, false);
    let banned_ip = Ipv4Addr::new(127, 0, 0, 9);
    let banned = UdpSocket::bind((banned_ip, 0)).await.unwrap();
    let allowed = UdpSocket::bind((support::V4, 0)).await.unwrap();
    assert!(answered(&banned, target).await, "served before the ban");

    let installed = server
        .transports
        .set_kernel_drop_set(
            &[
                DropEntry::v4(Ipv4Addr::new(192, 0, 2, 1)),
                DropEntry::v4(banned_ip),
            ],
            MAX_INSTRUCTIONS,
        )
        .unwrap();
    assert_eq!(installed, 2);
    for _ in 0..3 {
        assert!(!answered(&banned, target).await, "banned source answered");
    }
    assert!(answered(&allowed, target).await, "others are served");
    // The kernel dropped them: the receive loop never saw a banned datagram.
    assert_eq!(server.transports.stats().dropped_banned, 0);
    assert!(
        server.transports.udp_kernel_drops().unwrap_or(0) >= 3,
        "the socket's drop counter shows them: {:?}",
        server.transports.udp_kernel_drops()
    );

    // An empty set removes the filter (twice: removing none is not an error).
    for _ in 0..2 {
        assert_eq!(
            server
                .transports
                .set_kernel_drop_set(&[], MAX_INSTRUCTIONS)
                .unwrap(),
            0
        );
    }
    assert!(answered(&banned, target).await, "served after the unban");
    server.endpoint.shutdown().await.unwrap();
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn kernel_drop_set_drops_banned_ipv6_prefixes() {
    use pbx_sip_net::kernel_drop::{DropEntry, MAX_INSTRUCTIONS};
    use std::net::Ipv6Addr;

    if !pbx_sip_net::ipv6_loopback_available() {
        eprintln!("SKIP: no IPv6 loopback on this host");
        return;
    }
    let listeners = vec![ListenerConfig::new(
        Transport::Udp,
        SocketAddr::from((support::V6, 0)),
    )];
    let server = support::start_filtered(listeners, support::limits(), None).await;
    let target = server.addr(Transport::Udp, true);
    let client = UdpSocket::bind((support::V6, 0)).await.unwrap();
    assert!(answered(&client, target).await);

    // Another /64 banned: ::1 is still served.
    let other = Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, 0);
    server
        .transports
        .set_kernel_drop_set(&[DropEntry::v6(other, 64)], MAX_INSTRUCTIONS)
        .unwrap();
    assert!(answered(&client, target).await);

    // ::1's own /64 (::/64) banned: dropped in the kernel.
    server
        .transports
        .set_kernel_drop_set(
            &[
                DropEntry::v6(other, 64),
                DropEntry::v6(Ipv6Addr::UNSPECIFIED, 64),
            ],
            MAX_INSTRUCTIONS,
        )
        .unwrap();
    assert!(!answered(&client, target).await, "banned prefix answered");
    assert_eq!(server.transports.stats().dropped_banned, 0);
    server
        .transports
        .set_kernel_drop_set(&[], MAX_INSTRUCTIONS)
        .unwrap();
    assert!(answered(&client, target).await);
    server.endpoint.shutdown().await.unwrap();
}
