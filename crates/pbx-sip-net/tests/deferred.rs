//! A TU that answers later through the command queue; when the request's connection is gone
//! by then, the response goes over a new connection to the Via's sent-by (RFC 3261 §18.2.2).

use std::net::SocketAddr;
use std::time::Duration;

use pbx_sip::StatusCode;
use pbx_sip_engine::{AcceptedTransaction, Event, Incoming};
use pbx_sip_net::{
    Context, Endpoint, ListenerConfig, TransactionUser, Transport, TransportConfig, Transports,
};
use tokio::sync::oneshot;

use crate::support;

/// Accepts every request and answers nothing until told to.
#[derive(Debug, Default)]
struct DeferringTu {
    pending: Vec<AcceptedTransaction>,
}

impl TransactionUser for DeferringTu {
    fn on_incoming(&mut self, ctx: &mut Context<'_>, incoming: Incoming) {
        let now = ctx.now();
        if let Ok(transaction) = ctx.engine().accept(now, incoming) {
            self.pending.push(transaction);
        }
    }

    fn on_event(&mut self, _ctx: &mut Context<'_>, _event: Event) {}
}

#[tokio::test]
async fn late_response_reconnects_to_via_sent_by() {
    let listeners = vec![ListenerConfig::new(
        Transport::Tcp,
        SocketAddr::from((support::V4, 0)),
    )];
    let config = TransportConfig {
        limits: support::limits(),
        ..TransportConfig::with_listeners(listeners)
    };
    let bound = Transports::new(config).bind().await.unwrap();
    let transports = bound.handle();
    let engine = pbx_sip_engine::Endpoint::new(pbx_sip_engine::Config::default(), 42);
    let endpoint = Endpoint::new(bound, engine, DeferringTu::default()).spawn();
    let handle = endpoint.handle();
    let server = transports.local_addr(Transport::Tcp, false).unwrap();

    // The "phone" listens on its sent-by port and sends from an ephemeral one.
    let phone = tokio::net::TcpListener::bind((support::V4, 0))
        .await
        .unwrap();
    let sent_by = phone.local_addr().unwrap();
    let mut client = support::tcp_client(server).await;
    let (text, call_id) = support::request("OPTIONS", Transport::Tcp, sent_by, server, false);
    client.send(text.as_bytes()).await;

    // Wait until the TU holds the transaction, then lose the connection.
    let mut pending = 0;
    for _ in 0..100 {
        let (tx, rx) = oneshot::channel();
        handle
            .execute(move |tu: &mut DeferringTu, _ctx| {
                let _ = tx.send(tu.pending.len());
            })
            .await
            .unwrap();
        pending = rx.await.unwrap();
        if pending == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(pending, 1, "request accepted");
    drop(client);
    for _ in 0..100 {
        if transports.stats().open_connections == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(transports.stats().open_connections, 0);

    handle
        .execute(|tu: &mut DeferringTu, ctx| {
            let now = ctx.now();
            for transaction in tu.pending.drain(..) {
                ctx.engine()
                    .respond(now, transaction, StatusCode::OK)
                    .unwrap();
            }
        })
        .await
        .unwrap();
    let (stream, _) = tokio::time::timeout(Duration::from_secs(5), phone.accept())
        .await
        .unwrap()
        .unwrap();
    let mut phone_side = support::StreamClient::new(stream);
    let bytes = phone_side
        .next_message(Duration::from_secs(5))
        .await
        .expect("late response");
    assert_eq!(
        support::check_response(bytes, &call_id, "OPTIONS")
            .status()
            .0,
        200
    );
    assert!(endpoint.shutdown().await.is_some());
}
