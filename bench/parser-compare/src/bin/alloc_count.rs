//! Heap allocations per parse, for both parsers on both messages.
//!
//! `cargo run --release --bin alloc_count` prints one table row per (message, parser,
//! operation). A counting global allocator wraps the system allocator; each operation runs
//! a few times first (lazy statics, first-use growth) and is then counted over 1000 runs.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use parser_compare::{CASES, pbx_side, rsip_side};

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is forwarded unchanged to `System`, which upholds the `GlobalAlloc`
// contract; the counters are plain atomics and do not allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: same layout the caller gave us, forwarded to the system allocator.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with this layout (see `alloc`).
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(new_size as u64, Ordering::Relaxed);
        // SAFETY: `ptr`/`layout` come from this allocator, forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const RUNS: u64 = 1000;

/// (parser, operation, the operation; `true` when it succeeded).
type Row<'a> = (&'static str, &'static str, Box<dyn FnMut() -> bool + 'a>);

/// Average (allocations, bytes) per call of `f`.
fn count(mut f: impl FnMut() -> bool) -> (f64, f64) {
    for _ in 0..10 {
        assert!(f(), "operation failed");
    }
    let a0 = ALLOCS.load(Ordering::Relaxed);
    let b0 = BYTES.load(Ordering::Relaxed);
    for _ in 0..RUNS {
        assert!(f(), "operation failed");
    }
    let a = ALLOCS.load(Ordering::Relaxed) - a0;
    let b = BYTES.load(Ordering::Relaxed) - b0;
    (a as f64 / RUNS as f64, b as f64 / RUNS as f64)
}

fn header_count(bytes: &[u8]) -> usize {
    let head_end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(bytes.len());
    bytes[..head_end].split(|&b| b == b'\n').count() - 1
}

fn main() {
    println!("| message | headers | parser | operation | allocations/op | bytes allocated/op |");
    println!("|---|---|---|---|---|---|");
    for (name, bytes) in CASES {
        let headers = header_count(bytes);
        let rows: [Row<'_>; 6] = [
            (
                "pbx-sip",
                "parse",
                Box::new(|| pbx_sip::Message::parse(Bytes::from_static(bytes)).is_ok()),
            ),
            (
                "pbx-sip",
                "parse_typed",
                Box::new(|| pbx_side::parse_typed(Bytes::from_static(bytes)).is_ok()),
            ),
            (
                "pbx-sip",
                "parse_print",
                Box::new(|| pbx_side::parse_print(Bytes::from_static(bytes)).is_ok()),
            ),
            (
                "rsipstack",
                "parse",
                Box::new(|| rsipstack::sip::parser::parse_message(bytes).is_ok()),
            ),
            (
                "rsipstack",
                "parse_typed",
                Box::new(|| rsip_side::parse_typed(bytes).is_ok()),
            ),
            (
                "rsipstack",
                "parse_print",
                Box::new(|| rsip_side::parse_print(bytes).is_ok()),
            ),
        ];
        for (parser, op, f) in rows {
            let (allocs, size) = count(f);
            println!("| {name} | {headers} | {parser} | {op} | {allocs:.1} | {size:.0} |");
        }
    }

    // Growth with the header count: the INVITE with `extra` more header fields.
    println!();
    println!("| INVITE + extra headers | headers | pbx-sip parse | rsipstack parse |");
    println!("|---|---|---|---|");
    for extra in [0usize, 10, 40] {
        let message = with_extra_headers(parser_compare::messages::INVITE600, extra);
        let headers = header_count(&message);
        let shared = Bytes::from(message.clone());
        let (pbx, _) = count(|| pbx_sip::Message::parse(shared.clone()).is_ok());
        let (rsip, _) = count(|| rsipstack::sip::parser::parse_message(&message).is_ok());
        println!("| +{extra} | {headers} | {pbx:.1} | {rsip:.1} |");
    }
}

/// `bytes` with `extra` `X-Trace-N` header fields inserted before the empty line.
fn with_extra_headers(bytes: &[u8], extra: usize) -> Vec<u8> {
    let head_end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(bytes.len());
    let mut out = bytes[..head_end + 2].to_vec();
    for i in 0..extra {
        out.extend_from_slice(format!("X-Trace-{i}: hop{i}.example.net;id=4711\r\n").as_bytes());
    }
    out.extend_from_slice(&bytes[head_end + 2..]);
    out
}
