//! Source admission: a cheap check run before any byte from a source is parsed.
//!
//! Bans (issue 4) plug in here: a banned source's datagrams are dropped silently and its
//! TCP/TLS connections are closed on accept (and on the next read, if the ban arrives while
//! the connection is open).

use std::fmt;
use std::net::SocketAddr;

use crate::flow::Transport;

/// Decides whether a source may talk to us at all. Called for every UDP datagram and for every
/// accepted connection (and per frame on open connections), so it must be cheap and must not
/// block: look the address up in memory.
pub trait SourceFilter: Send + Sync + 'static {
    /// `true` to let the source in, `false` to drop it before parsing.
    fn admit(&self, remote: SocketAddr, transport: Transport) -> bool;
}

impl<F> SourceFilter for F
where
    F: Fn(SocketAddr, Transport) -> bool + Send + Sync + 'static,
{
    fn admit(&self, remote: SocketAddr, transport: Transport) -> bool {
        self(remote, transport)
    }
}

/// The default filter: admits every source.
#[derive(Debug, Clone, Copy, Default)]
pub struct AdmitAll;

impl SourceFilter for AdmitAll {
    fn admit(&self, _remote: SocketAddr, _transport: Transport) -> bool {
        true
    }
}

/// Debug-printable wrapper so structs holding a filter can derive `Debug`.
pub(crate) struct FilterRef(pub(crate) std::sync::Arc<dyn SourceFilter>);

impl fmt::Debug for FilterRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SourceFilter")
    }
}

impl Clone for FilterRef {
    fn clone(&self) -> Self {
        Self(std::sync::Arc::clone(&self.0))
    }
}
