//! The real `sipp` binary runs bench/sipp/*.xml against the transport and the test TU.
//! Skipped with a notice when sipp is not installed, except under CI=true.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use pbx_sip_net::{ListenerConfig, Transport};

use crate::support;

fn sipp_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("sipp"))
        .find(|candidate| candidate.is_file())
}

fn scenario(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../bench/sipp")
        .join(name)
}

/// A port free on 127.0.0.1 for both UDP and TCP right now.
fn free_port() -> u16 {
    for _ in 0..100 {
        let udp = std::net::UdpSocket::bind((support::V4, 0)).unwrap();
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind((support::V4, port)).is_ok() {
            return port;
        }
    }
    panic!("no port free for both UDP and TCP in 100 tries");
}

/// Run one scenario; returns sipp's exit code (None when skipped).
async fn run_sipp(file: &str, transport: Transport, calls: u32) -> Option<i32> {
    let Some(sipp) = sipp_binary() else {
        let message = "sipp is not installed (apt-get install -y sip-tester)";
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{message}, and CI=true"
        );
        println!("SKIP sipp {file}: {message}");
        return None;
    };
    let server = support::start(
        vec![
            ListenerConfig::new(Transport::Udp, SocketAddr::from((support::V4, 0))),
            ListenerConfig::new(Transport::Tcp, SocketAddr::from((support::V4, 0))),
        ],
        support::limits(),
    )
    .await;
    let target = server.addr(transport, false);
    let workdir = tempfile::tempdir().unwrap();
    let mode = if transport == Transport::Udp {
        "u1"
    } else {
        "t1"
    };
    let mut command = tokio::process::Command::new(sipp);
    command
        .arg(target.to_string())
        .args(["-sf", scenario(file).to_str().unwrap()])
        .args(["-i", "127.0.0.1", "-t", mode])
        .args([
            "-p",
            &free_port().to_string(),
            "-mp",
            &free_port().to_string(),
        ])
        .args(["-m", &calls.to_string(), "-r", "20", "-l", "10"])
        .args(["-timeout", "10s", "-trace_err", "-nostdin"])
        .current_dir(workdir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(30), command.output())
        .await
        .expect("sipp finished within 30 s")
        .expect("sipp started");
    let code = output.status.code().unwrap_or(-1);
    if code != 0 {
        println!("sipp stdout:\n{}", String::from_utf8_lossy(&output.stdout));
        println!("sipp stderr:\n{}", String::from_utf8_lossy(&output.stderr));
        for entry in std::fs::read_dir(workdir.path()).unwrap().flatten() {
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            println!("{}:\n{text}", entry.path().display());
        }
    }
    assert!(server.endpoint.is_running());
    let tu = server.endpoint.shutdown().await.unwrap();
    assert!(tu.answered.get(&200).copied().unwrap_or(0) >= u64::from(calls));
    Some(code)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_options_udp() {
    if let Some(code) = run_sipp("options.xml", Transport::Udp, 20).await {
        assert_eq!(code, 0, "sipp options.xml over UDP");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_register_udp() {
    if let Some(code) = run_sipp("register.xml", Transport::Udp, 20).await {
        assert_eq!(code, 0, "sipp register.xml over UDP");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_options_and_register_tcp() {
    for file in ["options.xml", "register.xml"] {
        if let Some(code) = run_sipp(file, Transport::Tcp, 10).await {
            assert_eq!(code, 0, "sipp {file} over TCP");
        }
    }
}
