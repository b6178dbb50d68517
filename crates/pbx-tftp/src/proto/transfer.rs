//! The read-transfer state machine (RFC 1350 + RFC 2347/2348/2349/7440 on the sending side).
//!
//! Drive it like this (the order matters):
//! 1. [`Transfer::new`] once the caller has accepted a [`Request`] and has the content.
//! 2. Drain [`Transfer::poll_transmit`] and send every packet to [`Transfer::peer`].
//! 3. Wait for a datagram or for [`Transfer::poll_timeout`], whichever comes first; feed it to
//!    [`Transfer::handle_packet`] (with its source address) or [`Transfer::handle_timeout`].
//!    A packet from another address answers [`Handled::Stranger`] with an ERROR 5 to send back
//!    to that address; the transfer is not disturbed.
//! 4. Repeat from 2 until [`Transfer::outcome`] is `Some` and `poll_transmit` returns `false`.
//!
//! Retransmission happens only on timeout, never on a duplicate ACK (RFC 1123 §4.2.3.1, the
//! Sorcerer's Apprentice bug). An ACK for a block inside the current window moves the window to
//! start after it (RFC 7440 §4), so a lost block is resent from there. Block numbers wrap from
//! 65535 to 0, so files larger than 65535 blocks transfer.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use thiserror::Error;

use super::netascii;
use super::packet::{ErrorCode, Packet, encode_data, encode_error, encode_oack};
use super::request::{Mode, Request};

/// Limits and defaults that bound what a client may negotiate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransferConfig {
    /// Largest block size granted; larger requests are clamped (e.g. 1468 to stay under a
    /// 1500-byte path MTU with IPv4/UDP/TFTP headers).
    pub max_blksize: u16,
    /// Largest window granted (RFC 7440); larger requests are clamped.
    pub max_windowsize: u16,
    /// Retransmission timeout when the client does not negotiate `timeout`.
    pub default_timeout: Duration,
    /// Retransmissions of the same window (or OACK) before giving up.
    pub max_retries: u32,
}

impl Default for TransferConfig {
    fn default() -> Self {
        Self {
            max_blksize: 1468,
            max_windowsize: 64,
            default_timeout: Duration::from_secs(1),
            max_retries: 5,
        }
    }
}

/// The parameters in force for a transfer after negotiation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    /// Bytes per DATA block.
    pub blksize: u16,
    /// Blocks sent before waiting for an ACK.
    pub windowsize: u16,
    /// Retransmission timeout.
    pub timeout: Duration,
    /// Size announced in the OACK (the on-the-wire size, translated for netascii), if asked.
    pub tsize: Option<u64>,
    /// Whether an OACK was sent (any option accepted).
    pub oack: bool,
}

/// Why a transfer ended without success.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TransferError {
    /// The peer did not acknowledge after all retransmissions.
    #[error("timed out after retransmissions")]
    TimedOut,
    /// The peer sent an ERROR packet (code 8 if it refused the OACK).
    #[error("peer error {code:?}: {message}")]
    PeerError {
        /// Code the peer sent.
        code: ErrorCode,
        /// Its message, lossily decoded.
        message: String,
    },
    /// The peer sent a packet that has no place in a read transfer (DATA, a request, OACK).
    #[error("illegal packet from peer")]
    IllegalPacket,
}

/// What [`Transfer::handle_packet`] did with a datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "a Stranger reply must be sent back to the stranger"]
pub enum Handled {
    /// The datagram advanced or ended the transfer; poll for transmits.
    Progress,
    /// Duplicate, stale or malformed; nothing to do (never a retransmit trigger).
    Ignored,
    /// From another address/port than the peer: send these bytes (ERROR 5) to that source.
    Stranger(Vec<u8>),
}

/// One read transfer to one peer.
#[derive(Debug)]
pub struct Transfer {
    peer: SocketAddr,
    content: Bytes,
    negotiated: Negotiated,
    max_retries: u32,
    /// Encoded OACK while it awaits ACK 0; `None` once acknowledged or when not used.
    oack: Option<Vec<u8>>,
    send_oack: bool,
    total_blocks: u64,
    acked: u64,
    next_send: u64,
    window_end: u64,
    deadline: Option<Instant>,
    retries: u32,
    retransmissions: u64,
    outcome: Option<Result<(), TransferError>>,
    pending_error: Option<Vec<u8>>,
}

impl Transfer {
    /// Starts sending `content` to `peer` as `request` asked, within `config`'s limits. Only
    /// reads exist: the request's kind is not consulted (the driver refuses writes).
    ///
    /// `content` is shared, not copied, in octet mode; netascii builds its translated copy.
    pub fn new(
        peer: SocketAddr,
        request: &Request,
        content: Bytes,
        config: &TransferConfig,
        now: Instant,
    ) -> Self {
        let content = match request.mode {
            Mode::Octet => content,
            Mode::Netascii => Bytes::from(netascii::encode(&content)),
        };
        let asked = request.options;
        let blksize = asked.blksize.map(|b| b.min(config.max_blksize.max(8)));
        let windowsize = asked
            .windowsize
            .map(|w| w.min(config.max_windowsize.max(1)));
        let tsize = asked.tsize.then_some(content.len() as u64);
        let mut accepted: Vec<(&str, String)> = Vec::new();
        if let Some(value) = blksize {
            accepted.push(("blksize", value.to_string()));
        }
        if let Some(value) = asked.timeout_secs {
            accepted.push(("timeout", value.to_string()));
        }
        if let Some(value) = tsize {
            accepted.push(("tsize", value.to_string()));
        }
        if let Some(value) = windowsize {
            accepted.push(("windowsize", value.to_string()));
        }
        let oack = (!accepted.is_empty()).then(|| {
            let mut buf = Vec::with_capacity(64);
            encode_oack(&mut buf, &accepted);
            buf
        });
        let negotiated = Negotiated {
            blksize: blksize.unwrap_or(512),
            windowsize: windowsize.unwrap_or(1),
            timeout: asked.timeout_secs.map_or(config.default_timeout, |secs| {
                Duration::from_secs(u64::from(secs))
            }),
            tsize,
            oack: oack.is_some(),
        };
        let total_blocks = content.len() as u64 / u64::from(negotiated.blksize) + 1;
        let mut transfer = Self {
            peer,
            content,
            negotiated,
            max_retries: config.max_retries,
            send_oack: oack.is_some(),
            oack,
            total_blocks,
            acked: 0,
            next_send: 1,
            window_end: 0,
            deadline: Some(now + negotiated.timeout),
            retries: 0,
            retransmissions: 0,
            outcome: None,
            pending_error: None,
        };
        if transfer.oack.is_none() {
            transfer.open_window(now);
        }
        transfer
    }

    /// Writes the next packet to send into `buf` (cleared first); `false` when nothing is due.
    pub fn poll_transmit(&mut self, buf: &mut Vec<u8>) -> bool {
        buf.clear();
        if let Some(error) = self.pending_error.take() {
            buf.extend_from_slice(&error);
            return true;
        }
        if self.outcome.is_some() {
            return false;
        }
        if let Some(oack) = &self.oack {
            if self.send_oack {
                self.send_oack = false;
                buf.extend_from_slice(oack);
                return true;
            }
            return false;
        }
        if self.next_send > self.window_end {
            return false;
        }
        let block = self.next_send;
        self.next_send += 1;
        let blksize = usize::from(self.negotiated.blksize);
        let start = usize::try_from(block - 1)
            .ok()
            .and_then(|index| index.checked_mul(blksize))
            .map_or(self.content.len(), |start| start.min(self.content.len()));
        let end = start.saturating_add(blksize).min(self.content.len());
        // Truncation is the point: block numbers wrap at 65536 (rollover to 0).
        #[allow(clippy::cast_possible_truncation)]
        encode_data(buf, block as u16, &self.content[start..end]);
        true
    }

    /// When [`Transfer::handle_timeout`] must be called next, if at all.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.outcome.is_some() {
            None
        } else {
            self.deadline
        }
    }

    /// Feeds a datagram that arrived on this transfer's socket from `from`.
    pub fn handle_packet(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) -> Handled {
        if from != self.peer {
            let mut reply = Vec::with_capacity(32);
            encode_error(
                &mut reply,
                ErrorCode::UnknownTransferId,
                "Unknown transfer ID",
            );
            return Handled::Stranger(reply);
        }
        if self.outcome.is_some() {
            return Handled::Ignored;
        }
        match Packet::parse(bytes) {
            Ok(Packet::Ack { block }) => self.on_ack(now, block),
            Ok(Packet::Error { code, message }) => {
                let message = String::from_utf8_lossy(message).into_owned();
                self.finish(Err(TransferError::PeerError { code, message }));
                Handled::Progress
            }
            Ok(_) => {
                let mut error = Vec::with_capacity(32);
                encode_error(
                    &mut error,
                    ErrorCode::IllegalOperation,
                    "Illegal TFTP operation",
                );
                self.pending_error = Some(error);
                self.finish(Err(TransferError::IllegalPacket));
                Handled::Progress
            }
            Err(_) => Handled::Ignored,
        }
    }

    /// Handles the deadline from [`Transfer::poll_timeout`]: resend the OACK or the window, or
    /// give up (queueing an ERROR 0 for the peer) once the retries are spent.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.outcome.is_some() || self.deadline.is_none_or(|deadline| now < deadline) {
            return;
        }
        self.retries += 1;
        if self.retries > self.max_retries {
            let mut error = Vec::with_capacity(32);
            encode_error(&mut error, ErrorCode::Undefined, "Transfer timed out");
            self.pending_error = Some(error);
            self.finish(Err(TransferError::TimedOut));
            return;
        }
        self.retransmissions += 1;
        if self.oack.is_some() {
            self.send_oack = true;
            self.deadline = Some(now + self.negotiated.timeout);
        } else {
            self.open_window(now);
        }
    }

    /// The peer's address and port (its TID).
    #[must_use]
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// The negotiated parameters.
    #[must_use]
    pub fn negotiated(&self) -> Negotiated {
        self.negotiated
    }

    /// `Some` once the transfer has ended.
    #[must_use]
    pub fn outcome(&self) -> Option<&Result<(), TransferError>> {
        self.outcome.as_ref()
    }

    /// Bytes the peer has acknowledged (on-the-wire bytes).
    #[must_use]
    pub fn bytes_acknowledged(&self) -> u64 {
        (self.acked * u64::from(self.negotiated.blksize)).min(self.content.len() as u64)
    }

    /// Number of timeouts that led to a resend.
    #[must_use]
    pub fn retransmissions(&self) -> u64 {
        self.retransmissions
    }

    fn on_ack(&mut self, now: Instant, block: u16) -> Handled {
        if self.oack.is_some() {
            if block != 0 {
                return Handled::Ignored;
            }
            self.oack = None;
            self.send_oack = false;
            self.retries = 0;
            self.open_window(now);
            return Handled::Progress;
        }
        // Map the 16-bit number into (acked, window_end]; the window is at most 65535 blocks
        // ahead, so the distance is unambiguous.
        #[allow(clippy::cast_possible_truncation)] // wrapping block arithmetic
        let distance = u64::from(block.wrapping_sub(self.acked as u16));
        let block = self.acked + distance;
        if distance == 0 || block > self.window_end {
            return Handled::Ignored;
        }
        self.acked = block;
        self.retries = 0;
        if self.acked == self.total_blocks {
            self.finish(Ok(()));
        } else {
            self.open_window(now);
        }
        Handled::Progress
    }

    fn open_window(&mut self, now: Instant) {
        self.next_send = self.acked + 1;
        self.window_end =
            (self.acked + u64::from(self.negotiated.windowsize)).min(self.total_blocks);
        self.deadline = Some(now + self.negotiated.timeout);
    }

    fn finish(&mut self, outcome: Result<(), TransferError>) {
        self.outcome = Some(outcome);
        self.deadline = None;
        self.oack = None;
    }
}
