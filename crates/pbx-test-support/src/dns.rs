//! A DNS responder on loopback that answers from a table the test edits (feature `dns`).
//!
//! [`DnsServer::start`] binds UDP `127.0.0.1:0` and answers every query from the records the
//! test put in with [`DnsServer::set`]: the records of the asked name and type, NOERROR with
//! no answer when the name has records of other types only, NXDOMAIN when it has none.
//! [`DnsServer::set_failing`] makes it answer SERVFAIL (a resolver hiccup) until turned off;
//! [`DnsServer::set_silent`] makes it drop queries unanswered (a server that is down).
//! It never forwards anything: tests of RFC 3263 resolution point the resolver at it and
//! never reach the internet. The task stops when the server is dropped.
//!
//! ```ignore
//! let dns = DnsServer::start().await?;
//! dns.set(vec![srv("_sip._udp.carrier.test.", 60, 10, 0, 5070, "a.carrier.test."),
//!              a("a.carrier.test.", 60, Ipv4Addr::LOCALHOST)]);
//! ```

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use hickory_proto::op::{Message, OpCode, ResponseCode};
pub use hickory_proto::rr::Record;
use hickory_proto::rr::rdata::{A, AAAA, NAPTR, SRV};
use hickory_proto::rr::{Name, RData};
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

/// The responder: its address, its table and its switches.
#[derive(Debug)]
pub struct DnsServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

#[derive(Debug, Default)]
struct Shared {
    records: Mutex<Vec<Record>>,
    failing: AtomicBool,
    silent: AtomicBool,
    queries: AtomicUsize,
}

impl DnsServer {
    /// Binds `127.0.0.1:0` and starts answering (an empty table: every name is NXDOMAIN).
    pub async fn start() -> std::io::Result<Self> {
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = socket.local_addr()?;
        let shared = Arc::new(Shared::default());
        let task = tokio::spawn(serve(socket, Arc::clone(&shared)));
        Ok(Self { addr, shared, task })
    }

    /// Where to send queries (`[dns] servers = ["<addr>"]`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Replaces the whole table.
    pub fn set(&self, records: Vec<Record>) {
        *self
            .shared
            .records
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = records;
    }

    /// Answers SERVFAIL to everything while `failing`.
    pub fn set_failing(&self, failing: bool) {
        self.shared.failing.store(failing, Ordering::SeqCst);
    }

    /// Drops every query unanswered while `silent`.
    pub fn set_silent(&self, silent: bool) {
        self.shared.silent.store(silent, Ordering::SeqCst);
    }

    /// Queries received so far.
    pub fn queries(&self) -> usize {
        self.shared.queries.load(Ordering::SeqCst)
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(socket: UdpSocket, shared: Arc<Shared>) {
    let mut buffer = vec![0u8; 4096];
    loop {
        let Ok((length, peer)) = socket.recv_from(&mut buffer).await else {
            continue;
        };
        let Some(query) = buffer.get(..length).and_then(|b| Message::from_vec(b).ok()) else {
            continue;
        };
        shared.queries.fetch_add(1, Ordering::SeqCst);
        if shared.silent.load(Ordering::SeqCst) {
            continue;
        }
        let reply = answer(&shared, &query);
        if let Ok(bytes) = reply.to_vec() {
            let _ = socket.send_to(&bytes, peer).await;
        }
    }
}

fn answer(shared: &Shared, query: &Message) -> Message {
    let mut reply = Message::response(query.metadata.id, OpCode::Query);
    reply.metadata.recursion_desired = query.metadata.recursion_desired;
    reply.metadata.recursion_available = true;
    reply.metadata.authoritative = true;
    reply.add_queries(query.queries.iter().cloned());
    if shared.failing.load(Ordering::SeqCst) {
        reply.metadata.response_code = ResponseCode::ServFail;
        return reply;
    }
    let records = shared
        .records
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let mut known = false;
    for question in &query.queries {
        for record in records.iter() {
            if record.name != question.name {
                continue;
            }
            known = true;
            if record.record_type() == question.query_type {
                reply.add_answer(record.clone());
            }
        }
    }
    if !known {
        reply.metadata.response_code = ResponseCode::NXDomain;
    }
    reply
}

/// A NAPTR record (`flags` "s" leads to SRV), e.g. service `SIP+D2U`.
pub fn naptr(
    name: &str,
    ttl: u32,
    order: u16,
    preference: u16,
    flags: &str,
    service: &str,
    replacement: &str,
) -> Record {
    let data = NAPTR::new(
        order,
        preference,
        flags.as_bytes().into(),
        service.as_bytes().into(),
        Box::default(),
        name_of(replacement),
    );
    Record::from_rdata(name_of(name), ttl, RData::NAPTR(data))
}

/// An SRV record.
pub fn srv(name: &str, ttl: u32, priority: u16, weight: u16, port: u16, target: &str) -> Record {
    let data = SRV::new(priority, weight, port, name_of(target));
    Record::from_rdata(name_of(name), ttl, RData::SRV(data))
}

/// An A record.
pub fn a(name: &str, ttl: u32, address: Ipv4Addr) -> Record {
    Record::from_rdata(name_of(name), ttl, RData::A(A(address)))
}

/// An AAAA record.
pub fn aaaa(name: &str, ttl: u32, address: Ipv6Addr) -> Record {
    Record::from_rdata(name_of(name), ttl, RData::AAAA(AAAA(address)))
}

// A name the test wrote wrongly is a bug in the test.
#[allow(clippy::panic)]
fn name_of(text: &str) -> Name {
    Name::from_ascii(text).unwrap_or_else(|error| panic!("bad test DNS name {text}: {error}"))
}
