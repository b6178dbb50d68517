//! `cloudpbx serve`: boot everything, print where it listens, run until a signal, shut down
//! gracefully.
//!
//! [`Server::start`] boots in-process (tests use it with port 0 listeners and a temporary data
//! directory); [`run`] is `start` + wait for Ctrl-C/SIGTERM + [`RunningServer::shutdown`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use pbx_domain::Actor;
use pbx_registrar::{Registrar, RegistrarConfig};
use pbx_sip_auth::{NonceCountTracker, Verifier, VerifierConfig};
use pbx_sip_net::{
    Endpoint, EndpointHandle, Limits, ListenerConfig, RunningEndpoint, TlsConfig, Transport,
    TransportConfig, Transports,
};
use pbx_store::{Directory, Store, StoreOptions};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::config::{LogFormat, Settings};
use crate::guard::SecurityGuard;
use crate::sip::{PlatformTu, now_pair};

/// Options that are not configuration keys.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// The operator's first API token (instead of a generated one printed once).
    pub bootstrap_token: Option<String>,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// Phone provisioning (TFTP, HTTPS, templates, key) could not start.
    #[error("provisioning: {0}")]
    Provisioning(#[from] crate::provisioning::ProvisioningError),
    /// The call data services (trunk key, routing, CDR journal) could not start.
    #[error("call data: {0}")]
    CallData(#[from] crate::trunks::CallDataError),
    /// The media relay could not start (ports, threads).
    #[error("media relay: {0}")]
    Media(String),
    /// The data directory or a file in it could not be created or read.
    #[error("data directory {path}: {source}")]
    DataDir {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The database could not be opened or migrated.
    #[error("database: {0}")]
    Store(#[from] pbx_store::StoreError),
    /// A SIP listener could not be bound.
    #[error("SIP listeners: {0}")]
    Bind(#[from] pbx_sip_net::BindError),
    /// The registrar configuration is unusable.
    #[error("registrar: {0}")]
    Registrar(#[from] pbx_registrar::ConfigError),
    /// The digest verifier could not be built.
    #[error("digest authentication: {0}")]
    Auth(String),
    /// The TLS certificate could not be generated.
    #[error("TLS certificate: {0}")]
    Tls(String),
    /// The HTTP listener could not be bound.
    #[error("HTTP listener {addr}: {source}")]
    Http {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The operator's first API token could not be set up.
    #[error("bootstrap token: {0}")]
    Bootstrap(#[from] pbx_api::BootstrapError),
    /// The configured realm is not a valid digest realm.
    #[error("realm: {0}")]
    Realm(String),
}

/// How the operator logs in, decided at start.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum OperatorLogin {
    /// A token was generated now: shown once.
    Generated(String),
    /// The token given with `--bootstrap-token` / `CLOUDPBX_BOOTSTRAP_TOKEN` was stored.
    Provided,
    /// An operator token exists already (from an earlier start).
    Existing,
}

/// A running platform.
#[derive(Debug)]
pub struct RunningServer {
    /// SIP listeners as bound (real ports when 0 was configured).
    pub sip_listeners: Vec<ListenerConfig>,
    /// The HTTP API listener as bound.
    pub http_addr: SocketAddr,
    /// How the operator logs in.
    pub operator_login: OperatorLogin,
    /// Phone provisioning (TFTP/HTTPS), when enabled.
    pub provisioning: Option<crate::provisioning::RunningProvisioning>,
    http_shutdown: tokio_util::sync::CancellationToken,
    http: JoinHandle<()>,
    store: Store,
    endpoint: RunningEndpoint<PlatformTu>,
    handle: EndpointHandle<PlatformTu>,
    tasks: Vec<JoinHandle<()>>,
    writer: JoinHandle<()>,
    guard: Arc<SecurityGuard>,
    guard_stop: tokio_util::sync::CancellationToken,
    guard_tasks: Vec<JoinHandle<()>>,
    node_id: String,
    call_data: crate::trunks::CallData,
}

impl RunningServer {
    /// The SIP listener for `transport` on the IPv4 or IPv6 side.
    pub fn sip_addr(&self, transport: Transport, ipv6: bool) -> Option<SocketAddr> {
        self.sip_listeners
            .iter()
            .find(|l| l.transport == transport && l.addr.is_ipv6() == ipv6)
            .map(|l| l.addr)
    }

    /// The store (tests provision through it).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The SIP endpoint (tests inspect the TU through it).
    pub fn endpoint(&self) -> &EndpointHandle<PlatformTu> {
        &self.handle
    }

    /// The fraud and abuse guard (bans, call checks for the call engine).
    pub fn guard(&self) -> &Arc<SecurityGuard> {
        &self.guard
    }

    /// The CDR sink (the call engine reports calls to it).
    pub fn cdrs(&self) -> &crate::cdr::CdrSink {
        &self.call_data.cdrs
    }

    /// The live routing snapshot (trunks, routes, numbers, tenant settings).
    pub fn routing(&self) -> &Arc<crate::trunks::LiveRouting> {
        &self.call_data.routing
    }

    /// The live trunk registration states.
    pub fn trunk_registrations(&self) -> Option<Arc<crate::trunks::RegistrationStatus>> {
        self.call_data.registrations()
    }

    /// Graceful shutdown: end the calls in progress (BYE/CANCEL, their CDRs closed), stop
    /// accepting, let in-flight transactions finish (bounded), flush pending store writes,
    /// close the database.
    pub async fn shutdown(self) {
        self.end_calls().await;
        self.http_shutdown.cancel();
        if let Some(provisioning) = self.provisioning {
            provisioning.shutdown().await;
        }
        if tokio::time::timeout(Duration::from_secs(5), self.http)
            .await
            .is_err()
        {
            tracing::warn!("HTTP server did not stop within 5 s");
        }
        for task in &self.tasks {
            task.abort();
        }
        // The endpoint owns the TU, whose writer queue sender is dropped with it.
        drop(self.handle);
        let _ = self.endpoint.shutdown().await;
        if tokio::time::timeout(Duration::from_secs(10), self.writer)
            .await
            .is_err()
        {
            tracing::warn!("store writer did not drain within 10 s");
        }
        self.call_data.shutdown().await;
        // A restart must not forgive an attacker: the guard's state is saved last.
        crate::guard::sink::save(&self.store, &self.guard, &self.node_id, true).await;
        self.guard_stop.cancel();
        for task in self.guard_tasks {
            if tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .is_err()
            {
                tracing::warn!("guard task did not stop within 5 s");
            }
        }
        self.store.close().await;
    }

    /// Ends every call on the endpoint task while it still runs normally (bounded: 5 s to
    /// queue the command, 5 s for it to run); the endpoint's drain that follows gives the
    /// BYEs and CANCELs its grace period to complete.
    async fn end_calls(&self) {
        let (done, finished) = tokio::sync::oneshot::channel();
        let command = self.handle.execute(move |tu, ctx| {
            if let Some(calls) = tu.calls_mut() {
                calls.shut_down(ctx);
            }
            let _ = done.send(());
        });
        let ended = match tokio::time::timeout(Duration::from_secs(5), command).await {
            Ok(Ok(())) => tokio::time::timeout(Duration::from_secs(5), finished)
                .await
                .is_ok_and(|sent| sent.is_ok()),
            _ => false,
        };
        if !ended {
            tracing::warn!("calls in progress could not be ended before the shutdown");
        }
    }
}

/// The whole platform, booted in-process.
#[derive(Debug)]
pub struct Server;

impl Server {
    /// Boots the platform from validated settings.
    pub async fn start(
        settings: &Settings,
        options: &ServeOptions,
    ) -> Result<RunningServer, ServeError> {
        create_dir(&settings.data_dir)?;
        let store = Store::open_with(
            &settings.database_url,
            &StoreOptions {
                max_connections: settings.database_max_connections,
                ..StoreOptions::default()
            },
        )
        .await?;
        let directory = Directory::load(&store).await?;
        let follower = directory.follow(store.clone());
        // Writes by other processes (the admin CLI on the same SQLite file, other nodes)
        // reach the live directory too: polled on SQLite, LISTEN/NOTIFY on PostgreSQL.
        let watcher = store.watch_config_changes(Duration::from_secs(1)).await?;
        let realm = pbx_domain::Realm::parse(&settings.realm)
            .map_err(|err| ServeError::Realm(err.to_string()))?;
        let operator_login =
            match pbx_api::bootstrap_operator_token(&store, options.bootstrap_token.as_deref())
                .await?
            {
                pbx_api::Bootstrapped::Generated(secret) => {
                    OperatorLogin::Generated(secret.expose().to_owned())
                }
                pbx_api::Bootstrapped::Provided => OperatorLogin::Provided,
                _ => OperatorLogin::Existing,
            };

        let node_id = "node-1".to_owned();
        // Trunk key, live routing, CDR sink (journal replayed, interrupted calls closed).
        let mut call_data =
            crate::trunks::CallData::start(&store, &settings.data_dir, &node_id, &settings.dns)
                .await?;
        let (guard, guard_events) = SecurityGuard::new(settings.security.clone());
        let restored_bans = crate::guard::sink::restore(&store, &guard, &node_id).await;
        let guard_stop = tokio_util::sync::CancellationToken::new();
        let mut guard_tasks = vec![
            tokio::spawn(crate::guard::sink::run(
                store.clone(),
                Arc::clone(&guard),
                guard_events,
                guard_stop.clone(),
            )),
            tokio::spawn(crate::guard::sink::persist_loop(
                store.clone(),
                Arc::clone(&guard),
                node_id.clone(),
                Duration::from_secs(1),
                guard_stop.clone(),
            )),
        ];
        tracing::info!(bans = restored_bans, "guard state restored");
        let mut registrar_config = RegistrarConfig::new(node_id.clone());
        let (min, default, max) = settings.register_expiry;
        registrar_config.min_expires_secs = secs(min);
        registrar_config.default_expires_secs = secs(default);
        registrar_config.max_expires_secs = secs(max);
        registrar_config.max_contacts_per_user = settings.max_contacts_per_user as usize;
        registrar_config.udp_keepalive = settings.nat_keepalive_interval;
        registrar_config.persist_refreshes_lazily = !settings.refresh_write_back.is_zero();
        let mut registrar =
            Registrar::new(registrar_config, settings.realm.clone(), rand::random())?;

        // Registrations survive a restart: reload this node's unexpired bindings.
        let started = now_pair(std::time::Instant::now());
        let restored = store
            .bindings()
            .load_active(&Actor::System, started.unix_ms, Some(&node_id))
            .await?;
        let restored_count = restored.len();
        let restore_effects =
            registrar.restore(restored.into_iter().map(|b| b.record).collect(), started);

        let key = secret_key(&settings.data_dir.join("secrets").join("nonce.key"))?;
        let mut verifier_config = VerifierConfig::new(settings.realm.clone());
        verifier_config.algorithms = settings.digest_algorithms.clone();
        let verifier = Verifier::new(&key, verifier_config)
            .map_err(|err| ServeError::Auth(err.to_string()))?;
        let tracker = NonceCountTracker::new(100_000);

        let (writer_tx, writer_rx) = mpsc::channel(65_536);
        let writer = tokio::spawn(crate::writer::run_with(
            store.clone(),
            writer_rx,
            settings.refresh_write_back,
        ));
        for effect in restore_effects {
            let _ = writer_tx.try_send(effect);
        }

        let transports = bind_transports(settings, &guard).await?;
        guard_tasks.push(tokio::spawn(crate::guard::kernel::run(
            Arc::clone(&guard),
            transports.handle(),
            guard_stop.clone(),
        )));
        let sip_listeners = transports.local_addrs().to_vec();
        let engine = pbx_sip_engine::Endpoint::new(engine_config(settings), rand::random());
        let (calls, call_queues) =
            crate::calls::start(settings, &call_data.cdrs, Some(Arc::clone(&guard)))
                .map_err(|err| ServeError::Media(err.to_string()))?;
        let call_metrics: pbx_api::MetricsSource = {
            let (relay, cdrs) = (calls.relay().clone(), call_data.cdrs.clone());
            pbx_api::MetricsSource::new(move || crate::calls::metrics_text(&relay, &cdrs))
        };
        let tu = PlatformTu::new(registrar, directory.clone(), verifier, tracker, writer_tx)
            .with_guard(Arc::clone(&guard))
            .with_calls(calls.with_routing(Arc::clone(&call_data.routing)));
        let endpoint = Endpoint::new(transports, engine, tu).spawn();
        let handle = endpoint.handle();
        call_data.start_registrations(handle.clone(), &sip_listeners);

        let ticker = {
            let handle = handle.clone();
            tokio::spawn(async move {
                let mut interval = tokio::time::interval(Duration::from_millis(250));
                loop {
                    interval.tick().await;
                    if handle.execute(|tu, ctx| tu.tick(ctx)).await.is_err() {
                        break;
                    }
                }
            })
        };
        let call_tasks =
            crate::calls::spawn_tasks(handle.clone(), call_queues, Some(&guard), store.clone());
        tracing::info!(restored = restored_count, "registrations restored");

        let provisioning = crate::provisioning::start_for(
            settings,
            &sip_listeners,
            store.clone(),
            directory.clone(),
            Some(Arc::clone(&guard) as Arc<dyn crate::provisioning::ProvisioningGuard>),
        )
        .await?;
        let control = Arc::new(LiveControlPlane {
            endpoint: handle.clone(),
        });
        let security = Arc::new(crate::guard::GuardControl::new(
            Arc::clone(&guard),
            directory.clone(),
        ));
        let api = pbx_api::router(
            pbx_api::ApiState::new(store.clone(), directory, control, realm)
                .with_security(security)
                .with_calls(call_data.api())
                .with_metrics_source(call_metrics),
        );
        let api = crate::provisioning::with_api(api, provisioning.as_ref());
        let listener = tokio::net::TcpListener::bind(settings.http)
            .await
            .map_err(|source| ServeError::Http {
                addr: settings.http,
                source,
            })?;
        let http_addr = listener.local_addr().map_err(|source| ServeError::Http {
            addr: settings.http,
            source,
        })?;
        let http_shutdown = tokio_util::sync::CancellationToken::new();
        let http = {
            let stop = http_shutdown.clone();
            tokio::spawn(async move {
                let served = axum::serve(
                    listener,
                    api.into_make_service_with_connect_info::<SocketAddr>(),
                )
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await;
                if let Err(err) = served {
                    tracing::error!(error = %err, "HTTP server stopped");
                }
            })
        };
        tracing::info!(addr = %http_addr, "HTTP API listening");
        Ok(RunningServer {
            sip_listeners,
            http_addr,
            operator_login,
            provisioning,
            http_shutdown,
            http,
            store,
            endpoint,
            handle,
            tasks: vec![ticker, follower, watcher]
                .into_iter()
                .chain(call_tasks)
                .collect(),
            writer,
            guard,
            guard_stop,
            guard_tasks,
            node_id,
            call_data,
        })
    }
}

/// Runs the platform until Ctrl-C or SIGTERM.
pub async fn run(settings: Settings, options: ServeOptions) -> Result<(), ServeError> {
    init_tracing(&settings);
    let server = Server::start(&settings, &options).await?;
    print_banner(&settings, &server);
    wait_for_signal().await;
    println!("cloudpbx: shutting down (finishing in-flight transactions)");
    server.shutdown().await;
    Ok(())
}

fn print_banner(settings: &Settings, server: &RunningServer) {
    println!("CloudPBX {} is running", env!("CARGO_PKG_VERSION"));
    println!("  data directory: {}", settings.data_dir.display());
    println!("  database:       {}", redact(&settings.database_url));
    for listener in &server.sip_listeners {
        let scheme = if listener.transport == Transport::Tls {
            "sips"
        } else {
            "sip"
        };
        println!(
            "  SIP {:<4}        {scheme}:{} ",
            listener.transport.via_token(),
            listener.addr
        );
    }
    println!("  SIP realm:      {}", settings.realm);
    let http = server.http_addr;
    println!(
        "  HTTP API        http://{http}/api/v1  (OpenAPI: http://{http}/api/v1/openapi.json)"
    );
    println!("  health          http://{http}/healthz   metrics: http://{http}/metrics");
    crate::provisioning::print_banner(server.provisioning.as_ref());
    match &server.operator_login {
        OperatorLogin::Generated(secret) => {
            println!("Operator API token (shown ONCE, store it now):");
            println!("  {secret}");
            println!(
                "  use it as: curl -H 'Authorization: Bearer <token>' http://{http}/api/v1/tenants"
            );
        }
        OperatorLogin::Provided => {
            println!("Operator API token: the one given in CLOUDPBX_BOOTSTRAP_TOKEN")
        }
        OperatorLogin::Existing => {
            println!(
                "Operator API token: created on an earlier start (create more with `cloudpbx token create`)"
            );
        }
    }
    println!("Stop with Ctrl-C (in-flight transactions are finished first).");
}

fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***{}", &url[..scheme], &url[at..])
        }
        _ => url.to_owned(),
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn init_tracing(settings: &Settings) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_new(&settings.log_filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match settings.log_format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

fn engine_config(settings: &Settings) -> pbx_sip_engine::Config {
    pbx_sip_engine::Config {
        t1: settings.timers.t1,
        t2: settings.timers.t2,
        t4: settings.timers.t4,
        max_transactions: settings.max_transactions as usize,
        ..pbx_sip_engine::Config::default()
    }
    .sanitized()
}

async fn bind_transports(
    settings: &Settings,
    guard: &Arc<SecurityGuard>,
) -> Result<pbx_sip_net::BoundTransports, ServeError> {
    let mut listeners = Vec::new();
    for addr in &settings.sip_udp {
        listeners.push(ListenerConfig::new(Transport::Udp, *addr));
    }
    for addr in &settings.sip_tcp {
        listeners.push(ListenerConfig::new(Transport::Tcp, *addr));
    }
    for addr in &settings.sip_tls {
        listeners.push(ListenerConfig::new(Transport::Tls, *addr));
    }
    let tls = match &settings.tls_identity {
        Some((cert, key)) => TlsConfig {
            cert_path: Some(cert.clone()),
            key_path: Some(key.clone()),
            ..TlsConfig::default()
        },
        None => {
            let (cert, key) = self_signed(&settings.data_dir.join("tls"))?;
            TlsConfig {
                cert_path: Some(cert),
                key_path: Some(key),
                ..TlsConfig::default()
            }
        }
    };
    let limits = Limits {
        max_connections_per_source: settings.max_connections_per_source as usize,
        idle_timeout: settings.connection_idle_timeout,
        max_message_bytes: settings.max_message_bytes,
        ..Limits::default()
    };
    let config = TransportConfig {
        listeners: listeners.clone(),
        tls: tls.clone(),
        limits,
    };
    match Transports::new(config)
        .with_source_filter(guard.filter())
        .bind()
        .await
    {
        Ok(bound) => Ok(bound),
        Err(err)
            if listeners.iter().any(|l| l.addr.is_ipv6())
                && !pbx_sip_net::ipv6_loopback_available() =>
        {
            // A host without IPv6: serve IPv4 and say so, rather than refuse to start.
            tracing::warn!(error = %err, "IPv6 unavailable; serving SIP on IPv4 only");
            listeners.retain(|l| !l.addr.is_ipv6());
            Ok(Transports::new(TransportConfig {
                listeners,
                tls,
                limits,
            })
            .with_source_filter(guard.filter())
            .bind()
            .await?)
        }
        Err(err) => Err(err.into()),
    }
}

/// The self-signed certificate in `dir`, generated on first start and kept, so phones that
/// pinned it keep working across restarts.
fn self_signed(dir: &Path) -> Result<(PathBuf, PathBuf), ServeError> {
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    if cert_path.exists() && key_path.exists() {
        return Ok((cert_path, key_path));
    }
    create_dir(dir)?;
    let names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    let certified = rcgen::generate_simple_self_signed(names)
        .map_err(|err| ServeError::Tls(err.to_string()))?;
    write_private(&cert_path, certified.cert.pem().as_bytes())?;
    write_private(&key_path, certified.signing_key.serialize_pem().as_bytes())?;
    Ok((cert_path, key_path))
}

/// A 32-byte secret kept in the data directory (created on first start, mode 0600).
fn secret_key(path: &Path) -> Result<Vec<u8>, ServeError> {
    match std::fs::read(path) {
        Ok(key) if key.len() >= 32 => return Ok(key),
        Ok(_) | Err(_) => {}
    }
    if let Some(parent) = path.parent() {
        create_dir(parent)?;
    }
    let key: [u8; 32] = rand::random();
    write_private(path, &key)?;
    Ok(key.to_vec())
}

fn write_private(path: &Path, contents: &[u8]) -> Result<(), ServeError> {
    let err = |source| ServeError::DataDir {
        path: path.to_owned(),
        source,
    };
    std::fs::write(path, contents).map_err(err)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(err)?;
    }
    Ok(())
}

fn create_dir(path: &Path) -> Result<(), ServeError> {
    std::fs::create_dir_all(path).map_err(|source| ServeError::DataDir {
        path: path.to_owned(),
        source,
    })
}

/// The API's handle on the live registrar: removals run on the SIP driver task.
#[derive(Debug)]
struct LiveControlPlane {
    endpoint: EndpointHandle<PlatformTu>,
}

impl pbx_api::ControlPlane for LiveControlPlane {
    fn clear_registrations(
        &self,
        tenant: pbx_domain::TenantId,
        user: Option<pbx_domain::UserId>,
    ) -> pbx_api::Cleared {
        // The registrar lives on the SIP driver task: run the removal there and bring the
        // count back over a oneshot.
        let endpoint = self.endpoint.clone();
        Box::pin(async move {
            let (done, count) = tokio::sync::oneshot::channel();
            let queued = endpoint
                .execute(move |tu, ctx| {
                    let _ = done.send(tu.clear_registrations(ctx, tenant, user));
                })
                .await;
            if let Err(err) = queued {
                tracing::warn!(error = %err, "could not clear in-memory registrations");
                return 0;
            }
            count.await.unwrap_or(0)
        })
    }
}

fn secs(duration: Duration) -> u32 {
    u32::try_from(duration.as_secs()).unwrap_or(u32::MAX)
}
