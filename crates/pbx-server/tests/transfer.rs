//! Blind transfer (RFC 3515 REFER) with real peers: a SIPp caller (`uac_wait_bye.xml`) calls
//! extension 101, a SIPp callee (`uas_transfer_refer.xml`) that answers and transfers the call
//! to extension 102 with REFER; it fails unless it gets 202 and the NOTIFYs (100 Trying,
//! 180 Ringing, 200 OK terminated) and then our BYE. Extension 102 (`uas_transfer_target.xml`)
//! fails unless its INVITE carries Referred-By and a sendrecv PCMA offer; it answers, talks
//! 1 s and hangs up, and the caller gets that BYE. Two CDRs through the API: the original
//! call, ended for the transferor as `transferred`, and the transferred call to 102.
//! The same when the transferor hangs up right after the first NOTIFY, as most desk phones do
//! (`uas_transfer_refer_bye.xml`): the caller stays and is connected to 102.
//! Never an open relay: REFERs to a foreign domain (403) and to an unknown extension (404,
//! `uas_transfer_refused.xml`) reach nobody, and leave one CDR.

use std::time::Duration;

use pbx_call::{Disposition, HangupSide};

use crate::calls::{Sipp, api_cdrs};
use crate::support::{Harness, Options, Tenant, free_port, run_bounded, tool, v4, wait_bounded};

/// Extension 100 (SIPp, `uac_wait_bye.xml`) calls 101, which runs `transferor` and transfers
/// the call to 102 (`uas_transfer_target.xml`); every scenario must pass. Returns the
/// running server and the tenant.
async fn transfer_with(transferor_scenario: &str, slug: &str) -> Option<(Harness, Tenant)> {
    let bin = tool("sipp", "sip-tester")?;
    let harness = Harness::start(Options {
        digest: r#"["MD5"]"#,
        ipv6: false,
        calls_toml: "",
        ..Options::default()
    })
    .await;
    let tenant = harness.provision(slug, 3).await;
    let sipp = Sipp::new(bin, &harness, &tenant);
    let (transferor, target) = (&tenant.accounts[1], &tenant.accounts[2]);
    let transferor_port = free_port(v4());
    sipp.register(transferor, transferor_port).await;
    let target_port = free_port(v4());
    sipp.register(target, target_port).await;
    assert_eq!(harness.registrar_bindings(target.user_id).await, 1);

    let target_sipp = sipp.callee("uas_transfer_target.xml", target_port, free_port(v4()));
    let mut transferor_command =
        sipp.callee_command(transferor_scenario, transferor_port, free_port(v4()));
    transferor_command.args(["-key", "target", &target.extension]);
    let transferor_sipp = transferor_command.spawn().expect("sipp transferor starts");
    let caller = sipp.caller_command(
        "uac_wait_bye.xml",
        &tenant.accounts[0],
        &transferor.extension,
    );
    let (code, output) = run_bounded(caller, Duration::from_secs(60)).await;
    assert_eq!(code, 0, "caller: {output}{}", sipp.logs());
    let (code, output) = wait_bounded(transferor_sipp, Duration::from_secs(45)).await;
    assert_eq!(code, 0, "transferor: {output}{}", sipp.logs());
    let (code, output) = wait_bounded(target_sipp, Duration::from_secs(45)).await;
    assert_eq!(code, 0, "target: {output}{}", sipp.logs());
    Some((harness, tenant))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_callee_transfers_the_caller_to_another_extension_with_refer() {
    let Some((harness, tenant)) = transfer_with("uas_transfer_refer.xml", "xferco").await else {
        return;
    };
    let (transferor, target) = (&tenant.accounts[1], &tenant.accounts[2]);
    // The engine's records: the original call and the transferred one.
    let records = crate::calls::wait_records(&harness, 2).await;
    assert_eq!(records.len(), 2, "{records:?}");
    let original = records
        .iter()
        .find(|r| r.callee_normalised == transferor.extension)
        .expect("the original call's record");
    assert_eq!(original.disposition, Disposition::Answered);
    assert_eq!(original.hangup_cause, "transferred");
    assert_eq!(original.hangup_side, HangupSide::Callee);
    let transferred = records
        .iter()
        .find(|r| r.callee_normalised == target.extension)
        .expect("the transferred call's record");
    assert_eq!(transferred.disposition, Disposition::Answered);
    assert_eq!(transferred.hangup_side, HangupSide::Callee);
    assert_eq!(transferred.caller, tenant.accounts[0].extension);
    assert_eq!(transferred.context.callee_user_id, Some(target.user_id));
    assert_ne!(transferred.call_key, original.call_key);

    // The durable CDRs, through the API.
    let cdrs = api_cdrs(&harness, &tenant, 2).await;
    assert_eq!(cdrs.len(), 2, "{cdrs:?}");
    let cdr = |callee: &str| {
        cdrs.iter()
            .find(|cdr| cdr["callee"] == callee)
            .unwrap_or_else(|| panic!("no CDR to {callee}: {cdrs:?}"))
    };
    let first = cdr(&transferor.extension);
    assert_eq!(first["disposition"], "answered", "{first}");
    assert_eq!(first["hangup_cause"], "transferred", "{first}");
    assert_eq!(first["hangup_side"], "callee", "{first}");
    assert_eq!(first["caller"], tenant.accounts[0].extension, "{first}");
    assert!(first["billable_secs"].as_i64() >= Some(1), "{first}");
    let second = cdr(&target.extension);
    assert_eq!(second["disposition"], "answered", "{second}");
    assert_eq!(second["direction"], "internal", "{second}");
    assert_eq!(second["caller"], tenant.accounts[0].extension, "{second}");
    assert_eq!(second["callee_dialled"], target.extension, "{second}");
    assert_eq!(second["hangup_side"], "callee", "{second}");
    assert_eq!(second["sip_status"], 200, "{second}");
    assert!(second["billable_secs"].as_i64() >= Some(1), "{second}");
    for key in ["start_ms", "ring_ms", "answer_ms", "end_ms"] {
        assert!(second[key].as_i64().is_some(), "{key}: {second}");
    }
    assert_eq!(first["sip_call_id"], second["sip_call_id"], "{cdrs:?}");
    harness.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_refer_to_a_foreign_domain_or_unknown_extension_is_refused_and_not_forwarded() {
    let Some(bin) = tool("sipp", "sip-tester") else {
        return;
    };
    let harness = Harness::start(Options {
        digest: r#"["MD5"]"#,
        ipv6: false,
        calls_toml: "",
        ..Options::default()
    })
    .await;
    let tenant = harness.provision("xferno", 3).await;
    let sipp = Sipp::new(bin, &harness, &tenant);
    let (transferor, target) = (&tenant.accounts[1], &tenant.accounts[2]);
    let transferor_port = free_port(v4());
    sipp.register(transferor, transferor_port).await;
    // Extension 102 is registered too, and would get an INVITE if the platform forwarded
    // the REFER's target by its user part: its port counts every INVITE that arrives.
    let target_port = free_port(v4());
    sipp.register(target, target_port).await;
    let socket = tokio::net::UdpSocket::bind((v4(), target_port))
        .await
        .expect("target port bound");
    let invites = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counted = invites.clone();
    let listener = tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        while let Ok((len, _)) = socket.recv_from(&mut buf).await {
            if buf[..len].starts_with(b"INVITE ") {
                counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    });

    let mut transferor_command =
        sipp.callee_command("uas_transfer_refused.xml", transferor_port, free_port(v4()));
    transferor_command.args(["-key", "target", &target.extension]);
    let transferor_sipp = transferor_command.spawn().expect("sipp transferor starts");
    let caller = sipp.caller_command(
        "uac_wait_bye.xml",
        &tenant.accounts[0],
        &transferor.extension,
    );
    let (code, output) = run_bounded(caller, Duration::from_secs(60)).await;
    assert_eq!(code, 0, "caller: {output}{}", sipp.logs());
    let (code, output) = wait_bounded(transferor_sipp, Duration::from_secs(45)).await;
    assert_eq!(code, 0, "transferor: {output}{}", sipp.logs());
    listener.abort();
    assert_eq!(
        invites.load(std::sync::atomic::Ordering::Relaxed),
        0,
        "an INVITE reached extension {}",
        target.extension
    );
    // One call, one CDR: the original call, hung up by the callee.
    let cdrs = api_cdrs(&harness, &tenant, 1).await;
    assert_eq!(cdrs.len(), 1, "{cdrs:?}");
    assert_eq!(cdrs[0]["callee"], transferor.extension, "{}", cdrs[0]);
    assert_eq!(cdrs[0]["disposition"], "answered", "{}", cdrs[0]);
    assert_eq!(cdrs[0]["hangup_side"], "callee", "{}", cdrs[0]);
    assert_eq!(cdrs[0]["hangup_cause"], "BYE", "{}", cdrs[0]);
    harness.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_transferor_hanging_up_after_the_first_notify_leaves_the_caller_to_the_target() {
    let Some((harness, tenant)) = transfer_with("uas_transfer_refer_bye.xml", "xferbye").await
    else {
        return;
    };
    let (transferor, target) = (&tenant.accounts[1], &tenant.accounts[2]);
    let cdrs = api_cdrs(&harness, &tenant, 2).await;
    assert_eq!(cdrs.len(), 2, "{cdrs:?}");
    let cdr = |callee: &str| {
        cdrs.iter()
            .find(|cdr| cdr["callee"] == callee)
            .unwrap_or_else(|| panic!("no CDR to {callee}: {cdrs:?}"))
    };
    let first = cdr(&transferor.extension);
    assert_eq!(first["disposition"], "answered", "{first}");
    assert_eq!(first["hangup_cause"], "transferred", "{first}");
    assert_eq!(first["hangup_side"], "callee", "{first}");
    let second = cdr(&target.extension);
    assert_eq!(second["disposition"], "answered", "{second}");
    assert_eq!(second["caller"], tenant.accounts[0].extension, "{second}");
    assert_eq!(second["hangup_side"], "callee", "{second}");
    assert!(second["billable_secs"].as_i64() >= Some(1), "{second}");
    // The transferor left before the target answered: its record ended first.
    assert!(
        first["end_ms"].as_i64() < second["answer_ms"].as_i64(),
        "{cdrs:?}"
    );
    harness.shutdown().await;
}
