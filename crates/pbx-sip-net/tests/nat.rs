//! RFC 3581 / RFC 3261 §18.2.1: responses to a sender behind NAT (Via sent-by differs from
//! the packet's source) carry `received`/`rport` and go back to the source.

use std::net::SocketAddr;
use std::time::Duration;

use pbx_sip::Host;
use pbx_sip_net::{ListenerConfig, Transport};
use tokio::net::UdpSocket;

use crate::support;

#[tokio::test]
async fn rport_and_received_route_the_response_to_the_source() {
    let server = support::start(
        vec![ListenerConfig::new(
            Transport::Udp,
            SocketAddr::from((support::V4, 0)),
        )],
        support::limits(),
    )
    .await;
    let target = server.addr(Transport::Udp, false);
    let socket = UdpSocket::bind((support::V4, 0)).await.unwrap();
    let source = socket.local_addr().unwrap();

    // Behind NAT: a private sent-by with another port, rport requested.
    let private: SocketAddr = "10.0.0.7:5070".parse().unwrap();
    let (text, call_id) = support::request("OPTIONS", Transport::Udp, private, target, true);
    socket.send_to(text.as_bytes(), target).await.unwrap();
    let bytes = support::recv_udp(&socket, Duration::from_secs(5))
        .await
        .expect("answer at source");
    let response = support::check_response(bytes, &call_id, "OPTIONS");
    assert_eq!(response.status().0, 200);
    let via = response.top_via().unwrap();
    assert_eq!(via.received, Some(Host::from(source.ip())));
    assert_eq!(via.rport, Some(Some(source.port())));
    assert_eq!(via.port, Some(5070), "sent-by left as sent");

    // No rport, but sent-by host differs: received added, response to received:sent-by port
    // (the sent-by port is our socket's port here, so it arrives).
    let other_host = SocketAddr::new("192.0.2.1".parse().unwrap(), source.port());
    let (text, call_id) = support::request("OPTIONS", Transport::Udp, other_host, target, false);
    socket.send_to(text.as_bytes(), target).await.unwrap();
    let bytes = support::recv_udp(&socket, Duration::from_secs(5))
        .await
        .expect("answer");
    let response = support::check_response(bytes, &call_id, "OPTIONS");
    let via = response.top_via().unwrap();
    assert_eq!(via.received, Some(Host::from(source.ip())));
    assert_eq!(via.rport, None);
    server.endpoint.shutdown().await.unwrap();
}
