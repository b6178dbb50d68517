//! TFTP boot-storm load generator (a benchmark tool, not a test): every phone of a list starts
//! at once and fetches its files one after the other, as a phone does at boot (lockstep, ACK
//! every block, `blksize` negotiated, RRQ and ACK retransmitted after 1 s like a phone, five
//! tries). Used by `bench/provisioning/run.sh` against a running `cloudpbx serve`.
//!
//! ```text
//! tftp_storm <server ip:port> <phones file> [server pid]
//! ```
//!
//! The phones file has one phone per line: the paths it fetches, separated by spaces. With the
//! server's pid, the server's CPU time (`/proc/<pid>/stat`) and resident memory
//! (`/proc/<pid>/status`, sampled every 2 ms during the storm) are reported too.
//! Env: `RUNS` (3) storms, `PAUSE_MS` (2000) between them, `BLKSIZE` (1428), `SOURCE`
//! (127.0.0.1) address to send from. Prints one human line per storm on stderr and a JSON
//! object per storm on stdout.

// A benchmark binary: a failure should stop it loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use pbx_tftp::proto::Packet;
use pbx_tftp::proto::packet::{encode_ack, encode_request};
use tokio::net::UdpSocket;

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One transfer's outcome.
struct Transfer {
    duration: Duration,
    ok: bool,
    retransmissions: u32,
}

#[derive(Default)]
struct InFlight {
    now: AtomicUsize,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: tftp_storm <server ip:port> <phones file> [server pid]");
        std::process::exit(2);
    }
    let server: SocketAddr = args[1].parse().expect("server ip:port");
    let phones: Vec<Vec<String>> = std::fs::read_to_string(&args[2])
        .expect("phones file")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect();
    let pid: Option<u32> = args.get(3).map(|p| p.parse().expect("pid"));
    let runs: usize = env("RUNS", 3);
    let pause = Duration::from_millis(env("PAUSE_MS", 2000));
    let blksize: usize = env("BLKSIZE", 1428);
    let source: IpAddr = env("SOURCE", IpAddr::from([127, 0, 0, 1]));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let transfers_per_storm: usize = phones.iter().map(Vec::len).sum();
    eprintln!(
        "{} phones, {transfers_per_storm} transfers per storm, blksize {blksize}, {runs} storms",
        phones.len()
    );
    for run in 1..=runs {
        let inflight = Arc::new(InFlight::default());
        let sampling = Arc::new(AtomicBool::new(true));
        let rss_before = pid.map_or(0, rss_kb);
        let cpu_before = pid.map_or(0.0, cpu_s);
        let sampler = {
            let (inflight, sampling) = (Arc::clone(&inflight), Arc::clone(&sampling));
            std::thread::spawn(move || {
                // (max RSS, max in flight, RSS when in-flight peaked)
                let (mut max_rss, mut max_inflight) = (0u64, 0usize);
                while sampling.load(Ordering::Relaxed) {
                    let now = inflight.now.load(Ordering::Relaxed);
                    max_inflight = max_inflight.max(now);
                    if let Some(pid) = pid {
                        max_rss = max_rss.max(rss_kb(pid));
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
                (max_rss, max_inflight)
            })
        };
        let started = Instant::now();
        let results: Vec<Transfer> = runtime.block_on(async {
            let tasks: Vec<_> = phones
                .iter()
                .map(|paths| {
                    let paths = paths.clone();
                    let inflight = Arc::clone(&inflight);
                    tokio::spawn(async move {
                        let mut out = Vec::with_capacity(paths.len());
                        for path in &paths {
                            inflight.now.fetch_add(1, Ordering::Relaxed);
                            let transfer = fetch(source, server, path, blksize).await;
                            inflight.now.fetch_sub(1, Ordering::Relaxed);
                            let ok = transfer.ok;
                            out.push(transfer);
                            if !ok {
                                break;
                            }
                        }
                        out
                    })
                })
                .collect();
            let mut all = Vec::with_capacity(transfers_per_storm);
            for task in tasks {
                all.extend(task.await.unwrap());
            }
            all
        });
        let wall = started.elapsed();
        sampling.store(false, Ordering::Relaxed);
        let (max_rss, max_inflight) = sampler.join().unwrap();
        let cpu_at_end = pid.map_or(0.0, cpu_s);
        // The fetch log is written in batches right after the storm: count it too.
        std::thread::sleep(Duration::from_millis(500));
        let cpu_settled = pid.map_or(0.0, cpu_s);
        let ok = results.iter().filter(|t| t.ok).count();
        let retransmissions: u32 = results.iter().map(|t| t.retransmissions).sum();
        let mut durations: Vec<f64> = results
            .iter()
            .filter(|t| t.ok)
            .map(|t| t.duration.as_secs_f64() * 1e3)
            .collect();
        durations.sort_by(f64::total_cmp);
        let pct = |p: usize| {
            durations
                .get((durations.len() * p / 100).min(durations.len().saturating_sub(1)))
                .copied()
                .unwrap_or(f64::NAN)
        };
        let per_transfer_us = |cpu: f64| cpu * 1e6 / ok.max(1) as f64;
        let rss_delta = max_rss.saturating_sub(rss_before);
        let hwm = pid.map_or(0, |pid| status_kb(pid, "VmHWM:"));
        eprintln!(
            "storm {run}: {ok}/{} transfers ok in {:.0} ms = {:.0} transfers/s; per transfer p50 {:.1} ms \
             p99 {:.1} ms max {:.1} ms; {retransmissions} client retransmissions; server CPU {:.0} us/transfer \
             ({:.0} incl. fetch-log writes); RSS {rss_before} -> peak {max_rss} KiB (VmHWM {hwm} KiB), \
             {max_inflight} transfers in flight at most = {:.1} KiB per concurrent transfer",
            results.len().max(transfers_per_storm),
            wall.as_secs_f64() * 1e3,
            ok as f64 / wall.as_secs_f64(),
            pct(50),
            pct(99),
            durations.last().copied().unwrap_or(f64::NAN),
            per_transfer_us(cpu_at_end - cpu_before),
            per_transfer_us(cpu_settled - cpu_before),
            rss_delta as f64 / max_inflight.max(1) as f64,
        );
        println!(
            "{{\"storm\":{run},\"phones\":{},\"transfers\":{transfers_per_storm},\"ok\":{ok},\
             \"wall_ms\":{:.1},\"transfers_per_s\":{:.0},\"p50_ms\":{:.2},\"p99_ms\":{:.2},\
             \"max_ms\":{:.2},\"client_retransmissions\":{retransmissions},\
             \"server_cpu_us_per_transfer\":{:.1},\"server_cpu_us_per_transfer_with_log\":{:.1},\
             \"rss_kb_before\":{rss_before},\"rss_kb_peak\":{max_rss},\"vm_hwm_kb\":{hwm},\
             \"max_in_flight\":{max_inflight},\"kib_per_concurrent_transfer\":{:.2}}}",
            phones.len(),
            wall.as_secs_f64() * 1e3,
            ok as f64 / wall.as_secs_f64(),
            pct(50),
            pct(99),
            durations.last().copied().unwrap_or(f64::NAN),
            per_transfer_us(cpu_at_end - cpu_before),
            per_transfer_us(cpu_settled - cpu_before),
            rss_delta as f64 / max_inflight.max(1) as f64,
        );
        if run < runs {
            std::thread::sleep(pause);
        }
    }
}

/// One lockstep read; never panics on the network (a failure is a failed transfer).
async fn fetch(source: IpAddr, server: SocketAddr, path: &str, blksize: usize) -> Transfer {
    let started = Instant::now();
    let mut retransmissions = 0;
    let ok = async {
        let socket = UdpSocket::bind((source, 0)).await.ok()?;
        let mut last = Vec::new();
        let blk = blksize.to_string();
        encode_request(
            &mut last,
            false,
            path,
            "octet",
            &[("blksize", blk.as_str())],
        );
        let mut to = server;
        let mut expected: u16 = 1;
        let mut block_size = 512;
        let mut buf = vec![0u8; blksize + 64];
        let mut tries = 0;
        loop {
            socket.send_to(&last, to).await.ok()?;
            let Ok(Ok((len, from))) =
                tokio::time::timeout(Duration::from_secs(1), socket.recv_from(&mut buf)).await
            else {
                tries += 1;
                retransmissions += 1;
                if tries >= 5 {
                    return None;
                }
                continue;
            };
            to = from;
            match Packet::parse(&buf[..len]).ok()? {
                Packet::Oack { .. } => {
                    block_size = blksize;
                    tries = 0;
                    last.clear();
                    encode_ack(&mut last, 0);
                }
                Packet::Data { block, data } if block == expected => {
                    tries = 0;
                    last.clear();
                    encode_ack(&mut last, block);
                    expected = expected.wrapping_add(1);
                    if data.len() < block_size {
                        socket.send_to(&last, to).await.ok()?;
                        return Some(());
                    }
                }
                Packet::Error { .. } => return None,
                // A duplicate: the lost-ACK case; the next timeout resends ours.
                _ => {}
            }
        }
    }
    .await
    .is_some();
    Transfer {
        duration: started.elapsed(),
        ok,
        retransmissions,
    }
}

fn cpu_s(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime (fields 14 and 15 of stat; 11 and 12 after the command name), in
    // clock ticks of 1/100 s (USER_HZ on Linux).
    (ticks(11) + ticks(12)) as f64 / 100.0
}

fn status_kb(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn rss_kb(pid: u32) -> u64 {
    status_kb(pid, "VmRSS:")
}
