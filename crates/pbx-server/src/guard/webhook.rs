//! The security webhook: every security event is POSTed as JSON to a configured `http://`
//! URL, from a bounded queue, with retries and exponential back-off.
//!
//! Body: `{"at_ms": …, "tenant": "…"|null, "event": {"type": "source_banned", …}}`. A 2xx
//! answer is a delivery; anything else (or no answer within 5 s) is retried after 1 s, 2 s,
//! 4 s, … up to the configured number of attempts. When the queue is full the new event is
//! dropped and counted (`cloudpbx_guard_webhook_dropped_total`): the store still has it.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Recorded, SecurityGuard, WebhookSettings};

const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// The sending side of the webhook queue.
#[derive(Debug)]
pub(crate) struct Webhook {
    queue: mpsc::Sender<Vec<u8>>,
    guard: Arc<SecurityGuard>,
}

impl Webhook {
    /// Starts the delivery task.
    pub(crate) fn spawn(
        settings: WebhookSettings,
        guard: Arc<SecurityGuard>,
        stop: CancellationToken,
    ) -> Self {
        let (queue, receiver) = mpsc::channel(settings.queue);
        tokio::spawn(deliver_loop(settings, Arc::clone(&guard), receiver, stop));
        Self { queue, guard }
    }

    /// Queues an event (dropped and counted when the queue is full).
    pub(crate) fn offer(&self, recorded: &Recorded) {
        let Ok(body) = serde_json::to_vec(recorded) else {
            return;
        };
        if self.queue.try_send(body).is_err() {
            self.guard.metrics().count_webhook_dropped();
        }
    }
}

async fn deliver_loop(
    settings: WebhookSettings,
    guard: Arc<SecurityGuard>,
    mut receiver: mpsc::Receiver<Vec<u8>>,
    stop: CancellationToken,
) {
    loop {
        let body = tokio::select! {
            body = receiver.recv() => body,
            () = stop.cancelled() => None,
        };
        let Some(body) = body else { break };
        let mut backoff = Duration::from_secs(1);
        let mut delivered = false;
        for attempt in 1..=settings.attempts {
            let ok = tokio::time::timeout(ATTEMPT_TIMEOUT, post(&settings, &body))
                .await
                .unwrap_or(false);
            guard.metrics().count_webhook(ok);
            if ok {
                delivered = true;
                break;
            }
            if attempt < settings.attempts {
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = stop.cancelled() => return,
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
        if !delivered {
            guard.metrics().count_webhook_dropped();
            tracing::warn!(url = %settings.authority, "security webhook: event not delivered");
        }
    }
}

/// One HTTP/1.1 POST; `true` on a 2xx status.
async fn post(settings: &WebhookSettings, body: &[u8]) -> bool {
    let Ok(mut stream) = TcpStream::connect(&settings.authority).await else {
        return false;
    };
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nUser-Agent: cloudpbx-security-webhook\r\nConnection: close\r\n\r\n",
        settings.path,
        settings.authority,
        body.len()
    );
    if stream.write_all(head.as_bytes()).await.is_err() || stream.write_all(body).await.is_err() {
        return false;
    }
    // The status line is all we need: "HTTP/1.1 204 No Content".
    let mut answer = [0u8; 64];
    let mut read = 0;
    while read < 12 {
        match stream.read(&mut answer[read..]).await {
            Ok(0) | Err(_) => break,
            Ok(n) => read += n,
        }
    }
    let line = answer.get(..read).unwrap_or_default();
    line.starts_with(b"HTTP/1.") && line.get(9) == Some(&b'2')
}
