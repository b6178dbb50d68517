//! Attended transfer (REFER with Replaces, RFC 3891) with real peers, as a desk phone does
//! it: a SIPp caller (`uac_held_wait_bye.xml`, extension 100) calls 101; 101
//! (`uas_attended_transferor.xml`, a desk phone's two lines in one SIPp scenario) answers,
//! puts 100 on hold, calls 102 on its second line, and REFERs call 1 to 102 with `Replaces`
//! naming its own dialog of call 2; it fails unless it gets 202, NOTIFY 100 and 200
//! (terminated), and BYE on both of its lines. 100 fails unless it is held (sendonly) and
//! then resumed by the platform (sendrecv). 102
//! (`uas_attended_target.xml`) answers call 2, fails unless it is re-INVITEd in the same
//! dialog with a sendrecv PCMA offer from the relay, answers it, talks 1 s and hangs up; the
//! caller gets that BYE (so the two remaining parties were joined). Three CDRs through the
//! API: both of 101's calls end `transferred`, and the joined call 100 → 102.

use pbx_call::{Disposition, HangupSide};

use crate::calls::{api_cdrs, sipp_setup};
use crate::support::{free_port, v4};
use crate::transfer::{assert_transferred, run_call};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_attended_transfer_joins_caller_and_target_and_releases_the_transferor() {
    let Some((harness, tenant, sipp)) = sipp_setup("", "attendco", 3).await else {
        return;
    };
    let (caller, transferor, target) = (
        &tenant.accounts[0],
        &tenant.accounts[1],
        &tenant.accounts[2],
    );
    let transferor_port = free_port(v4());
    sipp.register(transferor, transferor_port).await;
    let target_port = free_port(v4());
    sipp.register(target, target_port).await;

    let target_sipp = sipp.callee("uas_attended_target.xml", target_port, free_port(v4()));
    let mut transferor_command = sipp.callee_command(
        "uas_attended_transferor.xml",
        transferor_port,
        free_port(v4()),
    );
    transferor_command
        .args(["-key", "target", &target.extension])
        .args(["-key", "caller", &transferor.extension])
        .args(["-au", &transferor.auth_user, "-ap", &transferor.password])
        .args([
            "-auth_uri",
            &format!("{}@{}", target.extension, tenant.domain),
        ]);
    let transferor_sipp = transferor_command.spawn().expect("sipp transferor starts");
    let caller_command =
        sipp.caller_command("uac_held_wait_bye.xml", caller, &transferor.extension);
    run_call(
        caller_command,
        vec![("transferor", transferor_sipp), ("target", target_sipp)],
        || sipp.logs(),
    )
    .await;

    // The engine's records: call 1, call 2, and the joined call.
    let records = crate::calls::wait_records(&harness, 3).await;
    assert_eq!(records.len(), 3, "{records:?}");
    let first = records
        .iter()
        .find(|r| r.caller == caller.extension && r.callee_normalised == transferor.extension)
        .expect("call 1's record");
    let second = records
        .iter()
        .find(|r| r.caller == transferor.extension)
        .expect("call 2's record");
    let joined = records
        .iter()
        .find(|r| r.transfer_of.is_some())
        .expect("the joined call's record");
    for (record, side) in [(first, HangupSide::Callee), (second, HangupSide::Caller)] {
        assert_eq!(record.disposition, Disposition::Answered, "{record:?}");
        assert_eq!(record.hangup_cause, "transferred", "{record:?}");
        assert_eq!(record.hangup_side, side, "{record:?}");
    }
    assert_eq!(second.callee_normalised, target.extension);
    assert_eq!(joined.transfer_of, Some(first.call_key));
    assert_eq!(joined.caller, caller.extension);
    assert_eq!(joined.callee_normalised, target.extension);
    assert_eq!(joined.context.callee_user_id, Some(target.user_id));
    assert_eq!(joined.disposition, Disposition::Answered);
    assert_eq!(joined.hangup_side, HangupSide::Callee);
    assert_eq!(joined.hangup_cause, "BYE");

    // The durable CDRs, through the API.
    let cdrs = api_cdrs(&harness, &tenant, 3).await;
    assert_eq!(cdrs.len(), 3, "{cdrs:?}");
    let cdr = |from: &str, to: &str| {
        cdrs.iter()
            .find(|cdr| cdr["caller"] == from && cdr["callee"] == to)
            .unwrap_or_else(|| panic!("no CDR {from} -> {to}: {cdrs:?}"))
    };
    let call_1 = cdr(&caller.extension, &transferor.extension);
    assert_transferred(call_1);
    assert_eq!(call_1["hangup_side"], "callee", "{call_1}");
    let call_2 = cdr(&transferor.extension, &target.extension);
    assert_transferred(call_2);
    assert_eq!(call_2["hangup_side"], "caller", "{call_2}");
    let joined = cdr(&caller.extension, &target.extension);
    assert_eq!(joined["disposition"], "answered", "{joined}");
    assert_eq!(joined["direction"], "internal", "{joined}");
    assert_eq!(joined["hangup_side"], "callee", "{joined}");
    assert_eq!(joined["sip_status"], 200, "{joined}");
    assert!(joined["billable_secs"].as_i64() >= Some(1), "{joined}");
    harness.shutdown().await;
}
