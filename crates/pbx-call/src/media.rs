//! The boundary to the media relay: the engine asks for a session with two sides and tells it
//! where each side's peer said it receives. The relay itself (ports, latching, forwarding)
//! lives in the driver's media crate.

use std::fmt;
use std::net::SocketAddr;

use serde::Serialize;

/// A side of a relayed call: A faces the caller, B the callee.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Side {
    /// The caller's side.
    A,
    /// The callee's side.
    B,
}

impl Side {
    /// The other side.
    pub fn other(self) -> Side {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }
}

/// Counters of one direction of a relayed stream, for the CDR.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StreamStats {
    /// RTP packets received from this side's peer (and relayed to the other).
    pub packets: u64,
    /// Payload bytes received.
    pub bytes: u64,
    /// Packets lost (sequence gaps).
    pub lost: u64,
    /// Interarrival jitter in microseconds (RFC 3550 estimate).
    pub jitter_us: u64,
}

/// One relay session (a port pair per side), released when dropped.
pub trait MediaSession: Send + fmt::Debug {
    /// Where the side's peer must send (our address and port advertised in SDP to that side).
    fn local(&self, side: Side) -> SocketAddr;
    /// Where the side's peer said it receives RTP (and RTCP); latching may override it.
    fn set_remote(&mut self, side: Side, rtp: SocketAddr, rtcp: Option<SocketAddr>);
    /// Both sides on hold or back (the relay stops expecting media both ways while held).
    fn set_hold(&mut self, held: bool);
    /// Counters of what each side sent, `[A, B]`.
    fn stats(&self) -> [StreamStats; 2];
}

/// No relay ports are free (the caller gets 503).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no media relay ports available")]
pub struct MediaUnavailable;

/// Allocates relay sessions; `label` names the call in the relay's logs and events.
pub trait MediaAllocator {
    /// A new session with both sides allocated.
    fn allocate(&mut self, label: &str) -> Result<Box<dyn MediaSession>, MediaUnavailable>;
}
