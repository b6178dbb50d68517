//! Malformed input: garbage datagrams are dropped, parseable-but-invalid requests get 400,
//! and the next request is still answered.

use std::net::SocketAddr;
use std::time::Duration;

use pbx_sip_net::{ListenerConfig, Transport};
use tokio::net::UdpSocket;

use crate::support;

#[tokio::test]
async fn garbage_dropped_bad_request_400_then_options_200() {
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
    let local = socket.local_addr().unwrap();

    for garbage in [
        &b"\x00\xff\xfe garbage"[..],
        b"hello\r\n\r\n",
        b"SIP/2.0 200\r\n\r\n",
        &[0x80; 2000],
    ] {
        socket.send_to(garbage, target).await.unwrap();
    }
    assert!(
        support::recv_udp(&socket, Duration::from_millis(300))
            .await
            .is_none(),
        "garbage is dropped"
    );

    // Well-formed Via/Call-ID/CSeq but an invalid Max-Forwards: 400 with the headers copied.
    let (text, call_id) = support::request("OPTIONS", Transport::Udp, local, target, true);
    let text = text.replace("Max-Forwards: 70", "Max-Forwards: many");
    socket.send_to(text.as_bytes(), target).await.unwrap();
    let bytes = support::recv_udp(&socket, Duration::from_secs(5))
        .await
        .expect("a 400");
    assert_eq!(
        support::check_response(bytes, &call_id, "OPTIONS")
            .status()
            .0,
        400
    );

    assert_eq!(
        support::udp_transaction(&socket, target, "OPTIONS")
            .await
            .status()
            .0,
        200
    );
    assert!(server.endpoint.is_running());
    let tu = server.endpoint.shutdown().await.unwrap();
    assert!(
        tu.malformed >= 2,
        "engine reported the malformed messages: {}",
        tu.malformed
    );
}
