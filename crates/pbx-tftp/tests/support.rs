//! A minimal TFTP read client for tests, and a server fixture.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use pbx_tftp::proto::packet::{encode_ack, encode_request};
use pbx_tftp::proto::{ErrorCode, Mode, Packet};
use pbx_tftp::server::{FileSource, ServerConfig, TftpRefusal, TftpServer, TransferEvent};
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

/// Files in every brand's naming (Polycom, Yealink, Snom, Grandstream) plus a firmware image.
pub fn brand_files() -> Vec<(&'static str, Bytes)> {
    let xml = |brand: &str, lines: usize| {
        let mut text = format!("<?xml version=\"1.0\"?>\n<{brand}>\n");
        for i in 0..lines {
            text.push_str(&format!(
                "  <setting name=\"line{i}\" value=\"sip:{i}@acme.example\"/>\n"
            ));
        }
        text.push_str(&format!("</{brand}>\n"));
        Bytes::from(text)
    };
    let firmware: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    vec![
        ("acme/000000000000.cfg", xml("polycom", 40)),
        ("acme/0004f2aabbcc-phone.cfg", xml("polycom", 200)),
        (
            "acme/805ec0aabbcc.cfg",
            Bytes::from("#!version:1.0.0.1\naccount.1.enable = 1\n".repeat(50)),
        ),
        ("acme/snom-000413aabbcc.xml", xml("snom", 120)),
        ("acme/cfg000b82aabbcc.xml", xml("gs_provision", 60)),
        ("acme/exact-1024.bin", Bytes::from(vec![0x5a; 1024])),
        ("acme/empty.cfg", Bytes::new()),
        ("acme/firmware.ld", Bytes::from(firmware)),
    ]
}

/// A source that serves a fixed set to whitelisted IPs only.
pub struct WhitelistSource {
    pub files: Vec<(&'static str, Bytes)>,
    pub whitelist: Vec<IpAddr>,
    /// Delay every open (busy/timeout tests).
    pub open_delay: Duration,
}

impl FileSource for WhitelistSource {
    async fn open(&self, peer: SocketAddr, path: &str, _mode: Mode) -> Result<Bytes, TftpRefusal> {
        if !self.open_delay.is_zero() {
            tokio::time::sleep(self.open_delay).await;
        }
        if !self.whitelist.contains(&peer.ip()) {
            return Err(TftpRefusal::access_violation());
        }
        self.files
            .iter()
            .find(|(name, _)| *name == path)
            .map(|(_, content)| content.clone())
            .ok_or_else(TftpRefusal::not_found)
    }
}

/// A running server; aborted on drop.
pub struct Fixture {
    pub addr: SocketAddr,
    pub events: Arc<Mutex<Vec<TransferEvent>>>,
    pub stats: Arc<pbx_tftp::server::ServerStats>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn start(source: WhitelistSource, config: ServerConfig) -> Fixture {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&events);
    let server = TftpServer::bind("127.0.0.1:0".parse().unwrap(), config, source)
        .await
        .unwrap()
        .with_events(move |event| sink.lock().unwrap().push(event));
    let addr = server.local_addr();
    let stats = server.stats();
    let task = tokio::spawn(server.run());
    Fixture {
        addr,
        events,
        stats,
        task,
    }
}

pub async fn start_default() -> Fixture {
    let source = WhitelistSource {
        files: brand_files(),
        whitelist: vec!["127.0.0.1".parse().unwrap()],
        open_delay: Duration::ZERO,
    };
    start(source, ServerConfig::default()).await
}

/// How a client fetch failed.
#[derive(Debug, PartialEq, Eq)]
pub enum FetchError {
    /// The server answered an ERROR.
    Server(ErrorCode, String),
    /// No answer within the retries.
    Timeout,
}

/// Fetches `path` from `server`, the client socket bound to `local`; retransmits its last
/// packet every `rexmt` up to 20 times.
pub async fn fetch(
    server: SocketAddr,
    local: IpAddr,
    path: &str,
    options: &[(&str, &str)],
    rexmt: Duration,
) -> Result<Vec<u8>, FetchError> {
    let socket = UdpSocket::bind(SocketAddr::new(local, 0)).await.unwrap();
    let mut last = Vec::new();
    encode_request(&mut last, false, path, "octet", options);
    let mut destination = server;
    let mut server_tid: Option<SocketAddr> = None;
    socket.send_to(&last, destination).await.unwrap();
    let mut blksize = 512usize;
    let mut expected: u16 = 1;
    let mut content = Vec::new();
    let mut buf = vec![0u8; 70_000];
    let mut silent_rounds = 0;
    loop {
        let (len, from) = match tokio::time::timeout(rexmt, socket.recv_from(&mut buf)).await {
            Ok(received) => received.unwrap(),
            Err(_) => {
                silent_rounds += 1;
                if silent_rounds > 20 {
                    return Err(FetchError::Timeout);
                }
                socket.send_to(&last, destination).await.unwrap();
                continue;
            }
        };
        silent_rounds = 0;
        if server_tid.is_some_and(|tid| tid != from) {
            continue;
        }
        server_tid = Some(from);
        destination = from;
        match Packet::parse(&buf[..len]).unwrap() {
            Packet::Oack { options } => {
                if let Some((_, value)) = options.iter().find(|(name, _)| *name == "blksize") {
                    blksize = value.parse().unwrap();
                }
                last.clear();
                encode_ack(&mut last, 0);
                socket.send_to(&last, destination).await.unwrap();
            }
            Packet::Data { block, data } => {
                if block == expected {
                    content.extend_from_slice(data);
                    expected = expected.wrapping_add(1);
                    last.clear();
                    encode_ack(&mut last, block);
                    socket.send_to(&last, destination).await.unwrap();
                    if data.len() < blksize {
                        return Ok(content);
                    }
                }
            }
            Packet::Error { code, message } => {
                return Err(FetchError::Server(
                    code,
                    String::from_utf8_lossy(message).into_owned(),
                ));
            }
            other => panic!("unexpected packet {other:?}"),
        }
    }
}

/// The path to a client binary, or `None` (with a notice) when missing; a failure under CI.
pub fn client_binary(name: &str) -> Option<std::path::PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|path| path.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{name} is not installed and CI=true: install tftp-hpa and atftp"
        );
        eprintln!("SKIP: `{name}` not found in PATH; install it to run the real-client tests");
    }
    found
}
