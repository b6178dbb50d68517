//! sipsak 0.9.8.1: an OPTIONS ping answered 200, and a usrloc-mode (`-U`) REGISTER with digest
//! that leaves a binding in the registrar.

use std::time::Duration;

use pbx_sip_net::Transport;

use crate::support::{Harness, Options, free_port, run_bounded, tool, v4};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipsak_options_ping() {
    let Some(sipsak) = tool("sipsak", "sipsak") else {
        return;
    };
    let harness = Harness::start(Options::default()).await;
    let server = harness.addr(Transport::Udp, false);
    let mut command = tokio::process::Command::new(sipsak);
    command.args(["-s", &format!("sip:ping@{server}")]).args([
        "-l",
        &free_port(v4()).to_string(),
        "-vv",
    ]);
    let (code, output) = run_bounded(command, Duration::from_secs(20)).await;
    assert_eq!(code, 0, "sipsak OPTIONS: {output}");
    assert!(output.contains("200"), "{output}");
    harness.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipsak_usrloc_registers_with_digest() {
    let Some(sipsak) = tool("sipsak", "sipsak") else {
        return;
    };
    // sipsak computes MD5 digests only.
    let harness = Harness::start(Options {
        digest: r#"["MD5"]"#,
        ..Options::default()
    })
    .await;
    let tenant = harness.provision("sak", 1).await;
    let account = tenant.accounts[0].clone();
    let server = harness.addr(Transport::Udp, false);
    let port = free_port(v4());
    let mut command = tokio::process::Command::new(sipsak);
    command
        .arg("-U")
        .args(["-C", &format!("sip:100@127.0.0.1:{port}")])
        .args(["-s", &format!("sip:100@{server}")])
        .args(["-l", &port.to_string()])
        .args(["-u", &account.auth_user, "-a", &account.password])
        .args(["-x", "600", "-vv"]);
    let (code, output) = run_bounded(command, Duration::from_secs(30)).await;
    assert_eq!(code, 0, "sipsak usrloc: {output}");
    assert!(output.contains("authorizing"), "challenged: {output}");
    assert!(
        output.contains("All usrloc tests completed successful"),
        "accepted with digest: {output}"
    );
    let events = harness
        .server()
        .store()
        .events()
        .list(&tenant.scope, 50)
        .await
        .expect("events");
    assert!(
        events.iter().any(|e| e.kind.contains("registered")),
        "a registration event was recorded: {events:?}"
    );
    harness.shutdown().await;
}
