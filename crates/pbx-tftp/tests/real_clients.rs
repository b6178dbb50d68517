//! The Debian clients fetch every brand's files over loopback.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use pbx_tftp::server::TransferResult;
use tokio::process::Command;

use crate::support::{brand_files, client_binary, start_default};

async fn run(command: &mut Command) -> Output {
    command.kill_on_drop(true);
    tokio::time::timeout(Duration::from_secs(30), command.output())
        .await
        .expect("client did not finish within 30 s")
        .expect("client could not be started")
}

async fn tftp_hpa(binary: &Path, port: u16, mode: &str, remote: &str, local: &Path) -> Output {
    let command = format!("get {remote} {}", local.display());
    run(Command::new(binary)
        .args(["-m", mode, "127.0.0.1", &port.to_string(), "-c"])
        .args(command.split(' ')))
    .await
}

async fn atftp_get(
    binary: &Path,
    port: u16,
    options: &[&str],
    remote: &str,
    local: &Path,
) -> Output {
    let mut command = Command::new(binary);
    for option in options {
        command.args(["--option", option]);
    }
    command
        .args(["--tftp-timeout", "1", "-g", "-r", remote, "-l"])
        .arg(local);
    run(command.args(["127.0.0.1", &port.to_string()])).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tftp_hpa_fetches_every_file_in_binary_mode() {
    let Some(binary) = client_binary("tftp") else {
        return;
    };
    let fixture = start_default().await;
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in brand_files() {
        let local = dir.path().join(name.replace('/', "_"));
        // tftp-hpa exits 0 even on errors, so the file's content is the verdict.
        let output = tftp_hpa(&binary, fixture.addr.port(), "binary", name, &local).await;
        let received = std::fs::read(&local).unwrap_or_default();
        assert!(
            received == content,
            "{name}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let events = fixture.events.lock().unwrap();
    assert!(
        events
            .iter()
            .all(|event| event.result == TransferResult::Completed)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tftp_hpa_netascii_round_trips_text() {
    let Some(binary) = client_binary("tftp") else {
        return;
    };
    let fixture = start_default().await;
    let dir = tempfile::tempdir().unwrap();
    let (name, content) = brand_files().into_iter().nth(2).unwrap();
    let local = dir.path().join("ascii.cfg");
    let output = tftp_hpa(&binary, fixture.addr.port(), "netascii", name, &local).await;
    let received = std::fs::read(&local).unwrap_or_default();
    assert!(
        received == content,
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn atftp_fetches_with_and_without_negotiation() {
    let Some(binary) = client_binary("atftp") else {
        return;
    };
    let fixture = start_default().await;
    let dir = tempfile::tempdir().unwrap();
    let variants: [&[&str]; 4] = [
        &["blksize disable", "tsize disable", "windowsize disable"],
        &["blksize 1428", "tsize 0"],
        &["blksize 1428", "tsize 0", "windowsize 8"],
        &["blksize 65464", "timeout 2"],
    ];
    for (index, options) in variants.iter().enumerate() {
        for (name, content) in brand_files() {
            let local = dir
                .path()
                .join(format!("{index}_{}", name.replace('/', "_")));
            let output = atftp_get(&binary, fixture.addr.port(), options, name, &local).await;
            let received = std::fs::read(&local).unwrap_or_default();
            assert!(
                output.status.success() && received == content,
                "{name} with {options:?}: {}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
    assert_eq!(
        fixture
            .stats
            .failed
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn atftp_gets_errors_for_missing_file_traversal_and_upload() {
    let Some(binary) = client_binary("atftp") else {
        return;
    };
    let fixture = start_default().await;
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("out");
    for remote in [
        "acme/missing.cfg",
        "../../etc/passwd",
        "/../etc/passwd",
        "acme\\..\\..\\x",
    ] {
        let output = atftp_get(&binary, fixture.addr.port(), &["tsize 0"], remote, &local).await;
        let received = std::fs::read(&local).unwrap_or_default();
        assert!(!output.status.success(), "{remote}: atftp reported success");
        assert!(received.is_empty(), "{remote}: got content");
    }
    let upload = dir.path().join("log.txt");
    std::fs::write(&upload, "boot log").unwrap();
    let output = run(Command::new(&binary).args(["-p", "-l"]).arg(&upload).args([
        "-r",
        "acme/0004f2aabbcc-app.log",
        "127.0.0.1",
        &fixture.addr.port().to_string(),
    ]))
    .await;
    assert!(!output.status.success());
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(text.contains("Access violation"), "{text}");
    let events = fixture.events.lock().unwrap();
    assert!(
        events
            .iter()
            .any(|event| event.result == TransferResult::WriteRefused)
    );
}
