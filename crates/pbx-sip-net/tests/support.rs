//! Shared helpers: start a server with the test TU, build requests, talk UDP/TCP/TLS.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use pbx_sip::framing::{Frame, Side, StreamDecoder};
use pbx_sip::{HeaderName, Limits as SipLimits, Message, Response};
use pbx_sip_net::{
    Endpoint, Limits, ListenerConfig, RunningEndpoint, TestTu, Transport, TransportConfig,
    TransportHandle, Transports,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

pub const V4: Ipv4Addr = Ipv4Addr::LOCALHOST;
pub const V6: Ipv6Addr = Ipv6Addr::LOCALHOST;

/// A running transport + engine + test TU.
#[derive(Debug)]
pub struct Server {
    pub endpoint: RunningEndpoint<TestTu>,
    pub transports: TransportHandle,
}

impl Server {
    pub fn addr(&self, transport: Transport, ipv6: bool) -> SocketAddr {
        self.transports
            .local_addr(transport, ipv6)
            .expect("listener bound")
    }
}

/// Listeners for every transport on `ip`, port 0.
pub fn all_listeners(ip: std::net::IpAddr) -> Vec<ListenerConfig> {
    [Transport::Udp, Transport::Tcp, Transport::Tls]
        .into_iter()
        .map(|transport| ListenerConfig::new(transport, SocketAddr::new(ip, 0)))
        .collect()
}

pub async fn start(listeners: Vec<ListenerConfig>, limits: Limits) -> Server {
    start_filtered(listeners, limits, None).await
}

pub async fn start_filtered(
    listeners: Vec<ListenerConfig>,
    limits: Limits,
    filter: Option<Arc<dyn Fn(SocketAddr, Transport) -> bool + Send + Sync>>,
) -> Server {
    let config = TransportConfig {
        limits,
        ..TransportConfig::with_listeners(listeners)
    };
    start_with_config(config, filter).await
}

pub async fn start_with_config(
    config: TransportConfig,
    filter: Option<Arc<dyn Fn(SocketAddr, Transport) -> bool + Send + Sync>>,
) -> Server {
    let mut transports = Transports::new(config);
    if let Some(filter) = filter {
        transports = transports.with_source_filter(move |addr, transport| filter(addr, transport));
    }
    let bound = transports.bind().await.expect("bind");
    let handle = bound.handle();
    let engine = pbx_sip_engine::Endpoint::new(pbx_sip_engine::Config::default(), seed());
    let endpoint = Endpoint::new(bound, engine, TestTu::new()).spawn();
    Server {
        endpoint,
        transports: handle,
    }
}

fn seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(7)
}

static COUNTER: AtomicU64 = AtomicU64::new(1);

/// A unique token (branch suffix, Call-ID, tag).
pub fn unique() -> String {
    format!(
        "{:x}{:x}",
        seed() & 0xffff_ffff,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A request with fresh branch/Call-ID. `sent_by` goes into Via, `target` into the URIs.
pub fn request(
    method: &str,
    transport: Transport,
    sent_by: SocketAddr,
    target: SocketAddr,
    rport: bool,
) -> (String, String) {
    let call_id = unique();
    let rport = if rport { ";rport" } else { "" };
    let text = format!(
        "{method} sip:test@{target} SIP/2.0\r\n\
         Via: SIP/2.0/{transport} {sent_by}{rport};branch=z9hG4bK{branch}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:alice@{sent_by}>;tag={tag}\r\n\
         To: <sip:test@{target}>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 7 {method}\r\n\
         Contact: <sip:alice@{sent_by}>\r\n\
         Content-Length: 0\r\n\r\n",
        branch = unique(),
        tag = unique(),
    );
    (text, call_id)
}

/// Parse a response and check it answers `call_id` with CSeq 7.
pub fn check_response(bytes: Bytes, call_id: &str, method: &str) -> Response {
    let message = Message::parse_datagram(bytes).expect("response parses");
    let response = message.into_response().expect("a response");
    assert_eq!(
        &response.call_id().expect("Call-ID")[..],
        call_id.as_bytes()
    );
    let cseq = response.cseq().expect("CSeq");
    assert_eq!(cseq.seq, 7);
    assert_eq!(cseq.method.to_string(), method);
    response
}

/// The ACK for a non-2xx final response to an INVITE sent to `target` (RFC 3261 §17.1.1.3:
/// same branch, the response's To).
pub fn ack_for(response: &Response, target: SocketAddr) -> String {
    let header = |name: HeaderName| {
        String::from_utf8_lossy(response.headers().get(&name).expect("header copied")).into_owned()
    };
    let seq = response.cseq().expect("CSeq").seq;
    format!(
        "ACK sip:test@{target} SIP/2.0\r\nVia: {}\r\nMax-Forwards: 70\r\nFrom: {}\r\nTo: {}\r\n\
         Call-ID: {}\r\nCSeq: {seq} ACK\r\nContent-Length: 0\r\n\r\n",
        header(HeaderName::Via),
        header(HeaderName::From),
        header(HeaderName::To),
        header(HeaderName::CallId),
    )
}

/// Receive one datagram within `wait`.
pub async fn recv_udp(socket: &UdpSocket, wait: Duration) -> Option<Bytes> {
    let mut buffer = vec![0u8; 65_536];
    match tokio::time::timeout(wait, socket.recv(&mut buffer)).await {
        Ok(Ok(len)) => Some(Bytes::copy_from_slice(&buffer[..len])),
        _ => None,
    }
}

/// Send a request over UDP and return the final response (skipping provisionals).
pub async fn udp_transaction(socket: &UdpSocket, server: SocketAddr, method: &str) -> Response {
    let local = socket.local_addr().unwrap();
    let (text, call_id) = request(method, Transport::Udp, local, server, true);
    socket.send_to(text.as_bytes(), server).await.unwrap();
    loop {
        let bytes = recv_udp(socket, Duration::from_secs(5))
            .await
            .expect("a response");
        let response = check_response(bytes, &call_id, method);
        if response.status().0 >= 200 {
            if method == "INVITE" && response.status().0 >= 300 {
                socket
                    .send_to(ack_for(&response, server).as_bytes(), server)
                    .await
                    .unwrap();
            }
            return response;
        }
    }
}

/// A framed stream client (TCP or TLS).
#[derive(Debug)]
pub struct StreamClient<S> {
    pub stream: S,
    decoder: StreamDecoder,
    buffer: BytesMut,
}

impl<S: AsyncRead + AsyncWrite + Unpin> StreamClient<S> {
    pub fn new(stream: S) -> Self {
        Self {
            stream,
            decoder: StreamDecoder::for_side(Side::Outbound, SipLimits::DEFAULT),
            buffer: BytesMut::new(),
        }
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
        self.stream.flush().await.unwrap();
    }

    /// The next frame within `wait`; `None` on timeout or EOF.
    pub async fn next_frame(&mut self, wait: Duration) -> Option<Frame> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(frame) = self
                .decoder
                .decode(&mut self.buffer)
                .expect("server framing")
            {
                return Some(frame);
            }
            let read = tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.buffer));
            match read.await {
                Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return None,
                Ok(Ok(_)) => {}
            }
        }
    }

    /// The next SIP message within `wait`.
    pub async fn next_message(&mut self, wait: Duration) -> Option<Bytes> {
        loop {
            match self.next_frame(wait).await? {
                Frame::Message(bytes) => return Some(bytes),
                _ => continue,
            }
        }
    }

    /// Send a request and return its final response.
    pub async fn transaction(
        &mut self,
        transport: Transport,
        server: SocketAddr,
        local: SocketAddr,
        method: &str,
    ) -> Response {
        let (text, call_id) = request(method, transport, local, server, false);
        self.send(text.as_bytes()).await;
        loop {
            let bytes = self
                .next_message(Duration::from_secs(5))
                .await
                .expect("a response");
            let response = check_response(bytes, &call_id, method);
            if response.status().0 >= 200 {
                if method == "INVITE" && response.status().0 >= 300 {
                    self.send(ack_for(&response, server).as_bytes()).await;
                }
                return response;
            }
        }
    }

    /// Whether the server closed the connection within `wait`.
    pub async fn closed_within(&mut self, wait: Duration) -> bool {
        let mut byte = [0u8; 1];
        matches!(
            tokio::time::timeout(wait, self.stream.read(&mut byte)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }
}

pub async fn tcp_client(server: SocketAddr) -> StreamClient<TcpStream> {
    StreamClient::new(TcpStream::connect(server).await.unwrap())
}

pub async fn tls_client(
    server: SocketAddr,
    transports: &TransportHandle,
) -> StreamClient<tokio_rustls::client::TlsStream<TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(
            transports
                .tls_certificate()
                .expect("TLS certificate")
                .clone(),
        )
        .unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(server).await.unwrap();
    let name = rustls_pki_types::ServerName::IpAddress(server.ip().into());
    StreamClient::new(connector.connect(name, tcp).await.unwrap())
}

/// Whether IPv6 loopback works here; prints a skip notice when it does not.
pub fn ipv6_or_skip(test: &str) -> bool {
    let available = pbx_sip_net::ipv6_loopback_available();
    if !available {
        println!("SKIP {test} over IPv6: [::1] cannot be bound in this environment");
    }
    available
}

/// Default limits with a short shutdown grace (UDP transactions linger in Completed for
/// 64·T1; tests need not wait for them).
pub fn limits() -> Limits {
    Limits {
        shutdown_grace: Duration::from_millis(300),
        ..Limits::default()
    }
}
