//! What the server asks its owner: the file content for a peer and path, and what it reports.

use std::borrow::Cow;
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;

use crate::proto::{ErrorCode, Mode, TransferError};

/// The decision on a read request: the owner resolves tenant, whitelist and template here.
///
/// `open` runs in the transfer's own task (the listener never waits for it) under the server's
/// `open_timeout`. Return the whole file as [`Bytes`]; it is shared, not copied, by the
/// transfer (octet mode), so a cached rendering can serve many phones at once.
pub trait FileSource: Send + Sync + 'static {
    /// Returns the content for `path` (already sanitised: relative, no `..`) as asked by `peer`.
    fn open(
        &self,
        peer: SocketAddr,
        path: &str,
        mode: Mode,
    ) -> impl Future<Output = Result<Bytes, TftpRefusal>> + Send;
}

/// A refusal sent to the client as a TFTP ERROR packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TftpRefusal {
    /// Error code to send.
    pub code: ErrorCode,
    /// Message to send (keep it free of internal detail).
    pub message: Cow<'static, str>,
}

impl TftpRefusal {
    /// A refusal with any code and message.
    #[must_use]
    pub fn new(code: ErrorCode, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// ERROR 1 "File not found".
    #[must_use]
    pub fn not_found() -> Self {
        Self::new(ErrorCode::FileNotFound, "File not found")
    }

    /// ERROR 2 "Access violation" (use it for a source outside the tenant's whitelist too, so
    /// a prober learns nothing about which files exist).
    #[must_use]
    pub fn access_violation() -> Self {
        Self::new(ErrorCode::AccessViolation, "Access violation")
    }
}

/// A fixed in-memory file set; handy for tests, benchmarks and static firmware directories.
#[derive(Debug, Clone, Default)]
pub struct MemorySource {
    files: HashMap<String, Bytes>,
}

impl MemorySource {
    /// An empty set.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a file under a relative path.
    #[must_use]
    pub fn with_file(mut self, path: impl Into<String>, content: impl Into<Bytes>) -> Self {
        self.files.insert(path.into(), content.into());
        self
    }
}

impl FileSource for MemorySource {
    fn open(
        &self,
        _peer: SocketAddr,
        path: &str,
        _mode: Mode,
    ) -> impl Future<Output = Result<Bytes, TftpRefusal>> + Send {
        let found = self
            .files
            .get(path)
            .cloned()
            .ok_or_else(TftpRefusal::not_found);
        std::future::ready(found)
    }
}

/// How one request ended; delivered to the event callback once per request that reached a
/// transfer task (refusals included), so provisioning can log fetches per device.
#[derive(Debug, Clone)]
pub struct TransferEvent {
    /// The client's address and port.
    pub peer: SocketAddr,
    /// The sanitised path.
    pub path: String,
    /// The mode.
    pub mode: Mode,
    /// On-the-wire bytes the client acknowledged.
    pub bytes: u64,
    /// Timeout-driven resends.
    pub retransmissions: u64,
    /// From request to end.
    pub duration: Duration,
    /// How it ended.
    pub result: TransferResult,
}

/// The end of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransferResult {
    /// Every block was acknowledged.
    Completed,
    /// The file source refused; the client got this error.
    Refused(TftpRefusal),
    /// A write request, refused with ERROR 2 (uploads are not accepted, see crate docs).
    WriteRefused,
    /// The file source did not answer within `open_timeout`; the client got ERROR 0.
    OpenTimedOut,
    /// The content exceeds `max_file_size`; the client got ERROR 3.
    TooLarge,
    /// The transfer started but did not finish.
    Failed(TransferError),
    /// No ephemeral socket could be bound for the transfer.
    SocketUnavailable,
}
