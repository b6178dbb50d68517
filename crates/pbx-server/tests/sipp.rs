//! SIPp registers 20 users with digest auth (injection CSV), refreshes and unregisters, over UDP
//! and TCP on IPv4 and over UDP on IPv6 ([::1]); the registrar and the store hold, then drop,
//! the bindings.
//!
//! Over IPv6 SIPp 3.6 writes the digest `uri` without the brackets of the Request-URI's host
//! (`sip:::1:5060` for `sip:[::1]:5060`); the registrar accepts that (pbx-sip-auth
//! `digest_uri_matches`), and `sipp_registers_refreshes_unregisters_udp_ipv6` proves it.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use pbx_sip_net::Transport;

use crate::support::{Harness, Options, Tenant, free_port, repo_root, run_bounded, tool};

const USERS: usize = 20;

/// users.csv for the scenarios in bench/registration/.
pub fn write_users_csv(path: &Path, tenant: &Tenant) {
    let mut text = String::from("SEQUENTIAL\n");
    for account in &tenant.accounts {
        text.push_str(&format!(
            "{ext};{domain};{user};{pw};[authentication username={user} password={pw}]\n",
            ext = account.extension,
            domain = tenant.domain,
            user = account.auth_user,
            pw = account.password,
        ));
    }
    std::fs::write(path, text).expect("users.csv written");
}

struct Run<'a> {
    sipp: &'a Path,
    work: &'a Path,
    target: SocketAddr,
    local: IpAddr,
    port: u16,
    transport: Transport,
}

impl Run<'_> {
    async fn scenario(&self, file: &str, calls: usize) -> (i32, String) {
        let scenario = repo_root().join("bench/registration").join(file);
        let mut command = tokio::process::Command::new(self.sipp);
        let mode = if self.transport == Transport::Tcp {
            "t1"
        } else {
            "u1"
        };
        command
            .arg(self.target.to_string())
            .arg("-sf")
            .arg(&scenario)
            .arg("-inf")
            .arg(self.work.join("users.csv"))
            .args(["-i", &self.local.to_string(), "-t", mode])
            .args(["-p", &self.port.to_string()])
            .args(["-mp", &free_port(self.local).to_string()])
            .args(["-key", "contact_port", &self.port.to_string()])
            .args(["-m", &calls.to_string(), "-r", "50", "-l", "50"])
            .args(["-timeout", "20s", "-trace_err", "-nostdin"])
            .current_dir(self.work);
        let (code, mut output) = run_bounded(command, Duration::from_secs(40)).await;
        if code != 0 {
            for entry in std::fs::read_dir(self.work).into_iter().flatten().flatten() {
                if entry.path().extension().is_some_and(|e| e == "log") {
                    let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
                    output.push_str(&format!("\n{}:\n{text}", entry.path().display()));
                }
            }
        }
        (code, output)
    }
}

async fn register_refresh_unregister(transport: Transport, ipv6: bool) {
    let Some(sipp) = tool("sipp", "sip-tester") else {
        return;
    };
    if ipv6 && !pbx_sip_net::ipv6_loopback_available() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "::1 unavailable, and CI=true"
        );
        println!("SKIP: IPv6 loopback (::1) is not available");
        return;
    }
    // SIPp 3.6 answers the first challenge only, and only MD5 (AKA aside).
    let harness = Harness::start(Options {
        digest: r#"["MD5", "SHA-256"]"#,
        ..Options::default()
    })
    .await;
    let tenant = harness.provision("sippco", USERS).await;
    let work = tempfile::tempdir().expect("tempdir");
    write_users_csv(&work.path().join("users.csv"), &tenant);
    let local: IpAddr = if ipv6 {
        "::1".parse().expect("v6")
    } else {
        "127.0.0.1".parse().expect("v4")
    };
    let run = Run {
        sipp: &sipp,
        work: work.path(),
        target: harness.addr(transport, ipv6),
        local,
        port: free_port(local),
        transport,
    };

    let (code, output) = run.scenario("reg_refresh.xml", USERS).await;
    assert_eq!(code, 0, "sipp reg_refresh.xml: {output}");
    for account in &tenant.accounts {
        assert_eq!(
            harness.registrar_bindings(account.user_id).await,
            1,
            "user {} registered once (refresh did not add a binding)",
            account.extension
        );
    }
    assert_eq!(harness.wait_stored_bindings(&tenant, USERS).await, USERS);
    let stored = harness.stored_bindings(&tenant).await;
    assert!(
        stored
            .iter()
            .all(|b| b.record.contact_uri.contains(&run.port.to_string())),
        "contacts carry SIPp's port"
    );
    // The refresh (CSeq 4) is in the live bindings; the store holds the first registration
    // (CSeq 2) or the refresh, whichever its writer saw last: a plain refresh is written
    // back lazily, so the stored CSeq may lag (the refresh write-back rule in pbx-registrar).
    for account in &tenant.accounts {
        assert_eq!(
            harness.registrar_cseqs(account.user_id).await,
            [4],
            "user {} refreshed (CSeq 4)",
            account.extension
        );
    }
    assert!(
        stored.iter().all(|b| b.record.cseq >= 2),
        "stored once registered"
    );

    let (code, output) = run.scenario("unreg_auth.xml", USERS).await;
    assert_eq!(code, 0, "sipp unreg_auth.xml: {output}");
    for account in &tenant.accounts {
        assert_eq!(harness.registrar_bindings(account.user_id).await, 0);
    }
    assert_eq!(harness.wait_stored_bindings(&tenant, 0).await, 0);
    harness.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_registers_refreshes_unregisters_udp() {
    register_refresh_unregister(Transport::Udp, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_registers_refreshes_unregisters_tcp() {
    register_refresh_unregister(Transport::Tcp, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_registers_refreshes_unregisters_udp_ipv6() {
    register_refresh_unregister(Transport::Udp, true).await;
}
