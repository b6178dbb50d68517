//! OPTIONS, REGISTER and INVITE over UDP, TCP and TLS on 127.0.0.1 and [::1].

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use pbx_sip::HeaderName;
use pbx_sip_net::{Destination, Transport};
use tokio::net::UdpSocket;

use crate::support::{self, Server};

async fn exercise_family(ip: IpAddr) {
    let server = support::start(support::all_listeners(ip), support::limits()).await;
    exercise_udp(&server, ip).await;
    exercise_tcp(&server, ip).await;
    exercise_tls(&server, ip).await;
    assert!(server.endpoint.is_running());
    let tu = server
        .endpoint
        .shutdown()
        .await
        .expect("driver ended cleanly");
    // 3 transports × (OPTIONS + REGISTER) answered 200, 3 INVITEs answered 404.
    assert_eq!(tu.answered.get(&200), Some(&6));
    assert_eq!(tu.answered.get(&404), Some(&3));
}

async fn exercise_udp(server: &Server, ip: IpAddr) {
    let target = server.addr(Transport::Udp, ip.is_ipv6());
    let socket = UdpSocket::bind(SocketAddr::new(ip, 0)).await.unwrap();
    assert_eq!(
        support::udp_transaction(&socket, target, "OPTIONS")
            .await
            .status()
            .0,
        200
    );
    let register = support::udp_transaction(&socket, target, "REGISTER").await;
    assert_eq!(register.status().0, 200);
    assert!(
        register.headers().get(&HeaderName::Contact).is_some(),
        "Contact echoed"
    );
    let invite = support::udp_transaction(&socket, target, "INVITE").await;
    assert_eq!(
        invite.status().0,
        404,
        "INVITE to the test TU is never answered 2xx"
    );
}

async fn exercise_tcp(server: &Server, ip: IpAddr) {
    let target = server.addr(Transport::Tcp, ip.is_ipv6());
    let mut client = support::tcp_client(target).await;
    let local = client.stream.local_addr().unwrap();
    for (method, status) in [("OPTIONS", 200), ("REGISTER", 200), ("INVITE", 404)] {
        let response = client
            .transaction(Transport::Tcp, target, local, method)
            .await;
        assert_eq!(response.status().0, status, "{method} over TCP");
    }
}

async fn exercise_tls(server: &Server, ip: IpAddr) {
    let target = server.addr(Transport::Tls, ip.is_ipv6());
    let mut client = support::tls_client(target, &server.transports).await;
    let local = client.stream.get_ref().0.local_addr().unwrap();
    for (method, status) in [("OPTIONS", 200), ("REGISTER", 200), ("INVITE", 404)] {
        let response = client
            .transaction(Transport::Tls, target, local, method)
            .await;
        assert_eq!(response.status().0, status, "{method} over TLS");
    }
}

#[tokio::test]
async fn options_register_invite_over_udp_tcp_tls_ipv4() {
    exercise_family(IpAddr::V4(support::V4)).await;
}

#[tokio::test]
async fn options_register_invite_over_udp_tcp_tls_ipv6() {
    if !support::ipv6_or_skip("options_register_invite_over_udp_tcp_tls_ipv6") {
        return;
    }
    exercise_family(IpAddr::V6(support::V6)).await;
}

/// A request sent to a device over the flow its REGISTER came in on reuses that connection;
/// so does a send to its address.
#[tokio::test]
async fn send_reuses_the_registered_connection() {
    let ip = IpAddr::V4(support::V4);
    let server = support::start(support::all_listeners(ip), support::limits()).await;
    let target = server.addr(Transport::Tcp, false);
    let mut client = support::tcp_client(target).await;
    let local = client.stream.local_addr().unwrap();
    let register = client
        .transaction(Transport::Tcp, target, local, "REGISTER")
        .await;
    assert_eq!(register.status().0, 200);
    assert_eq!(server.transports.stats().open_connections, 1);

    let (options, call_id) = support::request("OPTIONS", Transport::Tcp, target, local, false);
    let flow = server
        .transports
        .send(
            Destination::Address {
                transport: Transport::Tcp,
                addr: local,
            },
            options.into(),
        )
        .await
        .expect("sent on the open connection");
    assert_eq!(flow.remote, local);
    assert!(flow.connection.is_some());
    let received = client
        .next_message(Duration::from_secs(5))
        .await
        .expect("request arrives");
    let request = pbx_sip::Message::parse(received)
        .unwrap()
        .into_request()
        .unwrap();
    assert_eq!(&request.call_id().unwrap()[..], call_id.as_bytes());

    // Same again through the explicit flow.
    let (options, _) = support::request("OPTIONS", Transport::Tcp, target, local, false);
    let again = server.transports.send(flow, options.into()).await.unwrap();
    assert_eq!(again.connection, flow.connection);
    assert!(client.next_message(Duration::from_secs(5)).await.is_some());
    assert_eq!(
        server.transports.stats().open_connections,
        1,
        "no second connection opened"
    );
    server.endpoint.shutdown().await.unwrap();
}

/// A send to an address with no connection opens one (and the peer sees our listener's
/// traffic on it).
#[tokio::test]
async fn send_opens_a_connection_when_none_exists() {
    let ip = IpAddr::V4(support::V4);
    let server = support::start(support::all_listeners(ip), support::limits()).await;
    let peer = tokio::net::TcpListener::bind((support::V4, 0))
        .await
        .unwrap();
    let peer_addr = peer.local_addr().unwrap();
    let from = server.addr(Transport::Tcp, false);
    let (options, call_id) = support::request("OPTIONS", Transport::Tcp, from, peer_addr, false);
    let sender = server.transports.clone();
    let send = tokio::spawn(async move {
        sender
            .send(
                Destination::Address {
                    transport: Transport::Tcp,
                    addr: peer_addr,
                },
                options.into(),
            )
            .await
    });
    let (stream, _) = tokio::time::timeout(Duration::from_secs(5), peer.accept())
        .await
        .unwrap()
        .unwrap();
    let flow = send.await.unwrap().expect("connected and sent");
    assert_eq!(flow.remote, peer_addr);
    let mut client = support::StreamClient::new(stream);
    let received = client
        .next_message(Duration::from_secs(5))
        .await
        .expect("request arrives");
    let request = pbx_sip::Message::parse(received)
        .unwrap()
        .into_request()
        .unwrap();
    assert_eq!(&request.call_id().unwrap()[..], call_id.as_bytes());
    server.endpoint.shutdown().await.unwrap();
}

/// Shutdown with no live transaction ends promptly and stops the listeners.
#[tokio::test]
async fn graceful_shutdown_stops_listeners() {
    let ip = IpAddr::V4(support::V4);
    let server = support::start(support::all_listeners(ip), support::limits()).await;
    let tcp = server.addr(Transport::Tcp, false);
    let transports = server.transports.clone();
    let started = std::time::Instant::now();
    server
        .endpoint
        .shutdown()
        .await
        .expect("driver returns the TU");
    assert!(started.elapsed() < Duration::from_secs(3));
    transports.wait_closed().await;
    assert!(
        tokio::net::TcpStream::connect(tcp).await.is_err(),
        "listener closed"
    );
}

/// While draining, live transactions finish and new requests are answered 503; the driver
/// stops by the end of the grace period.
#[tokio::test]
async fn draining_answers_503_and_stops_within_grace() {
    let limits = pbx_sip_net::Limits {
        shutdown_grace: Duration::from_millis(800),
        ..support::limits()
    };
    let server = support::start(
        vec![pbx_sip_net::ListenerConfig::new(
            Transport::Udp,
            SocketAddr::from((support::V4, 0)),
        )],
        limits,
    )
    .await;
    let target = server.addr(Transport::Udp, false);
    let socket = UdpSocket::bind((support::V4, 0)).await.unwrap();
    // An OPTIONS transaction lingers in Completed (Timer J) and keeps the endpoint draining.
    assert_eq!(
        support::udp_transaction(&socket, target, "OPTIONS")
            .await
            .status()
            .0,
        200
    );
    server.endpoint.handle().shutdown();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let response = support::udp_transaction(&socket, target, "OPTIONS").await;
    assert_eq!(response.status().0, 503);
    let started = std::time::Instant::now();
    server
        .endpoint
        .shutdown()
        .await
        .expect("driver returns the TU");
    assert!(started.elapsed() < Duration::from_secs(3));
}

/// A configured certificate and key (PEM files) are served instead of a generated one.
#[tokio::test]
async fn tls_with_configured_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let generated = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, generated.cert.pem()).unwrap();
    std::fs::write(&key, generated.signing_key.serialize_pem()).unwrap();
    let listeners = vec![pbx_sip_net::ListenerConfig::new(
        Transport::Tls,
        SocketAddr::from((support::V4, 0)),
    )];
    let config = pbx_sip_net::TransportConfig {
        tls: pbx_sip_net::TlsConfig {
            cert_path: Some(cert),
            key_path: Some(key),
            ..pbx_sip_net::TlsConfig::default()
        },
        limits: support::limits(),
        ..pbx_sip_net::TransportConfig::with_listeners(listeners)
    };
    let server = support::start_with_config(config, None).await;
    assert_eq!(
        server.transports.tls_certificate(),
        Some(generated.cert.der())
    );
    let target = server.addr(Transport::Tls, false);
    let mut client = support::tls_client(target, &server.transports).await;
    let local = client.stream.get_ref().0.local_addr().unwrap();
    let response = client
        .transaction(Transport::Tls, target, local, "OPTIONS")
        .await;
    assert_eq!(response.status().0, 200);
    server.endpoint.shutdown().await.unwrap();
}

/// An outbound TLS connection (the server's client config trusts its own certificate) opened
/// by `send`: the endpoint sends OPTIONS to its own TLS listener and answers it.
#[tokio::test]
async fn outbound_tls_connection_to_own_listener() {
    let ip = IpAddr::V4(support::V4);
    let server = support::start(support::all_listeners(ip), support::limits()).await;
    let tls = server.addr(Transport::Tls, false);
    let (options, _) = support::request("OPTIONS", Transport::Tls, tls, tls, false);
    let flow = server
        .transports
        .send(
            Destination::Address {
                transport: Transport::Tls,
                addr: tls,
            },
            options.into(),
        )
        .await
        .expect("TLS connect, handshake and send");
    assert_eq!(flow.transport, Transport::Tls);
    assert!(flow.connection.is_some());
    // Both ends of the loop are ours: one outbound, one inbound connection.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(server.transports.stats().open_connections, 2);
    let tu = server.endpoint.shutdown().await.unwrap();
    assert_eq!(
        tu.answered.get(&200),
        Some(&1),
        "the OPTIONS arrived and was answered"
    );
}
