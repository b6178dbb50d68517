//! Bench-only comparison of pbx-sip with rsipstack 0.7.14 on the same bytes.
//!
//! * `benches/compare.rs`: criterion groups `register/*` and `invite600/*`, each with a
//!   `parse_typed` and a `parse_print` function for both parsers.
//! * `src/bin/alloc_count.rs`: heap allocations per parse, counted by a global allocator.
//!
//! Nothing in the product depends on this crate; it is its own Cargo workspace.

pub mod messages;
pub mod pbx_side;
pub mod rsip_side;

/// The messages benchmarked, with their group names.
pub const CASES: [(&str, &[u8]); 3] = [
    ("register", messages::REGISTER),
    ("invite600", messages::INVITE600),
    ("ok200", messages::OK200),
];
