//! Boot-storm benchmark (not a test): N simulated phones fetch a ~10 KB config at once over
//! loopback (blksize 1428, tsize), plus the memory held per open transfer.
//!
//! Run: `cargo bench -p pbx-tftp --bench boot_storm` (env `STORM_PHONES`, default 1000;
//! `STORM_ROUNDS`, default 3). Client and server share the process and the 2 cores.

// A benchmark binary: a failure should stop it loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{SocketAddr, UdpSocket as StdSocket};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use pbx_tftp::proto::packet::{encode_ack, encode_error, encode_request};
use pbx_tftp::proto::{ErrorCode, Packet, Transfer};
use pbx_tftp::server::{MemorySource, ServerConfig, ServerStats, TftpServer};
use tokio::net::UdpSocket;

const PATH: &str = "acme/0004f2aabbcc.cfg";

fn main() {
    let phones: usize = std::env::var("STORM_PHONES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let rounds: usize = std::env::var("STORM_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let content = Bytes::from("<polycom><setting name=\"x\" value=\"yyyyyyyyyyyyyyyy\"/></polycom>\n".repeat(160));
        let source = MemorySource::new().with_file(PATH, content.clone());
        let server = TftpServer::bind("127.0.0.1:0".parse().unwrap(), ServerConfig::default(), source).await.unwrap();
        let addr = server.local_addr();
        let stats = server.stats();
        let task = tokio::spawn(server.run());
        println!("file {} bytes, {phones} phones, blksize 1428, tsize", content.len());
        // Measured first, on a fresh heap, so earlier storms' freed memory does not hide it.
        memory_per_transfer(addr, phones, &stats).await;
        for round in 1..=rounds {
            let started = Instant::now();
            let clients: Vec<_> = (0..phones).map(|_| tokio::spawn(fetch(addr, content.len()))).collect();
            let mut latencies = Vec::with_capacity(phones);
            for client in clients {
                latencies.push(client.await.unwrap());
            }
            let elapsed = started.elapsed();
            latencies.sort();
            println!(
                "round {round}: {phones} transfers in {:.1} ms = {:.0} transfers/s; per phone p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
                elapsed.as_secs_f64() * 1e3,
                phones as f64 / elapsed.as_secs_f64(),
                latencies[phones / 2].as_secs_f64() * 1e3,
                latencies[phones * 99 / 100].as_secs_f64() * 1e3,
                latencies[phones - 1].as_secs_f64() * 1e3,
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        println!(
            "server counters (the 1000 failed are the stalled memory probes): completed {} failed {} busy {} retransmissions {}",
            stats.completed.load(Ordering::Relaxed),
            stats.failed.load(Ordering::Relaxed),
            stats.busy.load(Ordering::Relaxed),
            stats.retransmissions.load(Ordering::Relaxed)
        );
        task.abort();
    });
}

/// One phone: RRQ with blksize/tsize, ACK everything, retransmit after 1 s.
async fn fetch(server: SocketAddr, expected_len: usize) -> Duration {
    let started = Instant::now();
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut last = Vec::new();
    encode_request(
        &mut last,
        false,
        PATH,
        "octet",
        &[("blksize", "1428"), ("tsize", "0")],
    );
    let mut destination = server;
    socket.send_to(&last, destination).await.unwrap();
    let mut buf = vec![0u8; 2048];
    let mut received = 0usize;
    let mut expected = 1u16;
    for _ in 0..100_000 {
        let Ok(Ok((len, from))) =
            tokio::time::timeout(Duration::from_secs(1), socket.recv_from(&mut buf)).await
        else {
            socket.send_to(&last, destination).await.unwrap();
            continue;
        };
        destination = from;
        match Packet::parse(&buf[..len]).unwrap() {
            Packet::Oack { .. } => {
                last.clear();
                encode_ack(&mut last, 0);
            }
            Packet::Data { block, data } if block == expected => {
                received += data.len();
                expected = expected.wrapping_add(1);
                last.clear();
                encode_ack(&mut last, block);
                if data.len() < 1428 {
                    socket.send_to(&last, destination).await.unwrap();
                    assert_eq!(received, expected_len);
                    return started.elapsed();
                }
            }
            Packet::Data { .. } => continue,
            other => panic!("unexpected {other:?}"),
        }
        socket.send_to(&last, destination).await.unwrap();
    }
    panic!("phone did not finish");
}

/// Opens `count` transfers that stall after the OACK and reads RSS before and while they are
/// held; then ends them with an ERROR from each client.
async fn memory_per_transfer(server: SocketAddr, count: usize, stats: &ServerStats) {
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = rss_kib();
    let mut clients = Vec::with_capacity(count);
    let mut packet = Vec::new();
    for _ in 0..count {
        let socket = StdSocket::bind("127.0.0.1:0").unwrap();
        packet.clear();
        encode_request(
            &mut packet,
            false,
            PATH,
            "octet",
            &[("blksize", "1428"), ("tsize", "0")],
        );
        socket.send_to(&packet, server).unwrap();
        clients.push(socket);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while (stats.active.load(Ordering::Relaxed) as usize) < count && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let active = stats.active.load(Ordering::Relaxed);
    let during = rss_kib();
    let mut buf = [0u8; 2048];
    for socket in &clients {
        socket
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        if let Ok((_, tid)) = socket.recv_from(&mut buf) {
            packet.clear();
            encode_error(&mut packet, ErrorCode::Undefined, "bench done");
            socket.send_to(&packet, tid).unwrap();
        }
    }
    println!(
        "memory: {active} stalled transfers held; RSS {before} KiB before, {during} KiB during => {:.1} KiB per transfer (task, socket buffers in user space, Transfer {} B, send buffer {} B); peak RSS (VmHWM) {} KiB",
        (during.saturating_sub(before)) as f64 / active.max(1) as f64,
        std::mem::size_of::<Transfer>(),
        1428 + 4,
        hwm_kib()
    );
}

fn status_field(name: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|line| line.starts_with(name))
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|value| value.parse().ok())
        .unwrap_or(0)
}

fn rss_kib() -> u64 {
    status_field("VmRSS:")
}

fn hwm_kib() -> u64 {
    status_field("VmHWM:")
}
