//! CloudPBX assembly: configuration, and the wiring of transports, engines, store and API into
//! one process ([`serve::Server`]) that also boots in-process for tests.

pub mod calls;
pub mod cdr;
pub mod config;
pub mod dns;
pub mod guard;
mod limits;
pub mod provisioning;
pub mod serve;
pub mod sip;
pub mod trunks;
mod writer;
