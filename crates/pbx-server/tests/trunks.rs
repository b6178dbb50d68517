//! Outbound trunk registration against a SIPp "carrier" on loopback that challenges with
//! 401 (bench/sipp-trunk/carrier_register.xml): the trunk is created through the HTTP API,
//! registers with digest, refreshes before the (short) granted lifetime ends, and its state
//! is visible through the API. Wrong credentials end in `failed` with the carrier's 403.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{Harness, Options, free_port, http_request, repo_root, tool, v4};

fn operator_token(harness: &Harness) -> String {
    match &harness.server().operator_login {
        pbx_server::serve::OperatorLogin::Generated(secret) => secret.clone(),
        other => panic!("fresh server must generate a token, got {other:?}"),
    }
}

fn carrier(
    sipp: &std::path::Path,
    port: u16,
    password: &str,
    work: &std::path::Path,
) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(sipp);
    command
        .arg("-sf")
        .arg(repo_root().join("bench/sipp-trunk/carrier_register.xml"))
        .args(["-i", "127.0.0.1", "-p", &port.to_string()])
        .args(["-mp", &free_port(v4()).to_string()])
        .args([
            "-m", "1", "-key", "user", "acct-1", "-key", "password", password,
        ])
        .args([
            "-key",
            "expires",
            "3",
            "-timeout",
            "30s",
            "-trace_err",
            "-nostdin",
        ])
        .current_dir(work)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    command
}

async fn create_trunk(harness: &Harness, token: &str, port: u16) -> String {
    let body = json!({
        "name": "sipp-carrier",
        "host": "127.0.0.1",
        "port": port,
        "auth_username": "acct-1",
        "auth_password": "carrier-pass-1",
        "register": true,
        "register_expires_secs": 60,
        "inbound_networks": ["127.0.0.1/32"]
    });
    let (status, text) = http_request(
        harness.server().http_addr,
        "POST",
        "/api/v1/trunks",
        token,
        Some(&body.to_string()),
    )
    .await;
    assert_eq!(status, 201, "{text}");
    let created: Value = serde_json::from_str(&text).unwrap();
    created["id"].as_str().unwrap().to_owned()
}

async fn registration(harness: &Harness, token: &str, id: &str) -> Value {
    let (status, text) = http_request(
        harness.server().http_addr,
        "GET",
        &format!("/api/v1/trunks/{id}"),
        token,
        None,
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let trunk: Value = serde_json::from_str(&text).unwrap();
    trunk["registration"].clone()
}

#[tokio::test]
async fn trunk_registers_and_refreshes_with_sipp_carrier() {
    let Some(sipp) = tool("sipp", "sip-tester") else {
        return;
    };
    let harness = Harness::start(Options::default()).await;
    let token = operator_token(&harness);
    let work = tempfile::tempdir().unwrap();
    let port = free_port(v4());
    let child = carrier(&sipp, port, "carrier-pass-1", work.path())
        .spawn()
        .unwrap();
    // Let SIPp bind before the first REGISTER (a lost first REGISTER would only be retried).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let id = create_trunk(&harness, &token, port).await;

    // Three rounds: the challenged registration and two refreshes (lifetime 3 s).
    let output = tokio::time::timeout(Duration::from_secs(40), child.wait_with_output())
        .await
        .expect("SIPp carrier finished")
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        output.status.code(),
        Some(0),
        "SIPp carrier scenario failed:\n{text}"
    );

    let state = registration(&harness, &token, &id).await;
    assert_eq!(state["state"], "registered", "{state}");
    assert_eq!(state["last_status"], 200);
    assert!(state["registrations"].as_u64().unwrap() >= 3, "{state}");
    assert!(state["expires_at_ms"].as_i64().unwrap() > pbx_api::now_ms() - 5_000);
    harness.shutdown().await;
}

#[tokio::test]
async fn trunk_with_wrong_password_reports_failure() {
    let Some(sipp) = tool("sipp", "sip-tester") else {
        return;
    };
    let harness = Harness::start(Options::default()).await;
    let token = operator_token(&harness);
    let work = tempfile::tempdir().unwrap();
    let port = free_port(v4());
    let child = carrier(&sipp, port, "not-the-password", work.path())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let id = create_trunk(&harness, &token, port).await;
    let mut state = Value::Null;
    for _ in 0..100 {
        state = registration(&harness, &token, &id).await;
        if state["state"] == "failed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(state["state"], "failed", "{state}");
    assert_eq!(state["last_status"], 403, "{state}");
    assert!(
        state["last_error"].as_str().unwrap().contains("403"),
        "{state}"
    );
    let output = tokio::time::timeout(Duration::from_secs(40), child.wait_with_output())
        .await
        .expect("SIPp carrier finished")
        .unwrap();
    assert_ne!(
        output.status.code(),
        Some(0),
        "the carrier refused the credentials"
    );
    harness.shutdown().await;
}
