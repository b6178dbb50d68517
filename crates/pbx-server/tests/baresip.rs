//! baresip 1.0.0 registers over UDP, TCP and TLS and stays registered through the server's
//! keep-alives and its own re-registrations (short expiry, short keep-alive interval).

use std::path::Path;
use std::time::Duration;

use pbx_sip_net::Transport;

use crate::support::{Account, Harness, Options, free_port, tool, v4};

/// Re-registration interval baresip is told to use (the server's minimum is 10 s).
const REGINT_SECS: u32 = 12;

/// baresip 1.0.0's libre answers MD5 challenges only and gives up ("Function not
/// implemented") on any SHA-256 challenge in the 401, even one listed after MD5.
const DIGEST: &str = r#"["MD5"]"#;

/// A baresip process killed (and reaped) when dropped.
struct Baresip {
    child: Option<tokio::process::Child>,
    log: std::path::PathBuf,
}

impl Baresip {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn stop(mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
        }
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
    }
}

fn write_config(dir: &Path, account: &Account, target: &str, cafile: Option<&Path>) {
    let mut config = format!(
        "poll_method epoll\n\
         sip_listen 127.0.0.1:{sip}\n\
         net_interface 127.0.0.1\n\
         rtp_ports 30000-30099\n\
         audio_player aufile,/dev/null\n\
         audio_alert aufile,/dev/null\n\
         module_path /usr/lib/baresip/modules\n\
         module g711.so\n\
         module_tmp account.so\n",
        sip = free_port(v4()),
    );
    if let Some(cafile) = cafile {
        config.push_str(&format!("sip_cafile {}\n", cafile.display()));
    }
    std::fs::write(dir.join("config"), config).expect("config");
    let accounts = format!(
        "<sip:{ext}@{target}>;auth_user={user};auth_pass={pw};regint={REGINT_SECS};audio_codecs=PCMU\n",
        ext = account.extension,
        user = account.auth_user,
        pw = account.password,
    );
    std::fs::write(dir.join("accounts"), accounts).expect("accounts");
    std::fs::write(dir.join("contacts"), "").expect("contacts");
}

async fn stays_registered(transport: Transport) {
    let Some(baresip) = tool("baresip", "baresip-core") else {
        return;
    };
    let harness = Harness::start(Options {
        min_expiry_secs: 10,
        nat_keepalive_secs: 2,
        digest: DIGEST,
        ..Options::default()
    })
    .await;
    let tenant = harness.provision("bare", 1).await;
    let account = tenant.accounts[0].clone();
    let server = harness.addr(transport, false);
    let work = tempfile::tempdir().expect("tempdir");
    let (target, cafile) = match transport {
        Transport::Udp => (format!("{server};transport=udp"), None),
        Transport::Tcp => (format!("{server};transport=tcp"), None),
        _ => (
            format!("{server};transport=tls"),
            Some(harness.dir.path().join("tls/cert.pem")),
        ),
    };
    write_config(work.path(), &account, &target, cafile.as_deref());
    let log = work.path().join("baresip.log");
    let log_file = std::fs::File::create(&log).expect("log file");
    let child = tokio::process::Command::new(baresip)
        .arg("-f")
        .arg(work.path())
        .args(["-t", "40"]) // hard bound: baresip quits by itself after 40 s
        .stdin(std::process::Stdio::null())
        .stdout(log_file.try_clone().expect("log clone"))
        .stderr(log_file)
        .kill_on_drop(true)
        .spawn()
        .expect("baresip started");
    let peer = Baresip {
        child: Some(child),
        log,
    };

    // Registered: the registrar holds the binding and the store has it.
    let mut registered = false;
    for _ in 0..150 {
        if harness.registrar_bindings(account.user_id).await == 1 {
            registered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(registered, "baresip registered:\n{}", peer.log());
    assert_eq!(harness.wait_stored_bindings(&tenant, 1).await, 1);
    let first = harness.stored_bindings(&tenant).await[0].record.clone();
    let expected = match transport {
        Transport::Udp => pbx_domain::Transport::Udp,
        Transport::Tcp => pbx_domain::Transport::Tcp,
        _ => pbx_domain::Transport::Tls,
    };
    assert_eq!(first.flow.transport, expected);

    // Through several keep-alive intervals and at least one re-registration, the binding stays
    // (refreshed: a higher CSeq on the same Call-ID).
    let mut refreshed = None;
    for _ in 0..200 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = harness.stored_bindings(&tenant).await;
        if let Some(binding) = now.first()
            && binding.record.call_id == first.call_id
            && binding.record.cseq > first.cseq
        {
            refreshed = Some(binding.record.clone());
            break;
        }
    }
    let refreshed = refreshed.unwrap_or_else(|| panic!("baresip re-registered:\n{}", peer.log()));
    assert!(refreshed.expires_at_ms > first.expires_at_ms);
    assert_eq!(
        harness.registrar_bindings(account.user_id).await,
        1,
        "still exactly one binding after keep-alives and a refresh"
    );
    peer.stop().await;
    harness.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_stays_registered_udp() {
    stays_registered(Transport::Udp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_stays_registered_tcp() {
    stays_registered(Transport::Tcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_stays_registered_tls() {
    stays_registered(Transport::Tls).await;
}
