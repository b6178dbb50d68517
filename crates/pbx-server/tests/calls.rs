//! Calls through the running server with real peers: a SIPp caller (authenticated with the
//! 407 challenge) calls a SIPp callee registered as another user of the same tenant; RTP from
//! the packaged G.711 A-law and RFC 2833 pcaps reaches the callee's media port through our
//! relay (counted by a UDP sink that stands in for the callee's media and echoes it back).
//! CANCEL, busy, no answer (ring timeout), hold/resume and BYE from either side; two baresip
//! clients call each other by extension with audio both ways through the relay.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use pbx_call::Disposition;
use pbx_server::calls::CallEnded;
use pbx_sip_net::Transport;
use tokio::net::UdpSocket;
use tokio::sync::oneshot;

use crate::support::{
    Account, Harness, Options, Tenant, free_port, repo_root, run_bounded, tool, v4, wait_bounded,
};

/// SIPp 3.6 and baresip 1.0 answer MD5 challenges only.
const DIGEST: &str = r#"["MD5"]"#;

fn scenario(name: &str) -> PathBuf {
    repo_root().join("bench/sipp-calls").join(name)
}

async fn harness(calls_toml: &'static str) -> Harness {
    Harness::start(Options {
        digest: DIGEST,
        ipv6: false,
        calls_toml,
        ..Options::default()
    })
    .await
}

/// The finished calls the server kept.
async fn records(harness: &Harness) -> Vec<CallEnded> {
    let (tx, rx) = oneshot::channel();
    harness
        .server()
        .endpoint()
        .execute(move |tu, _| {
            let _ = tx.send(tu.calls().map(|c| c.recent()).unwrap_or_default());
        })
        .await
        .expect("endpoint running");
    rx.await.expect("records")
}

/// Polls (bounded) until `count` calls have ended.
pub async fn wait_records(harness: &Harness, count: usize) -> Vec<CallEnded> {
    for _ in 0..100 {
        let seen = records(harness).await;
        if seen.len() >= count {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    records(harness).await
}

/// The operator's API token.
pub fn operator_token(harness: &Harness) -> String {
    match &harness.server().operator_login {
        pbx_server::serve::OperatorLogin::Generated(secret) => secret.clone(),
        other => panic!("operator token: {other:?}"),
    }
}

/// The tenant's closed CDRs as the API lists them, once `count` are closed (bounded wait).
pub async fn api_cdrs(harness: &Harness, tenant: &Tenant, count: usize) -> Vec<serde_json::Value> {
    api_cdrs_as(harness, &operator_token(harness), tenant, count).await
}

/// [`api_cdrs`] with a given token (the generated one is only known at the first start).
pub async fn api_cdrs_as(
    harness: &Harness,
    token: &str,
    tenant: &Tenant,
    count: usize,
) -> Vec<serde_json::Value> {
    let path = format!("/api/v1/tenants/{}/cdrs?state=closed", tenant.id);
    let mut items = Vec::new();
    for _ in 0..100 {
        let (status, body) =
            crate::support::http_request(harness.server().http_addr, "GET", &path, token, None)
                .await;
        assert_eq!(status, 200, "{body}");
        let page: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        items = page["items"].as_array().cloned().unwrap_or_default();
        if items.len() >= count {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    items
}

/// The media stream of `leg` (`caller` / `callee`) in an API CDR.
fn stream<'a>(cdr: &'a serde_json::Value, leg: &str) -> &'a serde_json::Value {
    cdr["media"]
        .as_array()
        .and_then(|streams| streams.iter().find(|s| s["leg"] == leg))
        .unwrap_or_else(|| panic!("no {leg} stream in {cdr}"))
}

/// Counts RTP packets by payload type and echoes each back to its sender.
struct Sink {
    port: u16,
    pcma: Arc<AtomicU64>,
    events: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Sink {
    async fn start() -> Sink {
        let socket = UdpSocket::bind((v4(), 0)).await.expect("sink bound");
        let port = socket.local_addr().expect("addr").port();
        let pcma = Arc::new(AtomicU64::new(0));
        let events = Arc::new(AtomicU64::new(0));
        let (p, e) = (pcma.clone(), events.clone());
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 2048];
            while let Ok((len, from)) = socket.recv_from(&mut buf).await {
                if len < 12 {
                    continue;
                }
                match buf[1] & 0x7f {
                    8 => p.fetch_add(1, Ordering::Relaxed),
                    101 => e.fetch_add(1, Ordering::Relaxed),
                    _ => 0,
                };
                let _ = socket.send_to(&buf[..len], from).await;
            }
        });
        Sink {
            port,
            pcma,
            events,
            task,
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// SIPp runs against one server, in a work directory holding `./pcap`.
pub struct Sipp {
    bin: PathBuf,
    work: tempfile::TempDir,
    target: SocketAddr,
    domain: String,
}

impl Sipp {
    pub fn new(bin: PathBuf, harness: &Harness, tenant: &Tenant) -> Sipp {
        let work = tempfile::tempdir().expect("tempdir");
        let _ = std::os::unix::fs::symlink("/usr/share/sip-tester", work.path().join("pcap"));
        Sipp {
            bin,
            work,
            target: harness.addr(Transport::Udp, false),
            domain: tenant.domain.clone(),
        }
    }

    fn command(&self, file: &Path, port: u16) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(&self.bin);
        command
            .arg(self.target.to_string())
            .arg("-sf")
            .arg(file)
            .args(["-i", "127.0.0.1", "-p", &port.to_string()])
            .args(["-mi", "127.0.0.1", "-mp", &free_port(v4()).to_string()])
            .args(["-key", "domain", &self.domain])
            .args(["-m", "1", "-timeout", "40s", "-trace_err", "-nostdin"])
            .current_dir(self.work.path())
            .kill_on_drop(true);
        command
    }

    /// Registers `account` with its Contact on `port` (the callee's SIP port).
    pub async fn register(&self, account: &Account, port: u16) {
        let csv = self.work.path().join(format!("reg-{port}.csv"));
        std::fs::write(
            &csv,
            format!(
                "SEQUENTIAL\n{ext};{domain};{user};{pw};[authentication username={user} password={pw}]\n",
                ext = account.extension,
                domain = self.domain,
                user = account.auth_user,
                pw = account.password,
            ),
        )
        .expect("csv");
        let mut command = self.command(&repo_root().join("bench/registration/reg_auth.xml"), port);
        command
            .arg("-inf")
            .arg(&csv)
            .args(["-key", "contact_port", &port.to_string()]);
        let (code, output) = run_bounded(command, Duration::from_secs(30)).await;
        assert_eq!(code, 0, "callee registration: {output}");
    }

    /// Starts the callee scenario on `port`, answering with RTP to `rtp_port`.
    pub fn callee(&self, file: &str, port: u16, rtp_port: u16) -> tokio::process::Child {
        self.callee_command(file, port, rtp_port)
            .spawn()
            .expect("sipp callee starts")
    }

    /// The callee scenario's command (for extra keys), as [`Self::callee`] runs it.
    pub fn callee_command(&self, file: &str, port: u16, rtp_port: u16) -> tokio::process::Command {
        let mut command = self.command(&scenario(file), port);
        command
            .args(["-key", "rtp_port", &rtp_port.to_string()])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        command
    }

    /// The caller scenario's command (`dialled` is the Request-URI user part).
    pub fn caller_command(
        &self,
        file: &str,
        caller: &Account,
        dialled: &str,
    ) -> tokio::process::Command {
        let mut command = self.command(&scenario(file), free_port(v4()));
        command
            .args(["-s", dialled])
            .args(["-key", "caller", &caller.extension])
            .args(["-au", &caller.auth_user, "-ap", &caller.password])
            .args(["-auth_uri", &format!("{dialled}@{}", self.domain)]);
        command
    }

    /// Runs the caller scenario to its end.
    async fn caller(&self, file: &str, caller: &Account, callee: &Account) -> (i32, String) {
        let mut command = self.command(&scenario(file), free_port(v4()));
        command
            .args(["-s", &callee.extension])
            .args(["-key", "caller", &caller.extension])
            .args(["-au", &caller.auth_user, "-ap", &caller.password])
            // SIPp's digest uri defaults to the remote host, not the Request-URI; we hold
            // clients to RFC 3261 §22.4 (the digest uri must be the Request-URI).
            .args([
                "-auth_uri",
                &format!("{}@{}", callee.extension, self.domain),
            ]);
        let (code, mut output) = run_bounded(command, Duration::from_secs(60)).await;
        if code != 0 {
            output.push_str(&self.logs());
        }
        (code, output)
    }

    /// The SIPp binary (for peers that are not run against the server, e.g. carriers).
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    pub fn logs(&self) -> String {
        let mut text = String::new();
        for entry in std::fs::read_dir(self.work.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            if entry.path().extension().is_some_and(|e| e == "log") {
                let body = std::fs::read_to_string(entry.path()).unwrap_or_default();
                text.push_str(&format!("\n{}:\n{body}", entry.path().display()));
            }
        }
        text
    }
}

/// Waits (bounded) for a SIPp callee to finish; returns its exit code and output.
async fn finish(child: tokio::process::Child) -> (i32, String) {
    wait_bounded(child, Duration::from_secs(45)).await
}

/// A server for SIPp (MD5 digest, IPv4, `calls_toml` in `[calls]`), a tenant `slug` with
/// `accounts` accounts (extensions 100, 101, ...) and SIPp against them; `None` (the test is
/// skipped) without SIPp.
pub async fn sipp_setup(
    calls_toml: &'static str,
    slug: &str,
    accounts: usize,
) -> Option<(Harness, Tenant, Sipp)> {
    let bin = tool("sipp", "sip-tester")?;
    let harness = harness(calls_toml).await;
    let tenant = harness.provision(slug, accounts).await;
    let sipp = Sipp::new(bin, &harness, &tenant);
    Some((harness, tenant, sipp))
}

/// The API CDR whose `callee` is `callee` (a failed expectation if there is none).
pub fn cdr_to<'a>(cdrs: &'a [serde_json::Value], callee: &str) -> &'a serde_json::Value {
    cdrs.iter()
        .find(|cdr| cdr["callee"] == callee)
        .unwrap_or_else(|| panic!("no CDR to {callee}: {cdrs:?}"))
}

/// A tenant with caller (accounts[0]) and callee (accounts[1]); the callee registered from
/// SIPp on a free port.
pub async fn call_setup(calls_toml: &'static str) -> Option<(Harness, Tenant, Sipp, u16)> {
    let (harness, tenant, sipp) = sipp_setup(calls_toml, "callco", 2).await?;
    let port = free_port(v4());
    sipp.register(&tenant.accounts[1], port).await;
    assert_eq!(
        harness.registrar_bindings(tenant.accounts[1].user_id).await,
        1
    );
    Some((harness, tenant, sipp, port))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_call_relays_g711_audio_and_rfc2833_dtmf() {
    let Some((harness, tenant, sipp, port)) = call_setup("").await else {
        return;
    };
    let sink = Sink::start().await;
    let callee = sipp.callee("uas_answer.xml", port, sink.port);
    let (code, output) = sipp
        .caller("uac_call.xml", &tenant.accounts[0], &tenant.accounts[1])
        .await;
    assert_eq!(code, 0, "caller: {output}");
    let (code, output) = finish(callee).await;
    assert_eq!(code, 0, "callee: {output}{}", sipp.logs());
    let pcma = sink.pcma.load(Ordering::Relaxed);
    let events = sink.events.load(Ordering::Relaxed);
    // g711a.pcap holds 236 packets over 7.05 s; the scenario plays it for 5.2 s (174 packets)
    // before the DTMF playback replaces it. Every packet of the first 5 s (167) must arrive.
    assert!(pcma >= 167, "G.711 packets at the callee: {pcma}");
    assert!(events >= 3, "RFC 2833 packets at the callee: {events}");
    let records = wait_records(&harness, 1).await;
    let record = &records[0];
    assert_eq!(record.disposition, Disposition::Answered);
    assert_eq!(record.hangup_side, pbx_call::HangupSide::Caller);
    assert_eq!(record.context.tenant_id, tenant.id);
    assert_eq!(record.context.user_id, tenant.accounts[0].user_id);
    assert_eq!(record.callee_normalised, tenant.accounts[1].extension);
    assert!(record.media_a.packets >= pcma, "{record:?}");
    assert!(
        record.media_b.packets > 0,
        "echo relayed back to the caller: {record:?}"
    );
    assert!(record.billable_secs >= 6, "{record:?}");
    // The durable CDR, listed through the API: one record for the attempt.
    let cdrs = api_cdrs(&harness, &tenant, 1).await;
    assert_eq!(cdrs.len(), 1, "{cdrs:?}");
    let cdr = &cdrs[0];
    assert_eq!(cdr["disposition"], "answered", "{cdr}");
    assert_eq!(cdr["direction"], "internal", "{cdr}");
    assert_eq!(cdr["state"], "closed", "{cdr}");
    assert_eq!(cdr["hangup_side"], "caller", "{cdr}");
    assert_eq!(cdr["sip_status"], 200, "{cdr}");
    assert_eq!(
        cdr["user_id"],
        tenant.accounts[0].user_id.to_string(),
        "{cdr}"
    );
    assert_eq!(
        cdr["device_id"],
        tenant.accounts[0].device_id.to_string(),
        "{cdr}"
    );
    assert_eq!(cdr["caller"], tenant.accounts[0].extension, "{cdr}");
    assert_eq!(cdr["callee_dialled"], tenant.accounts[1].extension, "{cdr}");
    assert_eq!(cdr["callee"], tenant.accounts[1].extension, "{cdr}");
    assert_eq!(cdr["billable_secs"], record.billable_secs, "{cdr}");
    assert!(cdr["billable_secs"].as_i64().unwrap() >= 6, "{cdr}");
    assert!(
        cdr["duration_secs"].as_i64() >= cdr["billable_secs"].as_i64(),
        "{cdr}"
    );
    for key in ["start_ms", "ring_ms", "answer_ms", "end_ms"] {
        assert!(cdr[key].as_i64().is_some(), "{key}: {cdr}");
    }
    let from_caller = stream(cdr, "caller")["packets_in"].as_u64().unwrap();
    let from_callee = stream(cdr, "callee")["packets_in"].as_u64().unwrap();
    assert_eq!(from_caller, record.media_a.packets, "{cdr}");
    assert!(
        from_caller >= pcma,
        "caller packets {from_caller} < {pcma}: {cdr}"
    );
    assert!(from_callee > 0, "{cdr}");
    harness.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_caller_cancel_gives_487() {
    let Some((harness, tenant, sipp, port)) = call_setup("").await else {
        return;
    };
    let callee = sipp.callee("uas_ring.xml", port, free_port(v4()));
    let (code, output) = sipp
        .caller("uac_cancel.xml", &tenant.accounts[0], &tenant.accounts[1])
        .await;
    assert_eq!(code, 0, "caller: {output}");
    let (code, output) = finish(callee).await;
    assert_eq!(code, 0, "callee: {output}");
    let records = wait_records(&harness, 1).await;
    assert_eq!(records[0].disposition, Disposition::Cancelled);
    assert_eq!(records[0].hangup_status, 487);
    let cdrs = api_cdrs(&harness, &tenant, 1).await;
    assert_eq!(cdrs.len(), 1, "{cdrs:?}");
    assert_eq!(cdrs[0]["disposition"], "cancelled", "{}", cdrs[0]);
    assert_eq!(cdrs[0]["sip_status"], 487, "{}", cdrs[0]);
    assert_eq!(cdrs[0]["hangup_side"], "caller", "{}", cdrs[0]);
    assert_eq!(cdrs[0]["billable_secs"], 0, "{}", cdrs[0]);
    assert!(cdrs[0]["ring_ms"].as_i64().is_some(), "{}", cdrs[0]);
    assert!(cdrs[0]["answer_ms"].is_null(), "{}", cdrs[0]);
    harness.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_busy_callee_gives_486() {
    let Some((harness, tenant, sipp, port)) = call_setup("").await else {
        return;
    };
    let callee = sipp.callee("uas_busy.xml", port, free_port(v4()));
    let (code, output) = sipp
        .caller("uac_busy.xml", &tenant.accounts[0], &tenant.accounts[1])
        .await;
    assert_eq!(code, 0, "caller: {output}");
    let (code, output) = finish(callee).await;
    assert_eq!(code, 0, "callee: {output}");
    let records = wait_records(&harness, 1).await;
    assert_eq!(records[0].disposition, Disposition::Busy);
    let cdrs = api_cdrs(&harness, &tenant, 1).await;
    assert_eq!(cdrs.len(), 1, "{cdrs:?}");
    assert_eq!(cdrs[0]["disposition"], "busy", "{}", cdrs[0]);
    assert_eq!(cdrs[0]["sip_status"], 486, "{}", cdrs[0]);
    assert_eq!(cdrs[0]["hangup_side"], "callee", "{}", cdrs[0]);
    assert_eq!(cdrs[0]["billable_secs"], 0, "{}", cdrs[0]);
    assert!(
        cdrs[0]["media"].as_array().unwrap().is_empty(),
        "{}",
        cdrs[0]
    );
    harness.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_no_answer_ends_with_480_at_the_ring_timeout() {
    let Some((harness, tenant, sipp, port)) = call_setup("ring_timeout_secs = 5\n").await else {
        return;
    };
    let callee = sipp.callee("uas_ring.xml", port, free_port(v4()));
    let (code, output) = sipp
        .caller("uac_noanswer.xml", &tenant.accounts[0], &tenant.accounts[1])
        .await;
    assert_eq!(code, 0, "caller: {output}");
    let (code, output) = finish(callee).await;
    assert_eq!(code, 0, "callee got CANCEL: {output}");
    let records = wait_records(&harness, 1).await;
    assert_eq!(records[0].disposition, Disposition::NoAnswer);
    assert_eq!(records[0].hangup_cause, "ring timeout");
    harness.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_hold_and_resume_pass_across() {
    let Some((harness, tenant, sipp, port)) = call_setup("").await else {
        return;
    };
    let callee = sipp.callee("uas_hold.xml", port, free_port(v4()));
    let (code, output) = sipp
        .caller("uac_hold.xml", &tenant.accounts[0], &tenant.accounts[1])
        .await;
    assert_eq!(code, 0, "caller: {output}");
    let (code, output) = finish(callee).await;
    assert_eq!(
        code,
        0,
        "callee saw sendonly then sendrecv: {output}{}",
        sipp.logs()
    );
    let records = wait_records(&harness, 1).await;
    assert_eq!(records[0].disposition, Disposition::Answered);
    harness.shutdown().await;
}

// The callee scenario needs `rrs="true"` on its INVITE: without it SIPp's [next_url] is
// empty and its BYE had no Request-URI (session 2's "caller never sees the BYE").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_bye_from_the_callee_reaches_the_caller() {
    let Some((harness, tenant, sipp, port)) = call_setup("").await else {
        return;
    };
    let callee = sipp.callee("uas_bye.xml", port, free_port(v4()));
    let (code, output) = sipp
        .caller("uac_wait_bye.xml", &tenant.accounts[0], &tenant.accounts[1])
        .await;
    assert_eq!(code, 0, "caller: {output}");
    let (code, output) = finish(callee).await;
    assert_eq!(code, 0, "callee: {output}{}", sipp.logs());
    let records = wait_records(&harness, 1).await;
    assert_eq!(records[0].hangup_side, pbx_call::HangupSide::Callee);
    let cdrs = api_cdrs(&harness, &tenant, 1).await;
    assert_eq!(cdrs.len(), 1, "{cdrs:?}");
    assert_eq!(cdrs[0]["disposition"], "answered", "{}", cdrs[0]);
    assert_eq!(cdrs[0]["hangup_side"], "callee", "{}", cdrs[0]);
    assert_eq!(cdrs[0]["hangup_cause"], "BYE", "{}", cdrs[0]);
    assert!(
        cdrs[0]["billable_secs"].as_i64().unwrap() >= 1,
        "{}",
        cdrs[0]
    );
    harness.shutdown().await;
}

/// An 8 kHz mono 16-bit WAV with a 440 Hz tone (baresip's `aufile` source).
fn write_tone(path: &Path, seconds: u32) {
    let samples = 8000 * seconds;
    let mut data = Vec::with_capacity(44 + 2 * samples as usize);
    let push32 = |d: &mut Vec<u8>, v: u32| d.extend_from_slice(&v.to_le_bytes());
    data.extend_from_slice(b"RIFF");
    push32(&mut data, 36 + 2 * samples);
    data.extend_from_slice(b"WAVEfmt ");
    push32(&mut data, 16);
    data.extend_from_slice(&1u16.to_le_bytes());
    data.extend_from_slice(&1u16.to_le_bytes());
    push32(&mut data, 8000);
    push32(&mut data, 16000);
    data.extend_from_slice(&2u16.to_le_bytes());
    data.extend_from_slice(&16u16.to_le_bytes());
    data.extend_from_slice(b"data");
    push32(&mut data, 2 * samples);
    for n in 0..samples {
        let value = (f64::from(n) * 2.0 * std::f64::consts::PI * 440.0 / 8000.0).sin() * 8000.0;
        data.extend_from_slice(&(value as i16).to_le_bytes());
    }
    std::fs::write(path, data).expect("tone written");
}

/// A baresip process (killed when dropped) for `account`, registered at `server`.
struct Phone {
    child: tokio::process::Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Phone {
    fn start(bin: &Path, account: &Account, server: SocketAddr, extra: &[&str]) -> Phone {
        let dir = tempfile::tempdir().expect("tempdir");
        let tone = dir.path().join("tone.wav");
        write_tone(&tone, 20);
        let rtp = free_port(v4()) & !1;
        let config = format!(
            "poll_method epoll\n\
             sip_listen 127.0.0.1:{sip}\n\
             net_interface 127.0.0.1\n\
             rtp_ports {rtp}-{rtp_end}\n\
             audio_player aufile,/dev/null\n\
             audio_source aufile,{tone}\n\
             audio_alert aufile,/dev/null\n\
             module_path /usr/lib/baresip/modules\n\
             module g711.so\n\
             module aufile.so\n\
             module_tmp account.so\n\
             module_app menu.so\n",
            sip = free_port(v4()),
            rtp_end = rtp + 9,
            tone = tone.display(),
        );
        std::fs::write(dir.path().join("config"), config).expect("config");
        let accounts = format!(
            "<sip:{ext}@{server}>;auth_user={user};auth_pass={pw};regint=60;answermode=auto;audio_codecs=PCMA\n",
            ext = account.extension,
            user = account.auth_user,
            pw = account.password,
        );
        std::fs::write(dir.path().join("accounts"), accounts).expect("accounts");
        std::fs::write(dir.path().join("contacts"), "").expect("contacts");
        let log = dir.path().join("baresip.log");
        let file = std::fs::File::create(&log).expect("log");
        let child = tokio::process::Command::new(bin)
            .arg("-f")
            .arg(dir.path())
            .args(extra)
            .stdin(std::process::Stdio::null())
            .stdout(file.try_clone().expect("log clone"))
            .stderr(file)
            .kill_on_drop(true)
            .spawn()
            .expect("baresip started");
        Phone {
            child,
            log,
            _dir: dir,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_phones_call_each_other_by_extension_with_audio_both_ways() {
    let Some(bin) = tool("baresip", "baresip-core") else {
        return;
    };
    let harness = harness("").await;
    let tenant = harness.provision("phones", 2).await;
    let server = harness.addr(Transport::Udp, false);
    let (alice, bob) = (&tenant.accounts[0], &tenant.accounts[1]);
    let callee = Phone::start(&bin, bob, server, &["-t", "40"]);
    let mut registered = false;
    for _ in 0..150 {
        if harness.registrar_bindings(bob.user_id).await == 1 {
            registered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(registered, "callee registered:\n{}", callee.log());
    // The caller dials the extension, talks about 8 s and hangs up (baresip -t).
    let dial = format!("/dial {}", bob.extension);
    let mut caller = Phone::start(&bin, alice, server, &["-e", &dial, "-t", "12"]);
    let status = tokio::time::timeout(Duration::from_secs(30), caller.child.wait()).await;
    assert!(status.is_ok(), "caller finished:\n{}", caller.log());
    let records = wait_records(&harness, 1).await;
    assert_eq!(
        records.len(),
        1,
        "caller:\n{}\ncallee:\n{}",
        caller.log(),
        callee.log()
    );
    let record = &records[0];
    assert_eq!(
        record.disposition,
        Disposition::Answered,
        "{record:?}\n{}",
        caller.log()
    );
    assert_eq!(record.callee_normalised, bob.extension);
    assert!(
        record.media_a.packets > 100,
        "caller -> callee RTP: {record:?}"
    );
    assert!(
        record.media_b.packets > 100,
        "callee -> caller RTP: {record:?}"
    );
    drop(callee);
    harness.shutdown().await;
}
