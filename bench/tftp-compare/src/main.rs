//! Boot storm against pbx-tftp and async-tftp 0.4.2, same client, same file, same machine.
//!
//! Each storm: N phones (env STORM_PHONES, default 1000) RRQ a 10 KB file with blksize 1428 and
//! tsize at once; the file source/handler waits `open delay` per open (a stand-in for the
//! tenant lookup and template rendering that provisioning will do).

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use pbx_tftp::proto::packet::{encode_ack, encode_request};
use pbx_tftp::proto::{Mode, Packet};
use pbx_tftp::server::{FileSource, ServerConfig, TftpRefusal, TftpServer};
use tokio::net::UdpSocket;

const PATH: &str = "acme/0004f2aabbcc.cfg";

#[derive(Clone)]
struct Source {
    content: Bytes,
    delay: Duration,
}

impl FileSource for Source {
    async fn open(&self, _peer: SocketAddr, _path: &str, _mode: Mode) -> Result<Bytes, TftpRefusal> {
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        Ok(self.content.clone())
    }
}

impl async_tftp::server::Handler for Source {
    type Reader = futures_lite::io::Cursor<Bytes>;
    type Writer = futures_lite::io::Sink;

    async fn read_req_open(
        &mut self,
        _client: &SocketAddr,
        _path: &Path,
    ) -> Result<(Self::Reader, Option<u64>), async_tftp::packet::Error> {
        if !self.delay.is_zero() {
            async_io::Timer::after(self.delay).await;
        }
        Ok((futures_lite::io::Cursor::new(self.content.clone()), Some(self.content.len() as u64)))
    }

    async fn write_req_open(
        &mut self,
        _client: &SocketAddr,
        _path: &Path,
        _size: Option<u64>,
    ) -> Result<Self::Writer, async_tftp::packet::Error> {
        Err(async_tftp::packet::Error::PermissionDenied)
    }
}

fn main() {
    let phones: usize = std::env::var("STORM_PHONES").ok().and_then(|v| v.parse().ok()).unwrap_or(1000);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let content = Bytes::from(vec![0x42u8; 10_240]);
    for delay_ms in [0u64, 2] {
        let source = Source { content: content.clone(), delay: Duration::from_millis(delay_ms) };
        // pbx-tftp on the tokio runtime.
        let ours = runtime.block_on(async {
            let server = TftpServer::bind("127.0.0.1:0".parse().unwrap(), ServerConfig::default(), source.clone()).await.unwrap();
            let addr = server.local_addr();
            let task = tokio::spawn(server.run());
            let result = storm(addr, phones, content.len()).await;
            task.abort();
            result
        });
        report("pbx-tftp", delay_ms, phones, ours);
        // pbx-tftp on a dedicated current-thread runtime, the layout async-tftp gets below.
        let (addr_tx, addr_rx) = std::sync::mpsc::sync_channel(1);
        let dedicated = source.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let server = TftpServer::bind("127.0.0.1:0".parse().unwrap(), ServerConfig::default(), dedicated).await.unwrap();
                addr_tx.send(server.local_addr()).unwrap();
                let _ = server.run().await;
            });
        });
        let addr = addr_rx.recv().unwrap();
        let ours_thread = runtime.block_on(storm(addr, phones, content.len()));
        report("pbx-tftp/1t", delay_ms, phones, ours_thread);
        // async-tftp on its own executor thread, as it is meant to run.
        let (addr_tx, addr_rx) = std::sync::mpsc::sync_channel(1);
        let handler = source.clone();
        std::thread::spawn(move || {
            futures_lite::future::block_on(async move {
                // Same 4 MiB request-socket receive buffer as pbx-tftp's default, to be fair.
                let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
                socket.set_recv_buffer_size(4 * 1024 * 1024).unwrap();
                let bind: SocketAddr = "127.0.0.1:0".parse().unwrap();
                socket.bind(&bind.into()).unwrap();
                let server = async_tftp::server::TftpServerBuilder::with_handler(handler)
                    .std_socket(socket.into())
                    .unwrap()
                    .block_size_limit(1468)
                    .build()
                    .await
                    .unwrap();
                addr_tx.send(server.listen_addr().unwrap()).unwrap();
                let _ = server.serve().await;
            });
        });
        let addr = addr_rx.recv().unwrap();
        let theirs = runtime.block_on(storm(addr, phones, content.len()));
        report("async-tftp", delay_ms, phones, theirs);
    }
}

fn report(name: &str, delay_ms: u64, phones: usize, (elapsed, mut latencies, retries): (Duration, Vec<Duration>, u64)) {
    latencies.sort();
    println!(
        "{name:>11}, open delay {delay_ms} ms: {phones} transfers in {:.0} ms = {:.0}/s; p50 {:.0} ms, p99 {:.0} ms; client retransmissions {retries}",
        elapsed.as_secs_f64() * 1e3,
        phones as f64 / elapsed.as_secs_f64(),
        latencies[phones / 2].as_secs_f64() * 1e3,
        latencies[phones * 99 / 100].as_secs_f64() * 1e3,
    );
}

async fn storm(addr: SocketAddr, phones: usize, len: usize) -> (Duration, Vec<Duration>, u64) {
    let started = Instant::now();
    let clients: Vec<_> = (0..phones).map(|_| tokio::spawn(fetch(addr, len))).collect();
    let mut latencies = Vec::with_capacity(phones);
    let mut retries = 0;
    for client in clients {
        let (latency, retry) = client.await.unwrap();
        latencies.push(latency);
        retries += retry;
    }
    (started.elapsed(), latencies, retries)
}

/// One phone: RRQ blksize 1428 + tsize, ACK each block, retransmit after 1 s (like a phone).
async fn fetch(server: SocketAddr, expected_len: usize) -> (Duration, u64) {
    let started = Instant::now();
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut last = Vec::new();
    encode_request(&mut last, false, PATH, "octet", &[("blksize", "1428"), ("tsize", "0")]);
    let mut destination = server;
    socket.send_to(&last, destination).await.unwrap();
    let mut buf = vec![0u8; 2048];
    let (mut received, mut expected, mut retries) = (0usize, 1u16, 0u64);
    loop {
        let Ok(Ok((len, from))) = tokio::time::timeout(Duration::from_secs(1), socket.recv_from(&mut buf)).await else {
            retries += 1;
            assert!(retries < 60, "phone gave up");
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
                    return (started.elapsed(), retries);
                }
            }
            Packet::Data { .. } => continue,
            other => panic!("unexpected {other:?}"),
        }
        socket.send_to(&last, destination).await.unwrap();
    }
}
