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
//! `uas_transfer_refused.xml`) reach nobody; each refused attempt leaves a closed CDR of
//! its own (failed 403 `not our domain`; unavailable 404 `no such extension`, outbound for
//! the transferor as when it dials 999), besides the call's own, which is unaffected.
//! To a number: the transferor REFERs the call to `0612345678`; the platform dials it as the
//! transferor's own call: the first trunk's SIPp carrier answers 503, the second
//! (`bench/sipp-trunk/carrier_transfer_target.xml`) challenges with 407 and gets the E.164
//! Request-URI, our digest and the transferor's DID as caller ID, answers and hangs up
//! later; both CDRs through the API (the second names the trunk and the number). A number
//! the transferor's class of service forbids (`uas_transfer_forbidden.xml`) is refused 403,
//! filed as a blocked outbound attempt of the transferor's, and the carrier receives nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use pbx_call::{Disposition, HangupSide};
use serde_json::Value;
use tokio::process::{Child, Command};

use crate::calls::{Sipp, api_cdrs, cdr_to, sipp_setup};
use crate::support::{Harness, Tenant, free_port, run_bounded, v4, wait_bounded};

/// Extension 100 (SIPp, `uac_wait_bye.xml`) calls 101, which runs `transferor_scenario` and
/// transfers the call to 102 (`uas_transfer_target.xml`); every scenario must pass. Returns
/// the running server and the tenant.
async fn transfer_with(transferor_scenario: &str, slug: &str) -> Option<(Harness, Tenant)> {
    let (harness, tenant, sipp) = sipp_setup("", slug, 3).await?;
    let target = &tenant.accounts[2].extension;
    transfer_call(&harness, &tenant, &sipp, transferor_scenario, target).await;
    Some((harness, tenant))
}

/// Extension 100 (SIPp, `uac_wait_bye.xml`) calls 101, which runs `transferor_scenario` and
/// transfers the call to `target`, which reaches 102 (registered from SIPp and answering with
/// `uas_transfer_target.xml`); every scenario must pass.
async fn transfer_call(
    harness: &Harness,
    tenant: &Tenant,
    sipp: &Sipp,
    transferor_scenario: &str,
    target: &str,
) {
    let (caller, callee) = (&tenant.accounts[0], &tenant.accounts[2]);
    let callee_port = free_port(v4());
    sipp.register(callee, callee_port).await;
    assert_eq!(harness.registrar_bindings(callee.user_id).await, 1);
    let target_sipp = sipp.callee("uas_transfer_target.xml", callee_port, free_port(v4()));
    let transferor_sipp = start_transferor(sipp, tenant, transferor_scenario, target).await;
    let transferor = &tenant.accounts[1].extension;
    let caller = sipp.caller_command("uac_wait_bye.xml", caller, transferor);
    run_call(
        caller,
        vec![("transferor", transferor_sipp), ("target", target_sipp)],
        || sipp.logs(),
    )
    .await;
}

/// Registers extension 101 (`tenant.accounts[1]`) from SIPp and starts it with the callee
/// `scenario`, which transfers the call it answers to `target` (the Refer-To user part).
pub async fn start_transferor(sipp: &Sipp, tenant: &Tenant, scenario: &str, target: &str) -> Child {
    let port = free_port(v4());
    sipp.register(&tenant.accounts[1], port).await;
    let mut command = sipp.callee_command(scenario, port, free_port(v4()));
    command.args(["-key", "target", target]);
    command.spawn().expect("sipp transferor starts")
}

/// Runs the `caller` scenario to its end (60 s), then waits (45 s each) for the named `peers`:
/// every one must exit 0; a failure shows its output and `logs()`.
pub async fn run_call(caller: Command, peers: Vec<(&str, Child)>, logs: impl Fn() -> String) {
    let (code, output) = run_bounded(caller, Duration::from_secs(60)).await;
    assert_eq!(code, 0, "caller: {output}{}", logs());
    for (name, peer) in peers {
        let (code, output) = wait_bounded(peer, Duration::from_secs(45)).await;
        assert_eq!(code, 0, "{name}: {output}{}", logs());
    }
}

/// The CDR of a call that was answered and then transferred away.
pub fn assert_transferred(cdr: &Value) {
    assert_eq!(cdr["disposition"], "answered", "{cdr}");
    assert_eq!(cdr["hangup_cause"], "transferred", "{cdr}");
}

/// Counts the INVITEs that reach a UDP port (a peer that must never be called).
struct InviteCounter {
    invites: Arc<AtomicU64>,
    listener: tokio::task::JoinHandle<()>,
}

impl InviteCounter {
    async fn bind(addr: impl tokio::net::ToSocketAddrs) -> InviteCounter {
        let socket = tokio::net::UdpSocket::bind(addr)
            .await
            .expect("INVITE counter's port bound");
        let invites = Arc::new(AtomicU64::new(0));
        let counted = invites.clone();
        let listener = tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            while let Ok((len, _)) = socket.recv_from(&mut buf).await {
                if buf[..len].starts_with(b"INVITE ") {
                    counted.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        InviteCounter { invites, listener }
    }

    /// Stops listening; the INVITEs that arrived.
    fn stop(self) -> u64 {
        self.listener.abort();
        self.invites.load(Ordering::Relaxed)
    }
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
    let first = cdr_to(&cdrs, &transferor.extension);
    assert_transferred(first);
    assert_eq!(first["hangup_side"], "callee", "{first}");
    assert_eq!(first["caller"], tenant.accounts[0].extension, "{first}");
    assert!(first["billable_secs"].as_i64() >= Some(1), "{first}");
    let second = cdr_to(&cdrs, &target.extension);
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
    let Some((harness, tenant, sipp)) = sipp_setup("", "xferno", 3).await else {
        return;
    };
    let (transferor, target) = (&tenant.accounts[1], &tenant.accounts[2]);
    // Extension 102 is registered too, and would get an INVITE if the platform forwarded
    // the REFER's target by its user part: its port counts every INVITE that arrives.
    let target_port = free_port(v4());
    sipp.register(target, target_port).await;
    let invites = InviteCounter::bind((v4(), target_port)).await;

    let transferor_sipp = start_transferor(
        &sipp,
        &tenant,
        "uas_transfer_refused.xml",
        &target.extension,
    )
    .await;
    let caller = sipp.caller_command(
        "uac_wait_bye.xml",
        &tenant.accounts[0],
        &transferor.extension,
    );
    run_call(caller, vec![("transferor", transferor_sipp)], || {
        sipp.logs()
    })
    .await;
    assert_eq!(
        invites.stop(),
        0,
        "an INVITE reached extension {}",
        target.extension
    );
    // Three attempts, three CDRs: the call, hung up by the callee as if nothing had been
    // refused, and each refused transfer (the caller calling the target).
    let caller = &tenant.accounts[0];
    let records = crate::calls::wait_records(&harness, 3).await;
    assert_eq!(records.len(), 3, "{records:?}");
    let original = records
        .iter()
        .find(|r| r.transfer_of.is_none())
        .expect("the call's record");
    for refused in records.iter().filter(|r| r.transfer_of.is_some()) {
        assert_eq!(refused.transfer_of, Some(original.call_key), "{refused:?}");
        assert_eq!(refused.caller, caller.extension, "{refused:?}");
        assert_eq!(refused.hangup_side, HangupSide::System, "{refused:?}");
    }
    let cdrs = api_cdrs(&harness, &tenant, 3).await;
    assert_eq!(cdrs.len(), 3, "{cdrs:?}");
    let call = cdr_to(&cdrs, &transferor.extension);
    assert_eq!(call["disposition"], "answered", "{call}");
    assert_eq!(call["hangup_side"], "callee", "{call}");
    assert_eq!(call["hangup_cause"], "BYE", "{call}");
    assert_eq!(call["sip_status"], 200, "{call}");
    let foreign_uri = format!("sip:{}@evil.example", target.extension);
    let foreign = cdr_to(&cdrs, &foreign_uri);
    assert_eq!(foreign["callee_dialled"], foreign_uri, "{foreign}");
    assert_eq!(foreign["disposition"], "failed", "{foreign}");
    assert_eq!(foreign["sip_status"], 403, "{foreign}");
    assert_eq!(foreign["hangup_cause"], "not our domain", "{foreign}");
    assert_eq!(foreign["direction"], "internal", "{foreign}");
    assert_eq!(foreign["user_id"], caller.user_id.to_string(), "{foreign}");
    let unknown = cdr_to(&cdrs, "999");
    assert_eq!(unknown["callee_dialled"], "999", "{unknown}");
    assert_eq!(unknown["disposition"], "unavailable", "{unknown}");
    assert_eq!(unknown["sip_status"], 404, "{unknown}");
    assert_eq!(unknown["hangup_cause"], "no such extension", "{unknown}");
    assert_eq!(unknown["direction"], "outbound", "{unknown}");
    assert_eq!(
        unknown["user_id"],
        transferor.user_id.to_string(),
        "{unknown}"
    );
    for refused in [foreign, unknown] {
        assert_eq!(refused["caller"], caller.extension, "{refused}");
        assert_eq!(refused["hangup_side"], "system", "{refused}");
        assert_eq!(refused["billable_secs"], 0, "{refused}");
        assert!(refused["trunk_id"].is_null(), "{refused}");
        assert!(refused["answer_ms"].is_null(), "{refused}");
        assert_eq!(refused["sip_call_id"], call["sip_call_id"], "{refused}");
    }
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
    let first = cdr_to(&cdrs, &transferor.extension);
    assert_transferred(first);
    assert_eq!(first["hangup_side"], "callee", "{first}");
    let second = cdr_to(&cdrs, &target.extension);
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

/// Trunks through the API and SIPp carriers on 127.0.0.2 (the carriers' network).
mod numbers {
    use std::path::Path;

    use serde_json::{Value, json};

    use super::{InviteCounter, assert_transferred, run_call, start_transferor, transfer_call};
    use crate::calls::{api_cdrs, cdr_to, operator_token, sipp_setup};
    use crate::support::{
        Harness, api_json, free_port, repo_root, trace_header as header, trace_requests, v4,
    };
    use crate::trunks::calls::assert_authenticated_invite;

    const CARRIER_IP: &str = "127.0.0.2";
    /// The transferor's own number (its caller ID towards carriers).
    const TRANSFEROR_DID: &str = "+31201234588";

    async fn api(harness: &Harness, method: &str, path: &str, body: Value) -> Value {
        api_json(harness, &operator_token(harness), method, path, body).await
    }

    /// A trunk to a carrier on 127.0.0.2:`port` (digest account `acct-1` when `digest`).
    async fn trunk(
        harness: &Harness,
        name: &str,
        port: u16,
        priority: i32,
        digest: bool,
    ) -> String {
        let mut body = json!({
            "name": name,
            "host": CARRIER_IP,
            "port": port,
            "priority": priority,
            "inbound_networks": [format!("{CARRIER_IP}/32")],
        });
        if digest {
            body["auth_username"] = json!("acct-1");
            body["auth_password"] = json!("carrier-pass-1");
        } else {
            body["mode"] = json!("ip_peering");
        }
        let created = api(harness, "POST", "/api/v1/trunks", body).await;
        created["id"].as_str().unwrap().to_owned()
    }

    async fn route(harness: &Harness, prefix: &str, trunks: &[&str]) {
        let trunks: Vec<Value> = trunks.iter().map(|id| json!({ "trunk_id": id })).collect();
        api(
            harness,
            "POST",
            "/api/v1/routes",
            json!({ "prefix": prefix, "trunks": trunks }),
        )
        .await;
    }

    /// A SIPp carrier (`bench/sipp-trunk/<file>`) on 127.0.0.2:`port`, traced to `trace`.
    fn carrier(sipp: &Path, file: &str, port: u16, trace: &Path) -> tokio::process::Child {
        tokio::process::Command::new(sipp)
            .arg("-sf")
            .arg(repo_root().join("bench/sipp-trunk").join(file))
            .args(["-i", CARRIER_IP, "-p", &port.to_string()])
            .args(["-mi", CARRIER_IP, "-mp", &free_port(v4()).to_string()])
            .args(["-key", "rtp_port", &free_port(v4()).to_string()])
            .args(["-m", "1", "-timeout", "40s", "-trace_err", "-nostdin"])
            .arg("-trace_msg")
            .arg("-message_file")
            .arg(trace)
            .current_dir(trace.parent().unwrap())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("sipp carrier starts")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sipp_callee_transfers_the_caller_to_a_national_number_through_trunks_with_failover() {
        let Some((harness, tenant, sipp)) = sipp_setup("", "xfernum", 2).await else {
            return;
        };
        let (caller, transferor) = (&tenant.accounts[0], &tenant.accounts[1]);
        let (down_port, up_port) = (free_port(v4()), free_port(v4()));
        let down = trunk(&harness, "carrier-down", down_port, 10, false).await;
        let up = trunk(&harness, "carrier-up", up_port, 20, true).await;
        route(&harness, "31", &[&down, &up]).await;
        harness
            .assign_number(&tenant, TRANSFEROR_DID, Some(transferor))
            .await;
        harness.routing_loaded().await;
        let work = tempfile::tempdir().unwrap();
        let (down_trace, up_trace) = (work.path().join("down.log"), work.path().join("up.log"));
        let first = carrier(sipp.bin(), "carrier_invite_503.xml", down_port, &down_trace);
        let second = carrier(
            sipp.bin(),
            "carrier_transfer_target.xml",
            up_port,
            &up_trace,
        );

        let transferor_sipp =
            start_transferor(&sipp, &tenant, "uas_transfer_refer.xml", "0612345678").await;
        let caller_command = sipp.caller_command("uac_wait_bye.xml", caller, &transferor.extension);
        let traces = || {
            format!(
                "{}\ndown:\n{}\nup:\n{}",
                sipp.logs(),
                std::fs::read_to_string(&down_trace).unwrap_or_default(),
                std::fs::read_to_string(&up_trace).unwrap_or_default()
            )
        };
        let peers = vec![
            ("transferor", transferor_sipp),
            ("503 carrier", first),
            ("carrier", second),
        ];
        run_call(caller_command, peers, traces).await;

        // One attempt per trunk, in order; the second answered once after its 407.
        let down_invites = trace_requests(&std::fs::read_to_string(&down_trace).unwrap(), "INVITE");
        assert_eq!(down_invites.len(), 1, "{down_invites:?}");
        assert!(
            down_invites[0][0].starts_with(&format!(
                "INVITE sip:+31612345678@{CARRIER_IP}:{down_port} "
            )),
            "{down_invites:?}"
        );
        let up_invites = trace_requests(&std::fs::read_to_string(&up_trace).unwrap(), "INVITE");
        assert_eq!(up_invites.len(), 2, "{up_invites:?}");
        let answered = &up_invites[1];
        assert!(
            answered[0].starts_with(&format!("INVITE sip:+31612345678@{CARRIER_IP}:{up_port} ")),
            "E.164 Request-URI: {}",
            answered[0]
        );
        // The transferor's caller ID, and nothing of our tenant's dialogs.
        assert_authenticated_invite(&up_invites[0], answered, TRANSFEROR_DID, &tenant.domain);
        assert!(header(answered, "Referred-By").is_none(), "{answered:?}");

        // Both CDRs through the API.
        let cdrs = api_cdrs(&harness, &tenant, 2).await;
        assert_eq!(cdrs.len(), 2, "{cdrs:?}");
        let original = cdr_to(&cdrs, &transferor.extension);
        assert_transferred(original);
        assert!(original["trunk_id"].is_null(), "{original}");
        let transferred = cdr_to(&cdrs, "+31612345678");
        assert_eq!(transferred["direction"], "outbound", "{transferred}");
        assert_eq!(transferred["trunk_id"], up.as_str(), "{transferred}");
        assert_eq!(transferred["callee_dialled"], "0612345678", "{transferred}");
        assert_eq!(transferred["caller"], caller.extension, "{transferred}");
        // Placed as the transferor's own call.
        assert_eq!(
            transferred["user_id"],
            transferor.user_id.to_string(),
            "{transferred}"
        );
        assert_eq!(transferred["disposition"], "answered", "{transferred}");
        assert_eq!(transferred["hangup_side"], "callee", "{transferred}");
        assert!(
            transferred["billable_secs"].as_i64() >= Some(1),
            "{transferred}"
        );
        assert_eq!(
            original["sip_call_id"], transferred["sip_call_id"],
            "{cdrs:?}"
        );
        harness.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sipp_transfer_to_a_number_the_class_of_service_forbids_is_refused_and_no_carrier_is_called()
     {
        let Some((harness, tenant, sipp)) = sipp_setup("", "xferbar", 2).await else {
            return;
        };
        let (caller, transferor) = (&tenant.accounts[0], &tenant.accounts[1]);
        // A carrier for every number, whose port counts the INVITEs that reach it.
        let port = free_port(v4());
        let open = trunk(&harness, "carrier-any", port, 10, false).await;
        route(&harness, "", &[&open]).await;
        harness.routing_loaded().await;
        let invites = InviteCounter::bind((CARRIER_IP, port)).await;

        // International: the provisioned users' class of service is national.
        let transferor_sipp = start_transferor(
            &sipp,
            &tenant,
            "uas_transfer_forbidden.xml",
            "00442079460000",
        )
        .await;
        let caller_command = sipp.caller_command("uac_wait_bye.xml", caller, &transferor.extension);
        run_call(
            caller_command,
            vec![("transferor", transferor_sipp)],
            || sipp.logs(),
        )
        .await;
        assert_eq!(invites.stop(), 0, "an INVITE reached the carrier");
        // The call's CDR, and the refused attempt's: blocked, as if the transferor had
        // dialled the number.
        let cdrs = api_cdrs(&harness, &tenant, 2).await;
        assert_eq!(cdrs.len(), 2, "{cdrs:?}");
        let call = cdr_to(&cdrs, &transferor.extension);
        assert_eq!(call["hangup_cause"], "BYE", "{call}");
        assert_eq!(call["disposition"], "answered", "{call}");
        let blocked = cdr_to(&cdrs, "+442079460000");
        assert_eq!(blocked["callee_dialled"], "00442079460000", "{blocked}");
        assert_eq!(blocked["disposition"], "blocked", "{blocked}");
        assert_eq!(blocked["sip_status"], 403, "{blocked}");
        assert_eq!(blocked["direction"], "outbound", "{blocked}");
        assert_eq!(blocked["caller"], caller.extension, "{blocked}");
        assert_eq!(
            blocked["user_id"],
            transferor.user_id.to_string(),
            "{blocked}"
        );
        assert_eq!(blocked["hangup_side"], "system", "{blocked}");
        assert!(blocked["trunk_id"].is_null(), "{blocked}");
        let cause = blocked["hangup_cause"].as_str().unwrap_or_default();
        assert!(cause.starts_with("blocked by the fraud guard"), "{blocked}");
        harness.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sipp_transfer_to_one_of_our_numbers_is_connected_internally() {
        let Some((harness, tenant, sipp)) = sipp_setup("", "xferpin", 3).await else {
            return;
        };
        let target = &tenant.accounts[2];
        // A carrier on the route that nothing listens on: a call sent out would fail.
        let open = trunk(&harness, "carrier-unused", free_port(v4()), 10, false).await;
        route(&harness, "31", &[&open]).await;
        harness
            .assign_number(&tenant, "+31201234577", Some(target))
            .await;
        harness.routing_loaded().await;

        transfer_call(
            &harness,
            &tenant,
            &sipp,
            "uas_transfer_refer.xml",
            "0201234577",
        )
        .await;
        let cdrs = api_cdrs(&harness, &tenant, 2).await;
        assert_eq!(cdrs.len(), 2, "{cdrs:?}");
        let transferred = cdr_to(&cdrs, "+31201234577");
        assert_eq!(transferred["disposition"], "answered", "{transferred}");
        assert_eq!(transferred["callee_dialled"], "0201234577", "{transferred}");
        assert!(transferred["trunk_id"].is_null(), "{transferred}");
        harness.shutdown().await;
    }
}
