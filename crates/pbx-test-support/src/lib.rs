//! Test support for CloudPBX crates: the conformance fixture loader, a virtual clock and an
//! in-memory network for driving sans-IO engines, and SIP message builders.
//!
//! Only test code and benchmarks depend on this crate.

pub mod clock;
pub mod conformance;
