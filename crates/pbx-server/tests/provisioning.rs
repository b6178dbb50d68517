//! Phone provisioning end to end against the in-process server: real TFTP clients (tftp-hpa,
//! atftp) and curl over HTTPS fetch every brand's files, which are parsed back and checked for
//! the device's values; sources outside the whitelist get an error, a security event and a
//! fetch-log entry, the same error whatever MAC or company they ask for, and are banned by the
//! SIP guard after a few (for SIP too); template overrides reload without a restart (on a
//! fetch after an edit, and on SIGHUP) and a broken one keeps the previous; a 1,000-phone boot
//! storm all succeeds.
//!
//! tftp-hpa and atftp cannot choose their source address, and on loopback the kernel gives
//! them 127.0.0.1, so a client "elsewhere" is curl's TFTP client bound with `--interface
//! 127.0.0.2` (or 127.0.0.1 outside a tenant whitelisting only 127.0.0.2).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use pbx_domain::{
    Actor, ClassOfService, DeviceId, DeviceKind, DisplayName, Extension, MacAddress, NewDevice,
    NewTenant, NewUser, PhoneVendor, Realm, SipDomain, Slug, TenantStatus,
};
use pbx_server::serve::OperatorLogin;
use pbx_store::TenantScope;
use pbx_tftp::proto::packet::{encode_ack, encode_request};
use pbx_tftp::proto::{ErrorCode, Packet};
use tokio::net::UdpSocket;

use crate::support::{Harness, Options, REALM, run_bounded, tool};

/// One HTTP/1.1 request to the API; (status, body).
async fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: &str,
    body: Option<&str>,
) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let body = body.unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut reply = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut reply))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&reply).into_owned();
    let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

struct Phone {
    id: DeviceId,
    vendor: PhoneVendor,
    model: &'static str,
    mac: String,
    extension: String,
}

struct Setup {
    harness: Harness,
    token: String,
    tftp: SocketAddr,
}

async fn start() -> Setup {
    start_with(|_| {}).await
}

/// A server with adjusted settings (ban thresholds, template checks).
async fn start_with(adjust: impl FnOnce(&mut pbx_server::config::Settings)) -> Setup {
    let options = Options::default();
    let dir = tempfile::tempdir().unwrap();
    let mut settings = crate::support::settings(dir.path(), &options);
    adjust(&mut settings);
    let server =
        pbx_server::serve::Server::start(&settings, &pbx_server::serve::ServeOptions::default())
            .await
            .expect("server starts");
    let harness = Harness {
        server: Some(server),
        dir,
        options,
    };
    let token = match &harness.server().operator_login {
        OperatorLogin::Generated(secret) => secret.clone(),
        other => panic!("fresh data directory gives a generated token, got {other:?}"),
    };
    let tftp = harness
        .server()
        .provisioning
        .as_ref()
        .expect("provisioning runs by default")
        .tftp_addr;
    Setup {
        harness,
        token,
        tftp,
    }
}

/// A tenant with `phones` desk phones (vendor, model, MAC) and whitelist `networks`.
async fn tenant(
    setup: &Setup,
    slug: &str,
    networks: &[&str],
    phones: &[(PhoneVendor, &'static str, String)],
) -> (TenantScope, Vec<Phone>) {
    let store = setup.harness.server().store();
    let tenant = store
        .tenants()
        .create(
            &Actor::Operator,
            &NewTenant {
                reseller_id: None,
                name: DisplayName::parse(&format!("{slug} & Co")).unwrap(),
                slug: Slug::parse(slug).unwrap(),
                sip_domain: SipDomain::parse(&format!("{slug}.pbx.test")).unwrap(),
                status: TenantStatus::Active,
            },
        )
        .await
        .unwrap();
    let scope = store.scope(&Actor::Operator, tenant.id).await.unwrap();
    for network in networks {
        store
            .whitelist()
            .add(
                &scope,
                None,
                pbx_domain::parse_network(network).unwrap(),
                "office",
            )
            .await
            .unwrap();
    }
    let realm = Realm::parse(REALM).unwrap();
    let mut out = Vec::new();
    for (index, (vendor, model, mac)) in phones.iter().enumerate() {
        let extension = format!("{}", 200 + index);
        let user = store
            .users()
            .create(
                &scope,
                &NewUser {
                    extension: Extension::parse(&extension).unwrap(),
                    display_name: DisplayName::parse(&format!("Ann <{extension}>")).unwrap(),
                    class_of_service: ClassOfService::National,
                },
            )
            .await
            .unwrap();
        let device = store
            .devices()
            .create(
                &scope,
                &NewDevice {
                    user_id: user.id,
                    kind: DeviceKind::DeskPhone {
                        vendor: *vendor,
                        model: (*model).to_owned(),
                        mac: MacAddress::parse(mac).unwrap(),
                    },
                    label: String::new(),
                },
            )
            .await
            .unwrap();
        store
            .credentials()
            .issue(&scope, device.id, &realm)
            .await
            .unwrap();
        out.push(Phone {
            id: device.id,
            vendor: *vendor,
            model,
            mac: mac.clone(),
            extension,
        });
    }
    setup.harness.settle().await;
    (scope, out)
}

/// Enables provisioning through the API; returns the device view.
async fn enable(setup: &Setup, slug: &str, device: DeviceId) -> serde_json::Value {
    let (status, body) = http_request(
        setup.harness.server().http_addr,
        "POST",
        &format!("/api/v1/tenants/{slug}/devices/{device}/provisioning"),
        &setup.token,
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let view: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(view["state"], "ready", "{view}");
    view
}

fn files_of(phone: &Phone) -> Vec<String> {
    let upper = phone.mac.to_ascii_uppercase();
    match phone.vendor {
        PhoneVendor::Yealink => vec!["y000000000028.cfg".into(), format!("{}.cfg", phone.mac)],
        PhoneVendor::Polycom => vec![
            "000000000000.cfg".into(),
            format!("{}.cfg", phone.mac),
            format!("{}-phone.cfg", phone.mac),
            "cloudpbx-common.cfg".into(),
        ],
        PhoneVendor::Snom => vec![
            format!("snom{}.htm", phone.model.to_ascii_lowercase()),
            format!("snom{}-{upper}.htm", phone.model.to_ascii_lowercase()),
        ],
        PhoneVendor::Grandstream => vec![format!("cfg{}.xml", phone.mac)],
        PhoneVendor::Cisco => vec![format!("SEP{upper}.cnf.xml")],
        _ => Vec::new(),
    }
}

/// Values anywhere in an XML file (attributes and element texts) or an INI file.
fn parse_values(text: &str) -> BTreeMap<String, String> {
    let mut values = BTreeMap::new();
    if text.trim_start().starts_with("<?xml") {
        let doc = roxmltree::Document::parse(text)
            .unwrap_or_else(|error| panic!("not XML ({error}):\n{text}"));
        for node in doc.descendants() {
            for attribute in node.attributes() {
                values.insert(attribute.name().to_owned(), attribute.value().to_owned());
            }
            if node.is_element()
                && let Some(value) = node.text()
                && !value.trim().is_empty()
            {
                values.insert(node.tag_name().name().to_owned(), value.to_owned());
            }
        }
    } else {
        assert!(text.starts_with("#!version:1.0.0.1\n"), "{text}");
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        {
            let (key, value) = line
                .split_once(" = ")
                .unwrap_or_else(|| panic!("not key = value: {line}"));
            values.insert(key.to_owned(), value.to_owned());
        }
    }
    values
}

/// The keys that carry the password and the display name, per brand (per-phone files).
fn credential_keys(vendor: PhoneVendor) -> (&'static str, &'static str, &'static str) {
    match vendor {
        PhoneVendor::Yealink => (
            "account.1.password",
            "account.1.display_name",
            "account.1.auth_name",
        ),
        PhoneVendor::Polycom => (
            "reg.1.auth.password",
            "reg.1.displayName",
            "reg.1.auth.userId",
        ),
        PhoneVendor::Snom => ("user_pass", "user_realname", "user_pname"),
        PhoneVendor::Grandstream => ("P34", "P3", "P36"),
        _ => ("authPassword", "displayName", "authName"),
    }
}

fn is_per_phone(name: &str, phone: &Phone) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.contains(&phone.mac)
        && !(phone.vendor == PhoneVendor::Polycom && lower == format!("{}.cfg", phone.mac))
}

async fn tftp_hpa(binary: &std::path::Path, server: SocketAddr, remote: &str) -> (String, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("out");
    let mut command = tokio::process::Command::new(binary);
    command
        .arg("-v")
        .arg(server.ip().to_string())
        .arg(server.port().to_string())
        .args(["-m", "binary", "-c", "get", remote])
        .arg(&local);
    let (_, output) = run_bounded(command, Duration::from_secs(30)).await;
    (output, std::fs::read(&local).unwrap_or_default())
}

async fn atftp(
    binary: &std::path::Path,
    server: SocketAddr,
    remote: &str,
    options: &[&str],
) -> (i32, String, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("out");
    let mut command = tokio::process::Command::new(binary);
    for option in options {
        command.args(["--option", option]);
    }
    command
        .args(["--verbose", "--trace", "--get", "-r", remote, "-l"])
        .arg(&local)
        .arg(server.ip().to_string())
        .arg(server.port().to_string());
    let (code, output) = run_bounded(command, Duration::from_secs(30)).await;
    (code, output, std::fs::read(&local).unwrap_or_default())
}

fn all_brands() -> Vec<(PhoneVendor, &'static str, String)> {
    vec![
        (PhoneVendor::Yealink, "T54W", "001565000001".into()),
        (PhoneVendor::Polycom, "VVX450", "0004f2000002".into()),
        (PhoneVendor::Snom, "D785", "000413000003".into()),
        (PhoneVendor::Grandstream, "GRP2614", "000b82000004".into()),
        (PhoneVendor::Cisco, "CP-8841", "00000c000005".into()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_tftp_clients_fetch_every_brands_files_from_a_whitelisted_source() {
    let (Some(hpa), Some(atftp_bin)) = (tool("tftp", "tftp-hpa"), tool("atftp", "atftp")) else {
        return;
    };
    let setup = start().await;
    let (_scope, phones) = tenant(&setup, "acme", &["127.0.0.1/32"], &all_brands()).await;
    for phone in &phones {
        let view = enable(&setup, "acme", phone.id).await;
        let manual = &view["manual"];
        let password = manual["password"].as_str().unwrap().to_owned();
        let auth = manual["auth_username"].as_str().unwrap().to_owned();
        assert_eq!(manual["user"], phone.extension.as_str());
        let expected_files: Vec<String> = view["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap().to_owned())
            .collect();
        assert!(!expected_files.is_empty(), "{view}");
        for name in files_of(phone) {
            let remote = format!("acme/{name}");
            let (hpa_out, hpa_bytes) = tftp_hpa(&hpa, setup.tftp, &remote).await;
            assert!(
                !hpa_bytes.is_empty(),
                "tftp-hpa got nothing for {remote}: {hpa_out}"
            );
            let (code, out, plain) = atftp(&atftp_bin, setup.tftp, &remote, &[]).await;
            assert_eq!(code, 0, "atftp {remote}: {out}");
            let (code, out, negotiated) = atftp(
                &atftp_bin,
                setup.tftp,
                &remote,
                &["blksize 1428", "tsize 0"],
            )
            .await;
            assert_eq!(code, 0, "atftp blksize/tsize {remote}: {out}");
            assert!(
                out.contains("OACK"),
                "no option negotiation for {remote}: {out}"
            );
            assert_eq!(hpa_bytes, plain, "{remote}: clients disagree");
            assert_eq!(
                hpa_bytes, negotiated,
                "{remote}: blksize changed the content"
            );
            let text = String::from_utf8(hpa_bytes).unwrap();
            let values = parse_values(&text);
            if is_per_phone(&name, phone) {
                let (password_key, name_key, auth_key) = credential_keys(phone.vendor);
                assert_eq!(
                    values.get(password_key),
                    Some(&password),
                    "{remote}\n{text}"
                );
                assert_eq!(values.get(auth_key), Some(&auth), "{remote}");
                assert_eq!(
                    values.get(name_key).map(String::as_str),
                    Some(format!("Ann <{}>", phone.extension).as_str()),
                    "{remote}"
                );
                assert!(
                    text.contains(&format!(
                        "{}",
                        setup
                            .harness
                            .addr(pbx_sip_net::Transport::Udp, false)
                            .port()
                    )),
                    "{remote}: SIP port missing"
                );
            } else {
                assert!(
                    !text.contains(&password),
                    "{remote}: a common file carries a password"
                );
            }
        }
    }
    // Files that are not configs, and MACs that are not on the platform: not found.
    let (code, out, _) = atftp(&atftp_bin, setup.tftp, "acme/sip.ld", &[]).await;
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("error") || out.contains("Error"), "{out}");
    // Write requests (Polycom log uploads) are refused.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("app.log"), b"log line\n").unwrap();
    let mut command = tokio::process::Command::new(&atftp_bin);
    command
        .args(["--put", "-l"])
        .arg(dir.path().join("app.log"))
        .args(["-r", "acme/0004f2000002-app.log"])
        .arg(setup.tftp.ip().to_string())
        .arg(setup.tftp.port().to_string());
    let (code, out) = run_bounded(command, Duration::from_secs(30)).await;
    assert_ne!(code, 0, "upload accepted: {out}");

    // Every fetch is in the device's log.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let yealink = &phones[0];
    let (status, body) = http_request(
        setup.harness.server().http_addr,
        "GET",
        &format!(
            "/api/v1/tenants/acme/devices/{}/provisioning/fetches",
            yealink.id
        ),
        &setup.token,
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let log: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
    let served = log
        .iter()
        .filter(|f| f["result"] == "served" && f["path"] == format!("acme/{}.cfg", yealink.mac))
        .count();
    assert_eq!(served, 3, "tftp-hpa, atftp, atftp+options: {log:?}");
    assert!(
        log.iter()
            .all(|f| f["source_ip"] == "127.0.0.1" && f["protocol"] == "tftp")
    );
    setup.harness.shutdown().await;
}

/// One RRQ from `bind`; returns the first reply packet's opcode and error code.
async fn probe(bind: &str, server: SocketAddr, path: &str) -> Option<(u16, Option<ErrorCode>)> {
    let socket = UdpSocket::bind(bind).await.ok()?;
    let mut request = Vec::new();
    encode_request::<&str, &str>(&mut request, false, path, "octet", &[]);
    socket.send_to(&request, server).await.ok()?;
    let mut buf = [0u8; 2048];
    let (len, _) = tokio::time::timeout(Duration::from_secs(5), socket.recv_from(&mut buf))
        .await
        .ok()?
        .ok()?;
    match Packet::parse(&buf[..len]).ok()? {
        Packet::Error { code, .. } => Some((5, Some(code))),
        Packet::Data { .. } => Some((3, None)),
        _ => Some((0, None)),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sources_outside_the_whitelist_get_an_error_a_security_event_and_a_log_entry() {
    let atftp_bin = tool("atftp", "atftp");
    let setup = start().await;
    // beta's office is 127.0.0.2 only: requests from 127.0.0.1 come from outside it.
    let (scope, phones) = tenant(
        &setup,
        "beta",
        &["127.0.0.2/32"],
        &[(PhoneVendor::Yealink, "T46U", "001565000099".into())],
    )
    .await;
    let phone = &phones[0];
    enable(&setup, "beta", phone.id).await;
    let mac_file = format!("beta/{}.cfg", phone.mac);
    // The whitelisted source (a socket bound to 127.0.0.2) gets the file ...
    assert_eq!(
        probe("127.0.0.2:0", setup.tftp, &mac_file).await,
        Some((3, None))
    );
    // ... 127.0.0.1 gets ERROR 2, for the MAC file, a common file, and an unknown tenant.
    for path in [
        mac_file.as_str(),
        "beta/y000000000028.cfg",
        "nobody/001565000099.cfg",
    ] {
        assert_eq!(
            probe("127.0.0.1:0", setup.tftp, path).await,
            Some((5, Some(ErrorCode::AccessViolation))),
            "{path}"
        );
    }
    if let Some(atftp_bin) = atftp_bin {
        let (code, out, bytes) = atftp(
            &atftp_bin,
            setup.tftp,
            &mac_file,
            &["blksize 1428", "tsize 0"],
        )
        .await;
        assert_ne!(code, 0, "{out}");
        assert!(bytes.is_empty());
        assert!(out.contains("error received from server"), "{out}");
    }
    // Another tenant's phone cannot be fetched through acme's whitelisted path either; acme's
    // office is told "not found", as for a MAC that exists nowhere.
    let (_, _) = tenant(&setup, "acme", &["127.0.0.1/32"], &[]).await;
    assert_eq!(
        probe(
            "127.0.0.1:0",
            setup.tftp,
            &format!("acme/{}.cfg", phone.mac)
        )
        .await,
        Some((5, Some(ErrorCode::FileNotFound)))
    );

    tokio::time::sleep(Duration::from_millis(300)).await;
    let store = setup.harness.server().store();
    let events = store.events().list(&scope, 100).await.unwrap();
    let refused: Vec<_> = events
        .iter()
        .filter(|e| e.kind == "provisioning.refused")
        .collect();
    assert!(refused.len() >= 3, "{events:?}");
    assert!(refused.iter().all(|e| e.payload["source"] == "127.0.0.1"));
    assert!(
        refused
            .iter()
            .any(|e| e.payload["reason"] == "not_whitelisted")
    );
    let log = store
        .provisioning()
        .list_fetches(&scope, None, 100)
        .await
        .unwrap();
    assert!(
        log.iter()
            .any(|f| f.result == "not_whitelisted" && f.source_ip == "127.0.0.1")
    );
    let stats = setup
        .harness
        .server()
        .provisioning
        .as_ref()
        .unwrap()
        .service
        .stats();
    assert!(stats.security.load(std::sync::atomic::Ordering::Relaxed) >= 4);
    setup.harness.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_provisioning_serves_the_device_files_at_its_token_url_only() {
    let Some(curl) = tool("curl", "curl") else {
        return;
    };
    let setup = start().await;
    let (_scope, phones) = tenant(&setup, "gamma", &["127.0.0.1/32"], &all_brands()).await;
    let grandstream = &phones[3];
    let view = enable(&setup, "gamma", grandstream.id).await;
    let url = view["https_url"].as_str().unwrap().to_owned();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let get = |target: String| {
        let curl = curl.clone();
        async move {
            let mut command = tokio::process::Command::new(&curl);
            command.args(["-sk", "-w", "\n%{http_code}", &target]);
            let (_, out) = run_bounded(command, Duration::from_secs(30)).await;
            let (body, code) = out.trim_end().rsplit_once('\n').unwrap_or(("", out.trim()));
            (code.to_owned(), body.to_owned())
        }
    };
    let (code, body) = get(format!("{url}cfg{}.xml", grandstream.mac)).await;
    assert_eq!(code, "200", "{body}");
    let values = parse_values(&body);
    assert_eq!(
        values.get("P34").map(String::as_str),
        view["manual"]["password"].as_str()
    );
    // Another device's file through this token, a wrong token, a revoked token: 403/404.
    let (code, _) = get(format!(
        "{url}SEP{}.cnf.xml",
        phones[4].mac.to_ascii_uppercase()
    ))
    .await;
    assert_eq!(code, "403");
    // Change the token's last character (the URL ends in `<token>/`) to a different one.
    let mut wrong = url.clone();
    let last = wrong.len() - 2..wrong.len() - 1;
    let other = if &wrong[last.clone()] == "0" {
        "1"
    } else {
        "0"
    };
    wrong.replace_range(last, other);
    assert_ne!(wrong, url);
    let (code, _) = get(format!("{wrong}cfg{}.xml", grandstream.mac)).await;
    assert_eq!(code, "404");
    let renewed = enable(&setup, "gamma", grandstream.id).await;
    assert_ne!(renewed["https_url"], view["https_url"]);
    let (code, _) = get(format!("{url}cfg{}.xml", grandstream.mac)).await;
    assert_eq!(code, "404", "the old URL is revoked");
    // The manual view of a device that is not enabled has no password.
    let (status, body) = http_request(
        setup.harness.server().http_addr,
        "GET",
        &format!(
            "/api/v1/tenants/gamma/devices/{}/provisioning",
            phones[0].id
        ),
        &setup.token,
        None,
    )
    .await;
    assert_eq!(status, 200);
    let other: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(other["state"], "not_enabled");
    assert!(other["manual"]["password"].is_null());
    // Rotating the credential elsewhere makes the sealed copy stale: no stale password served.
    let (status, _) = http_request(
        setup.harness.server().http_addr,
        "POST",
        &format!(
            "/api/v1/tenants/gamma/devices/{}/credentials/rotate",
            grandstream.id
        ),
        &setup.token,
        None,
    )
    .await;
    assert_eq!(status, 200);
    let current = renewed["https_url"].as_str().unwrap();
    let (code, _) = get(format!("{current}cfg{}.xml", grandstream.mac)).await;
    assert_eq!(code, "404");
    setup.harness.shutdown().await;
}

/// A lockstep TFTP read (blksize 1428) with retransmission; returns the content.
async fn fetch(server: SocketAddr, path: &str) -> Result<Vec<u8>, String> {
    let socket = UdpSocket::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let mut request = Vec::new();
    encode_request(&mut request, false, path, "octet", &[("blksize", "1428")]);
    let mut last = request.clone();
    let mut to = server;
    let mut content = Vec::new();
    let mut expected: u16 = 1;
    let mut buf = vec![0u8; 2048];
    let mut tries = 0;
    loop {
        socket.send_to(&last, to).await.map_err(|e| e.to_string())?;
        let received =
            tokio::time::timeout(Duration::from_secs(2), socket.recv_from(&mut buf)).await;
        let Ok(Ok((len, from))) = received else {
            tries += 1;
            if tries > 10 {
                return Err(format!("{path}: timed out"));
            }
            continue;
        };
        tries = 0;
        to = from;
        match Packet::parse(&buf[..len]).map_err(|e| e.to_string())? {
            Packet::Oack { .. } => {
                last.clear();
                encode_ack(&mut last, 0);
            }
            Packet::Data { block, data } if block == expected => {
                content.extend_from_slice(data);
                last.clear();
                encode_ack(&mut last, block);
                expected = expected.wrapping_add(1);
                if data.len() < 1428 {
                    socket.send_to(&last, to).await.map_err(|e| e.to_string())?;
                    return Ok(content);
                }
            }
            Packet::Data { .. } => {}
            Packet::Error { code, message } => {
                return Err(format!(
                    "{path}: {code:?} {}",
                    String::from_utf8_lossy(message)
                ));
            }
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_phone_boot_storm_all_succeeds() {
    let setup = start().await;
    let phones: Vec<(PhoneVendor, &'static str, String)> = (0..1000u32)
        .map(|i| (PhoneVendor::Yealink, "T54W", format!("001565{i:06x}")))
        .collect();
    let (scope, phones) = tenant(&setup, "storm", &["127.0.0.0/8"], &phones).await;
    let store = setup.harness.server().store();
    let provisioner = &setup
        .harness
        .server()
        .provisioning
        .as_ref()
        .unwrap()
        .provisioner;
    let realm = Realm::parse(REALM).unwrap();
    for phone in &phones {
        // Enabling through the store directly (the API path is covered above): re-key, seal.
        let issued = store
            .credentials()
            .rotate_password(&scope, phone.id, &realm)
            .await
            .unwrap();
        let sealed = provisioner
            .sealer
            .seal(phone.id, issued.password.expose(), rand::random());
        store
            .provisioning()
            .enable_device(
                &scope,
                phone.id,
                &sealed,
                issued.credential.ha1_md5.as_hex(),
            )
            .await
            .unwrap();
    }
    setup.harness.settle().await;
    let started = Instant::now();
    let tasks: Vec<_> = phones
        .iter()
        .map(|phone| {
            let server = setup.tftp;
            let path = format!("storm/{}.cfg", phone.mac);
            let extension = phone.extension.clone();
            tokio::spawn(async move {
                let content = fetch(server, &path).await?;
                let text = String::from_utf8(content).map_err(|e| e.to_string())?;
                if !text.contains(&format!("account.1.user_name = {extension}\n")) {
                    return Err(format!("{path}: wrong file"));
                }
                Ok::<_, String>(())
            })
        })
        .collect();
    let mut failures = Vec::new();
    for task in tasks {
        if let Err(error) = task.await.unwrap() {
            failures.push(error);
        }
    }
    let elapsed = started.elapsed();
    assert!(
        failures.is_empty(),
        "{} of 1000 failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    println!(
        "boot storm: 1000 phones in {elapsed:?} ({:.0} transfers/s)",
        1000.0 / elapsed.as_secs_f64()
    );
    setup.harness.shutdown().await;
}

/// curl's TFTP client from `source` (it can bind one, unlike tftp-hpa and atftp): (curl exit
/// code, content). Exit 0 served, 68 "file not found", 69 "access violation", 28 no answer
/// within `max_secs`.
async fn curl_tftp(
    curl: &std::path::Path,
    source: &str,
    server: SocketAddr,
    remote: &str,
    max_secs: u32,
) -> (i32, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("out");
    let mut command = tokio::process::Command::new(curl);
    command
        .args([
            "-s",
            "--interface",
            source,
            "--max-time",
            &max_secs.to_string(),
        ])
        .args(["--tftp-blksize", "1428", "-o"])
        .arg(&local)
        .arg(format!("tftp://{server}/{remote}"));
    let (code, _) = run_bounded(command, Duration::from_secs(u64::from(max_secs) + 20)).await;
    (code, std::fs::read(&local).unwrap_or_default())
}

/// Sends a SIP OPTIONS from `local` to the server's UDP listener: whether anything answered
/// within 1 s (two tries).
async fn options_answered(local: &str, server: SocketAddr) -> bool {
    let socket = UdpSocket::bind((local, 0)).await.unwrap();
    let me = socket.local_addr().unwrap();
    let branch = format!("z9hG4bK{}", rand::random::<u64>());
    let text = format!(
        "OPTIONS sip:{server} SIP/2.0\r\nVia: SIP/2.0/UDP {me};rport;branch={branch}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:probe@{me}>;tag=1\r\nTo: <sip:{server}>\r\n\
         Call-ID: {branch}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    );
    let mut buf = vec![0u8; 4096];
    for _ in 0..2 {
        socket.send_to(text.as_bytes(), server).await.unwrap();
        if let Ok(Ok(_)) =
            tokio::time::timeout(Duration::from_millis(500), socket.recv_from(&mut buf)).await
        {
            return true;
        }
    }
    false
}

/// The guard's ban thresholds for the ban test: three failures within a minute ban for a
/// minute.
fn small_ban_thresholds(settings: &mut pbx_server::config::Settings) {
    let section = pbx_server::guard::SecuritySection {
        failures_before_ban: 3,
        failure_window_secs: 60,
        ban_secs: 60,
        ..pbx_server::guard::SecuritySection::default()
    };
    settings.security = section.validate().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_fetches_ban_the_source_for_provisioning_and_sip_alike() {
    let (Some(curl), Some(hpa)) = (tool("curl", "curl"), tool("tftp", "tftp-hpa")) else {
        return;
    };
    let setup = start_with(small_ban_thresholds).await;
    let (_scope, phones) = tenant(
        &setup,
        "acme",
        &["127.0.0.1/32"],
        &[(PhoneVendor::Yealink, "T54W", "001565000042".into())],
    )
    .await;
    let (_, others) = tenant(
        &setup,
        "beta",
        &["127.0.0.3/32"],
        &[(PhoneVendor::Grandstream, "GRP2614", "000b82000043".into())],
    )
    .await;
    let view = enable(&setup, "acme", phones[0].id).await;
    let https_url = view["https_url"].as_str().unwrap().to_owned();
    let mac_file = format!("acme/{}.cfg", phones[0].mac);
    let sip = setup.harness.addr(pbx_sip_net::Transport::Udp, false);
    assert!(options_answered("127.0.0.2", sip).await, "not banned yet");

    // acme's own office asking for beta's phone five times is refused but not banned for it
    // (counted for the tenant only: the source is on acme's whitelist).
    for _ in 0..5 {
        let (code, _) = curl_tftp(
            &curl,
            "127.0.0.1",
            setup.tftp,
            &format!("acme/cfg{}.xml", others[0].mac),
            5,
        )
        .await;
        assert_eq!(code, 68, "file not found");
    }

    // 127.0.0.2 is on no whitelist: three refusals (access violation), then a ban, after
    // which TFTP does not answer at all.
    let mut codes = Vec::new();
    for _ in 0..5 {
        codes.push(
            curl_tftp(&curl, "127.0.0.2", setup.tftp, &mac_file, 2)
                .await
                .0,
        );
    }
    assert_eq!(codes, [69, 69, 69, 28, 28], "curl exit codes");

    // The ban is the guard's: listed by the API, and SIP from 127.0.0.2 is dropped too.
    let (status, body) = http_request(
        setup.harness.server().http_addr,
        "GET",
        "/api/v1/security/bans",
        &setup.token,
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let bans: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
    assert_eq!(bans.len(), 1, "{bans:?}");
    assert_eq!(bans[0]["source"], "127.0.0.2");
    assert_eq!(bans[0]["reason"], "auth_failures");
    assert!(
        !options_answered("127.0.0.2", sip).await,
        "SIP from a banned source"
    );
    assert!(
        options_answered("127.0.0.1", sip).await,
        "the office is not banned"
    );
    // HTTPS provisioning closes the banned source's connection before TLS.
    let mut command = tokio::process::Command::new(&curl);
    command
        .args(["-sk", "--interface", "127.0.0.2", "--max-time", "5"])
        .args(["-o", "/dev/null", "-w", "%{http_code}"])
        .arg(format!("{https_url}{}.cfg", phones[0].mac));
    let (code, out) = run_bounded(command, Duration::from_secs(30)).await;
    assert_ne!(code, 0, "{out}");
    assert_eq!(out.trim(), "000", "no HTTP answer: {out}");
    // The office (127.0.0.1, tftp-hpa) still gets its phone's file.
    let (out, bytes) = tftp_hpa(&hpa, setup.tftp, &mac_file).await;
    assert!(
        String::from_utf8_lossy(&bytes).contains("account.1.user_name = 200"),
        "{out}"
    );
    let stats = setup
        .harness
        .server()
        .provisioning
        .as_ref()
        .unwrap()
        .tftp_stats
        .clone();
    assert!(
        stats
            .source_rejected
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 2
    );
    setup.harness.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_outside_the_whitelist_gets_one_error_whatever_mac_or_company_it_names() {
    let (Some(hpa), Some(atftp_bin), Some(curl)) = (
        tool("tftp", "tftp-hpa"),
        tool("atftp", "atftp"),
        tool("curl", "curl"),
    ) else {
        return;
    };
    // No bans in this test: it sends many refused requests on purpose.
    let setup = start_with(|settings| {
        let section = pbx_server::guard::SecuritySection {
            failures_before_ban: 10_000,
            ..pbx_server::guard::SecuritySection::default()
        };
        settings.security = section.validate().unwrap();
    })
    .await;
    // acme's office is 127.0.0.2: the real clients (127.0.0.1) are outside it.
    let (_scope, phones) = tenant(
        &setup,
        "acme",
        &["127.0.0.2/32"],
        &[(PhoneVendor::Yealink, "T54W", "001565000077".into())],
    )
    .await;
    enable(&setup, "acme", phones[0].id).await;
    let known = &phones[0].mac;
    let unknown = "0015650000ee";
    let paths = [
        format!("acme/{known}.cfg"),
        format!("acme/{unknown}.cfg"),
        format!("nobody/{known}.cfg"),
        format!("nobody/{unknown}.cfg"),
        format!("{known}.cfg"),
        format!("{unknown}.cfg"),
    ];
    let mut hpa_errors = std::collections::BTreeSet::new();
    let mut atftp_errors = std::collections::BTreeSet::new();
    for path in &paths {
        assert_eq!(
            probe("127.0.0.1:0", setup.tftp, path).await,
            Some((5, Some(ErrorCode::AccessViolation))),
            "{path}"
        );
        let (out, bytes) = tftp_hpa(&hpa, setup.tftp, path).await;
        assert!(bytes.is_empty(), "{path}: {out}");
        let line = out
            .lines()
            .find(|l| l.contains("Error code"))
            .unwrap_or_else(|| panic!("{path}: no error from tftp-hpa: {out}"));
        hpa_errors.insert(line.to_owned());
        let (code, out, _) = atftp(&atftp_bin, setup.tftp, path, &["blksize 1428"]).await;
        assert_ne!(code, 0, "{path}: {out}");
        let line = out
            .lines()
            .find(|l| l.contains("error received from server"))
            .unwrap_or_else(|| panic!("{path}: no error from atftp: {out}"));
        atftp_errors.insert(line.to_owned());
    }
    assert_eq!(
        hpa_errors.into_iter().collect::<Vec<_>>(),
        ["Error code 2: Access violation"],
        "one error for every path"
    );
    assert_eq!(atftp_errors.len(), 1, "one error for every path");
    // From the office (127.0.0.2): the phone's file, and "file not found" for an unknown MAC.
    let (code, bytes) = curl_tftp(&curl, "127.0.0.2", setup.tftp, &paths[0], 10).await;
    assert_eq!(code, 0);
    assert!(String::from_utf8_lossy(&bytes).contains("account.1.user_name = 200"));
    assert_eq!(
        curl_tftp(&curl, "127.0.0.2", setup.tftp, &paths[1], 10)
            .await
            .0,
        68,
        "file not found"
    );
    assert_eq!(
        probe("127.0.0.2:0", setup.tftp, &paths[1]).await,
        Some((5, Some(ErrorCode::FileNotFound)))
    );
    setup.harness.shutdown().await;
}

/// Fetches `remote` with tftp-hpa until `done` holds for its content (bounded: 40 tries).
async fn fetch_until(
    hpa: &std::path::Path,
    server: SocketAddr,
    remote: &str,
    done: impl Fn(&str) -> bool,
) -> String {
    let mut last = String::new();
    for _ in 0..40 {
        let (_, bytes) = tftp_hpa(hpa, server, remote).await;
        last = String::from_utf8_lossy(&bytes).into_owned();
        if done(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    panic!("{remote} never matched; last content:\n{last}");
}

/// The operator events (no tenant) of `kind`.
async fn operator_events(setup: &Setup, kind: &str) -> Vec<serde_json::Value> {
    tokio::time::sleep(Duration::from_millis(300)).await;
    let store = setup.harness.server().store();
    store
        .events()
        .list_all(&pbx_domain::Actor::Operator, 500)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == kind)
        .map(|e| e.payload)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn template_overrides_reload_on_the_next_fetch_and_a_broken_one_keeps_the_previous() {
    let Some(hpa) = tool("tftp", "tftp-hpa") else {
        return;
    };
    let setup = start_with(|settings| {
        settings.provisioning.template_check = Duration::from_millis(200);
    })
    .await;
    let (_scope, _) = tenant(&setup, "acme", &["127.0.0.1/32"], &[]).await;
    let common = "acme/y000000000028.cfg";
    let shipped = fetch_until(&hpa, setup.tftp, common, |text| !text.is_empty()).await;
    assert!(!shipped.contains("tpl-v"), "{shipped}");
    let dir = setup
        .harness
        .dir
        .path()
        .join("provisioning/templates/yealink");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("common.cfg");
    std::fs::write(
        &file,
        "#!version:1.0.0.1\n# tpl-v1 for {{ tenant.slug }}\nauto_provision.repeat.minutes = {{ recheck_minutes }}\n",
    )
    .unwrap();
    let v1 = fetch_until(&hpa, setup.tftp, common, |text| text.contains("tpl-v1")).await;
    assert!(v1.contains("tpl-v1 for acme\n"), "{v1}");
    // A broken edit (does not compile), then one naming a value that does not exist: the
    // phones keep getting v1, and the operator is told which template and why.
    for broken in [
        "#!version:1.0.0.1\n# tpl-v2 {% if %}\n",
        "#!version:1.0.0.1\n# tpl-v2 {{ tenant.no_such_value }}\n",
    ] {
        std::fs::write(&file, broken).unwrap();
        tokio::time::sleep(Duration::from_millis(400)).await;
        for _ in 0..2 {
            let (out, bytes) = tftp_hpa(&hpa, setup.tftp, common).await;
            assert_eq!(String::from_utf8_lossy(&bytes), v1, "{out}");
        }
    }
    let errors = operator_events(&setup, "provisioning.template_error").await;
    assert_eq!(errors.len(), 2, "one error per broken edit: {errors:?}");
    assert!(
        errors
            .iter()
            .all(|e| e["error"].as_str().unwrap().contains("yealink/common.cfg")),
        "{errors:?}"
    );
    // Fixed: live again; removed: the shipped template is back.
    std::fs::write(&file, "#!version:1.0.0.1\n# tpl-v3\n").unwrap();
    fetch_until(&hpa, setup.tftp, common, |text| text.contains("tpl-v3")).await;
    std::fs::remove_file(&file).unwrap();
    let back = fetch_until(&hpa, setup.tftp, common, |text| !text.contains("tpl-v")).await;
    assert_eq!(back, shipped);
    let reloads = operator_events(&setup, "provisioning.templates_reloaded").await;
    assert_eq!(reloads.len(), 3, "v1, v3, removal: {reloads:?}");
    setup.harness.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_template_overrides_when_fetch_checks_are_off() {
    let (Some(hpa), Some(kill)) = (tool("tftp", "tftp-hpa"), tool("kill", "procps")) else {
        return;
    };
    let setup = start_with(|settings| {
        settings.provisioning.template_check = Duration::ZERO;
    })
    .await;
    let (_scope, _) = tenant(&setup, "acme", &["127.0.0.1/32"], &[]).await;
    let common = "acme/y000000000028.cfg";
    let shipped = fetch_until(&hpa, setup.tftp, common, |text| !text.is_empty()).await;
    let dir = setup
        .harness
        .dir
        .path()
        .join("provisioning/templates/yealink");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("common.cfg"), "#!version:1.0.0.1\n# via SIGHUP\n").unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, bytes) = tftp_hpa(&hpa, setup.tftp, common).await;
    assert_eq!(
        String::from_utf8_lossy(&bytes),
        shipped,
        "no fetch-time check"
    );
    let mut command = tokio::process::Command::new(kill);
    command.args(["-HUP", &std::process::id().to_string()]);
    let (code, out) = run_bounded(command, Duration::from_secs(10)).await;
    assert_eq!(code, 0, "{out}");
    fetch_until(&hpa, setup.tftp, common, |text| text.contains("via SIGHUP")).await;
    setup.harness.shutdown().await;
}
