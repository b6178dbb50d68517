//! In-process registration behaviour through a UDP client built from pbx-sip + pbx-sip-auth.

use pbx_domain::Actor;
use pbx_sip::HeaderName;
use pbx_sip_auth::{AuthRole, DigestClient};
use pbx_sip_net::Transport;

use crate::client::{UdpClient, header_lines};
use crate::support::{Harness, Options, REALM};

/// Lines of a 401 that must not differ between "unknown user" and "wrong password": all but
/// Via (branch) and CSeq, with the nonce (and opaque) blanked out of the challenges.
fn comparable(response: &pbx_sip::Response) -> Vec<(String, String)> {
    header_lines(response)
        .into_iter()
        // From echoes the request's tag, which the client changes per request.
        .filter(|(name, _)| name != "via" && name != "cseq" && name != "from")
        .map(|(name, value)| {
            if name == "www-authenticate" {
                let blanked: Vec<String> = value
                    .split(',')
                    .map(|part| {
                        let key = part.trim().split('=').next().unwrap_or_default().to_owned();
                        let key_last = key.rsplit(' ').next().unwrap_or_default();
                        if key_last == "nonce" || key_last == "opaque" {
                            format!("{key}=*")
                        } else {
                            part.trim().to_owned()
                        }
                    })
                    .collect();
                (name, blanked.join(","))
            } else {
                (name, value)
            }
        })
        .collect()
}

async fn answer_with(
    client: &mut UdpClient,
    challenge: &pbx_sip::Response,
    auth_user: &str,
    password: &str,
    domain: &str,
) -> pbx_sip::Response {
    let mut digest = DigestClient::new(auth_user, password).unwrap();
    let values: Vec<&[u8]> = challenge
        .headers()
        .get_all(&HeaderName::WwwAuthenticate)
        .collect();
    digest.handle_challenge(AuthRole::Www, &values).unwrap();
    let uri = format!("sip:{}", client.server());
    let credentials = digest
        .authorization("REGISTER", &uri, rand::random())
        .unwrap();
    client
        .register_once("100", domain, 600, Some(credentials.to_string()))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_user_and_wrong_password_get_identical_401s() {
    let harness = Harness::start(Options::default()).await;
    let tenant = harness.provision("ident", 1).await;
    let account = &tenant.accounts[0];
    let mut client = UdpClient::new(harness.addr(Transport::Udp, false)).await;

    let first = client.register_once("100", &tenant.domain, 600, None).await;
    assert_eq!(first.status().0, 401);
    let unknown = answer_with(
        &mut client,
        &first,
        "nosuchuser",
        "whatever",
        &tenant.domain,
    )
    .await;
    let second = client.register_once("100", &tenant.domain, 600, None).await;
    let wrong = answer_with(
        &mut client,
        &second,
        &account.auth_user,
        "wrong-password",
        &tenant.domain,
    )
    .await;
    assert_eq!(unknown.status().0, 401);
    assert_eq!(wrong.status().0, 401);
    assert_eq!(unknown.reason_phrase(), wrong.reason_phrase());
    assert_eq!(comparable(&unknown), comparable(&wrong));
    assert!(
        unknown.headers().count(&HeaderName::WwwAuthenticate) >= 1,
        "challenge present"
    );
    assert_eq!(harness.registrar_bindings(account.user_id).await, 0);

    // The right password registers.
    let ok = client
        .register(
            &account.auth_user,
            &account.password,
            &tenant.domain,
            "100",
            600,
        )
        .await;
    assert_eq!(ok.status().0, 200);
    assert_eq!(harness.registrar_bindings(account.user_id).await, 1);
    harness.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whitelist_excluding_loopback_gets_403() {
    let harness = Harness::start(Options::default()).await;
    let tenant = harness.provision("walled", 1).await;
    let account = &tenant.accounts[0];
    let store = harness.server().store();
    store
        .whitelist()
        .add(
            &tenant.scope,
            None,
            "10.0.0.0/8".parse().unwrap(),
            "office only",
        )
        .await
        .unwrap();
    harness.settle().await;
    let mut client = UdpClient::new(harness.addr(Transport::Udp, false)).await;
    let right = client
        .register(
            &account.auth_user,
            &account.password,
            &tenant.domain,
            "100",
            600,
        )
        .await;
    assert_eq!(right.status().0, 403, "right password, wrong source");
    let wrong = client
        .register(&account.auth_user, "nope", &tenant.domain, "100", 600)
        .await;
    assert_eq!(wrong.status().0, 403, "wrong password, wrong source");
    assert_eq!(harness.registrar_bindings(account.user_id).await, 0);

    // Opening the whitelist to loopback takes effect without a restart.
    store
        .whitelist()
        .add(&tenant.scope, None, "127.0.0.0/8".parse().unwrap(), "lab")
        .await
        .unwrap();
    harness.settle().await;
    let ok = client
        .register(
            &account.auth_user,
            &account.password,
            &tenant.domain,
            "100",
            600,
        )
        .await;
    assert_eq!(ok.status().0, 200);
    harness.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrations_survive_a_restart() {
    let mut harness = Harness::start(Options::default()).await;
    let tenant = harness.provision("durable", 2).await;
    let mut client = UdpClient::new(harness.addr(Transport::Udp, false)).await;
    let account = tenant.accounts[1].clone();
    let ok = client
        .register(
            &account.auth_user,
            &account.password,
            &tenant.domain,
            &account.extension,
            600,
        )
        .await;
    assert_eq!(ok.status().0, 200);
    assert_eq!(harness.wait_stored_bindings(&tenant, 1).await, 1);

    harness.restart().await;
    let stored = harness.stored_bindings(&tenant).await;
    assert_eq!(stored.len(), 1, "binding still in the store");
    assert_eq!(stored[0].record.user_id, account.user_id);
    assert!(
        stored[0]
            .record
            .contact_uri
            .contains(&client.local().port().to_string()),
        "contact kept: {}",
        stored[0].record.contact_uri
    );
    assert_eq!(
        harness.registrar_bindings(account.user_id).await,
        1,
        "registrar restored the binding"
    );
    // A second phone of the same user adds a binding beside the restored one.
    let mut client = UdpClient::new(harness.addr(Transport::Udp, false)).await;
    let second = client
        .register(
            &account.auth_user,
            &account.password,
            &tenant.domain,
            &account.extension,
            600,
        )
        .await;
    assert_eq!(second.status().0, 200);
    assert_eq!(harness.registrar_bindings(account.user_id).await, 2);
    harness.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credential_changes_take_effect_without_restart() {
    let harness = Harness::start(Options::default()).await;
    let tenant = harness.provision("changes", 1).await;
    let account = tenant.accounts[0].clone();
    let store = harness.server().store();
    let mut client = UdpClient::new(harness.addr(Transport::Udp, false)).await;
    assert_eq!(
        client
            .register(
                &account.auth_user,
                &account.password,
                &tenant.domain,
                "100",
                600
            )
            .await
            .status()
            .0,
        200
    );

    store
        .credentials()
        .set_enabled(&tenant.scope, account.device_id, false)
        .await
        .unwrap();
    harness.settle().await;
    assert_eq!(
        client
            .register(
                &account.auth_user,
                &account.password,
                &tenant.domain,
                "100",
                600
            )
            .await
            .status()
            .0,
        401,
        "disabled credential"
    );

    store
        .credentials()
        .set_enabled(&tenant.scope, account.device_id, true)
        .await
        .unwrap();
    let rotated = store
        .credentials()
        .rotate_password(
            &tenant.scope,
            account.device_id,
            &pbx_domain::Realm::parse(REALM).unwrap(),
        )
        .await
        .unwrap();
    harness.settle().await;
    assert_eq!(
        client
            .register(
                &account.auth_user,
                &account.password,
                &tenant.domain,
                "100",
                600
            )
            .await
            .status()
            .0,
        401,
        "old password after rotation"
    );
    assert_eq!(
        client
            .register(
                &account.auth_user,
                rotated.password.expose(),
                &tenant.domain,
                "100",
                600
            )
            .await
            .status()
            .0,
        200,
        "new password after rotation"
    );
    // The audit log saw the registrations.
    let events = store
        .events()
        .list_all(&Actor::Operator, 100)
        .await
        .unwrap();
    assert!(!events.is_empty(), "registration events written");
    harness.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_short_expiry_gets_423_with_min_expires() {
    let harness = Harness::start(Options {
        min_expiry_secs: 60,
        ..Options::default()
    })
    .await;
    let tenant = harness.provision("brief", 1).await;
    let account = &tenant.accounts[0];
    let mut client = UdpClient::new(harness.addr(Transport::Udp, false)).await;
    let response = client
        .register(
            &account.auth_user,
            &account.password,
            &tenant.domain,
            "100",
            30,
        )
        .await;
    assert_eq!(response.status().0, 423);
    let min = response.headers().get(&HeaderName::MinExpires).unwrap();
    assert_eq!(min, b"60");
    assert_eq!(harness.registrar_bindings(account.user_id).await, 0);
    let ok = client
        .register(
            &account.auth_user,
            &account.password,
            &tenant.domain,
            "100",
            60,
        )
        .await;
    assert_eq!(ok.status().0, 200);
    harness.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_over_ipv6() {
    if !pbx_sip_net::ipv6_loopback_available() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "::1 unavailable, and CI=true"
        );
        println!("SKIP: IPv6 loopback (::1) is not available");
        return;
    }
    let harness = Harness::start(Options::default()).await;
    let tenant = harness.provision("six", 1).await;
    let account = &tenant.accounts[0];
    let mut client = UdpClient::new(harness.addr(Transport::Udp, true)).await;
    assert!(client.local().is_ipv6());
    let ok = client
        .register(
            &account.auth_user,
            &account.password,
            &tenant.domain,
            "100",
            600,
        )
        .await;
    assert_eq!(ok.status().0, 200);
    assert_eq!(harness.registrar_bindings(account.user_id).await, 1);
    assert_eq!(harness.wait_stored_bindings(&tenant, 1).await, 1);
    let stored = harness.stored_bindings(&tenant).await;
    assert!(stored[0].record.flow.source.is_ipv6(), "flow kept as IPv6");
    let gone = client
        .register(
            &account.auth_user,
            &account.password,
            &tenant.domain,
            "100",
            0,
        )
        .await;
    assert_eq!(gone.status().0, 200);
    assert_eq!(harness.registrar_bindings(account.user_id).await, 0);
    harness.shutdown().await;
}

/// Sends one HTTP/1.1 request to the running API and returns (status, body).
async fn http(addr: std::net::SocketAddr, method: &str, path: &str, token: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect to the API");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut reply = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut reply),
    )
    .await
    .expect("API answered in time")
    .expect("read");
    let text = String::from_utf8_lossy(&reply).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("status line");
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_clears_live_registrations_and_counts_them() {
    let harness = Harness::start(Options::default()).await;
    let tenant = harness.provision("cleared", 1).await;
    let account = tenant.accounts[0].clone();
    let mut client = UdpClient::new(harness.addr(Transport::Udp, false)).await;
    let ok = client
        .register(
            &account.auth_user,
            &account.password,
            &tenant.domain,
            &account.extension,
            600,
        )
        .await;
    assert_eq!(ok.status().0, 200);
    assert_eq!(harness.wait_stored_bindings(&tenant, 1).await, 1);
    assert_eq!(harness.registrar_bindings(account.user_id).await, 1);

    let token = match &harness.server().operator_login {
        pbx_server::serve::OperatorLogin::Generated(secret) => secret.clone(),
        other => panic!("a fresh data directory generates the operator token, got {other:?}"),
    };
    let (status, body) = http(
        harness.server().http_addr,
        "DELETE",
        "/api/v1/tenants/cleared/registrations",
        &token,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let view: serde_json::Value = serde_json::from_str(&body).expect("JSON body");
    assert_eq!(
        view["live_cleared"], 1,
        "the live registrar dropped the binding: {body}"
    );
    assert_eq!(harness.registrar_bindings(account.user_id).await, 0);
    // The row goes either way: the API deletes it (`cleared`), or the registrar's own delete
    // effect reaches the store writer first. Either way none is left.
    assert!(view["cleared"] == 0 || view["cleared"] == 1, "{body}");
    assert_eq!(
        harness.wait_stored_bindings(&tenant, 0).await,
        0,
        "no stored binding left"
    );
    harness.shutdown().await;
}

/// A REGISTER over a TCP connection (RFC 3261 framing with Content-Length), using RFC 5626
/// outbound (`+sip.instance`, `reg-id`).
fn tcp_register(
    local: std::net::SocketAddr,
    server: std::net::SocketAddr,
    user: &str,
    domain: &str,
    cseq: u32,
    authorization: Option<String>,
) -> String {
    let mut text = format!(
        "REGISTER sip:{server};transport=tcp SIP/2.0\r\n\
         Via: SIP/2.0/TCP {local};branch=z9hG4bK{branch}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:{user}@{domain}>;tag=tcp{cseq}\r\n\
         To: <sip:{user}@{domain}>\r\n\
         Call-ID: tcp-flow-closed@cloudpbx-test\r\n\
         CSeq: {cseq} REGISTER\r\n\
         Contact: <sip:{user}@{local};transport=tcp>;reg-id=1;\
         +sip.instance=\"<urn:uuid:00000000-0000-4000-8000-00000000a001>\"\r\n\
         Supported: outbound, path\r\n\
         Expires: 600\r\n",
        branch = hex::encode(rand::random::<[u8; 8]>()),
    );
    if let Some(value) = authorization {
        text.push_str(&format!("Authorization: {value}\r\n"));
    }
    text.push_str("Content-Length: 0\r\n\r\n");
    text
}

/// Reads one response from a TCP stream (headers only; REGISTER responses have no body).
async fn tcp_response(stream: &mut tokio::net::TcpStream) -> pbx_sip::Response {
    use tokio::io::AsyncReadExt;
    let mut buffer = Vec::new();
    let mut chunk = [0_u8; 4096];
    loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let message = bytes::Bytes::copy_from_slice(&buffer[..end + 4]);
            return pbx_sip::Message::parse(message)
                .unwrap()
                .into_response()
                .unwrap();
        }
        let read = tokio::time::timeout(std::time::Duration::from_secs(5), stream.read(&mut chunk))
            .await
            .expect("response within 5 s")
            .unwrap();
        assert!(read > 0, "server closed the connection");
        buffer.extend_from_slice(&chunk[..read]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_tcp_binding_is_removed_when_its_connection_closes() {
    use tokio::io::AsyncWriteExt;
    let harness = Harness::start(Options {
        digest: r#"["MD5"]"#,
        ..Options::default()
    })
    .await;
    let tenant = harness.provision("flowclose", 1).await;
    let account = &tenant.accounts[0];
    let server = harness.addr(Transport::Tcp, false);
    let mut stream = tokio::net::TcpStream::connect(server).await.unwrap();
    let local = stream.local_addr().unwrap();

    let first = tcp_register(local, server, "100", &tenant.domain, 1, None);
    stream.write_all(first.as_bytes()).await.unwrap();
    let challenge = tcp_response(&mut stream).await;
    assert_eq!(challenge.status().0, 401);
    let mut digest = DigestClient::new(&account.auth_user, &account.password).unwrap();
    let values: Vec<&[u8]> = challenge
        .headers()
        .get_all(&HeaderName::WwwAuthenticate)
        .collect();
    digest.handle_challenge(AuthRole::Www, &values).unwrap();
    let uri = format!("sip:{server};transport=tcp");
    let credentials = digest
        .authorization("REGISTER", &uri, rand::random())
        .unwrap();
    let second = tcp_register(
        local,
        server,
        "100",
        &tenant.domain,
        2,
        Some(credentials.to_string()),
    );
    stream.write_all(second.as_bytes()).await.unwrap();
    let ok = tcp_response(&mut stream).await;
    assert_eq!(ok.status().0, 200);
    assert_eq!(harness.registrar_bindings(account.user_id).await, 1);
    assert_eq!(harness.wait_stored_bindings(&tenant, 1).await, 1);

    // The device goes away: its connection closes, and its outbound binding with it
    // (RFC 5626 §5.4), long before any keep-alive could notice. (Plain TCP bindings stay
    // until the keep-alive fails: `sipp::sipp_registers_refreshes_unregisters_tcp`.)
    drop(stream);
    let mut left = 1;
    for _ in 0..100 {
        left = harness.registrar_bindings(account.user_id).await;
        if left == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(left, 0, "binding removed when its TCP connection closed");
    assert_eq!(harness.wait_stored_bindings(&tenant, 0).await, 0);
    harness.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_by_another_process_reach_the_running_server() {
    use pbx_domain::{
        ClassOfService, DeviceKind, DisplayName, Extension, NewDevice, NewTenant, NewUser, Realm,
        SipDomain, Slug, TenantStatus,
    };
    let harness = Harness::start(Options {
        digest: r#"["MD5"]"#,
        ..Options::default()
    })
    .await;
    // What `cloudpbx tenant|user|device create` does: its own Store on the same SQLite file,
    // with its own in-process change counter that the server never sees.
    let url = crate::support::settings(harness.dir.path(), &harness.options).database_url;
    let cli = pbx_store::Store::open(&url).await.unwrap();
    let tenant = cli
        .tenants()
        .create(
            &Actor::Operator,
            &NewTenant {
                reseller_id: None,
                name: DisplayName::parse("Outside").unwrap(),
                slug: Slug::parse("outside").unwrap(),
                sip_domain: SipDomain::parse("outside.pbx.test").unwrap(),
                status: TenantStatus::Active,
            },
        )
        .await
        .unwrap();
    let scope = cli.scope(&Actor::Operator, tenant.id).await.unwrap();
    let user = cli
        .users()
        .create(
            &scope,
            &NewUser {
                extension: Extension::parse("300").unwrap(),
                display_name: DisplayName::parse("Cli User").unwrap(),
                class_of_service: ClassOfService::National,
            },
        )
        .await
        .unwrap();
    let device = cli
        .devices()
        .create(
            &scope,
            &NewDevice {
                user_id: user.id,
                kind: DeviceKind::Softphone,
                label: "cli phone".into(),
            },
        )
        .await
        .unwrap();
    let issued = cli
        .credentials()
        .issue(&scope, device.id, &Realm::parse(REALM).unwrap())
        .await
        .unwrap();
    cli.close().await;

    // The server notices within its poll interval (1 s) and the new phone registers.
    let auth_user = issued.credential.auth_username.as_str().to_owned();
    let password = issued.password.expose().to_owned();
    let mut client = UdpClient::new(harness.addr(Transport::Udp, false)).await;
    let mut status = 0;
    for _ in 0..20 {
        let response = client
            .register(&auth_user, &password, "outside.pbx.test", "300", 600)
            .await;
        status = response.status().0;
        if status == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert_eq!(status, 200, "credential created by another process works");
    assert_eq!(harness.registrar_bindings(user.id).await, 1);
    harness.shutdown().await;
}
