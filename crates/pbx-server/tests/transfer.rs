//! Blind transfer (RFC 3515 REFER) with real peers: a SIPp caller (`uac_wait_bye.xml`) calls
//! extension 101, a SIPp callee (`uas_transfer_refer.xml`) that answers and transfers the call
//! to extension 102 with REFER; it fails unless it gets 202 and the NOTIFYs (100 Trying,
//! 180 Ringing, 200 OK terminated) and then our BYE. Extension 102 (`uas_transfer_target.xml`)
//! fails unless its INVITE carries Referred-By and a sendrecv PCMA offer; it answers, talks
//! 1 s and hangs up, and the caller gets that BYE. Two CDRs through the API: the original
//! call, ended for the transferor as `transferred`, and the transferred call to 102.

use std::time::Duration;

use pbx_call::{Disposition, HangupSide};
use pbx_sip_net::Transport;

use crate::calls::{Sipp, api_cdrs};
use crate::support::{Harness, Options, free_port, run_bounded, tool, v4, wait_bounded};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_callee_transfers_the_caller_to_another_extension_with_refer() {
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
    let tenant = harness.provision("xferco", 3).await;
    let sipp = Sipp::new(bin, &harness, &tenant);
    let (transferor, target) = (&tenant.accounts[1], &tenant.accounts[2]);
    let transferor_port = free_port(v4());
    sipp.register(transferor, transferor_port).await;
    let target_port = free_port(v4());
    sipp.register(target, target_port).await;
    assert_eq!(harness.registrar_bindings(target.user_id).await, 1);
    assert!(harness.addr(Transport::Udp, false).ip().is_loopback());

    let target_sipp = sipp.callee("uas_transfer_target.xml", target_port, free_port(v4()));
    let mut transferor_command =
        sipp.callee_command("uas_transfer_refer.xml", transferor_port, free_port(v4()));
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
