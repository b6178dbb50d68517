//! Test support for CloudPBX crates: the conformance fixture loader, a virtual clock and an
//! in-memory network for driving sans-IO engines, and SIP message builders.
//!
//! Only test code and benchmarks depend on this crate.
//!
//! - [`clock::VirtualClock`]: an `Instant` base plus an offset the test moves; sans-IO crates
//!   take `now` from it instead of reading the real clock.
//! - [`network::Network`] / [`network::Pair`]: endpoints implementing [`network::Node`] joined
//!   by an in-memory datagram network that drops, duplicates or delays on request and jumps the
//!   clock to the next deadline, so timer paths run in milliseconds.
//! - `postgres::FreshDatabase` (feature `postgres`): a throw-away PostgreSQL database per
//!   test, skipped with a notice when the server is unreachable (a failure under `CI=true`).
//! - [`alloc::Counting`]: a counting global allocator (live heap bytes, allocations) for
//!   memory tests.
//! - `dns::DnsServer` (feature `dns`): a DNS responder on loopback answering NAPTR, SRV, A
//!   and AAAA queries from a table the test edits (RFC 3263 resolution tests).

pub mod alloc;
pub mod clock;
pub mod conformance;
#[cfg(feature = "dns")]
pub mod dns;
pub mod network;
#[cfg(feature = "postgres")]
pub mod postgres;

pub use clock::VirtualClock;
pub use network::{Datagram, Network, Node, Outgoing, Pair};
