//! The fraud guard on calls, with a real SIPp caller (authenticated with the 407 challenge):
//! premium-rate and high-fraud destinations are refused with 403 and a `Reason` header, each
//! refusal filed as a CDR and a security event; a burst above the account's calls-per-minute
//! limit is cut off exactly at the limit; emergency numbers are never refused by the guard.
//!
//! No trunk is configured for those: admitted calls to outside numbers end with 404 (no
//! route), so the guard's verdict is what tells 403 from 404.
//!
//! With a SIPp carrier behind an IP-peering trunk (`bench/sipp-trunk`) and account limits set
//! in `[security.account_limits]`: the concurrent-call limit holds N calls up and refuses the
//! next with 403 + `Reason` + a `blocked` CDR + an event, and lets a new call through once one
//! ended; a critical cost breach ends a running call with BYE (and a `Reason`) on both legs.

use std::path::PathBuf;
use std::time::Duration;

use pbx_server::guard::{LimitsSection, SecuritySection};
use pbx_server::serve::{ServeOptions, Server};
use serde_json::{Value, json};

use crate::calls::{Sipp, api_cdrs, operator_token};
use crate::support::{
    Harness, Options, Tenant, api_json as api, free_port, http_request, repo_root, run_bounded,
    tool, trace_header as header, trace_requests as requests, v4, wait_bounded,
};

async fn setup(slug: &str) -> Option<(Harness, Tenant, Sipp)> {
    crate::calls::sipp_setup("", slug, 1).await
}

/// One call from the tenant's first account to `dialled` with `scenario`, `calls` times in a
/// row (one at a time).
async fn dial(sipp: &Sipp, tenant: &Tenant, scenario: &str, dialled: &str, calls: u32) -> String {
    let mut command = sipp.caller_command(scenario, &tenant.accounts[0], dialled);
    command.args(["-m", &calls.to_string(), "-l", "1"]);
    let (code, output) = run_bounded(command, Duration::from_secs(60)).await;
    assert_eq!(code, 0, "{scenario} to {dialled}: {output}{}", sipp.logs());
    output
}

/// The tenant's security events of `kind` (bounded wait for `count`).
async fn security_events(
    harness: &Harness,
    tenant: &Tenant,
    kind: &str,
    count: usize,
) -> Vec<serde_json::Value> {
    security_events_as(harness, &operator_token(harness), tenant, kind, count).await
}

/// [`security_events`] with a given token (the generated operator secret is only known at
/// the first start).
async fn security_events_as(
    harness: &Harness,
    token: &str,
    tenant: &Tenant,
    kind: &str,
    count: usize,
) -> Vec<serde_json::Value> {
    let path = format!("/api/v1/tenants/{}/security/events?type={kind}", tenant.id);
    let mut listed = Vec::new();
    for _ in 0..100 {
        let (status, body) =
            crate::support::http_request(harness.server().http_addr, "GET", &path, token, None)
                .await;
        assert_eq!(status, 200, "{body}");
        let value: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        listed = value.as_array().cloned().unwrap_or_default();
        if listed.len() >= count {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    listed
}

/// Never an open relay: an authenticated user's INVITE to a SIP URI in a domain that is not
/// ours gets 403 (nothing is sent anywhere) and is filed as a failed outbound attempt, as a
/// refused transfer to such a URI is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invite_to_a_foreign_domain_gets_403_and_a_failed_cdr() {
    let Some((harness, tenant, sipp)) = setup("foreignco").await else {
        return;
    };
    let mut command = sipp.caller_command("uac_foreign.xml", &tenant.accounts[0], "bob");
    command
        .args(["-key", "target", "evil.example"])
        .args(["-auth_uri", "bob@evil.example"])
        .args(["-m", "1", "-l", "1"]);
    let (code, output) = run_bounded(command, Duration::from_secs(60)).await;
    assert_eq!(code, 0, "403 expected: {output}{}", sipp.logs());
    let cdrs = api_cdrs(&harness, &tenant, 1).await;
    assert_eq!(cdrs.len(), 1, "{cdrs:?}");
    let cdr = &cdrs[0];
    assert_eq!(cdr["callee_dialled"], "sip:bob@evil.example", "{cdr}");
    assert_eq!(cdr["direction"], "outbound", "{cdr}");
    assert_eq!(cdr["disposition"], "failed", "{cdr}");
    assert_eq!(cdr["sip_status"], 403, "{cdr}");
    assert_eq!(cdr["hangup_cause"], "not our domain", "{cdr}");
    assert_eq!(cdr["hangup_side"], "system", "{cdr}");
    assert!(cdr["trunk_id"].is_null(), "{cdr}");
    assert_eq!(
        cdr["user_id"],
        tenant.accounts[0].user_id.to_string(),
        "{cdr}"
    );
    harness.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn premium_and_high_fraud_destinations_get_403_with_a_cdr_and_an_event() {
    let Some((harness, tenant, sipp)) = setup("premco").await else {
        return;
    };
    // NL premium rate 0900/0906/0909, the ITU international premium rate service (+979) and a
    // high-fraud international range (Latvia +371 90x) dialled with the 00 prefix.
    let blocked = [
        "09001234567",
        "09061234567",
        "09091234567",
        "+979123456789",
        "0037190123456",
    ];
    for number in blocked {
        dial(&sipp, &tenant, "uac_refused.xml", number, 1).await;
    }
    let cdrs = api_cdrs(&harness, &tenant, blocked.len()).await;
    assert_eq!(cdrs.len(), blocked.len(), "{cdrs:?}");
    for number in blocked {
        let cdr = cdrs
            .iter()
            .find(|c| c["callee_dialled"] == number)
            .unwrap_or_else(|| panic!("no CDR for {number}: {cdrs:?}"));
        assert_eq!(cdr["disposition"], "blocked", "{cdr}");
        assert_eq!(cdr["sip_status"], 403, "{cdr}");
        assert_eq!(cdr["direction"], "outbound", "{cdr}");
        assert_eq!(cdr["hangup_side"], "system", "{cdr}");
        assert_eq!(cdr["billable_secs"], 0, "{cdr}");
        assert_eq!(
            cdr["user_id"],
            tenant.accounts[0].user_id.to_string(),
            "{cdr}"
        );
        let cause = cdr["hangup_cause"].as_str().unwrap_or_default();
        assert!(cause.starts_with("blocked by the fraud guard"), "{cdr}");
    }
    // The API's disposition filter finds exactly these.
    let (status, body) = crate::support::http_request(
        harness.server().http_addr,
        "GET",
        &format!("/api/v1/tenants/{}/cdrs?disposition=blocked", tenant.id),
        &operator_token(&harness),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let page: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(
        page["items"].as_array().map(Vec::len),
        Some(blocked.len()),
        "{page}"
    );
    let events = security_events(&harness, &tenant, "destination_blocked", blocked.len()).await;
    assert_eq!(events.len(), blocked.len(), "{events:?}");
    // The guard let no call through: nothing counted as running.
    assert_eq!(harness.server().guard().running_calls(), 0);
    harness.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_above_the_calls_per_minute_limit_is_cut_off_at_the_limit() {
    let Some((harness, tenant, sipp)) = setup("burstco").await else {
        return;
    };
    // The account default is 10 calls per minute: 14 calls in a row, one at a time.
    dial(&sipp, &tenant, "uac_limited.xml", "0201234567", 14).await;
    let mut cdrs = api_cdrs(&harness, &tenant, 14).await;
    assert_eq!(cdrs.len(), 14, "{cdrs:?}");
    cdrs.sort_by_key(|c| {
        (
            c["start_ms"].as_i64(),
            c["sip_call_id"].as_str().map(str::to_owned),
        )
    });
    let statuses: Vec<i64> = cdrs
        .iter()
        .map(|c| c["sip_status"].as_i64().unwrap_or(0))
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 404).count(),
        10,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 403).count(),
        4,
        "{statuses:?}"
    );
    for cdr in cdrs.iter().filter(|c| c["sip_status"] == 403) {
        assert_eq!(cdr["disposition"], "blocked", "{cdr}");
        let cause = cdr["hangup_cause"].as_str().unwrap_or_default();
        assert!(cause.contains("CallsPerMinute"), "{cdr}");
    }
    let breaches = security_events(&harness, &tenant, "threshold_breached", 1).await;
    assert!(!breaches.is_empty(), "a threshold_breached event");

    // Emergency calls are never refused by the guard, even now (they end with 404 here only
    // because no trunk is configured).
    let before = security_events(&harness, &tenant, "threshold_breached", 0)
        .await
        .len();
    dial(&sipp, &tenant, "uac_limited.xml", "112", 2).await;
    let cdrs = api_cdrs(&harness, &tenant, 16).await;
    let emergency: Vec<&serde_json::Value> = cdrs
        .iter()
        .filter(|c| c["callee_dialled"] == "112")
        .collect();
    assert_eq!(emergency.len(), 2, "{cdrs:?}");
    for cdr in emergency {
        assert_ne!(cdr["sip_status"], 403, "{cdr}");
        assert_ne!(cdr["disposition"], "blocked", "{cdr}");
    }
    let after = security_events(&harness, &tenant, "threshold_breached", 0)
        .await
        .len();
    assert_eq!(before, after, "no breach counted for emergency calls");
    assert_eq!(harness.server().guard().running_calls(), 0);
    harness.shutdown().await;
}

// ----- limits on calls that reach a carrier -----

/// The carrier lives on 127.0.0.2 (the trunk's source network); phones on 127.0.0.1.
const CARRIER_IP: &str = "127.0.0.2";

/// A server (MD5 only, for SIPp) with `account_limits`, one tenant of one user, and an
/// IP-peering trunk to a SIPp carrier on 127.0.0.2 that every outside number routes to.
struct Carrier {
    harness: Harness,
    tenant: Tenant,
    sipp: Sipp,
    bin: PathBuf,
    port: u16,
    work: tempfile::TempDir,
}

impl Carrier {
    async fn start(slug: &str, account_limits: LimitsSection) -> Option<Carrier> {
        let bin = tool("sipp", "sip-tester")?;
        let options = Options {
            digest: r#"["MD5"]"#,
            ipv6: false,
            ..Options::default()
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let mut settings = crate::support::settings(dir.path(), &options);
        settings.security = SecuritySection {
            account_limits,
            ..SecuritySection::default()
        }
        .validate()
        .expect("security section valid");
        let server = Server::start(&settings, &ServeOptions::default())
            .await
            .expect("server starts");
        let harness = Harness {
            server: Some(server),
            dir,
            options,
        };
        let tenant = harness.provision(slug, 1).await;
        let sipp = Sipp::new(bin.clone(), &harness, &tenant);
        let port = free_port(v4());
        let token = operator_token(&harness);
        let trunk = api(
            &harness,
            &token,
            "POST",
            "/api/v1/trunks",
            json!({
                "name": "sipp-carrier",
                "host": CARRIER_IP,
                "port": port,
                "mode": "ip_peering",
                "inbound_networks": [format!("{CARRIER_IP}/32")],
            }),
        )
        .await;
        api(
            &harness,
            &token,
            "POST",
            "/api/v1/routes",
            json!({ "prefix": "", "trunks": [{ "trunk_id": trunk["id"] }] }),
        )
        .await;
        harness.routing_loaded().await;
        Some(Carrier {
            harness,
            tenant,
            sipp,
            bin,
            port,
            work: tempfile::tempdir().expect("tempdir"),
        })
    }

    fn trace(&self, name: &str) -> PathBuf {
        self.work.path().join(name)
    }

    /// The carrier UAS (`carrier_invite_answer.xml`: answers, waits for BYE) for `calls`
    /// calls, tracing its messages to `trace`.
    fn carrier(&self, calls: u32, trace: &str) -> tokio::process::Child {
        self.carrier_with("carrier_invite_answer.xml", calls, trace)
    }

    /// The carrier UAS running `scenario` of `bench/sipp-trunk`, as [`Self::carrier`].
    fn carrier_with(&self, scenario: &str, calls: u32, trace: &str) -> tokio::process::Child {
        let scenario = repo_root().join("bench/sipp-trunk").join(scenario);
        let mut command = tokio::process::Command::new(&self.bin);
        command
            .arg("-sf")
            .arg(scenario)
            .args(["-i", CARRIER_IP, "-p", &self.port.to_string()])
            .args(["-mi", CARRIER_IP, "-mp", &free_port(v4()).to_string()])
            .args(["-key", "rtp_port", &free_port(v4()).to_string()])
            .args(["-m", &calls.to_string(), "-timeout", "60s", "-nostdin"])
            .arg("-trace_err")
            .arg("-trace_msg")
            .arg("-message_file")
            .arg(self.trace(trace))
            .current_dir(self.work.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        command.spawn().expect("sipp carrier starts")
    }

    /// A SIPp phone of the tenant's user dialling `dialled` with `scenario`, holding the call
    /// `hold_ms` (uac_short.xml's pause), its messages traced to `trace`.
    fn phone(&self, scenario: &str, dialled: &str, hold_ms: u32, trace: &str) -> Phone {
        let mut command = self
            .sipp
            .caller_command(scenario, &self.tenant.accounts[0], dialled);
        command
            .args(["-d", &hold_ms.to_string()])
            .arg("-trace_msg")
            .arg("-message_file")
            .arg(self.trace(trace))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        Phone(command.spawn().expect("sipp phone starts"))
    }

    fn read_trace(&self, name: &str) -> String {
        std::fs::read_to_string(self.trace(name)).unwrap_or_default()
    }

    /// Waits (bounded, 15 s) until `count` calls in progress are answered (their open CDRs
    /// carry an answer time).
    async fn answered(&self, count: usize) -> bool {
        let token = operator_token(&self.harness);
        let path = format!("/api/v1/tenants/{}/cdrs?state=open", self.tenant.id);
        for _ in 0..150 {
            let (status, body) =
                http_request(self.harness.server().http_addr, "GET", &path, &token, None).await;
            assert_eq!(status, 200, "{body}");
            let page: Value = serde_json::from_str(&body).expect("JSON");
            let up = page["items"].as_array().map_or(0, |items| {
                items.iter().filter(|c| c["answer_ms"].is_i64()).count()
            });
            if up == count {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }

    /// Waits (bounded, 15 s) until the guard counts `count` outbound calls in progress.
    async fn running(&self, count: usize) -> bool {
        for _ in 0..150 {
            if self.harness.server().guard().running_calls() == count {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }
}

/// A SIPp process running in the background.
struct Phone(tokio::process::Child);

impl Phone {
    fn is_running(&mut self) -> bool {
        matches!(self.0.try_wait(), Ok(None))
    }

    /// Waits (bounded, 60 s) for it to finish: (exit code, output).
    async fn finish(self) -> (i32, String) {
        wait_bounded(self.0, Duration::from_secs(60)).await
    }
}

fn ms(cdr: &Value, field: &str) -> i64 {
    cdr[field]
        .as_i64()
        .unwrap_or_else(|| panic!("{field} in {cdr}"))
}

/// `[security.account_limits] max_concurrent_calls = 2`: two calls through the carrier are up,
/// the third gets 403 with a Q.850 `Reason` (checked by uac_refused.xml), a `blocked` CDR and
/// a `threshold_breached` event; once the first call ended a new call goes through while the
/// second is still up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_concurrent_call_limit_holds_n_calls_and_refuses_the_next_until_one_ends() {
    const LIMIT: usize = 2;
    let limits = LimitsSection {
        max_concurrent_calls: Some(LIMIT as u32),
        ..LimitsSection::default()
    };
    let Some(world) = Carrier::start("concurco", limits).await else {
        return;
    };
    let carrier = world.carrier(3, "carrier.log");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let number = "0201234567";

    // A (held 6 s) and B (held 16 s): both up.
    let mut first = world.phone("uac_short.xml", number, 6_000, "a.log");
    assert!(
        world.answered(1).await,
        "A up: {}",
        world.read_trace("a.log")
    );
    let mut second = world.phone("uac_short.xml", number, 16_000, "b.log");
    assert!(
        world.answered(LIMIT).await,
        "B up: {}",
        world.read_trace("b.log")
    );
    assert_eq!(world.harness.server().guard().running_calls(), LIMIT);

    // C: refused at the limit, never reaches the carrier.
    let mut command =
        world
            .sipp
            .caller_command("uac_refused.xml", &world.tenant.accounts[0], number);
    command
        .arg("-trace_msg")
        .arg("-message_file")
        .arg(world.trace("c.log"));
    let (code, output) = run_bounded(command, Duration::from_secs(30)).await;
    assert_eq!(
        code,
        0,
        "C refused: {output}\n{}",
        world.read_trace("c.log")
    );
    assert!(
        first.is_running() && second.is_running(),
        "A and B still up"
    );
    assert_eq!(world.harness.server().guard().running_calls(), LIMIT);

    // A ends; D goes through while B is still up.
    let (code, output) = first.finish().await;
    assert_eq!(code, 0, "A: {output}\n{}", world.read_trace("a.log"));
    assert!(world.running(LIMIT - 1).await, "A's slot released");
    let fourth = world.phone("uac_short.xml", number, 1_000, "d.log");
    let (code, output) = fourth.finish().await;
    assert_eq!(code, 0, "D: {output}\n{}", world.read_trace("d.log"));
    assert!(second.is_running(), "B still up when D ended");
    let (code, output) = second.finish().await;
    assert_eq!(code, 0, "B: {output}");
    let (code, output) = Phone(carrier).finish().await;
    assert_eq!(code, 0, "carrier: {output}");
    let calls: std::collections::HashSet<String> =
        requests(&world.read_trace("carrier.log"), "INVITE")
            .iter()
            .filter_map(|invite| header(invite, "Call-ID").map(str::to_owned))
            .collect();
    assert_eq!(calls.len(), 3, "the carrier saw A, B and D only: {calls:?}");

    let cdrs = api_cdrs(&world.harness, &world.tenant, 4).await;
    assert_eq!(cdrs.len(), 4, "{cdrs:?}");
    let blocked: Vec<&Value> = cdrs
        .iter()
        .filter(|c| c["disposition"] == "blocked")
        .collect();
    assert_eq!(blocked.len(), 1, "{cdrs:?}");
    let refused = blocked[0];
    assert_eq!(refused["sip_status"], 403, "{refused}");
    assert_eq!(refused["hangup_side"], "system", "{refused}");
    assert!(refused["trunk_id"].is_null(), "{refused}");
    let cause = refused["hangup_cause"].as_str().unwrap_or_default();
    assert!(cause.contains("Concurrent"), "{refused}");
    let mut answered: Vec<&Value> = cdrs
        .iter()
        .filter(|c| c["disposition"] == "answered")
        .collect();
    assert_eq!(answered.len(), 3, "{cdrs:?}");
    answered.sort_by_key(|c| ms(c, "start_ms"));
    let (a, b, d) = (answered[0], answered[1], answered[2]);
    for held in [a, b] {
        // Both were answered before C and still up when it was refused.
        assert!(ms(held, "answer_ms") <= ms(refused, "start_ms"), "{held}");
        assert!(ms(held, "end_ms") >= ms(refused, "end_ms"), "{held}");
        assert_eq!(held["direction"], "outbound", "{held}");
        assert_eq!(held["callee"], "+31201234567", "{held}");
    }
    assert!(ms(d, "start_ms") >= ms(a, "end_ms"), "D after A ended: {d}");
    assert!(ms(d, "end_ms") <= ms(b, "end_ms"), "D while B was up: {d}");

    let events = security_events(&world.harness, &world.tenant, "threshold_breached", 1).await;
    assert_eq!(events.len(), 1, "{events:?}");
    let payload = &events[0]["payload"];
    assert_eq!(payload["limit"], "concurrent", "{payload}");
    assert_eq!(payload["max"], LIMIT, "{payload}");
    assert_eq!(world.harness.server().guard().running_calls(), 0);
    world.harness.shutdown().await;
}

/// The terminator: `cost_per_day_millicents = 60` at the national tariff (2,000 milli-cents a
/// minute) is reached ~2 s after the answer and critical (1.5 ×) ~1 s later; the guard's
/// housekeeping then ends the running call with a BYE carrying a `Reason` to the phone and to
/// the carrier, the CDR is closed with hangup side `system`, the breach is a stored event,
/// and the account's next call is refused (`blocked`) for the rest of the day.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_critical_cost_breach_ends_the_running_call_on_both_legs() {
    let limits = LimitsSection {
        cost_per_day_millicents: Some(60),
        ..LimitsSection::default()
    };
    let Some(world) = Carrier::start("termco", limits).await else {
        return;
    };
    let carrier = world.carrier(1, "carrier.log");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let number = "0201234567";

    // uac_wait_bye.xml holds the call until it receives a BYE (or SIPp's 40 s timeout).
    let phone = world.phone("uac_wait_bye.xml", number, 0, "phone.log");
    let (code, output) = phone.finish().await;
    let phone_trace = world.read_trace("phone.log");
    assert_eq!(code, 0, "phone: {output}\n{phone_trace}");
    let (code, output) = Phone(carrier).finish().await;
    let carrier_trace = world.read_trace("carrier.log");
    assert_eq!(code, 0, "carrier: {output}\n{carrier_trace}");
    for (leg, trace) in [("phone", &phone_trace), ("carrier", &carrier_trace)] {
        let byes = requests(trace, "BYE");
        assert_eq!(byes.len(), 1, "{leg}: one BYE from the platform\n{trace}");
        let reason = header(&byes[0], "Reason").unwrap_or_default();
        assert!(reason.contains("fraud guard"), "{leg}: Reason {reason:?}");
    }

    let cdrs = api_cdrs(&world.harness, &world.tenant, 1).await;
    assert_eq!(cdrs.len(), 1, "{cdrs:?}");
    let cdr = &cdrs[0];
    assert_eq!(cdr["disposition"], "answered", "{cdr}");
    assert_eq!(cdr["hangup_side"], "system", "{cdr}");
    assert_eq!(cdr["hangup_cause"], "fraud guard", "{cdr}");
    let billable = cdr["billable_secs"].as_i64().unwrap_or(0);
    assert!((2..=15).contains(&billable), "ended at the breach: {cdr}");

    let events = security_events(&world.harness, &world.tenant, "threshold_breached", 1).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["payload"]["limit"], "cost_per_day", "{events:?}");
    assert_eq!(world.harness.server().guard().running_calls(), 0);

    // The day's limit stays reached: the next call is refused at set-up.
    dial(&world.sipp, &world.tenant, "uac_refused.xml", number, 1).await;
    let cdrs = api_cdrs(&world.harness, &world.tenant, 2).await;
    let refused = cdrs
        .iter()
        .find(|c| c["disposition"] == "blocked")
        .unwrap_or_else(|| panic!("a blocked CDR: {cdrs:?}"));
    let cause = refused["hangup_cause"].as_str().unwrap_or_default();
    assert!(cause.contains("CostPerDay"), "{refused}");
    world.harness.shutdown().await;
}

// ----- limits and blocks set through the management API -----

/// A customer-admin token for `tenant`, created by the operator (it outlives a restart,
/// unlike the generated operator secret, which is only known at the first start).
async fn admin_token(harness: &Harness, tenant: &Tenant) -> String {
    let created = api(
        harness,
        &operator_token(harness),
        "POST",
        "/api/v1/tokens",
        json!({ "name": "guard admin", "role": "customer_admin", "tenant": tenant.id.to_string() }),
    )
    .await;
    created["secret"].as_str().expect("secret").to_owned()
}

/// `PUT .../users/{user}/security/limits {"calls_per_minute": 2}` through the HTTP API,
/// with no restart: the carrier answers exactly 2 calls of the account and the 3rd is
/// refused with 403 (uac_refused.xml), a `blocked` CDR and a `threshold_breached` event
/// naming the override's maximum. After a restart the override is loaded again from the
/// store and in force.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_limit_set_through_the_api_cuts_calls_off_at_the_override() {
    let Some(mut world) = Carrier::start("overco", LimitsSection::default()).await else {
        return;
    };
    let token = admin_token(&world.harness, &world.tenant).await;
    let path = format!(
        "/api/v1/tenants/{}/users/{}/security/limits",
        world.tenant.id, world.tenant.accounts[0].user_id
    );
    let set = api(
        &world.harness,
        &token,
        "PUT",
        &path,
        json!({ "calls_per_minute": 2 }),
    )
    .await;
    assert_eq!(set["limits"]["calls_per_minute"], 2, "{set}");
    assert_eq!(set["effective"]["calls_per_minute"], 2, "{set}");
    assert_eq!(
        set["effective"]["max_concurrent_calls"], 4,
        "default kept: {set}"
    );

    let carrier = world.carrier(2, "carrier.log");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let number = "0201234567";
    for call in ["a.log", "b.log"] {
        let (code, output) = world
            .phone("uac_short.xml", number, 500, call)
            .finish()
            .await;
        assert_eq!(code, 0, "{call}: {output}\n{}", world.read_trace(call));
    }
    dial(&world.sipp, &world.tenant, "uac_refused.xml", number, 1).await;
    let (code, output) = Phone(carrier).finish().await;
    assert_eq!(code, 0, "carrier: {output}");
    let invites = requests(&world.read_trace("carrier.log"), "INVITE");
    assert_eq!(invites.len(), 2, "the carrier saw 2 calls only");

    let cdrs = api_cdrs(&world.harness, &world.tenant, 3).await;
    assert_eq!(cdrs.len(), 3, "{cdrs:?}");
    let answered = cdrs.iter().filter(|c| c["disposition"] == "answered");
    assert_eq!(answered.count(), 2, "{cdrs:?}");
    let blocked: Vec<&Value> = cdrs
        .iter()
        .filter(|c| c["disposition"] == "blocked")
        .collect();
    assert_eq!(blocked.len(), 1, "{cdrs:?}");
    assert_eq!(blocked[0]["sip_status"], 403, "{}", blocked[0]);
    let cause = blocked[0]["hangup_cause"].as_str().unwrap_or_default();
    assert!(cause.contains("CallsPerMinute"), "{}", blocked[0]);
    let events = security_events(&world.harness, &world.tenant, "threshold_breached", 1).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        events[0]["payload"]["limit"], "calls_per_minute",
        "{events:?}"
    );
    assert_eq!(events[0]["payload"]["max"], 2, "{events:?}");

    // After a restart the stored override is in force again.
    world.harness.restart().await;
    let account = world.tenant.accounts[0].user_id;
    let limits = world.harness.server().guard().account_limits(account);
    assert_eq!(limits.calls_per_minute, Some(2), "{limits:?}");
    let (status, body) =
        http_request(world.harness.server().http_addr, "GET", &path, &token, None).await;
    assert_eq!(status, 200, "{body}");
    let read: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(read["effective"]["calls_per_minute"], 2, "{read}");
    world.harness.shutdown().await;
}

/// "Block this account now" through the API (a customer admin): the account's call in
/// progress is ended with a BYE on both legs, its next call gets 403 with a `blocked` CDR,
/// the block is listed, raises `account_blocked`, survives a restart, and once lifted
/// through the API the account's calls reach the carrier again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_blocked_through_the_api_is_refused_until_lifted() {
    let Some(mut world) = Carrier::start("blockco", LimitsSection::default()).await else {
        return;
    };
    let token = admin_token(&world.harness, &world.tenant).await;
    let blocks = format!("/api/v1/tenants/{}/security/blocks", world.tenant.id);
    let account = world.tenant.accounts[0].clone();
    let number = "0201234567";

    // A call in progress (held until a BYE) when the block comes.
    let carrier = world.carrier(1, "carrier1.log");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let phone = world.phone("uac_wait_bye.xml", number, 0, "held.log");
    assert!(world.answered(1).await, "{}", world.read_trace("held.log"));
    let block = api(
        &world.harness,
        &token,
        "POST",
        &blocks,
        json!({ "user": account.extension, "reason": "calls the customer did not make" }),
    )
    .await;
    assert_eq!(block["user_id"], account.user_id.to_string(), "{block}");
    let (code, output) = phone.finish().await;
    let held = world.read_trace("held.log");
    assert_eq!(code, 0, "the held call ended by a BYE: {output}\n{held}");
    let (code, output) = Phone(carrier).finish().await;
    assert_eq!(code, 0, "carrier: {output}");
    for (leg, trace) in [
        ("phone", held),
        ("carrier", world.read_trace("carrier1.log")),
    ] {
        let byes = requests(&trace, "BYE");
        assert_eq!(byes.len(), 1, "{leg}: one BYE from the platform\n{trace}");
        let reason = header(&byes[0], "Reason").unwrap_or_default();
        assert!(reason.contains("fraud guard"), "{leg}: Reason {reason:?}");
    }

    // The next call is refused at set-up.
    dial(&world.sipp, &world.tenant, "uac_refused.xml", number, 1).await;
    let cdrs = api_cdrs(&world.harness, &world.tenant, 2).await;
    let refused: Vec<&Value> = cdrs
        .iter()
        .filter(|c| c["disposition"] == "blocked")
        .collect();
    assert_eq!(refused.len(), 1, "{cdrs:?}");
    assert_eq!(refused[0]["sip_status"], 403, "{}", refused[0]);
    let events = security_events(&world.harness, &world.tenant, "account_blocked", 1).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        events[0]["payload"]["account"],
        account.user_id.to_string(),
        "{events:?}"
    );

    // Still blocked after a restart (listed, and refused).
    world.harness.restart().await;
    world.sipp = Sipp::new(world.bin.clone(), &world.harness, &world.tenant);
    let (status, body) = http_request(
        world.harness.server().http_addr,
        "GET",
        &blocks,
        &token,
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let listed: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(
        listed,
        json!([{ "user_id": account.user_id.to_string(), "tenant_id": world.tenant.id.to_string() }])
    );
    dial(&world.sipp, &world.tenant, "uac_refused.xml", number, 1).await;

    // Lifted through the API: the next call reaches the carrier and is answered.
    let lift = format!("{blocks}/{}", account.user_id);
    let (status, body) = http_request(
        world.harness.server().http_addr,
        "DELETE",
        &lift,
        &token,
        None,
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let carrier = world.carrier(1, "carrier2.log");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (code, output) = world
        .phone("uac_short.xml", number, 500, "after.log")
        .finish()
        .await;
    assert_eq!(
        code,
        0,
        "after the lift: {output}\n{}",
        world.read_trace("after.log")
    );
    let (code, output) = Phone(carrier).finish().await;
    assert_eq!(code, 0, "carrier: {output}");
    assert_eq!(
        requests(&world.read_trace("carrier2.log"), "INVITE").len(),
        1
    );
    let unblocked = security_events_as(
        &world.harness,
        &token,
        &world.tenant,
        "account_unblocked",
        1,
    )
    .await;
    assert_eq!(unblocked.len(), 1, "{unblocked:?}");
    world.harness.shutdown().await;
}

/// An attended transfer to a number: extension 100 calls 101, which calls a number through
/// the carrier on its second line and joins 100 to that call with a REFER + Replaces
/// (`uas_attended_transferor.xml`; the carrier, `carrier_attended_target.xml`, must get the
/// joining re-INVITE). The guard counts the outside call until the joined call ends (the
/// carrier hangs up), not only until the transferor left it: nobody can leave an outside call
/// running uncounted through a transfer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outside_call_joined_by_an_attended_transfer_is_counted_until_it_ends() {
    let Some(world) = Carrier::start("attguard", LimitsSection::default()).await else {
        return;
    };
    let tenant = world.harness.provision("attguardco", 2).await;
    let sipp = Sipp::new(world.bin.clone(), &world.harness, &tenant);
    let (caller, transferor) = (&tenant.accounts[0], &tenant.accounts[1]);
    let transferor_port = free_port(v4());
    sipp.register(transferor, transferor_port).await;
    let carrier = world.carrier_with("carrier_attended_target.xml", 1, "carrier.log");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let number = "0201234567";
    let mut command = sipp.callee_command(
        "uas_attended_transferor.xml",
        transferor_port,
        free_port(v4()),
    );
    command
        .args(["-key", "target", number])
        .args(["-key", "caller", &transferor.extension])
        .args(["-au", &transferor.auth_user, "-ap", &transferor.password])
        .args(["-auth_uri", &format!("{number}@{}", tenant.domain)]);
    let transferor_sipp = command.spawn().expect("sipp transferor starts");
    // 100 is held, resumed once joined, and hung up on by the carrier.
    let mut command = sipp.caller_command("uac_held_wait_bye.xml", caller, &transferor.extension);
    let phone = Phone(
        command
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("sipp caller starts"),
    );
    let (code, output) = wait_bounded(transferor_sipp, Duration::from_secs(45)).await;
    assert_eq!(code, 0, "transferor: {output}{}", sipp.logs());
    // The transferor is gone from both calls; the outside call goes on, counted.
    assert!(world.running(1).await, "the joined outside call is counted");
    let (code, output) = phone.finish().await;
    assert_eq!(code, 0, "caller: {output}{}", sipp.logs());
    let (code, output) = wait_bounded(carrier, Duration::from_secs(45)).await;
    assert_eq!(
        code,
        0,
        "carrier: {output}{}",
        world.read_trace("carrier.log")
    );
    assert!(
        world.running(0).await,
        "released when the joined call ended"
    );

    let cdrs = api_cdrs(&world.harness, &tenant, 3).await;
    assert_eq!(cdrs.len(), 3, "{cdrs:?}");
    let joined = cdrs
        .iter()
        .find(|cdr| cdr["caller"] == caller.extension && cdr["direction"] == "outbound")
        .unwrap_or_else(|| panic!("no joined CDR: {cdrs:?}"));
    assert_eq!(joined["disposition"], "answered", "{joined}");
    assert_eq!(joined["hangup_side"], "callee", "{joined}");
    assert!(joined["trunk_id"].is_string(), "{joined}");
    let outside = cdrs
        .iter()
        .find(|cdr| cdr["caller"] == transferor.extension)
        .unwrap_or_else(|| panic!("no CDR of the transferor's call: {cdrs:?}"));
    assert_eq!(outside["hangup_cause"], "transferred", "{outside}");
    world.harness.shutdown().await;
}
