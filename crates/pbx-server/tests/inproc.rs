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
