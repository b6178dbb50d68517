//! Load-robust cross-check of the criterion figures: per-operation **thread CPU time**
//! (`CLOCK_THREAD_CPUTIME_ID`), pbx-sip and rsipstack interleaved round by round, median of
//! the rounds. On a shared machine wall-clock medians include time the thread was not
//! running; CPU time does not (cache and SMT contention still show).
//!
//! `cargo run --release --bin cpu_time [ROUNDS]` (default 21 rounds of about 40 ms each).

use std::hint::black_box;

use bytes::Bytes;
use parser_compare::{CASES, pbx_side, rsip_side};

fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_THREAD_CPUTIME_ID is supported on
    // Linux, and the return value is checked.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// CPU nanoseconds per call of `f` over `iters` calls.
fn per_op(iters: u32, f: &mut dyn FnMut()) -> f64 {
    let t0 = thread_cpu_ns();
    for _ in 0..iters {
        f();
    }
    (thread_cpu_ns() - t0) as f64 / f64::from(iters)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

type Op<'a> = Box<dyn FnMut() + 'a>;

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(21);
    println!("| benchmark | pbx-sip (µs CPU) | rsipstack (µs CPU) | rsipstack / pbx-sip |");
    println!("|---|---|---|---|");
    for (name, bytes) in CASES {
        let ops: [(&str, Op<'_>, Op<'_>); 2] = [
            (
                "parse_typed",
                Box::new(|| {
                    let _ = black_box(pbx_side::parse_typed(black_box(Bytes::from_static(bytes))));
                }),
                Box::new(|| {
                    let _ = black_box(rsip_side::parse_typed(black_box(bytes)));
                }),
            ),
            (
                "parse_print",
                Box::new(|| {
                    let _ = black_box(pbx_side::parse_print(black_box(Bytes::from_static(bytes))));
                }),
                Box::new(|| {
                    let _ = black_box(rsip_side::parse_print(black_box(bytes)));
                }),
            ),
        ];
        for (op, mut pbx, mut rsip) in ops {
            // Calibrate to about 40 ms per round for the slower side.
            let probe = per_op(2_000, &mut *rsip).max(per_op(2_000, &mut *pbx));
            let iters = ((40_000_000.0 / probe) as u32).max(1_000);
            let (mut a, mut b) = (Vec::new(), Vec::new());
            for _ in 0..rounds {
                a.push(per_op(iters, &mut *pbx));
                b.push(per_op(iters, &mut *rsip));
            }
            let (a, b) = (median(a) / 1000.0, median(b) / 1000.0);
            println!("| {name}/{op} | {a:.3} | {b:.3} | {:.2}× |", b / a);
        }
    }
}
