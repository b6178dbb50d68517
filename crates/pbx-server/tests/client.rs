//! A small UDP SIP client for in-process tests: REGISTER with digest (pbx-sip-auth's
//! `DigestClient`), responses parsed with pbx-sip.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use pbx_sip::{HeaderName, Message, Response};
use pbx_sip_auth::{AuthRole, DigestClient};
use tokio::net::UdpSocket;

pub struct UdpClient {
    socket: UdpSocket,
    server: SocketAddr,
    call_id: String,
    cseq: u32,
}

impl UdpClient {
    pub async fn new(server: SocketAddr) -> UdpClient {
        let local = if server.is_ipv6() {
            "[::1]:0"
        } else {
            "127.0.0.1:0"
        };
        let socket = UdpSocket::bind(local).await.expect("client socket");
        UdpClient {
            socket,
            server,
            call_id: format!("{}@cloudpbx-test", hex::encode(rand::random::<[u8; 8]>())),
            cseq: 0,
        }
    }

    pub fn server(&self) -> SocketAddr {
        self.server
    }

    pub fn local(&self) -> SocketAddr {
        self.socket.local_addr().expect("local addr")
    }

    fn request_uri(&self) -> String {
        format!("sip:{}", self.server)
    }

    /// One REGISTER transaction (with retransmissions), optionally with credentials.
    pub async fn register_once(
        &mut self,
        user: &str,
        domain: &str,
        expires: u32,
        authorization: Option<String>,
    ) -> Response {
        self.cseq += 1;
        let local = self.local();
        let branch = format!("z9hG4bK{}", hex::encode(rand::random::<[u8; 8]>()));
        let mut text = format!(
            "REGISTER {uri} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {local};rport;branch={branch}\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:{user}@{domain}>;tag=t{cseq}\r\n\
             To: <sip:{user}@{domain}>\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: {cseq} REGISTER\r\n\
             Contact: <sip:{user}@{local}>\r\n\
             Expires: {expires}\r\n\
             User-Agent: cloudpbx-test\r\n",
            uri = self.request_uri(),
            cseq = self.cseq,
            call_id = self.call_id,
        );
        if let Some(value) = authorization {
            text.push_str(&format!("Authorization: {value}\r\n"));
        }
        text.push_str("Content-Length: 0\r\n\r\n");
        self.transact(text.as_bytes(), &branch).await
    }

    async fn transact(&self, bytes: &[u8], branch: &str) -> Response {
        let mut buf = vec![0_u8; 65_535];
        for attempt in 0..6 {
            self.socket.send_to(bytes, self.server).await.expect("sent");
            let wait = Duration::from_millis(500 << attempt.min(3));
            let deadline = tokio::time::Instant::now() + wait;
            while let Ok(Ok((len, _))) =
                tokio::time::timeout_at(deadline, self.socket.recv_from(&mut buf)).await
            {
                let Ok(message) = Message::parse_datagram(Bytes::copy_from_slice(&buf[..len]))
                else {
                    continue;
                };
                let Some(response) = message.into_response() else {
                    continue; // e.g. a keep-alive OPTIONS
                };
                let via = response.headers().get(&HeaderName::Via).unwrap_or_default();
                if !String::from_utf8_lossy(via).contains(branch) {
                    continue;
                }
                if response.status().is_final() {
                    return response;
                }
            }
        }
        panic!("no final response from {}", self.server);
    }

    /// REGISTER → 401 → REGISTER with credentials; the final response.
    pub async fn register(
        &mut self,
        auth_user: &str,
        password: &str,
        domain: &str,
        user: &str,
        expires: u32,
    ) -> Response {
        let challenge = self.register_once(user, domain, expires, None).await;
        if challenge.status().0 != 401 {
            return challenge;
        }
        let mut digest = DigestClient::new(auth_user, password).expect("digest client");
        let values: Vec<&[u8]> = challenge
            .headers()
            .get_all(&HeaderName::WwwAuthenticate)
            .collect();
        digest
            .handle_challenge(AuthRole::Www, &values)
            .expect("challenge usable");
        let credentials = digest
            .authorization("REGISTER", &self.request_uri(), rand::random())
            .expect("credentials");
        self.register_once(user, domain, expires, Some(credentials.to_string()))
            .await
    }
}

/// Header fields of a response as (name, value) text, in order.
pub fn header_lines(response: &Response) -> Vec<(String, String)> {
    response
        .headers()
        .iter()
        .map(|(name, value)| {
            (
                name.to_string().to_ascii_lowercase(),
                String::from_utf8_lossy(value).into_owned(),
            )
        })
        .collect()
}
