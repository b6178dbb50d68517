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
    registrar(sipp, "carrier_register.xml", port, password, work)
}

/// SIPp running the registrar `scenario` (bench/sipp-trunk) on 127.0.0.1:`port`.
fn registrar(
    sipp: &std::path::Path,
    scenario: &str,
    port: u16,
    password: &str,
    work: &std::path::Path,
) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(sipp);
    command
        .arg("-sf")
        .arg(repo_root().join("bench/sipp-trunk").join(scenario))
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
    create_trunk_at(harness, token, "127.0.0.1", port).await
}

/// A registering trunk to `host`:`port` (account acct-1).
async fn create_trunk_at(harness: &Harness, token: &str, host: &str, port: u16) -> String {
    let body = json!({
        "name": "sipp-carrier",
        "host": host,
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

/// A carrier host name whose first SRV target answers REGISTER 503: the registration moves
/// on to the second target, registers there, and stays there for the refreshes.
#[tokio::test]
async fn trunk_registration_moves_on_to_the_next_srv_target() {
    use pbx_test_support::dns::{DnsServer, a, srv};
    let Some(sipp) = tool("sipp", "sip-tester") else {
        return;
    };
    let dns = DnsServer::start().await.unwrap();
    let (down_port, up_port) = (free_port(v4()), free_port(v4()));
    let loopback = std::net::Ipv4Addr::LOCALHOST;
    dns.set(vec![
        srv(
            "_sip._udp.reg.test.",
            300,
            10,
            0,
            down_port,
            "down.reg.test.",
        ),
        srv("_sip._udp.reg.test.", 300, 20, 0, up_port, "up.reg.test."),
        a("down.reg.test.", 300, loopback),
        a("up.reg.test.", 300, loopback),
    ]);
    let harness = Harness::start(Options {
        extra_toml: format!("[dns]\nservers = [\"{}\"]\n", dns.addr()),
        ..Options::default()
    })
    .await;
    let token = operator_token(&harness);
    let work = tempfile::tempdir().unwrap();
    let spawn = |scenario, port| {
        registrar(&sipp, scenario, port, "carrier-pass-1", work.path())
            .spawn()
            .unwrap()
    };
    let down = spawn("carrier_register_503.xml", down_port);
    let up = spawn("carrier_register.xml", up_port);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let id = create_trunk_at(&harness, &token, "reg.test", 5060).await;

    for (name, child) in [("503 target", down), ("second target", up)] {
        let output = tokio::time::timeout(Duration::from_secs(40), child.wait_with_output())
            .await
            .expect("SIPp carrier finished")
            .unwrap();
        let text = String::from_utf8_lossy(&output.stderr).into_owned();
        assert_eq!(output.status.code(), Some(0), "{name}:\n{text}");
    }
    let state = registration(&harness, &token, &id).await;
    assert_eq!(state["state"], "registered", "{state}");
    assert!(state["registrations"].as_u64().unwrap() >= 3, "{state}");
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

// ----- calls through trunks (bench/sipp-trunk carriers, SIPp phones) -----

pub(crate) mod calls {
    use std::path::{Path, PathBuf};
    use std::time::Duration;

    use pbx_call::{Direction, Disposition};
    use pbx_server::calls::CallEnded;
    use pbx_sip_auth::{Algorithm, Credentials, Ha1, ResponseInput, compute_response};
    use pbx_sip_net::Transport;
    use serde_json::{Value, json};
    use tokio::sync::oneshot;

    use crate::support::{
        Account, Harness, Options, Tenant, api_json, free_port, repo_root, run_bounded, tool,
        trace_header as header, trace_requests, v4, wait_bounded,
    };

    /// The carriers live on 127.0.0.2 (the trunks' source network); phones on 127.0.0.1.
    const CARRIER_IP: &str = "127.0.0.2";
    /// A source that is no trunk's.
    const STRANGER_IP: &str = "127.0.0.3";
    const DID: &str = "+31201234567";
    /// The calling user's own number in the tests between tenants.
    const CALLER_DID: &str = "+31201234599";

    fn scenario(name: &str) -> PathBuf {
        repo_root().join("bench/sipp-trunk").join(name)
    }

    /// A server (MD5 only: SIPp answers MD5 challenges only) with one tenant of two users.
    struct World {
        harness: Harness,
        tenant: Tenant,
        token: String,
        sipp: PathBuf,
        work: tempfile::TempDir,
    }

    impl World {
        async fn start() -> Option<World> {
            World::start_with(String::new()).await
        }

        /// A world whose server has `extra_toml` appended to its configuration.
        async fn start_with(extra_toml: String) -> Option<World> {
            let sipp = tool("sipp", "sip-tester")?;
            let harness = Harness::start(Options {
                digest: r#"["MD5"]"#,
                ipv6: false,
                extra_toml,
                ..Options::default()
            })
            .await;
            let tenant = harness.provision("trunkco", 2).await;
            let token = super::operator_token(&harness);
            let work = tempfile::tempdir().unwrap();
            Some(World {
                harness,
                tenant,
                token,
                sipp,
                work,
            })
        }

        async fn api(&self, method: &str, path: &str, body: Value) -> Value {
            api_json(&self.harness, &self.token, method, path, body).await
        }

        /// A trunk to a carrier on 127.0.0.2:`port`, calls accepted from 127.0.0.2.
        async fn trunk(&self, name: &str, port: u16, priority: i32, digest: bool) -> String {
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
            let created = self.api("POST", "/api/v1/trunks", body).await;
            created["id"].as_str().unwrap().to_owned()
        }

        async fn route(&self, prefix: &str, trunks: &[&str]) {
            let trunks: Vec<Value> = trunks.iter().map(|id| json!({ "trunk_id": id })).collect();
            self.api(
                "POST",
                "/api/v1/routes",
                json!({ "prefix": prefix, "trunks": trunks }),
            )
            .await;
        }

        /// Puts `number` in the tenant and assigns it to `account` (if any).
        async fn number(&self, number: &str, account: Option<&Account>) {
            self.number_in(&self.tenant, number, account).await;
        }

        /// Puts `number` in `tenant` and assigns it to `account` (if any).
        async fn number_in(&self, tenant: &Tenant, number: &str, account: Option<&Account>) {
            self.harness.assign_number(tenant, number, account).await;
        }

        /// A carrier on the `31` route that must never see the call (nothing listens there,
        /// so a call sent out would fail instead of reaching the phone).
        async fn carrier_that_must_not_be_used(&self) {
            let port = free_port(v4());
            let trunk = self.trunk("carrier-a", port, 10, true).await;
            self.route("31", &[&trunk]).await;
        }

        /// `callee` (registered as a SIPp phone that answers) gets a call from `caller`, who
        /// dials `DID` in national format; both must succeed. Returns the From header of the
        /// INVITE the phone got.
        async fn dial_our_number(&self, caller: &Account, callee: &Account) -> String {
            self.routing_loaded().await;
            let phone_port = free_port(v4());
            let phone = self.phone(callee, phone_port).await;
            let (code, output) = self.dial(caller, "0201234567").await;
            let phone_trace = self.read_trace(&format!("phone-{phone_port}.log"));
            assert_eq!(code, 0, "caller: {output}\nphone:\n{phone_trace}");
            let (code, output) = finish(phone).await;
            assert_eq!(code, 0, "phone: {output}");
            let phone_trace = self.read_trace(&format!("phone-{phone_port}.log"));
            let invite = &invites(&phone_trace)[0];
            header(invite, "From").unwrap().to_owned()
        }

        /// Waits until the routing snapshot has every store change so far.
        async fn routing_loaded(&self) {
            self.harness.routing_loaded().await;
        }

        fn trace(&self, name: &str) -> PathBuf {
            self.work.path().join(name)
        }

        fn command(&self, file: &Path, ip: &str, port: u16) -> tokio::process::Command {
            let mut command = tokio::process::Command::new(&self.sipp);
            command
                .arg("-sf")
                .arg(file)
                .args(["-i", ip, "-p", &port.to_string()])
                .args(["-mi", ip, "-mp", &free_port(v4()).to_string()])
                .args(["-m", "1", "-timeout", "40s", "-trace_err", "-nostdin"])
                .current_dir(self.work.path())
                .kill_on_drop(true);
            command
        }

        /// A carrier UAS on 127.0.0.2:`port`, tracing its messages to `trace`.
        fn carrier(&self, file: &str, port: u16, trace: &str) -> tokio::process::Child {
            let mut command = self.command(&scenario(file), CARRIER_IP, port);
            command
                .args(["-key", "rtp_port", &free_port(v4()).to_string()])
                .arg("-trace_msg")
                .arg("-message_file")
                .arg(self.trace(trace))
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            command.spawn().expect("sipp carrier starts")
        }

        /// A SIPp phone of `caller` dialling `dialled`, authenticated with the 407 challenge.
        async fn dial(&self, caller: &Account, dialled: &str) -> (i32, String) {
            let server = self.harness.addr(Transport::Udp, false);
            let mut command = self.command(
                &repo_root().join("bench/sipp-calls/uac_short.xml"),
                "127.0.0.1",
                free_port(v4()),
            );
            command
                .arg(server.to_string())
                .args(["-s", dialled, "-d", "1000"])
                .args(["-key", "domain", &self.tenant.domain])
                .args(["-key", "caller", &caller.extension])
                .args(["-au", &caller.auth_user, "-ap", &caller.password])
                .args(["-auth_uri", &format!("{dialled}@{}", self.tenant.domain)]);
            run_bounded(command, Duration::from_secs(60)).await
        }

        /// A carrier delivering a call to `number` from `ip` (carrier_call_*.xml).
        async fn deliver(&self, file: &str, ip: &str, number: &str, trace: &str) -> (i32, String) {
            let server = self.harness.addr(Transport::Udp, false);
            let mut command = self.command(&scenario(file), ip, free_port(v4()));
            command
                .arg(server.to_string())
                .args(["-s", number, "-key", "caller", "+31612345678"])
                .arg("-trace_msg")
                .arg("-message_file")
                .arg(self.trace(trace));
            run_bounded(command, Duration::from_secs(60)).await
        }

        /// Registers `account` from SIPp on `port` and starts it answering there.
        async fn phone(&self, account: &Account, port: u16) -> tokio::process::Child {
            let csv = self.work.path().join(format!("reg-{port}.csv"));
            std::fs::write(
                &csv,
                format!(
                    "SEQUENTIAL\n{ext};{domain};{user};{pw};[authentication username={user} password={pw}]\n",
                    ext = account.extension,
                    domain = self.tenant.domain,
                    user = account.auth_user,
                    pw = account.password,
                ),
            )
            .unwrap();
            let server = self.harness.addr(Transport::Udp, false);
            let mut command = self.command(
                &repo_root().join("bench/registration/reg_auth.xml"),
                "127.0.0.1",
                port,
            );
            command.arg(server.to_string()).arg("-inf").arg(&csv).args([
                "-key",
                "contact_port",
                &port.to_string(),
            ]);
            let (code, output) = run_bounded(command, Duration::from_secs(30)).await;
            assert_eq!(code, 0, "phone registration: {output}");
            let mut command = self.command(
                &repo_root().join("bench/sipp-calls/uas_answer.xml"),
                "127.0.0.1",
                port,
            );
            command
                .arg(server.to_string())
                .args(["-key", "rtp_port", &free_port(v4()).to_string()])
                .arg("-trace_msg")
                .arg("-message_file")
                .arg(self.trace(&format!("phone-{port}.log")))
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            command.spawn().expect("sipp phone starts")
        }

        /// The finished calls (polled, bounded, until `count` have ended).
        async fn records(&self, count: usize) -> Vec<CallEnded> {
            let mut seen = Vec::new();
            for _ in 0..100 {
                let (tx, rx) = oneshot::channel();
                self.harness
                    .server()
                    .endpoint()
                    .execute(move |tu, _| {
                        let _ = tx.send(tu.calls().map(|c| c.recent()).unwrap_or_default());
                    })
                    .await
                    .unwrap();
                seen = rx.await.unwrap();
                if seen.len() >= count {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            seen
        }

        async fn calls_in_progress(&self) -> usize {
            let (tx, rx) = oneshot::channel();
            self.harness
                .server()
                .endpoint()
                .execute(move |tu, _| {
                    let _ = tx.send(tu.calls().map_or(0, |c| c.call_count()));
                })
                .await
                .unwrap();
            rx.await.unwrap()
        }

        /// A carrier answering 503 on 127.0.0.2:`down_port` and one answering on `up_port`;
        /// a user dials a national number and the call must be answered after the failover.
        /// Returns the one INVITE each carrier got, and the call's record.
        async fn call_through_503_then_answer(
            &self,
            down_port: u16,
            up_port: u16,
        ) -> (Vec<Vec<String>>, CallEnded) {
            let first = self.carrier("carrier_invite_503.xml", down_port, "down.log");
            let second = self.carrier("carrier_invite_answer.xml", up_port, "up.log");
            tokio::time::sleep(Duration::from_millis(300)).await;
            let caller = &self.tenant.accounts[0];
            // A national number (the provisioned users' class of service is national).
            let (code, output) = self.dial(caller, "0031301234567").await;
            assert_eq!(code, 0, "caller: {output}");
            let (code, output) = finish(first).await;
            assert_eq!(code, 0, "503 carrier: {output}");
            let (code, output) = finish(second).await;
            assert_eq!(code, 0, "second carrier: {output}");
            let mut got = Vec::new();
            for trace in ["down.log", "up.log"] {
                let mut invites = invites(&self.read_trace(trace));
                assert_eq!(invites.len(), 1, "{trace}: {invites:?}");
                assert!(
                    invites[0][0].starts_with("INVITE sip:+31301234567@"),
                    "{invites:?}"
                );
                got.push(invites.remove(0));
            }
            let mut records = self.records(1).await;
            let record = records.pop().unwrap();
            assert_eq!(record.disposition, Disposition::Answered);
            (got, record)
        }

        fn read_trace(&self, name: &str) -> String {
            std::fs::read_to_string(self.trace(name)).unwrap_or_default()
        }
    }

    /// Waits (bounded) for a SIPp UAS to finish: (exit code, output).
    async fn finish(child: tokio::process::Child) -> (i32, String) {
        wait_bounded(child, Duration::from_secs(45)).await
    }

    /// The INVITEs of a SIPp message trace, each as its header lines.
    fn invites(trace: &str) -> Vec<Vec<String>> {
        trace_requests(trace, "INVITE")
    }

    /// `answered` is the INVITE a carrier got again after challenging `challenged` with 407:
    /// the same dialog, a right digest of `carrier-pass-1`, `did` as the caller ID (From and
    /// P-Asserted-Identity), and nothing of the tenant's `domain` (topology hiding). Also
    /// used by the transfer tests' carriers.
    pub(crate) fn assert_authenticated_invite(
        challenged: &[String],
        answered: &[String],
        did: &str,
        domain: &str,
    ) {
        assert_eq!(header(challenged, "Call-ID"), header(answered, "Call-ID"));
        let authorization = header(answered, "Proxy-Authorization").expect("credentials");
        assert!(
            digest_valid(authorization, "carrier-pass-1"),
            "{authorization}"
        );
        let from = header(answered, "From").unwrap();
        assert!(
            from.contains(&format!("<sip:{did}@{CARRIER_IP}>")),
            "caller ID: {from}"
        );
        assert_eq!(
            header(answered, "P-Asserted-Identity"),
            Some(format!("<sip:{did}@{CARRIER_IP}>").as_str())
        );
        assert!(!answered.iter().any(|l| l.contains(domain)), "{answered:?}");
    }

    /// Whether a Proxy-Authorization value is a right MD5 digest of `password` for INVITE
    /// from the trunk account `acct-1`.
    fn digest_valid(value: &str, password: &str) -> bool {
        let Ok(credentials) = Credentials::parse(value.as_bytes()) else {
            return false;
        };
        let ha1 = Ha1::compute(
            Algorithm::Md5,
            &credentials.username,
            &credentials.realm,
            password,
        );
        let expected = compute_response(
            &ha1,
            &ResponseInput {
                algorithm: Algorithm::Md5,
                method: "INVITE",
                uri: &credentials.uri,
                nonce: &credentials.nonce,
                cnonce: credentials.cnonce.as_deref(),
                nc: credentials.nc.as_ref().map(|nc| nc.as_str()),
                qop: credentials.qop.as_deref(),
            },
        );
        credentials.username == "acct-1" && expected.as_str() == credentials.response
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn outbound_call_reaches_a_sipp_carrier_with_407_digest_and_e164() {
        let Some(world) = World::start().await else {
            return;
        };
        let port = free_port(v4());
        let trunk = world.trunk("carrier-a", port, 10, true).await;
        world.route("31", &[&trunk]).await;
        let caller = &world.tenant.accounts[0];
        world.number(DID, Some(caller)).await;
        world.routing_loaded().await;
        let carrier = world.carrier("carrier_invite_auth.xml", port, "carrier.log");
        tokio::time::sleep(Duration::from_millis(300)).await;

        let (code, output) = world.dial(caller, "0612345678").await;
        let trace = world.read_trace("carrier.log");
        assert_eq!(code, 0, "caller: {output}\ncarrier trace:\n{trace}");
        let (code, output) = finish(carrier).await;
        assert_eq!(code, 0, "carrier: {output}\n{trace}");

        let invites = invites(&world.read_trace("carrier.log"));
        assert_eq!(
            invites.len(),
            2,
            "challenged once, answered once: {invites:?}"
        );
        let (first, second) = (&invites[0], &invites[1]);
        assert!(
            first[0].starts_with(&format!("INVITE sip:+31612345678@{CARRIER_IP}:{port} ")),
            "E.164 Request-URI: {}",
            first[0]
        );
        assert!(
            header(second, "CSeq").unwrap().starts_with("2 "),
            "{second:?}"
        );
        // Topology hiding: nothing of the phone's dialog reaches the carrier.
        assert_authenticated_invite(first, second, DID, &world.tenant.domain);
        assert!(header(second, "Privacy").is_none());

        let records = world.records(1).await;
        let record = records.last().unwrap();
        assert_eq!(record.direction, Direction::Outbound);
        assert_eq!(record.disposition, Disposition::Answered);
        assert_eq!(record.callee_dialled, "0612345678");
        assert_eq!(record.callee_normalised, "+31612345678");
        assert_eq!(record.caller, DID);
        assert_eq!(record.trunk.as_deref(), Some(trunk.as_str()));
        // The durable CDR, through the API: direction, trunk and the normalised callee.
        let cdrs = crate::calls::api_cdrs(&world.harness, &world.tenant, 1).await;
        let cdr = &cdrs[0];
        assert_eq!(cdr["direction"], "outbound", "{cdr}");
        assert_eq!(cdr["trunk_id"], trunk.as_str(), "{cdr}");
        assert_eq!(cdr["callee"], "+31612345678", "{cdr}");
        assert_eq!(cdr["callee_dialled"], "0612345678", "{cdr}");
        assert_eq!(cdr["disposition"], "answered", "{cdr}");
        world.harness.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn outbound_call_fails_over_from_a_503_carrier_to_the_next_trunk() {
        let Some(world) = World::start().await else {
            return;
        };
        let (down_port, up_port) = (free_port(v4()), free_port(v4()));
        let down = world.trunk("carrier-down", down_port, 10, false).await;
        let up = world.trunk("carrier-up", up_port, 20, false).await;
        world.route("", &[&down, &up]).await;
        world.routing_loaded().await;
        let (invites, record) = world.call_through_503_then_answer(down_port, up_port).await;
        for invite in &invites {
            // No number of the tenant: anonymous towards the carrier, nothing asserted.
            assert!(header(invite, "P-Asserted-Identity").is_none());
        }
        assert_eq!(
            record.trunk.as_deref(),
            Some(up.as_str()),
            "the trunk that answered"
        );
        world.harness.shutdown().await;
    }

    /// One trunk whose host is a name: the test's DNS gives NAPTR → SRV with two targets
    /// (priority 10 answers 503, priority 20 answers); the call moves on within the trunk.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn outbound_call_fails_over_between_the_srv_targets_of_one_trunk() {
        use pbx_test_support::dns::{DnsServer, a, naptr, srv};
        let dns = DnsServer::start().await.unwrap();
        let (down_port, up_port) = (free_port(v4()), free_port(v4()));
        let carrier_ip: std::net::Ipv4Addr = CARRIER_IP.parse().unwrap();
        dns.set(vec![
            naptr(
                "carrier.test.",
                300,
                10,
                10,
                "S",
                "SIP+D2U",
                "_sip._udp.carrier.test.",
            ),
            srv(
                "_sip._udp.carrier.test.",
                300,
                10,
                0,
                down_port,
                "down.carrier.test.",
            ),
            srv(
                "_sip._udp.carrier.test.",
                300,
                20,
                0,
                up_port,
                "up.carrier.test.",
            ),
            a("down.carrier.test.", 300, carrier_ip),
            a("up.carrier.test.", 300, carrier_ip),
        ]);
        let Some(world) =
            World::start_with(format!("[dns]\nservers = [\"{}\"]\n", dns.addr())).await
        else {
            return;
        };
        let created = world
            .api(
                "POST",
                "/api/v1/trunks",
                json!({
                    "name": "carrier-by-name",
                    "host": "carrier.test",
                    "mode": "ip_peering",
                    "inbound_networks": [format!("{CARRIER_IP}/32")],
                }),
            )
            .await;
        let trunk = created["id"].as_str().unwrap().to_owned();
        world.route("", &[&trunk]).await;
        world.routing_loaded().await;
        let targets: Vec<_> = world
            .harness
            .server()
            .routing()
            .trunk_targets("carrier.test", 5060, pbx_domain::Transport::Udp)
            .iter()
            .map(|target| target.address.port())
            .collect();
        assert_eq!(targets, [down_port, up_port], "SRV order");
        // The API shows where the name resolved to.
        let view = world
            .api("GET", &format!("/api/v1/trunks/{trunk}"), Value::Null)
            .await;
        assert_eq!(
            view["resolution"]["targets"],
            json!([
                format!("{CARRIER_IP}:{down_port}"),
                format!("{CARRIER_IP}:{up_port}")
            ]),
            "{view}"
        );
        let (invites, record) = world.call_through_503_then_answer(down_port, up_port).await;
        for invite in &invites {
            assert!(
                invite[0].starts_with("INVITE sip:+31301234567@carrier.test SIP/2.0"),
                "{invite:?}"
            );
        }
        assert_eq!(record.trunk.as_deref(), Some(trunk.as_str()));
        world.harness.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn inbound_call_on_a_did_reaches_the_users_phone() {
        let Some(world) = World::start().await else {
            return;
        };
        let port = free_port(v4());
        let trunk = world.trunk("carrier-in", port, 10, false).await;
        let callee = &world.tenant.accounts[1];
        world.number(DID, Some(callee)).await;
        world.routing_loaded().await;
        let phone_port = free_port(v4());
        let phone = world.phone(callee, phone_port).await;

        let (code, output) = world
            .deliver("carrier_call_did.xml", CARRIER_IP, DID, "in.log")
            .await;
        let phone_trace = world.read_trace(&format!("phone-{phone_port}.log"));
        assert_eq!(code, 0, "carrier: {output}\nphone:\n{phone_trace}");
        let (code, output) = finish(phone).await;
        assert_eq!(code, 0, "phone: {output}");
        let phone_trace = world.read_trace(&format!("phone-{phone_port}.log"));
        let invite = &invites(&phone_trace)[0];
        let from = header(invite, "From").unwrap();
        assert!(from.contains("sip:+31612345678@trunkco.pbx.test"), "{from}");
        assert!(
            !invite.iter().any(|l| l.contains("carrier.test")),
            "{invite:?}"
        );

        let records = world.records(1).await;
        let record = records.last().unwrap();
        assert_eq!(record.direction, Direction::Inbound);
        assert_eq!(record.disposition, Disposition::Answered);
        assert_eq!(record.caller, "+31612345678");
        assert_eq!(record.callee_normalised, DID);
        assert_eq!(record.trunk.as_deref(), Some(trunk.as_str()));
        assert_eq!(record.context.user_id, callee.user_id);
        let cdrs = crate::calls::api_cdrs(&world.harness, &world.tenant, 1).await;
        let cdr = &cdrs[0];
        assert_eq!(cdr["direction"], "inbound", "{cdr}");
        assert_eq!(cdr["trunk_id"], trunk.as_str(), "{cdr}");
        assert_eq!(cdr["callee"], DID, "{cdr}");
        assert_eq!(cdr["user_id"], callee.user_id.to_string(), "{cdr}");
        assert!(cdr["device_id"].is_null(), "{cdr}");
        world.harness.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_call_to_one_of_our_own_numbers_is_connected_internally() {
        let Some(world) = World::start().await else {
            return;
        };
        world.carrier_that_must_not_be_used().await;
        let caller = &world.tenant.accounts[0];
        let callee = &world.tenant.accounts[1];
        world.number(DID, Some(callee)).await;
        // The caller dials the colleague's DID in national format.
        let from = world.dial_our_number(caller, callee).await;
        assert!(
            from.contains(&format!("sip:{}@{}", caller.extension, world.tenant.domain)),
            "the caller's extension: {from}"
        );

        let records = world.records(1).await;
        let record = records.last().unwrap();
        assert_eq!(record.direction, Direction::Internal);
        assert_eq!(record.disposition, Disposition::Answered);
        assert_eq!(record.callee_dialled, "0201234567");
        assert_eq!(record.callee_normalised, DID);
        assert_eq!(record.trunk, None, "never through a carrier");
        assert_eq!(record.context.callee_user_id, Some(callee.user_id));
        let cdrs = crate::calls::api_cdrs(&world.harness, &world.tenant, 1).await;
        assert_eq!(cdrs.len(), 1, "one CDR: {cdrs:?}");
        let cdr = &cdrs[0];
        assert_eq!(cdr["direction"], "internal", "{cdr}");
        assert!(cdr["trunk_id"].is_null(), "{cdr}");
        assert_eq!(cdr["callee"], DID, "{cdr}");
        assert_eq!(cdr["disposition"], "answered", "{cdr}");
        world.harness.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_call_to_another_tenants_number_gives_each_tenant_its_own_cdr() {
        let Some(world) = World::start().await else {
            return;
        };
        world.carrier_that_must_not_be_used().await;
        let other = world.harness.provision("otherco", 1).await;
        let caller = &world.tenant.accounts[0];
        let callee = &other.accounts[0];
        // The caller's own number is what the other company sees.
        world.number(CALLER_DID, Some(caller)).await;
        world.number_in(&other, DID, Some(callee)).await;
        let from = world.dial_our_number(caller, callee).await;
        assert!(from.contains(CALLER_DID), "the caller's number: {from}");

        let ours = crate::calls::api_cdrs(&world.harness, &world.tenant, 1).await;
        assert_eq!(ours.len(), 1, "{ours:?}");
        assert_eq!(ours[0]["direction"], "outbound", "{}", ours[0]);
        assert!(
            ours[0]["trunk_id"].is_null(),
            "never a carrier: {}",
            ours[0]
        );
        assert_eq!(ours[0]["callee"], DID, "{}", ours[0]);
        assert_eq!(
            ours[0]["user_id"],
            caller.user_id.to_string(),
            "{}",
            ours[0]
        );
        assert_eq!(ours[0]["disposition"], "answered", "{}", ours[0]);
        let theirs = crate::calls::api_cdrs(&world.harness, &other, 1).await;
        assert_eq!(theirs.len(), 1, "{theirs:?}");
        let cdr = &theirs[0];
        assert_eq!(cdr["direction"], "inbound", "{cdr}");
        assert_eq!(cdr["user_id"], callee.user_id.to_string(), "{cdr}");
        assert_eq!(cdr["caller"], CALLER_DID, "{cdr}");
        assert_eq!(cdr["callee"], DID, "{cdr}");
        assert!(cdr["trunk_id"].is_null(), "{cdr}");
        assert!(cdr["device_id"].is_null(), "{cdr}");
        assert_eq!(cdr["disposition"], "answered", "{cdr}");
        assert_eq!(cdr["billable_secs"], ours[0]["billable_secs"], "{cdr}");
        assert_ne!(cdr["id"], ours[0]["id"], "two records");
        world.harness.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unassigned_and_foreign_numbers_and_strangers_are_never_forwarded() {
        let Some(world) = World::start().await else {
            return;
        };
        let port = free_port(v4());
        let trunk = world.trunk("carrier-in", port, 10, false).await;
        let callee = &world.tenant.accounts[1];
        world.number(DID, Some(callee)).await;
        world.number("+31209999999", None).await;
        world.routing_loaded().await;
        // The user is registered (a forwarded call would have somewhere to go).
        let phone_port = free_port(v4());
        let phone = world.phone(callee, phone_port).await;

        let cases = [
            (
                CARRIER_IP,
                "+31209999999",
                "404",
                "unassigned number from the trunk",
            ),
            (
                CARRIER_IP,
                "+442079460018",
                "407",
                "foreign number from the trunk (user path: challenged)",
            ),
            (
                STRANGER_IP,
                DID,
                "407",
                "our number from a source that is no trunk's",
            ),
        ];
        for (index, (ip, number, status, what)) in cases.iter().enumerate() {
            let trace = format!("refused-{index}.log");
            let (code, output) = world
                .deliver("carrier_call_refused.xml", ip, number, &trace)
                .await;
            let text = world.read_trace(&trace);
            assert_eq!(code, 0, "{what}: {output}\n{text}");
            assert!(
                text.contains(&format!("SIP/2.0 {status} ")),
                "{what}: {text}"
            );
        }
        assert_eq!(world.calls_in_progress().await, 0);
        assert!(world.records(0).await.is_empty(), "no call was started");
        assert!(
            invites(&world.read_trace(&format!("phone-{phone_port}.log"))).is_empty(),
            "the phone never rang"
        );
        // The tenant's unassigned number is filed for the tenant (no user); the foreign
        // number and the stranger's unauthenticated attempt are not (no tenant, no CDR).
        let cdrs = crate::calls::api_cdrs(&world.harness, &world.tenant, 1).await;
        assert_eq!(cdrs.len(), 1, "{cdrs:?}");
        let cdr = &cdrs[0];
        assert_eq!(cdr["direction"], "inbound", "{cdr}");
        assert_eq!(cdr["callee"], "+31209999999", "{cdr}");
        assert_eq!(cdr["disposition"], "failed", "{cdr}");
        assert_eq!(cdr["sip_status"], 404, "{cdr}");
        assert_eq!(cdr["hangup_cause"], "unassigned number", "{cdr}");
        assert_eq!(cdr["trunk_id"], trunk.as_str(), "{cdr}");
        assert!(cdr["user_id"].is_null(), "{cdr}");
        drop(phone);
        world.harness.shutdown().await;
    }
}
