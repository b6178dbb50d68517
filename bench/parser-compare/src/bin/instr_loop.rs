//! Runs one operation of one parser on one message N times, for instruction counts that do
//! not depend on machine load:
//!
//! ```sh
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/instr_loop pbx invite600 typed 20001
//! ```
//!
//! Run it twice (e.g. 1 and 20001 iterations) and divide the difference of the two
//! "Collected" totals by the difference of the iteration counts: that removes start-up and
//! first-use costs. `scripts` in README.md does exactly that for every case.
//!
//! `instr_loop {pbx|rsip} {register|invite600|ok200} {typed|owned|print} N` (`owned`: pbx-sip
//! through its owned accessors; rsipstack has one kind of typed access, use `typed`)

use std::hint::black_box;
use std::process::ExitCode;

use bytes::Bytes;
use parser_compare::{CASES, pbx_side, rsip_side};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [side, message, op, n] = &args[..] else {
        eprintln!(
            "usage: instr_loop {{pbx|rsip}} {{register|invite600|ok200}} {{typed|owned|print}} N"
        );
        return ExitCode::FAILURE;
    };
    let Some(&(_, bytes)) = CASES.iter().find(|(name, _)| name == message) else {
        eprintln!("unknown message {message}");
        return ExitCode::FAILURE;
    };
    let Ok(n) = n.parse::<u64>() else {
        eprintln!("N must be a number");
        return ExitCode::FAILURE;
    };
    let mut ok = 0u64;
    for _ in 0..n {
        let success = match (side.as_str(), op.as_str()) {
            ("pbx", "typed") => pbx_side::parse_typed(black_box(Bytes::from_static(bytes))).is_ok(),
            ("pbx", "owned") => {
                pbx_side::parse_typed_owned(black_box(Bytes::from_static(bytes))).is_ok()
            }
            ("pbx", "print") => pbx_side::parse_print(black_box(Bytes::from_static(bytes))).is_ok(),
            ("rsip", "typed") => rsip_side::parse_typed(black_box(bytes)).is_ok(),
            ("rsip", "print") => rsip_side::parse_print(black_box(bytes)).is_ok(),
            _ => {
                eprintln!("unknown side/op {side} {op}");
                return ExitCode::FAILURE;
            }
        };
        ok += u64::from(success);
    }
    if ok != n {
        eprintln!("{side} failed on {message} ({} of {n} failed)", n - ok);
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
