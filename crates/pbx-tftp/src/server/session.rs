//! One transfer task: open, bind the ephemeral socket, run the state machine, report.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::net::UdpSocket;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;

use super::{FileSource, Shared, TftpRefusal, TransferEvent, TransferResult};
use crate::proto::packet::encode_error;
use crate::proto::{ErrorCode, Handled, Request, Transfer};

/// Removes the peer from the active set and releases the slot however the task ends.
struct SlotGuard<S: FileSource> {
    shared: Arc<Shared<S>>,
    peer: SocketAddr,
    _permit: OwnedSemaphorePermit,
}

impl<S: FileSource> Drop for SlotGuard<S> {
    fn drop(&mut self) {
        self.shared.lock_peers().remove(&self.peer);
        self.shared.stats.active.fetch_sub(1, Ordering::Relaxed);
    }
}

pub(super) async fn run<S: FileSource>(
    shared: Arc<Shared<S>>,
    request: Request,
    peer: SocketAddr,
    permit: OwnedSemaphorePermit,
) {
    let started = Instant::now();
    let guard = SlotGuard {
        shared: Arc::clone(&shared),
        peer,
        _permit: permit,
    };
    let (result, bytes, retransmissions) = serve(&shared, &request, peer).await;
    let counter = match result {
        TransferResult::Completed => &shared.stats.completed,
        TransferResult::Failed(_) | TransferResult::SocketUnavailable => &shared.stats.failed,
        _ => &shared.stats.refused,
    };
    counter.fetch_add(1, Ordering::Relaxed);
    shared
        .stats
        .retransmissions
        .fetch_add(retransmissions, Ordering::Relaxed);
    drop(guard);
    tracing::debug!(%peer, path = %request.path, bytes, ?result, "tftp transfer ended");
    shared.emit(TransferEvent {
        peer,
        path: request.path,
        mode: request.mode,
        bytes,
        retransmissions,
        duration: started.elapsed(),
        result,
    });
}

async fn serve<S: FileSource>(
    shared: &Shared<S>,
    request: &Request,
    peer: SocketAddr,
) -> (TransferResult, u64, u64) {
    let config = &shared.config;
    let opened = tokio::time::timeout(
        config.open_timeout,
        shared.source.open(peer, &request.path, request.mode),
    )
    .await;
    let Ok(socket) = UdpSocket::bind(SocketAddr::new(shared.local.ip(), 0)).await else {
        return (TransferResult::SocketUnavailable, 0, 0);
    };
    let content = match opened {
        Err(_elapsed) => {
            let refusal = TftpRefusal::new(ErrorCode::Undefined, "Timed out opening file");
            send_error(&socket, peer, &refusal).await;
            return (TransferResult::OpenTimedOut, 0, 0);
        }
        Ok(Err(refusal)) => {
            send_error(&socket, peer, &refusal).await;
            return (TransferResult::Refused(refusal), 0, 0);
        }
        Ok(Ok(content)) if content.len() > config.max_file_size => {
            let refusal = TftpRefusal::new(ErrorCode::DiskFull, "File too large");
            send_error(&socket, peer, &refusal).await;
            return (TransferResult::TooLarge, 0, 0);
        }
        Ok(Ok(content)) => content,
    };
    let mut transfer = Transfer::new(peer, request, content, &config.transfer, now());
    drive(&socket, &mut transfer).await;
    let result = match transfer.outcome() {
        Some(Ok(())) => TransferResult::Completed,
        Some(Err(error)) => TransferResult::Failed(error.clone()),
        None => TransferResult::Failed(crate::proto::TransferError::TimedOut),
    };
    (
        result,
        transfer.bytes_acknowledged(),
        transfer.retransmissions(),
    )
}

async fn drive(socket: &UdpSocket, transfer: &mut Transfer) {
    let peer = transfer.peer();
    let mut out = Vec::with_capacity(usize::from(transfer.negotiated().blksize) + 4);
    let mut input = [0u8; 1024];
    loop {
        while transfer.poll_transmit(&mut out) {
            // A failed send is like a lost packet: the retransmission timer recovers it.
            let _ = socket.send_to(&out, peer).await;
        }
        let Some(deadline) = transfer.poll_timeout() else {
            return;
        };
        tokio::select! {
            received = socket.recv_from(&mut input) => {
                let Ok((len, from)) = received else { continue };
                if let Handled::Stranger(reply) = transfer.handle_packet(now(), from, &input[..len]) {
                    let _ = socket.try_send_to(&reply, from);
                }
            }
            () = tokio::time::sleep_until(Instant::from_std(deadline)) => {
                transfer.handle_timeout(now());
            }
        }
    }
}

async fn send_error(socket: &UdpSocket, peer: SocketAddr, refusal: &TftpRefusal) {
    let mut packet = Vec::with_capacity(8 + refusal.message.len());
    encode_error(&mut packet, refusal.code, &refusal.message);
    let _ = socket.send_to(&packet, peer).await;
}

fn now() -> std::time::Instant {
    Instant::now().into_std()
}
