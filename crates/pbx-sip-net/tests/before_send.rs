//! `TransactionUser::before_send`: the driver calls it after the callbacks of a step and
//! before sending what they produced (the server hands its media relay the new sessions
//! there, before the SDP naming their ports leaves).

use std::net::SocketAddr;
use std::time::Duration;

use pbx_sip::StatusCode;
use pbx_sip_engine::{Event, Incoming};
use pbx_sip_net::{
    Context, Endpoint, ListenerConfig, TransactionUser, Transport, TransportConfig, Transports,
};
use tokio::sync::oneshot;

use crate::support;

/// Answers every request 200 and notes, in `before_send`, the answers produced since the last
/// call: each step's answers must be seen there, once.
#[derive(Debug, Default)]
struct FlushingTu {
    unflushed: usize,
    flushed: Vec<usize>,
}

impl TransactionUser for FlushingTu {
    fn on_incoming(&mut self, ctx: &mut Context<'_>, incoming: Incoming) {
        let now = ctx.now();
        if let Ok(accepted) = ctx.engine().accept(now, incoming) {
            let _ = ctx.engine().respond(now, accepted, StatusCode::OK);
            self.unflushed += 1;
        }
    }

    fn on_event(&mut self, _ctx: &mut Context<'_>, _event: Event) {}

    fn before_send(&mut self) {
        if self.unflushed > 0 {
            self.flushed.push(std::mem::take(&mut self.unflushed));
        }
    }
}

#[tokio::test]
async fn before_send_sees_each_steps_answers_once() {
    let listeners = vec![ListenerConfig::new(
        Transport::Udp,
        SocketAddr::from((support::V4, 0)),
    )];
    let config = TransportConfig {
        limits: support::limits(),
        ..TransportConfig::with_listeners(listeners)
    };
    let bound = Transports::new(config).bind().await.unwrap();
    let server = bound.handle().local_addr(Transport::Udp, false).unwrap();
    let engine = pbx_sip_engine::Endpoint::new(pbx_sip_engine::Config::default(), 7);
    let endpoint = Endpoint::new(bound, engine, FlushingTu::default()).spawn();
    let handle = endpoint.handle();

    let phone = tokio::net::UdpSocket::bind((support::V4, 0)).await.unwrap();
    for _ in 0..3 {
        let response = support::udp_transaction(&phone, server, "OPTIONS").await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    let (tx, rx) = oneshot::channel();
    handle
        .execute(move |tu: &mut FlushingTu, _ctx| {
            let _ = tx.send((tu.unflushed, tu.flushed.clone()));
        })
        .await
        .unwrap();
    let (unflushed, flushed) = tokio::time::timeout(Duration::from_secs(5), rx)
        .await
        .unwrap()
        .unwrap();
    // Every answer was seen by `before_send` in the step that produced it, once. (That the
    // call comes before the step's sends is the order of `Endpoint::pump`.)
    assert_eq!(flushed, [1, 1, 1]);
    assert_eq!(unflushed, 0);
    endpoint.shutdown().await;
}
