//! The sans-IO TFTP protocol: codec, request admission and the read-transfer state machine.
//!
//! Nothing in this module reads a clock, opens a socket or spawns a task: time comes in as
//! `now: Instant` and packets go in and out as byte slices.

pub mod netascii;
pub mod packet;
pub mod request;
pub mod transfer;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod transfer_tests;

pub use packet::{ErrorCode, Packet, PacketError};
pub use request::{Mode, Request, RequestError, RequestKind, RequestedOptions, sanitize_path};
pub use transfer::{Handled, Negotiated, Transfer, TransferConfig, TransferError};
