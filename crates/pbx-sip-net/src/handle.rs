//! Handles to a running endpoint: commands, shutdown, liveness.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::endpoint::{Command, EndpointError};
use crate::transports::TransportHandle;
use crate::tu::{Context, TransactionUser};

/// A spawned endpoint.
#[derive(Debug)]
pub struct RunningEndpoint<T: TransactionUser> {
    pub(crate) handle: EndpointHandle<T>,
    pub(crate) task: JoinHandle<T>,
}

impl<T: TransactionUser> RunningEndpoint<T> {
    /// A handle to send commands and to shut the endpoint down.
    #[must_use]
    pub fn handle(&self) -> EndpointHandle<T> {
        self.handle.clone()
    }

    /// Whether the driver task is still running (it ends only on shutdown, or on a panic).
    #[must_use]
    pub fn is_running(&self) -> bool {
        !self.task.is_finished()
    }

    /// Shut down gracefully and wait for the driver; returns the TU (`None` if the driver
    /// panicked).
    pub async fn shutdown(self) -> Option<T> {
        self.handle.shutdown();
        self.task.await.ok()
    }
}

/// Cloneable handle to a running endpoint.
pub struct EndpointHandle<T: TransactionUser> {
    pub(crate) panics: Arc<AtomicU64>,
    pub(crate) commands: mpsc::Sender<Command<T>>,
    pub(crate) shutdown: CancellationToken,
    pub(crate) transports: TransportHandle,
}

impl<T: TransactionUser> Clone for EndpointHandle<T> {
    fn clone(&self) -> Self {
        Self {
            panics: Arc::clone(&self.panics),
            commands: self.commands.clone(),
            shutdown: self.shutdown.clone(),
            transports: self.transports.clone(),
        }
    }
}

impl<T: TransactionUser> std::fmt::Debug for EndpointHandle<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EndpointHandle")
            .field("transports", &self.transports)
            .finish_non_exhaustive()
    }
}

impl<T: TransactionUser> EndpointHandle<T> {
    /// Run `command` on the driver task (waits while the command queue is full).
    ///
    /// # Errors
    /// [`EndpointError::Stopped`] when the endpoint has stopped.
    pub async fn execute(
        &self,
        command: impl FnOnce(&mut T, &mut Context<'_>) + Send + 'static,
    ) -> Result<(), EndpointError> {
        self.commands
            .send(Box::new(command))
            .await
            .map_err(|_| EndpointError::Stopped)
    }

    /// Run `command` on the driver task if the queue has room.
    ///
    /// # Errors
    /// [`EndpointError::Busy`] when the queue is full, `Stopped` when the endpoint stopped.
    pub fn try_execute(
        &self,
        command: impl FnOnce(&mut T, &mut Context<'_>) + Send + 'static,
    ) -> Result<(), EndpointError> {
        self.commands
            .try_send(Box::new(command))
            .map_err(|error| match error {
                mpsc::error::TrySendError::Full(_) => EndpointError::Busy,
                mpsc::error::TrySendError::Closed(_) => EndpointError::Stopped,
            })
    }

    /// Start a graceful shutdown: stop accepting connections, answer new requests 503, let
    /// live transactions finish within `Limits::shutdown_grace`, then close everything.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }

    /// Received messages dropped because the engine panicked on them (each one is a bug to
    /// fix in the sans-IO crates; the driver survives it).
    #[must_use]
    pub fn engine_panics(&self) -> u64 {
        self.panics.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The transports.
    #[must_use]
    pub fn transports(&self) -> &TransportHandle {
        &self.transports
    }
}
