//! 100rel/PRACK across a call with real peers (RFC 3262): a SIPp caller with
//! `Supported: 100rel` calls a SIPp callee that answers with a reliable 183 (`Require:
//! 100rel`, `RSeq: 1`) and waits for its PRACK before the 200. The caller must get our own
//! reliable 183 and PRACK it; we PRACK the callee in its early dialog (RAck `1 1 INVITE`);
//! then 200/ACK/BYE, and the CDR listed through the API says answered. With
//! `uac_prack_update.xml`/`uas_prack_update.xml` the caller also sends an UPDATE with a
//! sendonly offer in the early dialog after its PRACK (RFC 3311): the callee must get it in
//! its early dialog (CSeq 3), rewritten by us, and the caller the callee's recvonly answer,
//! rewritten, before the 200 to the INVITE.

use std::time::Duration;

use crate::calls::{api_cdrs, call_setup};
use crate::support::{free_port, run_bounded, v4, wait_bounded};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_reliable_183_and_prack_pass_across() {
    answered_call_with_prack("uac_prack.xml", "uas_prack.xml").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_update_in_the_early_dialog_passes_across() {
    answered_call_with_prack("uac_prack_update.xml", "uas_prack_update.xml").await;
}

/// A SIPp caller (`caller` scenario) calls a SIPp callee (`callee` scenario); both must pass
/// and the CDR must say answered, with ringing before the answer.
async fn answered_call_with_prack(caller: &str, callee: &str) {
    let Some((harness, tenant, sipp, port)) = call_setup("").await else {
        return;
    };
    let callee = sipp.callee(callee, port, free_port(v4()));
    let command = sipp.caller_command(caller, &tenant.accounts[0], &tenant.accounts[1].extension);
    let (code, output) = run_bounded(command, Duration::from_secs(60)).await;
    assert_eq!(code, 0, "caller: {output}{}", sipp.logs());
    let (code, output) = wait_bounded(callee, Duration::from_secs(45)).await;
    assert_eq!(code, 0, "callee: {output}{}", sipp.logs());
    let cdrs = api_cdrs(&harness, &tenant, 1).await;
    assert_eq!(cdrs.len(), 1, "{cdrs:?}");
    let cdr = &cdrs[0];
    assert_eq!(cdr["disposition"], "answered", "{cdr}");
    assert_eq!(cdr["direction"], "internal", "{cdr}");
    assert_eq!(cdr["sip_status"], 200, "{cdr}");
    assert_eq!(cdr["hangup_side"], "caller", "{cdr}");
    assert_eq!(cdr["caller"], tenant.accounts[0].extension, "{cdr}");
    assert_eq!(cdr["callee"], tenant.accounts[1].extension, "{cdr}");
    for key in ["start_ms", "ring_ms", "answer_ms", "end_ms"] {
        assert!(cdr[key].as_i64().is_some(), "{key}: {cdr}");
    }
    // Ringing (the reliable 183) came before the answer, which waited for the PRACK.
    assert!(
        cdr["ring_ms"].as_i64() <= cdr["answer_ms"].as_i64(),
        "{cdr}"
    );
    harness.shutdown().await;
}
