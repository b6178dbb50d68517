//! PROTOS c07-sip (4527 malformed INVITEs, ../shared/conformance/protos-c07-sip) sent over
//! UDP to the running transport + engine + test TU. Asserts: no 2xx to an INVITE, every
//! response parses and copies Call-ID/CSeq when the request's were parseable, the driver is
//! alive and a fresh OPTIONS gets 200 after every group and at the end.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use pbx_sip::{Message, Method};
use pbx_sip_net::{ListenerConfig, Transport};
use tokio::net::UdpSocket;

use crate::support;

/// Largest IPv4 UDP payload.
const MAX_DATAGRAM: usize = 65_507;
/// How long to wait for a case's answers before moving on (the server may stay silent).
const CASE_WINDOW: Duration = Duration::from_millis(25);

fn corpus_dir() -> Option<PathBuf> {
    let base = match std::env::var_os("CLOUDPBX_CONFORMANCE_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance"),
    };
    let dir = base.join("protos-c07-sip");
    dir.join("index.tsv").is_file().then_some(dir)
}

struct Case {
    number: usize,
    group: String,
    fits_udp: bool,
}

fn read_index(dir: &std::path::Path) -> Vec<Case> {
    let index = std::fs::read_to_string(dir.join("index.tsv")).unwrap();
    index
        .lines()
        .skip(1)
        .map(|line| {
            let columns: Vec<&str> = line.split('\t').collect();
            Case {
                number: columns[0].parse().unwrap(),
                group: columns[1].to_owned(),
                fits_udp: columns[8] == "yes",
            }
        })
        .collect()
}

/// Split `<L1> SP <L1 bytes> <L2> SP <L2 bytes>`.
fn split_templates(file: &[u8]) -> (Vec<u8>, Vec<u8>) {
    fn take(input: &[u8]) -> (&[u8], &[u8]) {
        let space = input.iter().position(|&b| b == b' ').unwrap();
        let len: usize = std::str::from_utf8(&input[..space])
            .unwrap()
            .parse()
            .unwrap();
        let rest = &input[space + 1..];
        (&rest[..len], &rest[len..])
    }
    let (invite, rest) = take(file);
    let (teardown, rest) = take(rest);
    assert!(rest.is_empty(), "templates use the whole file");
    (invite.to_vec(), teardown.to_vec())
}

fn replace(haystack: &[u8], token: &[u8], value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut rest = haystack;
    while let Some(at) = rest.windows(token.len()).position(|w| w == token) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(value);
        rest = &rest[at + token.len()..];
    }
    out.extend_from_slice(rest);
    out
}

/// Per-case placeholder values (README "Placeholders").
struct Fill {
    to: String,
    from: String,
    local_port: String,
    branch: String,
    call_id: String,
    cseq: String,
}

fn fill(template: &[u8], values: &Fill, invite: bool) -> Vec<u8> {
    let mut out = template.to_vec();
    for (token, value) in [
        (&b"<To>"[..], values.to.as_str()),
        (b"<From>", values.from.as_str()),
        (b"<From-Address>", "127.0.0.1"),
        (b"<Local-Port>", values.local_port.as_str()),
        (b"<Branch-ID>", values.branch.as_str()),
        (b"<Call-ID>", values.call_id.as_str()),
        (b"<CSeq>", values.cseq.as_str()),
        (b"<From-IP>", "192.0.2.1"),
        (b"<Teardown-Method>", "CANCEL"),
    ] {
        out = replace(&out, token, value.as_bytes());
    }
    if invite {
        // Last: the octets after the first CRLFCRLF (0 when there is none).
        let body = out
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(0, |at| out.len() - at - 4);
        out = replace(&out, b"<Content-Length>", body.to_string().as_bytes());
    }
    out
}

/// splitmix64: random hex tokens without a dependency.
struct Random(u64);

impl Random {
    fn hex(&mut self) -> String {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        format!("{:016x}", z ^ (z >> 31))
    }
}

/// What we know of one sent case, to check its answers.
struct Sent {
    number: usize,
    call_id: Option<Bytes>,
    /// CSeq of the INVITE and of the CANCEL, when they parse.
    cseqs: [Option<(u32, Method)>; 2],
    invite_final: Option<u16>,
    answered: bool,
}

#[derive(Default)]
struct Tally {
    by_class: BTreeMap<u16, u64>,
    by_status: BTreeMap<u16, u64>,
    unattributed: u64,
    unparseable: Vec<String>,
    wrong_copy: Vec<String>,
    invite_2xx: Vec<usize>,
}

/// Responses copy the request's header fields, so they are as large as the request: parse
/// them with the datagram size as the only limit (the server's own 8 KiB header-line limit is
/// a flood guard for what it receives, not a well-formedness rule).
fn parse_response(bytes: Bytes) -> Result<Option<pbx_sip::Response>, pbx_sip::ParseError> {
    let limits = pbx_sip::Limits {
        max_message_size: 65_536,
        max_header_block: 65_536,
        max_headers: 1024,
        max_header_line: 65_536,
        max_body_size: 65_536,
    };
    Message::parse_with(bytes, &limits, pbx_sip::BodyFraming::Datagram).map(Message::into_response)
}

fn parsed_ids(request: &[u8]) -> (Option<Bytes>, Option<(u32, Method)>) {
    let Ok(message) = Message::parse_datagram(Bytes::copy_from_slice(request)) else {
        return (None, None);
    };
    let call_id = message.headers().call_id().ok();
    let cseq = message.headers().cseq().ok().map(|c| (c.seq, c.method));
    (call_id, cseq)
}

/// Record one response datagram against the case it answers.
fn record(
    bytes: Bytes,
    sent: &mut [Sent],
    by_call_id: &HashMap<Bytes, usize>,
    by_branch: &HashMap<Bytes, usize>,
    tally: &mut Tally,
) {
    let raw = bytes.clone();
    let response = match parse_response(bytes) {
        Ok(Some(response)) => response,
        other => {
            let case = by_branch
                .iter()
                .find(|(branch, _)| raw.windows(branch.len()).any(|w| w == &branch[..]))
                .map(|(_, index)| sent[*index].number);
            let head = String::from_utf8_lossy(&raw[..raw.len().min(80)]).into_owned();
            let error = other.err().map(|e| e.to_string());
            tally.unparseable.push(format!(
                "case {case:?}, {} octets, {error:?}: {head:?}",
                raw.len()
            ));
            return;
        }
    };
    let status = response.status().0;
    *tally.by_class.entry(status / 100).or_default() += 1;
    *tally.by_status.entry(status).or_default() += 1;
    let call_id = response.call_id().ok();
    // The random branch suffix (the last 16 hex digits of the branch) is unique per case;
    // some mutated Call-IDs are not, so they are only the fallback.
    let index = response
        .top_via()
        .ok()
        .and_then(|via| via.branch)
        .and_then(|branch| branch.len().checked_sub(16).map(|at| branch.slice(at..)))
        .and_then(|suffix| by_branch.get(&suffix).copied())
        .or_else(|| call_id.as_ref().and_then(|id| by_call_id.get(id).copied()));
    let cseq = response.cseq().ok();
    let is_cancel = cseq.as_ref().is_some_and(|c| c.method == Method::Cancel);
    let Some(index) = index else {
        tally.unattributed += 1;
        if (200..300).contains(&status) && !is_cancel {
            tally.invite_2xx.push(usize::MAX);
        }
        return;
    };
    let case = &mut sent[index];
    case.answered = true;
    if (200..300).contains(&status) && !is_cancel {
        tally.invite_2xx.push(case.number);
    }
    if let Some(expected) = &case.call_id
        && call_id.as_ref() != Some(expected)
    {
        tally
            .wrong_copy
            .push(format!("case {}: Call-ID {:?}", case.number, call_id));
    }
    let expected_cseq = match &cseq {
        // Checked only against requests that parsed with a valid CSeq: when one did not,
        // the response may be a copy of what we cannot read.
        _ if case.cseqs.iter().any(Option::is_none) => true,
        None => false,
        Some(c) => case
            .cseqs
            .iter()
            .flatten()
            .any(|(seq, method)| *seq == c.seq && *method == c.method),
    };
    if !expected_cseq {
        tally.wrong_copy.push(format!(
            "case {}: CSeq {:?}, sent {:?}",
            case.number, cseq, case.cseqs
        ));
    }
    if !is_cancel && status >= 200 {
        case.invite_final = Some(status);
    }
}

async fn options_gets_200(socket: &UdpSocket, target: SocketAddr, what: &str) {
    // Answers to earlier cases may still be arriving: skip anything that is not ours.
    let local = socket.local_addr().unwrap();
    let (text, call_id) = support::request("OPTIONS", Transport::Udp, local, target, true);
    socket.send_to(text.as_bytes(), target).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let bytes = support::recv_udp(socket, left).await;
        let Some(bytes) = bytes else {
            panic!("no 200 to OPTIONS within 2 s after {what}")
        };
        let Ok(Some(response)) = Message::parse_datagram(bytes).map(Message::into_response) else {
            continue;
        };
        if response.call_id().ok().as_deref() == Some(call_id.as_bytes()) {
            assert_eq!(response.status().0, 200, "OPTIONS after {what}");
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protos_c07_sip_over_udp() {
    let Some(dir) = corpus_dir() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "PROTOS corpus missing (set CLOUDPBX_CONFORMANCE_DIR) and CI=true"
        );
        println!("SKIP protos_c07_sip_over_udp: corpus protos-c07-sip not found");
        return;
    };
    // Errors (an engine panic caught by the driver) are printed with the test output.
    let _ = tracing_subscriber::fmt()
        .with_env_filter("pbx_sip_net=error")
        .with_test_writer()
        .with_ansi(false)
        .try_init();
    let started = Instant::now();
    let server = support::start(
        vec![ListenerConfig::new(
            Transport::Udp,
            SocketAddr::from((support::V4, 0)),
        )],
        support::limits(),
    )
    .await;
    let target = server.addr(Transport::Udp, false);
    let socket = UdpSocket::bind((support::V4, 0)).await.unwrap();
    let local_port = socket.local_addr().unwrap().port();
    let mut random = Random(u64::from(local_port) << 32 ^ started.elapsed().as_nanos() as u64);

    let cases = read_index(&dir);
    assert_eq!(cases.len(), 4527);
    let mut sent: Vec<Sent> = Vec::new();
    let mut by_call_id: HashMap<Bytes, usize> = HashMap::new();
    let mut by_branch: HashMap<Bytes, usize> = HashMap::new();
    let mut tally = Tally::default();
    let mut skipped = 0u64;
    let mut groups_checked = 0u64;
    let mut buffer = vec![0u8; 65_536];

    for (position, case) in cases.iter().enumerate() {
        if !case.fits_udp {
            skipped += 1;
        } else {
            let file =
                std::fs::read(dir.join("cases").join(format!("{:07}", case.number))).unwrap();
            let (invite, teardown) = split_templates(&file);
            let values = Fill {
                to: format!("nobody-protos@{target}"),
                from: format!("protos@127.0.0.1:{local_port}"),
                local_port: local_port.to_string(),
                branch: random.hex(),
                call_id: random.hex(),
                cseq: (1000 + case.number).to_string(),
            };
            let invite = fill(&invite, &values, true);
            let teardown = fill(&teardown, &values, false);
            if invite.len() > MAX_DATAGRAM || teardown.len() > MAX_DATAGRAM {
                skipped += 1;
            } else {
                let (call_id, invite_cseq) = parsed_ids(&invite);
                let (_, cancel_cseq) = parsed_ids(&teardown);
                let index = sent.len();
                if let Some(id) = &call_id {
                    by_call_id.insert(id.clone(), index);
                }
                by_branch.insert(Bytes::from(values.branch.clone()), index);
                let cseqs = [invite_cseq, cancel_cseq];
                sent.push(Sent {
                    number: case.number,
                    call_id,
                    cseqs,
                    invite_final: None,
                    answered: false,
                });
                socket.send_to(&invite, target).await.unwrap();
                socket.send_to(&teardown, target).await.unwrap();
                // Collect answers until this case has its INVITE final or the window closes.
                let deadline = tokio::time::Instant::now() + CASE_WINDOW;
                while sent[index].invite_final.is_none() {
                    let received =
                        tokio::time::timeout_at(deadline, socket.recv(&mut buffer)).await;
                    let Ok(Ok(len)) = received else { break };
                    let bytes = Bytes::copy_from_slice(&buffer[..len]);
                    record(bytes, &mut sent, &by_call_id, &by_branch, &mut tally);
                }
            }
        }
        let group_ends = cases
            .get(position + 1)
            .is_none_or(|next| next.group != case.group);
        if group_ends {
            assert!(
                server.endpoint.is_running(),
                "driver died in group {}",
                case.group
            );
            options_gets_200(&socket, target, &format!("group {}", case.group)).await;
            groups_checked += 1;
        }
    }
    // Late answers.
    let drain_until = tokio::time::Instant::now() + Duration::from_millis(300);
    while let Ok(Ok(len)) = tokio::time::timeout_at(drain_until, socket.recv(&mut buffer)).await {
        let bytes = Bytes::copy_from_slice(&buffer[..len]);
        record(bytes, &mut sent, &by_call_id, &by_branch, &mut tally);
    }
    assert!(server.endpoint.is_running());
    options_gets_200(&socket, target, "the whole run").await;
    let engine_panics = server.endpoint.handle().engine_panics();
    let elapsed = started.elapsed();

    let silent = sent.iter().filter(|case| !case.answered).count();
    let no_invite_final = sent
        .iter()
        .filter(|case| case.invite_final.is_none())
        .count();
    let mut finals: BTreeMap<u16, u64> = BTreeMap::new();
    for case in &sent {
        if let Some(status) = case.invite_final {
            *finals.entry(status).or_default() += 1;
        }
    }
    println!(
        "PROTOS c07-sip over UDP: {} cases sent, {skipped} skipped (too big for one datagram)",
        sent.len()
    );
    println!("  responses by class: {:?}", tally.by_class);
    println!("  responses by status: {:?}", tally.by_status);
    println!("  INVITE finals by status: {finals:?}");
    println!("  cases with no answer at all: {silent}; without an INVITE final: {no_invite_final}");
    println!(
        "  unattributed responses (retransmissions, mangled ids): {}",
        tally.unattributed
    );
    println!(
        "  groups checked with OPTIONS: {groups_checked}; time: {:.1} s",
        elapsed.as_secs_f64()
    );

    println!("  engine panics caught by the driver: {engine_panics}");
    assert!(
        tally.invite_2xx.is_empty(),
        "2xx to INVITE in cases {:?}",
        tally.invite_2xx
    );
    assert!(
        tally.unparseable.is_empty(),
        "unparseable responses: {:?}",
        &tally.unparseable[..tally.unparseable.len().min(5)]
    );
    assert!(
        tally.wrong_copy.is_empty(),
        "headers not copied: {:?}",
        &tally.wrong_copy[..tally.wrong_copy.len().min(10)]
    );
    assert_eq!(sent.len() as u64 + skipped, 4527);
    assert_eq!(
        engine_panics, 0,
        "the engine panicked on PROTOS input (see the log above)"
    );
    server.endpoint.shutdown().await.unwrap();
}
