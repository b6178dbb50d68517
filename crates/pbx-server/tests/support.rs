//! Shared harness: an in-process `cloudpbx serve` on loopback port-0 listeners with a temporary
//! data directory, provisioning through the store, external tools and process guards.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use pbx_domain::{
    Actor, ClassOfService, DeviceId, DeviceKind, DisplayName, Extension, NewDevice, NewTenant,
    NewUser, Realm, SipDomain, Slug, TenantId, TenantStatus, UserId,
};
use pbx_server::config::{Settings, parse};
use pbx_server::serve::{RunningServer, ServeOptions, Server};
use pbx_sip_net::Transport;
use pbx_store::TenantScope;
use tokio::sync::oneshot;

pub const REALM: &str = "cloudpbx";

/// Server options the tests vary.
#[derive(Debug, Clone)]
pub struct Options {
    pub min_expiry_secs: u32,
    pub nat_keepalive_secs: u32,
    pub ipv6: bool,
    /// `sip.digest_algorithms` (TOML array text).
    pub digest: &'static str,
    /// Lines of the `[calls]` section (TOML text).
    pub calls_toml: &'static str,
    /// Further sections appended to the file (TOML text), e.g. `[dns]`.
    pub extra_toml: String,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            min_expiry_secs: 10,
            nat_keepalive_secs: 25,
            ipv6: true,
            digest: r#"["SHA-256", "MD5"]"#,
            calls_toml: "",
            extra_toml: String::new(),
        }
    }
}

/// The settings for a test server in `data_dir`.
pub fn settings(data_dir: &Path, options: &Options) -> Settings {
    let (udp, tcp) = if options.ipv6 && pbx_sip_net::ipv6_loopback_available() {
        (
            r#"["127.0.0.1:0", "[::1]:0"]"#,
            r#"["127.0.0.1:0", "[::1]:0"]"#,
        )
    } else {
        (r#"["127.0.0.1:0"]"#, r#"["127.0.0.1:0"]"#)
    };
    let text = format!(
        r#"data_dir = "{dir}"
[sip]
udp_listen = {udp}
tcp_listen = {tcp}
tls_listen = ["127.0.0.1:0"]
realm = "{REALM}"
digest_algorithms = {digest}
[registrar]
min_expiry_secs = {min}
default_expiry_secs = 600
max_expiry_secs = 3600
nat_keepalive_interval_secs = {ka}
refresh_write_back_ms = 0
[http]
listen = "127.0.0.1:0"
[tftp]
listen = "127.0.0.1:0"
[log]
filter = "warn"
[calls]
{calls}
{extra}"#,
        dir = data_dir.display(),
        min = options.min_expiry_secs,
        ka = options.nat_keepalive_secs,
        digest = options.digest,
        calls = options.calls_toml,
        extra = options.extra_toml,
    );
    let file = parse(Some(&text), "test.toml", Vec::new()).expect("test config parses");
    Settings::from_file_config(file).expect("test config is valid")
}

/// A running server and its data directory (kept until dropped).
pub struct Harness {
    pub server: Option<RunningServer>,
    pub dir: tempfile::TempDir,
    pub options: Options,
}

impl Harness {
    pub async fn start(options: Options) -> Harness {
        let dir = tempfile::tempdir().expect("tempdir");
        let server = Server::start(&settings(dir.path(), &options), &ServeOptions::default())
            .await
            .expect("server starts");
        Harness {
            server: Some(server),
            dir,
            options,
        }
    }

    pub fn server(&self) -> &RunningServer {
        self.server.as_ref().expect("server running")
    }

    pub fn addr(&self, transport: Transport, ipv6: bool) -> SocketAddr {
        self.server()
            .sip_addr(transport, ipv6)
            .expect("listener for the transport")
    }

    /// Shut down and start again on the same data directory.
    pub async fn restart(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
        let server = Server::start(
            &settings(self.dir.path(), &self.options),
            &ServeOptions::default(),
        )
        .await
        .expect("server restarts");
        self.server = Some(server);
    }

    pub async fn shutdown(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
    }

    /// Waits until the TU's directory has seen every committed store write.
    pub async fn settle(&self) {
        let (tx, rx) = oneshot::channel();
        self.server()
            .endpoint()
            .execute(move |tu, _| {
                let _ = tx.send(tu.directory().clone());
            })
            .await
            .expect("endpoint running");
        let directory = rx.await.expect("directory handed over");
        let generation = self.server().store().generation();
        tokio::time::timeout(Duration::from_secs(10), directory.caught_up(generation))
            .await
            .expect("directory caught up within 10 s");
    }

    /// Waits until the routing snapshot has every store change so far.
    pub async fn routing_loaded(&self) {
        let server = self.server();
        let generation = server.store().generation();
        tokio::time::timeout(
            Duration::from_secs(10),
            server.routing().caught_up(generation),
        )
        .await
        .expect("routing reloaded within 10 s");
    }

    /// Number of bindings the registrar holds for `user`.
    pub async fn registrar_bindings(&self, user: UserId) -> usize {
        let (tx, rx) = oneshot::channel();
        self.server()
            .endpoint()
            .execute(move |tu, _| {
                let _ = tx.send(tu.registrar().lookup(user).len());
            })
            .await
            .expect("endpoint running");
        rx.await.expect("lookup answered")
    }

    /// The CSeq of each live binding of `user` in the registrar (the store may lag behind:
    /// plain refreshes are written back lazily).
    pub async fn registrar_cseqs(&self, user: UserId) -> Vec<u32> {
        let (tx, rx) = oneshot::channel();
        self.server()
            .endpoint()
            .execute(move |tu, _| {
                let cseqs = tu
                    .registrar()
                    .bindings(user)
                    .iter()
                    .map(|b| b.cseq)
                    .collect();
                let _ = tx.send(cseqs);
            })
            .await
            .expect("endpoint running");
        rx.await.expect("bindings answered")
    }

    /// Bindings of `tenant` in the store.
    pub async fn stored_bindings(&self, tenant: &Tenant) -> Vec<pbx_domain::Binding> {
        let store = self.server().store();
        store
            .bindings()
            .list(&tenant.scope)
            .await
            .expect("bindings listed")
    }

    /// Polls the store (bounded, 10 s) until `tenant` has `count` bindings.
    pub async fn wait_stored_bindings(&self, tenant: &Tenant, count: usize) -> usize {
        let mut seen = 0;
        for _ in 0..200 {
            seen = self.stored_bindings(tenant).await.len();
            if seen == count {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        seen
    }

    /// One tenant with `users` users, one softphone and one credential each.
    /// Puts `number` in `tenant` (from the operator's inventory) and assigns it to `account`
    /// (if any).
    pub async fn assign_number(&self, tenant: &Tenant, number: &str, account: Option<&Account>) {
        let store = self.server().store();
        let e164 = pbx_domain::E164::parse(number).unwrap();
        let added = store
            .numbers()
            .add_to_inventory(&Actor::Operator, &e164)
            .await
            .unwrap();
        store
            .numbers()
            .assign_to_tenant(&Actor::Operator, added.id, &tenant.scope)
            .await
            .unwrap();
        store
            .numbers()
            .assign_user(&tenant.scope, added.id, account.map(|a| a.user_id))
            .await
            .unwrap();
    }

    pub async fn provision(&self, slug: &str, users: usize) -> Tenant {
        let store = self.server().store();
        let tenant = store
            .tenants()
            .create(
                &Actor::Operator,
                &NewTenant {
                    reseller_id: None,
                    name: DisplayName::parse(slug).expect("name"),
                    slug: Slug::parse(slug).expect("slug"),
                    sip_domain: SipDomain::parse(&format!("{slug}.pbx.test")).expect("domain"),
                    status: TenantStatus::Active,
                },
            )
            .await
            .expect("tenant created");
        let scope = store
            .scope(&Actor::Operator, tenant.id)
            .await
            .expect("scope");
        let realm = Realm::parse(REALM).expect("realm");
        let mut accounts = Vec::with_capacity(users);
        for index in 0..users {
            let extension = format!("{}", 100 + index);
            let user = store
                .users()
                .create(
                    &scope,
                    &NewUser {
                        extension: Extension::parse(&extension).expect("extension"),
                        display_name: DisplayName::parse(&format!("User {extension}"))
                            .expect("display name"),
                        class_of_service: ClassOfService::National,
                    },
                )
                .await
                .expect("user created");
            let device = store
                .devices()
                .create(
                    &scope,
                    &NewDevice {
                        user_id: user.id,
                        kind: DeviceKind::Softphone,
                        label: format!("softphone {extension}"),
                    },
                )
                .await
                .expect("device created");
            let issued = store
                .credentials()
                .issue(&scope, device.id, &realm)
                .await
                .expect("credential issued");
            accounts.push(Account {
                extension,
                auth_user: issued.credential.auth_username.as_str().to_owned(),
                password: issued.password.expose().to_owned(),
                user_id: user.id,
                device_id: device.id,
            });
        }
        self.settle().await;
        Tenant {
            id: tenant.id,
            domain: format!("{slug}.pbx.test"),
            scope,
            accounts,
        }
    }
}

/// A provisioned tenant.
pub struct Tenant {
    #[allow(dead_code)] // kept for tests that need the tenant id
    pub id: TenantId,
    pub domain: String,
    pub scope: TenantScope,
    pub accounts: Vec<Account>,
}

/// A provisioned user with its device credential.
#[derive(Debug, Clone)]
pub struct Account {
    pub extension: String,
    pub auth_user: String,
    pub password: String,
    pub user_id: UserId,
    pub device_id: DeviceId,
}

/// The path of `tool`, or `None` with a skip notice (a failure under `CI=true`).
pub fn tool(name: &str, package: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file());
    if found.is_none() {
        let message = format!("{name} is not installed (apt-get install -y {package})");
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{message}, and CI=true"
        );
        println!("SKIP: {message}");
    }
    found
}

/// A port free on `ip` for both UDP and TCP right now.
pub fn free_port(ip: std::net::IpAddr) -> u16 {
    for _ in 0..100 {
        let Ok(udp) = std::net::UdpSocket::bind((ip, 0)) else {
            continue;
        };
        let port = udp.local_addr().expect("local addr").port();
        if std::net::TcpListener::bind((ip, port)).is_ok() {
            return port;
        }
    }
    panic!("no port free for both UDP and TCP in 100 tries");
}

pub fn v4() -> std::net::IpAddr {
    std::net::IpAddr::from([127, 0, 0, 1])
}

/// Runs a bounded command, returns (exit code, stdout + stderr).
pub async fn run_bounded(mut command: tokio::process::Command, limit: Duration) -> (i32, String) {
    command
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let output = tokio::time::timeout(limit, command.output())
        .await
        .unwrap_or_else(|_| panic!("{command:?} did not finish within {limit:?}"))
        .expect("command started");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code().unwrap_or(-1), text)
}

/// Waits (bounded by `limit`) for a started child with piped output: (exit code, stdout +
/// stderr), or (-1, a note) when it has not finished in time.
pub async fn wait_bounded(child: tokio::process::Child, limit: Duration) -> (i32, String) {
    match tokio::time::timeout(limit, child.wait_with_output()).await {
        Ok(Ok(output)) => (
            output.status.code().unwrap_or(-1),
            format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        ),
        Ok(Err(error)) => (-1, format!("waiting failed: {error}")),
        Err(_) => (-1, format!("did not finish within {limit:?}")),
    }
}

/// The requests of `method` in a SIPp message trace (`-trace_msg`), each as its header lines.
pub fn trace_requests(trace: &str, method: &str) -> Vec<Vec<String>> {
    let start = format!("{method} ");
    let mut found = Vec::new();
    let mut lines = trace.lines();
    while let Some(line) = lines.next() {
        if !line.starts_with(&start) {
            continue;
        }
        let mut message = vec![line.to_owned()];
        for next in lines.by_ref() {
            if next.trim().is_empty() {
                break;
            }
            message.push(next.to_owned());
        }
        found.push(message);
    }
    found
}

/// The value of header `name` (case-insensitive, full names only) in a message from
/// [`trace_requests`].
pub fn trace_header<'a>(message: &'a [String], name: &str) -> Option<&'a str> {
    let prefix = format!("{}:", name.to_ascii_lowercase());
    message
        .iter()
        .find(|line| line.to_ascii_lowercase().starts_with(&prefix))
        .map(|line| line[prefix.len()..].trim())
}

/// Repository root (bench scenarios live there).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Sends one HTTP/1.1 request (optionally with a JSON body) to the running API and returns
/// (status, body).
pub async fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: &str,
    body: Option<&str>,
) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect to the API");
    let body = body.unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut reply = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut reply))
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

/// A JSON API request with `token` that must succeed (2xx); the response body as JSON
/// (`Null` when empty).
pub async fn api_json(
    harness: &Harness,
    token: &str,
    method: &str,
    path: &str,
    body: serde_json::Value,
) -> serde_json::Value {
    let (status, text) = http_request(
        harness.server().http_addr,
        method,
        path,
        token,
        Some(&body.to_string()),
    )
    .await;
    assert!(
        (200..300).contains(&status),
        "{method} {path}: {status} {text}"
    );
    serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
}
