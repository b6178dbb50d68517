//! TFTP server for phone provisioning: RFC 1350 reads with option negotiation (RFC 2347), block
//! size (RFC 2348), timeout and transfer size (RFC 2349) and windows (RFC 7440).
//!
//! Two layers:
//!
//! * [`proto`] is sans-IO. [`proto::Request::parse`] turns a datagram from the request port into
//!   an admission value (or the error to answer). Once the caller has decided and has the file,
//!   [`proto::Transfer`] runs the read: `poll_transmit` → send, then `handle_packet` /
//!   `handle_timeout` with `now` passed in, `poll_timeout` for the next deadline. It never reads
//!   the clock or touches a socket, so its timers are tested with a virtual clock.
//! * [`server`] drives it on tokio: [`server::TftpServer::bind`] a request socket, give it a
//!   [`server::FileSource`] (the owner's decision per peer and path: tenant, whitelist,
//!   rendering), optionally an admission hook for bans and an event hook for per-fetch logs,
//!   then `run()` it in a task. Each transfer gets its own task and ephemeral socket.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use pbx_tftp::server::{MemorySource, ServerConfig, TftpServer};
//! let files = MemorySource::new().with_file("acme/000000000000.cfg", "<config/>");
//! let server = TftpServer::bind("127.0.0.1:0".parse().unwrap(), ServerConfig::default(), files)
//!     .await?
//!     .with_admission(|peer| !peer.ip().is_unspecified())
//!     .with_events(|event| tracing::info!(peer = %event.peer, path = %event.path, "fetch"));
//! tokio::spawn(server.run());
//! # Ok(()) }
//! ```
//!
//! Policy choices:
//! * Write requests are refused with ERROR 2 "Access violation" (the issue allows refusing
//!   cleanly). Polycom log/override uploads are not accepted over TFTP; phones boot without
//!   them. An upload sink (size-limited per-device area) would need a receive state machine.
//! * Beyond `max_transfers`, a read request is dropped silently by default
//!   ([`server::BusyPolicy::Drop`]): the phone retransmits its RRQ and is served later, while
//!   an ERROR would make it give up provisioning. [`server::BusyPolicy::Error`] answers ERROR 0.
//! * A retransmitted RRQ from a peer whose transfer is running is ignored (no second TID).
//! * Unknown options and unusable values (`blksize disable`, `timeout 0`) are left out of the
//!   OACK rather than refused; `blksize` and `windowsize` are clamped to the configured maxima.
//! * Netascii content is translated once when the transfer starts; `tsize` is the translated
//!   size.
//! * Content is [`bytes::Bytes`], shared between concurrent transfers of the same file; each
//!   running transfer holds about 4.4 KiB of user-space memory (`benches/boot_storm.rs`).
//! * Opens run concurrently in the transfer tasks, under `open_timeout`; `bench/tftp-compare`
//!   shows why (async-tftp serialises opens behind a mutex).

pub mod proto;
pub mod server;
