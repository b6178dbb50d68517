//! The fraud guard on calls, with a real SIPp caller (authenticated with the 407 challenge):
//! premium-rate and high-fraud destinations are refused with 403 and a `Reason` header, each
//! refusal filed as a CDR and a security event; a burst above the account's calls-per-minute
//! limit is cut off exactly at the limit; emergency numbers are never refused by the guard.
//!
//! No trunk is configured here: admitted calls to outside numbers end with 404 (no route), so
//! the guard's verdict is what tells 403 from 404.

use std::time::Duration;

use crate::calls::{Sipp, api_cdrs, operator_token};
use crate::support::{Harness, Options, Tenant, run_bounded, tool};

async fn setup(slug: &str) -> Option<(Harness, Tenant, Sipp)> {
    let bin = tool("sipp", "sip-tester")?;
    let harness = Harness::start(Options {
        digest: r#"["MD5"]"#,
        ipv6: false,
        ..Options::default()
    })
    .await;
    let tenant = harness.provision(slug, 1).await;
    let sipp = Sipp::new(bin, &harness, &tenant);
    Some((harness, tenant, sipp))
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
    let token = operator_token(harness);
    let path = format!("/api/v1/tenants/{}/security/events?type={kind}", tenant.id);
    let mut listed = Vec::new();
    for _ in 0..100 {
        let (status, body) =
            crate::support::http_request(harness.server().http_addr, "GET", &path, &token, None)
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
